"""The evaluator of Qiskit's classical expressions: conditions, switch targets and stores.

Lowering compiles each expression once into a closure over a :class:`ClassicalLayout`; the
interpreter then calls that closure on the :class:`ClassicalState` of a branch of shots.

Values are Python ``bool`` (``Bool``), ``int`` (``Uint``) and ``float`` (``Float``). Every
``Uint(w)`` result of an operation or cast is reduced modulo ``2**w``. ``DIV`` is integer
division on ``Uint`` and true division on ``Float``. Timing expressions (``Duration`` values,
``Stretch`` identifiers) cannot change a statevector and are rejected at compile time.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from qiskit.circuit import ClassicalRegister, Clbit, QuantumCircuit
from qiskit.circuit.classical import expr, types
from qiskit.circuit.exceptions import CircuitError

from gpuprovider.exceptions import GPUProviderError, InvalidCircuitError


class ClassicalValueError(GPUProviderError, ValueError):
    """An expression has no value in a branch's state (division by zero, index out of range)."""


@dataclass(slots=True)
class ClassicalState:
    """The classical memory of one branch of shots.

    Attributes:
        clbits: bit ``c`` of this integer is the value of the circuit's clbit ``c``.
        variables: the current value of each variable, indexed by its layout slot.
    """

    clbits: int = 0
    variables: list[Any] = field(default_factory=list)

    def copy(self) -> ClassicalState:
        """An independent copy, for a branch that splits."""
        return ClassicalState(self.clbits, list(self.variables))

    def bit(self, index: int) -> int:
        """The value (0 or 1) of clbit ``index``."""
        return (self.clbits >> index) & 1

    def set_bit(self, index: int, value: int | bool) -> None:
        """Set clbit ``index`` to ``value`` (anything truthy is 1)."""
        if value:
            self.clbits |= 1 << index
        else:
            self.clbits &= ~(1 << index)


Evaluator = Callable[[ClassicalState], Any]

_ZERO = {types.Bool: False, types.Uint: 0, types.Float: 0.0}
"""The initial value of a variable of each supported type kind."""


class ClassicalLayout:
    """Where each classical identifier of one top-level circuit lives.

    A ``Clbit`` is a clbit index, a ``ClassicalRegister`` its clbit indices (least significant
    first), and a standalone ``expr.Var`` a slot in :attr:`ClassicalState.variables`. Slots are
    given out lazily, because variables declared inside control-flow blocks are only met while
    those blocks are lowered; captured variables are the outer ``Var`` and share its slot.
    """

    def __init__(self, circuit: QuantumCircuit) -> None:
        """
        Args:
            circuit: the top-level circuit; its ``find_bit`` locates clbits.

        Raises:
            InvalidCircuitError: the circuit has input or captured variables (run() cannot
                give them values).
        """
        unbound = [*circuit.iter_input_vars(), *circuit.iter_captures()]
        if unbound:
            names = ", ".join(repr(var.name) for var in unbound)
            raise InvalidCircuitError(
                f"circuit {circuit.name!r} has input or captured variables ({names}); the "
                "simulator cannot give them values, so declare them with add_var instead"
            )
        self._circuit = circuit
        self._slots: dict[expr.Var, int] = {}
        self._slot_types: list[types.Type] = []

    def clbit(self, bit: Clbit) -> int:
        """The index of ``bit`` in the circuit."""
        try:
            return self._circuit.find_bit(bit).index
        except CircuitError:
            raise InvalidCircuitError(
                f"{bit} is not a clbit of circuit {self._circuit.name!r}"
            ) from None

    def register(self, creg: ClassicalRegister) -> list[int]:
        """The clbit indices of ``creg``, least significant bit first."""
        return [self.clbit(bit) for bit in creg]

    def slot(self, var: expr.Var) -> int:
        """The variable slot of the standalone ``var``, given out the first time it is seen.

        Raises:
            InvalidCircuitError: ``var`` has a type other than Bool, Uint or Float.
        """
        if var not in self._slots:
            if var.type.kind not in _ZERO:
                raise InvalidCircuitError(
                    f"variable {var.name!r} has type {var.type}; the simulator stores only "
                    "Bool, Uint and Float variables"
                )
            self._slots[var] = len(self._slot_types)
            self._slot_types.append(var.type)
        return self._slots[var]

    def new_state(self) -> ClassicalState:
        """A state with every clbit 0 and every variable at its type's zero.

        The variable list is sized by the slots given out so far, so call this after lowering.
        """
        return ClassicalState(0, [_ZERO[type_.kind] for type_ in self._slot_types])


def _wrap(evaluate: Evaluator, type_: types.Type) -> Evaluator:
    """``evaluate`` with a Uint result reduced modulo 2**width."""
    if type_.kind is not types.Uint:
        return evaluate
    mask = (1 << type_.width) - 1
    return lambda state: evaluate(state) & mask


def _gather(indices: Sequence[int]) -> Callable[[int], int]:
    """A function from the clbits integer to the unsigned value of the bits at ``indices``."""
    start, width = (indices[0] if indices else 0), len(indices)
    if list(indices) == list(range(start, start + width)):
        mask = (1 << width) - 1
        return lambda clbits: (clbits >> start) & mask
    return lambda clbits: sum(((clbits >> index) & 1) << k for k, index in enumerate(indices))


def _scatter(indices: Sequence[int]) -> Callable[[int, int], int]:
    """A function ``(clbits, value) -> clbits`` writing the low bits of value to ``indices``."""
    field_mask = sum(1 << index for index in indices)

    def scatter(clbits: int, value: int) -> int:
        spread = sum(((value >> k) & 1) << index for k, index in enumerate(indices))
        return (clbits & ~field_mask) | spread

    return scatter


def _divide(a: Any, b: Any) -> Any:
    return a // b if isinstance(a, int) else a / b


def _float_to_uint(value: float) -> int:
    if not math.isfinite(value):
        raise ClassicalValueError(f"cannot cast the float {value} to an unsigned integer")
    return int(value)


_UNARY: dict[expr.Unary.Op, Callable[[Any], Any]] = {
    expr.Unary.Op.BIT_NOT: operator.invert,
    expr.Unary.Op.LOGIC_NOT: operator.not_,
    expr.Unary.Op.NEGATE: operator.neg,
}

_BINARY: dict[expr.Binary.Op, Callable[[Any, Any], Any]] = {
    expr.Binary.Op.BIT_AND: operator.and_,
    expr.Binary.Op.BIT_OR: operator.or_,
    expr.Binary.Op.BIT_XOR: operator.xor,
    expr.Binary.Op.EQUAL: operator.eq,
    expr.Binary.Op.NOT_EQUAL: operator.ne,
    expr.Binary.Op.LESS: operator.lt,
    expr.Binary.Op.LESS_EQUAL: operator.le,
    expr.Binary.Op.GREATER: operator.gt,
    expr.Binary.Op.GREATER_EQUAL: operator.ge,
    expr.Binary.Op.SHIFT_LEFT: operator.lshift,
    expr.Binary.Op.SHIFT_RIGHT: operator.rshift,
    expr.Binary.Op.ADD: operator.add,
    expr.Binary.Op.SUB: operator.sub,
    expr.Binary.Op.MUL: operator.mul,
    expr.Binary.Op.DIV: _divide,
}

# The Uint mask that _wrap applies after a cast to Uint does the truncation to the new width.
_CASTS: dict[tuple[type, type], Callable[[Any], Any]] = {
    (types.Bool, types.Bool): bool,
    (types.Bool, types.Uint): int,
    (types.Bool, types.Float): float,
    (types.Uint, types.Bool): bool,
    (types.Uint, types.Uint): int,
    (types.Uint, types.Float): float,
    (types.Float, types.Bool): bool,
    (types.Float, types.Uint): _float_to_uint,
    (types.Float, types.Float): float,
}


class _Compiler(expr.ExprVisitor[Evaluator]):
    __slots__ = ("layout",)

    def __init__(self, layout: ClassicalLayout) -> None:
        self.layout = layout

    def compile(self, node: Any) -> Evaluator:
        if not callable(getattr(node, "accept", None)):
            return self.visit_generic(node)
        # Every Stretch, and every node with a Stretch or Duration below it, stops here.
        if node.type.kind is types.Duration:
            raise InvalidCircuitError(
                f"{type(node).__name__} {node} has type Duration; timing expressions cannot "
                "affect a statevector simulation"
            )
        return node.accept(self)

    def visit_generic(self, node: Any, /) -> Evaluator:
        raise InvalidCircuitError(
            f"unsupported classical expression node {type(node).__name__}: {node!r}"
        )

    def visit_var(self, node: expr.Var, /) -> Evaluator:
        if isinstance(node.var, Clbit):
            index = self.layout.clbit(node.var)
            return lambda state: bool((state.clbits >> index) & 1)
        if isinstance(node.var, ClassicalRegister):
            gather = _gather(self.layout.register(node.var))
            return lambda state: gather(state.clbits)
        slot = self.layout.slot(node)
        return lambda state: state.variables[slot]

    def visit_value(self, node: expr.Value, /) -> Evaluator:
        # The identity cast gives the Python type (Qiskit hands Bool values over as 0 or 1).
        value = _CASTS[node.type.kind, node.type.kind](node.value)
        if node.type.kind is types.Uint:
            value &= (1 << node.type.width) - 1
        return lambda state: value

    def visit_cast(self, node: expr.Cast, /) -> Evaluator:
        operand = self.compile(node.operand)
        convert = _CASTS.get((node.operand.type.kind, node.type.kind))
        if convert is None:
            raise InvalidCircuitError(f"no cast from {node.operand.type} to {node.type} in {node}")
        return _wrap(lambda state: convert(operand(state)), node.type)

    def visit_unary(self, node: expr.Unary, /) -> Evaluator:
        function = _UNARY.get(node.op)
        if function is None:
            return self.visit_generic(node)
        if node.op is expr.Unary.Op.BIT_NOT and node.type.kind is types.Bool:
            function = operator.not_
        operand = self.compile(node.operand)
        return _wrap(lambda state: function(operand(state)), node.type)

    def visit_binary(self, node: expr.Binary, /) -> Evaluator:
        left, right = self.compile(node.left), self.compile(node.right)
        if node.op is expr.Binary.Op.LOGIC_AND:
            return lambda state: bool(left(state) and right(state))
        if node.op is expr.Binary.Op.LOGIC_OR:
            return lambda state: bool(left(state) or right(state))
        function = _BINARY.get(node.op)
        if function is None:
            return self.visit_generic(node)
        if node.op is expr.Binary.Op.SHIFT_LEFT:
            # Shifting by the width or more clears every bit; the clamp stops Python building
            # an enormous integer first.
            right = _clamp(right, node.type.width)
        elif node.op is expr.Binary.Op.DIV:
            right = _nonzero(right, node)
        return _wrap(lambda state: function(left(state), right(state)), node.type)

    def visit_index(self, node: expr.Index, /) -> Evaluator:
        target = self.compile(node.target)
        index = _in_range(self.compile(node.index), node)
        return lambda state: bool((target(state) >> index(state)) & 1)


def _clamp(evaluate: Evaluator, limit: int) -> Evaluator:
    return lambda state: min(evaluate(state), limit)


def _nonzero(divisor: Evaluator, node: expr.Expr) -> Evaluator:
    def evaluate(state: ClassicalState) -> Any:
        value = divisor(state)
        if not value:
            raise ClassicalValueError(f"division by zero in {node}")
        return value

    return evaluate


def _in_range(index: Evaluator, node: expr.Index) -> Evaluator:
    width = node.target.type.width

    def evaluate(state: ClassicalState) -> int:
        value = index(state)
        if value >= width:
            raise ClassicalValueError(f"index {value} is out of range for {width} bits in {node}")
        return value

    return evaluate


def compile_expression(node: expr.Expr, layout: ClassicalLayout) -> Evaluator:
    """Compile a classical expression into a function of a branch's state.

    Raises:
        InvalidCircuitError: the expression holds a timing (Duration or Stretch) node, a node
            type or cast this evaluator does not know, or a clbit not in the circuit.
    """
    return _Compiler(layout).compile(node)


def compile_condition(condition: Any, layout: ClassicalLayout) -> Callable[[ClassicalState], bool]:
    """Compile the condition of an ``if_test`` or ``while_loop``.

    Args:
        condition: ``(Clbit, bool | int)``, ``(ClassicalRegister, int)`` or a Bool expression.
        layout: the layout of the top-level circuit.
    """
    if isinstance(condition, tuple):
        condition = expr.lift_legacy_condition(condition)
    if getattr(condition, "type", None) != types.Bool():
        raise InvalidCircuitError(f"condition {condition!r} is not a Bool expression")
    return compile_expression(condition, layout)


def compile_target(target: Any, layout: ClassicalLayout) -> Evaluator:
    """Compile the target of a ``switch_case`` into a function returning an ``int``.

    A Clbit or Bool target gives 0 or 1: ``SwitchCaseOp`` keys its cases by ``True``/``False``
    or ``1``/``0``, which are equal dictionary keys in Python.

    Args:
        target: a ``Clbit``, a ``ClassicalRegister``, or a Bool or Uint expression.
        layout: the layout of the top-level circuit.
    """
    node = expr.lift(target)
    if node.type.kind not in (types.Bool, types.Uint):
        raise InvalidCircuitError(f"switch target {node} has type {node.type}, not Bool or Uint")
    evaluate = compile_expression(node, layout)
    if node.type.kind is types.Bool:
        return lambda state: int(evaluate(state))
    return evaluate


def compile_store(
    lvalue: expr.Expr, rvalue: expr.Expr, layout: ClassicalLayout
) -> Callable[[ClassicalState], None]:
    """Compile a ``Store``: evaluate ``rvalue``, cast to the type of ``lvalue``, and write it.

    Args:
        lvalue: a standalone ``Var``, a ``Var`` over a Clbit or ClassicalRegister, or an
            ``Index`` into a register or Uint variable.
        rvalue: the expression whose value is stored.
        layout: the layout of the top-level circuit.
    """
    if rvalue.type != lvalue.type:
        rvalue = expr.Cast(rvalue, lvalue.type, implicit=True)
    value = compile_expression(rvalue, layout)
    if isinstance(lvalue, expr.Index) and isinstance(lvalue.target, expr.Var):
        index = _in_range(compile_expression(lvalue.index, layout), lvalue)
        target = lvalue.target.var
        if isinstance(target, ClassicalRegister):
            indices = layout.register(target)
            return lambda state: state.set_bit(indices[index(state)], value(state))
        slot = layout.slot(lvalue.target)

        def store_bit(state: ClassicalState) -> None:
            bit, position = value(state), index(state)
            old = state.variables[slot] & ~(1 << position)
            state.variables[slot] = old | (int(bit) << position)

        return store_bit
    if isinstance(lvalue, expr.Var):
        if isinstance(lvalue.var, Clbit):
            position = layout.clbit(lvalue.var)
            return lambda state: state.set_bit(position, value(state))
        if isinstance(lvalue.var, ClassicalRegister):
            scatter = _scatter(layout.register(lvalue.var))

            def store_register(state: ClassicalState) -> None:
                state.clbits = scatter(state.clbits, value(state))

            return store_register
        slot = layout.slot(lvalue)

        def store_variable(state: ClassicalState) -> None:
            state.variables[slot] = value(state)

        return store_variable
    raise InvalidCircuitError(f"cannot store to {lvalue!r}; it is not a memory location")
