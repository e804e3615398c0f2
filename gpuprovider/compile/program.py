"""The Program: a circuit lowered to plain data that any device's kernels can run.

A Program holds no Qiskit objects: qubit and clbit indices, small NumPy matrices already in
the state's dtype, and a few non-unitary operations. Gate operations know how to apply
themselves through a kernels module (``gpuprovider.kernels.cpu`` or a twin with the same
functions), so the engine needs no table of gate kinds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType

import numpy as np

from ..kernels.precision import statevector_bytes


@dataclass(frozen=True)
class MatrixOp:
    """A dense unitary on ``qubits`` (argument order, little-endian like Qiskit)."""

    qubits: np.ndarray
    matrix: np.ndarray

    def apply(self, kernels: ModuleType, state) -> None:
        kernels.apply_matrix(state, self.qubits, self.matrix)


@dataclass(frozen=True)
class DiagonalOp:
    """A diagonal unitary on ``qubits``: one phase per basis state of those qubits."""

    qubits: np.ndarray
    diagonal: np.ndarray

    def apply(self, kernels: ModuleType, state) -> None:
        kernels.apply_diagonal(state, self.qubits, self.diagonal)


@dataclass(frozen=True)
class PermutationOp:
    """A unitary with one non-zero per row: row ``r`` is ``phases[r]`` at ``permutation[r]``."""

    qubits: np.ndarray
    permutation: np.ndarray
    phases: np.ndarray

    def apply(self, kernels: ModuleType, state) -> None:
        kernels.apply_permutation(state, self.qubits, self.permutation, self.phases)


@dataclass(frozen=True)
class PrepareOp:
    """Put ``qubits``, which are |0> here, into the state ``amplitudes`` (``initialize``).

    Entry ``m`` of ``amplitudes`` is the basis state whose bit ``j`` is qubit ``qubits[j]``.
    """

    qubits: np.ndarray
    amplitudes: np.ndarray

    def apply(self, kernels: ModuleType, state) -> None:
        kernels.prepare_qubits(state, self.qubits, self.amplitudes)


@dataclass(frozen=True)
class ZeroStateOp:
    """Set the whole state to |0...0> (a reset of every qubit, which is deterministic)."""

    def apply(self, kernels: ModuleType, state) -> None:
        kernels.reset_all(state)


@dataclass(frozen=True)
class MeasureOp:
    """Measure ``qubit`` into ``clbit``.

    ``final`` when nothing later acts on the qubit or overwrites the clbit from a mid-circuit
    measurement: such measurements are sampled from the state at the end instead of
    collapsing it.
    """

    qubit: int
    clbit: int
    final: bool = False


@dataclass(frozen=True)
class ResetOp:
    """Reset ``qubit`` to |0>."""

    qubit: int


@dataclass(frozen=True)
class SaveStatevectorOp:
    """Record the state under ``label``, multiplied by the global phase reached so far.

    ``order`` (when the save's qubits are not 0..n-1 in order): the saved vector's entry
    ``m`` is the state's amplitude ``order[m]``.
    """

    label: str
    global_phase: float
    order: np.ndarray | None = None


GateOp = MatrixOp | DiagonalOp | PermutationOp | PrepareOp | ZeroStateOp
Op = GateOp | MeasureOp | ResetOp | SaveStatevectorOp


@dataclass
class Program:
    """One circuit, lowered: what the engine runs for one experiment."""

    name: str
    num_qubits: int
    num_clbits: int
    ops: list[Op] = field(default_factory=list)

    @property
    def measurements(self) -> list[MeasureOp]:
        return [op for op in self.ops if isinstance(op, MeasureOp)]

    @property
    def is_sampled(self) -> bool:
        """True when one simulation serves every shot: all measurements final, no reset."""
        return all(
            isinstance(op, MeasureOp) and op.final
            for op in self.ops
            if isinstance(op, (MeasureOp, ResetOp))
        )

    @property
    def first_stochastic_index(self) -> int:
        """Index of the first op whose outcome is random per shot (len(ops) if none)."""
        for index, op in enumerate(self.ops):
            if isinstance(op, ResetOp) or (isinstance(op, MeasureOp) and not op.final):
                return index
        return len(self.ops)

    @property
    def widest_gather(self) -> int:
        """Most qubits of one dense, permutation or prepare op (0 if none)."""
        return max(
            (op.qubits.size for op in self.ops
             if isinstance(op, (MatrixOp, PermutationOp, PrepareOp))),
            default=0,
        )

    @property
    def states_needed(self) -> int:
        """How many full statevectors a run holds at once (a per-shot run keeps a snapshot)."""
        return 1 if self.is_sampled else 2

    def bytes_needed(self, precision: str) -> int:
        """Device bytes a run holds at once in ``precision``."""
        return self.states_needed * statevector_bytes(self.num_qubits, precision)
