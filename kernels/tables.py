"""Index tables for the NumPy kernels (:mod:`gpuprovider.kernels.small`,
:mod:`gpuprovider.kernels.batch`), cached per ``(n, qubits)``: read-only int64 arrays."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .layout import basis_offsets, pauli_groups_layout, popcount


def qubit_key(qubits: np.ndarray) -> tuple[int, ...]:
    """``qubits`` as the hashable key of the tables."""
    return tuple(np.asarray(qubits, dtype=np.int64).tolist())

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


PAULI_TABLE_CACHED_ENTRIES = 1 << 14
"""Largest sign table (indices times terms) :func:`pauli_table` keeps: 128 KiB, 128 MiB for
the whole cache at most."""


@lru_cache(maxsize=1024)
def _pauli_table(num_qubits: int, x_masks: bytes, term_starts: bytes, z_masks: bytes
                 ) -> tuple[tuple[int, int, np.ndarray, np.ndarray, np.ndarray], ...]:
    x = np.frombuffer(x_masks, dtype=np.int64)
    starts = np.frombuffer(term_starts, dtype=np.int64)
    z = np.frombuffer(z_masks, dtype=np.int64)
    pauli_groups_layout(x, starts, z, num_qubits)  # raises before anything is cached
    index = np.arange(1 << num_qubits, dtype=np.int64)
    groups = []
    for group, x_mask in enumerate(x.tolist()):
        start, stop = int(starts[group]), int(starts[group + 1])
        if start == stop:
            continue
        zs = z[start:stop]
        partners = index ^ x_mask
        signs = 1.0 - 2.0 * (popcount(index[:, None] & zs[None, :]) & 1)
        phases = 1j ** (popcount(zs & x_mask) % 4)
        for table in (partners, signs, phases):
            table.flags.writeable = False
        groups.append((start, stop, partners, signs, phases))
    return tuple(groups)


def pauli_table(num_qubits: int, x_masks: np.ndarray, term_starts: np.ndarray,
                z_masks: np.ndarray) -> tuple[tuple[int, int, np.ndarray, np.ndarray,
                                                    np.ndarray], ...]:
    """Per non-empty group of a grouped Pauli list (checked by
    :func:`~gpuprovider.kernels.layout.pauli_groups_layout`), ``(start, stop, partners,
    signs, phases)``: its terms ``start .. stop``, the index ``j ^ x`` of every index ``j``,
    each term's sign ``(-1)**popcount(j & z)`` per index (``(2**n, terms)``) and ``i**y``
    (cached per masks where the signs are at most :data:`PAULI_TABLE_CACHED_ENTRIES`: a noisy
    trajectory reads the same Kraus channel again and again)."""
    z_masks = np.ascontiguousarray(z_masks, dtype=np.int64)
    build = _pauli_table if z_masks.size << num_qubits <= PAULI_TABLE_CACHED_ENTRIES \
        else _pauli_table.__wrapped__
    return build(num_qubits, np.ascontiguousarray(x_masks, dtype=np.int64).tobytes(),
                 np.ascontiguousarray(term_starts, dtype=np.int64).tobytes(), z_masks.tobytes())
