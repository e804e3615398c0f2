"""Many parameter sets of one small unitary program at once, as a batch of states.

A pub with many parameter sets of a small circuit spends its time in Python per set (binding,
merging, one call per gate), not in arithmetic. Here the sets run together: the states of up
to :data:`BATCH_AMPLITUDES` amplitudes' worth of sets are one ``(sets, 2**n)`` array, a fixed
gate is one NumPy operation on all of them, and a parameterised gate one operation with a
matrix per set, built for the whole batch at once
(:mod:`~gpuprovider.compile.gate_batches`). Nothing is planned: at this size a gate costs
microseconds whatever the plan.

Only programs the device runs on its small-state kernels (:meth:`Device.is_small`) that are
gates followed by final measurements and saves are batched; every other program runs set by
set. The estimator reads its Pauli terms from the batch's states directly; a sampler pub or a
sweep runs, per set, the program's measurements and saves on the set's final state
(:func:`set_programs`), so shots, memory and saves come from the engine as without a batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

import numpy as np
from qiskit.circuit import Parameter

from .compile.gate_batches import bound_chunks, gate_batch
from .compile.program import (
    SAVE_OPS,
    UNITARY_OPS,
    MeasureOp,
    Op,
    ParameterizedGateOp,
    PrepareOp,
    Program,
)
from .device import Device
from .kernels import batch

BATCH_AMPLITUDES = 1 << 16
"""Amplitudes one batch of states holds (1 MiB in double precision): its sets are this
over ``2**n``."""
MIN_BATCH_SETS = 2
"""Fewest parameter sets worth a batch."""
_BATCH_OPS = (*UNITARY_OPS, PrepareOp, ParameterizedGateOp)


def split(program: Program) -> tuple[list[Op], list[Op]] | None:
    """The program's gates and the final measurements and saves after them, or None when it
    is not gates followed by only those (control flow, noise, mid-circuit measurements)."""
    ops = program.ops
    first = next((k for k, op in enumerate(ops) if not isinstance(op, _BATCH_OPS)), len(ops))
    tail = ops[first:]
    if program.has_control_flow or not all(
            isinstance(op, SAVE_OPS) or (isinstance(op, MeasureOp) and op.final)
            for op in tail):
        return None
    return ops[:first], tail


def batchable(program: Program, device: Device, sets: int) -> bool:
    """Whether ``sets`` parameter sets of ``program`` run as batches on ``device``."""
    return (sets >= MIN_BATCH_SETS and device.is_small(program.num_qubits)
            and split(program) is not None)


def sets_per_batch(program: Program) -> int:
    """How many sets of ``program`` one batch holds: :data:`BATCH_AMPLITUDES` over the
    amplitudes of a state, or over the entries of the widest gate built set by set (a dense
    matrix per set), whichever is larger."""
    widest = max((op.qubits.size for op in program.ops
                  if isinstance(op, ParameterizedGateOp) and op.build_batch is None), default=0)
    return max(1, BATCH_AMPLITUDES >> max(program.num_qubits, 2 * widest))


def _run_gates(gates: list[Op], num_qubits: int, parameters: dict[Parameter, np.ndarray],
               sets: int, dtype: np.dtype) -> np.ndarray:
    """The states ``(sets, 2**n)`` after ``gates`` for a batch of parameter sets,
    ``parameters[p]`` holding parameter ``p``'s value in each."""
    states = batch.allocate(sets, num_qubits, dtype)
    for op in gates:
        if isinstance(op, ParameterizedGateOp):
            gate_batch(op, parameters, sets).apply(batch, states)
        else:
            op.apply(batch, states)
    return states


def batches(program: Program, parameters: Sequence[Parameter], values: np.ndarray,
            dtype: np.dtype, check: Callable[[], None]) -> Iterator[tuple[range, np.ndarray]]:
    """``(sets, states after the gates)`` of a :func:`batchable` ``program`` for consecutive
    batches of the rows of ``values`` (one column per parameter of ``parameters``);
    ``check`` runs before each batch (it raises to cancel)."""
    gates, _ = split(program)
    size = sets_per_batch(program)
    for start in range(0, len(values), size):
        check()
        stop = min(start + size, len(values))
        columns = {p: np.ascontiguousarray(values[start:stop, j])
                   for j, p in enumerate(parameters)}
        yield range(start, stop), _run_gates(gates, program.num_qubits, columns,
                                             stop - start, dtype)


def set_programs(program: Program, parameters: Sequence[Parameter], values: np.ndarray,
                 dtype: np.dtype, check: Callable[[], None]) -> Iterator[tuple[int, Program]]:
    """``(set, program)`` for each row of ``values``: a program that prepares the set's state
    after the gates (computed in batches) and then makes ``program``'s final measurements
    and saves."""
    _, tail = split(program)
    for sets, states in batches(program, parameters, values, dtype, check):
        for row, index in enumerate(sets):
            yield index, _tail_program(program, tail, states[row])


def tail_program(program: Program, state: np.ndarray) -> Program:
    """A :func:`batchable` ``program``'s final measurements and saves, made on ``state``
    (the state after its gates)."""
    return _tail_program(program, split(program)[1], state)


def _tail_program(program: Program, tail: list[Op], state: np.ndarray) -> Program:
    everything = np.arange(program.num_qubits, dtype=np.int64)
    return replace(program, ops=[PrepareOp(everything, state), *tail])


def bound_programs(program: Program, parameters: Sequence[Parameter], values: np.ndarray
                   ) -> Iterator[Program]:
    """``program`` bound to each row of ``values`` in turn, for the sets that run one by one:
    the numbers of the gates that have a ``build_batch`` are built for
    :data:`~gpuprovider.compile.gate_batches.BIND_CHUNK_SETS` sets at once, the others set
    by set (``build``)."""
    for chunk in bound_chunks(program, parameters, values):
        for row in range(chunk.sets):
            yield chunk.bound(row)
