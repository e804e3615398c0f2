"""The CUDA kernels against the CPU kernels, operation by operation.

They run where numba-cuda has a device: a real GPU, or Numba's CUDA simulator. On a machine
without a GPU, ``test_cuda_kernels_under_the_simulator`` reruns this file in a subprocess with
``NUMBA_ENABLE_CUDASIM=1``, so the kernels' index arithmetic, reductions and scans are checked
everywhere (the simulator runs each CUDA thread in Python: small states only).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from gpuprovider.kernels import cpu
from gpuprovider.kernels.tiles import (
    CONDITION_MASK,
    CONTROLLED1,
    DENSE1,
    DENSE2,
    DIAGONAL,
    GATHER,
    KIND,
    C,
)
from testkit import random_circuit

from gpuprovider.compile.lower import lower_circuit
from gpuprovider.compile.plan import PlanPolicy, plan_ops, planned
from gpuprovider.compile.program import (
    ControlledOp,
    DiagonalOp,
    MatrixOp,
    PermutationOp,
    TileOp,
)

SIMULATED = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
TOLERANCE = {np.complex128: 1e-12, np.complex64: 2e-6}


def _cuda_or_skip():
    cuda_kernels = pytest.importorskip("gpuprovider.kernels.cuda")
    from numba import cuda

    if not cuda.is_available():
        pytest.skip("no CUDA device (real or simulated); the simulator run covers these")
    return cuda_kernels


@pytest.fixture
def gpu():
    return _cuda_or_skip()


@pytest.fixture(params=[np.complex128, np.complex64], ids=["c128", "c64"])
def dtype(request):
    return request.param


def _random_state(rng, num_qubits, dtype):
    amplitudes = rng.normal(size=1 << num_qubits) + 1j * rng.normal(size=1 << num_qubits)
    return (amplitudes / np.linalg.norm(amplitudes)).astype(dtype)


def _upload(gpu, host):
    state = gpu.allocate(int(np.log2(host.size)), host.dtype)
    state.array.copy_to_device(host, stream=state.stream)
    return state


def _random_unitary(rng, dim, dtype):
    q, r = np.linalg.qr(rng.normal(size=(dim, dim)) + 1j * rng.normal(size=(dim, dim)))
    return (q * (np.diag(r) / np.abs(np.diag(r)))).astype(dtype)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_gate_kernels_match_the_cpu(gpu, dtype, k):
    rng = np.random.default_rng(k)
    num_qubits = 7
    host = _random_state(rng, num_qubits, dtype)
    device_state = _upload(gpu, host)
    for _ in range(2):
        qubits = rng.choice(num_qubits, k, replace=False).astype(np.int64)
        matrix = _random_unitary(rng, 1 << k, dtype)
        diagonal = np.exp(1j * rng.normal(size=1 << k)).astype(dtype)
        permutation = rng.permutation(1 << k).astype(np.int64)
        phases = np.exp(1j * rng.normal(size=1 << k)).astype(dtype)
        for kernels, state in ((cpu, host), (gpu, device_state)):
            kernels.apply_matrix(state, qubits, matrix)
            kernels.apply_diagonal(state, qubits, diagonal)
            kernels.apply_permutation(state, qubits, permutation, phases)
    np.testing.assert_allclose(gpu.to_host(device_state), host, atol=TOLERANCE[dtype])
    assert np.abs(host).max() > 0.01  # the comparison is not between two zero states


@pytest.mark.parametrize("prepared", [[4, 1, 2], [4, 1, 2, 5, 3]], ids=["per-group", "spread"])
def test_prepare_reset_all_and_copies_match_the_cpu(gpu, dtype, prepared):
    rng = np.random.default_rng(7)
    qubits = np.array(prepared, dtype=np.int64)
    amplitudes = _random_state(rng, len(prepared), dtype)
    rotation = _random_unitary(rng, 2, dtype)
    host = cpu.allocate(6, dtype)
    device_state = gpu.allocate(6, dtype)
    for kernels, state in ((cpu, host), (gpu, device_state)):
        kernels.apply_matrix(state, np.array([0], dtype=np.int64), rotation)
        kernels.prepare_qubits(state, qubits, amplitudes)
    np.testing.assert_allclose(gpu.to_host(device_state), host, atol=TOLERANCE[dtype])
    copy = gpu.clone(device_state)
    gpu.reset_all(device_state)
    expected_zero = cpu.allocate(6, dtype)
    np.testing.assert_array_equal(gpu.to_host(device_state), expected_zero)
    np.testing.assert_allclose(gpu.to_host(copy), host, atol=TOLERANCE[dtype])
    gpu.copy_into(device_state, copy)
    np.testing.assert_allclose(gpu.to_host(device_state), host, atol=TOLERANCE[dtype])
    gpu.release(copy)


CONTROLLED_CASES = [  # (controls, control_state, targets) on 6 qubits
    ([], 0, [4]),
    ([], 0, [5, 1, 3]),
    ([5, 0], 0b01, [2]),
    ([3, 0, 4, 1, 5], 0b10110, [2]),
    ([1], 1, [3, 0]),
    ([2, 5], 0b10, [4, 0]),
    ([5], 0, [1, 2, 0]),
    ([4], 0, [0, 1, 2, 3, 5]),
]


def test_controlled_matrix_kernels_match_the_cpu(gpu, dtype):
    """No controls (apply_matrix), one target (the unrolled kernel) and up to five targets
    (the gather), with controls above, below and between the targets."""
    rng = np.random.default_rng(5)
    host = _random_state(rng, 6, dtype)
    device_state = _upload(gpu, host)
    for controls, control_state, targets in CONTROLLED_CASES:
        matrix = _random_unitary(rng, 1 << len(targets), dtype)
        for kernels, state in ((cpu, host), (gpu, device_state)):
            kernels.apply_controlled_matrix(state, np.array(controls, dtype=np.int64),
                                            control_state, np.array(targets, dtype=np.int64),
                                            matrix)
    np.testing.assert_allclose(gpu.to_host(device_state), host, atol=TOLERANCE[dtype])
    assert np.abs(host).max() > 0.01


def test_controlled_matrix_on_too_many_targets_is_refused(gpu):
    state = gpu.allocate(7, np.complex128)
    targets = np.arange(gpu.MAX_MATRIX_QUBITS + 1, dtype=np.int64)
    with pytest.raises(ValueError, match="at most 5"):
        gpu.apply_controlled_matrix(state, np.array([6], dtype=np.int64), 1, targets,
                                    np.eye(1 << targets.size, dtype=np.complex128))


def _tile_test_ops(rng, num_qubits, dtype):
    """Gates of every tile-pass kind, cycled: dense on 1-3 qubits, a CX, diagonals, and
    controlled gates with one or two targets (controls in and out of the tile)."""
    def qubits(k):
        return rng.choice(num_qubits, k, replace=False).astype(np.int64)

    ops = []
    for _ in range(3):
        ops.append(MatrixOp(qubits(1), _random_unitary(rng, 2, dtype)))
        low = int(rng.integers(2))  # a control every 2-low-qubit tile holds
        control, target = rng.choice(np.delete(np.arange(num_qubits), low), 2, replace=False)
        ops.append(ControlledOp(np.array([control, low]), int(rng.integers(4)),
                                np.array([target]), _random_unitary(rng, 2, dtype)))
        ops.append(DiagonalOp(qubits(3), np.exp(1j * rng.normal(size=8)).astype(dtype)))
        ops.append(PermutationOp(qubits(2), np.array([0, 3, 2, 1]), np.ones(4, dtype=dtype)))
        q = qubits(4)
        ops.append(ControlledOp(q[:2], 0b10, q[2:], _random_unitary(rng, 4, dtype)))
        ops.append(MatrixOp(qubits(2), _random_unitary(rng, 4, dtype)))
        ops.append(MatrixOp(qubits(3), _random_unitary(rng, 8, dtype)))
    return ops


@pytest.mark.parametrize("lanes", [0, 2], ids=["ascending", "lanes"])
def test_tile_passes_match_the_cpu(gpu, dtype, lanes, monkeypatch):
    """Tile passes the planner makes with the GPU's policy, shrunk to 5-qubit tiles so that
    8 qubits make 8 chunks: every row kind, controls outside the tile, diagonals on qubits
    outside it; with lanes, tiles whose local order is not ascending. The planned passes
    reproduce the unplanned gates on the CPU, and the GPU's passes the CPU's."""
    if SIMULATED:  # fewer threads than a tile has amplitudes: every loop strides
        monkeypatch.setattr(gpu, "TILE_THREADS", 4)
    policy = replace(PlanPolicy.of(gpu, dtype), tile_qubits=5, low_qubits=2, lane_qubits=lanes)
    num_qubits = 8
    rng = np.random.default_rng(8)
    ops = _tile_test_ops(rng, num_qubits, dtype)
    passes = plan_ops(ops, num_qubits, dtype, policy)
    assert all(isinstance(op, TileOp) and op.tile_qubits.size == 5 for op in passes)
    rows = np.concatenate([op.table for op in passes])
    assert set(rows[:, KIND]) == {DENSE1, DENSE2, GATHER, CONTROLLED1, DIAGONAL}
    assert np.any(rows[:, CONDITION_MASK]), "no control outside a tile"
    assert rows[rows[:, KIND] == DIAGONAL, C].max() > 0, "no diagonal reaching out of a tile"
    host = _random_state(rng, num_qubits, dtype)
    expected = host.copy()
    for op in ops:
        op.apply(cpu, expected)
    device_state = _upload(gpu, host)
    for op in passes:
        op.apply(cpu, host)
        op.apply(gpu, device_state)
    np.testing.assert_allclose(host, expected, atol=TOLERANCE[dtype])
    np.testing.assert_allclose(gpu.to_host(device_state), host, atol=TOLERANCE[dtype])


def test_tile_pass_wider_than_shared_memory_is_refused(gpu, dtype):
    limit = gpu.TILE_QUBITS[np.dtype(dtype).itemsize]
    state = gpu.allocate(limit + 1, dtype)
    tile_qubits = np.arange(limit + 1, dtype=np.int64)
    table = np.zeros((1, 8), dtype=np.int64)
    with pytest.raises(ValueError, match=f"at most {limit}"):
        gpu.apply_tile_pass(state, tile_qubits, 1 << (limit + 1), np.zeros(1, dtype=np.int64),
                            np.zeros(1, dtype=np.int64), np.arange(1 << (limit + 1)), table,
                            np.zeros(0, dtype=np.int64), np.eye(2, dtype=dtype).ravel())


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64], ids=["c128", "c64"])
def test_gpu_policy_plans_tiles_its_kernel_can_apply(dtype):
    """No GPU needed: the CUDA module's policy tiles every state (leaving at least 8 chunks,
    one thread block each, once the state allows) within its shared-memory tile, and a plan
    holds no matrix wider than its tile kernel gathers."""
    gpu = pytest.importorskip("gpuprovider.kernels.cuda")
    policy = PlanPolicy.of(gpu, dtype)
    for num_qubits in range(1, 40):
        tile, lanes = policy.tile_for(num_qubits)
        assert lanes == 0
        assert tile <= gpu.TILE_QUBITS[np.dtype(dtype).itemsize]
        if num_qubits >= gpu.TILE_LOW_QUBITS + 3:
            assert num_qubits - tile >= 3
    program = lower_circuit(random_circuit(12, 60, seed=3), dtype)
    tile_ops = [op for op in planned(program, gpu, dtype).ops if isinstance(op, TileOp)]
    assert tile_ops and all(op.tile_qubits.size == 9 for op in tile_ops)
    for op in tile_ops:
        gathers = op.table[op.table[:, KIND] == GATHER, C]
        assert gathers.max(initial=1) <= 1 << gpu.MAX_MATRIX_QUBITS


PAULI_MASKS = [  # (x_mask, z_mask) on 6 qubits: identity, Z strings, X and Y strings
    (0, 0), (0, 0b100101), (0b000001, 0), (0b100000, 0b100000), (0b110110, 0b011011),
    (0b111111, 0b111111), (0b010100, 0b000100),
]


def test_expectation_pauli_matches_the_cpu(gpu, dtype):
    """Both sum the same stored amplitudes in float64: equal to rounding in either precision."""
    host = _random_state(np.random.default_rng(13), 6, dtype)
    device_state = _upload(gpu, host)
    for x_mask, z_mask in PAULI_MASKS:
        value = gpu.expectation_pauli(device_state, x_mask, z_mask)
        assert isinstance(value, complex) and value.imag == 0
        assert value == pytest.approx(cpu.expectation_pauli(host, x_mask, z_mask), abs=1e-12)


def test_expectation_paulis_match_the_cpu(gpu, dtype):
    host = _random_state(np.random.default_rng(14), 6, dtype)
    device_state = _upload(gpu, host)
    z_masks = np.array([z for _, z in PAULI_MASKS], dtype=np.int64)
    for x_mask in {x for x, _ in PAULI_MASKS}:
        np.testing.assert_allclose(gpu.expectation_paulis(device_state, x_mask, z_masks),
                                   cpu.expectation_paulis(host, x_mask, z_masks), atol=1e-12)


def test_expectation_pauli_groups_match_the_cpu(gpu, dtype):
    """One launch for every group: x = 0, x on low qubits, x with the top qubit, an empty
    group, and a group with more terms than PAULI_SLICE (summed slice by slice)."""
    rng = np.random.default_rng(15)
    host = _random_state(rng, 6, dtype)
    x_masks = np.array([0, 0b000011, 0b100110, 0b010000, 0b111111], dtype=np.int64)
    term_starts = np.array([0, gpu.PAULI_SLICE + 3, gpu.PAULI_SLICE + 6, gpu.PAULI_SLICE + 9,
                            gpu.PAULI_SLICE + 9, gpu.PAULI_SLICE + 10], dtype=np.int64)
    z_masks = rng.integers(0, 64, size=term_starts[-1]).astype(np.int64)
    values = gpu.expectation_pauli_groups(_upload(gpu, host), x_masks, term_starts, z_masks)
    assert values.dtype == np.float64
    np.testing.assert_allclose(
        values, cpu.expectation_pauli_groups(host, x_masks, term_starts, z_masks), atol=1e-12)
    with pytest.raises(ValueError, match="must name qubits 0 .. 5"):
        gpu.expectation_pauli_groups(_upload(gpu, host), np.array([64]), np.array([0, 1]),
                                     np.array([0]))


@pytest.mark.parametrize("qubits", [[], [0], [5], [3, 0, 5], [4, 2], [5, 4, 3, 2, 1, 0]],
                         ids=str)
def test_marginal_probabilities_match_the_cpu(gpu, dtype, qubits):
    host = _random_state(np.random.default_rng(17), 6, dtype)
    qubits = np.array(qubits, dtype=np.int64)
    observed = gpu.marginal_probabilities(_upload(gpu, host), qubits)
    assert observed.dtype == np.float64
    np.testing.assert_allclose(observed, cpu.marginal_probabilities(host, qubits), atol=1e-13)


def test_reductions_add_up_over_two_blocks(gpu):
    """The smallest states whose work spans two blocks of THREADS: 2**10 amplitudes for the
    Pauli pairs, 2**9 for the marginal bins, with fewer outcomes than threads (summed per block,
    then added across blocks) and with more (each thread adds its own outcome)."""
    rng = np.random.default_rng(19)
    host = _random_state(rng, 10, np.complex128)
    assert gpu._grid(host.size >> 1) == 2
    x_mask, z_mask = 0b1000110110, 0b0110011011
    assert gpu.expectation_pauli(_upload(gpu, host), x_mask, z_mask) == pytest.approx(
        cpu.expectation_pauli(host, x_mask, z_mask), abs=1e-12
    )
    host = _random_state(rng, 9, np.complex128)
    assert gpu._grid(host.size) == 2
    device_state = _upload(gpu, host)
    for qubits in ([3, 0, 8], [8, 0, 7, 1, 6, 2, 5, 3, 4]):
        qubits = np.array(qubits, dtype=np.int64)
        observed = gpu.marginal_probabilities(device_state, qubits)
        np.testing.assert_allclose(observed, cpu.marginal_probabilities(host, qubits), atol=1e-13)


@pytest.mark.parametrize("to_zero", [False, True], ids=["collapse", "reset"])
def test_measurement_kernels_match_the_cpu(gpu, dtype, to_zero):
    rng = np.random.default_rng(11)
    host = _random_state(rng, 6, dtype)
    device_state = _upload(gpu, host)
    for qubit in (0, 3, 5):
        p_one = cpu.probability_of_one(host, qubit)
        assert gpu.probability_of_one(device_state, qubit) == pytest.approx(p_one, abs=1e-6)
        outcome = int(p_one > 0.5)
        probability = p_one if outcome else 1 - p_one
        cpu.project(host, qubit, outcome, probability, to_zero)
        gpu.project(device_state, qubit, outcome, probability, to_zero)
    np.testing.assert_allclose(gpu.to_host(device_state), host, atol=TOLERANCE[dtype])
    assert np.linalg.norm(host) == pytest.approx(1, abs=1e-5)


@pytest.mark.parametrize("num_qubits", [5, 13], ids=["one-block", "two-blocks"])
def test_sample_picks_the_same_indices_as_the_cpu(gpu, num_qubits):
    """Both samplers invert the same cumulative distribution, so equal uniforms give equal
    indices (up to rounding at exact ties, which random uniforms do not hit)."""
    rng = np.random.default_rng(num_qubits)
    host = _random_state(rng, num_qubits, np.complex128)
    host[rng.choice(host.size, host.size // 4, replace=False)] = 0  # zero-probability gaps
    host /= np.linalg.norm(host)
    device_state = _upload(gpu, host)
    uniforms = rng.random(400)
    indices = gpu.sample(device_state, uniforms)
    np.testing.assert_array_equal(indices, cpu.sample(host, uniforms))
    assert np.all(np.abs(host[indices]) > 0)
    if num_qubits > cpu.SAMPLE_BLOCK_QUBITS:
        assert len(set(indices >> gpu.SAMPLE_BLOCK_QUBITS)) > 1, "the test must span blocks"


@pytest.mark.skipif(SIMULATED, reason="this is the simulator run itself")
def test_cuda_kernels_under_the_simulator():
    """Rerun this file on Numba's CUDA simulator (skipped inside it, and where a real GPU ran
    the tests above directly)."""
    pytest.importorskip("numba.cuda")
    from numba import cuda

    if cuda.is_available():
        pytest.skip("a real GPU ran the kernel tests directly")
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__],
        capture_output=True, text=True, env=env, timeout=900,
    )
    summary = completed.stdout.strip().splitlines()[-1] if completed.stdout.strip() else ""
    assert completed.returncode == 0, completed.stdout[-6000:] + completed.stderr[-3000:]
    assert " passed" in summary and "1 skipped" in summary, summary


def test_host_waits_for_the_device_past_a_bounded_queue(gpu):
    """A cancelled job stops within a bounded number of passes: the host never has more than
    EVENTS_IN_FLIGHT events (of LAUNCHES_PER_EVENT launches each) pending."""
    state = gpu.allocate(3, np.complex128)
    hadamard = np.array([[1, 1], [1, -1]], dtype=np.complex128) / np.sqrt(2)
    launches = 5 * gpu.LAUNCHES_PER_EVENT
    for _ in range(launches):
        gpu.apply_matrix(state, np.array([1], dtype=np.int64), hadamard)
    assert state.launches == launches
    assert len(state.events) == gpu.EVENTS_IN_FLIGHT
    np.testing.assert_allclose(gpu.to_host(state), cpu.allocate(3, np.complex128), atol=1e-12)
