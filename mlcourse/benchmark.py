"""Architecture sweeps in the style of Zeng et al. (2016), on any ``concurrent.futures`` executor.

Zeng, Edwards, Liu & Gifford (2016) trained nine CNNs on 690 ChIP-seq sets
and on two tasks, and compared test AUCs. A sweep here is the grid
architectures x datasets x training-set sizes x seeds; each cell is one
:class:`Run`, which trains one model with :func:`mlcourse.train.fit` and
records its test AUC as one row of a tidy table (one row per run)::

    runs = grid(["1layer", "2layer"], ["discovery:MAFF", "occupancy:MAFF"], [1000], seeds=[0, 1, 2])
    table = sweep(runs, "results.csv")          # a local process pool
    medians(table)                              # architecture x dataset, median AUC

Datasets are named ``discovery:TF`` and ``occupancy:TF`` (simulated with
:mod:`mlcourse.datasets.simulate`), ``ctcf`` (Zeng's real CTCF set) and
``deepbind:TF`` (a DeepBind ENCODE set); the real ones need the data cached
or a mirror (``mlcourse fetch``). For a simulated dataset one pool is drawn
(data seed 0) with fixed validation and test sets; a run's ``seed`` picks
its training subset and its initial weights, so runs at a small size vary
the way Zeng et al.'s did.

Executors: by default a local ``ProcessPoolExecutor`` with one torch thread
per worker (``max_workers=1`` runs in this process instead: no pool to start,
which suits a machine whose cores are already busy, like the test suite's). Anything with ``submit`` that returns ``concurrent.futures``
futures works, e.g. a Dask cluster across many machines::

    from dask.distributed import Client, LocalCluster
    with Client(LocalCluster(n_workers=4)) as client:
        sweep(runs, "results.csv", executor=client.get_executor())

Results are appended to the CSV as each run finishes: under a lock, the file
is read again, the row added and the file replaced atomically (through a
temporary file and a rename), so two sweeps writing one CSV at the same time
keep every finished run of both. A run already in the file is not run again:
an interrupted sweep resumes where it stopped. "Already in the file" means
the same run *made the same way*: each row records its ``provenance`` (the
training settings and, for simulated data, a fingerprint of what the simulator
draws today), and rows made under other settings or by an older simulator are
run again instead of coming back silently.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
import warnings
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from functools import lru_cache
from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd

from mlcourse.files import atomic_write_text, locked

__all__ = ["Run", "Settings", "grid", "provenance", "split_data", "run_one", "sweep", "medians", "plot_auc_by_architecture",
           "plot_auc_vs_size", "add_cli"]

KEY = ["architecture", "dataset", "n_train", "seed", "provenance"]
COLUMNS = KEY + ["task", "auc", "pr_auc", "epochs", "best_epoch", "seconds", "finished"]


@dataclass(frozen=True)
class Run:
    """One cell of a sweep: train ``architecture`` on ``n_train`` examples of ``dataset`` with ``seed``."""

    architecture: str
    dataset: str
    n_train: int
    seed: int


@dataclass(frozen=True)
class Settings:
    """Training and data settings shared by every run of a sweep.

    ``n_valid`` / ``n_test`` size the fixed validation and test sets of
    simulated data (real sets use their own, the test set capped at
    ``n_test``). ``threads`` is torch's thread count inside each worker.
    """

    epochs: int = 15
    patience: int = 3
    batch_size: int = 128
    lr: float = 1e-3
    n_valid: int = 1000
    n_test: int = 2000
    threads: int = 1


def _check_dataset(name: str) -> tuple[str, str | None]:
    kind, _, tf = name.partition(":")
    if kind in ("discovery", "occupancy", "deepbind") and tf:
        return kind, tf
    if name == "ctcf":
        return "ctcf", None
    raise ValueError(
        f"unknown dataset {name!r}: use 'discovery:TF', 'occupancy:TF' (simulated), "
        "'ctcf' (Zeng et al.'s real CTCF set) or 'deepbind:TF'"
    )


def grid(architectures, datasets, sizes, seeds=(0, 1, 2)) -> list[Run]:
    """Every combination, as a list of :class:`Run` (datasets outermost, so each is built once per worker).

    Raises ``ValueError`` for an unknown architecture or dataset name or a size below 10.
    """
    from mlcourse.models.zeng import ARCHITECTURES

    for name in architectures:
        if name not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {name!r}; valid names are: {', '.join(ARCHITECTURES)}")
    for name in datasets:
        _check_dataset(name)
    for size in sizes:
        if int(size) < 10:
            raise ValueError(f"training-set size {size!r} is too small: use at least 10 examples")
    return [Run(a, d, int(n), int(s)) for d, n, s, a in product(datasets, sizes, seeds, architectures)]


@lru_cache(maxsize=8)
def split_data(dataset: str, pool: int, n_valid: int, n_test: int):
    """``(training pool, valid, test)`` SeqDatasets of a named dataset, as every run of a sweep sees them.

    Simulated data are drawn once (data seed 0) with ``pool`` training rows; real
    sets keep their own splits (DeepBind's validation rows are split off its
    training file), the test set capped at ``n_test`` random rows. Cached per process.
    """
    kind, tf = _check_dataset(dataset)
    if kind in ("discovery", "occupancy"):
        from mlcourse.datasets import simulate

        make = simulate.motif_discovery if kind == "discovery" else simulate.motif_occupancy
        total = pool + n_valid + n_test
        data = make(tf, n=total + total % 2, seed=0)
        order = np.random.default_rng(0).permutation(len(data))
        return (data.subset(order[n_valid + n_test :]), data.subset(order[:n_valid]),
                data.subset(order[n_valid : n_valid + n_test]))
    from mlcourse.datasets import encode

    if kind == "ctcf":
        train, valid, test = (encode.load_zeng_ctcf(s) for s in ("train", "valid", "test"))
    else:
        train = encode.load_deepbind(tf, "train")
        test = encode.load_deepbind(tf, "test")
        order = np.random.default_rng(0).permutation(len(train))
        train, valid = train.subset(order[n_valid:]), train.subset(order[:n_valid])
    if len(test) > n_test:
        test = test.subset(np.random.default_rng(0).permutation(len(test))[:n_test])
    return train, valid, test


def provenance(dataset: str, settings: Settings) -> str:
    """How a run of ``dataset`` under ``settings`` is made, as one string stored with its row.

    The training settings (all but ``threads``, which changes only the speed)
    and where the data comes from: real sets are checksummed files, so their
    name says it; simulated sets get a fingerprint of 20 sequences the
    simulator draws now, so a change to the simulation (a new co-factor, a
    new spacing) makes old rows stale. Two sweeps share a row only if this
    string is equal.
    """
    kind, tf = _check_dataset(dataset)
    made = ";".join(f"{key}={value}" for key, value in asdict(settings).items() if key != "threads")
    if kind in ("discovery", "occupancy"):
        from mlcourse.datasets import simulate

        sample = (simulate.motif_discovery if kind == "discovery" else simulate.motif_occupancy)(tf, n=20, seed=0)
        text = "".join(sample.seqs) + "".join(str(int(label)) for label in sample.y)
        made += ";data=" + hashlib.sha1(text.encode()).hexdigest()[:12]
    return made


def run_one(run: Run, settings: Settings = Settings(), pool: int | None = None) -> dict:
    """Train and test one run; returns its row of the results table.

    ``pool`` is the size of the simulated training pool (the sweep passes its
    largest size for the dataset, so smaller sizes are subsets of one pool).
    """
    import torch

    from mlcourse.config import setup
    from mlcourse.models.zeng import build
    from mlcourse.train import NotConvergedWarning, evaluate, fit

    torch.set_num_threads(settings.threads)
    train, valid, test = split_data(run.dataset, pool or run.n_train, settings.n_valid, settings.n_test)
    if run.n_train > len(train):
        raise ValueError(f"{run}: asks for {run.n_train} training examples, {run.dataset} has {len(train)}")
    train = train.subset(np.random.default_rng(run.seed).choice(len(train), run.n_train, replace=False))
    setup(run.seed, verbose=False)
    model = build(run.architecture, train.length)
    start = time.perf_counter()
    # A sweep's table already says whether a run converged (best_epoch against epochs), so
    # fit's NotConvergedWarning would only repeat it once per run.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotConvergedWarning)
        history = fit(model, train, valid, epochs=settings.epochs, patience=settings.patience,
                      batch_size=settings.batch_size, lr=settings.lr, progress=False)
    result = evaluate(model, test)
    kind = _check_dataset(run.dataset)[0]
    return {
        **asdict(run),
        "task": "occupancy" if kind == "occupancy" else "discovery",
        "auc": result["auc"],
        "pr_auc": result["pr_auc"],
        "epochs": len(history.epochs),
        "best_epoch": history.best_epoch,
        "seconds": round(time.perf_counter() - start, 2),
        "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


class _InThisProcess(Executor):
    """Runs each submitted call at once, in this process: ``sweep(..., max_workers=1)``.

    Spawning a worker costs an interpreter and a torch import (seconds of CPU), and a
    worker loads each dataset again; here runs share this process's :func:`split_data`
    cache. A run seeds the global generators (as in a worker) and sets torch's thread
    count, which is put back afterwards.
    """

    def submit(self, fn, /, *args, **kwargs):
        import torch

        future, threads = Future(), torch.get_num_threads()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as error:  # handed over the way a pool hands it over: by the future
            future.set_exception(error)
        finally:
            torch.set_num_threads(threads)
        return future


def _read(path: Path) -> pd.DataFrame:
    if not path.exists():
        return pd.DataFrame(columns=COLUMNS)
    table = pd.read_csv(path, dtype={"provenance": str})
    if "provenance" not in table.columns:  # a table from before rows recorded how they were made: all stale
        table["provenance"] = "unknown"
    missing = set(COLUMNS) - set(table.columns)
    if missing:
        raise ValueError(f"{path} is not a sweep results table: no column(s) {', '.join(sorted(missing))}")
    return table


def _done(table: pd.DataFrame) -> set[tuple]:
    """The runs in a results table, as ``(architecture, dataset, n_train, seed, provenance)`` tuples."""
    return set(map(tuple, table[KEY].astype({"n_train": int, "seed": int}).values.tolist()))


def _append(out: Path, row: dict) -> pd.DataFrame:
    """Add one finished run to the CSV ``out`` (unless another sweep already did); returns the table.

    The CSV is read again under a lock, so rows that concurrent sweeps added
    since are kept, and replaced atomically, so it is never half-written.
    """
    with locked(out.with_name(f".{out.name}.lock")):
        table = _read(out)
        if tuple(row[k] for k in KEY) not in _done(table):
            new = pd.DataFrame([row], columns=COLUMNS)
            table = pd.concat([table, new], ignore_index=True) if len(table) else new
            atomic_write_text(out, table.to_csv(index=False))
    return table


def sweep(runs, out, *, executor: Executor | None = None, settings: Settings = Settings(),
          max_workers: int | None = None, progress: bool = True) -> pd.DataFrame:
    """Run every :class:`Run` not yet in the CSV ``out`` (made this way) and return the table.

    Parameters
    ----------
    runs : list of Run
        E.g. from :func:`grid`.
    out : path
        The results CSV: read first (finished runs are skipped), one row added
        after every finished run (under a lock, atomically: other sweeps on the
        same file keep their rows). The table returned holds theirs too, but
        only rows of the same :func:`provenance`: rows made under other
        settings or from an older simulation stay in the file, unused.
    executor : concurrent.futures.Executor, optional
        Where runs execute (e.g. ``dask.distributed.Client.get_executor()``).
        Default: a local process pool of ``max_workers`` processes (default:
        CPU cores / ``settings.threads``, at most one per run), shut down at the
        end; ``max_workers=1`` runs them one by one in this process.
    settings : Settings
    progress : bool
        A tqdm bar over runs.
    """
    from tqdm.auto import tqdm

    out = Path(out)
    table = _read(out)
    made = {name: provenance(name, settings) for name in {*table["dataset"], *(r.dataset for r in runs)}}
    done = _done(table)
    todo = [r for r in runs if (r.architecture, r.dataset, r.n_train, r.seed, made[r.dataset]) not in done]
    pools = {}
    for r in runs:
        pools[r.dataset] = max(pools.get(r.dataset, 0), r.n_train)
    if not todo:
        return _made_now(table, made)
    own = executor is None
    if own:
        import multiprocessing

        workers = min(len(todo), max_workers or max(1, (os.cpu_count() or 1) // settings.threads))
        executor = (_InThisProcess() if max_workers == 1 else
                    ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")))
    try:
        futures = [executor.submit(run_one, r, settings, pools[r.dataset]) for r in todo]
        bar = tqdm(total=len(todo), desc="sweep", unit="run", disable=not progress)
        for future in as_completed(futures):
            row = future.result()
            table = _append(out, {**row, "provenance": made[row["dataset"]]})
            bar.update()
        bar.close()
    finally:
        if own:
            executor.shutdown(wait=True, cancel_futures=True)
    return _made_now(table, made)


def _made_now(table: pd.DataFrame, made: dict) -> pd.DataFrame:
    """The rows of ``table`` made the way this sweep makes them (``made``: dataset -> provenance)."""
    keep = table["provenance"] == table["dataset"].map(made)
    return table[keep].reset_index(drop=True)


def medians(table: pd.DataFrame) -> pd.DataFrame:
    """Median test AUC per architecture (rows, in the order of ARCHITECTURES) and dataset (columns)."""
    from mlcourse.models.zeng import ARCHITECTURES

    pivot = table.pivot_table(index="architecture", columns="dataset", values="auc", aggfunc="median")
    return pivot.reindex([a for a in ARCHITECTURES if a in pivot.index])


def plot_auc_by_architecture(table: pd.DataFrame, ax=None):
    """Box plots of test AUC per architecture, one colour per task (discovery / occupancy)."""
    import matplotlib.pyplot as plt

    from mlcourse.models.zeng import ARCHITECTURES

    if ax is None:
        _, ax = plt.subplots(figsize=(10, 4))
    archs = [a for a in ARCHITECTURES if a in set(table["architecture"])]
    tasks = sorted(set(table["task"]))
    width = 0.8 / len(tasks)
    for j, (task, color) in enumerate(zip(tasks, ["tab:blue", "tab:orange", "tab:green"])):
        data = [table.loc[(table.architecture == a) & (table.task == task), "auc"].values for a in archs]
        pos = np.arange(len(archs)) + (j - (len(tasks) - 1) / 2) * width
        keep = [i for i, d in enumerate(data) if len(d)]
        box = ax.boxplot([data[i] for i in keep], positions=pos[keep], widths=width * 0.9,
                         patch_artist=True, manage_ticks=False)
        for patch in box["boxes"]:
            patch.set_facecolor(color)
        ax.plot([], [], "s", color=color, label=f"motif {task}")
    # one line per part of the name ("1layer" over "local_win9"): level labels that do not run into each other
    ax.set_xticks(range(len(archs)), [a.replace("_", "\n", 1) for a in archs], fontsize=9)
    ax.set_ylabel("test AUC")
    ax.legend()
    return ax


def plot_auc_vs_size(table: pd.DataFrame, ax=None):
    """Median test AUC against training-set size per architecture; the band spans min to max over seeds."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    for arch, part in table.groupby("architecture", sort=False):
        stats = part.groupby("n_train")["auc"].agg(["median", "min", "max"])
        line, = ax.plot(stats.index, stats["median"], "o-", label=arch)
        ax.fill_between(stats.index, stats["min"], stats["max"], color=line.get_color(), alpha=0.2)
    ax.set_xscale("log")
    sizes = sorted(set(table["n_train"]))
    ax.set_xticks(sizes, [f"{n:,}" for n in sizes])  # the sizes run, not crowded log-scale minor labels
    ax.minorticks_off()
    ax.set_xlabel("training sequences")
    ax.set_ylabel("test AUC (median, range over seeds)")
    ax.legend(fontsize="small")
    return ax


def _bench_command(args) -> int:
    runs = grid(args.architectures, args.datasets, args.sizes, args.seeds)
    settings = Settings(epochs=args.epochs, n_valid=args.n_valid, n_test=args.n_test,
                        threads=args.threads)
    if args.dask:
        from dask.distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=args.workers or 2, threads_per_worker=1) \
            if args.dask == "local" else args.dask
        with Client(cluster) as client:
            table = sweep(runs, args.out, executor=client.get_executor(), settings=settings)
    else:
        table = sweep(runs, args.out, settings=settings, max_workers=args.workers)
    print(medians(table).round(3).to_string())
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (left, right) = plt.subplots(1, 2, figsize=(15, 4.5), width_ratios=[2, 1])
        plot_auc_by_architecture(table, left)
        plot_auc_vs_size(table, right)
        fig.tight_layout()
        fig.savefig(args.plot)
        print(f"plot: {args.plot}")
    return 0


def add_cli(sub) -> None:
    """Register ``mlcourse bench``: run (or resume) an architecture sweep, print the medians."""
    from mlcourse.models.zeng import ARCHITECTURES

    p = sub.add_parser("bench", help="sweep CNN architectures x datasets x sizes x seeds (resumable)",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--architectures", nargs="+", default=list(ARCHITECTURES), metavar="NAME")
    p.add_argument("--datasets", nargs="+", default=["discovery:MAFF", "occupancy:MAFF"],
                   metavar="DATA", help="discovery:TF, occupancy:TF, ctcf, deepbind:TF")
    p.add_argument("--sizes", nargs="+", type=int, default=[2000], metavar="N")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--n-valid", type=int, default=1000)
    p.add_argument("--n-test", type=int, default=2000)
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    p.add_argument("--workers", type=int, help="worker processes (default: cores / threads; 1: run in this process)")
    p.add_argument("--dask", metavar="ADDRESS", help="'local' for a Dask LocalCluster, or a scheduler address")
    p.add_argument("--out", type=Path, default=Path("bench_results.csv"), help="results CSV (resumed)")
    p.add_argument("--plot", type=Path, help="also save the two plots to this image file")
    p.set_defaults(func=_bench_command)
