"""NumPy kernels for small CPU states: the :class:`~gpuprovider.kernels.interface.KernelSet` the
CPU runs states of fewer than ``POLICY.small_state_qubits`` qubits on.

At that size an operation touches a few thousand amplitudes, which NumPy's vectorised
gathers do in microseconds, while the first Numba dispatch in a process loads Numba and its
cached machine code (about a third of a second): a script that runs a small circuit, or a VQE
on a few qubits, never pays for it. States are the same NumPy arrays as those of
:mod:`gpuprovider.kernels.cpu`, so either set may act on a state.

Each operation gathers the state into a ``(2**k, 2**(n - k))`` view with an index table cached
per ``(n, qubits)`` (:mod:`gpuprovider.kernels.tables`): row ``m`` holds the amplitudes whose
``qubits`` spell ``m`` (bit ``j`` of ``m`` at ``qubits[j]``), so a ``k``-qubit matrix is one
matrix product. The gates and the Pauli read-out are :mod:`gpuprovider.kernels.batch`'s on a
one-row batch. Index convention and contract: :mod:`gpuprovider.kernels.interface`.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from . import batch
from .host_states import (  # noqa: F401 - the KernelSet's state operations
    allocate,
    clone,
    copy_from_host,
    copy_into,
    from_host,
    new_stream,
    one_thread,
    record_marker,
    release,
    reset_all,
    side_by_side_runs,
    stream_metadata,
    synchronize,
    to_host,
)
from .layout import draw_sorted
from .policy import CPU_POLICY
from .tables import qubit_key, spelled_table

POLICY = CPU_POLICY


def _num_qubits(state: np.ndarray) -> int:
    return state.size.bit_length() - 1


# --- unitary operations ----------------------------------------------------------------------


def apply_matrix(state: np.ndarray, qubits: np.ndarray, matrix: np.ndarray) -> None:
    """Apply a dense ``2**k x 2**k`` matrix to ``qubits`` (int64, argument order)."""
    batch.apply_matrix(state[None, :], qubits, matrix)


def apply_controlled_matrix(
    state: np.ndarray, controls: np.ndarray, control_state: int, targets: np.ndarray,
    matrix: np.ndarray,
) -> None:
    """Apply ``matrix`` to ``targets`` where bit ``j`` of ``control_state`` is the value of
    ``controls[j]``; the other amplitudes are left unchanged.

    Raises:
        ValueError: a qubit is named twice, or ``control_state`` does not fit the controls.
    """
    batch.apply_controlled_matrix(state[None, :], controls, control_state, targets, matrix)


def apply_tile_pass(state: np.ndarray, tile_pass: Any) -> None:
    """Apply a tile pass with the Numba kernels (a small state is never planned into tile
    passes, so this only loads them when a caller asks for one)."""
    importlib.import_module("gpuprovider.kernels.cpu").apply_tile_pass(state, tile_pass)


def apply_permutation(
    state: np.ndarray, qubits: np.ndarray, permutation: np.ndarray, phases: np.ndarray
) -> None:
    """Apply the matrix whose row ``r`` is ``phases[r]`` at column ``permutation[r]``."""
    batch.apply_permutation(state[None, :], qubits, permutation, phases)


def prepare_qubits(state: np.ndarray, qubits: np.ndarray, amplitudes: np.ndarray) -> None:
    """Put ``qubits`` (int64, argument order), which must be |0>, into ``amplitudes``."""
    batch.prepare_qubits(state[None, :], qubits, amplitudes)


def apply_diagonal(state: np.ndarray, qubits: np.ndarray, diagonal: np.ndarray) -> None:
    """Multiply each amplitude by ``diagonal[m]``, ``m`` spelled by its bits at ``qubits``."""
    batch.apply_diagonal(state[None, :], qubits, diagonal)


# --- measurement and read-out ----------------------------------------------------------------


def probabilities(state: np.ndarray) -> np.ndarray:
    """|amplitude|**2 of every basis state, as float64."""
    return state.real.astype(np.float64) ** 2 + state.imag.astype(np.float64) ** 2


def probability_of_one(state: np.ndarray, qubit: int) -> float:
    """Probability that measuring ``qubit`` gives 1."""
    halves = probabilities(state).reshape(-1, 2, 1 << qubit)
    return float(halves[:, 1, :].sum())


def project(state: np.ndarray, qubit: int, outcome: int, probability: float,
            to_zero: bool = False) -> None:
    """Collapse ``qubit`` onto ``outcome`` (seen with ``probability``) and renormalise; with
    ``to_zero`` the qubit is then flipped to 0, which together is a reset."""
    halves = state.reshape(-1, 2, 1 << qubit)
    scale = state.dtype.type(1.0 / np.sqrt(probability))
    kept = halves[:, outcome, :] * scale
    halves[:, 1 - outcome, :] = 0
    if to_zero:
        halves[:, 1, :] = 0
        halves[:, 0, :] = kept
    else:
        halves[:, outcome, :] = kept


def sample(state: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """Basis indices drawn from |amplitude|**2, one per uniform in [0, 1), in sorted order."""
    return draw_sorted(probabilities(state), uniforms)


def marginal_probabilities(state: np.ndarray, qubits: np.ndarray) -> np.ndarray:
    """Entry ``m``: probability that ``qubits[j]`` reads bit ``j`` of ``m`` for every ``j``,
    as float64."""
    spelled = spelled_table(_num_qubits(state), qubit_key(qubits))
    return np.bincount(spelled, weights=probabilities(state), minlength=1 << qubits.size)


def expectation_pauli(state: np.ndarray, x_mask: int, z_mask: int) -> complex:
    """``<psi| P |psi>`` of the Pauli ``(x_mask, z_mask)`` (real; convention:
    :func:`~gpuprovider.kernels.layout.pauli_pairing`).

    Raises:
        ValueError: a mask names a qubit the state does not have.
    """
    return complex(expectation_paulis(state, x_mask, np.array([z_mask]))[0])


def expectation_paulis(state: np.ndarray, x_mask: int, z_masks: np.ndarray) -> np.ndarray:
    """:func:`expectation_pauli` of every ``(x_mask, z_masks[t])``, float64."""
    z_masks = np.asarray(z_masks, dtype=np.int64)
    return expectation_pauli_groups(state, np.array([x_mask], dtype=np.int64),
                                    np.array([0, z_masks.size], dtype=np.int64), z_masks)


def expectation_pauli_groups(state: np.ndarray, x_masks: np.ndarray, term_starts: np.ndarray,
                             z_masks: np.ndarray) -> np.ndarray:
    """Every term of a grouped Pauli list (group ``g``: X-mask ``x_masks[g]``, terms
    ``term_starts[g] <= t < term_starts[g + 1]`` with Z-masks ``z_masks[t]``), float64.

    With ``P|j> = i**y (-1)**popcount(j & z) |j ^ x>`` (``y = popcount(x & z)``), the value is
    ``Re(i**y * sum_j (-1)**popcount(j & z) conj(psi[j ^ x]) psi[j])``.

    Raises:
        ValueError: a mask names a qubit the state does not have, or ``term_starts`` does not
            cut ``z_masks`` into ``x_masks.size`` groups (checked before any work).
    """
    return batch.expectation_pauli_groups(state[None, :], x_masks, term_starts, z_masks)[0]
