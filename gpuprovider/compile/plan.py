"""The pass planner: a Program's gates regrouped so that the state is read and written fewer
times.

Applying a gate is memory-bound, so the cost of a circuit is the number of passes over the
state. The planner runs on the host, once per circuit, for any device:

1. **SWAPs become a relabelling.** A SWAP moves no data: later ops name the other qubit
   instead. Measurements, resets and saves of probabilities or expectation values are
   renamed too; before a statevector save the qubits are swapped back into place.
2. **Cache blocking.** Runs of gates are grouped into *tile passes*: a greedy scan takes every
   gate whose tile qubits fit in one tile of ``m`` qubits, deferring those that do not (and
   everything that does not commute with a deferred gate: gates on shared qubits, unless both
   are diagonal). Diagonal gates and controls need no tile qubit: the bits outside the tile
   are the same for a whole chunk, so they come from the chunk's index. Each group becomes one
   :class:`~gpuprovider.compile.program.TileOp`, applied tile by tile (the format:
   :mod:`gpuprovider.kernels.tiles`).
3. **Fusion inside a pass.** A gate is multiplied into an earlier one of its pass (moving past
   gates it commutes with) when the product costs no more than the two did: the device's
   ``GATE_COST`` table prices a dense block by its width, diagonals fold into diagonals up to
   ``DIAGONAL_MAX_QUBITS``, and dense blocks stay within ``FUSION_MAX_QUBITS``. A diagonal
   joins a dense block only on the block's own qubits: spread wider, it stays a diagonal,
   which later diagonals fold into (a QFT's phases stay one diagonal per Hadamard).

Programs with control flow are left as they are (their jump targets are op indices).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import ModuleType

import numpy as np

from ..kernels.layout import basis_offsets, controlled_layout, permutation_matrix
from ..kernels.tiles import (
    CONDITION_MASK,
    CONDITION_VALUE,
    CONTROLLED1,
    DATA,
    DENSE1,
    DENSE2,
    DIAGONAL,
    GATHER,
    KIND,
    TABLE_FIELDS,
    A,
    B,
    C,
    D,
    run_layout,
)
from .merge import merged
from .program import (
    SWAP_PERMUTATION,
    ControlledOp,
    DiagonalOp,
    MatrixOp,
    MeasureOp,
    Op,
    PermutationOp,
    Program,
    ResetOp,
    SaveDensityMatrixOp,
    SaveExpectationValueOp,
    SavePauliValuesOp,
    SaveProbabilitiesOp,
    TileOp,
    is_swap,
)

DIAGONAL_MIN_ROW_QUBITS = 4
"""A diagonal's rows of phases span at least 2**4 amplitudes, so that they vectorise."""
LOOKBACK = 8
"""How many earlier gates of a pass a gate may move past to be fused."""


@dataclass(frozen=True)
class PlanPolicy:
    """The device facts the planner needs (each kernels module defines them)."""

    tile_qubits: int
    low_qubits: int
    lane_qubits: int
    fusion_max_qubits: int
    diagonal_max_qubits: int
    dense_cost: tuple[float, ...]
    diagonal_cost: float
    parallel_min_qubits: int
    min_qubits: int = 0

    @classmethod
    def of(cls, kernels: ModuleType, dtype: np.dtype) -> PlanPolicy:
        """The policy of a kernels module for states of ``dtype``."""
        return cls(
            tile_qubits=kernels.TILE_QUBITS[np.dtype(dtype).itemsize],
            low_qubits=kernels.TILE_LOW_QUBITS,
            lane_qubits=kernels.TILE_LANE_QUBITS[np.dtype(dtype).itemsize],
            fusion_max_qubits=kernels.FUSION_MAX_QUBITS,
            diagonal_max_qubits=kernels.DIAGONAL_MAX_QUBITS,
            dense_cost=tuple(kernels.GATE_COST["dense"]),
            diagonal_cost=kernels.GATE_COST["diagonal"],
            parallel_min_qubits=kernels.PARALLEL_MIN_QUBITS,
            min_qubits=kernels.PLAN_MIN_QUBITS,
        )

    def tile_for(self, num_qubits: int) -> tuple[int, int]:
        """``(tile qubits, lane qubits)`` for a state: a small state is one tile without
        lanes; a large one leaves at least 8 chunks so that every thread has work."""
        if num_qubits < self.parallel_min_qubits:
            return num_qubits, 0
        tile = max(min(self.low_qubits, num_qubits), min(self.tile_qubits, num_qubits - 3))
        lanes = min(self.lane_qubits, tile - 2)
        return tile, max(0, lanes)


@dataclass(frozen=True)
class _Gate:
    """A unitary the planner can place in a tile pass.

    ``kind`` is "dense" (``values`` a matrix on ``qubits``), "diagonal" (``values`` the
    diagonal on ``qubits``) or "controlled" (``values`` a matrix on ``qubits``, applied where
    ``controls`` read ``control_state``). ``sources``: how many program ops it came from.
    """

    kind: str
    qubits: tuple[int, ...]
    values: np.ndarray
    controls: tuple[int, ...] = ()
    control_state: int = 0
    sources: int = 1

    @property
    def touched(self) -> tuple[int, ...]:
        return self.controls + self.qubits

    @property
    def needs_tile(self) -> tuple[int, ...]:
        """The qubits that must be in the tile: none for a diagonal, the targets otherwise."""
        return () if self.kind == "diagonal" else self.qubits

    def cost(self, policy: PlanPolicy) -> float:
        if self.kind == "diagonal":
            return policy.diagonal_cost
        return policy.dense_cost[min(len(self.qubits), len(policy.dense_cost) - 1)]


# --- 1. SWAPs as relabelling --------------------------------------------------------------------


def _remap_mask(mask: int, where: list[int]) -> int:
    out = 0
    for qubit, position in enumerate(where):
        out |= ((mask >> qubit) & 1) << position
    return out


def _renamed(op: Op, where: list[int]) -> Op | None:
    """``op`` acting on the qubits' current positions, or None when it cannot be renamed."""
    def moved(qubits: np.ndarray) -> np.ndarray:
        return np.array([where[int(q)] for q in qubits], dtype=np.int64)

    if isinstance(op, (MatrixOp, DiagonalOp, PermutationOp)):
        return replace(op, qubits=moved(op.qubits))
    if isinstance(op, ControlledOp):
        return replace(op, controls=moved(op.controls), targets=moved(op.targets))
    if isinstance(op, (MeasureOp, ResetOp)):
        return replace(op, qubit=where[op.qubit])
    if isinstance(op, (SaveProbabilitiesOp, SaveDensityMatrixOp)):
        return replace(op, qubits=moved(op.qubits))
    if isinstance(op, SaveExpectationValueOp):
        def terms(pauli_terms):
            return tuple((_remap_mask(x, where), _remap_mask(z, where), coefficient)
                         for x, z, coefficient in pauli_terms)
        return replace(op, terms=terms(op.terms), square_terms=terms(op.square_terms))
    if isinstance(op, SavePauliValuesOp):  # a bijection: the groups stay groups
        def masks(values: np.ndarray) -> np.ndarray:
            return np.array([_remap_mask(int(m), where) for m in values], dtype=np.int64)
        return replace(op, x_masks=masks(op.x_masks), z_masks=masks(op.z_masks))
    return None


def _swap_op(a: int, b: int, dtype: np.dtype) -> PermutationOp:
    return PermutationOp(np.array([a, b], dtype=np.int64), SWAP_PERMUTATION.copy(),
                         np.ones(4, dtype=dtype))


def relabel_swaps(ops: list[Op], num_qubits: int, dtype: np.dtype) -> list[Op]:
    """``ops`` without SWAP gates: later ops name the swapped positions instead. Where an op
    cannot be renamed (a statevector save, a preparation), SWAPs put the qubits back first."""
    in_place = list(range(num_qubits))
    where = list(in_place)  # where[q]: the position holding qubit q
    out: list[Op] = []
    for op in ops:
        if is_swap(op):
            a, b = (int(q) for q in op.qubits)
            where[a], where[b] = where[b], where[a]
            continue
        if where == in_place:  # nothing moved: nothing to rename
            out.append(op)
            continue
        renamed = _renamed(op, where)
        if renamed is not None:
            out.append(renamed)
            continue
        for qubit in range(num_qubits):
            if where[qubit] != qubit:
                holder = where.index(qubit)
                out.append(_swap_op(where[qubit], qubit, dtype))
                where[holder], where[qubit] = where[qubit], qubit
        out.append(op)
    return out


# --- 2. grouping into tile passes ---------------------------------------------------------------


def _as_gate(op: Op, policy: PlanPolicy, room: int) -> _Gate | None:
    """The tile-pass form of ``op``, or None when it ends a run of gates. ``room``: how many
    tile qubits a pass has for targets."""
    if isinstance(op, DiagonalOp):
        if op.qubits.size > policy.diagonal_max_qubits:
            return None
        return _Gate("diagonal", tuple(int(q) for q in op.qubits), op.diagonal)
    if isinstance(op, MatrixOp) and op.qubits.size <= room:
        return _Gate("dense", tuple(int(q) for q in op.qubits), op.matrix)
    if isinstance(op, PermutationOp) and op.qubits.size <= min(room, policy.fusion_max_qubits):
        return _Gate("dense", tuple(int(q) for q in op.qubits),
                     permutation_matrix(op.permutation, op.phases))
    if isinstance(op, ControlledOp) and op.targets.size <= min(room, policy.fusion_max_qubits):
        controls = tuple(int(q) for q in op.controls)
        targets = tuple(int(q) for q in op.targets)
        diagonal = np.diagonal(op.matrix)
        width = len(controls) + len(targets)
        if np.count_nonzero(op.matrix - np.diag(diagonal)) == 0 and \
                width <= policy.diagonal_max_qubits:
            full = np.ones(1 << width, dtype=op.matrix.dtype)
            mask = (1 << len(controls)) - 1
            rows = np.arange(1 << width)
            chosen = (rows & mask) == op.control_state
            full[chosen] = diagonal[rows[chosen] >> len(controls)]
            return _Gate("diagonal", controls + targets, full)
        return _Gate("controlled", targets, op.matrix, controls, op.control_state)
    return None


def group_into_tiles(gates: list[_Gate], num_qubits: int, tile: int, low_qubits: int,
                     lanes: int = 0) -> list[tuple[list[int], list[_Gate]]]:
    """Split ``gates`` (in program order) into tile passes: ``(tile qubits in local order,
    gates)`` each, the gates in an order equivalent to the program's. The first ``lanes``
    local positions hold qubits that no gate of the pass needs in the tile."""
    low = 0 if lanes else min(low_qubits, tile)
    passes = []
    remaining = gates
    while remaining:
        needed = set(range(low))
        chosen: list[_Gate] = []
        deferred: list[_Gate] = []
        blocked_any = np.zeros(num_qubits, dtype=bool)  # a deferred gate touches it
        blocked_dense = np.zeros(num_qubits, dtype=bool)  # a deferred non-diagonal touches it
        for gate in remaining:
            blockers = blocked_dense if gate.kind == "diagonal" else blocked_any
            if not any(blockers[q] for q in gate.touched):
                new = {q for q in gate.needs_tile if q not in needed}
                if len(needed) + len(new) <= tile - lanes:
                    needed |= new
                    chosen.append(gate)
                    continue
            deferred.append(gate)
            for q in gate.touched:
                blocked_any[q] = True
                if gate.kind != "diagonal":
                    blocked_dense[q] = True
        spare = [q for q in range(num_qubits) if q not in needed]
        lane_qubits = spare[:lanes]
        others = sorted(needed | set(spare[lanes:lanes + tile - lanes - len(needed)]))
        passes.append((lane_qubits + others, chosen))
        remaining = deferred
    return passes


# --- 3. fusion inside a pass --------------------------------------------------------------------


def _subindex(positions: list[int], width: int) -> np.ndarray:
    """For each basis state of ``width`` qubits, the index its bits at ``positions`` spell."""
    rows = np.arange(1 << width)
    sub = np.zeros_like(rows)
    for j, position in enumerate(positions):
        sub |= ((rows >> position) & 1) << j
    return sub


def embed_matrix(matrix: np.ndarray, qubits: tuple[int, ...],
                 union: tuple[int, ...]) -> np.ndarray:
    """``matrix`` on ``qubits`` as a matrix on ``union`` (a superset, argument order)."""
    if tuple(qubits) == tuple(union):
        return matrix
    if len(qubits) == 1 and len(union) == 2:  # argument qubit 0 is the low bit
        embedded = np.zeros((4, 4), dtype=matrix.dtype)
        if union[0] == qubits[0]:
            embedded[:2, :2] = embedded[2:, 2:] = matrix
        else:
            embedded[0::2, 0::2] = embedded[1::2, 1::2] = matrix
        return embedded
    positions = [union.index(q) for q in qubits]
    width = len(union)
    sub = _subindex(positions, width)
    rest = np.arange(1 << width) & ~int(basis_offsets(positions)[-1])
    same_rest = rest[:, None] == rest[None, :]
    return np.where(same_rest, matrix[sub[:, None], sub[None, :]], 0).astype(matrix.dtype)


def embed_diagonal(diagonal: np.ndarray, qubits: tuple[int, ...],
                   union: tuple[int, ...]) -> np.ndarray:
    """``diagonal`` on ``qubits`` as a diagonal on ``union``."""
    return diagonal[_subindex([union.index(q) for q in qubits], len(union))]


def _union(first: tuple[int, ...], second: tuple[int, ...]) -> tuple[int, ...]:
    return first + tuple(q for q in second if q not in first)


def _product(earlier: _Gate, later: _Gate, policy: PlanPolicy) -> _Gate | None:
    """``later @ earlier`` as one gate when that costs no more than the two, else None."""
    if "controlled" in (earlier.kind, later.kind):
        return None
    union = _union(earlier.qubits, later.qubits)
    sources = earlier.sources + later.sources
    if earlier.kind == later.kind == "diagonal":
        if len(union) > policy.diagonal_max_qubits:
            return None
        values = (embed_diagonal(earlier.values, earlier.qubits, union)
                  * embed_diagonal(later.values, later.qubits, union))
        return _Gate("diagonal", union, values, sources=sources)
    if "diagonal" in (earlier.kind, later.kind):
        dense = later if earlier.kind == "diagonal" else earlier
        if len(dense.qubits) < len(union):
            return None  # a diagonal joins a dense block only on the block's own qubits
    if len(union) > policy.fusion_max_qubits or \
            policy.dense_cost[len(union)] > earlier.cost(policy) + later.cost(policy):
        return None

    def dense(gate: _Gate) -> np.ndarray:
        values = np.diag(gate.values) if gate.kind == "diagonal" else gate.values
        return embed_matrix(values, gate.qubits, union)

    return _Gate("dense", union, np.ascontiguousarray(dense(later) @ dense(earlier)),
                 sources=sources)


def _commute(first: _Gate, second: _Gate) -> bool:
    return (first.kind == second.kind == "diagonal"
            or not set(first.touched) & set(second.touched))


def fuse(gates: list[_Gate], policy: PlanPolicy) -> list[_Gate]:
    """``gates`` with each multiplied into an earlier one where :func:`_product` allows."""
    fused: list[_Gate] = []
    for gate in gates:
        for back in range(len(fused) - 1, max(-1, len(fused) - 1 - LOOKBACK), -1):
            product = _product(fused[back], gate, policy)
            if product is not None:
                fused[back] = product
                break
            if not _commute(fused[back], gate):
                fused.append(gate)
                break
        else:
            fused.append(gate)
    return fused


# --- encoding -------------------------------------------------------------------------------


class _Encoder:
    """Builds the table, ints and data of one tile pass (format: ``kernels.tiles``)."""

    def __init__(self, tile_qubits: list[int], dtype: np.dtype) -> None:
        self.local = {q: j for j, q in enumerate(tile_qubits)}
        self.tile_bits = len(tile_qubits)
        self.dtype = dtype
        self.rows: list[list[int]] = []
        self.ints: list[np.ndarray] = []
        self.ints_size = 0
        self.data: list[np.ndarray] = []
        self.data_size = 0

    def _put_ints(self, values) -> int:
        values = np.asarray(values, dtype=np.int64).ravel()
        start = self.ints_size
        self.ints.append(values)
        self.ints_size += values.size
        return start

    def _row(self, kind: int, values: np.ndarray, a: int = 0, b: int = 0, c: int = 0,
             d: int = 0, mask: int = 0, value: int = 0) -> None:
        row = [0] * TABLE_FIELDS
        row[KIND], row[A], row[B], row[C], row[D] = kind, a, b, c, d
        row[DATA], row[CONDITION_MASK], row[CONDITION_VALUE] = self.data_size, mask, value
        flat = np.asarray(values, dtype=self.dtype).ravel()
        self.data.append(flat)
        self.data_size += flat.size
        self.rows.append(row)

    def dense(self, qubits: list[int], matrix: np.ndarray, mask: int = 0, value: int = 0):
        if len(qubits) == 1:
            self._row(DENSE1, matrix, qubits[0], mask=mask, value=value)
        elif len(qubits) == 2:
            self._row(DENSE2, matrix, min(qubits), max(qubits), 1 << qubits[0], 1 << qubits[1],
                      mask=mask, value=value)
        else:
            start = self._put_ints(np.concatenate((np.sort(qubits), basis_offsets(qubits))))
            self._row(GATHER, matrix, len(qubits), start, 1 << len(qubits), mask=mask,
                      value=value)

    def controlled(self, gate: _Gate) -> None:
        mask = value = 0
        local_controls: list[int] = []
        local_state = 0
        for j, control in enumerate(gate.controls):
            bit = (gate.control_state >> j) & 1
            if control in self.local:
                local_state |= bit << len(local_controls)
                local_controls.append(self.local[control])
            else:
                mask |= 1 << control
                value |= bit << control
        targets = [self.local[q] for q in gate.qubits]
        if not local_controls:
            self.dense(targets, gate.values, mask, value)
            return
        sorted_qubits, offsets, control_bits = controlled_layout(local_controls, local_state,
                                                                 targets)
        if len(targets) == 1:
            start = self._put_ints(sorted_qubits)
            self._row(CONTROLLED1, gate.values, sorted_qubits.size, start, control_bits,
                      1 << targets[0], mask=mask, value=value)
        else:
            start = self._put_ints(np.concatenate((sorted_qubits, offsets)))
            self._row(GATHER, gate.values, sorted_qubits.size, start, offsets.size, mask=mask,
                      value=value)

    def diagonal(self, gate: _Gate) -> None:
        """A diagonal's tables (see ``kernels.tiles``), its split ``h`` chosen so that the
        distinct rows of phases a chunk needs, ``2**(k_high + h)`` in all, are fewest."""
        positions = {j: self.local[q] for j, q in enumerate(gate.qubits) if q in self.local}
        outside = [value for j, q in enumerate(gate.qubits) if q not in self.local
                   for value in (q, j)]
        shortest = min(DIAGONAL_MIN_ROW_QUBITS, self.tile_bits)

        def high(h: int) -> list[int]:
            return [j for j, position in positions.items() if position >= h]

        h = min(range(shortest, self.tile_bits + 1), key=lambda h: (len(high(h)) + h, -h))
        table_a = np.zeros(1 << h, dtype=np.int64)
        row_of = np.zeros(1 << (self.tile_bits - h), dtype=np.int64)
        row_bits = np.zeros(1 << len(high(h)), dtype=np.int64)
        for j, position in positions.items():
            if position < h:
                table_a |= ((np.arange(table_a.size) >> position) & 1) << j
        for t, j in enumerate(high(h)):
            row_of |= ((np.arange(row_of.size) >> (positions[j] - h)) & 1) << t
            row_bits |= ((np.arange(row_bits.size) >> t) & 1) << j
        start = self._put_ints(np.concatenate((table_a, row_of, row_bits, outside)))
        self._row(DIAGONAL, gate.values, h, start, len(outside) // 2, len(high(h)))

    def add(self, gate: _Gate) -> None:
        if gate.kind == "diagonal":
            self.diagonal(gate)
        elif gate.kind == "controlled":
            self.controlled(gate)
        else:
            self.dense([self.local[q] for q in gate.qubits], gate.values)


def encode_tile_pass(tile_qubits: list[int], gates: list[_Gate], dtype: np.dtype) -> TileOp:
    """The TileOp applying ``gates`` (in order) tile by tile over ``tile_qubits``."""
    encoder = _Encoder(tile_qubits, dtype)
    for gate in gates:
        encoder.add(gate)
    chunk_qubits, run_length, run_offsets, run_starts, run_positions = run_layout(tile_qubits)
    ints = np.concatenate(encoder.ints) if encoder.ints else np.zeros(0, dtype=np.int64)
    return TileOp(
        tile_qubits=np.array(tile_qubits, dtype=np.int64),
        chunk_qubits=chunk_qubits,
        run_length=run_length,
        run_offsets=run_offsets,
        run_starts=run_starts,
        run_positions=run_positions,
        table=np.array(encoder.rows, dtype=np.int64).reshape(-1, TABLE_FIELDS),
        ints=ints,
        data=np.concatenate([np.zeros(0, dtype=dtype), *encoder.data]).astype(dtype),
        gates=sum(gate.sources for gate in gates),
    )


# --- the whole plan -----------------------------------------------------------------------------


def plan_ops(ops: list[Op], num_qubits: int, dtype: np.dtype, policy: PlanPolicy) -> list[Op]:
    """``ops`` with SWAPs relabelled and every run of gates turned into tile passes."""
    tile, lanes = policy.tile_for(num_qubits)
    planned: list[Op] = []
    run: list[_Gate] = []

    def flush() -> None:
        for tile_qubits, gates in group_into_tiles(run, num_qubits, tile, policy.low_qubits,
                                                   lanes):
            planned.append(encode_tile_pass(tile_qubits, fuse(gates, policy), dtype))
        run.clear()

    for op in relabel_swaps(ops, num_qubits, dtype):
        gate = _as_gate(op, policy, tile - (lanes or min(policy.low_qubits, tile)))
        if gate is None:
            flush()
            planned.append(op)
        else:
            run.append(gate)
    flush()
    return planned


def planned(program: Program, kernels: ModuleType, dtype: np.dtype) -> Program:
    """``program`` as ``kernels`` runs it: its one-qubit gates merged
    (:func:`~gpuprovider.compile.merge.merged`), then planned into tile passes, unless it has
    control flow or fewer qubits than the device's ``PLAN_MIN_QUBITS`` (then op by op)."""
    policy = PlanPolicy.of(kernels, dtype)
    program = merged(program)
    if program.has_control_flow or not program.ops or program.num_qubits < policy.min_qubits:
        return program
    return replace(program, ops=plan_ops(program.ops, program.num_qubits, dtype, policy))
