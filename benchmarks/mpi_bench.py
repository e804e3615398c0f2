"""One circuit on a state spread over MPI ranks: wall time, swaps and bytes exchanged.

    NUMBA_NUM_THREADS=1 mpiexec -n 4 python benchmarks/mpi_bench.py --circuit qv --qubits 28

Every rank runs the same script (``GPUSimulator(device="CPU")``, ``distributed="auto"``); rank 0
prints one Markdown row: ranks, circuit, qubits, seconds (``backend.run`` to ``result()``, after
a barrier), and the ``distributed`` metadata (global qubits, swaps, GiB exchanged). Run it with
``-n 1``, ``-n 2`` and ``-n 4`` for strong scaling (same qubits) and with one more qubit per
doubling of ranks for weak scaling. QV is ``quantum_volume(n, depth=n, seed=7)``; QFT is
``QFTGate(n)`` on ``|0...0>`` after a layer of ``h``; both measured, 1000 shots, double.
"""

from __future__ import annotations

import argparse
import time

from qiskit import QuantumCircuit, transpile
from qiskit.circuit.library import QFTGate, quantum_volume

from gpuprovider import GPUSimulator


def circuit(kind: str, num_qubits: int) -> QuantumCircuit:
    if kind == "qv":
        built = quantum_volume(num_qubits, depth=num_qubits, seed=7)
    else:
        built = QuantumCircuit(num_qubits)
        built.h(range(num_qubits))
        built.append(QFTGate(num_qubits), range(num_qubits))
    built.measure_all()
    return built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--circuit", choices=("qv", "qft"), default="qv")
    parser.add_argument("--qubits", type=int, default=22)
    parser.add_argument("--shots", type=int, default=1000)
    args = parser.parse_args()
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    backend = GPUSimulator(device="CPU")
    program = transpile(circuit(args.circuit, args.qubits), backend, optimization_level=0)
    comm.Barrier()
    start = time.perf_counter()
    result = backend.run(program, shots=args.shots, seed_simulator=11).result()
    seconds = time.perf_counter() - start
    if comm.Get_rank() == 0:
        spread = result.results[0].metadata.get("distributed") or {}
        exchanged = spread.get("bytes_exchanged", 0) / 2**30
        print(f"| {comm.Get_size()} | {args.circuit.upper()}-{args.qubits} | {seconds:.2f} | "
              f"{spread.get('global_qubits', 0)} | {spread.get('swaps', 0)} | "
              f"{exchanged:.2f} |", flush=True)


if __name__ == "__main__":
    main()
