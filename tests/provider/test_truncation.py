"""Idle-qubit truncation: circuits shaped for devices (most qubits idle) run on their active
qubits, and every answer comes out as without truncation."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp, Statevector
from qiskit.transpiler import generate_preset_pass_manager
from testkit import ALPHA, chi_square_pvalue

from gpuprovider import GPUSimulator
from gpuprovider.exceptions import CapacityError
from gpuprovider.primitives import EstimatorV2, SamplerV2

ACTIVE = [3, 11, 12, 14, 17]


def wide_circuit(width: int = 60, measure: bool = True) -> QuantumCircuit:
    """A circuit on ``width`` (at least 18) qubits that acts on ``ACTIVE`` only (barriers and
    delays on all), with two registers."""
    circuit = QuantumCircuit(width, name="wide")
    if measure:
        circuit.add_register(*_registers())
    circuit.barrier()
    circuit.h(ACTIVE[0])
    for a, b in zip(ACTIVE, ACTIVE[1:]):
        circuit.cx(a, b)
    circuit.ry(0.4, ACTIVE[2])
    circuit.rzz(0.7, ACTIVE[1], ACTIVE[4])
    circuit.delay(100, range(width))
    circuit.barrier()
    if measure:
        circuit.measure(ACTIVE, list(range(5)))
    return circuit


def _registers():
    from qiskit import ClassicalRegister

    return ClassicalRegister(2, "low"), ClassicalRegister(3, "high")


def compact(circuit: QuantumCircuit) -> QuantumCircuit:
    """The same circuit on its active qubits only."""
    index = {q: i for i, q in enumerate(ACTIVE)}
    small = QuantumCircuit(len(ACTIVE), name=circuit.name)
    for register in circuit.cregs:
        small.add_register(register)
    for instruction in circuit.data:
        if instruction.operation.name in ("barrier", "delay"):
            continue
        qubits = [small.qubits[index[circuit.find_bit(q).index]] for q in instruction.qubits]
        small.append(instruction.operation, qubits, instruction.clbits)
    return small


def test_a_wide_circuit_runs_on_its_active_qubits_with_the_exact_distribution(backend):
    circuit = wide_circuit()
    result = backend.run(circuit, shots=4000, seed_simulator=5).result()
    expected = Statevector(compact(circuit).remove_final_measurements(inplace=False))
    probabilities = {" ".join([key[:3], key[3:]]): p
                     for key, p in expected.probabilities_dict().items()}
    assert chi_square_pvalue(result.get_counts(), probabilities) > ALPHA
    metadata = result.results[0].metadata
    assert metadata["active_input_qubits"] == ACTIVE
    assert metadata["num_qubits"] == len(ACTIVE)
    assert metadata["input_qubit_map"] == [[q, k] for k, q in reversed(list(enumerate(ACTIVE)))]
    assert metadata["remapped_qubits"] is True
    assert result.results[0].header["n_qubits"] == 60


def test_counts_and_memory_are_those_of_the_untruncated_run_for_one_seed():
    """Same seed, same shots: truncation keeps the state's index order over the nonzero
    amplitudes, so the same uniforms give the same outcomes."""
    circuit = wide_circuit(width=20)
    runs = [GPUSimulator(device="CPU", enable_truncation=flag).run(
        circuit, shots=500, seed_simulator=9, memory=True).result() for flag in (True, False)]
    assert runs[0].get_memory() == runs[1].get_memory()
    assert runs[0].get_counts() == runs[1].get_counts()
    assert runs[1].results[0].metadata["num_qubits"] == 20
    assert runs[1].results[0].metadata["input_qubit_map"] == []
    assert runs[1].results[0].metadata["active_input_qubits"] == ACTIVE


def test_saved_values_on_active_and_idle_qubits_are_exact(backend, tolerance):
    circuit = wide_circuit(measure=False)
    state = Statevector(compact(circuit))
    operator = SparsePauliOp(["ZXZ", "YYI", "IIZ"], [0.5, -1.0, 2.0])
    circuit.save_probabilities([ACTIVE[4], 0, ACTIVE[1]], label="p")  # qubit 0 is idle
    circuit.save_expectation_value(operator, [ACTIVE[2], ACTIVE[0], 1], label="e")
    circuit.save_density_matrix([ACTIVE[3], 5], label="rho")
    data = backend.run(circuit, shots=1).result().data(0)

    zero = Statevector.from_label("0")
    with_idle = zero.tensor(state)  # qubit 5 of ``state``: the idle qubit
    np.testing.assert_allclose(data["p"], with_idle.probabilities([4, 5, 1]), atol=tolerance)
    assert data["e"] == pytest.approx(
        with_idle.expectation_value(operator, [2, 0, 5]).real, abs=tolerance * 10)
    from qiskit.quantum_info import partial_trace

    rho = partial_trace(with_idle, [0, 1, 2, 4])  # keeps qubits 3 and 5 (3 first)
    np.testing.assert_allclose(data["rho"].data, rho.data, atol=tolerance * 10)


def test_capacity_is_judged_on_the_active_qubits():
    circuit = QuantumCircuit(150, 2)
    circuit.h(100)
    circuit.cx(100, 149)
    circuit.measure([100, 149], [0, 1])
    counts = GPUSimulator(device="CPU").run(circuit, shots=100, seed_simulator=1) \
        .result().get_counts()
    assert set(counts) <= {"00", "11"} and sum(counts.values()) == 100
    with pytest.raises(CapacityError, match="150 qubits"):
        GPUSimulator(device="CPU", enable_truncation=False).run(circuit)


def test_estimator_observables_on_idle_qubits():
    """X or Y on an idle qubit reads 0, Z reads +1; shot-based estimates draw the same
    numbers as without truncation."""
    circuit = wide_circuit(width=18, measure=False)
    width = circuit.num_qubits
    observables = [
        SparsePauliOp.from_sparse_list([("Z", [0], 1.0), ("XZ", [1, ACTIVE[0]], 2.0),
                                        ("ZZ", [ACTIVE[1], ACTIVE[2]], -0.5)], width),
        SparsePauliOp.from_sparse_list([("Y", [7], 1.0), ("I", [], 0.25),
                                        ("XY", [ACTIVE[3], 16], 0.3)], width),
    ]
    expected = [Statevector(circuit).expectation_value(o).real for o in observables]
    for precision in (0.0, 0.05):
        values = []
        for truncate in (True, False):
            estimator = EstimatorV2(seed=4, options={"backend_options": {
                "device": "CPU", "enable_truncation": truncate}})
            values.append(estimator.run([(circuit, observables)],
                                        precision=precision).result()[0].data)
        np.testing.assert_allclose(values[0].evs, values[1].evs, atol=1e-12)
        np.testing.assert_allclose(values[0].stds, values[1].stds, atol=1e-12)
        if precision == 0:
            np.testing.assert_allclose(values[0].evs, expected, atol=1e-10)


def test_device_transpiled_circuits_run_through_run_and_both_primitives():
    """qiskit-ibm-runtime's fake 127-qubit device: the transpiled circuit (ecr, rz, sx,
    delays and barriers on idle qubits) gives the ideal answer."""
    fake_provider = pytest.importorskip("qiskit_ibm_runtime.fake_provider")
    device = fake_provider.FakeSherbrooke()
    manager = generate_preset_pass_manager(optimization_level=1, backend=device,
                                           seed_transpiler=7)
    logical = QuantumCircuit(4)
    logical.h(0)
    logical.cx(0, 1)
    logical.ry(0.8, 2)
    logical.cx(1, 2)
    logical.cx(2, 3)
    ideal = Statevector(logical)
    measured = logical.copy()
    measured.measure_all()
    physical = manager.run(measured)
    assert physical.num_qubits == 127

    backend = GPUSimulator(device="CPU")
    counts = backend.run(physical, shots=4000, seed_simulator=2).result().get_counts()
    assert chi_square_pvalue(counts, ideal.probabilities_dict()) > ALPHA
    bits = SamplerV2(seed=3, backend=backend).run([physical], shots=4000).result()[0]
    assert chi_square_pvalue(bits.data.meas.get_counts(), ideal.probabilities_dict()) > ALPHA

    unmeasured = manager.run(logical)
    observable = SparsePauliOp(["ZZII", "XXXX", "IYZI", "IIIZ"], [1.0, 0.5, 0.2, -0.7])
    evs = EstimatorV2(backend=backend).run(
        [(unmeasured, observable.apply_layout(unmeasured.layout))]).result()[0].data.evs
    assert float(evs) == pytest.approx(ideal.expectation_value(observable).real, abs=1e-10)
