"""A job's runs side by side on the host's cores, answers in order.

A sweep of a 16-qubit circuit is a thousand short runs. Splitting each run's passes over the
cores leaves them waiting on each other for much of every pass (a pass over 1 MiB is a few
hundred microseconds); running one run per core, each on its own thread with serial kernels
(the kernels release the GIL), keeps every core busy. The kernel set says when that pays
(:meth:`~gpuprovider.kernels.interface.KernelSet.side_by_side_runs`): on the CPU for states
of 14 to 18 qubits (smaller runs are mostly Python, which holds the GIL; larger ones split
well), never on a GPU or on MPI ranks.

The job's own thread hands runs to a pool shared by every job (started once, on first use)
and takes their answers back in order, so seeds, results and progress are those of runs one
after another. At most ``workers`` runs of a job are in flight, so the job holds at most that
many runs' states (what its admission reserved). Each run's progress is counted on the job's
thread once the run is done; a cancelled job stops its runs at their next check and waits for
them before it ends.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from .engine import RunControl
from .kernels.interface import COMPLETE, KernelSet, Marker

Item = TypeVar("Item")
Answer = TypeVar("Answer")

WORKER_THREAD_PREFIX = "gpuprovider-run"
"""The pool's threads are named ``gpuprovider-run_<n>``."""

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _shared_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1,
                                       thread_name_prefix=WORKER_THREAD_PREFIX)
        return _pool


class _RunSteps:
    """A run's control on a pool thread: it checks the job's cancellation and counts its
    steps, which the job's thread reports once the run is done (the CPU's work is complete
    when its call returns, so the run's own markers are not needed)."""

    def __init__(self, control: RunControl) -> None:
        self._control = control
        self.steps = 0

    def check(self) -> None:
        self._control.check()

    def advance(self, steps: int = 1) -> None:
        self.steps += steps

    def mark(self, marker: Marker) -> None:
        return None


def _run_alone(kernels: KernelSet, run: Callable[[Item, RunControl], Answer], item: Item,
               steps: _RunSteps) -> tuple[Answer, int]:
    with kernels.one_thread():
        return run(item, steps), steps.steps


def in_order(items: Iterable[Item], run: Callable[[Item, RunControl], Answer], workers: int,
             kernels: KernelSet | None, control: RunControl) -> Iterator[Answer]:
    """``run(item, control)`` of each item, in order: on this thread when ``workers`` is 1,
    else up to ``workers`` items at once on the shared pool, each inside
    ``kernels.one_thread()`` (see the module docstring; ``kernels`` may be None only when
    ``workers`` is 1). An exception from a run is raised here once the runs before it have
    been answered; the runs still in flight then are waited for."""
    if workers <= 1:
        for item in items:
            yield run(item, control)
        return
    assert kernels is not None
    pool = _shared_pool()
    flight: deque[Future[tuple[Answer, int]]] = deque()
    try:
        for item in items:
            control.check()
            if len(flight) == workers:
                yield _reported(flight.popleft(), control)
            flight.append(pool.submit(_run_alone, kernels, run, item, _RunSteps(control)))
        while flight:
            yield _reported(flight.popleft(), control)
    finally:
        _settle(flight)


def _reported(future: Future[tuple[Any, int]], control: RunControl) -> Any:
    answer, steps = future.result()
    control.advance(steps)
    control.mark(COMPLETE)
    return answer


def _settle(flight: deque[Future[Any]]) -> None:
    """Wait for the runs left in flight (each stops at its next check once the job is
    cancelled), keeping none of their answers or errors."""
    for future in flight:
        if not future.cancel():
            future.exception()
