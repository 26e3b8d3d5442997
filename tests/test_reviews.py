"""Beer reviews: the generator's ground truth, Lei et al.'s file formats, vocabulary, scoring, bad input."""

import gzip
import json

import numpy as np
import pytest
import torch

from mlcourse.datasets import reviews as rv
from mlcourse.datasets.reviews import (
    ASPECTS,
    Reviews,
    Vocab,
    aspect_index,
    generate_reviews,
    load_reviews,
    rationale_precision,
    read_annotations,
    read_reviews,
    tokenize,
)


@pytest.fixture(scope="module")
def generated():
    return generate_reviews(600, seed=1)


def sentiment_values(tokens, aspect):
    words = {**rv._GENERAL, **rv._SPECIFIC[aspect]}
    return [words[w] for w in tokens if w in words]


def test_ratings_are_the_mean_sentiment_of_each_aspects_own_words():
    """Ground truth: without noise an aspect's rating is the mean value of the sentiment words in its spans."""
    data = generate_reviews(300, seed=2, noise=0.0)
    for i in range(len(data)):
        for k, aspect in enumerate(ASPECTS):
            words = [data.tokens[i][p] for p in np.flatnonzero(data.rationale_mask(i, aspect))]
            values = sentiment_values(words, aspect)
            assert values, f"review {i} has no sentiment word for {aspect}"
            assert data.ratings[i, k] == pytest.approx(np.round(np.mean(values), 1), abs=1e-6)


def test_no_sentiment_word_hides_in_an_aspects_nouns_descriptors_or_templates():
    for aspect in ASPECTS:
        scored = {**rv._GENERAL, **rv._SPECIFIC[aspect]}
        neutral = " ".join(rv._NOUNS[aspect] + rv._DESCRIPTORS[aspect] + rv._TEMPLATES[aspect]).split()
        assert not scored.keys() & set(neutral), aspect


def test_generated_reviews_shape_spans_and_reproducibility(generated):
    again = generate_reviews(600, seed=1)
    assert generated.tokens == again.tokens and np.array_equal(generated.ratings, again.ratings)
    assert generated.ratings.shape == (600, 5) and generated.ratings.dtype == np.float32
    assert np.allclose(generated.ratings * 10, np.round(generated.ratings * 10), atol=1e-5)
    assert generated.ratings.min() >= 0 and generated.ratings.max() <= 1
    for i in range(len(generated)):
        covered = np.zeros(len(generated.tokens[i]), dtype=int)
        for aspect in ASPECTS:
            assert generated.rationales[i][aspect], (i, aspect)
            covered += generated.rationale_mask(i, aspect)
        assert covered.max() == 1  # aspects' rationales never overlap


def test_aspects_are_correlated_as_asked():
    def mean_corr(data):
        c = np.corrcoef(data.ratings.T)
        return c[np.triu_indices(5, 1)].mean()

    assert 0.4 < mean_corr(generate_reviews(1500, seed=0, correlation=0.6)) < 0.7
    assert abs(mean_corr(generate_reviews(1500, seed=0, correlation=0.0))) < 0.1


def test_distractors_carry_sentiment_outside_every_rationale(generated):
    off_topic = 0
    for i in range(len(generated)):
        inside = np.zeros(len(generated.tokens[i]), dtype=bool)
        for aspect in ASPECTS:
            inside |= generated.rationale_mask(i, aspect)
        outside = [w for w, b in zip(generated.tokens[i], inside) if not b]
        off_topic += any(w in rv._GENERAL for w in outside)
    assert 0.2 * len(generated) < off_topic < 0.9 * len(generated)
    assert generate_reviews(50, seed=0, distractors=0).tokens[0][-1] == "."


def test_unknown_aspect_lists_the_valid_ones(generated):
    for call in (lambda: aspect_index("smell"), lambda: generated.rating("hops"),
                 lambda: load_reviews("colour"), lambda: generated.rationale_mask(0, "foam")):
        with pytest.raises(ValueError, match="valid aspects are appearance, aroma, palate, taste, overall"):
            call()


def lei_line(ratings, text):
    return " ".join(map(str, ratings)) + "\t" + text + "\n"


@pytest.mark.parametrize("compress", [False, True])
def test_read_lei_review_file(tmp_path, compress):
    path = tmp_path / ("reviews.aspect1.train.txt" + (".gz" if compress else ""))
    text = lei_line([0.8, 0.9, 0.7, 0.8, 0.8], "a lovely amber pour .") + "\n" + lei_line(
        [0.2, 0.3, 0.4, 0.2, 0.1], "smells of wet cardboard ."
    ) + lei_line([0.5] * 5, "   ")
    (gzip.open(path, "wt") if compress else open(path, "w")).write(text)
    data = read_reviews(path)
    assert data.tokens == [["a", "lovely", "amber", "pour", "."], ["smells", "of", "wet", "cardboard", "."]]
    assert np.allclose(data.rating("aroma"), [0.9, 0.3])
    assert str(path) in data.source


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (lei_line([0.8, 0.9, 0.7, 0.8], "four ratings"), r"line 2: expected 5 ratings .* got 4"),
        (lei_line([0.8, 0.9, "x", 0.8, 0.8], "letters"), r"line 2: ratings .* are not numbers"),
        (lei_line([0.8, 0.9, 1.7, 0.8, 0.8], "too high"), r"line 2: rating 1.7 is outside \[0, 1\]"),
        ("0.8 0.9 0.7 0.8 0.8 no tab here\n", r"line 2: no tab"),
    ],
)
def test_malformed_review_lines_name_the_line(tmp_path, line, message):
    path = tmp_path / "reviews.txt"
    path.write_text(lei_line([0.5] * 5, "fine .") + line)
    with pytest.raises(ValueError, match=str(path).replace(".", r"\.") + ", " + message):
        read_reviews(path)


def test_read_annotations_gives_rationale_masks(tmp_path):
    path = tmp_path / "annotations.json"
    items = [
        {"x": "dark pour . smells of coffee . smooth body .".split(), "y": [0.7, 0.9, 0.8, 0.8, 0.8],
         "0": [[0, 3]], "1": [[3, 7]], "2": [[7, 10]]},
        {"x": "hazy , fruity nose".split(), "y": [0.5, 0.6, 0.5, 0.5, 0.5], "0": [[0, 2]], "1": [[2, 4]], "2": []},
    ]
    path.write_text("\n".join(json.dumps(item) for item in items) + "\n")
    data = read_annotations(path)
    assert data.rationale_mask(0, "aroma").tolist() == [False] * 3 + [True] * 4 + [False] * 3
    assert not data.rationale_mask(1, "palate").any()
    assert data.rationale_mask(1, "taste").sum() == 0  # not annotated by Lei et al.
    assert data.ratings[1, 1] == pytest.approx(0.6)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"x": ["a"], "y": [0.1, 0.1, 0.1, 0.1, 0.1], "0": [], "1": [[0, 3]], "2": []}', r"aroma span \[0, 3\] is outside"),
        ('{"x": ["a"], "y": [0.1, 0.1], "0": [], "1": [], "2": []}', "expected 5 ratings"),
        ('{"x": ["a"], "0": [], "1": [], "2": []}', "missing field"),
        ("{not json", "not valid JSON"),
    ],
)
def test_bad_annotation_lines_name_the_line(tmp_path, line, message):
    path = tmp_path / "annotations.json"
    path.write_text('{"x": ["ok"], "y": [0.5, 0.5, 0.5, 0.5, 0.5], "0": [], "1": [[0, 1]], "2": []}\n' + line + "\n")
    with pytest.raises(ValueError, match="line 2: " + message):
        read_annotations(path)


def test_load_reviews_prefers_lei_files_then_generates(tmp_path, monkeypatch):
    monkeypatch.setenv("MLCOURSE_DATA", str(tmp_path / "cache"))
    splits = load_reviews("palate", n=200, seed=0)
    assert [len(part) for part in splits] == [160, 20, 20]
    assert "generated" in splits.test.source and splits.test.rationales[0]["palate"]
    folder = tmp_path / "beer"
    folder.mkdir()
    with gzip.open(folder / "reviews.aspect2.train.txt.gz", "wt") as handle:
        handle.write(lei_line([0.5] * 5, "a fine beer ."))
    with pytest.raises(ValueError, match="heldout"):
        load_reviews("palate", root=folder)
    (folder / "reviews.aspect2.heldout.txt").write_text(lei_line([0.4] * 5, "thin body ."))
    (folder / "annotations.json").write_text(
        json.dumps({"x": ["thin", "body"], "y": [0.3] * 5, "0": [], "1": [], "2": [[0, 2]]}) + "\n"
    )
    train, valid, test = load_reviews("palate", root=folder)
    assert train.tokens == [["a", "fine", "beer", "."]] and valid.tokens == [["thin", "body", "."]]
    assert test.rationale_mask(0, "palate").all()
    (folder / "reviews.aspect3.train.txt").write_text(lei_line([0.4] * 5, "x"))
    with pytest.raises(ValueError, match="appearance, aroma, palate only, not 'taste'"):
        load_reviews("taste", root=folder)


def test_vocab_encode_pads_right_and_maps_unknown_words():
    vocab = Vocab.build([["b", "a", "b"], ["c"]])
    assert vocab.itos[:3] == ["<pad>", "<unk>", "<mask>"] and vocab.itos[3:] == ["b", "a", "c"]
    assert (vocab.pad_id, vocab.unk_id, vocab.mask_id) == (0, 1, 2)
    ids = vocab.encode([["a", "b"], ["c", "zzz", "a"]])
    assert ids.dtype == torch.int64 and ids.tolist() == [[4, 3, 0], [5, 1, 4]]
    assert vocab.decode(ids[0]) == ["a", "b"] and vocab.decode(ids[1]) == ["c", "<unk>", "a"]
    assert vocab.encode([["a", "b", "c"]], max_len=2).tolist() == [[4, 3]]
    with pytest.raises(ValueError, match="list of token lists"):
        vocab.encode(["a", "b"])
    assert tokenize("Great aroma, citrus! Don't skip.") == ["great", "aroma", ",", "citrus", "!", "don't", "skip", "."]


def test_rationale_precision_and_chance_level():
    mask = np.array([0, 1, 1, 0, 0, 1, 0, 0], dtype=bool)
    assert rationale_precision([1, 2], mask) == 1.0
    assert rationale_precision([0, 2, 3, 5], mask) == 0.5
    rng = np.random.default_rng(0)
    random_precision = [rationale_precision(rng.choice(8, 3, replace=False), mask) for _ in range(4000)]
    assert np.mean(random_precision) == pytest.approx(mask.mean(), abs=0.01)  # chance level = share of rationale
    with pytest.raises(ValueError, match="position 8 is outside"):
        rationale_precision([8], mask)
    with pytest.raises(ValueError, match="empty"):
        rationale_precision([], mask)


def test_reviews_validate_lengths():
    with pytest.raises(ValueError, match="2 reviews but 1 rating rows"):
        Reviews([["a"], ["b"]], np.zeros((1, 5)))
