"""nbgrader's lab conventions: cell roles, marked regions and cell checksums.

A lab notebook follows nbgrader's format (schema version 3), so the same
source can be run through real nbgrader at class scale:

* cell metadata ``metadata.nbgrader = {"grade_id": ..., "solution": bool,
  "grade": bool, "locked": bool, "points": ..., "schema_version": 3}``;
* a **solution** cell (``solution: true``) holds student code between
  ``### BEGIN SOLUTION`` and ``### END SOLUTION`` lines;
* a **test** cell (``grade: true, locked: true``) is worth ``points``; it may
  hold ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` regions that
  students never see;
* a **locked** cell (``locked: true``) is read-only set-up or prose.

``mlcourse`` autogrades code only, so every code cell of a lab must be one of
these three kinds (no free cells, no manually graded answers): whatever a
student can edit is a solution cell, and everything else is restored from the
source before grading.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import nbformat

__all__ = [
    "SOLUTION", "TEST", "LOCKED", "FREE",
    "Region", "role", "grade_id", "points", "regions", "strip_regions",
    "nbgrader_checksum", "validate_lab", "lab_cells", "read",
]

SOLUTION, TEST, LOCKED, FREE = "solution", "test", "locked", "free"
SCHEMA_VERSION = 3

_MARKER = re.compile(r"^(?P<indent>[ \t]*)### (?P<edge>BEGIN|END) (?P<kind>SOLUTION|HIDDEN TESTS)\s*$")


@dataclass(frozen=True)
class Region:
    """A marked region of a cell: lines ``begin`` .. ``end`` (inclusive, the marker lines)."""

    kind: str  # "SOLUTION" or "HIDDEN TESTS"
    begin: int
    end: int
    indent: str


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def role(cell) -> str:
    """The cell's role: ``"solution"``, ``"test"``, ``"locked"`` or ``"free"`` (no nbgrader flags).

    Raises
    ------
    ValueError
        For roles that ``mlcourse grade`` cannot score automatically: a
        manually graded answer (``grade`` and ``solution``), a task cell, or a
        graded cell that is not locked.
    """
    meta = _meta(cell)
    grade, solution, locked = (bool(meta.get(k, False)) for k in ("grade", "solution", "locked"))
    gid = meta.get("grade_id", "?")
    if meta.get("task"):
        raise ValueError(f"cell {gid!r} is an nbgrader task cell (manual grading); mlcourse grades code only")
    if grade and solution:
        raise ValueError(
            f"cell {gid!r} is a manually graded answer (grade and solution both true); "
            "mlcourse grades code only: split it into a solution cell and a test cell"
        )
    if solution:
        return SOLUTION
    if grade:
        if not locked:
            raise ValueError(f"test cell {gid!r} must be locked (metadata nbgrader.locked = true)")
        return TEST
    return LOCKED if locked else FREE


def grade_id(cell) -> str | None:
    """The cell's ``nbgrader.grade_id`` (None for a cell without nbgrader metadata)."""
    return _meta(cell).get("grade_id")


def points(cell) -> float:
    """Points a test cell is worth (0 for other cells)."""
    return float(_meta(cell).get("points", 0)) if _meta(cell).get("grade") else 0.0


def regions(source: str, where: str = "cell") -> list[Region]:
    """The marked regions in a cell's source, checked for balance.

    Raises
    ------
    ValueError
        If a BEGIN has no END (or the other way round), the kinds do not
        match, or regions nest. ``where`` names the cell in the message.
    """
    found, open_ = [], None
    for i, line in enumerate(source.splitlines()):
        m = _MARKER.match(line)
        if not m:
            continue
        kind = m["kind"]
        if m["edge"] == "BEGIN":
            if open_ is not None:
                raise ValueError(f"{where}, line {i + 1}: '### BEGIN {kind}' inside an open "
                                 f"'### BEGIN {open_[0]}' (line {open_[1] + 1}); regions do not nest")
            open_ = (kind, i, m["indent"])
        else:
            if open_ is None or open_[0] != kind:
                raise ValueError(f"{where}, line {i + 1}: '### END {kind}' without a matching "
                                 f"'### BEGIN {kind}'")
            found.append(Region(kind, open_[1], i, open_[2]))
            open_ = None
    if open_ is not None:
        raise ValueError(f"{where}, line {open_[1] + 1}: '### BEGIN {open_[0]}' is never closed")
    return found


def strip_regions(source: str, kind: str, stub: str | None, where: str = "cell") -> str:
    """Replace every ``kind`` region (markers included) by ``stub`` lines, or drop it if None.

    The stub is indented like the BEGIN marker, so a solution inside a
    function body becomes a stub inside that body.
    """
    lines = source.splitlines()
    out, cursor = [], 0
    for region in regions(source, where):
        if region.kind != kind:
            continue
        out.extend(lines[cursor:region.begin])
        if stub is not None:
            out.extend(region.indent + s for s in stub.splitlines())
        cursor = region.end + 1
    out.extend(lines[cursor:])
    text = "\n".join(out)
    return text.rstrip() if kind == "HIDDEN TESTS" else text


def nbgrader_checksum(cell) -> str:
    """The checksum nbgrader stores on each of its cells, so ``nbgrader validate`` accepts our releases.

    nbgrader's definition: the MD5 of the cell's source, its type, its
    ``grade``/``solution``/``locked`` flags (as Python's ``str(bool)``), its
    grade id and, for a test cell, its points as a float.
    """
    meta = _meta(cell)
    flags = [bool(meta.get(k, False)) for k in ("grade", "solution", "locked")]
    parts = [cell.source, cell.cell_type, *map(str, flags), meta["grade_id"]]
    if flags[0]:
        parts.append(str(float(meta["points"])))
    digest = hashlib.md5(usedforsecurity=False)
    for part in parts:
        digest.update(part.encode("utf-8"))
    return digest.hexdigest()


def validate_lab(nb, name: str = "lab") -> None:
    """Check a source lab against the conventions above; raise ValueError naming the first bad cell.

    Checks: nbgrader schema version 3; a unique ``grade_id`` on every nbgrader
    cell; positive points on test cells; balanced markers; SOLUTION regions
    only in solution cells and HIDDEN TESTS only in test cells; every code
    cell has a role; at least one test cell.
    """
    seen: dict[str, int] = {}
    n_tests = 0
    for i, cell in enumerate(nb.cells):
        where = f"{name}, cell {i}"
        kind = role(cell)
        meta = _meta(cell)
        if kind == FREE:
            if cell.cell_type == "code":
                raise ValueError(f"{where} is a code cell without nbgrader metadata: mark it as a "
                                 "solution, test or locked cell (students may edit only solution cells)")
            if regions(cell.source, where):
                raise ValueError(f"{where} has nbgrader markers but no nbgrader metadata")
            continue
        gid = meta.get("grade_id")
        if not gid or not re.fullmatch(r"[A-Za-z0-9_\-]+", str(gid)):
            raise ValueError(f"{where}: grade_id {gid!r} must be a non-empty word (letters, digits, _ or -)")
        if gid in seen:
            raise ValueError(f"{where}: grade_id {gid!r} is used twice (also cell {seen[gid]})")
        seen[gid] = i
        if meta.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"{where} ({gid}): nbgrader schema_version is "
                             f"{meta.get('schema_version')!r}, expected {SCHEMA_VERSION}")
        kinds = {r.kind for r in regions(cell.source, f"{where} ({gid})")}
        if kind == SOLUTION and (cell.cell_type != "code" or kinds != {"SOLUTION"}):
            raise ValueError(f"{where} ({gid}): a solution cell must be a code cell with "
                             f"a '### BEGIN SOLUTION' region and nothing else marked, found {sorted(kinds)}")
        if kind != SOLUTION and "SOLUTION" in kinds:
            raise ValueError(f"{where} ({gid}) has a SOLUTION region but is not a solution cell")
        if kind != TEST and "HIDDEN TESTS" in kinds:
            raise ValueError(f"{where} ({gid}) has a HIDDEN TESTS region but is not a test cell")
        if kind == TEST:
            n_tests += 1
            pts = meta.get("points")
            if not isinstance(pts, int | float) or isinstance(pts, bool) or pts <= 0:
                raise ValueError(f"{where} ({gid}): a test cell needs positive points, got {pts!r}")
            if cell.cell_type != "code":
                raise ValueError(f"{where} ({gid}): a test cell must be a code cell")
    if n_tests == 0:
        raise ValueError(f"{name} has no test cells (nbgrader.grade = true): nothing to grade")


def lab_cells(nb) -> dict[str, tuple[int, object]]:
    """Map grade id -> (index, cell) for every nbgrader cell of a (validated) notebook."""
    return {grade_id(c): (i, c) for i, c in enumerate(nb.cells) if grade_id(c)}


def read(path) -> nbformat.NotebookNode:
    """Read a notebook as nbformat 4, with a clear error for a file that is not one."""
    try:
        return nbformat.read(str(path), as_version=4)
    except Exception as err:  # nbformat raises several kinds for broken JSON / schema
        raise ValueError(f"{path} is not a readable Jupyter notebook: {type(err).__name__}: {err}") from None
