"""Notebooks are committed clean, named NN_slug.ipynb, open with a title and a runtime estimate,
and the course overview lists exactly the lectures and labs that exist."""

import re

import nbformat
import pytest
from conftest import ROOT

LECTURES = sorted((ROOT / "lectures").glob("*.ipynb"))
LABS = sorted((ROOT / "labs").glob("*/*.ipynb"))
NOTEBOOKS = LECTURES + LABS
NAME = re.compile(r"^\d\d_[a-z0-9]+(_[a-z0-9]+)*\.ipynb$")


def ids(paths):
    return [str(p.relative_to(ROOT)) for p in paths]


def test_there_are_lectures():
    assert LECTURES, "no lectures found under lectures/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count"))]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs or execution counts; clear them"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_name_and_first_cell(path):
    assert NAME.match(path.name), f"{path.name} is not named NN_slug.ipynb"
    first = nbformat.read(path, as_version=4).cells[0]
    assert first.cell_type == "markdown", f"{path.name}: the first cell must be markdown"
    assert first.source.lstrip().startswith("# "), f"{path.name}: the first cell must open with a title"
    assert re.search(r"runtime", first.source, re.I) and re.search(r"\d+\s*(s|sec|min)", first.source), (
        f"{path.name}: the first cell must give an expected runtime, e.g. 'Expected runtime: ~5 min'"
    )


@pytest.mark.parametrize("path", LECTURES, ids=ids(LECTURES))
def test_lectures_start_with_setup(path):
    cells = nbformat.read(path, as_version=4).cells
    code = next(c for c in cells if c.cell_type == "code")
    assert "import mlcourse" in code.source and "mlcourse.setup(seed=" in code.source, (
        f"{path.name}: the first code cell must import mlcourse and call mlcourse.setup(seed=...)"
    )


def test_overview_lists_every_lecture_and_lab():
    overview = nbformat.read(ROOT / "lectures" / "00_course_overview.ipynb", as_version=4)
    text = "\n".join(c.source for c in overview.cells if c.cell_type == "markdown")
    listed_lectures = set(re.findall(r"lectures/(\d\d_[a-z0-9_]+\.ipynb)", text))
    listed_labs = set(re.findall(r"labs/release/(\d\d_[a-z0-9_]+\.ipynb)", text))
    assert listed_lectures == {p.name for p in LECTURES}
    assert listed_labs == {p.name for p in (ROOT / "labs" / "source").glob("*.ipynb")}
