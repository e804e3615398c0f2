"""The tile pass format: many gates applied to a tile of the state while it is in fast memory.

A tile pass names ``m`` tile qubits in *local order*: local index ``l`` of a tile has tile
qubit ``j`` in bit ``j``. For every assignment of the other qubits (a *chunk*, whose index
bits are spread over the non-tile positions, in ascending order of the sorted
``chunk_qubits``, to give the chunk's ``base`` index) the pass loads the ``2**m`` amplitudes
of the chunk into a tile buffer, applies every gate of the pass in local coordinates, and
writes the tile back. The tile always holds the lowest qubits ``0..L-1``, so a tile is loaded
as runs of ``run_length = 2**L`` contiguous amplitudes: run ``r`` starts at ``base +
run_offsets[r]``, and its amplitude ``t`` is local index ``run_starts[r] + run_positions[t]``
(the identity when the local order is ascending). A device may keep its lowest local
positions, the *lanes*, free of dense targets so that gates vectorise over them.

Each gate is one row of an int64 ``table`` (``TABLE_FIELDS`` columns), with its integers in
``ints`` and its complex numbers (matrices row-major, diagonals) in ``data`` (the state's
dtype). Columns: ``[kind, a, b, c, d, data_start, condition_mask, condition_value]``; a gate
runs on a chunk only when ``base & condition_mask == condition_value`` (controls outside the
tile). By kind:

- ``DENSE1``: a = local qubit; data: the 2x2 matrix.
- ``DENSE2``: a, b = lower and higher local qubit, c, d = strides of argument qubits 0 and 1;
  data: the 4x4 matrix.
- ``GATHER``: a = k sorted local qubits (controls and targets), b = start in ``ints`` of those
  k positions followed by the ``dim`` offsets of the targets' basis states (control bits
  included), c = dim; data: the ``dim x dim`` matrix. Dense gates of 3+ qubits and controlled
  gates with several targets.
- ``CONTROLLED1``: a = k sorted local qubits (local controls and the target), b = their start
  in ``ints``, c = the local control bits that must be set, d = the target's stride; data: the
  2x2 matrix.
- ``DIAGONAL``: a = h, b = start in ``ints`` of: table A (``2**h`` entries: the diagonal-index
  bits spelled by ``l``'s low ``h`` bits), ``row_of`` (``2**(m-h)`` entries: for ``l >> h``,
  which of the distinct high patterns it is), ``row_bits`` (``2**d`` entries: the
  diagonal-index bits of each high pattern) and ``c`` pairs ``(global qubit, diagonal-index
  bit)`` for qubits outside the tile; c = that count; d = how many diagonal qubits lie at
  local positions ``>= h``; data: the diagonal. Amplitude ``l`` is multiplied by
  ``data[start + (A[l & (2**h - 1)] | row_bits[row_of[l >> h]] | outside)]``: a chunk needs
  only ``2**d`` distinct rows of ``2**h`` phases.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

DENSE1, DENSE2, GATHER, CONTROLLED1, DIAGONAL = range(5)
TABLE_FIELDS = 8
KIND, A, B, C, D, DATA, CONDITION_MASK, CONDITION_VALUE = range(TABLE_FIELDS)


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
