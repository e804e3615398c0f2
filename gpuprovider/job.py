"""GPUJob: a Qiskit ``JobV1`` whose work runs on its own background thread.

Status moves INITIALIZING -> QUEUED (submitted, waiting for admission, e.g. for device
memory) -> RUNNING (admitted, simulating) -> DONE, ERROR or CANCELLED. ``cancel()`` sets a
flag that admission and the engine check, so a waiting job stops within one admission poll
and a running one within one operation.

RUNNING, DONE and progress come from the device: the engine hands the job completion markers
(CUDA events on the GPU; on the CPU markers of work that has already run) recorded after the
work it enqueued. ``status()`` and ``progress()`` query them without blocking. A job whose
host side has finished stays RUNNING until its last marker completes.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from qiskit.providers import JobError, JobStatus, JobTimeoutError, JobV1
from qiskit.providers.jobstatus import JOB_FINAL_STATES
from qiskit.result import Result

from .exceptions import JobCancelledError
from .kernels.interface import Marker

CANCEL_WAIT_SECONDS = 2.0
"""How long ``cancel()`` waits for a running job to stop before returning."""


class JobControl:
    """The job's side of the engine's RunControl: the cancellation flag, the steps enqueued,
    and the completion markers that say how many of them the device has done."""

    def __init__(self, total_steps: int) -> None:
        self.cancel_requested = threading.Event()
        self.total_steps = total_steps
        self._enqueued = 0
        self._done = 0
        self._pending: deque[tuple[Marker, int]] = deque()
        self._lock = threading.Lock()
        self._closed = False

    def check(self) -> None:
        if self.cancel_requested.is_set():
            raise JobCancelledError("the job was cancelled")

    def advance(self, steps: int = 1) -> None:
        """Count ``steps`` more steps enqueued."""
        self._enqueued += steps

    def mark(self, marker: Marker) -> None:
        """Take a marker recorded after every step enqueued so far."""
        with self._lock:
            self._pending.append((marker, self._enqueued))

    def close(self) -> None:
        """The work has returned: no more markers will come."""
        with self._lock:
            self._closed = True

    def _settle(self) -> None:
        while self._pending and self._pending[0][0].query():
            self._done = max(self._done, self._pending.popleft()[1])
        if self._closed and not self._pending:  # steps after the last marker ran with it
            self._done = self._enqueued

    @property
    def steps_done(self) -> int:
        """Steps whose marker has completed; never blocks."""
        with self._lock:
            self._settle()
            return self._done

    def device_finished(self) -> bool:
        """True once the work has returned and every marker it recorded has completed;
        never blocks."""
        with self._lock:
            self._settle()
            return self._closed and not self._pending

    def wait_for_device(self) -> None:
        """Block until every marker recorded so far has completed."""
        while True:
            with self._lock:
                self._settle()
                if not self._pending:
                    return
                marker = self._pending[0][0]
            marker.wait()


Admit = Callable[[JobControl], AbstractContextManager[object]]
"""Blocks until the job may run and holds what it was granted (memory) until exited."""


def _admit_at_once(control: JobControl) -> AbstractContextManager[object]:
    return nullcontext()


class GPUJob(JobV1):
    """A simulation job running on a background thread.

    Created and submitted by :meth:`GPUSimulator.run`; users normally only call
    ``status()``, ``result()``, ``cancel()`` and ``wait_for_final_state()``.
    """

    _async = True

    def __init__(
        self,
        backend: Any,
        job_id: str,
        work: Callable[[JobControl], Result],
        total_steps: int = 0,
        admit: Admit = _admit_at_once,
    ) -> None:
        """
        Args:
            backend: the backend that created the job.
            job_id: a unique id.
            work: the simulation; called once on the job's thread with the job's control.
            total_steps: how many progress steps ``work`` reports in all.
            admit: entered on the job's thread before ``work`` (the job stays QUEUED while
                it blocks) and exited when ``work`` ends, however it ends; it raises
                ``JobCancelledError`` when the control's cancellation is requested while
                it waits. By default a job is admitted at once.
        """
        super().__init__(backend, job_id)
        self._work = work
        self._admit = admit
        self._control = JobControl(total_steps)
        self._lock = threading.RLock()
        self._finished = threading.Event()
        self._status = JobStatus.INITIALIZING
        self._thread: threading.Thread | None = None
        self._result: Result | None = None
        self._error: BaseException | None = None

    def submit(self) -> None:
        """Start the job's thread.

        Raises:
            JobError: if the job was already submitted.
        """
        with self._lock:
            if self._thread is not None or self._status is not JobStatus.INITIALIZING:
                raise JobError(f"job {self.job_id()} was already submitted")
            self._status = JobStatus.QUEUED
            self._thread = threading.Thread(
                target=self._run, name=f"gpuprovider-job-{self.job_id()[:8]}"
            )
        # Started outside the lock, which the new thread takes at once to mark itself running.
        self._thread.start()

    def _run(self) -> None:
        try:
            with self._admit(self._control):
                self._start_running()
                result = self._work(self._control)
                self._control.close()
                self._result = result
                self._control.wait_for_device()
        except JobCancelledError:
            self._finish(JobStatus.CANCELLED)
        except BaseException as exc:  # noqa: BLE001 - every failure must reach result()
            # The traceback's frames would otherwise keep the job's state allocated.
            traceback.clear_frames(exc.__traceback__)
            self._error = exc
            self._finish(JobStatus.ERROR)
        else:
            self._finish(JobStatus.DONE)

    def _start_running(self) -> None:
        with self._lock:
            self._control.check()
            self._status = JobStatus.RUNNING

    def _finish(self, status: JobStatus) -> None:
        with self._lock:
            if self._status in JOB_FINAL_STATES:
                return
            if status is not JobStatus.DONE:
                self._result = None
            self._status = status
            self._work = None  # drop the circuits and programs the work closure holds
            self._finished.set()

    def status(self) -> JobStatus:
        """The job's status now, from the device's completion markers; never blocks.

        RUNNING lasts until the work has returned and the device has completed everything it
        enqueued; then DONE.
        """
        status = self._status
        if status is JobStatus.RUNNING and self._control.device_finished():
            return JobStatus.DONE  # the job's thread is handing its memory back
        return status

    def progress(self) -> tuple[int, int]:
        """``(steps done, steps in all)``, steps done being those whose completion marker the
        device has reached; never blocks. A step is an operation of a circuit simulated
        once, or a finished shot of one with mid-circuit measurements."""
        return self._control.steps_done, self._control.total_steps

    def result(self, timeout: float | None = None) -> Result:
        """Wait for the job and return its Result.

        Args:
            timeout: seconds to wait at most; ``None`` waits as long as it takes.

        Raises:
            JobTimeoutError: the job did not finish within ``timeout``.
            JobError: the job failed (the cause is chained and named) or was cancelled.
        """
        if not self._finished.wait(timeout):
            raise JobTimeoutError(
                f"job {self.job_id()} did not finish within {timeout} s "
                f"(status {self._status.name})"
            )
        if self._status is JobStatus.CANCELLED:
            raise JobError(f"job {self.job_id()} was cancelled; it has no result")
        if self._status is JobStatus.ERROR:
            cause = self._error
            raise JobError(
                f"job {self.job_id()} failed: {type(cause).__name__}: {cause}"
            ) from cause
        return self._result

    def cancel(self) -> bool:
        """Stop the job if it has not finished.

        An unsubmitted job is cancelled at once, one waiting for admission at its next
        poll, a running one at its next operation (this call waits up to a couple of
        seconds for the last two).

        Returns:
            True if the job is (or will shortly be) CANCELLED, False if it had already
            finished or finished before the cancellation took effect.
        """
        with self._lock:
            if self._status in JOB_FINAL_STATES:
                return False
            self._control.cancel_requested.set()
            if self._status is JobStatus.INITIALIZING:
                self._finish(JobStatus.CANCELLED)
                return True
        self._finished.wait(CANCEL_WAIT_SECONDS)
        return self._status not in (JobStatus.DONE, JobStatus.ERROR)

    def wait_for_final_state(
        self, timeout: float | None = None, wait: float = 5, callback: Callable | None = None
    ) -> None:
        """Wait until the job is DONE, ERROR or CANCELLED.

        Returns as soon as the job finishes (it does not sleep out ``wait``).

        Args:
            timeout: seconds to wait at most; ``None`` waits as long as it takes.
            wait: seconds between calls of ``callback``.
            callback: called as ``callback(job_id, status, job)`` every ``wait`` seconds
                while the job is not final.

        Raises:
            JobTimeoutError: the job did not reach a final state within ``timeout``.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._finished.is_set():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise JobTimeoutError(
                    f"job {self.job_id()} did not reach a final state within {timeout} s"
                )
            if callback is not None:
                callback(self.job_id(), self.status(), self)
            pause = wait if remaining is None else min(wait, remaining)
            self._finished.wait(pause)
