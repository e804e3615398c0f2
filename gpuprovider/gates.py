"""The one table of instructions the simulator accepts: the Target and the lowering read it."""

from __future__ import annotations

from functools import cache

from qiskit.circuit import (
    Barrier,
    BoxOp,
    BreakLoopOp,
    ContinueLoopOp,
    ForLoopOp,
    IfElseOp,
    Store,
    SwitchCaseOp,
    WhileLoopOp,
)
from qiskit.circuit.library import (
    DiagonalGate,
    Initialize,
    MCPhaseGate,
    MCXGate,
    StatePreparation,
    UnitaryGate,
)
from qiskit.circuit.library.standard_gates import get_standard_gate_name_mapping

from .instructions import (
    SaveExpectationValue,
    SaveExpectationValueVariance,
    SaveProbabilities,
    SaveProbabilitiesDict,
    SaveStatevector,
)

NO_OP_NAMES = frozenset({"barrier", "delay", "id"})
"""Instructions that leave an ideal statevector unchanged."""

CONTROL_FLOW = {
    "if_else": IfElseOp,
    "while_loop": WhileLoopOp,
    "for_loop": ForLoopOp,
    "switch_case": SwitchCaseOp,
    "break_loop": BreakLoopOp,
    "continue_loop": ContinueLoopOp,
    "box": BoxOp,
}
"""Control-flow operations (their blocks are lowered into jumps)."""

SAVE_INSTRUCTIONS = {
    "save_statevector": SaveStatevector,
    "save_probabilities": SaveProbabilities,
    "save_probabilities_dict": SaveProbabilitiesDict,
    "save_expval": SaveExpectationValue,
    "save_expval_var": SaveExpectationValueVariance,
}
"""Aer-named save instructions (Aer's own instances of these names are accepted too)."""


@cache
def supported_instructions() -> dict[str, object]:
    """Name -> instruction (object, or class for variadic ones) for every supported name.

    Every standard gate of Qiskit (a superset of BasicSimulator's), plus measure, reset,
    barrier, delay, global_phase, unitary, diagonal, multi-controlled X and phase,
    initialize, state_preparation, classical stores, control flow and Aer's save
    instructions. Gates are simulated from their matrices, so the table holds no per-gate
    code.
    """
    table: dict[str, object] = dict(get_standard_gate_name_mapping())
    table.update(
        {
            "unitary": UnitaryGate,
            "diagonal": DiagonalGate,
            "mcx": MCXGate,
            "mcphase": MCPhaseGate,
            "initialize": Initialize,
            "state_preparation": StatePreparation,
            "barrier": Barrier,
            "store": Store,
            **CONTROL_FLOW,
            **SAVE_INSTRUCTIONS,
        }
    )
    return table
