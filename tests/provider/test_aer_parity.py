"""Code written for qiskit-aer's statevector method runs unchanged on GPUSimulator: the same
code runs on both and the results are compared (values, types, keys, metadata, seeds)."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit.library import PauliGate, UCGate
from qiskit.quantum_info import DensityMatrix, SparsePauliOp, Statevector, random_unitary
from qiskit.result import ProbDistribution

from gpuprovider import GPUSimulator
from gpuprovider import instructions as ours

qiskit_aer = pytest.importorskip("qiskit_aer")
AerSimulator = qiskit_aer.AerSimulator
aer_library = pytest.importorskip("qiskit_aer.library")

OPERATOR = SparsePauliOp(["ZI", "IZ", "XY"], [1.0, 0.5, -0.3])
SUBTYPE_FLAGS = [
    pytest.param({}, id="default"),
    pytest.param({"pershot": True}, id="pershot"),
    pytest.param({"conditional": True}, id="conditional"),
    pytest.param({"pershot": True, "conditional": True}, id="pershot-conditional"),
]
AVERAGED_FLAGS = [*SUBTYPE_FLAGS,
                  pytest.param({"unnormalized": True}, id="unnormalized"),
                  pytest.param({"unnormalized": True, "conditional": True},
                               id="unnormalized-conditional")]


def aer() -> AerSimulator:
    return AerSimulator(method="statevector")


def mid_circuit(save) -> QuantumCircuit:
    """h; measure q0 -> c0; then q1 depends on it; the save comes after the measurement (no
    measure sampling: one branch per outcome), then q1 is measured into c1."""
    circuit = QuantumCircuit(2, 2)
    circuit.h(0)
    circuit.measure(0, 0)
    circuit.ry(0.7, 1)
    circuit.cx(0, 1)
    circuit.s(1)
    save(circuit)
    circuit.measure(1, 1)
    return circuit


SAVES = {
    "statevector": (lambda c, **kw: c.save_statevector(label="v", **kw), False),
    "statevector_dict": (lambda c, **kw: c.save_statevector_dict(label="v", **kw), False),
    "state": (lambda c, **kw: c.save_state(label="v", **kw), False),
    "amplitudes": (lambda c, **kw: c.save_amplitudes([3, 0, 1], label="v", **kw), False),
    "amplitudes_sq": (lambda c, **kw: c.save_amplitudes_squared([3, 0, 1], label="v", **kw),
                      True),
    "probabilities": (lambda c, **kw: c.save_probabilities([1, 0], label="v", **kw), True),
    "probabilities_dict": (lambda c, **kw: c.save_probabilities_dict([1], label="v", **kw),
                           True),
    "density_matrix": (lambda c, **kw: c.save_density_matrix([1, 0], label="v", **kw), True),
    "expval": (lambda c, **kw: c.save_expectation_value(OPERATOR, [0, 1], label="v", **kw),
               True),
    "expval_var": (lambda c, **kw: c.save_expectation_value_variance(OPERATOR, [1, 0],
                                                                      label="v", **kw), True),
}


def assert_same_value(mine, theirs, where: str) -> None:
    """Same Python type (Aer's compatibility subclasses of Statevector and DensityMatrix
    count as those), the same container shape, and equal numbers."""
    assert _kind(mine) is _kind(theirs), f"{where}: {type(mine)} vs {type(theirs)}"
    if isinstance(theirs, dict):
        assert set(mine) == set(theirs), f"{where}: keys {sorted(mine)} vs {sorted(theirs)}"
        for key in theirs:
            assert_same_value(mine[key], theirs[key], f"{where}[{key!r}]")
    elif isinstance(theirs, list):
        assert len(mine) == len(theirs), f"{where}: {len(mine)} vs {len(theirs)} entries"
        for k, (a, b) in enumerate(zip(mine, theirs)):
            assert_same_value(a, b, f"{where}[{k}]")
    elif isinstance(theirs, (Statevector, DensityMatrix)):
        assert mine.dims() == theirs.dims(), where
        np.testing.assert_allclose(mine.data, theirs.data, atol=1e-10, err_msg=where)
    elif isinstance(theirs, np.ndarray):
        assert mine.dtype == theirs.dtype and mine.shape == theirs.shape, (
            f"{where}: {mine.dtype}{mine.shape} vs {theirs.dtype}{theirs.shape}")
        np.testing.assert_allclose(mine, theirs, atol=1e-10, err_msg=where)
    else:
        assert mine == pytest.approx(theirs, abs=1e-10), where


def _kind(value) -> type:
    for base in (Statevector, DensityMatrix):
        if isinstance(value, base):
            return base
    return type(value)


def per_key(value, memory: list[str], key_of) -> dict:
    """A per-shot list regrouped by the memory key its shot had at the save."""
    grouped: dict = {}
    for entry, bits in zip(value, memory):
        grouped.setdefault(key_of(bits), []).append(entry)
    return grouped


@pytest.mark.parametrize("name", sorted(SAVES))
@pytest.mark.parametrize("flags", AVERAGED_FLAGS)
def test_every_save_and_subtype_matches_aer_after_a_mid_circuit_measurement(name, flags):
    save, averaged = SAVES[name]
    if "unnormalized" in flags and not averaged:
        pytest.skip("single-value saves take no unnormalized")
    circuit = mid_circuit(lambda c: save(c, **flags))
    shots = 400
    mine = GPUSimulator(device="CPU").run(circuit, shots=shots, seed_simulator=3,
                                          memory=True).result()
    theirs = aer().run(circuit, shots=shots, seed_simulator=3, memory=True).result()
    value, reference = mine.data(0)["v"], theirs.data(0)["v"]
    subtype = mine.results[0].metadata["result_subtypes"]["v"]
    assert subtype == theirs.results[0].metadata["result_subtypes"]["v"]
    assert mine.results[0].metadata["measure_sampling"] is False
    assert theirs.results[0].metadata["measure_sampling"] is False

    # Shots are random: compare what is exact for every shot (the value of each memory key),
    # and the weights only where they are deterministic.
    ones = [int(bits[-1]) for bits in mine.get_memory()]
    fraction = sum(ones) / shots
    aer_fraction = sum(int(bits[-1]) for bits in theirs.get_memory()) / shots

    def key_of(bits: str) -> str:
        return hex(int(bits[-1]))  # the memory at the save: clbit 0 only

    if subtype in ("single", "average", "accum"):
        if subtype == "single":  # one branch's value: compare with that branch's in Aer
            keyed = aer().run(mid_circuit(lambda c: save(c, conditional=True)), shots=shots,
                              seed_simulator=3).result().data(0)["v"]
            assert_same_value(value, keyed[_which_branch(value, keyed)], name)
        else:
            by_key = aer().run(mid_circuit(lambda c: save(c, conditional=True)), shots=shots,
                               seed_simulator=3).result().data(0)["v"]
            scale = shots if subtype == "accum" else 1
            expected = (1 - fraction) * _number(by_key["0x0"]) + fraction * _number(by_key["0x1"])
            np.testing.assert_allclose(_number(value), scale * expected, atol=1e-9)
            assert _kind(value) is _kind(reference)
            # Aer's own value weighs its own shots the same way
            np.testing.assert_allclose(
                _number(reference),
                scale * ((1 - aer_fraction) * _number(by_key["0x0"])
                         + aer_fraction * _number(by_key["0x1"])), atol=1e-9)
    elif subtype in ("c_single", "c_average"):
        assert_same_value(value, reference, name)
    elif subtype == "c_accum":
        assert set(value) == set(reference)
        counts = {"0x0": shots - sum(ones), "0x1": sum(ones)}
        aer_counts = {"0x0": shots - int(aer_fraction * shots), "0x1": int(aer_fraction * shots)}
        for key in value:
            np.testing.assert_allclose(_number(value[key]) / counts[key],
                                       _number(reference[key]) / aer_counts[key], atol=1e-9)
    elif subtype == "list":
        assert len(value) == shots == len(reference)
        assert _kind(value) is _kind(reference)
        mine_by_key = per_key(value, mine.get_memory(), key_of)
        aer_by_key = per_key(reference, theirs.get_memory(), key_of)
        for key in mine_by_key:
            for entry in mine_by_key[key]:
                assert_same_value(entry, aer_by_key[key][0], f"{name} shot with key {key}")
    else:  # c_list
        assert set(value) == set(reference)
        for key in value:
            assert len(value[key]) == ones.count(int(key, 16)), key
            for entry in value[key]:
                assert_same_value(entry, reference[key][0], f"{name}[{key}]")


def _number(value) -> np.ndarray:
    if isinstance(value, (Statevector, DensityMatrix)):
        return value.data
    if isinstance(value, dict):
        keys = sorted(value)
        return np.array([value[k] for k in keys])
    return np.asarray(value)


def _which_branch(value, keyed: dict) -> str:
    for key, candidate in keyed.items():
        try:
            assert_same_value(value, candidate, "")
            return key
        except AssertionError:
            continue
    raise AssertionError(f"the single value is no branch's value: {value}")


@pytest.mark.parametrize("name", sorted(SAVES))
@pytest.mark.parametrize("flags", SUBTYPE_FLAGS)
def test_saves_before_final_measurements_are_taken_once_as_in_aer(name, flags):
    """Measure sampling: the save runs once, so a pershot list has one entry and the
    conditional key is the memory before the final measurements."""
    save, _ = SAVES[name]
    circuit = QuantumCircuit(2, 2)
    circuit.h(0)
    circuit.cry(0.9, 0, 1)
    save(circuit, **flags)
    circuit.measure([0, 1], [0, 1])
    mine = GPUSimulator(device="CPU").run(circuit, shots=50, seed_simulator=1).result()
    theirs = aer().run(circuit, shots=50, seed_simulator=1).result()
    assert mine.results[0].metadata["measure_sampling"] is True
    assert theirs.results[0].metadata["measure_sampling"] is True
    assert_same_value(mine.data(0)["v"], theirs.data(0)["v"], name)


def test_conditional_keys_are_the_whole_memory_in_hex_or_empty_without_clbits():
    from qiskit import ClassicalRegister, QuantumRegister

    circuit = QuantumCircuit(QuantumRegister(2), ClassicalRegister(1, "a"),
                             ClassicalRegister(2, "b"))
    circuit.x(0)
    circuit.measure(0, circuit.clbits[2])
    circuit.h(1)
    circuit.measure(1, circuit.clbits[0])
    circuit.save_probabilities([0, 1], label="p", conditional=True)
    mine = GPUSimulator(device="CPU").run(circuit, shots=200, seed_simulator=2).result()
    theirs = aer().run(circuit, shots=200, seed_simulator=2).result()
    assert_same_value(mine.data(0)["p"], theirs.data(0)["p"], "p")
    assert set(mine.data(0)["p"]) == {"0x4", "0x5"}

    no_clbits = QuantumCircuit(1)
    no_clbits.h(0)
    no_clbits.save_probabilities(label="p", conditional=True)
    assert_same_value(GPUSimulator(device="CPU").run(no_clbits).result().data(0)["p"],
                      aer().run(no_clbits).result().data(0)["p"], "no clbits")


def test_dict_saves_drop_values_at_the_zero_threshold_as_aer():
    circuit = QuantumCircuit(3)
    circuit.initialize([np.sqrt(1 - 2e-18 - 1e-20), 1e-9, 1e-10, 0, 8e-11 + 8e-11j,
                        1e-11, 0, 0], range(3), normalize=True)
    circuit.save_statevector_dict(label="ket")
    circuit.save_probabilities_dict(label="p")
    mine = GPUSimulator(device="CPU").run(circuit).result().data(0)
    theirs = aer().run(circuit).result().data(0)
    assert_same_value(mine["ket"], theirs["ket"], "ket")
    assert isinstance(mine["p"], ProbDistribution)
    assert_same_value(dict(mine["p"]), dict(theirs["p"]), "p")


def test_our_save_instructions_are_aers_on_our_simulator():
    """gpuprovider's own instruction classes (used when qiskit-aer is not installed) carry
    Aer's names, parameters and subtypes: both give identical results here."""
    def build(library) -> QuantumCircuit:
        circuit = QuantumCircuit(3, 1)
        circuit.h(0)
        circuit.cx(0, 1)
        circuit.measure(0, 0)
        circuit.ry(0.3, 2)
        circuit.append(library.SaveStatevector(3, label="sv", conditional=True), range(3))
        circuit.append(library.SaveStatevectorDict(3, label="svd"), range(3))
        circuit.append(library.SaveAmplitudes(3, [1, 7], label="a", pershot=True), range(3))
        circuit.append(library.SaveAmplitudesSquared(3, [0, 7], label="a2",
                                                     unnormalized=True), range(3))
        circuit.append(library.SaveProbabilities(2, label="p", conditional=True), [2, 0])
        circuit.append(library.SaveProbabilitiesDict(1, label="pd"), [1])
        circuit.append(library.SaveDensityMatrix(2, label="rho"), [1, 2])
        circuit.append(library.SaveExpectationValue(OPERATOR, label="e", pershot=True), [1, 2])
        circuit.append(library.SaveExpectationValueVariance(OPERATOR, label="ev"), [2, 0])
        circuit.append(library.SaveState(3, label="st"), range(3))
        return circuit

    backend = GPUSimulator(device="CPU")
    results = [backend.run(build(library), shots=64, seed_simulator=5).result()
               for library in (aer_library, ours)]
    for label in ("sv", "svd", "a", "a2", "p", "pd", "rho", "e", "ev", "st"):
        assert_same_value(results[1].data(0)[label], results[0].data(0)[label], label)
    for op in build(ours).data:
        if op.operation.name.startswith("save"):
            aer_op = next(i.operation for i in build(aer_library).data
                          if i.operation.label == op.operation.label)
            assert (op.operation.name, op.operation._subtype) == (aer_op.name,
                                                                 aer_op._subtype)


def test_save_state_is_the_statevector_under_its_key():
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.save_state()
    mine = GPUSimulator(device="CPU").run(circuit).result()
    theirs = aer().run(circuit).result()
    assert set(mine.data(0)) - {"counts"} == set(theirs.data(0)) == {"statevector"}
    assert_same_value(mine.get_statevector(), theirs.get_statevector(), "state")


def test_set_statevector_loads_the_state_as_given():
    state = Statevector(random_unitary(8, seed=4).data[:, 0])
    circuit = QuantumCircuit(3, 3)
    circuit.h(0)
    circuit.measure(0, 0)
    circuit.set_statevector(state)
    circuit.cx(0, 2)
    circuit.save_statevector()
    circuit.measure(range(3), range(3))
    mine = GPUSimulator(device="CPU").run(circuit, shots=10, seed_simulator=1).result()
    theirs = aer().run(circuit, shots=10, seed_simulator=1).result()
    assert_same_value(mine.get_statevector(), theirs.get_statevector(), "set")
    expected = state.evolve(_cx(0, 2, 3))
    np.testing.assert_allclose(mine.get_statevector().data, expected.data, atol=1e-12)


def _cx(control: int, target: int, width: int) -> QuantumCircuit:
    circuit = QuantumCircuit(width)
    circuit.cx(control, target)
    return circuit


def test_set_statevector_is_refused_when_invalid():
    with pytest.raises(ValueError, match="not valid"):
        ours.SetStatevector([1.0, 1.0])
    circuit = QuantumCircuit(2)
    with pytest.raises(ValueError, match="number of qubits"):
        ours._set_statevector(circuit, [1.0, 0.0])


@pytest.mark.parametrize("label", ["XYZ", "IXI", "ZZZZ", "YIY"])
def test_pauli_gate_runs_untranspiled(label):
    width = len(label)
    circuit = QuantumCircuit(width + 1)
    circuit.h(range(width + 1))
    circuit.s(1)
    circuit.append(PauliGate(label), list(range(1, width + 1))[::-1])
    expected = Statevector(circuit)
    circuit.save_statevector()
    mine = GPUSimulator(device="CPU").run(circuit).result().get_statevector()
    theirs = aer().run(circuit).result().get_statevector()
    np.testing.assert_allclose(mine.data, expected.data, atol=1e-12)
    np.testing.assert_allclose(mine.data, theirs.data, atol=1e-12)


@pytest.mark.parametrize("up_to_diagonal", [False, True])
def test_multiplexer_is_exact_as_in_aer(up_to_diagonal):
    matrices = [random_unitary(2, seed=s).data for s in range(4)]
    circuit = QuantumCircuit(3)
    circuit.h(range(3))
    circuit.append(UCGate(matrices, up_to_diagonal=up_to_diagonal), [2, 0, 1])
    circuit.save_statevector()
    mine = GPUSimulator(device="CPU").run(circuit).result().get_statevector()
    theirs = aer().run(circuit).result().get_statevector()
    np.testing.assert_allclose(mine.data, theirs.data, atol=1e-12)


def test_seeds_per_experiment_as_aer_and_an_experiment_reruns_alone():
    circuits = []
    for k in range(3):
        circuit = QuantumCircuit(2, 2, name=f"c{k}")
        circuit.h(0)
        circuit.measure(0, 0)
        circuit.rx(0.4 * (k + 1), 1)
        circuit.measure(1, 1)
        circuits.append(circuit)
    mine = GPUSimulator(device="CPU").run(circuits, shots=64, seed_simulator=12345,
                                          memory=True).result()
    theirs = aer().run(circuits, shots=64, seed_simulator=12345).result()
    seeds = [r.seed_simulator for r in mine.results]
    assert seeds == [r.seed_simulator for r in theirs.results] == [12345, 14458, 16571]
    alone = GPUSimulator(device="CPU").run(circuits[2], shots=64, seed_simulator=seeds[2],
                                           memory=True).result()
    assert alone.get_memory() == mine.get_memory(2)


def test_metadata_keys_as_aer():
    circuit = QuantumCircuit(5, 2)
    circuit.h(1)
    circuit.cx(1, 3)
    circuit.measure([1, 3], [0, 1])
    mine = GPUSimulator(device="CPU").run(circuit, shots=10).result().results[0].metadata
    theirs = aer().run(circuit, shots=10).result().results[0].metadata
    for key in ("active_input_qubits", "input_qubit_map", "num_qubits", "remapped_qubits",
                "measure_sampling", "method", "num_clbits"):
        assert mine[key] == theirs[key], key


@pytest.mark.parametrize("method", ["automatic", "statevector", "density_matrix"])
def test_noisy_metadata_says_what_ran_as_aer(method):
    """A noisy circuit: the method that ran, and whether one simulation was sampled for every
    shot (a density matrix is; trajectories are not)."""
    from qiskit_aer import noise

    model = noise.NoiseModel()
    model.add_all_qubit_quantum_error(noise.amplitude_damping_error(0.1), ["h"])
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.measure_all()
    mine = GPUSimulator(device="CPU", noise_model=model, method=method).run(
        circuit, shots=100).result().results[0].metadata
    theirs = AerSimulator(noise_model=model, method=method).run(
        circuit, shots=100).result().results[0].metadata
    for key in ("measure_sampling", "method"):
        assert mine[key] == theirs[key], key


def test_method_option_as_aer():
    assert GPUSimulator(device="CPU").options.method == AerSimulator().options.method
    circuit = QuantumCircuit(1, 1)
    circuit.measure(0, 0)
    for method in ("statevector", "automatic"):
        assert GPUSimulator(device="CPU", method=method).run(circuit).result().success
