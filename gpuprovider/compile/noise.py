"""Noise: a qiskit-aer ``NoiseModel`` read into plain data, and its channels into Program ops.

A noise model is read once per run through its public ``to_dict()`` (qiskit-aer is never
imported here: the model brings it). :class:`NoiseSpec` then answers, for an instruction
name and its circuit qubits, which quantum channel follows it (for ``measure``: precedes it,
as in Aer) and which confusion matrix a measurement's recorded bit goes through. A local
error (given for exact qubits) takes the place of the all-qubit error of that instruction.

A channel is a list of *terms* ``(probability, instructions)``. Aer's mixtures of unitaries
(Pauli, depolarizing and unitary errors) have several terms with fixed probabilities; a term
holding a ``kraus`` instruction has state-dependent probabilities. :func:`term_ops` lowers a
term into ops; the lowering then emits a one-term channel as its ops, and several terms behind
a :class:`~gpuprovider.compile.program.NoiseSelectOp` that sends each shot to one term's block
(blocks end with jumps past the others), which the engine runs by splitting a branch's shots
among the terms with one multinomial draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from qiskit.quantum_info import Pauli

from ..exceptions import InvalidOptionError
from ..kernels.layout import group_by_x_mask
from .gate_ops import gate_op, standard_gate_matrix
from .program import KrausOp, Op, ResetOp

TERM_TOLERANCE = 1e-12
"""Terms of smaller probability are dropped (Aer writes exact zeros for them)."""
CPTP_TOLERANCE = 1e-8
"""How far ``sum K_i^dagger K_i`` may be from the identity."""

Instruction = tuple[str, tuple[int, ...], tuple[Any, ...]]
"""A channel term's instruction: name, qubits (positions within the error), parameters."""


@dataclass(frozen=True)
class Channel:
    """A quantum error on ``num_qubits`` qubits: terms ``(probability, instructions)``."""

    num_qubits: int
    terms: tuple[tuple[float, tuple[Instruction, ...]], ...]


@dataclass
class NoiseSpec:
    """What a noise model does to each instruction (see the module docstring)."""

    default: dict[str, Channel] = field(default_factory=dict)
    """Instruction name -> the all-qubit channel."""
    local: dict[tuple[str, tuple[int, ...]], Channel] = field(default_factory=dict)
    """(instruction name, circuit qubits) -> the channel on exactly those qubits."""
    readout_default: np.ndarray | None = None
    """The 2x2 confusion matrix of every measured qubit without a local one."""
    readout_local: dict[int, np.ndarray] = field(default_factory=dict)
    """Circuit qubit -> its confusion matrix: row ``t`` gives P(recorded | true ``t``)."""

    def channel(self, name: str, qubits: Sequence[int]) -> Channel | None:
        """The channel that goes with instruction ``name`` on circuit ``qubits``, if any. As
        in qiskit-aer, an error is as wide as the highest qubit its terms touch, and acts on
        the first of the instruction's qubits: a two-qubit error whose terms touch only its
        qubit 0 is an error on the instruction's first qubit.

        Raises:
            InvalidOptionError: the error is wider than the instruction (Aer refuses it too).
        """
        channel = self.local.get((name, tuple(qubits)), self.default.get(name))
        if channel is not None and channel.num_qubits > len(qubits):
            raise InvalidOptionError(
                f"noise_model: the error on '{name}' acts on {channel.num_qubits} qubits, but "
                f"the instruction at qubits {list(qubits)} has {len(qubits)}")
        return channel

    def instruction_names(self) -> set[str]:
        """The instruction names that have an error anywhere in the model."""
        return set(self.default) | {name for name, _ in self.local}

    def confusion(self, qubit: int) -> np.ndarray | None:
        """The confusion matrix of a measurement of circuit qubit ``qubit``, if any."""
        return self.readout_local.get(qubit, self.readout_default)


def read_noise_model(model: Any) -> NoiseSpec | None:
    """The :class:`NoiseSpec` of a qiskit-aer ``NoiseModel`` (None for ``None`` or an ideal
    model); a NoiseSpec is returned as it is.

    Raises:
        InvalidOptionError: ``model`` is not a NoiseModel, or holds an error this simulator
            cannot apply (the message names it).
    """
    if model is None:
        return None
    if isinstance(model, NoiseSpec):  # built by GPUSimulator.from_backend
        return model
    to_dict = getattr(model, "to_dict", None)
    if not callable(to_dict) or type(model).__name__ != "NoiseModel":
        raise InvalidOptionError(
            f"noise_model={type(model).__name__} is not a qiskit-aer NoiseModel "
            "(pip install qiskit-aer; from qiskit_aer.noise import NoiseModel)"
        )
    spec = NoiseSpec()
    for error in to_dict().get("errors", []):
        kind = error.get("type")
        if kind == "qerror":
            _read_quantum_error(spec, error)
        elif kind == "roerror":
            _read_readout_error(spec, error)
        else:
            raise InvalidOptionError(f"noise_model holds an error of type {kind!r}, which "
                                     "gpu_simulator cannot apply")
    if not (spec.default or spec.local or spec.readout_default is not None
            or spec.readout_local):
        return None
    return spec


def _read_quantum_error(spec: NoiseSpec, error: dict) -> None:
    terms = []
    num_qubits = 0
    for probability, instructions in zip(error["probabilities"], error["instructions"]):
        probability = float(probability)
        if not np.isfinite(probability) or probability < -TERM_TOLERANCE:
            raise InvalidOptionError(f"noise_model: an error term has probability {probability}")
        read = tuple((str(item["name"]), tuple(int(q) for q in item["qubits"]),
                      tuple(item.get("params", ()))) for item in instructions)
        for _, qubits, _ in read:
            num_qubits = max(num_qubits, max(qubits, default=-1) + 1)
        if probability > TERM_TOLERANCE:
            terms.append((probability, read))
    total = sum(p for p, _ in terms)
    if abs(total - 1) > 1e-6:
        raise InvalidOptionError(f"noise_model: an error's term probabilities sum to {total}")
    gate_qubits = error.get("gate_qubits")
    for name in error["operations"]:
        if gate_qubits:
            for qubits in gate_qubits:
                spec.local[(str(name), tuple(int(q) for q in qubits))] = Channel(
                    num_qubits, tuple(terms))
        else:
            spec.default[str(name)] = Channel(num_qubits, tuple(terms))
    if error.get("noise_qubits"):
        raise InvalidOptionError("noise_model holds a nonlocal error (noise on other qubits "
                                 "than the instruction's), which gpu_simulator cannot apply")


def _read_readout_error(spec: NoiseSpec, error: dict) -> None:
    matrix = np.asarray(error["probabilities"], dtype=np.float64)
    if matrix.shape != (2, 2):
        # Aer applies such an error only to a measure instruction on all its qubits, which
        # Qiskit circuits never hold (measure broadcasts to one instruction per qubit): Aer
        # leaves the counts untouched. Refused rather than silently ignored or applied
        # differently from Aer.
        raise InvalidOptionError(
            f"noise_model holds a {matrix.shape[0]}x{matrix.shape[1]} (correlated, multi-qubit)"
            " readout error; gpu_simulator applies one-qubit readout errors only (qiskit-aer "
            "applies a correlated one only to a multi-qubit measure instruction, which Qiskit "
            "circuits do not contain, so it changes no counts there either)"
        )
    if np.any(matrix < 0) or not np.allclose(matrix.sum(axis=1), 1):
        raise InvalidOptionError(f"noise_model: a readout error's rows {matrix.tolist()} are "
                                 "not probability distributions")
    gate_qubits = error.get("gate_qubits")
    if gate_qubits:
        for (qubit,) in gate_qubits:
            spec.readout_local[int(qubit)] = matrix
    else:
        spec.readout_default = matrix


# --- channels as ops ----------------------------------------------------------------------------


def kraus_op(matrices: Sequence[np.ndarray], qubits: np.ndarray, dtype: np.dtype,
             what: str) -> KrausOp:
    """The op of a Kraus channel on ``qubits`` (positions in the Program), with the Pauli
    decomposition of every ``K_i^dagger K_i`` that gives its probabilities from one read.

    Raises:
        InvalidOptionError: the matrices do not fit the qubits or are not trace preserving.
    """
    k = len(qubits)
    dim = 1 << k
    kraus = [np.asarray(m, dtype=np.complex128) for m in matrices]
    if any(m.shape != (dim, dim) for m in kraus):
        raise InvalidOptionError(f"{what}: Kraus matrices of shapes "
                                 f"{[m.shape for m in kraus]} do not act on {k} qubit(s)")
    total = sum(m.conj().T @ m for m in kraus)
    if not np.allclose(total, np.eye(dim), atol=CPTP_TOLERANCE):
        raise InvalidOptionError(f"{what}: the Kraus matrices are not trace preserving "
                                 "(sum of K^dagger K is not the identity)")
    x_masks, z_masks, weights = [], [], []
    for index in range(4 ** k):
        x_local, z_local = index >> k, index & (dim - 1)
        letters = ["IZXY"[((x_local >> j) & 1) * 2 + ((z_local >> j) & 1)] for j in range(k)]
        # the plain product of the letters: the kernels' convention for (x_mask, z_mask)
        matrix = Pauli("".join(reversed(letters))).to_matrix()
        x_masks.append(sum(1 << int(qubits[j]) for j in range(k) if (x_local >> j) & 1))
        z_masks.append(sum(1 << int(qubits[j]) for j in range(k) if (z_local >> j) & 1))
        weights.append([float(np.real(np.trace(matrix @ (m.conj().T @ m)))) / dim
                        for m in kraus])
    groups_x, term_starts, grouped_z, order = group_by_x_mask(np.array(x_masks),
                                                              np.array(z_masks))
    return KrausOp(np.asarray(qubits, dtype=np.int64),
                   tuple(m.astype(dtype) for m in kraus),
                   groups_x, term_starts, grouped_z,
                   np.asarray(weights, dtype=np.float64)[order].T.copy())


def term_ops(instructions: Sequence[Instruction], positions: Sequence[int],
             dtype: np.dtype, what: str) -> list[Op]:
    """The ops of one channel term on Program ``positions``: each matrix as its cheapest op
    (:func:`~gpuprovider.compile.gate_ops.gate_op`); identity instructions vanish."""
    ops: list[Op] = []
    for name, qubits, params in instructions:
        where = [positions[q] for q in qubits]
        if name in ("id", "delay") or (name == "pauli" and set(params[0]) <= {"I"}):
            continue
        if name == "reset":
            ops.extend(ResetOp(int(q)) for q in where)
            continue
        if name == "kraus":
            ops.append(kraus_op(params, np.asarray(where, dtype=np.int64), dtype, what))
            continue
        if name == "pauli":
            matrix = Pauli(str(params[0])).to_matrix()
        elif name == "unitary":
            matrix = params[0]
        else:
            matrix = standard_gate_matrix(name, params, len(qubits))
            if matrix is None:
                raise InvalidOptionError(f"{what}: the error instruction '{name}' cannot be "
                                         "applied by gpu_simulator")
        ops.append(gate_op(where, matrix, dtype))
    return ops
