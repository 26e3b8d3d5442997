"""Real TF ChIP-seq data (ENCODE) in the formats of Zeng et al. (2016) and DeepBind.

Both papers cut 101-bp windows around ChIP-seq peak summits as *bound*
sequences, and made *unbound* ones by dinucleotide-shuffling them, so that base
composition cannot separate the classes (Zeng, Edwards, Liu & Gifford 2016,
Bioinformatics 32:i121; Alipanahi, Delong, Weirauch & Frey 2015, Nature
Biotechnology 33:831). Formats read here, gzipped or not:

* Zeng FASTA + ``.target`` (the Keras-genomics example): a FASTA file and a
  target file whose lines are ``1 0`` (bound) or ``0 1`` (shuffled), in order;
* Zeng ``*.data``: lines ``name sequence label``, where shuffled negatives
  have names ending in ``_shuf``;
* a ``seq<TAB>bound`` table with a header (the course mirror's CTCF training set);
* DeepBind: a table with header ``FoldID EventID seq Bound``. Its ``_AC``
  files hold bound peaks only; :func:`read_deepbind` then adds one
  dinucleotide shuffle of each as a negative, as DeepBind did;
* a FASTA file of peak sequences (:func:`read_peaks`), of any length: the
  peaks are bound, negatives are their dinucleotide shuffles or the peaks of
  a second file. :func:`load_janggu_peaks` reads the MafK and Oct4 peaks of
  janggu's example data (Kopp et al. 2020).

:func:`load_zeng_ctcf` and :func:`load_deepbind` find the files in the cache
(see :mod:`mlcourse.datasets.fetch`) and say which ``mlcourse fetch`` command
gets them when they are missing.
"""

from __future__ import annotations

import gzip
import re
import zlib
from pathlib import Path

import numpy as np

from mlcourse.datasets.base import SeqDataset
from mlcourse.datasets.fetch import DATASETS, DEEPBIND_TFS, require
from mlcourse.dna import as_rng, dinucleotide_shuffle
from mlcourse.files import existing_file

__all__ = [
    "read_fasta",
    "read_zeng_fasta",
    "read_zeng_data",
    "read_zeng_tsv",
    "read_deepbind",
    "load_zeng_ctcf",
    "load_deepbind",
    "read_peaks",
    "load_janggu_peaks",
    "DEEPBIND_TFS",
    "JANGGU_PEAKS",
    "IUPAC_AMBIGUOUS",
]

_DNA = re.compile("[ACGTNacgtn]+")


def _lines(path) -> list[tuple[int, str]]:
    """Non-empty lines of a text file (gzip detected by its magic bytes) with 1-based numbers."""
    path = existing_file(path)
    with open(path, "rb") as handle:
        gzipped = handle.read(2) == b"\x1f\x8b"
    try:
        if gzipped:
            with gzip.open(path, "rt", encoding="ascii") as handle:
                text = handle.read()
        else:
            text = path.read_text(encoding="ascii")
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise ValueError(f"{path} is a truncated or corrupt gzip file ({err})") from None
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not a plain-text sequence file (byte {err.start})") from None
    return [(i, line.strip()) for i, line in enumerate(text.splitlines(), start=1) if line.strip()]


def _check_seq(seq: str, path, line, hint: str = "") -> str:
    """Upper-cased ``seq``, or an error naming file, line and position of the first non-DNA letter.

    ``line`` is a line number, or for a FASTA record the ``(number, length)`` of each of its lines.
    """
    if not _DNA.fullmatch(seq):
        pos = next((p for p, c in enumerate(seq) if c not in "ACGTNacgtn"), 0)
        char = seq[pos] if seq else "nothing"
        where = "the sequence"
        if not isinstance(line, int):
            for number, width in line:
                if pos < width:
                    line, where = number, "the line"
                    break
                pos -= width
        raise ValueError(
            f"{path}, line {line}: {char!r} at position {pos} of {where} is not a DNA base (ACGTN)"
            + hint
        )
    return seq.upper()


def _label(value: str, path, line: int) -> int:
    if value not in ("0", "1"):
        raise ValueError(f"{path}, line {line}: label {value!r} is not 0 or 1")
    return int(value)


def _target(line: str, path, number: int) -> int:
    """A ``.target`` line: ``1 0`` (bound) or ``0 1`` (shuffled), one-hot; a lone ``1`` or ``0`` also works."""
    fields = line.split()
    if fields in (["1", "0"], ["0", "1"]):
        return int(fields[0])
    if len(fields) == 1:
        return _label(fields[0], path, number)
    raise ValueError(
        f"{path}, line {number}: target {line!r} is not '1 0' (bound) or '0 1' (shuffled): "
        "each line must mark exactly one class"
    )


def _dataset(seqs, y, name, path) -> SeqDataset:
    if not seqs:
        raise ValueError(f"{path} holds no sequences")
    lengths = {len(s) for s in seqs}
    if len(lengths) > 1:
        j = next(i for i, s in enumerate(seqs) if len(s) != len(seqs[0]))
        raise ValueError(
            f"{path}: sequence 0 is {len(seqs[0])} bp but sequence {j} is {len(seqs[j])} bp; "
            "the course models need one length"
        )
    return SeqDataset(seqs, np.asarray(y, dtype=np.float32), name=name)


def _fasta_records(path) -> list[tuple[str, str, list]]:
    """``(name, raw sequence, [(line number, length), ...] of its sequence lines)`` per FASTA record."""
    records, chunks = [], []
    for number, line in _lines(path):
        if line.startswith(">"):
            records.append((line[1:].strip(), number))
            chunks.append([])
        elif not records:
            raise ValueError(f"{path}, line {number}: sequence before the first '>' header")
        else:
            chunks[-1].append((number, line))
    out = []
    for (name, number), parts in zip(records, chunks):
        if not parts:
            raise ValueError(f"{path}, line {number}: record {name!r} has no sequence")
        out.append((name, "".join(text for _, text in parts), [(n, len(text)) for n, text in parts]))
    return out


def read_fasta(path) -> tuple[list[str], list[str]]:
    """Names (header without ``>``) and upper-case sequences of a FASTA file.

    Sequences may span several lines; lower-case (soft-masked) bases are
    upper-cased. Anything but ``ACGTN`` is an error naming the file and line.
    """
    records = _fasta_records(path)
    return [r[0] for r in records], [_check_seq(seq, path, lines) for _, seq, lines in records]


IUPAC_AMBIGUOUS = "RYSWKMBDHV"
"""IUPAC ambiguity codes other than ``N`` (R = A/G, Y = C/T, ... V = A/C/G)."""

_TO_N = str.maketrans(IUPAC_AMBIGUOUS + IUPAC_AMBIGUOUS.lower(), "N" * 2 * len(IUPAC_AMBIGUOUS))


def _peak_sequences(path, length, iupac: str) -> list[str]:
    """The records of a peak FASTA file, checked, upper-cased and centre-trimmed to ``length``."""
    seqs = []
    for name, seq, lines in _fasta_records(path):
        line = lines[0][0] - 1  # the header
        if iupac == "N":
            seq = seq.translate(_TO_N)
        elif iupac == "skip" and any(c in IUPAC_AMBIGUOUS for c in seq.upper()):
            continue
        seq = _check_seq(seq, path, lines, hint=" (IUPAC codes: pass iupac='N' or iupac='skip')")
        if length is not None:
            if len(seq) < length:
                raise ValueError(
                    f"{path}, line {line}: peak {name!r} is {len(seq)} bp, shorter than length={length}; "
                    "pass a smaller length or drop the short peaks"
                )
            start = (len(seq) - length) // 2
            seq = seq[start : start + length]
        elif seqs and len(seq) != len(seqs[0]):
            raise ValueError(
                f"{path}, line {line}: peak {name!r} is {len(seq)} bp but the first peak is "
                f"{len(seqs[0])} bp; pass length= to centre and trim every peak to one length"
            )
        seqs.append(seq)
    if not seqs:
        raise ValueError(f"{path} holds no usable peak sequences")
    return seqs


def read_peaks(path, length: int | None = None, negatives="shuffle", *, iupac: str = "error",
               seed=0, name: str | None = None) -> SeqDataset:
    """ChIP-seq peak sequences from a FASTA file as a bound-vs-unbound :class:`SeqDataset`.

    The motif-discovery setting of DeepBind (Alipanahi et al. 2015) and Zeng
    et al. (2016): every peak is a *bound* example (label 1); the *unbound*
    ones are either dinucleotide shuffles of the peaks (same base and
    dinucleotide composition, Altschul & Erikson 1985) or the peaks of another
    experiment (e.g. MafK peaks against Oct4 peaks: which TF bound here?).

    Parameters
    ----------
    path : str or Path
        FASTA, plain or gzip-compressed; one record per peak, sequences on one
        or several lines. Lower-case (soft-masked repeat) bases are upper-cased.
    length : int, optional
        Centre every peak and trim it to ``length`` bp (the middle ``length``
        bases; peaks are usually centred on the summit). Default: keep the
        peaks as they are, which must then all have one length.
    negatives : "shuffle" or str or Path
        ``"shuffle"``: one dinucleotide shuffle of each peak (seeded by ``seed``);
        a path: a second peak FASTA file, read like the first (same ``length``
        and ``iupac``), whose peaks are the unbound examples.
    iupac : {"error", "N", "skip"}
        What to do with IUPAC ambiguity codes (R, Y, S, W, K, M, B, D, H, V):
        raise an error naming file and line, read them as ``N`` (all-zero
        one-hot column), or drop those peaks.
    seed : int or numpy Generator
        For the shuffles.
    name : str, optional
        Dataset name; default from the file name.

    Returns
    -------
    SeqDataset
        The peaks first (label 1), then the negatives (label 0);
        :meth:`~mlcourse.datasets.base.SeqDataset.split` shuffles.

    Raises
    ------
    ValueError
        A missing or empty file, an empty record, a character that is not
        DNA, peaks of several lengths without ``length``, a peak shorter than
        ``length``, or a negatives file whose peaks have another length.
    """
    if iupac not in ("error", "N", "skip"):
        raise ValueError(f"iupac must be 'error', 'N' or 'skip', got {iupac!r}")
    if length is not None and (not isinstance(length, (int, np.integer)) or length < 1):
        raise ValueError(f"length must be a positive number of bp or None, got {length!r}")
    if not isinstance(negatives, (str, Path)):
        raise ValueError(f"negatives must be 'shuffle' or a peak FASTA path, got {negatives!r}")
    bound = _peak_sequences(path, length, iupac)
    if isinstance(negatives, str) and negatives == "shuffle":
        rng = as_rng(seed)
        unbound = [dinucleotide_shuffle(s, rng) for s in bound]
        what = "dinucleotide shuffles"
    else:
        unbound = _peak_sequences(negatives, length, iupac)
        if len(unbound[0]) != len(bound[0]):
            raise ValueError(
                f"negatives file {negatives} has peaks of {len(unbound[0])} bp but {path} has "
                f"{len(bound[0])} bp; pass length= to trim both to one length"
            )
        what = Path(negatives).name
    label = name or f"{Path(path).name.split('.')[0]} peaks vs {what}"
    return SeqDataset(bound + unbound, np.r_[np.ones(len(bound)), np.zeros(len(unbound))], name=label)


def read_zeng_fasta(fasta, target, name: str | None = None) -> SeqDataset:
    """Read a FASTA file with its ``.target`` file (Keras-genomics / Zeng et al. 2016).

    Target line ``k`` belongs to FASTA record ``k``: ``1 0`` = bound, ``0 1`` =
    shuffled (a one-hot pair; ``1 1`` or ``0 0`` is an error naming the line).
    """
    _, seqs = read_fasta(fasta)
    labels = [_target(line, target, number) for number, line in _lines(target)]
    if len(labels) != len(seqs):
        raise ValueError(f"{fasta} has {len(seqs)} sequences but {target} has {len(labels)} labels")
    return _dataset(seqs, labels, name or Path(fasta).stem, fasta)


def read_zeng_data(path, name: str | None = None) -> SeqDataset:
    """Read Zeng et al.'s ``*.data`` lines ``name sequence label``.

    Shuffled negatives are named ``..._shuf``; a ``_shuf`` row labelled 1 is
    an error (the file is not what it claims).
    """
    seqs, labels = [], []
    for number, line in _lines(path):
        fields = line.split()
        if len(fields) != 3:
            raise ValueError(f"{path}, line {number}: expected 'name sequence label', got {len(fields)} fields")
        row_name, seq, label = fields
        label = _label(label, path, number)
        if row_name.endswith("_shuf") and label == 1:
            raise ValueError(f"{path}, line {number}: shuffled sequence {row_name!r} is labelled bound")
        seqs.append(_check_seq(seq, path, number))
        labels.append(label)
    return _dataset(seqs, labels, name or Path(path).name.split(".")[0], path)


def _table(path, columns: tuple[str, ...]) -> list[tuple[int, list[str]]]:
    """Rows of a tab/space-separated table whose header must hold ``columns``."""
    lines = _lines(path)
    if not lines:
        raise ValueError(f"{path} is empty")
    header = lines[0][1].split()
    missing = [c for c in columns if c not in header]
    if missing:
        raise ValueError(f"{path}: header {header} lacks column(s) {missing}; expected {list(columns)}")
    index = [header.index(c) for c in columns]
    rows = []
    for number, line in lines[1:]:
        fields = line.split()
        if len(fields) != len(header):
            raise ValueError(f"{path}, line {number}: {len(fields)} fields, the header has {len(header)}")
        rows.append((number, [fields[i] for i in index]))
    return rows


def read_zeng_tsv(path, name: str | None = None) -> SeqDataset:
    """Read a ``seq<TAB>bound`` table with a header (the mirror's ``zeng_ctcf/train.tsv.gz``)."""
    rows = _table(path, ("seq", "bound"))
    seqs = [_check_seq(seq, path, n) for n, (seq, _) in rows]
    labels = [_label(label, path, n) for n, (_, label) in rows]
    return _dataset(seqs, labels, name or Path(path).name.split(".")[0], path)


def read_deepbind(path, shuffled_negatives: bool | None = None, seed=0, name: str | None = None) -> SeqDataset:
    """Read a DeepBind ENCODE file (``FoldID EventID seq Bound``).

    Parameters
    ----------
    path : str or Path
    shuffled_negatives : bool, optional
        Add one dinucleotide shuffle of every bound sequence as an unbound
        one (Alipanahi et al. 2015's background for ChIP-seq training). Default:
        only when the file has no unbound rows, as the ``_AC`` training files.
    seed : int or numpy Generator
        For the shuffles.
    """
    rows = _table(path, ("seq", "Bound"))
    seqs = [_check_seq(seq, path, n) for n, (seq, _) in rows]
    labels = [_label(label, path, n) for n, (_, label) in rows]
    if shuffled_negatives is None:
        shuffled_negatives = 0 not in labels
    if shuffled_negatives:
        rng = as_rng(seed)
        bound = [s for s, label in zip(seqs, labels) if label == 1]
        seqs = seqs + [dinucleotide_shuffle(s, rng) for s in bound]
        labels = labels + [0] * len(bound)
    return _dataset(seqs, labels, name or Path(path).name.split(".")[0], path)


def load_zeng_ctcf(split: str = "train", download: bool = False) -> SeqDataset:
    """The Zeng et al. (2016) CTCF motif-discovery data (ENCODE, WERI-Rb-1 cells, 101 bp).

    Half of each split is bound (peak centres), half dinucleotide-shuffled.
    Sizes: train 77,174, valid 1,000, test 19,544.

    Parameters
    ----------
    split : {"train", "valid", "test"}
    download : bool
        Download from upstream if not cached (else: cache or ``MLCOURSE_MIRROR`` only).

    Raises
    ------
    ValueError
        Unknown split, or the files are not cached (naming ``mlcourse fetch zeng_ctcf``).
    """
    if split not in ("train", "valid", "test"):
        raise ValueError(f"split must be 'train', 'valid' or 'test', got {split!r}")
    name = f"Zeng et al. 2016 CTCF ({split})"
    if split == "train":
        return read_zeng_tsv(require("zeng_ctcf/train.tsv.gz", download), name=name)
    fasta = require(f"zeng_ctcf/{split}.fa", download)
    return read_zeng_fasta(fasta, require(f"zeng_ctcf/{split}.target", download), name=name)


def load_deepbind(tf, split: str = "train", download: bool = False, seed=0) -> SeqDataset:
    """A DeepBind ENCODE ChIP-seq set (Alipanahi et al. 2015), 101 bp.

    Parameters
    ----------
    tf : str or Path
        One of :data:`DEEPBIND_TFS` (case-insensitive), from the download
        registry; or the path of a DeepBind file you have (any TF, e.g.
        ``FOXA1_HepG2_..._AC.seq.gz``), read by :func:`read_deepbind`.
    split : {"train", "test"}
        ``train``: the ``_AC`` peaks plus one dinucleotide shuffle of each;
        ``test``: the ``_B`` file, 500 bound and 500 background sequences.
        Ignored for a path (the file is what it is).
    download : bool
        Download from upstream if not cached.
    seed : int
        Seed of the shuffles.
    """
    if isinstance(tf, Path) or (isinstance(tf, str) and (Path(tf).is_file() or "/" in tf or "." in tf)):
        return read_deepbind(tf, seed=seed)
    key = tf.upper() if isinstance(tf, str) else tf
    if key not in DEEPBIND_TFS:
        raise ValueError(
            f"no DeepBind ENCODE set for TF {tf!r} in the download registry (it has "
            f"{', '.join(DEEPBIND_TFS)}); for a file you have, pass its path: load_deepbind(path) or "
            "read_deepbind(path) for DeepBind tables (FoldID EventID seq Bound), read_peaks(path) for "
            "a FASTA of peaks, read_zeng_fasta / read_zeng_data / read_zeng_tsv for Zeng et al.'s formats"
        )
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    suffix = "_AC.seq.gz" if split == "train" else "_B.seq.gz"
    file = next(k for k in DATASETS[f"deepbind_{key}"] if k.endswith(suffix))
    return read_deepbind(require(file, download), seed=seed, name=f"DeepBind ENCODE {key} ({split})")


JANGGU_PEAKS = {"MafK": "janggu_peaks/mafk_sample2.fa", "Oct4": "janggu_peaks/oct4_sample.fa"}
"""The janggu example peak sets (Kopp et al. 2020) in the download registry, by TF."""


def load_janggu_peaks(tf: str = "MafK", negatives: str = "shuffle", length: int | None = None,
                      seed=0, download: bool = False) -> SeqDataset:
    """Real ChIP-seq peaks from janggu's example data: MafK (3,900) or Oct4 (3,897), 200 bp.

    The peak sequences that ship with janggu (Kopp, Monti, Tamburrini, Ohler &
    Akalin 2020, *Nature Communications* 11:3488), downloaded by
    ``mlcourse fetch janggu_peaks`` (GPL-3 data: downloaded, never bundled).
    MafK is a small Maf protein: it binds the MARE, TGCTGA(C/G)TCAGCA, as
    MAFF does.

    Parameters
    ----------
    tf : {"MafK", "Oct4"}
        The bound peaks (case-insensitive).
    negatives : "shuffle" or {"MafK", "Oct4"}
        Dinucleotide shuffles of the peaks, or the other TF's peaks.
    length : int, optional
        Centre-trim the peaks (see :func:`read_peaks`).
    seed : int
    download : bool
        Download from upstream if not cached.
    """
    names = {k.upper(): k for k in JANGGU_PEAKS}
    if not isinstance(tf, str) or tf.upper() not in names:
        raise ValueError(f"no janggu peak set {tf!r}; available: {', '.join(JANGGU_PEAKS)}")
    tf = names[tf.upper()]
    peaks = require(JANGGU_PEAKS[tf], download)
    if negatives == "shuffle":
        return read_peaks(peaks, length, seed=seed, name=f"{tf} peaks vs dinucleotide shuffles")
    other = names.get(negatives.upper()) if isinstance(negatives, str) else None
    if other is None or other == tf:
        choices = ", ".join(repr(k) for k in JANGGU_PEAKS if k != tf)
        raise ValueError(f"negatives must be 'shuffle' or another peak set ({choices}), got {negatives!r}")
    return read_peaks(peaks, length, require(JANGGU_PEAKS[other], download),
                      name=f"{tf} peaks vs {other} peaks")
