"""The pass planner: a Program's gates regrouped so that the state is read and written fewer
times.

Applying a gate is memory-bound, so the cost of a circuit is the number of passes over the
state. The planner runs on the host, once per circuit, for any device:

1. **SWAPs become a relabelling.** A SWAP moves no data: later ops name the other qubit
   instead. Measurements, resets and saves of probabilities or expectation values are
   renamed too; before a statevector save the qubits are swapped back into place. Final
   measurements move to the end and name where their qubits are there.
2. **Cache blocking.** Runs of gates (final measurements, which no later op touches and the
   engine samples at the end, do not end a run) are grouped into *tile passes*: a greedy
   scan takes every gate whose tile qubits fit in one tile of ``m`` qubits, deferring those
   that do not (and everything that does not commute with a deferred gate: gates on shared
   qubits, unless both are diagonal). Diagonal gates and controls need no tile qubit: the
   bits outside the tile are the same for a whole chunk, so they come from the chunk's
   index. Each group becomes one :class:`~gpuprovider.compile.program.TileOp`, applied tile
   by tile (the format: :mod:`gpuprovider.kernels.tiles`).
3. **Fusion inside a pass.** A gate is multiplied into an earlier one of its pass (moving past
   gates it commutes with) when the product costs no more than the two did: the policy's
   ``dense_cost`` prices a dense block by its width, diagonals fold into diagonals up to
   ``diagonal_max_qubits``, and dense blocks stay within ``fusion_max_qubits``. A diagonal
   joins a dense block on the block's own qubits, or widens it onto qubits the pass may target
   (its tile qubits off the lanes) where the wider block costs no more than the two (a
   one-qubit block and a two-qubit diagonal); spread wider, it stays a diagonal, which later
   diagonals fold into (a QFT's phases stay one diagonal per Hadamard).

Each pass's gates are then encoded by :func:`~gpuprovider.kernels.tiles.encode_tile_pass`.
Every device fact comes from a :class:`~gpuprovider.kernels.policy.PlanPolicy` (pure data):
the planner imports no kernel module.

A parameter sweep plans one set and replays that plan for the others
(:mod:`~gpuprovider.compile.recipe`): so every number is made through
:func:`~gpuprovider.compile.traced.derive`, and the planner decides from the ops' kinds,
qubits and sizes and from only two facts about their numbers, :func:`~.program.is_swap` and
:func:`is_diagonal_matrix`. A new decision on numbers belongs in
:func:`~gpuprovider.compile.recipe.signature` too.

Programs with control flow are planned segment by segment (:func:`plan_segments`: the ops
between control ops and jump targets, every qubit back in place at each segment's end, the
jump targets renumbered); a program whose only randomness is mixtures of unitaries is also
planned chunk by chunk (:mod:`gpuprovider.compile.mixtures`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..kernels.layout import basis_offsets, kept_bits, unmixed_bits
from ..kernels.policy import PlanPolicy
from ..kernels.tiles import encode_tile_pass
from .merge import merged
from .mixtures import plan_mixtures
from .program import (
    MARGINAL_SAMPLING_MAX_QUBITS,
    SWAP_PERMUTATION,
    BranchOp,
    ControlledOp,
    DiagonalOp,
    MatrixOp,
    JumpOp,
    MeasureOp,
    NoiseSelectOp,
    Op,
    PermutationOp,
    PrepareOp,
    Program,
    ResetOp,
    SaveDensityMatrixOp,
    SaveExpectationValueOp,
    SavePauliValuesOp,
    SaveProbabilitiesOp,
    SwitchOp,
    TileOp,
    ZeroStateOp,
    dense_numbers,
    diagonal_matrix,
    is_swap,
)
from .traced import Numbers, Source, derive

LOOKBACK = 8
"""How many earlier gates of a pass a gate may move past to be fused."""


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
    source: Source = None
    """How a sweep's planning made ``values`` (:mod:`~gpuprovider.compile.traced`)."""

    @property
    def numbers(self) -> Numbers:
        return Numbers(self.values, self.source)

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

    if isinstance(op, (MatrixOp, DiagonalOp, PermutationOp, PrepareOp)):
        return replace(op, qubits=moved(op.qubits))
    if isinstance(op, ZeroStateOp):  # |0...0> in any order
        return op
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


def _move_to(layout: list[int], where: list[int], out: list[Op], dtype: np.dtype) -> None:
    """Append the SWAPs that put every qubit ``q`` at position ``layout[q]`` (``where``
    updated): the highest positions first, so that each global position of a spread state
    costs one index-bit swap at most."""
    wanted = {position: qubit for qubit, position in enumerate(layout)}
    for target in reversed(range(len(layout))):
        qubit = wanted[target]
        if where[qubit] != target:
            holder = where.index(target)
            out.append(_swap_op(where[qubit], target, dtype))
            where[holder], where[qubit] = where[qubit], target


def relabel_swaps(ops: list[Op], num_qubits: int, dtype: np.dtype,
                  put_back: bool = False, local_qubits: int | None = None) -> list[Op]:
    """``ops`` without SWAP gates: later ops name the swapped positions instead. Where an op
    cannot be renamed (a save of the statevector or amplitudes, a Kraus channel), SWAPs put
    the qubits back first; with ``put_back`` also at the end (for ops that other ops follow).
    Final measurements come last, naming their qubits' positions at the end, where the
    engine samples them.

    With ``local_qubits`` (a state spread over ranks: positions from ``local_qubits`` up are
    global), a dense gate on a global position is first given the data there by a SWAP with
    a local position (an index-bit swap), and later ops are renamed: the local position
    whose qubit a dense gate needs last (:func:`_swap_partner`), not swapped back. Only when
    more qubits are finally measured than are drawn from their marginal
    (:data:`~.program.MARGINAL_SAMPLING_MAX_QUBITS`) do SWAPs at the end put every qubit
    where the single process has it, so that both draw the same shots for a seed."""
    in_place = list(range(num_qubits))
    where = list(in_place)  # where[q]: the position holding qubit q
    gates_layout = list(in_place)  # ... in the single process: SWAP gates move no data
    finals: list[MeasureOp] = []
    out: list[Op] = []
    for index, op in enumerate(ops):
        if is_swap(op):
            a, b = (int(q) for q in op.qubits)
            where[a], where[b] = where[b], where[a]
            gates_layout[a], gates_layout[b] = gates_layout[b], gates_layout[a]
            continue
        if isinstance(op, MeasureOp) and op.final:
            finals.append(op)  # later index-bit swaps may still move its qubit
            continue
        renamed = op if where == in_place else _renamed(op, where)
        if renamed is None:
            _move_to(in_place, where, out, dtype)
            gates_layout = list(in_place)
            out.append(op)
            continue
        if local_qubits is not None:
            renamed = _localised(op, renamed, ops, index, where, local_qubits, out, dtype)
        out.append(renamed)
    if put_back:
        _move_to(in_place, where, out, dtype)
    elif local_qubits is not None and \
            len({op.qubit for op in finals}) > MARGINAL_SAMPLING_MAX_QUBITS:
        _move_to(gates_layout, where, out, dtype)
    out.extend(replace(op, qubit=where[op.qubit]) for op in finals)
    return out


# --- 1b. global qubits of a distributed state ---------------------------------------------------

SWAP_LOOKAHEAD = 4096
"""How many later ops :func:`_swap_partner` reads to choose the local qubit to swap out."""


def _dense_targets(op: Op) -> tuple[int, ...]:
    """The qubits ``op`` moves amplitudes between (they must be local on a spread state)."""
    if isinstance(op, PermutationOp) and not is_swap(op):
        kept = kept_bits(op.permutation)
        return tuple(int(q) for j, q in enumerate(op.qubits) if j not in kept)
    if isinstance(op, MatrixOp):
        kept = unmixed_bits(op.matrix)
        return tuple(int(q) for j, q in enumerate(op.qubits) if j not in kept)
    if isinstance(op, PrepareOp):
        return tuple(int(q) for q in op.qubits)
    if isinstance(op, ControlledOp):
        return tuple(int(q) for q in op.targets)
    return ()


def _touched(op: Op) -> tuple[int, ...]:
    if isinstance(op, ControlledOp):
        return tuple(int(q) for q in op.controls) + tuple(int(q) for q in op.targets)
    qubits = getattr(op, "qubits", None)
    return () if qubits is None or np.ndim(qubits) == 0 else tuple(int(q) for q in qubits)


def _swap_partner(candidates: list[int], holder: list[int], ops: list[Op], start: int) -> int:
    """The candidate position whose qubit the ops from ``start`` need as a dense target
    last (or never), ``holder[p]`` being the qubit at position ``p``: Belady's choice, which
    keeps the swaps few. SWAP gates ahead rename the qubits followed."""
    followed = {holder[p]: p for p in candidates}  # qubit name -> candidate position
    for op in ops[start:start + SWAP_LOOKAHEAD]:
        if len(followed) <= 1:
            break
        if is_swap(op):
            a, b = (int(q) for q in op.qubits)
            pa, pb = followed.pop(a, None), followed.pop(b, None)
            if pa is not None:
                followed[b] = pa
            if pb is not None:
                followed[a] = pb
            continue
        for qubit in _dense_targets(op):
            if len(followed) > 1:
                followed.pop(qubit, None)
    return max(followed.values())


def _localised(op: Op, renamed: Op, ops: list[Op], index: int, where: list[int],
               local_qubits: int, out: list[Op], dtype: np.dtype) -> Op:
    """``op`` (``ops[index]``, at ``renamed`` positions) with its dense targets on local
    positions: a SWAP appended to ``out`` for each global one (``where`` updated)."""
    globals_needed = [q for q in _dense_targets(renamed) if q >= local_qubits]
    if not globals_needed:
        return renamed
    busy = set(_touched(renamed))
    candidates = [p for p in range(local_qubits) if p not in busy]
    if len(candidates) < len(globals_needed):
        return renamed  # wider than a slice: the kernels run it on the gathered state
    for position in globals_needed:
        holder = [0] * len(where)
        for qubit, held_at in enumerate(where):
            holder[held_at] = qubit
        partner = _swap_partner(candidates, holder, ops, index + 1)
        candidates.remove(partner)
        out.append(_swap_op(partner, position, dtype))
        a, b = holder[partner], holder[position]
        where[a], where[b] = where[b], where[a]
    return _renamed(op, where)


# --- 2. grouping into tile passes ---------------------------------------------------------------


def _as_gate(op: Op, policy: PlanPolicy, room: int) -> _Gate | None:
    """The tile-pass form of ``op``, or None when it ends a run of gates. ``room``: how many
    tile qubits a pass has for targets."""
    if isinstance(op, DiagonalOp):
        if op.qubits.size > policy.diagonal_max_qubits:
            return None
        return _Gate("diagonal", tuple(int(q) for q in op.qubits), op.diagonal,
                     source=op.source)
    widest = room if policy.matrix_max_qubits is None else min(room, policy.matrix_max_qubits)
    if isinstance(op, MatrixOp) and op.qubits.size <= widest:
        return _Gate("dense", tuple(int(q) for q in op.qubits), op.matrix, source=op.source)
    if isinstance(op, PermutationOp) and op.qubits.size <= min(room, policy.fusion_max_qubits):
        values, source = dense_numbers(op)
        return _Gate("dense", tuple(int(q) for q in op.qubits), values, source=source)
    if isinstance(op, ControlledOp) and op.targets.size <= min(room, policy.fusion_max_qubits):
        controls = tuple(int(q) for q in op.controls)
        targets = tuple(int(q) for q in op.targets)
        if is_diagonal_matrix(op.matrix) and \
                len(controls) + len(targets) <= policy.diagonal_max_qubits:
            values, source = derive(controlled_diagonal, Numbers(op.matrix, op.source),
                                    controls=len(controls), control_state=op.control_state)
            return _Gate("diagonal", controls + targets, values, source=source)
        return _Gate("controlled", targets, op.matrix, controls, op.control_state,
                     source=op.source)
    return None


def is_diagonal_matrix(matrix: np.ndarray) -> bool:
    """Whether every entry of ``matrix`` off its diagonal is exactly zero: a ControlledOp
    with such a target matrix is planned as a diagonal (a decision on its numbers, which a
    sweep's recipe checks per parameter set: :mod:`~gpuprovider.compile.recipe`)."""
    return np.count_nonzero(matrix - np.diag(np.diagonal(matrix))) == 0


def controlled_diagonal(matrix: np.ndarray, controls: int, control_state: int) -> np.ndarray:
    """The diagonal on controls (low bits) and targets of a ControlledOp whose target matrix
    (any leading axes) is diagonal."""
    diagonal = np.diagonal(matrix, axis1=-2, axis2=-1)
    width = controls + int(diagonal.shape[-1]).bit_length() - 1
    full = np.ones(diagonal.shape[:-1] + (1 << width,), dtype=matrix.dtype)
    rows = np.arange(1 << width)
    chosen = (rows & ((1 << controls) - 1)) == control_state
    full[..., chosen] = diagonal[..., rows[chosen] >> controls]
    return full


def split_on_globals(gate: _Gate, local_qubits: int) -> list[_Gate] | None:
    """A dense ``gate`` that does not mix its global qubits (:func:`unmixed_bits`: a control
    on them, or a diagonal there) as one controlled gate per value of those qubits (identity
    blocks left out), or as a diagonal when it mixes no qubit: gates a tile on local qubits
    takes. None when it mixes a global qubit."""
    qubits = gate.qubits
    fixed = [j for j in unmixed_bits(gate.values) if qubits[j] >= local_qubits]
    kept = [j for j in range(len(qubits)) if j not in fixed]
    if any(qubits[j] >= local_qubits for j in kept):
        return None
    if not kept:
        return [_Gate("diagonal", qubits, np.ascontiguousarray(np.diagonal(gate.values)),
                      sources=gate.sources)]
    mask = sum(1 << j for j in fixed)
    gates = []
    for value in range(1 << len(fixed)):
        rows = np.flatnonzero((np.arange(1 << len(qubits)) & mask) ==
                              sum(((value >> k) & 1) << j for k, j in enumerate(fixed)))
        block = np.ascontiguousarray(gate.values[np.ix_(rows, rows)])
        if not np.array_equal(block, np.eye(rows.size, dtype=block.dtype)):
            gates.append(_Gate("controlled", tuple(qubits[j] for j in kept), block,
                               tuple(qubits[j] for j in fixed), value,
                               sources=gate.sources if not gates else 0))
    return gates


def group_into_tiles(gates: list[_Gate], num_qubits: int, tile: int, low_qubits: int,
                     lanes: int = 0, tile_range: int | None = None
                     ) -> list[tuple[list[int], list[_Gate]]]:
    """Split ``gates`` (in program order) into tile passes: ``(tile qubits in local order,
    gates)`` each, the gates in an order equivalent to the program's. The first ``lanes``
    local positions hold qubits that no gate of the pass needs in the tile. Tiles hold
    qubits below ``tile_range`` only (None: any; a spread state's local qubits)."""
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
        spare = [q for q in range(num_qubits if tile_range is None else tile_range)
                 if q not in needed]
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
        embedded = np.zeros(matrix.shape[:-2] + (4, 4), dtype=matrix.dtype)
        if union[0] == qubits[0]:
            embedded[..., :2, :2] = embedded[..., 2:, 2:] = matrix
        else:
            embedded[..., 0::2, 0::2] = embedded[..., 1::2, 1::2] = matrix
        return embedded
    positions = [union.index(q) for q in qubits]
    width = len(union)
    sub = _subindex(positions, width)
    rest = np.arange(1 << width) & ~int(basis_offsets(positions)[-1])
    same_rest = rest[:, None] == rest[None, :]
    return np.where(same_rest, matrix[..., sub[:, None], sub[None, :]], 0).astype(matrix.dtype)


def embed_diagonal(diagonal: np.ndarray, qubits: tuple[int, ...],
                   union: tuple[int, ...]) -> np.ndarray:
    """``diagonal`` on ``qubits`` as a diagonal on ``union``."""
    return diagonal[..., _subindex([union.index(q) for q in qubits], len(union))]


def _union(first: tuple[int, ...], second: tuple[int, ...]) -> tuple[int, ...]:
    return first + tuple(q for q in second if q not in first)


def _product(earlier: _Gate, later: _Gate, policy: PlanPolicy,
             targets: frozenset[int] = frozenset()) -> _Gate | None:
    """``later @ earlier`` as one gate when that costs no more than the two, else None.
    ``targets``: the qubits a dense block may be widened onto by a diagonal (the pass's tile
    qubits off its lanes)."""
    if "controlled" in (earlier.kind, later.kind):
        return None
    union = _union(earlier.qubits, later.qubits)
    sources = earlier.sources + later.sources
    if earlier.kind == later.kind == "diagonal":
        if len(union) > policy.diagonal_max_qubits:
            return None
        values, source = derive(
            np.multiply, derive(embed_diagonal, earlier.numbers, qubits=earlier.qubits,
                                union=union),
            derive(embed_diagonal, later.numbers, qubits=later.qubits, union=union))
        return _Gate("diagonal", union, values, sources=sources, source=source)
    if "diagonal" in (earlier.kind, later.kind):
        dense = later if earlier.kind == "diagonal" else earlier
        if len(dense.qubits) < len(union) and not set(union) <= targets:
            return None  # a diagonal joins a dense block only on qubits it may target
    if len(union) > policy.fusion_max_qubits or \
            policy.dense_cost[len(union)] > earlier.cost(policy) + later.cost(policy):
        return None

    def dense(gate: _Gate) -> Numbers:
        numbers = (derive(diagonal_matrix, gate.numbers) if gate.kind == "diagonal"
                   else gate.numbers)
        return derive(embed_matrix, numbers, qubits=gate.qubits, union=union)

    values, source = derive(np.matmul, dense(later), dense(earlier))
    return _Gate("dense", union, values, sources=sources, source=source)


def _commute(first: _Gate, second: _Gate) -> bool:
    return (first.kind == second.kind == "diagonal"
            or not set(first.touched) & set(second.touched))


def fuse(gates: list[_Gate], policy: PlanPolicy,
         targets: frozenset[int] = frozenset()) -> list[_Gate]:
    """``gates`` with each multiplied into an earlier one where :func:`_product` allows
    (``targets``: the qubits a dense block may widen onto)."""
    fused: list[_Gate] = []
    for gate in gates:
        for back in range(len(fused) - 1, max(-1, len(fused) - 1 - LOOKBACK), -1):
            product = _product(fused[back], gate, policy, targets)
            if product is not None:
                fused[back] = product
                break
            if not _commute(fused[back], gate):
                fused.append(gate)
                break
        else:
            fused.append(gate)
    return fused


# --- the whole plan -----------------------------------------------------------------------------


def plan_ops(ops: list[Op], num_qubits: int, dtype: np.dtype, policy: PlanPolicy,
             put_back: bool = False) -> list[Op]:
    """``ops`` with SWAPs relabelled and every run of gates turned into tile passes; with
    ``put_back``, every qubit is in its own position again at the end. On a state spread over
    ranks (``policy.global_qubits_for``), dense gates get their global qubits by index-bit
    swaps first, and tiles hold only local qubits (a gate's controls and diagonal qubits may
    be global: each rank's kernels read them from its bits)."""
    global_qubits = policy.global_qubits_for(num_qubits)
    local_qubits = num_qubits - global_qubits
    tile, lanes = policy.tile_for(local_qubits)
    planned: list[Op] = []
    run: list[_Gate] = []
    final_measurements: list[MeasureOp] = []

    def flush() -> None:
        for tile_qubits, gates in group_into_tiles(run, num_qubits, tile, policy.low_qubits,
                                                   lanes, local_qubits):
            fused = fuse(gates, policy, frozenset(tile_qubits[lanes:]))
            planned.append(TileOp(encode_tile_pass(tile_qubits, fused, dtype),
                                  gates=sum(gate.sources for gate in fused),
                                  sources=tuple(gate.source for gate in fused)))
        run.clear()
        planned.extend(final_measurements)
        final_measurements.clear()

    room = tile - (lanes or min(policy.low_qubits, tile))
    for op in relabel_swaps(ops, num_qubits, dtype, put_back,
                            local_qubits if global_qubits else None):
        if isinstance(op, MeasureOp) and op.final:
            # No later op acts on its qubit and the engine samples it at the end: the gates
            # after it may join the run before it.
            final_measurements.append(op)
            continue
        gate = _as_gate(op, policy, room)
        if gate is not None and gate.kind == "dense" and \
                max(gate.needs_tile) >= local_qubits:
            split = split_on_globals(gate, local_qubits)
            if split is not None:
                run.extend(split)
                continue
        if gate is None or max(gate.needs_tile, default=0) >= local_qubits:
            flush()
            planned.append(op)
        else:
            run.append(gate)
    flush()
    return planned


def planned(program: Program, policy: PlanPolicy, put_back: bool = False) -> Program:
    """``program`` as a device with ``policy`` runs it (``DevicePolicy.plan_policy(dtype)``):
    its one-qubit gates merged (:func:`~gpuprovider.compile.merge.merged`), then planned into
    tile passes (segment by segment where it has control flow: :func:`plan_segments`), unless
    it has fewer qubits than ``policy.min_qubits`` (then op by op). A program whose only
    randomness is mixtures of unitaries also gets a
    :class:`~gpuprovider.compile.mixtures.MixturePlan` (chunks planned as tile passes).
    With ``put_back``, every qubit is in its own position at the end (see :func:`plan_ops`).

    Raises:
        ValueError: ``policy`` names no dtype.
    """
    if policy.dtype is None:
        raise ValueError("planned() needs a PlanPolicy with a dtype: use "
                         "DevicePolicy.plan_policy(dtype)")
    program = merged(program)
    if program.shots_as_batch:  # its gates run on every shot at once, op by op
        return program
    if program.has_control_flow:
        mixtures = plan_mixtures(program, policy)
        if mixtures is not None:
            program = replace(program, mixtures=mixtures)
        if program.num_qubits < policy.min_qubits:
            return program
        return replace(program, ops=plan_segments(program.ops, program.num_qubits,
                                                  policy.dtype, policy))
    if not program.ops or program.num_qubits < policy.min_qubits:
        return program
    return replace(program, ops=plan_ops(program.ops, program.num_qubits, policy.dtype, policy,
                                         put_back))


CONTROL_OPS = (JumpOp, BranchOp, SwitchOp, NoiseSelectOp)
"""The ops that choose the next op (by index): segment boundaries."""


def _targets(op: Op) -> list[int]:
    """The op indices a control op may continue at."""
    if isinstance(op, (JumpOp, BranchOp)):
        return [op.target]
    if isinstance(op, SwitchOp):
        return [*op.cases.values(), op.default]
    if isinstance(op, NoiseSelectOp):
        return [*op.targets, op.end]
    return []


def _retargeted(op: Op, new_index: dict[int, int]) -> Op:
    """A control op continuing at the new indices of its targets."""
    if isinstance(op, (JumpOp, BranchOp)):
        return replace(op, target=new_index[op.target])
    if isinstance(op, SwitchOp):
        return replace(op, cases={value: new_index[target] for value, target in op.cases.items()},
                       default=new_index[op.default])
    if isinstance(op, NoiseSelectOp):
        return replace(op, targets=tuple(new_index[target] for target in op.targets),
                       end=new_index[op.end])
    return op


def plan_segments(ops: list[Op], num_qubits: int, dtype: np.dtype, policy: PlanPolicy
                  ) -> list[Op]:
    """A program with control flow, planned segment by segment: the ops between control ops
    and jump targets (which every shot that enters a segment runs in order) are planned by
    :func:`plan_ops` with every qubit back in its own position at the segment's end, so that
    the control flow and the next segment see the program's layout; control ops keep their
    place, their targets renumbered."""
    starts = {target for op in ops for target in _targets(op)}
    new_index: dict[int, int] = {}
    out: list[Op] = []
    segment: list[Op] = []

    def flush() -> None:
        if segment:
            out.extend(plan_ops(segment, num_qubits, dtype, policy, put_back=True))
            segment.clear()

    for index, op in enumerate(ops):
        if index in starts or isinstance(op, CONTROL_OPS):
            flush()
        if not segment:
            new_index[index] = len(out)
        if isinstance(op, CONTROL_OPS):
            out.append(op)
        else:
            segment.append(op)
    flush()
    new_index[len(ops)] = len(out)
    return [_retargeted(op, new_index) for op in out]
