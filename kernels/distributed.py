"""A statevector spread over MPI ranks: the :class:`~gpuprovider.kernels.interface.KernelSet`
of a distributed run (:class:`DistributedKernels`), built on the kernel set of each rank's
device (the CPU's, or one GPU's per rank).

With ``R = 2**g`` ranks, a state of ``n`` qubits is cut by its highest ``g`` index bits: rank
``r`` holds the ``2**(n-g)`` amplitudes whose index is ``r << (n - g)`` plus a local index,
as a state of the rank's kernel set (a NumPy array on CPU ranks, device memory on GPU
ranks). Qubits ``0 .. n-g-1`` are *local*, qubits ``n-g ..
n-1`` are *global*: global qubit ``n-g+b`` is bit ``b`` of the rank. Every rank runs the same
program with the same seed, so every rank calls the same operations in the same order, and
each operation is collective.

Index bits are positions: the planner decides which qubit each one holds
(:func:`~gpuprovider.compile.plan.relabel_swaps` with local qubits: it inserts a SWAP of a
global and a local qubit before a dense gate on a global qubit and renames the later ops,
final measurements included; it swaps back only before an op that reads the whole state in
order, such as a statevector save, and before the final draw when more qubits are measured
than are drawn from their marginal). Moving data is the exception. Per operation:

- **Gates on local qubits** run on the rank's slice with the rank's kernels.
- **Diagonals and controls on global qubits** move no data: the rank's bits fix the global
  qubits' values, so a diagonal becomes the part of it those bits select and a gate whose
  global controls the rank does not satisfy does nothing there. A matrix or permutation that
  does not mix a global qubit (a ``cx`` or ``crx`` controlled there) is the block the rank's
  bits select.
- **Tile passes** have tiles of local qubits only (the planner's doing); their rows'
  conditions and diagonals on global qubits are decided per rank
  (:func:`~gpuprovider.kernels.tiles.for_slice`, cached per pass), and the pass runs on the
  slice.
- **A SWAP of a global and a local qubit** is the *index-bit swap*: rank ``r`` and its
  partner ``r ^ 2**b`` exchange the halves of their slices whose local bit differs from
  their own global bit (``Sendrecv`` in chunks of :data:`EXCHANGE_CHUNK` amplitudes). A SWAP
  of two global qubits exchanges whole slices between the ranks whose two bits differ.
- **A dense gate on global qubits** that the planner did not localise (programs with control
  flow are not planned) is wrapped in such swaps: each global target is swapped with a free
  local qubit, the gate runs on the slice, and the swaps are undone. An operation that needs
  more qubits than a slice holds runs on the gathered state (every rank) and is cut again.
- **Read-outs** reduce over ranks: each rank's partial value is gathered and summed in rank
  order (``allgather``), so every rank gets the same float and takes the same random branch.
  Probabilities of a global qubit are the slice's norm where the rank's bit is set; marginal
  probabilities place each rank's local histogram at its global bits; a Pauli term's Z on a
  global qubit is the rank's sign, and its X on one is first swapped onto a local qubit.
  Sampling draws every shot's uniform on every rank, cuts the sorted targets by the prefix
  sum of the ranks' norms, samples each rank's share from its slice and gathers the indices.
- **Measurement and reset** of a local qubit collapse every slice; of a global qubit they keep
  or zero whole slices, and a reset to 0 moves the kept slices to the partner ranks.

Each stream (one per run) counts the exchanges made on its states: index-bit swaps and the
bytes all ranks sent together (:meth:`DistributedKernels.stream_metadata`). The module imports
no MPI library: it is handed a communicator (an ``mpi4py`` ``Comm``).

Everything is done through the rank's :class:`~gpuprovider.kernels.interface.KernelSet`; only
the exchanges and the few updates written in NumPy (a scale by a constant, zeroing a slice,
the gathered whole) need the amplitudes in host memory. A slice in device memory is staged
there (:meth:`DistributedKernels._amplitudes`: the whole slice copied to the host, sent and
received from there, copied back), so any MPI works; CUDA-aware MPI, which would send device
buffers directly, is not used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .interface import KernelSet, Marker
from .layout import kept_bits, pauli_groups_layout, unmixed_bits
from .policy import DevicePolicy
from .tiles import TilePass, for_slice

EXCHANGE_CHUNK = 1 << 20
"""Amplitudes sent in one ``Sendrecv`` (16 MiB in double): the exchange buffers stay small
beside the slice."""
SLICE_CACHE_PASSES = 4096
"""Tile passes whose rank-specific form (:func:`~gpuprovider.kernels.tiles.for_slice`) is
kept: a sweep reruns the same passes."""
SWAP_PERMUTATION = np.array([0, 2, 1, 3])
"""The permutation of a SWAP gate (as :data:`gpuprovider.compile.program.SWAP_PERMUTATION`)."""


@dataclass
class Exchanges:
    """A run's stream: what its states exchanged between ranks."""

    swaps: int = 0
    """Index-bit swaps this rank took part in (of a global and a local qubit, or of two
    global qubits)."""
    bytes_sent: int = 0
    """Bytes this rank sent."""
    local: Any = None
    """The stream of the rank's kernel set its slices run on (a CUDA stream on a GPU)."""


@dataclass(eq=False)
class DistributedState:
    """One rank's part of a distributed state."""

    local: Any
    """The rank's ``2**(n-g)`` amplitudes: a state of the rank's kernel set."""
    num_qubits: int
    stream: Exchanges = field(default_factory=Exchanges)


class DistributedKernels:
    """The operation set on states spread over the ranks of ``comm`` (see the module
    docstring).

    Args:
        comm: the communicator (``mpi4py.MPI.Comm``) of ``2**g`` ranks.
        policy: the device policy (its ``global_qubits`` is ``g``).
        local_kernels: the kernel set for a slice of a given number of qubits (the
            device's: ``policy.memory_kind`` says whether its states are in host memory).
    """

    def __init__(self, comm: Any, policy: DevicePolicy,
                 local_kernels: Callable[[int], KernelSet]) -> None:
        self.comm = comm
        self.POLICY = policy
        self.rank = comm.Get_rank()
        self.ranks = comm.Get_size()
        self.global_qubits = self.ranks.bit_length() - 1
        if 1 << self.global_qubits != self.ranks:
            raise ValueError(f"a distributed state needs a power of two of ranks, not "
                             f"{self.ranks}")
        self._local_kernels = local_kernels
        self._in_host_memory = policy.memory_kind == "host"
        self._slices: dict[tuple[int, int], tuple[TilePass, TilePass]] = {}
        """Tile passes as this rank runs them, by the pass's id (the pass kept, so that the
        id is not reused while cached)."""

    # --- helpers ---------------------------------------------------------------------------

    def _local_qubits(self, state: DistributedState) -> int:
        return state.num_qubits - self.global_qubits

    def _kernels(self, state: DistributedState) -> KernelSet:
        return self._local_kernels(self._local_qubits(state))

    def _bit(self, state: DistributedState, qubit: int) -> int:
        """This rank's value of global ``qubit``."""
        return (self.rank >> (qubit - self._local_qubits(state))) & 1

    def _sum(self, value: np.ndarray | float) -> np.ndarray:
        """The sum over ranks of ``value`` (float64), the same bits on every rank."""
        parts = self.comm.allgather(np.asarray(value, dtype=np.float64))
        total = parts[0].copy()
        for part in parts[1:]:
            total += part
        return total

    def _amplitudes(self, state: DistributedState) -> np.ndarray:
        """The slice as a NumPy array: the state itself in host memory, else a host copy
        (write it back with :meth:`_store`)."""
        if self._in_host_memory:
            return state.local
        return self._kernels(state).to_host(state.local)

    def _store(self, state: DistributedState, amplitudes: np.ndarray) -> None:
        """Write back the slice :meth:`_amplitudes` returned, where it was a copy."""
        if amplitudes is not state.local:
            self._kernels(state).copy_from_host(state.local, amplitudes)

    def _scale(self, state: DistributedState, factor: complex) -> None:
        """Multiply the slice by ``factor``."""
        diagonal = np.full(2, factor, dtype=state.local.dtype)
        self._kernels(state).apply_diagonal(state.local, np.zeros(1, dtype=np.int64), diagonal)

    @contextmanager
    def _whole(self, state: DistributedState) -> Iterator[tuple[KernelSet, Any]]:
        """``(kernels, whole)``: the gathered state as a state of the rank's kernel set."""
        kernels = self._local_kernels(state.num_qubits)
        whole = kernels.from_host(self.to_host(state), state.stream.local)
        try:
            yield kernels, whole
        finally:
            kernels.release(whole)

    def _sendrecv(self, view: np.ndarray, partner: int, stream: Exchanges) -> None:
        """Swap ``view`` (2-D) with the same view on ``partner``, in chunks."""
        rows, columns = view.shape
        column_step = min(columns, EXCHANGE_CHUNK)
        row_step = max(1, EXCHANGE_CHUNK // column_step)
        for row in range(0, rows, row_step):
            for column in range(0, columns, column_step):
                block = view[row:row + row_step, column:column + column_step]
                send = np.ascontiguousarray(block)
                receive = np.empty_like(send)
                self.comm.Sendrecv(send, dest=partner, recvbuf=receive, source=partner)
                block[...] = receive
        stream.bytes_sent += view.nbytes

    def _swap(self, state: DistributedState, a: int, b: int) -> None:
        """Swap qubits ``a`` and ``b`` where at least one is global (an index-bit swap)."""
        local = self._local_qubits(state)
        low, high = min(a, b), max(a, b)
        if low < local:
            amplitudes = self._amplitudes(state)
            half = amplitudes.reshape(-1, 2, 1 << low)[:, 1 - self._bit(state, high), :]
            self._sendrecv(half, self.rank ^ (1 << (high - local)), state.stream)
            self._store(state, amplitudes)
        elif self._bit(state, low) != self._bit(state, high):
            partner = self.rank ^ (1 << (low - local)) ^ (1 << (high - local))
            amplitudes = self._amplitudes(state)
            self._sendrecv(amplitudes.reshape(1, -1), partner, state.stream)
            self._store(state, amplitudes)
        state.stream.swaps += 1

    def _free(self, state: DistributedState, targets: np.ndarray, touched: np.ndarray
              ) -> tuple[list[int], list[int]]:
        """``(global targets, local qubits that ``touched`` leaves free, highest first)``."""
        local = self._local_qubits(state)
        busy = {int(q) for q in touched}
        return ([int(q) for q in targets if q >= local],
                [q for q in range(local - 1, -1, -1) if q not in busy])

    def _fits(self, state: DistributedState, targets: np.ndarray, touched: np.ndarray) -> bool:
        """Whether the slice has a free local qubit for each global target (the same answer
        on every rank)."""
        wanted, free = self._free(state, targets, touched)
        return len(wanted) <= len(free)

    def _localised(self, state: DistributedState, targets: np.ndarray, touched: np.ndarray
                   ) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """``targets`` with each global one swapped onto a free local qubit, and the swaps
        made (to undo); the slice must :meth:`_fits` them."""
        wanted, free = self._free(state, targets, touched)
        if not wanted:
            return targets, []
        swaps = list(zip(wanted, free))
        for a, b in swaps:
            self._swap(state, a, b)
        moved = dict(swaps)
        return np.array([moved.get(int(q), int(q)) for q in targets], dtype=np.int64), swaps

    def _block(self, state: DistributedState, qubits: np.ndarray, fixed: list[int]
               ) -> tuple[np.ndarray, list[int]]:
        """``(rows, kept)``: the rows of a gate on ``qubits`` whose bits at the argument
        positions ``fixed`` (global qubits) spell the rank's, and the other positions."""
        value = sum(self._bit(state, int(qubits[j])) << j for j in fixed)
        mask = sum(1 << j for j in fixed)
        rows = np.flatnonzero((np.arange(1 << qubits.size) & mask) == value)
        return rows, [j for j in range(qubits.size) if j not in fixed]

    def _undo(self, state: DistributedState, swaps: list[tuple[int, int]]) -> None:
        for a, b in reversed(swaps):
            self._swap(state, a, b)

    def _on_whole(self, state: DistributedState, operation: Callable[[KernelSet, Any], None]
                  ) -> None:
        """Run ``operation(kernels, whole state)`` on the gathered state; keep this rank's
        slice of the result."""
        with self._whole(state) as (kernels, whole):
            operation(kernels, whole)
            result = kernels.to_host(whole)
        size = 1 << self._local_qubits(state)
        self._kernels(state).copy_from_host(state.local,
                                            result[self.rank * size:(self.rank + 1) * size])

    def _with_global_controls(self, state: DistributedState, controls: np.ndarray,
                              control_state: int) -> tuple[np.ndarray, int] | None:
        """The local controls and their state once the global ones are read from the rank,
        or None when the rank's bits do not satisfy them."""
        local = self._local_qubits(state)
        kept, kept_state = [], 0
        for j, qubit in enumerate(int(q) for q in controls):
            wanted = (control_state >> j) & 1
            if qubit >= local:
                if self._bit(state, qubit) != wanted:
                    return None
            else:
                kept_state |= wanted << len(kept)
                kept.append(qubit)
        return np.array(kept, dtype=np.int64), kept_state

    # --- streams, states and markers -------------------------------------------------------

    def side_by_side_runs(self, num_qubits: int) -> int:
        """1: every rank takes part in each run's exchanges, in the same order."""
        return 1

    def one_thread(self) -> AbstractContextManager[None]:
        """Nothing to change: runs go one after another (:meth:`side_by_side_runs`)."""
        return nullcontext()

    def new_stream(self) -> Exchanges:
        """A run's stream: it counts its states' exchanges, and holds the stream of the
        rank's kernel set that its slices run on."""
        return Exchanges(local=self._local_kernels(self.global_qubits).new_stream())

    def stream_metadata(self, stream: Exchanges) -> dict[str, Any]:
        """The ranks, the global qubits, the index-bit swaps of the run (the most any rank
        took part in: a rank that a gate's global controls exclude skips its swaps) and the
        bytes all ranks sent together; the same on every rank."""
        counts = self.comm.allgather((stream.swaps, stream.bytes_sent))
        return {"distributed": {"ranks": self.ranks, "global_qubits": self.global_qubits,
                                "swaps": max(swaps for swaps, _ in counts),
                                "bytes_exchanged": sum(sent for _, sent in counts)}}

    def allocate(self, num_qubits: int, dtype: np.dtype, stream: Exchanges | None = None
                 ) -> DistributedState:
        """|0...0>: amplitude 1 on rank 0."""
        stream = stream or self.new_stream()
        local = num_qubits - self.global_qubits
        state = DistributedState(self._local_kernels(local).allocate(local, dtype, stream.local),
                                 num_qubits, stream)
        if self.rank != 0:
            self._scale(state, 0)
        return state

    def from_host(self, amplitudes: np.ndarray, stream: Exchanges | None = None
                  ) -> DistributedState:
        """This rank's slice of ``amplitudes`` (every rank passes the whole vector)."""
        stream = stream or self.new_stream()
        num_qubits = amplitudes.size.bit_length() - 1
        size = amplitudes.size >> self.global_qubits
        kernels = self._local_kernels(num_qubits - self.global_qubits)
        return DistributedState(
            kernels.from_host(amplitudes[self.rank * size:(self.rank + 1) * size], stream.local),
            num_qubits, stream)

    def to_host(self, state: DistributedState) -> np.ndarray:
        """The whole state, gathered on every rank."""
        mine = np.ascontiguousarray(self._amplitudes(state))
        whole = np.empty(mine.size * self.ranks, dtype=mine.dtype)
        self.comm.Allgather(mine, whole)
        return whole

    def reset_all(self, state: DistributedState) -> None:
        self._kernels(state).reset_all(state.local)
        if self.rank != 0:
            self._scale(state, 0)

    def clone(self, state: DistributedState) -> DistributedState:
        return DistributedState(self._kernels(state).clone(state.local), state.num_qubits,
                                state.stream)

    def copy_into(self, destination: DistributedState, source: DistributedState) -> None:
        self._kernels(destination).copy_into(destination.local, source.local)

    def copy_from_host(self, state: DistributedState, amplitudes: np.ndarray) -> None:
        """Overwrite the state with this rank's slice of ``amplitudes`` (the whole vector)."""
        size = 1 << self._local_qubits(state)
        self._kernels(state).copy_from_host(
            state.local, amplitudes[self.rank * size:(self.rank + 1) * size])

    def record_marker(self, state: DistributedState) -> Marker:
        return self._kernels(state).record_marker(state.local)

    def synchronize(self, state: DistributedState) -> None:
        self._kernels(state).synchronize(state.local)

    def release(self, state: DistributedState) -> None:
        if state.local is not None:
            self._kernels(state).release(state.local)
            state.local = None

    # --- unitary operations ----------------------------------------------------------------

    def _dense(self, state: DistributedState, targets: np.ndarray, touched: np.ndarray,
               apply: Callable[[KernelSet, np.ndarray, np.ndarray], None]) -> None:
        """``apply(kernels, amplitudes, targets)`` with the targets on local qubits: on the
        slice, wrapped in swaps where targets are global, or on the whole state."""
        if not self._fits(state, targets, touched):
            self._on_whole(state, lambda kernels, whole: apply(kernels, whole, targets))
            return
        moved, swaps = self._localised(state, targets, touched)
        apply(self._kernels(state), state.local, moved)
        self._undo(state, swaps)

    def apply_matrix(self, state: DistributedState, qubits: np.ndarray,
                     matrix: np.ndarray) -> None:
        """On global qubits the matrix does not mix (:func:`~.layout.unmixed_bits`), the
        rank's bits pick its block; other global qubits are swapped in. (Where the slice is
        too narrow, the whole state takes the whole matrix.)"""
        local = self._local_qubits(state)
        if int(qubits.max()) >= local and self._fits(state, qubits, qubits):
            fixed = [j for j in unmixed_bits(matrix) if qubits[j] >= local]
            if fixed:
                rows, kept = self._block(state, qubits, fixed)
                matrix = np.ascontiguousarray(matrix[np.ix_(rows, rows)])
                qubits = qubits[kept]
                if not kept:
                    self._scale(state, matrix[0, 0])
                    return
        self._dense(state, qubits, qubits,
                    lambda kernels, amplitudes, moved: kernels.apply_matrix(amplitudes, moved,
                                                                            matrix))

    def apply_controlled_matrix(self, state: DistributedState, controls: np.ndarray,
                                control_state: int, targets: np.ndarray,
                                matrix: np.ndarray) -> None:
        local_controls = controls[controls < self._local_qubits(state)]
        if not self._fits(state, targets, np.concatenate((local_controls, targets))):
            self._on_whole(state, lambda kernels, whole: kernels.apply_controlled_matrix(
                whole, controls, control_state, targets, matrix))
            return
        kept = self._with_global_controls(state, controls, control_state)
        if kept is None:  # so is it on the swap partners: they differ in a target's bit only
            return
        local_controls, local_state = kept
        moved, swaps = self._localised(state, targets, np.concatenate((local_controls,
                                                                       targets)))
        self._kernels(state).apply_controlled_matrix(state.local, local_controls, local_state,
                                                     moved, matrix)
        self._undo(state, swaps)

    def apply_tile_pass(self, state: DistributedState, tile_pass: TilePass) -> None:
        """Apply a tile pass whose tile holds local qubits only (the planner plans no other
        for a spread state) on the slice, its conditions and diagonals on global qubits
        decided by the rank (:func:`~gpuprovider.kernels.tiles.for_slice`)."""
        local = self._local_qubits(state)
        if int(tile_pass.tile_qubits.max(initial=0)) >= local:
            raise ValueError(f"a tile pass on qubits {tile_pass.tile_qubits.tolist()} cannot "
                             f"run on a slice of {local} local qubits")
        key = (id(tile_pass), local)
        cached = self._slices.get(key)
        if cached is None or cached[0] is not tile_pass:
            if len(self._slices) >= SLICE_CACHE_PASSES:
                self._slices.clear()
            cached = self._slices[key] = (tile_pass, for_slice(tile_pass, local, self.rank))
        self._kernels(state).apply_tile_pass(state.local, cached[1])

    def apply_permutation(self, state: DistributedState, qubits: np.ndarray,
                          permutation: np.ndarray, phases: np.ndarray) -> None:
        local = self._local_qubits(state)
        if qubits.size == 2 and max(qubits) >= local and \
                np.array_equal(permutation, SWAP_PERMUTATION) and np.all(phases == 1):
            self._swap(state, int(qubits[0]), int(qubits[1]))
            return
        fixed = [j for j in kept_bits(permutation) if qubits[j] >= local] \
            if self._fits(state, qubits, qubits) else []  # else the whole state runs it all
        if fixed:  # those global qubits read the rank's bits, like controls
            rows, kept = self._block(state, qubits, fixed)
            permutation = _compressed(permutation[rows], kept)
            phases = np.ascontiguousarray(phases[rows])
            qubits = qubits[kept]
            if not kept:
                self._scale(state, phases[0])
                return
        self._dense(state, qubits, qubits,
                    lambda kernels, amplitudes, moved: kernels.apply_permutation(
                        amplitudes, moved, permutation, phases))

    def prepare_qubits(self, state: DistributedState, qubits: np.ndarray,
                       amplitudes: np.ndarray) -> None:
        self._dense(state, qubits, qubits,
                    lambda kernels, values, moved: kernels.prepare_qubits(values, moved,
                                                                          amplitudes))

    def apply_diagonal(self, state: DistributedState, qubits: np.ndarray,
                       diagonal: np.ndarray) -> None:
        """The part of ``diagonal`` the rank's global bits select, on the slice."""
        local = self._local_qubits(state)
        fixed = 0
        kept = []
        for j, qubit in enumerate(int(q) for q in qubits):
            if qubit >= local:
                fixed |= self._bit(state, qubit) << j
            else:
                kept.append(j)
        if len(kept) == qubits.size:
            self._kernels(state).apply_diagonal(state.local, qubits, diagonal)
            return
        rows = np.arange(1 << len(kept), dtype=np.int64)
        index = np.full_like(rows, fixed)
        for position, j in enumerate(kept):
            index |= ((rows >> position) & 1) << j
        part = np.ascontiguousarray(diagonal[index])
        if not kept:
            self._scale(state, part[0])
            return
        self._kernels(state).apply_diagonal(state.local, qubits[kept], part)

    # --- measurement and read-out ----------------------------------------------------------

    def probability_of_one(self, state: DistributedState, qubit: int) -> float:
        if qubit < self._local_qubits(state):
            mine = self._kernels(state).probability_of_one(state.local, qubit)
        else:
            mine = self._norm(state) if self._bit(state, qubit) else 0.0
        return float(self._sum(mine))

    def _norm(self, state: DistributedState) -> float:
        """The slice's squared norm."""
        return float(np.sum(self._kernels(state).marginal_probabilities(
            state.local, np.zeros(1, dtype=np.int64))))

    def project(self, state: DistributedState, qubit: int, outcome: int, probability: float,
                to_zero: bool = False) -> None:
        local = self._local_qubits(state)
        if qubit < local:
            self._kernels(state).project(state.local, qubit, outcome, probability, to_zero)
            return
        self._scale(state, 1.0 / np.sqrt(probability)
                    if self._bit(state, qubit) == outcome else 0.0)
        if to_zero and outcome == 1:  # the kept slices move to the ranks with the bit clear
            amplitudes = self._amplitudes(state)
            self._sendrecv(amplitudes.reshape(1, -1), self.rank ^ (1 << (qubit - local)),
                           state.stream)
            self._store(state, amplitudes)

    def sample(self, state: DistributedState, uniforms: np.ndarray) -> np.ndarray:
        """Sorted basis indices: each rank samples the targets that fall in its share of the
        total probability, and every rank gets all of them."""
        totals = np.array(self.comm.allgather(self._norm(state)), dtype=np.float64)
        starts = np.concatenate(([0.0], np.cumsum(totals)))
        targets = np.sort(uniforms) * starts[-1]
        last = int(np.flatnonzero(totals > 0).max(initial=self.ranks - 1))
        owners = np.minimum(np.searchsorted(starts[1:], targets, side="right"), last)
        mine = targets[owners == self.rank]
        found = np.zeros(0, dtype=np.int64)
        if mine.size:
            scaled = np.clip((mine - starts[self.rank]) / totals[self.rank], 0.0,
                             np.nextafter(1.0, 0.0))
            found = self._kernels(state).sample(state.local, scaled).astype(np.int64)
            found += self.rank << self._local_qubits(state)
        return np.concatenate(self.comm.allgather(found))

    def probabilities(self, state: DistributedState) -> np.ndarray:
        return np.abs(self.to_host(state)) ** 2

    def marginal_probabilities(self, state: DistributedState, qubits: np.ndarray
                               ) -> np.ndarray:
        local = self._local_qubits(state)
        kept = [j for j, q in enumerate(qubits) if q < local]
        fixed = 0
        for j, qubit in enumerate(int(q) for q in qubits):
            if qubit >= local:
                fixed |= self._bit(state, qubit) << j
        if kept:
            part = np.asarray(self._kernels(state).marginal_probabilities(
                state.local, np.ascontiguousarray(qubits[kept])), dtype=np.float64)
        else:
            part = np.array([self._norm(state)])
        rows = np.arange(part.size, dtype=np.int64)
        index = np.full_like(rows, fixed)
        for position, j in enumerate(kept):
            index |= ((rows >> position) & 1) << j
        mine = np.zeros(1 << qubits.size, dtype=np.float64)
        mine[index] = part
        return self._sum(mine)

    def expectation_pauli(self, state: DistributedState, x_mask: int, z_mask: int) -> complex:
        return complex(self.expectation_paulis(state, x_mask, np.array([z_mask]))[0])

    def expectation_paulis(self, state: DistributedState, x_mask: int, z_masks: np.ndarray
                           ) -> np.ndarray:
        z_masks = np.asarray(z_masks, dtype=np.int64)
        return self.expectation_pauli_groups(state, np.array([x_mask], dtype=np.int64),
                                             np.array([0, z_masks.size], dtype=np.int64),
                                             z_masks)

    def expectation_pauli_groups(self, state: DistributedState, x_masks: np.ndarray,
                                 term_starts: np.ndarray, z_masks: np.ndarray) -> np.ndarray:
        """Each group's terms on the slice: Z on a global qubit is the rank's sign; X on a
        global qubit is first swapped onto a local qubit the group's X-mask leaves free."""
        x_masks = np.asarray(x_masks, dtype=np.int64)
        term_starts = np.asarray(term_starts, dtype=np.int64)
        z_masks = np.asarray(z_masks, dtype=np.int64)
        pauli_groups_layout(x_masks, term_starts, z_masks, state.num_qubits)  # checks masks
        local = self._local_qubits(state)
        local_mask = (1 << local) - 1
        kernels = self._kernels(state)
        mine = np.zeros(z_masks.size, dtype=np.float64)
        for g, x in enumerate(int(m) for m in x_masks):
            t0, t1 = int(term_starts[g]), int(term_starts[g + 1])
            if t0 == t1:
                continue
            zs = [int(z) for z in z_masks[t0:t1]]
            bits = np.flatnonzero([(x >> q) & 1 for q in range(state.num_qubits)])
            if not self._fits(state, bits, bits):  # on the whole state, counted on rank 0
                with self._whole(state) as (whole_kernels, whole):
                    values = whole_kernels.expectation_paulis(whole, x, z_masks[t0:t1])
                mine[t0:t1] = np.asarray(values, dtype=np.float64) if self.rank == 0 else 0.0
                continue
            wanted, free = self._free(state, bits, bits)
            swaps = list(zip(wanted, free))
            for a, b in swaps:
                self._swap(state, a, b)
                x, zs = _swapped_bits(x, a, b), [_swapped_bits(z, a, b) for z in zs]
            signs = np.array([1.0 - 2.0 * (bin((z >> local) & self.rank).count("1") & 1)
                              for z in zs])
            values = kernels.expectation_paulis(state.local, x & local_mask,
                                                np.array([z & local_mask for z in zs],
                                                         dtype=np.int64))
            mine[t0:t1] = signs * np.asarray(values, dtype=np.float64)
            self._undo(state, swaps)
        return self._sum(mine)


def _compressed(indices: np.ndarray, positions: list[int]) -> np.ndarray:
    """``indices`` spelled by their bits at ``positions`` only (bit ``p`` of the result is
    bit ``positions[p]``)."""
    out = np.zeros(indices.size, dtype=np.int64)
    for p, position in enumerate(positions):
        out |= ((indices >> position) & 1) << p
    return out


def _swapped_bits(mask: int, a: int, b: int) -> int:
    """``mask`` with its bits ``a`` and ``b`` exchanged."""
    if ((mask >> a) ^ (mask >> b)) & 1:
        mask ^= (1 << a) | (1 << b)
    return mask
