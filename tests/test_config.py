"""config: seeding gives identical numbers, scale follows MLCOURSE_FAST, setup says what it chose."""

import subprocess
import sys

import numpy as np
import pytest
import torch

import mlcourse
from mlcourse import config


def draw():
    return torch.rand(5), np.random.rand(3), torch.nn.Linear(4, 2).weight.detach().clone()


def test_same_seed_same_numbers():
    config.setup(seed=7, verbose=False)
    first = draw()
    config.setup(seed=7, verbose=False)
    second = draw()
    for a, b in zip(first, second):
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_different_seed_different_numbers():
    config.setup(seed=1, verbose=False)
    a = torch.rand(5)
    config.setup(seed=2, verbose=False)
    assert not torch.equal(a, torch.rand(5))


@pytest.mark.parametrize("bad", [-1, 1.5, "0", True])
def test_bad_seed_is_named(bad):
    with pytest.raises(ValueError, match="seed"):
        config.setup(seed=bad, verbose=False)


def test_scale_follows_fast_mode(monkeypatch):
    monkeypatch.setenv("MLCOURSE_FAST", "1")
    assert mlcourse.scale(full=100, fast=3) == 3
    monkeypatch.setenv("MLCOURSE_FAST", "0")
    assert mlcourse.scale(full=100, fast=3) == 100
    monkeypatch.delenv("MLCOURSE_FAST")
    assert mlcourse.scale(full=100, fast=3) == 100


def test_setup_prints_one_line_and_returns_device(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("MLCOURSE_DATA", str(tmp_path))
    device = mlcourse.setup(seed=0)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert f"device={device.type}" in out[0] and str(tmp_path) in out[0] and "FAST" in out[0]
    assert isinstance(device, torch.device)


def test_importing_the_package_or_its_findings_does_not_import_torch():
    """A findings run imports ``mlcourse.findings`` in every kernel; torch would add 2 s to each start."""
    code = "import sys, mlcourse, mlcourse.findings; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
