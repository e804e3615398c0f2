"""An executor with one worker process per local GPU: ``GPUSimulator(executor=GPUPool())``
spreads a run's batches (:mod:`gpuprovider.fanout`) over every GPU of the machine.

Each worker is a process of its own (started with "spawn") that sees one GPU only: its
``CUDA_VISIBLE_DEVICES`` is set before anything in it loads CUDA, so its runs take that GPU
as device 0. Calls wait in the pool's queue and go to the first worker that is free (a GPU
that finishes early takes more); a queued call can be cancelled, a started one runs to its
end. Without GPUs (``gpus`` given explicitly) the workers simply run on the CPU.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import CancelledError, Executor, Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_for
from functools import partial
from multiprocessing import get_context
from typing import Any

from .exceptions import DeviceUnavailableError


def _see_only(gpu: str) -> None:
    """A worker's initializer: it sees one GPU."""
    os.environ["CUDA_VISIBLE_DEVICES"] = gpu


class GPUPool(Executor):
    """One worker process per GPU; calls go to the first free one.

    Args:
        gpus: the GPUs' ordinals (as the CUDA driver numbers them), or how many (the first
            ones); None: every GPU the driver reports.

    Raises:
        DeviceUnavailableError: ``gpus`` is None and the driver reports no GPU (the message
            says why).
        ValueError: ``gpus`` names no GPU, a negative ordinal or one twice.
    """

    def __init__(self, gpus: Iterable[int] | int | None = None) -> None:
        if gpus is None:
            from .device import cuda_driver_devices

            count, why = cuda_driver_devices()
            if not count:
                raise DeviceUnavailableError(f"GPUPool found no GPU: {why}")
            gpus = range(count)
        elif isinstance(gpus, int):
            gpus = range(gpus)
        ordinals = [int(gpu) for gpu in gpus]
        if not ordinals or min(ordinals) < 0 or len(set(ordinals)) != len(ordinals):
            raise ValueError(f"gpus={ordinals!r} must be one or more distinct ordinals >= 0")
        self.gpus = tuple(ordinals)
        self._max_workers = len(ordinals)  # what fanout.default_job_size reads
        context = get_context("spawn")
        self._workers = [ProcessPoolExecutor(1, mp_context=context, initializer=_see_only,
                                             initargs=(str(gpu),)) for gpu in ordinals]
        self._idle = list(range(len(ordinals) - 1, -1, -1))
        self._queue: deque[tuple[Future, Callable[..., Any], tuple, dict]] = deque()
        self._outstanding: set[Future] = set()
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self) -> str:
        return f"GPUPool(gpus={list(self.gpus)})"

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Queue ``fn(*args, **kwargs)`` for the next free worker."""
        future: Future = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit to a GPUPool after shutdown")
            self._queue.append((future, fn, args, kwargs))
            self._outstanding.add(future)
        future.add_done_callback(self._forget)
        self._dispatch()
        return future

    def _forget(self, future: Future) -> None:
        with self._lock:
            self._outstanding.discard(future)

    def _dispatch(self) -> None:
        """Hand queued calls to idle workers (cancelled ones are dropped)."""
        while True:
            with self._lock:
                if not self._idle or not self._queue:
                    return
                future, fn, args, kwargs = self._queue.popleft()
                if not future.set_running_or_notify_cancel():
                    continue
                worker = self._idle.pop()
            try:
                started = self._workers[worker].submit(fn, *args, **kwargs)
            except BaseException as exc:  # noqa: BLE001 - a broken worker fails the call
                with self._lock:
                    self._idle.append(worker)
                future.set_exception(exc)
                continue
            started.add_done_callback(partial(self._finished, future, worker))

    def _finished(self, future: Future, worker: int, started: Future) -> None:
        with self._lock:
            self._idle.append(worker)
        if started.cancelled():  # its worker was shut down before it ran
            future.set_exception(CancelledError("the GPUPool shut down before the call ran"))
            return
        error = started.exception()
        if error is None:
            future.set_result(started.result())
        else:
            future.set_exception(error)
        self._dispatch()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking calls; with ``cancel_futures`` cancel the queued ones; with ``wait``
        wait for the rest, then stop the workers."""
        with self._lock:
            self._closed = True
            queued = [entry[0] for entry in self._queue] if cancel_futures else []
            outstanding = set(self._outstanding)
        for future in queued:
            future.cancel()
        if wait:
            wait_for(outstanding)
        for worker in self._workers:
            worker.shutdown(wait=wait, cancel_futures=cancel_futures)
