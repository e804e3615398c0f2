"""The host-side index arithmetic of :mod:`gpuprovider.kernels.layout`, against brute-force
NumPy definitions and Qiskit's dense Pauli matrices."""

from __future__ import annotations

import numpy as np
import pytest
from gpuprovider.kernels.layout import (
    inverse_cdf,
    inverse_cdf_rows,
    basis_offsets,
    controlled_layout,
    group_by_x_mask,
    pauli_groups_layout,
    pauli_pairing,
    permutation_matrix,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from qiskit.quantum_info import Pauli

FAST = settings(max_examples=60, deadline=None)


@st.composite
def distinct_qubits(draw, max_qubits: int = 6, min_size: int = 0):
    """``(num_qubits, qubits)``: some distinct qubits of a register, in a random order."""
    num_qubits = draw(st.integers(max(1, min_size), max_qubits))
    qubits = draw(st.permutations(range(num_qubits)))
    size = draw(st.integers(min_size, num_qubits))
    return num_qubits, list(qubits[:size])


@st.composite
def pauli_masks(draw, max_qubits: int = 5):
    num_qubits = draw(st.integers(1, max_qubits))
    x_mask = draw(st.integers(0, (1 << num_qubits) - 1))
    z_mask = draw(st.integers(0, (1 << num_qubits) - 1))
    return num_qubits, x_mask, z_mask


def _random_state(num_qubits: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    state = rng.normal(size=1 << num_qubits) + 1j * rng.normal(size=1 << num_qubits)
    return state / np.linalg.norm(state)


def _dense_pauli(x_mask: int, z_mask: int, num_qubits: int) -> np.ndarray:
    """Qiskit's matrix of the Pauli of the masks (qubit 0 the rightmost label character)."""
    letters = {(0, 0): "I", (1, 0): "X", (0, 1): "Z", (1, 1): "Y"}
    label = "".join(letters[(x_mask >> q) & 1, (z_mask >> q) & 1]
                    for q in reversed(range(num_qubits)))
    return Pauli(label).to_matrix()


def _paired_expectation(state: np.ndarray, x_mask: int, z_mask: int, num_qubits: int,
                        pivot: int, use_imag: bool, scale: float) -> float:
    """``<psi| P |psi>`` summed pair by pair as the ``pauli_pairing`` docstring says the
    kernels do."""
    total = 0.0
    for i0 in range(1 << num_qubits):
        if (i0 >> pivot) & 1:
            continue
        i1 = i0 | 1 if x_mask == 0 else i0 ^ x_mask
        a0, a1 = state[i0], state[i1]
        s0 = (-1) ** (i0 & z_mask).bit_count()
        if x_mask == 0:
            s1 = (-1) ** (i1 & z_mask).bit_count()
            total += s0 * abs(a0) ** 2 + s1 * abs(a1) ** 2
        else:
            c = np.conj(a1) * a0
            total += s0 * (c.imag if use_imag else c.real)
    return scale * total


# --- basis_offsets ------------------------------------------------------------------------


@FAST
@given(distinct_qubits())
def test_basis_offsets_sets_bit_qubits_j_for_bit_j(case):
    _, qubits = case
    expected = []
    for m in range(1 << len(qubits)):
        offset = 0
        for j, q in enumerate(qubits):
            if (m >> j) & 1:
                offset += 2**q
        expected.append(offset)
    offsets = basis_offsets(qubits)
    assert offsets.dtype == np.int64
    np.testing.assert_array_equal(offsets, expected)


def test_basis_offsets_of_no_qubits_is_the_index_itself():
    np.testing.assert_array_equal(basis_offsets([]), [0])
    np.testing.assert_array_equal(basis_offsets(np.array([3, 0])), [0, 8, 1, 9])


def test_basis_offsets_reach_high_qubits_without_overflow():
    np.testing.assert_array_equal(basis_offsets([40, 62]), [0, 1 << 40, 1 << 62,
                                                            (1 << 40) | (1 << 62)])


# --- permutation_matrix -------------------------------------------------------------------


@FAST
@given(st.integers(1, 5).flatmap(lambda k: st.permutations(range(1 << k))),
       st.integers(0, 2**32 - 1))
def test_permutation_matrix_is_the_dense_matrix_row_by_row(permutation, seed):
    permutation = np.array(permutation, dtype=np.int64)
    phases = np.exp(1j * np.random.default_rng(seed).uniform(-np.pi, np.pi, permutation.size))
    dense = np.zeros((permutation.size, permutation.size), dtype=np.complex128)
    for row, column in enumerate(permutation):
        dense[row, column] = phases[row]
    matrix = permutation_matrix(permutation, phases)
    np.testing.assert_array_equal(matrix, dense)
    # Row r of the product picks amplitude permutation[r]: the op's documented action.
    vector = np.arange(permutation.size) + 1j
    np.testing.assert_allclose(matrix @ vector, phases * vector[permutation])


def test_permutation_matrix_keeps_the_phases_dtype():
    phases = np.array([1, -1j], dtype=np.complex64)
    matrix = permutation_matrix(np.array([1, 0]), phases)
    assert matrix.dtype == np.complex64
    np.testing.assert_array_equal(matrix, [[0, 1], [-1j, 0]])


# --- controlled_layout --------------------------------------------------------------------


def _dense_controlled(controls, control_state, targets, matrix, num_qubits) -> np.ndarray:
    """The full ``2**n`` matrix: ``matrix`` on ``targets`` where the controls read the state."""
    dim = 1 << num_qubits
    dense = np.zeros((dim, dim), dtype=np.complex128)
    for column in range(dim):
        wanted = all(((column >> q) & 1) == ((control_state >> j) & 1)
                     for j, q in enumerate(controls))
        if not wanted:
            dense[column, column] = 1
            continue
        local = sum(((column >> q) & 1) << j for j, q in enumerate(targets))
        rest = column & ~sum(1 << q for q in targets)
        for row_local in range(matrix.shape[0]):
            row = rest | sum(((row_local >> j) & 1) << q for j, q in enumerate(targets))
            dense[row, column] = matrix[row_local, local]
    return dense


def _apply_by_layout(state, matrix, sorted_qubits, offsets) -> np.ndarray:
    """Apply ``matrix`` as the docstring says the gather kernels do: work item ``g`` is the
    index with zeros at ``sorted_qubits`` whose other bits spell ``g``."""
    num_qubits = state.size.bit_length() - 1
    free = [q for q in range(num_qubits) if q not in set(sorted_qubits.tolist())]
    out = state.copy()
    for g in range(1 << len(free)):
        base = sum(((g >> k) & 1) << q for k, q in enumerate(free))
        indices = base + offsets
        out[indices] = matrix @ state[indices]
    return out


@st.composite
def controlled_cases(draw):
    num_qubits = draw(st.integers(2, 5))
    qubits = list(draw(st.permutations(range(num_qubits))))
    num_controls = draw(st.integers(1, num_qubits - 1))
    num_targets = draw(st.integers(1, num_qubits - num_controls))
    controls = qubits[:num_controls]
    targets = qubits[num_controls:num_controls + num_targets]
    control_state = draw(st.integers(0, (1 << num_controls) - 1))
    return num_qubits, controls, control_state, targets, draw(st.integers(0, 2**32 - 1))


@FAST
@given(controlled_cases())
def test_controlled_layout_applies_the_controlled_matrix(case):
    num_qubits, controls, control_state, targets, seed = case
    rng = np.random.default_rng(seed)
    dim = 1 << len(targets)
    matrix = rng.normal(size=(dim, dim)) + 1j * rng.normal(size=(dim, dim))
    sorted_qubits, offsets, control_bits = controlled_layout(controls, control_state, targets)

    np.testing.assert_array_equal(sorted_qubits, sorted(controls + targets))
    assert control_bits == sum(((control_state >> j) & 1) << q for j, q in enumerate(controls))
    np.testing.assert_array_equal(offsets, basis_offsets(targets) | control_bits)
    state = _random_state(num_qubits, seed)
    np.testing.assert_allclose(
        _apply_by_layout(state, matrix, sorted_qubits, offsets),
        _dense_controlled(controls, control_state, targets, matrix, num_qubits) @ state,
        atol=1e-12,
    )


def test_controlled_layout_with_no_controls_is_the_plain_gather():
    sorted_qubits, offsets, control_bits = controlled_layout([], 0, [2, 0])
    np.testing.assert_array_equal(sorted_qubits, [0, 2])
    np.testing.assert_array_equal(offsets, [0, 4, 1, 5])
    assert control_bits == 0


@pytest.mark.parametrize("controls, targets", [([1, 1], [0]), ([0], [0]), ([2], [1, 1])])
def test_controlled_layout_rejects_a_repeated_qubit(controls, targets):
    with pytest.raises(ValueError, match="must be distinct qubits") as info:
        controlled_layout(controls, 0, targets)
    assert str(controls) in str(info.value) and str(targets) in str(info.value)


@pytest.mark.parametrize("control_state", [-1, 4, 100])
def test_controlled_layout_rejects_a_control_state_that_does_not_fit(control_state):
    with pytest.raises(ValueError, match=rf"control_state {control_state} does not fit 2 "
                                         r"controls \(0 \.\. 3\)"):
        controlled_layout([0, 1], control_state, [2])


# --- pauli_pairing ------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(pauli_masks(), st.integers(0, 2**32 - 1))
def test_pauli_pairing_sums_to_the_dense_expectation(case, seed):
    num_qubits, x_mask, z_mask = case
    pivot, use_imag, scale = pauli_pairing(x_mask, z_mask, num_qubits)
    state = _random_state(num_qubits, seed)
    dense = _dense_pauli(x_mask, z_mask, num_qubits)
    expected = np.vdot(state, dense @ state)
    assert abs(expected.imag) < 1e-12  # the masks' Pauli is Hermitian: no overall phase
    assert _paired_expectation(state, x_mask, z_mask, num_qubits, pivot, use_imag,
                               scale) == pytest.approx(expected.real, abs=1e-12)
    if x_mask:
        assert pivot == x_mask.bit_length() - 1
        assert use_imag == bool((x_mask & z_mask).bit_count() % 2)
    else:
        assert (pivot, use_imag, scale) == (0, False, 1.0)


def test_pauli_pairing_follows_the_documented_label_convention():
    # "XZY": qubit 0 is Y, qubit 1 is Z, qubit 2 is X.
    np.testing.assert_allclose(_dense_pauli(0b101, 0b011, 3), Pauli("XZY").to_matrix())
    # One Y: y = 1, imaginary part, scale 2 * (-1)**1.
    assert pauli_pairing(0b001, 0b001, 1) == (0, True, -2.0)
    # Two Ys: y = 2, real part, scale 2 * (-1)**1; X alone: scale 2.
    assert pauli_pairing(0b011, 0b011, 2) == (1, False, -2.0)
    assert pauli_pairing(0b100, 0, 3) == (2, False, 2.0)


@pytest.mark.parametrize("x_mask, z_mask", [(-1, 0), (0, -2), (0b1000, 0), (0, 0b10000)])
def test_pauli_pairing_rejects_masks_outside_the_register(x_mask, z_mask):
    with pytest.raises(ValueError, match=r"must name qubits 0 \.\. 2"):
        pauli_pairing(x_mask, z_mask, 3)


# --- group_by_x_mask ----------------------------------------------------------------------


@FAST
@given(st.lists(st.tuples(st.integers(0, 15), st.integers(0, 15)), max_size=20))
def test_group_by_x_mask_groups_every_term_once(terms):
    x_masks = np.array([x for x, _ in terms], dtype=np.int64)
    z_masks = np.array([z for _, z in terms], dtype=np.int64)
    group_x, starts, grouped_z, order = group_by_x_mask(x_masks, z_masks)

    np.testing.assert_array_equal(np.sort(order), np.arange(len(terms)))  # a permutation
    np.testing.assert_array_equal(grouped_z, z_masks[order])
    np.testing.assert_array_equal(group_x, sorted(set(x_masks.tolist())))
    assert starts.dtype == np.int64 and starts.shape == (group_x.size + 1,)
    assert starts[0] == 0 and starts[-1] == len(terms)
    for g, x in enumerate(group_x):
        members = order[starts[g]:starts[g + 1]]
        assert members.size > 0
        np.testing.assert_array_equal(x_masks[members], x)
        assert list(grouped_z[starts[g]:starts[g + 1]]) == sorted(z_masks[members])
    # Every input term sits in the group of its X-mask.
    rebuilt = sorted((int(group_x[np.searchsorted(starts, k, side="right") - 1]),
                      int(grouped_z[k])) for k in range(len(terms)))
    assert rebuilt == sorted(terms)


def test_group_by_x_mask_of_no_terms_has_no_groups():
    group_x, starts, grouped_z, order = group_by_x_mask(np.array([]), np.array([]))
    assert group_x.size == grouped_z.size == order.size == 0
    np.testing.assert_array_equal(starts, [0])


def test_group_by_x_mask_example():
    group_x, starts, grouped_z, order = group_by_x_mask([3, 0, 3, 1], [1, 2, 0, 0])
    np.testing.assert_array_equal(group_x, [0, 1, 3])
    np.testing.assert_array_equal(starts, [0, 1, 2, 4])
    np.testing.assert_array_equal(grouped_z, [2, 0, 0, 1])
    np.testing.assert_array_equal(order, [1, 3, 2, 0])


# --- pauli_groups_layout ------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5).flatmap(lambda n: st.tuples(
    st.just(n),
    st.lists(st.tuples(st.integers(0, (1 << n) - 1), st.integers(0, (1 << n) - 1)),
             min_size=1, max_size=12))),
    st.integers(0, 2**32 - 1))
def test_pauli_groups_layout_matches_pairing_and_dense_paulis(case, seed):
    num_qubits, terms = case
    x_in = np.array([x for x, _ in terms], dtype=np.int64)
    z_in = np.array([z for _, z in terms], dtype=np.int64)
    group_x, starts, z_masks, _ = group_by_x_mask(x_in, z_in)
    pivots, use_imag, scales = pauli_groups_layout(group_x, starts, z_masks, num_qubits)

    assert pivots.shape == (group_x.size,) and pivots.dtype == np.int64
    assert use_imag.shape == scales.shape == (z_masks.size,)
    assert use_imag.dtype == np.bool_ and scales.dtype == np.float64
    state = _random_state(num_qubits, seed)
    for g, x in enumerate(group_x):
        for t in range(starts[g], starts[g + 1]):
            pivot, imag, scale = pauli_pairing(int(x), int(z_masks[t]), num_qubits)
            assert (pivots[g], use_imag[t], scales[t]) == (pivot, imag, scale)
            dense = _dense_pauli(int(x), int(z_masks[t]), num_qubits)
            paired = _paired_expectation(state, int(x), int(z_masks[t]), num_qubits,
                                         int(pivots[g]), bool(use_imag[t]), float(scales[t]))
            assert paired == pytest.approx(np.vdot(state, dense @ state).real, abs=1e-12)


def test_pauli_groups_layout_pivots_of_high_x_masks():
    x_masks = np.array([0, 1, 1 << 40, (1 << 62) | 5], dtype=np.int64)
    pivots, _, _ = pauli_groups_layout(x_masks, np.arange(5, dtype=np.int64),
                                       np.zeros(4, dtype=np.int64), 63)
    np.testing.assert_array_equal(pivots, [0, 0, 40, 62])


@pytest.mark.parametrize("term_starts", [
    [0, 2],        # one entry short
    [1, 2, 3],     # does not start at 0
    [0, 1, 2],     # does not end at the number of z_masks
    [0, 3, 3, 3],  # one entry too many
    [0, 3, 1],     # falls
])
def test_pauli_groups_layout_rejects_bad_term_starts(term_starts):
    with pytest.raises(ValueError, match="must rise from 0 to 3"):
        pauli_groups_layout(np.array([0, 1]), np.array(term_starts),
                            np.array([0, 1, 2]), 2)


@pytest.mark.parametrize("x_masks, z_masks", [
    ([0, 0b100], [0, 0]),   # an X-mask beyond the register
    ([0, 1], [0, 0b1000]),  # a Z-mask beyond it
    ([-1, 1], [0, 0]),      # a negative X-mask
    ([0, 1], [-1, 0]),      # a negative Z-mask
])
def test_pauli_groups_layout_rejects_masks_outside_the_register(x_masks, z_masks):
    with pytest.raises(ValueError, match=r"Pauli masks .* must name qubits 0 \.\. 1"):
        pauli_groups_layout(np.array(x_masks), np.array([0, 1, 2]), np.array(z_masks), 2)


def test_popcount_is_exact_with_and_without_numpy_bitwise_count(monkeypatch):
    from gpuprovider.kernels import layout

    values = np.random.default_rng(9).integers(0, 2**63 - 1, size=500, dtype=np.int64)
    values[:3] = [0, 2**63 - 1, 1]
    expected = np.array([bin(int(v)).count("1") for v in values])
    fast = layout.popcount(values)
    monkeypatch.setattr(layout, "_BITWISE_COUNT", None)
    swar = layout.popcount(values)
    for counted in (fast, swar):
        assert counted.dtype == np.int64
        np.testing.assert_array_equal(counted, expected)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.lists(st.sampled_from([0.0, 0.0, 1e-300, 0.1, 0.25, 0.5, 1.0, 3.0]),
                              min_size=1, max_size=6).filter(lambda row: sum(row) > 0),
                     min_size=1, max_size=8),
       uniforms=st.lists(st.sampled_from([0.0, 0.3, 0.5, 0.999, float(np.nextafter(1.0, 0))]),
                         min_size=8, max_size=8))
def test_inverse_cdf_rows_draws_what_inverse_cdf_draws_row_by_row(rows, uniforms):
    """Trailing and inner zeros, uniforms at the top of [0, 1): each row's draw is the
    one-row rule's, and never an outcome of probability zero."""
    width = max(len(row) for row in rows)
    probabilities = np.array([row + [0.0] * (width - len(row)) for row in rows])
    drawn = np.array(uniforms[:len(rows)])
    got = inverse_cdf_rows(probabilities, drawn)
    expected = [int(inverse_cdf(row, drawn[r:r + 1])[0]) for r, row in enumerate(probabilities)]
    assert got.tolist() == expected
    assert all(probabilities[r, index] > 0 for r, index in enumerate(got.tolist()))
