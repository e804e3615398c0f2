"""SamplerV2: shots drawn from the statevector, or through the dynamic-circuit engine."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from qiskit import QuantumCircuit
from qiskit.primitives import (
    BaseSamplerV2,
    BitArray,
    DataBin,
    SamplerPubResult,
)
from qiskit.primitives.containers.sampler_pub import SamplerPub, SamplerPubLike

from ..backend import GPUSimulator
from ..exceptions import InvalidOptionError
from ..compile.program import Program
from ..engine import Outcome, RunControl
from ..execution import CompiledCircuit, Execution
from ..job import JobControl
from ..shots import check_shot_memory, memory_bytes, packed_bits
from .job import GPUPrimitiveJob
from .options import Seed, rng_for
from .base import (
    BindingControl,
    Bindings,
    SimulatorPrimitive,
    set_runs,
    pub_name,
    simulator_metadata,
)


@dataclass(frozen=True)
class _Register:
    """A classical register: its name and the circuit's index of each of its bits."""

    name: str
    clbits: np.ndarray

    @property
    def num_bytes(self) -> int:
        return -(-self.clbits.size // 8)

    def packed(self, memory: np.ndarray) -> np.ndarray:
        """The register's bits of every shot as BitArray stores them (``memory``: the
        engine's shot rows, :mod:`gpuprovider.shots`)."""
        return packed_bits(memory, self.clbits)


def _registers(circuit: QuantumCircuit) -> list[_Register]:
    return [_Register(register.name,
                      np.array([circuit.find_bit(bit).index for bit in register], dtype=np.int64))
            for register in circuit.cregs]


@dataclass(frozen=True)
class _SamplerTask:
    pub: SamplerPub
    compiled: CompiledCircuit
    bindings: Bindings
    registers: list[_Register]

    @property
    def runs(self) -> int:
        """How many runs it makes: one per parameter set."""
        return len(self.bindings)


class SamplerV2(SimulatorPrimitive, BaseSamplerV2):
    """Shots of circuits, one ``BitArray`` per classical register.

    When every measurement is final, each parameter set is simulated once and all its shots
    are drawn from the final state in one pass. Circuits with mid-circuit measurements,
    resets or control flow run on the engine's dynamic path (shots split into branches at
    each measurement). A circuit is lowered once per pub; only its parameterised gates are
    rebuilt per parameter set.

    Example::

        sampler = SamplerV2(seed=7, options={"backend_options": {"precision": "single"}})
        result = sampler.run([(circuit, parameter_values)], shots=1000).result()
        result[0].data.meas.get_counts()
    """

    def __init__(
        self, *, default_shots: int = 1024, seed: Seed = None,
        options: Mapping[str, Any] | None = None, backend: GPUSimulator | None = None,
    ) -> None:
        """
        Args:
            default_shots: the shots of pubs that give none.
            seed: None (a fresh seed per run), an integer, or a NumPy Generator.
            options: qiskit-aer's form: ``{"default_shots": ..., "backend_options":
                {"device": ..., "precision": ..., "fusion_enable": ...}, "run_options":
                {"seed_simulator": ...}}``.
            backend: a GPUSimulator whose device, precision and fusion options are the
                defaults of ``backend_options``.

        Raises:
            InvalidOptionError: an unknown option or a bad value.
            DeviceUnavailableError: ``device="GPU"`` where no GPU is usable.
        """
        defaults = self._configure(seed, options, {"default_shots": default_shots}, backend)
        shots = defaults["default_shots"]
        if isinstance(shots, bool) or not isinstance(shots, (int, np.integer)) or shots <= 0:
            raise InvalidOptionError(f"default_shots={shots!r} must be a positive integer")
        self._default_shots = int(shots)

    @property
    def default_shots(self) -> int:
        return self._default_shots

    def run(self, pubs: Iterable[SamplerPubLike], *,
            shots: int | None = None) -> GPUPrimitiveJob:
        """Check the pubs, lower their circuits and submit a job that samples them.

        Raises:
            ValueError, TypeError: a pub is malformed (Qiskit's message) or has a parameter
                value that is not finite.
            InvalidCircuitError: a circuit cannot be simulated (the instruction is named).
            CapacityError: a circuit can never fit in the device's memory.
        """
        if shots is None:
            shots = self._default_shots
        coerced = [SamplerPub.coerce(pub, shots) for pub in pubs]
        if any(not pub.circuit.cregs for pub in coerced):
            warnings.warn(
                "One of your circuits has no output classical registers and so the result "
                "will be empty. Did you mean to add measurement instructions?",
                UserWarning, stacklevel=2,
            )
        execution, compiled = self._compile_pubs([pub.circuit for pub in coerced])
        for index, (pub, circuit) in enumerate(zip(coerced, compiled)):
            bit_arrays = pub.shots * math.prod(pub.parameter_values.shape) * sum(
                -(-register.size // 8) for register in pub.circuit.cregs)
            check_shot_memory(bit_arrays + memory_bytes(circuit.program.num_clbits, pub.shots),
                              f"{pub_name(index, pub.circuit)} samples {pub.shots:,} shots")
        tasks = [
            _SamplerTask(pub, circuit,
                         Bindings.of(pub.circuit, pub.parameter_values,
                                     pub_name(index, pub.circuit)),
                         _registers(pub.circuit))
            for index, (pub, circuit) in enumerate(zip(coerced, compiled))
        ]
        return self._submit_tasks(execution, tasks, _run_task, compiled)


def _run_task(index: int, task: _SamplerTask, execution: Execution,
              control: JobControl) -> SamplerPubResult:
    start = time.perf_counter()
    seed = execution.config.seed
    shots = task.pub.shots
    arrays = {register.name: np.zeros((len(task.bindings), shots, register.num_bytes),
                                      dtype=np.uint8)
              for register in task.registers}
    engine_control = BindingControl(control)
    sampled = True

    def run(item: tuple[int, Program], run_control: RunControl) -> tuple[int, Outcome]:
        binding, program = item
        return binding, execution.run(program, shots, rng_for(seed, index, binding),
                                      run_control, task.compiled.max_states, keep_memory=True)

    runs = set_runs(task.bindings, task.compiled.program, execution, control.check)
    at_once = execution.side_by_side_runs([task.compiled], task.runs)
    for binding, outcome in execution.in_order(runs, run, [task.compiled], at_once,
                                               engine_control):
        sampled &= outcome.sampled
        for register in task.registers:
            arrays[register.name][binding] = register.packed(outcome.memory)
        engine_control.binding_done()
    shape = task.bindings.shape
    data = {
        register.name: BitArray(arrays[register.name].reshape(*shape, shots, register.num_bytes),
                                register.clbits.size)
        for register in task.registers
    }
    return SamplerPubResult(
        DataBin(**data, shape=shape),
        metadata={
            "shots": shots,
            "circuit_metadata": task.pub.circuit.metadata,
            "simulator_metadata": {**simulator_metadata(execution, time.perf_counter() - start),
                                   "sampled": sampled},
        },
    )
