"""CPU benchmarks: gpuprovider beside qiskit-aer and qiskit.quantum_info.Statevector.

    pytest benchmarks/test_cpu_peers.py --benchmark-group-by=param:name,param:num_qubits

Each group times the same circuit on every simulator in one run; compare within a group.
"""

from __future__ import annotations

import importlib.util

import pytest
from qiskit import QuantumCircuit, transpile
from qiskit.circuit.library import QFTGate, quantum_volume
from qiskit.quantum_info import Statevector

from gpuprovider import GPUSimulator

def ghz(num_qubits: int) -> QuantumCircuit:
    circuit = QuantumCircuit(num_qubits)
    circuit.h(0)
    for qubit in range(num_qubits - 1):
        circuit.cx(qubit, qubit + 1)
    circuit.measure_all()
    return circuit


def qft(num_qubits: int) -> QuantumCircuit:
    """QFTGate lowered to h/cp/swap, on a non-trivial input state."""
    circuit = QuantumCircuit(num_qubits)
    circuit.x(range(0, num_qubits, 2))
    circuit.append(QFTGate(num_qubits), range(num_qubits))
    circuit.measure_all()
    return transpile(circuit, basis_gates=["h", "cp", "swap", "x", "measure"],
                     optimization_level=0)


def qv(num_qubits: int) -> QuantumCircuit:
    """Quantum volume (depth = width) as 2-qubit unitaries."""
    circuit = quantum_volume(num_qubits, depth=num_qubits, seed=7)
    circuit.measure_all()
    return circuit


CIRCUITS = {"ghz": ghz, "qft": qft, "qv": qv}

SHOTS = 1000
SIZES = [16, 20, 22]


def _run_gpuprovider(circuit, precision):
    backend = GPUSimulator(device="CPU", precision=precision)
    return lambda: backend.run(circuit, shots=SHOTS, seed_simulator=1).result()


def _run_aer(circuit, precision):
    from qiskit_aer import AerSimulator

    backend = AerSimulator(method="statevector", precision=precision)
    return lambda: backend.run(circuit, shots=SHOTS, seed_simulator=1).result()


def _run_statevector(circuit, precision):
    bare = circuit.remove_final_measurements(inplace=False)
    return lambda: Statevector(bare).sample_counts(SHOTS)


SIMULATORS = {"gpuprovider": _run_gpuprovider, "aer": _run_aer, "statevector": _run_statevector}


@pytest.mark.parametrize("simulator", list(SIMULATORS))
@pytest.mark.parametrize("num_qubits", SIZES)
@pytest.mark.parametrize("name", list(CIRCUITS))
def test_cpu_double(benchmark, name, num_qubits, simulator):
    if simulator == "aer" and importlib.util.find_spec("qiskit_aer") is None:
        pytest.skip("qiskit-aer is not installed")
    if simulator == "statevector" and num_qubits > 20:
        pytest.skip("Statevector is too slow above 20 qubits")
    run = SIMULATORS[simulator](CIRCUITS[name](num_qubits), "double")
    run()  # warm-up: JIT and caches
    benchmark.pedantic(run, rounds=3, iterations=1)
