"""The dense kernels beside qsim and qiskit-aer, runs alternating on the same circuits.

    python benchmarks/dense_bench.py --circuits qv:22,qv:24,random:22,random:24,qft:24,ghz:24

On a shared machine the load changes within seconds, so each round times every simulator
once, in turn, on the same circuit (ours, then each peer), and a ratio is taken within each
round: peer seconds over ours in the same precision (qsim: over our single). The medians over
``--repeats`` rounds are printed, after one untimed warm-up round. Circuits, shots and the
simulators' options are those of ``gpuprovider bench`` (:mod:`gpuprovider.benchsuite`).
"""

from __future__ import annotations

import argparse
import json
import time
from statistics import median

from gpuprovider.benchsuite import FAMILIES, SIMULATORS, BenchConfig

PAIRS = (("gpuprovider", "double"), ("aer", "double"), ("gpuprovider", "single"),
         ("qsim", "single"), ("aer", "single"))
"""(simulator, precision) timed in each round, in this order."""


def _seconds(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def bench_circuit(family: str, num_qubits: int, config: BenchConfig, repeats: int,
                  pairs=PAIRS) -> dict:
    """Median seconds of each (simulator, precision) and median per-round ratios to ours."""
    circuit = FAMILIES[family](num_qubits)
    runners = {pair: SIMULATORS[pair[0]].prepare(circuit, pair[1], config) for pair in pairs}
    for run in runners.values():
        run()
    times: dict[tuple[str, str], list[float]] = {pair: [] for pair in pairs}
    ratios: dict[tuple[str, str], list[float]] = {pair: [] for pair in pairs}
    for _ in range(repeats):
        this_round = {pair: _seconds(run) for pair, run in runners.items()}
        for pair, seconds in this_round.items():
            times[pair].append(seconds)
            ours = this_round.get(("gpuprovider", pair[1]))
            if ours:
                ratios[pair].append(seconds / ours)
    return {
        "circuit": f"{family}-{num_qubits}",
        "seconds": {f"{name}/{precision}": median(values)
                    for (name, precision), values in times.items()},
        "ratio": {f"{name}/{precision}": median(values)
                  for (name, precision), values in ratios.items() if name != "gpuprovider"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--circuits", default="qv:22,qv:24,random:22,random:24,qft:24,ghz:24",
                        help="family:qubits, comma-separated")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--simulators", default="gpuprovider,aer,qsim")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    config = BenchConfig(device="CPU")
    chosen = set(args.simulators.split(","))
    pairs = tuple(pair for pair in PAIRS if pair[0] in chosen)
    results = []
    for item in args.circuits.split(","):
        family, qubits = item.split(":")
        result = bench_circuit(family, int(qubits), config, args.repeats, pairs)
        results.append(result)
        seconds = "  ".join(f"{key} {value:.3f}s" for key, value in result["seconds"].items())
        ratios = "  ".join(f"{key}/ours {value:.2f}" for key, value in result["ratio"].items())
        print(f"{result['circuit']:10s} {seconds}\n{'':10s} {ratios}", flush=True)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=1)


if __name__ == "__main__":
    main()
