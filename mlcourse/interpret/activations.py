"""Feature maps of any layer, captured with forward hooks.

A forward hook is a function PyTorch calls right after a module's
``forward``, with the module's inputs and output. Registering one on a layer
lets us look inside a trained network without changing its code -- the first
step of every white-box method (Zeiler & Fergus 2014 start by showing what
each layer's feature maps respond to). Hooks must be removed afterwards, or
they keep firing (and keep tensors alive) on every later call;
:func:`capture` removes them on exit, also when the block raises.

Example
-------
>>> with capture(model, ["conv1", "relu1"]) as maps:   # doctest: +SKIP
...     model(x)
>>> maps["relu1"].shape                                 # doctest: +SKIP
torch.Size([8, 16, 28, 28])
"""

from __future__ import annotations

from contextlib import contextmanager

import pandas as pd
import torch
from torch import nn

from mlcourse.config import device_of, eval_mode

__all__ = ["resolve_layers", "capture", "feature_maps", "layer_table"]


def resolve_layers(model: nn.Module, layers) -> dict[str, nn.Module]:
    """Turn layer names and/or modules into ``{name: module}``, names as in ``model.named_modules()``.

    Parameters
    ----------
    layers : str, nn.Module, or a list of them
        Dotted names (``"conv1"``, ``"features.3"``) or submodules of ``model``.
    """
    if isinstance(layers, (str, nn.Module)):
        layers = [layers]
    by_name = dict(model.named_modules())
    name_of = {id(m): n for n, m in by_name.items()}
    resolved = {}
    for layer in layers:
        if isinstance(layer, str):
            if layer not in by_name or layer == "":
                known = ", ".join(n for n in by_name if n) or "(none)"
                raise ValueError(f"model has no layer named {layer!r}; its layers are: {known}")
            resolved[layer] = by_name[layer]
        elif isinstance(layer, nn.Module):
            if id(layer) not in name_of:
                raise ValueError(f"{type(layer).__name__} module {layer} is not part of the model")
            resolved[name_of[id(layer)] or "model"] = layer
        else:
            raise ValueError(f"a layer must be a name or an nn.Module, got {layer!r}")
    return resolved


@contextmanager
def capture(model: nn.Module, layers, *, detach: bool = True):
    """Record the outputs of ``layers`` during the forward passes run inside the block.

    Parameters
    ----------
    model : nn.Module
    layers : str, nn.Module, or a list of them
        See :func:`resolve_layers`.
    detach : bool
        Store detached copies (default). ``False`` keeps the outputs in the
        autograd graph, which gradient methods (Grad-CAM) need. Either way a
        later in-place layer cannot overwrite what was captured.

    Yields
    ------
    dict[str, torch.Tensor]
        Filled as the forward pass runs: layer name -> its output (the last
        call's, if a layer runs several times).
    """
    modules = resolve_layers(model, layers)
    maps: dict[str, torch.Tensor] = {}
    handles = []

    def hook_for(name):
        def hook(module, inputs, output):
            if detach:
                maps[name] = output.detach().clone()
                return None
            # hand the next layer a copy, so that an in-place op there (ReLU(inplace=True))
            # cannot overwrite the captured tensor; gradients still flow through the copy
            maps[name] = output
            return output.clone()
        return hook

    try:
        for name, module in modules.items():
            handles.append(module.register_forward_hook(hook_for(name)))
        yield maps
    finally:
        for handle in handles:
            handle.remove()


def feature_maps(model: nn.Module, x: torch.Tensor, layers) -> dict[str, torch.Tensor]:
    """Run ``model(x)`` without gradients and return the feature maps of ``layers``.

    Returns
    -------
    dict[str, torch.Tensor]
        Layer name -> output: ``(N, K, L')`` for a 1D conv layer along DNA,
        ``(N, K, H', W')`` for a 2D one.
    """
    with torch.no_grad(), eval_mode(model), capture(model, layers) as maps:
        model(x.to(device_of(model)))
    missing = [name for name in resolve_layers(model, layers) if name not in maps]
    if missing:
        raise ValueError(f"layers {missing} were not called in the model's forward pass")
    return dict(maps)


def layer_table(model: nn.Module, x: torch.Tensor) -> pd.DataFrame:
    """One row per leaf layer, in the order it runs: name, type and output shape for input ``x``.

    Use it to pick a layer to look at, and to watch the sequence or image
    shrink through valid convolutions and pooling.
    """
    leaves = {n: m for n, m in model.named_modules() if n and not list(m.children())}
    rows = []

    def hook_for(name):
        def hook(module, inputs, output):
            rows.append({"layer": name, "type": type(module).__name__,
                         "output shape": tuple(output.shape[1:])})
        return hook

    handles = [m.register_forward_hook(hook_for(n)) for n, m in leaves.items()]
    try:
        with torch.no_grad(), eval_mode(model):
            model(x.to(device_of(model)))
    finally:
        for handle in handles:
            handle.remove()
    return pd.DataFrame(rows)
