"""What both primitives share: their options, each pub's parameter sets, and the backend's
run path (:class:`~gpuprovider.execution.Execution`) that compiles, plans, runs and submits."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.primitives import PrimitiveResult
from qiskit.primitives.containers.bindings_array import BindingsArray

from .. import batched, fanout
from ..backend import GPUSimulator
from ..compile.program import Program
from ..execution import CompiledCircuit, Execution
from ..job import JobControl
from ..kernels.interface import Marker
from .job import GPUPrimitiveJob
from .options import BACKEND_OPTIONS, PrimitiveOptions, Seed, build_options, execution_for


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


class BindingControl:
    """The job's control as the engine sees it during one parameter set: cancellation is
    passed on; progress counts parameter sets, each done when the device has reached the
    last marker the engine recorded for it."""

    def __init__(self, control: JobControl) -> None:
        self.check = control.check
        self._control = control
        self._last: Marker | None = None

    def advance(self, steps: int = 1) -> None:
        pass

    def mark(self, marker: Marker) -> None:
        self._last = marker

    def binding_done(self) -> None:
        """One more parameter set enqueued; done once its last marker completes."""
        self._control.advance()
        if self._last is not None:
            self._control.mark(self._last)
            self._last = None


def pub_name(index: int, circuit: QuantumCircuit) -> str:
    """How errors name a pub."""
    return f"pub {index} (circuit '{circuit.name}')"


RunTask = Callable[..., Any]
"""Runs pub ``index``'s task on the job's thread: ``(index, task, execution, control)``,
and what the job's ``Prepare`` made, where it has one."""
Prepare = Callable[[Sequence[Any], Execution, JobControl], Any]
"""Runs on the job's thread before its tasks: ``(tasks, execution, control)``."""


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

    @classmethod
    def from_backend(cls, backend: Any, **options: Any):
        """A primitive running on ``backend`` (a GPUSimulator), or on a GPUSimulator modelled
        on it (any BackendV2, such as a fake device: :meth:`GPUSimulator.from_backend`), as
        qiskit-aer's ``from_backend``; ``options`` are the constructor's."""
        if not isinstance(backend, GPUSimulator):
            backend = GPUSimulator.from_backend(backend)
        return cls(backend=backend, **options)

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
                      ) -> tuple[Execution, list[CompiledCircuit]]:
        """The run path of this run, and each pub's circuit compiled with its parameters left
        open (a circuit several pubs share is lowered once)."""
        execution = execution_for(self._backend, self._options.seed)
        wheres = [pub_name(index, circuit) for index, circuit in enumerate(circuits)]
        return execution, execution.compile(circuits, wheres, parameterized=True)

    _first_pub = 0
    """The index of this run's first pub in the run it is part of (a worker's share of a
    fanned-out run, :func:`run_pubs`): pub ``i`` draws from ``rng_for(seed, first + i, ...)``."""

    def _submit_tasks(self, execution: Execution, tasks: Sequence[Any], run_task: RunTask,
                      compiled: Sequence[CompiledCircuit],
                      prepare: Prepare | None = None) -> GPUPrimitiveJob:
        """Run every task on one thread once the device has room; progress counts
        parameter sets (``task.bindings``). ``prepare(tasks, execution, control)``, where
        given, runs first on that thread and its result is passed to each ``run_task`` as
        a last argument. With the backend option ``executor`` the pubs run instead in
        batches on its workers (:meth:`_fan_out`)."""
        steps = sum(len(task.bindings) for task in tasks)
        if self._backend.options.executor is not None:
            return self._fan_out(execution, tasks, steps)
        first = self._first_pub

        def work(control: JobControl) -> PrimitiveResult:
            extra = () if prepare is None else (prepare(tasks, execution, control),)
            results = [run_task(first + index, task, execution, control, *extra)
                       for index, task in enumerate(tasks)]
            return PrimitiveResult(results, metadata={"version": 2})

        at_once = max((execution.side_by_side_runs([circuit], task.runs)
                       for circuit, task in zip(compiled, tasks)), default=1)
        return GPUPrimitiveJob(execution.submit(work, compiled, steps, runs_at_once=at_once))

    def _fan_out(self, execution: Execution, tasks: Sequence[Any],
                 steps: int) -> GPUPrimitiveJob:
        """The job whose pubs run in consecutive batches (a pub is never split) on the
        executor's workers, each batch an ordinary run of this primitive seeded with this
        run's seed and told its first pub's index, so every pub draws what it would here."""
        options = self._backend.options
        executor = options.executor
        sizes = [len(task.bindings) for task in tasks]
        size = options.max_job_size or fanout.default_job_size(executor, sum(sizes))
        worker_options = fanout.worker_options({name: options[name]
                                                for name in BACKEND_OPTIONS})
        seed = execution.config.seed
        calls = [((type(self), worker_options, seed, self._first_pub + group.start,
                   [tasks[index].pub for index in group]), sum(sizes[index] for index in group))
                 for group in fanout.cut_in_order(sizes, size)]

        def work(control: JobControl) -> PrimitiveResult:
            results = fanout.gather(executor, run_pubs, calls, control)
            return PrimitiveResult(results, metadata={
                "version": 2, "executor": type(executor).__name__, "batches": len(calls)})

        return GPUPrimitiveJob(execution.submit(work, [], steps))


def run_pubs(primitive: type[SimulatorPrimitive], backend_options: dict[str, Any], seed: int,
             first: int, pubs: list[Any]) -> list[Any]:
    """Run one batch of a fanned-out primitive run on this process's device (what a worker
    calls): the pubs' results, in order."""
    runner = primitive(seed=seed, options={"backend_options": backend_options})
    runner._first_pub = first
    return list(runner.run(pubs).result())


def simulator_metadata(execution: Execution, time_taken: float) -> dict[str, Any]:
    """What ran a pub: device, precision, seed and seconds."""
    config = execution.config
    return {"device": config.device.name, "precision": config.precision, "seed": config.seed,
            "simulation_time": time_taken}


def set_runs(bindings: Bindings, program: Program, execution: Execution,
             check: Callable[[], None]) -> Iterator[tuple[int, Program]]:
    """``(b, program to run)`` for each parameter set ``b``: the program's measurements and
    saves on the set's state from a batch where :func:`~gpuprovider.batched.batchable`, else
    the program bound and planned (:func:`program_runs`)."""
    if batched.batchable(program, execution.device, len(bindings)):
        return batched.set_programs(program, bindings.parameters, bindings.values,
                                    execution.dtype, check)
    return program_runs(bindings, program, execution)


def program_runs(bindings: Bindings, program: Program, execution: Execution,
                 extra: Callable[[int], list] | None = None) -> Iterator[tuple[int, Program]]:
    """``(b, program to run)`` for each parameter set ``b``: bound, ``extra(b)`` ops
    appended, planned (:meth:`~gpuprovider.execution.Execution.plan_sets`)."""
    if bindings.parameters:
        yield from enumerate(execution.plan_sets(program, bindings.parameters,
                                                 bindings.values, extra))
        return
    for index in range(len(bindings)):
        bound = program if extra is None else replace(program,
                                                      ops=[*program.ops, *extra(index)])
        yield index, execution.plan(bound)
