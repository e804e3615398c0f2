"""EstimatorV2 against Qiskit's StatevectorEstimator and exact values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from qiskit import QuantumCircuit
from qiskit.primitives import BaseEstimatorV2, StatevectorEstimator
from qiskit.quantum_info import Pauli, SparseObservable, SparsePauliOp, Statevector
from scipy import stats
from support.fake_device import FakeKernels, fake_device
from testkit import ALPHA, parameterized_circuit, random_observable, random_values

from gpuprovider import GPUSimulator
from gpuprovider.exceptions import InvalidCircuitError, InvalidOptionError
from gpuprovider.primitives import EstimatorV2, GPUPrimitiveJob

EV_TOLERANCE = {"double": 1e-9, "single": 2e-4}


def estimator(device: str, precision: str, **kwargs) -> EstimatorV2:
    return EstimatorV2(options={"backend_options": {"device": device, "precision": precision}},
                       **kwargs)


def exact_value(circuit: QuantumCircuit, values: np.ndarray, observable) -> float:
    bound = circuit.assign_parameters(values) if circuit.parameters else circuit
    if isinstance(observable, SparseObservable):
        observable = SparsePauliOp.from_sparse_observable(observable)
    return float(np.real(Statevector(bound).expectation_value(observable)))


def as_operator(form) -> SparsePauliOp | SparseObservable:
    """The reference's reading of an observable form, independent of ObservablesArray."""
    if isinstance(form, dict):
        return SparsePauliOp.from_list(list(form.items()))
    if isinstance(form, (str, Pauli)):
        return SparsePauliOp(form)
    return form


def test_is_a_base_estimator_v2_and_returns_a_primitive_job():
    estimator = EstimatorV2()
    assert isinstance(estimator, BaseEstimatorV2)
    job = estimator.run([(QuantumCircuit(1), "Z")])
    assert isinstance(job, GPUPrimitiveJob)
    assert job.result()[0].data.evs == pytest.approx(1.0)


@pytest.mark.parametrize(("parameter_shape", "observable_shape"), [
    ((4, 1), (3,)),      # outer product
    ((2, 3), (3,)),      # broadcast along the last axis
    ((5,), (5,)),        # zipped
    ((3,), ()),          # one observable for every set
    ((), (2, 2)),        # one set for every observable
])
def test_matches_statevector_estimator_with_broadcasting(device, precision, parameter_shape,
                                                         observable_shape):
    rng = np.random.default_rng(len(parameter_shape) * 10 + len(observable_shape))
    circuit = parameterized_circuit(4, layers=2, seed=3)
    values = random_values(circuit, parameter_shape, seed=5)
    observables = np.empty(observable_shape, dtype=object)
    for index in np.ndindex(observable_shape):
        observables[index] = random_observable(4, 6, rng)
    pub = (circuit, observables.tolist() if observable_shape else observables.item(), values)
    ours = estimator(device, precision).run([pub]).result()[0]
    reference = StatevectorEstimator().run([pub]).result()[0]
    shape = np.broadcast_shapes(parameter_shape, observable_shape)
    assert ours.data.shape == shape
    assert ours.data.evs.shape == shape and ours.data.stds.shape == shape
    np.testing.assert_allclose(ours.data.evs, reference.data.evs,
                               atol=EV_TOLERANCE[precision])
    assert np.all(ours.data.stds == 0)
    assert ours.metadata["target_precision"] == 0
    assert ours.metadata["simulator_metadata"]["device"] == device
    assert ours.metadata["simulator_metadata"]["precision"] == precision


@st.composite
def broadcast_pubs(draw):
    """A random circuit, and parameter and observable shapes that broadcast together."""
    num_qubits = draw(st.integers(2, 5))
    full = draw(st.lists(st.integers(1, 3), min_size=0, max_size=3))
    def part(keep):
        return tuple(size if kept else 1 for size, kept in zip(full, keep))[
            draw(st.integers(0, len(full))):]
    parameter_shape = part(draw(st.lists(st.booleans(), min_size=len(full),
                                         max_size=len(full))))
    observable_shape = part(draw(st.lists(st.booleans(), min_size=len(full),
                                          max_size=len(full))))
    seed = draw(st.integers(0, 2**16))
    return num_qubits, parameter_shape, observable_shape, seed


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(broadcast_pubs())
def test_random_broadcast_pubs_match_statevector_estimator(case):
    num_qubits, parameter_shape, observable_shape, seed = case
    rng = np.random.default_rng(seed)
    circuit = parameterized_circuit(num_qubits, layers=1 + seed % 2, seed=seed)
    values = random_values(circuit, parameter_shape, seed=seed + 1)
    observables = np.empty(observable_shape, dtype=object)
    for index in np.ndindex(observable_shape):
        observables[index] = random_observable(num_qubits, int(rng.integers(1, 6)), rng)
    pub = (circuit, observables.tolist() if observable_shape else observables.item(), values)
    ours = EstimatorV2(options={"backend_options": {"device": "CPU"}}).run([pub]).result()[0]
    reference = StatevectorEstimator().run([pub]).result()[0]
    assert ours.data.evs.shape == reference.data.evs.shape
    np.testing.assert_allclose(ours.data.evs, reference.data.evs, atol=1e-9)


def test_both_primitives_are_made_from_a_backend_as_aers_are():
    """``from_backend`` with our simulator, and with another backend (a fake device: the
    primitive then runs on a GPUSimulator modelled on it, its noise included)."""
    from qiskit.providers.fake_provider import GenericBackendV2

    from gpuprovider import GPUSimulator
    from gpuprovider.primitives import SamplerV2

    ours = GPUSimulator(device="CPU")
    estimator = EstimatorV2.from_backend(ours, seed=3)
    assert isinstance(estimator.backend, GPUSimulator) and estimator.seed == 3
    circuit = QuantumCircuit(1)
    circuit.x(0)
    assert estimator.run([(circuit, "Z")]).result()[0].data.evs == pytest.approx(-1.0)
    device = GenericBackendV2(2, seed=1)
    sampler = SamplerV2.from_backend(device, seed=4)
    assert isinstance(sampler.backend, GPUSimulator)
    assert sampler.backend.target.num_qubits == device.num_qubits
    measured = circuit.copy()
    measured.measure_all()
    counts = sampler.run([measured], shots=200).result()[0].data.meas.get_counts()
    assert sum(counts.values()) == 200 and counts.get("1", 0) > 150


def test_zero_parameter_sets_or_observables_give_empty_arrays():
    circuit = parameterized_circuit(2, layers=1, seed=1)
    pub = (circuit, ["ZZ", "XX"], np.zeros((0, 1, circuit.num_parameters)))
    ours = EstimatorV2().run([pub]).result()[0]
    assert ours.data.evs.shape == StatevectorEstimator().run([pub]).result()[0].data.evs.shape
    assert ours.data.evs.shape == (0, 2)
    no_observables = (QuantumCircuit(2), np.empty((0,), dtype=object))
    assert EstimatorV2().run([no_observables]).result()[0].data.evs.shape == (0,)


def test_several_pubs_and_circuits_without_parameters(device, precision):
    bell = QuantumCircuit(2)
    bell.h(0)
    bell.cx(0, 1)
    circuit = parameterized_circuit(3, layers=1, seed=1)
    values = random_values(circuit, (2,), seed=2)
    pubs = [(bell, ["ZZ", "XX", "YY", "ZI"]), (circuit, "XYZ", values)]
    result = estimator(device, precision).run(pubs).result()
    assert len(result) == 2
    np.testing.assert_allclose(result[0].data.evs, [1, 1, -1, 0],
                               atol=EV_TOLERANCE[precision])
    for b in range(2):
        assert result[1].data.evs[b] == pytest.approx(
            exact_value(circuit, values[b], SparsePauliOp("XYZ")), abs=EV_TOLERANCE[precision])
    assert result.metadata == {"version": 2}


def test_every_observable_form(device):
    circuit = parameterized_circuit(3, layers=2, seed=4)
    values = random_values(circuit, (), seed=6)
    forms = [
        SparsePauliOp(["XXI", "IZY", "III"], [0.5, -1.25, 0.3]),
        "ZYX",
        Pauli("YIZ"),
        {"XIX": 0.7, "ZZI": -0.2},
        SparseObservable.from_sparse_list([("XZ", [0, 2], 0.9), ("Y", [1], -0.4)], 3),
        SparseObservable.from_label("+0r"),          # projectors, expanded into Paulis
        SparseObservable.from_label("-1l") + SparseObservable.from_label("IZI"),
    ]
    ours = EstimatorV2(options={"backend_options": {"device": device}}).run(
        [(circuit, forms, values)]).result()[0]
    expected = [exact_value(circuit, values, as_operator(form)) for form in forms]
    np.testing.assert_allclose(ours.data.evs, expected, atol=1e-9)


def test_planned_circuit_with_swaps_and_shared_x_masks(device, precision):
    """13 qubits: tile passes and SWAPs relabelled; the read-out's masks follow the qubits."""
    circuit = parameterized_circuit(13, layers=2, seed=8, swaps=True)
    values = random_values(circuit, (2,), seed=9)
    heisenberg = SparsePauliOp.from_sparse_list(
        [(p * 2, [q, q + 1], 1.0 + 0.1 * q) for q in range(12) for p in "XYZ"]
        + [("Z", [q], -0.3) for q in range(13)], 13)
    rng = np.random.default_rng(11)
    observables = [heisenberg, random_observable(13, 10, rng)]
    ours = estimator(device, precision).run([(circuit, observables, values[:, None])]).result()
    for b in range(2):
        for o, observable in enumerate(observables):
            assert ours[0].data.evs[b, o] == pytest.approx(
                exact_value(circuit, values[b], observable),
                abs=EV_TOLERANCE[precision] * 10)


@pytest.fixture
def lowerings(monkeypatch) -> list:
    """Every call of the run path's lowering, counted."""
    import gpuprovider.execution as execution_module

    lowered = []
    original_lower = execution_module.lower_circuit
    monkeypatch.setattr(execution_module, "lower_circuit",
                        lambda *a, **k: lowered.append(1) or original_lower(*a, **k))
    return lowered


def test_a_pub_list_of_one_circuit_is_lowered_once(lowerings):
    """Many single-set pubs of one circuit (a VQE's evaluations in one call) lower it once;
    each pub still gets its own values."""
    from gpuprovider.primitives import SamplerV2

    circuit = parameterized_circuit(3, layers=1, seed=4)
    values = random_values(circuit, (40,), seed=5)
    observable = SparsePauliOp(["ZZI", "XIX"])
    ours = EstimatorV2(options={"backend_options": {"device": "CPU"}}).run(
        [(circuit, observable, row) for row in values]).result()
    assert len(lowerings) == 1
    for pub, row in zip(ours, values):
        assert pub.data.evs == pytest.approx(exact_value(circuit, row, observable), abs=1e-9)
    measured = circuit.measure_all(inplace=False)
    lowerings.clear()
    SamplerV2(options={"backend_options": {"device": "CPU"}}).run(
        [(measured, row) for row in values[:5]], shots=10).result()
    assert len(lowerings) == 1


def test_a_sweep_is_lowered_once_and_read_in_one_call_per_set(lowerings):
    kernels = FakeKernels(watch=("expectation_pauli_groups",))
    calls = kernels.arguments["expectation_pauli_groups"]
    circuit = parameterized_circuit(4, layers=1, seed=1)
    observables = [SparsePauliOp(["ZZII", "IZZI", "XXII", "YYII", "IIIZ"]),
                   SparsePauliOp(["XXII", "ZIZI", "IXIX"])]
    values = random_values(circuit, (30, 1), seed=3)
    EstimatorV2(backend=GPUSimulator(device=fake_device(kernels))).run(
        [(circuit, observables, values)]).result()
    assert len(lowerings) == 1
    assert len(calls) == 30
    x_masks, term_starts, z_masks = calls[0]
    # 7 distinct terms (XXII is shared) in 3 X-masks: 0 (Z strings), XX on qubits 2-3
    # (XXII and YYII), X on qubits 0 and 2 (IXIX).
    assert sorted(x_masks.tolist()) == sorted([0, 0b1100, 0b0101])
    assert term_starts.tolist()[-1] == z_masks.size == 7


@pytest.mark.parametrize("precision_target", [0.05, 0.01])
def test_shot_based_estimates_have_honest_standard_errors(precision_target):
    """At precision > 0 the estimate is drawn as measured shots would give it: the errors
    divided by their reported standard errors follow a standard normal."""
    rng = np.random.default_rng(21)
    circuit = parameterized_circuit(4, layers=2, seed=12)
    values = random_values(circuit, (40, 1), seed=13)
    observables = [random_observable(4, 8, rng) for _ in range(5)]
    observables.append(SparsePauliOp(["IIII", "ZZII"], [2.0, 0.5]))
    result = EstimatorV2(seed=99).run([(circuit, observables, values)],
                                      precision=precision_target).result()[0]
    exact = StatevectorEstimator().run([(circuit, observables, values)]).result()[0].data.evs
    stds = result.data.stds
    assert np.all(stds > 0)
    assert np.all(stds <= precision_target * 1.05)
    z = (result.data.evs - exact) / stds
    chi2 = float(np.sum(z**2))
    pvalue = stats.chi2.sf(chi2, z.size)
    assert ALPHA < pvalue < 1 - ALPHA
    assert abs(np.mean(z)) < 5 / np.sqrt(z.size)
    wrong = (result.data.evs - (exact + 2 * precision_target)) / stds
    assert stats.chi2.sf(float(np.sum(wrong**2)), z.size) < ALPHA
    assert result.metadata["target_precision"] == precision_target


def test_seeds_reproduce_shot_estimates():
    circuit = parameterized_circuit(3, layers=1, seed=1)
    pub = (circuit, ["XXY", "ZZZ"], random_values(circuit, (3, 1), seed=2))
    first = EstimatorV2(seed=5).run([pub], precision=0.1).result()[0].data.evs
    again = EstimatorV2(options={"run_options": {"seed_simulator": 5}}).run(
        [pub], precision=0.1).result()[0].data.evs
    other = EstimatorV2(seed=6).run([pub], precision=0.1).result()[0].data.evs
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_pub_precision_overrides_the_default():
    estimator = EstimatorV2(default_precision=0.2, seed=1)
    assert estimator.default_precision == 0.2
    circuit = QuantumCircuit(2)
    circuit.h(0)
    noisy, exact = estimator.run([(circuit, "XI"), (circuit, "IX", None, 0.0)]).result()
    assert noisy.metadata["target_precision"] == 0.2
    assert noisy.data.stds > 0
    assert exact.data.evs == pytest.approx(1.0) and exact.data.stds == 0


def test_options_in_aer_form_and_from_a_backend():
    estimator = EstimatorV2(options={"default_precision": 0.0,
                                     "backend_options": {"precision": "single"}},
                            backend=GPUSimulator(device="CPU"))
    assert estimator.backend.options.precision == "single"
    assert estimator.backend.options.device == "CPU"
    result = estimator.run([(QuantumCircuit(1), "Z")]).result()[0]
    assert result.metadata["simulator_metadata"]["precision"] == "single"


@pytest.mark.parametrize(("options", "message"), [
    ({"shots": 10}, "unknown primitive option"),
    ({"backend_options": {"shots": 10}}, "not taken by the primitives"),
    ({"backend_options": {"precision": "half"}}, "precision='half'"),
    ({"backend_options": {"device": "TPU"}}, "TPU"),
    ({"run_options": {"shots": 5}}, "only 'seed_simulator'"),
    ({"default_precision": -1.0}, "default_precision=-1.0"),
])
def test_bad_options_raise_naming_the_value(options, message):
    with pytest.raises((InvalidOptionError, ValueError), match=message):
        EstimatorV2(options=options)


def test_bad_seed_raises():
    with pytest.raises(InvalidOptionError, match="seed=-3"):
        EstimatorV2(seed=-3)


def measured_circuit() -> QuantumCircuit:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.measure_all()
    return circuit


@pytest.mark.parametrize(("pub", "error", "message"), [
    ((measured_circuit(), "ZZ"), InvalidCircuitError, "must be unitary"),
    ((QuantumCircuit(2), "ZZZ"), ValueError, "qubits"),
    ((parameterized_circuit(2, 1, seed=1), "ZZ", np.zeros((3, 2))), ValueError, "inconsistent"),
    ((parameterized_circuit(2, 1, seed=1), "ZZ", np.full((1, 4), np.nan)), ValueError,
     "finite"),
    ((parameterized_circuit(2, 1, seed=1), ["ZZ", "XX", "YY"], np.zeros((2, 4))), ValueError,
     "broadcast"),
    ((QuantumCircuit(2), "ZZ", None, -0.1), ValueError, "precision"),
])
def test_bad_pubs_raise_at_run_before_any_job(pub, error, message):
    with pytest.raises(error, match=message):
        EstimatorV2().run([pub])


def test_unsupported_instruction_is_named():
    from qiskit.circuit import Instruction

    circuit = QuantumCircuit(1)
    circuit.append(Instruction("mystery", 1, 0, []), [0])
    with pytest.raises(InvalidCircuitError, match="mystery"):
        EstimatorV2().run([(circuit, "Z")])
