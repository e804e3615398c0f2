"""Parameterised gates for a batch of parameter sets at once: one array per gate, not one op
per set.

A parameter sweep or a primitive pub with many parameter sets rebuilds only the numbers of
its parameterised gates per set (:meth:`~gpuprovider.compile.program.Program.bind`); for a
batch of sets even that is one NumPy evaluation per gate:

* each gate parameter is evaluated for every set at once: an affine expression of the
  circuit's parameters (``theta``, ``2*theta + pi``, ``a - b``; found from its gradient and
  checked at a random point) as one product, any other expression set by set;
* a standard gate's matrix for every set comes from a table of its class's Fourier
  coefficients. Every standard gate's entries are trigonometric polynomials in the
  half-angles of its parameters of degree at most 2 (``rz`` has ``e^{-i theta/2}``, ``p``
  ``e^{i theta}``), so 5 samples per parameter determine them exactly; the table is
  built once per class and checked against Qiskit's matrix at random values, and a class it
  does not reproduce is built set by set instead.

The kind of each batch (diagonal, permutation, dense) is the kind the gate's class has for
every value (:func:`~gpuprovider.compile.gate_ops.standard_structure`), so no set can
change it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

import numpy as np
from qiskit.circuit import Instruction, Parameter, ParameterExpression

from .gate_ops import GateError, bound_values, ctrl_state_of, is_standard, standard_structure
from .program import (
    ControlledOp,
    DiagonalOp,
    MatrixOp,
    Op,
    ParameterizedGateOp,
    PermutationOp,
    dense_matrix,
)

Columns = Mapping[Parameter, np.ndarray]
"""A batch of parameter sets: each parameter's value in every set (float64, one length)."""

FOURIER_DEGREE = 2
"""Highest frequency, in units of a parameter's half-angle, of a standard gate's entries."""
_SAMPLES = 2 * FOURIER_DEGREE + 1
_FIT_TOLERANCE = 1e-11
"""Largest error of a Fourier table at a random check point for it to be used."""
_FIT_CHECKS = 3
_AFFINE_TOLERANCE = 1e-9
"""Largest relative error of an affine form at its random check point."""


@dataclass(frozen=True)
class GateBatch:
    """One gate on ``qubits`` for each set of a batch.

    ``kind`` ``"diagonal"``: ``values`` is ``(sets, 2**k)``, one diagonal per set;
    ``"permutation"``: row ``r`` of set ``s``'s matrix is ``values[s, r]`` at column
    ``columns[r]``; ``"dense"``: ``values`` is ``(sets, 2**k, 2**k)``; ``"controlled"``:
    ``values`` is one matrix per set on ``targets``, applied where ``controls`` spell
    ``control_state`` (``qubits`` is the controls, then the targets).
    """

    qubits: np.ndarray
    kind: str
    values: np.ndarray
    columns: np.ndarray | None = None
    controls: np.ndarray | None = None
    control_state: int = 0
    targets: np.ndarray | None = None

    def apply(self, kernels: Any, states: np.ndarray) -> None:
        """Apply the batch to ``states`` (one row per set) with the batch kernels
        (:mod:`gpuprovider.kernels.batch`)."""
        if self.kind == "diagonal":
            kernels.apply_diagonal(states, self.qubits, self.values)
        elif self.kind == "permutation":
            kernels.apply_permutation(states, self.qubits, self.columns, self.values)
        elif self.kind == "controlled":
            kernels.apply_controlled_matrix(states, self.controls, self.control_state,
                                            self.targets, self.values)
        else:
            kernels.apply_matrix(states, self.qubits, self.values)


BatchBuilder = Callable[[Columns, int], "GateBatch | None"]
"""``build(columns, sets)``: a parameterised gate's batch for ``sets`` parameter sets, or None
when it must be built set by set."""


# --- parameter values --------------------------------------------------------------------------


def _affine_form(expression: ParameterExpression) -> tuple[float, dict] | None:
    """``(c0, {p: c_p})`` with ``expression == c0 + sum(c_p * p)`` for real constants, or
    None when the expression is not affine (checked at a random point) or Qiskit cannot
    differentiate or evaluate it."""
    try:
        return _checked_affine_form(expression)
    except (RuntimeError, TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None


def _checked_affine_form(expression: ParameterExpression) -> tuple[float, dict] | None:
    coefficients = {}
    for parameter in expression.parameters:
        gradient = expression.gradient(parameter)
        if isinstance(gradient, ParameterExpression):
            if gradient.parameters:
                return None
            gradient = gradient.numeric()
        gradient = complex(gradient)
        if gradient.imag:
            return None
        coefficients[parameter] = gradient.real
    constant = complex(expression.bind({p: 0.0 for p in expression.parameters}).numeric())
    if constant.imag or not math.isfinite(constant.real):
        return None
    rng = np.random.default_rng(len(coefficients))
    point = {p: float(rng.uniform(-3, 3)) for p in expression.parameters}
    exact = complex(expression.bind(point).numeric())
    affine = constant.real + sum(c * point[p] for p, c in coefficients.items())
    if abs(exact - affine) > _AFFINE_TOLERANCE * max(1.0, abs(exact)):
        return None
    return constant.real, coefficients


def parameter_values(params: Sequence) -> Callable[[Columns, int], np.ndarray]:
    """``values(columns, sets)``: ``(sets, len(params))`` float64, each gate parameter in
    every set. An affine parameter is one product over the batch, any other is evaluated
    set by set (:func:`~gpuprovider.compile.gate_ops.bound_values`, whose GateError names a
    value that has no finite real result). The affine forms are found on the first call."""
    forms: list = []

    def values(columns: Columns, sets: int) -> np.ndarray:
        if not forms:  # threads that race here compute the same forms
            forms[:] = [_affine_form(p) if isinstance(p, ParameterExpression) else p
                        for p in params]
        out = np.empty((sets, len(params)), dtype=np.float64)
        for j, (param, form) in enumerate(zip(params, forms)):
            if not isinstance(param, ParameterExpression):
                out[:, j] = float(param)
            elif form is not None:
                constant, coefficients = form
                out[:, j] = constant
                for parameter, coefficient in coefficients.items():
                    out[:, j] += coefficient * columns[parameter]
            else:
                out[:, j] = [bound_values([param], {p: float(columns[p][s])
                                                    for p in param.parameters})[0]
                             for s in range(sets)]
        return out

    return values


# --- standard gates ----------------------------------------------------------------------------


def _frequencies() -> np.ndarray:
    """The half-angle frequency of each FFT index (0, 1, ..., -1)."""
    return np.fft.fftfreq(_SAMPLES, 1.0 / _SAMPLES)


def _evaluate(table: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """``sum_k table[k] exp(i k . angles / 2)`` for each row of ``angles`` (sets, p)."""
    frequencies = _frequencies()
    result = None
    for j in range(angles.shape[1]):
        waves = np.exp(0.5j * angles[:, j, None] * frequencies[None, :])
        result = (np.tensordot(waves, table, axes=(1, 0)) if result is None
                  else np.einsum("sk,sk...->s...", waves, result))
    return result


@cache
def _fourier_table(base_class: type, num_params: int, ctrl_state: int | None
                   ) -> np.ndarray | None:
    """``(5,) * num_params + (d, d)`` Fourier coefficients of the class's matrix in its
    parameters' half-angles, or None when they do not reproduce it."""
    extra = {} if ctrl_state is None else {"ctrl_state": ctrl_state}

    def matrix(angles: Sequence[float]) -> np.ndarray:
        return np.asarray(base_class(*angles, **extra).to_matrix(), dtype=np.complex128)

    grid = 4 * math.pi * np.arange(_SAMPLES) / _SAMPLES  # half-angles 2 pi m / 5
    samples = np.stack([matrix(point) for point in
                        np.stack(np.meshgrid(*[grid] * num_params, indexing="ij"),
                                 axis=-1).reshape(-1, num_params)])
    samples = samples.reshape((_SAMPLES,) * num_params + samples.shape[1:])
    table = np.fft.fftn(samples, axes=tuple(range(num_params))) / _SAMPLES ** num_params
    rng = np.random.default_rng(20261202)
    checks = rng.uniform(-2 * math.pi, 2 * math.pi, (_FIT_CHECKS, num_params))
    fitted = _evaluate(table, checks)
    exact = np.stack([matrix(point) for point in checks])
    if np.max(np.abs(fitted - exact)) > _FIT_TOLERANCE:
        return None
    return table


def standard_batch_builder(base_class: type, params: Sequence, ctrl_state: int | None,
                           qubits: np.ndarray, dtype: np.dtype) -> BatchBuilder:
    """How to build a standard gate (``base_class(*params)``) for a batch of sets; it gives
    None when its class's Fourier table (made on the first call) does not reproduce it."""
    values = parameter_values(params)

    def build(parameters: Columns, sets: int) -> GateBatch | None:
        table = _fourier_table(base_class, len(params), ctrl_state)
        if table is None:
            return None
        kind, columns = standard_structure(base_class, len(params), ctrl_state)
        matrices = _evaluate(table, values(parameters, sets))
        return _batch_of_kind(kind, columns, qubits, matrices.astype(dtype))

    return build


def batch_builder(operation: Instruction, qubits: Sequence[int], dtype: np.dtype
                  ) -> BatchBuilder | None:
    """How to build a parameterised gate for a batch of sets: a standard gate from its
    class's Fourier table; None for any other gate (it is built set by set,
    :func:`stacked_batch`)."""
    if not is_standard(operation):
        return None
    return standard_batch_builder(operation.base_class, list(operation.params),
                                  ctrl_state_of(operation), np.asarray(qubits, dtype=np.int64),
                                  np.dtype(dtype))


def _batch_of_kind(kind: str, columns: np.ndarray | None, qubits: np.ndarray,
                   matrices: np.ndarray) -> GateBatch:
    rows = np.arange(matrices.shape[1])
    if kind == "diagonal":
        return GateBatch(qubits, kind, np.ascontiguousarray(matrices[:, rows, rows]))
    if kind == "permutation":
        return GateBatch(qubits, kind, np.ascontiguousarray(matrices[:, rows, columns]),
                         columns)
    return GateBatch(qubits, "dense", matrices)


def phase_batch_builder(phase: ParameterExpression, qubits: np.ndarray, dtype: np.dtype
                        ) -> BatchBuilder:
    """A parameterised global phase ``e^{i phase}`` (a zero-qubit diagonal) for a batch."""
    values = parameter_values([phase])

    def build(parameters: Columns, sets: int) -> GateBatch:
        return GateBatch(qubits, "diagonal",
                         np.exp(1j * values(parameters, sets)).astype(dtype))

    return build


def stacked_batch(build: Callable[[dict], Op], parameters: Columns, sets: int) -> GateBatch:
    """Any parameterised gate for a batch: ``build`` set by set, as controlled target
    matrices when every set's op is a ControlledOp of the same controls, else as dense
    matrices on the first set's qubits (each set's op may be of its own kind)."""
    ops = [build({p: float(column[s]) for p, column in parameters.items()})
           for s in range(sets)]
    first = ops[0]
    for op in ops:
        if not isinstance(op, (MatrixOp, DiagonalOp, PermutationOp, ControlledOp)) or \
                not np.array_equal(op.qubits, first.qubits):
            raise GateError(f"it became a {type(op).__name__} on qubits {op.qubits.tolist()}, "
                            "which a batch of one gate cannot hold")
    if isinstance(first, ControlledOp) and all(
            isinstance(op, ControlledOp) and op.control_state == first.control_state
            and np.array_equal(op.controls, first.controls) for op in ops):
        return GateBatch(first.qubits, "controlled", np.stack([op.matrix for op in ops]),
                         controls=first.controls, control_state=first.control_state,
                         targets=first.targets)
    return GateBatch(first.qubits, "dense", np.stack([dense_matrix(op) for op in ops]))


def gate_batch(op: ParameterizedGateOp, parameters: Columns, sets: int) -> GateBatch:
    """``op`` for a batch of ``sets`` parameter sets: by its ``build_batch`` where it has
    one that can, else set by set."""
    batch = None if op.build_batch is None else op.build_batch(parameters, sets)
    return stacked_batch(op.build, parameters, sets) if batch is None else batch


def set_op(batch: GateBatch, row: int) -> Op:
    """Set ``row``'s gate of a batch, as the op a set-by-set build gives (same kind)."""
    values = batch.values[row]
    if batch.kind == "diagonal":
        return DiagonalOp(batch.qubits, values)
    if batch.kind == "permutation":
        return PermutationOp(batch.qubits, batch.columns, values)
    if batch.kind == "controlled":
        return ControlledOp(batch.controls, batch.control_state, batch.targets, values)
    return MatrixOp(batch.qubits, values)


BIND_CHUNK_SETS = 64
"""Sets whose gates :func:`bound_chunks` builds at once."""


@dataclass(frozen=True)
class BoundChunk:
    """Consecutive parameter sets of one program, its parameterised gates built for all of
    them: ``built[k]`` is op ``k``'s batch, or None where it is built set by set."""

    program: Any
    columns: dict[Parameter, np.ndarray]
    sets: int
    built: dict[int, GateBatch | None]
    _ops: dict[tuple[int, int], Op] = field(default_factory=dict, repr=False, compare=False)
    """The ops built set by set so far, by ``(index, row)``."""

    def values(self, row: int) -> dict[Parameter, float]:
        """Set ``row``'s binding."""
        return {p: float(column[row]) for p, column in self.columns.items()}

    def op(self, index: int, row: int) -> Op:
        """Set ``row``'s op ``index`` (a parameterised one), as ``Program.bind`` builds it."""
        batch = self.built[index]
        if batch is not None:
            return set_op(batch, row)
        op = self._ops.get((index, row))
        if op is None:
            op = self._ops[index, row] = self.program.ops[index].build(self.values(row))
        return op

    def bound(self, row: int) -> Any:
        """The program bound to set ``row``."""
        ops = list(self.program.ops)
        for index in self.built:
            ops[index] = self.op(index, row)
        return replace(self.program, ops=ops)


def bound_chunks(program: Any, parameters: Sequence[Parameter], values: np.ndarray
                 ) -> Iterator[BoundChunk]:
    """``program``'s parameter sets (the rows of ``values``, one column per parameter of
    ``parameters``) in chunks of :data:`BIND_CHUNK_SETS`, the gates with a ``build_batch``
    built for a whole chunk at once."""
    gates = [(k, op) for k, op in enumerate(program.ops) if isinstance(op, ParameterizedGateOp)]
    for start in range(0, len(values), BIND_CHUNK_SETS):
        stop = min(start + BIND_CHUNK_SETS, len(values))
        columns = {p: np.ascontiguousarray(values[start:stop, j])
                   for j, p in enumerate(parameters)}
        built = {k: None if op.build_batch is None else op.build_batch(columns, stop - start)
                 for k, op in gates}
        yield BoundChunk(program, columns, stop - start, built)
