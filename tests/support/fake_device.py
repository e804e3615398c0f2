"""A device for job tests: the CPU kernels behind hooks the test controls.

``GPUSimulator(device=fake_device(kernels))`` runs real programs through
:class:`FakeKernels`, which can hold the job's thread at its first gate, fail a named
operation, hand out completion markers that only the test completes, and report the memory
the test says. Nothing is monkeypatched: the fake is injected as the device.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import replace
from typing import Any

import numpy as np
from gpuprovider.device import Device, DeviceReport, host_available_memory, host_total_memory
from gpuprovider.kernels import cpu
from gpuprovider.kernels.policy import CPU_POLICY

GATE_OPERATIONS = ("apply_matrix", "apply_tile_pass", "apply_diagonal",
                   "apply_controlled_matrix", "apply_permutation")
"""The operations a circuit's gates reach, planned into tile passes or not."""
HOLD_SECONDS = 30


class FakeMarker:
    """A completion marker that completes when the test (or :class:`FakeKernels`) says."""

    def __init__(self) -> None:
        self._done = threading.Event()

    def complete(self) -> None:
        self._done.set()

    def query(self) -> bool:
        return self._done.is_set()

    def wait(self) -> None:
        if not self._done.wait(HOLD_SECONDS):
            raise RuntimeError("a FakeMarker was never completed")


class FakeKernels:
    """The CPU kernel set with test hooks; every operation not overridden is the CPU's.

    Args:
        hold: hold the first gate operation until :attr:`resume` is set (:attr:`entered`
            is set when a thread reaches it).
        fail: operation name -> exception raised when it is called (the state it was given
            is kept as a weak reference in :attr:`failed_states`).
        manual_markers: markers stay incomplete until :meth:`complete_markers`.
        watch: operation names whose every call's arguments after the state are kept in
            :attr:`arguments` (copied, as NumPy arrays where they are arrays).
    """

    POLICY = replace(CPU_POLICY, name="FAKE")

    def __init__(self, *, hold: bool = False, fail: dict[str, BaseException] | None = None,
                 manual_markers: bool = False, watch: tuple[str, ...] = ()) -> None:
        self.entered = threading.Event()
        self.resume = threading.Event()
        if not hold:
            self.resume.set()
        self.fail = dict(fail or {})
        self.failed_states: list[Any] = []
        self.manual_markers = manual_markers
        self.markers: list[FakeMarker] = []
        self.calls: dict[str, int] = {}
        self.watch = set(watch)
        self.arguments: dict[str, list[tuple]] = {name: [] for name in watch}
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        original = getattr(cpu, name)
        if not callable(original) or name.isupper():
            return original

        def operation(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls[name] = self.calls.get(name, 0) + 1
                if name in self.watch:
                    self.arguments[name].append(tuple(
                        np.array(arg) if isinstance(arg, np.ndarray) else arg
                        for arg in args[1:]))
            if name in GATE_OPERATIONS:
                self.entered.set()
                if not self.resume.wait(HOLD_SECONDS):
                    raise RuntimeError("FakeKernels held a gate and was never released")
            if name in self.fail:
                self.failed_states.append(weakref.ref(args[0]))
                raise self.fail[name]
            return original(*args, **kwargs)

        return operation

    def side_by_side_runs(self, num_qubits: int) -> int:
        """1: runs go one by one, so that tests see every marker and held gate in order."""
        return 1

    def record_marker(self, state: Any) -> FakeMarker:
        marker = FakeMarker()
        if not self.manual_markers:
            marker.complete()
        with self._lock:
            self.markers.append(marker)
        return marker

    def complete_markers(self, count: int | None = None) -> int:
        """Complete the oldest ``count`` incomplete markers (None: all); how many it did."""
        with self._lock:
            pending = [marker for marker in self.markers if not marker.query()]
        chosen = pending if count is None else pending[:count]
        for marker in chosen:
            marker.complete()
        return len(chosen)


def fake_device(kernels: FakeKernels | None = None, *, total_memory: int | None = None,
                free_memory: int | None = None) -> Device:
    """A usable device named "FAKE" running ``kernels`` (default: hook-free FakeKernels);
    with ``total_memory`` / ``free_memory`` its memory is what they say, else the host's."""
    kernels = kernels if kernels is not None else FakeKernels()
    total = total_memory if total_memory is not None else host_total_memory()
    report = DeviceReport("FAKE", True, "a fake device for tests", "FAKE", total)
    free = (lambda: free_memory) if free_memory is not None else host_available_memory
    return Device(FakeKernels.POLICY, lambda: report, lambda: kernels, free)
