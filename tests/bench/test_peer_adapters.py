"""gpuprovider.benchsuite's simulator adapters: each peer outside qiskit (qsim, lightning.qubit,
qulacs, qibojit) computes Statevector's final state in every precision it has, on every family
and on random circuits, and the check fails when the qubits go the wrong way round; every
simulator's timed call samples 1000 shots in qiskit's qubit order. A peer that is not installed
is skipped with the reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from qiskit import QuantumCircuit

from gpuprovider import benchsuite
from gpuprovider.benchsuite import SIMULATORS, BenchConfig

SIZES = [3, 4, 6]
PEERS = [name for name, sim in SIMULATORS.items() if sim.state is not None]
STATE_CASES = [pytest.param(name, precision, id=f"{name}-{precision}")
               for name in PEERS for precision in SIMULATORS[name].precisions]
RUN_CASES = [pytest.param(name, precision, id=f"{name}-{precision}")
             for name, sim in SIMULATORS.items() for precision in sim.precisions]
DTYPES = {"double": np.complex128, "single": np.complex64}


def _require(simulator: str) -> None:
    missing = benchsuite.missing_module(simulator)
    if missing:
        pytest.skip(missing)


def _from_counts(counts: dict[str, int]) -> list[int]:
    """Qiskit's counts (bit strings, qubit 0 on the right) as one outcome per shot."""
    return [int(key, 2) for key, count in counts.items() for _ in range(count)]


def _from_bits(samples: Any) -> list[int]:
    """Rows of bits, column ``i`` qubit ``i``, as one outcome per shot."""
    samples = np.asarray(samples)
    return [int(value) for value in samples @ (1 << np.arange(samples.shape[1]))]


def _from_big_endian_counts(counts: dict[int, int], num_qubits: int) -> list[int]:
    """Integer outcomes with qubit 0 the most significant bit as one outcome per shot, qubit 0
    the least."""
    return [int(f"{outcome:0{num_qubits}b}"[::-1], 2)
            for outcome, count in counts.items() for _ in range(count)]


OUTCOMES: dict[str, Callable[[Any, int], list[int]]] = {
    "gpuprovider": lambda result, _: _from_counts(result.get_counts()),
    "aer": lambda result, _: _from_counts(result.get_counts()),
    "qsim": lambda result, _: _from_bits(result.measurements["m"]),
    "statevector": lambda counts, _: _from_counts(counts),
    "lightning": lambda result, _: _from_bits(result[0]),
    "qulacs": lambda samples, _: list(samples),
    "qibojit": _from_big_endian_counts,
}
"""``OUTCOMES[simulator](result, num_qubits)``: what the timed call returned as one outcome per
shot, qiskit qubit ``i`` as bit ``i``."""


def _asymmetric() -> QuantumCircuit:
    """X on qubit 0 and H on qubit 2 of 3, with a global phase: outcomes 0b001 and 0b101 only,
    never their mirrors 0b100 and 0b101."""
    circuit = QuantumCircuit(3, global_phase=0.7)
    circuit.x(0)
    circuit.h(2)
    circuit.measure_all()
    return circuit


def test_every_simulator_has_an_outcome_reader():
    assert set(SIMULATORS) == set(OUTCOMES)


@pytest.mark.parametrize("num_qubits", SIZES)
@pytest.mark.parametrize("family", list(benchsuite.FAMILIES))
@pytest.mark.parametrize(("simulator", "precision"), STATE_CASES)
def test_peer_state_agrees_with_statevector(simulator, precision, family, num_qubits):
    _require(simulator)
    circuit = benchsuite.FAMILIES[family](num_qubits)
    assert benchsuite.state_error(simulator, circuit, precision) <= (
        benchsuite.STATE_TOLERANCE[precision])


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(("simulator", "precision"), STATE_CASES)
def test_peer_state_agrees_on_random_circuits(simulator, precision, seed):
    _require(simulator)
    circuit = benchsuite.random_circuit(5, seed=seed)
    assert benchsuite.state_error(simulator, circuit, precision) <= (
        benchsuite.STATE_TOLERANCE[precision])


@pytest.mark.parametrize(("simulator", "precision"), STATE_CASES)
def test_peer_state_has_its_precision_and_the_global_phase_is_restored(simulator, precision):
    _require(simulator)
    circuit = _asymmetric()
    bare = circuit.remove_final_measurements(inplace=False)
    assert SIMULATORS[simulator].state(bare, precision).dtype == DTYPES[precision]
    assert benchsuite.state_error(simulator, circuit, precision) <= (
        benchsuite.STATE_TOLERANCE[precision])


@pytest.mark.parametrize("simulator", PEERS)
def test_state_check_catches_reversed_qubits(simulator, monkeypatch):
    _require(simulator)
    honest = benchsuite.gate_list

    def reversed_qubits(circuit):
        return [benchsuite.Gate(g.matrix, g.qubits[::-1]) for g in honest(circuit)]

    monkeypatch.setattr(benchsuite, "gate_list", reversed_qubits)
    precision = SIMULATORS[simulator].precisions[0]
    assert benchsuite.state_error(simulator, benchsuite.random_circuit(4), precision) > 0.1


def test_state_error_refuses_a_simulator_without_a_state_check_or_the_precision():
    with pytest.raises(ValueError, match="'aer' has no state check; these have: qsim"):
        benchsuite.state_error("aer", benchsuite.ghz(3), "double")
    with pytest.raises(ValueError, match="'qulacs' computes in double precision only"):
        benchsuite.state_error("qulacs", benchsuite.ghz(3), "single")


@pytest.mark.parametrize(("simulator", "precision"), RUN_CASES)
def test_timed_call_samples_1000_shots_in_qiskit_order(simulator, precision):
    _require(simulator)
    circuit, config = _asymmetric(), BenchConfig(device="CPU")
    run = SIMULATORS[simulator].prepare(circuit, precision, config)
    outcomes = OUTCOMES[simulator](run(), circuit.num_qubits)
    assert len(outcomes) == config.shots == 1000
    assert set(outcomes) == {0b001, 0b101}


def test_qibojit_leaves_qibos_global_backend_alone():
    _require("qibojit")
    import qibo

    before = qibo.get_backend()
    dtype = before.dtype
    for precision in SIMULATORS["qibojit"].precisions:
        SIMULATORS["qibojit"].prepare(_asymmetric(), precision, BenchConfig())()
    assert qibo.get_backend() is before and before.dtype == dtype
