"""Benchmark: path attributions on DNA, mlcourse against Captum, in one run.

On the same Zeng et al. model, sequences and references:

* **integrated gradients** -- ``paths.integrated_gradients`` (the formula, all
  steps of all sequences batched) against Captum's ``IntegratedGradients``
  (same steps and rule, ``internal_batch_size`` = our batch size);
* **DeepLiftShap with per-sequence references** -- ``paths.deeplift_shap``
  (one Captum ``DeepLift`` call on every sequence x reference pair, and the
  ReLU -> MaxPool fix) against Captum's ``DeepLiftShap`` called once per
  sequence (its references are shared by a call, so per-sequence shuffles need
  one call each), which also shows the summation-to-delta error Captum gets on
  these models without the fix.

Every pair is checked for agreement (IG) or for its convergence delta (DeepLIFT,
computed outside the clock). Each implementation gets one untimed warm-up call.
Run::

    .venv/bin/python benchmarks/bench_attribution.py [--n 200] [--model 1layer_128motif]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import pandas as pd
import torch
from captum.attr import DeepLiftShap, IntegratedGradients

from mlcourse.interpret import paths
from mlcourse.models.zeng import build


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def captum_deeplift_shap_per_sequence(model, X, refs):
    """Captum's DeepLiftShap, one call per sequence with that sequence's references; and its deltas."""
    explainer = DeepLiftShap(model)
    out, deltas = torch.zeros_like(X), []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(len(X)):
            attr, delta = explainer.attribute(X[i:i + 1], baselines=refs[i],
                                              return_convergence_delta=True)
            out[i] = attr[0].detach()
            deltas.append(delta.detach())
    return out, torch.cat(deltas)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="sequences (default 200)")
    parser.add_argument("--model", default="1layer_128motif")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--references", type=int, default=10)
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    model = build(args.model).eval()
    with torch.no_grad():  # larger weights than the default init, so outputs (and deltas) are not tiny
        for p in model.parameters():
            p.mul_(3)
    X = torch.nn.functional.one_hot(torch.randint(0, 4, (args.n, 101)), 4).permute(0, 2, 1).float()
    refs = paths.shuffled_references(X, args.references, seed=0)
    base = refs[:, 0]
    batch = 512

    def our_ig(n):
        return paths.integrated_gradients(model, X[:n], baseline=base[:n], steps=args.steps,
                                          method="riemann_middle", batch_size=batch)

    def captum_ig(n):
        return IntegratedGradients(model).attribute(
            X[:n], baselines=base[:n], n_steps=args.steps, method="riemann_middle",
            internal_batch_size=batch).detach()

    def our_deeplift(n):
        return paths.deeplift(model, X[:n], baseline=refs[:n])

    def captum_deeplift(n):
        return captum_deeplift_shap_per_sequence(model, X[:n], refs[:n])

    for warm_up in (our_ig, captum_ig, our_deeplift, captum_deeplift):
        warm_up(2)
    ours_ig, t_ours_ig = timed(lambda: our_ig(args.n))
    theirs_ig, t_captum_ig = timed(lambda: captum_ig(args.n))
    _, t_ours_dl = timed(lambda: our_deeplift(args.n))
    (_, captum_delta), t_captum_dl = timed(lambda: captum_deeplift(args.n))
    _, ours_delta = paths.deeplift(model, X, baseline=refs, return_delta=True)

    rows = [
        {"method": "integrated gradients", "implementation": "mlcourse (formula)", "seconds": t_ours_ig,
         "check": "max |diff| vs Captum", "value": (ours_ig - theirs_ig).abs().max().item()},
        {"method": "integrated gradients", "implementation": "Captum IntegratedGradients",
         "seconds": t_captum_ig, "check": "", "value": float("nan")},
        {"method": "DeepLiftShap", "implementation": "mlcourse (paths.deeplift)", "seconds": t_ours_dl,
         "check": "max |delta|", "value": ours_delta.abs().max().item()},
        {"method": "DeepLiftShap", "implementation": "Captum DeepLiftShap per sequence",
         "seconds": t_captum_dl, "check": "max |delta|", "value": captum_delta.abs().max().item()},
    ]
    table = pd.DataFrame(rows)
    table["s / 100 seqs"] = 100 * table["seconds"] / args.n
    peer = table.groupby("method")["seconds"].transform("last")
    table["time vs Captum"] = table["seconds"] / peer
    pd.set_option("display.width", 160)
    print(f"{args.model}, {args.n} x 101 bp, IG {args.steps} steps, {args.references} shuffled references; "
          f"torch threads={torch.get_num_threads()}, load average {os.getloadavg()[0]:.2f}")
    print(table.round(6).to_string(index=False))
    ok = rows[0]["value"] < 1e-4 and rows[2]["value"] < 1e-3
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
