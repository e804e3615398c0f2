"""Lowering: validate a QuantumCircuit and turn it into a device-independent Program.

Everything a run can reject is rejected here, before any job starts: unsupported
instructions, unbound parameters, matrices that are not unitary, initialize vectors that are
not normalised, misplaced save instructions, classical expressions the evaluator cannot
run. Control flow is flattened: blocks are lowered in place and joined by jumps, a
``for_loop`` is unrolled (each iteration with its loop parameter bound).
"""

from __future__ import annotations

import cmath
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from qiskit.circuit import (
    CircuitInstruction,
    Clbit,
    ControlledGate,
    ParameterExpression,
    QuantumCircuit,
    Qubit,
)
from qiskit.circuit.controlflow import CASE_DEFAULT
from qiskit.quantum_info import Operator, SparsePauliOp

from ..exceptions import InvalidCircuitError
from ..gates import NO_OP_NAMES, supported_instructions
from ..kernels.layout import basis_offsets
from .classical import (
    ClassicalLayout,
    ClassicalState,
    compile_condition,
    compile_store,
    compile_target,
)
from .program import (
    SAVE_OPS,
    BranchOp,
    ControlledOp,
    DiagonalOp,
    JumpOp,
    MatrixOp,
    MeasureOp,
    Op,
    ParameterizedGateOp,
    PauliTerms,
    PermutationOp,
    PrepareOp,
    Program,
    ResetOp,
    SaveExpectationValueOp,
    SaveProbabilitiesOp,
    SaveStatevectorOp,
    StoreOp,
    SwitchOp,
    ZeroStateOp,
)

UNITARY_TOLERANCE = 1e-8
"""Largest ``max|U U^dagger - I|`` accepted for a ``unitary`` matrix."""
NORM_TOLERANCE = 1e-8
"""Largest ``|norm - 1|`` accepted for an ``initialize`` vector."""
SQRT_HALF = 0.5**0.5
ZERO_TOLERANCE = 1e-14
"""Matrix entries below this are treated as zero when classifying a gate's structure."""
CONTROLLED_KERNEL_MIN_CONTROLS = 2
"""Controlled gates with at least this many controls run as a controlled kernel on their
targets (touching only the controlled subspace) instead of one dense matrix."""
HERMITIAN_TOLERANCE = 1e-10
"""Largest imaginary part accepted in a Pauli coefficient of an expectation value."""
_GENERIC_ANGLE = 0.7390851332151607
"""A parameter value with no special structure, to classify a parameterised gate once."""
_PHASE_QUBITS = np.zeros(0, dtype=np.int64)
"""A global phase as an op: a diagonal on no qubits."""


@dataclass
class _Scope:
    """Where a block's bits live in the top-level circuit."""

    qubits: dict[Qubit, int]
    clbits: dict[Clbit, int]
    in_loop: bool = False

    def qubits_of(self, instruction: CircuitInstruction) -> list[int]:
        return [self.qubits[q] for q in instruction.qubits]

    def enter(self, block: QuantumCircuit, instruction: CircuitInstruction,
              loop: bool = False) -> _Scope:
        return _Scope(
            {inner: self.qubits[outer] for inner, outer in zip(block.qubits, instruction.qubits)},
            {inner: self.clbits[outer] for inner, outer in zip(block.clbits, instruction.clbits)},
            self.in_loop or loop,
        )


@dataclass
class _Loop:
    """An enclosing loop: the indices of its ``break`` and ``continue`` jumps to patch."""

    breaks: list[int] = field(default_factory=list)
    continues: list[int] = field(default_factory=list)


class _Lowering:
    """State carried while one circuit is lowered."""

    def __init__(self, circuit: QuantumCircuit, dtype: np.dtype, where: str,
                 parameterized: bool) -> None:
        self.circuit = circuit
        self.dtype = dtype
        self.where = where
        self.parameterized = parameterized
        self.ops: list[Op] = []
        self.global_phase = 0.0
        self.touched: set[int] = set()
        self.labels: set[str] = set()
        self.loops: list[_Loop] = []
        self.has_control_flow = False
        self.depth = 0
        """How many blocks deep the lowering is (0: the circuit itself)."""
        self._layout: ClassicalLayout | None = None

    @property
    def layout(self) -> ClassicalLayout:
        if self._layout is None:
            self._layout = ClassicalLayout(self.circuit)
        return self._layout

    def error(self, message: str) -> InvalidCircuitError:
        return InvalidCircuitError(f"{self.where}: {message}")

    def emit(self, op: Op) -> int:
        self.ops.append(op)
        return len(self.ops) - 1

    def patch_jump(self, index: int, target: int) -> None:
        op = self.ops[index]
        self.ops[index] = (JumpOp(target) if isinstance(op, JumpOp)
                           else BranchOp(op.condition, target))

    def add_gate(self, qubits: list[int], matrix: np.ndarray) -> None:
        self.emit(gate_op(qubits, matrix, self.dtype))
        self.touched.update(qubits)

    def add_phase(self, phase) -> None:
        """A global phase: folded into the saves at the top level, an op inside blocks."""
        if isinstance(phase, ParameterExpression) and phase.parameters:
            self.emit(_parameterized_phase(phase, self.dtype))
        elif self.depth == 0:
            self.global_phase += float(phase)
        elif float(phase):
            self.emit(DiagonalOp(_PHASE_QUBITS, np.array([cmath.exp(1j * float(phase))],
                                                         dtype=self.dtype)))

    def lower_block(self, block: QuantumCircuit, scope: _Scope) -> None:
        self.depth += 1
        self.add_phase(block.global_phase)
        for instruction in block.data:
            self.lower(instruction, scope)
        self.depth -= 1

    def lower(self, instruction: CircuitInstruction, scope: _Scope) -> None:
        name = instruction.operation.name
        if name not in supported_instructions() and not isinstance(
            instruction.operation, ControlledGate
        ):
            raise self.error(
                f"instruction '{name}' is not supported by gpu_simulator; run "
                "transpile(circuit, backend) first to rewrite it into supported gates"
            )
        _HANDLERS.get(name, _lower_gate)(self, instruction, scope)


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


# --- gates ----------------------------------------------------------------------------------


def _bound_params(params: list, values: dict) -> list:
    return [
        float(p.bind({q: values[q] for q in p.parameters}).numeric())
        if isinstance(p, ParameterExpression) else p
        for p in params
    ]


def _parameterized_phase(phase: ParameterExpression, dtype: np.dtype) -> ParameterizedGateOp:
    def build(values: dict) -> DiagonalOp:
        angle = _bound_params([phase], values)[0]
        return DiagonalOp(_PHASE_QUBITS, np.array([cmath.exp(1j * angle)], dtype=dtype))

    return ParameterizedGateOp(_PHASE_QUBITS, build)


def _fresh_gate_factory(operation, generic: dict, generic_matrix: np.ndarray):
    """A way to build ``operation``'s gate with new parameters from its class, as Qiskit's
    standard gates allow, which a sweep binding many times is far faster at than
    ``Instruction.copy`` (a deep copy); None when the class cannot, or builds another matrix
    at the generic angle."""
    extra = {"ctrl_state": operation.ctrl_state} if isinstance(operation, ControlledGate) else {}

    def fresh(params: list):
        return operation.base_class(*params, **extra)

    try:
        matrix = fresh(_bound_params(operation.params, generic)).to_matrix()
    except Exception:  # noqa: BLE001 - any refusal means: keep the general path
        return None
    return fresh if np.allclose(matrix, generic_matrix, atol=1e-12) else None


def _parameterized_gate(low: _Lowering, instruction: CircuitInstruction,
                        qubits: list[int]) -> ParameterizedGateOp:
    """A gate op rebuilt for each binding of a sweep; its kind (diagonal or dense) is
    decided once, from the gate at a generic angle."""
    operation = instruction.operation
    parameters = frozenset(p for value in operation.params
                           if isinstance(value, ParameterExpression) for p in value.parameters)
    generic = dict.fromkeys(parameters, _GENERIC_ANGLE)

    def copied_matrix(values: dict) -> np.ndarray:
        gate = operation.copy()
        gate.params = _bound_params(operation.params, values)
        return gate.to_matrix()

    try:
        generic_matrix = copied_matrix(generic)
        diagonal = isinstance(gate_op(qubits, generic_matrix, low.dtype), DiagonalOp)
    except Exception as exc:
        raise low.error(f"cannot take the matrix of '{operation.name}': {exc}") from exc
    fresh = _fresh_gate_factory(operation, generic, generic_matrix)

    def matrix_for(values: dict) -> np.ndarray:
        if fresh is None:
            return copied_matrix(values)
        return fresh(_bound_params(operation.params, values)).to_matrix()
    qubit_array = np.asarray(qubits, dtype=np.int64)
    dtype = low.dtype

    def build(values: dict) -> Op:
        matrix = matrix_for(values)
        if diagonal:
            return DiagonalOp(qubit_array, np.diagonal(matrix).astype(dtype))
        return MatrixOp(qubit_array, np.ascontiguousarray(matrix, dtype=dtype))

    return ParameterizedGateOp(qubit_array, build)


def _lower_gate(low: _Lowering, instruction: CircuitInstruction, scope: _Scope) -> None:
    operation = instruction.operation
    qubits = scope.qubits_of(instruction)
    if any(isinstance(p, ParameterExpression) and p.parameters for p in operation.params):
        if not low.parameterized:
            names = ", ".join(sorted(str(p) for p in operation.params
                                     if isinstance(p, ParameterExpression)))
            raise low.error(f"gate '{operation.name}' has unbound parameters: {names}")
        low.emit(_parameterized_gate(low, instruction, qubits))
        low.touched.update(qubits)
        return
    if (isinstance(operation, ControlledGate)
            and operation.num_ctrl_qubits >= CONTROLLED_KERNEL_MIN_CONTROLS):
        _lower_controlled(low, operation, qubits)
        return
    try:
        matrix = operation.to_matrix()
    except Exception as exc:  # a gate without a matrix cannot be simulated directly
        raise low.error(f"cannot take the matrix of '{operation.name}': {exc}") from exc
    low.add_gate(qubits, matrix)


def _lower_controlled(low: _Lowering, operation: ControlledGate, qubits: list[int]) -> None:
    controls = operation.num_ctrl_qubits
    try:
        matrix = np.asarray(Operator(operation.base_gate).data, dtype=np.complex128)
    except Exception as exc:
        raise low.error(f"cannot take the matrix of '{operation.name}': {exc}") from exc
    low.emit(ControlledOp(
        np.asarray(qubits[:controls], dtype=np.int64), int(operation.ctrl_state),
        np.asarray(qubits[controls:], dtype=np.int64),
        np.ascontiguousarray(matrix, dtype=low.dtype),
    ))
    low.touched.update(qubits)


def _lower_unitary(low: _Lowering, instruction: CircuitInstruction, scope: _Scope) -> None:
    matrix = np.asarray(instruction.operation.to_matrix(), dtype=np.complex128)
    qubits = scope.qubits_of(instruction)
    deviation = np.max(np.abs(matrix @ matrix.conj().T - np.eye(matrix.shape[0])))
    if deviation > UNITARY_TOLERANCE:
        raise low.error(
            f"the 'unitary' on qubits {qubits} is not unitary: "
            f"max|U U^dagger - I| = {deviation:.3g} exceeds {UNITARY_TOLERANCE:g}"
        )
    low.add_gate(qubits, matrix)


def _lower_diagonal(low: _Lowering, instruction: CircuitInstruction, scope: _Scope) -> None:
    qubits = scope.qubits_of(instruction)
    diagonal = np.asarray(instruction.operation.params, dtype=np.complex128)
    low.emit(DiagonalOp(np.asarray(qubits, dtype=np.int64), diagonal.astype(low.dtype)))
    low.touched.update(qubits)


def _lower_global_phase(low: _Lowering, instruction: CircuitInstruction, scope: _Scope) -> None:
    low.add_phase(instruction.operation.params[0])


# --- measurement, reset, state preparation -------------------------------------------------


def _lower_measure(low: _Lowering, instruction: CircuitInstruction, scope: _Scope) -> None:
    low.emit(MeasureOp(scope.qubits[instruction.qubits[0]], scope.clbits[instruction.clbits[0]]))


def _lower_reset(low: _Lowering, instruction: CircuitInstruction, scope: _Scope) -> None:
    qubit = scope.qubits[instruction.qubits[0]]
    if qubit in low.touched:  # a qubit nothing has acted on is still |0>
        low.emit(ResetOp(qubit))


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
    """Per-qubit states (qubit 0 first) of a preparation given as a label or an integer."""
    if params and isinstance(params[0], str):
        return [np.array(_PRODUCT_LABELS[char], dtype=np.complex128) for char in reversed(params)]
    if len(params) == 1 and num_qubits > 0:
        value = int(np.real(params[0]))
        return [np.array(_PRODUCT_LABELS[str((value >> j) & 1)], dtype=np.complex128)
                for j in range(num_qubits)]
    return None


def _dense_column(low: _Lowering, params: list, qubits: list[int], name: str) -> np.ndarray:
    vector = np.asarray(params, dtype=np.complex128)
    norm = float(np.linalg.norm(vector))
    if abs(norm - 1) > NORM_TOLERANCE:
        raise low.error(
            f"the '{name}' vector on qubits {qubits} has norm {norm:.12g}; it must be 1 "
            f"within {NORM_TOLERANCE:g} (normalize=True normalises it)"
        )
    return vector


def _prepare_from_zero(low: _Lowering, instruction: CircuitInstruction,
                       qubits: list[int]) -> None:
    """Spread the target state over ``qubits``, which are |0> here."""
    operation = instruction.operation
    products = _product_columns(operation.params, operation.num_qubits)
    if products is None:
        column = _dense_column(low, operation.params, qubits, operation.name)
        low.emit(PrepareOp(np.asarray(qubits, dtype=np.int64), column.astype(low.dtype)))
    else:
        for qubit, state in zip(qubits, products):
            if state[1] != 0:
                low.emit(PrepareOp(np.array([qubit], dtype=np.int64), state.astype(low.dtype)))
    low.touched.update(qubits)


def _lower_initialize(low: _Lowering, instruction: CircuitInstruction, scope: _Scope) -> None:
    """Reset the qubits, then prepare the target state on them."""
    qubits = scope.qubits_of(instruction)
    if len(qubits) == low.circuit.num_qubits:
        if low.touched:
            low.emit(ZeroStateOp())  # resetting every qubit leaves exactly |0...0>
    else:
        for qubit in qubits:
            if qubit in low.touched:
                low.emit(ResetOp(qubit))
    _prepare_from_zero(low, instruction, qubits)


def _lower_state_preparation(low: _Lowering, instruction: CircuitInstruction,
                             scope: _Scope) -> None:
    """A unitary taking |0..0> to the target state: a cheap spread while the qubits are
    still |0>, else the full unitary."""
    qubits = scope.qubits_of(instruction)
    inverse = getattr(instruction.operation, "_inverse", False)
    if not inverse and not low.touched.intersection(qubits):
        _prepare_from_zero(low, instruction, qubits)
        return
    low.add_gate(qubits, Operator(instruction.operation).data)


# --- saves ----------------------------------------------------------------------------------


def _save_label(low: _Lowering, instruction: CircuitInstruction, scope: _Scope) -> str:
    operation = instruction.operation
    if scope.in_loop:
        raise low.error(
            f"'{operation.name}' inside a loop would save '{operation.label}' on every "
            "iteration; save outside the loop"
        )
    label = operation.label or operation.name
    if label in low.labels:
        raise low.error(f"two save instructions use the label '{label}'; labels must differ")
    low.labels.add(label)
    return label


def _lower_save_statevector(low: _Lowering, instruction: CircuitInstruction,
                            scope: _Scope) -> None:
    qubits = scope.qubits_of(instruction)
    if sorted(qubits) != list(range(low.circuit.num_qubits)):
        raise low.error(
            f"save_statevector must act on every qubit of the circuit "
            f"({low.circuit.num_qubits}), not on {qubits}"
        )
    label = _save_label(low, instruction, scope)
    order = None if qubits == sorted(qubits) else basis_offsets(qubits)
    low.emit(SaveStatevectorOp(label, low.global_phase, order))
    low.touched.update(qubits)


def _lower_save_probabilities(low: _Lowering, instruction: CircuitInstruction,
                              scope: _Scope) -> None:
    qubits = np.asarray(scope.qubits_of(instruction), dtype=np.int64)
    label = _save_label(low, instruction, scope)
    as_dict = instruction.operation.name == "save_probabilities_dict"
    low.emit(SaveProbabilitiesOp(label, qubits, as_dict))


def _pauli_terms(low: _Lowering, operator: SparsePauliOp, qubits: list[int]) -> PauliTerms:
    terms = []
    for pauli, coeff in zip(operator.paulis, operator.coeffs):
        # A Pauli's group phase (-i)^phase goes into the coefficient: the masks mean the
        # plain product of X, Y and Z.
        coeff = complex(coeff) * (-1j) ** int(pauli.phase)
        if abs(coeff.imag) > HERMITIAN_TOLERANCE:
            raise low.error(f"save_expval needs a Hermitian operator; term {pauli} has "
                            f"coefficient {coeff}")
        terms.append((
            sum(1 << qubits[j] for j in np.flatnonzero(pauli.x)),
            sum(1 << qubits[j] for j in np.flatnonzero(pauli.z)),
            coeff.real,
        ))
    return tuple(terms)


def _lower_save_expval(low: _Lowering, instruction: CircuitInstruction, scope: _Scope) -> None:
    operation = instruction.operation
    qubits = scope.qubits_of(instruction)
    label = _save_label(low, instruction, scope)
    try:
        operator = SparsePauliOp.from_list(
            [(pauli_label, float(np.real(coefficients[0])))
             for pauli_label, coefficients in operation.params]
        )
    except Exception as exc:
        raise low.error(f"'{operation.name}' has unreadable Pauli terms: {exc}") from exc
    if operator.num_qubits != len(qubits):
        raise low.error(
            f"'{operation.name}' has {operator.num_qubits}-qubit terms but acts on "
            f"{len(qubits)} qubits"
        )
    variance = operation.name == "save_expval_var"
    low.emit(SaveExpectationValueOp(
        label, _pauli_terms(low, operator, qubits),
        _pauli_terms(low, (operator @ operator).simplify(), qubits) if variance else (),
        variance,
    ))


# --- classical data and control flow --------------------------------------------------------


def _condition(low: _Lowering, condition) -> Callable:
    try:
        return compile_condition(condition, low.layout)
    except InvalidCircuitError as exc:
        raise low.error(str(exc)) from exc


def _lower_store(low: _Lowering, instruction: CircuitInstruction, scope: _Scope) -> None:
    operation = instruction.operation
    try:
        store = compile_store(operation.lvalue, operation.rvalue, low.layout)
    except InvalidCircuitError as exc:
        raise low.error(str(exc)) from exc
    low.has_control_flow = True
    low.emit(StoreOp(store))


def _lower_if_else(low: _Lowering, instruction: CircuitInstruction, scope: _Scope) -> None:
    operation = instruction.operation
    true_body, false_body = operation.params
    low.has_control_flow = True
    branch = low.emit(BranchOp(_condition(low, operation.condition), -1))
    low.lower_block(true_body, scope.enter(true_body, instruction))
    if false_body is None:
        low.patch_jump(branch, len(low.ops))
        return
    skip_else = low.emit(JumpOp(-1))
    low.patch_jump(branch, len(low.ops))
    low.lower_block(false_body, scope.enter(false_body, instruction))
    low.patch_jump(skip_else, len(low.ops))


def _lower_switch(low: _Lowering, instruction: CircuitInstruction, scope: _Scope) -> None:
    operation = instruction.operation
    try:
        target = compile_target(operation.target, low.layout)
    except InvalidCircuitError as exc:
        raise low.error(str(exc)) from exc
    low.has_control_flow = True
    switch = low.emit(SwitchOp(target, {}, -1))
    cases: dict[int, int] = {}
    default = None
    ends: list[int] = []
    for values, block in operation.cases_specifier():
        start = len(low.ops)
        for value in values:
            if value is CASE_DEFAULT:
                default = start
            else:
                cases[int(value)] = start
        low.lower_block(block, scope.enter(block, instruction))
        ends.append(low.emit(JumpOp(-1)))
    end = len(low.ops)
    for index in ends:
        low.patch_jump(index, end)
    low.ops[switch] = SwitchOp(target, cases, end if default is None else default)


def _lower_while(low: _Lowering, instruction: CircuitInstruction, scope: _Scope) -> None:
    operation = instruction.operation
    body = operation.blocks[0]
    inner = scope.enter(body, instruction, loop=True)
    # The body runs again after it has acted on its qubits, so none of them is still |0>.
    low.touched.update(inner.qubits.values())
    low.has_control_flow = True
    start = len(low.ops)
    branch = low.emit(BranchOp(_condition(low, operation.condition), -1))
    loop = _Loop()
    low.loops.append(loop)
    low.lower_block(body, inner)
    low.loops.pop()
    low.emit(JumpOp(start))
    end = len(low.ops)
    low.patch_jump(branch, end)
    for index in loop.breaks:
        low.patch_jump(index, end)
    for index in loop.continues:
        low.patch_jump(index, start)


def _lower_for(low: _Lowering, instruction: CircuitInstruction, scope: _Scope) -> None:
    indexset, loop_parameter, body = instruction.operation.params
    inner = scope.enter(body, instruction, loop=True)
    low.has_control_flow = True
    breaks: list[int] = []
    for value in indexset:
        iteration = body if loop_parameter is None else body.assign_parameters(
            {loop_parameter: value}, inplace=False
        )
        loop = _Loop()
        low.loops.append(loop)
        low.lower_block(iteration, inner)
        low.loops.pop()
        for index in loop.continues:
            low.patch_jump(index, len(low.ops))
        breaks.extend(loop.breaks)
    for index in breaks:
        low.patch_jump(index, len(low.ops))


def _lower_loop_exit(low: _Lowering, instruction: CircuitInstruction, scope: _Scope) -> None:
    if not low.loops:
        raise low.error(f"'{instruction.operation.name}' outside a loop")
    index = low.emit(JumpOp(-1))
    exits = low.loops[-1]
    (exits.breaks if instruction.operation.name == "break_loop" else exits.continues).append(index)


def _lower_box(low: _Lowering, instruction: CircuitInstruction, scope: _Scope) -> None:
    body = instruction.operation.blocks[0]
    low.lower_block(body, scope.enter(body, instruction))


def _ignore(low: _Lowering, instruction: CircuitInstruction, scope: _Scope) -> None:
    return None


_HANDLERS: dict[str, Callable[[_Lowering, CircuitInstruction, _Scope], None]] = {
    **{name: _ignore for name in NO_OP_NAMES},
    "measure": _lower_measure,
    "reset": _lower_reset,
    "global_phase": _lower_global_phase,
    "unitary": _lower_unitary,
    "diagonal": _lower_diagonal,
    "initialize": _lower_initialize,
    "state_preparation": _lower_state_preparation,
    "save_statevector": _lower_save_statevector,
    "save_probabilities": _lower_save_probabilities,
    "save_probabilities_dict": _lower_save_probabilities,
    "save_expval": _lower_save_expval,
    "save_expval_var": _lower_save_expval,
    "store": _lower_store,
    "if_else": _lower_if_else,
    "switch_case": _lower_switch,
    "while_loop": _lower_while,
    "for_loop": _lower_for,
    "break_loop": _lower_loop_exit,
    "continue_loop": _lower_loop_exit,
    "box": _lower_box,
}


_CONTROL_OPS = (JumpOp, BranchOp, SwitchOp, StoreOp)


def _mark_final_measurements(ops: list[Op], num_qubits: int) -> list[Op]:
    """Set ``final`` on measurements that can be sampled from the state at the end: those
    after the last control-flow op that nothing later acts on or overwrites."""
    acted_on_later: set[int] = set()
    overwritten_later: set[int] = set()
    marked: list[Op] = []
    in_tail = True
    for op in reversed(ops):
        if isinstance(op, _CONTROL_OPS):
            in_tail = False
        elif isinstance(op, MeasureOp):
            final = (in_tail and op.qubit not in acted_on_later
                     and op.clbit not in overwritten_later)
            overwritten_later.add(op.clbit)
            op = MeasureOp(op.qubit, op.clbit, final)
        elif isinstance(op, ResetOp):
            acted_on_later.add(op.qubit)
        elif isinstance(op, (ZeroStateOp, *SAVE_OPS)):
            # A save sees the collapse of every qubit entangled with a measured one.
            acted_on_later.update(range(num_qubits))
        else:
            acted_on_later.update(int(q) for q in op.qubits)
        marked.append(op)
    marked.reverse()
    return marked


def lower_circuit(
    circuit: QuantumCircuit, dtype: np.dtype, where: str = "circuit",
    parameterized: bool = False,
) -> Program:
    """Validate ``circuit`` and lower it to a Program whose matrices are of ``dtype``.

    Args:
        circuit: the circuit to lower.
        dtype: complex dtype of the state the Program will run on.
        where: how error messages name the circuit, e.g. "circuit 'bell' (index 0)".
        parameterized: accept unbound parameters (a sweep binds them with
            :meth:`Program.bind`); otherwise they are an error.

    Raises:
        InvalidCircuitError: if the circuit cannot be simulated as it is; the message names
            the instruction or value at fault.
    """
    if not isinstance(circuit, QuantumCircuit):
        raise InvalidCircuitError(
            f"{where}: expected a QuantumCircuit, got {type(circuit).__name__}"
        )
    if circuit.parameters and not parameterized:
        names = ", ".join(sorted(p.name for p in circuit.parameters))
        raise InvalidCircuitError(
            f"{where} has unbound parameters: {names}; bind them with "
            "circuit.assign_parameters(...) or pass parameter_binds to run()"
        )
    low = _Lowering(circuit, dtype, where, parameterized)
    top = _Scope({q: i for i, q in enumerate(circuit.qubits)},
                 {c: i for i, c in enumerate(circuit.clbits)})
    low.add_phase(circuit.global_phase)
    for instruction in circuit.data:
        low.lower(instruction, top)
    ops = _mark_final_measurements(low.ops, circuit.num_qubits)
    layout = low._layout
    return Program(
        circuit.name, circuit.num_qubits, circuit.num_clbits, ops,
        has_control_flow=low.has_control_flow,
        new_classical_state=ClassicalState if layout is None else layout.new_state,
    )

