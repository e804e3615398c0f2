"""The tile pass format: many gates applied to a tile of the state while it is in fast memory.

A tile pass names ``m`` tile qubits (sorted). For every assignment of the other qubits (a
*chunk*, whose index bits are spread over the non-tile positions to give the chunk's ``base``
index) the pass loads the ``2**m`` amplitudes ``base | spread(l)`` into a tile buffer
(local index ``l``: bit ``j`` of ``l`` is tile qubit ``j``), applies every gate of the pass
in local coordinates, and writes the tile back. The tile qubits always include the lowest
ones, so a tile is loaded as ``2**m / run_length`` contiguous runs.

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
- ``DIAGONAL``: a = h, the number of low local bits of the first lookup table; b = start in
  ``ints`` of table A (``2**h`` entries: diagonal-index bits spelled by ``l``'s low ``h``
  bits), table B (``2**(m-h)`` entries, for ``l >> h``) and ``c`` pairs ``(global qubit,
  diagonal-index bit)`` for qubits outside the tile; c = that count; data: the diagonal.
  Amplitude ``l`` is multiplied by ``data[start + (A[l & (2**h - 1)] | B[l >> h] | outside)]``.
"""

from __future__ import annotations

import numpy as np

DENSE1, DENSE2, GATHER, CONTROLLED1, DIAGONAL = range(5)
TABLE_FIELDS = 8
KIND, A, B, C, D, DATA, CONDITION_MASK, CONDITION_VALUE = range(TABLE_FIELDS)


def run_layout(tile_qubits: np.ndarray) -> tuple[int, np.ndarray]:
    """``(run_length, run_offsets)`` of a tile: the tile qubits ``0..L-1`` make contiguous runs
    of ``2**L`` amplitudes; run ``r`` starts at ``base + run_offsets[r]``."""
    low = 0
    while low < tile_qubits.size and tile_qubits[low] == low:
        low += 1
    high = tile_qubits[low:]
    runs = np.zeros(1 << high.size, dtype=np.int64)
    for j, qubit in enumerate(high):
        runs[1 << j: 2 << j] = runs[: 1 << j] + (1 << int(qubit))
    return 1 << low, runs
