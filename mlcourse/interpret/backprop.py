"""Gradients as explanations: saliency, deconvnet and guided backpropagation, from scratch.

All three methods compute "the gradient of a class score with respect to the
input", and differ only in what they do when the backward signal crosses a
ReLU. Write ``x`` for the ReLU's input in the forward pass and ``g`` for the
signal arriving from above (the gradient with respect to the ReLU's output):

=====================  ================================  =======================================
rule                   signal sent down                  paper
=====================  ================================  =======================================
``"backprop"``         ``g * [x > 0]``                   Simonyan, Vedaldi & Zisserman 2014
``"deconvnet"``        ``g * [g > 0]``                   Zeiler & Fergus 2014
``"guided"``           ``g * [x > 0] * [g > 0]``         Springenberg et al. 2015
=====================  ================================  =======================================

Plain backprop is the chain rule: a ReLU that was off in the forward pass
blocks the signal. The deconvnet ignores the forward pass and lets only
positive signal through (it "reconstructs" what excites the unit). Guided
backprop applies both masks, so only paths that were active *and* push the
score up survive; the maps are sharp but, as Adebayo et al. 2018 showed,
largely independent of the upper layers' weights.

Every other layer is handled by ordinary autograd: the backward pass of a
convolution *is* a transposed convolution (see :func:`conv_gradient_demo`),
and that of a max pool routes the signal to the position that won (the
deconvnet's "switches").

The rules are attached with forward hooks on the model's ``nn.ReLU`` modules,
so a model must use one ``nn.ReLU`` module per use (the course's models do;
``torch.relu`` calls inside ``forward`` are invisible to hooks). The hooks are
removed when the computation ends, even on errors.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mlcourse.config import device_of, eval_mode
from mlcourse.interpret.scoring import as_batch, select

__all__ = [
    "RULES",
    "relu_backward",
    "relu_rule",
    "gradient",
    "saliency",
    "deconvnet",
    "guided_backprop",
    "deconvolve_unit",
    "conv_as_matrix",
    "conv_gradient_demo",
    "ConvGradientDemo",
]

RULES = ("backprop", "deconvnet", "guided")


def relu_backward(rule: str, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """The signal a ReLU sends down under ``rule`` (see the module's table).

    Parameters
    ----------
    rule : {"backprop", "deconvnet", "guided"}
    x : torch.Tensor
        The ReLU's input in the forward pass.
    g : torch.Tensor
        The signal arriving from the layer above (same shape as ``x``).
    """
    if rule == "backprop":
        return g * (x > 0)
    if rule == "deconvnet":
        return g * (g > 0)
    if rule == "guided":
        return g * (x > 0) * (g > 0)
    raise ValueError(f"rule must be one of {RULES}, got {rule!r}")


class _RuleReLU(torch.autograd.Function):
    """max(x, 0) forward; :func:`relu_backward` under a chosen rule backward."""

    @staticmethod
    def forward(ctx, x, rule):
        ctx.save_for_backward(x)
        ctx.rule = rule
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return relu_backward(ctx.rule, x, g), None


@contextmanager
def relu_rule(model: nn.Module, rule: str):
    """Within this block, every ``nn.ReLU`` of ``model`` backpropagates under ``rule``.

    A forward hook replaces each ReLU's output by the same values computed by
    a function whose backward pass is :func:`relu_backward`. In-place ReLUs are
    switched to out-of-place for the duration. All hooks are removed and the
    ``inplace`` flags restored on exit, also after an exception.

    Raises
    ------
    ValueError
        For an unknown rule, or when one ReLU module is called twice in a
        forward pass (the rule needs one module per use).
    """
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    relus = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.ReLU)]
    calls: dict[str, int] = {}

    def hook_for(name):
        def hook(module, inputs, output):
            calls[name] = calls.get(name, 0) + 1
            if calls[name] > 1:
                raise ValueError(
                    f"ReLU module {name!r} was called twice in one forward pass; "
                    "give every use its own nn.ReLU module")
            return _RuleReLU.apply(inputs[0], rule)
        return hook

    def reset_calls(module, inputs):
        calls.clear()

    saved_inplace = [m.inplace for _, m in relus]
    handles = [model.register_forward_pre_hook(reset_calls)]
    try:
        for name, m in relus:
            m.inplace = False
            handles.append(m.register_forward_hook(hook_for(name)))
        yield model
    finally:
        for handle in handles:
            handle.remove()
        for (_, m), inplace in zip(relus, saved_inplace):
            m.inplace = inplace


def gradient(model: nn.Module, X: torch.Tensor, *, target=None, rule: str = "backprop") -> torch.Tensor:
    """d score / d input, with ReLUs backpropagating under ``rule``.

    Parameters
    ----------
    model : nn.Module
        Maps ``X`` to ``(N,)`` or ``(N, C)`` scores; run in eval mode (its
        training flag is restored afterwards), on its own device.
    X : torch.Tensor
        A batch: DNA ``(N, 4, L)``, images ``(N, C, H, W)``.
    target : None, int or N ints
        See :func:`mlcourse.interpret.scoring.select`.
    rule : {"backprop", "deconvnet", "guided"}

    Returns
    -------
    torch.Tensor
        Shaped like ``X``, on its device; row ``n`` is the (modified) gradient of
        example ``n``'s score (examples do not interact, so one backward pass of
        the summed scores gives all rows).
    """
    x = as_batch(X).detach().to(device_of(model)).clone().requires_grad_(True)
    with torch.enable_grad(), eval_mode(model), relu_rule(model, rule):
        scores = select(model(x), target)
        (grad,) = torch.autograd.grad(scores.sum(), x)
    return grad.to(X.device)


def saliency(model: nn.Module, X: torch.Tensor, *, target=None) -> torch.Tensor:
    """Saliency map: the plain gradient of the score w.r.t. the input (Simonyan et al. 2014).

    Signed (Captum's ``Saliency(abs=False)``); take ``.abs()`` or, for DNA,
    multiply by the one-hot input ("gradient x input") for a per-base score.
    """
    return gradient(model, X, target=target, rule="backprop")


def deconvnet(model: nn.Module, X: torch.Tensor, *, target=None) -> torch.Tensor:
    """Deconvnet reconstruction of a class score (Zeiler & Fergus 2014): ReLUs pass ``g * [g > 0]``."""
    return gradient(model, X, target=target, rule="deconvnet")


def guided_backprop(model: nn.Module, X: torch.Tensor, *, target=None) -> torch.Tensor:
    """Guided backpropagation (Springenberg et al. 2015): ReLUs pass ``g * [x > 0] * [g > 0]``."""
    return gradient(model, X, target=target, rule="guided")


def deconvolve_unit(model: nn.Module, X: torch.Tensor, *, layer: nn.Module, channel: int,
                    position=None, rule: str = "deconvnet") -> torch.Tensor:
    """Project one unit's activation back to input space (Zeiler & Fergus 2014, Fig. 1).

    The unit is channel ``channel`` of ``layer``'s output at ``position``. All
    other activations of that layer are set to zero, the unit keeps its value
    ``a``, and this signal travels down to the input through the layers below
    with ReLUs under ``rule`` (``"deconvnet"`` as in the paper; ``"guided"``
    gives Springenberg et al.'s sharper version). The result equals
    ``a * d unit / d input`` under that rule.

    Parameters
    ----------
    layer : nn.Module
        A submodule of ``model`` whose output is ``(N, K, ...)``.
    channel : int
        Which feature map.
    position : None, int, or tuple of ints
        Spatial index in the feature map (an int for sequences, ``(i, j)`` for
        images). ``None`` picks, per example, the position where the unit is
        most active -- the strongest occurrence of its pattern.

    Returns
    -------
    torch.Tensor
        Shaped like ``X``, on its device.
    """
    captured = {}

    def keep(module, inputs, output):
        captured["out"] = output

    x = X.detach().to(device_of(model)).clone().requires_grad_(True)
    handle = layer.register_forward_hook(keep)
    try:
        with torch.enable_grad(), eval_mode(model), relu_rule(model, rule):
            model(x)
            if "out" not in captured:
                raise ValueError("layer was not called in model's forward pass")
            out = captured["out"]
            if out.ndim < 3:
                raise ValueError(f"layer output must be (N, K, ...) with positions, got {tuple(out.shape)}")
            if not 0 <= channel < out.shape[1]:
                raise ValueError(f"channel={channel} is outside the layer's {out.shape[1]} channels")
            fmap = out[:, channel].reshape(out.shape[0], -1)
            if position is None:
                flat = fmap.argmax(dim=1)
            else:
                spatial = out.shape[2:]
                pos = (position,) if isinstance(position, int) else tuple(position)
                if len(pos) != len(spatial) or any(not 0 <= p < s for p, s in zip(pos, spatial)):
                    raise ValueError(f"position={position!r} is outside the feature map of shape {tuple(spatial)}")
                flat = torch.full((out.shape[0],), int(np.ravel_multi_index(pos, spatial)), device=out.device)
            unit = fmap.gather(1, flat[:, None])[:, 0]
            (grad,) = torch.autograd.grad(unit.sum(), x)
    finally:
        handle.remove()
    return (grad * unit.detach().reshape(-1, *([1] * (x.ndim - 1)))).to(X.device)


def conv_as_matrix(weight: torch.Tensor, input_shape: tuple[int, int]) -> torch.Tensor:
    """The matrix ``C`` with ``conv2d(x, weight).flatten() == C @ x.flatten()`` (one channel, valid).

    Row ``(i, j)`` of ``C`` holds the filter placed at offset ``(i, j)`` of an
    otherwise zero image: a convolution is a (sparse, weight-shared) linear map.
    """
    if weight.ndim != 2:
        raise ValueError(f"weight must be a single (kh, kw) filter, got shape {tuple(weight.shape)}")
    kh, kw = weight.shape
    h, w = input_shape
    if kh > h or kw > w:
        raise ValueError(f"filter {tuple(weight.shape)} is larger than the input {input_shape}")
    oh, ow = h - kh + 1, w - kw + 1
    matrix = weight.new_zeros(oh * ow, h * w)
    for i in range(oh):
        for j in range(ow):
            placed = weight.new_zeros(h, w)
            placed[i:i + kh, j:j + kw] = weight
            matrix[i * ow + j] = placed.flatten()
    return matrix


@dataclass
class ConvGradientDemo:
    """Three computations of the gradient through ``y = conv2d(x, w)``; see :func:`conv_gradient_demo`."""

    x: torch.Tensor                 #: input (H, W)
    weight: torch.Tensor            #: filter (kh, kw)
    y: torch.Tensor                 #: conv output (H-kh+1, W-kw+1)
    grad_output: torch.Tensor       #: signal received from above, shaped like y
    matrix: torch.Tensor            #: C with y.flatten() = C @ x.flatten()
    grad_autograd: torch.Tensor     #: d(sum(grad_output * y)) / dx by autograd
    grad_transposed: torch.Tensor   #: conv_transpose2d(grad_output, w)
    grad_matrix: torch.Tensor       #: (C.T @ grad_output.flatten()) reshaped to (H, W)

    def max_difference(self) -> float:
        """Largest absolute disagreement between the three gradients."""
        return float(max((self.grad_autograd - self.grad_transposed).abs().max(),
                         (self.grad_autograd - self.grad_matrix).abs().max()))


def conv_gradient_demo(seed: int = 0, input_size: int = 4, kernel_size: int = 3) -> ConvGradientDemo:
    """Show that backpropagating through a convolution is a transposed convolution.

    With ``y = C x`` (see :func:`conv_as_matrix`), the chain rule gives
    ``dL/dx = C^T dL/dy``. Multiplying by ``C^T`` spreads each output's signal
    back over the window it came from, weighted by the filter: exactly
    ``conv_transpose2d(dL/dy, w)`` -- the operation the deconvnet's name
    refers to. Default: a 3x3 filter on a 4x4 input (2x2 output, ``C`` is 4x16).

    Returns
    -------
    ConvGradientDemo
        The tensors, with the three gradients (autograd, transposed
        convolution, explicit ``C^T``) that agree to rounding.
    """
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(input_size, input_size, generator=gen, dtype=torch.float64)
    weight = torch.randn(kernel_size, kernel_size, generator=gen, dtype=torch.float64)
    xg = x.clone().requires_grad_(True)
    y = F.conv2d(xg[None, None], weight[None, None])[0, 0]
    grad_output = torch.randn(y.shape, generator=gen, dtype=torch.float64)
    (grad_autograd,) = torch.autograd.grad((y * grad_output).sum(), xg)
    grad_transposed = F.conv_transpose2d(grad_output[None, None], weight[None, None])[0, 0]
    matrix = conv_as_matrix(weight, (input_size, input_size))
    grad_matrix = (matrix.T @ grad_output.flatten()).reshape(input_size, input_size)
    return ConvGradientDemo(x, weight, y.detach(), grad_output, matrix,
                            grad_autograd, grad_transposed, grad_matrix)
