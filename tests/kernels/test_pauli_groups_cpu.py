"""``kernels.cpu.expectation_pauli_groups`` on chunked states against a plain NumPy sum.

The chunked read-out (``_pauli_groups_range``) splits each group's X-mask ``x`` into the chunk
part ``h = x >> PAULI_CHUNK_QUBITS``, the run bits and the copy index ``x % run``, and sums a
group of one term in spans set by the lowest run bit of ``x``. The strategies below draw X-masks
of every shape that changes that path: ``x = 0``, only the copy bits, only run bits (every
span), only chunk bits, the top qubit, random ones, duplicate X-masks in separate groups and
groups of several Z-masks (both kinds, ``use_imag`` and not), on states from
PAULI_CHUNK_QUBITS qubits to past the parallel threshold, in both precisions.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from properties.harness import examples
from qiskit.quantum_info import Pauli, Statevector

from gpuprovider.kernels import cpu
from gpuprovider.kernels.policy import CPU_POLICY

MAX_QUBITS = CPU_POLICY.parallel_min_qubits + 1
"""Past the parallel threshold, so that both drivers (serial and chunked) are read."""


def _popcount_parity(values: np.ndarray) -> np.ndarray:
    values = values.astype(np.int64)
    parity = np.zeros_like(values)
    while np.any(values):
        parity ^= values & 1
        values >>= 1
    return parity


def reference(state: np.ndarray, x_mask: int, z_mask: int) -> float:
    """``<psi| i**popcount(x & z) X^x Z^z |psi>`` in complex128, by its definition (no pairing):
    ``P|j> = i**y (-1)**popcount(j & z) |j ^ x>``."""
    amplitudes = state.astype(np.complex128)
    index = np.arange(amplitudes.size, dtype=np.int64)
    signs = 1 - 2 * _popcount_parity(index & z_mask)
    image = np.zeros_like(amplitudes)
    image[index ^ x_mask] = (1j ** bin(x_mask & z_mask).count("1")) * signs * amplitudes
    value = np.vdot(amplitudes, image)
    assert abs(value.imag) < 1e-9
    return float(value.real)


def _x_mask(draw, num_qubits: int) -> int:
    chunk = cpu.PAULI_CHUNK_QUBITS
    run = cpu.PAULI_RUN_QUBITS
    kind = draw(st.sampled_from(["zero", "copy", "runs", "span", "chunks", "top", "random"]))
    top = (1 << num_qubits) - 1
    if kind == "zero":
        return 0
    if kind == "copy":  # only the bits of the copy index
        return draw(st.integers(1, (1 << run) - 1))
    if kind == "runs":  # run bits and maybe copy bits, no chunk bits
        return draw(st.integers(1 << run, (1 << chunk) - 1))
    if kind == "span":  # lowest run bit at every position, random bits above and below
        bit = draw(st.integers(run, num_qubits - 1))
        above = draw(st.integers(0, top)) & ~((2 << bit) - 1)
        below = draw(st.integers(0, (1 << run) - 1))
        return (1 << bit) | above | below
    if kind == "chunks" and num_qubits > chunk:  # chunk bits only: no copy is shifted
        return draw(st.integers(1, top >> chunk)) << chunk
    if kind in ("top", "chunks"):
        return (1 << (num_qubits - 1)) | draw(st.integers(0, top >> 1))
    return draw(st.integers(0, top))


@st.composite
def grouped_paulis(draw, num_qubits: int):
    """``(x_masks, term_starts, z_masks)``: 1-12 groups of 0-4 terms, X-masks maybe repeated."""
    top = (1 << num_qubits) - 1
    x_masks: list[int] = []
    sizes: list[int] = []
    for _ in range(draw(st.integers(1, 12))):
        if x_masks and draw(st.booleans()) and draw(st.booleans()):
            x_masks.append(draw(st.sampled_from(x_masks)))  # the same X-mask in a new group
        else:
            x_masks.append(_x_mask(draw, num_qubits))
        sizes.append(draw(st.sampled_from([0, 1, 1, 1, 2, 3, 4])))
    z_masks: list[int] = []
    for x_mask, size in zip(x_masks, sizes):
        for _ in range(size):
            z_mask = draw(st.integers(0, top))
            if draw(st.booleans()):  # pin the kind: y = popcount(x & z) odd (Im) or even (Re)
                odd = draw(st.booleans())
                if bin(x_mask & z_mask).count("1") % 2 != odd and x_mask:
                    z_mask ^= x_mask & -x_mask
            z_masks.append(z_mask)
    term_starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return (np.array(x_masks, dtype=np.int64), term_starts, np.array(z_masks, dtype=np.int64))


def _state(num_qubits: int, dtype, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    state = rng.normal(size=1 << num_qubits) + 1j * rng.normal(size=1 << num_qubits)
    return (state / np.linalg.norm(state)).astype(dtype)


def _check(state: np.ndarray, x_masks, term_starts, z_masks) -> np.ndarray:
    values = cpu.expectation_pauli_groups(state, x_masks, term_starts, z_masks)
    assert values.dtype == np.float64 and values.shape == z_masks.shape
    expected = [reference(state, int(x_masks[g]), int(z))
                for g in range(x_masks.size)
                for z in z_masks[term_starts[g]:term_starts[g + 1]]]
    # The reference reads the same stored amplitudes in complex128 and the kernel sums in
    # float64 in both precisions: only float64 rounding separates them.
    np.testing.assert_allclose(values, expected, atol=1e-10, rtol=0)
    return values


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64], ids=["double", "single"])
@examples(1.0)
@given(data=st.data())
def test_grouped_read_out_matches_numpy(dtype, data):
    num_qubits = data.draw(st.integers(cpu.PAULI_CHUNK_QUBITS, MAX_QUBITS), label="qubits")
    x_masks, term_starts, z_masks = data.draw(grouped_paulis(num_qubits), label="paulis")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    _check(_state(num_qubits, dtype, seed), x_masks, term_starts, z_masks)


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64], ids=["double", "single"])
@pytest.mark.parametrize("num_qubits", [cpu.PAULI_CHUNK_QUBITS, cpu.PAULI_CHUNK_QUBITS + 3,
                                        MAX_QUBITS])
def test_every_span_and_both_kinds(dtype, num_qubits):
    """Each lowest run bit (span 16 .. a lane block, and none), with copy bits 0 and not, each
    with a Re and an Im term alone and the two together in one group."""
    run, chunk = cpu.PAULI_RUN_QUBITS, cpu.PAULI_CHUNK_QUBITS
    rng = np.random.default_rng(num_qubits)
    x_masks, z_masks, sizes = [], [], []
    for bit in [None, *range(run, num_qubits)]:
        for low in (0, 5):
            x_mask = low | (0 if bit is None else 1 << bit)
            if bit is not None and bit < chunk and num_qubits > chunk:
                x_mask |= 1 << (num_qubits - 1)  # and a partner in another chunk
            pair = []
            for odd in (False, True):
                z_mask = int(rng.integers(0, 1 << num_qubits))
                if x_mask and bin(x_mask & z_mask).count("1") % 2 != odd:
                    z_mask ^= x_mask & -x_mask
                pair.append(z_mask)
            for group in ([pair[0]], [pair[1]], pair):
                x_masks.append(x_mask)
                z_masks.extend(group)
                sizes.append(len(group))
    term_starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    _check(_state(num_qubits, dtype, seed=num_qubits), np.array(x_masks, dtype=np.int64),
           term_starts, np.array(z_masks, dtype=np.int64))


def _label(x_mask: int, z_mask: int, num_qubits: int) -> str:
    """The Qiskit label (qubit 0 rightmost; Y where both bits are set) of the masks."""
    return "".join("IXZY"[((x_mask >> q) & 1) | 2 * ((z_mask >> q) & 1)]
                   for q in reversed(range(num_qubits)))


def test_matches_qiskit_statevector():
    """The convention itself, on one chunked state: Qiskit's value of the same label."""
    num_qubits = cpu.PAULI_CHUNK_QUBITS + 2
    state = _state(num_qubits, np.complex128, seed=7)
    rng = np.random.default_rng(8)
    x_masks = np.array([0, 3, 1 << 4, 1 << 11, int(rng.integers(1 << num_qubits))], np.int64)
    z_masks = rng.integers(0, 1 << num_qubits, size=x_masks.size).astype(np.int64)
    z_masks[1] = 1  # a Y on qubit 0
    values = cpu.expectation_pauli_groups(state, x_masks, np.arange(x_masks.size + 1), z_masks)
    qiskit_state = Statevector(state)
    for value, x_mask, z_mask in zip(values, x_masks.tolist(), z_masks.tolist()):
        label = _label(x_mask, z_mask, num_qubits)
        assert np.isclose(value, qiskit_state.expectation_value(Pauli(label)).real,
                          atol=1e-10), label
        assert np.isclose(value, reference(state, x_mask, z_mask), atol=1e-10), label


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs NUMBA_NUM_THREADS >= 2")
def test_parallel_drivers_agree_and_repeat():
    """Two threads against one: the same values to rounding, and each thread count gives the
    same bits every time (partial sums are added in a fixed order)."""
    num_qubits = MAX_QUBITS
    state = _state(num_qubits, np.complex128, seed=11)
    rng = np.random.default_rng(12)
    x_masks = rng.integers(0, 1 << num_qubits, size=40).astype(np.int64)
    x_masks[:3] = [0, 5, 1 << 4]
    term_starts = np.arange(41, dtype=np.int64)
    z_masks = rng.integers(0, 1 << num_qubits, size=40).astype(np.int64)
    previous = numba.get_num_threads()
    try:
        results = {}
        for threads in (1, 2):
            numba.set_num_threads(threads)
            first = cpu.expectation_pauli_groups(state, x_masks, term_starts, z_masks)
            again = cpu.expectation_pauli_groups(state, x_masks, term_starts, z_masks)
            np.testing.assert_array_equal(first, again)
            results[threads] = first
    finally:
        numba.set_num_threads(previous)
    np.testing.assert_allclose(results[1], results[2], atol=1e-12, rtol=0)
    _check(state, x_masks, term_starts, z_masks)
