"""Benchmark: SIS collections of 100 sequences of 101 bp, mlcourse vs google-research's ``sis.py``.

The peer is the SIS authors' own implementation, google-research's
``sufficient_input_subsets/sis.py`` (Apache 2.0; it is run from a path outside the
repository, never copied in). Its ``sis_collection`` explains one input at a time, as its
API does: every backward-selection step scores that input's candidates in one call of ``f``,
here a batched NumPy function wrapping the same model (the same probability as mlcourse's
``score``). ``mlcourse.interpret.sis.sis_collections(fast=True)`` runs all inputs together
(shared batches), reads FindSIS off the backward-selection scores, and screens each step's
candidates (single-position edits) with the local-window engine of
``mlcourse.interpret.engines``, so the model scores only the few that may be the best. The
SIS sets must be identical (compared without tolerance). The speed-up is the ratio of CPU
seconds (``time.process_time``; with ``--threads 1`` the work done, whatever else the machine
runs). Both sides are timed warm, as the best of ``--repeat`` runs, after one untimed run on
the first few inputs (the first call of a torch kernel pays for its set-up). The model is a ``1layer`` CNN trained briefly on simulated MAFF binding; the threshold
is the test set's 90th-percentile probability. Get the peer (one file) and run::

    mkdir -p /work/peers/google_sis && curl -o /work/peers/google_sis/sis.py \\
        https://raw.githubusercontent.com/google-research/google-research/master/sufficient_input_subsets/sis.py
    .venv/bin/python benchmarks/bench_sis.py --threads 1 [--n 100] [--peer PATH]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mlcourse import train
from mlcourse.datasets import simulate
from mlcourse.interpret import sis
from mlcourse.interpret.scoring import score
from mlcourse.models import zeng

PEER_URL = ("https://raw.githubusercontent.com/google-research/google-research/master/"
            "sufficient_input_subsets/sis.py")


def load_peer(path: Path):
    """google-research's ``sis.py`` as a module. It predates NumPy 2, which removed the aliases
    ``np.bool`` and ``np.float_`` it uses; they are set back (to ``bool`` and ``np.float64``) first."""
    if not hasattr(np, "bool"):
        np.bool = bool
    if not hasattr(np, "float_"):
        np.float_ = np.float64
    spec = importlib.util.spec_from_file_location("google_sis", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="sequences to explain (default 100)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    parser.add_argument("--repeat", type=int, default=2, help="timed runs of each side, best kept (default 2)")
    parser.add_argument("--peer", type=Path,
                        default=Path(os.environ.get("MLCOURSE_SIS_PEER", "/work/peers/google_sis/sis.py")),
                        help="google-research's sufficient_input_subsets/sis.py (default: $MLCOURSE_SIS_PEER, "
                             "else /work/peers/google_sis/sis.py)")
    args = parser.parse_args(argv)
    if not args.peer.is_file():
        print(f"the peer {args.peer} is missing: download google-research's sis.py (one file, Apache 2.0) "
              f"from {PEER_URL} to that path, or pass --peer PATH (or set MLCOURSE_SIS_PEER); keep it outside "
              "the repository", file=sys.stderr)
        return 2
    peer = load_peer(args.peer)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = simulate.motif_discovery("MAFF", n=6000, seed=0)  # 1,200 test sequences: top 10% > 100
    train_set, valid_set, test_set = data.split(valid=0.1, test=0.2, seed=0)
    model = zeng.build("1layer", data.length)
    train.fit(model, train_set, valid_set, epochs=8, batch_size=64, lr=3e-3, progress=False)

    def f(batch: np.ndarray) -> np.ndarray:  # what sis.py calls: a batch of inputs -> their scores
        return score(model, torch.from_numpy(batch), output="probability").numpy()

    probs = f(test_set.X.numpy())
    threshold = float(np.quantile(probs, 0.9))
    X = test_set.X[np.argsort(-probs)[:args.n]]  # the n most confident calls, all above threshold
    masked = sis.dna_background(X[0])

    def ours_on(inputs):
        return sis.sis_collections(model, inputs, threshold=threshold, baseline=masked, mask_shape=(1, data.length),
                                   output="probability", fast=True)

    def theirs_on(inputs):
        return [peer.sis_collection(f, threshold, x, masked.numpy(), initial_mask=np.ones((1, data.length), bool))
                for x in inputs.numpy()]

    def best_of(run):  # (result, wall seconds, CPU seconds) of the run with the least CPU time, after a warm-up
        run(X[:3])
        best = None
        for _ in range(args.repeat):
            start, cpu = time.perf_counter(), time.process_time()
            result = run(X)
            timing = (result, time.perf_counter() - start, time.process_time() - cpu)
            best = timing if best is None or timing[2] < best[2] else best
        return best

    ours, t_ours, c_ours = best_of(ours_on)
    theirs, t_theirs, c_theirs = best_of(theirs_on)

    identical = sum([sorted(s.features.tolist()) for s in a] == [sorted(r.sis[:, 1].tolist()) for r in b]
                    for a, b in zip(ours, theirs))
    table = pd.DataFrame([
        {"method": "mlcourse sis_collections(fast=True)", "seconds": t_ours, "cpu s": c_ours},
        {"method": "google-research sis.py, one input at a time", "seconds": t_theirs, "cpu s": c_theirs},
    ])
    table["ratio (cpu)"] = table["cpu s"] / c_ours
    print(f"SIS collections of {args.n} x {data.length} bp, threshold {threshold!r} (90th percentile), "
          f"{sum(map(len, ours))} SISes; torch threads={torch.get_num_threads()}, "
          f"best of {args.repeat} warm runs each, load average {os.getloadavg()[0]:.2f}")
    print(table.round(3).to_string(index=False))
    print(f"identical SIS sets: {identical} of {len(X)} sequences")
    return 0 if identical == len(X) else 1


if __name__ == "__main__":
    raise SystemExit(main())
