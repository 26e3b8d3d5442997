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

a lookup table. The pooled value after edit ``e`` is

    max( outside(p),  max_t a[p + pad - t] + delta[c, x[p], e, t] ),

with ``outside(p)`` the maximum of ``a`` over the outputs the edit does not reach: the prefix maximum
just before the window, or the suffix maximum just after it (``-inf`` where there is none).

*How it is summed.* ISM's edits write the same few columns whatever the base (the four bases), so the
kernel computes, per tap, ``a[j] - W[c, :, t] . x[p]`` (the output without the old base's term: with a
one-hot ``x`` the dot product is exactly ``W[c, x[p], t]``, or 0 for an N) once, and adds each column's
``W[c, :, t] . x'_k`` to it: the running maximum over the taps of each column ``k`` is then a loop over
contiguous positions with nothing looked up, which the compiler vectorizes. A position's edits are
chosen among the columns by its base (``choice``: the three substitutions ``(a + 1) % 4 .. (a + 3) % 4``).

*Pruning.* ``rise[c, a] = max_{e, t} delta[c, a, e, t]`` bounds what any edit of base ``a`` adds, and
``inside(p)``, the maximum of ``a`` over the window (a sliding maximum), bounds what the window holds.
If ``inside(p) + rise[c, x[p]] <= outside(p)``, no edit can lift the window over the outside maximum:
the pooled value is ``outside(p)`` for every edit. The kernel visits, per channel, only the positions
from the first to the last that fail this test (a contiguous range keeps the loops vectorized), and
gives the others ``outside(p)``. In exact arithmetic the skip changes nothing; in floats a skipped
edit's sum could have rounded above ``outside(p)`` by at most its own rounding error, the same order as
the difference between this sum and a forward pass of the mutant.

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

from mlcourse.interpret.compiled import compile_loop

__all__ = ["pooled_edits"]


def _pooled_edits_loop(conv, X, codes, weight, written, choice, rise, pad, pooled, reference):
    """The kernel's body (compiled by :func:`_compiled`; see the module docstring for the method).

    ``conv`` ``(N, C, J)``: the convolution's outputs; ``X`` ``(N, 4, L)``: the one-hot input and ``codes``
    ``(N, L)`` the base of each column (4: N); ``weight`` ``(C, T, 4)`` and ``written`` ``(C, T, K)``, what a
    column adds through each tap (``written[c, t, k] = W[c, :, t] . columns[k]``); ``choice`` ``(5, S)``:
    slot ``s`` of a position holding code ``a`` takes column ``choice[a, s]``; ``rise`` ``(C, 5)``; ``pad``
    the convolution's zero padding. Writes ``pooled[c, i, s, p]`` ``(C, N, S, L)`` and ``reference[i, c]``.

    The loops over positions are innermost, over contiguous slices indexed from 0 (numba then proves
    every index non-negative, drops its wrap-around test, and the compiler vectorizes them).
    """
    n, channels, outputs = conv.shape
    length = X.shape[2]
    taps, columns, slots = written.shape[1], written.shape[2], choice.shape[1]
    shift = pad - taps + 1  # position p reaches outputs p + shift .. p + pad
    span = length + taps - 1  # the window of position p: entries p .. p + T - 1 of the outputs from ``shift`` on
    none = conv.dtype.type(-np.inf)
    prefix, suffix = np.empty(outputs, conv.dtype), np.empty(outputs, conv.dtype)
    forward, backward = np.empty(span, conv.dtype), np.empty(span, conv.dtype)  # van Herk's running maxima
    outside, removed = np.empty(length, conv.dtype), np.empty(length, conv.dtype)
    best = np.empty((columns, length), conv.dtype)
    for i in range(n):
        x, code = X[i], codes[i]
        for c in range(channels):
            a = conv[i, c]
            # prefix and suffix maxima, two independent chains in one loop
            prefix[0], suffix[outputs - 1] = a[0], a[outputs - 1]
            for j in range(1, outputs):
                prefix[j] = max(prefix[j - 1], a[j])
                suffix[outputs - 1 - j] = max(suffix[outputs - j], a[outputs - 1 - j])
            reference[i, c] = prefix[outputs - 1]
            # running maxima forwards and backwards within blocks of T window entries (-inf off the ends)
            for block in range(0, span, taps):
                end = min(block + taps, span)
                ahead = behind = none
                for u in range(end - block):
                    j, k = block + u + shift, end - 1 - u + shift
                    ahead = max(ahead, a[j] if 0 <= j < outputs else none)
                    behind = max(behind, a[k] if 0 <= k < outputs else none)
                    forward[block + u], backward[end - 1 - u] = ahead, behind
            # outside maxima, and the positions from ``lo`` to ``hi`` where some edit may beat them
            lo, hi = length, -1
            for p in range(length):
                first, last = p + shift, p + pad
                before = prefix[first - 1] if first >= 1 else none
                after = suffix[last + 1] if last + 1 < outputs else none
                outside[p] = max(before, after)
                if max(backward[p], forward[p + taps - 1]) + rise[c, code[p]] > outside[p]:
                    lo, hi = min(lo, p), p
            for k in range(columns):
                best[k] = outside
            for t in range(taps):  # tap t: the edit at p changes output p + pad - t
                start, stop = max(lo, t - pad), min(hi + 1, outputs + t - pad)
                if start >= stop:
                    continue
                count = stop - start
                w = weight[c, t]
                x0, x1, x2, x3 = x[0, start:stop], x[1, start:stop], x[2, start:stop], x[3, start:stop]
                source, kept = a[start + pad - t:stop + pad - t], removed[:count]
                for q in range(count):  # the output without the old base's term (one-hot: exact)
                    kept[q] = source[q] - (x0[q] * w[0] + x1[q] * w[1] + x2[q] * w[2] + x3[q] * w[3])
                for k in range(columns):
                    add, row = written[c, t, k], best[k, start:stop]
                    for q in range(count):
                        value = kept[q] + add
                        row[q] = value if value > row[q] else row[q]
            for s in range(slots):
                out = pooled[c, i, s]
                for p in range(length):
                    out[p] = best[choice[code[p], s], p]


@functools.cache
def _compiled():
    """The compiled kernel (:func:`mlcourse.interpret.compiled.compile_loop`), once per process."""
    return compile_loop(_pooled_edits_loop)


def pooled_edits(conv: torch.Tensor, X: torch.Tensor, codes: torch.Tensor, weight: torch.Tensor,
                 written: torch.Tensor, choice: torch.Tensor, rise: torch.Tensor, pad: int,
                 extra_rows: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The pooled channels of every edit, a channel-major table ``(C, N S L + extra_rows)`` (edit slot ``s``
    at position ``p`` of sequence ``i`` in column ``(i S + s) L + p``), and the reference's ``(N, C)``.

    ``conv`` ``(N, C, J)`` are a CPU convolution's outputs (float32 or float64) for the one-hot ``X``
    ``(N, 4, L)``, whose column codes are ``codes`` ``(N, L)`` (4: N); ``weight`` ``(C, T, 4)`` is the
    convolution's weight with taps before bases, ``written`` ``(C, T, K)`` what each of the ``K`` edit
    columns adds through each tap, ``choice`` ``(5, S)`` the column of each slot by code, ``rise``
    ``(C, 5)`` the bound of the module docstring and ``pad`` the convolution's zero padding. The
    ``extra_rows`` columns after the edits are left for the caller (the reference, so that the rest of
    the model scores it in the same call).
    """
    n, channels = conv.shape[:2]
    length, slots = X.shape[-1], choice.shape[1]
    table = torch.empty(channels, n * slots * length + extra_rows, dtype=conv.dtype)
    reference = torch.empty(n, channels, dtype=conv.dtype)
    _compiled()(*(v.contiguous().numpy() for v in (conv, X, codes, weight, written, choice, rise)), pad,
                table[:, :n * slots * length].view(channels, n, slots, length).numpy(), reference.numpy())
    return table, reference
