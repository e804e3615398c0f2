"""NumPy kernels on a batch of small states: ``states`` is ``(sets, 2**n)``, one row per
parameter set, and every operation acts on all rows at once.

A gate's numbers are either one array for every row (a matrix ``(d, d)``, a diagonal or
phases ``(d,)``) or one per row (``(sets, d, d)``, ``(sets, d)``): NumPy broadcasting applies
either with the same code. The index tables are :mod:`gpuprovider.kernels.small`'s (cached
per ``(n, qubits)``), and :mod:`~gpuprovider.kernels.small`'s single-state kernels are these
on a one-row view. Index convention: :mod:`gpuprovider.kernels.interface`.
"""

from __future__ import annotations

import numpy as np

from .layout import controlled_layout
from .tables import gather_table, pauli_table, qubit_key, spelled_table


def num_qubits(states: np.ndarray) -> int:
    """The qubits of each state of a batch."""
    return states.shape[-1].bit_length() - 1


def allocate(sets: int, num_qubits: int, dtype: np.dtype) -> np.ndarray:
    """``sets`` states |0...0> of ``num_qubits`` qubits."""
    states = np.zeros((sets, 1 << num_qubits), dtype=dtype)
    states[:, 0] = 1
    return states


def apply_matrix(states: np.ndarray, qubits: np.ndarray, matrices: np.ndarray) -> None:
    """Apply a dense ``2**k``-square matrix (``(d, d)``, or ``(sets, d, d)``: one per row) to
    ``qubits`` (int64, argument order)."""
    if len(qubits) == 1 and states.flags.c_contiguous:  # in place on a view (reshaping a
        # C-contiguous array never copies): the qubit's bit is one axis
        qubit, n = int(qubits[0]), num_qubits(states)
        view = states.reshape(states.shape[0], 1 << (n - qubit - 1), 2, 1 << qubit)
        view[...] = np.matmul(matrices if matrices.ndim == 2 else matrices[:, None], view)
        return
    table = gather_table(num_qubits(states), qubit_key(qubits))
    states[:, table] = np.matmul(matrices, states[:, table])


def apply_controlled_matrix(states: np.ndarray, controls: np.ndarray, control_state: int,
                            targets: np.ndarray, matrices: np.ndarray) -> None:
    """Apply ``matrices`` (as :func:`apply_matrix`) to ``targets`` where bit ``j`` of
    ``control_state`` is the value of ``controls[j]``.

    Raises:
        ValueError: a qubit is named twice, or ``control_state`` does not fit the controls.
    """
    _, _, control_bits = controlled_layout(controls, control_state, targets)
    table = gather_table(num_qubits(states), qubit_key(targets), qubit_key(controls), control_bits)
    states[:, table] = np.matmul(matrices, states[:, table])


def apply_permutation(states: np.ndarray, qubits: np.ndarray, permutation: np.ndarray,
                      phases: np.ndarray) -> None:
    """Apply the matrix whose row ``r`` is ``phases[..., r]`` at column ``permutation[r]``
    (``phases`` ``(d,)`` or ``(sets, d)``)."""
    table = gather_table(num_qubits(states), qubit_key(qubits))
    states[:, table] = phases[..., :, None] * states[:, table[permutation]]


def apply_diagonal(states: np.ndarray, qubits: np.ndarray, diagonals: np.ndarray) -> None:
    """Multiply each amplitude by ``diagonals[..., m]``, ``m`` spelled by its bits at
    ``qubits`` (``diagonals`` ``(d,)`` or ``(sets, d)``)."""
    states *= diagonals[..., spelled_table(num_qubits(states), qubit_key(qubits))]


def prepare_qubits(states: np.ndarray, qubits: np.ndarray, amplitudes: np.ndarray) -> None:
    """Put ``qubits`` (int64, argument order), which must be |0>, into ``amplitudes``."""
    table = gather_table(num_qubits(states), qubit_key(qubits))
    states[:, table] = amplitudes[:, None] * states[:, table[0]][:, None, :]


def expectation_pauli_groups(states: np.ndarray, x_masks: np.ndarray, term_starts: np.ndarray,
                             z_masks: np.ndarray) -> np.ndarray:
    """``(sets, terms)`` float64: every term of a grouped Pauli list (group ``g``: X-mask
    ``x_masks[g]``, terms ``term_starts[g] <= t < term_starts[g + 1]`` with Z-masks
    ``z_masks[t]``) in every state.

    With ``P|j> = i**y (-1)**popcount(j & z) |j ^ x>`` (``y = popcount(x & z)``), the value is
    ``Re(i**y * sum_j (-1)**popcount(j & z) conj(psi[j ^ x]) psi[j])``.

    Raises:
        ValueError: a mask names a qubit the states do not have, or ``term_starts`` does not
            cut ``z_masks`` into ``x_masks.size`` groups (checked before any work).
    """
    groups = pauli_table(num_qubits(states), x_masks, term_starts, z_masks)
    amplitudes = states.astype(np.complex128, copy=False)
    values = np.zeros((states.shape[0], np.asarray(z_masks).size), dtype=np.float64)
    for start, stop, partners, signs, phases in groups:
        products = np.conj(amplitudes[:, partners]) * amplitudes
        values[:, start:stop] = (phases * (products @ signs)).real
    return values
