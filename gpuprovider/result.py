"""Turning engine outcomes into a ``qiskit.result.Result`` with Qiskit's conventions.

Counts and memory use hexadecimal keys of the clbit integer (clbit 0 is the least
significant bit); the header carries ``creg_sizes`` and ``memory_slots`` so
``Result.get_counts`` formats several registers space-separated, as BasicSimulator does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterExpression
from qiskit.quantum_info import DensityMatrix, Statevector
from qiskit.result import ProbDistribution, Result
from qiskit.result.models import ExperimentResult, ExperimentResultData

from .compile.program import (
    SAVE_OPS,
    Program,
    SaveAmplitudesOp,
    SaveDensityMatrixOp,
    SaveExpectationValueOp,
    SaveOp,
    SaveProbabilitiesOp,
    SaveStatevectorOp,
)
from .engine import Outcome
from .shots import hex_keys

ZERO_THRESHOLD = 1e-10
"""``save_statevector_dict`` and ``save_probabilities_dict`` leave out values at or below this
(Aer's ``zero_threshold``: real and imaginary parts below it are zeroed first)."""


def circuit_header(circuit: QuantumCircuit) -> dict[str, Any]:
    """The experiment header Qiskit's Result uses to format counts and memory.

    Taken when the job is submitted, so later edits of the circuit do not reach the result.
    """
    return {
        "name": circuit.name,
        "n_qubits": circuit.num_qubits,
        "qreg_sizes": [[qreg.name, qreg.size] for qreg in circuit.qregs],
        "creg_sizes": [[creg.name, creg.size] for creg in circuit.cregs],
        "qubit_labels": [[qreg.name, j] for qreg in circuit.qregs for j in range(qreg.size)],
        "clbit_labels": [[creg.name, j] for creg in circuit.cregs for j in range(creg.size)],
        "memory_slots": circuit.num_clbits,
        "global_phase": _phase(circuit.global_phase),
        "metadata": circuit.metadata if circuit.metadata is not None else {},
    }


def _phase(phase: float | ParameterExpression) -> float | str:
    """The circuit's global phase; a parameterised one (a sweep's) as its expression."""
    if isinstance(phase, ParameterExpression) and phase.parameters:
        return str(phase)
    return float(phase)


def counts_dict(outcome: Outcome) -> dict[str, int]:
    """Counts (hex key -> shots) of an outcome."""
    return {key: int(count) for key, count in zip(hex_keys(outcome.rows), outcome.counts)}


def _chopped(values: np.ndarray) -> np.ndarray:
    values = np.array(values)
    if np.iscomplexobj(values):
        values.real[np.abs(values.real) < ZERO_THRESHOLD] = 0
        values.imag[np.abs(values.imag) < ZERO_THRESHOLD] = 0
    else:
        values[np.abs(values) < ZERO_THRESHOLD] = 0
    return values


def _formatted(op: SaveOp, value: Any) -> Any:
    """One saved value in qiskit-aer's result type."""
    if isinstance(op, SaveStatevectorOp):
        if op.as_dict:
            chopped = _chopped(value)
            return {hex(index): complex(chopped[index])
                    for index in np.flatnonzero(np.abs(chopped) > ZERO_THRESHOLD)}
        return Statevector(value)
    if isinstance(op, SaveProbabilitiesOp):
        if op.as_dict:
            chopped = _chopped(value)
            return ProbDistribution({int(m): float(chopped[m])
                                     for m in np.flatnonzero(chopped > ZERO_THRESHOLD)})
        return np.asarray(value, dtype=np.float64)
    if isinstance(op, SaveDensityMatrixOp):
        return DensityMatrix(np.asarray(value, dtype=np.complex128))
    if isinstance(op, SaveExpectationValueOp) and not op.variance:
        return float(value)
    return np.asarray(value)


def _saved_value(op: SaveOp, value: Any) -> Any:
    """A gathered save (see :mod:`gpuprovider.recorder`) in qiskit-aer's result format."""
    conditional = op.subtype.startswith("c_")
    per_shot = op.subtype.endswith("list")

    def shaped(entry: Any) -> Any:
        if not per_shot:
            return _formatted(op, entry)
        if isinstance(op, SaveExpectationValueOp) and not op.variance:
            return np.asarray(entry, dtype=np.float64)  # Aer: an array, not a list
        return [_formatted(op, item) for item in entry]

    if conditional:
        return {key: shaped(entry) for key, entry in value.items()}
    return shaped(value)


def save_type(op: SaveOp) -> str:
    """The save instruction's name, as Aer's ``result_types`` metadata gives it."""
    if isinstance(op, SaveStatevectorOp):
        return "save_statevector_dict" if op.as_dict else "save_statevector"
    if isinstance(op, SaveAmplitudesOp):
        return "save_amplitudes_sq" if op.squared else "save_amplitudes"
    if isinstance(op, SaveProbabilitiesOp):
        return "save_probabilities_dict" if op.as_dict else "save_probabilities"
    if isinstance(op, SaveDensityMatrixOp):
        return "save_density_matrix"
    if isinstance(op, SaveExpectationValueOp):
        return "save_expval_var" if op.variance else "save_expval"
    return "save_pauli_values"


def qubit_metadata(program: Program) -> dict[str, Any]:
    """Aer's keys for the qubits that were simulated: ``active_input_qubits`` (the circuit's
    qubits some operation acts on), ``input_qubit_map`` ([circuit qubit, simulated qubit]
    pairs, descending; empty without truncation), ``num_qubits`` (simulated),
    ``remapped_qubits``."""
    mapping = [] if program.qubit_map is None else list(enumerate(program.qubit_map))
    return {
        "active_input_qubits": list(program.used_qubits),
        "input_qubit_map": [[q, k] for k, q in reversed(mapping)],
        "num_qubits": program.num_qubits,
        "remapped_qubits": any(q != k for k, q in mapping),
    }


def experiment_result(
    header: dict[str, Any], outcome: Outcome, *, memory: bool, seed: int,
    metadata: dict[str, Any],
) -> ExperimentResult:
    """The ExperimentResult of one circuit, given its :func:`circuit_header`."""
    data: dict[str, Any] = {}
    if header["memory_slots"]:
        data["counts"] = counts_dict(outcome)
        if memory:
            data["memory"] = hex_keys(outcome.memory)
    else:  # BasicSimulator's convention: no clbits, empty counts
        data["counts"] = {}
    saves = {op.label: op for op in outcome.program.ops if isinstance(op, SAVE_OPS)}
    for label, value in outcome.saved.items():
        data[label] = _saved_value(saves[label], value)
    saves_metadata = {}
    if outcome.saved:
        saves_metadata = {
            "result_types": {label: save_type(saves[label]) for label in outcome.saved},
            "result_subtypes": {label: saves[label].subtype for label in outcome.saved},
        }
    return ExperimentResult(
        shots=outcome.shots,
        success=True,
        data=ExperimentResultData(**data),
        status="DONE",
        seed_simulator=seed,
        header=header,
        time_taken=outcome.time_taken,
        metadata={
            **metadata,
            "method": outcome.method,
            "sampled": outcome.sampled,
            # One simulation sampled for every shot (a density matrix is one, as in Aer).
            "measure_sampling": outcome.sampled or outcome.method == "density_matrix",
            "branches": outcome.branches,
            "error_patterns": outcome.error_patterns,
            "simulation_time": outcome.time_taken,
            **qubit_metadata(outcome.program),
            "num_clbits": outcome.program.num_clbits,
            "passes": outcome.program.passes,
            "gates": outcome.program.gates,
            **saves_metadata,
            **outcome.device_metadata,
        },
    )


def build_result(
    experiments: list[ExperimentResult], *, backend_name: str, backend_version: str,
    job_id: str, time_taken: float, metadata: dict[str, Any],
) -> Result:
    """The job's Result."""
    return Result(
        backend_name=backend_name,
        backend_version=backend_version,
        job_id=job_id,
        success=True,
        results=experiments,
        status="COMPLETED",
        time_taken=time_taken,
        metadata=metadata,
    )
