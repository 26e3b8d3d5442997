"""Download the course's real data on request, verified by checksum, into a local cache.

Every downloadable file is in :data:`REGISTRY` with its upstream address and
its hash (sha256, or the official md5 where upstream publishes one). Files go
to ``mlcourse.cache_dir()`` (``$MLCOURSE_DATA``, default ``~/.cache/mlcourse``)
under the same relative path as their registry key, e.g.
``~/.cache/mlcourse/zeng_ctcf/test.fa``. Nothing downloads unless asked::

    mlcourse fetch zeng_ctcf        # or, in Python: fetch("zeng_ctcf")
    mlcourse fetch --list

``MLCOURSE_MIRROR`` replaces every upstream address by a mirror that has the
same layout as the cache: a local folder (``/srv/mlcourse-data``) or a web
address (``http://classroom.example/mlcourse``). Downloads are written to a
temporary file, checked, then renamed: a wrong checksum leaves nothing behind.
A cached file that fails its checksum (corrupt, or a user's own file in the
cache folder) is never deleted: loaders leave it in place and warn
(:class:`CorruptFileWarning`, naming the file, the expected hash and the
command); ``mlcourse fetch`` renames it to ``NAME.corrupt`` and fetches it again.
Downloading uses pooch's HTTP downloader (Uieda et al. 2020, JOSS 5:1943).
"""

from __future__ import annotations

import contextlib
import difflib
import os
import shutil
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

from mlcourse.config import cache_dir
from mlcourse.files import atomic_path

__all__ = ["Remote", "REGISTRY", "DATASETS", "DEEPBIND_TFS", "CorruptFileWarning", "fetch", "path_if_cached",
           "require", "mirror", "add_cli"]

_KERAS_GENOMICS = "https://raw.githubusercontent.com/gifford-lab/Keras-genomics/master/example/"
_DEEPBIND = "https://raw.githubusercontent.com/jisraeli/DeepBind/master/data/encode/"
_JANGGU = ("https://raw.githubusercontent.com/BIMSBbioinfo/janggu/"
           "cfee10656b0bab2ef755f3282e56d7f8987410f4/src/janggu/resources/")
_MNIST = "https://ossci-datasets.s3.amazonaws.com/mnist/"


@dataclass(frozen=True)
class Remote:
    """One downloadable file.

    Attributes
    ----------
    key : str
        Relative path in the cache and in a mirror, e.g. ``"zeng_ctcf/test.fa"``.
    url : str or None
        Upstream address; ``None`` when only a course mirror has the file.
    hashes : tuple of str
        Accepted checksums as ``"sha256:..."`` or ``"md5:..."`` (the mirror's
        copy, and upstream's where its bytes differ).
    """

    key: str
    url: str | None
    hashes: tuple[str, ...]


def _entries() -> dict[str, Remote]:
    sha = {  # sha256 of each file as distributed (see data/README.md)
        "zeng_ctcf/test.fa": "e7c3b95aed5df4cabc0020e3f7a71edfe402441c942aeac2a336857c06888806",
        "zeng_ctcf/test.target": "3e065a16ef78ba5eadd0d90383b2fe1b7ce11b0e7210fd006b98f8f9a0ed818b",
        "zeng_ctcf/train.tsv.gz": "d7fa505be2b6570790bd39ff55d835768a93327a2f5277b28a05473ef236f8c7",
        "zeng_ctcf/valid.fa": "53ecb4161339c015726e35f5309ee6f09f98d5903b347df864152723fb1d6c92",
        "zeng_ctcf/valid.target": "5000fbd9c8d837e6d03b97806508b374c8d7210c922ee4867f1ed67746053eb9",
        "deepbind_encode/ARID3A_K562_ARID3A_(sc-8821)_Stanford_AC.seq.gz": "928d75f354dbadbb4f083cb298e85df6fa11f001afacd9d577c0d9c9ce831712",
        "deepbind_encode/ARID3A_K562_ARID3A_(sc-8821)_Stanford_B.seq.gz": "aad6ee8ac42ea66791897a447ad01252f26955d2dd8b5a7865f2c233db807c09",
        "deepbind_encode/CTCFL_K562_CTCFL_(SC-98982)_HudsonAlpha_AC.seq.gz": "823589ed0c049dea20ed2a20b196d72ac63d76a04693bb2f43313e4a0c55c3da",
        "deepbind_encode/CTCFL_K562_CTCFL_(SC-98982)_HudsonAlpha_B.seq.gz": "707696ec7ca64695e6435859c558940bd86ba8dea836a31cf807386eba383b97",
        "deepbind_encode/ELK1_GM12878_ELK1_(1277-1)_Stanford_AC.seq.gz": "3e44bb851d81e1ea9a9f0c3a600574e4151bff8d510c8fc5d21e87b18715075f",
        "deepbind_encode/ELK1_GM12878_ELK1_(1277-1)_Stanford_B.seq.gz": "5eec8cc3d433dfcadb5cf1d23919e5ee6896e6479af52f756adcbd461fe6b805",
        "deepbind_encode/GABPA_GM12878_GABP_HudsonAlpha_AC.seq.gz": "627505bae74920366a5b9b5125e7972b073f611f0bdb258c9d32b9c33bb7529b",
        "deepbind_encode/GABPA_GM12878_GABP_HudsonAlpha_B.seq.gz": "b3f4da33cd690a3d72bb0033e3d4b5e9eec25405669fd521938b3c7e50ffbe15",
        "deepbind_encode/REST_GM12878_NRSF_HudsonAlpha_AC.seq.gz": "b5063130dc151f7529f3f02fe1d89ff7d9175a559f6151a72a7927ee217e1ca9",
        "deepbind_encode/REST_GM12878_NRSF_HudsonAlpha_B.seq.gz": "63aba192660e35154421b66f8129aeb449027bb1af25ff7903069fee861d679d",
        "janggu_peaks/mafk_sample2.fa": "0228f9e016bd91c642526136270b4efef75dc2916f906d47785fbe11c0fb94f8",
        "janggu_peaks/oct4_sample.fa": "effef1417ad2ca12514d5a4fe72741aaada7b29c16553655c4ed84ad83640e82",
        "mnist_t10k/t10k-images-idx3-ubyte.gz": "167310007f03058885c7e95e6c0b19c20de5c7fd3031f4cbdadc9014a523d80b",
        "mnist_t10k/t10k-labels-idx1-ubyte.gz": "fc607395669ec21321ea83e4b82c0544b7e8e63ff5b34337c06bc0a17cc0da3c",
    }
    mnist_md5 = {  # the official MNIST archives (as listed by torchvision); the mirror re-gzipped t10k
        "mnist_t10k/t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "mnist_t10k/t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        "mnist_train/train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "mnist_train/train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    }
    entries = {}
    for key in sorted(set(sha) | set(mnist_md5)):
        folder, name = key.split("/")
        if folder == "zeng_ctcf":
            url = None if name == "train.tsv.gz" else _KERAS_GENOMICS + name
        elif folder == "deepbind_encode":
            url = _DEEPBIND + quote(name)
        elif folder == "janggu_peaks":
            url = _JANGGU + name.split("_", 1)[1]  # mafk_sample2.fa <- sample2.fa
        else:
            url = _MNIST + name
        hashes = tuple(f"{alg}:{table[key]}" for alg, table in (("sha256", sha), ("md5", mnist_md5))
                       if key in table)
        entries[key] = Remote(key, url, hashes)
    return entries


REGISTRY: dict[str, Remote] = _entries()
"""Every downloadable file, by its relative path."""

DEEPBIND_TFS = ("ARID3A", "CTCFL", "ELK1", "GABPA", "REST")
"""TFs whose DeepBind ENCODE sets are in the download registry."""

DATASETS: dict[str, tuple[str, ...]] = {
    "zeng_ctcf": tuple(k for k in REGISTRY if k.startswith("zeng_ctcf/")),
    "deepbind_encode": tuple(k for k in REGISTRY if k.startswith("deepbind_encode/")),
    **{
        f"deepbind_{tf}": tuple(k for k in REGISTRY if k.startswith(f"deepbind_encode/{tf}_"))
        for tf in DEEPBIND_TFS
    },
    "janggu_peaks": tuple(k for k in REGISTRY if k.startswith("janggu_peaks/")),
    "janggu_mafk": ("janggu_peaks/mafk_sample2.fa",),
    "janggu_oct4": ("janggu_peaks/oct4_sample.fa",),
    "mnist_t10k": tuple(k for k in REGISTRY if k.startswith("mnist_t10k/")),
    "mnist_train": tuple(k for k in REGISTRY if k.startswith("mnist_train/")),
}
"""Names that ``mlcourse fetch NAME`` accepts, each a group of registry files."""

_DESCRIPTIONS = {
    "zeng_ctcf": "Zeng et al. 2016 CTCF (WERI-Rb-1) motif discovery: train/valid/test, 101 bp",
    "deepbind_encode": "DeepBind's ENCODE ChIP-seq sets for 5 TFs (_AC train, _B test)",
    "janggu_peaks": "MafK and Oct4 ChIP-seq peaks from janggu's examples (200 bp FASTA, GPL-3)",
    "janggu_mafk": "MafK ChIP-seq peaks, 3,900 x 200 bp (janggu sample2.fa)",
    "janggu_oct4": "Oct4 ChIP-seq peaks, 3,897 x 200 bp (janggu sample.fa)",
    "mnist_t10k": "the official MNIST 10,000-digit test set (IDX)",
    "mnist_train": "the official MNIST 60,000-digit training set (IDX; official md5 only)",
}


def mirror() -> str | None:
    """The mirror from ``$MLCOURSE_MIRROR`` (a folder or ``http(s)://`` base), or ``None``."""
    return os.environ.get("MLCOURSE_MIRROR") or None


def _files(name: str) -> tuple[str, ...]:
    if not isinstance(name, str):
        raise ValueError(f"a data name must be a string such as 'zeng_ctcf', got {type(name).__name__} {name!r:.40}")
    if name in DATASETS:
        return DATASETS[name]
    if name in REGISTRY:
        return (name,)
    close = difflib.get_close_matches(name, [*DATASETS, *REGISTRY], n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ValueError(f"unknown data name {name!r}{hint} (see `mlcourse fetch --list`)")


def _command(key: str) -> str:
    """The ``mlcourse fetch`` command for the dataset that holds ``key``."""
    dataset = next((d for d, keys in DATASETS.items() if key in keys and d != "deepbind_encode"), key)
    return f"mlcourse fetch {dataset}"


@lru_cache(maxsize=256)
def _hash_ok(path: str, mtime_ns: int, size: int, hashes: tuple[str, ...]) -> bool:
    import pooch

    for expected in hashes:
        alg, value = expected.split(":")
        if pooch.file_hash(path, alg=alg) == value:
            return True
    return False


def _verified(path: Path, remote: Remote) -> bool:
    stat = path.stat()
    return _hash_ok(str(path), stat.st_mtime_ns, stat.st_size, remote.hashes)


class CorruptFileWarning(UserWarning):
    """A cached file fails its checksum; it is kept (or moved aside), never deleted."""


def _mismatch(path: Path, remote: Remote) -> str:
    """Which file fails its checksum, what was expected, what it is and how to fetch it again."""
    import pooch

    alg = remote.hashes[0].split(":")[0]
    return (
        f"{path} fails its checksum: expected {' or '.join(remote.hashes)}, the file has "
        f"{alg}:{pooch.file_hash(str(path), alg=alg)} ({path.stat().st_size:,} bytes)"
    )


def _cached(key: str) -> Path | None:
    """The cached file for ``key`` if it passes its checksum; a corrupt one is kept, with a warning."""
    path = cache_dir() / key
    if not path.is_file():
        return None
    if _verified(path, REGISTRY[key]):
        return path
    warnings.warn(
        f"{_mismatch(path, REGISTRY[key])}; it is left as it is and not used. "
        f"`{_command(key)}` moves it aside (to {path.name}.corrupt) and fetches it again",
        CorruptFileWarning, stacklevel=3,
    )
    return None


def _move_aside(path: Path) -> Path:
    """Rename a corrupt cached file to ``NAME.corrupt`` (``NAME.corrupt-2``, ... if taken)."""
    aside, n = path.with_name(path.name + ".corrupt"), 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.corrupt-{n}")
    os.replace(path, aside)
    return aside


def path_if_cached(name: str) -> Path | None:
    """Where a file (or every file of a dataset) is in the cache, or ``None`` if not all there.

    For a dataset name the folder holding its files is returned. Cached files
    are checked against their checksums; a corrupt one counts as missing and is
    left in place (a :class:`CorruptFileWarning` names it, the expected hash and
    the command that fetches it again).
    """
    paths = [_cached(key) for key in _files(name)]
    if any(p is None for p in paths):
        return None
    return paths[0] if name in REGISTRY else paths[0].parent


def _source(remote: Remote) -> str:
    base = mirror()
    if base is None:
        if remote.url is None:
            raise ValueError(
                f"{remote.key} is not published upstream in this form: only a course mirror has it; "
                "set MLCOURSE_MIRROR to the mirror's folder or web address, then run "
                f"`{_command(remote.key)}`"
            )
        return remote.url
    if "://" in base and not base.startswith("file://"):
        return base.rstrip("/") + "/" + quote(remote.key)
    return str(Path(base.removeprefix("file://")) / remote.key)


def _download(remote: Remote, target: Path, progress: bool) -> None:
    """Copy or download ``remote`` into ``target`` through a temporary file, checking its hash."""
    import pooch

    source = _source(remote)
    try:
        with atomic_path(target) as tmp:
            try:
                if "://" in source:
                    pooch.HTTPDownloader(progressbar=progress, timeout=60)(source, str(tmp), None)
                else:
                    shutil.copyfile(source, tmp)
            except OSError as err:  # requests' errors are OSErrors too
                where = "the mirror folder has no such file" if "://" not in source else "download failed"
                raise ValueError(
                    f"could not get {remote.key} from {source} ({where}: {type(err).__name__}: {err}); "
                    f"when online, run `{_command(remote.key)}`, or set MLCOURSE_MIRROR to a mirror"
                ) from None
            if not _verified(tmp, remote):
                raise ValueError(
                    f"checksum mismatch for {remote.key} from {source}: the file is corrupt or not "
                    f"the registered one (expected {' or '.join(remote.hashes)}); nothing was kept"
                )
    finally:
        with contextlib.suppress(OSError):  # another writer may have removed or filled it
            if not any(target.parent.iterdir()):
                target.parent.rmdir()  # leave no empty folder behind a failed download


def _writable_cache() -> Path:
    """The cache folder, created if need be; ``ValueError`` naming ``MLCOURSE_DATA`` when it cannot be."""
    root = cache_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(
            f"the data cache {root} cannot be created ({err.strerror or err}); set MLCOURSE_DATA to a "
            "folder you can write (default ~/.cache/mlcourse)"
        ) from None
    return root


def fetch(name: str, *, progress: bool = True) -> Path:
    """Make a file or a dataset available in the cache and return its path.

    Parameters
    ----------
    name : str
        A dataset (``"zeng_ctcf"``, ``"deepbind_CTCFL"``, ... see :data:`DATASETS`)
        or one registry file (``"zeng_ctcf/test.fa"``).
    progress : bool
        Show a download progress bar.

    Returns
    -------
    pathlib.Path
        The file, or for a dataset the folder holding its files.

    Raises
    ------
    ValueError
        Unknown name; no network and no cache (naming the file and the command);
        a file missing from the mirror; a checksum mismatch of the download (nothing
        is kept); a cache folder that cannot be created (``MLCOURSE_DATA``).

    Warns
    -----
    CorruptFileWarning
        When a cached file fails its checksum: it is renamed to ``NAME.corrupt``
        (never deleted) and fetched again.
    """
    keys = _files(name)
    paths = []
    for key in keys:
        path, remote = cache_dir() / key, REGISTRY[key]
        if path.is_file() and not _verified(path, remote):
            problem = _mismatch(path, remote)
            aside = _move_aside(path)
            warnings.warn(f"{problem}; moved aside to {aside} (nothing deleted); fetching it again",
                          CorruptFileWarning, stacklevel=2)
        if not path.is_file():
            _writable_cache()
            _download(remote, path, progress)
        paths.append(path)
    return paths[0] if name in REGISTRY else paths[0].parent


def require(name: str, download: bool = False) -> Path:
    """A file or dataset for a loader: from the cache, else from the mirror, else an error.

    Without ``download=True`` this never goes to the upstream addresses: it
    uses the cache, or copies from ``MLCOURSE_MIRROR`` when one is set.

    Raises
    ------
    ValueError
        When the data is not cached and there is no mirror: the message names
        the missing file and the ``mlcourse fetch`` command that gets it.
    """
    path = path_if_cached(name)
    if path is not None:
        return path
    if download or mirror():
        return fetch(name, progress=download)
    missing = next(key for key in _files(name) if not (cache_dir() / key).is_file()
                   or not _verified(cache_dir() / key, REGISTRY[key]))
    if (cache_dir() / missing).is_file():
        raise ValueError(
            f"{_mismatch(cache_dir() / missing, REGISTRY[missing])}; it was kept. Run "
            f"`{_command(missing)}` (it moves the file aside and fetches it again), pass download=True, "
            "or set MLCOURSE_MIRROR"
        )
    raise ValueError(
        f"{missing} is not in the data cache {cache_dir()}: run `{_command(missing)}` once "
        "(it downloads and checks the file), pass download=True, or set MLCOURSE_MIRROR"
    )


def _fetch_command(args) -> int:
    if args.list or not args.names:
        print(f"cache: {cache_dir()}   mirror: {mirror() or '(none; upstream addresses)'}")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CorruptFileWarning)
            for dataset, keys in DATASETS.items():
                status = "cached" if path_if_cached(dataset) else "-"
                if any(issubclass(w.category, CorruptFileWarning) and key in str(w.message)
                       for w in caught for key in keys):
                    status = "CORRUPT"
                about = _DESCRIPTIONS.get(dataset, f"DeepBind ENCODE {dataset.split('_', 1)[1]}")
                print(f"  {dataset:<17} {len(keys):>2} files  {status:<7} {about}")
        for message in dict.fromkeys(str(w.message) for w in caught):
            print(f"warning: {message}")
        return 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CorruptFileWarning)
        for name in args.names:
            path = fetch(name)
            for w in caught:
                print(f"warning: {w.message}")
            caught.clear()
            print(f"{name}: {path}")
    return 0


def add_cli(sub) -> None:
    """Register ``mlcourse fetch NAME...`` and ``mlcourse fetch --list``."""
    parser = sub.add_parser("fetch", help="download real data (checksummed) into the cache")
    parser.add_argument("names", nargs="*", metavar="NAME", help="datasets or files to fetch")
    parser.add_argument("--list", action="store_true", help="list what can be fetched")
    parser.set_defaults(func=_fetch_command)
