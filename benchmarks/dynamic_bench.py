"""Dynamic circuits and parameter sweeps against qiskit-aer, side by side in one run.

    python benchmarks/dynamic_bench.py [--qubits 20] [--shots 10000] [--bindings 1000]
                                       [--device CPU|GPU]

1. Mid-circuit measurement: a ``--qubits`` circuit with 5 mid-circuit measurements, each
   followed by feed-forward, then every qubit measured; ``--shots`` shots. Timed: ours
   (branching shots), ours forced to one state per shot, qiskit-aer with its default options
   and qiskit-aer with ``shot_branching_enable=True``. Runs that re-simulate every shot are
   timed on ``--sample-shots`` shots and scaled linearly to ``--shots`` (marked "scaled"):
   at 20 qubits one state per shot takes tens of minutes for 10,000 shots. Aer's shot
   branching runs in a child process limited to ``--peer-memory-gib`` of address space: at
   20 qubits and 10,000 shots it took all 24 GiB of the development machine and was killed.
2. Sweep: a ``--sweep-qubits`` hardware-efficient ansatz (RY/RZ layers and CX chains), its
   parameters bound ``--bindings`` times through ``parameter_binds``, 100 shots each, ours
   against qiskit-aer.

Each entry is the median of ``--repeats`` runs after one warm-up; the table gives
aer/ours ratios. This machine is shared: trust ratios from one run, not absolute times.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
from gpuprovider import device as devices
from gpuprovider.kernels.precision import dtype_of
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit.circuit import ParameterVector

from gpuprovider import GPUSimulator
from gpuprovider.compile.lower import lower_circuit
from gpuprovider.engine import run_program

MID_MEASUREMENTS = 5


def dynamic_circuit(num_qubits: int, seed: int = 1) -> QuantumCircuit:
    """Rotation and entangling layers, five mid-circuit measurements with feed-forward."""
    rng = np.random.default_rng(seed)
    qubits = QuantumRegister(num_qubits, "q")
    mid, final = ClassicalRegister(MID_MEASUREMENTS, "mid"), ClassicalRegister(num_qubits, "c")
    circuit = QuantumCircuit(qubits, mid, final)
    for round_ in range(MID_MEASUREMENTS):
        for q in range(num_qubits):
            circuit.ry(float(rng.uniform(0, np.pi)), q)
        for q in range(0, num_qubits - 1, 2):
            circuit.cx(q, q + 1)
        measured = round_ % num_qubits
        circuit.measure(measured, mid[round_])
        with circuit.if_test((mid[round_], 1)):
            circuit.x((measured + 1) % num_qubits)
    circuit.measure(qubits, final)
    return circuit


def ansatz(num_qubits: int, reps: int = 3) -> QuantumCircuit:
    theta = ParameterVector("t", 2 * num_qubits * (reps + 1))
    circuit = QuantumCircuit(num_qubits)
    index = 0
    for rep in range(reps + 1):
        for q in range(num_qubits):
            circuit.ry(theta[index], q)
            circuit.rz(theta[index + 1], q)
            index += 2
        if rep < reps:
            for q in range(num_qubits - 1):
                circuit.cx(q, q + 1)
    circuit.measure_all()
    return circuit


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    run()  # warm-up: JIT compilation, thread pools
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class _NoControl:
    def check(self) -> None: ...

    def advance(self, steps: int = 1) -> None: ...

    def mark(self, marker) -> None: ...


def ours_one_state_per_shot(circuit: QuantumCircuit, shots: int, device: str) -> None:
    """Our engine with room for two states only: past the first measurement every shot runs
    alone from a copy of the state (the trajectories fallback)."""
    program = lower_circuit(circuit, dtype_of("double"))
    run_program(program, devices.resolve(device).kernels, dtype_of("double"), shots,
                np.random.default_rng(0), _NoControl(), max_states=2)


def aer_branching_seconds(num_qubits: int, shots: int) -> float:
    import qiskit_aer

    circuit = dynamic_circuit(num_qubits)
    simulator = qiskit_aer.AerSimulator(method="statevector", shot_branching_enable=True)
    return median_seconds(
        lambda: simulator.run(circuit, shots=shots, seed_simulator=1).result(), 1)


def isolated_seconds(args) -> float | str:
    """Aer's shot branching in a child process with capped memory: seconds, or why not."""
    limit = args.peer_memory_gib << 30

    def cap_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    child = subprocess.run(
        [sys.executable, __file__, "--aer-branching-child", str(args.qubits), str(args.shots)],
        capture_output=True, text=True, preexec_fn=cap_memory, check=False,
    )
    if child.returncode != 0:
        reason = (child.stderr.strip().splitlines() or [f"exit status {child.returncode}"])[-1]
        return f"failed within {args.peer_memory_gib} GiB: {reason[:60]}"
    return float(child.stdout.split()[-1])


def dynamic_rows(args, aer) -> list[tuple[str, float | str, str]]:
    circuit = dynamic_circuit(args.qubits)
    ours = GPUSimulator(device=args.device)
    scale = args.shots / args.sample_shots
    rows = [("ours, branching", median_seconds(
        lambda: ours.run(circuit, shots=args.shots, seed_simulator=1).result(), args.repeats),
        "measured")]
    rows.append(("ours, one state per shot", scale * median_seconds(
        lambda: ours_one_state_per_shot(circuit, args.sample_shots, args.device), 1),
        "scaled"))
    if aer is not None:
        default = aer.AerSimulator(method="statevector")
        rows.append(("aer, default options", scale * median_seconds(
            lambda: default.run(circuit, shots=args.sample_shots, seed_simulator=1).result(),
            1), "scaled"))
        rows.append(("aer, shot_branching_enable", isolated_seconds(args), "measured"))
    return rows


def sweep_rows(args, aer) -> list[tuple[str, float, str]]:
    circuit = ansatz(args.sweep_qubits)
    rng = np.random.default_rng(2)
    binds = [{p: list(rng.uniform(-np.pi, np.pi, args.bindings)) for p in circuit.parameters}]
    ours = GPUSimulator(device=args.device)
    rows = [("ours, parameter_binds", median_seconds(
        lambda: ours.run(circuit, parameter_binds=binds, shots=100, seed_simulator=1).result(),
        args.repeats), "measured")]
    if aer is not None:
        simulator = aer.AerSimulator(method="statevector")
        rows.append(("aer, parameter_binds", median_seconds(
            lambda: simulator.run(circuit, parameter_binds=binds, shots=100,
                                  seed_simulator=1).result(), args.repeats), "measured"))
    return rows


def print_table(title: str, rows: list[tuple[str, float | str, str]]) -> None:
    ours = rows[0][1]
    print(f"\n{title}")
    print(f"{'simulator':32} {'seconds':>10}  {'x ours':>8}  how")
    for name, seconds, how in rows:
        if isinstance(seconds, str):
            print(f"{name:32} {'-':>10}  {'-':>8}  {seconds}")
        else:
            print(f"{name:32} {seconds:10.3f}  {seconds / ours:8.2f}  {how}")


def main() -> None:
    if sys.argv[1:2] == ["--aer-branching-child"]:
        print(aer_branching_seconds(int(sys.argv[2]), int(sys.argv[3])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qubits", type=int, default=20)
    parser.add_argument("--shots", type=int, default=10_000)
    parser.add_argument("--sample-shots", type=int, default=100)
    parser.add_argument("--sweep-qubits", type=int, default=16)
    parser.add_argument("--bindings", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=["dynamic", "sweep"],
                        help="run one of the two comparisons (each in a fresh process is "
                             "quieter: the first leaves Aer's large allocations behind)")
    parser.add_argument("--peer-memory-gib", type=int, default=16,
                        help="address-space limit of the child running Aer's shot branching")
    parser.add_argument("--device", choices=["CPU", "GPU"], default="CPU",
                        help="our engine's device (the peers run on the CPU)")
    args = parser.parse_args()
    try:
        import qiskit_aer as aer
    except ImportError:
        aer = None
        print("qiskit-aer is not installed: only our own times")
    if args.only in (None, "dynamic"):
        print_table(
            f"{args.qubits} qubits, {MID_MEASUREMENTS} mid-circuit measurements with "
            f"feed-forward, {args.shots} shots (ours on {args.device}, double)",
            dynamic_rows(args, aer))
    if args.only in (None, "sweep"):
        print_table(
            f"{args.bindings}-binding sweep of a {args.sweep_qubits}-qubit ansatz, 100 shots "
            f"each (ours on {args.device}, double)", sweep_rows(args, aer))


if __name__ == "__main__":
    main()
