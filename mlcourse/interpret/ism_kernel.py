"""A compiled (numba) kernel: the pooled channels of every single-base edit of a conv -> global max pool model.

The 1-layer Zeng et al. models are ``conv1d(4 -> C, width T)``, a monotone map (ReLU), a max pool over
the whole length and a dense head. ISM asks for the head's output after every single-base edit; this
module computes the pooled vector each edit gives, so that the head runs once on all of them
(:meth:`mlcourse.interpret.engines._LocalPlan._by_candidates`).

The method
----------
Take one sequence. Its pre-activations are ``a[j, c]``, ``j = 0 .. J-1`` (outputs), ``c = 0 .. C-1``
(channels), with ``a[j, c] = sum_t W[c, :, t] . x[j - pad + t]`` plus the bias. Writing a new column
``x'`` over the base ``x[p]`` at position ``p`` changes only the outputs that read ``p``,
``j = p + pad - t`` for the taps ``t = 0 .. T-1`` (those in ``0 .. J-1``), each by a number that depends
on the channel, the tap, the old base ``b = x[p]`` and the edit alone: a lookup table,

    delta[b, t, s, c] = W[c, :, t] . x'_s  -  W[c, b, t]        (old term 0 for an N, code 4),

for the edit in slot ``s`` of a position holding ``b`` (ISM's three substitutions of ``b``). The pooled
value of channel ``c`` after that edit is

    max( outside(p, c),  max_t a[p + pad - t, c] + delta[b, t, s, c] ),

with ``outside(p, c)`` the maximum of ``a[:, c]`` over the outputs the edit does not reach: the prefix
maximum just before the window or the suffix maximum just after it (``-inf`` where there is none).

*The loop order.* The innermost loop runs over the edit slots and channels together, ``s C + c``: the
pooled vectors of a position's edits are one contiguous row of ``S C`` numbers, its table row
``delta[b, t]`` is contiguous too, and the sequence's outputs are copied once into rows repeated ``S``
times, ``a[j, c]`` at ``s C + c``. Each tap is then one add and one maximum over a contiguous row of
``S C`` numbers with no index looked up, which the compiler turns into vector instructions (48 numbers
for 16 channels, 384 for 128). Every position costs the same, ``T S C`` of these; the prefix and
suffix maxima cost ``O(J S C)`` per sequence.

The monotone map (ReLU) commutes with the max, ``relu(max(u, v)) = max(relu(u), relu(v))``, so the kernel
returns pre-activation maxima and the caller maps them afterwards. The maxima are exact: each edited
output is the reference output plus one table entry, the same sum whatever else the sequence holds.
numba is imported only when the kernel is first needed, so importing the course package stays cheap.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from mlcourse.interpret.compiled import compile_loop

__all__ = ["pooled_edits", "column_codes", "placed"]


def _pooled_edits_loop(conv, codes, delta, pad, pooled, reference):
    """The kernel's body (compiled by :func:`_compiled`; see the module docstring for the method).

    ``conv`` ``(N, C, J)``: the convolution's outputs; ``codes`` ``(N, L)`` the base of each column (4: N);
    ``delta`` ``(5, T, S C)`` the table of the module docstring, entry ``[b, t, s C + c]``; ``pad`` the
    convolution's zero padding. Writes ``pooled[i L + p, s C + c]`` ``(N L, S C)``: channel ``c`` pooled
    after the edit in slot ``s`` of position ``p`` of sequence ``i``, and ``reference[i, c]`` ``(N, C)``,
    the pooled channels of the sequence itself.

    The maxima are comparisons, ``u if u > v else v``, not ``max(u, v)``: numba's ``max`` handles NaN
    apart, which costs the loops a fifth of their time (1layer: 1.80 -> 1.36 ms per 60 sequences).
    """
    n, channels, outputs = conv.shape
    length, taps, width = codes.shape[1], delta.shape[1], delta.shape[2]
    slots = width // channels
    none = conv.dtype.type(-np.inf)
    a = np.empty((outputs, width), conv.dtype)  # one sequence's outputs, repeated for each slot
    prefix, suffix = np.empty((outputs, width), conv.dtype), np.empty((outputs, width), conv.dtype)
    for i in range(n):
        for c in range(channels):
            for j in range(outputs):
                for s in range(slots):
                    a[j, s * channels + c] = conv[i, c, j]
        prefix[0], suffix[outputs - 1] = a[0], a[outputs - 1]
        for j in range(1, outputs):  # prefix and suffix maxima, two independent chains in one loop
            up, before, here = prefix[j], prefix[j - 1], a[j]
            down, after, there = suffix[outputs - 1 - j], suffix[outputs - j], a[outputs - 1 - j]
            for w in range(width):
                up[w] = here[w] if here[w] > before[w] else before[w]
                down[w] = there[w] if there[w] > after[w] else after[w]
        reference[i] = prefix[outputs - 1, :channels]
        for p in range(length):
            first, last = p + pad - taps + 1, p + pad  # the outputs that read position p
            row = pooled[i * length + p]
            if first >= 1 and last + 1 < outputs:
                before, after = prefix[first - 1], suffix[last + 1]
                for w in range(width):
                    row[w] = after[w] if after[w] > before[w] else before[w]
            elif first >= 1:
                row[:] = prefix[first - 1]
            elif last + 1 < outputs:
                row[:] = suffix[last + 1]
            else:
                row[:] = none
            table = delta[codes[i, p]]
            for t in range(max(0, last - outputs + 1), min(taps - 1, last) + 1):
                here, change = a[last - t], table[t]
                for w in range(width):
                    value = here[w] + change[w]
                    row[w] = value if value > row[w] else row[w]


def _column_codes_loop(X, codes):
    """Write ``codes[i, p]``, the base of column ``p`` of ``X[i]`` (4 for an all-zero column, an N), and
    return True; return False as soon as some column is neither one-hot nor all zeros (a soft value, a
    NaN, two ones), leaving ``codes`` half-written."""
    n, bases, length = X.shape
    for i in range(n):
        for p in range(length):
            code = 4
            for b in range(bases):
                value = X[i, b, p]
                if value == 1 and code == 4:
                    code = b
                elif value != 0:
                    return False
            codes[i, p] = code
    return True


def _placed_loop(codes, scores, ref, out):
    """Write ISM's ``out[i, b, p]`` ``(N, 4, L)``: the score ``scores[i, p, s]`` ``(N, L, 3)`` of the
    substitution in slot ``s`` of a column holding base ``a``, which writes base ``(a + s + 1) % 4``, minus
    ``ref[i]``; 0 at the base present (every code is a base, 0 .. 3)."""
    n, length, slots = scores.shape
    for i in range(n):
        for p in range(length):
            a = codes[i, p]
            out[i, a, p] = 0
            for s in range(slots):
                out[i, (a + s + 1) % 4, p] = scores[i, p, s] - ref[i]


@functools.cache
def _compiled(loop):
    """``loop`` compiled (:func:`mlcourse.interpret.compiled.compile_loop`), once per process."""
    return compile_loop(loop)


def column_codes(X: torch.Tensor) -> torch.Tensor | None:
    """``(N, L)`` int64: the base of each one-hot column of the CPU tensor ``X`` ``(N, 4, L)``, 4 for an
    all-zero column (N); None when some column is neither. One pass over ``X``, stopping at the first
    column that fails (the torch expression in :meth:`mlcourse.interpret.engines._LocalPlan._column_codes`
    makes five passes and five temporaries)."""
    codes = torch.empty(X.shape[0], X.shape[2], dtype=torch.int64)
    return codes if _compiled(_column_codes_loop)(X.contiguous().numpy(), codes.numpy()) else None


def placed(codes: torch.Tensor, scores: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``(N, 4, L)``: the scores ``(N, L, 3)`` of the three substitutions of each clean column (base codes
    ``codes`` ``(N, L)``, no N) minus ``ref`` ``(N,)``, at their bases; 0 at the base present."""
    out = torch.empty(codes.shape[0], 4, codes.shape[1], dtype=scores.dtype)
    _compiled(_placed_loop)(codes.contiguous().numpy(), scores.contiguous().numpy(),
                            ref.to(scores.dtype).contiguous().numpy(), out.numpy())
    return out


def pooled_edits(conv: torch.Tensor, codes: torch.Tensor, delta: torch.Tensor, pad: int,
                 extra_rows: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The pooled channels of every edit, a table ``(N L S + extra_rows, C)`` (edit slot ``s`` at position
    ``p`` of sequence ``i`` in row ``(i L + p) S + s``), and the reference's ``(N, C)``.

    ``conv`` ``(N, C, J)`` are a CPU convolution's outputs (float32 or float64), ``codes`` ``(N, L)`` the
    base of each input column (4: N), ``delta`` ``(5, T, S, C)`` what edit slot ``s`` of a column holding
    base ``b`` adds to the output reading it through tap ``t`` (the module docstring) and ``pad`` the
    convolution's zero padding. The ``extra_rows`` rows after the edits are left for the caller (the
    reference, so that the rest of the model scores it in the same call).
    """
    n, channels = conv.shape[:2]
    length, taps, slots = codes.shape[1], delta.shape[1], delta.shape[2]
    table = torch.empty(n * length * slots + extra_rows, channels, dtype=conv.dtype)
    reference = torch.empty(n, channels, dtype=conv.dtype)
    _compiled(_pooled_edits_loop)(conv.contiguous().numpy(), codes.contiguous().numpy(),
                delta.reshape(5, taps, slots * channels).contiguous().numpy(), pad,
                table[:n * length * slots].view(n * length, slots * channels).numpy(), reference.numpy())
    return table, reference
