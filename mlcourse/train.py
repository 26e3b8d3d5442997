"""Train, evaluate, save and load models: one small loop for every model in the course.

:func:`fit` is minibatch training with Adam (Kingma & Ba 2015) and early
stopping on a validation metric, restoring the best weights at the end, as
DeepBind (Alipanahi et al. 2015) and Zeng et al. (2016) trained their CNNs.
It takes a :class:`~mlcourse.datasets.base.SeqDataset` or an ``(X, y)`` pair of
tensors, so the same loop trains DNA models (``X`` of shape ``(N, 4, L)``),
image models ``(N, C, H, W)`` and token models ``(N, T)`` int64.

The data are indexed as whole tensors (one gather per minibatch, no
``DataLoader`` and no per-item collation), so it runs as fast as a hand-written
PyTorch loop over the same batches (``benchmarks/bench_train.py`` measures it).
Under ``mlcourse.setup(seed)`` the order of minibatches, the initial weights and
dropout all come from torch's seeded generator: on the CPU a run is repeatable.

Tasks
-----
``"binary"``
    One logit per example, ``BCEWithLogitsLoss``; early stopping on validation ROC-AUC.
``"multiclass"``
    ``(N, C)`` logits and integer labels, cross-entropy; early stopping on accuracy.
``"regression"``
    Real-valued outputs, mean squared error; early stopping on ``-MSE``.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve
from torch import nn
from tqdm.auto import tqdm

from mlcourse.config import device_of, eval_mode, scale
from mlcourse.files import atomic_path

__all__ = [
    "History", "fit", "predict", "evaluate", "binary_metrics", "save", "load", "as_tensors",
]

TASKS = ("binary", "multiclass", "regression")
_METRIC = {"binary": "valid AUC", "multiclass": "valid accuracy", "regression": "valid -MSE"}


@dataclass
class History:
    """What happened during :func:`fit`, one entry per epoch.

    Attributes
    ----------
    epochs : list of int
        Epoch numbers, from 1.
    train_loss : list of float
        Mean training loss of each epoch.
    valid_metric : list of float
        Validation AUC, accuracy or -MSE after each epoch (NaN without validation data).
    seconds : list of float
        Wall-clock seconds of each epoch (training and validation).
    metric : str
        What ``valid_metric`` measures.
    best_epoch : int
        The epoch whose weights the model holds after :func:`fit`.
    stopped_early : bool
        Whether training stopped because the metric had not improved for ``patience`` epochs.
    """

    metric: str
    epochs: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    valid_metric: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False

    @property
    def best_metric(self) -> float:
        """The validation metric of the best epoch."""
        return self.valid_metric[self.best_epoch - 1] if self.best_epoch else float("nan")

    def __repr__(self) -> str:
        return (
            f"History({len(self.epochs)} epochs, best epoch {self.best_epoch}: "
            f"{self.metric} {self.best_metric:.4f}, {sum(self.seconds):.1f} s)"
        )

    def plot(self, ax=None):
        """Training loss (left axis) and the validation metric (right axis) per epoch; returns the Axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3))
        ax.plot(self.epochs, self.train_loss, "o-", color="tab:blue", label="training loss")
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss", color="tab:blue")
        right = ax.twinx()
        right.plot(self.epochs, self.valid_metric, "s-", color="tab:orange", label=self.metric)
        right.set_ylabel(self.metric, color="tab:orange")
        if self.best_epoch:
            ax.axvline(self.best_epoch, color="grey", ls=":", label="best epoch (restored)")
        ax.legend(loc="center right")
        return ax


def as_tensors(data, task: str = "binary", where: str = "data") -> tuple[torch.Tensor, torch.Tensor]:
    """``(X, y)`` tensors from a SeqDataset (``.X``, ``.y``) or an ``(X, y)`` pair.

    Labels become float32 for ``binary`` and ``regression`` and int64 for
    ``multiclass``. Raises ``ValueError`` on empty data or mismatched lengths.
    """
    if hasattr(data, "X") and hasattr(data, "y"):
        X, y = data.X, data.y
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        X, y = data
    else:
        raise ValueError(
            f"{where} must be a SeqDataset or an (X, y) pair of tensors, got {type(data).__name__}"
        )
    X = X if isinstance(X, torch.Tensor) else torch.as_tensor(np.asarray(X))
    y = torch.as_tensor(np.asarray(y)) if not isinstance(y, torch.Tensor) else y
    if len(X) == 0:
        raise ValueError(f"{where} is empty: no examples to train or evaluate on")
    if len(X) != len(y):
        raise ValueError(f"{where}: {len(X)} inputs but {len(y)} labels")
    y = y.long() if task == "multiclass" else y.float()
    return X, y


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")


def _loss_fn(task: str):
    return {
        "binary": nn.BCEWithLogitsLoss(),
        "multiclass": nn.CrossEntropyLoss(),
        "regression": nn.MSELoss(),
    }[task]


def _match(out: torch.Tensor, y: torch.Tensor, task: str) -> torch.Tensor:
    """Drop a trailing size-1 output dimension when the labels have none."""
    if task != "multiclass" and out.ndim == y.ndim + 1 and out.shape[-1] == 1:
        return out.squeeze(-1)
    return out


def _score(task: str, out: np.ndarray, y: np.ndarray, where: str) -> float:
    """The early-stopping metric: AUC, accuracy or -MSE (higher is better)."""
    if task == "binary":
        return _auc(y, out, where)
    if task == "multiclass":
        return float((out.argmax(axis=1) == y).mean())
    return -float(np.mean((out.reshape(y.shape) - y) ** 2))


def _auc(y: np.ndarray, scores: np.ndarray, where: str) -> float:
    classes = np.unique(y)
    if len(classes) < 2:
        raise ValueError(
            f"{where} has only label {classes[0]:g} ({len(y)} rows): ROC-AUC needs bound and "
            "unbound examples"
        )
    return float(roc_auc_score(y, scores))


def fit(
    model: nn.Module,
    train,
    valid=None,
    *,
    task: str = "binary",
    epochs: int | None = None,
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    patience: int = 3,
    device=None,
    progress: bool = True,
) -> History:
    """Train ``model`` with Adam on minibatches, early stopping and best-weights restore.

    Parameters
    ----------
    model : nn.Module
        Any model; it is trained in place (and moved to ``device``).
    train, valid : SeqDataset or (X, y) tensors
        Training and validation data. Without ``valid`` it trains all ``epochs``
        and keeps the final weights.
    task : {"binary", "multiclass", "regression"}
        Loss and validation metric (see the module docstring).
    epochs : int, optional
        Most epochs to train (default: 30, or 3 in FAST mode).
    batch_size, lr, weight_decay : training settings (Adam with L2 ``weight_decay``).
    patience : int
        Stop after this many epochs without a better validation metric.
    device : torch.device or str, optional
        Where to train (default: where the model's parameters are).
    progress : bool
        Show a tqdm bar (a widget in Jupyter, text elsewhere).

    Returns
    -------
    History
        Per-epoch loss, validation metric and time; ``best_epoch`` is the one restored.
    """
    _check_task(task)
    epochs = scale(full=30, fast=3) if epochs is None else epochs
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("patience", patience)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if device is None:
        device = device_of(model)
    model.to(device)
    X, y = (t.to(device) for t in as_tensors(train, task, "training data"))
    if valid is not None:
        Xv, yv = as_tensors(valid, task, "validation data")
        if task == "binary":
            _auc(yv.numpy(), np.zeros(len(yv)), "validation data")
    loss_fn = _loss_fn(task)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    history = History(metric=_METRIC[task])
    best, best_state, waited = -np.inf, None, 0
    n = len(X)
    bar = tqdm(range(1, epochs + 1), desc="training", unit="epoch", disable=not progress)
    for epoch in bar:
        start = time.perf_counter()
        model.train()
        total = 0.0
        order = torch.randperm(n).to(device)
        for i in range(0, n, batch_size):
            idx = order[i : i + batch_size]
            yb = y[idx]
            loss = loss_fn(_match(model(X[idx]), yb, task), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        metric = np.nan
        if valid is not None:
            metric = _score(task, predict(model, Xv, device=device), yv.numpy(), "validation data")
        history.epochs.append(epoch)
        history.train_loss.append(total / n)
        history.valid_metric.append(float(metric))
        history.seconds.append(time.perf_counter() - start)
        bar.set_postfix(loss=f"{total / n:.4f}", **({"valid": f"{metric:.4f}"} if valid is not None else {}))
        if valid is None:
            history.best_epoch = epoch
            continue
        if metric > best:
            best, waited, history.best_epoch = metric, 0, epoch
            best_state = copy.deepcopy(model.state_dict())
        else:
            waited += 1
            if waited >= patience:
                history.stopped_early = True
                break
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history


def predict(model: nn.Module, X, batch_size: int = 512, device=None) -> np.ndarray:
    """Raw model outputs (logits for classifiers) for ``X``, in eval mode, without gradients.

    ``X`` is a tensor, an array or a SeqDataset. A trailing output dimension of
    size 1 is dropped, so a binary model gives shape ``(N,)``.
    """
    if hasattr(X, "X") and hasattr(X, "y"):
        X = X.X
    X = X if isinstance(X, torch.Tensor) else torch.as_tensor(np.asarray(X))
    if device is None:
        device = device_of(model)
    outs = []
    with torch.inference_mode(), eval_mode(model):
        for i in range(0, len(X), batch_size):
            outs.append(model(X[i : i + batch_size].to(device)).float().cpu())
    out = torch.cat(outs).numpy() if outs else np.zeros(0, dtype=np.float32)
    return out.squeeze(-1) if out.ndim == 2 and out.shape[1] == 1 else out


def evaluate(model: nn.Module, data, task: str = "binary", batch_size: int = 512) -> dict:
    """Score ``model`` on ``data`` (a SeqDataset or ``(X, y)`` tensors).

    Returns
    -------
    dict
        ``binary``: ``auc`` (ROC-AUC), ``pr_auc`` (average precision), ``fpr``, ``tpr``
        (the ROC curve) and ``n``; ``multiclass``: ``accuracy``, ``n``; ``regression``: ``mse``, ``n``.

    Raises
    ------
    ValueError
        For empty data, or binary data with a single class (AUC is undefined).
    """
    _check_task(task)
    X, y = as_tensors(data, task, "evaluation data")
    out, y = predict(model, X, batch_size=batch_size), y.numpy()
    if task == "binary":
        return binary_metrics(y, out)
    if task == "multiclass":
        return {"accuracy": _score(task, out, y, "evaluation data"), "n": len(y)}
    return {"mse": -_score(task, out, y, "evaluation data"), "n": len(y)}


def binary_metrics(y, scores, where: str = "evaluation data") -> dict:
    """ROC-AUC, PR-AUC (average precision) and the ROC curve of ``scores`` against 0/1 labels ``y``.

    Any score that ranks bound above unbound works: logits, probabilities, PWM
    scan scores, SVM margins. Returns ``auc``, ``pr_auc``, ``fpr``, ``tpr``, ``n``.
    ``ValueError`` for empty or single-class labels (naming ``where``).
    """
    y, scores = np.asarray(y, dtype=float).reshape(-1), np.asarray(scores, dtype=float).reshape(-1)
    if len(y) == 0:
        raise ValueError(f"{where} is empty: AUC needs bound and unbound examples")
    if len(y) != len(scores):
        raise ValueError(f"{where}: {len(y)} labels but {len(scores)} scores")
    auc = _auc(y, scores, where)
    fpr, tpr, _ = roc_curve(y, scores)
    return {"auc": auc, "pr_auc": float(average_precision_score(y, scores)),
            "fpr": fpr, "tpr": tpr, "n": len(y)}


def save(model: nn.Module, path, **meta) -> Path:
    """Write a checkpoint: the weights, the architecture (for Zeng CNNs) and ``meta``.

    The file is written to a temporary name and renamed, so it is never half-written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "architecture": getattr(model, "architecture", None),
        "seq_len": getattr(model, "seq_len", None),
        "model_class": type(model).__name__,
        "meta": meta,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load(path, model: nn.Module | None = None) -> nn.Module:
    """Load a checkpoint written by :func:`save`; returns the model in eval mode.

    A Zeng CNN is rebuilt from the architecture stored in the file; any other
    model must be passed as ``model`` (its weights are replaced). The saved
    ``meta`` is attached as ``model.checkpoint_meta``.

    Raises
    ------
    ValueError
        If the file is missing or not a checkpoint, or if ``model`` is of
        another architecture than the one saved.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path} is not a readable checkpoint: {err}") from err
    if not isinstance(payload, dict) or "state_dict" not in payload:
        raise ValueError(f"{path} is not an mlcourse checkpoint (no state_dict)")
    saved_arch = payload.get("architecture")
    if model is None:
        if saved_arch is None:
            raise ValueError(
                f"{path} holds a {payload.get('model_class')} model: pass an instance as model= to load it"
            )
        from mlcourse.models.zeng import build

        model = build(saved_arch, payload["seq_len"])
    own_arch = getattr(model, "architecture", None)
    if saved_arch != own_arch or type(model).__name__ != payload.get("model_class"):
        raise ValueError(
            f"{path} holds a {saved_arch or payload.get('model_class')!r} checkpoint, "
            f"but the model given is {own_arch or type(model).__name__!r}"
        )
    if payload.get("seq_len") != getattr(model, "seq_len", None):
        raise ValueError(
            f"{path} was saved for {payload.get('seq_len')} bp inputs, the model takes "
            f"{getattr(model, 'seq_len', None)} bp"
        )
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as err:
        raise ValueError(f"{path} does not fit the model given: {err}") from err
    model.checkpoint_meta = payload.get("meta", {})
    return model.eval()
