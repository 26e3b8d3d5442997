"""CAM / Grad-CAM / guided Grad-CAM: agreement with Captum, the CAM identity, DNA position alignment."""

import warnings

import numpy as np
import pytest
import torch
from captum.attr import GuidedGradCam, LayerGradCam
from test_backprop import dna_batch, dna_model, image_batch, image_model
from torch import nn

from mlcourse.dna import one_hot
from mlcourse.interpret import cam
from mlcourse.interpret.activations import capture
from mlcourse.models import vision


def captum_gradcam(model, layer, x, target, relu):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = LayerGradCam(model, layer).attribute(x, target=target, relu_attributions=relu)
    return out[:, 0]


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", ["dna-conv2", "dna-relu1", "image-conv2", "gap-relu3"])
def test_grad_cam_agrees_with_captum(case, seed, relu):
    if case.startswith("dna"):
        model, x, target = dna_model(seed), dna_batch(seed=seed), None
        layer = model[3] if case == "dna-conv2" else model[1]
    elif case == "image-conv2":
        model, x, target = image_model(seed), image_batch(seed=seed), [1, 2, 3, 4, 5]
        layer = model[3]
    else:
        torch.manual_seed(seed)
        model, x, target = vision.gap_cnn().eval(), torch.rand(3, 1, 28, 28), 7
        layer = model.relu3
    mine = cam.grad_cam(model, x, layer=layer, target=target, relu=relu)
    ref = captum_gradcam(model, layer, x, target, relu)
    assert relu or mine.abs().max() > 0
    torch.testing.assert_close(mine, ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("case", ["dna", "image"])
def test_guided_grad_cam_agrees_with_captum(case):
    if case == "dna":
        model, x, target = dna_model(), dna_batch(), None
        layer = model[3]
    else:
        model, x, target = image_model(), image_batch(), 4
        layer = model[3]
    mine = cam.guided_grad_cam(model, x, layer=layer, target=target, mode="nearest")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = GuidedGradCam(model, layer).attribute(x, target=target)
    assert mine.shape == x.shape and mine.abs().max() > 0
    torch.testing.assert_close(mine, ref, atol=1e-5, rtol=0)


def test_cam_is_grad_cam_up_to_a_constant_and_sums_to_the_logit():
    torch.manual_seed(3)
    model = vision.gap_cnn().eval()
    x = torch.rand(4, 1, 28, 28)
    target = [0, 3, 5, 9]
    maps = cam.class_activation_map(model, x, target=target)
    assert maps.shape == (4, 14, 14)
    # Zhou et al.: logit_c = mean over positions of M_c + b_c
    with torch.no_grad():
        logits = model(x)[torch.arange(4), target]
    torch.testing.assert_close(maps.mean(dim=(1, 2)) + model.fc.bias[target].detach(), logits)
    # Grad-CAM at the pooled maps, without its ReLU, is CAM / (h w)
    gc = cam.grad_cam(model, x, layer=model.relu3, target=target, relu=False)
    torch.testing.assert_close(gc * 14 * 14, maps, atol=1e-5, rtol=1e-5)


def test_cam_errors():
    model = image_model()
    with pytest.raises(ValueError, match="found 0"):
        cam.class_activation_map(model, image_batch(), target=1, fc=model[-1])
    with pytest.raises(ValueError, match="target"):
        cam.class_activation_map(vision.gap_cnn(), torch.rand(1, 1, 28, 28))
    with pytest.raises(ValueError, match="Grad-CAM needs"):
        cam.grad_cam(model, image_batch(), layer=model[-1], target=1)


def test_receptive_fields_match_the_gradient_support():
    torch.manual_seed(0)
    layers = [nn.Conv1d(4, 3, 5, dilation=2), nn.ReLU(), nn.AvgPool1d(3),
              nn.Conv1d(3, 2, 3, padding=1), nn.AvgPool1d(2, stride=1)]
    model = nn.Sequential(*layers, nn.Flatten(), nn.LazyLinear(1))
    for layer in layers:
        if isinstance(layer, nn.Conv1d):
            layer.weight.data.abs_()
            layer.bias.data.fill_(1.0)
    x = torch.ones(1, 4, 50, requires_grad=True)
    model(x)
    for layer in (layers[0], layers[3], layers[4]):
        fields = cam.receptive_fields(model, x.detach(), layer=layer)
        with capture(model, layer, detach=False) as out:
            model(x)
        (y,) = out.values()
        assert fields.shape == (y.shape[-1], 2)
        for j in range(y.shape[-1]):
            (g,) = torch.autograd.grad(y[0, :, j].sum(), x, retain_graph=True)
            support = g[0].abs().sum(0).nonzero()[:, 0]
            assert (support.min().item(), support.max().item() + 1) == tuple(fields[j]), (layer, j)


def test_receptive_fields_refuse_unknown_length_changes():
    class Crop(nn.Module):
        def forward(self, x):
            return x[..., 2:]

    model = nn.Sequential(nn.Conv1d(4, 2, 3), Crop(), nn.Conv1d(2, 1, 3))
    with pytest.raises(ValueError, match="'1' \\(Crop\\) changes the length from 18 to 16"):
        cam.receptive_fields(model, torch.zeros(1, 4, 20), layer=model[2])


def motif_detector(motif):
    """conv (exact one-hot filter, fires only on near-perfect matches) -> ReLU -> global max -> linear."""
    width = len(motif)
    conv = nn.Conv1d(4, 1, width)
    conv.weight.data = one_hot([motif]) * 1.0
    conv.bias.data.fill_(-(width - 3.0))
    head = nn.Linear(1, 1)
    head.weight.data.fill_(1.0)
    head.bias.data.zero_()
    return nn.Sequential(conv, nn.ReLU(), nn.MaxPool1d(101 - width + 1), nn.Flatten(), head).eval()


def test_dna_grad_cam_lands_on_the_planted_site():
    rng = np.random.default_rng(0)
    motif = "".join(rng.choice(list("ACGT"), 24))
    seq = list("".join(rng.choice(list("ACGT"), 101)))
    seq[70:94] = motif
    x = one_hot(["".join(seq)])
    model = motif_detector(motif)
    heat = cam.grad_cam(model, x, layer=model[1])
    assert heat.shape == (1, 78) and heat[0].argmax() == 70
    placed = cam.to_input(model, x, heat, layer=model[1])[0]  # default: on the window's centre
    assert int(placed.argmax()) == 70 + 11 and placed.sum() == pytest.approx(placed[81].item())
    aligned = cam.to_input(model, x, heat, layer=model[1], mode="window")[0]
    assert (aligned[70:94] > 0).all() and aligned.sum() == pytest.approx(aligned[70:94].sum())
    centre = float((aligned * torch.arange(101)).sum() / aligned.sum())
    assert centre == pytest.approx(81.5, abs=0.5)
    # stretching 78 positions over 101 bases, as image code does, misplaces the evidence
    stretched = cam.to_input(model, x, heat, layer=model[1], mode="nearest")[0]
    assert float((stretched * torch.arange(101)).sum() / stretched.sum()) > 88


def test_centre_placement_shares_each_value_over_the_stride_around_the_window_centre():
    fields = np.array([[0, 5], [3, 8], [6, 11]])  # a layer with stride 3 and 5-base windows
    placed = cam.centre_on_input(torch.tensor([[3.0, 6.0, 9.0]]), fields, 12)
    assert placed.tolist() == [[0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 0, 0]]
    with pytest.raises(ValueError, match="do not match"):
        cam.centre_on_input(torch.ones(1, 2), fields, 12)


def test_one_layer_only():
    model = dna_model()
    with pytest.raises(ValueError, match="pass one layer"):
        cam.grad_cam(model, dna_batch(), layer=["1", "4"])
    with pytest.raises(ValueError, match="no layer named 'relu9'"):
        cam.receptive_fields(model, dna_batch(), layer="relu9")
