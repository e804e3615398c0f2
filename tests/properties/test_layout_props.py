"""The planner moves qubits: SWAP gates become a relabelling, SWAPs put them back before
ops that cannot be renamed, final measurements are named where their qubits end up. A
planned run must draw the same shots as the op-by-op run (no planning, every qubit in its
own place) with the same seed, whatever follows a measurement: gates, initialize, resets,
``if_test`` and saves. (A final measurement followed by a preparation elsewhere once read
the qubit that a put-back SWAP had moved in: wrong counts, no error.)"""

from __future__ import annotations

import numpy as np
from hypothesis import given

from gpuprovider import GPUSimulator
from gpuprovider import device as devices
from properties.harness import examples
from properties.strategies import (
    interleaved_circuits,
    measured_circuits,
    parameterized_circuits,
    seeds,
)

PLANNING = devices.CPU.with_policy(plan_min_qubits=0)
"""The CPU with every state planned (it plans 12 qubits and more by default)."""


def _run(backend: GPUSimulator, circuit, seed: int) -> tuple:
    result = backend.run(circuit, shots=300, seed_simulator=seed, memory=True).result()
    data = result.data(0)
    saved = {label: value for label, value in data.items() if label not in ("counts", "memory")}
    return result.get_counts(0), result.get_memory(0), saved


@examples(3)
@given(case=interleaved_circuits(min_qubits=2, max_qubits=7), seed=seeds)
def test_a_planned_run_draws_the_op_by_op_shots(case, seed):
    planned = _run(GPUSimulator(device=PLANNING), case.circuit, seed)
    op_by_op = _run(GPUSimulator(device="CPU", fusion_enable=False), case.circuit, seed)
    assert planned[0] == op_by_op[0], case.describe()
    assert planned[1] == op_by_op[1], case.describe()
    assert planned[2].keys() == op_by_op[2].keys(), case.describe()
    for label, value in planned[2].items():
        np.testing.assert_allclose(value, op_by_op[2][label], atol=1e-10,
                                   err_msg=f"{label}\n{case.describe()}")


@examples()
@given(case=measured_circuits(parameterized_circuits(min_qubits=2, max_qubits=6, max_gates=8)),
       seed=seeds)
def test_a_planned_parameterised_run_draws_the_op_by_op_shots(case, seed):
    """Parameter expressions (bound per set) through the same comparison, SWAPs drawn among
    the gates, every binding."""
    for j in range(len(case.bindings)):
        circuit = case.bound(j)
        planned = _run(GPUSimulator(device=PLANNING), circuit, seed)
        op_by_op = _run(GPUSimulator(device="CPU", fusion_enable=False), circuit, seed)
        assert planned[:2] == op_by_op[:2], f"binding {j}\n{case.describe()}"
