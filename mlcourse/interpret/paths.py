"""Path attributions: integrated gradients from the formula, and DeepLIFT / DeepLiftShap for DNA.

Gradients explain a model at one point. *Path* methods explain the difference
between the input ``x`` and a reference (baseline) ``x'``:

* **Integrated gradients** (Sundararajan, Taly & Yan 2017, "Axiomatic
  attribution for deep networks") average the gradient along the straight line
  from ``x'`` to ``x``::

      IG_i(x) = (x_i - x'_i) * integral_0^1 dF/dx_i (x' + a (x - x')) da

  and satisfy *completeness*: ``sum_i IG_i(x) = F(x) - F(x')``. The integral is
  a Riemann sum over ``m`` steps, see :func:`integrated_gradients`.
* **DeepLIFT** (Shrikumar, Greenside & Kundaje 2017, "Learning important
  features through propagating activation differences") propagates
  *multipliers* ``m = dDelta-out / dDelta-in`` backwards with its rescale rule,
  in one backward pass, and also satisfies completeness (Captum reports the gap
  as the *convergence delta*). **DeepLiftShap** averages DeepLIFT over several
  references (Lundberg & Lee 2017).

For DNA the references are dinucleotide shuffles of each sequence
(:func:`shuffled_references`), and the multipliers can be projected onto all
four bases: the *hypothetical contribution* of base ``b`` at position ``l`` is
what that position would contribute if it held ``b`` (Shrikumar et al.; used by
TF-MoDISco), see :func:`hypothetical_contributions`.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import torch
from torch import nn

from mlcourse.dna import as_rng, decode, dinucleotide_shuffle, one_hot
from mlcourse.interpret.backprop import target_scores
from mlcourse.train import eval_mode

__all__ = [
    "METHODS",
    "riemann_weights",
    "integrated_gradients",
    "completeness_gap",
    "shuffled_references",
    "hypothetical_contributions",
    "dna_integrated_gradients",
    "deeplift",
    "deeplift_shap",
]

METHODS = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid", "gausslegendre")


def riemann_weights(steps: int, method: str = "riemann_trapezoid") -> tuple[np.ndarray, np.ndarray]:
    """Points ``a_k`` on [0, 1] and weights ``w_k`` so that ``integral g ~ sum_k w_k g(a_k)``.

    ``riemann_left`` / ``right`` / ``middle`` take the left end, right end or
    middle of ``steps`` equal pieces (weights ``1/m``); ``riemann_trapezoid``
    uses ``steps`` points from 0 to 1 inclusive with weights ``1/(m-1)``, halved
    at both ends (the textbook trapezoid rule, exact for linear ``g``);
    ``gausslegendre`` is Gauss-Legendre quadrature.

    Note: Captum's ``riemann_trapezoid`` uses the same points but weights
    ``1/m`` (halved at the ends), which sum to ``(m-1)/m``; its result is this
    one times ``(m-1)/m``.
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not one of {METHODS}")
    if not isinstance(steps, (int, np.integer)) or steps < 2:
        raise ValueError(f"steps must be an integer >= 2, got {steps!r}")
    m = int(steps)
    if method == "gausslegendre":
        nodes, weights = np.polynomial.legendre.leggauss(m)
        return 0.5 * (nodes + 1), 0.5 * weights
    if method == "riemann_trapezoid":
        weights = np.full(m, 1 / (m - 1))
        weights[[0, -1]] /= 2
        return np.linspace(0, 1, m), weights
    offset = {"riemann_left": 0.0, "riemann_middle": 0.5, "riemann_right": 1.0}[method]
    return (np.arange(m) + offset) / m, np.full(m, 1 / m)


def _baseline_like(X: torch.Tensor, baseline) -> torch.Tensor:
    if baseline is None:
        return torch.zeros_like(X)
    baseline = torch.as_tensor(baseline, dtype=X.dtype, device=X.device)
    try:
        return torch.broadcast_to(baseline, X.shape)
    except RuntimeError:
        raise ValueError(f"baseline of shape {tuple(baseline.shape)} does not broadcast to the "
                         f"input's shape {tuple(X.shape)}") from None


def integrated_gradients(model, X: torch.Tensor, baseline=None, *, target=None, steps: int = 50,
                         method: str = "riemann_trapezoid", batch_size: int = 512) -> torch.Tensor:
    """Integrated gradients, written out from the formula (Sundararajan et al. 2017).

    ``IG(x) = (x - x') * sum_k w_k grad F(x' + a_k (x - x'))`` with the points
    and weights of :func:`riemann_weights`. Every example gets its own path;
    the interpolated inputs of several steps go through the model together, at
    most ``batch_size`` inputs per call.

    Parameters
    ----------
    model : callable
        Maps a batch to scores ``(N,)`` or ``(N, C)``.
    X : torch.Tensor
        Inputs ``(N, ...)``: DNA ``(N, 4, L)``, images ``(N, C, H, W)``.
    baseline : None, float or tensor
        The reference ``x'``; ``None`` is all zeros. A tensor broadcastable to
        ``X`` (e.g. one baseline ``(1, 4, L)`` for all, or one per example).
    target : None, int or sequence of int
        The class whose score is explained, for ``(N, C)`` outputs.
    steps, method :
        Number of points ``m`` and the quadrature rule (:data:`METHODS`).
    batch_size : int
        Most inputs per forward pass.

    Returns
    -------
    torch.Tensor
        Attributions shaped like ``X``. Their sum per example approaches
        ``F(x) - F(x')`` as ``steps`` grows (see :func:`completeness_gap`).
    """
    X = torch.as_tensor(X, dtype=torch.float32)
    base = _baseline_like(X, baseline)
    alphas, weights = riemann_weights(steps, method)
    n = X.shape[0]
    per_call = max(1, batch_size // max(n, 1))
    total = torch.zeros_like(X)
    delta = X - base
    with eval_mode(model):
        for start in range(0, len(alphas), per_call):
            total += _path_gradients(model, base, delta, alphas[start:start + per_call],
                                     weights[start:start + per_call], target)
    return delta * total


def _path_gradients(model, base, delta, alphas, weights, target) -> torch.Tensor:
    """``sum_k w_k grad F(base + a_k delta)`` over one chunk of path points, all examples at once."""
    n = base.shape[0]
    a = torch.tensor(alphas, dtype=base.dtype, device=base.device)
    w = torch.tensor(weights, dtype=base.dtype, device=base.device)
    shape = (len(a),) + (1,) * base.ndim
    points = (base[None] + a.reshape(shape) * delta[None]).reshape(-1, *base.shape[1:])
    points.requires_grad_(True)
    targets = None if target is None else _repeat_target(target, n, len(a))
    with torch.enable_grad():
        scores = target_scores(model(points), targets)
        (grad,) = torch.autograd.grad(scores.sum(), points)
    return (w.reshape(shape) * grad.reshape(len(a), *base.shape)).sum(0)


def _repeat_target(target, n: int, times: int):
    index = torch.as_tensor(target).long().reshape(-1)
    if index.numel() == 1:
        return int(index)
    if index.numel() != n:
        raise ValueError(f"target has {index.numel()} entries for {n} examples")
    return index.repeat(times)


def completeness_gap(model, X: torch.Tensor, attributions: torch.Tensor, baseline=None, *,
                     target=None) -> torch.Tensor:
    """Relative completeness error ``|sum(attr) - (F(x) - F(x'))| / |F(x) - F(x')|`` per example.

    Integrated gradients and DeepLIFT promise that attributions add up to the
    change in output between baseline and input (Sundararajan et al. 2017,
    axiom "completeness"; Shrikumar et al. 2017, "summation-to-delta").
    """
    X = torch.as_tensor(X, dtype=torch.float32)
    if attributions.shape != X.shape:
        raise ValueError(f"attributions have shape {tuple(attributions.shape)}, inputs {tuple(X.shape)}")
    with torch.no_grad():
        change = target_scores(model(X), target) - target_scores(model(_baseline_like(X, baseline)), target)
    total = attributions.reshape(len(X), -1).sum(1)
    return (total - change).abs() / change.abs().clamp_min(1e-12)


def shuffled_references(X: torch.Tensor, n: int = 10, rng=0) -> torch.Tensor:
    """``n`` dinucleotide shuffles of every sequence, as references ``(N, n, 4, L)``.

    A shuffle keeps a sequence's base and dinucleotide composition but breaks
    its motifs, so attributions against it credit the motif, not the GC content
    (the references used by DeepLIFT's DNA examples, DeepLiftShap and TF-MoDISco).
    """
    if not isinstance(X, torch.Tensor) or X.ndim != 3 or X.shape[1] != 4:
        raise ValueError(f"expected one-hot DNA (N, 4, L), got {getattr(X, 'shape', type(X))}")
    if n < 1:
        raise ValueError(f"n must be at least 1 reference per sequence, got {n}")
    rng = as_rng(rng)
    seqs = decode(X)
    refs = [dinucleotide_shuffle(s, rng) for s in seqs for _ in range(n)]
    return one_hot(refs).reshape(len(seqs), n, 4, X.shape[2]).to(X.device)


def hypothetical_contributions(multipliers: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
    """Project multipliers onto all four bases (Shrikumar et al. 2017; TF-MoDISco).

    If position ``l`` held base ``b`` (one-hot ``e_b``), its contribution
    against reference ``r`` would be ``m_l . (e_b - r_l) = m[b, l] - m_l . r_l``.
    Averaged over the references, this gives a ``(N, 4, L)`` matrix whose entry
    at the observed base is the actual contribution of that position.

    Parameters
    ----------
    multipliers : torch.Tensor
        ``(N, R, 4, L)``: one multiplier map per sequence and reference.
    references : torch.Tensor
        ``(N, R, 4, L)``: the references.
    """
    if multipliers.shape != references.shape or multipliers.ndim != 4:
        raise ValueError(f"multipliers {tuple(multipliers.shape)} and references "
                         f"{tuple(references.shape)} must both be (N, R, 4, L)")
    at_reference = (multipliers * references).sum(dim=2, keepdim=True)
    return (multipliers - at_reference).mean(dim=1)


def _as_references(X: torch.Tensor, references) -> torch.Tensor:
    """References as ``(N, R, 4, L)``; ``None`` -> 10 dinucleotide shuffles per sequence."""
    if references is None:
        return shuffled_references(X, 10)
    references = torch.as_tensor(references, dtype=X.dtype, device=X.device)
    if references.shape == X.shape:
        references = references[:, None]
    if references.ndim != 4 or references.shape[0] != X.shape[0] or references.shape[2:] != X.shape[1:]:
        raise ValueError(f"references of shape {tuple(references.shape)} do not fit inputs "
                         f"{tuple(X.shape)}: give (N, 4, L) or (N, R, 4, L)")
    return references


_DEEPLIFT_NONLINEAR = (nn.ReLU, nn.ELU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.Softplus, nn.Softmax,
                       nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)  # the modules Captum's DeepLift hooks


@contextlib.contextmanager
def _separate_nonlinearities(model: nn.Module):
    """Give every nonlinear module a fresh input tensor while Captum's DeepLift runs.

    Captum applies DeepLIFT's rules with tensor hooks: a module's hook on its
    output records the incoming multiplier, and the next module's hook on its
    input rewrites it. When two hooked modules touch the same tensor (a ReLU
    feeding straight into a MaxPool1d, as in every course model), the first
    hook fires before the second has rewritten the gradient, so the ReLU sees
    the plain gradient and summation-to-delta fails (Captum 0.9 gives errors of
    the size of the output change itself). Multiplying each such input by 1
    puts a new tensor between the two hooks and restores the exact rule.
    """
    handles = [module.register_forward_pre_hook(lambda _module, inputs: (inputs[0] * 1.0,))
               for module in model.modules() if isinstance(module, _DEEPLIFT_NONLINEAR)]
    try:
        with warnings.catch_warnings():  # Captum announces its (temporary) hooks on every call
            warnings.filterwarnings("ignore", message="Setting forward, backward hooks")
            warnings.filterwarnings("ignore", message="Input Tensor 0 did not already require")
            yield model
    finally:
        for handle in handles:
            handle.remove()


def _attribute_against(explainer, model, X, references, target, hypothetical, batch_size,
                       with_delta=False, **kwargs):
    """Run a Captum explainer made with ``multiply_by_inputs=False`` against every reference.

    The ``N * R`` (sequence, reference) pairs go through Captum ``batch_size``
    at a time. Returns the attributions ``(N, 4, L)`` and, if ``with_delta``,
    the summation-to-delta error ``(N, R)``: ``sum((x - ref) * m) - (F(x) - F(ref))``
    (else ``None``).
    """
    n, r = references.shape[:2]
    inputs = X[:, None].expand_as(references).reshape(n * r, *X.shape[1:])
    bases = references.reshape(n * r, *X.shape[1:])
    targets = None if target is None else _repeat_target(target, n, 1)
    if isinstance(targets, torch.Tensor):
        targets = targets.repeat_interleave(r)
    multipliers, error = [], []
    for start in range(0, n * r, batch_size):
        part = slice(start, start + batch_size)
        part_target = targets[part] if isinstance(targets, torch.Tensor) else targets
        m = explainer.attribute(inputs[part].clone(), baselines=bases[part], target=part_target,
                                **kwargs).detach()
        if with_delta:
            with torch.no_grad():
                change = (target_scores(model(inputs[part]), part_target)
                          - target_scores(model(bases[part]), part_target))
            error.append((m * (inputs[part] - bases[part])).flatten(1).sum(1) - change)
        multipliers.append(m)
    multipliers = torch.cat(multipliers).reshape(references.shape)
    if hypothetical:
        attributions = hypothetical_contributions(multipliers, references)
    else:
        attributions = (multipliers * (X[:, None] - references)).mean(dim=1)
    return attributions, torch.cat(error).reshape(n, r) if with_delta else None


def dna_integrated_gradients(model: nn.Module, X: torch.Tensor, references=None, *, target=None,
                             steps: int = 50, method: str = "gausslegendre",
                             hypothetical: bool = False, batch_size: int = 512) -> torch.Tensor:
    """Captum's IntegratedGradients on DNA, averaged over shuffled references.

    Parameters
    ----------
    model : nn.Module
        A DNA model ``(N, 4, L) -> (N,)`` logits (or ``(N, C)`` with ``target``).
    X : torch.Tensor
        One-hot sequences ``(N, 4, L)``.
    references : None or tensor
        ``(N, 4, L)`` or ``(N, R, 4, L)``; ``None``: 10 dinucleotide shuffles each.
    steps, method :
        Passed to Captum (``n_steps``, ``method``).
    hypothetical : bool
        Return hypothetical contributions for all four bases
        (:func:`hypothetical_contributions`) instead of actual ones.
    batch_size : int
        Interpolated inputs per forward pass (Captum's ``internal_batch_size``).

    Returns
    -------
    torch.Tensor
        ``(N, 4, L)``, averaged over the references (an "expected gradients"
        estimate when the references are many).
    """
    from captum.attr import IntegratedGradients

    X = torch.as_tensor(X, dtype=torch.float32)
    references = _as_references(X, references)
    with eval_mode(model):
        explainer = IntegratedGradients(model, multiply_by_inputs=False)
        attributions, _ = _attribute_against(explainer, model, X, references, target, hypothetical,
                                             max(1, batch_size // steps), n_steps=steps,
                                             method=method, internal_batch_size=batch_size)
    return attributions


def deeplift(model: nn.Module, X: torch.Tensor, references=None, *, target=None,
             hypothetical: bool = False, return_delta: bool = False, batch_size: int = 256):
    """DeepLIFT (rescale rule) through Captum, against one or several references per sequence.

    With several references per sequence the result is their average, which is
    DeepLiftShap (Lundberg & Lee 2017) with per-sequence references; Captum's own
    ``DeepLiftShap`` takes one set of references shared by all inputs.

    Parameters
    ----------
    model : nn.Module
        Built by the course's rules: every ReLU / pool its own module, used
        once (Captum hooks modules to apply the rescale rule).
    X : torch.Tensor
        One-hot DNA ``(N, 4, L)``.
    references : None or tensor
        ``(N, 4, L)`` (one each) or ``(N, R, 4, L)``; ``None``: 10 dinucleotide
        shuffles of each sequence (:func:`shuffled_references`).
    hypothetical : bool
        Return hypothetical contributions for all four bases.
    return_delta : bool
        Also return the convergence delta ``(N, R)``: the sum of the
        contributions against each reference minus ``F(x) - F(ref)`` (zero up to
        rounding when the rules hold: "summation-to-delta").
    batch_size : int
        (sequence, reference) pairs per Captum call.

    Returns
    -------
    torch.Tensor or (torch.Tensor, torch.Tensor)
    """
    from captum.attr import DeepLift

    X = torch.as_tensor(X, dtype=torch.float32)
    references = _as_references(X, references)
    with eval_mode(model), _separate_nonlinearities(model):
        explainer = DeepLift(model, multiply_by_inputs=False)
        attributions, delta = _attribute_against(explainer, model, X, references, target,
                                                 hypothetical, batch_size, with_delta=return_delta)
    return (attributions, delta) if return_delta else attributions


def deeplift_shap(model: nn.Module, X: torch.Tensor, n_references: int = 10, *, rng=0,
                  target=None, hypothetical: bool = False, return_delta: bool = False,
                  batch_size: int = 256):
    """DeepLiftShap on DNA: DeepLIFT averaged over ``n_references`` dinucleotide shuffles of each sequence.

    See :func:`deeplift` for the arguments and :func:`shuffled_references` for
    the references.
    """
    references = shuffled_references(X, n_references, rng)
    return deeplift(model, X, references, target=target, hypothetical=hypothetical,
                    return_delta=return_delta, batch_size=batch_size)
