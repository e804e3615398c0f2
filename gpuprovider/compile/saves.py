"""Lowering of the save instructions (qiskit-aer's names, parameters and ``_subtype``) and of
``set_statevector`` into Program ops.

Full-width saves (statevector, its dict, state, amplitudes) must cover every simulated
qubit; with idle-qubit truncation that is every active qubit, as in Aer. Unlike Aer, they
read the state in the order of their qubit arguments (and ``set_statevector`` loads it in
that order): a transpiler that permutes the qubits moves the save's arguments with them, so
the saved state is the original circuit's, where Aer returns it permuted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
from qiskit.circuit import CircuitInstruction
from qiskit.quantum_info import SparsePauliOp

from ..exceptions import InvalidCircuitError
from ..kernels.layout import basis_offsets
from .program import (
    SUBTYPES,
    PauliTerms,
    PrepareOp,
    Program,
    SaveAmplitudesOp,
    SaveDensityMatrixOp,
    SaveExpectationValueOp,
    SaveProbabilitiesOp,
    SaveStatevectorOp,
    ZeroStateOp,
)

if TYPE_CHECKING:
    from .lower import _Lowering, _Scope

HERMITIAN_TOLERANCE = 1e-10
"""Largest imaginary part accepted in a Pauli coefficient of an expectation value."""
MAX_DENSITY_MATRIX_QUBITS = 12
"""Widest reduced density matrix a save may ask for (2**24 entries, 256 MiB)."""
SET_STATEVECTOR_RTOL, SET_STATEVECTOR_ATOL = 1e-5, 1e-8
"""``set_statevector`` accepts a norm within these of 1, as ``Statevector.is_valid``."""
METHOD_LABEL = "_method_"
"""Aer's label for ``save_state`` without one: the key is the method's, ``statevector``."""

_SINGLE = ("single", "c_single", "list", "c_list")
_AVERAGED = ("average", "c_average", "accum", "c_accum", "list", "c_list")


def _save_label(low: _Lowering, instruction: CircuitInstruction, scope: _Scope) -> str:
    operation = instruction.operation
    if scope.in_loop:
        raise low.error(
            f"'{operation.name}' inside a loop would save '{operation.label}' on every "
            "iteration; save outside the loop"
        )
    label = operation.label or operation.name
    if label == METHOD_LABEL:
        label = "statevector"
    if label in low.labels:
        raise low.error(f"two save instructions use the label '{label}'; labels must differ")
    low.labels.add(label)
    return label


def _subtype(low: _Lowering, instruction: CircuitInstruction, allowed: tuple[str, ...]) -> str:
    operation = instruction.operation
    subtype = getattr(operation, "_subtype", allowed[0])
    if subtype not in allowed:
        raise low.error(f"'{operation.name}' has the subtype {subtype!r}; it takes one of "
                        f"{', '.join(allowed)} (see {SUBTYPES})")
    return subtype


def _full_width(low: _Lowering, instruction: CircuitInstruction, scope: _Scope) -> list[int]:
    qubits = scope.qubits_of(instruction)
    if sorted(qubits) != list(range(low.num_qubits)):
        raise low.error(
            f"'{instruction.operation.name}' must act on every qubit the circuit uses "
            f"({low.num_qubits}); it acts on {len(qubits)}"
        )
    low.touched.update(qubits)
    return qubits


def _lower_save_statevector(low: _Lowering, instruction: CircuitInstruction,
                            scope: _Scope) -> None:
    qubits = _full_width(low, instruction, scope)
    as_dict = instruction.operation.name == "save_statevector_dict"
    label = _save_label(low, instruction, scope)
    state_of = None
    if instruction.operation.name == "save_state":
        state_of = ("density_matrix" if instruction.operation.label == METHOD_LABEL else label,
                    np.asarray(qubits, dtype=np.int64))
    low.emit(SaveStatevectorOp(label, low.global_phase, _order(qubits), as_dict,
                               _subtype(low, instruction, _SINGLE), state_of))


DENSITY_SUBTYPES = {"single": "average", "c_single": "c_average"}
"""A ``save_state`` subtype as a density matrix's (one state: its average is itself)."""


def as_method_state(program: Program, method: str, where: str = "the circuit") -> Program:
    """``program`` with its ``save_state`` ops saving the state the way ``method`` holds it:
    under "density_matrix" a density matrix (Aer's key ``density_matrix`` for the default
    label), else the statevector. A circuit that reaches such a save under that method is
    noiseless or refused (:func:`~gpuprovider.compile.density.density_unsupported`), so
    ``|psi><psi|`` is its density matrix exactly.

    Raises:
        InvalidCircuitError: the saved state is wider than :data:`MAX_DENSITY_MATRIX_QUBITS`.
    """
    if method != "density_matrix":
        return program
    ops = []
    for op in program.ops:
        if isinstance(op, SaveStatevectorOp) and op.state_of is not None:
            label, qubits = op.state_of
            if qubits.size > MAX_DENSITY_MATRIX_QUBITS:
                raise InvalidCircuitError(
                    f"{where}: 'save_state' with method='density_matrix' saves the density "
                    f"matrix of {qubits.size} qubits; at most {MAX_DENSITY_MATRIX_QUBITS} (its "
                    "matrix has 4**n entries); use method='statevector'")
            op = SaveDensityMatrixOp(label, qubits, DENSITY_SUBTYPES.get(op.subtype, op.subtype))
        ops.append(op)
    return replace(program, ops=ops)


def _order(qubits: list[int]) -> np.ndarray | None:
    """The state index of each basis state of ``qubits`` (None when they are in order)."""
    return None if qubits == sorted(qubits) else basis_offsets(qubits)


def _lower_save_amplitudes(low: _Lowering, instruction: CircuitInstruction,
                           scope: _Scope) -> None:
    qubits = _full_width(low, instruction, scope)
    operation = instruction.operation
    squared = operation.name == "save_amplitudes_sq"
    try:
        indices = np.asarray([int(index) for index in operation.params], dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise low.error(f"'{operation.name}' has basis indices that are not integers: "
                        f"{operation.params!r}") from exc
    if indices.size == 0 or indices.min() < 0 or indices.max() >= 1 << low.num_qubits:
        raise low.error(f"'{operation.name}' needs basis indices 0 .. "
                        f"{(1 << low.num_qubits) - 1}, not {operation.params!r}")
    order = _order(qubits)
    low.emit(SaveAmplitudesOp(_save_label(low, instruction, scope),
                              indices if order is None else order[indices], low.global_phase,
                              squared, _subtype(low, instruction,
                                                _AVERAGED if squared else _SINGLE)))


def _lower_save_probabilities(low: _Lowering, instruction: CircuitInstruction,
                              scope: _Scope) -> None:
    qubits = np.asarray(scope.qubits_of(instruction), dtype=np.int64)
    label = _save_label(low, instruction, scope)
    as_dict = instruction.operation.name == "save_probabilities_dict"
    low.emit(SaveProbabilitiesOp(label, qubits, as_dict, _subtype(low, instruction, _AVERAGED)))


def _lower_save_density_matrix(low: _Lowering, instruction: CircuitInstruction,
                               scope: _Scope) -> None:
    qubits = np.asarray(scope.qubits_of(instruction), dtype=np.int64)
    if qubits.size > MAX_DENSITY_MATRIX_QUBITS:
        raise low.error(f"'save_density_matrix' on {qubits.size} qubits; at most "
                        f"{MAX_DENSITY_MATRIX_QUBITS} (its matrix has 4**n entries)")
    low.emit(SaveDensityMatrixOp(_save_label(low, instruction, scope), qubits,
                                 _subtype(low, instruction, _AVERAGED)))


def _pauli_terms(low: _Lowering, operator: SparsePauliOp, qubits: list[int]) -> PauliTerms:
    terms = []
    for pauli, coeff in zip(operator.paulis, operator.coeffs):
        # A Pauli's group phase (-i)^phase goes into the coefficient: the masks mean the
        # plain product of X, Y and Z.
        coeff = complex(coeff) * (-1j) ** int(pauli.phase)
        if abs(coeff.imag) > HERMITIAN_TOLERANCE:
            raise low.error(f"save_expval needs a Hermitian operator; term {pauli} has "
                            f"coefficient {coeff}")
        if coeff.real == 0:  # e.g. qiskit-aer's variance save lists its square's terms too
            continue
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
    if not np.all(np.isfinite(operator.coeffs)):
        raise low.error(f"'{operation.name}' has coefficients that are not finite")
    variance = operation.name == "save_expval_var"
    low.emit(SaveExpectationValueOp(
        label, _pauli_terms(low, operator, qubits),
        _pauli_terms(low, (operator @ operator).simplify(), qubits) if variance else (),
        variance, _subtype(low, instruction, _AVERAGED),
    ))


def _lower_set_statevector(low: _Lowering, instruction: CircuitInstruction,
                           scope: _Scope) -> None:
    """The state becomes the given vector (in the circuit's qubit order, as Aer loads it)."""
    if low.depth:
        raise low.error("'set_statevector' inside control flow is not supported; set the "
                        "state at the top level of the circuit")
    qubits = _full_width(low, instruction, scope)
    vector = np.asarray(instruction.operation.params[0], dtype=np.complex128).ravel()
    if vector.size != 1 << len(qubits):
        raise low.error(f"'set_statevector' has {vector.size} amplitudes for "
                        f"{len(qubits)} qubits; it needs {1 << len(qubits)}")
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(norm) or not np.isclose(norm, 1.0, rtol=SET_STATEVECTOR_RTOL,
                                               atol=SET_STATEVECTOR_ATOL):
        raise low.error(f"'set_statevector' has a vector of norm {norm:.12g}; it must be 1")
    low.emit(ZeroStateOp())
    low.emit(PrepareOp(np.asarray(qubits, dtype=np.int64), vector.astype(low.dtype)))
    low.global_phase = 0.0  # the phase so far belonged to the state replaced


SaveHandler = Callable[["_Lowering", CircuitInstruction, "_Scope"], None]

SAVE_HANDLERS: dict[str, SaveHandler] = {
    "save_statevector": _lower_save_statevector,
    "save_statevector_dict": _lower_save_statevector,
    "save_state": _lower_save_statevector,
    "save_amplitudes": _lower_save_amplitudes,
    "save_amplitudes_sq": _lower_save_amplitudes,
    "save_probabilities": _lower_save_probabilities,
    "save_probabilities_dict": _lower_save_probabilities,
    "save_density_matrix": _lower_save_density_matrix,
    "save_expval": _lower_save_expval,
    "save_expval_var": _lower_save_expval,
    "set_statevector": _lower_set_statevector,
}
"""Instruction name -> its lowering."""
