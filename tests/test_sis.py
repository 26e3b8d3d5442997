"""Sufficient input subsets: brute-force agreement, sufficiency, disjointness, motifs, bad input."""

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from mlcourse.interpret import engines, features, scoring, sis, sis_kernel
from mlcourse.models.zeng import ARCHITECTURES


def probability(model):
    """The scores SIS thresholds with output="probability", as a plain function."""
    return lambda batch: scoring.probability(model(batch)).detach()


def mlp(n_in, seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Flatten(), nn.Linear(n_in, 8), nn.Tanh(), nn.Linear(8, 1)).double()
    return lambda batch: net(batch)[:, 0].detach()


def brute_backward_selection(f, x, masked):
    """Carter et al.'s BackSelect, literally: one candidate per call of f."""
    remaining, order, scores = list(range(x.numel())), [], []
    while remaining:
        best, best_value = None, -float("inf")
        for i in remaining:
            keep = [j for j in remaining if j != i]
            value = float(f(torch.where(_flat_mask(keep, x), x, masked)[None])[0])
            if value > best_value:
                best, best_value = i, value
        remaining.remove(best)
        order.append(best)
        scores.append(best_value)
    return order, scores


def _flat_mask(keep, x):
    mask = torch.zeros(x.numel(), dtype=torch.bool)
    mask[keep] = True
    return mask.reshape(x.shape)


def value_of(f, x, masked, mask):
    return float(f(torch.where(mask, x, masked)[None])[0])


def test_backward_selection_matches_brute_force():
    f = mlp(6)
    for seed in range(4):
        x = torch.randn(1, 6, generator=torch.Generator().manual_seed(seed)).double()
        masked = torch.zeros_like(x)
        got = sis.backward_selection(f, x, baseline=masked, batch_size=4)
        order, scores = brute_backward_selection(f, x, masked)
        assert got.order.tolist() == order
        assert torch.allclose(torch.tensor(got.scores), torch.tensor(scores, dtype=torch.float64))


def test_find_sis_is_the_shortest_sufficient_tail_and_sufficient():
    f = mlp(6, seed=1)
    x = torch.randn(1, 6, generator=torch.Generator().manual_seed(7)).double()
    masked = torch.zeros_like(x)
    full = float(f(x[None])[0])
    threshold = full - 0.05
    order, _ = brute_backward_selection(f, x, masked)
    expected = None
    for k in range(1, 7):
        kept = order[::-1][:k]
        if value_of(f, x, masked, _flat_mask(kept, x)) >= threshold:
            expected = kept
            break
    found = sis.find_sis(f, x, threshold=threshold, baseline=masked)
    assert found.features.tolist() == expected
    assert found.mask.shape == x.shape and found.mask.sum() == len(expected)
    assert value_of(f, x, masked, found.mask) >= threshold


def test_collection_is_sufficient_disjoint_and_exhausts_the_input():
    f = mlp(8, seed=2)
    X = torch.randn(6, 1, 8, generator=torch.Generator().manual_seed(1)).double()
    masked = torch.zeros(1, 8, dtype=torch.float64)
    threshold = float(f(masked[None])[0]) + 0.2
    collections = sis.sis_collections(f, X, threshold=threshold, baseline=masked, batch_size=5)
    assert any(len(c) >= 2 for c in collections)
    for x, collection in zip(X, collections):
        union = torch.zeros(1, 8, dtype=torch.bool)
        for s in collection:
            assert value_of(f, x, masked, s.mask) >= threshold
            assert s.score == pytest.approx(value_of(f, x, masked, s.mask))
            assert not (union & s.mask).any()
            union |= s.mask
        # what is left no longer reaches the threshold
        assert value_of(f, x, masked, ~union) < threshold
        assert [s.features.tolist() for s in sis.sis_collection(f, x, threshold=threshold, baseline=masked)] == \
            [s.features.tolist() for s in collection]


def test_tiny_sis_is_minimal_among_all_subsets_of_its_order():
    """On 4 features, no subset smaller than the SIS is sufficient among prefixes of its ranking."""
    f = mlp(4, seed=3)
    x = torch.randn(1, 4, generator=torch.Generator().manual_seed(3)).double()
    masked = torch.zeros_like(x)
    threshold = float(f(x[None])[0]) - 0.01
    found = sis.find_sis(f, x, threshold=threshold, baseline=masked)
    sufficient = [set(c) for k in range(1, 5) for c in itertools.combinations(range(4), k)
                  if value_of(f, x, masked, _flat_mask(list(c), x)) >= threshold]
    assert set(found.features.tolist()) in sufficient


# --------------------------------------------------------------------------- DNA

MOTIF = "TGACTCA"


def motif_model():
    """Scores the best match to MOTIF anywhere (conv + global max pool), as a probability."""
    conv = nn.Conv1d(4, 1, len(MOTIF), bias=False)
    with torch.no_grad():
        conv.weight[:] = -1.0
        for t, base in enumerate(MOTIF):
            conv.weight[0, "ACGT".index(base), t] = 1.0
    return nn.Sequential(conv, nn.AdaptiveMaxPool1d(1), nn.Flatten(), nn.Linear(1, 1))


def plant(seq, start):
    return seq[:start] + MOTIF + seq[start + len(MOTIF):]


def random_seq(length, seed):
    g = torch.Generator().manual_seed(seed)
    return "".join("ACGT"[i] for i in torch.randint(0, 4, (length,), generator=g))


def one_hot(seqs):
    from mlcourse.dna import one_hot as encode
    return encode(seqs)


def test_sis_of_a_one_motif_sequence_lies_inside_the_motif():
    model = motif_model()
    with torch.no_grad():
        model[3].weight.fill_(3.0)
        model[3].bias.fill_(-15.0)  # probability > 0.5 only for (nearly) whole matches
    f = probability(model)
    starts = [5, 20, 33]
    seqs = [plant(random_seq(45, seed), s) for seed, s in enumerate(starts)]
    X = one_hot(seqs)
    threshold = 0.7
    assert (f(X) > threshold).all()
    collections = sis.sis_collections(model, X, threshold=threshold, baseline=sis.dna_background(X[0]), mask_shape=(1, 45),
                                       output="probability")
    for start, collection in zip(starts, collections):
        assert len(collection) == 1
        positions = collection[0].mask[0].nonzero().reshape(-1)
        assert positions.min() >= start and positions.max() < start + len(MOTIF)


def test_two_motifs_give_two_disjoint_sises_one_in_each():
    model = motif_model()
    with torch.no_grad():
        model[3].weight.fill_(3.0)
        model[3].bias.fill_(-15.0)
    x = one_hot([plant(plant(random_seq(60, 11), 4), 40)])[0]
    collection = sis.sis_collection(model, x, threshold=0.7, mask_shape=(1, 60), output="probability")
    spans = sorted((int(s.mask[0].nonzero().min()), int(s.mask[0].nonzero().max())) for s in collection)
    assert len(spans) == 2
    assert 4 <= spans[0][0] and spans[0][1] < 4 + len(MOTIF)
    assert 40 <= spans[1][0] and spans[1][1] < 40 + len(MOTIF)


def test_negative_decision_explained_with_minus_f():
    """A repressor: the motif *lowers* the score; -f, -threshold finds the motif as the reason."""
    model = motif_model()
    with torch.no_grad():
        model[3].weight.fill_(-3.0)
        model[3].bias.fill_(15.0)
    f = probability(model)
    x = one_hot([plant(random_seq(40, 4), 12)])[0]
    background = sis.dna_background(x)
    threshold = 0.5
    assert float(f(x[None])[0]) < threshold < float(f(background[None])[0])
    assert sis.sis_collection(model, x, threshold=threshold, baseline=background, mask_shape=(1, 40),
                              output="probability") == []
    (reason,) = sis.sis_collection(lambda b: -f(b), x, threshold=-threshold, baseline=background, mask_shape=(1, 40))
    positions = reason.mask[0].nonzero().reshape(-1)
    assert positions.min() >= 12 and positions.max() < 12 + len(MOTIF)
    assert value_of(f, x, background, reason.mask.expand(4, 40)) <= threshold


# --------------------------------------------------------------------------- other inputs


def test_image_patches_and_tokens():
    images = torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    images[:, :, :4, :4] += 1.0
    f = lambda b: b[:, 0, :4, :4].mean(dim=(1, 2))  # noqa: E731  bright top-left block
    groups = features.patch_groups(8, 8, 4)
    assert groups.shape == (1, 8, 8) and groups.max() == 3
    found = sis.sis_collections(f, images, threshold=1.0, baseline=sis.mean_image(images) * 0, groups=groups)
    for collection in found:
        assert len(collection) == 1 and collection[0].features.tolist() == [0]
        assert collection[0].mask[0, :4, :4].all() and not collection[0].mask[0, 4:, 4:].any()
    embeddings = torch.randn(10, 3, generator=torch.Generator().manual_seed(1))
    tokens = embeddings[torch.tensor([1, 2, 3, 4, 5])]
    masked = sis.mean_embedding(embeddings, 5)
    g = lambda b: (b[:, 2] - masked[2]).abs().sum(dim=1)  # noqa: E731  only token 2 matters
    (only,) = sis.sis_collection(g, tokens, threshold=0.5 * float(g(tokens[None])[0]), baseline=masked,
                                 mask_shape=(5, 1))
    assert only.features.tolist() == [2] and only.mask.shape == (5, 1)


def test_bad_inputs():
    x = torch.rand(1, 6)
    f = lambda b: b.sum(dim=(1, 2))  # noqa: E731
    with pytest.raises(ValueError, match="does not broadcast"):
        sis.sis_collection(f, x, threshold=1.0, baseline=torch.zeros(1, 6), mask_shape=(1, 5))
    with pytest.raises(ValueError, match="baseline"):
        sis.sis_collection(f, x, threshold=1.0, baseline=torch.zeros(3, 6))
    with pytest.raises(ValueError, match="pass baseline="):
        sis.sis_collection(f, x, threshold=1.0)
    with pytest.raises(ValueError, match="one score per input"):
        sis.sis_collection(lambda b: b.sum(dim=1), x, threshold=1.0, baseline=torch.zeros(1, 6))
    with pytest.raises(ValueError, match="NaN"):
        sis.sis_collection(lambda b: b.sum(dim=(1, 2)) * float("nan"), x, threshold=1.0, baseline=torch.zeros(1, 6))
    with pytest.raises(ValueError, match="already scores"):
        sis.sis_collection(f, x, threshold=-1.0, baseline=torch.zeros(1, 6))
    with pytest.raises(ValueError, match="threshold"):
        sis.sis_collection(f, x, threshold=float("nan"), baseline=torch.zeros(1, 6))
    with pytest.raises(ValueError, match="groups"):
        sis.sis_collection(f, x, threshold=1.0, baseline=torch.zeros(1, 6), groups=torch.tensor([[0, 0, 2, 2, 2, 2]]))
    assert sis.sis_collection(f, x, threshold=float(f(x[None])[0]) + 1, baseline=torch.zeros(1, 6)) == []


def _saturating_cnn(seed):
    """A ``1layer`` CNN with large weights: probabilities round to 1.0 in float32, so exact ties abound."""
    from mlcourse.models import zeng
    torch.manual_seed(seed)
    model = zeng.build("1layer", 40).eval()
    with torch.no_grad():
        model.conv1.weight.mul_(8.0)
    return model


def test_dna_screen_gives_exactly_the_plain_path_ties_included():
    """The local-window screen (fast=True) changes only the cost: identical orders, scores and SISes."""
    for seed in range(3):
        model = _saturating_cnn(seed)
        f = probability(model)
        X = one_hot([random_seq(40, 100 + i) for i in range(6)])
        masked = sis.dna_background(X[0])
        options = dict(baseline=masked, mask_shape=(1, 40), output="probability")
        threshold = max(float(f(X).median()), float(f(masked[None])[0])) + 1e-3
        for x in X[:2]:
            fast = sis.backward_selection(model, x, fast=True, **options)
            slow = sis.backward_selection(model, x, **options)
            assert fast.order.tolist() == slow.order.tolist()
            # the scores are f's own, which in float32 vary in the last bits with the batch they sit in
            assert torch.allclose(torch.tensor(fast.scores), torch.tensor(slow.scores), rtol=1e-6, atol=0)
        ours = sis.sis_collections(model, X, threshold=threshold, batch_size=64, fast=True, **options)
        plain = sis.sis_collections(model, X, threshold=threshold, batch_size=64, **options)
        assert [[s.features.tolist() for s in c] for c in ours] == [[s.features.tolist() for s in c] for c in plain]
        assert all(abs(a.score - b.score) <= 1e-6 * b.score for c, d in zip(ours, plain) for a, b in zip(c, d))


def test_dna_screen_error_bound_holds_and_other_inputs_are_refused():
    from mlcourse.models import zeng
    torch.manual_seed(0)
    model = zeng.build("1layer", 40).eval()
    X = one_hot([random_seq(40, 7), random_seq(40, 8)])
    masked = sis.dna_background(X[0])
    inputs = sis._Inputs(X, masked, (1, 40), None, single=False, device=torch.device("cpu"))
    screen = engines.SISScreen.build(model, inputs, 64, "probability")
    keep = torch.rand(2, 40, generator=torch.Generator().manual_seed(1)) < 0.5
    approx = screen(inputs, torch.arange(2), keep)
    with torch.no_grad():
        for i in range(2):
            for p in torch.nonzero(keep[i]).reshape(-1).tolist():
                k = keep[i].clone()
                k[p] = False
                exact = float(model(torch.where(k[None, None, :], X[i], masked))[0])
                assert abs(approx[i, p] - exact) <= engines.SISScreen.LOGIT_ERROR * (1 + abs(exact)) / 10
    # a class target, groups, or a plain callable have no fast path: asking for it is an error
    with pytest.raises(ValueError, match="class target"):
        engines.SISScreen.build(model, inputs, 64, "probability", target=0)
    with pytest.raises(ValueError, match="fast=True needs"):
        engines.SISScreen.build(probability(model), inputs, 64, "raw")
    grouped = sis._Inputs(X, masked, None, torch.arange(40).reshape(1, 40) // 2, single=False,
                          device=torch.device("cpu"))
    with pytest.raises(ValueError, match="one feature per DNA position"):
        engines.SISScreen.build(model, grouped, 64, "probability")
    with pytest.raises(ValueError, match="fast=True needs"):
        sis.sis_collection(lambda b: model(b), X[0], threshold=0.5, mask_shape=(1, 40), fast=True)


def test_threshold_as_numpy_scalar_or_tensor_is_accepted():
    """Issue 15: a threshold computed with NumPy or torch is a number too."""
    f = mlp(6, seed=1)
    x = torch.randn(1, 6, generator=torch.Generator().manual_seed(7)).double()
    masked = torch.zeros_like(x)
    value = float(f(x[None])[0]) - 0.05
    want = sis.find_sis(f, x, threshold=value, baseline=masked).features.tolist()
    for threshold in (np.float32(value), np.float64(value), torch.tensor(value), np.array(value)):
        assert sis.find_sis(f, x, threshold=threshold, baseline=masked).features.tolist() == want
    with pytest.raises(ValueError, match=r"threshold must be a finite number .* got tensor\(\[1., 2.\]\)"):
        sis.find_sis(f, x, threshold=torch.tensor([1.0, 2.0]), baseline=masked)
    with pytest.raises(ValueError, match="got 'high'"):
        sis.find_sis(f, x, threshold="high", baseline=masked)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_fast_and_plain_backward_selection_agree_on_every_architecture(name):
    """The SIS screen (fast=True) on each Zeng et al. architecture: the same removal order as the definition.

    In double precision, so that candidates which tie exactly stay tied: in float32 the plain path's own
    scores move in the last bit with the batch a candidate sits in (seen on an AMD EPYC), and such noise,
    not the screen, would break the tie."""
    from mlcourse.models import zeng
    torch.manual_seed(3)
    length = max(40, zeng.min_length(name))
    model = zeng.build(name, length).eval().double()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3)  # outputs that move, so the order is not decided by ties alone
    x = one_hot([random_seq(length, 21)])[0].double()
    for output in ("probability", "raw") if name == "1layer" else ("probability",):
        options = dict(mask_shape=(1, length), output=output)
        fast = sis.backward_selection(model, x, fast=True, **options)
        plain = sis.backward_selection(model, x, **options)
        assert fast.order.tolist() == plain.order.tolist(), output
        # float32 scores of one input vary in the last bits with the batch it sits in
        assert torch.allclose(torch.tensor(fast.scores), torch.tensor(plain.scores), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("compiled", [True, False])
def test_masking_tracker_state_after_many_steps_equals_a_fresh_computation(compiled):
    """The 1-layer screen keeps its convolution and window maxima across steps: after masking many
    positions (several per input, in random order) they equal what a fresh start computes. Both trackers:
    the compiled one (the CPU's) and the torch one (other devices)."""
    from mlcourse.models import zeng
    torch.manual_seed(0)
    model = zeng.build("1layer", 40).eval()
    X = one_hot([random_seq(40, 30 + i) for i in range(4)])
    masked = sis.dna_background(X[0])
    inputs = sis._Inputs(X, masked, (1, 40), None, single=False, device=torch.device("cpu"))
    screen = engines.SISScreen.build(model, inputs, 64, "probability")
    screen.COMPILED = compiled
    rows, remaining = torch.arange(4), torch.ones(4, 40, dtype=torch.bool)
    tracker = screen.start(inputs, rows, remaining)
    assert isinstance(tracker, engines._CompiledTracker if compiled else engines._MaskingTracker)
    generator = torch.Generator().manual_seed(2)
    orders = torch.stack([torch.randperm(40, generator=generator) for _ in range(4)])
    for step in range(35):
        tracker.logits()  # refreshes some window maxima, leaves others stale
        if not compiled:
            assert torch.equal(tracker.inside.isneginf(), tracker.stale)  # a stale entry holds -inf
        tracker.remove(rows, orders[:, step])
        remaining[rows, orders[:, step]] = False
        if step % 7 == 6:
            fresh = screen.start(inputs, rows, remaining)
            assert torch.allclose(tracker.conv, fresh.conv, atol=1e-5, rtol=0)
            assert torch.allclose(tracker.bound, fresh.bound, atol=1e-5, rtol=0)
            assert torch.equal(tracker.remaining, fresh.remaining)
            got, want = tracker.logits(), fresh.logits()
            assert torch.equal(got.isnan(), ~remaining)
            assert torch.allclose(got[remaining], want[remaining], atol=1e-5, rtol=0)
            # and both are the stateless screen's values
            assert torch.allclose(got[remaining], screen(inputs, rows, remaining)[remaining], atol=1e-5, rtol=0)


def _tied_models(X, masked):
    """Every architecture the compiled tracker covers (conv -> global max pool -> elementwise), in double
    precision with weights on a grid of 1/4 so that many candidates tie exactly: the three 1-layer Zeng et al.
    models, and a padded convolution without bias and without a ReLU before its pool (so no floor of 0 for
    the pruning). Every sum is exact on that grid, so the model's scores do not depend on the batch. Where the
    fully masked input would score above the median of ``X``, the last layer's sign is flipped (the model
    then scores ``-f``), so that some of ``X`` have something to explain."""
    from mlcourse.models import zeng
    torch.manual_seed(5)
    length = X.shape[-1]
    models = {name: zeng.build(name, length) for name in ("1layer", "1layer_64motif", "1layer_128motif")}
    models["padded, no ReLU"] = nn.Sequential(
        nn.Conv1d(4, 6, 7, padding=3, bias=False), nn.MaxPool1d(length), nn.Flatten(),
        nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 1), nn.Flatten(0))
    for model in models.values():
        model.eval().double()
        with torch.no_grad():
            for p in model.parameters():
                p.copy_((p * 12).round() / 4)
            if model(masked[None])[0] > model(X).median():
                last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
                last.weight.neg_()
                last.bias.neg_()
    return models


@pytest.mark.parametrize("name", ["1layer", "1layer_64motif", "1layer_128motif", "padded, no ReLU"])
def test_compiled_and_torch_trackers_and_the_definition_give_the_same_sis(name):
    """SIS collections with the compiled tracker (fast=True on the CPU), the torch tracker (COMPILED False)
    and the one-at-a-time plain definition (fast=False) are identical, ties included, on every architecture
    the compiled tracker covers; so are the backward selections' orders."""
    length = 40
    X = one_hot([random_seq(length, 500 + i) for i in range(6)]).double()
    masked = sis.dna_background(X[0]).double()
    model = _tied_models(X, masked)[name]
    f = probability(model)
    threshold = max(float(f(X).median()), float(f(masked[None])[0])) + 1e-6
    options = dict(threshold=threshold, baseline=masked, mask_shape=(1, length), output="probability")
    found = {}
    for path in ("compiled", "torch", "plain"):
        engines.SISScreen.COMPILED = path == "compiled"
        try:
            collections = sis.sis_collections(model, X, fast=path != "plain", **options)
            orders = [sis.backward_selection(model, x, fast=path != "plain", **options_of(options)).order.tolist()
                      for x in X[:2]]
        finally:
            engines.SISScreen.COMPILED = True
        found[path] = [[s.features.tolist() for s in c] for c in collections], orders
    assert found["compiled"] == found["torch"] == found["plain"]
    assert any(len(c) for c in found["plain"][0])  # something was explained


def options_of(options):
    """SIS options without the threshold (for backward_selection)."""
    return {k: v for k, v in options.items() if k != "threshold"}


def test_compiled_kernels_equal_the_python_functions():
    """The numba kernels compute what the plain Python functions of sis_kernel do (the readable
    definition), bit for bit, on random state with padding, ties and masked candidates."""
    rng = np.random.default_rng(0)
    n, channels, length, taps, pad = 3, 4, 30, 7, 2
    span = length + 2 * pad - taps + 1 + 2 * (taps - 1)
    conv = rng.integers(-3, 4, size=(n, channels, span)).astype(float)
    conv[:, :, :taps - 1] = conv[:, :, span - taps + 1:] = -np.inf
    table = rng.integers(-2, 3, size=(3, channels, taps)).astype(float)
    codes = rng.integers(0, 3, size=(n, length))
    remaining = rng.random((n, length)) < 0.8
    which, positions = np.arange(n), rng.integers(0, length, size=n)
    results = []
    for kernels in (sis_kernel, sis_kernel.kernels()):
        state = [conv.copy(), np.full((n, channels, length), 5.0), np.ones((n, channels, length), bool)]
        kernels.mask(state[0], table, table.max(axis=-1), codes, state[1], state[2], which, positions, pad)
        inside, last = np.zeros((n, channels, length)), np.full((n, length, channels), np.nan)
        out, where = np.zeros((n * length, channels)), np.zeros(n * length, dtype=np.int64)
        count = kernels.pooled(state[0], table, codes, remaining, state[1], inside, state[2], pad, 0.0, last,
                               out, where)
        results.append((count, *state, last, out[:count], where[:count]))
    for python, compiled in zip(*results):
        assert np.array_equal(python, compiled, equal_nan=np.asarray(python).dtype == float)  # NaN: masked


@pytest.mark.parametrize("known_is_exact", [True, False])
def test_compiled_shortlist_equals_the_python_functions_and_the_selection_rule(known_is_exact):
    """sis_kernel's shortlist and choice, compiled and plain, agree bit for bit; with the shortlist's
    values replaced by the intervals' ends that the screen would find, the choice is the plain rule's
    (highest, ties to the lowest index). Intervals on a coarse grid, so that many tie; one row has
    nothing left."""
    rng = np.random.default_rng(1)
    n_rows, n_features = 6, 12
    low = rng.integers(0, 4, size=(n_rows, n_features)) / 4
    high = low + rng.integers(0, 2, size=(n_rows, n_features)) / 4
    remaining = rng.random((n_rows, n_features)) < 0.7
    remaining[-1] = False
    truth = low + (high - low) * rng.integers(0, 2, size=(n_rows, n_features))  # f's value, in the interval
    results = []
    for kernels in (sis_kernel, sis_kernel.kernels()):
        values, upper, near, scored, alone = kernels.shortlist(low, high, remaining, known_is_exact)
        values[scored] = upper[scored] = truth[scored]
        results.append((values, upper, near, scored, alone, *kernels.choose(values, upper, near, alone,
                                                                            known_is_exact)))
    for python, compiled in zip(*results):
        assert np.array_equal(python, compiled)
    chosen = results[0][5]
    for r in range(n_rows - 1):
        best = truth[r][remaining[r]].max()
        if not results[0][4][r]:  # a scored shortlist: the plain rule on f's values
            assert chosen[r] == np.flatnonzero(remaining[r] & (truth[r] == best))[0]
        assert remaining[r, chosen[r]] and high[r, chosen[r]] >= best
    assert chosen[-1] == n_features


def test_distinct_changes_equal_unique_rows():
    """The tracker's table of distinct masked-minus-original columns is ``torch.unique(dim=0)``'s, codes
    included: one-hot DNA with a scalar, a per-position and a fractional background, -0.0 against 0.0."""
    generator = torch.Generator().manual_seed(0)
    X = one_hot([random_seq(30, 400 + i) for i in range(5)])
    per_position = torch.rand(4, 30, generator=generator).round(decimals=1)
    for baseline in (0.25, per_position, torch.where(X[0] > 0, -0.0, 0.0)):
        inputs = sis._Inputs(X, baseline, (1, 30), None, single=False, device=torch.device("cpu"))
        rows = torch.tensor([4, 0, 2])
        changes, codes = engines._distinct_changes(inputs, rows, torch.float32)
        change = (inputs.fully_masked[rows] - inputs.X[rows]).transpose(1, 2).reshape(-1, 4)
        want, want_codes = torch.unique(change, dim=0, return_inverse=True)
        assert torch.equal(changes, want) and torch.equal(codes, want_codes.reshape(3, 30))


def test_sliding_max_is_max_pool():
    values = torch.randn(3, 5, 70, generator=torch.Generator().manual_seed(0))
    for width in (1, 2, 3, 7, 8, 24, 70):
        assert torch.equal(engines._sliding_max(values, width), torch.nn.functional.max_pool1d(values, width, 1))


def test_screen_without_room_for_the_tracker_recomputes_and_agrees(monkeypatch):
    """Inputs too many for the tracker's state go through the screen that recomputes each step: same SISes."""
    model = _saturating_cnn(0)
    X = one_hot([random_seq(40, 200 + i) for i in range(4)])
    masked = sis.dna_background(X[0])
    options = dict(baseline=masked, mask_shape=(1, 40), output="probability", batch_size=64)
    threshold = max(float(probability(model)(X).median()), float(probability(model)(masked[None])[0])) + 1e-3
    tracked = sis.sis_collections(model, X, threshold=threshold, fast=True, **options)
    monkeypatch.setattr(engines.SISScreen, "TRACKER_ELEMENTS", 0)
    inputs = sis._Inputs(X, masked, (1, 40), None, single=False, device=torch.device("cpu"))
    screen = engines.SISScreen.build(model, inputs, 64, "probability")
    assert isinstance(screen.start(inputs, torch.arange(4), torch.ones(4, 40, dtype=torch.bool)), engines.Recomputing)
    recomputed = sis.sis_collections(model, X, threshold=threshold, fast=True, **options)
    plain = sis.sis_collections(model, X, threshold=threshold, **options)
    features = [[[s.features.tolist() for s in c] for c in found] for found in (tracked, recomputed, plain)]
    assert features[0] == features[1] == features[2]


def test_screened_step_scores_its_shortlist_in_one_call_and_matches_the_plain_step():
    """Each screened step calls f at most once, on a shortlist of two or more (its known candidate rescored
    with the unknown ones, KNOWN_IS_EXACT being False for DNA); a shortlist of one is the choice, unscored.
    The choice is the plain step's; its recorded score is f's (to the last bits, which in float32 vary with
    the batch a row sits in) where exact, else an interval that holds f's."""
    model = _saturating_cnn(1)
    X = one_hot([random_seq(40, 300 + i) for i in range(5)])
    masked = sis.dna_background(X[0])
    inputs = sis._Inputs(X, masked, (1, 40), None, single=False, device=torch.device("cpu"))
    screen = engines.SISScreen.build(model, inputs, 64, "probability")
    assert not screen.KNOWN_IS_EXACT
    fast, plain = (sis._Scorer(model, None, "probability", 64, 5) for _ in range(2))
    rows, remaining = torch.arange(5), torch.ones(5, 40, dtype=torch.bool)
    tracker = screen.start(inputs, rows, remaining)
    unscored = 0
    for _ in range(40):
        calls = fast.calls
        chosen, low, high, exact = sis._screened_removal(fast, inputs, rows, remaining, tracker)
        assert fast.calls - calls <= 1
        expected, expected_best = sis._best_removal(plain, inputs, rows, remaining)
        assert chosen.tolist() == expected.tolist()
        assert torch.allclose(low[exact], expected_best[exact], rtol=1e-6, atol=0)
        assert torch.equal(low[exact], high[exact])
        margin = sis._Trace.MARGIN * (1 + expected_best.abs())
        assert bool(((low - margin <= expected_best) & (expected_best <= high + margin)).all())
        unscored += int((~exact).sum())
        active = torch.nonzero(chosen < 40).reshape(-1)
        remaining[active, chosen[active]] = False
        tracker.remove(active, chosen[active])
    assert unscored > 0
