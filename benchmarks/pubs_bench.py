"""Many single-set pubs of one circuit (a VQE's or a QNN's evaluations in one call): the time
to submit and to finish, ours beside qiskit-aer's EstimatorV2, in one run.

    python benchmarks/pubs_bench.py --pubs 880 --qubits 4

The circuit is lowered once for all pubs (issue 13); each pub is then bound, planned and read
on its own.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from qiskit.quantum_info import SparsePauliOp  # noqa: E402
from testkit import parameterized_circuit, random_values  # noqa: E402

from gpuprovider.primitives import EstimatorV2  # noqa: E402


def timed(estimator, pubs) -> tuple[float, float]:
    """(seconds until run() returned, seconds until the result was in)."""
    start = time.perf_counter()
    job = estimator.run(pubs)
    submitted = time.perf_counter() - start
    job.result()
    return submitted, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pubs", type=int, default=880)
    parser.add_argument("--qubits", type=int, default=4)
    parser.add_argument("--device", default="CPU")
    args = parser.parse_args()

    circuit = parameterized_circuit(args.qubits, layers=2, seed=1)
    values = random_values(circuit, (args.pubs,), seed=2)
    observable = SparsePauliOp(["Z" * args.qubits, "X" * args.qubits])
    pubs = [(circuit, observable, row) for row in values]
    estimators = {"gpuprovider": EstimatorV2(options={"backend_options": {"device": args.device}})}
    try:
        from qiskit_aer.primitives import EstimatorV2 as AerEstimatorV2

        estimators["aer"] = AerEstimatorV2()
    except ImportError:
        print("qiskit-aer is not installed: ours only")
    print(f"{args.pubs} single-set pubs of one {args.qubits}-qubit circuit "
          f"({sum(circuit.count_ops().values())} gates), 2 terms each")
    ours = None
    for name, estimator in estimators.items():
        estimator.run(pubs[:2]).result()  # warm-up
        submitted, total = timed(estimator, pubs)
        ours = ours or total
        print(f"{name:<12} run() {submitted:7.3f} s   result {total:7.3f} s   "
              f"peer/ours {total / ours:5.2f}")


if __name__ == "__main__":
    main()
