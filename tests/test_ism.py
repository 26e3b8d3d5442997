"""Saturation mutagenesis: equal to a one-mutant-at-a-time loop, on every path and architecture."""

import pytest
import torch
from torch import nn

from mlcourse.interpret.ism import edits, saturation_mutagenesis
from mlcourse.models.zeng import ARCHITECTURES, build, min_length


def random_dna(n, length, seed=0):
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, 4, (n, length), generator=g)
    return nn.functional.one_hot(idx, 4).permute(0, 2, 1).float()


def naive_ism(f, X):
    """The definition, one mutant per call: f(x with base b at l) - f(x)."""
    out = torch.zeros_like(X)
    with torch.no_grad():
        for n in range(X.shape[0]):
            ref = f(X[n:n + 1])[0]
            for pos in range(X.shape[2]):
                for base in range(4):
                    mutant = X[n:n + 1].clone()
                    mutant[0, :, pos] = 0
                    mutant[0, base, pos] = 1
                    out[n, base, pos] = f(mutant)[0] - ref
    return out


@pytest.fixture
def one_thread():
    """Thousands of one-mutant calls run faster (and steadier on a shared machine) on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_equals_naive_loop_for_every_architecture(name, one_thread):
    torch.manual_seed(1)
    length = max(30, min_length(name))
    model = build(name, length).eval()
    X = random_dna(1, length)
    X[0, :, 7] = 0  # an N: all four substitutions are real edits
    expected = naive_ism(model, X)
    for fast in (True, False):
        got = saturation_mutagenesis(model, X, fast=fast, batch_size=64)
        assert torch.allclose(got, expected, atol=1e-5), (name, fast, (got - expected).abs().max())


def test_identity_edits_are_zero_and_n_columns_have_four_edits():
    X = random_dna(3, 30)
    X[0, :, 3] = 0
    model = build("1layer", 30)
    ism = saturation_mutagenesis(model, X)
    assert torch.all(ism[X == 1] == 0)
    assert edits(X)[0, :, 3].all() and edits(X).sum() == 3 * 3 * 30 + 1


def test_exact_in_double_precision_with_padding_stride_and_dilation(one_thread):
    """The local path's window arithmetic, on layers the Zeng models do not use."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv1d(4, 6, 5, padding=2, dilation=2), nn.ELU(), nn.MaxPool1d(3, stride=2, padding=1),
        nn.Conv1d(6, 5, 3, stride=2, padding=1), nn.BatchNorm1d(5), nn.GELU(),
        nn.Flatten(), nn.Linear(5 * 5, 3),
    ).double().eval()
    model[4].running_mean.uniform_(-1, 1)
    X = random_dna(3, 23).double()
    expected = naive_ism(lambda b: model(b)[:, 2], X)
    for fast in (True, False):
        got = saturation_mutagenesis(model, X, target=2, batch_size=8, fast=fast)
        assert got.dtype == torch.float64
        assert torch.allclose(got, expected, atol=1e-10)


def test_any_callable_and_a_known_answer():
    """A PWM-like linear scorer: ISM[b, l] = w[b, l] - w[x_l, l]."""
    w = torch.randn(4, 12, generator=torch.Generator().manual_seed(3))
    X = random_dna(4, 12, seed=5)
    ism = saturation_mutagenesis(lambda batch: (batch * w).sum(dim=(1, 2)), X, batch_size=7)
    expected = w.unsqueeze(0) - (X * w).sum(dim=1, keepdim=True)
    assert torch.allclose(ism, expected, atol=1e-6)


def test_restores_training_mode_and_model_unchanged(one_thread):
    model = build("3layer", 70).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    a = saturation_mutagenesis(model, random_dna(2, 70))
    b = saturation_mutagenesis(model, random_dna(2, 70))
    assert model.training and torch.equal(a, b)  # eval mode inside: dropout is off
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert isinstance(model.conv1, nn.Conv1d) and isinstance(model.relu3, nn.ReLU)


def test_model_using_its_input_twice_has_no_fast_path():
    class Skip(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv1d(4, 3, 5)
            self.pool = nn.MaxPool1d(16)

        def forward(self, x):
            return self.pool(self.conv1(x)).sum(dim=(1, 2)) + x[:, 0].sum(dim=1)

    model = Skip()
    X = random_dna(2, 20)
    assert torch.allclose(saturation_mutagenesis(model, X), naive_ism(model, X), atol=1e-5)
    with pytest.raises(ValueError, match="fast=True needs"):
        saturation_mutagenesis(model, X, fast=True)
    with pytest.raises(ValueError, match="fast=True needs"):
        saturation_mutagenesis(lambda b: b.sum(dim=(1, 2)), X, fast=True)


def test_bad_inputs():
    model = build("1layer", 30)
    with pytest.raises(ValueError, match=r"\(N, 4, L\)"):
        saturation_mutagenesis(model, torch.zeros(2, 5, 30))
    with pytest.raises(ValueError, match="returned shape"):
        saturation_mutagenesis(lambda b: b.sum(dim=1), random_dna(1, 10))
    with pytest.raises(ValueError, match="target"):
        saturation_mutagenesis(lambda b: b.sum(dim=2), random_dna(1, 10))
    with pytest.raises(ValueError, match="batch_size"):
        saturation_mutagenesis(model, random_dna(1, 30), batch_size=0)


@pytest.mark.parametrize("name", ["1layer", "2layer_local_win3"])
def test_edit_scores_with_arbitrary_columns_equal_full_forward_passes(name, one_thread):
    """The local path scores any replacement column (SIS uses 0.25 each), only where asked."""
    from mlcourse.interpret.engines import local_plan
    torch.manual_seed(2)
    length = max(30, min_length(name))
    model = build(name, length).eval()
    X = random_dna(3, length, seed=4)
    X[1, :, 5] = 0.25  # an already masked column
    new = torch.rand(2, 3, 4, length, generator=torch.Generator().manual_seed(5))
    where = torch.rand(3, length, generator=torch.Generator().manual_seed(6)) < 0.6
    with torch.inference_mode():
        plan = local_plan(model, X[:1])
        ref = model(X)
        got = plan.edit_scores(X, new, ref, where)
        for k in range(2):
            for i in range(3):
                for p in range(length):
                    edited = X[i:i + 1].clone()
                    edited[0, :, p] = new[k, i, :, p]
                    want = model(edited)[0] if where[i, p] else ref[i]
                    assert abs(float(got[k, i, p] - want)) < 1e-5, (name, k, i, p)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_element_budget_splits_chunks_and_keeps_the_result(name, one_thread, monkeypatch):
    """A tiny activation budget forces one sequence per chunk: the engine still equals the plain path."""
    from mlcourse.interpret import engines

    torch.manual_seed(2)
    length = max(40, min_length(name))
    model = build(name, length).eval()
    X = random_dna(5, length, seed=3)
    plain = saturation_mutagenesis(model, X, fast=False)
    chunks = []
    chunk = engines._LocalPlan._chunk
    monkeypatch.setattr(engines._LocalPlan, "_chunk", lambda self, x: chunks.append(len(x)) or chunk(self, x))
    whole = saturation_mutagenesis(model, X, fast=True)
    assert chunks == [5]
    chunks.clear()
    monkeypatch.setattr(engines._LocalPlan, "ELEMENTS", 1)
    monkeypatch.setattr(engines._LocalPlan, "TAP_ELEMENTS", 1)
    monkeypatch.setattr(engines._LocalPlan, "LOOKUP_ELEMENTS", 1)
    monkeypatch.setattr(engines._LocalPlan, "WINDOW_ELEMENTS", 1)
    monkeypatch.setattr(engines._LocalPlan, "WINDOW_SEQUENCES", 0)
    split = saturation_mutagenesis(model, X, fast=True)
    assert chunks == [1] * 5
    assert torch.allclose(split, whole, atol=1e-6)  # other batch shapes: float rounding only
    assert torch.allclose(split, plain, atol=1e-5), (name, (split - plain).abs().max())


def test_window_path_exact_in_double_precision_near_the_ends_and_on_maps_narrower_than_a_window(one_thread):
    """The window path's residue classes on what the Zeng models do not use: padded convolutions and
    pools (windows past the ends read the padding), a stride of 2, a non-monotone map and a last map
    narrower than an edit's window (taken whole, the same for every position)."""
    from mlcourse.interpret.engines import local_plan
    torch.manual_seed(6)
    model = nn.Sequential(
        nn.Conv1d(4, 5, 6, padding=2), nn.ReLU(), nn.MaxPool1d(3, stride=2, padding=1),
        nn.Conv1d(5, 4, 5, padding=2), nn.GELU(), nn.MaxPool1d(2), nn.Conv1d(4, 3, 3), nn.ReLU(),
        nn.MaxPool1d(2), nn.Flatten(), nn.Linear(3, 2),
    ).double().eval()
    X = random_dna(3, 19, seed=8).double()
    X[1, :, 0] = 0  # an N column at an end
    with torch.inference_mode():
        plan = local_plan(model, X[:1], 1)
        assert not plan._tap_path()
        assert any(w.step == 0 for ws in plan._layout(19).windows.values() for w in ws)
    expected = naive_ism(lambda b: model(b)[:, 1], X)
    got = saturation_mutagenesis(model, X, target=1, fast=True)
    assert torch.allclose(got, expected, atol=1e-10), (got - expected).abs().max()


@pytest.mark.parametrize("name", ["3layer", "3layer_local_win3"])
def test_long_sequences_take_blocks_of_whole_sequences_activations_and_stay_exact(name, one_thread, monkeypatch):
    """At 400 bp 16 sequences' activations outnumber WINDOW_ELEMENTS: the window path's blocks grow to
    them (whole residues, both ends in one block) and still give the plain path's numbers."""
    from mlcourse.interpret import engines
    model = build(name, 400).eval().double()
    X = random_dna(2, 400, seed=11).double()
    with torch.inference_mode():
        plan = engines.local_plan(model, X[:1])
        budget = plan._window_budget(plan._reference(X[:1]))
    assert budget == plan.WINDOW_SEQUENCES * sum(a.numel() for a in plan._reference(X[:1])) > plan.WINDOW_ELEMENTS
    expected = saturation_mutagenesis(model, X, fast=False)
    got = saturation_mutagenesis(model, X, fast=True)
    assert torch.allclose(got, expected, atol=1e-10), (got - expected).abs().max()
    monkeypatch.setattr(engines._LocalPlan, "WINDOW_SEQUENCES", 0)  # blocks of 11 positions: some cross one end
    monkeypatch.setattr(engines._LocalPlan, "WINDOW_ELEMENTS", 2 ** 15)
    assert torch.allclose(saturation_mutagenesis(model, X, fast=True), expected, atol=1e-10)


def test_sparse_edits_of_one_input_leave_the_reference_untouched(one_thread):
    """SIS's calls: one input, one masked value, a few positions of several residues. The chain's
    whole output (no global max pool) is the reference with each window written in, never written
    into the reference itself, which later positions read."""
    from mlcourse.interpret.engines import local_plan
    model = build("1layer_local_win9", 40).eval().double()
    X = random_dna(1, 40, seed=9).double()
    X[0, :, 30:34] = 0.25
    where = torch.zeros(1, 40, dtype=torch.bool)
    where[0, [4, 18, 22, 37]] = True  # 18 and 37 lie in different residues (the period is 9)
    new = torch.full((1, 1, 4, 1), 0.25, dtype=torch.double)
    with torch.inference_mode():
        ref = model(X)
        got = local_plan(model, X[:1]).edit_scores(X, new, ref, where)
        for p in range(40):
            edited = X.clone()
            edited[0, :, p] = 0.25
            want = model(edited)[0] if where[0, p] else ref[0]
            assert abs(float(got[0, 0, p] - want)) < 1e-10, p


@pytest.mark.parametrize("dilation", [1, 2])
def test_global_max_models_exact_in_double_precision_with_padding_dilation_and_gelu(dilation, one_thread):
    """The running maximum over taps (1-layer global-max models) on what the Zeng models do not use:
    zero padding and a non-monotone map before the pool (applied to every tap's value); a dilated
    first layer takes the window path."""
    from mlcourse.interpret.engines import local_plan
    torch.manual_seed(4)
    model = nn.Sequential(
        nn.Conv1d(4, 5, 4, padding=3, dilation=dilation), nn.GELU(), nn.MaxPool1d(23 - 3 * dilation), nn.ReLU(),
        nn.Flatten(), nn.Linear(5, 2),
    ).double().eval()
    X = random_dna(3, 17).double()
    X[2, :, 4] = 0  # an N column
    with torch.inference_mode():
        assert local_plan(model, X[:1], 1)._tap_path() == (dilation == 1)
    expected = naive_ism(lambda b: model(b)[:, 1], X)
    got = saturation_mutagenesis(model, X, target=1, fast=True)
    assert torch.allclose(got, expected, atol=1e-10)
    where = torch.rand(3, 17, generator=torch.Generator().manual_seed(1)) < 0.5  # SIS's sparse pairs
    with torch.inference_mode():
        ref = model(X)[:, 1]
        sparse = local_plan(model, X[:1], 1).edit_scores(X, torch.eye(4, dtype=X.dtype)[:, None, :, None], ref, where)
    want = torch.where(where, (expected + ref[:, None, None]).transpose(0, 1), ref[:, None])
    assert torch.allclose(sparse, want, atol=1e-10)


@pytest.mark.parametrize("case", ["planted", "ties", "soft"])
def test_global_max_skips_are_exact(case, one_thread):
    """The tap path's candidate/term skips: a planted motif (most outputs skipped), constant
    outputs that all tie the maximum (nothing can be skipped), and a soft column (no lookup
    table: every tap is scored). All equal the one-mutant loop in double precision."""
    torch.manual_seed(5)
    model = nn.Sequential(nn.Conv1d(4, 3, 6, padding=2), nn.MaxPool1d(40 + 4 - 5), nn.ReLU(),
                          nn.Flatten(), nn.Linear(3, 1)).double().eval()
    X = random_dna(4, 40, seed=7).double()
    with torch.no_grad():
        if case == "planted":  # channel 0 matches AAAAAA strongly, planted at 10..15 of sequence 0
            model[0].weight[0] = -1.0
            model[0].weight[0, 0] = 5.0
            X[0, :, 10:16] = 0
            X[0, 0, 10:16] = 1
        elif case == "ties":  # every output of channel 1 is its bias: all tie, all are candidates
            model[0].weight[1] = 0.0
            model[0].weight[1, 2, 3] = 1e-3
            X[1, :, 20] = 0  # an N column
        else:
            X[2, :, 5] = 0.25
    expected = naive_ism(lambda b: model(b)[:, 0], X)
    got = saturation_mutagenesis(model, X, fast=True)
    assert torch.allclose(got, expected, atol=1e-10), (case, (got - expected).abs().max())


@pytest.mark.parametrize("length", [40, 1000])
def test_global_max_lookup_scores_the_rows_that_differ_in_blocks(length, one_thread, monkeypatch):
    """The lookup path of the 1-layer models scores every row where the channels' top windows cover most
    positions (short sequences), else only the rows whose pooled vector differs from the reference;
    its head goes a few rows at a time, and clean columns get three substitutions, N columns four."""
    from mlcourse.interpret import engines

    monkeypatch.setattr(engines._LocalPlan, "HEAD_ROWS", 7)
    torch.manual_seed(6)
    model = build("1layer", length).eval()
    X = random_dna(3, length, seed=8)
    X[2, :, length // 2] = 0  # an N column: that chunk scores all four bases
    with torch.inference_mode():
        assert engines.local_plan(model, X[:1])._lookup_path()
    plain = saturation_mutagenesis(model, X, fast=False)
    for batch_size in (4, 64):  # one sequence per chunk (two clean, one with an N), or all at once
        got = saturation_mutagenesis(model, X, fast=True, batch_size=batch_size)
        assert torch.allclose(got, plain, atol=1e-5), (length, batch_size, (got - plain).abs().max())


@pytest.mark.parametrize("pad", [0, 1, 3])
def test_window_minima_of_outside_maxima_equal_a_sliding_minimum(pad):
    """The lookup path's least outside maximum per output (few elementwise passes, valid because the
    outside maxima fall then rise) equals the sliding-window minimum, ties included."""
    import math
    from types import SimpleNamespace

    from mlcourse.interpret.engines import _LocalPlan, _running_maxima, _window_minima
    g = torch.Generator().manual_seed(pad)
    conv = torch.randint(0, 4, (5, 3, 30), generator=g).double()  # small integers: many ties
    conv[0, 0] = 1.0  # a constant channel
    step = SimpleNamespace(dilation=1, kernel=6, pad=pad, out_len=30)
    outside = _LocalPlan._outside(step, 30 - 2 * pad + 5, *_running_maxima(conv))
    walls = nn.functional.pad(outside, (pad, pad), value=math.inf)
    assert torch.equal(_window_minima(walls, 6), -nn.functional.max_pool1d(-walls, 6, 1))


@pytest.mark.parametrize("length, kernel, pad", [(5, 9, 3), (12, 4, 3), (8, 8, 7)])
def test_global_max_lookup_with_wide_padding_on_short_inputs(length, kernel, pad, one_thread):
    """The outside maxima as shifted prefix/suffix maxima, where an edit's window runs off both ends."""
    torch.manual_seed(kernel)
    model = nn.Sequential(nn.Conv1d(4, 3, kernel, padding=pad), nn.MaxPool1d(length + 2 * pad - kernel + 1),
                          nn.ReLU(), nn.Flatten(), nn.Linear(3, 1)).double().eval()
    X = random_dna(2, length, seed=pad).double()
    expected = naive_ism(lambda b: model(b)[:, 0], X)
    assert torch.allclose(saturation_mutagenesis(model, X, fast=True), expected, atol=1e-10)


@pytest.mark.parametrize("before", [nn.ReLU, nn.Tanh, nn.Identity])
@pytest.mark.parametrize("length", [30, 400])
def test_global_max_lookup_maps_before_the_scatter(before, length, one_thread):
    """The lookup path applies the monotone maps moved past the pool (ReLU, tanh) to the outside maxima and
    the kept terms before the scatter; short inputs score every row, long ones only the rows that can
    differ (an edit in some channel's top window, or a kept term)."""
    from mlcourse.interpret import engines
    torch.manual_seed(9)
    model = nn.Sequential(nn.Conv1d(4, 6, 8), before(), nn.MaxPool1d(length - 7),
                          nn.Flatten(), nn.Linear(6, 1)).double().eval()
    X = random_dna(3, length, seed=10).double()
    with torch.inference_mode():
        assert engines.local_plan(model, X[:1])._lookup_path()
    expected = naive_ism(lambda b: model(b)[:, 0], X)
    assert torch.allclose(saturation_mutagenesis(model, X, fast=True), expected, atol=1e-10)


def test_global_max_lookup_with_no_position_that_can_differ(one_thread):
    """Zero weights: every output ties its channel's maximum and no edit changes anything, so no position
    goes through the rest of the model and every score is the reference's (ISM all zeros)."""
    model = nn.Sequential(nn.Conv1d(4, 6, 8), nn.ReLU(), nn.MaxPool1d(400 - 7),
                          nn.Flatten(), nn.Linear(6, 1)).double().eval()
    with torch.no_grad():
        model[0].weight.zero_()
    X = random_dna(2, 400, seed=11).double()
    assert torch.equal(saturation_mutagenesis(model, X, fast=True), torch.zeros_like(X))


def _kernel_and_torch_lookup(model, X, monkeypatch):
    """ISM by the compiled kernel and by the torch lookup (forced on the CPU), both asserted on the lookup path."""
    from mlcourse.interpret import engines
    with torch.inference_mode():
        assert engines.local_plan(model, X[:1])._lookup_path()
    monkeypatch.setattr(engines._LocalPlan, "KERNEL_LENGTH", X.shape[-1])
    kernel = saturation_mutagenesis(model, X, fast=True)
    monkeypatch.setattr(engines._LocalPlan, "KERNEL_LENGTH", 0)
    lookup = saturation_mutagenesis(model, X, fast=True)
    return kernel, lookup


@pytest.mark.parametrize("name", [a for a in ARCHITECTURES if a.startswith("1layer") and "local" not in a])
@pytest.mark.parametrize("length", [101, 400])
def test_kernel_torch_lookup_and_plain_agree_on_every_global_max_architecture(name, length, one_thread, monkeypatch):
    """The compiled kernel (CPU), the torch lookup (other devices) and the plain definition: equal to 1e-6
    (float32 rounding of logits of order 1), with an N column (four edits there) and the three substitutions
    elsewhere."""
    torch.manual_seed(11)
    model = build(name, length).eval()
    X = random_dna(6, length, seed=12)
    X[4, :, length // 3] = 0
    kernel, lookup = _kernel_and_torch_lookup(model, X, monkeypatch)
    plain = saturation_mutagenesis(model, X, fast=False)
    assert torch.allclose(kernel, plain, rtol=1e-6, atol=1e-6), (kernel - plain).abs().max()
    assert torch.allclose(lookup, plain, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("case", ["ties", "width", "tanh", "padded"])
def test_kernel_exact_in_double_precision_on_edge_cases(case, one_thread, monkeypatch):
    """The kernel on what the Zeng models do not use, in double precision against the one-mutant loop: outputs
    that all tie their maximum, an input as long as the filter (one output, T = 1: no outside maximum), a
    monotone map other than ReLU (tanh, mapped after the kernel) and zero padding past both ends."""
    torch.manual_seed(13)
    length, width, pad, act = 30, 6, 0, nn.ReLU
    if case == "width":
        length = width = 9
    elif case == "tanh":
        act = nn.Tanh
    elif case == "padded":
        pad = 4
    model = nn.Sequential(nn.Conv1d(4, 5, width, padding=pad), act(), nn.MaxPool1d(length + 2 * pad - width + 1),
                          nn.Flatten(), nn.Linear(5, 3), nn.ReLU(), nn.Linear(3, 1)).double().eval()
    if case == "ties":
        with torch.no_grad():
            model[0].weight[:2] = 0.0  # channels 0 and 1: every output is the bias
    X = random_dna(4, length, seed=14).double()
    X[1, :, 2] = 0
    expected = naive_ism(lambda b: model(b)[:, 0], X)
    kernel, lookup = _kernel_and_torch_lookup(model, X, monkeypatch)
    assert torch.allclose(kernel, expected, atol=1e-12), (case, (kernel - expected).abs().max())
    assert torch.allclose(lookup, expected, atol=1e-12)


def test_non_monotone_map_before_the_pool_does_not_use_the_kernel(one_thread, monkeypatch):
    """GELU before the global max pool does not commute with it: ISM takes the running maximum, never the
    kernel, and equals the one-mutant loop."""
    from mlcourse.interpret import engines, ism_kernel
    model = nn.Sequential(nn.Conv1d(4, 5, 6), nn.GELU(), nn.MaxPool1d(25), nn.Flatten(),
                          nn.Linear(5, 1)).double().eval()
    X = random_dna(3, 30, seed=15).double()
    with torch.inference_mode():
        assert not engines.local_plan(model, X[:1])._lookup_path()
    monkeypatch.setattr(ism_kernel, "pooled_edits", None)  # any call would fail
    expected = naive_ism(lambda b: model(b)[:, 0], X)
    assert torch.allclose(saturation_mutagenesis(model, X, fast=True), expected, atol=1e-12)


@pytest.mark.skipif(not __import__("shutil").which("bwrap"), reason="needs bubblewrap (bwrap)")
def test_kernel_runs_with_the_package_and_home_read_only(tmp_path):
    """The real case: the whole file system read-only (bwrap), no NUMBA_CACHE_DIR: numba finds no cache
    folder, the kernel still runs."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    code = ("import torch; from mlcourse.interpret.ism import saturation_mutagenesis as s; "
            "from mlcourse.models.zeng import build; torch.manual_seed(0); "
            "X = torch.nn.functional.one_hot(torch.randint(0, 4, (2, 40)), 4).float().transpose(1, 2); "
            "m = build('1layer', 40).eval(); "
            "print(bool(torch.allclose(s(m, X, fast=True), s(m, X), atol=1e-5)))")
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME")}
    env.update(HOME="/nonexistent", PYTHONPATH=str(root))
    out = subprocess.run(["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", sys.executable,
                          "-c", code], env=env, capture_output=True, text=True, timeout=300)
    if "Operation not permitted" in out.stderr or "No permissions" in out.stderr:
        pytest.skip(f"bwrap cannot run here: {out.stderr.strip()}")
    assert out.stdout.strip() == "True", out.stderr


def test_compiled_column_codes_and_placement_equal_the_torch_operations():
    """The CPU loops of :mod:`mlcourse.interpret.ism_kernel` that read the base codes and place ISM's scores
    give what the torch operations (the path on other devices) give: codes for one-hot and all-zero
    columns, and None for a soft value, two ones in a column, a NaN or a 2."""
    from mlcourse.interpret import engines, ism_kernel
    X = random_dna(5, 37, seed=21)
    X[2, :, 7] = 0  # an N
    codes = ism_kernel.column_codes(X)
    assert torch.equal(codes, engines._LocalPlan._column_codes_by_torch(X))
    assert int(codes[2, 7]) == 4 and set(codes.unique().tolist()) == {0, 1, 2, 3, 4}
    for bad in (0.5, float("nan"), 2.0, "two ones"):
        Y = X.clone()
        if bad == "two ones":
            Y[1, :2, 3] = 1.0
        else:
            Y[3, 1, 30] = bad
        assert ism_kernel.column_codes(Y) is None, bad
        assert engines._LocalPlan._column_codes_by_torch(Y) is None, bad
    clean = ism_kernel.column_codes(random_dna(5, 37, seed=22))
    scores, ref = torch.randn(3, 5, 37, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    plan = engines._LocalPlan.__new__(engines._LocalPlan)
    assert torch.equal(plan._placed(clean, scores, ref), plan._placed_by_scatter(clean, scores, ref))


def test_a_reused_chain_cut_restores_the_model_every_time_and_follows_a_moved_module():
    """:class:`~mlcourse.interpret.engines.chain_cut` finds where the chain sits once; each exit puts the
    very same modules back, and a chain module moved to another parent between cuts is found again."""
    from mlcourse.interpret.engines import chain_cut
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv1d(4, 3, 5), nn.ReLU(), nn.Sequential(nn.Flatten(), nn.Linear(3 * 16, 1)))
    X = random_dna(2, 20, seed=4)
    with torch.inference_mode():
        expected = model(X)
        cut = chain_cut(model, [model[0], model[1]])
        children = list(model.children())
        for _ in range(3):
            with cut as inject:
                inject.value = torch.relu(children[0](X))
                assert torch.equal(model(torch.zeros(2, 4, 20)), expected)
            assert list(model.children()) == children and torch.equal(model(X), expected)
        relu = model[1]
        model[1] = nn.Identity()
        model[2].insert(0, relu)  # the ReLU now lives in the inner Sequential
        with cut as inject:
            inject.value = torch.relu(children[0](X))  # the chain's output: its ReLU is cut where it now sits
            assert model[2][0] is not relu and torch.equal(model(torch.zeros(2, 4, 20)), expected)
        assert model[2][0] is relu and torch.equal(model(X), expected)
