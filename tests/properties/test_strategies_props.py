"""The strategies themselves: every instruction form they promise is drawn, and the code a
Case prints rebuilds its circuit (so a falsifying example can be pasted back)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from qiskit.quantum_info import Statevector

from properties import strategies
from properties.harness import examples
from properties.strategies import (
    CONTROLLED_FORMS,
    STANDARD_NAMES,
    circuits,
    dynamic_circuits,
    embedded_circuits,
    parameterized_circuits,
    qasm3_circuits,
)

FIND = settings(max_examples=3000, database=None, derandomize=True, deadline=None,
                suppress_health_check=list(HealthCheck))


def names_in(case) -> set[str]:
    names = set()
    for instruction in case.circuit.data:
        operation = instruction.operation
        names.add(operation.name)
        if operation.name in ("measure", "reset") and operation.num_qubits > 1:
            names.add(f"raw_{operation.name}")
        if type(operation).__name__ == "Gate" and operation.name in STANDARD_NAMES:
            names.add(f"opaque_{operation.name}")
        if getattr(operation, "base_gate", None) is not None and (
                operation.base_gate.name == "custom"):
            names.add("controlled_custom")
    if case.circuit.parameters and any(
            "-" in str(p) for i in case.circuit.data for p in i.operation.params
            if hasattr(p, "parameters")):
        names.add("expression_difference")
    return names


GROUPS = {
    "standard": (circuits(kinds=("standard",)), set(STANDARD_NAMES)),
    "controlled": (circuits(kinds=("controlled",), min_qubits=4, kind_options={
        "controlled": {"forms": (*CONTROLLED_FORMS, "annotated")}}),
        {"mcmt", "controlled_custom", "mcphase", "mcx", "annotated"}),
    "matrix": (circuits(kinds=("matrix",)), {"unitary", "diagonal", "pauli", "multiplexer"}),
    "definition": (circuits(kinds=("definition",), min_qubits=3),
                   {"custom", "opaque_rzz", "opaque_ccz"}),
    "prepare": (circuits(kinds=("prepare",)), {"initialize", "state_preparation"}),
    "dynamic": (dynamic_circuits(raw=True), {"raw_measure", "raw_reset", "measure", "reset"}),
    "expression": (parameterized_circuits(), {"expression_difference", "global_phase"}),
}


def drawn_names(strategy, count: int) -> set[str]:
    """Instruction names in ``count`` generated examples (no shrinking, no simulation)."""
    seen: set[str] = set()

    @settings(max_examples=count, phases=[Phase.generate], database=None, derandomize=True,
              deadline=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(case):
        seen.update(names_in(case))

    collect()
    return seen


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_every_promised_instruction_is_drawn(group):
    strategy, promised = GROUPS[group]
    count = 500 if group == "standard" else 150
    missing = promised - drawn_names(strategy, count)
    assert not missing, f"{group}: never drawn in {count} examples: {sorted(missing)}"


def rebuilt(case):
    namespace = {name: getattr(strategies, name) for name in strategies.__all__}
    exec(case.code, namespace)  # noqa: S102 - our own strategy's code
    return namespace.get("wide", namespace["qc"])


def bound_by_name(circuit, binding):
    values = {p.name: v for p, v in binding.items()}
    return circuit.assign_parameters({p: values[p.name] for p in circuit.parameters})


@examples(0.5)
@given(case=circuits(max_qubits=5) | qasm3_circuits(parameterized=True)
       | parameterized_circuits() | embedded_circuits(min_total=7, max_total=9))
def test_printed_code_rebuilds_the_circuit(case):
    original, copy = case.circuit, rebuilt(case)
    if case.bindings:
        original, copy = bound_by_name(original, case.bindings[1]), bound_by_name(
            copy, case.bindings[1])
    error = np.max(np.abs(Statevector(original).data - Statevector(copy).data))
    assert error < 1e-9, f"the printed code builds another circuit (error {error})\n{case!r}"


@examples(0.5)
@given(case=parameterized_circuits())
def test_bindings_hold_an_all_equal_and_an_all_distinct_binding(case):
    assert set(case.bindings[0]) == set(case.parameters), case
    same, distinct = case.bindings[0], case.bindings[1]
    assert len(set(same.values())) == 1, case
    assert len(set(distinct.values())) == len(distinct), case
    assert not set(same.values()) & set(distinct.values()), case
