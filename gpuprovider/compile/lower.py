"""Lowering: validate a QuantumCircuit and turn it into a device-independent Program.

Everything a run can reject is rejected here, before any job starts: unsupported
instructions, unbound parameters, matrices that are not unitary, initialize vectors that are
not normalised, misplaced save instructions.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from qiskit.circuit import CircuitInstruction, QuantumCircuit

from ..exceptions import InvalidCircuitError
from ..gates import NO_OP_NAMES, supported_instructions
from ..kernels.layout import basis_offsets
from .program import (
    DiagonalOp,
    MatrixOp,
    MeasureOp,
    Op,
    PermutationOp,
    Program,
    ResetOp,
    SaveStatevectorOp,
    PrepareOp,
    ZeroStateOp,
)

UNITARY_TOLERANCE = 1e-8
"""Largest ``max|U U^dagger - I|`` accepted for a ``unitary`` matrix."""
NORM_TOLERANCE = 1e-8
"""Largest ``|norm - 1|`` accepted for an ``initialize`` vector."""
SQRT_HALF = 0.5**0.5
ZERO_TOLERANCE = 1e-14
"""Matrix entries below this are treated as zero when classifying a gate's structure."""


class _Lowering:
    """State carried while one circuit is lowered."""

    def __init__(self, circuit: QuantumCircuit, dtype: np.dtype, where: str) -> None:
        self.circuit = circuit
        self.dtype = dtype
        self.where = where
        self.ops: list[Op] = []
        self.global_phase = float(circuit.global_phase)
        self.touched: set[int] = set()
        self.labels: set[str] = set()

    def error(self, message: str) -> InvalidCircuitError:
        return InvalidCircuitError(f"{self.where}: {message}")

    def qubits_of(self, instruction: CircuitInstruction) -> list[int]:
        return [self.circuit.find_bit(q).index for q in instruction.qubits]

    def add_gate(self, qubits: list[int], matrix: np.ndarray) -> None:
        self.ops.append(gate_op(qubits, matrix, self.dtype))
        self.touched.update(qubits)



def gate_op(qubits: list[int], matrix: np.ndarray, dtype: np.dtype) -> Op:
    """The cheapest Program op for ``matrix`` on ``qubits``: diagonal, permutation or dense."""
    qubit_array = np.asarray(qubits, dtype=np.int64)
    matrix = np.asarray(matrix, dtype=np.complex128)
    nonzero = np.abs(matrix) > ZERO_TOLERANCE
    if np.count_nonzero(nonzero) == matrix.shape[0]:
        columns = np.argmax(nonzero, axis=1)
        if np.array_equal(np.sort(columns), np.arange(matrix.shape[0])):
            entries = matrix[np.arange(matrix.shape[0]), columns]
            if np.array_equal(columns, np.arange(matrix.shape[0])):
                return DiagonalOp(qubit_array, entries.astype(dtype))
            return PermutationOp(qubit_array, columns.astype(np.int64), entries.astype(dtype))
    return MatrixOp(qubit_array, np.ascontiguousarray(matrix, dtype=dtype))


def _lower_gate(low: _Lowering, instruction: CircuitInstruction) -> None:
    operation = instruction.operation
    try:
        matrix = operation.to_matrix()
    except Exception as exc:  # a gate without a matrix cannot be simulated directly
        raise low.error(f"cannot take the matrix of '{operation.name}': {exc}") from exc
    low.add_gate(low.qubits_of(instruction), matrix)


def _lower_unitary(low: _Lowering, instruction: CircuitInstruction) -> None:
    matrix = np.asarray(instruction.operation.to_matrix(), dtype=np.complex128)
    deviation = np.max(np.abs(matrix @ matrix.conj().T - np.eye(matrix.shape[0])))
    if deviation > UNITARY_TOLERANCE:
        raise low.error(
            f"the 'unitary' on qubits {low.qubits_of(instruction)} is not unitary: "
            f"max|U U^dagger - I| = {deviation:.3g} exceeds {UNITARY_TOLERANCE:g}"
        )
    low.add_gate(low.qubits_of(instruction), matrix)


def _lower_measure(low: _Lowering, instruction: CircuitInstruction) -> None:
    qubit = low.circuit.find_bit(instruction.qubits[0]).index
    clbit = low.circuit.find_bit(instruction.clbits[0]).index
    low.ops.append(MeasureOp(qubit, clbit))


def _lower_reset(low: _Lowering, instruction: CircuitInstruction) -> None:
    qubit = low.circuit.find_bit(instruction.qubits[0]).index
    if qubit in low.touched:  # a qubit nothing has acted on is still |0>
        low.ops.append(ResetOp(qubit))


def _lower_global_phase(low: _Lowering, instruction: CircuitInstruction) -> None:
    low.global_phase += float(instruction.operation.params[0])


_PRODUCT_LABELS = {
    "0": (1.0, 0.0),
    "1": (0.0, 1.0),
    "+": (SQRT_HALF, SQRT_HALF),
    "-": (SQRT_HALF, -SQRT_HALF),
    "r": (SQRT_HALF, 1j * SQRT_HALF),
    "l": (SQRT_HALF, -1j * SQRT_HALF),
}
"""One-qubit states named by the characters of an ``initialize`` label."""


def _product_columns(params: list, num_qubits: int) -> list[np.ndarray] | None:
    """Per-qubit states (qubit 0 first) of an ``initialize`` given as a label or an integer."""
    if params and isinstance(params[0], str):
        return [np.array(_PRODUCT_LABELS[char], dtype=np.complex128) for char in reversed(params)]
    if len(params) == 1 and num_qubits > 0:
        value = int(np.real(params[0]))
        return [np.array(_PRODUCT_LABELS[str((value >> j) & 1)], dtype=np.complex128)
                for j in range(num_qubits)]
    return None


def _dense_column(low: _Lowering, params: list, qubits: list[int]) -> np.ndarray:
    vector = np.asarray(params, dtype=np.complex128)
    norm = float(np.linalg.norm(vector))
    if abs(norm - 1) > NORM_TOLERANCE:
        raise low.error(
            f"the 'initialize' vector on qubits {qubits} has norm {norm:.12g}; it must be 1 "
            f"within {NORM_TOLERANCE:g} (Initialize(..., normalize=True) normalises it)"
        )
    return vector


def _lower_initialize(low: _Lowering, instruction: CircuitInstruction) -> None:
    """Reset the qubits, then spread the target state over them (they are |0> by then)."""
    operation = instruction.operation
    qubits = low.qubits_of(instruction)
    products = _product_columns(operation.params, operation.num_qubits)
    column = None if products is not None else _dense_column(low, operation.params, qubits)
    if len(qubits) == low.circuit.num_qubits:
        if low.touched:
            low.ops.append(ZeroStateOp())  # resetting every qubit leaves exactly |0...0>
    else:
        low.ops.extend(ResetOp(q) for q in qubits if q in low.touched)
    if products is None:
        low.ops.append(PrepareOp(np.asarray(qubits, dtype=np.int64), column.astype(low.dtype)))
    else:
        low.ops.extend(
            PrepareOp(np.array([q], dtype=np.int64), state.astype(low.dtype))
            for q, state in zip(qubits, products)
            if state[1] != 0
        )
    low.touched.update(qubits)


def _lower_save_statevector(low: _Lowering, instruction: CircuitInstruction) -> None:
    qubits = low.qubits_of(instruction)
    if sorted(qubits) != list(range(low.circuit.num_qubits)):
        raise low.error(
            f"save_statevector must act on every qubit of the circuit "
            f"({low.circuit.num_qubits}), not on {qubits}"
        )
    label = instruction.operation.label or "statevector"
    if label in low.labels:
        raise low.error(f"two save instructions use the label '{label}'; labels must differ")
    low.labels.add(label)
    order = None if qubits == sorted(qubits) else basis_offsets(qubits)
    low.ops.append(SaveStatevectorOp(label, low.global_phase, order))
    low.touched.update(qubits)


def _ignore(low: _Lowering, instruction: CircuitInstruction) -> None:
    return None


_HANDLERS: dict[str, Callable[[_Lowering, CircuitInstruction], None]] = {
    **{name: _ignore for name in NO_OP_NAMES},
    "measure": _lower_measure,
    "reset": _lower_reset,
    "global_phase": _lower_global_phase,
    "unitary": _lower_unitary,
    "initialize": _lower_initialize,
    "save_statevector": _lower_save_statevector,
}


def _mark_final_measurements(ops: list[Op], num_qubits: int) -> list[Op]:
    """Set ``final`` on measurements that can be sampled from the state at the end."""
    acted_on_later: set[int] = set()
    overwritten_later: set[int] = set()
    marked: list[Op] = []
    for op in reversed(ops):
        if isinstance(op, MeasureOp):
            final = op.qubit not in acted_on_later and op.clbit not in overwritten_later
            if not final:
                overwritten_later.add(op.clbit)
            marked.append(MeasureOp(op.qubit, op.clbit, final))
            continue
        if isinstance(op, ResetOp):
            acted_on_later.add(op.qubit)
        elif isinstance(op, (ZeroStateOp, SaveStatevectorOp)):
            acted_on_later.update(range(num_qubits))
        else:
            acted_on_later.update(int(q) for q in op.qubits)
        marked.append(op)
    marked.reverse()
    return marked


def lower_circuit(circuit: QuantumCircuit, dtype: np.dtype, where: str = "circuit") -> Program:
    """Validate ``circuit`` and lower it to a Program whose matrices are of ``dtype``.

    Args:
        circuit: the circuit to lower.
        dtype: complex dtype of the state the Program will run on.
        where: how error messages name the circuit, e.g. "circuit 'bell' (index 0)".

    Raises:
        InvalidCircuitError: if the circuit cannot be simulated as it is; the message names
            the instruction or value at fault.
    """
    if not isinstance(circuit, QuantumCircuit):
        raise InvalidCircuitError(
            f"{where}: expected a QuantumCircuit, got {type(circuit).__name__}"
        )
    if circuit.parameters:
        names = ", ".join(sorted(p.name for p in circuit.parameters))
        raise InvalidCircuitError(
            f"{where} has unbound parameters: {names}; bind them with "
            "circuit.assign_parameters(...) before running"
        )
    supported = supported_instructions()
    low = _Lowering(circuit, dtype, where)
    for instruction in circuit.data:
        name = instruction.operation.name
        if name not in supported:
            raise low.error(
                f"instruction '{name}' is not supported by gpu_simulator; run "
                "transpile(circuit, backend) first to rewrite it into supported gates"
            )
        _HANDLERS.get(name, _lower_gate)(low, instruction)
    ops = _mark_final_measurements(low.ops, circuit.num_qubits)
    return Program(circuit.name, circuit.num_qubits, circuit.num_clbits, ops)

