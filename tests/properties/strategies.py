"""Hypothesis strategies that draw random circuits for the property tests.

Every strategy returns a :class:`Case`: the circuit, the Python code that rebuilds it (its
``repr``, so a falsifying example that Hypothesis prints can be pasted back after
``from properties.strategies import *``), and for parameterised circuits the bindings to try.

The instruction kinds (each a function ``kind(draw, builder) -> bool`` that appends one
instruction, or returns False when the circuit is too narrow for it):

- ``standard``: every gate of ``get_standard_gate_name_mapping()`` except the non-gates
  (measure, reset, delay, barrier); ``global_phase`` included. Random finite angles, with
  the special angles 0, +-pi/2, +-pi, 2 pi drawn often.
- ``controlled``: ``MCMTGate``, ``gate.control(k, ctrl_state)`` (standard and custom base
  gates), ``MCPhaseGate``, ``MCXGate``; on request also ``gate.control(k, annotated=True)``
  (an ``AnnotatedOperation``).
- ``matrix``: ``UnitaryGate``, ``DiagonalGate``, ``PauliGate``, ``UCGate``.
- ``definition``: gates known only by their definition: a sub-circuit's ``to_gate()``, and a
  plain ``Gate(name, k, params)`` that reuses a standard name with a correct definition.
- ``prepare``: ``state_preparation`` anywhere, ``initialize`` on qubits nothing touched yet.
- ``expression``: parameterised gates whose angles are expressions of Parameters a, b, c
  (``a - b``, ``2*a + 0.3``, ``a*b``, ``-a``, ``a + b - b``, ``sin(a)``, ``a/2``), in standard
  gates, controlled gates, ``MCPhaseGate``, custom gates and the global phase.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st
from qiskit import ClassicalRegister, QuantumCircuit, QuantumRegister
from qiskit.circuit import Gate, Instruction, Parameter, ParameterExpression
from qiskit.circuit.library import (
    DiagonalGate,
    GlobalPhaseGate,
    HGate,
    Initialize,
    MCMTGate,
    MCPhaseGate,
    MCXGate,
    PauliGate,
    RXGate,
    RYGate,
    RZGate,
    SXGate,
    StatePreparation,
    TGate,
    UCGate,
    UGate,
    UnitaryGate,
    XGate,
    YGate,
    ZGate,
)
from qiskit.circuit.library.standard_gates import get_standard_gate_name_mapping
from qiskit.quantum_info import SparsePauliOp
from scipy.stats import unitary_group

__all__ = [
    "PARAMS", "a", "b", "c", "pi", "sin", "Case", "Builder", "STANDARD", "STANDARD_NAMES",
    "standard_gate", "random_unitary_matrix", "random_phases", "random_state",
    "random_unitaries", "custom_gate", "opaque_standard", "EXPRESSIONS", "KINDS", "UNITARY_KINDS",
    "CONTROLLED_FORMS",
    "angles", "circuits", "parameterized_circuits", "large_circuits", "measured_circuits",
    "dynamic_circuits", "qasm3_circuits", "observables", "embedded_circuits",
    "interleaved_circuits",
    "Gate", "Instruction", "QuantumCircuit", "QuantumRegister", "ClassicalRegister",
    "DiagonalGate", "GlobalPhaseGate", "Initialize", "MCMTGate", "MCPhaseGate", "MCXGate",
    "PauliGate", "StatePreparation", "UCGate", "UnitaryGate", "SparsePauliOp",
    "HGate", "RXGate", "RYGate", "RZGate", "SXGate", "TGate", "UGate", "XGate", "YGate",
    "ZGate",
]

pi = math.pi
NON_GATES = {"measure", "reset", "delay", "barrier"}
STANDARD = {name: gate for name, gate in get_standard_gate_name_mapping().items()
            if name not in NON_GATES}
"""Every standard gate, ``global_phase`` (no qubits) included."""
STANDARD_NAMES = sorted(STANDARD)

a, b, c = PARAMS = (Parameter("a"), Parameter("b"), Parameter("c"))


def sin(value):
    """``sin`` of a ParameterExpression (the form the reproduction code uses)."""
    return value.sin() if isinstance(value, ParameterExpression) else math.sin(value)


# --- helpers the reproduction code calls -----------------------------------------------------


def standard_gate(name: str, *params) -> Gate:
    """The standard gate ``name`` with ``params`` (ParameterExpressions allowed)."""
    return STANDARD[name].base_class(*params) if STANDARD[name].params else STANDARD[name]


def random_unitary_matrix(dim: int, seed: int) -> np.ndarray:
    return unitary_group.rvs(dim, random_state=seed) if dim > 1 else np.array(
        [[np.exp(1j * np.random.default_rng(seed).uniform(-pi, pi))]])


def random_unitaries(count: int, dim: int, seed: int) -> list[np.ndarray]:
    return [random_unitary_matrix(dim, seed + i) for i in range(count)]


def random_phases(count: int, seed: int) -> list[complex]:
    return list(np.exp(1j * np.random.default_rng(seed).uniform(-pi, pi, count)))


def random_state(dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vector = rng.normal(size=dim) + 1j * rng.normal(size=dim)
    return vector / np.linalg.norm(vector)


_EXPR_NAMESPACE = {"a": a, "b": b, "c": c, "sin": sin, "pi": pi}


def _value(code: str):
    return eval(code, {"__builtins__": {}}, _EXPR_NAMESPACE)  # noqa: S307 - our own strings


def custom_gate(num_qubits: int, spec: Sequence[tuple], global_phase: str = "0.0",
                name: str = "custom") -> Gate:
    """``QuantumCircuit.to_gate()`` of a sub-circuit of standard gates: ``spec`` holds
    ``(gate name, (parameter code strings), (qubits))``; parameter codes may use a, b, c."""
    sub = QuantumCircuit(num_qubits, name=name, global_phase=_value(global_phase))
    for gate_name, params, qubits in spec:
        sub.append(standard_gate(gate_name, *(_value(p) for p in params)), list(qubits))
    return sub.to_gate()


def opaque_standard(name: str, params: Sequence[float]) -> Gate:
    """A plain ``Gate`` that reuses the standard name ``name``, whose definition is the
    standard gate's own (exact, global phase included): what the OpenQASM 3 importer builds."""
    prototype = standard_gate(name, *params)
    gate = Gate(name, prototype.num_qubits, list(params))
    if prototype.definition is not None:
        definition = prototype.definition.copy()
    else:  # id, cx, u have no definition: the gate itself
        definition = QuantumCircuit(prototype.num_qubits)
        definition.append(prototype, range(prototype.num_qubits))
    gate.definition = definition
    return gate


EXPRESSIONS = ("{a}", "{a} - {b}", "2*{a} + 0.3", "{a}*{b}", "-{a}", "{a} + {b} - {b}",
               "sin({a})", "{a}/2")
"""Expression templates over two different parameters; ``{a} - {b}`` and ``{a} + {b} - {b}``
vanish or reduce when the parameters are equal, ``{a}*{b}`` when one is 0."""


# --- drawing ------------------------------------------------------------------------------

SPECIAL_ANGLES = (0.0, pi / 2, -pi / 2, pi, -pi, 2 * pi, pi / 4)
angles = st.one_of(
    st.sampled_from(SPECIAL_ANGLES),
    st.floats(-2 * pi, 2 * pi, allow_nan=False, allow_infinity=False, allow_subnormal=False),
)
seeds = st.integers(0, 2**31 - 1)


@dataclass
class Builder:
    """A circuit under construction and the code that rebuilds it."""

    circuit: QuantumCircuit
    lines: list[str]
    touched: set[int] = field(default_factory=set)

    @classmethod
    def new(cls, num_qubits: int, global_phase="0.0", clbits: int = 0) -> Builder:
        circuit = QuantumCircuit(num_qubits, clbits) if clbits else QuantumCircuit(num_qubits)
        circuit.global_phase = _value(global_phase)
        args = f"{num_qubits}, {clbits}" if clbits else f"{num_qubits}"
        return cls(circuit, [f"qc = QuantumCircuit({args})", f"qc.global_phase = {global_phase}"]
                   if global_phase != "0.0" else [f"qc = QuantumCircuit({args})"])

    @property
    def num_qubits(self) -> int:
        return self.circuit.num_qubits

    def append(self, operation: Instruction, code: str, qubits: Sequence[int],
               clbits: Sequence[int] = ()) -> None:
        qubits = [int(q) for q in qubits]
        clbits = [int(q) for q in clbits]
        self.circuit.append(operation, qubits, clbits)
        tail = f", {clbits}" if clbits else ""
        self.lines.append(f"qc.append({code}, {qubits}{tail})")
        self.touched.update(qubits)

    def line(self, code: str) -> None:
        self.lines.append(code)

    @property
    def code(self) -> str:
        return "\n".join(self.lines)


class Case:
    """A drawn circuit; ``repr`` (and Hypothesis' pretty-printing) is the code that rebuilds
    it. ``bindings``: parameter values to try; ``extra``: what the strategy knows about it;
    ``reference``: for dynamic circuits, the same circuit with one measure / reset per qubit,
    for embedded circuits, the small circuit."""

    def __init__(self, circuit: QuantumCircuit, code: str, bindings: list[dict] | None = None,
                 extra: dict | None = None, reference: QuantumCircuit | None = None) -> None:
        self.circuit = circuit
        self.code = code
        self.bindings = bindings or []
        self.extra = extra or {}
        self.reference = reference

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(repr(self))

    def __repr__(self) -> str:
        text = "\n" + self.code
        if self.bindings:
            text += "\n# bindings: " + repr([{p.name: v for p, v in binding.items()}
                                             for binding in self.bindings])
        for key, value in self.extra.items():
            text += f"\n# {key}: {value!r}"
        return text + "\n"

    @property
    def parameters(self) -> list[Parameter]:
        return list(self.circuit.parameters)

    def values(self) -> np.ndarray:
        """The bindings as an array (bindings, parameters) in ``circuit.parameters`` order."""
        return np.array([[binding[p] for p in self.parameters] for binding in self.bindings],
                        dtype=float).reshape(len(self.bindings), len(self.parameters))

    def bound(self, j: int) -> QuantumCircuit:
        return self.circuit.assign_parameters(self.bindings[j]) if self.bindings else self.circuit

    def describe(self) -> str:
        """For assertion messages: the code and the drawing."""
        try:
            drawing = str(self.circuit.draw(output="text", fold=-1))
        except Exception as exc:  # noqa: BLE001 - a drawing is a courtesy
            drawing = f"(no drawing: {exc})"
        return f"{self!r}\n{drawing}"


def _qubits(draw, builder: Builder, k: int) -> list[int]:
    """``k`` distinct qubits in random order."""
    return draw(st.permutations(range(builder.num_qubits)))[:k]


def _angle_code(draw) -> str:
    return repr(float(draw(angles)))


# standard -------------------------------------------------------------------------------


def kind_standard(draw, builder: Builder, names: Sequence[str] = STANDARD_NAMES) -> bool:
    fits = [n for n in names if STANDARD[n].num_qubits <= builder.num_qubits]
    name = draw(st.sampled_from(fits))
    prototype = STANDARD[name]
    params = [draw(angles) for _ in prototype.params]
    gate = standard_gate(name, *params)
    qubits = _qubits(draw, builder, prototype.num_qubits)
    code = f"standard_gate({name!r}{''.join(', ' + repr(float(p)) for p in params)})"
    builder.append(gate, code, qubits)
    return True


# controlled -----------------------------------------------------------------------------

_BASES = {
    "XGate()": lambda: XGate(),
    "HGate()": lambda: HGate(),
    "ZGate()": lambda: ZGate(),
    "YGate()": lambda: YGate(),
    "SXGate()": lambda: SXGate(),
    "TGate()": lambda: TGate(),
}
_ROTATIONS = {"RYGate": RYGate, "RXGate": RXGate, "RZGate": RZGate}


def _one_qubit_base(draw) -> tuple[Gate, str]:
    if draw(st.booleans()):
        key = draw(st.sampled_from(sorted(_BASES)))
        return _BASES[key](), key
    if draw(st.booleans()):
        key = draw(st.sampled_from(sorted(_ROTATIONS)))
        theta = float(draw(angles))
        return _ROTATIONS[key](theta), f"{key}({theta!r})"
    params = [float(draw(angles)) for _ in range(3)]
    return UGate(*params), f"UGate({', '.join(map(repr, params))})"


def _custom_spec(draw, num_qubits: int, parameterized: bool = False) -> tuple:
    size = draw(st.integers(1, 3))
    spec = []
    for _ in range(size):
        fits = [n for n in STANDARD_NAMES if 1 <= STANDARD[n].num_qubits <= num_qubits]
        name = draw(st.sampled_from(fits))
        prototype = STANDARD[name]
        params = []
        for _p in prototype.params:
            if parameterized and draw(st.booleans()):
                params.append(_expression_code(draw))
            else:
                params.append(_angle_code(draw))
        qubits = tuple(draw(st.permutations(range(num_qubits)))[: prototype.num_qubits])
        spec.append((name, tuple(params), qubits))
    return tuple(spec)


CONTROLLED_FORMS = ("mcmt", "control", "control_custom", "mcphase", "mcx")
"""``annotated`` (``gate.control(k, annotated=True)``, an AnnotatedOperation; Qiskit 3's default
for gates without a dedicated controlled class) is drawn only where asked for."""


def kind_controlled(draw, builder: Builder, forms: Sequence[str] = CONTROLLED_FORMS) -> bool:
    n = builder.num_qubits
    if n < 2:
        return False
    form = draw(st.sampled_from(list(forms)))
    if form == "mcmt":
        base, base_code = _one_qubit_base(draw)
        num_ctrl = draw(st.integers(1, min(3, n - 1)))
        num_target = draw(st.integers(1, min(3, n - num_ctrl)))
        ctrl_state = draw(st.none() | st.integers(0, 2**num_ctrl - 1))
        gate = MCMTGate(base, num_ctrl, num_target, ctrl_state=ctrl_state)
        code = f"MCMTGate({base_code}, {num_ctrl}, {num_target}, ctrl_state={ctrl_state})"
        qubits = _qubits(draw, builder, num_ctrl + num_target)
    elif form in ("control", "control_custom", "annotated"):
        if form in ("control", "annotated"):
            if draw(st.booleans()) or n < 3:
                base, base_code = _one_qubit_base(draw)
            else:
                names = [m for m in STANDARD_NAMES if STANDARD[m].num_qubits == 2]
                name = draw(st.sampled_from(names))
                params = [float(draw(angles)) for _ in STANDARD[name].params]
                base = standard_gate(name, *params)
                base_code = f"standard_gate({name!r}{''.join(', ' + repr(p) for p in params)})"
        else:
            width = draw(st.integers(1, min(2, n - 1)))
            spec = _custom_spec(draw, width)
            base = custom_gate(width, spec)
            base_code = f"custom_gate({width}, {spec!r})"
        k = draw(st.integers(1, min(3, n - base.num_qubits)))
        ctrl_state = draw(st.integers(0, 2**k - 1))
        annotated = form == "annotated" or (form == "control_custom"
                                            and "annotated" in forms and draw(st.booleans()))
        gate = base.control(k, ctrl_state=ctrl_state, annotated=annotated)
        code = f"{base_code}.control({k}, ctrl_state={ctrl_state}, annotated={annotated})"
        qubits = _qubits(draw, builder, k + base.num_qubits)
    elif form == "mcphase":
        k = draw(st.integers(1, min(3, n - 1)))
        lam = float(draw(angles))
        ctrl_state = draw(st.none() | st.integers(0, 2**k - 1))
        gate = MCPhaseGate(lam, k, ctrl_state=ctrl_state)
        code = f"MCPhaseGate({lam!r}, {k}, ctrl_state={ctrl_state})"
        qubits = _qubits(draw, builder, k + 1)
    else:
        k = draw(st.integers(1, min(3, n - 1)))
        ctrl_state = draw(st.none() | st.integers(0, 2**k - 1))
        gate = MCXGate(k, ctrl_state=ctrl_state)
        code = f"MCXGate({k}, ctrl_state={ctrl_state})"
        qubits = _qubits(draw, builder, k + 1)
    builder.append(gate, code, qubits)
    return True


# matrix ---------------------------------------------------------------------------------


def kind_matrix(draw, builder: Builder) -> bool:
    n = builder.num_qubits
    form = draw(st.sampled_from(["unitary", "diagonal", "pauli", "multiplexer"]))
    seed = draw(seeds)
    if form == "unitary":
        k = draw(st.integers(1, min(3, n)))
        gate = UnitaryGate(random_unitary_matrix(2**k, seed))
        code = f"UnitaryGate(random_unitary_matrix({2**k}, {seed}))"
    elif form == "diagonal":
        k = draw(st.integers(1, min(3, n)))
        gate = DiagonalGate(random_phases(2**k, seed))
        code = f"DiagonalGate(random_phases({2**k}, {seed}))"
    elif form == "pauli":
        k = draw(st.integers(1, min(3, n)))
        label = "".join(draw(st.lists(st.sampled_from("IXYZ"), min_size=k, max_size=k)))
        gate = PauliGate(label)
        code = f"PauliGate({label!r})"
    else:
        controls = draw(st.integers(0, min(2, n - 1)))
        k = controls + 1
        gate = UCGate(random_unitaries(2**controls, 2, seed))
        code = f"UCGate(random_unitaries({2**controls}, 2, {seed}))"
    builder.append(gate, code, _qubits(draw, builder, k))
    return True


# definition -----------------------------------------------------------------------------


def kind_definition(draw, builder: Builder) -> bool:
    n = builder.num_qubits
    if draw(st.booleans()):
        width = draw(st.integers(1, min(3, n)))
        spec = _custom_spec(draw, width)
        phase = _angle_code(draw) if draw(st.booleans()) else "0.0"
        gate = custom_gate(width, spec, phase)
        code = f"custom_gate({width}, {spec!r}, {phase!r})"
    else:
        fits = [m for m in STANDARD_NAMES if 1 <= STANDARD[m].num_qubits <= n]
        preferred = [m for m in ("rzz", "ccz", "rxx", "ryy", "xx_plus_yy", "ecr", "sxdg",
                                 "iswap", "cs", "csx", "r", "dcx") if m in fits]
        name = draw(st.sampled_from(preferred) | st.sampled_from(fits))
        params = [float(draw(angles)) for _ in STANDARD[name].params]
        gate = opaque_standard(name, params)
        code = f"opaque_standard({name!r}, {params!r})"
        width = gate.num_qubits
    builder.append(gate, code, _qubits(draw, builder, width))
    return True


# preparation ----------------------------------------------------------------------------


def _preparation_params(draw, k: int) -> tuple[object, str, dict]:
    form = draw(st.sampled_from(["amplitudes", "label", "integer"]))
    if form == "amplitudes":
        seed = draw(seeds)
        return random_state(2**k, seed), f"random_state({2**k}, {seed})", {}
    if form == "label":
        label = "".join(draw(st.lists(st.sampled_from("01+-rl"), min_size=k, max_size=k)))
        return label, repr(label), {}
    value = draw(st.integers(0, 2**k - 1))
    return value, repr(value), {"num_qubits": k}


def kind_prepare(draw, builder: Builder, allow_initialize: bool = True) -> bool:
    n = builder.num_qubits
    if allow_initialize and draw(st.booleans()):
        fresh = [q for q in range(n) if q not in builder.touched]
        if not fresh:
            return False
        k = draw(st.integers(1, min(3, len(fresh))))
        qubits = draw(st.permutations(fresh))[:k]
        params, code, kwargs = _preparation_params(draw, k)
        gate = Initialize(params, **kwargs)
        extra = f", num_qubits={k}" if kwargs else ""
        builder.append(gate, f"Initialize({code}{extra})", qubits)
        return True
    k = draw(st.integers(1, min(3, n)))
    params, code, kwargs = _preparation_params(draw, k)
    gate = StatePreparation(params, **kwargs)
    extra = f", num_qubits={k}" if kwargs else ""
    builder.append(gate, f"StatePreparation({code}{extra})", _qubits(draw, builder, k))
    return True


# expressions ----------------------------------------------------------------------------


def _expression_code(draw, allow_sin: bool = True) -> str:
    templates = [t for t in EXPRESSIONS if allow_sin or "sin" not in t]
    template = draw(st.sampled_from(templates))
    first, second = draw(st.permutations(["a", "b", "c"]))[:2]
    return template.format(a=first, b=second)


def kind_expression(draw, builder: Builder, allow_sin: bool = True,
                    forms: Sequence[str] = ("standard", "controlled", "mcphase", "custom",
                                            "global_phase", "phase_attribute")) -> bool:
    n = builder.num_qubits
    form = draw(st.sampled_from(list(forms)))
    if form == "standard":
        names = [m for m in STANDARD_NAMES
                 if STANDARD[m].params and STANDARD[m].num_qubits <= n and m != "global_phase"]
        name = draw(st.sampled_from(names))
        count = len(STANDARD[name].params)
        which = draw(st.integers(0, count - 1))
        codes = [_expression_code(draw, allow_sin) if i == which or draw(st.booleans())
                 else _angle_code(draw) for i in range(count)]
        gate = standard_gate(name, *(_value(p) for p in codes))
        code = f"standard_gate({name!r}{''.join(', ' + p for p in codes)})"
        builder.append(gate, code, _qubits(draw, builder, gate.num_qubits))
    elif form == "controlled" and n >= 2:
        key = draw(st.sampled_from(sorted(_ROTATIONS)))
        angle = _expression_code(draw, allow_sin)
        k = draw(st.integers(1, min(3, n - 1)))
        ctrl_state = draw(st.integers(0, 2**k - 1))
        gate = _ROTATIONS[key](_value(angle)).control(k, ctrl_state=ctrl_state, annotated=False)
        builder.append(gate, f"{key}({angle}).control({k}, ctrl_state={ctrl_state}, "
                             "annotated=False)",
                       _qubits(draw, builder, k + 1))
    elif form == "mcphase" and n >= 2:
        angle = _expression_code(draw, allow_sin)
        k = draw(st.integers(1, min(3, n - 1)))
        gate = MCPhaseGate(_value(angle), k)
        builder.append(gate, f"MCPhaseGate({angle}, {k})", _qubits(draw, builder, k + 1))
    elif form == "custom":
        width = draw(st.integers(1, min(2, n)))
        spec = _custom_spec(draw, width, parameterized=True)
        gate = custom_gate(width, spec)
        builder.append(gate, f"custom_gate({width}, {spec!r})", _qubits(draw, builder, width))
    elif form == "global_phase":
        angle = _expression_code(draw, allow_sin)
        builder.append(GlobalPhaseGate(_value(angle)), f"GlobalPhaseGate({angle})", [])
    else:
        angle = _expression_code(draw, allow_sin)
        builder.circuit.global_phase = builder.circuit.global_phase + _value(angle)
        builder.line(f"qc.global_phase = qc.global_phase + ({angle})")
    return True


KINDS: dict[str, Callable] = {
    "standard": kind_standard,
    "controlled": kind_controlled,
    "matrix": kind_matrix,
    "definition": kind_definition,
    "prepare": kind_prepare,
    "expression": kind_expression,
}
UNITARY_KINDS = ("standard", "controlled", "matrix", "definition", "prepare")


def _fill(draw, builder: Builder, kinds: Sequence[str], count: int,
          kind_options: dict | None = None) -> None:
    kind_options = kind_options or {}
    for _ in range(count):
        kind = draw(st.sampled_from(list(kinds)))
        if not KINDS[kind](draw, builder, **kind_options.get(kind, {})):
            kind_standard(draw, builder)


def _global_phase_code(draw) -> str:
    return _angle_code(draw) if draw(st.booleans()) else "0.0"


# --- bindings -----------------------------------------------------------------------------

binding_values = st.one_of(
    st.sampled_from([0.0, 0.5, 1.0, -pi / 2, pi]),
    st.floats(-pi, pi, allow_nan=False, allow_infinity=False, allow_subnormal=False),
)


def _bindings(draw, parameters: list[Parameter], extra: int = 2) -> list[dict]:
    """Binding 0 sets every parameter to one value (``a - b`` is exactly zero there);
    binding 1 gives every parameter a different value; then up to ``extra`` random ones."""
    if not parameters:
        return []
    same, *distinct = draw(st.lists(binding_values, min_size=len(parameters) + 1,
                                    max_size=len(parameters) + 1, unique=True))
    same = float(same)
    out = [dict.fromkeys(parameters, same), dict(zip(parameters, map(float, distinct)))]
    for _ in range(draw(st.integers(0, extra))):
        out.append({p: float(draw(binding_values)) for p in parameters})
    return out


# --- public strategies ----------------------------------------------------------------------


NO_INITIALIZE = {"prepare": {"allow_initialize": False}}
"""Keyword options of the circuit strategies for circuits the estimator takes (unitary ones):
initialize (a reset) is left out."""


@st.composite
def circuits(draw, kinds: Sequence[str] = UNITARY_KINDS, min_qubits: int = 1,
             max_qubits: int = 5, min_gates: int = 1, max_gates: int = 8,
             global_phase: bool = True, kind_options: dict | None = None) -> Case:
    """A circuit without parameters over ``kinds``; the circuit's global phase is random."""
    n = draw(st.integers(min_qubits, max_qubits))
    builder = Builder.new(n, _global_phase_code(draw) if global_phase else "0.0")
    _fill(draw, builder, kinds, draw(st.integers(min_gates, max_gates)), kind_options)
    return Case(builder.circuit, builder.code)


@st.composite
def parameterized_circuits(draw, kinds: Sequence[str] = ("standard", "controlled", "matrix"),
                           min_qubits: int = 1, max_qubits: int = 4, max_gates: int = 6,
                           allow_sin: bool = True, expression_forms: Sequence[str] | None = None,
                           allow_prepare: bool = True, allow_initialize: bool = True) -> Case:
    """A circuit with 1-4 expression gates between other gates, and bindings for it (one
    where every parameter is equal, one where none is)."""
    n = draw(st.integers(min_qubits, max_qubits))
    builder = Builder.new(n, _global_phase_code(draw))
    options = {"allow_sin": allow_sin}
    if expression_forms is not None:
        options["forms"] = expression_forms
    if allow_prepare and draw(st.booleans()):
        kind_prepare(draw, builder, allow_initialize=allow_initialize)
    expressions = draw(st.integers(1, 4))
    others = draw(st.integers(0, max_gates))
    order = draw(st.permutations([True] * expressions + [False] * others))
    for is_expression in order:
        if is_expression:
            kind_expression(draw, builder, **options)
        else:
            _fill(draw, builder, kinds, 1)
    if not builder.circuit.parameters:  # e.g. only "a + b - b" folded away: add a plain one
        kind_expression(draw, builder, allow_sin=allow_sin, forms=("standard",))
    case = Case(builder.circuit, builder.code)
    case.bindings = _bindings(draw, list(builder.circuit.parameters))
    return case


@st.composite
def large_circuits(draw, kinds: Sequence[str] = ("standard", "standard", "controlled",
                                                 "matrix", "definition", "prepare"),
                   max_gates: int = 12) -> Case:
    """12-13 qubits (at or past ``PLAN_MIN_QUBITS``), few gates, SWAPs drawn often."""
    from gpuprovider.kernels.policy import CPU_POLICY

    n = draw(st.integers(CPU_POLICY.plan_min_qubits, CPU_POLICY.plan_min_qubits + 1))
    builder = Builder.new(n, _global_phase_code(draw))
    for _ in range(draw(st.integers(2, max_gates))):
        if draw(st.integers(0, 3)) == 0:
            kind_standard(draw, builder, names=("swap", "cswap", "iswap", "h", "cx"))
        else:
            _fill(draw, builder, kinds, 1)
    return Case(builder.circuit, builder.code)


@st.composite
def measured_circuits(draw, base: st.SearchStrategy | None = None) -> Case:
    """A circuit (parameterised or not) measured at the end: a random subset of its qubits, in
    random order, into register "meas" (bit j reads ``extra['measured'][j]``)."""
    case = draw(base if base is not None else circuits())
    circuit = case.circuit
    n = circuit.num_qubits
    k = draw(st.integers(1, n))
    measured = draw(st.permutations(range(n)))[:k]
    register = ClassicalRegister(k, "meas")
    circuit.add_register(register)
    for j, q in enumerate(measured):
        circuit.measure(q, register[j])
    code = case.code + f"\nqc.add_register(ClassicalRegister({k}, 'meas'))\n" + "\n".join(
        f"qc.measure({q}, {j})" for j, q in enumerate(measured))
    return Case(circuit, code, case.bindings, {"measured": [int(q) for q in measured]})


@st.composite
def dynamic_circuits(draw, raw: bool = False, max_qubits: int = 4) -> Case:
    """Gates, then mid-circuit measurements (into register "mid") and resets, then a final
    measurement of every qubit into register "fin". With ``raw``, some measurements and
    resets are the multi-qubit ``Instruction("measure", k, k, [])`` and
    ``Instruction("reset", k, 0, [])``; ``extra['reference']`` is then the circuit with them
    rewritten as one measure / reset per qubit (what a multi-qubit measure means)."""
    n = draw(st.integers(2, max_qubits))
    qr = QuantumRegister(n, "q")
    mid = ClassicalRegister(n, "mid")
    fin = ClassicalRegister(n, "fin")
    circuit = QuantumCircuit(qr, mid, fin)
    reference = QuantumCircuit(qr, mid, fin)
    lines = [f"qc = QuantumCircuit(QuantumRegister({n}, 'q'), ClassicalRegister({n}, 'mid'), "
             f"ClassicalRegister({n}, 'fin'))"]
    builder = Builder(circuit, lines)
    raw_used = False
    for _ in range(draw(st.integers(1, 3))):
        start = len(circuit.data)
        _fill(draw, builder, ("standard", "controlled", "matrix"), draw(st.integers(1, 3)))
        for instruction in circuit.data[start:]:
            reference.append(instruction)
        action = draw(st.sampled_from(["measure", "reset", "measure_reset"]))
        k = draw(st.integers(1, n))
        qubits = draw(st.permutations(range(n)))[:k]
        clbits = draw(st.permutations(range(n)))[:k]
        for what in (["measure", "reset"] if action == "measure_reset" else [action]):
            use_raw = raw and k >= 1 and draw(st.booleans())
            if raw and k >= 2 and not raw_used:
                use_raw = True
            if what == "measure":
                if use_raw:
                    raw_used = True
                    builder.append(Instruction("measure", k, k, []),
                                   f"Instruction('measure', {k}, {k}, [])", qubits,
                                   clbits)
                else:
                    for q, cb in zip(qubits, clbits):
                        circuit.measure(q, mid[cb])
                        lines.append(f"qc.measure({q}, {cb})")
                for q, cb in zip(qubits, clbits):
                    reference.measure(q, mid[cb])
            else:
                if use_raw:
                    raw_used = True
                    builder.append(Instruction("reset", k, 0, []),
                                   f"Instruction('reset', {k}, 0, [])", qubits)
                else:
                    for q in qubits:
                        circuit.reset(q)
                        lines.append(f"qc.reset({q})")
                for q in qubits:
                    reference.reset(q)
        if draw(st.booleans()):
            start = len(circuit.data)
            _fill(draw, builder, ("standard",), 1)
            for instruction in circuit.data[start:]:
                reference.append(instruction)
    if raw and draw(st.booleans()):
        builder.append(Instruction("measure", n, n, []), f"Instruction('measure', {n}, {n}, [])",
                       range(n), range(n, 2 * n))
    else:
        for q in range(n):
            circuit.measure(q, fin[q])
        lines.append(f"qc.measure(range({n}), range({n}, {2 * n}))")
    for q in range(n):
        reference.measure(q, fin[q])
    return Case(circuit, "\n".join(lines), reference=reference)


@st.composite
def qasm3_circuits(draw, parameterized: bool = False, max_qubits: int = 4) -> Case:
    """Circuits Qiskit's OpenQASM 3 exporter and importer both take: standard gates (no
    0-qubit ``global_phase`` gate, which the exporter writes as an unparsable gate), controlled
    forms, ``unitary``, definition-only gates; with ``parameterized``, expression angles
    (no ``sin``: the importer cannot read function calls) in standard and custom gates."""
    names = [m for m in STANDARD_NAMES if m != "global_phase"]
    n = draw(st.integers(1, max_qubits))
    builder = Builder.new(n, _global_phase_code(draw))
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["standard", "standard", "controlled", "unitary",
                                     "definition"]))
        if kind == "standard" or (kind == "controlled" and n < 2):
            kind_standard(draw, builder, names=names)
        elif kind == "controlled":
            kind_controlled(draw, builder)
        elif kind == "unitary":
            k = draw(st.integers(1, min(3, n)))
            seed = draw(seeds)
            builder.append(UnitaryGate(random_unitary_matrix(2**k, seed)),
                           f"UnitaryGate(random_unitary_matrix({2**k}, {seed}))",
                           _qubits(draw, builder, k))
        else:
            kind_definition(draw, builder)
        if parameterized and draw(st.booleans()):
            kind_expression(draw, builder, allow_sin=False, forms=("standard",))
    if parameterized and not builder.circuit.parameters:
        kind_expression(draw, builder, allow_sin=False, forms=("standard",))
    case = Case(builder.circuit, builder.code)
    if parameterized:
        case.bindings = _bindings(draw, list(builder.circuit.parameters))
    return case


@st.composite
def observables(draw, num_qubits: int, max_terms: int = 4) -> SparsePauliOp:
    """1-``max_terms`` distinct Pauli terms on ``num_qubits`` with coefficients in
    +-[0.05, 2] (never an empty observable)."""
    label = st.lists(st.sampled_from("IXYZ"), min_size=num_qubits,
                     max_size=num_qubits).map("".join)
    labels = draw(st.lists(label, min_size=1, max_size=min(max_terms, 4**num_qubits),
                           unique=True))
    magnitude = st.floats(0.05, 2, allow_nan=False, allow_infinity=False)
    coeffs = [draw(magnitude) * draw(st.sampled_from([1, -1])) for _ in labels]
    return SparsePauliOp(labels, coeffs)


@st.composite
def embedded_circuits(draw, min_total: int = 36, max_total: int = 40,
                      kinds: Sequence[str] = ("standard", "controlled", "matrix", "definition",
                                              "prepare"),
                      kind_options: dict | None = None) -> Case:
    """A small circuit (3-6 qubits, unitary kinds) placed on random, unsorted qubits of a wide
    circuit of ``extra['total']`` qubits (by default 36-40: a state no machine here holds);
    ``extra['active']`` lists, for small qubit i, the wide qubit it sits on;
    ``case.reference`` is the small circuit. Idle qubits appear in no instruction."""
    small_case = draw(circuits(kinds=kinds, min_qubits=3, max_qubits=6, max_gates=8,
                               global_phase=True, kind_options=kind_options))
    small = small_case.circuit
    k = small.num_qubits
    total = draw(st.integers(max(min_total, k + 1), max_total))
    active = draw(st.permutations(range(total)))[:k]
    wide = QuantumCircuit(total)
    wide.compose(small, qubits=active, inplace=True)  # the global phase comes along
    code = (small_case.code + f"\nwide = QuantumCircuit({total})"
            f"\nwide.compose(qc, qubits={list(map(int, active))}, inplace=True)")
    return Case(wide, code, extra={"total": total, "active": [int(q) for q in active]},
                reference=small)


INTERLEAVED_ACTIONS = ("measure", "measure_then_rest", "reset", "if_test",
                       "save_statevector", "save_probabilities", "nothing")


@st.composite
def interleaved_circuits(draw, min_qubits: int = 6, max_qubits: int = 8) -> Case:
    """Circuits whose qubits the planner moves (SWAPs relabelled, index-bit swaps of a state
    spread over ranks, whose highest qubits are global): 1-4 segments of gates of
    every unitary kind (the highest qubits drawn as often as the others, SWAPs often), each
    followed by one of: measurements of 1-3 random qubits into random clbits (final ones
    where nothing later touches the qubit, while later index-bit swaps may move its data),
    the same followed by an ``h`` on every other qubit (the measured ones are then the
    only local qubits free to swap with the global ones), a reset, a measurement and an
    ``if_test`` on its clbit, a save of the statevector or of some qubits' probabilities, or
    nothing; then measurements of random qubits into random clbits."""
    import gpuprovider.instructions  # noqa: F401 - QuantumCircuit.save_statevector & co.

    n = draw(st.integers(min_qubits, max_qubits))
    builder = Builder.new(n, _global_phase_code(draw), clbits=n)
    circuit = builder.circuit

    def measure(qubits: Sequence[int]) -> None:
        for qubit, clbit in zip(qubits, draw(st.permutations(range(n)))):
            circuit.measure(qubit, clbit)
            builder.line(f"qc.measure({qubit}, {clbit})")

    for segment in range(draw(st.integers(1, 4))):
        for _ in range(draw(st.integers(1, 5))):
            if draw(st.integers(0, 2)) == 0:
                kind_standard(draw, builder, names=("swap", "h", "cx", "ry", "cp", "ccx"))
            else:
                _fill(draw, builder, UNITARY_KINDS, 1)
        action = draw(st.sampled_from(INTERLEAVED_ACTIONS))
        qubits = _qubits(draw, builder, draw(st.integers(1, min(3, n))))
        if action in ("measure", "measure_then_rest"):
            measure(qubits)
        if action == "measure_then_rest":
            rest = [qubit for qubit in draw(st.permutations(range(n))) if qubit not in qubits]
            if rest:
                circuit.h(rest)
                builder.line(f"qc.h({rest})")
        elif action == "reset":
            for qubit in qubits:
                circuit.reset(qubit)
                builder.line(f"qc.reset({qubit})")
        elif action == "if_test":
            clbit = draw(st.integers(0, n - 1))
            circuit.measure(qubits[0], clbit)
            with circuit.if_test((circuit.clbits[clbit], 1)):
                circuit.h(qubits[-1])
            builder.line(f"qc.measure({qubits[0]}, {clbit})\n"
                         f"with qc.if_test((qc.clbits[{clbit}], 1)):\n    qc.h({qubits[-1]})")
        elif action == "save_statevector":
            circuit.save_statevector(label=f"sv{segment}")
            builder.line(f"qc.save_statevector(label='sv{segment}')")
        elif action == "save_probabilities":
            circuit.save_probabilities(qubits, label=f"p{segment}")
            builder.line(f"qc.save_probabilities({qubits}, label='p{segment}')")
    measure(_qubits(draw, builder, draw(st.integers(1, n))))
    return Case(circuit, builder.code)
