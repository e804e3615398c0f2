"""Lowering a QuantumCircuit into a Program: the ops each kind of instruction becomes, idle-qubit
truncation, open parameters, the errors for bad input, and the lowered ops' effect against
``qiskit.quantum_info`` (applied by a small NumPy interpreter here, not the project's kernels)."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import (
    AnnotatedOperation,
    CircuitInstruction,
    ControlModifier,
    Gate,
    Instruction,
    InverseModifier,
    Parameter,
)
from qiskit.circuit.classical import expr
from qiskit.circuit.library import (
    CXGate,
    DiagonalGate,
    MCXGate,
    PauliGate,
    UCGate,
    UnitaryGate,
    XGate,
)
from qiskit.quantum_info import Operator, SparsePauliOp, Statevector, random_unitary

import gpuprovider.instructions  # also adds the save_* methods to QuantumCircuit
from gpuprovider.compile.lower import lower_circuit
from gpuprovider.compile.program import (
    BranchOp,
    ControlledOp,
    DiagonalOp,
    JumpOp,
    MatrixOp,
    MeasureOp,
    ParameterizedGateOp,
    PermutationOp,
    PrepareOp,
    Program,
    ResetOp,
    SaveAmplitudesOp,
    SaveDensityMatrixOp,
    SaveExpectationValueOp,
    SaveProbabilitiesOp,
    SaveStatevectorOp,
    StoreOp,
    SwitchOp,
    ZeroStateOp,
)
from gpuprovider.exceptions import InvalidCircuitError

C128 = np.complex128
GATE_OPS = (MatrixOp, DiagonalOp, PermutationOp, ControlledOp)


# --- a NumPy interpreter of Programs, independent of the kernels -----------------------------


def _local_index(indices: np.ndarray, qubits) -> np.ndarray:
    """Bit ``j`` of the result is bit ``qubits[j]`` of each index."""
    local = np.zeros_like(indices)
    for j, q in enumerate(qubits):
        local |= ((indices >> int(q)) & 1) << j
    return local


def _embed(qubits, matrix: np.ndarray, num_qubits: int) -> np.ndarray:
    """The full ``2**n`` matrix of ``matrix`` acting on ``qubits`` (argument order)."""
    indices = np.arange(1 << num_qubits)
    local = _local_index(indices, qubits)
    rest = indices & ~sum(1 << int(q) for q in qubits)
    return np.asarray(matrix)[local[:, None], local[None, :]] * (rest[:, None] == rest[None, :])


def _op_matrix(op, num_qubits: int) -> np.ndarray:
    """The full matrix of one gate op, built from its documented fields."""
    if isinstance(op, MatrixOp):
        return _embed(op.qubits, op.matrix, num_qubits)
    if isinstance(op, DiagonalOp):
        return _embed(op.qubits, np.diag(op.diagonal), num_qubits)
    if isinstance(op, PermutationOp):
        local = np.zeros((op.permutation.size,) * 2, dtype=C128)
        local[np.arange(op.permutation.size), op.permutation] = op.phases
        return _embed(op.qubits, local, num_qubits)
    if isinstance(op, ControlledOp):
        controls, targets = op.controls.size, op.targets.size
        local = np.eye(1 << (controls + targets), dtype=C128)
        rows = [op.control_state | (t << controls) for t in range(1 << targets)]
        local[np.ix_(rows, rows)] = op.matrix
        return _embed(np.concatenate((op.controls, op.targets)), local, num_qubits)
    raise TypeError(f"not a unitary gate op: {op}")


def _unitary(program: Program) -> np.ndarray:
    """The product of a Program's gate ops (it must have no other ops but saves)."""
    total = np.eye(1 << program.num_qubits, dtype=C128)
    for op in program.ops:
        if isinstance(op, (SaveStatevectorOp, SaveProbabilitiesOp)):
            continue
        total = _op_matrix(op, program.num_qubits) @ total
    return total


def _project(state: np.ndarray, qubit: int, outcomes: list[int]) -> tuple[np.ndarray, int]:
    """Collapse ``qubit``: deterministically when one outcome is certain, else to the next
    of ``outcomes``."""
    ones = ((np.arange(state.size) >> qubit) & 1).astype(bool)
    p1 = float(np.sum(np.abs(state[ones]) ** 2))
    if p1 < 1e-12:
        outcome = 0
    elif p1 > 1 - 1e-12:
        outcome = 1
    else:
        outcome = outcomes.pop(0)
    collapsed = np.where(ones == bool(outcome), state, 0)
    return collapsed / np.linalg.norm(collapsed), outcome


def _run(program: Program, outcomes=(), max_steps: int = 1000):
    """Run ``program`` from |0...0>: ``(state, classical state, saved statevectors)``."""
    outcomes = list(outcomes)
    n = program.num_qubits
    state = np.zeros(1 << n, dtype=C128)
    state[0] = 1
    classical = program.new_classical_state()
    saved = {}
    index = 0
    for _ in range(max_steps):
        if index >= len(program.ops):
            return state, classical, saved
        op = program.ops[index]
        index += 1
        if isinstance(op, GATE_OPS):
            state = _op_matrix(op, n) @ state
        elif isinstance(op, PrepareOp):
            on = _local_index(np.arange(state.size), op.qubits) != 0
            assert np.allclose(state[on], 0), "PrepareOp on qubits that are not |0>"
            prepared = np.zeros_like(state)
            spread = [sum(((m >> j) & 1) << int(q) for j, q in enumerate(op.qubits))
                      for m in range(op.amplitudes.size)]
            for base in np.flatnonzero(~on):
                prepared[base + np.array(spread)] += op.amplitudes * state[base]
            state = prepared
        elif isinstance(op, ZeroStateOp):
            state = np.zeros_like(state)
            state[0] = 1
        elif isinstance(op, MeasureOp):
            state, outcome = _project(state, op.qubit, outcomes)
            classical.set_bit(op.clbit, outcome)
        elif isinstance(op, ResetOp):
            state, outcome = _project(state, op.qubit, outcomes)
            if outcome:
                state = _embed([op.qubit], np.array([[0, 1], [1, 0]]), n) @ state
        elif isinstance(op, (SaveAmplitudesOp, SaveProbabilitiesOp)):
            continue  # read-outs that do not change the state
        elif isinstance(op, SaveStatevectorOp):
            vector = state if op.order is None else state[op.order]
            saved[op.label] = vector * np.exp(1j * op.global_phase)
        elif isinstance(op, JumpOp):
            index = op.target
        elif isinstance(op, BranchOp):
            if not op.condition(classical):
                index = op.target
        elif isinstance(op, SwitchOp):
            index = op.cases.get(op.target(classical), op.default)
        elif isinstance(op, StoreOp):
            op.store(classical)
        else:
            raise TypeError(f"the interpreter does not know {op}")
    raise AssertionError("the program did not finish")


def _lower(circuit: QuantumCircuit, **options) -> Program:
    return lower_circuit(circuit, np.dtype(C128), **options)


def _kinds(program: Program) -> list[str]:
    return [type(op).__name__ for op in program.ops]


def _qubits(op) -> list[int]:
    return [int(q) for q in op.qubits]


# --- gates ----------------------------------------------------------------------------------


@pytest.mark.parametrize("build, kind, qubits", [
    (lambda qc: qc.h(1), MatrixOp, [1]),
    (lambda qc: qc.ry(0.3, 0), MatrixOp, [0]),
    (lambda qc: qc.rx(0.0, 0), MatrixOp, [0]),  # its class's structure, not this value's
    (lambda qc: qc.x(2), PermutationOp, [2]),
    (lambda qc: qc.y(0), PermutationOp, [0]),
    (lambda qc: qc.cx(2, 0), PermutationOp, [2, 0]),
    (lambda qc: qc.swap(0, 2), PermutationOp, [0, 2]),
    (lambda qc: qc.s(1), DiagonalOp, [1]),
    (lambda qc: qc.rz(0.4, 2), DiagonalOp, [2]),
    (lambda qc: qc.cp(0.2, 1, 0), DiagonalOp, [1, 0]),
    (lambda qc: qc.rzz(0.5, 0, 2), DiagonalOp, [0, 2]),
    (lambda qc: qc.unitary(random_unitary(4, seed=1), [2, 1]), MatrixOp, [2, 1]),
    (lambda qc: qc.unitary(np.diag([1, 1j]), [1]), DiagonalOp, [1]),
    (lambda qc: qc.append(DiagonalGate([1, -1, 1j, 1]), [0, 2]), DiagonalOp, [0, 2]),
])
def test_a_gate_becomes_the_cheapest_op_of_its_kind(build, kind, qubits):
    circuit = QuantumCircuit(3)
    build(circuit)
    program = _lower(circuit)
    assert _kinds(program) == [kind.__name__]
    assert _qubits(program.ops[0]) == qubits
    np.testing.assert_allclose(_unitary(program), Operator(circuit).data, atol=1e-12)


@pytest.mark.parametrize("build, controls, control_state, targets", [
    (lambda qc: qc.ccx(2, 0, 1), [2, 0], 0b11, [1]),
    (lambda qc: qc.append(MCXGate(3, ctrl_state=0b101), [0, 1, 3, 2]), [0, 1, 3], 0b101, [2]),
    (lambda qc: qc.mcp(0.7, [3, 1], 0), [3, 1], 0b11, [0]),
    (lambda qc: qc.append(AnnotatedOperation(XGate(), [InverseModifier(),
                                                       ControlModifier(2, ctrl_state=1)]),
                          [1, 2, 0]), [1, 2], 0b01, [0]),
])
def test_a_gate_with_several_controls_becomes_a_controlled_op(build, controls, control_state,
                                                             targets):
    circuit = QuantumCircuit(4)
    build(circuit)
    program = _lower(circuit)
    assert _kinds(program) == ["ControlledOp"]
    op = program.ops[0]
    assert op.controls.tolist() == controls
    assert op.control_state == control_state
    assert op.targets.tolist() == targets
    assert op.matrix.shape == (2, 2)
    np.testing.assert_allclose(_unitary(program), Operator(circuit).data, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_op_arrays_are_in_the_state_dtype(dtype):
    circuit = QuantumCircuit(3)
    circuit.h(0)
    circuit.x(1)
    circuit.t(2)
    circuit.ccx(0, 1, 2)
    program = lower_circuit(circuit, np.dtype(dtype))
    arrays = [program.ops[0].matrix, program.ops[1].phases, program.ops[2].diagonal,
              program.ops[3].matrix]
    assert [array.dtype for array in arrays] == [np.dtype(dtype)] * 4
    assert all(_qubits(op) == [q] for op, q in zip(program.ops[:3], range(3)))
    assert all(op.qubits.dtype == np.int64 for op in program.ops)


def test_a_pauli_gate_becomes_one_qubit_ops_on_its_letters():
    circuit = QuantumCircuit(4)
    circuit.append(PauliGate("YIXZ"), [0, 1, 2, 3])  # Z on 0, X on 1, I on 2, Y on 3
    program = _lower(circuit)
    assert sorted(_qubits(op)[0] for op in program.ops) == [0, 1, 3]
    assert all(len(_qubits(op)) == 1 for op in program.ops)
    np.testing.assert_allclose(_unitary(program), Operator(circuit).data, atol=1e-12)


def test_a_multiplexer_becomes_controlled_ops_of_its_non_identity_matrices():
    matrices = [np.eye(2), np.array([[0, 1], [1, 0]]), random_unitary(2, seed=3).data,
                np.eye(2)]
    circuit = QuantumCircuit(3)
    circuit.append(UCGate(matrices), [1, 0, 2])  # target 1, controls 0 (low) and 2
    program = _lower(circuit)
    assert {type(op) for op in program.ops} == {ControlledOp}
    assert sorted(op.control_state for op in program.ops) == [1, 2]
    assert all(op.controls.tolist() == [0, 2] and op.targets.tolist() == [1]
               for op in program.ops)
    np.testing.assert_allclose(_unitary(program), Operator(circuit).data, atol=1e-12)


def test_a_gate_known_by_its_definition_is_inlined_on_its_qubits():
    inner = QuantumCircuit(2, name="bell", global_phase=0.25)
    inner.h(0)
    inner.cx(0, 1)
    circuit = QuantumCircuit(3)
    circuit.append(inner.to_gate(), [2, 0])
    expected = Statevector(circuit).data
    circuit.save_statevector()
    program = _lower(circuit)
    assert _kinds(program) == ["MatrixOp", "PermutationOp", "SaveStatevectorOp"]
    assert _qubits(program.ops[0]) == [2] and _qubits(program.ops[1]) == [2, 0]
    assert program.ops[2].global_phase == pytest.approx(0.25)  # the definition's phase
    _, _, saved = _run(program)
    np.testing.assert_allclose(saved["statevector"], expected, atol=1e-12)


def test_an_instruction_with_a_definition_is_inlined_with_its_measurements():
    inner = QuantumCircuit(2, 2, name="measure_both")
    inner.x(1)
    inner.measure([0, 1], [1, 0])
    circuit = QuantumCircuit(3, 3)
    circuit.append(inner.to_instruction(), [2, 1], [0, 2])
    program = _lower(circuit)
    assert _kinds(program) == ["PermutationOp", "MeasureOp", "MeasureOp"]
    assert {(op.qubit, op.clbit) for op in program.measurements} == {(2, 2), (1, 0)}


def test_a_recursive_definition_is_an_error():
    class Recursive(Gate):
        def __init__(self):
            super().__init__("recursive", 1, [])

        def _define(self):
            definition = QuantumCircuit(1)
            definition.append(Recursive(), [0])
            self.definition = definition

    circuit = QuantumCircuit(1)
    circuit.append(Recursive(), [0])
    with pytest.raises(InvalidCircuitError, match="'recursive' nests more than 64 deep"):
        _lower(circuit)


# --- the lowered ops against qiskit.quantum_info --------------------------------------------


def _random_circuit(seed: int, num_qubits: int = 4) -> QuantumCircuit:
    """Gates of every kind the lowering knows, on random qubits."""
    rng = np.random.default_rng(seed)
    circuit = QuantumCircuit(num_qubits, global_phase=float(rng.uniform(-3, 3)))
    composite = QuantumCircuit(2, name="composite", global_phase=0.3)
    composite.ry(0.4, 0)
    composite.cz(0, 1)
    composite.sx(1)
    for _ in range(25):
        qubits = [int(q) for q in rng.permutation(num_qubits)]
        angle = float(rng.uniform(-np.pi, np.pi))
        choice = int(rng.integers(14))
        if choice == 0:
            circuit.u(angle, 0.3 * angle, -angle, qubits[0])
        elif choice == 1:
            circuit.cx(qubits[0], qubits[1])
        elif choice == 2:
            circuit.crx(angle, qubits[0], qubits[1])
        elif choice == 3:
            circuit.ccx(*qubits[:3])
        elif choice == 4:
            circuit.mcp(angle, qubits[:2], qubits[2])
        elif choice == 5:
            circuit.unitary(random_unitary(4, seed=rng), qubits[:2])
        elif choice == 6:
            circuit.append(DiagonalGate(list(np.exp(1j * rng.uniform(-3, 3, 4)))), qubits[:2])
        elif choice == 7:
            circuit.swap(qubits[0], qubits[1])
        elif choice == 8:
            circuit.append(composite.to_gate(), qubits[:2])
        elif choice == 9:
            circuit.append(MCXGate(2, ctrl_state=int(rng.integers(4))), qubits[:3])
        elif choice == 10:
            circuit.append(UCGate([random_unitary(2, seed=rng).data for _ in range(2)]),
                           qubits[:2])
        elif choice == 11:
            circuit.append(PauliGate("XYZ"), qubits[:3])
        elif choice == 12:
            circuit.rzz(angle, qubits[0], qubits[1])
        else:
            circuit.append(random_unitary(4, seed=rng).to_instruction().control(1),
                           qubits[:3])
    return circuit


@pytest.mark.parametrize("seed", range(6))
def test_the_lowered_ops_multiply_to_the_circuits_operator(seed):
    circuit = _random_circuit(seed)
    with_save = circuit.copy()
    with_save.save_statevector()
    program = _lower(with_save)
    assert {type(op) for op in program.ops} <= {*GATE_OPS, SaveStatevectorOp}
    phase = np.exp(1j * program.ops[-1].global_phase)
    np.testing.assert_allclose(phase * _unitary(program), Operator(circuit).data, atol=1e-10)
    _, _, saved = _run(program)
    np.testing.assert_allclose(saved["statevector"], Statevector(circuit).data, atol=1e-10)


def test_single_precision_ops_match_the_operator_to_single_precision():
    circuit = _random_circuit(7)
    with_save = circuit.copy()
    with_save.save_statevector()
    program = lower_circuit(with_save, np.dtype(np.complex64))
    assert all(op.matrix.dtype == np.complex64 for op in program.ops
               if isinstance(op, (MatrixOp, ControlledOp)))
    phase = np.exp(1j * program.ops[-1].global_phase)
    np.testing.assert_allclose(phase * _unitary(program), Operator(circuit).data, atol=2e-5)


# --- measurement, reset, no-ops -------------------------------------------------------------


def test_barrier_delay_and_identity_lower_to_nothing():
    circuit = QuantumCircuit(2)
    circuit.barrier()
    circuit.delay(100, 0)
    circuit.id(1)
    program = _lower(circuit)
    assert program.ops == []
    assert program.used_qubits == ()


def test_measurements_nothing_acts_on_later_are_final():
    circuit = QuantumCircuit(3, 3)
    circuit.h(0)
    circuit.measure(0, 0)  # 0 is acted on again: mid-circuit
    circuit.x(0)
    circuit.measure(1, 1)  # clbit 1 is overwritten later: mid-circuit
    circuit.measure(2, 1)
    circuit.measure(0, 2)
    program = _lower(circuit)
    assert [(op.qubit, op.clbit, op.final) for op in program.measurements] == [
        (0, 0, False), (1, 1, False), (2, 1, True), (0, 2, True)]
    assert not program.is_sampled and program.stochastic_ops == 2


def test_a_circuit_measured_only_at_the_end_is_sampled():
    circuit = QuantumCircuit(2, 2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure([0, 1], [0, 1])
    program = _lower(circuit)
    assert all(op.final for op in program.measurements)
    assert program.is_sampled


def test_a_multi_qubit_measure_measures_each_qubit_into_its_clbit():
    circuit = QuantumCircuit(3, 3)
    circuit.x(1)
    circuit.append(Instruction("measure", 3, 3, []), [2, 0, 1], [1, 2, 0])
    program = _lower(circuit)
    assert [(op.qubit, op.clbit) for op in program.measurements] == [(2, 1), (0, 2), (1, 0)]
    _, classical, _ = _run(program)
    assert classical.clbits == 0b001  # qubit 1 (the |1>) into clbit 0


def test_a_multi_qubit_measure_needs_a_clbit_per_qubit():
    circuit = QuantumCircuit(2, 1)
    circuit.append(Instruction("measure", 2, 1, []), [0, 1], [0])
    with pytest.raises(InvalidCircuitError, match=r"'measure' on 2 qubit\(s\) writes 1 clbit"):
        _lower(circuit, where="circuit 'm' (index 3)")


def test_a_reset_acts_only_on_qubits_something_acted_on():
    circuit = QuantumCircuit(3)
    circuit.reset(0)  # still |0>: nothing to do
    circuit.x(1)
    circuit.append(Instruction("reset", 3, 0, []), [0, 1, 2])
    program = _lower(circuit)
    assert _kinds(program) == ["PermutationOp", "ResetOp"]
    assert program.ops[1].qubit == 1
    state, _, _ = _run(program)
    np.testing.assert_allclose(state, np.eye(8)[0], atol=1e-12)


# --- initialize and state preparation -------------------------------------------------------


def test_initialize_on_fresh_qubits_prepares_them_without_a_reset():
    circuit = QuantumCircuit(3)
    circuit.initialize([0.6, 0.8j, 0, 0], [2, 0])
    program = _lower(circuit)
    assert _kinds(program) == ["PrepareOp"]
    assert _qubits(program.ops[0]) == [2, 0]
    np.testing.assert_allclose(program.ops[0].amplitudes, [0.6, 0.8j, 0, 0])
    state, _, _ = _run(program)
    np.testing.assert_allclose(state, Statevector(circuit).data, atol=1e-12)


def test_initialize_resets_the_qubits_something_acted_on_first():
    circuit = QuantumCircuit(3)
    circuit.h([0, 1])
    circuit.initialize("1+", [1, 2])  # "+" on qubit 1, "1" on qubit 2
    program = _lower(circuit)
    assert [type(op) for op in program.ops[2:]].count(ResetOp) == 1
    reset = next(op for op in program.ops if isinstance(op, ResetOp))
    assert reset.qubit == 1
    state, _, _ = _run(program, outcomes=[0])
    expected = Statevector.from_label("1++").data  # qubit 2 is |1>, qubits 1 and 0 are |+>
    np.testing.assert_allclose(state, expected, atol=1e-12)


def test_initialize_of_every_qubit_zeroes_the_whole_state():
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.initialize(2)  # |10>
    program = _lower(circuit)
    assert _kinds(program)[:2] == ["MatrixOp", "ZeroStateOp"]
    assert ResetOp not in {type(op) for op in program.ops}
    state, _, _ = _run(program)
    np.testing.assert_allclose(state, [0, 0, 1, 0], atol=1e-12)


def test_state_preparation_is_a_prepare_on_fresh_qubits_and_a_unitary_after_gates():
    vector = np.array([0, 1, 1j, 0]) / np.sqrt(2)
    fresh = QuantumCircuit(2)
    fresh.prepare_state(vector)
    assert _kinds(_lower(fresh)) == ["PrepareOp"]
    state, _, _ = _run(_lower(fresh))
    np.testing.assert_allclose(state, vector, atol=1e-12)

    used = QuantumCircuit(2)
    used.h(0)
    used.prepare_state(vector, [0, 1])
    program = _lower(used)
    assert PrepareOp not in {type(op) for op in program.ops}
    np.testing.assert_allclose(_unitary(program), Operator(used).data, atol=1e-10)


def test_set_statevector_zeroes_the_state_and_loads_the_vector():
    vector = np.array([0, 0.6, 0, 0.8j])
    circuit = QuantumCircuit(2, global_phase=1.0)
    circuit.h(0)
    circuit.set_statevector(vector)
    circuit.save_statevector()
    program = _lower(circuit)
    assert _kinds(program) == ["MatrixOp", "ZeroStateOp", "PrepareOp", "SaveStatevectorOp"]
    assert program.ops[-1].global_phase == 0.0  # the phase so far belonged to the old state
    _, _, saved = _run(program)
    np.testing.assert_allclose(saved["statevector"], vector, atol=1e-12)


# --- saves ----------------------------------------------------------------------------------


def test_save_instructions_become_save_ops_with_their_labels_and_qubits():
    circuit = QuantumCircuit(3, global_phase=0.5)
    circuit.h(0)
    circuit.save_statevector()
    circuit.save_statevector_dict(label="sv_dict")
    circuit.save_probabilities([2, 0], label="p")
    circuit.save_amplitudes([0, 5], label="amp")
    circuit.save_amplitudes_squared([1], label="amp_sq")
    circuit.save_density_matrix([1], label="rho")
    circuit.save_expectation_value(SparsePauliOp(["ZX", "YY"], [1.0, 0.5]), [0, 2], label="e")
    circuit.save_expectation_value_variance(SparsePauliOp(["Z"]), [1], label="var")
    program = _lower(circuit)
    saves = {op.label: op for op in program.ops[1:]}
    assert list(saves) == ["statevector", "sv_dict", "p", "amp", "amp_sq", "rho", "e", "var"]

    statevector = saves["statevector"]
    assert isinstance(statevector, SaveStatevectorOp) and not statevector.as_dict
    assert statevector.global_phase == pytest.approx(0.5) and statevector.order is None
    assert statevector.subtype == "single"
    assert saves["sv_dict"].as_dict
    assert isinstance(saves["p"], SaveProbabilitiesOp) and saves["p"].qubits.tolist() == [2, 0]
    assert saves["p"].subtype == "average"
    assert isinstance(saves["amp"], SaveAmplitudesOp) and not saves["amp"].squared
    assert saves["amp"].indices.tolist() == [0, 5]
    assert saves["amp"].global_phase == pytest.approx(0.5)
    assert saves["amp_sq"].squared
    assert isinstance(saves["rho"], SaveDensityMatrixOp) and saves["rho"].qubits.tolist() == [1]
    expval = saves["e"]
    assert isinstance(expval, SaveExpectationValueOp) and not expval.variance
    # "ZX" on (0, 2): X on qubit 0, Z on qubit 2; "YY": X and Z on both.
    assert sorted(expval.terms) == [(0b001, 0b100, 1.0), (0b101, 0b101, 0.5)]
    variance = saves["var"]
    assert variance.variance and variance.terms == ((0, 0b010, 1.0),)
    assert [(x, z) for x, z, _ in variance.square_terms] == [(0, 0)]  # Z @ Z = I
    assert variance.square_terms[0][2] == pytest.approx(1.0)


def test_a_save_on_permuted_qubits_reads_the_state_in_their_order():
    circuit = QuantumCircuit(3)
    circuit.x(0)
    circuit.h(2)
    expected = Statevector(circuit).data
    circuit.append(gpuprovider.instructions.SaveStatevector(3), [2, 0, 1])
    circuit.append(gpuprovider.instructions.SaveAmplitudes(3, [1], label="a"), [2, 0, 1])
    program = _lower(circuit)
    assert program.ops[2].order is not None
    _, _, saved = _run(program)
    # Basis state m of the save has bit 0 = qubit 2, bit 1 = qubit 0, bit 2 = qubit 1.
    reordered = np.zeros(8, dtype=C128)
    for m in range(8):
        index = ((m & 1) << 2) | (((m >> 1) & 1) << 0) | (((m >> 2) & 1) << 1)
        reordered[m] = expected[index]
    np.testing.assert_allclose(saved["statevector"], reordered, atol=1e-12)
    assert program.ops[3].indices.tolist() == [0b100]  # save basis 1 = qubit 2 set


def test_a_save_makes_earlier_measurements_mid_circuit():
    circuit = QuantumCircuit(2, 1)
    circuit.h(0)
    circuit.measure(0, 0)
    circuit.save_statevector()
    assert not _lower(circuit).measurements[0].final


# --- control flow ---------------------------------------------------------------------------


def _targets_in_range(program: Program) -> bool:
    ends = []
    for op in program.ops:
        if isinstance(op, (JumpOp, BranchOp)):
            ends.append(op.target)
        elif isinstance(op, SwitchOp):
            ends.extend([*op.cases.values(), op.default])
    return all(0 <= end <= len(program.ops) for end in ends)


@pytest.mark.parametrize("measured", [0, 1])
def test_if_else_becomes_a_branch_and_a_jump(measured):
    circuit = QuantumCircuit(2, 1)
    if measured:
        circuit.x(0)
    circuit.measure(0, 0)
    with circuit.if_test((circuit.clbits[0], 1)) as else_:
        circuit.x(1)
    with else_:
        circuit.h(1)
    program = _lower(circuit)
    assert program.has_control_flow and not program.is_sampled
    assert [type(op) for op in program.ops].count(BranchOp) == 1
    assert [type(op) for op in program.ops].count(JumpOp) == 1
    assert _targets_in_range(program)
    state, classical, _ = _run(program)
    assert classical.clbits == measured
    expected = Statevector.from_label("11" if measured else "+0").data
    np.testing.assert_allclose(state, expected, atol=1e-12)


def test_if_without_else_skips_its_body():
    circuit = QuantumCircuit(1, 1)
    circuit.measure(0, 0)
    with circuit.if_test((circuit.clbits[0], 1)):
        circuit.x(0)
    program = _lower(circuit)
    assert JumpOp not in {type(op) for op in program.ops}
    branch = next(op for op in program.ops if isinstance(op, BranchOp))
    assert branch.target == len(program.ops)
    state, _, _ = _run(program)
    np.testing.assert_allclose(state, [1, 0], atol=1e-12)


@pytest.mark.parametrize("value, expected", [(0, "0001"), (1, "0101"), (2, "0110"),
                                             (3, "1011")])
def test_switch_becomes_a_switch_op_with_a_case_per_value(value, expected):
    circuit = QuantumCircuit(4, 2)
    for bit in range(2):
        if (value >> bit) & 1:
            circuit.x(bit)
    circuit.measure([0, 1], [0, 1])
    with circuit.switch(circuit.cregs[0]) as case:
        with case(0):
            circuit.x(0)
        with case(1, 2):
            circuit.x(2)
        with case(case.DEFAULT):
            circuit.x(3)
    program = _lower(circuit)
    switch = next(op for op in program.ops if isinstance(op, SwitchOp))
    assert set(switch.cases) == {0, 1, 2}
    assert switch.cases[1] == switch.cases[2] != switch.cases[0]
    assert switch.default not in switch.cases.values()
    assert _targets_in_range(program)
    state, _, _ = _run(program)
    np.testing.assert_allclose(state, Statevector.from_label(expected).data, atol=1e-12)


def test_a_switch_without_default_continues_after_it():
    circuit = QuantumCircuit(1, 1)
    circuit.measure(0, 0)
    with circuit.switch(circuit.clbits[0]) as case, case(1):
        circuit.x(0)
    program = _lower(circuit)
    switch = next(op for op in program.ops if isinstance(op, SwitchOp))
    assert switch.default == len(program.ops)
    state, _, _ = _run(program)
    np.testing.assert_allclose(state, [1, 0], atol=1e-12)


def test_while_loop_jumps_back_until_its_condition_fails():
    circuit = QuantumCircuit(2, 1)
    with circuit.while_loop((circuit.clbits[0], 0)):
        circuit.x(1)
        circuit.h(0)
        circuit.measure(0, 0)
    program = _lower(circuit)
    assert any(isinstance(op, JumpOp) and op.target < index
               for index, op in enumerate(program.ops))
    assert _targets_in_range(program)
    # Measures 0 twice, then 1: the body runs three times, so qubit 1 ends flipped.
    state, classical, _ = _run(program, outcomes=[0, 0, 1])
    assert classical.clbits == 1
    np.testing.assert_allclose(np.abs(state) ** 2, [0, 0, 0, 1], atol=1e-12)


def test_for_loop_is_unrolled_with_its_parameter_bound():
    theta = Parameter("theta")
    circuit = QuantumCircuit(1)
    with circuit.for_loop([1, 2, 4], theta):
        circuit.rx(0.1 * theta, 0)
    program = _lower(circuit)
    assert _kinds(program) == ["MatrixOp"] * 3
    np.testing.assert_allclose(_unitary(program), Operator(_rx(0.7)).data, atol=1e-12)


def _rx(angle: float) -> QuantumCircuit:
    circuit = QuantumCircuit(1)
    circuit.rx(angle, 0)
    return circuit


def test_break_and_continue_jump_out_of_the_iteration():
    circuit = QuantumCircuit(2)
    with circuit.for_loop(range(3)):
        circuit.x(0)
        circuit.continue_loop()
    with circuit.for_loop(range(3)):
        circuit.x(1)
        circuit.break_loop()
    program = _lower(circuit)
    assert _targets_in_range(program)
    state, _, _ = _run(program)  # three flips of qubit 0, one of qubit 1
    np.testing.assert_allclose(state, Statevector.from_label("11").data, atol=1e-12)


def test_store_writes_a_variable_a_later_branch_reads():
    circuit = QuantumCircuit(1)
    flag = circuit.add_var("flag", expr.lift(False))
    circuit.store(flag, expr.lift(True))
    with circuit.if_test(flag):
        circuit.x(0)
    program = _lower(circuit)
    assert [type(op) for op in program.ops].count(StoreOp) == 2  # the initialiser and store
    state, _, _ = _run(program)
    np.testing.assert_allclose(state, [0, 1], atol=1e-12)


def test_a_global_phase_inside_a_block_becomes_a_phase_op():
    body = QuantumCircuit(1, 1, global_phase=0.5)
    body.x(0)
    circuit = QuantumCircuit(1, 1)
    circuit.x(0)
    circuit.measure(0, 0)
    circuit.if_else((circuit.clbits[0], 1), body, None, [0], [0])
    program = _lower(circuit)
    phases = [op for op in program.ops if isinstance(op, DiagonalOp) and op.qubits.size == 0]
    assert len(phases) == 1
    np.testing.assert_allclose(phases[0].diagonal, [np.exp(0.5j)])
    state, _, _ = _run(program)
    np.testing.assert_allclose(state, [np.exp(0.5j), 0], atol=1e-12)


# --- idle-qubit truncation ------------------------------------------------------------------


def _idle_circuit() -> QuantumCircuit:
    circuit = QuantumCircuit(6, 2)
    circuit.h(4)
    circuit.cx(4, 1)
    circuit.barrier()  # names every qubit but acts on none
    circuit.delay(10, 0)
    circuit.id(5)
    circuit.measure(0 + 4, 0)
    with circuit.if_test((circuit.clbits[0], 1)):
        circuit.x(3)  # acted on only inside control flow: still used
    return circuit


def test_truncation_keeps_only_the_used_qubits_in_order():
    circuit = _idle_circuit()
    program = _lower(circuit, truncate=True)
    assert program.used_qubits == (1, 3, 4)
    assert program.qubit_map == (1, 3, 4)
    assert program.num_qubits == 3 and program.circuit_qubits == 6
    assert program.truncated
    # The ops name Program positions: circuit qubit 4 is position 2, 1 is 0, 3 is 1.
    assert _qubits(program.ops[0]) == [2]
    assert _qubits(program.ops[1]) == [2, 0]
    assert program.measurements[0].qubit == 2
    x_op = [op for op in program.ops if isinstance(op, PermutationOp)][-1]
    assert _qubits(x_op) == [1]


def test_without_truncation_every_qubit_is_kept_and_the_used_ones_reported():
    program = _lower(_idle_circuit())
    assert program.qubit_map is None
    assert program.used_qubits == (1, 3, 4)
    assert program.num_qubits == 6 and program.circuit_qubits == 6
    assert not program.truncated
    assert _qubits(program.ops[0]) == [4]


def test_truncation_of_a_circuit_that_uses_every_qubit_changes_nothing():
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    program = _lower(circuit, truncate=True)
    assert program.qubit_map == (0, 1) and not program.truncated
    np.testing.assert_allclose(_unitary(program), Operator(circuit).data, atol=1e-12)


def test_truncation_of_an_idle_circuit_keeps_one_qubit():
    circuit = QuantumCircuit(4)
    circuit.barrier()
    program = _lower(circuit, truncate=True)
    assert program.num_qubits == 1 and program.qubit_map == (0,)
    assert program.used_qubits == () and program.truncated


def test_a_truncated_program_has_the_reduced_operator():
    circuit = QuantumCircuit(5)
    circuit.h(3)
    circuit.cx(3, 1)
    circuit.rz(0.4, 1)
    program = _lower(circuit, truncate=True)
    reduced = QuantumCircuit(2)
    reduced.h(1)
    reduced.cx(1, 0)
    reduced.rz(0.4, 0)
    assert program.num_qubits == 2
    np.testing.assert_allclose(_unitary(program), Operator(reduced).data, atol=1e-12)


def test_errors_in_a_truncated_circuit_name_the_circuits_qubits():
    circuit = QuantumCircuit(5)
    circuit.h(4)
    circuit.rx(float("inf"), 2)
    with pytest.raises(InvalidCircuitError, match=r"'rx' on qubits \[2\] has the parameter inf"):
        _lower(circuit, truncate=True)


# --- open parameters ------------------------------------------------------------------------


def test_parameterized_lowering_leaves_parameters_open_and_bind_binds_them():
    a, b = Parameter("a"), Parameter("b")
    circuit = QuantumCircuit(2, global_phase=a)
    circuit.rx(a, 0)
    circuit.rzz(a - b, 0, 1)
    circuit.h(1)
    program = _lower(circuit, parameterized=True)
    open_ops = [op for op in program.ops if isinstance(op, ParameterizedGateOp)]
    assert len(open_ops) == 3  # the phase, rx and rzz; h is bound already
    assert sorted(_qubits(op) for op in open_ops) == [[], [0], [0, 1]]
    assert any(isinstance(op, MatrixOp) for op in program.ops)

    values = {a: 0.3, b: -0.5}
    bound = program.bind(values)
    assert not any(isinstance(op, ParameterizedGateOp) for op in bound.ops)
    assert any(isinstance(op, ParameterizedGateOp) for op in program.ops)  # unchanged
    expected = Operator(circuit.assign_parameters(values)).data
    np.testing.assert_allclose(_unitary(bound), expected, atol=1e-12)


def test_a_bound_op_keeps_its_kind_at_special_values():
    a, b = Parameter("a"), Parameter("b")
    circuit = QuantumCircuit(2)
    circuit.rx(a - b, 0)
    circuit.crz(a, 0, 1)
    program = _lower(circuit, parameterized=True)
    generic = program.bind({a: 0.3, b: 0.1})
    special = program.bind({a: 0.0, b: 0.0})  # rx(0) is the identity, still a MatrixOp
    assert _kinds(generic) == _kinds(special) == ["MatrixOp", "DiagonalOp"]
    np.testing.assert_allclose(_unitary(special), np.eye(4), atol=1e-12)


def test_a_parameterized_custom_gate_is_bound_through_its_definition():
    theta = Parameter("theta")
    inner = QuantumCircuit(2, name="entangler")
    inner.ry(theta, 0)
    inner.cx(0, 1)
    circuit = QuantumCircuit(2)
    circuit.append(inner.to_gate(), [1, 0])
    program = _lower(circuit, parameterized=True)
    bound = program.bind({theta: 1.1})
    np.testing.assert_allclose(_unitary(bound),
                               Operator(circuit.assign_parameters({theta: 1.1})).data,
                               atol=1e-12)


def test_binding_to_a_value_that_is_not_finite_names_the_gate_and_the_value():
    a = Parameter("a")
    circuit = QuantumCircuit(1)
    circuit.rx(a, 0)
    program = _lower(circuit, parameterized=True, where="circuit 'sweep' (index 2)")
    with pytest.raises(InvalidCircuitError,
                       match=r"circuit 'sweep' \(index 2\): gate 'rx'.*a=nan"):
        program.bind({a: float("nan")})


# --- errors ---------------------------------------------------------------------------------


def _with_instruction(num_qubits: int, operation, qubits, clbits=(), num_clbits: int = 0):
    """A circuit holding ``operation`` on the given bits, bypassing append's checks."""
    circuit = QuantumCircuit(num_qubits, num_clbits)
    circuit._data.append(CircuitInstruction(operation, [circuit.qubits[q] for q in qubits],
                                            [circuit.clbits[c] for c in clbits]))
    return circuit


def _nan_rx() -> QuantumCircuit:
    circuit = QuantumCircuit(3)
    circuit.rx(float("nan"), 2)
    return circuit


def _not_unitary() -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.unitary(np.eye(4), [1, 0])
    circuit.data[0].operation.params[0] = np.ones((4, 4))
    return circuit


def _wrong_size_unitary() -> QuantumCircuit:
    return _with_instruction(2, UnitaryGate(np.eye(2)), [0, 1])


def _bad_diagonal() -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.append(DiagonalGate([1, 1, 1, 1]), [0, 1])
    circuit.data[0].operation.params[3] = 2
    return circuit


def _bad_norm() -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.initialize([1, 0], [1])
    circuit.data[0].operation.params[:] = [1, 1]
    return circuit


def _bad_label() -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.initialize("01", [0, 1])
    circuit.data[0].operation.params[:] = ["0", "q"]
    return circuit


def _bad_integer() -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.initialize(1, [0, 1])
    circuit.data[0].operation.params[:] = [7]
    return circuit


def _unbound() -> QuantumCircuit:
    circuit = QuantumCircuit(1)
    circuit.rx(Parameter("beta"), 0)
    circuit.ry(Parameter("alpha"), 0)
    return circuit


def _opaque() -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.append(Instruction("mystery", 1, 0, []), [1])
    return circuit


def _two_labels() -> QuantumCircuit:
    circuit = QuantumCircuit(1)
    circuit.save_probabilities(label="p")
    circuit.save_probabilities(label="p")
    return circuit


def _save_in_loop() -> QuantumCircuit:
    circuit = QuantumCircuit(1, 1)
    with circuit.while_loop((circuit.clbits[0], 0)):
        circuit.save_statevector()
    return circuit


def _partial_save() -> QuantumCircuit:
    circuit = QuantumCircuit(3)
    circuit.h(2)
    circuit.append(gpuprovider.instructions.SaveStatevector(2), [0, 1])
    return circuit


def _bad_subtype() -> QuantumCircuit:
    circuit = QuantumCircuit(1)
    circuit.save_probabilities(label="p")
    circuit.data[0].operation._subtype = "single"
    return circuit


def _bad_set_statevector() -> QuantumCircuit:
    circuit = QuantumCircuit(1)
    circuit.set_statevector([1, 0])
    circuit.data[0].operation.params[0] = np.array([1, 1])
    return circuit


@pytest.mark.parametrize("build, message", [
    (_nan_rx, r"'rx' on qubits \[2\] has the parameter nan; parameters must be finite"),
    (_not_unitary, r"the 'unitary' on qubits \[1, 0\] is not unitary: .* = 4 exceeds 1e-08"),
    (_wrong_size_unitary, r"'unitary' is a 1-qubit, 0-clbit instruction but is applied to 2"),
    (_bad_diagonal, r"the 'diagonal' on qubits \[0, 1\] is not unitary"),
    (_bad_norm, r"the 'initialize' vector on qubits \[1\] has norm 1.41421356237; it must be"),
    (_bad_label, r"the 'initialize' label '0q' on qubits \[0, 1\] must have 2 characters"),
    (_bad_integer, r"the 'initialize' integer 7 on qubits \[0, 1\] must be a basis state 0 "),
    (_unbound, r"has unbound parameters: alpha, beta; bind them"),
    (_opaque, r"instruction 'mystery' has neither a matrix nor a definition"),
    (_two_labels, r"two save instructions use the label 'p'"),
    (_save_in_loop, r"'save_statevector' inside a loop would save 'statevector'"),
    (_partial_save, r"'save_statevector' must act on every qubit the circuit uses \(3\)"),
    (_bad_subtype, r"'save_probabilities' has the subtype 'single'"),
    (_bad_set_statevector, r"'set_statevector' has a vector of norm 1.41421356237"),
    (lambda: _with_instruction(2, CXGate(), [1, 1]),
     r"'cx' names a bit twice \(qubits \[1, 1\], clbits \[\]\)"),
    (lambda: _with_instruction(2, XGate(), [0, 1]),
     r"'x' is a 1-qubit, 0-clbit instruction but is applied to 2 qubit\(s\) and 0 clbit"),
])
def test_bad_input_is_an_error_naming_the_circuit_and_the_fault(build, message):
    with pytest.raises(InvalidCircuitError, match=message) as info:
        _lower(build(), where="circuit 'bad' (index 4)")
    assert info.value.message.startswith("circuit 'bad' (index 4)")


def test_loop_exits_outside_a_loop_are_errors():
    circuit = QuantumCircuit(1)
    circuit.break_loop()
    with pytest.raises(InvalidCircuitError, match="'break_loop' outside a loop"):
        _lower(circuit)


def test_only_circuits_are_lowered():
    with pytest.raises(InvalidCircuitError, match="circuit 3: expected a QuantumCircuit, "
                                                  "got str"):
        lower_circuit("h 0", np.dtype(C128), where="circuit 3")


def test_a_parameterized_lowering_still_rejects_non_finite_values():
    circuit = _nan_rx()
    circuit.ry(Parameter("a"), 0)
    with pytest.raises(InvalidCircuitError, match="has the parameter nan"):
        _lower(circuit, parameterized=True)
