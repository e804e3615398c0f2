"""The engine: runs one Program on one device's kernels and returns what was measured.

Shots travel in branches. A branch is a statevector, a number of shots, their classical
memory (clbits and variables) and a position in the Program's flat op list. Every shot of a
branch has seen the same outcomes, so control flow takes one path per branch. At a
mid-circuit measurement or reset the branch's shots are split between the two outcomes by a
binomial draw with the exact outcome probability; when both get shots, the state is cloned
and each part continues on its own. Branches run depth first, so at most one state per
pending split is alive; past ``max_states`` a branch runs its shots one at a time
(trajectories, each from a copy of the branch's state). Final measurements are drawn for
all of a branch's shots at its end: as counts (one multinomial draw over their outcome
probabilities, or chunks of samples when they have too many outcomes), or shot by shot when
the run keeps every shot's memory. Saves are gathered by :mod:`gpuprovider.recorder`.

A circuit without mid-circuit randomness is one branch: simulated once, every shot drawn
from the final state. Between operations the engine calls ``control.check()``, which raises
when the job was cancelled, and reports the steps it enqueued through ``control.advance()``.
Every ``marker_interval`` steps of the device's policy, and when a branch finishes, it hands
the job a completion marker recorded on the device's stream (``control.mark()``): the job's
status and progress come from those markers, so they say what the device has done, not what
the host has enqueued.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from . import draws, trajectories
from .compile.classical import ClassicalState
from .compile.mixtures import MixturePlan, Pattern, shared_chunks
from .compile.program import (
    DEFAULT_BRANCH_STATES,
    MARGINAL_SAMPLING_MAX_QUBITS,
    SAVE_OPS,
    BranchOp,
    JumpOp,
    KrausOp,
    MeasureOp,
    NoiseSelectOp,
    Program,
    ResetOp,
    SaveOp,
    StoreOp,
    SwitchOp,
)
from .kernels.interface import COMPLETE, KernelSet, Marker
from .kernels.layout import draw_sorted
from .recorder import PerShot, SaveRecorder, save_value
from .shots import WORD_BITS, clbits_row, set_clbit, words_of


class RunControl(Protocol):
    """What the engine needs from the job running it."""

    def check(self) -> None:
        """Raise to stop the run (the job was cancelled)."""

    def advance(self, steps: int = 1) -> None:
        """Report ``steps`` more steps enqueued."""

    def mark(self, marker: Marker) -> None:
        """Hand over a completion marker recorded after the steps enqueued so far: they are
        done when it completes."""


@dataclass
class Outcome:
    """What one experiment produced."""

    program: Program
    shots: int
    rows: np.ndarray
    """(k, words) uint64, the distinct outcomes (format: :mod:`gpuprovider.shots`)."""
    counts: np.ndarray
    """(k,) int64: how many shots gave each row."""
    memory: np.ndarray | None = None
    """(shots, words) uint64, every shot's clbits in shot order, when the run kept them."""
    saved: dict[str, Any] = field(default_factory=dict)
    """Label -> saved value (statevector, probabilities, expectation value)."""
    sampled: bool = True
    branches: int = 1
    """How many branches of shots finished (1: one simulation served every shot)."""
    method: str = "statevector"
    """"statevector", or "density_matrix" when one density matrix served every shot."""
    error_patterns: bool = False
    """True when shots ran as grouped trajectories (:mod:`gpuprovider.compile.mixtures`)."""
    time_taken: float = 0.0
    device_metadata: dict[str, Any] = field(default_factory=dict)
    """What the kernels report of the run (``KernelSet.stream_metadata``)."""


def total_steps(program: Program, shots: int) -> int:
    """How many ``advance`` steps running ``program`` for ``shots`` shots reports: one per
    op for a sampled program, else one per finished shot."""
    return len(program.ops) if program.is_sampled else shots


MULTINOMIAL_MAX_BINS = 1 << 24
"""Final measurements with at most as many outcomes as shots (and at most this many) are
counted by one multinomial draw over their marginal (:func:`gpuprovider.draws.multinomial`:
work in the outcomes for many shots per outcome). Others are sampled in chunks of
:data:`SAMPLE_CHUNK_SHOTS` shots (work in the shots). Either way no per-shot array is held
unless the run keeps every shot's memory."""
SAMPLE_CHUNK_SHOTS = 1 << 20


@dataclass
class _Branch:
    state: Any
    shots: int
    classical: ClassicalState
    pc: int = 0
    per_shot: PerShot = field(default_factory=dict)
    """The ``list`` saves this branch's shots have reached (copied when it splits)."""


class _Run:
    """One run of a Program: the branch stack and what the branches produce."""

    def __init__(
        self, program: Program, kernels: KernelSet, shots: int, rng: np.random.Generator,
        control: RunControl, max_states: int, keep_memory: bool,
        density: Program | None = None,
    ) -> None:
        self.program = program
        self.density = density
        self.error_patterns = False
        self.kernels = kernels
        self.stream = kernels.new_stream()
        self.marker_interval = kernels.POLICY.marker_interval
        self.unmarked = 0
        """Steps enqueued since the last marker."""
        self.shots = shots
        self.rng = rng
        self.control = control
        self.max_states = max(2, max_states)
        self.sampled = program.is_sampled
        self.finals = [op for op in (density or program).measurements if op.final]
        self.words = words_of(program.num_clbits)
        self.keep_memory = keep_memory
        self.recorder = SaveRecorder(self.sampled)
        self.rows: list[np.ndarray] = []
        """Per finished branch, without memory: its distinct outcomes (k, words)..."""
        self.counts: list[np.ndarray] = []
        """... and how many of its shots gave each."""
        self.memory: list[np.ndarray] = []
        """Per finished branch, when memory is kept: every shot's row."""
        self.final_qubits = list(dict.fromkeys(
            op.qubit for op in sorted(self.finals, key=lambda op: op.clbit)))
        """The finally measured qubits by their first clbit: an outcome's bit ``k`` is
        ``final_qubits[k]`` (see :data:`MARGINAL_SAMPLING_MAX_QUBITS`)."""
        self.final_positions = np.array([self.final_qubits.index(op.qubit)
                                         for op in self.finals], dtype=np.uint64)
        """Each final measurement's bit in an outcome."""
        self.final_clbits = np.array([op.clbit for op in self.finals], dtype=np.uint64)
        """Each final measurement's clbit."""
        self.final_mask: np.uint64 | None = None
        """The final clbits' bits, where rows are one word and no clbit is written twice
        (then :meth:`_with_finals` sets them all at once), else None."""
        if self.words == 1 and len(set(self.final_clbits.tolist())) == self.final_clbits.size:
            self.final_mask = np.bitwise_or.reduce(np.uint64(1) << self.final_clbits) \
                if self.final_clbits.size else np.uint64(0)
        self.pending: list[_Branch] = []
        self.live = 0
        self.branches = 0
        self.handlers = {
            MeasureOp: self._measure,
            ResetOp: self._reset,
            **dict.fromkeys(SAVE_OPS, self._save),
            JumpOp: lambda branch, op: op.target,
            BranchOp: lambda branch, op: (
                branch.pc + 1 if op.condition(branch.classical) else op.target),
            SwitchOp: lambda branch, op: op.cases.get(op.target(branch.classical), op.default),
            StoreOp: self._store,
            NoiseSelectOp: self._select,
            KrausOp: self._kraus,
        }

    # --- states ------------------------------------------------------------------------

    def _allocate(self, dtype: np.dtype, num_qubits: int | None = None):
        state = self.kernels.allocate(num_qubits or self.program.num_qubits, dtype,
                                      self.stream)
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
        if self.density is not None:
            self._execute_density(dtype)
            return
        if self.program.mixtures is not None and self.program.mixtures.fits(self.shots):
            self.error_patterns = True
            self._execute_patterns(dtype)
            return
        if self.program.shots_as_batch:
            self._execute_batched(dtype)
            return
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

    def _execute_patterns(self, dtype: np.dtype) -> None:
        """Run a mixture-only program as one trajectory per distinct error pattern, keeping
        the states at chunk boundaries that later patterns share
        (:mod:`gpuprovider.compile.mixtures`)."""
        plan = self.program.mixtures
        patterns = plan.sample(self.shots, self.rng)
        stack: list[tuple[int, Any]] = [(0, self._allocate(dtype))]  # (chunks applied, state)
        try:
            previous = None
            for index, (pattern, count) in enumerate(patterns):
                shared = shared_chunks(previous, pattern)
                while stack[-1][0] > shared:
                    self._release(stack.pop()[1])
                following = patterns[index + 1][0] if index + 1 < len(patterns) else None
                ahead = shared_chunks(pattern, following)
                done, state = stack[-1]
                if ahead > done and len(stack) + 1 < self.max_states:
                    state = self._clone(state)
                    stack.append((ahead, state))  # released by the finally if this fails
                    self._apply_chunks(plan, pattern, state, done, ahead)
                    done = ahead
                if following is None or ahead < done:  # no later pattern starts from it
                    stack.pop()
                else:
                    state = self._clone(state)
                try:
                    self._apply_chunks(plan, pattern, state, done, plan.num_chunks)
                    branch = _Branch(state, count, self.program.new_classical_state())
                    for save in plan.saves:
                        self._save(branch, save)
                    self._finish(branch)
                finally:
                    self._release(state)
                previous = pattern
        finally:
            for _, state in stack:
                self._release(state)

    def _execute_batched(self, dtype: np.dtype) -> None:
        """Run every shot as its own trajectory, a chunk of shots at a time as one batch of
        states (:mod:`gpuprovider.trajectories`)."""
        rows, sums = trajectories.run_shots(self.program, dtype, self.shots, self.rng,
                                            self.control.check, self.control.advance)
        for op in self.program.ops:
            if isinstance(op, SAVE_OPS) and op.label in sums:
                self.recorder.record(op, sums[op.label] / self.shots, self.shots, "", {})
        self.branches = self.shots
        if self.keep_memory:
            self.memory.append(rows)
        else:
            self._tally(*np.unique(rows, axis=0, return_counts=True))
        self.control.mark(COMPLETE)

    def _execute_density(self, dtype: np.dtype) -> None:
        """Run the program's density matrix once; every shot is drawn from its diagonal
        (:mod:`gpuprovider.compile.density`)."""
        state = self._allocate(dtype, self.density.num_qubits)
        try:
            apply_density(self.density, self.kernels, state, self.control)
            self._finish(_Branch(state, self.shots, self.program.new_classical_state()))
        finally:
            self._release(state)

    def _diagonal(self, state: Any) -> np.ndarray:
        """The basis-state probabilities of a density-matrix state: ``Re rho[i, i]``."""
        n = self.program.num_qubits
        amplitudes = np.asarray(self.kernels.to_host(state))
        return np.clip(amplitudes[np.arange(1 << n) * ((1 << n) + 1)].real.astype(np.float64),
                       0, None)

    def _marginal(self, state: Any, qubits: list[int]) -> np.ndarray:
        """Probabilities of the outcomes over ``qubits`` (index bit ``k``: ``qubits[k]``)."""
        if self.density is None:
            return np.asarray(self.kernels.marginal_probabilities(
                state, np.asarray(qubits, dtype=np.int64)), dtype=np.float64)
        diagonal = self._diagonal(state)
        outcomes = np.zeros(diagonal.size, dtype=np.int64)
        for position, qubit in enumerate(qubits):
            outcomes |= ((np.arange(diagonal.size) >> qubit) & 1) << position
        return np.bincount(outcomes, weights=diagonal, minlength=1 << len(qubits))

    def _sample(self, state: Any, uniforms: np.ndarray) -> np.ndarray:
        """Basis-state indices drawn by ``uniforms`` (one per shot)."""
        if self.density is None:
            return self.kernels.sample(state, uniforms)
        return draw_sorted(self._diagonal(state), uniforms)

    def _final_sampler(self, state: Any) -> Callable[[np.ndarray], np.ndarray]:
        """Draws of the final measurements' outcomes (indices over ``final_qubits``), sorted,
        one per uniform: from their marginal when they are few
        (:data:`MARGINAL_SAMPLING_MAX_QUBITS`), else from the whole state."""
        qubits = self.final_qubits
        if qubits == list(range(self.program.num_qubits)):  # the marginal is the state
            return lambda uniforms: self._sample(state, uniforms)
        if len(qubits) <= MARGINAL_SAMPLING_MAX_QUBITS:
            probabilities = np.clip(self._marginal(state, qubits), 0, None)
            return lambda uniforms: draw_sorted(probabilities, uniforms)

        def over_qubits(uniforms: np.ndarray) -> np.ndarray:
            indices = self._sample(state, uniforms)
            values = np.zeros(indices.size, dtype=np.int64)
            for position, qubit in enumerate(qubits):
                values |= ((indices >> qubit) & 1) << position
            return values
        return over_qubits

    def _apply_chunks(self, plan: MixturePlan, pattern: Pattern, state: Any, start: int,
                      stop: int) -> None:
        for chunk in range(start, stop):
            self.control.check()
            for op in plan.chunk_ops(chunk, pattern[chunk]):
                op.apply(self.kernels, state)

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
                self._advance(branch, 1)
        self._finish(branch)

    def _advance(self, branch: _Branch, steps: int) -> None:
        """Report steps enqueued; every ``marker_interval`` of them, a marker after them."""
        self.control.advance(steps)
        self.unmarked += steps
        if self.unmarked >= self.marker_interval:
            self.control.mark(self.kernels.record_marker(branch.state))
            self.unmarked = 0

    def _finish(self, branch: _Branch) -> None:
        """Sample the final measurements for every shot of a branch that reached the end."""
        base = clbits_row(branch.classical.clbits, self.words)
        if self.keep_memory:  # counted once, from the whole memory, at the end
            if self.finals:
                self.control.check()
                outcomes = self._final_sampler(branch.state)(self.rng.random(branch.shots))
                self.memory.append(self._read_out_shots(self._with_finals(base, outcomes)))
            else:
                self.memory.append(np.repeat(base, branch.shots, axis=0))
        elif self.finals:
            self.control.check()
            outcomes, counts = self._final_counts(branch)
            self._tally(*self._read_out_counts(self._with_finals(base, outcomes), counts))
        else:
            self._tally(base, np.array([branch.shots], dtype=np.int64))
        self.recorder.finish(branch.per_shot, branch.shots)
        self.branches += 1
        if not self.sampled:
            self.control.advance(branch.shots)
        self.control.mark(self.kernels.record_marker(branch.state))
        self.unmarked = 0

    def _read_out_counts(self, rows: np.ndarray, counts: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
        """Final measurements' readout errors on counted rows: each row's shots split by a
        binomial draw per clbit whose measurement has a confusion matrix."""
        for op in self.finals:
            if op.readout is None:
                continue
            word, mask, flip_probability = _flip_probability(rows, op)
            flips = self.rng.binomial(counts, flip_probability)
            flipped = rows.copy()
            flipped[:, word] ^= mask
            rows = np.concatenate([rows, flipped])
            counts = np.concatenate([counts - flips, flips])
            kept = counts > 0
            rows, counts = rows[kept], counts[kept]
        return rows, counts

    def _read_out_shots(self, rows: np.ndarray) -> np.ndarray:
        """Final measurements' readout errors on per-shot rows: one draw per shot and clbit."""
        for op in self.finals:
            if op.readout is not None:
                word, mask, flip_probability = _flip_probability(rows, op)
                rows[self.rng.random(len(rows)) < flip_probability, word] ^= mask
        return rows

    def _tally(self, rows: np.ndarray, counts: np.ndarray) -> None:
        self.rows.append(rows)
        self.counts.append(counts.astype(np.int64))

    def _with_finals(self, base: np.ndarray, outcomes: np.ndarray) -> np.ndarray:
        """``base`` once per outcome (an index over ``final_qubits``), with the final
        measurements' clbits set from it (in program order: a clbit written twice keeps the
        last)."""
        rows = np.repeat(base, len(outcomes), axis=0)
        positions = self.final_positions
        if self.final_mask is not None:
            bits = (outcomes.astype(np.uint64)[:, None] >> positions) & np.uint64(1)
            rows[:, 0] = (rows[:, 0] & ~self.final_mask) | np.bitwise_or.reduce(
                bits << self.final_clbits, axis=1)
            return rows
        for op, position in zip(self.finals, positions.tolist()):
            set_clbit(rows, op.clbit, (outcomes >> position) & 1)
        return rows

    def _final_counts(self, branch: _Branch) -> tuple[np.ndarray, np.ndarray]:
        """The distinct outcomes over ``final_qubits`` of a branch's shots and their counts,
        with no per-shot array (see :data:`MULTINOMIAL_MAX_BINS`)."""
        qubits = self.final_qubits
        bins = 1 << len(qubits)
        if bins <= min(branch.shots, MULTINOMIAL_MAX_BINS):
            probabilities = np.clip(self._marginal(branch.state, qubits), 0, None)
            counts = draws.multinomial(self.rng, branch.shots, probabilities)
            outcomes = np.flatnonzero(counts)
            return outcomes.astype(np.int64), counts[outcomes]
        found: dict[int, int] = {}
        left = branch.shots
        draw = self._final_sampler(branch.state)
        while left:
            self.control.check()
            chunk = min(left, SAMPLE_CHUNK_SHOTS)
            values = draw(self.rng.random(chunk))
            for value, count in zip(*np.unique(values, return_counts=True)):
                found[int(value)] = found.get(int(value), 0) + int(count)
            left -= chunk
        outcomes = np.array(sorted(found), dtype=np.int64)
        return outcomes, np.array([found[v] for v in outcomes.tolist()], dtype=np.int64)

    def _collapse(self, branch: _Branch, qubit: int, clbit: int | None,
                  readout: np.ndarray | None = None) -> int | None:
        """Split the branch's shots on ``qubit``'s outcome, written to ``clbit`` (None: a
        reset, which then sets the qubit to 0). Return the next op's index, or None when
        the branch ran its shots as trajectories instead."""
        kernels = self.kernels
        to_zero = clbit is None
        p_one = min(1.0, max(0.0, kernels.probability_of_one(branch.state, qubit)))
        ones = draws.binomial(self.rng, branch.shots, p_one)
        if 0 < ones < branch.shots:
            if self.live + 1 >= self.max_states:  # keep one state for trajectories
                self._trajectories(branch)
                return None
            other = self._clone(branch.state)
            kernels.project(other, qubit, 1, p_one, to_zero=to_zero)
            split = _Branch(other, ones, branch.classical.copy(), branch.pc + 1,
                            dict(branch.per_shot))
            if readout is not None:  # measured again (surely 1), then read out, when run
                split.pc = branch.pc
            elif not to_zero:
                split.classical.set_bit(clbit, 1)
            self.pending.append(split)
            branch.shots -= ones
            outcome = 0
        else:
            outcome = int(ones > 0)
        kernels.project(branch.state, qubit, outcome, p_one if outcome else 1.0 - p_one,
                        to_zero=to_zero)
        if to_zero:
            return branch.pc + 1
        if readout is None:
            branch.classical.set_bit(clbit, outcome)
            return branch.pc + 1
        return self._record(branch, clbit, outcome, readout)

    def _record(self, branch: _Branch, clbit: int, outcome: int,
                readout: np.ndarray) -> int | None:
        """Write a measured ``outcome`` through its readout error: the shots split by the
        recorded bit, the state shared (copied) by both parts."""
        flips = int(self.rng.binomial(branch.shots, readout[outcome, 1 - outcome]))
        if flips == branch.shots:
            branch.classical.set_bit(clbit, 1 - outcome)
            return branch.pc + 1
        if flips:
            if self.live + 1 >= self.max_states:  # re-measured shot by shot: surely outcome
                self._trajectories(branch)
                return None
            flipped = _Branch(self._clone(branch.state), flips, branch.classical.copy(),
                              branch.pc + 1, dict(branch.per_shot))
            flipped.classical.set_bit(clbit, 1 - outcome)
            self.pending.append(flipped)
            branch.shots -= flips
        branch.classical.set_bit(clbit, outcome)
        return branch.pc + 1

    def _trajectories(self, branch: _Branch) -> None:
        """Run each of the branch's shots alone (none of them splits), each from a copy."""
        scratch = self._clone(branch.state)
        try:
            for shot in range(branch.shots):
                if shot:
                    self.kernels.copy_into(scratch, branch.state)
                self._continue(_Branch(scratch, 1, branch.classical.copy(), branch.pc,
                                       dict(branch.per_shot)))
        finally:
            self._release(scratch)

    def _measure(self, branch: _Branch, op: MeasureOp) -> int | None:
        if op.final:
            return branch.pc + 1
        return self._collapse(branch, op.qubit, op.clbit, op.readout)

    def _split(self, branch: _Branch, probabilities: np.ndarray
               ) -> tuple[int, list[tuple[int, _Branch]]] | None:
        """Split the branch's shots among outcomes by one multinomial draw: the outcome with
        the most shots keeps the branch (returned first); every other outcome that received
        shots gets a copy of the state, returned with it (not yet pending). None when the
        copies would pass the state cap: the branch then ran its shots as trajectories."""
        counts = draws.multinomial(self.rng, branch.shots, probabilities)
        chosen = np.flatnonzero(counts).tolist()
        keep = max(chosen, key=lambda outcome: counts[outcome])
        if len(chosen) > 1 and self.live + len(chosen) - 1 >= self.max_states:
            self._trajectories(branch)
            return None
        parts = [(outcome, _Branch(self._clone(branch.state), int(counts[outcome]),
                                   branch.classical.copy(), branch.pc, dict(branch.per_shot)))
                 for outcome in chosen if outcome != keep]
        branch.shots = int(counts[keep])
        return keep, parts

    def _select(self, branch: _Branch, op: NoiseSelectOp) -> int | None:
        """A mixture: each term's shots go on at its block."""
        split = self._split(branch, op.probabilities)
        if split is None:
            return None
        keep, parts = split
        for term, part in parts:
            part.pc = op.targets[term]
            self.pending.append(part)
        return op.targets[keep]

    def _kraus(self, branch: _Branch, op: KrausOp) -> int | None:
        """A Kraus channel: shots split by ``||K_i psi||^2`` (one grouped Pauli read); each
        part continues from ``K_i psi`` normalised."""
        values = self.kernels.expectation_pauli_groups(branch.state, op.x_masks,
                                                       op.term_starts, op.z_masks)
        probabilities = np.clip(op.weights @ values, 0.0, None)
        probabilities /= probabilities.sum()
        split = self._split(branch, probabilities)
        if split is None:
            return None
        keep, parts = split
        dtype = op.matrices[0].dtype
        for term, part in [*parts, (keep, branch)]:
            self.kernels.apply_matrix(part.state, op.qubits, (op.matrices[term] / np.sqrt(
                probabilities[term])).astype(dtype))
        for _, part in parts:
            part.pc = branch.pc + 1
            self.pending.append(part)
        return branch.pc + 1

    def _reset(self, branch: _Branch, op: ResetOp) -> int | None:
        return self._collapse(branch, op.qubit, None)

    def _store(self, branch: _Branch, op: StoreOp) -> int:
        op.store(branch.classical)
        return branch.pc + 1

    # --- saves -------------------------------------------------------------------------

    def _save(self, branch: _Branch, op: SaveOp) -> int:
        key = hex(branch.classical.clbits) if self.program.num_clbits else ""
        if self.recorder.wants(op, key):
            self.recorder.record(op, save_value(op, self.kernels, branch.state), branch.shots,
                                 key, branch.per_shot)
        return branch.pc + 1

    def outcome(self) -> Outcome:
        order = None  # shots are exchangeable: several branches' shots are shuffled
        sorted_samples = self.keep_memory and bool(self.finals)  # sampling sorts the shots
        if sorted_samples or (self.branches > 1 and (self.keep_memory
                                                     or self.recorder.needs_shot_order())):
            order = self.rng.permutation(self.shots)
        memory = None
        if self.keep_memory:
            memory = (np.concatenate(self.memory) if self.memory
                      else np.zeros((0, self.words), np.uint64))
            if order is not None:
                memory = memory[order]
            rows, inverse = _distinct_rows(memory)
            counts = np.bincount(inverse, minlength=len(rows))
        else:
            rows, counts = _merged_tallies(self.rows, self.counts, self.words)
        return Outcome(self.program, self.shots, rows, counts.astype(np.int64), memory,
                       self.recorder.values(order), sampled=self.sampled,
                       branches=self.branches,
                       method="statevector" if self.density is None else "density_matrix",
                       error_patterns=self.error_patterns,
                       device_metadata=self.kernels.stream_metadata(self.stream))


def _flip_probability(rows: np.ndarray, op: MeasureOp) -> tuple[int, np.uint64, np.ndarray]:
    """``(word, mask, per-row probability)`` that ``op``'s readout error flips its clbit."""
    word, bit = divmod(op.clbit, WORD_BITS)
    mask = np.uint64(1) << np.uint64(bit)
    true = ((rows[:, word] & mask) != 0).astype(np.int64)
    return word, mask, op.readout[true, 1 - true]


def _merged_tallies(rows: list[np.ndarray], counts: list[np.ndarray],
                    words: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of several tallies and their summed counts (exact integers)."""
    if not rows:
        return np.zeros((0, words), np.uint64), np.zeros(0, np.int64)
    unique, inverse = _distinct_rows(np.concatenate(rows))
    total = np.zeros(len(unique), dtype=np.int64)
    np.add.at(total, inverse, np.concatenate(counts))
    return unique, total


def _distinct_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(rows, axis=0, return_inverse=True)`` (the inverse flat); one-word rows as
    a 1-D unique, which orders them alike without comparing row views."""
    if rows.shape[1] == 1:
        unique, inverse = np.unique(rows[:, 0], return_inverse=True)
        return unique[:, None], inverse.ravel()
    unique, inverse = np.unique(rows, axis=0, return_inverse=True)
    return unique, inverse.ravel()


def run_program(
    program: Program, kernels: KernelSet, dtype: np.dtype, shots: int,
    rng: np.random.Generator, control: RunControl, max_states: int = DEFAULT_BRANCH_STATES,
    keep_memory: bool = False, density: Program | None = None,
) -> Outcome:
    """Run ``program`` for ``shots`` shots on a fresh state of ``dtype``, holding at most
    ``max_states`` statevectors at once (at least 2 when the program has mid-circuit
    measurements or resets). ``keep_memory``: keep every shot's clbits in shot order (else
    only the counts of each outcome, with no per-shot array). ``density``: run this
    density-matrix program of ``program`` (``program.density``) instead, once for every
    shot."""
    start = time.perf_counter()
    run = _Run(program, kernels, shots, rng, control, max_states, keep_memory, density)
    run.execute(dtype)
    outcome = run.outcome()
    outcome.time_taken = time.perf_counter() - start
    return outcome


def apply_density(density: Program, kernels: KernelSet, state: Any,
                  control: RunControl | None = None) -> None:
    """Apply a density-matrix program's ops to ``state``; its final measurements are not
    ops to apply (the engine draws them from the diagonal)."""
    for op in density.ops:
        if control is not None:
            control.check()
        if not isinstance(op, MeasureOp):
            op.apply(kernels, state)


def density_matrix_amplitudes(density: Program, kernels: KernelSet, dtype: np.dtype,
                              control: RunControl) -> np.ndarray:
    """The amplitudes (on the host) of a density-matrix program's state
    (:mod:`gpuprovider.compile.density`) run from ``|0><0|``."""
    state = kernels.allocate(density.num_qubits, dtype, kernels.new_stream())
    try:
        apply_density(density, kernels, state, control)
        return np.asarray(kernels.to_host(state))
    finally:
        kernels.release(state)
