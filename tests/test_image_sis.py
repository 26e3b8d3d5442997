"""SIS on images, fast=True (the window screen of mlcourse.interpret.image_engines) against the plain definition.

"Identical" is only defined for an f whose value of an input does not depend on the batch it sits
in, and a CNN's float kernels do not promise that: in float32 a small CNN's output moves in the last
bit with the batch, and on AMD EPYC even float64 kernels round a batch of 16 rows and one of 102 rows
differently, which decides exact ties (a saturated softmax ties at 1.0) one way or the other. So the
models here compute exactly: double precision, weights on a grid of 1/256 and images on a grid of 1/8,
so every sum of products is a float64 without rounding, in any order, on any CPU; the softmax then
sees the same logits whatever the batch. ``test_the_test_models_do_not_depend_on_the_batch`` checks
that premise. (The benchmark checks float32 on lecture 05's trained CNN.)"""

import pytest
import torch
from torch import nn

from mlcourse.interpret import engines, features, image_engines, sis
from mlcourse.models import vision

PIXEL_STEP, WEIGHT_STEP = 1 / 8, 1 / 256  # the grids that keep every sum of products exact in float64


def on_grid(values: torch.Tensor, step: float) -> torch.Tensor:
    return torch.round(values / step) * step


def digits(n, seed):
    """Stroke-like random images (N, 1, 28, 28): blurred ink in the middle, an empty border as in MNIST."""
    g = torch.Generator().manual_seed(seed)
    ink = (torch.rand(n, 1, 20, 20, generator=g) < 0.25).float()
    ink = nn.functional.avg_pool2d(ink, 3, stride=1, padding=1).clamp(max=1)
    return on_grid(nn.functional.pad(ink, (4, 4, 4, 4)).double(), PIXEL_STEP)


def mean_image(X):
    """The masking baseline: the mean image, on the pixel grid."""
    return on_grid(X.mean(dim=0), PIXEL_STEP)


def small_cnn(seed, scale=1.0):
    """Lecture 05's architecture, narrower, with random weights (``scale`` > 1 saturates the softmax)."""
    torch.manual_seed(seed)
    model = vision.mnist_cnn(channels=(4, 8), hidden=16).eval().double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(on_grid(p * scale, WEIGHT_STEP))
    return model


def test_the_test_models_do_not_depend_on_the_batch():
    """The premise of "identical": each input's probabilities are the same bits in a batch of any size."""
    model, X = small_cnn(0, 6.0), digits(40, seed=5)
    with torch.no_grad():
        together = torch.softmax(model(X), dim=1)
        for rows in (1, 3, 16, 17):
            apart = torch.cat([torch.softmax(model(X[i:i + rows]), dim=1) for i in range(0, len(X), rows)])
            assert torch.equal(apart, together), rows


def sis_sets(collections):
    return [[s.features.tolist() for s in c] for c in collections]


def explain(model, X, patch, fast, **extra):
    mean = mean_image(X)
    with torch.no_grad():
        p = torch.softmax(model(X), dim=1)
        target = int(p.mean(dim=0).argmax())
        empty = float(torch.softmax(model(mean[None]), dim=1)[0, target])
    threshold = (2 * empty + float(p[:, target].max())) / 3  # above the empty image, below some digits
    return sis.sis_collections(model, X, threshold=threshold, target=target, baseline=mean,
                               groups=features.patch_groups(28, 28, patch), output="probability",
                               fast=fast, **extra)


@pytest.mark.parametrize("patch,scale,n", [(4, 1.0, 5), (5, 1.0, 4), (4, 6.0, 4)])
def test_fast_image_sis_equals_the_plain_path(patch, scale, n):
    """Identical SISes, ties included: 5x5 patches leave narrower ones at the border (windows of other
    sizes); scale 6 saturates the softmax, so many candidates tie at exactly 1.0 (lowest index wins)."""
    model, X = small_cnn(patch, scale), digits(n, seed=patch)
    fast = explain(model, X, patch, fast=True, batch_size=256)
    plain = explain(model, X, patch, fast=False, batch_size=256)
    assert sis_sets(fast) == sis_sets(plain)
    assert sum(map(len, plain)) >= 3
    assert all(abs(a.score - b.score) <= 1e-6 for c, d in zip(fast, plain) for a, b in zip(c, d))


def test_fast_backward_selection_equals_the_plain_one_on_single_images():
    model, X = small_cnn(0, 6.0), digits(2, seed=5)
    options = dict(target=3, baseline=mean_image(X), groups=features.patch_groups(28, 28, 4), output="probability")
    for x in X:
        fast = sis.backward_selection(model, x, fast=True, **options)
        plain = sis.backward_selection(model, x, **options)
        assert fast.order.tolist() == plain.order.tolist()


def test_screen_intervals_hold_the_model_score():
    """Every candidate's value lies in its interval; a patch equal to the baseline gives the reference's value."""
    model, X = small_cnn(1, 3.0), digits(3, seed=9)
    mean = mean_image(X)
    inputs = sis._Inputs(X, mean, None, features.patch_groups(28, 28, 4), single=False, device=torch.device("cpu"))
    screen = image_engines.ImageSISScreen.build(model, inputs, 128, "probability", 2)
    remaining = torch.rand(3, 49, generator=torch.Generator().manual_seed(2)) < 0.7
    low, high = screen.interval(inputs, torch.arange(3), remaining)
    owner, feature = torch.nonzero(remaining, as_tuple=True)
    keep = remaining[owner]
    keep[torch.arange(owner.numel()), feature] = False
    with torch.no_grad():
        exact = torch.softmax(model(inputs.masked(owner, keep)), dim=1)[:, 2].double()
        # the reference: the model's own score of the unchanged inputs, in a batch of MIN_ROWS rows
        current = engines.at_least(inputs.masked(torch.arange(3), remaining), screen.MIN_ROWS)
        reference = torch.softmax(model(current), dim=1)[:3, 2].double()
    same = screen.unchanged[owner, feature]
    assert bool(same.any())  # the empty border: those candidates are known exactly
    assert torch.equal(low[owner, feature][same], reference[owner][same])
    assert torch.equal(high[owner, feature][same], reference[owner][same])
    # the others hold the model's score of their own masked input; a known value matches it only up to
    # the batch size's rounding (float64 kernels on AMD EPYC differ in the last bit between 16 and 102 rows)
    inside = (low[owner, feature] <= exact) & (exact <= high[owner, feature])
    assert bool(inside[~same].all())
    assert torch.allclose(exact[same], reference[owner][same], rtol=1e-15, atol=0)


def test_models_without_a_conv_chain_are_refused():
    X = digits(2, seed=1)
    options = dict(threshold=0.5, target=0, baseline=mean_image(X), groups=features.patch_groups(28, 28, 4),
                   output="probability", fast=True)
    with pytest.raises(ValueError, match="fast=True on images needs"):
        sis.sis_collections(vision.mnist_mlp().eval().double(), X, **options)
    with pytest.raises(ValueError, match="fast=True on images needs"):
        sis.sis_collections(lambda b: small_cnn(0)(b), X, **options)


def test_fast_image_sis_on_raw_logits_equals_the_plain_path():
    """output="raw": the threshold is on the target's logit itself."""
    model, X = small_cnn(2, 3.0), digits(3, seed=4)
    with torch.no_grad():
        logits = model(X)[:, 1]
        empty = float(model(mean_image(X)[None])[0, 1])
    options = dict(threshold=(2 * empty + float(logits.max())) / 3, target=1, baseline=mean_image(X),
                   groups=features.patch_groups(28, 28, 4), output="raw", batch_size=256)
    fast = sis.sis_collections(model, X, fast=True, **options)
    assert sis_sets(fast) == sis_sets(sis.sis_collections(model, X, **options))
    assert sum(map(len, fast)) >= 1
