"""Motif grammar: ask the model what a motif, and a pair of motifs, is worth.

Attribution maps say which bases of *one* sequence mattered. Grammar
experiments ask the model a controlled question instead, by editing
sequences and comparing scores (in-silico experiments, as in the BPNet paper,
Avsec et al. 2021, and tangermeme's ``marginalize`` and ``space``):

* **marginalisation** (:func:`marginalize`): insert a motif into many
  background sequences and compare each one's score before and after. The
  background varies, the motif does not, so the mean change is the motif's
  effect averaged over contexts;
* **spacing and orientation** (:func:`spacing_scan`): insert two motifs at
  every gap and relative orientation and record the effect of the second one
  given the first. A model that learned a composite element (a TF and its
  co-factor at a fixed distance, as :func:`mlcourse.datasets.simulate.motif_occupancy`
  plants) answers with a peak at that arrangement; a model that cannot relate
  two motifs answers the same for all of them.

Motifs are inserted as their consensus (most likely base at each position),
or as any string you give. Positions are 0-based; ``"+"`` writes the motif as
given, ``"-"`` its reverse complement.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from mlcourse.dna import one_hot, reverse_complement
from mlcourse.interpret import scoring
from mlcourse.motifs import Motif, jaspar

__all__ = ["motif_string", "insert", "marginalize", "spacing_scan", "arrangement_contrast"]


def motif_string(motif) -> str:
    """A motif as a DNA string: a string is returned upper-cased, a Motif or JASPAR name as its consensus."""
    if isinstance(motif, Motif):
        return motif.consensus
    if not isinstance(motif, str) or not motif:
        raise ValueError(f"expected a motif (Motif, JASPAR name or DNA string), got {motif!r}")
    if set(motif.upper()) <= set("ACGTN"):
        return motif.upper()
    return jaspar(motif).consensus


def insert(X: torch.Tensor, motif, position: int, strand: str = "+") -> torch.Tensor:
    """A copy of one-hot ``X`` ``(N, 4, L)`` with ``motif`` written at ``position`` on ``strand``."""
    word = motif_string(motif)
    if strand not in ("+", "-"):
        raise ValueError(f"strand must be '+' or '-', got {strand!r}")
    if not isinstance(X, torch.Tensor) or X.ndim != 3 or X.shape[1] != 4:
        raise ValueError(f"X must be one-hot DNA (N, 4, L), got {getattr(X, 'shape', type(X))}")
    if not 0 <= position <= X.shape[2] - len(word):
        raise ValueError(f"a {len(word)}-bp motif at position {position} does not fit in {X.shape[2]} bp "
                         f"(positions 0 to {X.shape[2] - len(word)})")
    out = X.clone()
    out[:, :, position:position + len(word)] = one_hot(word if strand == "+" else reverse_complement(word))[0]
    return out


def _scores(model, X, target, batch_size) -> np.ndarray:
    return scoring.score(model, X, target=target, batch_size=batch_size).float().cpu().numpy()


def marginalize(model, background: torch.Tensor, motif, *, position: int | None = None,
                strand: str = "+", target=None, batch_size: int = 512) -> pd.DataFrame:
    """The effect of inserting ``motif`` into every background sequence.

    Parameters
    ----------
    model : nn.Module or callable
        Scores one-hot ``(B, 4, L)`` batches.
    background : torch.Tensor
        One-hot ``(N, 4, L)`` sequences without the motif (e.g. random DNA or
        dinucleotide shuffles of real sequences).
    motif : Motif, JASPAR name or DNA string
    position : int, optional
        Where the motif starts; default: centred.
    strand : "+" or "-"

    Returns
    -------
    pandas.DataFrame
        One row per background sequence: ``before``, ``after`` and
        ``effect = after - before``; ``attrs["mean effect"]`` is their mean.
    """
    word = motif_string(motif)
    if position is None:
        position = (background.shape[2] - len(word)) // 2
    with_motif = insert(background, word, position, strand)
    scores = _scores(model, torch.cat([background, with_motif]), target, batch_size)
    n = len(background)
    table = pd.DataFrame({"before": scores[:n], "after": scores[n:]})
    table["effect"] = table["after"] - table["before"]
    table.attrs["mean effect"] = float(table["effect"].mean())
    return table


def spacing_scan(model, background: torch.Tensor, first, second, spacings, *,
                 target=None, batch_size: int = 512) -> pd.DataFrame:
    """Insert two motifs at every spacing and relative orientation; score each arrangement.

    ``first`` is written on the ``+`` strand; ``second`` on the same strand
    (``orientation = "same"``) or the other (``"opposite"``). ``spacing`` is
    the gap in bp between the end of ``first`` and the start of ``second``
    (downstream); a negative spacing ``-s`` puts ``second`` upstream, ending
    ``s`` bp before ``first`` starts. Each pair is centred in the sequence.
    This is the convention of :func:`mlcourse.datasets.simulate.motif_occupancy`:
    its composite element is ``spacing`` bp downstream, ``"same"``.

    For each arrangement and background sequence the **effect** is the score
    with both motifs minus the score with ``first`` alone at the same place:
    what the second motif adds given the first.

    Returns
    -------
    pandas.DataFrame
        One row per (spacing, orientation): mean ``score`` with both motifs,
        mean ``effect`` and its standard error ``se``.
    """
    a, b = motif_string(first), motif_string(second)
    length = background.shape[2]
    rows = []
    for spacing in spacings:
        span = len(a) + abs(spacing) + len(b)
        if span > length:
            raise ValueError(f"spacing {spacing}: the pair spans {span} bp, more than the {length}-bp sequences")
        left = (length - span) // 2
        pos_a, pos_b = (left, left + len(a) + spacing) if spacing >= 0 else (left + len(b) - spacing, left)
        alone = insert(background, a, pos_a)
        batches = [alone] + [insert(alone, b, pos_b, s) for s in ("+", "-")]
        scores = _scores(model, torch.cat(batches), target, batch_size).reshape(3, len(background))
        for orientation, both in (("same", scores[1]), ("opposite", scores[2])):
            effect = both - scores[0]
            rows.append({"spacing": int(spacing), "orientation": orientation, "score": float(both.mean()),
                         "effect": float(effect.mean()),
                         "se": float(effect.std(ddof=1) / np.sqrt(len(effect))) if len(effect) > 1 else np.nan})
    return pd.DataFrame(rows)


def arrangement_contrast(scan: pd.DataFrame, spacing: int, orientation: str = "same") -> float:
    """How much one arrangement stands out of a :func:`spacing_scan`, in standard deviations.

    ``(effect at the arrangement - mean effect of all others) / sd of the others``:
    a model that learned that arrangement gives a large value (a peak), a
    model blind to arrangements about 0.
    """
    chosen = (scan["spacing"] == spacing) & (scan["orientation"] == orientation)
    if chosen.sum() != 1:
        raise ValueError(f"the scan has no single row for spacing {spacing}, orientation {orientation!r}")
    others = scan.loc[~chosen, "effect"]
    return float((scan.loc[chosen, "effect"].iloc[0] - others.mean()) / max(others.std(ddof=1), 1e-12))
