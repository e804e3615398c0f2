"""Parameter sweeps in qiskit-aer's ``parameter_binds`` format, checked before a job starts."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from qiskit import QuantumCircuit
from qiskit.circuit import Parameter

from ..exceptions import InvalidCircuitError


@dataclass(frozen=True)
class Sweep:
    """The bindings of one circuit: ``columns[p][j]`` is parameter ``p``'s value in
    experiment ``j``."""

    columns: dict[Parameter, tuple[float, ...]]

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 1

    def __getitem__(self, j: int) -> dict[Parameter, float]:
        """The binding of experiment ``j``."""
        return {parameter: values[j] for parameter, values in self.columns.items()}

    def __iter__(self) -> Iterator[dict[Parameter, float]]:
        for j in range(len(self)):
            yield self[j]


def experiment_count(sweep: Sweep | None) -> int:
    """How many experiments a circuit with ``sweep`` gives (one without a sweep)."""
    return 1 if sweep is None else len(sweep)


def _values(where: str, parameter: Parameter, values: Any) -> tuple[float, ...]:
    try:
        column = tuple(values)
    except TypeError:
        raise InvalidCircuitError(
            f"{where}: the values of parameter '{parameter.name}' must be a list of numbers, "
            f"not {type(values).__name__}"
        ) from None
    for value in column:
        if (isinstance(value, bool) or not isinstance(value, numbers.Real)
                or not math.isfinite(value)):
            raise InvalidCircuitError(
                f"{where}: parameter '{parameter.name}' has the value {value!r}; values must "
                "be finite real numbers"
            )
    return tuple(float(value) for value in column)


def _sweep(where: str, circuit: QuantumCircuit, binds: Any) -> Sweep:
    if not isinstance(binds, Mapping):
        raise InvalidCircuitError(
            f"{where}: its parameter_binds entry must be a dict {{Parameter: [values]}}, "
            f"not {type(binds).__name__}"
        )
    wanted = set(circuit.parameters)
    given = set(binds)
    if given - wanted:
        names = ", ".join(sorted(str(p) for p in given - wanted))
        raise InvalidCircuitError(f"{where}: parameter_binds names parameters the circuit "
                                  f"does not have: {names}")
    if wanted - given:
        names = ", ".join(sorted(p.name for p in wanted - given))
        raise InvalidCircuitError(f"{where}: parameter_binds gives no values for {names}")
    columns = {
        parameter: _values(where, parameter, binds[parameter])
        for parameter in circuit.parameters
    }
    lengths = {len(column) for column in columns.values()}
    if len(lengths) > 1 or 0 in lengths:
        detail = ", ".join(f"'{p.name}': {len(c)}" for p, c in columns.items())
        raise InvalidCircuitError(
            f"{where}: every parameter needs the same, non-zero number of values ({detail})"
        )
    return Sweep(columns)


def parse_parameter_binds(
    parameter_binds: Sequence[Mapping[Parameter, Sequence[float]]] | None,
    circuits: list[QuantumCircuit],
) -> list[Sweep | None]:
    """One Sweep per circuit (None for every circuit when there are no binds).

    Raises:
        InvalidCircuitError: the binds do not match the circuits: one dict per circuit,
            naming exactly each circuit's parameters, value lists of one non-zero length.
    """
    if parameter_binds is None:
        return [None] * len(circuits)
    if isinstance(parameter_binds, Mapping) or not isinstance(parameter_binds, Sequence):
        raise InvalidCircuitError(
            "parameter_binds must be a list with one {Parameter: [values]} dict per circuit, "
            f"not {type(parameter_binds).__name__}"
        )
    if len(parameter_binds) != len(circuits):
        raise InvalidCircuitError(
            f"parameter_binds has {len(parameter_binds)} entries for {len(circuits)} "
            "circuit(s); give one dict per circuit"
        )
    return [
        _sweep(f"circuit '{circuit.name}' (index {index})", circuit, binds)
        for index, (circuit, binds) in enumerate(zip(circuits, parameter_binds))
    ]
