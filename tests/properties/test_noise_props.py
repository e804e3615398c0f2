"""Noisy counts of random circuits under random noise models against the exact distribution:
a density matrix evolved through every gate and its error channel (qiskit.quantum_info),
measurement errors before the measurement, readout confusion on the outcome distribution;
checked by a chi-square test."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.quantum_info import DensityMatrix
from testkit import ALPHA, chi_square_pvalue, homogeneity_pvalue

from gpuprovider import GPUSimulator
from properties.harness import examples

noise = pytest.importorskip("qiskit_aer.noise")

ONE_QUBIT = ("h", "x", "sx", "ry", "rz")
SHOTS = 4000


def _one_qubit_error(draw):
    rate = draw(st.floats(0.02, 0.3))
    kind = draw(st.sampled_from(["depolarizing", "pauli", "amplitude", "phase", "thermal",
                                 "reset", "composed"]))
    if kind == "depolarizing":
        return noise.depolarizing_error(rate, 1)
    if kind == "pauli":
        return noise.pauli_error([("X", rate / 2), ("Y", rate / 4), ("I", 1 - 3 * rate / 4)])
    if kind == "amplitude":
        return noise.amplitude_damping_error(rate)
    if kind == "phase":
        return noise.phase_damping_error(rate)
    if kind == "thermal":
        t1 = draw(st.floats(20, 80))
        return noise.thermal_relaxation_error(t1, draw(st.floats(0.5, 2.0)) * t1, 40 * rate,
                                              excited_state_population=draw(st.floats(0, 0.4)))
    if kind == "reset":
        return noise.reset_error(rate / 2, rate / 3)
    return noise.depolarizing_error(rate / 2, 1).compose(noise.amplitude_damping_error(rate))


def _gate_error(draw, width: int):
    """A ``width``-qubit error on a ``width``-qubit gate: depolarizing on all its qubits, or
    one-qubit errors placed on some of its qubits by circuits of ``width`` qubits (Aer's
    dict then names only the qubits they touch: an error whose terms touch only its first
    qubits is still an error of the gate, on those qubits)."""
    if draw(st.booleans()):
        return noise.depolarizing_error(draw(st.floats(0.02, 0.3)), width)
    positions = draw(st.lists(st.integers(0, width - 1), min_size=1, max_size=width,
                              unique=True))
    error = None
    for position in positions:
        one = _one_qubit_error(draw)
        placed = noise.QuantumError([(_embedded(circuit, width, position), probability)
                                     for circuit, probability in zip(one.circuits,
                                                                     one.probabilities)])
        error = placed if error is None else error.compose(placed)
    return error


def _embedded(circuit: QuantumCircuit, width: int, position: int) -> QuantumCircuit:
    wide = QuantumCircuit(width)
    wide.compose(circuit, [position], inplace=True)
    return wide


@st.composite
def noisy_cases(draw, placed_errors: bool = True):
    """Random circuits and noise models; ``placed_errors``: ``ccx`` gates, and errors on a
    multi-qubit gate that touch only some of its qubits (:func:`_gate_error`), else
    depolarizing errors on ``cx`` only."""
    num_qubits = draw(st.integers(1, 3))
    circuit = QuantumCircuit(num_qubits)
    for _ in range(draw(st.integers(1, 8))):
        if placed_errors and num_qubits == 3 and draw(st.integers(0, 3)) == 0:
            circuit.ccx(*draw(st.permutations(range(3))))
            continue
        if num_qubits > 1 and draw(st.booleans()):
            a, b = draw(st.permutations(range(num_qubits)))[:2]
            circuit.cx(a, b)
            continue
        name = draw(st.sampled_from(ONE_QUBIT))
        qubit = draw(st.integers(0, num_qubits - 1))
        if name in ("ry", "rz"):
            getattr(circuit, name)(draw(st.floats(0, 2 * np.pi)), qubit)
        else:
            getattr(circuit, name)(qubit)
    circuit.measure_all()
    errors = {}
    for name in draw(st.lists(st.sampled_from(ONE_QUBIT), unique=True, max_size=3)):
        errors[name] = _one_qubit_error(draw)
    for name, width in (("cx", 2), ("ccx", 3)):
        if draw(st.booleans()):
            errors[name] = (_gate_error(draw, width) if placed_errors
                            else noise.depolarizing_error(draw(st.floats(0.02, 0.3)), width))
    if draw(st.booleans()):
        errors["measure"] = _one_qubit_error(draw)
    readout = None
    if draw(st.booleans()):
        p01, p10 = draw(st.floats(0, 0.2)), draw(st.floats(0, 0.2))
        readout = np.array([[1 - p01, p01], [p10, 1 - p10]])
    return circuit, errors, readout


def _model(errors, readout):
    model = noise.NoiseModel()
    for name, error in errors.items():
        model.add_all_qubit_quantum_error(error, [name])
    if readout is not None:
        model.add_all_qubit_readout_error(noise.ReadoutError(readout))
    return model


def _exact_rho(circuit: QuantumCircuit, errors) -> DensityMatrix:
    """The noisy density matrix before the measurements (measurement errors included)."""
    rho = DensityMatrix.from_int(0, 2 ** circuit.num_qubits)
    for instruction in circuit.data:
        name = instruction.operation.name
        qubits = [circuit.find_bit(q).index for q in instruction.qubits]
        if name == "barrier":
            continue
        if name == "measure":
            if "measure" in errors:
                rho = rho.evolve(errors["measure"].to_quantumchannel(), qubits)
            continue
        rho = rho.evolve(instruction.operation, qubits)
        if name in errors:
            rho = rho.evolve(errors[name].to_quantumchannel(), qubits)
    return rho


def _exact(circuit: QuantumCircuit, errors, readout) -> dict[str, float]:
    rho = _exact_rho(circuit, errors)
    probabilities = np.real(np.diag(rho.data)).clip(0)
    if readout is not None:
        confusion = np.array([[1.0]])
        for _ in range(circuit.num_qubits):
            confusion = np.kron(readout, confusion)  # qubit 0 is the lowest index bit
        probabilities = probabilities @ confusion
    width = circuit.num_qubits
    return {format(index, f"0{width}b"): float(p) for index, p in enumerate(probabilities)}


@pytest.mark.parametrize("method", ["statevector", "density_matrix"])
@examples(0.2)
@given(case=noisy_cases())
def test_noisy_counts_follow_the_exact_noisy_distribution(device, precision, method, case):
    """Both methods: trajectories and branches (statevector) and the density matrix."""
    circuit, errors, readout = case
    backend = GPUSimulator(device=device, precision=precision, method=method,
                           noise_model=_model(errors, readout))
    counts = backend.run(circuit, shots=SHOTS, seed_simulator=7).result().get_counts()
    expected = _exact(circuit, errors, readout)
    p_value = chi_square_pvalue(counts, expected)
    assert p_value > ALPHA, (str(circuit.draw()), sorted(errors), readout, counts, expected)


def _mixture_error(draw, width: int):
    rate = draw(st.floats(0.02, 0.3))
    kind = draw(st.sampled_from(["depolarizing", "pauli", "no identity", "unitary"]))
    if kind == "depolarizing":
        return noise.depolarizing_error(rate, width)
    if kind == "pauli":
        letters = draw(st.lists(st.sampled_from(["X", "Y", "Z"]), min_size=width,
                                max_size=width))
        return noise.pauli_error([("".join(letters), rate), ("I" * width, 1 - rate)])
    if kind == "no identity":  # every term acts: no shot keeps the ideal path
        return noise.pauli_error([("X" * width, 1 - rate), ("Z" * width, rate)])
    angle = draw(st.floats(0.1, 3.0))
    rotation = QuantumCircuit(width)
    for qubit in range(width):
        rotation.ry(angle, qubit)
    from qiskit.quantum_info import Operator
    return noise.mixed_unitary_error([(Operator(rotation), rate),
                                      (np.eye(2 ** width), 1 - rate)])


@st.composite
def mixture_cases(draw):
    """Circuits of up to 24 gates (SWAPs included) with mixtures of unitaries only."""
    num_qubits = draw(st.integers(1, 4))
    circuit = QuantumCircuit(num_qubits)
    circuit.ry(draw(st.floats(0, 2 * np.pi)), 0)  # at least one channel
    for _ in range(draw(st.integers(0, 24))):
        if num_qubits > 1 and draw(st.booleans()):
            a, b = draw(st.permutations(range(num_qubits)))[:2]
            getattr(circuit, draw(st.sampled_from(["cx", "swap"])))(a, b)
            continue
        qubit = draw(st.integers(0, num_qubits - 1))
        circuit.ry(draw(st.floats(0, 2 * np.pi)), qubit)
    circuit.measure_all()
    errors = {"ry": _mixture_error(draw, 1)}
    for name, width in (("cx", 2), ("swap", 2), ("measure", 1)):
        if draw(st.booleans()):
            errors[name] = _mixture_error(draw, width)
    return circuit, errors, draw(st.integers(1, 6)), draw(st.integers(2, 4))


@examples(0.2)
@given(case=mixture_cases())
def test_grouped_trajectories_follow_the_exact_noisy_distribution(device, precision, case):
    """Mixture-only noise runs as one trajectory per error pattern over chunks of the
    circuit; here chunks of one or a few gates and a small state cap, so that patterns share
    prefixes, leave each other at every chunk boundary and pass the cap."""
    from gpuprovider.compile import mixtures

    circuit, errors, chunks, states = case
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mixtures, "MIN_CHUNK_GATES", 1)
        patch.setattr(mixtures, "MAX_CHUNKS", chunks)
        patch.setattr("gpuprovider.execution.DEFAULT_BRANCH_STATES", states)
        backend = GPUSimulator(device=device, precision=precision, method="statevector",
                               noise_model=_model(errors, None))
        result = backend.run(circuit, shots=SHOTS, seed_simulator=11).result()
    assert result.results[0].metadata["error_patterns"], str(circuit.draw())
    p_value = chi_square_pvalue(result.get_counts(), _exact(circuit, errors, None))
    assert p_value > ALPHA, (str(circuit.draw()), sorted(errors), chunks, states)


@pytest.mark.parametrize("fusion", [True, False], ids=["fused", "unfused"])
@examples(0.5)
@given(case=noisy_cases())
def test_the_density_matrix_program_gives_the_exact_noisy_density_matrix(fusion, case):
    """The density-matrix method's state, entry by entry (off-diagonals too), against
    qiskit.quantum_info's density matrix under the same channels, as the run plans it (tile
    passes, or op by op with fusion off)."""
    from gpuprovider.compile.density import density_program
    from gpuprovider.compile.lower import lower_circuit
    from gpuprovider.compile.merge import merged
    from gpuprovider.compile.noise import read_noise_model
    from gpuprovider.compile.plan import planned
    from gpuprovider.engine import apply_density
    from gpuprovider.kernels import cpu

    circuit, errors, _ = case
    dtype = np.dtype(np.complex128)
    program = lower_circuit(circuit, dtype, noise=read_noise_model(_model(errors, None)))
    if program.is_sampled:  # a noise-free draw: nothing random to simulate
        return
    density = density_program(program, dtype)
    assert density is not None, str(circuit.draw())
    density = planned(density, cpu.POLICY.plan_policy(dtype)) if fusion else merged(density)
    state = cpu.allocate(density.num_qubits, dtype)
    apply_density(density, cpu, state)
    n = program.num_qubits
    rho = cpu.to_host(state).reshape(1 << n, 1 << n).T  # amplitude i + 2^n j is rho[i, j]
    expected = _exact_rho(circuit, errors).data
    assert np.allclose(rho, expected, atol=1e-10), (str(circuit.draw()), sorted(errors))


@st.composite
def dynamic_noisy_cases(draw):
    """Noisy circuits of 2-4 qubits with mid-circuit measurements (into clbits of their own)
    and resets between the gates, final measurements and a readout error: the forms a batch
    of trajectories runs (:mod:`gpuprovider.trajectories`)."""
    circuit, errors, readout = draw(noisy_cases(placed_errors=False))  # branching is slow
    num_qubits = max(2, circuit.num_qubits)
    dynamic = QuantumCircuit(num_qubits, num_qubits + 2)
    middle = 0
    for instruction in circuit.data:
        if instruction.operation.name in ("measure", "barrier"):
            continue
        qubits = [circuit.find_bit(q).index for q in instruction.qubits]
        dynamic.append(instruction.operation, qubits)
        event = draw(st.sampled_from(["none", "none", "measure", "reset"]))
        qubit = draw(st.integers(0, num_qubits - 1))
        if event == "measure" and middle < 2:
            dynamic.measure(qubit, num_qubits + middle)
            middle += 1
        elif event == "reset":
            dynamic.reset(qubit)
        if dynamic.num_qubits > 1 and draw(st.booleans()):
            dynamic.cx(0, 1)
    dynamic.measure(range(num_qubits), range(num_qubits))
    return dynamic, errors, readout


@examples(0.2)
@given(case=dynamic_noisy_cases())
def test_batched_trajectories_draw_what_branching_draws(precision, case):
    """A batch of trajectories (every shot alone) and the branching engine, on noisy circuits
    with mid-circuit measurements, resets and readout errors and a gate angle given by a
    parameter expression (two bindings): one distribution per binding (a two-sample
    chi-square test on 4000 shots each)."""
    from gpuprovider import trajectories
    from gpuprovider.compile import program

    circuit, errors, readout = case
    errors.setdefault("h", noise.amplitude_damping_error(0.2))  # at least one Kraus channel
    theta = Parameter("theta")
    circuit.h(0)
    circuit.ry(2 * theta - 0.3, circuit.num_qubits - 1)
    for _ in range(2):  # both first: h, then the parameterised ry
        circuit.data.insert(0, circuit.data.pop())
    binds = [{theta: [0.4, 1.9]}]
    backend = GPUSimulator(device="CPU", precision=precision, method="statevector",
                           noise_model=_model(errors, readout))
    batches = []
    run_shots = trajectories.run_shots
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(trajectories, "run_shots",
                        lambda *args: batches.append(args) or run_shots(*args))
        batched = backend.run(circuit, shots=SHOTS, seed_simulator=3,
                              parameter_binds=binds).result().get_counts()
        assert len(batches) == 2, "ran as batches of trajectories"
        patched.setattr(program, "BATCHED_TRAJECTORY_MAX_QUBITS", -1)
        branched = backend.run(circuit, shots=SHOTS, seed_simulator=4,
                               parameter_binds=binds).result().get_counts()
        assert len(batches) == 2, "ran as branches"
    for ours, theirs in zip(batched, branched, strict=True):
        p_value = homogeneity_pvalue(ours, theirs)
        assert p_value > ALPHA, (str(circuit.draw()), sorted(errors), readout, ours, theirs)


@examples(0.2)
@given(case=noisy_cases(placed_errors=False), batched=st.booleans())
def test_noisy_estimator_trajectories_give_the_exact_noisy_values(precision, case, batched):
    """EstimatorV2 under noise with method="statevector": trajectory means of every Pauli
    term (through a batch of trajectories, or the branching engine) within 5 reported
    standard errors of the exact noisy density matrix's values."""
    from qiskit.quantum_info import SparsePauliOp

    from gpuprovider import trajectories
    from gpuprovider.compile import program
    from gpuprovider.primitives import EstimatorV2

    circuit, errors, _ = case
    errors.pop("measure", None)
    errors.setdefault("h", noise.amplitude_damping_error(0.2))  # at least one Kraus channel
    circuit.remove_final_measurements()
    circuit.h(0)
    width = circuit.num_qubits
    labels = ["".join(p) for p in np.random.default_rng(width).choice(list("IXYZ"),
                                                                     (6, width))]
    observables = [SparsePauliOp(label) for label in labels] + [
        SparsePauliOp(labels[:3], [0.5, -0.25, 1.0])]
    rho = _exact_rho(circuit, errors)
    exact = np.array([rho.expectation_value(o).real for o in observables])
    estimator = EstimatorV2(options={
        "backend_options": {"device": "CPU", "precision": precision, "method": "statevector",
                            "noise_model": _model(errors, None)},
        "run_options": {"seed_simulator": 5}})
    calls = []
    run_shots = trajectories.run_shots
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(trajectories, "run_shots",
                        lambda *args: calls.append(args) or run_shots(*args))
        if not batched:
            patched.setattr(program, "BATCHED_TRAJECTORY_MAX_QUBITS", -1)
        data = estimator.run([(circuit, observables)], precision=0.03).result()[0].data
    assert bool(calls) == batched
    tolerance = 1e-5 if precision == "single" else 1e-9
    assert np.all(np.abs(data.evs - exact) <= 5 * data.stds + tolerance), (
        str(circuit.draw()), sorted(errors), labels, data.evs, exact, data.stds)


@examples(0.3)
@given(case=noisy_cases(), angle=st.floats(-3, 3))
def test_noisy_estimator_density_matrices_of_parameterised_circuits_are_exact(
        precision, case, angle):
    """EstimatorV2 under noise (the default method: the density matrix at this size) on
    drawn circuits with errors placed on some of a gate's qubits and a gate angle given by a
    parameter expression, bound by the pub (two sets): the exact noisy values of every
    Pauli observable, with stds 0."""
    from qiskit.quantum_info import SparsePauliOp

    from gpuprovider.primitives import EstimatorV2

    circuit, errors, _ = case
    errors.pop("measure", None)
    circuit.remove_final_measurements()
    theta = Parameter("theta")
    circuit.ry(2 * theta - 0.3, circuit.num_qubits - 1)
    circuit.data.insert(0, circuit.data.pop())  # the parameterised gate first
    width = circuit.num_qubits
    labels = ["".join(p) for p in np.random.default_rng(width + 1).choice(list("IXYZ"),
                                                                         (5, width))]
    observables = [SparsePauliOp(label) for label in labels]
    values = np.array([[angle], [angle / 2 + 1]])
    estimator = EstimatorV2(options={"backend_options": {
        "device": "CPU", "precision": precision, "noise_model": _model(errors, None)}})
    data = estimator.run([(circuit, [[o] for o in observables], values)]).result()[0].data
    tolerance = 1e-5 if precision == "single" else 1e-10
    for k, row in enumerate(values):
        rho = _exact_rho(circuit.assign_parameters(row), errors)
        exact = np.array([rho.expectation_value(o).real for o in observables])
        np.testing.assert_allclose(data.evs[:, k], exact, rtol=0, atol=tolerance,
                                   err_msg=f"{circuit.draw()}\n{sorted(errors)} set {k}")
    assert np.all(data.stds == 0)
