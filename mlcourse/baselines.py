"""Baselines for the CNNs: a PWM scan, and a gapped k-mer SVM.

PWM scan
    Score each sequence by its best log-odds window for a known JASPAR motif
    (both strands) and rank by that score. No training at all: how far does
    the textbook motif get us?

Gapped k-mer SVM (gkm-SVM)
    After Ghandi, Lee, Mohammad-Noori & Beer 2014, "Enhanced regulatory
    sequence prediction using gapped k-mer features", PLoS Comput Biol
    10:e1003711. Every ``l``-bp window of a sequence is described by its gapped k-mers:
    for each of the ``C(l, k)`` ways to choose ``k`` informative positions in
    the window, the ``k`` bases found there. A sequence becomes the vector of
    counts of (pattern, bases) pairs, counted on both strands; a linear SVM
    learns a weight per gapped k-mer.

    How it relates to the gkm kernel: the inner product of two such count
    vectors sums, over every pair of windows ``u`` (from ``x``) and ``v``
    (from ``y`` or its reverse complement), the number of patterns on which
    ``u`` and ``v`` agree. If they differ at ``m`` positions that is
    ``C(l - m, k)`` — exactly the gkm-SVM kernel
    ``K(x, y) = sum_{u,v} C(l - m(u, v), k)`` (Ghandi et al., eq. 2; for odd
    ``k`` exactly, for even ``k`` up to gapped k-mers that are their own
    reverse complement), and dividing each vector by its norm gives their
    normalised kernel ``K(x,y) / sqrt(K(x,x) K(y,y))``. gkm-SVM never builds the vectors
    (there are ``C(l,k) 4^k`` features) and solves the SVM in the dual with a
    tree over l-mers; here ``l`` and ``k`` are small enough that the explicit,
    sparse feature matrix fits in memory and scikit-learn's ``LinearSVC``
    (liblinear) solves the same problem in the primal, in time linear in the
    number of sequences. Strands: a gapped k-mer and its reverse complement
    (mirrored pattern, complemented bases) share one feature, as in gkm-SVM.

    Default ``l=7, k=5`` (21 patterns x 1024 words, about 11k features after
    merging strands; gkm-SVM's own default is ``l=10, k=6``, 860k features):
    on 20,000 sequences of 101 bp, features and SVM together take under a
    minute on one core (``benchmarks/bench_train.py``); on real CTCF data
    ``l=7, k=5`` beat ``l=6, k=4``, and ``C=0.1`` beat 0.01 and 1.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import combinations
from math import comb

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import normalize
from sklearn.svm import LinearSVC

from mlcourse.dna import validate
from mlcourse.train import binary_metrics

__all__ = ["pwm_scan_scores", "pwm_baseline", "gapped_kmer_patterns", "gapped_kmer_features",
           "GappedKmerSVM"]

_CODE = np.full(256, 4, dtype=np.int64)
for _i, _b in enumerate("ACGT"):
    _CODE[ord(_b)] = _i


def _seqs_and_labels(data, where: str):
    """``(seqs, y)`` from a SeqDataset or a ``(seqs, y)`` pair."""
    if hasattr(data, "seqs") and hasattr(data, "y"):
        return data.seqs, np.asarray(data.y)
    if isinstance(data, (tuple, list)) and len(data) == 2 and not isinstance(data[0], str):
        seqs, y = data
        return validate(seqs), np.asarray(y)
    raise ValueError(f"{where} must be a SeqDataset or a (sequences, labels) pair")


def pwm_scan_scores(motif, data) -> np.ndarray:
    """Best log-odds score of ``motif`` (a Motif, or a JASPAR name/ID) per sequence, both strands."""
    from mlcourse import motifs

    if isinstance(motif, str):
        motif = motifs.jaspar(motif)
    X = data.X if hasattr(data, "X") else data
    return motifs.scan(motif, X)


def pwm_baseline(motif, data) -> dict:
    """Score ``data`` (SeqDataset) with a PWM scan: ROC-AUC, PR-AUC and the ROC curve.

    The keys are those of :func:`mlcourse.train.evaluate`, so a scan and a CNN
    go side by side in one table or one ROC plot.
    """
    return binary_metrics(data.y, pwm_scan_scores(motif, data), where="PWM-scan data")


def gapped_kmer_patterns(l: int, k: int) -> list[tuple[int, ...]]:  # noqa: E741 (gkm-SVM notation)
    """All ``C(l, k)`` choices of ``k`` informative positions in an ``l``-bp window, sorted."""
    if not (isinstance(l, int) and isinstance(k, int) and 1 <= k <= l):
        raise ValueError(f"need integers 1 <= k <= l, got l={l!r}, k={k!r}")
    return list(combinations(range(l), k))


@lru_cache(maxsize=8)
def _canonical(l: int, k: int) -> tuple[np.ndarray, int]:  # noqa: E741
    """Map raw feature ids (pattern * 4**k + word) to merged-strand column ids, and the column count.

    The reverse complement of pattern ``P`` with word ``w`` is pattern
    ``l-1-P`` (reversed, so sorted again) with the complemented bases of ``w``
    in reverse order. Both map to the column of the smaller raw id.
    """
    patterns = gapped_kmer_patterns(l, k)
    index = {p: i for i, p in enumerate(patterns)}
    words = np.arange(4**k)
    digits = (words[:, None] // 4 ** np.arange(k - 1, -1, -1)) % 4  # (4**k, k), most significant first
    rc_words = ((3 - digits[:, ::-1]) * 4 ** np.arange(k - 1, -1, -1)).sum(axis=1)
    raw = np.arange(len(patterns) * 4**k)
    partner = np.empty_like(raw)
    for i, p in enumerate(patterns):
        j = index[tuple(sorted(l - 1 - q for q in p))]
        partner[i * 4**k + words] = j * 4**k + rc_words
    canon = np.minimum(raw, partner)
    _, columns = np.unique(canon, return_inverse=True)
    return columns, int(columns.max()) + 1


def gapped_kmer_features(seqs, l: int = 7, k: int = 5, *, normalized: bool = True,  # noqa: E741
                         chunk: int = 2000) -> sp.csr_matrix:
    """Count gapped k-mers of every sequence on both strands: a sparse ``(N, n_features)`` matrix.

    Parameters
    ----------
    seqs : list of str or SeqDataset
        DNA of one length (at least ``l``). A gapped k-mer with ``N`` at an
        informative position is not counted (``N`` in a gap is fine).
    l, k : int
        Window length and number of informative positions (``k <= l``).
    normalized : bool
        Divide each row by its Euclidean norm (gkm-SVM's kernel normalisation).
    chunk : int
        Sequences per block (bounds the memory of the intermediate arrays).

    Returns
    -------
    scipy.sparse.csr_matrix
        float32 counts; column ``j`` is one gapped k-mer merged with its
        reverse complement, so a gapped k-mer read on either strand adds to it.
    """
    seqs = seqs.seqs if hasattr(seqs, "seqs") else validate(seqs)
    patterns = np.array(gapped_kmer_patterns(l, k))  # (P, k)
    if len(seqs[0]) < l:
        raise ValueError(f"sequences of {len(seqs[0])} bp are shorter than the window l={l}")
    columns, n_features = _canonical(l, k)
    powers = 4 ** np.arange(k - 1, -1, -1)
    n_windows = len(seqs[0]) - l + 1
    # positions[p, w, j]: sequence position of pattern p's j-th informative base in window w
    positions = patterns[:, None, :] + np.arange(n_windows)[None, :, None]
    blocks = []
    for start in range(0, len(seqs), chunk):
        part = seqs[start : start + chunk]
        codes = _CODE[np.frombuffer("".join(part).encode("ascii"), dtype=np.uint8)].reshape(len(part), -1)
        picked = codes[:, positions]  # (n, P, W, k)
        valid = (picked < 4).all(axis=-1)
        raw = (picked * powers).sum(axis=-1) + (np.arange(len(patterns)) * 4**k)[None, :, None]
        rows = np.broadcast_to(np.arange(len(part))[:, None, None], raw.shape)[valid]
        block = sp.coo_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, columns[raw[valid]])),
            shape=(len(part), n_features),
        ).tocsr()
        blocks.append(block)
    X = sp.vstack(blocks).tocsr()
    X.sum_duplicates()
    return normalize(X) if normalized else X


class GappedKmerSVM:
    """A linear SVM on gapped k-mer counts: the gkm-SVM model of Ghandi et al. (2014).

    Parameters
    ----------
    l, k : int
        Window length and informative positions (see :func:`gapped_kmer_features`).
    C : float
        SVM regularisation (larger = fit the training data more closely).
    max_iter : int
        liblinear iterations.

    Examples
    --------
    >>> svm = GappedKmerSVM().fit(train)        # doctest: +SKIP
    >>> svm.evaluate(test)["auc"]               # doctest: +SKIP
    """

    def __init__(self, l: int = 7, k: int = 5, C: float = 0.1, max_iter: int = 5000):  # noqa: E741
        gapped_kmer_patterns(l, k)
        self.l, self.k, self.C = l, k, C
        self.svm = LinearSVC(C=C, max_iter=max_iter, dual=True)

    def __repr__(self) -> str:
        return f"GappedKmerSVM(l={self.l}, k={self.k}, C={self.C}, {comb(self.l, self.k)} patterns)"

    def fit(self, data) -> GappedKmerSVM:
        """Train on a SeqDataset or a ``(sequences, labels)`` pair; returns ``self``."""
        seqs, y = _seqs_and_labels(data, "training data")
        if len(np.unique(y)) < 2:
            raise ValueError(f"training data has only label {y[0]:g}: the SVM needs both classes")
        self.svm.fit(gapped_kmer_features(seqs, self.l, self.k), y)
        return self

    def decision_function(self, data) -> np.ndarray:
        """Signed SVM margin per sequence (higher = more likely bound)."""
        seqs = data.seqs if hasattr(data, "seqs") else validate(data)
        return self.svm.decision_function(gapped_kmer_features(seqs, self.l, self.k))

    def evaluate(self, data) -> dict:
        """ROC-AUC, PR-AUC and the ROC curve on a SeqDataset, as :func:`mlcourse.train.evaluate`."""
        seqs, y = _seqs_and_labels(data, "evaluation data")
        return binary_metrics(y, self.decision_function(seqs))
