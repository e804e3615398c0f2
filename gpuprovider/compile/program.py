"""The Program: a circuit lowered to plain data that any device's kernels can run.

A Program holds no Qiskit objects: qubit and clbit indices, small NumPy matrices already in
the state's dtype, a few non-unitary operations, and control flow flattened into jumps whose
conditions are compiled classical expressions. Gate operations know how to apply themselves
through a device's kernel set (:class:`~gpuprovider.kernels.interface.KernelSet`), so the
engine needs no table of gate kinds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..kernels.interface import KernelSet
from ..kernels.layout import permutation_matrix
from ..kernels.precision import statevector_bytes
from ..kernels.tiles import TilePass
from .classical import ClassicalState
from .traced import Numbers, derive


@dataclass(frozen=True)
class MatrixOp:
    """A dense unitary on ``qubits`` (argument order, little-endian like Qiskit)."""

    qubits: np.ndarray
    matrix: np.ndarray
    source: Any = field(default=None, compare=False, repr=False)
    """How a sweep's planning made these numbers from its parameterised gates
    (:mod:`~gpuprovider.compile.traced`); None when they are fixed."""

    def apply(self, kernels: KernelSet, state) -> None:
        kernels.apply_matrix(state, self.qubits, self.matrix)


@dataclass(frozen=True)
class DiagonalOp:
    """A diagonal unitary on ``qubits``: one phase per basis state of those qubits."""

    qubits: np.ndarray
    diagonal: np.ndarray
    source: Any = field(default=None, compare=False, repr=False)
    """How a sweep's planning made these numbers from its parameterised gates
    (:mod:`~gpuprovider.compile.traced`); None when they are fixed."""

    def apply(self, kernels: KernelSet, state) -> None:
        kernels.apply_diagonal(state, self.qubits, self.diagonal)


@dataclass(frozen=True)
class PermutationOp:
    """A unitary with one non-zero per row: row ``r`` is ``phases[r]`` at ``permutation[r]``."""

    qubits: np.ndarray
    permutation: np.ndarray
    phases: np.ndarray
    source: Any = field(default=None, compare=False, repr=False)
    """How a sweep's planning made these numbers from its parameterised gates
    (:mod:`~gpuprovider.compile.traced`); None when they are fixed."""

    def apply(self, kernels: KernelSet, state) -> None:
        kernels.apply_permutation(state, self.qubits, self.permutation, self.phases)


SWAP_PERMUTATION = np.array([0, 2, 1, 3])


def is_swap(op: object) -> bool:
    """True for a SWAP gate: the planner moves no data for it, only the qubits' names."""
    return (isinstance(op, PermutationOp) and op.qubits.size == 2
            and np.array_equal(op.permutation, SWAP_PERMUTATION)
            and bool(np.all(op.phases == 1)))


@dataclass(frozen=True)
class ControlledOp:
    """The dense ``matrix`` on ``targets``, applied where ``controls`` spell ``control_state``
    (bit ``j`` of ``control_state`` is the value wanted on ``controls[j]``)."""

    controls: np.ndarray
    control_state: int
    targets: np.ndarray
    matrix: np.ndarray
    source: Any = field(default=None, compare=False, repr=False)
    """How a sweep's planning made these numbers from its parameterised gates
    (:mod:`~gpuprovider.compile.traced`); None when they are fixed."""

    @property
    def qubits(self) -> np.ndarray:
        return np.concatenate((self.controls, self.targets))

    def apply(self, kernels: KernelSet, state) -> None:
        kernels.apply_controlled_matrix(
            state, self.controls, self.control_state, self.targets, self.matrix
        )


@dataclass(frozen=True)
class TileOp:
    """Gates applied tile by tile in one pass over the state (cache blocking; the planner
    makes these): ``tile_pass`` is the encoded pass
    (:class:`~gpuprovider.kernels.tiles.TilePass`), ``gates`` how many of the program's gate
    ops it applies."""

    tile_pass: TilePass
    gates: int
    sources: tuple[Any, ...] = field(default=(), compare=False, repr=False)
    """In a sweep's planning, the source of each row's numbers
    (:mod:`~gpuprovider.compile.traced`, None where they are fixed); else empty."""

    @property
    def tile_qubits(self) -> np.ndarray:
        """The tile qubits in local order."""
        return self.tile_pass.tile_qubits

    @property
    def table(self) -> np.ndarray:
        """The pass's rows (format: :mod:`gpuprovider.kernels.tiles`)."""
        return self.tile_pass.table

    def apply(self, kernels: KernelSet, state) -> None:
        kernels.apply_tile_pass(state, self.tile_pass)


@dataclass(frozen=True)
class PrepareOp:
    """Put ``qubits``, which are |0> here, into the state ``amplitudes`` (``initialize``).

    Entry ``m`` of ``amplitudes`` is the basis state whose bit ``j`` is qubit ``qubits[j]``.
    """

    qubits: np.ndarray
    amplitudes: np.ndarray

    def apply(self, kernels: KernelSet, state) -> None:
        kernels.prepare_qubits(state, self.qubits, self.amplitudes)


@dataclass(frozen=True)
class ZeroStateOp:
    """Set the whole state to |0...0> (a reset of every qubit, which is deterministic)."""

    def apply(self, kernels: KernelSet, state) -> None:
        kernels.reset_all(state)


@dataclass(frozen=True)
class KrausOp:
    """A Kraus channel on ``qubits``: shots split by the probabilities ``||K_i psi||^2``.

    Those come from one grouped Pauli read of the state: ``x_masks``, ``term_starts`` and
    ``z_masks`` are the Pauli terms of every ``K_i^dagger K_i`` in the kernels' grouped form,
    and ``weights[i] @ values`` is probability ``i``.
    """

    qubits: np.ndarray
    matrices: tuple[np.ndarray, ...]
    x_masks: np.ndarray
    term_starts: np.ndarray
    z_masks: np.ndarray
    weights: np.ndarray


@dataclass(frozen=True)
class NoiseSelectOp:
    """A mixture: each shot goes on at ``targets[i]`` with probability ``probabilities[i]``
    (the blocks of a channel's terms, each but the last ending in a jump to ``end``, the
    index after the last block)."""

    probabilities: np.ndarray
    targets: tuple[int, ...]
    qubits: np.ndarray
    end: int

    def block_ranges(self) -> list[tuple[int, int]]:
        """Each term's ops as ``(start, stop)`` op indices, without the jump to ``end`` at
        ``stop`` that ends every block but the last."""
        return list(zip(self.targets, [target - 1 for target in self.targets[1:]] + [self.end]))

    def blocks(self, ops: list) -> list[list]:
        """Each term's ops (without the jumps), from the program's ``ops``."""
        return [ops[start:stop] for start, stop in self.block_ranges()]


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
    readout: np.ndarray | None = None
    """A readout error's 2x2 confusion matrix: row ``t`` is P(recorded bit | true ``t``)."""


@dataclass(frozen=True)
class ResetOp:
    """Reset ``qubit`` to |0>."""

    qubit: int


SUBTYPES = ("single", "c_single", "list", "c_list", "average", "c_average", "accum", "c_accum")
"""How a save gathers its value over shots, in qiskit-aer's names: ``single`` keeps one
branch's value, ``average`` the mean over the shots that reached the save, ``accum`` their
sum, ``list`` one value per shot (in shot order); the ``c_`` forms do the same separately
for each value of the classical memory at the save (its hex key)."""


@dataclass(frozen=True)
class SaveStatevectorOp:
    """Record the state under ``label``, multiplied by the global phase reached so far
    (``as_dict``: as ``{hex index: amplitude}``, Aer's ``save_statevector_dict``).

    ``order`` (when the save's qubits are not 0..n-1 in order, as after a transpiler's
    permutation): the saved vector's entry ``m`` is the state's amplitude ``order[m]``.
    """

    label: str
    global_phase: float
    order: np.ndarray | None = None
    as_dict: bool = False
    subtype: str = "single"
    state_of: tuple[str, np.ndarray] | None = None
    """For ``save_state`` (the simulator's state, whose kind follows the method): the label
    and qubits it saves a density matrix under where the run's method is "density_matrix"
    (:func:`~gpuprovider.compile.saves.as_method_state`)."""


@dataclass(frozen=True)
class SaveAmplitudesOp:
    """Record the amplitudes at the state's basis ``indices`` (with the global phase reached
    so far), or with ``squared`` their probabilities."""

    label: str
    indices: np.ndarray
    global_phase: float
    squared: bool = False
    subtype: str = "single"


@dataclass(frozen=True)
class SaveProbabilitiesOp:
    """Record the probabilities of ``qubits`` (argument order) under ``label``; ``as_dict``
    keeps the non-zero ones as ``{outcome: probability}``."""

    label: str
    qubits: np.ndarray
    as_dict: bool = False
    subtype: str = "average"


@dataclass(frozen=True)
class SaveDensityMatrixOp:
    """Record the reduced density matrix of ``qubits`` (``qubits[0]`` the least significant
    subsystem)."""

    label: str
    qubits: np.ndarray
    subtype: str = "average"


PauliTerms = tuple[tuple[int, int, float], ...]
"""A real Pauli sum: ``(x_mask, z_mask, coefficient)`` per term; the Pauli has X on the
qubits of ``x_mask`` only, Z on those of ``z_mask`` only and Y on those of both."""


@dataclass(frozen=True)
class SaveExpectationValueOp:
    """Record ``<H>`` for the Pauli sum ``terms`` under ``label``. With ``variance`` (Aer's
    ``save_expval_var``) the value is ``[<H>, <H^2> - <H>^2]``, where ``square_terms`` is
    ``H^2``."""

    label: str
    terms: PauliTerms
    square_terms: PauliTerms = ()
    variance: bool = False
    subtype: str = "average"


@dataclass(frozen=True)
class SavePauliValuesOp:
    """Record ``<P_t>`` of every Pauli term under ``label`` (float64, shape ``(T,)``),
    averaged over shots: the estimator primitive's read-out. The terms come grouped by
    X-mask, as the kernels' ``expectation_pauli_groups`` takes them: group ``g`` has
    ``x_masks[g]`` and the Z-masks ``z_masks[term_starts[g]:term_starts[g + 1]]``."""

    label: str
    x_masks: np.ndarray
    term_starts: np.ndarray
    z_masks: np.ndarray
    subtype: str = "average"


SaveOp = (SaveStatevectorOp | SaveAmplitudesOp | SaveProbabilitiesOp | SaveDensityMatrixOp
          | SaveExpectationValueOp | SavePauliValuesOp)
SAVE_OPS = (SaveStatevectorOp, SaveAmplitudesOp, SaveProbabilitiesOp, SaveDensityMatrixOp,
            SaveExpectationValueOp, SavePauliValuesOp)


Condition = Callable[[Any], bool]
"""A compiled classical condition, evaluated on a branch's ClassicalState."""


@dataclass(frozen=True)
class JumpOp:
    """Continue at op ``target``."""

    target: int


@dataclass(frozen=True)
class BranchOp:
    """Continue with the next op if ``condition`` holds, else at op ``target``."""

    condition: Condition
    target: int


@dataclass(frozen=True)
class SwitchOp:
    """Continue at ``cases[value]`` for the value of ``target`` (``default`` if absent)."""

    target: Callable[[Any], int]
    cases: dict[int, int]
    default: int


@dataclass(frozen=True)
class StoreOp:
    """Write a classical value (a compiled ``Store``) into the branch's classical state."""

    store: Callable[[Any], None]


@dataclass(frozen=True)
class ParameterizedGateOp:
    """A gate whose matrix waits for parameter values (a parameter sweep binds it).

    ``build`` takes ``{Parameter: value}`` and returns the bound op (a gate op above);
    ``build_batch``, where the gate has one, builds it for a batch of parameter sets at once
    (:mod:`~gpuprovider.compile.gate_batches`).
    """

    qubits: np.ndarray
    build: Callable[[dict], GateOp]
    build_batch: Callable[[Any, int], Any] | None = None


UNITARY_OPS = (MatrixOp, DiagonalOp, PermutationOp, ControlledOp)
"""The ops that apply one unitary on a few qubits (what noise terms and fusion work with)."""


def dense_matrix(op: MatrixOp | DiagonalOp | PermutationOp | ControlledOp) -> np.ndarray:
    """A unitary op as a dense matrix on ``op.qubits`` (argument order; for a ControlledOp
    the controls are the low bits)."""
    return dense_numbers(op).values


def dense_numbers(op: MatrixOp | DiagonalOp | PermutationOp | ControlledOp) -> Numbers:
    """:func:`dense_matrix` of ``op`` with its source (:mod:`~gpuprovider.compile.traced`)."""
    if isinstance(op, MatrixOp):
        return Numbers(op.matrix, op.source)
    if isinstance(op, DiagonalOp):
        return derive(diagonal_matrix, Numbers(op.diagonal, op.source))
    if isinstance(op, PermutationOp):
        return derive(permutation_dense, Numbers(op.phases, op.source),
                      permutation=op.permutation)
    return derive(controlled_dense, Numbers(op.matrix, op.source),
                  controls=op.controls.size, control_state=op.control_state,
                  targets=op.targets.size)


def diagonal_matrix(diagonal: np.ndarray) -> np.ndarray:
    """The matrix with ``diagonal`` on its diagonal (any leading axes)."""
    dim = diagonal.shape[-1]
    dense = np.zeros(diagonal.shape + (dim,), dtype=diagonal.dtype)
    rows = np.arange(dim)
    dense[..., rows, rows] = diagonal
    return dense


def permutation_dense(phases: np.ndarray, permutation: np.ndarray) -> np.ndarray:
    """The matrix whose row ``r`` is ``phases[r]`` at column ``permutation[r]`` (any leading
    axes on ``phases``)."""
    return permutation_matrix(permutation, phases)


def controlled_dense(matrix: np.ndarray, controls: int, control_state: int,
                     targets: int) -> np.ndarray:
    """A ControlledOp's ``matrix`` (any leading axes) as the dense matrix on its controls
    (the low bits) and targets."""
    width = controls + targets
    full = np.broadcast_to(np.eye(1 << width, dtype=matrix.dtype),
                           matrix.shape[:-2] + (1 << width, 1 << width)).copy()
    chosen = np.flatnonzero((np.arange(1 << width) & ((1 << controls) - 1)) == control_state)
    sub = chosen >> controls
    full[..., chosen[:, None], chosen[None, :]] = matrix[..., sub[:, None], sub[None, :]]
    return full


GateOp = (MatrixOp | DiagonalOp | PermutationOp | ControlledOp | PrepareOp | ZeroStateOp
          | TileOp)
ControlOp = JumpOp | BranchOp | SwitchOp | StoreOp
Op = GateOp | MeasureOp | ResetOp | SaveOp | ControlOp | ParameterizedGateOp


def batched_final_saves(ops: Sequence[Op]) -> list[Op] | None:
    """The ops at the end of ``ops`` that a batch of trajectories takes after every shot's
    last event: final measurements and averaged Pauli values (an estimator's read-out, the
    mean of every shot's values). None when a save of another kind, or of another subtype,
    stands anywhere (a batch cannot make it)."""
    start = len(ops)
    while start and (isinstance(ops[start - 1], SavePauliValuesOp)
                     and ops[start - 1].subtype == "average"
                     or isinstance(ops[start - 1], MeasureOp) and ops[start - 1].final):
        start -= 1
    if any(isinstance(op, SAVE_OPS) for op in ops[:start]):
        return None
    return list(ops[start:])


DEFAULT_BRANCH_STATES = 16
"""Most statevectors a run with mid-circuit measurements keeps alive for branches of shots
(fewer when they do not fit); past it, shots run one at a time."""

BATCHED_TRAJECTORY_MAX_QUBITS = 9
"""The widest state whose noisy shots run as one batch of trajectories
(:attr:`Program.shots_as_batch`; a shot's state is 8 KiB in double)."""
MARGINAL_SAMPLING_MAX_QUBITS = 16
"""Final measurements of at most this many distinct qubits are drawn from their marginal
distribution, enumerated in clbit order (the first clbit's qubit is the lowest bit): the
shots for a seed then do not depend on where the qubits sit in the state, so a state spread
over ranks needs no swaps back before it is sampled. Wider ones are drawn from the whole
state in its index order (and a spread state is put in the single process's layout first).
Up to 16 qubits the marginal costs about one sampling pass; a marginal's histogram of 2^22
bins in scattered order costs 5-25 (22-qubit state, 2026-12-03)."""


@dataclass
class Program:
    """One circuit, lowered: what the engine runs for one experiment.

    ``ops`` is flat: control flow is jumps between indices of ``ops``. The circuit's global
    phase is folded into the save ops that report it; a parameterised phase that a sweep binds
    later is a zero-qubit parameterised op, bound with the gates.
    """

    name: str
    num_qubits: int
    num_clbits: int
    ops: list[Op] = field(default_factory=list)
    has_control_flow: bool = False
    new_classical_state: Callable[[], ClassicalState] = ClassicalState
    """Makes a branch's initial classical state (clbits, and the circuit's variables)."""
    qubit_map: tuple[int, ...] | None = None
    """With idle-qubit truncation: the circuit's qubit of each Program qubit. None: no
    truncation, the Program's qubits are the circuit's."""
    used_qubits: tuple[int, ...] = ()
    """The circuit's qubits some operation acts on (ascending)."""
    circuit_qubits: int | None = None
    """The circuit's qubit count (None: ``num_qubits``)."""
    mixtures: Any = None
    """Set by the planner when the only randomness is mixtures of unitaries: the
    :class:`~gpuprovider.compile.mixtures.MixturePlan` the engine runs instead of ``ops``."""
    density: Any = None
    """Set by ``Execution.plan`` for a noisy straight-line program on few qubits: the planned
    Program of its density matrix (:mod:`gpuprovider.compile.density`), which the run may
    choose instead of trajectories."""

    @property
    def truncated(self) -> bool:
        """True when idle qubits of the circuit were left out."""
        return self.circuit_qubits is not None and self.num_qubits < self.circuit_qubits

    @property
    def measurements(self) -> list[MeasureOp]:
        return [op for op in self.ops if isinstance(op, MeasureOp)]

    @property
    def shots_as_batch(self) -> bool:
        """True when the shots run together as a batch of trajectories
        (:mod:`gpuprovider.trajectories`): a noisy program of at most
        :data:`BATCHED_TRAJECTORY_MAX_QUBITS` qubits whose ops are gates, noise channels,
        measurements and resets (no other control flow, no saves but averaged Pauli values
        after every other op: :func:`batched_final_saves`), with a Kraus channel, or with
        mixtures and a mid-circuit measurement or reset (mixtures alone run as grouped error
        patterns: :mod:`~gpuprovider.compile.mixtures`). Decided on the program alone,
        before any planning (such a program is not planned), so that every device and every
        MPI rank runs it alike."""
        if self.num_qubits > BATCHED_TRAJECTORY_MAX_QUBITS or self.is_sampled:
            return False
        finals = batched_final_saves(self.ops)
        if finals is None:
            return False
        kraus = mixtures = collapses = False
        for op in self.ops[:len(self.ops) - len(finals)]:
            if isinstance(op, KrausOp):
                kraus = True
            elif isinstance(op, NoiseSelectOp):
                mixtures = True
            elif isinstance(op, ResetOp) or (isinstance(op, MeasureOp) and not op.final):
                collapses = True
            elif not isinstance(op, (*UNITARY_OPS, PrepareOp, MeasureOp, JumpOp)):
                return False
        block_ends = {stop for op in self.ops if isinstance(op, NoiseSelectOp)
                      for _, stop in op.block_ranges()[:-1]}
        return (kraus or (mixtures and collapses)) and all(
            index in block_ends for index, op in enumerate(self.ops) if isinstance(op, JumpOp))

    @property
    def is_sampled(self) -> bool:
        """True when one simulation serves every shot: no control flow, every measurement
        final and no reset of a used qubit."""
        return not self.has_control_flow and self.stochastic_ops == 0

    @property
    def stochastic_ops(self) -> int:
        """How many mid-circuit measurements, resets and noise channels the op list holds."""
        return sum(
            1 for op in self.ops
            if isinstance(op, (ResetOp, KrausOp, NoiseSelectOp))
            or (isinstance(op, MeasureOp) and not op.final)
        )

    @property
    def widest_gather(self) -> int:
        """Most target qubits of one dense or permutation op (0 if none): the ops whose
        kernels gather the amplitudes of their targets."""
        widths = [
            op.targets.size if isinstance(op, ControlledOp) else op.qubits.size
            for op in self.ops
            if isinstance(op, (MatrixOp, PermutationOp, ControlledOp, ParameterizedGateOp,
                               KrausOp))
        ]
        return max(widths, default=0)

    @property
    def passes(self) -> int:
        """Passes over the state the op list makes when run once: every op but control
        flow, stores and final measurements (sampled together in one pass at the end)."""
        skipped = (JumpOp, BranchOp, SwitchOp, StoreOp, NoiseSelectOp)
        count = sum(
            1 for op in self.ops
            if not isinstance(op, skipped) and not (isinstance(op, MeasureOp) and op.final)
        )
        return count + (1 if any(op.final for op in self.measurements) else 0)

    @property
    def gates(self) -> int:
        """How many gate ops of the lowered circuit the op list applies."""
        return sum(
            op.gates if isinstance(op, TileOp) else 1 for op in self.ops
            if isinstance(op, (MatrixOp, DiagonalOp, PermutationOp, ControlledOp, TileOp))
        )

    def states_needed(self, branch_states: int = DEFAULT_BRANCH_STATES) -> int:
        """How many full statevectors a run holds at once with at most ``branch_states``
        for branches: one without mid-circuit randomness; with it, a state per live branch
        (the current one and one per pending split: at most one more than the random ops
        when nothing loops) and a spare for trajectories, at least two."""
        randomness = self.stochastic_ops
        if not randomness:
            return 1
        loops = any(isinstance(op, JumpOp) and op.target <= index
                    for index, op in enumerate(self.ops))
        wanted = branch_states if loops else min(branch_states, randomness + 2)
        return max(2, wanted)

    def bytes_needed(self, precision: str, branch_states: int = DEFAULT_BRANCH_STATES) -> int:
        """Device bytes a run holds at once in ``precision``."""
        return self.states_needed(branch_states) * statevector_bytes(self.num_qubits, precision)

    def bind(self, values: dict) -> Program:
        """This program with every parameterised gate bound to ``values`` ({Parameter: float}).

        Only the parameterised ops are rebuilt; the rest is shared with this program.
        """
        ops = [op.build(values) if isinstance(op, ParameterizedGateOp) else op
               for op in self.ops]
        return replace(self, ops=ops)
