"""First-layer filters: what a CNN's motif detectors look like, as PWMs and logos, matched to JASPAR.

A first-layer filter of a DNA CNN is a ``(4, W)`` weight matrix slid along the
one-hot sequence: its output at position ``j`` is
``sum_{b,i} w[b, i] x[b, j+i] + bias`` -- exactly a PWM log-odds scan. So a
filter can be read back as a motif in two ways:

* **from the weights** (:func:`weights_to_probs`). If a filter's score is the
  log-likelihood ratio of a site, the base probabilities are, column by
  column, ``p[b, i] = exp(w[b, i]) / sum_b' exp(w[b', i])`` -- a softmax per
  column, which is the inverse of "use a PWM's log-odds as a filter". The
  weights' scale is arbitrary (the next layer can compensate), so the
  logo's height is only relative.
* **from the data** (:func:`activation_motifs`), as DeepBind (Alipanahi et al.
  2015) and Basset (Kelley et al. 2016) did: collect every window of the
  input where the filter fires above a fraction of its maximum, and count the
  bases -- a position frequency matrix of what the filter actually detects.

Each learned motif is then compared with every JASPAR motif
(:func:`match_filters`, using :func:`mlcourse.motifs.best_jaspar_match`).

For image models the first-layer filters are small images
(:func:`filter_weights` + :func:`mlcourse.plot.image_grid`); Krizhevsky et al.
2012's AlexNet filters (edges, colour blobs) come from torchvision when its
weights are already cached (:func:`cached_imagenet_model`; nothing downloads).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from mlcourse.config import device_of, eval_mode
from mlcourse.motifs import Motif, best_jaspar_match, similarity

__all__ = [
    "first_conv",
    "filter_weights",
    "weights_to_probs",
    "weight_motifs",
    "activation_motifs",
    "trim",
    "match_filters",
    "best_filter_for",
    "filter_influence",
    "cached_imagenet_model",
]


def first_conv(model: nn.Module) -> nn.Conv1d | nn.Conv2d:
    """The first ``nn.Conv1d`` / ``nn.Conv2d`` in ``model`` (registration order); a bare conv layer is its own first conv."""
    for module in model.modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d)):
            return module
    raise ValueError(f"{type(model).__name__} has no Conv1d or Conv2d layer")


def filter_weights(model: nn.Module) -> np.ndarray:
    """First-layer filters as numpy: ``(K, 4, W)`` for DNA, ``(K, C, kh, kw)`` for images."""
    return first_conv(model).weight.detach().cpu().numpy().copy()


def _dna_conv(model: nn.Module) -> nn.Conv1d:
    conv = first_conv(model)
    if not isinstance(conv, nn.Conv1d) or conv.in_channels != 4:
        raise ValueError(f"expected a first layer Conv1d over 4 bases, got {conv}")
    return conv


def weights_to_probs(weights, scale: float = 1.0) -> np.ndarray:
    """Turn filter weights into base probabilities by a softmax over the 4 bases of each column.

    Parameters
    ----------
    weights : array ``(4, W)`` or ``(K, 4, W)``
    scale : float
        Inverse temperature: ``p = softmax(scale * w)``. Larger makes the
        motif look more specific; it does not change which base is preferred.

    Returns
    -------
    np.ndarray
        Same shape, columns summing to 1.
    """
    w = torch.as_tensor(np.asarray(weights, dtype=np.float64))
    if w.shape[-2] != 4:
        raise ValueError(f"weights must be (4, W) or (K, 4, W) in ACGT order, got shape {tuple(w.shape)}")
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    return torch.softmax(scale * w, dim=-2).numpy()


def weight_motifs(model: nn.Module, scale: float = 1.0) -> list[Motif]:
    """One :class:`~mlcourse.motifs.Motif` per first-layer filter, from its weights (``filter0``, ...)."""
    probs = weights_to_probs(filter_weights(_dna_conv(model)), scale)
    return [Motif.from_probs(p, name=f"filter{k}") for k, p in enumerate(probs)]


def activation_motifs(model: nn.Module, X: torch.Tensor, threshold: float = 0.5,
                      batch_size: int = 512) -> list[Motif]:
    """PWMs from the input windows that activate each first-layer filter most (DeepBind / Basset).

    For filter ``k`` with largest output ``m_k`` over all windows of ``X``,
    every window whose output reaches ``threshold * m_k`` adds its bases to
    filter ``k``'s counts.

    Parameters
    ----------
    model : nn.Module
        A DNA CNN; its first ``Conv1d`` is used (stride 1, no dilation).
    X : torch.Tensor
        One-hot sequences ``(N, 4, L)`` -- usually the positive test examples.
    threshold : float
        Fraction of the filter's maximum, in (0, 1].

    Returns
    -------
    list of Motif
        Named ``filter{k}``; ``.counts.sum(0)`` is the number of windows
        counted. A filter that never exceeds 0 gets a uniform one-site motif.
    """
    conv = _dna_conv(model)
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
    if conv.stride[0] != 1 or conv.dilation[0] != 1 or isinstance(conv.padding, str):
        raise ValueError(f"activation_motifs needs stride 1, dilation 1, numeric padding; got {conv}")
    if X.ndim != 3 or X.shape[1] != 4:
        raise ValueError(f"X must be one-hot DNA (N, 4, L), got shape {tuple(X.shape)}")
    width, pad = conv.kernel_size[0], conv.padding[0]
    with torch.no_grad():
        acts = torch.cat([conv(X[i:i + batch_size].to(conv.weight)).cpu() for i in range(0, len(X), batch_size)])
        top = acts.amax(dim=(0, 2))
        counts = torch.zeros(conv.out_channels, 4, width, dtype=torch.float64)
        for i in range(0, len(X), batch_size):
            xb = F.pad(X[i:i + batch_size].cpu().to(torch.float64), (pad, pad))
            windows = xb.unfold(2, width, 1)                     # (n, 4, L', W)
            fired = (acts[i:i + batch_size] >= threshold * top[None, :, None]) & (top[None, :, None] > 0)
            counts += torch.einsum("nkj,nbjw->kbw", fired.to(torch.float64), windows)
    counts = counts.numpy()
    empty = counts.sum(axis=1) == 0                              # (K, W): no base counted there
    counts = np.where(empty[:, None, :], 0.25, counts)
    return [Motif(f"filter{k}", c) for k, c in enumerate(counts)]


def trim(motif: Motif, min_ic: float = 0.5, min_width: int = 6) -> Motif:
    """Drop the low-information columns at both ends (IC below ``min_ic`` bits).

    A 24 bp filter usually holds a shorter motif plus noise on its flanks; the
    flanks would dilute the comparison with JASPAR. A core shorter than
    ``min_width`` (too short to match meaningfully: any few columns resemble
    some motif) leaves the motif unchanged.
    """
    core = motif.trim(min_ic)
    return core if core.width >= min_width else motif


def match_filters(motifs: list[Motif], candidates=None, min_ic: float = 0.5) -> pd.DataFrame:
    """The best JASPAR match of every learned motif, one row per filter.

    Each motif is trimmed (:func:`trim`) first, then ranked against ``candidates``
    (default: all vertebrate JASPAR CORE motifs -- about half a second per filter).

    Returns
    -------
    pandas.DataFrame
        Columns ``filter, consensus, ic_bits, match, matrix_id, score, offset,
        strand``, best score first (score: mean column Pearson correlation,
        :func:`mlcourse.motifs.similarity`).
    """
    rows = []
    for motif in motifs:
        core = trim(motif, min_ic)
        best, alignment = best_jaspar_match(core, candidates)[0]
        rows.append({"filter": motif.name, "consensus": core.consensus,
                     "ic_bits": float(motif.information_content().sum()),
                     "match": best.name, "matrix_id": best.matrix_id, "score": alignment.score,
                     "offset": alignment.offset, "strand": alignment.strand})
    return pd.DataFrame(rows).sort_values("score", ascending=False, ignore_index=True)


def best_filter_for(motifs: list[Motif], reference: Motif, min_ic: float = 0.5) -> tuple[int, float]:
    """Index and similarity of the learned motif (trimmed) that best matches ``reference``."""
    if not motifs:
        raise ValueError("no learned motifs given")
    scores = [similarity(trim(m, min_ic), reference).score for m in motifs]
    k = int(np.argmax(scores))
    return k, float(scores[k])


def filter_influence(model: nn.Module, X: torch.Tensor, *, batch_size: int = 512) -> np.ndarray:
    """How much the model's output depends on each first-layer filter (Kelley et al. 2016, Basset).

    Filter ``k`` is "nullified" by replacing its whole feature map with its
    mean activation over ``X``; its influence is the mean squared change of
    the model's output (logit) over ``X``. Use it to pick the filters worth
    looking at: many of a wide layer's filters are redundant or unused.

    Returns
    -------
    np.ndarray
        ``(K,)`` influences, one per filter (larger = more influential).
    """
    conv = first_conv(model)
    k_filters = conv.out_channels
    device = device_of(model)
    with torch.no_grad(), eval_mode(model):
        means = torch.zeros(k_filters, device=device)
        for i in range(0, len(X), batch_size):
            means += conv(X[i:i + batch_size].to(device)).sum(dim=tuple(range(2, X.ndim))).sum(0)
        means /= len(X) * np.prod(conv(X[:1].to(device)).shape[2:])
        state = {"k": None}

        def nullify(module, inputs, output):
            if state["k"] is None:
                return None
            output = output.clone()
            output[:, state["k"]] = means[state["k"]]
            return output

        handle = conv.register_forward_hook(nullify)
        try:
            influence = np.zeros(k_filters)
            for i in range(0, len(X), batch_size):
                xb = X[i:i + batch_size].to(device)
                state["k"] = None
                base = model(xb)
                for k in range(k_filters):
                    state["k"] = k
                    influence[k] += float(((model(xb) - base) ** 2).sum())
        finally:
            handle.remove()
    return influence / len(X)


def cached_imagenet_model(name: str = "alexnet") -> nn.Module | None:
    """A torchvision ImageNet model with pretrained weights -- only if they are already cached.

    Looks for the weights file of ``torchvision.models.get_model_weights(name).DEFAULT``
    in ``torch.hub.get_dir()/checkpoints`` (where torchvision caches downloads).
    Never downloads: returns ``None`` when the file is absent, and the
    notebooks then show the course's own models instead.
    """
    import torchvision

    try:
        weights = torchvision.models.get_model_weights(name).DEFAULT
    except ValueError as err:
        raise ValueError(f"unknown torchvision model {name!r}") from err
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    if not path.is_file():
        return None
    model = torchvision.models.get_model(name)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()
