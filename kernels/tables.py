"""Index tables for the NumPy kernels (:mod:`gpuprovider.kernels.small`,
:mod:`gpuprovider.kernels.batch`), cached per ``(n, qubits)``: read-only int64 arrays."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .layout import basis_offsets


def qubit_key(qubits: np.ndarray) -> tuple[int, ...]:
    """``qubits`` as the hashable key of the tables."""
    return tuple(int(q) for q in qubits)

@lru_cache(maxsize=4096)
def _groups(num_qubits: int, zero_qubits: tuple[int, ...], set_bits: int) -> np.ndarray:
    """Every index with zeros at ``zero_qubits`` and the bits of ``set_bits`` set, ascending
    (``set_bits`` lies within ``zero_qubits``)."""
    free = np.arange(1 << (num_qubits - len(zero_qubits)), dtype=np.int64)
    index = np.zeros_like(free)
    source = 0
    zero = set(zero_qubits)
    for bit in range(num_qubits):
        if bit not in zero:
            index |= ((free >> source) & 1) << bit
            source += 1
    index |= set_bits
    index.flags.writeable = False
    return index


@lru_cache(maxsize=4096)
def gather_table(num_qubits: int, qubits: tuple[int, ...], zero_qubits: tuple[int, ...] = (),
            set_bits: int = 0) -> np.ndarray:
    """``(2**k, groups)`` int64: row ``m`` holds the indices where ``qubits`` spell ``m``,
    restricted to those where the ``zero_qubits`` (other than ``qubits``) read ``set_bits``."""
    base = _groups(num_qubits, tuple(sorted({*qubits, *zero_qubits})), set_bits)
    table = basis_offsets(qubits)[:, None] | base[None, :]
    table.flags.writeable = False
    return table


@lru_cache(maxsize=4096)
def spelled_table(num_qubits: int, qubits: tuple[int, ...]) -> np.ndarray:
    """For every index, the number its bits at ``qubits`` spell (bit ``j`` from
    ``qubits[j]``)."""
    index = np.arange(1 << num_qubits, dtype=np.int64)
    spelled = np.zeros_like(index)
    for j, q in enumerate(qubits):
        spelled |= ((index >> q) & 1) << j
    spelled.flags.writeable = False
    return spelled
