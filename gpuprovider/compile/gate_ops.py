"""Gates as Program ops: the cheapest op that is right for every value of the gate's parameters.

A gate becomes a diagonal, a permutation or a dense matrix; a controlled gate with several
controls, or one whose full matrix Qiskit cannot build (``MCMTGate``, a one-control
``mcphase``), a :class:`ControlledOp` on its targets; an ``AnnotatedOperation`` its base's
matrix with the modifiers applied. The kind of a gate must be right for every value its
parameters take, so it is never read from one sample of them (``rx(a - b)`` at ``a == b``
looks like the identity): Qiskit's standard gate classes take the structure of their class,
found once per class from random parameter values (an entry that is not identically zero is
zero at a random point with probability 0); every other gate is classified from its matrix
(:func:`gate_op`), again for each binding when a sweep or a primitive binds it.

A gate with neither a matrix nor a controlled form returns None here: the lowering then
simulates its ``definition``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import cache, lru_cache

import numpy as np
from qiskit.circuit import (
    AnnotatedOperation,
    ControlledGate,
    ControlModifier,
    Gate,
    Instruction,
    InverseModifier,
    Operation,
    ParameterExpression,
    PowerModifier,
    QuantumCircuit,
)
from qiskit.circuit.library import MCMTGate
from qiskit.circuit.library.standard_gates import get_standard_gate_name_mapping
from qiskit.quantum_info import Operator

from .program import ControlledOp, DiagonalOp, MatrixOp, Op, PermutationOp

ZERO_TOLERANCE = 1e-14
"""Matrix entries below this are treated as zero when classifying a gate's structure."""
CONTROLLED_KERNEL_MIN_CONTROLS = 2
"""Controlled gates with at least this many controls run as a controlled kernel on their
targets (touching only the controlled subspace) instead of one dense matrix."""
MAX_DEFINITION_MATRIX_QUBITS = 12
"""Widest operation whose matrix is built through ``Operator`` (from its definition, a
Clifford's tableau, ...) when it has no ``to_matrix`` of its own."""
_STRUCTURE_SAMPLES = 2
"""Random parameter draws whose union of non-zero entries gives a standard gate's structure."""


class GateError(ValueError):
    """A gate cannot be turned into an op (the message says why; the lowering names it)."""


def gate_op(qubits: Sequence[int], matrix: np.ndarray, dtype: np.dtype) -> Op:
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


def checked_matrix(matrix: np.ndarray, width: int) -> np.ndarray:
    """``matrix`` as complex128 if it is a finite ``2**width``-square matrix; GateError if not."""
    matrix = np.asarray(matrix, dtype=np.complex128)
    dim = 1 << width
    if matrix.shape != (dim, dim):
        raise GateError(f"its matrix has shape {matrix.shape}, but {width} qubit(s) need "
                        f"({dim}, {dim})")
    if not np.all(np.isfinite(matrix)):
        raise GateError("its matrix has entries that are not finite (NaN or infinity)")
    return matrix


def first_non_finite(params: Sequence) -> object | None:
    """The first numeric parameter (or entry of an array parameter) that is NaN or infinite."""
    for value in params:
        if isinstance(value, (numbers.Number, np.number)) and not isinstance(value, bool):
            if not np.isfinite(complex(value)):
                return value
        elif isinstance(value, np.ndarray) and value.dtype.kind in "fc":
            bad = value[~np.isfinite(value)]
            if bad.size:
                return bad.flat[0]
    return None


def _matrix_of(operation: Operation) -> np.ndarray | None:
    """The operation's own matrix (``to_matrix``), or None when it has none."""
    try:
        return np.asarray(operation.to_matrix(), dtype=np.complex128)
    except Exception:  # noqa: BLE001 - Qiskit raises CircuitError or others: no matrix
        return None


def _any_matrix(operation: Operation) -> np.ndarray | None:
    """The matrix of any operation: its own, else through ``Operator`` (definitions,
    Cliffords, ...) when it is small enough; None if neither can give it."""
    matrix = _matrix_of(operation)
    if matrix is None and operation.num_qubits <= MAX_DEFINITION_MATRIX_QUBITS:
        try:
            matrix = Operator(operation).data
        except Exception:  # noqa: BLE001 - an opaque or non-unitary operation
            return None
    return matrix


def annotated_op(operation: AnnotatedOperation, qubits: Sequence[int], dtype: np.dtype) -> Op:
    """An ``AnnotatedOperation``: its base's matrix with the modifiers applied in order
    (inverse and power act on the target matrix, as they commute with controls; controls
    are added in front), as one controlled kernel when it has controls."""
    matrix = _any_matrix(operation.base_op)
    if matrix is None:
        raise GateError(f"its base operation '{operation.base_op.name}' has no matrix")
    controls, control_state = 0, 0
    for modifier in operation.modifiers:
        if isinstance(modifier, InverseModifier):
            matrix = matrix.conj().T
        elif isinstance(modifier, PowerModifier):
            matrix = Operator(matrix).power(modifier.power).data
        elif isinstance(modifier, ControlModifier):
            state = modifier.ctrl_state
            control_state = state | (control_state << modifier.num_ctrl_qubits)
            controls += modifier.num_ctrl_qubits
        else:
            raise GateError(f"its modifier {modifier!r} is not known")
    matrix = checked_matrix(matrix, len(qubits) - controls)
    if controls == 0:
        return gate_op(qubits, matrix, dtype)
    return controlled(qubits[:controls], control_state, qubits[controls:], matrix, dtype)


def controlled(controls: Sequence[int], control_state: int, targets: Sequence[int],
               matrix: np.ndarray, dtype: np.dtype) -> ControlledOp:
    """``matrix`` on ``targets`` where ``controls`` read ``control_state``, as an op."""
    return ControlledOp(np.asarray(controls, dtype=np.int64), int(control_state),
                        np.asarray(targets, dtype=np.int64),
                        np.ascontiguousarray(matrix, dtype=dtype))


def _target_matrix(gate: ControlledGate) -> np.ndarray | None:
    """The unitary a controlled gate applies to its targets where the controls agree."""
    targets = gate.num_qubits - gate.num_ctrl_qubits
    base = gate.base_gate
    matrix = _any_matrix(base)
    if matrix is None:
        return None
    if isinstance(gate, MCMTGate) and base.num_qubits * gate.num_target_qubits == targets:
        product = np.ones((1, 1), dtype=np.complex128)
        for _ in range(gate.num_target_qubits):  # the same gate on every target
            product = np.kron(matrix, product)
        return product
    if base.num_qubits != targets:
        return None
    return matrix


def controlled_op(gate: ControlledGate, qubits: Sequence[int], dtype: np.dtype
                  ) -> ControlledOp | None:
    """``gate`` as a kernel on its targets (the controls are its first qubits), or None."""
    matrix = _target_matrix(gate)
    if matrix is None:
        return None
    controls = gate.num_ctrl_qubits
    return controlled(qubits[:controls], gate.ctrl_state, qubits[controls:],
                      checked_matrix(matrix, gate.num_qubits - controls), dtype)


def bound_gate_op(operation: Operation, qubits: Sequence[int], dtype: np.dtype) -> Op | None:
    """The op of a gate whose parameters are numbers, or None when only its definition can
    simulate it. GateError for a matrix of the wrong size or with non-finite entries."""
    if isinstance(operation, AnnotatedOperation):
        return annotated_op(operation, qubits, dtype)
    if not isinstance(operation, Instruction):  # a Clifford, say: an Operation with a matrix
        matrix = _any_matrix(operation)
        if matrix is None:
            raise GateError("it is an operation with no matrix")
        return gate_op(qubits, checked_matrix(matrix, len(qubits)), dtype)
    many_controls = isinstance(operation, ControlledGate) and \
        operation.num_ctrl_qubits >= CONTROLLED_KERNEL_MIN_CONTROLS
    if is_standard(operation) and not many_controls:
        return _standard_op(operation, np.asarray(qubits, dtype=np.int64), dtype)
    if isinstance(operation, ControlledGate):
        matrix = None if many_controls else _matrix_of(operation)
        if matrix is None:
            op = controlled_op(operation, qubits, dtype)
            if op is not None:
                return op
            matrix = _any_matrix(operation)
    else:
        matrix = _matrix_of(operation)
    if matrix is None:
        return None
    return gate_op(qubits, checked_matrix(matrix, len(qubits)), dtype)


# --- gates with open parameters ---------------------------------------------------------------


def bound_values(params: Sequence, values: dict) -> list:
    """``params`` with every ParameterExpression evaluated at ``values`` ({Parameter: float});
    GateError when one has no finite real value there."""
    bound = []
    for param in params:
        if isinstance(param, ParameterExpression):
            try:
                number = complex(param.bind({p: values[p] for p in param.parameters}).numeric())
            except (ZeroDivisionError, TypeError, ValueError, OverflowError) as exc:
                raise GateError(f"its parameter {param} cannot be evaluated at "
                                f"{_named(values, param)}: {exc}") from exc
            if abs(number.imag) > 1e-12 * max(1.0, abs(number.real)) or \
                    not math.isfinite(number.real):
                raise GateError(f"its parameter {param} is {number} at "
                                f"{_named(values, param)}; it must be a finite real number")
            param = number.real
        bound.append(param)
    return bound


def _named(values: dict, param: ParameterExpression) -> str:
    return ", ".join(f"{p.name}={values[p]!r}" for p in sorted(param.parameters, key=str))


def is_standard(operation: Operation) -> bool:
    """True for an instance of the Qiskit standard gate class its name belongs to (a gate
    loaded from OpenQASM may reuse a standard name without being that gate)."""
    standard = _standard_gates().get(operation.name)
    return standard is not None and isinstance(operation, Gate) and \
        operation.base_class is standard.base_class


@cache
def _standard_gates() -> dict[str, Instruction]:
    return get_standard_gate_name_mapping()


def standard_gate_matrix(name: str, params: Sequence, num_qubits: int) -> np.ndarray | None:
    """The matrix of the standard gate ``name`` with ``params`` on ``num_qubits`` qubits, or
    None when no standard gate of that name and width exists."""
    gate = _standard_gates().get(name)
    if gate is None or gate.num_qubits != num_qubits:
        return None
    return _any_matrix(type(gate)(*params) if params else gate)


@cache
def standard_structure(base_class: type, num_params: int, ctrl_state: int | None
                        ) -> tuple[str, np.ndarray | None]:
    """``("diagonal" | "permutation" | "dense", columns)`` of a standard gate class over all
    parameter values: the union of its non-zero entries at random values."""
    rng = np.random.default_rng(20261201)
    extra = {} if ctrl_state is None else {"ctrl_state": ctrl_state}
    nonzero = None
    for _ in range(_STRUCTURE_SAMPLES):
        params = rng.uniform(-math.pi, math.pi, num_params).tolist()
        pattern = np.abs(base_class(*params, **extra).to_matrix()) > ZERO_TOLERANCE
        nonzero = pattern if nonzero is None else nonzero | pattern
    dim = nonzero.shape[0]
    if np.count_nonzero(nonzero) == dim:
        columns = np.argmax(nonzero, axis=1)
        if np.array_equal(np.sort(columns), np.arange(dim)):
            if np.array_equal(columns, np.arange(dim)):
                return "diagonal", None
            return "permutation", columns.astype(np.int64)
    return "dense", None


def ctrl_state_of(operation: Gate) -> int | None:
    """The control state of a controlled gate, None for any other."""
    return operation.ctrl_state if isinstance(operation, ControlledGate) else None


def _op_of_kind(kind: str, columns: np.ndarray | None, qubits: np.ndarray,
                matrix: np.ndarray, dtype: np.dtype) -> Op:
    """``matrix`` as an op of a standard gate's structural kind."""
    if kind == "diagonal":
        return DiagonalOp(qubits, np.diagonal(matrix).astype(dtype))
    if kind == "permutation":
        return PermutationOp(qubits, columns,
                             matrix[np.arange(columns.size), columns].astype(dtype))
    return MatrixOp(qubits, np.ascontiguousarray(matrix, dtype=dtype))


@lru_cache(maxsize=256)
def _fixed_op(base_class: type, ctrl_state: int | None, dtype: np.dtype) -> Op:
    """The op of a standard gate without parameters, on qubits 0..k-1 (built once)."""
    extra = {} if ctrl_state is None else {"ctrl_state": ctrl_state}
    matrix = base_class(**extra).to_matrix()
    kind, columns = standard_structure(base_class, 0, ctrl_state)
    width = matrix.shape[0].bit_length() - 1
    return _op_of_kind(kind, columns, np.arange(width, dtype=np.int64), matrix, dtype)


def _standard_op(operation: Gate, qubits: np.ndarray, dtype: np.dtype) -> Op:
    """A bound standard gate as an op of the kind its class always has (its matrix entries
    are finite: its parameters were checked)."""
    ctrl_state = ctrl_state_of(operation)
    if not operation.params:
        return replace(_fixed_op(operation.base_class, ctrl_state, np.dtype(dtype)),
                       qubits=qubits)
    kind, columns = standard_structure(operation.base_class, len(operation.params),
                                        ctrl_state)
    return _op_of_kind(kind, columns, qubits, operation.to_matrix(), dtype)


def _standard_builder(operation: Gate, qubits: np.ndarray, dtype: np.dtype
                      ) -> Callable[[dict], Op]:
    """Rebuilds a standard gate from its class per binding (far faster than a deep copy),
    as an op of the kind its class always has."""
    ctrl_state = ctrl_state_of(operation)
    extra = {} if ctrl_state is None else {"ctrl_state": ctrl_state}
    base_class = operation.base_class
    kind, columns = standard_structure(base_class, len(operation.params), ctrl_state)
    params = list(operation.params)

    def build(values: dict) -> Op:
        matrix = base_class(*bound_values(params, values), **extra).to_matrix()
        return _op_of_kind(kind, columns, qubits, matrix, dtype)

    return build


def bind_operation(operation: Instruction, values: dict) -> Instruction:
    """A copy of ``operation`` with its parameters bound as Qiskit binds them (definitions and
    base gates included)."""
    circuit = QuantumCircuit(operation.num_qubits, operation.num_clbits)
    circuit.append(operation, circuit.qubits, circuit.clbits)
    bound = circuit.assign_parameters({p: values[p] for p in circuit.parameters})
    return bound.data[0].operation


def open_parameters(operation: Operation) -> set:
    """The parameters an operation's parameters still depend on."""
    return {p for value in getattr(operation, "params", ())
            if isinstance(value, ParameterExpression) for p in value.parameters}


_SAMPLE_VALUE = 0.7390851332151607
"""A value with no special structure, to try binding a gate once."""


def parameterized_builder(operation: Instruction, qubits: Sequence[int], dtype: np.dtype
                          ) -> Callable[[dict], Op] | None:
    """How to build ``operation``'s op for each binding, or None when only its definition can
    simulate it (checked by binding it once, at arbitrary values)."""
    qubit_array = np.asarray(qubits, dtype=np.int64)
    sample = {p: _SAMPLE_VALUE + 0.1 * k
              for k, p in enumerate(sorted(open_parameters(operation), key=str))}
    if is_standard(operation):
        return _standard_builder(operation, qubit_array, dtype)

    def build(values: dict) -> Op:
        op = bound_gate_op(bind_operation(operation, values), qubits, dtype)
        if op is None:
            raise GateError("it has no matrix once bound")
        return op

    try:
        if bound_gate_op(bind_operation(operation, sample), qubits, dtype) is None:
            return None
    except GateError:
        return None
    return build
