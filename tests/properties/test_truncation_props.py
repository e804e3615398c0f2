"""Idle-qubit truncation (option ``enable_truncation``, default True): a wide circuit of which
only 3-6 qubits are touched runs as the circuit on just those qubits would, and says which in
``result.results[0].metadata["active_input_qubits"]``."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from qiskit import ClassicalRegister
from qiskit.primitives import StatevectorEstimator
from qiskit.quantum_info import SparsePauliOp, Statevector
from testkit import ALPHA, chi_square_pvalue

from gpuprovider.primitives import EstimatorV2, SamplerV2
from properties.harness import (
    FUSION,
    FUSION_IDS,
    backend_for,
    backend_options,
    ev_tolerance,
    examples,
    exact_state,
    saved_state,
    state_error,
    state_message,
)
from properties.strategies import NO_INITIALIZE, embedded_circuits, observables

pytestmark = pytest.mark.parametrize("fusion", FUSION, ids=FUSION_IDS)

SHOTS = 4000


def used_qubits(circuit) -> set[int]:
    return {circuit.find_bit(q).index for instruction in circuit.data for q in instruction.qubits}


def check_active_qubits(metadata: dict, case, wide) -> None:
    """``active_input_qubits`` names no idle qubit, and names every qubit the circuit leaves
    out of |0> (some implementation may leave out a qubit only identities act on)."""
    assert "active_input_qubits" in metadata, (
        f"no 'active_input_qubits' in the experiment metadata {sorted(metadata)}\n"
        + case.describe())
    active = sorted(int(q) for q in metadata["active_input_qubits"])
    probabilities = Statevector(case.reference).probabilities()
    excited = {
        wide_qubit for i, wide_qubit in enumerate(case.extra["active"])
        if sum(p for index, p in enumerate(probabilities) if index >> i & 1) > 1e-9
    }
    used = used_qubits(wide)
    assert excited <= set(active) <= used, (
        f"active_input_qubits {active}: must hold every qubit the circuit leaves out of |0> "
        f"{sorted(excited)} and only qubits some instruction acts on {sorted(used)}\n"
        + case.describe())


def wide_operator(small_op: SparsePauliOp, active: list[int], total: int,
                  idle_z: list[int | None]) -> SparsePauliOp:
    """``small_op`` with small qubit i on wide qubit ``active[i]``; term t also gets a Z on
    idle qubit ``idle_z[t]`` (if not None), which reads +1 there."""
    terms = []
    for t, (label, coeff) in enumerate(small_op.to_list()):
        paulis = label[::-1]  # character i acts on small qubit i
        indices = list(active)
        if idle_z[t] is not None:
            paulis += "Z"
            indices.append(idle_z[t])
        terms.append((paulis, indices, coeff))
    return SparsePauliOp.from_sparse_list(terms, num_qubits=total)


def measured_wide(case):
    wide = case.circuit.copy()
    register = ClassicalRegister(case.reference.num_qubits, "meas")
    wide.add_register(register)
    for i, q in enumerate(case.extra["active"]):
        wide.measure(q, register[i])
    return wide


def check_counts(what: str, counts: dict[str, int], case) -> None:
    expected = Statevector(case.reference).probabilities_dict()
    impossible = {key: n for key, n in counts.items() if expected.get(key, 0.0) <= 1e-12}
    assert not impossible, (f"{what}: outcomes of probability 0: {impossible}\n"
                            f"expected {expected}\n" + case.describe())
    pvalue = chi_square_pvalue(counts, expected)
    assert pvalue > ALPHA, (
        f"{what} of the {case.extra['total']}-qubit circuit: chi-square p = {pvalue:.3g} <= "
        f"{ALPHA} against the {case.reference.num_qubits}-qubit circuit's probabilities\n"
        f"counts {dict(sorted(counts.items()))}\nexpected {dict(sorted(expected.items()))}\n"
        + case.describe())


@examples(2)
@given(case=embedded_circuits(), seed=st.integers(0, 2**31 - 1))
def test_counts_of_a_wide_circuit(device, precision, fusion, case, seed):
    wide = measured_wide(case)
    backend = backend_for(device, precision, fusion)
    result = backend.run(wide, shots=SHOTS, seed_simulator=seed).result()
    counts = {key.replace(" ", ""): n for key, n in result.get_counts().items()}
    check_counts(f"backend.run ({device}, {precision}, fusion={fusion}, seed={seed})", counts,
                 case)
    check_active_qubits(result.results[0].metadata, case, wide)


@examples(1)
@given(case=embedded_circuits(), seed=st.integers(0, 2**31 - 1))
def test_sampler_on_a_wide_circuit(device, precision, fusion, case, seed):
    sampler = SamplerV2(seed=seed, options={"backend_options": backend_options(device, precision,
                                                                               fusion)})
    bits = sampler.run([(measured_wide(case),)], shots=SHOTS).result()[0].data.meas
    check_counts(f"SamplerV2 ({device}, {precision}, fusion={fusion}, seed={seed})",
                 bits.get_counts(), case)


@st.composite
def saves_cases(draw):
    case = draw(embedded_circuits(kind_options=NO_INITIALIZE))
    return case, draw(observables(case.reference.num_qubits))


@examples(2)
@given(data=saves_cases())
def test_saved_probabilities_and_expectation_values(device, precision, tolerance, fusion, data):
    case, small_op = data
    small = case.reference
    active = case.extra["active"]
    wide = case.circuit.copy()
    wide.save_probabilities(active, label="probabilities")
    wide.save_expectation_value(small_op, active, label="expval")
    backend = backend_for(device, precision, fusion)
    result = backend.run(wide, shots=1, seed_simulator=5).result()
    data0 = result.data(0)
    state = Statevector(small)
    expected_p = state.probabilities()
    actual_p = np.asarray(data0["probabilities"])
    error = state_error(actual_p, expected_p)
    assert error <= 4 * tolerance, (
        f"save_probabilities on qubits {active} of the {case.extra['total']}-qubit circuit "
        f"({device}, {precision}, fusion={fusion}): error {error:.3g}\ngot {actual_p}\n"
        f"expected {expected_p}\n{case.describe()}")
    expected_ev = float(np.real(state.expectation_value(small_op)))
    actual_ev = float(np.real(data0["expval"]))
    allowed = ev_tolerance(tolerance, small.num_qubits, small_op.coeffs)
    assert abs(actual_ev - expected_ev) <= allowed, (
        f"save_expectation_value({small_op}) on qubits {active} "
        f"({device}, {precision}, fusion={fusion}): got {actual_ev}, expected {expected_ev}\n"
        + case.describe())
    check_active_qubits(result.results[0].metadata, case, wide)


@st.composite
def estimator_cases(draw):
    case = draw(embedded_circuits(kind_options=NO_INITIALIZE))
    k = case.reference.num_qubits
    idle = sorted(set(range(case.extra["total"])) - set(case.extra["active"]))
    small_ops = [draw(observables(k)) for _ in range(draw(st.integers(1, 2)))]
    idle_z = [[draw(st.none() | st.sampled_from(idle)) for _ in op.to_list()] for op in small_ops]
    return case, small_ops, idle_z


@examples(1)
@given(data=estimator_cases())
def test_estimator_on_a_wide_circuit(device, precision, tolerance, fusion, data):
    """EstimatorV2 on the wide circuit (observables with identities, and Z, on idle qubits)
    against StatevectorEstimator on the small one."""
    case, small_ops, idle_z = data
    active = case.extra["active"]
    total = case.extra["total"]
    wide_ops = [wide_operator(op, active, total, z) for op, z in zip(small_ops, idle_z)]
    estimator = EstimatorV2(options={"backend_options": backend_options(device, precision,
                                                                         fusion)})
    actual = np.asarray(estimator.run([(case.circuit, wide_ops)]).result()[0].data.evs)
    expected = np.asarray(StatevectorEstimator().run([(case.reference, small_ops)])
                          .result()[0].data.evs)
    coefficients = np.concatenate([op.coeffs for op in small_ops])
    allowed = ev_tolerance(tolerance, case.reference.num_qubits, coefficients)
    error = float(np.max(np.abs(actual - expected)))
    assert error <= allowed, (
        f"EstimatorV2 ({device}, {precision}, fusion={fusion}) on the {total}-qubit circuit: "
        f"got {actual}, expected {expected}\nobservables {[str(o) for o in wide_ops]}\n"
        + case.describe())


@examples(1)
@given(case=embedded_circuits(min_total=7, max_total=10), enable=st.booleans())
def test_truncation_on_and_off_agree(device, precision, tolerance, fusion, case, enable):
    """Where the full state fits, a saved statevector of every qubit is the wide circuit's
    Statevector with truncation on (the idle qubits put back in |0>) and off."""
    backend = backend_for(device, precision, fusion, enable_truncation=enable)
    expected = exact_state(case.circuit)
    actual = saved_state(backend, case.circuit)
    error = state_error(actual, expected)
    assert error <= tolerance, state_message(
        f"saved statevector, enable_truncation={enable} ({device}, {precision}, "
        f"fusion={fusion})", case.describe(), actual, expected, error, tolerance)
