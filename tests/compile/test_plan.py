"""The pass planner: relabelled SWAPs, tile passes and fusion give the same state as the
circuit, on tiles small enough that chunks, outside qubits and outside controls all occur."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import subprocess
import sys

from gpuprovider.kernels import cpu
from gpuprovider.kernels.policy import CPU_POLICY
from gpuprovider.kernels.tiles import (
    DENSE1,
    DENSE1_QUBIT,
    DENSE2,
    DENSE2_LOW,
    DIAGONAL,
    KIND,
)
from qiskit import QuantumCircuit, transpile
from qiskit.circuit.library import (
    DiagonalGate,
    MCPhaseGate,
    MCXGate,
    QFTGate,
    UnitaryGate,
    efficient_su2,
)
from qiskit.quantum_info import Operator, Statevector, random_unitary
from testkit import ALPHA, chi_square_pvalue

from gpuprovider import GPUSimulator
from gpuprovider.compile.lower import lower_circuit
from gpuprovider.compile.merge import merged
from gpuprovider.compile.plan import (
    PlanPolicy,
    _Gate,
    embed_diagonal,
    embed_matrix,
    fuse,
    group_into_tiles,
    plan_ops,
    planned,
)
from gpuprovider.compile.program import (
    DiagonalOp,
    MatrixOp,
    MeasureOp,
    PermutationOp,
    SaveStatevectorOp,
    TileOp,
)
from gpuprovider.exceptions import InvalidOptionError

DTYPES = [np.complex128, np.complex64]
TOLERANCE = {np.complex128: 1e-10, np.complex64: 2e-5}

SMALL_TILES = PlanPolicy(
    tile_qubits=4, low_qubits=1, lane_qubits=0, fusion_max_qubits=3, diagonal_max_qubits=4,
    dense_cost=CPU_POLICY.dense_cost, diagonal_cost=CPU_POLICY.diagonal_cost,
    parallel_min_qubits=0,
)
"""Tiles of 4 qubits on 7-qubit states: 8 chunks, most gates with qubits outside the tile."""
LANED_TILES = replace(SMALL_TILES, tile_qubits=5, lane_qubits=2)
"""Tiles of 5 qubits whose 2 lowest local positions hold no dense target: the local order is
not ascending, and targets at local positions 3 and 4 take the vectorised loops."""


def mixed_circuit(num_qubits: int, num_gates: int, seed: int) -> QuantumCircuit:
    """Random gates of every kind the planner places: dense 1-3 qubit, permutations, SWAPs,
    diagonals (cz, cp, rzz, 3-qubit diagonal, mcphase), controlled gates with one or two
    targets and open or closed controls (the lowering keeps the global phase for saves, so
    there is none here)."""
    rng = np.random.default_rng(seed)
    circuit = QuantumCircuit(num_qubits)

    def qubits(count: int) -> list[int]:
        return [int(q) for q in rng.choice(num_qubits, count, replace=False)]

    def angle() -> float:
        return float(rng.uniform(0, 2 * np.pi))

    makers = [
        lambda: circuit.h(qubits(1)[0]),
        lambda: circuit.u(angle(), angle(), angle(), qubits(1)[0]),
        lambda: circuit.cx(*qubits(2)),
        lambda: circuit.swap(*qubits(2)),
        lambda: circuit.cz(*qubits(2)),
        lambda: circuit.cp(angle(), *qubits(2)),
        lambda: circuit.rzz(angle(), *qubits(2)),
        lambda: circuit.append(random_unitary(4, seed=int(rng.integers(1 << 30))), qubits(2)),
        lambda: circuit.append(random_unitary(8, seed=int(rng.integers(1 << 30))), qubits(3)),
        lambda: circuit.append(DiagonalGate(list(np.exp(1j * rng.uniform(0, 6, 8)))),
                               qubits(3)),
        lambda: circuit.append(MCXGate(2, ctrl_state=int(rng.integers(4))), qubits(3)),
        lambda: circuit.append(MCPhaseGate(angle(), 2), qubits(3)),
        lambda: circuit.append(
            UnitaryGate(random_unitary(4, seed=int(rng.integers(1 << 30)))).control(
                2, ctrl_state=int(rng.integers(4))),
            qubits(4)),
    ]
    for _ in range(num_gates):
        makers[int(rng.integers(len(makers)))]()
    return circuit


def planned_ops(circuit: QuantumCircuit, dtype, policy: PlanPolicy) -> list:
    """The circuit's ops planned, ending with the qubits in place: a statevector save (which
    the relabelling cannot rename) closes the list and is dropped after planning."""
    program = lower_circuit(circuit, np.dtype(dtype), where="test")
    ops = plan_ops([*program.ops, SaveStatevectorOp("end", 0.0)], circuit.num_qubits,
                   np.dtype(dtype), policy)
    assert isinstance(ops[-1], SaveStatevectorOp)
    return ops[:-1]


def run_ops(ops, num_qubits: int, dtype) -> np.ndarray:
    state = cpu.allocate(num_qubits, dtype)
    for op in ops:
        op.apply(cpu, state)
    return state


@pytest.mark.parametrize("policy", [SMALL_TILES, LANED_TILES], ids=["plain", "lanes"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(6))
def test_planned_small_tiles_match_statevector(dtype, seed, policy):
    circuit = mixed_circuit(7, 60, seed)
    ops = planned_ops(circuit, dtype, policy)
    assert any(isinstance(op, TileOp) for op in ops)
    expected = Statevector(circuit).data
    np.testing.assert_allclose(run_ops(ops, 7, dtype), expected, atol=TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(3))
def test_planned_with_the_cpu_policy_matches_statevector(dtype, seed):
    circuit = mixed_circuit(14, 80, seed)  # large enough for several chunks per pass
    ops = planned_ops(circuit, dtype, CPU_POLICY.plan_policy(dtype))
    expected = Statevector(circuit).data
    np.testing.assert_allclose(run_ops(ops, 14, dtype), expected, atol=TOLERANCE[dtype])


def test_tile_passes_hold_their_gates_qubits_and_the_low_qubits():
    ops = planned_ops(mixed_circuit(7, 80, seed=11), np.complex128, SMALL_TILES)
    passes = [op for op in ops if isinstance(op, TileOp)]
    assert len(passes) > 1
    for tile_pass in passes:
        qubits = tile_pass.tile_qubits.tolist()
        assert qubits == sorted(set(qubits)) and len(qubits) == SMALL_TILES.tile_qubits
        assert 0 in qubits
        assert tile_pass.table.shape[0] >= 1


def test_lanes_hold_no_dense_target_and_come_first():
    ops = planned_ops(mixed_circuit(7, 80, seed=12), np.complex128, LANED_TILES)
    passes = [op for op in ops if isinstance(op, TileOp)]
    assert len(passes) > 1
    for tile_pass in passes:
        lanes = set(tile_pass.tile_qubits[:2].tolist())
        assert lanes.isdisjoint(tile_pass.tile_qubits[2:].tolist())
        assert tile_pass.tile_qubits[2:].tolist() == sorted(tile_pass.tile_qubits[2:].tolist())
        dense_rows = tile_pass.table[np.isin(tile_pass.table[:, KIND], [DENSE1, DENSE2])]
        assert DENSE1_QUBIT == DENSE2_LOW
        assert (dense_rows[:, DENSE1_QUBIT] >= 2).all()  # DENSE1's qubit, DENSE2's lower qubit


def test_grouping_defers_gates_that_do_not_commute_past_a_deferred_one():
    matrix = np.eye(2, dtype=complex)
    gates = [
        _Gate("dense", (0, 1), np.eye(4, dtype=complex)),
        _Gate("dense", (2, 3), np.eye(4, dtype=complex)),  # does not fit a 3-qubit tile
        _Gate("dense", (3,), matrix),  # waits for the deferred gate on qubit 3
        _Gate("diagonal", (3, 0), np.ones(4, dtype=complex)),  # waits too (dense on 3)
        _Gate("dense", (1,), matrix),  # free: nothing deferred touches qubit 1
    ]
    passes = group_into_tiles(gates, num_qubits=4, tile=3, low_qubits=1)
    first_qubits, first_gates = passes[0]
    assert first_gates == [gates[0], gates[4]]
    assert set(first_qubits) >= {0, 1}
    assert [gate for _, chosen in passes[1:] for gate in chosen] == gates[1:4]


def test_diagonals_need_no_tile_qubits_and_join_the_first_pass():
    gates = [
        _Gate("dense", (0,), np.eye(2, dtype=complex)),
        _Gate("diagonal", (5, 6), np.ones(4, dtype=complex)),
    ]
    passes = group_into_tiles(gates, num_qubits=7, tile=2, low_qubits=1)
    assert len(passes) == 1 and passes[0][1] == gates


def test_swaps_move_no_data_before_measurements():
    circuit = QuantumCircuit(5)
    circuit.h(0)
    circuit.swap(0, 4)
    circuit.swap(1, 4)
    circuit.cx(1, 2)
    circuit.measure_all()
    program = lower_circuit(circuit, np.dtype(np.complex128), where="test")
    ops = plan_ops(program.ops, 5, np.dtype(np.complex128),
                   CPU_POLICY.plan_policy(np.complex128))
    assert not any(isinstance(op, PermutationOp) for op in ops)
    # Clbit c measures qubit c, read where the swaps moved it: 0 -> 4, then 1 -> 0, 4 -> 1.
    positions = {op.clbit: op.qubit for op in ops if isinstance(op, MeasureOp)}
    assert positions == {0: 4, 1: 0, 2: 2, 3: 3, 4: 1}


def test_swaps_are_undone_before_a_statevector_save():
    circuit = QuantumCircuit(13)  # large enough to be planned on the CPU
    circuit.h(0)
    circuit.swap(0, 12)
    circuit.cx(12, 1)
    circuit.swap(1, 5)
    circuit.save_statevector()
    result = GPUSimulator(device="CPU").run(circuit, shots=1).result()
    assert result.results[0].metadata["passes"] < result.results[0].metadata["gates"] + 3
    expected = Statevector(_without_save(circuit)).data
    np.testing.assert_allclose(np.asarray(result.get_statevector()), expected, atol=1e-12)


def _without_save(circuit: QuantumCircuit) -> QuantumCircuit:
    bare = circuit.copy_empty_like()
    for instruction in circuit.data:
        if instruction.operation.name != "save_statevector":
            bare.append(instruction)
    return bare


def test_embed_matrix_matches_qiskit_operator():
    unitary = random_unitary(4, seed=3).data
    reference = QuantumCircuit(3)
    reference.unitary(unitary, [2, 0])
    embedded = embed_matrix(unitary, (2, 0), (0, 1, 2))
    np.testing.assert_allclose(embedded, Operator(reference).data, atol=1e-12)


def test_embed_diagonal_matches_the_dense_embedding():
    diagonal = np.exp(1j * np.arange(4))
    union = (3, 1, 0)
    np.testing.assert_allclose(np.diag(embed_diagonal(diagonal, (1, 3), union)),
                               embed_matrix(np.diag(diagonal), (1, 3), union), atol=1e-12)


@pytest.mark.parametrize("cost3, expected", [(9.0, [{0, 1}, {1, 2}]), (2.0, [{0, 1, 2}])],
                         ids=["3-qubit-dear", "3-qubit-cheap"])
def test_fusion_follows_the_cost_table(cost3, expected):
    """The 1-qubit gate always folds into the 2-qubit one; two 2-qubit gates sharing a qubit
    fuse into a 3-qubit block only where that costs no more than both (1.5 each here)."""
    costs = (0.0, 0.9, 1.5, cost3, 30.0)
    policy = replace(CPU_POLICY.plan_policy(np.complex128), dense_cost=costs)
    one = _Gate("dense", (1,), np.array([[0, 1], [1, 0]], dtype=complex))
    two = _Gate("dense", (0, 1), random_unitary(4, seed=1).data)
    other = _Gate("dense", (1, 2), random_unitary(4, seed=2).data)
    fused = fuse([one, two, other], policy)
    assert [set(gate.qubits) for gate in fused] == expected
    assert [gate.sources for gate in fused] == ([2, 1] if len(expected) == 2 else [3])
    union = fused[0].qubits
    first = embed_matrix(two.values, two.qubits, union) @ embed_matrix(one.values, (1,), union)
    if len(expected) == 1:
        first = embed_matrix(other.values, other.qubits, union) @ first
    np.testing.assert_allclose(fused[0].values, first, atol=1e-12)


@pytest.mark.parametrize("targets, widened", [((0, 1), True), ((0,), False), ((), False)],
                         ids=["may-target", "lane-or-outside", "none"])
def test_a_diagonal_widens_a_one_qubit_block_only_onto_qubits_it_may_target(targets,
                                                                            widened):
    """A 2-qubit diagonal after a 1-qubit gate becomes one 2-qubit block where the pass may
    target both qubits (and the block costs no more than the two); else it stays a
    diagonal."""
    policy = CPU_POLICY.plan_policy(np.complex128)
    one = _Gate("dense", (0,), random_unitary(2, seed=4).data)
    phases = np.exp(1j * np.array([0.1, 0.7, 1.3, 2.9]))
    diagonal = _Gate("diagonal", (1, 0), phases)
    fused = fuse([one, diagonal], policy, frozenset(targets))
    if not widened:
        assert [gate.kind for gate in fused] == ["dense", "diagonal"]
        return
    assert [(gate.kind, gate.qubits, gate.sources) for gate in fused] == [("dense", (0, 1), 2)]
    union = (0, 1)
    expected = (embed_matrix(np.diag(phases), (1, 0), union)
                @ embed_matrix(one.values, (0,), union))
    np.testing.assert_allclose(fused[0].values, expected, atol=1e-12)


@pytest.mark.parametrize("other, kinds", [(2, [DENSE2]), (0, [DENSE1, DIAGONAL])],
                         ids=["tile-qubit", "lane"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_planned_diagonals_widen_blocks_off_the_lanes_only(other, kinds, dtype):
    """One gate on qubit 3 and a diagonal on (3, other) in a laned tile (lanes: qubits 0 and
    1; tile qubits off them: 2, 3, 4): the diagonal widens the block onto qubit 2, not onto
    the lane qubit 0; either way the state is the circuit's."""
    rng = np.random.default_rng(other)
    ops = [MatrixOp(np.array([3]), random_unitary(2, seed=5).data.astype(dtype)),
           DiagonalOp(np.array([3, other]), np.exp(1j * rng.normal(size=4)).astype(dtype))]
    passes = plan_ops(ops, 7, np.dtype(dtype), LANED_TILES)
    assert len(passes) == 1 and passes[0].tile_qubits[:2].tolist() == [0, 1]
    assert passes[0].table[:, KIND].tolist() == kinds
    host = np.random.default_rng(9).normal(size=128) + 0j
    expected = Statevector(host / np.linalg.norm(host))
    for op in ops:
        values = op.matrix if isinstance(op, MatrixOp) else np.diag(op.diagonal)
        expected = expected.evolve(Operator(values.astype(complex)), qargs=op.qubits.tolist())
    state = (host / np.linalg.norm(host)).astype(dtype)
    passes[0].apply(cpu, state)
    np.testing.assert_allclose(state, expected.data, atol=TOLERANCE[dtype])


def test_final_measurements_do_not_end_a_run_of_gates():
    """``measure_all`` after a layer of one-qubit gates: the merge leaves each gate just
    before its qubit's measurement; the gates still share one tile pass, and the sampled
    counts are the circuit's."""
    circuit = QuantumCircuit(13)
    for q in range(13):
        circuit.ry(0.3 + 0.1 * q, q)
    for q in range(12):
        circuit.cx(q, q + 1)
    for q in range(13):
        circuit.ry(0.7 - 0.05 * q, q)
    circuit.measure_all()
    dtype = np.dtype(np.complex128)
    policy = CPU_POLICY.plan_policy(dtype)
    program = planned(lower_circuit(circuit, dtype, where="test"), policy)
    kinds = [type(op).__name__ for op in program.ops]
    first = kinds.index("MeasureOp")
    assert set(kinds[first:]) == {"MeasureOp"} and kinds.count("MeasureOp") == 13, kinds
    assert first <= 3, kinds
    result = GPUSimulator(device="CPU").run(circuit, shots=4000, seed_simulator=3).result()
    expected = Statevector(circuit.remove_final_measurements(inplace=False))
    assert chi_square_pvalue(result.get_counts(), expected.probabilities_dict()) > ALPHA


def test_qft_needs_few_passes_and_reports_them():
    circuit = QuantumCircuit(16)
    circuit.append(QFTGate(16), range(16))
    circuit.measure_all()
    circuit = transpile(circuit, basis_gates=["h", "cp", "swap", "measure"],
                        optimization_level=0)
    gates = sum(1 for instruction in circuit.data if instruction.operation.name != "measure")
    result = GPUSimulator(device="CPU").run(circuit, shots=10, seed_simulator=1).result()
    metadata = result.results[0].metadata
    assert metadata["passes"] <= 6, metadata
    assert 0 < metadata["gates"] <= gates
    assert sum(result.get_counts().values()) == 10


def test_fusion_enable_false_runs_every_gate_as_its_own_pass():
    circuit = mixed_circuit(CPU_POLICY.plan_min_qubits, 40, seed=21)
    circuit.save_statevector()
    expected = Statevector(_without_save(circuit)).data
    results = {}
    for enabled in (True, False):
        result = GPUSimulator(device="CPU", fusion_enable=enabled).run(circuit, shots=1).result()
        np.testing.assert_allclose(np.asarray(result.get_statevector()), expected, atol=1e-10)
        results[enabled] = result.results[0].metadata
    assert results[True]["passes"] < results[False]["passes"]
    assert results[False]["passes"] == results[False]["gates"] + 1  # each gate, then the save


def test_fusion_enable_must_be_a_bool():
    with pytest.raises(InvalidOptionError, match="fusion_enable='yes' must be True or False"):
        GPUSimulator(device="CPU").run(QuantumCircuit(1), fusion_enable="yes")


def test_small_states_run_op_by_op_on_the_cpu():
    circuit = mixed_circuit(CPU_POLICY.plan_min_qubits - 1, 20, seed=22)
    program = lower_circuit(circuit, np.dtype(np.complex128), where="test")
    ops = planned(program, CPU_POLICY.plan_policy(np.complex128)).ops
    assert ops and not any(isinstance(op, TileOp) for op in ops)
    assert len(ops) == len(merged(program).ops)  # one-qubit gates merged, not planned


def test_planned_sweep_bindings_match_the_bound_circuits():
    circuit = efficient_su2(CPU_POLICY.plan_min_qubits + 1, reps=2).decompose()
    circuit.swap(0, circuit.num_qubits - 1)
    circuit.save_statevector()
    rng = np.random.default_rng(5)
    parameters = list(circuit.parameters)
    values = rng.uniform(0, 2 * np.pi, (3, len(parameters)))
    binds = [{p: values[:, j].tolist() for j, p in enumerate(parameters)}]
    result = GPUSimulator(device="CPU").run(circuit, shots=1, parameter_binds=binds).result()
    for index, row in enumerate(values):
        bound = _without_save(circuit.assign_parameters(dict(zip(parameters, row))))
        metadata = result.results[index].metadata
        assert metadata["passes"] < metadata["gates"]  # planned
        np.testing.assert_allclose(np.asarray(result.get_statevector(index)),
                                   Statevector(bound).data, atol=1e-10)


def test_planned_mid_circuit_measurement_after_swaps_matches_the_distribution():
    # No control flow, so the program is planned; the measurement and the reset name qubits
    # the swaps moved, and their outcomes decide the branches.
    num_qubits = CPU_POLICY.plan_min_qubits + 1
    circuit = QuantumCircuit(num_qubits, 3)
    circuit.ry(1.1, 0)
    circuit.swap(0, num_qubits - 1)
    circuit.measure(num_qubits - 1, 0)  # the RY's qubit: P(1) = sin(0.55)**2
    circuit.x(num_qubits - 1)
    circuit.swap(num_qubits - 1, 2)
    circuit.measure(2, 1)  # the same qubit, flipped
    circuit.reset(2)
    circuit.measure(2, 2)  # 0 after the reset
    shots = 4000
    counts = GPUSimulator(device="CPU").run(circuit, shots=shots, seed_simulator=3).result() \
        .get_counts()
    p_one = np.sin(0.55) ** 2
    assert chi_square_pvalue(counts, {"010": 1 - p_one, "001": p_one}) > ALPHA


def test_planned_needs_a_policy_with_a_dtype():
    program = lower_circuit(mixed_circuit(CPU_POLICY.plan_min_qubits, 5, seed=23),
                            np.dtype(np.complex128), where="test")
    with pytest.raises(ValueError, match="plan_policy"):
        planned(program, SMALL_TILES)


def test_the_planner_imports_no_kernel_module():
    """Planning for any device needs only policies (pure data): no Numba, no numba-cuda."""
    check = ("import sys, gpuprovider.compile.plan; "
             "loaded = [m for m in ('numba', 'numba.cuda', 'gpuprovider.kernels.cuda', "
             "'gpuprovider.kernels.cpu') if m in sys.modules]; "
             "assert not loaded, loaded")
    completed = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
