"""`mlcourse run` (behind `make run`) executes notebooks and renders them; failures are reported."""

import nbformat
from conftest import ROOT
from nbformat.v4 import new_code_cell, new_notebook

from mlcourse import cli


def test_run_renders_executed_html(tmp_path):
    overview = ROOT / "lectures" / "00_course_overview.ipynb"
    code = cli.main(["run", str(overview), "--fast", "--root", str(ROOT), "--out", str(tmp_path)])
    assert code == 0
    html = (tmp_path / "00_course_overview.html").read_text()
    assert "FAST mode - e.g. training examples: 2000" in html  # the cell ran, in FAST mode


def test_a_failing_notebook_fails_the_run_and_writes_nothing(tmp_path):
    broken = tmp_path / "01_broken.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("raise RuntimeError('boom')")]), broken)
    out = tmp_path / "build"
    code = cli.main(["run", str(broken), "--root", str(ROOT), "--out", str(out)])
    assert code == 1
    assert not out.exists() or not list(out.iterdir())
