"""Interactive explorers for the lectures, built with ipywidgets.

Each builder returns one widget: a row of controls, a one-line readout and a
figure. The work behind a widget lives in a plain function next to it, so it
can be tested and reused without a browser:

==========================  ==============================  =================================
builder                     the logic it calls              lecture
==========================  ==============================  =================================
:func:`sequence_explorer`   :func:`predict_and_ism`         black-box interpretation (ISM)
:func:`sis_explorer`        :func:`sis_state`               sufficient input subsets
:func:`filter_browser`      :func:`filter_report`           first-layer filters
:func:`attribution_comparer` :func:`attribute`              comparing attribution methods
:func:`ig_path_explorer`    :func:`ig_path`, :func:`ig_path_state`  integrated gradients
:func:`ascent_viewer`       :func:`ascent_frame`            class maximisation
==========================  ==============================  =================================

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

import contextlib
import html
import io
from dataclasses import dataclass

import ipywidgets as w
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import nn

from mlcourse.dna import ALPHABET, one_hot, validate
from mlcourse.interpret.ism import saturation_mutagenesis, score_fn
from mlcourse.interpret.paths import eval_mode

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


def _evaluating(model):
    """Eval mode (no dropout) for modules during a call; plain callables need nothing."""
    return eval_mode(model) if isinstance(model, nn.Module) else contextlib.nullcontext()


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
    for site in sites:
        ax.axvspan(site.start - 0.5, site.end - 0.5, color="tab:orange", alpha=0.25, lw=0)
    ax.set_title(title, fontsize=9, loc="left")
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


def predict_and_ism(model, seq: str, target=None) -> tuple[float, np.ndarray]:
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
    with torch.inference_mode(), _evaluating(model):
        score = float(score_fn(model, target)(x)[0])
    ism = saturation_mutagenesis(model, x, target=target)
    return score, np.asarray(ism[0], dtype=float)


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
        super().__init__([self.sequence, self.position],
                         buttons=[self.base, self.mutate_button, self.reset_button])
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
            self._cache = {seq: predict_and_ism(self.model, seq, self.target)}
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
        top.axvline(pos, color="k", lw=0.8)
        effect = ism.min(axis=0)
        bottom.bar(range(len(seq)), effect, color=np.where(effect < 0, "tab:blue", "tab:red"))
        bottom.axvline(pos, color="k", lw=0.8)
        bottom.set_ylabel("worst\nmutation", fontsize=8)
        bottom.set_xlim(-0.5, len(seq) - 0.5)
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


def ig_path(model, x, baseline=None, *, steps: int = 50, target=None) -> IGPath:
    """The model's gradients at ``steps + 1`` evenly spaced points from ``baseline`` to ``x``.

    Integrated gradients (Sundararajan, Taly & Yan, 2017, "Axiomatic attribution for
    deep networks") attributes ``f(x) - f(x')`` to the inputs as
    ``(x - x') * integral_0^1 grad f(x' + alpha (x - x')) d alpha``. This function
    evaluates the integrand on the grid ``alpha = 0, 1/steps, ..., 1`` in one batch;
    :func:`ig_path_state` integrates it up to any ``alpha``.

    Parameters
    ----------
    model : torch.nn.Module
        Differentiable; one example in, one score (or ``target`` column) out.
    x : tensor
        One example: DNA ``(4, L)`` or an image ``(C, H, W)`` (a leading batch axis of 1 is dropped).
    baseline : tensor, optional
        The reference ``x'``, same shape; default all zeros (no base / a black image).
    steps : int
        Number of intervals on the path.
    target : int, optional
        Output column for multi-output models.
    """
    x = _single(x)
    baseline = torch.zeros_like(x) if baseline is None else _single(baseline, "baseline")
    if baseline.shape != x.shape:
        raise ValueError(f"baseline has shape {tuple(baseline.shape)} but x has {tuple(x.shape)}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    alphas = torch.linspace(0, 1, steps + 1)
    points = baseline + alphas.view(-1, *[1] * x.ndim) * (x - baseline)
    points.requires_grad_(True)
    with torch.enable_grad(), _evaluating(model):
        outputs = score_fn(model, target)(points)
        (gradients,) = torch.autograd.grad(outputs.sum(), points)
    return IGPath(x, baseline, alphas.numpy(), outputs.detach().numpy().astype(float),
                  gradients.detach())


def ig_path_state(path: IGPath, alpha: float) -> IGState:
    """Integrated gradients accumulated from ``alpha = 0`` up to ``alpha`` (trapezoid rule).

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
    else:
        integral = (grads[:k].sum(0) + grads[1 : k + 1].sum(0)) / (2 * path.steps)
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


def ig_path_explorer(model, x, baseline=None, *, steps: int = 50, target=None,
                     sites=()) -> IGPathExplorer:
    """Walk along the integrated-gradients path with an ``alpha`` slider.

    Shows the interpolated input, the gradient there, the attribution accumulated so
    far, and the running total against ``f(x_alpha) - f(x')``: the two curves coincide
    (up to the integration error) and end at ``f(x) - f(x')`` (completeness, Sundararajan
    et al. 2017). The gradients are computed once, in :func:`ig_path`; moving the slider
    only integrates and redraws.

    Parameters
    ----------
    model, x, baseline, steps, target
        As for :func:`ig_path`.
    sites : list of mlcourse.datasets.base.Site, optional
        Ground-truth motif sites to shade (DNA).
    """
    return IGPathExplorer(ig_path(model, x, baseline, steps=steps, target=target), sites=sites)
