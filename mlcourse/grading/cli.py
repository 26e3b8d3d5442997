"""``mlcourse assign`` and ``mlcourse grade`` (registered by :func:`add_cli`)."""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["add_cli"]


def _labs(root, sub: str) -> Path:
    from mlcourse.cli import course_root

    return course_root(root) / "labs" / sub


def _assign(args) -> int:
    from mlcourse.grading.assign import assign, lab_files, release_text

    sources = args.sources or [_labs(args.root, "source")]
    release = args.release or _labs(args.root, "release")
    if args.check:
        stale = [p.name for p in lab_files(sources)
                 if not (release / p.name).is_file()
                 or (release / p.name).read_text(encoding="utf-8") != release_text(p)]
        for name in stale:
            print(f"out of date: {release / name} (run `mlcourse assign`)", file=sys.stderr)
        return 1 if stale else 0
    for path in assign(sources, release):
        print(f"wrote {path}")
    return 0


def _grade(args) -> int:
    from mlcourse.grading.batch import grade_many
    from mlcourse.grading.sandbox import Limits, require

    require(args.no_sandbox)
    limits = None if args.no_sandbox else Limits(args.memory_mb, args.cpu_seconds, args.max_output_mb)
    source = args.source or _labs(args.root, "source")
    reports = grade_many(args.submissions, source, args.out, timeout=args.timeout, jobs=args.jobs,
                         threads=args.threads, sandbox=limits)
    failed = 0
    for report in reports:
        if "error" in report:
            failed += 1
            print(f"NOT GRADED  {report['submission']}: {report['error']}", file=sys.stderr)
            continue
        marks = ", ".join(f"{q['grade_id']} {q['score']:g}/{q['points']:g} {q['status']}"
                          for q in report["questions"])
        print(f"{report['score']:g}/{report['max_score']:g}  {report['student']}  {report['submission']}  "
              f"({marks})  [{report['seconds']:.1f} s]")
        for flag in report["flags"]:
            print(f"    FLAG {flag['kind']}: {flag['detail']}")
    if args.no_sandbox:
        print("graded WITHOUT a sandbox (--no-sandbox): only do this for notebooks you trust", file=sys.stderr)
    print(f"reports in {args.out}/: grades.csv, summary.csv, lms.csv, reports/*.json, feedback/*.html|ipynb")
    return 1 if failed else 0


def add_cli(sub) -> None:
    """Register ``assign`` and ``grade`` on the ``mlcourse`` subparsers."""
    assign = sub.add_parser(
        "assign", help="generate student versions of the labs (labs/source -> labs/release)",
        description="Solutions become stubs, hidden tests go, outputs are cleared, locked cells "
                    "get checksums. Same conventions as nbgrader generate_assignment.")
    assign.add_argument("sources", nargs="*", type=Path,
                        help="source labs or folders (default: labs/source)")
    assign.add_argument("--release", type=Path, help="output folder (default: labs/release)")
    assign.add_argument("--root", type=Path, help="the course folder (default: here or a parent)")
    assign.add_argument("--check", action="store_true",
                        help="write nothing; fail if the release differs from a fresh generation")
    assign.set_defaults(func=_assign)

    grade = sub.add_parser(
        "grade", help="grade submitted lab notebooks (files or folders), no server needed",
        description="Runs each submission in a fresh, sandboxed kernel with hidden tests and locked cells "
                    "restored from the source, judges each assertion outside the kernel against the source "
                    "solution, and writes merged grade tables, an LMS CSV and per-student feedback.")
    grade.add_argument("submissions", nargs="+", type=Path, help="notebooks or folders of notebooks")
    grade.add_argument("--source", type=Path,
                       help="a source lab or folder of source labs (default: labs/source)")
    grade.add_argument("--out", type=Path, default=Path("graded"), help="report folder (default: graded)")
    grade.add_argument("--timeout", type=float, default=60.0, help="seconds allowed per cell (default: 60)")
    grade.add_argument("--jobs", type=int, help="submissions graded in parallel (default: CPU cores)")
    grade.add_argument("--threads", type=int, default=1,
                       help="threads per kernel for torch/numpy (default: 1)")
    grade.add_argument("--root", type=Path, help="the course folder (default: here or a parent)")
    grade.add_argument("--no-sandbox", action="store_true",
                       help="run student code without bubblewrap, with your rights (trusted notebooks only)")
    grade.add_argument("--memory-mb", type=int, default=6144, help="sandbox: address space per process (MB)")
    grade.add_argument("--cpu-seconds", type=int, default=900, help="sandbox: CPU seconds per process")
    grade.add_argument("--max-output-mb", type=float, default=2.0, help="output kept per kernel (MB)")
    grade.set_defaults(func=_grade)
