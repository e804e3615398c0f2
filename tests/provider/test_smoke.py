from qiskit import QuantumCircuit


def test_bell_counts_are_only_00_and_11(backend):
    circuit = QuantumCircuit(2, 2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure([0, 1], [0, 1])
    counts = backend.run(circuit, shots=400, seed_simulator=5).result().get_counts()
    assert set(counts) <= {"00", "11"}
    assert sum(counts.values()) == 400
    assert min(counts.values()) > 120
