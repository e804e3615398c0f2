"""Parameter sweeps (``parameter_binds``): experiment j must equal the Statevector of the
circuit bound with binding j. Every sweep has a binding where all parameters are equal
(``a - b`` is exactly 0) and one where none are."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

from properties.harness import (
    FUSION,
    FUSION_IDS,
    backend_for,
    examples,
    exact_state,
    state_error,
    state_message,
    with_save,
)
from properties.strategies import parameterized_circuits

pytestmark = pytest.mark.parametrize("fusion", FUSION, ids=FUSION_IDS)


def check_sweep(device, precision, tolerance, fusion, case):
    backend = backend_for(device, precision, fusion)
    parameters = case.parameters
    binds = [{p: [binding[p] for binding in case.bindings] for p in parameters}]
    result = backend.run(with_save(case.circuit), shots=1, parameter_binds=binds).result()
    assert len(result.results) == len(case.bindings), (
        f"{len(result.results)} experiments for {len(case.bindings)} bindings\n"
        + case.describe())
    for j in range(len(case.bindings)):
        expected = exact_state(case.bound(j))
        actual = np.asarray(result.get_statevector(j))
        error = state_error(actual, expected)
        assert error <= tolerance, state_message(
            f"sweep experiment {j} (binding {case.bindings[j]}) ({device}, {precision}, "
            f"fusion={fusion})", case.describe(), actual, expected, error, tolerance)


@examples(2)
@given(case=parameterized_circuits())
def test_sweep_matches_assign_parameters(device, precision, tolerance, fusion, case):
    check_sweep(device, precision, tolerance, fusion, case)


@examples(1)
@given(case=parameterized_circuits(kinds=("definition", "prepare", "controlled"),
                                   max_gates=4))
def test_sweep_with_definition_gates_and_preparations(device, precision, tolerance, fusion,
                                                      case):
    check_sweep(device, precision, tolerance, fusion, case)


@examples(1)
@given(case=parameterized_circuits(min_qubits=12, max_qubits=14, max_gates=6,
                                   allow_prepare=False))
def test_sweep_past_the_planner_threshold(device, precision, tolerance, fusion, case):
    """Past the planner's threshold (12 qubits) and, at 14, with the sets' runs side by side
    on the CPU (``gpuprovider.side_by_side``)."""
    check_sweep(device, precision, tolerance, fusion, case)
