"""Class maximisation: gradient ascent on the *input* to find what a model looks for.

Instead of explaining one example, ask which input the model finds most
typical of a class. Simonyan, Vedaldi & Zisserman (2014, "Deep inside
convolutional networks") solve

    I* = argmax_I  S_c(I) - lambda ||I||^2

by gradient ascent on the image ``I`` (the model's weights stay fixed), where
``S_c`` is the class score *before* the softmax and the L2 penalty keeps the
image from growing without bound: :func:`class_image`.

For DNA the input must stay a sequence. DeepMotif (Lanchantin, Singh, Wang &
Qi 2017, "Deep Motif Dashboard") optimises a relaxed one-hot input; here each
position holds free logits ``W[:, l]`` and the model reads ``P = softmax(W)``
(four probabilities per position, so every column is a valid distribution),
with an L2 penalty on ``W``. The optimised ``P`` is a position weight matrix:
:func:`dna_class_pwm`, and :func:`motif_from_pwm` cuts out its most
informative window, ready for :func:`mlcourse.motifs.best_jaspar_match`.

Both record their optimisation :class:`Trajectory` so a lecture (or
:func:`mlcourse.widgets.ascent_viewer`) can step through it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mlcourse.config import device_of, eval_mode
from mlcourse.interpret.scoring import select
from mlcourse.motifs import Motif, information_content

__all__ = ["Trajectory", "class_image", "dna_class_pwm", "motif_from_pwm"]


@dataclass
class Trajectory:
    """Snapshots of a gradient-ascent run.

    Attributes
    ----------
    steps : numpy.ndarray
        ``(S,)`` step numbers of the snapshots (0 = the start, last = the end).
    frames : torch.Tensor
        ``(S, ...)`` the input at each snapshot (on the CPU): an image
        ``(C, H, W)``, or for DNA the probabilities ``(4, L)``.
    scores : numpy.ndarray
        ``(S,)`` the class score ``S_c`` of each frame.
    objective : numpy.ndarray
        ``(S,)`` the score minus the penalty: what the ascent maximises.
    kind : str
        ``"image"`` or ``"dna"``.
    """

    steps: np.ndarray
    frames: torch.Tensor
    scores: np.ndarray
    objective: np.ndarray
    kind: str

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def final(self) -> torch.Tensor:
        """The input after the last step."""
        return self.frames[-1]


def _check_run(steps: int, record_every: int, lr: float, l2: float) -> None:
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not isinstance(record_every, int) or record_every < 1:
        raise ValueError(f"record_every must be a positive integer, got {record_every!r}")
    if lr <= 0 or l2 < 0:
        raise ValueError(f"need lr > 0 and l2 >= 0, got lr={lr!r}, l2={l2!r}")


def _ascend(model: nn.Module, params: torch.Tensor, to_input, target, steps, lr, l2,
            record_every, kind) -> Trajectory:
    """Adam ascent on ``score(to_input(params)) - l2 * ||params||^2`` for a batch of starts.

    ``params`` is ``(S, ...)``: ``S`` independent starts, optimised together;
    the trajectory of the start with the best final objective is returned.
    """
    params = params.to(device_of(model)).requires_grad_(True)
    optimiser = torch.optim.Adam([params], lr=lr)
    frames, scores, objective, when = [], [], [], []
    with eval_mode(model), torch.enable_grad():
        for step in range(steps + 1):
            x = to_input(params)
            score = select(model(x), target)
            value = score - l2 * params.pow(2).flatten(1).sum(1)
            if step % record_every == 0 or step == steps:
                frames.append(x.detach().clone())
                scores.append(score.detach().clone())
                objective.append(value.detach().clone())
                when.append(step)
            if step == steps:
                break
            optimiser.zero_grad()
            (-value.sum()).backward()
            optimiser.step()
    best = int(objective[-1].argmax())
    return Trajectory(np.array(when), torch.stack([f[best] for f in frames]).cpu(),
                      np.array([float(s[best]) for s in scores]),
                      np.array([float(o[best]) for o in objective]), kind)


def class_image(model: nn.Module, X: torch.Tensor, *, target: int, steps: int = 200,
                lr: float = 0.05, l2: float = 1e-2, record_every: int = 10) -> Trajectory:
    """The image a classifier finds most typical of class ``target`` (Simonyan et al. 2014).

    Maximises ``S_target(I) - l2 * ||I||^2`` over the image ``I`` by gradient
    ascent (Adam steps of size ``lr``), starting from ``X``.

    Parameters
    ----------
    model : nn.Module
        Images ``(N, C, H, W)`` -> class scores (logits) ``(N, K)``.
    X : torch.Tensor
        The starting image ``(C, H, W)`` (or ``(1, C, H, W)``), e.g. ``torch.zeros(1, 28, 28)``.
    target : int
        The class to maximise.
    steps, lr, l2, record_every :
        Ascent steps, step size, penalty weight ``lambda``, snapshot interval.

    Returns
    -------
    Trajectory
        ``kind="image"``; ``frames`` are ``(C, H, W)`` images.
    """
    _check_run(steps, record_every, lr, l2)
    image = torch.as_tensor(X, dtype=torch.float32).detach().clone()
    if image.ndim == 4 and image.shape[0] == 1:
        image = image[0]
    if image.ndim != 3:
        raise ValueError(f"X must be one starting image (C, H, W), got shape {tuple(image.shape)}")
    return _ascend(model, image[None], lambda p: p, target, steps, lr, l2, record_every, "image")


def dna_class_pwm(model: nn.Module, length: int, *, target=None, steps: int = 300,
                  lr: float = 0.1, l2: float = 1e-2, record_every: int = 10, starts: int = 64,
                  init_scale: float = 4.0, seed: int = 0) -> Trajectory:
    """A DeepMotif-style class-optimised PWM (Lanchantin et al. 2017) for a DNA model.

    The input is ``P = softmax(W)`` over the four bases at every position; the
    ascent maximises ``S(P) - l2 * ||W||^2`` over the logits ``W``.

    A ReLU whose input is negative passes no gradient. A trained first-layer
    filter is silent on a flat ``P`` (all-zero logits) and on a blurred one,
    because it only fires on a good match to *one-hot* DNA, the kind of input
    it was trained on. Such a filter can never be switched on by the ascent;
    the filters that *lower* the score can only be switched off, so the
    ascent stalls near the output's bias. So the run starts from ``starts``
    random logits (normal, std ``init_scale``): with the default std 4 each
    column is almost one-hot, each start is close to a random DNA sequence,
    and in some of them the filters that raise the score already fire
    somewhere. All starts are optimised at once and the best is kept.

    Parameters
    ----------
    model : nn.Module
        DNA model ``(N, 4, length)`` -> logits ``(N,)`` (or ``(N, C)`` with ``target``).
    length : int
        Input length the model takes.
    target : int, optional
        Output column for multi-output models.
    steps, lr, l2, record_every :
        Ascent steps, Adam step size, penalty on the logits, snapshot interval.
    starts, init_scale, seed :
        Random starts optimised together, the spread of their logits (4:
        nearly one-hot columns, like DNA; 1 or less: blurred PWMs, on which a
        trained model's filters are mostly silent), and their seed.

    Returns
    -------
    Trajectory
        ``kind="dna"``; ``frames`` are ``(4, length)`` probability matrices and
        ``final`` is the class-optimised PWM.
    """
    _check_run(steps, record_every, lr, l2)
    if not isinstance(length, int) or length < 1:
        raise ValueError(f"length must be a positive integer, got {length!r}")
    if not isinstance(starts, int) or starts < 1:
        raise ValueError(f"starts must be a positive integer, got {starts!r}")
    generator = torch.Generator().manual_seed(seed)
    logits = init_scale * torch.randn(starts, 4, length, generator=generator)
    return _ascend(model, logits, lambda p: torch.softmax(p, dim=1), target, steps, lr, l2,
                   record_every, "dna")


def motif_from_pwm(pwm, width: int, name: str = "class-optimised") -> tuple[Motif, int]:
    """Cut the ``width`` columns with the most information out of a ``(4, L)`` PWM.

    Information per column is ``2 - H`` bits (:func:`mlcourse.motifs.information_content`);
    the window with the largest sum wins.

    Returns
    -------
    (Motif, int)
        The window as a :class:`~mlcourse.motifs.Motif` and its start column.
    """
    probs = pwm.detach().cpu().numpy() if isinstance(pwm, torch.Tensor) else np.asarray(pwm, float)
    if probs.ndim != 2 or probs.shape[0] != 4:
        raise ValueError(f"pwm must be a (4, L) probability matrix, got shape {probs.shape}")
    if not 1 <= width <= probs.shape[1]:
        raise ValueError(f"width={width} must be between 1 and the PWM's length {probs.shape[1]}")
    p = probs / probs.sum(0, keepdims=True)
    info = information_content(p)
    window = np.convolve(info, np.ones(width), mode="valid")
    start = int(window.argmax())
    return Motif.from_probs(p[:, start: start + width], name), start
