"""The CPU runs small states on NumPy kernels (``kernels/small.py``) and larger ones on Numba's
(``kernels/cpu.py``): random circuits of every instruction kind, run end to end on each set,
give Qiskit's statevector, and dynamic circuits give the same counts for the same seed.

The provider's other property tests draw states small enough for the NumPy kernels; this file
is where the Numba kernels see the same draws (a CPU device whose ``small_state_qubits`` is 0).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

from gpuprovider import GPUSimulator
from gpuprovider import device as devices
from gpuprovider.kernels import small
from properties.harness import examples, exact_state, saved_state, state_error, state_message
from properties.strategies import UNITARY_KINDS, circuits, dynamic_circuits
from testkit import ALPHA, homogeneity_pvalue

NUMBA_ONLY = devices.CPU.with_policy(small_state_qubits=0)
"""The CPU with every state on the Numba kernels."""
KERNEL_SETS = {"numpy-small": devices.CPU, "numba": NUMBA_ONLY}


def test_small_states_run_on_the_numpy_kernels():
    policy = devices.CPU.policy
    assert devices.CPU.kernels_for(policy.small_state_qubits - 1) is small
    assert devices.CPU.kernels_for(policy.small_state_qubits) is devices.CPU.kernels
    assert NUMBA_ONLY.kernels_for(1) is devices.CPU.kernels


@pytest.mark.parametrize("kernel_set", list(KERNEL_SETS))
@examples(2)
@given(case=circuits(kinds=UNITARY_KINDS, max_qubits=6, max_gates=10))
def test_every_instruction_kind_on_both_kernel_sets(kernel_set, precision, tolerance, case):
    backend = GPUSimulator(device=KERNEL_SETS[kernel_set], precision=precision)
    expected = exact_state(case.circuit)
    actual = saved_state(backend, case.circuit)
    error = state_error(actual, expected)
    assert error <= tolerance, state_message(
        f"saved statevector ({kernel_set}, {precision})", case.describe(), actual, expected,
        error, tolerance)


@examples(1)
@given(case=dynamic_circuits(raw=True, max_qubits=4))
def test_dynamic_circuits_give_the_same_counts_on_both_kernel_sets(precision, case):
    """Branching draws from the outcome probabilities both sets compute: equal to rounding,
    so the same seed mostly gives the same counts. Not always: where one set computes a
    probability as exactly 1 (or a binomial's 1/2) and the other within rounding of it
    (0.9999999999999999; the long profile found such circuits), NumPy's binomial takes
    another path (no draw at all; or the mirrored draw for p > 1/2), and every later draw
    differs. Then the two are independent samples of one distribution: a homogeneity test
    (each set's distribution is checked against the exact one by the other property tests)."""
    counts = [
        GPUSimulator(device=device, precision=precision)
        .run(case.circuit, shots=2000, seed_simulator=11).result().get_counts()
        for device in KERNEL_SETS.values()
    ]
    assert sum(counts[0].values()) == sum(counts[1].values()) == 2000
    if counts[0] != counts[1]:
        assert homogeneity_pvalue(counts[0], counts[1]) > ALPHA, case.describe()


def test_both_kernel_sets_read_the_same_expectation_values(precision):
    from qiskit.circuit.library import efficient_su2
    from qiskit.quantum_info import SparsePauliOp, Statevector

    from gpuprovider.primitives import EstimatorV2

    circuit = efficient_su2(4, reps=2)
    values = np.random.default_rng(5).uniform(-3, 3, size=(6, circuit.num_parameters))
    observable = SparsePauliOp(["XXYZ", "ZIIZ", "IYXI", "YYYY"], [0.5, -1.0, 0.25, 2.0])
    exact = [Statevector(circuit.assign_parameters(row)).expectation_value(observable).real
             for row in values]
    tolerance = 1e-10 if precision == "double" else 1e-5
    for device in KERNEL_SETS.values():
        estimator = EstimatorV2(options={"backend_options": {"device": device,
                                                             "precision": precision}})
        evs = estimator.run([(circuit, observable, values)]).result()[0].data.evs
        np.testing.assert_allclose(evs, exact, atol=tolerance)
