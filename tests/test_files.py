"""Atomic writes: a failure while writing leaves the old file intact and no temporary file behind."""

import pytest

from mlcourse.files import atomic_path, atomic_write_text


def test_write_then_replace(tmp_path):
    target = tmp_path / "sub" / "report.csv"
    atomic_write_text(target, "a,b\n")
    atomic_write_text(target, "c,d\n")
    assert target.read_text() == "c,d\n"
    assert [p.name for p in target.parent.iterdir()] == ["report.csv"]


def test_failure_keeps_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "model.pt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(target) as tmp:
            tmp.write_text("half a checkpoint")
            raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]
