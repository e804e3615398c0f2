"""The tile pass format, its encoder and its decoder: many gates applied to a tile of the state
while it is in fast memory. This module is the format's one owner: the planner calls
:func:`encode_tile_pass`, and the CPU and CUDA tile kernels read rows only through
:data:`DECODERS` (plain functions each device compiles, like the bodies of
:mod:`gpuprovider.kernels.updates`). It imports no Numba, so planning imports no kernels.

A tile pass names ``m`` tile qubits in *local order*: local index ``l`` of a tile has tile
qubit ``j`` in bit ``j``. For every assignment of the other qubits (a *chunk*, whose index
bits are spread over the non-tile positions, in ascending order of the sorted
``chunk_qubits``, to give the chunk's ``base`` index) the pass loads the ``2**m`` amplitudes
of the chunk into a tile buffer, applies every gate of the pass in local coordinates, and
writes the tile back. The tile always holds the lowest qubits ``0..L-1``, so a tile is loaded
as runs of ``run_length = 2**L`` contiguous amplitudes: run ``r`` starts at ``base +
run_offsets[r]``, and its amplitude ``t`` is local index ``run_starts[r] + run_positions[t]``
(the identity when the local order is ascending). Where the local order maps the lowest
``p = permuted_bits`` bits of a run's index onto local bits ``0..p-1`` and keeps the bits
above in place (as a tile whose lanes are its lowest spare qubits does), ``run_positions[t]``
is ``run_positions[t % 2**p] + t - t % 2**p``: a device may load a run block by block with
the ``2**p`` positions of one block, which permute the block. A device may keep its lowest
local positions, the *lanes*, free of dense targets so that gates vectorise over them.

Each gate is one row of an int64 ``table`` (``TABLE_FIELDS`` columns), with its integers in
``ints`` and its complex numbers (matrices row-major, diagonals) in ``data`` (the state's
dtype). Every row has ``KIND``, ``DATA_START`` (where its numbers start in ``data``) and a
condition: it runs on a chunk only when ``base & row[CONDITION_MASK] ==
row[CONDITION_VALUE]`` (controls outside the tile). The other columns, by kind:

- ``DENSE1``: ``DENSE1_QUBIT`` = local qubit; data: the 2x2 matrix.
- ``DENSE2``: ``DENSE2_LOW``, ``DENSE2_HIGH`` = lower and higher local qubit,
  ``DENSE2_STRIDE0``, ``DENSE2_STRIDE1`` = strides of argument qubits 0 and 1; data: the 4x4
  matrix.
- ``GATHER``: ``GATHER_WIDTH`` = k sorted local qubits (controls and targets) at
  ``GATHER_INTS`` in ``ints``, followed there by the ``GATHER_DIM`` offsets of the targets'
  basis states (control bits included); data: the ``dim x dim`` matrix. Dense gates of 3+
  qubits and controlled gates with several targets.
- ``CONTROLLED1``: ``CONTROLLED1_WIDTH`` = k sorted local qubits (local controls and the
  target) at ``CONTROLLED1_INTS``, ``CONTROLLED1_BITS`` = the local control bits that must be
  set, ``CONTROLLED1_STRIDE`` = the target's stride; data: the 2x2 matrix.
- ``DIAGONAL``: ``DIAGONAL_SPLIT`` = h; at ``DIAGONAL_INTS`` in ``ints``: table A (``2**h``
  entries: the diagonal-index bits spelled by ``l``'s low ``h`` bits), ``row_of``
  (``2**(m-h)`` entries: for ``l >> h``, which of the distinct high patterns it is),
  ``row_bits`` (``2**d`` entries: the diagonal-index bits of each high pattern) and
  ``DIAGONAL_OUTSIDE`` pairs ``(global qubit, diagonal-index bit)`` for qubits outside the
  tile; ``DIAGONAL_HIGH`` = d, how many diagonal qubits lie at local positions ``>= h``; data:
  the diagonal. Amplitude ``l`` is multiplied by ``data[start + (A[l & (2**h - 1)] |
  row_bits[row_of[l >> h]] | outside)]``: a chunk needs only ``2**d`` distinct rows of
  ``2**h`` phases.

A :class:`TilePass` holds all the integers in one int64 buffer, built once when it is
encoded, so applying it never packs arrays (a GPU uploads it in one copy, the data in one).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Protocol

import numpy as np

from .layout import basis_offsets, controlled_layout

DENSE1, DENSE2, GATHER, CONTROLLED1, DIAGONAL = range(5)
"""Row kinds."""
TABLE_FIELDS = 8
"""Columns of a row."""
KIND, DATA_START, CONDITION_MASK, CONDITION_VALUE = 0, 5, 6, 7
"""Columns every row has."""
DENSE1_QUBIT = 1
DENSE2_LOW, DENSE2_HIGH, DENSE2_STRIDE0, DENSE2_STRIDE1 = 1, 2, 3, 4
GATHER_WIDTH, GATHER_INTS, GATHER_DIM = 1, 2, 3
CONTROLLED1_WIDTH, CONTROLLED1_INTS, CONTROLLED1_BITS, CONTROLLED1_STRIDE = 1, 2, 3, 4
DIAGONAL_SPLIT, DIAGONAL_INTS, DIAGONAL_OUTSIDE, DIAGONAL_HIGH = 1, 2, 3, 4

DIAGONAL_MIN_ROW_QUBITS = 4
"""A diagonal's rows of phases span at least 2**4 amplitudes, so that they vectorise."""

CHUNK_QUBITS, RUN_OFFSETS, RUN_STARTS, RUN_POSITIONS, TABLE, INTS = range(6)
"""The sections of :attr:`TilePass.buffer`, in order."""


@dataclass(frozen=True)
class TilePass:
    """One encoded tile pass (format: the module docstring); read-only.

    ``buffer`` holds every integer of the pass; section ``s`` (``CHUNK_QUBITS`` ... ``INTS``)
    is ``buffer[bounds[s]:bounds[s + 1]]``, and the properties below are views of it.
    """

    tile_qubits: np.ndarray
    """The tile qubits in local order."""
    buffer: np.ndarray
    bounds: tuple[int, ...]
    run_bits: int
    """log2 of the run length."""
    data: np.ndarray
    """Every row's complex numbers, in the state's dtype."""
    widest_gather: int
    """The largest ``GATHER_DIM`` of the rows (1 when there is no GATHER row)."""
    permuted_bits: int = -1
    """How many of the lowest bits of a run's index the local order permutes among
    themselves, keeping the bits above in place (0: a run is in local order); -1 where the
    local order does not (see the module docstring)."""

    def with_data(self, data: np.ndarray) -> TilePass:
        """The same pass with other numbers (``data`` of this one's size and dtype, read-only):
        a parameter sweep's replayed plan, which shares the integers."""
        return replace(self, data=data)

    def section(self, index: int) -> np.ndarray:
        """Section ``index`` of the buffer (a view)."""
        return self.buffer[self.bounds[index]:self.bounds[index + 1]]

    @property
    def chunk_qubits(self) -> np.ndarray:
        return self.section(CHUNK_QUBITS)

    @property
    def run_length(self) -> int:
        return 1 << self.run_bits

    @property
    def run_offsets(self) -> np.ndarray:
        return self.section(RUN_OFFSETS)

    @property
    def run_starts(self) -> np.ndarray:
        return self.section(RUN_STARTS)

    @property
    def run_positions(self) -> np.ndarray:
        return self.section(RUN_POSITIONS)

    @property
    def table(self) -> np.ndarray:
        """The rows, shape ``(rows, TABLE_FIELDS)``."""
        return self.section(TABLE).reshape(-1, TABLE_FIELDS)

    @property
    def ints(self) -> np.ndarray:
        return self.section(INTS)


# --- the run layout of a tile -----------------------------------------------------------------


def run_layout(local_order) -> tuple[np.ndarray, int, np.ndarray, np.ndarray, np.ndarray]:
    """``(chunk_qubits, run_length, run_offsets, run_starts, run_positions)`` of a tile whose
    qubits are ``local_order`` (see the module docstring). The arrays are read-only and shared
    between calls: a sweep's bindings plan the same tiles again and again."""
    return _run_layout(tuple(int(q) for q in local_order))


@lru_cache(maxsize=4096)
def _run_layout(local_order: tuple[int, ...]):
    local = {qubit: j for j, qubit in enumerate(local_order)}
    low = 0
    while low in local:
        low += 1
    high = sorted(q for q in local_order if q >= low)
    run_offsets = np.zeros(1 << len(high), dtype=np.int64)
    run_starts = np.zeros(1 << len(high), dtype=np.int64)
    for j, qubit in enumerate(high):
        run_offsets[1 << j: 2 << j] = run_offsets[: 1 << j] + (1 << qubit)
        run_starts[1 << j: 2 << j] = run_starts[: 1 << j] + (1 << local[qubit])
    elements = np.arange(1 << low, dtype=np.int64)
    run_positions = np.zeros(1 << low, dtype=np.int64)
    for qubit in range(low):
        run_positions |= ((elements >> qubit) & 1) << local[qubit]
    chunk_qubits = np.array(sorted(local_order), dtype=np.int64)
    arrays = (chunk_qubits, run_offsets, run_starts, run_positions)
    for array in arrays:
        array.flags.writeable = False
    return chunk_qubits, 1 << low, run_offsets, run_starts, run_positions


# --- the encoder --------------------------------------------------------------------------------


class TileGate(Protocol):
    """What :func:`encode_tile_pass` reads of a gate (the planner's gates have these).

    ``kind`` is "dense" (``values`` a matrix on ``qubits``), "diagonal" (``values`` the
    diagonal on ``qubits``) or "controlled" (``values`` a matrix on ``qubits``, applied where
    ``controls`` read ``control_state``); qubits are global.
    """

    kind: str
    qubits: tuple[int, ...]
    values: np.ndarray
    controls: tuple[int, ...]
    control_state: int


class _Encoder:
    """Builds the table, ints and data of one tile pass."""

    def __init__(self, tile_qubits: Sequence[int], dtype: np.dtype) -> None:
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

    def _row(self, kind: int, values: np.ndarray, fields: dict[int, int], mask: int = 0,
             value: int = 0) -> None:
        row = [0] * TABLE_FIELDS
        for column, field in fields.items():
            row[column] = field
        row[KIND], row[DATA_START] = kind, self.data_size
        row[CONDITION_MASK], row[CONDITION_VALUE] = mask, value
        flat = np.asarray(values, dtype=self.dtype).ravel()
        self.data.append(flat)
        self.data_size += flat.size
        self.rows.append(row)

    def dense(self, qubits: list[int], matrix: np.ndarray, mask: int = 0, value: int = 0):
        if len(qubits) == 1:
            self._row(DENSE1, matrix, {DENSE1_QUBIT: qubits[0]}, mask, value)
        elif len(qubits) == 2:
            self._row(DENSE2, matrix, {
                DENSE2_LOW: min(qubits), DENSE2_HIGH: max(qubits),
                DENSE2_STRIDE0: 1 << qubits[0], DENSE2_STRIDE1: 1 << qubits[1],
            }, mask, value)
        else:
            start = self._put_ints(np.concatenate((np.sort(qubits), basis_offsets(qubits))))
            self._row(GATHER, matrix, {
                GATHER_WIDTH: len(qubits), GATHER_INTS: start, GATHER_DIM: 1 << len(qubits),
            }, mask, value)

    def controlled(self, gate: TileGate) -> None:
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
            self._row(CONTROLLED1, gate.values, {
                CONTROLLED1_WIDTH: sorted_qubits.size, CONTROLLED1_INTS: start,
                CONTROLLED1_BITS: control_bits, CONTROLLED1_STRIDE: 1 << targets[0],
            }, mask, value)
        else:
            start = self._put_ints(np.concatenate((sorted_qubits, offsets)))
            self._row(GATHER, gate.values, {
                GATHER_WIDTH: sorted_qubits.size, GATHER_INTS: start, GATHER_DIM: offsets.size,
            }, mask, value)

    def diagonal(self, gate: TileGate) -> None:
        """A diagonal's tables, its split ``h`` chosen so that the distinct rows of phases a
        chunk needs, ``2**(d + h)`` in all, are fewest."""
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
        self._row(DIAGONAL, gate.values, {
            DIAGONAL_SPLIT: h, DIAGONAL_INTS: start, DIAGONAL_OUTSIDE: len(outside) // 2,
            DIAGONAL_HIGH: len(high(h)),
        })

    def add(self, gate: TileGate) -> None:
        if gate.kind == "diagonal":
            self.diagonal(gate)
        elif gate.kind == "controlled":
            self.controlled(gate)
        else:
            self.dense([self.local[q] for q in gate.qubits], gate.values)


def encode_tile_pass(tile_qubits: Sequence[int], gates: Iterable[TileGate],
                     dtype: np.dtype) -> TilePass:
    """The tile pass applying ``gates`` (in order, global qubits) tile by tile over
    ``tile_qubits`` (local order), its numbers in ``dtype``."""
    encoder = _Encoder(tile_qubits, dtype)
    for gate in gates:
        encoder.add(gate)
    chunk_qubits, run_length, run_offsets, run_starts, run_positions = run_layout(tile_qubits)
    table = np.array(encoder.rows, dtype=np.int64).reshape(-1, TABLE_FIELDS)
    sections = (chunk_qubits, run_offsets, run_starts, run_positions, table.ravel(),
                *encoder.ints)
    buffer = np.concatenate(sections).astype(np.int64, copy=False)
    bounds = np.cumsum([0] + [part.size for part in sections[:INTS]] + [encoder.ints_size])
    data = np.concatenate([np.zeros(0, dtype=dtype), *encoder.data]).astype(dtype)
    gathers = table[table[:, KIND] == GATHER, GATHER_DIM]
    permuted_bits = int(run_length).bit_length() - 1
    while permuted_bits and tile_qubits[permuted_bits - 1] == permuted_bits - 1:
        permuted_bits -= 1
    if sorted(int(q) for q in tile_qubits[:permuted_bits]) != list(range(permuted_bits)):
        permuted_bits = -1
    for array in (buffer, data):
        array.flags.writeable = False
    return TilePass(
        tile_qubits=np.array(tile_qubits, dtype=np.int64),
        buffer=buffer,
        bounds=tuple(int(bound) for bound in bounds),
        run_bits=int(run_length).bit_length() - 1,
        data=data,
        widest_gather=int(gathers.max(initial=1)),
        permuted_bits=permuted_bits,
    )


def for_slice(tile_pass: TilePass, local_qubits: int, rank: int) -> TilePass:
    """The pass as it runs on one rank's slice of a state spread over ranks
    (:mod:`gpuprovider.kernels.distributed`): qubits from ``local_qubits`` up are global, bit
    ``q - local_qubits`` of ``rank``, and lie outside every tile. A condition on them is
    decided by the rank (a row it excludes gets a condition no chunk meets), and a
    diagonal's global qubits add their fixed bits to its ``DATA_START`` (their pairs then
    name a tile qubit, whose bit of a chunk's base is 0). The pass itself when it names no
    global qubit."""
    global_mask = ~((1 << local_qubits) - 1)
    rank_bits = rank << local_qubits
    buffer = tile_pass.buffer.copy()
    bounds = tile_pass.bounds
    table = buffer[bounds[TABLE]:bounds[TABLE + 1]].reshape(-1, TABLE_FIELDS)
    ints = buffer[bounds[INTS]:bounds[INTS + 1]]
    tile_bits = tile_pass.tile_qubits.size
    changed = False
    for row in table:
        mask = int(row[CONDITION_MASK])
        if mask & global_mask:
            changed = True
            if (rank_bits & mask & global_mask) != (int(row[CONDITION_VALUE]) & global_mask):
                row[CONDITION_MASK], row[CONDITION_VALUE] = 0, 1
            else:
                row[CONDITION_MASK] = mask & ~global_mask
                row[CONDITION_VALUE] = int(row[CONDITION_VALUE]) & ~global_mask
        if row[KIND] != DIAGONAL:
            continue
        h = int(row[DIAGONAL_SPLIT])
        pairs = (int(row[DIAGONAL_INTS]) + (1 << h) + (1 << (tile_bits - h))
                 + (1 << int(row[DIAGONAL_HIGH])))
        for j in range(int(row[DIAGONAL_OUTSIDE])):
            qubit, bit = int(ints[pairs + 2 * j]), int(ints[pairs + 2 * j + 1])
            if qubit >= local_qubits:
                changed = True
                row[DATA_START] += ((rank >> (qubit - local_qubits)) & 1) << bit
                ints[pairs + 2 * j] = tile_pass.tile_qubits[0]
    if not changed:
        return tile_pass
    buffer.flags.writeable = False
    return replace(tile_pass, buffer=buffer)


# --- the decoder: plain functions each device compiles (Numba njit, CUDA device) --------------


def row_applies(table, g, base):
    """Whether row ``g`` runs on the chunk starting at ``base``."""
    return (base & table[g, CONDITION_MASK]) == table[g, CONDITION_VALUE]


def dense2_fields(table, g):
    """``(low qubit, high qubit, stride of argument qubit 0, stride of argument qubit 1)``."""
    return (table[g, DENSE2_LOW], table[g, DENSE2_HIGH], table[g, DENSE2_STRIDE0],
            table[g, DENSE2_STRIDE1])


def gather_fields(table, g):
    """``(start, middle, stop)``: the sorted qubits are ``ints[start:middle]``, the offsets
    ``ints[middle:stop]``."""
    start = table[g, GATHER_INTS]
    middle = start + table[g, GATHER_WIDTH]
    return start, middle, middle + table[g, GATHER_DIM]


def controlled1_fields(table, g):
    """``(start, stop, control bits, target stride)``: the sorted qubits are
    ``ints[start:stop]``."""
    start = table[g, CONTROLLED1_INTS]
    return (start, start + table[g, CONTROLLED1_WIDTH], table[g, CONTROLLED1_BITS],
            table[g, CONTROLLED1_STRIDE])


def diagonal_fields(table, g, ints, base, tile_bits):
    """``(h, a_start, row_of, row_bits, high, d)`` of a DIAGONAL row on the chunk at ``base``:
    table A at ``ints[a_start]``, ``row_of`` and ``row_bits`` where they start in ``ints``,
    ``high`` the count of diagonal qubits at local positions ``>= h`` (``2**high`` rows), and
    ``d`` the data index of the chunk's phase 0 (the outside qubits' bits added)."""
    h = table[g, DIAGONAL_SPLIT]
    a_start = table[g, DIAGONAL_INTS]
    high = table[g, DIAGONAL_HIGH]
    row_of = a_start + (1 << h)
    row_bits = row_of + (1 << (tile_bits - h))
    pairs = row_bits + (1 << high)
    d = table[g, DATA_START]
    for j in range(table[g, DIAGONAL_OUTSIDE]):
        d += ((base >> ints[pairs + 2 * j]) & 1) << ints[pairs + 2 * j + 1]
    return h, a_start, row_of, row_bits, high, d


DECODERS = (row_applies, dense2_fields, gather_fields, controlled1_fields, diagonal_fields)
"""The decoder functions, for :func:`gpuprovider.kernels.updates.compiled`."""
