"""The engine: runs one Program on one device's kernels and returns what was measured.

Two ways to run, picked from the Program:

* sampled: every measurement is final and nothing resets a used qubit, so the circuit is
  simulated once and all shots are drawn from the final state in one pass;
* per shot: otherwise the part before the first random operation is simulated once, kept as a
  snapshot, and each shot continues from a copy of it, collapsing on every measurement.

Between operations the engine calls ``control.check()``, which raises when the job was
cancelled, and reports progress through ``control.advance()``.
"""

from __future__ import annotations

import cmath
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Protocol

import numpy as np

from .compile.program import MeasureOp, Program, ResetOp, SaveStatevectorOp

WORD_BITS = 64


class RunControl(Protocol):
    """What the engine needs from the job running it."""

    def check(self) -> None:
        """Raise to stop the run (the job was cancelled)."""

    def advance(self, steps: int = 1) -> None:
        """Report ``steps`` more operations done."""


@dataclass
class Outcome:
    """What one experiment produced."""

    program: Program
    shots: int
    memory: np.ndarray
    """(shots, words) uint64: clbit ``c`` of shot ``s`` is bit ``c % 64`` of word ``c // 64``."""
    statevectors: dict[str, np.ndarray] = field(default_factory=dict)
    sampled: bool = True
    time_taken: float = 0.0


def total_steps(program: Program, shots: int) -> int:
    """How many ``advance`` steps running ``program`` for ``shots`` shots reports."""
    if program.is_sampled:
        return len(program.ops)
    split = program.first_stochastic_index
    return split + shots * (len(program.ops) - split)


def _words(num_clbits: int) -> int:
    return max(1, -(-num_clbits // WORD_BITS))


def _set_clbit(memory: np.ndarray, clbit: int, bits: np.ndarray) -> None:
    word, bit = divmod(clbit, WORD_BITS)
    mask = np.uint64(1) << np.uint64(bit)
    memory[:, word] = (memory[:, word] & ~mask) | (bits.astype(np.uint64) << np.uint64(bit))


@contextmanager
def _held(kernels: ModuleType, state) -> Iterator:
    """Yield ``state`` and give its memory back however the block ends."""
    try:
        yield state
    finally:
        kernels.release(state)


def _save(kernels: ModuleType, state, op: SaveStatevectorOp, saved: dict[str, np.ndarray]) -> None:
    vector = kernels.to_host(state)
    if op.order is not None:
        vector = vector[op.order]
    if op.global_phase:
        vector *= vector.dtype.type(cmath.exp(1j * op.global_phase))
    saved[op.label] = vector


def _apply_ops(
    kernels: ModuleType, state, ops: list, saved: dict[str, np.ndarray] | None,
    row: np.ndarray | None, rng: np.random.Generator, control: RunControl,
) -> None:
    """Apply ``ops`` in order. Final measurements are left for sampling; mid-circuit ones and
    resets collapse the state and write ``row`` (a deterministic prefix has none). Saves go to
    ``saved`` unless it is None (per-shot runs keep one shot's, as Aer does)."""
    for op in ops:
        control.check()
        if isinstance(op, (MeasureOp, ResetOp)):
            if not (isinstance(op, MeasureOp) and op.final):
                p_one = kernels.probability_of_one(state, op.qubit)
                outcome = int(rng.random() < p_one)
                probability = p_one if outcome else 1.0 - p_one
                kernels.project(state, op.qubit, outcome, probability,
                                to_zero=isinstance(op, ResetOp))
                if isinstance(op, MeasureOp):
                    _set_clbit(row, op.clbit, np.array([outcome]))
        elif isinstance(op, SaveStatevectorOp):
            if saved is not None:
                _save(kernels, state, op, saved)
        else:
            op.apply(kernels, state)
        control.advance()


def _run_sampled(
    program: Program, kernels: ModuleType, dtype: np.dtype, shots: int,
    rng: np.random.Generator, control: RunControl,
) -> Outcome:
    saved: dict[str, np.ndarray] = {}
    memory = np.zeros((shots, _words(program.num_clbits)), dtype=np.uint64)
    measurements = program.measurements
    with _held(kernels, kernels.allocate(program.num_qubits, dtype)) as state:
        _apply_ops(kernels, state, program.ops, saved, None, rng, control)
        if measurements:
            control.check()
            indices = kernels.sample(state, rng.random(shots))
    if measurements:
        indices = indices[rng.permutation(shots)]  # sampled in sorted order; shots are iid
        for op in measurements:
            _set_clbit(memory, op.clbit, (indices >> op.qubit) & 1)
    return Outcome(program, shots, memory, saved, sampled=True)


def _run_shot(
    kernels: ModuleType, state, suffix: list, finals: list[MeasureOp], row: np.ndarray,
    saved: dict[str, np.ndarray] | None, rng: np.random.Generator, control: RunControl,
) -> None:
    """One shot from the snapshot, then its final measurements sampled once."""
    _apply_ops(kernels, state, suffix, saved, row, rng, control)
    if finals:
        index = kernels.sample(state, rng.random(1))[0]
        for op in finals:
            _set_clbit(row, op.clbit, np.array([(index >> op.qubit) & 1]))


def _run_per_shot(
    program: Program, kernels: ModuleType, dtype: np.dtype, shots: int,
    rng: np.random.Generator, control: RunControl,
) -> Outcome:
    split = program.first_stochastic_index
    saved: dict[str, np.ndarray] = {}
    suffix = program.ops[split:]
    finals = [op for op in program.measurements if op.final]
    memory = np.zeros((shots, _words(program.num_clbits)), dtype=np.uint64)
    with _held(kernels, kernels.allocate(program.num_qubits, dtype)) as snapshot:
        _apply_ops(kernels, snapshot, program.ops[:split], saved, None, rng, control)
        with _held(kernels, kernels.clone(snapshot)) as state:
            for shot in range(shots):
                if shot:
                    kernels.copy_into(state, snapshot)
                _run_shot(kernels, state, suffix, finals, memory[shot : shot + 1],
                          saved if shot == 0 else None, rng, control)
    return Outcome(program, shots, memory, saved, sampled=False)


def run_program(
    program: Program, kernels: ModuleType, dtype: np.dtype, shots: int,
    rng: np.random.Generator, control: RunControl,
) -> Outcome:
    """Run ``program`` for ``shots`` shots on a fresh state of ``dtype``."""
    start = time.perf_counter()
    runner = _run_sampled if program.is_sampled else _run_per_shot
    outcome = runner(program, kernels, dtype, shots, rng, control)
    outcome.time_taken = time.perf_counter() - start
    return outcome
