"""How the CPU loads a tile and stores it back (``cpu_tiles._move_runs`` and the scattered
path), against NumPy: local orders whose runs are in order, whose runs' low blocks the local
order permutes among themselves (blocks shorter than a run, and one block per run), and
orders it scatters; ``tiles.encode_tile_pass``'s ``permuted_bits`` for each."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from gpuprovider.kernels import cpu
from gpuprovider.kernels.tiles import encode_tile_pass
from support.kernels import TileGate, random_state, random_unitary_matrix, tensordot_evolve

NUM_QUBITS = {"serial": 12, "parallel": cpu.POLICY.parallel_min_qubits + 1}
ORDERS = {
    # (local order, its permuted_bits)
    "ascending": ([0, 1, 2, 3, 4, 5, 6, 7, 8], 0),
    "ascending with gaps": ([0, 1, 2, 4, 6, 7, 9, 10], 0),
    # lanes first, as the planner orders a tile: blocks of 2**8 in runs of 2**9
    "lanes": ([1, 4, 5, 6, 7, 0, 2, 3, 8, 10, 11], 8),
    # the whole run (2**6) one block
    "lanes, one block": ([2, 3, 4, 5, 0, 1, 8, 9], 6),
    # low qubits out of place onto positions above the run: scattered
    "scattered": ([3, 0, 11, 5, 1, 8, 2, 10, 6, 4], -1),
    "scattered, high first": ([9, 0, 1, 2], -1),
}


@pytest.mark.parametrize("order", list(ORDERS), ids=list(ORDERS))
def test_permuted_bits_describe_the_runs(order):
    local_order, expected = ORDERS[order]
    tile_pass = encode_tile_pass(local_order, [], np.dtype(np.complex128))
    assert tile_pass.permuted_bits == expected
    if expected < 0:
        return
    positions = tile_pass.run_positions
    block = 1 << expected
    t = np.arange(positions.size)
    np.testing.assert_array_equal(positions, positions[t % block] + t - t % block)
    np.testing.assert_array_equal(np.sort(positions[:block]), np.arange(block))


@pytest.mark.parametrize("order", list(ORDERS), ids=list(ORDERS))
def test_a_pass_with_other_numbers_keeps_every_other_field(order):
    """A sweep's replayed passes (``TilePass.with_data``) once lost ``permuted_bits`` and so
    loaded every run amplitude by amplitude."""
    local_order, _ = ORDERS[order]
    rng = np.random.default_rng(3)
    gate = TileGate("dense", (local_order[-1], local_order[-2]),
                    random_unitary_matrix(rng, 4, np.complex128))
    tile_pass = encode_tile_pass(local_order, [gate], np.dtype(np.complex128))
    other = tile_pass.with_data(tile_pass.data * 1j)
    assert replace(other, data=tile_pass.data) == replace(tile_pass)
    np.testing.assert_array_equal(other.data, tile_pass.data * 1j)


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64], ids=["double", "single"])
@pytest.mark.parametrize("size", list(NUM_QUBITS))
@pytest.mark.parametrize("order", list(ORDERS), ids=list(ORDERS))
def test_tile_pass_loads_and_stores_every_amplitude(order, size, dtype):
    """An empty pass leaves the state as it was; one dense gate on the tile's highest local
    positions (away from the lanes) and one on its lowest land where NumPy puts them."""
    num_qubits = NUM_QUBITS[size]
    local_order = ORDERS[order][0]
    rng = np.random.default_rng(sum(local_order) + num_qubits)
    host = random_state(num_qubits, dtype, seed=len(local_order))
    state = host.copy()
    cpu.apply_tile_pass(state, encode_tile_pass(local_order, [], np.dtype(dtype)))
    np.testing.assert_array_equal(state, host)
    first = [local_order[-1], local_order[-2]]
    second = [local_order[0], local_order[1], local_order[-1]]
    gates = [TileGate("dense", tuple(qubits), random_unitary_matrix(rng, 1 << len(qubits),
                                                                    dtype))
             for qubits in (first, second)]
    cpu.apply_tile_pass(state, encode_tile_pass(local_order, gates, np.dtype(dtype)))
    expected = host
    for gate in gates:
        expected = tensordot_evolve(expected, gate.values, list(gate.qubits))
    atol = 1e-12 if np.dtype(dtype) == np.complex128 else 2e-6
    np.testing.assert_allclose(state, expected, atol=atol)
