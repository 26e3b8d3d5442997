"""The course's attribution methods in one registry, each reduced to one score per position or pixel.

Every method returns an attribution shaped like its input; to compare
methods (:func:`mlcourse.interpret.compare.compare_methods`, the widgets'
method pickers, the lecture tables) each is turned into one number per DNA
position ``(N, L)`` or per pixel ``(N, H, W)``:

========================= ================================================ ==============
method                    one score per position / pixel                   data
========================= ================================================ ==============
ISM                       minus the mean change over the 3 substitutions   dna
SIS                       positions in the sufficient input subset, most   dna
                          important first (others ``-inf``); threshold 90%
                          of the way from the fully masked probability to
                          the sequence's own
saliency, guided backprop largest absolute gradient over bases / channels  dna, image
gradient x input          gradient at the observed base                    dna
Grad-CAM                  map at the ReLU after ``last_conv`` on the       dna, image
                          centres of its input windows (DNA); upsampled
                          bilinearly (images)
guided Grad-CAM           largest absolute value over channels             image
integrated gradients      summed over bases / channels; against            dna, image
                          dinucleotide shuffles (DNA), a black image
DeepLiftShap              contributions against shuffles, summed over      dna
                          bases
LIME, KernelSHAP          the feature's coefficient (a position, a 4 x 4   dna, image
                          patch shared by all channels)
maximum entropy           information content of the sampled bases (bits)  dna
========================= ================================================ ==============

:data:`METHODS` lists them; :func:`scorers` binds them to one model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from mlcourse.interpret import backprop, cam, engines, ism, paths, sis, surrogate
from mlcourse.interpret.scoring import score

__all__ = ["Method", "Options", "METHODS", "scorers"]


@dataclass(frozen=True)
class Options:
    """The settings :func:`scorers` passes to every method."""

    target: object = None
    layer: object = None
    steps: int = 50
    n_samples: int = 200
    n_references: int = 10
    maxent_sweeps: int = 3
    seed: int = 0
    fast: bool = True


@dataclass(frozen=True)
class Method:
    """One attribution method: the data it explains and ``scores(model, X, options) -> (N, L) or (N, H, W)``."""

    name: str
    data: tuple[str, ...]
    scores: Callable


def _is_dna(X: torch.Tensor) -> bool:
    return X.ndim == 3 and X.shape[1] == 4


def _ism(model, X, o):
    fast = o.fast and engines.supports(model, X, o.target)
    return -ism.saturation_mutagenesis(model, X, target=o.target, fast=fast).sum(1) / 3


def _sufficient_subset(model, X, o):
    masked = sis.dna_background(X[0])
    own = score(model, X, output="probability").cpu()
    empty = score(model, masked[None], output="probability").cpu()[0]
    fast = o.fast and engines.supports(model, X)
    scores = torch.full((X.shape[0], X.shape[2]), -torch.inf)
    for i in np.flatnonzero((own > empty).numpy()):
        threshold = float(empty + 0.9 * (own[i] - empty))
        found = sis.find_sis(model, X[i], threshold=threshold, baseline=masked, mask_shape=(1, X.shape[2]),
                             output="probability", fast=fast)
        if found is not None:
            scores[i, torch.as_tensor(found.features)] = -torch.arange(len(found), dtype=torch.float32)
    return scores


def _saliency(model, X, o):
    return backprop.saliency(model, X, target=o.target).abs().amax(1)


def _gradient_x_input(model, X, o):
    return (backprop.saliency(model, X, target=o.target) * X).sum(1)


def _guided(model, X, o):
    return backprop.guided_backprop(model, X, target=o.target).abs().amax(1)


def _rectified_last_conv(model):
    """The first ReLU registered after ``last_conv``: the rectified maps Grad-CAM weighs on DNA.

    At the convolution's own (pre-ReLU) output of a global-max-pool model the
    gradient is zero everywhere but the winning position, and the weighted map
    is mostly negative: after Grad-CAM's final ReLU nothing is left.
    """
    conv = cam.last_conv(model)
    modules = list(model.modules())
    after = modules[modules.index(conv) + 1:]
    return next((m for m in after if isinstance(m, torch.nn.ReLU)), conv)


def _grad_cam_layer(model, X, o):
    if o.layer is not None:
        return o.layer
    return _rectified_last_conv(model) if _is_dna(X) else cam.last_conv(model)


def _grad_cam(model, X, o):
    layer = _grad_cam_layer(model, X, o)
    return cam.to_input(model, X, cam.grad_cam(model, X, layer=layer, target=o.target), layer=layer)


def _guided_grad_cam(model, X, o):
    return cam.guided_grad_cam(model, X, layer=_grad_cam_layer(model, X, o), target=o.target).abs().amax(1)


def _integrated_gradients(model, X, o):
    if _is_dna(X):
        refs = paths.shuffled_references(X, o.n_references, seed=o.seed)
        attr = paths.integrated_gradients(model, X, target=o.target, baseline=refs, steps=o.steps,
                                          method="gausslegendre")
    else:
        attr = paths.integrated_gradients(model, X, target=o.target, steps=o.steps)
    return attr.sum(1)


def _deeplift_shap(model, X, o):
    return paths.deeplift_shap(model, X, target=o.target, n_references=o.n_references, seed=o.seed).sum(1)


def _lime(model, X, o):
    keep = 0.9 if _is_dna(X) else 0.5  # a motif needs all its positions kept at once (see surrogate.lime)
    return surrogate.lime(model, X, target=o.target, n_samples=o.n_samples, keep=keep, seed=o.seed)[:, 0]


def _kernel_shap(model, X, o):
    return surrogate.kernel_shap(model, X, target=o.target, n_samples=o.n_samples, seed=o.seed)[:, 0]


def _max_entropy(model, X, o):
    return surrogate.max_entropy(model, X, target=o.target, sweeps=o.maxent_sweeps, seed=o.seed).sum(1)


METHODS: dict[str, Method] = {m.name: m for m in [
    Method("ISM", ("dna",), _ism),
    Method("SIS", ("dna",), _sufficient_subset),
    Method("saliency", ("dna", "image"), _saliency),
    Method("gradient x input", ("dna",), _gradient_x_input),
    Method("guided backprop", ("dna", "image"), _guided),
    Method("Grad-CAM", ("dna", "image"), _grad_cam),
    Method("guided Grad-CAM", ("image",), _guided_grad_cam),
    Method("integrated gradients", ("dna", "image"), _integrated_gradients),
    Method("DeepLiftShap", ("dna",), _deeplift_shap),
    Method("LIME", ("dna", "image"), _lime),
    Method("KernelSHAP", ("dna", "image"), _kernel_shap),
    Method("maximum entropy", ("dna",), _max_entropy),
]}
"""Every method of the course, in the order the lectures introduce them."""


def scorers(model, data: str = "dna", *, target=None, layer=None, steps: int = 50, n_samples: int = 200,
            n_references: int = 10, maxent_sweeps: int = 3, seed: int = 0,
            fast: bool = True) -> dict[str, Callable]:
    """The methods for ``data`` bound to ``model``: ``name -> f(X) -> (N, L)`` or ``(N, H, W)`` scores.

    Parameters
    ----------
    model : nn.Module
        A DNA model ``(N, 4, L) -> (N,)`` or an image classifier ``(N, C, H, W) -> (N, K)``.
    data : {"dna", "image"}
    target : None, int or N ints
        The class explained (image classifiers).
    layer : optional
        Grad-CAM's layer (default: the ReLU after ``last_conv`` for DNA, ``last_conv`` for images).
    steps, n_samples, n_references, maxent_sweeps, seed :
        Integrated-gradients steps, LIME/KernelSHAP samples, shuffled references
        (IG, DeepLiftShap), maximum-entropy sweeps, and the seed of them all.
    fast : bool
        Let ISM and SIS use the local-window engines where the model allows
        (:func:`mlcourse.interpret.engines.supports`); same numbers, less time.
    """
    kinds = sorted({d for m in METHODS.values() for d in m.data})
    if data not in kinds:
        raise ValueError(f"data must be one of {kinds}, got {data!r}")
    options = Options(target, layer, steps, n_samples, n_references, maxent_sweeps, seed, fast)

    def bind(method: Method) -> Callable:
        def scores(X: torch.Tensor) -> torch.Tensor:
            return method.scores(model, X, options)
        return scores

    return {name: bind(m) for name, m in METHODS.items() if data in m.data}
