"""Training speed and real-CTCF accuracy: ``fit`` against a plain PyTorch loop, CNNs against baselines.

Run: ``MLCOURSE_MIRROR=/work/shared/data .venv/bin/python benchmarks/bench_train.py``
(or with the data fetched: ``mlcourse fetch zeng_ctcf``).

1. ``mlcourse.train.fit`` against a plain loop (``randperm``, index, forward,
   BCE, backward, Adam step) over the same number of batches of the same data,
   same model and threads: seconds per epoch and their ratio (alternating runs).
2. Zeng et al. (2016)'s real CTCF set: test AUC of ``1layer`` and
   ``1layer_128motif`` trained with ``fit`` (reference, a plain loop on a
   2-core CPU: 0.969 after 8 epochs in 20 s, and 0.979 after 5 epochs in 48 s),
   the gapped k-mer SVM on 20,000 training sequences, and the JASPAR CTCF PWM
   scan (reference 0.93).

Wall-clock seconds depend on what else the machine runs: the script prints the
load average and CPU seconds of this process next to them.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from torch import nn

import mlcourse
from mlcourse.baselines import GappedKmerSVM, pwm_baseline
from mlcourse.datasets.encode import load_zeng_ctcf
from mlcourse.models.zeng import build
from mlcourse.train import evaluate, fit


def plain_epoch(model, X, y, optimizer, batch_size=128):
    """The reference: one epoch of the simplest correct PyTorch loop."""
    loss_fn = nn.BCEWithLogitsLoss()
    model.train()
    order = torch.randperm(len(X))
    for i in range(0, len(X), batch_size):
        idx = order[i : i + batch_size]
        loss = loss_fn(model(X[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def timed(fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, its wall-clock seconds and this process's CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def compare_loops(train, valid, n: int, repeats: int):
    X, y = train.X[:n], train.labels[:n]
    rows = []
    for r in range(repeats):
        mlcourse.setup(r, verbose=False)
        model = build("1layer")
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        _, plain_wall, plain_cpu = timed(plain_epoch, model, X, y, opt)
        mlcourse.setup(r, verbose=False)
        model = build("1layer")
        _, bare_wall, bare_cpu = timed(fit, model, (X, y), None, epochs=1, progress=False)
        mlcourse.setup(r, verbose=False)
        model = build("1layer")
        _, fit_wall, fit_cpu = timed(fit, model, (X, y), valid, epochs=1, progress=False)
        rows.append((plain_wall, bare_wall, fit_wall, plain_cpu, bare_cpu, fit_cpu))
    plain_wall, bare_wall, fit_wall, plain_cpu, bare_cpu, fit_cpu = np.median(np.array(rows), axis=0)
    print(f"\n## fit vs plain loop: 1layer, one epoch of {n} sequences, batch 128, median of {repeats}")
    print("| loop | wall s/epoch | CPU s/epoch |\n| --- | --- | --- |")
    print(f"| plain PyTorch loop | {plain_wall:.2f} | {plain_cpu:.2f} |")
    print(f"| mlcourse.train.fit, no validation | {bare_wall:.2f} | {bare_cpu:.2f} |")
    print(f"| mlcourse.train.fit + validation AUC ({len(valid)} seqs) | {fit_wall:.2f} | {fit_cpu:.2f} |")
    print(f"| ratio fit (no validation) / plain | {bare_wall / plain_wall:.2f} | {bare_cpu / plain_cpu:.2f} |")
    print(f"| ratio fit (+ validation) / plain | {fit_wall / plain_wall:.2f} | {fit_cpu / plain_cpu:.2f} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the reference used 2 cores)")
    parser.add_argument("--loop-n", type=int, default=20_000, help="sequences in the loop comparison")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs-1layer", type=int, default=8)
    parser.add_argument("--epochs-128motif", type=int, default=5)
    parser.add_argument("--gkm-n", type=int, default=20_000, help="training sequences for the gkm-SVM")
    parser.add_argument("--skip", nargs="*", default=[], choices=["loop", "cnn", "gkm", "pwm"])
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch threads {args.threads}; load average at start {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")
    train, valid, test = (load_zeng_ctcf(s) for s in ("train", "valid", "test"))
    if "loop" not in args.skip:
        compare_loops(train, valid, args.loop_n, args.repeats)
    print("\n## real CTCF (Zeng et al. 2016): test AUC on", len(test), "sequences")
    print("| model | train seqs | epochs (best) | test AUC | reference | wall s | CPU s | load |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    if "cnn" not in args.skip:
        for name, epochs, ref in (("1layer", args.epochs_1layer, "0.969 (8 ep, 20 s)"),
                                  ("1layer_128motif", args.epochs_128motif, "0.979 (5 ep, 48 s)")):
            mlcourse.setup(0, verbose=False)
            model = build(name)
            h, wall, cpu = timed(fit, model, train, valid, epochs=epochs, patience=epochs,
                                 progress=False)
            auc = evaluate(model, test)["auc"]
            print(f"| {name} | {len(train)} | {len(h.epochs)} ({h.best_epoch}) | {auc:.3f} | {ref} | "
                  f"{wall:.0f} | {cpu:.0f} | {os.getloadavg()[0]:.1f} |", flush=True)
    if "gkm" not in args.skip:
        part = train.subset(np.random.default_rng(0).permutation(len(train))[: args.gkm_n])
        svm, wall, cpu = timed(GappedKmerSVM().fit, part)
        auc = svm.evaluate(test)["auc"]
        print(f"| gkm-SVM (l=7, k=5, C=0.1) | {len(part)} | - | {auc:.3f} | - | {wall:.0f} | {cpu:.0f} | "
              f"{os.getloadavg()[0]:.1f} |", flush=True)
    if "pwm" not in args.skip:
        result, wall, cpu = timed(pwm_baseline, "CTCF", test)
        print(f"| JASPAR CTCF PWM scan | 0 | - | {result['auc']:.3f} | 0.93 | {wall:.0f} | {cpu:.0f} | "
              f"{os.getloadavg()[0]:.1f} |")


if __name__ == "__main__":
    main()
