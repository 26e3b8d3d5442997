"""The nine CNN architectures compared by Zeng et al. (2016), built by name.

Zeng, Edwards, Liu & Gifford, "Convolutional neural network architectures for
predicting DNA-protein binding", Bioinformatics 32(12):i121 (2016), took the
DeepBind model (Alipanahi et al. 2015) as ``1layer`` and changed one thing at a
time: more kernels, local instead of global max pooling, more convolutional
layers. Every model here reads one-hot DNA ``(N, 4, L)`` and returns one logit
per sequence, shape ``(N,)`` (apply a sigmoid for the probability of binding).

==================== ================================ ======================= ===============
name                 convolutional layers             pooling                 dense head
==================== ================================ ======================= ===============
1layer               16 x 24 bp                       global max              32, dropout 0.5
1layer_64motif       64 x 24 bp                       global max              32, dropout 0.5
1layer_128motif      128 x 24 bp                      global max              32, dropout 0.5
1layer_local_win9    16 x 24 bp                       max, window 9           32, dropout 0.5
1layer_local_win3    16 x 24 bp                       max, window 3           32, dropout 0.5
2layer               16 x 24 bp, 32 x 5               max 3, then global max  32, dropout 0.5
3layer               16 x 24 bp, 32 x 5, 32 x 3       max 3, max 3, global    32, dropout 0.5
2layer_local_win3    16 x 24 bp, 32 x 5               max 3, max 3            32, dropout 0.5
3layer_local_win3    16 x 24 bp, 32 x 5, 32 x 3       max 3, max 3, max 3     32, dropout 0.5
==================== ================================ ======================= ===============

The slides fix the first layer (DeepBind's 16 kernels of 24 bp), the number
of kernels of the ``motif`` variants and the pooling windows; the sizes of
layers 2 and 3 (32 kernels of 5 and 3 bp) are our choice. Convolutions are
unpadded ("valid"); local pooling uses non-overlapping windows (stride =
window), so a 101 bp input is 78 positions after the first layer and 26 after
pooling by 3. :func:`architecture_table` returns this table as a DataFrame.

Following the course's attribution rules (DESIGN.md), every ReLU, pool and
dropout is its own module, used once, and global max pooling is an
``nn.MaxPool1d`` over the whole remaining length. The first convolution is
``model.conv1``; the last one is ``model.last_conv``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from mlcourse.models.geometry import Field, Geometry

__all__ = ["ARCHITECTURES", "Spec", "SPECS", "ZengCNN", "build", "min_length", "receptive_field",
           "architecture_table"]


@dataclass(frozen=True)
class Spec:
    """One architecture: ``convs`` as (kernels, width) per layer, ``pools`` the max-pool
    window after each layer (``None`` = global max pooling; only the last may be global)."""

    convs: tuple[tuple[int, int], ...]
    pools: tuple[int | None, ...]
    hidden: int = 32
    dropout: float = 0.5


_FIRST = (16, 24)
SPECS: dict[str, Spec] = {
    "1layer": Spec((_FIRST,), (None,)),
    "1layer_64motif": Spec(((64, 24),), (None,)),
    "1layer_128motif": Spec(((128, 24),), (None,)),
    "1layer_local_win9": Spec((_FIRST,), (9,)),
    "1layer_local_win3": Spec((_FIRST,), (3,)),
    "2layer": Spec((_FIRST, (32, 5)), (3, None)),
    "3layer": Spec((_FIRST, (32, 5), (32, 3)), (3, 3, None)),
    "2layer_local_win3": Spec((_FIRST, (32, 5)), (3, 3)),
    "3layer_local_win3": Spec((_FIRST, (32, 5), (32, 3)), (3, 3, 3)),
}
ARCHITECTURES: tuple[str, ...] = tuple(SPECS)


def _lengths(spec: Spec, seq_len: int) -> list[tuple[int, int]]:
    """(length after conv, length after pool) for each layer of ``spec`` on ``seq_len`` bp."""
    out, length = [], seq_len
    for (_, width), pool in zip(spec.convs, spec.pools):
        conv_len = Geometry(width).output_length(length)
        length = 1 if pool is None else Geometry(pool, pool).output_length(conv_len)
        out.append((conv_len, length))
    return out


def receptive_field(name: str) -> int:
    """How many bp of input one unit of the last convolutional layer sees.

    Each convolution of width ``w`` widens the field by ``(w - 1) * jump``, each
    pool of window ``p`` by ``(p - 1) * jump``, and multiplies the jump (input
    bp between neighbouring units) by ``p``. ``1layer``: 24 bp; ``2layer``:
    24, pool 3 -> 26, conv 5 -> 26 + 4 * 3 = 38 bp; ``3layer``: 62 bp. Two motifs
    further apart than this cannot be seen together by one unit.
    """
    spec = _spec(name)
    field = Field()
    for i, ((_, width), pool) in enumerate(zip(spec.convs, spec.pools)):
        field = field.then(Geometry(width))
        if i < len(spec.convs) - 1:
            field = field.then(Geometry(pool, pool))
    return field.size


def min_length(name: str) -> int:
    """The shortest input (bp) that architecture ``name`` accepts."""
    spec = _spec(name)
    length = 1
    while any(c < 1 or p < 1 for c, p in _lengths(spec, length)):
        length += 1
    return length


def _spec(name: str) -> Spec:
    if not isinstance(name, str) or name not in SPECS:
        raise ValueError(
            f"unknown architecture {name!r}; valid names are: {', '.join(ARCHITECTURES)}"
        )
    return SPECS[name]


class ZengCNN(nn.Module):
    """A CNN from Zeng et al. (2016); build it with :func:`build`.

    Attributes
    ----------
    architecture : str
        Its name in :data:`ARCHITECTURES`.
    seq_len : int
        The input length it was built for (the dense layer's size depends on it).
    conv1 : nn.Conv1d
        The first convolution: its kernels are the motif detectors.
    """

    def __init__(self, architecture: str, seq_len: int = 101):
        super().__init__()
        spec = _spec(architecture)
        if isinstance(seq_len, bool) or not isinstance(seq_len, (int, np.integer)):
            raise ValueError(
                f"seq_len must be a whole number of bp (an int), got {seq_len!r} ({type(seq_len).__name__})"
            )
        seq_len = int(seq_len)
        if seq_len < min_length(architecture):
            raise ValueError(
                f"seq_len={seq_len!r} is too short for {architecture!r}: it needs at least "
                f"{min_length(architecture)} bp"
            )
        self.architecture, self.seq_len = architecture, seq_len
        channels = 4
        lengths = _lengths(spec, seq_len)
        for i, ((kernels, width), pool, (conv_len, _)) in enumerate(
            zip(spec.convs, spec.pools, lengths), start=1
        ):
            setattr(self, f"conv{i}", nn.Conv1d(channels, kernels, width))
            setattr(self, f"relu{i}", nn.ReLU())
            setattr(self, f"pool{i}", nn.MaxPool1d(conv_len if pool is None else pool))
            channels = kernels
        self.n_conv = len(spec.convs)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(channels * lengths[-1][1], spec.hidden)
        self.relu_fc = nn.ReLU()
        self.dropout = nn.Dropout(spec.dropout)
        self.out = nn.Linear(spec.hidden, 1)

    @property
    def last_conv(self) -> nn.Conv1d:
        """The last convolutional layer (for Grad-CAM and feature maps)."""
        return getattr(self, f"conv{self.n_conv}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[1] != 4 or x.shape[2] != self.seq_len:
            raise ValueError(
                f"{self.architecture} expects one-hot DNA of shape (N, 4, {self.seq_len}), "
                f"got {tuple(x.shape)}"
            )
        for i in range(1, self.n_conv + 1):
            x = getattr(self, f"conv{i}")(x)
            x = getattr(self, f"relu{i}")(x)
            x = getattr(self, f"pool{i}")(x)
        x = self.dropout(self.relu_fc(self.fc(self.flatten(x))))
        return self.out(x).squeeze(-1)


def build(name: str, seq_len: int = 101) -> ZengCNN:
    """Build architecture ``name`` (one of :data:`ARCHITECTURES`) for ``seq_len`` bp inputs.

    Examples
    --------
    >>> model = build("1layer_128motif")
    >>> model(torch.zeros(2, 4, 101)).shape
    torch.Size([2])

    Raises
    ------
    ValueError
        For an unknown name (the message lists the valid ones) or a sequence
        length too short for the architecture's convolutions and pools.
    """
    return ZengCNN(name, seq_len)


def architecture_table(seq_len: int = 101) -> pd.DataFrame:
    """The nine architectures as a table: layers, pooling, receptive field, parameters at ``seq_len``."""
    rows = []
    for name, spec in SPECS.items():
        model = build(name, seq_len)
        rows.append(
            {
                "architecture": name,
                "conv layers": len(spec.convs),
                "kernels x width": ", ".join(f"{k} x {w}" for k, w in spec.convs),
                "pooling": ", ".join("global max" if p is None else f"max {p}" for p in spec.pools),
                "dense": f"{spec.hidden}, dropout {spec.dropout}",
                "receptive field (bp)": receptive_field(name),
                "parameters": sum(p.numel() for p in model.parameters()),
            }
        )
    return pd.DataFrame(rows).set_index("architecture")
