"""Shared test set-up: FAST mode, a headless plotting backend, the real-data mirror."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("MLCOURSE_FAST", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def mirror() -> Path:
    """The real-data mirror (``MLCOURSE_MIRROR``); tests using it are skipped when it is unset."""
    path = os.environ.get("MLCOURSE_MIRROR")
    if not path:
        pytest.skip("MLCOURSE_MIRROR is not set: no real-data mirror on this machine")
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"MLCOURSE_MIRROR={path} is not a folder")
    return path
