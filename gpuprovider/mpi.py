"""Running under MPI: finding the ranks, and the :class:`~gpuprovider.device.Device` that
spreads each state over them (:mod:`gpuprovider.kernels.distributed`).

A program started by an MPI launcher (``mpiexec -n R python script.py``) runs once per rank.
With ``distributed="auto"`` (the default) a run spreads its states over the ranks when ``R >
1`` is a power of two and mpi4py is importable: rank ``r`` holds the amplitudes whose highest
``log2 R`` index bits spell ``r``, in host memory on CPU ranks, on the rank's GPU on GPU ranks
(each rank uses the first GPU it sees: give each its own with ``CUDA_VISIBLE_DEVICES``, as
``srun --gpus-per-task=1`` does; ranks of one node that all see the same several GPUs get a
warning, since they would share the first). ``distributed=False`` keeps a whole state on every
rank (independent runs); ``distributed=True`` asks for the spread and says why it cannot be
had. A program that has imported ``mpi4py.futures`` (an MPI pool, whose ranks run separate
tasks) is not spread unless it asks with True. Every rank must make the same calls in the same
order (the usual MPI program): each rank's job then runs the same collective operations and
returns the same Result; the seed and the job id are rank 0's. Jobs on spread devices run one
at a time, in the order they were submitted (:class:`~gpuprovider.admission.Turnstile`), so
that their collective operations never interleave. Cancelling a job must then happen on every
rank alike.

The launcher is recognised by the variables it sets (:data:`RANKS_VARIABLES`) before mpi4py
is imported, so ``import gpuprovider`` and a run outside MPI never load an MPI library.
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import replace
from functools import cache
from typing import Any

import numpy as np

from .admission import Turnstile
from .device import Device, DeviceReport
from .exceptions import InvalidOptionError

DISTRIBUTED_CHOICES = ("auto", True, False)
"""The values of the ``distributed`` option."""
RANKS_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "PMIX_SIZE")
"""How MPI launchers tell a process how many ranks were started (MPICH/Intel MPI and Slurm's
PMI, Open MPI, MVAPICH, PMIx)."""
TURNSTILE = Turnstile()
"""Every spread device's jobs take turns: they all use the ranks of ``COMM_WORLD``."""
MIN_LOCAL_QUBITS = 4
"""A spread state keeps at least 4 qubits on each rank (a 4-qubit gate fits a slice);
smaller states are held whole by every rank."""


def launched_ranks() -> int:
    """How many ranks an MPI launcher started this program with (1: none)."""
    for name in RANKS_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 1:
            return int(value)
    return 1


@cache
def world() -> tuple[Any, str]:
    """``(communicator, why)``: mpi4py's ``COMM_WORLD`` when a launcher started several
    ranks and mpi4py imports, else ``(None, the reason)``."""
    if launched_ranks() == 1:
        return None, "the program was not started by an MPI launcher with several ranks"
    try:
        from mpi4py import MPI
    except ImportError as exc:
        return None, (f"mpi4py is not importable ({exc}); install it with pip install "
                      "'gpuprovider[mpi]'")
    return MPI.COMM_WORLD, ""


def validate_distributed(value: Any) -> str | bool:
    """``value`` as one of :data:`DISTRIBUTED_CHOICES`, or InvalidOptionError naming it."""
    if isinstance(value, str) and value.lower() == "auto":
        return "auto"
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise InvalidOptionError(f"distributed={value!r} must be 'auto', True or False")


def spread(device: Device, choice: str | bool) -> Device:
    """The device a run with ``distributed=choice`` uses: ``device`` spread over the ranks,
    or ``device`` itself.

    Raises:
        InvalidOptionError: ``choice`` is True and the state cannot be spread here (no
            mpi4py, not a power of two of ranks); the message says which.
    """
    if choice is False or device.policy.global_qubits:  # not at all, or already spread
        return device
    if choice == "auto" and "mpi4py.futures" in sys.modules:
        # An MPI pool's ranks run tasks, not one program together: a spread run would wait
        # for ranks that never join it.
        return device
    comm, why = world()
    if comm is None:
        if choice is True and launched_ranks() > 1:
            raise InvalidOptionError(f"distributed=True: {why}")
        return device
    ranks = comm.Get_size()
    if ranks == 1:
        return device
    reason = ""
    if ranks & (ranks - 1):
        reason = f"{ranks} ranks is not a power of two"
    elif not _on_every_rank(device.name):
        reason = (f"not every rank runs on the {device.name} (device='auto' found a GPU on "
                  "some ranks only?); pass the same device everywhere")
    if reason:
        if choice is True:
            raise InvalidOptionError(f"distributed=True: {reason}")
        return device
    return _spread(device)


def _on_every_rank(device_name: str) -> bool:
    """Whether every rank asks for a spread state on a device of this name (a collective:
    every rank makes the same runs in the same order)."""
    comm, _ = world()
    return len(set(comm.allgather(device_name))) == 1


@cache
def _spread(device: Device) -> Device:
    """``device`` spread over the ranks of :func:`world` (one per device, so that jobs share
    its admission). Its memory is the ranks' together: each holds a slice."""
    from .kernels.distributed import DistributedKernels

    world_comm, _ = world()
    if device.policy.memory_kind == "device":
        _warn_if_gpus_shared(world_comm)
    # Runs' collectives on their job threads and the agreements on the submitting thread
    # each get a communicator of their own, so that they never mix.
    comm, agreement = world_comm.Dup(), world_comm.Dup()
    global_qubits = comm.Get_size().bit_length() - 1
    smallest = global_qubits + MIN_LOCAL_QUBITS
    # Every spread state is planned: unplanned, each dense gate on a global qubit would swap
    # its data in and back.
    policy = replace(device.policy, global_qubits=global_qubits,
                     distributed_min_qubits=smallest, small_state_qubits=smallest,
                     plan_min_qubits=min(device.policy.plan_min_qubits, smallest))

    def probe() -> DeviceReport:
        report = device.report
        return replace(report, reason=f"{report.reason}, a state spread over "
                       f"{comm.Get_size()} MPI ranks",
                       total_memory=report.total_memory << global_qubits)

    return Device(
        policy, probe,
        lambda: DistributedKernels(comm, policy, device.kernels_for),
        lambda: device.free_memory() << global_qubits,
        lambda: device.kernels_for(0),
        agree=lambda value: agreement.bcast(value, root=0),
        turnstile=TURNSTILE,
    )


def _warn_if_gpus_shared(world_comm: Any) -> None:
    """Warn where several ranks of one node see the same several GPUs: each would use the
    first (a slice runs on the calling thread's default device)."""
    from mpi4py import MPI

    from .device import cuda_driver_devices

    node = world_comm.Split_type(MPI.COMM_TYPE_SHARED)
    node_ranks = node.Get_size()
    node.Free()
    visible, _ = cuda_driver_devices()
    if node_ranks > 1 and visible > 1:
        warnings.warn(f"{node_ranks} MPI ranks on this node each see {visible} GPUs and would "
                      "all use the first: give each rank its own GPU with "
                      "CUDA_VISIBLE_DEVICES (srun --gpus-per-task=1 does)", RuntimeWarning,
                      stacklevel=3)
