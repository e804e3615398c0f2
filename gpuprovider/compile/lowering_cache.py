"""Lowered programs remembered across runs, for circuits whose lowering their instructions
alone decide.

A VQE or a QNN submits the same small circuit hundreds of times, and lowering it costs more
than simulating it. A circuit is remembered under a fingerprint of everything its lowering
reads: its name, width, global phase and, per instruction, the operation's class, name,
parameters, control state and bits. Only circuits of Qiskit's standard gates, barriers and
measurements are remembered, since for them the fingerprint decides the program (a custom
gate's definition or matrix could change without changing the fingerprint); any other
circuit, and any run with a noise model, is lowered afresh. A circuit changed in place gets a
new fingerprint, so it is lowered again. A remembered program's plans (one per device plan
policy and method) are remembered with it, so a circuit run again is not planned again either.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import Barrier, ControlledGate, Measure

from .gate_ops import is_standard
from .program import Program

MAX_PROGRAMS = 64
"""Programs remembered (least recently used forgotten first)."""

_programs: OrderedDict[Hashable, Program] = OrderedDict()
_plans: dict[int, dict[Hashable, Program]] = {}
"""The plans of each remembered program, by the program's id and the plan options."""
_lock = threading.Lock()


def fingerprint(circuit: QuantumCircuit) -> tuple | None:
    """What the lowering of ``circuit`` reads, as a hashable value, or None when it holds an
    instruction that is not a standard gate, a barrier or a measurement."""
    qubit_index = {qubit: index for index, qubit in enumerate(circuit.qubits)}
    clbit_index = {clbit: index for index, clbit in enumerate(circuit.clbits)}
    instructions = []
    for instruction in circuit.data:
        qubits = tuple(qubit_index[q] for q in instruction.qubits)
        clbits = tuple(clbit_index[c] for c in instruction.clbits)
        if instruction.is_standard_gate():
            # Qiskit's own gate of that name (default control state): its name and
            # parameters decide it, and reading them builds no operation object.
            instructions.append(("standard", instruction.name, tuple(instruction.params),
                                 qubits, clbits))
            continue
        operation = instruction.operation
        # base_class: Qiskit's parameterless instructions are singletons of a subclass.
        if getattr(operation, "base_class", None) not in (Barrier, Measure) and \
                not is_standard(operation):
            return None
        params = tuple(operation.params)
        if any(not isinstance(param, Hashable) or isinstance(param, np.ndarray)
               for param in params):
            return None
        ctrl_state = operation.ctrl_state if isinstance(operation, ControlledGate) else None
        instructions.append((type(operation), operation.name, params, ctrl_state, qubits,
                             clbits))
    return (circuit.name, circuit.num_qubits, circuit.num_clbits, circuit.global_phase,
            tuple(instructions))


def lowered(circuit: QuantumCircuit, options: Hashable, lower: Callable[[], Program]
            ) -> Program:
    """``lower()``'s program for ``circuit`` under the lowering ``options`` (dtype, error
    naming, open parameters, truncation), remembered where :func:`fingerprint` allows."""
    found = fingerprint(circuit)
    if found is None:
        return lower()
    key = (found, options)
    with _lock:
        program = _programs.get(key)
        if program is not None:
            _programs.move_to_end(key)
            return program
    program = lower()
    with _lock:
        _programs[key] = program
        _plans.setdefault(id(program), {})
        while len(_programs) > MAX_PROGRAMS:
            _, forgotten = _programs.popitem(last=False)
            _plans.pop(id(forgotten), None)
    return program


def planned(program: Program, options: Hashable, plan: Callable[[], Program]) -> Program:
    """``plan()``'s program for ``program`` under the plan ``options`` (plan policy, fusion,
    method), remembered while ``program`` is one this cache remembers."""
    with _lock:  # a remembered program is alive, so no other program has its id
        plans = _plans.get(id(program))
        found = None if plans is None else plans.get(options)
    if found is not None:
        return found
    found = plan()
    if plans is not None:
        with _lock:
            plans[options] = found
    return found


def forget() -> None:
    """Forget every remembered program."""
    with _lock:
        _programs.clear()
        _plans.clear()
