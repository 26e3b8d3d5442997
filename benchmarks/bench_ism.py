"""Benchmark: saturation mutagenesis on 1,000 sequences of 101 bp.

Compares, on the same model and inputs, in one run:

* ``mlcourse``            -- ``saturation_mutagenesis(fast=True)`` (local-window engine, fastISM idea)
* ``mlcourse plain``      -- the same function with ``fast=False``, the default (all mutants, large batches)
* ``per-sequence``        -- the plain definition, one batch of 3L mutants per sequence
* ``tangermeme``          -- ``tangermeme.saturation_mutagenesis`` (optional ``bench`` extra),
                             with its defaults (it decides itself whether to use its fastISM path)

and checks that every result equals ``mlcourse``'s to 1e-4. Run::

    .venv/bin/python benchmarks/bench_ism.py [--n 1000] [--models 1layer_128motif 3layer] [--threads 1]

On a shared, loaded machine pass ``--threads 1``: many small operations with several threads
each wait for busy cores, which distorts every timing.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import pandas as pd
import torch

from mlcourse.interpret.ism import edits, saturation_mutagenesis
from mlcourse.models.zeng import build


def per_sequence(model, X):
    """ISM by the definition: for each sequence, one batch holding its 3L mutants."""
    model.eval()
    out = torch.zeros_like(X)
    with torch.inference_mode():
        for i in range(X.shape[0]):
            b, p = torch.nonzero(edits(X[i:i + 1])[0], as_tuple=True)
            mutants = X[i].repeat(b.numel(), 1, 1)
            rows = torch.arange(b.numel())
            mutants[rows, :, p] = 0.0
            mutants[rows, b, p] = 1.0
            out[i, b, p] = model(mutants) - model(X[i:i + 1])
    return out


def tangermeme_ism(model, X):
    """tangermeme's raw predictions turned into the same definition, f(mutant) - f(x)."""
    from tangermeme.saturation_mutagenesis import saturation_mutagenesis as tm_ism

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y0, y_hat = tm_ism(model, X, raw_outputs=True, device="cpu")
    return (y_hat.reshape(X.shape) - y0.reshape(-1, 1, 1)).float()


def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="sequences (default 1000)")
    parser.add_argument("--length", type=int, default=101)
    parser.add_argument("--models", nargs="+", default=["1layer_128motif", "3layer"])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    X = torch.nn.functional.one_hot(torch.randint(0, 4, (args.n, args.length)), 4)
    X = X.permute(0, 2, 1).float().contiguous()
    try:
        import tangermeme
        peer = f"tangermeme {tangermeme.__version__}"
    except ImportError:
        peer = None
        print("tangermeme is not installed (pip install -e '.[bench]'): comparing with the plain loops only")

    rows = []
    for name in args.models:
        model = build(name, args.length).eval()
        ours, t_ours = timed(lambda m=model: saturation_mutagenesis(m, X, fast=True))
        methods = {"mlcourse plain (fast=False)": lambda m=model: saturation_mutagenesis(m, X, fast=False),
                   "per-sequence batches": lambda m=model: per_sequence(m, X)}
        if peer:
            methods[peer] = lambda m=model: tangermeme_ism(m, X)
        rows.append({"model": name, "method": "mlcourse", "seconds": t_ours, "max |diff|": 0.0})
        for method, fn in methods.items():
            result, seconds = timed(fn)
            rows.append({"model": name, "method": method, "seconds": seconds,
                         "max |diff|": (result - ours).abs().max().item()})
    table = pd.DataFrame(rows)
    table["seqs/s"] = args.n / table["seconds"]
    base = table[table.method == "mlcourse"].set_index("model")["seconds"]
    table["mlcourse speed-up"] = table["seconds"] / table["model"].map(base)
    table["equal to 1e-4"] = table["max |diff|"] <= 1e-4
    pd.set_option("display.width", 140)
    print(f"ISM on {args.n} x {args.length} bp, torch threads={torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(table.round(4).to_string(index=False))
    return 0 if table["equal to 1e-4"].all() else 1


if __name__ == "__main__":
    raise SystemExit(main())
