"""Motifs from attributions: seqlets sit on the planted sites, TF-MoDISco returns the planted motif."""

import numpy as np
import pytest

from mlcourse.datasets.simulate import motif_discovery
from mlcourse.interpret import compare, modisco, paths
from mlcourse.motifs import Motif, jaspar


def test_seqlets_find_planted_spikes():
    scores = np.random.default_rng(0).normal(0, 0.1, (3, 60))
    scores[0, 10:20] += 2
    scores[2, 40:50] += 2
    found = modisco.seqlets(scores, window=10)
    assert sorted(zip(found["seq"], found["start"])) == [(0, 10), (2, 40)]
    with pytest.raises(ValueError, match="window"):
        modisco.seqlets(scores[:, :5], window=10)


def test_overlap_similarity_penalises_a_short_match():
    ctcf = jaspar("CTCF")
    core = Motif.from_probs(ctcf.probs[:, 5:11], "core")  # 6 of CTCF's 19 columns
    plain = modisco.similarity(ctcf, core).score
    aware, _, _ = modisco.overlap_similarity(ctcf, core, min_overlap=0.6)
    assert plain > 0.95  # the plain score divides by the shorter width: a perfect match
    assert aware == pytest.approx(plain * 6 / np.ceil(0.6 * ctcf.width))
    assert modisco.overlap_similarity(ctcf, ctcf)[0] == pytest.approx(1.0, abs=1e-6)


def test_tfmodisco_recovers_the_planted_motif():
    data = motif_discovery("CTCF", n=500, seed=0, max_instances=2)
    bound = data.subset(np.flatnonzero(data.y == 1))
    detector = compare.motif_detector("CTCF")
    hyp = paths.deeplift_shap(detector, bound.X, n_references=5, hypothetical=True)
    patterns = modisco.tfmodisco(bound.X, hyp, leiden_runs=2)
    assert patterns and patterns[0].name == "pos_0"
    table = modisco.match_patterns(patterns[:1], planted=["CTCF"])
    assert table.loc[0, "similarity to CTCF"] > 0.8
    assert table.loc[0, "JASPAR match"].split()[0].upper().startswith("CTCF")
