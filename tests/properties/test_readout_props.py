"""Pauli read-out of drawn states and Pauli lists, on every CPU kernel set, against a dense
NumPy evaluation of ``<psi| P |psi>``: lists with repeated X-masks (groups of several terms,
real and imaginary pair sums mixed), identity and Z-only terms, X-masks inside and beyond the
read-out's chunks, on states below, at and above the chunked path's size."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from properties.harness import examples

from gpuprovider.kernels import batch, cpu, small
from gpuprovider.kernels.layout import group_by_x_mask, popcount

ATOL = {np.complex128: 1e-12, np.complex64: 2e-6}


def dense_values(state: np.ndarray, x_masks: np.ndarray, z_masks: np.ndarray) -> np.ndarray:
    """``Re <psi| i**popcount(x & z) X^x Z^z |psi>`` per term, in complex128."""
    psi = state.astype(np.complex128)
    index = np.arange(psi.size)
    values = []
    for x, z in zip(x_masks, z_masks):
        signed = psi * (1 - 2 * (popcount(index & z) & 1))
        applied = np.empty_like(signed)
        applied[index ^ x] = signed
        values.append((1j ** int(popcount(np.array([x & z]))[0]) * np.vdot(psi, applied)).real)
    return np.array(values)


@st.composite
def readouts(draw):
    num_qubits = draw(st.sampled_from([3, 9, 10, 11, 13]))
    dtype = draw(st.sampled_from([np.complex128, np.complex64]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    state = rng.normal(size=1 << num_qubits) + 1j * rng.normal(size=1 << num_qubits)
    state = (state / np.linalg.norm(state)).astype(dtype)
    distinct_x = draw(st.integers(1, 6))
    x_pool = rng.integers(0, 1 << num_qubits, distinct_x)
    x_pool[0] = draw(st.sampled_from([0, int(x_pool[0]), (1 << num_qubits) - 1]))
    terms = draw(st.integers(1, 24))
    x_masks = x_pool[rng.integers(0, distinct_x, terms)]
    z_masks = rng.integers(0, 1 << num_qubits, terms)
    return state, x_masks.astype(np.int64), z_masks.astype(np.int64)


@examples(2)
@given(case=readouts())
def test_read_out_equals_the_dense_evaluation(case):
    state, x_masks, z_masks = case
    expected = dense_values(state, x_masks, z_masks)
    group_x, starts, grouped_z, order = group_by_x_mask(x_masks, z_masks)
    tolerance = ATOL[state.dtype.type]
    for name, module in (("cpu", cpu), ("small", small)):
        found = np.empty(x_masks.size)
        found[order] = module.expectation_pauli_groups(state, group_x, starts, grouped_z)
        np.testing.assert_allclose(found, expected, rtol=0, atol=tolerance, err_msg=name)
    rows = np.stack([state, state[::-1]])
    found = np.empty((2, x_masks.size))
    found[:, order] = batch.expectation_pauli_groups(rows, group_x, starts, grouped_z)
    np.testing.assert_allclose(found[0], expected, rtol=0, atol=tolerance, err_msg="batch")
    np.testing.assert_allclose(found[1], dense_values(state[::-1], x_masks, z_masks), rtol=0,
                               atol=tolerance, err_msg="batch, second row")
