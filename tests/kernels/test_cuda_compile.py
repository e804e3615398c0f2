"""Every CUDA kernel compiles to PTX for sm_90 (the H200), in both precisions, with no GPU.

This is what keeps a type or syntax error in ``kernels/cuda.py`` from landing unseen on
machines without a GPU: numba-cuda compiles through NVVM from the CUDA wheels.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(
    os.environ.get("NUMBA_ENABLE_CUDASIM") == "1", reason="the CUDA simulator cannot compile"
)

HOPPER = (9, 0)


def _kernel_arguments(dtype) -> dict[str, tuple]:
    """Each kernel's name and arguments shaped as the operation set passes them."""
    state = np.zeros(8, dtype=dtype)
    scalar = dtype(1)
    qubits = np.zeros(3, dtype=np.int64)
    small = np.zeros(8, dtype=dtype)
    matrix = np.zeros(64, dtype=dtype)  # flat, row-major
    floats = np.zeros(4, dtype=np.float64)
    indices = np.zeros(4, dtype=np.int64)
    one = np.int64(1)
    table = np.zeros((2, 8), dtype=np.int64)
    tile_pass = "_tile_pass_c128" if dtype is np.complex128 else "_tile_pass_c64"
    return {
        tile_pass: (state, qubits, one, indices, indices, indices, table, indices, small),
        "_fill_basis": (state, 0),
        "_matrix1": (state, one, scalar, scalar, scalar, scalar),
        "_matrix2": (state, one, one, one, one, np.zeros(16, dtype=dtype)),
        "_controlled_matrix1": (state, qubits, one, one, scalar, scalar, scalar, scalar),
        "_matrix_gather": (state, qubits, indices, matrix),
        "_permutation_gather": (state, qubits, indices, indices, small),
        "_gather_groups": (state, small, qubits, indices, one, one),
        "_wide_matrix_rows": (state, small, qubits, indices, matrix, one, one),
        "_wide_permutation_rows": (state, small, qubits, indices, indices, small, one, one),
        "_prepare": (state, qubits, indices, small),
        "_prepare_spread": (state, qubits, one, small, True),
        "_diagonal": (state, qubits, small),
        "_probability_one_partials": (state, one, floats),
        "_pauli_groups": (state, indices, indices, indices, indices, indices, floats),
        "_marginal": (state, qubits, indices, floats),
        "_project": (state, one, one, scalar, True),
        "_block_probabilities": (state, one, floats),
        "_sample_in_blocks": (state, one, floats, floats, indices, indices),
    }


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64], ids=["c128", "c64"])
def test_every_kernel_compiles_for_sm_90(dtype):
    """Every kernel with arguments of ``dtype``; a kernel made for one precision only (the
    tile pass, whose shared tile has the state's type) compiles in that one."""
    pytest.importorskip("numba.cuda", reason="numba-cuda is in the [test] extra")
    import numba
    from gpuprovider.kernels import cuda as cuda_kernels
    from numba import cuda

    arguments = _kernel_arguments(dtype)
    every_kernel = set(_kernel_arguments(np.complex128)) | set(_kernel_arguments(np.complex64))
    dispatcher_type = type(cuda_kernels._matrix1)
    launched = {
        name for name, value in vars(cuda_kernels).items()
        if isinstance(value, dispatcher_type) and not value.targetoptions.get("device")
    }
    assert launched == every_kernel, "a kernel was added or removed: list its arguments here"
    for name, args in arguments.items():
        signature = tuple(numba.typeof(arg) for arg in args)
        ptx, _ = cuda.compile_ptx(getattr(cuda_kernels, name).py_func, signature, cc=HOPPER)
        assert ".target sm_90" in ptx, name
