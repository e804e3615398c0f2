"""The engine: runs one Program on one device's kernels and returns what was measured.

Shots travel in branches. A branch is a statevector, a number of shots, their classical
memory (clbits and variables) and a position in the Program's flat op list. Every shot of a
branch has seen the same outcomes, so control flow takes one path per branch. At a
mid-circuit measurement or reset the branch's shots are split between the two outcomes by a
binomial draw with the exact outcome probability; when both get shots, the state is cloned
and each part continues on its own. Branches run depth first, so at most one state per
pending split is alive; past ``max_states`` a branch runs its shots one at a time
(trajectories, each from a copy of the branch's state). Final measurements are sampled for
all of a branch's shots in one pass at its end.

A circuit without mid-circuit randomness is one branch: simulated once, every shot sampled
from the final state. Between operations the engine calls ``control.check()``, which raises
when the job was cancelled, and reports progress through ``control.advance()``.
"""

from __future__ import annotations

import cmath
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from types import ModuleType
from typing import Any, Protocol

import numpy as np

from .compile.classical import ClassicalState
from .compile.program import (
    DEFAULT_BRANCH_STATES,
    BranchOp,
    JumpOp,
    MeasureOp,
    PauliTerms,
    Program,
    ResetOp,
    SaveExpectationValueOp,
    SavePauliValuesOp,
    SaveProbabilitiesOp,
    SaveStatevectorOp,
    StoreOp,
    SwitchOp,
)
from .kernels.layout import group_by_x_mask

WORD_BITS = 64


class RunControl(Protocol):
    """What the engine needs from the job running it."""

    def check(self) -> None:
        """Raise to stop the run (the job was cancelled)."""

    def advance(self, steps: int = 1) -> None:
        """Report ``steps`` more steps done."""


@dataclass
class Outcome:
    """What one experiment produced."""

    program: Program
    shots: int
    memory: np.ndarray
    """(shots, words) uint64: clbit ``c`` of shot ``s`` is bit ``c % 64`` of word ``c // 64``."""
    saved: dict[str, Any] = field(default_factory=dict)
    """Label -> saved value (statevector, probabilities, expectation value)."""
    sampled: bool = True
    branches: int = 1
    """How many branches of shots finished (1: one simulation served every shot)."""
    time_taken: float = 0.0


def total_steps(program: Program, shots: int) -> int:
    """How many ``advance`` steps running ``program`` for ``shots`` shots reports: one per
    op for a sampled program, else one per finished shot."""
    return len(program.ops) if program.is_sampled else shots


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


@dataclass
class _Branch:
    state: Any
    shots: int
    classical: ClassicalState
    pc: int = 0


class _Average:
    """A saved value averaged over the shots that reached its save."""

    def __init__(self) -> None:
        self.total: Any = 0.0
        self.shots = 0

    def add(self, value: Any, shots: int) -> None:
        self.total = self.total + np.multiply(value, shots)
        self.shots += shots

    @property
    def value(self) -> Any:
        return self.total / self.shots


@lru_cache(maxsize=64)
def _grouped_terms(terms: PauliTerms) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A save's Pauli sum grouped by X-mask (once per sum, not per evaluation): the kernels'
    arguments and the coefficients in the grouped order."""
    x_masks, z_masks, coefficients = (np.array(column) for column in zip(*terms)) if terms \
        else (np.zeros(0, np.int64),) * 3
    groups_x, term_starts, grouped_z, order = group_by_x_mask(x_masks, z_masks)
    return groups_x, term_starts, grouped_z, np.asarray(coefficients, np.float64)[order]


class _Run:
    """One run of a Program: the branch stack and what the branches produce."""

    def __init__(
        self, program: Program, kernels: ModuleType, shots: int, rng: np.random.Generator,
        control: RunControl, max_states: int,
    ) -> None:
        self.program = program
        self.kernels = kernels
        self.shots = shots
        self.rng = rng
        self.control = control
        self.max_states = max(2, max_states)
        self.sampled = program.is_sampled
        self.finals = [op for op in program.measurements if op.final]
        self.words = _words(program.num_clbits)
        self.rows: list[np.ndarray] = []
        self.saved: dict[str, Any] = {}
        self.averages: dict[str, _Average] = {}
        self.pending: list[_Branch] = []
        self.live = 0
        self.branches = 0
        self.handlers = {
            MeasureOp: self._measure,
            ResetOp: self._reset,
            SaveStatevectorOp: self._save_statevector,
            SaveProbabilitiesOp: self._save_probabilities,
            SaveExpectationValueOp: self._save_expectation_value,
            SavePauliValuesOp: self._save_pauli_values,
            JumpOp: lambda branch, op: op.target,
            BranchOp: lambda branch, op: (
                branch.pc + 1 if op.condition(branch.classical) else op.target),
            SwitchOp: lambda branch, op: op.cases.get(op.target(branch.classical), op.default),
            StoreOp: self._store,
        }

    # --- states ------------------------------------------------------------------------

    def _allocate(self, dtype: np.dtype):
        state = self.kernels.allocate(self.program.num_qubits, dtype)
        self.live += 1
        return state

    def _clone(self, state):
        copy = self.kernels.clone(state)
        self.live += 1
        return copy

    def _release(self, state) -> None:
        self.live -= 1
        self.kernels.release(state)

    # --- the run -----------------------------------------------------------------------

    def execute(self, dtype: np.dtype) -> None:
        self.pending.append(
            _Branch(self._allocate(dtype), self.shots, self.program.new_classical_state())
        )
        try:
            while self.pending:
                branch = self.pending.pop()
                try:
                    self._continue(branch)
                finally:
                    self._release(branch.state)
        finally:
            for branch in self.pending:  # left by a cancellation or an error
                self._release(branch.state)

    def _continue(self, branch: _Branch) -> None:
        """Run ``branch`` to the end of the program (pushing the branches it splits off)."""
        ops = self.program.ops
        while branch.pc < len(ops):
            self.control.check()
            op = ops[branch.pc]
            handler = self.handlers.get(type(op))
            if handler is None:
                op.apply(self.kernels, branch.state)
                branch.pc += 1
            else:
                next_pc = handler(branch, op)
                if next_pc is None:  # the branch ran as trajectories
                    return
                branch.pc = next_pc
            if self.sampled:
                self.control.advance()
        self._finish(branch)

    def _finish(self, branch: _Branch) -> None:
        """Sample the final measurements for every shot of a branch that reached the end."""
        rows = np.empty((branch.shots, self.words), dtype=np.uint64)
        clbits = branch.classical.clbits
        for word in range(self.words):
            rows[:, word] = (clbits >> (WORD_BITS * word)) & ((1 << WORD_BITS) - 1)
        if self.finals:
            self.control.check()
            indices = self.kernels.sample(branch.state, self.rng.random(branch.shots))
            for op in self.finals:
                _set_clbit(rows, op.clbit, (indices >> op.qubit) & 1)
        self.rows.append(rows)
        self.branches += 1
        if not self.sampled:
            self.control.advance(branch.shots)

    def _collapse(self, branch: _Branch, qubit: int, clbit: int | None) -> int | None:
        """Split the branch's shots on ``qubit``'s outcome, written to ``clbit`` (None: a
        reset, which then sets the qubit to 0). Return the next op's index, or None when
        the branch ran its shots as trajectories instead."""
        kernels = self.kernels
        to_zero = clbit is None
        p_one = min(1.0, max(0.0, kernels.probability_of_one(branch.state, qubit)))
        ones = int(self.rng.binomial(branch.shots, p_one))
        if 0 < ones < branch.shots:
            if self.live + 1 >= self.max_states:  # keep one state for trajectories
                self._trajectories(branch)
                return None
            other = self._clone(branch.state)
            kernels.project(other, qubit, 1, p_one, to_zero=to_zero)
            split = _Branch(other, ones, branch.classical.copy(), branch.pc + 1)
            if not to_zero:
                split.classical.set_bit(clbit, 1)
            self.pending.append(split)
            branch.shots -= ones
            outcome = 0
        else:
            outcome = int(ones > 0)
        kernels.project(branch.state, qubit, outcome, p_one if outcome else 1.0 - p_one,
                        to_zero=to_zero)
        if not to_zero:
            branch.classical.set_bit(clbit, outcome)
        return branch.pc + 1

    def _trajectories(self, branch: _Branch) -> None:
        """Run each of the branch's shots alone (none of them splits), each from a copy."""
        scratch = self._clone(branch.state)
        try:
            for shot in range(branch.shots):
                if shot:
                    self.kernels.copy_into(scratch, branch.state)
                self._continue(_Branch(scratch, 1, branch.classical.copy(), branch.pc))
        finally:
            self._release(scratch)

    def _measure(self, branch: _Branch, op: MeasureOp) -> int | None:
        if op.final:
            return branch.pc + 1
        return self._collapse(branch, op.qubit, op.clbit)

    def _reset(self, branch: _Branch, op: ResetOp) -> int | None:
        return self._collapse(branch, op.qubit, None)

    def _store(self, branch: _Branch, op: StoreOp) -> int:
        op.store(branch.classical)
        return branch.pc + 1

    # --- saves -------------------------------------------------------------------------

    def _save_statevector(self, branch: _Branch, op: SaveStatevectorOp) -> int:
        if op.label not in self.saved:
            vector = self.kernels.to_host(branch.state)
            if op.order is not None:
                vector = vector[op.order]
            if op.global_phase:
                vector *= vector.dtype.type(cmath.exp(1j * op.global_phase))
            self.saved[op.label] = vector
        return branch.pc + 1

    def _save_probabilities(self, branch: _Branch, op: SaveProbabilitiesOp) -> int:
        probabilities = self.kernels.marginal_probabilities(branch.state, op.qubits)
        self.averages.setdefault(op.label, _Average()).add(probabilities, branch.shots)
        return branch.pc + 1

    def _save_expectation_value(self, branch: _Branch, op: SaveExpectationValueOp) -> int:
        def expectation(terms: PauliTerms) -> float:
            x_masks, term_starts, z_masks, coefficients = _grouped_terms(terms)
            values = self.kernels.expectation_pauli_groups(branch.state, x_masks, term_starts,
                                                           z_masks)
            return float(np.dot(values, coefficients))

        mean = expectation(op.terms)  # the variance: <H^2> - <H>^2
        value = [mean, expectation(op.square_terms) - mean**2] if op.variance else mean
        self.averages.setdefault(op.label, _Average()).add(value, branch.shots)
        return branch.pc + 1

    def _save_pauli_values(self, branch: _Branch, op: SavePauliValuesOp) -> int:
        values = self.kernels.expectation_pauli_groups(branch.state, op.x_masks,
                                                        op.term_starts, op.z_masks)
        self.averages.setdefault(op.label, _Average()).add(values, branch.shots)
        return branch.pc + 1

    def outcome(self) -> Outcome:
        memory = np.concatenate(self.rows) if self.rows else np.zeros((0, self.words), np.uint64)
        if len(self.rows) > 1 or self.finals:
            memory = memory[self.rng.permutation(len(memory))]  # shots are exchangeable
        saved = dict(self.saved)
        for label, average in self.averages.items():
            saved[label] = average.value
        return Outcome(self.program, self.shots, memory, saved, sampled=self.sampled,
                       branches=self.branches)


def run_program(
    program: Program, kernels: ModuleType, dtype: np.dtype, shots: int,
    rng: np.random.Generator, control: RunControl, max_states: int = DEFAULT_BRANCH_STATES,
) -> Outcome:
    """Run ``program`` for ``shots`` shots on a fresh state of ``dtype``, holding at most
    ``max_states`` statevectors at once (at least 2 when the program has mid-circuit
    measurements or resets)."""
    start = time.perf_counter()
    run = _Run(program, kernels, shots, rng, control, max_states)
    run.execute(dtype)
    outcome = run.outcome()
    outcome.time_taken = time.perf_counter() - start
    return outcome
