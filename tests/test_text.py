"""Text rating models: shapes, padding invariance, mean-embedding masking, learning the generated reviews."""

import numpy as np
import pytest
import torch
from torch import nn

import mlcourse
from mlcourse.datasets.reviews import Vocab, generate_reviews
from mlcourse.models.text import cnn_rater, lstm_rater, mask_tokens
from mlcourse.train import evaluate, fit

BUILDERS = [lstm_rater, cnn_rater]


@pytest.fixture(scope="module")
def data():
    reviews = generate_reviews(1200, seed=3)
    return reviews, Vocab.build(reviews)


@pytest.mark.parametrize("build", BUILDERS)
def test_ratings_in_unit_interval_one_per_review(build, data):
    reviews, vocab = data
    torch.manual_seed(0)
    out = build(vocab).eval()(vocab.encode(reviews.tokens[:7]))
    assert out.shape == (7,) and ((out > 0) & (out < 1)).all()


@pytest.mark.parametrize("build", BUILDERS)
def test_padding_never_changes_a_prediction(build, data):
    reviews, vocab = data
    torch.manual_seed(0)
    model = build(vocab).eval()
    ids = vocab.encode(reviews.tokens[:5])
    padded = torch.cat([ids, torch.zeros(5, 17, dtype=torch.int64)], dim=1)
    alone = torch.stack([model(vocab.encode([reviews.tokens[i]]))[0] for i in range(5)])
    assert torch.allclose(model(ids), model(padded), atol=1e-6)
    assert torch.allclose(model(ids), alone, atol=1e-6)


@pytest.mark.parametrize("build", BUILDERS)
def test_mask_token_is_embedded_as_the_mean_word(build, data):
    _, vocab = data
    model = build(vocab)
    emb = model.embedding
    ids = torch.tensor([[vocab.mask_id, vocab.pad_id, 5]])
    out = emb(ids)[0]
    assert torch.allclose(out[0], emb.weight[vocab.n_special:].mean(0))
    assert torch.count_nonzero(out[1]) == 0 and torch.allclose(out[2], emb.weight[5])
    with torch.no_grad():
        emb.weight[7] += 3.0  # the mask follows the word embeddings as they train
    assert torch.allclose(emb(ids)[0, 0], out[0] + 3.0 / (len(vocab) - vocab.n_special))


def test_mask_tokens_masks_words_but_never_padding(data):
    _, vocab = data
    ids = torch.tensor([[5, 6, 7, 0], [8, 9, 0, 0]])
    masked = mask_tokens(ids, torch.tensor([True, False, True, True]))
    assert masked.tolist() == [[2, 6, 2, 0], [2, 9, 0, 0]]
    with pytest.raises(ValueError, match=r"mask of shape \(3,\) does not broadcast"):
        mask_tokens(ids, torch.ones(3, dtype=torch.bool))


@pytest.mark.parametrize("build", BUILDERS)
def test_bad_token_ids_are_clear_errors(build, data):
    _, vocab = data
    model = build(vocab)
    with pytest.raises(ValueError, match=r"integer token ids of shape \(N, T\)"):
        model(torch.zeros(2, 5))
    with pytest.raises(ValueError, match=f"token id {len(vocab)} is outside the vocabulary of {len(vocab)}"):
        model(torch.tensor([[3, len(vocab)]]))


def test_every_nonlinearity_and_pool_is_its_own_module(data):
    _, vocab = data
    model = cnn_rater(vocab)
    kinds = [type(m) for m in model.children()]
    for kind in (nn.ReLU, nn.AdaptiveMaxPool1d, nn.Sigmoid):
        assert kinds.count(kind) == 1
    assert model.last_conv is model.conv


@pytest.mark.parametrize("build", BUILDERS)
def test_models_learn_an_aspect_rating_from_its_words(build, data):
    """Trained briefly on generated reviews, both predict aroma far better than the mean rating does."""
    reviews, vocab = data
    train, valid, test = reviews.split(valid=0.1, test=0.15, seed=0)
    mlcourse.setup(0, verbose=False)
    model = build(vocab)

    def xy(part):
        return vocab.encode(part), torch.from_numpy(part.rating("aroma"))

    fit(model, xy(train), xy(valid), task="regression", epochs=6, lr=5e-3, progress=False)
    mse = evaluate(model, xy(test), task="regression")["mse"]
    assert mse < 0.6 * np.var(test.rating("aroma"))


class KeywordRater(nn.Module):
    """Rates 0.9 when a review holds the keyword (or both halves of a pair), 0.1 otherwise: known SISes."""

    def __init__(self, keyword, pair):
        super().__init__()
        self.keyword, self.pair = keyword, pair

    def forward(self, ids):
        has = lambda w: (ids == w).any(dim=1)  # noqa: E731
        return torch.where(has(self.keyword) | (has(self.pair[0]) & has(self.pair[1])), 0.9, 0.1)


def test_review_sis_finds_each_sufficient_word_set_and_never_padding():
    from mlcourse.interpret.sis import review_sis

    vocab = Vocab([f"w{i}" for i in range(10)])
    great, a, b = vocab.stoi["w0"], vocab.stoi["w1"], vocab.stoi["w2"]
    model = KeywordRater(great, (a, b))
    ids = vocab.encode([
        ["w5", "w0", "w6", "w0", "w7"],         # the keyword twice: two one-word SISes
        ["w1", "w8", "w2", "w9"],               # only the pair together is sufficient
        ["w5", "w6"],                           # rated 0.1: nothing to explain
        ["w1", "w0", "w8", "w2", "w5", "w6"],   # keyword, then the pair once it is masked
    ])
    found = review_sis(model, ids, threshold=0.5)
    def as_sets(collection):
        return sorted(s.tolist() for s in collection)

    assert as_sets(found[0]) == [[1], [3]]
    assert as_sets(found[1]) == [[0, 2]]
    assert found[2] == []
    assert as_sets(found[3]) == [[0, 3], [1]]
    with pytest.raises(ValueError, match=r"\(N, T\)"):
        review_sis(model, ids[0], threshold=0.5)
