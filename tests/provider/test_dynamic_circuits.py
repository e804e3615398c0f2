"""Dynamic circuits: feed-forward, loops, switch, expressions, stores, against exact branch
probabilities (chi-square goodness of fit) and qiskit-aer (chi-square homogeneity).

Every run has a fixed seed, so the tests are deterministic; ``test_tests_reject_a_wrong_answer``
shows that the same statistics reject a simulator that takes a wrong branch.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister, transpile
from qiskit.circuit.classical import expr
from qiskit.circuit.library import GlobalPhaseGate
from testkit import ALPHA, chi_square_pvalue, homogeneity_pvalue

SHOTS = 4000
REJECT = 1e-10


def run_counts(backend, circuit, shots=SHOTS, seed=5):
    counts = backend.run(circuit, shots=shots, seed_simulator=seed).result().get_counts()
    assert sum(counts.values()) == shots
    return counts


def aer_counts(circuit, shots=SHOTS, seed=17):
    aer = pytest.importorskip("qiskit_aer")
    return aer.AerSimulator().run(circuit, shots=shots, seed_simulator=seed).result().get_counts()


def ry_for(p_one: float) -> float:
    """The RY angle after which |0> reads 1 with probability ``p_one``."""
    return 2 * math.asin(math.sqrt(p_one))


def teleportation(theta: float, phi: float) -> QuantumCircuit:
    """Teleport RZ(phi) RY(theta)|0> from qubit 0 to 2, undo the preparation there and
    measure it: clbit 2 always reads 0, the two Bell-measurement bits are uniform."""
    qubits = QuantumRegister(3, "q")
    bell, out = ClassicalRegister(2, "bell"), ClassicalRegister(1, "out")
    circuit = QuantumCircuit(qubits, bell, out)
    circuit.ry(theta, 0)
    circuit.rz(phi, 0)
    circuit.h(1)
    circuit.cx(1, 2)
    circuit.cx(0, 1)
    circuit.h(0)
    circuit.measure(0, bell[0])
    circuit.measure(1, bell[1])
    with circuit.if_test((bell[1], 1)):
        circuit.x(2)
    with circuit.if_test((bell[0], 1)):
        circuit.z(2)
    circuit.rz(-phi, 2)
    circuit.ry(-theta, 2)
    circuit.measure(2, out[0])
    return circuit


def repeat_until_success() -> QuantumCircuit:
    """H and measure until it reads 1; qubit 1 flips on every retry, so it reads 1 with
    probability P(odd retries) = sum_k odd 2^-(k+1) = 1/3."""
    circuit = QuantumCircuit(2, 2)
    circuit.h(0)
    circuit.measure(0, 0)
    with circuit.while_loop((circuit.clbits[0], 0)):
        circuit.x(1)
        circuit.h(0)
        circuit.measure(0, 0)
    circuit.measure(1, 1)
    return circuit


SWITCH_P = (0.3, 0.6)
SWITCH_DEFAULT_P = 0.8


def switch_on_register() -> QuantumCircuit:
    """Two biased qubits read into a register; the case decides how a third is rotated."""
    qubits = QuantumRegister(3, "q")
    selector, out = ClassicalRegister(2, "sel"), ClassicalRegister(1, "out")
    circuit = QuantumCircuit(qubits, selector, out)
    circuit.ry(ry_for(SWITCH_P[0]), 0)
    circuit.ry(ry_for(SWITCH_P[1]), 1)
    circuit.measure([0, 1], selector)
    with circuit.switch(selector) as case:
        with case(0):
            circuit.x(2)
        with case(1):
            circuit.h(2)
        with case(2):
            circuit.id(2)
        with case(case.DEFAULT):
            circuit.ry(ry_for(SWITCH_DEFAULT_P), 2)
    circuit.measure(2, out[0])
    return circuit


def switch_probabilities() -> dict[str, float]:
    p0, p1 = SWITCH_P
    selector = {0: (1 - p0) * (1 - p1), 1: p0 * (1 - p1), 2: (1 - p0) * p1, 3: p0 * p1}
    p_out = {0: 1.0, 1: 0.5, 2: 0.0, 3: SWITCH_DEFAULT_P}
    expected: dict[str, float] = {}
    for value, p_value in selector.items():
        for bit, p_bit in ((1, p_out[value]), (0, 1 - p_out[value])):
            key = f"{bit} {value:02b}"
            expected[key] = expected.get(key, 0.0) + p_value * p_bit
    return expected


EXPRESSION_P = (0.5, 0.7, 0.2)


def expression_condition() -> QuantumCircuit:
    """Flip qubit 3 when (c0 and not c1) or register == 0b11 (c1, c2 both read 1)."""
    qubits = QuantumRegister(4, "q")
    bits, pair = ClassicalRegister(1, "a"), ClassicalRegister(2, "b")
    out = ClassicalRegister(1, "o")
    circuit = QuantumCircuit(qubits, bits, pair, out)
    for qubit, p in enumerate(EXPRESSION_P):
        circuit.ry(ry_for(p), qubit)
    circuit.measure(0, bits[0])
    circuit.measure([1, 2], pair)
    condition = expr.logic_or(
        expr.logic_and(bits[0], expr.logic_not(pair[0])), expr.equal(pair, 3)
    )
    with circuit.if_test(condition):
        circuit.x(3)
    circuit.measure(3, out[0])
    return circuit


def expression_probabilities() -> dict[str, float]:
    expected = {}
    for a in (0, 1):
        for b0 in (0, 1):
            for b1 in (0, 1):
                p = 1.0
                for bit, p_one in zip((a, b0, b1), EXPRESSION_P):
                    p *= p_one if bit else 1 - p_one
                flip = int((a and not b0) or (b0 and b1))
                expected[f"{flip} {b1}{b0} {a}"] = p
    return expected


def nested_control_flow() -> QuantumCircuit:
    """A for loop with its parameter inside an if, a while inside the else, a break."""
    circuit = QuantumCircuit(3, 3)
    circuit.h(0)
    circuit.measure(0, 0)
    with circuit.if_test((circuit.clbits[0], 1)) as else_:
        with circuit.for_loop(range(3)) as step:
            circuit.rx(0.4 * step + 0.1, 1)
            circuit.measure(1, 1)
            with circuit.if_test((circuit.clbits[1], 1)):
                circuit.break_loop()
    with else_:
        circuit.ry(1.1, 2)
        circuit.measure(2, 2)
        with circuit.while_loop((circuit.clbits[2], 1)):
            circuit.reset(2)
            circuit.ry(1.1, 2)
            circuit.measure(2, 2)
    circuit.measure(1, 1)
    return circuit


@pytest.mark.parametrize("theta, phi", [(0.0, 0.0), (1.2, 0.4), (2.5, -2.0)])
def test_teleportation(backend, theta, phi):
    counts = run_counts(backend, teleportation(theta, phi))
    uniform = {f"0 {m:02b}": 0.25 for m in range(4)}
    assert chi_square_pvalue(counts, uniform) > ALPHA


def test_repeat_until_success_while_loop(backend):
    counts = run_counts(backend, repeat_until_success())
    assert chi_square_pvalue(counts, {"11": 1 / 3, "01": 2 / 3}) > ALPHA


def test_loop_counter_in_a_register(backend):
    """A Store adds 1 to a 3-bit register per retry (wrapping at 8): P(count = c) =
    2^-(c+1) / (1 - 2^-8). qiskit-aer cannot run this (it has no ADD)."""
    flag, count = ClassicalRegister(1, "flag"), ClassicalRegister(3, "count")
    circuit = QuantumCircuit(QuantumRegister(1, "q"), flag, count)
    circuit.h(0)
    circuit.measure(0, flag[0])
    with circuit.while_loop((flag, 0)):
        circuit.store(count, expr.add(count, 1))
        circuit.h(0)
        circuit.measure(0, flag[0])
    counts = run_counts(backend, circuit, shots=20000)
    expected = {f"{c:03b} 1": 2.0 ** -(c + 1) / (1 - 2.0**-8) for c in range(8)}
    assert chi_square_pvalue(counts, expected) > ALPHA


def test_classical_variables(backend):
    """A bool variable set from a measurement, negated, and used as a condition."""
    circuit = QuantumCircuit(2, 2)
    seen = circuit.add_var("seen", False)
    circuit.ry(ry_for(0.25), 0)
    circuit.measure(0, 0)
    circuit.store(seen, expr.logic_not(circuit.clbits[0]))
    with circuit.if_test(seen):
        circuit.x(1)
    circuit.measure(1, 1)
    counts = run_counts(backend, circuit)
    assert chi_square_pvalue(counts, {"10": 0.75, "01": 0.25}) > ALPHA


def test_switch_on_a_register(backend):
    counts = run_counts(backend, switch_on_register())
    assert chi_square_pvalue(counts, switch_probabilities()) > ALPHA


def test_expression_condition(backend):
    counts = run_counts(backend, expression_condition())
    assert chi_square_pvalue(counts, expression_probabilities()) > ALPHA


@pytest.mark.parametrize(
    "make", [teleportation.__name__, repeat_until_success.__name__, switch_on_register.__name__,
             expression_condition.__name__, nested_control_flow.__name__],
)
def test_matches_qiskit_aer(backend, make):
    circuit = {
        "teleportation": lambda: teleportation(1.2, 0.4),
        "repeat_until_success": repeat_until_success,
        "switch_on_register": switch_on_register,
        "expression_condition": expression_condition,
        "nested_control_flow": nested_control_flow,
    }[make]()
    assert homogeneity_pvalue(run_counts(backend, circuit), aer_counts(circuit)) > ALPHA


def test_tests_reject_a_wrong_answer(backend):
    """The statistics above see a wrong branch: the switch circuit's counts against the
    distribution with cases 1 and 2 exchanged, and teleportation without its X correction."""
    counts = run_counts(backend, switch_on_register())
    wrong = {key.replace(" 01", " xx").replace(" 10", " 01").replace(" xx", " 10"): p
             for key, p in switch_probabilities().items()}
    assert chi_square_pvalue(counts, wrong) < REJECT
    broken = teleportation(1.2, 0.4)
    broken.data = [i for i in broken.data if i.operation.name != "if_else"]
    assert homogeneity_pvalue(run_counts(backend, teleportation(1.2, 0.4)),
                              run_counts(backend, broken)) < REJECT


def test_transpile_keeps_control_flow(backend):
    transpiled = transpile(teleportation(0.3, 0.2), backend, optimization_level=1)
    assert "if_else" in transpiled.count_ops()
    counts = run_counts(backend, transpiled)
    assert chi_square_pvalue(counts, {f"0 {m:02b}": 0.25 for m in range(4)}) > ALPHA


def test_branches_split_shots_instead_of_rerunning_them(backend):
    """Five mid-circuit measurements of |+> give at most 2^5 branches for 2000 shots."""
    circuit = QuantumCircuit(5, 6)
    for qubit in range(5):
        circuit.h(qubit)
        circuit.measure(qubit, qubit)
        circuit.x(qubit)
    circuit.h(0)
    circuit.measure(0, 5)
    result = backend.run(circuit, shots=2000, seed_simulator=3).result()
    assert result.results[0].metadata["branches"] <= 2**5
    counts = result.get_counts()
    expected = {f"{last}{m:05b}": 1 / 64 for m in range(32) for last in "01"}
    assert chi_square_pvalue(counts, expected) > ALPHA


def test_same_seed_same_memory(backend):
    circuit = nested_control_flow()
    first = backend.run(circuit, shots=300, seed_simulator=9, memory=True).result()
    second = backend.run(circuit, shots=300, seed_simulator=9, memory=True).result()
    assert first.get_memory() == second.get_memory()


def test_reset_inside_a_loop_runs_every_iteration(backend):
    """The loop body's reset acts on a qubit that the previous iteration flipped."""
    circuit = QuantumCircuit(2, 2)
    with circuit.for_loop(range(3)):
        circuit.reset(0)
        circuit.x(0)
        circuit.cx(0, 1)
    circuit.measure([0, 1], [0, 1])
    assert run_counts(backend, circuit, shots=100) == {"11": 100}


def test_global_phase_inside_a_branch(backend):
    """A phase applied in one branch only is relative between the branches' amplitudes."""
    circuit = QuantumCircuit(1, 1)
    with circuit.if_test((circuit.clbits[0], 0)):
        circuit.append(GlobalPhaseGate(np.pi / 2), [])
    circuit.save_statevector()
    result = backend.run(circuit, shots=1).result()
    assert np.allclose(result.get_statevector().data, [1j, 0], atol=1e-6)
