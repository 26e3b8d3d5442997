"""Multi-aspect beer reviews: Lei et al. 2016's files, or generated reviews with known rationales.

A beer review rates five aspects in ``[0, 1]``: appearance, aroma, palate,
taste and overall (BeerAdvocate data as used by Lei, Barzilay & Jaakkola 2016,
"Rationalizing neural predictions", EMNLP; and by Carter et al. 2019 for
Sufficient Input Subsets). A model reads the words of a review and predicts
one aspect's rating; the *rationale* of an aspect is the words that talk about
it, so explanations can be scored against it.

Two sources, one type (:class:`Reviews`):

- :func:`read_reviews` / :func:`read_annotations` read Lei et al.'s files for
  those who have them: ``reviews.aspect{0,1,2}.{train,heldout}.txt.gz`` (one
  review a line: five ratings, a tab, the tokenised text) and
  ``annotations.json`` (JSON lines: tokens ``"x"``, ratings ``"y"``, and the
  human rationale spans ``"0"``, ``"1"``, ``"2"`` for appearance, aroma and palate,
  ``[start, end)`` token intervals). :func:`load_reviews` finds them in
  ``root`` or ``<cache>/beer``.
- :func:`generate_reviews` (the default, offline) writes reviews from sentence
  templates and per-aspect vocabularies. Each aspect's rating is the mean value
  of the sentiment words in its sentences (plus a little noise); aspects are
  correlated, as in real reviews, through a shared latent quality; neutral and
  off-topic sentiment sentences ("the bartender was great") act as distractors;
  and the exact token spans of every aspect are recorded as its rationale.

:class:`Vocab` turns tokens into padded id tensors ``(N, T)``, with a
``<mask>`` token that the models in :mod:`mlcourse.models.text` embed as the
mean word embedding: the "uninformative" value that SIS masks words to.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from scipy.special import ndtr

from mlcourse.config import cache_dir
from mlcourse.dna import as_rng
from mlcourse.files import existing_file, existing_folder

__all__ = [
    "ASPECTS",
    "aspect_index",
    "Reviews",
    "ReviewSplits",
    "generate_reviews",
    "read_reviews",
    "read_annotations",
    "load_reviews",
    "tokenize",
    "Vocab",
    "rationale_precision",
]

ASPECTS = ("appearance", "aroma", "palate", "taste", "overall")
"""The five rated aspects, in the column order of Lei et al.'s files."""

LEI_ASPECTS = ASPECTS[:3]
"""Aspects with their own Lei et al. files and annotated rationales (aspect0, aspect1, aspect2)."""


def aspect_index(aspect: str) -> int:
    """The column of ``aspect`` in the ratings; ``ValueError`` listing the valid names otherwise."""
    if aspect not in ASPECTS:
        raise ValueError(f"unknown aspect {aspect!r}; valid aspects are {', '.join(ASPECTS)}")
    return ASPECTS.index(aspect)


@dataclass
class Reviews:
    """Tokenised reviews with five ratings each and, when known, each aspect's rationale.

    Attributes
    ----------
    tokens : list of list of str
        The words (and punctuation) of each review.
    ratings : numpy.ndarray
        Float32 ``(N, 5)`` ratings in ``[0, 1]``, columns in :data:`ASPECTS` order.
    rationales : list of dict
        Per review, ``{aspect: [(start, end), ...]}`` token spans (end exclusive);
        empty dicts when unknown.
    source : str
        Where the reviews came from.
    """

    tokens: list[list[str]]
    ratings: np.ndarray
    rationales: list[dict] = field(default_factory=list)
    source: str = "reviews"

    def __post_init__(self):
        self.ratings = np.asarray(self.ratings, dtype=np.float32).reshape(-1, len(ASPECTS))
        if len(self.ratings) != len(self.tokens):
            raise ValueError(f"{self.source}: {len(self.tokens)} reviews but {len(self.ratings)} rating rows")
        if not self.rationales:
            self.rationales = [{} for _ in self.tokens]
        if len(self.rationales) != len(self.tokens):
            raise ValueError(f"{self.source}: {len(self.tokens)} reviews but {len(self.rationales)} rationales")

    def __len__(self) -> int:
        return len(self.tokens)

    def __repr__(self) -> str:
        lengths = [len(t) for t in self.tokens] or [0]
        return f"Reviews({len(self)} reviews, median {int(np.median(lengths))} tokens; {self.source})"

    def rating(self, aspect: str) -> np.ndarray:
        """The ratings of one aspect, float32 ``(N,)``."""
        return self.ratings[:, aspect_index(aspect)]

    def text(self, i: int) -> str:
        """Review ``i`` as one string."""
        return " ".join(self.tokens[i])

    def rationale_mask(self, i: int, aspect: str) -> np.ndarray:
        """Boolean ``(len(tokens[i]),)``: which words of review ``i`` are in ``aspect``'s rationale."""
        aspect_index(aspect)
        mask = np.zeros(len(self.tokens[i]), dtype=bool)
        for start, end in self.rationales[i].get(aspect, []):
            mask[start:end] = True
        return mask

    def subset(self, index) -> Reviews:
        """The reviews in ``index`` (integer array, list or slice) as a new :class:`Reviews`."""
        idx = np.arange(len(self))[index]
        return Reviews(
            [self.tokens[i] for i in idx], self.ratings[idx], [self.rationales[i] for i in idx], self.source
        )

    def split(self, valid: float = 0.1, test: float = 0.1, seed=0) -> ReviewSplits:
        """Shuffle and split into ``(train, valid, test)``; ``valid`` and ``test`` are fractions."""
        if not (0 < valid < 1 and 0 < test < 1 and valid + test < 1):
            raise ValueError(f"valid={valid} and test={test} must be positive fractions that sum below 1")
        order = as_rng(seed).permutation(len(self))
        n_valid, n_test = int(round(valid * len(self))), int(round(test * len(self)))
        n_train = len(self) - n_valid - n_test
        return ReviewSplits(
            self.subset(order[:n_train]),
            self.subset(order[n_train : n_train + n_valid]),
            self.subset(order[n_train + n_valid :]),
        )


class ReviewSplits(NamedTuple):
    """Train, validation and test reviews (the test part carries rationales where known)."""

    train: Reviews
    valid: Reviews
    test: Reviews


# ---------------------------------------------------------------------------
# The generator: vocabularies and templates
# ---------------------------------------------------------------------------

_GENERAL = {  # sentiment words used for any aspect, with the rating they express
    "awful": 0.1, "poor": 0.2, "weak": 0.3, "mediocre": 0.4, "okay": 0.5,
    "decent": 0.6, "nice": 0.7, "great": 0.8, "excellent": 0.9, "outstanding": 1.0,
}
_SPECIFIC = {  # sentiment words that only describe one aspect
    "appearance": {"ugly": 0.1, "lifeless": 0.2, "murky": 0.3, "dull": 0.4, "ordinary": 0.5,
                   "clear": 0.7, "attractive": 0.8, "gorgeous": 0.9, "brilliant": 1.0},
    "aroma": {"skunky": 0.1, "stale": 0.2, "muted": 0.3, "faint": 0.4, "mild": 0.5,
              "pleasant": 0.7, "inviting": 0.8, "fragrant": 0.9, "heavenly": 1.0},
    "palate": {"flat": 0.1, "watery": 0.2, "thin": 0.3, "prickly": 0.4, "airy": 0.5,
               "lively": 0.7, "smooth": 0.8, "silky": 0.9, "velvety": 1.0},
    "taste": {"foul": 0.1, "metallic": 0.2, "bland": 0.3, "plain": 0.4, "simple": 0.5,
              "balanced": 0.7, "tasty": 0.8, "delicious": 0.9, "superb": 1.0},
    "overall": {"forgettable": 0.3, "fine": 0.5, "solid": 0.7, "memorable": 0.9},
}
_NOUNS = {
    "appearance": ["appearance", "look", "color", "head", "pour"],
    "aroma": ["aroma", "smell", "nose", "bouquet"],
    "palate": ["mouthfeel", "palate", "body", "carbonation"],
    "taste": ["taste", "flavor", "finish", "aftertaste"],
    "overall": ["beer", "brew", "bottle", "pint"],
}
_DESCRIPTORS = {  # neutral, aspect-specific words: part of the rationale, carry no rating
    "appearance": ["golden", "amber", "copper", "ruby", "pitch black", "hazy orange", "straw yellow"],
    "aroma": ["citrus", "pine", "caramel", "toffee", "grapefruit", "roasted malt", "dark fruit", "yeast"],
    "palate": ["medium bodied", "light bodied", "full bodied", "creamy carbonation", "fine bubbles"],
    "taste": ["chocolate", "coffee", "bread", "honey", "lemon", "hops", "burnt sugar"],
    "overall": ["this style", "the price", "a weeknight", "the summer"],
}
_TEMPLATES = {  # {n} noun, {d} descriptor, {a} and {b} sentiment words
    "appearance": ["the {n} is {a}", "{a} {n} , {d} with a {b} head", "{n} : {d} and {a}",
                   "pours a {a} {d} color", "{d} in the glass , {a} {n}"],
    "aroma": ["the {n} is {a}", "{a} {n} of {d}", "{n} : {d} , {a} and {b}",
              "smells {a} with {d}", "{d} on the {n} , {a}"],
    "palate": ["the {n} is {a}", "{a} {n} , {d}", "{n} : {d} , {a}",
               "feels {a} and {b} in the mouth", "{d} and {a} {n}"],
    "taste": ["the {n} is {a}", "{a} {n} of {d}", "{n} : {d} , {a} and {b}",
              "tastes {a} with {d}", "{d} up front , {a} {n}"],
    "overall": ["overall a {a} {n}", "overall {a} , {b} for {d}", "all in all a {a} {n}",
                "a {a} {n} for {d} overall"],
}
_FILLER = [  # distractors without sentiment
    "poured from a bottle into a pint glass", "served at cellar temperature",
    "picked this up at the local shop", "thanks to my brother for this one",
    "drank it on a rainy evening", "the bottle says best before june", "had this on tap at the pub",
    "twelve ounce bottle , no freshness date", "shared with friends after dinner",
]
_OFF_TOPIC = [  # distractors with a sentiment word that is not about the beer
    "the label art is {a}", "the bartender was {a}", "the weather was {a} that day",
    "the price was {a}", "the music at the bar was {a}",
]


_WORDS = {  # per aspect: every usable sentiment word and its value, as arrays for fast look-up
    aspect: (list({**_GENERAL, **_SPECIFIC[aspect]}), np.array(list({**_GENERAL, **_SPECIFIC[aspect]}.values())))
    for aspect in ASPECTS
}


def _sentiment_word(level: float, aspect: str, rng: np.random.Generator) -> tuple[str, float]:
    """A sentiment word close to ``level`` (general or aspect-specific, at random) and its value."""
    names, values = _WORDS[aspect]
    distance = np.abs(values - level)
    close = np.flatnonzero(distance <= distance.min() + 0.051)
    k = close[rng.integers(len(close))]
    return names[k], float(values[k])


def _aspect_sentence(aspect: str, level: float, rng: np.random.Generator):
    """One sentence about ``aspect``: its tokens and the values of its sentiment words."""
    template = _TEMPLATES[aspect][rng.integers(len(_TEMPLATES[aspect]))]
    values = []
    tokens = []
    for part in template.split():
        if part in ("{a}", "{b}"):
            word, value = _sentiment_word(level + rng.normal(0, 0.05), aspect, rng)
            tokens.append(word)
            values.append(value)
        elif part == "{n}":
            tokens += _NOUNS[aspect][rng.integers(len(_NOUNS[aspect]))].split()
        elif part == "{d}":
            tokens += _DESCRIPTORS[aspect][rng.integers(len(_DESCRIPTORS[aspect]))].split()
        else:
            tokens.append(part)
    tokens = ["an" if w == "a" and nxt[0] in "aeiou" else w for w, nxt in zip(tokens, tokens[1:] + ["."])]
    return tokens + ["."], values


def _distractor(rng: np.random.Generator) -> list[str]:
    if rng.random() < 0.5:
        text = _FILLER[rng.integers(len(_FILLER))]
    else:
        word = list(_GENERAL)[rng.integers(len(_GENERAL))]
        text = _OFF_TOPIC[rng.integers(len(_OFF_TOPIC))].format(a=word)
    return text.split() + ["."]


def generate_reviews(
    n: int = 10_000,
    seed=0,
    *,
    correlation: float = 0.6,
    noise: float = 0.05,
    repeat: float = 0.3,
    distractors: float = 1.5,
    shuffle: float = 0.3,
) -> Reviews:
    """Generate ``n`` multi-aspect beer reviews with known ratings and rationales.

    Each review has one sentence per aspect (a second one with probability
    ``repeat``), built from templates such as ``"the {noun} is {word}"`` with
    sentiment words picked to express that aspect's latent level. An aspect's
    rating is the mean value of the sentiment words in its sentences plus
    Gaussian ``noise``, clipped to ``[0, 1]`` and rounded to 0.1, like the
    BeerAdvocate ratings (Lei et al. 2016). The latent levels share a common
    quality factor, so aspects are correlated (Gaussian copula, pairwise
    latent correlation ``correlation``): a model could cheat by reading another
    aspect's words, as on real data. Distractor sentences (Poisson, mean
    ``distractors``) are neutral ("served at cellar temperature") or carry
    sentiment about something else ("the bartender was great"). Aspects come
    in the usual order appearance, aroma, palate, taste, overall, shuffled with
    probability ``shuffle``. Every aspect sentence's token span is recorded as
    that aspect's rationale.

    Parameters
    ----------
    n : int
        Number of reviews.
    seed : int or numpy.random.Generator
        Random seed: the same seed gives the same reviews.
    correlation : float
        Latent correlation between aspects, in ``[0, 1)``.
    noise, repeat, distractors, shuffle : float
        Rating noise (standard deviation), probability of a second sentence per
        aspect, mean number of distractor sentences, probability of shuffled aspect order.

    Returns
    -------
    Reviews
        With ``rationales`` for all five aspects.
    """
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not 0 <= correlation < 1:
        raise ValueError(f"correlation={correlation} must be in [0, 1)")
    for name, value in (("noise", noise), ("distractors", distractors)):
        if value < 0:
            raise ValueError(f"{name}={value} must be non-negative")
    for name, value in (("repeat", repeat), ("shuffle", shuffle)):
        if not 0 <= value <= 1:
            raise ValueError(f"{name}={value} must be a probability in [0, 1]")
    rng = as_rng(seed)
    shared = rng.normal(size=(n, 1))
    latent = np.sqrt(correlation) * shared + np.sqrt(1 - correlation) * rng.normal(size=(n, len(ASPECTS)))
    levels = ndtr(latent) * 0.9 + 0.1  # uniform on [0.1, 1], the range of the sentiment words
    all_tokens, ratings, rationales = [], np.zeros((n, len(ASPECTS)), dtype=np.float32), []
    for i in range(n):
        sentences = []  # (aspect or None, tokens)
        for k, aspect in enumerate(ASPECTS):
            values = []
            for _ in range(1 + int(rng.random() < repeat)):
                tokens, vals = _aspect_sentence(aspect, levels[i, k], rng)
                sentences.append((aspect, tokens))
                values += vals
            rating = sum(values) / len(values) + rng.normal(0, noise)
            ratings[i, k] = np.round(np.clip(rating, 0.0, 1.0), 1)
        if rng.random() < shuffle:
            sentences = [sentences[j] for j in rng.permutation(len(sentences))]
        for _ in range(rng.poisson(distractors)):
            sentences.insert(rng.integers(len(sentences) + 1), (None, _distractor(rng)))
        tokens, spans = [], {aspect: [] for aspect in ASPECTS}
        for aspect, words in sentences:
            if aspect is not None:
                spans[aspect].append((len(tokens), len(tokens) + len(words)))
            tokens += words
        all_tokens.append(tokens)
        rationales.append(spans)
    return Reviews(
        all_tokens, ratings, rationales,
        source=f"generated beer reviews (n={n}, seed={seed}, aspect correlation {correlation})",
    )


# ---------------------------------------------------------------------------
# Lei et al. 2016 files
# ---------------------------------------------------------------------------


def _numbered_lines(path: Path):
    """``(number, line)`` for every line of a UTF-8 text file (gzipped when named ``.gz``).

    A file that is not UTF-8, a truncated or corrupt gzip file, or a missing file
    is a ``ValueError`` naming the file (and the last line read).
    """
    path = existing_file(path)
    number = 0
    try:
        with gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else \
                open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                yield number, line
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{path}, after line {number}: byte {err.object[err.start:err.start + 1]!r} is not UTF-8 text "
            "(a Latin-1 file? convert it with iconv -f latin1 -t utf-8)"
        ) from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise ValueError(f"{path}, after line {number}: a truncated or corrupt gzip file ({err})") from None


def _check_ratings(values, where: str) -> list[float]:
    try:
        ratings = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ValueError(f"{where}: ratings {values!r} are not numbers") from None
    if len(ratings) != len(ASPECTS):
        raise ValueError(
            f"{where}: expected {len(ASPECTS)} ratings ({', '.join(ASPECTS)}), got {len(ratings)}: {values!r}"
        )
    bad = [r for r in ratings if not 0.0 <= r <= 1.0]
    if bad:
        raise ValueError(f"{where}: rating {bad[0]} is outside [0, 1]")
    return ratings


def read_reviews(path) -> Reviews:
    """Read a Lei et al. 2016 review file (``reviews.aspectK.{train,heldout}.txt[.gz]``).

    Each line is five ratings in ``[0, 1]`` separated by spaces, a tab, then
    the tokenised review. Blank lines and lines without text are skipped, as
    in Lei et al.'s own reader.

    Raises
    ------
    ValueError
        For a line without a tab, a ratings field that is not five numbers in
        ``[0, 1]``, naming the file and the line number.
    """
    path = existing_file(path)
    tokens, ratings = [], []
    for number, line in _numbered_lines(path):
        if not line.strip():
            continue
        head, tab, text = line.rstrip("\n").partition("\t")
        if not tab:
            raise ValueError(f"{path}, line {number}: no tab between the ratings and the review text")
        words = text.split()
        if not words:
            continue
        ratings.append(_check_ratings(head.split(), f"{path}, line {number}"))
        tokens.append(words)
    if not tokens:
        raise ValueError(f"{path}: no reviews found")
    return Reviews(tokens, np.array(ratings), source=f"Lei et al. 2016 reviews from {path}")


def read_annotations(path) -> Reviews:
    """Read Lei et al.'s ``annotations.json``: reviews with human rationales for three aspects.

    One JSON object a line with ``"x"`` (tokens), ``"y"`` (five ratings) and
    ``"0"``, ``"1"``, ``"2"``: lists of ``[start, end)`` token spans that
    annotators marked for appearance, aroma and palate.

    Raises
    ------
    ValueError
        For invalid JSON, a missing field, bad ratings or a span outside the
        review, naming the file and line number.
    """
    path = existing_file(path)
    tokens, ratings, rationales = [], [], []
    for number, line in _numbered_lines(path):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{where}: not valid JSON ({err.msg})") from None
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected a JSON object with fields x, y, 0, 1, 2, got {line.strip():.40}")
        missing = [key for key in ("x", "y", "0", "1", "2") if key not in item]
        if missing:
            raise ValueError(f"{where}: missing field(s) {', '.join(map(repr, missing))}")
        words = list(item["x"])
        spans = {}
        for k, aspect in enumerate(LEI_ASPECTS):
            spans[aspect] = []
            for span in item[str(k)]:
                start, end = (int(v) for v in span)
                if not 0 <= start < end <= len(words):
                    raise ValueError(
                        f"{where}: {aspect} span {list(span)} is outside the review's {len(words)} tokens"
                    )
                spans[aspect].append((start, end))
        ratings.append(_check_ratings(item["y"], where))
        tokens.append(words)
        rationales.append(spans)
    if not tokens:
        raise ValueError(f"{path}: no annotated reviews found")
    return Reviews(tokens, np.array(ratings), rationales, source=f"Lei et al. 2016 annotations from {path}")


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def load_reviews(aspect: str = "aroma", *, root=None, n: int = 10_000, seed=0) -> ReviewSplits:
    """Beer reviews for rating ``aspect``: Lei et al.'s files when at hand, else generated ones.

    Lei et al. 2016 made one training and one held-out file per aspect
    (``reviews.aspect{0,1,2}.{train,heldout}.txt.gz``, for appearance, aroma and
    palate, chosen so that the aspect's ratings are less correlated with the
    others); ``annotations.json`` is the test set with human rationales. With
    ``root`` they are read from that folder (an error if it or a file is missing);
    with ``root=None`` from ``<cache>/beer`` when there, else :func:`generate_reviews`
    makes ``n`` reviews, split 80/10/10.

    Returns
    -------
    ReviewSplits
        ``(train, valid, test)``; each part's ``source`` says where it came from.
    """
    k = aspect_index(aspect)
    if root is not None and aspect not in LEI_ASPECTS:
        raise ValueError(f"Lei et al.'s files cover {', '.join(LEI_ASPECTS)} only, not {aspect!r}")
    if root is not None:
        root = existing_folder(root, hint=": give the folder that holds Lei et al.'s files, or root=None "
                               "for <cache>/beer or generated reviews")
    folders = [root] if root is not None else [cache_dir() / "beer"]
    for folder in folders:
        train = _find(folder, f"reviews.aspect{k}.train.txt")
        if train is None:
            if root is not None:
                raise ValueError(f"root {folder} has no reviews.aspect{k}.train.txt[.gz] (Lei et al.'s {aspect} file)")
            continue
        if aspect not in LEI_ASPECTS:
            raise ValueError(
                f"Lei et al.'s files cover {', '.join(LEI_ASPECTS)} only, not {aspect!r}"
            )
        heldout = _find(folder, f"reviews.aspect{k}.heldout.txt")
        annotations = _find(folder, "annotations.json")
        if heldout is None or annotations is None:
            raise ValueError(
                f"{folder} has {train.name} but not reviews.aspect{k}.heldout.txt[.gz] and annotations.json"
            )
        return ReviewSplits(read_reviews(train), read_reviews(heldout), read_annotations(annotations))
    return generate_reviews(n, seed).split(valid=0.1, test=0.1, seed=seed)


# ---------------------------------------------------------------------------
# Tokens and ids
# ---------------------------------------------------------------------------

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")


def tokenize(text: str) -> list[str]:
    """Lower-case words and punctuation marks, e.g. ``"Great aroma, citrus!"`` -> ``['great', 'aroma', ',', 'citrus', '!']``."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {type(text).__name__} {text!r:.40}")
    return _TOKEN.findall(text.lower())


class Vocab:
    """Word <-> id table with three special tokens: ``<pad>`` (0), ``<unk>`` (1) and ``<mask>`` (2).

    ``<pad>`` fills short reviews up to the batch length; ``<unk>`` stands for
    words not in the table; ``<mask>`` is what SIS puts in place of a removed
    word. The text models embed ``<mask>`` as the mean embedding of all real
    words (Carter et al. 2019), so a masked word carries no information.
    """

    PAD, UNK, MASK = "<pad>", "<unk>", "<mask>"

    def __init__(self, words):
        words = [w for w in words if w not in (self.PAD, self.UNK, self.MASK)]
        if len(set(words)) != len(words):
            raise ValueError("Vocab words must be unique")
        self.itos = [self.PAD, self.UNK, self.MASK, *words]
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    pad_id, unk_id, mask_id = 0, 1, 2
    n_special = 3

    @classmethod
    def build(cls, reviews, min_count: int = 1) -> Vocab:
        """All words seen at least ``min_count`` times in ``reviews`` (a :class:`Reviews` or token lists), most frequent first."""
        token_lists = reviews.tokens if isinstance(reviews, Reviews) else reviews
        counts = Counter(word for tokens in token_lists for word in tokens)
        return cls([w for w, c in sorted(counts.items(), key=lambda wc: (-wc[1], wc[0])) if c >= min_count])

    def __len__(self) -> int:
        return len(self.itos)

    def __repr__(self) -> str:
        return f"Vocab({len(self)} entries: {self.n_special} special + {len(self) - self.n_special} words)"

    def encode(self, reviews, max_len: int | None = None) -> torch.Tensor:
        """Token ids ``(N, T)``, int64, right-padded with ``<pad>``; ``T`` is the longest review or ``max_len``.

        Longer reviews are cut at ``max_len``; unknown words become ``<unk>``.
        """
        token_lists = reviews.tokens if isinstance(reviews, Reviews) else reviews
        if not isinstance(token_lists, (list, tuple)) or not all(
                isinstance(t, (list, tuple)) and all(isinstance(w, str) for w in t) for t in token_lists):
            raise ValueError(
                f"encode expects a list of token lists (or Reviews), e.g. [['a', 'fine', 'beer']], "
                f"got {type(reviews).__name__} {reviews!r:.40}"
            )
        if max_len is not None and max_len < 1:
            raise ValueError(f"max_len={max_len} must be a positive integer")
        length = max([len(t) for t in token_lists] + [1])
        length = min(length, max_len) if max_len else length
        ids = torch.full((len(token_lists), length), self.pad_id, dtype=torch.int64)
        for i, tokens in enumerate(token_lists):
            row = [self.stoi.get(w, self.unk_id) for w in tokens[:length]]
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.int64)
        return ids

    def decode(self, ids) -> list[str]:
        """The words of one id row, without padding (masked words show as ``<mask>``)."""
        return [self.itos[int(i)] for i in ids if int(i) != self.pad_id]


# ---------------------------------------------------------------------------
# Scoring explanations
# ---------------------------------------------------------------------------


def rationale_precision(positions, rationale_mask) -> float:
    """Fraction of the selected token ``positions`` that lie inside the rationale (Lei et al. 2016's precision).

    A random subset of any size has expected precision ``rationale_mask.mean()``,
    the share of the review's tokens that are rationale: the chance level.
    """
    try:
        positions = np.asarray(positions, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"positions must be token positions (integers), got {positions!r:.40}") from None
    if (positions != np.round(positions)).any() or not np.isfinite(positions).all():
        raise ValueError(f"positions must be whole token positions, got {positions[:5].tolist()}")
    positions = positions.astype(int)
    rationale_mask = np.asarray(rationale_mask, dtype=bool)
    if positions.size == 0:
        raise ValueError("no positions selected: precision is undefined for an empty subset")
    if positions.min() < 0 or positions.max() >= len(rationale_mask):
        raise ValueError(f"position {positions.max()} is outside the review's {len(rationale_mask)} tokens")
    return float(rationale_mask[positions].mean())
