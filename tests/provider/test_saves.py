"""Aer-named save instructions: probabilities, expectation values, their variance."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp, Statevector
from testkit import random_circuit

from gpuprovider.exceptions import InvalidCircuitError
from gpuprovider.instructions import (
    SaveExpectationValue,
    SaveExpectationValueVariance,
    SaveProbabilities,
    SaveProbabilitiesDict,
)

OPERATOR = SparsePauliOp.from_list([("XZY", 0.7), ("ZZI", -1.2), ("IYX", 0.4), ("III", 0.3)])


def prepared(num_qubits: int = 4, seed: int = 3) -> QuantumCircuit:
    circuit = random_circuit(num_qubits, 30, seed)
    circuit.h(range(num_qubits))
    circuit.s(1)
    return circuit


def test_probabilities_and_expectation_values(backend, tolerance):
    circuit = prepared()
    state = Statevector(circuit)
    qubits = [2, 0, 3]
    circuit.append(SaveProbabilities(3, label="p"), qubits)
    circuit.append(SaveProbabilitiesDict(2, label="pd"), [3, 1])
    circuit.append(SaveExpectationValue(OPERATOR, label="e"), qubits)
    circuit.append(SaveExpectationValueVariance(OPERATOR, label="ev"), qubits)
    data = backend.run(circuit, shots=1).result().data(0)
    np.testing.assert_allclose(data["p"], state.probabilities(qubits), atol=tolerance * 10)
    expected_dict = {int(k, 2): p for k, p in state.probabilities_dict([3, 1]).items()}
    assert data["pd"].keys() == expected_dict.keys()
    for key, p in expected_dict.items():
        assert data["pd"][key] == pytest.approx(p, abs=tolerance * 10)
    mean = state.expectation_value(OPERATOR, qubits).real
    square = state.expectation_value((OPERATOR @ OPERATOR).simplify(), qubits).real
    assert data["e"] == pytest.approx(mean, abs=tolerance * 10)
    assert data["ev"][0] == pytest.approx(mean, abs=tolerance * 10)
    assert data["ev"][1] == pytest.approx(square - mean**2, abs=tolerance * 100)


def test_saves_average_over_the_branches_of_shots(backend):
    """After measuring qubit 0 of a Bell pair, each branch has <Z1> = +-1; the average over
    4000 shots is the fraction difference, and the probabilities average to (1/2, 1/2)."""
    circuit = QuantumCircuit(2, 1)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure(0, 0)
    circuit.save_expectation_value(SparsePauliOp("ZI"), [0, 1], label="z1")
    circuit.save_probabilities([1], label="p1")
    result = backend.run(circuit, shots=4000, seed_simulator=8).result()
    counts = result.get_counts()
    fraction_one = counts.get("1", 0) / 4000
    data = result.data(0)
    assert data["z1"] == pytest.approx(1 - 2 * fraction_one, abs=1e-5)
    np.testing.assert_allclose(data["p1"], [1 - fraction_one, fraction_one], atol=1e-5)


def test_aer_save_instructions_run_unchanged(backend, tolerance):
    pytest.importorskip("qiskit_aer")
    from qiskit_aer import AerSimulator

    circuit = prepared(3, seed=5)
    circuit.save_expectation_value(OPERATOR, [0, 1, 2], label="e")
    circuit.save_expectation_value_variance(OPERATOR, [2, 1, 0], label="ev")
    circuit.save_probabilities([1, 2], label="p")
    circuit.save_probabilities_dict([0], label="pd")
    circuit.save_statevector(label="sv")
    ours = backend.run(circuit, shots=1).result().data(0)
    aer = AerSimulator(method="statevector").run(circuit, shots=1).result().data(0)
    assert ours["e"] == pytest.approx(aer["e"], abs=tolerance * 10)
    np.testing.assert_allclose(ours["ev"], aer["ev"], atol=tolerance * 100)
    np.testing.assert_allclose(ours["p"], aer["p"], atol=tolerance * 10)
    assert ours["pd"].keys() == aer["pd"].keys()
    np.testing.assert_allclose(ours["sv"].data, aer["sv"].data, atol=tolerance * 10)


@pytest.mark.parametrize("method", ["statevector", "density_matrix", "automatic"])
def test_every_save_has_aers_key_type_and_value_under_every_method(device, precision, method,
                                                                     tolerance):
    """``save_state`` follows the method (a DensityMatrix under "density_matrix", keyed
    ``density_matrix`` by default, as Aer's; it had come back as a Statevector under
    ``statevector``); every other save is its own kind whatever the method."""
    pytest.importorskip("qiskit_aer")
    from qiskit_aer import AerSimulator

    from gpuprovider import GPUSimulator

    circuit = prepared(3, seed=6)
    circuit.save_state()
    circuit.save_state(label="state")
    if method != "density_matrix":  # Aer refuses it there (ours saves it all the same)
        circuit.save_statevector(label="sv")
    circuit.save_density_matrix([2, 0], label="rho")
    circuit.save_probabilities([1], label="p")
    circuit.save_expectation_value(OPERATOR, [0, 1, 2], label="e")
    circuit.measure_all()
    ours = GPUSimulator(device=device, precision=precision, method=method).run(
        circuit, shots=10, seed_simulator=1).result().data(0)
    aer = AerSimulator(method=method, precision=precision).run(
        circuit, shots=10, seed_simulator=1).result().data(0)
    assert sorted(ours) == sorted(aer)
    for key, expected in aer.items():
        got = ours[key]
        assert isinstance(expected, type(got)), (key, type(got), type(expected))  # Aer's
        # are subclasses of qiskit's (qiskit_aer.backends.compatibility)
        if key != "counts":
            np.testing.assert_allclose(np.asarray(got), np.asarray(expected),
                                       atol=tolerance * 10, err_msg=key)


def test_a_wide_save_state_under_the_density_matrix_method_is_refused():
    from gpuprovider import GPUSimulator

    circuit = QuantumCircuit(13)
    circuit.h(0)
    circuit.save_state()
    with pytest.raises(InvalidCircuitError, match="density matrix of 13 qubits; at most 12"):
        GPUSimulator(device="CPU", method="density_matrix").run(circuit)


def test_save_inside_a_loop_is_rejected():
    from gpuprovider import GPUSimulator

    circuit = QuantumCircuit(1, 1)
    with circuit.for_loop(range(2)):
        circuit.append(SaveProbabilities(1, label="p"), [0])
    with pytest.raises(InvalidCircuitError, match="inside a loop"):
        GPUSimulator(device="CPU").run(circuit)


def test_non_hermitian_operator_is_rejected():
    with pytest.raises(ValueError, match="Hermitian"):
        SaveExpectationValue(SparsePauliOp.from_list([("X", 1j)]))
