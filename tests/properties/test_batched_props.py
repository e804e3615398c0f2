"""Many parameter sets of a small circuit run as one batch of states
(``gpuprovider/batched.py``): on random parameterised circuits of every unitary kind (standard
gates with affine and non-affine parameter expressions, controlled gates with several controls,
custom and definition-only gates, state preparation, parameterised global phases), the
estimator's values from the batch equal Qiskit's and those of the set-by-set path, and each
final state of the batch is Qiskit's state for its set."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from qiskit.primitives import StatevectorEstimator
from qiskit.primitives.containers.estimator_pub import EstimatorPub

from gpuprovider import batched
from gpuprovider import device as devices
from gpuprovider.compile.lower import lower_circuit
from gpuprovider.primitives import EstimatorV2
from gpuprovider.primitives import estimator as estimator_module
from properties.harness import (
    ev_tolerance,
    examples,
    exact_state,
    phase_insensitive_error,
    with_save,
)
from properties.strategies import measured_circuits, observables, parameterized_circuits

SET_BY_SET = devices.CPU.with_policy(small_state_qubits=0)
"""The CPU with every state on the Numba kernels, where nothing is batched."""
KINDS = ("standard", "controlled", "matrix", "definition")
PRECISIONS = {"double": (np.complex128, 1e-10), "single": (np.complex64, 2e-5)}


@pytest.fixture(params=list(PRECISIONS), ids=list(PRECISIONS))
def precision(request):
    return request.param


def _estimator(device, precision: str) -> EstimatorV2:
    return EstimatorV2(options={"backend_options": {"device": device, "precision": precision}})


@examples(1.5)
@given(case=parameterized_circuits(kinds=KINDS, max_qubits=5, allow_initialize=False),
       data=st.data())
def test_batched_values_equal_qiskit_and_the_set_by_set_path(precision, case, data):
    circuit = case.circuit
    observable_list = [data.draw(observables(circuit.num_qubits)) for _ in range(2)]
    values = case.values().reshape(len(case.bindings), 1, len(case.parameters))
    pub = (circuit, observable_list, values)
    program = lower_circuit(circuit, PRECISIONS[precision][0], parameterized=True)
    assert batched.batchable(program, devices.CPU, len(case.bindings)), case.describe()
    assert not batched.batchable(program, SET_BY_SET, len(case.bindings))
    got = np.asarray(_estimator(devices.CPU, precision).run([pub]).result()[0].data.evs)
    set_by_set = np.asarray(_estimator(SET_BY_SET, precision).run([pub]).result()[0].data.evs)
    expected = np.asarray(StatevectorEstimator().run([pub]).result()[0].data.evs)
    coefficients = np.concatenate([o.coeffs for o in observable_list])
    allowed = ev_tolerance(PRECISIONS[precision][1], circuit.num_qubits, coefficients)
    message = f"{case.describe()}\ngot {got!r}\nexpected {expected!r}"
    assert float(np.max(np.abs(got - expected))) <= allowed, message
    assert float(np.max(np.abs(got - set_by_set))) <= allowed, message


@examples(1)
@given(case=parameterized_circuits(kinds=KINDS + ("prepare",), max_qubits=5))
def test_each_final_state_of_a_batch_is_qiskits(precision, case):
    dtype, tolerance = PRECISIONS[precision]
    program = lower_circuit(case.circuit, dtype, parameterized=True)
    if not batched.batchable(program, devices.CPU, len(case.bindings)):
        assert any(not isinstance(op, batched._BATCH_OPS) for op in program.ops)
        return  # initialize's reset: not a batch (the estimator refuses it too)
    states = [state for _, chunk in batched.batches(program, tuple(case.parameters),
                                                    case.values(), dtype, lambda: None)
              for state in chunk]
    assert len(states) == len(case.bindings)
    for index, state in enumerate(states):
        expected = exact_state(case.bound(index))
        # The circuit's constant global phase is folded into save ops, not the gates.
        error = phase_insensitive_error(state, expected)
        assert error <= 10 * tolerance, f"set {index}: 1 - overlap {error:.3g}\n" \
                                        f"{case.describe()}"


@examples(1)
@given(case=measured_circuits(parameterized_circuits(kinds=KINDS, allow_initialize=False)))
def test_sampler_pubs_and_sweeps_of_these_circuits_run_as_batches(case):
    """So the sampler and sweep property tests (``test_primitive_props.py``,
    ``test_sweep_props.py``), whose small parameterised circuits run on the CPU, check the
    batch path against exact distributions and states."""
    for circuit in (case.circuit,
                    with_save(case.circuit.remove_final_measurements(inplace=False))):
        program = lower_circuit(circuit, np.complex128, parameterized=True)
        assert batched.batchable(program, devices.CPU, len(case.bindings)), case.describe()
        programs = list(batched.set_programs(program, tuple(case.parameters), case.values(),
                                             np.complex128, lambda: None))
        assert [index for index, _ in programs] == list(range(len(case.bindings)))


@examples(1)
@given(case=parameterized_circuits(kinds=KINDS, max_qubits=4, allow_initialize=False),
       data=st.data())
def test_pubs_of_one_circuit_share_their_batches(precision, case, data):
    """A gradient's pubs: one set each, with their own observables, plus one pub of every
    set; pub by pub they equal Qiskit's values, and they ran as one batch."""
    circuit = case.circuit
    values = case.values()
    pubs = [(circuit, data.draw(observables(circuit.num_qubits)), row) for row in values]
    pubs.append((circuit, data.draw(observables(circuit.num_qubits)), values))
    estimator = _estimator(devices.CPU, precision)
    results = estimator.run(pubs).result()
    expected = StatevectorEstimator().run(pubs).result()
    for index, (got, want) in enumerate(zip(results, expected)):
        allowed = ev_tolerance(PRECISIONS[precision][1], circuit.num_qubits,
                               pubs[index][1].coeffs)
        error = float(np.max(np.abs(np.asarray(got.data.evs) - np.asarray(want.data.evs))))
        assert error <= allowed, f"pub {index}: error {error:.3g}\n{case.describe()}"
    execution, compiled = estimator._compile_pubs([circuit] * len(pubs))
    tasks = [estimator_module._task(i, EstimatorPub.coerce(pub), c, {})
             for i, (pub, c) in enumerate(zip(pubs, compiled))]

    class Control:
        def check(self) -> None:
            pass

    shared = estimator_module._shared_batches(tasks, execution, Control())
    assert sorted(shared) == list(range(len(pubs)))
