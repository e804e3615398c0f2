"""Parameter sweeps in qiskit-aer's ``parameter_binds`` format."""

from __future__ import annotations

import re

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter, ParameterVector
from qiskit.circuit.library import efficient_su2
from qiskit.quantum_info import Statevector

from gpuprovider.exceptions import InvalidCircuitError


def ansatz(num_qubits: int = 4) -> QuantumCircuit:
    circuit = efficient_su2(num_qubits, reps=2).decompose()
    circuit.global_phase = circuit.parameters[0] / 2  # a parameterised phase as well
    circuit.save_statevector()
    return circuit


def test_each_binding_matches_the_bound_circuit(backend, tolerance):
    circuit = ansatz()
    rng = np.random.default_rng(4)
    values = rng.uniform(-np.pi, np.pi, size=(5, circuit.num_parameters))
    binds = {p: list(values[:, i]) for i, p in enumerate(circuit.parameters)}
    result = backend.run(circuit, parameter_binds=[binds]).result()
    assert len(result.results) == 5
    for j in range(5):
        bound = circuit.assign_parameters(values[j]).remove_final_measurements(inplace=False)
        bound.data = [i for i in bound.data if i.operation.name != "save_statevector"]
        expected = Statevector(bound).data
        assert np.max(np.abs(result.get_statevector(j).data - expected)) < tolerance * 10


def test_controlled_rotations_with_open_controls_and_shared_parameters(backend, tolerance):
    """Gates rebuilt from their class per binding keep their control state and every
    parameter expression."""
    theta, phi = Parameter("theta"), Parameter("phi")
    circuit = QuantumCircuit(3)
    circuit.h(range(3))
    circuit.cp(theta, 0, 1, ctrl_state=0)
    circuit.crx(2 * theta - phi, 1, 2)
    circuit.cry(phi, 2, 0, ctrl_state=0)
    circuit.u(theta, phi, 0.3, 1)
    circuit.rzz(theta * phi, 0, 2)
    circuit.save_statevector()
    values = {theta: [0.4, -1.3, 2.2], phi: [0.1, 0.9, -2.5]}
    result = backend.run(circuit, parameter_binds=[values]).result()
    for j in range(3):
        bound = circuit.assign_parameters({p: values[p][j] for p in values})
        bound.data = [i for i in bound.data if i.operation.name != "save_statevector"]
        expected = Statevector(bound).data
        assert np.max(np.abs(result.get_statevector(j).data - expected)) < tolerance * 10


def test_experiments_are_circuit_major(backend):
    theta = Parameter("theta")
    first = QuantumCircuit(1, 1, name="first")
    first.rx(theta, 0)
    first.measure(0, 0)
    second = QuantumCircuit(1, 1, name="second")
    second.x(0)
    second.ry(theta, 0)
    second.measure(0, 0)
    binds = [{theta: [0.0, np.pi]}, {theta: [0.0, np.pi, 0.0]}]
    result = backend.run([first, second], parameter_binds=binds, shots=50).result()
    counts = [result.get_counts(i) for i in range(5)]
    assert counts == [{"0": 50}, {"1": 50}, {"1": 50}, {"0": 50}, {"1": 50}]
    assert [r.header["name"] for r in result.results] == ["first"] * 2 + ["second"] * 3


def test_parameter_vector_and_expressions(backend, tolerance):
    angles = ParameterVector("a", 2)
    circuit = QuantumCircuit(2)
    circuit.ry(2 * angles[0] + 0.5, 0)
    circuit.crz(angles[1] - angles[0], 0, 1)
    circuit.rzz(angles[1], 0, 1)
    circuit.save_statevector()
    binds = {angles[0]: [0.3, 1.0], angles[1]: [-0.2, 2.0]}
    result = backend.run(circuit, parameter_binds=[binds]).result()
    for j, (a0, a1) in enumerate(zip(binds[angles[0]], binds[angles[1]])):
        bound = circuit.assign_parameters({angles[0]: a0, angles[1]: a1})
        bound.data = bound.data[:-1]
        assert np.allclose(result.get_statevector(j).data, Statevector(bound).data,
                           atol=tolerance * 10)


def test_sweep_of_a_dynamic_circuit(backend):
    theta = Parameter("theta")
    circuit = QuantumCircuit(2, 2)
    circuit.ry(theta, 0)
    circuit.measure(0, 0)
    with circuit.if_test((circuit.clbits[0], 1)):
        circuit.x(1)
    circuit.measure(1, 1)
    result = backend.run(circuit, parameter_binds=[{theta: [0.0, np.pi]}], shots=64).result()
    assert result.get_counts(0) == {"00": 64}
    assert result.get_counts(1) == {"11": 64}


@pytest.mark.parametrize(
    "binds, message",
    [
        ({}, "one {Parameter: [values]} dict per circuit"),
        ([{}, {}], "2 entries for 1 circuit"),
        (["theta"], "must be a dict"),
        ([{}], "gives no values for theta"),
        ([{Parameter("other"): [1.0]}], "does not have: other"),
        ([{"theta": [1.0]}], "does not have: theta"),
    ],
)
def test_bad_binds_are_rejected_before_the_job(binds, message):
    from gpuprovider import GPUSimulator

    theta = Parameter("theta")
    circuit = QuantumCircuit(1)
    circuit.rx(theta, 0)
    with pytest.raises(InvalidCircuitError, match=re.escape(message)):
        GPUSimulator(device="CPU").run(circuit, parameter_binds=binds)


@pytest.mark.parametrize(
    "values, message",
    [
        ([1.0, float("nan")], "finite real numbers"),
        ([1.0, "x"], "finite real numbers"),
        (1.0, "must be a list of numbers"),
        ([], "non-zero number of values"),
    ],
)
def test_bad_values_are_rejected(values, message):
    from gpuprovider import GPUSimulator

    theta = Parameter("theta")
    circuit = QuantumCircuit(1)
    circuit.rx(theta, 0)
    with pytest.raises(InvalidCircuitError, match=message):
        GPUSimulator(device="CPU").run(circuit, parameter_binds=[{theta: values}])


def test_unequal_lengths_are_rejected():
    from gpuprovider import GPUSimulator

    a, b = Parameter("a"), Parameter("b")
    circuit = QuantumCircuit(1)
    circuit.rx(a, 0)
    circuit.rz(b, 0)
    with pytest.raises(InvalidCircuitError, match="same, non-zero number of values"):
        GPUSimulator(device="CPU").run(circuit, parameter_binds=[{a: [1, 2], b: [1]}])


def test_unbound_without_binds_names_the_way_out():
    from gpuprovider import GPUSimulator

    circuit = QuantumCircuit(1)
    circuit.rx(Parameter("theta"), 0)
    with pytest.raises(InvalidCircuitError, match="parameter_binds"):
        GPUSimulator(device="CPU").run(circuit)
