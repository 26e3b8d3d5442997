"""mlcourse.datasets.simulate: planted sites are where they are said to be, and only they separate the classes."""

from collections import Counter

import numpy as np
import pytest
from scipy.stats import ks_2samp
from sklearn.metrics import roc_auc_score

from mlcourse.datasets.simulate import motif_discovery, motif_occupancy, planted_motif
from mlcourse.dna import dinucleotide_counts, reverse_complement
from mlcourse.motifs import Motif, jaspar, scan, scan_positions


@pytest.fixture(scope="module")
def maff():
    return planted_motif("MAFF")


@pytest.fixture(scope="module")
def discovery():
    return motif_discovery("MAFF", n=1000, seed=0)


@pytest.fixture(scope="module")
def occupancy():
    return motif_occupancy("MAFF", n=1000, seed=0)


def _site_word(seq, site):
    word = seq[site.start : site.end]
    return word if site.strand == "+" else reverse_complement(word)


def test_discovery_is_balanced_with_sites_only_on_bound_rows(discovery, maff):
    assert len(discovery) == 1000 and discovery.length == 101
    assert discovery.y.sum() == 500
    for label, sites in zip(discovery.y, discovery.sites):
        if label == 0:
            assert sites == []
            continue
        assert 1 <= len(sites) <= 3
        spans = sorted((s.start, s.end) for s in sites)
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:]))
        for site in sites:
            assert (site.motif, site.width, site.strand in "+-") == ("MAFF", 13, True)
            assert 0 <= site.start and site.end <= 101


def test_discovery_sites_hold_motif_instances_read_on_their_strand(discovery, maff):
    scores = scan_positions(maff, discovery.X)
    planted, window = [], []
    for i, sites in enumerate(discovery.sites):
        for site in sites:
            word = _site_word(discovery.seqs[i], site)
            planted.append(sum(maff.log_odds["ACGT".index(b), j] for j, b in enumerate(word)))
            window.append(scores[i, "+-".index(site.strand), site.start])
    assert np.allclose(planted, window, atol=1e-4)
    # Drawn from the PWM, instances score far above random 11-mers (mean about -10 bits).
    assert np.median(planted) > 8


def test_discovery_negatives_are_dinucleotide_shuffles_of_the_positives(discovery):
    def profile(seq):
        return (seq[0], seq[-1], tuple(sorted(dinucleotide_counts(seq).items())))

    bound = Counter(profile(s) for s, y in zip(discovery.seqs, discovery.y) if y == 1)
    unbound = Counter(profile(s) for s, y in zip(discovery.seqs, discovery.y) if y == 0)
    assert bound == unbound


def test_only_the_motif_separates_discovery_classes(discovery, maff):
    assert roc_auc_score(discovery.y, scan(maff, discovery.X)) > 0.95
    shuffled = Motif("shuffled", maff.counts[:, np.random.default_rng(0).permutation(maff.width)])
    assert abs(roc_auc_score(discovery.y, scan(shuffled, discovery.X)) - 0.5) < 0.1


def test_simulation_is_seeded():
    a, b, c = (motif_discovery("MAFF", n=20, seed=s) for s in (3, 3, 4))
    assert a.seqs == b.seqs and a.sites == b.sites and a.seqs != c.seqs
    assert motif_occupancy("MAFF", n=20, seed=3).seqs == motif_occupancy("MAFF", n=20, seed=3).seqs


def test_occupancy_every_row_has_one_tf_and_one_cofactor_site(occupancy):
    assert occupancy.y.sum() == 500
    windows = {name: scan_positions(planted_motif(name), occupancy.X) for name in ("MAFF", "ELK1")}
    scores = {"MAFF": [], "ELK1": []}
    for i, sites in enumerate(occupancy.sites):
        names = sorted(s.motif for s in sites)
        assert names == ["ELK1", "MAFF"]
        tf, co = sorted(sites, key=lambda s: s.motif != "MAFF")
        assert tf.end <= co.start or co.end <= tf.start  # no overlap
        for site in sites:
            scores[site.motif].append(windows[site.motif][i, "+-".index(site.strand), site.start])
    for name, values in scores.items():  # PWM draws: high scores, a few weak ones
        assert np.median(values) > 8 and np.mean(np.array(values) > 0) > 0.95, name


def _gap_and_orientation(sites, tf="MAFF"):
    """The co-factor's gap after the TF, read on the TF's strand, and whether it is on the same strand."""
    site, co = sorted(sites, key=lambda s: s.motif != tf)
    gap = co.start - site.end if site.strand == "+" else site.start - co.end
    return gap, site.strand == co.strand


def _arranged(sites, spacing=24):
    return _gap_and_orientation(sites) == (spacing, True)


def test_occupancy_bound_rows_and_only_they_have_the_composite(occupancy):
    arranged = np.array([_arranged(s) for s in occupancy.sites])
    assert np.array_equal(arranged, occupancy.y == 1)


def test_occupancy_default_cofactor_is_not_a_palindrome():
    # ELK1's consensus differs from its reverse complement, so "same" and "opposite"
    # orientations of the composite are different sequences
    elk1 = planted_motif("ELK1")
    assert elk1.consensus == "ACCGGAAGT" and reverse_complement(elk1.consensus) != elk1.consensus
    assert motif_occupancy("MAFF", n=10, seed=0).name.endswith("(co-factor ELK1)")


def test_occupancy_wrong_orientation_negatives_sit_at_the_planted_gap(occupancy):
    arrangement = [_gap_and_orientation(s) for s in occupancy.sites]
    unbound = [a for a, y in zip(arrangement, occupancy.y) if y == 0]
    flipped = [a == (24, False) for a in unbound]
    # about 30% (flipped=0.3) of the 500 unbound rows: the planted gap, the other strand
    assert 0.25 < np.mean(flipped) < 0.35
    # the other unbound rows: a co-factor on either strand at gaps of all kinds
    others = [a for a, f in zip(unbound, flipped) if not f]
    assert 0.4 < np.mean([same for _, same in others]) < 0.6
    assert len({gap for gap, _ in others}) > 40
    # the flipped composite is on either strand, like the bound one
    tf_minus = [next(x for x in s if x.motif == "MAFF").strand == "-"
                for s, y in zip(occupancy.sites, occupancy.y) if y == 0]
    assert 0.35 < np.mean([m for m, f in zip(tf_minus, flipped) if f]) < 0.65
    none = motif_occupancy("MAFF", n=1000, seed=0, flipped=0.0)
    assert np.mean([_gap_and_orientation(s) == (24, False) for s in none.sites]) < 0.02  # by chance only
    every = motif_occupancy("MAFF", n=200, seed=0, flipped=1.0)
    assert all(_gap_and_orientation(s) == (24, y == 1) for s, y in zip(every.sites, every.y))


def test_occupancy_tf_position_and_strand_say_nothing(occupancy):
    tf = [next(s for s in sites if s.motif == "MAFF") for sites in occupancy.sites]
    starts = np.array([s.start for s in tf])
    minus = np.array([s.strand == "-" for s in tf])
    bound = occupancy.y == 1
    assert ks_2samp(starts[bound], starts[~bound]).pvalue > 0.01
    assert abs(minus[bound].mean() - minus[~bound].mean()) < 0.1


def test_occupancy_strength_is_a_weak_signal_and_can_be_switched_off(maff):
    strong = motif_occupancy("MAFF", n=2000, seed=1)
    flat = motif_occupancy("MAFF", n=2000, seed=1, strength_draws=1)
    auc_strong = roc_auc_score(strong.y, scan(maff, strong.X))
    auc_flat = roc_auc_score(flat.y, scan(maff, flat.X))
    assert 0.58 < auc_strong < 0.8
    assert abs(auc_flat - 0.5) < 0.05


def test_occupancy_with_a_chosen_cofactor_and_spacing():
    data = motif_occupancy("CTCF", n=40, seed=0, cofactor="GATA1", spacing=5)
    assert {s.motif for sites in data.sites for s in sites} == {"CTCF", "GATA1"}
    assert all((_gap_and_orientation(sites, "CTCF") == (5, True)) == bool(y) for sites, y in zip(data.sites, data.y))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: motif_discovery("MAFF", n=7), "even number"),
        (lambda: motif_discovery("MAFF", n=10, length=20), "too short"),
        (lambda: motif_discovery("MAFF", n=10, max_instances=0), "max_instances"),
        (lambda: motif_discovery("NOTATF", n=10), "no JASPAR CORE motif named 'NOTATF'"),
        (lambda: motif_occupancy("MAFF", n=10, spacing=-1), "spacing"),
        (lambda: motif_occupancy("MAFF", n=10, length=30), "too short"),
        (lambda: motif_occupancy("MAFF", n=10, strength_draws=0), "strength_draws"),
        (lambda: motif_occupancy("MAFF", n=10, flipped=1.5), "flipped must be a share"),
        (lambda: motif_occupancy("MAFF", n=10, flipped="half"), "flipped must be a share"),
    ],
)
def test_bad_arguments_are_clear_value_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_the_shortest_allowed_sequences_still_fit_every_site():
    # 3 MAFF sites (13 bp) fit in 63 bp however the first two fall; 62 bp is refused.
    data = motif_discovery("MAFF", n=200, length=63, seed=0)
    for sites in data.sites:
        spans = sorted((s.start, s.end) for s in sites)
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:]))
        assert all(end <= 63 for _, end in spans)
    with pytest.raises(ValueError, match="too short"):
        motif_discovery("MAFF", n=200, length=62)
    tight = motif_occupancy("MAFF", n=200, length=34, spacing=0, seed=0)
    assert np.array_equal([_arranged(s, spacing=0) for s in tight.sites], tight.y == 1)


def test_simulated_maff_plants_the_full_mare():
    motif = planted_motif("MAFF")
    assert (motif.matrix_id, motif.consensus) == ("MA0495.2", "TGCTGAGTCAGCA")
    assert planted_motif("maff").consensus == motif.consensus  # names are case-insensitive
    assert planted_motif("CTCF").matrix_id == jaspar("CTCF").matrix_id  # other names: the latest
    data = motif_discovery("MAFF", n=200, seed=0)
    words = [_site_word(s, site) for s, sites in zip(data.seqs, data.sites) for site in sites]
    # both half-sites are planted: each base of TGCTGA (left) and TCAGCA (right) mostly as in the MARE
    agree = np.mean([[a == b for a, b in zip(w, motif.consensus)] for w in words], axis=0)
    assert agree[:6].mean() > 0.8 and agree[7:].mean() > 0.8


def test_scan_sites_finds_the_planted_sites(discovery, maff):
    found = discovery.scan_sites(maff, min_score=10.0)
    # (the MARE is a palindrome: a site scores about as well on both strands, so compare starts)
    planted = {(i, s.start) for i, sites in enumerate(discovery.sites) for s in sites}
    hits = {(i, s.start) for i, sites in enumerate(found) for s in sites}
    assert len(planted & hits) / len(planted) > 0.6  # most PWM draws are strong enough to be found
    assert sum(map(len, found[:50])) < 2 * sum(map(len, discovery.sites[:50]))  # few extra hits
    for sites in found:
        assert all(a.end <= b.start for a, b in zip(sites, sites[1:]))  # never overlapping


def test_split_with_an_empty_part(discovery):
    train, valid, test = discovery.split(valid=0.1, test=0.0, seed=0)
    assert (len(train), len(valid), len(test)) == (900, 100, 0)
    assert test.X.shape == (0, 4, 0) and test.length == 0 and "0 sequences" in repr(test)
