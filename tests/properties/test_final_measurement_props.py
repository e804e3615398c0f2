"""Final measurements written into clbits: drawn maps of qubits to clbits (a clbit written
twice, clbits past 64, unmeasured clbits, one qubit read into several clbits), with and without
memory, on basis states (one outcome) and on a GHZ-like pair (two), against the clbits
worked out by hand in program order: a later write to a clbit wins, as in qiskit-aer."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st
from properties.harness import examples
from qiskit import QuantumCircuit

from gpuprovider import GPUSimulator


@st.composite
def measured(draw):
    num_qubits = draw(st.integers(1, 5))
    num_clbits = draw(st.sampled_from([1, 3, 7, 64, 65, 130]))
    ones = draw(st.lists(st.booleans(), min_size=num_qubits, max_size=num_qubits))
    spread = draw(st.booleans()) and num_qubits > 1  # q0 in superposition, copied onto q1
    writes = draw(st.lists(st.tuples(st.integers(0, num_qubits - 1),
                                     st.integers(0, num_clbits - 1)), min_size=1, max_size=8))
    return num_qubits, num_clbits, ones, spread, writes


def _clbits(values: list[int], writes: list[tuple[int, int]]) -> int:
    bits = 0
    for qubit, clbit in writes:
        bits = (bits & ~(1 << clbit)) | (values[qubit] << clbit)
    return bits


@given(measured(), st.booleans())
@examples()
def test_final_measurements_set_the_clbits_in_program_order(device, case, memory):
    num_qubits, num_clbits, ones, spread, writes = case
    circuit = QuantumCircuit(num_qubits, num_clbits)
    for qubit, one in enumerate(ones):
        if one:
            circuit.x(qubit)
    if spread:
        circuit.h(0)
        circuit.cx(0, 1)
    for qubit, clbit in writes:
        circuit.measure(qubit, clbit)
    base = [int(one) for one in ones]
    outcomes = [base]
    if spread:  # q0 = a ^ h, q1 = b ^ q0 for a random h
        outcomes = [[a, ones[1] ^ a, *base[2:]] for a in (0, 1)]
    expected = {format(_clbits(values, writes), f"0{num_clbits}b") for values in outcomes}
    result = GPUSimulator(device=device).run(circuit, shots=64, seed_simulator=5,
                                             memory=memory).result()
    counts = result.get_counts()
    assert set(counts) <= expected and sum(counts.values()) == 64
    if len(expected) == 2:  # each outcome has probability 1/2: both appear in 64 shots
        assert len(counts) == 2
    if memory:
        assert Counter(result.get_memory()) == counts
