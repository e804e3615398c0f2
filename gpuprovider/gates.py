"""The one table of instructions the simulator accepts: the Target and the lowering read it."""

from __future__ import annotations

from functools import cache

from qiskit.circuit import (
    Barrier,
    BoxOp,
    Delay,
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
    IGate,
    Initialize,
    MCMTGate,
    MCPhaseGate,
    MCXGate,
    PauliGate,
    StatePreparation,
    UCGate,
    UnitaryGate,
)
from qiskit.circuit.library.standard_gates import get_standard_gate_name_mapping
from qiskit.quantum_info import Kraus
from qiskit.quantum_info.operators.channel.quantum_channel import QuantumChannel

from .instructions import (
    SaveAmplitudes,
    SaveAmplitudesSquared,
    SaveDensityMatrix,
    SaveExpectationValue,
    SaveExpectationValueVariance,
    SaveProbabilities,
    SaveProbabilitiesDict,
    SaveState,
    SaveStatevector,
    SaveStatevectorDict,
    SetStatevector,
)

NO_OP_NAMES = frozenset({"barrier", "delay", "id"})
"""Instructions that leave an ideal statevector unchanged."""


def is_no_op(operation: object) -> bool:
    """A barrier, delay or identity: by its class, not only its name (an OpenQASM gate named
    ``id`` with a definition is simulated)."""
    return getattr(operation, "name", None) in NO_OP_NAMES and isinstance(
        operation, (Barrier, Delay, IGate))

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
    "save_statevector_dict": SaveStatevectorDict,
    "save_state": SaveState,
    "save_amplitudes": SaveAmplitudes,
    "save_amplitudes_sq": SaveAmplitudesSquared,
    "save_probabilities": SaveProbabilities,
    "save_probabilities_dict": SaveProbabilitiesDict,
    "save_density_matrix": SaveDensityMatrix,
    "save_expval": SaveExpectationValue,
    "save_expval_var": SaveExpectationValueVariance,
}
"""Aer-named save instructions (Aer's own instances of these names are accepted too)."""


@cache
def supported_instructions() -> dict[str, object]:
    """Name -> instruction (object, or class for variadic ones) for every supported name.

    Every standard gate of Qiskit (a superset of BasicSimulator's), plus measure, reset,
    barrier, delay, global_phase, unitary, diagonal, multi-controlled X and phase, MCMT,
    pauli, multiplexer, initialize, state_preparation, classical stores, control flow,
    Aer's save instructions, set_statevector and quantum channels (kraus, quantum_channel).
    Gates are simulated from their matrices, so the table holds no per-gate code (and any
    gate with a definition runs, listed or not).
    """
    table: dict[str, object] = dict(get_standard_gate_name_mapping())
    table.update(
        {
            "unitary": UnitaryGate,
            "diagonal": DiagonalGate,
            "mcx": MCXGate,
            "mcphase": MCPhaseGate,
            "mcmt": MCMTGate,
            "pauli": PauliGate,
            "multiplexer": UCGate,
            "initialize": Initialize,
            "state_preparation": StatePreparation,
            "barrier": Barrier,
            "store": Store,
            **CONTROL_FLOW,
            **SAVE_INSTRUCTIONS,
            "set_statevector": SetStatevector,
            # Quantum channels (a Kraus or SuperOp appended, qiskit-aer's QuantumError), as
            # Aer's Target lists them, so that transpile() keeps them.
            "kraus": Kraus,
            "quantum_channel": QuantumChannel,
        }
    )
    return table
