"""Parameterised gates built for a batch of parameter sets at once
(``gpuprovider/compile/gate_batches.py``) equal the same gates built set by set."""

from __future__ import annotations

import math

import numpy as np
import pytest
from qiskit.circuit import Gate, Parameter
from qiskit.circuit.library import RYGate, get_standard_gate_name_mapping
from qiskit.quantum_info import Operator

from gpuprovider.compile import gate_batches
from gpuprovider.compile.gate_batches import (
    batch_builder,
    gate_batch,
    parameter_values,
    phase_batch_builder,
    standard_batch_builder,
)
from gpuprovider.compile.gate_ops import GateError, bound_values, parameterized_builder
from gpuprovider.kernels import batch as batch_kernels
from gpuprovider.compile.program import (
    ControlledOp,
    DiagonalOp,
    MatrixOp,
    ParameterizedGateOp,
    PermutationOp,
    dense_matrix,
)

a, b = Parameter("a"), Parameter("b")
PARAMETERISED = sorted(name for name, gate in get_standard_gate_name_mapping().items()
                       if gate.params and gate.num_qubits > 0 and name != "delay")
SPECIAL = [0.0, math.pi, -math.pi, 2 * math.pi, math.pi / 2, 1e3, -7.5]
KIND_OF_OP = {DiagonalOp: "diagonal", PermutationOp: "permutation", MatrixOp: "dense"}


def _columns(sets: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    first = np.concatenate([SPECIAL, rng.uniform(-4, 4, sets - len(SPECIAL))])
    second = np.concatenate([SPECIAL[::-1], rng.uniform(-4, 4, sets - len(SPECIAL))])
    return {a: first, b: second}


def _dense(batch) -> np.ndarray:
    """The batch's matrices, whatever its kind: (sets, d, d)."""
    sets, dim = batch.values.shape[0], 1 << batch.qubits.size
    if batch.kind == "dense":
        return batch.values
    if batch.kind == "controlled":
        return np.stack([dense_matrix(ControlledOp(batch.controls, batch.control_state,
                                                   batch.targets, matrix))
                         for matrix in batch.values])
    out = np.zeros((sets, dim, dim), dtype=batch.values.dtype)
    rows = np.arange(dim)
    columns = rows if batch.kind == "diagonal" else batch.columns
    out[:, rows, columns] = batch.values
    return out


def _set_by_set(build, columns: dict, sets: int) -> list:
    return [build({p: float(column[s]) for p, column in columns.items()}) for s in range(sets)]


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64], ids=["double", "single"])
@pytest.mark.parametrize("name", PARAMETERISED)
def test_every_parameterised_standard_gate_matches_its_set_by_set_op(name, dtype):
    gate_class = type(get_standard_gate_name_mapping()[name])
    count = len(get_standard_gate_name_mapping()[name].params)
    # Affine parameters, a product (evaluated set by set) and a plain number.
    params = [[2 * a - b + 0.3, a * b, 0.7, -a][k % 4] for k in range(count)]
    gate = gate_class(*params)
    qubits = list(range(gate.num_qubits))[::-1]
    build = parameterized_builder(gate, qubits, dtype)
    batch_build = batch_builder(gate, qubits, dtype)
    assert batch_build is not None
    sets = 12
    columns = _columns(sets, seed=len(name))
    batch = batch_build(columns, sets)
    assert batch is not None, f"{name}: its Fourier table was refused"
    ops = _set_by_set(build, columns, sets)
    assert {KIND_OF_OP[type(op)] for op in ops} == {batch.kind}
    assert batch.values.dtype == dtype
    assert np.array_equal(batch.qubits, qubits)
    expected = np.stack([dense_matrix(op) for op in ops])
    tolerance = 1e-12 if dtype == np.complex128 else 1e-6
    np.testing.assert_allclose(_dense(batch), expected, atol=tolerance, rtol=0)


@pytest.mark.parametrize(("expression", "affine"), [
    (a, True), (2 * a + 0.3, True), (a - b, True), (a + b - b, True), (-a / 3, True),
    (a * b, False), (a ** 2, False), ((a + 1).sin(), False), (1 / (a + 10), False),
    (abs(a) + 1, False), (a.sign() + a, False),
])
def test_parameter_values_equal_bound_values(expression, affine):
    assert (gate_batches._affine_form(expression) is not None) is affine
    sets = 10
    columns = _columns(sets, seed=3)
    values = parameter_values([expression, 1.25])(columns, sets)
    expected = [bound_values([expression, 1.25], {p: float(c[s]) for p, c in columns.items()})
                for s in range(sets)]
    np.testing.assert_allclose(values, expected, rtol=1e-12, atol=1e-12)


def test_a_parameter_without_a_finite_value_names_it():
    values = parameter_values([1 / a])
    with pytest.raises(GateError, match="cannot be evaluated"):
        values({a: np.array([1.0, 0.0])}, 2)


class _TripleAngle(Gate):
    """A gate whose entries have frequency 3 in its half-angle: no degree-2 table fits it."""

    def __init__(self, theta):
        super().__init__("triple", 1, [theta])

    def __array__(self, dtype=None, copy=None):
        return np.diag([1.0, np.exp(1.5j * float(self.params[0]))]).astype(dtype or complex)


def test_a_class_its_fourier_table_does_not_fit_is_built_set_by_set():
    qubits = np.array([0])
    assert gate_batches._fourier_table(_TripleAngle, 1, None) is None
    builder = standard_batch_builder(_TripleAngle, [a], None, qubits, np.complex128)
    sets = 9
    columns = {a: np.linspace(-3, 3, sets)}
    assert builder(columns, sets) is None

    def build(values: dict) -> DiagonalOp:
        return DiagonalOp(qubits, np.array([1, np.exp(1.5j * values[a])]))

    op = ParameterizedGateOp(qubits, build, builder)
    batch = gate_batch(op, columns, sets)
    expected = np.stack([np.diag([1, np.exp(1.5j * x)]) for x in columns[a]])
    np.testing.assert_allclose(_dense(batch), expected, atol=1e-14)


def test_a_global_phase_batch_is_one_phase_per_set():
    qubits = np.zeros(0, dtype=np.int64)
    sets = 9
    columns = _columns(sets, seed=1)
    batch = phase_batch_builder(a - 2 * b, qubits, np.complex128)(columns, sets)
    assert batch.kind == "diagonal" and batch.values.shape == (sets, 1)
    expected = np.exp(1j * (columns[a] - 2 * columns[b]))
    np.testing.assert_allclose(batch.values[:, 0], expected, atol=1e-14)


def test_a_batch_of_a_non_standard_gate_is_stacked_set_by_set():
    gate = RYGate(a + b).control(2, ctrl_state=1, annotated=False)
    qubits = [2, 0, 1]
    assert batch_builder(gate, qubits, np.complex128) is None
    build = parameterized_builder(gate, qubits, np.complex128)
    sets = 8
    columns = _columns(sets, seed=2)
    batch = gate_batch(ParameterizedGateOp(np.array(qubits), build), columns, sets)
    ops = _set_by_set(build, columns, sets)
    expected = np.stack([dense_matrix(op) for op in ops])
    # Two controls: a controlled kernel on the target, one matrix per set.
    assert batch.kind == "controlled" and batch.values.shape == (sets, 2, 2)
    np.testing.assert_allclose(_dense(batch), expected, atol=1e-14)
    states = np.tile(np.arange(8, dtype=np.complex128) + 1j, (sets, 1))
    expected_states = np.stack([dense_full(expected[s], qubits) @ states[s]
                                for s in range(sets)])
    batch.apply(batch_kernels, states)
    np.testing.assert_allclose(states, expected_states, atol=1e-12)


def dense_full(matrix: np.ndarray, qubits: list[int]) -> np.ndarray:
    """``matrix`` (argument order on ``qubits``) as a matrix on the whole 3-qubit state."""
    return Operator(np.eye(8)).compose(Operator(matrix), qargs=qubits).data
