"""Integrated gradients from the formula vs Captum, completeness, DeepLIFT on DNA."""

import numpy as np
import pytest
import torch
from captum.attr import DeepLiftShap, IntegratedGradients
from torch import nn

from mlcourse.datasets.simulate import motif_discovery
from mlcourse.dna import decode, dinucleotide_counts, one_hot
from mlcourse.interpret import compare, paths
from mlcourse.models import zeng

L = 30


def dna_model(seed=0):
    """A small DNA CNN built by the course's module rules (each nonlinearity/pool its own module)."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv1d(4, 6, 5), nn.ReLU(), nn.MaxPool1d(2), nn.Conv1d(6, 4, 3), nn.ReLU(),
        nn.MaxPool1d((L - 4) // 2 - 2), nn.Flatten(), nn.Linear(4, 1), nn.Flatten(0),
    ).eval()


def image_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 6 * 6, 5), nn.Tanh(), nn.Linear(5, 3),
    ).eval()


def random_dna(n, seed=0):
    rng = np.random.default_rng(seed)
    return one_hot(["".join(rng.choice(list("ACGT"), L)) for _ in range(n)])


@pytest.mark.parametrize("method", paths.METHODS)
def test_weights_integrate_polynomials(method):
    alphas, weights = paths.riemann_weights(200, method)
    assert weights.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.all((alphas >= 0) & (alphas <= 1))
    # the integral of a straight line is exact for the symmetric rules
    if method in ("riemann_middle", "riemann_trapezoid", "gausslegendre"):
        assert (weights * (3 * alphas + 1)).sum() == pytest.approx(2.5, abs=1e-12)


def test_ig_of_linear_model_is_weight_times_difference():
    torch.manual_seed(1)
    linear = nn.Linear(8, 1)
    model = nn.Sequential(linear, nn.Flatten(0))
    X, base = torch.randn(3, 8), torch.randn(1, 8)
    attr = paths.integrated_gradients(model, X, baseline=base, steps=5, method="riemann_left")
    torch.testing.assert_close(attr, (X - base) * linear.weight.detach(), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("method", ["riemann_left", "riemann_right", "riemann_middle", "gausslegendre"])
def test_ig_agrees_with_captum_dna(method):
    model, X = dna_model(), random_dna(4)
    base = torch.full_like(X, 0.25)
    ours = paths.integrated_gradients(model, X, baseline=base, steps=32, method=method, batch_size=40)
    theirs = IntegratedGradients(model).attribute(X, baselines=base, n_steps=32, method=method)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def test_ig_agrees_with_captum_images_with_target():
    model = image_model()
    X = torch.rand(3, 1, 8, 8)
    target = torch.tensor([0, 2, 1])
    ours = paths.integrated_gradients(model, X, target=target, steps=20, method="riemann_right")
    theirs = IntegratedGradients(model).attribute(X, target=target, n_steps=20, method="riemann_right")
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def test_captum_trapezoid_is_ours_times_m_minus_1_over_m():
    model, X = dna_model(), random_dna(2)
    ours = paths.integrated_gradients(model, X, steps=25)
    theirs = IntegratedGradients(model).attribute(X, n_steps=25, method="riemann_trapezoid")
    torch.testing.assert_close(ours * 24 / 25, theirs, atol=1e-5, rtol=1e-5)


@pytest.fixture(scope="module")
def detector_and_motif_seqs():
    data = motif_discovery("MAFF", n=80, seed=1)
    return compare.motif_detector("MAFF"), data.subset(data.y == 1).X[:24]


def test_ig_completeness_at_200_steps_on_a_motif_cnn(detector_and_motif_seqs):
    """Sum of IG = F(x) - F(x'): within 1% over the batch and for the median sequence.

    A ReLU / max-pool network is piecewise linear along the path, so the
    Riemann sum errs at every kink by up to one step times the jump of the
    slope: the error shrinks like 1/m, and a sequence whose output barely
    changes can keep a larger relative error.
    """
    model, X = detector_and_motif_seqs
    base = paths.shuffled_references(X, 1, seed=0)[:, 0]
    attr = paths.integrated_gradients(model, X, baseline=base, steps=200)
    with torch.no_grad():
        change = model(X) - model(base)
    batch_gap = (attr.sum() - change.sum()).abs() / change.abs().sum()
    assert batch_gap < 0.01
    gaps = paths.completeness_gap(model, X, attr, baseline=base, relative=True)
    assert gaps.median() < 0.01
    coarse = paths.completeness_gap(model, X, paths.integrated_gradients(model, X, baseline=base, steps=20),
                                    baseline=base, relative=True)
    assert gaps.mean() < coarse.mean() / 5


def test_ig_completeness_within_one_percent_on_a_smooth_image_model():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.Softplus(), nn.Flatten(), nn.Linear(108, 5),
                          nn.Tanh(), nn.Linear(5, 3))
    X = torch.rand(6, 1, 8, 8)
    attr = paths.integrated_gradients(model, X, target=2, steps=200)
    assert paths.completeness_gap(model, X, attr, target=2, relative=True).max() < 0.01


def test_shuffled_references_keep_dinucleotides():
    X = random_dna(3)
    refs = paths.shuffled_references(X, 4, seed=1)
    assert refs.shape == (3, 4, 4, L)
    for seq, rows in zip(decode(X), refs):
        for ref in decode(rows):
            assert dinucleotide_counts(ref) == dinucleotide_counts(seq)
        assert len(set(decode(rows))) > 1


def test_deeplift_of_linear_model_is_exact():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4 * L, 1), nn.Flatten(0)).eval()
    X = random_dna(2)
    refs = paths.shuffled_references(X, 3)
    attr = paths.deeplift(model, X, baseline=refs)
    w = model[1].weight.detach().reshape(4, L)
    torch.testing.assert_close(attr, (w * (X[:, None] - refs)).mean(1), atol=1e-6, rtol=1e-5)


def test_deeplift_shap_matches_captum_with_shared_references():
    """On a model where no two hooked modules touch (Captum's own rules are exact there)."""
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv1d(4, 5, 5), nn.ReLU(), nn.Flatten(), nn.Linear(5 * (L - 4), 4),
                          nn.Tanh(), nn.Linear(4, 1), nn.Flatten(0)).eval()
    X = random_dna(1, seed=5)
    refs = paths.shuffled_references(X, 6, seed=3)
    ours = paths.deeplift(model, X, baseline=refs)
    theirs = DeepLiftShap(model).attribute(X, baselines=refs[0])
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)


def test_deeplift_convergence_delta_small_and_sums_to_delta():
    model, X = dna_model(seed=4), random_dna(6, seed=4)
    attr, delta = paths.deeplift_shap(model, X, n_references=5, seed=0, return_delta=True)
    assert delta.shape == (6, 5)
    assert delta.abs().max() < 1e-5
    refs = paths.shuffled_references(X, 5, seed=0)
    with torch.no_grad():
        change = model(X) - model(refs.reshape(-1, 4, L)).reshape(6, 5).mean(1)
    torch.testing.assert_close(attr.sum((1, 2)), change, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", zeng.ARCHITECTURES)
def test_deeplift_delta_small_on_every_zeng_architecture(name):
    """ReLU feeds MaxPool1d directly in these models; summation-to-delta must still hold."""
    torch.manual_seed(0)
    model = zeng.build(name)
    with torch.no_grad():  # larger weights than the default init, so outputs move
        for p in model.parameters():
            p.mul_(3)
    X = one_hot(["".join(np.random.default_rng(i).choice(list("ACGT"), 101)) for i in range(3)])
    _, delta = paths.deeplift_shap(model, X, n_references=4, return_delta=True)
    refs = paths.shuffled_references(X, 4)
    with torch.no_grad():
        change = (model(X)[:, None] - model(refs.reshape(-1, 4, 101)).reshape(3, 4)).abs()
    assert change.max() > 0.1
    assert delta.abs().max() < 1e-4 * max(1.0, float(change.max()))


def test_hypothetical_contributions_at_observed_base_equal_actual_per_position():
    model, X = dna_model(seed=6), random_dna(3, seed=6)
    refs = paths.shuffled_references(X, 4, seed=2)
    actual = paths.deeplift(model, X, baseline=refs)
    hyp = paths.deeplift(model, X, baseline=refs, hypothetical=True)
    torch.testing.assert_close((hyp * X).sum(1), actual.sum(1), atol=1e-5, rtol=1e-4)
    # hypothetical scores differ between bases: they say what each base would contribute
    assert (hyp.max(1).values - hyp.min(1).values).max() > 0


def test_dna_ig_against_references_completes():
    model, X = dna_model(seed=7), random_dna(2, seed=7)
    refs = paths.shuffled_references(X, 3, seed=0)
    attr = paths.integrated_gradients(model, X, baseline=refs, steps=100, method="gausslegendre")
    with torch.no_grad():
        change = model(X) - model(refs.reshape(-1, 4, L)).reshape(2, 3).mean(1)
    torch.testing.assert_close(attr.sum((1, 2)), change, atol=2e-2, rtol=2e-2)


def test_ig_against_references_equals_captum_averaged_over_them():
    """One IG implementation: (N, R, 4, L) references average Captum's IG over each sequence's own."""
    model, X = dna_model(seed=7), random_dna(2, seed=7)
    refs = paths.shuffled_references(X, 3, seed=0)
    ours = paths.integrated_gradients(model, X, baseline=refs, steps=40, method="gausslegendre")
    theirs = torch.stack([
        IntegratedGradients(model).attribute(X[i:i + 1].expand(3, -1, -1), baselines=refs[i], n_steps=40,
                                             method="gausslegendre").mean(0)
        for i in range(2)])
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)
    hyp = paths.integrated_gradients(model, X, baseline=refs, steps=40, method="gausslegendre", hypothetical=True)
    torch.testing.assert_close((hyp * X).sum(1), ours.sum(1), atol=1e-5, rtol=1e-4)
    gap = paths.completeness_gap(model, X, ours, baseline=refs)
    torch.testing.assert_close(gap, ours.sum((1, 2)) - (model(X) - model(refs.reshape(-1, 4, L)).reshape(2, 3).mean(1)),
                               atol=1e-5, rtol=1e-5)


def test_clear_errors():
    model, X = dna_model(), random_dna(2)
    with pytest.raises(ValueError, match="riemann_sideways"):
        paths.integrated_gradients(model, X, method="riemann_sideways")
    with pytest.raises(ValueError, match=r"baseline of shape \(3, 4, 30\)"):
        paths.integrated_gradients(model, X, baseline=torch.zeros(3, 4, L))
    with pytest.raises(ValueError, match="target=class index"):
        paths.integrated_gradients(image_model(), torch.rand(2, 1, 8, 8))
    with pytest.raises(ValueError, match="steps must be"):
        paths.riemann_weights(1)
    with pytest.raises(ValueError, match=r"baseline of shape \(2, 4, 29\)"):
        paths.deeplift(model, X, baseline=torch.zeros(2, 4, L - 1))
    # issue 15: a sequence of the wrong length is reported as the caller's shape
    with pytest.raises(ValueError, match=r"inputs of shape \(2, 4, 20\)"):
        paths.deeplift(dna_model(), random_dna(2)[:, :, :20])
    with pytest.raises(ValueError, match=r"inputs of shape \(2, 4, 20\)"):
        paths.integrated_gradients(dna_model(), random_dna(2)[:, :, :20])
    with pytest.raises(ValueError, match=r"got \(2, 4, 30\)"):  # the model's own message, with the user's shape
        paths.deeplift(zeng.build("1layer"), random_dna(2))


def test_ig_runs_modules_in_eval_mode_and_restores_training():
    torch.manual_seed(8)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4 * L, 8), nn.ReLU(), nn.Dropout(0.5),
                          nn.Linear(8, 1), nn.Flatten(0))
    X = random_dna(2)
    model.train()
    first = paths.integrated_gradients(model, X, steps=10)
    assert model.training
    torch.testing.assert_close(first, paths.integrated_gradients(model.eval(), X, steps=10))
