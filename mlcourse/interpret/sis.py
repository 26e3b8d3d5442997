"""Sufficient Input Subsets (SIS): the smallest parts of an input that alone keep a decision.

Carter, Mueller, Jain & Gifford (2019), "What made you do this? Understanding
black-box decisions with sufficient input subsets" (AISTATS; arXiv 1810.03805).

A model ``f`` scores an input ``x``; the decision is ``f(x) >= threshold``.
*Masking* a feature replaces it with an uninformative value (the 0.25
background of a DNA position, the mean image's pixel, the mean embedding of a
token). A **sufficient input subset** is a minimal set ``S`` of features such that
``x_S`` -- ``x`` with every feature outside ``S`` masked -- still scores
``f(x_S) >= threshold``. The paper finds them in three steps:

* :func:`backward_selection` masks features one at a time, each time removing
  the feature whose loss hurts the score *least* (every remaining candidate is
  scored, in one batch); the removal order ranks the features, least
  important first;
* :func:`find_sis` adds the features back, most important first, and stops at
  the first set that reaches the threshold: that set is the SIS;
* :func:`sis_collection` masks that SIS for good and repeats, until what is left
  of the input no longer reaches the threshold. The SISes are disjoint: each is
  one separate piece of evidence for the decision (e.g. two binding sites).

``f`` is the model's score (:mod:`mlcourse.interpret.scoring`): its own output
(``output="raw"``, any callable) or, as Carter et al. threshold, the
probability from its logits (``output="probability"``: the sigmoid of one
logit, or the softmax probability of class ``target``). To explain a
*negative* decision (``f(x) < threshold``), pass a model that returns ``-f``
and ``-threshold``. :func:`sis_collections` runs the whole procedure for many
inputs at once: every removal step scores the candidates of all inputs
together. ``fast=True`` screens the candidates of DNA CNNs with the
local-window engine of :mod:`mlcourse.interpret.engines`, and those of image
CNNs (``(C, H, W)`` inputs, any ``groups``) with the window engine of
:mod:`mlcourse.interpret.image_engines` (same result).

What a "feature" is comes from the mask: ``mask_shape`` (a shape that
broadcasts against ``x``: every element is one feature) or ``groups`` (an
integer label per element; elements with one label are one feature). For DNA
``(4, L)`` use ``mask_shape=(1, L)`` (a feature is a position), for an image
``(1, 28, 28)`` ``mask_shape=(1, 28, 28)`` (pixels) or
``groups=features.patch_groups(28, 28, 4)`` (:mod:`mlcourse.interpret.features`),
for embedded tokens ``(T, E)`` ``mask_shape=(T, 1)``. The masked value is the
``baseline`` (broadcasting against ``x``; default 0.25 for DNA ``(4, L)``).
:func:`review_sis` explains token-id models (masked words become a mask token).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import torch

from mlcourse.config import device_of, eval_mode
from mlcourse.datasets.reviews import Vocab
from mlcourse.interpret import engines, image_engines, sis_kernel
from mlcourse.interpret.scoring import OUTPUTS, per_example, probability, score, select

__all__ = [
    "SIS",
    "BackwardSelection",
    "dna_background",
    "mean_image",
    "mean_embedding",
    "apply_mask",
    "backward_selection",
    "find_sis",
    "sis_collection",
    "sis_collections",
    "review_sis",
]


@dataclass
class SIS:
    """One sufficient input subset.

    Attributes
    ----------
    features : numpy.ndarray
        Feature indices (flat indices into the mask), most important first.
    mask : torch.Tensor
        Boolean, shaped like the mask (``mask_shape`` or ``groups``): True on the SIS.
    score : float
        ``f(x_S)``: the score with every feature outside the SIS masked.
    """

    features: np.ndarray
    mask: torch.Tensor
    score: float

    def __len__(self) -> int:
        return len(self.features)


@dataclass
class BackwardSelection:
    """The result of :func:`backward_selection` for one input.

    Attributes
    ----------
    order : numpy.ndarray
        Features in the order they were masked: least important first.
    scores : numpy.ndarray
        ``scores[k]`` is ``f`` after masking ``order[:k + 1]`` (plus any initially masked features).
    start_score : float
        ``f`` before the first removal.
    """

    order: np.ndarray
    scores: np.ndarray
    start_score: float


# --------------------------------------------------------------------------- masks


def dna_background(x: torch.Tensor) -> torch.Tensor:
    """The fully masked DNA input: every position 0.25 for each base, shaped like ``x``."""
    return torch.full_like(torch.as_tensor(x, dtype=torch.float32), 0.25)


def mean_image(images: torch.Tensor) -> torch.Tensor:
    """The mean training image ``(C, H, W)`` of ``images`` ``(N, C, H, W)``: a masked pixel takes its mean value."""
    images = torch.as_tensor(images, dtype=torch.float32)
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"images must be (N, C, H, W) with N > 0, got shape {tuple(images.shape)}")
    return images.mean(dim=0)


def mean_embedding(weight: torch.Tensor, length: int) -> torch.Tensor:
    """The fully masked token input ``(length, E)``: every token is the mean row of ``weight`` ``(V, E)``."""
    weight = torch.as_tensor(weight, dtype=torch.float32).detach()
    if weight.ndim != 2 or weight.shape[0] == 0:
        raise ValueError(f"weight must be an embedding matrix (V, E), got shape {tuple(weight.shape)}")
    if not isinstance(length, int) or length < 1:
        raise ValueError(f"length must be a positive integer, got {length!r}")
    return weight.mean(dim=0).expand(length, -1).clone()


def _labels(shape: tuple[int, ...], mask_shape, groups) -> tuple[torch.Tensor, int]:
    """Feature label of every element (broadcasting against ``shape``) and the number of features."""
    if mask_shape is not None and groups is not None:
        raise ValueError("give either mask_shape or groups, not both")
    if groups is None:
        mask_shape = tuple(shape if mask_shape is None else mask_shape)
        labels = torch.arange(math.prod(mask_shape)).reshape(mask_shape)
        what = f"mask_shape {mask_shape}"
    else:
        labels = torch.as_tensor(groups)
        what = f"groups of shape {tuple(labels.shape)}"
        if labels.dtype in (torch.float16, torch.float32, torch.float64, torch.bool):
            raise ValueError(f"groups must hold integer labels, got dtype {labels.dtype}")
        present = torch.unique(labels)
        if present.numel() == 0 or present[0] != 0 or present[-1] != present.numel() - 1:
            raise ValueError(f"groups must use every label 0..F-1; found labels {present.tolist()[:10]}...")
    try:
        if torch.broadcast_shapes(labels.shape, shape) != tuple(shape):
            raise RuntimeError
    except RuntimeError:
        raise ValueError(f"{what} does not broadcast against inputs of shape {tuple(shape)}") from None
    return labels.long(), int(labels.max()) + 1


def apply_mask(x: torch.Tensor, baseline: torch.Tensor, keep: torch.Tensor,
               labels: torch.Tensor) -> torch.Tensor:
    """Inputs with the features where ``keep`` is False replaced by the ``baseline`` (the masked value).

    ``x`` and ``baseline`` are ``(B, *shape)``, ``keep`` is boolean ``(B, F)`` and
    ``labels`` gives each element's feature (broadcasting against ``shape``).
    """
    element_keep = keep[:, labels.reshape(-1)].reshape(keep.shape[0], *labels.shape)
    return torch.where(element_keep, x, baseline)


class _Scorer:
    """Scores masked inputs ``batch_size`` at a time, as :func:`mlcourse.interpret.scoring.score` does,
    and checks each answer: one score per input, no NaN.

    Its callers hold a module in eval mode for the whole search (:func:`mlcourse.config.eval_mode`)
    and :class:`_Inputs` are on the model's device, so each batch goes to the model directly, under
    ``torch.inference_mode()``: ``score``'s own eval mode and device lookup, per call, cost about as
    much as the model itself on the few rows a screened step scores (~0.2 ms).
    """

    def __init__(self, model, target, output: str, batch_size: int, n: int):
        if not callable(model):
            raise ValueError(f"model must be a callable mapping a batch to scores, got {type(model).__name__}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        self.model, self.batch_size = model, batch_size
        self.pick = select if output == "raw" else probability  # what score() applies to the outputs
        self.targets = per_example(target, n)
        self.calls = 0

    def __call__(self, inputs: _Inputs, rows: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Scores of inputs ``rows`` with only the features ``keep`` (one row each), chunk by chunk."""
        out, n = [], rows.numel()
        for start in range(0, n, self.batch_size):
            stop = min(n, start + self.batch_size)
            batch = inputs.masked(rows[start:stop], keep[start:stop])
            target = None if self.targets is None else self.targets[rows[start:stop]]
            with torch.inference_mode():
                scores = self.pick(self.model(batch), target)
            self.calls += 1
            scores = scores.reshape(-1).double()
            if torch.isnan(scores).any():
                row = start + int(torch.isnan(scores).nonzero()[0])
                raise ValueError(f"the model returned NaN (for candidate {row} of {n} in this step)")
            out.append(scores.cpu())
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


class _Inputs:
    """Many inputs with their fully masked versions and the feature labels, on the model's device."""

    def __init__(self, X, baseline, mask_shape, groups, single: bool, device):
        X = torch.as_tensor(X)
        if X.dtype == torch.bool:
            X = X.float()
        if single:
            X = X.unsqueeze(0)
        if X.ndim < 2 or X.shape[0] == 0:
            raise ValueError(f"inputs must be (N, ...) with N > 0, got shape {tuple(X.shape)}")
        shape = tuple(X.shape[1:])
        if baseline is None:
            if len(shape) != 2 or shape[0] != 4 or not X.is_floating_point():
                raise ValueError(f"pass baseline= (the masked value) for inputs of shape {shape}; "
                                 "only one-hot DNA (4, L) has a default (0.25 per base)")
            baseline = 0.25
        fm = torch.as_tensor(baseline, dtype=X.dtype)
        try:
            self.fully_masked = torch.broadcast_to(fm, X.shape).contiguous().to(device)
        except RuntimeError:
            raise ValueError(f"baseline of shape {tuple(fm.shape)} does not broadcast against the "
                             f"inputs of shape {tuple(X.shape[1:]) if single else tuple(X.shape)}") from None
        self.X = X.to(device)
        self.shape = shape
        labels, self.n_features = _labels(shape, mask_shape, groups)
        self.labels = labels.to(device)

    def masked(self, rows: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        return apply_mask(self.X[rows], self.fully_masked[rows], keep.to(self.X.device), self.labels)


class _Trace:
    """The removal order of a backward selection over the inputs ``rows``, with what is known of its scores.

    ``order`` (R, F) lists the removed features (-1 padded); after step ``k`` the
    score lies in ``[low[:, k], high[:, k]]``, one value where ``exact`` (``f``'s own).
    A screened step whose shortlist holds one candidate chooses it without ``f``
    (:func:`_screened_removal`), so its score is only the screen's interval:
    :meth:`reaches` compares such scores with a threshold where the interval
    decides it, and :meth:`resolve` asks ``f`` for the rest, in one call.
    """

    # a score the screen knows to one value may still differ from f's own in its last bits
    MARGIN = 1e-6

    def __init__(self, rows: torch.Tensor, remaining: torch.Tensor, start: torch.Tensor, min_rows: int = 1):
        self.rows, self.remaining, self.start, self.min_rows = rows, remaining, start, min_rows
        n_rows, n_features = remaining.shape
        self.order = torch.full((n_rows, n_features), -1, dtype=torch.long)
        self.low = torch.full((n_rows, n_features), math.nan, dtype=torch.float64)
        self.high = self.low.clone()
        self.exact = torch.ones(n_rows, n_features, dtype=torch.bool)

    def resolve(self, score: _Scorer, inputs: _Inputs, where: torch.Tensor) -> None:
        """Score with ``f`` the steps ``where`` (R, F) that are not exact yet."""
        owner, step = torch.nonzero(where & ~self.exact, as_tuple=True)
        if not owner.numel():
            return
        # removed[r, j]: the step that removed feature j of row r (F for features never removed)
        n_rows, n_features = self.order.shape
        removed = torch.full((n_rows, n_features + 1), n_features, dtype=torch.long)
        steps = torch.arange(n_features).expand(n_rows, -1)
        removed.scatter_(1, self.order.masked_fill(self.order < 0, n_features), steps)
        keep = self.remaining[owner] & (removed[owner, :n_features] > step[:, None])
        rows = self.rows[owner]
        values = score(inputs, engines.at_least(rows, self.min_rows), engines.at_least(keep, self.min_rows))
        values = values[:rows.numel()]
        self.low[owner, step] = self.high[owner, step] = values
        self.exact[owner, step] = True

    def reaches(self, score: _Scorer, inputs: _Inputs, threshold: float) -> torch.Tensor:
        """``(R, F)``: whether the score after each step is at least ``threshold`` (``f`` resolves close calls)."""
        margin = self.MARGIN * (1 + self.high.abs())
        self.resolve(score, inputs, (self.low - margin < threshold) & (self.high + margin >= threshold))
        return self.low >= threshold

    def scores(self, score: _Scorer, inputs: _Inputs) -> torch.Tensor:
        """``(R, F)``: ``f`` after every step (NaN past the end), resolving every step the screen chose alone."""
        self.resolve(score, inputs, self.order >= 0)
        return self.low


def _backward_selection(score: _Scorer, inputs: _Inputs, rows: torch.Tensor, remaining: torch.Tensor,
                        start: torch.Tensor | None = None, screen=None) -> _Trace:
    """Backward selection for the inputs ``rows`` at once; ``remaining`` (R, F) are unmasked features.

    Returns the :class:`_Trace`: the removal order and the scores, with ``start`` (R,), the
    scores before any removal (computed unless given). With a ``screen`` (:func:`_screen`: DNA or image) only the
    shortlisted candidates are scored by ``f`` (:func:`_screened_removal`).
    """
    if start is None:
        start = score(inputs, rows, remaining)
    trace = _Trace(rows, remaining.clone(), start, 1 if screen is None else screen.MIN_ROWS)
    remaining = remaining.clone()
    n_rows, n_features = remaining.shape
    tracker = None if screen is None else screen.start(inputs, rows, remaining)
    for step in range(int(remaining.sum(dim=1).max()) if n_rows else 0):
        if tracker is None:
            chosen, low = _best_removal(score, inputs, rows, remaining)
            high, exact = low, torch.ones(n_rows, dtype=torch.bool)
        else:
            chosen, low, high, exact = _screened_removal(score, inputs, rows, remaining, tracker)
        active = torch.nonzero(chosen < n_features).reshape(-1)
        remaining[active, chosen[active]] = False
        trace.order[active, step] = chosen[active]
        trace.low[active, step], trace.high[active, step] = low[active], high[active]
        trace.exact[active, step] = exact[active]
        if tracker is not None:
            tracker.remove(active, chosen[active])
    return trace


def _best_removal(score: _Scorer, inputs: _Inputs, rows: torch.Tensor, remaining: torch.Tensor):
    """One step of backward selection: every candidate removal of every row scored by ``f``.

    Returns ``chosen`` (R,), the feature whose removal leaves the highest score
    (ties: the lowest index; ``F`` for a row with nothing left), and ``best`` (R,), that score.
    """
    n_rows, n_features = remaining.shape
    owner, feature = torch.nonzero(remaining, as_tuple=True)  # every candidate removal
    values = score(inputs, rows[owner], _without(remaining, owner, feature))
    best = torch.full((n_rows,), -math.inf, dtype=torch.float64)
    best = best.scatter_reduce(0, owner, values, "amax")
    ties = values == best[owner]  # break ties towards the lowest feature index
    chosen = torch.full((n_rows,), n_features, dtype=torch.long)
    chosen = chosen.scatter_reduce(0, owner[ties], feature[ties], "amin")
    return chosen, best


def _screened_removal(score: _Scorer, inputs: _Inputs, rows: torch.Tensor, remaining: torch.Tensor, tracker):
    """:func:`_best_removal` with the screen's bounds: ``f`` scores only the candidates that may be the best.

    ``tracker`` (the screen's ``start``: :meth:`mlcourse.interpret.engines.SISScreen.start`
    or :meth:`mlcourse.interpret.image_engines.ImageSISScreen.start`) gives the
    interval ``[low, high]`` each candidate's score lies in (one value where it is
    known). The *floor* of a row is its best ``low``: a candidate whose ``high`` is
    below it cannot be chosen, nor one that can at most tie with a known value at
    the floor of a lower feature index (that one wins the tie). So the shortlist of
    a row holds the candidates whose value is not known and at most one known
    candidate: the first at the floor. A shortlist of one is the choice, and ``f`` is
    not called for it. Longer shortlists are scored by ``f`` in one call -- the known
    candidate too, unless the screen's ``KNOWN_IS_EXACT`` (its known values are ``f``'s
    own; otherwise one may differ from ``f``'s in the last bit) -- and the choice
    follows the rule of :func:`_best_removal` on those values. Both selections are compiled
    loops (:func:`mlcourse.interpret.sis_kernel.shortlist` and :func:`~mlcourse.interpret.sis_kernel.choose`:
    microseconds per step, where some twenty small torch operations cost ~0.4 ms).

    Returns ``chosen`` (R,) (``F`` for a row with nothing left), the interval ``low``,
    ``high`` (R,) of the chosen candidate's score, and ``exact`` (R,): True where that is
    ``f``'s own value (``low == high``), False where only the screen bounds it.
    """
    low, high = tracker.interval()
    kernels, known_is_exact = sis_kernel.kernels(), tracker.screen.KNOWN_IS_EXACT
    values, upper, near, scored, alone = kernels.shortlist(low.numpy(), high.numpy(), remaining.numpy(),
                                                           known_is_exact)
    owner, feature = scored.nonzero()
    if owner.size:
        which, what = torch.from_numpy(owner), torch.from_numpy(feature)
        own = _score_at_least(score, inputs, rows[which], _without(remaining, which, what), tracker.screen)
        values[owner, feature] = upper[owner, feature] = own.numpy()
    return tuple(map(torch.from_numpy, kernels.choose(values, upper, near, alone, known_is_exact)))


def _without(remaining: torch.Tensor, owner: torch.Tensor, feature: torch.Tensor) -> torch.Tensor:
    """``remaining[owner]`` with feature ``feature[k]`` of row ``k`` removed: the masks of those candidates."""
    keep = remaining[owner]
    keep[torch.arange(owner.numel()), feature] = False
    return keep


def _score_at_least(score: _Scorer, inputs: _Inputs, rows: torch.Tensor, keep: torch.Tensor, screen):
    """``score(inputs, rows, keep)`` in batches of at least the screen's ``MIN_ROWS`` (the first candidate
    repeated, :func:`mlcourse.interpret.engines.at_least`): a model's matrix kernels for a few rows can
    round differently from those for many."""
    padded = score(inputs, engines.at_least(rows, screen.MIN_ROWS), engines.at_least(keep, screen.MIN_ROWS))
    return padded[:rows.numel()]


def _smallest_sufficient(order, reached, start_reaches, count):
    """find_sis on a removal order: the shortest tail of ``order`` whose score reaches the threshold.

    Keeping the last ``k`` removed features is exactly the input backward selection
    scored after ``count - k`` removals, so no new model calls are needed:
    ``reached[s]`` says whether the score after step ``s`` reaches the threshold,
    ``start_reaches`` whether the score before any removal does. Returns the SIS's
    features (most important first) and the step whose score is the SIS's (-1: the start), or None.
    """
    for k in range(1, count + 1):
        step = count - k - 1
        if (start_reaches if k == count else reached[step]):
            return order[count - k:count][::-1].copy(), step
    return None


def _to_sis(features: np.ndarray, value: float, labels: torch.Tensor, n_features: int) -> SIS:
    flat = torch.zeros(n_features, dtype=torch.bool)
    flat[torch.as_tensor(features, dtype=torch.long)] = True
    return SIS(features=features, mask=flat[labels.cpu()], score=value)


def _as_threshold(threshold) -> float:
    """``threshold`` as a finite float: a number, a NumPy scalar or a one-element tensor."""
    value = None
    if isinstance(threshold, numbers.Real) and not isinstance(threshold, bool):
        value = float(threshold)
    elif isinstance(threshold, torch.Tensor) and threshold.numel() == 1 and threshold.dtype != torch.bool:
        value = float(threshold)
    elif isinstance(threshold, np.ndarray) and threshold.size == 1 and threshold.dtype.kind in "iuf":
        value = float(threshold)
    if value is None or not math.isfinite(value):
        raise ValueError(f"threshold must be a finite number (a float, a NumPy scalar or a one-element "
                         f"tensor), got {threshold!r}")
    return value


def _screen(fast: bool, model, inputs: _Inputs, batch_size: int, output: str, target):
    """The fast path's candidate screen: local windows of DNA positions or of image patches."""
    if not fast:
        return None
    if len(inputs.shape) == 3:
        return image_engines.ImageSISScreen.build(model, inputs, batch_size, output, target)
    return engines.SISScreen.build(model, inputs, batch_size, output, target)


def backward_selection(model, x, *, target=None, baseline=None, mask_shape=None, groups=None,
                       initial_mask=None, output: str = "raw", batch_size: int = 4096,
                       fast: bool = False) -> BackwardSelection:
    """Rank the features of one input by masking them one by one (Carter et al. 2019, Alg. 1).

    At every step each still-unmasked feature is a candidate; all candidates are
    scored in batches and the one whose masking leaves the *highest* score is
    masked (ties: the lowest feature index). ``initial_mask`` (boolean, shaped
    like the mask) marks features already masked (not ranked); the other
    parameters are those of :func:`sis_collection`.

    Returns
    -------
    BackwardSelection
    """
    with eval_mode(model):
        inputs = _Inputs(x, baseline, mask_shape, groups, single=True, device=device_of(model))
        remaining = _initial_remaining(inputs, initial_mask)
        scorer = _Scorer(model, target, output, batch_size, 1)
        trace = _backward_selection(scorer, inputs, torch.zeros(1, dtype=torch.long), remaining,
                                    screen=_screen(fast, model, inputs, batch_size, output, target))
        scores = trace.scores(scorer, inputs)
    count = int(remaining.sum())
    return BackwardSelection(trace.order[0, :count].numpy(), scores[0, :count].numpy(), float(trace.start[0]))


def _initial_remaining(inputs: _Inputs, initial_mask) -> torch.Tensor:
    remaining = torch.ones(1, inputs.n_features, dtype=torch.bool)
    if initial_mask is not None:
        initial = torch.as_tensor(initial_mask, dtype=torch.bool)
        if initial.numel() != inputs.n_features:
            raise ValueError(f"initial_mask has {initial.numel()} entries but there are "
                             f"{inputs.n_features} features")
        remaining[0] = ~initial.reshape(-1)
    return remaining


def find_sis(model, x, *, threshold, target=None, baseline=None, mask_shape=None, groups=None,
             initial_mask=None, output: str = "raw", batch_size: int = 4096, fast: bool = False) -> SIS | None:
    """One sufficient input subset of ``x`` (Carter et al. 2019, Alg. 2 "FindSIS").

    Runs :func:`backward_selection`, then adds features back in reverse removal
    order (most important first) until ``f(x_S) >= threshold``. Parameters as in
    :func:`backward_selection` and :func:`sis_collection`.

    Returns
    -------
    SIS or None
        None when even all unmasked features together stay below the threshold.
    """
    threshold = _as_threshold(threshold)
    inputs = _Inputs(x, baseline, mask_shape, groups, single=True, device=torch.device("cpu"))
    selection = backward_selection(model, x, target=target, baseline=baseline, mask_shape=mask_shape,
                                   groups=groups, initial_mask=initial_mask, output=output,
                                   batch_size=batch_size, fast=fast)
    found = _smallest_sufficient(selection.order, selection.scores >= threshold,
                                 selection.start_score >= threshold, len(selection.order))
    if found is None:
        return None
    features, step = found
    value = selection.start_score if step < 0 else float(selection.scores[step])
    return _to_sis(features, value, inputs.labels, inputs.n_features)


def sis_collection(model, x, *, threshold, target=None, baseline=None, mask_shape=None, groups=None,
                   output: str = "raw", batch_size: int = 4096, fast: bool = False) -> list[SIS]:
    """All disjoint sufficient input subsets of one input (Carter et al. 2019, Alg. 3).

    Finds a SIS, masks it for good, and repeats while the rest of ``x`` still
    reaches ``threshold``. See :func:`sis_collections` for many inputs at once.

    Parameters
    ----------
    model : nn.Module or callable
        Maps a batch ``(B, *x.shape)`` to scores (see ``output``); modules run in
        eval mode on their own device.
    x : torch.Tensor
        One input, e.g. one-hot DNA ``(4, L)`` (:func:`sis_collections`: a batch ``X``).
    threshold : float
        The decision to explain: ``f(x) >= threshold`` (a float, NumPy scalar or 0-d tensor).
    target : None, int or N ints
        Class whose score is thresholded, for ``(B, C)`` outputs.
    baseline : torch.Tensor or float, optional
        The masked value, broadcasting against ``x`` (e.g. :func:`mean_image`);
        default 0.25 for one-hot DNA (:func:`dna_background`), required otherwise.
    mask_shape : tuple, optional
        Shape of the feature mask, broadcasting against ``x``; default ``x.shape``.
    groups : torch.Tensor, optional
        Integer feature labels instead of ``mask_shape`` (e.g.
        :func:`mlcourse.interpret.features.patch_groups`).
    output : {"raw", "probability"}
        Threshold the model's own output, or the probability from its logits
        (:func:`mlcourse.interpret.scoring.probability`).
    batch_size : int
        Masked inputs per model call.
    fast : bool
        Shortlist each step's candidates with a local-window engine: for DNA
        positions (``mask_shape=(1, L)``) of a CNN that starts with convolutions
        (the Zeng et al. models; :class:`mlcourse.interpret.engines.SISScreen`), or
        for images ``(C, H, W)`` of a CNN that starts with ``Conv2d`` / elementwise /
        ``MaxPool2d`` modules, with one class ``target`` (e.g.
        :func:`mlcourse.models.vision.mnist_cnn`;
        :class:`mlcourse.interpret.image_engines.ImageSISScreen`); else a
        ``ValueError``. Same result, far fewer FLOPs.

    Returns
    -------
    list of SIS
        In the order found; **empty** when ``f(x) < threshold`` (nothing to explain:
        the decision is negative -- pass ``-f`` and ``-threshold`` to explain it).
    """
    return sis_collections(model, torch.as_tensor(x)[None], threshold=threshold, target=target,
                           baseline=baseline, mask_shape=mask_shape, groups=groups, output=output,
                           batch_size=batch_size, fast=fast)[0]


def sis_collections(model, X, *, threshold, target=None, baseline=None, mask_shape=None, groups=None,
                    output: str = "raw", batch_size: int = 4096, fast: bool = False) -> list[list[SIS]]:
    """:func:`sis_collection` for every input in ``X`` ``(N, ...)``, computed together.

    Every backward-selection step scores the candidate removals of all inputs
    still in play in shared batches, so a model call holds many inputs' work.
    ``baseline`` broadcasts against ``X[0]`` (one for all) or ``X`` (one each).

    Raises
    ------
    ValueError
        If ``baseline`` or the mask does not broadcast against the inputs, the
        model returns the wrong shape or NaN, or an input's fully masked version
        already reaches the threshold (then every subset would be "sufficient").
    """
    threshold = _as_threshold(threshold)
    with eval_mode(model):
        inputs = _Inputs(X, baseline, mask_shape, groups, single=False, device=device_of(model))
        scorer = _Scorer(model, target, output, batch_size, inputs.X.shape[0])
        return _collections(scorer, threshold, inputs, _screen(fast, model, inputs, batch_size, output, target))


def _collections(score: _Scorer, threshold: float, inputs: _Inputs, screen) -> list[list[SIS]]:
    n, n_features = inputs.X.shape[0], inputs.n_features
    everything = torch.arange(n)
    full = score(inputs, everything, torch.ones(n, n_features, dtype=torch.bool))
    empty = score(inputs, everything, torch.zeros(n, n_features, dtype=torch.bool))
    undefined = (full >= threshold) & (empty >= threshold)
    if undefined.any():
        i = int(torch.nonzero(undefined)[0])
        raise ValueError(f"input {i} fully masked already scores {float(empty[i]):.4g} >= threshold "
                         f"{threshold}: no feature is needed, so SIS is undefined (raise the threshold)")
    remaining = torch.ones(n, n_features, dtype=torch.bool)
    found: list[list[SIS]] = [[] for _ in range(n)]
    active = everything
    while active.numel():
        current = score(inputs, active, remaining[active])
        going = (current >= threshold) & remaining[active].any(dim=1)
        active, current = active[going], current[going]
        if not active.numel():
            break
        trace = _backward_selection(score, inputs, active, remaining[active], current, screen)
        reached = trace.reaches(score, inputs, threshold).numpy()
        counts = remaining[active].sum(dim=1)
        # the full remaining set reached the threshold above, so every row has a SIS
        hits = [_smallest_sufficient(trace.order[row].numpy(), reached[row], True, int(counts[row]))
                for row in range(active.numel())]
        steps = torch.tensor([step for _, step in hits], dtype=torch.long)
        trace.resolve(score, inputs, torch.arange(n_features) == steps[:, None])  # the SISes' own scores
        for row, (i, (features, step)) in enumerate(zip(active.tolist(), hits)):
            value = float(trace.start[row] if step < 0 else trace.low[row, step])
            found[i].append(_to_sis(features, value, inputs.labels, n_features))
            remaining[i, torch.as_tensor(features)] = False
    return found


def review_sis(model, ids: torch.Tensor, *, threshold, mask_id: int = Vocab.mask_id,
               batch_size: int = 4096) -> list[list[np.ndarray]]:
    """Disjoint sufficient input subsets (Carter et al. 2019) of the words of each review.

    A word is masked by replacing its id with ``mask_id`` (embedded as the mean
    word, see :class:`mlcourse.models.text.MeanMaskEmbedding`); a SIS is a minimal
    set of word positions that alone keeps ``model(review) >= threshold``. Reviews
    of equal length are explained together by :func:`sis_collections`, without
    padding, so padding is never part of a SIS; the ids stay integers throughout.
    To explain low ratings, pass a model that returns ``1 - rating`` and ``1 - threshold``.

    Parameters
    ----------
    model : nn.Module or callable
        Token ids ``(N, T)`` -> ratings ``(N,)`` (e.g. :class:`mlcourse.models.text.LSTMRater`).
    ids : torch.Tensor
        Right-padded integer token ids ``(N, T)`` from :meth:`mlcourse.datasets.reviews.Vocab.encode`.
    threshold : float
        The decision to explain: ``rating >= threshold``.

    Returns
    -------
    list of list of numpy.ndarray
        Per review, its SISes as sorted token positions; empty for a review rated below the threshold.
    """
    ids = torch.as_tensor(ids)
    if ids.ndim != 2 or ids.is_floating_point():
        raise ValueError(f"ids must be integer token ids of shape (N, T), got {ids.dtype} {tuple(ids.shape)}")
    threshold = _as_threshold(threshold)
    lengths = (ids != Vocab.pad_id).sum(dim=1)
    above = (score(model, ids, batch_size=batch_size) >= threshold).cpu()
    found: list[list[np.ndarray]] = [[] for _ in range(len(ids))]
    for length in torch.unique(lengths[above]).tolist():
        rows = torch.nonzero(above & (lengths == length)).flatten()
        batch = ids[rows, :length]
        collections = sis_collections(model, batch, threshold=threshold, baseline=torch.full_like(batch[0], mask_id),
                                      mask_shape=(length,), batch_size=batch_size)
        for row, collection in zip(rows.tolist(), collections):
            found[row] = [np.sort(s.features) for s in collection]
    return found
