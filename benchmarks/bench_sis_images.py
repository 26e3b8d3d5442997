"""Benchmark: SIS collections of MNIST fours with lecture 05's CNN and settings, fast vs one digit at a time.

Lecture 05 (``lectures/05_sis_mnist.ipynb``) trains ``mlcourse.models.vision.mnist_cnn`` and
explains its digit-4 calls: threshold 0.7 on the softmax probability of class 4, masked pixels
take the mean training image (``sis.mean_image``), features are 2x2 patches (``groups``). The
CNN is trained here as there (``fit``, multiclass, early stopping), for ``--epochs`` epochs.

Measured in the same run, on the same ``--n`` test fours (the first ones with p(4) >= 0.7):

* ``mlcourse sis_collections(fast=True)``: all digits together, each backward-selection step
  screened by the window engine of ``mlcourse.interpret.image_engines`` (the model scores only
  the candidates that may be the best and whose value the screen does not pin down);
* the peer, the plain definition one digit at a time: ``sis_collection(fast=False)`` per digit,
  every candidate of every step scored by a forward pass of the model (Carter et al.'s algorithm);
* for the record, the plain ``sis_collections(fast=False)`` over all digits together (what lecture
  05 ran before ``fast=True`` covered images; ``--skip-batched`` leaves it out).

The table gives seconds per digit, CPU (``time.process_time``) and wall, the ratio, and whether
the SISes (features in order, per digit) are identical, compared without tolerance. Run::

    MLCOURSE_MIRROR=/work/shared/data python benchmarks/bench_sis_images.py --threads 1 [--n 10]
"""

from __future__ import annotations

import argparse
import os
import time

import pandas as pd
import torch

import mlcourse
from mlcourse.datasets.mnist import load_mnist
from mlcourse.interpret import features, sis
from mlcourse.models import vision
from mlcourse.train import fit, predict


def lecture_cnn(epochs: int):
    """Lecture 05's CNN, trained as there, with its test fours of p(4) >= 0.7 and the mean image."""
    data = load_mnist()
    train, valid = data.train_valid(valid=0.1, seed=0)
    mlcourse.setup(0, verbose=False)
    cnn = vision.mnist_cnn()
    fit(cnn, train, valid, task="multiclass", epochs=epochs, progress=False)
    p4 = torch.softmax(torch.from_numpy(predict(cnn, data.test_x)), dim=1)[:, 4]
    fours = data.test_x[torch.nonzero((data.test_y == 4) & (p4 >= 0.7)).flatten()]
    return cnn.eval(), fours, data.mean_image()


def batched_same(found, reference) -> str:
    """How many digits have the reference's SISes (features in order), e.g. ``"10/10"``."""
    same = sum([[s.features.tolist() for s in a] == [s.features.tolist() for s in b]
                for a, b in zip(found, reference)])
    return f"{same}/{len(reference)}"


def timed(run):
    start, cpu = time.perf_counter(), time.process_time()
    result = run()
    return result, time.perf_counter() - start, time.process_time() - cpu


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10, help="test fours to explain (default 10)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    parser.add_argument("--epochs", type=int, default=10, help="most training epochs (lecture 05: 30 in full mode)")
    parser.add_argument("--patch", type=int, default=2, help="a feature is a patch x patch square (lecture: 2)")
    parser.add_argument("--skip-batched", action="store_true",
                        help="leave out the plain sis_collections over all digits (the path before fast=True)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    cnn, fours, mean = lecture_cnn(args.epochs)
    fours = fours[:args.n]
    options = dict(threshold=0.7, target=4, baseline=mean, groups=features.patch_groups(28, 28, args.patch),
                   output="probability")
    ours, t_ours, c_ours = timed(lambda: sis.sis_collections(cnn, fours, fast=True, **options))
    theirs, t_theirs, c_theirs = timed(lambda: [sis.sis_collection(cnn, x, **options) for x in fours])
    rows = []
    if not args.skip_batched:
        batched, t_batched, c_batched = timed(lambda: sis.sis_collections(cnn, fours, **options))
        rows.append({"method": "plain sis_collections(fast=False), all digits together (lecture 05 before)",
                     "cpu s/digit": c_batched / len(fours), "wall s/digit": t_batched / len(fours),
                     "identical": batched_same(batched, theirs)})
    same = [[s.features.tolist() for s in a] == [s.features.tolist() for s in b] for a, b in zip(ours, theirs)]
    n = len(fours)
    table = pd.DataFrame([
        {"method": "mlcourse sis_collections(fast=True)", "cpu s/digit": c_ours / n, "wall s/digit": t_ours / n,
         "identical": batched_same(ours, theirs)},
        {"method": "plain sis_collection, one digit at a time (peer)", "cpu s/digit": c_theirs / n,
         "wall s/digit": t_theirs / n, "identical": "reference"},
    ] + rows)
    table["ratio (cpu)"] = table["cpu s/digit"] / table["cpu s/digit"][0]
    print(f"SIS collections of {n} MNIST fours, {args.patch}x{args.patch} patches, threshold 0.7 on p(4), "
          f"mean-image masking, {sum(map(len, ours))} SISes; torch threads={torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(table.round(3).to_string(index=False))
    print(f"identical SISes: {'yes' if all(same) else 'no'} ({sum(same)} of {n} digits)")
    return 0 if all(same) else 1


if __name__ == "__main__":
    raise SystemExit(main())
