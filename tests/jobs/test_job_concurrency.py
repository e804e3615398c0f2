"""Jobs alongside the caller and each other: GIL release, concurrent runs on one backend."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from qiskit import QuantumCircuit
from qiskit.circuit.library import UnitaryGate
from qiskit.exceptions import QiskitError
from qiskit.providers import JobStatus
from qiskit.quantum_info import random_unitary
from testkit import random_circuit, wait_until

from gpuprovider import GPUJob, GPUSimulator

IDLE_MEASURE_SECONDS = 0.3
BUSY_MEASURE_SECONDS = 0.6
MIN_SHARE_OF_IDLE_RATE = 0.2
"""A caller thread must keep at least this share of its idle loop rate while a job runs."""


def basis_state_circuit(num_qubits: int, value: int, seed: int) -> QuantumCircuit:
    """A scrambling circuit, its inverse, then X on the bits of ``value``: measures ``value``."""
    scramble = random_circuit(num_qubits, 150, seed)
    circuit = scramble.compose(scramble.inverse())
    for qubit in range(num_qubits):
        if (value >> qubit) & 1:
            circuit.x(qubit)
    circuit.measure_all()
    return circuit


def bitstring(value: int, num_qubits: int) -> str:
    return format(value, f"0{num_qubits}b")


def count_while(condition: Callable[[], bool], seconds: float) -> tuple[int, float]:
    """Python loop iterations this thread completes while ``condition`` holds, for at most
    ``seconds``; and the wall time that took. ``condition`` is checked every 10 ms."""
    start = time.perf_counter()
    stop = start + seconds
    count = 0
    while condition():
        chunk_end = min(stop, time.perf_counter() + 0.01)
        while time.perf_counter() < chunk_end:
            count += 1
        if chunk_end >= stop:
            break
    return count, time.perf_counter() - start


@pytest.fixture(scope="module", autouse=True)
def warm_kernels() -> None:
    """Load the compiled CPU kernels in both precisions before anything is timed."""
    circuit = random_circuit(15, 30, seed=0)
    circuit.append(UnitaryGate(random_unitary(32, seed=0)), range(5))
    circuit.measure_all()
    for precision in ("double", "single"):
        GPUSimulator(device="CPU", precision=precision).run(circuit, shots=10).result()


@pytest.fixture
def cpu_backend() -> GPUSimulator:
    return GPUSimulator(device="CPU")


def test_caller_thread_keeps_running_while_a_22_qubit_job_simulates(cpu_backend, reaper):
    # Each 5-qubit dense unitary on 22 qubits is one kernel call of a few tenths of a second;
    # a kernel holding the GIL would freeze this thread for the whole call, leaving it only
    # a switch interval (5 ms) between calls.
    circuit = QuantumCircuit(22)
    for start in range(0, 18, 2):
        circuit.append(UnitaryGate(random_unitary(32, seed=start)), range(start, start + 5))
    idle_iterations, idle_seconds = count_while(lambda: True, IDLE_MEASURE_SECONDS)

    job = cpu_backend.run(circuit)
    reaper.append(job)
    assert wait_until(lambda: job.status() is JobStatus.RUNNING, 30)
    busy_iterations, busy_seconds = count_while(
        lambda: job.status() is JobStatus.RUNNING, BUSY_MEASURE_SECONDS
    )

    assert busy_seconds >= 0.2, "the job finished before the caller could be measured"
    share = (busy_iterations / busy_seconds) / (idle_iterations / idle_seconds)
    assert share >= MIN_SHARE_OF_IDLE_RATE, (
        f"the caller ran at {share:.0%} of its idle rate while the job ran: "
        "a kernel holds the GIL"
    )


def test_jobs_submitted_from_many_threads_at_once_give_independent_results(cpu_backend):
    num_qubits = 18
    specs = [
        {
            "value": value,
            "shots": 50 + 17 * index,
            "precision": ("double", "single")[index % 2],
            "seed_simulator": 1000 + index,
            "memory": index % 3 == 0,
        }
        for index, value in enumerate([0, 1, 0b101, 2**17, 2**18 - 1, 12345])
    ]
    circuits = [
        basis_state_circuit(num_qubits, spec["value"], seed=index)
        for index, spec in enumerate(specs)
    ]
    barrier = threading.Barrier(len(specs))

    def submit(index: int) -> GPUJob:
        spec = specs[index]
        options = {name: value for name, value in spec.items() if name != "value"}
        barrier.wait(timeout=30)
        return cpu_backend.run(circuits[index], **options)

    with ThreadPoolExecutor(max_workers=len(specs)) as pool:
        jobs = list(pool.map(submit, range(len(specs))))

    assert len({job.job_id() for job in jobs}) == len(jobs)
    for spec, job in zip(specs, jobs):
        result = job.result(timeout=60)
        experiment = result.results[0]
        assert result.get_counts() == {bitstring(spec["value"], num_qubits): spec["shots"]}
        assert experiment.shots == spec["shots"]
        assert experiment.seed_simulator == spec["seed_simulator"]
        assert experiment.metadata["precision"] == spec["precision"]
        if spec["memory"]:
            assert len(result.get_memory()) == spec["shots"]
        else:
            with pytest.raises(QiskitError):
                result.get_memory()

    assert cpu_backend.options.shots == 1024
    assert cpu_backend.options.precision == "double"
    assert cpu_backend.options.memory is False
    assert cpu_backend.options.seed_simulator is None


def test_set_options_after_run_does_not_change_the_submitted_job(cpu_backend):
    circuit = basis_state_circuit(18, 3, seed=7)
    job = cpu_backend.run(circuit, seed_simulator=11)
    cpu_backend.set_options(shots=7, precision="single", memory=True, seed_simulator=99)
    later = cpu_backend.run(circuit)

    result = job.result(timeout=60)
    assert result.results[0].shots == 1024
    assert result.results[0].metadata["precision"] == "double"
    assert result.results[0].seed_simulator == 11
    assert result.get_counts() == {bitstring(3, 18): 1024}
    with pytest.raises(QiskitError):
        result.get_memory()

    later_result = later.result(timeout=60)
    assert later_result.results[0].shots == 7
    assert later_result.results[0].metadata["precision"] == "single"
    assert later_result.get_memory() == [bitstring(3, 18)] * 7


def test_cancelling_one_job_leaves_a_concurrent_job_on_the_same_backend_intact(
    cpu_backend, reaper
):
    doomed = cpu_backend.run(random_circuit(22, 600, seed=8))
    reaper.append(doomed)
    survivor = cpu_backend.run(basis_state_circuit(18, 0b1011, seed=9), shots=100)
    reaper.append(survivor)
    assert wait_until(
        lambda: doomed.status() is JobStatus.RUNNING and doomed.progress()[0] > 0, 30
    )

    assert doomed.cancel() is True
    assert doomed.status() is JobStatus.CANCELLED
    assert survivor.result(timeout=60).get_counts() == {bitstring(0b1011, 18): 100}
    assert survivor.status() is JobStatus.DONE
