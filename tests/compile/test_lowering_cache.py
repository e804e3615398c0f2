"""Programs remembered across runs (``gpuprovider/compile/lowering_cache.py``): a circuit run
again is not lowered again, and a circuit changed in place, in any way its program depends
on, gives the new circuit's values."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.circuit.library import CXGate, RXGate, UnitaryGate
from qiskit.quantum_info import SparsePauliOp, Statevector

from gpuprovider import GPUSimulator
from gpuprovider.compile import lowering_cache
from gpuprovider.primitives import EstimatorV2

OBSERVABLE = SparsePauliOp(["ZI", "IX", "YY"], [0.5, -1.0, 0.25])
theta = Parameter("theta")


@pytest.fixture(autouse=True)
def fresh_cache():
    lowering_cache.forget()
    yield
    lowering_cache.forget()


def _circuit() -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.ry(theta, 1)
    circuit.cx(0, 1)
    circuit.rz(0.3, 0)
    return circuit


def _value(estimator: EstimatorV2, circuit: QuantumCircuit, values=(0.7,)) -> float:
    return float(estimator.run([(circuit, OBSERVABLE, list(values))]).result()[0].data.evs)


def _exact(circuit: QuantumCircuit, values=(0.7,)) -> float:
    bound = circuit.assign_parameters(list(values)) if circuit.parameters else circuit
    return float(Statevector(bound).expectation_value(OBSERVABLE).real)


def _estimator() -> EstimatorV2:
    return EstimatorV2(options={"backend_options": {"device": "CPU"}})


def test_a_circuit_run_again_is_not_lowered_again():
    circuit = _circuit()
    backend = GPUSimulator(device="CPU")
    execution = backend._execution({}, stacklevel=1)
    first = execution.compile([circuit], ["circuit"], parameterized=True)[0].program
    again = execution.compile([circuit], ["circuit"], parameterized=True)[0].program
    assert again is first
    renamed = execution.compile([circuit], ["pub 1"], parameterized=True)[0].program
    assert renamed is not first  # errors name the circuit as this run does


MUTATIONS = {
    "append": lambda c: c.x(1),
    "replace an instruction": lambda c: c.data.__setitem__(3, c.data[3].replace(
        operation=RXGate(0.3))),
    "change a parameter": lambda c: c.data.__setitem__(3, c.data[3].replace(
        operation=type(c.data[3].operation)(1.1))),
    "move a gate": lambda c: c.data.__setitem__(2, c.data[2].replace(
        qubits=(c.qubits[1], c.qubits[0]))),
    "global phase and a parameterised gate": lambda c: (setattr(c, "global_phase", 0.4),
                                                        c.rx(2 * theta, 0)),
    "assign in place": lambda c: c.assign_parameters({theta: 0.2}, inplace=True),
    "remove a gate": lambda c: c.data.pop(1),
    "open the control": lambda c: c.data.__setitem__(2, c.data[2].replace(
        operation=CXGate(ctrl_state=0))),
    "relabel a gate": lambda c: c.data.__setitem__(0, c.data[0].replace(
        operation=RXGate(0.5, label="h"))),
}


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_a_circuit_changed_in_place_gives_the_new_values(mutation):
    estimator = _estimator()
    circuit = _circuit()
    values = (0.7,)
    assert _value(estimator, circuit, values) == pytest.approx(_exact(circuit, values),
                                                               abs=1e-12)
    before = lowering_cache.fingerprint(circuit)
    MUTATIONS[mutation](circuit)
    assert lowering_cache.fingerprint(circuit) != before
    values = (0.7,) if circuit.parameters else ()
    expected = _exact(circuit, values)
    got = float(estimator.run([(circuit, OBSERVABLE, list(values))]).result()[0].data.evs)
    assert got == pytest.approx(expected, abs=1e-12)


def test_circuits_whose_instructions_do_not_decide_their_program_are_not_remembered():
    circuit = _circuit()
    circuit.append(UnitaryGate(np.eye(2)), [0])
    assert lowering_cache.fingerprint(circuit) is None
    inner = QuantumCircuit(1, name="custom")
    inner.x(0)
    custom = _circuit()
    custom.append(inner.to_gate(), [1])
    assert lowering_cache.fingerprint(custom) is None
    # A custom gate's definition changed in place: lowered afresh, so the new value.
    estimator = _estimator()
    assert _value(estimator, custom) == pytest.approx(_exact(custom), abs=1e-12)
    custom.data[-1].operation.definition.h(0)
    assert _value(estimator, custom) == pytest.approx(_exact(custom), abs=1e-12)


def test_the_cache_forgets_the_least_recently_used(monkeypatch):
    monkeypatch.setattr(lowering_cache, "MAX_PROGRAMS", 2)
    estimator = _estimator()
    circuits = []
    for angle in (0.1, 0.2, 0.3):
        circuit = _circuit()
        circuit.rx(angle, 0)
        circuits.append(circuit)
        assert _value(estimator, circuit) == pytest.approx(_exact(circuit), abs=1e-12)
    assert len(lowering_cache._programs) == 2


def _measured() -> QuantumCircuit:
    circuit = QuantumCircuit(3, 3)
    circuit.x(0)
    circuit.h(2)
    circuit.cx(2, 1)
    circuit.measure([0, 1, 2], [0, 1, 2])
    return circuit


def test_a_measured_circuit_run_again_is_neither_lowered_nor_planned_again():
    # Qiskit's measure and reset are singletons of a subclass: the cache takes them by class.
    circuit = _measured()
    assert lowering_cache.fingerprint(circuit) is not None
    execution = GPUSimulator(device="CPU")._execution({}, stacklevel=1)
    first = execution.compile([circuit], ["circuit"])[0].program
    again = execution.compile([circuit], ["circuit"])[0].program
    assert again is first
    assert execution.plan(again) is execution.plan(first)
    unfused = GPUSimulator(device="CPU", fusion_enable=False)._execution({}, stacklevel=1)
    assert unfused.plan(first) is not execution.plan(first)  # plans differ by options


@pytest.mark.parametrize("options", [{}, {"fusion_enable": False}, {"method": "density_matrix"}])
def test_a_measured_circuit_changed_in_place_gives_the_new_counts(options):
    backend = GPUSimulator(device="CPU", **options)
    circuit = _measured()

    def counts() -> dict[str, int]:
        return backend.run(circuit, shots=400, seed_simulator=3).result().get_counts()

    first = counts()
    assert set(first) == {"001", "111"}
    assert counts() == first  # remembered program and plan, same seed: same counts
    circuit.data[-1] = circuit.data[-1].replace(clbits=(circuit.clbits[0],))  # q2 -> c0
    circuit.data[-3] = circuit.data[-3].replace(clbits=(circuit.clbits[2],))  # q0 -> c2
    assert set(counts()) == {"100", "111"}
    circuit.data[0] = circuit.data[0].replace(qubits=(circuit.qubits[1],))  # x on q1
    assert set(counts()) == {"010", "001"}
