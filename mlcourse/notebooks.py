"""Execute notebooks and render them to HTML (``make run`` / ``mlcourse run``).

An executed notebook records how it was run in ``metadata["mlcourse"]``: the mode
(``"full"`` or ``"FAST"``), the machine, the start time (UTC) and the seconds it took;
the course website (:mod:`mlcourse.site`) prints this on each lecture page.
"""

from __future__ import annotations

import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter
from tqdm.auto import tqdm

from mlcourse.files import atomic_write_text

__all__ = ["execute_notebook", "machine", "run_notebook", "run_notebooks"]


def _cpu_model() -> str:
    """The processor's name from ``/proc/cpuinfo`` (Linux), else what :mod:`platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    """The machine in one line: OS, processor, cores, threads, Python and torch versions, device."""
    import torch

    threads = os.environ.get("OMP_NUM_THREADS")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return (f"{platform.system()}, {_cpu_model()}, {os.cpu_count()} CPU cores"
            f"{f', OMP_NUM_THREADS={threads}' if threads else ''}, Python {platform.python_version()}, "
            f"torch {torch.__version__} ({device})")


def execute_notebook(path: Path, fast: bool = False, timeout: int = 3600) -> nbformat.NotebookNode:
    """Run the notebook at ``path`` top to bottom in a fresh kernel and return it, executed.

    ``fast`` sets ``MLCOURSE_FAST=1`` for the kernel (and figures are always
    rendered inline: the kernel does not inherit ``MPLBACKEND``). The run is recorded in
    ``metadata["mlcourse"]``: ``mode``, ``machine``, ``executed`` (UTC, ISO 8601)
    and ``seconds``. Raises ``nbclient.exceptions.CellExecutionError`` if a cell fails.
    """
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    # The kernel's environment: the mode, and no MPLBACKEND (Agg would swallow every figure).
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env["MLCOURSE_FAST"] = "1" if fast else "0"
    started, clock = datetime.now(timezone.utc), time.monotonic()
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute(env=env)
    nb.metadata["mlcourse"] = {
        "mode": "FAST" if fast else "full",
        "machine": machine(),
        "executed": started.isoformat(timespec="seconds"),
        "seconds": round(time.monotonic() - clock, 1),
    }
    return nb


def run_notebook(path: Path, out_dir: Path, fast: bool = False, timeout: int = 3600) -> Path:
    """Run one notebook top to bottom in a fresh kernel and write ``out_dir/<name>.html``.

    The executed notebook is written beside it (``out_dir/<name>.ipynb``, which
    ``make site`` publishes). ``fast`` sets ``MLCOURSE_FAST=1`` for the kernel.
    Returns the HTML path. Raises ``nbclient.exceptions.CellExecutionError`` if a
    cell fails; then nothing is written.
    """
    path = Path(path)
    nb = execute_notebook(path, fast=fast, timeout=timeout)
    html, _ = HTMLExporter().from_notebook_node(nb)
    target = Path(out_dir) / (path.stem + ".html")
    atomic_write_text(target.with_suffix(".ipynb"), nbformat.writes(nb))
    atomic_write_text(target, html)
    return target


def run_notebooks(paths, out_dir: Path, fast: bool = False, timeout: int = 3600) -> list[Path]:
    """Run several notebooks; report each, and return the ones that failed."""
    failed = []
    for path in tqdm(list(paths), desc="notebooks", unit="nb"):
        try:
            target = run_notebook(path, out_dir, fast=fast, timeout=timeout)
            tqdm.write(f"ok      {path} -> {target}")
        except Exception as err:  # a failing lecture is reported, and the others still run
            tqdm.write(f"FAILED  {path}: {type(err).__name__}: {str(err).splitlines()[-1] if str(err) else ''}")
            failed.append(Path(path))
    return failed
