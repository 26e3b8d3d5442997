"""Can you trust an attribution? Sanity checks and faithfulness curves.

A map that looks like the motif may still say nothing about the *model*.
Adebayo et al. (2018, "Sanity checks for saliency maps") proposed two
randomisation tests: an explanation method that explains the model must give
a *different* map when the model is destroyed.

* **Cascading model randomisation** (:func:`cascading_randomisation`):
  re-initialise the layers one at a time from the top (output layer first)
  down to the input, and after each step compare the method's map with the
  map of the trained model. The rank correlation should fall towards 0; a
  method whose map barely changes is explaining the input (edges of an image,
  the letters of a sequence), not the model.
* **Data (label) randomisation** (:func:`shuffled_labels`): train the same
  architecture on permuted labels. It can only memorise; its maps should not
  look like those of the real model.

Both are measured by the Spearman rank correlation of position scores
(:func:`rank_correlation`), per sequence.

A **deletion curve** (Samek et al. 2017, "Evaluating the visualization of
what a deep neural network has learned"; Petsiuk et al. 2018, RISE) asks the
opposite question, whether the map is *faithful*: mask the positions the
method ranks highest first (here with 0.25 per base, the unknown base of
lecture 07), follow the model's probability, and take the area under the
curve (:func:`deletion_curve`, :func:`deletion_area`). The faster the score
falls, the smaller the area and the better the ranking; a random ranking is
the reference.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr
from torch import nn

from mlcourse.dna import as_rng
from mlcourse.interpret import scoring

__all__ = [
    "rank_correlation",
    "parameter_layers",
    "randomise",
    "cascading_randomisation",
    "shuffled_labels",
    "map_correlation",
    "deletion_curve",
    "deletion_area",
    "deletion_table",
    "sanity_table",
]


def _numpy(scores) -> np.ndarray:
    scores = scores.detach().cpu().numpy() if isinstance(scores, torch.Tensor) else np.asarray(scores)
    return scores.astype(np.float64)


def rank_correlation(a, b) -> np.ndarray:
    """Spearman rank correlation of each row of ``a`` ``(N, L)`` with the same row of ``b``.

    ``-inf`` (a position a method did not rank, as SIS) counts as the lowest
    rank. A constant row has no ranking: its correlation is ``nan``.
    """
    a, b = _numpy(a), _numpy(b)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"expected two (N, L) score arrays of one shape, got {a.shape} and {b.shape}")
    out = np.full(len(a), np.nan)
    for i, (x, y) in enumerate(zip(a, b)):
        x, y = (np.where(np.isneginf(v), np.nanmin(v[np.isfinite(v)], initial=0) - 1, v) for v in (x, y))
        if np.ptp(x) > 0 and np.ptp(y) > 0:
            out[i] = spearmanr(x, y).statistic
    return out


def parameter_layers(model: nn.Module) -> list[str]:
    """Names of the modules that hold their own parameters, input to output (registration order)."""
    names = [name for name, module in model.named_modules()
             if name and any(True for _ in module.parameters(recurse=False))]
    if not names:
        raise ValueError("the model has no layers with parameters to randomise")
    return names


def randomise(model: nn.Module, layers, *, seed: int = 0) -> nn.Module:
    """A copy of ``model`` whose ``layers`` (module names) are re-initialised at random.

    Each layer's ``reset_parameters()`` draws fresh weights from its own
    initial distribution (PyTorch's default initialisation), seeded by ``seed``.
    """
    out = copy.deepcopy(model)
    modules = dict(out.named_modules())
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        for name in layers:
            if name not in modules:
                raise ValueError(f"the model has no layer {name!r}; layers with parameters: "
                                 f"{parameter_layers(model)}")
            if not hasattr(modules[name], "reset_parameters"):
                raise ValueError(f"layer {name!r} ({type(modules[name]).__name__}) has no reset_parameters()")
            modules[name].reset_parameters()
    finally:
        torch.random.set_rng_state(generator_state)
    return out.train(model.training)


def _mean(values: np.ndarray) -> float:
    """Mean over the sequences that have a correlation; ``nan`` when none has (e.g. SIS finds no subset)."""
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float("nan")


def _method_scores(methods: dict, X: torch.Tensor) -> dict[str, np.ndarray]:
    return {name: _numpy(f(X)) for name, f in methods.items()}


def map_correlation(original: dict, other: dict, X: torch.Tensor) -> pd.Series:
    """Mean rank correlation, per method, of two models' maps of the same sequences.

    ``original`` and ``other`` map method names to ``f(X) -> (N, L)`` position
    scores (e.g. ``methods.scorers`` of the trained model and of a
    randomised one); only names in both are compared.
    """
    names = [n for n in original if n in other]
    a, b = _method_scores({n: original[n] for n in names}, X), _method_scores({n: other[n] for n in names}, X)
    return pd.Series({n: _mean(rank_correlation(a[n], b[n])) for n in names}, name="rank correlation")


def cascading_randomisation(model: nn.Module, scorers, X: torch.Tensor, *, layers=None,
                            seed: int = 0) -> pd.DataFrame:
    """Adebayo et al. (2018)'s cascading randomisation, top layer first.

    Parameters
    ----------
    model : nn.Module
        The trained model.
    scorers : callable
        ``scorers(model) -> {name: f(X) -> (N, L)}``: the methods to check,
        built for a given model (e.g. ``lambda m: methods.scorers(m, "dna")``).
    X : torch.Tensor
        Inputs ``(N, 4, L)``.
    layers : list of str, optional
        Layers from input to output; default :func:`parameter_layers`.
    seed : int
        Seed of the re-initialisation.

    Returns
    -------
    pandas.DataFrame
        One row per method, one column per step: column ``"fc"`` holds the
        mean rank correlation with the trained model's map after every layer
        from the output down to ``fc`` was randomised. The last column has all
        layers random.
    """
    layers = parameter_layers(model) if layers is None else list(layers)
    reference = _method_scores(scorers(model), X)
    columns = {}
    for k in range(1, len(layers) + 1):
        randomised = randomise(model, layers[-k:], seed=seed)
        scores = _method_scores(scorers(randomised), X)
        columns[layers[-k]] = {n: _mean(rank_correlation(reference[n], scores[n])) for n in reference}
    table = pd.DataFrame(columns)
    table.columns.name = "randomised down to"
    return table


def shuffled_labels(dataset, *, seed: int = 0):
    """A copy of a :class:`~mlcourse.datasets.base.SeqDataset` with its labels permuted.

    A model trained on it (Adebayo et al.'s data randomisation test) can only
    memorise its training set: nothing in the sequences predicts the labels.
    """
    out = dataset.subset(slice(None))
    out.y = out.y[as_rng(seed).permutation(len(out))]
    out.name = f"{dataset.name} (labels shuffled)"
    return out


def _probabilities(model, X: torch.Tensor, target, batch_size: int) -> np.ndarray:
    probs = scoring.score(model, X, target=target, output="probability", batch_size=batch_size)
    return probs.float().cpu().numpy()


def deletion_curve(model, X: torch.Tensor, scores, *, steps: int = 20, baseline: float = 0.25,
                   target=None, batch_size: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """The model's probability as the top-ranked positions are masked, most important first.

    Parameters
    ----------
    model : nn.Module or callable
        Returns one logit per sequence (or ``(N, C)`` with ``target``).
    X : torch.Tensor
        One-hot ``(N, 4, L)``.
    scores : ``(N, L)``
        Position importances (larger = more important; ``-inf`` = unranked,
        masked last).
    steps : int
        The curve has ``steps + 1`` points: ``0, 1/steps, ..., 1`` of the positions masked.
    baseline : float
        The value every base of a masked position takes (0.25: unknown base).

    Returns
    -------
    (fractions, probabilities)
        ``(steps + 1,)`` fractions of positions masked and ``(N, steps + 1)`` probabilities.
    """
    scores = _numpy(scores)
    if scores.shape != (X.shape[0], X.shape[2]):
        raise ValueError(f"scores must be (N, L) = {(X.shape[0], X.shape[2])}, got {scores.shape}")
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    length = X.shape[2]
    order = np.argsort(-np.nan_to_num(scores, nan=-np.inf), axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(length)[None].repeat(len(X), 0), axis=1)
    fractions = np.linspace(0, 1, steps + 1)
    counts = np.round(fractions * length).astype(int)
    masked = [torch.where(torch.from_numpy(rank < k)[:, None, :], torch.tensor(baseline, dtype=X.dtype), X)
              for k in counts]
    probs = _probabilities(model, torch.cat(masked), target, batch_size)
    return fractions, probs.reshape(len(counts), len(X)).T


def deletion_area(fractions: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Area under each deletion curve (trapezoid rule over the fraction masked), ``(N,)``; lower is better."""
    p = np.asarray(probabilities)
    return ((p[:, 1:] + p[:, :-1]) / 2 * np.diff(fractions)).sum(axis=1)


def deletion_table(model, methods: dict, X: torch.Tensor, *, steps: int = 20, baseline: float = 0.25,
                   seed: int = 0, target=None) -> pd.DataFrame:
    """Deletion-curve area of every method, and of a random ranking for reference.

    Returns
    -------
    pandas.DataFrame
        One row per method (plus ``"random order"``): ``deletion area``
        (mean over sequences; lower = the ranking finds what the model needs
        sooner) and the mean ``curve`` (an array per row, for plotting).
    """
    rng = np.random.default_rng(seed)
    rankings = {name: f(X) for name, f in methods.items()}
    rankings["random order"] = rng.random((X.shape[0], X.shape[2]))
    rows = []
    for name, scores in rankings.items():
        fractions, probs = deletion_curve(model, X, scores, steps=steps, baseline=baseline, target=target)
        rows.append({"method": name, "deletion area": float(deletion_area(fractions, probs).mean()),
                     "curve": probs.mean(axis=0)})
    table = pd.DataFrame(rows).set_index("method")
    table.attrs["fractions"] = fractions
    return table


def sanity_table(model: nn.Module, scorers, X: torch.Tensor, *, label_model: nn.Module | None = None,
                 steps: int = 20, seed: int = 0) -> pd.DataFrame:
    """All checks of this module as columns of one method table.

    Parameters
    ----------
    model : nn.Module
        The trained model.
    scorers : callable
        ``scorers(model) -> {name: f(X) -> (N, L)}`` (see :func:`cascading_randomisation`).
    X : torch.Tensor
        The sequences to explain ``(N, 4, L)``.
    label_model : nn.Module, optional
        The same architecture trained on :func:`shuffled_labels`; adds the
        label-randomisation column.

    Returns
    -------
    pandas.DataFrame
        One row per method: ``rho, random from LAYER`` for every step of
        :func:`cascading_randomisation` (top layer first; the last one has all
        layers random) and ``rho, labels random`` (with ``label_model``): mean
        Spearman correlation with the trained model's map. Near 0 passes; near
        1 fails; near -1 is the same map with its sign flipped. Then
        ``deletion area`` (:func:`deletion_table`, lower is better); the random
        ranking's area is in ``attrs["random deletion area"]`` and the cascade
        in ``attrs["cascade"]``.
    """
    cascade = cascading_randomisation(model, scorers, X, seed=seed)
    table = cascade.add_prefix("rho, random from ")
    table.columns.name = None
    if label_model is not None:
        table["rho, labels random"] = map_correlation(scorers(model), scorers(label_model), X)
    deletion = deletion_table(model, scorers(model), X, steps=steps, seed=seed)
    table["deletion area"] = deletion["deletion area"]
    table.attrs["random deletion area"] = float(deletion.loc["random order", "deletion area"])
    table.attrs["cascade"] = cascade
    return table
