"""Benchmark: saturation mutagenesis on 1,000 sequences of 101 bp.

Compares, on the same model and inputs, in one run:

* ``mlcourse``            -- ``saturation_mutagenesis(fast=True)`` (local-window engine, fastISM idea)
* ``mlcourse plain``      -- the same function with ``fast=False``, the default (all mutants, large batches)
* ``per-sequence``        -- the plain definition, one batch of 3L mutants per sequence
* ``tangermeme``          -- ``tangermeme.saturation_mutagenesis`` (optional ``bench`` extra),
                             with its defaults (it decides itself whether to use its fastISM path)

and checks that every result equals ``mlcourse``'s to 1e-4. It prints wall seconds and **CPU
seconds** (``time.process_time``: with one torch thread this is the work done, whatever else the
machine runs), each method's CPU time in *forward passes* (CPU seconds / one batched forward pass
of the N sequences, best of 5), its CPU time over ``mlcourse``'s, and its **peak added memory**:
the growth of the process's resident set during a second call (Linux: ``VmHWM`` after resetting
it through ``/proc/self/clear_refs``, minus ``VmRSS`` before; glibc then maps and unmaps every large
block, which costs system time, so the timed call runs with its usual heap). Every method is
timed warm, as the best of ``--repeat`` calls (default 3), as the forward pass is the best of 5:
a single call of a few tens of milliseconds moved by 2x between runs of the same code
(first-touch page faults of its new buffers, load). tangermeme runs with
each batch size of
``--peer-batch`` (the best is the "tuned" one). Run::

    .venv/bin/python benchmarks/bench_ism.py [--n 1000] [--length 101] [--models 1layer_128motif 3layer] \
        [--threads 1] [--peer-batch 16 32 256] [--skip-plain] [--repeat 3]

On a shared, loaded machine pass ``--threads 1``: many small operations with several threads
each wait for busy cores, which distorts every timing (and CPU seconds then count one thread).
"""

from __future__ import annotations

import argparse
import ctypes
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


def tangermeme_ism(model, X, batch_size=32):
    """tangermeme's raw predictions turned into the same definition, f(mutant) - f(x)."""
    from tangermeme.saturation_mutagenesis import saturation_mutagenesis as tm_ism

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y0, y_hat = tm_ism(model, X, raw_outputs=True, device="cpu", batch_size=batch_size)
    return (y_hat.reshape(X.shape) - y0.reshape(-1, 1, 1)).float()


def _status_kib(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field))


def _libc():
    """glibc, whose allocator settings :func:`_allocator` switches; None elsewhere."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "mallopt") else None
    except OSError:
        return None


LIBC = _libc()
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


def _allocator(measuring: bool):
    """Measuring memory, large blocks are mapped and unmapped (else freed memory stays in the process,
    a later call reuses it and looks free); timing, they stay in the heap, as glibc's own adaptive
    thresholds keep them once warm: mapping fresh pages for every large temporary costs system time
    that a normal run does not pay (the more, the more temporaries a method allocates)."""
    if LIBC is not None:
        LIBC.mallopt(M_MMAP_THRESHOLD, 128 * 1024 if measuring else 32 * 1024 * 1024)
        LIBC.mallopt(M_TRIM_THRESHOLD, 128 * 1024 if measuring else 64 * 1024 * 1024)


def timed(fn, repeat: int = 1):
    """``fn()``, the wall and CPU seconds (this process: robust to a loaded machine with one torch thread)
    of the call with the least CPU time of ``repeat``, and the peak added resident memory in MiB (NaN off
    Linux) of one more call."""
    _allocator(measuring=False)
    best = None
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        result = fn()
        timing = (time.perf_counter() - start, time.process_time() - cpu)
        best = timing if best is None or timing[1] < best[1] else best
    return result, *best, peak_added(fn)


def peak_added(fn) -> float:
    """MiB by which ``fn(*args)`` grows the resident set at its peak (NaN off Linux)."""
    _allocator(measuring=True)
    if LIBC is not None:
        LIBC.malloc_trim(0)
    try:
        before = _status_kib("VmRSS:")
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # reset VmHWM, the peak resident set, to the current one
    except OSError:
        return float("nan")
    fn()
    added = max(0, _status_kib("VmHWM:") - before) / 1024
    _allocator(measuring=False)
    return added


def forward_pass(model, X, batch_size=2048, repeats=5):
    """CPU seconds of one forward pass over ``X`` in batches, the best of ``repeats`` (the unit
    of the "forward passes" column)."""
    best = float("inf")
    with torch.inference_mode():
        model(X[:batch_size])  # warm-up
        for _ in range(repeats):
            start = time.process_time()
            for s in range(0, len(X), batch_size):
                model(X[s:s + batch_size])
            best = min(best, time.process_time() - start)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="sequences (default 1000)")
    parser.add_argument("--length", type=int, default=101)
    parser.add_argument("--models", nargs="+", default=["1layer_128motif", "3layer"])
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    parser.add_argument("--peer-batch", type=int, nargs="+", default=[32, 256],
                        help="tangermeme batch sizes to try; the fastest is reported (default 32 256)")
    parser.add_argument("--skip-plain", action="store_true", help="leave out the two plain-definition rows")
    parser.add_argument("--repeat", type=int, default=3, help="timed calls of each method, best kept (default 3)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    _allocator(measuring=False)  # the forward passes too run with the usual heap

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
        one_pass = forward_pass(model, X)
        saturation_mutagenesis(model, X[:8], fast=True)  # warm-up
        ours, t_ours, c_ours, m_ours = timed(lambda m=model: saturation_mutagenesis(m, X, fast=True), args.repeat)
        methods = {} if args.skip_plain else {
            "mlcourse plain (fast=False)": lambda m=model: saturation_mutagenesis(m, X, fast=False),
            "per-sequence batches": lambda m=model: per_sequence(m, X)}
        if peer:
            tangermeme_ism(model, X[:2])  # warm-up: its lazy imports are not part of its time or memory
            for size in args.peer_batch:
                methods[f"{peer} (batch {size})"] = lambda m=model, size=size: tangermeme_ism(m, X, size)
        rows.append({"model": name, "method": "mlcourse", "seconds": t_ours, "cpu s": c_ours,
                     "added MiB": m_ours, "max |diff|": 0.0, "forward pass s": one_pass})
        for method, fn in methods.items():
            result, seconds, cpu, added = timed(fn, args.repeat)
            rows.append({"model": name, "method": method, "seconds": seconds, "cpu s": cpu, "added MiB": added,
                         "max |diff|": (result - ours).abs().max().item(), "forward pass s": one_pass})
    table = pd.DataFrame(rows)
    table["forward passes"] = table["cpu s"] / table.pop("forward pass s")
    base = table[table.method == "mlcourse"].set_index("model")
    table["cpu / mlcourse"] = table["cpu s"] / table["model"].map(base["cpu s"])
    table["memory / mlcourse"] = table["added MiB"] / table["model"].map(base["added MiB"])
    table["equal to 1e-4"] = table["max |diff|"] <= 1e-4
    pd.set_option("display.width", 140)
    print(f"ISM on {args.n} x {args.length} bp, torch threads={torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.2f} (1 min) at the end; ratios and forward passes use CPU seconds")
    print(table.round(4).to_string(index=False))
    return 0 if table["equal to 1e-4"].all() else 1


if __name__ == "__main__":
    raise SystemExit(main())
