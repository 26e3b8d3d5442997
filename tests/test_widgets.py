"""Widgets without a browser: build each one, move its controls, check what it shows."""

import numpy as np
import pytest
import torch
from torch import nn

from mlcourse import widgets
from mlcourse.dna import one_hot
from mlcourse.interpret.paths import integrated_gradients
from mlcourse.models.zeng import build


class Quadratic(nn.Module):
    """f(x) = (w . x)^2: integrated gradients from 0 is x * w * (w . x), exactly."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(torch.as_tensor(w, dtype=torch.float32))

    def forward(self, x):
        return (x.flatten(1) @ self.w.flatten()) ** 2


def random_seq(length=101, seed=0):
    return "".join(np.random.default_rng(seed).choice(list("ACGT"), length))


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    return build("1layer").eval()


# ----------------------------------------------------------------------------- sequence explorer
def test_mutate_replaces_one_base_and_rejects_bad_input():
    assert widgets.mutate("ACGT", 2, "T") == "ACTT"
    with pytest.raises(ValueError, match="base='N'"):
        widgets.mutate("ACGT", 0, "N")
    with pytest.raises(ValueError, match="position=4"):
        widgets.mutate("ACGT", 4, "A")


def test_predict_and_ism_matches_scoring_each_mutant(cnn):
    seq = random_seq()
    score, ism = widgets.predict_and_ism(cnn, seq)
    assert ism.shape == (4, 101)
    with torch.no_grad():
        assert score == pytest.approx(float(cnn(one_hot(seq))[0]), abs=1e-6)
        for pos, base in [(0, "A"), (50, "G"), (100, "T")]:
            mutant = float(cnn(one_hot(widgets.mutate(seq, pos, base)))[0])
            assert ism[("ACGT").index(base), pos] == pytest.approx(mutant - score, abs=1e-5)


def test_sequence_explorer_mutation_moves_the_prediction_by_the_ism_value(cnn):
    seq = random_seq()
    explorer = widgets.sequence_explorer(cnn, seq)
    before = explorer.state
    image, text = bytes(explorer.figure.value), explorer.readout.value
    assert image.startswith(b"\x89PNG") and "score" in text
    # the most damaging substitution, applied with the controls
    b, pos = np.unravel_index(np.argmin(before["ism"]), before["ism"].shape)
    explorer.position.value = int(pos)
    explorer.base.value = "ACGT"[b]
    explorer.mutate_button.click()
    after = explorer.state
    assert after["sequence"] == widgets.mutate(seq, int(pos), "ACGT"[b])
    assert after["score"] == pytest.approx(before["score"] + before["ism"][b, pos], abs=1e-5)
    assert after["score"] < before["score"]
    assert bytes(explorer.figure.value) != image and explorer.readout.value != text
    explorer.reset_button.click()
    assert explorer.state["sequence"] == seq


def test_choosing_a_base_updates_the_readout_and_the_map_has_a_colour_bar(cnn):
    seq = random_seq()
    explorer = widgets.sequence_explorer(cnn, seq)
    pos = 40
    explorer.position.value = pos
    new = next(base for base in "ACGT" if base != seq[pos])
    explorer.base.value = new
    change = explorer.state["ism"]["ACGT".index(new), pos]
    assert f"{seq[pos]}&rarr;{new} would change it by <b>{change:+.3f}</b>" in explorer.readout.value
    _, fig = explorer.compute()
    assert any(ax.get_label() == "<colorbar>" for ax in fig.axes)


def test_sequence_explorer_shows_typing_errors_without_changing_state(cnn):
    seq = random_seq()
    explorer = widgets.sequence_explorer(cnn, seq)
    state = explorer.state
    explorer.sequence.value = "ACGX" + seq[4:]
    assert "X" in explorer.readout.value and "b00020" in explorer.readout.value
    explorer.sequence.value = seq[:50]
    assert "50 bp" in explorer.readout.value
    assert explorer.state is state


# ----------------------------------------------------------------------------- IG path explorer
def test_ig_path_state_integrates_to_closed_form_and_tracks_the_output():
    torch.manual_seed(1)
    w = torch.randn(4, 12)
    model, x = Quadratic(w), torch.randn(4, 12)
    path = widgets.ig_path(model, x, steps=20)
    end = widgets.ig_path_state(path, 1.0)
    expected = x * w * (w * x).sum()
    torch.testing.assert_close(end.attribution, expected, rtol=1e-4, atol=1e-4)
    assert end.total == pytest.approx(end.goal, rel=1e-4)
    for alpha in (0.0, 0.25, 0.5, 0.8):
        state = widgets.ig_path_state(path, alpha)
        assert state.alpha == pytest.approx(alpha)
        # the running sum is the path integral of the gradient: it equals f(x_alpha) - f(x')
        assert state.total == pytest.approx(alpha**2 * end.goal, rel=1e-4, abs=1e-6)
        assert state.change == pytest.approx(alpha**2 * end.goal, rel=1e-4, abs=1e-6)
        torch.testing.assert_close(state.point, alpha * x)


def test_ig_path_end_equals_mlcourse_integrated_gradients(cnn):
    x = one_hot(random_seq(seed=3))
    baseline = torch.full_like(x, 0.25)
    path = widgets.ig_path(cnn, x, baseline=baseline, steps=32)
    ours = widgets.ig_path_state(path, 1.0).attribution
    theirs = integrated_gradients(cnn, x, baseline=baseline, steps=33, method="riemann_trapezoid")[0]
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-6)


def test_ig_path_rejects_bad_arguments(cnn):
    x = one_hot(random_seq())
    with pytest.raises(ValueError, match="baseline has shape"):
        widgets.ig_path(cnn, x, baseline=torch.zeros(4, 50))
    with pytest.raises(ValueError, match="steps"):
        widgets.ig_path(cnn, x, steps=0)
    with pytest.raises(ValueError, match="alpha=1.5"):
        widgets.ig_path_state(widgets.ig_path(cnn, x, steps=4), 1.5)
    with pytest.raises(ValueError, match="5 rows"):
        widgets.ig_path(cnn, torch.zeros(5, 101))


def test_ig_path_explorer_slider_updates_state_readout_and_figure(cnn):
    explorer = widgets.ig_path_explorer(cnn, one_hot(random_seq()), steps=20)
    assert explorer.alpha.continuous_update is False
    image, text = bytes(explorer.figure.value), explorer.readout.value
    explorer.alpha.value = 1.0
    assert explorer.state.alpha == 1.0
    assert explorer.state.total == widgets.ig_path_state(explorer.path, 1.0).total
    assert bytes(explorer.figure.value) != image and explorer.readout.value != text
    assert f"{explorer.state.total:+.4f}" in explorer.readout.value


# ----------------------------------------------------------------------------- filter browser
@pytest.fixture(scope="module")
def maff():
    """A CNN whose filter 0 is MAFF's log-odds matrix (filter 1 its reverse complement), and bound sequences."""
    from mlcourse.datasets.simulate import motif_discovery
    from mlcourse.interpret.compare import motif_detector

    data = motif_discovery("MAFF", n=120, seed=0)
    return motif_detector("MAFF"), data.subset(np.flatnonzero(data.y == 1))


def test_filter_report_names_the_planted_motif_and_its_sites(maff):
    model, bound = maff
    bank = widgets.FilterBank(model, bound.X)
    report = widgets.filter_report(bank, 0, top=3)
    # the planted MARE (MA0495.2's core) matches the MAF family: MAFF itself, or MAF / MAFA / MAFK ...
    assert report.match.name.upper().startswith("MAF") and report.match_score > 0.9
    for n, start, activation, window in report.top:
        assert len(window) == 24 and activation > 0
        # a planted site starts there (on either strand: the MARE is a palindrome, filter 0 fires on both)
        assert any(s.start == start for s in bound.sites[n]), (n, start, bound.sites[n])
    with pytest.raises(ValueError, match="filter index 16"):
        widgets.filter_report(bank, 16)


def test_filter_browser_slider_steps_through_filters(maff):
    model, bound = maff
    browser = widgets.filter_browser(model, bound.X, candidates=["MAFF", "CTCF", "GATA1"])
    assert browser.filter.continuous_update is False and browser.filter.max == 15
    image, text = bytes(browser.figure.value), browser.readout.value
    assert browser.state.index == 0 and "MAFF" in text
    browser.filter.value = 1  # the reverse-complement filter: still MAFF, other windows
    assert browser.state.index == 1 and browser.state.match.name == "MAFF"
    assert bytes(browser.figure.value) != image and browser.readout.value != text


# ----------------------------------------------------------------------------- attribution comparer
def test_attribution_comparer_scores_methods_against_planted_sites(maff):
    from mlcourse.interpret import backprop, ism

    model, bound = maff
    calls = []

    def ism_scores(X):
        calls.append("ISM")
        return -ism.saturation_mutagenesis(model, X).sum(1) / 3

    def saliency(X):
        calls.append("saliency")
        return backprop.saliency(model, X).abs().amax(1)

    def constant(X):
        calls.append("constant")
        return torch.arange(X.shape[-1], dtype=torch.float32)[None]  # ranks the sequence's end first

    methods = {"ISM": ism_scores, "saliency": saliency, "last positions": constant}
    sites = bound.sites[0]
    comparer = widgets.attribution_comparer(model, bound.X[0], methods=methods, sites=sites)
    assert set(comparer.state) == {"ISM", "saliency"}
    k = max(s.width for s in sites)  # the motif's width, 13 bp for MAFF's MARE
    assert comparer.k == k
    assert f"100% of its top {k}" in comparer.readout.value.split("saliency")[0]
    image = bytes(comparer.figure.value)
    comparer.second.value = "last positions"
    expected_hits = np.mean([any(s.start <= p < s.end for s in sites) for p in range(101 - k, 101)])
    assert f"{expected_hits:.0%} of its top {k}" in comparer.readout.value.split("last positions")[1]
    assert bytes(comparer.figure.value) != image
    comparer.second.value = "saliency"
    assert calls.count("saliency") == 1 and calls.count("ISM") == 1  # cached, not recomputed


def test_attribution_comparer_on_an_image_matches_the_methods():
    from mlcourse.interpret import cam
    from mlcourse.models.vision import gap_cnn

    torch.manual_seed(0)
    model = gap_cnn().eval()
    x = torch.rand(1, 28, 28)
    comparer = widgets.attribution_comparer(model, x, target=3)
    assert comparer.state["saliency"].shape == (28, 28)
    image = bytes(comparer.figure.value)
    comparer.second.value = "Grad-CAM"
    direct = cam.to_input(model, x[None], cam.grad_cam(model, x[None], layer=model.last_conv, target=3),
                          layer=model.last_conv)
    np.testing.assert_allclose(comparer.state["Grad-CAM"], direct[0].numpy(), rtol=1e-5, atol=1e-6)
    assert bytes(comparer.figure.value) != image
    with pytest.raises(ValueError, match="unknown method 'LRP'"):
        widgets.attribute(comparer.methods, "LRP", x)


# ----------------------------------------------------------------------------- gradient-ascent viewer
def test_ascent_viewer_steps_through_an_image_ascent():
    from mlcourse.interpret.maximize import class_image
    from mlcourse.models.vision import gap_cnn

    torch.manual_seed(0)
    run = class_image(gap_cnn().eval(), torch.zeros(1, 28, 28), target=3, steps=8, record_every=2)
    viewer = widgets.ascent_viewer(run, title="digit 3")
    assert viewer.snapshot.max == len(run) - 1 == 4 and viewer.snapshot.continuous_update is False
    assert viewer.state["step"] == 8
    image, text = bytes(viewer.figure.value), viewer.readout.value
    viewer.snapshot.value = 1
    assert viewer.state["step"] == 2 and viewer.state["score"] == pytest.approx(run.scores[1])
    torch.testing.assert_close(viewer.state["frame"], run.frames[1])
    assert f"{run.scores[1]:+.3f}" in viewer.readout.value
    assert bytes(viewer.figure.value) != image and viewer.readout.value != text
    with pytest.raises(ValueError, match="snapshot 5 is outside the 5"):
        widgets.ascent_frame(run, 5)


def test_ascent_frame_gives_the_information_content_of_a_dna_pwm(cnn):
    from mlcourse.interpret.maximize import dna_class_pwm

    run = dna_class_pwm(cnn, 101, steps=10, record_every=5)
    frame = widgets.ascent_frame(run, -1)
    p = run.frames[-1].double().numpy()
    np.testing.assert_allclose(frame["bits"], 2 + (p * np.log2(p)).sum(0), rtol=1e-4, atol=1e-5)
    assert np.all((frame["bits"] >= -1e-6) & (frame["bits"] <= 2))
    viewer = widgets.ascent_viewer(run)
    image = bytes(viewer.figure.value)
    viewer.snapshot.value = 0
    assert viewer.state["step"] == 0 and bytes(viewer.figure.value) != image


# ----------------------------------------------------------------------------- SIS explorer
@pytest.fixture(scope="module")
def short_maff():
    """63 bp sequences and a MAFF detector for them (short, so SIS collections take a moment)."""
    from mlcourse.datasets.simulate import motif_discovery
    from mlcourse.interpret.compare import motif_detector

    data = motif_discovery("MAFF", n=40, length=63, seed=1)
    model = motif_detector("MAFF", seq_len=63)
    with torch.no_grad():
        confident = torch.sigmoid(model(data.X)).numpy() > 0.95  # a strong planted site
    return model, data.subset(np.flatnonzero((data.y == 1) & confident)[:4])


def test_sis_state_finds_sufficient_subsets_inside_the_planted_site(short_maff):
    from mlcourse.interpret.scoring import score

    model, bound = short_maff
    x, sites = bound.X[0], bound.sites[0]
    state = widgets.sis_state(model, x, threshold=0.8)
    assert state["probability"] >= 0.8 and state["collection"]
    planted = {p for s in sites for p in range(s.start, s.end)}
    def f(batch):
        return score(model, batch, output="probability")

    for positions, found in zip(state["positions"], state["collection"]):
        assert set(positions.tolist()) <= planted
        kept = torch.full_like(x, 0.25)
        kept[:, positions] = x[:, positions]
        assert float(f(kept[None])[0]) == pytest.approx(found.score, abs=1e-6) and found.score >= 0.8
    with pytest.raises(ValueError, match="threshold=1.5"):
        widgets.sis_state(model, x, threshold=1.5)


def test_sis_explorer_threshold_and_example_update_the_shading(short_maff):
    model, bound = short_maff
    explorer = widgets.sis_explorer(model, bound.X, threshold=0.6, sites=bound.sites)
    assert explorer.threshold.continuous_update is False and explorer.example.continuous_update is False
    low = explorer.state
    shaded = explorer.readout.value.count("font-weight:bold")
    assert shaded == sum(len(p) for p in low["positions"]) > 0
    image = bytes(explorer.figure.value)
    explorer.threshold.value = 0.95
    high = explorer.state
    assert sum(map(len, high["positions"][:1])) >= sum(map(len, low["positions"][:1]))
    assert all(s.score >= 0.95 for s in high["collection"])
    explorer.example.value = 1
    assert explorer.state is not high and "example 1" in explorer.readout.value
    assert bytes(explorer.figure.value) != image


def test_image_grad_cam_falls_back_to_the_last_convolution():
    from mlcourse.interpret.methods import scorers
    from mlcourse.models.vision import mnist_cnn

    model = mnist_cnn().eval()
    comparer = widgets.attribution_comparer(model, torch.rand(1, 1, 28, 28), target=0)
    comparer.second.value = "Grad-CAM"
    assert comparer.state["Grad-CAM"].shape == (28, 28)
    with pytest.raises(ValueError, match="no Conv2d"):
        scorers(nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), "image")["Grad-CAM"](torch.rand(1, 1, 28, 28))
