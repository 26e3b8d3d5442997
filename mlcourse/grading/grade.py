"""``mlcourse grade``: score lab submissions with no server, one kernel per submission.

For each submission:

1. **find its answer key** (:func:`find_source`): only among the instructor's
   ``--source`` labs, by lab id (``NN_slug``). The id comes from the
   submission's ``metadata.mlcourse.lab`` if that is exactly an id, else from
   its file name; a path there is ignored (and flagged). No match: NOT GRADED;
2. **check integrity**: every locked and test cell must equal the student
   version; a changed or deleted one is reported as ``tampered``;
3. **restore**: test cells (with their hidden tests) and locked cells come
   back from the source; the student's solution and added cells are kept;
4. **run** it in a fresh kernel, in a bubblewrap sandbox (:mod:`.sandbox`),
   with each test cell's ``assert`` statements rewritten into probes that
   send plain values out (:mod:`.checks`);
5. **judge outside the kernel**: each assertion is evaluated by the grader
   with the student's values against the values of the same probes in the
   source solution, run once per source lab in a trusted kernel and cached;
6. **score**: a question's points if all its checks pass; a question split
   into parts (``# PART n points: title`` lines in the test cell) scores each
   part separately.

The report of a submission (a JSON-ready dict) lists every question with its
checks (passed or not, a hint, why it failed -- never the hidden tests'
source) and ``flags``: what the grader noticed (tampered cells, an answer
key chosen by path, tests that sent nothing, a kernel that passed what the
grader failed, output past the cap, files out of reach).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from time import monotonic

from mlcourse.files import atomic_write_text
from mlcourse.grading import checks as checking
from mlcourse.grading import markers
from mlcourse.grading.assign import lab_name, release_notebook
from mlcourse.grading.runner import Kernel
from mlcourse.grading.sandbox import DEFAULT_LIMITS, Limits

__all__ = ["grade_submission", "find_source", "source_labs", "references", "lab_id_of"]

_LAB_ID = re.compile(r"\d\d_[a-z0-9_]*[a-z0-9]")
_GRADER_FILES = ("checks.py", "probe.py", "grade.py", "runner.py", "sandbox.py")


def source_labs(source) -> dict[str, Path]:
    """The instructor's labs by id: ``source`` itself if it is a lab file, else the labs in that folder."""
    source = Path(source)
    if source.is_file():
        return {lab_name(source): source}
    if not source.is_dir():
        raise ValueError(f"source labs: {source} is neither a lab notebook nor a folder of labs")
    labs = {lab_name(p): p for p in sorted(source.glob("[0-9][0-9]_*.ipynb"))}
    if not labs:
        raise ValueError(f"source labs: no lab notebooks (NN_slug.ipynb) in {source}")
    return labs


def lab_id_of(submission_nb, submission_path, labs: dict) -> tuple[str, list[dict]]:
    """The id of the lab a submission answers, and flags about how it was found.

    ``metadata.mlcourse.lab`` counts only if it is exactly one of ``labs``'
    ids; anything else there (a path, say) is ignored and flagged. Failing
    that, an ``NN_slug`` part of the file name that is a source lab's id; a
    single source lab is taken when nothing names another.

    Raises
    ------
    ValueError
        If the submission names no lab of ``labs`` (the message says what was tried).
    """
    flags = []
    declared = (submission_nb.metadata.get("mlcourse") or {}).get("lab")
    if declared is not None:
        if isinstance(declared, str) and declared in labs:
            return declared, flags
        flags.append({"kind": "lab id", "detail": f"metadata.mlcourse.lab {str(declared)[:120]!r} is not the "
                      f"id of a source lab ({', '.join(labs)}): ignored"})
    stem = Path(submission_path).stem
    named = [m.group(0) for m in _LAB_ID.finditer(stem) if m.group(0) in labs]
    named += [lab for lab in labs if lab in stem and lab not in named]
    if named:
        return named[0], flags
    if len(labs) == 1 and declared is None:
        return next(iter(labs)), flags
    raise ValueError(f"{submission_path} matches no source lab: its metadata.mlcourse.lab is "
                     f"{declared!r} and its file name names none of {', '.join(labs)}")


def find_source(submission_nb, submission_path, source) -> Path:
    """The source lab of a submission (see :func:`lab_id_of`)."""
    labs = source_labs(source)
    return labs[lab_id_of(submission_nb, submission_path, labs)[0]]


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


def _kernel_env(threads: int, sandboxed: bool) -> dict:
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    counts = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    if not sandboxed:
        return {**os.environ, **counts}
    import sys

    env = {"PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin", **counts}
    if os.environ.get("MLCOURSE_FAST"):
        env["MLCOURSE_FAST"] = os.environ["MLCOURSE_FAST"]
    return env


def _instrumented(nb, where: str) -> tuple[dict, dict]:
    """Rewrite the test cells of ``nb`` in place; return {index: [Check]} and {index: parts}."""
    specs, parts = {}, {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and markers.role(cell) == markers.TEST:
            try:
                cell.source, specs[i], parts[i] = checking.instrument(
                    cell.source, markers.grade_id(cell), markers.points(cell))
            except ValueError as err:
                raise ValueError(f"{where}: {err}") from None
    return specs, parts


def _run(nb, *, timeout: float, threads: int, sandbox: Limits | None) -> tuple[dict, int]:
    """Run every non-empty code cell of ``nb`` in one fresh kernel: {index: CellRun}, restarts."""
    env = _kernel_env(threads, sandbox is not None)
    max_output = int((sandbox or Limits()).output_mb * 2**20)
    runs = {}
    with tempfile.TemporaryDirectory(prefix="mlcourse-grade-") as cwd, \
            Kernel(nb, timeout=timeout, cwd=cwd, env=env, sandbox=sandbox, max_output=max_output) as kernel:
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "code" and cell.source.strip():
                runs[i] = kernel.run(i)
        return runs, kernel.restarts


def _by_key(records: list) -> dict[str, list]:
    out: dict[str, list] = {}
    for record in records:
        if isinstance(record, dict) and isinstance(record.get("key"), str) and isinstance(record.get("leaves"), list):
            out.setdefault(record["key"], []).append(record)
    return out


def _grader_version() -> str:
    here = Path(__file__).parent
    digest = hashlib.sha256()
    for name in _GRADER_FILES:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:16]


def references(source_path, *, timeout: float = 60.0, threads: int = 1, sandbox: Limits | None = DEFAULT_LIMITS,
               cache_dir=None) -> dict:
    """The reference values of every check of a source lab: its solution, run in a trusted kernel.

    Cached in ``cache_dir`` (if given) under a name made of the lab id and a
    hash of the source, the grader's code and FAST mode, so each source lab
    runs once however many students are graded.

    Raises
    ------
    ValueError
        If the source lab breaks the conventions or its solution fails one of
        its own checks (the message names the check).
    """
    source_path = Path(source_path)
    name = lab_name(source_path)
    text = source_path.read_bytes()
    digest = hashlib.sha256(text + _grader_version().encode() + os.environ.get("MLCOURSE_FAST", "").encode())
    cache = Path(cache_dir) / f"{name}-{digest.hexdigest()[:16]}.json" if cache_dir else None
    if cache is not None and cache.is_file():
        return json.loads(cache.read_text(encoding="utf-8"))
    nb = markers.read(source_path)
    markers.validate_lab(nb, name)
    specs, _ = _instrumented(nb, name)
    runs, _ = _run(nb, timeout=timeout, threads=threads, sandbox=sandbox)
    values = {}
    for i, cell_checks in specs.items():
        run = runs.get(i)
        if run is None or run.status != "ok":
            why = f"{run.ename}: {run.evalue}" if run else "it did not run"
            raise ValueError(f"{name}: the source solution fails test cell {markers.grade_id(nb.cells[i])!r}: {why}")
        got = _by_key(run.records)
        for check in cell_checks:
            evaluations = got.get(check.key, [])
            if not evaluations:
                raise ValueError(f"{name}: check {check.key} (line {check.line}) never ran with the source solution")
            for record in evaluations:
                verdict = checking.judge(check, record["leaves"], record["leaves"])
                if not verdict["passed"]:
                    raise ValueError(f"{name}: the source solution fails its own check {check.key} "
                                     f"(line {check.line}): {verdict['why']}")
            values[check.key] = [r["leaves"] for r in evaluations]
    result = {"lab": name, "sha256": hashlib.sha256(text).hexdigest(), "values": values}
    if cache is not None:
        atomic_write_text(cache, json.dumps(result) + "\n")
    return result


_OS_ERRORS = {"PermissionError", "FileNotFoundError", "OSError", "IsADirectoryError", "ConnectionError",
              "ConnectionRefusedError", "gaierror", "MemoryError"}


def _flags_from_runs(runs: dict, ids: dict, cells: list) -> list[dict]:
    flags = []
    for i, run in sorted(runs.items()):
        role = markers.role(cells[i]) if i in ids else "added"
        where = f"cell {i} ({ids.get(i) or 'added by the student'})"
        if run.output_dropped:
            flags.append({"kind": "output limit", "detail": f"{where} printed past the output cap; the rest was dropped"})
        if role != markers.TEST and run.ename in _OS_ERRORS:
            flags.append({"kind": "sandbox", "detail": f"{where} raised {run.ename}: {run.evalue[:200]} "
                          "(files outside the scratch folder, the network and memory past the limit are out of reach)"})
        if run.status == "crashed":
            flags.append({"kind": "crashed", "detail": f"{where}: the kernel died (a crash, or a CPU/memory limit)"})
    return flags


def _failure_status(runs_in_span: list, test_run, rows: list) -> str:
    for wanted in ("timeout", "crashed"):
        if any(r.status == wanted for r in runs_in_span):
            return wanted
    raised = [r["why"] for r in rows if not r["passed"] and r["why"].startswith("raised ")]
    if any(r.ename == "NotImplementedError" for r in runs_in_span) or \
            any(w.startswith("raised NotImplementedError") for w in raised):
        return "not implemented"
    return "error" if test_run.status != "ok" or raised else "failed"


def _score_question(gid, points, cell_checks, parts, test_run, span, reference, changed) -> tuple[dict, list]:
    """One question: its checks judged outside the kernel, its parts scored, flags raised."""
    got = _by_key(test_run.records)
    rows, flags, disagree = [], [], []
    for check in cell_checks:
        wanted = reference["values"].get(check.key)
        if wanted is None:
            raise ValueError(f"the cached references have no check {check.key}: delete the cache and regrade")
        evaluations = got.get(check.key, [])
        if len(evaluations) < len(wanted):
            verdict = {"passed": False, "why": "did not run" if not evaluations else
                       f"ran {len(evaluations)} of {len(wanted)} times"}
        else:
            verdict = {"passed": True, "why": ""}
            for mine, ref in zip(evaluations, wanted):
                verdict = checking.judge(check, mine["leaves"], ref)
                if not verdict["passed"]:
                    if mine.get("kernel_verdict") is True:
                        disagree.append(check.key)
                    break
        rows.append({"key": check.key, "hidden": check.hidden, "hint": check.hint, "part": check.part,
                     "guessable": check.guessable, **verdict})
    part_rows = []
    for p, (title, pts) in enumerate(parts):
        mine = [r for r in rows if r["part"] == p]
        if not mine and pts <= 0:
            continue
        ok = bool(mine) and all(r["passed"] for r in mine)
        part_rows.append({"title": title or ("the question" if len(parts) == 1 else "the rest"),
                          "points": pts, "score": pts if ok else 0.0, "checks": len(mine)})
    score = sum(p["score"] for p in part_rows)
    if test_run.status == "ok" and not got:
        flags.append({"kind": "tests silenced", "detail": f"{gid}: the test cell ran but none of its "
                      f"{len(cell_checks)} checks reported (cells switched off or the kernel patched?)"})
    if disagree:
        flags.append({"kind": "kernel disagrees", "detail": f"{gid}: the kernel's own comparison passed "
                      f"{', '.join(disagree)}, the grader's failed (comparison functions or references changed?)"})
    if score >= points - 1e-9:
        status = "passed"
    else:
        status = _failure_status(span, test_run, rows)
        if status == "failed" and score > 0:
            status = "partial"
    failed = [r for r in rows if not r["passed"]]
    first = next((r for r in span if r.status != "ok"), None)
    if failed and (first is None or first is test_run and test_run.status == "ok"):
        f0 = failed[0]
        message = (f"{'hidden' if f0['hidden'] else 'visible'} check {f0['key'].split(':')[1]}: "
                   f"{f0['hint'] or 'no hint written'} ({f0['why']})")
    elif first is not None:
        message = f"{first.ename}: {first.evalue}" if first.evalue else first.ename
    else:
        message = ""
    question = {"grade_id": gid, "points": points, "score": score, "status": status, "message": message[:500],
                "tampered": gid in changed, "seconds": round(sum(r.seconds for r in span), 3),
                "checks": rows, "parts": part_rows}
    return question, flags


def grade_submission(submission, source, *, timeout: float = 60.0, threads: int = 1,
                     sandbox: Limits | None = DEFAULT_LIMITS, cache_dir=None, reference: dict | None = None) -> dict:
    """Grade one submitted lab notebook and return its report (a JSON-ready dict).

    Parameters
    ----------
    submission : path
        The student's notebook.
    source : path
        The source lab (with solutions and hidden tests), or the folder of source labs.
    timeout : float
        Seconds allowed per cell (see :mod:`.runner` for what a timeout costs).
    threads : int
        Threads for the kernel's numerical libraries (``OMP_NUM_THREADS``,
        ``MKL_NUM_THREADS``). One is the default: the labs' models are small,
        and on a busy machine (or with parallel graders) more threads spin
        against each other: backward selection in lab 2 ran 25x slower with
        2 threads than with 1 on a loaded 2-core machine.
    sandbox : Limits or None
        Run the kernels in bubblewrap with these limits (None: no sandbox).
    cache_dir : path, optional
        Where the reference values of each source lab are cached.
    reference : dict, optional
        The references (:func:`references`), if already computed.

    Returns
    -------
    dict
        ``score``, ``max_score``, ``questions`` (grade_id, points, score,
        status, message, tampered, checks, parts), ``tampered``, ``flags``,
        ``cells``, ``kernel_restarts``, ``seconds`` and provenance
        (``submission``, ``sha256``, ``lab``, ``source``).

    Raises
    ------
    ValueError
        If the submission or its source cannot be read, it matches no source
        lab, or the source breaks the lab conventions.
    """
    start = monotonic()
    submission = Path(submission)
    sub = markers.read(submission)
    labs = source_labs(source)
    name, flags = lab_id_of(sub, submission, labs)
    source_path = labs[name]
    src = markers.read(source_path)
    released = markers.lab_cells(release_notebook(src, name))
    sub_cells = {}
    for cell in sub.cells:
        sub_cells.setdefault(markers.grade_id(cell), cell)
    tampered = _integrity(sub_cells, released)
    if reference is None:
        reference = references(source_path, timeout=timeout, threads=threads, sandbox=sandbox, cache_dir=cache_dir)

    cells, ids = _restore(src, sub)
    graded = copy.deepcopy(src)
    graded.cells = cells
    specs, parts = _instrumented(graded, name)
    runs, restarts = _run(graded, timeout=timeout, threads=threads, sandbox=sandbox)

    questions, span, changed = [], [], {t["grade_id"] for t in tampered}
    flags += [{"kind": "tampered", "detail": f"{t['grade_id']}: {t['problem']} (graded with the original)"}
              for t in tampered]
    flags += _flags_from_runs(runs, ids, cells)
    for i in sorted(runs):
        span.append(runs[i])
        if i not in specs:
            continue
        question, more = _score_question(ids[i], markers.points(cells[i]), specs[i], parts[i], runs[i], span,
                                         reference, changed)
        questions.append(question)
        flags += more
        span = []
    cell_rows = [{**runs[i].as_dict(), "grade_id": ids.get(i),
                  "role": markers.role(cells[i]) if i in ids else "added"} for i in sorted(runs)]
    return {
        "submission": str(submission),
        "sha256": hashlib.sha256(submission.read_bytes()).hexdigest(),
        "lab": name,
        "source": str(source_path),
        "sandboxed": sandbox is not None,
        "score": sum(q["score"] for q in questions),
        "max_score": sum(q["points"] for q in questions),
        "questions": questions,
        "tampered": tampered,
        "flags": flags,
        "cells": cell_rows,
        "kernel_restarts": restarts,
        "timeout": timeout,
        "seconds": round(monotonic() - start, 3),
        "graded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
