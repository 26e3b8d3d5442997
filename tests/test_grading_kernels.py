"""mlcourse.grading with real kernels on small notebooks: the kernel policy, the sandbox, tiny labs end to end.

A module of its own (lab 1's graded batch is in ``test_grading.py``), so that
the test workers run both at once. These notebooks do not import torch, except
for lab 1 in the test against real nbgrader.
"""

import ast
import csv
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
from grading_notebooks import FIXTURES, LAB01, cell, tiny_lab

from mlcourse.grading import markers, sandbox
from mlcourse.grading.assign import release_notebook
from mlcourse.grading.batch import grade_many
from mlcourse.grading.grade import grade_submission
from mlcourse.grading.runner import Kernel

ROOT = Path(__file__).resolve().parents[1]


def test_errors_hangs_and_crashes_cost_only_their_cell():
    nb = tiny_lab(*(cell(s) for s in [
        "x = 1",
        "while True:\n    pass",  # interruptible: the kernel survives
        "x += 1",
        "import time\nwhile True:\n    try:\n        time.sleep(0.05)\n    except KeyboardInterrupt:\n        pass",
        "assert x == 2, x",  # after the restart, the cells that had succeeded were re-run
        "1 / 0",
        "import os\nos._exit(1)",  # the kernel dies
        "assert x == 2, x",
    ]))
    with tempfile.TemporaryDirectory() as cwd, Kernel(nb, timeout=2, cwd=cwd, grace=2) as kernel:
        runs = [kernel.run(i) for i in range(len(nb.cells))]
        restarts = kernel.restarts
    assert [r.status for r in runs] == ["ok", "timeout", "ok", "timeout", "ok", "error", "crashed", "ok"]
    assert runs[5].ename == "ZeroDivisionError"
    assert restarts == 2


def test_the_sandbox_hides_the_course_and_ends_every_process(tmp_path):
    import os
    import uuid

    canary = f"mlcourse-canary-{uuid.uuid4().hex}"
    (tmp_path / "secret.txt").write_text("hidden tests")
    nb = tiny_lab(*(cell(s) for s in [
        "import os, pathlib, mlcourse\nenv = dict(os.environ)\n"
        "course = pathlib.Path(mlcourse.__file__).resolve().parents[1]\nprint(sorted(os.listdir(course)))",
        f"open({str(tmp_path / 'secret.txt')!r}).read()",
        "open(mlcourse.__file__, 'a')",
        "open('mine.txt', 'w').write('scratch is writable')",
        f"import subprocess\nsubprocess.Popen(['sh', '-c', 'sleep 60 # {canary}'])",
        "assert 'PWD' not in env or env['PWD'] == '/home/student', env.get('PWD')\n"
        "assert not [k for k in env if 'SOURCE' in k.upper()]",
    ]))
    with tempfile.TemporaryDirectory() as cwd:
        with Kernel(nb, timeout=30, cwd=cwd, env={"PATH": "/usr/bin:/bin"}, sandbox=sandbox.Limits()) as kernel:
            runs = [kernel.run(i) for i in range(len(nb.cells))]
        assert (Path(cwd) / "mine.txt").read_text() == "scratch is writable"
    assert [r.status for r in runs] == ["ok", "error", "error", "ok", "ok", "ok"], runs
    # Only the package (and the virtual environment, when it lives in the clone) is mounted:
    # no labs/, tests/ or .git next to it.
    listing = set(ast.literal_eval(nb.cells[0].outputs[0]["text"].strip()))
    assert listing - {".venv"} == {"mlcourse"}, listing
    assert runs[1].ename == "FileNotFoundError" and runs[2].ename == "OSError"
    alive = subprocess.run(["pgrep", "-f", canary], capture_output=True, text=True).stdout.split()
    assert alive == [] and os.getpid()


def test_a_process_has_exited_once_it_is_a_zombie_or_gone():
    """kill_sandbox waits for the sandbox's init by this test: a zombie has finished exiting."""
    import time

    child = subprocess.Popen(["sleep", "30"])
    assert not sandbox._exited(child.pid)
    child.kill()
    deadline = time.monotonic() + 10
    while not sandbox._exited(child.pid) and time.monotonic() < deadline:  # a zombie until it is waited for
        time.sleep(0.01)
    assert sandbox._exited(child.pid) and child.poll() is not None
    assert sandbox._exited(child.pid)  # reaped: gone


def _tiny_source(tmp_path):
    source = tiny_lab(
        cell("# Lab 9: tiny\n\nExpected runtime: 1 s", cell_type="markdown"),
        cell("x = 1", "setup"),
        cell("def f():\n    ### BEGIN SOLUTION\n    return 2\n    ### END SOLUTION", "f_answer", kind="solution"),
        cell("assert f() == 2, 'f() is 2'\n### BEGIN HIDDEN TESTS\nassert x == 1\n"
             "# PART 1 point: sign\nassert f() > 0, 'f() is positive'\n### END HIDDEN TESTS", "f_tests",
             kind="test", points=2),
        cell("def g():\n    ### BEGIN SOLUTION\n    return 3\n    ### END SOLUTION", "g_answer", kind="solution"),
        cell("assert g() == 3", "g_tests", kind="test", points=1),
    )
    folder = tmp_path / "source"
    folder.mkdir()
    nbformat.write(source, folder / "09_tiny.ipynb")
    return source, folder


def test_restore_keeps_student_cells_and_puts_back_deleted_or_edited_locked_cells(tmp_path):
    """What runs is the source's locked/test cells plus the student's own; points come from the source."""
    source, folder = _tiny_source(tmp_path)
    student = release_notebook(source, "09_tiny")
    by_gid = {markers.grade_id(c): c for c in student.cells}
    student.cells.remove(by_gid["f_answer"])  # answered in a cell of their own instead
    student.cells.insert(2, cell("def f():\n    return 2"))
    student.cells.insert(3, cell("undefined_name"))  # an error that touches no test
    by_gid["setup"].source = "x = 5"  # tampered: restored to x = 1, so the hidden test passes
    by_gid["g_tests"].metadata.nbgrader["points"] = 10
    student.cells.remove(by_gid["f_tests"])
    sub = tmp_path / "alice.ipynb"
    nbformat.write(student, sub)

    report = grade_submission(sub, folder / "09_tiny.ipynb", timeout=20)
    assert report["lab"] == "09_tiny" and report["sandboxed"]
    assert {t["grade_id"]: t["problem"] for t in report["tampered"]} == {
        "setup": "source changed", "f_tests": "deleted", "g_tests": "nbgrader metadata changed"}
    assert [(q["grade_id"], q["score"], q["status"]) for q in report["questions"]] == [
        ("f_tests", 2.0, "passed"), ("g_tests", 0.0, "not implemented")]
    assert report["max_score"] == 3
    assert [c["role"] for c in report["cells"]] == ["locked", "added", "added", "test", "solution", "test"]


def test_tables_merge_by_student_and_a_bad_source_wipes_nothing(tmp_path):
    source, folder = _tiny_source(tmp_path)
    answers = {"right": ("return 2", "return 3"), "half": ("return 2", "return 0"), "part": ("return 1", "return 3")}
    subs = tmp_path / "subs"
    for student, (f, g) in answers.items():
        nb = release_notebook(source, "09_tiny")
        for c in nb.cells:
            if markers.grade_id(c) in ("f_answer", "g_answer"):
                c.source = f"def {markers.grade_id(c)[0]}():\n    {f if c.source.startswith('def f') else g}"
        (subs / student).mkdir(parents=True)
        nbformat.write(nb, subs / student / "09_tiny.ipynb")
    out = tmp_path / "out"
    reports = grade_many([subs], folder, out, timeout=20, jobs=2)
    assert {r["student"]: r["score"] for r in reports} == {"right": 3, "half": 2, "part": 2}
    part = next(r for r in reports if r["student"] == "part")["questions"][0]
    assert part["status"] == "partial" and [p["score"] for p in part["parts"]] == [0.0, 1.0]
    page = (out / "feedback" / "part--09_tiny.html").read_text()
    assert "f() is 2" in page and "f() is positive" in page and "assert" not in page  # hints, not source
    feedback = nbformat.reads((out / "feedback" / "part--09_tiny.ipynb").read_text(), as_version=4)
    assert "1 / 2 points, partial" in feedback.cells[5].source and "f() is positive" in feedback.cells[5].source

    grade_many([subs / "half"], folder, out, timeout=20, jobs=1)  # a regrade replaces one row
    summary = list(csv.DictReader((out / "summary.csv").open()))
    assert [(r["student"], r["score"]) for r in summary] == [("half", "2.0"), ("part", "2.0"), ("right", "3.0")]
    before = {p.name: p.read_text() for p in out.glob("*.csv")}
    empty = tmp_path / "typo"
    (empty / "09_tinny.ipynb").parent.mkdir()
    nbformat.write(source, empty / "09_tinny.ipynb")
    wrong = grade_many([subs], empty, out, timeout=20, jobs=1)
    assert all("matches no source lab" in r["error"] for r in wrong)
    assert {p.name: p.read_text() for p in out.glob("*.csv")} == before
    lms = list(csv.DictReader((out / "lms.csv").open()))
    assert lms[0]["Student"] == "Points Possible" and lms[0]["09_tiny"] == "3.0"


def test_real_nbgrader_generates_our_release_and_autogrades_like_us(tmp_path):
    """A source lab goes through `nbgrader generate_assignment` and `autograde` unchanged.

    nbgrader's student version equals ours (same stubs, same checksums), and
    its autograder gives the partly solved fixture the same marks as ours.
    """
    import os

    from nbgrader.api import Gradebook

    course = tmp_path / "course"
    source = ROOT / "labs" / "source" / f"{LAB01}.ipynb"
    (course / "source" / "lab01").mkdir(parents=True)
    (course / "source" / "lab01" / source.name).write_bytes(source.read_bytes())
    (course / "submitted" / "bob" / "lab01").mkdir(parents=True)
    (course / "submitted" / "bob" / "lab01" / source.name).write_bytes(
        (FIXTURES / "01_partial.ipynb").read_bytes())
    (course / "nbgrader_config.py").write_text("c = get_config()\nc.CourseDirectory.course_id = 'mlcourse'\n")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    for step in (["generate_assignment", "lab01", "--force"], ["autograde", "lab01", "--force", "--create"]):
        result = subprocess.run([sys.executable, "-m", "nbgrader", *step], cwd=course, env=env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]

    theirs = nbformat.read(course / "release" / "lab01" / source.name, as_version=4)
    ours = nbformat.read(ROOT / "labs" / "release" / source.name, as_version=4)
    assert [c.source.strip() for c in theirs.cells] == [c.source.strip() for c in ours.cells]
    assert [c.metadata.get("nbgrader", {}).get("checksum") for c in theirs.cells] == [
        c.metadata.get("nbgrader", {}).get("checksum") for c in ours.cells]
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        submission = gradebook.find_submission("lab01", "bob")
        marks = {g.name: g.score for nb in submission.notebooks for g in nb.grades}
    assert marks == {"one_hot_tests": 2, "shuffle_tests": 0, "deepbind_tests": 2, "train_tests": 0}
