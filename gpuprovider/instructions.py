"""Simulator instructions that are not gates: saving simulator data into the result."""

from __future__ import annotations

from qiskit.circuit import Instruction, QuantumCircuit


class SaveStatevector(Instruction):
    """Save the statevector at this point of the circuit into the result.

    Named ``save_statevector`` with qiskit-aer's signature, so circuits written for Aer run
    unchanged. It must act on every qubit of the circuit, in order; read it back with
    ``result.get_statevector(i)`` (or ``result.data(i)[label]`` for another label).
    """

    def __init__(self, num_qubits: int, label: str = "statevector") -> None:
        super().__init__("save_statevector", num_qubits, 0, [], label=label)


def save_statevector(self: QuantumCircuit, label: str = "statevector"):
    """Append a :class:`SaveStatevector` on every qubit of the circuit (Aer's spelling)."""
    return self.append(SaveStatevector(self.num_qubits, label=label), self.qubits)


if not hasattr(QuantumCircuit, "save_statevector"):
    QuantumCircuit.save_statevector = save_statevector
