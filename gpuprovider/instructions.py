"""Simulator instructions that are not gates: saving simulator data into the result, and
setting the state.

They carry qiskit-aer's names, parameters and ``_subtype`` (how a save gathers its value over
shots), so circuits written for Aer run unchanged, and Aer's own instances of these names are
read the same way. Read the data back with ``result.data(i)[label]``
(``result.get_statevector(i)`` for the default statevector label). The ``QuantumCircuit``
methods below (``circuit.save_statevector()`` etc.) are added only where qiskit-aer has not
added its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qiskit.circuit import Instruction, QuantumCircuit
from qiskit.quantum_info import Operator, Pauli, SparsePauliOp, Statevector


def save_subtype(averaged: bool, pershot: bool, conditional: bool,
                 unnormalized: bool = False) -> str:
    """Aer's ``_subtype``: ``single`` / ``average`` / ``accum`` / ``list``, ``c_`` when
    conditional (``pershot`` wins over ``unnormalized``)."""
    if pershot:
        kind = "list"
    elif not averaged:
        kind = "single"
    else:
        kind = "accum" if unnormalized else "average"
    return f"c_{kind}" if conditional else kind


class _Save(Instruction):
    """A save instruction: Aer's layout (no clbits, the key in ``label``, ``_subtype``)."""

    _directive = True

    def __init__(self, name: str, num_qubits: int, label: str, subtype: str,
                 params: Sequence | None = None) -> None:
        if not isinstance(label, str):
            raise TypeError(f"Invalid label for save data instruction, {label} must be a "
                            "string.")
        super().__init__(name, num_qubits, 0, list(params or []), label=label)
        self._subtype = subtype


class SaveStatevector(_Save):
    """Save the statevector (one shot's, as Aer does). It must act on every active qubit."""

    def __init__(self, num_qubits: int, label: str = "statevector", pershot: bool = False,
                 conditional: bool = False) -> None:
        super().__init__("save_statevector", num_qubits, label,
                         save_subtype(False, pershot, conditional))


class SaveStatevectorDict(_Save):
    """Save the statevector as ``{hex basis index: amplitude}`` (non-zero amplitudes)."""

    def __init__(self, num_qubits: int, label: str = "statevector_dict",
                 pershot: bool = False, conditional: bool = False) -> None:
        super().__init__("save_statevector_dict", num_qubits, label,
                         save_subtype(False, pershot, conditional))


class SaveState(_Save):
    """Save the simulator's state: the statevector, under the key ``"statevector"`` by
    default (Aer's ``save_state`` on its statevector method)."""

    def __init__(self, num_qubits: int, label: str | None = None, pershot: bool = False,
                 conditional: bool = False) -> None:
        super().__init__("save_state", num_qubits, label or "_method_",
                         save_subtype(False, pershot, conditional))


def amplitude_indices(params: Sequence, num_qubits: int) -> list[int]:
    """Basis indices as Aer reads them: integers, or strings in hex (``0x..``) or binary."""
    if not len(params):
        raise ValueError("save_amplitudes needs at least one basis state index")
    if isinstance(params[0], str):
        base = 16 if params[0].startswith("0x") else 2
        params = [int(value, base) for value in params]
    if max(params) >= 2**num_qubits:
        raise ValueError("Param values contain a state larger than the number of qubits")
    return list(params)


class SaveAmplitudes(_Save):
    """Save the amplitudes of the basis states ``params`` (indices, in that order)."""

    def __init__(self, num_qubits: int, params: Sequence, label: str = "amplitudes",
                 pershot: bool = False, conditional: bool = False) -> None:
        super().__init__("save_amplitudes", num_qubits, label,
                         save_subtype(False, pershot, conditional),
                         amplitude_indices(params, num_qubits))


class SaveAmplitudesSquared(_Save):
    """Save the probabilities of the basis states ``params`` (averaged over shots)."""

    def __init__(self, num_qubits: int, params: Sequence, label: str = "amplitudes_squared",
                 unnormalized: bool = False, pershot: bool = False,
                 conditional: bool = False) -> None:
        super().__init__("save_amplitudes_sq", num_qubits, label,
                         save_subtype(True, pershot, conditional, unnormalized),
                         amplitude_indices(params, num_qubits))


class SaveProbabilities(_Save):
    """Save the outcome probabilities of its qubits (an array, averaged over shots; its
    first qubit is the least significant bit of the index)."""

    def __init__(self, num_qubits: int, label: str = "probabilities",
                 unnormalized: bool = False, pershot: bool = False,
                 conditional: bool = False) -> None:
        super().__init__("save_probabilities", num_qubits, label,
                         save_subtype(True, pershot, conditional, unnormalized))


class SaveProbabilitiesDict(_Save):
    """Save the non-zero outcome probabilities of its qubits as ``{outcome: probability}``."""

    def __init__(self, num_qubits: int, label: str = "probabilities_dict",
                 unnormalized: bool = False, pershot: bool = False,
                 conditional: bool = False) -> None:
        super().__init__("save_probabilities_dict", num_qubits, label,
                         save_subtype(True, pershot, conditional, unnormalized))


class SaveDensityMatrix(_Save):
    """Save the reduced density matrix of its qubits (averaged over shots)."""

    def __init__(self, num_qubits: int, label: str = "density_matrix",
                 unnormalized: bool = False, pershot: bool = False,
                 conditional: bool = False) -> None:
        super().__init__("save_density_matrix", num_qubits, label,
                         save_subtype(True, pershot, conditional, unnormalized))


def _hermitian_terms(operator: Any) -> list[tuple[str, tuple[float, float]]]:
    """Aer's parameter layout: ``(label, (coefficient, 0))`` per term of a Hermitian
    operator given as a Pauli, a SparsePauliOp or anything ``Operator`` takes."""
    if isinstance(operator, Pauli):
        operator = SparsePauliOp(operator)
    elif not isinstance(operator, SparsePauliOp):
        operator = SparsePauliOp.from_operator(Operator(operator))
    operator = operator.simplify()
    if max(abs(operator.coeffs.imag), default=0.0) > 1e-12:
        raise ValueError(f"Input operator is not Hermitian: {operator}")
    return [(label, (float(coeff.real), 0.0)) for label, coeff in operator.to_list()]


class SaveExpectationValue(_Save):
    """Save ``<psi|H|psi>`` for a Hermitian operator ``H`` on its qubits (averaged)."""

    def __init__(self, operator: Any, label: str = "expectation_value",
                 unnormalized: bool = False, pershot: bool = False,
                 conditional: bool = False) -> None:
        terms = _hermitian_terms(operator)
        super().__init__("save_expval", len(terms[0][0]), label,
                         save_subtype(True, pershot, conditional, unnormalized), terms)


class SaveExpectationValueVariance(_Save):
    """Save ``[<H>, <H^2> - <H>^2]`` for a Hermitian operator ``H`` on its qubits."""

    def __init__(self, operator: Any, label: str = "expectation_value_variance",
                 unnormalized: bool = False, pershot: bool = False,
                 conditional: bool = False) -> None:
        terms = _hermitian_terms(operator)
        super().__init__("save_expval_var", len(terms[0][0]), label,
                         save_subtype(True, pershot, conditional, unnormalized), terms)


class SetStatevector(Instruction):
    """Replace the state by ``state`` (on every qubit, loaded as given)."""

    _directive = True

    def __init__(self, state: Any) -> None:
        if not isinstance(state, Statevector):
            state = Statevector(state)
        if not state.num_qubits or not state.is_valid():
            raise ValueError("The input statevector is not valid")
        super().__init__("set_statevector", state.num_qubits, 0, [state.data])


# --- Aer's QuantumCircuit methods -------------------------------------------------------------


def _all(circuit: QuantumCircuit, qubits: Sequence | None) -> list:
    return list(circuit.qubits if qubits is None else qubits)


def _save_statevector(self: QuantumCircuit, label: str = "statevector", pershot: bool = False,
                      conditional: bool = False):
    return self.append(SaveStatevector(self.num_qubits, label, pershot, conditional),
                       self.qubits)


def _save_statevector_dict(self: QuantumCircuit, label: str = "statevector",
                           pershot: bool = False, conditional: bool = False):
    return self.append(SaveStatevectorDict(self.num_qubits, label, pershot, conditional),
                       self.qubits)


def _save_state(self: QuantumCircuit, label: str | None = None, pershot: bool = False,
                conditional: bool = False):
    return self.append(SaveState(self.num_qubits, label, pershot, conditional), self.qubits)


def _save_amplitudes(self: QuantumCircuit, params: Sequence, label: str = "amplitudes",
                     pershot: bool = False, conditional: bool = False):
    return self.append(SaveAmplitudes(self.num_qubits, params, label, pershot, conditional),
                       self.qubits)


def _save_amplitudes_squared(self: QuantumCircuit, params: Sequence,
                             label: str = "amplitudes_squared", unnormalized: bool = False,
                             pershot: bool = False, conditional: bool = False):
    return self.append(SaveAmplitudesSquared(self.num_qubits, params, label, unnormalized,
                                             pershot, conditional), self.qubits)


def _save_probabilities(self: QuantumCircuit, qubits: Sequence | None = None,
                        label: str = "probabilities", unnormalized: bool = False,
                        pershot: bool = False, conditional: bool = False):
    qubits = _all(self, qubits)
    return self.append(SaveProbabilities(len(qubits), label, unnormalized, pershot,
                                         conditional), qubits)


def _save_probabilities_dict(self: QuantumCircuit, qubits: Sequence | None = None,
                             label: str = "probabilities", unnormalized: bool = False,
                             pershot: bool = False, conditional: bool = False):
    qubits = _all(self, qubits)
    return self.append(SaveProbabilitiesDict(len(qubits), label, unnormalized, pershot,
                                             conditional), qubits)


def _save_density_matrix(self: QuantumCircuit, qubits: Sequence | None = None,
                         label: str = "density_matrix", unnormalized: bool = False,
                         pershot: bool = False, conditional: bool = False):
    qubits = _all(self, qubits)
    return self.append(SaveDensityMatrix(len(qubits), label, unnormalized, pershot,
                                         conditional), qubits)


def _save_expectation_value(self: QuantumCircuit, operator: Any, qubits: Sequence,
                            label: str = "expectation_value", unnormalized: bool = False,
                            pershot: bool = False, conditional: bool = False):
    return self.append(SaveExpectationValue(operator, label, unnormalized, pershot,
                                            conditional), qubits)


def _save_expectation_value_variance(self: QuantumCircuit, operator: Any, qubits: Sequence,
                                     label: str = "expectation_value_variance",
                                     unnormalized: bool = False, pershot: bool = False,
                                     conditional: bool = False):
    return self.append(SaveExpectationValueVariance(operator, label, unnormalized, pershot,
                                                    conditional), qubits)


def _set_statevector(self: QuantumCircuit, state: Any):
    if not isinstance(state, Statevector):
        state = Statevector(state)
    if state.num_qubits != self.num_qubits:
        raise ValueError(
            "The size of the statevector for the set_statevector instruction must be equal "
            f"to the number of qubits in the circuit (state.num_qubits ({state.num_qubits}) "
            f"!= QuantumCircuit.num_qubits ({self.num_qubits}))."
        )
    return self.append(SetStatevector(state), self.qubits)


for _name, _method in {
    "save_statevector": _save_statevector,
    "save_statevector_dict": _save_statevector_dict,
    "save_state": _save_state,
    "save_amplitudes": _save_amplitudes,
    "save_amplitudes_squared": _save_amplitudes_squared,
    "save_probabilities": _save_probabilities,
    "save_probabilities_dict": _save_probabilities_dict,
    "save_density_matrix": _save_density_matrix,
    "save_expectation_value": _save_expectation_value,
    "save_expectation_value_variance": _save_expectation_value_variance,
    "set_statevector": _set_statevector,
}.items():
    if not hasattr(QuantumCircuit, _name):
        setattr(QuantumCircuit, _name, _method)
