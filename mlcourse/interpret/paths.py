"""Path attributions: integrated gradients from the formula, and DeepLIFT / DeepLiftShap for DNA.

Gradients explain a model at one point. *Path* methods explain the difference
between the input ``x`` and a reference (baseline) ``x'``:

* **Integrated gradients** (Sundararajan, Taly & Yan 2017, "Axiomatic
  attribution for deep networks") average the gradient along the straight line
  from ``x'`` to ``x``::

      IG_i(x) = (x_i - x'_i) * integral_0^1 dF/dx_i (x' + a (x - x')) da

  and satisfy *completeness*: ``sum_i IG_i(x) = F(x) - F(x')``. The integral is
  a Riemann sum over ``m`` steps, see :func:`integrated_gradients`; Captum's
  ``IntegratedGradients`` gives the same numbers (the tests check).
* **DeepLIFT** (Shrikumar, Greenside & Kundaje 2017, "Learning important
  features through propagating activation differences") propagates
  *multipliers* ``m = dDelta-out / dDelta-in`` backwards with its rescale rule,
  in one backward pass, and also satisfies completeness (Captum reports the gap
  as the *convergence delta*). **DeepLiftShap** averages DeepLIFT over several
  references (Lundberg & Lee 2017).

**The baseline rule** (the same for both): ``baseline`` is a number, a tensor
that broadcasts to ``X``, or ``R`` references per example ``(N, R, *X.shape[1:])``,
in which case the attributions are averaged over the references. For DNA the
references are dinucleotide shuffles of each sequence (:func:`shuffled_references`),
and the multipliers can be projected onto all
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

from mlcourse.config import device_of, eval_mode
from mlcourse.dna import as_rng, decode, dinucleotide_shuffle, one_hot
from mlcourse.interpret.scoring import as_batch, per_example, select

__all__ = [
    "METHODS",
    "riemann_weights",
    "as_references",
    "path_gradients",
    "integrated_gradients",
    "completeness_gap",
    "shuffled_references",
    "hypothetical_contributions",
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


def as_references(X: torch.Tensor, baseline) -> torch.Tensor:
    """The baseline rule: ``baseline`` as ``R`` references per example, ``(N, R, *X.shape[1:])``.

    ``baseline`` is ``None`` (zeros), a number, a tensor that broadcasts to
    ``X`` (one reference each, ``R = 1``), or already ``(N, R, *X.shape[1:])``.
    """
    if baseline is None:
        return torch.zeros_like(X)[:, None]
    try:
        baseline = torch.as_tensor(baseline, dtype=X.dtype, device=X.device)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"baseline must be None, a number or a tensor, got {type(baseline).__name__}") from None
    if not bool(torch.isfinite(baseline).all()):
        raise ValueError("baseline has NaN or infinite values")
    if baseline.ndim == X.ndim + 1:
        if baseline.shape[0] != X.shape[0] or baseline.shape[2:] != X.shape[1:]:
            raise ValueError(f"baseline of shape {tuple(baseline.shape)} does not fit inputs {tuple(X.shape)}: "
                             "give a tensor that broadcasts to them, or (N, R, ...) references")
        return baseline
    try:
        return torch.broadcast_to(baseline, X.shape)[:, None]
    except RuntimeError:
        raise ValueError(f"baseline of shape {tuple(baseline.shape)} does not broadcast to the input's shape "
                         f"{tuple(X.shape)} (nor is it (N, R, ...) references)") from None


def _check_input(model, X: torch.Tensor, target):
    """Run the model once on ``X`` itself, so a wrong shape is reported as the caller's, not as
    the (example x reference x step) batches built from it. Returns the target to pass on
    (``None`` for a model with one score per input, where ``select`` accepts target 0)."""
    try:
        with torch.no_grad():
            output = model(X)
            select(output, target)
    except RuntimeError as err:
        raise ValueError(f"the model cannot take inputs of shape {tuple(X.shape)}: {err}") from None
    return None if output.ndim == 1 else target


def _gradients_at(model, base, delta, alphas, targets):
    """Scores ``(K, M)`` and gradients ``(K, M, ...)`` at ``base + a delta`` for every ``a`` in ``alphas``."""
    k, m = len(alphas), base.shape[0]
    shape = (k,) + (1,) * base.ndim
    a = torch.as_tensor(np.asarray(alphas), dtype=base.dtype, device=base.device).reshape(shape)
    points = (base[None] + a * delta[None]).reshape(-1, *base.shape[1:]).requires_grad_(True)
    with torch.enable_grad():
        scores = select(model(points), None if targets is None else targets.repeat(k))
        (grad,) = torch.autograd.grad(scores.sum(), points)
    return scores.detach().reshape(k, m), grad.reshape(k, *base.shape)


def path_gradients(model, X: torch.Tensor, alphas, *, target=None, baseline=None, batch_size: int = 512):
    """The model's scores and gradients at the points ``x' + a (x - x')`` of the straight path.

    This is the integrand of integrated gradients; :func:`integrated_gradients`
    sums it with quadrature weights, and the IG widget
    (:func:`mlcourse.widgets.ig_path`) shows it point by point.

    Parameters
    ----------
    alphas : sequence of float
        Points ``a`` on ``[0, 1]``.
    baseline :
        Broadcasts to ``X`` (one reference each).

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        Scores ``(K, N)`` and gradients ``(K, *X.shape)`` for the ``K`` points, on ``X``'s device.
    """
    X = torch.as_tensor(X, dtype=torch.float32)
    base = as_references(X, baseline)
    if base.shape[1] != 1:
        raise ValueError(f"path_gradients follows one path per input; got {base.shape[1]} references each")
    device = device_of(model)
    x, base = X.to(device), base[:, 0].to(device)
    targets = per_example(target, len(X), device)
    per_call = max(1, batch_size // max(len(X), 1))
    scores, grads = [], []
    with eval_mode(model):
        for start in range(0, len(alphas), per_call):
            s, g = _gradients_at(model, base, x - base, alphas[start:start + per_call], targets)
            scores.append(s)
            grads.append(g)
    return torch.cat(scores).to(X.device), torch.cat(grads).to(X.device)


def integrated_gradients(model, X: torch.Tensor, *, target=None, baseline=None, steps: int = 50,
                         method: str = "riemann_trapezoid", hypothetical: bool = False,
                         batch_size: int = 512) -> torch.Tensor:
    """Integrated gradients, written out from the formula (Sundararajan et al. 2017).

    ``IG(x) = (x - x') * sum_k w_k grad F(x' + a_k (x - x'))`` with the points
    and weights of :func:`riemann_weights`. Every (example, reference) pair gets
    its own path; the interpolated inputs of several steps go through the model
    together, at most ``batch_size`` inputs per call.

    Parameters
    ----------
    model : nn.Module or callable
        Maps a batch to scores ``(N,)`` or ``(N, C)``; run in eval mode on its device.
    X : torch.Tensor
        Inputs ``(N, ...)``: DNA ``(N, 4, L)``, images ``(N, C, H, W)``.
    target : None, int or sequence of int
        The class whose score is explained, for ``(N, C)`` outputs.
    baseline : None, float or tensor
        The reference ``x'`` by the module's baseline rule (:func:`as_references`):
        ``None`` is all zeros; ``(N, R, ...)`` references (e.g.
        :func:`shuffled_references`) average IG over them -- an "expected
        gradients" estimate when they are many.
    steps, method :
        Number of points ``m`` and the quadrature rule (:data:`METHODS`).
    hypothetical : bool
        For DNA: return hypothetical contributions of all four bases
        (:func:`hypothetical_contributions`) instead of actual ones.
    batch_size : int
        Most inputs per forward pass.

    Returns
    -------
    torch.Tensor
        Attributions shaped like ``X``. Their sum per example approaches
        ``F(x) - F(x')`` (the mean over references) as ``steps`` grows (see
        :func:`completeness_gap`).
    """
    X = as_batch(X)
    references = as_references(X, baseline)
    alphas, weights = riemann_weights(steps, method)
    n, r = references.shape[:2]
    device = device_of(model)
    refs = references.to(device).reshape(n * r, *X.shape[1:])
    inputs = X.to(device)[:, None].expand(n, r, *X.shape[1:]).reshape(n * r, *X.shape[1:])
    targets = per_example(target, n, device)
    targets = None if targets is None else targets.repeat_interleave(r)
    delta = inputs - refs
    per_call = max(1, batch_size // max(n * r, 1))
    multipliers = torch.zeros_like(inputs)
    with eval_mode(model):
        _check_input(model, X.to(device), target)
        for start in range(0, len(alphas), per_call):
            _, grads = _gradients_at(model, refs, delta, alphas[start:start + per_call], targets)
            w = torch.as_tensor(weights[start:start + per_call], dtype=X.dtype, device=device)
            multipliers += (w.reshape(-1, *[1] * inputs.ndim) * grads).sum(0)
    multipliers = multipliers.reshape(n, r, *X.shape[1:])
    if hypothetical:
        return hypothetical_contributions(multipliers, refs.reshape(multipliers.shape)).to(X.device)
    return (multipliers * delta.reshape(multipliers.shape)).mean(dim=1).to(X.device)


def completeness_gap(model, X: torch.Tensor, attributions: torch.Tensor, *, target=None, baseline=None,
                     relative: bool = False) -> torch.Tensor:
    """How far attributions are from adding up to the change in output: ``sum(attr) - (F(x) - F(x'))``.

    Integrated gradients and DeepLIFT promise that attributions add up to the
    change in output between baseline and input (Sundararajan et al. 2017,
    axiom "completeness"; Shrikumar et al. 2017, "summation-to-delta"). With
    ``R`` references per example, ``F(x')`` is their mean score.

    Returns
    -------
    torch.Tensor
        ``(N,)``: the signed gap (Captum's "convergence delta"), or with
        ``relative=True`` its size relative to the change,
        ``|sum(attr) - (F(x) - F(x'))| / |F(x) - F(x')|``.
    """
    X = torch.as_tensor(X, dtype=torch.float32)
    if attributions.shape != X.shape:
        raise ValueError(f"attributions have shape {tuple(attributions.shape)}, inputs {tuple(X.shape)}")
    references = as_references(X, baseline)
    n, r = references.shape[:2]
    device = device_of(model)
    targets = per_example(target, n)
    with torch.no_grad(), eval_mode(model):
        own = select(model(X.to(device)), target)
        ref_scores = select(model(references.reshape(n * r, *X.shape[1:]).to(device)),
                            None if targets is None else targets.repeat_interleave(r))
    change = (own - ref_scores.reshape(n, r).mean(1)).to(attributions.device)
    gap = attributions.reshape(n, -1).sum(1) - change
    return gap.abs() / change.abs().clamp_min(1e-12) if relative else gap


def shuffled_references(X: torch.Tensor, n: int = 10, *, seed=0) -> torch.Tensor:
    """``n`` dinucleotide shuffles of every sequence, as references ``(N, n, 4, L)``.

    A shuffle keeps a sequence's base and dinucleotide composition but breaks
    its motifs, so attributions against it credit the motif, not the GC content
    (the references used by DeepLIFT's DNA examples, DeepLiftShap and TF-MoDISco).
    ``seed`` is an int or a NumPy Generator; sequence by sequence, ``n`` shuffles each.
    """
    if not isinstance(X, torch.Tensor) or X.ndim != 3 or X.shape[1] != 4:
        raise ValueError(f"expected one-hot DNA (N, 4, L), got {getattr(X, 'shape', type(X))}")
    if n < 1:
        raise ValueError(f"n must be at least 1 reference per sequence, got {n}")
    rng = as_rng(seed)
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
    targets = per_example(target, n, X.device)
    if targets is not None:
        targets = targets.repeat_interleave(r)
    multipliers, error = [], []
    for start in range(0, n * r, batch_size):
        part = slice(start, start + batch_size)
        part_target = targets[part] if isinstance(targets, torch.Tensor) else targets
        m = explainer.attribute(inputs[part].clone(), baselines=bases[part], target=part_target,
                                **kwargs).detach()
        if with_delta:
            with torch.no_grad():
                change = (select(model(inputs[part]), part_target)
                          - select(model(bases[part]), part_target))
            error.append((m * (inputs[part] - bases[part])).flatten(1).sum(1) - change)
        multipliers.append(m)
    multipliers = torch.cat(multipliers).reshape(references.shape)
    if hypothetical:
        attributions = hypothetical_contributions(multipliers, references)
    else:
        attributions = (multipliers * (X[:, None] - references)).mean(dim=1)
    return attributions, torch.cat(error).reshape(n, r) if with_delta else None


def deeplift(model: nn.Module, X: torch.Tensor, *, target=None, baseline=None,
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
    target : None, int or N ints
        The output explained, for ``(N, C)`` models.
    baseline : None or tensor
        By the baseline rule (:func:`as_references`): one reference each, or
        ``(N, R, 4, L)``; ``None``: 10 dinucleotide shuffles of each sequence
        (:func:`shuffled_references`, seed 0).
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

    X = as_batch(X)
    references = shuffled_references(X, 10) if baseline is None else as_references(X, baseline)
    device = device_of(model)
    with eval_mode(model), _separate_nonlinearities(model):
        target = _check_input(model, X.to(device), target)
        explainer = DeepLift(model, multiply_by_inputs=False)
        attributions, delta = _attribute_against(explainer, model, X.to(device), references.to(device), target,
                                                 hypothetical, batch_size, with_delta=return_delta)
    attributions = attributions.to(X.device)
    return (attributions, delta.to(X.device)) if return_delta else attributions


def deeplift_shap(model: nn.Module, X: torch.Tensor, *, target=None, n_references: int = 10,
                  hypothetical: bool = False, return_delta: bool = False, batch_size: int = 256, seed=0):
    """DeepLiftShap on DNA: DeepLIFT averaged over ``n_references`` dinucleotide shuffles of each sequence.

    See :func:`deeplift` for the arguments and :func:`shuffled_references` for
    the references (drawn with ``seed``).
    """
    references = shuffled_references(X, n_references, seed=seed)
    return deeplift(model, X, target=target, baseline=references, hypothetical=hypothetical,
                    return_delta=return_delta, batch_size=batch_size)
