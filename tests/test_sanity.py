"""Sanity checks: randomisation changes a model-dependent map, and deletion curves reward the truth."""

import numpy as np
import pytest
import torch

from mlcourse.datasets.simulate import motif_discovery
from mlcourse.interpret import backprop, compare, sanity


def test_rank_correlation_by_hand():
    a = np.array([[1.0, 2, 3, 4], [1, 2, 3, 4], [1, 1, 1, 1], [-np.inf, -np.inf, 1, 2]])
    b = np.array([[2.0, 4, 6, 8], [4, 3, 2, 1], [1, 2, 3, 4], [0, 0, 1, 2]])
    got = sanity.rank_correlation(a, b)
    assert got[0] == pytest.approx(1) and got[1] == pytest.approx(-1) and np.isnan(got[2])
    assert got[3] == pytest.approx(1)  # unranked (-inf) positions count as the lowest rank
    with pytest.raises(ValueError, match="one shape"):
        sanity.rank_correlation(a, b[:2])


def test_randomise_resets_only_the_named_layers():
    model = compare.motif_detector("MAFF")
    assert sanity.parameter_layers(model) == ["conv1", "fc", "out"]
    changed = sanity.randomise(model, ["out"], seed=1)
    assert torch.equal(changed.conv1.weight, model.conv1.weight)
    assert not torch.equal(changed.out.weight, model.out.weight)
    assert torch.equal(sanity.randomise(model, ["out"], seed=1).out.weight, changed.out.weight)
    with pytest.raises(ValueError, match="no layer 'conv9'"):
        sanity.randomise(model, ["conv9"])


@pytest.fixture(scope="module")
def bound():
    data = motif_discovery("MAFF", n=60, seed=2, max_instances=1)
    idx = np.flatnonzero(data.y == 1)[:8]
    return data.X[idx], [data.sites[i] for i in idx]


def test_cascading_randomisation_separates_a_model_map_from_an_input_map(bound):
    X, _ = bound

    def scorers(model):
        return {"saliency": lambda X: backprop.saliency(model, X).abs().amax(1),
                "GC content": lambda X: X[:, 1] + X[:, 2]}  # a "method" that ignores the model

    table = sanity.cascading_randomisation(compare.motif_detector("MAFF"), scorers, X, seed=0)
    assert list(table.columns) == ["out", "fc", "conv1"]
    assert table.loc["GC content"].min() == pytest.approx(1.0)  # never changes: fails the check
    assert table.loc["saliency", "conv1"] < 0.5  # a random network's gradients are another map


def test_deletion_curves_reward_the_planted_site(bound):
    X, sites = bound
    model = compare.motif_detector("MAFF")
    truth = torch.zeros(X.shape[0], X.shape[2])
    for i, row in enumerate(sites):
        for s in row:
            truth[i, s.start:s.end] = 1
    fractions, probs = sanity.deletion_curve(model, X, truth, steps=10)
    with torch.no_grad():
        assert probs[:, 0] == pytest.approx(torch.sigmoid(model(X)).numpy(), abs=1e-6)
        assert probs[:, -1] == pytest.approx(torch.sigmoid(model(torch.full_like(X, 0.25))).numpy(), abs=1e-6)
    assert probs[:, 2] == pytest.approx(probs[:, -1], abs=0.02)  # all the site is gone after 20%
    table = sanity.deletion_table(model, {"planted site": lambda X: truth}, X, steps=10)
    assert table.loc["planted site", "deletion area"] < table.loc["random order", "deletion area"] - 0.02
    with pytest.raises(ValueError, match="scores must be"):
        sanity.deletion_curve(model, X, truth[:2])


def test_shuffled_labels_keeps_the_labels_but_not_their_order():
    data = motif_discovery("MAFF", n=40, seed=0)
    shuffled = sanity.shuffled_labels(data, seed=1)
    assert sorted(shuffled.y) == sorted(data.y) and not np.array_equal(shuffled.y, data.y)
    assert shuffled.seqs == data.seqs and "shuffled" in shuffled.name


def test_sanity_table_has_one_row_per_method_and_flags_the_model_blind_one(bound):
    X, _ = bound
    model = compare.motif_detector("MAFF")

    def scorers(m):
        return {"saliency": lambda X: backprop.saliency(m, X).abs().amax(1),
                "GC content": lambda X: X[:, 1] + X[:, 2]}

    table = sanity.sanity_table(model, scorers, X, label_model=sanity.randomise(model, ["conv1", "fc", "out"]),
                                steps=5)
    assert list(table.index) == ["saliency", "GC content"]
    assert table.loc["GC content", "rho, labels random"] == pytest.approx(1.0)
    assert list(table.columns[:3]) == ["rho, random from out", "rho, random from fc", "rho, random from conv1"]
    assert table.loc["saliency", "rho, random from conv1"] < 0.5
    assert table.attrs["random deletion area"] > 0


def test_compare_joins_the_checks_to_a_method_table(bound):
    X, sites = bound
    model = compare.motif_detector("MAFF")

    def scorers(m):
        return {"saliency": lambda X: backprop.saliency(m, X).abs().amax(1)}

    table = compare.compare_methods(scorers(model), X, sites, k=11)
    joined = compare.with_sanity_checks(table, model, scorers, X)
    assert {"precision@k", "rho, random from conv1", "deletion area"} <= set(joined.columns)
    assert "random deletion area" in joined.attrs and "chance" in joined.attrs
