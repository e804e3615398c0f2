"""The one-qubit merge pass: same state, fewer passes."""

from __future__ import annotations

import numpy as np
import pytest
from gpuprovider.kernels import cpu
from qiskit import QuantumCircuit
from qiskit.quantum_info import Statevector, random_unitary

from gpuprovider.compile.gate_ops import gate_op
from gpuprovider.compile.lower import lower_circuit
from gpuprovider.compile.merge import merge_one_qubit_gates, merged
from gpuprovider.compile.program import DiagonalOp


def _apply(ops, num_qubits):
    state = cpu.allocate(num_qubits, np.complex128)
    cpu.apply_matrix(state, np.arange(num_qubits, dtype=np.int64)[:1],
                     random_unitary(2, seed=0).data)
    for op in ops:
        op.apply(cpu, state)
    return state


@pytest.mark.parametrize("seed", range(5))
def test_merged_ops_have_the_same_effect(seed):
    rng = np.random.default_rng(seed)
    ops = []
    for _ in range(60):
        qubit = int(rng.integers(4))
        kind = rng.integers(7)
        if kind == 0:
            matrix = random_unitary(2, seed=rng).data
        elif kind == 1:
            matrix = np.diag(np.exp(1j * rng.uniform(-np.pi, np.pi, 2)))
        elif kind == 2:
            matrix = np.array([[0, 1j], [1, 0]])
        elif kind == 3:
            ops.append(gate_op([qubit, (qubit + 1) % 4], random_unitary(4, seed=rng).data,
                               np.complex128))
            continue
        elif kind == 4:
            ops.append(gate_op([(qubit + 2) % 4, qubit], np.diag([1, 1, 1, -1]), np.complex128))
            continue
        elif kind == 5:
            ops.append(gate_op([qubit, (qubit + 1) % 4, (qubit + 3) % 4],
                               random_unitary(8, seed=rng).data, np.complex128))
            continue
        else:
            ops.append(DiagonalOp(np.zeros(0, dtype=np.int64), np.array([1j])))
            continue
        ops.append(gate_op([qubit], matrix, np.complex128))
    merged = merge_one_qubit_gates(ops, 4)
    assert len(merged) < len(ops)
    np.testing.assert_allclose(_apply(merged, 4), _apply(ops, 4), atol=1e-12)


def test_an_ansatz_layer_folds_into_its_entanglers():
    circuit = QuantumCircuit(4)
    for q in range(4):
        circuit.ry(0.1 * q + 0.2, q)
        circuit.rz(0.3 * q - 0.1, q)
    for q in range(3):
        circuit.cx(q, q + 1)
    program = merged(lower_circuit(circuit, np.complex128))
    assert len(program.ops) == 3
    state = cpu.allocate(4, np.complex128)
    for op in program.ops:
        op.apply(cpu, state)
    np.testing.assert_allclose(state, Statevector(circuit).data, atol=1e-12)


def test_diagonal_runs_stay_diagonal():
    ops = [gate_op([0], np.diag([1, np.exp(1j * a)]), np.complex128) for a in (0.1, 0.2, 0.3)]
    (merged,) = merge_one_qubit_gates(ops, 1)
    assert isinstance(merged, DiagonalOp)
    np.testing.assert_allclose(merged.diagonal, [1, np.exp(0.6j)])


def test_circuits_with_control_flow_are_not_merged():
    circuit = QuantumCircuit(1, 1)
    circuit.rx(0.1, 0)
    circuit.rz(0.2, 0)
    with circuit.if_test((circuit.clbits[0], 0)):
        circuit.x(0)
    assert len(merged(lower_circuit(circuit, np.complex128)).ops) == 4
    circuit.data = circuit.data[:2]
    assert len(merged(lower_circuit(circuit, np.complex128)).ops) == 1
