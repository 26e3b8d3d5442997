"""Writing files safely: through a temporary file and a rename, so nothing is ever half-written.

A crash, a full disk or an error while writing leaves the old file (or no file)
in place, never a truncated one: the data goes to a temporary file in the same
folder, and only a complete file is renamed over the target (``os.replace`` is
atomic on one file system).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_text"]


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; when the block succeeds, rename it to ``path``.

    If the block raises, the temporary file is removed and ``path`` is untouched.

    >>> with atomic_path("model.pt") as tmp:   # doctest: +SKIP
    ...     torch.save(state, tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and a rename."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
