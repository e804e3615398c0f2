"""Memory admission: reservations against a fake device's memory, on real threads, and a
backend's jobs waiting in QUEUED for memory that running jobs hold (on a fake device whose
kernels the test holds and whose memory it sets)."""

from __future__ import annotations

import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from gpuprovider.kernels.precision import statevector_bytes
from qiskit import QuantumCircuit
from qiskit.providers import JobError, JobStatus
from support.fake_device import FakeKernels, fake_device
from testkit import ControlledWork, wait_until

from gpuprovider import GPUJob, GPUSimulator
from gpuprovider import device as devices
from gpuprovider.admission import POLL_SECONDS, MemoryAdmission
from gpuprovider.exceptions import CapacityError, JobCancelledError

WAIT_BOUND_SECONDS = 1.0
"""A request or job that should be admitted, or withdrawn on cancel, is within this long."""
STILL_WAITING_SECONDS = 3 * POLL_SECONDS
"""Long enough for a waiting request to re-read free memory a few times."""


class FakeMemory:
    """A device whose free memory is what the test says: ``total`` less ``used``."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0
        self.peak = 0
        self._lock = threading.Lock()

    def free(self) -> int:
        return self.total - self.used

    def allocate(self, num_bytes: int) -> None:
        with self._lock:
            self.used += num_bytes
            self.peak = max(self.peak, self.used)

    def deallocate(self, num_bytes: int) -> None:
        with self._lock:
            self.used -= num_bytes


@pytest.fixture
def memory() -> FakeMemory:
    return FakeMemory(total=100)


@pytest.fixture
def admission(memory: FakeMemory) -> MemoryAdmission:
    return MemoryAdmission(memory.free, memory.total, headroom=0.0)


class Request:
    """``admission.reserve(num_bytes, cancelled)`` on its own thread."""

    def __init__(self, admission: MemoryAdmission, num_bytes: int) -> None:
        self.cancelled = threading.Event()
        self.admitted = threading.Event()
        self.reservation = None
        self.error: BaseException | None = None
        self._admission = admission
        self._num_bytes = num_bytes
        self._thread = threading.Thread(target=self._reserve, daemon=True)
        self._thread.start()

    def _reserve(self) -> None:
        try:
            self.reservation = self._admission.reserve(self._num_bytes, self.cancelled)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            self.error = exc
        else:
            self.admitted.set()

    def join(self) -> None:
        self._thread.join(WAIT_BOUND_SECONDS)
        assert not self._thread.is_alive()


def queued_job(admission: MemoryAdmission, num_bytes: int, work: ControlledWork) -> GPUJob:
    def admit(control):
        return admission.reserve(num_bytes, control.cancel_requested)

    return GPUJob(None, str(uuid.uuid4()), work, admit=admit)


# --- MemoryAdmission ----------------------------------------------------------------------------


def test_request_that_fits_is_admitted_at_once_and_released_exactly_once(admission):
    start = time.perf_counter()
    reservation = admission.reserve(60)
    assert time.perf_counter() - start < POLL_SECONDS
    assert admission.reserved == 60

    reservation.release()
    reservation.release()
    assert admission.reserved == 0
    with admission.reserve(100):
        assert admission.reserved == 100
    assert admission.reserved == 0


def test_request_that_does_not_fit_waits_until_a_reservation_is_released(admission):
    holder = admission.reserve(60)
    request = Request(admission, 60)

    assert wait_until(lambda: admission.waiting == 1, WAIT_BOUND_SECONDS)
    assert not request.admitted.wait(STILL_WAITING_SECONDS)

    holder.release()
    assert request.admitted.wait(WAIT_BOUND_SECONDS)
    assert admission.reserved == 60 and admission.waiting == 0
    request.reservation.release()
    assert admission.reserved == 0


def test_reservations_count_against_memory_the_device_still_shows_free(admission):
    # Admitted jobs may not have allocated yet: free memory alone would admit all three.
    first = admission.reserve(40)
    second = admission.reserve(40)
    third = Request(admission, 40)

    assert not third.admitted.wait(STILL_WAITING_SECONDS)
    first.release()
    assert third.admitted.wait(WAIT_BOUND_SECONDS)
    second.release()
    third.reservation.release()


def test_waiting_request_rereads_free_memory_that_another_process_frees(memory, admission):
    memory.allocate(80)
    request = Request(admission, 50)
    assert not request.admitted.wait(STILL_WAITING_SECONDS)

    memory.deallocate(80)
    assert request.admitted.wait(WAIT_BOUND_SECONDS)
    request.reservation.release()


def test_oldest_waiting_request_is_admitted_first_and_not_starved_by_smaller_ones(admission):
    holder = admission.reserve(60)
    large = Request(admission, 60)
    assert wait_until(lambda: admission.waiting == 1, WAIT_BOUND_SECONDS)
    small = [Request(admission, 30) for _ in range(3)]

    # 40 bytes are free, enough for a small request, but the large one came first.
    assert wait_until(lambda: admission.waiting == 4, WAIT_BOUND_SECONDS)
    time.sleep(STILL_WAITING_SECONDS)
    assert not any(request.admitted.is_set() for request in small)

    holder.release()
    assert large.admitted.wait(WAIT_BOUND_SECONDS)
    assert wait_until(lambda: sum(r.admitted.is_set() for r in small) == 1, WAIT_BOUND_SECONDS)
    large.reservation.release()
    assert wait_until(lambda: all(r.admitted.is_set() for r in small), WAIT_BOUND_SECONDS)
    for request in small:
        request.reservation.release()
    assert admission.reserved == 0


def test_cancelled_request_is_withdrawn_promptly_without_reserving(admission):
    holder = admission.reserve(60)
    request = Request(admission, 60)
    assert wait_until(lambda: admission.waiting == 1, WAIT_BOUND_SECONDS)

    start = time.perf_counter()
    request.cancelled.set()
    request.join()

    assert time.perf_counter() - start < WAIT_BOUND_SECONDS
    assert isinstance(request.error, JobCancelledError)
    assert admission.waiting == 0 and admission.reserved == 60
    holder.release()
    assert admission.reserved == 0


def test_request_already_cancelled_is_not_admitted(admission):
    cancelled = threading.Event()
    cancelled.set()

    with pytest.raises(JobCancelledError):
        admission.reserve(10, cancelled)
    assert admission.reserved == 0 and admission.waiting == 0


def test_request_larger_than_capacity_raises_at_once():
    admission = MemoryAdmission(lambda: 1000, 1000, headroom=0.1)
    assert admission.capacity == 900

    start = time.perf_counter()
    with pytest.raises(CapacityError, match="901"):
        admission.reserve(901)
    assert time.perf_counter() - start < POLL_SECONDS
    assert admission.reserved == 0 and admission.waiting == 0


def test_headroom_is_kept_free():
    admission = MemoryAdmission(lambda: 1000, 1000, headroom=0.1)
    first = admission.reserve(850)
    second = Request(admission, 60)

    assert not second.admitted.wait(STILL_WAITING_SECONDS)
    first.release()
    assert second.admitted.wait(WAIT_BOUND_SECONDS)
    second.reservation.release()


def test_many_concurrent_requests_never_exceed_the_capacity(memory, admission):
    lock = threading.Lock()
    reserved_now = 0
    reserved_peak = 0

    def job(seed: int) -> None:
        nonlocal reserved_now, reserved_peak
        rng = random.Random(seed)
        for _ in range(15):
            size = rng.randint(5, 45)
            with admission.reserve(size):
                with lock:
                    reserved_now += size
                    reserved_peak = max(reserved_peak, reserved_now)
                memory.allocate(size)
                time.sleep(rng.uniform(0, 0.003))
                memory.deallocate(size)
                with lock:
                    reserved_now -= size

    with ThreadPoolExecutor(max_workers=16) as pool:
        for future in [pool.submit(job, seed) for seed in range(16)]:
            future.result(timeout=60)

    assert 0 < reserved_peak <= admission.capacity
    assert memory.peak <= memory.total
    assert admission.reserved == 0 and admission.waiting == 0 and memory.used == 0


def test_each_device_has_one_admission():
    cpu = devices.CPU.admission

    assert devices.CPU.admission is cpu
    assert devices.by_name("cpu") is devices.CPU
    assert 0 < cpu.capacity <= cpu.total_memory


# --- GPUJob with admission ----------------------------------------------------------------------


def test_job_stays_queued_until_admitted_then_runs(admission, reaper):
    holder = admission.reserve(60)
    work = ControlledWork()
    job = queued_job(admission, 60, work)
    reaper.append(job)
    job.submit()

    assert wait_until(lambda: admission.waiting == 1, WAIT_BOUND_SECONDS)
    assert not work.started.wait(STILL_WAITING_SECONDS)
    assert job.status() is JobStatus.QUEUED and work.calls == 0

    holder.release()
    assert work.started.wait(WAIT_BOUND_SECONDS)
    assert job.status() is JobStatus.RUNNING
    assert admission.reserved == 60
    work.release.set()
    assert job.result(timeout=10) is work.result
    assert admission.reserved == 0


def test_cancel_while_waiting_for_memory_cancels_promptly_and_reserves_nothing(
    admission, reaper
):
    holder = admission.reserve(60)
    work = ControlledWork()
    job = queued_job(admission, 60, work)
    reaper.append(job)
    job.submit()
    assert wait_until(lambda: admission.waiting == 1, WAIT_BOUND_SECONDS)

    start = time.perf_counter()
    assert job.cancel() is True
    assert wait_until(lambda: job.status() is JobStatus.CANCELLED, WAIT_BOUND_SECONDS)
    assert time.perf_counter() - start < WAIT_BOUND_SECONDS

    with pytest.raises(JobError, match="cancel"):
        job.result(timeout=1)
    assert work.calls == 0
    assert admission.waiting == 0 and admission.reserved == 60
    holder.release()
    assert admission.reserved == 0


@pytest.mark.parametrize("fails", [False, True], ids=["DONE", "ERROR"])
def test_reservation_is_released_when_the_job_ends(admission, fails):
    work = ControlledWork()
    if fails:
        work.error = RuntimeError("simulated failure")
    job = queued_job(admission, 70, work)
    job.submit()
    assert work.started.wait(WAIT_BOUND_SECONDS)
    assert admission.reserved == 70

    work.release.set()
    job.wait_for_final_state(timeout=10, wait=0.05)

    assert job.status() is (JobStatus.ERROR if fails else JobStatus.DONE)
    assert admission.reserved == 0


def test_cancel_of_a_running_job_releases_its_reservation(admission):
    def work(control):
        while True:
            control.check()
            time.sleep(0.001)

    job = GPUJob(None, str(uuid.uuid4()), work,
                 admit=lambda control: admission.reserve(70, control.cancel_requested))
    job.submit()
    assert wait_until(lambda: job.status() is JobStatus.RUNNING, WAIT_BOUND_SECONDS)

    assert job.cancel() is True
    assert job.status() is JobStatus.CANCELLED
    assert admission.reserved == 0


# --- the CPU backend ----------------------------------------------------------------------------

NUM_QUBITS = 16
JOB_BYTES = statevector_bytes(NUM_QUBITS, "double")


def basis_circuit(value: int) -> QuantumCircuit:
    """Measures ``value``; opens with a dense gate (h), so the kernel gate holds it."""
    circuit = QuantumCircuit(NUM_QUBITS)
    circuit.h(range(NUM_QUBITS))
    circuit.h(range(NUM_QUBITS))
    for qubit in range(NUM_QUBITS):
        if (value >> qubit) & 1:
            circuit.x(qubit)
    circuit.measure_all()
    return circuit


def device_for_one_job(kernels: FakeKernels | None = None) -> devices.Device:
    """A fake device with room for one 16-qubit job at a time."""
    one_and_a_half_jobs = JOB_BYTES * 3 // 2
    return fake_device(kernels, total_memory=one_and_a_half_jobs,
                       free_memory=one_and_a_half_jobs)


@pytest.fixture
def kernel_gate() -> FakeKernels:
    kernels = FakeKernels(hold=True)
    yield kernels
    kernels.resume.set()


def test_second_job_waits_queued_for_the_memory_the_first_holds(kernel_gate, reaper):
    device = device_for_one_job(kernel_gate)
    cpu_memory_for_one_job = device.admission
    backend = GPUSimulator(device=device)
    first = backend.run(basis_circuit(0b101), shots=40)
    reaper.append(first)
    assert kernel_gate.entered.wait(30)
    second = backend.run(basis_circuit(0b110), shots=30)
    reaper.append(second)

    assert wait_until(lambda: cpu_memory_for_one_job.waiting == 1, WAIT_BOUND_SECONDS)
    time.sleep(STILL_WAITING_SECONDS)
    assert first.status() is JobStatus.RUNNING
    assert second.status() is JobStatus.QUEUED

    kernel_gate.resume.set()
    assert first.result(timeout=30).get_counts() == {format(0b101, "016b"): 40}
    assert second.result(timeout=30).get_counts() == {format(0b110, "016b"): 30}
    assert cpu_memory_for_one_job.reserved == 0


def test_job_that_can_never_fit_fails_in_run_with_bytes_and_hint():
    device = device_for_one_job()
    cpu_memory_for_one_job = device.admission
    backend = GPUSimulator(device=device)
    circuit = basis_circuit(0)
    wide = QuantumCircuit(NUM_QUBITS + 1, name="wide")
    wide.h(range(NUM_QUBITS + 1))

    with pytest.raises(CapacityError) as info:
        backend.run(wide)
    message = str(info.value)
    assert f"{2 * JOB_BYTES:,} bytes" in message
    assert f"{cpu_memory_for_one_job.capacity:,} bytes" in message
    assert "precision='single'" in message
    assert backend.run(circuit, shots=5).result(timeout=30).get_counts() == {"0" * 16: 5}


def test_failed_job_gives_its_statevector_back():
    failure = RuntimeError("simulated kernel failure")
    kernels = FakeKernels(fail={"apply_matrix": failure, "apply_tile_pass": failure})
    states = kernels.failed_states
    job = GPUSimulator(device=fake_device(kernels)).run(basis_circuit(0), shots=5)
    job.wait_for_final_state(timeout=30, wait=0.05)

    assert job.status() is JobStatus.ERROR
    assert states and states[0]() is None, "the failed job's traceback keeps its state alive"
    with pytest.raises(JobError, match="simulated kernel failure"):
        job.result()
