"""The engine (``gpuprovider.engine.run_program``) on its own: a lowered Program on the CPU
kernel set, with a recording control, no backend and no job.

Covers what the engine promises its callers: counts and per-shot memory that agree, the two
ways final counts are drawn, branches and trajectories at mid-circuit measurements, the
steps and completion markers it reports, cancellation, and that every state it allocates is
released however the run ends.
"""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import Statevector
from scipy import stats
from support.fake_device import FakeKernels
from testkit import ALPHA, chi_square_pvalue

from gpuprovider.compile.lower import lower_circuit
from gpuprovider.engine import SAMPLE_CHUNK_SHOTS, run_program, total_steps
from gpuprovider.exceptions import JobCancelledError
from gpuprovider.kernels import cpu
from gpuprovider.shots import hex_keys


class RecordingControl:
    """Counts the steps and markers the engine reports; can cancel after some steps."""

    def __init__(self, cancel_after: int | None = None) -> None:
        self.steps = 0
        self.marked_at: list[int] = []
        self.cancel_after = cancel_after

    def check(self) -> None:
        if self.cancel_after is not None and self.steps >= self.cancel_after:
            raise JobCancelledError("cancelled by the test")

    def advance(self, steps: int = 1) -> None:
        self.steps += steps

    def mark(self, marker) -> None:
        assert marker.query()  # CPU markers are complete when recorded
        self.marked_at.append(self.steps)


class CountingKernels(FakeKernels):
    """FakeKernels that count the states alive (allocated or cloned, not yet released)."""

    def __init__(self) -> None:
        super().__init__()
        self.alive = 0
        self.most_alive = 0

    def allocate(self, *args, **kwargs):
        self._born()
        return cpu.allocate(*args, **kwargs)

    def clone(self, state):
        self._born()
        return cpu.clone(state)

    def release(self, state) -> None:
        self.alive -= 1
        cpu.release(state)

    def _born(self) -> None:
        self.alive += 1
        self.most_alive = max(self.most_alive, self.alive)


def run(circuit: QuantumCircuit, shots: int, seed: int = 1, kernels=cpu, **kwargs):
    program = lower_circuit(circuit, np.dtype(np.complex128))
    control = kwargs.pop("control", RecordingControl())
    outcome = run_program(program, kernels, np.dtype(np.complex128), shots,
                          np.random.default_rng(seed), control, **kwargs)
    return program, outcome, control


def counts_of(outcome) -> dict[str, int]:
    return dict(zip(hex_keys(outcome.rows), outcome.counts.tolist()))


def test_a_basis_state_gives_all_shots_one_outcome_in_counts_and_memory():
    circuit = QuantumCircuit(3, 3)
    circuit.x([0, 2])
    circuit.measure([0, 1, 2], [0, 1, 2])
    _, counted, _ = run(circuit, 100)
    _, kept, _ = run(circuit, 100, keep_memory=True)

    assert counts_of(counted) == {"0x5": 100}
    assert counts_of(kept) == {"0x5": 100}
    assert kept.memory.shape == (100, 1) and set(kept.memory[:, 0].tolist()) == {5}
    assert counted.memory is None and counted.sampled and counted.branches == 1


def test_clbits_beyond_the_first_word_are_set():
    circuit = QuantumCircuit(2, 130)
    circuit.x(1)
    circuit.measure(0, 3)
    circuit.measure(1, 129)
    _, outcome, _ = run(circuit, 10, keep_memory=True)

    assert counts_of(outcome) == {hex(1 << 129): 10}
    assert outcome.memory.shape == (10, 3)


@pytest.mark.parametrize("qubits", [3, 12], ids=["multinomial", "chunked"])
def test_final_counts_follow_the_born_rule_by_either_draw(qubits):
    """3 qubits: 8 outcomes <= shots, one multinomial draw; 12 qubits and fewer shots than
    4096 outcomes: sampled in chunks. Both pass a chi-square test against |amplitude|^2."""
    rng = np.random.default_rng(7)
    circuit = QuantumCircuit(qubits)
    for qubit in range(qubits):
        circuit.ry(float(rng.uniform(0.2, 1.2)), qubit)
    circuit.measure_all()
    shots = 4000 if qubits == 3 else 3000
    _, outcome, _ = run(circuit, shots, seed=11)
    assert outcome.counts.sum() == shots

    probabilities = Statevector(circuit.remove_final_measurements(inplace=False)
                                ).probabilities_dict()
    counts = {format(int(key, 16), f"0{qubits}b"): count
              for key, count in counts_of(outcome).items()}
    assert chi_square_pvalue(counts, probabilities) > ALPHA


def test_more_shots_than_a_sampling_chunk_are_all_counted():
    circuit = QuantumCircuit(20)
    circuit.h(range(20))
    circuit.measure_all()
    shots = SAMPLE_CHUNK_SHOTS + 17
    _, outcome, _ = run(circuit, shots)
    assert int(outcome.counts.sum()) == shots


def mid_circuit_circuit() -> QuantumCircuit:
    circuit = QuantumCircuit(2, 2)
    circuit.h(0)
    circuit.measure(0, 0)
    circuit.cx(0, 1)
    circuit.measure(1, 1)
    return circuit


def test_mid_circuit_measurement_splits_shots_into_branches():
    _, outcome, control = run(mid_circuit_circuit(), 1000, seed=5)
    counts = counts_of(outcome)

    assert set(counts) == {"0x0", "0x3"}
    assert sum(counts.values()) == 1000
    assert outcome.branches == 2 and not outcome.sampled
    assert control.steps == 1000  # one step per finished shot
    assert stats.binomtest(counts["0x3"], 1000, 0.5).pvalue > ALPHA


def test_past_the_state_cap_shots_run_as_trajectories_with_the_same_statistics():
    kernels = CountingKernels()
    _, outcome, _ = run(mid_circuit_circuit(), 400, seed=6, kernels=kernels, max_states=2)
    counts = counts_of(outcome)

    assert set(counts) <= {"0x0", "0x3"} and sum(counts.values()) == 400
    assert kernels.most_alive <= 2
    assert kernels.alive == 0
    assert stats.binomtest(counts.get("0x3", 0), 400, 0.5).pvalue > ALPHA


def test_steps_and_markers_cover_the_whole_run():
    circuit = QuantumCircuit(4)
    circuit.h(range(4))
    circuit.cx(0, 3)
    circuit.measure_all()
    program, outcome, control = run(circuit, 50)

    assert control.steps == total_steps(program, 50) == len(program.ops)
    assert control.marked_at, "no completion marker was recorded"
    assert control.marked_at[-1] == control.steps  # the last marker follows every step
    assert control.marked_at == sorted(control.marked_at)


def test_a_cancelled_run_raises_and_releases_every_state():
    kernels = CountingKernels()
    circuit = QuantumCircuit(5, 5)
    circuit.h(range(5))
    circuit.measure(range(5), range(5))
    circuit.h(range(5))
    circuit.measure(range(5), range(5))
    with pytest.raises(JobCancelledError):
        run(circuit, 200, kernels=kernels, control=RecordingControl(cancel_after=3))
    assert kernels.alive == 0


def test_a_failing_kernel_releases_every_state():
    kernels = CountingKernels()
    kernels.fail["probability_of_one"] = RuntimeError("broken read")
    with pytest.raises(RuntimeError, match="broken read"):
        run(mid_circuit_circuit(), 100, kernels=kernels)
    assert kernels.alive == 0


# --- grouped trajectories (mixture-only noise) --------------------------------------------------


def _noisy_plan(num_qubits: int = 3, layers: int = 30, rate: float = 0.05):
    """A planned program whose only randomness is depolarizing noise (several chunks)."""
    noise = pytest.importorskip("qiskit_aer.noise")
    from gpuprovider.compile.noise import read_noise_model
    from gpuprovider.compile.plan import planned

    model = noise.NoiseModel()
    model.add_all_qubit_quantum_error(noise.depolarizing_error(rate, 1), ["h", "ry"])
    model.add_all_qubit_quantum_error(noise.depolarizing_error(rate, 2), ["cx"])
    circuit = QuantumCircuit(num_qubits)
    for layer in range(layers):
        circuit.ry(0.1 * layer, layer % num_qubits)
        circuit.cx(layer % num_qubits, (layer + 1) % num_qubits)
    circuit.measure_all()
    dtype = np.dtype(np.complex128)
    program = lower_circuit(circuit, dtype, noise=read_noise_model(model))
    program = planned(program, cpu.POLICY.plan_policy(dtype))
    assert program.mixtures is not None and program.mixtures.num_chunks > 1
    return program


def test_grouped_trajectories_keep_to_the_state_cap_and_release_every_state():
    program = _noisy_plan()
    for cap in (2, 3, 16):
        kernels = CountingKernels()
        outcome = run_program(program, kernels, np.dtype(np.complex128), 500,
                              np.random.default_rng(1), RecordingControl(), max_states=cap)
        assert kernels.most_alive <= cap and kernels.alive == 0
        assert int(outcome.counts.sum()) == 500 and outcome.branches > 1


def test_grouped_trajectories_cancelled_or_failing_release_every_state():
    program = _noisy_plan()
    kernels = CountingKernels()
    with pytest.raises(JobCancelledError):
        run_program(program, kernels, np.dtype(np.complex128), 500, np.random.default_rng(1),
                    RecordingControl(cancel_after=20), max_states=4)
    assert kernels.alive == 0
    kernels = CountingKernels()
    kernels.fail["apply_matrix"] = RuntimeError("broken gate")
    with pytest.raises(RuntimeError, match="broken gate"):
        run_program(program, kernels, np.dtype(np.complex128), 500, np.random.default_rng(1),
                    RecordingControl(), max_states=4)
    assert kernels.alive == 0


def test_more_errors_than_may_be_drawn_up_front_split_shots_at_each_channel(monkeypatch):
    from gpuprovider.compile import mixtures

    program = _noisy_plan()
    monkeypatch.setattr(mixtures, "MAX_DRAWN_ERRORS", 10)
    assert not program.mixtures.fits(500)
    kernels = CountingKernels()
    outcome = run_program(program, kernels, np.dtype(np.complex128), 500,
                          np.random.default_rng(1), RecordingControl(), max_states=4)
    assert int(outcome.counts.sum()) == 500 and kernels.alive == 0
