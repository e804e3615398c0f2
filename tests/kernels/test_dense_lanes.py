"""The CPU tile kernels for matrices above the lanes (``cpu_tiles._dense_lanes`` for 2 to 5
qubits and controlled ones, 4x4 matrices through ``_rows4``), driven through
one-gate tile passes against qiskit.quantum_info.Statevector: 2- to 5-qubit matrices on the
lowest qubits above the lanes, on the highest, on both, in argument orders that are not
sorted, controlled gates with controls inside and outside the tile, and qubits below the
lanes (the other kernels) for contrast; tiles in ascending and in shuffled local order."""

from __future__ import annotations


import numpy as np
import pytest
from gpuprovider.kernels import cpu, cpu_tiles
from gpuprovider.kernels.tiles import CONTROLLED1, DENSE2, GATHER, KIND, encode_tile_pass
from qiskit.quantum_info import Operator, Statevector
from support.kernels import TileGate, random_state, random_unitary_matrix

ATOL = {np.complex128: 1e-12, np.complex64: 2e-6}
NUM_QUBITS = 12
LANES = cpu_tiles.LANE_QUBITS


# Local positions of the targets (argument order) and of the controls inside the tile.
ABOVE_LANES = [
    ((LANES, LANES + 1), ()),
    ((LANES + 3, LANES), ()),
    ((LANES + 4, LANES + 2, LANES), ()),
    ((LANES + 1, LANES + 4, LANES, LANES + 3), ()),
    ((LANES, LANES + 1, LANES + 2, LANES + 3, LANES + 4), ()),
    ((LANES + 2,), (LANES + 4,)),
    ((LANES + 4, LANES + 1), (LANES,)),
]
BELOW_LANES = [
    ((0, LANES + 2), ()),
    ((LANES + 1, 2, LANES + 3), ()),
    ((LANES + 3,), (1,)),
]
TILES = {
    # The whole state, ascending: long runs along the lowest target.
    "ascending": list(range(NUM_QUBITS)),
    # Ten of twelve qubits, shuffled: four chunks, runs cut at every local position.
    "shuffled": [3, 0, 11, 5, 1, 8, 2, 10, 6, 4],
}


def _expected(host: np.ndarray, gate: TileGate) -> np.ndarray:
    """Statevector's result; a controlled gate as the full matrix on controls + targets
    (Qiskit's argument order: the controls are the low bits), the identity where the controls
    do not read ``control_state``."""
    matrix = gate.values.astype(np.complex128)
    width = len(gate.controls)
    if width:
        full = np.eye(matrix.shape[0] << width, dtype=np.complex128)
        chosen = np.flatnonzero((np.arange(full.shape[0]) & ((1 << width) - 1))
                                == gate.control_state)
        full[np.ix_(chosen, chosen)] = matrix
        matrix = full
    return Statevector(host.astype(np.complex128)).evolve(
        Operator(matrix), qargs=[*gate.controls, *gate.qubits]).data


def _run(host: np.ndarray, tile: list[int], gate: TileGate, dtype):
    tile_pass = encode_tile_pass(tile, [gate], np.dtype(dtype))
    state = host.copy()
    cpu.apply_tile_pass(state, tile_pass)
    return state, tile_pass


def _gate(tile: list[int], targets, controls, rng, dtype, outside: int | None) -> TileGate:
    matrix = random_unitary_matrix(rng, 1 << len(targets), dtype)
    qubits = tuple(tile[j] for j in targets)
    control_qubits = tuple(tile[j] for j in controls)
    if outside is not None:
        control_qubits += (outside,)
    if not control_qubits:
        return TileGate("dense", qubits, matrix)
    state = int(rng.integers(1 << len(control_qubits)))
    return TileGate("controlled", qubits, matrix, control_qubits, state)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128], ids=["single", "double"])
@pytest.mark.parametrize("layout", sorted(TILES))
@pytest.mark.parametrize("positions", ABOVE_LANES + BELOW_LANES,
                         ids=lambda p: f"targets{p[0]}-controls{p[1]}")
def test_matrix_in_a_tile_matches_statevector(dtype, layout, positions):
    targets, controls = positions
    tile = TILES[layout]
    outside = sorted(set(range(NUM_QUBITS)) - set(tile))
    rng = np.random.default_rng(sum(targets) * 31 + len(controls) + len(layout))
    host = random_state(NUM_QUBITS, dtype, seed=len(targets) + 7 * sum(controls))
    # With a control outside the tile, the row runs only on the chunks that satisfy it.
    for control_outside in ([None, outside[-1]] if outside else [None]):
        gate = _gate(tile, targets, controls, rng, dtype, control_outside)
        state, tile_pass = _run(host, tile, gate, dtype)
        lanes = min(targets + controls) >= LANES
        assert tile_pass.table[0, KIND] in (DENSE2, GATHER, CONTROLLED1)
        assert lanes == (positions in ABOVE_LANES)
        expected = _expected(host, gate)
        np.testing.assert_allclose(state, expected, atol=10 * ATOL[dtype])
        assert np.abs(expected - host).max() > 0.01, "the gate left the state as it was"


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128], ids=["single", "double"])
def test_several_matrices_in_one_pass_match_statevector(dtype):
    """Rows one after another in one tile: each reads what the one before wrote."""
    tile = TILES["shuffled"]
    rng = np.random.default_rng(5)
    gates = [_gate(tile, targets, controls, rng, dtype, None)
             for targets, controls in ABOVE_LANES + BELOW_LANES]
    host = random_state(NUM_QUBITS, dtype, seed=3)
    state = host.copy()
    cpu.apply_tile_pass(state, encode_tile_pass(tile, gates, np.dtype(dtype)))
    expected = host
    for gate in gates:
        expected = _expected(expected, gate)
    np.testing.assert_allclose(state, expected, atol=20 * ATOL[dtype])
