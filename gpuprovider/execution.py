"""The one run path the backend and both primitives share.

An :class:`Execution` is one run's validated options with its device resolved. It compiles
circuits (each distinct circuit lowered once, its limits and memory checked once), plans a
bound program for the device, runs a program on the device's kernels and submits a job whose
admission reserves exactly the bytes the capacity check computed. ``GPUSimulator.run``,
``SamplerV2.run`` and ``EstimatorV2.run`` all go through it::

    execution = backend.execution(seed_simulator=7)
    compiled = execution.compile(circuits, names, parameterized=True)
    job = execution.submit(work, compiled, total_steps)   # work calls execution.run(...)
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter

from . import side_by_side
from .admission import Reservation
from .compile import lowering_cache
from .compile.density import density_program, density_unsupported, prefer_density
from .compile.lower import lower_circuit
from .compile.saves import as_method_state
from .compile.merge import merged
from .compile.plan import planned
from .compile.program import DEFAULT_BRANCH_STATES, Program
from .compile.recipe import SweepCounts, planned_sets
from .engine import Outcome, RunControl, run_program
from .exceptions import CapacityError, InvalidCircuitError, format_bytes
from .job import GPUJob, JobControl
from .kernels.precision import dtype_of, statevector_bytes
from .options import RunConfig

Item = TypeVar("Item")
Answer = TypeVar("Answer")

MAX_INDEX_QUBITS = 62
"""Amplitude indices are 64-bit signed integers."""


@dataclass(frozen=True)
class CompiledCircuit:
    """A circuit lowered and checked for one execution."""

    program: Program
    """Lowered; with ``parameterized`` its parameters are still open."""
    max_states: int
    """How many statevectors a run of it may hold at once."""
    bytes_needed: int
    """Device bytes those states take: what the job's admission reserves."""
    where: str
    """How errors name it."""
    state_qubits: int
    """Qubits of the largest state a run of it may hold (its density matrix's twice as
    many, where it may take one)."""


class Execution:
    """One run's options, its device, and the steps every run takes on it."""

    def __init__(self, backend: Any, config: RunConfig) -> None:
        """
        Args:
            backend: the backend the jobs belong to.
            config: the validated options; ``config.device`` is resolved and usable.
        """
        self.backend = backend
        self.config = config
        self.device = config.device
        self.dtype = dtype_of(config.precision)
        self._plan_policy = self.device.policy.plan_policy(self.dtype)

    # --- compile ---------------------------------------------------------------------------

    def compile(self, circuits: Sequence[QuantumCircuit], wheres: Sequence[str],
                parameterized: bool | Sequence[bool] = False) -> list[CompiledCircuit]:
        """Lower each distinct circuit once and check that it can run on the device.

        Args:
            circuits: the circuits; the same circuit object given twice is lowered once.
            wheres: how errors name each circuit (the first naming of a repeated circuit).
            parameterized: per circuit (or for all), leave its parameters open, to be bound
                per parameter set.

        Raises:
            InvalidCircuitError: a circuit cannot be simulated, or has an operation wider
                than the device's kernels apply.
            CapacityError: a circuit can never fit in the device's memory.
        """
        if isinstance(parameterized, bool):
            parameterized = [parameterized] * len(circuits)
        compiled: dict[tuple[int, bool], CompiledCircuit] = {}
        result = []
        for circuit, where, open_parameters in zip(circuits, wheres, parameterized):
            key = (id(circuit), bool(open_parameters))
            if key not in compiled:
                program = as_method_state(self._lowered(circuit, where, bool(open_parameters)),
                                          self.config.method, where)
                compiled[key] = self._checked(program, where)
            result.append(compiled[key])
        return result

    def _lowered(self, circuit: QuantumCircuit, where: str, parameterized: bool) -> Program:
        """``circuit`` lowered, or its program remembered from an earlier run
        (:mod:`~gpuprovider.compile.lowering_cache`; never with a noise model)."""
        config = self.config

        def lower() -> Program:
            return lower_circuit(circuit, self.dtype, where=where, parameterized=parameterized,
                                 truncate=config.enable_truncation, noise=config.noise)

        if config.noise is not None:
            return lower()
        return lowering_cache.lowered(
            circuit, (self.dtype, where, parameterized, config.enable_truncation), lower)

    def _checked(self, program: Program, where: str) -> CompiledCircuit:
        """CompiledCircuit of ``program`` once its width and memory are checked. How many
        states it may hold: the default branch states, fewer when the device cannot hold
        them; whether they fit *now* is for the job's admission to wait for."""
        config, device = self.config, self.device
        limit = device.policy.max_matrix_qubits
        if limit is not None and program.widest_gather > limit:
            raise InvalidCircuitError(
                f"{where} has a {program.widest_gather}-qubit dense operation (unitary or "
                f"permutation); the {device.name} engine applies at most {limit} qubits at "
                "once; run it with device='CPU'"
            )
        described = f"{where} has {program.num_qubits} qubits"
        if program.truncated:
            described += f" in use (of {program.circuit_qubits})"
        if program.num_qubits > MAX_INDEX_QUBITS:
            raise CapacityError(
                f"{described}; amplitude indices are 64-bit, so at most {MAX_INDEX_QUBITS}"
            )
        admission = device.admission
        fitting = admission.capacity // statevector_bytes(program.num_qubits, config.precision)
        minimum = program.states_needed(branch_states=1)
        if fitting < minimum:
            needed = program.bytes_needed(config.precision, branch_states=1)
            raise CapacityError(
                f"{described}: its {minimum} {config.precision}-precision statevector(s) "
                f"need {format_bytes(needed)} but at most {format_bytes(admission.capacity)}"
                f" of the {device.name}'s {format_bytes(admission.total_memory)} is "
                f"available to a job{self._capacity_hint()}"
            )
        max_states = program.states_needed(min(DEFAULT_BRANCH_STATES, fitting))
        needed = program.bytes_needed(config.precision, max_states)
        state_qubits = program.num_qubits
        if not program.is_sampled and config.method != "statevector":
            reason = density_unsupported(program)
            if reason is None:  # the run may hold its density matrix instead
                state_qubits = 2 * program.num_qubits
                needed = max(needed, statevector_bytes(state_qubits, config.precision))
            elif config.method == "density_matrix":
                raise InvalidCircuitError(
                    f"{where} cannot run with method='density_matrix': {reason} (use "
                    "method='statevector')")
        return CompiledCircuit(program, max_states, needed, where, state_qubits)

    def _capacity_hint(self) -> str:
        hints = []
        if self.config.precision == "double":
            hints.append("precision='single' halves it")
        if self.device.policy.memory_kind == "device":
            hints.append("device='CPU' runs it in host memory")
        return "; " + ", or ".join(hints) if hints else ""

    # --- plan and run ------------------------------------------------------------------------

    def plan(self, program: Program) -> Program:
        """The program the device runs for a bound ``program``: tile passes, or with
        ``fusion_enable=False`` every op on its own (one-qubit gates merged). A noisy
        program the density-matrix method takes also carries its density-matrix program,
        planned the same way but with every qubit in its own position at the end, unless the
        method is "statevector"."""
        options = (self._plan_policy, self.config.fusion_enable, self.config.method)
        return lowering_cache.planned(program, options, lambda: self._plan_afresh(program))

    def _plan_afresh(self, program: Program) -> Program:
        ran = self._planned(program)
        if program.is_sampled or self.config.method == "statevector":
            return ran
        density = density_program(program, self.dtype)
        if density is None:
            return ran
        # Back in natural order at the end: the diagonal is read there.
        return replace(ran, density=self._planned(density, put_back=True))

    def plan_sets(self, program: Program, parameters: Sequence[Parameter], values: np.ndarray,
                  extra: Callable[[int], list] | None = None,
                  counts: SweepCounts | None = None) -> Iterator[Program]:
        """:meth:`plan` of ``program`` bound to each row of ``values`` (one column per
        parameter of ``parameters``), ``extra(row)`` ops appended: planned once and replayed
        for the other sets (:mod:`~gpuprovider.compile.recipe`) where the plan is only the
        tile passes (no density-matrix program to plan alongside) and the state is not
        spread over MPI ranks (whose planner splits gates on global qubits without recording
        how), else set by set."""
        replay = (program.is_sampled or self.config.method == "statevector") and \
            not self.device.policy.global_qubits
        return planned_sets(program, parameters, values, self.plan, extra, replay, counts)

    def _planned(self, program: Program, put_back: bool = False) -> Program:
        if not self.config.fusion_enable:
            return merged(program)
        return planned(program, self._plan_policy, put_back)

    def run(self, program: Program, shots: int, rng: np.random.Generator,
            control: RunControl, max_states: int, keep_memory: bool = False) -> Outcome:
        """Run a planned ``program`` on the device (see :func:`~gpuprovider.engine.run_program`),
        as its density matrix when the method asks for it (``"density_matrix"``, or
        ``"automatic"`` where :func:`~gpuprovider.compile.density.prefer_density`)."""
        method = self.config.method
        density = program.density if method == "density_matrix" or (
            method == "automatic" and prefer_density(program.num_qubits, shots)) else None
        runs = program if density is None else density
        return run_program(program, self.device.kernels_for(runs.num_qubits), self.dtype,
                           shots, rng, control, max_states=max_states,
                           keep_memory=keep_memory, density=density)

    def side_by_side_runs(self, compiled: Sequence[CompiledCircuit], runs: int) -> int:
        """How many of ``runs`` runs of the ``compiled`` circuits go at once
        (:func:`~gpuprovider.side_by_side.in_order`): as many as the kernels of the largest
        state gain from and the device can ever hold, at least 1 (1 on a device whose
        states are not in host memory). Loads those kernels when ``runs`` is more than 1 and
        they are a host set other than the small-state one."""
        if runs < 2 or not compiled:
            return 1
        qubits = max(circuit.state_qubits for circuit in compiled)
        # A device's kernels are loaded on the job's thread (a GPU's context is made there);
        # only host kernels are asked here, and the small-state set never gains.
        if self.device.policy.memory_kind != "host" or self.device.is_small(qubits):
            return 1
        workers = min(runs, self.device.kernels_for(qubits).side_by_side_runs(qubits))
        largest = max(circuit.bytes_needed for circuit in compiled)
        return max(1, min(workers, self.device.admission.capacity // max(1, largest)))

    def in_order(self, items: Iterable[Item], run: Callable[[Item, RunControl], Answer],
                 compiled: Sequence[CompiledCircuit], at_once: int, control: RunControl
                 ) -> Iterator[Answer]:
        """``run(item, control)`` of each item (a run of one of the ``compiled`` circuits),
        in order, ``at_once`` (from :meth:`side_by_side_runs`) at a time."""
        kernels = None if at_once < 2 else self.device.kernels_for(
            max(circuit.state_qubits for circuit in compiled))
        return side_by_side.in_order(items, run, at_once, kernels, control)

    # --- submit --------------------------------------------------------------------------------

    def submit(self, work: Callable[[JobControl], Any], compiled: Sequence[CompiledCircuit],
               total_steps: int, job_id: str | None = None, runs_at_once: int = 1) -> GPUJob:
        """Submit ``work`` as a job admitted once the largest compiled circuit's states fit
        ``runs_at_once`` times (runs go one after another, or that many at a time)."""
        admission = self.device.admission
        job_bytes = runs_at_once * max((circuit.bytes_needed for circuit in compiled),
                                       default=0)

        def admit(control: JobControl) -> Reservation:
            return admission.reserve(job_bytes, control.cancel_requested)

        job = GPUJob(self.backend, job_id or str(uuid.uuid4()), work, total_steps=total_steps,
                     admit=self.device.ordered(admit))
        job.submit()
        return job
