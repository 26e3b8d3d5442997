"""MNIST models: shapes, clear errors, one module per nonlinearity, the GAP identity CAM relies on."""

import pytest
import torch
from torch import nn

from mlcourse.interpret.adversarial import fgsm
from mlcourse.models.vision import gap_cnn, mnist_cnn, mnist_mlp

BUILDERS = [mnist_cnn, mnist_mlp, gap_cnn]


@pytest.mark.parametrize("build", BUILDERS)
def test_images_to_ten_logits(build):
    torch.manual_seed(0)
    out = build().eval()(torch.rand(5, 1, 28, 28))
    assert out.shape == (5, 10) and torch.isfinite(out).all()


@pytest.mark.parametrize("build", BUILDERS)
@pytest.mark.parametrize("shape", [(2, 1, 32, 32), (2, 28, 28), (2, 3, 28, 28), (2, 784)])
def test_wrong_image_size_is_a_clear_error(build, shape):
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\), got " + str(shape).replace("(", r"\(").replace(")", r"\)")):
        build()(torch.zeros(shape))


@pytest.mark.parametrize("build", BUILDERS)
def test_every_leaf_module_runs_exactly_once_per_forward(build):
    """Hook-based attribution (DeepLift, guided backprop) needs each ReLU/pool registered and used once."""
    model = build().eval()
    calls = {}
    for name, module in model.named_modules():
        if not list(module.children()):
            module.register_forward_hook(lambda m, i, o, name=name: calls.__setitem__(name, calls.get(name, 0) + 1))
    model(torch.rand(2, 1, 28, 28))
    leaves = [name for name, m in model.named_modules() if not list(m.children())]
    assert calls == {name: 1 for name in leaves}
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    assert len(relus) >= 2 and len({id(m) for m in relus}) == len(relus)


def test_cnn_first_conv_and_mlp_has_no_convolutions():
    assert isinstance(mnist_cnn().conv1, nn.Conv2d)
    assert not any(isinstance(m, nn.Conv2d) for m in mnist_mlp().modules())


def test_gap_cnn_logits_are_fc_of_channel_means_of_the_last_conv():
    """The identity behind CAM (Zhou et al. 2016): logit_c = sum_k w_ck mean(relu(A_k)) + b_c."""
    torch.manual_seed(0)
    model = gap_cnn().eval()
    assert isinstance(model.last_conv, nn.Conv2d) and isinstance(model.fc, nn.Linear)
    assert model.fc.in_features == model.last_conv.out_channels
    maps = {}
    model.last_conv.register_forward_hook(lambda m, i, o: maps.__setitem__("A", o))
    x = torch.rand(3, 1, 28, 28)
    logits = model(x)
    A = torch.relu(maps["A"])
    assert A.shape == (3, model.last_conv.out_channels, 14, 14)
    cam_sum = torch.einsum("ck,nkhw->nchw", model.fc.weight, A).mean(dim=(2, 3)) + model.fc.bias
    assert torch.allclose(logits, cam_sum, atol=1e-5)


def test_fgsm_moves_every_pixel_by_epsilon_uphill_and_raises_the_loss():
    torch.manual_seed(0)
    model = mnist_mlp(dropout=0.0).eval()
    x = torch.rand(6, 1, 28, 28) * 0.8 + 0.1  # away from the [0, 1] clip
    y = torch.arange(6)
    adv = fgsm(model, x, target=y, epsilon=0.05)
    assert torch.allclose((adv - x).abs(), torch.full_like(x, 0.05), atol=1e-6)
    loss = nn.functional.cross_entropy
    assert loss(model(adv), y) > loss(model(x), y)
    # The sign agrees with the gradient of the loss, pixel by pixel.
    xg = x.clone().requires_grad_(True)
    loss(model(xg), y).backward()
    assert torch.equal(torch.sign(adv - x), torch.sign(xg.grad))
    assert fgsm(model, torch.ones(1, 1, 28, 28), target=y[:1], epsilon=0.3).max() <= 1.0
    with pytest.raises(ValueError, match="epsilon=2"):
        fgsm(model, x, target=y, epsilon=2)
