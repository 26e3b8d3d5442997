"""Grading time: one submission of each lab, and a class of 30 lab-1 submissions on 2 cores.

Peer: nbgrader's own autograder (``nbgrader autograde``, one student after
another) on the same 30 submissions in a temporary course folder, run in the
same process tree. Both run every notebook in a fresh kernel with the hidden
tests restored, so the ratio is the cost of the machinery around the kernel
plus the gain of grading two submissions at a time.

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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30, help="submissions in the class (default 30)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel graders (default 2)")
    parser.add_argument("--no-nbgrader", action="store_true", help="skip the nbgrader peer")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print("\none submission, solved, graded alone (fresh kernel, hidden tests restored)")
        print(f"{'lab':32s} {'score':>7s} {'seconds':>8s}")
        for path in sorted(SOURCE.glob("[0-9][0-9]_*.ipynb")):
            sub = tmp / "single" / path.name
            sub.parent.mkdir(exist_ok=True)
            nbformat.write(solved(path.stem), sub)
            start = time.perf_counter()
            report = grade_submission(sub, SOURCE, timeout=120)
            seconds = time.perf_counter() - start
            print(f"{path.stem:32s} {report['score']:>3g}/{report['max_score']:<3g} {seconds:8.1f}")

        students = make_class(tmp / "class", args.n)
        rows = []
        for jobs in sorted({1, args.jobs}):
            start = time.perf_counter()
            reports = grade_many([tmp / "class"], SOURCE, tmp / f"reports{jobs}", timeout=120, jobs=jobs)
            rows.append((f"mlcourse grade --jobs {jobs}", time.perf_counter() - start))
            assert all("error" not in r for r in reports)
        if not args.no_nbgrader:
            rows.append(("nbgrader autograde (peer)", nbgrader_autograde(students, tmp)))

    peer = rows[-1][1]
    print(f"\n{args.n} lab-1 submissions (solved / partial / untouched)")
    print(f"{'grader':32s} {'total s':>8s} {'s/submission':>13s} {'vs peer':>8s}")
    for name, seconds in rows:
        print(f"{name:32s} {seconds:8.1f} {seconds / args.n:13.2f} {peer / seconds:7.2f}x")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
