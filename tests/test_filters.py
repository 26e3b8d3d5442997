"""Filters -> PWMs: exact inverses on hand-made filters, and the planted motif recovered from a trained model."""

import numpy as np
import pytest
import torch
from torch import nn

import mlcourse
from mlcourse import motifs, train
from mlcourse.datasets import simulate
from mlcourse.dna import one_hot
from mlcourse.interpret import filters
from mlcourse.models import vision, zeng


def test_softmax_of_log_odds_gives_back_the_pwm():
    ctcf = motifs.jaspar("CTCF")
    conv = nn.Conv1d(4, 1, ctcf.width)
    conv.weight.data = torch.tensor(ctcf.log_odds[None], dtype=torch.float32)
    # a PWM in bits is log2(p / 0.25); the softmax in base e needs scale ln 2
    np.testing.assert_allclose(filters.weights_to_probs(conv.weight.data[0], scale=np.log(2)),
                               ctcf.probs, atol=1e-6)
    (learned,) = filters.weight_motifs(conv, scale=np.log(2))
    np.testing.assert_allclose(learned.counts / learned.counts.sum(0), ctcf.probs, atol=1e-6)
    assert filters.filter_weights(conv).shape == (1, 4, ctcf.width)


def test_activation_motifs_count_exactly_the_planted_words():
    rng = np.random.default_rng(1)
    word = "ACGTTGCA"
    seqs, planted = [], 0
    for i in range(40):
        s = list(rng.choice(list("ACGT"), 30))
        if i % 2 == 0:
            s[i % 22:i % 22 + 8] = word
            planted += 1
        seqs.append("".join(s))
    conv = nn.Conv1d(4, 2, 8, padding=2)
    conv.weight.data[0] = one_hot([word])[0]          # filter 0 scores matches to the word
    conv.weight.data[1] = -one_hot([word])[0]         # filter 1 is never positive
    conv.bias.data.zero_()
    x = one_hot(seqs)
    found, dead = filters.activation_motifs(conv, x, threshold=1.0)
    # threshold 1.0 keeps only perfect 8/8 windows: the planted words (random 8-mers rarely match)
    matches = sum(s.count(word) for s in seqs)
    assert matches >= planted
    np.testing.assert_array_equal(found.counts, matches * one_hot([word])[0].numpy())
    assert found.consensus == word
    assert dead.counts.sum(0).tolist() == [1.0] * 8   # uniform one-site placeholder
    with pytest.raises(ValueError, match="threshold"):
        filters.activation_motifs(conv, x, threshold=0)
    with pytest.raises(ValueError, match=r"\(N, 4, L\)"):
        filters.activation_motifs(conv, x[:, :3])


def test_trim_keeps_the_informative_core():
    ctcf = motifs.jaspar("CTCF")
    flank = np.full((4, 5), 25.0)
    padded = motifs.Motif("padded", np.concatenate([flank, ctcf.counts, flank], axis=1))
    core = filters.trim(padded)
    assert core.width <= ctcf.width and core.consensus in ctcf.consensus
    assert filters.trim(motifs.Motif("flat", flank)).width == 5


def test_trained_model_filter_recovers_the_planted_motif():
    mlcourse.setup(seed=0, verbose=False)
    data = simulate.motif_discovery("CTCF", n=1000, seed=0)
    tr, va, te = data.split(seed=0)
    model = zeng.build("1layer")
    train.fit(model, tr, va, epochs=5, lr=1e-2, progress=False)
    assert train.evaluate(model, te)["auc"] > 0.85
    ctcf = motifs.jaspar("CTCF")
    learned = filters.activation_motifs(model, te.X[te.labels == 1])
    k, score = filters.best_filter_for(learned, ctcf)
    assert score > 0.8
    table = filters.match_filters([learned[k]])        # against all vertebrate JASPAR motifs
    assert table.loc[0, "match"] == "CTCF"


def test_match_filters_table():
    gata, maff = motifs.jaspar("GATA1"), motifs.jaspar("MAFF")
    query = motifs.Motif.from_probs(maff.probs, name="filter3")
    table = filters.match_filters([query], candidates=[gata, maff])
    assert list(table.columns) == ["filter", "consensus", "ic_bits", "match", "matrix_id",
                                   "score", "offset", "strand"]
    assert table.loc[0, "match"] == "MAFF" and table.loc[0, "score"] > 0.99


def test_image_filters_and_errors():
    model = vision.mnist_cnn()
    assert filters.filter_weights(model).shape == (16, 1, 3, 3)
    assert filters.first_conv(model) is model.conv1
    with pytest.raises(ValueError, match="no Conv1d or Conv2d"):
        filters.first_conv(nn.Linear(3, 3))
    with pytest.raises(ValueError, match="Conv1d over 4 bases"):
        filters.weight_motifs(model)
    with pytest.raises(ValueError, match=r"got shape \(3, 5\)"):
        filters.weights_to_probs(np.zeros((3, 5)))


def test_cached_imagenet_model_never_downloads(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    assert filters.cached_imagenet_model("resnet18") is None
    weights = torchvision.models.get_model_weights("resnet18").DEFAULT
    reference = torchvision.models.resnet18()
    (tmp_path / "checkpoints").mkdir()
    torch.save(reference.state_dict(), tmp_path / "checkpoints" / weights.url.rsplit("/", 1)[1])
    loaded = filters.cached_imagenet_model("resnet18")
    torch.testing.assert_close(loaded.conv1.weight, reference.conv1.weight)
    assert not loaded.training
    with pytest.raises(ValueError, match="'nonsense'"):
        filters.cached_imagenet_model("nonsense")


def test_filter_influence_finds_the_only_filter_that_matters():
    torch.manual_seed(0)
    conv = nn.Conv1d(4, 3, 5)
    head = nn.Linear(3, 1)
    head.weight.data = torch.tensor([[0.0, 2.0, 0.0]])    # only filter 1 reaches the output
    model = nn.Sequential(conv, nn.ReLU(), nn.MaxPool1d(16), nn.Flatten(), head).eval()
    x = one_hot(["".join(np.random.default_rng(i).choice(list("ACGT"), 20)) for i in range(30)])
    influence = filters.filter_influence(model, x, batch_size=7)
    assert influence[0] == 0 and influence[2] == 0 and influence[1] > 0
    # nullifying filter 1 by hand gives the same number
    with torch.no_grad():
        base = model(x)
        acts = conv(x)
        flat = acts.clone()
        flat[:, 1] = acts[:, 1].mean()
        changed = head(nn.Flatten()(nn.MaxPool1d(16)(torch.relu(flat))))
    assert influence[1] == pytest.approx(float(((changed - base) ** 2).mean()), rel=1e-5)
