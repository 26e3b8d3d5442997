"""In-silico saturation mutagenesis (ISM): try every base at every position.

ISM asks the model directly what each base is worth. For a one-hot sequence
``x`` of length ``L`` and each position ``l`` and base ``b`` it scores the
mutant ``x[l <- b]`` and records

    ISM[b, l] = f(x[l <- b]) - f(x)

so a sequence costs ``3 L`` forward passes (the identity edit ``b = x_l``
changes nothing and is not computed: its entry is exactly 0). Alipanahi et al.
(2015, DeepBind) drew these "mutation maps"; Zhou & Troyanskaya (2015,
DeepSEA) used them for variant effects. ISM needs no gradients, so it works for
any callable that scores a batch, not only for neural networks.

Two ways to compute it, with the same result:

* **plain**: build all ``3 L`` mutants of every sequence and score them in
  large batches across sequences (any callable);
* **local** (the fastISM idea of Nair et al. 2022, Bioinformatics 38:2397): a
  mutation at position ``p`` changes a convolution's output only in the window
  of positions whose receptive field holds ``p``. For a model that begins with
  a chain of ``Conv1d`` / elementwise / ``MaxPool1d`` modules, the reference
  activations are computed once per sequence and each mutant only recomputes
  those windows. The first convolution is linear in its input, so its change is
  ``W[:, b, t] - W[:, a, t]`` summed into the window without any convolution, and
  a global max pool over a window-edited map is ``max(max outside the window,
  max inside)``, with the outside maxima read from prefix and suffix maxima.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mlcourse.train import eval_mode

__all__ = ["saturation_mutagenesis", "score_fn", "edits", "local_plan"]

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


def score_fn(model, target=None):
    """Wrap ``model`` (a module or any callable) as ``batch -> scores of shape (B,)``.

    The model may return ``(B,)`` scores, ``(B, 1)``, or ``(B, C)`` with ``target``
    naming the column. Anything else raises a ``ValueError`` that gives the shape.
    """

    def score(batch: torch.Tensor) -> torch.Tensor:
        out = model(batch)
        if not isinstance(out, torch.Tensor):
            raise ValueError(f"the model must return a tensor, got {type(out).__name__}")
        n = batch.shape[0]
        if out.shape == (n,) and target is None:
            return out
        if out.shape == (n, 1) and target is None:
            return out[:, 0]
        if out.ndim == 2 and out.shape[0] == n and target is not None:
            if not 0 <= target < out.shape[1]:
                raise ValueError(f"target={target} is out of range for {out.shape[1]} outputs")
            return out[:, target]
        want = "(B,) or (B, 1)" if target is None else "(B, C) with a target column"
        raise ValueError(
            f"for a batch of B={n} inputs the model returned shape {tuple(out.shape)}; "
            f"expected {want}" + ("" if target is not None or out.ndim != 2 else
                                  " (pass target=column for a multi-output model)")
        )

    return score


def _check_dna(X) -> torch.Tensor:
    if not isinstance(X, torch.Tensor):
        raise ValueError(f"X must be a torch tensor of one-hot DNA (N, 4, L), got {type(X).__name__}")
    if X.ndim != 3 or X.shape[1] != 4 or X.shape[0] == 0 or X.shape[2] == 0:
        raise ValueError(f"X must be one-hot DNA of shape (N, 4, L) with N, L > 0, got {tuple(X.shape)}")
    return X if X.is_floating_point() else X.float()


def edits(X: torch.Tensor) -> torch.Tensor:
    """Boolean ``(N, 4, L)``: True where substituting base ``b`` at ``l`` changes the sequence.

    A clean one-hot column has three edits; a column that is not one-hot (``N``
    = all zeros, or soft values) has four.
    """
    identity = (X == 1) & (X.sum(dim=1, keepdim=True) == 1)
    return ~identity


def _batched(score, X: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat([score(X[i:i + batch_size]) for i in range(0, X.shape[0], batch_size)])


def saturation_mutagenesis(model, X, target=None, batch_size: int = 2048, fast: bool = True):
    """Change in the model's output for every single-base substitution.

    Follows the mutation maps of Alipanahi et al. (2015); the ``fast`` path
    recomputes only what a mutation can reach, as fastISM (Nair et al. 2022).

    Parameters
    ----------
    model : nn.Module or callable
        Maps a batch ``(B, 4, L)`` to scores ``(B,)``, ``(B, 1)`` or ``(B, C)``
        (then pick a column with ``target``). Modules run in eval mode for the
        call (their training flag is restored afterwards).
    X : torch.Tensor
        One-hot DNA ``(N, 4, L)``.
    target : int, optional
        Output column for multi-output models.
    batch_size : int
        Mutants scored per model call.
    fast : bool
        Use the local-window path when ``model`` is an ``nn.Module`` that starts
        with a chain of ``Conv1d`` (zero padding), elementwise and ``MaxPool1d``
        modules, each called once, and uses its input nowhere else (as the Zeng
        et al. architectures in :mod:`mlcourse.models.zeng`). Other models take
        the plain batched path. Both agree to float rounding.

    Returns
    -------
    torch.Tensor
        ``(N, 4, L)`` on the CPU, in the dtype of ``X`` (float32 for integer
        input): ``f(mutant) - f(x)``; 0 for the base already present.

    Examples
    --------
    >>> ism = saturation_mutagenesis(model, X)           # doctest: +SKIP
    >>> ism.min(dim=1).values                            # most damaging mutation per position  # doctest: +SKIP
    """
    X = _check_dna(X)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    score = score_fn(model, target)
    device = _device_of(model)
    with eval_mode(model), torch.inference_mode():
        X = X.to(device)
        ref = _batched(score, X, batch_size)
        plan = local_plan(model, X[:1], target) if fast and isinstance(model, nn.Module) else None
        if plan is None:
            out = _plain(score, X, ref, batch_size)
        else:
            out = plan.ism(X, ref, batch_size)
    return out.cpu()


def _device_of(model) -> torch.device:
    if isinstance(model, nn.Module):
        param = next(model.parameters(), None)
        if param is not None:
            return param.device
    return torch.device("cpu")


def local_plan(model: nn.Module, example: torch.Tensor, target=None):
    """The local-window path for ``model``, or None when it does not start with a local chain.

    ``example`` is one batch ``(1, 4, L)`` of the inputs to come (call in eval
    mode, without gradients). The plan's ``edit_scores(X, new, ref)`` scores all
    single-column edits of ``X`` and ``score(X)`` scores ``X`` itself; ISM edits
    in the four bases, SIS (:mod:`mlcourse.interpret.sis`) the masked value.
    """
    return _LocalPlan.capture(model, score_fn(model, target), example)


def _halving_max(vals: torch.Tensor) -> torch.Tensor:
    """``vals.amax(dim=-2)`` by pairwise maxima of halves (overlapping when odd): several times
    faster than a reduction over a middle dimension on the CPU, and exactly the same values."""
    while vals.shape[-2] > 1:
        half = vals.shape[-2] // 2
        vals = torch.maximum(vals[..., :vals.shape[-2] - half, :], vals[..., half:, :])
    return vals[..., 0, :]


def _plain(score, X, ref, batch_size):
    """Every mutant of every sequence, scored ``batch_size`` at a time across sequences."""
    out = torch.zeros_like(X)
    n, b, p = torch.nonzero(edits(X), as_tuple=True)
    for s in range(0, n.numel(), batch_size):
        ni, bi, pi = n[s:s + batch_size], b[s:s + batch_size], p[s:s + batch_size]
        mutants = X[ni]
        rows = torch.arange(ni.numel(), device=X.device)
        mutants[rows, :, pi] = 0.0
        mutants[rows, bi, pi] = 1.0
        out[ni, bi, pi] = score(mutants) - ref[ni]
    return out


# --------------------------------------------------------------------------- local path


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

    def affected(self, a: int, b: int) -> tuple[int, int]:
        """Output positions whose receptive field meets input positions ``a..b``."""
        if self.kind == "pointwise":
            return a, b
        reach = self.dilation * (self.kernel - 1)
        lo = max(0, math.ceil((a + self.pad - reach) / self.stride))
        hi = min(self.out_len - 1, (b + self.pad) // self.stride)
        return lo, hi


def _geometry(module: nn.Module, in_len: int, out_len: int) -> _Step | None:
    """A ``_Step`` for a supported module, else None (the chain stops there)."""
    if isinstance(module, _POINTWISE):
        return _Step(module, "pointwise", in_len, out_len) if in_len == out_len else None
    if isinstance(module, nn.Conv1d):
        pad = module.padding
        if module.padding_mode != "zeros" or isinstance(pad, str) and pad != "valid":
            return None
        pad = 0 if isinstance(pad, str) else pad[0]
        return _Step(module, "conv", in_len, out_len, module.kernel_size[0], module.stride[0],
                     module.dilation[0], pad)
    if isinstance(module, nn.MaxPool1d) and not module.ceil_mode and not module.return_indices:
        k, s, d, pad = (v if isinstance(v, int) else v[0] for v in
                        (module.kernel_size, module.stride, module.dilation, module.padding))
        if out_len == 1 and pad == 0 and 1 + d * (k - 1) >= in_len:
            return _Step(module, "global", in_len, 1)
        return _Step(module, "pool", in_len, out_len, k, s, d, pad)
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

    @classmethod
    def capture(cls, model: nn.Module, score, x: torch.Tensor):
        """Find the chain by running ``x`` once; None when the model does not start with one."""
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
        """The model's output when the chain's output is ``value``."""
        first = self.steps[0].module
        inject = _Inject()
        inject.value = value
        swaps = [(_parent_and_name(self.model, first), inject)]
        swaps += [(_parent_and_name(self.model, s.module), nn.Identity()) for s in self.steps[1:]]
        originals = [getattr(parent, name) for (parent, name), _ in swaps]
        try:
            for (parent, name), new in swaps:
                setattr(parent, name, new)
            dummy = torch.zeros((), device=value.device).expand(value.shape[0], *self.x_shape)
            return self.score(dummy)
        finally:
            for ((parent, name), _), old in zip(swaps, originals):
                setattr(parent, name, old)

    def ism(self, X, ref, batch_size):
        out = torch.zeros_like(X)
        per_chunk = max(1, batch_size // 4)
        for s in range(0, X.shape[0], per_chunk):
            out[s:s + per_chunk] = self._chunk(X[s:s + per_chunk], ref[s:s + per_chunk])
        return out

    def _chunk(self, X, ref):
        """ISM of a chunk of sequences: every base at every position, via :meth:`edit_scores`.

        Scoring the identity base too is cheaper than gathering the three true
        mutants; its entry is then set to exactly 0.
        """
        bases = torch.eye(4, dtype=X.dtype, device=X.device)[:, None, :, None]  # (4, 1, 4, 1)
        delta = (self.edit_scores(X, bases, ref) - ref[:, None]).transpose(0, 1)  # (N, 4, L)
        return torch.where(edits(X), delta, 0.0)

    def edit_scores(self, X, new, ref, where=None):
        """Scores of every single-column edit of ``X``: ``(K, N, L)``.

        Entry ``[k, i, p]`` scores ``X[i]`` with column ``p`` replaced by
        ``new[k, i, :, p]``; ``new`` broadcasts against ``(K, N, 4, L)`` (ISM: the
        four bases; SIS: the masked value of each input). ``ref`` ``(N,)`` are
        the scores of ``X`` itself, used where an edit reaches nothing and where
        the boolean ``where`` ``(N, L)`` (default: everywhere) is False; ``None``
        computes them when needed (and leaves 0 where ``where`` is False). Each
        position is one batch of ``K N`` edited inputs that recomputes only the
        windows the edit reaches (first-layer change without a convolution,
        global max pool from prefix and suffix maxima).
        """
        n, length = X.shape[0], X.shape[-1]
        new = torch.as_tensor(new, dtype=X.dtype, device=X.device)
        new = new.expand(new.shape[0], n, *X.shape[1:])
        k = new.shape[0]
        acts = self._reference(X)
        padded = [
            F.pad(acts[i], (st.pad, st.pad), value=0.0 if st.kind == "conv" else -math.inf)
            if st.pad else acts[i]
            for i, st in enumerate(self.steps)
        ]
        g = next((i for i, st in enumerate(self.steps) if st.kind == "global"), None)
        if g is not None:
            prefix = torch.cummax(acts[g], dim=-1).values
            suffix = torch.cummax(acts[g].flip(-1), dim=-1).values.flip(-1)
            first = self.steps[0]
            if (first.module.groups == 1 and first.stride == 1
                    and all(st.kind == "pointwise" and not isinstance(st.module, nn.BatchNorm1d)
                            for i, st in enumerate(self.steps) if i not in (0, g))):
                return self._all_positions(X, new, ref, where, acts, g, prefix, suffix)
        if ref is None:
            ref = self._rest(acts[-1])
        out = ref.to(X.dtype).expand(k, length, n).permute(0, 2, 1).clone()
        for p in range(length):
            if where is not None and not where[:, p].any():
                continue
            lo, hi, vals = self._first(X, acts[1], padded[0], p, new[:, :, :, p])
            pooled = False
            for i, st in enumerate(self.steps[1:], start=1):
                if lo > hi:
                    break
                if st.kind == "pointwise":
                    vals = st.module(vals)
                elif st.kind == "global":
                    outside = torch.full_like(prefix[:, :, 0], -math.inf)
                    if lo > 0:
                        outside = prefix[:, :, lo - 1]
                    if hi < st.in_len - 1:
                        outside = torch.maximum(outside, suffix[:, :, hi + 1])
                    vals = torch.maximum(outside.repeat(k, 1), vals.amax(dim=-1)).unsqueeze(-1)
                    pooled = True
                else:
                    lo, hi, vals = self._window(st, padded[i], lo, hi, vals)
            if lo > hi:
                continue  # the edit reaches nothing: the score is unchanged
            if pooled:
                chain_out = vals
            else:
                chain_out = acts[-1].repeat(k, 1, 1)
                chain_out[:, :, lo:hi + 1] = vals
            scores = self._rest(chain_out).reshape(k, n)
            out[:, :, p] = scores if where is None else torch.where(where[:, p], scores, out[:, :, p])
        return out

    def _all_positions(self, X, new, ref, where, acts, g, prefix, suffix, elements: int = 2 ** 18):
        """:meth:`edit_scores` for a chain conv -> elementwise -> global max -> elementwise.

        All positions at once: output ``j`` of the (stride 1) first convolution reads
        position ``p`` through tap ``t`` when ``j = p + pad - d t``, so the edited
        window of every ``p`` is ``conv_out[j] + W[:, :, t] @ (new - old)``, and the
        pooled value is the larger of its maximum and the prefix/suffix maxima
        outside it. Rows go in chunks of about ``elements`` window entries.
        """
        st, conv_out = self.steps[0], acts[1]
        k, n, length = new.shape[0], X.shape[0], X.shape[-1]
        reach = st.dilation * (st.kernel - 1)
        positions = torch.arange(length, device=X.device)
        lo = (positions + st.pad - reach).clamp(min=0)
        hi = (positions + st.pad).clamp(max=st.out_len - 1)
        none = torch.full_like(prefix[:, :, :1], -math.inf)
        before = torch.cat([none, prefix], dim=-1)[:, :, lo]  # max over outputs < lo
        after = torch.cat([suffix, none], dim=-1)[:, :, (hi + 1).clamp(max=st.out_len)]  # max over > hi
        outside = torch.maximum(before, after).transpose(1, 2)  # (N, L, C)
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
        pairs = torch.nonzero(torch.ones(n, length, dtype=torch.bool, device=X.device) if where is None else where)
        chunk = max(1, elements // (k * weight.shape[-1] * st.kernel))
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
            chain_out = torch.maximum(_halving_max(vals), outside[i, p]).reshape(-1, weight.shape[-1], 1)
            for step in self.steps[g + 1:]:
                chain_out = step.module(chain_out)
            out[:, i, p] = self._rest(chain_out).reshape(k, -1)
        return out

    def _first(self, X, conv_out, padded_in, p, new):
        """The first convolution's output window with column ``p`` set to ``new`` ``(K, N, 4)``: ``(K N, C, w)``."""
        st = self.steps[0]
        lo, hi = st.affected(p, p)
        if st.module.groups != 1 or lo > hi:
            return self._window(st, padded_in, p, p, new.reshape(-1, 4, 1))
        # Linear in the input: output j changes by W[:, :, t] @ (new - old), where p = j*s - pad + d*t
        j = torch.arange(lo, hi + 1, device=X.device)
        offset = p + st.pad - j * st.stride
        t = torch.div(offset, st.dilation, rounding_mode="floor")
        reached = (offset % st.dilation == 0) & (t >= 0) & (t < st.kernel)
        taps = st.module.weight[:, :, t.clamp(0, st.kernel - 1)] * reached  # (C, 4, w)
        without_old = conv_out[:, :, lo:hi + 1] - torch.einsum("nc,ocj->noj", X[:, :, p], taps)
        vals = without_old.unsqueeze(0) + torch.einsum("knc,ocj->knoj", new, taps)  # (K, N, C, w)
        return lo, hi, vals.reshape(-1, *vals.shape[2:])

    @staticmethod
    def _window(st: _Step, padded_in, a, b, vals):
        """Rerun a conv or pool on the outputs that input positions ``a..b`` (new ``vals``) reach."""
        lo, hi = st.affected(a, b)
        if lo > hi:
            return lo, hi, vals
        start, stop = lo * st.stride, hi * st.stride + st.dilation * (st.kernel - 1)
        window = padded_in[:, :, start:stop + 1].repeat(vals.shape[0] // padded_in.shape[0], 1, 1)
        x0, x1 = max(a + st.pad, start), min(b + st.pad, stop)
        if x0 <= x1:
            window[:, :, x0 - start:x1 - start + 1] = vals[:, :, x0 - a - st.pad:x1 - a - st.pad + 1]
        if st.kind == "conv":
            m = st.module
            result = F.conv1d(window, m.weight, m.bias, st.stride, 0, st.dilation, m.groups)
        else:
            result = F.max_pool1d(window, st.kernel, st.stride, 0, st.dilation)
        return lo, hi, result
