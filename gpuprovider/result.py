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
from qiskit.quantum_info import Statevector
from qiskit.result import Result
from qiskit.result.models import ExperimentResult, ExperimentResultData

from .compile.program import SAVE_OPS, SaveOp, SaveProbabilitiesOp, SaveStatevectorOp
from .engine import WORD_BITS, Outcome

PROBABILITY_CUTOFF = 1e-12
"""``save_probabilities_dict`` leaves out outcomes below this probability."""


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


def _hex_keys(rows: np.ndarray) -> list[str]:
    """``hex`` of each row of 64-bit words (word 0 least significant)."""
    keys = []
    for row in rows:
        value = 0
        for word_index, word in enumerate(row):
            value |= int(word) << (WORD_BITS * word_index)
        keys.append(hex(value))
    return keys


def memory_to_counts(memory: np.ndarray, want_memory: bool) -> tuple[dict[str, int], list[str]]:
    """Counts (hex key -> shots) and, if asked, the per-shot hex list, in shot order."""
    unique, inverse, counts = np.unique(memory, axis=0, return_inverse=True, return_counts=True)
    keys = _hex_keys(unique)
    count_dict = {key: int(count) for key, count in zip(keys, counts)}
    per_shot = [keys[i] for i in inverse.ravel()] if want_memory else []
    return count_dict, per_shot


def _saved_value(op: SaveOp, value: Any) -> Any:
    """A saved value in qiskit-aer's result format."""
    if isinstance(op, SaveStatevectorOp):
        return Statevector(value)
    if isinstance(op, SaveProbabilitiesOp):
        if op.as_dict:
            return {int(m): float(p) for m, p in enumerate(value) if p > PROBABILITY_CUTOFF}
        return np.asarray(value, dtype=np.float64)
    if op.variance:
        return [float(v) for v in value]
    return float(value)


def experiment_result(
    header: dict[str, Any], outcome: Outcome, *, memory: bool, seed: int,
    metadata: dict[str, Any],
) -> ExperimentResult:
    """The ExperimentResult of one circuit, given its :func:`circuit_header`."""
    data: dict[str, Any] = {}
    if header["memory_slots"]:
        counts, per_shot = memory_to_counts(outcome.memory, memory)
        data["counts"] = counts
        if memory:
            data["memory"] = per_shot
    else:  # BasicSimulator's convention: no clbits, empty counts
        data["counts"] = {}
    saves = {op.label: op for op in outcome.program.ops if isinstance(op, SAVE_OPS)}
    for label, value in outcome.saved.items():
        data[label] = _saved_value(saves[label], value)
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
            "method": "statevector",
            "sampled": outcome.sampled,
            "branches": outcome.branches,
            "simulation_time": outcome.time_taken,
            "num_qubits": outcome.program.num_qubits,
            "passes": outcome.program.passes,
            "gates": outcome.program.gates,
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
