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
