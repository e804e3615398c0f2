"""CPU statevector kernels, compiled by Numba.

Every kernel releases the GIL (``nogil=True``) and is cached on disk (``cache=True``), so a
second process starts without JIT. Each operation is written once as a serial loop over a
range of work items (``_*_range``); large states split that range into chunks run in
parallel (``_*_chunks``), small ones run it on the calling thread, where a thread-pool launch
would cost more than the pass itself.

Index convention (Qiskit's little-endian): amplitude ``i`` has qubit ``q`` in bit ``q`` of
``i``; for a gate on qubits ``(q_0, ..., q_{k-1})`` in argument order, row/column ``m`` of its
matrix sets bit ``q_j`` of the amplitude index to bit ``j`` of ``m``.
"""

from __future__ import annotations

import importlib
import threading
from contextlib import nullcontext

import numba
import numpy as np
from numba import njit, prange

from .layout import (
    basis_offsets,
    controlled_layout,
    pauli_groups_layout,
    permutation_matrix,
)


def _choose_threading_layer() -> threading.Lock | None:
    """Ask Numba for a threadsafe layer (OpenMP or TBB) when one loads, else workqueue.

    Returns the lock parallel kernels must hold: workqueue aborts the process when two
    threads run parallel kernels at once, so with it concurrent jobs take turns.
    """
    for pool in ("numba.np.ufunc.omppool", "numba.np.ufunc.tbbpool"):
        try:
            importlib.import_module(pool)
        except ImportError:  # e.g. libgomp or libtbb missing on this machine
            continue
        numba.config.THREADING_LAYER = "threadsafe"
        return None
    numba.config.THREADING_LAYER = "workqueue"
    return threading.Lock()


_PARALLEL_LOCK = _choose_threading_layer()

NAME = "CPU"
MAX_MATRIX_QUBITS: int | None = None
"""Largest dense, permutation or prepare operation; None: any that fits in memory."""
PARALLEL_MIN_QUBITS = 14
"""States below this many qubits are processed on the calling thread."""
CHUNKS_PER_THREAD = 4
SAMPLE_BLOCK_QUBITS = 12
"""Sampling sums probabilities in blocks of 2**SAMPLE_BLOCK_QUBITS amplitudes."""
MARGINAL_RUN_QUBITS = 10
"""Marginal probabilities work in runs of 2**MARGINAL_RUN_QUBITS amplitudes, whose bins'
bits from the qubits below that are looked up in a table made once per call."""

PLAN_MIN_QUBITS = 12
"""Smaller states run op by op: each op is a few microseconds there, less than planning
costs, and the tile kernels need not be compiled for them."""
TILE_QUBITS = {16: 15, 8: 16}
"""Tile qubits of a tile pass by bytes per amplitude: a 512 KiB tile stays in a core's L2."""
TILE_LOW_QUBITS = 3
"""Lowest qubits every tile holds, so that a tile is read in runs of whole cache lines."""
TILE_LANE_QUBITS = {16: 4, 8: 4}
"""Lowest local positions of a tile kept free of dense targets (by bytes per amplitude), so
that 1- and 2-qubit matrices run as vectorised loops over at least 2**4 reals."""
FUSION_MAX_QUBITS = 3
"""Widest dense block the planner fuses gates into."""
DIAGONAL_MAX_QUBITS = 12
"""Widest diagonal the planner folds diagonal gates into (a table of 2**12 phases)."""
PAULI_CHUNK_QUBITS = 10
"""``expectation_pauli_groups`` reads the state in chunks of 2**10 amplitudes: a chunk's
2**PAULI_RUN_QUBITS shifted float64 copies (256 KiB) stay in a core's L2 (1 MiB on the
development machine) while every group reads them; smaller states take the plain pass per
group."""
PAULI_RUN_QUBITS = 4
"""The chunk copies cover every XOR of the lowest 4 index bits, so the X-mask's other bits
move whole runs of 16 amplitudes and the pair loops are vectorised runs of 16."""
PAULI_LANE_QUBITS = 8
"""Each term's signs over the lowest 8 index bits come from a table of 256 +-1.0, so a term
costs one multiply-add per amplitude pair."""
GATE_COST = {"dense": (0.0, 0.9, 1.5, 9.0, 30.0, 110.0), "diagonal": 1.0}
"""Cost per amplitude of a gate inside a tile, by kind and width: nanoseconds on one core of
the 2-core development machine in double (vectorised 1- and 2-qubit matrices, scalar wider
ones; ``kernels/cpu_tiles.py``). The planner fuses two gates when the fused one costs no
more than the pair."""

_SERIAL = {"nogil": True, "cache": True}
_PARALLEL = {"nogil": True, "cache": True, "parallel": True}
_VECTOR = {**_SERIAL, "fastmath": True}
"""Loops whose float sums may be reordered, so that they vectorise."""


@njit(**_SERIAL)
def _insert_zero_bits(index, sorted_qubits):
    """The index whose bits at ``sorted_qubits`` are 0 and whose other bits spell ``index``."""
    for q in sorted_qubits:
        low = index & ((1 << q) - 1)
        index = ((index >> q) << (q + 1)) | low
    return index


@njit(**_SERIAL)
def _matrix1_range(state, qubit, m00, m01, m10, m11, start, stop):
    stride = 1 << qubit
    low_mask = stride - 1
    for g in range(start, stop):
        i0 = ((g >> qubit) << (qubit + 1)) | (g & low_mask)
        i1 = i0 | stride
        a0 = state[i0]
        a1 = state[i1]
        state[i0] = m00 * a0 + m01 * a1
        state[i1] = m10 * a0 + m11 * a1


@njit(**_SERIAL)
def _matrix2_range(state, q_low, q_high, offset1, offset2, matrix, start, stop):
    """Two-qubit matrix; ``offset1``/``offset2`` are the strides of argument qubits 0 and 1."""
    m = matrix
    m00, m01, m02, m03 = m[0, 0], m[0, 1], m[0, 2], m[0, 3]
    m10, m11, m12, m13 = m[1, 0], m[1, 1], m[1, 2], m[1, 3]
    m20, m21, m22, m23 = m[2, 0], m[2, 1], m[2, 2], m[2, 3]
    m30, m31, m32, m33 = m[3, 0], m[3, 1], m[3, 2], m[3, 3]
    low_mask = (1 << q_low) - 1
    mid_mask = (1 << (q_high - 1)) - 1
    for g in range(start, stop):
        i = ((g >> q_low) << (q_low + 1)) | (g & low_mask)
        i0 = ((i >> q_high) << (q_high + 1)) | (i & ((mid_mask << 1) | 1))
        i1 = i0 + offset1
        i2 = i0 + offset2
        i3 = i1 + offset2
        a0 = state[i0]
        a1 = state[i1]
        a2 = state[i2]
        a3 = state[i3]
        state[i0] = m00 * a0 + m01 * a1 + m02 * a2 + m03 * a3
        state[i1] = m10 * a0 + m11 * a1 + m12 * a2 + m13 * a3
        state[i2] = m20 * a0 + m21 * a1 + m22 * a2 + m23 * a3
        state[i3] = m30 * a0 + m31 * a1 + m32 * a2 + m33 * a3


@njit(**_SERIAL)
def _matrix_range(state, sorted_qubits, offsets, matrix, start, stop):
    dim = offsets.size
    gathered = np.empty(dim, dtype=state.dtype)
    for g in range(start, stop):
        base = _insert_zero_bits(g, sorted_qubits)
        for m in range(dim):
            gathered[m] = state[base + offsets[m]]
        for row in range(dim):
            acc = matrix[row, 0] * gathered[0]
            for col in range(1, dim):
                acc += matrix[row, col] * gathered[col]
            state[base + offsets[row]] = acc


@njit(**_SERIAL)
def _controlled_matrix1_range(state, sorted_qubits, control_bits, stride, m00, m01, m10, m11,
                              start, stop):
    """One-target matrix where the controls read ``control_bits``: ``sorted_qubits`` are the
    controls and the target, ``stride`` is the target's bit."""
    for g in range(start, stop):
        i0 = _insert_zero_bits(g, sorted_qubits) | control_bits
        i1 = i0 | stride
        a0 = state[i0]
        a1 = state[i1]
        state[i0] = m00 * a0 + m01 * a1
        state[i1] = m10 * a0 + m11 * a1


@njit(**_SERIAL)
def _permutation_range(state, sorted_qubits, offsets, permutation, phases, start, stop):
    dim = offsets.size
    gathered = np.empty(dim, dtype=state.dtype)
    for g in range(start, stop):
        base = _insert_zero_bits(g, sorted_qubits)
        for m in range(dim):
            gathered[m] = state[base + offsets[m]]
        for row in range(dim):
            state[base + offsets[row]] = phases[row] * gathered[permutation[row]]


@njit(**_SERIAL)
def _prepare_range(state, sorted_qubits, offsets, amplitudes, start, stop):
    """Spread each amplitude with ``qubits`` all 0 over their ``amplitudes`` (offsets[0] is 0)."""
    dim = offsets.size
    for g in range(start, stop):
        base = _insert_zero_bits(g, sorted_qubits)
        a = state[base]
        for m in range(dim):
            state[base + offsets[m]] = amplitudes[m] * a


@njit(**_SERIAL)
def _diagonal_range(state, qubits, diagonal, start, stop):
    k = qubits.size
    for i in range(start, stop):
        m = 0
        for j in range(k):
            m |= ((i >> qubits[j]) & 1) << j
        state[i] *= diagonal[m]


@njit(**_SERIAL)
def _probability_one_range(state, qubit, start, stop):
    total = 0.0
    stride = 1 << qubit
    low_mask = stride - 1
    for g in range(start, stop):
        a = state[(((g >> qubit) << (qubit + 1)) | (g & low_mask)) | stride]
        total += a.real * a.real + a.imag * a.imag
    return total


@njit(**_SERIAL)
def _parity(value):
    """1 when ``value`` (non-negative) has an odd number of set bits, else 0."""
    for shift in (32, 16, 8, 4, 2, 1):
        value ^= value >> shift
    return value & 1


@njit(**_SERIAL)
def _pauli_range(state, pivot, x_mask, z_masks, use_imag, out, start, stop):
    """Add to ``out[t]`` the sum over amplitude pairs that ``layout.pauli_pairing`` defines for
    the Pauli ``(x_mask, z_masks[t])``, in float64: every term of one X-mask in one pass."""
    stride = 1 << pivot
    low_mask = stride - 1
    for g in range(start, stop):
        i0 = ((g >> pivot) << (pivot + 1)) | (g & low_mask)
        i1 = i0 ^ x_mask if x_mask else i0 | stride
        a0 = state[i0]
        a1 = state[i1]
        r0, j0 = np.float64(a0.real), np.float64(a0.imag)
        r1, j1 = np.float64(a1.real), np.float64(a1.imag)
        p0 = p1 = re = im = 0.0
        if x_mask == 0:
            p0 = r0 * r0 + j0 * j0
            p1 = r1 * r1 + j1 * j1
        else:
            re = r1 * r0 + j1 * j0  # Re(conj(a1) * a0)
            im = r1 * j0 - j1 * r0  # Im(conj(a1) * a0)
        for t in range(z_masks.size):
            sign0 = 1.0 - 2.0 * _parity(i0 & z_masks[t])
            if x_mask == 0:
                pivot_sign = 1.0 - 2.0 * ((z_masks[t] >> pivot) & 1)  # s(i1) / s(i0)
                out[t] += sign0 * (p0 + pivot_sign * p1)
            elif use_imag[t]:
                out[t] += sign0 * im
            else:
                out[t] += sign0 * re


@njit(**_SERIAL)
def _pauli_groups_small(state, x_masks, pivots, term_starts, z_masks, use_imag, out):
    """Every group of ``expectation_pauli_groups`` as one ``_pauli_range`` pass."""
    for g in range(x_masks.size):
        t0, t1 = term_starts[g], term_starts[g + 1]
        if t0 < t1:
            _pauli_range(state, pivots[g], x_masks[g], z_masks[t0:t1], use_imag[t0:t1],
                         out[t0:t1], 0, state.size >> 1)


@njit(**_SERIAL)
def _pauli_sign_tables(z_masks):
    """``tables[t, lo] = (-1)**popcount(lo & z_masks[t])`` over the lowest PAULI_LANE_QUBITS bits."""
    lanes = 1 << PAULI_LANE_QUBITS
    tables = np.empty((z_masks.size, lanes), dtype=np.float64)
    for t in range(z_masks.size):
        for lo in range(lanes):
            tables[t, lo] = 1.0 - 2.0 * _parity(lo & z_masks[t])
    return tables


@njit(**_VECTOR)
def _pauli_groups_range(state, x_masks, split_bits, term_starts, z_masks, use_imag, tables,
                        copies_used, out, start, stop):
    """Add every term's pair sum (``layout.pauli_pairing``) over the chunks ``start .. stop``
    of 2**PAULI_CHUNK_QUBITS amplitudes into ``out``, times 1/2 where noted below.

    Chunk ``c`` is copied once, as float64 real and imaginary rows: copy ``j`` holds amplitude
    ``m ^ j`` at ``m``, for the ``j`` (below 2**PAULI_RUN_QUBITS) in ``copies_used``. Then each
    group reads it. With ``x`` the group's X-mask, ``h = x >> PAULI_CHUNK_QUBITS`` and
    ``xl`` its low bits, the pair of ``i0 = c*chunk + m0`` is ``i1 = (c ^ h)*chunk + m1``,
    ``m1 = m0 ^ xl``: the loop runs over ``m1`` in the partner chunk, reading ``a0`` from copy
    ``xl % run`` at ``m1 ^ xl`` rounded down to its run, so both sides are contiguous runs.

    - ``h != 0``: only the chunks with bit ``split_bits[g]`` (the highest of ``h``) clear
      hold an ``i0``; each pair is summed once.
    - ``h == 0``: the partner chunk is ``c`` itself and every index is summed: each pair
      twice unless ``x == 0``, so those sums count 1/2.

    ``s(i0) = s(c*chunk ^ xl) * s(block) * tables[t, m1 % lanes]`` with ``s(v)`` the sign of
    ``v & z``: the chunk, block and lane parts of ``i0 & z``.
    """
    chunk_qubits = PAULI_CHUNK_QUBITS
    chunk = 1 << chunk_qubits
    run = 1 << PAULI_RUN_QUBITS
    lanes = 1 << PAULI_LANE_QUBITS
    low_mask = chunk - 1
    run_mask = run - 1
    own_re = np.empty((run, chunk), dtype=np.float64)
    own_im = np.empty((run, chunk), dtype=np.float64)
    pair_re = np.empty(chunk, dtype=np.float64)  # Re(conj(a1) * a0) by m1
    pair_im = np.empty(chunk, dtype=np.float64)  # Im(conj(a1) * a0) by m1
    for c in range(start, stop):
        chunk_base = c << chunk_qubits
        mine = state[chunk_base:chunk_base + chunk]
        for j in range(run):
            if copies_used[j]:
                for m in range(chunk):
                    a = mine[m ^ j]
                    own_re[j, m] = a.real
                    own_im[j, m] = a.imag
        for g in range(x_masks.size):
            t0, t1 = term_starts[g], term_starts[g + 1]
            x = x_masks[g]
            high = x >> chunk_qubits
            if t0 == t1 or (c & split_bits[g]) != 0:
                continue
            weight = 1.0 if high != 0 or x == 0 else 0.5
            partner_base = (c ^ high) << chunk_qubits
            partner = state[partner_base:partner_base + chunk]
            x_low = x & low_mask
            re0 = own_re[x_low & run_mask]
            im0 = own_im[x_low & run_mask]
            x_runs = x_low & ~run_mask
            need_im = 0
            for t in range(t0, t1):
                need_im += use_imag[t]
            if need_im < t1 - t0:
                for r in range(0, chunk, run):
                    o = r ^ x_runs
                    for l in range(run):
                        a1 = partner[r + l]
                        pair_re[r + l] = (np.float64(a1.real) * re0[o + l]
                                          + np.float64(a1.imag) * im0[o + l])
            if need_im:
                for r in range(0, chunk, run):
                    o = r ^ x_runs
                    for l in range(run):
                        a1 = partner[r + l]
                        pair_im[r + l] = (np.float64(a1.real) * im0[o + l]
                                          - np.float64(a1.imag) * re0[o + l])
            for t in range(t0, t1):
                z = z_masks[t]
                pairs = pair_im if use_imag[t] else pair_re
                signs = tables[t]
                total = 0.0
                for block in range(0, chunk, lanes):
                    dot = 0.0
                    for lo in range(lanes):
                        dot += signs[lo] * pairs[block + lo]
                    total += (1.0 - 2.0 * _parity(block & z)) * dot
                out[t] += weight * (1.0 - 2.0 * _parity((chunk_base | x_low) & z)) * total


@njit(**_SERIAL)
def _marginal_range(state, qubits, run_qubits, block_qubits, low_bins, out, start, stop):
    """Add |amplitude|**2 into ``out[m]``, ``m`` spelled by the amplitude's bits at ``qubits``.

    Work item ``r`` is the run of ``2**run_qubits`` amplitudes from ``r << run_qubits``, cut
    into blocks of ``2**block_qubits`` that each fall in one bin (no measured qubit is below
    ``block_qubits``). A block's bin is ``high | low_bins[b]``: ``high`` spelled once per run by
    the qubits at or above ``run_qubits``, ``low_bins[b]`` by those below for block ``b``. A
    block is summed in a local total first: a chain ``out[m] += p`` per amplitude costs
    twice the read.
    """
    k = qubits.size
    block = 1 << block_qubits
    for r in range(start, stop):
        first = r << run_qubits
        high = 0
        for j in range(k):
            high |= ((first >> qubits[j]) & 1) << j
        for b in range(low_bins.size):
            begin = first + (b << block_qubits)
            total = 0.0
            for i in range(begin, begin + block):
                a = state[i]
                re, im = np.float64(a.real), np.float64(a.imag)
                total += re * re + im * im
            out[high | low_bins[b]] += total


@njit(**_SERIAL)
def _project_range(state, qubit, outcome, scale, to_zero, start, stop):
    """Keep the half with ``qubit == outcome`` scaled by ``scale``; zero the other half.

    With ``to_zero`` the kept half is moved to ``qubit == 0`` (a reset).
    """
    stride = 1 << qubit
    low_mask = stride - 1
    for g in range(start, stop):
        i0 = ((g >> qubit) << (qubit + 1)) | (g & low_mask)
        i1 = i0 | stride
        if outcome == 0:
            state[i0] = state[i0] * scale
            state[i1] = 0
        elif to_zero:
            state[i0] = state[i1] * scale
            state[i1] = 0
        else:
            state[i0] = 0
            state[i1] = state[i1] * scale


@njit(**_SERIAL)
def _block_probability_range(state, block_size, out, start, stop):
    for b in range(start, stop):
        total = 0.0
        for i in range(b * block_size, (b + 1) * block_size):
            a = state[i]
            total += a.real * a.real + a.imag * a.imag
        out[b] = total


@njit(**_SERIAL)
def _sample_blocks_range(state, block_size, block_starts, targets, first_target, out, start, stop):
    """Find, for each sorted target, the amplitude where the running probability passes it.

    Block ``b`` owns the targets ``first_target[b] .. first_target[b + 1]`` and starts its
    running sum at ``block_starts[b]``, so blocks are independent of each other.
    """
    for b in range(start, stop):
        t = first_target[b]
        t_stop = first_target[b + 1]
        if t == t_stop:
            continue
        running = block_starts[b]
        i = b * block_size
        last = (b + 1) * block_size - 1
        a = state[i]
        p = a.real * a.real + a.imag * a.imag
        last_nonzero = -1
        while t < t_stop:
            while running + p <= targets[t] and i < last:
                if p > 0:
                    last_nonzero = i
                running += p
                i += 1
                a = state[i]
                p = a.real * a.real + a.imag * a.imag
            # Rounding can carry a target just past the block's last non-zero amplitude.
            out[t] = i if p > 0 or last_nonzero < 0 else last_nonzero
            t += 1


# Parallel twins of the ``_*_range`` kernels: the range split into ``chunks`` run in prange.
# Written out one by one because Numba's disk cache keys a function by its name and line: a
# factory making them as closures would give them one key and they would evict each other.


@njit(**_PARALLEL)
def _matrix1_chunks(items, chunks, state, qubit, m00, m01, m10, m11):
    per_chunk = (items + chunks - 1) // chunks
    for c in prange(chunks):
        start = c * per_chunk
        _matrix1_range(state, qubit, m00, m01, m10, m11, start, min(items, start + per_chunk))


@njit(**_PARALLEL)
def _matrix2_chunks(items, chunks, state, q_low, q_high, offset1, offset2, matrix):
    per_chunk = (items + chunks - 1) // chunks
    for c in prange(chunks):
        start = c * per_chunk
        _matrix2_range(state, q_low, q_high, offset1, offset2, matrix, start,
                       min(items, start + per_chunk))


@njit(**_PARALLEL)
def _matrix_chunks(items, chunks, state, sorted_qubits, offsets, matrix):
    per_chunk = (items + chunks - 1) // chunks
    for c in prange(chunks):
        start = c * per_chunk
        _matrix_range(state, sorted_qubits, offsets, matrix, start, min(items, start + per_chunk))


@njit(**_PARALLEL)
def _controlled_matrix1_chunks(items, chunks, state, sorted_qubits, control_bits, stride,
                               m00, m01, m10, m11):
    per_chunk = (items + chunks - 1) // chunks
    for c in prange(chunks):
        start = c * per_chunk
        _controlled_matrix1_range(state, sorted_qubits, control_bits, stride, m00, m01, m10, m11,
                                  start, min(items, start + per_chunk))


@njit(**_PARALLEL)
def _permutation_chunks(items, chunks, state, sorted_qubits, offsets, permutation, phases):
    per_chunk = (items + chunks - 1) // chunks
    for c in prange(chunks):
        start = c * per_chunk
        _permutation_range(state, sorted_qubits, offsets, permutation, phases, start,
                           min(items, start + per_chunk))


@njit(**_PARALLEL)
def _prepare_chunks(items, chunks, state, sorted_qubits, offsets, amplitudes):
    per_chunk = (items + chunks - 1) // chunks
    for c in prange(chunks):
        start = c * per_chunk
        _prepare_range(state, sorted_qubits, offsets, amplitudes, start,
                       min(items, start + per_chunk))


@njit(**_PARALLEL)
def _diagonal_chunks(items, chunks, state, qubits, diagonal):
    per_chunk = (items + chunks - 1) // chunks
    for c in prange(chunks):
        start = c * per_chunk
        _diagonal_range(state, qubits, diagonal, start, min(items, start + per_chunk))


@njit(**_PARALLEL)
def _project_chunks(items, chunks, state, qubit, outcome, scale, to_zero):
    per_chunk = (items + chunks - 1) // chunks
    for c in prange(chunks):
        start = c * per_chunk
        _project_range(state, qubit, outcome, scale, to_zero, start, min(items, start + per_chunk))


@njit(**_PARALLEL)
def _block_probability_chunks(items, chunks, state, block_size, out):
    per_chunk = (items + chunks - 1) // chunks
    for c in prange(chunks):
        start = c * per_chunk
        _block_probability_range(state, block_size, out, start, min(items, start + per_chunk))


@njit(**_PARALLEL)
def _sample_blocks_chunks(items, chunks, state, block_size, block_starts, targets,
                          first_target, out):
    per_chunk = (items + chunks - 1) // chunks
    for c in prange(chunks):
        start = c * per_chunk
        _sample_blocks_range(state, block_size, block_starts, targets, first_target, out, start,
                             min(items, start + per_chunk))


@njit(**_PARALLEL)
def _probability_one_chunks(items, chunks, state, qubit):
    per_chunk = (items + chunks - 1) // chunks
    total = 0.0
    for c in prange(chunks):
        start = c * per_chunk
        stop = min(items, start + per_chunk)
        total += _probability_one_range(state, qubit, start, stop)
    return total


@njit(**_PARALLEL)
def _pauli_groups_chunks(items, chunks, state, x_masks, split_bits, term_starts, z_masks,
                         use_imag, tables, copies_used, out):
    per_chunk = (items + chunks - 1) // chunks
    partial = np.zeros((chunks, out.size), dtype=np.float64)
    for c in prange(chunks):
        start = c * per_chunk
        _pauli_groups_range(state, x_masks, split_bits, term_starts, z_masks, use_imag, tables,
                            copies_used, partial[c], start, min(items, start + per_chunk))
    for t in range(out.size):
        for c in range(chunks):
            out[t] += partial[c, t]


@njit(**_PARALLEL)
def _marginal_chunks(items, chunks, state, qubits, run_qubits, block_qubits, low_bins, out):
    """Each chunk fills its own histogram, then the histograms are summed bin by bin. Fewer
    chunks when the histograms would hold more values than the state has amplitudes."""
    chunks = max(1, min(chunks, state.size // out.size))
    per_chunk = (items + chunks - 1) // chunks
    partial = np.zeros((chunks, out.size), dtype=np.float64)
    for c in prange(chunks):
        start = c * per_chunk
        _marginal_range(state, qubits, run_qubits, block_qubits, low_bins, partial[c], start,
                        min(items, start + per_chunk))
    for m in prange(out.size):
        total = 0.0
        for c in range(chunks):
            total += partial[c, m]
        out[m] += total


def _run(range_kernel, chunk_kernel, items: int, state: np.ndarray, *args):
    """Run a kernel over ``items`` work items, in parallel when the state is large."""
    if state.size >= (1 << PARALLEL_MIN_QUBITS):
        chunks = max(1, min(items, numba.get_num_threads() * CHUNKS_PER_THREAD))
        with _PARALLEL_LOCK or nullcontext():
            return chunk_kernel(items, chunks, state, *args)
    return range_kernel(state, *args, 0, items)



# --- the operation set (the same names and signatures on every device) ------------------------


def allocate(num_qubits: int, dtype: np.dtype) -> np.ndarray:
    """A new state |0...0> of ``num_qubits`` qubits."""
    state = np.zeros(1 << num_qubits, dtype=dtype)
    state[0] = 1
    return state


def reset_all(state: np.ndarray) -> None:
    """Set the state to |0...0>."""
    state.fill(0)
    state[0] = 1


def clone(state: np.ndarray) -> np.ndarray:
    """An independent copy of the state."""
    return state.copy()


def copy_into(destination: np.ndarray, source: np.ndarray) -> None:
    """Overwrite ``destination`` with ``source`` (same shape and dtype)."""
    np.copyto(destination, source)


def to_host(state: np.ndarray) -> np.ndarray:
    """A host (NumPy) copy of the state."""
    return state.copy()


def apply_matrix(state: np.ndarray, qubits: np.ndarray, matrix: np.ndarray) -> None:
    """Apply a dense ``2**k x 2**k`` matrix to ``qubits`` (int64, argument order)."""
    groups = state.size >> qubits.size
    if qubits.size == 1:
        m = matrix
        _run(_matrix1_range, _matrix1_chunks, groups, state, int(qubits[0]),
             m[0, 0], m[0, 1], m[1, 0], m[1, 1])
        return
    if qubits.size == 2:
        q0, q1 = int(qubits[0]), int(qubits[1])
        _run(_matrix2_range, _matrix2_chunks, groups, state, min(q0, q1), max(q0, q1),
             1 << q0, 1 << q1, matrix)
        return
    sorted_qubits = np.sort(qubits)
    _run(_matrix_range, _matrix_chunks, groups, state, sorted_qubits, basis_offsets(qubits), matrix)


def apply_controlled_matrix(
    state: np.ndarray, controls: np.ndarray, control_state: int, targets: np.ndarray,
    matrix: np.ndarray,
) -> None:
    """Apply a dense ``2**k x 2**k`` matrix to ``targets`` (int64, argument order) on the
    amplitudes whose ``controls`` (int64) read ``control_state``: bit ``j`` of it is the
    wanted value of ``controls[j]``. The others are left unchanged.

    Raises:
        ValueError: a qubit is named twice, or ``control_state`` does not fit the controls.
    """
    sorted_qubits, offsets, control_bits = controlled_layout(controls, control_state, targets)
    if controls.size == 0:
        apply_matrix(state, targets, matrix)
        return
    groups = state.size >> sorted_qubits.size
    if targets.size == 1:
        m = matrix
        _run(_controlled_matrix1_range, _controlled_matrix1_chunks, groups, state, sorted_qubits,
             np.int64(control_bits), np.int64(1 << int(targets[0])),
             m[0, 0], m[0, 1], m[1, 0], m[1, 1])
        return
    _run(_matrix_range, _matrix_chunks, groups, state, sorted_qubits, offsets, matrix)


def apply_tile_pass(state: np.ndarray, chunk_qubits: np.ndarray, run_length: int,
                    run_offsets: np.ndarray, run_starts: np.ndarray, run_positions: np.ndarray,
                    table: np.ndarray, ints: np.ndarray, data: np.ndarray) -> None:
    """Apply a tile pass (format and arguments: :mod:`gpuprovider.kernels.tiles`) in one read
    and one write of the state."""
    from . import cpu_tiles  # it builds on this module's kernels

    chunks = state.size >> chunk_qubits.size
    _run(cpu_tiles._tile_pass_range, cpu_tiles._tile_pass_chunks, chunks, state, chunk_qubits,
         run_length, run_offsets, run_starts, run_positions, table, ints, data)

def apply_permutation(
    state: np.ndarray, qubits: np.ndarray, permutation: np.ndarray, phases: np.ndarray
) -> None:
    """Apply the matrix whose row ``r`` is ``phases[r]`` at column ``permutation[r]``."""
    if qubits.size <= 2:  # the unrolled dense kernels beat the generic gather here
        apply_matrix(state, qubits, permutation_matrix(permutation, phases))
        return
    groups = state.size >> qubits.size
    sorted_qubits = np.sort(qubits)
    _run(_permutation_range, _permutation_chunks, groups, state, sorted_qubits,
         basis_offsets(qubits), permutation, phases)


def prepare_qubits(state: np.ndarray, qubits: np.ndarray, amplitudes: np.ndarray) -> None:
    """Put ``qubits`` (int64, argument order), which must be |0>, into ``amplitudes``."""
    groups = state.size >> qubits.size
    _run(_prepare_range, _prepare_chunks, groups, state, np.sort(qubits), basis_offsets(qubits),
         amplitudes)


def apply_diagonal(state: np.ndarray, qubits: np.ndarray, diagonal: np.ndarray) -> None:
    """Multiply each amplitude by ``diagonal[m]``, ``m`` spelled by its bits at ``qubits``."""
    _run(_diagonal_range, _diagonal_chunks, state.size, state, qubits, diagonal)


def probability_of_one(state: np.ndarray, qubit: int) -> float:
    """Probability that measuring ``qubit`` gives 1."""
    return float(_run(_probability_one_range, _probability_one_chunks, state.size >> 1,
                      state, qubit))


def expectation_pauli(state: np.ndarray, x_mask: int, z_mask: int) -> complex:
    """``<psi| P |psi>`` of the Pauli string with X on the qubits only in ``x_mask``, Z on
    those only in ``z_mask`` and Y on those in both; no overall phase, so the value is real
    (convention and evaluation: :func:`~gpuprovider.kernels.layout.pauli_pairing`).

    Summed in float64 in either precision (:func:`expectation_pauli_groups` of one term).

    Raises:
        ValueError: a mask names a qubit the state does not have.
    """
    return complex(expectation_paulis(state, x_mask, np.array([z_mask]))[0])


def expectation_paulis(state: np.ndarray, x_mask: int, z_masks: np.ndarray) -> np.ndarray:
    """:func:`expectation_pauli` of every Pauli ``(x_mask, z_masks[t])``, as float64
    (:func:`expectation_pauli_groups` of one group).

    Raises:
        ValueError: a mask names a qubit the state does not have.
    """
    z_masks = np.asarray(z_masks, dtype=np.int64)
    return expectation_pauli_groups(state, np.array([x_mask], dtype=np.int64),
                                    np.array([0, z_masks.size], dtype=np.int64), z_masks)


def expectation_pauli_groups(state: np.ndarray, x_masks: np.ndarray, term_starts: np.ndarray,
                             z_masks: np.ndarray) -> np.ndarray:
    """``<psi| P_t |psi>`` of every term ``t`` of a grouped Pauli list, as float64, shape (T,).

    Group ``g`` has the X-mask ``x_masks[g]`` (int64, shape (G,)) and owns the terms
    ``term_starts[g] <= t < term_starts[g + 1]`` (int64, shape (G + 1,)); term ``t`` is the
    Pauli ``(x_masks[g], z_masks[t])`` (int64, shape (T,)) in the convention of
    :func:`~gpuprovider.kernels.layout.pauli_pairing`: ``i**popcount(x & z) X^x Z^z``,
    Hermitian, so the value is real. Summed in float64 in either precision.

    States of PAULI_CHUNK_QUBITS qubits or more are read chunk by chunk, each chunk once for
    all groups while it sits in L2 (pair partners in other chunks come from L3 or memory); see
    ``_pauli_groups_range``.

    Raises:
        ValueError: a mask names a qubit the state does not have, or ``term_starts`` does not
            cut ``z_masks`` into ``x_masks.size`` groups (checked before any work).
    """
    x_masks = np.ascontiguousarray(x_masks, dtype=np.int64)
    term_starts = np.ascontiguousarray(term_starts, dtype=np.int64)
    z_masks = np.ascontiguousarray(z_masks, dtype=np.int64)
    num_qubits = state.size.bit_length() - 1
    pivots, use_imag, scales = pauli_groups_layout(x_masks, term_starts, z_masks, num_qubits)
    totals = np.zeros(z_masks.size, dtype=np.float64)
    if z_masks.size == 0:
        return totals
    if num_qubits < PAULI_CHUNK_QUBITS:
        _pauli_groups_small(state, x_masks, pivots, term_starts, z_masks, use_imag, totals)
        return totals * scales
    high = x_masks >> PAULI_CHUNK_QUBITS
    split_bits = np.where(high != 0, 1 << np.maximum(pivots - PAULI_CHUNK_QUBITS, 0), 0)
    copies_used = np.zeros(1 << PAULI_RUN_QUBITS, dtype=np.bool_)
    copies_used[x_masks[np.diff(term_starts) > 0] & ((1 << PAULI_RUN_QUBITS) - 1)] = True
    _run(_pauli_groups_range, _pauli_groups_chunks, state.size >> PAULI_CHUNK_QUBITS, state,
         x_masks, split_bits, term_starts, z_masks, use_imag, _pauli_sign_tables(z_masks),
         copies_used, totals)
    return totals * scales


def marginal_probabilities(state: np.ndarray, qubits: np.ndarray) -> np.ndarray:
    """Probabilities of the outcomes of measuring ``qubits`` (int64), as float64: entry ``m``
    is the probability that ``qubits[j]`` reads bit ``j`` of ``m`` for every ``j``.

    One pass over the state. In parallel each chunk fills its own histogram, with fewer chunks
    when those would hold more values than the state has amplitudes.
    """
    run_qubits = min(MARGINAL_RUN_QUBITS, state.size.bit_length() - 1)
    block_qubits = min([run_qubits, *qubits.tolist()])
    block_starts = np.arange(1 << (run_qubits - block_qubits), dtype=np.int64) << block_qubits
    low_bins = np.zeros_like(block_starts)
    for j, q in enumerate(qubits.tolist()):
        if q < run_qubits:
            low_bins |= ((block_starts >> q) & 1) << j
    out = np.zeros(1 << qubits.size, dtype=np.float64)
    _run(_marginal_range, _marginal_chunks, state.size >> run_qubits, state, qubits,
         np.int64(run_qubits), np.int64(block_qubits), low_bins, out)
    return out


def project(state: np.ndarray, qubit: int, outcome: int, probability: float,
            to_zero: bool = False) -> None:
    """Collapse ``qubit`` onto ``outcome`` (seen with ``probability``) and renormalise.

    With ``to_zero`` the qubit is then flipped to 0, which together is a reset.
    """
    scale = state.dtype.type(1.0 / np.sqrt(probability))
    _run(_project_range, _project_chunks, state.size >> 1, state, qubit, outcome, scale,
         to_zero)


def sample(state: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """Basis indices drawn from |amplitude|**2, one per uniform in [0, 1), in sorted order.

    One read of the state: probabilities are summed per block, the sorted targets are split
    between blocks by a prefix sum, and each block scans only itself.
    """
    block_size = min(state.size, 1 << SAMPLE_BLOCK_QUBITS)
    blocks = state.size // block_size
    block_totals = np.empty(blocks, dtype=np.float64)
    _run(_block_probability_range, _block_probability_chunks, blocks, state, block_size,
         block_totals)
    block_starts = np.concatenate(([0.0], np.cumsum(block_totals)))
    targets = np.sort(uniforms) * block_starts[-1]
    first_target = np.searchsorted(targets, block_starts, side="left").astype(np.int64)
    first_target[-1] = targets.size
    out = np.empty(targets.size, dtype=np.int64)
    _run(_sample_blocks_range, _sample_blocks_chunks, blocks, state, block_size,
         block_starts, targets, first_target, out)
    return out


def probabilities(state: np.ndarray) -> np.ndarray:
    """|amplitude|**2 of every basis state, as float64."""
    return np.abs(state) ** 2


def synchronize(state: np.ndarray) -> None:
    """Wait until every operation enqueued on the state has finished (immediate on the CPU)."""


def release(state: np.ndarray) -> None:
    """Give the state's memory back (on the CPU the garbage collector does it)."""
