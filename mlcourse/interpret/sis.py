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

To explain a *negative* decision (``f(x) < threshold``), pass ``-f`` and
``-threshold``. :func:`sis_collections` runs the whole procedure for many inputs
at once: every removal step scores the candidates of all inputs together.

What a "feature" is comes from the mask: ``mask_shape`` (a shape that
broadcasts against ``x``: every element is one feature) or ``groups`` (an
integer label per element; elements with one label are one feature). For DNA
``(4, L)`` use ``mask_shape=(1, L)`` (a feature is a position), for an image
``(1, 28, 28)`` ``mask_shape=(1, 28, 28)`` (pixels) or ``groups=patch_groups(28, 28, 4)``,
for embedded tokens ``(T, E)`` ``mask_shape=(T, 1)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mlcourse.interpret import ism
from mlcourse.train import eval_mode

__all__ = [
    "SIS",
    "BackwardSelection",
    "dna_background",
    "mean_image",
    "mean_embedding",
    "patch_groups",
    "probability",
    "apply_mask",
    "backward_selection",
    "find_sis",
    "sis_collection",
    "sis_collections",
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


def patch_groups(height: int, width: int, patch: int) -> torch.Tensor:
    """Labels ``(1, height, width)`` that make square ``patch x patch`` blocks single features.

    Blocks are numbered row by row; the last row/column of blocks may be narrower.
    """
    if not all(isinstance(v, int) and v > 0 for v in (height, width, patch)):
        raise ValueError(f"height, width and patch must be positive integers, got {height}, {width}, {patch}")
    per_row = math.ceil(width / patch)
    rows = torch.arange(height) // patch
    cols = torch.arange(width) // patch
    return (rows[:, None] * per_row + cols[None, :]).unsqueeze(0)


def probability(model, target: int | None = None):
    """``batch -> probabilities (B,)`` for a model that returns logits (eval mode, no gradients).

    A model with one logit per input ``(B,)`` or ``(B, 1)`` gives its sigmoid; a
    model with ``C`` class logits ``(B, C)`` gives the softmax probability of
    class ``target``. Carter et al. threshold such probabilities.

    The returned function carries ``model`` and ``target`` as attributes: for a
    DNA CNN with one logit, SIS uses them to screen candidate removals cheaply
    (see :func:`backward_selection`).
    """

    def f(batch: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), eval_mode(model):
            out = model(batch)
        if target is None and (out.ndim == 1 or out.ndim == 2 and out.shape[1] == 1):
            return torch.sigmoid(out.reshape(-1))
        if target is not None and out.ndim == 2:
            return torch.softmax(out, dim=1)[:, target]
        raise ValueError(f"model output of shape {tuple(out.shape)} with target={target!r}: expected "
                         "(B,) or (B, 1) logits with target=None, or (B, C) logits with a class target")

    f.model, f.target = model, target
    return f


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


def apply_mask(x: torch.Tensor, fully_masked: torch.Tensor, keep: torch.Tensor,
               labels: torch.Tensor) -> torch.Tensor:
    """Inputs with the features where ``keep`` is False replaced by ``fully_masked``.

    ``x`` and ``fully_masked`` are ``(B, *shape)``, ``keep`` is boolean ``(B, F)`` and
    ``labels`` gives each element's feature (broadcasting against ``shape``).
    """
    element_keep = keep[:, labels.reshape(-1)].reshape(keep.shape[0], *labels.shape)
    return torch.where(element_keep, x, fully_masked)


class _Scorer:
    """Calls ``f`` in chunks of ``batch_size`` and checks each answer: shape ``(B,)``, no NaN."""

    def __init__(self, f, batch_size: int):
        if not callable(f):
            raise ValueError(f"f must be a callable mapping a batch to scores, got {type(f).__name__}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.f, self.batch_size = f, batch_size
        self.calls = 0

    def __call__(self, inputs: _Inputs, rows: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Scores of inputs ``rows`` with only the features ``keep`` (one row each), chunk by chunk."""
        out, n = [], rows.numel()
        for start in range(0, n, self.batch_size):
            stop = min(n, start + self.batch_size)
            batch = inputs.masked(rows[start:stop], keep[start:stop])
            with torch.inference_mode():
                scores = self.f(batch)
            self.calls += 1
            scores = torch.as_tensor(scores)
            b = batch.shape[0]
            if scores.shape not in ((b,), (b, 1)):
                raise ValueError(f"f must return one score per input: for a batch of {b} it returned "
                                 f"shape {tuple(scores.shape)}, expected ({b},)")
            scores = scores.reshape(-1).double()
            if torch.isnan(scores).any():
                row = start + int(torch.isnan(scores).nonzero()[0])
                raise ValueError(f"f returned NaN (for candidate {row} of {n} in this step)")
            out.append(scores.cpu())
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


class _Inputs:
    """Many inputs with their fully masked versions and the feature labels."""

    def __init__(self, X, fully_masked, mask_shape, groups, single: bool):
        X = torch.as_tensor(X)
        if not X.is_floating_point():
            X = X.float()
        if single:
            X = X.unsqueeze(0)
        if X.ndim < 2 or X.shape[0] == 0:
            raise ValueError(f"inputs must be (N, ...) with N > 0, got shape {tuple(X.shape)}")
        shape = tuple(X.shape[1:])
        fm = torch.as_tensor(fully_masked, dtype=X.dtype, device=X.device)
        try:
            self.fully_masked = torch.broadcast_to(fm, X.shape).contiguous()
        except RuntimeError:
            raise ValueError(f"fully_masked of shape {tuple(fm.shape)} does not broadcast against the "
                             f"inputs of shape {tuple(X.shape[1:]) if single else tuple(X.shape)}") from None
        self.X = X
        self.shape = shape
        labels, self.n_features = _labels(shape, mask_shape, groups)
        self.labels = labels.to(X.device)

    def masked(self, rows: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        return apply_mask(self.X[rows], self.fully_masked[rows], keep.to(self.X.device), self.labels)


class _LocalScreen:
    """Cheap approximate scores of every "mask one more position" candidate of DNA inputs.

    Masking one position of a partially masked sequence is a single-column edit,
    so the local-window path of :mod:`mlcourse.interpret.ism` (the fastISM idea of
    Nair et al. 2022) scores all candidates of a step recomputing only the
    windows each edit reaches. Its float32 arithmetic differs from a full forward
    pass in the last bits, so the screen only *shortlists*: every candidate whose
    probability interval (:meth:`bounds`) reaches the best lower bound of its
    input is kept; those whose probability is not pinned to one float by the
    bound are scored by ``f`` itself, and the choice is made with the usual rule
    (highest, ties to the lowest position); the recorded score of the choice is
    always ``f``'s. The true best is always shortlisted, so the removal order is
    that of the plain path, ties included -- up to the last bit of ``torch.sigmoid``,
    whose vectorised kernel and scalar tail can differ by one unit: ``f`` itself
    then depends on where an input sits in a batch, and the plain path, which
    batches differently from the paper's one-at-a-time loop, shares that caveat.
    """

    # bound on |approximate - exact logit|, relative to 1 + |logit| (float32 rounding is ~1e-7)
    LOGIT_ERROR = 1e-5

    def __init__(self, plan, batch_size: int, dtype: torch.dtype):
        self.plan, self.batch_size, self.plan_dtype = plan, batch_size, dtype

    @classmethod
    def build(cls, f, inputs: _Inputs, batch_size: int):
        """A screen when ``f`` is :func:`probability` of a one-logit DNA CNN that starts with a
        local chain and the features are positions (``mask_shape=(1, L)``); else None."""
        model = getattr(f, "model", None)
        if not isinstance(model, nn.Module) or getattr(f, "target", None) is not None:
            return None
        if len(inputs.shape) != 2 or inputs.shape[0] != 4:
            return None
        positions = torch.arange(inputs.shape[1], device=inputs.labels.device).reshape(1, -1)
        if inputs.labels.shape != positions.shape or not torch.equal(inputs.labels, positions):
            return None
        model.eval()
        with torch.inference_mode():
            plan = ism.local_plan(model, inputs.X[:1])
            dtype = None if plan is None else plan.score(inputs.X[:1]).dtype
        return None if plan is None else cls(plan, batch_size, dtype)

    def __call__(self, inputs: _Inputs, rows: torch.Tensor, remaining: torch.Tensor) -> torch.Tensor:
        """Approximate logits ``(R, L)``: entry ``[r, p]`` masks position ``p`` of input ``rows[r]``
        with the features ``remaining[r]`` kept (computed only where ``remaining`` is True)."""
        out = []
        with torch.inference_mode():
            for s in range(0, rows.numel(), self.batch_size):
                part, keep = rows[s:s + self.batch_size], remaining[s:s + self.batch_size]
                base, new = inputs.masked(part, keep), inputs.fully_masked[part][None]
                out.append(self.plan.edit_scores(base, new, None, keep.to(base.device))[0].double().cpu())
        return torch.cat(out)

    def bounds(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Lowest and highest probability the exact logit can give, for these approximate logits.

        The exact logit lies within ``LOGIT_ERROR (1 + |z|)`` of the approximate
        ``z``; rounded to the model's dtype and put through ``torch.sigmoid`` (as
        ``f`` does; it never decreases) it gives a value between the two. Where
        both ends agree the probability is known without calling ``f``.
        """
        error = self.LOGIT_ERROR * (1 + logits.abs())
        low = torch.sigmoid((logits - error).to(self.plan_dtype)).double()
        high = torch.sigmoid((logits + error).to(self.plan_dtype)).double()
        return low, high


def _backward_selection(score: _Scorer, inputs: _Inputs, rows: torch.Tensor, remaining: torch.Tensor,
                        start: torch.Tensor | None = None, screen: _LocalScreen | None = None):
    """Backward selection for the inputs ``rows`` at once; ``remaining`` (R, F) are unmasked features.

    Returns ``order`` (R, F) (removal order, -1 padded), ``scores`` (R, F) and ``start`` (R,),
    the scores before any removal (computed unless given). With a ``screen`` only the
    shortlisted candidates are scored by ``f``.
    """
    remaining = remaining.clone()
    n_rows, n_features = remaining.shape
    if start is None:
        start = score(inputs, rows, remaining)
    order = torch.full((n_rows, n_features), -1, dtype=torch.long)
    scores = torch.full((n_rows, n_features), math.nan, dtype=torch.float64)
    for step in range(int(remaining.sum(dim=1).max()) if n_rows else 0):
        owner, feature = torch.nonzero(remaining, as_tuple=True)  # every candidate removal
        keep = remaining[owner]
        keep[torch.arange(owner.numel()), feature] = False
        if screen is None:
            values = score(inputs, rows[owner], keep)
        else:  # only candidates that may be the best; f scores those whose value is not known
            low, high = screen.bounds(screen(inputs, rows, remaining)[owner, feature])
            floor = torch.full((n_rows,), -math.inf, dtype=torch.float64).scatter_reduce(0, owner, low, "amax")
            near = high >= floor[owner]
            owner, feature, keep, values = owner[near], feature[near], keep[near], low[near]
            unknown = (low != high)[near]
            values[unknown] = score(inputs, rows[owner[unknown]], keep[unknown])
        best = torch.full((n_rows,), -math.inf, dtype=torch.float64)
        best = best.scatter_reduce(0, owner, values, "amax")
        ties = values == best[owner]  # break ties towards the lowest feature index
        chosen = torch.full((n_rows,), n_features, dtype=torch.long)
        chosen = chosen.scatter_reduce(0, owner[ties], feature[ties], "amin")
        active = torch.nonzero(chosen < n_features).reshape(-1)
        remaining[active, chosen[active]] = False
        order[active, step] = chosen[active]
        if screen is not None:  # record f's own score of the choice (a known value may differ in the last bit)
            best[active] = score(inputs, rows[active], remaining[active])
        scores[active, step] = best[active]
    return order, scores, start


def _smallest_sufficient(order, scores, start, count, threshold):
    """find_sis on a removal order: the shortest tail of ``order`` whose score reaches the threshold.

    Keeping the last ``k`` removed features is exactly the input backward selection
    scored after ``count - k`` removals, so no new model calls are needed.
    """
    for k in range(1, count + 1):
        value = start if k == count else scores[count - k - 1]
        if value >= threshold:
            return order[count - k:count][::-1].copy(), float(value)
    return None


def _to_sis(features: np.ndarray, value: float, labels: torch.Tensor, n_features: int) -> SIS:
    flat = torch.zeros(n_features, dtype=torch.bool)
    flat[torch.as_tensor(features, dtype=torch.long)] = True
    return SIS(features=features, mask=flat[labels.cpu()], score=value)


def backward_selection(f, x, fully_masked, mask_shape=None, *, groups=None, initial_mask=None,
                       batch_size: int = 4096) -> BackwardSelection:
    """Rank the features of one input by masking them one by one (Carter et al. 2019, Alg. 1).

    At every step each still-unmasked feature is a candidate; all candidates are
    scored in batches and the one whose masking leaves the *highest* score is
    masked (ties: the lowest feature index).

    For DNA positions (``mask_shape=(1, L)``) and ``f = probability(cnn)`` of a
    CNN that starts with convolutions (the Zeng et al. models), each step's
    candidates -- single-position edits -- are first scored cheaply by the
    local-window path of :mod:`mlcourse.interpret.ism`; ``f`` then scores only the
    few that may be the best (see ``_LocalScreen``). Same order, far fewer FLOPs.

    Parameters
    ----------
    f : callable
        Maps a batch ``(B, *x.shape)`` to scores ``(B,)``.
    x : torch.Tensor
        One input, e.g. one-hot DNA ``(4, L)``.
    fully_masked : torch.Tensor
        The masked value, broadcasting against ``x`` (e.g. :func:`dna_background`).
    mask_shape : tuple, optional
        Shape of the feature mask, broadcasting against ``x``; default ``x.shape``.
    groups : torch.Tensor, optional
        Integer feature labels instead of ``mask_shape`` (e.g. :func:`patch_groups`).
    initial_mask : torch.Tensor, optional
        Boolean, shaped like the mask: True for features already masked (not ranked).
    batch_size : int
        Inputs per call of ``f``.

    Returns
    -------
    BackwardSelection
    """
    inputs = _Inputs(x, fully_masked, mask_shape, groups, single=True)
    remaining = _initial_remaining(inputs, initial_mask)
    scorer = _Scorer(f, batch_size)
    order, scores, start = _backward_selection(scorer, inputs, torch.zeros(1, dtype=torch.long), remaining,
                                               screen=_LocalScreen.build(f, inputs, batch_size))
    count = int(remaining.sum())
    return BackwardSelection(order[0, :count].numpy(), scores[0, :count].numpy(), float(start[0]))


def _initial_remaining(inputs: _Inputs, initial_mask) -> torch.Tensor:
    remaining = torch.ones(1, inputs.n_features, dtype=torch.bool)
    if initial_mask is not None:
        initial = torch.as_tensor(initial_mask, dtype=torch.bool)
        if initial.numel() != inputs.n_features:
            raise ValueError(f"initial_mask has {initial.numel()} entries but there are "
                             f"{inputs.n_features} features")
        remaining[0] = ~initial.reshape(-1)
    return remaining


def find_sis(f, threshold: float, x, fully_masked, mask_shape=None, *, groups=None, initial_mask=None,
             batch_size: int = 4096) -> SIS | None:
    """One sufficient input subset of ``x`` (Carter et al. 2019, Alg. 2 "FindSIS").

    Runs :func:`backward_selection`, then adds features back in reverse removal
    order (most important first) until ``f(x_S) >= threshold``. Parameters as in
    :func:`backward_selection`.

    Returns
    -------
    SIS or None
        None when even all unmasked features together stay below the threshold.
    """
    inputs = _Inputs(x, fully_masked, mask_shape, groups, single=True)
    selection = backward_selection(f, x, fully_masked, mask_shape, groups=groups,
                                   initial_mask=initial_mask, batch_size=batch_size)
    found = _smallest_sufficient(selection.order, selection.scores, selection.start_score,
                                 len(selection.order), threshold)
    return None if found is None else _to_sis(*found, inputs.labels, inputs.n_features)


def sis_collection(f, threshold: float, x, fully_masked, mask_shape=None, *, groups=None,
                   batch_size: int = 4096) -> list[SIS]:
    """All disjoint sufficient input subsets of one input (Carter et al. 2019, Alg. 3).

    Finds a SIS, masks it for good, and repeats while the rest of ``x`` still
    reaches ``threshold``. See :func:`sis_collections` for many inputs at once.

    Returns
    -------
    list of SIS
        In the order found; **empty** when ``f(x) < threshold`` (nothing to explain:
        the decision is negative -- pass ``-f`` and ``-threshold`` to explain it).
    """
    inputs = _Inputs(x, fully_masked, mask_shape, groups, single=True)
    return _collections(f, threshold, inputs, batch_size)[0]


def sis_collections(f, threshold: float, X, fully_masked, mask_shape=None, *, groups=None,
                    batch_size: int = 4096) -> list[list[SIS]]:
    """:func:`sis_collection` for every input in ``X`` ``(N, ...)``, computed together.

    Every backward-selection step scores the candidate removals of all inputs
    still in play in shared batches, so a call of ``f`` holds many inputs' work.
    ``fully_masked`` broadcasts against ``X[0]`` (one for all) or ``X`` (one each).

    Raises
    ------
    ValueError
        If ``fully_masked`` or the mask does not broadcast against the inputs,
        ``f`` returns the wrong shape or NaN, or an input's fully masked version
        already reaches the threshold (then every subset would be "sufficient").
    """
    inputs = _Inputs(X, fully_masked, mask_shape, groups, single=False)
    return _collections(f, threshold, inputs, batch_size)


def _collections(f, threshold: float, inputs: _Inputs, batch_size: int) -> list[list[SIS]]:
    if not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    score = _Scorer(f, batch_size)
    screen = _LocalScreen.build(f, inputs, batch_size)
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
        order, scores, start = _backward_selection(score, inputs, active, remaining[active], current, screen)
        counts = remaining[active].sum(dim=1)
        for row, i in enumerate(active.tolist()):
            hit = _smallest_sufficient(order[row].numpy(), scores[row].numpy(), float(start[row]),
                                       int(counts[row]), threshold)
            # the full remaining set reached the threshold above, so a SIS exists
            features, value = hit
            found[i].append(_to_sis(features, value, inputs.labels, n_features))
            remaining[i, torch.as_tensor(features)] = False
    return found
