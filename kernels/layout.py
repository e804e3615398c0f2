"""Host-side index arithmetic shared by the kernels of every device and by the lowering."""

from __future__ import annotations

import numpy as np


def inverse_cdf(probabilities: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """The index each of ``uniforms`` (in [0, 1)) draws from ``probabilities`` (non-negative,
    not necessarily normalised) by inverse transform, int64. A target that rounding puts at
    the very end goes to the last index with any probability."""
    cumulative = np.cumsum(probabilities)
    indices = np.searchsorted(cumulative, uniforms * cumulative[-1], side="right")
    last = int(np.count_nonzero(cumulative < cumulative[-1]))
    return np.minimum(indices, last).astype(np.int64)


def inverse_cdf_rows(probabilities: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """:func:`inverse_cdf` row by row: the index ``uniforms[r]`` draws from row ``r`` of
    ``probabilities`` (``(rows, k)``), int64 ``(rows,)``, with the same rule at the end."""
    cumulative = np.cumsum(probabilities, axis=1)
    totals = cumulative[:, -1:]
    indices = np.count_nonzero(cumulative <= uniforms[:, None] * totals, axis=1)
    last = np.count_nonzero(cumulative < totals, axis=1)
    return np.minimum(indices, last).astype(np.int64)


def draw_sorted(probabilities: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """:func:`inverse_cdf` of the sorted ``uniforms``: the indices in sorted order."""
    return inverse_cdf(probabilities, np.sort(uniforms))


def basis_offsets(qubits) -> np.ndarray:
    """Index offset in the full state of each basis state ``m`` of ``qubits`` (argument
    order): bit ``j`` of ``m`` sets bit ``qubits[j]`` of the offset."""
    rows = np.arange(1 << len(qubits), dtype=np.int64)
    offsets = np.zeros_like(rows)
    for j, q in enumerate(qubits):
        offsets |= ((rows >> j) & 1) << int(q)
    return offsets


def permutation_matrix(permutation: np.ndarray, phases: np.ndarray) -> np.ndarray:
    """The dense matrix whose row ``r`` is ``phases[r]`` at column ``permutation[r]`` (one
    per row of ``phases`` when it has leading axes)."""
    dim = permutation.size
    dense = np.zeros(phases.shape + (dim,), dtype=phases.dtype)
    dense[..., np.arange(dim), permutation] = phases
    return dense


def kept_bits(permutation: np.ndarray) -> list[int]:
    """The argument qubits ``j`` a permutation never changes: bit ``j`` of every row ``r``
    equals bit ``j`` of ``permutation[r]`` (a CX's control). On such a qubit the
    permutation moves no amplitude, so a distributed state needs no exchange for it."""
    rows = np.arange(permutation.size, dtype=np.int64)
    changed = np.bitwise_or.reduce(rows ^ np.asarray(permutation, dtype=np.int64))
    return [j for j in range(permutation.size.bit_length() - 1) if not (changed >> j) & 1]


def unmixed_bits(matrix: np.ndarray) -> list[int]:
    """The argument qubits ``j`` a dense matrix never changes: every entry whose row and
    column differ in bit ``j`` is zero (a control, or a diagonal on that qubit times a gate on
    the others). The matrix is then a block per value of those bits."""
    rows = np.arange(matrix.shape[0], dtype=np.int64)
    differ = rows[:, None] ^ rows[None, :]
    changed = np.bitwise_or.reduce(differ[matrix != 0], initial=0)
    return [j for j in range(matrix.shape[0].bit_length() - 1) if not (changed >> j) & 1]


def controlled_layout(
    controls, control_state: int, targets
) -> tuple[np.ndarray, np.ndarray, int]:
    """How the gather kernels apply a matrix on ``targets`` only where ``controls`` read
    ``control_state`` (bit ``j`` is the wanted value of ``controls[j]``).

    Returns ``(sorted_qubits, offsets, control_bits)``: a work item ``g`` is the index with zeros
    at all of ``sorted_qubits`` (controls and targets) whose other bits spell ``g``; row ``m``
    of the matrix acts on that index plus ``offsets[m]``, which is ``basis_offsets(targets)[m]``
    with the ``control_bits`` set.

    Raises:
        ValueError: a qubit is named twice, or ``control_state`` does not fit the controls.
    """
    controls = np.asarray(controls, dtype=np.int64)
    targets = np.asarray(targets, dtype=np.int64)
    qubits = np.concatenate((controls, targets))
    if np.unique(qubits).size != qubits.size:
        raise ValueError(
            f"controls {controls.tolist()} and targets {targets.tolist()} must be distinct qubits"
        )
    if not 0 <= control_state < (1 << controls.size):
        raise ValueError(
            f"control_state {control_state} does not fit {controls.size} controls "
            f"(0 .. {(1 << controls.size) - 1})"
        )
    control_bits = 0
    for j, q in enumerate(controls):
        control_bits |= ((control_state >> j) & 1) << int(q)
    return np.sort(qubits), basis_offsets(targets) | control_bits, control_bits


def pauli_pairing(x_mask: int, z_mask: int, num_qubits: int) -> tuple[int, bool, float]:
    """How the kernels evaluate ``<psi| P |psi>`` for the Pauli string of ``x_mask, z_mask``.

    ``P`` is the tensor product over qubits ``q`` of I, X (bit ``q`` set in ``x_mask`` only),
    Z (in ``z_mask`` only) or Y (in both), with Y the Hermitian ``[[0, -i], [i, 0]] = iXZ``
    and no overall phase: ``P = i**y * X^x Z^z`` with ``y = popcount(x_mask & z_mask)``, so
    ``P|j> = i**y * (-1)**popcount(j & z_mask) |j ^ x_mask>``. A Qiskit label such as ``"XZY"``
    (rightmost character is qubit 0) gives ``x_mask = 0b101, z_mask = 0b011``.

    The kernels visit each pair of amplitudes ``a0, a1`` at ``(i0, i1)`` once, ``i0`` having
    bit ``pivot`` clear, sum a float64 term per pair, and the expectation is ``scale`` times
    the sum. With ``s(i) = (-1)**popcount(i & z_mask)``:

    - ``x_mask == 0`` (diagonal; ``pivot`` 0, ``i1 = i0 | 1``): the term is
      ``s(i0) * |a0|**2 + s(i1) * |a1|**2`` and ``scale`` is 1.
    - otherwise (``pivot`` the highest bit of ``x_mask``, ``i1 = i0 ^ x_mask``): the pair's
      two terms of ``<psi| P |psi>`` add up to ``i**y * s(i0) * (c + (-1)**y * conj(c))``,
      ``c = conj(a1) * a0``, that is ``scale * s(i0) * t`` with ``t = Re(c)``, or ``Im(c)``
      when ``use_imag`` (``y`` odd), and ``scale = 2 * (-1)**((y + 1) // 2)``.

    Returns:
        ``(pivot, use_imag, scale)``.

    Raises:
        ValueError: a mask is negative or names a qubit beyond ``num_qubits``.
    """
    x_mask, z_mask = int(x_mask), int(z_mask)
    if min(x_mask, z_mask) < 0 or (x_mask | z_mask) >> num_qubits:
        raise ValueError(
            f"Pauli masks x={x_mask:#x}, z={z_mask:#x} must name qubits 0 .. {num_qubits - 1}"
        )
    if x_mask == 0:
        return 0, False, 1.0
    y = (x_mask & z_mask).bit_count()
    return x_mask.bit_length() - 1, bool(y & 1), 2.0 * (-1) ** ((y + 1) // 2)


_BITWISE_COUNT = getattr(np, "bitwise_count", None)
"""NumPy >= 2.0 counts bits in one instruction per value."""


def popcount(values: np.ndarray) -> np.ndarray:
    """Set bits of each non-negative int64 (NumPy's ``bitwise_count`` where it has one, else
    SWAR; exact for all 63 bits)."""
    if _BITWISE_COUNT is not None:
        return _BITWISE_COUNT(np.asarray(values, dtype=np.int64)).astype(np.int64)
    v = np.asarray(values).astype(np.uint64)
    v = v - ((v >> np.uint64(1)) & np.uint64(0x5555555555555555))
    v = (v & np.uint64(0x3333333333333333)) + ((v >> np.uint64(2)) & np.uint64(0x3333333333333333))
    v = (v + (v >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return ((v * np.uint64(0x0101010101010101)) >> np.uint64(56)).astype(np.int64)


def group_by_x_mask(x_masks: np.ndarray, z_masks: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pauli terms ``(x_masks[t], z_masks[t])`` in the grouped form
    ``expectation_pauli_groups`` takes.

    Returns:
        ``(group_x_masks, term_starts, grouped_z_masks, order)``: the terms sorted by X-mask
        (then Z-mask), ``order[k]`` being the input term at grouped position ``k``.
    """
    x_masks = np.asarray(x_masks, dtype=np.int64)
    z_masks = np.asarray(z_masks, dtype=np.int64)
    order = np.lexsort((z_masks, x_masks))
    x_sorted = x_masks[order]
    starts = np.flatnonzero(np.r_[x_sorted.size > 0, x_sorted[1:] != x_sorted[:-1]])
    return x_sorted[starts], np.r_[starts, order.size].astype(np.int64), z_masks[order], order


def pauli_groups_layout(
    x_masks: np.ndarray, term_starts: np.ndarray, z_masks: np.ndarray, num_qubits: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`pauli_pairing` of every term of a grouped Pauli list, checked before any work.

    Group ``g`` has the X-mask ``x_masks[g]`` and owns the terms
    ``term_starts[g] <= t < term_starts[g + 1]``, each with its Z-mask ``z_masks[t]``.

    Returns:
        ``(pivots, use_imag, scales)``: the pivot of each group (int64, shape (G,)) and
        ``use_imag`` (bool) and ``scale`` (float64) of each term (shape (T,)).

    Raises:
        ValueError: ``term_starts`` does not cut ``z_masks`` into ``x_masks.size`` groups, or a
            mask is negative or names a qubit beyond ``num_qubits``.
    """
    groups, terms = x_masks.size, z_masks.size
    if (term_starts.shape != (groups + 1,) or term_starts[0] != 0
            or term_starts[-1] != terms or np.any(np.diff(term_starts) < 0)):
        raise ValueError(
            f"term_starts {term_starts.tolist()} must rise from 0 to {terms} (the number of "
            f"z_masks) in {groups + 1} entries (one per X-mask, plus one)"
        )
    term_x = np.repeat(x_masks, np.diff(term_starts))
    for x, z in ((x_masks, np.zeros_like(x_masks)), (term_x, z_masks)):
        bad = (x < 0) | (z < 0) | (((x | z) >> num_qubits) != 0)
        if np.any(bad):
            first = int(np.argmax(bad))
            pauli_pairing(int(x[first]), int(z[first]), num_qubits)  # raises, naming them
    smeared = x_masks.copy()  # every bit below the highest set: popcount is the bit length
    for shift in (1, 2, 4, 8, 16, 32):
        smeared |= smeared >> shift
    pivots = np.maximum(popcount(smeared) - 1, 0)
    y = popcount(term_x & z_masks)
    scales = np.where(term_x == 0, 1.0, 2.0 * (1 - 2 * (((y + 1) // 2) & 1)))
    return pivots, (y & 1).astype(np.bool_), scales
