"""The nine Zeng et al. (2016) architectures: names, shapes, layer sizes, attribution rules, errors."""

import pytest
import torch
from torch import nn

from mlcourse.models.zeng import (
    ARCHITECTURES,
    architecture_table,
    build,
    min_length,
    receptive_field,
)

EXPECTED = [
    "1layer", "1layer_64motif", "1layer_128motif", "1layer_local_win9", "1layer_local_win3",
    "2layer", "3layer", "2layer_local_win3", "3layer_local_win3",
]


def test_exactly_the_nine_names():
    assert list(ARCHITECTURES) == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_logits_one_per_sequence(name):
    model = build(name)
    out = model(torch.rand(5, 4, 101))
    assert out.shape == (5,)
    assert out.dtype == torch.float32


@pytest.mark.parametrize("name,kernels", [("1layer", 16), ("1layer_64motif", 64), ("1layer_128motif", 128)])
def test_first_layer_is_deepbinds_24bp_kernels(name, kernels):
    conv = build(name).conv1
    assert isinstance(conv, nn.Conv1d)
    assert (conv.in_channels, conv.out_channels, conv.kernel_size) == (4, kernels, (24,))


@pytest.mark.parametrize("name,depth", [("1layer", 1), ("2layer", 2), ("3layer", 3), ("3layer_local_win3", 3)])
def test_last_conv_is_the_deepest(name, depth):
    model = build(name)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv1d)]
    assert len(convs) == depth
    assert model.last_conv is convs[-1]


def test_global_max_pool_is_a_maxpool_over_the_whole_feature_map():
    model = build("1layer", seq_len=101)
    assert isinstance(model.pool1, nn.MaxPool1d)
    assert model.pool1.kernel_size == 101 - 24 + 1
    x = torch.rand(3, 4, 101)
    maps = model.relu1(model.conv1(x))
    assert torch.equal(model.pool1(maps).squeeze(-1), maps.max(dim=-1).values)


@pytest.mark.parametrize("name,window", [("1layer_local_win9", 9), ("1layer_local_win3", 3)])
def test_local_pooling_windows(name, window):
    model = build(name)
    assert model.pool1.kernel_size == window
    # 78 positions after the 24 bp convolution, pooled in windows -> dense input size
    assert model.fc.in_features == 16 * (78 // window)


@pytest.mark.parametrize("name", EXPECTED)
def test_every_relu_pool_and_dropout_is_its_own_module_used_once(name):
    model = build(name)
    calls = {}
    hooks = [
        m.register_forward_hook(lambda mod, i, o: calls.__setitem__(id(mod), calls.get(id(mod), 0) + 1))
        for m in model.modules()
        if isinstance(m, (nn.ReLU, nn.MaxPool1d, nn.Dropout))
    ]
    model(torch.rand(2, 4, 101))
    for h in hooks:
        h.remove()
    assert len(hooks) == len(calls) and set(calls.values()) == {1}


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="unknown architecture '4layer'.*1layer_128motif"):
        build("4layer")


@pytest.mark.parametrize("name", EXPECTED)
def test_shortest_accepted_length(name):
    shortest = min_length(name)
    assert build(name, seq_len=shortest)(torch.rand(1, 4, shortest)).shape == (1,)
    with pytest.raises(ValueError, match=f"too short for '{name}'.*at least {shortest} bp"):
        build(name, seq_len=shortest - 1)


def test_input_of_the_wrong_length_is_a_clear_error():
    with pytest.raises(ValueError, match=r"expects one-hot DNA of shape \(N, 4, 101\), got \(2, 4, 200\)"):
        build("1layer")(torch.rand(2, 4, 200))


def test_table_documents_all_nine():
    table = architecture_table()
    assert list(table.index) == EXPECTED
    assert table.loc["3layer", "conv layers"] == 3
    assert table.loc["1layer", "parameters"] == sum(p.numel() for p in build("1layer").parameters())


@pytest.mark.parametrize("name,field", [("1layer", 24), ("1layer_local_win9", 24), ("2layer", 38), ("3layer", 62)])
def test_receptive_field_matches_the_gradient_footprint(name, field):
    """Ground truth: the input positions that one last-conv unit's gradient touches."""
    assert receptive_field(name) == field
    torch.manual_seed(0)  # fixed weights and input: a dead ReLU at the edge would shrink the footprint
    model = build(name)
    x = torch.rand(1, 4, 101, requires_grad=True)
    feature_map = model.last_conv(_up_to_last_conv(model, x))
    feature_map[0, 0, feature_map.shape[-1] // 2].backward()
    touched = torch.nonzero(x.grad.abs().sum(dim=1)[0]).flatten()
    assert int(touched.max() - touched.min() + 1) == field


def _up_to_last_conv(model, x):
    for i in range(1, model.n_conv):
        x = getattr(model, f"pool{i}")(getattr(model, f"relu{i}")(getattr(model, f"conv{i}")(x)))
    return x
