"""DNA sequences as tensors: one-hot encoding, reverse complements, shuffles, k-mers.

Convention (used across the course): a batch of DNA is a float32 tensor of shape
``(N, 4, L)``: sequence, base, position, with bases in ``ACGT`` order. An
unknown base ``N`` is the all-zero column.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from itertools import product

import numpy as np
import torch

__all__ = [
    "ALPHABET",
    "as_rng",
    "validate",
    "one_hot",
    "decode",
    "reverse_complement",
    "dinucleotide_shuffle",
    "dinucleotide_counts",
    "kmers",
    "kmer_counts",
    "MAX_TABLE_BYTES",
]

ALPHABET = "ACGT"
_COMPLEMENT = str.maketrans("ACGTNacgtn", "TGCANtgcan")
_INDEX = {base: i for i, base in enumerate(ALPHABET)}
_DNA = re.compile("[ACGTN]*")


def as_rng(rng=None) -> np.random.Generator:
    """Turn ``None``, an integer seed or a Generator into a ``numpy.random.Generator``."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    raise ValueError(f"rng must be None, an int seed or a numpy Generator, got {type(rng).__name__}")


def validate(seqs: str | Iterable[str], *, same_length: bool = True) -> list[str]:
    """Check DNA strings and return them upper-cased, as a list.

    Raises
    ------
    ValueError
        On empty input, a character outside ``ACGTN`` (naming the character,
        the sequence index and the position), or ragged lengths when
        ``same_length`` is true.
    """
    seqs = _as_list(seqs, "seqs")
    if not seqs:
        raise ValueError("no sequences given: expected a DNA string or a non-empty list of them")
    out = []
    for i, seq in enumerate(seqs):
        if not isinstance(seq, str):
            raise ValueError(f"sequence {i} is a {type(seq).__name__}, not a string: {seq!r:.60}")
        upper = seq.upper()
        if not _DNA.fullmatch(upper):
            bad = next(p for p, c in enumerate(upper) if c not in "ACGTN")
            rna = "; U is RNA: write T for DNA" if upper[bad] == "U" else ""
            raise ValueError(
                f"sequence {i} has {seq[bad]!r} at position {bad}: only A, C, G, T and N are DNA bases{rna}"
            )
        if not upper:
            raise ValueError(f"sequence {i} is empty")
        out.append(upper)
    if same_length:
        lengths = {len(s) for s in out}
        if len(lengths) > 1:
            first = len(out[0])
            j = next(i for i, s in enumerate(out) if len(s) != first)
            raise ValueError(
                f"sequences have different lengths: sequence 0 is {first} bp but sequence {j} "
                f"is {len(out[j])} bp; pad or trim them to one length first"
            )
    return out


def _as_list(seqs, name: str) -> list:
    """A DNA string or an ordered collection of them as a list; ``ValueError`` naming ``name`` otherwise."""
    if isinstance(seqs, str):
        return [seqs]
    if isinstance(seqs, np.ndarray) and seqs.ndim == 0:
        raise ValueError(f"{name} is a 0-d array ({seqs!r:.60}): pass a string or a 1-d list of strings")
    if isinstance(seqs, (bytes, bytearray)):
        raise ValueError(f"{name} is {type(seqs).__name__}, not a string: decode it first, e.g. {name}.decode('ascii')")
    if isinstance(seqs, (dict, set, frozenset, torch.Tensor)) or not isinstance(seqs, Iterable):
        what = ("None" if seqs is None else "a one-hot tensor (dna.decode turns it into strings)"
                if isinstance(seqs, torch.Tensor) else f"{type(seqs).__name__} {seqs!r:.40}")
        raise ValueError(f"{name} must be a DNA string or a list of DNA strings, got {what}")
    return list(seqs)


def one_hot(seqs: str | Iterable[str]) -> torch.Tensor:
    """One-hot encode DNA as a float32 tensor of shape ``(N, 4, L)`` (ACGT rows).

    A single string gives ``N = 1``. Lower case is accepted; ``N`` becomes an
    all-zero column.

    >>> one_hot("ACGN")[0]
    tensor([[1., 0., 0., 0.],
            [0., 1., 0., 0.],
            [0., 0., 1., 0.],
            [0., 0., 0., 0.]])
    """
    seqs = validate(seqs)
    codes = np.frombuffer("".join(seqs).encode("ascii"), dtype=np.uint8).reshape(len(seqs), -1)
    lookup = np.full(256, 4, dtype=np.int64)
    for base, i in _INDEX.items():
        lookup[ord(base)] = i
    idx = lookup[codes]  # (N, L) in 0..4, where 4 means N
    eye = np.vstack([np.eye(4, dtype=np.float32), np.zeros((1, 4), dtype=np.float32)])
    return torch.from_numpy(eye[idx].transpose(0, 2, 1).copy())


def decode(X) -> list[str]:
    """Turn a one-hot array ``(N, 4, L)`` (or ``(4, L)``) back into strings.

    Each column becomes its largest base; an all-zero column becomes ``N``.
    Always returns a list.
    """
    X = X.detach().cpu().numpy() if isinstance(X, torch.Tensor) else np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise ValueError(f"X must be a numeric one-hot array (N, 4, L), got an array of {X.dtype}")
    if X.ndim == 2:
        X = X[None]
    if X.ndim != 3 or X.shape[1] != 4:
        raise ValueError(f"X: expected one-hot DNA of shape (N, 4, L) or (4, L), got {tuple(X.shape)}")
    if not np.isfinite(X).all():
        raise ValueError(f"X has a NaN or infinite value at index {np.argwhere(~np.isfinite(X))[0].tolist()}")
    letters = np.array(list(ALPHABET + "N"))
    idx = np.where(np.abs(X).sum(axis=1) > 0, X.argmax(axis=1), 4)
    return ["".join(row) for row in letters[idx]]


def reverse_complement(seq):
    """Reverse complement of a string, a list of strings, or a one-hot tensor ``(..., 4, L)``.

    For one-hot input the ACGT rows are reversed (A<->T, C<->G) and so are the positions.
    Strings keep their case and may hold ``-`` gaps (as SIS patterns do); any other
    letter (``U`` included) is a ``ValueError`` naming the sequence and position.
    """
    if isinstance(seq, str):
        return _complement(seq, 0)
    if isinstance(seq, (torch.Tensor, np.ndarray)) and (seq.dtype.kind != "U" if isinstance(seq, np.ndarray)
                                                        else True):
        if seq.ndim < 2 or seq.shape[-2] != 4:
            raise ValueError(f"seq: expected one-hot DNA of shape (..., 4, L), got {tuple(seq.shape)}")
        return seq.flip(dims=(-2, -1)) if isinstance(seq, torch.Tensor) else seq[..., ::-1, ::-1].copy()
    seqs = _as_list(seq, "seq")
    if not seqs:
        raise ValueError("seq: no sequences given: expected a DNA string or a non-empty list of them")
    return [_complement(s, i) for i, s in enumerate(seqs)]


def _complement(seq, i: int) -> str:
    """The reverse complement of one string of ``ACGTN`` (any case) and ``-`` gaps (SIS patterns)."""
    if not isinstance(seq, str):
        raise ValueError(f"sequence {i} is a {type(seq).__name__}, not a string: {seq!r:.60}")
    bad = next((p for p, c in enumerate(seq) if c not in "ACGTNacgtn-"), None)
    if bad is not None:
        rna = "; U is RNA: write T for DNA" if seq[bad] in "Uu" else ""
        raise ValueError(
            f"sequence {i} has {seq[bad]!r} at position {bad}: only A, C, G, T, N and - (a gap) can be "
            f"reverse-complemented{rna}"
        )
    return seq.translate(_COMPLEMENT)[::-1]


def dinucleotide_shuffle(seq: str, rng=None) -> str:
    """Shuffle a sequence while keeping every dinucleotide count exactly.

    The Altschul & Erikson (1985) algorithm, as used by Zeng et al. (2016)
    and DeepBind for negative sequences. Read the sequence as a walk on a
    graph whose vertices are bases and whose edges are its dinucleotides; any
    other walk that uses every edge once (an Eulerian path with the same start
    and end) has the same dinucleotide counts. To draw one uniformly:

    1. for every base except the last one, pick at random the edge by which
       the walk will leave it for the last time; keep the choice only if these
       "last exits" form a tree that leads to the final base (else retry);
    2. shuffle every base's other exits;
    3. walk from the first base, taking exits in order.

    Parameters
    ----------
    seq : str
        A DNA string (``N`` allowed; it is shuffled like any other letter).
    rng : None, int or numpy.random.Generator

    Returns
    -------
    str
        A sequence of the same length, first and last base, and dinucleotide counts.
    """
    if not isinstance(seq, str):
        raise ValueError(
            f"seq must be one DNA string, got {type(seq).__name__}; shuffle a list with "
            "[dinucleotide_shuffle(s, rng) for s in seqs]"
        )
    seq = validate(seq)[0]
    rng = as_rng(rng)
    if len(seq) <= 2:
        return seq
    exits: dict[str, list[str]] = {}
    for a, b in zip(seq[:-1], seq[1:]):
        exits.setdefault(a, []).append(b)
    end = seq[-1]
    while True:
        last = {v: edges[rng.integers(len(edges))] for v, edges in exits.items() if v != end}
        if all(_leads_to(v, end, last) for v in last):
            break
    order = {}
    for v, edges in exits.items():
        rest = list(edges)
        if v in last:
            rest.remove(last[v])
        rng.shuffle(rest)
        order[v] = rest + ([last[v]] if v in last else [])
    out, pos = [seq[0]], {v: 0 for v in order}
    for _ in range(len(seq) - 1):
        v = out[-1]
        out.append(order[v][pos[v]])
        pos[v] += 1
    return "".join(out)


def _leads_to(v: str, end: str, last: dict[str, str]) -> bool:
    """Whether following last exits from ``v`` reaches ``end`` without a cycle."""
    seen = set()
    while v != end:
        if v in seen:
            return False
        seen.add(v)
        v = last[v]
    return True


def dinucleotide_counts(seq: str) -> dict[str, int]:
    """Counts of each overlapping dinucleotide in ``seq`` (only those present; upper case)."""
    if not isinstance(seq, str):
        raise ValueError(f"seq must be one DNA string, got {type(seq).__name__}")
    seq = validate(seq)[0]
    counts: dict[str, int] = {}
    for i in range(len(seq) - 1):
        counts[seq[i : i + 2]] = counts.get(seq[i : i + 2], 0) + 1
    return counts


MAX_TABLE_BYTES = 2**30
"""The largest k-mer table (or word list) :func:`kmers` and :func:`kmer_counts` build: 1 GiB."""


def _check_k(k) -> int:
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be at least 1, got {k!r}")
    return int(k)


def _refuse_large(what: str, n_bytes: int, k: int) -> None:
    if n_bytes > MAX_TABLE_BYTES:
        raise ValueError(
            f"{what} for k={k} would need {n_bytes / 2**30:,.1f} GiB (4**{k} = {4**k:,} words), more than "
            f"the {MAX_TABLE_BYTES / 2**30:g} GiB limit (dna.MAX_TABLE_BYTES): use a smaller k"
        )


def kmers(k: int) -> list[str]:
    """All ``4**k`` DNA words of length ``k`` in lexicographic (ACGT) order.

    Raises ``ValueError`` for ``k < 1`` and for a list larger than :data:`MAX_TABLE_BYTES`.
    """
    k = _check_k(k)
    _refuse_large("the list of words", 4**k * (k + 57), k)  # a short str takes 49 + k bytes, plus its pointer
    return ["".join(p) for p in product(ALPHABET, repeat=k)]


def kmer_counts(seqs: str | Sequence[str], k: int) -> np.ndarray:
    """Count overlapping k-mers: an ``(N, 4**k)`` integer array, columns as :func:`kmers` orders them.

    Words containing ``N`` are not counted. A word's column is its base-4 number
    (A=0, C=1, G=2, T=3, first base most significant).

    Raises
    ------
    ValueError
        For bad sequences, ``k < 1``, or a table larger than :data:`MAX_TABLE_BYTES`
        (the message says how much it would need).
    """
    seqs = validate(seqs, same_length=False)
    k = _check_k(k)
    _refuse_large(f"a table of {len(seqs):,} x 4**{k} counts", len(seqs) * 4**k * 8, k)
    lookup = np.full(256, -1, dtype=np.int64)
    for base, i in _INDEX.items():
        lookup[ord(base)] = i
    powers = 4 ** np.arange(k - 1, -1, -1, dtype=np.int64)
    counts = np.zeros((len(seqs), 4**k), dtype=np.int64)
    for n, seq in enumerate(seqs):
        if len(seq) < k:
            continue
        codes = lookup[np.frombuffer(seq.encode("ascii"), dtype=np.uint8)]
        windows = np.lib.stride_tricks.sliding_window_view(codes, k)
        words = windows[(windows >= 0).all(axis=1)] @ powers
        counts[n] = np.bincount(words, minlength=4**k)
    return counts
