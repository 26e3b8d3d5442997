"""Sweeps: the grid, resuming after a crash, concurrent sweeps on one table, Dask, the CLI, medians, plots."""

import multiprocessing
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import asdict

import pandas as pd
import pytest

from mlcourse.benchmark import (
    Run,
    Settings,
    grid,
    medians,
    plot_auc_by_architecture,
    plot_auc_vs_size,
    provenance,
    run_one,
    sweep,
)
from mlcourse.cli import main

TINY = Settings(epochs=1, n_valid=40, n_test=60)
RUNS = grid(["1layer", "2layer"], ["discovery:MAFF"], [60], seeds=[0, 1])


class CountingExecutor(ThreadPoolExecutor):
    """A one-thread pool that records what it was asked to run, and can fail at the n-th run."""

    def __init__(self, fail_at=None):
        super().__init__(max_workers=1)
        self.submitted, self.fail_at = [], fail_at

    def submit(self, fn, run, *args):
        self.submitted.append(run)
        if len(self.submitted) == self.fail_at:
            return super().submit(_crash)
        return super().submit(fn, run, *args)


def _crash():
    raise RuntimeError("worker killed")


class InstantExecutor(Executor):
    """Runs nothing: each submitted run finishes at once with a made-up row (to test the recording)."""

    def submit(self, fn, run, *args):
        future = Future()
        future.set_result({**asdict(run), "task": "discovery", "auc": 0.5 + run.seed / 1000, "pr_auc": 0.5,
                           "epochs": 1, "best_epoch": 1, "seconds": 0.0, "finished": "now"})
        return future


def _instant_sweep(out, seeds):
    sweep(grid(["1layer", "2layer"], ["discovery:MAFF"], [60], seeds=seeds), out,
          executor=InstantExecutor(), progress=False)


def test_two_concurrent_sweeps_on_one_table_keep_every_finished_run(tmp_path):
    """Two processes sweep 40 runs each into one CSV at the same time: all 80 rows end up there, once."""
    out = tmp_path / "shared.csv"
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    sweeps = [context.Process(target=_instant_sweep, args=(out, range(k, 40, 2))) for k in (0, 1)]
    for process in sweeps:
        process.start()
    for process in sweeps:
        process.join()
    assert [p.exitcode for p in sweeps] == [0, 0]
    table = pd.read_csv(out)
    assert len(table) == 80 and not table.duplicated(["architecture", "seed"]).any()
    assert sorted(set(table["seed"])) == list(range(40))
    table = sweep(grid(["1layer"], ["discovery:MAFF"], [60], seeds=[3, 99]), out,
                  executor=InstantExecutor(), progress=False)  # one new run; the other is there already
    assert len(table) == 81 and len(pd.read_csv(out)) == 81


def test_grid_is_every_combination():
    runs = grid(["1layer", "3layer"], ["discovery:MAFF", "ctcf"], [100, 500], seeds=[0, 1, 2])
    assert len(runs) == 2 * 2 * 2 * 3 == len(set(runs))
    assert runs[0] == Run("1layer", "discovery:MAFF", 100, 0)


def test_grid_rejects_bad_names():
    with pytest.raises(ValueError, match="unknown architecture 'deepsea'; valid names are: 1layer"):
        grid(["deepsea"], ["ctcf"], [100])
    with pytest.raises(ValueError, match="unknown dataset 'encode'"):
        grid(["1layer"], ["encode"], [100])
    with pytest.raises(ValueError, match="size 5 is too small"):
        grid(["1layer"], ["ctcf"], [5])


def test_a_crashed_sweep_resumes_without_repeating_work(tmp_path):
    out = tmp_path / "results.csv"
    with CountingExecutor(fail_at=2) as crashing, pytest.raises(RuntimeError, match="worker killed"):
        sweep(RUNS, out, executor=crashing, settings=TINY, progress=False)
    first = pd.read_csv(out)
    assert len(first) == 1 and Run(*first.iloc[0][["architecture", "dataset", "n_train", "seed"]]) == RUNS[0]

    with CountingExecutor() as counting:
        table = sweep(RUNS, out, executor=counting, settings=TINY, progress=False)
    assert counting.submitted == RUNS[1:]
    assert len(table) == 4 and len(pd.read_csv(out)) == 4
    pd.testing.assert_frame_equal(pd.read_csv(out).iloc[:1], first)  # the finished run is untouched
    assert table["auc"].between(0, 1).all() and (table["epochs"] == 1).all()

    with CountingExecutor() as idle:
        sweep(RUNS, out, executor=idle, settings=TINY, progress=False)
    assert idle.submitted == []


def test_runs_are_deterministic_and_seeds_differ():
    a, b = run_one(RUNS[0], TINY, pool=60), run_one(RUNS[0], TINY, pool=60)
    assert a["auc"] == b["auc"]
    assert run_one(RUNS[2], TINY, pool=60)["auc"] != a["auc"]  # seed 1: another subset and init


def test_one_worker_runs_in_this_process_with_the_same_results_and_threads_kept(tmp_path):
    import torch

    reference = {r: run_one(r, TINY, pool=60)["auc"] for r in RUNS[:2]}
    torch.set_num_threads(2)
    try:
        table = sweep(RUNS[:2], tmp_path / "here.csv", settings=TINY, max_workers=1, progress=False)
        assert torch.get_num_threads() == 2  # run_one's one thread is not left behind
    finally:
        torch.set_num_threads(1)
    assert len(table) == 2
    for _, row in table.iterrows():
        assert row["auc"] == reference[Run(row.architecture, row.dataset, row.n_train, row.seed)]


def test_a_failing_run_in_this_process_fails_the_sweep(tmp_path, monkeypatch):
    import mlcourse.benchmark

    def crashing(run, *args):
        raise RuntimeError(f"{run.architecture} crashed")

    monkeypatch.setattr(mlcourse.benchmark, "run_one", crashing)
    with pytest.raises(RuntimeError, match="layer crashed"):
        sweep(RUNS, tmp_path / "none.csv", settings=TINY, max_workers=1, progress=False)
    assert not (tmp_path / "none.csv").exists()


def test_sweep_on_a_dask_local_cluster(tmp_path):
    distributed = pytest.importorskip("dask.distributed")  # the optional "dask" extra
    reference = {r: run_one(r, TINY, pool=60)["auc"] for r in RUNS[:2]}
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        table = sweep(RUNS[:2], tmp_path / "dask.csv", executor=client.get_executor(),
                      settings=TINY, progress=False)
    assert len(table) == 2
    for _, row in table.iterrows():
        assert row["auc"] == reference[Run(row.architecture, row.dataset, row.n_train, row.seed)]


def test_cli_runs_a_sweep_in_a_process_pool(tmp_path, capsys):
    out = tmp_path / "cli.csv"
    code = main(["bench", "--architectures", "1layer", "--datasets", "discovery:MAFF", "--sizes", "60",
                 "--seeds", "0", "--epochs", "1", "--n-valid", "40", "--n-test", "60", "--workers", "2",
                 "--out", str(out), "--plot", str(tmp_path / "plot.png")])
    assert code == 0  # one run: a pool of one spawned worker (at most one per run)
    table = pd.read_csv(out)
    assert list(table["architecture"]) == ["1layer"]
    assert table["auc"].iloc[0] == run_one(RUNS[0], TINY, pool=60)["auc"]  # same run, same number
    assert "discovery:MAFF" in capsys.readouterr().out and (tmp_path / "plot.png").stat().st_size > 0


def test_cli_reports_bad_names(capsys):
    assert main(["bench", "--architectures", "5layer", "--out", "unused.csv"]) == 2
    assert "unknown architecture '5layer'" in capsys.readouterr().err


def test_medians_and_plots():
    table = pd.DataFrame({
        "architecture": ["2layer", "1layer", "1layer", "1layer", "2layer", "2layer"],
        "dataset": ["discovery:X", "discovery:X", "discovery:X", "discovery:X", "occupancy:X", "occupancy:X"],
        "task": ["discovery"] * 4 + ["occupancy"] * 2,
        "n_train": [100, 100, 100, 1000, 100, 1000],
        "seed": [0, 0, 1, 0, 0, 0],
        "auc": [0.9, 0.7, 0.8, 0.95, 0.6, 0.7],
    })
    m = medians(table)
    assert list(m.index) == ["1layer", "2layer"]  # in the order of ARCHITECTURES
    assert m.loc["1layer", "discovery:X"] == pytest.approx(0.8)
    assert m.loc["2layer", "occupancy:X"] == pytest.approx(0.65)
    assert plot_auc_by_architecture(table).get_ylabel() == "test AUC"
    assert plot_auc_vs_size(table).get_xscale() == "log"


def test_architecture_plot_labels_do_not_overlap():
    from mlcourse.findings import overlapping_text
    from mlcourse.models.zeng import ARCHITECTURES

    table = pd.DataFrame({"architecture": list(ARCHITECTURES) * 2, "task": ["discovery", "occupancy"] * 9,
                          "auc": [0.5 + i / 36 for i in range(18)]})
    ax = plot_auc_by_architecture(table)
    assert overlapping_text(ax.figure) == []
    assert [t.get_text() for t in ax.get_xticklabels()][3] == "1layer\nlocal_win9"


def test_rows_made_another_way_are_run_again_not_reused(tmp_path):
    """A cached row counts only if it was made the same way: same settings, same simulated data."""
    out = tmp_path / "results.csv"
    runs = grid(["1layer"], ["discovery:MAFF"], [60], seeds=[0])
    sweep(runs, out, executor=InstantExecutor(), settings=TINY, progress=False)
    with CountingExecutor() as same:  # same settings, same simulator: reused
        assert len(sweep(runs, out, executor=same, settings=TINY, progress=False)) == 1
    assert same.submitted == []

    other = Settings(epochs=2, n_valid=40, n_test=60)
    with CountingExecutor() as counting:  # other settings: run again; the old row stays in the file, unused
        table = sweep(runs, out, executor=counting, settings=other, progress=False)
    assert counting.submitted == runs and len(table) == 1 and len(pd.read_csv(out)) == 2
    assert table["provenance"].iloc[0] == provenance("discovery:MAFF", other) != provenance("discovery:MAFF", TINY)

    older = pd.read_csv(out)  # a row from an older simulator (its data fingerprint differs), and a table
    older["provenance"] = older["provenance"].str.replace("data=", "data=0ld")  # from before provenance
    older.to_csv(out, index=False)
    with CountingExecutor() as counting:
        sweep(runs, out, executor=counting, settings=TINY, progress=False)
    assert counting.submitted == runs
    pd.read_csv(out).drop(columns="provenance").to_csv(out, index=False)
    with CountingExecutor() as counting:
        sweep(runs, out, executor=counting, settings=TINY, progress=False)
    assert counting.submitted == runs


def test_provenance_fingerprints_the_simulation():
    assert provenance("occupancy:MAFF", TINY) != provenance("discovery:MAFF", TINY)
    assert provenance("ctcf", TINY).startswith("epochs=1;") and "data=" not in provenance("ctcf", TINY)
    assert provenance("ctcf", TINY) == provenance("ctcf", Settings(epochs=1, n_valid=40, n_test=60, threads=4))
