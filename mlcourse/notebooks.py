"""Execute notebooks and render them to HTML (``make run`` / ``mlcourse run``).

An executed notebook records how it was run in ``metadata["mlcourse"]``: the mode
(``"full"`` or ``"FAST"``), the machine, the start time (UTC) and the seconds it took;
the course website (:mod:`mlcourse.site`) prints this on each lecture page.

``make findings`` (``mlcourse run --findings``) runs lectures the same way, in
full mode, collects every :func:`mlcourse.check` they make, checks every figure
they show for overlapping text (:func:`mlcourse.findings.watch_figures`), times each lecture
and writes the table ``build/findings.md`` (and ``build/findings.json``, which
the course overview reads for its runtimes).
"""

from __future__ import annotations

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

__all__ = ["execute_notebook", "machine", "run_notebook", "run_notebooks", "run_findings", "output_findings",
           "figure_finding", "findings_markdown"]


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


def execute_notebook(path: Path, fast: bool = False, timeout: int = 3600,
                     env: dict | None = None) -> nbformat.NotebookNode:
    """Run the notebook at ``path`` top to bottom in a fresh kernel and return it, executed.

    ``fast`` sets ``MLCOURSE_FAST=1`` for the kernel (and figures are always
    rendered inline: the kernel does not inherit ``MPLBACKEND``); ``env`` adds
    further variables. Progress bars are switched off (``TQDM_DISABLE=1``):
    nobody watches them, and the saved notebook would show them stuck at "0%".
    The run is recorded in ``metadata["mlcourse"]``: ``mode``, ``machine``,
    ``executed`` (UTC, ISO 8601) and ``seconds``. Raises
    ``nbclient.exceptions.CellExecutionError`` if a cell fails.
    """
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    # The kernel's environment: the mode, and no MPLBACKEND (Agg would swallow every figure).
    env = {**{k: v for k, v in os.environ.items() if k != "MPLBACKEND"}, **(env or {})}
    env["MLCOURSE_FAST"] = "1" if fast else "0"
    env["TQDM_DISABLE"] = "1"
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


def run_notebook(path: Path, out_dir: Path, fast: bool = False, timeout: int = 3600,
                 env: dict | None = None) -> nbformat.NotebookNode:
    """Run one notebook top to bottom in a fresh kernel and write ``out_dir/<name>.html``.

    The executed notebook is written beside it (``out_dir/<name>.ipynb``, which
    ``make site`` publishes) and returned. ``fast`` and ``env`` are as in
    :func:`execute_notebook`. Raises ``nbclient.exceptions.CellExecutionError``
    if a cell fails; then nothing is written.
    """
    path = Path(path)
    nb = execute_notebook(path, fast=fast, timeout=timeout, env=env)
    html, _ = HTMLExporter().from_notebook_node(nb)
    target = Path(out_dir) / (path.stem + ".html")
    atomic_write_text(target.with_suffix(".ipynb"), nbformat.writes(nb))
    atomic_write_text(target, html)
    return nb


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


_WATCH_FIGURES = (
    "# Run at the start of every kernel of a findings run (PYTHONSTARTUP): check each figure the notebook\n"
    "# shows for overlapping text. One expression, so that the notebook's namespace gains no names.\n"
    "__import__('mlcourse.findings', fromlist=['watch_figures']).watch_figures()\n"
)
"""The start-up script of each kernel of a findings run (written next to the records, not a package module:
importing it anywhere else would start a watch with no record file)."""


def figure_finding(record) -> findings.Finding:
    """The figures of a findings run with overlapping text, as a finding (there should be none).

    ``record`` is the file :func:`mlcourse.findings.watch_figures` wrote while
    the notebook ran; each figure with overlapping text is printed with the
    texts that collide, so that it can be found and fixed.
    """
    unreadable = [r for r in findings.read_figure_records(record) if r["overlaps"]]
    for r in unreadable:
        pairs = "; ".join(f"{a!r} over {b!r}" for a, b in r["overlaps"][:5])
        more = f" (and {len(r['overlaps']) - 5} more)" if len(r["overlaps"]) > 5 else ""
        print(f"  overlapping text in figure {r['figure']!r}: {pairs}{more}", flush=True)
    return findings.judge("figures have no overlapping text (figures with overlapping labels)",
                          len(unreadable), "==", 0)


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
            run_notebook(path, out_dir, fast=fast, timeout=timeout)
            tqdm.write(f"ok      {path} -> {Path(out_dir) / (Path(path).stem + '.html')}")
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
    startup = records_dir / "watch_figures.py"
    atomic_write_text(startup, _WATCH_FIGURES)
    failed = []
    for path in list(paths):
        path = Path(path)
        record = records_dir / f"{path.stem}.jsonl"
        figures = records_dir / f"{path.stem}.figures.jsonl"
        record.unlink(missing_ok=True)
        figures.unlink(missing_ok=True)
        started, seen = time.perf_counter(), []
        try:
            nb = run_notebook(path, out_dir, fast=fast, timeout=timeout,
                              env={findings.RECORD_ENV: str(record.resolve()),
                                   findings.FIGURES_ENV: str(figures.resolve()), "PYTHONSTARTUP": str(startup.resolve())})
            status, seen = "ok", output_findings(nb) + [figure_finding(figures)]
        except Exception as err:  # reported in the table; the other lectures still run
            status = _last_line(err)
        runtime = time.perf_counter() - started
        found = findings.read_records(record) + seen
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
        "machine": machine(),
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
