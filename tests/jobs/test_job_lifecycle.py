"""GPUJob lifecycle on real threads: submission, status, progress, waiting, failure, cancel.

Tests that need a job to stay RUNNING for a known moment run it on a fake device whose
kernels hold the job thread inside its first gate operation (``kernel_gate``), so nothing
depends on how fast the machine is; tests of completion markers complete the fake device's
markers themselves; the cancel and responsiveness tests use genuinely long 20-22 qubit
circuits on the CPU.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from qiskit import QuantumCircuit
from qiskit.providers import JobError, JobStatus, JobTimeoutError, JobV1
from support.fake_device import FakeKernels, fake_device
from testkit import ControlledWork, random_circuit, wait_until

from gpuprovider import GPUJob, GPUSimulator

JOB_THREAD_PREFIX = "gpuprovider-job-"
CANCEL_BOUND_SECONDS = 1.0
"""The acceptance criterion: a cancelled running job is CANCELLED within this long."""


def bell_circuit() -> QuantumCircuit:
    circuit = QuantumCircuit(2, 2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure([0, 1], [0, 1])
    return circuit


def job_thread_names() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith(JOB_THREAD_PREFIX)}


def thread_name_of(job: GPUJob) -> str:
    return JOB_THREAD_PREFIX + job.job_id()[:8]


@pytest.fixture(scope="module", autouse=True)
def warm_kernels() -> None:
    """Load the compiled CPU kernels (serial and parallel) before any timing bound."""
    circuit = random_circuit(15, 30, seed=0)
    circuit.h(0)
    circuit.measure_all()
    GPUSimulator(device="CPU").run(circuit, shots=10).result()


@pytest.fixture
def cpu_backend() -> GPUSimulator:
    return GPUSimulator(device="CPU")


@pytest.fixture
def kernel_gate() -> FakeKernels:
    """Kernels that hold the first gate operation until ``resume`` is set."""
    kernels = FakeKernels(hold=True)
    yield kernels
    kernels.resume.set()


@pytest.fixture
def gated_backend(kernel_gate: FakeKernels) -> GPUSimulator:
    return GPUSimulator(device=fake_device(kernel_gate))


def gated_circuit() -> QuantumCircuit:
    """16 qubits whose first operation is a dense matrix (h), so the kernel gate holds it."""
    circuit = QuantumCircuit(16)
    circuit.h(range(16))
    circuit.cx(0, 15)
    circuit.measure_all()
    return circuit


# --- submission -----------------------------------------------------------------------------


def test_run_returns_submitted_jobs_with_unique_ids(cpu_backend):
    jobs = [cpu_backend.run(bell_circuit(), shots=50) for _ in range(5)]

    for job in jobs:
        assert isinstance(job, GPUJob)
        assert isinstance(job, JobV1)
        assert job.backend() is cpu_backend
        assert job.status() is not JobStatus.INITIALIZING
        assert isinstance(job.job_id(), str) and job.job_id()
    assert len({job.job_id() for job in jobs}) == len(jobs)
    for job in jobs:
        result = job.result(timeout=30)
        assert result.job_id == job.job_id()
        assert job.status() is JobStatus.DONE


def test_job_constructed_directly_is_initializing_until_submitted(cpu_backend):
    work = ControlledWork(steps=3)
    job = GPUJob(cpu_backend, str(uuid.uuid4()), work, total_steps=3)

    assert job.status() is JobStatus.INITIALIZING
    assert not (job.done() or job.running() or job.cancelled() or job.in_final_state())
    assert job.progress() == (0, 3)
    assert work.calls == 0
    assert thread_name_of(job) not in job_thread_names()

    job.submit()
    assert job.status() in (JobStatus.QUEUED, JobStatus.RUNNING)
    assert work.started.wait(10)
    assert job.status() is JobStatus.RUNNING
    assert job.running() and not job.in_final_state()
    assert job.progress() == (0, 3)

    work.release.set()
    assert job.result(timeout=10) is work.result
    assert job.status() is JobStatus.DONE
    assert job.done() and job.in_final_state() and not job.running()
    assert job.progress() == (3, 3)
    assert work.calls == 1


def test_submit_twice_raises_job_error(cpu_backend):
    work = ControlledWork()
    job = GPUJob(cpu_backend, str(uuid.uuid4()), work)
    job.submit()
    with pytest.raises(JobError, match="already submitted"):
        job.submit()
    work.release.set()
    job.result(timeout=10)
    assert work.calls == 1

    submitted = cpu_backend.run(bell_circuit(), shots=10)
    with pytest.raises(JobError):
        submitted.submit()
    assert sum(submitted.result(timeout=30).get_counts().values()) == 10


# --- status and progress ----------------------------------------------------------------------


def test_real_job_goes_running_then_done_and_progress_runs_zero_to_total(
    gated_backend, kernel_gate
):
    job = gated_backend.run(gated_circuit(), shots=20)
    assert job.status() in (JobStatus.QUEUED, JobStatus.RUNNING)

    assert kernel_gate.entered.wait(10)
    assert job.status() is JobStatus.RUNNING
    assert job.running() and not job.done() and not job.in_final_state()
    done, total = job.progress()
    assert done == 0
    assert total > 0

    kernel_gate.resume.set()
    counts = job.result(timeout=30).get_counts()
    assert sum(counts.values()) == 20
    assert job.status() is JobStatus.DONE
    assert job.done() and job.in_final_state() and not job.running() and not job.cancelled()
    assert job.progress() == (total, total)


def test_status_never_blocks_and_progress_advances_during_a_long_job(cpu_backend, reaper):
    job = cpu_backend.run(random_circuit(20, 600, seed=1))
    reaper.append(job)
    assert wait_until(lambda: job.status() is JobStatus.RUNNING, 30)

    start = time.perf_counter()
    statuses = [job.status() for _ in range(1000)]
    elapsed = time.perf_counter() - start
    assert elapsed < 0.5, f"1000 status() calls took {elapsed:.3f} s while the job ran"
    assert JobStatus.RUNNING in statuses

    seen = [job.progress()]
    total = seen[0][1]
    while not job.in_final_state():
        seen.append(job.progress())
        time.sleep(0.002)
    job.result(timeout=30)
    seen.append(job.progress())

    assert all(step_total == total for _, step_total in seen)
    done_values = [done for done, _ in seen]
    assert done_values == sorted(done_values), "progress went backwards"
    assert any(0 < done < total for done in done_values), "no intermediate progress seen"
    assert seen[-1] == (total, total)


# --- result() and wait_for_final_state() --------------------------------------------------------


def test_result_timeout_raises_and_job_keeps_running(gated_backend, kernel_gate):
    job = gated_backend.run(gated_circuit(), shots=30)
    assert kernel_gate.entered.wait(10)

    start = time.perf_counter()
    with pytest.raises(JobTimeoutError):
        job.result(timeout=0.01)
    assert time.perf_counter() - start < 1.0
    assert job.status() is JobStatus.RUNNING

    kernel_gate.resume.set()
    assert sum(job.result(timeout=30).get_counts().values()) == 30
    assert job.status() is JobStatus.DONE


def test_wait_for_final_state_calls_back_and_returns_when_job_finishes(
    gated_backend, kernel_gate
):
    job = gated_backend.run(gated_circuit(), shots=10)
    assert kernel_gate.entered.wait(10)
    calls = []
    releaser = threading.Timer(0.3, kernel_gate.resume.set)
    releaser.start()

    start = time.perf_counter()
    job.wait_for_final_state(
        timeout=60, wait=20, callback=lambda *args: calls.append(args)
    )
    elapsed = time.perf_counter() - start
    releaser.join()

    assert elapsed < 10, f"returned after {elapsed:.1f} s: it slept out wait=20"
    assert job.status() is JobStatus.DONE
    assert calls, "callback never called while the job ran"
    job_id, status, passed_job = calls[0]
    assert job_id == job.job_id()
    assert status is JobStatus.RUNNING
    assert passed_job is job


def test_wait_for_final_state_calls_back_repeatedly_on_a_real_job(cpu_backend):
    job = cpu_backend.run(random_circuit(20, 300, seed=2))
    calls = []

    job.wait_for_final_state(timeout=60, wait=0.02, callback=lambda *args: calls.append(args))

    assert job.in_final_state()
    assert job.status() is JobStatus.DONE
    assert len(calls) >= 2
    for job_id, status, passed_job in calls:
        assert job_id == job.job_id()
        assert status in (JobStatus.QUEUED, JobStatus.RUNNING)
        assert passed_job is job


def test_wait_for_final_state_times_out_on_a_running_job(gated_backend, kernel_gate):
    job = gated_backend.run(gated_circuit(), shots=10)
    assert kernel_gate.entered.wait(10)

    start = time.perf_counter()
    with pytest.raises(JobTimeoutError):
        job.wait_for_final_state(timeout=0.2, wait=5)
    elapsed = time.perf_counter() - start
    assert 0.15 <= elapsed < 3, f"timed out after {elapsed:.2f} s instead of about 0.2 s"
    assert job.status() is JobStatus.RUNNING

    kernel_gate.resume.set()
    job.wait_for_final_state(timeout=30, wait=0.1)
    assert job.status() is JobStatus.DONE


# --- failure ------------------------------------------------------------------------------------


class KernelFailure(RuntimeError):
    pass


def test_error_in_the_job_thread_gives_error_status_and_chained_job_error():
    failure = KernelFailure("simulated kernel failure")
    kernels = FakeKernels(fail={"apply_matrix": failure, "apply_tile_pass": failure})
    job = GPUSimulator(device=fake_device(kernels)).run(gated_circuit(), shots=10)

    with pytest.raises(JobError) as info:
        job.result(timeout=30)
    assert isinstance(info.value.__cause__, KernelFailure)
    message = str(info.value)
    assert "KernelFailure" in message and "simulated kernel failure" in message
    assert job.status() is JobStatus.ERROR
    assert job.in_final_state() and not job.done() and not job.running()
    assert job.cancel() is False
    assert job.status() is JobStatus.ERROR
    assert wait_until(lambda: thread_name_of(job) not in job_thread_names(), 2)


def test_error_in_directly_constructed_job_is_reported(cpu_backend):
    cause = ValueError("bad things")
    work = ControlledWork(error=cause)
    job = GPUJob(cpu_backend, str(uuid.uuid4()), work)
    job.submit()
    work.release.set()

    job.wait_for_final_state(timeout=10, wait=0.05)
    assert job.status() is JobStatus.ERROR
    with pytest.raises(JobError, match="ValueError: bad things") as info:
        job.result()
    assert info.value.__cause__ is cause


# --- cancel -------------------------------------------------------------------------------------


def test_cancel_running_22_qubit_cpu_job_reaches_cancelled_within_a_second(
    cpu_backend, reaper
):
    job = cpu_backend.run(random_circuit(22, 600, seed=3))
    reaper.append(job)
    assert wait_until(
        lambda: job.status() is JobStatus.RUNNING and job.progress()[0] > 0, 30
    ), f"job did not start: {job.status()}, progress {job.progress()}"
    assert not job.in_final_state(), "job finished before it could be cancelled"

    start = time.perf_counter()
    accepted = job.cancel()
    wait_until(
        lambda: job.status() is JobStatus.CANCELLED,
        max(0.0, CANCEL_BOUND_SECONDS - (time.perf_counter() - start)),
    )
    elapsed = time.perf_counter() - start

    assert accepted is True
    assert job.status() is JobStatus.CANCELLED
    assert elapsed < CANCEL_BOUND_SECONDS, f"took {elapsed:.2f} s to reach CANCELLED"
    assert job.cancelled() and job.in_final_state() and not job.done()
    done, total = job.progress()
    assert done < total
    with pytest.raises(JobError, match="cancel"):
        job.result(timeout=1)
    assert wait_until(lambda: thread_name_of(job) not in job_thread_names(), 1.0), (
        "the cancelled job's thread is still alive"
    )
    assert job.cancel() is False
    assert job.status() is JobStatus.CANCELLED


def test_cancel_finished_job_returns_false_and_keeps_its_result(cpu_backend):
    job = cpu_backend.run(bell_circuit(), shots=64, seed_simulator=4)
    counts = job.result(timeout=30).get_counts()

    assert job.cancel() is False
    assert job.status() is JobStatus.DONE
    assert job.result().get_counts() == counts


def test_cancel_unsubmitted_job_cancels_it_without_running(cpu_backend):
    work = ControlledWork()
    job = GPUJob(cpu_backend, str(uuid.uuid4()), work, total_steps=5)
    threads_before = job_thread_names()

    assert job.cancel() is True
    assert job.status() is JobStatus.CANCELLED
    assert job.cancelled() and job.in_final_state()
    with pytest.raises(JobError, match="cancel"):
        job.result(timeout=1)
    with pytest.raises(JobError):
        job.submit()
    assert work.calls == 0
    assert job_thread_names() <= threads_before
    assert job.progress() == (0, 5)


# --- completion markers -------------------------------------------------------------------------


def marker_circuit() -> QuantumCircuit:
    """Six qubits (run op by op, unplanned): a few gates and final measurements."""
    circuit = QuantumCircuit(6)
    circuit.h(0)
    for qubit in range(5):
        circuit.cx(qubit, qubit + 1)
    circuit.measure_all()
    return circuit


def test_status_and_progress_come_from_the_devices_completion_markers(reaper):
    """The host finishes enqueueing long before the fake device "runs" anything: the job stays
    RUNNING, its progress moves only as markers complete, and DONE comes with the last one."""
    kernels = FakeKernels(manual_markers=True)
    job = GPUSimulator(device=fake_device(kernels)).run(marker_circuit(), shots=50,
                                                        seed_simulator=3)
    reaper.append(job)
    total = job.progress()[1]
    assert total > 1
    # one marker per operation (the policy's marker_interval is 1) and one when it ends
    assert wait_until(lambda: len(kernels.markers) == total + 1, 30), len(kernels.markers)
    time.sleep(0.2)  # the host side has nothing left to do

    assert job.status() is JobStatus.RUNNING and job.running() and not job.done()
    assert job.progress() == (0, total)
    with pytest.raises(JobTimeoutError):
        job.result(timeout=0.1)

    seen = []
    for _ in range(total):
        kernels.complete_markers(1)
        seen.append(job.progress()[0])
        assert job.status() is JobStatus.RUNNING  # the end-of-circuit marker is still open
    assert seen == list(range(1, total + 1))
    kernels.complete_markers()
    assert job.status() is JobStatus.DONE and job.done()
    counts = job.result(timeout=10).get_counts()
    assert set(counts) == {"000000", "111111"} and sum(counts.values()) == 50


def test_a_primitive_jobs_progress_counts_parameter_sets_the_device_completed(reaper):
    from gpuprovider.primitives import SamplerV2
    from testkit import parameterized_circuit, random_values

    kernels = FakeKernels(manual_markers=True)
    circuit = parameterized_circuit(4, layers=1, seed=1)
    circuit.measure_all()
    sampler = SamplerV2(backend=GPUSimulator(device=fake_device(kernels)), seed=1)
    job = sampler.run([(circuit, random_values(circuit, (3,), seed=2))], shots=10)
    assert wait_until(lambda: len(kernels.markers) > 0, 30)
    assert job.progress() == (0, 3) and job.status() is JobStatus.RUNNING
    assert wait_until(lambda: kernels.complete_markers() == 0 and job.done(), 30)
    assert job.progress() == (3, 3)
    assert len(job.result(timeout=10)) == 1


@pytest.mark.gpu
def test_a_gpu_job_is_running_while_the_device_works_after_the_host_enqueued_it(reaper):
    """On a real GPU: a job whose host side enqueued a long stream of kernels and returned
    is RUNNING until the CUDA event after them completes, then DONE."""
    import numpy as np
    from gpuprovider import device as devices

    gpu = devices.GPU
    if not gpu.usable:
        pytest.skip(f"GPU not usable: {gpu.report.reason}")
    kernels = gpu.kernels
    held, markers, returned = [], [], threading.Event()

    def work(control):
        state = kernels.allocate(29, np.complex128)
        held.append(state)  # released after the test, so no free synchronises the stream
        hadamard = np.array([[1, 1], [1, -1]], dtype=np.complex128) / np.sqrt(2)
        for repeat in range(400):
            kernels.apply_matrix(state, np.array([repeat % 29], dtype=np.int64), hadamard)
            control.advance()
        markers.append(kernels.record_marker(state))
        control.mark(markers[0])
        returned.set()
        return "enqueued"

    # cuda.py's launch throttle lets the host run about 32 passes over the 8 GiB state
    # (about 0.1 s on an H200) ahead of the device
    job = GPUJob(GPUSimulator(device="GPU"), str(uuid.uuid4()), work, total_steps=400)
    job.submit()
    reaper.append(job)
    assert returned.wait(60)
    time.sleep(0.02)  # the work has returned and the job has closed its markers
    status = job.status()
    assert not markers[0].query(), "the device finished before the test looked"
    assert status is JobStatus.RUNNING  # the marker was still open when status() answered
    assert job.result(timeout=60) == "enqueued"
    assert job.status() is JobStatus.DONE and job.progress() == (400, 400)
    kernels.release(held.pop())
