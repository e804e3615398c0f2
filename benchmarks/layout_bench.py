"""Circuits transpiled for a device, most of whose qubits are idle, against qiskit-aer.

    python benchmarks/layout_bench.py [--shots 4000] [--repeats 7] [--device CPU|GPU]

Each workload is a logical circuit (GHZ and rotation layers on ``--active`` qubits, final
measurements) transpiled with ``generate_preset_pass_manager(optimization_level=1)`` for a
fake device of qiskit-ibm-runtime: FakeMumbaiV2 (27 qubits) and FakeSherbrooke (127), so the
circuit carries the device's width, its basis gates and a layout on a few physical qubits.
Both simulators drop the idle qubits (Aer's and our ``enable_truncation``); ours is also
timed with ``enable_truncation=False`` where the full width fits. Each entry is the median of
``--repeats`` ``run().result()`` calls after one warm-up, in one process; the table gives
aer/ours ratios. This machine is shared: trust ratios from one run, not absolute times.
"""

from __future__ import annotations

import argparse
import statistics
import warnings
from collections.abc import Callable

from qiskit import QuantumCircuit
from qiskit.transpiler import generate_preset_pass_manager

from gpuprovider import GPUSimulator
from gpuprovider.benchsuite import time_runner

FULL_WIDTH_LIMIT = 28
"""Widest device timed without truncation (2**28 amplitudes: 4 GiB in double)."""


def logical_circuit(active: int) -> QuantumCircuit:
    circuit = QuantumCircuit(active)
    circuit.h(0)
    for q in range(active - 1):
        circuit.cx(q, q + 1)
    for layer in range(3):
        for q in range(active):
            circuit.ry(0.1 + 0.2 * q + layer, q)
        for q in range(layer % 2, active - 1, 2):
            circuit.cx(q, q + 1)
    circuit.measure_all()
    return circuit


def median_seconds(call: Callable[[], object], repeats: int) -> float:
    """Median of ``repeats`` timed calls after a warm-up (:func:`time_runner`)."""
    return statistics.median(time_runner(call, repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shots", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--active", type=int, default=5)
    parser.add_argument("--device", default="CPU")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    from qiskit_aer import AerSimulator
    from qiskit_ibm_runtime.fake_provider import FakeMumbaiV2, FakeSherbrooke

    aer = AerSimulator(method="statevector")
    rows = []
    for device in (FakeMumbaiV2(), FakeSherbrooke()):
        manager = generate_preset_pass_manager(optimization_level=1, backend=device,
                                               seed_transpiler=11)
        circuit = manager.run(logical_circuit(args.active))
        ours = GPUSimulator(device=args.device)
        timings = {
            "ours": median_seconds(lambda: ours.run(circuit, shots=args.shots,  # noqa: B023
                                                    seed_simulator=1).result(), args.repeats),
            "aer": median_seconds(lambda: aer.run(circuit, shots=args.shots,  # noqa: B023
                                                  seed_simulator=1).result(), args.repeats),
        }
        if circuit.num_qubits <= FULL_WIDTH_LIMIT:
            full = GPUSimulator(device=args.device, enable_truncation=False)
            timings["ours, no truncation"] = median_seconds(
                lambda: full.run(circuit, shots=args.shots,  # noqa: B023 (timed at once)
                                 seed_simulator=1).result(), 1)
        rows.append((device.name, circuit.num_qubits, timings))
    print(f"{'device':<18}{'qubits':>7}{'ours s':>10}{'aer s':>10}{'aer/ours':>10}"
          f"{'no-trunc s':>12}")
    for name, width, timings in rows:
        full = timings.get("ours, no truncation")
        print(f"{name:<18}{width:>7}{timings['ours']:>10.4f}{timings['aer']:>10.4f}"
              f"{timings['aer'] / timings['ours']:>10.2f}"
              f"{'' if full is None else f'{full:.3f}':>12}")


if __name__ == "__main__":
    main()
