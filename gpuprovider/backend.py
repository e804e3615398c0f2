"""GPUSimulator: the Qiskit ``BackendV2`` users run circuits on."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, partial
from typing import Any

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.providers import BackendV2, Options
from qiskit.result import Result
from qiskit.transpiler import Target

from . import __version__
from .admission import Reservation, admission_for
from .compile.lower import lower_circuit
from .compile.merge import merged
from .compile.plan import planned
from .compile.program import DEFAULT_BRANCH_STATES, Program
from .compile.sweep import Sweep, parse_parameter_binds
from .engine import memory_bytes, run_program, total_steps
from .exceptions import CapacityError, InvalidCircuitError
from .gates import supported_instructions
from .job import GPUJob, JobControl
from .kernels import select
from .kernels.precision import dtype_of, statevector_bytes
from .options import (
    DEFAULTS,
    RunConfig,
    experiment_seed,
    unknown_option_warning,
    validate_option,
)
from .result import build_result, circuit_header, experiment_result

MAX_INDEX_QUBITS = 62


def _unplanned(program: Program) -> Program:
    """``fusion_enable=False``: every op runs as its own pass (one-qubit gates merged)."""
    return merged(program)


@dataclass(frozen=True)
class _Experiment:
    """One circuit of a run: its program and, for a sweep, its bindings.

    ``plan`` turns a bound program into the one the device runs (tile passes). Without a
    sweep ``program`` is already planned (:meth:`create`); a sweep's program is planned per
    binding as the job reaches it.
    """

    header: dict[str, Any]
    program: Program
    max_states: int
    sweep: Sweep | None
    plan: Callable[[Program], Program]

    @classmethod
    def create(cls, header: dict[str, Any], program: Program, max_states: int,
               sweep: Sweep | None, plan: Callable[[Program], Program]) -> _Experiment:
        """The experiment of a lowered ``program``, planned now unless a sweep binds it."""
        return cls(header, program if sweep is not None else plan(program), max_states, sweep,
                   plan)

    @property
    def count(self) -> int:
        return 1 if self.sweep is None else len(self.sweep)

    def programs(self) -> Iterator[Program]:
        """The program of each experiment, bound and planned one at a time."""
        if self.sweep is None:
            yield self.program
            return
        for values in self.sweep:
            yield self.plan(self.program.bind(values))

    def steps(self, shots: int) -> int:
        """Progress steps of all its runs (bindings plan alike: the first one counts)."""
        return self.count * total_steps(next(self.programs()), shots)


@cache
def _build_target(num_qubits: int) -> Target:
    target = Target(description="gpuprovider statevector simulator", num_qubits=num_qubits)
    for name, instruction in supported_instructions().items():
        target.add_instruction(instruction, properties=None, name=name)
    return target


RESULT_BYTES_PER_SHOT = 72
"""Host bytes per shot of a Result's memory: a hex string and its list entry."""


def _format_bytes(count: int) -> str:
    return f"{count:,} bytes ({count / 2**30:.2f} GiB)"


def check_shot_memory(needed: int, what: str, hint: str = "") -> None:
    """CapacityError unless ``needed`` host bytes of per-shot data fit in free memory."""
    available = select.cpu_available_memory()
    if needed > available:
        raise CapacityError(
            f"{what}: that needs {_format_bytes(needed)} of host memory but "
            f"{_format_bytes(available)} is free; run fewer shots{hint}"
        )


def _capacity_hint(config: RunConfig) -> str:
    hints = []
    if config.precision == "double":
        hints.append("precision='single' halves it")
    if config.device == "GPU":
        hints.append("device='CPU' runs it in host memory")
    return "; " + ", or ".join(hints) if hints else ""


class GPUSimulator(BackendV2):
    """Statevector simulator on an NVIDIA GPU, or on the CPU when no GPU is usable.

    A drop-in for ``AerSimulator()`` / ``BasicSimulator()``::

        backend = GPUSimulator()                      # device="auto"
        job = backend.run(transpile(circuit, backend), shots=4096, seed_simulator=1)
        counts = job.result().get_counts()

    Options (set here, with ``set_options``, or per ``run``; unknown names warn):
    ``shots`` (1024), ``seed_simulator`` (None: a fresh seed, reported in the result),
    ``memory`` (False), ``precision`` ("double" or "single"), ``device`` ("auto", "GPU" or
    "CPU"), ``fusion_enable`` (True), ``enable_truncation`` (True: idle qubits are not
    simulated), Aer's ``method`` ("automatic" or "statevector") and ``noise_model`` (None;
    a model is refused until noise is supported).
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
        self._set_options({"device": device, "precision": precision, **options}, stacklevel=2)

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
        device = select.resolve(self.options.device).device
        return _build_target(select.max_qubits(device, self.options.precision))

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
        config = self._run_config(options)
        circuits = self._circuit_list(run_input)
        sweeps = parse_parameter_binds(parameter_binds, circuits)
        programs, max_states = self._compile(
            circuits, config,
            [f"circuit '{circuit.name}' (index {index})" for index, circuit in enumerate(circuits)],
            [sweep is not None for sweep in sweeps],
        )
        headers = [circuit_header(circuit) for circuit in circuits]
        plan = self._plan_for(config)
        experiments = [
            _Experiment.create(header, program, states, sweep, plan)
            for header, program, states, sweep in zip(headers, programs, max_states, sweeps)
        ]
        steps = sum(experiment.steps(config.shots) for experiment in experiments)
        job_id = str(uuid.uuid4())

        def work(control: JobControl) -> Result:
            return self._execute(job_id, experiments, config, control)

        return self._submit(job_id, work, config, programs, max_states, steps)

    def _compile(
        self, circuits: Sequence[QuantumCircuit], config: RunConfig, wheres: Sequence[str],
        parameterized: Sequence[bool],
    ) -> tuple[list[Program], list[int]]:
        """Lower each circuit (``wheres`` name them in errors) and check it can run:
        its programs and how many statevectors each may hold at once."""
        dtype = dtype_of(config.precision)
        programs = [
            lower_circuit(circuit, dtype, where=where, parameterized=bound_later,
                          truncate=config.enable_truncation)
            for circuit, where, bound_later in zip(circuits, wheres, parameterized)
        ]
        max_states = self._check_capacity(programs, config)
        self._check_engine_limits(programs, config)
        if config.memory:
            check_shot_memory(
                max(memory_bytes(program.num_clbits, config.shots) for program in programs)
                + config.shots * RESULT_BYTES_PER_SHOT,
                f"memory=True keeps every one of its {config.shots:,} shots",
                ", or leave memory=False (counts alone need no per-shot memory)")
        return programs, max_states

    @staticmethod
    def _plan_for(config: RunConfig) -> Callable[[Program], Program]:
        """What turns a bound program into the one the device runs."""
        if not config.fusion_enable:
            return _unplanned
        return partial(planned, kernels=select.kernels_for(config.device),
                       dtype=dtype_of(config.precision))

    def _submit(
        self, job_id: str, work: Callable[[JobControl], Any], config: RunConfig,
        programs: Sequence[Program], max_states: Sequence[int], steps: int,
    ) -> GPUJob:
        """Submit ``work`` as a job admitted once the largest program's states fit (the
        programs run one after another, so the job holds one program's states at a time)."""
        admission = admission_for(config.device)
        job_bytes = max((
            program.bytes_needed(config.precision, states)
            for program, states in zip(programs, max_states)
        ), default=0)

        def admit(control: JobControl) -> Reservation:
            return admission.reserve(job_bytes, control.cancel_requested)

        job = GPUJob(self, job_id, work, total_steps=steps, admit=admit)
        job.submit()
        return job

    def _run_config(self, overrides: dict[str, Any]) -> RunConfig:
        merged = dict(self.options.items())
        for name, value in overrides.items():
            if not hasattr(self.options, name):
                unknown_option_warning(name, stacklevel=3)
                continue
            merged[name] = validate_option(name, value)
        return RunConfig.from_options(merged)  # the device option was validated as usable

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

    @staticmethod
    def _check_capacity(programs: list[Program], config: RunConfig) -> list[int]:
        """How many statevectors each program may hold at once (fewer branches of shots
        when the device cannot hold the default); CapacityError unless its minimum can
        ever fit. Whether they fit now is for the job's memory admission to wait for."""
        admission = admission_for(config.device)
        max_states = []
        for index, program in enumerate(programs):
            where = f"circuit '{program.name}' (index {index}) has {program.num_qubits} qubits"
            if program.truncated:
                where += f" in use (of {program.circuit_qubits})"
            if program.num_qubits > MAX_INDEX_QUBITS:
                raise CapacityError(
                    f"{where}; amplitude indices are 64-bit, so at most {MAX_INDEX_QUBITS}"
                )
            fitting = admission.capacity // statevector_bytes(program.num_qubits,
                                                              config.precision)
            minimum = program.states_needed(branch_states=1)
            if fitting < minimum:
                needed = program.bytes_needed(config.precision, branch_states=1)
                raise CapacityError(
                    f"{where}: its {minimum} {config.precision}-precision "
                    f"statevector(s) need {_format_bytes(needed)} but at most "
                    f"{_format_bytes(admission.capacity)} of the {config.device}'s "
                    f"{_format_bytes(admission.total_memory)} is available to a job"
                    f"{_capacity_hint(config)}"
                )
            max_states.append(program.states_needed(min(DEFAULT_BRANCH_STATES, fitting)))
        return max_states

    @staticmethod
    def _check_engine_limits(programs: list[Program], config: RunConfig) -> None:
        """Raise InvalidCircuitError for an operation wider than the device's kernels take."""
        limit = select.kernels_for(config.device).MAX_MATRIX_QUBITS
        for index, program in enumerate(programs):
            if limit is not None and program.widest_gather > limit:
                raise InvalidCircuitError(
                    f"circuit '{program.name}' (index {index}) has a {program.widest_gather}-"
                    f"qubit dense operation (unitary or permutation); the "
                    f"{config.device} engine applies at most {limit} qubits at once; run it "
                    "with device='CPU'"
                )

    def _execute(
        self, job_id: str, experiments: list[_Experiment], config: RunConfig,
        control: JobControl,
    ) -> Result:
        """The job's work, run on its thread."""
        kernels = select.kernels_for(config.device)
        dtype = dtype_of(config.precision)
        metadata = {"device": config.device, "precision": config.precision}
        start = time.perf_counter()
        results = []
        index = 0
        for experiment in experiments:
            for program in experiment.programs():
                seed = experiment_seed(config.seed, index)
                outcome = run_program(program, kernels, dtype, config.shots,
                                      np.random.default_rng(seed), control,
                                      max_states=experiment.max_states,
                                      keep_memory=config.memory)
                results.append(
                    experiment_result(experiment.header, outcome, memory=config.memory,
                                      seed=seed, metadata=metadata)
                )
                index += 1
        elapsed = time.perf_counter() - start
        return build_result(
            results,
            backend_name=self.name,
            backend_version=self.backend_version,
            job_id=job_id,
            time_taken=elapsed,
            metadata={**metadata, "simulation_time": elapsed, "seed_simulator": config.seed},
        )
