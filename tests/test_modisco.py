"""Motifs from attributions: seqlets sit on the planted sites, TF-MoDISco returns the planted motif."""

import numpy as np
import pytest

from mlcourse.datasets.simulate import motif_discovery
from mlcourse.interpret import compare, modisco, paths
from mlcourse.motifs import Motif, jaspar, similarity


def test_seqlets_find_planted_spikes():
    scores = np.random.default_rng(0).normal(0, 0.1, (3, 60))
    scores[0, 10:20] += 2
    scores[2, 40:50] += 2
    found = modisco.seqlets(scores, window=10)
    assert sorted(zip(found["seq"], found["start"])) == [(0, 10), (2, 40)]
    with pytest.raises(ValueError, match="window"):
        modisco.seqlets(scores[:, :5], window=10)


def test_match_patterns_ranks_by_width_aware_p_values():
    ctcf = jaspar("CTCF")
    core = Motif.from_probs(ctcf.probs[:, 5:11], "core")  # 6 of CTCF's 19 columns: a perfect partial match
    maff = jaspar("MAFF")
    pattern = modisco.Pattern("pos_0", ctcf.probs, ctcf.probs, ctcf.probs, 10)
    table = modisco.match_patterns([pattern], candidates=[core, maff, ctcf], planted=[maff, core])
    row = table.loc[0]
    assert similarity(ctcf, core).score > 0.95  # a mean correlation cannot tell them apart
    assert row["JASPAR match"] == f"CTCF {ctcf.matrix_id}"  # the p-value can: 19 columns beat 6
    assert row["match similarity"] == pytest.approx(1.0, abs=0.02) and row["overlap"] == ctcf.width
    assert row["match p-value"] < row["runner-up p-value"] <= row["p-value to core"]
    assert row["p-value to MAFF"] > row["p-value to core"]


def test_tfmodisco_recovers_the_planted_motif():
    data = motif_discovery("CTCF", n=500, seed=0, max_instances=2)
    bound = data.subset(np.flatnonzero(data.y == 1))
    detector = compare.motif_detector("CTCF")
    hyp = paths.deeplift_shap(detector, bound.X, n_references=5, hypothetical=True)
    patterns = modisco.tfmodisco(bound.X, hyp, leiden_runs=2)
    assert patterns and patterns[0].name == "pos_0"
    table = modisco.match_patterns(patterns[:1], planted=["CTCF"])
    assert table.loc[0, "similarity to CTCF"] > 0.8 and table.loc[0, "p-value to CTCF"] < 1e-3
    assert table.loc[0, "JASPAR match"].split()[0].upper().startswith("CTCF")


def test_modisco_lite_keeps_its_compiled_functions_on_disk():
    """numba's cache is on for every compiled function of modisco-lite (a new process loads, not recompiles)."""
    import importlib
    import pkgutil

    import modiscolite
    from numba.core.caching import FunctionCache
    from numba.core.registry import CPUDispatcher

    modisco._modisco_lite()
    compiled = [value for info in pkgutil.iter_modules(modiscolite.__path__)
                for value in vars(importlib.import_module(f"modiscolite.{info.name}")).values()
                if isinstance(value, CPUDispatcher)]
    assert len(compiled) >= 10
    assert all(isinstance(function._cache, FunctionCache) for function in compiled)
