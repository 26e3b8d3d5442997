"""`make install`'s warm-up (mlcourse.numba_cache) runs every compiled kernel in the types the course uses."""

import numba

from mlcourse import numba_cache
from mlcourse.interpret import ism_kernel, sis_kernel


def test_fill_compiles_the_ism_kernel_in_both_dtypes_and_both_sis_kernels():
    assert numba_cache.fill() == ["ISM torch.float32", "ISM torch.float64", "SIS collections float32"]
    ism_dtypes = {signature[0].dtype for signature in ism_kernel._compiled(ism_kernel._pooled_edits_loop).signatures}
    assert ism_dtypes >= {numba.float32, numba.float64}, ism_kernel._compiled(ism_kernel._pooled_edits_loop).signatures
    kernels = sis_kernel.kernels()
    assert kernels.pooled.signatures and kernels.mask.signatures  # backward selection ran through the tracker
