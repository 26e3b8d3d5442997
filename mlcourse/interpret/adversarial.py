"""Adversarial examples: tiny input changes that flip a classifier's decision.

The fast gradient sign method (Goodfellow, Shlens & Szegedy 2015, "Explaining
and harnessing adversarial examples") moves every input entry by ``epsilon``
in the direction that increases the loss of the true class:

    x' = clip(x + epsilon * sign(d loss / d x), 0, 1).

The step is hardly visible, yet often changes the prediction -- and the
explanations (SIS, saliency) of the new decision show what the model now
reads, which is why adversarial examples belong with interpretation.
"""

from __future__ import annotations

import torch
from torch import nn

from mlcourse.config import device_of, eval_mode

__all__ = ["fgsm"]


def fgsm(model: nn.Module, X: torch.Tensor, *, target, epsilon: float) -> torch.Tensor:
    """Adversarial inputs by the fast gradient sign method (Goodfellow et al. 2015).

    Parameters
    ----------
    model : nn.Module
        Inputs ``(N, ...)`` in ``[0, 1]`` (e.g. digits ``(N, 1, 28, 28)``) -> logits ``(N, C)``;
        run in eval mode (its training flag is restored afterwards).
    X : torch.Tensor
        The inputs, values in ``[0, 1]``.
    target : int or N ints
        The true classes, whose cross-entropy loss the step increases.
    epsilon : float
        Step size per entry, in ``[0, 1]``.

    Returns
    -------
    torch.Tensor
        Shaped like ``X``, on its device, clipped to ``[0, 1]``.
    """
    if not 0 <= epsilon <= 1:
        raise ValueError(f"epsilon={epsilon} must be in [0, 1] (pixel intensities)")
    labels = torch.as_tensor(target, dtype=torch.int64).reshape(-1).expand(len(X))
    device = device_of(model)
    x = X.detach().to(device).clone().requires_grad_(True)
    with eval_mode(model), torch.enable_grad():
        loss = nn.functional.cross_entropy(model(x), labels.to(device))
        (grad,) = torch.autograd.grad(loss, x)
    return (X + epsilon * grad.sign().to(X.device)).clamp(0.0, 1.0).detach()
