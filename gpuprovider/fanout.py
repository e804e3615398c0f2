"""A run's experiments spread over an executor's workers, as one job.

``GPUSimulator(executor=...)`` (or ``run(..., executor=...)``) takes any object with
``submit(fn, *args)`` returning a future (``result()``, ``done()``, ``cancel()``): a
``concurrent.futures`` pool, a ``dask.distributed`` ``Client`` or its ``get_executor()``,
``mpi4py.futures.MPIPoolExecutor``. The run is checked and compiled here, as without one; its
experiments (a sweep's bindings count one each) are then cut, in order, into batches of at most
``max_job_size``, and each batch runs in a worker as an ordinary run of this simulator on the
worker's device. Batch ``b`` starting at experiment ``k`` is seeded with the seed experiment
``k`` would have had (:func:`~gpuprovider.options.experiment_seed`), so every experiment gets
the seed, and so the counts, of the same run without an executor.

The job stays one ``JobV1``: it is RUNNING while batches run, its progress counts finished
batches, ``cancel()`` cancels the batches not yet started (a started one runs to its end on
its worker), and a failed batch fails the job with the worker's error.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.result.models import ExperimentResult

from .compile.sweep import Sweep, experiment_count
from .job import JobControl
from .kernels.interface import COMPLETE
from .options import experiment_seed

POLL_SECONDS = 0.02
"""How often the job looks at its batches' futures (and at its cancellation flag)."""
BATCHES_PER_WORKER = 4
"""Without ``max_job_size``, a run is cut into this many batches per worker (the executor's
``_max_workers`` where it has one, else the machine's CPU count), so that workers that finish
early take more."""


@dataclass(frozen=True)
class Batch:
    """Experiments ``first .. first + size`` of a run, as the arguments of a run."""

    circuits: tuple[QuantumCircuit, ...]
    parameter_binds: tuple[dict[Parameter, list[float]], ...] | None
    first: int
    size: int
    steps: int


def batches(circuits: Sequence[QuantumCircuit], sweeps: Sequence[Sweep | None],
            steps: Sequence[int], max_job_size: int) -> list[Batch]:
    """The run's experiments cut, in order, into batches of at most ``max_job_size``.

    ``steps[i]`` is circuit ``i``'s progress steps over all its experiments (a sweep's
    bindings take alike)."""
    pieces: list[tuple[int, int, int]] = []  # (circuit, first binding, bindings)
    for index, sweep in enumerate(sweeps):
        count = experiment_count(sweep)
        for start in range(0, count, max_job_size):
            pieces.append((index, start, min(max_job_size, count - start)))
    cut: list[Batch] = []
    pending: list[tuple[int, int, int]] = []
    first = 0

    def close() -> None:
        nonlocal first
        size = sum(piece[2] for piece in pending)
        binds = None
        if sweeps[pending[0][0]] is not None:
            binds = tuple({parameter: list(values[start:start + length])
                           for parameter, values in sweeps[index].columns.items()}
                          for index, start, length in pending)
        per_experiment = [steps[index] // experiment_count(sweeps[index])
                          for index, _, _ in pending]
        cut.append(Batch(tuple(circuits[index] for index, _, _ in pending), binds, first, size,
                         sum(share * piece[2] for share, piece in zip(per_experiment, pending))))
        first += size
        pending.clear()

    for piece in pieces:
        if pending and sum(p[2] for p in pending) + piece[2] > max_job_size:
            close()
        pending.append(piece)
    if pending:
        close()
    return cut


RUN_HERE = ("executor", "max_job_size", "seed_simulator")
"""Options that shape the fan-out itself; a worker's run is given its seed per batch."""


def worker_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options a worker runs a batch with: ``options`` without the fan-out's own, and
    never spread over MPI ranks (a worker runs alone, an mpi4py.futures pool's too)."""
    return {**{name: value for name, value in options.items() if name not in RUN_HERE},
            "distributed": False}


def default_job_size(executor: Any, experiments: int) -> int:
    """Experiments per batch when ``max_job_size`` is None."""
    workers = getattr(executor, "_max_workers", None) or os.cpu_count() or 1
    return max(1, math.ceil(experiments / (BATCHES_PER_WORKER * workers)))


def run_batch(circuits: Sequence[QuantumCircuit],
              parameter_binds: Sequence[Mapping[Parameter, Sequence[float]]] | None,
              options: dict[str, Any]) -> list[ExperimentResult]:
    """Run one batch on this process's device (what a worker calls): the experiments'
    results, in order."""
    from .backend import GPUSimulator

    job = GPUSimulator(**options).run(list(circuits), parameter_binds=parameter_binds)
    return list(job.result().results)


def run_batches(executor: Any, cut: Sequence[Batch], options: dict[str, Any], seed: int,
                control: JobControl) -> list[ExperimentResult]:
    """Run every batch of a run on ``executor`` (:func:`gather`): the experiments' results,
    in order."""
    calls = [((batch.circuits,
               None if batch.parameter_binds is None else list(batch.parameter_binds),
               {**options, "seed_simulator": experiment_seed(seed, batch.first)}), batch.steps)
             for batch in cut]
    return gather(executor, run_batch, calls, control)


def gather(executor: Any, function: Callable[..., list], calls: Sequence[tuple[tuple, int]],
           control: JobControl) -> list:
    """Submit ``function(*arguments)`` to ``executor`` for every ``(arguments, steps)`` of
    ``calls`` and return their lists of results joined, in order, counting each finished
    call's steps; on cancellation or a failed call the calls not yet finished are cancelled
    and the error raised."""
    futures = [executor.submit(function, *arguments) for arguments, _ in calls]
    results: list = []
    try:
        for (_, steps), future in zip(calls, futures):
            while not future.done():
                control.check()
                time.sleep(POLL_SECONDS)
            control.check()
            results.extend(future.result())
            control.advance(steps)
            control.mark(COMPLETE)
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    return results


def cut_in_order(sizes: Sequence[int], max_job_size: int) -> list[range]:
    """Consecutive items of ``sizes`` grouped so that no group but a lone item exceeds
    ``max_job_size`` in all (the primitives' pubs, which are never split)."""
    groups: list[range] = []
    start = total = 0
    for index, size in enumerate(sizes):
        if index > start and total + size > max_job_size:
            groups.append(range(start, index))
            start, total = index, 0
        total += size
    if start < len(sizes):
        groups.append(range(start, len(sizes)))
    return groups
