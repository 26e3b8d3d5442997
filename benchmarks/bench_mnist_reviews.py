"""SIS beyond DNA: MNIST digits (CNN vs MLP) and beer-review aspects (LSTM vs CNN).

Run: ``MLCOURSE_MIRROR=/work/shared/data .venv/bin/python benchmarks/bench_mnist_reviews.py``
(about 10 minutes on 2 busy cores with the defaults; sizes are arguments).

Prints three tables, each with a ratio against the named peer measured in the same run:

1. MNIST: test accuracy of the CNN and the MLP trained on the digits at hand (with a mirror or
   cache: the embedded 5,000 digits, tested on the official 10k test set), the median size in
   pixels of the SISes of digit-4 predictions (threshold 0.7, mean-image masking, 2x2 patches)
   and the SIS seconds per digit; peer: the MLP.
2. Reviews: test MSE per aspect for the LSTM and the CNN, and the MSE of predicting the mean;
   peer: the CNN.
3. Reviews: mean SIS precision against the true rationale per aspect and model (threshold 0.8),
   and the precision of a random subset of the same size (its expectation: the rationale's share
   of the review); peer: the random subset.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd
import torch

import mlcourse
from mlcourse.datasets.mnist import load_mnist
from mlcourse.datasets.reviews import Vocab, load_reviews, rationale_precision
from mlcourse.interpret import features, sis
from mlcourse.models import text, vision
from mlcourse.train import evaluate, fit, predict


def mnist_table(epochs: int, n_digits: int, patch: int) -> pd.DataFrame:
    data = load_mnist()
    print(data)
    train, valid = data.train_valid(valid=0.1, seed=0)
    mean, groups = data.mean_image(), features.patch_groups(28, 28, patch)
    rows = []
    for name, build in [("CNN", vision.mnist_cnn), ("MLP", vision.mnist_mlp)]:
        mlcourse.setup(0, verbose=False)
        model = build()
        fit(model, train, valid, task="multiclass", epochs=epochs, progress=False)
        p4 = torch.softmax(torch.from_numpy(predict(model, data.test_x)), dim=1)[:, 4]
        fours = data.test_x[torch.nonzero((data.test_y == 4) & (p4 >= 0.7)).flatten()[:n_digits]]
        start = time.perf_counter()
        found = sis.sis_collections(model, fours, threshold=0.7, target=4, baseline=mean, groups=groups,
                                    output="probability")
        seconds = (time.perf_counter() - start) / len(fours)
        sizes = [int(s.mask.sum()) for col in found for s in col]
        rows.append({"model": name, "test accuracy": evaluate(model, (data.test_x, data.test_y), task="multiclass")["accuracy"],
                     "test digits": len(data.test_y), "SISes": len(sizes), "median SIS pixels": float(np.median(sizes)),
                     "SISes per digit": len(sizes) / len(fours), "SIS s/digit": seconds})
    table = pd.DataFrame(rows).set_index("model")
    for column in ("test accuracy", "median SIS pixels", "SIS s/digit"):
        table[f"{column} / MLP"] = table[column] / table.loc["MLP", column]
    return table


def review_tables(n: int, epochs: int, n_reviews: int, aspects) -> tuple[pd.DataFrame, pd.DataFrame]:
    mse_rows, sis_rows = [], []
    for aspect in aspects:
        splits = load_reviews(aspect, n=n, seed=0)
        vocab = Vocab.build(splits.train)
        train, valid, test = [(vocab.encode(p), torch.from_numpy(p.rating(aspect))) for p in splits]
        mse_rows.append({"aspect": aspect, "model": "mean", "test MSE": float(test[1].var(unbiased=False))})
        for name, build in [("LSTM", text.lstm_rater), ("CNN", text.cnn_rater)]:
            mlcourse.setup(0, verbose=False)
            model = build(vocab)
            fit(model, train, valid, task="regression", epochs=epochs, lr=5e-3, progress=False)
            mse_rows.append({"aspect": aspect, "model": name, "test MSE": evaluate(model, test, task="regression")["mse"]})
            high = np.flatnonzero(predict(model, test[0]) >= 0.8)[:n_reviews]
            start = time.perf_counter()
            found = sis.review_sis(model, test[0][high], threshold=0.8)
            seconds = (time.perf_counter() - start) / max(len(high), 1)
            for review, collection in zip(high, found):
                truth = splits.test.rationale_mask(int(review), aspect)
                for positions in collection:
                    sis_rows.append({"aspect": aspect, "model": name, "SIS precision": rationale_precision(positions, truth),
                                     "random subset": truth.mean(), "SIS words": len(positions), "s/review": seconds})
    mse = pd.DataFrame(mse_rows).pivot(index="aspect", columns="model", values="test MSE")
    mse["LSTM / CNN"] = mse["LSTM"] / mse["CNN"]
    precision = pd.DataFrame(sis_rows).groupby(["aspect", "model"]).agg(
        SISes=("SIS words", "size"), median_words=("SIS words", "median"), precision=("SIS precision", "mean"),
        random=("random subset", "mean"), seconds_per_review=("s/review", "first"))
    precision["precision / random"] = precision["precision"] / precision["random"]
    return mse, precision


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist-epochs", type=int, default=10)
    parser.add_argument("--digits", type=int, default=20, help="digit-4 test images explained per model")
    parser.add_argument("--patch", type=int, default=2, help="SIS feature: patch x patch pixels")
    parser.add_argument("--reviews", type=int, default=10_000, help="generated reviews (when Lei's files are absent)")
    parser.add_argument("--review-epochs", type=int, default=12)
    parser.add_argument("--explain", type=int, default=30, help="highly rated test reviews explained per model")
    parser.add_argument("--aspects", nargs="+", default=["aroma", "appearance", "palate"])
    args = parser.parse_args(argv)
    mlcourse.setup(0)
    print(f"torch threads: {torch.get_num_threads()}; load average: {os.getloadavg()[0]:.1f} (timings are noisy under load)")
    pd.set_option("display.width", 200)
    print("\n== MNIST: CNN vs MLP (peer: MLP) ==")
    print(mnist_table(args.mnist_epochs, args.digits, args.patch).round(4).to_string())
    mse, precision = review_tables(args.reviews, args.review_epochs, args.explain, args.aspects)
    print("\n== Reviews: test MSE per aspect (peer: CNN) ==")
    print(mse.round(4).to_string())
    print("\n== Reviews: SIS precision against the true rationale (peer: a random subset of the same size) ==")
    print(precision.round(3).to_string())


if __name__ == "__main__":
    main()
