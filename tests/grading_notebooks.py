"""Notebooks for the grading tests: cells with nbgrader metadata, and labs made of them.

Shared by ``test_grading.py`` (markers, student versions, lab 1's graded batch)
and ``test_grading_kernels.py`` (the kernel policy, the sandbox, tiny labs
graded end to end), two modules so that the test workers run them at once.
"""

from pathlib import Path

import nbformat

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "grading"  # submissions written by hand, attacks included
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
    """A notebook made of ``cells``."""
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    return nb

