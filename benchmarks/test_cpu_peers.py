"""CPU benchmarks: gpuprovider beside qiskit-aer, qsim, qiskit.quantum_info.Statevector,
PennyLane's lightning.qubit, qulacs and qibojit (numba).

    pytest benchmarks/test_cpu_peers.py --benchmark-group-by=param:name,param:num_qubits

Each group times one circuit (family and size) on every simulator and precision in one run;
compare within a group. The circuits and simulator adapters are ``gpuprovider.benchsuite``'s,
the same as ``gpuprovider bench`` uses. Select with ``-k``, e.g. ``-k "qv and 20"``.
Statevector is skipped above 22 qubits and peers that are not installed are skipped, with the
reason. qsim computes in single precision only, qulacs in double only. Every simulator samples
1000 shots from its final state inside the timed call.
"""

from __future__ import annotations

import pytest

from gpuprovider import benchsuite

SIZES = [16, 18, 20, 22, 24, 26]
SHOTS = 1000
CASES = [
    pytest.param(simulator, precision, id=f"{simulator}-{precision}")
    for simulator, spec in benchsuite.SIMULATORS.items()
    for precision in spec.precisions
]


@pytest.mark.parametrize(("simulator", "precision"), CASES)
@pytest.mark.parametrize("num_qubits", SIZES)
@pytest.mark.parametrize("name", list(benchsuite.FAMILIES))
def test_peers(benchmark, name, num_qubits, simulator, precision):
    missing = benchsuite.missing_module(simulator)
    if missing:
        pytest.skip(missing)
    limit = benchsuite.SIMULATORS[simulator].max_qubits
    if limit is not None and num_qubits > limit:
        pytest.skip(f"{simulator} is not run above {limit} qubits")
    config = benchsuite.BenchConfig(device="CPU", shots=SHOTS)
    circuit = benchsuite.FAMILIES[name](num_qubits)
    run = benchsuite.SIMULATORS[simulator].prepare(circuit, precision, config)
    run()  # warm-up: JIT and caches
    benchmark.extra_info.update(simulator=simulator, precision=precision, shots=SHOTS)
    benchmark.pedantic(run, rounds=3, iterations=1)
