"""Speed-up engines for ISM and SIS: recompute only what a single-position edit can reach.

The teaching definitions live in :mod:`mlcourse.interpret.ism` and
:mod:`mlcourse.interpret.sis`; this module makes them fast for the Zeng et al.
CNNs, and is used only when a caller asks for it (``fast=True``). Tests check
that both paths give the same numbers on every architecture.

The idea is fastISM's (Nair et al. 2022, Bioinformatics 38:2397): a mutation
at position ``p`` changes a convolution's output only in the window of
positions whose receptive field holds ``p``. For a model that begins with a
chain of ``Conv1d`` / elementwise / ``MaxPool1d`` modules, the reference
activations are computed once per sequence and each edited input only
recomputes those windows. The first convolution is linear in its input, so its
change is ``W[:, b, t] - W[:, a, t]`` summed into the window without any
convolution, and a global max pool over a window-edited map is
``max(max outside the window, max inside)``, with the outside maxima read from
prefix and suffix maxima.

For a convolution followed by a global max pool (the 1-layer models) all
positions are scored at once. ISM's base swaps change an output by a lookup of
weight differences (``_LocalPlan._by_candidates``): on the CPU, for sequences up
to ``KERNEL_LENGTH``, a compiled kernel (:mod:`mlcourse.interpret.ism_kernel`)
sums every tap of every edit; elsewhere torch operations visit only the few
outputs near the top of each channel, the ones that can beat the maximum outside
an edit's window. The rest of the model runs for the rows whose pooled vector
can differ. Other edits take, per tap, a shifted slice of
the reference output plus the change, and a running maximum over the taps
(``_LocalPlan._by_running_max``); SIS, which asks only for the positions still
present, gathers those (input, position) pairs (``_LocalPlan._by_pairs``).
Deeper models run every layer once per block of positions that share one
window geometry (positions equal modulo the product of the strides,
``_LocalPlan._by_windows``).
ISM runs in chunks of sequences sized by an activation budget, so its memory
stays small whatever the length and width.

* :func:`local_plan` finds the chain and returns a plan whose ``edit_scores``
  scores every single-column edit of a batch (ISM edits in the four bases;
  SIS the masked value) and whose ``ism`` gives the whole mutation map;
* :class:`SISScreen` uses it to shortlist SIS's candidate removals; for a
  conv -> global max pool chain (the 1-layer models) a tracker keeps a backward
  selection's state from step to step, since each step masks one position and so
  changes one window of the convolution: :class:`_CompiledTracker` on the CPU (its
  loops compiled by numba, :mod:`mlcourse.interpret.sis_kernel`),
  :class:`_MaskingTracker` (torch operations) on other devices.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mlcourse.config import device_of, eval_mode
from mlcourse.interpret.scoring import select
from mlcourse.models.geometry import geometry

__all__ = ["local_plan", "supports", "SISScreen"]

_POINTWISE = (
    nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Softplus,
    nn.Dropout, nn.Identity, nn.BatchNorm1d,
)


def _monotone(module: nn.Module) -> bool:
    """True for elementwise maps that never decrease: they commute with a max pool."""
    if isinstance(module, (nn.ReLU, nn.Sigmoid, nn.Tanh, nn.Softplus, nn.Dropout, nn.Identity)):
        return True
    if isinstance(module, nn.LeakyReLU):
        return module.negative_slope >= 0
    return isinstance(module, nn.ELU) and module.alpha >= 0



def _halving_max(vals: torch.Tensor) -> torch.Tensor:
    """``vals.amax(dim=-2)`` by pairwise maxima of halves (overlapping when odd): several times
    faster than a reduction over a middle dimension on the CPU, and exactly the same values."""
    while vals.shape[-2] > 1:
        half = vals.shape[-2] // 2
        vals = torch.maximum(vals[..., :vals.shape[-2] - half, :], vals[..., half:, :])
    return vals[..., 0, :]


def _sliding_max(values: torch.Tensor, width: int) -> torch.Tensor:
    """``F.max_pool1d(values, width, 1)``: the maximum of every ``width`` consecutive entries of the last axis.

    By doubling: ``power`` holds the maxima of runs of ``size`` entries (1, 2, 4, ...),
    and the runs of the binary digits of ``width`` are combined side by side. A few
    elementwise maxima instead of ``width`` comparisons per output (several times
    faster than ``max_pool1d`` on the CPU), and exactly the same values.
    """
    out, offset, power, size = None, 0, values, 1
    count = values.shape[-1] - width + 1
    while True:
        if width & size:
            piece = power[..., offset:offset + count]
            out = piece if out is None else torch.maximum(out, piece)
            offset += size
        if 2 * size > width:
            return out
        power = torch.maximum(power[..., :-size], power[..., size:])
        size *= 2


def _running_maxima(acts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Prefix and suffix maxima along the length of ``acts`` ``(N, C, J)``: ``prefix[..., j]`` is the
    maximum over outputs ``0..j``, ``suffix[..., j]`` over ``j..J-1``."""
    return torch.cummax(acts, dim=-1).values, torch.cummax(acts.flip(-1), dim=-1).values.flip(-1)


def _maxima_around(prefix: torch.Tensor, suffix: torch.Tensor, margin: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(before, after)`` ``(N, C, J + 1 + 2 margin)``: at ``i + margin`` the maxima over outputs before
    index ``i`` and from ``i`` on, for ``i`` in ``-margin .. J + margin``, ``-inf`` where there are none
    (``before`` up to ``i = 0``, ``after`` from ``i = J``): windows that reach past the ends read them
    without clamping their indices."""
    none = torch.full_like(prefix[:, :, :1], -math.inf)
    before, after = torch.cat([none, prefix], dim=-1), torch.cat([suffix, none], dim=-1)
    if margin:
        before, after = (F.pad(v, (margin, margin), mode="replicate") for v in (before, after))
    return before, after


def _substitutions(device) -> torch.Tensor:
    """``(5, 3)``: for a column holding base ``a`` (code 4: N), the bases of its three substitutions,
    ``(a + k + 1) % 4`` for edit ``k`` (the N row is never read)."""
    return (torch.arange(5, device=device)[:, None] + torch.arange(1, 4, device=device)) % 4


def _max_shifted_into(out: torch.Tensor, values: torch.Tensor, shift: int) -> None:
    """``out[..., q] = max(out[..., q], values[..., q - shift])`` wherever ``q - shift`` is on ``values``
    (in place: no shifted copy is made)."""
    lo, hi = max(0, shift), min(out.shape[-1], shift + values.shape[-1])
    if lo < hi:
        window = out[..., lo:hi]
        torch.maximum(window, values[..., lo - shift:hi - shift], out=window)


def _window_minima(valley: torch.Tensor, width: int) -> torch.Tensor:
    """``(..., S - width + 1)``: the minimum of each window of ``width`` consecutive entries of ``valley``
    ``(..., S)``, a sequence that never rises after it falls (as the maximum of a non-decreasing and a
    non-increasing one, such as the outside maxima of :meth:`_LocalPlan._outside`).

    Such a sequence falls to its minimum, at ``p0``, then rises: a window that holds ``p0`` has the
    minimum itself, one that ends before ``p0`` its last entry and one that starts after ``p0`` its
    first. So the smaller end of every window, or the minimum where the window holds ``p0``: a few
    elementwise passes instead of ``width`` comparisons per window, and the same values.
    """
    lowest, p0 = valley.min(dim=-1, keepdim=True)
    count = valley.shape[-1] - width + 1
    start = torch.arange(count, device=valley.device)
    holds = (start <= p0) & (p0 < start + width)
    return torch.where(holds, lowest, torch.minimum(valley[..., :count], valley[..., width - 1:]))


def local_plan(model, example: torch.Tensor, target=None) -> _LocalPlan:
    """The local-window plan of ``model`` for inputs like ``example`` ``(1, 4, L)``.

    Call in eval mode, without gradients. The plan's ``edit_scores(X, new, ref)``
    scores all single-column edits of ``X``, ``score(X)`` scores ``X`` itself and
    ``ism(X, ref, batch_size)`` gives ``f(mutant) - ref`` for all four bases.

    Raises
    ------
    ValueError
        When ``model`` is not an ``nn.Module`` that starts with a chain of
        ``Conv1d`` (zero padding), elementwise and ``MaxPool1d`` modules, each
        called once, whose input is used nowhere else: use the plain path.
    """
    plan = _LocalPlan.capture(model, example, target) if isinstance(model, nn.Module) else None
    if plan is None:
        raise ValueError(f"fast=True needs an nn.Module that starts with a chain of Conv1d / elementwise / "
                         f"MaxPool1d modules (as the Zeng et al. CNNs); {type(model).__name__} does not: "
                         "use fast=False")
    return plan


def supports(model, X: torch.Tensor, target=None) -> bool:
    """True when :func:`local_plan` works for ``model`` on inputs like ``X`` ``(N, 4, L)`` (and one ``target``)."""
    if not isinstance(model, nn.Module) or X.ndim != 3 or X.shape[1] != 4:
        return False
    if target is not None and not isinstance(target, int):
        return False  # the engine scores one output column for all inputs
    with eval_mode(model), torch.inference_mode():
        return _LocalPlan.capture(model, X[:1].to(device_of(model)).float(), target) is not None


class _Inject(nn.Module):
    """Stands in for the first module of the chain: returns a precomputed tensor."""

    def __init__(self):
        super().__init__()
        self.value = None

    def forward(self, _):
        return self.value


@dataclass
class _Step:
    """One module of the local chain, with its geometry along the length axis."""

    module: nn.Module
    kind: str  # "conv", "pool", "pointwise" or "global" (a max pool over the whole length)
    in_len: int
    out_len: int
    kernel: int = 1
    stride: int = 1
    dilation: int = 1
    pad: int = 0


def _geometry(module: nn.Module, in_len: int, out_len: int) -> _Step | None:
    """A ``_Step`` for a supported module, else None (the chain stops there)."""
    if isinstance(module, _POINTWISE):
        return _Step(module, "pointwise", in_len, out_len) if in_len == out_len else None
    if isinstance(module, nn.Conv1d):
        if module.padding_mode != "zeros" or module.padding == "same":
            return None
        g = geometry(module)
        return _Step(module, "conv", in_len, out_len, g.kernel, g.stride, g.dilation, g.padding)
    if isinstance(module, nn.MaxPool1d) and not module.ceil_mode and not module.return_indices:
        g = geometry(module)
        if out_len == 1 and g.padding == 0 and 1 + g.reach >= in_len:
            return _Step(module, "global", in_len, 1)
        return _Step(module, "pool", in_len, out_len, g.kernel, g.stride, g.dilation, g.padding)
    return None


def _record(model: nn.Module, x: torch.Tensor):
    """Run ``model(x)`` and list the leaf-module calls as (module, input, output)."""
    calls = []
    leaves = [m for m in model.modules() if not any(True for _ in m.children())]
    hooks = [m.register_forward_hook(lambda mod, inp, out: calls.append((mod, inp, out)))
             for m in leaves]
    try:
        output = model(x)
    finally:
        for h in hooks:
            h.remove()
    return calls, output


class chain_cut:  # noqa: N801 -- used as a context manager, like a function
    """Inside ``with chain_cut(model, chain) as inject``, the first module of ``chain`` returns
    ``inject.value`` (an :class:`_Inject`) and the other chain modules are identities, so calling the
    model runs only what follows the chain; all are put back on leaving.

    One object can cut the model again and again: where the chain's modules sit (their parent
    and attribute name, a scan of the model, ~55 us) and the stand-ins are found once, and
    :meth:`__enter__` looks the modules up again only if one has been moved or replaced since.
    """

    def __init__(self, model: nn.Module, chain: list[nn.Module]):
        self.model, self.chain = model, list(chain)
        self.inject = _Inject()
        self.stand_ins = [self.inject] + [nn.Identity() for _ in self.chain[1:]]
        self.slots = self._find()

    def _find(self) -> list[tuple[nn.Module, str]]:
        return [_parent_and_name(self.model, module) for module in self.chain]

    def __enter__(self) -> _Inject:
        if not all(parent._modules.get(name) is module for (parent, name), module in zip(self.slots, self.chain)):
            self.slots = self._find()
        self._put(self.stand_ins)
        return self.inject

    def __exit__(self, *exc) -> None:
        self._put(self.chain)

    def _put(self, modules) -> None:
        for (parent, name), module in zip(self.slots, modules):
            parent._modules[name] = module  # what setattr does for a registered child, without its checks


def at_least(batch: torch.Tensor, rows: int) -> torch.Tensor:
    """``batch`` with its first row repeated until it has at least ``rows`` rows (a model's matrix
    kernels for a few rows can round differently from those for many)."""
    if batch.shape[0] >= rows or batch.shape[0] == 0:
        return batch
    return torch.cat([batch, batch[:1].expand(rows - batch.shape[0], *batch.shape[1:])])


def _parent_and_name(model: nn.Module, target: nn.Module):
    for module in model.modules():
        for child_name, child in module.named_children():
            if child is target:
                return module, child_name
    raise ValueError("module not found in model")  # unreachable: chain modules come from model


class _LocalPlan:
    """The chain of local modules at the start of a model, and how to rerun only windows."""

    def __init__(self, model, score, steps, x_shape):
        self.model, self.score, self.steps, self.x_shape = model, score, steps, x_shape
        self._inject = None  # set while the model is cut (:meth:`_cut`)
        self._cutter = None  # the :class:`chain_cut` that :meth:`_cut` reuses, made on first use

    @classmethod
    def capture(cls, model: nn.Module, x: torch.Tensor, target=None):
        """Find the chain by running ``x`` once; None when the model does not start with one."""

        def score(batch):
            return select(model(batch), target)

        calls, _ = _record(model, x)
        counts: dict[int, int] = {}
        for mod, _, _ in calls:
            counts[id(mod)] = counts.get(id(mod), 0) + 1
        steps, current = [], x
        for mod, inp, out in calls:
            if not steps and not (len(inp) == 1 and inp[0] is x):
                continue  # before the first module that reads the input
            if len(inp) != 1 or inp[0] is not current or counts[id(mod)] != 1:
                break
            if not isinstance(out, torch.Tensor) or out.ndim != 3:
                break
            step = _geometry(mod, inp[0].shape[-1], out.shape[-1])
            if step is None or not steps and not isinstance(mod, nn.Conv1d):
                break
            steps.append(step)
            current = out
            if step.kind == "global":
                break
        if not steps:
            return None
        # max(relu(z)) == relu(max(z)): pool first, then apply a monotone map to fewer values
        moved = True
        while moved:
            moved = False
            for i in range(1, len(steps) - 1):
                if (steps[i].kind == "pointwise" and _monotone(steps[i].module)
                        and steps[i + 1].kind in ("pool", "global")):
                    steps[i], steps[i + 1] = steps[i + 1], steps[i]
                    moved = True
        plan = cls(model, score, steps, tuple(x.shape[1:]))
        reference = score(x)
        via_chain = plan._rest(plan._reference(x)[-1])
        if not torch.allclose(reference, via_chain, rtol=1e-5, atol=1e-5):
            return None  # the model uses its input after the chain: not a plain chain
        return plan

    def _reference(self, X):
        acts = [X]
        for step in self.steps:
            acts.append(step.module(acts[-1]))
        return acts

    def _rest(self, value: torch.Tensor) -> torch.Tensor:
        """The model's output when the chain's output is ``value`` (runs the model cut by :meth:`_cut`)."""
        with self._cut():
            self._inject.value = value
            dummy = torch.zeros((), device=value.device).expand(value.shape[0], *self.x_shape)
            return self.score(dummy)

    @contextmanager
    def _cut(self):
        """The model cut after its chain (:func:`chain_cut`), its injection at ``self._inject``.
        Re-entrant: a caller that scores many chunks cuts once, instead of swapping modules for
        every call of :meth:`_rest`. One :class:`chain_cut` serves every cut of the plan (it finds
        where the chain sits once: a scan of the model took ~55 us per cut)."""
        if getattr(self, "_inject", None) is not None:
            yield
            return
        if getattr(self, "_cutter", None) is None:
            self._cutter = chain_cut(self.model, [st.module for st in self.steps])
        with self._cutter as self._inject:
            try:
                yield
            finally:
                self._inject = None

    # Entries one ISM chunk may hold. The lookup path (:meth:`_by_candidates`) holds the pooled
    # values of every edit, (sequences, L, 3 edits, C): a quarter of LOOKUP_ELEMENTS bounds them, and
    # its other tensors are of that order (3 x 2^17: chunks of 60 sequences of 101 bp on 1layer, 7 on
    # 1layer_128motif; 1layer 300 x 101 bp added 9.5 MiB at 2^19, 2.3x tangermeme's 4.1, and 7.2 here, in
    # 5 % more time; 2^18 took 5.4 MiB and 15 % more time, the fixed cost per chunk). The
    # running-maximum path's tensors are (4 edits, sequences, L, C) at every tap, and chunks that
    # stay in the cache are fastest: TAP_ELEMENTS bounds four times the widest layer. The window
    # path keeps every layer's reference activations of the chunk
    # (ELEMENTS bounds their sum) and, per block of positions, the windows of its edits
    # (WINDOW_ELEMENTS bounds the largest, or the activations of WINDOW_SEQUENCES whole sequences
    # where those are more: :meth:`_window_budget`). Within ELEMENTS a chunk takes the fewest sequences
    # that need the fewest blocks (:meth:`_window_chunk`): small chunks with large blocks are
    # faster than large chunks, and keep ISM's added memory within 2x tangermeme's (3layer at 101 bp:
    # 15 sequences where ELEMENTS alone allows 67; the largest live tensors 5.9 -> 3.3 MiB).
    # Each block costs some 100 small operations (~0.5 ms) whatever its size, and its convolutions
    # run faster on more rows, so long sequences want larger blocks: at 1,000 bp a 3layer sequence
    # holds 50,576 activations, and blocks of 16 sequences' worth (2^19.6 entries: one block per
    # residue, chunks of 5 sequences) took 20 x 1,000 bp from 109 to 90 forward passes, 9.5 -> 18 MiB
    # added against tangermeme's 28-54; at 101 bp 16 sequences are 62k entries and 2^18 stays the bound.
    # HEAD_ROWS: the rows the rest of the model scores at once, so its intermediate tensors stay in the cache
    # (2^13: 1layer 300 x 101 bp 1.5-2 ms faster than 2^12, the same memory).
    LOOKUP_ELEMENTS = 3 * 2 ** 17
    HEAD_ROWS = 2 ** 13
    TAP_ELEMENTS = 2 ** 16
    ELEMENTS = 2 ** 18
    WINDOW_ELEMENTS = 2 ** 18
    WINDOW_SEQUENCES = 16

    def ism(self, X, batch_size):
        """``f(mutant) - f(x)`` for all four bases ``(N, 4, L)``, in chunks of sequences.

        A chunk holds at most ``batch_size / 4`` sequences, and as many as the
        activation budgets allow (so long sequences and wide layers go in smaller
        chunks: the memory stays bounded). ``f(x)`` comes from the chain's
        reference activations of the chunk.
        """
        out = torch.zeros_like(X)
        acts = self._reference(X[:1])
        if self._lookup_path():
            fits = self.LOOKUP_ELEMENTS // (4 * X.shape[-1] * acts[1].shape[1])
        elif self._tap_path():
            fits = self.TAP_ELEMENTS // (4 * max(a.numel() for a in acts))
        else:
            fits = self._window_chunk(X.shape[0], X.shape[-1], self._window_budget(acts),
                                      min(batch_size // 4, self.ELEMENTS // sum(a.numel() for a in acts)))
        per_chunk = max(1, min(batch_size // 4, fits))
        with self._cut():
            for s in range(0, X.shape[0], per_chunk):
                out[s:s + per_chunk] = self._chunk(X[s:s + per_chunk])
        return out

    def _window_budget(self, acts) -> int:
        """The entries a block's largest tensor may hold on the window path (:meth:`_by_windows`), for
        sequences whose reference activations are ``acts`` (:meth:`_reference`, a batch of any size):
        ``WINDOW_ELEMENTS``, or the activations of ``WINDOW_SEQUENCES`` sequences where those are more
        (long sequences: fewer, larger blocks, the memory still that of a small batch's forward pass)."""
        per_sequence = sum(a.numel() // a.shape[0] for a in acts)
        return max(self.WINDOW_ELEMENTS, self.WINDOW_SEQUENCES * per_sequence)

    def _window_chunk(self, n: int, length: int, budget: int, most: int) -> int:
        """Sequences per chunk on the window path: of ``1 .. most`` (and at most as many as give one
        edit's windows a block of ``budget`` entries, :meth:`_window_budget`), the fewest that score
        ``n`` sequences in the fewest blocks (:meth:`_by_windows`).

        A block holds ``budget / (3 chunk entries)`` positions of one residue, and never more
        than the residue has: a chunk of more sequences makes fewer chunks but smaller blocks. Each
        block costs a few dozen small operations whatever its size, as much as its arithmetic at 101 bp,
        so the block count sets the time; among equal counts the smallest chunk holds the fewest
        reference activations. (3layer at 101 bp: 15 sequences, one block of 12 positions per
        residue, 180 blocks for 300 sequences where 67 sequences took 270; at 1,000 bp, where
        :meth:`_window_budget` allows 16 sequences' activations: 5 sequences, one block per residue.)
        """
        layout = self._layout(length)
        most = min(most, budget // (3 * layout.entries))

        def blocks(size):
            per_block = max(1, budget // (size * 3 * layout.entries))
            return -(-n // size) * sum(-(-count // per_block) for count in layout.counts.values())

        return min(range(1, max(1, most) + 1), key=lambda size: (blocks(size), size))

    def _chunk(self, X):
        """ISM of a chunk of sequences: every base at every position.

        Each clean one-hot column gets only its three real substitutions
        (``(a + 1) % 4``, ``(a + 2) % 4``, ``(a + 3) % 4``), scored by the lookup
        path (:meth:`_by_candidates`) when the chain is a convolution and a global
        max pool, else by :meth:`edit_scores`. With an N column, or on the
        running-maximum path of :meth:`_by_taps` (where the four bases are columns
        of the weights, the same at every position, so scoring the identity base
        too is cheapest), all four bases are scored everywhere. The caller sets
        identity entries to exactly 0.
        """
        codes = self._column_codes(X)
        clean = codes is not None and not bool((codes == 4).any())
        if clean and self._lookup_path():  # the convolution alone: its maxima hold the pool and f(x)
            conv = self.steps[0].module(X)
            bases = torch.eye(4, dtype=X.dtype, device=X.device)
            scores, ref = self._by_candidates(X, bases, _substitutions(X.device), conv, codes, None)
            return self._placed(codes, scores, ref)
        acts = self._reference(X)
        ref = self._rest(acts[-1]).to(X.dtype)
        bases = torch.eye(4, dtype=X.dtype, device=X.device)[:, None, :, None]  # (4, 1, 4, 1)
        if self._tap_path():  # the reference activations once, for f(x) and the edits
            g = self._global()
            prefix, suffix = _running_maxima(acts[g])
            scores = self._by_taps(X, bases, acts, g, prefix, suffix, ref)
            return (scores - ref[:, None]).transpose(0, 1)  # (N, 4, L)
        if not clean:  # not clean one-hot: all four bases everywhere
            return (self.edit_scores(X, bases, ref, acts=acts) - ref[:, None]).transpose(0, 1)  # (N, 4, L)
        new = F.one_hot(self._substituted(codes), 4).to(X.dtype).transpose(-1, -2)  # (3, N, 4, L)
        return self._placed(codes, self.edit_scores(X, new, ref, acts=acts), ref)

    def _placed(self, codes, scores, ref):
        """``(N, 4, L)``: the scores ``(3, N, L)`` of the three substitutions of each column minus ``ref``
        ``(N,)``, at their bases (0 at the base present). On the CPU a compiled loop writes each entry once
        (:func:`mlcourse.interpret.ism_kernel.placed`); elsewhere a scatter does."""
        if scores.device.type == "cpu":
            from mlcourse.interpret.ism_kernel import placed
            return placed(codes, scores.permute(1, 2, 0), ref)
        return self._placed_by_scatter(codes, scores, ref)

    def _placed_by_scatter(self, codes, scores, ref):
        """:meth:`_placed` by torch operations (any device)."""
        out = torch.zeros(codes.shape[0], 4, codes.shape[1], dtype=scores.dtype, device=scores.device)
        out.scatter_(1, self._substituted(codes).transpose(0, 1), (scores - ref[:, None]).transpose(0, 1))
        return out

    @staticmethod
    def _substituted(codes):
        """``(3, N, L)``: the bases of the three substitutions of each column, ``(a + k + 1) % 4``."""
        return (codes + torch.arange(1, 4, device=codes.device)[:, None, None]) % 4

    def _lookup_path(self) -> bool:
        """True when ISM's edits go through :meth:`_by_candidates`: the tap path with the global max
        pool right after the convolution."""
        return self._tap_path() and self._global() == 1

    def _tap_path(self) -> bool:
        """True when :meth:`edit_scores` scores every position at once (:meth:`_by_taps`, :meth:`_by_pairs`).

        The first convolution must be plain (stride 1, no dilation: a dilated one
        leaves unreached outputs inside an edit's range, which the outside maxima skip).
        """
        g = self._global()
        first = self.steps[0]
        return (g is not None and first.module.groups == 1 and first.stride == 1 and first.dilation == 1
                and all(st.kind == "pointwise" and not isinstance(st.module, nn.BatchNorm1d)
                        for i, st in enumerate(self.steps) if i not in (0, g)))

    def _global(self):
        """Index of the global max pool in the chain, or None."""
        return next((i for i, st in enumerate(self.steps) if st.kind == "global"), None)

    def edit_scores(self, X, new, ref, where=None, acts=None):
        """Scores of every single-column edit of ``X``: ``(K, N, L)``.

        Entry ``[k, i, p]`` scores ``X[i]`` with column ``p`` replaced by
        ``new[k, i, :, p]``; ``new`` broadcasts against ``(K, N, 4, L)`` (ISM: the
        four bases; SIS: the masked value of each input). ``ref`` ``(N,)`` are
        the scores of ``X`` itself, used where an edit reaches nothing and where
        the boolean ``where`` ``(N, L)`` (default: everywhere) is False; ``None``
        computes them when needed (and leaves 0 where ``where`` is False). Each
        position is one batch of ``K N`` edited inputs that recomputes only the
        windows the edit reaches (first-layer change without a convolution,
        global max pool from prefix and suffix maxima). ``acts``, when given, are the chain's
        reference activations of ``X`` (:meth:`_reference`), which a caller that has them need not
        have computed twice (nor held twice).
        """
        n = X.shape[0]
        raw_new = torch.as_tensor(new, dtype=X.dtype, device=X.device)
        new = raw_new.expand(raw_new.shape[0], n, *X.shape[1:])
        if acts is None:
            acts = self._reference(X)
        g = self._global()
        prefix = suffix = None
        if g is not None:
            prefix, suffix = _running_maxima(acts[g])
            if self._tap_path():
                if where is None:
                    return self._by_taps(X, raw_new, acts, g, prefix, suffix)
                return self._by_pairs(X, new, ref, where, acts, g, prefix, suffix)
        return self._by_windows(X, new, ref, where, acts, g, prefix, suffix)

    def _by_taps(self, X, new, acts, g, prefix, suffix, ref=None):
        """:meth:`edit_scores` (every position) for a chain conv -> elementwise -> global max -> elementwise.

        A stride-1 convolution reads input column ``p`` through tap ``t`` at output
        ``j = p + pad - d t``. Replacing column ``x_p`` by ``x'_p`` turns that output
        into ``conv[j] - W_t x_p + W_t x'_p``, and the pooled value of channel ``c`` is
        the larger of the edited window's maximum and the maximum outside the window
        (from the prefix/suffix maxima). When the pool follows the convolution
        directly, the edits are the same columns at every position (ISM's four
        bases) and every column of ``X`` is one-hot or all zeros, only the few
        outputs near the top of each channel can matter (:meth:`_by_candidates`);
        otherwise every tap is scored (:meth:`_by_running_max`). ``ref`` ``(N,)``,
        when given, are the scores of ``X``: rows whose pooled vector is the
        reference's get exactly these.
        """
        codes = self._column_codes(X)
        if g == 1 and new.shape[1] == 1 and new.shape[-1] == 1 and codes is not None:
            choice = torch.arange(new.shape[0], device=X.device).expand(5, -1)  # the same edits whatever the base
            return self._by_candidates(X, new[:, 0, :, 0], choice, acts[1], codes, ref)[0]
        return self._by_running_max(X, new, acts, g, prefix, suffix)

    @staticmethod
    def _column_codes(X):
        """``(N, L)`` int64: the base of each one-hot column of ``X``, 4 for an all-zero column (N);
        None when some column is neither. On the CPU a compiled loop reads ``X`` once
        (:func:`mlcourse.interpret.ism_kernel.column_codes`); elsewhere torch operations do."""
        if X.device.type == "cpu":
            from mlcourse.interpret.ism_kernel import column_codes
            return column_codes(X)
        return _LocalPlan._column_codes_by_torch(X)

    @staticmethod
    def _column_codes_by_torch(X):
        """:meth:`_column_codes` by torch operations (any device)."""
        counts = X.sum(dim=1)
        if not bool(((X == 0) | (X == 1)).all()) or not bool((counts <= 1).all()):
            return None
        bases = (X * torch.arange(4, dtype=X.dtype, device=X.device)[:, None]).sum(dim=1)
        return torch.where(counts == 0, 4, bases.long())

    # The compiled kernel scores CPU tensors of sequences up to KERNEL_LENGTH bp (:meth:`_by_kernel`); longer
    # ones, and other devices, take the torch lookup of :meth:`_by_lookup` (0: always; tests compare the two).
    # The kernel costs the same at every position; the torch lookup visits only the terms that can beat
    # the outside maximum, which long sequences leave sparse. Measured 2026-12-03 (one thread, CPU seconds,
    # 30,000 positions): 1layer kernel / lookup 0.76 at 300 bp, 0.75 at 500, 1.03 at 700, 1.18 at 1,000;
    # 1layer_128motif 0.65, 0.74, 0.93, 1.05.
    KERNEL_LENGTH = 700

    def _by_candidates(self, X, columns, choice, conv, codes, ref):
        """Scores ``(S, N, L)`` of edits at every position of a conv -> global max pool chain: slot ``s`` of a
        column whose base code is ``a`` (4: N) writes ``columns[choice[a, s]]`` (``columns`` ``(K, 4)``,
        ``choice`` ``(5, S)``). ``conv`` ``(N, C, J)`` is the convolution's output. Returns them and ``ref``
        ``(N,)``, the scores of ``X``: when ``ref`` is None it is computed in the same call of the rest of
        the model as the edits.

        On the CPU, for sequences up to ``KERNEL_LENGTH``, a compiled kernel finds every edit's pooled
        vector (:meth:`_by_kernel`); otherwise, and on other devices, where it cannot run, torch
        operations do (:meth:`_by_lookup`).
        """
        if conv.device.type == "cpu" and X.shape[-1] <= self.KERNEL_LENGTH:
            return self._by_kernel(X, columns, choice, conv, codes, ref)
        return self._by_lookup(X, columns[choice], conv, codes, ref)

    def _by_kernel(self, X, columns, choice, conv, codes, ref):
        """:meth:`_by_candidates` by the compiled kernel of :mod:`mlcourse.interpret.ism_kernel`.

        The kernel returns the pooled channels of every edit as a table, one row ``(i L + p) S + s`` per
        edit, with the reference's ``N`` rows after them; the elementwise steps after the pool (moved past
        it by :meth:`capture`: monotone, so they commute with the maximum) map the table, and the rest of
        the model scores its rows in one pass (:meth:`_head`). Where the channels' top windows cover few
        positions (long sequences, few channels) most rows equal the reference's after the map: only the
        others go through the rest of the model, and the equal ones take ``ref`` exactly.
        """
        from mlcourse.interpret.ism_kernel import pooled_edits

        n, channels = conv.shape[:2]
        length, slots, taps = X.shape[-1], choice.shape[1], self.steps[0].kernel
        edited = n * length * slots
        table, reference = pooled_edits(conv, codes, self._kernel_table(columns.to(X.dtype), choice),
                                        self.steps[0].pad, extra_rows=n)
        table[edited:] = reference
        mapped = self._after_pool(table[:, :, None])[:, :, 0]  # (N L S + N, C)
        if 1 - (1 - min(1.0, taps / length)) ** channels > 0.5:  # nearly every row differs: score them all
            head = self._head(mapped, X.dtype)
            scores, ref = head[:edited], (head[edited:] if ref is None else ref)
        else:
            moved = (mapped[:edited].view(n, length * slots, channels) != mapped[edited:, None]).any(dim=-1)
            rows = moved.view(-1).nonzero().squeeze(1)
            head = self._head(torch.cat([mapped.index_select(0, rows), mapped[edited:]]), X.dtype)
            if ref is None:
                ref = head[rows.numel():]
            scores = ref.repeat_interleave(length * slots)
            scores[rows] = head[:rows.numel()]
        return scores.view(n, length, slots).permute(2, 0, 1), ref  # (S, N, L), (N,)

    def _by_lookup(self, X, columns, conv, codes, ref):
        """:meth:`_by_candidates` by torch operations, visiting only the taps that can matter, for the edits
        ``columns`` ``(5, K, 4)`` (edit ``k`` writes ``columns[a, k]`` over base code ``a``). The path for
        tensors off the CPU (CUDA), where the compiled kernel of :meth:`_by_kernel` cannot run, and for
        sequences longer than ``KERNEL_LENGTH`` on the CPU, where it is faster than the kernel.

        *The change is a lookup.* Writing ``x'`` over base ``a`` at ``p`` changes output
        ``j = p + pad - t`` of channel ``c`` by ``delta[c, t, a, k] = W[c, :, t] @ x' - W[c, a, t]``
        (:meth:`_swap_tables`; the old term of an N is 0), and the pooled value becomes
        ``max(outside[p], max_t conv[j] + delta[c, t, a_p, k])``: a (max, +) product,
        with ``outside[p]`` the maximum over the outputs the edit does not reach.

        *Most terms cannot matter, and are skipped exactly.* ``rise[c, t, a]``, the
        largest ``delta`` over the edits, bounds what any edit adds through that tap,
        and ``reach[c]`` (over the taps and the bases present) what any edit adds to
        channel ``c``. A term matters only if ``conv[j] + rise > outside[p]``; float
        rounding is monotone, so a term that fails rounds to at most ``outside[p]``
        and leaves the pooled value as it is. The test runs in two stages:

        1. *candidates*: outputs with ``conv[j] + reach[c] > least[j]``, the least
           ``outside[p]`` over the ``T`` positions that read ``j`` (:func:`_window_minima`; a few
           outputs near the top of each channel: ``reach`` is well below the spread of a 24-tap sum);
        2. *terms*: a candidate's taps read ``T`` consecutive positions, so its
           ``outside`` and base codes are one contiguous window of each (padded with
           ``+inf``, which no term beats); a term is kept where it passes the test.

        The pooled values, channel-major ``(C, K R)`` for ``R`` rows of positions, take the kept
        terms by a scatter-maximum per edit into a table of -inf (a candidate's terms land on
        consecutive entries), then the outside maxima, the answer where nothing is kept, by one
        elementwise maximum (:meth:`_pooled_table`). The
        elementwise steps after the pool are the ones :meth:`capture` moved past it
        (a ReLU): they never decrease, so they commute with the maximum,
        ``f(max(a, b)) = max(f(a), f(b))`` exactly, and they map the outside maxima
        ``(N, C, L)`` and the kept terms before the scatter instead of the ``K``
        times larger pooled values after it. Only the positions whose edits can
        differ from the reference get pooled rows and go through the rest of the model
        (:meth:`_moved_positions`).
        Every index is into a flat tensor (``index_select``): multi-dimensional fancy
        indexing costs several times more per entry.
        """
        n, channels = conv.shape[:2]
        length, k, taps = X.shape[-1], columns.shape[1], self.steps[0].kernel
        prefix, suffix = _running_maxima(conv)
        delta, rise = self._swap_tables(columns.to(X.dtype))
        absent = torch.bincount(codes.flatten(), minlength=5) == 0  # (5,): codes no column holds
        reach = rise.view(channels, taps, 5).masked_fill(absent, -math.inf).amax(dim=(1, 2))  # (C,)
        reference = self._after_pool(prefix[:, :, -1])  # (N, C): each channel's maximum, mapped
        # (the outside maxima and kept terms, held by no name here: freed before the rest of the model runs)
        table, positions = self._pooled_table(*self._kept_terms(X, conv, codes, prefix, suffix, rise, reach),
                                              reference, delta, taps, with_reference=ref is None)
        rows = n * length if positions is None else positions.numel()
        head = self._head(table.t(), X.dtype)
        scores = head[:k * rows].view(k, rows)
        if ref is None:
            ref = head[k * rows:]
        if positions is not None:
            every = ref.repeat_interleave(length)[None].expand(k, n * length).contiguous()
            every[:, positions] = scores
            scores = every
        return scores.view(k, n, length), ref  # (K, N, L), (N,)

    def _pooled_table(self, top, kept, reference, delta, taps: int, with_reference: bool):
        """The pooled values of :meth:`_by_candidates`' edits, channel-major ``(C, K R + N)``, and the positions
        of the ``R`` rows (None: all ``N L``, see :meth:`_moved_positions`).

        Row ``c`` of the table holds channel ``c`` of the ``K R`` edited rows (edit ``e``, row ``r`` at
        ``e R + r``), then, ``with_reference``, the ``N`` rows of ``reference`` ``(N, C)``, the mapped channel
        maxima (f(x) in the same call of the rest of the model, which reads the rows through the
        transpose). The kept terms ``kept`` (:meth:`_kept_terms`) go into a table of -inf by a
        scatter-maximum per edit (flat and 1-D, the cheapest per entry, and into the whole table: into a
        slice of it a scatter costs several times more), and then the mapped outside maxima ``top`` are
        taken in one elementwise maximum: a scatter-maximum that meets a larger entry at random costs
        several times one that mostly writes (its branch is mispredicted). A method of its own so that
        the kept terms are freed before the rest of the model runs.
        """
        channel, terms, kept_value, where = kept
        n, channels, length = top.shape
        k = delta.shape[0]
        positions, slot = self._moved_positions(top, reference, where, taps)
        rows = n * length if positions is None else positions.numel()
        extra = n if with_reference else 0
        stride = k * rows + extra
        table = torch.full((channels, stride), -math.inf, dtype=top.dtype, device=top.device)
        entry = channel * stride + slot
        for e in range(k):
            vals = self._after_pool(kept_value + delta[e].index_select(0, terms))  # (P,)
            table.view(-1).scatter_reduce_(0, entry + e * rows, vals, "amax")
        if positions is None:  # (C, K, N, L) against a view of ``top`` (N, C, L)
            edited, by_channel = table[:, :k * rows].view(channels, k, n, length), top.transpose(0, 1)[:, None]
        else:
            edited = table[:, :k * rows].view(channels, k, rows)
            by_channel = top.transpose(0, 1).reshape(channels, n * length).index_select(1, positions)[:, None]
        torch.maximum(edited, by_channel, out=edited)
        if with_reference:
            table[:, k * rows:].copy_(reference.t())
        return table, positions

    def _kept_terms(self, X, conv, codes, prefix, suffix, rise, reach):
        """The two stages of :meth:`_by_candidates`' exact skip: the mapped outside maxima ``(N, C, L)`` and,
        for each kept term, ``(channel, row of delta, conv value, position i L + p)`` (each ``(P,)``).

        A method of its own so that the stages' tables (outside maxima, window minima, the ``(H, T)`` tables
        of the candidates' terms) are freed before the pooled values are built.
        """
        st = self.steps[0]
        n, channels, out_len = conv.shape
        length, taps, pad = X.shape[-1], st.kernel, st.pad
        span = length + 2 * pad  # padded positions
        # (N, C, span): the outside maxima, +inf in the padding (no edit off the ends); ``outside`` is a view
        walls = torch.full((n, channels, span), math.inf, dtype=conv.dtype, device=conv.device)
        outside = self._outside(st, length, prefix, suffix, walls[:, :, pad:pad + length])  # (N, C, L)
        # 1. candidates: sequence i, channel c, output j, against the least outside maximum of the positions
        # that read j (:func:`_window_minima`, (N, C, J))
        i, c, j = torch.nonzero(conv + reach[:, None] > _window_minima(walls, taps), as_tuple=True)
        nc = i * channels + c
        value = conv.view(-1).index_select(0, nc * out_len + j)  # (H,)
        # 2. terms: candidate h's tap t is the edit at padded position j + t
        # the row of delta of tap t at padded position q = j + t is (c T + t) 5 + a_q = (c T - j) 5 + (5 q + a_q)
        # (int32: the (H, T) tables are the chunk's largest, and every row index fits)
        padded_codes = (F.pad(codes, (pad, pad), value=4)
                        + torch.arange(0, 5 * span, 5, device=X.device)).to(torch.int32)
        table = padded_codes.view(-1).unfold(0, taps, 1).index_select(0, i * span + j)  # (H, T)
        table += ((c * taps - j) * 5).to(torch.int32)[:, None]
        # value + rise against each term's outside maximum in one expression, so that its (H, T) operands
        # are freed before the kept terms are listed, as flat entries h T + t
        kept = torch.gt(rise.index_select(0, table.view(-1)).view_as(table).add_(value[:, None]),
                        walls.view(-1).unfold(0, taps, 1).index_select(0, nc * span + j)).view(-1).nonzero()[:, 0]
        terms = table.view(-1).index_select(0, kept)  # (P,): the row of delta of each kept term
        h = torch.div(kept, taps, rounding_mode="floor")
        where = (i * length + j - pad).index_select(0, h) + (kept - h * taps)  # (P,): position i L + p of each
        return self._after_pool(outside), (c.index_select(0, h), terms, value.index_select(0, h), where)

    @staticmethod
    def _moved_positions(top, reference, where, taps: int):
        """The positions whose edits can score other than the reference, and each kept term's row among them.

        ``top`` ``(N, C, L)`` are the mapped outside maxima of every position, ``reference`` ``(N, C)`` the
        mapped maxima, ``where`` ``(P,)`` the position of each kept term. An edit's pooled vector is the
        reference's unless the position sits in some channel's top window (``T`` of the ``L`` positions: its
        outside maximum is lower) or a term is kept there. Where the ``C`` windows, placed at random, would
        cover most positions, every position is returned (``positions`` None, ``slot`` = ``where``: no test
        is worth its pass), else ``positions`` ``(R,)`` and ``slot`` ``(P,)``, the index of ``where`` in them
        (positions are ``i L + p``).
        """
        channels, length = top.shape[1:]
        if 1 - (1 - min(1.0, taps / length)) ** channels > 0.5:
            return None, where
        moved = (top != reference[:, :, None]).any(dim=1).view(-1)
        moved[where] = True
        positions = moved.nonzero().squeeze(1)
        slots = torch.empty(moved.shape, dtype=torch.long, device=top.device)
        slots[positions] = torch.arange(positions.numel(), device=top.device)
        return positions, slots.index_select(0, where)

    def _head(self, pooled, dtype) -> torch.Tensor:
        """The model's output for pooled rows ``(B, C)``, already mapped by the steps after the pool."""
        return torch.cat([self._rest(pooled[s:s + self.HEAD_ROWS, :, None])
                          for s in range(0, max(1, pooled.shape[0]), self.HEAD_ROWS)]).to(dtype)

    def _swap_tables(self, columns):
        """The first convolution's lookup tables for the edits ``columns`` ``(5, K, 4)``, cached per call:
        ``delta`` ``(K, C T 5)``, entry ``[k, (c T + t) 5 + a]``: ``W[c, :, t] @ columns[a, k] - W[c, a, t]`` (the
        old term is 0 for code 4, an N), what edit ``k`` adds to an output reading it through tap ``t``;
        and ``rise`` ``(C T 5,)``, the largest over the edits."""
        key = (columns.dtype, str(columns.device), tuple(columns.flatten().tolist()))
        cache = self.__dict__.setdefault("_swap_cache", {})
        if key not in cache:
            weight = self.steps[0].module.weight.to(columns.dtype)  # (C, 4, T)
            written = torch.einsum("cbt,akb->ctak", weight, columns)  # (C, T, 5, K)
            old = F.pad(weight.transpose(1, 2), (0, 1))  # (C, T, 5): W_t x for each code
            delta = (written - old[..., None]).reshape(-1, columns.shape[1]).t().contiguous()
            cache[key] = delta, delta.amax(dim=0)
        return cache[key]

    def _kernel_table(self, columns, choice):
        """The kernel's table (:func:`mlcourse.interpret.ism_kernel.pooled_edits`) for the edit columns
        ``columns`` ``(K, 4)`` and the slots ``choice`` ``(5, S)``, cached per call: ``delta`` ``(5, T, S, C)``,
        entry ``[b, t, s, c]``: ``W[c, :, t] @ columns[choice[b, s]] - W[c, b, t]`` (the old term is 0 for
        code 4, an N), what slot ``s``'s edit of a base ``b`` adds to an output reading it through tap ``t``."""
        key = (columns.dtype, tuple(columns.flatten().tolist()), tuple(choice.flatten().tolist()))
        cache = self.__dict__.setdefault("_kernel_cache", {})
        if key not in cache:
            weight = self.steps[0].module.weight.to(columns.dtype)  # (C, 4, T)
            written = torch.einsum("cbt,kb->tkc", weight, columns)  # (T, K, C)
            old = F.pad(weight.permute(2, 1, 0), (0, 0, 0, 1))  # (T, 5, C): W_t x for each code
            cache[key] = (written[:, choice] - old[:, :, None]).transpose(0, 1).contiguous()  # (5, T, S, C)
        return cache[key]

    def _after_pool(self, pooled):
        """The chain's output ``(B, C, 1)`` from pooled values: the elementwise steps after the global pool."""
        for step in self.steps[self._global() + 1:]:
            pooled = step.module(pooled)
        return pooled

    def _by_running_max(self, X, new, acts, g, prefix, suffix):
        """:meth:`_by_taps` by a running maximum over all taps (any edits, any elementwise maps).

        For one tap and *every* position at once the edited outputs are a shifted
        slice of the reference output, minus the old columns' contribution, plus
        the new ones' (for ISM ``W_t e_b`` is a column of the weights, the same at
        every position, so no multiplication is left). The edited window's maximum
        is the running maximum of these slices over the ``T`` taps (``T``
        elementwise passes over ``(K, N, L, C)``), and the pooled value is the
        larger of it and the prefix/suffix maxima outside the window. Channels are
        innermost, so the pooled values are already the rows the rest of the
        model reads, and the rest runs once for the whole chunk.
        """
        st = self.steps[0]
        weight = st.module.weight  # (C, 4, T)
        k, n, length, channels = new.shape[0], X.shape[0], X.shape[-1], weight.shape[0]
        conv = acts[1].transpose(1, 2)  # (N, J, C)
        old, added = X.transpose(1, 2), new.transpose(-1, -2)  # (N, L, 4), (K, N or 1, L or 1, 4)
        same_everywhere = added.shape[-2] == 1  # ISM's bases: W_t x' is a column of the weights
        change = None if same_everywhere else (added - old).contiguous()  # (K, N, L, 4)
        best = torch.full((k, n, length, channels), -math.inf, dtype=X.dtype, device=X.device)
        for t in range(st.kernel):
            shift = st.pad - st.dilation * t  # input position p reaches output p + shift
            p0, p1 = max(0, -shift), min(length, st.out_len - shift)
            if p0 >= p1:
                continue
            w_t = weight[:, :, t].T  # (4, C)
            if same_everywhere:
                vals = (conv[:, p0 + shift:p1 + shift] - old[:, p0:p1] @ w_t) + added @ w_t  # (K, N, w, C)
            else:
                vals = conv[:, p0 + shift:p1 + shift] + change[..., p0:p1, :] @ w_t
            for step in self.steps[1:g]:
                vals = step.module(vals)
            window = best[:, :, p0:p1]
            torch.maximum(window, vals, out=window)
        outside = self._outside(st, length, prefix, suffix).transpose(1, 2)  # (N, L, C)
        pooled = torch.maximum(best, outside).reshape(-1, channels, 1)
        return self._rest(self._after_pool(pooled)).reshape(k, n, length).to(X.dtype)

    def _by_pairs(self, X, new, ref, where, acts, g, prefix, suffix, elements: int = 2 ** 18):
        """:meth:`_by_taps` for only the (input, position) pairs where ``where`` is True.

        SIS asks for the positions still present, a shrinking part of each input:
        each pair's window of first-layer outputs is gathered (one contiguous block
        of a channels-last copy of the reference output) and changed by
        ``W[:, :, t] @ (new - old)`` for all taps in one product; the maximum over
        the window is taken by halving. Pairs go in chunks of about ``elements``
        window entries.
        """
        st, conv_out = self.steps[0], acts[1]
        k, n, length = new.shape[0], X.shape[0], X.shape[-1]
        reach = st.dilation * (st.kernel - 1)
        outside = self._outside(st, length, prefix, suffix).transpose(1, 2)  # (N, L, C)
        # windows[i, p, u, c] = output j = p + pad - d (T - 1 - u) (-inf off the ends): a view in
        # which each window is one contiguous block, channels innermost
        fill = -math.inf if g == 1 else 0.0  # elementwise modules before the pool: mask afterwards
        padded = F.pad(conv_out, (reach, max(0, reach - st.pad)), value=fill).transpose(1, 2).contiguous()
        channels, span = padded.shape[-1], padded.shape[1]
        if st.dilation == 1:  # window (i, p) is the contiguous block from row i * span + p + pad
            blocks = padded.reshape(-1).unfold(0, st.kernel * channels, channels)
        else:
            windows = padded.unfold(1, reach + 1, 1)[:, st.pad:st.pad + length, :, ::st.dilation].transpose(-1, -2)
        weight = st.module.weight.flip(-1).permute(1, 2, 0)  # (4, T, C); tap T-1-u at u
        taps = torch.arange(st.kernel, device=X.device)
        out = torch.zeros(k, n, length, dtype=X.dtype, device=X.device)
        if ref is not None:
            out += ref.to(X.dtype)[:, None]
        pairs = torch.nonzero(where)
        chunk = max(1, elements // (k * channels * st.kernel))
        for s in range(0, pairs.shape[0], chunk):
            i, p = pairs[s:s + chunk].unbind(1)
            change = new.transpose(-1, -2)[:, i, p] - X.transpose(-1, -2)[i, p]  # (K, P, 4)
            if st.dilation == 1:
                window = blocks.index_select(0, i * span + p + st.pad).reshape(-1, st.kernel, channels)
            else:
                window = windows[i, p]
            vals = torch.einsum("kpb,btc->kptc", change, weight).add_(window)  # (K, P, T, C)
            if g > 1:
                for step in self.steps[1:g]:
                    vals = step.module(vals)
                j = p[:, None] + st.pad - st.dilation * (st.kernel - 1 - taps)
                vals = vals.masked_fill(((j < 0) | (j >= st.out_len))[:, :, None], -math.inf)
            chain_out = torch.maximum(_halving_max(vals), outside[i, p]).reshape(-1, channels, 1)
            out[:, i, p] = self._rest(self._after_pool(chain_out)).reshape(k, -1)
        return out

    @staticmethod
    def _outside(st: _Step, length: int, prefix, suffix, out=None) -> torch.Tensor:
        """``(N, C, L)``: the global maximum over the outputs an edit at each position does not reach.

        An edit at ``p`` reaches outputs ``p + pad - reach .. p + pad``; the maximum before them is
        ``prefix[p + pad - reach - 1]`` and after them ``suffix[p + pad + 1]``, ``-inf`` where there are none:
        both are shifted copies of ``prefix`` and ``suffix``, taken into ``out`` (a new tensor when None)
        in place (:func:`_max_shifted_into`).
        """
        reach = st.dilation * (st.kernel - 1)
        if out is None:
            out = prefix.new_empty(*prefix.shape[:-1], length)
        out.fill_(-math.inf)
        _max_shifted_into(out, prefix, reach + 1 - st.pad)
        _max_shifted_into(out, suffix, -(st.pad + 1))
        return out

    def _by_windows(self, X, new, ref, where, acts, g, prefix, suffix):
        """:meth:`edit_scores` for any chain, as windows of many positions at once.

        An edit at position ``p`` changes each step's output only in a window of
        outputs. With ``Q`` the product of the strides (:meth:`_layout`), the
        positions ``p = r + Q m`` of one residue ``r`` have windows of the same
        width at every step, each ``Q / S`` outputs after the last (``S`` the
        strides so far): their geometry is that of ``r``, shifted. So the
        positions of a residue go in blocks, and every step runs once per block
        on the ``N M K`` windows of its edits (``M`` positions, ``K`` edits),
        channels-last ``(N, M, K, width, C)``:

        * the first convolution as the reference outputs plus the weights that
          carry the changed column (:meth:`_first_windows`: no convolution),
          over all the outputs the next conv or pool step reads;
        * a later convolution or pool on its reference input with the previous
          step's window written in (:meth:`_step_input`), then one convolution
          of the windows or a maximum over the taps (:meth:`_step_output`);
        * a global max pool as the larger of the window's maximum and the
          maxima outside it (prefix and suffix maxima), or, without one, the
          chain's reference output with the window written in;
        * the rest of the model once for the chain outputs of several blocks
          (:meth:`_score_blocks`).

        Windows are not moved inside the sequence near its ends: their outputs
        past an end are computed from the padding and margins of extended
        reference tensors (:func:`_extend`) and never reach a real output (a
        convolution or pool with padding gets its padding value written back, a
        global max pool ignores them, the chain's output crops them).
        :meth:`_window_budget` bounds a block's largest tensor.
        """
        n, length, k = X.shape[0], X.shape[-1], new.shape[0]
        if ref is None:
            ref = self._rest(acts[-1])
        out = ref.to(X.dtype).expand(k, length, n).permute(0, 2, 1).clone()
        present = None if where is None else where.any(dim=0)
        layout = self._layout(length)
        refs = {i: _extend(acts[i], *span) for i, span in layout.spans.items()}
        if g is not None:
            margin = max(0, *(max(-ws[-1].start, ws[-1].start + ws[-1].step * (layout.counts[r] - 1) + ws[-1].width
                                  - acts[g].shape[-1]) for r, ws in layout.windows.items()))
            around = _maxima_around(prefix, suffix, margin)
        budget = self._window_budget(acts)
        per_block = max(1, budget // (n * k * layout.entries))
        pairs = self._edit_pairs(X, new)
        contiguous = where is None  # ISM: blocks are runs of consecutive m, read through views
        pending = []  # chain outputs of blocks whose scores are still to compute (:meth:`_score_blocks`)
        for r, windows in layout.windows.items():
            ms = torch.arange(layout.counts[r], device=X.device)
            if present is not None:
                ms = ms[present[r::layout.period]]
            for s in range(0, ms.numel(), per_block):
                block = ms[s:s + per_block]
                vals = self._first_windows(X, new, pairs, refs[1], layout.first[r], r, layout.period, block,
                                           contiguous)
                for i in range(1, len(windows)):
                    st = self.steps[i]
                    if st.kind == "pointwise":
                        vals = _pointwise(st.module, vals)
                        continue
                    if i == layout.reader:  # the first windows are this step's input
                        _write_padding(vals, st, _input_start(st, windows[i]), windows[0].step, block, 0, vals.shape[-2])
                    else:
                        vals = _step_input(st, refs[i], windows[i - 1], windows[i], vals, block, contiguous)
                    vals = self._step_output(i, vals, windows[i].width)
                if g is None:
                    chain = _spliced(refs[len(self.steps)], windows[-1], vals, block)
                else:
                    chain = self._after_pool(_global_max(vals, windows[-1], block, acts[g].shape[-1], around, margin,
                                                         contiguous))
                pending.append((chain, r + layout.period * block))
                rows, entries = sum(c.shape[0] for c, _ in pending), sum(c.numel() for c, _ in pending)
                if rows >= self.HEAD_ROWS or 4 * entries >= budget:  # a quarter block
                    self._score_blocks(pending, out, where)
        self._score_blocks(pending, out, where)
        return out

    def _score_blocks(self, pending, out, where) -> None:
        """Run the rest of the model once on the chain outputs of several blocks (``pending``: each
        ``(N M K, ...)`` with its positions ``(M,)``), write their scores into ``out`` ``(K, N, L)``
        where ``where`` allows, and empty ``pending``: fewer, larger calls of :meth:`_rest`."""
        if not pending:
            return
        scores = self._rest(torch.cat([chain for chain, _ in pending])).to(out.dtype)
        start, (k, n, _) = 0, out.shape
        for chain, p in pending:
            block = scores[start:start + chain.shape[0]].reshape(n, p.numel(), k).permute(2, 0, 1)
            start += chain.shape[0]
            out[:, :, p] = block if where is None else torch.where(where[:, p], block, out[:, :, p])
        pending.clear()

    def _layout(self, length: int) -> _Layout:
        """The windows of every residue class of positions for inputs of ``length`` (cached per length).

        Step by step, the outputs an edit at ``p`` reaches are those whose
        receptive field meets the previous step's reached outputs ``lo..hi``:
        ``ceil((lo + pad - reach) / stride) .. floor((hi + pad) / stride)``. For
        ``p + Q`` both ends move by ``Q / S`` exactly (``S`` the strides up to
        this step divides ``Q``), so one computation per residue serves all its
        positions. A residue whose edits reach no output of some step (a stride
        longer than the kernel's span) changes nothing and is left out. A later
        convolution followed by a pool computes every output the pool reads
        (its reached window and the few reference outputs around it), so the
        pool reads the convolution's windows as they are, with nothing spliced
        in (:func:`_step_input`). After the
        step that reads the first convolution's windows, a window at least as
        wide as its map becomes the whole map (``step`` 0), with no outputs
        past the ends to compute (short sequences).
        """
        cache = self.__dict__.setdefault("_layouts", {})
        if length in cache:
            return cache[length]
        g = self._global()
        steps = self.steps if g is None else self.steps[:g]
        period = math.prod(st.stride for st in steps if st.kind != "pointwise")
        reader = next((i for i, st in enumerate(steps) if i and st.kind != "pointwise"), None)
        lengths = [length]
        for st in steps:
            lengths.append(lengths[-1] if st.kind == "pointwise" else st.out_len)
        windows, counts, first = {}, {}, {}
        for r in range(min(period, length)):
            lo = hi = r
            step, chain, conv = period, [], None
            for i, st in enumerate(steps):
                if st.kind != "pointwise":
                    reach = st.dilation * (st.kernel - 1)
                    lo, hi = -((reach - lo - st.pad) // st.stride), (hi + st.pad) // st.stride
                    step //= st.stride
                    if reader is not None and i > reader and hi - lo + 1 >= st.out_len:
                        lo, hi, step = 0, st.out_len - 1, 0  # the whole map, the same for every position
                chain.append(_Window(lo, step, hi - lo + 1))
                if st.kind == "pool" and conv is not None:  # the conv computes all that the pool reads
                    read = _Window(_input_start(st, chain[i]), chain[i].step * st.stride, _input_width(st, chain[i]))
                    chain[conv:i] = [read] * (i - conv)
                if st.kind != "pointwise":
                    conv = i if st.kind == "conv" and i > 0 else None
            if all(w.width > 0 for w in chain):
                windows[r], counts[r] = chain, len(range(r, length, period))
                first[r] = chain[0] if reader is None else _Window(
                    _input_start(steps[reader], chain[reader]), chain[0].step, _input_width(steps[reader], chain[reader]))
        spans, entries = self._spans(windows, counts, first, reader, lengths)
        cache[length] = layout = _Layout(period, windows, counts, first, reader, spans, entries)
        return layout

    def _spans(self, windows, counts, first, reader, lengths):
        """What :meth:`_by_windows` reads from each extended reference, and a block's largest entries per window.

        ``spans[i]`` is ``(pad, fill, lo, hi)`` for the reference ``acts[i]`` (of
        length ``lengths[i]``): the padding its step adds (``fill``: a
        convolution's zeros, a pool's ``-inf``) and the coordinates
        ``lo .. hi - 1`` that the windows of every residue read. ``acts[1]`` is
        the first convolution's output (read by the first windows), ``acts[i]``
        the input of conv or pool step ``i`` after the first one that follows the
        first convolution, and without a global max pool ``acts[len(steps)]``
        the chain's output, which the windows are written into. The entries are
        those of the largest tensor one window needs: a step's input or output
        window (and the chain's whole output).
        """
        spans = {}

        def read(i, pad, fill, place):  # place(residue) = the window read from acts[i] at m = 0
            lo, hi = -pad, lengths[i] + pad
            for r in windows:
                w = place(r)
                lo, hi = min(lo, w.start), max(hi, w.start + (counts[r] - 1) * w.step + w.width)
            spans[i] = (pad, fill, lo, hi)

        read(1, 0, 0.0, first.get)
        channels = self.steps[0].module.out_channels
        entries = max([1] + [w.width * channels for w in first.values()])
        for i, st in enumerate(self.steps[1:len(lengths) - 1], start=1):
            if st.kind == "pointwise":
                continue
            if i != reader:
                read(i, st.pad, 0.0 if st.kind == "conv" else -math.inf, lambda r, i=i: _Window(
                    _input_start(self.steps[i], windows[r][i]), windows[r][i].step * self.steps[i].stride,
                    _input_width(self.steps[i], windows[r][i])))
            out_channels = st.module.out_channels if st.kind == "conv" else channels
            for ws in windows.values():
                entries = max(entries, _input_width(st, ws[i]) * channels, ws[i].width * out_channels)
            channels = out_channels
        if self._global() is None:
            end = len(self.steps)
            read(end, 0, 0.0, lambda r: windows[r][-1])
            entries = max(entries, (spans[end][3] - spans[end][2]) * channels)
        return spans, entries

    def _edit_pairs(self, X, new):
        """``(K, N, L)`` int64: ``5 a + b`` for the edit writing base code ``b`` over code ``a`` (4: N), the row
        of :meth:`_first_changes`; None when a column of ``X`` or of ``new`` ``(K, N, 4, L)`` is neither
        one-hot nor all zeros (SIS's mean-imputed masks)."""
        old = self._column_codes(X)
        written = None if old is None else self._column_codes(new.reshape(-1, *X.shape[1:]))
        return None if written is None else 5 * old + written.view(new.shape[0], *old.shape)

    def _first_windows(self, X, new, pairs, reference, window: _Window, r, period, ms, contiguous) -> torch.Tensor:
        """Outputs ``window`` of the first convolution for the edits at positions ``r + period ms``: ``(N, M, K, W, C)``.

        The convolution is linear in its input: replacing column ``x_p`` by ``x'_p``
        adds ``W[:, :, t] (x'_p - x_p)`` to output ``j`` when tap ``t`` carries ``p``
        there (``p = j s - pad + d t``), and nothing elsewhere. Which tap reaches
        window entry ``w`` is the same for every position of the residue, so a
        window is the reference outputs plus one small product (``4`` terms) per
        entry, with no convolution. When every column is a base or an N
        (``pairs``, :meth:`_edit_pairs`), that product is one of 25 rows of a
        table (:meth:`_first_changes`), looked up instead of multiplied.
        """
        p = r + period * ms
        if pairs is not None:
            index = pairs.index_select(-1, p).permute(1, 2, 0)  # (N, M, K)
            vals = self._first_changes(r, window).index_select(0, index.reshape(-1))
            vals = vals.view(*index.shape, window.width, -1)
        else:
            change = new.index_select(-1, p) - X.index_select(-1, p)  # (K, N, 4, M)
            vals = torch.einsum("knbm,wbc->nmkwc", change, self._first_taps(r, window))
        return vals.add_(_windows(reference, window, ms, contiguous)[:, :, None])

    def _first_changes(self, r: int, window: _Window) -> torch.Tensor:
        """``(25, W C)``: row ``5 a + b`` is what writing base code ``b`` over code ``a`` (4: N, no base) at
        a position of residue ``r`` adds to the entries of ``window`` (:meth:`_first_taps`; cached)."""
        cache = self.__dict__.setdefault("_changes", {})
        if (r, window) not in cache:
            taps = F.pad(self._first_taps(r, window), (0, 0, 0, 1)).transpose(0, 1)  # (5, W, C): code 4 adds 0
            cache[r, window] = (taps[None] - taps[:, None]).reshape(25, -1)
        return cache[r, window]

    def _first_taps(self, r: int, window: _Window) -> torch.Tensor:
        """``(W, 4, C)``: the first convolution's weights that carry column ``r`` to each entry of
        ``window`` (zero where no tap reaches it); the same for every position of the residue (cached)."""
        cache = self.__dict__.setdefault("_taps", {})
        if (r, window) not in cache:
            st = self.steps[0]
            offset = r + st.pad - (window.start + torch.arange(window.width)) * st.stride
            t = torch.div(offset, st.dilation, rounding_mode="floor")
            reached = ((offset % st.dilation == 0) & (t >= 0) & (t < st.kernel)).to(st.module.weight.device)
            weight = _dense_weight(st.module)  # (C, 4, T)
            t = t.clamp(0, st.kernel - 1).to(weight.device)
            cache[r, window] = (weight[:, :, t] * reached).permute(2, 1, 0).contiguous()
        return cache[r, window]

    def _step_output(self, i: int, inputs, width: int) -> torch.Tensor:
        """Conv or pool step ``i`` on its input windows ``(N, M, K, W_in, C)``: ``(N, M, K, width, C_out)``.

        A convolution runs on all windows at once, as a 2-d convolution of height
        1 on channels-last rows (no copy in or out); a pool is the running
        maximum of its taps, each a strided slice of the windows.
        """
        st = self.steps[i]
        if st.kind == "pool":
            span = (width - 1) * st.stride + 1
            taps = [inputs[..., t * st.dilation:t * st.dilation + span:st.stride, :] for t in range(st.kernel)]
            pooled = taps[0].clone() if len(taps) == 1 else torch.maximum(taps[0], taps[1])
            for tap in taps[2:]:
                torch.maximum(pooled, tap, out=pooled)
            return pooled
        n, m, k, w_in, channels = inputs.shape
        rows = inputs.reshape(-1, w_in, channels).permute(0, 2, 1).unsqueeze(2)  # (B, C, 1, W_in) channels-last
        conv = st.module
        product = F.conv2d(rows, self._conv_weight(i), conv.bias, (1, st.stride), 0, (1, st.dilation), conv.groups)
        return product.squeeze(2).permute(0, 2, 1).reshape(n, m, k, width, -1)

    def _conv_weight(self, i: int) -> torch.Tensor:
        """Conv step ``i``'s weight as a 2-d convolution's ``(C_out, C_in / groups, 1, T)``, channels-last."""
        cache = self.__dict__.setdefault("_conv_weights", {})
        if i not in cache:
            cache[i] = self.steps[i].module.weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        return cache[i]


@dataclass(frozen=True)
class _Window:
    """The outputs of one step that the edit at position ``r + Q m`` changes, for every ``m``:
    ``start + step m .. start + step m + width - 1`` (``Q`` the period of :class:`_Layout`)."""

    start: int
    step: int
    width: int


@dataclass
class _Layout:
    """How :meth:`_LocalPlan._by_windows` covers inputs of one length.

    ``windows[r]`` lists each step's :class:`_Window` (up to a global max pool)
    for the ``counts[r]`` positions ``r, r + period, ...``; ``first[r]`` the
    first convolution's outputs that are computed: those that ``reader``, the
    next conv or pool step (None: there is none), reads. ``spans`` says which
    coordinates of each reference tensor the windows read (:meth:`_LocalPlan._spans`)
    and ``entries`` bounds the entries of one window's largest tensor.
    """

    period: int
    windows: dict[int, list[_Window]]
    counts: dict[int, int]
    first: dict[int, _Window]
    reader: int | None
    spans: dict[int, tuple[int, float, int, int]]
    entries: int


@dataclass
class _Extended:
    """A reference tensor channels-last ``(N, span, C)``: coordinate ``u`` at row ``origin + u``.

    Rows for coordinates ``-pad .. -1`` and ``length .. length + pad - 1`` hold
    the padding ``fill`` of the step that reads it; rows beyond hold zeros
    (margins that windows near the ends read for outputs that do not exist).
    """

    values: torch.Tensor
    origin: int
    length: int


def _extend(acts: torch.Tensor, pad: int, fill: float, lo: int, hi: int) -> _Extended:
    """``acts`` ``(N, C, J)`` as an :class:`_Extended` covering coordinates ``lo .. hi - 1``."""
    n, channels, length = acts.shape
    values = acts.new_zeros(n, hi - lo, channels)
    origin = -lo
    values[:, origin - pad:origin].fill_(fill)
    values[:, origin + length:origin + length + pad].fill_(fill)
    values[:, origin:origin + length] = acts.transpose(1, 2)
    return _Extended(values, origin, length)


def _windows(reference: _Extended, window: _Window, ms, contiguous: bool) -> torch.Tensor:
    """``(N, M, width, C)``: rows ``window.start + window.step m ..`` of ``reference`` for each ``m`` of
    ``ms``; a view when ``ms`` are consecutive (``contiguous``), else a gather of whole windows."""
    rows = reference.values[:, reference.origin + window.start:]
    if window.step == 0:
        return rows[:, None, :window.width].expand(-1, ms.numel(), -1, -1)
    if contiguous:
        first = int(ms[0]) * window.step
        return rows[:, first:].unfold(1, window.width, window.step)[:, :ms.numel()].transpose(-1, -2)
    return rows.unfold(1, window.width, window.step).index_select(1, ms).transpose(-1, -2)


def _step_input(st: _Step, reference: _Extended, previous: _Window, window: _Window, vals, ms, contiguous):
    """The input windows ``(N, M, K, W_in, C)`` that conv or pool step ``st`` reads for its output ``window``.

    Output window ``start .. start + W - 1`` reads the step's input from
    ``start s - pad`` over ``(W - 1) s + reach + 1`` entries (:func:`_input_start`,
    :func:`_input_width`): the reference input (padded), with the previous
    step's window ``vals`` written where the two meet.
    """
    start, width = _input_start(st, window), _input_width(st, window)
    if previous == _Window(start, window.step * st.stride, width):  # a pool reading its conv's windows
        _write_padding(vals, st, start, previous.step, ms, 0, width)
        return vals
    n, m, k, _, channels = vals.shape
    inputs = vals.new_empty(n, m, k, width, channels)
    inputs.copy_(_windows(reference, _Window(start, window.step * st.stride, width), ms, contiguous)[:, :, None])
    if window.step == 0 and previous.step:
        _write_moving(inputs, st, start, previous, vals, ms, contiguous)
        return inputs
    lo, hi = max(0, previous.start - start), min(width, previous.start + previous.width - start)
    if hi > lo:
        shift = start - previous.start
        inputs[:, :, :, lo:hi] = vals[:, :, :, lo + shift:hi + shift]
        _write_padding(inputs, st, start, previous.step, ms, lo, hi)
    return inputs


def _write_moving(inputs, st: _Step, start: int, previous: _Window, vals, ms, contiguous: bool) -> None:
    """Write the previous step's windows ``vals`` into input windows at a fixed place (the whole input).

    Window ``m`` of the previous step then sits at an offset that grows with
    ``m``; its entries that are real inputs (coordinates ``0 .. in_len - 1``)
    which the step reads are written, so the padding stays as it is. For
    consecutive ``ms`` (``contiguous``), entry ``e`` of windows ``b = 0, 1, ...``
    lands at input entries ``c + step b``, a diagonal of ``inputs``: one strided
    copy per entry, over the windows where it is a real input. Otherwise the
    entries are written one by one.
    """
    limit = min(st.in_len, start + inputs.shape[-2])  # coordinates past it are padding or not read
    if not contiguous:
        coordinates = previous.start + previous.step * ms[:, None] + torch.arange(previous.width, device=ms.device)
        window, entry = ((coordinates >= 0) & (coordinates < limit)).nonzero(as_tuple=True)
        inputs[:, window, :, coordinates[window, entry] - start] = vals[:, window, :, entry]
        return
    n, count, k, _, channels = inputs.shape
    s_n, s_m, s_k, s_w, s_c = inputs.stride()
    for e in range(previous.width):
        first = previous.start + previous.step * int(ms[0]) + e  # the coordinate of entry e in window b = 0
        lo = max(0, -(first // previous.step))  # the windows b with 0 <= first + step b < limit
        hi = min(count, -((first - limit) // previous.step))
        if hi > lo:
            diagonal = inputs.as_strided((n, hi - lo, k, channels), (s_n, s_m + previous.step * s_w, s_k, s_c),
                                         inputs.storage_offset() + lo * s_m + (first + previous.step * lo - start) * s_w)
            diagonal.copy_(vals[:, lo:hi, :, e])


def _write_padding(inputs, st: _Step, start: int, step: int, ms, lo: int, hi: int) -> None:
    """Put step ``st``'s padding value back into entries ``lo .. hi - 1`` of its input windows ``inputs``
    (entry ``w`` of window ``m`` is input coordinate ``start + step m + w``) that lie past the input's ends.

    There the windows hold values computed for outputs that do not exist; the
    model's padding reads zeros (a convolution) or ``-inf`` (a pool) instead.
    Without padding, such entries only reach outputs that do not exist either.
    """
    if st.pad:
        _fill_outside(inputs, start, step, ms, lo, hi, st.in_len, 0.0 if st.kind == "conv" else -math.inf)


def _fill_outside(vals, start: int, step: int, ms, lo: int, hi: int, limit: int, value: float) -> None:
    """Set entries ``lo .. hi - 1`` of the windows ``vals`` ``(N, M, K, W, C)`` whose coordinate
    ``start + step m + w`` lies outside ``0 .. limit - 1`` to ``value``, in place.

    The positions ``ms`` ascend, so the windows that cross an end are a run at each end of the
    block (all of them when ``step`` is 0): only those rows are masked. A mask that broadcasts
    over the edits and channels is slow to apply (~0.4 ms per block of 3layer at 1,000 bp, a fifth
    of its time, where a handful of a block's windows cross an end).
    """
    if start + step * int(ms[0]) + lo >= 0 and start + step * int(ms[-1]) + hi <= limit:
        return  # no window crosses an end
    starts = start + step * ms
    head = int((starts + lo < 0).sum())  # the first windows, which reach before coordinate 0
    tail = int((starts + hi > limit).sum())  # the last ones, which reach past limit - 1
    count = ms.numel()
    runs = [(0, count)] if head + tail >= count else [(0, head), (count - tail, count)]
    for a, b in runs:
        if a < b:
            coordinates = starts[a:b, None] + torch.arange(lo, hi, device=ms.device)
            outside = (coordinates < 0) | (coordinates >= limit)
            vals[:, a:b, :, lo:hi].masked_fill_(outside[:, None, :, None], value)


def _input_start(st: _Step, window: _Window) -> int:
    """The first input coordinate that conv or pool step ``st`` reads for ``window`` (at ``m = 0``)."""
    return window.start * st.stride - st.pad


def _input_width(st: _Step, window: _Window) -> int:
    """How many input entries ``window`` of conv or pool step ``st`` reads."""
    return (window.width - 1) * st.stride + st.dilation * (st.kernel - 1) + 1


def _pointwise(module: nn.Module, vals: torch.Tensor) -> torch.Tensor:
    """An elementwise step on channels-last windows ``(..., W, C)`` (a batch norm wants channels second).

    The windows are always a fresh tensor of this edit block, so a ReLU clamps them in place.
    """
    if type(module) is nn.ReLU:
        return vals.clamp_min_(0.0)
    flat = vals.reshape(-1, *vals.shape[-2:]).transpose(1, 2)
    return module(flat).transpose(1, 2).reshape(vals.shape)


def _global_max(vals, window: _Window, ms, length: int, around, margin: int, contiguous: bool) -> torch.Tensor:
    """The global max pool of the windows ``vals`` ``(N, M, K, W, C)``: ``(N M K, C, 1)``.

    Outside its window an edited map is the reference, so its maximum is the
    larger of the window's maximum and the maxima before and after the window
    (``around``: :func:`_maxima_around` with ``margin``). Window entries past the
    map's ends (``length`` outputs) do not exist and are left out. For consecutive
    ``ms`` (``contiguous``) the maxima around the windows are strided views, else gathers.
    """
    n, m, k, width, channels = vals.shape
    _fill_outside(vals, window.start, window.step, ms, 0, width, length, -math.inf)
    inside = _halving_max(vals)  # (N, M, K, C)
    if window.step == 0 and window.start <= 0 and window.start + width >= length:  # the whole map: no outside
        return inside.reshape(-1, channels, 1)
    before, after = around
    if contiguous:
        first = margin + window.start + window.step * int(ms[0])
        before = before[:, :, first::window.step][:, :, :m]
        after = after[:, :, first + width::window.step][:, :, :m]
    else:
        starts = margin + window.start + window.step * ms  # (M,)
        before, after = before.index_select(2, starts), after.index_select(2, starts + width)
    outside = torch.maximum(before, after).transpose(1, 2)  # (N, M, C)
    return torch.maximum(inside, outside[:, :, None]).reshape(-1, channels, 1)


def _spliced(reference: _Extended, window: _Window, vals, ms) -> torch.Tensor:
    """The chain's whole output for each edit ``(N M K, C, J)``: the reference with the window ``vals``
    ``(N, M, K, W, C)`` written in (entries past the ends fall in the margins and are cropped)."""
    n, m, k, width, channels = vals.shape
    span = reference.values.shape[1]
    full = reference.values.new_empty(k, n, m, span, channels)  # a copy: never a view of the reference
    full.copy_(reference.values[None, :, None])
    rows = (torch.arange(m, device=ms.device)[:, None] * span + reference.origin + window.start
            + window.step * ms[:, None] + torch.arange(width, device=ms.device))  # (M, W) into (M span)
    full.view(k, n, m * span, channels).index_copy_(2, rows.flatten(),
                                                    vals.permute(2, 0, 1, 3, 4).reshape(k, n, m * width, channels))
    chain = full[:, :, :, reference.origin:reference.origin + reference.length]  # (K, N, M, J, C)
    return chain.permute(1, 2, 0, 4, 3).reshape(-1, channels, reference.length)


def _dense_weight(conv: nn.Conv1d) -> torch.Tensor:
    """``(C_out, C_in, T)``: ``conv``'s weight with the zeros its groups imply (the weight itself when ungrouped)."""
    w = conv.weight
    if conv.groups == 1:
        return w
    out_g, in_g = w.shape[0] // conv.groups, w.shape[1]
    dense = w.new_zeros(w.shape[0], in_g * conv.groups, w.shape[2])
    for group in range(conv.groups):
        dense[group * out_g:(group + 1) * out_g, group * in_g:(group + 1) * in_g] = w[group * out_g:(group + 1) * out_g]
    return dense


class SISScreen:
    """Cheap approximate scores of every "mask one more position" candidate of DNA inputs.

    Masking one position of a partially masked sequence is a single-column edit,
    so the local-window plan (:func:`local_plan`) scores all candidates of a step recomputing only the
    windows each edit reaches. Its float32 arithmetic differs from a full forward
    pass in the last bits, so the screen only *shortlists*: every candidate whose
    probability interval (:meth:`bounds`) reaches the best lower bound of its
    input is kept; those whose probability is not pinned to one float by the
    bound are scored by ``f`` itself, and the choice is made with the usual rule
    (highest, ties to the lowest position); the recorded score of the choice is
    ``f``'s, or the one value the bounds pin it to. The true best is always shortlisted, so the removal order is
    that of the plain path, ties included -- up to the last bit of ``torch.sigmoid``,
    whose vectorised kernel and scalar tail can differ by one unit: ``f`` itself
    then depends on where an input sits in a batch, and the plain path, which
    batches differently from the paper's one-at-a-time loop, shares that caveat.
    """

    # bound on |approximate - exact logit|, relative to 1 + |logit| (float32 rounding is ~1e-7)
    LOGIT_ERROR = 1e-5
    # a value known from the bounds may differ from f's own in the last bit: the choice is rescored
    KNOWN_IS_EXACT = False
    # f scores at least this many rows per call (:func:`at_least`); one-row calls round like many here
    MIN_ROWS = 1
    # entries the state of :class:`_MaskingTracker` may hold (its six (R, C, L) tensors and its table of D)
    TRACKER_ELEMENTS = 2 ** 27
    # the 1-layer tracker's steps run compiled (:class:`_CompiledTracker`) on the CPU; False: torch operations
    COMPILED = True

    def __init__(self, plan, batch_size: int, dtype: torch.dtype, link):
        self.plan, self.batch_size, self.plan_dtype, self.link = plan, batch_size, dtype, link

    @classmethod
    def build(cls, model, inputs, batch_size: int, output: str = "raw", target=None) -> SISScreen:
        """The screen for SIS on DNA positions (``mask_shape=(1, L)``) of a model with a local chain.

        ``inputs`` are SIS's inputs (``X``, ``fully_masked``, ``labels``, ``shape``);
        ``output`` is SIS's (``"probability"``: the sigmoid of the one logit).
        Call with the model in eval mode.

        Raises
        ------
        ValueError
            When the features are not DNA positions, the model has a class
            ``target``, or it does not start with a local chain (:func:`local_plan`).
        """
        if target is not None:
            raise ValueError("fast=True screens models with one output; this call has a class target: use fast=False")
        if len(inputs.shape) != 2 or inputs.shape[0] != 4:
            raise ValueError(f"fast=True is for one-hot DNA (4, L) inputs, got inputs of shape {inputs.shape}")
        positions = torch.arange(inputs.shape[1], device=inputs.labels.device).reshape(1, -1)
        if inputs.labels.shape != positions.shape or not torch.equal(inputs.labels, positions):
            raise ValueError("fast=True needs one feature per DNA position (mask_shape=(1, L))")
        with torch.inference_mode():
            plan = local_plan(model, inputs.X[:1])
            dtype = plan.score(inputs.X[:1]).dtype
        return cls(plan, batch_size, dtype, torch.sigmoid if output == "probability" else torch.clone)

    def __call__(self, inputs, rows: torch.Tensor, remaining: torch.Tensor) -> torch.Tensor:
        """Approximate logits ``(R, L)``: entry ``[r, p]`` masks position ``p`` of input ``rows[r]``
        with the features ``remaining[r]`` kept (computed only where ``remaining`` is True)."""
        out = []
        with torch.inference_mode(), self.plan._cut():
            for s in range(0, rows.numel(), self.batch_size):
                part, keep = rows[s:s + self.batch_size], remaining[s:s + self.batch_size]
                base, new = inputs.masked(part, keep), inputs.fully_masked[part][None]
                out.append(self.plan.edit_scores(base, new, None, keep.to(base.device))[0].double().cpu())
        return torch.cat(out)

    def interval(self, inputs, rows: torch.Tensor, remaining: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(low, high)`` ``(R, L)``: :meth:`bounds` of the candidates' approximate logits (:meth:`__call__`)."""
        return self.bounds(self(inputs, rows, remaining))

    def bounds(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Lowest and highest probability the exact logit can give, for these approximate logits.

        The exact logit lies within ``LOGIT_ERROR (1 + |z|)`` of the approximate
        ``z``; rounded to the model's dtype and put through the score's link
        (``torch.sigmoid`` for ``output="probability"``, none for raw logits; it
        never decreases) it gives a value between the two. Where both ends agree
        the score is known without running the model.
        """
        error = self.LOGIT_ERROR * (1 + logits.abs())
        low = self.link((logits - error).to(self.plan_dtype)).double()
        high = self.link((logits + error).to(self.plan_dtype)).double()
        return low, high

    def start(self, inputs, rows: torch.Tensor, remaining: torch.Tensor):
        """The screen of one backward selection over the inputs ``rows``, with ``remaining`` ``(R, L)`` unmasked.

        Returns a tracker: its ``interval()`` is :meth:`interval` for the current
        masks, its ``remove(which, positions)`` masks position ``positions[k]`` of
        row ``which[k]``, and its ``screen`` is this screen. A chain conv -> global
        max pool -> elementwise (the 1-layer models) keeps its state from step to
        step (:class:`_MaskingTracker`) when it fits ``TRACKER_ELEMENTS``; any other
        chain, or inputs too many or not one-hot enough for its tables, recomputes
        each step (:class:`Recomputing`), ``batch_size`` inputs at a time.
        """
        if self.plan._lookup_path():
            conv = self.plan.steps[0].module
            compiled = self.COMPILED and inputs.X.device.type == "cpu"
            changes, codes = _distinct_changes(inputs, rows, torch.float64 if compiled else conv.weight.dtype)
            state = rows.numel() * conv.out_channels * inputs.shape[-1]  # entries of each (R, C, L) tensor
            if 6 * state + changes.shape[0] * conv.weight.numel() <= self.TRACKER_ELEMENTS:
                tracker = _CompiledTracker if compiled else _MaskingTracker
                return tracker(self, inputs, rows, remaining, changes, codes)
        return Recomputing(self, inputs, rows, remaining)


def _distinct_changes(inputs, rows: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct columns ``masked - original`` of the inputs ``rows`` ``(K, 4)``, and each position's ``(R, L)``.

    The same as ``torch.unique(change, dim=0, return_inverse=True)`` (distinct columns in
    lexicographic order), by ranking one base at a time: a column's code is the rank of
    the pair (code so far, rank of its next entry). Four 1-D sorts of the ``R L``
    columns, several times faster than the row-wise ``unique``; the codes stay below
    ``R L``, so the pairs never overflow.
    """
    change = (inputs.fully_masked[rows] - inputs.X[rows]).to(dtype).transpose(1, 2).reshape(-1, 4)
    codes = torch.zeros(change.shape[0], dtype=torch.long, device=change.device)
    for entries in change.unbind(1):
        values, rank = torch.unique(entries, return_inverse=True)
        codes = torch.unique(codes * values.numel() + rank, return_inverse=True)[1]
    changes = change.new_empty(int(codes.max()) + 1, 4)
    changes[codes] = change  # every column of one code is the same
    return changes, codes.reshape(rows.numel(), -1)


def _window_state(screen: SISScreen, inputs, rows, remaining, changes, codes, dtype: torch.dtype):
    """The starting state of a tracker (:class:`_MaskingTracker`, :class:`_CompiledTracker`), in ``dtype``.

    Returns ``(padded, conv, table, rise, bound)``:

    * ``padded`` ``(R, 4, L + 2 pad)``: the inputs ``rows`` with the features not ``remaining``
      masked, zero padded as the convolution pads them;
    * ``conv`` ``(R, C, J + 2 (T - 1))``: the convolution's ``J`` outputs with ``T - 1`` entries of
      ``-inf`` on each side, so that the outputs reading position ``q`` (its window ``V(q)``) are
      ``conv[:, :, q + pad : q + pad + T]`` at the ends too;
    * ``table`` ``(K, C, T)``: ``table[k, c, u]`` is what masking a position whose change is
      ``changes[k]`` adds to output ``q + pad + u`` of ``conv`` (it reads ``q`` through tap
      ``T - 1 - u``); ``codes`` ``(R, L)`` says which change each position has (:func:`_distinct_changes`);
    * ``rise`` ``(K, C)``: the largest entry of ``table`` over the taps;
    * ``bound`` ``(R, C, L)``: ``max V(q) + rise[codes[r, q], c]``, at least the pooled window of
      channel ``c`` after masking ``q`` (float rounding is monotone).
    """
    st = screen.plan.steps[0]
    weight = st.module.weight.detach().to(dtype)
    bias = None if st.module.bias is None else st.module.bias.detach().to(dtype)
    taps, length = st.kernel, codes.shape[1]
    current = torch.where(remaining[:, None], inputs.X[rows], inputs.fully_masked[rows]).to(dtype)
    padded = F.pad(current, (st.pad, st.pad))
    conv = F.pad(F.conv1d(padded, weight, bias), (taps - 1, taps - 1), value=-math.inf)
    table = torch.einsum("kb,cbu->kcu", changes.to(dtype), weight.flip(-1))
    rise = table.amax(dim=-1)
    windows = conv[:, :, st.pad:st.pad + length + taps - 1]
    bound = _sliding_max(windows, taps) + rise[codes].permute(0, 2, 1)
    return padded, conv, table, rise, bound


class Recomputing:
    """A backward selection's tracker that computes every step afresh: ``screen.interval`` of the current masks.

    For any screen with ``interval(inputs, rows, remaining)`` (:class:`SISScreen`,
    :class:`mlcourse.interpret.image_engines.ImageSISScreen`).
    """

    def __init__(self, screen, inputs, rows, remaining):
        self.screen, self.inputs, self.rows, self.remaining = screen, inputs, rows, remaining.clone()

    def interval(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.screen.interval(self.inputs, self.rows, self.remaining)

    def remove(self, which: torch.Tensor, positions: torch.Tensor) -> None:
        self.remaining[which, positions] = False


class _MaskingTracker:
    """Approximate logits of every "mask one more position" candidate, kept up to date as positions are masked.

    For a chain conv -> global max pool -> elementwise. Masking candidate ``q``
    changes the convolution's outputs ``j`` in its window ``V(q)`` (those whose
    taps read ``q``) by ``D[q, j] = W_t (masked_q - x_q)``, the same at every step
    (a remaining column still holds its original value). Channel ``c``'s pooled value
    is then ``max(outside[c, q], inside[c, q])``: the maximum over the outputs
    outside the window (prefix and suffix maxima), and ``inside[c, q] = max_j conv[j]
    + D[q, j]`` over the window. Each step masks one position ``p`` per input, which
    changes the convolution only in ``V(p)``; the state is kept across steps:

    * ``conv`` holds the current outputs (``-inf`` padded by ``T - 1`` on both
      sides); masking ``p`` recomputes its window from the masked input (a
      convolution of ``2 T - 1`` columns, so no rounding builds up over the steps);
    * ``inside[c, q]`` is computed only when needed and kept: it becomes *stale*
      when a step changes an output in ``V(q)`` (``q`` within ``T - 1`` positions of
      the masked one), and it is needed only where it can beat the outside maximum.
      ``inside <= max_{V(q)} conv + max_j D[q, j]`` (float rounding is monotone), so
      where the monotone maps after the pool give that bound no more than the
      outside maximum, the pooled value is the outside maximum exactly. A stale entry
      holds ``-inf``, so ``max(inside, outside)`` is the pooled value everywhere (after
      those maps) without a selection;
    * ``D`` is a table: one row per distinct change (4 for one-hot DNA and one
      masked value) and channel.

    Every step then costs a few passes over ``(R, C, L)`` and ``T`` values for each
    stale channel that matters, instead of ``T`` values for every channel of every
    candidate.
    """

    def __init__(self, screen: SISScreen, inputs, rows, remaining, changes, codes):
        self.screen, self.plan = screen, screen.plan
        st = self.plan.steps[0]
        self.weight = st.module.weight.detach()
        self.bias = None if st.module.bias is None else st.module.bias.detach()
        self.pad, self.taps, self.out_len = st.pad, st.kernel, st.out_len
        self.remaining = remaining.to(inputs.X.device).clone()
        self.masked = inputs.fully_masked[rows].to(self.weight.dtype)
        self.padded, self.conv, table, rise, self.bound = _window_state(
            screen, inputs, rows, self.remaining, changes, codes, self.weight.dtype)
        (n, channels, length), taps = self.bound.shape, self.taps
        self.table = table.reshape(-1, taps)  # row k C + c: change k in channel c
        self.rise = rise[codes].permute(0, 2, 1).contiguous()  # (R, C, L): max_j D[q, j]
        # for entry (r, c, q) of the (R, C, L) state: its row of the table (k C + c, k = codes[r, q]), and the
        # first output of V(q) in the flattened ``conv`` ((r C + c) span + q + pad, span = L + 2 (T - 1))
        channel = torch.arange(channels, device=codes.device)[None, :, None]
        self.change_row = (codes[:, None] * channels + channel).reshape(-1)
        span = self.out_len + 2 * (taps - 1)  # the length of ``conv``, padded
        first = (torch.arange(n, device=codes.device)[:, None, None] * channels + channel) * span
        self.first_output = (first + torch.arange(length, device=codes.device) + self.pad).reshape(-1)
        self.window = min(taps, self.out_len)  # outputs recomputed per masked position
        self.near = min(self.window + taps - 1, length)  # candidates whose bound a masked position renews
        # flat offsets, within one row, of the entries a masking writes (see :meth:`remove`)
        device = codes.device
        self.column_offsets = torch.arange(4, device=device) * (length + 2 * self.pad)  # (4,)
        self.masked_offsets = torch.arange(4, device=device) * length
        self.output_offsets = channel[0] * span + torch.arange(self.window, device=device)  # (C, W)
        self.near_offsets = channel[0] * length + torch.arange(self.near, device=device)  # (C, near)
        self.inside = torch.full_like(self.bound, -math.inf)
        self.stale = torch.ones(n, channels, length, dtype=torch.bool, device=self.bound.device)
        monotone = all(_monotone(step.module) for step in self.plan.steps[2:])  # after the pool
        self.after_map = self.plan._after_pool if monotone else (lambda values: values)

    def _outside(self, length: int) -> torch.Tensor:
        """``(R, C, L)``: the maximum over the outputs outside ``V(q)`` = ``q + pad - (T - 1) .. q + pad``.

        That is the larger of ``prefix[q + pad - T]`` and ``suffix[q + pad + 1]``
        (``-inf`` off the ends): two shifted copies of the prefix and suffix maxima.
        """
        prefix, suffix = _running_maxima(self.conv[:, :, self.taps - 1:self.taps - 1 + self.out_len])
        return _LocalPlan._outside(self.plan.steps[0], length, prefix, suffix)

    def interval(self) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`SISScreen.interval` for the current masks: :meth:`SISScreen.bounds` of :meth:`logits`."""
        return self.screen.bounds(self.logits())

    def logits(self) -> torch.Tensor:
        """``(R, L)`` float64: the approximate logit of masking each remaining position (NaN elsewhere)."""
        with torch.inference_mode():
            outside = self._outside(self.remaining.shape[1])
            matters = (self.after_map(self.bound) > self.after_map(outside)) & self.remaining[:, None]
            self._refresh(matters & self.stale)
            pooled = torch.maximum(self.inside, outside)  # stale entries hold -inf
            # every (row, position) goes through the head, masked ones too (cheaper than gathering the rest)
            n, channels, length = pooled.shape
            chain = self.plan._after_pool(pooled.transpose(1, 2).reshape(n * length, channels, 1))
            with self.plan._cut():
                out = self.plan._rest(chain).reshape(n, length).double().cpu()
            return out.masked_fill(~self.remaining.cpu(), math.nan)

    def _refresh(self, needed: torch.Tensor) -> None:
        """Recompute ``inside`` where ``needed`` ``(R, C, L)``: ``T`` window outputs each, plus ``D``."""
        flat = needed.view(-1).nonzero().squeeze(1)  # (r C + c) L + q
        if not flat.numel():
            return
        windows = self.conv.view(-1).unfold(0, self.taps, 1)  # row (r C + c) span + j: outputs j .. j + T - 1
        outputs = windows.index_select(0, self.first_output.index_select(0, flat))  # (n, T): the outputs of V(q)
        change = self.table.index_select(0, self.change_row.index_select(0, flat))
        # the maximum over each row's T values, by halves of the transposed (T, n) view
        self.inside.view(-1).index_copy_(0, flat, _halving_max((outputs + change).t()))
        self.stale.view(-1).index_fill_(0, flat, False)

    def remove(self, which: torch.Tensor, positions: torch.Tensor) -> None:
        """Mask ``positions[k]`` of row ``which[k]``: recompute the convolution's window there, mark stale.

        Every write goes through flat offsets into 1-D views (``index_copy_``): entry ``(r,
        c, j)`` of an ``(R, C, J)`` tensor is ``r C J + c J + j``, so each masked position
        adds its row's and window's start to a fixed grid of offsets.
        """
        if not which.numel():
            return
        with torch.inference_mode():
            taps, width, length = self.taps, self.window, self.remaining.shape[1]
            channels, span = self.conv.shape[1], self.conv.shape[2]
            self.remaining[which, positions] = False
            where = (which * (4 * (length + 2 * self.pad)) + positions + self.pad)[:, None] + self.column_offsets
            source = (which * (4 * length) + positions)[:, None] + self.masked_offsets
            self.padded.view(-1).index_copy_(0, where.view(-1), self.masked.view(-1).index_select(0, source.view(-1)))
            start = (positions + self.pad - (taps - 1)).clamp(0, self.out_len - width)  # first recomputed output
            columns = self.padded.unfold(2, width + taps - 1, 1)[which, :, start]  # (n, 4, W + T - 1)
            outputs = F.conv1d(columns, self.weight, self.bias)  # (n, C, W)
            where = (which * (channels * span) + taps - 1 + start)[:, None, None] + self.output_offsets
            self.conv.view(-1).index_copy_(0, where.view(-1), outputs.reshape(-1))
            # candidates q whose window V(q) meets the recomputed outputs (``near`` of them from ``first``,
            # a few more where that would run off the ends): stale, with a new bound
            first = (start - self.pad).clamp(0, length - self.near)
            segment = self.conv.unfold(2, self.near + taps - 1, 1)[which, :, first + self.pad]  # their windows
            where = ((which * (channels * length) + first)[:, None, None] + self.near_offsets).view(-1)
            bound = _sliding_max(segment, taps).reshape(-1) + self.rise.view(-1).index_select(0, where)
            self.bound.view(-1).index_copy_(0, where, bound)
            self.stale.view(-1).index_fill_(0, where, True)
            self.inside.view(-1).index_fill_(0, where, -math.inf)


class _CompiledTracker:
    """:class:`_MaskingTracker` for CPU tensors, its steps compiled (:mod:`mlcourse.interpret.sis_kernel`).

    The same state and the same exact pruning, held in float64 NumPy arrays: a
    step of a batch of inputs is one compiled loop over them (a few microseconds
    per input) instead of ~150 small torch operations, whose fixed cost dominated.
    Masking ``p`` *adds* its change ``D[p, j]`` to the window's outputs instead of
    recomputing them: in float64 the sum of up to ``L`` such additions stays far
    within the screen's ``LOGIT_ERROR``. The pooled values of the remaining
    candidates (only those) then go through the rest of the model in torch, in
    the model's dtype, as one batch.

    Pruning: ``inside`` is computed where ``bound`` beats the outside maximum and
    ``floor``; the floor is 0 when the steps after the pool are ReLUs (with
    dropouts or identities: eval mode), since ``relu`` maps every value below 0 to
    0; else ``-inf``. Either way the value written has the same image under those
    steps as the exact pooled value.
    """

    def __init__(self, screen: SISScreen, inputs, rows, remaining, changes, codes):
        from mlcourse.interpret import sis_kernel

        self.screen, self.plan, self.kernels = screen, screen.plan, sis_kernel.kernels()
        st = self.plan.steps[0]
        self.pad, self.dtype = st.pad, st.module.weight.dtype
        self.remaining = remaining.clone()
        _, conv, table, rise, bound = _window_state(screen, inputs, rows, self.remaining, changes, codes,
                                                    torch.float64)
        self.conv, self.table, self.rise, self.bound = (t.contiguous() for t in (conv, table, rise, bound))
        self.codes = codes.contiguous()
        self.inside = torch.empty_like(self.bound)
        self.stale = torch.ones(self.bound.shape, dtype=torch.bool)
        n, channels, length = self.bound.shape
        self.last = torch.full((n, length, channels), math.nan, dtype=torch.float64)  # pooled values so far
        self.changed = torch.empty(n * length, channels, dtype=torch.float64)  # those that changed ...
        self.where = torch.empty(n * length, dtype=torch.long)  # ... and their candidates r L + q
        self.known = torch.empty(n, length, dtype=torch.float64)  # the approximate logits so far
        after = [step.module for step in self.plan.steps[2:]]
        relu_only = any(isinstance(m, nn.ReLU) for m in after) and all(
            isinstance(m, (nn.ReLU, nn.Dropout, nn.Identity)) for m in after)
        self.floor = 0.0 if relu_only else -math.inf

    def interval(self) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`SISScreen.interval` for the current masks: :meth:`SISScreen.bounds` of :meth:`logits`."""
        return self.screen.bounds(self.logits())

    def logits(self) -> torch.Tensor:
        """``(R, L)`` float64: the approximate logit of masking each remaining position (NaN elsewhere).

        Only candidates whose pooled values changed since the last call go through the rest of the model."""
        count = self.kernels.pooled(self.conv.numpy(), self.table.numpy(), self.codes.numpy(),
                                    self.remaining.numpy(), self.bound.numpy(), self.inside.numpy(),
                                    self.stale.numpy(), self.pad, self.floor, self.last.numpy(),
                                    self.changed.numpy(), self.where.numpy())
        if count:
            with torch.inference_mode():
                chain = self.plan._after_pool(self.changed[:count].to(self.dtype)[:, :, None])[:, :, 0]
                self.known.view(-1)[self.where[:count]] = self.plan._head(chain, torch.float64)
        return self.known.masked_fill(~self.remaining, math.nan)

    def remove(self, which: torch.Tensor, positions: torch.Tensor) -> None:
        """Mask ``positions[k]`` of row ``which[k]`` (:func:`mlcourse.interpret.sis_kernel.mask`)."""
        if not which.numel():
            return
        self.remaining[which, positions] = False
        which, positions = which.contiguous(), positions.contiguous()  # one compiled layout: numba compiles per layout
        self.kernels.mask(self.conv.numpy(), self.table.numpy(), self.rise.numpy(), self.codes.numpy(),
                          self.bound.numpy(), self.stale.numpy(), which.numpy(), positions.numpy(), self.pad)
