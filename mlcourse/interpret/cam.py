"""Class activation maps: CAM, Grad-CAM and guided Grad-CAM, for images and along DNA.

**CAM** (Zhou et al. 2016, "Learning deep features for discriminative
localization"). In a network that ends ``conv features A -> global average
pooling -> linear``, the score of class ``c`` is

    y_c = sum_k w_ck * mean_ij A_k(i, j) + b_c = mean_ij M_c(i, j) + b_c,
    with  M_c(i, j) = sum_k w_ck A_k(i, j).

``M_c`` -- the class activation map -- says how much each location adds to
the score; averaging it gives the logit back (up to the bias).

**Grad-CAM** (Selvaraju et al. 2017) works for any layer of any CNN: weight
each feature map by the average gradient of the score over its positions,

    alpha_k = mean_ij d y_c / d A_k(i, j),   L_c = ReLU( sum_k alpha_k A_k ).

For a GAP network and ``A`` = the maps that enter the pooling,
``d y_c / d A_k(i, j) = w_ck / (h w)``, so Grad-CAM without its ReLU is exactly
``M_c / (h w)``: CAM is the special case.

**Guided Grad-CAM** multiplies the (upsampled) Grad-CAM map with guided
backpropagation (:mod:`mlcourse.interpret.backprop`): "where" times
"which pixels / bases".

**Positions along DNA.** A feature map of a valid (unpadded) convolution is
shorter than the sequence: with a 24 bp filter on 101 bp, position ``j`` of
the 78-long map is the filter applied to bases ``j .. j+23``. Stretching the
78 values over 101 bases (what image code does with interpolation) shifts
them: output 70 would land near base 91, although it describes bases 70-93.
:func:`receptive_fields` computes, for every position of any layer, the input
window it sees (composing kernel sizes, strides, paddings and dilations of the
convolutions and pools below it), and :func:`align_to_input` gives each base
the sum of the map values whose windows contain it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mlcourse.config import device_of, eval_mode
from mlcourse.interpret.activations import capture, resolve_layers
from mlcourse.interpret.backprop import guided_backprop
from mlcourse.interpret.scoring import as_batch, class_index, select
from mlcourse.models.geometry import Field, geometry

__all__ = [
    "class_activation_map",
    "grad_cam",
    "receptive_fields",
    "align_to_input",
    "to_input",
    "guided_grad_cam",
    "last_conv",
]


def _gap_module(model: nn.Module) -> nn.Module:
    pools = [m for m in model.modules() if isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d))]
    if len(pools) != 1:
        raise ValueError(f"CAM needs a model with exactly one global average pooling layer, found {len(pools)}")
    size = pools[0].output_size
    if any(s != 1 for s in ((size,) if isinstance(size, int) else size)):
        raise ValueError(f"the average pooling must be global (output_size=1), got output_size={size}")
    return pools[0]


def last_conv(model: nn.Module) -> nn.Module:
    """The layer Grad-CAM looks at by default: ``model.last_conv`` if the model names one, else its last convolution."""
    if isinstance(getattr(model, "last_conv", None), nn.Module):
        return model.last_conv
    convs = [m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))]
    if not convs:
        raise ValueError(f"Grad-CAM needs a convolution: {type(model).__name__} has no Conv2d or Conv1d "
                         "layer; pass layer=")
    return convs[-1]


def class_activation_map(model: nn.Module, X: torch.Tensor, *, target=None, fc: nn.Linear | None = None
                         ) -> torch.Tensor:
    """CAM of a global-average-pooling network (Zhou et al. 2016): ``M_c = sum_k w_ck A_k``.

    Parameters
    ----------
    model : nn.Module
        Ends ``features -> AdaptiveAvgPool(1) -> flatten -> fc`` (e.g.
        :func:`mlcourse.models.vision.gap_cnn`).
    X : torch.Tensor
        Images ``(N, C, H, W)`` (or sequences ``(N, 4, L)`` for a 1D GAP model).
    target : None, int or N ints
        Class(es); ``None`` when the model has a single output.
    fc : nn.Linear, optional
        The linear layer after pooling; default ``model.fc``.

    Returns
    -------
    torch.Tensor
        ``(N, h, w)`` (or ``(N, L')``) at the resolution of the pooled
        features; its spatial mean plus ``fc.bias[c]`` is the class logit.
    """
    fc = fc if fc is not None else getattr(model, "fc", None)
    if not isinstance(fc, nn.Linear):
        raise ValueError("pass fc=<the linear layer after global average pooling> (model has no .fc)")
    pool = _gap_module(model)
    features = {}

    def keep(module, inputs):
        features["A"] = inputs[0].detach()

    handle = pool.register_forward_pre_hook(keep)
    try:
        with torch.no_grad(), eval_mode(model):
            model(X.to(device_of(model)))
    finally:
        handle.remove()
    maps = features["A"]
    if maps.shape[1] != fc.in_features:
        raise ValueError(f"the pooled features have {maps.shape[1]} channels but fc expects {fc.in_features}")
    per_class = torch.einsum("ck,nk...->nc...", fc.weight.detach(), maps)
    index = class_index(target, len(maps), fc.out_features, maps.device)
    return per_class[torch.arange(len(maps), device=maps.device), index].to(X.device)


def _one_layer(model: nn.Module, layer) -> tuple[str, nn.Module]:
    """(name, module) of a single layer given by name or module."""
    if isinstance(layer, (list, tuple)):
        raise ValueError(f"pass one layer (a name or a module), got {len(layer)}: {layer!r}")
    ((name, module),) = resolve_layers(model, layer).items()
    return name, module


def grad_cam(model: nn.Module, X: torch.Tensor, *, layer=None, target=None, relu: bool = True) -> torch.Tensor:
    """Grad-CAM (Selvaraju et al. 2017) at ``layer``'s resolution.

    ``alpha_k`` = mean over positions of d score / d A_k, map = sum_k alpha_k A_k,
    then a ReLU (keep only evidence *for* the class) unless ``relu=False``.

    Parameters
    ----------
    layer : str or nn.Module, optional
        Any layer with output ``(N, K, L')`` or ``(N, K, H', W')`` -- usually
        the last convolution or the ReLU after it (the two differ: the
        gradient at a conv's output is already masked by the ReLU above).
        Default :func:`last_conv`.
    target : None, int or N ints
        See :func:`mlcourse.interpret.scoring.select`.

    Returns
    -------
    torch.Tensor
        ``(N, L')`` or ``(N, H', W')``; equals Captum's ``LayerGradCam`` (with
        ``relu_attributions=relu``) without its channel axis. Map it to the
        input with :func:`to_input`.
    """
    name, module = _one_layer(model, last_conv(model) if layer is None else layer)
    X = as_batch(X)
    with torch.enable_grad(), eval_mode(model), capture(model, module, detach=False) as maps:
        scores = select(model(X.to(device_of(model))), target)
        if name not in maps:
            raise ValueError(f"layer {name!r} was not called in the model's forward pass")
        acts = maps[name]
        if acts.ndim < 3:
            raise ValueError(f"layer {name!r} has output {tuple(acts.shape)}; Grad-CAM needs (N, K, positions)")
        (grads,) = torch.autograd.grad(scores.sum(), acts)
    alpha = grads.mean(dim=tuple(range(2, grads.ndim)), keepdim=True)
    heat = (alpha * acts.detach()).sum(dim=1)
    return (heat.clamp(min=0) if relu else heat).to(X.device)


def receptive_fields(model: nn.Module, X: torch.Tensor, *, layer) -> np.ndarray:
    """For each position of ``layer``'s output, the input window ``[start, end)`` it sees.

    Runs ``model(X[:1])`` once and composes the layers executed up to ``layer``
    (a chain, as in the course's CNNs). If position ``j`` of the current map
    sees input ``[a + j s, a + j s + r)``, a conv or pool with kernel ``k``,
    stride ``t``, padding ``p`` and dilation ``d`` gives
    ``a' = a - p s``, ``s' = s t``, ``r' = r + d (k - 1) s``
    (:class:`mlcourse.models.geometry.Field`).
    Windows are clipped to the sequence (padding sees no bases).

    Returns
    -------
    np.ndarray
        ``(L', 2)`` integers: start (inclusive) and end (exclusive).

    Raises
    ------
    ValueError
        If a layer that is not a Conv1d, MaxPool1d or AvgPool1d changes the
        length before ``layer`` (its geometry is unknown).
    """
    name, target_module = _one_layer(model, layer)
    if X.ndim != 3:
        raise ValueError(f"receptive_fields is for sequences (N, C, L), got input shape {tuple(X.shape)}")
    length = X.shape[-1]
    state = {"field": Field(), "done": False, "out_len": None, "error": None}

    def hook_for(module_name):
        def hook(module, inputs, output):
            if state["done"]:
                return
            in_len, out_len = inputs[0].shape[-1], output.shape[-1]
            layer_geometry = geometry(module)
            if layer_geometry is not None:
                state["field"] = state["field"].then(layer_geometry)
            elif in_len != out_len and state["error"] is None:
                state["error"] = (f"layer {module_name!r} ({type(module).__name__}) changes the length "
                                  f"from {in_len} to {out_len}; its window geometry is unknown")
            if module is target_module:
                state["done"], state["out_len"] = True, out_len
        return hook

    leaves = [(n, m) for n, m in model.named_modules() if n and not list(m.children())]
    if not any(m is target_module for _, m in leaves):
        leaves.append((name, target_module))
    handles = [m.register_forward_hook(hook_for(n)) for n, m in leaves]
    try:
        with torch.no_grad(), eval_mode(model):
            model(X[:1].to(device_of(model)))
    finally:
        for handle in handles:
            handle.remove()
    if state["error"]:
        raise ValueError(state["error"])
    if not state["done"]:
        raise ValueError(f"layer {name!r} was not called in the model's forward pass")
    field = state["field"]
    starts = field.start + field.jump * np.arange(state["out_len"])
    return np.stack([np.clip(starts, 0, length), np.clip(starts + field.size, 0, length)], axis=1)


def _matching_fields(maps: torch.Tensor, fields) -> np.ndarray:
    """``fields`` as an ``(L', 2)`` array that matches ``(N, L')`` maps, or a ValueError saying why not."""
    fields = np.asarray(fields)
    if maps.ndim != 2 or fields.shape != (maps.shape[1], 2):
        raise ValueError(f"maps {tuple(maps.shape)} and fields {fields.shape} do not match: "
                         "need (N, L') and (L', 2)")
    return fields


def align_to_input(maps: torch.Tensor, fields: np.ndarray, length: int) -> torch.Tensor:
    """Spread ``(N, L')`` layer-resolution values over the input windows they describe.

    Base ``i`` gets the sum of ``maps[:, j]`` over the positions ``j`` whose
    window (a row of ``fields``, from :func:`receptive_fields`) contains ``i``
    -- a transposed convolution with a box filter, the way a gradient would
    spread the values back. One active position thus lights up exactly the
    bases it saw, evenly (a mean over covering windows would not: near the
    sequence ends fewer windows overlap, which would inflate those bases).
    Bases no window covers get 0.

    Returns
    -------
    torch.Tensor
        ``(N, length)``.
    """
    fields = _matching_fields(maps, fields)
    cover = torch.zeros(maps.shape[1], length, dtype=maps.dtype, device=maps.device)
    for j, (start, end) in enumerate(fields):
        cover[j, start:end] = 1
    return maps @ cover


def centre_on_input(maps: torch.Tensor, fields: np.ndarray, length: int) -> torch.Tensor:
    """Put each layer position's value on the centre of the input window it sees.

    Position ``j`` sees bases ``fields[j] = [start, end)``; its neighbour sees
    the window shifted by the layer's stride ``s``. The value of ``j`` is
    shared evenly by the ``s`` bases around the centre ``(start + end - 1) / 2``,
    so the track has no gaps and keeps the map's total. A first-layer filter
    that learned a motif in the middle of its window thus puts its evidence on
    the motif, where :func:`align_to_input` spreads it over all the bases the
    window could have seen and stretching (``F.interpolate``) shifts it.

    Returns
    -------
    torch.Tensor
        ``(N, length)``.
    """
    fields = _matching_fields(maps, fields)
    stride = int(fields[1, 0] - fields[0, 0]) if len(fields) > 1 else 1
    cover = torch.zeros(maps.shape[1], length, dtype=maps.dtype, device=maps.device)
    for j, (start, end) in enumerate(fields):
        low = int(np.floor((start + end - 1) / 2 - (stride - 1) / 2))
        cover[j, max(low, 0): min(low + stride, length)] = 1 / stride
    return maps @ cover


def to_input(model: nn.Module, X: torch.Tensor, maps: torch.Tensor, *, layer=None, mode: str | None = None
             ) -> torch.Tensor:
    """Bring a layer-resolution map (from :func:`grad_cam` on ``X`` at ``layer``) to the input's resolution.

    Parameters
    ----------
    layer : str or nn.Module, optional
        The layer the maps come from; default :func:`last_conv`.
    mode : str, optional
        For sequences, ``"centre"`` (default): :func:`centre_on_input`, each
        value on the centre of its receptive field; ``"window"``:
        :func:`align_to_input`, spread over the whole field. Otherwise an
        ``F.interpolate`` mode (default ``"bilinear"`` for images;
        ``"nearest"`` reproduces Captum's ``GuidedGradCam`` upsampling).
        Lecture 10 measures the three on planted motifs: the centre puts
        a first-layer map's peak on the motif far more often.

    Returns
    -------
    torch.Tensor
        ``(N, L)`` or ``(N, H, W)``.
    """
    spatial = tuple(X.shape[2:])
    mode = mode or ("centre" if len(spatial) == 1 else "bilinear")
    if mode in ("centre", "window"):
        if len(spatial) != 1:
            raise ValueError(f"mode={mode!r} is for sequences; the input has spatial shape {spatial}")
        layer = last_conv(model) if layer is None else layer
        place = centre_on_input if mode == "centre" else align_to_input
        return place(maps, receptive_fields(model, X, layer=layer), spatial[0])
    kwargs = {"align_corners": False} if mode in ("linear", "bilinear", "bicubic") else {}
    return F.interpolate(maps[:, None], size=spatial, mode=mode, **kwargs)[:, 0]


def guided_grad_cam(model: nn.Module, X: torch.Tensor, *, layer=None, target=None, mode: str | None = None
                    ) -> torch.Tensor:
    """Guided Grad-CAM (Selvaraju et al. 2017): guided backprop x Grad-CAM brought to input size.

    ``mode`` is as in :func:`to_input` (``"nearest"`` matches Captum's
    ``GuidedGradCam``). Returns a tensor shaped like ``x``; the map is shared
    by all channels (bases, colours) of a position.
    """
    heat = to_input(model, X, grad_cam(model, X, layer=layer, target=target), layer=layer, mode=mode)
    return guided_backprop(model, X, target=target) * heat[:, None]
