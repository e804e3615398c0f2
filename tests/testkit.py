"""Helpers shared by several test modules (tests/ is on sys.path through pytest's pythonpath)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector
from qiskit.quantum_info import SparsePauliOp
from scipy import stats


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


ALPHA = 1e-4
"""A correct answer's statistical test p-value is above this; with fixed seeds the tests are
deterministic, and a new seed fails a correct simulator with probability 1e-4."""


def _greedy_bins(keys: list[str], weight, minimum: float) -> list[list[str]]:
    """Consecutive groups of ``keys`` each weighing at least ``minimum`` (a last, lighter group
    joins the one before it)."""
    bins: list[list[str]] = []
    current: list[str] = []
    total = 0.0
    for key in keys:
        current.append(key)
        total += weight(key)
        if total >= minimum:
            bins.append(current)
            current, total = [], 0.0
    if current:
        if bins:
            bins[-1].extend(current)
        else:
            bins.append(current)
    return bins


def chi_square_pvalue(counts: dict[str, int], probabilities: dict[str, float]) -> float:
    """Pearson chi-square p-value of ``counts`` under ``probabilities``.

    Outcomes expected fewer than 5 times are merged, rarest first, into bins expected at
    least 5 times (a lighter remainder joins the least likely bin), so that a correct
    simulator that sees two outcomes of probability 1e-5 is not failed by a bin expected
    0.1 times. An observed outcome of probability 0 gives 0.
    """
    shots = sum(counts.values())
    possible = {str(k): float(p) for k, p in probabilities.items() if p > 1e-12}
    if set(counts) - set(possible):
        return 0.0
    common = sorted(k for k in possible if possible[k] * shots >= 5)
    rare = sorted((k for k in possible if possible[k] * shots < 5),
                  key=lambda k: (possible[k], k))
    bins = [[k] for k in common] + _greedy_bins(rare, lambda k: possible[k] * shots, 5.0)
    if len(bins) > 1 and sum(possible[k] for k in bins[-1]) * shots < 5:
        light = bins.pop()
        smallest = min(range(len(bins)), key=lambda i: sum(possible[k] for k in bins[i]))
        bins[smallest].extend(light)
    if len(bins) < 2:
        return 1.0
    observed = [sum(counts.get(k, 0) for k in keys) for keys in bins]
    expected = np.array([sum(possible[k] for k in keys) for keys in bins])
    expected = expected * shots / np.sum(expected)
    return float(stats.chisquare(observed, expected).pvalue)


def homogeneity_pvalue(first: dict[str, int], second: dict[str, int]) -> float:
    """Chi-square p-value that two sets of counts come from one distribution (outcomes seen
    fewer than 10 times in both together are merged into bins of at least 10)."""
    def seen(key: str) -> int:
        return first.get(key, 0) + second.get(key, 0)

    keys = sorted(set(first) | set(second), key=lambda k: (seen(k), k))
    common = [k for k in keys if seen(k) >= 10]
    rare = [k for k in keys if seen(k) < 10]
    bins = [[k] for k in common] + _greedy_bins(rare, seen, 10.0)
    if len(bins) > 1 and sum(seen(k) for k in bins[-1]) < 10:
        light = bins.pop()
        bins[0].extend(light)  # bins[0] is the least frequent common outcome, if any
    if len(bins) < 2:
        return 1.0
    table = [[sum(counts.get(k, 0) for k in keys) for keys in bins]
             for counts in (first, second)]
    return float(stats.chi2_contingency(table).pvalue)


def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return predicate()
        time.sleep(0.001)
    return True


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


# --- primitives ---------------------------------------------------------------------------


def parameterized_circuit(num_qubits: int, layers: int, seed: int,
                          swaps: bool = False) -> QuantumCircuit:
    """Layers of parameterised ry/rz, a fixed rx, CX and RZZ entanglers (and SWAPs, which
    the planner turns into relabelling at 12 qubits and more)."""
    rng = np.random.default_rng(seed)
    theta = ParameterVector("t", 2 * num_qubits * layers)
    circuit = QuantumCircuit(num_qubits, name=f"ansatz{num_qubits}")
    k = 0
    for _ in range(layers):
        for q in range(num_qubits):
            circuit.ry(theta[k], q)
            circuit.rz(theta[k + 1], q)
            k += 2
        circuit.rx(float(rng.uniform(0, np.pi)), int(rng.integers(num_qubits)))
        for q in range(num_qubits - 1):
            circuit.cx(q, q + 1)
        a, b = (int(q) for q in rng.choice(num_qubits, 2, replace=False))
        circuit.rzz(theta[0] * 0.5 + 0.1, a, b)
        if swaps:
            circuit.swap(0, num_qubits - 1)
            circuit.swap(1, num_qubits // 2)
    return circuit


def random_values(circuit: QuantumCircuit, shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-np.pi, np.pi, (*shape, circuit.num_parameters))


def random_observable(num_qubits: int, terms: int, rng: np.random.Generator) -> SparsePauliOp:
    labels = ["".join(rng.choice(list("IXYZ"), num_qubits)) for _ in range(terms)]
    return SparsePauliOp(labels, rng.normal(size=terms)).simplify()


def visible_gpu(seconds: float = 0.0) -> str | None:
    """The ``CUDA_VISIBLE_DEVICES`` a (worker) process sees, after ``seconds`` (so that
    calls overlap)."""
    time.sleep(seconds)
    return os.environ.get("CUDA_VISIBLE_DEVICES")
