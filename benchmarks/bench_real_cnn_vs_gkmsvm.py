"""CNNs against the gapped k-mer SVM on real ChIP-seq: the five DeepBind ENCODE sets and Zeng's CTCF.

Run: ``MLCOURSE_MIRROR=/work/shared/data .venv/bin/python benchmarks/bench_real_cnn_vs_gkmsvm.py``
(or with the data fetched: ``mlcourse fetch deepbind_encode zeng_ctcf``). About 20 minutes on one core.

Per data set, test ROC-AUC of

* ``1layer`` with :func:`mlcourse.train.fit`'s defaults (Adam 1e-3, batches of 128, up to 30 epochs,
  patience 3),
* ``1layer`` with the course's real-data recipe (lr 3e-3, batches of 64, up to 40 epochs, patience 5),
* ``1layer_128motif`` with the recipe (up to 12 epochs),
* the peer: :class:`mlcourse.baselines.GappedKmerSVM` (l=7, k=5, C=0.1) on the same training sequences,

with ``still improving`` when ``fit`` ran out of epochs while the validation AUC still rose. DeepBind sets:
the ``_AC`` peaks plus one dinucleotide shuffle each (90% train, 10% validation), tested on the ``_B``
file (500 bound, 500 background). CTCF: 20,000 training sequences, Zeng's validation split, 5,000 test
sequences. Ratios are CNN AUC / gkm-SVM AUC.

Measured 2026-12-02 (2-core CPU, one thread), test AUC:

| set | 1layer defaults | 1layer recipe | 1layer_128motif | gkm-SVM |
| --- | --- | --- | --- | --- |
| ARID3A | 0.781 | 0.836 | 0.867 | **0.905** |
| CTCFL | 0.976 | 0.973 | **0.982** | 0.941 |
| ELK1 | 0.904 | 0.924 | 0.929 | **0.967** |
| GABPA | 0.964 | 0.973 | 0.977 | **0.985** |
| REST | 0.989 | 0.992 | **0.998** | 0.995 |
| CTCF (20k) | 0.956 | 0.959 | **0.973** | 0.923 |

fit's defaults stopped early (converged) on all six; the recipe was better on five of six (ARID3A +0.055).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import mlcourse
from mlcourse.baselines import GappedKmerSVM
from mlcourse.datasets.encode import DEEPBIND_TFS, load_deepbind, load_zeng_ctcf
from mlcourse.models.zeng import build
from mlcourse.train import NotConvergedWarning, evaluate, fit

RECIPE = dict(lr=3e-3, batch_size=64, patience=5)
CNNS = {
    "1layer defaults": ("1layer", {}),
    "1layer recipe": ("1layer", dict(RECIPE, epochs=40)),
    "1layer_128motif recipe": ("1layer_128motif", dict(RECIPE, epochs=12)),
}


def data_sets(n_ctcf: int):
    """``(name, train, valid, test)`` for every DeepBind mirror TF, then CTCF."""
    for tf in DEEPBIND_TFS:
        train, valid, _ = load_deepbind(tf, "train").split(valid=0.1, test=0.0, seed=0)
        yield tf, train, valid, load_deepbind(tf, "test")
    ctcf, test = load_zeng_ctcf("train"), load_zeng_ctcf("test")
    rows = np.random.default_rng(0).permutation(len(ctcf))[:n_ctcf]
    tests = np.random.default_rng(1).permutation(len(test))[:5000]
    yield f"CTCF ({n_ctcf // 1000}k)", ctcf.subset(rows), load_zeng_ctcf("valid"), test.subset(tests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ctcf", type=int, default=20000, help="CTCF training sequences")
    args = parser.parse_args()
    mlcourse.setup(seed=0)
    print(f"{'set':<12} {'model':<24} {'AUC':>6} {'/ gkm':>6} {'epochs':>6} {'still improving':>16} {'s':>6}")
    for name, train, valid, test in data_sets(args.ctcf):
        start = time.perf_counter()
        svm_auc = GappedKmerSVM().fit(train).evaluate(test)["auc"]
        print(f"{name:<12} {'gkm-SVM (peer)':<24} {svm_auc:6.3f} {1:6.3f} {'':>6} {'':>16} "
              f"{time.perf_counter() - start:6.1f}", flush=True)
        for label, (architecture, settings) in CNNS.items():
            mlcourse.setup(seed=0, verbose=False)
            model = build(architecture)
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotConvergedWarning)  # reported in the table
                history = fit(model, train, valid, progress=False, **settings)
            auc = evaluate(model, test)["auc"]
            print(f"{name:<12} {label:<24} {auc:6.3f} {auc / svm_auc:6.3f} {len(history.epochs):>6} "
                  f"{str(history.still_improving):>16} {time.perf_counter() - start:6.1f}", flush=True)


if __name__ == "__main__":
    main()
