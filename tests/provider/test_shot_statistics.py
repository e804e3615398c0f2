"""Counts against exact distributions (chi-square), mid-circuit measurement and reset, seeds.

Every run uses a fixed ``seed_simulator``, so the statistical assertions are deterministic;
the threshold ``ALPHA`` is what a correct simulator passes with probability 1 - 1e-4 for a
new seed, and ``test_statistic_rejects_wrong_distributions`` shows that the same counts
reject plausible wrong answers (swapped qubit order, a wrong gate) by many orders of
magnitude.
"""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit, transpile
from qiskit.circuit.library import QFTGate
from qiskit.quantum_info import Statevector
from scipy import stats
from testkit import ALPHA, chi_square_pvalue

REJECT = 1e-10
SHOTS = 4000


def exact_probabilities(circuit: QuantumCircuit) -> dict[str, float]:
    """Outcome probabilities of measuring every qubit into the same-index clbit."""
    unitary_part = circuit.remove_final_measurements(inplace=False)
    return Statevector(unitary_part).probabilities_dict()


def reversed_keys(probabilities: dict[str, float]) -> dict[str, float]:
    return {key[::-1]: p for key, p in probabilities.items()}


def tvd(first: dict[str, float], second: dict[str, float]) -> float:
    keys = set(first) | set(second)
    return 0.5 * sum(abs(first.get(k, 0) - second.get(k, 0)) for k in keys)


def run_counts(backend, circuit, shots=SHOTS, seed=11, **options) -> dict[str, int]:
    counts = backend.run(circuit, shots=shots, seed_simulator=seed, **options).result()
    counts = counts.get_counts()
    assert sum(counts.values()) == shots
    return counts


def ghz(num_qubits: int) -> QuantumCircuit:
    circuit = QuantumCircuit(num_qubits)
    circuit.h(0)
    for q in range(1, num_qubits):
        circuit.cx(q - 1, q)
    circuit.measure_all()
    return circuit


def qft_of_basis_state(value: int, num_qubits: int = 4) -> QuantumCircuit:
    """|value>, QFT, then a layer of H: each qubit's outcome depends on its Fourier phase."""
    circuit = QuantumCircuit(num_qubits)
    for q in range(num_qubits):
        if (value >> q) & 1:
            circuit.x(q)
    circuit.append(QFTGate(num_qubits), range(num_qubits))
    circuit.h(range(num_qubits))
    circuit.measure_all()
    return circuit


def random_measured_circuit(num_qubits: int, seed: int) -> QuantumCircuit:
    rng = np.random.default_rng(seed)
    circuit = QuantumCircuit(num_qubits)
    for _ in range(6 * num_qubits):
        a, b = (int(q) for q in rng.permutation(num_qubits)[:2])
        kind = rng.integers(4)
        if kind == 0:
            circuit.u(*rng.uniform(-np.pi, np.pi, 3), a)
        elif kind == 1:
            circuit.cx(a, b)
        elif kind == 2:
            circuit.rzz(rng.uniform(-np.pi, np.pi), a, b)
        else:
            circuit.cry(rng.uniform(-np.pi, np.pi), a, b)
    circuit.measure_all()
    return circuit


def mid_circuit_example() -> QuantumCircuit:
    """A circuit that runs shot by shot (a measurement followed by a gate on its qubit)."""
    circuit = QuantumCircuit(3, 3)
    circuit.h([0, 1, 2])
    circuit.measure(0, 0)
    circuit.cx(0, 1)
    circuit.reset(2)
    circuit.h(2)
    circuit.measure([1, 2], [1, 2])
    return circuit


def test_ghz_counts(backend):
    counts = run_counts(backend, ghz(5))
    assert set(counts) == {"00000", "11111"}
    assert chi_square_pvalue(counts, {"00000": 0.5, "11111": 0.5}) > ALPHA


@pytest.mark.parametrize("value", [1, 6, 11])
def test_qft_of_basis_state_counts(backend, value):
    circuit = qft_of_basis_state(value)
    counts = run_counts(backend, transpile(circuit, backend, seed_transpiler=3))
    probabilities = exact_probabilities(circuit)
    assert chi_square_pvalue(counts, probabilities) > ALPHA


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_circuit_counts(backend, seed):
    circuit = random_measured_circuit(5, seed)
    counts = run_counts(backend, circuit, seed=seed)
    assert chi_square_pvalue(counts, exact_probabilities(circuit)) > ALPHA


def test_statistic_rejects_wrong_distributions(backend):
    """The counts that pass above fail against a swapped qubit order and a wrong gate."""
    circuit = qft_of_basis_state(6)
    counts = run_counts(backend, transpile(circuit, backend, seed_transpiler=3))
    right = exact_probabilities(circuit)
    neighbour = exact_probabilities(qft_of_basis_state(7))  # one X gate missing
    assert chi_square_pvalue(counts, right) > ALPHA
    for wrong in (reversed_keys(right), neighbour):
        assert tvd(wrong, right) > 0.1
        assert chi_square_pvalue(counts, wrong) < REJECT

    random_circuit = random_measured_circuit(5, 1)
    counts = run_counts(backend, random_circuit, seed=1)
    right = exact_probabilities(random_circuit)
    unitary_part = random_circuit.remove_final_measurements(inplace=False)
    wrong_gate = unitary_part.copy_empty_like()
    for index, instruction in enumerate(unitary_part.data):
        if index != 3:
            wrong_gate.append(instruction)
    for wrong in (reversed_keys(right), exact_probabilities(wrong_gate)):
        assert tvd(wrong, right) > 0.05
        assert chi_square_pvalue(counts, wrong) < REJECT


def test_statistic_rejects_impossible_outcome():
    assert chi_square_pvalue({"00": 10, "01": 1}, {"00": 1.0}) == 0.0


def test_gate_after_mid_circuit_measure(backend):
    """c0 is measured, then q0 is rotated and measured again into c2: c1 follows c0 (GHZ
    pair), c2 is independent of both."""
    circuit = QuantumCircuit(2, 3)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure(0, 0)
    circuit.h(0)
    circuit.measure(1, 1)
    circuit.measure(0, 2)
    counts = run_counts(backend, circuit)
    expected = {"000": 0.25, "011": 0.25, "100": 0.25, "111": 0.25}
    assert chi_square_pvalue(counts, expected) > ALPHA


def test_mid_circuit_measure_weights(backend):
    """P(q0 = 1) = sin^2(theta / 2); after the measurement CX copies the outcome to q1."""
    theta = 1.1
    p_one = np.sin(theta / 2) ** 2
    circuit = QuantumCircuit(2, 2)
    circuit.ry(theta, 0)
    circuit.measure(0, 0)
    circuit.cx(0, 1)
    circuit.h(0)
    circuit.h(0)
    circuit.measure(1, 1)
    counts = run_counts(backend, circuit)
    assert chi_square_pvalue(counts, {"00": 1 - p_one, "11": p_one}) > ALPHA
    assert chi_square_pvalue(counts, {"00": 0.5, "11": 0.5}) < REJECT


def test_reset_of_entangled_qubit(backend):
    """After the reset q1 = |0> and q0 is an equal mixture; CX then copies q0 onto q1."""
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.reset(1)
    circuit.cx(0, 1)
    circuit.measure_all()
    counts = run_counts(backend, circuit)
    assert chi_square_pvalue(counts, {"00": 0.5, "11": 0.5}) > ALPHA


def test_reset_of_superposition_is_zero(backend):
    circuit = QuantumCircuit(2)
    circuit.ry(2.0, 0)
    circuit.h(1)
    circuit.reset(0)
    circuit.measure_all()
    counts = run_counts(backend, circuit)
    assert chi_square_pvalue(counts, {"00": 0.5, "10": 0.5}) > ALPHA


def test_reset_then_rotation(backend):
    theta = 2.2
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.reset(0)
    circuit.ry(theta, 0)
    circuit.measure_all()
    p_one = np.sin(theta / 2) ** 2
    expected = {
        "00": 0.5 * (1 - p_one), "01": 0.5 * p_one, "10": 0.5 * (1 - p_one), "11": 0.5 * p_one,
    }
    counts = run_counts(backend, circuit)
    assert chi_square_pvalue(counts, expected) > ALPHA


def test_initialize_on_entangled_qubit(backend):
    """initialize resets q1 first: q1 is then |1> whatever q0 was measured as."""
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.initialize([0, 1], [1])
    circuit.measure_all()
    counts = run_counts(backend, circuit)
    assert chi_square_pvalue(counts, {"10": 0.5, "11": 0.5}) > ALPHA


def test_measure_same_qubit_twice(backend):
    circuit = QuantumCircuit(2, 2)
    circuit.ry(1.3, 0)
    circuit.measure(0, 0)
    circuit.h(1)
    circuit.measure(0, 1)
    p_one = np.sin(0.65) ** 2
    counts = run_counts(backend, circuit)
    assert chi_square_pvalue(counts, {"00": 1 - p_one, "11": p_one}) > ALPHA


def test_measure_twice_then_flip(backend):
    circuit = QuantumCircuit(1, 3)
    circuit.h(0)
    circuit.measure(0, 0)
    circuit.measure(0, 1)
    circuit.x(0)
    circuit.measure(0, 2)
    counts = run_counts(backend, circuit)
    assert chi_square_pvalue(counts, {"100": 0.5, "011": 0.5}) > ALPHA


def test_final_measure_then_mid_circuit_measure_of_other_qubit(backend):
    """q0 is measured once (final); q1 is measured, then flipped and measured again."""
    theta = 1.1
    p_one = np.sin(theta / 2) ** 2
    circuit = QuantumCircuit(2, 3)
    circuit.ry(theta, 0)
    circuit.cx(0, 1)
    circuit.measure(0, 0)
    circuit.measure(1, 1)
    circuit.x(1)
    circuit.measure(1, 2)
    counts = run_counts(backend, circuit)
    assert chi_square_pvalue(counts, {"100": 1 - p_one, "011": p_one}) > ALPHA


def test_clbit_overwritten_by_later_final_measurement(backend):
    circuit = QuantumCircuit(2, 1)
    circuit.h(0)
    circuit.x(1)
    circuit.measure(0, 0)
    circuit.measure(1, 0)
    assert run_counts(backend, circuit) == {"1": SHOTS}
    circuit = QuantumCircuit(2, 1)
    circuit.x(1)
    circuit.measure(1, 0)
    circuit.measure(0, 0)
    assert run_counts(backend, circuit) == {"0": SHOTS}


def test_clbit_overwritten_by_later_mid_circuit_measurement(backend):
    circuit = QuantumCircuit(2, 2)
    circuit.h(0)
    circuit.x(1)
    circuit.measure(0, 0)
    circuit.measure(1, 0)
    circuit.x(1)
    circuit.measure(1, 1)
    assert run_counts(backend, circuit) == {"01": SHOTS}


def test_mid_circuit_measurement_overwritten_by_final_one(backend):
    circuit = QuantumCircuit(2, 1)
    circuit.h(0)
    circuit.measure(0, 0)
    circuit.x(0)
    circuit.ry(1.0, 1)
    circuit.measure(1, 0)
    p_one = np.sin(0.5) ** 2
    counts = run_counts(backend, circuit)
    assert chi_square_pvalue(counts, {"0": 1 - p_one, "1": p_one}) > ALPHA


@pytest.mark.parametrize("per_shot", [False, True], ids=["sampled", "per_shot"])
def test_memory_is_in_random_shot_order(backend, per_shot):
    """Shots are iid: for a fair coin the number of changes between consecutive shots is
    Binomial(shots - 1, 1/2), not the 1 of a memory left in sorted order."""
    circuit = QuantumCircuit(1, 2)
    circuit.h(0)
    circuit.measure(0, 0)
    if per_shot:
        circuit.x(0)
    circuit.measure(0, 1)
    shots = 400
    memory = backend.run(circuit, shots=shots, seed_simulator=8, memory=True).result()
    outcomes = [shot[-1] for shot in memory.get_memory()]
    changes = sum(a != b for a, b in zip(outcomes, outcomes[1:]))
    assert stats.binomtest(changes, shots - 1, 0.5).pvalue > ALPHA


def test_same_seed_same_counts_and_memory(backend):
    for circuit in (random_measured_circuit(4, 5), mid_circuit_example()):
        first = backend.run(circuit, shots=300, seed_simulator=42, memory=True).result()
        second = backend.run(circuit, shots=300, seed_simulator=42, memory=True).result()
        assert first.get_counts() == second.get_counts()
        assert first.get_memory() == second.get_memory()


def test_different_seeds_different_memory(backend):
    for circuit in (random_measured_circuit(4, 5), mid_circuit_example()):
        first = backend.run(circuit, shots=300, seed_simulator=1, memory=True).result()
        second = backend.run(circuit, shots=300, seed_simulator=2, memory=True).result()
        assert first.get_memory() != second.get_memory()


def test_unseeded_run_reports_a_reproducible_seed(backend):
    for circuit in (random_measured_circuit(4, 5), mid_circuit_example()):
        first = backend.run(circuit, shots=300, memory=True).result()
        seed = first.results[0].seed_simulator
        assert isinstance(seed, int) and seed >= 0
        again = backend.run(circuit, shots=300, seed_simulator=seed, memory=True).result()
        assert again.results[0].seed_simulator == seed
        assert again.get_counts() == first.get_counts()
        assert again.get_memory() == first.get_memory()
        other = backend.run(circuit, shots=300, memory=True).result()
        assert other.results[0].seed_simulator != seed
