"""What the planner, the limits and the engine need to know about a device: pure data.

Each device's facts live here once, in a :class:`DevicePolicy`: the kernel modules read their
own limits from it, the planner gets a :class:`PlanPolicy` from it, and nothing above the
kernels imports a kernel module to learn a number (so planning for the GPU never imports
numba-cuda). Tests build their own policies with :func:`dataclasses.replace` instead of
monkeypatching modules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

L2_DEFAULT_BYTES = 1 << 20
"""A core's L2 where the machine does not say (the 2-core AMD EPYC development machine)."""
CACHE_ROOT = Path("/sys/devices/system/cpu/cpu0/cache")
"""Where Linux describes the first core's caches (``index*/level``, ``index*/size``)."""
_SIZE_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def l2_cache_bytes(root: Path = CACHE_ROOT) -> int:
    """A core's L2 cache in bytes, as Linux's sysfs gives it ("2048K"), or
    :data:`L2_DEFAULT_BYTES` where it cannot be read."""
    for index in sorted(root.glob("index*")):
        try:
            if (index / "level").read_text().strip() != "2":
                continue
            size = (index / "size").read_text().strip()
        except OSError:
            continue
        if size[:-1].isdigit() and size[-1] in _SIZE_UNITS:
            return int(size[:-1]) * _SIZE_UNITS[size[-1]]
        if size.isdigit():
            return int(size)
    return L2_DEFAULT_BYTES


def cpu_tile_qubits(l2_bytes: int) -> dict[int, int]:
    """Tile qubits by bytes per amplitude: a tile's real and imaginary arrays fill half of a
    core's L2 (the other half holds a matrix's rows, a diagonal's phases and the pass's
    tables), between 12 and 18 qubits. 1 MiB gives 15 qubits in double, 16 in single."""
    return {itemsize: min(18, max(12, (l2_bytes // (2 * itemsize)).bit_length() - 1))
            for itemsize in (16, 8)}


@dataclass(frozen=True)
class PlanPolicy:
    """The facts the pass planner needs for states of one dtype on one device
    (:mod:`gpuprovider.compile.plan`)."""

    tile_qubits: int
    low_qubits: int
    lane_qubits: int
    fusion_max_qubits: int
    diagonal_max_qubits: int
    dense_cost: tuple[float, ...]
    diagonal_cost: float
    parallel_min_qubits: int
    min_qubits: int = 0
    matrix_max_qubits: int | None = None
    """Widest dense matrix a tile pass takes (None: any that fits its tile); wider ones run
    as their own operations."""
    dtype: np.dtype | None = None
    """The states' dtype (:meth:`DevicePolicy.plan_policy` sets it); ``planned`` encodes the
    tile passes' numbers in it."""
    global_qubits: int = 0
    """Highest qubits of a state spread over ranks (:mod:`gpuprovider.kernels.distributed`):
    dense gates on them are preceded by index-bit swaps, and tiles leave them out (gates keep
    their controls and diagonals there)."""
    distributed_min_qubits: int = 0
    """States of fewer qubits are not spread: they have no global qubits."""

    def global_qubits_for(self, num_qubits: int) -> int:
        """How many of a state's qubits are global."""
        return self.global_qubits if num_qubits >= self.distributed_min_qubits else 0

    def tile_for(self, num_qubits: int) -> tuple[int, int]:
        """``(tile qubits, lane qubits)`` for a state: a small state is one tile without
        lanes; a large one leaves at least 8 chunks so that every thread has work."""
        if num_qubits < self.parallel_min_qubits:
            return num_qubits, 0
        tile = max(min(self.low_qubits, num_qubits), min(self.tile_qubits, num_qubits - 3))
        lanes = min(self.lane_qubits, tile - 2)
        return tile, max(0, lanes)


def _frozen(mapping: Mapping[int, int]) -> Mapping[int, int]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class DevicePolicy:
    """Every fact about one device that code above its kernels may use.

    Mappings keyed by an ``int`` are keyed by bytes per amplitude (16: double, 8: single).
    """

    name: str
    """How users and messages name the device ("CPU", "GPU")."""
    max_matrix_qubits: int | None
    """Widest dense, permutation or prepare operation the kernels apply; None: any that fits
    in memory."""
    plan_min_qubits: int
    """States below this many qubits run op by op, unplanned."""
    tile_qubits: Mapping[int, int]
    """Tile qubits of a tile pass."""
    tile_low_qubits: int
    """Lowest qubits every tile holds, so that a tile is read in whole cache lines."""
    tile_lane_qubits: Mapping[int, int]
    """Lowest local positions of a tile kept free of dense targets (vector lanes)."""
    fusion_max_qubits: int
    """Widest dense block the planner fuses gates into."""
    diagonal_max_qubits: int
    """Widest diagonal the planner folds diagonal gates into."""
    dense_cost: tuple[float, ...]
    """Cost per amplitude of a dense gate inside a tile, by width (index: qubits)."""
    diagonal_cost: float
    """Cost per amplitude of a diagonal inside a tile."""
    parallel_min_qubits: int
    """States below this many qubits are one tile (and on the CPU, one thread)."""
    marker_interval: int
    """The engine records a completion marker after every this many operations (and after
    each circuit), which is how often a job's progress can move."""
    memory_kind: str = "host"
    """Where states live: "host" (main memory) or "device" (the accelerator's memory)."""
    small_state_qubits: int = 0
    """States of fewer qubits run on the device's small-state kernels, where it has them
    (:meth:`gpuprovider.device.Device.kernels_for`)."""
    tile_matrix_max_qubits: int | None = None
    """Widest dense matrix a tile pass (and a one-thread-per-group gather) applies; None: any
    that fits the tile. Wider ones run on their own (:attr:`max_matrix_qubits` bounds them)."""
    global_qubits: int = 0
    """log2 of the ranks a state is spread over (0: one process holds each state)."""
    distributed_min_qubits: int = 0
    """States of fewer qubits are not spread: every rank holds the whole state."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "tile_qubits", _frozen(self.tile_qubits))
        object.__setattr__(self, "tile_lane_qubits", _frozen(self.tile_lane_qubits))
        object.__setattr__(self, "dense_cost", tuple(self.dense_cost))

    def plan_policy(self, dtype: np.dtype) -> PlanPolicy:
        """The planner's facts for states of ``dtype``."""
        itemsize = np.dtype(dtype).itemsize
        return PlanPolicy(
            tile_qubits=self.tile_qubits[itemsize],
            low_qubits=self.tile_low_qubits,
            lane_qubits=self.tile_lane_qubits[itemsize],
            fusion_max_qubits=self.fusion_max_qubits,
            diagonal_max_qubits=self.diagonal_max_qubits,
            dense_cost=self.dense_cost,
            diagonal_cost=self.diagonal_cost,
            parallel_min_qubits=self.parallel_min_qubits,
            min_qubits=self.plan_min_qubits,
            matrix_max_qubits=self.tile_matrix_max_qubits,
            dtype=np.dtype(dtype),
            global_qubits=self.global_qubits,
            distributed_min_qubits=self.distributed_min_qubits,
        )


CPU_POLICY = DevicePolicy(
    name="CPU",
    max_matrix_qubits=None,
    # Below 12 qubits each op is a few microseconds, less than planning costs, and the tile
    # kernels need not be compiled.
    plan_min_qubits=12,
    # Half of a core's L2, read once from the machine. With the 2 MiB L2 of the Intel machine
    # of 2026-12-02 (17 qubits in single) QV-22's tile passes ran 1.15-1.2x faster on one
    # thread than with the 16 that a 1 MiB L2 gives; in double 16 and 15 were within noise.
    tile_qubits=cpu_tile_qubits(l2_cache_bytes()),
    tile_low_qubits=3,
    # Wide and controlled matrices run as vectorised loops along runs of at least 2**5
    # amplitudes (kernels/cpu_tiles.py, _dense_lanes): on runs of 2**4, LLVM's vector loop
    # (8 floats, unrolled) is skipped for its scalar remainder, 2-3x slower.
    tile_lane_qubits={16: 5, 8: 5},
    fusion_max_qubits=4,
    # A table of 2**12 phases.
    diagonal_max_qubits=12,
    # Nanoseconds per amplitude on one core of the 2-core Intel machine in double
    # (kernels/cpu_tiles.py on a 2**15 tile, targets drawn above the lanes, median of 5
    # draws; 2026-12-02 16:35 UTC, load 3 from other work): 1 qubit the BLOCK loop, 2 to 5
    # qubits _dense_lanes (2 qubits in one loop per run, _rows4: 1.0 against 1.4-1.7 for the
    # BLOCK loop). The planner fuses two gates when the fused one costs no more than the
    # pair: two 2-qubit gates on 3 qubits no longer fuse (in single 0.58 a 2-qubit and 1.0-2.0
    # a 3-qubit matrix); planned with these figures instead of the earlier (0.9, 1.15, 2.0,
    # 3.9, 9.3), QV-22's passes ran 1.08-1.11x faster, random-22's 1.10-1.28x, GHZ-22's 1.06x,
    # QFT-22's the same (in-process A/B, both precisions).
    dense_cost=(0.0, 0.76, 1.0, 2.65, 4.2, 10.0),
    diagonal_cost=1.0,
    # Smaller states run on the calling thread: a thread-pool launch costs more than the pass.
    parallel_min_qubits=14,
    # A CPU marker costs nothing: one after every operation.
    marker_interval=1,
    memory_kind="host",
    # Below 10 qubits the NumPy kernels (kernels/small.py) run: 2-4 us an operation against
    # Numba's 1-3 us, but no Numba to load (a third of a second in a fresh process). At 10
    # qubits NumPy's gathers take 6-7 us, twice Numba's.
    small_state_qubits=10,
)
"""The Numba CPU engine (``kernels/cpu.py``, ``kernels/cpu_tiles.py``)."""

GPU_POLICY = DevicePolicy(
    name="GPU",
    # Up to 5 qubits each thread of a gather holds its 2**k amplitudes in local memory (in
    # tile passes too); wider matrices and permutations copy batches of groups to a scratch
    # array first (kernels/cuda.py, _apply_wide).
    max_matrix_qubits=None,
    # Every state is planned: a tile pass is one launch for many gates, and launches are what
    # small circuits cost on a GPU.
    plan_min_qubits=0,
    # The tile is a 32 KiB shared array, the largest power of two within the 48 KiB of static
    # shared memory a block may have. Six such blocks fit in the 228 KiB of an H200
    # multiprocessor; registers allow fewer (ptxas -v for sm_90: 130 per thread in double, 88
    # in single, so 1 and 2 blocks of 256 threads).
    tile_qubits={16: 11, 8: 12},
    # Runs of 32 amplitudes, so a warp loads one whole run (256 or 512 contiguous bytes).
    tile_low_qubits=5,
    # No lanes: threads, not vector registers, share a tile's work.
    tile_lane_qubits={16: 0, 8: 0},
    # A 16 x 16 matrix.
    fusion_max_qubits=4,
    # 2**10 phases (16 KiB in double), read from the L1 cache beside the shared-memory tiles.
    diagonal_max_qubits=10,
    # Relative cost (only decides fusion): in shared memory a one- or two-qubit gate is bound
    # by the shared-memory traffic and the barrier after it, not its flops; wider gates gather
    # through local memory and grow with their 2**k products per amplitude. Estimates, not yet
    # timed on a GPU.
    dense_cost=(0.0, 1.0, 1.0, 2.5, 5.0, 10.0),
    diagonal_cost=1.0,
    # Every state is cut into chunks, one thread block each (PlanPolicy.tile_for leaves at
    # least 8 and never exceeds tile_qubits).
    parallel_min_qubits=0,
    # A CUDA event per 16 launches: the same cadence as the launch throttle in cuda.py.
    marker_interval=16,
    memory_kind="device",
    tile_matrix_max_qubits=5,
)
"""The numba-cuda GPU engine (``kernels/cuda.py``)."""

POLICIES = {policy.name: policy for policy in (CPU_POLICY, GPU_POLICY)}
"""Every built-in device's policy by name."""
