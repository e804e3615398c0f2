"""The primitives' jobs: asynchronous, cancellable, and failing with their cause."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit.providers import JobError, JobStatus
from support.fake_device import FakeKernels, fake_device
from testkit import parameterized_circuit, random_values, wait_until

from gpuprovider import GPUSimulator
from gpuprovider.primitives import EstimatorV2, SamplerV2

CPU = {"backend_options": {"device": "CPU"}}


@pytest.fixture
def kernel_gate() -> FakeKernels:
    """Kernels that hold the job's first gate until ``resume`` is set."""
    kernels = FakeKernels(hold=True)
    yield kernels
    kernels.resume.set()


def estimator_pub(sets: int = 20):
    circuit = parameterized_circuit(4, layers=1, seed=1)
    return (circuit, ["ZZZZ", "XIXI"], random_values(circuit, (sets, 1), seed=2))


def sampler_pub(sets: int = 20):
    circuit = parameterized_circuit(4, layers=1, seed=1)
    circuit.measure_all()
    return (circuit, random_values(circuit, (sets,), seed=2))


@pytest.mark.parametrize("make", [
    lambda backend: EstimatorV2(backend=backend).run([estimator_pub()]),
    lambda backend: SamplerV2(backend=backend).run([sampler_pub()]),
], ids=["estimator", "sampler"])
def test_run_returns_at_once_and_cancel_stops_a_running_job(kernel_gate, make):
    job = make(GPUSimulator(device=fake_device(kernel_gate)))
    assert kernel_gate.entered.wait(10)  # the job's thread is inside a kernel; we are not
    assert job.status() is JobStatus.RUNNING and job.running() and not job.done()
    assert job.progress() == (0, 20)
    kernel_gate.resume.set()
    assert job.cancel()
    assert wait_until(job.cancelled, 5)
    assert job.status() is JobStatus.CANCELLED and job.in_final_state()
    with pytest.raises(JobError, match="cancelled"):
        job.result()


def test_a_failure_in_the_job_is_error_with_its_cause():
    kernels = FakeKernels(fail={"expectation_pauli_groups": RuntimeError("read-out kernel failed")})
    job = EstimatorV2(backend=GPUSimulator(device=fake_device(kernels))).run([estimator_pub(3)])
    with pytest.raises(JobError, match="read-out kernel failed") as raised:
        job.result(timeout=30)
    assert isinstance(raised.value.__cause__, RuntimeError)
    assert job.status() is JobStatus.ERROR


def test_progress_counts_parameter_sets_and_wait_for_final_state_returns():
    job = SamplerV2(options=CPU, seed=1).run([sampler_pub(7), sampler_pub(5)])
    calls = []
    job.wait_for_final_state(timeout=60, wait=0.01, callback=lambda *args: calls.append(args))
    assert job.done() and job.status() is JobStatus.DONE
    assert job.progress() == (12, 12)
    assert len(job.result()) == 2
    assert isinstance(job.job_id(), str) and job.job_id()


def test_result_timeout_leaves_the_job_running(kernel_gate):
    from qiskit.providers import JobTimeoutError

    backend = GPUSimulator(device=fake_device(kernel_gate))
    job = EstimatorV2(backend=backend).run([estimator_pub(2)])
    assert kernel_gate.entered.wait(10)
    with pytest.raises(JobTimeoutError):
        job.result(timeout=0.05)
    kernel_gate.resume.set()
    assert np.shape(job.result(timeout=30)[0].data.evs) == (2, 2)


def test_no_pubs_give_an_empty_result():
    assert len(EstimatorV2(options=CPU).run([]).result()) == 0
    assert len(SamplerV2(options=CPU).run([]).result()) == 0
