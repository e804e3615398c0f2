"""The benchmark suite on the GPU: gpuprovider beside NVIDIA cuStateVec, same circuits.

1. the device-to-device copy bandwidth (CuPy), the ceiling of every state pass;
2. correctness before timing: at --check-qubits, each family's final state from cuStateVec
   and from gpuprovider on the GPU, both precisions, against
   qiskit.quantum_info.Statevector; gpuprovider off aborts the script (exit 1), cuStateVec off
   leaves it out of the timing;
3. each family (``gpuprovider.benchsuite``: GHZ, QFT, quantum volume, random) at each size
   and precision: gpuprovider's ``run(circuit, shots=1000).result()`` (wall time and the
   result's ``simulation_time``, which includes the state's allocation and the sampling) and
   cuStateVec applying the same gate list (one ``custatevecApplyMatrix`` per gate, matrices
   already on the device, timed with CUDA events), each the median of --repeats after a
   warm-up. ``cuSV/ours`` is cuStateVec's time over our simulation_time: above 1, ours is
   faster.

    python3 benchmarks/gpu_suite.py --json /tmp/gpu_suite.json
    python3 benchmarks/gpu_suite.py --dry-run --qubits 4,6   # no GPU: circuits and gate lists

cuStateVec comes from the wheel custatevec-cu13 (``cuquantum/lib/libcustatevec.so.1``, found
on sys.path, or CUSTATEVEC_LIB); it needs libcublas.so.13 (the nvidia-cublas wheel's, loaded
first where found). Without it, or without CuPy, the script says why and times ours alone.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

from gpuprovider import benchsuite

SHOTS = 1000
TOLERANCE = {"double": 1e-10, "single": 1e-5}
"""Largest |amplitude - Statevector's| accepted in the correctness step."""
HEADROOM = 2**30
"""Device bytes kept free beside a state."""
DTYPES = {"double": np.dtype(np.complex128), "single": np.dtype(np.complex64)}

# From custatevec.h (1.15) and CUDA's library_types.h.
CUDA_C_32F, CUDA_C_64F = 4, 5
CUSTATEVEC_MATRIX_LAYOUT_ROW = 1
CUSTATEVEC_COMPUTE_32F, CUSTATEVEC_COMPUTE_64F = 1 << 2, 1 << 4
CUSTATEVEC_TYPES = {"double": (CUDA_C_64F, CUSTATEVEC_COMPUTE_64F),
                    "single": (CUDA_C_32F, CUSTATEVEC_COMPUTE_32F)}
LIBRARY = "cuquantum/lib/libcustatevec.so.1"
CUBLAS = ("libcublasLt.so.13", "libcublas.so.13")
CUBLAS_DIRS = ("nvidia/cu13/lib", "nvidia/cublas/lib")


# --- the gate list as cuStateVec takes it (CPU only, tested) -----------------------------------


def gate_arrays(circuit: Any, precision: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(matrix, targets)`` per gate of ``circuit``: a C-contiguous (row-major) matrix in
    ``precision`` and int32 target bits in qiskit's argument order, which is cuStateVec's
    order too (``targets[0]`` is bit 0 of the matrix index)."""
    return [(np.ascontiguousarray(gate.matrix, dtype=DTYPES[precision]),
             np.array(gate.qubits, dtype=np.int32)) for gate in benchsuite.gate_list(circuit)]


def reference_apply(state: np.ndarray, matrix: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``custatevecApplyMatrix``'s effect computed with NumPy: bit ``j`` of the row-major
    ``matrix``'s index is bit ``targets[j]`` of the state's index."""
    num_qubits, k = state.size.bit_length() - 1, len(targets)
    # Axis i of the reshaped state is bit n-1-i; the matrix's first row axis is its top bit.
    axes = [num_qubits - 1 - int(t) for t in reversed(targets)]
    tensor = matrix.reshape([2] * (2 * k))
    moved = np.tensordot(tensor, state.reshape([2] * num_qubits),
                         axes=(list(range(k, 2 * k)), axes))
    return np.moveaxis(moved, list(range(k)), axes).reshape(-1)


def reference_state(circuit: Any) -> np.ndarray:
    """The final state of ``circuit`` through :func:`reference_apply`, from |0...0>."""
    state = np.zeros(1 << circuit.num_qubits, dtype=np.complex128)
    state[0] = 1
    for matrix, targets in gate_arrays(circuit, "double"):
        state = reference_apply(state, matrix, targets)
    return state


def statevector(circuit: Any) -> np.ndarray:
    """qiskit.quantum_info.Statevector of ``circuit`` without its final measurements."""
    from qiskit.quantum_info import Statevector

    return Statevector(circuit.remove_final_measurements(inplace=False)).data


# --- cuStateVec through ctypes -------------------------------------------------------------------


def find_library() -> Path | None:
    """libcustatevec.so.1: CUSTATEVEC_LIB, else the wheel's copy under a sys.path entry."""
    if os.environ.get("CUSTATEVEC_LIB"):
        return Path(os.environ["CUSTATEVEC_LIB"])
    for entry in sys.path:
        candidate = Path(entry or ".") / LIBRARY
        if candidate.is_file():
            return candidate
    return None


def preload_cublas() -> None:
    """Load the nvidia-cublas wheel's libraries globally: the cuStateVec wheel looks for them
    next to itself (its RUNPATH), which fails when it is installed to another folder."""
    for entry in sys.path:
        for folder in CUBLAS_DIRS:
            paths = [Path(entry or ".") / folder / name for name in CUBLAS]
            if all(path.is_file() for path in paths):
                for path in paths:
                    ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
                return


class CuStateVec:
    """A cuStateVec handle and the three calls the suite makes, on CUDA's default stream."""

    def __init__(self, path: Path) -> None:
        preload_cublas()
        self.lib = ctypes.CDLL(str(path))
        pointer, u32, i32 = ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int32
        self.lib.custatevecCreate.argtypes = [ctypes.POINTER(pointer)]
        self.lib.custatevecDestroy.argtypes = [pointer]
        self.lib.custatevecGetErrorName.argtypes = [ctypes.c_int]
        self.lib.custatevecGetErrorName.restype = ctypes.c_char_p
        self.lib.custatevecApplyMatrixGetWorkspaceSize.argtypes = [
            pointer, ctypes.c_int, u32, pointer, ctypes.c_int, ctypes.c_int, i32, u32, u32,
            ctypes.c_int, ctypes.POINTER(ctypes.c_size_t)]
        self.lib.custatevecApplyMatrix.argtypes = [
            pointer, pointer, ctypes.c_int, u32, pointer, ctypes.c_int, ctypes.c_int, i32,
            pointer, u32, pointer, pointer, u32, ctypes.c_int, pointer, ctypes.c_size_t]
        for function in ("custatevecCreate", "custatevecDestroy", "custatevecApplyMatrix",
                         "custatevecApplyMatrixGetWorkspaceSize"):
            getattr(self.lib, function).restype = ctypes.c_int
        self.handle = pointer()
        self.check(self.lib.custatevecCreate(ctypes.byref(self.handle)), "custatevecCreate")

    def check(self, status: int, call: str) -> None:
        if status != 0:
            name = self.lib.custatevecGetErrorName(status).decode()
            raise RuntimeError(f"{call} returned {status} ({name})")

    def workspace_size(self, precision: str, num_qubits: int, matrix_ptr: int,
                       num_targets: int) -> int:
        """Extra device bytes ``custatevecApplyMatrix`` needs for ``num_targets`` targets."""
        data_type, compute = CUSTATEVEC_TYPES[precision]
        size = ctypes.c_size_t()
        self.check(self.lib.custatevecApplyMatrixGetWorkspaceSize(
            self.handle, data_type, num_qubits, matrix_ptr, data_type,
            CUSTATEVEC_MATRIX_LAYOUT_ROW, 0, num_targets, 0, compute, ctypes.byref(size)),
            "custatevecApplyMatrixGetWorkspaceSize")
        return size.value

    def apply(self, state_ptr: int, precision: str, num_qubits: int, matrix_ptr: int,
              targets: np.ndarray, workspace: tuple[int, int]) -> None:
        """Apply one row-major matrix in ``precision`` (device or host pointer) to ``targets``
        (a host int32 array) of the state, with no controls."""
        data_type, compute = CUSTATEVEC_TYPES[precision]
        self.check(self.lib.custatevecApplyMatrix(
            self.handle, state_ptr, data_type, num_qubits, matrix_ptr, data_type,
            CUSTATEVEC_MATRIX_LAYOUT_ROW, 0, targets.ctypes.data, len(targets), None, None, 0,
            compute, workspace[0] or None, workspace[1]), "custatevecApplyMatrix")

    def close(self) -> None:
        self.lib.custatevecDestroy(self.handle)


class CuStateVecCircuit:
    """One circuit ready for cuStateVec: its matrices on the device, the workspace they need,
    and a state to run it on."""

    def __init__(self, cusv: CuStateVec, circuit: Any, precision: str) -> None:
        import cupy

        self.cusv, self.precision, self.num_qubits = cusv, precision, circuit.num_qubits
        self.gates = [(cupy.asarray(matrix), targets)
                      for matrix, targets in gate_arrays(circuit, precision)]
        sizes = {len(t): cusv.workspace_size(precision, self.num_qubits, m.data.ptr, len(t))
                 for m, t in self.gates}
        extra = max(sizes.values(), default=0)
        self.workspace_buffer = cupy.empty(extra, dtype=np.uint8) if extra else None
        self.workspace = (self.workspace_buffer.data.ptr if extra else 0, extra)
        self.state = cupy.zeros(1 << self.num_qubits, dtype=DTYPES[precision])

    def reset(self) -> None:
        self.state.fill(0)
        self.state[0] = 1

    def apply_all(self) -> None:
        for matrix, targets in self.gates:
            self.cusv.apply(self.state.data.ptr, self.precision, self.num_qubits,
                            matrix.data.ptr, targets, self.workspace)

    def final_state(self) -> np.ndarray:
        self.reset()
        self.apply_all()
        return self.state.get()

    def release(self) -> None:
        import cupy

        self.state = self.gates = self.workspace_buffer = None
        cupy.get_default_memory_pool().free_all_blocks()


def event_seconds(action: Callable[[], None]) -> float:
    """Seconds ``action`` takes on CUDA's default stream, by CUDA events."""
    import cupy

    start, stop = cupy.cuda.Event(), cupy.cuda.Event()
    start.record()
    action()
    stop.record()
    stop.synchronize()
    return cupy.cuda.get_elapsed_time(start, stop) / 1e3


def time_custatevec(prepared: CuStateVecCircuit, repeats: int) -> list[float]:
    """Seconds of each of ``repeats`` runs of the gate list from |0...0>, after a warm-up;
    the state's reset is not timed."""
    times = []
    for index in range(repeats + 1):
        prepared.reset()
        seconds = event_seconds(prepared.apply_all)
        if index:
            times.append(seconds)
    return times


def load_custatevec() -> tuple[CuStateVec | None, str | None]:
    """A cuStateVec handle, or None and why there is none."""
    try:
        import cupy  # noqa: F401
    except ImportError as exc:
        return None, f"CuPy is not importable ({exc})"
    path = find_library()
    if path is None:
        return None, (f"{LIBRARY} not found on sys.path (install the wheel custatevec-cu13"
                      "==1.15.0, or set CUSTATEVEC_LIB)")
    try:
        return CuStateVec(path), None
    except (OSError, RuntimeError) as exc:
        return None, f"cannot load {path}: {exc}"


# --- gpuprovider on the GPU ---------------------------------------------------------------------


def ours_state(circuit: Any, precision: str) -> np.ndarray:
    """gpuprovider's final state of ``circuit`` (measurements dropped) on the GPU."""
    from gpuprovider import GPUSimulator, SaveStatevector

    bare = circuit.remove_final_measurements(inplace=False)
    bare.append(SaveStatevector(bare.num_qubits), bare.qubits)
    backend = GPUSimulator(device="GPU", precision=precision)
    return np.asarray(backend.run(bare, shots=1, seed_simulator=1).result().get_statevector())


def time_ours(circuit: Any, precision: str, repeats: int) -> dict[str, float]:
    """Median wall and simulation seconds of ``run(shots=1000).result()`` after a warm-up."""
    from gpuprovider import GPUSimulator

    backend = GPUSimulator(device="GPU", precision=precision)
    backend.run(circuit, shots=SHOTS, seed_simulator=1).result()
    walls, simulations = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        result = backend.run(circuit, shots=SHOTS, seed_simulator=1).result()
        walls.append(time.perf_counter() - start)
        simulations.append(result.metadata["simulation_time"])
    return {"wall": median(walls), "simulation": median(simulations)}


# --- the steps ----------------------------------------------------------------------------------


def copy_bandwidth(num_qubits: int, repeats: int) -> dict[str, Any]:
    """Device-to-device copy of a complex128 state by CuPy: 2 * bytes / median seconds."""
    import cupy

    source = cupy.ones(1 << num_qubits, dtype=np.complex128)
    target = cupy.empty_like(source)
    cupy.copyto(target, source)
    seconds = median(event_seconds(lambda: cupy.copyto(target, source)) for _ in range(repeats))
    source = target = None
    cupy.get_default_memory_pool().free_all_blocks()
    nbytes = 16 << num_qubits
    return {"num_qubits": num_qubits, "bytes": nbytes, "seconds": seconds,
            "bandwidth": 2 * nbytes / seconds}


def check_states(families: list[str], num_qubits: int, cusv: CuStateVec | None,
                 ours: bool = True) -> list[dict[str, Any]]:
    """Max |amplitude error| against Statevector of each family's final state in both
    precisions: cuStateVec's (when loaded) and gpuprovider's on the GPU (when ``ours``)."""
    checks = []
    for family in families:
        circuit = benchsuite.FAMILIES[family](num_qubits)
        expected = statevector(circuit)
        engines: list[tuple[str, str, Callable[[], np.ndarray]]] = []
        for precision in DTYPES:
            if ours:
                engines.append(("gpuprovider", precision,
                                lambda c=circuit, p=precision: ours_state(c, p)))
            if cusv is not None:
                engines.append(("custatevec", precision,
                                lambda c=circuit, p=precision: _custatevec_state(cusv, c, p)))
        for engine, precision, final_state in engines:
            error = float(np.max(np.abs(final_state() - expected)))
            checks.append({"family": family, "engine": engine, "precision": precision,
                           "num_qubits": num_qubits, "error": error,
                           "ok": error <= TOLERANCE[precision]})
    return checks


def _custatevec_state(cusv: CuStateVec, circuit: Any, precision: str) -> np.ndarray:
    prepared = CuStateVecCircuit(cusv, circuit, precision)
    state = prepared.final_state()
    prepared.release()
    return state


def free_device_bytes() -> int:
    import cupy

    return int(cupy.cuda.runtime.memGetInfo()[0])


class Budget:
    """Skips a run estimated (from the size before) to exceed ``per_run`` seconds, and every
    run once ``total`` seconds have passed."""

    def __init__(self, per_run: float, total: float) -> None:
        self.per_run, self.deadline = per_run, time.monotonic() + total
        self.last: dict[tuple[str, str, str], tuple[float, int, int]] = {}

    def skip(self, key: tuple[str, str, str], num_qubits: int, num_gates: int) -> str | None:
        if time.monotonic() > self.deadline:
            return "time budget spent"
        if key in self.last:
            seconds, qubits, gates = self.last[key]
            estimate = benchsuite.estimate_seconds(seconds, (qubits, gates),
                                                   (num_qubits, num_gates))
            if estimate > self.per_run:
                return f"estimated {estimate:.0f} s a run > {self.per_run:g} s"
        return None

    def record(self, key: tuple[str, str, str], seconds: float, num_qubits: int,
               num_gates: int) -> None:
        self.last[key] = (seconds, num_qubits, num_gates)


def time_case(family: str, num_qubits: int, precision: str, args: argparse.Namespace,
              cusv: CuStateVec | None, budget: Budget) -> dict[str, Any]:
    """One row: ours and cuStateVec on one circuit in one precision (or why not)."""
    circuit = benchsuite.FAMILIES[family](num_qubits)
    gates = len(benchsuite.gate_list(circuit))
    row: dict[str, Any] = {"family": family, "num_qubits": num_qubits, "precision": precision,
                           "num_gates": gates, "ours": None, "custatevec": None, "skipped": []}
    reason = budget.skip((family, precision, "ours"), num_qubits, gates)
    if reason is None:
        try:
            row["ours"] = time_ours(circuit, precision, args.repeats)
            budget.record((family, precision, "ours"), row["ours"]["wall"], num_qubits, gates)
        except Exception as exc:  # noqa: BLE001 (e.g. too big for memory: say so, go on)
            reason = f"{type(exc).__name__}: {exc}"
    if reason:
        row["skipped"].append(f"ours: {reason}")
    if cusv is None:
        return row
    nbytes = DTYPES[precision].itemsize << num_qubits
    reason = budget.skip((family, precision, "custatevec"), num_qubits, gates)
    if reason is None and nbytes + HEADROOM > free_device_bytes():
        free = free_device_bytes() / 2**30
        reason = f"{nbytes / 2**30:.0f} GiB do not fit in {free:.0f} GiB free"
    if reason is None:
        prepared = CuStateVecCircuit(cusv, circuit, precision)
        row["custatevec"] = median(time_custatevec(prepared, args.repeats))
        prepared.release()
        budget.record((family, precision, "custatevec"), row["custatevec"], num_qubits, gates)
    else:
        row["skipped"].append(f"cuStateVec: {reason}")
    return row


# --- report -------------------------------------------------------------------------------------


def table(rows: list[dict[str, Any]]) -> list[str]:
    """Per circuit and precision: ours (wall, simulation), cuStateVec, and the ratio."""
    header = (f"{'family':<8}{'qubits':>7} {'precision':<10}{'gates':>6}{'ours wall s':>13}"
              f"{'ours sim s':>12}{'cuSV s':>10}{'cuSV/ours':>11}")
    lines = [header, "-" * len(header)]
    for row in rows:
        ours, cusv = row["ours"], row["custatevec"]
        cells = [f"{ours['wall']:>13.4f}{ours['simulation']:>12.4f}" if ours else f"{'-':>25}",
                 f"{cusv:>10.4f}" if cusv is not None else f"{'-':>10}",
                 f"{cusv / ours['simulation']:>10.2f}x" if ours and cusv else f"{'-':>11}"]
        lines.append(f"{row['family']:<8}{row['num_qubits']:>7} {row['precision']:<10}"
                     f"{row['num_gates']:>6}" + "".join(cells))
    return lines


def report(figures: dict[str, Any]) -> str:
    lines = []
    copy = figures.get("copy")
    if copy:
        lines.append(f"copy: 2^{copy['num_qubits']} complex128 device to device, "
                     f"{copy['bandwidth'] / 1e9:.0f} GB/s (read + write)")
    checks = figures["checks"]
    lines.append(f"correctness: {sum(c['ok'] for c in checks)}/{len(checks)} final states "
                 f"agree with Statevector")
    lines += ["", (f"run().result() with {SHOTS} shots (ours) and the gate list through "
                   "custatevecApplyMatrix (cuSV), median seconds; cuSV/ours > 1: ours is faster"),
              *table(figures["rows"])]
    lines += [f"skipped: {row['family']} n={row['num_qubits']} {row['precision']}: {reason}"
              for row in figures["rows"] for reason in row["skipped"]]
    lines += [f"note: {note}" for note in figures["notes"]]
    return "\n".join(lines)


# --- main -----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The options; qubit lists as ``gpuprovider bench`` takes them."""
    parser = argparse.ArgumentParser(prog="gpu_suite.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default=",".join(benchsuite.FAMILIES),
                        help="comma-separated (default: all)")
    parser.add_argument("--qubits", default="24-32:2", help="sizes, e.g. 24-32:2 or 24,28")
    parser.add_argument("--precisions", default="double,single")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per median")
    parser.add_argument("--check-qubits", type=int, default=10,
                        help="size of the correctness step")
    parser.add_argument("--copy-qubits", type=int, default=28)
    parser.add_argument("--run-budget-s", type=float, default=30.0,
                        help="skip a run estimated to take longer")
    parser.add_argument("--budget-s", type=float, default=math.inf,
                        help="start nothing new after this many seconds")
    parser.add_argument("--json", metavar="PATH", help="write every figure here")
    parser.add_argument("--dry-run", action="store_true",
                        help="no GPU: build the circuits and gate lists, check the gate lists "
                        "against Statevector on the CPU, print their sizes")
    args = parser.parse_args(argv)
    args.families = args.families.split(",")
    args.precisions = args.precisions.split(",")
    for name, values, allowed in (("--families", args.families, benchsuite.FAMILIES),
                                  ("--precisions", args.precisions, DTYPES)):
        unknown = [value for value in values if value not in allowed]
        if unknown:
            parser.error(f"{name}: {unknown[0]!r} is not one of {', '.join(allowed)}")
    try:
        args.qubits = benchsuite.parse_sizes(args.qubits)
    except ValueError as exc:
        parser.error(f"--qubits: {exc}")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def dry_run(args: argparse.Namespace) -> int:
    """Build every circuit and gate list; check the gate lists by :func:`reference_apply`."""
    failed = 0
    for family in args.families:
        small = benchsuite.FAMILIES[family](args.check_qubits)
        error = float(np.max(np.abs(reference_state(small) - statevector(small))))
        failed += error > TOLERANCE["double"]
        print(f"{family}: gate list at {args.check_qubits} qubits off Statevector by {error:.1e}")
        for n in args.qubits:
            arrays = gate_arrays(benchsuite.FAMILIES[family](n), "double")
            widths = sorted({len(targets) for _, targets in arrays})
            print(f"  n={n}: {len(arrays)} gates on {widths} qubits, state "
                  f"{(16 << n) / 2**30:.3g} GiB in double")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.dry_run:
        return dry_run(args)
    from gpuprovider import device as devices

    if not devices.GPU.usable:
        print(f"no usable GPU: {devices.GPU.report.reason}", file=sys.stderr)
        return 1
    budget = Budget(args.run_budget_s, args.budget_s)
    cusv, why = load_custatevec()
    figures: dict[str, Any] = {"rows": [], "notes": [], "copy": None}
    if cusv is None:
        figures["notes"].append(f"cuStateVec left out: {why}")
    try:
        figures["copy"] = copy_bandwidth(args.copy_qubits, 5)
    except ImportError as exc:
        figures["notes"].append(f"no copy bandwidth: CuPy is not importable ({exc})")
    print(f"correctness at {args.check_qubits} qubits ...", flush=True)
    figures["checks"] = check_states(args.families, args.check_qubits, cusv)
    failures = [check for check in figures["checks"] if not check["ok"]]
    for check in failures:
        print(f"MISMATCH {check['engine']} {check['family']} ({check['precision']}): "
              f"{check['error']:.3g} > {TOLERANCE[check['precision']]:.0e}", file=sys.stderr)
    if any(check["engine"] == "gpuprovider" for check in failures):
        print("ABORTED: gpuprovider disagrees with Statevector; nothing was timed.",
              file=sys.stderr)
        return 1
    if failures and cusv is not None:
        figures["notes"].append("cuStateVec left out: its states disagree with Statevector")
        cusv.close()
        cusv = None
    for family in args.families:
        for n in args.qubits:
            for precision in args.precisions:
                print(f"{family} n={n} {precision} ...", flush=True)
                figures["rows"].append(time_case(family, n, precision, args, cusv, budget))
    if cusv is not None:
        cusv.close()
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")
        print(f"figures written to {args.json}")
    print()
    print(report(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
