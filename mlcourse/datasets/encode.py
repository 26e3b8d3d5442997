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
  dinucleotide shuffle of each as a negative, as DeepBind did.

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

__all__ = [
    "read_fasta",
    "read_zeng_fasta",
    "read_zeng_data",
    "read_zeng_tsv",
    "read_deepbind",
    "load_zeng_ctcf",
    "load_deepbind",
    "DEEPBIND_TFS",
]

_DNA = re.compile("[ACGTNacgtn]+")


def _lines(path) -> list[tuple[int, str]]:
    """Non-empty lines of a text file (gzip detected by its magic bytes) with 1-based numbers."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
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


def _check_seq(seq: str, path, line: int) -> str:
    if not _DNA.fullmatch(seq):
        pos = next((p for p, c in enumerate(seq) if c not in "ACGTNacgtn"), 0)
        char = seq[pos] if seq else "nothing"
        raise ValueError(
            f"{path}, line {line}: {char!r} at position {pos} of the sequence is not a DNA base (ACGTN)"
        )
    return seq.upper()


def _label(value: str, path, line: int) -> int:
    if value not in ("0", "1"):
        raise ValueError(f"{path}, line {line}: label {value!r} is not 0 or 1")
    return int(value)


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


def read_fasta(path) -> tuple[list[str], list[str]]:
    """Names (header without ``>``) and upper-case sequences of a FASTA file.

    Sequences may span several lines.
    """
    names, chunks, starts = [], [], []
    for number, line in _lines(path):
        if line.startswith(">"):
            names.append(line[1:].strip())
            chunks.append([])
            starts.append(number)
        elif not names:
            raise ValueError(f"{path}, line {number}: sequence before the first '>' header")
        else:
            chunks[-1].append(line)
    seqs = []
    for name, parts, number in zip(names, chunks, starts):
        if not parts:
            raise ValueError(f"{path}, line {number}: record {name!r} has no sequence")
        seqs.append(_check_seq("".join(parts), path, number + 1))
    return names, seqs


def read_zeng_fasta(fasta, target, name: str | None = None) -> SeqDataset:
    """Read a FASTA file with its ``.target`` file (Keras-genomics / Zeng et al. 2016).

    Target line ``k`` belongs to FASTA record ``k``; its first column is the
    label (``1 0`` = bound, ``0 1`` = shuffled).
    """
    _, seqs = read_fasta(fasta)
    labels = [_label(line.split()[0], target, number) for number, line in _lines(target)]
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


def load_deepbind(tf: str, split: str = "train", download: bool = False, seed=0) -> SeqDataset:
    """A DeepBind ENCODE ChIP-seq set (Alipanahi et al. 2015), 101 bp.

    Parameters
    ----------
    tf : str
        One of :data:`DEEPBIND_TFS` (case-insensitive).
    split : {"train", "test"}
        ``train``: the ``_AC`` peaks plus one dinucleotide shuffle of each;
        ``test``: the ``_B`` file, 500 bound and 500 background sequences.
    download : bool
        Download from upstream if not cached.
    seed : int
        Seed of the shuffles.
    """
    key = tf.upper() if isinstance(tf, str) else tf
    if key not in DEEPBIND_TFS:
        raise ValueError(f"no DeepBind ENCODE set for TF {tf!r}; available: {', '.join(DEEPBIND_TFS)}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    suffix = "_AC.seq.gz" if split == "train" else "_B.seq.gz"
    file = next(k for k in DATASETS[f"deepbind_{key}"] if k.endswith(suffix))
    return read_deepbind(require(file, download), seed=seed, name=f"DeepBind ENCODE {key} ({split})")
