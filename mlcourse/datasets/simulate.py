"""Simulated TF-binding data with real JASPAR motifs planted at known places.

Two tasks from Zeng, Edwards, Liu & Gifford (2016), "Convolutional neural
network architectures for predicting DNA-protein binding":

* **motif discovery** (:func:`motif_discovery`): bound sequences carry the
  motif, unbound ones are their dinucleotide shuffles. Only the motif separates
  the classes, so one convolutional layer (a set of PWM detectors) suffices.
* **motif occupancy** (:func:`motif_occupancy`): *every* sequence carries the
  motif; bound and unbound differ in higher-level determinants, here a
  co-factor motif at a fixed spacing and orientation, and the instance
  strength. Detecting a motif is not enough: the model must relate two motifs,
  which needs deeper layers whose receptive field covers both.

The background is uniform i.i.d. DNA, so every signal is one we planted, and
each dataset records every planted site (:class:`~mlcourse.datasets.base.Site`,
with ``+``/``-`` strand as :func:`mlcourse.motifs.scan_positions` reads it):
the ground truth against which interpretation methods are checked.
"""

from __future__ import annotations

import numpy as np

from mlcourse.datasets.base import SeqDataset, Site
from mlcourse.dna import ALPHABET, as_rng, dinucleotide_shuffle
from mlcourse.motifs import PREFERRED_VERSIONS, Motif, jaspar, sample, similarity

__all__ = ["motif_discovery", "motif_occupancy", "planted_motif", "DEFAULT_COFACTORS"]

DEFAULT_COFACTORS = ("ELK1", "GATA1")
"""Co-factor candidates for :func:`motif_occupancy`: the first one unlike the TF is used."""

def planted_motif(tf: str | Motif) -> Motif:
    """The motif the simulations plant for ``tf``: a Motif as given; a name or ID via JASPAR.

    :func:`mlcourse.motifs.jaspar` resolves the name (MAFF and MAFK: version 2,
    the full MARE; see :data:`mlcourse.motifs.PREFERRED_VERSIONS`). Those MARE
    matrices are planted without their low-information AT-rich flanks
    (:meth:`~mlcourse.motifs.Motif.trim`; MAFF: 13 bp TGCTGAGTCAGCA), so that
    three sites fit in 101 bp; every other motif as JASPAR has it.
    """
    if isinstance(tf, Motif):
        return tf
    motif = jaspar(tf)
    preferred = PREFERRED_VERSIONS.get(motif.name.upper())
    return motif.trim(0.5) if motif.matrix_id.endswith(f".{preferred}") else motif


_LETTERS = np.frombuffer(ALPHABET.encode("ascii"), dtype=np.uint8)


def _check_size(n: int, length: int, min_length: int) -> None:
    if not isinstance(n, (int, np.integer)) or n < 2 or n % 2:
        raise ValueError(f"n must be an even number of sequences, at least 2 (half bound), got {n!r}")
    if not isinstance(length, (int, np.integer)) or length < min_length:
        raise ValueError(f"length={length!r} bp is too short: the planted motifs need {min_length} bp")


def _codes(instances: list[str]) -> np.ndarray:
    """Motif instances (equal-length strings) as an ``(m, W)`` array of base indices 0..3."""
    lookup = np.zeros(256, dtype=np.uint8)
    lookup[_LETTERS] = np.arange(4)
    flat = np.frombuffer("".join(instances).encode("ascii"), dtype=np.uint8)
    return lookup[flat].reshape(len(instances), len(instances[0]) if instances else 0)


def _plant(codes: np.ndarray, rows: np.ndarray, starts: np.ndarray, minus: np.ndarray,
           words: np.ndarray) -> None:
    """Write ``words[i]`` (base indices) into ``codes[rows[i]]`` at ``starts[i]``,
    reverse-complemented where ``minus[i]``."""
    words = np.where(minus[:, None], 3 - words[:, ::-1], words)
    codes[rows[:, None], starts[:, None] + np.arange(words.shape[1])] = words


def _strand(minus) -> str:
    return "-" if minus else "+"


def _draw_starts(rng, n: int, width: int, length: int, allowed) -> np.ndarray:
    """``n`` start positions, row ``i``'s uniform over those where ``allowed(i_rows, starts)`` holds.

    Rejection sampling, vectorised: redraw the rows whose start is not allowed.
    """
    starts = rng.integers(0, length - width + 1, size=n)
    todo = np.flatnonzero(~allowed(np.arange(n), starts))
    while todo.size:
        starts[todo] = rng.integers(0, length - width + 1, size=todo.size)
        todo = todo[~allowed(todo, starts[todo])]
    return starts


def _strings(codes: np.ndarray) -> list[str]:
    raw = _LETTERS[codes].tobytes().decode("ascii")
    length = codes.shape[1]
    return [raw[i : i + length] for i in range(0, len(raw), length)]


def motif_discovery(
    tf: str | Motif = "MAFF", n: int = 2000, length: int = 101, seed=0, max_instances: int = 3
) -> SeqDataset:
    """Motif discovery: motif-carrying sequences against their dinucleotide shuffles.

    Zeng et al. (2016)'s first task, simulated. Each bound sequence is uniform
    random DNA with 1 to ``max_instances`` (uniformly) non-overlapping motif
    instances, each sampled from the JASPAR PWM (:func:`mlcourse.motifs.sample`)
    at a random position and strand. Each unbound sequence is a dinucleotide
    shuffle of a bound one (Altschul & Erikson 1985), as Zeng et al. and
    DeepBind made their negatives: base and dinucleotide composition are
    identical between the classes, so only the motif tells them apart.

    Parameters
    ----------
    tf : str or Motif
        JASPAR name or ID, or a Motif (see :func:`planted_motif`: ``"MAFF"``
        plants the full 13-bp MARE of MA0495.2).
    n : int
        Number of sequences (even): ``n/2`` bound and ``n/2`` unbound, in random order.
    length : int
        Sequence length in bp.
    seed : int or numpy Generator
    max_instances : int
        Most motif instances per bound sequence.

    Returns
    -------
    SeqDataset
        Bound rows carry their planted sites; shuffled rows carry none.
    """
    motif = planted_motif(tf)
    if not isinstance(max_instances, (int, np.integer)) or max_instances < 1:
        raise ValueError(f"max_instances must be a positive integer, got {max_instances!r}")
    # Room for the last instance however the earlier ones fell: each blocks 2w - 1 starts.
    _check_size(n, length, (max_instances - 1) * (2 * motif.width - 1) + motif.width)
    rng = as_rng(seed)
    half, w = n // 2, motif.width

    codes = rng.integers(0, 4, size=(half, length), dtype=np.uint8)
    counts = rng.integers(1, max_instances + 1, size=half)
    starts = np.full((half, max_instances), -1)
    minus = rng.random((half, max_instances)) < 0.5
    for j in range(max_instances):  # the j-th instance of every row that has one
        rows = np.flatnonzero(counts > j)
        earlier = starts[rows, :j]

        def no_overlap(idx, st, earlier=earlier):
            return ((st[:, None] + w <= earlier[idx]) | (st[:, None] >= earlier[idx] + w)).all(axis=1)

        starts[rows, j] = _draw_starts(rng, len(rows), w, length, no_overlap)
        _plant(codes, rows, starts[rows, j], minus[rows, j], _codes(sample(motif, len(rows), rng)))
    sites = [
        sorted((Site(int(starts[r, j]), _strand(minus[r, j]), motif.name, w) for j in range(c)),
               key=lambda site: site.start)
        for r, c in enumerate(counts)
    ]
    bound = _strings(codes)
    unbound = [dinucleotide_shuffle(s, rng) for s in bound]

    order = rng.permutation(n)
    seqs, y = bound + unbound, np.r_[np.ones(half), np.zeros(half)]
    all_sites = sites + [[] for _ in unbound]
    return SeqDataset(
        [seqs[i] for i in order], y[order], [all_sites[i] for i in order],
        name=f"simulated {motif.name} motif discovery",
    )


def _default_cofactor(motif: Motif) -> Motif:
    """The first of :data:`DEFAULT_COFACTORS` that does not resemble ``motif``."""
    for name in DEFAULT_COFACTORS:
        candidate = jaspar(name)
        if candidate.name != motif.name and similarity(motif, candidate).score < 0.5:
            return candidate
    raise ValueError(f"no default co-factor differs enough from {motif.name}; pass cofactor=")


def motif_occupancy(
    tf: str | Motif = "MAFF",
    n: int = 2000,
    length: int = 101,
    seed=0,
    *,
    cofactor: str | Motif | None = None,
    spacing: int = 24,
    strength_draws: int = 2,
    flipped: float = 0.3,
) -> SeqDataset:
    """Motif occupancy: every sequence has the motif; the context decides binding.

    Zeng et al. (2016)'s second task asks which motif instances are bound.
    Here that depends on two planted determinants, which every sequence
    otherwise shares (one TF instance, one co-factor instance, uniform random
    background, random strands, and TF positions drawn from one distribution):

    1. **Co-factor arrangement (strong).** In bound sequences the co-factor
       motif sits ``spacing`` bp downstream of the TF motif, in the same
       orientation (a composite element, like MAF/NFE2 or SOX/OCT pairs),
       the whole composite on either strand. In unbound sequences the
       co-factor is not arranged so: a share ``flipped`` of them carry it at
       the planted gap but on the other strand (the wrong orientation), the
       rest anywhere else (any other non-overlapping position and strand).
       The default co-factor, ELK1 (consensus ACCGGAAGT), is not its own
       reverse complement, so the orientation is visible in the sequence.
    2. **Instance strength (weak).** A bound sequence's TF instance is the
       highest-scoring (log-odds) of ``strength_draws`` draws from the PWM; an
       unbound one's is a single draw. A PWM scan sees this, so one layer does
       better than chance, but far from perfect. ``strength_draws=1`` switches
       it off.

    With the defaults (MAFF's 13-bp MARE, 24 bp, ELK1's 9 bp) the composite
    is 46 bp wide and its partners are 24 bp apart: no window of a 24-bp
    first-layer filter holds a base of both, so one convolutional layer with
    global max pooling sees each partner alone, wherever it is. A deeper
    unit can see both in their relative place if its receptive field spans
    the composite: Zeng's ``3layer`` (62 bp) does, ``2layer`` (38 bp) only
    part of it (see :func:`mlcourse.models.zeng.receptive_field`).

    Measured with the defaults (8,000 sequences, seeds 0 to 4, 70/10/20
    split, :func:`mlcourse.train.fit` with up to 20 epochs, batch 64, lr
    3e-3, patience 4): test AUC 0.93 to 0.97 for ``3layer``, 0.52 to 0.77 for
    ``2layer``, 0.60 to 0.65 for ``1layer`` (``1layer_128motif`` collapses to a
    constant output at that learning rate; 0.61 with lr 1e-3, seed 0); a MAFF
    PWM scan gives 0.62 to 0.63. Lecture 02 measures them again; lecture 14 asks each model, with
    :func:`mlcourse.interpret.grammar.spacing_scan`, which arrangement it
    learned.

    Parameters
    ----------
    tf : str or Motif
        The TF (JASPAR name or ID, or a Motif; see :func:`planted_motif`).
    n : int
        Number of sequences (even), half bound, in random order.
    length : int
    seed : int or numpy Generator
    cofactor : str, Motif or None
        The partner motif; default: the first of :data:`DEFAULT_COFACTORS`
        that does not resemble the TF (``ELK1``, else ``GATA1``).
    spacing : int
        Gap in bp between the TF site's end and the co-factor's start, read
        on the TF's strand (default 24).
    strength_draws : int
        PWM draws per bound sequence for the strength determinant (1 = off).
    flipped : float
        Share (0 to 1) of unbound sequences whose co-factor is at the planted
        gap on the other strand; each unbound sequence is one with this
        probability (0 = the co-factor is anywhere else in all of them).

    Returns
    -------
    SeqDataset
        Every row carries two sites: the TF's and the co-factor's.
    """
    motif = planted_motif(tf)
    if cofactor is None:
        partner = _default_cofactor(motif)
    else:
        partner = cofactor if isinstance(cofactor, Motif) else jaspar(cofactor)
    if not isinstance(spacing, (int, np.integer)) or spacing < 0:
        raise ValueError(f"spacing must be a non-negative number of bp, got {spacing!r}")
    if not isinstance(strength_draws, (int, np.integer)) or strength_draws < 1:
        raise ValueError(f"strength_draws must be a positive integer, got {strength_draws!r}")
    if isinstance(flipped, bool) or not isinstance(flipped, (int, float, np.number)) or not 0 <= flipped <= 1:
        raise ValueError(f"flipped must be a share between 0 and 1, got {flipped!r}")
    wt, wc = motif.width, partner.width
    composite = wt + spacing + wc
    _check_size(n, length, max(composite, wt + 2 * wc) + 1)  # room for an unarranged co-factor
    rng = as_rng(seed)
    # Background first: a label permutation drawn first would equal SeqDataset.split's
    # permutation for the same seed, and the split would not be balanced.
    codes = rng.integers(0, 4, size=(n, length), dtype=np.uint8)
    y = np.zeros(n)
    y[rng.permutation(n)[: n // 2]] = 1
    bound, unbound = np.flatnonzero(y == 1), np.flatnonzero(y == 0)

    # Strength: bound rows keep the best (highest log-odds) of several draws.
    tf_words = _codes(sample(motif, n, rng))
    draws = _codes(sample(motif, bound.size * strength_draws, rng)).reshape(-1, strength_draws, wt)
    scores = motif.log_odds[draws, np.arange(wt)].sum(axis=2)
    tf_words[bound] = draws[np.arange(bound.size), scores.argmax(axis=1)]

    minus = rng.random(n) < 0.5  # the TF site's strand
    tf_start, co_start, co_minus = np.empty(n, int), np.empty(n, int), minus.copy()
    # The TF site's start has one distribution in both classes (that of a composite's TF),
    # so its position says nothing about binding.
    lo = rng.integers(0, length - composite + 1, size=n)
    tf_start[:] = np.where(minus, lo + wc + spacing, lo)
    # Bound: the composite TF - gap - co-factor, reverse-complemented as a whole on '-'.
    co_start[bound] = np.where(minus[bound], lo[bound], lo[bound] + wt + spacing)
    # Unbound, a share ``flipped``: the co-factor at the planted gap, but on the other strand.
    # The others: the co-factor anywhere else, on either strand, but never arranged.
    flip = rng.random(unbound.size) < flipped
    decoy, loose = unbound[flip], unbound[~flip]
    co_start[decoy] = np.where(minus[decoy], lo[decoy], lo[decoy] + wt + spacing)
    co_minus[decoy] = ~minus[decoy]
    co_minus[loose] = rng.random(loose.size) < 0.5
    tf_u, same = tf_start[loose], co_minus[loose] == minus[loose]
    arranged = np.where(minus[loose], tf_u - spacing - wc, tf_u + wt + spacing)

    def elsewhere(idx, st):
        apart = (st + wc <= tf_u[idx]) | (st >= tf_u[idx] + wt)
        return apart & ~(same[idx] & (st == arranged[idx]))

    co_start[loose] = _draw_starts(rng, loose.size, wc, length, elsewhere)

    rows = np.arange(n)
    _plant(codes, rows, tf_start, minus, tf_words)
    _plant(codes, rows, co_start, co_minus, _codes(sample(partner, n, rng)))
    sites = [
        sorted([Site(int(tf_start[r]), _strand(minus[r]), motif.name, wt),
                Site(int(co_start[r]), _strand(co_minus[r]), partner.name, wc)],
               key=lambda site: site.start)
        for r in range(n)
    ]
    return SeqDataset(
        _strings(codes), y, sites,
        name=f"simulated {motif.name} motif occupancy (co-factor {partner.name})",
    )
