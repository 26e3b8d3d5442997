"""Variant effects: what a single-base change does to a model's prediction.

The first use of a sequence model in genetics is to score variants: for a
single-nucleotide variant (SNV) at position ``pos`` of a sequence, with
reference base ``ref`` and alternative base ``alt``,

    delta = f(sequence with alt) - f(sequence with ref)

in the model's output units (a logit here). DeepSEA (Zhou & Troyanskaya 2015)
and DeepBind (Alipanahi et al. 2015) scored variants this way; Selene,
kipoi-veff and tangermeme's ``variant_effect`` package the same idea. Scoring
*every* possible SNV of a sequence is in-silico saturation mutagenesis
(:mod:`mlcourse.interpret.ism`): :func:`snv_table` lays that map out as a table
of variants.

A variant table has one row per variant, with columns

* ``id``: a name for the variant (``rs...``, or made up);
* ``seq``: which sequence it sits in (a row number, or a FASTA name);
* ``pos``: the 0-based position in that sequence;
* ``ref``, ``alt``: the reference and alternative base (A, C, G or T).

Before anything is scored, the reference base is checked against the
sequence (:func:`check_ref`): a table written for another genome build, or
with 1-based positions read as 0-based, fails here with a message naming the
variant and the base the sequence really has. :func:`read_variants` reads such
a table from a small tab-separated file (our own header, or the first five
columns of a VCF, whose positions are 1-based).

Whether a variant breaks or creates a known binding site is a question for the
motif, not the model: :func:`site_changes` scans a JASPAR motif over the
reference and alternative sequences. The two answers side by side are the
ground truth of lecture 14: site-breaking variants should have large
``|delta|``, variants far from any site none.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mlcourse.dna import ALPHABET, as_rng, decode, one_hot
from mlcourse.interpret import scoring
from mlcourse.motifs import Motif, jaspar, scan_positions

__all__ = [
    "COLUMNS",
    "variant_table",
    "read_variants",
    "write_variants",
    "check_ref",
    "apply_variants",
    "score_variants",
    "snv_table",
    "site_scores",
    "site_changes",
    "scan_sites",
    "planted_site_variants",
]

COLUMNS = ("id", "seq", "pos", "ref", "alt")
"""The columns of a variant table, in order."""


# --------------------------------------------------------------------------- tables


def variant_table(rows) -> pd.DataFrame:
    """Check and normalise a variant table.

    Parameters
    ----------
    rows : pandas.DataFrame, or a list of dicts / tuples ``(id, seq, pos, ref, alt)``
        Extra columns are kept. ``ref`` and ``alt`` are upper-cased.

    Returns
    -------
    pandas.DataFrame
        A copy with the :data:`COLUMNS` first, ``pos`` as integers.

    Raises
    ------
    ValueError
        For a missing column, a position that is not a non-negative integer,
        a base outside ACGT, ``ref == alt``, more than one base (only SNVs: an
        insertion or deletion changes the length the model reads), or a
        repeated ``id``. The message names the variant.
    """
    if isinstance(rows, pd.DataFrame):
        table = rows.copy()
    else:
        rows = list(rows)
        table = pd.DataFrame(rows, columns=None if rows and isinstance(rows[0], dict) else COLUMNS)
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"variant table lacks column(s) {missing}; expected {list(COLUMNS)}")
    table = table[list(COLUMNS) + [c for c in table.columns if c not in COLUMNS]].reset_index(drop=True)
    positions = []
    for i, row in table.iterrows():
        where = f"variant {row['id']!r} (row {i})"
        pos = row["pos"]
        if isinstance(pos, str) and pos.strip().isdigit():
            pos = int(pos)
        if isinstance(pos, (bool, np.bool_)) or not isinstance(pos, (int, np.integer, float)) \
                or pos != int(pos) or pos < 0:
            raise ValueError(f"{where}: position {pos!r} is not a non-negative integer")
        positions.append(int(pos))
        for column in ("ref", "alt"):
            base = str(row[column]).upper()
            if len(base) != 1:
                raise ValueError(f"{where}: {column} {row[column]!r} is not one base; only single-"
                                 f"nucleotide variants can be scored (an indel changes the length)")
            if base not in ALPHABET:
                raise ValueError(f"{where}: {column} {row[column]!r} is not one of A, C, G, T")
        if str(row["ref"]).upper() == str(row["alt"]).upper():
            raise ValueError(f"{where}: ref and alt are both {str(row['ref']).upper()!r}: no change")
    table["pos"] = np.asarray(positions, dtype=np.int64)
    table["ref"] = table["ref"].astype(str).str.upper()
    table["alt"] = table["alt"].astype(str).str.upper()
    repeated = table["id"][table["id"].duplicated()]
    if len(repeated):
        raise ValueError(f"variant id {repeated.iloc[0]!r} appears more than once")
    return table


def read_variants(path) -> pd.DataFrame:
    """Read a tab-separated variant file into a checked table (:func:`variant_table`).

    Two headers are understood:

    * ``id  seq  pos  ref  alt`` (any order, extra columns kept): ``pos`` is
      0-based, as everywhere in the course;
    * a VCF's ``#CHROM  POS  ID  REF  ALT ...``: ``CHROM`` names the sequence,
      ``POS`` is 1-based as the VCF specification says and is converted
      (``pos = POS - 1``); ``##`` meta lines are skipped; an ``ID`` of ``.``
      becomes ``seq:POS:REF>ALT``.

    Raises
    ------
    ValueError
        For a missing file, an unknown header, a row with the wrong number of
        fields (naming the line), or a bad variant.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"variant file {str(path)!r} does not exist")
    lines = [(n, line.rstrip("\r\n")) for n, line in
             enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)]
    lines = [(n, line) for n, line in lines if line.strip() and not line.startswith("##")]
    if not lines:
        raise ValueError(f"{path}: no header line")
    header = lines[0][1].split("\t")
    vcf = header[0] == "#CHROM"
    if vcf:
        if header[1:5] != ["POS", "ID", "REF", "ALT"]:
            raise ValueError(f"{path}: a VCF header must start #CHROM POS ID REF ALT, got {header[:5]}")
        header = ["seq", "POS", "id", "ref", "alt"] + header[5:]
    elif not set(COLUMNS) <= set(header):
        raise ValueError(f"{path}: header {header} lacks {sorted(set(COLUMNS) - set(header))}; expected "
                         f"the columns {list(COLUMNS)} or a VCF header (#CHROM POS ID REF ALT)")
    rows = []
    for n, line in lines[1:]:
        fields = line.split("\t")
        if len(fields) != len(header):
            raise ValueError(f"{path}, line {n}: {len(fields)} tab-separated fields, the header has "
                             f"{len(header)}")
        rows.append(dict(zip(header, fields)))
    table = pd.DataFrame(rows, columns=header)
    if vcf:
        for i, row in table.iterrows():
            if not row["POS"].isdigit() or int(row["POS"]) < 1:
                raise ValueError(f"{path}, line {lines[i + 1][0]}: POS {row['POS']!r} is not a 1-based position")
        table["pos"] = table["POS"].astype(int) - 1
        unnamed = table["id"] == "."
        table.loc[unnamed, "id"] = (table["seq"] + ":" + table["POS"] + ":" + table["ref"] + ">"
                                    + table["alt"])[unnamed]
        table = table.drop(columns="POS")
    return variant_table(table)


def write_variants(table, path) -> Path:
    """Write a variant table as tab-separated text (our header, 0-based ``pos``), atomically."""
    from mlcourse.files import atomic_write_text

    table = variant_table(table)
    path = Path(path)
    atomic_write_text(path, table.to_csv(sep="\t", index=False, lineterminator="\n"))
    return path


# --------------------------------------------------------------------------- sequences


def _sequences(sequences) -> dict:
    """Sequences by id: a dataset or list (ids = row numbers), a dict (name -> sequence), or one-hot."""
    if hasattr(sequences, "seqs"):
        sequences = sequences.seqs
    if isinstance(sequences, torch.Tensor):
        sequences = decode(sequences)
    if isinstance(sequences, str):
        sequences = [sequences]
    if not isinstance(sequences, dict):
        sequences = dict(enumerate(sequences))
    return {key: str(seq).upper() for key, seq in sequences.items()}


def _lookup(by_id: dict, key, where: str) -> str:
    if key in by_id:
        return by_id[key]
    if isinstance(key, str) and key.strip().isdigit() and int(key) in by_id:
        return by_id[int(key)]
    names = list(by_id)
    shown = names[:5] if len(names) > 5 else names
    raise ValueError(f"{where}: no sequence {key!r} (there are {len(names)}: {shown}"
                     f"{' ...' if len(names) > 5 else ''})")


def check_ref(sequences, variants) -> pd.DataFrame:
    """Check every variant's position and reference base against its sequence.

    Parameters
    ----------
    sequences : SeqDataset, list of str, dict name -> str, or one-hot ``(N, 4, L)``
    variants : variant table (see :func:`variant_table`)

    Returns
    -------
    pandas.DataFrame
        The checked table.

    Raises
    ------
    ValueError
        For the first variant whose sequence is unknown, whose position is
        past the end, or whose ``ref`` is not the base the sequence has there:
        ``variant 'rs1' (seq 3, pos 17, G>A): the sequence has C at position 17, not G``.
    """
    table = variant_table(variants)
    by_id = _sequences(sequences)
    for row in table.itertuples(index=False):
        where = f"variant {row.id!r} (seq {row.seq!r}, pos {row.pos}, {row.ref}>{row.alt})"
        seq = _lookup(by_id, row.seq, where)
        if row.pos >= len(seq):
            raise ValueError(f"{where}: position {row.pos} is past the end of the {len(seq)}-bp sequence "
                             f"(positions are 0-based)")
        if seq[row.pos] != row.ref:
            raise ValueError(f"{where}: the sequence has {seq[row.pos]} at position {row.pos}, not "
                             f"{row.ref} (another genome build, or 1-based positions?)")
    return table


def apply_variants(sequences, variants) -> tuple[list[str], list[str]]:
    """The reference and alternative sequence of every variant (after :func:`check_ref`)."""
    table = check_ref(sequences, variants)
    by_id = _sequences(sequences)
    refs = [_lookup(by_id, row.seq, "") for row in table.itertuples(index=False)]
    alts = [s[:row.pos] + row.alt + s[row.pos + 1:] for s, row in zip(refs, table.itertuples(index=False))]
    return refs, alts


def _model_scores(model, X: torch.Tensor, target, batch_size: int) -> np.ndarray:
    return scoring.score(model, X, target=target, batch_size=batch_size).float().cpu().numpy()


def score_variants(model, sequences, variants, *, target=None, batch_size: int = 512) -> pd.DataFrame:
    """Score variants as ``delta = f(alt) - f(ref)`` (Zhou & Troyanskaya 2015, DeepSEA).

    Parameters
    ----------
    model : nn.Module or callable
        Maps one-hot ``(B, 4, L)`` to scores ``(B,)`` (or ``(B, C)`` with ``target``).
    sequences : SeqDataset, list of str, dict name -> str, or one-hot ``(N, 4, L)``
        The reference sequences the variants sit in (all of the model's input length).
    variants : variant table
        Reference bases are checked first (:func:`check_ref`).
    target : int, optional
        Output column of a multi-output model.
    batch_size : int
        Sequences per model call.

    Returns
    -------
    pandas.DataFrame
        The table with ``ref_score``, ``alt_score``, ``delta`` and ``rank``
        (1 = largest ``|delta|``), in the input order.
    """
    table = check_ref(sequences, variants)
    refs, alts = apply_variants(sequences, table)
    scores = _model_scores(model, one_hot(refs + alts), target, batch_size)
    table["ref_score"], table["alt_score"] = scores[:len(refs)], scores[len(refs):]
    table["delta"] = table["alt_score"] - table["ref_score"]
    table["rank"] = table["delta"].abs().rank(ascending=False, method="first").astype(int)
    return table


def snv_table(model, sequences, *, target=None, batch_size: int = 2048) -> pd.DataFrame:
    """Every possible SNV of every sequence as a scored variant table: ISM as a list.

    In-silico saturation mutagenesis (:func:`mlcourse.interpret.ism.saturation_mutagenesis`)
    scores the ``3 L`` SNVs of each sequence; this writes them out with ids
    ``seq:pos:ref>alt``, ranked by ``|delta|``, so that they can be filtered,
    joined with :func:`site_changes`, or saved.
    """
    from mlcourse.interpret.ism import saturation_mutagenesis

    by_id = _sequences(sequences)
    keys = list(by_id)
    X = one_hot([by_id[k] for k in keys])
    delta = saturation_mutagenesis(model, X, target=target, batch_size=batch_size).numpy()
    clean = X.numpy().sum(1, keepdims=True) == 1  # N columns have no reference base
    i, b, p = np.nonzero((X.numpy() == 0) & clean)  # every base other than the one present
    observed = X.numpy().argmax(1)
    ref = np.array(list(ALPHABET))[observed[i, p]]
    alt = np.array(list(ALPHABET))[b]
    seq_ids = np.array(keys, dtype=object)[i]
    table = pd.DataFrame({"id": [f"{s}:{q}:{r}>{a}" for s, q, r, a in zip(seq_ids, p, ref, alt)],
                          "seq": seq_ids, "pos": p, "ref": ref, "alt": alt, "delta": delta[i, b, p]})
    table["rank"] = table["delta"].abs().rank(ascending=False, method="first").astype(int)
    return table.sort_values(["seq", "pos", "alt"], kind="stable", ignore_index=True)


# --------------------------------------------------------------------------- motif sites


def site_scores(motif: Motif, X) -> np.ndarray:
    """Log-odds score of every window on both strands as a share of the best possible, ``(N, 2, L - W + 1)``.

    ``score / max``, where ``max`` is the score of the consensus: 1 for the
    consensus, about 0 for a typical random window, negative for a poor one
    (the cut-off of :func:`mlcourse.interpret.compare.motif_detector`). For
    JASPAR's CTCF, 75% of the instances sampled from the PWM score at least
    0.6, and fewer than 1% of random 101-bp sequences have a window that does.
    """
    return scan_positions(motif, X) / motif.log_odds.max(axis=0).sum()


def site_changes(motif, sequences, variants, *, threshold: float = 0.6) -> pd.DataFrame:
    """Which variants break or create a site of ``motif`` (a PWM scan of ref and alt).

    For each variant, the best site score (:func:`site_scores`) of the
    windows that contain the variant's position, on either strand, is computed
    for the reference (``ref_site``) and the alternative sequence
    (``alt_site``). A window at or above ``threshold`` is a site. ``change``:

    * ``"breaks"``: the reference has a site over the position, the alternative none;
    * ``"creates"``: the alternative has one, the reference none;
    * ``"weakens"`` / ``"strengthens"``: a site in both, lower / higher score;
    * ``"none"``: no site over the position in either.

    Parameters
    ----------
    motif : Motif, or a JASPAR name or ID
    sequences, variants : as for :func:`score_variants`
    threshold : float
        Site-score cut-off in (0, 1]: a share of the best possible log-odds score.

    Returns
    -------
    pandas.DataFrame
        The variant table with ``ref_site``, ``alt_site`` and ``change``.
    """
    motif = motif if isinstance(motif, Motif) else jaspar(motif)
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be a share of the best score in (0, 1], got {threshold!r}")
    table = check_ref(sequences, variants)
    refs, alts = apply_variants(sequences, table)
    scores = site_scores(motif, one_hot(refs + alts))  # (2V, 2, L - W + 1)
    starts = np.arange(scores.shape[-1])
    covers = (starts[None] <= table["pos"].to_numpy()[:, None]) & \
             (starts[None] > table["pos"].to_numpy()[:, None] - motif.width)  # (V, windows)
    best = np.where(covers[:, None], scores.reshape(2, len(table), 2, -1), -np.inf).max(axis=(2, 3))
    table["ref_site"], table["alt_site"] = best[0], best[1]
    ref_site, alt_site = best[0] >= threshold, best[1] >= threshold
    change = np.select(
        [ref_site & ~alt_site, ~ref_site & alt_site, ref_site & (best[1] < best[0]), ref_site & alt_site],
        ["breaks", "creates", "weakens", "strengthens"], "none")
    table["change"] = change
    return table


def scan_sites(motif, sequences, *, threshold: float = 0.6) -> list[list]:
    """The sites of ``motif`` in each sequence by a PWM scan: non-overlapping windows at or above ``threshold``.

    ``threshold`` is a share of the consensus score (as :func:`site_scores`);
    the scan itself is :meth:`mlcourse.datasets.base.SeqDataset.scan_sites`
    (best window first, windows overlapping it dropped). Returns, per
    sequence, a list of :class:`~mlcourse.datasets.base.Site` sorted by start:
    the stand-in for planted sites on real sequences, e.g. for
    :func:`planted_site_variants` on ChIP-seq peaks.
    """
    from mlcourse.datasets.base import SeqDataset

    motif = motif if isinstance(motif, Motif) else jaspar(motif)
    by_id = _sequences(sequences)
    data = SeqDataset(list(by_id.values()), np.zeros(len(by_id)), name="scanned sequences")
    return data.scan_sites(motif, min_score=threshold * motif.log_odds.max(axis=0).sum())


def planted_site_variants(dataset, n: int, *, seed=0, margin: int = 5) -> pd.DataFrame:
    """Variants with a known answer: ``n`` that break planted sites and ``n`` neutral ones.

    For simulated data (:mod:`mlcourse.datasets.simulate`), whose sites are
    recorded. A **site-breaking** variant changes the most informative column
    of a planted site (highest information content; ties broken at random) to
    its least likely base on the site's strand (the next least likely if the site
    already has that one). A **neutral** variant changes a
    random position at least ``margin`` bp from every planted site to a random
    other base. Each sequence with sites gets at most one of each kind.

    Returns
    -------
    pandas.DataFrame
        A variant table with ``truth`` (``"site-breaking"`` or ``"neutral"``)
        and ``motif`` (the planted motif, for site-breaking variants).
    """
    rng = as_rng(seed)
    rows = [i for i, sites in enumerate(dataset.sites) if sites]
    if len(rows) < n:
        raise ValueError(f"asked for {n} variants of each kind, but only {len(rows)} sequences have sites")
    motifs = {name: jaspar(name) for name in {s.motif for i in rows for s in dataset.sites[i]}}
    out = []
    for i in rng.permutation(rows)[:n]:
        seq, sites = dataset.seqs[i], dataset.sites[i]
        site = sites[rng.integers(len(sites))]
        m = motifs[site.motif]
        probs = m.probs if site.strand == "+" else m.probs[::-1, ::-1]
        ic = 2 + (probs * np.log2(probs)).sum(axis=0)
        column = int(rng.choice(np.flatnonzero(ic >= ic.max() - 1e-9)))
        pos = site.start + column
        unlikely = np.argsort(probs[:, column])  # least likely first; a sampled site may already hold it
        alt = next(ALPHABET[b] for b in unlikely if ALPHABET[b] != seq[pos])
        out.append({"id": f"break:{i}:{pos}", "seq": int(i), "pos": pos, "ref": seq[pos],
                    "alt": alt, "truth": "site-breaking",
                    "motif": site.motif})
        far = np.ones(len(seq), dtype=bool)
        for s in sites:
            far[max(0, s.start - margin): s.end + margin] = False
        if far.any():
            pos = int(rng.choice(np.flatnonzero(far)))
            alt = rng.choice([b for b in ALPHABET if b != seq[pos]])
            out.append({"id": f"neutral:{i}:{pos}", "seq": int(i), "pos": pos, "ref": seq[pos],
                        "alt": str(alt), "truth": "neutral", "motif": ""})
    return variant_table(pd.DataFrame(out))
