"""Numbers that remember how the planner made them, so that a sweep can remake them.

The merge and the planner (:mod:`~gpuprovider.compile.merge`,
:mod:`~gpuprovider.compile.plan`) make every matrix and diagonal they emit from the numbers
of the program's gates by a few functions (products, embeddings, a diagonal as a matrix).
Each such function is called through :func:`derive`, which also returns its *source*: None
when every input is fixed, else a :class:`Step` naming the function, its inputs (a
:class:`Leaf`, an earlier Step, or a fixed array) and its static arguments. A parameter
sweep plans its first binding with a Leaf on each parameterised gate; every emitted number
then names the steps that made it, and :func:`evaluate` replays them for many parameter
sets at once (:mod:`~gpuprovider.compile.recipe`).

So the functions passed to :func:`derive` take arrays with any leading axes (one per
parameter set) and broadcast over them; without leading axes they return exactly what the
planner always computed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np


@dataclass(frozen=True)
class Leaf:
    """The numbers of the program's parameterised op ``index`` (its matrix, diagonal or
    permutation phases), one row per parameter set."""

    index: int


@dataclass(frozen=True, eq=False)
class Step:
    """``function(*inputs, **static)``: each input a Leaf, a Step or a fixed array."""

    function: Callable[..., np.ndarray]
    inputs: tuple[Any, ...]
    static: tuple[tuple[str, Any], ...]


Source = Leaf | Step | None
"""How a number was made from the parameterised gates (None: it is fixed)."""


class Numbers(NamedTuple):
    """An array of numbers and its source."""

    values: np.ndarray
    source: Source = None


def derive(function: Callable[..., np.ndarray], *operands: Numbers, **static: Any) -> Numbers:
    """``function(*values, **static)`` of the operands' values, and its source: None when no
    operand has one, else the Step that remakes it."""
    values = function(*(operand.values for operand in operands), **static)
    if all(operand.source is None for operand in operands):
        return Numbers(values)
    inputs = tuple(operand.values if operand.source is None else operand.source
                   for operand in operands)
    return Numbers(values, Step(function, inputs, tuple(static.items())))


def evaluate(source: Leaf | Step, leaves: Mapping[int, np.ndarray],
             memo: dict[int, np.ndarray]) -> np.ndarray:
    """The numbers ``source`` makes from ``leaves`` (op index -> its numbers for every set,
    set first); ``memo`` keeps the Steps already evaluated (by id) for this batch."""
    if isinstance(source, Leaf):
        return leaves[source.index]
    known = memo.get(id(source))
    if known is not None:
        return known
    inputs = [evaluate(item, leaves, memo) if isinstance(item, (Leaf, Step)) else item
              for item in source.inputs]
    values = source.function(*inputs, **dict(source.static))
    memo[id(source)] = values
    return values
