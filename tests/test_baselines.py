"""Baselines: gapped k-mer features counted by hand and against the gkm kernel; the SVM; the PWM scan."""

from itertools import product
from math import comb

import numpy as np
import pytest

from mlcourse.baselines import (
    GappedKmerSVM,
    gapped_kmer_features,
    gapped_kmer_patterns,
    pwm_baseline,
    pwm_scan_scores,
)
from mlcourse.datasets.simulate import motif_discovery
from mlcourse.dna import reverse_complement
from mlcourse.motifs import jaspar, scan


def test_patterns_are_the_k_subsets_of_a_window():
    assert gapped_kmer_patterns(3, 2) == [(0, 1), (0, 2), (1, 2)]
    assert len(gapped_kmer_patterns(7, 5)) == comb(7, 5) == 21
    with pytest.raises(ValueError, match="1 <= k <= l, got l=3, k=4"):
        gapped_kmer_patterns(3, 4)


def test_counts_on_a_hand_checked_sequence():
    # l=3, k=2: one window per 3-bp sequence, three gapped 2-mers (patterns 01, 02, 12).
    # "AAC" has AA_, A_C, _AC. Merging strands pairs each with its reverse complement (mirrored
    # pattern, complemented bases in reverse order): AA_ ~ _TT, A_C ~ G_T, _AC ~ GT_.
    # "GTT" has GT_, G_T, _TT: the same three columns, so the same row.
    # "AAA" has AA_, A_A, _AA: it shares only AA_ with "AAC", so their inner product is 1.
    raw = gapped_kmer_features(["AAC", "GTT", "AAA"], l=3, k=2, normalized=False).toarray()
    # columns: patterns 01 and 12 pair up (16 words); pattern 02 is its own mirror, and its 16 words
    # pair up except the 4 that are their own reverse complement (A_T, T_A, C_G, G_C): 6 + 4 = 10
    assert raw.shape[1] == 16 + 10
    assert sorted(raw[0][raw[0] > 0]) == [1, 1, 1]
    assert np.array_equal(raw[0], raw[1])
    assert sorted(raw[2][raw[2] > 0]) == [1, 1, 1]
    assert raw[0] @ raw[2] == 1


def _gkm_kernel(x, y, win, k):
    """Ghandi et al. (2014) eq. 2, by brute force over window pairs, y on both strands."""
    total = 0
    for other in (y, reverse_complement(y)):
        for i, j in product(range(len(x) - win + 1), range(len(other) - win + 1)):
            mismatches = sum(a != b for a, b in zip(x[i : i + win], other[j : j + win]))
            total += comb(win - mismatches, k)
    return total


@pytest.mark.parametrize("win,k", [(5, 3), (6, 3), (4, 1)])  # odd k: no self-complementary gapped k-mers
def test_inner_products_are_the_gkm_kernel(win, k):
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGT"), 14)) for _ in range(5)]
    F = gapped_kmer_features(seqs, l=win, k=k, normalized=False).toarray()
    expected = np.array([[_gkm_kernel(a, b, win, k) for b in seqs] for a in seqs])
    assert np.array_equal(F @ F.T, expected)
    normed = gapped_kmer_features(seqs, l=win, k=k).toarray()
    d = np.sqrt(np.diag(expected))
    assert np.allclose(normed @ normed.T, expected / np.outer(d, d), atol=1e-6)


def test_gapped_kmers_with_n_at_an_informative_position_are_skipped():
    raw = gapped_kmer_features(["ACGTNACGT"], l=4, k=2, normalized=False)
    # 6 windows x 6 patterns; the 4 windows that hold the N lose the 3 patterns using its offset
    assert raw.sum() == 6 * 6 - 4 * 3


def test_svm_learns_a_planted_motif_and_reverse_complements_score_alike():
    train, _, test = motif_discovery("GATA1", n=600, seed=2).split(valid=0.1, test=0.3, seed=0)
    svm = GappedKmerSVM(l=6, k=4).fit(train)
    assert svm.evaluate(test)["auc"] > 0.8
    seqs = test.seqs[:20]
    assert np.allclose(svm.decision_function(seqs), svm.decision_function(reverse_complement(seqs)))


def test_svm_refuses_one_class():
    with pytest.raises(ValueError, match="only label 1"):
        GappedKmerSVM().fit((["ACGTACGTAC"] * 4, [1, 1, 1, 1]))


def test_pwm_baseline_is_the_motif_scan():
    data = motif_discovery("MAFF", n=200, seed=3)
    assert np.array_equal(pwm_scan_scores("MAFF", data), scan(jaspar("MAFF"), data.X))
    assert pwm_baseline("MAFF", data)["auc"] > 0.9  # the scan knows the planted motif
