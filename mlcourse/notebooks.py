"""Execute notebooks and render them to HTML (``make run`` / ``mlcourse run``)."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter
from tqdm.auto import tqdm

from mlcourse.files import atomic_write_text

__all__ = ["run_notebook", "run_notebooks"]


def run_notebook(path: Path, out_dir: Path, fast: bool = False, timeout: int = 3600) -> Path:
    """Run one notebook top to bottom in a fresh kernel and write ``out_dir/<name>.html``.

    ``fast`` sets ``MLCOURSE_FAST=1`` for the kernel. Returns the HTML path.
    Raises ``nbclient.exceptions.CellExecutionError`` if a cell fails.
    """
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    env_fast = os.environ.get("MLCOURSE_FAST")
    os.environ["MLCOURSE_FAST"] = "1" if fast else "0"
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        if env_fast is None:
            os.environ.pop("MLCOURSE_FAST", None)
        else:
            os.environ["MLCOURSE_FAST"] = env_fast
    html, _ = HTMLExporter().from_notebook_node(nb)
    target = Path(out_dir) / (path.stem + ".html")
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
