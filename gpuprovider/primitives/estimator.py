"""EstimatorV2: expectation values read from the statevector, on the GPU or the CPU."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import ControlFlowOp
from qiskit.primitives import BaseEstimatorV2, DataBin, PubResult
from qiskit.primitives.containers.estimator_pub import EstimatorPub, EstimatorPubLike

from ..backend import GPUSimulator
from .. import batched
from ..compile.density import density_unsupported, pauli_expectations
from ..compile.program import Program
from ..engine import RunControl, density_matrix_amplitudes
from ..exceptions import InvalidCircuitError
from ..execution import CompiledCircuit, Execution
from ..job import JobControl
from ..kernels import batch as batch_kernels
from .job import GPUPrimitiveJob
from .observables import PauliReadOut, PauliTable, shot_estimate, simulated_positions
from .options import Seed, rng_for
from .base import (
    BindingControl,
    Bindings,
    SimulatorPrimitive,
    program_runs,
    pub_name,
    simulator_metadata,
)

READ_OUT_LABEL = "pauli_values"
NOISY_BATCHES = 16
"""Under noise, trajectories run in this many independent batches; the spread of the batch
means gives the standard error."""
MAX_SHARED_VALUES = 1 << 22
"""Most term values (float64) the pubs of one circuit hold to share batches of states; past
it each pub runs its own batches."""
NOISY_TRAJECTORIES = 4096
"""Under noise with ``precision=0``: trajectories per parameter set (exact values would need
the density matrix)."""


def noisy_trajectories(precision: float) -> int:
    """Trajectories per parameter set under noise: ``ceil(1 / precision^2)`` (what as many
    shots would give, at least :data:`NOISY_BATCHES`), or :data:`NOISY_TRAJECTORIES` for
    ``precision=0``."""
    if precision == 0:
        return NOISY_TRAJECTORIES
    return max(NOISY_BATCHES, math.ceil(1 / precision ** 2))


@dataclass(frozen=True)
class _EstimatorTask:
    """One pub, checked and lowered: what the job needs to run it."""

    pub: EstimatorPub
    compiled: CompiledCircuit
    program: Program
    bindings: Bindings
    table: PauliTable
    binding_of: np.ndarray
    """Per result position (flat, broadcast shape): its parameter set."""
    observable_of: np.ndarray
    """Per result position: its observable (flat index into the table)."""
    max_states: int = 1
    """States a run may hold: more than one when a noise model makes it branch."""
    noisy: bool = False

    @property
    def runs(self) -> int:
        """How many runs it may make: one per parameter set, :data:`NOISY_BATCHES` under
        noise."""
        return len(self.bindings) * (NOISY_BATCHES if self.noisy else 1)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.binding_of.shape

    def positions(self) -> list[np.ndarray]:
        """Per parameter set, the flat result positions that use it."""
        if len(self.bindings) == 0:
            return []
        flat = self.binding_of.ravel()
        order = np.argsort(flat, kind="stable")
        return np.split(order, np.searchsorted(flat[order], np.arange(1, len(self.bindings))))

    def read_outs(self, positions: list[np.ndarray]) -> list[PauliReadOut]:
        """Per parameter set, the save op for the terms its observables need (shared by the
        sets that need the same observables)."""
        cache: dict[tuple[int, ...], PauliReadOut] = {}
        flat = self.observable_of.ravel()
        read_outs = []
        for where in positions:
            needed = tuple(np.unique(flat[where]).tolist())
            if needed not in cache:
                cache[needed] = self.table.read_out(needed, READ_OUT_LABEL)
            read_outs.append(cache[needed])
        return read_outs


class EstimatorV2(SimulatorPrimitive, BaseEstimatorV2):
    """Expectation values of observables on circuits, computed from the statevector.

    Each parameter set's state is simulated once and every Pauli term its observables need
    is read from it, the terms that share an X-mask in one pass over the state. A circuit is
    lowered once per pub; only its parameterised gates are rebuilt per parameter set.

    ``precision=0`` (the default) gives exact values with ``stds`` 0. ``precision > 0`` gives
    a shot-based estimate whose standard error, reported in ``stds``, is at most about
    ``precision``: see :func:`~gpuprovider.primitives.observables.shot_estimate`.

    With a ``noise_model`` (in ``backend_options``) or quantum channels in the circuit
    (``kraus``, ``quantum_channel``), a circuit the density-matrix method takes (at most 10
    qubits, unless ``method="statevector"``) gives exact values read from its density matrix;
    otherwise each value is the mean of the exact
    expectation values of :func:`noisy_trajectories` trajectories (``ceil(1/precision^2)``,
    or 4096 for ``precision=0``), run in :data:`NOISY_BATCHES` independent batches; ``stds``
    is the standard error of that mean from the spread of the batch means.

    Example::

        estimator = EstimatorV2(options={"backend_options": {"device": "CPU"}})
        result = estimator.run([(circuit, observables, parameter_values)]).result()
        result[0].data.evs, result[0].data.stds
    """

    def __init__(
        self, *, default_precision: float = 0.0, seed: Seed = None,
        options: Mapping[str, Any] | None = None, backend: GPUSimulator | None = None,
    ) -> None:
        """
        Args:
            default_precision: the precision of pubs that give none (0: exact).
            seed: None (a fresh seed per run), an integer, or a NumPy Generator; used at
                ``precision > 0``.
            options: qiskit-aer's form: ``{"default_precision": ..., "backend_options":
                {"device": ..., "precision": ..., "fusion_enable": ...}, "run_options":
                {"seed_simulator": ...}}``.
            backend: a GPUSimulator whose device, precision and fusion options are the
                defaults of ``backend_options``.

        Raises:
            InvalidOptionError: an unknown option or a bad value.
            DeviceUnavailableError: ``device="GPU"`` where no GPU is usable.
        """
        defaults = self._configure(seed, options, {"default_precision": default_precision},
                                   backend)
        self._default_precision = _checked_precision(defaults["default_precision"],
                                                     "default_precision")

    @property
    def default_precision(self) -> float:
        return self._default_precision

    def run(self, pubs: Iterable[EstimatorPubLike], *,
            precision: float | None = None) -> GPUPrimitiveJob:
        """Check the pubs, lower their circuits and submit a job that estimates them.

        Raises:
            ValueError, TypeError: a pub is malformed (Qiskit's message), has a negative
                precision or a parameter value that is not finite.
            InvalidCircuitError: a circuit measures, resets or branches (an estimator's
                circuit must be unitary), or cannot be simulated.
            CapacityError: a circuit can never fit in the device's memory.
        """
        if precision is None:
            precision = self._default_precision
        coerced = [EstimatorPub.coerce(pub, _checked_precision(precision, "precision"))
                   for pub in pubs]
        for index, pub in enumerate(coerced):
            _checked_precision(pub.precision, f"pub {index}'s precision")
        execution, compiled = self._compile_pubs([pub.circuit for pub in coerced])
        checked: dict[int, bool] = {}  # per circuit: whether it measures, resets or branches
        tasks = [_task(index, pub, circuit, checked)
                 for index, (pub, circuit) in enumerate(zip(coerced, compiled))]
        return self._submit_tasks(execution, tasks, _run_task, compiled, _shared_batches)


def _checked_precision(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name}={value!r} must be a number >= 0")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name}={value!r} must be a finite number >= 0")
    return float(value)


def _measures_resets_or_branches(circuit: QuantumCircuit) -> bool:
    return any(instruction.operation.name in ("measure", "reset")
               or isinstance(instruction.operation, ControlFlowOp)
               for instruction in circuit.data)


def _task(index: int, pub: EstimatorPub, compiled: CompiledCircuit,
          checked: dict[int, bool]) -> _EstimatorTask:
    """The pub's task; its circuit is unitary, or unitary apart from noise (the noise
    model's channels and channel instructions), which makes it ``noisy``. ``checked``
    remembers the circuits of this run already looked at."""
    where = pub_name(index, pub.circuit)
    program = compiled.program
    key = id(pub.circuit)
    if key not in checked:
        checked[key] = bool(program.measurements) or _measures_resets_or_branches(pub.circuit)
    if checked[key]:
        raise InvalidCircuitError(
            f"{where} measures, resets or branches; an estimator's circuit must be unitary "
            "apart from its noise (remove its measurements, e.g. "
            "circuit.remove_final_measurements())"
        )
    bindings = Bindings.of(pub.circuit, pub.parameter_values, where)
    observables = pub.observables.sparse_observables_array()
    shape = np.broadcast_shapes(bindings.shape, observables.shape)
    binding_of = np.broadcast_to(np.arange(len(bindings)).reshape(bindings.shape), shape)
    observable_of = np.broadcast_to(np.arange(observables.size).reshape(observables.shape),
                                    shape)
    table = PauliTable.of(observables.ravel().tolist(), simulated_positions(program))
    return _EstimatorTask(pub, compiled, program, bindings, table, binding_of, observable_of,
                          compiled.max_states, not program.is_sampled)


def _reads_density_matrix(task: _EstimatorTask, execution: Execution) -> bool:
    """Whether the task's values are read from density matrices: a noisy circuit the
    density-matrix method takes, unless the method is "statevector"."""
    return (task.noisy and execution.config.method != "statevector"
            and density_unsupported(task.program) is None)


def _density_values(program: Program, read_out: PauliReadOut, table: PauliTable,
                    execution: Execution, control: RunControl) -> np.ndarray:
    """The exact values of the read-out's terms, ``tr(rho P)``, from the density matrix of
    a planned noisy parameter set (``program.density``)."""
    density = program.density
    amplitudes = density_matrix_amplitudes(density, execution.device.kernels_for(
        density.num_qubits), execution.dtype, control)
    terms = read_out.terms
    return pauli_expectations(amplitudes, program.num_qubits, table.x_masks[terms],
                              table.z_masks[terms])


def _noisy_batches(task: _EstimatorTask, program: Program, read_out: PauliReadOut,
                   execution: Execution, control: BindingControl,
                   rng: np.random.Generator) -> np.ndarray:
    """(batches, table terms): each batch's trajectory mean of every Pauli term's value.
    The batches draw from generators spawned from ``rng``, so that they may run side by
    side."""
    per_batch = math.ceil(noisy_trajectories(float(task.pub.precision)) / NOISY_BATCHES)
    generators = rng.spawn(NOISY_BATCHES)

    def run(batch: int, run_control: RunControl) -> np.ndarray:
        outcome = execution.run(program, per_batch, generators[batch], run_control,
                                max_states=task.max_states)
        return outcome.saved[READ_OUT_LABEL]

    at_once = execution.side_by_side_runs([task.compiled], NOISY_BATCHES)
    batches = np.zeros((NOISY_BATCHES, task.table.x_masks.size), dtype=np.float64)
    for batch, values in enumerate(execution.in_order(range(NOISY_BATCHES), run,
                                                      [task.compiled], at_once, control)):
        batches[batch, read_out.terms] = values
    return batches


@dataclass(frozen=True)
class _BatchedValues:
    """A task's exact values computed in batches: ``values[b]`` holds set ``b``'s value of
    every term of ``terms`` (table indices)."""

    terms: np.ndarray
    values: np.ndarray


def _full_read_out(task: _EstimatorTask) -> PauliReadOut:
    """The read-out of every term of the task's table."""
    return task.table.read_out(range(len(task.table.columns)), READ_OUT_LABEL)


def _batch_values(program: Program, parameters: tuple, values: np.ndarray, owners: np.ndarray,
                  read_outs: Mapping[int, PauliReadOut], execution: Execution,
                  check: Callable[[], None]) -> Iterator[tuple[int, int, np.ndarray]]:
    """``(row, owner, values)`` for each row of ``values`` (a parameter set), run in batches of
    states: ``values`` are those of the terms of ``read_outs[owner]``, ``owners[row]``."""
    for sets, states in batched.batches(program, parameters, values, execution.dtype, check):
        rows = owners[sets.start:sets.stop]
        for owner in np.unique(rows).tolist():
            op = read_outs[owner].op
            mine = np.flatnonzero(rows == owner)
            found = batch_kernels.expectation_pauli_groups(states[mine], op.x_masks,
                                                           op.term_starts, op.z_masks)
            for row, row_values in zip(mine.tolist(), found):
                yield sets.start + row, owner, row_values


def _shared_batches(tasks: list[_EstimatorTask], execution: Execution,
                    control: JobControl) -> dict[int, _BatchedValues]:
    """The values of the noiseless tasks that share batches of states, by task index: the
    pubs of one circuit (many pubs of one set each, as a gradient submits, run as one batch)
    where :func:`~gpuprovider.batched.batchable` and their values fit in
    :data:`MAX_SHARED_VALUES`."""
    groups: dict[int, list[int]] = {}
    for index, task in enumerate(tasks):
        if not task.noisy and len(task.bindings):
            groups.setdefault(id(task.program), []).append(index)
    shared = {}
    for members in groups.values():
        program = tasks[members[0]].program
        owners = np.concatenate([np.full(len(tasks[i].bindings), i) for i in members])
        if len(members) == 1 or not batched.batchable(program, execution.device, owners.size):
            continue  # a lone pub streams its own batches (_exact_values)
        read_outs = {i: _full_read_out(tasks[i]) for i in members}
        values = {i: np.zeros((len(tasks[i].bindings), read_outs[i].terms.size))
                  for i in members}
        if sum(array.size for array in values.values()) > MAX_SHARED_VALUES:
            continue
        first = {i: int(np.argmax(owners == i)) for i in members}
        all_sets = np.concatenate([tasks[i].bindings.values for i in members])
        for row, owner, row_values in _batch_values(
                program, tasks[members[0]].bindings.parameters, all_sets, owners, read_outs,
                execution, control.check):
            values[owner][row - first[owner]] = row_values
        shared.update({i: _BatchedValues(read_outs[i].terms, values[i]) for i in members})
    return shared


def _exact_values(index: int, task: _EstimatorTask, execution: Execution,
                  control: BindingControl, density: bool, computed: _BatchedValues | None
                  ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """``(set, table terms, their exact values)`` for each parameter set of a task whose
    values are exact: noiseless (``computed`` already, from batches shared with other pubs;
    in batches of its own where :func:`~gpuprovider.batched.batchable`; else set by set) or
    read from density matrices."""
    if computed is not None:
        for binding, values in enumerate(computed.values):
            yield binding, computed.terms, values
        return
    bindings = task.bindings
    if not density and batched.batchable(task.program, execution.device, len(bindings)):
        read_out = _full_read_out(task)
        for binding, _, values in _batch_values(
                task.program, bindings.parameters, bindings.values,
                np.zeros(len(bindings), dtype=np.int64), {0: read_out}, execution,
                control.check):
            yield binding, read_out.terms, values
        return
    read_outs = task.read_outs(task.positions())
    runs = program_runs(task.bindings, task.program, execution,
                        None if density else lambda binding: [read_outs[binding].op])

    def run(item: tuple[int, Program], run_control: RunControl) -> tuple[int, np.ndarray]:
        binding, program = item
        if density:
            return binding, _density_values(program, read_outs[binding], task.table,
                                            execution, run_control)
        rng = rng_for(execution.config.seed, index, binding)
        outcome = execution.run(program, 1, rng, run_control, max_states=1)
        return binding, outcome.saved[READ_OUT_LABEL]

    at_once = execution.side_by_side_runs([task.compiled], len(bindings))
    for binding, values in execution.in_order(runs, run, [task.compiled], at_once, control):
        yield binding, read_outs[binding].terms, values


def _run_task(index: int, task: _EstimatorTask, execution: Execution,
              control: JobControl, shared: dict[int, _BatchedValues]) -> PubResult:
    start = time.perf_counter()
    precision = float(task.pub.precision)
    positions = task.positions()
    observable_of = task.observable_of.ravel()
    evs = np.zeros(observable_of.size, dtype=np.float64)
    stds = np.zeros(observable_of.size, dtype=np.float64)
    engine_control = BindingControl(control)
    density = _reads_density_matrix(task, execution)
    if task.noisy and not density:
        read_outs = task.read_outs(positions)
        for binding, program in program_runs(task.bindings, task.program, execution,
                                             lambda binding: [read_outs[binding].op]):
            rng = rng_for(execution.config.seed, index, binding)
            batches = _noisy_batches(task, program, read_outs[binding], execution,
                                     engine_control, rng)
            for position in positions[binding]:
                observable = observable_of[position]
                means = (batches[:, task.table.columns[observable]]
                         @ task.table.coefficients[observable])
                evs[position] = float(means.mean())
                stds[position] = float(means.std(ddof=1) / math.sqrt(len(means)))
            engine_control.binding_done()
    else:
        values = np.zeros(task.table.x_masks.size, dtype=np.float64)
        is_identity = task.table.identity
        for binding, terms, term_values in _exact_values(
                index, task, execution, engine_control, density, shared.get(index)):
            values[terms] = term_values
            rng = None if precision == 0 else rng_for(execution.config.seed, index, binding)
            for position in positions[binding]:
                observable = observable_of[position]
                columns = task.table.columns[observable]
                coefficients = task.table.coefficients[observable]
                if precision == 0:
                    evs[position] = float(np.dot(coefficients, values[columns]))
                else:
                    evs[position], stds[position] = shot_estimate(
                        coefficients, values[columns], is_identity[columns], precision, rng)
            engine_control.binding_done()
    shape = task.shape
    return PubResult(
        DataBin(evs=evs.reshape(shape), stds=stds.reshape(shape), shape=shape),
        metadata={
            "target_precision": precision,
            "circuit_metadata": task.pub.circuit.metadata,
            "simulator_metadata": simulator_metadata(execution, time.perf_counter() - start),
        },
    )
