"""Dense and controlled matrices in CPU tile passes (``cpu_tiles._dense_lanes`` and its 4x4
loop ``_rows4``, the BLOCK loops, the scalar gathers) against NumPy, on random draws: random
unitaries on 2 to 4 targets at random local positions, always one draw on the lowest position
above the lanes and one on the tile's highest; with and without controls (inside the tile,
above and below the lanes, and outside it); tiles in the planner's lane-first order and
shuffled; both dtypes."""

from __future__ import annotations

import numpy as np
import pytest
from gpuprovider.kernels import cpu, cpu_tiles
from gpuprovider.kernels.tiles import encode_tile_pass
from support.kernels import (
    TileGate,
    controlled_reference,
    random_state,
    random_unitary_matrix,
    tensordot_evolve,
)

LANES = cpu_tiles.LANE_QUBITS
NUM_QUBITS = 13
TILE_BITS = 12
DRAWS = 24
ATOL = {np.complex128: 1e-12, np.complex64: 3e-6}


def _local_order(rng: np.random.Generator, shuffled: bool) -> list[int]:
    """A tile of ``TILE_BITS`` of the qubits: shuffled, or lanes first as the planner
    orders one (five spare qubits, then the others ascending)."""
    qubits = rng.permutation(NUM_QUBITS)[:TILE_BITS].tolist()
    if shuffled:
        return qubits
    lanes = sorted(qubits[:LANES])
    return lanes + sorted(qubits[LANES:])


def _draw(rng: np.random.Generator, draw: int, order: list[int], controlled: bool,
          dtype) -> TileGate:
    k = int(rng.integers(2, 5))
    positions = rng.choice(np.arange(LANES, TILE_BITS), k, replace=False)
    if draw == 0:
        positions[0] = LANES
    elif draw == 1:
        positions[0] = TILE_BITS - 1
    positions = np.unique(positions)
    if positions.size < 2:
        positions = np.array([LANES, TILE_BITS - 1])
    rng.shuffle(positions)
    targets = tuple(order[int(p)] for p in positions)
    matrix = random_unitary_matrix(rng, 1 << len(targets), dtype)
    if not controlled:
        return TileGate("dense", targets, matrix)
    outside = [q for q in range(NUM_QUBITS) if q not in order]
    free = [q for q in order if q not in targets]
    # an inside control above the lanes, one anywhere in the tile, the qubit outside it
    above = [order[p] for p in range(LANES, TILE_BITS) if order[p] not in targets]
    choices = [int(rng.choice(above)), int(rng.choice(free)), outside[0]]
    controls = tuple(dict.fromkeys(choices[: int(rng.integers(1, 4))]))
    return TileGate("controlled", targets, matrix, controls,
                    int(rng.integers(1 << len(controls))))


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64], ids=["double", "single"])
@pytest.mark.parametrize("controlled", [False, True], ids=["dense", "controlled"])
@pytest.mark.parametrize("shuffled", [False, True], ids=["lanes-first", "shuffled"])
def test_random_matrices_in_a_tile_match_numpy(dtype, controlled, shuffled):
    rng = np.random.default_rng(1000 * controlled + 10 * shuffled + (dtype == np.complex64))
    for draw in range(DRAWS):
        order = _local_order(rng, shuffled)
        gate = _draw(rng, draw, order, controlled, dtype)
        host = random_state(NUM_QUBITS, dtype, seed=draw)
        state = host.copy()
        cpu.apply_tile_pass(state, encode_tile_pass(order, [gate], np.dtype(dtype)))
        if controlled:
            expected = controlled_reference(host, list(gate.controls), gate.control_state,
                                            list(gate.qubits), gate.values)
        else:
            expected = tensordot_evolve(host, gate.values, list(gate.qubits))
        np.testing.assert_allclose(state, expected, atol=ATOL[dtype],
                                   err_msg=f"draw {draw}: {gate.qubits} on tile {order}, "
                                           f"controls {gate.controls}")
