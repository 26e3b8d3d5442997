"""Plots for the course: sequence and attribution logos, heatmaps, image grids.

Every function draws on the Axes it is given (or a new one) and returns the Axes,
so that notebooks can add titles and annotations.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mlcourse.dna import ALPHABET

__all__ = ["logo", "mark_sites"]


def _axes(ax, figsize=(10, 2)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def _to_numpy(values) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=float)


def logo(matrix, ax=None, title: str | None = None, ylabel: str = "", **kwargs):
    """Draw a ``(4, L)`` matrix (ACGT rows) as a sequence logo with logomaker.

    Use it for PWMs in bits, for attributions (positive letters up, negative down)
    and for one-hot x attribution products.
    """
    import logomaker

    matrix = _to_numpy(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != 4:
        raise ValueError(f"logo expects a (4, L) matrix in ACGT order, got shape {matrix.shape}")
    ax = _axes(ax, figsize=(max(4, matrix.shape[1] * 0.25), 2))
    frame = pd.DataFrame(matrix.T, columns=list(ALPHABET))
    logomaker.Logo(frame, ax=ax, **kwargs)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return ax


def mark_sites(ax, sites, color="tab:orange", alpha=0.2, label="planted motif"):
    """Shade ground-truth motif sites (objects with ``start`` and ``end``) on a position axis."""
    for i, site in enumerate(sites):
        ax.axvspan(site.start - 0.5, site.end - 0.5, color=color, alpha=alpha,
                   label=label if i == 0 else None)
    return ax
