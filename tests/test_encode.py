"""mlcourse.datasets.encode: the Zeng and DeepBind formats, on small files written here and on the real mirror."""

import gzip
from collections import Counter

import numpy as np
import pytest

from mlcourse.datasets.encode import (
    load_deepbind,
    load_janggu_peaks,
    load_zeng_ctcf,
    read_deepbind,
    read_fasta,
    read_peaks,
    read_zeng_data,
    read_zeng_fasta,
    read_zeng_tsv,
)
from mlcourse.dna import dinucleotide_counts

SEQS = ["ACGTACGTAC", "TTGCAACGTA", "GGGCCCAAAT"]


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    """An empty cache and no mirror."""
    monkeypatch.setenv("MLCOURSE_DATA", str(tmp_path / "cache"))
    monkeypatch.delenv("MLCOURSE_MIRROR", raising=False)


def test_fasta_with_target(tmp_path):
    fasta, target = tmp_path / "x.fa", tmp_path / "x.target"
    # Multi-line records and lower case, as FASTA allows.
    fasta.write_text(">chr1:1-11\nACGTA\ncgtac\n>chr2:5-15\nTTGCAACGTA\n>Rev:chr3:1-11\nGGGCCCAAAT\n")
    target.write_text("1\t0\n0\t1\n1 0\n")
    names, seqs = read_fasta(fasta)
    assert names == ["chr1:1-11", "chr2:5-15", "Rev:chr3:1-11"] and seqs == SEQS
    data = read_zeng_fasta(fasta, target, name="toy")
    assert data.seqs == SEQS and data.y.tolist() == [1, 0, 1] and data.name == "toy"
    assert data.X.shape == (3, 4, 10)


def test_zeng_data_lines_with_shuffled_negatives(tmp_path):
    path = tmp_path / "train.data"
    path.write_text(
        ">chr20:1-11 ACGTACGTAC 1\nchr9:5-15_shuf TTGCAACGTA 0\n\nchr3:1-11 GGGCCCAAAT 1\n"
    )
    data = read_zeng_data(path)
    assert data.seqs == SEQS and data.y.tolist() == [1, 0, 1] and data.name == "train"


def test_gzipped_tsv(tmp_path):
    path = tmp_path / "train.tsv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("seq\tbound\n" + "".join(f"{s}\t{i % 2}\n" for i, s in enumerate(SEQS)))
    data = read_zeng_tsv(path)
    assert data.seqs == SEQS and data.y.tolist() == [0, 1, 0]


def _deepbind(path, rows):
    with gzip.open(path, "wt") as handle:
        handle.write("FoldID\tEventID\tseq\tBound\n")
        for i, (seq, bound) in enumerate(rows):
            handle.write(f"A\tseq_{i:05d}_peak\t{seq}\t{bound}\n")


def test_deepbind_training_file_gets_dinucleotide_shuffled_negatives(tmp_path):
    rng = np.random.default_rng(0)
    peaks = ["".join(rng.choice(list("ACGT"), 40)) for _ in range(30)]
    path = tmp_path / "TF_AC.seq.gz"
    _deepbind(path, [(s, 1) for s in peaks])
    data = read_deepbind(path, seed=0)
    assert len(data) == 60 and data.y.sum() == 30
    negatives = [s for s, y in zip(data.seqs, data.y) if y == 0]
    assert negatives != peaks
    for peak, negative in zip(peaks, negatives):
        assert dinucleotide_counts(negative) == dinucleotide_counts(peak)
    assert read_deepbind(path, seed=0).seqs == data.seqs
    assert read_deepbind(path, shuffled_negatives=False).y.tolist() == [1] * 30


def test_deepbind_test_file_keeps_its_own_background(tmp_path):
    path = tmp_path / "TF_B.seq.gz"
    _deepbind(path, [(SEQS[0], 1), (SEQS[1], 0), (SEQS[2], 1)])
    data = read_deepbind(path)
    assert data.seqs == SEQS and data.y.tolist() == [1, 0, 1]


@pytest.mark.parametrize(
    "write, message",
    [
        (lambda p: p.write_text("seq\tbound\nACGTXCGTAC\t1\n"), r"line 2: 'X' at position 4"),
        (lambda p: p.write_text("seq\tbound\nACGTACGTAC\t1\nACGTAC\t0\n"), "sequence 0 is 10 bp but sequence 1 is 6 bp"),
        (lambda p: p.write_text("seq\tbound\nACGTACGTAC\t2\n"), "line 2: label '2' is not 0 or 1"),
        (lambda p: p.write_text("sequence\tlabel\nACGT\t1\n"), r"lacks column\(s\) \['seq', 'bound'\]"),
        (lambda p: p.write_text("seq\tbound\nACGT\t1\textra\n"), "line 2: 3 fields, the header has 2"),
        (lambda p: p.write_text("seq\tbound\n"), "holds no sequences"),
        (lambda p: p.write_text(""), "is empty"),
        (lambda p: p.write_bytes(gzip.compress(b"seq\tbound\n" + b"ACGTACGTAC\t1\n" * 500)[:-30]),
         "truncated or corrupt gzip"),
        (lambda p: p.write_bytes(b"\x1f\x8b" + b"not really gzip"), "truncated or corrupt gzip"),
    ],
)
def test_bad_files_are_clear_value_errors(tmp_path, write, message):
    path = tmp_path / "bad.tsv"
    write(path)
    with pytest.raises(ValueError, match=message):
        read_zeng_tsv(path)


def test_bad_zeng_files(tmp_path):
    data = tmp_path / "x.data"
    data.write_text("chr1:1-11_shuf ACGTACGTAC 1\n")
    with pytest.raises(ValueError, match="line 1: shuffled sequence 'chr1:1-11_shuf' is labelled bound"):
        read_zeng_data(data)
    fasta, target = tmp_path / "x.fa", tmp_path / "x.target"
    fasta.write_text(">a\nACGT\n>b\nACGT\n")
    target.write_text("1 0\n")
    with pytest.raises(ValueError, match="has 2 sequences but .* has 1 labels"):
        read_zeng_fasta(fasta, target)
    fasta.write_text("ACGT\n>b\nACGT\n")
    with pytest.raises(ValueError, match="line 1: sequence before the first '>' header"):
        read_fasta(fasta)
    with pytest.raises(ValueError, match="no such file"):
        read_fasta(tmp_path / "missing.fa")


def test_loaders_without_data_name_the_fetch_command(no_data):
    with pytest.raises(ValueError, match=r"zeng_ctcf/test.fa is not in the data cache .*`mlcourse fetch zeng_ctcf`"):
        load_zeng_ctcf("test")
    with pytest.raises(ValueError, match="`mlcourse fetch deepbind_REST`"):
        load_deepbind("rest", "test")
    with pytest.raises(ValueError, match="split must be 'train', 'valid' or 'test'"):
        load_zeng_ctcf("validation")
    with pytest.raises(ValueError, match=r"no DeepBind ENCODE set for TF 'MAX' .*ARID3A.*load_deepbind\(path\).*read_peaks"):
        load_deepbind("MAX")


@pytest.mark.mirror
def test_real_ctcf_splits_from_the_mirror(mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("MLCOURSE_DATA", str(tmp_path))
    sizes = {}
    for split in ("train", "valid", "test"):
        data = load_zeng_ctcf(split)
        sizes[split] = len(data)
        assert data.length == 101 and 0.49 < data.y.mean() < 0.51
    assert sizes == {"train": 77_174, "valid": 1_000, "test": 19_544}
    # The valid split's bound sequences are genomic; its shuffles keep their composition.
    valid = load_zeng_ctcf("valid")
    base_counts = Counter(c for s, y in zip(valid.seqs, valid.y) if y == 1 for c in s)
    shuffled_counts = Counter(c for s, y in zip(valid.seqs, valid.y) if y == 0 for c in s)
    assert abs(base_counts["G"] / shuffled_counts["G"] - 1) < 0.05


@pytest.mark.mirror
def test_real_deepbind_sets_from_the_mirror(mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("MLCOURSE_DATA", str(tmp_path))
    test = load_deepbind("CTCFL", "test")
    assert (len(test), int(test.y.sum())) == (1000, 500)
    train = load_deepbind("GABPA", "train")
    assert len(train) == 2 * int(train.y.sum()) and train.length == 101


def test_deepbind_file_of_any_tf_by_path(tmp_path):
    path = tmp_path / "FOXA1_HepG2_AC.seq.gz"
    _deepbind(path, [(SEQS[0], "1"), (SEQS[1], "1")])
    data = load_deepbind(str(path))
    assert data.seqs[:2] == SEQS[:2] and data.y.tolist() == [1, 1, 0, 0]


def _shuffles_keep_dinucleotides(data):
    half = len(data) // 2
    for bound, unbound in zip(data.seqs[:half], data.seqs[half:]):
        assert dinucleotide_counts(bound) == dinucleotide_counts(unbound)


def test_read_peaks_centres_trims_and_shuffles(tmp_path):
    peaks = tmp_path / "peaks.fa.gz"
    with gzip.open(peaks, "wt") as handle:  # soft-masked, ragged, one record on two lines
        handle.write(">chr1:0-12\nacgtTTGCAAcc\n>chr2:0-10\nGGGCC\nCAAAT\n>chr3:0-14\nAATTGCATGCATTT\n")
    data = read_peaks(peaks, length=8, seed=1)
    assert data.seqs[:3] == ["GTTTGCAA", "GGCCCAAA", "TGCATGCA"]
    assert data.y.tolist() == [1, 1, 1, 0, 0, 0] and data.length == 8
    _shuffles_keep_dinucleotides(data)
    assert read_peaks(peaks, length=8, seed=1).seqs == data.seqs  # seeded
    with pytest.raises(ValueError, match=r"peaks.fa.gz, line 3: peak 'chr2:0-10' is 10 bp but the first peak is 12 bp"):
        read_peaks(peaks)
    with pytest.raises(ValueError, match=r"line 3: peak 'chr2:0-10' is 10 bp, shorter than length=11"):
        read_peaks(peaks, length=11)


def test_read_peaks_against_a_second_peak_file(tmp_path):
    bound, other = tmp_path / "a.fa", tmp_path / "b.fa"
    bound.write_text(">a1\nACGTACGT\n>a2\nTTTTCCCC\n")
    other.write_text(">b1\nGGGGAAAA\n>b2\nCACACACA\n>b3\nATATATAT\n")
    data = read_peaks(bound, negatives=other)
    assert data.seqs == ["ACGTACGT", "TTTTCCCC", "GGGGAAAA", "CACACACA", "ATATATAT"]
    assert data.y.tolist() == [1, 1, 0, 0, 0]
    other.write_text(">b1\nGGGGAAAAT\n")
    with pytest.raises(ValueError, match=r"negatives file .*b.fa has peaks of 9 bp but .*a.fa has 8 bp; pass length="):
        read_peaks(bound, negatives=other)
    assert read_peaks(bound, length=6, negatives=other).seqs[-1] == "GGGAAA"


def test_read_peaks_bad_input(tmp_path):
    path = tmp_path / "iupac.fa"
    path.write_text(">p1\nACGTACGT\n>p2\nACGT\nACRT\n>p3\nAYGTACGT\n")
    with pytest.raises(ValueError, match=r"iupac.fa, line 5: 'R' at position 2 of the line is not a DNA base.*iupac='N'"):
        read_peaks(path)
    assert read_peaks(path, iupac="N").seqs[:3] == ["ACGTACGT", "ACGTACNT", "ANGTACGT"]
    assert read_peaks(path, iupac="skip").seqs[:1] == ["ACGTACGT"] and len(read_peaks(path, iupac="skip")) == 2
    with pytest.raises(ValueError, match="iupac must be 'error', 'N' or 'skip'"):
        read_peaks(path, iupac="drop")
    path.write_text(">p1\nACGTACGT\n>p2\n>p3\nACGTACGT\n")
    with pytest.raises(ValueError, match=r"iupac.fa, line 3: record 'p2' has no sequence"):
        read_peaks(path)
    with pytest.raises(ValueError, match="negatives must be 'shuffle' or a peak FASTA path"):
        read_peaks(tmp_path / "iupac.fa", negatives=3)
    with pytest.raises(ValueError, match="no such file"):
        read_peaks(tmp_path / "missing.fa")
    with pytest.raises(ValueError, match="length must be a positive number of bp"):
        read_peaks(path, length=0)


def test_janggu_peaks_without_data_name_the_fetch_command(no_data):
    with pytest.raises(ValueError, match="`mlcourse fetch janggu_peaks`"):
        load_janggu_peaks("MafK")
    with pytest.raises(ValueError, match="no janggu peak set 'CTCF'; available: MafK, Oct4"):
        load_janggu_peaks("CTCF")


@pytest.mark.mirror
def test_real_mafk_and_oct4_peaks_from_the_mirror(mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("MLCOURSE_DATA", str(tmp_path))
    mafk = load_janggu_peaks("MafK")
    assert (len(mafk), mafk.length, int(mafk.y.sum())) == (7800, 200, 3900)
    _shuffles_keep_dinucleotides(mafk.subset(np.r_[0:50, 3900:3950]))
    versus = load_janggu_peaks("mafk", negatives="Oct4", length=101)
    assert (len(versus), versus.length, int(versus.y.sum())) == (7797, 101, 3900)
    # The real MafK peaks carry the MARE far more often than Oct4's.
    mare = [sum("TGCTGA" in s or "TCAGCA" in s for s, y in zip(versus.seqs, versus.y) if y == label)
            for label in (1, 0)]
    assert mare[0] > 3 * mare[1]
    with pytest.raises(ValueError, match="negatives must be 'shuffle' or another peak set \\('Oct4'\\)"):
        load_janggu_peaks("MafK", negatives="MafK")
