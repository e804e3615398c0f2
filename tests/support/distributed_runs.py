"""Runs a set of small circuits and writes what each rank got: launched under ``mpiexec`` by
``tests/provider/test_distributed.py`` (``python distributed_runs.py OUT_DIR``), and imported
by it for the single-process run to compare with; ``python distributed_runs.py OUT_DIR BATCH``
runs the pickled draws in the file ``BATCH`` instead (:func:`run_drawn`), ``--device-memory``
the circuits on opaque states (the host staging of GPU ranks) and ``--simulated-gpu`` one
small circuit on the CUDA kernels (under Numba's CUDA simulator).

Every circuit acts on the highest qubits (the global ones of a spread state): dense gates,
diagonals and controls there, mid-circuit measurement, reset and ``if_test`` on them, an
``initialize`` of every qubit, saves of the statevector, probabilities and expectation
values with X, Y and Z on them, and a noisy circuit (as trajectories and as a density
matrix).
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector
from qiskit.circuit.library import UnitaryGate
from qiskit.quantum_info import SparsePauliOp, random_unitary

from gpuprovider import GPUSimulator
from gpuprovider import device as devices
from gpuprovider.compile.program import BATCHED_TRAJECTORY_MAX_QUBITS

SHOTS = 600
SEED = 11


def _random_gates(circuit: QuantumCircuit, count: int, rng: np.random.Generator) -> None:
    """Dense, permutation, diagonal and controlled gates on random qubits, the highest drawn
    as often as the others."""
    n = circuit.num_qubits
    for _ in range(count):
        kind = int(rng.integers(8))
        angle = float(rng.uniform(0, 2 * np.pi))
        a, b, c = (int(q) for q in rng.choice(n, 3, replace=False))
        if kind == 0:
            circuit.h(a)
        elif kind == 1:
            circuit.ry(angle, a)
        elif kind == 2:
            circuit.cx(a, b)
        elif kind == 3:
            circuit.rzz(angle, a, b)
        elif kind == 4:
            circuit.cp(angle, a, b)
        elif kind == 5:
            circuit.swap(a, b)
        elif kind == 6:
            circuit.ccx(a, b, c)
        else:
            circuit.append(UnitaryGate(random_unitary(4, seed=int(rng.integers(1 << 30)))),
                           [a, b])


def _observable(n: int) -> SparsePauliOp:
    """Terms with X, Y and Z on the highest qubits (a label's first letter is qubit n-1)."""
    labels = ["X" + "I" * (n - 1), "Y" + "Z" * (n - 2) + "X", "Z" * n,
              "I" * (n - 3) + "XYZ", "XX" + "I" * (n - 4) + "YY"]
    return SparsePauliOp(labels, [0.5, -0.3, 0.7, 0.2, 1.1])


def circuits() -> dict[str, QuantumCircuit]:
    """The circuits, by name."""
    rng = np.random.default_rng(5)
    made = {}

    gates = QuantumCircuit(9)
    _random_gates(gates, 60, rng)
    gates.save_statevector("sv")
    gates.save_expectation_value(_observable(9), range(9), "ev")
    gates.save_probabilities([0, 7, 8], "p")
    gates.measure_all()
    made["gates"] = gates

    dynamic = QuantumCircuit(7, 3)
    _random_gates(dynamic, 25, rng)
    dynamic.measure(6, 0)
    with dynamic.if_test((dynamic.clbits[0], 1)):
        dynamic.x(5)
        dynamic.h(0)
    dynamic.reset(6)
    dynamic.measure(1, 1)
    _random_gates(dynamic, 15, rng)
    dynamic.save_expectation_value(_observable(7), range(7), "ev")
    dynamic.measure(5, 2)
    made["dynamic"] = dynamic

    prepared = QuantumCircuit(8)
    vector = rng.normal(size=256) + 1j * rng.normal(size=256)
    prepared.initialize(vector / np.linalg.norm(vector), range(8))
    prepared.append(UnitaryGate(random_unitary(8, seed=3)), [7, 6, 0])
    prepared.save_statevector("sv")
    prepared.measure_all()
    made["prepared"] = prepared

    qft = QuantumCircuit(10)
    for target in reversed(range(10)):
        qft.h(target)
        for control in range(target):
            qft.cp(np.pi / 2 ** (target - control), control, target)
    _random_gates(qft, 30, rng)
    for control, target in ((9, 0), (8, 3), (9, 8), (2, 9)):
        qft.crx(float(rng.uniform(0, 2 * np.pi)), control, target)
        qft.h(target)
    qft.append(UnitaryGate(random_unitary(4, seed=9)).control(2, ctrl_state=2), [8, 9, 1, 2])
    qft.save_statevector("sv")
    qft.save_probabilities([9, 8, 1], "p")
    qft.measure_all()
    made["planned"] = qft

    early = QuantumCircuit(10, 10)
    for q in range(10):
        early.ry(0.4 + 0.2 * q, q)
    for q in range(9):
        early.cx(q, q + 1)
    early.measure(range(4), range(4))  # final: later swaps may move these qubits' data
    for q in (9, 8):
        early.ry(0.9, q)
        early.h(q)
    early.append(UnitaryGate(random_unitary(4, seed=12)), [9, 5])
    early.cx(8, 4)
    early.measure(range(4, 10), range(4, 10))
    made["early_final"] = early

    # More measured qubits than MARGINAL_SAMPLING_MAX_QUBITS: drawn from the whole state,
    # which the spread run first puts in the single process's layout (SWAP gates relabelled).
    wide = QuantumCircuit(18, 17)
    for q in range(18):
        wide.ry(0.3 + 0.1 * q, q)
    for q in range(17):
        wide.cx(q, q + 1)
    wide.swap(0, 17)
    wide.swap(3, 9)
    wide.h([17, 16])
    wide.append(UnitaryGate(random_unitary(4, seed=14)), [17, 2])
    measured = [q for q in rng.permutation(18).tolist() if q != 5]
    wide.measure(measured, range(17))
    made["wide_final"] = wide
    return made


PLANNED = {"planned", "early_final"}
"""Circuits run on a device that plans every state (the CPU plans 12 qubits and more)."""


NOISY_METHODS = ("statevector", "density_matrix")
"""Trajectories, and the density matrix (what "automatic" picks for the noisy circuit)."""
NOISY_SHOTS = 100
"""Fewer shots: a trajectory's gates on global qubits swap in and back (a noisy program is
not planned)."""


def noisy() -> QuantumCircuit:
    """Ten qubits (wider than a batch of trajectories: the shots branch on the spread state)
    with gates on the global ones, a mid-circuit measurement and a reset, for
    :func:`noise_model`."""
    rng = np.random.default_rng(7)
    width = BATCHED_TRAJECTORY_MAX_QUBITS + 1
    circuit = QuantumCircuit(width, width)
    for _ in range(2):
        for q in range(width):
            circuit.ry(float(rng.uniform(0, 3)), q)
        for q in range(width - 1):
            circuit.cx(q, q + 1)
    circuit.cx(width - 1, 0)
    circuit.h(width - 1)
    circuit.measure(width - 1, width - 1)
    circuit.reset(width - 2)
    circuit.h(width - 2)
    circuit.measure(range(width - 1), range(width - 1))
    return circuit


def noise_model():
    """Thermal relaxation (a Kraus channel) on the one-qubit gates, depolarizing (a mixture
    of unitaries) on ``cx`` and a readout error on every qubit."""
    from qiskit_aer import noise

    model = noise.NoiseModel()
    model.add_all_qubit_quantum_error(noise.thermal_relaxation_error(50, 60, 3), ["ry", "h"])
    model.add_all_qubit_quantum_error(noise.depolarizing_error(0.05, 2), ["cx"])
    model.add_all_qubit_readout_error(noise.ReadoutError([[0.95, 0.05], [0.1, 0.9]]))
    return model


def small_dynamic() -> QuantumCircuit:
    """Six qubits: dense, controlled and diagonal gates on the global ones, a mid-circuit
    measurement and a reset of them, a SWAP, a statevector save and final measurements (few
    gates: under Numba's CUDA simulator every kernel launch takes a while)."""
    circuit = QuantumCircuit(6, 6)
    circuit.h(5)
    circuit.cx(5, 0)
    circuit.ry(0.3, 4)
    circuit.cx(4, 1)
    circuit.rzz(0.7, 5, 2)
    circuit.h(3)
    circuit.measure(5, 5)
    circuit.reset(4)
    circuit.h(4)
    circuit.cp(0.4, 4, 5)
    circuit.swap(5, 1)
    circuit.save_statevector("sv")
    circuit.measure(range(5), range(5))
    return circuit


def simulated_gpu():
    """The CUDA kernel set (``kernels/cuda.py``) as a usable GPU device: under Numba's CUDA
    simulator (``NUMBA_ENABLE_CUDASIM=1``) its kernels run on the host."""
    from gpuprovider.device import Device, DeviceReport, host_available_memory
    from gpuprovider.kernels import cuda
    from gpuprovider.kernels.policy import GPU_POLICY

    report = DeviceReport("GPU", True, "the CUDA kernels under Numba's CUDA simulator",
                          "simulated GPU", host_available_memory())
    return Device(GPU_POLICY, lambda: report, lambda: cuda, host_available_memory)


def run_small(device: Any, distributed: str | bool) -> dict[str, Any]:
    """:func:`small_dynamic`'s counts, memory, saved statevector and metadata on ``device``."""
    backend = GPUSimulator(device=device, distributed=distributed)
    return _outcome(backend.run(small_dynamic(), shots=SHOTS, seed_simulator=SEED,
                                memory=True).result())


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(entry) for key, entry in value.items()}
    if isinstance(value, list):
        return [_plain(entry) for entry in value]
    return np.asarray(value)


def estimator_values(distributed: str | bool) -> np.ndarray:
    """EstimatorV2's values of an observable with X, Y and Z on the global qubits over a
    parameter sweep of a 7-qubit circuit."""
    from gpuprovider.primitives.estimator import EstimatorV2

    angles = ParameterVector("a", 7)
    circuit = QuantumCircuit(7)
    for qubit in range(7):
        circuit.ry(angles[qubit], qubit)
    _random_gates(circuit, 20, np.random.default_rng(8))
    values = np.random.default_rng(9).uniform(-np.pi, np.pi, (3, 7))
    estimator = EstimatorV2(options={"backend_options": {"device": "CPU",
                                                         "distributed": distributed}})
    result = estimator.run([(circuit, _observable(7), values)]).result()
    return np.asarray(result[0].data.evs)


def run_all(distributed: str | bool, device_memory: bool = False) -> dict[str, dict[str, Any]]:
    """Each circuit's counts, memory, saved values and distributed-run metadata. Every job
    is submitted before the first result is asked for: they must not interleave. With
    ``device_memory``, on the CPU kernels behind opaque states
    (:func:`~support.device_memory.boxed_device`: a spread state is then staged through host
    memory, as on GPU ranks)."""
    base = devices.CPU
    if device_memory:
        from support.device_memory import boxed_device

        base = boxed_device()
    planner = base.with_policy(plan_min_qubits=0)
    jobs = {}
    for name, circuit in circuits().items():
        device = planner if name in PLANNED else base
        backend = GPUSimulator(device=device, distributed=distributed)
        jobs[name] = backend.run(circuit, shots=SHOTS, seed_simulator=SEED, memory=True)
    for method in NOISY_METHODS:
        backend = GPUSimulator(device=base, distributed=distributed, method=method,
                               noise_model=noise_model())
        jobs[f"noisy {method}"] = backend.run(noisy(), shots=NOISY_SHOTS, seed_simulator=SEED,
                                              memory=True)
    results = {name: _outcome(job.result()) for name, job in jobs.items()}
    results["estimator"] = {"saved": {"evs": estimator_values(distributed)}}
    return results


def _outcome(result) -> dict[str, Any]:
    data = result.data(0)
    return {
        "counts": result.get_counts(0),
        "memory": result.get_memory(0),
        "saved": {label: _plain(value) for label, value in data.items()
                  if label not in ("counts", "memory")},
        "metadata": result.results[0].metadata.get("distributed"),
    }


def run_batch(batch: list[QuantumCircuit], distributed: str | bool) -> list[dict[str, Any]]:
    """Each circuit's counts, memory, saved values and metadata, one job after another: the
    even ones on a device that plans every state, the odd ones op by op."""
    planner = devices.CPU.with_policy(plan_min_qubits=0)
    outcomes = []
    for index, circuit in enumerate(batch):
        backend = GPUSimulator(device=planner if index % 2 == 0 else "CPU",
                               distributed=distributed)
        outcomes.append(_outcome(backend.run(circuit, shots=SHOTS, seed_simulator=SEED + index,
                                             memory=True).result()))
    return outcomes


def run_primitives(estimator_pubs: list[tuple], sampler_circuits: list[QuantumCircuit],
                   distributed: str | bool) -> dict[str, list]:
    """EstimatorV2's exact values of each ``(circuit, observable, parameter values)`` pub
    and SamplerV2's counts of each circuit (a seeded run per list)."""
    from gpuprovider.primitives import EstimatorV2, SamplerV2

    options = {"backend_options": {"device": "CPU", "distributed": distributed}}
    estimator = EstimatorV2(options=options)
    values = [np.asarray(result.data.evs) for result in estimator.run(estimator_pubs).result()]
    sampler = SamplerV2(default_shots=SHOTS, seed=SEED, options=options)
    counts = [result.join_data().get_counts()
              for result in sampler.run(sampler_circuits).result()]
    return {"estimator": values, "sampler": counts}


def run_drawn(drawn: dict[str, list], distributed: str | bool) -> dict[str, list]:
    """:func:`run_batch` of ``drawn["circuits"]`` and :func:`run_primitives` of
    ``drawn["estimator"]`` and ``drawn["sampler"]``."""
    return {"run": run_batch(drawn["circuits"], distributed),
            **run_primitives(drawn["estimator"], drawn["sampler"], distributed)}


def main(out: str, batch: str | None = None) -> None:
    """Write this rank's results to ``OUT/rank{r}.pkl``: of :func:`run_all` (with ``batch``
    "--device-memory", on opaque states), or of :func:`run_drawn` on the pickled draws in the
    file ``batch``."""
    from mpi4py import MPI

    if batch is None or batch == "--device-memory":
        results: Any = run_all("auto", device_memory=batch is not None)
    elif batch == "--simulated-gpu":
        results = {"small": run_small(simulated_gpu(), "auto")}
    else:
        results = run_drawn(pickle.loads(Path(batch).read_bytes()), "auto")
    rank = MPI.COMM_WORLD.Get_rank()
    Path(out, f"rank{rank}.pkl").write_bytes(pickle.dumps(results))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests: ``support``
    main(*sys.argv[1:])
