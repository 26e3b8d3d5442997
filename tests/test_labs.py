"""The labs as students meet them: layout, and visible tests that say what is wrong.

Test cells are run in this process (no kernel) on deliberately wrong answers:
the visible test must fail with a message that points at the mistake, and
the hidden tests must catch mistakes the visible ones let through. Whole
notebooks are graded in tests/test_grading.py.
"""

from pathlib import Path

import nbformat
import pytest

from mlcourse.grading import markers

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "labs" / "source").glob("[0-9][0-9]_*.ipynb"))
EXPECTED = ["01_one_hot_and_deepbind", "02_mutagenesis_and_sis", "03_integrated_gradients", "04_grad_cam",
            "05_variant_effects"]


def cells(name: str, folder: str = "release") -> dict[str, str]:
    nb = nbformat.read(ROOT / "labs" / folder / f"{name}.ipynb", as_version=4)
    return {markers.grade_id(c): c.source for c in nb.cells if markers.grade_id(c)}


def run(*sources: str) -> dict:
    namespace: dict = {}
    for source in sources:
        exec(compile(source, "<lab cell>", "exec"), namespace)
    return namespace


def test_the_labs_exist_with_three_to_six_questions_and_a_title_cell():
    assert [p.stem for p in SOURCES] == EXPECTED
    for path in SOURCES:
        nb = nbformat.read(path, as_version=4)
        markers.validate_lab(nb, path.name)
        tests = [c for c in nb.cells if markers.role(c) == markers.TEST]
        assert 3 <= len(tests) <= 6, path.name
        assert all("### BEGIN HIDDEN TESTS" in c.source for c in tests), f"{path.name}: a test without hidden tests"
        first = nb.cells[0]
        assert first.cell_type == "markdown" and first.source.startswith("# Lab ")
        assert "Expected runtime" in first.source, path.name


WRONG = [
    ("01_one_hot_and_deepbind", "one_hot_tests",
     "def one_hot_encode(seq):\n"
     "    out = np.full((4, len(seq)), 0.25, dtype=np.float32)\n"
     "    for j, b in enumerate(seq):\n"
     "        if b in 'ACGT':\n"
     "            out[:, j] = np.eye(4)['ACGT'.index(b)]\n"
     "    return out",
     "an N must become a column of zeros"),
    ("01_one_hot_and_deepbind", "one_hot_tests",
     "def one_hot_encode(seq):\n    return np.zeros((len(seq), 4), dtype=np.float32)",
     r"should give the 4x4 identity matrix"),
    ("01_one_hot_and_deepbind", "one_hot_tests",
     "def one_hot_encode(seq):\n    return [[1, 0, 0, 0]]", "return a numpy array, got list"),
    ("01_one_hot_and_deepbind", "shuffle_tests",
     "def shuffle_dinucleotides(seq, rng):\n    return ''.join(rng.permutation(list(seq)))",
     "dinucleotide counts differ"),
    ("01_one_hot_and_deepbind", "deepbind_tests",
     "class DeepBind(nn.Module):\n"
     "    def __init__(self, seq_len=101, n_filters=16, width=11):\n"
     "        super().__init__()\n"
     "        self.conv1 = nn.Conv1d(4, n_filters, width)\n"
     "        self.fc = nn.Linear(n_filters, 1)\n"
     "    def forward(self, x):\n"
     "        return self.fc(self.conv1(x).amax(-1))",
     r"5 sequences should give 5 logits, shape \(5,\); got \(5, 1\)"),
    ("05_variant_effects", "apply_tests",
     "def apply_variant(seq, pos, ref, alt):\n    return seq[:pos] + alt + seq[pos + 1:]",
     "must raise a ValueError"),
    ("04_grad_cam", "upsample_tests",
     "def place_on_bases(maps, width, length):\n    return torch.nn.functional.pad(maps, (0, length - maps.shape[1]))",
     "width 3: position 1 sees bases 1-3, so its value belongs on base 2"),
]


@pytest.mark.parametrize("lab, test_id, answer, message", WRONG,
                         ids=[f"{w[0][:2]}-{w[1]}-{i}" for i, w in enumerate(WRONG)])
def test_visible_tests_tell_students_what_is_wrong(lab, test_id, answer, message):
    release = cells(lab)
    namespace = run(release["setup"], answer)
    with pytest.raises(AssertionError, match=message):
        exec(compile(release[test_id], "<test cell>", "exec"), namespace)


def test_hidden_tests_catch_an_answer_the_visible_test_lets_through():
    """Returning the input keeps every dinucleotide count: only the hidden tests see it is no shuffle."""
    identity = "def shuffle_dinucleotides(seq, rng):\n    return seq"
    release, source = cells("01_one_hot_and_deepbind"), cells("01_one_hot_and_deepbind", "source")
    run(release["setup"], identity, release["shuffle_tests"])  # visible: passes
    with pytest.raises(AssertionError, match="the shuffle is not random"):
        run(source["setup"], identity, source["shuffle_tests"])


def test_the_source_solutions_pass_their_own_tests_in_process():
    """The quick questions of lab 1, solutions against full tests (the graded run covers the rest)."""
    source = cells("01_one_hot_and_deepbind", "source")
    run(*(source[k] for k in ("setup", "one_hot_answer", "one_hot_tests", "shuffle_answer",
                               "shuffle_tests", "deepbind_answer", "deepbind_tests")))
