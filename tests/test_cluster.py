"""SIS clustering: gapped strings, edit distances, DBSCAN clusters, consensus vs the JASPAR motif."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from mlcourse import plot
from mlcourse.datasets.base import Site
from mlcourse.dna import reverse_complement
from mlcourse.interpret import cluster
from mlcourse.interpret.sis import SIS
from mlcourse.motifs import jaspar, sample, similarity


def test_gapped_strings_and_tokens():
    assert cluster.gapped("ACGTACGT", [0, 1, 0, 1, 1, 0, 0, 0]) == "C-TA"
    assert cluster.gapped(["not", "very", "good", "."], [1, 0, 1, 0]) == ("not", "-", "good")
    assert cluster.gapped("ACG", [0, 0, 0]) == ""
    with pytest.raises(ValueError, match="3 items"):
        cluster.gapped("ACG", [1, 0])


def test_sis_table_and_site_overlap():
    def s(positions, length=10):
        mask = torch.zeros(1, length, dtype=torch.bool)
        mask[0, positions] = True
        return SIS(np.array(positions), mask, 1.0)

    table = cluster.sis_table(["ACGTACGTAC", "TTTTGGGGCC"], [[s([2, 4]), s([8])], [s([0, 1])]])
    assert table.pattern.tolist() == ["G-A", "A", "TT"]
    assert table[["start", "end", "size"]].values.tolist() == [[2, 5, 2], [8, 9, 1], [0, 2, 2]]
    sites = [[Site(3, "+", "m", 2)], [Site(5, "+", "m", 3)]]
    assert cluster.overlaps_site(table, sites).tolist() == [True, False, False]


def test_edit_distances_and_clusters_recover_two_groups():
    a = ["TGACTCA", "TGACTCA", "TGA-TCA", "TGACTCT", "TGACT"]
    b = ["GGGCCCGGG", "GGGCCCGG", "GGG-CCGGG", "GGGCCCGGG"]
    d = cluster.edit_distances(["ACGT", "AGT", "ACGT"])
    assert d.tolist() == [[0, 1, 0], [1, 0, 1], [0, 1, 0]]
    labels = cluster.cluster_sis(a + b + ["A"], eps=2, min_samples=2)
    assert set(labels[:5]) == {0} and set(labels[5:9]) == {1} and labels[9] == -1
    table = cluster.cluster_table(a + b + ["A"], labels)
    assert table.loc[0, "SISes"] == 5 and table.loc["noise", "SISes"] == 1
    assert table.loc[0, "top patterns (count)"].startswith("TGACTCA (2)")
    assert table["share"].sum() == pytest.approx(1.0)


def test_consensus_of_sampled_motif_instances_matches_jaspar():
    motif = jaspar("MAFF")
    rng = np.random.default_rng(0)
    patterns = []
    for i, inst in enumerate(sample(motif, 40, rng)):
        chars = list(inst)
        chars[rng.integers(len(chars))] = "-"
        core = "".join(chars).strip("-")
        patterns.append(reverse_complement(core) if i % 2 else core)  # both strands
    probs = cluster.consensus(patterns)
    match = similarity(probs, motif)
    assert probs.shape[0] == 4 and np.allclose(probs.sum(axis=0), 1)
    assert match.score > 0.9
    axes = plot.consensus_logo(probs, motif)
    assert len(axes) == 2
    plt.close("all")


def test_plots_return_axes():
    from mlcourse.dna import one_hot

    x = one_hot(["ACGTACGTAA"])[0]
    ism = torch.randn(4, 10) * (1 - x)
    assert plot.ism_heatmap(ism, sites=[Site(2, "+", "m", 3)]) is not None
    ax = plot.ism_logo(ism, x)
    assert ax.get_ylabel() == "ISM importance"
    ax = plot.sis_shading("ACGTACGTAA", [torch.tensor([0, 1, 1, 0, 0, 0, 0, 0, 0, 0], dtype=torch.bool)])
    assert len(ax.patches) == 2 and len(ax.texts) == 10
    with pytest.raises(ValueError, match="positions"):
        plot.sis_shading("ACG", [np.ones(4, dtype=bool)])
    plt.close("all")


def test_mask_distances_are_jaccard():
    a = np.zeros((4, 4), bool)
    a[0, :2] = True  # pixels {0, 1}
    b = np.zeros((4, 4), bool)
    b[0, 1:3] = True  # pixels {1, 2}: one shared out of three
    d = cluster.mask_distances(np.stack([a, b, a]))
    assert np.allclose(d, [[0, 2 / 3, 0], [2 / 3, 0, 2 / 3], [0, 2 / 3, 0]])


def test_cluster_by_distance_recovers_two_pixel_groups_largest_first():
    rng = np.random.default_rng(0)
    left, right = np.zeros((8, 8), bool), np.zeros((8, 8), bool)
    left[:, :3], right[:, 5:] = True, True
    masks = []
    for base in [left] * 6 + [right] * 3:  # six "left stroke" SISes, three "right stroke" ones
        noisy = base.copy()
        noisy[rng.integers(8), rng.integers(8)] ^= True
        masks.append(noisy)
    labels = cluster.cluster_by_distance(cluster.mask_distances(masks), threshold=0.7)
    assert labels.tolist() == [0] * 6 + [1] * 3


def test_normalized_edit_distance_and_bad_matrix():
    d = cluster.edit_distances(["AAAA", "AAAT", "TT"], normalized=True)
    assert np.isclose(d[0, 1], 0.25) and np.isclose(d[0, 2], 1.0)
    with pytest.raises(ValueError, match=r"square \(n, n\)"):
        cluster.cluster_by_distance(np.zeros((2, 3)), threshold=0.5)


def test_core_collapses_small_gaps_and_drops_a_distant_block():
    from mlcourse.interpret.cluster import core

    assert core("TGC-GAG-CA", "TGCTGAGTCA") == "TGCTGAGTCA"
    far = "TGCTGA" + "-" * 20 + "TCA"
    assert core(far, "TGCTGA" + "C" * 20 + "TCA") == "TGCTGA"  # the block with more kept bases
    assert core("A---C", "AGGGC", max_gap=2) == "A" and core("A---C", "AGGGC", max_gap=3) == "AGGGC"
    assert core("---", "ACG") == ""
    with pytest.raises(ValueError, match="pattern has 3 positions but the sequence span has 2"):
        core("A-C", "AC")
