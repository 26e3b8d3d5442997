"""Fill numba's disk cache of the ISM and SIS kernels once, at install time.

The compiled engines' inner loops (:mod:`mlcourse.interpret.ism_kernel`,
:mod:`mlcourse.interpret.sis_kernel`) are compiled by numba on first use and
kept in its on-disk cache (:func:`mlcourse.interpret.compiled.compile_loop`):
``mlcourse/interpret/__pycache__`` in a clone. A fresh clone has no cache, so
the first lecture or test process to run ISM or SIS compiles each kernel (a few
seconds of CPU each), and processes that start together all compile it.
``make install`` runs this module instead, once::

    python -m mlcourse.numba_cache

It calls the public functions on tiny random inputs, in float32 (the models'
dtype) and float64 (the exactness tests'): numba compiles one machine-code
version per combination of argument types, and every later process loads those
from the cache in milliseconds. Nothing here is needed for correctness: without
it the kernels compile on first use, as before.
"""

from __future__ import annotations

import time

import torch

__all__ = ["fill"]


def fill(length: int = 40, n: int = 6) -> list[str]:
    """Run ISM and SIS collections through their compiled kernels once per dtype; return what ran.

    ``length`` (bp) must stay within the ISM kernel's reach
    (``engines._LocalPlan.KERNEL_LENGTH``); ``n`` random sequences are used.
    """
    from mlcourse.interpret import sis
    from mlcourse.interpret.ism import saturation_mutagenesis
    from mlcourse.models.zeng import build

    torch.manual_seed(0)
    codes = torch.randint(0, 4, (n, length))
    one_hot = torch.nn.functional.one_hot(codes, 4).permute(0, 2, 1).float()  # (n, 4, length)
    ran = []
    for dtype in (torch.float32, torch.float64):
        model = build("1layer", length).eval().to(dtype)  # conv -> global max pool: the kernels' path
        X = one_hot.to(dtype)
        saturation_mutagenesis(model, X, fast=True)
        ran.append(f"ISM {dtype}")
    X = one_hot
    masked = sis.dna_background(X[0])
    for _ in range(100):  # a random model whose best input scores above the fully masked one
        model = build("1layer", length).eval()
        with torch.inference_mode():
            best, empty = float(model(X).max()), float(model(masked[None]).reshape(-1)[0])
        if best > empty:
            break
    else:
        raise RuntimeError("no random 1layer model scored an input above the masked one in 100 draws")
    # The best input reaches the threshold and the fully masked input does not: backward selection runs.
    threshold = (best + empty) / 2
    sis.sis_collections(model, X, threshold=threshold, baseline=masked, mask_shape=(1, length), fast=True)
    ran.append("SIS collections float32")
    return ran


def main() -> int:
    started = time.process_time()
    ran = fill()
    print(f"numba cache filled ({', '.join(ran)}): {time.process_time() - started:.1f} s of CPU")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
