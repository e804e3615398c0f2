"""Saved statevectors against qiskit.quantum_info.Statevector, global phase included."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qiskit import QuantumCircuit, transpile
from qiskit.circuit import Gate
from qiskit.circuit.library import (
    DiagonalGate,
    GlobalPhaseGate,
    HGate,
    MCMTGate,
    MCPhaseGate,
    MCXGate,
    PauliGate,
    QFTGate,
    RYGate,
    StatePreparation,
    UCGate,
    UnitaryGate,
    XGate,
)
from qiskit.quantum_info import Statevector, random_statevector, random_unitary

from gpuprovider import SaveStatevector
from gpuprovider.gates import supported_instructions

SUPPORTED = supported_instructions()
GATE_NAMES = sorted(
    name
    for name, instruction in SUPPORTED.items()
    if isinstance(instruction, Gate) and instruction.num_qubits > 0
)
"""Every standard gate the backend accepts (``id`` included; ``global_phase`` has no qubits)."""
OTHER_NAMES = {
    "global_phase", "unitary", "initialize", "barrier", "delay", "save_statevector", "mcx",
    "mcphase", "diagonal", "state_preparation", "mcmt", "pauli", "multiplexer",
}
SHOT_ONLY_NAMES = {"measure", "reset",  # covered by test_shot_statistics.py
                   "kraus", "quantum_channel"}  # and test_noise.py (quantum channels)
DYNAMIC_NAMES = {  # covered by test_dynamic_circuits.py, test_saves.py, test_aer_parity.py
    "if_else", "while_loop", "for_loop", "switch_case", "break_loop", "continue_loop", "box",
    "store", "save_probabilities", "save_probabilities_dict", "save_expval", "save_expval_var",
    "save_statevector_dict", "save_state", "save_amplitudes", "save_amplitudes_sq",
    "save_density_matrix", "set_statevector",
}
EXTRA_KINDS = 11


def make_gate(name: str, rng: np.random.Generator) -> Gate:
    """The standard gate ``name`` with random parameters."""
    prototype = SUPPORTED[name]
    values = rng.uniform(-2 * np.pi, 2 * np.pi, len(prototype.params))
    return type(prototype)(*values)


def random_qubits(rng: np.random.Generator, num_qubits: int, k: int) -> list[int]:
    return [int(q) for q in rng.permutation(num_qubits)[:k]]


def append_extra(circuit: QuantumCircuit, rng: np.random.Generator, kind: int) -> None:
    """A non-standard instruction: 0 unitary, 1 barrier, 2 delay, 3 global_phase, 4 mcx,
    5 mcphase, 6 controlled unitary (each with 2+ controls and a random control state),
    7 diagonal, 8 state_preparation (on qubits in any state), 9 MCMT (1-2 controls, 1-2
    targets), 10 pauli, 11 multiplexer (UCGate)."""
    n = circuit.num_qubits
    if kind == 9 and n >= 2:
        controls = int(rng.integers(1, min(2, n - 1) + 1))
        targets = int(rng.integers(1, min(2, n - controls) + 1))
        base = [HGate(), RYGate(rng.uniform(-np.pi, np.pi)), XGate()][int(rng.integers(3))]
        circuit.append(MCMTGate(base, controls, targets),
                       random_qubits(rng, n, controls + targets))
        return
    if kind == 10:
        k = int(rng.integers(1, min(3, n) + 1))
        circuit.append(PauliGate("".join(rng.choice(list("IXYZ"), k))), random_qubits(rng, n, k))
        return
    if kind == 11:
        controls = int(rng.integers(0, min(2, n - 1) + 1))
        matrices = [random_unitary(2, seed=rng).data for _ in range(1 << controls)]
        circuit.append(UCGate(matrices), random_qubits(rng, n, controls + 1))
        return
    if 4 <= kind <= 6 and n >= 3:
        # UnitaryGate.control synthesises its definition: seconds from 7 qubits on.
        k = int(rng.integers(3, (n if kind < 6 else min(n, 4)) + 1))
        qubits = random_qubits(rng, n, k)
        ctrl_state = int(rng.integers(1 << (k - 1)))
        gate = {
            4: lambda: MCXGate(k - 1, ctrl_state=ctrl_state),
            5: lambda: MCPhaseGate(rng.uniform(-np.pi, np.pi), k - 1, ctrl_state=ctrl_state),
            6: lambda: UnitaryGate(random_unitary(2, seed=rng)).control(k - 1,
                                                                     ctrl_state=ctrl_state),
        }[kind]()
        circuit.append(gate, qubits)
    elif kind == 7:
        k = int(rng.integers(1, min(4, n) + 1))
        phases = np.exp(1j * rng.uniform(-np.pi, np.pi, 1 << k))
        circuit.append(DiagonalGate(list(phases)), random_qubits(rng, n, k))
    elif kind == 8:
        k = int(rng.integers(1, min(3, n) + 1))
        circuit.append(StatePreparation(random_statevector(1 << k, seed=rng).data),
                       random_qubits(rng, n, k))
    elif kind == 0:
        k = int(rng.integers(1, min(3, n) + 1))
        circuit.unitary(random_unitary(1 << k, seed=rng), random_qubits(rng, n, k))
    elif kind == 1:
        circuit.barrier(random_qubits(rng, n, int(rng.integers(1, n + 1))))
    elif kind == 2:
        circuit.delay(int(rng.integers(1, 100)), random_qubits(rng, n, 1)[0])
    else:
        circuit.append(GlobalPhaseGate(rng.uniform(-np.pi, np.pi)), [])


def random_circuit(
    num_qubits: int, seed: int, *, start: str = "none", mid_initialize: bool = False,
    extra_gates: int = 20,
) -> QuantumCircuit:
    """Every standard gate once (shuffled) plus ``extra_gates`` more, on random unsorted
    qubits with random parameters, interleaved with unitaries, barriers, delays and global
    phases. ``start``: "none", "all" (initialize every qubit) or "subset" (initialize some).
    ``mid_initialize``: an initialize on every qubit half way through.
    """
    rng = np.random.default_rng(seed)
    circuit = QuantumCircuit(num_qubits, global_phase=rng.uniform(-np.pi, np.pi))
    if start == "all":
        circuit.initialize(random_statevector(1 << num_qubits, seed=rng).data,
                           random_qubits(rng, num_qubits, num_qubits))
    elif start == "subset":
        k = int(rng.integers(1, num_qubits))
        circuit.initialize(random_statevector(1 << k, seed=rng).data,
                           random_qubits(rng, num_qubits, k))
    names = list(rng.permutation(GATE_NAMES)) + list(rng.choice(GATE_NAMES, extra_gates))
    extras = {int(i): kind for kind, i in enumerate(
        rng.choice(len(names), EXTRA_KINDS + 1, replace=False))}
    for index, name in enumerate(names):
        gate = make_gate(str(name), rng)
        circuit.append(gate, random_qubits(rng, num_qubits, gate.num_qubits))
        if index in extras:
            append_extra(circuit, rng, extras[index])
        elif rng.random() < 0.2:
            append_extra(circuit, rng, int(rng.integers(EXTRA_KINDS + 1)))
        if mid_initialize and index == len(names) // 2:
            circuit.initialize(random_statevector(1 << num_qubits, seed=rng).data,
                               random_qubits(rng, num_qubits, num_qubits))
    return circuit


def saved_statevector(backend, circuit: QuantumCircuit, **options) -> np.ndarray:
    with_save = circuit.copy()
    with_save.append(SaveStatevector(circuit.num_qubits), circuit.qubits)
    result = backend.run(with_save, shots=1, **options).result()
    return np.asarray(result.get_statevector())


def max_error(actual, expected) -> float:
    return float(np.max(np.abs(np.asarray(actual) - np.asarray(expected))))


def test_generator_covers_every_supported_instruction():
    assert set(SUPPORTED) == set(GATE_NAMES) | OTHER_NAMES | SHOT_ONLY_NAMES | DYNAMIC_NAMES
    circuit = random_circuit(4, seed=0, start="subset", mid_initialize=True)
    used = set(circuit.count_ops())
    assert set(GATE_NAMES) <= used
    assert {"unitary", "barrier", "delay", "global_phase", "initialize"} <= used
    kinds = set()
    for seed in range(6):
        kinds |= set(random_circuit(4, seed=seed).count_ops())
    assert {"mcmt", "pauli", "multiplexer"} <= kinds


@pytest.mark.parametrize("name", GATE_NAMES)
def test_each_gate_on_random_state(backend, tolerance, name):
    """One gate with random parameters on reversed, non-adjacent qubits of a random state."""
    rng = np.random.default_rng(GATE_NAMES.index(name))
    circuit = QuantumCircuit(5)
    circuit.initialize(random_statevector(32, seed=rng).data, range(5))
    gate = make_gate(name, rng)
    qubits = [4, 1, 3, 0][: gate.num_qubits]
    circuit.append(gate, qubits)
    circuit.append(make_gate(name, rng), random_qubits(rng, 5, gate.num_qubits))
    expected = Statevector(circuit).data
    assert max_error(saved_statevector(backend, circuit), expected) < tolerance


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 2**32 - 1),
    num_qubits=st.integers(4, 7),
    start=st.sampled_from(["none", "all", "subset"]),
)
def test_random_circuit_over_every_gate(backend, tolerance, seed, num_qubits, start):
    circuit = random_circuit(num_qubits, seed, start=start)
    expected = Statevector(circuit).data
    assert max_error(saved_statevector(backend, circuit), expected) < tolerance


@pytest.mark.parametrize("seed", [31, 32, 33])
def test_initialize_all_qubits_mid_circuit(backend, tolerance, seed):
    """Statevector resets the qubits of a mid-circuit initialize by sampling an outcome, so
    its global phase is random there: compare up to a global phase."""
    circuit = random_circuit(5, seed, start="subset", mid_initialize=True)
    expected = Statevector(circuit).data
    actual = saved_statevector(backend, circuit)
    assert abs(np.vdot(expected, actual)) == pytest.approx(1, abs=tolerance)
    assert np.linalg.norm(actual) == pytest.approx(1, abs=tolerance)


def test_twelve_qubit_random_circuit(backend, tolerance):
    circuit = random_circuit(12, seed=12, start="subset", extra_gates=100)
    expected = Statevector(circuit).data
    assert max_error(saved_statevector(backend, circuit), expected) < tolerance


def test_global_phase_is_applied(backend, tolerance):
    circuit = QuantumCircuit(2, global_phase=0.4)
    circuit.h(0)
    circuit.append(GlobalPhaseGate(1.1), [])
    expected = np.exp(1.5j) * np.array([1, 1, 0, 0]) / np.sqrt(2)
    assert max_error(Statevector(circuit).data, expected) < 1e-12
    assert max_error(saved_statevector(backend, circuit), expected) < tolerance


def test_initialize_forms(backend, tolerance):
    """Amplitudes, a basis-state integer and a label, each on an unsorted qubit list."""
    for params in (random_statevector(8, seed=3).data, 6, "0r+", "1-l"):
        circuit = QuantumCircuit(4, global_phase=0.3)
        circuit.h(3)
        circuit.initialize(params, [2, 0, 1])
        circuit.cx(3, 1)
        expected = Statevector(circuit).data
        assert max_error(saved_statevector(backend, circuit), expected) < tolerance, params


def test_initialize_subset_mid_circuit_on_basis_state_qubit(backend, tolerance):
    """The re-initialised qubit is |1> (times a phase), so its reset is deterministic and the
    state, phase included, is well defined."""
    circuit = QuantumCircuit(4)
    circuit.h(0)
    circuit.cx(0, 2)
    circuit.x(1)
    circuit.p(0.7, 1)
    circuit.ry(0.3, 3)
    circuit.initialize(random_statevector(2, seed=5).data, [1])
    circuit.cx(1, 2)
    circuit.crx(0.8, 1, 3)
    expected = Statevector(circuit).data
    assert max_error(saved_statevector(backend, circuit), expected) < tolerance


def test_initialize_subset_mid_circuit_on_unentangled_qubits(backend, tolerance):
    """Qubits 1 and 3 are in a superposition but not entangled with 0 and 2, so after the
    reset inside initialize the state is fixed up to a global phase (which depends on the
    random reset outcome): compare by fidelity."""
    circuit = QuantumCircuit(4)
    circuit.h(0)
    circuit.cx(0, 2)
    circuit.ry(0.9, 1)
    circuit.rx(1.3, 3)
    circuit.cx(1, 3)
    circuit.initialize(random_statevector(4, seed=6).data, [3, 1])
    circuit.cx(1, 0)
    circuit.cry(0.5, 3, 2)
    expected = Statevector(circuit).data
    for seed in (1, 2, 3, 4):
        actual = saved_statevector(backend, circuit, seed_simulator=seed)
        assert abs(np.vdot(expected, actual)) == pytest.approx(1, abs=tolerance)
        assert np.linalg.norm(actual) == pytest.approx(1, abs=tolerance)


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_transpiled_qft_save_equals_original(backend, tolerance, level):
    circuit = QuantumCircuit(5, global_phase=0.2)
    circuit.x([0, 3])
    circuit.h(4)
    circuit.t(4)
    circuit.append(QFTGate(5), range(5))
    expected = Statevector(circuit).data
    with_save = circuit.copy()
    with_save.append(SaveStatevector(5), range(5))
    transpiled = transpile(with_save, backend, optimization_level=level, seed_transpiler=7)
    result = backend.run(transpiled, shots=1).result()
    assert max_error(result.get_statevector(), expected) < tolerance


def test_save_on_permuted_qubits_reorders_the_vector(backend, tolerance):
    """Saved qubit j is circuit qubit ``qubits[j]``, as the transpiler relies on."""
    circuit = random_circuit(4, seed=8)
    state = Statevector(circuit).data
    qubits = [2, 0, 3, 1]
    expected = np.empty_like(state)
    for m in range(16):
        index = sum(((m >> j) & 1) << q for j, q in enumerate(qubits))
        expected[m] = state[index]
    with_save = circuit.copy()
    with_save.append(SaveStatevector(4), qubits)
    result = backend.run(with_save, shots=1).result()
    assert max_error(result.get_statevector(), expected) < tolerance
    assert max_error(expected, state) > 0.01


def test_mid_circuit_save_with_custom_label(backend, tolerance):
    circuit = QuantumCircuit(3, global_phase=0.3)
    circuit.h(0)
    circuit.cx(0, 1)
    prefix = circuit.copy()
    circuit.append(SaveStatevector(3, label="middle"), range(3))
    circuit.append(GlobalPhaseGate(0.9), [])
    circuit.ry(0.7, 2)
    circuit.cswap(2, 0, 1)
    full = circuit.copy_empty_like()
    for instruction in circuit.data:
        if instruction.operation.name != "save_statevector":
            full.append(instruction)
    circuit.save_statevector()
    data = backend.run(circuit, shots=1).result().data(0)
    assert max_error(data["middle"], Statevector(prefix).data) < tolerance
    assert max_error(data["statevector"], Statevector(full).data) < tolerance
    assert max_error(data["middle"], data["statevector"]) > 0.1


def test_save_after_measurement_is_collapsed(backend, tolerance):
    """A save after a measurement sees the collapsed state of the shot it was saved from."""
    circuit = QuantumCircuit(2, 1)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure(0, 0)
    circuit.save_statevector()
    outcomes = set()
    for seed in range(8):
        result = backend.run(circuit, shots=1, seed_simulator=seed, memory=True).result()
        outcome = int(result.get_memory()[0])
        outcomes.add(outcome)
        expected = np.zeros(4)
        expected[3 * outcome] = 1
        assert max_error(result.get_statevector(), expected) < tolerance
    assert outcomes == {0, 1}


def test_qiskit_aer_save_statevector_is_accepted(backend, tolerance):
    from qiskit_aer.library import SaveStatevector as AerSaveStatevector

    circuit = random_circuit(4, seed=9)
    expected = Statevector(circuit).data
    circuit.append(AerSaveStatevector(4, label="from_aer"), circuit.qubits)
    result = backend.run(circuit, shots=1).result()
    assert max_error(result.data(0)["from_aer"], expected) < tolerance


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_agrees_with_aer_simulator(backend, tolerance, seed):
    """Without initialize: Aer's global phase around initialize differs from Statevector's."""
    from qiskit_aer import AerSimulator
    from qiskit_aer.library import SaveStatevector as AerSaveStatevector

    aer = AerSimulator(method="statevector")
    circuit = random_circuit(5, seed)
    with_save = circuit.copy()
    with_save.append(AerSaveStatevector(5), circuit.qubits)
    aer_result = aer.run(transpile(with_save, aer, optimization_level=0)).result()
    ours = saved_statevector(backend, circuit)
    assert max_error(ours, aer_result.get_statevector()) < tolerance
