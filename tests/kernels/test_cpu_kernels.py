"""The CPU kernels called directly, against qiskit.quantum_info and NumPy references.

Each kernel runs on a small state (the serial path) and on one above
``cpu.PARALLEL_MIN_QUBITS`` (the chunked parallel path), in complex128 and complex64.
"""

from __future__ import annotations

import numpy as np
import pytest
from gpuprovider.kernels import cpu
from qiskit.circuit.library import UnitaryGate
from qiskit.quantum_info import Operator, Pauli, Statevector, random_unitary
from scipy import stats

SERIAL_QUBITS = 5
PARALLEL_QUBITS = cpu.PARALLEL_MIN_QUBITS + 1
ATOL = {np.complex128: 1e-12, np.complex64: 1e-6}
"""Amplitudes of a random 15-qubit state are ~5e-3, so a wrong index fails far above these."""


@pytest.fixture(params=[np.complex128, np.complex64], ids=["c128", "c64"])
def dtype(request):
    return request.param


@pytest.fixture(params=[SERIAL_QUBITS, PARALLEL_QUBITS], ids=["serial", "parallel"])
def num_qubits(request) -> int:
    return request.param


def random_state(num_qubits: int, dtype, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vector = rng.normal(size=1 << num_qubits) + 1j * rng.normal(size=1 << num_qubits)
    return (vector / np.linalg.norm(vector)).astype(dtype)


def evolve(state: np.ndarray, matrix: np.ndarray, qubits) -> np.ndarray:
    """Qiskit's (little-endian) result of applying ``matrix`` to ``qubits`` of ``state``."""
    vector = Statevector(state.astype(np.complex128))
    return vector.evolve(Operator(matrix.astype(np.complex128)), qargs=list(qubits)).data


def qubit_lists(num_qubits: int, k: int, seed: int) -> list[np.ndarray]:
    """Unsorted qubit lists: both edge qubits, adjacent descending qubits, random ones."""
    edges = [num_qubits - 1, 0, 2, 1][:k]
    adjacent = list(range(k, 0, -1))
    chosen = np.random.default_rng(seed).permutation(num_qubits)[:k]
    if k > 1 and np.all(np.diff(chosen) > 0):
        chosen = chosen[::-1]
    return [np.array(qubits, dtype=np.int64) for qubits in (edges, adjacent, chosen)]


def test_parallel_case_is_above_threshold():
    assert SERIAL_QUBITS < cpu.PARALLEL_MIN_QUBITS < PARALLEL_QUBITS


def test_allocate_is_all_zeros_basis_state(num_qubits, dtype):
    state = cpu.allocate(num_qubits, dtype)
    expected = np.zeros(1 << num_qubits)
    expected[0] = 1
    assert state.dtype == dtype
    np.testing.assert_array_equal(state, expected)


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_apply_matrix_matches_qiskit(num_qubits, dtype, k):
    for index, qubits in enumerate(qubit_lists(num_qubits, k, seed=k)):
        state = random_state(num_qubits, dtype, seed=10 * k + index)
        matrix = random_unitary(1 << k, seed=k + index).data.astype(dtype)
        expected = evolve(state, matrix, qubits)
        cpu.apply_matrix(state, qubits, matrix)
        assert state.dtype == dtype
        np.testing.assert_allclose(state, expected, rtol=0, atol=ATOL[dtype])


def test_apply_matrix_argument_order_matters():
    """CX(control=0, target=1) and CX(1, 0) differ; the kernel must tell them apart."""
    cx = np.array([[1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0], [0, 1, 0, 0]], dtype=complex)
    plus_zero = np.array([1, 1, 0, 0], dtype=complex) / np.sqrt(2)  # q0 = |+>, q1 = |0>
    forward = plus_zero.copy()
    cpu.apply_matrix(forward, np.array([0, 1], dtype=np.int64), cx)
    backward = plus_zero.copy()
    cpu.apply_matrix(backward, np.array([1, 0], dtype=np.int64), cx)
    np.testing.assert_allclose(forward, np.array([1, 0, 0, 1]) / np.sqrt(2), atol=1e-15)
    np.testing.assert_allclose(backward, plus_zero, atol=1e-15)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_apply_diagonal_matches_qiskit(num_qubits, dtype, k):
    rng = np.random.default_rng(k)
    for index, qubits in enumerate(qubit_lists(num_qubits, k, seed=k)):
        state = random_state(num_qubits, dtype, seed=20 * k + index)
        diagonal = np.exp(1j * rng.uniform(0, 2 * np.pi, 1 << k)).astype(dtype)
        expected = evolve(state, np.diag(diagonal), qubits)
        cpu.apply_diagonal(state, qubits, diagonal)
        np.testing.assert_allclose(state, expected, rtol=0, atol=ATOL[dtype])


@pytest.mark.parametrize("k", [1, 2, 3])
def test_apply_permutation_matches_qiskit(num_qubits, dtype, k):
    rng = np.random.default_rng(k)
    for index, qubits in enumerate(qubit_lists(num_qubits, k, seed=k)):
        state = random_state(num_qubits, dtype, seed=30 * k + index)
        permutation = rng.permutation(1 << k).astype(np.int64)
        if k == 1:
            permutation = np.array([1, 0], dtype=np.int64)
        phases = np.exp(1j * rng.uniform(0, 2 * np.pi, 1 << k)).astype(dtype)
        matrix = np.zeros((1 << k, 1 << k), dtype=complex)
        matrix[np.arange(1 << k), permutation] = phases
        expected = evolve(state, matrix, qubits)
        cpu.apply_permutation(state, qubits, permutation, phases)
        np.testing.assert_allclose(state, expected, rtol=0, atol=ATOL[dtype])


def controlled_cases(num_qubits: int) -> list[tuple[list[int], int, list[int]]]:
    """(controls, control_state, targets): controls above, below and between the targets,
    control states not all ones."""
    top = num_qubits - 1
    return [
        ([top, 0], 0b01, [2]),
        ([1], 0, [3]),
        ([3, 0, 4], 0b101, [1]),
        ([1], 1, [3, 0]),
        ([2, top], 0b10, [3, 0]),
        ([top], 0, [1, 2, 0]),
    ]


def test_apply_controlled_matrix_matches_qiskit(num_qubits, dtype):
    """Against the full matrix of Qiskit's ``UnitaryGate(m).control(c, ctrl_state=...)`` on
    ``controls + targets`` (Qiskit puts the controls first, control ``j`` on bit ``j``)."""
    for index, (controls, control_state, targets) in enumerate(controlled_cases(num_qubits)):
        state = random_state(num_qubits, dtype, seed=300 + index)
        matrix = random_unitary(1 << len(targets), seed=index).data
        gate = UnitaryGate(matrix).control(len(controls), ctrl_state=control_state)
        expected = evolve(state, Operator(gate).data, controls + targets)
        cpu.apply_controlled_matrix(state, np.array(controls, dtype=np.int64), control_state,
                                    np.array(targets, dtype=np.int64), matrix.astype(dtype))
        assert state.dtype == dtype
        np.testing.assert_allclose(state, expected, rtol=0, atol=ATOL[dtype])


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
    result[groups] = result[groups] @ matrix.T
    return result


@pytest.mark.parametrize("k", [1, 2])
def test_apply_controlled_matrix_with_many_controls(num_qubits, dtype, k):
    """All qubits but the targets and one spare are controls (11 on 15 qubits: an mcx)."""
    targets = [1, 3][:k]
    controls = [q for q in range(num_qubits - 1, -1, -1) if q not in targets][:-1]
    control_state = int(np.random.default_rng(k).integers(1 << len(controls)))
    state = random_state(num_qubits, dtype, seed=310 + k)
    matrix = random_unitary(1 << k, seed=k).data
    expected = controlled_reference(state, controls, control_state, targets, matrix)
    changed = np.flatnonzero(~np.isclose(expected, state, rtol=0, atol=1e-7))
    assert changed.size == 2 << k, "the reference changes exactly one group's 2 * 2**k amplitudes"
    cpu.apply_controlled_matrix(state, np.array(controls, dtype=np.int64), control_state,
                                np.array(targets, dtype=np.int64), matrix.astype(dtype))
    np.testing.assert_allclose(state, expected, rtol=0, atol=ATOL[dtype])


def test_apply_controlled_matrix_without_controls_is_apply_matrix(dtype):
    qubits = np.array([3, 1], dtype=np.int64)
    matrix = random_unitary(4, seed=5).data.astype(dtype)
    state = random_state(SERIAL_QUBITS, dtype, seed=320)
    expected = state.copy()
    cpu.apply_matrix(expected, qubits, matrix)
    cpu.apply_controlled_matrix(state, np.array([], dtype=np.int64), 0, qubits, matrix)
    np.testing.assert_array_equal(state, expected)


@pytest.mark.parametrize(
    ("controls", "control_state", "targets", "message"),
    [([1, 2], 0, [2], "distinct"), ([1, 1], 0, [2], "distinct"), ([1, 2], 4, [0], "fit")],
)
def test_apply_controlled_matrix_rejects_bad_layouts(controls, control_state, targets, message):
    state = random_state(SERIAL_QUBITS, np.complex128, seed=321)
    with pytest.raises(ValueError, match=message):
        cpu.apply_controlled_matrix(state, np.array(controls, dtype=np.int64), control_state,
                                    np.array(targets, dtype=np.int64), np.eye(2, dtype=complex))


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


def test_expectation_pauli_matches_qiskit(num_qubits, dtype):
    """Summed in float64 from the stored amplitudes, so even complex64 states match Qiskit's
    double-precision value of the same amplitudes to rounding."""
    state = random_state(num_qubits, dtype, seed=330)
    reference = Statevector(state.astype(np.complex128))
    for label in pauli_labels(num_qubits, seed=num_qubits):
        value = cpu.expectation_pauli(state, *pauli_masks(label))
        expected = reference.expectation_value(Pauli(label))
        assert isinstance(value, complex) and value.imag == 0, label
        assert value == pytest.approx(expected, abs=1e-12), label


def test_expectation_paulis_of_one_x_mask_match_qiskit_in_one_call(num_qubits, dtype):
    """Every term sharing an X-mask (identity, Z strings, X/Y mixes) in one pass."""
    state = random_state(num_qubits, dtype, seed=332)
    reference = Statevector(state.astype(np.complex128))
    labels = pauli_labels(num_qubits, seed=num_qubits + 1)
    groups: dict[int, list[str]] = {}
    for label in labels + [label.replace("Y", "X") for label in labels]:
        groups.setdefault(pauli_masks(label)[0], []).append(label)
    assert any(len(group) > 1 for group in groups.values())
    for x_mask, group in groups.items():
        z_masks = np.array([pauli_masks(label)[1] for label in group], dtype=np.int64)
        values = cpu.expectation_paulis(state, x_mask, z_masks)
        expected = [reference.expectation_value(Pauli(label)).real for label in group]
        np.testing.assert_allclose(values, expected, atol=1e-12, err_msg=str(group))


def test_expectation_pauli_of_eigenstates():
    """|+i> on qubit 0 and |1> on qubit 2: <Y0> = 1, <Z2> = -1, <Y0 Z2> = -1, <X0> = 0."""
    state = np.zeros(8, dtype=complex)
    state[0b100] = 1 / np.sqrt(2)
    state[0b101] = 1j / np.sqrt(2)
    expected = {"IIY": 1, "ZII": -1, "ZIY": -1, "IIX": 0, "IZI": 1}
    for label, value in expected.items():
        assert cpu.expectation_pauli(state, *pauli_masks(label)) == pytest.approx(value, abs=1e-15)


@pytest.mark.parametrize(("x_mask", "z_mask"), [(1 << SERIAL_QUBITS, 0), (0, -1)])
def test_expectation_pauli_rejects_masks_beyond_the_state(x_mask, z_mask):
    state = random_state(SERIAL_QUBITS, np.complex128, seed=331)
    with pytest.raises(ValueError, match="must name qubits 0 .. 4"):
        cpu.expectation_pauli(state, x_mask, z_mask)


def grouped_paulis(labels: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """``expectation_pauli_groups`` arguments for ``labels`` grouped by X-mask, and the labels in
    term order."""
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


@pytest.mark.parametrize("qubits", [SERIAL_QUBITS, cpu.PAULI_CHUNK_QUBITS + 1, PARALLEL_QUBITS],
                         ids=["serial", "chunked", "parallel"])
def test_expectation_pauli_groups_match_qiskit(qubits, dtype):
    """Every term of every group in one call, below and above the chunked kernel's and the
    parallel threshold, against Qiskit's value of the same stored amplitudes."""
    state = random_state(qubits, dtype, seed=333)
    reference = Statevector(state.astype(np.complex128))
    x_masks, term_starts, z_masks, labels = grouped_paulis(group_test_labels(qubits, seed=qubits))
    assert np.diff(term_starts).max() > 10 and 0 in x_masks
    values = cpu.expectation_pauli_groups(state, x_masks, term_starts, z_masks)
    assert values.dtype == np.float64 and values.shape == (len(labels),)
    expected = [reference.expectation_value(Pauli(label)).real for label in labels]
    tolerance = 1e-10 if dtype is np.complex128 else 1e-5
    np.testing.assert_allclose(values, expected, atol=tolerance)


def test_expectation_pauli_groups_with_empty_groups():
    state = random_state(PARALLEL_QUBITS, np.complex128, seed=334)
    empty = np.zeros(0, dtype=np.int64)
    assert cpu.expectation_pauli_groups(state, empty, np.zeros(1, np.int64), empty).shape == (0,)
    x_mask, z_mask = pauli_masks("XY" + "Z" * (PARALLEL_QUBITS - 2))
    values = cpu.expectation_pauli_groups(state, np.array([1, x_mask, 0]),
                                          np.array([0, 0, 1, 1]), np.array([z_mask]))
    assert values == pytest.approx([cpu.expectation_pauli(state, x_mask, z_mask).real], abs=1e-14)


@pytest.mark.parametrize("qubits", [SERIAL_QUBITS, PARALLEL_QUBITS], ids=["serial", "parallel"])
@pytest.mark.parametrize(("x_masks", "term_starts", "z_masks", "message"), [
    ([1, "beyond"], [0, 1, 1], [0], r"x=0x\w+, z=0x0 must name qubits 0 \.\. {last}"),
    ([1, 0], [0, 1, 2], [0, "beyond"], r"z=0x\w+ must name qubits 0 \.\. {last}"),
    ([0], [0, 1], [-1], r"z=-0x1 must name qubits 0 \.\. {last}"),
    ([0, 1], [0, 2], [0, 0], "term_starts"),
    ([0], [0, 1], [0, 0], "term_starts"),
])
def test_expectation_pauli_groups_reject_bad_arguments(qubits, x_masks, term_starts, z_masks,
                                                        message):
    state = random_state(qubits, np.complex128, seed=335)
    def masks(values):
        return np.array([1 << qubits if v == "beyond" else v for v in values], dtype=np.int64)
    with pytest.raises(ValueError, match=message.format(last=qubits - 1)):
        cpu.expectation_pauli_groups(state, masks(x_masks), np.array(term_starts), masks(z_masks))


def marginal_qubit_lists(num_qubits: int) -> list[list[int]]:
    """Single edge qubits, unsorted sets, every qubit reversed, none; on 15 qubits also sets
    above and across ``cpu.MARGINAL_RUN_QUBITS``."""
    top = num_qubits - 1
    lists = [[0], [top], [3, 0, top], [1, 2], [4, 2], list(range(top, -1, -1)), []]
    if num_qubits > cpu.MARGINAL_RUN_QUBITS + 2:
        lists += [[12, 11], [10, 3, 9, 14], [13, 0, 10, 5, 11]]
    return lists


def test_marginal_probabilities_match_qiskit(num_qubits, dtype):
    """``Statevector.probabilities(qargs)`` puts ``qargs[0]`` on bit 0 of the outcome, the
    same argument order as the kernel."""
    state = random_state(num_qubits, dtype, seed=340)
    reference = Statevector(state.astype(np.complex128))
    for qubits in marginal_qubit_lists(num_qubits):
        observed = cpu.marginal_probabilities(state, np.array(qubits, dtype=np.int64))
        expected = reference.probabilities(qubits) if qubits else np.array([reference.trace()])
        assert observed.dtype == np.float64 and observed.shape == (1 << len(qubits),)
        np.testing.assert_allclose(observed, expected, rtol=0, atol=1e-13, err_msg=str(qubits))


def test_marginal_probabilities_argument_order():
    """Basis state with qubit 2 = 1 and qubit 0 = 0: measuring (2, 0) reads outcome 0b01."""
    state = np.zeros(1 << SERIAL_QUBITS, dtype=complex)
    state[0b00110] = 1
    qubits = np.array([2, 0], dtype=np.int64)
    np.testing.assert_array_equal(cpu.marginal_probabilities(state, qubits), [0, 1, 0, 0])
    np.testing.assert_array_equal(Statevector(state).probabilities([2, 0]), [0, 1, 0, 0])


def test_probability_of_one_matches_qiskit(num_qubits, dtype):
    state = random_state(num_qubits, dtype, seed=40)
    reference = Statevector(state.astype(np.complex128))
    tolerance = 1e-13 if dtype is np.complex128 else 1e-6
    for qubit in range(num_qubits):
        expected = reference.probabilities([qubit])[1]
        assert cpu.probability_of_one(state, qubit) == pytest.approx(expected, abs=tolerance)


def test_probability_of_one_of_basis_state():
    state = np.zeros(1 << SERIAL_QUBITS, dtype=complex)
    state[0b10110] = 1
    observed = [cpu.probability_of_one(state, q) for q in range(SERIAL_QUBITS)]
    assert observed == [0.0, 1.0, 1.0, 0.0, 1.0]


@pytest.mark.parametrize("to_zero", [False, True], ids=["measure", "reset"])
@pytest.mark.parametrize("outcome", [0, 1])
def test_project_matches_numpy(num_qubits, dtype, outcome, to_zero):
    indices = np.arange(1 << num_qubits)
    for qubit in (0, num_qubits // 2, num_qubits - 1):
        state = random_state(num_qubits, dtype, seed=50 + qubit)
        bit = (indices >> qubit) & 1
        exact = state.astype(np.complex128)
        probability = float(np.sum(np.abs(exact[bit == outcome]) ** 2))
        expected = np.where(bit == outcome, exact, 0) / np.sqrt(probability)
        if to_zero and outcome == 1:
            expected = expected[indices ^ (1 << qubit)]
        cpu.project(state, qubit, outcome, probability, to_zero=to_zero)
        assert state.dtype == dtype
        np.testing.assert_allclose(state, expected, rtol=0, atol=ATOL[dtype])
        assert np.linalg.norm(state.astype(np.complex128)) == pytest.approx(1, abs=1e-5)
        kept_bit = 0 if to_zero else outcome
        assert not np.any(state[bit != kept_bit])


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


def test_sample_is_the_inverse_cdf(num_qubits, dtype):
    """Each uniform picks the index whose cumulative interval holds it (zeros are skipped)."""
    state = random_state(num_qubits, dtype, seed=60)
    state[np.random.default_rng(61).random(state.size) < 0.3] = 0
    probabilities = np.abs(state.astype(np.complex128)) ** 2
    uniforms = np.random.default_rng(62).random(2000)
    out = cpu.sample(state, uniforms)
    expected = np.sort(inverse_cdf(probabilities, uniforms))
    edges = np.concatenate(([0.0], np.cumsum(probabilities) / probabilities.sum()))
    ordered = np.sort(uniforms)
    above = np.clip(np.searchsorted(edges, ordered), 1, edges.size - 1)
    gap = np.minimum(ordered - edges[above - 1], edges[above] - ordered)
    clear = np.abs(gap) > 1e-6  # far from an interval edge, where float32 rounding may differ
    assert clear.mean() > 0.9
    assert out.dtype == np.int64 and out.shape == uniforms.shape
    assert np.all(np.diff(out) >= 0), "sample returns indices in sorted order"
    np.testing.assert_array_equal(out[clear], expected[clear])
    assert np.all(probabilities[out] > 0)


def test_sample_extreme_uniforms_hit_first_and_last_nonzero():
    state = np.zeros(1 << PARALLEL_QUBITS, dtype=np.complex128)
    state[[5, 9000, 30000]] = np.sqrt([0.25, 0.5, 0.25])
    out = cpu.sample(state, np.array([0.0, 0.2, 0.5, np.nextafter(1.0, 0.0)]))
    np.testing.assert_array_equal(out, [5, 5, 9000, 30000])


def test_sample_of_basis_state_is_that_index(num_qubits, dtype):
    state = np.zeros(1 << num_qubits, dtype=dtype)
    state[(1 << num_qubits) - 3] = 1j
    out = cpu.sample(state, np.random.default_rng(0).random(100))
    assert np.all(out == (1 << num_qubits) - 3)


def test_sample_never_returns_zero_probability_near_block_edges():
    """Uniforms a few ulps below a block's cumulative edge must still land on a non-zero
    amplitude: the sampler must not walk past the block's last non-zero amplitude."""
    num_qubits = cpu.SAMPLE_BLOCK_QUBITS + 1  # two blocks
    block = 1 << cpu.SAMPLE_BLOCK_QUBITS
    for seed in range(5):
        state = sparse_state(num_qubits, np.complex128, support=40, seed=seed)
        probabilities = np.abs(state) ** 2
        edges = np.cumsum(probabilities.reshape(-1, block).sum(axis=1))
        uniforms = []
        for edge in edges:
            value = edge
            for _ in range(8):
                value = np.nextafter(value, 0.0)
                uniforms.append(value / edges[-1])
        uniforms = np.array([u for u in uniforms if 0 <= u < 1])
        out = cpu.sample(state, uniforms)
        assert np.all(probabilities[out] > 0), f"seed {seed}: zero-probability index {out}"


def chi_square_pvalue(counts: np.ndarray, probabilities: np.ndarray) -> float:
    expected = probabilities / probabilities.sum() * counts.sum()
    return float(stats.chisquare(counts, expected).pvalue)


def test_sample_distribution_chi_square(dtype):
    """20 000 draws from a random 4-qubit state pass chi-square at p > 1e-4, while the
    same counts reject a subtly wrong distribution (one adjacent pair of outcomes swapped)."""
    state = random_state(4, dtype, seed=70)
    probabilities = np.abs(state.astype(np.complex128)) ** 2
    out = cpu.sample(state, np.random.default_rng(71).random(20_000))
    counts = np.bincount(out, minlength=16)
    assert chi_square_pvalue(counts, probabilities) > 1e-4
    pair = np.argsort(np.abs(np.diff(probabilities)))[-1]
    wrong = probabilities.copy()
    wrong[[pair, pair + 1]] = wrong[[pair + 1, pair]]
    assert chi_square_pvalue(counts, wrong) < 1e-10


def test_sample_distribution_across_blocks(dtype):
    """A 15-qubit state with 24 non-zero amplitudes spread over all sampling blocks."""
    state = sparse_state(PARALLEL_QUBITS, dtype, support=24, seed=80)
    probabilities = np.abs(state.astype(np.complex128)) ** 2
    support = np.flatnonzero(probabilities)
    out = cpu.sample(state, np.random.default_rng(81).random(30_000))
    assert np.all(np.isin(out, support))
    counts = np.array([np.count_nonzero(out == i) for i in support])
    assert chi_square_pvalue(counts, probabilities[support]) > 1e-4
    assert chi_square_pvalue(counts, np.roll(probabilities[support], 1)) < 1e-10


def test_reset_all_gives_zero_state_in_place(num_qubits, dtype):
    state = random_state(num_qubits, dtype, seed=90)
    cpu.reset_all(state)
    expected = np.zeros(1 << num_qubits)
    expected[0] = 1
    assert state.dtype == dtype
    np.testing.assert_array_equal(state, expected)


def unitary_with_first_column(column: np.ndarray) -> np.ndarray:
    """A unitary whose first column is ``column`` (QR completion, phase fixed)."""
    rng = np.random.default_rng(0)
    seed = rng.normal(size=(column.size, column.size)) + 0j
    seed[:, 0] = column
    q, r = np.linalg.qr(seed)
    return q * (r[0, 0] / abs(r[0, 0]))


@pytest.mark.parametrize("k", [1, 2, 3])
def test_prepare_qubits_matches_qiskit(num_qubits, dtype, k):
    """Qubits in |0> (the others in a random state) are put into ``amplitudes``; the result
    equals applying any unitary whose first column is ``amplitudes``."""
    indices = np.arange(1 << num_qubits)
    for index, qubits in enumerate(qubit_lists(num_qubits, k, seed=k)):
        state = random_state(num_qubits, np.complex128, seed=100 * k + index)
        mask = sum(1 << int(q) for q in qubits)
        state[(indices & mask) != 0] = 0
        state = (state / np.linalg.norm(state)).astype(dtype)
        amplitudes = random_state(k, dtype, seed=200 * k + index)
        expected = evolve(state, unitary_with_first_column(amplitudes), qubits)
        cpu.prepare_qubits(state, qubits, amplitudes)
        assert state.dtype == dtype
        np.testing.assert_allclose(state, expected, rtol=0, atol=ATOL[dtype])


def test_clone_is_independent(num_qubits, dtype):
    state = random_state(num_qubits, dtype, seed=91)
    copy = cpu.clone(state)
    np.testing.assert_array_equal(copy, state)
    assert copy.dtype == dtype
    cpu.apply_matrix(copy, np.array([0], dtype=np.int64), np.array([[0, 1], [1, 0]], dtype=dtype))
    assert not np.array_equal(copy, state)
    np.testing.assert_array_equal(state, random_state(num_qubits, dtype, seed=91))


def test_copy_into_overwrites_destination(num_qubits, dtype):
    source = random_state(num_qubits, dtype, seed=92)
    destination = cpu.allocate(num_qubits, dtype)
    cpu.copy_into(destination, source)
    np.testing.assert_array_equal(destination, source)
    source[1] = 5
    assert destination[1] != 5


def test_to_host_is_an_equal_copy(num_qubits, dtype):
    state = random_state(num_qubits, dtype, seed=93)
    host = cpu.to_host(state)
    assert isinstance(host, np.ndarray) and host.dtype == dtype
    np.testing.assert_array_equal(host, state)
    host[0] = 3
    assert state[0] != 3


def test_probabilities_are_squared_magnitudes(dtype):
    state = random_state(SERIAL_QUBITS, dtype, seed=94)
    probabilities = cpu.probabilities(state)
    np.testing.assert_allclose(
        probabilities, np.abs(state.astype(np.complex128)) ** 2, rtol=1e-6, atol=0
    )


def test_threading_layer_falls_back_to_workqueue_with_a_lock(monkeypatch):
    """Without OpenMP or TBB, parallel kernels must take turns instead of aborting."""
    import numba

    def no_pools(name):
        raise ImportError(f"{name} cannot load here")

    monkeypatch.setattr(cpu.importlib, "import_module", no_pools)
    monkeypatch.setattr(numba.config, "THREADING_LAYER", numba.config.THREADING_LAYER)
    lock = cpu._choose_threading_layer()
    assert numba.config.THREADING_LAYER == "workqueue"
    assert lock is not None and lock.acquire(blocking=False)
    lock.release()


def test_threading_layer_is_threadsafe_where_a_pool_loads(monkeypatch):
    import numba

    monkeypatch.setattr(numba.config, "THREADING_LAYER", numba.config.THREADING_LAYER)
    assert cpu._choose_threading_layer() is None
    assert numba.config.THREADING_LAYER == "threadsafe"
