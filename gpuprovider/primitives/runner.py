"""What both primitives do: lower each pub's circuit once, walk its parameter sets, submit."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.primitives.containers.bindings_array import BindingsArray

from ..backend import GPUSimulator
from ..compile.program import Program
from ..job import JobControl
from ..options import RunConfig
from .job import GPUPrimitiveJob


@dataclass(frozen=True)
class Bindings:
    """A pub's parameter sets, flattened: ``values[b]`` is set ``b``, one column per
    parameter of ``parameters``; ``shape`` is the pub's parameter shape."""

    parameters: tuple[Parameter, ...]
    values: np.ndarray
    shape: tuple[int, ...]

    @classmethod
    def of(cls, circuit: QuantumCircuit, parameter_values: BindingsArray,
           where: str) -> Bindings:
        """The parameter sets of a pub; ValueError for a value that is not finite."""
        parameters = tuple(circuit.parameters)
        shape = tuple(parameter_values.shape)
        values = (parameter_values.as_array(parameters).reshape(math.prod(shape), -1)
                  if parameters else np.zeros((math.prod(shape), 0)))
        if not np.all(np.isfinite(values)):
            bad = np.argwhere(~np.isfinite(values))[0]
            raise ValueError(
                f"{where}: parameter '{parameters[bad[1]].name}' of parameter set {bad[0]} is "
                f"{values[tuple(bad)]}; values must be finite"
            )
        return cls(parameters, values.astype(np.float64), shape)

    def __len__(self) -> int:
        return len(self.values)

    def bind(self, program: Program, index: int) -> Program:
        """``program`` with parameter set ``index`` bound."""
        if not self.parameters:
            return program
        return program.bind(dict(zip(self.parameters, self.values[index].tolist())))


class BindingControl:
    """The job's control as the engine sees it during one parameter set: cancellation is
    passed on; progress is counted per parameter set by the primitive instead."""

    def __init__(self, control: JobControl) -> None:
        self.check = control.check

    def advance(self, steps: int = 1) -> None:
        pass


def compile_pubs(backend: GPUSimulator, config: RunConfig,
                 circuits: Sequence[QuantumCircuit]) -> tuple[list[Program], list[int]]:
    """Each pub's circuit lowered once with its parameters left open, and checked."""
    wheres = [f"pub {index} (circuit '{circuit.name}')" for index, circuit in enumerate(circuits)]
    return backend._compile(circuits, config, wheres, [True] * len(circuits))


def submit(backend: GPUSimulator, job_id: str, work: Callable[[JobControl], Any],
           config: RunConfig, programs: Sequence[Program], max_states: Sequence[int],
           steps: int) -> GPUPrimitiveJob:
    """Run ``work`` on its own thread once the device has room; the primitive's job."""
    return GPUPrimitiveJob(backend._submit(job_id, work, config, programs, max_states, steps))


def simulator_metadata(config: RunConfig, time_taken: float) -> dict[str, Any]:
    """What ran a pub: device, precision, seed and seconds."""
    return {"device": config.device, "precision": config.precision, "seed": config.seed,
            "simulation_time": time_taken}


def program_runs(bindings: Bindings, program: Program,
                 plan: Callable[[Program], Program],
                 extra: Callable[[int], list] | None = None) -> Iterator[tuple[int, Program]]:
    """``(b, program to run)`` for each parameter set ``b``: bound, ``extra(b)`` ops
    appended, planned."""
    for index in range(len(bindings)):
        bound = bindings.bind(program, index)
        if extra is not None:
            bound = replace(bound, ops=[*bound.ops, *extra(index)])
        yield index, plan(bound)
