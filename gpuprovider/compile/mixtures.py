"""Noisy circuits whose only randomness is mixtures of unitaries, planned as grouped trajectories.

Pauli, depolarizing and unitary errors choose, for every shot, one unitary per channel with
fixed probabilities: the choice does not depend on the state. So every shot's *error pattern*
(which non-identity term each channel applied) can be drawn before anything is simulated
(:meth:`MixturePlan.sample`): a binomial draw per channel for how many shots leave the
identity, which shots, and which terms. Shots with the same pattern share one trajectory.

The circuit is cut into *chunks* of about ``len(gates) / MAX_CHUNKS`` gates. Each chunk is
planned once without errors (tile passes, as the planner makes them), and again, on demand, with
the error terms of a pattern inserted where their channels stand, so that the error gates fuse
into the chunk's passes instead of costing a pass each. Patterns are visited in lexicographic
order of their per-chunk errors; the engine keeps the state at the chunk boundaries that the
next patterns share (a trie walked depth first), so a pattern costs only the chunks after the
point where it leaves its neighbours (see :func:`shared_chunks`).

Saves after the last gate are taken from every pattern's final state (weighted by its shots,
as the engine's branches are). Programs with anything else random (mid-circuit measurements,
resets, Kraus channels, control flow) or with saves between gates keep the engine's shot
branching.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..kernels.policy import PlanPolicy
from .merge import merge_one_qubit_gates
from .program import (
    SAVE_OPS,
    UNITARY_OPS,
    MeasureOp,
    NoiseSelectOp,
    Op,
    Program,
    SaveOp,
)

MAX_CHUNKS = 16
"""At most this many chunks: more let patterns share more of their prefix, fewer let the
planner fuse across more gates."""
MIN_CHUNK_GATES = 24
"""Chunks hold at least this many gates (small circuits get fewer chunks)."""
MAX_DRAWN_ERRORS = 1 << 24
"""Most errors drawn up front for one run (about 16 bytes each, several arrays); a run
expected to draw more (a huge shot count) splits shots at each channel instead."""
CACHE_LIMIT = 64
"""How many chunks planned with errors are kept for patterns that repeat them (a planned
chunk holds its passes' tables: a few hundred KB at 20 qubits)."""

Error = tuple[int, int]
"""(channel, term): the channel's non-identity term that a pattern applies."""
Pattern = tuple[tuple[Error, ...], ...]
"""A shot's errors, per chunk."""


@dataclass(frozen=True)
class Channel:
    """A mixture in the circuit: ``terms[i]`` (gate ops) with ``probabilities[i]``;
    ``identity`` is the term that applies nothing (None when every term does something)."""

    chunk: int
    probabilities: np.ndarray
    identity: int | None
    terms: tuple[tuple[Op, ...], ...]


@dataclass
class MixturePlan:
    """A mixture-only noisy program as chunks (see the module docstring)."""

    num_qubits: int
    dtype: np.dtype
    policy: PlanPolicy
    items: list[list[Op | int]]
    """Per chunk, in program order: gate ops, and channel indices where channels stand."""
    channels: list[Channel]
    saves: list[SaveOp] = field(default_factory=list)
    """The saves after the last gate, taken from each pattern's final state."""
    ideal: list[list[Op]] = field(default_factory=list)
    """Per chunk, its planned ops with every channel's identity term."""
    _cache: dict[tuple[int, tuple[Error, ...]], list[Op]] = field(default_factory=dict)

    @property
    def num_chunks(self) -> int:
        return len(self.items)

    def fits(self, shots: int) -> bool:
        """Whether drawing the error patterns of ``shots`` shots up front stays within
        :data:`MAX_DRAWN_ERRORS` errors (expected)."""
        per_shot = sum(1.0 if channel.identity is None
                       else 1.0 - float(channel.probabilities[channel.identity])
                       for channel in self.channels)
        return shots * per_shot <= MAX_DRAWN_ERRORS

    def chunk_ops(self, chunk: int, errors: tuple[Error, ...]) -> list[Op]:
        """The planned ops of ``chunk`` with ``errors`` (channels of this chunk) applied."""
        if not errors:
            return self.ideal[chunk]
        key = (chunk, errors)
        planned = self._cache.get(key)
        if planned is None:
            chosen = dict(errors)
            ops: list[Op] = []
            for item in self.items[chunk]:
                if isinstance(item, int):
                    if item in chosen:
                        ops.extend(self.channels[item].terms[chosen[item]])
                else:
                    ops.append(item)
            planned = ops if self.num_qubits < self.policy.min_qubits else self._plan(ops)
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = planned
        return planned

    def _plan(self, ops: list[Op]) -> list[Op]:
        from .plan import plan_ops  # the planner imports this module

        ops = merge_one_qubit_gates(ops, self.num_qubits)
        if self.num_qubits < self.policy.min_qubits or not ops:
            return ops
        return plan_ops(ops, self.num_qubits, self.dtype, self.policy, put_back=True)

    def sample(self, shots: int, rng: np.random.Generator) -> list[tuple[Pattern, int]]:
        """Every distinct error pattern among ``shots`` shots and how many shots drew it, in
        lexicographic order. Each shot draws each channel's term independently with the
        channel's probabilities (as a binomial count of shots that leave the identity, a
        uniform choice of which, and their terms)."""
        shot_parts, channel_parts, term_parts = [], [], []
        for index, channel in enumerate(self.channels):
            if channel.identity is None:
                hit = np.arange(shots)
                others = np.arange(len(channel.terms))
                weights = channel.probabilities
            else:
                stay = float(channel.probabilities[channel.identity])
                count = int(rng.binomial(shots, max(0.0, 1.0 - stay)))
                if not count:
                    continue
                hit = rng.choice(shots, size=count, replace=False)
                others = np.delete(np.arange(len(channel.terms)), channel.identity)
                weights = np.delete(channel.probabilities, channel.identity)
            shot_parts.append(hit)
            channel_parts.append(np.full(len(hit), index))
            term_parts.append(others[rng.choice(len(others), size=len(hit),
                                                p=weights / weights.sum())])
        patterns: dict[Pattern, int] = {}
        clean = shots
        if shot_parts:
            shot_of = np.concatenate(shot_parts)
            channel_of = np.concatenate(channel_parts)
            term_of = np.concatenate(term_parts)
            order = np.lexsort((channel_of, shot_of))
            shot_of, channel_of, term_of = shot_of[order], channel_of[order], term_of[order]
            starts = np.flatnonzero(np.diff(shot_of, prepend=-1))
            ends = np.append(starts[1:], len(shot_of))
            chunk_of = np.array([channel.chunk for channel in self.channels])[channel_of]
            channel_list, term_list, chunk_list = (channel_of.tolist(), term_of.tolist(),
                                                   chunk_of.tolist())
            empty: list[tuple[Error, ...]] = [()] * self.num_chunks
            for start, end in zip(starts.tolist(), ends.tolist()):
                per_chunk = list(empty)
                for j in range(start, end):
                    per_chunk[chunk_list[j]] += ((channel_list[j], term_list[j]),)
                key = tuple(per_chunk)
                patterns[key] = patterns.get(key, 0) + 1
            clean -= len(starts)
        if clean:
            patterns[((),) * self.num_chunks] = clean
        return sorted(patterns.items())


def shared_chunks(first: Pattern | None, second: Pattern | None) -> int:
    """How many leading chunks two patterns apply identically (0 when either is None)."""
    if first is None or second is None:
        return 0
    count = 0
    for a, b in zip(first, second):
        if a != b:
            break
        count += 1
    return count


def plan_mixtures(program: Program, policy: PlanPolicy) -> MixturePlan | None:
    """``program`` as a :class:`MixturePlan`, or None when it holds randomness other than
    mixtures of unitaries, or saves before its last gate."""
    ops = program.ops
    sequence: list[Op | tuple[np.ndarray, tuple[tuple[Op, ...], ...]]] = []
    saves: list[SaveOp] = []
    position = 0
    while position < len(ops):
        op = ops[position]
        if saves and not isinstance(op, (*SAVE_OPS, MeasureOp)):
            return None
        if isinstance(op, SAVE_OPS):
            saves.append(op)
            position += 1
        elif isinstance(op, UNITARY_OPS):
            sequence.append(op)
            position += 1
        elif isinstance(op, MeasureOp) and op.final:
            position += 1
        elif isinstance(op, NoiseSelectOp):
            blocks = op.blocks(ops)
            if not all(isinstance(gate, UNITARY_OPS) for block in blocks for gate in block):
                return None
            sequence.append((op.probabilities, tuple(tuple(block) for block in blocks)))
            position = op.end
        else:
            return None
    gates = sum(1 for item in sequence if not isinstance(item, tuple))
    count = max(1, min(MAX_CHUNKS, gates // MIN_CHUNK_GATES))
    per_chunk = math.ceil(max(gates, 1) / count)
    items: list[list[Op | int]] = [[] for _ in range(count)]
    channels: list[Channel] = []
    seen = 0
    for item in sequence:
        chunk = min(count - 1, seen // per_chunk)
        if isinstance(item, tuple):
            probabilities, terms = item
            empty = [i for i, term in enumerate(terms) if not term]
            channels.append(Channel(chunk, probabilities, empty[0] if empty else None, terms))
            items[chunk].append(len(channels) - 1)
        else:
            items[chunk].append(item)
            seen += 1
    if policy.dtype is None:
        raise ValueError("plan_mixtures() needs a PlanPolicy with a dtype")
    plan = MixturePlan(program.num_qubits, np.dtype(policy.dtype), policy, items, channels,
                       saves)
    plan.ideal = [plan._plan([item for item in chunk if not isinstance(item, int)])
                  for chunk in items]
    return plan
