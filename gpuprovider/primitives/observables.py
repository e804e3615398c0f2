"""Observables as Pauli terms for the estimator: masks, grouping by X-mask, shot noise."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from qiskit.quantum_info import SparseObservable

from ..compile.program import SavePauliValuesOp
from ..kernels.layout import group_by_x_mask

MAX_SHOTS_PER_TERM = 1 << 53
"""Most shots one Pauli term is given at ``precision > 0`` (a float64 counts them exactly)."""


def pauli_terms(observable: SparseObservable) -> dict[tuple[int, int], float]:
    """``{(x_mask, z_mask): coefficient}`` of ``observable`` in the Pauli basis (projectors
    such as ``+`` or ``0`` are expanded), in the kernels' convention (Y on both masks)."""
    terms: dict[tuple[int, int], float] = {}
    for label, indices, coeff in observable.as_paulis().to_sparse_list():
        x_mask = z_mask = 0
        for letter, qubit in zip(label, indices):
            if letter in "XY":
                x_mask |= 1 << qubit
            if letter in "ZY":
                z_mask |= 1 << qubit
        key = (x_mask, z_mask)
        terms[key] = terms.get(key, 0.0) + complex(coeff).real  # Hermitian: the array checks
    return terms


@dataclass(frozen=True)
class PauliTable:
    """The distinct Pauli terms of a pub's observables and each observable over them."""

    x_masks: np.ndarray
    z_masks: np.ndarray
    columns: tuple[np.ndarray, ...]
    """Per observable: which terms it has."""
    coefficients: tuple[np.ndarray, ...]
    """Per observable: the coefficient of each of its terms."""

    @classmethod
    def of(cls, observables: Sequence[SparseObservable]) -> PauliTable:
        index: dict[tuple[int, int], int] = {}
        columns, coefficients = [], []
        for observable in observables:
            terms = pauli_terms(observable)
            columns.append(np.array([index.setdefault(key, len(index)) for key in terms],
                                    dtype=np.int64))
            coefficients.append(np.array(list(terms.values()), dtype=np.float64))
        keys = np.array(list(index), dtype=np.int64).reshape(-1, 2)
        return cls(keys[:, 0].copy(), keys[:, 1].copy(), tuple(columns), tuple(coefficients))

    def read_out(self, observables: Sequence[int], label: str) -> PauliReadOut:
        """The save op that evaluates every term of ``observables`` in one call."""
        wanted = np.unique(np.concatenate([np.zeros(0, dtype=np.int64)]
                                          + [self.columns[o] for o in observables]))
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
    means = 2.0 * rng.binomial(shots, p_plus) / shots - 1.0
    variances = np.where(shots > 1, (1.0 - means**2) * shots / np.maximum(shots - 1, 1), 1.0)
    estimate += float(np.dot(c, means))
    return estimate, math.sqrt(float(np.sum(c**2 * variances / shots)))
