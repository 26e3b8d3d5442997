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


# The test files that hold a worker longest, slowest first (seconds holding a worker, `--durations`,
# `python benchmarks/bench_suite.py --workers 2` on 2026-12-03 with numba's cache filled by `make install`,
# the machine loaded by other jobs). `make test` hands out whole files (`--dist loadfile`,
# `--no-loadscope-reorder`): starting with the longest ones keeps a long file from starting last and
# running alone at the end. Files not named here follow, in the order pytest collects them. Re-measure
# as files grow (benchmarks/bench_suite.py lists them).
SLOWEST_FIRST = [
    "tests/test_grading.py",  # 85: grades 9 submissions of lab 1 in sandboxed kernels
    "tests/test_site.py",  # 81: runs lecture 04 and builds the whole site with Sphinx
    "tests/test_grading_kernels.py",  # 57: tiny labs in sandboxed kernels, and real nbgrader on lab 1
    "tests/test_lecture07.py",  # 45: runs lecture 07 twice
    "tests/test_grading_references.py",  # 44: the reference runs of labs 2-5
    "lectures/12_lime_shap_maxent.ipynb",  # 38
    "lectures/15_motifs_from_attributions.ipynb",  # 31
    "tests/test_ism.py",  # 30: one ISM kernel compiled without a cache, in a read-only course
    "lectures/05_sis_mnist.ipynb",  # 26
    "lectures/08_filters_and_activations.ipynb",  # 25
    "tests/test_browser.py",  # 20
    "tests/test_findings.py",  # 19: several findings runs of small notebooks, each in a fresh kernel
    "lectures/11_saliency_ig_deeplift.ipynb",  # 19
    "lectures/09_deconvnet_and_guided_backprop.ipynb",  # 19
    "lectures/03_cnn_architectures.ipynb",  # 19 (a fresh clone's sweep cache is cold)
    "lectures/10_cam_and_gradcam.ipynb",  # 17
    "lectures/07_sis_tf_binding.ipynb",  # without the mirror only: with it, test_lecture07 covers it
    "lectures/06_sis_beer_reviews.ipynb",  # 15
    "tests/test_benchmark.py",  # 14
    "lectures/02_motif_occupancy.ipynb",  # 14
    "lectures/01_deepbind_motif_discovery.ipynb",  # 13
    "lectures/14_variant_effects.ipynb",  # 13
    "lectures/13_gradient_ascent.ipynb",  # 13
    "lectures/04_saturated_mutagenesis.ipynb",  # only without test_site, which runs it
    "tests/test_lab_server.py",  # 8
    "tests/test_properties.py",  # 7
    "tests/test_run.py",  # 7
    "tests/test_image_sis.py",  # 6
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
