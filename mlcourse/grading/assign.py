"""``mlcourse assign``: turn source labs (with solutions) into student versions.

What a student gets, cell by cell (as nbgrader's ``generate_assignment``):

* solution cells: each ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region
  becomes ``# YOUR CODE HERE`` + ``raise NotImplementedError()``, indented
  like the marker;
* test cells: ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` regions
  are removed; the visible tests stay, so students can check themselves;
* test and locked cells: marked read-only for Jupyter (``editable`` and
  ``deletable`` false);
* every nbgrader cell: nbgrader's checksum, so a changed locked or test cell
  is detected (``mlcourse grade`` or ``nbgrader validate``) and an untouched
  stub is recognised;
* every code cell: outputs and execution counts cleared.

The output is deterministic, so the committed ``labs/release/`` can be
checked against a fresh generation.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat

from mlcourse.files import atomic_write_text
from mlcourse.grading import markers

__all__ = ["STUB", "release_notebook", "release_text", "assign", "lab_name", "lab_files"]

STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
_LAB_NAME = re.compile(r"\d\d_[a-z0-9_]+")


def lab_name(path) -> str:
    """The lab's name, ``NN_slug``, from its file name; ValueError for any other name."""
    stem = Path(path).stem
    if not _LAB_NAME.fullmatch(stem):
        raise ValueError(f"lab file {Path(path).name!r} must be named NN_slug.ipynb "
                         "(two digits, underscore, lower-case words joined by underscores)")
    return stem


def release_notebook(source, name: str) -> nbformat.NotebookNode:
    """The student version of a source lab notebook (the source is not modified).

    Parameters
    ----------
    source : nbformat.NotebookNode
        The lab with solutions and hidden tests.
    name : str
        The lab's name (``NN_slug``), recorded in ``metadata.mlcourse.lab`` so
        that ``mlcourse grade`` finds the source of a submission.

    Raises
    ------
    ValueError
        If the source breaks the lab conventions (see :mod:`.markers`).
    """
    markers.validate_lab(source, name)
    nb = copy.deepcopy(source)
    for i, cell in enumerate(nb.cells):
        kind = markers.role(cell)
        where = f"{name}, cell {i}"
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        if kind == markers.SOLUTION:
            cell.source = markers.strip_regions(cell.source, "SOLUTION", STUB, where)
        elif kind == markers.TEST:
            cell.source = markers.strip_regions(cell.source, "HIDDEN TESTS", None, where)
        if kind != markers.FREE:
            cell.metadata.nbgrader["checksum"] = markers.nbgrader_checksum(cell)
        if kind in (markers.TEST, markers.LOCKED):
            cell.metadata["editable"] = False
            cell.metadata["deletable"] = False
    nb.metadata["mlcourse"] = {"lab": name}
    return nb


def release_text(source_path) -> str:
    """The release notebook for ``source_path`` as the exact text ``assign`` writes."""
    source = markers.read(source_path)
    return nbformat.writes(release_notebook(source, lab_name(source_path))) + "\n"


def assign(sources, release_dir) -> list[Path]:
    """Write the student version of each source lab into ``release_dir`` (atomically).

    Parameters
    ----------
    sources : path or list of paths
        Lab notebooks, or a folder of them (``NN_slug.ipynb``).
    release_dir : path
        Where the student versions go (same file names).

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    ValueError
        If a source breaks the conventions, or ``release_dir`` is a source folder or inside one.
    """
    paths = lab_files(sources)
    release = Path(release_dir).resolve()
    for folder in {p.resolve().parent for p in paths}:
        if release == folder or folder in release.parents:
            raise ValueError(f"release folder {release_dir} is the source folder {folder} or inside it: the "
                             "student versions would overwrite or sit beside the solutions; choose another folder")
    texts = [(Path(release_dir) / p.name, release_text(p)) for p in paths]  # all checked first
    for target, text in texts:
        atomic_write_text(target, text)
    return [t for t, _ in texts]


def lab_files(sources) -> list[Path]:
    items = [sources] if isinstance(sources, str | Path) else list(sources)
    paths: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            found = sorted(item.glob("[0-9][0-9]_*.ipynb"))
            if not found:
                raise ValueError(f"no lab notebooks (NN_slug.ipynb) in folder {item}")
            paths.extend(found)
        elif item.is_file():
            paths.append(item)
        else:
            raise ValueError(f"source lab {item} does not exist")
    return paths
