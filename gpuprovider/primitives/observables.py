"""Observables as Pauli terms for the estimator: masks, grouping by X-mask, shot noise."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from qiskit.quantum_info import SparseObservable

from ..compile.program import Program, SavePauliValuesOp
from ..draws import binomials
from ..kernels.layout import group_by_x_mask

MAX_SHOTS_PER_TERM = 1 << 53
"""Most shots one Pauli term is given at ``precision > 0`` (a float64 counts them exactly)."""


TermKey = tuple[int, int, tuple[tuple[int, str], ...]]
"""A Pauli term: its X- and Z-mask on the simulated qubits, and its letters on idle qubits
that truncation left out (``(qubit, letter)``; empty without truncation)."""


def pauli_terms(observable: SparseObservable, positions: Sequence[int] | None = None
                ) -> dict[TermKey, float]:
    """``{term: coefficient}`` of ``observable`` in the Pauli basis (projectors such as ``+``
    or ``0`` are expanded), in the kernels' convention (Y on both masks).

    ``positions[q]``: the simulated qubit of circuit qubit ``q``, or -1 for an idle qubit
    that truncation left out. An idle qubit is |0>: a Z on it reads +1, an X or a Y makes
    the term 0. Such a term keeps its own key, so that every term is priced and sampled
    exactly as without truncation.
    """
    terms: dict[TermKey, float] = {}
    for label, indices, coeff in observable.as_paulis().to_sparse_list():
        x_mask = z_mask = 0
        idle = []
        for letter, qubit in zip(label, indices):
            position = qubit if positions is None else positions[qubit]
            if position < 0:
                idle.append((int(qubit), letter))
                continue
            if letter in "XY":
                x_mask |= 1 << position
            if letter in "ZY":
                z_mask |= 1 << position
        key = (x_mask, z_mask, tuple(sorted(idle)))
        terms[key] = terms.get(key, 0.0) + complex(coeff).real  # Hermitian: the array checks
    return terms


def simulated_positions(program: Program) -> list[int] | None:
    """Per circuit qubit, its qubit in ``program`` (-1: truncated); None without truncation."""
    if program.qubit_map is None:
        return None
    positions = [-1] * program.circuit_qubits
    for position, qubit in enumerate(program.qubit_map):
        positions[qubit] = position
    return positions


@dataclass(frozen=True)
class PauliTable:
    """The distinct Pauli terms of a pub's observables and each observable over them."""

    x_masks: np.ndarray
    z_masks: np.ndarray
    vanishing: np.ndarray
    """Per term: X or Y on an idle qubit, so its value is 0 without reading the state."""
    identity: np.ndarray
    """Per term: the identity (exact, never sampled)."""
    columns: tuple[np.ndarray, ...]
    """Per observable: which terms it has."""
    coefficients: tuple[np.ndarray, ...]
    """Per observable: the coefficient of each of its terms."""

    @classmethod
    def of(cls, observables: Sequence[SparseObservable],
           positions: Sequence[int] | None = None) -> PauliTable:
        """The table of ``observables`` on the simulated qubits (``positions``: see
        :func:`pauli_terms`)."""
        index: dict[TermKey, int] = {}
        columns, coefficients = [], []
        for observable in observables:
            terms = pauli_terms(observable, positions)
            columns.append(np.array([index.setdefault(key, len(index)) for key in terms],
                                    dtype=np.int64))
            coefficients.append(np.array(list(terms.values()), dtype=np.float64))
        keys = list(index)
        x_masks = np.array([x for x, _, _ in keys], dtype=np.int64)
        z_masks = np.array([z for _, z, _ in keys], dtype=np.int64)
        vanishing = np.array([any(letter in "XY" for _, letter in idle) for _, _, idle in keys],
                             dtype=bool)
        identity = (x_masks == 0) & (z_masks == 0) & np.array([not idle for _, _, idle in keys],
                                                              dtype=bool)
        return cls(x_masks, z_masks, vanishing, identity, tuple(columns), tuple(coefficients))

    def read_out(self, observables: Sequence[int], label: str) -> PauliReadOut:
        """The save op that evaluates every term of ``observables`` that reads the state, in
        one call (vanishing terms stay 0)."""
        wanted = np.unique(np.concatenate([np.zeros(0, dtype=np.int64)]
                                          + [self.columns[o] for o in observables]))
        wanted = wanted[~self.vanishing[wanted]]
        x_masks, term_starts, z_masks, order = group_by_x_mask(self.x_masks[wanted],
                                                               self.z_masks[wanted])
        return PauliReadOut(SavePauliValuesOp(label, x_masks, term_starts, z_masks),
                            wanted[order])


@dataclass(frozen=True)
class PauliReadOut:
    """A save op over some of a table's terms; ``terms[k]`` is the term of its value ``k``."""

    op: SavePauliValuesOp
    terms: np.ndarray


def shot_estimate(coefficients: np.ndarray, exact: np.ndarray, is_identity: np.ndarray,
                  precision: float, rng: np.random.Generator) -> tuple[float, float]:
    """A shot-based estimate of ``sum(c_j <P_j>)`` and its standard error.

    Each non-identity term is measured on its own with ``N_j = ceil(|c_j| * L / precision**2)``
    shots, ``L`` the sum of those terms' ``|c_j|``: a Pauli reads +1 with probability
    ``(1 + <P_j>) / 2``, so its count of +1 is drawn from that binomial. With every variance
    at most 1 this allocation keeps the estimate's standard deviation within ``precision``.
    The standard error comes from the samples (the unbiased variance of each term's
    readings), not from the exact values; identity terms are exact.
    """
    measured = ~is_identity & (coefficients != 0)
    estimate = float(np.dot(coefficients[~measured], exact[~measured]))
    if not measured.any():
        return estimate, 0.0
    c = coefficients[measured]
    scale = float(np.abs(c).sum()) / precision**2
    shots = np.minimum(np.ceil(np.abs(c) * scale), MAX_SHOTS_PER_TERM).astype(np.int64)
    p_plus = np.clip((1.0 + exact[measured]) / 2.0, 0.0, 1.0)
    means = 2.0 * binomials(rng, shots, p_plus) / shots - 1.0
    variances = np.where(shots > 1, (1.0 - means**2) * shots / np.maximum(shots - 1, 1), 1.0)
    estimate += float(np.dot(c, means))
    return estimate, math.sqrt(float(np.sum(c**2 * variances / shots)))
