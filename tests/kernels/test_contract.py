"""The KernelSet contract: one test body per operation, run on every kernel set present.

Each test takes ``case`` (a :class:`~support.kernels.KernelCase`: the CPU always; the CUDA
kernels where numba-cuda has a device) and checks the operation against NumPy or
``qiskit.quantum_info``, in complex128 and complex64, on the CPU both below and above
``POLICY.parallel_min_qubits`` (the serial and the chunked parallel path). On a machine without
a GPU, ``test_contract_under_the_cuda_simulator`` reruns this file in a subprocess with
``NUMBA_ENABLE_CUDASIM=1``, where only the CUDA kernels run (small states: the simulator runs
every CUDA thread in Python). Checks of one device's own mechanisms close the file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from gpuprovider.kernels.interface import OPERATIONS, KernelSet, Marker
from gpuprovider.kernels.policy import CPU_POLICY, GPU_POLICY
from gpuprovider.kernels.tiles import (
    CONDITION_MASK,
    CONTROLLED1,
    DENSE1,
    DENSE2,
    DIAGONAL,
    DIAGONAL_OUTSIDE,
    GATHER,
    GATHER_DIM,
    KIND,
    encode_tile_pass,
)
from qiskit.circuit.library import UnitaryGate
from qiskit.quantum_info import Operator, Pauli, Statevector, random_unitary
from scipy import stats
from support.kernels import (
    SIMULATED,
    KernelCase,
    TileGate,
    controlled_reference,
    evolve,
    group_test_labels,
    grouped_paulis,
    inverse_cdf,
    kernel_case,
    kernel_params,
    pauli_labels,
    pauli_masks,
    qubit_lists,
    random_state,
    random_unitary_matrix,
    sparse_state,
    unitary_with_first_column,
)
from conftest import SHARD_VARIABLE
from testkit import random_circuit

from gpuprovider.compile.lower import lower_circuit
from gpuprovider.compile.plan import plan_ops, planned
from gpuprovider.compile.program import (
    ControlledOp,
    DiagonalOp,
    MatrixOp,
    PermutationOp,
    TileOp,
)

ATOL = {np.complex128: 1e-12, np.complex64: 2e-6}
"""Amplitudes of a random 15-qubit state are ~5e-3, so a wrong index fails far above these."""
SERIAL_QUBITS = 5
"""The small fixed states of the examples below (basis states, bad arguments)."""


@pytest.fixture(params=kernel_params())
def case(request) -> KernelCase:
    return kernel_case(request.param)


@pytest.fixture(params=[np.complex128, np.complex64], ids=["c128", "c64"])
def dtype(request):
    return request.param


@pytest.fixture(params=["serial", "parallel"])
def num_qubits(request, case: KernelCase) -> int:
    if request.param not in case.sizes:
        pytest.skip(f"{case.name} has no {request.param} path")
    return case.sizes[request.param]


def put(case: KernelCase, host: np.ndarray):
    return case.module.from_host(host)


def pauli_label(x_mask: int, z_mask: int, num_qubits: int) -> str:
    """The Qiskit label of the Pauli ``(x_mask, z_mask)`` (the inverse of ``pauli_masks``)."""
    def char(q: int) -> str:
        return "IXZY"[((x_mask >> q) & 1) | (((z_mask >> q) & 1) << 1)]

    return "".join(char(q) for q in range(num_qubits - 1, -1, -1))


# --- the interface ---------------------------------------------------------------------------


def test_module_is_a_kernel_set(case):
    module = case.module
    assert isinstance(module, KernelSet)
    missing = [name for name in OPERATIONS if not callable(getattr(module, name, None))]
    assert not missing, missing
    assert module.POLICY is {"cpu": CPU_POLICY, "small": CPU_POLICY, "cuda": GPU_POLICY}[case.name]
    for stale in ("TILE_QUBITS", "TILE_LOW_QUBITS", "TILE_LANE_QUBITS", "FUSION_MAX_QUBITS",
                  "DIAGONAL_MAX_QUBITS", "GATE_COST", "PARALLEL_MIN_QUBITS", "PLAN_MIN_QUBITS",
                  "MAX_MATRIX_QUBITS", "NAME"):
        assert not hasattr(module, stale), f"{stale} belongs to the device policy"


def test_parallel_case_is_above_threshold():
    cpu_case = kernel_case("cpu")
    assert cpu_case.sizes["serial"] < CPU_POLICY.parallel_min_qubits < cpu_case.sizes["parallel"]


def test_allocate_is_all_zeros_basis_state(case, num_qubits, dtype):
    stream = case.module.new_stream()
    for state in (case.module.allocate(num_qubits, dtype, stream),
                  case.module.allocate(num_qubits, dtype)):
        expected = np.zeros(1 << num_qubits)
        expected[0] = 1
        host = case.host(state)
        assert host.dtype == dtype
        np.testing.assert_array_equal(host, expected)


def test_from_host_and_to_host_copy(case, num_qubits, dtype):
    source = random_state(num_qubits, dtype, seed=93)
    state = case.module.from_host(source, case.module.new_stream())
    source[0] = 7  # the state holds a copy
    host = case.host(state)
    assert isinstance(host, np.ndarray) and host.dtype == dtype
    np.testing.assert_array_equal(host, random_state(num_qubits, dtype, seed=93))
    host[1] = 3
    assert case.host(state)[1] != 3
    np.testing.assert_array_equal(case.host(case.module.from_host(host)), host)


def test_markers_complete_after_synchronize(case, dtype):
    module = case.module
    state = module.allocate(SERIAL_QUBITS, dtype, module.new_stream())
    hadamard = (np.array([[1, 1], [1, -1]]) / np.sqrt(2)).astype(dtype)
    module.apply_matrix(state, np.array([1], dtype=np.int64), hadamard)
    marker = module.record_marker(state)
    assert isinstance(marker, Marker)
    assert marker.query() in (True, False)  # never blocks
    module.synchronize(state)
    assert marker.query() is True
    assert marker.wait() is None
    module.release(state)


# --- unitary operations -------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_apply_matrix_matches_qiskit(case, num_qubits, dtype, k):
    for index, qubits in enumerate(qubit_lists(num_qubits, k, seed=k)):
        host = random_state(num_qubits, dtype, seed=10 * k + index)
        matrix = random_unitary(1 << k, seed=k + index).data.astype(dtype)
        expected = evolve(host, matrix, qubits)
        state = put(case, host)
        case.module.apply_matrix(state, qubits, matrix)
        observed = case.host(state)
        assert observed.dtype == dtype
        np.testing.assert_allclose(observed, expected, rtol=0, atol=ATOL[dtype])


def test_apply_matrix_argument_order_matters(case):
    """CX(control=0, target=1) and CX(1, 0) differ; the kernel must tell them apart."""
    cx = np.array([[1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0], [0, 1, 0, 0]], dtype=complex)
    plus_zero = np.array([1, 1, 0, 0], dtype=complex) / np.sqrt(2)  # q0 = |+>, q1 = |0>
    forward = put(case, plus_zero)
    case.module.apply_matrix(forward, np.array([0, 1], dtype=np.int64), cx)
    backward = put(case, plus_zero)
    case.module.apply_matrix(backward, np.array([1, 0], dtype=np.int64), cx)
    np.testing.assert_allclose(case.host(forward), np.array([1, 0, 0, 1]) / np.sqrt(2),
                               atol=1e-15)
    np.testing.assert_allclose(case.host(backward), plus_zero, atol=1e-15)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_apply_diagonal_matches_qiskit(case, num_qubits, dtype, k):
    rng = np.random.default_rng(k)
    for index, qubits in enumerate(qubit_lists(num_qubits, k, seed=k)):
        host = random_state(num_qubits, dtype, seed=20 * k + index)
        diagonal = np.exp(1j * rng.uniform(0, 2 * np.pi, 1 << k)).astype(dtype)
        expected = evolve(host, np.diag(diagonal), qubits)
        state = put(case, host)
        case.module.apply_diagonal(state, qubits, diagonal)
        np.testing.assert_allclose(case.host(state), expected, rtol=0, atol=ATOL[dtype])


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_apply_permutation_matches_qiskit(case, num_qubits, dtype, k):
    rng = np.random.default_rng(k)
    for index, qubits in enumerate(qubit_lists(num_qubits, k, seed=k)):
        host = random_state(num_qubits, dtype, seed=30 * k + index)
        permutation = rng.permutation(1 << k).astype(np.int64)
        if k == 1:
            permutation = np.array([1, 0], dtype=np.int64)
        phases = np.exp(1j * rng.uniform(0, 2 * np.pi, 1 << k)).astype(dtype)
        matrix = np.zeros((1 << k, 1 << k), dtype=complex)
        matrix[np.arange(1 << k), permutation] = phases
        expected = evolve(host, matrix, qubits)
        state = put(case, host)
        case.module.apply_permutation(state, qubits, permutation, phases)
        np.testing.assert_allclose(case.host(state), expected, rtol=0, atol=ATOL[dtype])


def controlled_cases(num_qubits: int) -> list[tuple[list[int], int, list[int]]]:
    """(controls, control_state, targets): controls above, below and between the targets,
    control states not all ones."""
    top = num_qubits - 1
    return [
        ([top, 0], 0b01, [2]),
        ([1], 0, [3]),
        ([3, 0, 4], 0b101, [1]),
        ([1], 1, [3, 0]),
        ([2, top], 0b10, [3, 0]),
        ([top], 0, [1, 2, 0]),
    ]


WIDE_CONTROLLED_CASES = [  # (controls, control_state, targets) on 6 qubits
    ([], 0, [4]),
    ([], 0, [5, 1, 3]),
    ([5, 0], 0b01, [2]),
    ([3, 0, 4, 1, 5], 0b10110, [2]),
    ([1], 1, [3, 0]),
    ([2, 5], 0b10, [4, 0]),
    ([5], 0, [1, 2, 0]),
    ([4], 0, [0, 1, 2, 3, 5]),
]
"""No controls (apply_matrix), one target (the unrolled kernels), up to five targets (the
gather), with many controls."""


def _apply_controlled(case, host, controls, control_state, targets, matrix):
    state = put(case, host)
    case.module.apply_controlled_matrix(state, np.array(controls, dtype=np.int64),
                                        control_state, np.array(targets, dtype=np.int64),
                                        matrix)
    return case.host(state)


def test_apply_controlled_matrix_matches_qiskit(case, num_qubits, dtype):
    """Against the full matrix of Qiskit's ``UnitaryGate(m).control(c, ctrl_state=...)`` on
    ``controls + targets`` (Qiskit puts the controls first, control ``j`` on bit ``j``)."""
    for index, (controls, control_state, targets) in enumerate(controlled_cases(num_qubits)):
        host = random_state(num_qubits, dtype, seed=300 + index)
        matrix = random_unitary(1 << len(targets), seed=index).data
        gate = UnitaryGate(matrix).control(len(controls), ctrl_state=control_state)
        expected = evolve(host, Operator(gate).data, controls + targets)
        observed = _apply_controlled(case, host, controls, control_state, targets,
                                     matrix.astype(dtype))
        assert observed.dtype == dtype
        np.testing.assert_allclose(observed, expected, rtol=0, atol=ATOL[dtype])


def test_apply_controlled_matrix_on_up_to_five_targets(case, dtype):
    rng = np.random.default_rng(5)
    for controls, control_state, targets in WIDE_CONTROLLED_CASES:
        host = random_state(6, dtype, seed=len(controls) + 10 * len(targets))
        matrix = random_unitary_matrix(rng, 1 << len(targets), dtype)
        expected = controlled_reference(host, controls, control_state, targets, matrix)
        observed = _apply_controlled(case, host, controls, control_state, targets, matrix)
        np.testing.assert_allclose(observed, expected, rtol=0, atol=ATOL[dtype])
        assert np.abs(observed).max() > 0.01


@pytest.mark.parametrize("k", [1, 2])
def test_apply_controlled_matrix_with_many_controls(case, num_qubits, dtype, k):
    """All qubits but the targets and one spare are controls (11 on 15 qubits: an mcx)."""
    targets = [1, 3][:k]
    controls = [q for q in range(num_qubits - 1, -1, -1) if q not in targets][:-1]
    control_state = int(np.random.default_rng(k).integers(1 << len(controls)))
    host = random_state(num_qubits, dtype, seed=310 + k)
    matrix = random_unitary(1 << k, seed=k).data
    expected = controlled_reference(host, controls, control_state, targets, matrix)
    changed = np.flatnonzero(~np.isclose(expected, host, rtol=0, atol=1e-7))
    assert changed.size == 2 << k, "the reference changes exactly one group's 2 * 2**k amplitudes"
    observed = _apply_controlled(case, host, controls, control_state, targets,
                                 matrix.astype(dtype))
    np.testing.assert_allclose(observed, expected, rtol=0, atol=ATOL[dtype])


def test_apply_controlled_matrix_without_controls_is_apply_matrix(case, dtype):
    qubits = np.array([3, 1], dtype=np.int64)
    matrix = random_unitary(4, seed=5).data.astype(dtype)
    host = random_state(SERIAL_QUBITS, dtype, seed=320)
    expected = put(case, host)
    case.module.apply_matrix(expected, qubits, matrix)
    observed = _apply_controlled(case, host, [], 0, qubits, matrix)
    np.testing.assert_array_equal(observed, case.host(expected))


@pytest.mark.parametrize(
    ("controls", "control_state", "targets", "message"),
    [([1, 2], 0, [2], "distinct"), ([1, 1], 0, [2], "distinct"), ([1, 2], 4, [0], "fit")],
)
def test_apply_controlled_matrix_rejects_bad_layouts(case, controls, control_state, targets,
                                                     message):
    host = random_state(SERIAL_QUBITS, np.complex128, seed=321)
    with pytest.raises(ValueError, match=message):
        _apply_controlled(case, host, controls, control_state, targets,
                          np.eye(2, dtype=complex))


WIDE_QUBITS = 8
"""The state of the wide-matrix checks: room for 7 targets and a control."""


@pytest.mark.parametrize("batch", ["whole", "batched"])
def test_matrices_and_permutations_of_any_width(case, dtype, batch, monkeypatch):
    """Matrices and permutations on 6-7 qubits, plain and controlled (the GPU copies their
    groups to a scratch array first; "batched" makes it do so two groups at a time)."""
    if batch == "batched":
        if not hasattr(case.module, "WIDE_SCRATCH_AMPLITUDES"):
            pytest.skip(f"{case.name} applies wide matrices without a scratch array")
        monkeypatch.setattr(case.module, "WIDE_SCRATCH_AMPLITUDES", 2 << 6)
    rng = np.random.default_rng(6)
    for k in (6, 7):
        wide_lists = [np.arange(k - 1, -1, -1)] + [rng.permutation(WIDE_QUBITS)[:k] for _ in "ab"]
        for index, qubits in enumerate(q.astype(np.int64) for q in wide_lists):
            host = random_state(WIDE_QUBITS, dtype, seed=40 * k + index)
            matrix = random_unitary_matrix(rng, 1 << k, dtype)
            state = put(case, host)
            case.module.apply_matrix(state, qubits, matrix)
            np.testing.assert_allclose(case.host(state), evolve(host, matrix, qubits), rtol=0,
                                       atol=ATOL[dtype])
            permutation = rng.permutation(1 << k).astype(np.int64)
            phases = np.exp(1j * rng.uniform(0, 2 * np.pi, 1 << k)).astype(dtype)
            permuted = np.zeros((1 << k, 1 << k), dtype=complex)
            permuted[np.arange(1 << k), permutation] = phases
            state = put(case, host)
            case.module.apply_permutation(state, qubits, permutation, phases)
            np.testing.assert_allclose(case.host(state), evolve(host, permuted, qubits),
                                       rtol=0, atol=ATOL[dtype])
    for controls, control_state, targets in (([7], 1, [0, 1, 2, 3, 4, 5]),
                                             ([0, 6], 0b10, [5, 1, 7, 2, 3, 4]),
                                             ([3], 0, [7, 6, 5, 4, 2, 1, 0])):
        host = random_state(WIDE_QUBITS, dtype, seed=len(controls) + 7 * len(targets))
        matrix = random_unitary_matrix(rng, 1 << len(targets), dtype)
        expected = controlled_reference(host, controls, control_state, targets, matrix)
        observed = _apply_controlled(case, host, controls, control_state, targets, matrix)
        np.testing.assert_allclose(observed, expected, rtol=0, atol=ATOL[dtype])
        assert np.abs(observed - host).max() > 0.01


def _tile_test_ops(rng, num_qubits, dtype):
    """Gates of every tile-pass kind, cycled: dense on 1-3 qubits, a CX, diagonals, and
    controlled gates with one or two targets (controls in and out of the tile)."""
    def qubits(k):
        return rng.choice(num_qubits, k, replace=False).astype(np.int64)

    ops = []
    for _ in range(3):
        ops.append(MatrixOp(qubits(1), random_unitary_matrix(rng, 2, dtype)))
        low = int(rng.integers(2))  # a control every 2-low-qubit tile holds
        control, target = rng.choice(np.delete(np.arange(num_qubits), low), 2, replace=False)
        ops.append(ControlledOp(np.array([control, low]), int(rng.integers(4)),
                                np.array([target]), random_unitary_matrix(rng, 2, dtype)))
        ops.append(DiagonalOp(qubits(3), np.exp(1j * rng.normal(size=8)).astype(dtype)))
        ops.append(PermutationOp(qubits(2), np.array([0, 3, 2, 1]), np.ones(4, dtype=dtype)))
        q = qubits(4)
        ops.append(ControlledOp(q[:2], 0b10, q[2:], random_unitary_matrix(rng, 4, dtype)))
        ops.append(MatrixOp(qubits(2), random_unitary_matrix(rng, 4, dtype)))
        ops.append(MatrixOp(qubits(3), random_unitary_matrix(rng, 8, dtype)))
    return ops


def _reference(host: np.ndarray, op) -> np.ndarray:
    """``op`` applied by NumPy / Qiskit."""
    if isinstance(op, MatrixOp):
        return evolve(host, op.matrix, op.qubits)
    if isinstance(op, DiagonalOp):
        return evolve(host, np.diag(op.diagonal), op.qubits)
    if isinstance(op, PermutationOp):
        dim = op.permutation.size
        matrix = np.zeros((dim, dim), dtype=complex)
        matrix[np.arange(dim), op.permutation] = op.phases
        return evolve(host, matrix, op.qubits)
    return controlled_reference(host, op.controls.tolist(), op.control_state,
                                op.targets.tolist(), op.matrix)


@pytest.mark.parametrize("lanes", [0, 2], ids=["ascending", "lanes"])
def test_apply_tile_pass_matches_the_gates(case, dtype, lanes, monkeypatch):
    """Tile passes the planner makes with the device's policy, shrunk to 5-qubit tiles so
    that 8 qubits make 8 chunks: every row kind, controls outside the tile, diagonals on
    qubits outside it; with lanes, tiles whose local order is not ascending. Applying the
    passes gives the unplanned gates' state."""
    if SIMULATED:  # fewer threads than a tile has amplitudes: every loop strides
        monkeypatch.setattr(case.module, "TILE_THREADS", 4)
    policy = replace(case.module.POLICY.plan_policy(dtype), tile_qubits=5, low_qubits=2,
                     lane_qubits=lanes, parallel_min_qubits=0)
    num_qubits = 8
    rng = np.random.default_rng(8)
    ops = _tile_test_ops(rng, num_qubits, dtype)
    passes = plan_ops(ops, num_qubits, dtype, policy)
    assert all(isinstance(op, TileOp) and op.tile_qubits.size == 5 for op in passes)
    rows = np.concatenate([op.table for op in passes])
    assert set(rows[:, KIND]) == {DENSE1, DENSE2, GATHER, CONTROLLED1, DIAGONAL}
    assert np.any(rows[:, CONDITION_MASK]), "no control outside a tile"
    assert rows[rows[:, KIND] == DIAGONAL, DIAGONAL_OUTSIDE].max() > 0, \
        "no diagonal reaching out of a tile"
    host = random_state(num_qubits, dtype, seed=81)
    expected = host.astype(np.complex128)
    for op in ops:
        expected = _reference(expected, op)
    state = put(case, host)
    for op in passes:
        case.module.apply_tile_pass(state, op.tile_pass)
    np.testing.assert_allclose(case.host(state), expected, atol=10 * ATOL[dtype])
    assert np.abs(expected).max() > 0.01


def test_apply_tile_pass_with_the_device_policy_matches_the_circuit(case, dtype, monkeypatch):
    """A random circuit planned as the device plans it, on a state that several chunks cut."""
    if case.name == "small":
        pytest.skip("the CPU plans no state as small as the NumPy kernels run")
    if SIMULATED:
        monkeypatch.setattr(case.module, "TILE_THREADS", 8)
    num_qubits = max(case.sizes.values()) if case.name == "cpu" else 8
    circuit = random_circuit(num_qubits, 30, seed=4)
    program = lower_circuit(circuit, np.dtype(dtype), where="test")
    ops = planned(program, case.module.POLICY.plan_policy(dtype)).ops
    assert any(isinstance(op, TileOp) for op in ops)
    state = case.module.allocate(num_qubits, dtype)
    for op in ops:
        op.apply(case.module, state)
    expected = Statevector(circuit.remove_final_measurements(inplace=False)).data
    np.testing.assert_allclose(case.host(state), expected, atol=10 * ATOL[dtype])


def test_apply_tile_pass_beyond_the_tile_limit_is_refused(case, dtype):
    policy = case.module.POLICY
    if policy.memory_kind == "host":
        pytest.skip(f"{case.name} tiles need no fixed fast memory")
    limit = policy.tile_qubits[np.dtype(dtype).itemsize]
    state = case.module.allocate(limit + 1, dtype)
    gate = TileGate("dense", (0,), np.eye(2, dtype=dtype))
    tile_pass = encode_tile_pass(list(range(limit + 1)), [gate], np.dtype(dtype))
    with pytest.raises(ValueError, match=f"at most {limit}"):
        case.module.apply_tile_pass(state, tile_pass)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_prepare_qubits_matches_qiskit(case, num_qubits, dtype, k):
    """Qubits in |0> (the others in a random state) are put into ``amplitudes``; the result
    equals applying any unitary whose first column is ``amplitudes``."""
    indices = np.arange(1 << num_qubits)
    for index, qubits in enumerate(qubit_lists(num_qubits, k, seed=k)):
        host = random_state(num_qubits, np.complex128, seed=100 * k + index)
        mask = sum(1 << int(q) for q in qubits)
        host[(indices & mask) != 0] = 0
        host = (host / np.linalg.norm(host)).astype(dtype)
        amplitudes = random_state(k, dtype, seed=200 * k + index)
        expected = evolve(host, unitary_with_first_column(amplitudes), qubits)
        state = put(case, host)
        case.module.prepare_qubits(state, qubits, amplitudes)
        observed = case.host(state)
        assert observed.dtype == dtype
        np.testing.assert_allclose(observed, expected, rtol=0, atol=ATOL[dtype])


@pytest.mark.parametrize("prepared", [[4, 1, 2], [4, 1, 2, 5, 3]], ids=["per-group", "spread"])
def test_prepare_qubits_after_a_gate(case, dtype, prepared):
    """A rotated qubit, then 3 (one thread per group) or 5 (one per amplitude on the GPU)
    prepared ones."""
    rng = np.random.default_rng(7)
    qubits = np.array(prepared, dtype=np.int64)
    amplitudes = random_state(len(prepared), dtype, seed=71)
    rotation = random_unitary_matrix(rng, 2, dtype)
    state = case.module.allocate(6, dtype)
    case.module.apply_matrix(state, np.array([0], dtype=np.int64), rotation)
    case.module.prepare_qubits(state, qubits, amplitudes)
    expected = np.zeros(64, dtype=complex)
    expected[0] = 1
    expected = evolve(expected, rotation, [0])
    expected = evolve(expected, unitary_with_first_column(amplitudes), qubits)
    np.testing.assert_allclose(case.host(state), expected, atol=ATOL[dtype])


# --- measurement and read-out -------------------------------------------------------------------


def test_expectation_pauli_matches_qiskit(case, num_qubits, dtype):
    """Summed in float64 from the stored amplitudes, so even complex64 states match Qiskit's
    double-precision value of the same amplitudes to rounding."""
    host = random_state(num_qubits, dtype, seed=330)
    reference = Statevector(host.astype(np.complex128))
    state = put(case, host)
    for label in pauli_labels(num_qubits, seed=num_qubits):
        value = case.module.expectation_pauli(state, *pauli_masks(label))
        expected = reference.expectation_value(Pauli(label))
        assert isinstance(value, complex) and value.imag == 0, label
        assert value == pytest.approx(expected, abs=1e-12), label


def test_expectation_paulis_of_one_x_mask_match_qiskit_in_one_call(case, num_qubits, dtype):
    """Every term sharing an X-mask (identity, Z strings, X/Y mixes) in one pass."""
    host = random_state(num_qubits, dtype, seed=332)
    reference = Statevector(host.astype(np.complex128))
    state = put(case, host)
    labels = pauli_labels(num_qubits, seed=num_qubits + 1)
    groups: dict[int, list[str]] = {}
    for label in labels + [label.replace("Y", "X") for label in labels]:
        groups.setdefault(pauli_masks(label)[0], []).append(label)
    assert any(len(group) > 1 for group in groups.values())
    for x_mask, group in groups.items():
        z_masks = np.array([pauli_masks(label)[1] for label in group], dtype=np.int64)
        values = case.module.expectation_paulis(state, x_mask, z_masks)
        assert values.dtype == np.float64
        expected = [reference.expectation_value(Pauli(label)).real for label in group]
        np.testing.assert_allclose(values, expected, atol=1e-12, err_msg=str(group))


def test_expectation_pauli_of_eigenstates(case):
    """|+i> on qubit 0 and |1> on qubit 2: <Y0> = 1, <Z2> = -1, <Y0 Z2> = -1, <X0> = 0."""
    host = np.zeros(8, dtype=complex)
    host[0b100] = 1 / np.sqrt(2)
    host[0b101] = 1j / np.sqrt(2)
    state = put(case, host)
    expected = {"IIY": 1, "ZII": -1, "ZIY": -1, "IIX": 0, "IZI": 1}
    for label, value in expected.items():
        observed = case.module.expectation_pauli(state, *pauli_masks(label))
        assert observed == pytest.approx(value, abs=1e-15)


@pytest.mark.parametrize(("x_mask", "z_mask"), [(1 << SERIAL_QUBITS, 0), (0, -1)])
def test_expectation_pauli_rejects_masks_beyond_the_state(case, x_mask, z_mask):
    state = put(case, random_state(SERIAL_QUBITS, np.complex128, seed=331))
    with pytest.raises(ValueError, match="must name qubits 0 .. 4"):
        case.module.expectation_pauli(state, x_mask, z_mask)


def _pauli_group_sizes(case: KernelCase) -> list[int]:
    """Below and above the CPU's chunked Pauli kernel and its parallel threshold."""
    if case.name == "cpu":
        return [case.sizes["serial"], case.module.PAULI_CHUNK_QUBITS + 1,
                case.sizes["parallel"]]
    return [case.sizes["serial"]]


def test_expectation_pauli_groups_match_qiskit(case, dtype):
    """Every term of every group in one call, against Qiskit's value of the same stored
    amplitudes."""
    for qubits in _pauli_group_sizes(case):
        host = random_state(qubits, dtype, seed=333)
        reference = Statevector(host.astype(np.complex128))
        x_masks, term_starts, z_masks, labels = grouped_paulis(
            group_test_labels(qubits, seed=qubits))
        assert np.diff(term_starts).max() > 10 and 0 in x_masks
        values = case.module.expectation_pauli_groups(put(case, host), x_masks, term_starts,
                                                      z_masks)
        assert values.dtype == np.float64 and values.shape == (len(labels),)
        expected = [reference.expectation_value(Pauli(label)).real for label in labels]
        tolerance = 1e-10 if dtype is np.complex128 else 1e-5
        np.testing.assert_allclose(values, expected, atol=tolerance, err_msg=str(qubits))


def test_expectation_pauli_groups_with_empty_and_long_groups(case, dtype):
    """x = 0, x on low qubits, x with the top qubit, an empty group, and a group with more
    terms than a GPU thread sums at once (``PAULI_SLICE``)."""
    rng = np.random.default_rng(15)
    host = random_state(6, dtype, seed=151)
    reference = Statevector(host.astype(np.complex128))
    x_masks = np.array([0, 0b000011, 0b100110, 0b010000, 0b111111], dtype=np.int64)
    term_starts = np.array([0, 11, 14, 17, 17, 18], dtype=np.int64)
    z_masks = rng.integers(0, 64, size=term_starts[-1]).astype(np.int64)
    values = case.module.expectation_pauli_groups(put(case, host), x_masks, term_starts,
                                                  z_masks)
    assert values.dtype == np.float64
    expected = [
        reference.expectation_value(Pauli(pauli_label(int(x_mask), int(z_mask), 6))).real
        for g, x_mask in enumerate(x_masks)
        for z_mask in z_masks[term_starts[g]:term_starts[g + 1]]
    ]
    np.testing.assert_allclose(values, expected, atol=1e-12)


def test_expectation_pauli_groups_of_no_terms(case):
    n = case.sizes.get("parallel", case.sizes["serial"])
    state = put(case, random_state(n, np.complex128, seed=334))
    empty = np.zeros(0, dtype=np.int64)
    assert case.module.expectation_pauli_groups(state, empty, np.zeros(1, np.int64),
                                                empty).shape == (0,)
    x_mask, z_mask = pauli_masks("XY" + "Z" * (n - 2))
    values = case.module.expectation_pauli_groups(state, np.array([1, x_mask, 0]),
                                                  np.array([0, 0, 1, 1]), np.array([z_mask]))
    assert values == pytest.approx(
        [case.module.expectation_pauli(state, x_mask, z_mask).real], abs=1e-14)


@pytest.mark.parametrize(("x_masks", "term_starts", "z_masks", "message"), [
    ([1, "beyond"], [0, 1, 1], [0], r"x=0x\w+, z=0x0 must name qubits 0 \.\. {last}"),
    ([1, 0], [0, 1, 2], [0, "beyond"], r"z=0x\w+ must name qubits 0 \.\. {last}"),
    ([0], [0, 1], [-1], r"z=-0x1 must name qubits 0 \.\. {last}"),
    ([0, 1], [0, 2], [0, 0], "term_starts"),
    ([0], [0, 1], [0, 0], "term_starts"),
])
def test_expectation_pauli_groups_reject_bad_arguments(case, num_qubits, x_masks, term_starts,
                                                       z_masks, message):
    state = put(case, random_state(num_qubits, np.complex128, seed=335))

    def masks(values):
        return np.array([1 << num_qubits if v == "beyond" else v for v in values],
                        dtype=np.int64)

    with pytest.raises(ValueError, match=message.format(last=num_qubits - 1)):
        case.module.expectation_pauli_groups(state, masks(x_masks), np.array(term_starts),
                                             masks(z_masks))


def marginal_qubit_lists(num_qubits: int) -> list[list[int]]:
    """Single edge qubits, unsorted sets, every qubit reversed, none; on 15 qubits also sets
    above and across the CPU's ``MARGINAL_RUN_QUBITS``."""
    top = num_qubits - 1
    lists = [[0], [top], [3, 0, top], [1, 2], [4, 2], list(range(top, -1, -1)), []]
    if num_qubits > 12:
        lists += [[12, 11], [10, 3, 9, 14], [13, 0, 10, 5, 11]]
    return lists


def test_marginal_probabilities_match_qiskit(case, num_qubits, dtype):
    """``Statevector.probabilities(qargs)`` puts ``qargs[0]`` on bit 0 of the outcome, the
    same argument order as the kernel."""
    host = random_state(num_qubits, dtype, seed=340)
    reference = Statevector(host.astype(np.complex128))
    state = put(case, host)
    for qubits in marginal_qubit_lists(num_qubits):
        observed = case.module.marginal_probabilities(state, np.array(qubits, dtype=np.int64))
        expected = reference.probabilities(qubits) if qubits else np.array([reference.trace()])
        assert observed.dtype == np.float64 and observed.shape == (1 << len(qubits),)
        np.testing.assert_allclose(observed, expected, rtol=0, atol=1e-13, err_msg=str(qubits))


def test_marginal_probabilities_argument_order(case):
    """Basis state with qubit 2 = 1 and qubit 0 = 0: measuring (2, 0) reads outcome 0b01."""
    host = np.zeros(1 << SERIAL_QUBITS, dtype=complex)
    host[0b00110] = 1
    qubits = np.array([2, 0], dtype=np.int64)
    np.testing.assert_array_equal(case.module.marginal_probabilities(put(case, host), qubits),
                                  [0, 1, 0, 0])
    np.testing.assert_array_equal(Statevector(host).probabilities([2, 0]), [0, 1, 0, 0])


def test_reductions_add_up_over_two_blocks(case):
    """The smallest states whose work spans two GPU blocks of 256 threads: 2**10 amplitudes
    for the Pauli pairs, 2**9 for the marginal bins, with fewer outcomes than threads (summed
    per block, then added across blocks) and with more (each thread adds its own outcome)."""
    host = random_state(10, np.complex128, seed=191)
    if case.name == "cuda":
        assert case.module._grid(host.size >> 1) == 2
    x_mask, z_mask = 0b1000110110, 0b0110011011
    expected = Statevector(host).expectation_value(Pauli(pauli_label(x_mask, z_mask, 10))).real
    observed = case.module.expectation_pauli(put(case, host), x_mask, z_mask)
    assert observed == pytest.approx(expected, abs=1e-12)
    host = random_state(9, np.complex128, seed=192)
    if case.name == "cuda":
        assert case.module._grid(host.size) == 2
    state = put(case, host)
    for qubits in ([3, 0, 8], [8, 0, 7, 1, 6, 2, 5, 3, 4]):
        observed = case.module.marginal_probabilities(state, np.array(qubits, dtype=np.int64))
        np.testing.assert_allclose(observed, Statevector(host).probabilities(qubits),
                                   atol=1e-13)


def test_probability_of_one_matches_qiskit(case, num_qubits, dtype):
    host = random_state(num_qubits, dtype, seed=40)
    reference = Statevector(host.astype(np.complex128))
    state = put(case, host)
    tolerance = 1e-13 if dtype is np.complex128 else 1e-6
    for qubit in range(num_qubits):
        expected = reference.probabilities([qubit])[1]
        assert case.module.probability_of_one(state, qubit) == pytest.approx(expected,
                                                                             abs=tolerance)


def test_probability_of_one_of_basis_state(case):
    host = np.zeros(1 << SERIAL_QUBITS, dtype=complex)
    host[0b10110] = 1
    state = put(case, host)
    observed = [case.module.probability_of_one(state, q) for q in range(SERIAL_QUBITS)]
    assert observed == [0.0, 1.0, 1.0, 0.0, 1.0]


@pytest.mark.parametrize("to_zero", [False, True], ids=["measure", "reset"])
@pytest.mark.parametrize("outcome", [0, 1])
def test_project_matches_numpy(case, num_qubits, dtype, outcome, to_zero):
    indices = np.arange(1 << num_qubits)
    for qubit in (0, num_qubits // 2, num_qubits - 1):
        host = random_state(num_qubits, dtype, seed=50 + qubit)
        bit = (indices >> qubit) & 1
        exact = host.astype(np.complex128)
        probability = float(np.sum(np.abs(exact[bit == outcome]) ** 2))
        expected = np.where(bit == outcome, exact, 0) / np.sqrt(probability)
        if to_zero and outcome == 1:
            expected = expected[indices ^ (1 << qubit)]
        state = put(case, host)
        case.module.project(state, qubit, outcome, probability, to_zero=to_zero)
        observed = case.host(state)
        assert observed.dtype == dtype
        np.testing.assert_allclose(observed, expected, rtol=0, atol=ATOL[dtype])
        assert np.linalg.norm(observed.astype(np.complex128)) == pytest.approx(1, abs=1e-5)
        kept_bit = 0 if to_zero else outcome
        assert not np.any(observed[bit != kept_bit])


def test_sample_is_the_inverse_cdf(case, num_qubits, dtype):
    """Each uniform picks the index whose cumulative interval holds it (zeros are skipped)."""
    host = random_state(num_qubits, dtype, seed=60)
    host[np.random.default_rng(61).random(host.size) < 0.3] = 0
    probabilities = np.abs(host.astype(np.complex128)) ** 2
    uniforms = np.random.default_rng(62).random(2000)
    out = case.module.sample(put(case, host), uniforms)
    expected = np.sort(inverse_cdf(probabilities, uniforms))
    edges = np.concatenate(([0.0], np.cumsum(probabilities) / probabilities.sum()))
    ordered = np.sort(uniforms)
    above = np.clip(np.searchsorted(edges, ordered), 1, edges.size - 1)
    gap = np.minimum(ordered - edges[above - 1], edges[above] - ordered)
    clear = np.abs(gap) > 1e-6  # far from an interval edge, where float32 rounding may differ
    assert clear.mean() > 0.9
    assert out.dtype == np.int64 and out.shape == uniforms.shape
    assert np.all(np.diff(out) >= 0), "sample returns indices in sorted order"
    np.testing.assert_array_equal(out[clear], expected[clear])
    assert np.all(probabilities[out] > 0)


def sample_block_qubits(case: KernelCase) -> int:
    """The size of the kernel set's sampling blocks; a set that samples the whole state at
    once (the small-state NumPy kernels) is given two halves of its largest state, whose
    edges are as good a place to look for a walk past the last non-zero amplitude."""
    return getattr(case.module, "SAMPLE_BLOCK_QUBITS", case.large - 1)


def test_sample_over_two_blocks_is_the_inverse_cdf(case):
    """A state of two sampling blocks with zero-probability gaps: equal uniforms pick the
    inverse CDF's indices (random uniforms hit no exact ties)."""
    rng = np.random.default_rng(13)
    host = random_state(13, np.complex128, seed=131)
    host[rng.choice(host.size, host.size // 4, replace=False)] = 0
    host /= np.linalg.norm(host)
    uniforms = rng.random(400)
    indices = case.module.sample(put(case, host), uniforms)
    np.testing.assert_array_equal(indices, np.sort(inverse_cdf(np.abs(host) ** 2, uniforms)))
    assert np.all(np.abs(host[indices]) > 0)
    assert len(set(indices >> sample_block_qubits(case))) > 1, "the test must span blocks"


def test_sample_extreme_uniforms_hit_first_and_last_nonzero(case):
    size = 1 << case.large
    host = np.zeros(size, dtype=np.complex128)
    support = ([5, 9000, 30000] if case.large >= 15 else [5, 4000, 7000] if case.large >= 13
               else [5, size // 2 - 3, size - 9])
    host[support] = np.sqrt([0.25, 0.5, 0.25])
    out = case.module.sample(put(case, host), np.array([0.0, 0.2, 0.5, np.nextafter(1.0, 0.0)]))
    np.testing.assert_array_equal(out, [support[0], *support])


def test_sample_of_basis_state_is_that_index(case, num_qubits, dtype):
    host = np.zeros(1 << num_qubits, dtype=dtype)
    host[(1 << num_qubits) - 3] = 1j
    out = case.module.sample(put(case, host), np.random.default_rng(0).random(100))
    assert np.all(out == (1 << num_qubits) - 3)


def test_sample_never_returns_zero_probability_near_block_edges(case):
    """Uniforms a few ulps below a block's cumulative edge must still land on a non-zero
    amplitude: the sampler must not walk past the block's last non-zero amplitude."""
    block = 1 << sample_block_qubits(case)
    num_qubits = sample_block_qubits(case) + 1  # two blocks
    for seed in range(5 if case.name == "cpu" else 2):  # the simulator is slow
        host = sparse_state(num_qubits, np.complex128, support=40, seed=seed)
        probabilities = np.abs(host) ** 2
        edges = np.cumsum(probabilities.reshape(-1, block).sum(axis=1))
        uniforms = []
        for edge in edges:
            value = edge
            for _ in range(8):
                value = np.nextafter(value, 0.0)
                uniforms.append(value / edges[-1])
        uniforms = np.array([u for u in uniforms if 0 <= u < 1])
        out = case.module.sample(put(case, host), uniforms)
        assert np.all(probabilities[out] > 0), f"seed {seed}: zero-probability index {out}"


def chi_square_pvalue(counts: np.ndarray, probabilities: np.ndarray) -> float:
    expected = probabilities / probabilities.sum() * counts.sum()
    return float(stats.chisquare(counts, expected).pvalue)


def test_sample_distribution_chi_square(case, dtype):
    """20 000 draws from a random 4-qubit state pass chi-square at p > 1e-4, while the
    same counts reject a subtly wrong distribution (one adjacent pair of outcomes swapped)."""
    host = random_state(4, dtype, seed=70)
    probabilities = np.abs(host.astype(np.complex128)) ** 2
    out = case.module.sample(put(case, host), np.random.default_rng(71).random(20_000))
    counts = np.bincount(out, minlength=16)
    assert chi_square_pvalue(counts, probabilities) > 1e-4
    pair = np.argsort(np.abs(np.diff(probabilities)))[-1]
    wrong = probabilities.copy()
    wrong[[pair, pair + 1]] = wrong[[pair + 1, pair]]
    assert chi_square_pvalue(counts, wrong) < 1e-10


def test_sample_distribution_across_blocks(case, dtype):
    """A large state with 24 non-zero amplitudes spread over all sampling blocks."""
    host = sparse_state(case.large, dtype, support=24, seed=80)
    probabilities = np.abs(host.astype(np.complex128)) ** 2
    support = np.flatnonzero(probabilities)
    out = case.module.sample(put(case, host), np.random.default_rng(81).random(30_000))
    assert np.all(np.isin(out, support))
    counts = np.array([np.count_nonzero(out == i) for i in support])
    assert chi_square_pvalue(counts, probabilities[support]) > 1e-4
    assert chi_square_pvalue(counts, np.roll(probabilities[support], 1)) < 1e-10


def test_probabilities_are_squared_magnitudes(case, dtype):
    host = random_state(SERIAL_QUBITS, dtype, seed=94)
    probabilities = case.module.probabilities(put(case, host))
    np.testing.assert_allclose(
        probabilities, np.abs(host.astype(np.complex128)) ** 2, rtol=1e-6, atol=0
    )


# --- states ---------------------------------------------------------------------------------


def test_reset_all_gives_zero_state_in_place(case, num_qubits, dtype):
    state = put(case, random_state(num_qubits, dtype, seed=90))
    case.module.reset_all(state)
    expected = np.zeros(1 << num_qubits)
    expected[0] = 1
    observed = case.host(state)
    assert observed.dtype == dtype
    np.testing.assert_array_equal(observed, expected)


def test_clone_is_independent(case, num_qubits, dtype):
    host = random_state(num_qubits, dtype, seed=91)
    state = put(case, host)
    copy = case.module.clone(state)
    np.testing.assert_array_equal(case.host(copy), host)
    case.module.apply_matrix(copy, np.array([0], dtype=np.int64),
                             np.array([[0, 1], [1, 0]], dtype=dtype))
    assert not np.array_equal(case.host(copy), host)
    np.testing.assert_array_equal(case.host(state), host)
    case.module.release(copy)


def test_copy_into_overwrites_destination(case, num_qubits, dtype):
    host = random_state(num_qubits, dtype, seed=92)
    source = put(case, host)
    destination = case.module.allocate(num_qubits, dtype)
    case.module.copy_into(destination, source)
    np.testing.assert_array_equal(case.host(destination), host)
    case.module.reset_all(source)
    np.testing.assert_array_equal(case.host(destination), host)


def test_copy_from_host_overwrites_the_state_and_keeps_no_reference(case, num_qubits, dtype):
    host = random_state(num_qubits, dtype, seed=93)
    state = case.module.allocate(num_qubits, dtype)
    case.module.copy_from_host(state, host)
    np.testing.assert_array_equal(case.host(state), host)
    host[:] = 0
    assert np.count_nonzero(case.host(state)) > 0


# --- the policies -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64], ids=["c128", "c64"])
def test_gpu_policy_plans_tiles_its_kernel_can_apply(dtype):
    """No GPU needed: the GPU's policy tiles every state (leaving at least 8 chunks, one
    thread block each, once the state allows) within its shared-memory tile, and a plan holds
    no matrix wider than its tile kernel gathers."""
    policy = GPU_POLICY.plan_policy(dtype)
    for num_qubits in range(1, 40):
        tile, lanes = policy.tile_for(num_qubits)
        assert lanes == 0
        assert tile <= GPU_POLICY.tile_qubits[np.dtype(dtype).itemsize]
        if num_qubits >= GPU_POLICY.tile_low_qubits + 3:
            assert num_qubits - tile >= 3
    program = lower_circuit(random_circuit(12, 60, seed=3), dtype)
    tile_ops = [op for op in planned(program, policy).ops if isinstance(op, TileOp)]
    assert tile_ops and all(op.tile_qubits.size == 9 for op in tile_ops)
    for op in tile_ops:
        gathers = op.table[op.table[:, KIND] == GATHER, GATHER_DIM]
        assert gathers.max(initial=1) <= 1 << GPU_POLICY.tile_matrix_max_qubits
        assert op.tile_pass.widest_gather == gathers.max(initial=1)


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64], ids=["c128", "c64"])
def test_gpu_plans_keep_wider_matrices_out_of_tile_passes(dtype):
    """A 6-qubit unitary is wider than the GPU's tile gather: the plan runs it on its own,
    between tile passes, and the planned program still equals the circuit."""
    from qiskit import QuantumCircuit

    circuit = QuantumCircuit(12)
    circuit.h(range(12))
    circuit.unitary(random_unitary(64, seed=8), [7, 0, 3, 10, 5, 1])
    circuit.cx(2, 9)
    plan = planned(lower_circuit(circuit, dtype), GPU_POLICY.plan_policy(dtype))
    wide = [op for op in plan.ops if isinstance(op, MatrixOp) and op.qubits.size == 6]
    assert len(wide) == 1
    assert all(op.tile_pass.widest_gather <= 1 << GPU_POLICY.tile_matrix_max_qubits
               for op in plan.ops if isinstance(op, TileOp))


# --- one device's own mechanisms ---------------------------------------------------------------


def test_threading_layer_falls_back_to_workqueue_with_a_lock(monkeypatch):
    """Without OpenMP or TBB, parallel CPU kernels must take turns instead of aborting."""
    import numba
    from gpuprovider.kernels import cpu

    def no_pools(name):
        raise ImportError(f"{name} cannot load here")

    monkeypatch.setattr(cpu.importlib, "import_module", no_pools)
    monkeypatch.setattr(numba.config, "THREADING_LAYER", numba.config.THREADING_LAYER)
    lock = cpu._choose_threading_layer()
    assert numba.config.THREADING_LAYER == "workqueue"
    assert lock is not None and lock.acquire(blocking=False)
    lock.release()


def test_threading_layer_is_threadsafe_where_a_pool_loads(monkeypatch):
    import numba
    from gpuprovider.kernels import cpu

    monkeypatch.setattr(numba.config, "THREADING_LAYER", numba.config.THREADING_LAYER)
    assert cpu._choose_threading_layer() is None
    assert numba.config.THREADING_LAYER == "threadsafe"


def test_gpu_host_waits_for_the_device_past_a_bounded_queue():
    """A cancelled GPU job stops within a bounded number of passes: the host never has more
    than EVENTS_IN_FLIGHT events (of LAUNCHES_PER_EVENT launches each) pending."""
    gpu = kernel_case("cuda").module
    state = gpu.allocate(3, np.complex128)
    hadamard = np.array([[1, 1], [1, -1]], dtype=np.complex128) / np.sqrt(2)
    launches = 5 * gpu.LAUNCHES_PER_EVENT
    for _ in range(launches):
        gpu.apply_matrix(state, np.array([1], dtype=np.int64), hadamard)
    assert state.launches == launches
    assert len(state.events) == gpu.EVENTS_IN_FLIGHT
    expected = np.zeros(8, dtype=complex)
    expected[0] = 1
    np.testing.assert_allclose(gpu.to_host(state), expected, atol=1e-12)


@pytest.mark.skipif(SIMULATED, reason="this is the simulator run itself")
def test_contract_under_the_cuda_simulator():
    """Rerun this file's CUDA cases on Numba's CUDA simulator (skipped inside it, and where a
    real GPU ran them directly)."""
    pytest.importorskip("numba.cuda")
    from numba import cuda

    if cuda.is_available():
        pytest.skip("a real GPU ran the CUDA cases directly")
    shards = max(1, min(4, len(os.sched_getaffinity(0))))  # the simulator is one core's work
    runs = [subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "NUMBA_ENABLE_CUDASIM": "1", SHARD_VARIABLE: f"{k}/{shards}"},
    ) for k in range(shards)]
    for run in runs:
        stdout, stderr = run.communicate(timeout=900)
        summary = stdout.strip().splitlines()[-1] if stdout.strip() else ""
        assert run.returncode == 0, stdout[-6000:] + stderr[-3000:]
        assert " passed" in summary and " failed" not in summary, summary
