"""The primitives' job: a :class:`~gpuprovider.job.GPUJob` behind Qiskit's primitive-job API."""

from __future__ import annotations

from collections.abc import Callable

from qiskit.primitives import BasePrimitiveJob, PrimitiveResult
from qiskit.providers import JobStatus

from ..job import GPUJob


class GPUPrimitiveJob(BasePrimitiveJob[PrimitiveResult, JobStatus]):
    """A primitive's pubs running on one background thread.

    ``status()`` never blocks; ``cancel()`` stops a running job before its next operation;
    ``result()`` raises ``JobError`` (chained to the cause) when the job failed or was
    cancelled. Made by ``SamplerV2.run`` and ``EstimatorV2.run``, already submitted.
    """

    def __init__(self, job: GPUJob) -> None:
        super().__init__(job.job_id())
        self._job = job

    def result(self, timeout: float | None = None) -> PrimitiveResult:
        """Wait for the job (at most ``timeout`` seconds) and return its PrimitiveResult."""
        return self._job.result(timeout)

    def status(self) -> JobStatus:
        return self._job.status()

    def done(self) -> bool:
        return self._job.done()

    def running(self) -> bool:
        return self._job.running()

    def cancelled(self) -> bool:
        return self._job.cancelled()

    def in_final_state(self) -> bool:
        return self._job.in_final_state()

    def cancel(self) -> bool:
        """Stop the job; True if it is (or will shortly be) CANCELLED."""
        return self._job.cancel()

    def wait_for_final_state(self, timeout: float | None = None, wait: float = 5,
                             callback: Callable | None = None) -> None:
        """As :meth:`GPUJob.wait_for_final_state`."""
        self._job.wait_for_final_state(timeout, wait, callback)

    def progress(self) -> tuple[int, int]:
        """``(parameter sets done, parameter sets in all)``; never blocks."""
        return self._job.progress()
