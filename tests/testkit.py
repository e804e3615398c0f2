"""Helpers shared by several test modules (tests/ is on sys.path through pytest's pythonpath)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
from qiskit import QuantumCircuit

from gpuprovider.kernels import cpu as cpu_kernels


def random_circuit(num_qubits: int, num_gates: int, seed: int) -> QuantumCircuit:
    """Random rx / cx / rzz gates: dense, permutation and diagonal kernels in turn."""
    rng = np.random.default_rng(seed)
    circuit = QuantumCircuit(num_qubits)
    for _ in range(num_gates):
        kind = rng.integers(3)
        angle = float(rng.uniform(0, 2 * np.pi))
        if kind == 0:
            circuit.rx(angle, int(rng.integers(num_qubits)))
            continue
        first, second = (int(q) for q in rng.choice(num_qubits, 2, replace=False))
        if kind == 1:
            circuit.cx(first, second)
        else:
            circuit.rzz(angle, first, second)
    return circuit


def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return predicate()
        time.sleep(0.001)
    return True


class KernelGate:
    """Holds a job thread at its first CPU ``apply_matrix`` call until ``release`` is set."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self._original = cpu_kernels.apply_matrix

    def __call__(self, *args, **kwargs):
        self.entered.set()
        if not self.release.wait(30):
            raise RuntimeError("KernelGate was never released")
        return self._original(*args, **kwargs)


class ControlledWork:
    """A job's work function that blocks until released, then reports its steps."""

    def __init__(self, steps: int = 3, error: BaseException | None = None) -> None:
        self.steps = steps
        self.error = error
        self.started = threading.Event()
        self.release = threading.Event()
        self.calls = 0
        self.result = object()

    def __call__(self, control) -> object:
        self.calls += 1
        self.started.set()
        if not self.release.wait(30):
            raise RuntimeError("ControlledWork was never released")
        if self.error is not None:
            raise self.error
        control.advance(self.steps)
        return self.result
