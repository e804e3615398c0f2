"""CPU execution of tile passes (format: :mod:`gpuprovider.kernels.tiles`).

Each chunk's tile is loaded into two real arrays, real parts and imaginary parts, so that the
common gates become loops over contiguous reals that the compiler vectorises (AVX2 /
AVX-512):

- a 2-qubit or wider matrix, or a controlled one, whose qubits all lie above the tile's lanes
  (the planner keeps the lowest ``CPU_POLICY.tile_lane_qubits`` local positions free of
  dense targets) runs along contiguous runs of at least ``2**LANE_QUBITS`` amplitudes
  (:func:`_dense_lanes`): each run's rows are copied out once, and the output rows are
  computed from the copy straight into the tile (a 4x4 matrix's four in one loop that reads
  each input once, :func:`_rows4`);
- a 1-qubit matrix, or a 2-qubit one below the lanes, whose lower target's stride is at
  least ``VECTOR_MIN_STRIDE`` copies the amplitudes of ``BLOCK`` work items into scratch
  rows, computes every output row in one loop, and copies them back: the loops read and
  write distinct arrays, which they must to vectorise;
- a diagonal builds the few distinct rows of phases a chunk needs, then multiplies the tile
  row by row.

Those with a qubit on the lanes (small states have no lanes) run scalar loops on the same
arrays. The complex arithmetic is the split-layout bodies of
:mod:`gpuprovider.kernels.updates` (``dot2_split``, ``dot4_split``); ``_gather`` and
``_dense_lanes`` are the split-layout twins of a complex body (``updates.gather_update``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from . import tiles
from .cpu import _LOOP, bodies
from .policy import CPU_POLICY
from .tiles import CONTROLLED1, DATA_START, DENSE1, DENSE1_QUBIT, DENSE2, GATHER, KIND
from .updates import compiled

BLOCK = 256
"""Work items per vectorised block: the scratch rows (16 of BLOCK reals) stay in L1."""
LANE_QUBITS = min(CPU_POLICY.tile_lane_qubits.values())
"""The planner keeps dense targets off the lowest local positions of a tile, so a 3-qubit or
controlled matrix whose qubits all lie at or above this one runs along contiguous runs
(:func:`_dense_lanes`)."""
ROWS_QUBITS = 10
""":func:`_dense_lanes` copies at most 2**10 amplitudes of rows at a time (8 KiB in single,
16 KiB in double: within a core's L1), unless its shortest runs need more."""
VECTOR_MIN_STRIDE = 8
"""Smallest target stride (in amplitudes) that takes the vectorised loops."""

_VECTOR = {**_LOOP, "fastmath": True}

decode = compiled(njit(inline="always"), tiles.DECODERS)
"""The tile format's decoder, inlined."""


@njit(**_VECTOR)
def _dense1_scalar(re, im, qubit, data, d):
    """A 2x2 matrix on split parts, one pair at a time (the split-layout loop of
    ``cpu._matrix1_range``; the arithmetic is ``updates.dot2_split``)."""
    ar, ai = data[d].real, data[d].imag
    br, bi = data[d + 1].real, data[d + 1].imag
    cr, ci = data[d + 2].real, data[d + 2].imag
    dr, di = data[d + 3].real, data[d + 3].imag
    stride = 1 << qubit
    for g in range(re.size >> 1):
        p = bodies.insert_zero_bit(g, qubit)
        q = p | stride
        r0, i0, r1, i1 = re[p], im[p], re[q], im[q]
        re[p], im[p] = bodies.dot2_split(ar, ai, br, bi, r0, i0, r1, i1)
        re[q], im[q] = bodies.dot2_split(cr, ci, dr, di, r0, i0, r1, i1)


@njit(**_LOOP)
def _runs(q_low, q_high, first, count, bases, lengths):
    """Split work items ``first .. first+count`` into runs of contiguous amplitudes (items
    within one run of ``2**q_low`` are): fill ``bases``/``lengths``, return how many runs.
    The item index has zeros inserted at ``q_low`` and ``q_high`` (none there if -1)."""
    low_mask = (1 << q_low) - 1
    high_mask = (1 << q_high) - 1
    runs = 0
    t = 0
    while t < count:
        g = first + t
        i = ((g >> q_low) << (q_low + 1)) | (g & low_mask)
        bases[runs] = ((i >> q_high) << (q_high + 1)) | (i & high_mask) if q_high >= 0 else i
        lengths[runs] = min((1 << q_low) - (g & low_mask), count - t)
        t += lengths[runs]
        runs += 1
    return runs


@njit(**_VECTOR)
def _move(re, im, offsets, runs, bases, lengths, rows_re, rows_im, into_rows):
    """Between the tile and row ``m`` (BLOCK reals) of ``rows_re`` / ``rows_im`` (flat): the
    real / imaginary parts at ``offsets[m]`` from each run's base, runs one after another;
    into the rows when ``into_rows``, else back. One copy loop per run, so each vectorises."""
    for m in range(offsets.size):
        for part in range(2):
            tile = re if part == 0 else im
            rows = rows_re if part == 0 else rows_im
            source, target = (tile, rows) if into_rows else (rows, tile)
            row = m * BLOCK
            for r in range(runs):
                start = bases[r] + offsets[m]
                count = lengths[r]
                first, second = (start, row) if into_rows else (row, start)
                run = source[first:first + count]
                out = target[second:second + count]
                for u in range(count):
                    out[u] = run[u]
                row += count


@njit(**_VECTOR)
def _dense1(re, im, qubit, data, d, scratch):
    """A 2x2 matrix; vectorised over blocks of work items when the target's stride allows."""
    if (1 << qubit) < VECTOR_MIN_STRIDE:
        _dense1_scalar(re, im, qubit, data, d)
        return
    ar, ai = data[d].real, data[d].imag
    br, bi = data[d + 1].real, data[d + 1].imag
    cr, ci = data[d + 2].real, data[d + 2].imag
    dr, di = data[d + 3].real, data[d + 3].imag
    source_re, source_im, target_re, target_im, bases, lengths = scratch
    offsets = bases[BLOCK:BLOCK + 2]
    offsets[0] = 0
    offsets[1] = 1 << qubit
    items = re.size >> 1
    for first in range(0, items, BLOCK):
        w = min(BLOCK, items - first)
        runs = _runs(qubit, -1, first, w, bases, lengths)
        _move(re, im, offsets, runs, bases, lengths, source_re, source_im, True)
        for t in range(w):
            r0 = source_re[t]
            r1 = source_re[BLOCK + t]
            i0 = source_im[t]
            i1 = source_im[BLOCK + t]
            target_re[t], target_im[t] = bodies.dot2_split(ar, ai, br, bi, r0, i0, r1, i1)
            target_re[BLOCK + t], target_im[BLOCK + t] = bodies.dot2_split(
                cr, ci, dr, di, r0, i0, r1, i1)
        _move(re, im, offsets, runs, bases, lengths, target_re, target_im, False)


@njit(**_VECTOR)
def _dense2_scalar(re, im, q_low, q_high, offset1, offset2, data, d):
    """A 4x4 matrix on split parts, one group at a time (the split-layout loop of
    ``cpu._matrix2_range``; the arithmetic is ``updates.dot4_split``)."""
    for g in range(re.size >> 2):
        p0 = bodies.insert_zero_bit(bodies.insert_zero_bit(g, q_low), q_high)
        p1 = p0 + offset1
        p2 = p0 + offset2
        p3 = p1 + offset2
        r0, r1, r2, r3 = re[p0], re[p1], re[p2], re[p3]
        i0, i1, i2, i3 = im[p0], im[p1], im[p2], im[p3]
        for row in range(4):
            p = p0 + (row & 1) * offset1 + (row >> 1) * offset2
            e = d + 4 * row
            m0, m1, m2, m3 = data[e], data[e + 1], data[e + 2], data[e + 3]
            re[p], im[p] = bodies.dot4_split(m0.real, m0.imag, m1.real, m1.imag, m2.real,
                                             m2.imag, m3.real, m3.imag, r0, i0, r1, i1, r2,
                                             i2, r3, i3)


@njit(**_VECTOR)
def _dense2(re, im, q_low, q_high, offset1, offset2, data, d, scratch):
    """A 4x4 matrix; vectorised over blocks of work items when the lower target's stride
    allows."""
    if (1 << q_low) < VECTOR_MIN_STRIDE:
        _dense2_scalar(re, im, q_low, q_high, offset1, offset2, data, d)
        return
    source_re, source_im, target_re, target_im, bases, lengths = scratch
    offsets = bases[BLOCK:BLOCK + 4]
    offsets[0] = 0
    offsets[1] = offset1
    offsets[2] = offset2
    offsets[3] = offset1 + offset2
    items = re.size >> 2
    for first in range(0, items, BLOCK):
        w = min(BLOCK, items - first)
        runs = _runs(q_low, q_high, first, w, bases, lengths)
        _move(re, im, offsets, runs, bases, lengths, source_re, source_im, True)
        for row in range(4):
            e = d + 4 * row
            ar, ai = data[e].real, data[e].imag
            br, bi = data[e + 1].real, data[e + 1].imag
            cr, ci = data[e + 2].real, data[e + 2].imag
            dr, di = data[e + 3].real, data[e + 3].imag
            out = row * BLOCK
            for t in range(w):
                r0 = source_re[t]
                r1 = source_re[BLOCK + t]
                r2 = source_re[2 * BLOCK + t]
                r3 = source_re[3 * BLOCK + t]
                i0 = source_im[t]
                i1 = source_im[BLOCK + t]
                i2 = source_im[2 * BLOCK + t]
                i3 = source_im[3 * BLOCK + t]
                target_re[out + t], target_im[out + t] = bodies.dot4_split(
                    ar, ai, br, bi, cr, ci, dr, di, r0, i0, r1, i1, r2, i2, r3, i3)
        _move(re, im, offsets, runs, bases, lengths, target_re, target_im, False)


@njit(inline="always", fastmath=True)
def _rows4(o0r, o0i, o1r, o1i, o2r, o2i, o3r, o3i, x0r, x0i, x1r, x1i, x2r, x2i, x3r, x3i,
           data, e):
    """Rows ``o0 .. o3`` (split parts, one run each) become the 4x4 matrix stored row-major
    from ``data[e]`` times rows ``x0 .. x3``: one loop reads each input once and writes every
    output (``updates.dot4_split`` per output), with the 16 coefficients held in registers."""
    a0, a1, a2, a3 = data[e], data[e + 1], data[e + 2], data[e + 3]
    b0, b1, b2, b3 = data[e + 4], data[e + 5], data[e + 6], data[e + 7]
    c0, c1, c2, c3 = data[e + 8], data[e + 9], data[e + 10], data[e + 11]
    d0, d1, d2, d3 = data[e + 12], data[e + 13], data[e + 14], data[e + 15]
    for t in range(o0r.size):
        r0, i0, r1, i1 = x0r[t], x0i[t], x1r[t], x1i[t]
        r2, i2, r3, i3 = x2r[t], x2i[t], x3r[t], x3i[t]
        o0r[t], o0i[t] = bodies.dot4_split(a0.real, a0.imag, a1.real, a1.imag, a2.real,
                                           a2.imag, a3.real, a3.imag, r0, i0, r1, i1, r2, i2,
                                           r3, i3)
        o1r[t], o1i[t] = bodies.dot4_split(b0.real, b0.imag, b1.real, b1.imag, b2.real,
                                           b2.imag, b3.real, b3.imag, r0, i0, r1, i1, r2, i2,
                                           r3, i3)
        o2r[t], o2i[t] = bodies.dot4_split(c0.real, c0.imag, c1.real, c1.imag, c2.real,
                                           c2.imag, c3.real, c3.imag, r0, i0, r1, i1, r2, i2,
                                           r3, i3)
        o3r[t], o3i[t] = bodies.dot4_split(d0.real, d0.imag, d1.real, d1.imag, d2.real,
                                           d2.imag, d3.real, d3.imag, r0, i0, r1, i1, r2, i2,
                                           r3, i3)


@njit(**_VECTOR)
def _dense_lanes(re, im, sorted_qubits, offsets, data, d, rows):
    """A dense ``dim x dim`` matrix on the amplitudes at ``offsets`` (control bits may be set
    in them) whose ``sorted_qubits`` all lie at or above ``LANE_QUBITS``: each work item is a
    run of ``run`` contiguous amplitudes per row, at least ``2**LANE_QUBITS`` (more when the
    lowest qubit allows, up to ``2**ROWS_QUBITS`` amplitudes for all rows).

    The item's rows are copied once into ``rows`` (row ``m``'s real parts at ``2 * m * run``,
    its imaginary parts after them; twice the tile's reals always suffice, as qubits at or
    above ``LANE_QUBITS`` leave at most ``re.size >> LANE_QUBITS`` rows), then each output
    row is computed from them four columns at a time (``updates.dot4_split``; ``dot2_split``
    for a 2x2 matrix; a 4x4 matrix's four rows in one loop, :func:`_rows4`), straight into
    the tile. Every loop runs along a run, reading arrays it does not write, so it vectorises
    (the split-layout twin of ``updates.gather_update``, as ``_gather`` is)."""
    dim = offsets.size
    run_bits = LANE_QUBITS
    while run_bits < sorted_qubits[0] and dim << (run_bits + 1) <= 1 << ROWS_QUBITS:
        run_bits += 1
    run = 1 << run_bits
    for g in range(re.size >> (sorted_qubits.size + run_bits)):
        base = bodies.insert_zero_bits(g << run_bits, sorted_qubits)
        for m in range(dim):
            row_re = rows[2 * m * run:(2 * m + 1) * run]
            row_im = rows[(2 * m + 1) * run:(2 * m + 2) * run]
            source_re = re[base + offsets[m]:base + offsets[m] + run]
            source_im = im[base + offsets[m]:base + offsets[m] + run]
            for t in range(run):
                row_re[t] = source_re[t]
                row_im[t] = source_im[t]
        if dim == 4:
            p0, p1 = base + offsets[0], base + offsets[1]
            p2, p3 = base + offsets[2], base + offsets[3]
            _rows4(re[p0:p0 + run], im[p0:p0 + run], re[p1:p1 + run], im[p1:p1 + run],
                   re[p2:p2 + run], im[p2:p2 + run], re[p3:p3 + run], im[p3:p3 + run],
                   rows[:run], rows[run:2 * run], rows[2 * run:3 * run],
                   rows[3 * run:4 * run], rows[4 * run:5 * run], rows[5 * run:6 * run],
                   rows[6 * run:7 * run], rows[7 * run:8 * run], data, d)
            continue
        for out in range(dim):
            target = base + offsets[out]
            out_re = re[target:target + run]
            out_im = im[target:target + run]
            e = d + out * dim
            if dim == 2:
                ar, ai = data[e].real, data[e].imag
                br, bi = data[e + 1].real, data[e + 1].imag
                r0, i0 = rows[:run], rows[run:2 * run]
                r1, i1 = rows[2 * run:3 * run], rows[3 * run:4 * run]
                for t in range(run):
                    out_re[t], out_im[t] = bodies.dot2_split(ar, ai, br, bi, r0[t], i0[t],
                                                             r1[t], i1[t])
                continue
            for c in range(0, dim, 4):
                ar, ai = data[e + c].real, data[e + c].imag
                br, bi = data[e + c + 1].real, data[e + c + 1].imag
                cr, ci = data[e + c + 2].real, data[e + c + 2].imag
                dr, di = data[e + c + 3].real, data[e + c + 3].imag
                x = 2 * c * run
                r0, i0 = rows[x:x + run], rows[x + run:x + 2 * run]
                r1, i1 = rows[x + 2 * run:x + 3 * run], rows[x + 3 * run:x + 4 * run]
                r2, i2 = rows[x + 4 * run:x + 5 * run], rows[x + 5 * run:x + 6 * run]
                r3, i3 = rows[x + 6 * run:x + 7 * run], rows[x + 7 * run:x + 8 * run]
                if c == 0:
                    for t in range(run):
                        out_re[t], out_im[t] = bodies.dot4_split(
                            ar, ai, br, bi, cr, ci, dr, di, r0[t], i0[t], r1[t], i1[t], r2[t],
                            i2[t], r3[t], i3[t])
                else:
                    for t in range(run):
                        part_re, part_im = bodies.dot4_split(
                            ar, ai, br, bi, cr, ci, dr, di, r0[t], i0[t], r1[t], i1[t], r2[t],
                            i2[t], r3[t], i3[t])
                        out_re[t] += part_re
                        out_im[t] += part_im


@njit(**_LOOP)
def _gather(re, im, sorted_qubits, offsets, data, d):
    """A dense matrix on any targets (control bits may be set in ``offsets``): the
    split-layout twin of ``updates.gather_update``, whose complex accumulator would need the
    tile's amplitudes as complex numbers."""
    dim = offsets.size
    gathered_re = np.empty(dim, dtype=re.dtype)
    gathered_im = np.empty(dim, dtype=re.dtype)
    for g in range(re.size >> sorted_qubits.size):
        base = bodies.insert_zero_bits(g, sorted_qubits)
        for m in range(dim):
            gathered_re[m] = re[base + offsets[m]]
            gathered_im[m] = im[base + offsets[m]]
        for row in range(dim):
            acc_re = 0.0
            acc_im = 0.0
            for col in range(dim):
                v = data[d + row * dim + col]
                acc_re += v.real * gathered_re[col] - v.imag * gathered_im[col]
                acc_im += v.real * gathered_im[col] + v.imag * gathered_re[col]
            re[base + offsets[row]] = acc_re
            im[base + offsets[row]] = acc_im


@njit(**_LOOP)
def _controlled1(re, im, sorted_qubits, control_bits, stride, data, d):
    """A controlled 2x2 matrix on split parts (the split-layout loop of
    ``cpu._controlled_matrix1_range``; the arithmetic is ``updates.dot2_split``)."""
    ar, ai = data[d].real, data[d].imag
    br, bi = data[d + 1].real, data[d + 1].imag
    cr, ci = data[d + 2].real, data[d + 2].imag
    dr, di = data[d + 3].real, data[d + 3].imag
    for g in range(re.size >> sorted_qubits.size):
        p = bodies.insert_zero_bits(g, sorted_qubits) | control_bits
        q = p | stride
        r0, i0, r1, i1 = re[p], im[p], re[q], im[q]
        re[p], im[p] = bodies.dot2_split(ar, ai, br, bi, r0, i0, r1, i1)
        re[q], im[q] = bodies.dot2_split(cr, ci, dr, di, r0, i0, r1, i1)


@njit(**_VECTOR)
def _diagonal(re, im, base, tile_bits, table, g, ints, data, cache_re, cache_im):
    """Build the chunk's distinct rows of phases once, then multiply the tile row by row."""
    h, a_start, row_of, row_bits, high, d = decode.diagonal_fields(table, g, ints, base,
                                                                   tile_bits)
    width = 1 << h
    for r in range(1 << high):
        bits = d + ints[row_bits + r]
        phases_re = cache_re[r * width:(r + 1) * width]
        phases_im = cache_im[r * width:(r + 1) * width]
        for x in range(width):
            v = data[bits + ints[a_start + x]]
            phases_re[x] = v.real
            phases_im[x] = v.imag
    for y in range(re.size >> h):
        r = ints[row_of + y]
        phases_re = cache_re[r * width:(r + 1) * width]
        phases_im = cache_im[r * width:(r + 1) * width]
        part_re = re[y * width:(y + 1) * width]
        part_im = im[y * width:(y + 1) * width]
        for x in range(width):
            a = part_re[x]
            b = part_im[x]
            part_re[x] = phases_re[x] * a - phases_im[x] * b
            part_im[x] = phases_re[x] * b + phases_im[x] * a


@njit(**_LOOP)
def _tile_gates(re, im, base, tile_bits, table, ints, data, scratch, cache):
    """Apply a tile pass's gates to one loaded tile whose chunk starts at ``base``; ``cache``
    (twice the tile's reals) holds a diagonal's phase rows or a dense matrix's rows."""
    for g in range(table.shape[0]):
        if not decode.row_applies(table, g, base):
            continue
        kind = table[g, KIND]
        d = table[g, DATA_START]
        small = scratch[4]  # the lane kernel's qubits and offsets, when it takes the row
        if kind == DENSE1:
            _dense1(re, im, table[g, DENSE1_QUBIT], data, d, scratch)
        elif kind == DENSE2:
            q_low, q_high, offset1, offset2 = decode.dense2_fields(table, g)
            if q_low >= LANE_QUBITS:
                small[0], small[1] = q_low, q_high
                small[2], small[3], small[4], small[5] = 0, offset1, offset2, offset1 + offset2
                _dense_lanes(re, im, small[0:2], small[2:6], data, d, cache)
            else:
                _dense2(re, im, q_low, q_high, offset1, offset2, data, d, scratch)
        elif kind == GATHER:
            start, middle, stop = decode.gather_fields(table, g)
            if ints[start] >= LANE_QUBITS:
                _dense_lanes(re, im, ints[start:middle], ints[middle:stop], data, d, cache)
            else:
                _gather(re, im, ints[start:middle], ints[middle:stop], data, d)
        elif kind == CONTROLLED1:
            start, stop, control_bits, stride = decode.controlled1_fields(table, g)
            if ints[start] >= LANE_QUBITS:
                small[0], small[1] = control_bits, control_bits + stride
                _dense_lanes(re, im, ints[start:stop], small[0:2], data, d, cache)
            else:
                _controlled1(re, im, ints[start:stop], control_bits, stride, data, d)
        else:
            _diagonal(re, im, base, tile_bits, table, g, ints, data, cache[:re.size],
                      cache[re.size:])


@njit(**_VECTOR)
def _move_runs(state, base, run_length, run_offsets, run_starts, positions, sources, re, im,
               load):
    """Copy a chunk's runs into the tile (``load``) or back, where the local order permutes
    the blocks of ``positions.size`` amplitudes of a run among themselves (``positions``:
    a block's local positions, ``sources`` their inverse). Each block is permuted through
    gathers that write contiguously (they stay scalar: LLVM cannot rule out that the tile and
    the state overlap); blocks of one amplitude are runs in local order, plain copies, which
    vectorise."""
    block = positions.size
    for r in range(run_offsets.size):
        source = base + run_offsets[r]
        local = run_starts[r]
        if block == 1:
            tile_re = re[local:local + run_length]
            tile_im = im[local:local + run_length]
            part = state[source:source + run_length]
            if load:
                for t in range(run_length):
                    tile_re[t] = part[t].real
                    tile_im[t] = part[t].imag
            else:
                for t in range(run_length):
                    part[t] = tile_re[t] + 1j * tile_im[t]
            continue
        for b in range(0, run_length, block):
            tile_re = re[local + b:local + b + block]
            tile_im = im[local + b:local + b + block]
            part = state[source + b:source + b + block]
            if load:
                part_re = part.real
                part_im = part.imag
                for j in range(block):
                    tile_re[j] = part_re[sources[j]]
                    tile_im[j] = part_im[sources[j]]
            else:
                for j in range(block):
                    part[j] = tile_re[positions[j]] + 1j * tile_im[positions[j]]


@njit(**_LOOP)
def _tile_pass_range(state, chunk_qubits, run_length, run_offsets, run_starts, run_positions,
                     permuted_bits, table, ints, data, start, stop):
    """Chunks ``start..stop`` of a tile pass: load each tile, apply the gates, store it. With
    ``permuted_bits`` at least 0 (``tiles.TilePass.permuted_bits``) the runs move block by
    block (:func:`_move_runs`), else amplitude by amplitude through ``run_positions``."""
    tile_bits = chunk_qubits.size
    re = np.empty(1 << tile_bits, dtype=state.real.dtype)
    im = np.empty(1 << tile_bits, dtype=state.real.dtype)
    cache = np.empty(2 << tile_bits, dtype=state.real.dtype)
    scratch = (np.empty(4 * BLOCK, dtype=state.real.dtype),
               np.empty(4 * BLOCK, dtype=state.real.dtype),
               np.empty(4 * BLOCK, dtype=state.real.dtype),
               np.empty(4 * BLOCK, dtype=state.real.dtype),
               np.empty(BLOCK + 4, dtype=np.int64), np.empty(BLOCK, dtype=np.int64))
    blocked = permuted_bits >= 0
    positions = run_positions[:1 << max(0, permuted_bits)]
    sources = np.empty(positions.size, dtype=np.int64)
    for j in range(positions.size):
        sources[positions[j]] = j
    for c in range(start, stop):
        base = bodies.insert_zero_bits(c, chunk_qubits)
        if blocked:
            _move_runs(state, base, run_length, run_offsets, run_starts, positions, sources,
                       re, im, True)
        else:
            for r in range(run_offsets.size):
                source = base + run_offsets[r]
                local = run_starts[r]
                for t in range(run_length):
                    a = state[source + t]
                    re[local + run_positions[t]] = a.real
                    im[local + run_positions[t]] = a.imag
        _tile_gates(re, im, base, tile_bits, table, ints, data, scratch, cache)
        if blocked:
            _move_runs(state, base, run_length, run_offsets, run_starts, positions, sources,
                       re, im, False)
        else:
            for r in range(run_offsets.size):
                source = base + run_offsets[r]
                local = run_starts[r]
                for t in range(run_length):
                    p = local + run_positions[t]
                    state[source + t] = re[p] + 1j * im[p]
