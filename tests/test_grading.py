"""mlcourse.grading: markers, student versions, the kernel policy, and grading real submissions.

The expensive part (running notebooks) happens once: the module-scoped
``graded`` fixture grades every lab's solved and student versions plus the
hand-written fixtures in ``tests/fixtures/grading`` in one parallel batch,
and the tests read its reports.
"""

import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

from mlcourse.grading import markers
from mlcourse.grading.assign import STUB, assign, lab_name, release_notebook, release_text
from mlcourse.grading.grade import grade_many, grade_submission, report_stems
from mlcourse.grading.runner import Kernel

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "labs" / "source").glob("[0-9][0-9]_*.ipynb"))
FIXTURES = ROOT / "tests" / "fixtures" / "grading"
LAB01 = "01_one_hot_and_deepbind"


def cell(source, gid=None, *, kind="locked", points=None, cell_type="code"):
    """A notebook cell with nbgrader metadata of the given kind (or none when gid is None)."""
    new = nbformat.v4.new_code_cell if cell_type == "code" else nbformat.v4.new_markdown_cell
    c = new(source)
    if gid is not None:
        c.metadata["nbgrader"] = {
            "grade_id": gid, "schema_version": 3, "task": False,
            "solution": kind == "solution", "grade": kind == "test", "locked": kind != "solution",
            **({"points": points} if points is not None else {}),
        }
    return c


def tiny_lab(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    return nb


def solved(name: str) -> nbformat.NotebookNode:
    """What a perfect student hands in: the release with the source's solution cells pasted in."""
    source = nbformat.read(ROOT / "labs" / "source" / f"{name}.ipynb", as_version=4)
    answers = {markers.grade_id(c): c.source for c in source.cells if markers.role(c) == markers.SOLUTION}
    nb = nbformat.read(ROOT / "labs" / "release" / f"{name}.ipynb", as_version=4)
    for c in nb.cells:
        if markers.grade_id(c) in answers:
            c.source = answers[markers.grade_id(c)]
    return nb


# --- markers and student versions (no kernel) -------------------------------------------------

def test_solution_region_becomes_an_indented_stub_and_hidden_tests_vanish():
    src = "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n"
    assert markers.strip_regions(src, "SOLUTION", STUB) == (
        "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()")
    test = "assert f(1) == 2\n### BEGIN HIDDEN TESTS\nassert f(3) == 6\n### END HIDDEN TESTS\n"
    assert markers.strip_regions(test, "HIDDEN TESTS", None) == "assert f(1) == 2"


@pytest.mark.parametrize("source, message", [
    ("### BEGIN SOLUTION\nx = 1\n", "line 1: '### BEGIN SOLUTION' is never closed"),
    ("x = 1\n### END SOLUTION\n", "line 2: '### END SOLUTION' without a matching"),
    ("### BEGIN SOLUTION\n### END HIDDEN TESTS\n", "line 2: '### END HIDDEN TESTS' without"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n", "line 2: '### BEGIN SOLUTION' inside an open"),
])
def test_unbalanced_markers_are_errors_that_name_the_line(source, message):
    with pytest.raises(ValueError, match=message):
        markers.regions(source, "lab, cell 3")


@pytest.mark.parametrize("cells, message", [
    ((cell("x = 1"), cell("assert x", "t", kind="test", points=1)), "cell 0 is a code cell without nbgrader"),
    ((cell("x = 1", "a"), cell("assert x", "a", kind="test", points=1)), "grade_id 'a' is used twice"),
    ((cell("assert True", "t", kind="test"),), "needs positive points, got None"),
    ((cell("x = 1", "s", kind="solution"), cell("assert x", "t", kind="test", points=1)),
     "a solution cell must be a code cell with a '### BEGIN SOLUTION' region"),
    ((cell("x = 1", "a"),), "has no test cells"),
])
def test_lab_conventions_are_checked_with_clear_errors(cells, message):
    with pytest.raises(ValueError, match=message):
        markers.validate_lab(tiny_lab(*cells), "lab")


def test_lab_names_follow_nn_slug():
    assert lab_name("labs/source/01_one_hot_and_deepbind.ipynb") == LAB01
    with pytest.raises(ValueError, match="'Lab 1.ipynb' must be named NN_slug"):
        lab_name("Lab 1.ipynb")


def test_checksums_are_the_ones_nbgrader_computes():
    from nbgrader.utils import compute_checksum

    release = release_notebook(nbformat.read(SOURCES[0], as_version=4), lab_name(SOURCES[0]))
    for c in release.cells:
        if markers.role(c) != markers.FREE:
            assert c.metadata.nbgrader["checksum"] == compute_checksum(c)
        if markers.role(c) in (markers.LOCKED, markers.TEST):
            assert c.metadata["editable"] is False and c.metadata["deletable"] is False


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.stem)
def test_committed_release_equals_a_fresh_generation(path):
    committed = ROOT / "labs" / "release" / path.name
    assert committed.read_text(encoding="utf-8") == release_text(path), (
        f"{committed} is stale: run `mlcourse assign`")


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.stem)
def test_release_has_no_solutions_no_hidden_tests_no_outputs(path):
    source = nbformat.read(path, as_version=4)
    release = nbformat.read(ROOT / "labs" / "release" / path.name, as_version=4)
    text = "\n".join(c.source for c in release.cells)
    assert "### BEGIN" not in text and "### END" not in text
    visible, hidden, answers = set(), set(), set()
    for c in source.cells:
        lines = c.source.splitlines()
        for r in markers.regions(c.source):
            (hidden if r.kind == "HIDDEN TESTS" else answers).update(
                line.strip() for line in lines[r.begin + 1:r.end])
        inside = {i for r in markers.regions(c.source) for i in range(r.begin, r.end + 1)}
        visible.update(line.strip() for i, line in enumerate(lines) if i not in inside)
    released_lines = {line.strip() for line in text.splitlines()}
    leaked = (hidden | answers) - visible - {"", "# YOUR CODE HERE", "raise NotImplementedError()"}
    assert leaked and not leaked & released_lines, sorted(leaked & released_lines)[:5]
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in release.cells if c.cell_type == "code")


def test_assign_writes_every_lab_and_refuses_a_broken_one(tmp_path):
    written = assign(ROOT / "labs" / "source", tmp_path / "release")
    assert [p.name for p in written] == [p.name for p in SOURCES]
    broken = tmp_path / "09_broken.ipynb"
    nbformat.write(tiny_lab(cell("### BEGIN SOLUTION\nx = 1", "a", kind="solution")), broken)
    with pytest.raises(ValueError, match=r"09_broken, cell 0 \(a\), line 1: '### BEGIN SOLUTION' is never closed"):
        assign([broken], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_report_names_are_unique_per_student_folder():
    assert report_stems(["subs/alice/01_x.ipynb", "subs/bob/01_x.ipynb"]) == ["alice__01_x", "bob__01_x"]


# --- the kernel policy (small notebooks, no torch) ----------------------------------------------

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


def test_restore_keeps_student_cells_and_puts_back_deleted_or_edited_locked_cells(tmp_path):
    """A tiny lab (no torch): what runs is the source's locked/test cells plus the student's own."""
    source = tiny_lab(
        cell("# Lab 9: tiny\n\nExpected runtime: 1 s", cell_type="markdown"),
        cell("x = 1", "setup"),
        cell("def f():\n    ### BEGIN SOLUTION\n    return 2\n    ### END SOLUTION", "f_answer", kind="solution"),
        cell("assert f() == 2\n### BEGIN HIDDEN TESTS\nassert x == 1\n### END HIDDEN TESTS", "f_tests",
             kind="test", points=2),
        cell("def g():\n    ### BEGIN SOLUTION\n    return 3\n    ### END SOLUTION", "g_answer", kind="solution"),
        cell("assert g() == 3", "g_tests", kind="test", points=1),
    )
    src_path = tmp_path / "09_tiny.ipynb"
    nbformat.write(source, src_path)
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

    report = grade_submission(sub, src_path, timeout=20)
    assert report["lab"] == "09_tiny"  # found through metadata.mlcourse.lab, not the file name
    assert {t["grade_id"]: t["problem"] for t in report["tampered"]} == {
        "setup": "source changed", "f_tests": "deleted", "g_tests": "nbgrader metadata changed"}
    assert [(q["grade_id"], q["score"], q["status"]) for q in report["questions"]] == [
        ("f_tests", 2.0, "passed"), ("g_tests", 0.0, "not implemented")]
    assert report["max_score"] == 3  # points come from the source, not from the submission
    assert [c["role"] for c in report["cells"]] == ["locked", "added", "added", "test", "solution", "test"]


# --- grading real submissions (one parallel batch, shared by the tests below) -----------------

@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    subs = tmp_path_factory.mktemp("submissions")
    for path in SOURCES:
        name = lab_name(path)
        nbformat.write(solved(name), subs / f"solved__{name}.ipynb")
        (subs / f"release__{name}.ipynb").write_text(
            (ROOT / "labs" / "release" / path.name).read_text(encoding="utf-8"), encoding="utf-8")
    for fixture in FIXTURES.glob("*.ipynb"):
        (subs / f"fixture__{fixture.name}").write_text(fixture.read_text(encoding="utf-8"), encoding="utf-8")
    out = tmp_path_factory.mktemp("reports")
    reports = grade_many([subs], ROOT / "labs" / "source", out, timeout=30, jobs=2)
    return {Path(r["submission"]).stem: r for r in reports}, out


def by_id(report):
    return {q["grade_id"]: q for q in report["questions"]}


@pytest.mark.parametrize("name", [lab_name(p) for p in SOURCES])
def test_solution_notebooks_score_full_marks(graded, name):
    report = graded[0][f"solved__{name}"]
    assert report["score"] == report["max_score"] > 0, report["questions"]
    assert report["tampered"] == [] and report["kernel_restarts"] == 0


@pytest.mark.parametrize("name", [lab_name(p) for p in SOURCES])
def test_release_notebooks_score_zero_with_only_not_implemented(graded, name):
    report = graded[0][f"release__{name}"]
    assert report["score"] == 0
    assert {q["status"] for q in report["questions"]} == {"not implemented"}
    failing = [c for c in report["cells"] if c["status"] != "ok"]
    assert failing and {c["ename"] for c in failing} == {"NotImplementedError"}, failing
    assert report["tampered"] == []


def test_partly_solved_submission_gets_exactly_its_partial_credit(graded):
    report = graded[0]["fixture__01_partial"]
    q = by_id(report)
    assert report["score"] == 4 and report["max_score"] == 10
    assert {k: v["status"] for k, v in q.items()} == {
        "one_hot_tests": "passed",
        "shuffle_tests": "failed",  # `return seq` passes the visible test; the hidden test catches it
        "deepbind_tests": "passed",
        "train_tests": "not implemented",
    }
    assert "not random" in q["shuffle_tests"]["message"]


def test_an_infinite_loop_times_out_on_its_question_only(graded):
    report = graded[0]["fixture__01_infinite_loop"]
    statuses = {k: v["status"] for k, v in by_id(report).items()}
    assert statuses == {"one_hot_tests": "passed", "shuffle_tests": "timeout",
                        "deepbind_tests": "passed", "train_tests": "passed"}
    assert report["score"] == 7
    assert [c["grade_id"] for c in report["cells"] if c["status"] == "timeout"] == ["shuffle_tests"]


def test_a_tampered_test_cell_is_caught_and_graded_with_the_original(graded):
    report = graded[0]["fixture__01_tampered"]
    assert report["tampered"] == [{"grade_id": "one_hot_tests", "problem": "source changed"}]
    q = by_id(report)
    assert q["one_hot_tests"]["tampered"] and q["one_hot_tests"]["score"] == 0
    assert "ValueError" in q["one_hot_tests"]["message"]  # the restored test feeds it an N
    assert report["score"] == 8


def test_reports_are_written_as_json_and_csv(graded):
    reports, out = graded
    rows = list(csv.DictReader((out / "grades.csv").open()))
    assert len(rows) == sum(len(r["questions"]) for r in reports.values())
    summary = {Path(r["submission"]).stem: r for r in csv.DictReader((out / "summary.csv").open())}
    assert summary["fixture__01_tampered"]["tampered"] == "one_hot_tests"
    one = json.loads((out / "fixture__01_partial.json").read_text())
    assert one["score"] == 4
    per_question = list(csv.DictReader((out / "fixture__01_partial.csv").open()))
    assert [(r["grade_id"], float(r["score"])) for r in per_question] == [
        ("one_hot_tests", 2.0), ("shuffle_tests", 0.0), ("deepbind_tests", 2.0), ("train_tests", 0.0)]


def test_cli_grades_a_file_and_reports_unreadable_ones(tmp_path):
    bad = tmp_path / "01_one_hot_and_deepbind_broken.ipynb"
    bad.write_text("{not json", encoding="utf-8")
    from mlcourse.cli import main

    assert main(["grade", str(bad), "--out", str(tmp_path / "out"), "--root", str(ROOT)]) == 1
    summary = list(csv.DictReader((tmp_path / "out" / "summary.csv").open()))
    assert "is not a readable Jupyter notebook" in summary[0]["error"]


def test_assign_check_flags_a_stale_release(tmp_path):
    from mlcourse.cli import main

    release = tmp_path / "release"
    assert main(["assign", str(SOURCES[0]), "--release", str(release)]) == 0
    assert main(["assign", str(SOURCES[0]), "--release", str(release), "--check"]) == 0
    stale = release / SOURCES[0].name
    stale.write_text(stale.read_text().replace("YOUR CODE HERE", "your code here"))
    assert main(["assign", str(SOURCES[0]), "--release", str(release), "--check"]) == 1


# --- nbgrader at class scale ------------------------------------------------------------------

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
