"""Clustering sufficient input subsets: which patterns does a model rely on, and how often?

Carter et al. (2019, arXiv 1810.03805, Sec. 5) write each SIS of a DNA sequence
(or a text) as a *gapped string* -- the kept bases, ``-`` for masked positions
in between -- compute pairwise edit (Levenshtein) distances and cluster them
with DBSCAN (Ester et al. 1996) on the precomputed distance matrix. A cluster
is one "reason" the model uses; its size says how often. For DNA, a cluster's
members, aligned, give a consensus PWM that can be compared with the JASPAR
motif of the TF (:func:`mlcourse.motifs.similarity`).

Images have no order to edit, so image SISes are compared as pixel sets
(:func:`mask_distances`, the Jaccard distance). DBSCAN needs dense regions;
where SISes are few or spread out (digits, short reviews),
:func:`cluster_by_distance` groups them by average-linkage agglomerative
clustering on the same precomputed distances instead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from rapidfuzz.distance import Levenshtein
from rapidfuzz.process import cdist
from sklearn.cluster import DBSCAN, AgglomerativeClustering
from sklearn.metrics import pairwise_distances

from mlcourse.dna import ALPHABET, reverse_complement

__all__ = ["gapped", "sis_table", "edit_distances", "mask_distances", "cluster_sis",
           "cluster_by_distance", "cluster_table", "consensus", "overlaps_site", "core", "sis_cores"]


def gapped(items, keep, gap: str = "-"):
    """The kept items with ``gap`` for masked ones, trimmed to the first and last kept item.

    ``items`` is a string (DNA: returns a string, e.g. ``"TGA-TCA"``) or a list of
    tokens (text: returns a tuple, e.g. ``("not", "-", "good")``).
    """
    keep = np.asarray(keep, dtype=bool).reshape(-1)
    if len(keep) != len(items):
        raise ValueError(f"mask has {len(keep)} entries but the input has {len(items)} items")
    where = np.flatnonzero(keep)
    if where.size == 0:
        return "" if isinstance(items, str) else ()
    span = range(where[0], where[-1] + 1)
    out = [items[i] if keep[i] else gap for i in span]
    return "".join(out) if isinstance(items, str) else tuple(out)


def sis_table(items: list, collections: list) -> pd.DataFrame:
    """One row per SIS: ``example``, ``k`` (its rank in the collection), ``start``, ``end``
    (one past the last kept position), ``size`` and the gapped ``pattern``.

    ``items[i]`` is example ``i`` as a string or token list; ``collections[i]`` its
    SISes (from :func:`mlcourse.interpret.sis.sis_collections`), masks over positions.
    """
    if len(items) != len(collections):
        raise ValueError(f"{len(items)} inputs but {len(collections)} SIS collections")
    rows = []
    for i, (item, collection) in enumerate(zip(items, collections)):
        for k, s in enumerate(collection):
            keep = s.mask.reshape(-1).numpy()
            where = np.flatnonzero(keep)
            rows.append({"example": i, "k": k, "start": int(where[0]), "end": int(where[-1]) + 1,
                         "size": len(where), "pattern": gapped(item, keep)})
    return pd.DataFrame(rows, columns=["example", "k", "start", "end", "size", "pattern"])


def edit_distances(patterns, normalized: bool = False) -> np.ndarray:
    """Pairwise Levenshtein distances ``(n, n)`` between patterns (strings or token tuples), via rapidfuzz.

    With ``normalized=True`` each distance is divided by the longer pattern's
    length, so it lies in [0, 1] whatever the lengths (useful for text).
    """
    patterns = list(patterns)
    if not patterns:
        return np.zeros((0, 0))
    if normalized:
        return cdist(patterns, patterns, scorer=Levenshtein.normalized_distance, workers=1).astype(float)
    return cdist(patterns, patterns, scorer=Levenshtein.distance, dtype=np.int32, workers=1).astype(float)


def mask_distances(masks) -> np.ndarray:
    """Pairwise Jaccard distances ``(n, n)`` between SIS masks (e.g. the pixels each SIS keeps).

    ``masks`` is ``(n, ...)``, true where a feature is kept; 0 means the same
    pixel set, 1 means no pixel in common.
    """
    masks = np.asarray(masks, dtype=bool).reshape(len(masks), -1)
    if len(masks) == 0:
        return np.zeros((0, 0))
    return pairwise_distances(masks, metric="jaccard")


def cluster_sis(patterns, eps: float = 3, min_samples: int = 3) -> np.ndarray:
    """DBSCAN cluster label per pattern on the edit distances (``-1`` = noise).

    ``eps`` is the edit distance within which two patterns are neighbours;
    labels are renumbered so that 0 is the largest cluster.
    """
    if len(patterns) == 0:
        return np.zeros(0, dtype=int)
    labels = DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed").fit_predict(
        edit_distances(patterns))
    return _largest_first(labels)


def cluster_by_distance(distances, threshold: float) -> np.ndarray:
    """Average-linkage agglomerative cluster label per item, from precomputed ``(n, n)`` distances.

    Clusters merge while their average distance stays below ``threshold``;
    every item gets a cluster (no noise label); 0 is the largest cluster.
    """
    distances = np.asarray(distances, dtype=float)
    if distances.ndim != 2 or distances.shape[0] != distances.shape[1]:
        raise ValueError(f"distances must be a square (n, n) matrix, got shape {distances.shape}")
    if len(distances) < 2:
        return np.zeros(len(distances), dtype=int)
    labels = AgglomerativeClustering(n_clusters=None, metric="precomputed", linkage="average",
                                     distance_threshold=threshold).fit_predict(distances)
    return _largest_first(labels)


def _largest_first(labels: np.ndarray) -> np.ndarray:
    """Renumber cluster labels by size, largest 0; noise (``-1``) stays ``-1``."""
    clusters, sizes = np.unique(labels[labels >= 0], return_counts=True)
    rank = {c: r for r, c in enumerate(clusters[np.argsort(-sizes, kind="stable")])}
    return np.array([rank.get(label, -1) for label in labels])


def cluster_table(patterns, labels, top: int = 3) -> pd.DataFrame:
    """Per cluster: its size, share of all SISes and its ``top`` most frequent patterns with counts."""
    patterns, labels = list(patterns), np.asarray(labels)
    rows = []
    for c in sorted(set(labels.tolist()), key=lambda c: (c < 0, c)):
        members = pd.Series([p for p, lab in zip(patterns, labels) if lab == c])
        counts = members.value_counts().head(top)
        show = lambda p: p if isinstance(p, str) else " ".join(p)  # noqa: E731
        rows.append({"cluster": "noise" if c < 0 else int(c), "SISes": len(members),
                     "share": len(members) / len(patterns),
                     "top patterns (count)": ", ".join(f"{show(p)} ({n})" for p, n in counts.items())})
    return pd.DataFrame(rows).set_index("cluster")


def _matches(a: str, b: str, offset: int) -> int:
    """Equal non-gap letters when ``b`` is placed with its first letter under ``a[offset]``."""
    return sum(1 for j, ch in enumerate(b)
               if ch != "-" and 0 <= offset + j < len(a) and a[offset + j] == ch)


def consensus(patterns, min_coverage: float = 0.5) -> np.ndarray:
    """A ``(4, W)`` PWM from DNA SIS patterns: each aligned to the medoid, counted per column.

    Each pattern (or its reverse complement, whichever matches better) is placed
    at the offset with the most identical bases to the cluster's medoid (the
    member with the smallest total edit distance); gaps count nothing. Columns
    that fewer than ``min_coverage`` of the patterns cover are dropped.
    """
    patterns = [p for p in patterns if p]
    if not patterns:
        raise ValueError("no patterns to build a consensus from")
    medoid = patterns[int(edit_distances(patterns).sum(axis=1).argmin())]
    pad = max(len(p) for p in patterns)
    counts = np.zeros((4, len(medoid) + 2 * pad))
    for p in patterns:
        options = [(_matches(medoid, q, off), q, off) for q in (p, reverse_complement(p))
                   for off in range(-len(q) + 1, len(medoid))]
        _, best, offset = max(options, key=lambda o: o[0])
        for j, ch in enumerate(best):
            if ch in ALPHABET:
                counts[ALPHABET.index(ch), pad + offset + j] += 1
    covered = counts.sum(axis=0) >= min_coverage * len(patterns)
    if not covered.any():
        raise ValueError("no column is covered by enough patterns; lower min_coverage")
    cols = np.flatnonzero(covered)
    counts = counts[:, cols[0]:cols[-1] + 1]
    return (counts + 0.1) / (counts + 0.1).sum(axis=0, keepdims=True)


def overlaps_site(table: pd.DataFrame, sites: list) -> np.ndarray:
    """For each row of :func:`sis_table`, whether the SIS span meets one of its example's ``sites``."""
    return np.array([any(r.start < s.end and s.start < r.end for s in sites[r.example])
                     for r in table.itertuples()], dtype=bool)


def core(pattern: str, sequence: str, max_gap: int = 2) -> str:
    """The ungapped core of one DNA SIS: its densest block of kept bases, gaps filled from the sequence.

    ``pattern`` is the gapped string of :func:`gapped` (``-`` = masked) and
    ``sequence`` the bases under the same span. Kept positions at most
    ``max_gap`` masked bases apart form a block; the block with the most kept
    bases (ties: the first) is returned with the sequence's own bases in its
    gaps, e.g. ``"TGC-GAG-CA"`` over ``TGCTGAGTCA`` gives ``"TGCTGAGTCA"``. A
    SIS that keeps a second, distant site (``"TGCTGA" + 20 gaps + "TCA"``) gives
    the larger block only. These cores are what Carter et al.'s (2019)
    cluster tables count.
    """
    if len(pattern) != len(sequence):
        raise ValueError(f"pattern has {len(pattern)} positions but the sequence span has {len(sequence)}")
    kept = [i for i, ch in enumerate(pattern) if ch != "-"]
    if not kept:
        return ""
    blocks, start = [], kept[0]
    for previous, position in zip(kept, kept[1:]):
        if position - previous - 1 > max_gap:
            blocks.append((start, previous))
            start = position
    blocks.append((start, kept[-1]))
    lo, hi = max(blocks, key=lambda b: sum(1 for i in kept if b[0] <= i <= b[1]))
    return sequence[lo : hi + 1]


def sis_cores(table: pd.DataFrame, items: list, max_gap: int = 2) -> list[str]:
    """:func:`core` of every row of :func:`sis_table`; ``items[i]`` is example ``i``'s DNA string."""
    return [core(r.pattern, items[r.example][r.start:r.end], max_gap) for r in table.itertuples()]
