"""The classical-expression evaluator: every operator, cast, store and error, a property test
against masked Python integers, and a cross-check of branch decisions against Aer."""

from __future__ import annotations

import math
import operator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit.circuit import Clbit, Duration
from qiskit.circuit.classical import expr, types

from gpuprovider.compile.classical import (
    ClassicalLayout,
    ClassicalState,
    ClassicalValueError,
    compile_condition,
    compile_expression,
    compile_store,
    compile_target,
)
from gpuprovider.exceptions import InvalidCircuitError

Op = expr.Binary.Op


def uint(value: int, width: int) -> expr.Value:
    return expr.Value(value, types.Uint(width))


def evaluate(node: expr.Expr, layout: ClassicalLayout | None = None, state=None):
    layout = layout or ClassicalLayout(QuantumCircuit())
    evaluator = compile_expression(node, layout)
    return evaluator(state or layout.new_state())


@pytest.fixture
def scattered() -> tuple[QuantumCircuit, ClassicalRegister]:
    """Six clbits, and a register ``s`` over clbits 3, 1 and 4 (least significant first)."""
    circuit = QuantumCircuit(1, 6)
    creg = ClassicalRegister(name="s", bits=[circuit.clbits[i] for i in (3, 1, 4)])
    circuit.add_register(creg)
    return circuit, creg


def state_with_clbits(layout: ClassicalLayout, *ones: int) -> ClassicalState:
    state = layout.new_state()
    for index in ones:
        state.set_bit(index, 1)
    return state


class TestState:
    def test_bits_and_copy_are_independent(self):
        state = ClassicalState(0b1010, [1, True])
        copy = state.copy()
        copy.set_bit(1, 0)
        copy.set_bit(0, True)
        copy.variables[0] = 7
        assert (state.clbits, state.variables) == (0b1010, [1, True])
        assert (copy.clbits, copy.variables) == (0b1001, [7, True])
        assert [state.bit(i) for i in range(5)] == [0, 1, 0, 1, 0]


class TestUnary:
    @pytest.mark.parametrize(
        ("node", "expected"),
        [
            (expr.bit_not(uint(5, 3)), 2),
            (expr.bit_not(uint(0, 3)), 7),
            (expr.bit_not(uint(0, 8)), 255),
            (expr.bit_not(expr.lift(True)), False),
            (expr.bit_not(expr.lift(False)), True),
            (expr.logic_not(expr.lift(True)), False),
            (expr.logic_not(uint(4, 3)), False),
            (expr.logic_not(uint(0, 3)), True),
            (expr.negate(expr.lift(2.5)), -2.5),
            (expr.Unary(expr.Unary.Op.NEGATE, uint(3, 3), types.Uint(3)), 5),
        ],
        ids=str,
    )
    def test_value(self, node, expected):
        result = evaluate(node)
        assert result == expected
        assert type(result) is type(expected)


BINARY_CASES = [
    # Uint(3): results wrap modulo 8.
    (expr.bit_and, uint(6, 3), uint(3, 3), 2),
    (expr.bit_or, uint(6, 3), uint(3, 3), 7),
    (expr.bit_xor, uint(6, 3), uint(3, 3), 5),
    (expr.add, uint(6, 3), uint(3, 3), 1),
    (expr.sub, uint(3, 3), uint(6, 3), 5),
    (expr.mul, uint(6, 3), uint(3, 3), 2),
    (expr.div, uint(7, 3), uint(2, 3), 3),
    (expr.div, uint(1, 3), uint(7, 3), 0),
    (expr.shift_left, uint(6, 3), uint(1, 3), 4),
    (expr.shift_left, uint(1, 3), uint(3, 3), 0),
    (expr.shift_right, uint(6, 3), uint(1, 3), 3),
    (expr.shift_right, uint(6, 3), uint(7, 3), 0),
    (expr.equal, uint(5, 3), uint(5, 3), True),
    (expr.not_equal, uint(5, 3), uint(5, 3), False),
    (expr.less, uint(4, 3), uint(5, 3), True),
    (expr.less_equal, uint(5, 3), uint(5, 3), True),
    (expr.greater, uint(5, 3), uint(5, 3), False),
    (expr.greater_equal, uint(4, 3), uint(5, 3), False),
    # Different widths are cast to the wider by the constructors.
    (expr.equal, uint(1, 1), uint(1, 4), True),
    (expr.less, uint(3, 2), uint(12, 4), True),
    # Bool.
    (expr.bit_and, expr.lift(True), expr.lift(False), False),
    (expr.bit_or, expr.lift(True), expr.lift(False), True),
    (expr.bit_xor, expr.lift(True), expr.lift(True), False),
    (expr.logic_and, expr.lift(True), expr.lift(True), True),
    (expr.logic_and, expr.lift(True), expr.lift(False), False),
    (expr.logic_or, expr.lift(False), expr.lift(False), False),
    (expr.logic_or, expr.lift(False), expr.lift(True), True),
    (expr.logic_and, uint(2, 2), uint(1, 2), True),
    (expr.equal, expr.lift(False), expr.lift(False), True),
    (expr.not_equal, expr.lift(False), expr.lift(True), True),
    # Float.
    (expr.add, expr.lift(1.5), expr.lift(2.25), 3.75),
    (expr.sub, expr.lift(1.5), expr.lift(2.25), -0.75),
    (expr.mul, expr.lift(1.5), expr.lift(-2.0), -3.0),
    (expr.div, expr.lift(7.0), expr.lift(2.0), 3.5),
    (expr.equal, expr.lift(0.5), expr.lift(0.5), True),
    (expr.less, expr.lift(-0.5), expr.lift(0.25), True),
    (expr.greater_equal, expr.lift(-0.5), expr.lift(0.25), False),
]


class TestBinary:
    @pytest.mark.parametrize(("constructor", "left", "right", "expected"), BINARY_CASES, ids=str)
    def test_value(self, constructor, left, right, expected):
        result = evaluate(constructor(left, right))
        assert result == expected
        assert type(result) is type(expected)

    def test_every_binary_op_is_covered(self):
        covered = {constructor(left, right).op for constructor, left, right, _ in BINARY_CASES}
        assert covered == set(Op)

    def test_shift_left_by_far_more_than_the_width_is_zero(self):
        assert evaluate(expr.shift_left(uint(5, 64), uint(2**63, 64))) == 0

    def test_logic_or_short_circuits(self):
        failing = expr.equal(expr.div(uint(1, 2), uint(0, 2)), 1)
        assert evaluate(expr.logic_or(True, failing)) is True
        assert evaluate(expr.logic_and(False, failing)) is False
        with pytest.raises(ClassicalValueError, match="division by zero"):
            evaluate(expr.logic_or(False, failing))


class TestCast:
    @pytest.mark.parametrize(
        ("operand", "to", "expected"),
        [
            (uint(4, 3), types.Bool(), True),
            (uint(0, 3), types.Bool(), False),
            (expr.lift(True), types.Uint(4), 1),
            (uint(13, 4), types.Uint(2), 1),
            (uint(3, 2), types.Uint(8), 3),
            (uint(5, 3), types.Float(), 5.0),
            (expr.lift(True), types.Float(), 1.0),
            (expr.lift(3.7), types.Uint(2), 3),
            (expr.lift(6.9), types.Uint(2), 2),
            (expr.lift(0.0), types.Bool(), False),
            (expr.lift(0.5), types.Bool(), True),
        ],
        ids=str,
    )
    def test_value(self, operand, to, expected):
        result = evaluate(expr.cast(operand, to))
        assert result == expected
        assert type(result) is type(expected)

    def test_non_finite_float_to_uint_raises(self):
        with pytest.raises(ClassicalValueError, match="nan"):
            evaluate(expr.cast(expr.lift(math.nan), types.Uint(4)))


class TestScatteredRegister:
    """Register ``s`` holds clbits 3, 1, 4; clbits 3 and 4 set make ``s == 0b101 == 5``."""

    @pytest.mark.parametrize(
        ("node", "expected"),
        [
            (expr.lift, 5),
            (lambda c: expr.equal(c, 5), True),
            (lambda c: expr.less(c, 6), True),
            (lambda c: expr.greater(c, 5), False),
            (lambda c: expr.equal(expr.bit_and(c, 6), 4), True),
            (lambda c: expr.index(c, 0), True),
            (lambda c: expr.index(c, 1), False),
            (lambda c: expr.index(c, 2), True),
            (lambda c: expr.logic_and(c[0], expr.logic_not(c[1])), True),
        ],
    )
    def test_read(self, scattered, node, expected):
        circuit, creg = scattered
        layout = ClassicalLayout(circuit)
        assert layout.register(creg) == [3, 1, 4]
        result = evaluate(node(creg), layout, state_with_clbits(layout, 3, 4, 5))
        assert result == expected
        assert type(result) is type(expected)

    def test_legacy_conditions(self, scattered):
        circuit, creg = scattered
        layout = ClassicalLayout(circuit)
        state = state_with_clbits(layout, 3, 4)
        assert compile_condition((creg, 5), layout)(state) is True
        assert compile_condition((creg, 4), layout)(state) is False
        assert compile_condition((creg, 13), layout)(state) is False
        assert compile_condition((circuit.clbits[3], True), layout)(state) is True
        assert compile_condition((circuit.clbits[1], 0), layout)(state) is True
        assert compile_condition(expr.less(creg, 3), layout)(state) is False

    def test_contiguous_register_not_at_clbit_zero(self):
        low, high = ClassicalRegister(2, "low"), ClassicalRegister(3, "high")
        layout = ClassicalLayout(QuantumCircuit(low, high))
        assert layout.register(high) == [2, 3, 4]
        state = state_with_clbits(layout, 0, 3, 4)
        assert evaluate(expr.lift(high), layout, state) == 0b110
        compile_store(expr.lift(high), uint(0b001, 3), layout)(state)
        assert state.clbits == 0b00101

    def test_non_bool_condition_is_rejected(self, scattered):
        circuit, creg = scattered
        with pytest.raises(InvalidCircuitError, match="not a Bool expression"):
            compile_condition(expr.lift(creg), ClassicalLayout(circuit))

    def test_index_out_of_range_raises(self, scattered):
        circuit, creg = scattered
        layout = ClassicalLayout(circuit)
        with pytest.raises(ClassicalValueError, match="index 3 is out of range for 3 bits"):
            evaluate(expr.index(creg, 3), layout)


class TestVariables:
    def test_slots_are_lazy_and_new_state_holds_typed_zeros(self):
        circuit = QuantumCircuit()
        flag = circuit.add_var("flag", True)
        count = circuit.add_var("count", uint(3, 4))
        angle = circuit.add_var("angle", 0.5)
        layout = ClassicalLayout(circuit)
        assert layout.new_state().variables == []
        assert [layout.slot(var) for var in (count, flag, angle, count)] == [0, 1, 2, 0]
        variables = layout.new_state().variables
        assert variables == [0, False, 0.0]
        assert [type(v) for v in variables] == [int, bool, float]

    def test_captured_var_shares_the_outer_slot(self):
        circuit = QuantumCircuit(1, 1)
        count = circuit.add_var("count", uint(0, 4))
        with circuit.if_test((circuit.clbits[0], True)) as _:
            circuit.store(count, expr.add(count, 1))
        block = circuit.data[-1].operation.blocks[0]
        (captured,) = block.iter_captured_vars()
        layout = ClassicalLayout(circuit)
        assert layout.slot(captured) == layout.slot(count) == 0

    def test_index_into_uint_variable(self):
        circuit = QuantumCircuit()
        bits = circuit.add_var("bits", uint(0, 4))
        layout = ClassicalLayout(circuit)
        read = [compile_expression(expr.index(bits, i), layout) for i in range(4)]
        state = layout.new_state()
        state.variables[layout.slot(bits)] = 0b1010
        assert [r(state) for r in read] == [False, True, False, True]


class TestStore:
    def test_into_variable_with_wrap_and_cast(self):
        circuit = QuantumCircuit()
        count = circuit.add_var("count", uint(0, 3))
        layout = ClassicalLayout(circuit)
        increment = compile_store(count, expr.add(count, uint(5, 3)), layout)
        from_bool = compile_store(count, expr.lift(True), layout)
        state = layout.new_state()
        increment(state)
        assert state.variables == [5]
        increment(state)
        assert state.variables == [2]
        from_bool(state)
        assert state.variables == [1]
        assert type(state.variables[0]) is int

    def test_into_clbit_and_scattered_register(self, scattered):
        circuit, creg = scattered
        layout = ClassicalLayout(circuit)
        state = state_with_clbits(layout, 0, 3, 5)
        compile_store(expr.lift(creg), uint(6, 3), layout)(state)
        assert state.clbits == 0b110011
        compile_store(expr.lift(circuit.clbits[5]), expr.lift(False), layout)(state)
        assert state.clbits == 0b010011
        compile_store(expr.lift(circuit.clbits[2]), expr.lift(True), layout)(state)
        assert state.clbits == 0b010111

    def test_into_indexed_bit(self, scattered):
        circuit, creg = scattered
        bits = circuit.add_var("bits", uint(0, 4))
        layout = ClassicalLayout(circuit)
        stores = [
            compile_store(expr.index(creg, 2), expr.lift(True), layout),
            compile_store(expr.index(creg, 1), expr.lift(True), layout),
            compile_store(expr.index(creg, 1), expr.lift(False), layout),
            compile_store(expr.index(bits, 2), expr.lift(False), layout),
        ]
        state = layout.new_state()
        state.variables[layout.slot(bits)] = 0b1111
        for store in stores:
            store(state)
        assert state.clbits == 0b10000
        assert state.variables == [0b1011]

    def test_into_non_lvalue_is_rejected(self):
        with pytest.raises(InvalidCircuitError, match="not a memory location"):
            compile_store(uint(1, 2), uint(2, 2), ClassicalLayout(QuantumCircuit()))


class TestTarget:
    def test_clbit_register_and_expressions(self, scattered):
        circuit, creg = scattered
        layout = ClassicalLayout(circuit)
        state = state_with_clbits(layout, 3, 4)
        results = [
            compile_target(circuit.clbits[3], layout)(state),
            compile_target(circuit.clbits[1], layout)(state),
            compile_target(creg, layout)(state),
            compile_target(expr.equal(creg, 5), layout)(state),
            compile_target(expr.bit_xor(creg, 7), layout)(state),
        ]
        assert results == [1, 0, 5, 1, 2]
        assert all(type(result) is int for result in results)

    def test_float_target_is_rejected(self):
        with pytest.raises(InvalidCircuitError, match="not Bool or Uint"):
            compile_target(expr.lift(1.0), ClassicalLayout(QuantumCircuit()))


class FutureNode:
    """Stands in for a node type added to Qiskit after this evaluator was written."""

    type = types.Bool()

    def accept(self, visitor):
        return visitor.visit_generic(self)


class TestErrors:
    def test_stretch_is_rejected_at_compile_time(self):
        circuit = QuantumCircuit()
        stretch = circuit.add_stretch("s")
        layout = ClassicalLayout(circuit)
        with pytest.raises(InvalidCircuitError, match="Stretch.*'s'.* Duration"):
            compile_expression(stretch, layout)
        with pytest.raises(InvalidCircuitError, match="Duration"):
            compile_condition(expr.less(stretch, Duration.dt(100)), layout)

    def test_duration_is_rejected_at_compile_time(self):
        layout = ClassicalLayout(QuantumCircuit())
        duration = expr.lift(Duration.dt(100))
        with pytest.raises(InvalidCircuitError, match="Duration"):
            compile_expression(expr.div(duration, duration), layout)
        with pytest.raises(InvalidCircuitError, match="Duration"):
            compile_expression(expr.Var.new("d", types.Duration()), layout)

    def test_input_vars_are_rejected(self):
        circuit = QuantumCircuit()
        circuit.add_input("shots_seen", types.Uint(8))
        with pytest.raises(InvalidCircuitError, match="'shots_seen'"):
            ClassicalLayout(circuit)

    @pytest.mark.parametrize("node", [FutureNode(), 42], ids=["FutureNode", "int"])
    def test_unknown_node_is_rejected(self, node):
        name = type(node).__name__
        with pytest.raises(InvalidCircuitError, match=f"unsupported classical .* {name}"):
            compile_expression(node, ClassicalLayout(QuantumCircuit()))

    def test_foreign_clbit_is_rejected(self):
        with pytest.raises(InvalidCircuitError, match="not a clbit"):
            compile_expression(expr.lift(Clbit()), ClassicalLayout(QuantumCircuit(1, 1)))

    @pytest.mark.parametrize(
        "node", [expr.div(uint(3, 2), uint(0, 2)), expr.div(expr.lift(1.0), expr.lift(0.0))]
    )
    def test_division_by_zero_raises_at_run_time(self, node):
        evaluator = compile_expression(node, ClassicalLayout(QuantumCircuit()))
        with pytest.raises(ClassicalValueError, match="division by zero in Binary"):
            evaluator(ClassicalState())
        assert issubclass(ClassicalValueError, ValueError)


PROPERTY_OPS = {
    "BIT_AND": (expr.bit_and, operator.and_),
    "BIT_OR": (expr.bit_or, operator.or_),
    "BIT_XOR": (expr.bit_xor, operator.xor),
    "ADD": (expr.add, operator.add),
    "SUB": (expr.sub, operator.sub),
    "MUL": (expr.mul, operator.mul),
    "SHIFT_LEFT": (expr.shift_left, operator.lshift),
    "SHIFT_RIGHT": (expr.shift_right, operator.rshift),
    "EQUAL": (expr.equal, operator.eq),
    "NOT_EQUAL": (expr.not_equal, operator.ne),
    "LESS": (expr.less, operator.lt),
    "LESS_EQUAL": (expr.less_equal, operator.le),
    "GREATER": (expr.greater, operator.gt),
    "GREATER_EQUAL": (expr.greater_equal, operator.ge),
}


@st.composite
def uint_operands(draw):
    width = draw(st.integers(1, 16))
    value = st.integers(0, 2**width - 1)
    return width, draw(value), draw(value)


@given(operands=uint_operands(), name=st.sampled_from(sorted(PROPERTY_OPS)))
def test_uint_ops_match_masked_python_ints(operands, name):
    width, a, b = operands
    constructor, reference = PROPERTY_OPS[name]
    circuit = QuantumCircuit()
    left = circuit.add_var("a", uint(0, width))
    right = circuit.add_var("b", uint(0, width))
    layout = ClassicalLayout(circuit)
    evaluator = compile_expression(constructor(left, right), layout)
    state = layout.new_state()
    state.variables[layout.slot(left)] = a
    state.variables[layout.slot(right)] = b
    expected = reference(a, b)
    if not isinstance(expected, bool):
        expected &= (1 << width) - 1
    assert evaluator(state) == expected


# Aer 0.18 evaluates a Uint -> Bool cast as ``value == 0`` (CastExpr::eval_bool in its
# operations.hpp), the inverse of Qiskit's and OpenQASM's ``value != 0``, so no condition here
# casts a Uint to Bool, explicitly or implicitly; TestCast covers that cast.
AER_CONDITIONS = {
    "c == 5": lambda c: expr.equal(c, 5),
    "c < 4": lambda c: expr.less(c, 4),
    "c >= 5": lambda c: expr.greater_equal(c, 5),
    "(c & 3) == 1": lambda c: expr.equal(expr.bit_and(c, 3), 1),
    "(c ^ 7) != 2": lambda c: expr.not_equal(expr.bit_xor(c, 7), 2),
    "c[0] && !c[1]": lambda c: expr.logic_and(c[0], expr.logic_not(c[1])),
    "c == 2 || ~c == 2": lambda c: expr.logic_or(
        expr.equal(c, 2), expr.equal(expr.bit_not(c), 2)
    ),
    "uint2(c) == 1": lambda c: expr.equal(expr.cast(c, types.Uint(2)), 1),
}


def test_branches_match_aer():
    qiskit_aer = pytest.importorskip("qiskit_aer")
    cases, circuits = [], []
    for pattern in range(8):
        for name, condition in AER_CONDITIONS.items():
            qubits, creg, flag = QuantumRegister(4), ClassicalRegister(3, "c"), ClassicalRegister(1)
            circuit = QuantumCircuit(qubits, creg, flag)
            for k in range(3):
                if pattern >> k & 1:
                    circuit.x(k)
            circuit.measure(qubits[:3], creg)
            with circuit.if_test(condition(creg)):
                circuit.x(3)
            circuit.measure(qubits[3], flag)
            cases.append((pattern, name, circuit, creg))
            circuits.append(circuit)
    counts = qiskit_aer.AerSimulator().run(circuits, shots=100).result().get_counts()
    for (pattern, name, circuit, creg), count in zip(cases, counts):
        ((key, shots),) = count.items()
        taken, measured = key.split()
        assert (shots, int(measured, 2)) == (100, pattern)
        layout = ClassicalLayout(circuit)
        state = state_with_clbits(layout, *(i for i in range(3) if pattern >> i & 1))
        condition = compile_condition(AER_CONDITIONS[name](creg), layout)
        assert condition(state) is (taken == "1"), f"{name} with c = {pattern}"
