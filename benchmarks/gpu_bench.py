"""GPU benchmark of the CUDA engine (``gpuprovider.kernels.cuda``), in four steps:

1. correctness: every operation against the CPU engine on fresh random 12-qubit states and a
   random circuit, both precisions; aborts (exit 1) before timing anything if one differs;
2. the device-to-device copy bandwidth, the ceiling every kernel is compared with;
3. one pass of each kernel kind at each size, timed with CUDA events after a warm-up (median
   of --repeats), on random non-zero states: time and effective bandwidth beside the copy's.
   A call is timed as the engine makes it, host-side uploads of its small arrays included,
   which weighs on the smallest sizes only;
4. end to end (unless --skip-end-to-end): GHZ, QFT and quantum volume through
   ``GPUSimulator(device="GPU")``, 1000 shots, ``run().result()`` wall time.

It writes every figure and the machine's description to --json and prints a table last::

    python3 benchmarks/gpu_bench.py --json /tmp/gpu_bench.json

Under Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, tiny sizes only) it runs end to end
with meaningless wall-clock "times": a dry run of the script on a machine without a GPU.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from statistics import median
from typing import Any

import numba
import numpy as np
from gpuprovider import device as devices
from gpuprovider.kernels import cpu
from gpuprovider.kernels import cuda as gpu
from gpuprovider.kernels.precision import PRECISIONS, dtype_of
from numba import config as numba_config
from numba import cuda

SIMULATED = bool(numba_config.ENABLE_CUDASIM)
REPO = Path(__file__).resolve().parent.parent
DTYPES = {precision: dtype_of(precision) for precision in PRECISIONS}
TOLERANCE = {"double": 1e-12, "single": 2e-6}
"""Largest |GPU - CPU| accepted per amplitude or probability."""
SAMPLE_TOLERANCE = 1e-3
"""Largest fraction of sampled indices allowed to differ (a target on a rounding boundary)."""
HEADROOM = 2**30
"""Device bytes left free beside a state (sampling buffers, uploaded matrices)."""
SHOTS = 100_000
E2E_SHOTS = 1000
E2E_WARMUP_QUBITS = 10
HADAMARD = np.array([[1, 1], [1, -1]]) / math.sqrt(2)
Action = Callable[[gpu.CudaState], object]


# --- random inputs ---------------------------------------------------------------------------


def random_state(rng: np.random.Generator, num_qubits: int, dtype: np.dtype) -> np.ndarray:
    """A normalised random complex vector of ``2**num_qubits`` amplitudes."""
    return random_amplitudes(rng, 1 << num_qubits, dtype)


def random_amplitudes(rng: np.random.Generator, size: int, dtype: np.dtype) -> np.ndarray:
    amplitudes = rng.normal(size=size) + 1j * rng.normal(size=size)
    return (amplitudes / np.linalg.norm(amplitudes)).astype(dtype)


def random_unitary(rng: np.random.Generator, dim: int, dtype: np.dtype) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(dim, dim)) + 1j * rng.normal(size=(dim, dim)))
    return (q * (np.diag(r) / np.abs(np.diag(r)))).astype(dtype)


def random_phases(rng: np.random.Generator, size: int, dtype: np.dtype) -> np.ndarray:
    return np.exp(1j * rng.uniform(0, 2 * np.pi, size=size)).astype(dtype)


def random_qubits(rng: np.random.Generator, num_qubits: int, k: int) -> np.ndarray:
    """``k`` distinct qubits in random (argument) order."""
    return rng.choice(num_qubits, k, replace=False).astype(np.int64)


Step = tuple[str, tuple]
"""An operation of the engine by name, and its arguments after the state."""


def random_gate(rng: np.random.Generator, num_qubits: int, dtype: np.dtype) -> Step:
    """One random dense, diagonal or permutation gate on 1 to MAX_MATRIX_QUBITS qubits."""
    k = int(rng.integers(1, gpu.POLICY.max_matrix_qubits + 1))
    qubits = random_qubits(rng, num_qubits, k)
    kind = rng.integers(3)
    if kind == 0:
        return "apply_matrix", (qubits, random_unitary(rng, 1 << k, dtype))
    if kind == 1:
        return "apply_diagonal", (qubits, random_phases(rng, 1 << k, dtype))
    permutation = rng.permutation(1 << k).astype(np.int64)
    return "apply_permutation", (qubits, permutation, random_phases(rng, 1 << k, dtype))


# --- 1. correctness against the CPU engine ---------------------------------------------------


def upload(host: np.ndarray) -> gpu.CudaState:
    """A GPU state holding a copy of ``host``."""
    return gpu.from_host(host)


def state_error(host: np.ndarray, *steps: Step) -> float:
    """Apply ``steps`` to ``host`` on the CPU and to a copy on the GPU: max |difference|."""
    device_state = upload(host)
    for name, args in steps:
        getattr(gpu, name)(device_state, *args)
        getattr(cpu, name)(host, *args)
    error = float(np.max(np.abs(gpu.to_host(device_state) - host)))
    gpu.release(device_state)
    return error


def value_error(host: np.ndarray, name: str, *args: Any) -> float:
    """|GPU - CPU| of a read (``probability_of_one``, ``probabilities``) of ``host``."""
    device_state = upload(host)
    on_gpu = getattr(gpu, name)(device_state, *args)
    gpu.release(device_state)
    return float(np.max(np.abs(np.asarray(on_gpu) - getattr(cpu, name)(host, *args))))


def copies_error(source: np.ndarray, destination: np.ndarray) -> float:
    """Max |difference| from ``source`` of its GPU ``clone`` and of a ``copy_into`` over
    ``destination``."""
    on_gpu, target = upload(source), upload(destination)
    gpu.copy_into(target, on_gpu)
    clone = gpu.clone(on_gpu)
    error = max(float(np.max(np.abs(gpu.to_host(copy) - source))) for copy in (target, clone))
    for state in (on_gpu, target, clone):
        gpu.release(state)
    return error


def sample_error(host: np.ndarray, rng: np.random.Generator) -> float:
    """Fraction of shots whose sampled index differs between the engines (same uniforms).

    Give it more than ``2**SAMPLE_BLOCK_QUBITS`` amplitudes so the draws span sampling blocks.
    """
    uniforms = rng.random(10_000)
    device_state = upload(host)
    on_gpu = gpu.sample(device_state, uniforms)
    gpu.release(device_state)
    return float(np.mean(on_gpu != cpu.sample(host, uniforms)))


def with_zero_qubits(host: np.ndarray, qubits: np.ndarray) -> np.ndarray:
    """``host`` with every amplitude where one of ``qubits`` is 1 set to 0 (not normalised)."""
    mask = np.zeros(host.size, dtype=bool)
    for q in qubits:
        mask |= (np.arange(host.size) >> q) & 1 == 1
    return np.where(mask, 0, host).astype(host.dtype)


def correctness_checks(rng: np.random.Generator, n: int, dtype: np.dtype):
    """Yield ``(operation, error)`` for each operation of the engine, on fresh random states."""
    def fresh(num_qubits: int = n) -> np.ndarray:
        return random_state(rng, num_qubits, dtype)

    for k in range(1, gpu.POLICY.max_matrix_qubits + 1):
        qubits, dim = random_qubits(rng, n, k), 1 << k
        yield f"apply_matrix k={k}", state_error(
            fresh(), ("apply_matrix", (qubits, random_unitary(rng, dim, dtype))))
        permutation = rng.permutation(dim).astype(np.int64)
        yield f"apply_permutation k={k}", state_error(
            fresh(), ("apply_permutation", (qubits, permutation, random_phases(rng, dim, dtype))))
        yield f"prepare_qubits k={k}", state_error(
            with_zero_qubits(fresh(), qubits),
            ("prepare_qubits", (qubits, random_amplitudes(rng, dim, dtype))))
        if k <= 3:
            yield f"apply_diagonal k={k}", state_error(
                fresh(), ("apply_diagonal", (qubits, random_phases(rng, dim, dtype))))
    for qubit in (0, n // 2, n - 1):
        yield f"probability_of_one q={qubit}", value_error(fresh(), "probability_of_one", qubit)
    for outcome in (0, 1):
        for to_zero in (False, True):
            host, qubit = fresh(), int(rng.integers(n))
            p_one = cpu.probability_of_one(host, qubit)
            seen = p_one if outcome else 1 - p_one
            yield f"project outcome={outcome} to_zero={to_zero}", state_error(
                host, ("project", (qubit, outcome, seen, to_zero)))
    yield "probabilities", value_error(fresh(), "probabilities")
    yield "reset_all", state_error(fresh(), ("reset_all", ()))
    yield "clone, copy_into", copies_error(fresh(), fresh())
    circuit = [random_gate(rng, n, dtype) for _ in range(40)]
    yield "random circuit (40 gates)", state_error(fresh(), *circuit)
    sample_qubits = max(n, gpu.SAMPLE_BLOCK_QUBITS + 2)
    yield f"sample at {sample_qubits} qubits (fraction differing)", sample_error(
        fresh(sample_qubits), rng)


def check_correctness(num_qubits: int, seed: int) -> dict[str, Any]:
    """Run every check in both precisions; ``passed`` is False if any is out of tolerance."""
    rng = np.random.default_rng(seed)
    checks = []
    for precision, dtype in DTYPES.items():
        for operation, error in correctness_checks(rng, num_qubits, dtype):
            tolerance = SAMPLE_TOLERANCE if operation.startswith("sample") else TOLERANCE[precision]
            checks.append({"operation": operation, "precision": precision, "error": error,
                           "tolerance": tolerance, "ok": error <= tolerance})
    return {"num_qubits": num_qubits, "seed": seed, "checks": checks,
            "passed": all(check["ok"] for check in checks)}


# --- timing ------------------------------------------------------------------------------------


def timed(state: gpu.CudaState, action: Action) -> float:
    """Seconds ``action(state)`` takes on the state's stream, by CUDA events.

    The simulator has no timing events; there the wall-clock time stands in (meaningless).
    """
    if SIMULATED:
        start = time.perf_counter()
        action(state)
        return time.perf_counter() - start
    start, stop = cuda.event(timing=True), cuda.event(timing=True)
    start.record(state.stream)
    action(state)
    stop.record(state.stream)
    stop.synchronize()
    return cuda.event_elapsed_time(start, stop) / 1e3


def median_time(state: gpu.CudaState, action: Action, repeats: int) -> float:
    """Median seconds of ``repeats`` timed calls, after one untimed warm-up (JIT, first touch)."""
    action(state)
    gpu.synchronize(state)
    return median(timed(state, action) for _ in range(repeats))


def free_memory() -> float:
    """Free device bytes (infinite where the simulator or the driver cannot say)."""
    try:
        return float(cuda.current_context().get_memory_info().free)
    except Exception:  # noqa: BLE001 - a simulator without get_memory_info, a driver error
        return math.inf


def fits(nbytes: int) -> bool:
    """Whether ``nbytes`` more can be allocated with HEADROOM to spare."""
    return nbytes + HEADROOM <= free_memory()


def prepare_random(state: gpu.CudaState, rng: np.random.Generator) -> None:
    """Turn |0...0> into a random product state with no zero amplitude, five qubits a pass,
    on the device (nothing is copied from the host but the small amplitude vectors)."""
    num_qubits = state.size.bit_length() - 1
    for first in range(0, num_qubits, gpu.POLICY.max_matrix_qubits):
        last = min(num_qubits, first + gpu.POLICY.max_matrix_qubits)
        qubits = np.arange(first, last, dtype=np.int64)
        gpu.prepare_qubits(state, qubits, random_amplitudes(rng, 1 << qubits.size, state.dtype))


# --- 2. copy bandwidth ------------------------------------------------------------------------


def measure_copy(num_qubits: int, repeats: int, rng: np.random.Generator) -> dict[str, Any]:
    """Device-to-device copy of a double-precision state: 2 * bytes / median time."""
    dtype = DTYPES["double"]
    nbytes = dtype.itemsize << num_qubits
    if not fits(2 * nbytes):
        return {"num_qubits": num_qubits, "skipped": "two states do not fit in free memory"}
    source, destination = gpu.allocate(num_qubits, dtype), gpu.allocate(num_qubits, dtype)
    prepare_random(source, rng)
    gpu.synchronize(destination)
    seconds = median_time(
        source, lambda s: destination.array.copy_to_device(s.array, stream=s.stream), repeats
    )
    gpu.release(source)
    gpu.release(destination)
    return {"num_qubits": num_qubits, "precision": "double", "bytes": nbytes,
            "seconds": seconds, "bandwidth": 2 * nbytes / seconds}


# --- 3. kernels -------------------------------------------------------------------------------


def spread(num_qubits: int, k: int) -> np.ndarray:
    """``k`` qubits spread from 0 to ``num_qubits - 1`` (the lowest, the highest, between)."""
    return np.linspace(0, num_qubits - 1, k).round().astype(np.int64)


def kernel_cases(
    n: int, dtype: np.dtype, rng: np.random.Generator
) -> list[tuple[str, float, Action]]:
    """``(name, state passes moved per call, action)``: 2 for read+write kernels, 1 for a
    read-only one, 0 where bandwidth means nothing (sampling)."""
    def qubits(*values: int) -> np.ndarray:
        return np.array(values, dtype=np.int64)

    hadamard = HADAMARD.astype(dtype)
    cases: list[tuple[str, float, Action]] = [
        ("mat1 q=0", 2, lambda s: gpu.apply_matrix(s, qubits(0), hadamard)),
        ("mat1 q=n-1", 2, lambda s: gpu.apply_matrix(s, qubits(n - 1), hadamard)),
    ]
    for name, pair in (("mat2 q=0,1", qubits(0, 1)), ("mat2 q=0,n-1", qubits(0, n - 1))):
        matrix = random_unitary(rng, 4, dtype)
        cases.append((name, 2, lambda s, q=pair, m=matrix: gpu.apply_matrix(s, q, m)))
    for k in (3, 4, 5):
        group, matrix = spread(n, k), random_unitary(rng, 1 << k, dtype)
        cases.append((f"mat{k} spread", 2, lambda s, q=group, m=matrix: gpu.apply_matrix(s, q, m)))
    diagonal = random_phases(rng, 4, dtype)
    permutation, phases = rng.permutation(8).astype(np.int64), random_phases(rng, 8, dtype)
    uniforms = rng.random(SHOTS)
    cases += [
        ("diag2 q=0,n-1", 2, lambda s: gpu.apply_diagonal(s, qubits(0, n - 1), diagonal)),
        ("perm3 spread", 2, lambda s: gpu.apply_permutation(s, spread(n, 3), permutation, phases)),
        ("prob1 q=0 (read)", 1, lambda s: gpu.probability_of_one(s, 0)),
        ("sample 1e5 shots", 0, lambda s: gpu.sample(s, uniforms)),
    ]
    return cases


def time_kernels(
    precision: str, n: int, repeats: int, copy_bandwidth: float | None,
    rng: np.random.Generator,
) -> list[dict[str, Any]]:
    """One row per kernel kind at ``n`` qubits in ``precision``."""
    dtype = DTYPES[precision]
    state = gpu.allocate(n, dtype)
    prepare_random(state, rng)
    rows = []
    for name, passes, action in kernel_cases(n, dtype, rng):
        seconds = median_time(state, action, repeats)
        moved = passes * (dtype.itemsize << n)
        bandwidth = moved / seconds if moved else None
        rows.append({
            "precision": precision, "num_qubits": n, "kernel": name, "seconds": seconds,
            "bytes_moved": moved, "bandwidth": bandwidth,
            "of_copy": bandwidth / copy_bandwidth if bandwidth and copy_bandwidth else None,
        })
    gpu.release(state)
    return rows


def time_all_sizes(
    args: argparse.Namespace, copy_bandwidth: float | None, deadline: float,
    rng: np.random.Generator, skipped: list[str],
) -> list[dict[str, Any]]:
    """:func:`time_kernels` at every size of the range that fits (single goes one further)."""
    rows = []
    for precision, dtype in DTYPES.items():
        top = args.max_qubits + (1 if precision == "single" else 0)
        for n in range(args.min_qubits, top + 1):
            nbytes = dtype.itemsize << n
            if time.monotonic() > deadline:
                skipped.append(f"{precision} n={n}: time budget spent")
            elif not fits(nbytes):
                skipped.append(f"{precision} n={n}: {nbytes / 2**30:.0f} GiB does not fit in "
                               f"{free_memory() / 2**30:.0f} GiB free")
            else:
                print(f"kernels: {precision} n={n} ...", flush=True)
                rows += time_kernels(precision, n, args.repeats, copy_bandwidth, rng)
    return rows


# --- 4. end to end ------------------------------------------------------------------------------


def end_to_end(sizes: list[int], repeats: int, deadline: float,
               skipped: list[str]) -> list[dict[str, Any]]:
    """GHZ, QFT and quantum volume through GPUSimulator(device="GPU"): median wall seconds."""
    try:
        from gpuprovider import GPUSimulator
        from gpuprovider.benchsuite import FAMILIES
    except ImportError as exc:
        skipped.append(f"end to end: cannot import qiskit or the circuits ({exc})")
        return []
    if not devices.GPU.usable:
        skipped.append(f"end to end: no usable GPU ({devices.GPU.report.reason})")
        return []
    rows = []
    for precision in DTYPES:
        backend = GPUSimulator(device="GPU", precision=precision)
        for name in ("ghz", "qft", "qv"):
            build = FAMILIES[name]
            backend.run(build(E2E_WARMUP_QUBITS), shots=E2E_SHOTS).result()  # JIT
            for n in sizes:
                if time.monotonic() > deadline:
                    skipped.append(f"end to end {name} {precision} n={n}: time budget spent")
                    continue
                circuit = build(n)
                runs = [run_once(backend, circuit) for _ in range(repeats)]
                rows.append({"circuit": name, "num_qubits": n, "precision": precision,
                             "shots": E2E_SHOTS, "seconds": median(r[0] for r in runs),
                             "simulation_time": median(r[1] for r in runs)})
    return rows


def run_once(backend: Any, circuit: Any) -> tuple[float, float]:
    """Wall seconds of ``run().result()`` and the simulation time the result reports."""
    start = time.perf_counter()
    result = backend.run(circuit, shots=E2E_SHOTS, seed_simulator=1).result()
    return time.perf_counter() - start, result.metadata["simulation_time"]


# --- the machine ----------------------------------------------------------------------------


def git_commit() -> str | None:
    """HEAD of the checkout, or None (the device's copy of the tree has no .git)."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def attempt(read: Callable[[], Any]) -> Any:
    """``read()``, or None where this numba-cuda, driver or the simulator cannot say."""
    try:
        return read()
    except Exception:  # noqa: BLE001 - a missing or broken peer gives no figure, not a crash
        return None


def environment() -> dict[str, Any]:
    device = cuda.get_current_device()
    name = getattr(device, "name", "")
    total = attempt(lambda: float(cuda.current_context().get_memory_info().total))
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join([sys.executable, *sys.argv]),
        "git_commit": git_commit(),
        "simulated": SIMULATED,
        "gpu": name.decode() if isinstance(name, bytes) else str(name),
        "compute_capability": attempt(lambda: list(device.compute_capability)),
        "multiprocessors": getattr(device, "MULTIPROCESSOR_COUNT", None),
        "total_memory": total if total is not None and math.isfinite(total) else None,
        "driver_version": attempt(lambda: list(cuda.cudadrv.driver.driver.get_version())),
        "runtime_version": attempt(lambda: list(cuda.runtime.get_version())),
        "numba": numba.__version__,
        "numba_cuda": attempt(lambda: metadata.version("numba-cuda")),
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


# --- report ------------------------------------------------------------------------------------


def kernel_table(rows: list[dict[str, Any]], precision: str) -> list[str]:
    """Per kernel: % of copy bandwidth at each size, then time and GB/s at the largest."""
    rows = [row for row in rows if row["precision"] == precision]
    if not rows:
        return [f"{precision}: no sizes measured"]
    sizes = sorted({row["num_qubits"] for row in rows})
    top = sizes[-1]
    cell = {(row["kernel"], row["num_qubits"]): row for row in rows}
    kernels = list(dict.fromkeys(row["kernel"] for row in rows))
    title = f"{precision} ({DTYPES[precision].name}): % of copy bandwidth at n qubits"
    lines = [f"{title} | at n={top}",
             f"{'kernel':<18}" + "".join(f"{n:>6}" for n in sizes)
             + f" | {'ms':>9} {'GB/s':>7}"]
    for kernel in kernels:
        ratios = [cell[kernel, n]["of_copy"] for n in sizes]
        last = cell[kernel, top]
        bandwidth = f"{last['bandwidth'] / 1e9:7.0f}" if last["bandwidth"] else f"{'-':>7}"
        lines.append(f"{kernel:<18}" + "".join(
            f"{'-':>6}" if r is None else f"{100 * r:>5.0f}%" for r in ratios)
            + f" | {1e3 * last['seconds']:9.3f} {bandwidth}")
    return lines


def e2e_table(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    seconds = {(r["circuit"], r["num_qubits"], r["precision"]): r["seconds"] for r in rows}
    cases = list(dict.fromkeys((r["circuit"], r["num_qubits"]) for r in rows))
    lines = [f"end to end: run().result(), {E2E_SHOTS} shots, wall seconds",
             f"{'circuit':<8}{'qubits':>7}" + "".join(f"{p:>10}" for p in DTYPES)]
    for circuit, n in cases:
        lines.append(f"{circuit:<8}{n:>7}" + "".join(
            f"{seconds[circuit, n, p]:>10.3f}" if (circuit, n, p) in seconds else f"{'-':>10}"
            for p in DTYPES))
    return lines


def report(figures: dict[str, Any]) -> str:
    env, copy = figures["environment"], figures["copy"]
    capability = ".".join(map(str, env["compute_capability"] or [])) or "?"
    lines = [f"GPU: {env['gpu']} (cc {capability}), driver {env['driver_version']}, "
             f"runtime {env['runtime_version']}, numba-cuda {env['numba_cuda']}"
             + ("  [SIMULATED: times are meaningless]" if env["simulated"] else "")]
    checks = figures["correctness"]["checks"]
    lines.append(f"correctness: {sum(c['ok'] for c in checks)}/{len(checks)} checks against the "
                 f"CPU engine at {figures['correctness']['num_qubits']} qubits passed")
    if "bandwidth" in copy:
        lines.append(f"copy: 2^{copy['num_qubits']} complex128 device to device, "
                     f"{copy['bandwidth'] / 1e9:.0f} GB/s (read + write), "
                     f"{1e3 * copy['seconds']:.3f} ms")
    for precision in DTYPES:
        lines += ["", *kernel_table(figures["kernels"], precision)]
    e2e = e2e_table(figures["end_to_end"])
    if e2e:
        lines += ["", *e2e]
    lines += [f"skipped: {reason}" for reason in figures["skipped"]]
    return "\n".join(lines)


# --- main -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Check the CUDA engine against the CPU engine, then time its kernels.")
    parser.add_argument("--min-qubits", type=int, default=24)
    parser.add_argument("--max-qubits", type=int, default=32,
                        help="largest double-precision size; single goes one further")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per median")
    parser.add_argument("--json", metavar="PATH", help="write every figure here as JSON")
    parser.add_argument("--skip-end-to-end", action="store_true")
    parser.add_argument("--e2e-qubits", type=int, nargs="+", default=[24, 28, 30])
    parser.add_argument("--e2e-repeats", type=int, default=2)
    parser.add_argument("--check-qubits", type=int, default=12,
                        help="size of the correctness checks")
    parser.add_argument("--copy-qubits", type=int, default=28,
                        help="size of the copy-bandwidth state (at most --max-qubits)")
    parser.add_argument("--budget-s", type=float, default=math.inf,
                        help="stop starting new sizes after this many seconds")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    if args.min_qubits < gpu.POLICY.max_matrix_qubits or args.min_qubits > args.max_qubits:
        parser.error(f"need {gpu.POLICY.max_matrix_qubits} <= --min-qubits <= --max-qubits")
    if args.repeats < 1 or args.e2e_repeats < 1:
        parser.error("repeats must be at least 1")
    return args


def write_json(figures: dict[str, Any], path: str | None) -> None:
    if path:
        Path(path).write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    deadline = time.monotonic() + args.budget_s
    rng = np.random.default_rng(args.seed)
    figures: dict[str, Any] = {"environment": environment(), "skipped": [], "kernels": [],
                               "copy": {}, "end_to_end": []}
    print(f"correctness at {args.check_qubits} qubits ...", flush=True)
    figures["correctness"] = check_correctness(args.check_qubits, args.seed)
    if not figures["correctness"]["passed"]:
        write_json(figures, args.json)
        for check in figures["correctness"]["checks"]:
            if not check["ok"]:
                print(f"MISMATCH {check['operation']} ({check['precision']}): error "
                      f"{check['error']:.3g} > {check['tolerance']:.3g}", file=sys.stderr)
        print("ABORTED: the CUDA engine disagrees with the CPU engine; nothing was timed.",
              file=sys.stderr)
        return 1
    print("copy bandwidth ...", flush=True)
    figures["copy"] = measure_copy(min(args.copy_qubits, args.max_qubits), args.repeats, rng)
    figures["kernels"] = time_all_sizes(args, figures["copy"].get("bandwidth"), deadline, rng,
                                        figures["skipped"])
    if args.skip_end_to_end:
        figures["skipped"].append("end to end: --skip-end-to-end")
    else:
        print("end to end ...", flush=True)
        figures["end_to_end"] = end_to_end(args.e2e_qubits, args.e2e_repeats, deadline,
                                           figures["skipped"])
    write_json(figures, args.json)
    if args.json:
        print(f"figures written to {args.json}")
    print()
    print(report(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
