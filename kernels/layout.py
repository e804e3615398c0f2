"""Host-side index arithmetic shared by the kernels of every device and by the lowering."""

from __future__ import annotations

import numpy as np


def basis_offsets(qubits) -> np.ndarray:
    """Index offset in the full state of each basis state ``m`` of ``qubits`` (argument
    order): bit ``j`` of ``m`` sets bit ``qubits[j]`` of the offset."""
    rows = np.arange(1 << len(qubits), dtype=np.int64)
    offsets = np.zeros_like(rows)
    for j, q in enumerate(qubits):
        offsets |= ((rows >> j) & 1) << int(q)
    return offsets


def permutation_matrix(permutation: np.ndarray, phases: np.ndarray) -> np.ndarray:
    """The dense matrix whose row ``r`` is ``phases[r]`` at column ``permutation[r]``."""
    dim = permutation.size
    dense = np.zeros((dim, dim), dtype=phases.dtype)
    dense[np.arange(dim), permutation] = phases
    return dense


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
