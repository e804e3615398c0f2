"""The shot-memory format: each shot's clbits as a row of 64-bit words, and what it costs.

Clbit ``c`` of a shot is bit ``c % 64`` of word ``c // 64`` of its row (a ``uint64`` array of
shape ``(shots, words)``). The engine writes rows, the Result turns them into hexadecimal
keys, and the sampler packs registers out of them into ``BitArray`` bytes.
"""

from __future__ import annotations

import numpy as np

from .device import host_available_memory
from .exceptions import CapacityError, format_bytes

WORD_BITS = 64
PER_SHOT_BYTES = 16
"""Host bytes per shot while sampling with memory kept: a uniform and an index."""
RESULT_BYTES_PER_SHOT = 72
"""Host bytes per shot of a Result's memory: a hex string and its list entry."""


def words_of(num_clbits: int) -> int:
    """64-bit words of one shot's clbits."""
    return max(1, -(-num_clbits // WORD_BITS))


def memory_bytes(num_clbits: int, shots: int) -> int:
    """Host bytes a run needs to keep every shot's clbits (and sample them)."""
    return shots * (8 * words_of(num_clbits) + PER_SHOT_BYTES)


def clbits_row(clbits: int, words: int) -> np.ndarray:
    """The ``(1, words)`` row of a clbit integer."""
    row = np.empty((1, words), dtype=np.uint64)
    for word in range(words):
        row[0, word] = (clbits >> (WORD_BITS * word)) & ((1 << WORD_BITS) - 1)
    return row


def set_clbit(rows: np.ndarray, clbit: int, bits: np.ndarray) -> None:
    """Set ``clbit`` of every row to the matching entry of ``bits`` (0 or 1)."""
    word, bit = divmod(clbit, WORD_BITS)
    mask = np.uint64(1) << np.uint64(bit)
    rows[:, word] = (rows[:, word] & ~mask) | (bits.astype(np.uint64) << np.uint64(bit))


def hex_keys(rows: np.ndarray) -> list[str]:
    """``hex`` of each row's clbit integer (Qiskit's count and memory keys)."""
    if rows.shape[1] == 1:
        return list(map(hex, rows[:, 0].tolist()))
    keys = []
    for row in rows:
        value = 0
        for word_index, word in enumerate(row):
            value |= int(word) << (WORD_BITS * word_index)
        keys.append(hex(value))
    return keys


def packed_bits(rows: np.ndarray, clbits: np.ndarray) -> np.ndarray:
    """The bits ``clbits`` of every row as ``BitArray`` stores them: big-endian bytes, the
    first of ``clbits`` the lowest bit of the last byte."""
    words, offsets = np.divmod(clbits, WORD_BITS)
    bits = ((rows[:, words] >> offsets.astype(np.uint64)) & np.uint64(1)).astype(np.uint8)
    num_bytes = -(-clbits.size // 8)
    padding = num_bytes * 8 - clbits.size
    return np.packbits(np.pad(bits[:, ::-1], ((0, 0), (padding, 0))), axis=1)


def check_shot_memory(needed: int, what: str, hint: str = "") -> None:
    """CapacityError unless ``needed`` host bytes of per-shot data fit in free memory."""
    available = host_available_memory()
    if needed > available:
        raise CapacityError(
            f"{what}: that needs {format_bytes(needed)} of host memory but "
            f"{format_bytes(available)} is free; run fewer shots{hint}"
        )
