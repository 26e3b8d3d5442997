"""Grading a class: student ids, parallel grading, and tables that a regrade never wipes.

Layout of the reports folder (``--out``)::

    grades.csv            one row per (student, lab, question)    merged by (student, lab)
    summary.csv           one row per (student, lab)              merged by (student, lab)
    lms.csv               one row per student, one column per lab: an LMS gradebook import
    reports/<key>.json    everything about one graded submission
    feedback/<key>.html   what the student reads (also <key>.ipynb: their notebook with feedback)
    .reference/           the source solutions' check values, cached per source lab

``<key>`` is ``<student>--<lab>`` with every character outside
``A-Za-z0-9._-`` written as ``~XX`` (its UTF-8 bytes in hex), so different
students never share a file (``a b`` -> ``a~20b``, ``a_b`` -> ``a_b``).

A **student id** is the name of the folder holding the notebook
(``subs/alice/01_lab.ipynb`` -> ``alice``), the layout of nbgrader's
``submitted/<student>/`` and of Canvas/Gradescope bulk downloads once
unzipped into one folder per student -- whether that folder, a folder above
it or the notebook itself is named on the command line, so a regrade of one
student finds the same id. (Two notebooks of one lab in one folder are two
submissions of one student: the second is NOT GRADED, with that reason.)

Merging: a submission graded in this run replaces its (student, lab) rows;
every other row is kept. A submission that could not be graded (NOT GRADED)
replaces nothing, so a run with a wrong ``--source`` leaves the table as it
was.
"""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from mlcourse.files import atomic_write_text
from mlcourse.grading import markers
from mlcourse.grading.feedback import feedback_html, feedback_notebook
from mlcourse.grading.grade import grade_submission, lab_id_of, references, source_labs
from mlcourse.grading.sandbox import DEFAULT_LIMITS, Limits

__all__ = ["grade_many", "student_ids", "report_key", "submissions_in", "GRADE_FIELDS", "SUMMARY_FIELDS"]

GRADE_FIELDS = ["student", "lab", "grade_id", "points", "score", "status", "message", "tampered", "submission"]
SUMMARY_FIELDS = ["student", "lab", "score", "max_score", "status", "flags", "submission", "graded_at"]


def report_key(student: str, lab: str) -> str:
    """A file name for (student, lab), different for different students (see the module docstring)."""
    def safe(text: str) -> str:
        return "".join(ch if ch.isascii() and (ch.isalnum() or ch in "._-") else
                       "".join(f"~{b:02X}" for b in ch.encode()) for ch in text)
    return f"{safe(student)}--{safe(lab)}"


def submissions_in(paths) -> list[tuple[Path, str]]:
    """(notebook, student id) for each notebook named by ``paths`` (folders searched recursively)."""
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            for nb in sorted(p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts):
                found.append((nb, nb.resolve().parent.name))
        elif path.is_file():
            found.append((path, path.resolve().parent.name))
        else:
            raise ValueError(f"submission {path} does not exist")
    if not found:
        raise ValueError(f"no notebooks found in {', '.join(map(str, paths))}")
    return found


def student_ids(paths) -> list[str]:
    """The student id of each notebook named by ``paths``."""
    return [student for _, student in submissions_in(paths)]


def _csv_text(rows: list[dict], fields: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _merge(path: Path, new_rows: list[dict], replaced: set, fields: list[str]) -> list[dict]:
    """Rows of ``path`` whose (student, lab) is not in ``replaced``, then ``new_rows``; written atomically."""
    kept = [r for r in _read_rows(path) if (r.get("student"), r.get("lab")) not in replaced]
    rows = sorted(kept + new_rows, key=lambda r: (r["student"], r["lab"]))
    atomic_write_text(path, _csv_text(rows, fields))
    return rows


def lms_table(summary: list[dict]) -> tuple[list[str], list[dict]]:
    """One row per student, one column per lab (its score), plus a 'Points Possible' row first.

    Columns: ``Student`` (the id), ``SIS Login ID`` (the id again), then
    each lab id. Canvas imports it (Grades -> Import): it matches students by
    SIS Login ID and makes one assignment per unknown column; Gradescope's
    "Import grades" matches on a column you choose (map ``SIS Login ID`` to
    the student's SID or email).
    """
    labs = sorted({r["lab"] for r in summary})
    students: dict[str, dict] = {}
    possible = {"Student": "Points Possible", "SIS Login ID": ""}
    for r in summary:
        row = students.setdefault(r["student"], {"Student": r["student"], "SIS Login ID": r["student"]})
        row[r["lab"]] = r["score"]
        possible[r["lab"]] = r["max_score"]
    return ["Student", "SIS Login ID", *labs], [possible, *(students[s] for s in sorted(students))]


def _grade_one(args) -> dict:
    path, source, reference, kwargs = args
    try:
        return grade_submission(path, source, reference=reference, **kwargs)
    except ValueError as err:  # one bad submission must not stop the batch
        return {"submission": str(path), "error": str(err)}


def _reference_one(args):
    path, kwargs = args
    try:
        return references(path, **kwargs)
    except ValueError as err:
        return {"error": str(err)}


def _pool_map(fn, work, jobs):
    if jobs == 1 or len(work) <= 1:
        return [fn(w) for w in work]
    # spawn, not fork: a forked copy of a process that has run a kernel inherits the locks of
    # jupyter_client's event-loop thread and can hang forever
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(jobs, len(work)), mp_context=context) as pool:
        return list(pool.map(fn, work))


def grade_many(paths, source, out_dir, *, timeout: float = 60.0, jobs: int | None = None, threads: int = 1,
               sandbox: Limits | None = DEFAULT_LIMITS) -> list[dict]:
    """Grade many submissions in parallel processes and write every report (see the module docstring).

    The source labs' references are computed first (once per lab, cached in
    ``out_dir/.reference``), then the submissions, ``jobs`` at a time. A
    submission that cannot be graded is reported (``error``, with the reason)
    and replaces no row of the tables.

    Returns
    -------
    list of dict
        The reports, in the order of the submissions, each with ``student`` and ``key``.
    """
    out_dir = Path(out_dir)
    found = submissions_in(paths)
    labs = source_labs(source)
    jobs = max(1, jobs or os.cpu_count() or 1)
    kwargs = {"timeout": timeout, "threads": threads, "sandbox": sandbox}
    plan, errors = [], {}
    for k, (path, _) in enumerate(found):
        try:
            plan.append((k, labs[lab_id_of(markers.read(path), path, labs)[0]]))
        except ValueError as err:
            errors[k] = str(err)
    needed = sorted({p for _, p in plan})
    refs = dict(zip(needed, _pool_map(_reference_one, [(p, {**kwargs, "cache_dir": out_dir / ".reference"})
                                                       for p in needed], jobs)))
    work, slots = [], []
    for k, lab_path in plan:
        if "error" in refs[lab_path]:
            errors[k] = f"the source lab {lab_path.name} cannot be graded: {refs[lab_path]['error']}"
            continue
        work.append((found[k][0], lab_path, refs[lab_path], kwargs))
        slots.append(k)
    graded = dict(zip(slots, _pool_map(_grade_one, work, jobs)))
    reports, seen = [], {}
    for k, (path, student) in enumerate(found):
        report = graded.get(k) or {"submission": str(path), "error": errors.get(k, "not graded")}
        report["student"] = student
        if "error" not in report:
            pair = (student, report["lab"])
            if pair in seen:
                report = {"submission": str(path), "student": student,
                          "error": f"a second submission of {report['lab']} by {student} (first: {seen[pair]})"}
            else:
                seen[pair] = str(path)
                report["key"] = report_key(student, report["lab"])
        reports.append(report)
    _write(out_dir, reports)
    return reports


def _write(out_dir: Path, reports: list[dict]) -> None:
    done = [r for r in reports if "error" not in r]
    for r in done:
        atomic_write_text(out_dir / "reports" / f"{r['key']}.json", json.dumps(r, indent=1) + "\n")
        atomic_write_text(out_dir / "feedback" / f"{r['key']}.html", feedback_html(r))
        atomic_write_text(out_dir / "feedback" / f"{r['key']}.ipynb", feedback_notebook(r))
    replaced = {(r["student"], r["lab"]) for r in done}
    grade_rows = [{"student": r["student"], "lab": r["lab"], "submission": r["submission"],
                   **{k: q[k] for k in ("grade_id", "points", "score", "status", "message", "tampered")}}
                  for r in done for q in r["questions"]]
    summary_rows = [{"student": r["student"], "lab": r["lab"], "score": r["score"], "max_score": r["max_score"],
                     "status": "graded" + (" (sandboxed)" if r["sandboxed"] else " (no sandbox)"),
                     "flags": "; ".join(sorted({f["kind"] for f in r["flags"]})),
                     "submission": r["submission"], "graded_at": r["graded_at"]} for r in done]
    _merge(out_dir / "grades.csv", grade_rows, replaced, GRADE_FIELDS)
    summary = _merge(out_dir / "summary.csv", summary_rows, replaced, SUMMARY_FIELDS)
    fields, rows = lms_table(summary)
    atomic_write_text(out_dir / "lms.csv", _csv_text(rows, fields))
