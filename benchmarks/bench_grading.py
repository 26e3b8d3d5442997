"""Grading time per submission and for a class of 30 lab-1 submissions on 2 cores, sandboxed and not.

Peers, measured in the same run: ``mlcourse grade --no-sandbox`` (the same
grader without bubblewrap: the ratio is the sandbox's overhead) and
nbgrader's own autograder (``nbgrader autograde``, one student after
another, no sandbox, verdicts from the kernel). Every grader runs each
notebook in a fresh kernel with the hidden tests restored. The source
solution's reference run (once per lab) is timed on its own line and
excluded from the class totals (it is cached).

Run: ``.venv/bin/python benchmarks/bench_grading.py [--n 30] [--jobs 2] [--no-nbgrader]``.
The class mixes solved, partly solved and untouched notebooks (a third each).
Timings on a shared machine are noisy: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from mlcourse.grading import markers
from mlcourse.grading.batch import grade_many
from mlcourse.grading.grade import grade_submission

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "labs" / "source"
RELEASE = ROOT / "labs" / "release"
LAB = "01_one_hot_and_deepbind"


def solved(name: str) -> nbformat.NotebookNode:
    """The release of ``name`` with the source's solutions pasted into its solution cells."""
    answers = {markers.grade_id(c): c.source for c in markers.read(SOURCE / f"{name}.ipynb").cells
               if markers.role(c) == markers.SOLUTION}
    nb = markers.read(RELEASE / f"{name}.ipynb")
    for c in nb.cells:
        if markers.grade_id(c) in answers:
            c.source = answers[markers.grade_id(c)]
    return nb


def make_class(folder: Path, n: int) -> list[Path]:
    """``n`` student folders holding lab 1: solved, partly solved (fixture) or untouched, in turn."""
    kinds = [solved(LAB), markers.read(ROOT / "tests" / "fixtures" / "grading" / "01_partial.ipynb"),
             markers.read(RELEASE / f"{LAB}.ipynb")]
    paths = []
    for i in range(n):
        path = folder / f"student{i:02d}" / f"{LAB}.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(kinds[i % 3], path)
        paths.append(path)
    return paths


def nbgrader_autograde(students: list[Path], work: Path) -> float:
    """Seconds for ``nbgrader generate_assignment`` + ``autograde`` of every student (sequential)."""
    course = work / "course"
    (course / "source" / "lab1").mkdir(parents=True)
    shutil.copy(SOURCE / f"{LAB}.ipynb", course / "source" / "lab1")
    for path in students:
        target = course / "submitted" / path.parent.name / "lab1"
        target.mkdir(parents=True)
        shutil.copy(path, target)
    (course / "nbgrader_config.py").write_text("c = get_config()\nc.CourseDirectory.course_id = 'bench'\n")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # as mlcourse's kernels: a fair race
    subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", "lab1", "--force"],
                   cwd=course, env=env, check=True, capture_output=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "nbgrader", "autograde", "lab1", "--force", "--create"],
                   cwd=course, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    from mlcourse.grading.grade import references
    from mlcourse.grading.sandbox import DEFAULT_LIMITS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30, help="submissions in the class (default 30)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel graders (default 2)")
    parser.add_argument("--no-nbgrader", action="store_true", help="skip the nbgrader peer")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    modes = {"sandboxed": DEFAULT_LIMITS, "no sandbox": None}

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print("\none lab-1 submission, solved, graded alone (fresh kernel, hidden tests restored)")
        print(f"{'mode':12s} {'reference run s':>16s} {'submission s':>13s} {'score':>7s}")
        single = tmp / "single" / "alice" / f"{LAB}.ipynb"
        single.parent.mkdir(parents=True)
        nbformat.write(solved(LAB), single)
        for mode, limits in modes.items():
            start = time.perf_counter()
            ref = references(SOURCE / f"{LAB}.ipynb", timeout=120, sandbox=limits, cache_dir=tmp / mode)
            ref_s = time.perf_counter() - start
            start = time.perf_counter()
            report = grade_submission(single, SOURCE, timeout=120, sandbox=limits, reference=ref)
            print(f"{mode:12s} {ref_s:16.1f} {time.perf_counter() - start:13.1f} "
                  f"{report['score']:>3g}/{report['max_score']:<3g}")

        students = make_class(tmp / "class", args.n)
        rows = []
        for mode, limits in modes.items():
            out = tmp / f"reports-{mode}"
            references(SOURCE / f"{LAB}.ipynb", timeout=120, sandbox=limits, cache_dir=out / ".reference")
            start = time.perf_counter()
            reports = grade_many([tmp / "class"], SOURCE, out, timeout=120, jobs=args.jobs, sandbox=limits)
            rows.append((f"mlcourse grade, {mode}, --jobs {args.jobs}", time.perf_counter() - start))
            assert all("error" not in r for r in reports), [r["error"] for r in reports if "error" in r]
        if not args.no_nbgrader:
            rows.append(("nbgrader autograde (1 at a time)", nbgrader_autograde(students, tmp)))

    sandboxed = rows[0][1]
    print(f"\n{args.n} lab-1 submissions (solved / partial / untouched)")
    print(f"{'grader':40s} {'total s':>8s} {'s/submission':>13s} {'time vs sandboxed':>18s}")
    for name, seconds in rows:
        print(f"{name:40s} {seconds:8.1f} {seconds / args.n:13.2f} {seconds / sandboxed:17.2f}x")
    print(f"sandbox overhead: {sandboxed / rows[1][1]:.2f}x the time without it")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
