"""The operation set every device's kernels provide: :class:`KernelSet`, and its markers.

``kernels/cpu.py`` and ``kernels/cuda.py`` are modules that satisfy :class:`KernelSet` (the
contract test in ``tests/kernels/test_contract.py`` checks every operation on each kernel set
present, against NumPy). The engine, the saves and the primitives call only these names.

A *state* is whatever ``allocate`` returns (a NumPy array on the CPU, a ``CudaState`` on the
GPU); it belongs to the *stream* it was allocated on, and every operation on it is enqueued
there, in order. A *marker* recorded on a stream completes once everything enqueued before it
has run; :meth:`Marker.query` never blocks, which is how a job answers ``status()``.

Index convention (Qiskit's little-endian): amplitude ``i`` has qubit ``q`` in bit ``q`` of
``i``; for a gate on qubits ``(q_0, ..., q_{k-1})`` in argument order, row/column ``m`` of its
matrix sets bit ``q_j`` of the amplitude index to bit ``j`` of ``m``.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .policy import DevicePolicy


@runtime_checkable
class Marker(Protocol):
    """A point in a stream's work: complete once everything enqueued before it has run."""

    def query(self) -> bool:
        """True once complete; never blocks."""

    def wait(self) -> None:
        """Block until complete."""


class CompleteMarker:
    """A marker of work that has already run (the CPU runs its work as it is enqueued)."""

    __slots__ = ()

    def query(self) -> bool:
        return True

    def wait(self) -> None:
        return None

    def __repr__(self) -> str:
        return "CompleteMarker()"


COMPLETE = CompleteMarker()


@runtime_checkable
class KernelSet(Protocol):
    """The statevector operations of one device (see the module docstring).

    Arguments named ``qubits``, ``controls`` and ``targets`` are int64 arrays in argument
    order; matrices and diagonals have the state's dtype; masks are Python ints.
    """

    POLICY: DevicePolicy

    # --- streams, states and markers ----------------------------------------------------

    def new_stream(self) -> Any:
        """A stream for one run's states (on the GPU a non-blocking CUDA stream)."""

    def stream_metadata(self, stream: Any) -> dict[str, Any]:
        """What a run's ``stream`` adds to its experiment's metadata (a distributed state's
        exchanges); empty where a run has nothing to add."""

    def side_by_side_runs(self, num_qubits: int) -> int:
        """How many runs of ``num_qubits``-qubit states gain from going at once, each on its
        own host thread inside :meth:`one_thread` (the cores that one run's parallel kernels
        would share); 1 where runs go one after another (a GPU's stream, ranks that run in
        step)."""

    def one_thread(self) -> AbstractContextManager[None]:
        """Inside it, the calling thread's operations run on that thread alone."""

    def allocate(self, num_qubits: int, dtype: np.dtype, stream: Any = None) -> Any:
        """A new state |0...0> on ``stream`` (None: a new stream)."""

    def from_host(self, amplitudes: np.ndarray, stream: Any = None) -> Any:
        """A new state holding a copy of ``amplitudes`` (a NumPy vector of 2**n entries)."""

    def to_host(self, state: Any) -> np.ndarray:
        """A NumPy copy of the amplitudes; waits for the state's stream."""

    def reset_all(self, state: Any) -> None:
        """Set the state to |0...0>."""

    def clone(self, state: Any) -> Any:
        """An independent copy of the state, on the same stream."""

    def copy_into(self, destination: Any, source: Any) -> None:
        """Overwrite ``destination`` with ``source`` (same size and dtype)."""

    def copy_from_host(self, state: Any, amplitudes: np.ndarray) -> None:
        """Overwrite the state with ``amplitudes`` (a NumPy vector of its size and dtype)."""

    def record_marker(self, state: Any) -> Marker:
        """A marker after everything enqueued on the state's stream so far."""

    def synchronize(self, state: Any) -> None:
        """Wait until everything enqueued on the state's stream has run."""

    def release(self, state: Any) -> None:
        """Give the state's memory back now."""

    # --- unitary operations ---------------------------------------------------------------

    def apply_matrix(self, state: Any, qubits: np.ndarray, matrix: np.ndarray) -> None:
        """Apply a dense ``2**k x 2**k`` matrix to ``qubits``."""

    def apply_controlled_matrix(self, state: Any, controls: np.ndarray, control_state: int,
                                targets: np.ndarray, matrix: np.ndarray) -> None:
        """Apply ``matrix`` to ``targets`` where bit ``j`` of ``control_state`` is the value
        of ``controls[j]``; ValueError for a repeated qubit or a ``control_state`` that does
        not fit."""

    def apply_tile_pass(self, state: Any, tile_pass: Any) -> None:
        """Apply a tile pass (:class:`~gpuprovider.kernels.tiles.TilePass`) in one read and
        one write of the state."""

    def apply_permutation(self, state: Any, qubits: np.ndarray, permutation: np.ndarray,
                          phases: np.ndarray) -> None:
        """Apply the matrix whose row ``r`` is ``phases[r]`` at column ``permutation[r]``."""

    def prepare_qubits(self, state: Any, qubits: np.ndarray, amplitudes: np.ndarray) -> None:
        """Put ``qubits``, which must be |0>, into ``amplitudes``."""

    def apply_diagonal(self, state: Any, qubits: np.ndarray, diagonal: np.ndarray) -> None:
        """Multiply each amplitude by ``diagonal[m]``, ``m`` spelled by its bits at
        ``qubits``."""

    # --- measurement and read-out ---------------------------------------------------------

    def probability_of_one(self, state: Any, qubit: int) -> float:
        """Probability that measuring ``qubit`` gives 1."""

    def project(self, state: Any, qubit: int, outcome: int, probability: float,
                to_zero: bool = False) -> None:
        """Collapse ``qubit`` onto ``outcome`` (seen with ``probability``) and renormalise;
        with ``to_zero`` then flip the qubit to 0 (a reset)."""

    def sample(self, state: Any, uniforms: np.ndarray) -> np.ndarray:
        """Basis indices drawn from |amplitude|**2, one per uniform in [0, 1), sorted."""

    def probabilities(self, state: Any) -> np.ndarray:
        """|amplitude|**2 of every basis state, as float64 on the host."""

    def marginal_probabilities(self, state: Any, qubits: np.ndarray) -> np.ndarray:
        """Entry ``m``: probability that ``qubits[j]`` reads bit ``j`` of ``m`` for all
        ``j``, as float64 on the host."""

    def expectation_pauli(self, state: Any, x_mask: int, z_mask: int) -> complex:
        """``<psi|P|psi>`` of the Pauli ``(x_mask, z_mask)`` (real; convention:
        :func:`~gpuprovider.kernels.layout.pauli_pairing`)."""

    def expectation_paulis(self, state: Any, x_mask: int, z_masks: np.ndarray) -> np.ndarray:
        """:meth:`expectation_pauli` of every ``(x_mask, z_masks[t])``, float64."""

    def expectation_pauli_groups(self, state: Any, x_masks: np.ndarray,
                                 term_starts: np.ndarray, z_masks: np.ndarray) -> np.ndarray:
        """Every term of a grouped Pauli list (group ``g``: X-mask ``x_masks[g]``, terms
        ``term_starts[g] <= t < term_starts[g + 1]`` with Z-masks ``z_masks[t]``), float64."""


OPERATIONS = tuple(
    name for name in KernelSet.__dict__
    if not name.startswith("_") and callable(getattr(KernelSet, name))
)
"""The names of the operations every kernel set provides."""
