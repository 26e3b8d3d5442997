"""mlcourse.dna: encoding round trips, reverse complements and exact dinucleotide shuffles."""

from collections import Counter
from itertools import permutations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chisquare

from mlcourse.dna import (
    decode,
    dinucleotide_counts,
    dinucleotide_shuffle,
    kmer_counts,
    kmers,
    one_hot,
    reverse_complement,
    validate,
)

dna = st.text(alphabet="ACGTN", min_size=1, max_size=150)
mixed_case = st.text(alphabet="ACGTNacgtn", min_size=1, max_size=150)
seeds = st.integers(min_value=0, max_value=2**32 - 1)


@given(dna, seeds)
def test_shuffle_keeps_length_ends_and_every_dinucleotide_count(seq, seed):
    out = dinucleotide_shuffle(seq, seed)
    assert len(out) == len(seq)
    assert (out[0], out[-1]) == (seq[0], seq[-1])
    assert dinucleotide_counts(out) == dinucleotide_counts(seq)
    assert Counter(out) == Counter(seq)


def test_shuffle_draws_every_valid_sequence_equally_often():
    # Ground truth by brute force: all orderings with the same ends and dinucleotide counts.
    seq = "ACAGTACGA"
    target = dinucleotide_counts(seq)
    valid = sorted(
        p for p in {"".join(q) for q in permutations(seq)}
        if p[0] == seq[0] and p[-1] == seq[-1] and dinucleotide_counts(p) == target
    )
    assert len(valid) > 3
    rng = np.random.default_rng(0)
    draws = Counter(dinucleotide_shuffle(seq, rng) for _ in range(400 * len(valid)))
    assert set(draws) == set(valid)
    assert chisquare([draws[v] for v in valid]).pvalue > 1e-3


def test_shuffle_is_reproducible_and_changes_long_sequences():
    seq = "".join(np.random.default_rng(1).choice(list("ACGT"), 200))
    assert dinucleotide_shuffle(seq, 5) == dinucleotide_shuffle(seq, 5)
    assert dinucleotide_shuffle(seq, 5) != seq
    assert dinucleotide_shuffle(seq, 5) != dinucleotide_shuffle(seq, 6)


@given(st.lists(mixed_case, min_size=1, max_size=5).map(lambda xs: [x[: min(map(len, xs))] for x in xs]))
def test_one_hot_round_trips_and_has_one_or_no_hot_base_per_column(seqs):
    X = one_hot(seqs)
    assert X.dtype == torch.float32 and X.shape == (len(seqs), 4, len(seqs[0]))
    assert decode(X) == [s.upper() for s in seqs]
    column_sums = X.sum(dim=1)
    is_n = torch.tensor([[c in "Nn" for c in s] for s in seqs])
    assert torch.equal(column_sums, (~is_n).float())


@given(dna)
def test_reverse_complement_is_an_involution_and_agrees_across_types(seq):
    rc = reverse_complement(seq)
    assert reverse_complement(rc) == seq
    assert torch.equal(reverse_complement(one_hot(seq)), one_hot(rc))
    assert np.array_equal(reverse_complement(one_hot(seq).numpy()), one_hot(rc).numpy())
    assert reverse_complement([seq, seq]) == [rc, rc]


def test_reverse_complement_known_value():
    assert reverse_complement("AACGTN") == "NACGTT"
    assert reverse_complement("acgT") == "Acgt"


@given(st.text(min_size=1, max_size=30))
@settings(max_examples=200)
def test_validate_accepts_exactly_the_dna_letters(text):
    if set(text) <= set("ACGTNacgtn"):
        assert validate(text) == [text.upper()]
    else:
        with pytest.raises(ValueError, match="sequence 0 has"):
            validate(text)


@given(st.text(alphabet="ACGT", min_size=1, max_size=60), st.integers(1, 4))
def test_kmer_counts_match_a_direct_count(seq, k):
    counts = kmer_counts(seq, k)[0]
    words = kmers(k)
    expected = Counter(seq[i : i + k] for i in range(len(seq) - k + 1))
    assert {w: int(c) for w, c in zip(words, counts) if c} == dict(expected)
    assert counts.sum() == max(0, len(seq) - k + 1)


def test_kmer_counts_skip_words_with_n():
    assert kmer_counts("ANA", 2).sum() == 0
    assert kmer_counts(["AAN", "AAA"], 2)[:, kmers(2).index("AA")].tolist() == [1, 2]


def test_bad_base_names_the_character_sequence_and_position():
    with pytest.raises(ValueError, match=r"sequence 1 has 'X' at position 2"):
        one_hot(["ACGT", "ACXT"])


@pytest.mark.parametrize(
    "bad, message",
    [
        ([], "no sequences"),
        (["ACGT", "ACG"], "sequence 0 is 4 bp but sequence 1 is 3 bp"),
        (["ACGT", ""], "sequence 1 is empty"),
        (["ACGT", 7], "sequence 1 is a int"),
    ],
)
def test_bad_input_is_a_clear_value_error(bad, message):
    with pytest.raises(ValueError, match=message):
        validate(bad)


def test_other_bad_inputs():
    with pytest.raises(ValueError, match=r"shape \(N, 4, L\)"):
        decode(torch.zeros(2, 5, 3))
    with pytest.raises(ValueError, match="k must be at least 1"):
        kmers(0)
    with pytest.raises(ValueError, match="'Z' at position 3"):
        dinucleotide_shuffle("ACGZ", 0)
    with pytest.raises(ValueError, match="rng must be"):
        dinucleotide_shuffle("ACGT", "seed")
