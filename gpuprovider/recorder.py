"""How save instructions gather their values over the shots of a run (Aer's subtypes).

The engine computes a save's value once per branch of shots that reaches it and hands it
here with the branch's shot count and classical memory. ``single`` keeps the first branch's
value; ``average`` weighs each branch by its shots; ``accum`` sums over shots; ``list`` gives
one value per shot, in the same shot order as the run's memory. ``c_`` subtypes do the same
per value of the classical memory at the save (hex, ``''`` without clbits). When one
simulation serves every shot (a sampled run), a save is reached once, as in Aer: ``list``
then holds one value and ``accum`` is that value, not multiplied by the shots.
"""

from __future__ import annotations

import cmath
from functools import lru_cache
from typing import Any

import numpy as np

from .compile.program import (
    PauliTerms,
    SaveAmplitudesOp,
    SaveDensityMatrixOp,
    SaveExpectationValueOp,
    SaveOp,
    SavePauliValuesOp,
    SaveProbabilitiesOp,
    SaveStatevectorOp,
)
from .kernels.interface import KernelSet
from .kernels.layout import group_by_x_mask


# --- a save's value on one state ------------------------------------------------------------


def _host_state(kernels: KernelSet, state, global_phase: float) -> np.ndarray:
    """The state on the host, in complex128 (as Aer returns it), with the global phase."""
    vector = np.array(kernels.to_host(state), dtype=np.complex128)
    if global_phase:
        vector *= cmath.exp(1j * global_phase)
    return vector


@lru_cache(maxsize=64)
def _grouped_terms(terms: PauliTerms) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A save's Pauli sum grouped by X-mask (once per sum, not per evaluation): the kernels'
    arguments and the coefficients in the grouped order."""
    x_masks, z_masks, coefficients = (np.array(column) for column in zip(*terms)) if terms \
        else (np.zeros(0, np.int64),) * 3
    groups_x, term_starts, grouped_z, order = group_by_x_mask(x_masks, z_masks)
    return groups_x, term_starts, grouped_z, np.asarray(coefficients, np.float64)[order]


def _expectation(kernels: KernelSet, state, terms: PauliTerms) -> float:
    x_masks, term_starts, z_masks, coefficients = _grouped_terms(terms)
    values = kernels.expectation_pauli_groups(state, x_masks, term_starts, z_masks)
    return float(np.dot(values, coefficients))


def reduced_density_matrix(vector: np.ndarray, qubits: np.ndarray) -> np.ndarray:
    """``Tr_rest |psi><psi|`` on ``qubits`` (``qubits[0]`` the least significant index bit)."""
    num_qubits = int(vector.size).bit_length() - 1
    axes = [num_qubits - 1 - int(q) for q in qubits]  # tensor axis of qubit q (big-endian)
    rest = [axis for axis in range(num_qubits) if axis not in axes]
    tensor = vector.reshape((2,) * num_qubits).transpose(axes[::-1] + rest)
    matrix = tensor.reshape(1 << len(axes), -1)
    return matrix @ matrix.conj().T


def save_value(op: SaveOp, kernels: KernelSet, state) -> Any:
    """What ``op`` saves of ``state`` (one branch's value, before gathering)."""
    if isinstance(op, SaveStatevectorOp):
        vector = _host_state(kernels, state, op.global_phase)
        return vector if op.order is None else vector[op.order]
    if isinstance(op, SaveAmplitudesOp):
        amplitudes = _host_state(kernels, state, op.global_phase)[op.indices]
        return np.abs(amplitudes) ** 2 if op.squared else amplitudes
    if isinstance(op, SaveProbabilitiesOp):
        return np.asarray(kernels.marginal_probabilities(state, op.qubits), dtype=np.float64)
    if isinstance(op, SaveDensityMatrixOp):
        return reduced_density_matrix(_host_state(kernels, state, 0.0), op.qubits)
    if isinstance(op, SaveExpectationValueOp):
        mean = _expectation(kernels, state, op.terms)  # the variance: <H^2> - <H>^2
        if op.variance:
            return np.array([mean, _expectation(kernels, state, op.square_terms) - mean**2])
        return mean
    if isinstance(op, SavePauliValuesOp):
        return kernels.expectation_pauli_groups(state, op.x_masks, op.term_starts, op.z_masks)
    raise TypeError(f"not a save op: {op!r}")


# --- gathering over shots -------------------------------------------------------------------


class _Average:
    """A value averaged (or summed) over the shots that reached its save."""

    def __init__(self) -> None:
        self.total: Any = 0.0
        self.shots = 0

    def add(self, value: Any, shots: int) -> None:
        self.total = self.total + np.multiply(value, shots)
        self.shots += shots

    def value(self, summed: bool) -> Any:
        return self.total if summed else self.total / self.shots


PerShot = dict[str, tuple[str, Any]]
"""A branch's ``list`` saves so far: label -> (memory key, value)."""


class SaveRecorder:
    """The saves of one run, gathered as their subtypes say."""

    def __init__(self, sampled: bool) -> None:
        self.sampled = sampled
        self._single: dict[str, Any] = {}
        self._averages: dict[str, Any] = {}
        self._finished: list[tuple[PerShot, int]] = []
        self._list_labels: dict[str, bool] = {}
        """Label -> conditional, for the ``list`` saves seen."""
        self._summed: set[str] = set()
        """Labels of the ``accum`` saves seen."""

    def wants(self, op: SaveOp, key: str) -> bool:
        """False when the value would be dropped: a ``single`` save already holds one."""
        if op.subtype == "single":
            return op.label not in self._single
        if op.subtype == "c_single":
            return key not in self._single.get(op.label, {})
        return True

    def record(self, op: SaveOp, value: Any, shots: int, key: str, per_shot: PerShot) -> None:
        """A branch of ``shots`` shots with memory ``key`` reached ``op`` with ``value``."""
        conditional = op.subtype.startswith("c_")
        kind = op.subtype.removeprefix("c_")
        if kind == "list":
            per_shot[op.label] = (key, value)
            self._list_labels[op.label] = conditional
        elif kind == "single":
            if conditional:
                self._single.setdefault(op.label, {}).setdefault(key, value)
            else:
                self._single.setdefault(op.label, value)
        else:
            if kind == "accum":
                self._summed.add(op.label)
            averages = self._averages
            if conditional:
                averages = averages.setdefault(op.label, {})
                slot = key
            else:
                slot = op.label
            averages.setdefault(slot, _Average()).add(value, shots)

    def finish(self, per_shot: PerShot, shots: int) -> None:
        """A branch of ``shots`` shots finished with these ``list`` values."""
        self._finished.append((per_shot, shots))

    def needs_shot_order(self) -> bool:
        return bool(self._list_labels) and not self.sampled

    def values(self, shot_order: np.ndarray | None) -> dict[str, Any]:
        """Label -> gathered value. ``shot_order``: the finished branches' shots (branch by
        branch, as the memory rows) in the run's shot order."""
        saved: dict[str, Any] = dict(self._single)
        for label, entry in self._averages.items():
            summed = label in self._summed and not self.sampled
            if isinstance(entry, dict):
                saved[label] = {key: average.value(summed) for key, average in entry.items()}
            else:
                saved[label] = entry.value(summed)
        for label, conditional in self._list_labels.items():
            saved[label] = self._per_shot(label, conditional, shot_order)
        return saved

    def _per_shot(self, label: str, conditional: bool, shot_order: np.ndarray | None) -> Any:
        branches = self._finished
        if self.sampled:  # one simulation: the save ran once
            owners = np.zeros(1 if branches else 0, dtype=np.int64)
        else:
            owners = np.repeat(np.arange(len(branches)),
                               [shots for _, shots in branches]).astype(np.int64)
            if shot_order is not None:
                owners = owners[shot_order]
        entries = [branches[b][0].get(label) for b in owners.tolist()]
        if not conditional:
            return [entry[1] for entry in entries if entry is not None]
        grouped: dict[str, list] = {}
        for entry in entries:
            if entry is not None:
                grouped.setdefault(entry[0], []).append(entry[1])
        return grouped
