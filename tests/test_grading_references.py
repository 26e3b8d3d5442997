"""Every lab's solution passes its own checks, judged outside the kernel (mlcourse.grading.references).

Lab 1's reference is computed by the graded batch in ``test_grading.py``; the
other labs' reference runs (sandboxed, one kernel each, two at a time) are
here, in a module of their own, so that the test workers run them while the
other worker grades lab 1's submissions.
"""

from pathlib import Path

from mlcourse.grading import sandbox
from mlcourse.grading.assign import lab_name
from mlcourse.grading.batch import _pool_map, _reference_one

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "labs" / "source").glob("[0-9][0-9]_*.ipynb"))


def test_every_lab_solution_passes_its_own_checks_judged_outside_the_kernel(tmp_path):
    others = [(p, {"timeout": 60, "threads": 1, "sandbox": sandbox.DEFAULT_LIMITS, "cache_dir": tmp_path})
              for p in SOURCES[1:]]
    refs = _pool_map(_reference_one, others, 2)
    assert all("error" not in r for r in refs), refs
    assert {r["lab"] for r in refs} == {lab_name(p) for p in SOURCES[1:]}
    assert all(all(v for v in r["values"].values()) for r in refs)
