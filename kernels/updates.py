"""The kernel bodies: each per-item update of the state written once, for every device.

A *body* is a plain Python function that updates (or reads) the amplitudes of one work item,
such as the pair of a one-qubit gate or the ``2**k`` amplitudes of a gather, at indices its
caller computed. It knows nothing of threads, grids or chunks; it indexes whatever array it is
given: a NumPy state, a CUDA device array, a shared-memory tile, a local scratch array.

Each device compiles the bodies with :func:`compiled` and calls them from its own loops:

- the CPU (``kernels/cpu.py``, ``kernels/cpu_tiles.py``) compiles them with
  ``numba.njit(inline="always")``, so they are inlined into its serial range loops (and take
  the caller's ``fastmath``, which keeps the vectorised tile loops vectorised);
- the GPU (``kernels/cuda.py``) compiles the same source with ``cuda.jit(device=True,
  inline=True)`` and calls them from its grid-stride and tile kernels. The same device
  functions run on a GPU, when compiled to PTX without one, and under Numba's CUDA simulator
  (where an ``njit`` function cannot take a simulated array).

:func:`compiled` rebuilds every body with its references to other bodies pointing at their
compiled versions, so a body may call another (``gather_update`` calls nothing, the index
helpers are called by the loops). The tile format's decoder (``tiles.DECODERS``) is compiled
the same way.

Index convention: amplitude ``i`` has qubit ``q`` in bit ``q`` of ``i``.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Sequence
from types import ModuleType

import numpy as np

# --- index arithmetic -------------------------------------------------------------------------


def insert_zero_bit(index, qubit):
    """``index`` with a 0 inserted at bit ``qubit`` (the bits above move up one)."""
    return ((index >> qubit) << (qubit + 1)) | (index & ((1 << qubit) - 1))


def insert_zero_bits(index, sorted_qubits):
    """The index whose bits at ``sorted_qubits`` (ascending) are 0 and whose other bits spell
    ``index``."""
    for j in range(sorted_qubits.size):
        q = sorted_qubits[j]
        index = ((index >> q) << (q + 1)) | (index & ((1 << q) - 1))
    return index


def spelled_index(index, qubits):
    """The number whose bit ``j`` is bit ``qubits[j]`` of ``index`` (a diagonal's row, a
    marginal's bin)."""
    m = 0
    for j in range(qubits.size):
        m |= ((index >> qubits[j]) & 1) << j
    return m


# --- updates of complex amplitudes --------------------------------------------------------------


def update_pair(amplitudes, i0, i1, m00, m01, m10, m11):
    """Apply the 2x2 matrix ``[[m00, m01], [m10, m11]]`` to amplitudes ``i0`` and ``i1``."""
    a0 = amplitudes[i0]
    a1 = amplitudes[i1]
    amplitudes[i0] = m00 * a0 + m01 * a1
    amplitudes[i1] = m10 * a0 + m11 * a1


def update_quad(amplitudes, i0, i1, i2, i3, matrix, start):
    """Apply the 4x4 matrix stored row-major from ``matrix[start]`` to amplitudes ``i0 .. i3``
    (``i1`` differs from ``i0`` in argument qubit 0, ``i2`` in argument qubit 1)."""
    a0 = amplitudes[i0]
    a1 = amplitudes[i1]
    a2 = amplitudes[i2]
    a3 = amplitudes[i3]
    m = start
    amplitudes[i0] = matrix[m] * a0 + matrix[m + 1] * a1 + matrix[m + 2] * a2 + matrix[m + 3] * a3
    m += 4
    amplitudes[i1] = matrix[m] * a0 + matrix[m + 1] * a1 + matrix[m + 2] * a2 + matrix[m + 3] * a3
    m += 4
    amplitudes[i2] = matrix[m] * a0 + matrix[m + 1] * a1 + matrix[m + 2] * a2 + matrix[m + 3] * a3
    m += 4
    amplitudes[i3] = matrix[m] * a0 + matrix[m + 1] * a1 + matrix[m + 2] * a2 + matrix[m + 3] * a3


def gather_update(amplitudes, base, offsets, matrix, start, scratch):
    """Apply the ``dim x dim`` matrix stored row-major from ``matrix[start]`` to the
    amplitudes ``base + offsets[m]`` (``dim = offsets.size``), through ``scratch`` (at least
    ``dim`` entries; its dtype is the accumulator's)."""
    dim = offsets.size
    for m in range(dim):
        scratch[m] = amplitudes[base + offsets[m]]
    for row in range(dim):
        first = start + row * dim
        acc = matrix[first] * scratch[0]
        for col in range(1, dim):
            acc += matrix[first + col] * scratch[col]
        amplitudes[base + offsets[row]] = acc


def permute_update(amplitudes, base, offsets, permutation, phases, scratch):
    """Row ``r`` of the group at ``base + offsets`` becomes ``phases[r]`` times its column
    ``permutation[r]``, through ``scratch``."""
    dim = offsets.size
    for m in range(dim):
        scratch[m] = amplitudes[base + offsets[m]]
    for row in range(dim):
        amplitudes[base + offsets[row]] = phases[row] * scratch[permutation[row]]


def prepare_update(amplitudes, base, offsets, values):
    """Spread amplitude ``base`` (its group's ``offsets[0] == 0`` entry) over the group as
    ``values[m]`` times it."""
    a = amplitudes[base]
    for m in range(offsets.size):
        amplitudes[base + offsets[m]] = values[m] * a


def project_pair(amplitudes, i0, i1, outcome, scale, to_zero):
    """Keep the amplitude of the pair whose qubit reads ``outcome``, times ``scale``, and zero
    the other; with ``to_zero`` the kept one moves to ``i0`` (a reset)."""
    if outcome == 0:
        amplitudes[i0] = amplitudes[i0] * scale
        amplitudes[i1] = 0
    elif to_zero:
        amplitudes[i0] = amplitudes[i1] * scale
        amplitudes[i1] = 0
    else:
        amplitudes[i0] = 0
        amplitudes[i1] = amplitudes[i1] * scale


def squared_magnitude(a):
    """``|a|**2`` in ``a``'s precision."""
    return a.real * a.real + a.imag * a.imag


def squared_magnitude64(a):
    """``|a|**2`` summed in float64 whatever ``a``'s precision."""
    re = np.float64(a.real)
    im = np.float64(a.imag)
    return re * re + im * im


# --- arithmetic on split real / imaginary parts (the CPU's vectorised tiles) --------------------


def dot2_split(ar, ai, br, bi, r0, i0, r1, i1):
    """``(re, im)`` of ``(ar + i ai)(r0 + i i0) + (br + i bi)(r1 + i i1)``: a row of
    :func:`update_pair` on split parts."""
    return (ar * r0 - ai * i0 + br * r1 - bi * i1,
            ar * i0 + ai * r0 + br * i1 + bi * r1)


def dot4_split(ar, ai, br, bi, cr, ci, dr, di, r0, i0, r1, i1, r2, i2, r3, i3):
    """``(re, im)`` of a row of :func:`update_quad` on split parts: the coefficients
    ``a .. d`` times amplitudes ``0 .. 3``."""
    return (ar * r0 - ai * i0 + br * r1 - bi * i1 + cr * r2 - ci * i2 + dr * r3 - di * i3,
            ar * i0 + ai * r0 + br * i1 + bi * r1 + cr * i2 + ci * r2 + dr * i3 + di * r3)


BODIES = (
    insert_zero_bit, insert_zero_bits, spelled_index, update_pair, update_quad, gather_update,
    permute_update, prepare_update, project_pair, squared_magnitude, squared_magnitude64,
    dot2_split, dot4_split,
)
"""Every body, each after those it calls."""


def compiled(decorate: Callable[[Callable], Callable],
             functions: Sequence[Callable] = BODIES) -> ModuleType:
    """``functions`` compiled by ``decorate`` (e.g. ``numba.njit(inline="always")``), as the
    attributes of a module (Numba resolves a global module's attributes when it compiles).

    Each function is rebuilt from its code with globals in which the functions before it in
    ``functions`` are their compiled versions, so that compiled bodies call compiled bodies.
    """
    done: dict[str, Callable] = {}
    for function in functions:
        rebuilt = types.FunctionType(function.__code__, {**function.__globals__, **done},
                                     function.__name__, function.__defaults__,
                                     function.__closure__)
        rebuilt.__qualname__ = function.__qualname__
        rebuilt.__doc__ = function.__doc__
        rebuilt.__module__ = function.__module__
        done[function.__name__] = decorate(rebuilt)
    module = ModuleType(f"{__name__}[{getattr(decorate, '__name__', 'compiled')}]")
    module.__dict__.update(done)
    return module
