"""Lecture 07 runs on real MafK peaks when they can be had, and on simulated MAFF data otherwise: both paths."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

LECTURE = Path(__file__).resolve().parents[1] / "lectures" / "07_sis_tf_binding.ipynb"


def _printed(monkeypatch) -> str:
    """Run the lecture in FAST mode; everything its cells printed or displayed as text."""
    monkeypatch.setenv("MLCOURSE_FAST", "1")
    nb = nbformat.read(LECTURE, as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(LECTURE.parent)}}).execute()
    texts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            texts.append(out.get("text", "") + out.get("data", {}).get("text/plain", ""))
    return "\n".join(texts)


def test_lecture07_without_data_runs_on_simulated_maff(tmp_path, monkeypatch):
    monkeypatch.delenv("MLCOURSE_MIRROR", raising=False)
    monkeypatch.setenv("MLCOURSE_DATA", str(tmp_path / "empty-cache"))
    printed = _printed(monkeypatch)
    assert "mlcourse fetch janggu_peaks" in printed and "using simulated MAFF data instead" in printed
    assert "simulated MAFF motif discovery: History" in printed and "MafK peaks" not in printed


@pytest.mark.mirror
def test_lecture07_with_the_mirror_runs_on_real_mafk_peaks(mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("MLCOURSE_DATA", str(tmp_path / "cache"))
    printed = _printed(monkeypatch)
    assert "MafK peaks vs dinucleotide shuffles: History" in printed and "using simulated" not in printed
    assert "PWM scan with MA0496.2" in printed  # the version the lecture compares with
