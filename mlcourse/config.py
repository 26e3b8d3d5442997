"""Course-wide settings: seeding, device choice, FAST mode and the data cache.

Every notebook starts with ``device = mlcourse.setup(seed=0)``. Sizes that
should shrink under the tests (examples, epochs, sweeps) go through
:func:`scale`, so notebooks never branch on the mode themselves::

    n_train = mlcourse.scale(full=20_000, fast=2_000)

``MLCOURSE_FAST=1`` (set by the test suite) selects the ``fast`` values.

torch is imported inside the functions that need it: ``import mlcourse``
(the command line, the start of every findings kernel) then takes 0.1 s of
CPU rather than the 2 s that importing torch costs.
"""

from __future__ import annotations

import contextlib
import os
import random
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["setup", "scale", "is_fast", "cache_dir", "pick_device", "device_of", "eval_mode"]


def is_fast() -> bool:
    """True when ``MLCOURSE_FAST`` is set to a true value (``1``, ``true``, ``yes``)."""
    return os.environ.get("MLCOURSE_FAST", "").strip().lower() in {"1", "true", "yes", "on"}


def scale(*, full, fast):
    """Return ``fast`` in FAST mode and ``full`` otherwise.

    Examples
    --------
    >>> epochs = scale(full=20, fast=2)
    """
    return fast if is_fast() else full


def cache_dir() -> Path:
    """Where downloaded data and checkpoints live: ``$MLCOURSE_DATA`` or ``~/.cache/mlcourse``."""
    return Path(os.environ.get("MLCOURSE_DATA") or Path.home() / ".cache" / "mlcourse")


def pick_device() -> torch.device:
    """The best available device: CUDA, then Apple's MPS, then the CPU."""
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def device_of(model) -> torch.device:
    """The device a model computes on: that of its first parameter (or buffer); the CPU otherwise.

    Every method that runs a model moves its inputs here, so one rule decides
    where the work happens, and a plain function (no parameters) runs on the CPU.
    """
    import torch

    if isinstance(model, torch.nn.Module):
        for tensor in (*model.parameters(), *model.buffers()):
            return tensor.device
    return torch.device("cpu")


@contextlib.contextmanager
def eval_mode(model):
    """Run the block with ``model`` in eval mode (no dropout), then restore its training flag.

    Anything that is not an ``nn.Module`` (a plain scoring function) passes through unchanged,
    so black-box methods can use this for models and callables alike.
    """
    import torch

    if not isinstance(model, torch.nn.Module):
        yield model
        return
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and CUDA)."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup(seed: int = 0, *, verbose: bool = True) -> torch.device:
    """Seed everything, pick a device and say what was chosen.

    On the CPU the same seed gives the same numbers, run after run.

    Parameters
    ----------
    seed : int
        Seed for Python, NumPy and torch.
    verbose : bool
        Print one line: device, mode and cache directory.

    Returns
    -------
    torch.device
        The device to put models and tensors on.
    """
    seed_everything(seed)
    device = pick_device()
    if verbose:
        mode = "FAST (small sizes, for tests)" if is_fast() else "full"
        print(f"mlcourse: device={device.type}, mode={mode}, seed={seed}, cache={cache_dir()}")
    return device
