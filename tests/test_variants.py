"""Variant effects: tables are checked, deltas are f(alt) - f(ref), and site-breaking variants stand out."""

import numpy as np
import pandas as pd
import pytest
import torch

from mlcourse.datasets.simulate import motif_discovery
from mlcourse.dna import one_hot
from mlcourse.interpret import compare, ism, variants
from mlcourse.motifs import jaspar
from mlcourse.train import binary_metrics

SEQ = "ACGTACGTAC"


def test_variant_table_rejects_bad_rows_naming_the_variant():
    good = variants.variant_table([("v1", 0, 3, "t", "a")])
    assert list(good.columns) == list(variants.COLUMNS) and good.loc[0, "ref"] == "T"
    for row, message in [
        (("v1", 0, 3, "TA", "A"), "only single-nucleotide variants"),
        (("v1", 0, 3, "T", "X"), "alt 'X' is not one of A, C, G, T"),
        (("v1", 0, 3, "T", "T"), "no change"),
        (("v1", 0, -1, "T", "A"), "position -1 is not a non-negative integer"),
    ]:
        with pytest.raises(ValueError, match=f"variant 'v1'.*{message}"):
            variants.variant_table([row])
    with pytest.raises(ValueError, match="'v1' appears more than once"):
        variants.variant_table([("v1", 0, 3, "T", "A"), ("v1", 0, 4, "A", "C")])
    with pytest.raises(ValueError, match="lacks column"):
        variants.variant_table(pd.DataFrame({"id": ["a"], "pos": [1]}))


def test_check_ref_names_the_variant_and_the_base_the_sequence_has():
    with pytest.raises(ValueError, match=r"variant 'rs7' \(seq 0, pos 2, A>T\): the sequence has G at position 2, not A"):
        variants.check_ref([SEQ], [("rs7", 0, 2, "A", "T")])
    with pytest.raises(ValueError, match="position 10 is past the end of the 10-bp sequence"):
        variants.check_ref([SEQ], [("rs8", 0, 10, "A", "T")])
    with pytest.raises(ValueError, match="no sequence 'chr9'"):
        variants.check_ref({"chr1": SEQ}, [("rs9", "chr9", 1, "C", "T")])
    assert len(variants.check_ref({"chr1": SEQ}, [("ok", "chr1", 1, "C", "T")])) == 1


def test_read_variants_own_header_and_vcf(tmp_path):
    own = tmp_path / "v.tsv"
    own.write_text("id\tseq\tpos\tref\talt\tnote\nrs1\t0\t2\tG\tA\tx\n")
    table = variants.read_variants(own)
    assert table.loc[0, "pos"] == 2 and table.loc[0, "note"] == "x"
    vcf = tmp_path / "v.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\nchr1\t3\t.\tG\tA\n")
    table = variants.read_variants(vcf)
    assert table.loc[0, "pos"] == 2 and table.loc[0, "id"] == "chr1:3:G>A"  # VCF POS is 1-based
    variants.check_ref({"chr1": SEQ}, table)
    bad = tmp_path / "bad.tsv"
    bad.write_text("id\tseq\tpos\tref\talt\nrs1\t0\t2\tG\n")
    with pytest.raises(ValueError, match="line 2: 4 tab-separated fields, the header has 5"):
        variants.read_variants(bad)
    bad.write_text("name\tpos\n")
    with pytest.raises(ValueError, match="lacks"):
        variants.read_variants(bad)
    with pytest.raises(ValueError, match="does not exist"):
        variants.read_variants(tmp_path / "missing.tsv")
    back = variants.read_variants(variants.write_variants(table, tmp_path / "out.tsv"))
    assert back[list(variants.COLUMNS)].equals(table[list(variants.COLUMNS)])


@pytest.fixture(scope="module")
def one_site():
    """CTCF planted once per bound sequence, and the hand-set CTCF detector."""
    return motif_discovery("CTCF", n=160, seed=3, max_instances=1), compare.motif_detector("CTCF")


def test_score_variants_is_alt_minus_ref_and_ranks_by_size(one_site):
    data, model = one_site
    table = variants.planted_site_variants(data, 20, seed=0)
    scored = variants.score_variants(model, data, table)
    row = scored.iloc[0]
    alt = data.seqs[row.seq][:row.pos] + row.alt + data.seqs[row.seq][row.pos + 1:]
    with torch.no_grad():
        want = (model(one_hot(alt)) - model(one_hot(data.seqs[row.seq]))).item()
    assert row.delta == pytest.approx(want, abs=1e-5)
    assert scored.sort_values("rank")["delta"].abs().is_monotonic_decreasing
    # ground truth: breaking the planted site's most informative base costs more than a far-away change
    truth = (scored["truth"] == "site-breaking").astype(int)
    assert binary_metrics(truth, scored["delta"].abs())["auc"] > 0.9


def test_snv_table_is_the_ism_map_as_rows():
    model = compare.motif_detector("CTCF")
    seqs = motif_discovery("CTCF", n=4, seed=1).seqs[:2]
    seqs[1] = seqs[1][:5] + "N" + seqs[1][6:]
    table = variants.snv_table(model, seqs)
    assert len(table) == 3 * 101 + 3 * 100  # the N column has no reference base
    X = one_hot(seqs)
    delta = ism.saturation_mutagenesis(model, X)
    for row in table.sample(20, random_state=0).itertuples():
        assert row.delta == pytest.approx(delta[row.seq, "ACGT".index(row.alt), row.pos].item(), abs=1e-5)
        assert seqs[row.seq][row.pos] == row.ref


def test_site_changes_finds_broken_and_created_sites():
    ctcf = jaspar("CTCF")
    rng = np.random.default_rng(0)
    background = "".join(rng.choice(list("ACGT"), 60))
    site = ctcf.consensus
    seq = background[:20] + site + background[20 + len(site):]
    ic = ctcf.information_content()
    column = int(ic.argmax())
    worst = "ACGT"[int(ctcf.probs[:, column].argmin())]
    broken = seq[:20 + column] + worst + seq[21 + column:]
    far = 50 if seq[50] != "A" else 51
    table = [("break", 0, 20 + column, site[column], worst),
             ("create", 1, 20 + column, worst, site[column]),
             ("far", 0, far, seq[far], "A" if seq[far] != "A" else "C")]
    table = variants.site_changes(ctcf, [seq, broken], table, threshold=0.9)
    assert list(table["change"]) == ["breaks", "creates", "none"]
    assert table.loc[0, "ref_site"] == pytest.approx(1.0)  # the consensus scores the best possible
    with pytest.raises(ValueError, match="threshold"):
        variants.site_changes(ctcf, [seq], table[:1], threshold=0)


def test_planted_site_variants_hit_the_site_and_avoid_it(one_site):
    data, _ = one_site
    table = variants.planted_site_variants(data, 15, seed=2, margin=5)
    assert set(table["truth"]) == {"site-breaking", "neutral"}
    for row in table.itertuples():
        sites = data.sites[row.seq]
        inside = any(s.start <= row.pos < s.end for s in sites)
        near = any(s.start - 5 <= row.pos < s.end + 5 for s in sites)
        assert inside if row.truth == "site-breaking" else not near
    with pytest.raises(ValueError, match="only"):
        variants.planted_site_variants(data, 1000)


def test_scan_sites_finds_the_planted_site_on_its_strand(one_site):
    data, _ = one_site
    rows = [i for i, sites in enumerate(data.sites) if sites][:20]
    found = variants.scan_sites("CTCF", [data.seqs[i] for i in rows], threshold=0.6)
    hits = [any((f.start, f.strand) == (s.start, s.strand) for f in fs for s in data.sites[i])
            for i, fs in zip(rows, found)]
    strong = [variants.site_scores(jaspar("CTCF"), one_hot(data.seqs[i]))[0].max() >= 0.6 for i in rows]
    assert sum(hits) >= 0.9 * sum(strong) and sum(hits) >= 10
