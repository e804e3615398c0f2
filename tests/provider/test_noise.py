"""Noisy simulation against qiskit-aer with the same NoiseModel: every error type, on GHZ, a
random and a dynamic circuit, by a two-sample chi-square test; the same test rejects the
model with doubled error rates, so it has the power to see a wrong answer."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from testkit import ALPHA, chi_square_pvalue, homogeneity_pvalue

from gpuprovider import GPUSimulator
from gpuprovider.benchsuite import ghz as ghz_circuit
from gpuprovider.exceptions import InvalidCircuitError, InvalidOptionError

noise = pytest.importorskip("qiskit_aer.noise")
AerSimulator = pytest.importorskip("qiskit_aer").AerSimulator

SHOTS = 8_000
ONE_QUBIT_GATES = ["h", "x", "sx", "rz", "ry"]


def _scaled(scale: float):
    """Per error type: a function of the scale giving a NoiseModel (scale 2: doubled
    rates)."""
    def model(add) -> noise.NoiseModel:
        built = noise.NoiseModel()
        add(built)
        return built

    kinds = {
        "depolarizing": lambda m: (
            m.add_all_qubit_quantum_error(noise.depolarizing_error(0.04 * scale, 1),
                                          ONE_QUBIT_GATES),
            m.add_all_qubit_quantum_error(noise.depolarizing_error(0.08 * scale, 2), ["cx"])),
        "pauli": lambda m: m.add_all_qubit_quantum_error(
            noise.pauli_error([("X", 0.05 * scale), ("Z", 0.05 * scale),
                               ("I", 1 - 0.1 * scale)]), ONE_QUBIT_GATES),
        "two-qubit pauli, local": lambda m: m.add_quantum_error(
            noise.pauli_error([("XZ", 0.1 * scale), ("II", 1 - 0.1 * scale)]), ["cx"], [0, 1]),
        "amplitude damping": lambda m: m.add_all_qubit_quantum_error(
            noise.amplitude_damping_error(0.1 * scale), ONE_QUBIT_GATES),
        "phase damping": lambda m: m.add_all_qubit_quantum_error(
            noise.phase_damping_error(0.15 * scale), ONE_QUBIT_GATES),
        "thermal relaxation": lambda m: m.add_all_qubit_quantum_error(
            noise.thermal_relaxation_error(50, 60, 3 * scale), ONE_QUBIT_GATES),
        "thermal relaxation, excited": lambda m: m.add_all_qubit_quantum_error(
            noise.thermal_relaxation_error(40, 30, 3 * scale, excited_state_population=0.3),
            ONE_QUBIT_GATES),
        "reset error": lambda m: m.add_all_qubit_quantum_error(
            noise.reset_error(0.05 * scale, 0.03 * scale), ONE_QUBIT_GATES),
        "composed": lambda m: m.add_all_qubit_quantum_error(
            noise.depolarizing_error(0.06 * scale, 1).compose(
                noise.amplitude_damping_error(0.1 * scale)), ONE_QUBIT_GATES),
        "tensored": lambda m: m.add_all_qubit_quantum_error(
            noise.amplitude_damping_error(0.08 * scale).tensor(
                noise.depolarizing_error(0.06 * scale, 1)), ["cx"]),
        "coherent unitary": lambda m: m.add_all_qubit_quantum_error(
            noise.coherent_unitary_error(_rx(0.3 * scale)), ONE_QUBIT_GATES),
        "measure error": lambda m: m.add_all_qubit_quantum_error(
            noise.pauli_error([("X", 0.06 * scale), ("I", 1 - 0.06 * scale)]), ["measure"]),
        "reset instruction error": lambda m: m.add_all_qubit_quantum_error(
            noise.pauli_error([("X", 0.1 * scale), ("I", 1 - 0.1 * scale)]), ["reset"]),
        "readout, all qubits": lambda m: m.add_all_qubit_readout_error(
            noise.ReadoutError([[1 - 0.04 * scale, 0.04 * scale],
                                [0.08 * scale, 1 - 0.08 * scale]])),
        "readout, local": lambda m: m.add_readout_error(
            noise.ReadoutError([[1 - 0.1 * scale, 0.1 * scale], [0.05 * scale,
                                                                  1 - 0.05 * scale]]), [1]),
    }
    return {name: (lambda add=add: model(add)) for name, add in kinds.items()}


def _rx(angle: float) -> np.ndarray:
    c, s = np.cos(angle / 2), np.sin(angle / 2)
    return np.array([[c, -1j * s], [-1j * s, c]])


ERROR_TYPES = list(_scaled(1.0))


def ghz() -> QuantumCircuit:
    circuit = QuantumCircuit(3)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.cx(1, 2)
    circuit.sx(2)
    circuit.measure_all()
    return circuit


def random_circuit() -> QuantumCircuit:
    rng = np.random.default_rng(5)
    circuit = QuantumCircuit(4)
    for _ in range(12):
        a, b = (int(q) for q in rng.choice(4, 2, replace=False))
        circuit.ry(float(rng.uniform(0, np.pi)), a)
        circuit.rz(float(rng.uniform(0, np.pi)), b)
        circuit.cx(a, b)
    circuit.measure_all()
    return circuit


def dynamic_circuit() -> QuantumCircuit:
    circuit = QuantumCircuit(3, 3)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure(0, 0)
    with circuit.if_test((circuit.clbits[0], 1)):
        circuit.x(2)
    circuit.reset(1)
    circuit.h(1)
    circuit.cx(1, 2)
    circuit.measure([1, 2], [1, 2])
    return circuit


CIRCUITS = {"ghz": ghz, "random": random_circuit, "dynamic": dynamic_circuit}


AER_SHOTS = 4 * SHOTS
"""Aer's reference samples are larger (they are cheap), so that the two-sample test's noise
is mostly ours."""


def counts(simulator, circuit: QuantumCircuit, seed: int, shots: int = SHOTS) -> dict[str, int]:
    return simulator.run(circuit, shots=shots, seed_simulator=seed).result().get_counts()


CASES = [("ghz", "double", "statevector"), ("ghz", "single", "statevector"),
         ("random", "double", "statevector"), ("dynamic", "double", "statevector"),
         ("dynamic", "single", "statevector"), ("ghz", "double", "density_matrix"),
         ("ghz", "single", "density_matrix"), ("random", "double", "automatic")]
"""Circuits, precisions and methods: both precisions on the small circuits (the random one,
the slowest under noise, in double); trajectories (statevector) and the density matrix, which
"automatic" picks for these small circuits (the dynamic circuit runs as a statevector)."""


@pytest.mark.parametrize(("circuit_name", "precision", "method"), CASES,
                         ids=["-".join(c) for c in CASES])
@pytest.mark.parametrize("error_type", ERROR_TYPES)
def test_noisy_counts_match_aer_and_doubled_noise_does_not(device, precision, error_type,
                                                           circuit_name, method):
    circuit = CIRCUITS[circuit_name]()
    model = _scaled(1.0)[error_type]()
    doubled = _scaled(2.0)[error_type]()
    backend = GPUSimulator(device=device, precision=precision, noise_model=model,
                           method=method)
    result = backend.run(circuit, shots=SHOTS, seed_simulator=11).result()
    ours = result.get_counts()
    assert sum(ours.values()) == SHOTS
    if method == "density_matrix" and result.results[0].metadata["sampled"] is False:
        assert result.results[0].metadata["method"] == "density_matrix"
    aer = counts(AerSimulator(noise_model=model), circuit, seed=12, shots=AER_SHOTS)
    p_same = homogeneity_pvalue(ours, aer)
    assert p_same > ALPHA, (error_type, circuit_name, p_same, ours, aer)
    aer_doubled = counts(AerSimulator(noise_model=doubled), circuit, seed=13, shots=AER_SHOTS)
    ideal = counts(AerSimulator(), circuit, seed=14, shots=AER_SHOTS)
    if homogeneity_pvalue(aer_doubled, aer) < ALPHA:  # the error shows in this circuit
        assert homogeneity_pvalue(ours, aer_doubled) < ALPHA, (error_type, circuit_name)
    else:  # e.g. a reset error on a circuit without resets: noise-free there too
        assert homogeneity_pvalue(ours, ideal) > ALPHA


def test_quantum_channels_in_the_circuit_survive_transpile_and_match_aer(device):
    """A Kraus, a SuperOp and an Aer QuantumError appended to a circuit: transpile() against
    our Target keeps them (it had failed to synthesize "kraus"), and the counts are Aer's."""
    from qiskit import transpile
    from qiskit.quantum_info import Kraus, SuperOp

    damping = Kraus(noise.amplitude_damping_error(0.3).to_quantumchannel())
    circuit = QuantumCircuit(2)
    circuit.x(0)
    circuit.h(1)
    circuit.append(damping, [0])
    circuit.append(SuperOp(damping), [0])
    circuit.append(noise.phase_damping_error(0.4), [1])
    circuit.h(1)
    circuit.measure_all()
    backend = GPUSimulator(device=device)
    transpiled = transpile(circuit, backend)
    assert [i.operation.name for i in transpiled.data].count("kraus") == 2
    ours = counts(backend, transpiled, seed=3)
    aer = counts(AerSimulator(), transpile(circuit, AerSimulator()), seed=4, shots=AER_SHOTS)
    assert homogeneity_pvalue(ours, aer) > ALPHA


def test_the_same_seed_gives_the_same_noisy_counts(device):
    model = _scaled(1.0)["depolarizing"]()
    backend = GPUSimulator(device=device, noise_model=model)
    first = backend.run(ghz(), shots=2000, seed_simulator=5).result().get_counts()
    assert backend.run(ghz(), shots=2000, seed_simulator=5).result().get_counts() == first


def test_noisy_memory_agrees_with_noisy_counts(device):
    model = _scaled(1.0)["readout, all qubits"]()
    result = GPUSimulator(device=device, noise_model=model).run(
        ghz(), shots=3000, seed_simulator=2, memory=True).result()
    memory = result.get_memory()
    assert len(memory) == 3000
    counted = {key: memory.count(key) for key in set(memory)}
    assert counted == result.get_counts()
    aer = counts(AerSimulator(noise_model=model), ghz(), seed=3, shots=AER_SHOTS)
    assert homogeneity_pvalue(counted, aer) > ALPHA


def test_the_sampler_runs_noisy_circuits(device):
    from gpuprovider.primitives import SamplerV2

    model = _scaled(1.0)["amplitude damping"]()
    sampler = SamplerV2(backend=GPUSimulator(device=device, noise_model=model), seed=4)
    ours = sampler.run([ghz()], shots=SHOTS).result()[0].data.meas.get_counts()
    aer = counts(AerSimulator(noise_model=model), ghz(), seed=5, shots=AER_SHOTS)
    assert homogeneity_pvalue(ours, aer) > ALPHA


def test_what_cannot_be_applied_is_refused_with_the_reason():
    with pytest.raises(InvalidOptionError, match="not a qiskit-aer NoiseModel"):
        GPUSimulator(noise_model={"errors": []})
    correlated = noise.NoiseModel()
    correlated.add_readout_error(noise.ReadoutError([[0.9, 0.1, 0, 0], [0, 1, 0, 0],
                                                     [0, 0, 1, 0], [0, 0, 0, 1]]), [0, 1])
    with pytest.raises(InvalidOptionError, match="correlated"):
        GPUSimulator(noise_model=correlated)
    with pytest.raises(InvalidOptionError, match="correlated"):
        GPUSimulator().run(ghz(), noise_model=correlated)


@pytest.mark.parametrize("method", ["statevector", "density_matrix"])
@pytest.mark.parametrize("local", [False, True], ids=["all-qubit", "local"])
def test_an_error_whose_terms_touch_only_its_first_qubits_acts_on_them(device, method, local):
    """Aer's dict of a two-qubit error whose terms touch only qubit 0 names no qubit 1: the
    error is still the gate's, on its first qubit (this one was once dropped silently)."""
    flip = QuantumCircuit(2)
    flip.x(0)
    error = noise.QuantumError([(flip, 0.4), (QuantumCircuit(2), 0.6)])
    model = noise.NoiseModel()
    if local:
        model.add_quantum_error(error, ["cx"], [0, 1])
    else:
        model.add_all_qubit_quantum_error(error, ["cx"])
    circuit = QuantumCircuit(2, 2)
    circuit.x(0)
    circuit.cx(0, 1)
    circuit.measure([0, 1], [0, 1])
    backend = GPUSimulator(device=device, method=method, noise_model=model)
    counts = backend.run(circuit, shots=SHOTS, seed_simulator=3).result().get_counts()
    assert chi_square_pvalue(counts, {"10": 0.4, "11": 0.6}) > ALPHA, counts
    wide = noise.NoiseModel()
    wide.add_all_qubit_quantum_error(noise.depolarizing_error(0.1, 2), ["mine"])
    custom = QuantumCircuit(1)
    custom.append(QuantumCircuit(1, name="mine").to_gate(), [0])
    with pytest.raises(InvalidOptionError, match="acts on 2 qubits"):
        GPUSimulator(device=device, noise_model=wide).run(custom).result()


def test_errors_the_model_has_for_gates_inside_a_definition_are_not_silently_skipped():
    """Noise follows the circuit's own instructions (Aer's rule): the 'x' inside a custom
    gate gets no error, and the run says so; the custom gate's own error still applies."""
    inner = QuantumCircuit(1, name="mine")
    inner.x(0)
    circuit = QuantumCircuit(1)
    circuit.append(inner.to_gate(), [0])
    circuit.measure_all()
    model = noise.NoiseModel()
    model.add_all_qubit_quantum_error(noise.pauli_error([("X", 0.3), ("I", 0.7)]), ["x"])
    with pytest.warns(UserWarning, match="errors on 'x' are not applied to the gates inside "
                                         "'mine'"):
        counts = GPUSimulator(device="CPU", noise_model=model).run(
            circuit, shots=200, seed_simulator=1).result().get_counts()
    assert counts == {"1": 200}
    model.add_all_qubit_quantum_error(noise.pauli_error([("X", 0.5), ("I", 0.5)]), ["mine"])
    with pytest.warns(UserWarning, match="inside 'mine'"):
        counts = GPUSimulator(device="CPU", noise_model=model).run(
            circuit, shots=SHOTS, seed_simulator=1).result().get_counts()
    assert chi_square_pvalue(counts, {"0": 0.5, "1": 0.5}) > ALPHA


def test_an_ideal_noise_model_changes_nothing(device):
    ideal = noise.NoiseModel()
    ours = GPUSimulator(device=device, noise_model=ideal).run(
        ghz(), shots=1000, seed_simulator=1).result().get_counts()
    plain = GPUSimulator(device=device).run(ghz(), shots=1000, seed_simulator=1).result()
    assert ours == plain.get_counts()


GATE_ERROR_TYPES = [name for name in ERROR_TYPES
                    if not name.startswith(("readout", "measure", "reset instruction"))]
"""The error types an estimator's (measurement-free) circuit sees."""


def _noisy_expectations(model, circuit: QuantumCircuit, observables) -> np.ndarray:
    """Exact noisy expectation values: Aer's density matrix under ``model``."""
    from qiskit import transpile

    saved = circuit.copy()
    saved.save_density_matrix()
    simulator = AerSimulator(method="density_matrix", noise_model=model)
    rho = simulator.run(transpile(saved, simulator, optimization_level=0)).result().data()[
        "density_matrix"]
    return np.array([rho.expectation_value(observable).real for observable in observables])


@pytest.mark.parametrize("error_type", GATE_ERROR_TYPES)
def test_the_estimator_averages_noisy_trajectories_with_honest_errors(error_type):
    """Noisy expectation values within a few reported standard errors of the exact noisy
    values (Aer's density matrix), standard errors of the precision asked for, and values a
    model with doubled rates would not give."""

    from gpuprovider.primitives import EstimatorV2

    circuit, observables = _estimator_case()
    precision = 0.01
    estimator = EstimatorV2(options={
        "backend_options": {"device": "CPU", "noise_model": _scaled(1.0)[error_type](),
                            "method": "statevector"},
        "run_options": {"seed_simulator": 3}})
    data = estimator.run([(circuit, observables)], precision=precision).result()[0].data
    exact = _noisy_expectations(_scaled(1.0)[error_type](), circuit, observables)
    doubled = _noisy_expectations(_scaled(2.0)[error_type](), circuit, observables)
    assert np.all(data.stds < 2 * precision) and np.any(data.stds > 0), data.stds
    # an observable every trajectory gives the same value (0 here) has a zero error
    assert np.all(np.abs(data.evs - exact) < 4.5 * data.stds + 1e-10), (data.evs, exact,
                                                                        data.stds)
    assert np.any(np.abs(data.evs - doubled) > 6 * data.stds), (data.evs, doubled)


def _estimator_case():
    """A 4-qubit circuit with every gate of ONE_QUBIT_GATES' kind and cx on several pairs,
    and observables on every qubit (X, Y, Z) plus a sum."""
    from qiskit.quantum_info import SparsePauliOp

    circuit = QuantumCircuit(4)
    rng = np.random.default_rng(2)
    for _ in range(3):
        for qubit in range(4):
            circuit.ry(float(rng.uniform(0.3, 1.2)), qubit)
            circuit.sx(qubit)
        circuit.cx(0, 1)
        circuit.cx(2, 3)
        circuit.cx(1, 2)
    observables = [SparsePauliOp(["ZZII", "IXXI", "YIIY"], [0.7, 0.5, -0.4]),
                   *(SparsePauliOp.from_sparse_list([(letter, [q], 1.0)], 4)
                     for q in range(4) for letter in "XYZ")]
    return circuit, observables


@pytest.mark.parametrize("precision", ["single", "double"])
@pytest.mark.parametrize("error_type", GATE_ERROR_TYPES)
def test_the_estimator_is_exact_under_noise_on_few_qubits(error_type, precision):
    """The density-matrix method: exact noisy expectation values (Aer's density matrix) with
    stds 0 at precision 0; at precision > 0 a shot estimate around them."""
    from gpuprovider.primitives import EstimatorV2

    circuit, observables = _estimator_case()
    model = _scaled(1.0)[error_type]()
    estimator = EstimatorV2(options={
        "backend_options": {"device": "CPU", "noise_model": model, "precision": precision},
        "run_options": {"seed_simulator": 3}})
    data = estimator.run([(circuit, observables)]).result()[0].data
    exact = _noisy_expectations(model, circuit, observables)
    tolerance = 1e-10 if precision == "double" else 1e-5
    assert np.allclose(data.evs, exact, atol=tolerance), (data.evs, exact)
    assert np.all(data.stds == 0)
    sampled = estimator.run([(circuit, observables)], precision=0.02).result()[0].data
    assert np.all(np.abs(sampled.evs - exact) < 4.5 * sampled.stds + 1e-10)
    assert np.all(sampled.stds < 0.04)


def _parameterised(circuit: QuantumCircuit) -> tuple[QuantumCircuit, np.ndarray]:
    """``circuit`` with each ``ry`` angle a parameter, and those angles as a parameter set."""
    from qiskit.circuit import ParameterVector

    angles = [instruction.operation.params[0] for instruction in circuit.data
              if instruction.operation.name == "ry"]
    theta = ParameterVector("theta", len(angles))
    open_circuit = circuit.copy_empty_like()
    index = 0
    for instruction in circuit.data:
        if instruction.operation.name == "ry":
            open_circuit.ry(theta[index], instruction.qubits[0])
            index += 1
        else:
            open_circuit.append(instruction)
    return open_circuit, np.array(angles, dtype=float)


def test_noisy_parameter_sets_are_exact_on_few_qubits():
    """Parameterised pubs and ``parameter_binds`` sweeps take the density matrix like bound
    circuits (once they ran trajectories: a value within its std, not the exact one), and
    ``method="density_matrix"`` accepts them."""
    from gpuprovider.primitives import EstimatorV2

    circuit, observables = _estimator_case()
    model = _scaled(1.0)["thermal relaxation"]()
    open_circuit, angles = _parameterised(circuit)
    sets = np.stack([angles, angles[::-1] + 0.3])
    estimator = EstimatorV2(options={"backend_options": {"device": "CPU", "noise_model": model}})
    data = estimator.run([(open_circuit, [observables], sets[:, None, :])]).result()[0].data
    for row, values in enumerate(sets):
        exact = _noisy_expectations(model, open_circuit.assign_parameters(values), observables)
        assert np.allclose(data.evs[row], exact, atol=1e-10), (row, data.evs[row], exact)
    assert np.all(data.stds == 0)
    measured = open_circuit.measure_all(inplace=False)
    binds = [{p: list(sets[:, k]) for k, p in enumerate(open_circuit.parameters)}]
    for method in ("automatic", "density_matrix"):
        result = GPUSimulator(device="CPU", method=method, noise_model=model).run(
            measured, parameter_binds=binds, shots=SHOTS, seed_simulator=4).result()
        for row, values in enumerate(sets):
            assert result.results[row].metadata["method"] == "density_matrix"
            bound = GPUSimulator(device="CPU", method=method, noise_model=model).run(
                measured.assign_parameters(values), shots=SHOTS, seed_simulator=4).result()
            assert homogeneity_pvalue(result.get_counts(row), bound.get_counts()) > ALPHA


def test_the_estimator_averages_channels_in_the_circuit():
    from qiskit.quantum_info import DensityMatrix, Kraus, SparsePauliOp

    from gpuprovider.primitives import EstimatorV2

    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.append(Kraus(noise.amplitude_damping_error(0.3).to_quantumchannel()), [1])
    circuit.ry(0.7, 1)
    observables = [SparsePauliOp("ZI"), SparsePauliOp("XX"), SparsePauliOp("ZZ")]
    estimator = EstimatorV2(options={"backend_options": {"device": "CPU",
                                                         "method": "statevector"},
                                     "run_options": {"seed_simulator": 4}})
    data = estimator.run([(circuit, observables)], precision=0.01).result()[0].data
    rho = DensityMatrix(circuit)
    exact = np.array([rho.expectation_value(o).real for o in observables])
    assert np.all(np.abs(data.evs - exact) < 4.5 * data.stds), (data.evs, exact, data.stds)
    assert np.all(data.stds < 0.02) and np.any(data.stds > 0)


def test_the_estimator_refuses_measurements_under_noise():
    from qiskit.quantum_info import SparsePauliOp

    from gpuprovider.primitives import EstimatorV2

    estimator = EstimatorV2(backend=GPUSimulator(noise_model=_scaled(1.0)["pauli"]()))
    with pytest.raises(InvalidCircuitError, match="measures"):
        estimator.run([(ghz(), SparsePauliOp("ZZZ"))])


# --- from_backend -------------------------------------------------------------------------------


@pytest.mark.parametrize("fake_name", ["FakeManilaV2", "FakeSherbrooke"])
def test_from_backend_matches_aer_from_backend_on_isa_circuits(fake_name):
    """A 5-qubit and a 127-qubit fake device: our simulator of the device (its Target, its
    noise) against AerSimulator.from_backend on the same transpiled circuit."""
    from qiskit import transpile

    fake_provider = pytest.importorskip("qiskit_ibm_runtime.fake_provider")
    fake = getattr(fake_provider, fake_name)()
    ours_backend = GPUSimulator.from_backend(fake, device="CPU")
    assert ours_backend.num_qubits == fake.num_qubits
    assert set(ours_backend.operation_names) == set(fake.operation_names)
    isa = transpile(ghz_circuit(4), ours_backend, optimization_level=1, seed_transpiler=3)
    shots = 4000
    ours = ours_backend.run(isa, shots=shots, seed_simulator=1).result().get_counts()
    aer = AerSimulator.from_backend(fake).run(isa, shots=4 * shots,
                                              seed_simulator=2).result().get_counts()
    ideal = AerSimulator().run(isa, shots=4 * shots, seed_simulator=3).result().get_counts()
    assert homogeneity_pvalue(ours, aer) > ALPHA
    assert homogeneity_pvalue(ours, ideal) < ALPHA, "the device's noise left no trace"


def _channel_superop(channel):
    """A channel's terms (:class:`gpuprovider.compile.noise.Channel`) as one SuperOp."""
    from qiskit.circuit.library import get_standard_gate_name_mapping
    from qiskit.quantum_info import Kraus, Operator, Pauli, SuperOp

    total = None
    for probability, instructions in channel.terms:
        term = SuperOp(Operator(np.eye(2 ** channel.num_qubits)))
        for name, qubits, params in instructions:
            if name == "pauli":
                op = SuperOp(Pauli(params[0]))
            elif name == "reset":
                op = SuperOp(Kraus([np.array([[1, 0], [0, 0]]), np.array([[0, 1], [0, 0]])]))
            elif name == "kraus":
                op = SuperOp(Kraus(list(params)))
            else:
                gate = get_standard_gate_name_mapping()[name]
                op = SuperOp(Operator(gate))
            term = term.compose(op, qargs=list(qubits))
        total = probability * term if total is None else total + probability * term
    return total


@pytest.mark.parametrize("fake_name", ["FakeManilaV2", "FakeSherbrooke"])
def test_the_device_noise_model_is_the_one_aer_builds(fake_name):
    """Without qiskit-aer, from_backend builds the same channel for every instruction and
    qubits, and the same readout errors, as Aer's NoiseModel.from_backend."""
    from gpuprovider.compile.device_noise import device_noise
    from gpuprovider.compile.noise import read_noise_model

    fake = getattr(pytest.importorskip("qiskit_ibm_runtime.fake_provider"), fake_name)()
    ours = device_noise(fake.target)
    aer = read_noise_model(noise.NoiseModel.from_backend(fake))
    assert set(ours.local) == set(aer.local)
    assert ours.local, "the device reported no gate errors"
    for key, channel in ours.local.items():
        expected = _channel_superop(aer.local[key])
        assert np.allclose(_channel_superop(channel).data, expected.data, atol=1e-12), key
    assert set(ours.readout_local) == set(aer.readout_local)
    for qubit, matrix in ours.readout_local.items():
        assert np.allclose(matrix, aer.readout_local[qubit], atol=1e-15), qubit
    assert ours.default == aer.default == {} and ours.readout_default is None


def test_from_backend_needs_no_aer(monkeypatch):
    """qiskit-aer cannot be imported: from_backend still builds the device's noise."""
    import builtins

    fake = pytest.importorskip("qiskit_ibm_runtime.fake_provider").FakeManilaV2()
    real_import = builtins.__import__

    def without_aer(name, *args, **kwargs):
        if name.startswith("qiskit_aer"):
            raise ImportError(f"no module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_aer)
    simulator = GPUSimulator.from_backend(fake, device="CPU")
    from qiskit import transpile

    isa = transpile(ghz_circuit(3), simulator, optimization_level=1, seed_transpiler=3)
    counts = simulator.run(isa, shots=2000, seed_simulator=1).result().get_counts()
    assert set(counts) - {"000", "111"}, "the device's noise left no trace"


def test_from_backend_without_noise_simulates_the_device_ideally():
    fake_provider = pytest.importorskip("qiskit_ibm_runtime.fake_provider")
    ideal = GPUSimulator.from_backend(fake_provider.FakeManilaV2(), noise_model=None,
                                      device="CPU")
    from qiskit import transpile

    isa = transpile(ghz_circuit(3), ideal, optimization_level=1, seed_transpiler=3)
    counts = ideal.run(isa, shots=500, seed_simulator=1).result().get_counts()
    assert set(counts) == {"000", "111"}


# --- channels as circuit instructions -----------------------------------------------------------


def _channel_circuit(append) -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    append(circuit)
    circuit.x(1)
    circuit.measure_all()
    return circuit


CHANNEL_FORMS = {
    "Kraus": lambda c: c.append(_kraus(noise.amplitude_damping_error(0.3)), [0]),
    "SuperOp": lambda c: c.append(_superop(noise.amplitude_damping_error(0.4)), [1]),
    "QuantumError": lambda c: c.append(noise.thermal_relaxation_error(30, 40, 20), [1]),
    "two-qubit QuantumError": lambda c: c.append(
        noise.depolarizing_error(0.3, 2).compose(
            noise.amplitude_damping_error(0.2).tensor(noise.amplitude_damping_error(0.1))),
        [0, 1]),
}


def _kraus(error):
    from qiskit.quantum_info import Kraus

    return Kraus(error.to_quantumchannel())


def _superop(error):
    from qiskit.quantum_info import SuperOp

    return SuperOp(error.to_quantumchannel())


@pytest.mark.parametrize("form", list(CHANNEL_FORMS))
def test_channels_in_the_circuit_match_aer(device, precision, form):
    circuit = _channel_circuit(CHANNEL_FORMS[form])
    ours = counts(GPUSimulator(device=device, precision=precision), circuit, seed=21)
    aer = counts(AerSimulator(), circuit, seed=22, shots=AER_SHOTS)
    ideal = counts(AerSimulator(), _channel_circuit(lambda c: None), seed=23, shots=AER_SHOTS)
    assert homogeneity_pvalue(ours, aer) > ALPHA
    assert homogeneity_pvalue(ours, ideal) < ALPHA, "the channel left no trace"


def test_a_channel_that_is_not_trace_preserving_is_refused():
    from gpuprovider.exceptions import InvalidCircuitError

    circuit = QuantumCircuit(1)
    circuit.append(_kraus(noise.amplitude_damping_error(0.3)), [0])
    bad = circuit.copy()
    bad.data[0].operation.params[0] = 2 * np.asarray(bad.data[0].operation.params[0])
    with pytest.raises(InvalidCircuitError, match="not trace preserving"):
        GPUSimulator(device="CPU").run(bad)
