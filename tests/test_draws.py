"""``gpuprovider.draws``: binomial and multinomial draws that change only where their
probabilities change by more than rounding. NumPy's own are not continuous at ``p = 0.5``,
which once gave a state spread over MPI ranks other counts than one process with the same
seed (its probabilities sum in another order)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats
from testkit import ALPHA, chi_square_pvalue

from gpuprovider import draws
from properties.harness import examples

SEEDS = st.integers(0, 2**32 - 1)
SHOTS = st.sampled_from([0, 1, 7, 600, draws.PER_SHOT_MAX, draws.PER_SHOT_MAX + 1, 10**6,
                         10**8])
CHANCES = st.one_of(st.sampled_from([0.0, 0.5, 1.0, 0.25, 1e-12, 1 - 1e-12]),
                    st.floats(0, 1, allow_subnormal=False))


def _nudged(p: float, ulps: int) -> float:
    """``p`` moved by ``ulps`` units in the last place, kept in [0, 1]."""
    for _ in range(abs(ulps)):
        p = float(np.nextafter(p, np.inf if ulps > 0 else -np.inf))
    return min(max(p, 0.0), 1.0)


@examples(2)
@given(n=SHOTS, p=CHANCES, ulps=st.integers(-4, 4), seed=SEEDS)
def test_a_binomial_draw_ignores_rounding_and_takes_the_same_uniforms(n, p, ulps, seed):
    first, second = np.random.default_rng(seed), np.random.default_rng(seed)
    drawn = draws.binomial(first, n, p)
    assert drawn == draws.binomial(second, n, _nudged(p, ulps))
    assert 0 <= drawn <= n
    assert first.random() == second.random()  # the streams stay in step


@examples()
@given(n=SHOTS, seed=SEEDS, weights=st.lists(st.sampled_from([0.0, 0.5, 1.0, 0.125, 0.3]),
                                              min_size=1, max_size=9))
def test_a_multinomial_draw_ignores_rounding_and_takes_the_same_uniforms(n, seed, weights):
    probabilities = np.array(weights)
    if probabilities.sum() == 0:
        probabilities[0] = 1.0
    nudged = probabilities * (1 + 3e-16 * np.arange(probabilities.size))  # a reordered sum
    first, second = np.random.default_rng(seed), np.random.default_rng(seed)
    counts = draws.multinomial(first, n, probabilities)
    np.testing.assert_array_equal(counts, draws.multinomial(second, n, nudged))
    assert counts.sum() == n and np.all(counts[probabilities == 0] == 0)
    assert first.random() == second.random()


def test_binomials_are_the_inverse_cdf_at_their_uniforms():
    """(Past 10**8 trials the CDF's own rounding can move a draw by one.)"""
    n = np.array([1, 10, 1000, 70_000, 10**6, 10**7])
    for p in (1e-9, 0.01, 0.3, 0.5, 0.7, 0.999999):
        uniforms = np.random.default_rng(5).random(n.size)
        got = draws.binomials(np.random.default_rng(5), n, np.full(n.size, p))
        np.testing.assert_array_equal(got, stats.binom.ppf(uniforms, n, p).astype(np.int64))


def _pvalue(counts: np.ndarray, probabilities: np.ndarray) -> float:
    return chi_square_pvalue({str(i): int(c) for i, c in enumerate(counts)},
                             {str(i): float(q) for i, q in enumerate(probabilities)})


def test_the_draws_follow_their_distributions():
    """Chi-square against the exact distribution, for draws shot by shot and down the tree,
    and a binomial's mean and variance over many draws."""
    probabilities = np.random.default_rng(3).random(12)
    probabilities /= probabilities.sum()
    for shots in (draws.PER_SHOT_MAX // 2, 10**7):  # one uniform per shot; the tree
        counts = draws.multinomial(np.random.default_rng(4), shots, probabilities)
        assert _pvalue(counts, probabilities) > ALPHA, (shots, counts)
    rng = np.random.default_rng(6)
    n, p = 10**6, 0.5
    values = np.array([draws.binomial(rng, n, p) for _ in range(400)], dtype=float)
    sigma = np.sqrt(n * p * (1 - p))
    assert abs(values.mean() - n * p) < 5 * sigma / np.sqrt(values.size)
    assert stats.chi2.sf(values.var(ddof=1) * (values.size - 1) / sigma**2,
                         values.size - 1) > ALPHA / 2


@examples()
@given(seed=SEEDS, n=st.integers(0, draws.FEW_SHOTS),
       weights=st.lists(st.sampled_from([0.0, 0.2, 0.5, 1.0]), min_size=1, max_size=6))
def test_few_shot_draws_are_the_per_shot_inverse_cdf(seed, n, weights):
    """The plain-Python path for a few shots draws what the NumPy path would."""
    from gpuprovider.kernels.layout import inverse_cdf

    probabilities = np.array(weights)
    if probabilities.sum() == 0:
        probabilities[-1] = 1.0
    got = draws.multinomial(np.random.default_rng(seed), n, probabilities)
    uniforms = np.random.default_rng(seed).random(n)
    np.testing.assert_array_equal(
        got, np.bincount(inverse_cdf(probabilities, uniforms), minlength=probabilities.size))
    assert draws.binomial(np.random.default_rng(seed), n, 0.5) == int(np.sum(uniforms < 0.5))
