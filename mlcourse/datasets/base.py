"""The one dataset type for TF-binding sequences, simulated or real.

A :class:`SeqDataset` holds DNA strings, binary labels (1 = bound) and, for
simulated data, the ground truth: every planted motif site. ``X`` gives the
one-hot tensor ``(N, 4, L)`` and ``split`` makes train/valid/test parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from mlcourse.dna import as_rng, one_hot, validate
from mlcourse.motifs import scan_positions

__all__ = ["Site", "SeqDataset"]


@dataclass(frozen=True)
class Site:
    """A planted motif instance: ``start`` (0-based), ``strand`` (``+``/``-``), ``motif`` name, ``width``."""

    start: int
    strand: str
    motif: str
    width: int

    @property
    def end(self) -> int:
        """One past the last position of the site."""
        return self.start + self.width


@dataclass
class SeqDataset:
    """DNA sequences with binary labels and, when known, the planted sites.

    Attributes
    ----------
    seqs : list of str
        Upper-case DNA strings of one length.
    y : numpy.ndarray
        Float32 labels, 1 for bound and 0 for unbound, shape ``(N,)``.
    sites : list of list of Site, optional
        Ground truth per sequence (empty lists for real data).
    name : str
        What the data is, e.g. ``"simulated MAFF motif discovery"``.
    """

    seqs: list[str]
    y: np.ndarray
    sites: list[list[Site]] = field(default_factory=list)
    name: str = "sequences"

    def __post_init__(self):
        self.seqs = validate(self.seqs) if len(self.seqs) else []  # empty: e.g. split(test=0)'s test part
        try:
            self.y = np.asarray(self.y, dtype=np.float32).reshape(-1)
        except (TypeError, ValueError):
            raise ValueError(f"{self.name}: labels y must be 0/1 numbers, got {self.y!r:.40}") from None
        if len(self.y) != len(self.seqs):
            raise ValueError(f"{self.name}: {len(self.seqs)} sequences but {len(self.y)} labels")
        bad = np.flatnonzero((self.y != 0) & (self.y != 1))
        if bad.size:
            raise ValueError(f"{self.name}: label {self.y[bad[0]]!r} at row {bad[0]} is not 0 or 1")
        if not self.sites:
            self.sites = [[] for _ in self.seqs]
        if len(self.sites) != len(self.seqs):
            raise ValueError(f"{self.name}: {len(self.seqs)} sequences but {len(self.sites)} site lists")
        self._X = None

    def __len__(self) -> int:
        return len(self.seqs)

    def __repr__(self) -> str:
        return (
            f"SeqDataset({self.name!r}: {len(self)} sequences of {self.length} bp, "
            f"{int(self.y.sum())} bound)"
        )

    @property
    def length(self) -> int:
        """Sequence length in bp (0 for an empty dataset)."""
        return len(self.seqs[0]) if self.seqs else 0

    @property
    def X(self) -> torch.Tensor:
        """One-hot sequences, float32 ``(N, 4, L)`` (computed once, then cached)."""
        if self._X is None:
            self._X = one_hot(self.seqs) if self.seqs else torch.zeros((0, 4, 0))
        return self._X

    @property
    def labels(self) -> torch.Tensor:
        """Labels as a float32 tensor ``(N,)``."""
        return torch.from_numpy(self.y)

    def subset(self, index) -> SeqDataset:
        """The rows in ``index`` (an integer array, list or slice) as a new dataset."""
        idx = np.arange(len(self))[index]
        return SeqDataset(
            [self.seqs[i] for i in idx], self.y[idx], [self.sites[i] for i in idx], self.name
        )

    def scan_sites(self, motif, min_score: float = 10.0) -> list[list[Site]]:
        """Motif matches found by a PWM scan, as :class:`Site` lists (for real data without ground truth).

        Every window on either strand whose log-odds score (bits,
        :func:`mlcourse.motifs.scan_positions`) is at least ``min_score`` is a
        candidate; the best-scoring ones are kept, greedily, so that no two overlap.
        """
        scores = scan_positions(motif, self.X)  # (N, 2, L - W + 1)
        found = []
        for row in scores:
            strand, start = np.nonzero(row >= min_score)
            taken, sites = np.zeros(self.length, dtype=bool), []
            for k in np.argsort(-row[strand, start], kind="stable"):
                s = int(start[k])
                if not taken[s : s + motif.width].any():
                    taken[s : s + motif.width] = True
                    sites.append(Site(s, "+-"[strand[k]], motif.name, motif.width))
            found.append(sorted(sites, key=lambda site: site.start))
        return found

    def split(self, valid: float = 0.1, test: float = 0.2, seed=0):
        """Shuffle and split into ``(train, valid, test)`` datasets.

        ``valid`` and ``test`` are fractions of the rows; the rest trains. A
        fraction of 0 gives an empty dataset for that part (``len(test) == 0``).
        """
        if not (0 <= valid < 1 and 0 <= test < 1 and valid + test < 1):
            raise ValueError(f"valid={valid} and test={test} must be fractions that sum below 1")
        order = as_rng(seed).permutation(len(self))
        n_valid, n_test = int(round(valid * len(self))), int(round(test * len(self)))
        n_train = len(self) - n_valid - n_test
        return (
            self.subset(order[:n_train]),
            self.subset(order[n_train : n_train + n_valid]),
            self.subset(order[n_train + n_valid :]),
        )
