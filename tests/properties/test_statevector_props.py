"""Saved statevectors of random circuits against qiskit.quantum_info.Statevector, exactly
(global phase included), one test per family of instructions so a failure names the family."""

from __future__ import annotations

import pytest
from hypothesis import given

from properties.harness import (
    FUSION,
    FUSION_IDS,
    backend_for,
    examples,
    exact_state,
    saved_state,
    state_error,
    state_message,
)
from properties.strategies import (
    circuits,
    large_circuits,
    parameterized_circuits,
)

pytestmark = pytest.mark.parametrize("fusion", FUSION, ids=FUSION_IDS)


def check_state(device, precision, tolerance, fusion, case, circuit=None):
    circuit = case.circuit if circuit is None else circuit
    backend = backend_for(device, precision, fusion)
    expected = exact_state(circuit)
    actual = saved_state(backend, circuit)
    error = state_error(actual, expected)
    assert error <= tolerance, state_message(
        f"saved statevector ({device}, {precision}, fusion={fusion})", case.describe(), actual,
        expected, error, tolerance)


@examples(2)
@given(case=circuits(kinds=("standard",), max_gates=10))
def test_standard_gates(device, precision, tolerance, fusion, case):
    """Every standard gate (global_phase included) with random angles, and a random
    circuit global phase."""
    check_state(device, precision, tolerance, fusion, case)


@examples(2)
@given(case=circuits(kinds=("controlled",), min_qubits=2, max_gates=4))
def test_controlled_forms(device, precision, tolerance, fusion, case):
    """MCMTGate, gate.control(k, ctrl_state) on standard and custom gates, MCPhaseGate,
    MCXGate."""
    check_state(device, precision, tolerance, fusion, case)


@examples(2)
@given(case=circuits(kinds=("matrix",), max_gates=4))
def test_matrix_forms(device, precision, tolerance, fusion, case):
    """UnitaryGate, DiagonalGate, PauliGate, UCGate."""
    check_state(device, precision, tolerance, fusion, case)


@examples(2)
@given(case=circuits(kinds=("definition",), max_gates=4))
def test_definition_only_gates(device, precision, tolerance, fusion, case):
    """A sub-circuit's to_gate(), and plain Gate objects that reuse a standard name and
    carry a correct definition."""
    check_state(device, precision, tolerance, fusion, case)


@examples(2)
@given(case=circuits(kinds=("prepare", "standard"), max_gates=5))
def test_state_preparation_and_initialize(device, precision, tolerance, fusion, case):
    """state_preparation (amplitudes, label, integer) on any state; initialize on qubits
    nothing has acted on yet."""
    check_state(device, precision, tolerance, fusion, case)


@examples(2)
@given(case=parameterized_circuits(kinds=("standard", "controlled", "matrix", "definition")))
def test_bound_expressions(device, precision, tolerance, fusion, case):
    """Parameter expressions bound with assign_parameters (every binding, including the one
    where all parameters are equal)."""
    for j in range(len(case.bindings)):
        check_state(device, precision, tolerance, fusion, case, case.bound(j))


@examples(2)
@given(case=circuits(max_qubits=6, max_gates=12))
def test_mixed_instructions(device, precision, tolerance, fusion, case):
    check_state(device, precision, tolerance, fusion, case)


@examples(1.5)
@given(case=large_circuits())
def test_large_circuits_through_the_planner(device, precision, tolerance, fusion, case):
    """12-13 qubits (the planner's tile passes, SWAP relabelling, fusion), few gates."""
    check_state(device, precision, tolerance, fusion, case)


@examples(1)
@given(case=circuits(kinds=("controlled",), min_qubits=2, max_gates=3,
                     kind_options={"controlled": {"forms": ("annotated",)}}))
def test_annotated_controlled_gates(device, precision, tolerance, fusion, case):
    """gate.control(k, ctrl_state, annotated=True): an AnnotatedOperation, what control()
    returns by default from Qiskit 3 on for gates without a dedicated controlled class."""
    check_state(device, precision, tolerance, fusion, case)
