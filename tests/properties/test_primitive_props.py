"""gpuprovider's EstimatorV2 and SamplerV2 on random circuits and parameter values, against
Qiskit's StatevectorEstimator (exact) and exact probabilities (a chi-square test)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from qiskit.primitives import StatevectorEstimator
from qiskit.quantum_info import Statevector
from testkit import ALPHA, chi_square_pvalue

from gpuprovider.primitives import EstimatorV2, SamplerV2
from properties.harness import (
    FUSION,
    FUSION_IDS,
    backend_options,
    ev_tolerance,
    examples,
)
from properties.strategies import (
    NO_INITIALIZE,
    circuits,
    large_circuits,
    measured_circuits,
    observables,
    parameterized_circuits,
)

pytestmark = pytest.mark.parametrize("fusion", FUSION, ids=FUSION_IDS)

SHOTS = 4000


@st.composite
def estimator_cases(draw, circuit_strategy):
    case = draw(circuit_strategy)
    count = draw(st.integers(1, 3))
    observable_list = [draw(observables(case.circuit.num_qubits)) for _ in range(count)]
    return case, observable_list


def check_estimator(device, precision, tolerance, fusion, case, observable_list):
    circuit = case.circuit
    if case.bindings:
        values = case.values().reshape(len(case.bindings), 1, len(case.parameters))
        pub = (circuit, observable_list, values)
    else:
        pub = (circuit, observable_list)
    estimator = EstimatorV2(options={"backend_options": backend_options(device, precision,
                                                                         fusion)})
    actual = np.asarray(estimator.run([pub]).result()[0].data.evs)
    expected = np.asarray(StatevectorEstimator().run([pub]).result()[0].data.evs)
    coefficients = np.concatenate([o.coeffs for o in observable_list])
    allowed = ev_tolerance(tolerance, circuit.num_qubits, coefficients)
    assert actual.shape == expected.shape, (
        f"evs shape {actual.shape}, expected {expected.shape}\n{case.describe()}")
    error = float(np.max(np.abs(actual - expected)))
    assert error <= allowed, (
        f"EstimatorV2 ({device}, {precision}, fusion={fusion}): max error {error:.3g} > "
        f"{allowed:.3g}\ngot {actual!r}\nexpected {expected!r}\nobservables "
        f"{[str(o) for o in observable_list]}\n{case.describe()}")


@examples(2)
@given(data=estimator_cases(parameterized_circuits(kinds=("standard", "controlled", "matrix",
                                                          "definition"),
                                                   allow_initialize=False)))
def test_estimator_parameterized(device, precision, tolerance, fusion, data):
    check_estimator(device, precision, tolerance, fusion, *data)


@examples(1)
@given(data=estimator_cases(circuits(kind_options=NO_INITIALIZE, max_gates=8)))
def test_estimator_mixed_instructions(device, precision, tolerance, fusion, data):
    check_estimator(device, precision, tolerance, fusion, *data)


@examples(1)
@given(data=estimator_cases(large_circuits(max_gates=8).filter(
    lambda case: "initialize" not in case.circuit.count_ops())))
def test_estimator_past_the_planner_threshold(device, precision, tolerance, fusion, data):
    check_estimator(device, precision, tolerance, fusion, *data)


def register_distribution(circuit, measured: list[int]) -> dict[str, float]:
    """Exact distribution of register "meas", whose bit j reads qubit ``measured[j]``."""
    unmeasured = circuit.remove_final_measurements(inplace=False)
    return Statevector(unmeasured).probabilities_dict(measured)


def check_sampler(device, precision, fusion, case, seed):
    circuit = case.circuit
    measured = case.extra["measured"]
    sampler = SamplerV2(seed=seed, options={"backend_options": backend_options(device, precision,
                                                                               fusion)})
    if case.bindings:
        pub = (circuit, case.values())
    else:
        pub = (circuit,)
    bits = sampler.run([pub], shots=SHOTS).result()[0].data.meas
    count = len(case.bindings) or 1
    assert bits.shape == ((count,) if case.bindings else ()), (
        f"BitArray shape {bits.shape}\n{case.describe()}")
    for j in range(count):
        counts = bits.get_counts(j) if case.bindings else bits.get_counts()
        expected = register_distribution(case.bound(j) if case.bindings else circuit, measured)
        impossible = {key: n for key, n in counts.items() if expected.get(key, 0.0) <= 1e-12}
        assert not impossible, (
            f"SamplerV2 ({device}, {precision}, fusion={fusion}, seed={seed}) binding {j}: "
            f"outcomes of probability 0 observed: {impossible}\nexpected {expected}\n"
            f"{case.describe()}")
        pvalue = chi_square_pvalue(counts, expected)
        assert pvalue > ALPHA, (
            f"SamplerV2 ({device}, {precision}, fusion={fusion}, seed={seed}) binding {j}: "
            f"chi-square p = {pvalue:.3g} <= {ALPHA}\ncounts {dict(sorted(counts.items()))}\n"
            f"expected {dict(sorted(expected.items()))}\n{case.describe()}")


@examples(2)
@given(case=measured_circuits(circuits(max_qubits=5, max_gates=8)), seed=st.integers(0, 2**32 - 1))
def test_sampler_final_measurements(device, precision, fusion, case, seed):
    check_sampler(device, precision, fusion, case, seed)


@examples(2)
@given(case=measured_circuits(parameterized_circuits()), seed=st.integers(0, 2**32 - 1))
def test_sampler_parameterized(device, precision, fusion, case, seed):
    check_sampler(device, precision, fusion, case, seed)


@examples(1)
@given(case=measured_circuits(large_circuits(max_gates=8)), seed=st.integers(0, 2**32 - 1))
def test_sampler_past_the_planner_threshold(device, precision, fusion, case, seed):
    """12-13 qubits: the planner relabels SWAPs, measurements included."""
    check_sampler(device, precision, fusion, case, seed)
