"""Lowering: validate a QuantumCircuit and turn it into a device-independent Program.

Everything a run can reject is rejected here, before any job starts: instructions whose
shape does not match their qubits and clbits, repeated qubits, parameters that are NaN or
infinite, unbound parameters, matrices of the wrong size or that are not unitary,
initialize vectors that do not fit or are not normalised, misplaced save instructions,
classical expressions the evaluator cannot run. Instructions are read by what they are, not
by their name alone: a gate with a matrix becomes an op (:mod:`.gate_ops`), any other gate or
instruction with a ``definition`` is simulated through that definition, and multi-qubit
``measure`` and ``reset`` act on every qubit they name. Control flow is flattened: blocks are
lowered in place and joined by jumps, a ``for_loop`` is unrolled (each iteration with its
loop parameter bound).

With idle-qubit truncation (:func:`active_qubits`), qubits that no operation acts on are left
out: the Program's qubit ``k`` is the circuit's qubit ``active[k]``.
"""

from __future__ import annotations

import cmath
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from qiskit.circuit import (
    CircuitInstruction,
    Clbit,
    ControlFlowOp,
    ControlledGate,
    Instruction,
    Operation,
    ParameterExpression,
    QuantumCircuit,
    Qubit,
)
from qiskit.circuit.controlflow import CASE_DEFAULT
from qiskit.circuit.library import (
    DiagonalGate,
    Initialize,
    PauliGate,
    StatePreparation,
    UCGate,
    UnitaryGate,
)
from qiskit.quantum_info import Kraus, Operator, Pauli

from ..exceptions import InvalidCircuitError, InvalidOptionError
from ..gates import is_no_op
from .classical import (
    ClassicalLayout,
    ClassicalState,
    compile_condition,
    compile_store,
    compile_target,
)
from .gate_batches import batch_builder, phase_batch_builder
from .gate_ops import (
    GateError,
    bound_gate_op,
    bound_values,
    checked_matrix,
    controlled,
    first_non_finite,
    gate_op,
    is_standard,
    open_parameters,
    parameterized_builder,
)
from .program import (
    SAVE_OPS,
    BranchOp,
    DiagonalOp,
    JumpOp,
    MeasureOp,
    NoiseSelectOp,
    Op,
    ParameterizedGateOp,
    PrepareOp,
    Program,
    ResetOp,
    StoreOp,
    SwitchOp,
    ZeroStateOp,
)
from .noise import Channel, NoiseSpec, kraus_op, term_ops
from .saves import SAVE_HANDLERS

UNITARY_TOLERANCE = 1e-8
"""Largest ``max|U U^dagger - I|`` accepted for a ``unitary`` or ``multiplexer`` matrix."""
NORM_TOLERANCE = 1e-8
"""Largest ``|norm - 1|`` accepted for an ``initialize`` vector."""
MAX_DEFINITION_DEPTH = 64
"""Most definitions nested inside one another (deeper: the definition is recursive)."""
SQRT_HALF = 0.5**0.5
_PHASE_QUBITS = np.zeros(0, dtype=np.int64)
"""A global phase as an op: a diagonal on no qubits."""
_PAULI_MATRICES = {
    "X": np.array([[0, 1], [1, 0]], dtype=np.complex128),
    "Y": np.array([[0, -1j], [1j, 0]], dtype=np.complex128),
    "Z": np.array([[1, 0], [0, -1]], dtype=np.complex128),
}


def active_qubits(circuit: QuantumCircuit) -> list[int]:
    """The circuit's qubits (indices, ascending) that some operation acts on: every
    instruction but barriers, delays and identities, inside control flow too."""
    active: set[int] = set()

    def visit(block: QuantumCircuit, indices: dict[Qubit, int]) -> None:
        for instruction in block.data:
            operation = instruction.operation
            if is_no_op(operation):
                continue
            if isinstance(operation, ControlFlowOp):
                for body in operation.blocks:
                    visit(body, {inner: indices[outer]
                                 for inner, outer in zip(body.qubits, instruction.qubits)})
            else:
                active.update(indices[q] for q in instruction.qubits)

    visit(circuit, {q: i for i, q in enumerate(circuit.qubits)})
    return sorted(active)


@dataclass
class _Scope:
    """Where a block's bits live in the Program (idle qubits of a truncated circuit have no
    position: only no-op instructions name them)."""

    qubits: dict[Qubit, int]
    clbits: dict[Clbit, int]
    in_loop: bool = False

    def qubits_of(self, instruction: CircuitInstruction) -> list[int]:
        return [self.qubits[q] for q in instruction.qubits]

    def clbits_of(self, instruction: CircuitInstruction) -> list[int]:
        return [self.clbits[c] for c in instruction.clbits]

    def enter(self, block: QuantumCircuit, instruction: CircuitInstruction,
              loop: bool = False) -> _Scope:
        return _Scope(
            {inner: self.qubits[outer] for inner, outer in zip(block.qubits, instruction.qubits)
             if outer in self.qubits},
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
                 parameterized: bool, qubit_map: Sequence[int],
                 noise: NoiseSpec | None = None) -> None:
        self.circuit = circuit
        self.noise = noise
        self.noise_blocks: dict[tuple[int, tuple[int, ...]], list[list[Op]]] = {}
        """A channel's ops per (channel, positions), made once per lowering."""
        self.dtype = dtype
        self.where = where
        self.parameterized = parameterized
        self.qubit_map = list(qubit_map)
        """The circuit's qubit of each Program qubit."""
        self.num_qubits = len(self.qubit_map)
        self.ops: list[Op] = []
        self.global_phase = 0.0
        self.touched: set[int] = set()
        self.labels: set[str] = set()
        self.loops: list[_Loop] = []
        self.has_control_flow = False
        self.depth = 0
        """How many control-flow blocks deep the lowering is (0: the circuit itself)."""
        self.definitions = 0
        """How many definitions deep the lowering is."""
        self.noisy_names = set() if noise is None else noise.instruction_names()
        self.unnoised: dict[str, set[str]] = {}
        """Gate known by its definition -> the names inside it that the noise model has
        errors for, which are not applied there (noise follows the circuit's own
        instructions, as in qiskit-aer)."""
        self.definition_name = ""
        """The circuit's own instruction whose definition is being lowered."""
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

    def add_op(self, op: Op, qubits: Sequence[int]) -> None:
        self.emit(op)
        self.touched.update(qubits)

    def add_phase(self, phase, what: str = "the global phase") -> None:
        """A global phase: folded into the saves at the top level, an op inside blocks."""
        if isinstance(phase, ParameterExpression) and phase.parameters:
            if not self.parameterized:
                raise self.error(f"{what} has unbound parameters: {phase}")
            self.emit(_parameterized_phase(phase, self.dtype))
            return
        try:
            angle = float(phase)
        except (TypeError, ValueError) as exc:
            raise self.error(f"{what} {phase!r} is not a real number") from exc
        if not math.isfinite(angle):
            raise self.error(f"{what} is {angle}; it must be a finite number")
        if self.depth == 0:
            self.global_phase += angle
        elif angle:
            self.emit(DiagonalOp(_PHASE_QUBITS, np.array([cmath.exp(1j * angle)],
                                                         dtype=self.dtype)))

    def lower_block(self, block: QuantumCircuit, scope: _Scope) -> None:
        self.depth += 1
        self.add_phase(block.global_phase)
        for instruction in block.data:
            self.lower(instruction, scope)
        self.depth -= 1

    def lower(self, instruction: CircuitInstruction, scope: _Scope) -> None:
        operation = instruction.operation
        name = operation.name
        noise = self.noise_of(instruction, scope)
        if name == "measure":  # Aer applies a measurement's error before it
            self.add_noise(noise)
            noise = []
        if is_no_op(operation):
            self.add_noise(noise)
            return
        self.check_shape(instruction, scope)
        handler = _HANDLERS.get(name)
        expected = _HANDLER_CLASSES.get(name)
        if handler is not None and (expected is None or isinstance(operation, expected)):
            handler(self, instruction, scope)
        elif not isinstance(operation, ControlFlowOp):
            _lower_gate(self, instruction, scope)
        else:
            raise self.error(
                f"instruction '{name}' is not supported by gpu_simulator; run "
                "transpile(circuit, backend) first to rewrite it into supported gates"
            )
        self.add_noise(noise)

    def noise_of(self, instruction: CircuitInstruction, scope: _Scope
                 ) -> list[tuple[Channel, list[int], str]]:
        """The noise model's channels for ``instruction``, with the Program positions they
        act on: one for a gate, one per qubit for ``measure`` and ``reset``. Gates inside a
        definition get none (Aer's noise names the circuit's own instructions)."""
        if self.noise is None:
            return []
        name = instruction.operation.name
        if self.definitions:
            if name in self.noisy_names:
                self.unnoised.setdefault(self.definition_name, set()).add(name)
            return []
        try:
            positions = scope.qubits_of(instruction)
        except KeyError:  # an idle, truncated qubit: its noise cannot reach any result
            return []
        groups = [[p] for p in positions] if name in ("measure", "reset") else [positions]
        found = []
        for group in groups:
            circuit_qubits = [self.qubit_map[p] for p in group]
            channel = self.noise.channel(name, circuit_qubits)
            if channel is not None:
                found.append((channel, group,
                              f"the noise model's error on '{name}' at qubits {circuit_qubits}"))
        return found

    def add_noise(self, noise: list[tuple[Channel, list[int], str]]) -> None:
        """Emit each channel: one term as its ops; several behind a NoiseSelectOp whose
        blocks end in jumps past the others."""
        for channel, positions, what in noise:
            key = (id(channel), tuple(positions))
            if key not in self.noise_blocks:  # every gate of a kind and qubits shares its ops
                self.noise_blocks[key] = [term_ops(instructions, positions, self.dtype, what)
                                          for _, instructions in channel.terms]
            blocks = self.noise_blocks[key]
            self.touched.update(positions)
            if len(blocks) == 1:
                for op in blocks[0]:
                    self.emit(op)
                continue
            probabilities = np.array([p for p, _ in channel.terms], dtype=np.float64)
            select = self.emit(JumpOp(-1))  # replaced once the targets are known
            targets, jumps = [], []
            for index, block in enumerate(blocks):
                targets.append(len(self.ops))
                for op in block:
                    self.emit(op)
                if index < len(blocks) - 1:
                    jumps.append(self.emit(JumpOp(-1)))
            for jump in jumps:
                self.ops[jump] = JumpOp(len(self.ops))
            self.ops[select] = NoiseSelectOp(probabilities / probabilities.sum(),
                                             tuple(targets), np.asarray(positions, np.int64),
                                             len(self.ops))
            self.has_control_flow = True

    def check_shape(self, instruction: CircuitInstruction, scope: _Scope) -> None:
        """The instruction's bits match its operation, none twice; its numbers are finite."""
        operation = instruction.operation
        name = operation.name
        qubits, clbits = instruction.qubits, instruction.clbits
        if len(qubits) != operation.num_qubits or len(clbits) != operation.num_clbits:
            raise self.error(
                f"'{name}' is a {operation.num_qubits}-qubit, {operation.num_clbits}-clbit "
                f"instruction but is applied to {len(qubits)} qubit(s) and {len(clbits)} "
                "clbit(s)"
            )
        if len(set(qubits)) != len(qubits) or len(set(clbits)) != len(clbits):
            raise self.error(
                f"'{name}' names a bit twice (qubits {self._circuit_qubits(qubits, scope)}, "
                f"clbits {[scope.clbits[c] for c in clbits]}); every qubit and clbit of an "
                "instruction must differ"
            )
        if not isinstance(operation, ControlFlowOp) and name not in SAVE_HANDLERS:
            bad = first_non_finite(getattr(operation, "params", ()))
            if bad is not None:
                raise self.error(f"'{name}' on qubits {self._circuit_qubits(qubits, scope)} "
                                 f"has the parameter {bad}; parameters must be finite numbers")

    def named(self, positions: Sequence[int]) -> list[int]:
        """The circuit's indices of Program qubits: how messages name qubits."""
        return [self.qubit_map[position] for position in positions]

    def _circuit_qubits(self, qubits: Sequence[Qubit], scope: _Scope) -> list[int]:
        return self.named([scope.qubits[q] for q in qubits if q in scope.qubits])


def _parameterized_phase(phase: ParameterExpression, dtype: np.dtype) -> ParameterizedGateOp:
    def build(values: dict) -> DiagonalOp:
        angle = bound_values([phase], values)[0]
        return DiagonalOp(_PHASE_QUBITS, np.array([cmath.exp(1j * angle)], dtype=dtype))

    return ParameterizedGateOp(_PHASE_QUBITS, build,
                               phase_batch_builder(phase, _PHASE_QUBITS, dtype))


# --- gates ----------------------------------------------------------------------------------


def _lower_gate(low: _Lowering, instruction: CircuitInstruction, scope: _Scope) -> None:
    """A gate from its matrix, its controlled form or, failing both, its definition."""
    operation = instruction.operation
    qubits = scope.qubits_of(instruction)
    try:
        if open_parameters(operation):
            if not low.parameterized:
                names = ", ".join(sorted(str(p) for p in operation.params
                                         if isinstance(p, ParameterExpression)))
                raise low.error(f"gate '{operation.name}' has unbound parameters: {names}")
            build = (None if _prefers_definition(operation)
                     else parameterized_builder(operation, qubits, low.dtype))
            if build is not None:
                low.add_op(ParameterizedGateOp(
                    np.asarray(qubits, dtype=np.int64), _named_errors(low, operation, build),
                    _named_errors(low, operation, batch_builder(operation, qubits, low.dtype))),
                    qubits)
                return
        else:
            op = bound_gate_op(operation, qubits, low.dtype)
            if op is not None:
                low.add_op(op, qubits)
                return
    except GateError as exc:
        raise low.error(f"gate '{operation.name}' on qubits {low.named(qubits)}: {exc}") from exc
    _lower_definition(low, instruction, scope)


def _prefers_definition(operation: Operation) -> bool:
    """An uncontrolled gate with a definition that is not a standard gate: its parameters
    are bound through the definition's own gates (which refer to the same parameters, as
    Qiskit binds them), not by rebinding the whole gate per binding."""
    return isinstance(operation, Instruction) and not isinstance(operation, ControlledGate) \
        and not is_standard(operation) and operation.definition is not None


def _named_errors(low: _Lowering, operation: Instruction,
                  build: Callable[..., Op] | None) -> Callable[..., Op] | None:
    """``build`` (None stays None) whose errors name the circuit and the gate."""
    if build is None:
        return None

    def named(*values: Any) -> Op:
        try:
            return build(*values)
        except GateError as exc:
            raise low.error(f"gate '{operation.name}': {exc}") from exc

    return named


def _lower_definition(low: _Lowering, instruction: CircuitInstruction, scope: _Scope) -> None:
    """Simulate an instruction through its definition (a gate known only by it, a
    composite instruction, a gate loaded from OpenQASM under a standard name)."""
    operation = instruction.operation
    try:
        definition = getattr(operation, "definition", None)
    except Exception as exc:  # noqa: BLE001 - a broken _define
        raise low.error(f"cannot build the definition of '{operation.name}': {exc}") from exc
    if definition is None:
        raise low.error(
            f"instruction '{operation.name}' has neither a matrix nor a definition, so it "
            "cannot be simulated; give it a definition or replace it with supported gates"
        )
    if definition.num_qubits != len(instruction.qubits) or \
            definition.num_clbits != len(instruction.clbits):
        raise low.error(
            f"the definition of '{operation.name}' has {definition.num_qubits} qubit(s) and "
            f"{definition.num_clbits} clbit(s); the instruction has {len(instruction.qubits)} "
            f"and {len(instruction.clbits)}"
        )
    if low.definitions >= MAX_DEFINITION_DEPTH:
        raise low.error(f"the definition of '{operation.name}' nests more than "
                        f"{MAX_DEFINITION_DEPTH} deep (is it recursive?)")
    if not low.definitions:
        low.definition_name = operation.name
    low.definitions += 1
    low.add_phase(definition.global_phase, f"the global phase of '{operation.name}'")
    inner = scope.enter(definition, instruction)
    for inner_instruction in definition.data:
        low.lower(inner_instruction, inner)
    low.definitions -= 1


def _lower_unitary(low: _Lowering, instruction: CircuitInstruction, scope: _Scope) -> None:
    qubits = scope.qubits_of(instruction)
    try:
        matrix = checked_matrix(instruction.operation.params[0], len(qubits))
    except GateError as exc:
        raise low.error(f"the 'unitary' on qubits {low.named(qubits)}: {exc}") from exc
    _check_unitary(low, matrix, f"the 'unitary' on qubits {low.named(qubits)}")
    low.add_op(gate_op(qubits, matrix, low.dtype), qubits)


def _check_unitary(low: _Lowering, matrix: np.ndarray, what: str) -> None:
    deviation = np.max(np.abs(matrix @ matrix.conj().T - np.eye(matrix.shape[0])))
    if deviation > UNITARY_TOLERANCE:
        raise low.error(f"{what} is not unitary: max|U U^dagger - I| = {deviation:.3g} "
                        f"exceeds {UNITARY_TOLERANCE:g}")


def _lower_diagonal(low: _Lowering, instruction: CircuitInstruction, scope: _Scope) -> None:
    qubits = scope.qubits_of(instruction)
    diagonal = np.asarray(instruction.operation.params, dtype=np.complex128)
    if diagonal.shape != (1 << len(qubits),):
        raise low.error(f"the 'diagonal' on qubits {low.named(qubits)} has {diagonal.size} "
                        f"entries; {len(qubits)} qubit(s) need {1 << len(qubits)}")
    if np.max(np.abs(np.abs(diagonal) - 1), initial=0.0) > UNITARY_TOLERANCE:
        raise low.error(f"the 'diagonal' on qubits {low.named(qubits)} is not unitary: every "
                        "entry must have modulus 1")
    low.add_op(DiagonalOp(np.asarray(qubits, dtype=np.int64), diagonal.astype(low.dtype)),
               qubits)


def _lower_pauli(low: _Lowering, instruction: CircuitInstruction, scope: _Scope) -> None:
    """A Pauli string as one-qubit X, Y and Z gates and its phase."""
    qubits = scope.qubits_of(instruction)
    try:
        pauli = Pauli(instruction.operation.params[0])
    except Exception as exc:  # noqa: BLE001 - Qiskit's message says what is wrong
        raise low.error(f"the 'pauli' label {instruction.operation.params[0]!r}: {exc}") from exc
    if pauli.num_qubits != len(qubits):
        raise low.error(f"the 'pauli' label {pauli.to_label()!r} has {pauli.num_qubits} "
                        f"letters for {len(qubits)} qubit(s)")
    letters = pauli.to_label().lstrip("-i")[::-1]  # letter j acts on argument qubit j
    for qubit, letter in zip(qubits, letters):
        if letter != "I":
            low.add_op(gate_op([qubit], _PAULI_MATRICES[letter], low.dtype), [qubit])
    low.add_phase(-math.pi / 2 * pauli.phase)  # the label's factor (-i)**phase


def _lower_multiplexer(low: _Lowering, instruction: CircuitInstruction, scope: _Scope) -> None:
    """A uniformly controlled gate (Qiskit's ``UCGate``, Aer's ``multiplexer``): matrix ``c``
    of its list acts on the target qubits (its first ones) where the controls (the rest,
    the first one the least significant) read ``c``. Exact, also for ``up_to_diagonal``."""
    qubits = scope.qubits_of(instruction)
    matrices = list(instruction.operation.params)
    width = int(np.log2(max(1, np.asarray(matrices[0]).shape[0]))) if matrices else 0
    control_qubits = qubits[width:]
    simplified, remaining = getattr(instruction.operation, "simp_contr", (False, None))
    if simplified:
        # Qiskit's mux_simp dropped the controls the matrices do not depend on: control
        # label i (1-based, counted from the last qubit) is qubit num_qubits - i.
        control_qubits = [qubits[len(qubits) - i] for i in sorted(remaining, reverse=True)]
    controls = len(control_qubits)
    if not matrices or len(qubits) < width or len(matrices) != 1 << controls:
        raise low.error(f"the 'multiplexer' on qubits {low.named(qubits)} has {len(matrices)} "
                        f"matrices of {width} qubit(s); it needs 2**{controls} of them")
    targets = qubits[:width]
    for value, matrix in enumerate(matrices):
        what = f"matrix {value} of the 'multiplexer' on qubits {low.named(qubits)}"
        try:
            matrix = checked_matrix(matrix, width)
        except GateError as exc:
            raise low.error(f"{what}: {exc}") from exc
        _check_unitary(low, matrix, what)
        if controls == 0:
            low.add_op(gate_op(targets, matrix, low.dtype), qubits)
        elif not np.allclose(matrix, np.eye(matrix.shape[0]), atol=1e-15):
            low.add_op(controlled(control_qubits, value, targets, matrix, low.dtype), qubits)


# --- measurement, reset, state preparation -------------------------------------------------


def _lower_measure(low: _Lowering, instruction: CircuitInstruction, scope: _Scope) -> None:
    """Measure every qubit named into its clbit, in order (a multi-qubit ``measure`` too)."""
    qubits, clbits = scope.qubits_of(instruction), scope.clbits_of(instruction)
    if len(qubits) != len(clbits):
        raise low.error(f"'measure' on {len(qubits)} qubit(s) writes {len(clbits)} clbit(s); "
                        "each measured qubit needs its own clbit")
    for qubit, clbit in zip(qubits, clbits):
        readout = None if low.noise is None else low.noise.confusion(low.qubit_map[qubit])
        low.emit(MeasureOp(qubit, clbit, readout=readout))


def _lower_reset(low: _Lowering, instruction: CircuitInstruction, scope: _Scope) -> None:
    """Reset every qubit named (a multi-qubit ``reset`` too)."""
    for qubit in scope.qubits_of(instruction):
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


def _product_columns(low: _Lowering, params: list, qubits: list[int],
                     name: str) -> list[np.ndarray] | None:
    """Per-qubit states (qubit 0 first) of a preparation given as a label or an integer."""
    width = len(qubits)
    if params and isinstance(params[0], str):
        label = "".join(params)
        if len(label) != width or set(label) - set(_PRODUCT_LABELS):
            raise low.error(f"the '{name}' label {label!r} on qubits {low.named(qubits)} must "
                            f"have {width} characters from {''.join(_PRODUCT_LABELS)}")
        return [np.array(_PRODUCT_LABELS[char], dtype=np.complex128) for char in reversed(label)]
    if len(params) == 1 and width > 0:
        value = complex(params[0])
        if value.imag or not value.real.is_integer() or not 0 <= value.real < 1 << width:
            raise low.error(f"the '{name}' integer {params[0]!r} on qubits "
                            f"{low.named(qubits)} must be a basis state 0 .. {(1 << width) - 1}")
        value = int(value.real)
        return [np.array(_PRODUCT_LABELS[str((value >> j) & 1)], dtype=np.complex128)
                for j in range(width)]
    return None


def _dense_column(low: _Lowering, params: list, qubits: list[int], name: str) -> np.ndarray:
    vector = np.asarray(params, dtype=np.complex128)
    if vector.shape != (1 << len(qubits),):
        raise low.error(f"the '{name}' vector on qubits {low.named(qubits)} has {vector.size} "
                        f"amplitudes; {len(qubits)} qubit(s) need {1 << len(qubits)}")
    norm = float(np.linalg.norm(vector))
    if abs(norm - 1) > NORM_TOLERANCE:
        raise low.error(
            f"the '{name}' vector on qubits {low.named(qubits)} has norm {norm:.12g}; it must "
            f"be 1 within {NORM_TOLERANCE:g} (normalize=True normalises it)"
        )
    return vector


def _prepare_from_zero(low: _Lowering, instruction: CircuitInstruction,
                       qubits: list[int]) -> None:
    """Spread the target state over ``qubits``, which are |0> here."""
    operation = instruction.operation
    products = _product_columns(low, operation.params, qubits, operation.name)
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
    if len(qubits) == low.num_qubits:
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
    operation = instruction.operation
    if _product_columns(low, operation.params, qubits, operation.name) is None:
        _dense_column(low, operation.params, qubits, operation.name)  # its checks
    low.add_op(gate_op(qubits, Operator(operation).data, low.dtype), qubits)


def _lower_global_phase(low: _Lowering, instruction: CircuitInstruction, scope: _Scope) -> None:
    low.add_phase(instruction.operation.params[0])


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


def _lower_channel(low: _Lowering, instruction: CircuitInstruction, scope: _Scope) -> None:
    """A quantum channel in the circuit (``kraus``, also what appending a ``Kraus`` or a
    ``SuperOp`` makes, or qiskit-aer's ``quantum_channel`` of a QuantumError): one KrausOp,
    whose shots split by the state's probabilities."""
    operation = instruction.operation
    qubits = scope.qubits_of(instruction)
    what = f"'{operation.name}' on qubits {low.named(qubits)}"
    try:
        matrices = operation.params if operation.name == "kraus" else Kraus(operation).data
        op = kraus_op(matrices, np.asarray(qubits, dtype=np.int64), low.dtype, what)
    except InvalidOptionError as exc:
        raise low.error(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - anything Kraus() cannot read
        raise low.error(f"{what} is not a readable quantum channel: {exc}") from exc
    low.add_op(op, qubits)


_HANDLERS: dict[str, Callable[[_Lowering, CircuitInstruction, _Scope], None]] = {
    "measure": _lower_measure,
    "kraus": _lower_channel,
    "quantum_channel": _lower_channel,
    "reset": _lower_reset,
    "global_phase": _lower_global_phase,
    "unitary": _lower_unitary,
    "diagonal": _lower_diagonal,
    "pauli": _lower_pauli,
    "multiplexer": _lower_multiplexer,
    "initialize": _lower_initialize,
    "state_preparation": _lower_state_preparation,
    **SAVE_HANDLERS,
    "store": _lower_store,
    "if_else": _lower_if_else,
    "switch_case": _lower_switch,
    "while_loop": _lower_while,
    "for_loop": _lower_for,
    "break_loop": _lower_loop_exit,
    "continue_loop": _lower_loop_exit,
    "box": _lower_box,
}
"""Instruction name -> how it is lowered; any other gate goes through :func:`_lower_gate`."""

_HANDLER_CLASSES: dict[str, type] = {
    "unitary": UnitaryGate,
    "diagonal": DiagonalGate,
    "pauli": PauliGate,
    "multiplexer": UCGate,
    "initialize": Initialize,
    "state_preparation": StatePreparation,
}
"""Names whose handler reads a class's parameters: an instruction of another class under
that name (an OpenQASM gate, say) is lowered as a gate, through its definition."""


_CONTROL_OPS = (JumpOp, BranchOp, SwitchOp, StoreOp, NoiseSelectOp)


def _mark_final_measurements(ops: list[Op], num_qubits: int) -> list[Op]:
    """Set ``final`` on measurements that can be sampled from the state at the end: those
    after the last control-flow op that nothing later acts on or overwrites. A noise
    mixture is not control flow here: every shot goes through one of its blocks, which act
    on the channel's qubits only."""
    noise_jumps = {target - 1 for op in ops if isinstance(op, NoiseSelectOp)
                   for target in op.targets[1:]}  # the jumps that end a term's block
    acted_on_later: set[int] = set()
    overwritten_later: set[int] = set()
    marked: list[Op] = []
    in_tail = True
    for index in range(len(ops) - 1, -1, -1):
        op = ops[index]
        if isinstance(op, NoiseSelectOp) or index in noise_jumps:
            acted_on_later.update(int(q) for q in getattr(op, "qubits", ()))
        elif isinstance(op, _CONTROL_OPS):
            in_tail = False
        elif isinstance(op, MeasureOp):
            final = (in_tail and op.qubit not in acted_on_later
                     and op.clbit not in overwritten_later)
            overwritten_later.add(op.clbit)
            op = replace(op, final=final)
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
    parameterized: bool = False, truncate: bool = False, noise: NoiseSpec | None = None,
) -> Program:
    """Validate ``circuit`` and lower it to a Program whose matrices are of ``dtype``.

    Args:
        circuit: the circuit to lower.
        dtype: complex dtype of the state the Program will run on.
        where: how error messages name the circuit, e.g. "circuit 'bell' (index 0)".
        parameterized: accept unbound parameters (a sweep binds them with
            :meth:`Program.bind`); otherwise they are an error.
        truncate: leave out the qubits no operation acts on (:func:`active_qubits`); the
            Program's ``qubit_map`` says which circuit qubit each of its qubits is.
        noise: the run's noise model (:mod:`gpuprovider.compile.noise`): its channels are
            lowered beside the instructions they follow, its readout errors into the
            measurements.

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
    used = active_qubits(circuit)
    active = used if truncate else list(range(circuit.num_qubits))
    if not active and circuit.num_qubits:
        active = [0]  # the kernels take states of one qubit or more
    low = _Lowering(circuit, dtype, where, parameterized, active, noise)
    top = _Scope({circuit.qubits[q]: position for position, q in enumerate(active)},
                 {c: i for i, c in enumerate(circuit.clbits)})
    low.add_phase(circuit.global_phase)
    for instruction in circuit.data:
        low.lower(instruction, top)
    for gate, names in sorted(low.unnoised.items()):
        listed = ", ".join(f"'{name}'" for name in sorted(names))
        warnings.warn(
            f"{where}: the noise model's errors on {listed} are not applied to the gates inside "
            f"'{gate}', which runs through its definition (noise follows the circuit's own "
            "instructions, as in qiskit-aer); transpile the circuit to the noise model's "
            "gates to apply them", UserWarning, stacklevel=2)
    ops = _mark_final_measurements(low.ops, low.num_qubits)
    layout = low._layout
    return Program(
        circuit.name, low.num_qubits, circuit.num_clbits, ops,
        has_control_flow=low.has_control_flow,
        new_classical_state=ClassicalState if layout is None else layout.new_state,
        qubit_map=tuple(active) if truncate else None, used_qubits=tuple(used),
        circuit_qubits=circuit.num_qubits,
    )

