"""Execute notebooks and render them to HTML (``make run`` / ``mlcourse run``).

``make findings`` (``mlcourse run --findings``) runs lectures the same way, in
full mode, collects every :func:`mlcourse.check` they make, times each lecture
and writes the table ``build/findings.md`` (and ``build/findings.json``, which
the course overview reads for its runtimes).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import time
from datetime import datetime, timezone
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter
from tqdm.auto import tqdm

from mlcourse import findings
from mlcourse.files import atomic_write_text

__all__ = ["run_notebook", "run_notebooks", "run_findings", "findings_markdown"]


@contextlib.contextmanager
def _environment(**values):
    """Set environment variables (inherited by the kernel) for the block, then restore them."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def run_notebook(path: Path, out_dir: Path, fast: bool = False, timeout: int = 3600,
                 env: dict | None = None, executed: list | None = None) -> Path:
    """Run one notebook top to bottom in a fresh kernel and write ``out_dir/<name>.html``.

    ``fast`` sets ``MLCOURSE_FAST=1`` for the kernel; ``env`` adds further
    variables. Progress bars are switched off (``TQDM_DISABLE=1``): nobody
    watches them, and the saved HTML would show them stuck at "0%". The
    executed notebook is appended to ``executed`` when given (also when a cell
    fails). Returns the HTML path. Raises
    ``nbclient.exceptions.CellExecutionError`` if a cell fails.
    """
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    if executed is not None:
        executed.append(nb)
    with _environment(MLCOURSE_FAST="1" if fast else "0", TQDM_DISABLE="1", **(env or {})):
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    html, _ = HTMLExporter().from_notebook_node(nb)
    target = Path(out_dir) / (path.stem + ".html")
    atomic_write_text(target, html)
    return target


def output_findings(nb) -> list[findings.Finding]:
    """What a student sees in the executed notebook, as findings: rounded tables and no warnings.

    Counts the numbers with five or more decimals in displayed tables (HTML
    output with a ``<table>``) and the outputs that carry a Python warning.
    """
    long_numbers = warned = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and "Warning:" in output.get("text", ""):
                warned += 1
            table = output.get("data", {}).get("text/html", "")
            if "<table" in table:
                long_numbers += len(re.findall(r"\d\.\d{5,}", table))
    return [findings.judge("tables are rounded (numbers shown with 5+ decimals)", long_numbers, "==", 0),
            findings.judge("no warnings in the output (outputs with a warning)", warned, "==", 0)]


def _last_line(err: Exception) -> str:
    """``"RuntimeError: boom"``: the error a cell raised (nbclient keeps its name and message)."""
    if hasattr(err, "ename"):  # nbclient's CellExecutionError
        return f"{err.ename}: {err.evalue}"
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[-1] if text else ''}"


def run_notebooks(paths, out_dir: Path, fast: bool = False, timeout: int = 3600) -> list[Path]:
    """Run several notebooks; report each, and return the ones that failed."""
    failed = []
    for path in tqdm(list(paths), desc="notebooks", unit="nb"):
        try:
            target = run_notebook(path, out_dir, fast=fast, timeout=timeout)
            tqdm.write(f"ok      {path} -> {target}")
        except Exception as err:  # a failing lecture is reported, and the others still run
            tqdm.write(f"FAILED  {path}: {_last_line(err)}")
            failed.append(Path(path))
    return failed


def run_findings(paths, out_dir: Path, fast: bool = False, timeout: int = 3600) -> list[Path]:
    """Run lectures, collect their findings and runtimes, write ``findings.md`` and ``findings.json``.

    Each notebook runs with ``MLCOURSE_FINDINGS`` naming a fresh record file,
    so every :func:`mlcourse.check` is recorded and none stops the run. Lectures
    already in ``out_dir/findings.json`` from an earlier run and not run now
    are kept, so the table can be built up one lecture at a time.

    Returns
    -------
    list of Path
        The notebooks that failed: a cell raised, or (in full mode) a finding
        does not hold.
    """
    out_dir = Path(out_dir)
    records_dir = out_dir / "findings"
    records_dir.mkdir(parents=True, exist_ok=True)
    summary = findings.load_summary(out_dir / "findings.json")
    lectures = {entry["notebook"]: entry for entry in summary.get("lectures", [])}
    failed = []
    for path in list(paths):
        path = Path(path)
        record = records_dir / f"{path.stem}.jsonl"
        record.unlink(missing_ok=True)
        started, executed = time.perf_counter(), []
        try:
            run_notebook(path, out_dir, fast=fast, timeout=timeout,
                         env={findings.RECORD_ENV: str(record.resolve())}, executed=executed)
            status = "ok"
        except Exception as err:  # reported in the table; the other lectures still run
            status = _last_line(err)
        runtime = time.perf_counter() - started
        found = findings.read_records(record) + (output_findings(executed[0]) if status == "ok" else [])
        lost = [f for f in found if not f.holds]
        if status != "ok" or (lost and not fast):
            failed.append(path)
        lectures[path.stem] = {
            "notebook": path.stem, "runtime_s": round(runtime, 1), "status": status,
            "mode": "FAST" if fast else "full",
            "measured": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "findings": [f.__dict__ for f in found],
        }
        verdict = "FAILED " if path in failed else "ok     "
        print(f"{verdict} {path.stem}: {len(found) - len(lost)}/{len(found)} findings hold, "
              f"{runtime / 60:.1f} min{'' if status == 'ok' else ' - ' + status}", flush=True)
    summary = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, OMP_NUM_THREADS="
                   f"{os.environ.get('OMP_NUM_THREADS', 'unset')}",
        "lectures": [lectures[name] for name in sorted(lectures)],
    }
    atomic_write_text(out_dir / "findings.json", json.dumps(summary, indent=1) + "\n")
    atomic_write_text(out_dir / "findings.md", findings_markdown(summary))
    return failed


def findings_markdown(summary: dict) -> str:
    """The findings table (lecture, finding, value, expectation, holds, runtime) as Markdown."""
    lines = ["# Findings of the lectures", "",
             f"Measured on {summary.get('machine', 'an unknown machine')}; `make findings` reruns it.", "",
             "| lecture | finding | value | expectation | holds | runtime |",
             "|---|---|---|---|---|---|"]
    total = 0.0
    for entry in summary.get("lectures", []):
        total += entry["runtime_s"]
        runtime = f"{entry['runtime_s'] / 60:.1f} min ({entry['mode']})"
        rows = [findings.Finding.from_record(f) for f in entry["findings"]]
        if entry["status"] != "ok":
            lines.append(f"| {entry['notebook']} | the run failed: {entry['status']} | | | no | {runtime} |")
        if not rows and entry["status"] == "ok":
            lines.append(f"| {entry['notebook']} | (no findings checked) | | | | {runtime} |")
        for f in rows:
            cells = [entry["notebook"], f.name, findings.format_value(f.value), f.expectation,
                     "yes" if f.holds else "**no**", runtime]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
            runtime = ""
    lines += ["", f"Total runtime: {total / 60:.1f} min.", ""]
    return "\n".join(lines)
