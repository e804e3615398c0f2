"""The BackendV2 surface: name, provider, target, qubit capacity, option defaults, imports."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from qiskit import QuantumCircuit, transpile
from qiskit.circuit import Gate
from qiskit.circuit.library import QFTGate, UnitaryGate
from qiskit.providers import BackendV2, QiskitBackendNotFoundError
from qiskit.quantum_info import Statevector, random_unitary

from gpuprovider import GPUProvider, GPUSimulator
from gpuprovider.gates import supported_instructions
from gpuprovider.instructions import SaveStatevector

BACKEND_NAME = "gpu_simulator"


def gate_names() -> list[str]:
    return sorted(
        name for name, operation in supported_instructions().items()
        if isinstance(operation, Gate)
    )


def prepared_circuit(num_qubits: int) -> QuantumCircuit:
    """A circuit leaving an entangled state with distinct amplitudes and phases."""
    circuit = QuantumCircuit(num_qubits)
    for qubit in range(num_qubits):
        circuit.ry(0.3 + 0.4 * qubit, qubit)
        circuit.rz(0.2 + 0.5 * qubit, qubit)
    for qubit in range(num_qubits - 1):
        circuit.cx(qubit, qubit + 1)
    return circuit


# --- identity and provider ----------------------------------------------------------------------


def test_backend_is_a_backend_v2_named_gpu_simulator():
    backend = GPUSimulator(device="CPU")

    assert isinstance(backend, BackendV2)
    assert backend.name == BACKEND_NAME
    assert backend.max_circuits is None


def test_provider_lists_its_backends():
    provider = GPUProvider()

    backends = provider.backends()
    assert [backend.name for backend in backends] == [BACKEND_NAME]
    assert all(isinstance(backend, GPUSimulator) for backend in backends)
    assert backends[0].provider is provider
    assert [b.name for b in provider.backends(name=BACKEND_NAME)] == [BACKEND_NAME]
    assert provider.backends(name="no_such_backend") == []
    assert provider.backends(precision="single")[0].options.precision == "single"


def test_provider_get_backend_by_name_with_options():
    provider = GPUProvider()

    default = provider.get_backend()
    named = provider.get_backend(BACKEND_NAME, precision="single", shots=77)

    assert isinstance(default, GPUSimulator) and default.name == BACKEND_NAME
    assert named.name == BACKEND_NAME
    assert named.options.precision == "single"
    assert named.options.shots == 77
    assert named.provider is provider
    assert named is not default


def test_provider_get_backend_with_an_unknown_name_raises():
    with pytest.raises(QiskitBackendNotFoundError) as info:
        GPUProvider().get_backend("no_such_backend")
    message = str(info.value)
    assert "no_such_backend" in message
    assert BACKEND_NAME in message


# --- options and capacity -----------------------------------------------------------------------


def test_option_defaults():
    options = GPUSimulator().options

    assert options.shots == 1024
    assert options.memory is False
    assert options.precision == "double"
    assert options.device == "auto"
    assert options.seed_simulator is None


def test_num_qubits_is_large_and_single_precision_fits_one_more(device):
    double = GPUSimulator(device=device, precision="double")
    single = GPUSimulator(device=device, precision="single")

    assert double.num_qubits >= 20
    assert single.num_qubits == double.num_qubits + 1
    assert double.target.num_qubits == double.num_qubits


# --- target -------------------------------------------------------------------------------------


def test_target_contains_every_supported_instruction(backend):
    operation_names = set(backend.target.operation_names)

    missing = set(supported_instructions()) - operation_names
    assert not missing, f"the target lacks {sorted(missing)}"
    for name in ("measure", "reset", "barrier", "unitary", "initialize", "save_statevector"):
        assert name in operation_names


@pytest.mark.parametrize("name", gate_names())
def test_every_gate_the_target_advertises_runs_correctly(backend, tolerance, name):
    gate = supported_instructions()[name].to_mutable()
    if gate.params:
        gate.params = [0.3 + 0.7 * index for index in range(len(gate.params))]
    circuit = prepared_circuit(4)
    circuit.append(gate, [3, 1, 0, 2][: gate.num_qubits])
    expected = Statevector(circuit)
    circuit.append(SaveStatevector(4), circuit.qubits)

    saved = backend.run(circuit).result().get_statevector()

    np.testing.assert_allclose(saved.data, expected.data, atol=tolerance)


def test_transpile_for_the_target_then_run_matches_the_original_circuit(backend, tolerance):
    circuit = QuantumCircuit(4)
    circuit.initialize([0.6, 0.8j], 0)
    circuit.h(1)
    circuit.ccx(0, 1, 2)
    circuit.u(0.1, 0.2, 0.3, 3)
    circuit.append(QFTGate(4), range(4))
    circuit.append(UnitaryGate(random_unitary(4, seed=5)), [3, 1])
    expected = Statevector(circuit)
    circuit.append(SaveStatevector(4), circuit.qubits)

    transpiled = transpile(circuit, backend, seed_transpiler=1)
    saved = backend.run(transpiled).result().get_statevector()

    assert set(transpiled.count_ops()) <= set(backend.target.operation_names)
    np.testing.assert_allclose(saved.data, expected.data, atol=tolerance)


def test_initialize_on_most_qubits_of_a_wide_circuit_runs(backend):
    circuit = QuantumCircuit(21)
    circuit.x(20)
    circuit.initialize("1" * 20, range(20))
    circuit.measure_all()

    counts = backend.run(circuit, shots=50).result().get_counts()

    assert counts == {"1" * 21: 50}


# --- imports ------------------------------------------------------------------------------------


def test_import_gpuprovider_loads_neither_numba_nor_cupy():
    code = (
        "import sys, gpuprovider; "
        "print(sorted(name for name in ('numba', 'numba.cuda', 'cupy') if name in sys.modules))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert completed.stdout.strip() == "[]", completed.stdout + completed.stderr


def test_repr_names_device_and_precision():
    from gpuprovider import GPUSimulator

    assert repr(GPUSimulator(device="cpu", precision="single")) == (
        "GPUSimulator(device='CPU', precision='single')"
    )
