"""Each bad input found by probing the public API gets a clear ValueError that names it (issue 15)."""

import gzip

import numpy as np
import pytest
import torch

from mlcourse import dna
from mlcourse.datasets.encode import read_zeng_fasta
from mlcourse.datasets.reviews import load_reviews, read_annotations, read_reviews
from mlcourse.models import zeng


@pytest.mark.parametrize("seqs, message", [
    ({"ACGT": 1}, r"seqs must be a DNA string or a list of DNA strings, got dict"),
    ({"ACGT"}, r"got set"),
    (b"ACGT", r"seqs is bytes, not a string: decode it first"),
    (None, r"got None"),
    (np.array("ACGT"), r"seqs is a 0-d array"),
    (7, r"got int 7"),
    (torch.zeros(1, 4, 3), r"got a one-hot tensor \(dna.decode turns it into strings\)"),
    ([b"ACGT"], r"sequence 0 is a bytes, not a string"),
])
def test_one_hot_refuses_what_is_not_dna_strings(seqs, message):
    with pytest.raises(ValueError, match=message):
        dna.one_hot(seqs)


def test_one_hot_takes_an_array_of_strings():
    assert torch.equal(dna.one_hot(np.array(["ACGT", "TTTT"])), dna.one_hot(["ACGT", "TTTT"]))


def test_reverse_complement_refuses_rna_and_checks_shapes():
    with pytest.raises(ValueError, match=r"sequence 0 has 'U' at position 3: only A, C, G, T, N and - .*U is RNA: write T for DNA"):
        dna.reverse_complement("ACGU")
    with pytest.raises(ValueError, match=r"sequence 1 has 'u' at position 0"):
        dna.reverse_complement(["ACG", "uu"])
    with pytest.raises(ValueError, match=r"seq: expected one-hot DNA of shape \(\.\.\., 4, L\), got \(3, 5\)"):
        dna.reverse_complement(torch.zeros(3, 5))
    with pytest.raises(ValueError, match=r"seq must be a DNA string or a list of DNA strings, got None"):
        dna.reverse_complement(None)
    assert dna.reverse_complement(["acg", "TTN"]) == ["cgt", "NAA"]  # case kept, ragged lengths fine
    assert dna.reverse_complement(np.array(["AAC"])) == ["GTT"]


def test_dinucleotide_shuffle_takes_one_sequence():
    with pytest.raises(ValueError, match=r"seq must be one DNA string, got list; shuffle a list with "):
        dna.dinucleotide_shuffle(["ACGTA", "TTTTA"])
    with pytest.raises(ValueError, match="seq must be one DNA string"):
        dna.dinucleotide_counts(["AC"])


def test_kmer_counts_refuses_a_table_that_would_not_fit():
    with pytest.raises(ValueError, match=r"a table of 1 x 4\*\*14 counts for k=14 would need 2.0 GiB .*use a smaller k"):
        dna.kmer_counts("ACGT", 14)
    with pytest.raises(ValueError, match=r"the list of words for k=13 would need"):
        dna.kmers(13)
    with pytest.raises(ValueError, match=r"k must be at least 1, got 2.5"):
        dna.kmer_counts("ACGT", 2.5)
    assert dna.kmer_counts("ACGTACGTACGT", 11).sum() == 2  # large k, small table: fine
    assert dna.kmer_counts(["AC", "ACGT"], 3).sum(axis=1).tolist() == [0, 2]


@pytest.mark.parametrize("line", ["1 1", "0 0", "1 0 1", "2"])
def test_target_lines_must_mark_exactly_one_class(tmp_path, line):
    (tmp_path / "x.fa").write_text(">a\nACGT\n>b\nACGT\n")
    (tmp_path / "x.target").write_text(f"1 0\n{line}\n")
    with pytest.raises(ValueError, match=r"x.target, line 2: (target '.*' is not '1 0' \(bound\) or '0 1'|label '2')"):
        read_zeng_fasta(tmp_path / "x.fa", tmp_path / "x.target")
    (tmp_path / "x.target").write_text("1 0\n0 1\n")
    assert read_zeng_fasta(tmp_path / "x.fa", tmp_path / "x.target").y.tolist() == [1, 0]


@pytest.mark.parametrize("seq_len, message", [
    (101.0, r"seq_len must be a whole number of bp \(an int\), got 101.0 \(float\)"),
    ("101", r"got '101' \(str\)"),
    (True, r"got True \(bool\)"),
    (10, r"seq_len=10 is too short for '1layer': it needs at least 24 bp"),
])
def test_zeng_build_names_a_bad_seq_len(seq_len, message):
    with pytest.raises(ValueError, match=message):
        zeng.build("1layer", seq_len=seq_len)


def test_zeng_build_takes_numpy_integers_and_names_bad_architectures():
    assert zeng.build("1layer", np.int64(101)).seq_len == 101
    with pytest.raises(ValueError, match=r"unknown architecture \['1layer'\]"):
        zeng.build(["1layer"])


def _lei_line(text):
    return "0.5 0.5 0.5 0.5 0.5\t" + text + "\n"


def test_review_files_that_are_not_utf8_or_truncated_name_the_file(tmp_path):
    latin = tmp_path / "reviews.aspect1.train.txt"
    latin.write_bytes((_lei_line("a fine beer .") + _lei_line("caf\xe9 au lait")).encode("latin-1"))
    with pytest.raises(ValueError, match=r"reviews.aspect1.train.txt, after line \d: byte b'\\xe9' is not UTF-8"):
        read_reviews(latin)
    whole = gzip.compress(_lei_line("a fine beer .").encode() * 2000)
    cut = tmp_path / "reviews.aspect1.heldout.txt.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match=r"heldout.txt.gz, after line \d+: a truncated or corrupt gzip file"):
        read_reviews(cut)
    notes = tmp_path / "annotations.json"
    notes.write_text("[1, 2]\n")
    with pytest.raises(ValueError, match=r"annotations.json, line 1: expected a JSON object"):
        read_annotations(notes)
    with pytest.raises(ValueError, match="no such file: .*missing.txt"):
        read_reviews(tmp_path / "missing.txt")


def test_load_reviews_with_a_mistyped_root_is_an_error_not_generated_reviews(tmp_path, monkeypatch):
    monkeypatch.setenv("MLCOURSE_DATA", str(tmp_path / "cache"))
    with pytest.raises(ValueError, match=r"root='.*/bier' is not a folder"):
        load_reviews("aroma", root=tmp_path / "bier")
    with pytest.raises(ValueError, match=r"has no reviews.aspect1.train.txt\[.gz\]"):
        load_reviews("aroma", root=tmp_path)
    assert "generated" in load_reviews("aroma", n=50).train.source  # root=None: the documented fallback
