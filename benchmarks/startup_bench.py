"""Start-up and a small VQE, each in fresh Python processes: gpuprovider beside qiskit-aer.

    python benchmarks/startup_bench.py --repeats 5

``startup``: a script that imports qiskit and the simulator, runs a 5-qubit GHZ with 1000
shots and prints the counts; the whole process is timed. ``vqe``: H2 (2 qubits,
``efficient_su2(2, reps=1)``, the 5-term Hamiltonian at 0.735 A), 43 COBYLA evaluations of
EstimatorV2, one pub each, timed inside a fresh process (first call included). Ours and Aer's
processes alternate; the medians and Aer / ours are printed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from statistics import median

GHZ = """
from qiskit import QuantumCircuit
from {module} import {simulator} as Simulator
circuit = QuantumCircuit(5)
circuit.h(0)
for qubit in range(4):
    circuit.cx(qubit, qubit + 1)
circuit.measure_all()
print(Simulator().run(circuit, shots=1000, seed_simulator=1).result().get_counts())
"""

VQE = """
import time
import numpy as np
from scipy.optimize import minimize
from qiskit.circuit.library import efficient_su2
from qiskit.quantum_info import SparsePauliOp
from {module} import EstimatorV2
hamiltonian = SparsePauliOp.from_list([
    ("II", -1.052373245772859), ("IZ", 0.39793742484318045), ("ZI", -0.39793742484318045),
    ("ZZ", -0.01128010425623538), ("XX", 0.18093119978423156)])
ansatz = efficient_su2(2, reps=1)
estimator = EstimatorV2()
start = time.perf_counter()
result = minimize(lambda x: float(estimator.run([(ansatz, hamiltonian, x)]).result()[0].data.evs),
                  np.full(ansatz.num_parameters, 0.1), method="COBYLA", options={{"maxiter": 43}})
print(time.perf_counter() - start, result.fun, result.nfev)
"""

PEERS = {
    "gpuprovider": {"module": "gpuprovider", "simulator": "GPUSimulator",
                    "primitives": "gpuprovider.primitives"},
    "aer": {"module": "qiskit_aer", "simulator": "AerSimulator",
            "primitives": "qiskit_aer.primitives"},
}


def _python(code: str) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return time.perf_counter() - start, done.stdout.strip()


def startup(repeats: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in PEERS}
    for _ in range(repeats):
        for name, peer in PEERS.items():
            seconds, _ = _python(GHZ.format(module=peer["module"], simulator=peer["simulator"]))
            times[name].append(seconds)
    return times


def vqe(repeats: int) -> tuple[dict[str, list[float]], dict[str, float]]:
    times: dict[str, list[float]] = {name: [] for name in PEERS}
    energies: dict[str, float] = {}
    for _ in range(repeats):
        for name, peer in PEERS.items():
            _, out = _python(VQE.format(module=peer["primitives"]))
            seconds, energy, _ = out.split()
            times[name].append(float(seconds))
            energies[name] = float(energy)
    return times, energies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", choices=("startup", "vqe"), default=None)
    parser.add_argument("--json", default=None, help="write the times here")
    args = parser.parse_args()
    rows = {}
    if args.only in (None, "startup"):
        rows["startup"] = startup(args.repeats)
    if args.only in (None, "vqe"):
        rows["vqe"], energies = vqe(args.repeats)
        print("final energies:", energies)
    print("| workload | gpuprovider median s | aer median s | aer / ours |")
    print("|---|---|---|---|")
    for workload, times in rows.items():
        ours, aer = median(times["gpuprovider"]), median(times["aer"])
        print(f"| {workload} | {ours:.3f} | {aer:.3f} | {aer / ours:.2f} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(rows, out, indent=1)


if __name__ == "__main__":
    main()
