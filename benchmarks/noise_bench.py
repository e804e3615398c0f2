"""Noisy circuits: gpuprovider beside qiskit-aer's default and its shot-branching mode, in one
run, each simulator in its own process so that its peak memory (max RSS) is its own.

    python benchmarks/noise_bench.py --qubits 20 --depth 20 --shots 10000

The circuit: ``depth`` layers of ``sx`` and ``rz`` on every qubit and a ``cx`` ladder;
depolarizing noise on every gate (``--p1`` on one-qubit gates, ``--p2`` on ``cx``; the
defaults are of the order of today's superconducting devices) and a readout error
(``--readout``) on every qubit. Reports seconds, the ratio to ours and the peak resident
memory of each simulator's process.

qiskit-aer runs one trajectory per shot, so its time grows linearly with the shots: with
``--peer-shots N`` the peers run N shots and their time is scaled to ``--shots`` (said in
the table), which keeps a 20-qubit run within minutes (Aer takes over a second per shot there).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

SIMULATORS = ("gpuprovider", "aer", "aer-shot-branching")


def circuit(num_qubits: int, depth: int, seed: int):
    from qiskit import QuantumCircuit

    rng = np.random.default_rng(seed)
    built = QuantumCircuit(num_qubits)
    for _ in range(depth):
        for qubit in range(num_qubits):
            built.sx(qubit)
            built.rz(float(rng.uniform(0, 2 * np.pi)), qubit)
        for qubit in range(0, num_qubits - 1, 2):
            built.cx(qubit, qubit + 1)
        for qubit in range(1, num_qubits - 1, 2):
            built.cx(qubit, qubit + 1)
    built.measure_all()
    return built


def noise_model(p1: float, p2: float, readout: float, channel: str = "depolarizing"):
    """Depolarizing errors (mixtures of Paulis), or with ``channel="thermal"`` Kraus channels:
    thermal relaxation (T1 50, T2 60, gate time ``p1 * 1e4``) on one-qubit gates and
    amplitude damping (``p2``) on each qubit of a ``cx``."""
    from qiskit_aer.noise import (
        NoiseModel,
        ReadoutError,
        amplitude_damping_error,
        depolarizing_error,
        thermal_relaxation_error,
    )

    model = NoiseModel()
    if channel == "thermal":
        model.add_all_qubit_quantum_error(thermal_relaxation_error(50, 60, p1 * 1e4),
                                          ["sx", "rz"])
        model.add_all_qubit_quantum_error(
            amplitude_damping_error(p2).tensor(amplitude_damping_error(p2)), ["cx"])
    else:
        model.add_all_qubit_quantum_error(depolarizing_error(p1, 1), ["sx", "rz"])
        model.add_all_qubit_quantum_error(depolarizing_error(p2, 2), ["cx"])
    model.add_all_qubit_readout_error(ReadoutError([[1 - readout, readout],
                                                    [readout, 1 - readout]]))
    return model


def run_one(name: str, args: argparse.Namespace) -> dict:
    """Time one simulator (after a 10-shot warm-up) in this process, for ``args.shots``
    shots (peers: ``args.peer_shots`` when given)."""
    model = noise_model(args.p1, args.p2, args.readout, args.channel)
    built = circuit(args.qubits, args.depth, args.seed)
    if name == "gpuprovider":
        from gpuprovider import GPUSimulator

        simulator = GPUSimulator(device=args.device, noise_model=model, method=args.method)
    else:
        from qiskit_aer import AerSimulator

        simulator = AerSimulator(noise_model=model, method=args.method,
                                 shot_branching_enable=name == "aer-shot-branching")
    simulator.run(built, shots=10, seed_simulator=1).result()
    shots = args.shots if name == "gpuprovider" or not args.peer_shots else args.peer_shots
    start = time.perf_counter()
    counts = simulator.run(built, shots=shots, seed_simulator=2).result().get_counts()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"simulator": name, "seconds": seconds * args.shots / shots, "shots_run": shots,
            "peak_bytes": peak, "outcomes": len(counts)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qubits", type=int, default=20)
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--shots", type=int, default=10_000)
    parser.add_argument("--p1", type=float, default=2.5e-4)
    parser.add_argument("--p2", type=float, default=5e-3)
    parser.add_argument("--readout", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--peer-shots", type=int, default=None,
                        help="shots the peers run, their time scaled to --shots")
    parser.add_argument("--device", default="CPU")
    parser.add_argument("--channel", choices=("depolarizing", "thermal"), default="depolarizing",
                        help="thermal: Kraus channels (thermal relaxation, amplitude damping)")
    parser.add_argument("--method", default="automatic",
                        help="both simulators' method (statevector: trajectories)")
    parser.add_argument("--one", choices=SIMULATORS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args)))
        return
    ops = circuit(args.qubits, args.depth, args.seed).count_ops()
    errors = (ops.get("sx", 0) + ops.get("rz", 0)) * args.p1 + ops.get("cx", 0) * args.p2
    print(f"{args.qubits} qubits, depth {args.depth}, {args.shots} shots, {args.channel} "
          f"{args.p1} (1q) / {args.p2} (cx), readout {args.readout}, method {args.method}; "
          f"expected gate errors per shot {errors:.2f}")
    rows = []
    for name in SIMULATORS:
        done = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--one", name],
                              capture_output=True, text=True, check=False)
        if done.returncode:
            print(f"{name}: failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    ours = next((row["seconds"] for row in rows if row["simulator"] == "gpuprovider"), None)
    print(f"{'simulator':<22}{'seconds':>10}{'peer/ours':>11}{'peak MiB':>10}{'outcomes':>10}"
          f"{'shots run':>11}")
    for row in rows:
        ratio = f"{row['seconds'] / ours:.2f}" if ours else "-"
        scaled = "" if row["shots_run"] == args.shots else " (time scaled)"
        print(f"{row['simulator']:<22}{row['seconds']:>10.2f}{ratio:>11}"
              f"{row['peak_bytes'] / 2**20:>10.0f}{row['outcomes']:>10}{row['shots_run']:>11}"
              f"{scaled}")


if __name__ == "__main__":
    main()
