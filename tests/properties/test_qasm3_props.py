"""OpenQASM 3 round trips: ``qasm3.loads(qasm3.dumps(circuit))``.

The exporter writes ``gate rzz(p0) ... { ... }`` definitions for gates outside
stdgates.inc, which the importer loads as plain ``Gate`` objects that reuse the standard
name; it also drops global phases (the circuit's and those of the definitions), so the
re-imported circuit is compared exactly with its own Statevector, and with the original's up
to a global phase."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from qiskit import qasm3

from properties.harness import (
    FUSION,
    FUSION_IDS,
    backend_for,
    examples,
    exact_state,
    phase_insensitive_error,
    saved_state,
    state_error,
    state_message,
    with_save,
)
from properties.strategies import qasm3_circuits

pytestmark = pytest.mark.parametrize("fusion", FUSION, ids=FUSION_IDS)


def round_trip(case):
    text = qasm3.dumps(case.circuit)
    return qasm3.loads(text), text


def check(device, precision, tolerance, fusion, case, reimported, text, actual, original):
    expected = exact_state(reimported)
    error = state_error(actual, expected)
    description = case.describe() + "\n# OpenQASM 3:\n" + text
    assert error <= tolerance, state_message(
        f"re-imported circuit ({device}, {precision}, fusion={fusion}) vs its Statevector",
        description, actual, expected, error, tolerance)
    drift = phase_insensitive_error(actual, exact_state(original))
    assert drift <= 2 * tolerance, (
        f"re-imported circuit ({device}, {precision}, fusion={fusion}) is not the original "
        f"state up to a phase: 1 - |overlap| = {drift:.3g}\n{description}")


@examples(2)
@given(case=qasm3_circuits())
def test_qasm3_round_trip(device, precision, tolerance, fusion, case):
    reimported, text = round_trip(case)
    actual = saved_state(backend_for(device, precision, fusion), reimported)
    check(device, precision, tolerance, fusion, case, reimported, text, actual, case.circuit)


@examples(1)
@given(case=qasm3_circuits(parameterized=True))
def test_qasm3_round_trip_swept(device, precision, tolerance, fusion, case):
    """A parameterised circuit round-tripped (``input float[64] a;``), then swept with
    ``parameter_binds`` over the re-imported parameters (matched by name)."""
    reimported, text = round_trip(case)
    by_name = {p.name: p for p in reimported.parameters}
    binds = [{by_name[p.name]: [binding[p] for binding in case.bindings]
              for p in case.parameters}]
    backend = backend_for(device, precision, fusion)
    result = backend.run(with_save(reimported), shots=1, parameter_binds=binds).result()
    for j, binding in enumerate(case.bindings):
        bound = reimported.assign_parameters({by_name[p.name]: v for p, v in binding.items()})
        actual = np.asarray(result.get_statevector(j))
        check(device, precision, tolerance, fusion, case, bound, text, actual, case.bound(j))
