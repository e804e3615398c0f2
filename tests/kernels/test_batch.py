"""The batch kernels (``kernels/batch.py``): a gate with one matrix per row, or one for all
rows, acts on each row as the single-state kernel does with that row's matrix.

The single-state kernels of ``kernels/small.py`` are these on a one-row view, and the
contract suite (``test_contract.py``) checks them against a reference; here what is checked
is that each row gets its own numbers."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit.quantum_info import Operator, Statevector, random_unitary

from gpuprovider.kernels import batch, small

DTYPES = {"double": (np.complex128, 1e-12), "single": (np.complex64, 1e-5)}
QUBIT_CHOICES = [[0], [4], [2, 0], [1, 4], [3, 1, 0], [0, 2, 4, 1]]
NUM_QUBITS = 5
SETS = 4


@pytest.fixture(params=list(DTYPES), ids=list(DTYPES))
def dtype_tolerance(request):
    return DTYPES[request.param]


def _states(dtype, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (SETS, 1 << NUM_QUBITS)
    states = rng.normal(size=shape) + 1j * rng.normal(size=shape)
    states /= np.linalg.norm(states, axis=1, keepdims=True)
    return states.astype(dtype)


def _row_by_row(states: np.ndarray, apply) -> np.ndarray:
    out = states.copy()
    for row in range(len(out)):
        apply(out[row], row)
    return out


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("qubits", QUBIT_CHOICES, ids=str)
@pytest.mark.parametrize("per_row", [True, False], ids=["per-row", "shared"])
def test_matrix(qubits, per_row, order, dtype_tolerance):
    """Against qiskit's Statevector.evolve row by row (small's kernels are these on one
    row); in a Fortran-ordered batch too (one-qubit matrices take a reshaped view of a
    C-ordered one)."""
    dtype, tolerance = dtype_tolerance
    dim = 1 << len(qubits)
    matrices = np.stack([random_unitary(dim, seed=s).data for s in range(SETS)]).astype(dtype)
    if not per_row:
        matrices = matrices[0]
    qubit_array = np.array(qubits, dtype=np.int64)
    states = np.asarray(_states(dtype, seed=len(qubits)), order=order)
    expected = np.stack([Statevector(row).evolve(
        Operator(matrices[index] if per_row else matrices), qargs=list(qubits)).data
        for index, row in enumerate(states)])
    batch.apply_matrix(states, qubit_array, matrices)
    np.testing.assert_allclose(states, expected, atol=tolerance, rtol=0)
    assert not np.allclose(states, _states(dtype, seed=len(qubits)), atol=tolerance)


@pytest.mark.parametrize("per_row", [True, False], ids=["per-row", "shared"])
def test_controlled_matrix(per_row, dtype_tolerance):
    dtype, tolerance = dtype_tolerance
    controls, targets = np.array([4, 0]), np.array([2])
    matrices = np.stack([random_unitary(2, seed=s).data for s in range(SETS)]).astype(dtype)
    if not per_row:
        matrices = matrices[0]
    states = _states(dtype, seed=9)
    expected = _row_by_row(states, lambda state, row: small.apply_controlled_matrix(
        state, controls, 0b10, targets, matrices[row] if per_row else matrices))
    batch.apply_controlled_matrix(states, controls, 0b10, targets, matrices)
    np.testing.assert_allclose(states, expected, atol=tolerance, rtol=0)


@pytest.mark.parametrize("qubits", QUBIT_CHOICES, ids=str)
@pytest.mark.parametrize("per_row", [True, False], ids=["per-row", "shared"])
def test_diagonal_and_permutation(qubits, per_row, dtype_tolerance):
    dtype, tolerance = dtype_tolerance
    dim = 1 << len(qubits)
    rng = np.random.default_rng(dim)
    phases = np.exp(1j * rng.uniform(-3, 3, (SETS, dim))).astype(dtype)
    permutation = rng.permutation(dim).astype(np.int64)
    if not per_row:
        phases = phases[0]
    qubit_array = np.array(qubits, dtype=np.int64)
    for kernel, extra in ((batch.apply_diagonal, ()), (batch.apply_permutation, (permutation,))):
        single = getattr(small, kernel.__name__)
        states = _states(dtype, seed=dim + 1)
        expected = _row_by_row(states, lambda state, row, single=single, extra=extra: single(
            state, qubit_array, *extra, phases[row] if per_row else phases))
        kernel(states, qubit_array, *extra, phases)
        np.testing.assert_allclose(states, expected, atol=tolerance, rtol=0)


def test_pauli_groups_read_every_row(dtype_tolerance):
    dtype, _ = dtype_tolerance
    states = _states(dtype, seed=3)
    x_masks = np.array([0, 0b101, 0b10010], dtype=np.int64)
    term_starts = np.array([0, 2, 3, 5], dtype=np.int64)
    z_masks = np.array([0b1, 0b11000, 0b101, 0b10, 0b10011], dtype=np.int64)
    values = batch.expectation_pauli_groups(states, x_masks, term_starts, z_masks)
    assert values.shape == (SETS, z_masks.size)
    for row in range(SETS):
        np.testing.assert_allclose(values[row], small.expectation_pauli_groups(
            states[row], x_masks, term_starts, z_masks), atol=1e-12)
    assert np.ptp(values[:, 2]) > 1e-3  # the rows differ, so each row was read


def test_allocate_gives_zero_states():
    states = batch.allocate(3, 2, np.complex64)
    assert states.dtype == np.complex64 and states.shape == (3, 4)
    np.testing.assert_array_equal(states, np.eye(4, dtype=np.complex64)[[0, 0, 0]])
