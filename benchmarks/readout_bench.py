"""Pauli read-out beside qiskit-aer and Qiskit's Statevector, alternating on the same state.

    python benchmarks/readout_bench.py --qubits 16,20 --observables 10 --terms 20

The issue-6 read-out: ``--observables`` random ``SparsePauliOp`` of ``--terms`` terms each on a
random ``--qubits``-qubit state. Each round times, in turn, our CPU kernels' grouped read-out
of every term (``kernels.cpu.expectation_pauli_groups``, as EstimatorV2 calls it),
``qiskit_aer.quantum_info.AerStatevector.expectation_value`` per observable and
``qiskit.quantum_info.Statevector.expectation_value`` per observable; ratios are taken within a
round and their medians printed (above 1: we are faster), after one untimed round. Values are
checked against Statevector's.
"""

from __future__ import annotations

import argparse
import time
from statistics import median

import numpy as np
from qiskit.quantum_info import SparsePauliOp, Statevector

from gpuprovider.kernels import cpu
from gpuprovider.kernels.layout import group_by_x_mask


def _workload(num_qubits: int, observables: int, terms: int, dtype, seed: int):
    rng = np.random.default_rng(seed)
    state = rng.normal(size=1 << num_qubits) + 1j * rng.normal(size=1 << num_qubits)
    state = (state / np.linalg.norm(state)).astype(dtype)
    operators = [SparsePauliOp(["".join(rng.choice(list("IXYZ"), num_qubits))
                                for _ in range(terms)], rng.normal(size=terms))
                 for _ in range(observables)]
    return state, operators


def bench(num_qubits: int, observables: int, terms: int, precision: str, repeats: int) -> dict:
    from qiskit_aer.quantum_info import AerStatevector

    dtype = np.complex128 if precision == "double" else np.complex64
    state, operators = _workload(num_qubits, observables, terms, dtype, seed=num_qubits)
    weights = 1 << np.arange(num_qubits, dtype=np.int64)
    x_masks = np.concatenate([op.paulis.x.astype(np.int64) @ weights for op in operators])
    z_masks = np.concatenate([op.paulis.z.astype(np.int64) @ weights for op in operators])
    coefficients = np.concatenate([op.coeffs for op in operators])  # labels: Y is x=z=1
    group_x, starts, grouped_z, order = group_by_x_mask(x_masks, z_masks)
    bounds = np.cumsum([0] + [op.size for op in operators])

    def ours():
        values = np.empty(x_masks.size)
        values[order] = cpu.expectation_pauli_groups(state, group_x, starts, grouped_z)
        return [float(np.dot(coefficients[a:b].real, values[a:b]))
                for a, b in zip(bounds[:-1], bounds[1:])]

    aer_state = AerStatevector(state.astype(np.complex128))
    qiskit_state = Statevector(state.astype(np.complex128))
    runners = {
        "ours": ours,
        "aer": lambda: [aer_state.expectation_value(op).real for op in operators],
        "statevector": lambda: [qiskit_state.expectation_value(op).real for op in operators],
    }
    reference = runners["statevector"]()
    checked = np.max(np.abs(np.array(ours()) - reference))
    tolerance = 1e-9 if precision == "double" else 1e-4
    if checked > tolerance:
        raise AssertionError(f"our read-out differs from Statevector's by {checked:.2e}")
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    ratios = {name: median(t / o for t, o in zip(times[name], times["ours"]))
              for name in runners if name != "ours"}
    return {"qubits": num_qubits, "precision": precision, "terms": observables * terms,
            "seconds": {name: median(t) for name, t in times.items()}, "ratios": ratios,
            "max_diff": checked}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qubits", default="16,20")
    parser.add_argument("--observables", type=int, default=10)
    parser.add_argument("--terms", type=int, default=20)
    parser.add_argument("--precisions", default="double,single")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print("| qubits | precision | terms | ours ms | Aer ms | Statevector ms | Aer / ours | "
          "Statevector / ours | max diff |")
    print("|---|---|---|---|---|---|---|---|---|")
    for num_qubits in (int(q) for q in args.qubits.split(",")):
        for precision in args.precisions.split(","):
            row = bench(num_qubits, args.observables, args.terms, precision, args.repeats)
            seconds, ratios = row["seconds"], row["ratios"]
            print(f"| {num_qubits} | {precision} | {row['terms']} | "
                  f"{1e3 * seconds['ours']:.2f} | {1e3 * seconds['aer']:.2f} | "
                  f"{1e3 * seconds['statevector']:.1f} | {ratios['aer']:.2f} | "
                  f"{ratios['statevector']:.1f} | {row['max_diff']:.1e} |", flush=True)


if __name__ == "__main__":
    main()
