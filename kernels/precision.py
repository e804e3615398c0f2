"""The two precisions a statevector can be held in: the one table of names and dtypes."""

from __future__ import annotations

import numpy as np

PRECISIONS: dict[str, type[np.complexfloating]] = {
    "double": np.complex128,
    "single": np.complex64,
}


def dtype_of(precision: str) -> np.dtype:
    """The complex dtype of a state held in ``precision`` ("double" or "single")."""
    return np.dtype(PRECISIONS[precision])


def bytes_per_amplitude(precision: str) -> int:
    """Bytes one amplitude takes in ``precision``."""
    return dtype_of(precision).itemsize


def statevector_bytes(num_qubits: int, precision: str) -> int:
    """Bytes a statevector of ``num_qubits`` qubits takes in ``precision``."""
    return bytes_per_amplitude(precision) << num_qubits
