"""Plan once, replay for every set: a parameter sweep's bindings planned from one recipe.

Planning a binding (merge, tile grouping, fusion, encoding) costs more than running it on a
16-qubit state, and every binding of a sweep is planned alike: the planner decides from the
ops' kinds, qubits and sizes, and from only two facts about their numbers (whether a
permutation is a SWAP, :func:`~gpuprovider.compile.program.is_swap`, and whether a
controlled gate's target matrix is diagonal,
:func:`~gpuprovider.compile.plan.is_diagonal_matrix`). So:

1. **Record.** The first set of each *signature* (:func:`signature` of every parameterised
   gate: its kind, qubits, shape and those two facts) is bound with a
   :class:`~gpuprovider.compile.traced.Leaf` on each parameterised gate and planned as
   usual; every matrix and diagonal the planner emits then carries the steps that made it
   (:mod:`~gpuprovider.compile.traced`). That plan is the signature's recipe (at most
   :data:`MAX_RECIPES` per sweep).
2. **Check.** Before a recipe serves any other set, it replays one and compares it with
   that set planned in full (:func:`same_plan`); if a number differs (a planner step that
   lost its source), the recipe is dropped and the sets of its signature are planned in
   full. A guard against a planner change that forgets
   :func:`~gpuprovider.compile.traced.derive`, not a proof: the tests compare replays with
   full plans and with Qiskit.
3. **Replay.** For each chunk of sets (the gates' numbers built for the whole chunk at once,
   :func:`~gpuprovider.compile.gate_batches.bound_chunks`), every recorded step runs once on
   arrays with a leading set axis, and only the numbers of the tile passes (their ``data``)
   and of the plain gate ops are replaced; the passes' integer tables are shared.

So a set whose gates change kind (an angle that makes a controlled gate's matrix diagonal, a
gate built set by set that becomes a permutation) gets the plan of its own signature, never
another's. Planned in full instead: programs with control flow, sets past
:data:`MAX_RECIPES` signatures, and, when ops are appended per set (the estimator's
read-outs), programs with a SWAP (whose relabelling the appended ops would need).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
from qiskit.circuit import Parameter

from ..kernels.tiles import DATA_START
from .gate_batches import BoundChunk, bound_chunks
from .plan import is_diagonal_matrix
from .program import (
    ControlledOp,
    DiagonalOp,
    MatrixOp,
    MeasureOp,
    Op,
    ParameterizedGateOp,
    PermutationOp,
    Program,
    TileOp,
    is_swap,
)
from .traced import Leaf, evaluate

NUMBERS = {MatrixOp: "matrix", DiagonalOp: "diagonal", PermutationOp: "phases",
           ControlledOp: "matrix"}
"""The field holding each gate op's numbers (what a Leaf stands for)."""
CHECK_TOLERANCE = {np.dtype(np.complex128): 1e-9, np.dtype(np.complex64): 1e-4}
"""Largest difference of a number between the recipe's replay and full planning at the
recipe's check (a lost source differs by the size of a gate entry, far more)."""

MAX_RECIPES = 8
"""Most recipes one sweep records (one per distinct signature of its gates); sets of any
other signature are planned in full."""

Plan = Callable[[Program], Program]
Extra = Callable[[int], list[Op]]


def signature(op: Op) -> tuple | None:
    """What the planner reads of a bound parameterised gate beyond its numbers (None: an op
    the recipe cannot replay)."""
    qubits = tuple(int(q) for q in getattr(op, "qubits", ()))
    if isinstance(op, (MatrixOp, DiagonalOp)):
        return type(op).__name__, qubits, getattr(op, NUMBERS[type(op)]).shape
    if isinstance(op, PermutationOp):
        return "PermutationOp", qubits, tuple(int(c) for c in op.permutation), is_swap(op)
    if isinstance(op, ControlledOp):
        return ("ControlledOp", qubits, int(op.control_state), op.controls.size,
                op.matrix.shape, is_diagonal_matrix(op.matrix))
    return None


@dataclass
class SweepCounts:
    """How a sweep's sets were planned: ``recorded`` in full as a recipe, ``replayed`` from
    one, ``planned`` in full without one."""

    recorded: int = 0
    replayed: int = 0
    planned: int = 0


def planned_sets(program: Program, parameters: Sequence[Parameter], values: np.ndarray,
                 plan: Plan, extra: Extra | None = None, replay: bool = True,
                 counts: SweepCounts | None = None) -> Iterator[Program]:
    """``program`` bound to each row of ``values`` (one column per parameter of
    ``parameters``), ``extra(row)`` ops appended, and planned by ``plan``: replayed from a
    recipe where the program allows (``replay``; see the module docstring), else each set
    bound and planned in full. ``counts``, where given, is told which."""
    counts = counts if counts is not None else SweepCounts()
    parameterised = [k for k, op in enumerate(program.ops) if isinstance(op, ParameterizedGateOp)]
    usable = replay and bool(parameterised) and not program.has_control_flow
    recipes: dict[tuple, _Recipe | None] = {}
    start = 0
    for chunk in bound_chunks(program, parameters, values):
        replayed: list[Program | None] = [None] * chunk.sets
        recorded: set[int] = set()
        if usable:
            replayed, recorded = _replayed(chunk, parameterised, recipes, plan,
                                           extra is not None)
        for row in range(chunk.sets):
            more = [] if extra is None else extra(start + row)
            if replayed[row] is not None:
                if row in recorded:
                    counts.recorded += 1
                else:
                    counts.replayed += 1
                ran = replayed[row]
                yield ran if not more else replace(ran, ops=[*ran.ops, *more])
            else:
                counts.planned += 1
                bound = chunk.bound(row)
                yield plan(bound if not more else replace(bound, ops=[*bound.ops, *more]))
        start += chunk.sets


def _replayed(chunk: BoundChunk, parameterised: list[int], recipes: dict[tuple, _Recipe | None],
              plan: Plan, extras: bool) -> tuple[list[Program | None], set[int]]:
    """Each set's plan from the recipe of its gates' signatures (recorded on the first set
    that has them, up to :data:`MAX_RECIPES`), None for a set to plan in full; and the sets
    whose recipes were recorded here."""
    keys = _keys(chunk, parameterised)
    out: list[Program | None] = [None] * chunk.sets
    recorded_rows: set[int] = set()
    for key in dict.fromkeys(key for key in keys if key is not None):
        rows = [row for row in range(chunk.sets) if keys[row] == key]
        recorded = None
        if key not in recipes:
            if len(recipes) >= MAX_RECIPES:
                continue
            recipes[key] = _Recipe.record(chunk, rows[0], parameterised, plan, extras)
            recorded = rows[0]
        recipe = recipes[key]
        if recipe is None:
            continue
        programs = recipe.replay(chunk, np.array([k == key for k in keys]))
        unchecked = [row for row in rows if row != recorded]
        if not recipe.checked and unchecked:
            row = unchecked[0]
            recipe.checked = same_plan(programs[row], plan(chunk.bound(row)))
            if not recipe.checked:
                recipes[key] = None
                continue
        if recorded is not None:
            programs[recorded] = recipe.recorded
            recorded_rows.add(recorded)
        elif not recipe.checked:
            continue
        for row in rows:
            out[row] = programs[row]
    return out, recorded_rows


def _keys(chunk: BoundChunk, parameterised: list[int]) -> list[tuple | None]:
    """Each set's signatures of the parameterised gates (None: one the recipe cannot
    replay)."""
    columns = []
    for k in parameterised:
        batch = chunk.built[k]
        if batch is not None and batch.kind in ("dense", "diagonal"):
            columns.append([signature(chunk.op(k, 0))] * chunk.sets)  # every set's kind
        else:
            columns.append([signature(chunk.op(k, row)) for row in range(chunk.sets)])
    keys = list(zip(*columns))
    return [None if any(part is None for part in key) else key for key in keys]


@dataclass
class _Recipe:
    """A set's plan, with the sources of its numbers: the plan of every set whose
    parameterised gates have the same signatures. ``checked`` once a replay of another set
    equalled that set planned in full."""

    recorded: Program
    parameterised: list[int]
    checked: bool = False

    @classmethod
    def record(cls, chunk: BoundChunk, row: int, parameterised: list[int], plan: Plan,
               extras: bool) -> _Recipe | None:
        """The recipe of the chunk's set ``row``, or None with ``extras`` after a SWAP (the
        appended ops would need renaming)."""
        ops = list(chunk.program.ops)
        for k in parameterised:
            ops[k] = replace(chunk.op(k, row), source=Leaf(k))
        if extras and any(is_swap(op) for op in ops):
            return None
        return cls(plan(replace(chunk.program, ops=ops)), parameterised)

    def _leaves(self, chunk: BoundChunk, matches: np.ndarray) -> dict[int, np.ndarray]:
        """Each parameterised gate's numbers for every set of the chunk (set first); a set
        that does not match holds the first matching set's numbers."""
        leaves = {}
        first = int(np.argmax(matches))
        for k in self.parameterised:
            batch = chunk.built[k]
            if batch is not None:
                leaves[k] = batch.values
                continue
            field = NUMBERS[type(chunk.op(k, first))]
            leaves[k] = np.stack([getattr(chunk.op(k, row if matches[row] else first), field)
                                  for row in range(chunk.sets)])
        return leaves

    def replay(self, chunk: BoundChunk, matches: np.ndarray) -> list[Program | None]:
        """The planned program of each set of the chunk that ``matches`` (the recipe's
        signatures), None for the others."""
        leaves = self._leaves(chunk, matches)
        memo: dict[int, np.ndarray] = {}
        sets = chunk.sets
        columns: list[list[Op]] = []
        for op in self.recorded.ops:
            if isinstance(op, TileOp) and any(source is not None for source in op.sources):
                columns.append(_tile_ops(op, leaves, memo, sets))
            elif getattr(op, "source", None) is not None:
                numbers = np.ascontiguousarray(evaluate(op.source, leaves, memo))
                field = NUMBERS[type(op)]
                columns.append([replace(op, **{field: numbers[row]}, source=None)
                                for row in range(sets)])
            else:
                columns.append([op] * sets)
        return [_with_ops(self.recorded, [column[row] for column in columns])
                if matches[row] else None for row in range(sets)]


def _with_ops(program: Program, ops: list[Op]) -> Program:
    """``replace(program, ops=ops)`` without its cost per field (once per set)."""
    copied = copy.copy(program)
    copied.ops = ops
    return copied


def _tile_ops(op: TileOp, leaves: dict[int, np.ndarray], memo: dict[int, np.ndarray],
              sets: int) -> list[TileOp]:
    """A recorded tile pass for every set: its rows' numbers remade, its integers shared."""
    tile_pass = op.tile_pass
    data = np.repeat(tile_pass.data[None, :], sets, axis=0)
    starts = tile_pass.table[:, DATA_START]
    for row, source in enumerate(op.sources):
        if source is not None:
            numbers = evaluate(source, leaves, memo).reshape(sets, -1)
            data[:, starts[row]:starts[row] + numbers.shape[1]] = numbers
    data.flags.writeable = False
    return [TileOp(tile_pass.with_data(data[s]), op.gates) for s in range(sets)]


def same_plan(mine: Program, theirs: Program) -> bool:
    """Whether two planned programs apply the same ops: the same kinds on the same qubits,
    the same tile tables, numbers equal within :data:`CHECK_TOLERANCE` of their dtype."""
    if len(mine.ops) != len(theirs.ops):
        return False
    for a, b in zip(mine.ops, theirs.ops):
        if type(a) is not type(b):
            return False
        if isinstance(a, TileOp):
            pairs = [(a.tile_pass.buffer, b.tile_pass.buffer, 0.0),
                     (a.tile_pass.tile_qubits, b.tile_pass.tile_qubits, 0.0),
                     (a.tile_pass.data, b.tile_pass.data, None)]
        elif type(a) in NUMBERS:
            field = NUMBERS[type(a)]
            pairs = [(a.qubits, b.qubits, 0.0), (getattr(a, field), getattr(b, field), None)]
        elif isinstance(a, MeasureOp):
            pairs = [(np.array([a.qubit, a.clbit]), np.array([b.qubit, b.clbit]), 0.0)]
        else:
            continue
        for x, y, tolerance in pairs:
            if tolerance is None:
                tolerance = CHECK_TOLERANCE.get(np.dtype(x.dtype), 1e-9)
            if x.shape != y.shape or not np.allclose(x, y, rtol=0, atol=tolerance):
                return False
    return True

