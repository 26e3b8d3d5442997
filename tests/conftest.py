"""Shared test set-up: FAST mode, a headless plotting backend, the real-data mirror."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("MLCOURSE_FAST", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# modisco-lite's numba loops run in parallel threads; beside the other test worker they
# oversubscribe 2 cores (lecture 15's MafK cell: 10.0 s with 2 threads, 5.9 s with 1, under load).
# Set here, not in `make test`, so that every pytest run (and each kernel it starts) inherits it.
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]

# nbformat -> jsonschema imports rfc3987-syntax for a format check nbformat never uses, at 1.7 s of CPU a
# process (tests/import_blocks/rfc3987_syntax explains): the folder that blocks it goes first on the path
# of the processes started from here (pytest's workers, graders, kernels, nbgrader, Sphinx, servers).
IMPORT_BLOCKS = Path(__file__).resolve().parent / "import_blocks"
if str(IMPORT_BLOCKS) not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(IMPORT_BLOCKS), os.environ.get("PYTHONPATH")]))


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
    "lectures/03_cnn_architectures.ipynb",  # cold sweep cache (CI): 68 CPU s before its sweeps ran in the kernel, 15 now
    "tests/test_grading.py",  # grades 8 submissions of lab 1 in sandboxed kernels
    "tests/test_grading_kernels.py",  # tiny labs in sandboxed kernels, and real nbgrader on lab 1
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
    "lectures/04_saturated_mutagenesis.ipynb",  # only without test_site, which runs it
    "lectures/02_motif_occupancy.ipynb",
]


@pytest.hookimpl(trylast=True)  # after -k and -m have deselected theirs
def pytest_collection_modifyitems(config, items):
    """Run the files of :data:`SLOWEST_FIRST` first, slowest first; the tests of a file keep their order.

    nbval's runs of lectures that other selected tests run anyway are dropped (:func:`_drop_covered_lectures`).
    """
    _drop_covered_lectures(config, items)
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


# Some tests run a whole lecture themselves, in FAST mode, failing on any error: everything nbval's
# lax run of that notebook checks (no cell of a lecture compares outputs). When such a test is
# selected, nbval's run of the same notebook is dropped: running both only costs time.
# - With the mirror, test_lecture07's mirror test runs lecture 07 on the real MafK peaks, as nbval would.
# - test_site's ``built`` fixture executes lecture 04 (``execute_notebook`` raises on a failing cell).


def _runs_lecture(item) -> str | None:
    """The lecture an item runs top to bottom the way nbval would, if any."""
    if item.nodeid == "tests/test_lecture07.py::test_lecture07_with_the_mirror_runs_on_real_mafk_peaks":
        return "lectures/07_sis_tf_binding.ipynb" if os.environ.get("MLCOURSE_MIRROR") else None
    if item.nodeid.startswith("tests/test_site.py::") and "built" in getattr(item, "fixturenames", ()):
        return "lectures/04_saturated_mutagenesis.ipynb"
    return None


def _drop_covered_lectures(config, items):
    """Drop nbval's runs of the lectures that a selected test runs anyway (see :func:`_runs_lecture`)."""
    covered = {lecture for lecture in map(_runs_lecture, items) if lecture}
    dropped = [item for item in items if item.nodeid.split("::")[0] in covered]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item.nodeid.split("::")[0] not in covered]
