"""Interactive explorers for the lectures, built with ipywidgets.

Each builder returns one widget: a row of controls, a one-line readout and a
figure. The work behind a widget lives in a plain function next to it, so it
can be tested and reused without a browser:

============================ ========================================== =========================
builder                      the logic it calls                         lecture
============================ ========================================== =========================
:func:`sequence_explorer`    :func:`predict_and_ism`                    04 saturated mutagenesis
:func:`sis_explorer`         :func:`sis_state`                          07 SIS for TF binding
:func:`filter_browser`       :class:`FilterBank`, :func:`filter_report` 08 filters
:func:`attribution_comparer` :func:`attribute`                          12 LIME, SHAP, comparison
:func:`ig_path_explorer`     :func:`ig_path`, :func:`ig_path_state`     11 integrated gradients
:func:`ascent_viewer`        :func:`ascent_frame`                       13 gradient ascent
============================ ========================================== =========================

Slow work happens once, when the widget is built (an IG path, an ascent
trajectory, the filters' PWMs), or only when a slider is released
(``continuous_update=False``) or a button is pressed, so dragging never
queues up work in the kernel. Figures are drawn off-screen and shown as PNG
images; the latest numbers are kept on the widget as ``.state``.

Examples
--------
>>> from mlcourse import widgets
>>> widgets.ig_path_explorer(model, x)          # doctest: +SKIP
"""

from __future__ import annotations

import html
import io
import time
from dataclasses import dataclass

import ipywidgets as w
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PatchCollection
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import PathPatch, Rectangle
from matplotlib.path import Path
from matplotlib.textpath import TextPath

from mlcourse.config import device_of, eval_mode
from mlcourse.dna import ALPHABET, decode, one_hot, validate
from mlcourse.interpret import engines, sis
from mlcourse.interpret.compare import precision_at_k
from mlcourse.interpret.filters import activation_motifs, first_conv, trim, weight_motifs
from mlcourse.interpret.ism import saturation_mutagenesis
from mlcourse.interpret.maximize import Trajectory
from mlcourse.interpret.methods import scorers
from mlcourse.interpret.paths import path_gradients, riemann_weights
from mlcourse.interpret.scoring import score
from mlcourse.motifs import Motif, best_jaspar_match, information_content
from mlcourse.plot import SIS_COLOURS, sis_colour

__all__ = [
    "Explorer",
    "mutate",
    "predict_and_ism",
    "sequence_explorer",
    "IGPath",
    "IGState",
    "ig_path",
    "ig_path_state",
    "ig_path_explorer",
    "FilterBank",
    "FilterReport",
    "filter_report",
    "filter_browser",
    "attribute",
    "attribution_comparer",
    "ascent_frame",
    "ascent_viewer",
    "sis_state",
    "sis_explorer",
]


# ----------------------------------------------------------------------------- shared pieces
def _single(x, name: str = "x") -> torch.Tensor:
    """One example as a float tensor without a batch axis: DNA ``(4, L)`` or an image ``(C, H, W)``."""
    x = torch.as_tensor(x, dtype=torch.float32).detach()
    if (x.ndim == 3 and x.shape[:2] == (1, 4)) or (x.ndim == 4 and x.shape[0] == 1):
        x = x[0]  # a batch of one
    if x.ndim not in (2, 3):
        raise ValueError(
            f"{name} must be one example, DNA (4, L) or an image (C, H, W), got shape {tuple(x.shape)}"
        )
    if x.ndim == 2 and x.shape[0] != 4:
        raise ValueError(f"{name} looks like DNA but has {x.shape[0]} rows instead of 4 (ACGT)")
    return x




def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def _is_dna(x: torch.Tensor) -> bool:
    return x.ndim == 2


def _draw(ax, values, title: str, *, signed: bool = True, limit: float | None = None, sites=()):
    """A DNA ``(4, L)`` map as a heatmap, or an image ``(C, H, W)`` map summed over channels.

    Signed maps use a diverging colour map centred on zero; ``limit`` fixes the colour
    scale (default: the largest absolute value).
    """
    values = np.asarray(values, dtype=float)
    if values.ndim == 3:
        values = values.sum(axis=0)
    limit = limit or float(np.abs(values).max()) or 1.0
    cmap, vmin = ("RdBu_r", -limit) if signed else ("Greys", 0.0)
    ax.imshow(values, cmap=cmap, vmin=vmin, vmax=limit, aspect="auto" if values.shape[0] == 4 else "equal",
              interpolation="nearest")
    if values.shape[0] == 4 and values.ndim == 2 and values.shape[1] > 28:
        ax.set_yticks(range(4), list(ALPHABET))
    else:
        ax.set_yticks([])
        if values.shape[0] != 4:
            ax.set_xticks([])
    _outline_sites(ax, sites, values.shape[0])
    ax.set_title(title, fontsize=9, loc="left")
    return ax


def _outline_sites(ax, sites, rows: int = 4):
    """Outline planted sites on a heatmap (a box around their columns)."""
    for site in sites:
        ax.add_patch(Rectangle((site.start - 0.5, -0.5), site.width, rows, fill=False,
                               edgecolor="tab:orange", lw=2))


def _shade_sites(ax, sites):
    """Shade planted sites behind a line or bar plot."""
    for site in sites:
        ax.axvspan(site.start - 0.5, site.end - 0.5, color="tab:orange", alpha=0.25, lw=0, zorder=0)


_COLORS = {"A": "#109648", "C": "#255c99", "G": "#f7b32b", "T": "#d62839"}
_GLYPHS: dict[str, Path] = {}


def _glyph(letter: str) -> Path:
    """The outline of a bold ``letter``, scaled to the unit square (cached)."""
    if letter not in _GLYPHS:
        text = TextPath((0, 0), letter, size=1, prop=FontProperties(family="DejaVu Sans", weight="bold"))
        box = text.get_extents()
        vertices = (text.vertices - [box.x0, box.y0]) / [box.width, box.height]
        _GLYPHS[letter] = Path(vertices, text.codes)
    return _GLYPHS[letter]


def _logo(ax, heights, title: str, ylabel: str = "bits"):
    """A sequence logo of a ``(4, L)`` ACGT matrix: letters stacked by height, negatives below zero.

    Draws the same picture as :func:`mlcourse.plot.logo` (logomaker), with one patch
    collection instead of one artist per letter, so that a widget redraws in tens of
    milliseconds instead of about a second.
    """
    heights = np.asarray(heights, dtype=float)
    patches, colours = [], []
    for j, column in enumerate(heights.T):
        up = down = 0.0
        for b in np.argsort(np.abs(column)):
            h = column[b]
            if abs(h) < 1e-9:
                continue
            bottom = up if h > 0 else down - abs(h)
            glyph = _glyph(ALPHABET[b])
            patches.append(PathPatch(Path(glyph.vertices * [0.9, abs(h)] + [j - 0.45, bottom],
                                          glyph.codes)))
            colours.append(_COLORS[ALPHABET[b]])
            up, down = (up + h, down) if h > 0 else (up, down - abs(h))
    ax.add_collection(PatchCollection(patches, facecolors=colours, edgecolors="none"))
    positive, negative = np.clip(heights, 0, None).sum(0), np.clip(heights, None, 0).sum(0)
    ax.set_xlim(-0.5, heights.shape[1] - 0.5)
    ax.set_ylim(min(negative.min(), 0) * 1.05, max(positive.max(), 1e-6) * 1.05)
    ax.set_title(title, fontsize=9, loc="left")
    ax.set_ylabel(ylabel, fontsize=8)
    return ax


def _motif_logo(ax, motif: Motif, title: str):
    """A motif as an information-content logo (letter height = probability x bits), 0-2 bits."""
    _logo(ax, motif.probs * motif.information_content(), title)
    ax.set_ylim(0, 2)
    return ax


class Explorer(w.VBox):
    """A widget made of controls, a readout (``.readout``, HTML) and a figure (``.figure``, PNG).

    Subclasses implement ``compute()`` returning ``(readout_html, figure)``; any change
    of a control's value calls :meth:`refresh`. A ``ValueError`` (say, a typed base that
    is not ACGT) is shown in the readout instead of being lost in the kernel log.
    """

    def __init__(self, controls, *, buttons=()):
        self.readout = w.HTML()
        self.figure = w.Image(format="png", layout=w.Layout(max_width="100%"))
        self.state = None
        super().__init__([w.HBox([*controls, *buttons]), self.readout, self.figure])
        for control in controls:
            control.observe(lambda _change: self.refresh(), names="value")

    def compute(self):  # pragma: no cover - every explorer overrides it
        raise NotImplementedError

    def refresh(self) -> None:
        """Recompute and redraw from the controls' current values."""
        try:
            text, fig = self.compute()
        except ValueError as err:
            self.readout.value = f"<span style='color:#b00020'>{html.escape(str(err))}</span>"
            return
        self.readout.value = text
        self.figure.value = _png(fig)


# ----------------------------------------------------------------------------- sequence explorer
def mutate(seq: str, position: int, base: str) -> str:
    """``seq`` with the base at 0-based ``position`` replaced by ``base`` (one of ACGT)."""
    seq = validate(seq)[0]
    if base not in ALPHABET:
        raise ValueError(f"base={base!r} is not one of {ALPHABET}")
    if not 0 <= position < len(seq):
        raise ValueError(f"position={position} is outside the {len(seq)} bp sequence")
    return seq[:position] + base + seq[position + 1 :]


def predict_and_ism(model, seq: str, *, target=None) -> tuple[float, np.ndarray]:
    """The model's score for ``seq`` and its in-silico saturation mutagenesis map.

    Parameters
    ----------
    model : torch.nn.Module or callable
        Maps one-hot DNA ``(N, 4, L)`` to scores ``(N,)`` (or ``(N, C)`` with ``target``).
    seq : str
        The sequence (ACGT).
    target : int, optional
        The output column to explain for multi-output models.

    Returns
    -------
    score : float
        The model's output for ``seq``.
    ism : numpy.ndarray, shape (4, L)
        ``ism[b, i]`` = score with base ``b`` at position ``i`` minus the score of ``seq``
        (zero for the bases already present), following Alipanahi et al. (2015, DeepBind's
        "mutation maps") and :func:`mlcourse.interpret.ism.saturation_mutagenesis`.
    """
    x = one_hot(seq)
    value = float(score(model, x, target=target)[0])
    # One sequence: a single batch of its 3L mutants beats the local-window engine's set-up.
    ism = saturation_mutagenesis(model, x, target=target)
    return value, np.asarray(ism[0], dtype=float)


class SequenceExplorer(Explorer):
    """Edit a sequence (type it, or mutate one base) and see its prediction and ISM map."""

    def __init__(self, model, seq: str, *, target=None, sites=()):
        seq = validate(seq)[0]
        self.model, self.target, self.original, self.sites = model, target, seq, list(sites)
        self.sequence = w.Textarea(value=seq, continuous_update=False, description="sequence",
                                   layout=w.Layout(width="60%", height="4em"))
        self.position = w.IntSlider(value=len(seq) // 2, min=0, max=len(seq) - 1,
                                    continuous_update=False, description="position")
        self.base = w.ToggleButtons(options=list(ALPHABET), value="A", description="new base",
                                    style={"button_width": "2.5em"})
        self.mutate_button = w.Button(description="mutate", button_style="primary")
        self.reset_button = w.Button(description="reset")
        self.mutate_button.on_click(lambda _b: self.mutate())
        self.reset_button.on_click(lambda _b: setattr(self.sequence, "value", self.original))
        self._cache: dict[str, tuple[float, np.ndarray]] = {}
        # the base is a control: choosing it refreshes the readout ("A->C would change it by ...")
        super().__init__([self.sequence, self.position, self.base],
                         buttons=[self.mutate_button, self.reset_button])
        self.refresh()

    def mutate(self) -> None:
        """Apply the chosen base at the chosen position (what the *mutate* button does)."""
        try:
            self.sequence.value = mutate(self.sequence.value.strip().upper(), self.position.value,
                                         self.base.value)
        except ValueError as err:
            self.readout.value = f"<span style='color:#b00020'>{html.escape(str(err))}</span>"

    def compute(self):
        seq = validate(self.sequence.value.strip().upper().replace("\n", ""))[0]
        if len(seq) != len(self.original):
            raise ValueError(f"the sequence has {len(seq)} bp; the model reads {len(self.original)} bp")
        if seq not in self._cache:
            self._cache = {seq: predict_and_ism(self.model, seq, target=self.target)}
        score, ism = self._cache[seq]
        pos = self.position.value
        b, i = np.unravel_index(np.argmin(ism), ism.shape)
        self.state = {"sequence": seq, "score": score, "ism": ism}
        changed = sum(a != c for a, c in zip(seq, self.original))
        text = (f"score <b>{score:+.3f}</b> (sigmoid {1 / (1 + np.exp(-score)):.3f}) · "
                f"{changed} base(s) changed from the original · position {pos}: "
                f"{seq[pos]}&rarr;{self.base.value} would change it by "
                f"<b>{ism[ALPHABET.index(self.base.value), pos]:+.3f}</b> · "
                f"strongest loss: {seq[i]}&rarr;{ALPHABET[b]} at {i} ({ism[b, i]:+.3f})")
        fig = Figure(figsize=(11, 3.2))
        top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1]})
        _draw(top, ism, "ISM: score change for each substitution", sites=self.sites)
        top.axvline(pos, color="k", lw=0.8, ls=":")
        effect = ism.min(axis=0)
        bottom.stairs(effect, np.arange(len(seq) + 1) - 0.5, fill=True, color="tab:blue")
        bottom.axvline(pos, color="k", lw=0.8)
        bottom.set_ylabel("worst\nmutation", fontsize=8)
        bottom.set_xlim(-0.5, len(seq) - 0.5)
        _shade_sites(bottom, self.sites)
        fig.subplots_adjust(left=0.06, right=0.99, top=0.9, bottom=0.1, hspace=0.25)
        fig.colorbar(top.images[0], ax=[top, bottom], fraction=0.025, pad=0.01, label="score change")
        return text, fig


def sequence_explorer(model, seq: str, *, target=None, sites=()) -> SequenceExplorer:
    """Explore one sequence: edit it and watch the prediction and its ISM map update.

    Type a new sequence (applied when the text box loses focus), or pick a position
    and a base and press *mutate*; *reset* restores the original. The ISM map (see
    :func:`predict_and_ism`) shows how every possible single substitution would move
    the score, so mutating a base in a dark blue column should lower the prediction by
    exactly the amount shown.

    Parameters
    ----------
    model : torch.nn.Module or callable
        One-hot DNA ``(N, 4, L)`` -> scores.
    seq : str
        The starting sequence.
    target : int, optional
        Output column for multi-output models.
    sites : list of mlcourse.datasets.base.Site, optional
        Ground-truth motif sites to shade.
    """
    return SequenceExplorer(model, seq, target=target, sites=sites)


# ----------------------------------------------------------------------------- IG path explorer
@dataclass
class IGPath:
    """Gradients along the straight path from ``baseline`` to ``x`` (see :func:`ig_path`)."""

    x: torch.Tensor
    baseline: torch.Tensor
    alphas: np.ndarray  # (steps + 1,)
    outputs: np.ndarray  # f(baseline + alpha (x - baseline)), (steps + 1,)
    gradients: torch.Tensor  # (steps + 1, *x.shape)

    @property
    def steps(self) -> int:
        return len(self.alphas) - 1

    def point(self, alpha: float) -> torch.Tensor:
        """The interpolated input ``baseline + alpha (x - baseline)``."""
        return self.baseline + alpha * (self.x - self.baseline)


@dataclass
class IGState:
    """The path at one ``alpha``: what :func:`ig_path_explorer` shows."""

    alpha: float
    point: torch.Tensor  # interpolated input
    gradient: torch.Tensor  # df/dx at the point
    attribution: torch.Tensor  # running IG: (x - x') * integral_0^alpha of the gradient
    total: float  # attribution.sum()
    change: float  # f(point) - f(baseline)
    goal: float  # f(x) - f(baseline): the total IG must add up to this (completeness)


def ig_path(model, x, *, target=None, baseline=None, steps: int = 50) -> IGPath:
    """The model's gradients at ``steps + 1`` evenly spaced points from ``baseline`` to ``x``.

    Integrated gradients (Sundararajan, Taly & Yan, 2017, "Axiomatic attribution for
    deep networks") attributes ``f(x) - f(x')`` to the inputs as
    ``(x - x') * integral_0^1 grad f(x' + alpha (x - x')) d alpha``. This function
    evaluates the integrand on the grid ``alpha = 0, 1/steps, ..., 1`` with
    :func:`mlcourse.interpret.paths.path_gradients` (the integrand of
    :func:`~mlcourse.interpret.paths.integrated_gradients`); :func:`ig_path_state`
    integrates it up to any ``alpha``.

    Parameters
    ----------
    model : torch.nn.Module
        Differentiable; one example in, one score (or ``target`` column) out.
    x : tensor
        One example: DNA ``(4, L)`` or an image ``(C, H, W)`` (a leading batch axis of 1 is dropped).
    target : int, optional
        Output column for multi-output models.
    baseline : tensor, optional
        The reference ``x'``, same shape; default all zeros (no base / a black image).
    steps : int
        Number of intervals on the path.
    """
    x = _single(x)
    baseline = torch.zeros_like(x) if baseline is None else _single(baseline, "baseline")
    if baseline.shape != x.shape:
        raise ValueError(f"baseline has shape {tuple(baseline.shape)} but x has {tuple(x.shape)}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    alphas = np.linspace(0, 1, steps + 1)
    outputs, gradients = path_gradients(model, x[None], alphas, target=target, baseline=baseline[None])
    return IGPath(x, baseline, alphas, outputs[:, 0].cpu().numpy().astype(float), gradients[:, 0].cpu())


def ig_path_state(path: IGPath, alpha: float) -> IGState:
    """Integrated gradients accumulated from ``alpha = 0`` up to ``alpha`` (trapezoid rule,
    :func:`mlcourse.interpret.paths.riemann_weights`).

    The running attribution summed over all inputs tracks ``f(x_alpha) - f(x')`` along the
    whole path (the fundamental theorem of calculus for path integrals); at ``alpha = 1``
    it is the integrated-gradients attribution and its total is ``f(x) - f(x')``.
    ``alpha`` is rounded to the nearest grid point of the path.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha={alpha!r} must lie in [0, 1]")
    k = int(round(alpha * path.steps))
    grads = path.gradients
    if k == 0:
        integral = torch.zeros_like(path.x)
    else:  # the trapezoid rule on the k + 1 grid points of [0, alpha_k]
        _, weights = riemann_weights(k + 1, "riemann_trapezoid")
        w = torch.as_tensor(weights * k / path.steps, dtype=grads.dtype)
        integral = (w.reshape(-1, *[1] * path.x.ndim) * grads[: k + 1]).sum(0)
    attribution = (path.x - path.baseline) * integral
    return IGState(
        alpha=float(path.alphas[k]),
        point=path.point(float(path.alphas[k])),
        gradient=grads[k],
        attribution=attribution,
        total=float(attribution.sum()),
        change=float(path.outputs[k] - path.outputs[0]),
        goal=float(path.outputs[-1] - path.outputs[0]),
    )


class IGPathExplorer(Explorer):
    """An ``alpha`` slider along the integrated-gradients path."""

    def __init__(self, path: IGPath, *, sites=()):
        self.path, self.sites = path, list(sites)
        self.totals = [ig_path_state(path, a).total for a in path.alphas]
        ends = torch.stack([path.x, path.baseline])
        self.input_limit = float((ends.sum(1) if ends.ndim == 4 else ends).abs().max()) or 1.0
        self.alpha = w.FloatSlider(value=0.5, min=0.0, max=1.0, step=1 / path.steps,
                                   continuous_update=False, description="alpha",
                                   readout_format=".2f")
        super().__init__([self.alpha])
        self.refresh()

    def compute(self):
        s = ig_path_state(self.path, self.alpha.value)
        self.state = s
        text = (f"alpha = {s.alpha:.2f} · f(x<sub>alpha</sub>) &minus; f(x') = <b>{s.change:+.4f}</b> · "
                f"running IG sum = <b>{s.total:+.4f}</b> · at alpha = 1 it must reach "
                f"f(x) &minus; f(x') = {s.goal:+.4f}")
        dna = _is_dna(s.point)
        fig = Figure(figsize=(11, 5.2) if dna else (11, 2.8))
        if dna:
            axes = fig.subplots(4, 1, gridspec_kw={"height_ratios": [1, 1, 1, 1.6]})
        else:
            axes = fig.subplots(1, 4, gridspec_kw={"width_ratios": [1, 1, 1, 1.8]})
        _draw(axes[0], s.point, f"interpolated input x' + {s.alpha:.2f} (x - x')", signed=False,
              limit=self.input_limit, sites=self.sites)
        _draw(axes[1], s.gradient, "gradient at this point", sites=self.sites)
        _draw(axes[2], s.attribution, "running attribution (x - x') * integral of gradient",
              sites=self.sites)
        curve = axes[3]
        curve.plot(self.path.alphas, self.path.outputs - self.path.outputs[0],
                   label="f(x_alpha) - f(x')")
        curve.plot(self.path.alphas, self.totals, "--", label="running IG sum")
        curve.axhline(s.goal, color="grey", lw=0.8)
        curve.axvline(s.alpha, color="k", lw=0.8)
        curve.set_xlabel("alpha")
        curve.legend(fontsize=8, loc="best")
        if dna:
            fig.subplots_adjust(left=0.04, right=0.99, top=0.95, bottom=0.08, hspace=0.55)
        return text, fig


def ig_path_explorer(model, x, *, target=None, baseline=None, steps: int = 50,
                     sites=()) -> IGPathExplorer:
    """Walk along the integrated-gradients path with an ``alpha`` slider.

    Shows the interpolated input, the gradient there, the attribution accumulated so
    far, and the running total against ``f(x_alpha) - f(x')``: the two curves coincide
    (up to the integration error) and end at ``f(x) - f(x')`` (completeness, Sundararajan
    et al. 2017). The gradients are computed once, in :func:`ig_path`; moving the slider
    only integrates and redraws.

    Parameters
    ----------
    model, x, target, baseline, steps
        As for :func:`ig_path`.
    sites : list of mlcourse.datasets.base.Site, optional
        Ground-truth motif sites to shade (DNA).
    """
    return IGPathExplorer(ig_path(model, x, target=target, baseline=baseline, steps=steps), sites=sites)


# ----------------------------------------------------------------------------- filter browser
@dataclass
class FilterReport:
    """What the filter browser shows for one first-layer filter."""

    index: int
    motif: Motif  # counted from the windows that activate the filter (DeepBind / Basset)
    weights: Motif  # read from the weights (a softmax per column)
    match: Motif  # the best JASPAR match of the trimmed activation motif
    match_score: float  # its similarity (mean column Pearson correlation, in [-1, 1])
    top: list[tuple[int, int, float, str]]  # (example, start, activation, window), strongest first


class FilterBank:
    """Everything the filter browser needs, computed once for all first-layer filters.

    Parameters
    ----------
    model : torch.nn.Module
        A DNA CNN; its first ``Conv1d`` is read.
    X : torch.Tensor
        One-hot sequences ``(N, 4, L)``, usually the bound test examples.
    threshold : float
        Windows above this fraction of a filter's maximum count towards its motif.
    candidates : list of Motif or names, optional
        JASPAR motifs to match against (default: all vertebrate CORE motifs,
        about half a second per filter the first time it is shown).
    """

    def __init__(self, model, X: torch.Tensor, *, threshold: float = 0.5, candidates=None):
        conv = first_conv(model)
        X = torch.as_tensor(X, dtype=torch.float32)
        self.width, self.seqs, self.candidates = conv.kernel_size[0], decode(X), candidates
        with torch.no_grad():
            self.activations = conv(X.to(device_of(model))).cpu().numpy()  # (N, K, L')
        self.motifs = activation_motifs(model, X, threshold)
        self.weight_motifs = weight_motifs(model)
        self._matches: dict[int, tuple[Motif, float]] = {}

    def __len__(self) -> int:
        return len(self.motifs)


def filter_report(bank: FilterBank, index: int, top: int = 5) -> FilterReport:
    """Logo motifs, best JASPAR match and top activating windows of filter ``index``.

    Following Alipanahi et al. (2015, DeepBind) and Kelley et al. (2016, Basset):
    a first-layer filter is summarised by the sequences that switch it on, and named
    by the database motif it resembles (:func:`mlcourse.interpret.filters.match_filters`).
    """
    if not 0 <= index < len(bank):
        raise ValueError(f"filter index {index} is outside 0..{len(bank) - 1}")
    if index not in bank._matches:
        best, alignment = best_jaspar_match(trim(bank.motifs[index]), bank.candidates)[0]
        bank._matches[index] = (best, float(alignment.score))
    match, score = bank._matches[index]
    acts = bank.activations[:, index, :]
    strongest = np.argsort(acts, axis=None)[::-1][:top]
    windows = []
    for flat in strongest:
        n, j = np.unravel_index(flat, acts.shape)
        windows.append((int(n), int(j), float(acts[n, j]), bank.seqs[n][j : j + bank.width]))
    return FilterReport(index, bank.motifs[index], bank.weight_motifs[index], match, score, windows)


class FilterBrowser(Explorer):
    """Step through first-layer filters with a slider."""

    def __init__(self, bank: FilterBank, top: int = 5):
        self.bank, self.top = bank, top
        self.filter = w.IntSlider(value=0, min=0, max=len(bank) - 1, continuous_update=False,
                                  description="filter")
        super().__init__([self.filter])
        self.refresh()

    def compute(self):
        r = filter_report(self.bank, self.filter.value, self.top)
        self.state = r
        rows = "".join(f"<tr><td>#{n}</td><td>{j}</td><td>{a:.2f}</td><td><code>{s}</code></td></tr>"
                       for n, j, a, s in r.top)
        text = (f"filter {r.index}: {r.motif.information_content().sum():.1f} bits · best JASPAR match "
                f"<b>{r.match.name}</b> ({r.match.matrix_id}), similarity {r.match_score:.2f}"
                f"<table><tr><th>example</th><th>start</th><th>activation</th><th>window</th></tr>"
                f"{rows}</table>")
        fig = Figure(figsize=(11, 2.2))
        axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": [r.motif.width, r.weights.width,
                                                                 max(r.match.width, 8)]})
        _motif_logo(axes[0], r.motif, f"filter {r.index}: activating windows")
        _motif_logo(axes[1], r.weights, "from the weights (relative)")
        _motif_logo(axes[2], r.match, f"JASPAR {r.match.name} {r.match.matrix_id}")
        fig.subplots_adjust(left=0.05, right=0.99, bottom=0.12, top=0.85, wspace=0.25)
        return text, fig


def filter_browser(model, X, *, threshold: float = 0.5, candidates=None, top: int = 5
                   ) -> FilterBrowser:
    """Browse a DNA CNN's first-layer filters: logos, best JASPAR match, top activating windows.

    The PWMs and activations of all filters are computed once (:class:`FilterBank`);
    the JASPAR search runs the first time each filter is shown.

    Parameters
    ----------
    model, X, threshold, candidates
        As for :class:`FilterBank`.
    top : int
        Number of strongest windows listed.
    """
    return FilterBrowser(FilterBank(model, X, threshold=threshold, candidates=candidates), top)


# ----------------------------------------------------------------------------- attribution comparer
def attribute(methods: dict, name: str, x) -> tuple[np.ndarray, float]:
    """Run one method of ``methods`` (``name -> f(X) -> scores``) on one example ``x``.

    Returns
    -------
    scores : numpy.ndarray
        One score per position ``(L,)`` or pixel ``(H, W)``.
    seconds : float
        How long the method took.
    """
    if name not in methods:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(methods)}")
    start = time.perf_counter()
    scores = methods[name](_single(x)[None])
    seconds = time.perf_counter() - start
    return np.asarray(torch.as_tensor(scores).detach(), dtype=float)[0], seconds


class AttributionComparer(Explorer):
    """Two method pickers; both maps are shown beside the ground truth."""

    def __init__(self, model, methods: dict, x, *, sites=(), truth=None, k=None):
        self.model, self.methods, self.x, self.sites = model, methods, _single(x), list(sites)
        self.truth = None if truth is None else np.asarray(truth, dtype=float)
        names = list(methods)
        self.k = k or (max((s.width for s in self.sites), default=10))
        self.first = w.Dropdown(options=names, value=names[0], description="method")
        self.second = w.Dropdown(options=names, value=names[min(1, len(names) - 1)],
                                 description="versus")
        self._cache: dict[str, tuple[np.ndarray, float]] = {}
        super().__init__([self.first, self.second])
        self.refresh()

    def scores(self, name: str) -> tuple[np.ndarray, float]:
        """One method's map for this example (computed once, then cached)."""
        if name not in self._cache:
            self.readout.value = f"computing {html.escape(name)}&hellip;"
            with eval_mode(self.model):
                self._cache[name] = attribute(self.methods, name, self.x)
        return self._cache[name]

    def compute(self):
        shown = {name: self.scores(name) for name in (self.first.value, self.second.value)}
        self.state = {name: s for name, (s, _) in shown.items()}
        parts = []
        for name, (s, seconds) in shown.items():
            part = f"<b>{html.escape(name)}</b>: {seconds:.2f} s"
            if self.sites:
                hit = precision_at_k(s[None], [self.sites], self.k)[0]
                part += f", {hit:.0%} of its top {self.k} positions inside planted sites"
            parts.append(part)
        text = " · ".join(parts)
        dna = _is_dna(self.x)
        panels = [("input" if self.truth is None else "ground truth", None), *shown.items()]
        if dna:
            fig = Figure(figsize=(11, 3.6))
            axes = fig.subplots(3, 1, sharex=True)
            truth = self.truth if self.truth is not None else self.x.numpy()
            _draw(axes[0], truth, "ground truth: planted sites" if self.sites else "sequence",
                  signed=False, sites=self.sites)
            for ax, (name, (s, _)) in zip(axes[1:], panels[1:]):
                ax.stairs(s, np.arange(len(s) + 1) - 0.5, fill=True, color="tab:blue")
                ax.axhline(0, color="grey", lw=0.5)
                _shade_sites(ax, self.sites)
                ax.set_title(name, fontsize=9, loc="left")
            fig.subplots_adjust(left=0.05, right=0.99, top=0.93, bottom=0.08, hspace=0.5)
        else:
            fig = Figure(figsize=(8, 2.8))
            axes = fig.subplots(1, 3)
            image = self.x.permute(1, 2, 0).numpy()
            axes[0].imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray")
            if self.truth is not None:
                axes[0].contour(self.truth, levels=[0.5], colors="tab:orange")
            axes[0].set_title(panels[0][0], fontsize=9)
            for ax, (name, (s, _)) in zip(axes[1:], panels[1:]):
                limit = float(np.abs(s).max()) or 1.0
                if s.min() < 0:  # signed maps (integrated gradients) on a diverging scale
                    ax.imshow(s, cmap="RdBu_r", vmin=-limit, vmax=limit)
                else:
                    ax.imshow(s, cmap="magma", vmin=0, vmax=limit)
                ax.set_title(name, fontsize=9)
            for ax in axes:
                ax.set_xticks([])
                ax.set_yticks([])
        return text, fig


def attribution_comparer(model, x, *, methods=None, target=None, sites=(), truth=None, layer=None,
                         k=None) -> AttributionComparer:
    """Compare two attribution methods on one sequence or image, beside the ground truth.

    Each method's map is computed the first time it is picked, then cached, so
    switching back is instant. The methods are those of the course's registry,
    :func:`mlcourse.interpret.methods.scorers`, for DNA (ISM, SIS, saliency, guided
    backprop, Grad-CAM, integrated gradients, DeepLiftShap, LIME, KernelSHAP; not
    the slow maximum-entropy sampler) or for images. For DNA the readout gives the
    share of each method's ``k`` best positions inside the planted ``sites``
    (precision at ``k``, as in :mod:`mlcourse.interpret.compare`).

    Parameters
    ----------
    model : torch.nn.Module
        Run in eval mode while the methods run.
    x : tensor
        One example, DNA ``(4, L)`` or an image ``(C, H, W)``.
    methods : dict, optional
        ``name -> f(X) -> (N, L)`` or ``(N, H, W)`` scores, to compare your own.
    target : int, optional
        Class explained (image classifiers).
    sites : list of Site, optional
        Planted motif sites (DNA ground truth).
    truth : array, optional
        A ground-truth mask to show instead of the input (``(H, W)`` for images).
    layer : optional
        Grad-CAM's layer (default: see :func:`mlcourse.interpret.methods.scorers`).
    k : int, optional
        Positions judged (default: the widest site).
    """
    x = _single(x)
    if methods is None and _is_dna(x):
        methods = scorers(model, "dna", target=target, layer=layer)
        del methods["maximum entropy"]  # about a minute per sequence: too slow to pick on a whim
    elif methods is None:
        methods = scorers(model, "image", target=target, layer=layer)
    return AttributionComparer(model, methods, x, sites=sites, truth=truth, k=k)


# ----------------------------------------------------------------------------- gradient-ascent viewer
def ascent_frame(trajectory: Trajectory, index: int) -> dict:
    """Snapshot ``index`` of a gradient-ascent run: its step, input, class score and objective.

    For DNA the input is the relaxed one-hot matrix ``P`` (DeepMotif, Lanchantin et al.
    2017), so the frame also carries its information content per position.
    """
    if not -len(trajectory) <= index < len(trajectory):
        raise ValueError(f"snapshot {index} is outside the {len(trajectory)} recorded snapshots")
    frame = trajectory.frames[index]
    out = {"step": int(trajectory.steps[index]), "frame": frame,
           "score": float(trajectory.scores[index]), "objective": float(trajectory.objective[index])}
    if trajectory.kind == "dna":
        out["bits"] = information_content(frame).numpy()
    return out


class AscentViewer(Explorer):
    """A snapshot slider (and a play button) over a recorded gradient ascent."""

    def __init__(self, trajectory: Trajectory, title: str = "class-optimised input"):
        self.trajectory, self.title = trajectory, title
        last = len(trajectory) - 1
        self.snapshot = w.IntSlider(value=last, min=0, max=last, continuous_update=False,
                                    description="snapshot")
        self.play = w.Play(value=last, min=0, max=last, interval=400, description="play")
        w.jslink((self.play, "value"), (self.snapshot, "value"))
        super().__init__([self.snapshot], buttons=[self.play])
        self.refresh()

    def compute(self):
        t = self.trajectory
        f = ascent_frame(t, self.snapshot.value)
        self.state = f
        text = (f"step {f['step']} of {int(t.steps[-1])} · class score <b>{f['score']:+.3f}</b> · "
                f"objective (score &minus; penalty) {f['objective']:+.3f}")
        if t.kind == "dna":
            fig = Figure(figsize=(11, 3.4))
            ax, curve = fig.subplots(2, 1, gridspec_kw={"height_ratios": [1.4, 1]})
            _logo(ax, f["frame"].numpy() * f["bits"], f"{self.title} (step {f['step']})")
            ax.set_ylim(0, 2)
        else:
            fig = Figure(figsize=(8, 2.8))
            ax, curve = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 2]})
            image = f["frame"].permute(1, 2, 0).numpy()
            ax.imshow(image[..., 0] if image.shape[-1] == 1 else image.clip(0, 1), cmap="gray")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{self.title} (step {f['step']})", fontsize=9)
        curve.plot(t.steps, t.scores, label="class score")
        curve.plot(t.steps, t.objective, "--", label="objective")
        curve.axvline(f["step"], color="k", lw=0.8)
        curve.set_xlabel("ascent step")
        curve.legend(fontsize=8, loc="lower right")
        fig.subplots_adjust(left=0.06, right=0.99, top=0.9, bottom=0.15, hspace=0.6, wspace=0.15)
        return text, fig


def ascent_viewer(trajectory: Trajectory, *, title: str = "class-optimised input") -> AscentViewer:
    """Step through a recorded gradient ascent (class maximisation) snapshot by snapshot.

    The run itself is :func:`mlcourse.interpret.maximize.class_image` (Simonyan et al.
    2014) or :func:`~mlcourse.interpret.maximize.dna_class_pwm` (DeepMotif, Lanchantin
    et al. 2017); it is computed once, so the slider and the play button only redraw.
    Images are shown as pictures, DNA as an information-content logo of ``P``.

    Parameters
    ----------
    trajectory : mlcourse.interpret.maximize.Trajectory
        The recorded run.
    title : str
        What the optimised input is, e.g. ``"digit 3"``.
    """
    if len(trajectory) == 0:
        raise ValueError("the trajectory has no snapshots")
    return AscentViewer(trajectory, title)


# ----------------------------------------------------------------------------- SIS explorer
def sis_state(model, x, *, threshold: float, target=None) -> dict:
    """The sufficient input subsets of one DNA sequence at ``threshold`` (Carter et al. 2019).

    The model's logit is turned into a probability (``output="probability"``), a
    masked position becomes the uniform 0.25 background, and
    :func:`mlcourse.interpret.sis.sis_collection` returns the disjoint SISes (with the
    local-window screen where the model allows, :mod:`mlcourse.interpret.engines`).

    Returns
    -------
    dict
        ``probability`` (of the whole sequence), ``collection`` (list of
        :class:`~mlcourse.interpret.sis.SIS`), ``positions`` (one sorted position array per
        SIS) and ``seconds`` (time taken). The collection is empty when the sequence
        itself scores below ``threshold``.
    """
    x = _single(x)
    if not _is_dna(x):
        raise ValueError(f"sis_state expects one DNA sequence (4, L), got shape {tuple(x.shape)}")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold={threshold!r} must be a probability strictly between 0 and 1")
    start = time.perf_counter()
    fast = target is None and engines.supports(model, x[None])
    collection = sis.sis_collection(model, x, threshold=threshold, target=target, mask_shape=(1, x.shape[1]),
                                    output="probability", fast=fast)
    probability = float(score(model, x[None], target=target, output="probability")[0])
    return {"probability": probability, "collection": collection,
            "positions": [np.sort(np.asarray(s.features)) for s in collection],
            "seconds": time.perf_counter() - start}


def _shaded(seq: str, positions, sites) -> str:
    """The sequence as HTML: SIS positions coloured (one colour per SIS), planted sites underlined."""
    colour = {}
    for k, where in enumerate(positions):
        for p in where:
            colour[int(p)] = sis_colour(k)
    planted = {p for site in sites for p in range(site.start, site.end)}
    letters = []
    for p, base in enumerate(seq):
        style = f"background:{colour[p]};font-weight:bold;" if p in colour else "color:#999;"
        if p in planted:
            style += "text-decoration:underline;"
        letters.append(f"<span style='{style}'>{base}</span>")
    return ("<div style='font-family:monospace;font-size:13px;word-break:break-all'>"
            + "".join(letters) + "</div>")


class SISExplorer(Explorer):
    """An example picker and a threshold slider over a set of DNA sequences."""

    def __init__(self, model, X, *, threshold: float = 0.9, sites=None, target=None):
        self.model, self.X, self.target = model, torch.as_tensor(X, dtype=torch.float32), target
        self.sites = sites if sites is not None else [[] for _ in range(len(self.X))]
        self.seqs = decode(self.X)
        self.example = w.IntSlider(value=0, min=0, max=len(self.X) - 1, continuous_update=False,
                                   description="example")
        self.threshold = w.FloatSlider(value=threshold, min=min(0.5, threshold),
                                       max=max(0.995, threshold), step=0.005,
                                       continuous_update=False, description="threshold",
                                       readout_format=".3f")
        self._cache: dict[tuple[int, float], dict] = {}
        super().__init__([self.example, self.threshold])
        self.refresh()

    def compute(self):
        key = (self.example.value, round(self.threshold.value, 4))
        if key not in self._cache:
            self.readout.value = "finding sufficient input subsets&hellip;"
            self._cache[key] = sis_state(self.model, self.X[key[0]], threshold=key[1], target=self.target)
        state = self._cache[key]
        self.state = state
        seq, sites = self.seqs[key[0]], self.sites[key[0]]
        if state["collection"]:
            found = ", ".join(f"SIS {k + 1}: {len(p)} positions, f(x<sub>S</sub>) = {s.score:.3f}"
                              for k, (p, s) in enumerate(zip(state["positions"], state["collection"])))
        else:
            found = "no SIS: the sequence itself scores below the threshold"
        text = (f"example {key[0]}: f(x) = <b>{state['probability']:.3f}</b>, threshold {key[1]:.3f} · "
                f"{found} · {state['seconds']:.1f} s" + _shaded(seq, state["positions"], sites))
        fig = Figure(figsize=(11, 1.4))
        ax = fig.subplots()
        track = np.zeros((1, len(seq)))
        for k, p in enumerate(state["positions"]):
            track[0, p] = k + 1
        colours = ListedColormap(SIS_COLOURS)
        ax.imshow(np.ma.masked_equal(track, 0), aspect="auto", cmap=colours, vmin=0.5,
                  vmax=len(SIS_COLOURS) + 0.5, interpolation="nearest")
        _outline_sites(ax, sites, rows=1)
        ax.set_yticks([])
        ax.set_xlim(-0.5, len(seq) - 0.5)
        ax.set_title("SIS positions (one colour per SIS) and planted sites (outlined)", fontsize=9,
                     loc="left")
        fig.subplots_adjust(left=0.02, right=0.99, top=0.8, bottom=0.2)
        return text, fig


def sis_explorer(model, X, *, threshold: float = 0.9, sites=None, target=None) -> SISExplorer:
    """Pick a sequence and a threshold; see its sufficient input subsets (Carter et al. 2019).

    The sequence is printed with each SIS shaded in its own colour and the planted
    sites underlined, as on the slides; below it, the same positions as a track. A
    collection is computed when a slider is released (a few seconds at most for
    101 bp), then cached.

    Parameters
    ----------
    model : torch.nn.Module
        DNA model returning logits (read as probabilities through a sigmoid).
    X : tensor
        One-hot sequences ``(N, 4, L)`` to pick from.
    threshold : float
        Starting probability threshold.
    sites : list of list of Site, optional
        Planted sites of each sequence.
    target : int, optional
        Class for multi-output models (softmax probability).
    """
    return SISExplorer(model, X, threshold=threshold, sites=sites, target=target)
