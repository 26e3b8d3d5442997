"""Which attribution method finds the planted motif? A ground-truth comparison.

On simulated data (:func:`mlcourse.datasets.simulate.motif_discovery`) we know
where every motif was planted. Each method turns a sequence into one score per
position; we take the ``k`` best-scoring positions (``k`` = motif width) and
ask what share of them falls inside planted sites, and we time the method.
This is the benchmark idea of Adebayo et al. (2018) and of the DeepLIFT /
TF-MoDISco papers, reduced to one table: precision at ``k`` and seconds per
100 sequences.

:func:`motif_detector` builds a model whose truth is known *inside* the model
too: one Zeng et al. (2016) ``1layer`` CNN whose only working filters are the
motif's log-odds matrix on both strands. Whatever a correct method highlights,
it must be a motif instance.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch

from mlcourse.datasets.simulate import planted_motif
from mlcourse.motifs import Motif

__all__ = [
    "motif_detector",
    "precision_at_k",
    "compare_methods",
    "with_sanity_checks",
]


def motif_detector(motif: str | Motif = "MAFF", seq_len: int = 101, threshold: float | None = 0.5):
    """A Zeng et al. ``1layer`` CNN that detects ``motif`` by hand-set weights (no training).

    Filter 0 of ``conv1`` is the motif's log-odds matrix (bits), filter 1 its
    reverse complement; their biases subtract ``threshold`` times the best
    possible score, so only good matches fire. All other filters are zero. The
    dense head adds the two strands' global maxima, and the output logit is
    that sum minus 1: about -1 without a motif and several units above 0 with one.

    Parameters
    ----------
    motif : str or Motif
        JASPAR name/ID (as :func:`mlcourse.datasets.simulate.planted_motif`
        resolves it, so the detector finds what the simulations plant) or a
        Motif no wider than the 24-bp filters.
    seq_len : int
    threshold : float or None
        Fraction (0..1) of the best log-odds score a site must reach to count.
        ``None``: no cutoff (the bias lifts even the worst window above 0), a
        plain PWM scanner whose output is the best site score on either strand
        plus a constant; its ReLUs never block a gradient.

    Returns
    -------
    mlcourse.models.zeng.ZengCNN
        In eval mode.
    """
    from mlcourse.models.zeng import build

    motif = planted_motif(motif)  # a name: the matrix the simulations plant (MAFF: the 13-bp MARE)
    model = build("1layer", seq_len=seq_len)
    width = model.conv1.kernel_size[0]
    if motif.width > width:
        raise ValueError(f"motif {motif.name} is {motif.width} bp wide; the filters are {width} bp")
    if threshold is not None and not 0 <= threshold < 1:
        raise ValueError(f"threshold must be a fraction in [0, 1) or None, got {threshold!r}")
    pwm = torch.tensor(motif.log_odds, dtype=torch.float32)
    if threshold is None:
        cutoff = float(pwm.min(0).values.sum())
    else:
        cutoff = threshold * float(pwm.max(0).values.sum())
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.conv1.weight[0, :, : motif.width] = pwm
        model.conv1.weight[1, :, : motif.width] = pwm.flip(0, 1)
        model.conv1.bias[:2] = -cutoff
        model.fc.weight[0, :2] = 1.0
        model.out.weight[0, 0] = 1.0
        model.out.bias[0] = -1.0
    return model.eval()


def precision_at_k(scores, sites, k: int) -> np.ndarray:
    """Share of each sequence's ``k`` top-scoring positions that lie inside its planted sites.

    Parameters
    ----------
    scores : array-like ``(N, L)``
        Position importances, larger = more important. ``-inf`` marks positions
        a method did not select at all (e.g. outside a sufficient input
        subset); only selected positions are ranked, so such a method is judged
        on at most ``k`` of its own positions.
    sites : list of list of Site
        Ground truth per sequence (objects with ``start`` and ``end``).
    k : int

    Returns
    -------
    numpy.ndarray
        ``(N,)`` precisions in ``[0, 1]``; ``nan`` for a sequence without sites
        or without any selected position.
    """
    scores = scores.detach().cpu().numpy() if isinstance(scores, torch.Tensor) else np.asarray(scores)
    if scores.ndim != 2 or len(scores) != len(sites):
        raise ValueError(f"scores must be (N, L) with one row per site list; got {scores.shape} "
                         f"for {len(sites)} site lists")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    out = np.full(len(scores), np.nan)
    for i, (row, row_sites) in enumerate(zip(scores, sites)):
        selected = np.flatnonzero(np.isfinite(row))
        if not row_sites or not selected.size:
            continue
        top = selected[np.argsort(-row[selected], kind="stable")[:k]]
        inside = np.zeros(len(row), dtype=bool)
        for site in row_sites:
            inside[max(site.start, 0): site.end] = True
        out[i] = inside[top].mean()
    return out


def compare_methods(methods: dict[str, Callable], X: torch.Tensor, sites, k: int) -> pd.DataFrame:
    """Score and time every method on the same sequences.

    Parameters
    ----------
    methods : dict
        ``name -> f(X) -> (N, L)`` position scores (see :func:`mlcourse.interpret.methods.scorers`).
    X : torch.Tensor
        One-hot sequences ``(N, 4, L)`` that carry planted sites.
    sites : list of list of Site
        Their ground truth.
    k : int
        Positions judged per sequence (the motif width is the natural choice).

    Returns
    -------
    pandas.DataFrame
        One row per method: ``precision@k`` (mean share of top-k positions in
        planted sites), ``sd`` (its standard deviation over sequences),
        ``s / 100 seqs`` (wall-clock, after one untimed warm-up call); sorted
        best first. ``chance`` in ``attrs`` is the share
        of all positions that lie in sites.
    """
    if len(X) != len(sites):
        raise ValueError(f"{len(X)} sequences but {len(sites)} site lists")
    rows = []
    for name, method in methods.items():
        method(X[:1])  # warm-up (lazy imports, first-call set-up) outside the clock
        start = time.perf_counter()
        scores = method(X)
        seconds = time.perf_counter() - start
        if tuple(scores.shape) != (X.shape[0], X.shape[2]):
            raise ValueError(f"method {name!r} returned shape {tuple(scores.shape)}, "
                             f"expected (N, L) = {(X.shape[0], X.shape[2])}")
        precision = precision_at_k(scores, sites, k)
        rows.append({"method": name, "precision@k": np.nanmean(precision),
                     "sd": np.nanstd(precision), "s / 100 seqs": 100 * seconds / len(X)})
    table = pd.DataFrame(rows).sort_values("precision@k", ascending=False, ignore_index=True)
    inside = [sum(min(s.end, X.shape[2]) - max(s.start, 0) for s in row) for row in sites if row]
    table.attrs["chance"] = float(np.mean(inside) / X.shape[2]) if inside else float("nan")
    return table


def with_sanity_checks(table: pd.DataFrame, model, scorers: Callable, X: torch.Tensor, *,
                       label_model=None, seed: int = 0) -> pd.DataFrame:
    """A method table with the sanity-check columns of :func:`mlcourse.interpret.sanity.sanity_table` joined on.

    ``table`` is indexed by method (or has a ``method`` column, as
    :func:`compare_methods` returns it); ``scorers(model)`` builds the methods
    (e.g. :func:`mlcourse.interpret.methods.scorers`). The checks' ``attrs``
    (random deletion area, the whole cascade) are carried over.
    """
    from mlcourse.interpret.sanity import sanity_table

    checks = sanity_table(model, scorers, X, label_model=label_model, seed=seed)
    indexed = table.set_index("method") if "method" in table.columns else table
    out = indexed.join(checks)
    out.attrs = {**table.attrs, **checks.attrs}
    return out
