"""Shared test set-up: FAST mode, a headless plotting backend, the real-data mirror."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("MLCOURSE_FAST", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def mirror() -> Path:
    """The real-data mirror (``MLCOURSE_MIRROR``); tests using it are skipped when it is unset."""
    path = os.environ.get("MLCOURSE_MIRROR")
    if not path:
        pytest.skip("MLCOURSE_MIRROR is not set: no real-data mirror on this machine")
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"MLCOURSE_MIRROR={path} is not a folder")
    return path


# The test files that hold a worker longest (seconds on a loaded 2-core machine, `--durations`,
# measured 2026-12-02 with a cold cache),
# slowest first. `make test` hands out whole files (`--dist loadfile`, `--no-loadscope-reorder`):
# starting with the longest ones keeps a long file from starting last and running alone at the
# end. Files not named here follow, in the order pytest collects them. Re-measure as files grow:
# `python -m pytest -n 2 --durations=40`.
SLOWEST_FIRST = [
    "lectures/03_cnn_architectures.ipynb",  # ~125 s with a cold sweep cache (CI), trains every sweep
    "tests/test_grading.py",  # grades 8 submissions of lab 1 in sandboxed kernels
    "lectures/15_motifs_from_attributions.ipynb",
    "tests/test_site.py",  # runs lecture 04 and builds the whole site with Sphinx
    "tests/test_findings.py",  # several findings runs of small notebooks, each in a fresh kernel
    "tests/test_grading_references.py",  # the reference runs of labs 2-5
    "tests/test_lecture07.py",  # runs lecture 07 twice
    "lectures/12_lime_shap_maxent.ipynb",
    "lectures/05_sis_mnist.ipynb",
    "lectures/08_filters_and_activations.ipynb",
    "tests/test_compare.py",
    "tests/test_modisco.py",
    "lectures/13_gradient_ascent.ipynb",
    "tests/test_sis.py",
    "lectures/07_sis_tf_binding.ipynb",  # without the mirror only: with it, test_lecture07 covers it
    "lectures/11_saliency_ig_deeplift.ipynb",
    "lectures/10_cam_and_gradcam.ipynb",
    "lectures/09_deconvnet_and_guided_backprop.ipynb",
    "tests/test_browser.py",
    "lectures/14_variant_effects.ipynb",
    "tests/test_benchmark.py",
    "lectures/01_deepbind_motif_discovery.ipynb",
    "tests/test_properties.py",
    "lectures/06_sis_beer_reviews.ipynb",
    "tests/test_lab_server.py",
    "lectures/04_saturated_mutagenesis.ipynb",
    "lectures/02_motif_occupancy.ipynb",
]


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected theirs
def pytest_collection_modifyitems(config, items):
    """Run the files of :data:`SLOWEST_FIRST` first, slowest first; the tests of a file keep their order.

    Lecture 07's nbval run is dropped when its mirror test covers it (:func:`_drop_covered_lecture07`).
    """
    _drop_covered_lecture07(config, items)
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


# With the mirror, ``tests/test_lecture07.py``'s mirror test runs lecture 07 top to bottom on the real
# MafK peaks, failing on any error, and checks what it prints: everything nbval's lax run of the same
# notebook on the same path would check (no cell of it compares outputs). Running both only costs time.
LECTURE07 = "lectures/07_sis_tf_binding.ipynb"
LECTURE07_MIRROR_TEST = "tests/test_lecture07.py::test_lecture07_with_the_mirror_runs_on_real_mafk_peaks"


def _drop_covered_lecture07(config, items):
    """Drop nbval's run of lecture 07 when its mirror test is selected and the mirror is set."""
    ids = {item.nodeid for item in items}
    if LECTURE07_MIRROR_TEST not in ids or not os.environ.get("MLCOURSE_MIRROR"):
        return
    nbval = [item for item in items if item.nodeid.split("::")[0] == LECTURE07]
    if nbval:
        config.hook.pytest_deselected(items=nbval)
        items[:] = [item for item in items if item.nodeid.split("::")[0] != LECTURE07]
