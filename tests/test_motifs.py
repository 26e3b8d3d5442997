"""mlcourse.motifs: JASPAR lookup, PWM arithmetic, scanning, sampling and similarity."""

import numpy as np
import pytest

from mlcourse.datasets.simulate import motif_discovery
from mlcourse.dna import one_hot, reverse_complement
from mlcourse.motifs import (
    Motif,
    best_jaspar_match,
    jaspar,
    jaspar_names,
    jaspar_versions,
    sample,
    scan,
    scan_positions,
    similarity,
    tomtom,
)


@pytest.fixture(scope="module")
def ctcf():
    return jaspar("CTCF")


def test_jaspar_by_name_and_id(ctcf):
    assert (ctcf.name, ctcf.matrix_id, ctcf.width) == ("CTCF", "MA0139.2", 15)
    assert ctcf.counts.shape == (4, 15)
    # MA0139.2 column 2 is almost always C (903 of ~914 sites in JASPAR).
    assert ctcf.consensus[2] == "C" and ctcf.counts[1, 2] == 903
    assert jaspar("ctcf").matrix_id == "MA0139.2"
    assert jaspar("MA0139").matrix_id == "MA0139.2"
    assert jaspar("MA0139.1").width == 19  # an older version, still reachable by full ID
    assert "MAFF" in jaspar_names()


def test_unknown_names_suggest_close_ones():
    with pytest.raises(ValueError, match=r"no JASPAR CORE motif named 'CTFC'; did you mean .*CTCF"):
        jaspar("CTFC")
    with pytest.raises(ValueError, match="no JASPAR CORE matrix with ID 'MA9999'"):
        jaspar("MA9999")
    with pytest.raises(ValueError, match="expected a JASPAR TF name"):
        jaspar("  ")


def test_probabilities_log_odds_and_information_content(ctcf):
    p = ctcf.probs
    assert np.allclose(p.sum(axis=0), 1) and (p > 0).all()
    expected = (ctcf.counts + 0.25) / (ctcf.counts.sum(axis=0) + 1)
    assert np.allclose(p, expected)
    assert np.allclose(ctcf.log_odds, np.log2(p / 0.25))
    ic = ctcf.information_content()
    assert ic.shape == (15,) and ((ic >= 0) & (ic <= 2)).all()
    assert ic.argmax() in (2, 7)  # the near-invariant C and G columns

    certain = Motif("certain", np.diag([1000.0] * 4))
    uniform = Motif("uniform", np.full((4, 3), 10.0))
    assert np.allclose(certain.information_content(), 2, atol=0.02)
    assert np.allclose(uniform.information_content(), 0)


def test_from_probs_keeps_the_probabilities_and_rejects_bad_matrices():
    probs = np.array([[0.7, 0.1], [0.1, 0.1], [0.1, 0.1], [0.1, 0.7]])
    m = Motif.from_probs(probs, "learned")
    assert np.allclose(m.probs, probs, atol=0.01) and m.matrix_id is None
    assert np.allclose(Motif.from_probs(probs * 3, "x").probs, m.probs)  # columns get normalised
    with pytest.raises(ValueError, match=r"shape \(4, W\)"):
        Motif.from_probs(np.ones((3, 5)), "bad")
    with pytest.raises(ValueError, match="column 1 has a negative"):
        Motif.from_probs(np.array([[1, -1], [0, 1], [0, 1], [0, 0]]), "bad")
    with pytest.raises(ValueError, match="column 0 has no counts"):
        Motif("bad", np.zeros((4, 2)))


def test_reverse_complement_motif(ctcf):
    rc = ctcf.reverse_complement()
    assert rc.consensus == reverse_complement(ctcf.consensus)


def test_scan_positions_score_windows_on_both_strands(ctcf):
    rng = np.random.default_rng(0)
    background = "".join(rng.choice(list("ACGT"), 60))
    site = sample(ctcf, 1, rng)[0]
    plus = background[:20] + site + background[35:]
    minus = background[:30] + reverse_complement(site) + background[45:]
    scores = scan_positions(ctcf, [plus, minus])
    assert scores.shape == (2, 2, 60 - 15 + 1)
    # The site's score is the sum of its bases' log-odds.
    expected = sum(ctcf.log_odds["ACGT".index(b), j] for j, b in enumerate(site))
    assert scores[0, 0, 20] == pytest.approx(expected, abs=1e-4)
    assert scores[1, 1, 30] == pytest.approx(expected, abs=1e-4)
    assert np.unravel_index(scores[0].argmax(), scores[0].shape) == (0, 20)
    assert np.unravel_index(scores[1].argmax(), scores[1].shape) == (1, 30)
    assert np.allclose(scan(ctcf, [plus, minus]), scores.max(axis=(1, 2)))
    # A one-hot tensor gives the same; the '-' strand of a sequence is the '+' of its reverse.
    assert np.allclose(scan_positions(ctcf, one_hot([plus, minus])), scores)
    flipped = scan_positions(ctcf, [reverse_complement(plus)])
    assert np.allclose(flipped[0, 1, ::-1], scores[0, 0], atol=1e-4)


def test_scan_finds_the_planted_sites_at_their_true_positions_and_strands(ctcf):
    data = motif_discovery(ctcf, n=400, seed=1)
    scores = scan_positions(ctcf, data.X)
    hits, bound = 0, np.flatnonzero(data.y == 1)
    for i in bound:
        strand, start = np.unravel_index(scores[i].argmax(), scores[i].shape)
        planted = {(site.strand, site.start) for site in data.sites[i]}
        hits += ("+-"[strand], start) in planted
    assert hits / len(bound) > 0.97


def test_scan_rejects_bad_input(ctcf):
    with pytest.raises(ValueError, match="shorter than motif 'CTCF'"):
        scan(ctcf, ["ACGTACGT"])
    with pytest.raises(ValueError, match=r"shape \(N, 4, L\)"):
        scan(ctcf, np.zeros((2, 5, 30)))


def test_sample_follows_the_column_probabilities(ctcf):
    seqs = sample(ctcf, 4000, rng=0)
    assert len(seqs) == 4000 and {len(s) for s in seqs} == {15}
    freq = one_hot(seqs).mean(dim=0).numpy()
    assert np.abs(freq - ctcf.probs).max() < 0.03
    assert sample(ctcf, 3, rng=7) == sample(ctcf, 3, rng=7)
    with pytest.raises(ValueError, match="non-negative integer"):
        sample(ctcf, -1)


def test_similarity_finds_offset_and_strand(ctcf):
    assert similarity(ctcf, ctcf).score == pytest.approx(1.0)
    flipped = similarity(ctcf, ctcf.reverse_complement())
    assert flipped.strand == "-" and flipped.score == pytest.approx(1.0)
    part = Motif("part", ctcf.counts[:, 4:12])
    align = similarity(ctcf, part)
    assert (align.offset, align.strand) == (4, "+") and align.score == pytest.approx(1.0)
    align = similarity(ctcf, part.reverse_complement())
    assert (align.offset, align.strand) == (4, "-")
    shuffled = Motif("shuffled", ctcf.counts[:, np.random.default_rng(0).permutation(15)])
    assert similarity(ctcf, shuffled).score < 0.7


def test_best_jaspar_match_recovers_a_noisy_motif():
    maff = jaspar("MAFF")
    noisy = maff.probs + np.random.default_rng(0).uniform(0, 0.15, size=maff.probs.shape)
    ranked = best_jaspar_match(noisy / noisy.sum(axis=0))
    assert len(ranked) > 500
    assert ranked[0][1].p_value <= ranked[1][1].p_value and ranked[0][1].e_value < 0.05
    assert ranked[0][0].name.upper() in {"MAFF", "MAFK", "MAFG", "MAFB"}
    top = best_jaspar_match(noisy, candidates=["CTCF", "MAFF", "GATA1"])
    assert [m.name for m, _ in top][0] == "MAFF"


def test_jaspar_versions_and_a_version_that_does_not_exist():
    versions = jaspar_versions("MAFK")
    assert [m.matrix_id for m in versions] == ["MA0496.1", "MA0496.2", "MA0496.3", "MA0496.4"]
    assert jaspar("MAFK", version=2).matrix_id == "MA0496.2" == jaspar("ma0496", 2).matrix_id
    assert jaspar("MA0496.1").consensus == versions[0].consensus and jaspar("MA0496").matrix_id == "MA0496.4"
    # by name, MAFK and MAFF default to version 2, the full MARE, not the latest half-site
    assert jaspar("MAFK").matrix_id == "MA0496.2" and jaspar("maff").consensus == "AATTTGCTGAGTCAGCAAATT"
    assert np.array_equal(jaspar("MAFF", version=2).counts, jaspar_versions("MA0495")[1].counts)
    with pytest.raises(ValueError, match=r"JASPAR MA0495 \(MAFF\) has no version 9; versions: 1, 2, 3, 4"):
        jaspar("MAFF", version=9)
    with pytest.raises(ValueError, match="has no version 7"):
        jaspar("MA0495.7")
    with pytest.raises(ValueError, match="'MA0495.3' names version 3 but version=2"):
        jaspar("MA0495.3", version=2)


def test_trim_keeps_the_informative_core():
    mare = jaspar("MAFF", version=2).trim(0.5)
    assert (mare.width, mare.consensus) == (13, "TGCTGAGTCAGCA")


def test_tomtom_prefers_a_long_good_match_to_a_short_perfect_one():
    # The query is the full MARE; one candidate is a perfect 7-bp piece of it (as BNC2's TGAGTCA),
    # the other the full MARE with noise. Averaging over the shorter motif ranks the piece first
    # (similarity 1); Tomtom's p-value ranks the full-length match first.
    query = jaspar("MAFF", version=2).trim(0.5)
    piece = Motif("piece", query.counts[:, 3:10])
    noisy = Motif.from_probs(query.probs * 0.7 + 0.3 * np.random.default_rng(0).dirichlet(np.ones(4), 13).T,
                             "noisy MARE")
    assert similarity(query, piece).score > similarity(query, noisy).score
    ranked = tomtom(query, [piece, noisy, jaspar("CTCF"), jaspar("GATA1")])
    assert [m.name for m, _ in ranked][:2] == ["noisy MARE", "piece"]
    best = ranked[0][1]
    assert (best.offset, best.strand, best.overlap) == (0, "+", 13) and best.p_value < ranked[1][1].p_value
    assert ranked[-1][1].p_value > 0.01  # unrelated motifs are not significant
    assert best.e_value == pytest.approx(best.p_value * 4)


def test_tomtom_min_overlap():
    query = jaspar("CTCF")
    edge = Motif("edge", query.counts[:, :4])  # only 4 columns: below the default overlap of 5, allowed as its width
    align = tomtom(query, [edge])[0][1]
    assert (align.offset, align.overlap) == (0, 4)
    wide = Motif("wide", query.counts)
    assert tomtom(query, [wide], min_overlap=15)[0][1].overlap == 15
    with pytest.raises(ValueError, match="min_overlap must be a positive integer"):
        tomtom(query, [wide], min_overlap=0)
