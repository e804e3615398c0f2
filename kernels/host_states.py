"""States in host memory, as NumPy arrays: the part of the
:class:`~gpuprovider.kernels.interface.KernelSet` that both CPU kernel sets
(:mod:`gpuprovider.kernels.cpu`, :mod:`gpuprovider.kernels.small`) share. The CPU runs each
operation as it is called, on the calling thread, so there are no streams and every marker is
complete. Imports no Numba."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import numpy as np

from .interface import COMPLETE, Marker


def new_stream() -> None:
    """None: the CPU runs each operation as it is called, on the calling thread."""
    return None


def stream_metadata(stream: Any) -> dict[str, Any]:
    """Nothing: a run in one process's memory has no more to report."""
    return {}


def side_by_side_runs(num_qubits: int) -> int:
    """1: these operations hold the GIL for most of their time, so runs go one by one."""
    return 1


def one_thread() -> AbstractContextManager[None]:
    """Nothing to change: every operation runs on the calling thread."""
    return nullcontext()


def allocate(num_qubits: int, dtype: np.dtype, stream: Any = None) -> np.ndarray:
    """A new state |0...0> of ``num_qubits`` qubits (``stream`` is ignored)."""
    state = np.zeros(1 << num_qubits, dtype=dtype)
    state[0] = 1
    return state


def from_host(amplitudes: np.ndarray, stream: Any = None) -> np.ndarray:
    """A new state holding a copy of ``amplitudes`` (``stream`` is ignored)."""
    return np.array(amplitudes, copy=True)


def reset_all(state: np.ndarray) -> None:
    """Set the state to |0...0>."""
    state.fill(0)
    state[0] = 1


def clone(state: np.ndarray) -> np.ndarray:
    """An independent copy of the state."""
    return state.copy()


def copy_into(destination: np.ndarray, source: np.ndarray) -> None:
    """Overwrite ``destination`` with ``source`` (same shape and dtype)."""
    np.copyto(destination, source)


def copy_from_host(state: np.ndarray, amplitudes: np.ndarray) -> None:
    """Overwrite the state with ``amplitudes`` (same size and dtype)."""
    np.copyto(state, amplitudes)


def to_host(state: np.ndarray) -> np.ndarray:
    """A host (NumPy) copy of the state."""
    return state.copy()


def record_marker(state: np.ndarray) -> Marker:
    """:data:`~gpuprovider.kernels.interface.COMPLETE`: the work has run when it returns."""
    return COMPLETE


def synchronize(state: np.ndarray) -> None:
    """Nothing to wait for: every operation has run when it returns."""


def release(state: np.ndarray) -> None:
    """Give the state's memory back (the garbage collector does it)."""
