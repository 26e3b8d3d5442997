"""mlcourse.datasets.fetch: checksummed downloads from a folder or web mirror, clean failures, the CLI."""

import gzip
import hashlib
import http.server
import threading
from functools import partial
from pathlib import Path

import pytest

from mlcourse.cli import main
from mlcourse.datasets import fetch as fetch_module
from mlcourse.datasets.fetch import (
    DATASETS,
    REGISTRY,
    CorruptFileWarning,
    Remote,
    fetch,
    path_if_cached,
    require,
)

ROOT = Path(__file__).resolve().parents[1]
KEY = "zeng_ctcf/valid.target"
CONTENT = b"1\t0\n0\t1\n" * 50


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache, no mirror, and one registry entry whose checksum is that of CONTENT."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("MLCOURSE_DATA", str(folder))
    monkeypatch.delenv("MLCOURSE_MIRROR", raising=False)
    digest = hashlib.sha256(CONTENT).hexdigest()
    monkeypatch.setitem(REGISTRY, KEY, Remote(KEY, "http://127.0.0.1:9/valid.target", (f"sha256:{digest}",)))
    return folder


@pytest.fixture
def folder_mirror(tmp_path, monkeypatch):
    root = tmp_path / "mirror"
    (root / "zeng_ctcf").mkdir(parents=True)
    (root / KEY).write_bytes(CONTENT)
    monkeypatch.setenv("MLCOURSE_MIRROR", str(root))
    return root


def _leftovers(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def test_fetch_from_a_folder_mirror_then_from_the_cache(cache, folder_mirror):
    assert path_if_cached(KEY) is None
    path = fetch(KEY)
    assert path == cache / KEY and path.read_bytes() == CONTENT
    assert path_if_cached(KEY) == path
    (folder_mirror / KEY).unlink()  # the cache now serves it without the mirror
    assert fetch(KEY) == path and require(KEY) == path


def test_fetch_over_http(cache, tmp_path, monkeypatch):
    root = tmp_path / "served"
    (root / "zeng_ctcf").mkdir(parents=True)
    (root / KEY).write_bytes(CONTENT)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("MLCOURSE_MIRROR", f"http://127.0.0.1:{server.server_address[1]}/")
        assert fetch(KEY, progress=False).read_bytes() == CONTENT
    finally:
        server.shutdown()
        server.server_close()


def test_offline_without_cache_is_a_clear_error_not_a_traceback(cache):
    with pytest.raises(ValueError, match=r"could not get zeng_ctcf/valid.target .*`mlcourse fetch zeng_ctcf`") as info:
        fetch(KEY, progress=False)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert _leftovers(cache) == []
    with pytest.raises(ValueError, match=r"not in the data cache .*`mlcourse fetch zeng_ctcf`"):
        require(KEY)


def test_a_checksum_mismatch_keeps_nothing(cache, folder_mirror):
    (folder_mirror / KEY).write_bytes(CONTENT[:-4])  # truncated
    with pytest.raises(ValueError, match="checksum mismatch for zeng_ctcf/valid.target"):
        fetch(KEY)
    assert _leftovers(cache) == []


def test_a_corrupt_cached_file_is_kept_named_then_moved_aside_and_fetched_again(cache, folder_mirror, capsys):
    path = fetch(KEY)
    path.write_bytes(b"my own data")  # e.g. MLCOURSE_DATA points at a folder of the user's files
    with pytest.warns(CorruptFileWarning, match=r"valid.target fails its checksum: expected sha256:\w+, "
                      r"the file has sha256:\w+ \(11 bytes\); it is left .*`mlcourse fetch zeng_ctcf`"):
        assert path_if_cached(KEY) is None
    assert path.read_bytes() == b"my own data"  # not deleted
    assert main(["fetch", "--list"]) == 0  # the CLI prints the warning as a line of its own
    out = capsys.readouterr().out
    assert "CORRUPT" in out and "warning: " in out and "valid.target fails its checksum" in out
    assert path.read_bytes() == b"my own data"
    with pytest.warns(CorruptFileWarning, match="moved aside to .*valid.target.corrupt .*fetching it again"):
        assert fetch(KEY).read_bytes() == CONTENT
    assert (cache / "zeng_ctcf" / "valid.target.corrupt").read_bytes() == b"my own data"
    path.write_bytes(b"again")
    assert main(["fetch", KEY]) == 0
    assert "warning: " in capsys.readouterr().out and path.read_bytes() == CONTENT
    assert (cache / "zeng_ctcf" / "valid.target.corrupt-2").read_bytes() == b"again"


def test_a_corrupt_file_without_a_mirror_is_an_error_that_keeps_it(cache):
    (cache / "zeng_ctcf").mkdir(parents=True)
    (cache / KEY).write_bytes(b"garbage")
    with pytest.warns(CorruptFileWarning), \
            pytest.raises(ValueError, match=r"fails its checksum: expected sha256:.*it was kept. Run `mlcourse fetch"):
        require(KEY)
    assert (cache / KEY).read_bytes() == b"garbage"


def test_threads_fetching_one_file_all_get_it(cache, folder_mirror):
    results, errors = [], []

    def get():
        try:
            results.append(fetch(KEY, progress=False).read_bytes())
        except Exception as err:  # noqa: BLE001 (collected for the assertion)
            errors.append(err)

    threads = [threading.Thread(target=get) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and results == [CONTENT] * 6
    assert _leftovers(cache) == ["zeng_ctcf", KEY]


def test_an_unusable_cache_folder_is_a_clear_error(tmp_path, folder_mirror, monkeypatch, capsys):
    monkeypatch.setenv("MLCOURSE_DATA", "/dev/null/x")
    assert main(["fetch", "--list"]) == 0
    assert main(["fetch", KEY]) == 2
    err = capsys.readouterr().err
    assert "the data cache /dev/null/x cannot be created" in err and "set MLCOURSE_DATA" in err


def test_corrupt_gzip_from_the_mirror_is_rejected(tmp_path, monkeypatch):
    key = "deepbind_encode/REST_GM12878_NRSF_HudsonAlpha_B.seq.gz"
    good = gzip.compress(b"FoldID\tEventID\tseq\tBound\n" + b"A\tx\tACGT\t1\n" * 200)
    monkeypatch.setitem(REGISTRY, key, Remote(key, None, (f"sha256:{hashlib.sha256(good).hexdigest()}",)))
    monkeypatch.setenv("MLCOURSE_DATA", str(tmp_path / "cache"))
    (tmp_path / "mirror" / "deepbind_encode").mkdir(parents=True)
    (tmp_path / "mirror" / key).write_bytes(good[: len(good) // 2])
    monkeypatch.setenv("MLCOURSE_MIRROR", f"file://{tmp_path / 'mirror'}")
    with pytest.raises(ValueError, match="checksum mismatch"):
        fetch(key)
    assert _leftovers(tmp_path / "cache") == []


def test_missing_from_the_mirror_and_mirror_only_files(cache, tmp_path, monkeypatch):
    monkeypatch.setenv("MLCOURSE_MIRROR", str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="the mirror folder has no such file"):
        fetch(KEY)
    monkeypatch.delenv("MLCOURSE_MIRROR")
    with pytest.raises(ValueError, match="only a course mirror has it; set MLCOURSE_MIRROR"):
        fetch("zeng_ctcf/train.tsv.gz")


def test_unknown_names_suggest_close_ones():
    with pytest.raises(ValueError, match="unknown data name 'zeng'; did you mean zeng_ctcf"):
        fetch("zeng")


def test_registry_covers_every_dataset_with_hashes_and_sources():
    assert {key for keys in DATASETS.values() for key in keys} == set(REGISTRY)
    for key, remote in REGISTRY.items():
        assert remote.key == key and remote.hashes
        assert remote.url is not None or key == "zeng_ctcf/train.tsv.gz"


def test_data_readme_lists_every_registered_checksum():
    readme = (ROOT / "data" / "README.md").read_text()
    for remote in REGISTRY.values():
        for expected in remote.hashes:
            assert expected.split(":")[1] in readme, remote.key


def test_cli_list_and_errors(cache, capsys):
    assert main(["fetch", "--list"]) == 0
    out = capsys.readouterr().out
    assert "zeng_ctcf" in out and "deepbind_CTCFL" in out and "mnist_t10k" in out
    assert main(["fetch", "nothing_here"]) == 2
    assert "unknown data name 'nothing_here'" in capsys.readouterr().err


@pytest.mark.mirror
def test_every_mirror_file_matches_the_registry(mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("MLCOURSE_DATA", str(tmp_path))
    monkeypatch.setenv("MLCOURSE_MIRROR", str(mirror))
    listed = dict(line.split()[::-1] for line in (mirror / "SHA256SUMS").read_text().splitlines())
    for key, digest in listed.items():
        assert f"sha256:{digest}" in REGISTRY[key].hashes
    for name in ("zeng_ctcf", "deepbind_encode", "mnist_t10k"):
        assert main(["fetch", name]) == 0
        assert path_if_cached(name) == tmp_path / name
    assert fetch_module.path_if_cached("mnist_train") is None
