"""Memory admission: a job reserves the device memory it needs before it allocates any.

Each device has one :class:`MemoryAdmission` (:attr:`gpuprovider.device.Device.admission`).
It admits requests first come, first served: the oldest waiting request is admitted as soon
as the device's free memory, less a headroom and less what admitted jobs have reserved,
covers it. Later requests wait behind it, so a large job is never starved by a stream of
small ones.

Free memory is re-read while a request waits, because other processes free memory too. An
admitted job's reservation still counts after it has allocated its state, when the device's
free memory also shows that state: near capacity, jobs run one after another rather than
risk running out of memory together.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, final

from .exceptions import CapacityError, JobCancelledError

POLL_SECONDS = 0.1
"""How often a waiting request re-reads free memory and its cancellation flag."""

HEADROOM = 0.05
"""Share of a device's total memory never promised to a job: room for kernel workspace,
sampling buffers and the allocator's slack."""


@final
class Reservation:
    """Bytes reserved for one job; released once, by :meth:`release` or leaving ``with``."""

    def __init__(self, admission: MemoryAdmission, num_bytes: int) -> None:
        self._admission = admission
        self.num_bytes = num_bytes

    def release(self) -> None:
        """Return the bytes and wake waiting requests; later calls do nothing."""
        self._admission._release(self)

    def __enter__(self) -> Reservation:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


class MemoryAdmission:
    """Admits memory reservations on one device, safely from any number of threads."""

    def __init__(
        self, free_memory: Callable[[], int], total_memory: int, headroom: float = HEADROOM
    ) -> None:
        """
        Args:
            free_memory: returns the bytes the device could allocate now.
            total_memory: the device's memory in all, in bytes.
            headroom: share of ``total_memory`` never reserved (see :data:`HEADROOM`).
        """
        self._free_memory = free_memory
        self.total_memory = total_memory
        self.headroom_bytes = int(total_memory * headroom)
        self._condition = threading.Condition()
        self._queue: deque[object] = deque()
        self._held: set[Reservation] = set()
        self._reserved = 0

    @property
    def capacity(self) -> int:
        """The largest request that can ever be admitted, in bytes."""
        return self.total_memory - self.headroom_bytes

    @property
    def reserved(self) -> int:
        """Bytes held by admitted, unreleased reservations."""
        return self._reserved

    @property
    def waiting(self) -> int:
        """How many requests are waiting to be admitted."""
        return len(self._queue)

    def reserve(
        self, num_bytes: int, cancelled: threading.Event | None = None
    ) -> Reservation:
        """Block until ``num_bytes`` can be reserved, then reserve them.

        Args:
            num_bytes: bytes the job will allocate at most at once.
            cancelled: when set while waiting, the request is withdrawn.

        Returns:
            The reservation; use it as a context manager or call its ``release()``.

        Raises:
            CapacityError: ``num_bytes`` exceeds :attr:`capacity`, so it could never fit.
            JobCancelledError: ``cancelled`` was set before the request was admitted.
        """
        if num_bytes > self.capacity:
            raise CapacityError(
                f"{num_bytes:,} bytes can never be reserved: at most {self.capacity:,} of "
                f"the device's {self.total_memory:,} bytes can be given to a job"
            )
        ticket = object()
        with self._condition:
            self._queue.append(ticket)
            try:
                while True:
                    if cancelled is not None and cancelled.is_set():
                        raise JobCancelledError("the job was cancelled while waiting for memory")
                    if self._queue[0] is ticket and self._fits(num_bytes):
                        break
                    self._condition.wait(POLL_SECONDS)
                reservation = Reservation(self, num_bytes)
                self._held.add(reservation)
                self._reserved += num_bytes
            finally:
                self._queue.remove(ticket)
                self._condition.notify_all()
        return reservation

    def _fits(self, num_bytes: int) -> bool:
        return num_bytes <= self._free_memory() - self.headroom_bytes - self._reserved

    def _release(self, reservation: Reservation) -> None:
        with self._condition:
            if reservation not in self._held:
                return
            self._held.remove(reservation)
            self._reserved -= reservation.num_bytes
            self._condition.notify_all()


class Turnstile:
    """Jobs admitted one at a time, in the order their tickets were taken.

    A device spread over MPI ranks needs it (:mod:`gpuprovider.mpi`): every rank must run the
    same collective operations in the same order, so two jobs may not interleave theirs.
    Tickets are taken when jobs are submitted, which every rank does in the same order.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._issued = 0
        self._serving = 0
        self._given_up: set[int] = set()

    def ordered(self, admit: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """``admit`` (a job's ``control -> context manager``) entered only on this ticket's
        turn (taken now), the turn passing on when its context is left."""
        with self._condition:
            ticket = self._issued
            self._issued += 1

        @contextmanager
        def admitted(control: Any) -> Iterator[Any]:
            self._wait(ticket, control.cancel_requested.is_set)
            try:
                with admit(control) as reservation:
                    yield reservation
            finally:
                self._pass(ticket)

        return admitted

    def _wait(self, ticket: int, cancelled: Callable[[], bool]) -> None:
        with self._condition:
            while self._serving != ticket:
                if cancelled():
                    self._given_up.add(ticket)
                    raise JobCancelledError("the job was cancelled while waiting for its turn")
                self._condition.wait(POLL_SECONDS)

    def _pass(self, ticket: int) -> None:
        with self._condition:
            self._serving = ticket + 1
            while self._serving in self._given_up:
                self._given_up.remove(self._serving)
                self._serving += 1
            self._condition.notify_all()
