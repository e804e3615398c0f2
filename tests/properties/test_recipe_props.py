"""Plan once, replay for every set (``gpuprovider/compile/recipe.py``) on random parameterised
circuits of every unitary kind (standard gates with affine and non-affine expressions,
controlled gates with several controls, custom and definition-only gates, parameterised
global phases): each set's replayed plan saves the state of that set planned in full and
Qiskit's, in both precisions, on small tiles and merged only, for sets drawn with angles at
which gates change kind (0, pi, 2 pi: identities, permutations, diagonals)."""

from __future__ import annotations

from math import pi

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpuprovider.compile import merge
from gpuprovider.compile.lower import lower_circuit
from gpuprovider.compile.plan import PlanPolicy, planned
from gpuprovider.compile.recipe import SweepCounts, planned_sets
from gpuprovider.engine import run_program
from gpuprovider.kernels import cpu
from gpuprovider.kernels.policy import CPU_POLICY
from properties.harness import examples, exact_state, state_error, with_save
from properties.strategies import parameterized_circuits

KINDS = ("standard", "controlled", "matrix", "definition")
PRECISIONS = {"double": (np.complex128, 1e-10), "single": (np.complex64, 2e-5)}
SET_VALUES = st.one_of(st.sampled_from([0.0, pi, 2 * pi, -pi, pi / 2, 4 * pi]),
                       st.floats(-2 * pi, 2 * pi, allow_nan=False, allow_subnormal=False))


class _Quiet:
    """A run control that never cancels and ignores progress."""

    def check(self) -> None:
        pass

    def advance(self, steps: int = 1) -> None:
        pass

    def mark(self, marker) -> None:
        pass


def _saved_state(program, dtype) -> np.ndarray:
    outcome = run_program(program, cpu, np.dtype(dtype), 1, np.random.default_rng(0),
                          _Quiet())
    [state] = outcome.saved.values()
    return np.asarray(state)


@pytest.mark.parametrize("fusion", [True, False], ids=["tiles", "merged-only"])
@pytest.mark.parametrize("precision", list(PRECISIONS))
@examples(1)
@given(case=parameterized_circuits(kinds=KINDS, max_qubits=5, allow_initialize=False),
       data=st.data())
def test_replayed_sets_equal_full_planning_and_statevector(precision, fusion, case, data):
    dtype, tolerance = PRECISIONS[precision]
    parameters = case.parameters
    drawn = data.draw(st.lists(st.lists(SET_VALUES, min_size=len(parameters),
                                        max_size=len(parameters)), min_size=3, max_size=8),
                      label="sets")
    values = np.array(case.values().tolist() + drawn, dtype=np.float64)
    program = lower_circuit(with_save(case.circuit), np.dtype(dtype), parameterized=True)
    policy = PlanPolicy(tile_qubits=3, low_qubits=1, lane_qubits=0, fusion_max_qubits=3,
                        diagonal_max_qubits=4, dense_cost=CPU_POLICY.dense_cost,
                        diagonal_cost=CPU_POLICY.diagonal_cost, parallel_min_qubits=0,
                        dtype=np.dtype(dtype))

    def plan(bound):
        return planned(bound, policy) if fusion else merge.merged(bound)

    counts = SweepCounts()
    programs = list(planned_sets(program, parameters, values, plan, counts=counts))
    assert len(programs) == len(values)
    for row, ran in enumerate(programs):
        binding = dict(zip(parameters, values[row]))
        mine = _saved_state(ran, dtype)
        full = _saved_state(plan(program.bind(binding)), dtype)
        expected = exact_state(case.circuit.assign_parameters(binding))
        where = f"set {row} {values[row].tolist()} ({counts})\n{case.describe()}"
        assert state_error(mine, full) <= tolerance, where
        assert state_error(mine, expected) <= 10 * tolerance, where
    assert counts.planned + counts.recorded + counts.replayed == len(values)
