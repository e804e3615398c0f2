"""gpuprovider.benchsuite: the circuit families, the gate list every peer gets, and the timing
driver's skips and ratios (the peers' conversions: test_peer_adapters.py)."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import Statevector

from gpuprovider import benchsuite
from gpuprovider.benchsuite import BenchConfig, Row

def test_random_family_is_deterministic_per_seed():
    assert benchsuite.random_circuit(6, seed=3) == benchsuite.random_circuit(6, seed=3)
    assert benchsuite.random_circuit(6, seed=3) != benchsuite.random_circuit(6, seed=4)
    assert benchsuite.random_circuit(6, seed=3) != benchsuite.random_circuit(7, seed=3)


def test_random_family_has_every_gate_kind_and_depth_2n():
    n = 10
    circuit = benchsuite.random_circuit(n)
    assert {"rx", "ry", "rz", "cx", "cz", "cp", "swap", "rzz", "measure"} <= set(
        circuit.count_ops())
    assert circuit.remove_final_measurements(inplace=False).depth() == 2 * n


@pytest.mark.parametrize("family", list(benchsuite.FAMILIES))
def test_families_are_measured_on_every_qubit(family):
    circuit = benchsuite.FAMILIES[family](4)
    assert circuit.num_qubits == 4
    assert circuit.count_ops()["measure"] == 4


def test_qv_keeps_two_qubit_unitaries_and_qft_is_lowered():
    assert set(benchsuite.qv(4).count_ops()) == {"unitary", "measure", "barrier"}
    assert set(benchsuite.qft(4).count_ops()) <= {"h", "cp", "swap", "x", "measure", "barrier"}


@pytest.mark.parametrize("family", list(benchsuite.FAMILIES))
def test_gate_list_reproduces_the_state(family):
    circuit = benchsuite.FAMILIES[family](4)
    state = Statevector.from_label("0" * 4)
    for gate in benchsuite.gate_list(circuit):
        state = state.evolve(gate.matrix, qargs=list(gate.qubits))
    expected = Statevector(circuit.remove_final_measurements(inplace=False))
    assert np.allclose(state.data, expected.data, atol=1e-12)


def test_gate_list_refuses_a_reset():
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.reset(0)
    with pytest.raises(ValueError, match="'reset' is not a unitary gate"):
        benchsuite.gate_list(circuit)


def test_statevector_is_skipped_above_its_limit_without_running():
    config = BenchConfig(families=("ghz",), qubits=(benchsuite.STATEVECTOR_MAX_QUBITS + 1,),
                         simulators=("statevector",))
    [row] = benchsuite.run_suite(config)
    assert row.seconds is None
    assert "not run above 22 qubits" in row.skipped


def test_a_run_over_budget_is_skipped_and_later_sizes_too():
    config = BenchConfig(families=("ghz",), qubits=(4, 6, 8), simulators=("gpuprovider",),
                         precisions=("double",), repeats=1, budget_s=1e-9, device="CPU")
    first, second, third = benchsuite.run_suite(config)
    assert first.seconds is not None and first.skipped is None
    assert "budget" in second.skipped and second.seconds is None
    assert "already" in third.skipped


def test_estimate_scales_with_the_state_and_the_gates():
    assert benchsuite.estimate_seconds(1.0, (10, 100), (12, 200)) == 8.0


def test_ratio_compares_with_ours_in_the_same_precision():
    rows = [Row("qv", 4, "gpuprovider", "double", seconds=2.0),
            Row("qv", 4, "gpuprovider", "single", seconds=1.0),
            Row("qv", 4, "aer", "double", seconds=3.0),
            Row("qv", 4, "qsim", "single", seconds=4.0),
            Row("qv", 6, "aer", "double", seconds=3.0)]
    assert [benchsuite.ratio(rows, row) for row in rows] == [None, None, 1.5, 4.0, None]


def test_a_missing_peer_is_reported_not_run(monkeypatch):
    missing = benchsuite.Simulator("fake", benchsuite._prepare_qsim, ("single",),
                                   module="no_such_module_here")
    monkeypatch.setitem(benchsuite.SIMULATORS, "fake", missing)
    [row] = benchsuite.run_suite(BenchConfig(families=("ghz",), qubits=(3,),
                                             simulators=("fake",)))
    assert row.skipped == "no-such-module-here is not installed"
