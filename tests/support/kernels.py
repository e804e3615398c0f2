"""The kernel sets a test runs on, and the NumPy / Qiskit oracles the contract tests use.

:func:`kernel_params` lists every kernel set present: the CPU's Numba and small-state NumPy
kernels always (except inside the CUDA simulator's rerun, which checks only the CUDA
kernels), the CUDA kernels where numba-cuda has a device (a real GPU, or the simulator when
``NUMBA_ENABLE_CUDASIM=1``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import pytest
from qiskit.quantum_info import Operator, Statevector

SIMULATED = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
"""True inside the CUDA simulator's rerun of the contract tests."""


@dataclass(frozen=True)
class KernelCase:
    """One kernel set under test and the state sizes its tests use.

    ``sizes`` maps "serial" (and, where the device has another code path for large states,
    "parallel") to qubit counts; ``large`` is the largest state the slow checks use.
    """

    name: str
    module: ModuleType
    sizes: dict[str, int]
    large: int

    def state(self, host: np.ndarray):
        """A new state of this kernel set holding a copy of ``host``."""
        return self.module.from_host(host)

    def host(self, state) -> np.ndarray:
        return self.module.to_host(state)


def _cpu_case() -> KernelCase:
    from gpuprovider.kernels import cpu

    parallel = cpu.POLICY.parallel_min_qubits + 1
    return KernelCase("cpu", cpu, {"serial": 5, "parallel": parallel}, parallel)


def _small_case() -> KernelCase:
    from gpuprovider.kernels import small

    return KernelCase("small", small, {"serial": 5}, small.POLICY.small_state_qubits - 1)


def _cuda_case() -> KernelCase | str:
    """The CUDA case, or why there is none."""
    try:
        from gpuprovider.kernels import cuda as cuda_kernels
        from numba import cuda
    except ImportError as exc:  # numba-cuda is in the [test] extra
        return f"numba-cuda is not importable: {exc}"
    if not cuda.is_available():
        return "no CUDA device (real or simulated); the simulator rerun covers these"
    # The simulator runs every CUDA thread in Python: small states only.
    return KernelCase("cuda", cuda_kernels, {"serial": 6}, 13)


def kernel_params() -> list:
    """pytest params of every kernel set (absent ones skipped with the reason)."""
    params = []
    if not SIMULATED:
        params.append(pytest.param("cpu", id="cpu"))
        params.append(pytest.param("small", id="small"))
    params.append(pytest.param("cuda", id="cuda"))
    return params


def kernel_case(name: str) -> KernelCase:
    """The case ``name``, or a skip with the reason it is absent."""
    if name == "cpu":
        return _cpu_case()
    if name == "small":
        return _small_case()
    case = _cuda_case()
    if isinstance(case, str):
        pytest.skip(case)
    return case


# --- oracles and inputs -----------------------------------------------------------------------


def random_state(num_qubits: int, dtype, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vector = rng.normal(size=1 << num_qubits) + 1j * rng.normal(size=1 << num_qubits)
    return (vector / np.linalg.norm(vector)).astype(dtype)


def random_unitary_matrix(rng: np.random.Generator, dim: int, dtype) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(dim, dim)) + 1j * rng.normal(size=(dim, dim)))
    return (q * (np.diag(r) / np.abs(np.diag(r)))).astype(dtype)


def evolve(state: np.ndarray, matrix: np.ndarray, qubits) -> np.ndarray:
    """Qiskit's (little-endian) result of applying ``matrix`` to ``qubits`` of ``state``."""
    vector = Statevector(state.astype(np.complex128))
    return vector.evolve(Operator(np.asarray(matrix).astype(np.complex128)),
                         qargs=[int(q) for q in qubits]).data


def tensordot_evolve(host: np.ndarray, matrix: np.ndarray, qubits: list[int]) -> np.ndarray:
    """``matrix`` (row bit ``j`` is qubit ``qubits[j]``) on ``host``, by ``np.tensordot``."""
    n = host.size.bit_length() - 1
    k = len(qubits)
    tensor = host.astype(np.complex128).reshape((2,) * n)
    axes = [n - 1 - q for q in reversed(qubits)]  # the matrix's row bits, highest first
    tensor = np.tensordot(matrix.astype(np.complex128).reshape((2,) * (2 * k)), tensor,
                          axes=(list(range(k, 2 * k)), axes))
    return np.moveaxis(tensor, list(range(k)), axes).reshape(-1)


def qubit_lists(num_qubits: int, k: int, seed: int) -> list[np.ndarray]:
    """Unsorted qubit lists: both edge qubits, adjacent descending qubits, random ones."""
    edges = [num_qubits - 1, 0, 2, 1, 3][:k]
    adjacent = list(range(k, 0, -1)) if k < num_qubits else list(range(k - 1, -1, -1))
    chosen = np.random.default_rng(seed).permutation(num_qubits)[:k]
    if k > 1 and np.all(np.diff(chosen) > 0):
        chosen = chosen[::-1]
    return [np.array(qubits, dtype=np.int64) for qubits in (edges, adjacent, chosen)]


def controlled_reference(state, controls, control_state, targets, matrix) -> np.ndarray:
    """NumPy: gather the groups whose controls read ``control_state``, multiply, scatter."""
    indices = np.arange(state.size)
    chosen = np.ones(state.size, dtype=bool)
    for j, q in enumerate(controls):
        chosen &= ((indices >> q) & 1) == ((control_state >> j) & 1)
    for q in targets:
        chosen &= ((indices >> q) & 1) == 0
    rows = np.arange(1 << len(targets))
    offsets = sum(((rows >> j) & 1) << q for j, q in enumerate(targets))
    groups = indices[chosen][:, None] + offsets[None, :]
    result = state.astype(np.complex128)
    result[groups] = result[groups] @ np.asarray(matrix).T
    return result


def pauli_masks(label: str) -> tuple[int, int]:
    """x and z masks of a Qiskit Pauli label (rightmost character is qubit 0)."""
    x_mask = sum(1 << q for q, char in enumerate(reversed(label)) if char in "XY")
    z_mask = sum(1 << q for q, char in enumerate(reversed(label)) if char in "ZY")
    return x_mask, z_mask


def pauli_labels(num_qubits: int, seed: int) -> list[str]:
    """Random labels with each of I, X, Y, Z, the identity, and single and edge operators."""
    rng = np.random.default_rng(seed)
    labels = []
    while len(labels) < 12:
        label = "".join(rng.choice(list("IXYZ"), num_qubits))
        if len(set(label)) == 4:
            labels.append(label)
    rest = "I" * (num_qubits - 2)
    return labels + [
        "I" * num_qubits, "Z" * num_qubits, "Y" * num_qubits, "Y" + rest + "X",
        "X" + rest + "I", "Z" + rest + "Y", rest + "YY", rest + "XZ",
    ]


def grouped_paulis(labels: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """``expectation_pauli_groups`` arguments for ``labels`` grouped by X-mask, and the labels
    in term order."""
    groups: dict[int, list[str]] = {}
    for label in labels:
        groups.setdefault(pauli_masks(label)[0], []).append(label)
    ordered = [label for group in groups.values() for label in group]
    x_masks = np.array(list(groups), dtype=np.int64)
    term_starts = np.cumsum([0] + [len(group) for group in groups.values()]).astype(np.int64)
    z_masks = np.array([pauli_masks(label)[1] for label in ordered], dtype=np.int64)
    return x_masks, term_starts, z_masks, ordered


def group_test_labels(num_qubits: int, seed: int) -> list[str]:
    """Random I/X/Y/Z labels plus groups that share an X-mask: x = 0 (Z strings), x on the low
    qubits only, x with the top qubit, each with many Z-masks."""
    rng = np.random.default_rng(seed)
    labels = pauli_labels(num_qubits, seed)
    low = "I" * (num_qubits - 3)
    for prefix_chars, suffix in (("IZ", ""), ("IZ", "XYX"), ("IZ", "XII")):
        for _ in range(12):
            head = "".join(rng.choice(list(prefix_chars), num_qubits - len(suffix)))
            labels.append(head + suffix)
    for _ in range(12):
        labels.append("X" + "".join(rng.choice(list("IZ"), num_qubits - 2)) + "Y")
    labels.append(low + "YXX")
    return labels


def unitary_with_first_column(column: np.ndarray) -> np.ndarray:
    """A unitary whose first column is ``column`` (QR completion, phase fixed)."""
    rng = np.random.default_rng(0)
    seed = rng.normal(size=(column.size, column.size)) + 0j
    seed[:, 0] = column
    q, r = np.linalg.qr(seed)
    return q * (r[0, 0] / abs(r[0, 0]))


def inverse_cdf(probabilities: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """The index whose cumulative-probability interval [cdf[i-1], cdf[i]) holds each uniform."""
    cdf = np.cumsum(probabilities)
    return np.searchsorted(cdf / cdf[-1], uniforms, side="right")


def sparse_state(num_qubits: int, dtype, support: int, seed: int) -> np.ndarray:
    """A random state on ``support`` basis states spread over the whole index range."""
    rng = np.random.default_rng(seed)
    state = np.zeros(1 << num_qubits, dtype=np.complex128)
    where = rng.choice(1 << num_qubits, size=support, replace=False)
    state[where] = rng.normal(size=support) + 1j * rng.normal(size=support)
    return (state / np.linalg.norm(state)).astype(dtype)


@dataclass(frozen=True)
class TileGate:
    """A gate in the form ``kernels.tiles.encode_tile_pass`` reads."""

    kind: str
    qubits: tuple[int, ...]
    values: np.ndarray
    controls: tuple[int, ...] = ()
    control_state: int = 0
