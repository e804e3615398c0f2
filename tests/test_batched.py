"""The batch path's limits (``gpuprovider/batched.py``): what it takes, how many sets a batch
holds, and that a cancelled job stops between batches."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter

from gpuprovider import batched
from gpuprovider import device as devices
from gpuprovider.compile.gate_batches import BIND_CHUNK_SETS
from gpuprovider.compile.lower import lower_circuit
from gpuprovider.compile.program import ParameterizedGateOp

a = Parameter("a")


def _program(num_qubits: int, measure: bool = False, mid_circuit: bool = False):
    circuit = QuantumCircuit(num_qubits, num_qubits)
    circuit.h(range(num_qubits))
    circuit.rx(a, 0)
    if mid_circuit:
        circuit.measure(0, 0)
        circuit.x(0)
    if measure:
        circuit.measure(range(num_qubits), range(num_qubits))
    return lower_circuit(circuit, np.complex128, parameterized=True)


def test_what_runs_as_a_batch():
    assert batched.batchable(_program(3), devices.CPU, 2)
    assert batched.batchable(_program(3, measure=True), devices.CPU, 2)
    assert not batched.batchable(_program(3), devices.CPU, 1)
    assert not batched.batchable(_program(3, mid_circuit=True), devices.CPU, 5)
    small = devices.CPU.policy.small_state_qubits
    assert not batched.batchable(_program(small), devices.CPU, 5)
    assert batched.batchable(_program(small - 1), devices.CPU, 5)


def test_a_wide_gate_built_set_by_set_makes_batches_smaller():
    program = _program(4)
    assert batched.sets_per_batch(program) == batched.BATCH_AMPLITUDES >> 4
    wide = ParameterizedGateOp(np.arange(4), lambda values: None)
    program.ops.append(wide)
    assert batched.sets_per_batch(program) == batched.BATCH_AMPLITUDES >> 8


def test_a_cancelled_run_stops_before_the_next_batch():
    program = _program(8)
    size = batched.sets_per_batch(program)
    values = np.zeros((3 * size, 1))
    calls = []

    def check() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("cancelled")

    done = []
    with pytest.raises(RuntimeError, match="cancelled"):
        for sets, _ in batched.batches(program, (a,), values, np.complex128, check):
            done.append(len(sets))
    assert done == [size]


def test_bound_programs_equal_binding_set_by_set():
    """The set-by-set path's chunked binding (standard gates built for many sets at once)
    gives, per set, the ops ``Program.bind`` gives: same kinds, qubits and numbers."""
    from qiskit.circuit.library import RYGate

    b = Parameter("b")
    circuit = QuantumCircuit(3)
    circuit.h(0)
    circuit.rz(2 * a + 0.1, 0)
    circuit.cp(a * b, 0, 2)
    circuit.u(a, b, -a, 1)
    circuit.append(RYGate(a - b).control(2, annotated=False), [0, 2, 1])  # built set by set
    circuit.global_phase = b
    program = lower_circuit(circuit, np.complex64, parameterized=True)
    values = np.random.default_rng(1).uniform(-4, 4, (BIND_CHUNK_SETS + 5, 2))
    bound = list(batched.bound_programs(program, (a, b), values))
    assert len(bound) == len(values)
    for row, got in enumerate(bound):
        expected = program.bind({a: values[row, 0], b: values[row, 1]})
        for mine, theirs in zip(got.ops, expected.ops, strict=True):
            assert type(mine) is type(theirs)
            for field in ("qubits", "matrix", "diagonal", "permutation", "phases", "controls",
                          "targets"):
                if hasattr(theirs, field):
                    np.testing.assert_allclose(getattr(mine, field), getattr(theirs, field),
                                               atol=1e-6)
                    assert getattr(mine, field).dtype == getattr(theirs, field).dtype
