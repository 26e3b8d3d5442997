"""A compiled (numba) kernel: the pooled channels of every single-base edit of a conv -> global max pool model.

The 1-layer Zeng et al. models are ``conv1d(4 -> C, width T)``, a monotone map (ReLU), a max pool over
the whole length and a dense head. ISM asks for the head's output after every single-base edit; this
module computes the pooled vector each edit gives, so that the head runs once on all of them
(:meth:`mlcourse.interpret.engines._LocalPlan._by_candidates`).

The method
----------
Take one sequence and one channel ``c``. Its pre-activations are ``a[j]``, ``j = 0 .. J-1``, with
``a[j] = sum_t W[c, :, t] x[j - pad + t]`` (plus the bias). Writing a new column ``x'`` over base ``x[p]``
at position ``p`` changes only the outputs that read ``p``: ``j = p + pad - t`` for the taps
``t = 0 .. T-1`` (those in ``0 .. J-1``), each by a number that depends on ``c``, ``t``, the old base and
the edit alone,

    delta[c, a, e, t] = W[c, :, t] . x'_e  -  W[c, a, t]        (a = x[p]; 0 old term for an N),

so the table ``delta`` is all the arithmetic an edit needs. The pooled value after edit ``e`` is

    max( outside(p),  max_t a[p + pad - t] + delta[c, x[p], e, t] ),

with ``outside(p)`` the maximum of ``a`` over the outputs the edit does not reach: the prefix maximum
just before the window, or the suffix maximum just after it (``-inf`` where there is none).

*Exact pruning.* ``rise[c, a] = max_{e, t} delta[c, a, e, t]`` bounds what any edit of base ``a`` adds,
and ``inside(p)``, the maximum of ``a`` over the window (a sliding maximum), bounds what the window holds.
If ``inside(p) + rise[c, x[p]] <= outside(p)``, no edit can lift the window over the outside maximum:
the pooled value is ``outside(p)`` for every edit, and the ``T`` x edits inner loop is skipped. Float
rounding is monotone, so ``fl(a[j] + delta) <= fl(inside + rise) <= outside`` and the skip is exact.
Away from each channel's top window most positions are skipped.

The sliding maximum is van Herk and Gil-Werman's: with the outputs cut into blocks of ``T``, a window of
``T`` consecutive entries spans at most two blocks, so it is the larger of the maximum from its start to
the end of its block and the maximum from the start of the next block to its end (two running maxima,
one forwards and one backwards, computed once). Prefix, suffix and these two are ``O(J)`` per channel.

The monotone map (ReLU) commutes with the max, ``relu(max(u, v)) = max(relu(u), relu(v))``, so the kernel
returns pre-activation maxima and the caller maps them afterwards. numba is imported only when the kernel
is first needed, so importing the course package stays cheap.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

__all__ = ["pooled_edits"]


def _pooled_edits_loop(conv, codes, delta, rise, pad, pooled, reference):
    """The kernel's body (compiled by :func:`_compiled`; see the module docstring for the method).

    ``conv`` ``(N, J, C)``: the convolution's outputs, channels innermost; ``codes`` ``(N, L)``: the base
    of each column (4: N); ``delta`` ``(5, T, K, C)`` and ``rise`` ``(5, C)`` the tables; ``pad`` the
    convolution's zero padding. Writes ``pooled[i, p, e, c]``, the pooled value of channel ``c`` after
    edit ``e`` at position ``p`` of sequence ``i`` (``(N, L, K, C)``), and ``reference[i, c]``, the
    unedited one. Every innermost loop runs over the channels, contiguous in each array, so that the
    compiler turns it into vector instructions; a position is skipped when the test of the module
    docstring holds for all its channels.
    """
    n, outputs, channels = conv.shape
    length = codes.shape[1]
    taps, edits = delta.shape[1], delta.shape[2]
    shift = pad - taps + 1  # position p reaches outputs p + shift .. p + pad
    span = length + taps - 1  # the window of position p is entries p .. p + T - 1 of outputs from ``shift`` on
    none = conv.dtype.type(-np.inf)
    prefix = np.empty((outputs, channels), conv.dtype)
    suffix = np.empty((outputs, channels), conv.dtype)
    forward = np.empty((span, channels), conv.dtype)  # van Herk: maxima from each block's start
    backward = np.empty((span, channels), conv.dtype)  # and to each block's end
    outside = np.empty(channels, conv.dtype)
    for i in range(n):
        a = conv[i]
        prefix[0] = a[0]
        for j in range(1, outputs):
            for c in range(channels):
                prefix[j, c] = max(prefix[j - 1, c], a[j, c])
        suffix[outputs - 1] = a[outputs - 1]
        for j in range(outputs - 2, -1, -1):
            for c in range(channels):
                suffix[j, c] = max(suffix[j + 1, c], a[j, c])
        reference[i] = prefix[outputs - 1]
        for u in range(span):
            j = u + shift
            for c in range(channels):
                value = a[j, c] if 0 <= j < outputs else none
                forward[u, c] = value if u % taps == 0 else max(forward[u - 1, c], value)
        for u in range(span - 1, -1, -1):
            j = u + shift
            for c in range(channels):
                value = a[j, c] if 0 <= j < outputs else none
                backward[u, c] = value if u == span - 1 or u % taps == taps - 1 else max(backward[u + 1, c], value)
        for p in range(length):
            base = codes[i, p]
            first, last = p + shift, p + pad
            t0, t1 = max(0, last - outputs + 1), min(taps, last + 1)  # taps whose output exists
            reached = False
            for c in range(channels):
                before = prefix[first - 1, c] if first >= 1 else none
                after = suffix[last + 1, c] if last + 1 < outputs else none
                outside[c] = max(before, after)
                inside = max(backward[p, c], forward[p + taps - 1, c])
                reached |= inside + rise[base, c] > outside[c]
            for e in range(edits):
                best = pooled[i, p, e]
                best[:] = outside
                if not reached:  # no edit can beat the outside maximum in any channel
                    continue
                for t in range(t0, t1):
                    row, change = a[last - t], delta[base, t, e]
                    for c in range(channels):
                        value = row[c] + change[c]
                        best[c] = value if value > best[c] else best[c]


@functools.cache
def _compiled():
    """The compiled kernel, kept in numba's on-disk cache where one is writable.

    numba looks for a cache folder next to this file, then in the user's cache folder (or
    ``NUMBA_CACHE_DIR``); where none is writable (a read-only course in the grading sandbox) it
    raises, and the kernel is compiled for this process only.
    """
    import numba

    try:
        return numba.njit(cache=True, nogil=True)(_pooled_edits_loop)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return numba.njit(nogil=True)(_pooled_edits_loop)


def pooled_edits(conv: torch.Tensor, codes: torch.Tensor, delta: torch.Tensor, rise: torch.Tensor,
                 pad: int, extra_rows: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The pooled channels of every edit, ``(N L K + extra_rows, C)`` rows (row ``(i L + p) K + e``), and the
    reference's ``(N, C)``.

    ``conv`` ``(N, C, J)`` are a CPU convolution's outputs (float32 or float64), ``codes`` ``(N, L)`` the
    base of each column (4: N), ``delta`` ``(5, T, K, C)`` and ``rise`` ``(5, C)`` the tables of the module
    docstring and ``pad`` the convolution's zero padding. The ``extra_rows`` rows after the edits are
    left for the caller (the reference's rows, so that the head scores them in the same call).
    """
    n, channels = conv.shape[:2]
    length, edits = codes.shape[1], delta.shape[2]
    pooled = torch.empty(n * length * edits + extra_rows, channels, dtype=conv.dtype)
    reference = torch.empty(n, channels, dtype=conv.dtype)
    _compiled()(conv.transpose(1, 2).contiguous().numpy(), codes.contiguous().numpy(), delta.contiguous().numpy(),
                rise.contiguous().numpy(), pad, pooled[:n * length * edits].view(n, length, edits, channels).numpy(),
                reference.numpy())
    return pooled, reference
