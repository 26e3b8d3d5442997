"""Lecture 07 runs on real MafK peaks when they can be had, and on simulated MAFF data otherwise: both paths."""

from pathlib import Path

import pytest

from mlcourse.notebooks import run_notebook

LECTURE = Path(__file__).resolve().parents[1] / "lectures" / "07_sis_tf_binding.ipynb"


def _run(tmp_path) -> str:
    return run_notebook(LECTURE, tmp_path / "html", fast=True).read_text()


def test_lecture07_without_data_runs_on_simulated_maff(tmp_path, monkeypatch):
    monkeypatch.delenv("MLCOURSE_MIRROR", raising=False)
    monkeypatch.setenv("MLCOURSE_DATA", str(tmp_path / "empty-cache"))
    html = _run(tmp_path)
    assert "mlcourse fetch janggu_peaks" in html and "using simulated MAFF data instead" in html
    assert "simulated MAFF motif discovery" in html and "MafK peaks vs" not in html


@pytest.mark.mirror
def test_lecture07_with_the_mirror_runs_on_real_mafk_peaks(mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("MLCOURSE_DATA", str(tmp_path / "cache"))
    html = _run(tmp_path)
    assert "MafK peaks vs dinucleotide shuffles" in html and "using simulated" not in html
    assert "MA0496.2" in html  # the version the lecture compares with, in its scan table and matches
