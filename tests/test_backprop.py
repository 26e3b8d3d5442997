"""Saliency, deconvnet, guided backprop and unit deconvolution agree with Captum; conv backward = transposed conv."""

import warnings

import pytest
import torch
from captum.attr import (
    Deconvolution,
    GuidedBackprop,
    NeuronDeconvolution,
    NeuronGuidedBackprop,
    Saliency,
)
from torch import nn

from mlcourse.interpret import backprop
from mlcourse.models import zeng


class Squeeze(nn.Module):
    def forward(self, x):
        return x[:, 0]


def dna_model(seed=0, length=40):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv1d(4, 8, 5), nn.ReLU(), nn.MaxPool1d(3),
        nn.Conv1d(8, 6, 3), nn.ReLU(), nn.MaxPool1d((length - 4) // 3 - 2),
        nn.Flatten(), nn.Linear(6, 1), Squeeze(),
    ).eval()


def image_model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3), nn.ReLU(inplace=True),
        nn.Flatten(), nn.Linear(6 * 4 * 4, 20), nn.ReLU(), nn.Linear(20, 10),
    ).eval()


def dna_batch(n=6, length=40, seed=1):
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, 4, (n, length), generator=gen)
    return nn.functional.one_hot(idx, 4).permute(0, 2, 1).float()


def image_batch(n=5, seed=2):
    return torch.rand(n, 1, 14, 14, generator=torch.Generator().manual_seed(seed))


def zeng_model(seed=0):
    torch.manual_seed(seed)
    return zeng.build("2layer").eval()


def zeng_batch(seed=0):
    return dna_batch(n=4, length=101, seed=seed)


CASES = [
    ("dna", dna_model, dna_batch, None),
    ("zeng-2layer", zeng_model, zeng_batch, None),
    ("image", image_model, image_batch, 3),
    ("image-per-example", image_model, image_batch, [0, 1, 2, 3, 9]),
]


def captum(cls, model, x, target):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if cls is Saliency:
            return cls(model).attribute(x, target=target, abs=False)
        return cls(model).attribute(x, target=target)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name,make_model,make_x,target", CASES)
@pytest.mark.parametrize("ours,theirs", [
    (backprop.saliency, Saliency),
    (backprop.guided_backprop, GuidedBackprop),
    (backprop.deconvnet, Deconvolution),
])
def test_agrees_with_captum(ours, theirs, name, make_model, make_x, target, seed):
    model, x = make_model(seed), make_x(seed=seed + 10)
    mine = ours(model, x, target=target)
    ref = captum(theirs, model, x.clone().requires_grad_(True), target)
    assert mine.shape == x.shape
    assert mine.abs().max() > 0
    torch.testing.assert_close(mine, ref, atol=1e-5, rtol=0)


def test_rules_really_differ_and_saliency_is_autograd():
    model, x = image_model(), image_batch()
    sal = backprop.saliency(model, x, target=3)
    xg = x.clone().requires_grad_(True)
    model(xg)[:, 3].sum().backward()
    torch.testing.assert_close(sal, xg.grad)
    gb = backprop.guided_backprop(model, x, target=3)
    dc = backprop.deconvnet(model, x, target=3)
    assert (gb - sal).abs().max() > 1e-3 and (dc - gb).abs().max() > 1e-3


def test_relu_backward_table():
    x = torch.tensor([-1.0, -1.0, 2.0, 2.0])
    g = torch.tensor([-3.0, 5.0, -3.0, 5.0])
    assert backprop.relu_backward("backprop", x, g).tolist() == [0, 0, -3, 5]
    assert backprop.relu_backward("deconvnet", x, g).tolist() == [0, 5, 0, 5]
    assert backprop.relu_backward("guided", x, g).tolist() == [0, 0, 0, 5]
    with pytest.raises(ValueError, match="'bogus'"):
        backprop.relu_backward("bogus", x, g)


def test_hooks_removed_and_inplace_restored_after_error():
    model = image_model()
    relu = model[4]
    with pytest.raises(RuntimeError, match="boom"):
        with backprop.relu_rule(model, "guided"):
            assert not relu.inplace
            raise RuntimeError("boom")
    assert relu.inplace
    assert all(not m._forward_hooks for m in model.modules())
    assert not model._forward_pre_hooks


def test_reused_relu_module_is_refused():
    relu = nn.ReLU()
    model = nn.Sequential(nn.Linear(3, 3), relu, nn.Linear(3, 3), relu, nn.Linear(3, 1))
    with pytest.raises(ValueError, match="called twice"):
        backprop.guided_backprop(model, torch.randn(2, 3))


def test_target_errors_name_the_value():
    model, x = image_model(), image_batch()
    with pytest.raises(ValueError, match="target"):
        backprop.saliency(model, x)
    with pytest.raises(ValueError, match="12"):
        backprop.saliency(model, x, target=12)
    with pytest.raises(ValueError, match="must be None"):
        backprop.saliency(dna_model(), dna_batch(), target=3)


@pytest.mark.parametrize("rule,captum_cls", [("deconvnet", NeuronDeconvolution),
                                             ("guided", NeuronGuidedBackprop)])
def test_deconvolve_unit_matches_captum_neuron_methods(rule, captum_cls):
    model, x = dna_model(), dna_batch()
    layer, channel, position = model[4], 2, 3
    mine = backprop.deconvolve_unit(model, x, layer=layer, channel=channel, position=position, rule=rule)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = captum_cls(model, layer).attribute(x.clone().requires_grad_(True), (channel, position))
    with torch.no_grad():
        act = model[:5](x)[:, channel, position]
    torch.testing.assert_close(mine, ref * act[:, None, None], atol=1e-5, rtol=0)


def test_deconvolve_unit_default_position_is_strongest_and_local():
    model, x = dna_model(), dna_batch()
    first_relu = model[1]
    out = model[:2](x)
    best = out[:, 5].argmax(dim=1)
    rec = backprop.deconvolve_unit(model, x, layer=first_relu, channel=5)
    for n in range(x.shape[0]):
        support = rec[n].abs().sum(0).nonzero()[:, 0]
        # a first-layer unit sees a 5-wide window starting at its position
        assert support.min() >= best[n] and support.max() < best[n] + 5
    with pytest.raises(ValueError, match="channel=99"):
        backprop.deconvolve_unit(model, x, layer=first_relu, channel=99)
    with pytest.raises(ValueError, match="position=100"):
        backprop.deconvolve_unit(model, x, layer=first_relu, channel=0, position=100)


def test_conv_gradient_is_transposed_convolution():
    demo = backprop.conv_gradient_demo(seed=3)
    assert demo.matrix.shape == (4, 16)
    torch.testing.assert_close(demo.y.flatten(), demo.matrix @ demo.x.flatten())
    assert demo.max_difference() < 1e-12
    # the corner input pixel is seen by one output only, the centre ones by all four
    counts = (demo.matrix != 0).sum(0).reshape(4, 4)
    assert counts[0, 0] == 1 and counts[1, 1] == 4
