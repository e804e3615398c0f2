"""The one table of instructions the simulator accepts: the Target and the lowering read it."""

from __future__ import annotations

from functools import cache

from qiskit.circuit import Barrier
from qiskit.circuit.library import Initialize, UnitaryGate
from qiskit.circuit.library.standard_gates import get_standard_gate_name_mapping

from .instructions import SaveStatevector

NO_OP_NAMES = frozenset({"barrier", "delay", "id"})
"""Instructions that leave an ideal statevector unchanged."""


@cache
def supported_instructions() -> dict[str, object]:
    """Name -> instruction (object, or class for variadic ones) for every supported name.

    Every standard gate of Qiskit (a superset of BasicSimulator's), plus measure, reset,
    barrier, delay, global_phase, unitary, initialize and save_statevector. Any gate here is
    simulated from its matrix, so the table holds no per-gate code.
    """
    table: dict[str, object] = dict(get_standard_gate_name_mapping())
    table.update(
        {
            "unitary": UnitaryGate,
            "initialize": Initialize,
            "barrier": Barrier,
            "save_statevector": SaveStatevector,
        }
    )
    return table
