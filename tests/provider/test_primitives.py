"""Qiskit's backend primitives on our backend agree with the statevector primitives."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit.circuit import Parameter
from qiskit.primitives import (
    BackendEstimatorV2,
    BackendSamplerV2,
    StatevectorEstimator,
    StatevectorSampler,
)
from qiskit.quantum_info import SparsePauliOp, Statevector
from scipy import stats

ALPHA = 1e-4
SHOTS = 3000
PARAMETER_SETS = np.array([[0.3, 1.2, -0.4], [2.1, -0.7, 1.9]])


def ansatz(measure: bool) -> QuantumCircuit:
    a, b, c = Parameter("a"), Parameter("b"), Parameter("c")
    circuit = QuantumCircuit(3)
    circuit.ry(a, 0)
    circuit.cx(0, 1)
    circuit.rx(b, 2)
    circuit.crz(c, 1, 2)
    circuit.h(1)
    circuit.cry(b, 2, 0)
    if measure:
        circuit.measure_all()
    return circuit


def exact_probabilities(circuit: QuantumCircuit, values) -> np.ndarray:
    bound = circuit.remove_final_measurements(inplace=False).assign_parameters(values)
    return Statevector(bound).probabilities()


def counts_vector(counts: dict[str, int], num_bits: int) -> np.ndarray:
    vector = np.zeros(1 << num_bits)
    for key, count in counts.items():
        vector[int(key, 2)] = count
    return vector


def chi_square_pvalue(observed: np.ndarray, probabilities: np.ndarray) -> float:
    if np.any(observed[probabilities < 1e-12]):
        return 0.0
    keep = probabilities * observed.sum() >= 5
    observed_kept = np.append(observed[keep], observed[~keep].sum())
    expected = np.append(probabilities[keep], probabilities[~keep].sum()) * observed.sum()
    if expected[-1] == 0:
        observed_kept, expected = observed_kept[:-1], expected[:-1]
    expected *= observed_kept.sum() / expected.sum()
    return float(stats.chisquare(observed_kept, expected).pvalue)


def test_sampler_matches_exact_and_statevector_sampler(backend):
    circuit = ansatz(measure=True)
    sampler = BackendSamplerV2(backend=backend, options={"seed_simulator": 17})
    result = sampler.run([(circuit, PARAMETER_SETS)], shots=SHOTS).result()
    bits = result[0].data.meas
    assert bits.shape == (2,)
    assert bits.num_shots == SHOTS
    assert bits.num_bits == 3
    reference = StatevectorSampler(seed=18).run([(circuit, PARAMETER_SETS)], shots=SHOTS)
    reference_bits = reference.result()[0].data.meas
    for index, values in enumerate(PARAMETER_SETS):
        ours = counts_vector(bits.get_counts(index), 3)
        theirs = counts_vector(reference_bits.get_counts(index), 3)
        assert chi_square_pvalue(ours, exact_probabilities(circuit, values)) > ALPHA
        seen = (ours + theirs) > 0
        table = np.vstack([ours[seen], theirs[seen]])
        assert stats.chi2_contingency(table).pvalue > ALPHA
        other = exact_probabilities(circuit, PARAMETER_SETS[1 - index])
        assert chi_square_pvalue(ours, other) < 1e-10


def test_sampler_with_several_registers(backend):
    circuit = QuantumCircuit(QuantumRegister(3), ClassicalRegister(2, "alpha"),
                             ClassicalRegister(1, "beta"))
    circuit.x(0)
    circuit.h(2)
    circuit.cx(2, 1)
    circuit.measure([0, 1], [0, 1])
    circuit.measure(2, 2)
    result = BackendSamplerV2(backend=backend, options={"seed_simulator": 3}).run(
        [circuit], shots=400
    ).result()[0]
    reference = StatevectorSampler(seed=4).run([circuit], shots=400).result()[0]
    assert sorted(result.data.keys()) == sorted(reference.data.keys()) == ["alpha", "beta"]
    alpha = result.data.alpha.get_counts()
    beta = result.data.beta.get_counts()
    assert set(alpha) == set(reference.data.alpha.get_counts()) == {"01", "11"}
    assert set(beta) == {"0", "1"}
    joined = result.join_data().get_counts()
    assert set(joined) == {"001", "111"}


def test_sampler_memory_is_per_shot(backend):
    circuit = ansatz(measure=True)
    sampler = BackendSamplerV2(backend=backend, options={"seed_simulator": 5})
    first = sampler.run([(circuit, PARAMETER_SETS[0])], shots=200).result()[0].data.meas
    second = sampler.run([(circuit, PARAMETER_SETS[0])], shots=200).result()[0].data.meas
    assert first.get_bitstrings() == second.get_bitstrings()
    assert len(first.get_bitstrings()) == 200


def observables() -> SparsePauliOp:
    return SparsePauliOp(["ZZI", "XIX", "IYZ", "ZII", "IIX"], [1.0, 0.5, -0.7, 0.3, 0.8])


def test_estimator_matches_statevector_estimator(backend):
    circuit = ansatz(measure=False)
    observable = observables()
    estimator = BackendEstimatorV2(backend=backend, options={"seed_simulator": 23})
    result = estimator.run([(circuit, observable, PARAMETER_SETS)]).result()[0]
    exact = StatevectorEstimator().run([(circuit, observable, PARAMETER_SETS)]).result()[0]
    shots = result.metadata["shots"]
    assert result.metadata["target_precision"] == pytest.approx(0.015625)
    bound = 5 * np.sum(np.abs(observable.coeffs)) / np.sqrt(shots)
    assert result.data.evs.shape == (2,)
    np.testing.assert_array_less(np.abs(result.data.evs - exact.data.evs), bound)
    reversed_observable = SparsePauliOp(
        [label[::-1] for label in observable.paulis.to_labels()], observable.coeffs
    )
    wrong = StatevectorEstimator().run([(circuit, reversed_observable, PARAMETER_SETS)])
    assert np.max(np.abs(wrong.result()[0].data.evs - exact.data.evs)) > 2 * bound


@pytest.mark.parametrize("label", ["ZYX", "XXI", "IYY"])
def test_estimator_single_paulis(backend, label):
    circuit = ansatz(measure=False)
    observable = SparsePauliOp(label)
    estimator = BackendEstimatorV2(backend=backend, options={"seed_simulator": 29})
    result = estimator.run([(circuit, observable, PARAMETER_SETS)], precision=0.01).result()[0]
    exact = StatevectorEstimator().run([(circuit, observable, PARAMETER_SETS)]).result()[0]
    np.testing.assert_array_less(np.abs(result.data.evs - exact.data.evs), 5 * 0.01)
    np.testing.assert_array_less(result.data.stds, 0.0101)
