"""Grammar experiments recover the arrangement a model was built to want."""

import numpy as np
import pytest
import torch

from mlcourse.dna import one_hot, reverse_complement
from mlcourse.interpret import compare, grammar
from mlcourse.motifs import jaspar, scan_positions


def background(n=30, length=101, seed=0):
    rng = np.random.default_rng(seed)
    return one_hot(["".join(rng.choice(list("ACGT"), length)) for _ in range(n)])


def test_insert_writes_the_motif_or_its_reverse_complement():
    X = background(2, 30)
    out = grammar.insert(X, "AACG", 5, "-")
    assert torch.equal(out[:, :, 5:9], one_hot(reverse_complement("AACG")).expand(2, 4, 4))
    assert torch.equal(out[:, :, :5], X[:, :, :5]) and not torch.equal(out, X)
    assert grammar.motif_string("CTCF") == jaspar("CTCF").consensus
    with pytest.raises(ValueError, match="does not fit"):
        grammar.insert(X, "AACG", 28)


def test_marginalize_measures_the_motif_effect():
    detector = compare.motif_detector("CTCF")
    X = background()
    ctcf = grammar.marginalize(detector, X, "CTCF")
    assert ctcf.attrs["mean effect"] > 5 and (ctcf["effect"] > 0).all()
    poly_a = grammar.marginalize(detector, X, "AAAAAAAAAAAAAAA")
    assert abs(poly_a.attrs["mean effect"]) < 0.5


def pair_model(first, second, gap, *, grammar_aware=True):
    """A black-box scorer that fires when ``second`` sits ``gap`` bp after ``first`` on the same strand."""
    a, b = jaspar(first), jaspar(second)

    def score(X):
        sa, sb = scan_positions(a, X), scan_positions(b, X)
        hit_a = sa >= 0.8 * a.log_odds.max(0).sum()
        hit_b = sb >= 0.8 * b.log_odds.max(0).sum()
        if not grammar_aware:
            return torch.tensor(hit_a.any((1, 2)) * 1.0 + hit_b.any((1, 2)) * 1.0)
        plus = hit_a[:, 0, : hit_a.shape[2] - a.width - gap] & hit_b[:, 0, a.width + gap:][:, : hit_a.shape[2] - a.width - gap]
        return torch.tensor(plus.any(1) * 3.0 + hit_a.any((1, 2)) * 1.0)

    return score


def test_spacing_scan_recovers_the_planted_arrangement():
    # lecture 02's composite: ELK1 24 bp after MAFF, same strand. ELK1 is not a palindrome,
    # so the opposite orientation at the same gap is a different sequence and must not score.
    X = background(20)
    spacings = range(-30, 31, 2)
    model = pair_model("MAFF", "ELK1", 24)
    scan = grammar.spacing_scan(model, X, "MAFF", "ELK1", spacings)
    best = scan.loc[scan["effect"].idxmax()]
    assert (best["spacing"], best["orientation"]) == (24, "same")
    assert grammar.arrangement_contrast(scan, 24, "same") > 5
    assert abs(grammar.arrangement_contrast(scan, 24, "opposite")) < 1
    blind = grammar.spacing_scan(pair_model("MAFF", "ELK1", 24, grammar_aware=False), X, "MAFF", "ELK1", spacings)
    assert abs(grammar.arrangement_contrast(blind, 24, "same")) < 1
    with pytest.raises(ValueError, match="spans"):
        grammar.spacing_scan(model, X, "MAFF", "ELK1", [90])
