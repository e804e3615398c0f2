"""Noisy shots of a small state as one batch of states: every shot its own trajectory.

Branching (:mod:`gpuprovider.engine`) splits a state's shots at each random event; with a
Kraus channel on every gate, a few hundred shots soon are a few hundred branches, each
running every op through Python on a handful of amplitudes. Here the shots of a program on
at most :data:`MAX_QUBITS` qubits run together instead: a chunk of shots is one ``(shots,
2**n)`` array (:mod:`gpuprovider.kernels.batch`), a gate is one NumPy operation on all of
them, and each random event draws one uniform per shot: a Kraus channel's outcome (by the
shot's own ``||K_i psi||^2``), a mixture's term (its shots then run that term's block
together), a mid-circuit measurement or reset, a readout error, and at the end each shot's
final measurements from its own state. Averaged Pauli values saved after every other op (an
estimator's read-out) are read from every shot's final state at once and summed.

Which programs run this way (:attr:`~gpuprovider.compile.program.Program.shots_as_batch`)
depends on the program alone, never on the device: each MPI rank runs it whole, and the
counts for a seed do not depend on the device or on how a state would have been spread.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .compile.program import (
    KrausOp,
    MeasureOp,
    NoiseSelectOp,
    Program,
    ResetOp,
    SavePauliValuesOp,
    batched_final_saves,
)
from .kernels import batch
from .kernels.layout import inverse_cdf, inverse_cdf_rows
from .shots import set_clbit, words_of

CHUNK_AMPLITUDES = 1 << 20
"""Amplitudes of one chunk of shots (16 MiB in double): 2048 shots of 9 qubits at once."""


class _Chunk:
    """One chunk of shots: their states and clbits, and the uniforms they draw."""

    def __init__(self, program: Program, shots: int, dtype: np.dtype,
                 rng: np.random.Generator, check: Callable[[], None]) -> None:
        self.program = program
        self.states = batch.allocate(shots, program.num_qubits, dtype)
        self.clbits = np.zeros((shots, words_of(program.num_clbits)), dtype=np.uint64)
        self.rng = rng
        self.check = check
        self.index = np.arange(1 << program.num_qubits, dtype=np.int64)
        self.effects: dict[int, np.ndarray] = {}
        """``K_i^dagger K_i`` of each Kraus channel, by the op's id (the program holds it)."""

    def run(self, start: int, stop: int, rows: np.ndarray) -> None:
        """Run ops ``start .. stop`` on the shots ``rows`` (ascending)."""
        ops = self.program.ops
        pc = start
        while pc < stop:
            self.check()
            op = ops[pc]
            if isinstance(op, NoiseSelectOp):
                self._select(op, rows)
                pc = op.end
                continue
            if isinstance(op, KrausOp):
                self._on(rows, lambda states, op=op: self._kraus(op, states))
            elif isinstance(op, MeasureOp):
                if not op.final:
                    self._measure(op.qubit, op.clbit, op.readout, rows)
            elif isinstance(op, ResetOp):
                self._measure(op.qubit, None, None, rows)
            elif isinstance(op, SavePauliValuesOp):
                pass  # after every other op: read by saved_sums()
            else:
                self._on(rows, lambda states, op=op: op.apply(batch, states))
            pc += 1

    def _on(self, rows: np.ndarray, update: Callable[[np.ndarray], None]) -> None:
        if rows.size == len(self.states):
            update(self.states)
            return
        states = self.states[rows]
        update(states)
        self.states[rows] = states

    def _choose(self, probabilities: np.ndarray) -> np.ndarray:
        """Per shot (row of ``probabilities``), the outcome its uniform draws
        (:func:`~gpuprovider.kernels.layout.inverse_cdf_rows`)."""
        return inverse_cdf_rows(probabilities, self.rng.random(len(probabilities)))

    def _select(self, op: NoiseSelectOp, rows: np.ndarray) -> None:
        terms = inverse_cdf(op.probabilities, self.rng.random(rows.size))
        for term, (start, stop) in enumerate(op.block_ranges()):
            chosen = rows[terms == term]
            if chosen.size:
                self.run(start, stop, chosen)

    def _kraus(self, op: KrausOp, states: np.ndarray) -> None:
        """Each shot's outcome ``i`` by its ``||K_i psi||^2`` (read from the reduced density
        matrix of the channel's qubits); the most frequent outcome's matrix is applied to
        every shot in place, the others' to copies of their shots taken before."""
        effects = self.effects.get(id(op))
        if effects is None:
            matrices = np.asarray(op.matrices, dtype=np.complex128)
            effects = self.effects[id(op)] = np.conj(np.swapaxes(matrices, 1, 2)) @ matrices
        rho = _reduced_density_matrices(states, op.qubits)
        probabilities = np.clip(np.einsum("kab,rba->rk", effects, rho).real, 0.0, None)
        outcomes = self._choose(probabilities)
        terms, counts = np.unique(outcomes, return_counts=True)
        most = int(terms[np.argmax(counts)])
        others = [(int(term), outcomes == term) for term in terms if term != most]
        before = [(term, chosen, states[chosen]) for term, chosen in others]
        batch.apply_matrix(states, op.qubits, op.matrices[most])
        for term, chosen, part in before:
            batch.apply_matrix(part, op.qubits, op.matrices[term])
            states[chosen] = part
        norms = probabilities[np.arange(len(states)), outcomes]
        states /= np.sqrt(norms).astype(states.real.dtype)[:, None]

    def _measure(self, qubit: int, clbit: int | None, readout: np.ndarray | None,
                 rows: np.ndarray) -> None:
        """Collapse ``qubit`` of each shot; write the outcome to ``clbit`` (through
        ``readout``), or with ``clbit`` None reset the qubit to 0."""
        states = self.states[rows]
        one = ((self.index >> qubit) & 1).astype(bool)
        weights = np.abs(states) ** 2
        p_one = np.clip(weights[:, one].sum(axis=1) / weights.sum(axis=1), 0.0, 1.0)
        outcomes = self._choose(np.stack([1.0 - p_one, p_one], axis=1))
        kept = np.where(outcomes[:, None] == 1, one[None, :], ~one[None, :])
        states *= kept
        norms = np.where(outcomes == 1, p_one, 1.0 - p_one)
        states /= np.sqrt(np.maximum(norms, np.finfo(np.float64).tiny)).astype(
            states.real.dtype)[:, None]
        if clbit is None:
            flipped = outcomes == 1
            states[flipped] = states[flipped][:, self.index ^ (1 << qubit)]
        else:
            if readout is not None:
                flips = self.rng.random(rows.size) < readout[outcomes, 1 - outcomes]
                outcomes = outcomes ^ flips
            clbits = self.clbits[rows]
            set_clbit(clbits, clbit, outcomes.astype(np.uint64))
            self.clbits[rows] = clbits
        self.states[rows] = states

    def finish(self) -> np.ndarray:
        """Every shot's clbits (rows in shot order) once its final measurements are drawn
        from its own state (and read out through their readout errors)."""
        finals = [op for op in self.program.ops if isinstance(op, MeasureOp) and op.final]
        if finals:
            drawn = self._choose(np.abs(self.states) ** 2)
            for op in finals:
                bits = (drawn >> op.qubit) & 1
                if op.readout is not None:
                    flips = self.rng.random(bits.size) < op.readout[bits, 1 - bits]
                    bits = bits ^ flips
                set_clbit(self.clbits, op.clbit, bits.astype(np.uint64))
        return self.clbits


    def saved_sums(self) -> dict[str, np.ndarray]:
        """Per averaged Pauli-value save (all at the end), its values summed over the
        chunk's shots, from each shot's final state."""
        return {op.label: batch.expectation_pauli_groups(
                    self.states, op.x_masks, op.term_starts, op.z_masks).sum(axis=0)
                for op in batched_final_saves(self.program.ops) or ()
                if isinstance(op, SavePauliValuesOp)}


def _reduced_density_matrices(states: np.ndarray, qubits: np.ndarray) -> np.ndarray:
    """``(shots, d, d)`` complex128: each state's density matrix on ``qubits`` (entry ``a``
    spelled by bit ``j`` of ``qubits[j]``), the other qubits traced out."""
    shots, n = len(states), states.shape[1].bit_length() - 1
    axes = [n - int(q) for q in qubits]  # a C-order reshape puts qubit q on axis n - q
    rest = [axis for axis in range(1, n + 1) if axis not in axes]
    grouped = states.reshape((shots,) + (2,) * n).transpose([0, *rest, *axes[::-1]])
    amplitudes = grouped.reshape(shots, -1, 1 << len(axes)).astype(np.complex128)
    return np.swapaxes(amplitudes, 1, 2) @ np.conj(amplitudes)


def run_shots(program: Program, dtype: np.dtype, shots: int, rng: np.random.Generator,
              check: Callable[[], None], advance: Callable[[int], None]
              ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``(shots, words)`` uint64: every shot's clbits, in shot order, for a program whose
    ``shots_as_batch`` (``check`` raises to stop; ``advance`` counts finished shots); and
    per averaged Pauli-value save, its values summed over the shots."""
    per_chunk = max(1, CHUNK_AMPLITUDES >> program.num_qubits)
    parts = []
    sums: dict[str, np.ndarray] = {}
    for first in range(0, shots, per_chunk):
        count = min(per_chunk, shots - first)
        chunk = _Chunk(program, count, dtype, rng, check)
        chunk.run(0, len(program.ops), np.arange(count))
        parts.append(chunk.finish())
        for label, total in chunk.saved_sums().items():
            sums[label] = sums[label] + total if label in sums else total
        advance(count)
    if not parts:
        return np.zeros((0, words_of(program.num_clbits)), dtype=np.uint64), sums
    return np.concatenate(parts), sums
