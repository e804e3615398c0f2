"""What both primitives do: lower each pub's circuit once, walk its parameter sets, submit."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.primitives import PrimitiveResult
from qiskit.primitives.containers.bindings_array import BindingsArray

from ..backend import GPUSimulator
from ..compile.program import Program
from ..job import JobControl
from ..options import RunConfig
from .job import GPUPrimitiveJob
from .options import PrimitiveOptions, Seed, build_options, run_config


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
        values = (parameter_values.as_array(parameters).reshape(math.prod(shape),
                                                                len(parameters))
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


def pub_name(index: int, circuit: QuantumCircuit) -> str:
    """How errors name a pub."""
    return f"pub {index} (circuit '{circuit.name}')"


RunTask = Callable[[int, Any, RunConfig, Callable[[Program], Program], JobControl], Any]
"""Runs pub ``index``'s task on the job's thread: ``(index, task, config, plan, control)``."""


class SimulatorPrimitive:
    """What both primitives share: checked options, the simulator that runs their pubs,
    one lowering per pub and a job per ``run``."""

    _options: PrimitiveOptions
    _backend: GPUSimulator

    def _configure(self, seed: Any, options: Mapping[str, Any] | None,
                   defaults: dict[str, Any], backend: GPUSimulator | None) -> dict[str, Any]:
        """Check the constructor's arguments (:func:`build_options`); the defaults."""
        self._options, defaults, self._backend = build_options(seed, options, defaults,
                                                               backend)
        return defaults

    @property
    def seed(self) -> Seed:
        return self._options.seed

    @property
    def options(self) -> PrimitiveOptions:
        return self._options

    @property
    def backend(self) -> GPUSimulator:
        """The simulator (device, precision) that runs the pubs."""
        return self._backend

    def _compile_pubs(self, circuits: Sequence[QuantumCircuit]
                      ) -> tuple[RunConfig, list[Program], list[int]]:
        """The run's options, and each pub's circuit lowered once with its parameters left
        open and checked (with how many statevectors it may hold)."""
        config = run_config(self._backend, self._options.seed)
        wheres = [pub_name(index, circuit) for index, circuit in enumerate(circuits)]
        programs, max_states = self._backend._compile(circuits, config, wheres,
                                                      [True] * len(circuits))
        return config, programs, max_states

    def _submit_tasks(self, config: RunConfig, tasks: Sequence[Any], run_task: RunTask,
                      programs: Sequence[Program], max_states: Sequence[int]
                      ) -> GPUPrimitiveJob:
        """Run every task on one thread once the device has room; progress counts
        parameter sets (``task.bindings``)."""
        plan = self._backend._plan_for(config)

        def work(control: JobControl) -> PrimitiveResult:
            results = [run_task(index, task, config, plan, control)
                       for index, task in enumerate(tasks)]
            return PrimitiveResult(results, metadata={"version": 2})

        steps = sum(len(task.bindings) for task in tasks)
        return GPUPrimitiveJob(self._backend._submit(str(uuid.uuid4()), work, config, programs,
                                                     max_states, steps))


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
