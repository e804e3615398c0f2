"""Runs of a sweep side by side (``gpuprovider.side_by_side``): the same answers, progress,
cancellation and errors as runs one after another."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.providers import JobStatus
from qiskit.quantum_info import Statevector
from testkit import wait_until

from gpuprovider import GPUSimulator, side_by_side
from gpuprovider.execution import Execution
from gpuprovider.kernels import cpu

QUBITS = cpu.POLICY.parallel_min_qubits
"""The smallest state whose runs go side by side."""


def ansatz(num_qubits: int) -> tuple[QuantumCircuit, list[Parameter]]:
    parameters = [Parameter(f"t{q}") for q in range(num_qubits)]
    circuit = QuantumCircuit(num_qubits)
    for layer in range(2):
        for q in range(num_qubits):
            circuit.ry(parameters[q] * (layer + 1), q)
        for q in range(num_qubits - 1):
            circuit.cx(q, q + 1)
    circuit.save_statevector()
    circuit.measure_all()
    return circuit, parameters


def binds(parameters: list[Parameter], sets: int, seed: int) -> list[dict]:
    values = np.random.default_rng(seed).uniform(-np.pi, np.pi, (sets, len(parameters)))
    return [{p: list(values[:, k]) for k, p in enumerate(parameters)}]


@pytest.fixture
def one_at_a_time(monkeypatch):
    """Runs go one after another, as before side-by-side runs."""
    monkeypatch.setattr(cpu, "SIDE_BY_SIDE_MAX_QUBITS", -1)


def run_sweep(num_qubits: int, sets: int, **options):
    circuit, parameters = ansatz(num_qubits)
    return GPUSimulator(device="CPU").run(circuit, parameter_binds=binds(parameters, sets, 3),
                                          shots=200, seed_simulator=11, memory=True,
                                          **options).result()


@pytest.mark.parametrize("precision", ["double", "single"])
def test_side_by_side_runs_give_the_answers_of_runs_one_by_one(precision, monkeypatch):
    threads = cpu.side_by_side_runs(QUBITS)
    if threads < 2:
        pytest.skip("Numba has one thread here, so runs never go side by side")
    together = run_sweep(QUBITS, 9, precision=precision)
    assert together.metadata["parallel_experiments"] == threads
    monkeypatch.setattr(cpu, "SIDE_BY_SIDE_MAX_QUBITS", -1)
    alone = run_sweep(QUBITS, 9, precision=precision)
    assert alone.metadata["parallel_experiments"] == 1
    assert len(together.results) == len(alone.results) == 9
    for j in range(9):
        assert together.get_memory(j) == alone.get_memory(j)
        assert together.results[j].seed_simulator == alone.results[j].seed_simulator
        np.testing.assert_array_equal(np.asarray(together.get_statevector(j)),
                                      np.asarray(alone.get_statevector(j)))
    # Bindings are not all alike: a mix-up of their order would show.
    assert len({tuple(together.get_memory(j)[:20]) for j in range(9)}) == 9


def test_a_list_of_circuits_goes_side_by_side_with_the_answers_of_one_by_one(monkeypatch):
    threads = cpu.side_by_side_runs(QUBITS)
    if threads < 2:
        pytest.skip("Numba has one thread here, so runs never go side by side")
    circuit, parameters = ansatz(QUBITS)
    values = np.random.default_rng(8).uniform(-np.pi, np.pi, (5, len(parameters)))
    circuits = [circuit.assign_parameters(row) for row in values]
    circuits.insert(2, ansatz(10)[0].assign_parameters([0.3] * 10))  # a smaller one between
    for j, bound in enumerate(circuits):
        bound.name = f"circuit{j}"

    def run():
        return GPUSimulator(device="CPU").run(circuits, shots=100, seed_simulator=4,
                                              memory=True).result()

    together = run()
    assert together.metadata["parallel_experiments"] == threads
    monkeypatch.setattr(cpu, "SIDE_BY_SIDE_MAX_QUBITS", -1)
    alone = run()
    assert alone.metadata["parallel_experiments"] == 1
    for j in range(len(circuits)):
        assert together.get_memory(j) == alone.get_memory(j)
        np.testing.assert_array_equal(np.asarray(together.get_statevector(j)),
                                      np.asarray(alone.get_statevector(j)))
    assert [result.header["name"] for result in together.results] == [
        f"circuit{j}" for j in range(len(circuits))]
    assert len(together.get_statevector(2)) == 1 << 10


def test_a_single_run_and_small_states_go_alone():
    circuit, parameters = ansatz(QUBITS)
    assert GPUSimulator(device="CPU").run(
        circuit.assign_parameters([0.1] * QUBITS), shots=10).result().metadata[
        "parallel_experiments"] == 1
    serial, serial_parameters = ansatz(QUBITS - 1)  # its kernels are serial anyway
    result = GPUSimulator(device="CPU").run(serial, parameter_binds=binds(serial_parameters, 5, 1),
                                            shots=10).result()
    assert result.metadata["parallel_experiments"] == 1
    small, small_parameters = ansatz(4)
    result = GPUSimulator(device="CPU").run(small, parameter_binds=binds(small_parameters, 5, 1),
                                            shots=10).result()
    assert result.metadata["parallel_experiments"] == 1


def test_progress_counts_every_run(reaper):
    circuit, parameters = ansatz(QUBITS)
    job = GPUSimulator(device="CPU").run(circuit, parameter_binds=binds(parameters, 12, 2),
                                         shots=50)
    reaper.append(job)
    job.result()
    assert job.status() is JobStatus.DONE
    done, total = job.progress()
    assert done == total > 0


def test_a_failing_run_fails_the_job_with_its_cause(monkeypatch):
    original = Execution.run
    calls = []

    def failing(self, program, *args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise RuntimeError("the fourth run broke")
        return original(self, program, *args, **kwargs)

    monkeypatch.setattr(Execution, "run", failing)
    circuit, parameters = ansatz(QUBITS)
    job = GPUSimulator(device="CPU").run(circuit, parameter_binds=binds(parameters, 10, 2),
                                         shots=20)
    with pytest.raises(Exception, match="the fourth run broke"):
        job.result()
    assert job.status() is JobStatus.ERROR


def test_a_cancelled_sweep_stops_its_runs(reaper):
    circuit, parameters = ansatz(16)
    job = GPUSimulator(device="CPU").run(circuit, parameter_binds=binds(parameters, 2000, 4),
                                         shots=10)
    reaper.append(job)
    assert wait_until(lambda: job.progress()[0] > 0, timeout=60)
    job.cancel()
    assert wait_until(lambda: job.status() is JobStatus.CANCELLED, timeout=10)
    assert job.progress()[0] < job.progress()[1]
    # Nothing of the job is left running on the shared pool: a task submitted now starts at
    # once on a free worker.
    started = side_by_side._shared_pool().submit(lambda: True)
    assert started.result(timeout=10)


def primitive_runs(num_qubits: int, sets: int):
    from qiskit.quantum_info import SparsePauliOp

    from gpuprovider.primitives import EstimatorV2, SamplerV2

    circuit, parameters = ansatz(num_qubits)
    unitary = circuit.remove_final_measurements(inplace=False)
    unitary.data = [instruction for instruction in unitary.data
                    if instruction.operation.name != "save_statevector"]
    values = np.random.default_rng(5).uniform(-np.pi, np.pi, (sets, len(parameters)))
    observables = [SparsePauliOp.from_sparse_list([("ZZ", [q, q + 1], 1.0)], num_qubits)
                   for q in range(num_qubits - 1)] + [
        SparsePauliOp.from_sparse_list([("X" * num_qubits, range(num_qubits), 0.5),
                                        ("Y", [3], 0.25)], num_qubits)]
    estimator = EstimatorV2(options={"backend_options": {"device": "CPU"}})
    evs = estimator.run([(unitary, [[o] for o in observables], values)]
                        ).result()[0].data.evs
    sampler = SamplerV2(seed=9, options={"backend_options": {"device": "CPU"}})
    measured = unitary.copy()
    measured.measure_all()
    bits = sampler.run([(measured, values)], shots=64).result()[0].data.meas
    exact = [np.array([Statevector(unitary.assign_parameters(row)).expectation_value(o).real
                       for o in observables]) for row in values]
    return evs, bits, np.array(exact).T


def test_primitives_run_sets_side_by_side_with_the_answers_of_sets_one_by_one(monkeypatch):
    if cpu.side_by_side_runs(QUBITS) < 2:
        pytest.skip("Numba has one thread here, so runs never go side by side")
    workers = []
    original = side_by_side.in_order

    def recorded(items, run, at_once, kernels, control):
        workers.append(at_once)
        return original(items, run, at_once, kernels, control)

    monkeypatch.setattr(side_by_side, "in_order", recorded)
    evs, bits, exact = primitive_runs(QUBITS, 6)
    assert workers == [cpu.side_by_side_runs(QUBITS)] * 2  # the estimator's pub, the sampler's
    np.testing.assert_allclose(evs, exact, atol=1e-10)
    monkeypatch.setattr(cpu, "SIDE_BY_SIDE_MAX_QUBITS", -1)
    alone_evs, alone_bits, _ = primitive_runs(QUBITS, 6)
    assert workers[2:] == [1, 1]
    np.testing.assert_allclose(evs, alone_evs, rtol=0, atol=1e-13)
    assert bits == alone_bits
    assert len({tuple(sorted(bits.get_int_counts(j).items())) for j in range(6)}) == 6


def test_noisy_estimator_batches_go_side_by_side_with_the_answers_of_one_by_one(monkeypatch):
    noise = pytest.importorskip("qiskit_aer.noise")
    from qiskit.quantum_info import SparsePauliOp

    from gpuprovider.primitives import EstimatorV2

    if cpu.side_by_side_runs(QUBITS) < 2:
        pytest.skip("Numba has one thread here, so runs never go side by side")
    circuit = ansatz(QUBITS)[0].assign_parameters(np.linspace(0.1, 1.0, QUBITS))
    circuit.remove_final_measurements()
    circuit.data = [instruction for instruction in circuit.data
                    if instruction.operation.name != "save_statevector"]
    model = noise.NoiseModel()
    model.add_all_qubit_quantum_error(noise.amplitude_damping_error(0.05), ["ry"])
    observables = [SparsePauliOp.from_sparse_list([("Z", [q], 1.0)], QUBITS)
                   for q in range(QUBITS)]
    workers = []
    original = side_by_side.in_order

    def recorded(items, run, at_once, kernels, control):
        workers.append(at_once)
        return original(items, run, at_once, kernels, control)

    def estimate():
        estimator = EstimatorV2(options={
            "backend_options": {"device": "CPU", "noise_model": model, "method": "statevector"},
            "run_options": {"seed_simulator": 6}})
        return estimator.run([(circuit, observables)], precision=0.1).result()[0].data

    monkeypatch.setattr(side_by_side, "in_order", recorded)
    together = estimate()
    assert workers == [cpu.side_by_side_runs(QUBITS)]
    monkeypatch.setattr(cpu, "SIDE_BY_SIDE_MAX_QUBITS", -1)
    alone = estimate()
    assert workers[1:] == [1]
    # Serial and chunked reductions round apart in the last bits; the draws agree.
    np.testing.assert_allclose(together.evs, alone.evs, rtol=0, atol=1e-12)
    np.testing.assert_allclose(together.stds, alone.stds, rtol=0, atol=1e-12)
    assert np.all(together.stds > 0)
