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
import os
import time
import warnings
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
    "History", "NotConvergedWarning", "fit", "predict", "evaluate", "binary_metrics", "save", "load",
    "as_tensors", "as_inputs",
]

TASKS = ("binary", "multiclass", "regression")


class NotConvergedWarning(UserWarning):
    """:func:`fit` used all its epochs while the validation metric was still improving."""

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
    still_improving : bool
        Whether training ran out of ``epochs`` while the validation metric was
        still improving (it improved within the last ``patience`` epochs): the
        model has probably not converged; :func:`fit` warns (:class:`NotConvergedWarning`).
    """

    metric: str
    epochs: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    valid_metric: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    still_improving: bool = False

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
    """``(X, y)`` tensors from a SeqDataset (``.X``, ``.y``) or an ``(X, y)`` pair, checked.

    Labels become float32 for ``binary`` and ``regression`` and int64 for
    ``multiclass``; inputs go through :func:`as_inputs`.

    Raises
    ------
    ValueError
        On empty data, mismatched lengths, non-finite inputs or labels, and labels
        outside the task's set (binary: 0 and 1; multiclass: 0, 1, 2, ...), naming
        ``where``, the row and the value.
    """
    if hasattr(data, "X") and hasattr(data, "y"):
        X, y = data.X, data.y
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        X, y = data
    else:
        raise ValueError(
            f"{where} must be a SeqDataset or an (X, y) pair of tensors, got {type(data).__name__}"
        )
    X, y = as_inputs(X, f"{where} X"), _numbers(y, f"{where} labels y")
    if len(X) == 0:
        raise ValueError(f"{where} is empty: no examples to train or evaluate on")
    if y.ndim == 0 or len(X) != len(y):
        raise ValueError(f"{where}: {len(X)} inputs but {y.numel() if y.ndim else 'a scalar'} labels")
    return X, _labels(y, task, where)


def as_inputs(X, where: str = "X") -> torch.Tensor:
    """Model inputs as a tensor, checked: every value finite, one-hot integers made float32.

    Integer or boolean arrays of 3 or more dimensions holding only 0 and 1 (one-hot
    DNA ``(N, 4, L)``, binary images) become float32; 2-d integers stay as they
    are (token ids ``(N, T)`` for embedding models).

    Raises
    ------
    ValueError
        For inputs that are not numbers (e.g. DNA strings: use
        :func:`mlcourse.dna.one_hot`), a NaN or infinite value (naming ``where``,
        its index and value), or integer images with values other than 0 and 1.
    """
    X = _numbers(X, where)
    if X.ndim == 0:
        raise ValueError(f"{where} is a single number ({X.item()!r}): expected a batch, one example per row")
    if X.dtype == torch.bool:
        return X.float()
    if X.is_floating_point():
        _check_finite(X, where)
        return X
    if X.ndim >= 3:
        if X.numel() and not bool(((X == 0) | (X == 1)).all()):
            raise ValueError(
                f"{where} holds {X.dtype} values up to {int(X.max())}: convert it to float first "
                "(MNIST digits: mlcourse.datasets.mnist.as_images scales bytes to [0, 1])"
            )
        return X.float()
    return X


def _numbers(values, where: str) -> torch.Tensor:
    """A numeric tensor from a tensor, array or list; ``ValueError`` naming ``where`` otherwise."""
    if isinstance(values, torch.Tensor):
        tensor = values
    else:
        array = np.asarray(values) if not isinstance(values, (str, bytes, dict, set)) else None
        if array is None or array.dtype.kind not in "biuf":
            kind = type(values).__name__ if array is None else f"an array of {array.dtype}"
            raise ValueError(
                f"{where} must be numbers (a tensor or numeric array), got {kind}; "
                "DNA strings become inputs with mlcourse.dna.one_hot"
            )
        # a read-only array (pandas' copy-on-write, np.frombuffer) is copied: torch cannot share it
        tensor = torch.as_tensor(array if array.flags.writeable else array.copy())
    if tensor.is_complex():
        raise ValueError(f"{where} is complex ({tensor.dtype}): expected real numbers")
    return tensor


def _check_finite(values: torch.Tensor, where: str) -> None:
    bad = ~torch.isfinite(values)
    if bool(bad.any()):
        index = tuple(int(i) for i in bad.nonzero()[0])
        raise ValueError(
            f"{where} has {values[index].item()} at row {index[0]} (index {list(index)}); "
            f"{int(bad.sum())} value(s) are NaN or infinite: clean or drop those rows first"
        )


def _labels(y: torch.Tensor, task: str, where: str) -> torch.Tensor:
    """Labels as the task needs them; ``ValueError`` naming the row and value of the first bad one."""
    name = f"{where} labels y"
    if y.dtype == torch.bool:
        y = y.long()
    if y.is_floating_point():
        _check_finite(y, name)
    if task == "regression":
        return y.float()
    flat = y.reshape(-1)
    per_row = max(flat.numel() // max(len(y), 1), 1) if y.ndim else 1
    if task == "binary":
        bad = torch.nonzero((flat != 0) & (flat != 1)).flatten()
        if len(bad):
            value = flat[bad[0]].item()
            hint = (" (-1/1 labels become 0/1 with (y + 1) / 2)" if value == -1 else
                    "; more than two classes need task='multiclass'")
            raise ValueError(f"{name}: label {value:g} at row {int(bad[0]) // per_row} is not 0 or 1{hint}")
        return y.float()
    bad = torch.nonzero((flat < 0) | (flat != flat.round())).flatten()
    if len(bad):
        value = flat[bad[0]].item()
        raise ValueError(
            f"{name}: label {value:g} at row {int(bad[0]) // per_row} is not a class number 0, 1, 2, ... "
            "(task='multiclass')"
        )
    return y.long()


def _check_outputs(out: np.ndarray, y: torch.Tensor, task: str, where: str) -> None:
    """Whether the model's outputs (for a few rows) suit the task and the labels."""
    shape = tuple(out.shape)
    if task == "multiclass":
        if out.ndim != 2 or shape[1] < 2:
            raise ValueError(f"task='multiclass' needs (N, C) class scores, the model gives {shape}")
        top = int(y.max())
        if top >= shape[1]:
            row = int(torch.nonzero(y == top)[0, 0])
            raise ValueError(
                f"{where} labels y: label {top} at row {row}, but the model gives {shape[1]} class scores "
                f"(labels 0..{shape[1] - 1})"
            )
    elif task == "binary" and out.ndim != 1:
        raise ValueError(
            f"task='binary' needs one logit per example, the model gives {shape} "
            "(two class scores: use task='multiclass')"
        )
    elif task == "regression" and shape[1:] != tuple(y.shape[1:]):
        raise ValueError(f"{where}: the model gives outputs of shape {shape}, the labels y {tuple(y.shape)}")


def _on(X: torch.Tensor, model: nn.Module, device) -> torch.Tensor:
    """``X`` on ``device``, floats in the dtype of the model's parameters."""
    param = next(model.parameters(), None)
    if X.is_floating_point() and param is not None and param.is_floating_point():
        return X.to(device=device, dtype=param.dtype)
    return X.to(device)


def _check_task(task: str) -> None:
    if not isinstance(task, str) or task not in TASKS:
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
    _check_finite(torch.as_tensor(out), f"the model's outputs on {where}")
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
    if not isinstance(model, nn.Module) or next(model.parameters(), None) is None:
        raise ValueError(f"model must be a torch nn.Module with parameters to train, got {type(model).__name__}")
    epochs = scale(full=30, fast=3) if epochs is None else epochs
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("patience", patience)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    for name, value in (("lr", lr), ("weight_decay", weight_decay)):
        if not isinstance(value, (int, float, np.number)) or isinstance(value, bool) or not np.isfinite(value) \
                or value < 0:
            raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    if device is None:
        device = device_of(model)
    model.to(device)
    X, y = as_tensors(train, task, "training data")
    X, y = _on(X, model, device), y.to(device)
    _check_outputs(predict(model, X[:2], device=device), y.cpu(), task, "training data")
    if valid is not None:
        Xv, yv = as_tensors(valid, task, "validation data")
        _check_outputs(predict(model, Xv[:2], device=device), yv, task, "validation data")
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
            if not torch.isfinite(loss):
                raise ValueError(
                    f"the training loss became {loss.item()} at epoch {epoch}: the data are finite, so "
                    f"training diverged; try a smaller lr (now {lr})"
                )
            loss.backward()
            try:
                optimizer.step()
            except RuntimeError as err:  # e.g. an lr so large that Adam's update overflows
                raise ValueError(f"the Adam step failed at epoch {epoch} with lr={lr}, weight_decay={weight_decay}: "
                                 f"{err}") from err
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
    if valid is not None and not history.stopped_early:
        _warn_not_converged(history, patience)
    model.eval()
    return history


def _warn_not_converged(history: History, patience: int) -> None:
    """Record and warn that training stopped at its epoch limit, still improving."""
    history.still_improving = True
    last, best = history.epochs[-1], history.best_epoch
    gain = history.best_metric - (history.valid_metric[-patience - 1] if last > patience else np.nan)
    since = f" ({gain:+.4f} over the last {patience} epochs)" if np.isfinite(gain) else ""
    warnings.warn(
        f"fit stopped at epochs={last} while the {history.metric} was still improving: best "
        f"{history.best_metric:.4f} at epoch {best}{since}; the model has probably not converged. "
        "Train longer (a larger epochs=; early stopping ends it when it stops improving) or "
        "faster (e.g. lr=3e-3, batch_size=64)",
        NotConvergedWarning,
        stacklevel=3,
    )


def predict(model: nn.Module, X, batch_size: int = 512, device=None) -> np.ndarray:
    """Raw model outputs (logits for classifiers) for ``X``, in eval mode, without gradients.

    ``X`` is a tensor, an array or a SeqDataset. A trailing output dimension of
    size 1 is dropped, so a binary model gives shape ``(N,)``.
    """
    if hasattr(X, "X") and hasattr(X, "y"):
        X = X.X
    X = as_inputs(X)
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if device is None:
        device = device_of(model)
    outs = []
    with torch.inference_mode(), eval_mode(model):
        for i in range(0, len(X), batch_size):
            batch = _on(X[i : i + batch_size], model, device)
            try:
                outs.append(model(batch).float().cpu())
            except (RuntimeError, IndexError) as err:  # torch's shape and dtype errors
                if isinstance(err, torch.cuda.OutOfMemoryError):
                    raise
                raise ValueError(
                    f"the model cannot take X of dtype {X.dtype} and shape {tuple(X.shape)}: {err}"
                ) from err
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
    out = predict(model, X, batch_size=batch_size)
    _check_outputs(out, y, task, "evaluation data")
    y = y.numpy()
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
    y = _labels(_numbers(y, f"{where} labels y").reshape(-1), "binary", where).numpy()
    scores = _numbers(scores, f"{where} scores").reshape(-1).double()
    _check_finite(scores, f"{where} scores")
    scores = scores.numpy()
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
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise ValueError(f"path must be a file name such as 'model.pt', got {path!r:.60}")
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder: save to a file in it, e.g. {path / 'model.pt'}")
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
    if not isinstance(path, (str, os.PathLike)) or not Path(path).is_file():
        raise ValueError(f"no checkpoint at {path!r:.60}: path must name a file written by mlcourse.train.save")
    path = Path(path)
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
