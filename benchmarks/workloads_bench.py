"""Issue 15's acceptance workloads, gpuprovider beside qiskit-aer in one run.

    python benchmarks/workloads_bench.py [--only startup,vqe,...] [--issue6-sets 20]
                                         [--device CPU] [--json out.json]

``startup``: a 5-qubit GHZ script (imports, backend, 1000 shots, counts printed; the script of
``startup_bench.py``) in a fresh Python process, the whole process timed, ours and Aer's
processes alternating, median of ``--startup-repeats``.
``vqe``: H2 at 0.735 A (the 5-term Hamiltonian), ``efficient_su2(2, reps=1)``, COBYLA with
``--vqe-maxiter`` evaluations of EstimatorV2 (``precision=0``); qiskit-algorithms' ``VQE``
where it is installed, otherwise the same loop written with ``scipy.optimize.minimize``.
``qnn``: qiskit-machine-learning's ``EstimatorQNN`` (``zz_feature_map`` + ``real_amplitudes``
on ``--qnn-qubits``, observable Z...Z, ``ParamShiftEstimatorGradient`` on the same estimator,
``precision=0``), forward and backward of ``--qnn-samples`` samples; without the package, the
same pubs built by hand (forward: one pub of all samples; backward: one single-set pub per
shifted parameter set, as the library submits them).
``sets880``: one EstimatorV2 pub of ``real_amplitudes(4, reps=3)`` with ``--sets`` parameter
sets and a 4-term observable.
``sweep``: ``dynamic_bench.py``'s sweep, a ``--sweep-qubits`` ansatz bound ``--bindings`` times
through ``parameter_binds`` on ``backend.run``, 100 shots each.
``rerun``: the sweep's ansatz bound once and run ``--reruns`` times through ``backend.run``
(100 shots each): the same circuit submitted again, as a loop over ``run`` does.
``issue6``: ``estimator_bench.py``'s workload (``efficient_su2(20)``, 10 observables of 20
terms) on ``--issue6-sets`` parameter sets (1000 in the issue: about 20 minutes for Aer).

Every peer is warmed up once (startup excepted), then the peers alternate for ``--repeats``
timed runs (``issue6``: one) and the medians are printed with Aer / ours and the largest
difference between the two peers' values where they are comparable (estimator values and
gradients; not shot counts). This machine is shared: trust ratios from one run, not absolute
times.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np
from qiskit import QuantumCircuit, transpile
from qiskit.circuit.library import efficient_su2, real_amplitudes, zz_feature_map
from qiskit.quantum_info import SparsePauliOp

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dynamic_bench  # noqa: E402
import estimator_bench  # noqa: E402
import startup_bench  # noqa: E402

import gpuprovider  # noqa: E402
from gpuprovider.primitives import EstimatorV2  # noqa: E402

WORKLOADS = ("startup", "vqe", "qnn", "sets880", "sweep", "rerun", "issue6")
H2 = SparsePauliOp.from_list([
    ("II", -1.052373245772859), ("IZ", 0.39793742484318045), ("ZI", -0.39793742484318045),
    ("ZZ", -0.01128010425623538), ("XX", 0.18093119978423156)])
BASIS = ["ry", "rz", "cx"]


def has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "gpuprovider": gpuprovider.__version__}
    for name in ("qiskit", "qiskit-aer", "numba", "numpy", "scipy", "qiskit-algorithms",
                 "qiskit-machine-learning"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    found["cpus"] = str(os.cpu_count())
    return found


def estimators(device: str) -> dict[str, object]:
    """A fresh EstimatorV2 of each peer: ours on ``device``, Aer's statevector if installed."""
    found = {"ours": EstimatorV2(options={"backend_options": {"device": device}})}
    if has("qiskit_aer"):
        from qiskit_aer.primitives import EstimatorV2 as AerEstimatorV2

        found["aer"] = AerEstimatorV2(options={"backend_options": {"method": "statevector"}})
    return found


def simulators(device: str) -> dict[str, object]:
    """A fresh simulator of each peer: ours on ``device``, Aer's statevector if installed."""
    found = {"ours": gpuprovider.GPUSimulator(device=device)}
    if has("qiskit_aer"):
        import qiskit_aer

        found["aer"] = qiskit_aer.AerSimulator(method="statevector")
    return found


def interleaved(runs: dict[str, Callable[[], object]], repeats: int,
                warm_ups: dict[str, Callable[[], object]] | None = None,
                ) -> tuple[dict[str, float], dict[str, object]]:
    """Each run's median seconds over ``repeats`` (the peers alternating, after one warm-up
    each: ``warm_ups`` where given, else the run itself), and each run's last value."""
    for name in runs:
        (warm_ups or runs)[name]()
    times: dict[str, list[float]] = {name: [] for name in runs}
    values: dict[str, object] = {}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            values[name] = run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(seconds) for name, seconds in times.items()}, values


def difference(values: dict[str, object]) -> float | None:
    """The largest |ours - aer| over the flattened values, or None without Aer."""
    if "aer" not in values:
        return None
    ours, aer = (np.concatenate([np.ravel(part) for part in values[name]])
                 for name in ("ours", "aer"))
    return float(np.max(np.abs(ours - aer)))


def row(workload: str, seconds: dict[str, float], max_difference: float | None,
        how: str, **extra) -> dict:
    aer = seconds.get("aer")
    return {"workload": workload, "ours_s": seconds["ours"], "aer_s": aer,
            "aer_over_ours": None if aer is None else aer / seconds["ours"],
            "max_difference": max_difference, "how": how, **extra}


def startup(args) -> dict:
    peers = {"ours": startup_bench.PEERS["gpuprovider"]}
    if has("qiskit_aer"):
        peers["aer"] = startup_bench.PEERS["aer"]
    times: dict[str, list[float]] = {name: [] for name in peers}
    for _ in range(args.startup_repeats):
        for name, peer in peers.items():
            script = startup_bench.GHZ.format(module=peer["module"], simulator=peer["simulator"])
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", script], capture_output=True, check=True)
            times[name].append(time.perf_counter() - start)
    seconds = {name: statistics.median(values) for name, values in times.items()}
    return row("startup", seconds, None,
               f"GHZ-5, 1000 shots, fresh process, median of {args.startup_repeats}")


def vqe(args) -> dict:
    ansatz = efficient_su2(2, reps=1)
    start = np.full(ansatz.num_parameters, 0.1)
    if has("qiskit_algorithms"):
        from qiskit_algorithms import VQE
        from qiskit_algorithms.optimizers import COBYLA

        how = "qiskit-algorithms VQE + COBYLA"

        def minimise(estimator) -> tuple[float, int]:
            result = VQE(estimator, ansatz, COBYLA(maxiter=args.vqe_maxiter),
                         initial_point=start).compute_minimum_eigenvalue(H2)
            return float(np.real(result.eigenvalue)), int(result.cost_function_evals)
    else:
        from scipy.optimize import minimize

        print("vqe: qiskit-algorithms is not installed: scipy COBYLA loop instead")
        how = "scipy COBYLA loop (no qiskit-algorithms)"

        def minimise(estimator) -> tuple[float, int]:
            result = minimize(
                lambda x: float(estimator.run([(ansatz, H2, x)]).result()[0].data.evs),
                start, method="COBYLA", options={"maxiter": args.vqe_maxiter})
            return float(result.fun), int(result.nfev)

    runs = {name: (lambda e=e: minimise(e)) for name, e in estimators(args.device).items()}
    seconds, values = interleaved(runs, args.repeats)
    evaluations = {name: value[1] for name, value in values.items()}
    energies = {name: [value[0]] for name, value in values.items()}
    return row("vqe", seconds, difference(energies),
               f"H2, {how}, evaluations {evaluations}", energies=energies)


def qnn_circuit(num_qubits: int) -> tuple[QuantumCircuit, QuantumCircuit, QuantumCircuit]:
    features, weights = zz_feature_map(num_qubits), real_amplitudes(num_qubits)
    circuit = QuantumCircuit(num_qubits)
    circuit.compose(features, inplace=True)
    circuit.compose(weights, inplace=True)
    return circuit, features, weights


def qnn_by_hand(estimator, circuit: QuantumCircuit, features: QuantumCircuit,
                weights: QuantumCircuit, inputs: np.ndarray,
                weight_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """EstimatorQNN's forward and weight gradient, pub for pub: the forward pass is one pub
    of every sample; the backward pass one single-set pub per sample and shifted weight
    (+pi/2 for every weight, then -pi/2), as ParamShiftEstimatorGradient submits them."""
    observable = SparsePauliOp("Z" * circuit.num_qubits)
    order = {p: i for i, p in enumerate(circuit.parameters)}
    feature_columns = [order[p] for p in features.parameters]
    weight_columns = [order[p] for p in weights.parameters]
    values = np.empty((len(inputs), circuit.num_parameters))
    values[:, feature_columns] = inputs
    values[:, weight_columns] = weight_values
    forward = estimator.run([(circuit, observable, values)]).result()[0].data.evs
    pubs = []
    for sample in values:
        for sign in (1, -1):
            for column in weight_columns:
                shifted = sample.copy()
                shifted[column] += sign * np.pi / 2
                pubs.append((circuit, observable, shifted))
    evs = np.array([float(r.data.evs) for r in estimator.run(pubs).result()])
    evs = evs.reshape(len(values), 2, len(weight_columns))
    return forward.reshape(-1, 1), ((evs[:, 0] - evs[:, 1]) / 2)[:, None, :]


def qnn(args) -> dict:
    circuit, features, weights = qnn_circuit(args.qnn_qubits)
    rng = np.random.default_rng(3)
    inputs = rng.uniform(0, np.pi, (args.qnn_samples, features.num_parameters))
    weight_values = rng.uniform(0, np.pi, weights.num_parameters)
    if has("qiskit_machine_learning"):
        from qiskit_machine_learning.gradients import ParamShiftEstimatorGradient
        from qiskit_machine_learning.neural_networks import EstimatorQNN

        how = "qiskit-machine-learning EstimatorQNN"

        def forward_backward(estimator) -> tuple[np.ndarray, np.ndarray]:
            network = EstimatorQNN(
                circuit=circuit, estimator=estimator, input_params=features.parameters,
                weight_params=weights.parameters, default_precision=0.0,
                gradient=ParamShiftEstimatorGradient(estimator))
            return (network.forward(inputs, weight_values),
                    network.backward(inputs, weight_values)[1])
    else:
        print("qnn: qiskit-machine-learning is not installed: the same pubs built by hand")
        how = "hand-built EstimatorQNN pubs (no qiskit-machine-learning)"

        def forward_backward(estimator) -> tuple[np.ndarray, np.ndarray]:
            return qnn_by_hand(estimator, circuit, features, weights, inputs, weight_values)

    runs = {name: (lambda e=e: forward_backward(e)) for name, e in estimators(args.device).items()}
    seconds, values = interleaved(runs, args.repeats)
    return row("qnn", seconds, difference(values),
               f"{how}, {args.qnn_qubits} qubits, {args.qnn_samples} samples, forward+backward")


def sets880(args) -> dict:
    circuit = transpile(real_amplitudes(4, reps=3), basis_gates=BASIS, optimization_level=0)
    observable = SparsePauliOp(["ZZII", "IXXI", "YIIY", "ZIZI"], [0.5, -0.25, 0.75, 0.1])
    values = np.random.default_rng(4).uniform(0, 2 * np.pi, (args.sets, circuit.num_parameters))
    runs = {name: (lambda e=e: [e.run([(circuit, observable, values)]).result()[0].data.evs])
            for name, e in estimators(args.device).items()}
    seconds, results = interleaved(runs, args.repeats)
    return row("sets880", seconds, difference(results),
               f"one pub, real_amplitudes(4, reps=3), {args.sets} sets, 4 terms")


def sweep(args) -> dict:
    circuit = dynamic_bench.ansatz(args.sweep_qubits)
    rng = np.random.default_rng(2)
    binds = [{p: list(rng.uniform(-np.pi, np.pi, args.bindings)) for p in circuit.parameters}]
    warm_binds = [{p: values[:2] for p, values in binds[0].items()}]
    found = simulators(args.device)

    def job(simulator, parameter_binds) -> Callable[[], object]:
        return lambda: simulator.run(circuit, parameter_binds=parameter_binds, shots=100,
                                     seed_simulator=1).result()

    seconds, _ = interleaved({name: job(s, binds) for name, s in found.items()},
                             args.repeats,
                             {name: job(s, warm_binds) for name, s in found.items()})
    return row("sweep", seconds, None,
               f"{args.sweep_qubits} qubits, {args.bindings} parameter_binds, 100 shots each")


def rerun(args) -> dict:
    circuit = dynamic_bench.ansatz(args.sweep_qubits)
    bound = circuit.assign_parameters(
        np.random.default_rng(2).uniform(-np.pi, np.pi, circuit.num_parameters))
    found = simulators(args.device)

    def job(simulator) -> Callable[[], object]:
        return lambda: [simulator.run(bound, shots=100, seed_simulator=1).result()
                        for _ in range(args.reruns)]

    seconds, _ = interleaved({name: job(s) for name, s in found.items()}, args.repeats)
    return row("rerun", seconds, None,
               f"{args.sweep_qubits}-qubit ansatz bound once, run {args.reruns} times, 100 shots")


def issue6(args) -> dict:
    circuit, operators, values = estimator_bench.workload(args.issue6_qubits, 2,
                                                          args.issue6_sets, 10, 20, seed=1)
    found = estimators(args.device)
    runs = {name: (lambda e=e: [e.run([(circuit, operators, values)]).result()[0].data.evs])
            for name, e in found.items()}
    warm_ups = {name: (lambda e=e: e.run([(circuit, operators, values[:2])]).result())
                for name, e in found.items()}
    seconds, results = interleaved(runs, 1, warm_ups)
    per_set_ms = {name: 1e3 * s / args.issue6_sets for name, s in seconds.items()}
    per_set = ", ".join(f"{name} {ms:.1f}" for name, ms in per_set_ms.items())
    return row("issue6", seconds, difference(results),
               f"efficient_su2({args.issue6_qubits}), {args.issue6_sets} sets x 10 obs x 20 "
               f"terms; ms/set: {per_set}", per_set_ms=per_set_ms)


RUNNERS = {"startup": startup, "vqe": vqe, "qnn": qnn, "sets880": sets880, "sweep": sweep,
           "rerun": rerun, "issue6": issue6}


def print_table(rows: list[dict]) -> None:
    print(f"\n{'workload':9} {'ours s':>9} {'aer s':>9} {'aer/ours':>9} {'max |diff|':>11}  how")
    for r in rows:
        aer = "-" if r["aer_s"] is None else f"{r['aer_s']:9.3f}"
        ratio = "-" if r["aer_over_ours"] is None else f"{r['aer_over_ours']:9.2f}"
        diff = "-" if r["max_difference"] is None else f"{r['max_difference']:11.1e}"
        print(f"{r['workload']:9} {r['ours_s']:9.3f} {aer:>9} {ratio:>9} {diff:>11}  {r['how']}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(WORKLOADS),
                        help=f"comma-separated, from {', '.join(WORKLOADS)}")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed runs per peer (issue6: always one)")
    parser.add_argument("--startup-repeats", type=int, default=5)
    parser.add_argument("--vqe-maxiter", type=int, default=43)
    parser.add_argument("--qnn-qubits", type=int, default=4)
    parser.add_argument("--qnn-samples", type=int, default=20)
    parser.add_argument("--sets", type=int, default=880, help="parameter sets of sets880")
    parser.add_argument("--sweep-qubits", type=int, default=16)
    parser.add_argument("--bindings", type=int, default=1000)
    parser.add_argument("--reruns", type=int, default=40, help="runs of rerun's bound circuit")
    parser.add_argument("--issue6-qubits", type=int, default=20)
    parser.add_argument("--issue6-sets", type=int, default=20)
    parser.add_argument("--device", default="CPU",
                        help="our engine's device (the peers run on the CPU)")
    parser.add_argument("--json", default=None, help="write the rows here")
    return parser


def main() -> None:
    parser = build_parser()
    args = parser.parse_args()
    chosen = args.only.split(",")
    for name in chosen:
        if name not in WORKLOADS:
            parser.error(f"unknown workload {name!r}; choose from {', '.join(WORKLOADS)}")
    environment = versions()
    print(", ".join(f"{name} {version}" for name, version in environment.items()))
    if not has("qiskit_aer"):
        print("qiskit-aer is not installed: ours only")
    rows = []
    for name in WORKLOADS:
        if name in chosen:
            rows.append(RUNNERS[name](args))
            print(f"  {name} done: ours {rows[-1]['ours_s']:.3f} s", flush=True)
    print_table(rows)
    if args.json:
        commit = estimator_bench.short_commit()
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"date": datetime.datetime.now().isoformat(timespec="seconds"),
                       "commit": commit, "environment": environment, "arguments": vars(args),
                       "rows": rows}, handle, indent=2)


if __name__ == "__main__":
    main()
