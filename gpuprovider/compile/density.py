"""Noisy circuits on few qubits as one density-matrix simulation (qiskit-aer's
``method="density_matrix"``).

A density matrix ``rho`` of ``n`` qubits is held as a statevector of ``2n`` qubits:
amplitude ``i + 2^n j`` is ``rho[i, j]``, so qubit ``q`` of the rows is position ``q`` and
of the columns position ``q + n``. A unitary ``U`` on qubits ``Q`` becomes ``U`` on ``Q`` and
``conj(U)`` on ``Q + n``; a channel with Kraus operators ``K`` on ``Q`` becomes the dense
superoperator ``sum_K kron(conj(K), K)`` on ``Q`` then ``Q + n`` (a mixture: the sum of its
terms' superoperators weighted by their probabilities; a reset: the Kraus pair
``|0><0|, |0><1|``). The state starts as ``|0...0>``, which is ``|0><0|``. Final measurements
are drawn from the diagonal. One simulation then serves every shot, whatever the noise: the
cost is that of a ``2n``-qubit statevector, independent of the shots, against one trajectory
per distinct error pattern for the statevector method.

Only straight-line programs qualify: gates, channels, resets and final measurements (no
mid-circuit measurement, control flow, save or preparation) on at most
:data:`DENSITY_MAX_QUBITS` qubits.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..kernels.layout import popcount
from .program import (
    UNITARY_OPS,
    ControlledOp,
    DiagonalOp,
    KrausOp,
    MatrixOp,
    MeasureOp,
    NoiseSelectOp,
    Op,
    ParameterizedGateOp,
    PermutationOp,
    Program,
    ResetOp,
    dense_matrix,
)

DENSITY_MAX_QUBITS = 10
"""Most qubits the density-matrix method takes (a 20-qubit statevector: 16 MiB in double)."""
SHOTS_PER_AMPLITUDE = 8
"""``method="automatic"`` picks the density matrix for a noisy program when ``2^n`` is at
most this many times the shots: ``4^n`` amplitudes once against, at worst, a trajectory of
``2^n`` amplitudes per shot (each costing Python dispatch per op on small states)."""

RESET_KRAUS = (np.array([[1, 0], [0, 0]]), np.array([[0, 1], [0, 0]]))


def prefer_density(num_qubits: int, shots: int) -> bool:
    """Whether ``method="automatic"`` runs a noisy program of ``num_qubits`` qubits for
    ``shots`` shots as a density matrix."""
    return num_qubits <= DENSITY_MAX_QUBITS and (1 << num_qubits) <= SHOTS_PER_AMPLITUDE * shots


def density_unsupported(program: Program) -> str | None:
    """Why ``program`` cannot run as a density matrix, or None when it can (a gate whose
    numbers each parameter set gives is a unitary once bound, so it qualifies too)."""
    if program.num_qubits > DENSITY_MAX_QUBITS:
        return (f"it has {program.num_qubits} qubits; the density-matrix method takes at most "
                f"{DENSITY_MAX_QUBITS}")
    in_blocks = {index for op in program.ops if isinstance(op, NoiseSelectOp)
                 for index in range(op.targets[0], op.end)}  # terms: gates, resets, Kraus
    for index, op in enumerate(program.ops):
        if isinstance(op, (*UNITARY_OPS, ParameterizedGateOp, KrausOp, ResetOp, NoiseSelectOp)
                      ) or index in in_blocks:
            continue
        if isinstance(op, MeasureOp) and op.final:
            continue
        kind = ("a mid-circuit measurement" if isinstance(op, MeasureOp)
                else f"a {type(op).__name__.removesuffix('Op').lower()} operation")
        return f"it holds {kind}, which the density-matrix method does not run"
    return None


def density_program(program: Program, dtype: np.dtype) -> Program | None:
    """``program`` as the unitary-and-channel ops of its density matrix on ``2n`` qubits,
    the channels' superoperators in ``dtype``, then its final measurements (on the row
    qubits: the engine draws them from the diagonal), or None when it does not qualify
    (:func:`density_unsupported`)."""
    if density_unsupported(program) is not None:
        return None
    n = program.num_qubits
    ops: list[Op] = []
    position = 0
    source = program.ops
    while position < len(source):
        op = source[position]
        if isinstance(op, UNITARY_OPS):
            ops.extend((op, _conjugated(op, n)))
        elif isinstance(op, KrausOp):
            ops.append(_superoperator_op(op.qubits, _kraus_superoperator(
                op.matrices, op.qubits, op.qubits), n))
        elif isinstance(op, ResetOp):
            qubits = np.array([op.qubit], dtype=np.int64)
            ops.append(_superoperator_op(qubits, _kraus_superoperator(
                RESET_KRAUS, qubits, qubits), n))
        elif isinstance(op, NoiseSelectOp):
            ops.append(_superoperator_op(op.qubits, _mixture_superoperator(source, op), n))
            position = op.end
            continue
        position += 1
    ops.extend(op for op in source if isinstance(op, MeasureOp) and op.final)
    ops = [replace(op, matrix=op.matrix.astype(dtype))
           if isinstance(op, MatrixOp) and op.matrix.dtype != dtype else op for op in ops]
    return replace(program, num_qubits=2 * n, ops=ops, has_control_flow=False, mixtures=None)


def _conjugated(op: Op, n: int) -> Op:
    """``op`` with its matrix conjugated, on the column qubits (``+ n``)."""
    if isinstance(op, MatrixOp):
        return MatrixOp(op.qubits + n, np.conj(op.matrix))
    if isinstance(op, DiagonalOp):
        return DiagonalOp(op.qubits + n, np.conj(op.diagonal))
    if isinstance(op, PermutationOp):
        return PermutationOp(op.qubits + n, op.permutation, np.conj(op.phases))
    return ControlledOp(op.controls + n, op.control_state, op.targets + n, np.conj(op.matrix))


def _kraus_superoperator(matrices, qubits: np.ndarray, union: np.ndarray) -> np.ndarray:
    """``sum_K kron(conj(K), K)`` of Kraus operators on ``qubits``, embedded in ``union``."""
    from .plan import embed_matrix  # the planner imports the modules of this package

    where, within = tuple(int(q) for q in qubits), tuple(int(q) for q in union)
    total = 0
    for matrix in matrices:
        embedded = embed_matrix(np.asarray(matrix, dtype=np.complex128), where, within)
        total = total + np.kron(np.conj(embedded), embedded)
    return total


def _mixture_superoperator(ops: list[Op], select: NoiseSelectOp) -> np.ndarray:
    """The superoperator of a mixture: each term's block of ops composed, weighted by its
    probability."""
    union = select.qubits
    dim = 4 ** union.size
    total = np.zeros((dim, dim), dtype=np.complex128)
    for probability, block in zip(select.probabilities, select.blocks(ops)):
        term = np.eye(dim, dtype=np.complex128)
        for op in block:
            if isinstance(op, ResetOp):
                step = _kraus_superoperator(RESET_KRAUS, np.array([op.qubit]), union)
            elif isinstance(op, KrausOp):
                step = _kraus_superoperator(op.matrices, op.qubits, union)
            else:
                step = _kraus_superoperator([dense_matrix(op)], op.qubits, union)
            term = step @ term
        total += probability * term
    return total


def _superoperator_op(qubits: np.ndarray, superoperator: np.ndarray, n: int) -> MatrixOp:
    """The superoperator on row qubits ``qubits`` and their column qubits."""
    qubits = np.asarray(qubits, dtype=np.int64)
    return MatrixOp(np.concatenate((qubits, qubits + n)), np.ascontiguousarray(superoperator))


def pauli_expectations(amplitudes: np.ndarray, num_qubits: int, x_masks: np.ndarray,
                       z_masks: np.ndarray) -> np.ndarray:
    """``tr(rho P)`` of each Pauli ``(x_masks[t], z_masks[t])`` (the kernels' convention
    ``i**popcount(x & z) X^x Z^z``) from a density matrix's amplitudes (see the module
    docstring): ``sum_r i^y (-1)^popcount(r & z) rho[r, r ^ x]``."""
    rows = np.arange(1 << num_qubits, dtype=np.int64)
    values = np.empty(len(x_masks), dtype=np.float64)
    for term, (x, z) in enumerate(zip(np.asarray(x_masks).tolist(),
                                      np.asarray(z_masks).tolist())):
        entries = amplitudes[rows + ((rows ^ x) << num_qubits)]
        odd = popcount(rows & z) & 1
        total = np.sum(np.where(odd, -entries, entries), dtype=np.complex128)
        values[term] = float((1j ** ((x & z).bit_count() % 4) * total).real)
    return values
