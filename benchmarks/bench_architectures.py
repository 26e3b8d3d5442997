"""All nine Zeng et al. (2016) architectures on real CTCF and on simulated discovery / occupancy data.

Run: ``MLCOURSE_MIRROR=/work/shared/data .venv/bin/python benchmarks/bench_architectures.py``
(sizes are arguments; the defaults take about an hour on 2 busy cores). The sweep is resumable: rerun the
same command after an interruption and only the missing runs are trained.

Prints the median test AUC per architecture and dataset (and per task, over TFs), the
median AUC relative to DeepBind's ``1layer`` on the same dataset, and, for
``--curve-sizes``, the median and spread (max - min over seeds) against training-set size.
Zeng et al.'s findings to compare with: more kernels help motif discovery; local
pooling and extra depth do not; depth helps motif occupancy; occupancy is harder;
fewer training examples give more variance.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pandas as pd

from mlcourse.benchmark import Run, Settings, medians, sweep
from mlcourse.config import cache_dir
from mlcourse.models.zeng import ARCHITECTURES


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tfs", nargs="+", default=["MAFF", "CTCF", "GATA1"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--size", type=int, default=1500, help="training sequences, simulated data")
    parser.add_argument("--ctcf-size", type=int, default=5000, help="training sequences, real CTCF (0: skip)")
    parser.add_argument("--curve-sizes", nargs="*", type=int, default=[300, 1500, 6000],
                        help="sizes for the AUC-vs-size curve (occupancy of the first TF; 1layer, 2layer)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--n-valid", type=int, default=500)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=cache_dir() / "bench" / "architectures.csv")
    args = parser.parse_args(argv)

    datasets = [f"{task}:{tf}" for tf in args.tfs for task in ("discovery", "occupancy")]
    runs = []
    for seed in args.seeds:  # seeds outermost: a stopped sweep has whole tables for the first seeds
        runs += [Run(a, d, args.size, seed) for d in datasets for a in ARCHITECTURES]
        if args.ctcf_size:
            runs += [Run(a, "ctcf", args.ctcf_size, seed) for a in ARCHITECTURES]
        curve = f"occupancy:{args.tfs[0]}"
        runs += [Run(a, curve, n, seed) for n in args.curve_sizes for a in ("1layer", "2layer")
                 if n != args.size]
    settings = Settings(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                        n_valid=args.n_valid, n_test=args.n_test)
    print(f"{len(runs)} runs -> {args.out}; load average {os.getloadavg()[0]:.1f}", flush=True)
    table = sweep(runs, args.out, settings=settings, max_workers=args.workers)

    main_runs = table[table.n_train.isin([args.size, args.ctcf_size])]
    per_dataset = medians(main_runs)
    print(f"\n## median test AUC ({len(main_runs)} runs; seeds {args.seeds})")
    print(per_dataset.round(3).to_string())
    by_task = main_runs.assign(kind=main_runs.dataset.where(main_runs.dataset == "ctcf", main_runs.task))
    print("\n## median test AUC per task (over TFs and seeds)")
    print(by_task.pivot_table(index="architecture", columns="kind", values="auc", aggfunc="median")
          .reindex(list(ARCHITECTURES)).round(3).to_string())
    print("\n## median AUC minus 1layer's, per dataset")
    print((per_dataset - per_dataset.loc["1layer"]).round(3).to_string())
    if args.curve_sizes:
        part = table[(table.dataset == curve) & table.architecture.isin(["1layer", "2layer"])]
        stats = part.groupby(["architecture", "n_train"])["auc"].agg(
            median="median", spread=lambda a: a.max() - a.min(), runs="count")
        print(f"\n## {curve}: AUC against training-set size")
        print(stats.round(3).to_string())
    secs = table["seconds"]
    print(f"\ntraining seconds per run: median {secs.median():.0f}, total {secs.sum() / 60:.0f} min; "
          f"load average now {os.getloadavg()[0]:.1f}")
    return pd.DataFrame(per_dataset)


if __name__ == "__main__":
    main()
