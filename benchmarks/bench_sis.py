"""Benchmark: SIS collections of 100 sequences of 101 bp, vectorised vs one example at a time.

The peer is Carter et al.'s algorithm run per example, as their reference code does: every
backward-selection step scores that example's candidates in one batch, then FindSIS adds
features back one call at a time. ``mlcourse.interpret.sis.sis_collections`` runs all examples
together (shared batches), reads FindSIS off the backward-selection scores, and screens each
step's candidates (single-position edits) with the fastISM-style local-window path of
``mlcourse.interpret.ism``, so the model scores only the few that may be the best. The SISes must
be identical (compared without tolerance). The speed-up is the ratio of CPU seconds
(``time.process_time``; with ``--threads 1`` the work done, whatever else the machine runs). The model is a ``1layer`` CNN trained briefly on simulated MAFF binding. Run::

    .venv/bin/python benchmarks/bench_sis.py [--n 100] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd
import torch

from mlcourse import train
from mlcourse.datasets import simulate
from mlcourse.interpret import sis
from mlcourse.interpret.scoring import score
from mlcourse.models import zeng


def one_at_a_time(f, threshold, x, masked):
    """The paper's SIScollection / BackSelect / FindSIS for one sequence; features = positions."""
    length = x.shape[-1]

    def score(keeps):  # keeps: (B, L) bool
        batch = torch.where(keeps[:, None, :], x, masked)
        return f(batch).double()

    collection, removed = [], torch.zeros(length, dtype=torch.bool)
    while True:
        remaining = ~removed
        if not remaining.any() or float(score(remaining[None])[0]) < threshold:
            return collection
        order = []
        while remaining.any():
            candidates = torch.nonzero(remaining).reshape(-1)
            keeps = remaining.repeat(len(candidates), 1)
            keeps[torch.arange(len(candidates)), candidates] = False
            values = score(keeps)
            best = candidates[int(torch.argmax(values))]  # first maximum: lowest position
            remaining[best] = False
            order.append(int(best))
        kept = torch.zeros(length, dtype=torch.bool)
        for position in reversed(order):
            kept[position] = True
            if float(score(kept[None])[0]) >= threshold:
                break
        collection.append(np.flatnonzero(kept.numpy()))
        removed |= kept


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="sequences to explain (default 100)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = simulate.motif_discovery("MAFF", n=6000, seed=0)  # 1,200 test sequences: top 10% > 100
    train_set, valid_set, test_set = data.split(valid=0.1, test=0.2, seed=0)
    model = zeng.build("1layer", data.length)
    train.fit(model, train_set, valid_set, epochs=8, batch_size=64, lr=3e-3, progress=False)
    def f(batch):
        return score(model, batch, output="probability")

    probs = f(test_set.X).numpy()
    threshold = float(np.quantile(probs, 0.9))
    X = test_set.X[np.argsort(-probs)[:args.n]]  # the n most confident calls, all above threshold
    masked = sis.dna_background(X[0])

    start, cpu = time.perf_counter(), time.process_time()
    ours = sis.sis_collections(model, X, threshold=threshold, baseline=masked, mask_shape=(1, data.length),
                               output="probability", fast=True)
    t_ours, c_ours = time.perf_counter() - start, time.process_time() - cpu
    start, cpu = time.perf_counter(), time.process_time()
    theirs = [one_at_a_time(f, threshold, x, masked) for x in X]
    t_theirs, c_theirs = time.perf_counter() - start, time.process_time() - cpu

    same = all([sorted(s.features.tolist()) for s in a] == [b.tolist() for b in c]
               for a, c in zip(ours, theirs))
    table = pd.DataFrame([
        {"method": "mlcourse sis_collections (vectorised)", "seconds": t_ours, "cpu s": c_ours},
        {"method": "one example at a time (paper's algorithm)", "seconds": t_theirs, "cpu s": c_theirs},
    ])
    table["speed-up of mlcourse (cpu)"] = table["cpu s"] / c_ours
    print(f"SIS collections of {args.n} x {data.length} bp, threshold {threshold:.3f} (90th percentile), "
          f"{sum(map(len, ours))} SISes; torch threads={torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(table.round(3).to_string(index=False))
    print(f"identical SISes: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
