"""LIME, KernelSHAP and maximum-entropy sampling recover features a model is known to use."""

import numpy as np
import pytest
import torch

from mlcourse.datasets.simulate import motif_discovery
from mlcourse.dna import one_hot
from mlcourse.interpret import compare, features, surrogate

L = 20
USED = [5, 6, 7, 8]


def random_dna(n, length=L, seed=0):
    rng = np.random.default_rng(seed)
    return one_hot(["".join(rng.choice(list("ACGT"), length)) for _ in range(n)])


def positions_model():
    """Additive DNA model: only positions 5-8 matter, with base-specific weights."""
    torch.manual_seed(0)
    weights = torch.zeros(4, L)
    weights[:, USED] = torch.randn(4, len(USED)) * 2
    return (lambda X: (X * weights).sum((1, 2))), weights


def test_masks_group_the_right_entries():
    X = random_dna(2)
    mask = features.position_mask(X)
    assert mask.shape == X.shape and torch.equal(mask[1, 3], torch.arange(L))
    assert torch.equal(mask[0, 0], mask[0, 2])
    images = torch.zeros(1, 3, 8, 6)
    patches = features.patch_mask(images, patch=4)
    assert patches.shape == images.shape
    assert patches[0, 0, 0, 5] == 1 and patches[0, 2, 7, 0] == 2 and patches.max() == 3
    tokens = torch.randint(0, 9, (3, 7))
    assert torch.equal(features.default_mask(tokens)[2], torch.arange(7))


def test_clear_errors():
    with pytest.raises(ValueError, match=r"\(N, 4, L\)"):
        features.position_mask(torch.zeros(2, 5, 10))
    with pytest.raises(ValueError, match="feature_mask of shape"):
        surrogate.lime(lambda x: x.sum((1, 2)), random_dna(1), feature_mask=torch.zeros(3, 4, L))
    with pytest.raises(ValueError, match="keep must be"):
        surrogate.lime(lambda x: x.sum((1, 2)), random_dna(1), keep=1.0)
    with pytest.raises(ValueError, match="without N bases"):
        surrogate.max_entropy(lambda x: x.sum((1, 2)), torch.zeros(1, 4, L))
    with pytest.raises(ValueError, match="no default feature mask"):
        features.default_mask(torch.zeros(2, 3))


def test_kernel_shap_recovers_exact_shapley_values_of_an_additive_model():
    model, weights = positions_model()
    X = random_dna(3)
    shap = surrogate.kernel_shap(model, X, n_samples=400)
    exact = (weights * X).sum(1)  # baseline 0: each position's Shapley value is its own term
    torch.testing.assert_close(shap[:, 0], exact, atol=0.05, rtol=0.05)
    assert torch.equal(shap[:, 0], shap[:, 3])  # one feature per position: all bases share it


def test_lime_top_features_are_the_used_positions():
    model, _ = positions_model()
    X = random_dna(4, seed=1)
    attr = surrogate.lime(model, X, n_samples=300)[:, 0]
    for row in attr:
        top = set(row.abs().argsort(descending=True)[: len(USED)].tolist())
        assert top == set(USED)


def test_kernel_shap_on_tokens_finds_the_two_deciding_tokens():
    embedding = torch.nn.Embedding(10, 1)  # needs integer ids: a float baseline would break it
    with torch.no_grad():
        embedding.weight.zero_()
        embedding.weight[7], embedding.weight[3] = 2.0, 1.0

    def model(tokens):  # token 7 at position 1 and token 3 at position 4 score
        values = embedding(tokens)[..., 0]
        return values[:, 1] * (values[:, 1] == 2) + values[:, 4] * (values[:, 4] == 1)

    tokens = torch.tensor([[5, 7, 2, 9, 3, 8], [7, 7, 4, 1, 3, 2]])
    attr = surrogate.kernel_shap(model, tokens, n_samples=100)
    assert attr.shape == tokens.shape and attr.dtype == torch.float32
    torch.testing.assert_close(attr, torch.tensor([[0, 2, 0, 0, 1, 0]] * 2, dtype=torch.float32),
                               atol=1e-3, rtol=0)


def test_lime_on_images_ranks_the_used_patch_first():
    def model(images):  # (N, 3) logits: class 2 is the mean of the lower-right patch
        patch = images[:, 0, 4:, 4:].mean((1, 2))
        return torch.stack([torch.zeros_like(patch), -patch, 3 * patch], 1)

    images = torch.rand(2, 1, 8, 8) + 0.5
    attr = surrogate.lime(model, images, n_samples=60, target=2)
    per_patch = attr[:, 0, ::4, ::4].reshape(2, 4)
    assert per_patch.argmax(1).tolist() == [3, 3]


def test_max_entropy_fixes_only_the_position_that_decides():
    def model(X):  # decision rests on one base: A at position 10
        return 6 * X[:, 0, 10] - 3

    X = random_dna(2, seed=2)
    X[:, :, 10] = torch.tensor([1.0, 0, 0, 0])
    logo = surrogate.max_entropy(model, X, sweeps=30, burn_in=2, chains=8)
    info = logo.sum(1)
    assert torch.all(info[:, 10] > 1.9)
    assert logo[:, 0, 10].min() > 1.9  # and it is the A
    others = torch.cat([info[:, :10], info[:, 11:]], 1)
    assert others.max() < 0.4


def test_max_entropy_on_a_motif_detector_keeps_the_planted_site():
    data = motif_discovery("MAFF", n=60, seed=3, max_instances=1)
    model = compare.motif_detector("MAFF")
    with torch.no_grad():  # sequences whose planted site the detector calls (logit > 1)
        called = np.flatnonzero((data.y == 1) & (model(data.X).numpy() > 1))[:6]
    X, sites = data.X[called], [data.sites[i] for i in called]
    info = surrogate.max_entropy(model, X, sweeps=6).sum(1)
    precision = compare.precision_at_k(info, sites, k=6)
    assert np.nanmean(precision) > 0.8
    # the detector only ever needs one site, so most of a sequence stays free
    assert np.median(info.numpy()) < 0.5


def test_random_order_and_seed_make_results_repeatable():
    model, _ = positions_model()
    X = random_dna(1)
    a = surrogate.lime(model, X, n_samples=50, seed=4)
    state = torch.random.get_rng_state()
    b = surrogate.lime(model, X, n_samples=50, seed=4)
    assert torch.equal(a, b)
    assert torch.equal(state, torch.random.get_rng_state())
