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

The definition is the default path: build all ``3 L`` mutants of every
sequence and score them in large batches across sequences (any callable).
``fast=True`` asks for the local-window engine of
:mod:`mlcourse.interpret.engines` (the fastISM idea of Nair et al. 2022),
which recomputes only the windows a mutation reaches; it gives the same
numbers to float rounding, many times faster on the Zeng et al. CNNs.
"""

from __future__ import annotations

import torch

from mlcourse.config import device_of, eval_mode
from mlcourse.interpret import engines
from mlcourse.interpret.scoring import as_batch, per_example, score

__all__ = ["saturation_mutagenesis", "edits"]


def _check_dna(X) -> torch.Tensor:
    if not isinstance(X, torch.Tensor):
        raise ValueError(f"X must be a torch tensor of one-hot DNA (N, 4, L), got {type(X).__name__}")
    if X.ndim != 3 or X.shape[1] != 4 or X.shape[0] == 0 or X.shape[2] == 0:
        raise ValueError(f"X must be one-hot DNA of shape (N, 4, L) with N, L > 0, got {tuple(X.shape)}")
    return as_batch(X)


def edits(X: torch.Tensor) -> torch.Tensor:
    """Boolean ``(N, 4, L)``: True where substituting base ``b`` at ``l`` changes the sequence.

    A clean one-hot column has three edits; a column that is not one-hot (``N``
    = all zeros, or soft values) has four.
    """
    identity = (X == 1) & (X.sum(dim=1, keepdim=True) == 1)
    return ~identity


def saturation_mutagenesis(model, X, *, target=None, batch_size: int = 2048, fast: bool = False):
    """Change in the model's output for every single-base substitution.

    Follows the mutation maps of Alipanahi et al. (2015).

    Parameters
    ----------
    model : nn.Module or callable
        Maps a batch ``(B, 4, L)`` to scores ``(B,)``, ``(B, 1)`` or ``(B, C)``
        (then pick a column with ``target``). Modules run in eval mode for the
        call (their training flag is restored afterwards), on their own device.
    X : torch.Tensor
        One-hot DNA ``(N, 4, L)``.
    target : int, optional
        Output column for multi-output models.
    batch_size : int
        Mutants scored per model call.
    fast : bool
        Use the local-window engine (:func:`mlcourse.interpret.engines.local_plan`):
        for an ``nn.Module`` that starts with a chain of ``Conv1d`` (zero padding),
        elementwise and ``MaxPool1d`` modules, each called once, and uses its input
        nowhere else (as the Zeng et al. architectures in :mod:`mlcourse.models.zeng`);
        other models raise a ``ValueError``. Both paths agree to float rounding.

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
    with eval_mode(model), torch.inference_mode():
        X = X.to(device_of(model))
        if fast:
            out = engines.local_plan(model, X[:1], target).ism(X, batch_size)
        else:
            out = _plain(model, X, score(model, X, target=target, batch_size=batch_size), target, batch_size)
        out = torch.where(edits(X), out, 0.0)
    return out.cpu()


def _plain(model, X, ref, target, batch_size):
    """Every mutant of every sequence, scored ``batch_size`` at a time across sequences."""
    out = torch.zeros_like(X)
    targets = per_example(target, len(X))
    n, b, p = torch.nonzero(edits(X), as_tuple=True)
    for s in range(0, n.numel(), batch_size):
        ni, bi, pi = n[s:s + batch_size], b[s:s + batch_size], p[s:s + batch_size]
        mutants = X[ni]
        rows = torch.arange(ni.numel(), device=X.device)
        mutants[rows, :, pi] = 0.0
        mutants[rows, bi, pi] = 1.0
        out[ni, bi, pi] = score(model, mutants, target=None if targets is None else targets[ni]) - ref[ni]
    return out
