"""Speed-up engine for SIS on images: rescore only the window that masking one patch can reach.

The teaching definition is :func:`mlcourse.interpret.sis.sis_collections`; this
module makes ``fast=True`` cheap for image CNNs such as
:func:`mlcourse.models.vision.mnist_cnn`, and tests check that both give the
same SISes.

Masking one feature (say a 2x2 patch) of an image changes a convolution's
output only where its receptive field meets the patch: a 4x4 window of the
first 3x3 convolution, 3x3 after a 2x2 max pool, 5x5 after the second
convolution, 3x3 of the last 7x7 maps. For a model that begins with a chain of
``Conv2d`` / elementwise / ``MaxPool2d`` modules the screen therefore computes
each step's reference activations once per input, and for every candidate
only the windows, each from the reference around it and the previous window
(:class:`_Window`); the model's remaining modules (the dense head) then read
the last maps with that window written in. That is about a sixth of the
multiply-adds of a forward pass for :func:`~mlcourse.models.vision.mnist_cnn`.

Like :class:`mlcourse.interpret.engines.SISScreen` for DNA, the result only
*shortlists*: window arithmetic differs from a whole forward pass in the last
bits, so :meth:`ImageSISScreen.interval` gives each candidate's score as an
interval, and :func:`~mlcourse.interpret.sis.sis_collections` lets the model
itself score the candidates that might be the best and whose value the
interval does not pin down. A candidate whose patch already equals the masked
value leaves the input unchanged: its score is the reference's, computed by the
model's own modules. Otherwise the interval of a softmax probability is the
softmax of the logits at the corners of their error box, computed by torch's
own kernel in the model's dtype (it rounds monotonically while the target class
leads), so a saturated probability is pinned to one float and the many
candidates that tie there need no forward pass (the lowest feature index wins,
as in the plain path).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mlcourse.interpret.engines import Recomputing, _Inject, _record, at_least, chain_cut
from mlcourse.interpret.scoring import select
from mlcourse.models.geometry import Geometry

__all__ = ["ImageSISScreen", "image_chain"]

_POINTWISE = (
    nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Softplus,
    nn.Dropout, nn.Identity, nn.BatchNorm2d,
)


@dataclass
class _Layer:
    """One module of the chain, with its window along rows and columns (``None`` for elementwise)."""

    module: nn.Module
    kind: str  # "conv", "pool" or "pointwise"
    out_size: tuple[int, int]
    rows: Geometry | None = None
    cols: Geometry | None = None

    def window(self, region: torch.Tensor) -> torch.Tensor:
        """The module on a window ``region`` of its (padded) input, without padding of its own."""
        m = self.module
        if self.kind == "conv":
            return F.conv2d(region, m.weight, m.bias, m.stride, 0, m.dilation, m.groups)
        if self.kind == "pool":  # the maximum over the kernel's strided slices: the same values, faster
            (h, w), (kh, kw) = self.window_out(region), (self.rows.kernel, self.cols.kernel)
            (sh, sw), (dh, dw) = (self.rows.stride, self.cols.stride), (self.rows.dilation, self.cols.dilation)
            out = None
            for a in range(kh):
                for b in range(kw):
                    part = region[..., a * dh:a * dh + (h - 1) * sh + 1:sh, b * dw:b * dw + (w - 1) * sw + 1:sw]
                    out = part if out is None else torch.maximum(out, part)
            return out
        return m(region)

    def window_out(self, region: torch.Tensor) -> tuple[int, int]:
        """Outputs of a conv or pool on ``region`` without padding: (rows, columns)."""
        return tuple((n - g.reach - 1) // g.stride + 1 for n, g in zip(region.shape[-2:], (self.rows, self.cols)))


def _pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _layer(module: nn.Module, out_size) -> _Layer | None:
    """A ``_Layer`` for a supported module, else None (the chain stops there)."""
    if isinstance(module, _POINTWISE):
        return _Layer(module, "pointwise", out_size)
    if isinstance(module, nn.Conv2d) and module.padding_mode == "zeros" and not isinstance(module.padding, str):
        kind, padding, dilation = "conv", module.padding, module.dilation
    elif isinstance(module, nn.MaxPool2d) and not module.ceil_mode and not module.return_indices \
            and _pair(module.padding) == (0, 0):
        kind, padding, dilation = "pool", 0, module.dilation
    else:
        return None
    k, s = _pair(module.kernel_size), _pair(module.stride if module.stride is not None else module.kernel_size)
    p, d = _pair(padding), _pair(dilation)
    rows, cols = Geometry(k[0], s[0], p[0], d[0]), Geometry(k[1], s[1], p[1], d[1])
    if rows.reach < rows.stride - 1 or cols.reach < cols.stride - 1:
        return None  # inputs between windows: not a chain this engine follows
    return _Layer(module, kind, out_size, rows, cols)


def image_chain(model, example: torch.Tensor, target=None):
    """The local chain at the start of ``model`` for images like ``example`` ``(1, C, H, W)``, or None.

    Runs the model once and keeps the leaf modules from the first ``Conv2d``
    that reads the input while each reads only the previous one's output
    (once) and is a ``Conv2d`` (zero padding), an elementwise module or a
    ``MaxPool2d`` without padding. Returns the chain's ``_Layer`` list; None
    when there is no such chain or the model reads its input again after it
    (the rest of the model, run on the chain's output by :func:`~mlcourse.interpret.engines.chain_cut`, must
    give the model's output).
    """
    if not isinstance(model, nn.Module) or example.ndim != 4:
        return None
    calls, output = _record(model, example)
    counts: dict[int, int] = {}
    for mod, _, _ in calls:
        counts[id(mod)] = counts.get(id(mod), 0) + 1
    layers, current, chain_output = [], example, None
    for mod, inp, out in calls:
        if not layers and not (len(inp) == 1 and inp[0] is example):
            continue
        if len(inp) != 1 or inp[0] is not current or counts[id(mod)] != 1:
            break
        if not isinstance(out, torch.Tensor) or out.ndim != 4:
            break
        layer = _layer(mod, tuple(out.shape[-2:]))
        if layer is None or not layers and layer.kind != "conv":
            break
        layers.append(layer)
        current = chain_output = out
    if not layers:
        return None
    try:
        via_chain = _rest(model, layers, example.shape[1:], target, chain_output)
    except (RuntimeError, ValueError):
        return None
    if not torch.allclose(select(output, target), via_chain, rtol=1e-5, atol=1e-5):
        return None
    return layers


def _rest(model, layers, x_shape, target, maps: torch.Tensor) -> torch.Tensor:
    """The model's output column ``target`` when its chain's output is ``maps``."""
    with chain_cut(model, [layer.module for layer in layers]) as inject:
        return _run_rest(model, inject, x_shape, maps, target)


def _run_rest(model, inject: _Inject, x_shape, maps: torch.Tensor, target=None, column=False) -> torch.Tensor:
    inject.value = maps
    dummy = torch.zeros((), dtype=maps.dtype, device=maps.device).expand(maps.shape[0], *x_shape)
    out = model(dummy)
    return out if column else select(out, target)


@dataclass
class _Window:
    """Where masking one feature changes the input of each chain layer, for a class of features.

    Features whose windows have the same sizes and offsets form one class
    (for 2x2 patches and pools of stride 2: the four parities of the patch's
    position); a class is computed in one batch. For layer ``i`` (inputs of
    conv and pool layers), ``region_start[i]`` ``(F, 2)`` is where the window
    it reads starts in its padded input, ``region_size[i]`` its size and
    ``offset[i]`` where the previous layer's changed window sits inside it.
    ``out_start`` ``(F, 2)`` and ``out_size`` say where the last layer's
    changed window lies in the chain's padded output; ``real[i]`` ``(F, 1, h, w)``
    marks the outputs of layer ``i``'s window that exist (the others are zeroed,
    as zero padding).
    """

    features: torch.Tensor
    region_start: dict[int, torch.Tensor]
    region_size: dict[int, tuple[int, int]]
    offset: dict[int, tuple[int, int]]
    real: dict[int, torch.Tensor]
    out_start: torch.Tensor
    out_size: tuple[int, int]


def _feature_boxes(labels: torch.Tensor, shape, n_features: int):
    """First and last row and column ``(F, 2)`` each of every feature's elements."""
    full = torch.broadcast_to(labels, shape).reshape(-1)
    h, w = shape[-2:]
    rows = (torch.arange(h)[:, None].expand(h, w)).reshape(-1).repeat(full.numel() // (h * w))
    cols = (torch.arange(w)[None, :].expand(h, w)).reshape(-1).repeat(full.numel() // (h * w))
    first, last = [], []
    for coord in (rows, cols):
        first.append(torch.full((n_features,), h * w).scatter_reduce(0, full, coord, "amin"))
        last.append(torch.full((n_features,), -1).scatter_reduce(0, full, coord, "amax"))
    return torch.stack(first, 1), torch.stack(last, 1)


def _follow(layers: list[_Layer], in_size, first: torch.Tensor, last: torch.Tensor):
    """Per feature and layer: the changed window of the layer's input, the region it reads, its outputs.

    Windows are not clipped at the borders (outputs outside the map are computed
    on zero padding and dropped), so that their sizes depend only on the
    feature's position modulo the strides.
    """
    plan, size = [], in_size
    for layer in layers:
        if layer.kind == "pointwise":
            plan.append(None)
            continue
        geo = (layer.rows, layer.cols)
        lo = torch.stack([-torch.div(g.reach - first[:, a] - g.padding, g.stride, rounding_mode="floor")
                          for a, g in enumerate(geo)], 1)  # ceil((first + pad - reach) / stride)
        hi = torch.stack([torch.div(last[:, a] + g.padding, g.stride, rounding_mode="floor")
                          for a, g in enumerate(geo)], 1)
        region = torch.stack([lo[:, a] * g.stride - g.padding for a, g in enumerate(geo)], 1)
        region_size = torch.stack([(hi[:, a] - lo[:, a]) * g.stride + g.reach + 1 for a, g in enumerate(geo)], 1)
        plan.append((first, last, region, region_size, lo, hi, size))
        first, last, size = lo, hi, layer.out_size
    return plan, first, last


class ImageSISScreen:
    """Interval scores of every "mask one more feature" candidate of images, for SIS's ``fast=True``.

    Build with :meth:`build`; :meth:`interval` gives, for inputs ``rows`` with
    the features ``remaining`` kept, the lowest and highest value ``f`` can
    return for each candidate (equal where the value is known exactly).
    """

    # bound on |window logit - model logit|, relative to 1 + the largest |logit| of that input: float32
    # rounding is ~1e-7 (on x86 with oneDNN's direct convolutions the window logits were bit-identical)
    LOGIT_ERROR = 1e-6
    # the model runs on at least this many rows at once (the first repeated): matrix kernels for a
    # few rows round differently from those for many, and f's values should not depend on the batch
    MIN_ROWS = 16

    def __init__(self, model, layers, inputs, batch_size: int, output: str, target, dtype):
        self.model, self.layers, self.batch_size = model, layers, batch_size
        self.output, self.target, self.dtype = output, target, dtype
        # known values are f's own (the reference's, the logit itself, or the softmax kernel's at both
        # corners), so the choice needs no rescoring; torch.sigmoid's vectorised body and scalar tail
        # can differ in the last bit, so a sigmoid's known value is rescored (as for DNA)
        self.KNOWN_IS_EXACT = not (output == "probability" and target is None)
        self.x_shape = inputs.shape
        changed = (inputs.X != inputs.fully_masked).reshape(inputs.X.shape[0], -1)
        labels = torch.broadcast_to(inputs.labels, inputs.shape).reshape(-1)
        counts = torch.zeros(inputs.X.shape[0], inputs.n_features, device=changed.device)
        # unchanged[n, f]: masking feature f leaves input n as it is (the patch already has the masked value)
        self.unchanged = counts.index_add_(1, labels, changed.float()).eq(0).cpu()
        self._windows(inputs)
        labels = torch.broadcast_to(inputs.labels, inputs.shape)[None]
        self.padded_labels = _pad(labels, self.pads[0], value=-1)

    @classmethod
    def build(cls, model, inputs, batch_size: int, output: str = "raw", target=None) -> ImageSISScreen:
        """The screen for images ``(C, H, W)`` of a model that starts with a chain (:func:`image_chain`).

        ``target`` is one class for all inputs (or None for one output); call with
        the model in eval mode.

        Raises
        ------
        ValueError
            When the inputs are not images, ``target`` is not one class, or the
            model does not start with such a chain: use ``fast=False``.
        """
        if len(inputs.shape) != 3:
            raise ValueError(f"the image screen needs images (C, H, W), got inputs of shape {inputs.shape}")
        if target is not None and not isinstance(target, int):
            raise ValueError("fast=True on images screens one class target for all inputs (an int)")
        with torch.inference_mode():
            layers = image_chain(model, inputs.X[:1], target)
            if layers is None:
                raise ValueError(f"fast=True on images needs an nn.Module that starts with Conv2d / elementwise / "
                                 f"MaxPool2d modules (as mlcourse.models.vision.mnist_cnn); {type(model).__name__} "
                                 "does not: use fast=False")
            dtype = model(inputs.X[:1]).dtype
        return cls(model, layers, inputs, batch_size, output, target, dtype)

    def _windows(self, inputs) -> None:
        """The classes of features (:class:`_Window`) and each layer input's padding (``self.pads``)."""
        first, last = _feature_boxes(inputs.labels.cpu(), inputs.shape, inputs.n_features)
        plan, out_first, out_last = _follow(self.layers, inputs.shape[-2:], first, last)
        device = inputs.labels.device
        self.pads = {}  # layer index -> (top, bottom, left, right) zero padding of its reference input
        for i, step in enumerate(plan):
            if step is not None:
                _, _, region, region_size, _, _, size = step
                end = region + region_size - 1
                self.pads[i] = (max(0, -int(region[:, 0].min())), max(0, int(end[:, 0].max()) - size[0] + 1),
                                max(0, -int(region[:, 1].min())), max(0, int(end[:, 1].max()) - size[1] + 1))
        out_size = self.layers[-1].out_size
        out_extent = out_last - out_first + 1
        self.out_pad = (max(0, -int(out_first[:, 0].min())), max(0, int(out_last[:, 0].max()) - out_size[0] + 1),
                        max(0, -int(out_first[:, 1].min())), max(0, int(out_last[:, 1].max()) - out_size[1] + 1))
        signature = []
        for step in plan:
            if step is not None:
                box_first, box_last, region, region_size, _, _, _ = step
                signature += [box_first - region, box_last - box_first, region_size]
        signature.append(out_extent)
        keys = torch.cat(signature, 1)
        self.classes = []
        for key in torch.unique(keys, dim=0):
            members = torch.nonzero((keys == key).all(dim=1)).reshape(-1)
            self.classes.append(self._window_class(plan, members, out_first, out_extent, device))

    def _window_class(self, plan, members, out_first, out_extent, device) -> _Window:
        region_start, region_size, offset, real = {}, {}, {}, {}
        j = members[0]
        for i, step in enumerate(plan):
            if step is None:
                continue
            box_first, _, region, size, lo, hi, _ = step
            top, _, left, _ = self.pads[i]
            region_start[i] = (region[members] + torch.tensor([top, left])).to(device)
            region_size[i] = (int(size[j, 0]), int(size[j, 1]))
            offset[i] = (int(box_first[j, 0] - region[j, 0]), int(box_first[j, 1] - region[j, 1]))
            real[i] = _inside(lo[members], hi[members] - lo[members] + 1, self.layers[i].out_size).to(device)
        top, _, left, _ = self.out_pad
        return _Window(members.to(device), region_start, region_size, offset, real,
                       (out_first[members] + torch.tensor([top, left])).to(device),
                       (int(out_extent[j, 0]), int(out_extent[j, 1])))

    def start(self, inputs, rows: torch.Tensor, remaining: torch.Tensor) -> Recomputing:
        """The tracker of one backward selection (as :meth:`mlcourse.interpret.engines.SISScreen.start`):
        :meth:`interval` computed afresh for each step's masks."""
        return Recomputing(self, inputs, rows, remaining)

    def interval(self, inputs, rows: torch.Tensor, remaining: torch.Tensor):
        """``(low, high)`` ``(R, F)`` float64: bounds of ``f`` for masking feature ``f`` of input ``rows[r]``
        with the features ``remaining[r]`` kept (meaningful where ``remaining`` is True)."""
        low = torch.full(remaining.shape, -math.inf, dtype=torch.float64)
        high = low.clone()
        with torch.inference_mode(), chain_cut(self.model, [layer.module for layer in self.layers]) as inject:
            per_chunk = max(1, self.batch_size // max(1, inputs.n_features))
            for s in range(0, rows.numel(), per_chunk):
                part = slice(s, s + per_chunk)
                self._chunk(inputs, inject, rows[part], remaining[part], low[part], high[part])
        return low, high

    def _chunk(self, inputs, inject, rows, remaining, low, high) -> None:
        """:meth:`interval` for a chunk of inputs, written into ``low`` and ``high``."""
        current = inputs.masked(rows, remaining.to(inputs.X.device))
        acts = [at_least(current, self.MIN_ROWS)]
        for layer in self.layers:
            acts.append(layer.module(acts[-1]))
        reference = self._scores(_run_rest(self.model, inject, self.x_shape, acts[-1], column=True))
        reference = reference[:rows.numel()].double().cpu()
        same = remaining & self.unchanged[rows]
        low[same] = high[same] = reference[:, None].expand_as(low)[same]
        padded = {i: _pad(acts[i], p) for i, p in self.pads.items()}
        final = _pad(acts[-1], self.out_pad)
        masked = _pad(inputs.fully_masked[rows], self.pads[0])
        todo = remaining & ~self.unchanged[rows]
        for window in self.classes:
            owner, slot = torch.nonzero(todo[:, window.features.cpu()], as_tuple=True)
            for s in range(0, owner.numel(), self.batch_size):
                o, k = owner[s:s + self.batch_size], slot[s:s + self.batch_size]
                logits = self._candidates(inputs, masked, padded, final, inject, window,
                                          at_least(o, self.MIN_ROWS).to(current.device),
                                          at_least(k, self.MIN_ROWS).to(current.device))[:o.numel()]
                lo, hi = self._bounds(logits.double().cpu())
                low[o, window.features.cpu()[k]], high[o, window.features.cpu()[k]] = lo, hi

    def _candidates(self, inputs, masked, padded, final, inject, window: _Window, owner, slot):
        """The model's outputs with feature ``window.features[slot]`` of chunk input ``owner`` masked.

        Layer by layer, the window a conv or pool reads is gathered from its
        padded reference input, the previous layer's changed window is written
        into it, and the module runs on it (an elementwise module runs on the
        changed window itself); outputs outside the maps are set to zero.
        """
        vals = real = None
        for i, layer in enumerate(self.layers):
            if layer.kind == "pointwise":
                vals = layer.window(vals) * real
                continue
            starts, (h, w) = window.region_start[i][slot], window.region_size[i]
            region = _gather(padded[i], owner, starts, h, w)
            if i == 0:  # the input's window, with the feature's elements masked
                labels = _gather(self.padded_labels, torch.zeros_like(owner), starts, h, w)
                feature = window.features[slot].reshape(-1, 1, 1, 1)
                region = torch.where(labels == feature, _gather(masked, owner, starts, h, w), region)
            else:
                top, left = window.offset[i]
                region[:, :, top:top + vals.shape[-2], left:left + vals.shape[-1]] = vals
            real = window.real[i][slot]
            vals = layer.window(region) * real
        maps = final[owner]
        _scatter(maps, vals, window.out_start[slot])
        top, bottom, left, right = self.out_pad
        maps = maps[:, :, top:maps.shape[-2] - bottom, left:maps.shape[-1] - right]
        return _run_rest(self.model, inject, self.x_shape, maps, column=True)

    def _scores(self, out: torch.Tensor) -> torch.Tensor:
        """``f`` from the model's outputs, as :func:`mlcourse.interpret.scoring.score` computes it."""
        if self.output == "raw":
            return select(out, self.target)
        if self.target is None:
            return torch.sigmoid(select(out))
        return select(torch.softmax(out, dim=1), self.target)

    def _bounds(self, out: torch.Tensor):
        """Lowest and highest ``f`` for window outputs ``out`` ``(N, K)`` (float64), see the module docstring."""
        error = self.LOGIT_ERROR * (1 + out.abs().amax(dim=1, keepdim=True))
        if self.output == "raw" or self.target is None:
            z = select(out, self.target)
            error = error[:, 0]
            link = torch.clone if self.output == "raw" else torch.sigmoid
            # rounded to the model's dtype, as f's own logit is, then through the (monotone) link
            return (link((z - error).to(self.dtype)).double(), link((z + error).to(self.dtype)).double())
        t, z = self.target, out
        # f's softmax never decreases with z_t and never increases with another logit while z_t is the
        # largest (each float operation of it rounds monotonically): its value at the corners of the
        # logits' error box, computed by the same kernel in the model's dtype, bounds f
        for_low, for_high = z + error, z - error
        for_low[:, t], for_high[:, t] = z[:, t] - error[:, 0], z[:, t] + error[:, 0]
        low = torch.softmax(for_low.to(self.dtype), dim=1)[:, t].double()
        high = torch.softmax(for_high.to(self.dtype), dim=1)[:, t].double()
        others = torch.cat([for_low[:, :t], for_low[:, t + 1:]], dim=1)
        leading = for_low[:, t] > others.amax(dim=1)
        # elsewhere: the exact softmax at the corners, widened by a bound on the kernel's rounding
        slack = 2 ** -18 if self.dtype == torch.float32 else 2 ** -45
        exact_low = torch.softmax(for_low, dim=1)[:, t] * (1 - slack)
        exact_high = torch.clamp(torch.softmax(for_high, dim=1)[:, t] * (1 + slack), max=1.0)
        return torch.where(leading, low, exact_low), torch.where(leading, high, exact_high)


def _pad(maps: torch.Tensor, pad, value=0) -> torch.Tensor:
    """``maps`` ``(..., H, W)`` with ``pad = (top, bottom, left, right)`` rows and columns of ``value`` added."""
    top, bottom, left, right = pad
    return F.pad(maps, (left, right, top, bottom), value=value).contiguous(memory_format=torch.channels_last)


def _inside(start: torch.Tensor, extent: torch.Tensor, size) -> torch.Tensor:
    """``(F, 1, h, w)``: which outputs of windows starting at ``start`` ``(F, 2)`` lie in a map of ``size``."""
    h, w = int(extent[0, 0]), int(extent[0, 1])
    r = start[:, :1] + torch.arange(h)
    c = start[:, 1:] + torch.arange(w)
    ok_r, ok_c = (r >= 0) & (r < size[0]), (c >= 0) & (c < size[1])
    return (ok_r[:, :, None] & ok_c[:, None, :]).unsqueeze(1).float()


def _gather(maps: torch.Tensor, owner: torch.Tensor, starts: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``(N, C, h, w)``: the window of ``maps[owner[n]]`` ``(R, C, H, W)`` whose corner is ``starts[n]``.

    ``maps`` should be channels-last (:func:`_pad` makes it so): each window is then ``h w`` rows
    of ``C`` contiguous values, picked by one ``index_select``; the result is channels-last too.
    """
    rows, height, width, channels = maps.shape[0], maps.shape[2], maps.shape[3], maps.shape[1]
    flat = maps.permute(0, 2, 3, 1).reshape(rows * height * width, channels)
    corner = (owner * height + starts[:, 0]) * width + starts[:, 1]
    grid = (torch.arange(h, device=maps.device)[:, None] * width + torch.arange(w, device=maps.device)).reshape(-1)
    taken = flat.index_select(0, (corner[:, None] + grid).reshape(-1))
    return taken.view(owner.numel(), h, w, channels).permute(0, 3, 1, 2)


def _scatter(maps: torch.Tensor, vals: torch.Tensor, starts: torch.Tensor) -> None:
    """Write ``vals`` ``(N, C, h, w)`` into ``maps`` ``(N, C, H, W)`` at the corners ``starts`` ``(N, 2)``."""
    h, w = vals.shape[-2:]
    view = maps.unfold(2, h, 1).unfold(3, w, 1)
    view[torch.arange(maps.shape[0], device=maps.device), :, starts[:, 0], starts[:, 1]] = vals
