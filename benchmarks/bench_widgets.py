"""Benchmark: time from slider release (or button press) to the widget's updated output.

Releasing a slider sends one ``value`` change to the kernel; the widget recomputes,
redraws its figure and replaces its readout before the callback returns. So this
script sets each control from Python, as the browser would, and times the call.
The peer, measured in the same run on the same inputs, is the widget's plain logic
function alone (``predict_and_ism``, ``filter_report``, ...): the ratio
update / logic shows what drawing adds. The budget is one second per update
(gradient ascent is computed once when its viewer is built, so stepping through it
is just drawing). Run::

    .venv/bin/python benchmarks/bench_widgets.py [--repeats 5] [--model 1layer_128motif]

Timings depend on the machine's load: the script prints ``os.getloadavg()`` with them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

import numpy as np
import pandas as pd
import torch

from mlcourse import widgets
from mlcourse.datasets.simulate import motif_discovery
from mlcourse.interpret.compare import motif_detector
from mlcourse.interpret.maximize import class_image, dna_class_pwm
from mlcourse.models.vision import gap_cnn
from mlcourse.models.zeng import build

BUDGET = 1.0


def timed(action) -> tuple[float, float]:
    """Wall-clock and processor seconds of ``action()``.

    On a shared, loaded machine the wall time stretches while the processor time
    (summed over torch's threads) barely moves: it is the better guide to an idle laptop.
    """
    start, cpu = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - start, time.process_time() - cpu


def row(widget: str, control: str, updates: list[tuple[float, float]], logic=()) -> dict:
    """One table row. ``logic``: wall seconds of the peer (the plain function alone), if any."""
    wall = [u[0] for u in updates]
    update = statistics.median(wall)
    peer = statistics.median(logic) if logic else float("nan")
    return {"widget": widget, "control": control, "n": len(updates), "update s (median)": update,
            "update s (max)": max(wall), "cpu s (median)": statistics.median(u[1] for u in updates),
            "cpu s (max)": max(u[1] for u in updates),
            "logic alone s": peer, "update / logic": update / peer if peer > 1e-3 else float("nan"),
            "within 1 s": max(wall) < BUDGET}


def bench_sequence(model, data, repeats: int, rng) -> list[dict]:
    explorer = widgets.sequence_explorer(model, data.seqs[0])
    slider, mutate, logic = [], [], []
    for _ in range(repeats):
        slider.append(timed(lambda: setattr(explorer.position, "value",
                                            int(rng.integers(data.length)))))
        present = explorer.sequence.value[explorer.position.value]
        explorer.base.value = rng.choice([b for b in "ACGT" if b != present])  # a real change
        mutate.append(timed(explorer.mutate_button.click))
        logic.append(timed(lambda: widgets.predict_and_ism(model, explorer.sequence.value))[0])
    return [row("sequence explorer", "position slider (redraw only)", slider),
            row("sequence explorer", "mutate button (ISM + redraw)", mutate, logic)]


def bench_filters(model, data, repeats: int) -> list[dict]:
    browser = widgets.filter_browser(model, data.X)
    first, again, logic = [], [], []
    for k in range(1, repeats + 1):
        first.append(timed(lambda k=k: setattr(browser.filter, "value", k)))
        browser.bank._matches.pop(k)
        logic.append(timed(lambda k=k: widgets.filter_report(browser.bank, k))[0])
    for k in range(1, repeats + 1):
        again.append(timed(lambda k=k: setattr(browser.filter, "value", k)))
    return [row("filter browser", "filter slider, first view (JASPAR search)", first, logic),
            row("filter browser", "filter slider, seen before", again)]


def bench_ig(model, data, repeats: int) -> list[dict]:
    explorer = widgets.ig_path_explorer(model, data.X[0], steps=50)
    alphas = np.linspace(0.1, 0.9, repeats)
    updates = [timed(lambda a=a: setattr(explorer.alpha, "value", float(a))) for a in alphas]
    logic = [timed(lambda a=a: widgets.ig_path_state(explorer.path, float(a)))[0] for a in alphas]
    return [row("IG path explorer", "alpha slider", updates, logic)]


def bench_comparer(model, data) -> list[dict]:
    comparer = widgets.attribution_comparer(model, data.X[0], sites=data.sites[0])
    names, rows = list(comparer.methods), []
    for name in names[2:]:  # the first two are computed when it is built
        update = timed(lambda name=name: setattr(comparer.second, "value", name))
        rows.append(row("attribution comparer", f"method: {name} (first time)", [update],
                        [comparer._cache[name][1]]))
    cached = [timed(lambda name=name: setattr(comparer.second, "value", name)) for name in names[1:4]]
    rows.append(row("attribution comparer", "method seen before", cached))
    return rows


def bench_sis(model, data, repeats: int) -> list[dict]:
    explorer = widgets.sis_explorer(model, data.X[:repeats + 1], threshold=0.9, sites=data.sites)
    examples = [timed(lambda k=k: setattr(explorer.example, "value", k)) for k in range(1, repeats + 1)]
    logic = [explorer._cache[(k, 0.9)]["seconds"] for k in range(1, repeats + 1)]
    return [row("SIS explorer", "example picker (new SIS collection)", examples, logic)]


def bench_ascent(model, data, repeats: int) -> list[dict]:
    rows = []
    for kind, run in [("DNA", lambda: dna_class_pwm(model, data.length, steps=100)),
                      ("image", lambda: class_image(gap_cnn().eval(), torch.zeros(1, 28, 28), target=3, steps=100))]:
        box = {}
        once = timed(lambda run=run, box=box: box.update(run=run()))
        viewer = widgets.ascent_viewer(box["run"])
        updates = [timed(lambda k=k, v=viewer: setattr(v.snapshot, "value", k))
                   for k in range(repeats)]
        rows += [row("ascent viewer", f"{kind}: the 100-step ascent (once, before)", [once]),
                 row("ascent viewer", f"{kind}: snapshot slider", updates)]
    return rows


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", default="1layer_128motif")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = build(args.model).eval()
    detector = motif_detector("MAFF")  # SIS needs sequences the model is sure of
    data = motif_discovery("MAFF", n=1000, seed=0)
    bound = data.subset(np.flatnonzero(data.y == 1))
    rows = [
        *bench_sequence(model, bound, args.repeats, rng),
        *bench_filters(model, bound, args.repeats),
        *bench_ig(model, bound, args.repeats),
        *bench_comparer(model, bound),
        *bench_sis(detector, bound, args.repeats),
        *bench_ascent(model, bound, args.repeats),
    ]
    table = pd.DataFrame(rows)
    print(f"model {args.model}, {len(bound)} bound sequences of {bound.length} bp, "
          f"torch threads {torch.get_num_threads()}, cpus {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    with pd.option_context("display.width", 200, "display.max_colwidth", 45,
                           "display.float_format", "{:.3f}".format):
        print(table.to_string(index=False))
    return table


if __name__ == "__main__":
    main()
