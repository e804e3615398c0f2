"""A peephole pass: adjacent one-qubit gates on the same qubit become one gate.

Each op is a pass over the whole state, so ``ry(q)`` then ``rz(q)`` (a common ansatz layer)
costs half as much merged. Only ops next to each other in a Program without jumps are
merged, so no op index that control flow could name moves.
"""

from __future__ import annotations

import numpy as np

from dataclasses import replace

from .program import DiagonalOp, MatrixOp, Op, PermutationOp, Program

_ONE_QUBIT_GATES = (MatrixOp, DiagonalOp, PermutationOp)


def _one_qubit(op: Op | None) -> bool:
    return isinstance(op, _ONE_QUBIT_GATES) and op.qubits.size == 1


def _matrix(op: MatrixOp | DiagonalOp | PermutationOp) -> np.ndarray:
    if isinstance(op, MatrixOp):
        return op.matrix
    if isinstance(op, DiagonalOp):
        return np.diag(op.diagonal)
    dense = np.zeros((2, 2), dtype=op.phases.dtype)
    dense[np.arange(2), op.permutation] = op.phases
    return dense


def merge_one_qubit_runs(ops: list[Op]) -> list[Op]:
    """``ops`` with each run of adjacent one-qubit gates on one qubit multiplied into one
    gate (a diagonal when every gate of the run is)."""
    merged: list[Op] = []
    for op in ops:
        previous = merged[-1] if merged else None
        if not (_one_qubit(op) and _one_qubit(previous)
                and op.qubits[0] == previous.qubits[0]):
            merged.append(op)
        elif isinstance(op, DiagonalOp) and isinstance(previous, DiagonalOp):
            merged[-1] = DiagonalOp(op.qubits, op.diagonal * previous.diagonal)
        else:
            merged[-1] = MatrixOp(op.qubits, np.ascontiguousarray(_matrix(op) @ _matrix(previous)))
    return merged


def merged(program: Program) -> Program:
    """``program`` with its one-qubit runs merged (unchanged if it has control flow)."""
    if program.has_control_flow:
        return program
    return replace(program, ops=merge_one_qubit_runs(program.ops))
