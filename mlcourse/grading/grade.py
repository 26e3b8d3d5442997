"""``mlcourse grade``: score lab submissions with no server, one per process.

For each submission:

1. find its source lab (``metadata.mlcourse.lab``, written by ``assign``, or
   ``NN_slug`` in the file name);
2. **check integrity**: every locked and test cell must equal the student
   version (same source and nbgrader metadata); a changed or deleted one is
   reported as ``tampered``;
3. **restore** the graded notebook: test cells come back from the source
   *with their hidden tests*, locked cells from the source; the student's
   solution cells (and any cells they added, which may hold an answer whose
   solution cell they deleted) are kept;
4. **run** it top to bottom in a fresh kernel with a per-cell timeout (see
   :mod:`.runner` for what happens on an error, a hang or a crash);
5. **score** each test cell: its points if it ran without an error, else 0.
   A question is the run of cells after the previous test cell up to its own,
   and its status names the first problem there: ``timeout``, ``crashed``,
   ``not implemented``, ``failed`` (an assertion) or ``error``.

Reports (JSON with every detail, CSV with one row per question) are written
atomically. Scoring is all-or-nothing per test cell, as in nbgrader.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import os
import re
import tempfile
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from time import monotonic

from mlcourse.files import atomic_write_text
from mlcourse.grading import markers
from mlcourse.grading.assign import lab_name, release_notebook
from mlcourse.grading.runner import Kernel

__all__ = ["grade_submission", "grade_many", "write_reports", "find_source", "CSV_FIELDS"]

CSV_FIELDS = ["submission", "lab", "grade_id", "points", "score", "status", "message", "tampered"]
_LAB_IN_NAME = re.compile(r"\d\d_[a-z0-9_]*[a-z0-9]")


def find_source(submission_nb, submission_path, source) -> Path:
    """The source lab of a submission: ``source`` itself if it is a file, else a lab in that folder.

    The lab's name comes from ``metadata.mlcourse.lab`` (set by ``assign``)
    or, failing that, from an ``NN_slug`` part of the file name.
    """
    source = Path(source)
    if source.is_file():
        return source
    if not source.is_dir():
        raise ValueError(f"source labs: {source} is neither a lab notebook nor a folder of labs")
    name = submission_nb.metadata.get("mlcourse", {}).get("lab")
    candidates = [name] if name else []
    candidates += [m.group(0) for m in _LAB_IN_NAME.finditer(Path(submission_path).stem)]
    for cand in candidates:
        if (source / f"{cand}.ipynb").is_file():
            return source / f"{cand}.ipynb"
    raise ValueError(
        f"cannot tell which lab {submission_path} is: no metadata.mlcourse.lab and no lab of {source} "
        f"named in the file name (tried {candidates or 'nothing'}); pass the lab file with --source"
    )


def _integrity(sub_cells: dict, released: dict) -> list[dict]:
    """Locked and test cells of the submission that differ from the student version."""
    problems = []
    for gid, (_, expected) in released.items():
        if markers.role(expected) == markers.SOLUTION:
            continue
        if gid not in sub_cells:
            problems.append({"grade_id": gid, "problem": "deleted"})
            continue
        cell = sub_cells[gid]
        if cell.cell_type != expected.cell_type or cell.source.strip() != expected.source.strip():
            problems.append({"grade_id": gid, "problem": "source changed"})
        elif cell.metadata.get("nbgrader") != expected.metadata.nbgrader:
            problems.append({"grade_id": gid, "problem": "nbgrader metadata changed"})
    return problems


def _restore(source, submission) -> tuple[list, dict[int, str]]:
    """The cells to run: the source's locked/test cells, the student's solution and added cells.

    Graded cells run in the source's order; a cell the student added runs
    right after the graded cell it followed in the submission. Returns the
    cells and, for each restored graded cell, its position -> grade id.
    """
    src = markers.lab_cells(source)
    sub_cells, extras, prev = {}, {}, None
    for cell in submission.cells:
        gid = markers.grade_id(cell)
        if gid in src and gid not in sub_cells:
            sub_cells[gid] = cell
            prev = gid
        else:
            extras.setdefault(prev, []).append(_as_student_cell(cell))
    cells, ids = list(extras.get(None, [])), {}
    for gid, (_, src_cell) in src.items():
        if markers.role(src_cell) != markers.SOLUTION:
            ids[len(cells)] = gid
            cells.append(_with_meta(src_cell, src_cell))
        elif gid in sub_cells:
            ids[len(cells)] = gid
            cells.append(_with_meta(sub_cells[gid], src_cell))
        cells.extend(extras.get(gid, []))
    return cells, ids


def _with_meta(cell, src_cell):
    out = copy.deepcopy(cell)
    out.metadata["nbgrader"] = copy.deepcopy(src_cell.metadata.nbgrader)
    if out.cell_type == "code":
        out.outputs, out.execution_count = [], None
    return out


def _as_student_cell(cell):
    """A cell the student added (or one with a stray/duplicate grade id): it runs, ungraded."""
    out = copy.deepcopy(cell)
    out.metadata.pop("nbgrader", None)
    if out.cell_type == "code":
        out.outputs, out.execution_count = [], None
    return out


def _status(test_run, span_runs) -> str:
    if test_run.status == "ok":
        return "passed"
    for wanted in ("timeout", "crashed"):
        if any(r.status == wanted for r in span_runs):
            return wanted
    if any(r.ename == "NotImplementedError" for r in span_runs):
        return "not implemented"
    return "failed" if test_run.ename == "AssertionError" else "error"


def _message(test_run, span_runs) -> str:
    if test_run.status == "ok":
        return ""
    first = next(r for r in span_runs if r.status != "ok")
    text = f"{first.ename}: {first.evalue}" if first.evalue else first.ename
    if first is not test_run:
        text = f"cell {first.index}: {text}; test: {test_run.ename}: {test_run.evalue}"
    return text[:500]


def grade_submission(submission, source, *, timeout: float = 60.0, threads: int = 1) -> dict:
    """Grade one submitted lab notebook and return its report (a JSON-ready dict).

    Parameters
    ----------
    submission : path
        The student's notebook.
    source : path
        The source lab (with solutions and hidden tests), or a folder of labs.
    timeout : float
        Seconds allowed per cell (see :mod:`.runner` for what a timeout costs).
    threads : int
        Threads for the kernel's numerical libraries (``OMP_NUM_THREADS``,
        ``MKL_NUM_THREADS``). One is the default: the labs' models are small,
        and on a busy machine (or with parallel graders) more threads spin
        against each other: backward selection in lab 2 ran 25x slower with
        2 threads than with 1 on a loaded 2-core machine.

    Returns
    -------
    dict
        ``score``, ``max_score``, ``questions`` (grade_id, points, score,
        status, message, tampered), ``tampered`` (grade_id, problem), ``cells``
        (one entry per executed code cell), ``kernel_restarts``, ``seconds``
        and provenance (``submission``, ``sha256``, ``lab``, ``source``).

    Raises
    ------
    ValueError
        If the submission or its source cannot be read, or the source breaks
        the lab conventions.
    """
    start = monotonic()
    submission = Path(submission)
    sub = markers.read(submission)
    source_path = find_source(sub, submission, source)
    src = markers.read(source_path)
    name = lab_name(source_path)
    released = markers.lab_cells(release_notebook(src, name))
    sub_cells = {}
    for cell in sub.cells:
        sub_cells.setdefault(markers.grade_id(cell), cell)
    tampered = _integrity(sub_cells, released)

    cells, ids = _restore(src, sub)
    graded = copy.deepcopy(src)
    graded.cells = cells
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    runs = {}
    with tempfile.TemporaryDirectory(prefix="mlcourse-grade-") as cwd, \
            Kernel(graded, timeout=timeout, cwd=cwd, env=env) as kernel:
        for i, cell in enumerate(cells):
            if cell.cell_type == "code" and cell.source.strip():
                runs[i] = kernel.run(i)
        restarts = kernel.restarts

    questions, span, changed = [], [], {t["grade_id"] for t in tampered}
    for i in sorted(runs):
        span.append(runs[i])
        gid = ids.get(i)
        if gid is None or markers.role(cells[i]) != markers.TEST:
            continue
        pts = markers.points(cells[i])
        questions.append({
            "grade_id": gid, "points": pts, "score": pts if runs[i].status == "ok" else 0.0,
            "status": _status(runs[i], span), "message": _message(runs[i], span),
            "tampered": gid in changed, "seconds": round(sum(r.seconds for r in span), 3),
        })
        span = []
    cell_rows = [{**runs[i].as_dict(), "grade_id": ids.get(i),
                  "role": markers.role(cells[i]) if i in ids else "added"} for i in sorted(runs)]
    return {
        "submission": str(submission),
        "sha256": hashlib.sha256(submission.read_bytes()).hexdigest(),
        "lab": name,
        "source": str(source_path),
        "score": sum(q["score"] for q in questions),
        "max_score": sum(q["points"] for q in questions),
        "questions": questions,
        "tampered": tampered,
        "cells": cell_rows,
        "kernel_restarts": restarts,
        "timeout": timeout,
        "seconds": round(monotonic() - start, 3),
        "graded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def csv_rows(report: dict) -> list[dict]:
    """One CSV row per question of a report (``CSV_FIELDS``)."""
    return [{"submission": report["submission"], "lab": report["lab"],
             **{k: q[k] for k in CSV_FIELDS[2:]}} for q in report["questions"]]


def _csv_text(rows: list[dict], fields: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_reports(report: dict, out_dir, stem: str) -> tuple[Path, Path]:
    """Write ``out_dir/stem.json`` and ``out_dir/stem.csv`` atomically; return both paths."""
    out_dir = Path(out_dir)
    json_path, csv_path = out_dir / f"{stem}.json", out_dir / f"{stem}.csv"
    atomic_write_text(json_path, json.dumps(report, indent=1) + "\n")
    atomic_write_text(csv_path, _csv_text(csv_rows(report), CSV_FIELDS))
    return json_path, csv_path


def _grade_one(args) -> dict:
    path, source, timeout, threads = args
    try:
        return grade_submission(path, source, timeout=timeout, threads=threads)
    except ValueError as err:  # one unreadable submission must not stop the batch
        return {"submission": str(path), "error": str(err)}


def submissions_in(paths) -> list[Path]:
    """Notebooks named by ``paths``: files as given, folders searched recursively (checkpoints skipped)."""
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
        elif path.is_file():
            found.append(path)
        else:
            raise ValueError(f"submission {path} does not exist")
    if not found:
        raise ValueError(f"no notebooks found in {', '.join(map(str, paths))}")
    return found


def report_stems(files: list[Path]) -> list[str]:
    """File-name-safe, unique names for the submissions' reports: their paths below a common folder.

    ``subs/alice/01_lab.ipynb`` and ``subs/bob/01_lab.ipynb`` become
    ``alice__01_lab`` and ``bob__01_lab``; a single file keeps its stem.
    """
    paths = [Path(f).resolve() for f in files]
    root = Path(os.path.commonpath([p.parent for p in paths]))
    return [re.sub(r"[^A-Za-z0-9_.-]+", "_", "__".join(p.relative_to(root).with_suffix("").parts))
            for p in paths]


def grade_many(paths, source, out_dir, *, timeout: float = 60.0, jobs: int | None = None,
               threads: int = 1) -> list[dict]:
    """Grade many submissions in parallel processes (one kernel each) and write every report.

    Writes ``out_dir/<name>.json`` and ``.csv`` per submission, plus
    ``grades.csv`` (every question of every submission) and ``summary.csv``
    (one line per submission: score, max_score, tampered cells, error).
    A submission that cannot be read is reported with its error; the others
    are still graded.

    Parameters
    ----------
    paths : list of path
        Notebooks and/or folders of notebooks.
    source : path
        A source lab, or the folder of source labs.
    out_dir : path
        Where the reports go.
    timeout : float
        Seconds per cell.
    jobs : int, optional
        Parallel graders (default: the number of CPU cores).
    threads : int
        Threads per kernel (see :func:`grade_submission`).

    Returns
    -------
    list of dict
        The reports, in the order of the submissions.
    """
    files = submissions_in(paths)
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(files)))
    work = [(f, source, timeout, threads) for f in files]
    if jobs == 1:
        reports = [_grade_one(w) for w in work]
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            reports = list(pool.map(_grade_one, work))
    rows, summary = [], []
    for path, stem, report in zip(files, report_stems(files), reports):
        if "error" not in report:
            write_reports(report, out_dir, stem)
            rows += csv_rows(report)
        summary.append({
            "submission": str(path), "lab": report.get("lab", ""),
            "score": report.get("score", ""), "max_score": report.get("max_score", ""),
            "tampered": " ".join(t["grade_id"] for t in report.get("tampered", [])),
            "error": report.get("error", ""),
        })
    atomic_write_text(Path(out_dir) / "grades.csv", _csv_text(rows, CSV_FIELDS))
    atomic_write_text(Path(out_dir) / "summary.csv", _csv_text(
        summary, ["submission", "lab", "score", "max_score", "tampered", "error"]))
    return reports
