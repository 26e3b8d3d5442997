"""Compiled inner loops of SIS's backward selection for a convolution followed by a global max pool.

:class:`mlcourse.interpret.engines._CompiledTracker` keeps, for every input ``r``
of a backward selection, the first convolution's outputs with the current masks,
and asks at every step what the global max pool of each channel would be if one
more position ``q`` were masked. The arithmetic is the same as
:class:`mlcourse.interpret.engines._MaskingTracker`'s, but a step is two loops
over small arrays, and on the CPU a loop compiled by numba costs a few
microseconds where each of the ~150 small torch operations of that tracker has a
fixed cost of several: :func:`pooled` and :func:`mask`, with one helper for
their running maxima (:func:`running_max`). Every screened step, DNA or image,
then picks its shortlist and its choice with :func:`shortlist` and
:func:`choose`. The functions here are plain Python (readable, and testable
without numba); :func:`kernels` compiles them on first use.

Notation (one input ``r``, one channel ``c``; ``T`` taps, ``pad`` zero columns each side):

* ``conv[r, c]`` holds the convolution's outputs with ``T - 1`` entries of ``-inf``
  on each side, so the outputs reading input position ``q`` (the window ``V(q)``)
  are ``conv[r, c, q + pad : q + pad + T]`` for every ``q``, at the ends too;
* ``table[k, c, u]`` is what masking a position whose change (masked minus
  original column) is the ``k``-th distinct one adds to output ``q + pad + u`` of
  that padded row (it reads ``q`` through tap ``T - 1 - u``); ``codes[r, q]`` is
  ``k`` for position ``q``, and ``rise[k, c] = max_u table[k, c, u]``;
* ``bound[r, c, q] = max V(q) + rise[codes[r, q], c]`` bounds the pooled window
  after masking ``q`` (float rounding is monotone); ``inside[r, c, q]``, the exact
  maximum of ``conv + table`` over ``V(q)``, is computed only where that bound can
  beat the maximum outside the window, and kept until a step changes ``V(q)``
  (``stale``).
"""

from __future__ import annotations

import functools
import math
import types

import numpy as np

from mlcourse.interpret.compiled import compile_loop


def running_max(values, out, forward):
    """``out[i]``: the maximum of ``values[:i + 1]`` when ``forward``, else of ``values[i:]`` (one pass)."""
    n = values.shape[0]
    running = -math.inf
    for k in range(n):
        i = k if forward else n - 1 - k
        running = max(running, values[i])
        out[i] = running


def pooled(conv, table, codes, remaining, bound, inside, stale, pad, floor, last, out, where):
    """The pooled values of the remaining candidates whose values changed; returns how many.

    ``last[r, q, c]`` holds the pooled value of channel ``c`` after masking ``q``
    of input ``r``, as of the previous call (NaN at first). Each call updates it for
    every remaining ``(r, q)``, and those whose ``C`` values differ from before go
    to ``out[m]`` with ``where[m] = r L + q``, ``m = 0, 1, ...``: only they need the
    rest of the model (a step far from ``q`` rarely changes its pooled values).

    The pooled value of channel ``c`` after masking ``q`` is the larger of the
    maximum outside ``V(q)`` (read from prefix and suffix maxima of the row) and
    ``inside``, raised to ``floor`` (0 when only ReLUs follow the pool: ``relu`` of
    anything below 0 is 0, so the rest of the model sees the same; ``-inf``
    otherwise). Where ``bound`` is at most the larger of the outside maximum and
    ``floor``, ``inside`` cannot change that value and is not needed; otherwise it is
    computed if ``stale``.
    """
    n, channels, span = conv.shape
    taps, length = table.shape[2], codes.shape[1]
    prefix, suffix = np.empty(span), np.empty(span)
    changed = np.empty(length, dtype=np.bool_)
    m = 0
    for r in range(n):
        changed[:] = False
        for c in range(channels):
            row = conv[r, c]
            running_max(row, prefix, True)
            running_max(row, suffix, False)
            for q in range(length):
                if not remaining[r, q]:
                    continue
                start = q + pad  # V(q) is row[start : start + taps]
                outside = prefix[start - 1] if start > 0 else -math.inf
                if start + taps < span:
                    outside = max(outside, suffix[start + taps])
                value = max(outside, floor)
                if bound[r, c, q] > value:
                    if stale[r, c, q]:
                        code, best = codes[r, q], -math.inf
                        for u in range(taps):
                            best = max(best, row[start + u] + table[code, c, u])
                        inside[r, c, q] = best
                        stale[r, c, q] = False
                    value = max(value, inside[r, c, q])
                if not value == last[r, q, c]:  # NaN the first time
                    last[r, q, c] = value
                    changed[q] = True
        for q in range(length):
            if changed[q]:
                out[m] = last[r, q]
                where[m] = r * length + q
                m += 1
    return m


def mask(conv, table, rise, codes, bound, stale, which, positions, pad):
    """Mask position ``positions[i]`` of input ``which[i]``: add its change to the outputs of its window.

    The candidates ``q`` whose window meets the changed outputs (``|q - p| < T``) get a
    new ``bound`` and are marked ``stale``. Their window maxima are sliding maxima of
    width ``T``, by van Herk and Gil-Werman's method: cut the values into blocks of
    ``T``; a window is the end of one block and the start of the next, so it is the
    larger of a running maximum to its block's end (``tail``) and one from the next
    block's start (``head``) -- three passes instead of ``T`` comparisons per window.
    The outputs stay within float64 rounding of a fresh convolution (one addition
    per step), far below the screen's error bound.
    """
    channels, taps, length = conv.shape[1], table.shape[2], codes.shape[1]
    head, tail = np.empty(3 * taps), np.empty(3 * taps)
    for i in range(which.shape[0]):
        r, p = which[i], positions[i]
        code, start = codes[r, p], positions[i] + pad
        lo, hi = max(p - taps + 1, 0), min(p + taps - 1, length - 1)
        count = hi - lo + 1
        extent = count + taps - 1  # the window maxima of lo..hi read row[lo + pad : lo + pad + extent]
        for c in range(channels):
            row = conv[r, c]
            for u in range(taps):
                row[start + u] += table[code, c, u]  # the -inf padding stays -inf
            base = lo + pad
            for block in range(0, extent, taps):  # blocks [block, end)
                end = min(block + taps, extent)
                running_max(row[base + block:base + end], head[block:end], True)
                running_max(row[base + block:base + end], tail[block:end], False)
            for j in range(count):
                q = lo + j
                bound[r, c, q] = max(tail[j], head[j + taps - 1]) + rise[codes[r, q], c]
                stale[r, c, q] = True


def shortlist(low, high, remaining, known_is_exact):
    """The candidates of one step of a screened backward selection that may be the best, and which ``f`` scores.

    ``low``, ``high`` ``(R, F)``: the interval each candidate's score lies in (one value where
    the screen knows it); ``remaining`` ``(R, F)``: the candidates. The *floor* of a row is its
    best ``low``. A candidate whose ``high`` is below it cannot be chosen, nor one whose
    ``high`` only ties with a known value (``low == high``) at the floor of a lower feature
    index, which wins the tie. So the shortlist (``near``) holds the candidates above the floor
    and the first known one at it. A shortlist of one (``alone``) is the choice; in the others
    ``f`` scores (``scored``) every candidate, or with ``known_is_exact`` (the screen's known
    values are ``f``'s own) every one whose value is not known.

    Returns ``(values, upper, near, scored, alone)``: ``values`` and ``upper`` ``(R, F)`` are
    ``low`` and ``high`` on the shortlist, ``-inf`` elsewhere (:func:`choose` reads them once
    ``f``'s values are written in); ``near`` and ``scored`` ``(R, F)`` and ``alone`` ``(R,)`` are boolean.
    """
    n_rows, n_features = low.shape
    values, upper = np.full((n_rows, n_features), -math.inf), np.full((n_rows, n_features), -math.inf)
    near, scored = np.zeros((n_rows, n_features), np.bool_), np.zeros((n_rows, n_features), np.bool_)
    alone = np.zeros(n_rows, np.bool_)
    for r in range(n_rows):
        floor, first = -math.inf, n_features
        for q in range(n_features):
            if remaining[r, q]:
                floor = max(floor, low[r, q])
        for q in range(n_features):
            if remaining[r, q] and low[r, q] == high[r, q] and low[r, q] == floor:
                first = q
                break
        count = 0
        for q in range(n_features):
            if remaining[r, q] and (high[r, q] > floor or (high[r, q] == floor and q <= first)):
                near[r, q] = True
                values[r, q], upper[r, q] = low[r, q], high[r, q]
                count += 1
        alone[r] = count == 1
        if not alone[r]:
            for q in range(n_features):
                scored[r, q] = near[r, q] and not (known_is_exact and low[r, q] == high[r, q])
    return values, upper, near, scored, alone


def choose(values, upper, near, alone, known_is_exact):
    """The choice of each row among its shortlist (:func:`shortlist`), once ``f``'s values are in ``values``.

    The rule of the plain path: the highest value, ties to the lowest feature index. Returns
    ``(chosen, best, best_high, exact)`` ``(R,)``: the feature (``F`` for a row without
    candidates), its value and the top of its interval, and whether that value is ``f``'s own:
    a known value (``best == best_high``) when ``known_is_exact``, else any value of a scored
    shortlist (one not ``alone``).
    """
    n_rows, n_features = values.shape
    chosen = np.full(n_rows, n_features, np.int64)
    best, best_high = np.full(n_rows, -math.inf), np.full(n_rows, -math.inf)
    exact = np.zeros(n_rows, np.bool_)
    for r in range(n_rows):
        for q in range(n_features):
            if near[r, q] and (chosen[r] == n_features or values[r, q] > best[r]):
                chosen[r], best[r] = q, values[r, q]
        if chosen[r] < n_features:
            best_high[r] = upper[r, chosen[r]]
        exact[r] = best[r] == best_high[r] if known_is_exact else not alone[r]
    return chosen, best, best_high, exact


@functools.cache
def kernels() -> types.SimpleNamespace:
    """:func:`pooled`, :func:`mask`, :func:`shortlist` and :func:`choose` compiled by numba
    (:func:`mlcourse.interpret.compiled.compile_loop`), as ``kernels().pooled`` and so on, once per process."""
    helper = compile_loop(running_max)

    def calling_compiled(function):
        """``function`` (same code) with its calls of :func:`running_max` going to ``helper``: numba
        compiles a call of another function only when that one is compiled too."""
        return types.FunctionType(function.__code__, {**function.__globals__, "running_max": helper},
                                  function.__name__)

    loops = (calling_compiled(pooled), calling_compiled(mask), shortlist, choose)
    return types.SimpleNamespace(**{f.__name__: compile_loop(f) for f in loops})
