"""GPUSimulator: the Qiskit ``BackendV2`` users run circuits on."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import cache
from typing import Any

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.providers import BackendV2, Options
from qiskit.result import Result
from qiskit.result.models import ExperimentResult
from qiskit.transpiler import Target

from . import __version__, batched, fanout
from . import device as devices
from .compile.device_noise import device_noise
from .compile.program import Program
from .compile.sweep import Sweep, experiment_count, parse_parameter_binds
from .engine import RunControl, total_steps
from .exceptions import InvalidCircuitError
from .execution import CompiledCircuit, Execution
from .gates import supported_instructions
from .job import GPUJob, JobControl
from .options import (
    DEFAULTS,
    READ_WHEN_RUN,
    RunConfig,
    experiment_seed,
    unknown_option_warning,
    validate_option,
)
from .result import build_result, circuit_header, experiment_result
from .shots import RESULT_BYTES_PER_SHOT, check_shot_memory, memory_bytes


class _Experiment:
    """One circuit of a run: its compiled program and, for a sweep, its bindings.

    Without a sweep the program is planned once, here; a sweep's program is planned per
    binding as the job reaches it (the first binding here, for the progress count and its
    errors, and not again), or its bindings run as batches of states where
    :func:`~gpuprovider.batched.batchable`.
    """

    def __init__(self, header: dict[str, Any], compiled: CompiledCircuit, sweep: Sweep | None,
                 execution: Execution) -> None:
        self.header = header
        self.compiled = compiled
        self.sweep = sweep
        self._plan = execution.plan
        self._first = self._plan(self._bound(0))
        self._execution = execution
        self._batched = sweep is not None and batched.batchable(
            compiled.program, execution.device, len(sweep))
        self.separate_runs = 1 if self._batched else self.count
        """Its runs as :meth:`Execution.side_by_side_runs` counts them: a batch of states is
        one run."""

    def _bound(self, index: int) -> Program:
        program = self.compiled.program
        return program if self.sweep is None else program.bind(self.sweep[index])

    @property
    def count(self) -> int:
        return experiment_count(self.sweep)

    def programs(self, check: Callable[[], None]) -> Iterator[Program]:
        """The program of each experiment, bound and planned one at a time (or from a
        batch; ``check`` runs before each batch)."""
        if self._batched:
            parameters = tuple(self.sweep.columns)
            values = np.array([self.sweep.columns[p] for p in parameters], dtype=np.float64).T
            for _, program in batched.set_programs(self.compiled.program, parameters, values,
                                                   self._execution.dtype, check):
                yield program
            return
        yield self._first
        if self.count > 1:
            parameters = tuple(self.sweep.columns)
            values = np.array([self.sweep.columns[p][1:] for p in parameters],
                              dtype=np.float64).T.reshape(self.count - 1, len(parameters))
            yield from self._execution.plan_sets(self.compiled.program, parameters, values)

    def steps(self, shots: int) -> int:
        """Progress steps of all its runs (bindings run alike: the first one counts)."""
        first = self._first
        if self._batched:
            first = batched.tail_program(self.compiled.program, np.zeros(0))
        return self.count * total_steps(first, shots)


@cache
def _build_target(num_qubits: int) -> Target:
    target = Target(description="gpuprovider statevector simulator", num_qubits=num_qubits)
    for name, instruction in supported_instructions().items():
        target.add_instruction(instruction, properties=None, name=name)
    return target


class GPUSimulator(BackendV2):
    """Statevector simulator on an NVIDIA GPU, or on the CPU when no GPU is usable.

    A drop-in for ``AerSimulator()`` / ``BasicSimulator()``::

        backend = GPUSimulator()                      # device="auto"
        job = backend.run(transpile(circuit, backend), shots=4096, seed_simulator=1)
        counts = job.result().get_counts()

    Options (set here, with ``set_options``, or per ``run``; unknown names warn):
    ``shots`` (1024), ``seed_simulator`` (None: a fresh seed, reported in the result),
    ``memory`` (False), ``precision`` ("double" or "single"), ``device`` ("auto", "GPU",
    "CPU" or a :class:`~gpuprovider.device.Device`), ``fusion_enable`` (True),
    ``enable_truncation`` (True: idle qubits are not simulated), Aer's ``method``
    ("automatic", "statevector" or "density_matrix": :data:`gpuprovider.options.METHODS`)
    ``noise_model`` (None, a qiskit-aer ``NoiseModel``: :mod:`gpuprovider.compile.noise`,
    or the device noise :meth:`from_backend` builds), ``executor`` (None, or an executor whose
    workers run the experiments in batches: :mod:`gpuprovider.fanout`) and ``max_job_size``
    (None: experiments per batch chosen from the executor's workers) and ``distributed``
    ("auto": under ``mpiexec`` with a power of two of ranks, each state is spread over them;
    True or False: :mod:`gpuprovider.mpi`).
    """

    def __init__(
        self, device: str = "auto", precision: str = "double", *, provider: Any = None,
        **options: Any,
    ) -> None:
        super().__init__(
            provider=provider,
            name="gpu_simulator",
            description="GPU-accelerated statevector simulator (CPU engine when no GPU)",
            backend_version=__version__,
        )
        self._device_target: Target | None = None
        """With :meth:`from_backend`: the device's Target, which transpilation then uses."""
        self._set_options({"device": device, "precision": precision, **options}, stacklevel=2)

    @classmethod
    def from_backend(cls, backend: BackendV2, **options: Any) -> GPUSimulator:
        """A simulator of ``backend`` (any ``BackendV2``, qiskit-ibm-runtime's fake devices
        included): its Target (gates, coupling map, qubit count) for ``transpile``, and a
        noise model from its reported gate errors, durations, T1/T2 and readout errors, built
        as qiskit-aer's ``NoiseModel.from_backend`` builds one (depolarizing and thermal
        relaxation on every gate, readout errors; see
        :mod:`gpuprovider.compile.device_noise`) without needing qiskit-aer. Idle qubits are
        not simulated, so a 127-qubit device's circuits stay small.

        Args:
            backend: the device to imitate.
            options: run options (``noise_model=None`` simulates the device without noise;
                a qiskit-aer ``NoiseModel`` replaces the device's).
        """
        if "noise_model" not in options:
            options["noise_model"] = device_noise(backend.target)
        simulator = cls(**options)
        simulator.name = f"gpu_simulator({backend.name})"
        simulator._device_target = backend.target
        return simulator

    def with_options(self, **options: Any) -> GPUSimulator:
        """A new simulator of the same device (its name and, after :meth:`from_backend`, the
        device's Target) whose options are ``options`` (validated as by the constructor)."""
        simulator = type(self)(**options)
        simulator.name, simulator._device_target = self.name, self._device_target
        return simulator

    def __repr__(self) -> str:
        return (
            f"GPUSimulator(device={self.options.device!r}, "
            f"precision={self.options.precision!r})"
        )

    @classmethod
    def _default_options(cls) -> Options:
        return Options(**DEFAULTS)

    def set_options(self, **fields: Any) -> None:
        """Set default run options, validated (see the class docstring for the fields);
        unknown names warn and are ignored, as in :meth:`run`."""
        self._set_options(fields, stacklevel=2)

    def _set_options(self, fields: dict[str, Any], stacklevel: int) -> None:
        known = {}
        for name, value in fields.items():
            if hasattr(self.options, name):
                known[name] = validate_option(name, value)
            else:
                unknown_option_warning(name, stacklevel + 1)
        self.options.update_options(**known)

    @property
    def target(self) -> Target:
        if self._device_target is not None:
            return self._device_target
        device = devices.resolve(self.options.device)
        return _build_target(device.max_qubits(self.options.precision))

    @property
    def max_circuits(self) -> None:
        return None

    def run(
        self, run_input: QuantumCircuit | Sequence[QuantumCircuit],
        parameter_binds: Sequence[Mapping[Parameter, Sequence[float]]] | None = None,
        **options: Any,
    ) -> GPUJob:
        """Validate the circuits and options, then submit a job that simulates them.

        Args:
            run_input: a circuit or a list of circuits (transpiled for this backend).
            parameter_binds: qiskit-aer's sweep format: one ``{parameter: [values...]}``
                per circuit, every list of one length ``m``; circuit ``i`` then gives ``m``
                experiments, one per column, in order (circuit-major). Each circuit is
                lowered once and only its parameterised gates are rebuilt per binding.
            options: overrides of the backend's options for this run; unknown names warn.

        Returns:
            The submitted :class:`GPUJob`.

        Raises:
            InvalidCircuitError: a circuit cannot be simulated (unsupported instruction,
                unbound parameter, non-unitary matrix, unnormalised initialize vector), or
                ``parameter_binds`` does not match the circuits' parameters.
            InvalidOptionError: an option value is not accepted.
            CapacityError: a circuit can never fit in the device's memory. One that does
                not fit now waits in QUEUED until running jobs free enough.
            DeviceUnavailableError: device="GPU" where no GPU is usable.
        """
        merged = self._merged(options, stacklevel=3)
        execution = Execution(self, RunConfig.from_options(merged))
        config = execution.config
        circuits = self._circuit_list(run_input)
        sweeps = parse_parameter_binds(parameter_binds, circuits)
        compiled = execution.compile(
            circuits,
            [f"circuit '{circuit.name}' (index {index})" for index, circuit in enumerate(circuits)],
            [sweep is not None for sweep in sweeps],
        )
        if config.memory:
            check_shot_memory(
                max(memory_bytes(circuit.program.num_clbits, config.shots)
                    for circuit in compiled) + config.shots * RESULT_BYTES_PER_SHOT,
                f"memory=True keeps every one of its {config.shots:,} shots",
                ", or leave memory=False (counts alone need no per-shot memory)")
        experiments = [
            _Experiment(circuit_header(circuit), circuit_compiled, sweep, execution)
            for circuit, circuit_compiled, sweep in zip(circuits, compiled, sweeps)
        ]
        steps = [experiment.steps(config.shots) for experiment in experiments]
        job_id = execution.device.agreed(str(uuid.uuid4()))
        executor = merged["executor"]
        if executor is not None:
            return self._fan_out(job_id, executor, merged, circuits, sweeps, steps, execution)
        at_once = execution.side_by_side_runs(
            compiled, sum(experiment.separate_runs for experiment in experiments))

        def work(control: JobControl) -> Result:
            return self._execute(job_id, experiments, execution, control, at_once)

        return execution.submit(work, compiled, sum(steps), job_id, at_once)

    def _fan_out(self, job_id: str, executor: Any, merged: dict[str, Any],
                 circuits: list[QuantumCircuit], sweeps: list[Sweep | None], steps: list[int],
                 execution: Execution) -> GPUJob:
        """The job that runs the experiments in batches on ``executor``'s workers
        (:mod:`gpuprovider.fanout`); it holds no memory of this process's device."""
        config = execution.config
        experiments = sum(experiment_count(sweep) for sweep in sweeps)
        size = merged["max_job_size"] or fanout.default_job_size(executor, experiments)
        cut = fanout.batches(circuits, sweeps, steps, size)
        worker_options = fanout.worker_options(merged)

        def work(control: JobControl) -> Result:
            start = time.perf_counter()
            results = fanout.run_batches(executor, cut, worker_options, config.seed, control)
            elapsed = time.perf_counter() - start
            ran_on = sorted({str(result.metadata.get("device")) for result in results})
            return build_result(
                results, backend_name=self.name, backend_version=self.backend_version,
                job_id=job_id, time_taken=elapsed,
                metadata={"device": ",".join(ran_on), "precision": config.precision,
                          "executor": type(executor).__name__, "batches": len(cut),
                          "simulation_time": elapsed, "seed_simulator": config.seed})

        return execution.submit(work, [], sum(steps), job_id)

    def execution(self, **options: Any) -> Execution:
        """The run path for this backend's options overridden by ``options`` (validated;
        unknown names warn): what :meth:`run` and the primitives compile, plan, run and
        submit through.

        Raises:
            InvalidOptionError: an option value is not accepted.
            DeviceUnavailableError: the device option names a device not usable here.
        """
        return self._execution(options, stacklevel=3)

    def _execution(self, overrides: dict[str, Any], stacklevel: int) -> Execution:
        return Execution(self, RunConfig.from_options(self._merged(overrides, stacklevel + 1)))

    def _merged(self, overrides: dict[str, Any], stacklevel: int) -> dict[str, Any]:
        """The backend's options with ``overrides`` validated over them."""
        merged = dict(self.options.items())
        for name, value in overrides.items():
            if not hasattr(self.options, name):
                unknown_option_warning(name, stacklevel=stacklevel)
                continue
            merged[name] = value if name in READ_WHEN_RUN else validate_option(name, value)
        return merged

    @staticmethod
    def _circuit_list(run_input: Any) -> list[QuantumCircuit]:
        if isinstance(run_input, QuantumCircuit):
            return [run_input]
        if isinstance(run_input, (list, tuple)) and run_input:
            for index, item in enumerate(run_input):
                if not isinstance(item, QuantumCircuit):
                    raise InvalidCircuitError(
                        f"run_input[{index}] is a {type(item).__name__}, not a QuantumCircuit"
                    )
            return list(run_input)
        raise InvalidCircuitError(
            f"run() takes a QuantumCircuit or a non-empty list of them, "
            f"not {type(run_input).__name__}"
            + (" (an empty one)" if isinstance(run_input, (list, tuple)) else "")
        )

    def _execute(
        self, job_id: str, experiments: list[_Experiment], execution: Execution,
        control: JobControl, at_once: int,
    ) -> Result:
        """The job's work, run on its thread, ``at_once`` runs at a time
        (:meth:`Execution.in_order`)."""
        config = execution.config
        metadata = {"device": config.device.name, "precision": config.precision}
        start = time.perf_counter()

        def runs() -> Iterator[tuple[int, _Experiment, Program]]:
            index = 0
            for experiment in experiments:
                for program in experiment.programs(control.check):
                    yield index, experiment, program
                    index += 1

        def run(item: tuple[int, _Experiment, Program], run_control: RunControl
                ) -> ExperimentResult:
            index, experiment, program = item
            seed = experiment_seed(config.seed, index)
            outcome = execution.run(program, config.shots, np.random.default_rng(seed),
                                    run_control, experiment.compiled.max_states,
                                    keep_memory=config.memory)
            return experiment_result(experiment.header, outcome, memory=config.memory,
                                     seed=seed, metadata=metadata)

        compiled = [experiment.compiled for experiment in experiments]
        results = list(execution.in_order(runs(), run, compiled, at_once, control))
        elapsed = time.perf_counter() - start
        return build_result(
            results,
            backend_name=self.name,
            backend_version=self.backend_version,
            job_id=job_id,
            time_taken=elapsed,
            metadata={**metadata, "simulation_time": elapsed, "seed_simulator": config.seed,
                      "parallel_experiments": at_once},
        )
