"""Class maximisation reaches known optima: the closed form for a linear model, the planted motif for DNA."""

import numpy as np
import pytest
import torch
from torch import nn

from mlcourse import motifs
from mlcourse.interpret import compare, maximize


def test_linear_image_model_reaches_the_closed_form_optimum():
    """For S_c(I) = w_c . I, argmax S_c(I) - l2 ||I||^2 is I* = w_c / (2 l2)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(1 * 6 * 6, 3, bias=False))
    w = model[1].weight.detach()[2].reshape(1, 6, 6)
    run = maximize.class_image(model, torch.zeros(1, 6, 6), target=2, steps=600, lr=0.05, l2=0.5,
                               record_every=50)
    torch.testing.assert_close(run.final, w / (2 * 0.5), atol=2e-3, rtol=0)
    assert run.kind == "image" and run.frames.shape == (len(run), 1, 6, 6)
    assert list(run.steps[:3]) == [0, 50, 100] and run.steps[-1] == 600
    assert run.objective[-1] == pytest.approx(float((w * w).sum() / (4 * 0.5)), rel=1e-4)
    assert np.all(np.diff(run.objective) > -1e-6)


def test_dna_ascent_recovers_the_planted_jaspar_motif():
    maff = motifs.jaspar("MAFF")
    model = compare.motif_detector(maff, threshold=None)
    run = maximize.dna_class_pwm(model, 101, steps=150, starts=4, record_every=25)
    assert run.kind == "dna" and run.frames.shape == (len(run), 4, 101)
    torch.testing.assert_close(run.frames.sum(1), torch.ones(len(run), 101))
    assert run.scores[-1] > run.scores[0] + 10
    found, _ = maximize.motif_from_pwm(run.final, maff.width)
    assert motifs.similarity(found, maff).score > 0.9
    candidates = ["MAFF", "CTCF", "GATA1", "SPI1", "FOXA1", "CEBPB", "JUN", "REST"]
    best, alignment = motifs.best_jaspar_match(found, candidates)[0]
    assert best.name == "MAFF" and alignment.score > 0.9


def test_near_one_hot_starts_wake_filters_that_are_silent_on_blurred_pwms():
    """A detector whose filters fire only on good MAFF matches, like a trained model's filters.

    From blurred starts (std 1) no filter fires, no gradient flows and the score
    stays at the bias; from the default near-one-hot starts some start already
    fires, and the ascent recovers MAFF.
    """
    maff = motifs.jaspar("MAFF")
    detector = compare.motif_detector(maff, threshold=0.1)
    blurred = maximize.dna_class_pwm(detector, 101, steps=100, starts=16, init_scale=1.0)
    assert blurred.scores[-1] == pytest.approx(blurred.scores[0])  # stuck: no gradient at all
    run = maximize.dna_class_pwm(detector, 101, steps=100)
    assert run.scores[-1] > blurred.scores[-1] + 5
    found, _ = maximize.motif_from_pwm(run.final, maff.width)
    assert motifs.similarity(found, maff).score > 0.9


def test_motif_from_pwm_finds_the_informative_window():
    pwm = np.full((4, 30), 0.25)
    pwm[:, 12:18] = np.eye(4)[[0, 1, 2, 3, 0, 1]].T * 0.97 + 0.01
    motif, start = maximize.motif_from_pwm(pwm, 6)
    assert start == 12 and motif.consensus == "ACGTAC"


def test_clear_errors():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    with pytest.raises(ValueError, match="steps must be"):
        maximize.class_image(model, torch.zeros(1, 2, 2), target=0, steps=0)
    with pytest.raises(ValueError, match=r"one starting image \(C, H, W\), got shape \(3, 3\)"):
        maximize.class_image(model, torch.zeros(3, 3), target=0)
    with pytest.raises(ValueError, match="width=40"):
        maximize.motif_from_pwm(np.full((4, 30), 0.25), 40)
    with pytest.raises(ValueError, match="starts must be"):
        maximize.dna_class_pwm(compare.motif_detector(), 101, starts=0)
