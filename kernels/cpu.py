"""CPU statevector kernels, compiled by Numba: the :class:`~gpuprovider.kernels.interface.KernelSet`
of the CPU, whose limits and planner facts are :data:`POLICY`.

Each operation's work is a serial loop over a range of work items (``_*_range``), whose
per-item updates are the shared bodies of :mod:`gpuprovider.kernels.updates`. The drivers that
run a range, serially on the calling thread for small states (a thread-pool launch would cost
more than the pass) or split into chunks in parallel for large ones, are generated from one
table into ``kernels/cpu_parallel.py`` (:mod:`gpuprovider.kernels.drivers`): they release the
GIL (``nogil=True``) and are cached on disk (``cache=True``), so a second process starts
without JIT. The range loops themselves are not cached: the drivers compile them in, and the
generated file's header hashes this file and the bodies, so editing either changes the drivers'
file and so invalidates their disk cache.

Index convention (Qiskit's little-endian): amplitude ``i`` has qubit ``q`` in bit ``q`` of
``i``; for a gate on qubits ``(q_0, ..., q_{k-1})`` in argument order, row/column ``m`` of its
matrix sets bit ``q_j`` of the amplitude index to bit ``j`` of ``m``.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from functools import cache
from typing import Any

import numba
import numpy as np
from numba import njit

from . import updates
from .host_states import (  # noqa: F401 - the KernelSet's state operations
    allocate,
    clone,
    copy_from_host,
    copy_into,
    from_host,
    new_stream,
    record_marker,
    release,
    reset_all,
    stream_metadata,
    synchronize,
    to_host,
)
from .layout import (
    basis_offsets,
    controlled_layout,
    pauli_groups_layout,
    permutation_matrix,
)
from .policy import CPU_POLICY
from .tiles import TilePass


OMP_WAIT_POLICY = "passive"
"""OpenMP's threads sleep between parallel kernels unless the user's environment says
otherwise. Spinning ("active", libgomp's default) costs a core that other processes need: on
the 2-core development machine under other processes' load (2026-12-02, load 3-5), a
200-term read-out of a 16-qubit state took 21-23 ms on two spinning threads and 3.6 ms on two
passive ones (one thread: 3.7-5.5 ms), and a 20-qubit QV 0.99-1.09 s against 0.66-0.77 s."""


def _choose_threading_layer() -> threading.Lock | None:
    """Ask Numba for a threadsafe layer (OpenMP or TBB) when one loads, else workqueue.

    Returns the lock parallel kernels must hold: workqueue aborts the process when two
    threads run parallel kernels at once, so with it concurrent jobs take turns.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", OMP_WAIT_POLICY)  # read when libgomp loads
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

POLICY = CPU_POLICY
"""This device's limits and planner facts."""
CHUNKS_PER_THREAD = 4
SAMPLE_BLOCK_QUBITS = 12
"""Sampling sums probabilities in blocks of 2**SAMPLE_BLOCK_QUBITS amplitudes."""
MARGINAL_RUN_QUBITS = 10
"""Marginal probabilities work in runs of 2**MARGINAL_RUN_QUBITS amplitudes, whose bins'
bits from the qubits below that are looked up in a table made once per call."""
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

_SERIAL = {"nogil": True, "cache": True}
"""Kernels called directly (they call no body of ``updates``, so this file's cache key covers
them)."""
_VECTOR = {**_SERIAL, "fastmath": True}
"""Loops whose float sums may be reordered, so that they vectorise."""
_LOOP = {"nogil": True}
"""Range loops, reached only through the generated, cached drivers."""
_LOOP_VECTOR = {**_LOOP, "fastmath": True}

bodies = updates.compiled(njit(inline="always"))
"""The shared bodies, inlined into the CPU's loops."""


@njit(**_LOOP)
def _matrix1_range(state, qubit, m00, m01, m10, m11, start, stop):
    stride = 1 << qubit
    for g in range(start, stop):
        i0 = bodies.insert_zero_bit(g, qubit)
        bodies.update_pair(state, i0, i0 | stride, m00, m01, m10, m11)


@njit(**_LOOP)
def _matrix2_range(state, q_low, q_high, offset1, offset2, matrix, start, stop):
    """Two-qubit matrix (flat, row-major); ``offset1``/``offset2`` are the strides of argument
    qubits 0 and 1."""
    for g in range(start, stop):
        i0 = bodies.insert_zero_bit(bodies.insert_zero_bit(g, q_low), q_high)
        i1 = i0 + offset1
        i2 = i0 + offset2
        bodies.update_quad(state, i0, i1, i2, i1 + offset2, matrix, 0)


@njit(**_LOOP)
def _matrix_range(state, sorted_qubits, offsets, matrix, start, stop):
    """A dense matrix (flat, row-major) on ``offsets.size`` amplitudes per work item."""
    gathered = np.empty(offsets.size, dtype=state.dtype)
    for g in range(start, stop):
        base = bodies.insert_zero_bits(g, sorted_qubits)
        bodies.gather_update(state, base, offsets, matrix, 0, gathered)


@njit(**_LOOP)
def _controlled_matrix1_range(state, sorted_qubits, control_bits, stride, m00, m01, m10, m11,
                              start, stop):
    """One-target matrix where the controls read ``control_bits``: ``sorted_qubits`` are the
    controls and the target, ``stride`` is the target's bit."""
    for g in range(start, stop):
        i0 = bodies.insert_zero_bits(g, sorted_qubits) | control_bits
        bodies.update_pair(state, i0, i0 | stride, m00, m01, m10, m11)


@njit(**_LOOP)
def _permutation_range(state, sorted_qubits, offsets, permutation, phases, start, stop):
    gathered = np.empty(offsets.size, dtype=state.dtype)
    for g in range(start, stop):
        base = bodies.insert_zero_bits(g, sorted_qubits)
        bodies.permute_update(state, base, offsets, permutation, phases, gathered)


@njit(**_LOOP)
def _prepare_range(state, sorted_qubits, offsets, amplitudes, start, stop):
    """Spread each amplitude with ``qubits`` all 0 over their ``amplitudes`` (offsets[0] is 0)."""
    for g in range(start, stop):
        bodies.prepare_update(state, bodies.insert_zero_bits(g, sorted_qubits), offsets,
                              amplitudes)


@njit(**_LOOP)
def _diagonal_range(state, qubits, diagonal, start, stop):
    for i in range(start, stop):
        state[i] *= diagonal[bodies.spelled_index(i, qubits)]


@njit(**_LOOP)
def _probability_one_range(state, qubit, start, stop):
    total = 0.0
    stride = 1 << qubit
    for g in range(start, stop):
        total += bodies.squared_magnitude(state[bodies.insert_zero_bit(g, qubit) | stride])
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
    the Pauli ``(x_mask, z_masks[t])``, in float64: every term of one X-mask in one pass.
    Its twin is ``cuda._pauli_groups`` (which sums a slice of terms per GPU thread)."""
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
    """``tables[t, lo] = (-1)**popcount(lo & z_masks[t])`` over the lowest PAULI_LANE_QUBITS
    bits."""
    lanes = 1 << PAULI_LANE_QUBITS
    tables = np.empty((z_masks.size, lanes), dtype=np.float64)
    for t in range(z_masks.size):
        for lo in range(lanes):
            tables[t, lo] = 1.0 - 2.0 * _parity(lo & z_masks[t])
    return tables


@njit(inline="always")
def _pair_product(a1, re0, im0, imag):
    """``Im(conj(a1) * a0)`` if ``imag`` else ``Re(conj(a1) * a0)``, in float64."""
    if imag:
        return np.float64(a1.real) * im0 - np.float64(a1.imag) * re0
    return np.float64(a1.real) * re0 + np.float64(a1.imag) * im0


@njit(**_LOOP_VECTOR)
def _pauli_groups_range(state, run, x_masks, split_bits, term_starts, z_masks, use_imag, tables,
                        copies_used, out, start, stop):
    """Add every term's pair sum (``layout.pauli_pairing``) over the chunks ``start .. stop``
    of 2**PAULI_CHUNK_QUBITS amplitudes into ``out``, times 1/2 where noted below.

    Chunk ``c`` is copied once, as float64 real and imaginary rows: copy ``j`` holds amplitude
    ``m ^ j`` at ``m``, for the ``j`` (below ``run`` = 2**PAULI_RUN_QUBITS) in
    ``copies_used``. Then each group reads it. With ``x`` the group's X-mask,
    ``h = x >> PAULI_CHUNK_QUBITS`` and ``xl`` its low bits, the pair of ``i0 = c*chunk + m0``
    is ``i1 = (c ^ h)*chunk + m1``, ``m1 = m0 ^ xl``: the loop runs over ``m1`` in the partner
    chunk, reading ``a0`` from copy ``xl % run`` at ``m1 ^ xl`` rounded down to its run, so
    both sides are contiguous runs.

    - ``h != 0``: only the chunks with bit ``split_bits[g]`` (the highest of ``h``) clear
      hold an ``i0``; each pair is summed once.
    - ``h == 0``: the partner chunk is ``c`` itself and every index is summed: each pair
      twice unless ``x == 0``, so those sums count 1/2.

    ``s(i0) = s(c*chunk ^ xl) * s(block) * tables[t, m1 % lanes]`` with ``s(v)`` the sign of
    ``v & z``: the chunk, block and lane parts of ``i0 & z``.

    ``run`` is an argument, not a constant, and the run loops index with unsigned offsets:
    LLVM fully unrolls a loop of a constant 16 trips into scalar code, and keeps Numba's
    negative-index check on a signed ``base + l`` (each 2-3x slower, measured 2026-12-02).

    The pair loops run in spans of ``span`` amplitudes, the lowest set bit of
    ``xl``'s run bits (or a whole lane block when they are 0): ``m ^ xl`` keeps a span
    contiguous, and LLVM's wide loop (8 lanes x 4 accumulators, AVX-512) needs 32 trips, where
    a run of 16 took its 4-lane remainder loop. Each span's sum starts from 0.0 and is then
    added, so the spans' multiply-adds do not wait for each other (1.1-1.3x at 16-20 qubits on
    the development machine, 2026-12-03). A group of several terms stores its pair products
    span by span, then sums each term's over whole lane blocks.
    """
    chunk_qubits = PAULI_CHUNK_QUBITS
    chunk = 1 << chunk_qubits
    lanes = 1 << PAULI_LANE_QUBITS
    low_mask = chunk - 1
    run_mask = run - 1
    own_re = np.empty((run, chunk), dtype=np.float64)
    own_im = np.empty((run, chunk), dtype=np.float64)
    pair = np.empty(chunk, dtype=np.float64)  # by m1, for groups of several terms
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
            span = min(x_runs & -x_runs, lanes) if x_runs else lanes  # a multiple of run
            for t in range(t0, t1):
                z = z_masks[t]
                signs = tables[t]
                imag = use_imag[t]
                fused = t1 - t0 == 1  # else one pair loop per kind for all the group's terms
                if not fused and (t == t0 or imag != use_imag[t - 1]):
                    for r in range(0, chunk, span):
                        p1 = np.uint64(r)
                        p0 = np.uint64(r ^ x_runs)
                        for l in range(span):
                            u = np.uint64(l)
                            pair[p1 + u] = _pair_product(partner[p1 + u], re0[p0 + u],
                                                         im0[p0 + u], imag)
                total = 0.0
                for block in range(0, chunk, lanes):
                    dot = 0.0
                    if fused:
                        for r in range(block, block + lanes, span):
                            p1 = np.uint64(r)
                            p0 = np.uint64(r ^ x_runs)
                            s = np.uint64(r - block)
                            part = 0.0  # a sum of its own: no chain of adds from run to run
                            for l in range(span):
                                u = np.uint64(l)
                                part += signs[s + u] * _pair_product(partner[p1 + u], re0[p0 + u],
                                                                     im0[p0 + u], imag)
                            dot += part
                    else:
                        b = np.uint64(block)
                        for lo in range(lanes):
                            u = np.uint64(lo)
                            dot += signs[u] * pair[b + u]
                    total += (1.0 - 2.0 * _parity(block & z)) * dot
                out[t] += weight * (1.0 - 2.0 * _parity((chunk_base | x_low) & z)) * total


@njit(**_LOOP)
def _marginal_range(state, qubits, run_qubits, block_qubits, low_bins, out, start, stop):
    """Add |amplitude|**2 into ``out[m]``, ``m`` spelled by the amplitude's bits at ``qubits``.

    Work item ``r`` is the run of ``2**run_qubits`` amplitudes from ``r << run_qubits``, cut
    into blocks of ``2**block_qubits`` that each fall in one bin (no measured qubit is below
    ``block_qubits``). A block's bin is ``high | low_bins[b]``: ``high`` spelled once per run by
    the qubits at or above ``run_qubits``, ``low_bins[b]`` by those below for block ``b``. A
    block is summed in a local total first: a chain ``out[m] += p`` per amplitude costs
    twice the read.
    """
    block = 1 << block_qubits
    for r in range(start, stop):
        first = r << run_qubits
        high = bodies.spelled_index(first, qubits)
        for b in range(low_bins.size):
            begin = first + (b << block_qubits)
            total = 0.0
            for i in range(begin, begin + block):
                total += bodies.squared_magnitude64(state[i])
            out[high | low_bins[b]] += total


@njit(**_LOOP)
def _project_range(state, qubit, outcome, scale, to_zero, start, stop):
    """Keep the half with ``qubit == outcome`` scaled by ``scale``; zero the other half.

    With ``to_zero`` the kept half is moved to ``qubit == 0`` (a reset).
    """
    stride = 1 << qubit
    for g in range(start, stop):
        i0 = bodies.insert_zero_bit(g, qubit)
        bodies.project_pair(state, i0, i0 | stride, outcome, scale, to_zero)


@njit(**_LOOP)
def _block_probability_range(state, block_size, out, start, stop):
    for b in range(start, stop):
        total = 0.0
        for i in range(b * block_size, (b + 1) * block_size):
            total += bodies.squared_magnitude(state[i])
        out[b] = total


@njit(**_LOOP)
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
        p = bodies.squared_magnitude(state[i])
        last_nonzero = -1
        while t < t_stop:
            while running + p <= targets[t] and i < last:
                if p > 0:
                    last_nonzero = i
                running += p
                i += 1
                p = bodies.squared_magnitude(state[i])
            # Rounding can carry a target just past the block's last non-zero amplitude.
            out[t] = i if p > 0 or last_nonzero < 0 else last_nonzero
            t += 1


@cache
def _drivers() -> dict[str, tuple[Any, Any]]:
    """The generated drivers by range name (imported on first use: they import this module's
    range loops)."""
    from . import cpu_parallel

    return cpu_parallel.DRIVERS


SIDE_BY_SIDE_MAX_QUBITS = 18
"""Runs of states from ``POLICY.parallel_min_qubits`` qubits up to this many go side by side,
one per core, rather than one after another with their kernels split over the cores: a pass
over a 16-qubit state (1 MiB in double) is too short to split well over threads. Smaller
states' runs are mostly Python, which holds the GIL, and their kernels are serial anyway;
past 18 qubits side by side gains nothing (benchmarks/RESULTS.md, 2026-12-04: a sweep 1.22x
at 13 qubits, 1.32x at 14, 1.14x at 16, 1.05x at 18, 1.02x at 20; noisy trajectories 0.85-0.9x
at 12-13 qubits, 1.5x at 14, 1.27x at 16)."""

_THIS_THREAD = threading.local()
"""``serial``: set inside :func:`one_thread`."""


def side_by_side_runs(num_qubits: int) -> int:
    """Numba's threads for states of ``POLICY.parallel_min_qubits`` to
    :data:`SIDE_BY_SIDE_MAX_QUBITS` qubits, else 1 (see
    :meth:`~gpuprovider.kernels.interface.KernelSet.side_by_side_runs`)."""
    if POLICY.parallel_min_qubits <= num_qubits <= SIDE_BY_SIDE_MAX_QUBITS:
        return numba.get_num_threads()
    return 1


@contextmanager
def one_thread() -> Iterator[None]:
    """Inside it, the calling thread runs every range loop serially."""
    before = getattr(_THIS_THREAD, "serial", False)
    _THIS_THREAD.serial = True
    try:
        yield
    finally:
        _THIS_THREAD.serial = before


def _run(name: str, items: int, state: np.ndarray, *args):
    """Run range loop ``name`` over ``items`` work items, in parallel when the state is large
    (and the thread is not inside :func:`one_thread`)."""
    serial, chunked = _drivers()[name]
    if state.size >= (1 << POLICY.parallel_min_qubits) and \
            not getattr(_THIS_THREAD, "serial", False):
        chunks = max(1, min(items, numba.get_num_threads() * CHUNKS_PER_THREAD))
        with _PARALLEL_LOCK or nullcontext():
            return chunked(items, chunks, state, *args)
    return serial(state, *args, 0, items)


# --- the operation set (interface.KernelSet) ---------------------------------------------------


def apply_matrix(state: np.ndarray, qubits: np.ndarray, matrix: np.ndarray) -> None:
    """Apply a dense ``2**k x 2**k`` matrix to ``qubits`` (int64, argument order)."""
    groups = state.size >> qubits.size
    if qubits.size == 1:
        m = matrix
        _run("matrix1", groups, state, int(qubits[0]), m[0, 0], m[0, 1], m[1, 0], m[1, 1])
        return
    flat = np.ascontiguousarray(matrix).ravel()
    if qubits.size == 2:
        q0, q1 = int(qubits[0]), int(qubits[1])
        _run("matrix2", groups, state, min(q0, q1), max(q0, q1), 1 << q0, 1 << q1, flat)
        return
    _run("matrix", groups, state, np.sort(qubits), basis_offsets(qubits), flat)


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
        _run("controlled_matrix1", groups, state, sorted_qubits, np.int64(control_bits),
             np.int64(1 << int(targets[0])), m[0, 0], m[0, 1], m[1, 0], m[1, 1])
        return
    _run("matrix", groups, state, sorted_qubits, offsets, np.ascontiguousarray(matrix).ravel())


def apply_tile_pass(state: np.ndarray, tile_pass: TilePass) -> None:
    """Apply a tile pass (format: :mod:`gpuprovider.kernels.tiles`; kernels:
    :mod:`gpuprovider.kernels.cpu_tiles`) in one read and one write of the state."""
    chunk_qubits = tile_pass.chunk_qubits
    _run("tile_pass", state.size >> chunk_qubits.size, state, chunk_qubits,
         tile_pass.run_length, tile_pass.run_offsets, tile_pass.run_starts,
         tile_pass.run_positions, np.int64(tile_pass.permuted_bits), tile_pass.table,
         tile_pass.ints, tile_pass.data)


def apply_permutation(
    state: np.ndarray, qubits: np.ndarray, permutation: np.ndarray, phases: np.ndarray
) -> None:
    """Apply the matrix whose row ``r`` is ``phases[r]`` at column ``permutation[r]``."""
    if qubits.size <= 2:  # the unrolled dense kernels beat the generic gather here
        apply_matrix(state, qubits, permutation_matrix(permutation, phases))
        return
    _run("permutation", state.size >> qubits.size, state, np.sort(qubits),
         basis_offsets(qubits), permutation, phases)


def prepare_qubits(state: np.ndarray, qubits: np.ndarray, amplitudes: np.ndarray) -> None:
    """Put ``qubits`` (int64, argument order), which must be |0>, into ``amplitudes``."""
    _run("prepare", state.size >> qubits.size, state, np.sort(qubits), basis_offsets(qubits),
         amplitudes)


def apply_diagonal(state: np.ndarray, qubits: np.ndarray, diagonal: np.ndarray) -> None:
    """Multiply each amplitude by ``diagonal[m]``, ``m`` spelled by its bits at ``qubits``."""
    _run("diagonal", state.size, state, qubits, diagonal)


def probability_of_one(state: np.ndarray, qubit: int) -> float:
    """Probability that measuring ``qubit`` gives 1."""
    return float(_run("probability_one", state.size >> 1, state, qubit))


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
    terms_per_group = np.diff(term_starts)
    group_of = np.repeat(np.arange(x_masks.size), terms_per_group)
    order = np.lexsort((use_imag, group_of))  # a group's terms by use_imag: one pair loop each
    z_masks, use_imag = z_masks[order], use_imag[order]
    split_bits = np.where(x_masks >> PAULI_CHUNK_QUBITS != 0,
                          1 << np.maximum(pivots - PAULI_CHUNK_QUBITS, 0), 0)
    run = 1 << PAULI_RUN_QUBITS
    copies_used = np.zeros(run, dtype=np.bool_)
    copies_used[x_masks[terms_per_group > 0] & (run - 1)] = True
    sorted_totals = np.zeros(z_masks.size, dtype=np.float64)
    _run("pauli_groups", state.size >> PAULI_CHUNK_QUBITS, state, run, x_masks, split_bits,
         term_starts, z_masks, use_imag, _pauli_sign_tables(z_masks), copies_used,
         sorted_totals)
    totals[order] = sorted_totals
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
    _run("marginal", state.size >> run_qubits, state, qubits,
         np.int64(run_qubits), np.int64(block_qubits), low_bins, out)
    return out


def project(state: np.ndarray, qubit: int, outcome: int, probability: float,
            to_zero: bool = False) -> None:
    """Collapse ``qubit`` onto ``outcome`` (seen with ``probability``) and renormalise.

    With ``to_zero`` the qubit is then flipped to 0, which together is a reset.
    """
    scale = state.dtype.type(1.0 / np.sqrt(probability))
    _run("project", state.size >> 1, state, qubit, outcome, scale, to_zero)


def sample(state: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """Basis indices drawn from |amplitude|**2, one per uniform in [0, 1), in sorted order.

    One read of the state: probabilities are summed per block, the sorted targets are split
    between blocks by a prefix sum, and each block scans only itself.
    """
    block_size = min(state.size, 1 << SAMPLE_BLOCK_QUBITS)
    blocks = state.size // block_size
    block_totals = np.empty(blocks, dtype=np.float64)
    _run("block_probability", blocks, state, block_size, block_totals)
    block_starts = np.concatenate(([0.0], np.cumsum(block_totals)))
    targets = np.sort(uniforms) * block_starts[-1]
    first_target = np.searchsorted(targets, block_starts, side="left").astype(np.int64)
    first_target[-1] = targets.size
    out = np.empty(targets.size, dtype=np.int64)
    _run("sample_blocks", blocks, state, block_size, block_starts, targets, first_target, out)
    return out


def probabilities(state: np.ndarray) -> np.ndarray:
    """|amplitude|**2 of every basis state, as float64."""
    return np.abs(state) ** 2
