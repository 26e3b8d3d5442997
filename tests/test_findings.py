"""Findings as checks: the verdict a student sees, failing in full mode, and the table of a findings run."""

import json
import math

import nbformat
import numpy as np
import pytest
import torch
from conftest import ROOT
from nbformat.v4 import new_code_cell, new_notebook

from mlcourse import cli, findings


@pytest.mark.parametrize("value, op, expected, holds", [
    (0.86, ">=", 0.8, True), (0.8, ">=", 0.8, True), (0.79, ">=", 0.8, False),
    (0.8, ">", 0.8, False), (3, "<", 4, True), (5, "<=", 4, False),
    ("CTCF", "==", "CTCF", True), ("ZEB1", "==", "CTCF", False), ("ZEB1", "!=", "CTCF", True),
    (0.3, "between", (0.2, 0.4), True), (0.4, "between", (0.2, 0.4), True), (0.5, "between", (0.2, 0.4), False),
    (math.nan, "<", 1.0, False), (math.nan, ">=", 1.0, False),
])
def test_judge_evaluates_the_claim(value, op, expected, holds):
    assert findings.judge("claim", value, op, expected).holds is holds


def test_numpy_and_torch_scalars_become_plain_numbers():
    finding = findings.judge("AUC", np.float32(0.9), ">=", torch.tensor(0.5))
    assert finding.holds and type(finding.value) is float and type(finding.expected) is float
    assert json.loads(json.dumps(finding.__dict__))["value"] == pytest.approx(0.9)


def test_clear_errors():
    with pytest.raises(ValueError, match="needs a name"):
        findings.judge("  ", 1, ">", 0)
    with pytest.raises(ValueError, match=r"op '=>' in finding 'AUC' is not one of"):
        findings.judge("AUC", 1, "=>", 0)
    with pytest.raises(ValueError, match=r"value of finding 'AUC' must be a number or a string, got ndarray"):
        findings.judge("AUC", np.array([0.1, 0.2]), ">", 0)
    with pytest.raises(ValueError, match="a number with text"):
        findings.judge("best match", "CTCF", ">=", 0.8)
    with pytest.raises(ValueError, match=r"needs expected=\(low, high\)"):
        findings.judge("share", 0.3, "between", 0.2)
    with pytest.raises(ValueError, match="low bound 0.4 is above high bound 0.2"):
        findings.judge("share", 0.3, "between", (0.4, 0.2))


def test_the_verdict_is_one_readable_line():
    assert findings.judge("similarity to CTCF", 0.8612, ">=", 0.8).verdict() == \
        "✓ holds: similarity to CTCF — 0.861 >= 0.8"
    assert findings.judge("share of CNN", 0.6812, "between", (0.2, 0.4)).verdict() == \
        "✗ does not hold: share of CNN — 0.681 between 0.2 and 0.4"
    assert findings.format_value(12345) == "12,345" and findings.format_value(0.000123) == "1.23e-04"


def test_a_failing_finding_prints_in_fast_mode_and_fails_in_full_mode(monkeypatch, capsys):
    monkeypatch.delenv(findings.RECORD_ENV, raising=False)
    monkeypatch.setenv("MLCOURSE_FAST", "1")
    findings.check("AUC is high", 0.6, ">=", 0.9)
    assert capsys.readouterr().out == "✗ does not hold: AUC is high — 0.6 >= 0.9 (FAST mode: small sizes, not an error)\n"
    monkeypatch.setenv("MLCOURSE_FAST", "0")
    findings.check("AUC is high", 0.95, ">=", 0.9)
    assert capsys.readouterr().out.startswith("✓ holds: AUC is high")
    with pytest.raises(findings.FindingFailed, match="AUC is high — 0.6 >= 0.9"):
        findings.check("AUC is high", 0.6, ">=", 0.9)


def test_a_findings_run_records_every_check_and_raises_none(monkeypatch, tmp_path):
    record = tmp_path / "rec.jsonl"
    monkeypatch.setenv("MLCOURSE_FAST", "0")
    monkeypatch.setenv(findings.RECORD_ENV, str(record))
    findings.check("AUC is high", 0.6, ">=", 0.9)
    findings.check("share", 0.3, "between", (0.2, 0.4))
    found = findings.read_records(record)
    assert [(f.name, f.holds) for f in found] == [("AUC is high", False), ("share", True)]
    assert found[1].expected == (0.2, 0.4) and found[1].expectation == "between 0.2 and 0.4"
    record.write_text("not json\n")
    with pytest.raises(ValueError, match="rec.jsonl, line 1: not a finding record"):
        findings.read_records(record)


def _notebook(path, cells):
    nbformat.write(new_notebook(cells=[new_code_cell(c) for c in cells]), path)
    return path


def test_make_findings_writes_the_table_and_fails_when_a_finding_does_not_hold(tmp_path):
    good = _notebook(tmp_path / "01_good.ipynb", [
        "import mlcourse", "mlcourse.check('planted motif recovered', 0.93, '>=', 0.8)"])
    bad = _notebook(tmp_path / "02_bad.ipynb", [
        "import mlcourse",
        "mlcourse.check('windows beat stretching', 0.24, '>', 0.59)",
        "mlcourse.check('best wide match', 'CTCF', '==', 'CTCF')"])
    out = tmp_path / "build"
    code = cli.main(["run", "--findings", str(good), str(bad), "--root", str(ROOT), "--out", str(out)])
    assert code == 1  # full mode, and one finding does not hold (the later check still ran)
    table = (out / "findings.md").read_text()
    assert "| lecture | finding | value | expectation | holds | runtime |" in table
    assert "| 01_good | planted motif recovered | 0.93 | >= 0.8 | yes |" in table
    assert "| 02_bad | windows beat stretching | 0.24 | > 0.59 | **no** |" in table
    assert "| 02_bad | best wide match | CTCF | == CTCF | yes |" in table
    assert "| 01_good | tables are rounded (numbers shown with 5+ decimals) | 0 | == 0 | yes |" in table
    summary = json.loads((out / "findings.json").read_text())
    assert [e["notebook"] for e in summary["lectures"]] == ["01_good", "02_bad"]
    assert all(e["runtime_s"] > 0 and e["mode"] == "full" for e in summary["lectures"])

    # Rerunning one lecture keeps the other's row; the overview's table adds the course total.
    assert cli.main(["run", "--findings", str(good), "--root", str(ROOT), "--out", str(out)]) == 0
    table = findings.runtime_table(findings.load_summary(out / "findings.json"), lectures=["01_good", "02_bad", "03_later"])
    assert list(table["lecture"]) == ["01_good", "02_bad", "03_later", "total (2 lectures measured)"]
    assert list(table["findings that hold"][:3]) == ["4 of 4", "4 of 5", "not measured"]
    assert table["minutes"].iloc[-1] == pytest.approx(table["minutes"].iloc[:2].sum())


def test_unrounded_tables_and_warnings_in_the_output_are_findings_too(tmp_path):
    sloppy = _notebook(tmp_path / "04_sloppy.ipynb", [
        "import warnings\nimport pandas as pd",
        "warnings.warn('deprecated thing')",
        "pd.DataFrame({'auc': [0.912345678, 0.5]})",  # shown as 0.912346 and 0.500000
        "pd.DataFrame({'auc': [0.912345678, 0.5]}).round(3)"])
    out = tmp_path / "build"
    assert cli.main(["run", "--findings", str(sloppy), "--root", str(ROOT), "--out", str(out)]) == 1
    table = (out / "findings.md").read_text()
    assert "| 04_sloppy | tables are rounded (numbers shown with 5+ decimals) | 2 | == 0 | **no** |" in table
    assert "| 04_sloppy | no warnings in the output (outputs with a warning) | 1 | == 0 | **no** |" in table


def test_a_lecture_that_raises_is_a_row_of_the_table(tmp_path):
    broken = _notebook(tmp_path / "03_broken.ipynb", ["raise RuntimeError('boom')"])
    out = tmp_path / "build"
    assert cli.main(["run", "--findings", str(broken), "--fast", "--root", str(ROOT), "--out", str(out)]) == 1
    assert "| 03_broken | the run failed: RuntimeError: boom | | | no |" in (out / "findings.md").read_text()


def test_the_shipped_summary_names_real_lectures_with_their_runtimes():
    """``data/findings.json`` (what the overview shows before a student's own run) is a real run's summary."""
    summary = findings.load_summary(ROOT / "data" / "findings.json")
    lectures = {p.stem for p in (ROOT / "lectures").glob("[0-9][0-9]_*.ipynb")}
    assert summary["lectures"] and {e["notebook"] for e in summary["lectures"]} <= lectures
    for entry in summary["lectures"]:
        assert entry["mode"] == "full" and entry["runtime_s"] > 0 and entry["findings"], entry["notebook"]


def test_a_figure_with_overlapping_text_fails_the_findings_run_and_a_readable_one_passes(tmp_path):
    """Every figure a notebook shows is checked: two titles drawn on one spot make the run fail."""
    setup = "import matplotlib.pyplot as plt"
    clean = _notebook(tmp_path / "05_clean.ipynb", [
        setup, "fig, ax = plt.subplots()\nax.set_title('a readable title')\nax.set_xlabel('x')\nplt.show()",
        "plt.plot([0, 1])"])  # a figure left at the end of a cell is shown (and checked) too
    messy = _notebook(tmp_path / "06_messy.ipynb", [
        setup, "fig, ax = plt.subplots()\nax.set_title('clean')\nplt.show()",
        "fig, ax = plt.subplots()\nax.set_title('first')\nax.text(0.5, 1.02, 'second title', transform=ax.transAxes,"
        " ha='center')\nplt.show()"])
    out = tmp_path / "build"
    assert cli.main(["run", "--findings", str(clean), "--root", str(ROOT), "--out", str(out)]) == 0
    assert cli.main(["run", "--findings", str(messy), "--root", str(ROOT), "--out", str(out)]) == 1
    table = (out / "findings.md").read_text()
    finding = "figures have no overlapping text (figures with overlapping labels)"
    assert f"| 05_clean | {finding} | 0 | == 0 | yes |" in table
    assert f"| 06_messy | {finding} | 1 | == 0 | **no** |" in table
    figures = findings.read_figure_records(out / "findings" / "05_clean.figures.jsonl")
    assert [f["figure"] for f in figures] == ["a readable title", "(untitled figure)"]
    messy_figures = findings.read_figure_records(out / "findings" / "06_messy.figures.jsonl")
    assert [sorted(map(sorted, f["overlaps"])) for f in messy_figures] == [[], [["first", "second title"]]]
