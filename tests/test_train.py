"""fit / predict / evaluate / save / load: learning, early stopping, determinism, checkpoints, errors."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

import mlcourse
import mlcourse.dna
from mlcourse.datasets.simulate import motif_discovery
from mlcourse.models.zeng import build
from mlcourse.train import (
    History,
    NotConvergedWarning,
    binary_metrics,
    evaluate,
    fit,
    load,
    predict,
    save,
)


@pytest.fixture(scope="module")
def planted():
    """Simulated MAFF motif discovery, 800 sequences: train / valid / test."""
    return motif_discovery("MAFF", n=800, seed=1).split(valid=0.15, test=0.25, seed=0)


def test_one_layer_cnn_learns_a_planted_motif(planted):
    train, valid, test = planted
    mlcourse.setup(0, verbose=False)
    model = build("1layer")
    history = fit(model, train, valid, epochs=10, patience=4, batch_size=64, lr=1e-2, progress=False)
    result = evaluate(model, test)
    assert result["auc"] > 0.85  # measured 0.92; chance is 0.5
    assert result["auc"] == pytest.approx(roc_auc_score(test.y, predict(model, test)))
    assert history.valid_metric[history.best_epoch - 1] == max(history.valid_metric)


def test_same_seed_same_numbers(planted):
    train, valid, _ = planted
    runs = []
    for _ in range(2):
        mlcourse.setup(7, verbose=False)
        model = build("1layer")
        history = fit(model, train, valid, epochs=2, progress=False)
        runs.append((history.train_loss, model.conv1.weight.detach().clone()))
    assert runs[0][0] == runs[1][0]
    assert torch.equal(runs[0][1], runs[1][1])


class _Scripted(nn.Module):
    """A model whose validation AUC follows a script: 1 after epoch 2, 0 after every other epoch.

    Its one weight counts training batches (it is bumped in ``forward``, not by
    the optimizer, which runs with ``lr=0``); in eval mode it ranks perfectly
    only when the weight is 2. So epoch 2 is best, and its weight must come back.
    """

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        if self.training:
            with torch.no_grad():
                self.w += 1
            return x[:, 0] * 0 + self.w * 0  # a constant output that still has a gradient
        quality = 1.0 if float(self.w) == 2 else -1.0
        return quality * x[:, 0]


def test_early_stopping_restores_the_best_weights():
    X = torch.linspace(-1, 1, 20).reshape(20, 1)
    y = (X[:, 0] > 0).float()
    model = _Scripted()
    history = fit(model, (X, y), (X, y), epochs=10, patience=3, batch_size=100, lr=0.0, progress=False)
    assert history.valid_metric[:5] == [0.0, 1.0, 0.0, 0.0, 0.0]
    assert history.best_epoch == 2 and history.stopped_early and history.epochs == [1, 2, 3, 4, 5]
    assert model.w.item() == 2.0 and not history.still_improving


def test_fit_warns_when_it_stops_at_epochs_while_still_improving():
    X = torch.linspace(-1, 1, 20).reshape(20, 1)
    y = (X[:, 0] > 0).float()
    with pytest.warns(NotConvergedWarning, match=r"stopped at epochs=2 while the valid AUC was still improving: "
                                                 r"best 1.0000 at epoch 2"):
        history = fit(_Scripted(), (X, y), (X, y), epochs=2, patience=3, batch_size=100, lr=0.0, progress=False)
    assert history.still_improving and not history.stopped_early
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # early stopping, or no validation data: no warning
        assert not fit(_Scripted(), (X, y), (X, y), epochs=10, patience=3, lr=0.0, progress=False).still_improving
        assert not fit(_Scripted(), (X, y), epochs=2, lr=0.0, progress=False).still_improving


def test_generic_tensors_multiclass_and_tokens():
    mlcourse.setup(0, verbose=False)
    tokens = torch.randint(0, 9, (300, 8))
    labels = (tokens[:, 0] % 3).long()  # the class is the first token mod 3
    model = nn.Sequential(nn.Embedding(9, 8), nn.Flatten(), nn.Linear(8 * 8, 3))
    history = fit(model, (tokens[:240], labels[:240]), (tokens[240:], labels[240:]),
                  task="multiclass", epochs=30, lr=0.05, patience=30, progress=False)
    assert history.metric == "valid accuracy"
    assert evaluate(model, (tokens[240:], labels[240:]), task="multiclass")["accuracy"] > 0.9


def test_regression_fits_a_line():
    mlcourse.setup(0, verbose=False)
    X = torch.randn(400, 3)
    y = X @ torch.tensor([1.0, -2.0, 0.5]) + 0.3
    model = nn.Linear(3, 1)
    fit(model, (X[:300], y[:300]), (X[300:], y[300:]), task="regression", epochs=60, lr=0.05,
        patience=60, progress=False)
    assert evaluate(model, (X[300:], y[300:]), task="regression")["mse"] < 1e-3


def test_history_plot_returns_axes(planted):
    history = History(metric="valid AUC", epochs=[1, 2], train_loss=[0.7, 0.6],
                      valid_metric=[0.6, 0.8], seconds=[1.0, 1.0], best_epoch=2)
    assert history.plot().get_xlabel() == "epoch"


def test_checkpoint_round_trip(planted, tmp_path):
    _, _, test = planted
    mlcourse.setup(0, verbose=False)
    model = build("2layer")
    path = save(model, tmp_path / "ckpt" / "model.pt", epoch=3, note="test")
    again = load(path)
    assert again.architecture == "2layer" and again.checkpoint_meta == {"epoch": 3, "note": "test"}
    assert np.array_equal(predict(model, test), predict(again, test))
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temporary left behind


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    path = save(build("1layer"), tmp_path / "m.pt")
    with pytest.raises(ValueError, match="holds a '1layer' checkpoint, but the model given is '3layer'"):
        load(path, model=build("3layer"))
    with pytest.raises(ValueError, match="saved for 101 bp"):
        load(path, model=build("1layer", seq_len=150))


def test_bad_checkpoint_files(tmp_path):
    with pytest.raises(ValueError, match="no checkpoint at"):
        load(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load(junk)


def test_auc_needs_two_classes(planted):
    train, _, _ = planted
    bound = train.subset(np.flatnonzero(train.y == 1))
    with pytest.raises(ValueError, match=r"only label 1 \(\d+ rows\).*bound and unbound"):
        evaluate(build("1layer"), bound)
    with pytest.raises(ValueError, match="validation data has only label 1"):
        fit(build("1layer"), train, bound, epochs=1, progress=False)
    with pytest.raises(ValueError, match="empty"):
        binary_metrics([], [])


def test_bad_arguments(planted):
    train, valid, _ = planted
    with pytest.raises(ValueError, match="unknown task 'ranking'"):
        fit(build("1layer"), train, valid, task="ranking")
    with pytest.raises(ValueError, match="epochs must be a positive integer, got 0"):
        fit(build("1layer"), train, valid, epochs=0)
    with pytest.raises(ValueError, match="training data: 5 inputs but 4 labels"):
        fit(build("1layer"), (torch.zeros(5, 4, 101), torch.zeros(4)), valid)
    with pytest.raises(ValueError, match=r"expects one-hot DNA of shape \(N, 4, 101\)"):
        fit(build("1layer"), (torch.zeros(6, 4, 50), torch.tensor([0, 1] * 3)), None, epochs=1,
            progress=False)


def _tiny():
    mlcourse.setup(0, verbose=False)
    return nn.Sequential(nn.Flatten(), nn.Linear(8, 1))


def test_nan_and_inf_inputs_are_refused_naming_the_tensor_row_and_value():
    X, y = torch.rand(10, 4, 2), torch.tensor([0.0, 1.0] * 5)
    X[3, 1, 0] = float("nan")
    with pytest.raises(ValueError, match=r"training data X has nan at row 3 \(index \[3, 1, 0\]\)"):
        fit(_tiny(), (X, y), epochs=1, progress=False)
    X[3, 1, 0] = float("inf")
    with pytest.raises(ValueError, match=r"validation data X has inf at row 3"):
        fit(_tiny(), (torch.rand(10, 4, 2), y), (X, y), epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"X has inf at row 3"):
        predict(_tiny(), X)
    with pytest.raises(ValueError, match=r"evaluation data X has inf at row 3"):
        evaluate(_tiny(), (X, y))
    with pytest.raises(ValueError, match=r"training data labels y has nan at row 2"):
        fit(_tiny(), (torch.rand(4, 4, 2), torch.tensor([0, 1, float("nan"), 1])), epochs=1, progress=False)


@pytest.mark.parametrize("labels, message", [
    ([0, 2] * 5, r"label 2 at row 1 is not 0 or 1; more than two classes need task='multiclass'"),
    ([-1, 1] * 5, r"label -1 at row 0 is not 0 or 1 \(-1/1 labels become 0/1 with \(y \+ 1\) / 2\)"),
    ([0, 0.5] * 5, r"label 0.5 at row 1 is not 0 or 1"),
])
def test_binary_labels_outside_0_1_are_refused(labels, message):
    with pytest.raises(ValueError, match="training data labels y: " + message):
        fit(_tiny(), (torch.rand(10, 4, 2), torch.tensor(labels)), epochs=1, progress=False)
    with pytest.raises(ValueError, match=message):
        binary_metrics(labels, np.arange(10.0))


def test_multiclass_labels_must_be_class_numbers_the_model_has():
    X = torch.rand(6, 8)
    model = nn.Linear(8, 3)
    with pytest.raises(ValueError, match=r"label 3 at row 4, but the model gives 3 class scores \(labels 0..2\)"):
        fit(model, (X, torch.tensor([0, 1, 2, 0, 3, 1])), task="multiclass", epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"label -1 at row 0 is not a class number"):
        evaluate(model, (X, torch.tensor([-1, 1, 2, 0, 1, 1])), task="multiclass")
    with pytest.raises(ValueError, match=r"label 1.5 at row 1 is not a class number"):
        fit(model, (X, torch.tensor([0, 1.5, 2, 0, 1, 1])), task="multiclass", epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"task='binary' needs one logit per example, the model gives \(2, 3\)"):
        fit(model, (X, torch.tensor([0, 1] * 3)), epochs=1, progress=False)


def test_dtypes_are_converted_or_named():
    dna = mlcourse.dna.one_hot(["ACGTACGT", "TTTTACGT"] * 4)
    y = torch.tensor([1, 0] * 4)
    model = _tiny()
    model[1] = nn.Linear(32, 1)
    history = fit(model, (dna.long(), y), epochs=1, progress=False)  # int64 one-hot: made float32
    assert np.isfinite(history.train_loss).all()
    assert np.allclose(predict(model, dna.double()), predict(model, dna), atol=1e-6)  # float64: converted
    assert np.allclose(predict(model, dna.bool()), predict(model, dna))
    with pytest.raises(ValueError, match=r"X holds torch.uint8 values up to 255: convert it to float first"):
        predict(model, torch.full((2, 4, 8), 255, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"X must be numbers .* got an array of <U8; DNA strings .*one_hot"):
        predict(model, ["ACGTACGT"])
    with pytest.raises(ValueError, match=r"the model cannot take X of dtype torch.int64 and shape \(2, 8\)"):
        predict(nn.Linear(8, 1), torch.ones(2, 8, dtype=torch.long))


def test_diverging_training_is_an_error_not_a_nan_history():
    X = torch.randn(64, 8) * 1e3
    y = torch.randn(64) * 1e3
    with pytest.raises(ValueError, match=r"training loss became (nan|inf) at epoch \d+.*smaller lr \(now 1e\+30\)"):
        fit(nn.Linear(8, 1), (X, y), task="regression", epochs=5, lr=1e30, progress=False)


def test_save_to_a_folder_names_it(tmp_path):
    with pytest.raises(ValueError, match=r"is a folder: save to a file in it, e.g. .*model.pt"):
        save(build("1layer"), tmp_path)
    with pytest.raises(ValueError, match="cannot write /dev/null/x/m.pt"):
        save(build("1layer"), "/dev/null/x/m.pt")
