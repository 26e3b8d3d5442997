"""The ground-truth comparison: precision at k is computed right, and every method beats chance."""

import numpy as np
import pytest
import torch

from mlcourse.datasets.base import Site
from mlcourse.datasets.simulate import motif_discovery
from mlcourse.interpret import compare
from mlcourse.interpret.methods import METHODS, scorers


def test_precision_at_k_by_hand():
    scores = np.zeros((3, 10))
    scores[0, [2, 3, 4, 9]] = [5, 4, 3, 6]  # top 3: 9, 2, 3 -> 2 of 3 inside [2, 5)
    scores[1] = -np.inf
    scores[1, [7, 8]] = 1.0  # only two positions selected: judged on those
    sites = [[Site(2, "+", "m", 3)], [Site(6, "-", "m", 3)], []]
    got = compare.precision_at_k(scores, sites, k=3)
    assert got[0] == pytest.approx(2 / 3) and got[1] == 1.0 and np.isnan(got[2])
    with pytest.raises(ValueError, match="one row per site list"):
        compare.precision_at_k(scores, sites[:2], k=3)


@pytest.fixture(scope="module")
def called_sequences():
    """Bound sequences whose site the hand-set MAFF detector calls (logit > 1), with their sites."""
    data = motif_discovery("MAFF", n=120, seed=5)
    model = compare.motif_detector("MAFF")
    with torch.no_grad():
        idx = np.flatnonzero((data.y == 1) & (model(data.X).numpy() > 1))[:6]
    return model, data.X[idx], [data.sites[i] for i in idx]


def test_compare_methods_ranks_an_oracle_above_random(called_sequences):
    _, X, sites = called_sequences

    def oracle(X):
        inside = torch.zeros(X.shape[0], X.shape[2])
        for i, row in enumerate(sites[: len(X)]):
            for site in row:
                inside[i, site.start: site.end] = 1.0
        return inside + 0.01 * torch.rand(inside.shape)

    def noise(X):
        return torch.rand(X.shape[0], X.shape[2])

    table = compare.compare_methods({"noise": noise, "oracle": oracle}, X, sites, k=11)
    assert list(table["method"]) == ["oracle", "noise"]
    assert table["precision@k"][0] == 1.0
    assert table["precision@k"][1] < 0.6
    assert 0.1 < table.attrs["chance"] < 0.4
    with pytest.raises(ValueError, match=r"returned shape \(6, 4, 101\)"):
        compare.compare_methods({"bad": lambda X: X}, X, sites, k=11)


def test_every_course_method_finds_the_motif_a_detector_uses(called_sequences):
    model, X, sites = called_sequences
    methods = scorers(model, n_references=4, steps=20, n_samples=150)
    table = compare.compare_methods(methods, X, sites, k=11).set_index("method")
    assert set(table.index) >= {"ISM", "SIS", "saliency", "gradient x input", "guided backprop", "Grad-CAM",
                                "integrated gradients", "DeepLiftShap", "LIME", "KernelSHAP",
                                "maximum entropy"}
    assert (table["precision@k"] > table.attrs["chance"]).all()
    for exact in ("ISM", "SIS", "gradient x input", "integrated gradients", "DeepLiftShap"):
        assert table.loc[exact, "precision@k"] > 0.85
    assert (table["s / 100 seqs"] > 0).all()


def test_fast_engines_change_only_the_time(called_sequences):
    """ISM and SIS through the registry: fast=True gives the plain path's scores."""
    model, X, _ = called_sequences
    fast, plain = scorers(model, fast=True), scorers(model, fast=False)
    for name in ("ISM", "SIS"):
        torch.testing.assert_close(fast[name](X[:3]), plain[name](X[:3]), atol=1e-5, rtol=1e-5)


def test_registry_lists_each_method_once_for_its_data():
    assert set(METHODS) == set(scorers(compare.motif_detector(), "dna")) | {"guided Grad-CAM"}
    assert list(scorers(compare.motif_detector(), "image")) == [
        "saliency", "guided backprop", "Grad-CAM", "guided Grad-CAM", "integrated gradients", "LIME", "KernelSHAP"]
    with pytest.raises(ValueError, match="data must be one of"):
        scorers(compare.motif_detector(), "text")
