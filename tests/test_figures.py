"""Figures a student can read: no overlapping text in the figure types the lectures draw."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from mlcourse import benchmark, plot  # noqa: E402
from mlcourse.findings import overlapping_text  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_the_check_finds_overlapping_text_and_passes_readable_text():
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.text(0.5, 0.5, "first label")
    ax.text(0.52, 0.51, "second label")
    ax.set_title("a title")
    assert overlapping_text(fig) == [("first label", "second label")]
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.text(0.1, 0.2, "apart")
    ax.text(0.6, 0.8, "far apart")
    ax.set(title="a title", xlabel="x", ylabel="y")
    assert overlapping_text(fig) == []


def test_stacked_panels_keep_their_xlabel_off_the_next_title():
    """Lecture 10's two DNA panels: without a layout engine the x-label covers the next title."""
    fig, axes = plt.subplots(2, 1, figsize=(12, 5), layout="constrained")
    for ax, layer in zip(axes, ["relu1", "relu2"]):
        ax.plot(np.arange(101), np.random.default_rng(0).random(101))
        ax.set(title=f"Grad-CAM at {layer}, scaled to max 1", xlabel="position (bp)")
    assert overlapping_text(fig) == []


def test_method_comparison_labels_do_not_overlap():
    """Lecture 12: eleven methods, several with similar cost and precision."""
    names = ["ISM", "SIS", "saliency", "gradient x input", "guided backprop", "Grad-CAM",
             "integrated gradients", "DeepLiftShap", "LIME", "KernelSHAP", "maximum entropy"]
    seconds = [0.9, 40, 0.05, 0.05, 0.06, 0.05, 2.0, 1.5, 9.0, 9.5, 30]
    precision = [0.62, 0.55, 0.60, 0.61, 0.58, 0.35, 0.62, 0.61, 0.40, 0.41, 0.50]
    table = pd.DataFrame({"method": names, "precision@k": precision, "s / 100 seqs": seconds})
    table.attrs["chance"] = 0.3
    ax = plot.method_comparison(table, title="trained 1layer CNN")
    assert overlapping_text(ax.figure) == []


def test_image_grid_titles_do_not_overlap():
    """Lecture 05 / 13: a row of small images with two-line titles."""
    images = torch.rand(10, 1, 28, 28)
    plot.image_grid(images, ncols=10, titles=[f"{c}: S={10 * c:.1f}" for c in range(10)])
    assert overlapping_text(plt.gcf()) == []
    plot.image_grid(images[:3], ncols=3, size=2.2,
                    titles=[f"lambda={l2:g}\nS=12.3, |I|=4.5" for l2 in [1e-3, 1e-2, 1e-1]])
    assert overlapping_text(plt.gcf()) == []


def test_auc_against_size_on_a_log_axis_is_readable():
    """Lecture 03: training-set sizes on a log axis (the minor tick labels used to collide)."""
    rows = [{"architecture": a, "dataset": "occupancy:MAFF", "n_train": n, "seed": s, "auc": 0.5 + 0.04 * s}
            for a in ["1layer", "2layer"] for n in [500, 2000, 8000] for s in range(3)]
    ax = benchmark.plot_auc_vs_size(pd.DataFrame(rows))
    ax.set_title("motif occupancy (MAFF)")
    assert overlapping_text(ax.figure) == []


def test_heat_overlay_is_transparent_where_the_map_is_low_and_colour_blind_safe():
    """Lecture 10's relu1 maps are positive almost everywhere; a flat overlay hid the digit."""
    heat = torch.zeros(14, 14)
    heat[3:6, 3:6] = 1.0
    ax = plot.heatmap_overlay(torch.rand(1, 28, 28), heat)
    overlay = ax.images[-1]
    alpha = np.asarray(overlay.get_alpha())
    assert alpha.shape == (28, 28) and alpha.min() == 0 and alpha.max() == pytest.approx(0.7)
    assert overlay.get_cmap().name == "inferno"
