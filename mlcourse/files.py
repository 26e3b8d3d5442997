"""Writing files safely: through a temporary file and a rename, so nothing is ever half-written.

A crash, a full disk or an error while writing leaves the old file (or no file)
in place, never a truncated one: the data goes to a temporary file in the same
folder, is flushed to disk (``fsync``), and only then renamed over the target
(``os.replace`` is atomic on one file system). Every writer gets its own
temporary name (``.NAME.tmp-PID-RANDOM``), so threads and processes that write
one path at the same time never write into each other's file: the target ends
up as one writer's complete file, whichever renamed last.

A process that is killed while writing cannot remove its temporary file; the
next write into that folder removes temporary files whose process is gone.

For read-modify-write updates (append a row to a table that other processes
also append to), hold :func:`locked` around the read and the atomic write.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path

__all__ = ["atomic_path", "atomic_write_text", "existing_file", "existing_folder", "locked", "remove_stale_temporaries"]

_TEMPORARY = re.compile(r"\..+\.tmp-(\d+)-[A-Za-z0-9_]+")


@contextlib.contextmanager
def atomic_path(path):
    """Yield a fresh temporary path beside ``path``; when the block succeeds, rename it to ``path``.

    The temporary file exists (empty) when the block starts; write it by name
    (``torch.save(state, tmp)``, ``tmp.write_text(...)``). If the block raises,
    the temporary file is removed and ``path`` is untouched.

    Raises
    ------
    ValueError
        When ``path`` is a folder, or its folder cannot be created (naming it and why).

    >>> with atomic_path("model.pt") as tmp:   # doctest: +SKIP
    ...     torch.save(state, tmp)
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder: give a file name inside it, e.g. {path / 'model.pt'}")
    tmp = _new_temporary(path)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync_folder(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and a rename."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def existing_file(path, name: str = "path") -> Path:
    """``path`` as a Path when it names an existing file; else ``ValueError`` ("no such file: ...")."""
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise ValueError(f"{name} must be the path of a file, got {path!r:.60}")
    if not Path(path).is_file():
        raise ValueError(f"no such file: {path}" + (" (it is a folder)" if Path(path).is_dir() else ""))
    return Path(path)


def existing_folder(folder, name: str = "root", hint: str = "") -> Path:
    """``folder`` as a Path when it names an existing folder; else ``ValueError`` naming ``name`` and ``hint``."""
    if not isinstance(folder, (str, os.PathLike)) or not str(folder):
        raise ValueError(f"{name} must be the path of a folder, got {folder!r:.60}{hint}")
    if not Path(folder).is_dir():
        raise ValueError(f"{name}={str(folder)!r} is not a folder{hint}")
    return Path(folder)


@contextlib.contextmanager
def locked(path):
    """Hold an exclusive lock on the file ``path`` (created if need be) while the block runs.

    Other threads and processes that lock the same path wait until the block
    ends (``flock`` on POSIX, ``msvcrt.locking`` on Windows). The lock is
    released when the process dies, so a killed process never blocks the others.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        if os.name == "nt":
            import msvcrt

            while True:
                try:
                    handle.seek(0)
                    msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)
                    break
                except OSError:  # LK_LOCK gives up after 10 s: keep waiting
                    continue
            try:
                yield
            finally:
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def remove_stale_temporaries(folder) -> list[Path]:
    """Remove the temporary files in ``folder`` left by processes that no longer run; returns them."""
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            match = _TEMPORARY.fullmatch(entry.name)
            if match and not _alive(int(match.group(1))):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def _new_temporary(path: Path) -> Path:
    """Create ``.NAME.tmp-PID-RANDOM`` beside ``path`` (and its folder, if need be)."""
    for attempt in range(3):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if attempt == 0:
                remove_stale_temporaries(path.parent)
            handle, name = tempfile.mkstemp(prefix=f".{path.name}.tmp-{os.getpid()}-", dir=path.parent)
            os.close(handle)
            return Path(name)
        except FileNotFoundError:  # another writer removed the empty folder meanwhile: make it again
            continue
        except OSError as err:
            raise ValueError(
                f"cannot write {path}: its folder {path.parent} cannot be created or written "
                f"({err.strerror or err})"
            ) from None
    raise ValueError(f"cannot write {path}: its folder {path.parent} keeps disappearing")


def _fsync(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX; Windows cannot open folders)."""
    if os.name != "nt":
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (on Windows, without psutil, assume it does: never remove)."""
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill would terminate it there
        try:
            import psutil
        except ImportError:
            return True
        return psutil.pid_exists(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True
