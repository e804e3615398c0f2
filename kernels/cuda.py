"""CUDA statevector kernels (numba-cuda): the :class:`~gpuprovider.kernels.interface.KernelSet`
of an NVIDIA GPU, whose limits and planner facts are :data:`POLICY`.

A state is a :class:`CudaState`: the amplitudes in device memory and the CUDA stream (one
per job) every operation on them is enqueued on. Launches are asynchronous; only reads that
return host values (``probability_of_one``, ``sample``, ``to_host``) wait for the stream.
Kernels compile on first use (lazily, never at import) for the dtypes actually used.

Index convention as in ``cpu.py``: amplitude ``i`` has qubit ``q`` in bit ``q`` of ``i``; row
``m`` of a gate matrix on qubits ``(q_0, ..., q_{k-1})`` sets bit ``q_j`` to bit ``j`` of ``m``.
Every kernel walks its work items with a grid-stride loop, so any grid size is correct and
indices are 64-bit (states beyond 2**31 amplitudes). The per-item updates are the shared bodies
of :mod:`gpuprovider.kernels.updates`, compiled here as inlined device functions, and tile
rows are read through the decoder of :mod:`gpuprovider.kernels.tiles`.

The same code runs under Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``), which is how
machines without a GPU test it.
"""

from __future__ import annotations

import math
from collections import deque
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numba import complex64, complex128, cuda, float64, int64

from . import tiles
from .interface import Marker
from .layout import (
    basis_offsets,
    controlled_layout,
    pauli_groups_layout,
    permutation_matrix,
)
from .policy import GPU_POLICY
from .tiles import CONTROLLED1, DATA_START, DENSE1, DENSE1_QUBIT, DENSE2, GATHER, KIND, TilePass
from .updates import compiled

POLICY = GPU_POLICY
"""This device's limits and planner facts."""
THREADS = 256
"""Threads per block of every kernel."""
MAX_BLOCKS = 32 * 1024
"""Most blocks of a grid-stride launch (enough to fill any current GPU many times)."""
SAMPLE_BLOCK_QUBITS = 12
"""Sampling scans blocks of 2**SAMPLE_BLOCK_QUBITS amplitudes in shared memory."""

TILE_THREADS = 256
"""Threads per block of a tile pass: each loads 8 (double) or 16 (single) amplitudes of a
full tile."""
GATHER_QUBITS = POLICY.tile_matrix_max_qubits
"""Widest matrix a thread gathers alone (its amplitudes in local memory); wider ones take
:func:`_apply_wide`."""
_MAX_DIM = 1 << GATHER_QUBITS
"""Amplitudes a gather holds per thread (local memory), fixed when the kernels compile."""
WIDE_SCRATCH_AMPLITUDES = 1 << 20
"""A wider matrix's groups are copied out in batches of about this many amplitudes (16 MiB in
double), into one scratch array per state that lives as long as the state."""
_SAMPLE_BLOCK = 1 << SAMPLE_BLOCK_QUBITS
_PER_THREAD = _SAMPLE_BLOCK // THREADS


@dataclass
class CudaState:
    """A statevector on the GPU, the stream its operations run on, and the events that keep
    the host from running far ahead of the device (see :func:`_throttle`)."""

    array: Any
    stream: Any
    launches: int = 0
    events: deque = field(default_factory=deque)
    scratch: Any = None
    """Device memory of :func:`_apply_wide`, made on its first use."""

    @property
    def size(self) -> int:
        return self.array.size

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype


LAUNCHES_PER_EVENT = 16
EVENTS_IN_FLIGHT = 2
"""The host waits once more than EVENTS_IN_FLIGHT * LAUNCHES_PER_EVENT gate kernels are
queued, so a cancelled job stops after at most that many more passes over the state."""


def _throttle(state: CudaState) -> None:
    """Count a gate launch; every LAUNCHES_PER_EVENT record an event, and wait for the oldest
    event while more than EVENTS_IN_FLIGHT are pending."""
    state.launches += 1
    if state.launches % LAUNCHES_PER_EVENT:
        return
    event = cuda.event()
    event.record(state.stream)
    state.events.append(event)
    while len(state.events) > EVENTS_IN_FLIGHT:
        state.events.popleft().synchronize()


class CudaMarker:
    """A CUDA event recorded on a state's stream (the simulator, which runs every launch as
    it is made, has no ``query``: its markers are always complete)."""

    __slots__ = ("event",)

    def __init__(self, stream: Any) -> None:
        self.event = cuda.event()
        self.event.record(stream)

    def query(self) -> bool:
        """True once everything before the marker has run; never blocks."""
        query = getattr(self.event, "query", None)
        return True if query is None else bool(query())

    def wait(self) -> None:
        """Block until everything before the marker has run."""
        self.event.synchronize()


def _grid(items: int) -> int:
    return max(1, min(MAX_BLOCKS, -(-items // THREADS)))


_DEVICE_FUNCTION = cuda.jit(device=True, inline=True)
bodies = compiled(_DEVICE_FUNCTION)
"""The shared bodies as inlined device functions (compiled when a kernel calling them is)."""
decode = compiled(_DEVICE_FUNCTION, tiles.DECODERS)
"""The tile format's decoder as inlined device functions."""


@cuda.jit
def _fill_basis(state, index):
    for i in range(cuda.grid(1), state.size, cuda.gridsize(1)):
        state[i] = 1 if i == index else 0


@cuda.jit
def _matrix1(state, qubit, m00, m01, m10, m11):
    stride = int64(1) << qubit
    for g in range(cuda.grid(1), state.size >> 1, cuda.gridsize(1)):
        i0 = bodies.insert_zero_bit(g, qubit)
        bodies.update_pair(state, i0, i0 | stride, m00, m01, m10, m11)


@cuda.jit
def _matrix2(state, q_low, q_high, offset1, offset2, matrix):
    """Two-qubit matrix (flat, row-major); ``offset1``/``offset2`` are the strides of argument
    qubits 0 and 1."""
    for g in range(cuda.grid(1), state.size >> 2, cuda.gridsize(1)):
        i0 = bodies.insert_zero_bit(bodies.insert_zero_bit(g, q_low), q_high)
        i1 = i0 + offset1
        i2 = i0 + offset2
        bodies.update_quad(state, i0, i1, i2, i1 + offset2, matrix, 0)


@cuda.jit
def _controlled_matrix1(state, sorted_qubits, control_bits, stride, m00, m01, m10, m11):
    """One-target matrix where the controls read ``control_bits``: one thread per pair, at the
    index with zeros at ``sorted_qubits`` (controls and target) and the control bits set;
    ``stride`` is the target's bit."""
    for g in range(cuda.grid(1), state.size >> sorted_qubits.size, cuda.gridsize(1)):
        i0 = bodies.insert_zero_bits(g, sorted_qubits) | control_bits
        bodies.update_pair(state, i0, i0 | stride, m00, m01, m10, m11)


@cuda.jit
def _matrix_gather(state, sorted_qubits, offsets, matrix):
    """Dense matrix on up to GATHER_QUBITS qubits: one thread per group of 2**k, at the
    index with zeros at ``sorted_qubits``. With controls among ``sorted_qubits`` (and their bits
    in ``offsets``) it is the controlled matrix, on ``state.size >> sorted_qubits.size`` groups.
    ``matrix`` is flat, row-major."""
    gathered = cuda.local.array(_MAX_DIM, dtype=complex128)
    for g in range(cuda.grid(1), state.size >> sorted_qubits.size, cuda.gridsize(1)):
        base = bodies.insert_zero_bits(g, sorted_qubits)
        bodies.gather_update(state, base, offsets, matrix, 0, gathered)


@cuda.jit
def _permutation_gather(state, sorted_qubits, offsets, permutation, phases):
    gathered = cuda.local.array(_MAX_DIM, dtype=complex128)
    for g in range(cuda.grid(1), state.size // offsets.size, cuda.gridsize(1)):
        base = bodies.insert_zero_bits(g, sorted_qubits)
        bodies.permute_update(state, base, offsets, permutation, phases, gathered)


@cuda.jit
def _gather_groups(state, scratch, sorted_qubits, offsets, first, count):
    """``scratch[j * dim + c]`` = the amplitude at ``offsets[c]`` of group ``first + j``, for
    ``count`` groups (``dim = offsets.size``)."""
    dim = offsets.size
    for t in range(cuda.grid(1), count * dim, cuda.gridsize(1)):
        j = t // dim
        base = bodies.insert_zero_bits(first + j, sorted_qubits)
        scratch[t] = state[base + offsets[t - j * dim]]


@cuda.jit
def _wide_matrix_rows(state, scratch, sorted_qubits, offsets, matrix, first, count):
    """Row ``r`` of the flat row-major ``dim x dim`` matrix times group ``first + j``'s
    amplitudes (from ``scratch``, :func:`_gather_groups`) into its amplitude ``offsets[r]``:
    one thread per output amplitude."""
    dim = offsets.size
    for t in range(cuda.grid(1), count * dim, cuda.gridsize(1)):
        j = t // dim
        r = t - j * dim
        row = r * dim
        source = j * dim
        total = matrix[row] * scratch[source]
        for c in range(1, dim):
            total += matrix[row + c] * scratch[source + c]
        state[bodies.insert_zero_bits(first + j, sorted_qubits) + offsets[r]] = total


@cuda.jit
def _wide_permutation_rows(state, scratch, sorted_qubits, offsets, permutation, phases, first,
                           count):
    """``phases[r]`` times group ``first + j``'s amplitude ``permutation[r]`` (from
    ``scratch``) into its amplitude ``offsets[r]``."""
    dim = offsets.size
    for t in range(cuda.grid(1), count * dim, cuda.gridsize(1)):
        j = t // dim
        r = t - j * dim
        target = bodies.insert_zero_bits(first + j, sorted_qubits) + offsets[r]
        state[target] = phases[r] * scratch[j * dim + permutation[r]]


@cuda.jit
def _prepare(state, sorted_qubits, offsets, amplitudes):
    for g in range(cuda.grid(1), state.size // offsets.size, cuda.gridsize(1)):
        bodies.prepare_update(state, bodies.insert_zero_bits(g, sorted_qubits), offsets,
                              amplitudes)


@cuda.jit
def _prepare_spread(state, qubits, mask, amplitudes, base_too):
    """One thread per amplitude ``i``: ``m`` is spelled by its bits at ``qubits``, ``base``
    is ``i`` with those bits 0. Pass 1 (``base_too`` False) writes every ``m != 0``, reading
    the bases that pass 2 (``base_too`` True) then scales by ``amplitudes[0]``."""
    for i in range(cuda.grid(1), state.size, cuda.gridsize(1)):
        m = bodies.spelled_index(i, qubits)
        if m != 0 and not base_too:
            state[i] = amplitudes[m] * state[i & ~mask]
        elif m == 0 and base_too:
            state[i] *= amplitudes[0]


@cuda.jit
def _diagonal(state, qubits, diagonal):
    for i in range(cuda.grid(1), state.size, cuda.gridsize(1)):
        state[i] *= diagonal[bodies.spelled_index(i, qubits)]


@cuda.jit(device=True, inline=True)
def _block_sum(shared, value):
    """Sum ``value`` over the block through ``shared`` (THREADS float64); thread 0 gets it."""
    t = cuda.threadIdx.x
    shared[t] = value
    cuda.syncthreads()
    step = THREADS // 2
    while step > 0:
        if t < step:
            shared[t] += shared[t + step]
        cuda.syncthreads()
        step //= 2
    return shared[0]


@cuda.jit
def _probability_one_partials(state, qubit, partials):
    shared = cuda.shared.array(THREADS, dtype=float64)
    stride = int64(1) << qubit
    total = 0.0
    for g in range(cuda.grid(1), state.size >> 1, cuda.gridsize(1)):
        total += bodies.squared_magnitude(state[bodies.insert_zero_bit(g, qubit) | stride])
    block_total = _block_sum(shared, total)
    if cuda.threadIdx.x == 0:
        partials[cuda.blockIdx.x] = block_total


@cuda.jit(device=True, inline=True)
def _block_bin_sums(shared, value, bins):
    """Sum ``value`` over the threads of the block with equal ``threadIdx.x % bins`` through
    ``shared`` (THREADS float64), for ``bins`` a power of two up to THREADS; thread ``t < bins``
    gets bin ``t``'s sum."""
    t = cuda.threadIdx.x
    shared[t] = value
    cuda.syncthreads()
    step = THREADS // 2
    while step >= bins:
        if t < step:
            shared[t] += shared[t + step]
        cuda.syncthreads()
        step //= 2
    return shared[t]


@cuda.jit(device=True, inline=True)
def _parity(value):
    return cuda.popc(value) & 1


PAULI_SLICE = 8
"""Terms a thread sums at once in ``_pauli_groups``; a group with more reads its pairs once per
slice of this many terms."""
PAULI_BLOCKS = 4096
"""About how many thread blocks ``expectation_pauli_groups`` launches in all (split evenly
between the groups), so that a thread sums many pairs before the block reduces them."""


@cuda.jit
def _pauli_groups(state, x_masks, pivots, term_starts, z_masks, use_imag, out):
    """Add the pair sum that ``layout.pauli_pairing`` defines for every term into ``out[t]``
    (float64, zeroed), unscaled.

    ``blockIdx.y`` strides over the groups; for group ``g`` the blocks along x grid-stride over
    its ``state.size / 2`` pairs ``(i0, i1)``: ``i0`` with bit ``pivots[g]`` clear,
    ``i1 = i0 ^ x`` (``i0 | 1`` when ``x == 0``). A thread sums up to PAULI_SLICE terms of the
    group in registers, the block adds them up in shared memory, and one thread per term adds
    the block's sum into ``out`` atomically.

    The pair sums are those of ``cpu._pauli_range``, its twin (the CPU reads a chunk once for
    all groups; a GPU thread sums a slice of terms in registers).
    """
    shared = cuda.shared.array((PAULI_SLICE, THREADS), dtype=float64)
    sums = cuda.local.array(PAULI_SLICE, dtype=float64)
    tid = cuda.threadIdx.x
    first_pair = cuda.blockIdx.x * cuda.blockDim.x + tid
    pair_stride = cuda.gridDim.x * cuda.blockDim.x
    for g in range(cuda.blockIdx.y, x_masks.size, cuda.gridDim.y):
        x = x_masks[g]
        pivot = pivots[g]
        stride = int64(1) << pivot
        end = term_starts[g + 1]
        for first in range(term_starts[g], end, PAULI_SLICE):
            count = min(PAULI_SLICE, end - first)
            for k in range(PAULI_SLICE):
                sums[k] = 0.0
            for p in range(first_pair, state.size >> 1, pair_stride):
                i0 = ((p >> pivot) << (pivot + 1)) | (p & (stride - 1))
                i1 = i0 ^ x if x else i0 | stride
                a0 = state[i0]
                a1 = state[i1]
                r0, j0 = float64(a0.real), float64(a0.imag)
                r1, j1 = float64(a1.real), float64(a1.imag)
                if x == 0:
                    p0 = r0 * r0 + j0 * j0
                    p1 = r1 * r1 + j1 * j1
                re = r1 * r0 + j1 * j0  # Re(conj(a1) * a0)
                im = r1 * j0 - j1 * r0  # Im(conj(a1) * a0)
                for k in range(count):
                    z = z_masks[first + k]
                    sign0 = 1.0 - 2.0 * _parity(i0 & z)
                    if x == 0:
                        pivot_sign = 1.0 - 2.0 * (z & 1)  # s(i0 | 1) / s(i0)
                        sums[k] += sign0 * (p0 + pivot_sign * p1)
                    elif use_imag[first + k]:
                        sums[k] += sign0 * im
                    else:
                        sums[k] += sign0 * re
            for k in range(PAULI_SLICE):
                shared[k, tid] = sums[k]
            cuda.syncthreads()
            step = THREADS // 2
            while step > 0:
                if tid < step:
                    for k in range(PAULI_SLICE):
                        shared[k, tid] += shared[k, tid + step]
                cuda.syncthreads()
                step //= 2
            if tid < count:
                cuda.atomic.add(out, first + tid, shared[tid, 0])
            cuda.syncthreads()  # the shared sums are read before the next slice writes them


@cuda.jit
def _marginal(state, sorted_qubits, offsets, out):
    """Add |amplitude|**2 into ``out[m]`` (float64, zeroed), ``m`` spelled by the amplitude's
    bits at the measured qubits (``offsets`` = their basis offsets, ``sorted_qubits`` sorted).

    Work item ``w`` is bin ``m = w % bins`` of group ``w // bins``: the amplitude at the index
    with zeros at ``sorted_qubits`` plus ``offsets[m]``. The grid is a multiple of ``bins``, so
    a thread keeps the bin of its first item and sums in a register. With fewer bins than
    threads the block first sums its threads bin by bin; then one atomic add per bin (or per
    thread) into ``out``.
    """
    shared = cuda.shared.array(THREADS, dtype=float64)
    bins = offsets.size
    k = sorted_qubits.size
    first = cuda.grid(1)
    m = first & (bins - 1)
    total = 0.0
    for w in range(first, state.size, cuda.gridsize(1)):
        total += bodies.squared_magnitude64(
            state[bodies.insert_zero_bits(w >> k, sorted_qubits) + offsets[m]])
    if bins >= THREADS:
        cuda.atomic.add(out, m, total)
    else:
        bin_total = _block_bin_sums(shared, total, bins)
        if cuda.threadIdx.x < bins:
            cuda.atomic.add(out, cuda.threadIdx.x, bin_total)


@cuda.jit
def _project(state, qubit, outcome, scale, to_zero):
    stride = int64(1) << qubit
    for g in range(cuda.grid(1), state.size >> 1, cuda.gridsize(1)):
        i0 = bodies.insert_zero_bit(g, qubit)
        bodies.project_pair(state, i0, i0 | stride, outcome, scale, to_zero)


@cuda.jit
def _block_probabilities(state, block_size, out):
    """One CUDA block per sampling block: its total probability."""
    shared = cuda.shared.array(THREADS, dtype=float64)
    b = cuda.blockIdx.x
    total = 0.0
    for i in range(b * block_size + cuda.threadIdx.x, (b + 1) * block_size, THREADS):
        total += bodies.squared_magnitude(state[i])
    block_total = _block_sum(shared, total)
    if cuda.threadIdx.x == 0:
        out[b] = block_total


@cuda.jit
def _sample_in_blocks(state, block_size, block_starts, targets, first_target, out):
    """One CUDA block per sampling block with targets: scan it in shared memory, then place
    each of its sorted targets by binary search.

    Thread ``t`` owns the ``_PER_THREAD`` contiguous amplitudes from ``t * _PER_THREAD``: it
    scans them serially, the block scans the per-thread totals, and each thread adds the total
    before it. Rounding can carry a target past the last non-zero amplitude; it is clamped to it.
    """
    prefix = cuda.shared.array(_SAMPLE_BLOCK, dtype=float64)
    chunk_totals = cuda.shared.array(THREADS, dtype=float64)
    last_nonzero = cuda.shared.array(1, dtype=int64)
    b = cuda.blockIdx.x
    t = cuda.threadIdx.x
    if first_target[b] == first_target[b + 1]:
        return
    if t == 0:
        last_nonzero[0] = -1
    cuda.syncthreads()
    base = b * block_size
    running = 0.0
    for j in range(t * _PER_THREAD, (t + 1) * _PER_THREAD):
        p = 0.0
        if j < block_size:
            p = bodies.squared_magnitude(state[base + j])
            if p > 0:
                cuda.atomic.max(last_nonzero, 0, j)
        running += p
        prefix[j] = running
    chunk_totals[t] = running
    cuda.syncthreads()
    step = 1
    while step < THREADS:  # Hillis-Steele inclusive scan of the chunk totals
        value = chunk_totals[t - step] if t >= step else 0.0
        cuda.syncthreads()
        chunk_totals[t] += value
        cuda.syncthreads()
        step *= 2
    before = chunk_totals[t - 1] if t > 0 else 0.0
    for j in range(t * _PER_THREAD, (t + 1) * _PER_THREAD):
        prefix[j] += before
    cuda.syncthreads()
    for k in range(first_target[b] + t, first_target[b + 1], THREADS):
        r = targets[k] - block_starts[b]
        low = 0
        high = block_size  # first index whose prefix exceeds r, by bisection
        while low < high:
            mid = (low + high) // 2
            if prefix[mid] > r:
                high = mid
            else:
                low = mid + 1
        out[k] = base + min(low, last_nonzero[0])


# --- tile passes (format: kernels.tiles) -----------------------------------------------------
# One thread block per chunk holds the chunk's tile in shared memory; every gate of the pass is
# applied by the block's threads striding over the gate's work items in local coordinates (the
# index mapping of the whole-state kernels above, on the tile), with a barrier between gates.
# The loops stride by the block's size, so any TILE_THREADS is correct. The gate functions are
# inlined: a device function that is not needs a current device to compile (CI has none).


@cuda.jit(device=True, inline=True)
def _tile_dense1(tile, size, qubit, data, d):
    m00, m01, m10, m11 = data[d], data[d + 1], data[d + 2], data[d + 3]
    stride = int64(1) << qubit
    for p in range(cuda.threadIdx.x, size >> 1, cuda.blockDim.x):
        i0 = bodies.insert_zero_bit(p, qubit)
        bodies.update_pair(tile, i0, i0 | stride, m00, m01, m10, m11)


@cuda.jit(device=True, inline=True)
def _tile_dense2(tile, size, q_low, q_high, offset1, offset2, data, d):
    """Two-qubit matrix (row-major at ``data[d]``); ``offset1``/``offset2`` are the local
    strides of argument qubits 0 and 1."""
    for g in range(cuda.threadIdx.x, size >> 2, cuda.blockDim.x):
        i0 = bodies.insert_zero_bit(bodies.insert_zero_bit(g, q_low), q_high)
        i1 = i0 + offset1
        i2 = i0 + offset2
        bodies.update_quad(tile, i0, i1, i2, i1 + offset2, data, d)


@cuda.jit(device=True, inline=True)
def _tile_gather(tile, size, sorted_qubits, offsets, data, d):
    """``dim x dim`` matrix (row-major at ``data[d]``), one group of ``dim`` amplitudes per
    work item, at the local index with zeros at ``sorted_qubits`` plus ``offsets[m]``."""
    gathered = cuda.local.array(_MAX_DIM, dtype=complex128)
    for g in range(cuda.threadIdx.x, size >> sorted_qubits.size, cuda.blockDim.x):
        bodies.gather_update(tile, bodies.insert_zero_bits(g, sorted_qubits), offsets, data, d,
                             gathered)


@cuda.jit(device=True, inline=True)
def _tile_controlled1(tile, size, sorted_qubits, control_bits, stride, data, d):
    m00, m01, m10, m11 = data[d], data[d + 1], data[d + 2], data[d + 3]
    for g in range(cuda.threadIdx.x, size >> sorted_qubits.size, cuda.blockDim.x):
        i0 = bodies.insert_zero_bits(g, sorted_qubits) | control_bits
        bodies.update_pair(tile, i0, i0 | stride, m00, m01, m10, m11)


@cuda.jit(device=True, inline=True)
def _tile_diagonal(tile, size, base, tile_bits, table, g, ints, data):
    """Amplitude ``l`` times ``data[d + (A[l & (2**h - 1)] | row_bits[row_of[l >> h]])]``,
    the tables and ``d`` (the outside qubits' bits included) from the row's fields."""
    h, a_start, row_of, row_bits, high, d = decode.diagonal_fields(table, g, ints, base,
                                                                   tile_bits)
    low_mask = (int64(1) << h) - 1
    for l in range(cuda.threadIdx.x, size, cuda.blockDim.x):
        tile[l] *= data[d + (ints[a_start + (l & low_mask)]
                             | ints[row_bits + ints[row_of + (l >> h)]])]


def _tile_pass_kernel(tile_type, tile_qubits_max: int):
    """The tile-pass kernel whose shared tile holds ``2**tile_qubits_max`` amplitudes of
    ``tile_type``: numba-cuda needs a shared array's type and size when it compiles, so each
    precision gets its own kernel, made once below at import (it compiles on first launch).

    Block ``c`` loads chunk ``c``: thread ``l`` reads ``state[base + run_offsets[l >>
    run_bits] + (l & (2**run_bits - 1))]`` into local index ``run_starts[l >> run_bits] +
    run_positions[l & (2**run_bits - 1)]``, so consecutive threads read consecutive
    amplitudes of a run. A row's condition depends only on ``base``: the whole
    block takes or skips the gate, and every thread reaches every barrier.
    """
    tile_size = 1 << tile_qubits_max

    @cuda.jit
    def tile_pass(state, chunk_qubits, run_bits, run_offsets, run_starts, run_positions, table,
                  ints, data):
        tile = cuda.shared.array(tile_size, dtype=tile_type)
        tile_bits = chunk_qubits.size
        size = int64(1) << tile_bits
        run_mask = (int64(1) << run_bits) - 1
        base = bodies.insert_zero_bits(int64(cuda.blockIdx.x), chunk_qubits)
        for l in range(cuda.threadIdx.x, size, cuda.blockDim.x):
            local = run_starts[l >> run_bits] + run_positions[l & run_mask]
            tile[local] = state[base + run_offsets[l >> run_bits] + (l & run_mask)]
        cuda.syncthreads()
        for g in range(table.shape[0]):
            if decode.row_applies(table, g, base):
                kind = table[g, KIND]
                start = table[g, DATA_START]
                if kind == DENSE1:
                    _tile_dense1(tile, size, table[g, DENSE1_QUBIT], data, start)
                elif kind == DENSE2:
                    q_low, q_high, offset1, offset2 = decode.dense2_fields(table, g)
                    _tile_dense2(tile, size, q_low, q_high, offset1, offset2, data, start)
                elif kind == GATHER:
                    first, middle, stop = decode.gather_fields(table, g)
                    _tile_gather(tile, size, ints[first:middle], ints[middle:stop], data, start)
                elif kind == CONTROLLED1:
                    first, stop, control_bits, stride = decode.controlled1_fields(table, g)
                    _tile_controlled1(tile, size, ints[first:stop], control_bits, stride, data,
                                      start)
                else:
                    _tile_diagonal(tile, size, base, tile_bits, table, g, ints, data)
            cuda.syncthreads()
        for l in range(cuda.threadIdx.x, size, cuda.blockDim.x):
            local = run_starts[l >> run_bits] + run_positions[l & run_mask]
            state[base + run_offsets[l >> run_bits] + (l & run_mask)] = tile[local]

    return tile_pass


_tile_pass_c128 = _tile_pass_kernel(complex128, POLICY.tile_qubits[16])
_tile_pass_c64 = _tile_pass_kernel(complex64, POLICY.tile_qubits[8])
_TILE_PASS = {16: _tile_pass_c128, 8: _tile_pass_c64}
"""The tile-pass kernel by bytes per amplitude."""


# --- the operation set (interface.KernelSet) ---------------------------------------------------


def _upload(state: CudaState, host: np.ndarray):
    return cuda.to_device(np.ascontiguousarray(host), stream=state.stream)


def new_stream() -> Any:
    """A new CUDA stream for one run's states."""
    return cuda.stream()


def side_by_side_runs(num_qubits: int) -> int:
    """1: a run's launches already fill the GPU from one host thread."""
    return 1


def one_thread() -> AbstractContextManager[None]:
    """Nothing to change: the host thread only enqueues."""
    return nullcontext()


def stream_metadata(stream: Any) -> dict[str, Any]:
    """Nothing: a run on one GPU has no more to report."""
    return {}


def allocate(num_qubits: int, dtype: np.dtype, stream: Any = None) -> CudaState:
    """A new state |0...0> on ``stream`` (None: a new stream)."""
    stream = cuda.stream() if stream is None else stream
    state = CudaState(cuda.device_array(1 << num_qubits, dtype=dtype, stream=stream), stream)
    reset_all(state)
    return state


def from_host(amplitudes: np.ndarray, stream: Any = None) -> CudaState:
    """A new state holding a copy of ``amplitudes`` on ``stream`` (None: a new stream)."""
    stream = cuda.stream() if stream is None else stream
    return CudaState(cuda.to_device(np.ascontiguousarray(amplitudes), stream=stream), stream)


def reset_all(state: CudaState) -> None:
    """Set the state to |0...0>."""
    _fill_basis[_grid(state.size), THREADS, state.stream](state.array, 0)


def clone(state: CudaState) -> CudaState:
    """An independent copy of the state, on the same stream."""
    copy = CudaState(
        cuda.device_array(state.size, dtype=state.dtype, stream=state.stream), state.stream
    )
    copy_into(copy, state)
    return copy


def copy_into(destination: CudaState, source: CudaState) -> None:
    """Overwrite ``destination`` with ``source`` (device to device)."""
    destination.array.copy_to_device(source.array, stream=destination.stream)


def copy_from_host(state: CudaState, amplitudes: np.ndarray) -> None:
    """Overwrite the state with ``amplitudes`` (host to device, on the state's stream)."""
    state.array.copy_to_device(np.ascontiguousarray(amplitudes, dtype=state.dtype),
                               stream=state.stream)


def to_host(state: CudaState) -> np.ndarray:
    """A host (NumPy) copy of the state; waits for the stream."""
    host = state.array.copy_to_host(stream=state.stream)
    state.stream.synchronize()
    return host


def record_marker(state: CudaState) -> Marker:
    """A marker (a CUDA event) after everything enqueued on the state's stream so far."""
    return CudaMarker(state.stream)


def _upload_flat(state: CudaState, matrix: np.ndarray):
    return _upload(state, np.ascontiguousarray(matrix).ravel())


def _apply_wide(state: CudaState, sorted_qubits: np.ndarray, offsets: np.ndarray, rows: Any,
                *tables: np.ndarray) -> None:
    """A matrix or permutation wider than GATHER_QUBITS on the groups of ``sorted_qubits``
    (amplitudes at ``offsets`` from each group's base): batches of groups are copied into the
    state's scratch array, then ``rows`` computes every amplitude of the batch from the copy
    (so the update is in place)."""
    dim = offsets.size
    groups = state.size >> sorted_qubits.size
    per_batch = max(1, min(groups, WIDE_SCRATCH_AMPLITUDES // dim))
    if (state.scratch is None or state.scratch.size < per_batch * dim
            or state.scratch.dtype != state.dtype):
        state.scratch = cuda.device_array(per_batch * dim, dtype=state.dtype,
                                          stream=state.stream)
    device_qubits, device_offsets = _upload(state, sorted_qubits), _upload(state, offsets)
    device_tables = [_upload(state, table) for table in tables]
    for first in range(0, groups, per_batch):
        count = min(per_batch, groups - first)
        launch = (_grid(count * dim), THREADS, state.stream)
        _gather_groups[launch](state.array, state.scratch, device_qubits, device_offsets,
                               np.int64(first), np.int64(count))
        rows[launch](state.array, state.scratch, device_qubits, device_offsets, *device_tables,
                     np.int64(first), np.int64(count))
        _throttle(state)


def _flat_in(state: CudaState, matrix: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(matrix, dtype=state.dtype).ravel()


def apply_matrix(state: CudaState, qubits: np.ndarray, matrix: np.ndarray) -> None:
    """Apply a dense ``2**k x 2**k`` matrix to ``qubits`` (int64, argument order)."""
    if qubits.size > GATHER_QUBITS:
        _apply_wide(state, np.sort(qubits), basis_offsets(qubits), _wide_matrix_rows,
                    _flat_in(state, matrix))
        return
    launch = (_grid(state.size >> qubits.size), THREADS, state.stream)
    if qubits.size == 1:
        m = matrix
        _matrix1[launch](state.array, np.int64(qubits[0]), m[0, 0], m[0, 1], m[1, 0], m[1, 1])
    elif qubits.size == 2:
        q0, q1 = int(qubits[0]), int(qubits[1])
        _matrix2[launch](state.array, np.int64(min(q0, q1)), np.int64(max(q0, q1)),
                         np.int64(1 << q0), np.int64(1 << q1), _upload_flat(state, matrix))
    else:
        _matrix_gather[launch](state.array, _upload(state, np.sort(qubits)),
                               _upload(state, basis_offsets(qubits)), _upload_flat(state, matrix))
    _throttle(state)


def apply_controlled_matrix(
    state: CudaState, controls: np.ndarray, control_state: int, targets: np.ndarray,
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
    if targets.size > GATHER_QUBITS:
        _apply_wide(state, sorted_qubits, offsets, _wide_matrix_rows, _flat_in(state, matrix))
        return
    launch = (_grid(state.size >> sorted_qubits.size), THREADS, state.stream)
    if targets.size == 1:
        m = matrix
        _controlled_matrix1[launch](state.array, _upload(state, sorted_qubits),
                                    np.int64(control_bits), np.int64(1 << int(targets[0])),
                                    m[0, 0], m[0, 1], m[1, 0], m[1, 1])
    else:
        _matrix_gather[launch](state.array, _upload(state, sorted_qubits),
                               _upload(state, offsets), _upload_flat(state, matrix))
    _throttle(state)


def apply_tile_pass(state: CudaState, tile_pass: TilePass) -> None:
    """Apply a tile pass (format: :mod:`gpuprovider.kernels.tiles`) in one read and one
    write of the state: one thread block per chunk, the tile in shared memory.

    The pass's integers travel to the device in one copy (its buffer), its numbers in another.

    Raises:
        ValueError: the tile is wider than ``POLICY.tile_qubits`` allows in the state's
            precision, or a GATHER row's matrix is wider than ``GATHER_QUBITS``.
    """
    chunk_qubits = tile_pass.chunk_qubits
    limit = POLICY.tile_qubits[state.dtype.itemsize]
    if chunk_qubits.size > limit:
        raise ValueError(
            f"a tile pass over {chunk_qubits.size} tile qubits; the GPU holds at most {limit} "
            f"in shared memory for {state.dtype} amplitudes"
        )
    widest = tile_pass.widest_gather
    if widest > _MAX_DIM:
        raise ValueError(
            f"a tile pass with a {widest.bit_length() - 1}-qubit matrix; the GPU's tile passes "
            f"apply at most {GATHER_QUBITS}"
        )
    rows = tile_pass.table.shape[0]
    if rows == 0:
        return
    bounds = tile_pass.bounds
    packed = _upload(state, tile_pass.buffer)

    def section(index: int):
        return packed[bounds[index]:bounds[index + 1]]

    kernel = _TILE_PASS[state.dtype.itemsize]
    kernel[state.size >> chunk_qubits.size, TILE_THREADS, state.stream](
        state.array, section(tiles.CHUNK_QUBITS), np.int64(tile_pass.run_bits),
        section(tiles.RUN_OFFSETS), section(tiles.RUN_STARTS), section(tiles.RUN_POSITIONS),
        section(tiles.TABLE).reshape(rows, tiles.TABLE_FIELDS), section(tiles.INTS),
        _upload(state, tile_pass.data),
    )
    _throttle(state)


def apply_permutation(
    state: CudaState, qubits: np.ndarray, permutation: np.ndarray, phases: np.ndarray
) -> None:
    """Apply the matrix whose row ``r`` is ``phases[r]`` at column ``permutation[r]``."""
    if qubits.size <= 2:  # the unrolled dense kernels need no gather
        apply_matrix(state, qubits, permutation_matrix(permutation, phases))
        return
    if qubits.size > GATHER_QUBITS:
        _apply_wide(state, np.sort(qubits), basis_offsets(qubits), _wide_permutation_rows,
                    np.ascontiguousarray(permutation, dtype=np.int64),
                    np.ascontiguousarray(phases, dtype=state.dtype))
        return
    launch = (_grid(state.size >> qubits.size), THREADS, state.stream)
    _permutation_gather[launch](state.array, _upload(state, np.sort(qubits)),
                                _upload(state, basis_offsets(qubits)),
                                _upload(state, permutation), _upload(state, phases))
    _throttle(state)


PREPARE_SPREAD_QUBITS = 4
"""From this many qubits on, a preparation runs one thread per amplitude (two passes) rather
than one thread per group, which would leave the GPU idle when few groups remain."""


def prepare_qubits(state: CudaState, qubits: np.ndarray, amplitudes: np.ndarray) -> None:
    """Put ``qubits`` (int64, argument order), which must be |0>, into ``amplitudes``."""
    if qubits.size >= PREPARE_SPREAD_QUBITS:
        mask = int(np.bitwise_or.reduce(np.left_shift(1, qubits)))
        device_qubits = _upload(state, qubits)
        device_amplitudes = _upload(state, amplitudes)
        for base_too in (False, True):
            _prepare_spread[_grid(state.size), THREADS, state.stream](
                state.array, device_qubits, mask, device_amplitudes, base_too)
        _throttle(state)
        return
    launch = (_grid(state.size >> qubits.size), THREADS, state.stream)
    _prepare[launch](state.array, _upload(state, np.sort(qubits)),
                     _upload(state, basis_offsets(qubits)), _upload(state, amplitudes))
    _throttle(state)


def apply_diagonal(state: CudaState, qubits: np.ndarray, diagonal: np.ndarray) -> None:
    """Multiply each amplitude by ``diagonal[m]``, ``m`` spelled by its bits at ``qubits``."""
    _diagonal[_grid(state.size), THREADS, state.stream](
        state.array, _upload(state, qubits), _upload(state, diagonal)
    )
    _throttle(state)


def probability_of_one(state: CudaState, qubit: int) -> float:
    """Probability that measuring ``qubit`` gives 1 (waits for the stream)."""
    blocks = _grid(state.size >> 1)
    partials = cuda.device_array(blocks, dtype=np.float64, stream=state.stream)
    _probability_one_partials[blocks, THREADS, state.stream](
        state.array, np.int64(qubit), partials
    )
    host = partials.copy_to_host(stream=state.stream)
    state.stream.synchronize()
    return float(host.sum())


def expectation_pauli(state: CudaState, x_mask: int, z_mask: int) -> complex:
    """``<psi| P |psi>`` of the Pauli string with X on the qubits only in ``x_mask``, Z on
    those only in ``z_mask`` and Y on those in both; no overall phase, so the value is real
    (convention and evaluation: :func:`~gpuprovider.kernels.layout.pauli_pairing`).

    Summed in float64 in either precision (:func:`expectation_pauli_groups` of one term).

    Raises:
        ValueError: a mask names a qubit the state does not have.
    """
    return complex(expectation_paulis(state, x_mask, np.array([z_mask]))[0])


def expectation_paulis(state: CudaState, x_mask: int, z_masks: np.ndarray) -> np.ndarray:
    """:func:`expectation_pauli` of every Pauli ``(x_mask, z_masks[t])``, as float64 on the
    host (:func:`expectation_pauli_groups` of one group).

    Raises:
        ValueError: a mask names a qubit the state does not have.
    """
    z_masks = np.asarray(z_masks, dtype=np.int64)
    return expectation_pauli_groups(state, np.array([x_mask], dtype=np.int64),
                                    np.array([0, z_masks.size], dtype=np.int64), z_masks)


def expectation_pauli_groups(state: CudaState, x_masks: np.ndarray, term_starts: np.ndarray,
                             z_masks: np.ndarray) -> np.ndarray:
    """``<psi| P_t |psi>`` of every term ``t`` of a grouped Pauli list, as float64 on the host,
    shape (T,); arguments and convention as ``cpu.expectation_pauli_groups``.

    One launch for all groups (``_pauli_groups``), one copy of the masks to the device, one
    copy of the sums back and one wait for the stream. Summed in float64 in either precision.

    Raises:
        ValueError: a mask names a qubit the state does not have, or ``term_starts`` does not
            cut ``z_masks`` into ``x_masks.size`` groups (checked before any work).
    """
    x_masks = np.ascontiguousarray(x_masks, dtype=np.int64)
    term_starts = np.ascontiguousarray(term_starts, dtype=np.int64)
    z_masks = np.ascontiguousarray(z_masks, dtype=np.int64)
    pivots, use_imag, scales = pauli_groups_layout(x_masks, term_starts, z_masks,
                                                   state.size.bit_length() - 1)
    groups, terms = x_masks.size, z_masks.size
    if terms == 0:
        return np.zeros(0, dtype=np.float64)
    parts = (x_masks, pivots, term_starts, z_masks, use_imag.astype(np.int64))
    ends = np.cumsum([part.size for part in parts]).tolist()
    packed = _upload(state, np.concatenate(parts))
    out = _upload(state, np.zeros(terms, dtype=np.float64))
    grid = (max(1, min(_grid(state.size >> 1), -(-PAULI_BLOCKS // groups))), min(groups, 65535))
    _pauli_groups[grid, THREADS, state.stream](
        state.array, packed[:ends[0]], packed[ends[0]:ends[1]], packed[ends[1]:ends[2]],
        packed[ends[2]:ends[3]], packed[ends[3]:ends[4]], out,
    )
    host = out.copy_to_host(stream=state.stream)
    state.stream.synchronize()
    return host * scales


def marginal_probabilities(state: CudaState, qubits: np.ndarray) -> np.ndarray:
    """Probabilities of the outcomes of measuring ``qubits`` (int64), as float64 on the host:
    entry ``m`` is the probability that ``qubits[j]`` reads bit ``j`` of ``m`` for every ``j``.

    One pass over the state; waits for the stream. Any number of qubits: the device holds 16
    bytes per outcome (offsets and sums) besides the state, and with more outcomes than
    THREADS each thread makes one float64 atomic add.
    """
    bins = 1 << qubits.size
    blocks = max(_grid(state.size), bins // THREADS)  # powers of two: bins divide the grid
    out = _upload(state, np.zeros(bins, dtype=np.float64))
    _marginal[blocks, THREADS, state.stream](
        state.array, _upload(state, np.sort(qubits)), _upload(state, basis_offsets(qubits)), out
    )
    host = out.copy_to_host(stream=state.stream)
    state.stream.synchronize()
    return host


def project(state: CudaState, qubit: int, outcome: int, probability: float,
            to_zero: bool = False) -> None:
    """Collapse ``qubit`` onto ``outcome`` (seen with ``probability``) and renormalise.

    With ``to_zero`` the qubit is then flipped to 0, which together is a reset.
    """
    scale = state.dtype.type(1.0 / math.sqrt(probability))
    _project[_grid(state.size >> 1), THREADS, state.stream](
        state.array, np.int64(qubit), np.int64(outcome), scale, bool(to_zero)
    )
    _throttle(state)


def sample(state: CudaState, uniforms: np.ndarray) -> np.ndarray:
    """Basis indices drawn from |amplitude|**2, one per uniform in [0, 1), in sorted order.

    One read of the state for the block totals and one more of the blocks that hold targets;
    only the block totals and the targets cross to and from the host.
    """
    block_size = min(state.size, _SAMPLE_BLOCK)
    blocks = state.size // block_size
    totals = cuda.device_array(blocks, dtype=np.float64, stream=state.stream)
    _block_probabilities[blocks, THREADS, state.stream](state.array, np.int64(block_size), totals)
    host_totals = totals.copy_to_host(stream=state.stream)
    state.stream.synchronize()
    block_starts = np.concatenate(([0.0], np.cumsum(host_totals)))
    targets = np.sort(uniforms) * block_starts[-1]
    first_target = np.searchsorted(targets, block_starts, side="left").astype(np.int64)
    first_target[-1] = targets.size
    out = cuda.device_array(targets.size, dtype=np.int64, stream=state.stream)
    _sample_in_blocks[blocks, THREADS, state.stream](
        state.array, np.int64(block_size), _upload(state, block_starts), _upload(state, targets),
        _upload(state, first_target), out,
    )
    indices = out.copy_to_host(stream=state.stream)
    state.stream.synchronize()
    return indices


def probabilities(state: CudaState) -> np.ndarray:
    """|amplitude|**2 of every basis state, as float64 on the host."""
    return np.abs(to_host(state)) ** 2


def synchronize(state: CudaState) -> None:
    """Wait until every operation enqueued on the state's stream has finished."""
    state.stream.synchronize()


def release(state: CudaState) -> None:
    """Wait for the stream, then free the state's device memory now.

    Numba defers frees of device arrays; clearing its pending deallocations returns the memory
    to the driver before the next job is admitted.
    """
    state.stream.synchronize()
    state.array = state.scratch = None
    pending = getattr(cuda.current_context(), "deallocations", None)  # absent in the simulator
    if pending is not None:
        pending.clear()
