"""Findings as checks: every lecture states its key results as ``mlcourse.check(...)`` lines.

A lecture's prose makes claims ("the class-optimised PWM is CTCF"). A check
turns a claim into a test the notebook runs on the numbers it just computed::

    mlcourse.check("class-optimised PWM matches JASPAR CTCF", similarity, ">=", 0.8)

prints one line for the student::

    ✓ holds: class-optimised PWM matches JASPAR CTCF — 0.86 >= 0.8

What happens when a finding does *not* hold depends on the mode:

- **full mode** (what students run): :class:`FindingFailed` is raised, so the
  run stops at the claim the numbers contradict.
- **FAST mode** (``MLCOURSE_FAST=1``, the tests): the sizes are too small for
  the claims, so the check only prints ``✗ does not hold (FAST mode, not an error)``.
- **a findings run** (``make findings`` / ``mlcourse run --findings``): every
  check is recorded to the file named by ``MLCOURSE_FINDINGS`` instead of
  raising, so one run lists *all* findings of all lectures; the run then fails
  if any of them does not hold (see :mod:`mlcourse.notebooks`).
"""

from __future__ import annotations

import json
import math
import numbers
import operator
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from mlcourse.config import is_fast

__all__ = ["Finding", "FindingFailed", "check", "judge", "format_value", "read_records", "load_summary",
           "runtime_table", "overlapping_text", "watch_figures", "read_figure_records", "RECORD_ENV",
           "FIGURES_ENV"]

RECORD_ENV = "MLCOURSE_FINDINGS"
"""Environment variable: a file to which :func:`check` appends one JSON line per finding."""

FIGURES_ENV = "MLCOURSE_FIGURES"
"""Environment variable: a file to which :func:`watch_figures` appends one JSON line per figure shown."""

_OPS = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
    "between": lambda value, bounds: bounds[0] <= value <= bounds[1],
}


class FindingFailed(AssertionError):
    """A lecture's finding does not hold on the numbers the notebook computed (full mode)."""


@dataclass(frozen=True)
class Finding:
    """One checked claim: ``value op expected`` and whether it holds.

    ``value`` and ``expected`` are kept as plain Python numbers or strings
    (NumPy and torch scalars are converted), so a finding can be written to JSON.
    """

    name: str
    value: object
    op: str
    expected: object
    holds: bool

    @property
    def expectation(self) -> str:
        """The claim as text, e.g. ``">= 0.8"`` or ``"between 0.2 and 0.4"``."""
        if self.op == "between":
            low, high = self.expected
            return f"between {format_value(low)} and {format_value(high)}"
        return f"{self.op} {format_value(self.expected)}"

    @classmethod
    def from_record(cls, data: dict) -> Finding:
        """The finding from its JSON record (``(low, high)`` bounds come back as a list)."""
        expected = data["expected"]
        return cls(**{**data, "expected": tuple(expected) if isinstance(expected, list) else expected})

    def verdict(self) -> str:
        """The one line shown to the student."""
        mark = "✓ holds" if self.holds else "✗ does not hold"
        return f"{mark}: {self.name} — {format_value(self.value)} {self.expectation}"


def format_value(value) -> str:
    """A number as a student reads it: 3 significant digits, thousands separated; text as is.

    >>> format_value(0.8612), format_value(12345), format_value(1234.5), format_value("CTCF")
    ('0.861', '12,345', '1,234', 'CTCF')
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    if isinstance(value, numbers.Integral):
        return f"{value:,}"
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if value != 0 and abs(value) < 1e-3:
        return f"{value:.2e}"
    return f"{value:.3g}"


def _plain(value, where: str):
    """A Python number or string from ``value`` (NumPy / torch scalars included)."""
    if isinstance(value, (str, bool, numbers.Number)):
        return value.item() if hasattr(value, "item") else value
    if hasattr(value, "item"):  # numpy or torch scalar (or one-element array / tensor)
        try:
            return value.item()
        except (ValueError, RuntimeError):
            pass
    raise ValueError(f"{where} must be a number or a string, got {type(value).__name__} {value!r}")


def judge(name: str, value, op: str, expected) -> Finding:
    """Evaluate ``value op expected`` without printing or raising: the pure part of :func:`check`.

    Parameters
    ----------
    name : str
        The finding, in words (what the lecture claims).
    value : number or str
        What the notebook measured.
    op : str
        One of ``>= > <= < == !=`` or ``"between"`` (then ``expected`` is
        ``(low, high)``, both ends included).
    expected : number, str or (low, high)

    Returns
    -------
    Finding
        A NaN value never holds.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a finding needs a name (the claim in words), got {name!r}")
    if op not in _OPS:
        raise ValueError(f"op {op!r} in finding {name!r} is not one of {', '.join(_OPS)}")
    value = _plain(value, f"the value of finding {name!r}")
    if op == "between":
        if not isinstance(expected, (tuple, list)) or len(expected) != 2:
            raise ValueError(f"op 'between' in finding {name!r} needs expected=(low, high), got {expected!r}")
        expected = tuple(_plain(e, f"a bound of finding {name!r}") for e in expected)
        if expected[0] > expected[1]:
            raise ValueError(f"finding {name!r}: low bound {expected[0]!r} is above high bound {expected[1]!r}")
    else:
        expected = _plain(expected, f"the expected value of finding {name!r}")
    if isinstance(value, str) != isinstance(expected[0] if op == "between" else expected, str):
        raise ValueError(f"finding {name!r} compares {value!r} with {expected!r}: a number with text")
    nan = isinstance(value, float) and math.isnan(value)
    holds = (not nan) and bool(_OPS[op](value, expected))
    return Finding(name.strip(), value, op, expected, holds)


def check(name: str, value, op: str, expected) -> None:
    """State a lecture's finding and check it on the measured ``value``; print the verdict.

    Parameters are those of :func:`judge`. In full mode a finding that does
    not hold raises :class:`FindingFailed`; in FAST mode it only prints; in a
    findings run (``MLCOURSE_FINDINGS`` set) every finding is recorded and
    none raises.

    Examples
    --------
    >>> check("the test AUC is high", 0.97, ">=", 0.9)
    ✓ holds: the test AUC is high — 0.97 >= 0.9
    """
    finding = judge(name, value, op, expected)
    record_to = os.environ.get(RECORD_ENV)
    note = ""
    if not finding.holds and is_fast():
        note = " (FAST mode: small sizes, not an error)"
    print(finding.verdict() + note)
    if record_to:
        with open(record_to, "a", encoding="utf-8") as f:
            f.write(json.dumps(asdict(finding)) + "\n")
    elif not finding.holds and not is_fast():
        raise FindingFailed(f"the lecture's finding does not hold: {finding.verdict()}")


def _read_lines(path, what: str, parse) -> list:
    """``parse`` applied to each JSON line of a record file (``[]`` if there is none yet).

    A line that does not parse raises ``ValueError`` naming the file, the line
    and ``what`` it should have been.
    """
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(parse(json.loads(line)))
        except (json.JSONDecodeError, TypeError, KeyError) as err:
            raise ValueError(f"{path}, line {number}: not {what} ({err})") from None
    return records


def read_records(path) -> list[Finding]:
    """The findings a notebook recorded (one JSON line each) during a findings run."""
    return _read_lines(path, "a finding record", Finding.from_record)


def load_summary(path) -> dict:
    """The summary of a findings run, or ``{}`` if there is none.

    ``path`` is a ``findings.json``, or the course folder: then its
    ``build/findings.json`` (the student's last ``make findings``) or, before
    the first run, ``data/findings.json`` (shipped with the course, measured by
    its authors on the machine it names).
    """
    path = Path(path)
    if path.is_dir():
        path = next((p for p in (path / "build" / "findings.json", path / "data" / "findings.json")
                     if p.exists()), path / "build" / "findings.json")
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not a findings summary: {err}") from None


def runtime_table(summary: dict, lectures=None):
    """Per lecture: measured runtime (minutes), findings that hold, and when it was measured.

    ``lectures`` (notebook names, e.g. ``"05_sis_mnist"``) adds a row for each
    lecture the summary lacks ("not measured"). The last row is the total of
    the measured lectures. Returns a pandas DataFrame.
    """
    import pandas as pd

    entries = {entry["notebook"]: entry for entry in summary.get("lectures", [])}
    rows = []
    for name in sorted(set(entries) | set(lectures or ())):
        entry = entries.get(name)
        if entry is None:
            rows.append({"lecture": name, "minutes": None, "findings that hold": "not measured",
                         "mode": "", "measured": ""})
            continue
        found = [Finding.from_record(f) for f in entry["findings"]]
        rows.append({"lecture": name, "minutes": round(entry["runtime_s"] / 60, 1),
                     "findings that hold": f"{sum(f.holds for f in found)} of {len(found)}",
                     "mode": entry["mode"], "measured": entry["measured"][:10]})
    table = pd.DataFrame(rows, columns=["lecture", "minutes", "findings that hold", "mode", "measured"])
    if entries:
        measured = table["minutes"].notna()
        total = {"lecture": f"total ({measured.sum()} lectures measured)",
                 "minutes": round(table.loc[measured, "minutes"].sum(), 1),
                 "findings that hold": "", "mode": "", "measured": ""}
        table = pd.concat([table, pd.DataFrame([total])], ignore_index=True)
    return table


def overlapping_text(fig, margin: float = 1.0) -> list[tuple[str, str]]:
    """Pairs of texts in a matplotlib Figure that a student cannot read because they overlap.

    Draws the figure, takes the window extent (in pixels) of every visible,
    non-empty text -- titles, axis labels, tick labels, annotations, legend
    entries -- and returns the pairs whose boxes overlap by more than
    ``margin`` pixels each way. Tick labels of ticks outside the axis limits
    are not drawn and not counted. An empty list is a readable figure.
    """
    from itertools import combinations

    from matplotlib.text import Text

    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    hidden = set()  # tick labels of ticks outside the view limits exist but are not drawn
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not low - 1e-9 * abs(high - low) <= tick.get_loc() <= high + 1e-9 * abs(high - low):
                    hidden.update({id(tick.label1), id(tick.label2)})
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip() and id(t) not in hidden]
    boxes = [t.get_window_extent(renderer) for t in texts]
    pairs = []
    for (a, box_a), (b, box_b) in combinations(zip(texts, boxes), 2):
        width = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
        height = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
        if width > margin and height > margin:
            pairs.append((a.get_text(), b.get_text()))
    return pairs


def _figure_label(fig) -> str:
    """A figure in a few words, to find it in the notebook: its suptitle, else its axes' titles."""
    titles = [fig._suptitle.get_text()] if getattr(fig, "_suptitle", None) else []
    titles += [ax.get_title() for ax in fig.axes]
    label = " / ".join(t for t in titles if t.strip())
    return (label[:120] + "...") if len(label) > 120 else (label or "(untitled figure)")


def watch_figures(record_to=None) -> None:
    """Check every figure this Python process renders for overlapping text; record one JSON line each.

    A findings run starts each notebook's kernel with this (``PYTHONSTARTUP``,
    see :mod:`mlcourse.notebooks`). Jupyter's inline backend shows a figure by
    rendering it to PNG through ``FigureCanvasBase.print_figure``, as
    ``savefig`` does; the watch wraps that method, so every figure a notebook
    shows (``plt.show()``, a figure left at the end of a cell, a widget's
    figure) is first checked with :func:`overlapping_text`. Each line of the
    file ``record_to`` (default: the one named by ``MLCOURSE_FIGURES``) is
    ``{"figure": <its titles>, "overlaps": [[text, text], ...]}``.
    """
    from matplotlib.backend_bases import FigureCanvasBase

    record_to = record_to or os.environ[FIGURES_ENV]
    unwatched = FigureCanvasBase.print_figure
    if getattr(unwatched, "watched", False):
        return

    def print_figure(canvas, *args, **kwargs):
        record = {"figure": _figure_label(canvas.figure), "overlaps": overlapping_text(canvas.figure)}
        with open(record_to, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        return unwatched(canvas, *args, **kwargs)

    print_figure.watched = True
    FigureCanvasBase.print_figure = print_figure


def read_figure_records(path) -> list[dict]:
    """The figures :func:`watch_figures` recorded: ``[{"figure": ..., "overlaps": [...]}, ...]``."""
    return _read_lines(path, "a figure record", dict)
