"""Input-dependent black-box explanations: LIME, KernelSHAP and maximum-entropy sampling.

All three perturb the input around one example ``x`` and watch the model:

* **LIME** (Ribeiro, Singh & Guestrin 2016, "Why should I trust you?") switches
  random subsets of *features* off (to a baseline), weights each perturbed input
  by its similarity to ``x`` and fits a sparse linear model to the model's
  outputs; the coefficients are the explanation.
* **KernelSHAP** (Lundberg & Lee 2017, "A unified approach to interpreting
  model predictions") does the same with the Shapley kernel as weights, so the
  coefficients estimate Shapley values.
* **Maximum-entropy sampling** (Finnegan & Song 2017, "Maximum entropy methods
  for extracting the learned features of deep neural networks") asks a
  different question: among all inputs that keep the model's decision, which
  are *most random*? It samples them by Markov chain Monte Carlo; positions
  that stay fixed in the samples are the ones the decision needs.

A *feature* is a group of input entries switched together, given by an
integer mask shaped like the input (:mod:`mlcourse.interpret.features`): one
per DNA position, one per token, or one per image patch, a simple kind of
superpixel.
LIME and KernelSHAP run through Captum (``captum.attr.Lime`` / ``KernelShap``),
one example at a time.
"""

from __future__ import annotations

import numpy as np
import torch

from mlcourse.config import device_of, eval_mode
from mlcourse.interpret.features import default_mask
from mlcourse.interpret.scoring import per_example, select
from mlcourse.motifs import information_content

__all__ = ["lime", "kernel_shap", "max_entropy"]


def _check_mask(inputs: torch.Tensor, feature_mask) -> torch.Tensor:
    mask = default_mask(inputs) if feature_mask is None else torch.as_tensor(feature_mask)
    if mask.shape != inputs.shape:
        try:
            mask = mask.expand(inputs.shape)
        except RuntimeError:
            raise ValueError(f"feature_mask of shape {tuple(mask.shape)} does not fit inputs of "
                             f"shape {tuple(inputs.shape)}") from None
    return mask.long().to(inputs.device)


def _surrogate(explainer_cls, model, X, feature_mask, baseline, n_samples, target, seed,
               batch_size, **init) -> torch.Tensor:
    """Run a Captum perturbation explainer on each example; attributions shaped like ``X``, on the CPU."""
    if not isinstance(n_samples, int) or n_samples < 2:
        raise ValueError(f"n_samples must be an integer >= 2, got {n_samples!r}")
    inputs = X.to(device_of(model))
    mask = _check_mask(inputs, feature_mask)
    if not inputs.is_floating_point():  # token ids stay integers: the baseline must be an id too
        if not float(baseline).is_integer():
            raise ValueError(f"baseline={baseline!r} must be a token id for integer inputs")
        baseline = int(baseline)
    targets = per_example(target, len(inputs))
    targets = [None] * len(inputs) if targets is None else targets.tolist()
    out = torch.zeros(inputs.shape, dtype=torch.float32)
    with torch.random.fork_rng(devices=[]), eval_mode(model):
        torch.manual_seed(seed)
        explainer = explainer_cls(model, **init)
        for i in range(len(inputs)):
            out[i] = explainer.attribute(
                inputs[i : i + 1], baselines=baseline, target=targets[i],
                feature_mask=mask[i : i + 1], n_samples=n_samples,
                perturbations_per_eval=min(batch_size, n_samples),
            )[0].detach().float().cpu()
    return out


def lime(model, X: torch.Tensor, *, target=None, baseline=0.0, feature_mask=None, n_samples: int = 200,
         keep: float = 0.5, alpha: float = 0.01, batch_size: int = 256, seed: int = 0) -> torch.Tensor:
    """LIME (Ribeiro et al. 2016) through Captum's ``Lime``.

    Each of ``n_samples`` perturbations keeps every feature with probability
    ``keep`` and sets the others to ``baseline``; the samples are weighted by
    an exponential kernel of their cosine distance to ``x``, and a ridge
    regression with penalty ``alpha`` on the binary "feature kept" vectors
    explains the model's score.

    ``keep=0.5`` is LIME's usual choice. A model that needs *all* of a motif's
    ``W`` positions at once sees an intact motif in only ``keep**W`` of the
    samples (1 in 2,000 for 11 bp at 0.5), so the linear fit has almost
    nothing to explain; for DNA, ``keep=0.9`` works far better.

    Parameters
    ----------
    model : callable
        Batch -> scores ``(N,)`` or ``(N, C)`` (then give ``target``).
    X : torch.Tensor
        DNA ``(N, 4, L)``, token ids ``(N, T)`` or images ``(N, C, H, W)``.
    target : None, int or N ints
        The class explained, for ``(N, C)`` outputs.
    baseline : float or tensor
        What a switched-off feature becomes: 0 gives DNA ``N`` columns, black
        pixels, or token id 0 (padding).
    feature_mask : tensor, optional
        Integer feature ids shaped like (or broadcastable to) ``X``;
        default :func:`mlcourse.interpret.features.default_mask`.
    n_samples, seed, batch_size :
        Perturbations per example, torch seed (the global RNG is restored
        afterwards), perturbations per model call.
    keep : float
        Probability that a perturbation keeps a feature.

    Returns
    -------
    torch.Tensor
        Float, shaped like ``X`` (on the CPU): every entry carries its feature's
        coefficient.
    """
    from captum._utils.models.linear_model import SkLearnRidge
    from captum.attr import Lime

    if not 0 < keep < 1:
        raise ValueError(f"keep must be a probability strictly between 0 and 1, got {keep!r}")

    def perturb(_inputs, num_interp_features, **_kwargs):
        return torch.bernoulli(torch.full((1, num_interp_features), float(keep)))

    return _surrogate(Lime, model, X, feature_mask, baseline, n_samples, target, seed,
                      batch_size, interpretable_model=SkLearnRidge(alpha=alpha),
                      perturb_func=perturb)


def kernel_shap(model, X: torch.Tensor, *, target=None, baseline=0.0, feature_mask=None,
                n_samples: int = 200, batch_size: int = 256, seed: int = 0) -> torch.Tensor:
    """KernelSHAP (Lundberg & Lee 2017) through Captum's ``KernelShap``.

    Like :func:`lime`, but the coalitions are weighted by the Shapley kernel
    and the linear fit is constrained so that the coefficients add up to
    ``f(x) - f(baseline)``: with enough samples they are the Shapley values of
    the features. Arguments and result as in :func:`lime`.
    """
    from captum.attr import KernelShap

    return _surrogate(KernelShap, model, X, feature_mask, baseline, n_samples, target, seed,
                      batch_size)


def max_entropy(model, X: torch.Tensor, *, target=None, beta: float = 20.0, sweeps: int = 4,
                burn_in: int = 1, chains: int = 4, seed: int = 0,
                batch_size: int = 8192) -> torch.Tensor:
    """Maximum-entropy sampling around each sequence (after Finnegan & Song 2017).

    Among all distributions over sequences ``x'`` whose expected loss of the
    model's score stays small, the one with maximum entropy is ::

        p(x') proportional to exp(-beta * d(x')),
        d(x') = max(0, s(x) - s(x')) / max(|s(x)|, 1),

    the score lost relative to the sequence's own score. We sample it with a
    Gibbs sampler started at ``x``: each step picks a position (in a random
    order each sweep) and redraws its base from the four candidates' Boltzmann
    weights, in all chains of all sequences at once. Bases the decision needs
    stay fixed; the rest drift towards uniform. (Finnegan & Song constrain the
    penultimate layer's activations instead of the score; constraining the
    score keeps exactly "the model's decision".)

    Parameters
    ----------
    model : callable
        DNA model, batch ``(B, 4, L)`` -> ``(B,)`` or ``(B, C)`` scores.
    X : torch.Tensor
        One-hot DNA ``(N, 4, L)`` (no ``N`` bases).
    beta : float
        Inverse temperature: larger keeps the decision more strictly.
    sweeps, burn_in : int
        Gibbs sweeps over all positions; the first ``burn_in`` are not counted.
    chains : int
        Independent chains per sequence.
    seed : int
    batch_size : int
        Most sequences per model call.

    Returns
    -------
    torch.Tensor
        ``(N, 4, L)`` on the CPU: sampled base frequency times the position's
        information content ``2 - H`` in bits
        (:func:`mlcourse.motifs.information_content`), i.e. the letters of a
        sequence logo of the samples. Its sum over bases is each position's importance (0 for a
        free position, 2 for a fixed one).
    """
    X = torch.as_tensor(X, dtype=torch.float32)
    if X.ndim != 3 or X.shape[1] != 4 or not torch.all(X.sum(1) == 1):
        raise ValueError(f"max_entropy expects one-hot DNA (N, 4, L) without N bases, got shape "
                         f"{tuple(X.shape)}")
    if sweeps <= burn_in or burn_in < 0:
        raise ValueError(f"need sweeps > burn_in >= 0 to count any sample; got sweeps={sweeps}, "
                         f"burn_in={burn_in}")
    n, _, length = X.shape
    X = X.to(device_of(model))
    rng = np.random.default_rng(seed)
    eye = torch.eye(4, device=X.device)
    state = X.argmax(1)[:, None].repeat(1, chains, 1)  # (N, C, L) base codes
    counts = torch.zeros(n, 4, length, device=X.device)

    def score(batch):
        return select(torch.cat([model(b) for b in batch.split(batch_size)]), target)

    with eval_mode(model), torch.inference_mode():
        original = score(X)
        scale = original.abs().clamp_min(1.0)
        for sweep in range(sweeps):
            for pos in rng.permutation(length):
                candidates = state[:, :, None, :].repeat(1, 1, 4, 1)  # (N, C, 4, L)
                candidates[..., pos] = torch.arange(4, device=X.device)
                onehot = eye[candidates].permute(0, 1, 2, 4, 3).reshape(-1, 4, length)
                s = score(onehot).reshape(n, chains, 4)
                loss = (original[:, None, None] - s).clamp_min(0) / scale[:, None, None]
                probs = torch.softmax(-beta * loss, dim=-1).reshape(-1, 4)
                draw = torch.from_numpy(rng.random(len(probs))).float().to(X.device)[:, None]
                choice = (probs.cumsum(-1) < draw).sum(-1).clamp_max(3)
                state[:, :, pos] = choice.reshape(n, chains)
                if sweep >= burn_in:
                    counts += eye[state].sum(1).permute(0, 2, 1)
    freq = counts / counts.sum(1, keepdim=True)
    return (freq * information_content(freq)[:, None]).cpu()
