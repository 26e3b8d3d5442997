"""Which number a method explains, and how the model is run: one helper for every method.

Every attribution method asks the same two questions. *Which output?* A DNA
model gives one logit per sequence ``(N,)`` (or ``(N, 1)``); a classifier gives
``C`` class scores ``(N, C)``, and ``target`` names the class -- one for all
examples or one per example. :func:`select` answers it, with an error that
names the shape and the target when they do not fit. *How is the model run?*
In eval mode (no dropout; the training flag is restored afterwards), without
gradients unless the method needs them, in batches, on the model's device.
:func:`score` does all of that; gradient methods call :func:`select` on an
output they computed themselves.

``output="probability"`` turns logits into the probabilities that Carter et
al. (2019) threshold in SIS: the sigmoid of a single logit, or the softmax
probability of class ``target``.
"""

from __future__ import annotations

import torch

from mlcourse.config import device_of, eval_mode

__all__ = ["OUTPUTS", "as_batch", "per_example", "class_index", "select", "probability", "score"]

OUTPUTS = ("raw", "probability")


def as_batch(X, where: str = "X") -> torch.Tensor:
    """``X`` as a float tensor batch ``(N, ...)`` with finite values; ``ValueError`` naming ``where`` otherwise."""
    if not isinstance(X, torch.Tensor):
        if isinstance(X, (str, bytes, dict, set)) or X is None:
            raise ValueError(f"{where} must be a tensor batch (N, ...), got {type(X).__name__}")
        try:
            X = torch.as_tensor(X)
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(f"{where} must be a tensor batch (N, ...), got {type(X).__name__}") from None
    if X.ndim < 2 or X.shape[0] == 0:
        raise ValueError(f"{where} must be a batch (N, ...) with one example per row, got shape {tuple(X.shape)}")
    if X.is_complex() or not (X.is_floating_point() or X.dtype in (torch.bool, torch.uint8, torch.int64, torch.int32)):
        raise ValueError(f"{where} must hold real numbers, got {X.dtype}")
    X = X if X.is_floating_point() else X.float()
    if not bool(torch.isfinite(X).all()):
        raise ValueError(f"{where} has NaN or infinite values: an attribution of them would be NaN")
    return X


def per_example(target, n: int, device=None) -> torch.Tensor | None:
    """``target`` as one class index per example: ``None`` stays ``None``, else a ``LongTensor (n,)``.

    ``target`` is an int (the same class for all) or a sequence/tensor of ``n`` ints.
    """
    if target is None:
        return None
    try:
        index = torch.as_tensor(target, device=device)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"target must be a class index or one per example, got {target!r:.40}") from None
    if index.is_complex() or (index.is_floating_point() and not bool((index == index.round()).all())) \
            or index.numel() == 0:
        raise ValueError(f"target must be whole class indices, got {target!r:.40}")
    index = index.long().reshape(-1)
    if index.numel() == 1:
        return index.expand(n)
    if index.numel() != n:
        raise ValueError(f"target has {index.numel()} entries for {n} examples")
    return index


def class_index(target, n: int, classes: int, device=None) -> torch.Tensor:
    """One class index per example ``(n,)`` for outputs with ``classes`` columns, checked.

    ``target=None`` is allowed only when there is a single column.
    """
    if target is None:
        if classes != 1:
            raise ValueError(f"the model gives {classes} scores per input; pass target=class index "
                             "to pick one score per input")
        target = 0
    index = per_example(target, n, device)
    if (index < 0).any() or (index >= classes).any():
        raise ValueError(f"target {target!r} is outside the {classes} classes")
    return index


def select(output, target=None) -> torch.Tensor:
    """One score per example from a model's output ``(N,)``, ``(N, 1)`` or ``(N, C)``.

    Parameters
    ----------
    output : torch.Tensor
        What the model returned for a batch of ``N`` inputs.
    target : None, int, or N ints
        ``None`` (or 0) for one score per input; the class (one for all, or one
        per example) for ``(N, C)`` outputs.

    Returns
    -------
    torch.Tensor
        ``(N,)``, still attached to the autograd graph when ``output`` is.
    """
    if not isinstance(output, torch.Tensor):
        raise ValueError(f"the model must return a tensor, got {type(output).__name__}")
    shape = tuple(output.shape)
    if output.ndim == 2 and output.shape[1] == 1 and target is None:
        output = output[:, 0]
    if output.ndim == 1:
        if target is not None and not (isinstance(target, int) and target == 0):
            raise ValueError(f"the model returned shape {shape}, one score per input; target must be None, "
                             f"got {target!r}")
        return output
    if output.ndim != 2:
        raise ValueError(f"the model returned shape {shape}; expected (N,) (one score per input) "
                         "or (N, C) with a target class")
    if target is None:
        raise ValueError(f"the model returned shape {shape}, {shape[1]} scores per input; pass "
                         "target=class index to pick one score per input")
    index = class_index(target, shape[0], shape[1], output.device)
    return output.gather(1, index[:, None])[:, 0]


def probability(output: torch.Tensor, target=None) -> torch.Tensor:
    """Probabilities ``(N,)`` from logits: sigmoid of one logit per input, or softmax of class ``target``."""
    if target is None and isinstance(output, torch.Tensor) and (
            output.ndim == 1 or output.ndim == 2 and output.shape[1] == 1):
        return torch.sigmoid(output.reshape(-1))
    if target is not None and isinstance(output, torch.Tensor) and output.ndim == 2:
        return select(torch.softmax(output, dim=1), target)
    shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
    raise ValueError(f"model output of shape {shape} with target={target!r}: expected (N,) or (N, 1) "
                     "logits with target=None, or (N, C) logits with a class target")


def score(model, X: torch.Tensor, *, target=None, output: str = "raw", batch_size: int | None = None,
          grad: bool = False) -> torch.Tensor:
    """The score ``(N,)`` that a method explains, for every input of ``X``.

    Parameters
    ----------
    model : nn.Module or callable
        Maps a batch to ``(B,)``, ``(B, 1)`` or ``(B, C)`` outputs. A module runs
        in eval mode for the call (its training flag is restored afterwards).
    X : torch.Tensor
        The inputs ``(N, ...)``; each batch is moved to the model's device
        (:func:`mlcourse.config.device_of`).
    target : None, int or N ints
        See :func:`select`.
    output : {"raw", "probability"}
        The model's own values, or probabilities (:func:`probability`).
    batch_size : int, optional
        Inputs per model call; default all at once.
    grad : bool
        Keep the autograd graph (gradient methods); otherwise the model runs
        under ``torch.inference_mode()``.

    Returns
    -------
    torch.Tensor
        ``(N,)`` on the model's device.
    """
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    n = X.shape[0]
    step = n if batch_size is None else batch_size
    if not isinstance(step, int) or step < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    targets = per_example(target, n)
    pick = select if output == "raw" else probability
    device = device_of(model)
    scores = []
    with eval_mode(model), (torch.enable_grad() if grad else torch.inference_mode()):
        for start in range(0, n, step):
            part = None if targets is None else targets[start:start + step]
            scores.append(pick(model(X[start:start + step].to(device)), part))
    return torch.cat(scores) if scores else torch.zeros(0, device=device)
