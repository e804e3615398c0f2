"""Random draws that change only when their probabilities change, not at seams.

A probability read from a state is a sum whose last bits depend on the order the device
added in (threads, GPU blocks, MPI ranks). NumPy's ``binomial`` is not continuous in ``p``:
at ``p = 0.5`` it switches to drawing the failures (``0.5`` and ``0.5 + 1e-16`` give ``k`` and
about ``n - k``), and its multinomial divides its way into such seams. So the same seed gave
different shots on one process and on a state spread over ranks, for a measurement with
probability one half. These draws use a number of uniforms that depends only on the shots
and the number of outcomes, and invert the CDF with them: a rounding-sized change of a
probability changes a draw only when a uniform lies within that rounding of a CDF step.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from itertools import accumulate

import numpy as np

from .kernels.layout import inverse_cdf

PER_SHOT_MAX = 1 << 16
"""Draws of at most this many shots take one uniform per shot (cheaper than inverting the
binomial CDF until then)."""
SHOTS_PER_LEAF = 64
"""A multinomial draw of more shots than this per outcome (and more than
:data:`PER_SHOT_MAX`) splits the shots down a binary tree of binomial draws over the
outcomes instead of drawing each shot."""
CHUNK_SHOTS = 1 << 20
"""Shots drawn one by one are drawn this many at a time."""
FEW_SHOTS = 32
"""Multinomial draws of at most this many shots run in plain Python (a trajectory's Kraus
split is one shot: NumPy's per-call cost would dominate)."""


def binomials(rng: np.random.Generator, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``Binomial(n[i], p[i])`` for every ``i``, by inverting its CDF at one uniform each
    (int64)."""
    n = np.asarray(n, dtype=np.int64)
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    n, p = np.broadcast_arrays(n, p)
    uniforms = rng.random(n.shape)
    out = np.where(p >= 1.0, n, 0).astype(np.int64)
    inner = (n > 0) & (p > 0.0) & (p < 1.0)
    if inner.any():
        from scipy import special  # not needed by most runs: loaded on first use

        u, trials, chance = uniforms[inner], n[inner], p[inner]
        guess = np.nan_to_num(special.bdtrik(u, trials, chance), nan=0.0)
        k = np.clip(np.ceil(guess), 0, trials)
        # The smallest k with P(X <= k) >= u; the root finder may miss by one either way.
        k = np.where((k < trials) & (special.bdtr(k, trials, chance) < u), k + 1, k)
        lower = np.maximum(k - 1, 0)
        k = np.where((k > 0) & (special.bdtr(lower, trials, chance) >= u), lower, k)
        out[inner] = k.astype(np.int64)
    return out


def binomial(rng: np.random.Generator, n: int, p: float) -> int:
    """``Binomial(n, p)``: one uniform per shot up to :data:`PER_SHOT_MAX` shots, else the
    inverted CDF at one uniform."""
    if n == 1:  # a trajectory's collapse: no NumPy call
        return int(rng.random() < p)
    if n <= PER_SHOT_MAX:
        return int(np.count_nonzero(rng.random(n) < p))
    return int(binomials(rng, np.array([n]), np.array([p]))[0])


def multinomial(rng: np.random.Generator, n: int, probabilities: np.ndarray) -> np.ndarray:
    """How many of ``n`` shots fall on each outcome of ``probabilities`` (non-negative, not
    necessarily normalised), int64: each shot by its own uniform, or for many shots per
    outcome (:data:`SHOTS_PER_LEAF`) down a binary tree of :func:`binomials`, one uniform per
    node."""
    if n <= FEW_SHOTS:
        return _few(rng, n, probabilities)
    probabilities = np.clip(np.asarray(probabilities, dtype=np.float64), 0.0, None)
    bins = probabilities.size
    if n <= max(PER_SHOT_MAX, SHOTS_PER_LEAF * bins):
        counts = np.zeros(bins, dtype=np.int64)
        for start in range(0, n, CHUNK_SHOTS):  # the same uniforms as one rng.random(n)
            drawn = inverse_cdf(probabilities, rng.random(min(CHUNK_SHOTS, n - start)))
            counts += np.bincount(drawn, minlength=bins)
        return counts
    leaves = np.zeros(1 << (bins - 1).bit_length(), dtype=np.float64)
    leaves[:bins] = probabilities
    levels = [leaves]
    while levels[-1].size > 1:
        levels.append(levels[-1].reshape(-1, 2).sum(axis=1))
    counts = np.array([n], dtype=np.int64)
    for level in reversed(levels[:-1]):
        pairs = level.reshape(-1, 2)
        totals = pairs.sum(axis=1)
        p_left = np.divide(pairs[:, 0], totals, out=np.zeros_like(totals), where=totals > 0)
        left = binomials(rng, counts, p_left)
        counts = np.stack([left, counts - left], axis=1).ravel()
    return counts[:bins]


def _few(rng: np.random.Generator, n: int, probabilities: np.ndarray) -> np.ndarray:
    """:func:`multinomial` of a few shots, each by its own uniform (as
    :func:`~gpuprovider.kernels.layout.inverse_cdf` draws them)."""
    cumulative = list(accumulate(max(0.0, value) for value in np.asarray(
        probabilities, dtype=np.float64).tolist()))
    total = cumulative[-1]
    last = bisect_left(cumulative, total)  # the last outcome with any probability
    counts = np.zeros(len(cumulative), dtype=np.int64)
    for u in ([rng.random()] if n == 1 else rng.random(n).tolist()):
        counts[min(bisect_right(cumulative, u * total), last)] += 1
    return counts
