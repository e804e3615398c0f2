"""The Result follows Qiskit's conventions (those of BasicSimulator)."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit.circuit import Clbit
from qiskit.exceptions import QiskitError
from qiskit.providers.basic_provider import BasicSimulator

HEX = re.compile(r"^0x[0-9a-f]+$")


def two_register_circuit() -> QuantumCircuit:
    """Deterministic: q0 = q2 = 1, q1 = 0; register a <- (q0, q1), b <- (q2, -, q0)."""
    circuit = QuantumCircuit(
        QuantumRegister(3, "q"), ClassicalRegister(2, "a"), ClassicalRegister(3, "b")
    )
    circuit.x(0)
    circuit.x(2)
    circuit.measure([0, 1], [0, 1])
    circuit.measure([2, 0], [2, 4])
    return circuit


def three_register_circuit() -> QuantumCircuit:
    circuit = QuantumCircuit(
        QuantumRegister(4, "q"),
        ClassicalRegister(1, "flag"),
        ClassicalRegister(3, "data"),
        ClassicalRegister(2, "spare"),
    )
    circuit.x([1, 3])
    circuit.measure([0, 1, 2, 3], [0, 2, 3, 4])
    return circuit


def loose_clbit_circuit() -> QuantumCircuit:
    circuit = QuantumCircuit(QuantumRegister(2, "q"), [Clbit()], ClassicalRegister(2, "c"))
    circuit.x(0)
    circuit.measure([0, 1, 0], [0, 1, 2])
    return circuit


def single_register_circuit() -> QuantumCircuit:
    circuit = QuantumCircuit(4, 4)
    circuit.x([0, 3])
    circuit.measure(range(4), range(4))
    return circuit


LAYOUTS = {
    "one": single_register_circuit,
    "two": two_register_circuit,
    "three": three_register_circuit,
    "loose": loose_clbit_circuit,
}


def test_counts_are_hex_integers_of_the_clbits(backend):
    result = backend.run(single_register_circuit(), shots=50, seed_simulator=1).result()
    assert result.results[0].data.counts == {"0x9": 50}
    assert result.get_counts() == {"1001": 50}


def test_hex_keys_for_random_outcomes(backend):
    circuit = QuantumCircuit(3, 3)
    circuit.h(range(3))
    circuit.measure(range(3), range(3))
    result = backend.run(circuit, shots=200, seed_simulator=3).result()
    counts = result.results[0].data.counts
    assert all(HEX.match(key) for key in counts)
    assert {int(key, 16) for key in counts} <= set(range(8))
    assert sum(counts.values()) == 200
    assert result.get_counts() == {format(int(k, 16), "03b"): v for k, v in counts.items()}


def test_header_has_register_layout(backend):
    result = backend.run(two_register_circuit(), shots=10, seed_simulator=1).result()
    header = result.results[0].header
    assert header["creg_sizes"] == [["a", 2], ["b", 3]]
    assert header["memory_slots"] == 5
    assert header["n_qubits"] == 3
    assert result.results[0].data.counts == {"0x15": 10}
    assert result.get_counts() == {"101 01": 10}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_counts_and_memory_format_match_basic_simulator(backend, layout):
    circuit = LAYOUTS[layout]()
    ours = backend.run(circuit, shots=20, seed_simulator=1, memory=True).result()
    reference = BasicSimulator().run(circuit, shots=20, seed_simulator=1, memory=True).result()
    assert ours.get_counts() == reference.get_counts()
    assert ours.get_memory() == reference.get_memory()
    assert ours.results[0].data.counts == reference.results[0].data.counts
    assert ours.results[0].header["creg_sizes"] == reference.results[0].header["creg_sizes"]
    assert ours.results[0].header["memory_slots"] == reference.results[0].header["memory_slots"]


def test_get_counts_by_circuit_and_by_index(backend):
    first = single_register_circuit()
    second = two_register_circuit()
    third = QuantumCircuit(2, 2, name="third")
    third.x(1)
    third.measure([0, 1], [0, 1])
    job = backend.run([first, second, third], shots=30, seed_simulator=2)
    result = job.result()
    assert len(result.results) == 3
    assert [r.header["name"] for r in result.results] == [first.name, second.name, "third"]
    assert result.get_counts(0) == result.get_counts(first) == {"1001": 30}
    assert result.get_counts(1) == result.get_counts(second) == {"101 01": 30}
    assert result.get_counts(2) == result.get_counts("third") == {"10": 30}
    assert result.get_counts() == [{"1001": 30}, {"101 01": 30}, {"10": 30}]
    assert result.success
    assert result.job_id == job.job_id()
    assert result.backend_name == backend.name
    assert all(r.shots == 30 and r.success for r in result.results)


def test_memory_with_memory_true(backend):
    circuit = QuantumCircuit(3, 3)
    circuit.h(range(3))
    circuit.measure(range(3), range(3))
    result = backend.run(circuit, shots=123, seed_simulator=4, memory=True).result()
    memory = result.get_memory()
    assert len(memory) == 123
    assert all(re.fullmatch("[01]{3}", shot) for shot in memory)
    assert Counter(memory) == result.get_counts()
    raw = result.results[0].data.memory
    assert len(raw) == 123 and all(HEX.match(shot) for shot in raw)
    assert Counter(raw) == result.results[0].data.counts


def test_memory_set_as_backend_option(backend):
    backend.set_options(memory=True)
    result = backend.run(single_register_circuit(), shots=5, seed_simulator=1).result()
    assert result.get_memory() == ["1001"] * 5


def test_no_memory_without_memory_true(backend):
    result = backend.run(single_register_circuit(), shots=10, seed_simulator=1).result()
    assert "memory" not in result.results[0].data.to_dict()
    with pytest.raises(QiskitError):
        result.get_memory()


def test_circuit_without_clbits(backend):
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    ours = backend.run(circuit, shots=10, seed_simulator=1).result()
    reference = BasicSimulator().run(circuit, shots=10, seed_simulator=1).result()
    assert ours.results[0].data.counts == reference.results[0].data.counts == {}
    assert ours.get_counts() == reference.get_counts()
    assert ours.results[0].header["memory_slots"] == 0


def test_unmeasured_clbits_read_zero(backend):
    circuit = QuantumCircuit(2, 4)
    circuit.x([0, 1])
    circuit.measure(1, 2)
    result = backend.run(circuit, shots=10, seed_simulator=1).result()
    assert result.get_counts() == {"0100": 10}
    circuit = QuantumCircuit(2, 3)
    circuit.x(0)
    result = backend.run(circuit, shots=10, seed_simulator=1).result()
    assert result.get_counts() == {"000": 10}


def test_metadata(backend, device, precision):
    result = backend.run(single_register_circuit(), shots=10, seed_simulator=1).result()
    for metadata in (result.metadata, result.results[0].metadata):
        assert metadata["device"] == device
        assert metadata["precision"] == precision
        assert isinstance(metadata["simulation_time"], float)
        assert metadata["simulation_time"] >= 0
    assert result.results[0].seed_simulator == 1


def test_more_than_64_clbits(backend):
    circuit = QuantumCircuit(4, 70)
    circuit.x([1, 3])
    circuit.measure(1, 69)
    circuit.measure(3, 64)
    circuit.measure(1, 33)
    circuit.measure(0, 63)
    circuit.measure(3, 0)
    result = backend.run(circuit, shots=8, seed_simulator=1, memory=True).result()
    value = (1 << 69) | (1 << 64) | (1 << 33) | 1
    assert result.results[0].data.counts == {hex(value): 8}
    bits = format(value, "070b")
    assert result.get_counts() == {bits: 8}
    assert result.get_memory() == [bits] * 8
    assert result.get_counts() == BasicSimulator().run(circuit, shots=8).result().get_counts()


def test_more_than_64_clbits_random_outcomes(backend):
    circuit = QuantumCircuit(2, 130)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure(0, 2)
    circuit.measure(1, 129)
    circuit.measure(0, 64)
    result = backend.run(circuit, shots=100, seed_simulator=7, memory=True).result()
    one = (1 << 129) | (1 << 64) | (1 << 2)
    assert set(result.results[0].data.counts) == {"0x0", hex(one)}
    assert Counter(result.get_memory()) == result.get_counts()
    assert set(result.get_counts()) == {"0" * 130, format(one, "0130b")}


def test_editing_the_circuit_after_run_does_not_change_the_result(backend):
    circuit = QuantumCircuit(2, 2, name="before")
    circuit.x(0)
    circuit.measure([0, 1], [0, 1])
    job = backend.run(circuit, shots=10, seed_simulator=1)
    circuit.name = "after"
    circuit.add_register(ClassicalRegister(3, "late"))
    result = job.result()
    assert result.results[0].header["name"] == "before"
    assert result.results[0].header["memory_slots"] == 2
    assert result.get_counts(0) == {"01": 10}
