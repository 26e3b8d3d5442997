"""Where a convolution or pooling layer looks: kernel, stride, padding and dilation along a sequence.

Output position ``j`` of a 1D convolution or pool with kernel ``k``, stride
``s``, padding ``p`` and dilation ``d`` reads the input positions
``j s - p + d t`` for ``t = 0 .. k-1``, so an input of length ``L`` gives
``floor((L + 2p - d (k - 1) - 1) / s) + 1`` outputs (the formula in PyTorch's
``Conv1d`` documentation). Stacking layers composes these windows: the
*receptive field* of a unit (:class:`Field`). The Zeng et al. architectures,
Grad-CAM's map-to-sequence alignment and the local-window ISM engine all use
this one description.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

__all__ = ["Geometry", "Field", "geometry"]


@dataclass(frozen=True)
class Geometry:
    """The window of one 1D convolution or pooling layer."""

    kernel: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1

    @property
    def reach(self) -> int:
        """Input positions one output spans beyond its first: ``d (k - 1)``."""
        return self.dilation * (self.kernel - 1)

    def output_length(self, length: int) -> int:
        """Outputs for an input of ``length`` positions."""
        return (length + 2 * self.padding - self.reach - 1) // self.stride + 1


@dataclass(frozen=True)
class Field:
    """Output ``j`` of a stack of layers sees the input positions ``[start + j jump, start + j jump + size)``."""

    start: int = 0
    jump: int = 1
    size: int = 1

    def then(self, layer: Geometry) -> Field:
        """The field after one more layer on top: ``a' = a - p s``, ``s' = s t``, ``r' = r + d (k - 1) s``."""
        return Field(self.start - layer.padding * self.jump, self.jump * layer.stride,
                     self.size + layer.reach * self.jump)


def _first(value) -> int:
    return value[0] if isinstance(value, (tuple, list)) else value


def geometry(module: nn.Module) -> Geometry | None:
    """The :class:`Geometry` of a ``Conv1d``, ``MaxPool1d`` or ``AvgPool1d``; None for other layers."""
    if isinstance(module, nn.Conv1d):
        k, s, d = module.kernel_size[0], module.stride[0], module.dilation[0]
        if module.padding == "valid":
            p = 0
        elif module.padding == "same":
            p = d * (k - 1) // 2
        else:
            p = module.padding[0]
        return Geometry(k, s, p, d)
    if isinstance(module, (nn.MaxPool1d, nn.AvgPool1d)):
        k = _first(module.kernel_size)
        s = _first(module.stride) if module.stride is not None else k
        d = _first(module.dilation) if isinstance(module, nn.MaxPool1d) else 1
        return Geometry(k, s, _first(module.padding), d)
    return None
