"""Forward-hook capture of feature maps: right values, hooks always removed, clear errors."""

import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn

from mlcourse import plot
from mlcourse.interpret import activations
from mlcourse.models import vision


def hook_count(model):
    return sum(len(m._forward_hooks) for m in model.modules())


def dna_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv1d(4, 3, 5), nn.ReLU(), nn.MaxPool1d(2), nn.Flatten(), nn.Linear(3 * 8, 1))


def test_captured_maps_equal_the_layer_outputs():
    model = vision.mnist_cnn().eval()
    x = torch.rand(3, 1, 28, 28)
    maps = activations.feature_maps(model, x, ["conv1", model.relu2])
    torch.testing.assert_close(maps["conv1"], model.conv1(x))
    expected = model.relu2(model.conv2(model.pool1(model.relu1(model.conv1(x)))))
    torch.testing.assert_close(maps["relu2"], expected)
    assert not maps["conv1"].requires_grad
    assert hook_count(model) == 0


def test_dna_feature_map_is_the_sliding_filter_score():
    model = dna_model()
    x = nn.functional.one_hot(torch.randint(0, 4, (2, 20)), 4).permute(0, 2, 1).float()
    fmap = activations.feature_maps(model, x, "0")["0"]
    assert fmap.shape == (2, 3, 16)
    w, b = model[0].weight, model[0].bias
    n, k, j = 1, 2, 7
    torch.testing.assert_close(fmap[n, k, j], (w[k] * x[n, :, j:j + 5]).sum() + b[k])


def test_hooks_removed_even_when_the_block_raises():
    model = dna_model()
    with pytest.raises(RuntimeError, match="inside"):
        with activations.capture(model, ["0", "1"]) as maps:
            assert hook_count(model) == 2
            model(torch.zeros(1, 4, 20))
            assert set(maps) == {"0", "1"}
            raise RuntimeError("error inside the block")
    assert hook_count(model) == 0
    # and when the forward pass itself fails (wrong input shape)
    with pytest.raises(RuntimeError):
        with activations.capture(model, "0"):
            model(torch.zeros(1, 5, 20))
    assert hook_count(model) == 0


def test_capture_without_detach_keeps_the_graph():
    model = dna_model()
    with activations.capture(model, "1", detach=False) as maps:
        model(torch.ones(1, 4, 20))
    assert maps["1"].requires_grad


def test_bad_layers_are_named():
    model = dna_model()
    with pytest.raises(ValueError, match="'conv9'.*0, 1, 2, 3, 4"):
        activations.feature_maps(model, torch.zeros(1, 4, 20), "conv9")
    with pytest.raises(ValueError, match="not part of the model"):
        activations.resolve_layers(model, nn.ReLU())
    wrapper = nn.Module()
    wrapper.net, wrapper.spare = model, nn.ReLU()     # 'spare' is registered but never run
    wrapper.forward = model.forward
    with pytest.raises(ValueError, match=r"\['spare'\] were not called"):
        activations.feature_maps(wrapper, torch.zeros(1, 4, 20), ["net.0", "spare"])
    assert hook_count(model) == 0


def test_layer_table_follows_the_shapes():
    table = activations.layer_table(vision.gap_cnn(), torch.zeros(1, 1, 28, 28))
    assert list(table["layer"])[:3] == ["conv1", "relu1", "conv2"]
    assert table.set_index("layer").loc["relu3", "output shape"] == (64, 14, 14)


def test_plots_return_axes():
    maps = torch.rand(4, 5, 6)
    axes = plot.image_grid(maps, ncols=2, titles=list("abcd"))
    assert len(axes) == 4 and axes[0].get_title() == "a"
    ax = plot.sequence_heatmap(torch.rand(3, 30))
    assert ax.get_xlabel() == "position"
    with pytest.raises(ValueError, match=r"\(K, L\)"):
        plot.sequence_heatmap(torch.rand(30))
    plt.close("all")
