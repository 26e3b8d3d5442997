"""Plots for the course: sequence and attribution logos, heatmaps, image grids, SIS highlights.

Every function draws on the Axes it is given (or a new one) and returns the Axes,
so that notebooks can add titles and annotations; :func:`highlight` returns HTML.
Sufficient input subsets are shown in one palette everywhere (:data:`SIS_COLOURS`):
SIS ``k`` of a collection has colour ``k`` on digits, DNA, reviews and in the widgets.
"""

from __future__ import annotations

import html

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import to_rgb

from mlcourse.dna import ALPHABET
from mlcourse.motifs import Motif, jaspar, similarity

__all__ = ["SIS_COLOURS", "logo", "motif_logo", "mark_sites", "image_grid", "sequence_heatmap", "position_track",
           "heatmap_overlay", "method_comparison", "sis_overlay", "ism_heatmap", "ism_logo", "sis_shading",
           "highlight", "consensus_logo", "sis_colour"]

SIS_COLOURS = ("#f4a261", "#8ecae6", "#b5e48c", "#cdb4db", "#ffd166", "#f48fb1")
"""The colour of SIS ``k`` is ``SIS_COLOURS[k % 6]``, in every plot and widget."""


def sis_colour(k: int) -> str:
    """The colour of the ``k``-th sufficient input subset of a collection."""
    return SIS_COLOURS[k % len(SIS_COLOURS)]


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


def _as_images(images) -> np.ndarray:
    """(N, H, W), (N, 1, H, W) or (N, 3, H, W) -> (N, H, W) or (N, H, W, 3) numpy."""
    images = _to_numpy(images)
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    elif images.ndim == 4 and images.shape[1] == 3:
        images = images.transpose(0, 2, 3, 1)
    elif images.ndim != 3:
        raise ValueError(f"expected images (N, H, W), (N, 1, H, W) or (N, 3, H, W), got shape {images.shape}")
    return images


def image_grid(images, ncols: int = 8, titles=None, cmap: str = "gray", symmetric: bool = False,
               size: float = 1.3, axes=None):
    """Show a batch of images (digits, filters, feature maps) in a grid; returns the array of Axes.

    ``symmetric=True`` centres a red-blue colour map on zero, per image, so that
    positive and negative weights or attributions are told apart. RGB images
    (``(N, 3, H, W)``) are rescaled to [0, 1] one by one.
    """
    images = _as_images(images)
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    if axes is None:
        _, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    axes = np.asarray(axes).reshape(-1)
    if len(axes) < n:
        raise ValueError(f"{n} images need {n} axes, got {len(axes)}")
    for i, ax in enumerate(axes):
        ax.axis("off")
        if i >= n:
            continue
        img = images[i]
        if img.ndim == 3:
            span = img.max() - img.min()
            ax.imshow((img - img.min()) / (span if span > 0 else 1))
        elif symmetric:
            m = np.abs(img).max() or 1.0
            ax.imshow(img, cmap="RdBu_r", vmin=-m, vmax=m)
        else:
            ax.imshow(img, cmap=cmap)
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=8)
    return axes


def sequence_heatmap(values, ax=None, sites=(), title: str | None = None,
                     ylabel: str = "channel", cmap: str = "viridis"):
    """Draw a ``(K, L)`` matrix (feature maps along a sequence, one row per channel) as a heatmap.

    Column ``j`` is position ``j``; pass ``sites`` (objects with ``start``/``end``)
    to outline planted motifs on the same axis.
    """
    values = _to_numpy(values)
    if values.ndim != 2:
        raise ValueError(f"sequence_heatmap expects a (K, L) matrix, got shape {values.shape}")
    ax = _axes(ax, figsize=(10, 0.25 * values.shape[0] + 1))
    image = ax.imshow(values, aspect="auto", cmap=cmap, interpolation="nearest")
    ax.figure.colorbar(image, ax=ax, pad=0.01)
    for site in sites:
        ax.axvline(site.start - 0.5, color="tab:red", lw=1)
        ax.axvline(site.end - 0.5, color="tab:red", lw=1)
    ax.set_xlabel("position")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return ax


def position_track(values, ax=None, sites=(), title: str | None = None, ylabel: str = "", **kwargs):
    """Plot one value per sequence position (a 1D Grad-CAM, a feature map) with planted sites shaded."""
    values = _to_numpy(values)
    if values.ndim != 1:
        raise ValueError(f"position_track expects one value per position (L,), got shape {values.shape}")
    ax = _axes(ax)
    ax.plot(np.arange(len(values)), values, **kwargs)
    mark_sites(ax, sites)
    ax.set_xlim(-0.5, len(values) - 0.5)
    ax.set_xlabel("position")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return ax


def heatmap_overlay(image, heat, ax=None, alpha: float = 0.7, cmap: str = "inferno", title: str | None = None):
    """Draw ``heat`` (e.g. a CAM) over ``image``; ``heat`` is resized bilinearly to the image if smaller.

    ``image`` is ``(H, W)``, ``(1, H, W)`` or ``(3, H, W)``; ``heat`` is ``(h, w)``. The heat is
    scaled to its own range and drawn more opaque where it is higher (up to ``alpha``), so the
    image shows through where the map is low; the default colour map (``inferno``) reads the
    same to colour-blind eyes and in greyscale.
    """
    import torch
    import torch.nn.functional as F

    img = _as_images(_to_numpy(image)[None])[0]
    heat = _to_numpy(heat)
    if heat.ndim != 2:
        raise ValueError(f"heat must be a (h, w) map, got shape {heat.shape}")
    if heat.shape != img.shape[:2]:
        heat = F.interpolate(torch.as_tensor(heat)[None, None], size=img.shape[:2],
                             mode="bilinear", align_corners=False)[0, 0].numpy()
    ax = _axes(ax, figsize=(3, 3))
    if img.ndim == 3:
        span = img.max() - img.min()
        ax.imshow((img - img.min()) / (span if span > 0 else 1))
    else:
        ax.imshow(img, cmap="gray")
    span = heat.max() - heat.min()
    level = (heat - heat.min()) / (span if span > 0 else 1)
    ax.imshow(level, cmap=cmap, alpha=alpha * level, vmin=0, vmax=1)
    ax.axis("off")
    if title:
        ax.set_title(title)
    return ax


def method_comparison(table, ax=None, precision: str = "precision@k", seconds: str = "s / 100 seqs",
                      title: str | None = None):
    """Scatter attribution methods by cost (log seconds per 100 sequences) and precision at k.

    ``table`` is :func:`mlcourse.interpret.compare.compare_methods`'s DataFrame;
    its ``attrs["chance"]`` (if present) is drawn as a dashed line.
    """
    ax = _axes(ax, figsize=(7, 4))
    ax.scatter(table[seconds], table[precision], color="#0072B2")
    if "chance" in table.attrs:
        ax.axhline(table.attrs["chance"], color="gray", ls="--", lw=1, label="chance")
        ax.legend(loc="lower right")
    ax.set_xscale("log")
    ax.set_xlabel(f"{seconds} (log scale)")
    ax.set_ylabel(precision)
    ax.set_ylim(0, 1.05)
    if title:
        ax.set_title(title)
    _label_points(ax, table["method"], table[seconds], table[precision])
    return ax


# Where a point's label may go (offset in points, horizontal alignment): right, left, above, below, further out.
_LABEL_SPOTS = [(4, 3, "left"), (-4, 3, "right"), (4, -10, "left"), (-4, -10, "right"), (0, 8, "center"),
                (0, -16, "center"), (4, 14, "left"), (-4, 14, "right"), (4, -22, "left"), (-4, -22, "right")]


def _label_points(ax, labels, xs, ys, fontsize: int = 8) -> None:
    """Annotate points, each label at the first spot that overlaps no earlier label (or the last spot)."""
    from matplotlib.text import Text

    ax.figure.canvas.draw()  # lay out ticks and titles first, so their boxes are where they will be drawn
    renderer = ax.figure.canvas.get_renderer()
    taken = [t.get_window_extent(renderer) for t in ax.figure.findobj(Text) if t.get_visible() and t.get_text()]
    for label, x, y in zip(labels, xs, ys):
        for dx, dy, ha in _LABEL_SPOTS:
            text = ax.annotate(label, (x, y), textcoords="offset points", xytext=(dx, dy), ha=ha,
                               fontsize=fontsize)
            box = text.get_window_extent(renderer)
            if not any(box.overlaps(other) for other in taken):
                break
            if (dx, dy, ha) != _LABEL_SPOTS[-1]:
                text.remove()
        taken.append(box)


def sis_overlay(image, masks, ax=None, title: str | None = None, alpha: float = 0.6):
    """A digit in grey with each sufficient input subset in its own colour (Carter et al. 2019).

    ``image`` is ``(H, W)`` or ``(1, H, W)``; ``masks`` is a list of boolean arrays
    of the same shape (e.g. ``[s.mask for s in sis_collection(...)]``); SIS ``k``
    gets colour :func:`sis_colour` ``(k)``.
    """
    ax = _axes(ax, figsize=(2, 2))
    img = _to_numpy(image)
    img = img.reshape(img.shape[-2:])
    ax.imshow(img, cmap="gray_r")
    layer = np.zeros((*img.shape, 4))
    for k, mask in enumerate(masks):
        m = _to_numpy(mask).astype(bool).reshape(img.shape)
        layer[m] = (*to_rgb(sis_colour(k)), alpha)
    ax.imshow(layer)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def ism_heatmap(ism, ax=None, sites=(), title: str | None = None):
    """A saturation-mutagenesis map ``(4, L)``: change in the output for each base at each position.

    Blue = the substitution lowers the score, red = raises it (0 at the bases
    already present); ``sites`` (objects with ``start``/``end``) are outlined as
    ground truth. Alipanahi et al. (2015) called these mutation maps.
    """
    values = _to_numpy(ism)
    if values.ndim != 2 or values.shape[0] != 4:
        raise ValueError(f"ism_heatmap expects a (4, L) matrix in ACGT order, got shape {values.shape}")
    ax = _axes(ax, figsize=(max(6, values.shape[1] * 0.1), 1.8))
    limit = float(np.abs(values).max()) or 1.0
    image = ax.imshow(values, aspect="auto", cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    ax.set_yticks(range(4), list(ALPHABET))
    ax.set_xlabel("position")
    for site in sites:
        ax.add_patch(plt.Rectangle((site.start - 0.5, -0.5), site.end - site.start, 4, fill=False,
                                   edgecolor="black", lw=1.5))
    ax.figure.colorbar(image, ax=ax, pad=0.01, label="Δ output")
    if title:
        ax.set_title(title)
    return ax


def ism_logo(ism, x, ax=None, title: str | None = None):
    """The observed bases scaled by their ISM importance: ``f(x) - mean f(3 mutants)``.

    ``ism`` and the one-hot ``x`` are ``(4, L)``; a tall letter is a base whose
    loss the model minds, a letter below the axis one it would rather lose.
    """
    values, onehot = _to_numpy(ism), _to_numpy(x)
    if values.shape != onehot.shape:
        raise ValueError(f"ism {values.shape} and x {onehot.shape} must have the same (4, L) shape")
    importance = -values.sum(axis=0, keepdims=True) / 3.0
    return logo(onehot * importance, ax=ax, title=title, ylabel="ISM importance")


def sis_shading(seq: str, masks, ax=None, sites=(), title: str | None = None):
    """A DNA sequence as letters with each SIS shaded in its own colour, as on Carter et al.'s slides.

    ``masks`` are boolean arrays over positions (shape ``(L,)`` or ``(1, L)``); SIS
    ``k`` gets colour :func:`sis_colour` ``(k)``. ``sites`` (ground truth) are underlined.
    """
    ax = _axes(ax, figsize=(max(6, len(seq) * 0.12), 0.9))
    for k, mask in enumerate(masks):
        keep = _to_numpy(mask).astype(bool).reshape(-1)
        if len(keep) != len(seq):
            raise ValueError(f"SIS {k} has {len(keep)} positions but the sequence has {len(seq)}")
        for pos in np.flatnonzero(keep):
            ax.add_patch(plt.Rectangle((pos - 0.5, 0), 1, 1, color=sis_colour(k), alpha=0.8, lw=0))
    for pos, base in enumerate(seq):
        ax.text(pos, 0.5, base, ha="center", va="center", family="monospace", fontsize=7)
    for site in sites:
        ax.plot([site.start - 0.5, site.end - 0.5], [-0.08, -0.08], color="black", lw=2,
                clip_on=False)
    ax.set_xlim(-0.5, len(seq) - 0.5)
    ax.set_ylim(-0.15, 1)
    ax.set_yticks([])
    ax.set_xlabel("position")
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def motif_logo(motif, ax=None, title: str | None = None, ymax: float | None = 2.0):
    """Draw a motif as an information-content logo (letter height = probability x IC bits).

    ``motif`` is a :class:`~mlcourse.motifs.Motif`, a JASPAR name or ID, or a
    ``(4, W)`` probability matrix. The y axis runs to ``ymax`` bits (2, the
    most a DNA column holds, so logos compare); ``ymax=None`` fits it to the
    tallest column, for motifs whose scale means nothing (a filter read from its
    weights). Returns the matplotlib Axes.
    """
    if not isinstance(motif, Motif):
        motif = jaspar(motif) if isinstance(motif, str) else Motif.from_probs(np.asarray(motif), "query")
    heights = motif.probs * motif.information_content()
    if title is None:
        title = f"{motif.name} {motif.matrix_id}" if motif.matrix_id else motif.name
    ax = logo(heights, ax=ax, title=title, ylabel="bits")
    if ymax is None:
        ymax = 1.05 * max(float(heights.sum(axis=0).max()), 1e-6)
    ax.set_ylim(0, ymax)
    return ax


def consensus_logo(probs, motif: Motif, axes=None):
    """A SIS cluster's consensus above its JASPAR ``motif``, shifted by their best alignment.

    Uses :func:`mlcourse.motifs.similarity` (offset, strand); returns the two Axes.
    """
    query = Motif.from_probs(probs, "SIS consensus")
    match = similarity(query, motif)
    target = motif.reverse_complement() if match.strand == "-" else motif
    if axes is None:
        fig, axes = plt.subplots(2, 1, figsize=(8, 4))
        fig.subplots_adjust(hspace=0.6)
    motif_logo(query, ax=axes[0], title=f"SIS cluster consensus (similarity {match.score:.2f})")
    motif_logo(target, ax=axes[1])
    # column k of the motif sits under column k + offset of the consensus: same span, shifted
    lo, hi = min(0, match.offset), max(query.width, match.offset + target.width)
    axes[0].set_xlim(lo - 0.5, hi - 0.5)
    axes[1].set_xlim(lo - 0.5 - match.offset, hi - 0.5 - match.offset)
    axes[1].set_title(f"{target.name} {target.matrix_id or ''} (strand {match.strand}, offset {match.offset})")
    return axes


def highlight(tokens, subsets, underline=None, labels=None) -> str:
    """HTML for a text with each subset of token positions on its own colour (:func:`sis_colour`).

    Parameters
    ----------
    tokens : list of str
        The review.
    subsets : list of sequences of int
        Token positions, e.g. the disjoint SISes of :func:`mlcourse.interpret.sis.review_sis`;
        subset ``k`` gets colour ``k``.
    underline : boolean array, optional
        Positions to underline, e.g. :meth:`mlcourse.datasets.reviews.Reviews.rationale_mask`
        (the ground truth).
    labels : list of str, optional
        One name per subset (e.g. the aspects); shown first as a colour key.

    Returns
    -------
    str
        Show it with ``IPython.display.HTML(...)``.
    """
    if labels is not None and len(labels) != len(subsets):
        raise ValueError(f"labels: got {len(labels)} names for {len(subsets)} subsets")
    colour = {}
    for k, subset in enumerate(subsets):
        for pos in np.asarray(subset, dtype=int).reshape(-1):
            if not 0 <= pos < len(tokens):
                raise ValueError(f"subset {k}: position {pos} is outside the review's {len(tokens)} tokens")
            colour[int(pos)] = sis_colour(k)
    words = []
    for i, word in enumerate(tokens):
        style = f"background:{colour[i]};" if i in colour else ""
        if underline is not None and underline[i]:
            style += "text-decoration:underline;"
        word = html.escape(word)
        words.append(f'<span style="{style}padding:1px">{word}</span>' if style else word)
    key = ""
    if labels is not None:
        key = "<p>" + " ".join(f'<span style="background:{sis_colour(k)};padding:1px">{html.escape(name)}</span>'
                               for k, name in enumerate(labels)) + "</p>"
    return key + '<p style="line-height:1.8">' + " ".join(words) + "</p>"
