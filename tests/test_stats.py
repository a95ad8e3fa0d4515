"""Tests for numerics.stats: streaming moments, normal quantiles, intervals and slope fits."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.stats

from numerics.errors import InvalidInputError
from numerics.stats import (
    DEFAULT_ALPHA,
    RunningMoments,
    fit_slope,
    mean_interval,
    normal_quantile,
)


# ---------------------------------------------------------------- RunningMoments
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_running_moments_merge_equals_one_shot(seed):
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((4, 1037)) * np.array([[1.0], [10.0], [1e-3], [5.0]]) + 3.0
    cuts = np.sort(rng.choice(np.arange(1, 1037), size=9, replace=False))
    rm = RunningMoments()
    for part in np.split(data, cuts, axis=1):
        rm.add(part, axis=1)
    rm.add(data[:, :0], axis=1)  # an empty chunk is ignored
    assert rm.count == 1037
    np.testing.assert_allclose(rm.mean, data.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(rm.variance, data.var(axis=1, ddof=1), rtol=1e-12)
    np.testing.assert_allclose(
        rm.standard_error, data.std(axis=1, ddof=1) / np.sqrt(1037), rtol=1e-12
    )


def test_running_moments_axis_zero_and_scalar_stream():
    rng = np.random.default_rng(3)
    data = rng.exponential(size=(500, 3))
    rm = RunningMoments()
    rm.add(data[:123], axis=0)
    rm.add(data[123:], axis=0)
    np.testing.assert_allclose(rm.mean, data.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(rm.variance, data.var(axis=0, ddof=1), rtol=1e-12)
    flat = RunningMoments()
    for chunk in np.array_split(data[:, 0], 7):
        flat.add(chunk)
    np.testing.assert_allclose(flat.mean, data[:, 0].mean(), rtol=1e-12)
    np.testing.assert_allclose(flat.variance, data[:, 0].var(ddof=1), rtol=1e-12)


def test_running_moments_large_offset_is_stable():
    rng = np.random.default_rng(4)
    data = 1e9 + rng.standard_normal(4000)
    rm = RunningMoments()
    for chunk in np.array_split(data, 13):
        rm.add(chunk)
    np.testing.assert_allclose(rm.variance, np.var(data - 1e9, ddof=1), rtol=1e-6)


def test_running_moments_degenerate_cases():
    rm = RunningMoments()
    rm.add(np.array([2.5]))
    assert rm.count == 1 and rm.mean == 2.5
    assert rm.variance == 0 and rm.standard_error == 0
    # identical samples: mean exactly the value, spread exactly zero, across chunks
    for value in (0.1, 0.7, 1 / 3, 2 / 3, 0.123456789, -1e-7):
        same = RunningMoments()
        for n in (250, 250, 7, 300):
            same.add(np.full((2, n), value), axis=1)
        np.testing.assert_array_equal(same.mean, value)
        np.testing.assert_array_equal(same.m2, 0.0)
        np.testing.assert_array_equal(same.standard_error, 0.0)


# ---------------------------------------------------------------- quantiles and intervals
def test_normal_quantile_values():
    z = normal_quantile(0.05)
    assert abs(z - 1.959964) < 1e-6
    assert z == pytest.approx(scipy.stats.norm.ppf(0.975), rel=1e-14)
    for alpha in (0.5, 0.05, 1e-3, 1e-7):
        zq = normal_quantile(alpha)
        assert math.erfc(zq / math.sqrt(2)) == pytest.approx(alpha, rel=1e-10)


def test_bonferroni_increases_quantile():
    zs = [normal_quantile(DEFAULT_ALPHA, m) for m in (1, 2, 10, 1000)]
    assert all(a < b for a, b in itertools.pairwise(zs))
    assert normal_quantile(0.05, 10) == pytest.approx(normal_quantile(0.005), rel=1e-14)


@pytest.mark.parametrize(
    ("alpha", "m"),
    [(0.0, 1), (1.0, 1), (-0.1, 1), (1.5, 1), (float("nan"), 1), (0.05, 0), (0.05, -2)],
)
def test_normal_quantile_rejects(alpha, m):
    with pytest.raises(InvalidInputError, match=r"alpha must lie|comparisons must be"):
        normal_quantile(alpha, m)


def test_mean_interval():
    mean, se = np.array([1.0, -2.0]), np.array([0.1, 0.0])
    lo, hi = mean_interval(mean, se, alpha=0.05, comparisons=4)
    z = scipy.stats.norm.ppf(1 - 0.05 / 8)
    np.testing.assert_allclose(hi - mean, z * se, rtol=1e-14)
    np.testing.assert_allclose(mean - lo, z * se, rtol=1e-14)
    with pytest.raises(InvalidInputError, match=r"alpha"):
        mean_interval(mean, se, alpha=2.0)


def test_mean_interval_coverage():
    """Coverage of the normal mean interval on Gaussian samples, 4000 replications."""
    rng = np.random.default_rng(5)
    reps, n, alpha = 4000, 400, 0.1
    data = rng.normal(3.0, 2.0, size=(reps, n))
    lo, hi = mean_interval(data.mean(axis=1), data.std(axis=1, ddof=1) / np.sqrt(n), alpha=alpha)
    misses = int(np.sum((lo > 3.0) | (hi < 3.0)))
    # exact miss probability of mean ± z·se on Gaussian data: (mean − μ)/se is Student t
    p = 2 * scipy.stats.t.sf(scipy.stats.norm.isf(alpha / 2), n - 1)
    assert abs(p - alpha) < 1e-3
    assert scipy.stats.binom.ppf(5e-4, reps, p) <= misses <= scipy.stats.binom.isf(5e-4, reps, p)


# ---------------------------------------------------------------- slope fits
def test_fit_slope_exact_power_law():
    x = np.geomspace(1e-3, 1.0, 9)
    fit = fit_slope(x, 3.0 * x**-1.5)
    assert fit.slope == pytest.approx(-1.5, abs=1e-12)
    assert fit.intercept == pytest.approx(math.log(3.0), abs=1e-12)
    # linregress gets the residual variance from 1 − r², so exact data give ~sqrt(eps)
    assert fit.stderr < 1e-6 and fit.n_points == 9
    assert fit.ci[0] <= -1.5 <= fit.ci[1]
    assert fit.ci[1] - fit.ci[0] < 1e-5
    lin = fit_slope(np.arange(5.0), 2.0 - 0.25 * np.arange(5.0), log=False)
    assert lin.slope == pytest.approx(-0.25, abs=1e-14)
    assert lin.intercept == pytest.approx(2.0, abs=1e-14)


def test_fit_slope_interval_covers_true_slope_on_noisy_data():
    rng = np.random.default_rng(2024)
    x = np.geomspace(0.01, 1.0, 12)
    y = 0.8 * x**0.5 * np.exp(0.1 * rng.standard_normal(x.size))
    fit = fit_slope(x, y)  # default alpha = 1e-3
    assert fit.ci[0] < 0.5 < fit.ci[1]
    assert fit.ci[0] < fit.slope < fit.ci[1]
    # a narrower interval (larger alpha) is nested inside
    narrow = fit_slope(x, y, alpha=0.2)
    assert fit.ci[0] < narrow.ci[0] < narrow.ci[1] < fit.ci[1]


def test_fit_slope_interval_calibration():
    """With Gaussian noise in log space the Student-t interval has exact coverage 1 − α:
    over 2000 fits the miss count is Binomial(2000, α)."""
    rng = np.random.default_rng(6)
    reps, alpha = 2000, 0.1
    x = np.geomspace(0.1, 10.0, 8)
    misses = 0
    for _ in range(reps):
        y = 2.0 * x**-1.0 * np.exp(0.3 * rng.standard_normal(x.size))
        lo, hi = fit_slope(x, y, alpha=alpha).ci
        misses += not lo <= -1.0 <= hi
    assert scipy.stats.binom.ppf(5e-4, reps, alpha) <= misses
    assert misses <= scipy.stats.binom.isf(5e-4, reps, alpha)


@pytest.mark.parametrize(
    ("x", "y", "kwargs", "match"),
    [
        ([1.0, 2.0, 3.0], [1.0, 2.0], {}, r"equal length >= 3"),
        ([1.0, 2.0], [1.0, 2.0], {}, r"equal length >= 3"),
        ([[1.0, 2.0, 3.0]], [[1.0, 2.0, 3.0]], {}, r"1-D arrays"),
        ([1.0, 0.0, 3.0], [1.0, 2.0, 3.0], {}, r"positive x and y"),
        ([1.0, 2.0, 3.0], [1.0, -2.0, 3.0], {}, r"positive x and y"),
        ([1.0, 2.0, 3.0], [1.0, np.nan, 3.0], {"log": False}, r"finite"),
        ([1.0, np.inf, 3.0], [1.0, 2.0, 3.0], {}, r"finite"),
        ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], {"alpha": 0.0}, r"alpha must lie"),
        ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], {"alpha": 1.5}, r"alpha must lie"),
    ],
)
def test_fit_slope_rejects(x, y, kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        fit_slope(np.asarray(x), np.asarray(y), **kwargs)
