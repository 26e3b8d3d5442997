"""Property: any input to a public entry point gives a result or a ValueError/TypeError naming the argument.

Hypothesis draws arguments of every kind (None, numbers with NaN and inf,
text, bytes, lists, dicts, arrays and tensors of odd shapes and dtypes, files
of random bytes) and puts each into one argument of a function of
mlcourse.dna, motifs, datasets and train, the others valid. The call must
either return a result without NaN, or raise ValueError or TypeError whose
message names the argument (its name, or the words the message uses for it).
Any other exception (IndexError, AttributeError, a raw RuntimeError...) fails.
For mlcourse.interpret (the issue-16 convention ``method(model, X, *, target,
baseline)``) the drawn value goes into ``X``, ``target`` or ``baseline``.
"""

import gzip
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays
from torch import nn

from mlcourse import dna, motifs, train
from mlcourse.datasets import encode, fetch, mnist, reviews, simulate
from mlcourse.datasets.base import SeqDataset
from mlcourse.interpret import backprop, cam, ism, paths
from mlcourse.models.zeng import build

QUICK = settings(max_examples=20, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

_shapes = array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)
numbers = st.one_of(
    arrays(np.float64, _shapes, elements=st.floats(allow_nan=True, allow_infinity=True)),
    arrays(np.float32, _shapes, elements=st.floats(allow_nan=True, allow_infinity=True, width=32)),
    arrays(np.int64, _shapes, elements=st.integers(-3, 300)),
    arrays(np.uint8, _shapes),
    arrays(np.bool_, _shapes),
)
ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 120),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.text(alphabet="ACGTNacgtnU", max_size=30),
    st.binary(max_size=8),
    st.lists(st.text(alphabet="ACGTN", max_size=12), max_size=4),
    st.lists(st.integers(-2, 3), max_size=6),
    st.lists(st.floats(allow_nan=True), max_size=4),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    numbers,
    numbers.map(torch.from_numpy),
)


def _no_nan(result, where: str) -> None:
    """A silent NaN anywhere in the result fails."""
    if isinstance(result, torch.Tensor):
        result = result.detach().numpy()
    if isinstance(result, np.ndarray) and result.dtype.kind in "fc":
        assert np.isfinite(result).all(), f"{where} returned NaN/inf"
    elif isinstance(result, float):
        assert math.isfinite(result), f"{where} returned {result}"
    elif isinstance(result, (list, tuple)):
        for item in result[:20]:
            _no_nan(item, where)
    elif isinstance(result, dict):
        for item in result.values():
            _no_nan(item, where)


def check(call, *names, moves_values=False):
    """Run ``call()``: a result without NaN, or a ValueError/TypeError whose message holds one of ``names``.

    ``moves_values``: the call only rearranges its input's numbers (a NaN in, a NaN out, is fine).
    """
    try:
        result = call()
    except (ValueError, TypeError) as err:
        message = str(err)
        assert any(name in message for name in names), f"{type(err).__name__} names none of {names}: {message}"
        return None
    if not moves_values:
        _no_nan(result, getattr(call, "__name__", "call"))
    return result


# --------------------------------------------------------------------------- dna


@QUICK
@given(ANYTHING)
def test_dna_entry_points(x):
    for fn in (dna.one_hot, dna.validate, dna.dinucleotide_counts):
        check(lambda fn=fn: fn(x), "seq")
    check(lambda: dna.reverse_complement(x), "seq", moves_values=True)
    check(lambda: dna.dinucleotide_shuffle(x, rng=0), "seq")
    check(lambda: dna.decode(x), "X")
    check(lambda: dna.as_rng(x), "rng")
    if not isinstance(x, int) or x < 9:  # a large k is refused by size, tested elsewhere
        check(lambda: dna.kmers(x), "k")
        check(lambda: dna.kmer_counts("ACGTACGT", x), "k")
    check(lambda: dna.kmer_counts(x, 2), "seq")


# --------------------------------------------------------------------------- motifs

CTCF = motifs.jaspar("CTCF")


@QUICK
@given(ANYTHING)
def test_motif_entry_points(x):
    check(lambda: motifs.jaspar(x), "JASPAR")
    check(lambda: motifs.Motif("m", x), "motif 'm'")
    check(lambda: motifs.Motif.from_probs(x, "m"), "motif 'm'")
    check(lambda: motifs.scan(CTCF, x), "X", "seq", "one-hot", "shorter than motif")
    check(lambda: motifs.scan_positions(CTCF, x), "X", "seq", "one-hot", "shorter than motif")
    check(lambda: motifs.sample(CTCF, x, rng=0), "n must")
    check(lambda: motifs.similarity(CTCF, x), "motif 'query'")


# --------------------------------------------------------------------------- datasets


@QUICK
@given(ANYTHING)
def test_dataset_entry_points(x):
    check(lambda: SeqDataset(x, [1.0]), "seq", "label")
    check(lambda: SeqDataset(["ACGT"], x), "label")
    check(lambda: simulate.motif_discovery("MAFF", n=x, seed=0), "n must")
    check(lambda: simulate.motif_discovery("MAFF", n=20, length=x, seed=0), "length")
    check(lambda: simulate.motif_discovery(x, n=20, seed=0), "JASPAR")
    check(lambda: mnist.as_images(x), "images")
    check(lambda: reviews.tokenize(x), "text")
    check(lambda: reviews.generate_reviews(x, seed=0), "n must")
    check(lambda: reviews.Vocab(["a", "b"]).encode(x), "token lists", "reviews")
    check(lambda: reviews.rationale_precision(x, [True, False, True]), "position")
    check(lambda: fetch.fetch(x), "data name")
    check(lambda: mnist.load_mnist(root=x), "root")
    check(lambda: reviews.load_reviews("aroma", root=x), "root", "aspect")


def _file_contents():
    plain = st.one_of(st.binary(max_size=200), st.text(alphabet="ACGTN> \t\n01", max_size=200).map(str.encode))
    return st.one_of(plain, plain.map(gzip.compress), plain.map(lambda b: gzip.compress(b)[: len(b) // 2 + 5]))


@QUICK
@given(_file_contents(), st.sampled_from(["data.fa", "data.seq.gz", "x.txt.gz", "x.json", "idx"]))
def test_file_readers_name_the_file(content, name):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(content)
        readers = [encode.read_fasta, encode.read_zeng_data, encode.read_zeng_tsv, encode.read_deepbind,
                   lambda p: encode.read_zeng_fasta(p, p), mnist.read_idx, reviews.read_reviews,
                   reviews.read_annotations]
        for reader in readers:
            check(lambda reader=reader: reader(path), name)


@QUICK
@given(ANYTHING)
def test_readers_given_no_path(x):
    for reader in (encode.read_fasta, mnist.read_idx, reviews.read_reviews, train.load):
        check(lambda reader=reader: reader(x), "path", "file", "checkpoint")


# --------------------------------------------------------------------------- train


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(8, 1))


X8 = torch.rand(6, 4, 2)
Y8 = torch.tensor([0.0, 1.0] * 3)


@QUICK
@given(ANYTHING)
def test_train_entry_points(x):
    fit = train.fit
    check(lambda: fit(_model(), (x, Y8), epochs=1, progress=False), "X", "training data")
    check(lambda: fit(_model(), (X8, x), epochs=1, progress=False), "labels", "training data")
    check(lambda: fit(_model(), x, epochs=1, progress=False), "training data")
    check(lambda: fit(_model(), (X8, Y8), (X8, x), epochs=1, progress=False), "validation data")
    for option in ("epochs", "batch_size", "patience", "lr", "weight_decay", "task"):
        check(lambda option=option: fit(_model(), (X8, Y8), (X8, Y8), **{"epochs": 1, option: x}, progress=False),
              option)
    check(lambda: train.predict(_model(), x), "X")
    check(lambda: train.evaluate(_model(), (X8, x)), "labels", "evaluation data")
    check(lambda: train.binary_metrics(x, np.arange(6.0)), "labels", "evaluation data")
    check(lambda: train.binary_metrics(Y8, x), "scores", "evaluation data")


@QUICK
@given(ANYTHING)
def test_save_anywhere(x):
    with tempfile.TemporaryDirectory() as folder:
        if isinstance(x, str) and x:
            x = Path(folder) / x.replace("\x00", "")
        check(lambda: train.save(_model(), x), "path", "folder", "cannot write")


# --------------------------------------------------------------------------- interpret

torch.manual_seed(0)
CNN = build("1layer", 30)
DNA = dna.one_hot(["ACGTACGTACGTACGTACGTACGTACGTAC", "TTTTACGTACGTACGTACGTACGTACGTAA"])
METHODS = {
    "ISM": lambda X, **kw: ism.saturation_mutagenesis(CNN, X, **kw),
    "gradient": lambda X, **kw: backprop.gradient(CNN, X, **kw),
    "IG": lambda X, **kw: paths.integrated_gradients(CNN, X, steps=4, **kw),
    "DeepLIFT": lambda X, **kw: paths.deeplift(CNN, X, baseline=kw.pop("baseline", 0.25), **kw),
    "Grad-CAM": lambda X, **kw: cam.grad_cam(CNN, X, **kw),
}


@QUICK
@given(ANYTHING)
def test_interpret_entry_points(x):
    for name, method in METHODS.items():
        check(lambda method=method: method(x), "X", "shape", "one-hot", "expects")
        check(lambda method=method: method(DNA, target=x), "target")
        if name in ("IG", "DeepLIFT"):
            check(lambda method=method: method(DNA, baseline=x), "baseline", "reference")


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_nan_never_becomes_a_result(bad):
    """The silent-NaN cases the probes found, each refused."""
    X = X8.clone()
    X[0, 0, 0] = bad
    for call in (lambda: train.predict(_model(), X), lambda: motifs.scan(CTCF, torch.cat([X] * 10, dim=2)),
                 lambda: mnist.as_images(torch.full((1, 784), bad)), lambda: dna.decode(X[:, :, :1])):
        with pytest.raises(ValueError, match="nan|inf|NaN|finite"):
            call()
