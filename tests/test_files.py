"""Atomic writes: a failure leaves the old file; concurrent writers (threads, processes) never corrupt one."""

import multiprocessing
import subprocess
import sys
import threading
import time

import pytest
import torch

from mlcourse.files import atomic_path, atomic_write_text, locked, remove_stale_temporaries


def test_write_then_replace(tmp_path):
    target = tmp_path / "sub" / "report.csv"
    atomic_write_text(target, "a,b\n")
    atomic_write_text(target, "c,d\n")
    assert target.read_text() == "c,d\n"
    assert [p.name for p in target.parent.iterdir()] == ["report.csv"]


def test_failure_keeps_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "model.pt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(target) as tmp:
            tmp.write_text("half a checkpoint")
            raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def _processes():
    """Fork where the system can (children start at once), else spawn."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _payload(tag: int, i: int) -> bytes:
    """A 64 kB file that says who wrote it and can be checked for completeness."""
    head = f"{tag} {i}\n".encode()
    return head + bytes([tag % 251]) * (65_536 - len(head))


def _complete(data: bytes) -> bool:
    tag, i = map(int, data.split(b"\n", 1)[0].split())
    return data == _payload(tag, i)


def _write_many(path, tag: int, n: int) -> None:
    for i in range(n):
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:  # written in pieces, as torch.save does
                for start in range(0, 65_536, 4096):
                    handle.write(_payload(tag, i)[start : start + 4096])


def _threads(target, args_list):
    """Start one thread per argument tuple; returns them and the list their exceptions go to."""
    errors = []

    def run(*args):
        try:
            target(*args)
        except Exception as err:  # noqa: BLE001 (collected for the assertion)
            errors.append(err)

    threads = [threading.Thread(target=run, args=args) for args in args_list]
    for thread in threads:
        thread.start()
    return threads, errors


def _read_while(path, running, seen):
    while running.is_set():
        try:
            seen.append(_complete(path.read_bytes()))
        except FileNotFoundError:
            pass
        time.sleep(0.001)


def test_threads_and_processes_writing_one_path_never_leave_a_corrupt_file(tmp_path):
    """3 processes and 6 threads write one file 15 times each while a reader checks every read."""
    target = tmp_path / "checkpoint.bin"
    processes = [_processes().Process(target=_write_many, args=(target, 100 + p, 15)) for p in range(3)]
    for process in processes:  # before any thread: fork copies only the calling thread
        process.start()
    running, seen = threading.Event(), []
    running.set()
    reader = threading.Thread(target=_read_while, args=(target, running, seen))
    reader.start()
    threads, errors = _threads(_write_many, [(target, t, 15) for t in range(6)])
    for worker in threads + processes:
        worker.join()
    running.clear()
    reader.join()
    assert errors == [] and all(p.exitcode == 0 for p in processes)
    assert _complete(target.read_bytes()) and seen and all(seen)
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.bin"]  # no temporary file left


def test_threads_saving_one_checkpoint_leave_a_loadable_one(tmp_path):
    target = tmp_path / "model.pt"

    def save(value):
        for _ in range(5):
            with atomic_path(target) as tmp:
                torch.save({"w": torch.full((20_000,), float(value))}, tmp)

    threads, errors = _threads(save, [(v,) for v in range(6)])
    for thread in threads:
        thread.join()
    assert errors == []
    w = torch.load(target, weights_only=True)["w"]
    assert len(set(w.tolist())) == 1  # one writer's whole tensor, not a mix


def test_a_killed_writer_leaves_a_temporary_that_the_next_write_removes(tmp_path):
    target = tmp_path / "big.pt"
    code = (
        "import sys, time\n"
        "from mlcourse.files import atomic_path\n"
        "with atomic_path(sys.argv[1]) as tmp:\n"
        "    tmp.write_bytes(b'x' * 100_000)\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "writing"
    child.kill()
    child.wait()
    stale = [p.name for p in tmp_path.iterdir()]
    assert len(stale) == 1 and stale[0].startswith(".big.pt.tmp-") and not target.exists()
    assert remove_stale_temporaries(tmp_path / "elsewhere") == []  # a missing folder is fine
    atomic_write_text(tmp_path / "other.txt", "next write into the folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.txt"]


def test_a_live_writer_keeps_its_temporary(tmp_path):
    with atomic_path(tmp_path / "a.txt") as tmp:
        tmp.write_text("in progress")
        atomic_write_text(tmp_path / "b.txt", "another write meanwhile")
        assert tmp.exists()
    assert (tmp_path / "a.txt").read_text() == "in progress"


def test_a_folder_or_an_unwritable_place_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="is a folder: give a file name inside it"):
        atomic_write_text(tmp_path, "x")
    with pytest.raises(ValueError, match=r"cannot write /dev/null/x/report.csv: its folder /dev/null/x"):
        atomic_write_text("/dev/null/x/report.csv", "x")


def _count_under_lock(path, n):
    for _ in range(n):
        with locked(path.with_suffix(".lock")):
            value = int(path.read_text()) if path.exists() else 0
            atomic_write_text(path, str(value + 1))


def test_locked_read_modify_write_loses_no_update(tmp_path):
    counter = tmp_path / "count.txt"
    processes = [_processes().Process(target=_count_under_lock, args=(counter, 25)) for _ in range(2)]
    for process in processes:  # processes first (fork)
        process.start()
    threads, errors = _threads(_count_under_lock, [(counter, 25)] * 3)
    for worker in processes + threads:
        worker.join()
    assert errors == [] and all(p.exitcode == 0 for p in processes)
    assert int(counter.read_text()) == 5 * 25
