"""Benchmark: how well, and how fast, a JASPAR PWM scan separates bound from unbound DNA.

Rows, all measured in one run:

* real data: the JASPAR CTCF matrix (MA0139.2) on the Zeng et al. (2016) CTCF
  test split (19,544 sequences; needs ``mlcourse fetch zeng_ctcf`` or
  ``MLCOURSE_MIRROR``), scored by

  - ``mlcourse.motifs.scan`` (best log-odds over both strands, one conv1d);
  - ``numpy windows``: the same score written as a plain sliding-window sum,
    checked equal to ``scan`` (the reference for the speed ratio);
  - ``memelite FIMO``: each sequence's best FIMO hit, ``-log10 p`` (0 when
    no window reaches p < 1e-4; Grant et al. 2011, as reimplemented in
    memelite; the named peer);

* simulated data (:func:`mlcourse.datasets.simulate.motif_discovery`, MAFF):
  the true motif's scan AUC against column-shuffled versions of it (same
  columns, same information content, wrong order), which should be near 0.5.

Run::

    .venv/bin/python benchmarks/bench_scan.py [--n-sim 20000]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from mlcourse.datasets.encode import load_zeng_ctcf
from mlcourse.datasets.simulate import motif_discovery
from mlcourse.motifs import Motif, jaspar, scan


def numpy_windows(motif: Motif, X: np.ndarray) -> np.ndarray:
    """Best log-odds per sequence by the definition: every window, both strands, in NumPy."""
    pwm = motif.log_odds
    windows = np.lib.stride_tricks.sliding_window_view(X, motif.width, axis=2)  # (N, 4, P, W)
    plus = np.einsum("nbpw,bw->np", windows, pwm)
    minus = np.einsum("nbpw,bw->np", windows, pwm[::-1, ::-1])
    return np.maximum(plus, minus).max(axis=1)


def fimo_best(motif: Motif, X: np.ndarray) -> np.ndarray:
    """-log10 of each sequence's best FIMO hit p-value (0 without a hit at p < 1e-4), via memelite."""
    from memelite import fimo

    hits = fimo({motif.name: motif.probs}, X, threshold=1e-4)[0]
    best = hits.groupby("sequence_name")["p-value"].min()
    out = np.zeros(len(X))
    out[best.index.to_numpy(dtype=int)] = -np.log10(best.to_numpy())
    return out


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def real_rows() -> list[dict]:
    try:
        test = load_zeng_ctcf("test")
    except ValueError as err:
        print(f"(skipping the real CTCF rows: {err})")
        return []
    ctcf = jaspar("CTCF")
    X = test.X.numpy()
    ours, t_ours = timed(scan, ctcf, X)
    ref, t_ref = timed(numpy_windows, ctcf, X)
    assert np.allclose(ours, ref, atol=1e-3), "scan disagrees with the sliding-window definition"
    rows = [
        dict(data="CTCF test (real)", scorer="mlcourse scan", auc=roc_auc_score(test.y, ours),
             seconds=t_ours, speedup_vs_peer=np.nan),
        dict(data="CTCF test (real)", scorer="numpy windows", auc=roc_auc_score(test.y, ref),
             seconds=t_ref, speedup_vs_peer=np.nan),
    ]
    try:
        fimo_best(ctcf, X[:50])  # compile memelite's numba kernels outside the timing
        best, t_fimo = timed(fimo_best, ctcf, X)
    except ImportError:
        print("(memelite is not installed: no FIMO row; pip install memelite)")
        return rows
    rows.append(dict(data="CTCF test (real)", scorer="memelite FIMO best hit (peer)",
                     auc=roc_auc_score(test.y, best), seconds=t_fimo, speedup_vs_peer=1.0))
    for row in rows[:2]:
        row["speedup_vs_peer"] = t_fimo / row["seconds"]
    return rows


def simulated_rows(n: int, shuffles: int = 5) -> list[dict]:
    data = motif_discovery("MAFF", n=n, seed=0)
    maff = jaspar("MAFF")
    scores, seconds = timed(scan, maff, data.X)
    rows = [dict(data=f"MAFF discovery (sim, n={n})", scorer="true motif",
                 auc=roc_auc_score(data.y, scores), seconds=seconds, speedup_vs_peer=np.nan)]
    rng = np.random.default_rng(0)
    aucs = []
    for _ in range(shuffles):
        shuffled = Motif("shuffled", maff.counts[:, rng.permutation(maff.width)])
        aucs.append(roc_auc_score(data.y, scan(shuffled, data.X)))
    rows.append(dict(data=f"MAFF discovery (sim, n={n})",
                     scorer=f"column-shuffled motif (mean of {shuffles}, sd {np.std(aucs):.3f})",
                     auc=float(np.mean(aucs)), seconds=np.nan, speedup_vs_peer=np.nan))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-sim", type=int, default=20_000, help="simulated sequences")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (timings are noisy under load)")
    table = pd.DataFrame(real_rows() + simulated_rows(args.n_sim))
    with pd.option_context("display.width", 140, "display.float_format", "{:.3f}".format):
        print(table.to_string(index=False))


if __name__ == "__main__":
    main()
