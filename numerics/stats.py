"""Confidence intervals, streaming moments and slope fits used by the checks.

Intervals are two-sided normal (CLT) intervals on sample means, or Student-t intervals on
regression slopes; a family of m comparisons at overall level 1 − α uses α / m each
(Bonferroni), so a check's false-failure rate is at most α whatever m is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.stats

from numerics.errors import InvalidInputError

#: Default family-wise false-failure rate of a statistical check (1 in 1000).
DEFAULT_ALPHA = 1e-3


def normal_quantile(alpha: float, comparisons: int = 1) -> float:
    """z with P(|N(0,1)| > z) = α / comparisons (two-sided, Bonferroni-corrected)."""
    if not 0 < alpha < 1:
        raise InvalidInputError(f"alpha must lie in (0, 1); got {alpha!r}")
    if comparisons < 1:
        raise InvalidInputError(f"comparisons must be >= 1; got {comparisons!r}")
    return float(scipy.stats.norm.isf(alpha / (2 * comparisons)))


def summarize(samples: np.ndarray, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """(mean, sum of squared deviations) along ``axis``.

    Samples are shifted by the first one, so identical samples give m2 == 0 exactly and their
    exact value as the mean (a plain mean of n copies of x can be off by an ulp).
    """
    shift = np.take(samples, [0], axis=axis)
    centred = samples - shift
    offset = centred.mean(axis=axis)
    m2 = ((centred - np.expand_dims(offset, axis)) ** 2).sum(axis=axis)
    return np.squeeze(shift, axis=axis) + offset, m2


@dataclass
class RunningMoments:
    """Mean and sum of squared deviations over a stream of samples, per position.

    Chunks are merged with Chan, Golub & LeVeque's pairwise update, so the result does not
    depend on how the trials were split into chunks (up to round-off).
    """

    count: int = 0
    mean: np.ndarray | float = 0.0
    m2: np.ndarray | float = 0.0

    def add(self, samples: np.ndarray, axis: int = -1) -> None:
        """Merge samples laid out along ``axis``."""
        n = samples.shape[axis]
        if n:
            self.merge(n, *summarize(samples, axis))

    def merge(self, count: int, mean: np.ndarray | float, m2: np.ndarray | float) -> None:
        """Merge a summary (count, mean, sum of squared deviations) of other samples."""
        if count == 0:
            return
        if self.count == 0:
            self.count, self.mean, self.m2 = count, mean, m2
            return
        total = self.count + count
        delta = mean - self.mean
        self.mean = self.mean + delta * (count / total)
        self.m2 = self.m2 + m2 + delta**2 * (self.count * count / total)
        self.count = total

    @property
    def variance(self) -> np.ndarray | float:
        """Unbiased sample variance (0 for fewer than two samples)."""
        return self.m2 / (self.count - 1) if self.count > 1 else np.zeros_like(self.mean)

    @property
    def standard_error(self) -> np.ndarray | float:
        """Standard error of the mean."""
        return np.sqrt(np.maximum(self.variance, 0.0) / max(self.count, 1))


def mean_interval(
    mean: np.ndarray | float,
    standard_error: np.ndarray | float,
    *,
    alpha: float = DEFAULT_ALPHA,
    comparisons: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Normal interval mean ± z·se at level 1 − α / comparisons."""
    z = normal_quantile(alpha, comparisons)
    return np.asarray(mean - z * standard_error), np.asarray(mean + z * standard_error)


@dataclass(frozen=True)
class SlopeFit:
    """Least-squares fit of y = intercept + slope·x with a Student-t interval on the slope."""

    slope: float
    intercept: float
    ci: tuple[float, float]
    stderr: float
    n_points: int


def fit_slope(
    x: np.ndarray, y: np.ndarray, *, alpha: float = DEFAULT_ALPHA, log: bool = True
) -> SlopeFit:
    """Fit log y against log x (``log=True``) or y against x; interval at level 1 − α."""
    if not 0 < alpha < 1:
        raise InvalidInputError(f"alpha must lie in (0, 1); got {alpha!r}")
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or x.size < 3:
        raise InvalidInputError(
            f"fit_slope needs two 1-D arrays of equal length >= 3; got {x.shape} and {y.shape}"
        )
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise InvalidInputError("fit_slope needs finite x and y (no NaN or inf)")
    if log:
        if np.any(x <= 0) or np.any(y <= 0):
            raise InvalidInputError("fit_slope(log=True) needs positive x and y")
        x, y = np.log(x), np.log(y)
    res = scipy.stats.linregress(x, y)
    t = float(scipy.stats.t.isf(alpha / 2, x.size - 2))
    half = t * res.stderr
    return SlopeFit(
        float(res.slope),
        float(res.intercept),
        (float(res.slope - half), float(res.slope + half)),
        float(res.stderr),
        x.size,
    )
