"""The one-qubit merge pass: same state, fewer passes."""

from __future__ import annotations

import numpy as np
from qiskit import QuantumCircuit
from qiskit.quantum_info import random_unitary

from gpuprovider.compile.lower import gate_op
from gpuprovider.compile.merge import merge_one_qubit_runs
from gpuprovider.compile.program import DiagonalOp
from gpuprovider.kernels import cpu


def _apply(ops, num_qubits):
    state = cpu.allocate(num_qubits, np.complex128)
    cpu.apply_matrix(state, np.arange(num_qubits, dtype=np.int64)[:1],
                     random_unitary(2, seed=0).data)
    for op in ops:
        op.apply(cpu, state)
    return state


def test_runs_on_one_qubit_become_one_op_with_the_same_effect():
    rng = np.random.default_rng(1)
    ops = []
    for _ in range(60):
        qubit = int(rng.integers(3))
        kind = rng.integers(4)
        if kind == 0:
            matrix = random_unitary(2, seed=rng).data
        elif kind == 1:
            matrix = np.diag(np.exp(1j * rng.uniform(-np.pi, np.pi, 2)))
        elif kind == 2:
            matrix = np.array([[0, 1j], [1, 0]])
        else:
            ops.append(gate_op([qubit, (qubit + 1) % 3], random_unitary(4, seed=rng).data,
                               np.complex128))
            continue
        ops.append(gate_op([qubit], matrix, np.complex128))
    merged = merge_one_qubit_runs(ops)
    assert len(merged) < len(ops)
    for first, second in zip(merged, merged[1:]):
        assert not (first.qubits.size == second.qubits.size == 1
                    and first.qubits[0] == second.qubits[0])
    np.testing.assert_allclose(_apply(merged, 3), _apply(ops, 3), atol=1e-12)


def test_diagonal_runs_stay_diagonal():
    ops = [gate_op([0], np.diag([1, np.exp(1j * a)]), np.complex128) for a in (0.1, 0.2, 0.3)]
    (merged,) = merge_one_qubit_runs(ops)
    assert isinstance(merged, DiagonalOp)
    np.testing.assert_allclose(merged.diagonal, [1, np.exp(0.6j)])


def test_circuits_with_control_flow_are_not_merged():
    from gpuprovider.compile.lower import lower_circuit

    circuit = QuantumCircuit(1, 1)
    circuit.rx(0.1, 0)
    circuit.rz(0.2, 0)
    with circuit.if_test((circuit.clbits[0], 0)):
        circuit.x(0)
    assert len(lower_circuit(circuit, np.complex128).ops) == 4
    circuit.data = circuit.data[:2]
    assert len(lower_circuit(circuit, np.complex128).ops) == 1
