"""Simulator instructions that are not gates: saving simulator data into the result.

They carry qiskit-aer's names and parameters, so circuits written for Aer run unchanged (and
Aer's own instances of these names are read the same way). Read the data back with
``result.data(i)[label]`` (``result.get_statevector(i)`` for the default statevector label).
"""

from __future__ import annotations

from collections.abc import Sequence

from qiskit.circuit import Instruction, QuantumCircuit
from qiskit.quantum_info import Pauli, SparsePauliOp


class SaveStatevector(Instruction):
    """Save the statevector at this point of the circuit (one shot's, as Aer does).

    It must act on every qubit of the circuit.
    """

    def __init__(self, num_qubits: int, label: str = "statevector") -> None:
        super().__init__("save_statevector", num_qubits, 0, [], label=label)


class SaveProbabilities(Instruction):
    """Save the outcome probabilities of its qubits (an array, averaged over shots)."""

    def __init__(self, num_qubits: int, label: str = "probabilities") -> None:
        super().__init__("save_probabilities", num_qubits, 0, [], label=label)


class SaveProbabilitiesDict(Instruction):
    """Save the non-zero outcome probabilities of its qubits as ``{outcome: probability}``."""

    def __init__(self, num_qubits: int, label: str = "probabilities_dict") -> None:
        super().__init__("save_probabilities_dict", num_qubits, 0, [], label=label)


def _aer_expval_params(operator: Pauli | SparsePauliOp) -> list[tuple[str, tuple[float, float]]]:
    """Aer's parameter layout: ``(label, (coefficient, 0))`` per term (Hermitian operators)."""
    operator = SparsePauliOp(operator).simplify()
    if max(abs(operator.coeffs.imag), default=0.0) > 1e-12:
        raise ValueError(f"save_expval needs a Hermitian operator (real coefficients): {operator}")
    return [(label, (float(coeff.real), 0.0)) for label, coeff in operator.to_list()]


class SaveExpectationValue(Instruction):
    """Save ``<psi|H|psi>`` for a Hermitian Pauli sum ``H`` on its qubits (averaged)."""

    def __init__(
        self, operator: Pauli | SparsePauliOp, label: str = "expectation_value"
    ) -> None:
        terms = _aer_expval_params(operator)
        super().__init__("save_expval", len(terms[0][0]), 0, terms, label=label)


class SaveExpectationValueVariance(Instruction):
    """Save ``[<H>, <H^2> - <H>^2]`` for a Hermitian Pauli sum ``H`` on its qubits."""

    def __init__(
        self, operator: Pauli | SparsePauliOp, label: str = "expectation_value_variance"
    ) -> None:
        terms = _aer_expval_params(operator)
        super().__init__("save_expval_var", len(terms[0][0]), 0, terms, label=label)


def _save_statevector(self: QuantumCircuit, label: str = "statevector"):
    return self.append(SaveStatevector(self.num_qubits, label=label), self.qubits)


def _save_probabilities(self: QuantumCircuit, qubits: Sequence | None = None,
                        label: str = "probabilities"):
    qubits = self.qubits if qubits is None else qubits
    return self.append(SaveProbabilities(len(qubits), label=label), qubits)


def _save_probabilities_dict(self: QuantumCircuit, qubits: Sequence | None = None,
                             label: str = "probabilities_dict"):
    qubits = self.qubits if qubits is None else qubits
    return self.append(SaveProbabilitiesDict(len(qubits), label=label), qubits)


def _save_expectation_value(self: QuantumCircuit, operator, qubits: Sequence,
                            label: str = "expectation_value"):
    return self.append(SaveExpectationValue(operator, label=label), qubits)


def _save_expectation_value_variance(self: QuantumCircuit, operator, qubits: Sequence,
                                     label: str = "expectation_value_variance"):
    return self.append(SaveExpectationValueVariance(operator, label=label), qubits)


# Aer's QuantumCircuit methods, added only where qiskit-aer has not added its own.
for _name, _method in {
    "save_statevector": _save_statevector,
    "save_probabilities": _save_probabilities,
    "save_probabilities_dict": _save_probabilities_dict,
    "save_expectation_value": _save_expectation_value,
    "save_expectation_value_variance": _save_expectation_value_variance,
}.items():
    if not hasattr(QuantumCircuit, _name):
        setattr(QuantumCircuit, _name, _method)
