"""Motifs from attributions: seqlets, TF-MoDISco, and their JASPAR matches.

An attribution map explains one sequence. To learn what a model has learned
*overall*, TF-MoDISco (Shrikumar et al. 2018, "Technical note on
transcription factor motif discovery from importance scores") collects the
short stretches where the contributions are high, **seqlets**, and clusters
them by the similarity of their *hypothetical contributions* (what every base
would contribute at each position, :func:`mlcourse.interpret.paths.hypothetical_contributions`).
Each cluster, aligned and averaged, is a **pattern**: a motif as the model
sees it, with its frequency matrix and its contribution logo.

Steps, as in lecture 15:

1. DeepLiftShap hypothetical contributions of many sequences (``paths.deeplift_shap(..., hypothetical=True)``);
2. seqlets: windows whose summed contribution stands out (:func:`seqlets`
   shows the idea; TF-MoDISco uses a null distribution to set the threshold);
3. clustering and aggregation: :func:`tfmodisco` runs ``modisco-lite``
   (Schreiber's reimplementation of TF-MoDISco, the package ``modiscolite``)
   and returns :class:`Pattern` objects, trimmed to their informative core;
4. naming: :func:`match_patterns` compares each pattern with JASPAR (and
   with the motifs that were planted, on simulated data).

JASPAR matching is width-aware: a short JASPAR motif can line up well with a
few columns of any wide pattern, so matches are ranked by Tomtom p-values
(:func:`mlcourse.motifs.tomtom`), which weigh how many columns match.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from mlcourse.motifs import MIN_OVERLAP, Motif, jaspar, similarity, tomtom

__all__ = ["Pattern", "seqlets", "tfmodisco", "trim", "match_patterns"]


@dataclass(frozen=True, eq=False)
class Pattern:
    """One TF-MoDISco pattern.

    Attributes
    ----------
    name : str
        ``"pos_0"``, ``"pos_1"``, ... (positive metacluster) or ``"neg_0"``, ...
    probs : numpy.ndarray
        ``(4, W)`` base frequencies of the aligned seqlets.
    contributions : numpy.ndarray
        ``(4, W)`` mean contribution of the observed bases.
    hypothetical : numpy.ndarray
        ``(4, W)`` mean hypothetical contributions.
    n_seqlets : int
        How many seqlets the pattern holds.
    """

    name: str
    probs: np.ndarray
    contributions: np.ndarray
    hypothetical: np.ndarray
    n_seqlets: int

    @property
    def width(self) -> int:
        return self.probs.shape[1]

    @property
    def motif(self) -> Motif:
        """The pattern's frequency matrix as a :class:`~mlcourse.motifs.Motif`."""
        return Motif.from_probs(self.probs, self.name)


def _observed(contributions) -> np.ndarray:
    contributions = contributions.detach().cpu().numpy() if isinstance(contributions, torch.Tensor) \
        else np.asarray(contributions)
    return contributions.sum(axis=1) if contributions.ndim == 3 else contributions


def seqlets(contributions, *, window: int = 15, threshold: float | None = None) -> pd.DataFrame:
    """Seqlets: non-overlapping windows of high total contribution (the first step of TF-MoDISco).

    The contribution of every ``window``-bp window is summed; the best window
    anywhere is a seqlet, the windows overlapping it are suppressed, and so on
    while the best remaining sum is at least ``threshold``.

    Parameters
    ----------
    contributions : ``(N, L)`` or ``(N, 4, L)`` (summed over bases)
        Actual contributions of the observed bases (e.g. DeepLiftShap).
    window : int
    threshold : float, optional
        Default: mean + 3 standard deviations of all window sums, a simple
        stand-in for TF-MoDISco's null distribution (which compares with
        shuffled contributions and sets a false-discovery rate).

    Returns
    -------
    pandas.DataFrame
        ``seq``, ``start``, ``end`` and ``score`` (the window sum), best first.
    """
    scores = _observed(contributions).astype(np.float64)
    if scores.ndim != 2 or scores.shape[1] < window:
        raise ValueError(f"contributions must be (N, L) or (N, 4, L) with L >= window={window}, "
                         f"got shape {scores.shape}")
    cumulative = np.concatenate([np.zeros((len(scores), 1)), np.cumsum(scores, axis=1)], axis=1)
    sums = cumulative[:, window:] - cumulative[:, :-window]  # (N, L - window + 1)
    if threshold is None:
        threshold = float(sums.mean() + 3 * sums.std())
    rows, free = [], np.ones_like(sums, dtype=bool)
    candidates = np.argsort(-sums, axis=None)
    for flat in candidates:
        i, start = np.unravel_index(flat, sums.shape)
        if sums[i, start] < threshold:
            break
        if not free[i, start]:
            continue
        rows.append({"seq": int(i), "start": int(start), "end": int(start + window), "score": float(sums[i, start])})
        free[i, max(0, start - window + 1): start + window] = False
    return pd.DataFrame(rows, columns=["seq", "start", "end", "score"])


def trim(pattern: Pattern, fraction: float = 0.3) -> Pattern:
    """Trim a pattern to the columns from the first to the last whose total
    absolute contribution is at least ``fraction`` of the largest column's."""
    weight = np.abs(pattern.contributions).sum(axis=0)
    keep = np.flatnonzero(weight >= fraction * weight.max())
    part = slice(keep[0], keep[-1] + 1)
    return Pattern(pattern.name, pattern.probs[:, part], pattern.contributions[:, part],
                   pattern.hypothetical[:, part], pattern.n_seqlets)


@functools.cache
def _modisco_lite():
    """``modiscolite.tfmodisco``, with numba's on-disk cache switched on for its compiled functions (once per process).

    modisco-lite's inner loops are numba functions compiled on first call, and
    it does not ask numba to keep them (``cache=True``): every new Python process
    recompiled them, about 14 s of lecture 15's FAST run of 17 s. With the cache
    on, numba saves the machine code next to the package (or in the user's cache
    folder) and a later process loads it; numba recompiles by itself when the
    package's source changes.
    """
    import importlib
    import pkgutil

    import modiscolite
    from numba.core.registry import CPUDispatcher

    for info in pkgutil.iter_modules(modiscolite.__path__):
        module = importlib.import_module(f"modiscolite.{info.name}")
        for value in vars(module).values():
            if isinstance(value, CPUDispatcher) and value.__module__ == module.__name__:
                value.enable_caching()
    return importlib.import_module("modiscolite.tfmodisco")


def tfmodisco(X: torch.Tensor, hypothetical: torch.Tensor, *, window: int = 15, flank: int = 5,
              max_seqlets: int = 2000, min_seqlets: int = 20, leiden_runs: int = 4,
              trim_fraction: float = 0.3) -> list[Pattern]:
    """Run TF-MoDISco (``modisco-lite``) on hypothetical contributions; return trimmed patterns.

    Parameters
    ----------
    X : torch.Tensor
        One-hot sequences ``(N, 4, L)``.
    hypothetical : torch.Tensor
        Their hypothetical contributions ``(N, 4, L)``
        (``paths.deeplift_shap(model, X, hypothetical=True)``); the actual
        contributions are ``hypothetical * X``.
    window, flank : int
        Seqlet core width and the flank added on each side (modisco's
        ``sliding_window_size`` and ``flank_size``).
    max_seqlets, min_seqlets : int
        Most seqlets clustered per sign (the first ones, in sequence order:
        shuffle sorted data first); a sign with at most ``min_seqlets``
        seqlets is skipped, and so is a final cluster smaller than that.
    leiden_runs : int
        Leiden clusterings tried per round (modisco's default is 50; a few
        suffice for a lecture).
    trim_fraction : float
        See :func:`trim`.

    Returns
    -------
    list of Pattern
        Positive patterns first (largest first within each sign), then negative ones.
    """
    modisco = _modisco_lite()
    X = torch.as_tensor(X, dtype=torch.float32)
    hypothetical = torch.as_tensor(hypothetical, dtype=torch.float32)
    if X.ndim != 3 or X.shape[1] != 4 or hypothetical.shape != X.shape:
        raise ValueError(f"X and hypothetical must both be (N, 4, L); got {tuple(X.shape)} and "
                         f"{tuple(hypothetical.shape)}")
    if X.shape[2] < window + 2 * flank:
        raise ValueError(f"sequences of {X.shape[2]} bp are too short for window {window} + 2 x flank {flank}")
    one_hot = X.permute(0, 2, 1).contiguous().numpy()  # modisco reads (N, L, 4)
    hyp = hypothetical.permute(0, 2, 1).contiguous().numpy()
    positive, negative = modisco.TFMoDISco(
        one_hot, hyp, sliding_window_size=window, flank_size=flank, min_metacluster_size=min_seqlets,
        max_seqlets_per_metacluster=max_seqlets, n_leiden_runs=leiden_runs,
        final_min_cluster_size=min_seqlets, trim_to_window_size=window + 2 * flank,
        initial_flank_to_add=flank)
    out = []
    for sign, found in (("pos", positive), ("neg", negative)):
        for k, p in enumerate(found or []):
            pattern = Pattern(f"{sign}_{k}", np.asarray(p.sequence).T, np.asarray(p.contrib_scores).T,
                              np.asarray(p.hypothetical_contribs).T, len(p.seqlets))
            out.append(trim(pattern, trim_fraction))
    return out


def match_patterns(patterns, *, candidates=None, planted=(), min_overlap: int = MIN_OVERLAP) -> pd.DataFrame:
    """Name each pattern by its most significant JASPAR match (and compare it with planted motifs).

    Matches are ranked by Tomtom p-values (:func:`mlcourse.motifs.tomtom`,
    Gupta et al. 2007): a short JASPAR motif that lines up with a few columns
    of a wide pattern scores a high mean correlation but a weak p-value, so
    the ranking is width-aware.

    Parameters
    ----------
    patterns : list of Pattern
    candidates : list of Motif or names, optional
        Default: every vertebrate JASPAR CORE matrix.
    planted : sequence of Motif or JASPAR names
        Motifs known to be in the data (simulations): a ``similarity to NAME``
        column each (:func:`mlcourse.motifs.similarity`, best alignment) and a
        ``p-value to NAME`` (Tomtom, against the same database as the JASPAR
        match; the planted motif is added to it if it is not there).
    min_overlap : int
        Fewest aligned columns (Tomtom's ``-min-overlap``).

    Returns
    -------
    pandas.DataFrame
        One row per pattern: ``seqlets``, ``width``, ``consensus``, ``JASPAR match``
        (name and ID), its ``match p-value``, ``match E-value``, ``match similarity``
        (mean column correlation over the shorter width), ``overlap``, ``offset``
        and ``strand``, the runner-up's p-value, and the planted columns.
    """
    planted = [m if isinstance(m, Motif) else jaspar(m) for m in planted]
    rows = []
    for p in patterns:
        query = p.motif
        ranked = tomtom(query, candidates, min_overlap=min_overlap)
        best, aligned = ranked[0]
        row = {"pattern": p.name, "seqlets": p.n_seqlets, "width": p.width, "consensus": query.consensus,
               "JASPAR match": f"{best.name} {best.matrix_id}", "match p-value": aligned.p_value,
               "match E-value": aligned.e_value, "match similarity": aligned.score,
               "overlap": aligned.overlap, "offset": aligned.offset, "strand": aligned.strand,
               "runner-up p-value": ranked[1][1].p_value if len(ranked) > 1 else np.nan}
        for m in planted:
            found = [a for c, a in ranked if c is m or (m.matrix_id and c.matrix_id == m.matrix_id)]
            if not found:
                database = [c for c, _ in ranked] + [m]
                found = [a for c, a in tomtom(query, database, min_overlap=min_overlap) if c is m]
            row[f"similarity to {m.name}"] = similarity(query, m).score
            row[f"p-value to {m.name}"] = found[0].p_value
        rows.append(row)
    return pd.DataFrame(rows)
