"""mlcourse.plot: logos, the one SIS palette, HTML highlights."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from mlcourse import plot
from mlcourse.motifs import information_content, jaspar


def test_motif_logo_returns_its_axes():
    ax = plot.motif_logo(jaspar("CTCF"))
    assert ax.get_title() == "CTCF MA0139.2" and ax.get_ylim() == (0, 2)
    assert plot.motif_logo("CTCF").get_title() == "CTCF MA0139.2"
    plt.close("all")


def test_information_content_of_known_columns_numpy_and_torch():
    import torch

    probs = np.array([[1.0, 0.25, 0.5], [0.0, 0.25, 0.5], [0.0, 0.25, 0.0], [0.0, 0.25, 0.0]])
    assert np.allclose(information_content(probs), [2.0, 0.0, 1.0])
    batch = torch.tensor(probs, dtype=torch.float32)[None].repeat(2, 1, 1)
    assert torch.allclose(information_content(batch), torch.tensor([[2.0, 0.0, 1.0]] * 2))


def test_highlight_colours_each_subset_and_escapes():
    out = plot.highlight(["a", "<b>", "c"], [[0], [2]], underline=np.array([False, True, False]))
    assert out.count("background:") == 2 and "&lt;b&gt;" in out and "underline" in out
    assert plot.SIS_COLOURS[0] in out and plot.SIS_COLOURS[1] in out
    with pytest.raises(ValueError, match="position 5"):
        plot.highlight(["a"], [[5]])


def test_highlight_labels_give_a_colour_key():
    out = plot.highlight(["a", "b"], [[0], [1]], labels=["aroma", "palate"])
    key, text = out.split("</p>", 1)
    assert f"background:{plot.SIS_COLOURS[0]};padding:1px\">aroma" in key
    assert f"background:{plot.SIS_COLOURS[1]};padding:1px\">palate" in key and "aroma" not in text
    with pytest.raises(ValueError, match="2 names for 1 subsets"):
        plot.highlight(["a"], [[0]], labels=["x", "y"])


def test_sis_plots_share_one_palette():
    image = np.zeros((4, 4))
    masks = [np.eye(4, dtype=bool), np.fliplr(np.eye(4, dtype=bool)) & ~np.eye(4, dtype=bool)]
    ax = plot.sis_overlay(image, masks)
    layer = ax.get_images()[-1].get_array()
    from matplotlib.colors import to_rgb
    assert np.allclose(layer[0, 0, :3], to_rgb(plot.SIS_COLOURS[0]))
    assert np.allclose(layer[0, 3, :3], to_rgb(plot.SIS_COLOURS[1]))
    plt.close("all")


def test_motif_logo_fits_a_weak_motif_when_asked():
    probs = np.array([[0.4, 0.25], [0.2, 0.25], [0.2, 0.25], [0.2, 0.25]])
    assert plot.motif_logo(probs).get_ylim() == (0, 2)
    top = plot.motif_logo(probs, ymax=None).get_ylim()[1]
    tallest = float(information_content(probs).max())
    assert tallest < top < 2 * tallest
