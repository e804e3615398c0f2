"""Plan once, replay for every set (``gpuprovider/compile/recipe.py``): the replayed plan of
each parameter set applies the same state as that set planned in full and as Qiskit's
Statevector; sets whose gates change kind are planned in full; a recipe that lost a source
is caught by its check."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter, ParameterVector
from qiskit.circuit.library import RXGate
from qiskit.primitives import StatevectorEstimator
from qiskit.quantum_info import SparsePauliOp, Statevector

from gpuprovider import GPUSimulator
from gpuprovider.compile import merge, recipe
from gpuprovider.compile.gate_batches import BIND_CHUNK_SETS
from gpuprovider.compile.lower import lower_circuit
from gpuprovider.compile.plan import PlanPolicy, planned
from gpuprovider.compile.program import ParameterizedGateOp, Program, SaveStatevectorOp
from gpuprovider.compile.traced import Numbers
from gpuprovider.kernels import cpu
from gpuprovider.kernels.policy import CPU_POLICY
from gpuprovider.primitives import EstimatorV2

PRECISIONS = {"double": (np.complex128, 1e-10), "single": (np.complex64, 2e-5)}
SPECIAL = (0.0, np.pi, 2 * np.pi, -np.pi, np.pi / 2)
"""Angles at which gates become identities, permutations or diagonals."""


def small_tiles(dtype) -> PlanPolicy:
    """Tiles of 3 qubits: most gates have qubits outside the tile, wide gates stay ops."""
    return PlanPolicy(tile_qubits=3, low_qubits=1, lane_qubits=0, fusion_max_qubits=3,
                      diagonal_max_qubits=4, dense_cost=CPU_POLICY.dense_cost,
                      diagonal_cost=CPU_POLICY.diagonal_cost, parallel_min_qubits=0,
                      dtype=np.dtype(dtype))


def sweep_circuit(num_qubits: int = 5) -> QuantumCircuit:
    """Every parameterised kind the recipe replays: standard dense and diagonal gates (ry,
    rz, u, crx, cp, rzz), a two-controlled RX built set by set (a ControlledOp, which the
    planner makes a diagonal where its angle is 0), a parameterised global phase, a SWAP
    and fixed gates."""
    theta = ParameterVector("t", 6)
    circuit = QuantumCircuit(num_qubits, global_phase=theta[5] / 2)
    for q in range(num_qubits):
        circuit.ry(theta[0] + q, q)
        circuit.rz(theta[1] * (q + 1), q)
    for q in range(num_qubits - 1):
        circuit.cx(q, q + 1)
    circuit.swap(0, num_qubits - 1)
    circuit.crx(theta[2], 1, 3)
    circuit.cp(theta[3], 0, 2)
    circuit.rzz(theta[4] - theta[3], 2, 4)
    circuit.append(RXGate(2 * theta[2]).control(2, annotated=False), [0, 4, 2])
    circuit.u(theta[0], theta[1], theta[2], 3)
    circuit.h(2)
    for q in range(num_qubits):
        circuit.ry(theta[4] * 0.5, q)
    return circuit


def sweep_values(parameters: int, rows: int, seed: int, special_first: bool) -> np.ndarray:
    """``rows`` random sets, every fourth one of special angles, the first of them all 0
    (row 0 with ``special_first``: the recipe is then recorded on a set whose gates are
    degenerate)."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(-4, 4, (rows, parameters))
    special = range(0 if special_first else 3, rows, 4)
    for row in special:
        values[row] = rng.choice(SPECIAL, parameters)
    values[special[0]] = 0.0
    return values


def lowered(circuit: QuantumCircuit, dtype) -> Program:
    """The circuit's program with its parameters open, ending in a statevector save (before
    which the planner puts relabelled qubits back in place)."""
    program = lower_circuit(circuit, np.dtype(dtype), parameterized=True)
    return replace(program, ops=[*program.ops, SaveStatevectorOp("end", 0.0)])


def final_state(program: Program, dtype) -> np.ndarray:
    """The state after the program's gates (its saves skipped)."""
    state = cpu.allocate(program.num_qubits, dtype)
    for op in program.ops:
        if not isinstance(op, SaveStatevectorOp):
            op.apply(cpu, state)
    return np.asarray(state)


@pytest.mark.parametrize("special_first", [False, True], ids=["random-first", "special-first"])
@pytest.mark.parametrize("fusion", [True, False], ids=["tiles", "merged-only"])
@pytest.mark.parametrize("precision", list(PRECISIONS))
def test_replayed_sets_equal_full_planning_and_statevector(precision, fusion, special_first):
    dtype, tolerance = PRECISIONS[precision]
    circuit = sweep_circuit()
    parameters = tuple(circuit.parameters)
    program = lowered(circuit, dtype)
    policy = small_tiles(dtype)

    def plan(bound):
        return planned(bound, policy) if fusion else merge.merged(bound)

    values = sweep_values(len(parameters), BIND_CHUNK_SETS + 9, 1, special_first)
    counts = recipe.SweepCounts()
    programs = list(recipe.planned_sets(program, parameters, values, plan, counts=counts))
    assert len(programs) == len(values)
    for row, ran in enumerate(programs):
        binding = dict(zip(parameters, values[row]))
        full = plan(program.bind(binding))
        mine = final_state(ran, dtype)
        np.testing.assert_allclose(mine, final_state(full, dtype), atol=tolerance, rtol=0,
                                   err_msg=f"set {row}: {values[row]}")
        expected = Statevector(circuit.assign_parameters(binding)).data
        np.testing.assert_allclose(mine, expected, atol=10 * tolerance, rtol=0,
                                   err_msg=f"set {row}: {values[row]}")
    # The all-zero set's two-controlled RX(0) is a diagonal: a recipe of its own.
    assert counts.recorded >= 2 and counts.replayed > len(values) // 2, counts


@pytest.mark.parametrize("max_recipes", [1, recipe.MAX_RECIPES])
def test_a_set_whose_controlled_gate_becomes_diagonal_needs_its_own_recipe(monkeypatch,
                                                                         max_recipes):
    """RX(0) controlled twice is the identity: the planner makes it a diagonal, not a
    controlled gate, so a recipe recorded with a rotation cannot replay that set (nor the
    reverse): it gets a recipe of its own, or with no recipe left is planned in full."""
    monkeypatch.setattr(recipe, "MAX_RECIPES", max_recipes)
    a = Parameter("a")
    circuit = QuantumCircuit(4)
    circuit.h(range(4))
    circuit.append(RXGate(a).control(2, annotated=False), [0, 1, 3])
    circuit.ry(a, 2)
    program = lowered(circuit, np.complex128)
    policy = small_tiles(np.complex128)
    for column in ([0.7, 0.0, 1.1, 4 * np.pi, -0.3], [0.0, 0.7, 1.1, 0.0, -0.3]):
        values = np.array(column)[:, None]
        counts = recipe.SweepCounts()
        programs = list(recipe.planned_sets(program, (a,), values,
                                            lambda bound: planned(bound, policy),
                                            counts=counts))
        for row, ran in enumerate(programs):
            expected = Statevector(circuit.assign_parameters({a: values[row, 0]})).data
            np.testing.assert_allclose(final_state(ran, np.complex128), expected, atol=1e-10)
        identity = values[:, 0] == 0  # RX(4 pi) has entries of 1e-16 off its diagonal
        others = int(np.sum(identity != identity[0]))
        if max_recipes == 1:
            assert counts == recipe.SweepCounts(1, len(values) - 1 - others, others)
        else:
            assert counts == recipe.SweepCounts(2, len(values) - 2, 0)


def test_a_recipe_that_lost_a_source_is_caught_by_its_check(monkeypatch):
    """If a planner step forgot to pass its source on, its numbers would be the first set's
    for every set: the check against a second set planned in full drops the recipe."""
    circuit = sweep_circuit(5)
    parameters = tuple(circuit.parameters)
    program = lowered(circuit, np.complex128)
    policy = small_tiles(np.complex128)
    derive = merge.derive

    def forgetful(function, *operands, **static):
        return Numbers(derive(function, *operands, **static).values)

    monkeypatch.setattr(merge, "derive", forgetful)
    values = sweep_values(len(parameters), 12, 2, False)
    counts = recipe.SweepCounts()
    programs = list(recipe.planned_sets(program, parameters, values,
                                        lambda bound: planned(bound, policy), counts=counts))
    for row, ran in enumerate(programs):
        expected = Statevector(circuit.assign_parameters(dict(zip(parameters,
                                                                  values[row])))).data
        np.testing.assert_allclose(final_state(ran, np.complex128), expected, atol=1e-10)
    assert counts.replayed == 0, counts


def test_the_sweep_replays_on_the_backend_and_matches_statevector():
    """13 qubits (past the CPU planner's threshold), 20 bindings through parameter_binds."""
    circuit = sweep_circuit(13)
    parameters = list(circuit.parameters)
    values = sweep_values(len(parameters), 20, 3, False)
    saved = circuit.copy()
    saved.save_statevector()
    binds = [{p: list(values[:, j]) for j, p in enumerate(parameters)}]
    result = GPUSimulator(device="CPU").run(saved, parameter_binds=binds, shots=1).result()
    for row in range(len(values)):
        expected = Statevector(circuit.assign_parameters(dict(zip(parameters,
                                                                  values[row])))).data
        np.testing.assert_allclose(np.asarray(result.get_statevector(row)), expected,
                                   atol=1e-9)
    execution = GPUSimulator(device="CPU").execution()
    [compiled] = execution.compile([circuit], ["sweep"], parameterized=True)
    counts = recipe.SweepCounts()
    list(execution.plan_sets(compiled.program, tuple(parameters), values, counts=counts))
    assert counts.replayed >= len(values) - 4, counts


@pytest.mark.parametrize("with_swap", [False, True], ids=["no-swap", "swap"])
def test_estimator_sets_replayed_with_their_read_outs_match_statevector(with_swap):
    """The estimator appends each set's read-out after the gates: replayed where nothing
    needs renaming, planned in full after a SWAP (whose relabelling the read-out needs)."""
    theta = ParameterVector("t", 4)
    circuit = QuantumCircuit(12)
    for q in range(12):
        circuit.ry(theta[q % 4] + 0.1 * q, q)
    for q in range(11):
        circuit.cx(q, q + 1)
    if with_swap:
        circuit.swap(0, 11)
    for q in range(12):
        circuit.rz(theta[(q + 1) % 4], q)
        circuit.ry(theta[(q + 2) % 4], q)
    observables = [SparsePauliOp.from_list([("Z" * 12, 1.0), ("X" + "I" * 10 + "Y", 0.5)]),
                   SparsePauliOp.from_list([("I" * 5 + "ZZ" + "I" * 5, -1.0)])]
    values = sweep_values(4, 10, 4, False).reshape(10, 1, 4)
    pub = (circuit, observables, values)
    estimator = EstimatorV2(options={"backend_options": {"device": "CPU"}})
    got = np.asarray(estimator.run([pub]).result()[0].data.evs)
    expected = np.asarray(StatevectorEstimator().run([pub]).result()[0].data.evs)
    np.testing.assert_allclose(got, expected, atol=1e-9)


def test_record_refuses_a_swap_when_ops_are_appended():
    circuit = QuantumCircuit(3)
    a = Parameter("a")
    circuit.ry(a, 0)
    circuit.swap(0, 2)
    program = lower_circuit(circuit, np.dtype(np.complex128), parameterized=True)
    values = np.array([[0.1], [0.2], [0.3]])
    counts = recipe.SweepCounts()
    programs = list(recipe.planned_sets(program, (a,), values, merge.merged,
                                        extra=lambda row: [], counts=counts))
    assert counts == recipe.SweepCounts(planned=3)
    assert all(not isinstance(op, ParameterizedGateOp) for p in programs for op in p.ops)
    counts = recipe.SweepCounts()
    list(recipe.planned_sets(program, (a,), values, merge.merged, counts=counts))
    assert counts == recipe.SweepCounts(recorded=1, replayed=2)


def test_replayed_tile_passes_share_their_integers():
    """Only the numbers are rebuilt: each set's tile passes share the recorded tables."""
    circuit = sweep_circuit(5)
    parameters = tuple(circuit.parameters)
    program = lowered(circuit, np.complex128)
    policy = small_tiles(np.complex128)
    values = sweep_values(len(parameters), 5, 5, False)
    programs = list(recipe.planned_sets(program, parameters, values,
                                        lambda bound: planned(bound, policy)))
    first, later = programs[0], programs[2]  # set 3 has a recipe of its own
    tiles = [(a, b) for a, b in zip(first.ops, later.ops) if hasattr(a, "tile_pass")]
    assert tiles
    assert all(a.tile_pass.buffer is b.tile_pass.buffer for a, b in tiles)
    assert any(not np.array_equal(a.tile_pass.data, b.tile_pass.data) for a, b in tiles)


def test_sampler_sets_replayed_match_the_exact_distributions():
    """The sampler's set-by-set path (12 qubits: no batch of states) replays too; each set's
    counts follow its Statevector's distribution."""
    from gpuprovider.primitives import SamplerV2
    from testkit import ALPHA, chi_square_pvalue

    theta = ParameterVector("t", 3)
    circuit = QuantumCircuit(12)
    for q in range(12):
        circuit.ry(theta[q % 3] * (1 + 0.1 * q), q)
    for q in range(11):
        circuit.cx(q, q + 1)
    for q in range(12):
        circuit.rz(theta[(q + 1) % 3], q)
        circuit.ry(theta[(q + 2) % 3] / 2, q)
    measured = circuit.measure_all(inplace=False)
    values = sweep_values(3, 6, 6, False)
    sampler = SamplerV2(seed=11, options={"backend_options": {"device": "CPU"}})
    data = sampler.run([(measured, values)], shots=3000).result()[0].data
    for row in range(len(values)):
        expected = Statevector(circuit.assign_parameters(dict(zip(circuit.parameters,
                                                                  values[row]))))
        counts = data.meas.get_counts(row)
        assert chi_square_pvalue(counts, expected.probabilities_dict()) > ALPHA, row
