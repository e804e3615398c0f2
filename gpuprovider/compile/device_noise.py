"""A device's noise model built from its Target, without qiskit-aer.

The model is the one qiskit-aer's ``NoiseModel.from_backend`` builds (its documented recipe):

* after every instruction with a duration, **thermal relaxation** on each of its qubits
  (T1, T2 from the Target's qubit properties, T2 truncated to 2 T1, ground state at zero
  temperature): a mixture of identity, Z and resets when T2 <= T1, a Kraus channel (from its
  Choi matrix) otherwise;
* before that, for a gate with a reported error ``e`` (one minus the average gate fidelity),
  a **depolarizing** channel whose parameter makes the composition's average gate fidelity
  ``1 - e``: ``p = d (F_relax - 1 + e) / (d F_relax - 1)`` with ``d = 2^n`` (``e`` capped at
  ``d / (d + 1)``, ``p`` at ``4^n / (4^n - 1)``), none when relaxation alone explains ``e``;
* no quantum error on ``measure``; a **readout error** per qubit from the measurement's
  ``prob_meas1_prep0`` / ``prob_meas0_prep1`` when present, else its symmetric ``error``.

Delays get no relaxation (Aer adds it through a transpiler pass of its own). The result is a
:class:`~gpuprovider.compile.noise.NoiseSpec`, which the ``noise_model`` option takes as is.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from qiskit.circuit import Gate, Measure
from qiskit.quantum_info import Choi, Kraus
from qiskit.transpiler import Target

from .noise import TERM_TOLERANCE, Channel, Instruction, NoiseSpec

Terms = list[tuple[float, tuple[Instruction, ...]]]


def device_noise(target: Target) -> NoiseSpec:
    """The noise of a device with ``target`` (see the module docstring)."""
    spec = NoiseSpec()
    properties = target.qubit_properties or []
    for name in target.operation_names:
        operation = target.operation_from_name(name)
        by_qubits = target[name]
        if isinstance(operation, Measure):
            for qubits, props in (by_qubits or {}).items():
                readout = _readout(props)
                if qubits and readout is not None:
                    spec.readout_local[int(qubits[0])] = readout
            continue
        for qubits, props in (by_qubits or {}).items():
            if props is None or qubits is None:
                continue
            relaxation = _relaxation(qubits, props.duration, properties)
            depolarizing = None
            if isinstance(operation, Gate) and props.error:
                depolarizing = _depolarizing(len(qubits), props.error, relaxation)
            terms = _compose(depolarizing, relaxation)
            if terms is not None:
                spec.local[(name, tuple(int(q) for q in qubits))] = Channel(len(qubits),
                                                                           tuple(terms))
    return spec


def _readout(props) -> np.ndarray | None:
    if props is None:
        return None
    p01 = getattr(props, "prob_meas1_prep0", None)
    p10 = getattr(props, "prob_meas0_prep1", None)
    if p01 is None or p10 is None:
        if not props.error:
            return None
        p01 = p10 = float(props.error)
    return np.array([[1 - p01, p01], [p10, 1 - p10]], dtype=np.float64)


# --- thermal relaxation -------------------------------------------------------------------------


def _relaxation(qubits, duration, properties) -> tuple[Terms, float] | None:
    """The tensor product of each qubit's relaxation over ``duration`` and its process
    fidelity, or None when there is none (no duration, no T1/T2)."""
    if not duration:
        return None
    per_qubit = []
    fidelity = 1.0
    for position, qubit in enumerate(qubits):
        props = properties[qubit] if qubit < len(properties) else None
        t1 = getattr(props, "t1", None)
        t2 = getattr(props, "t2", None)
        t1 = math.inf if t1 is None else float(t1)
        t2 = 2 * t1 if t2 is None else min(float(t2), 2 * t1)
        terms, process_fidelity = _qubit_relaxation(t1, t2, float(duration), position)
        per_qubit.append(terms)
        fidelity *= process_fidelity
    return _product(per_qubit), fidelity


def _qubit_relaxation(t1: float, t2: float, time: float, position: int
                      ) -> tuple[Terms, float]:
    """One qubit's thermal relaxation towards |0> (terms on ``position``) and its process
    fidelity ``sum_k |tr K_k|^2 / 4``."""
    p_reset = 0.0 if math.isinf(t1) else 1 - math.exp(-time / t1)
    exp_t2 = 1.0 if math.isinf(t2) else math.exp(-time / t2)
    if t2 > t1:  # not a mixture of unitaries and resets: a Kraus channel from its Choi matrix
        choi = np.array([[1, 0, 0, exp_t2], [0, 0, 0, 0], [0, 0, p_reset, 0],
                         [exp_t2, 0, 0, 1 - p_reset]], dtype=np.complex128)
        kraus = Kraus(Choi(choi)).data
        fidelity = sum(abs(np.trace(k)) ** 2 for k in kraus) / 4
        return [(1.0, (("kraus", (position,), tuple(kraus)),))], float(fidelity)
    rate_difference = (0.0 if math.isinf(t2) else 1 / t2) - (0.0 if math.isinf(t1) else 1 / t1)
    p_z = (1 - p_reset) * (1 - math.exp(-time * rate_difference)) / 2
    terms = [(1 - p_z - p_reset, ()), (p_z, (("z", (position,), ()),)),
             (p_reset, (("reset", (position,), ()),))]
    # tr of the identity is 2, of Z 0; a reset's Kraus pair {|0><0|, |0><1|} gives 1
    fidelity = (4 * (1 - p_z - p_reset) + p_reset) / 4
    return [term for term in terms if term[0] > TERM_TOLERANCE], fidelity


# --- depolarizing and composition --------------------------------------------------------------


def _depolarizing(num_qubits: int, error: float, relaxation) -> Terms | None:
    """The depolarizing channel that, followed by ``relaxation``, has gate error ``error``."""
    dim = 2 ** num_qubits
    process_fidelity = relaxation[1] if relaxation is not None else 1.0
    relax_fidelity = (dim * process_fidelity + 1) / (dim + 1)  # average gate fidelity
    if error <= 1 - relax_fidelity:
        return None
    error = min(error, dim / (dim + 1))
    parameter = dim * (error - (1 - relax_fidelity)) / (dim * relax_fidelity - 1)
    parameter = min(parameter, 4 ** num_qubits / (4 ** num_qubits - 1))
    each = parameter / 4 ** num_qubits
    terms: Terms = []
    for letters in itertools.product("IXYZ", repeat=num_qubits):
        label = "".join(letters)
        if set(label) == {"I"}:
            terms.append((1 - parameter + each, ()))
        else:
            terms.append((each, (("pauli", tuple(range(num_qubits)), (label,)),)))
    return [term for term in terms if term[0] > TERM_TOLERANCE]


def _product(factors: list[Terms]) -> Terms:
    """The terms of applying every factor (on disjoint qubits, or one after another)."""
    terms: Terms = [(1.0, ())]
    for factor in factors:
        terms = [(p * q, first + second) for p, first in terms for q, second in factor]
    return terms


def _compose(depolarizing: Terms | None, relaxation) -> Terms | None:
    """Depolarizing, then relaxation (either may be missing)."""
    parts = [part for part in (depolarizing, relaxation and relaxation[0]) if part]
    if not parts:
        return None
    return _product(parts)

