"""What a *feature* is: the groups of input entries that perturbation methods switch together.

SIS (Carter et al. 2019) masks features, LIME and KernelSHAP (Ribeiro et al.
2016; Lundberg & Lee 2017) switch them off. A feature is given by an integer
label per input entry; entries with one label form one feature:

* a DNA position -- its four one-hot rows together (:func:`position_mask`);
* a token of a text (:func:`token_mask`);
* a square patch of an image, a simple kind of superpixel, shared by all
  colour channels (:func:`patch_groups` for one image, :func:`patch_mask` for a batch).
"""

from __future__ import annotations

import math

import torch

__all__ = ["position_mask", "token_mask", "patch_groups", "patch_mask", "default_mask"]


def position_mask(X: torch.Tensor) -> torch.Tensor:
    """One feature per DNA position: ``(N, 4, L)`` integer mask, entry ``[n, b, l] = l``."""
    if X.ndim != 3 or X.shape[1] != 4:
        raise ValueError(f"position_mask expects one-hot DNA (N, 4, L), got shape {tuple(X.shape)}")
    return torch.arange(X.shape[2]).expand(X.shape).clone()


def token_mask(ids: torch.Tensor) -> torch.Tensor:
    """One feature per token: ``(N, T)`` integer mask, entry ``[n, t] = t``."""
    if ids.ndim != 2:
        raise ValueError(f"token_mask expects token ids (N, T), got shape {tuple(ids.shape)}")
    return torch.arange(ids.shape[1]).expand(ids.shape).clone()


def patch_groups(height: int, width: int, patch: int) -> torch.Tensor:
    """Labels ``(1, height, width)`` that make square ``patch x patch`` blocks single features.

    Blocks are numbered row by row; the last row/column of blocks may be narrower.
    """
    if not all(isinstance(v, int) and v > 0 for v in (height, width, patch)):
        raise ValueError(f"height, width and patch must be positive integers, got {height}, {width}, {patch}")
    per_row = math.ceil(width / patch)
    rows = torch.arange(height) // patch
    cols = torch.arange(width) // patch
    return (rows[:, None] * per_row + cols[None, :]).unsqueeze(0)


def patch_mask(images: torch.Tensor, patch: int = 4) -> torch.Tensor:
    """:func:`patch_groups` for a batch ``(N, C, H, W)``: every image and channel shares the patches."""
    if images.ndim != 4:
        raise ValueError(f"patch_mask expects images (N, C, H, W), got shape {tuple(images.shape)}")
    if not isinstance(patch, int) or patch < 1:
        raise ValueError(f"patch must be a positive integer, got {patch!r}")
    return patch_groups(images.shape[2], images.shape[3], patch).expand(images.shape).clone()


def default_mask(X: torch.Tensor) -> torch.Tensor:
    """The natural features of ``X``: DNA positions, tokens, or 4 x 4 patches."""
    if X.ndim == 3 and X.shape[1] == 4 and X.is_floating_point():
        return position_mask(X)
    if X.ndim == 2 and not X.is_floating_point():
        return token_mask(X)
    if X.ndim == 4:
        return patch_mask(X)
    raise ValueError(f"no default feature mask for inputs of shape {tuple(X.shape)} and dtype "
                     f"{X.dtype}: expected DNA (N, 4, L) floats, token ids (N, T) or images "
                     "(N, C, H, W); pass feature_mask=")
