"""A peephole pass: one-qubit gates are multiplied into their neighbours.

Each op is a pass over the whole state, so fewer ops is faster. A one-qubit gate commutes with
every op that does not touch its qubit, so it may wait until the next op that does: another
one-qubit gate on that qubit (the two are multiplied), a two-qubit gate (it is folded into
that gate's 4x4 matrix, unless that gate is diagonal or a SWAP: the planner folds diagonals
into each other and turns SWAPs into relabelling), or anything else (it is emitted just
before it). An ansatz layer of
``ry``/``rz`` on every qubit followed by a ``cx`` chain becomes the ``cx`` chain alone.

Only Programs without jumps are merged, so no op index that control flow names moves.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .program import (
    SAVE_OPS,
    DiagonalOp,
    MatrixOp,
    MeasureOp,
    Op,
    PermutationOp,
    Program,
    ResetOp,
    dense_numbers,
    is_swap,
)
from .traced import Numbers, derive

_GATES = (MatrixOp, DiagonalOp, PermutationOp)


def _gate_on(op: Op, width: int) -> bool:
    return isinstance(op, _GATES) and op.qubits.size == width


def _touched(op: Op, num_qubits: int) -> list[int]:
    """The qubits an op acts on or reads: every qubit for saves (they read the whole state),
    whole-state ops and global phases."""
    if isinstance(op, (MeasureOp, ResetOp)):
        return [op.qubit]
    qubits = getattr(op, "qubits", None)
    if isinstance(op, SAVE_OPS) or qubits is None or qubits.size == 0:
        return list(range(num_qubits))
    return [int(q) for q in qubits]


def _kron2(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """``np.kron(high, low)`` of two 2x2 matrices (a tenth of ``np.kron``'s time; any leading
    axes)."""
    product = high[..., :, None, :, None] * low[..., None, :, None, :]
    return product.reshape(product.shape[:-4] + (4, 4))


def merge_one_qubit_gates(ops: list[Op], num_qubits: int) -> list[Op]:
    """``ops`` with every one-qubit gate multiplied into the next gate on its qubit (see the
    module docstring). Products of diagonals stay diagonal. The products are made through
    :func:`~gpuprovider.compile.traced.derive`, so they keep their sources."""
    pending: dict[int, MatrixOp | DiagonalOp | PermutationOp] = {}
    merged: list[Op] = []

    def flush(qubits: list[int]) -> None:
        for qubit in qubits:
            if qubit in pending:
                merged.append(pending.pop(qubit))

    for op in ops:
        if _gate_on(op, 1):
            qubit = int(op.qubits[0])
            before = pending.get(qubit)
            if before is None:
                pending[qubit] = op
            elif isinstance(op, DiagonalOp) and isinstance(before, DiagonalOp):
                pending[qubit] = DiagonalOp(op.qubits, *derive(
                    np.multiply, Numbers(op.diagonal, op.source),
                    Numbers(before.diagonal, before.source)))
            else:
                pending[qubit] = MatrixOp(op.qubits, *derive(
                    np.matmul, dense_numbers(op), dense_numbers(before)))
        elif _gate_on(op, 2) and not isinstance(op, DiagonalOp) and not is_swap(op) and \
                any(int(q) in pending for q in op.qubits):
            first, second = (pending.pop(int(q), None) for q in op.qubits)
            gate = dense_numbers(op)
            identity = Numbers(np.eye(2, dtype=gate.values.dtype))
            # Argument qubit 0 is the low bit of a 4x4 index: kron(second, first).
            before = derive(_kron2, identity if second is None else dense_numbers(second),
                            identity if first is None else dense_numbers(first))
            merged.append(MatrixOp(op.qubits, *derive(np.matmul, gate, before)))
        else:
            flush(_touched(op, num_qubits))
            merged.append(op)
    flush(sorted(pending))
    return merged


def merged(program: Program) -> Program:
    """``program`` with its one-qubit gates merged (unchanged if it has control flow)."""
    if program.has_control_flow:
        return program
    return replace(program, ops=merge_one_qubit_gates(program.ops, program.num_qubits))
