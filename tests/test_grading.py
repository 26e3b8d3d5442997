"""mlcourse.grading: markers, student versions, verdicts judged outside the kernel, lab 1 graded.

The expensive part (running notebooks) happens once: the module-scoped
``graded`` fixture grades lab 1's solved and student versions plus the
hand-written and adversarial fixtures in ``tests/fixtures/grading`` in one
parallel batch (after lab 1's reference), and the tests read its reports.
The other labs' reference runs are in ``test_grading_references.py``, and the
kernel policy, the sandbox and tiny labs graded end to end in
``test_grading_kernels.py``: modules of their own, so that the test workers
run them while one worker grades lab 1's submissions.
"""

import csv
import json
from pathlib import Path

import nbformat
import pytest
from grading_notebooks import FIXTURES, LAB01, cell, tiny_lab

from mlcourse.grading import checks, markers, probe, sandbox
from mlcourse.grading.assign import STUB, assign, lab_name, release_notebook, release_text
from mlcourse.grading.batch import grade_many, lms_table, report_key, submissions_in
from mlcourse.grading.grade import lab_id_of

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "labs" / "source").glob("[0-9][0-9]_*.ipynb"))


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
    broken = tmp_path / "src" / "09_broken.ipynb"
    broken.parent.mkdir()
    nbformat.write(tiny_lab(cell("### BEGIN SOLUTION\nx = 1", "a", kind="solution")), broken)
    with pytest.raises(ValueError, match=r"09_broken, cell 0 \(a\), line 1: '### BEGIN SOLUTION' is never closed"):
        assign([broken], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_assign_refuses_a_release_folder_equal_to_or_inside_the_source(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    (source / SOURCES[0].name).write_bytes(SOURCES[0].read_bytes())
    for release in (source, source / "release"):
        with pytest.raises(ValueError, match="is the source folder .* or inside it"):
            assign(source, release)
    assert (source / SOURCES[0].name).read_bytes() == SOURCES[0].read_bytes()
    assert not (source / "release").exists()


# --- verdicts outside the kernel (no kernel) ----------------------------------------------------

def _records(check, *values):
    return [{"value": probe.encode(v)} for v in values]


def test_the_first_leaf_is_the_students_and_the_rest_come_from_the_reference_run():
    import numpy as np

    _, (c,) , _ = checks.instrument("assert np.array_equal(f(s), ref(s)), 'f of ' + 'x'", "q", 1)
    assert c.clauses == ["np.array_equal(_L[0], _L[1])"] and not c.guessable
    right, wrong = np.eye(2), np.zeros((2, 2))
    reference = _records(c, right, right)
    assert checks.judge(c, _records(c, right, wrong), reference)["passed"]
    # a kernel that sends its own (wrong) reference next to a wrong answer still fails
    verdict = checks.judge(c, _records(c, wrong, wrong), reference)
    assert not verdict["passed"] and "got ndarray of shape (2, 2)" in verdict["why"]
    error = checks.judge(c, [{"error": "ValueError: bad"}, {"value": None}], reference)
    assert error == {"passed": False, "why": "raised ValueError: bad"}


def test_clauses_thresholds_and_guessable_checks():
    src = "assert isinstance(x, list) and len(x) >= 2, f'got {x}'\nassert auc(m) >= 0.85\n"
    rewritten, (both, auc), parts = checks.instrument(src, "q", 3)
    assert "__mlcourse_check__('q:0'" in rewritten and "assert" not in rewritten
    assert both.skeleton == "_C[0] and _C[1]" and both.subjects == [0, 1] and both.hint == "got ..."
    assert auc.guessable and parts == [("", 3.0)]
    assert checks.judge(auc, _records(auc, 0.9), _records(auc, 0.95))["passed"]
    assert not checks.judge(auc, _records(auc, 0.8), _records(auc, 0.95))["passed"]
    assert not checks.judge(both, _records(both, True, [1]), _records(both, True, [1, 2]))["passed"]


def test_parts_split_a_question_and_cannot_exceed_its_points():
    src = "assert a == 1\n# PART 1 point: lower case\nassert b == 2\n"
    _, found, parts = checks.instrument(src, "q", 3)
    assert parts == [("", 2.0), ("lower case", 1.0)] and [c.part for c in found] == [0, 1]
    with pytest.raises(ValueError, match="give 4 points, more than the cell's 3"):
        checks.instrument("assert a\n# PART 4 points: all\nassert b", "q", 3)


def test_plain_values_round_trip_and_nothing_else_decodes():
    import numpy as np
    import torch

    value = {"a": (1, 2.5, None), "b": [np.arange(3, dtype=np.int16)], "c": torch.ones(2, 2), "d": {"x"},
             "e": np.float32, "f": torch.float64}
    out = probe.decode(probe.encode(value))
    assert out["a"] == (1, 2.5, None) and out["b"][0].dtype == np.int16 and out["d"] == {"x"}
    assert torch.equal(out["c"], torch.ones(2, 2)) and out["e"] == np.dtype("float32") and out["f"] is torch.float64
    assert isinstance(probe.decode(probe.encode(object())), probe.Opaque)
    assert isinstance(probe.decode(probe.encode(np.array([object()]))), probe.Opaque)
    for bad in ({"__pickle__": "gASV"}, {"__ndarray__": {"dtype": "|O", "shape": [1], "b64": ""}},
                {"__ndarray__": {"dtype": "<f8", "shape": [2], "b64": "AAAA"}}):
        with pytest.raises(ValueError):
            probe.decode(bad)


# --- answer keys, student ids, tables (no kernel) -------------------------------------------

def test_the_answer_key_comes_from_the_source_by_id_never_from_a_path():
    labs = {LAB01: Path("src") / f"{LAB01}.ipynb"}
    nb = nbformat.v4.new_notebook(metadata={"mlcourse": {"lab": f"../../subs/x/{LAB01}"}})
    lab, flags = lab_id_of(nb, Path(f"subs/eve/{LAB01}.ipynb"), labs)  # the path is ignored, the name counts
    assert lab == LAB01 and flags[0]["kind"] == "lab id" and "ignored" in flags[0]["detail"]
    nb.metadata["mlcourse"]["lab"] = "/abs/path/09_other"
    with pytest.raises(ValueError, match="matches no source lab"):
        lab_id_of(nb, Path("subs/eve/whatever.ipynb"), labs)
    nb.metadata["mlcourse"]["lab"] = LAB01
    assert lab_id_of(nb, Path("subs/eve/whatever.ipynb"), labs) == (LAB01, [])


def test_students_get_stable_unique_report_names(tmp_path):
    for folder in ("a b", "a_b", "a~20b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / f"{LAB01}.ipynb").write_text("{}")
    found = submissions_in([tmp_path])
    assert [s for _, s in found] == ["a b", "a_b", "a~20b"]
    keys = [report_key(s, LAB01) for _, s in found]
    assert len(set(keys)) == 3 and keys[0] == f"a~20b--{LAB01}" and keys[2] == f"a~7E20b--{LAB01}"
    for alone in (tmp_path / "a b" / f"{LAB01}.ipynb", tmp_path / "a b"):  # graded alone: the same id
        assert submissions_in([alone])[0][1] == "a b"


def test_lms_table_has_one_row_per_student_and_points_possible():
    fields, rows = lms_table([{"student": "bob", "lab": "01_x", "score": 4, "max_score": 10},
                              {"student": "al", "lab": "02_y", "score": 7, "max_score": 8},
                              {"student": "bob", "lab": "02_y", "score": 8, "max_score": 8}])
    assert fields == ["Student", "SIS Login ID", "01_x", "02_y"]
    assert rows[0] == {"Student": "Points Possible", "SIS Login ID": "", "01_x": 10, "02_y": 8}
    assert rows[2] == {"Student": "bob", "SIS Login ID": "bob", "01_x": 4, "02_y": 8}


def test_grading_without_bubblewrap_is_refused_unless_asked(monkeypatch):
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    with pytest.raises(ValueError, match="bubblewrap .* is not installed.* pass --no-sandbox"):
        sandbox.require(no_sandbox=False)
    sandbox.require(no_sandbox=True)
    from mlcourse.cli import main

    assert main(["grade", "nothing.ipynb", "--root", str(ROOT)]) == 2


# --- grading real submissions of lab 1 (one parallel batch, shared by the tests below) -------

ATTACKER = "01_attack_answer_key_compare_source_neighbours"
LAB01_TIMEOUT = 15


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    subs = tmp_path_factory.mktemp("submissions")
    nbformat.write(solved(LAB01), (subs / "solved").mkdir() or subs / "solved" / f"{LAB01}.ipynb")
    (subs / "release").mkdir()
    (subs / "release" / f"{LAB01}.ipynb").write_bytes((ROOT / "labs" / "release" / f"{LAB01}.ipynb").read_bytes())
    for fixture in FIXTURES.glob("*.ipynb"):
        (subs / fixture.stem).mkdir()
        (subs / fixture.stem / f"{LAB01}.ipynb").write_bytes(fixture.read_bytes())
    # the attacker's metadata points here: a decoy answer key whose tests pass anything
    decoy = subs.parent / "decoy"
    decoy.mkdir(exist_ok=True)
    nbformat.write(tiny_lab(cell("assert True", "one_hot_tests", kind="test", points=10)), decoy / f"{LAB01}.ipynb")
    out = tmp_path_factory.mktemp("reports")
    # Lab 1's slowest cell (its set-up, importing torch) takes 2.8 s on an idle 2-core machine and
    # its training test 1.5 s; the infinite loop spins a core until the timeout, so 15 s (5x the
    # slowest cell, not the grader's 60 s default) keeps the fixture's longest submission short.
    reports = grade_many([subs], ROOT / "labs" / "source", out, timeout=LAB01_TIMEOUT, jobs=2)
    return {r["student"]: r for r in reports}, out


def by_id(report):
    return {q["grade_id"]: q for q in report["questions"]}


def kinds(report):
    return sorted({f["kind"] for f in report["flags"]})


def test_solution_scores_full_marks_and_the_release_zero(graded):
    full, empty = graded[0]["solved"], graded[0]["release"]
    assert full["score"] == full["max_score"] == 10, [(q["grade_id"], q["message"]) for q in full["questions"]]
    assert full["flags"] == [] and full["kernel_restarts"] == 0
    assert empty["score"] == 0 and {q["status"] for q in empty["questions"]} == {"not implemented"}


def test_partly_solved_submission_gets_exactly_its_partial_credit(graded):
    report = graded[0]["01_partial"]
    q = by_id(report)
    assert report["score"] == 4 and report["max_score"] == 10
    assert {k: v["status"] for k, v in q.items()} == {
        "one_hot_tests": "passed", "shuffle_tests": "failed", "deepbind_tests": "passed",
        "train_tests": "not implemented"}
    assert "not random" in q["shuffle_tests"]["message"]  # `return seq` fails only the hidden check
    failed = [c for c in q["shuffle_tests"]["checks"] if not c["passed"]]
    assert [c["hidden"] for c in failed] == [True]


def test_an_infinite_loop_times_out_on_its_question_only(graded):
    report = graded[0]["01_infinite_loop"]
    assert {k: v["status"] for k, v in by_id(report).items()} == {
        "one_hot_tests": "passed", "shuffle_tests": "timeout", "deepbind_tests": "passed", "train_tests": "passed"}
    assert report["score"] == 7


def test_a_tampered_test_cell_is_caught_and_graded_with_the_original(graded):
    report = graded[0]["01_tampered"]
    assert report["tampered"] == [{"grade_id": "one_hot_tests", "problem": "source changed"}]
    assert by_id(report)["one_hot_tests"]["score"] == 0 and report["score"] == 8 and "tampered" in kinds(report)


def test_a_crashing_answer_costs_its_question_only(graded):
    report = graded[0]["01_crash"]
    assert by_id(report)["shuffle_tests"]["status"] == "crashed" and report["score"] == 7
    assert report["kernel_restarts"] == 1 and "crashed" in kinds(report)


def test_silenced_tests_score_nothing_and_are_flagged(graded):
    """Attack: an input transformer turns later cells into `pass`, and run_cell is patched."""
    report = graded[0]["01_attack_silence_tests"]
    assert report["score"] == 0
    assert [f["detail"].split(":")[0] for f in report["flags"] if f["kind"] == "tests silenced"] == [
        "one_hot_tests", "shuffle_tests", "deepbind_tests", "train_tests"]


def test_the_attacker_scores_only_what_it_solved_and_reaches_nothing(graded):
    """Attacks: answer key by path, patched comparisons, reading the solution, others' files, processes."""
    report = graded[0][ATTACKER]
    assert report["lab"] == LAB01 and report["source"] == str(ROOT / "labs" / "source" / f"{LAB01}.ipynb")
    q = by_id(report)
    assert report["score"] == 2 and q["deepbind_tests"]["score"] == 2  # solved honestly
    assert q["one_hot_tests"]["score"] == 0 and q["shuffle_tests"]["score"] == 0  # stub, stolen solution
    assert kinds(report) == ["kernel disagrees", "lab id", "output limit", "sandbox"]
    details = " ".join(f["detail"] for f in report["flags"])
    assert "FileNotFoundError" in details and "Read-only file system" in details and "MemoryError" in details
    assert "Network is unreachable" in details
    assert graded[0]["solved"]["score"] == 10  # the neighbours' hand-ins were out of reach
    assert (FIXTURES / "01_partial.ipynb").read_text().startswith("{")


def test_reports_tables_and_feedback_are_written(graded):
    reports, out = graded
    rows = list(csv.DictReader((out / "grades.csv").open()))
    assert len(rows) == sum(len(r["questions"]) for r in reports.values())
    summary = {r["student"]: r for r in csv.DictReader((out / "summary.csv").open())}
    assert summary["01_tampered"]["flags"] == "tampered" and summary["solved"]["score"] == "10.0"
    one = json.loads((out / "reports" / "01_partial--01_one_hot_and_deepbind.json").read_text())
    assert one["score"] == 4
    page = (out / "feedback" / "01_partial--01_one_hot_and_deepbind.html").read_text()
    hidden_source = "draws = {shuffle_dinucleotides(s, np.random.default_rng(k)) for k in range(8)}"
    assert "the shuffle is not random" in page and hidden_source not in page and "4 / 10" in page


def test_cli_grades_a_file_and_reports_unreadable_ones(tmp_path, capsys):
    bad = tmp_path / "01_one_hot_and_deepbind_broken.ipynb"
    bad.write_text("{not json", encoding="utf-8")
    from mlcourse.cli import main

    assert main(["grade", str(bad), "--out", str(tmp_path / "out"), "--root", str(ROOT)]) == 1
    assert "is not a readable Jupyter notebook" in capsys.readouterr().err

# --- nbgrader at class scale ------------------------------------------------------------------


def test_assign_check_flags_a_stale_release(tmp_path):
    from mlcourse.cli import main

    release = tmp_path / "release"
    assert main(["assign", str(SOURCES[0]), "--release", str(release)]) == 0
    assert main(["assign", str(SOURCES[0]), "--release", str(release), "--check"]) == 0
    stale = release / SOURCES[0].name
    stale.write_text(stale.read_text().replace("YOUR CODE HERE", "your code here"))
    assert main(["assign", str(SOURCES[0]), "--release", str(release), "--check"]) == 1
