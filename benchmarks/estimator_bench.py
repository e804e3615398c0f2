"""EstimatorV2 sweep: gpuprovider's against qiskit-aer's (and Qiskit's StatevectorEstimator).

The issue-6 workload: a hardware-efficient ansatz (``efficient_su2``, linear CX entanglers,
``--reps`` layers), ``--sets`` parameter sets, ``--observables`` observables of ``--terms``
random Pauli strings each (seeded), all observables on every set (parameter shape
``(sets, 1)`` against observable shape ``(observables,)``), ``precision=0``. Each estimator
runs the same pub once after a small warm-up; the table gives seconds, seconds per parameter
set and each peer's time over ours, and the largest difference between our values and the
first peer's.

    python benchmarks/estimator_bench.py                      # 20 qubits, 1000 sets, Aer
    python benchmarks/estimator_bench.py --sets 100 --peers aer,statevector --json out.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import subprocess
import time
from collections.abc import Callable

import numpy as np
from qiskit import QuantumCircuit, transpile
from qiskit.circuit.library import efficient_su2
from qiskit.quantum_info import SparsePauliOp

PEERS = ("aer", "statevector")
BASIS = ["ry", "rz", "cx"]


def workload(num_qubits: int, reps: int, sets: int, observables: int, terms: int,
             seed: int) -> tuple[QuantumCircuit, list[SparsePauliOp], np.ndarray]:
    rng = np.random.default_rng(seed)
    circuit = transpile(efficient_su2(num_qubits, reps=reps, entanglement="linear"),
                        basis_gates=BASIS, optimization_level=0)
    operators = []
    for _ in range(observables):
        labels = ["".join(rng.choice(list("IXYZ"), num_qubits)) for _ in range(terms)]
        operators.append(SparsePauliOp(labels, rng.normal(size=terms)))
    values = rng.uniform(0, 2 * np.pi, (sets, 1, circuit.num_parameters))
    return circuit, operators, values


def ours(device: str, precision: str) -> Callable:
    from gpuprovider.primitives import EstimatorV2

    estimator = EstimatorV2(options={"backend_options": {"device": device,
                                                         "precision": precision}})
    return lambda pub: estimator.run([pub]).result()[0]


def aer(device: str, precision: str) -> Callable:
    from qiskit_aer.primitives import EstimatorV2

    estimator = EstimatorV2(options={"backend_options": {"method": "statevector",
                                                         "precision": precision}})
    return lambda pub: estimator.run([pub]).result()[0]


def statevector(device: str, precision: str) -> Callable:
    from qiskit.primitives import StatevectorEstimator

    estimator = StatevectorEstimator()
    return lambda pub: estimator.run([pub]).result()[0]


RUNNERS = {"gpuprovider": ours, "aer": aer, "statevector": statevector}


def timed(run: Callable, pub) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    result = run(pub)
    return time.perf_counter() - start, np.asarray(result.data.evs)


def short_commit() -> str:
    """The checkout's short commit, or "" where there is no git (the GPU machine's copy)."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=False).stdout.strip()
    except OSError:
        return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--qubits", type=int, default=20)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--sets", type=int, default=1000)
    parser.add_argument("--observables", type=int, default=10)
    parser.add_argument("--terms", type=int, default=20)
    parser.add_argument("--peers", default="aer",
                        help=f"comma-separated, from {', '.join(PEERS)} (or 'none')")
    parser.add_argument("--peer-sets", type=int, default=None,
                        help="run the peers on only the first N sets (their time is then "
                             "scaled to --sets and marked as estimated)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="double", choices=["double", "single"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    peers = [] if args.peers == "none" else args.peers.split(",")
    for peer in peers:
        if peer not in PEERS:
            parser.error(f"unknown peer {peer!r}; choose from {', '.join(PEERS)}")

    circuit, operators, values = workload(args.qubits, args.reps, args.sets, args.observables,
                                          args.terms, args.seed)
    print(f"{args.qubits} qubits, efficient_su2 reps={args.reps} ({dict(circuit.count_ops())}), "
          f"{args.sets} parameter sets x {args.observables} observables x {args.terms} terms, "
          f"{args.precision}")
    rows = []
    reference = None
    for name in ["gpuprovider", *peers]:
        run = RUNNERS[name](args.device, args.precision)
        run((circuit, operators, values[:2]))  # warm-up: kernels compiled, caches filled
        sets = args.sets if name == "gpuprovider" or args.peer_sets is None else min(
            args.sets, args.peer_sets)
        seconds, evs = timed(run, (circuit, operators, values[:sets]))
        scaled = seconds * args.sets / sets
        if reference is None:
            reference = evs
        difference = float(np.max(np.abs(evs - reference[:sets])))
        rows.append({"estimator": name, "sets_run": sets, "seconds": seconds,
                     "seconds_for_all_sets": scaled, "estimated": sets != args.sets,
                     "per_set_ms": 1e3 * seconds / sets, "max_difference": difference})
        print(f"  {name:12s} {sets:5d} sets {seconds:9.2f} s  {1e3 * seconds / sets:9.2f} ms/set"
              f"  max |ev - ours| {difference:.2e}", flush=True)
    base = rows[0]["seconds_for_all_sets"]
    print(f"\n{'estimator':12s} {'s (all sets)':>13s} {'peer / ours':>12s}")
    for row in rows:
        mark = " (estimated)" if row["estimated"] else ""
        print(f"{row['estimator']:12s} {row['seconds_for_all_sets']:13.2f} "
              f"{row['seconds_for_all_sets'] / base:12.2f}{mark}")
    if args.json:
        commit = short_commit()
        with open(args.json, "w") as handle:
            json.dump({"date": datetime.datetime.now().isoformat(timespec="seconds"),
                       "commit": commit, "machine": platform.processor() or platform.machine(),
                       "arguments": vars(args), "rows": rows}, handle, indent=2)


if __name__ == "__main__":
    main()
