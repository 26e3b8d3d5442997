"""The ``mlcourse`` command line: open the course, run it, fetch data, benchmark, grade.

Run ``mlcourse --help`` for the list and ``mlcourse COMMAND --help`` for each.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

OVERVIEW = Path("lectures") / "00_course_overview.ipynb"


def course_root(start: Path | None = None) -> Path:
    """The folder holding ``lectures/``: ``start`` (default: the working directory) or a parent."""
    start = Path(start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / OVERVIEW).exists():
            return folder
    raise ValueError(
        f"no course found at or above {start}: expected {OVERVIEW}; "
        "run this from the course folder (the git clone) or pass --root"
    )


def lab_command(root: Path, port: int | None = None, open_browser: bool = True) -> list[str]:
    """The JupyterLab command that ``make lab`` and ``mlcourse lab`` run.

    It listens on localhost only and keeps Jupyter's token authentication on.
    """
    cmd = [
        sys.executable, "-m", "jupyterlab",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.root_dir={root}",
    ]
    if port is not None:
        cmd.append(f"--ServerApp.port={port}")
    if not open_browser:
        cmd.append("--ServerApp.open_browser=False")
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI machines run as root
        cmd.append("--ServerApp.allow_root=True")
    cmd.append(str(OVERVIEW))
    return cmd


# JupyterLab plugins a student does not need: nbgrader's instructor tools (installed with the course's
# "instructor" extra) and JupyterLab's news pop-up (it asks to fetch news from the internet).
STUDENT_HIDDEN = (
    "@jupyter/nbgrader:create-assignment",   # the "Create Assignment" sidebar
    "@jupyter/nbgrader:formgrader",          # the grading interface
    "@jupyter/nbgrader:course-list",
    "@jupyter/nbgrader:assignment-list",
    "@jupyter/nbgrader:menu",                # the "Nbgrader" menu
)
ALWAYS_HIDDEN = ("@jupyterlab/apputils-extension:announcements",)  # the news pop-up


def lab_config(root: Path, instructor: bool = False) -> Path:
    """Write the course's JupyterLab page config and return its folder (for ``JUPYTER_CONFIG_PATH``).

    ``build/jupyter/labconfig/page_config.json`` switches off the news pop-up
    and, unless ``instructor``, nbgrader's instructor menus; nbgrader's
    "Validate" button stays. Jupyter reads this folder in addition to your
    own configuration, which it leaves untouched.
    """
    from mlcourse.files import atomic_write_text

    hidden = ALWAYS_HIDDEN + (() if instructor else STUDENT_HIDDEN)
    folder = Path(root) / "build" / "jupyter"
    page = {"disabledExtensions": {name: True for name in hidden}}
    atomic_write_text(folder / "labconfig" / "page_config.json", json.dumps(page, indent=2) + "\n")
    return folder


def lab_environment(root: Path, instructor: bool = False, environ=None) -> dict:
    """The environment ``mlcourse lab`` starts JupyterLab with: the course config first on the path."""
    env = dict(os.environ if environ is None else environ)
    paths = [str(lab_config(root, instructor))] + [p for p in [env.get("JUPYTER_CONFIG_PATH")] if p]
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(paths)
    return env


def _lab(args) -> int:
    root = course_root(args.root)
    cmd = lab_command(root, args.port, open_browser=not args.no_browser)
    env = lab_environment(root, instructor=args.instructor)
    os.chdir(root)
    os.execve(cmd[0], cmd, env)


def _run(args) -> int:
    from mlcourse.notebooks import run_findings, run_notebooks

    root = course_root(args.root)
    paths = [Path(p) for p in args.notebooks] or sorted((root / "lectures").glob("[0-9][0-9]_*.ipynb"))
    if args.findings:
        failed = run_findings(paths, out_dir=root / args.out, fast=args.fast, timeout=args.timeout)
        print(f"findings table: {root / args.out / 'findings.md'}")
    else:
        failed = run_notebooks(paths, out_dir=root / args.out, fast=args.fast, timeout=args.timeout)
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlcourse",
        description="Predicting TF binding with CNNs, and interpreting deep models: the course tools.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    lab = sub.add_parser("lab", help="open the course in JupyterLab (localhost, token on)")
    lab.add_argument("--root", type=Path, help="the course folder (default: here or a parent)")
    lab.add_argument("--port", type=int, help="port to listen on (default: Jupyter's choice)")
    lab.add_argument("--no-browser", action="store_true", help="do not open a browser window")
    lab.add_argument("--instructor", action="store_true",
                     help="show nbgrader's instructor menus (Create Assignment, Formgrader)")
    lab.set_defaults(func=_lab)

    run = sub.add_parser("run", help="execute lectures and write rendered HTML to build/")
    run.add_argument("notebooks", nargs="*", help="notebooks to run (default: every lecture)")
    run.add_argument("--root", type=Path, help="the course folder (default: here or a parent)")
    run.add_argument("--out", default="build", help="output folder, relative to the root")
    run.add_argument("--fast", action="store_true", help="FAST mode: small sizes, as in the tests")
    run.add_argument("--timeout", type=int, default=3600, help="seconds allowed per cell")
    run.add_argument("--findings", action="store_true",
                     help="check every lecture's findings; time each lecture; write findings.md and "
                          "findings.json to the output folder (fails if a finding does not hold)")
    run.set_defaults(func=_run)

    # Further commands register themselves here: fetch, bench, assign, grade, site.
    _add_optional_commands(sub)
    return parser


def _add_optional_commands(sub) -> None:
    """Commands that live beside the module they drive (each module has ``add_cli(sub)``)."""
    import importlib

    for module in ("mlcourse.datasets.fetch", "mlcourse.benchmark", "mlcourse.grading.cli",
                   "mlcourse.site"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name == module:
                continue
            raise
        mod.add_cli(sub)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except ValueError as err:
        print(f"mlcourse {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
