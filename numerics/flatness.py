"""Flatness of a loss at a point: Hessian trace, top Hessian eigenvalue, and the average loss
increase under random perturbations of a given radius.

The flatness measure of the paper's experiments is not known (note §3.5 [?]); the note lists
three candidates and asks for all three. Every function takes a *loss object* with

    value(theta) -> (...),   gradient(theta) -> (..., d),   hvp(theta, v) -> (..., d),

batched over leading axes (θ and v broadcast), e.g. ``numerics.mlp.MLP`` or ``QuadraticLoss``.

* **Hessian trace** by Hutchinson's estimator (Hutchinson 1990, Commun. Stat. Simul. Comput.
  19(2)): for Rademacher probes v (entries ±1 with probability ½), E[vᵀHv] = Tr(H), and
  Var[vᵀHv] = 2(‖H‖_F² − Σᵢ Hᵢᵢ²) [standard; derived from E[vᵢvⱼvₖvₗ]]. The estimate is the
  mean of P probes, its standard error the sample standard deviation / √P, and its interval
  the normal interval of ``numerics.stats`` (CLT over probes).
* **Top eigenvalue** λ_max(H) (largest algebraic, as in PyHessian) by Lanczos: scipy ``eigsh``
  (ARPACK, implicitly restarted Lanczos) on a ``LinearOperator`` whose matvec is the loss's
  Hessian-vector product; one point at a time (ARPACK is sequential).
* **Average loss increase** at radius r: S(r) = E_u[L(θ + r u)] − L(θ), u uniform on the unit
  sphere. For a quadratic L, E[uuᵀ] = I/d and E[u] = 0 give exactly S(r) = r² Tr(H)/(2d)
  at any θ [standard]. The estimator averages antithetic pairs ½[L(θ + ru) + L(θ − ru)] − L(θ)
  (derived here): the pair cancels the odd terms of the Taylor series exactly (the gradient
  term at a non-stationary θ, and the third-order term), so it has the same mean and a much
  smaller variance; the interval is the normal interval over the P pairs.

Probes and directions come from a ``numpy.random.Generator`` passed in, so that callers can
share them across compared points (common random numbers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import scipy.sparse.linalg

from numerics._validate import as_float_array, positive_float, positive_int
from numerics.errors import InvalidInputError
from numerics.stats import DEFAULT_ALPHA, mean_interval

#: Default number of (point, probe) pairs per call of the loss (bounds the memory: a network
#: loss holds pairs × samples × hidden units per array).
DEFAULT_PAIRS_PER_CALL = 64


class Loss(Protocol):
    """What the flatness measures need of a loss (batched over leading axes)."""

    def value(self, theta: np.ndarray) -> np.ndarray: ...

    def gradient(self, theta: np.ndarray) -> np.ndarray: ...

    def hvp(self, theta: np.ndarray, vector: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True, eq=False)
class QuadraticLoss:
    """L(θ) = ½ (θ − c)ᵀ H (θ − c) + offset: the test case whose flatness is known exactly."""

    hessian: np.ndarray
    center: np.ndarray
    offset: float = 0.0

    @classmethod
    def create(cls, hessian: np.ndarray, center: np.ndarray | None = None) -> QuadraticLoss:
        """Validated: H symmetric (d, d), center (d,) (default 0)."""
        H = as_float_array(hessian, "hessian", 2)
        if H.shape[0] != H.shape[1] or not np.allclose(H, H.T, atol=1e-12 * max(1, abs(H).max())):
            raise InvalidInputError(
                f"hessian must be a symmetric square matrix; got shape {H.shape}"
            )
        c = np.zeros(H.shape[0]) if center is None else as_float_array(center, "center", 1)
        if c.shape != (H.shape[0],):
            raise InvalidInputError(f"center must have shape ({H.shape[0]},); got {c.shape}")
        return cls(0.5 * (H + H.T), c)

    @property
    def dim(self) -> int:
        """d."""
        return self.center.shape[0]

    def value(self, theta: np.ndarray) -> np.ndarray:
        """½ (θ − c)ᵀH(θ − c) + offset for every θ (..., d)."""
        e = np.asarray(theta, dtype=float) - self.center
        return 0.5 * np.einsum("...i,ij,...j->...", e, self.hessian, e) + self.offset

    def gradient(self, theta: np.ndarray) -> np.ndarray:
        """H (θ − c), shape (..., d)."""
        return (np.asarray(theta, dtype=float) - self.center) @ self.hessian

    def hvp(self, theta: np.ndarray, vector: np.ndarray) -> np.ndarray:
        """H v, broadcast over the leading axes of θ and v."""
        v = np.asarray(vector, dtype=float)
        shape = np.broadcast_shapes(np.shape(theta)[:-1], v.shape[:-1])
        return np.broadcast_to(v @ self.hessian, (*shape, self.dim))


@dataclass(frozen=True)
class Estimate:
    """A Monte Carlo estimate per point: mean and standard error (shape of the points)."""

    mean: np.ndarray
    standard_error: np.ndarray
    n_samples: int

    def interval(
        self, *, alpha: float = DEFAULT_ALPHA, comparisons: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """Normal interval mean ± z·se at level 1 − α/comparisons."""
        return mean_interval(self.mean, self.standard_error, alpha=alpha, comparisons=comparisons)


def _points(theta: np.ndarray) -> np.ndarray:
    arr = np.asarray(theta, dtype=float)
    if arr.ndim < 1 or arr.shape[-1] < 1:
        raise InvalidInputError(f"theta must have shape (..., d) with d >= 1; got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InvalidInputError("theta contains NaN or inf")
    return arr


def _blocks(n_points: int, n_probes: int, pairs: int):
    """(point slice, probe slice) blocks covering the grid with <= ``pairs`` pairs each."""
    pairs = positive_int(pairs, "pairs_per_call")
    pb = min(n_probes, pairs)
    nb = max(1, pairs // pb)
    for i in range(0, n_points, nb):
        for j in range(0, n_probes, pb):
            yield slice(i, min(i + nb, n_points)), slice(j, min(j + pb, n_probes))


def _mean_and_se(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over the last axis (se = 0 for one sample)."""
    n = samples.shape[-1]
    mean = samples.mean(axis=-1)
    if n < 2:
        return mean, np.zeros_like(mean)
    return mean, samples.std(axis=-1, ddof=1) / np.sqrt(n)


def rademacher(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Entries ±1 with probability ½ each (from ``rng.integers(0, 2)``)."""
    return 2.0 * rng.integers(0, 2, size=shape) - 1.0


def hutchinson_trace(
    loss: Loss,
    theta: np.ndarray,
    n_probes: int,
    rng: np.random.Generator,
    *,
    probes: np.ndarray | None = None,
    pairs_per_call: int = DEFAULT_PAIRS_PER_CALL,
) -> Estimate:
    """Hutchinson's estimate of Tr ∇²L(θ) at every point θ (..., d) (module docstring).

    The same P Rademacher probes (drawn as one (P, d) array, or given as ``probes``) are
    used at every point, so differences between points share them (common random numbers).
    Blocks of (point, probe) pairs bound the memory (``pairs_per_call``).
    """
    theta = _points(theta)
    d = theta.shape[-1]
    if probes is None:
        P = positive_int(n_probes, "n_probes")
        V = rademacher(rng, (P, d))
    else:
        V = as_float_array(probes, "probes", 2)
        if V.shape[1] != d:
            raise InvalidInputError(f"probes must have shape (P, {d}); got {V.shape}")
        P = V.shape[0]
    lead = theta.shape[:-1]
    flat = theta.reshape(-1, d)
    quad = np.empty((flat.shape[0], P))
    for pts, prb in _blocks(flat.shape[0], P, pairs_per_call):
        v = V[prb]  # (p, d)
        hv = loss.hvp(flat[pts, None, :], v[None, :, :])  # (points, p, d)
        quad[pts, prb] = np.einsum("npd,pd->np", hv, v)
    mean, se = _mean_and_se(quad)
    return Estimate(mean.reshape(lead), se.reshape(lead), P)


def top_eigenvalue(
    loss: Loss, theta: np.ndarray, *, tol: float = 1e-10, seed: int = 0, maxiter: int | None = None
) -> np.ndarray:
    """λ_max(∇²L(θ)) (largest algebraic) at every point θ (..., d), by Lanczos (``eigsh``).

    ARPACK's start vector is drawn from ``seed`` (reproducible); ``tol`` is its relative
    accuracy on the Ritz value. For d ≤ 2 the Hessian is formed from d products and
    ``eigvalsh`` is used (ARPACK needs k < d).
    """
    theta = _points(theta)
    d = theta.shape[-1]
    lead = theta.shape[:-1]
    flat = theta.reshape(-1, d)
    out = np.empty(flat.shape[0])
    v0 = np.random.default_rng(np.random.SeedSequence(int(seed))).standard_normal(d)
    for i, point in enumerate(flat):
        if d <= 2:
            H = loss.hvp(point[None, :], np.eye(d))
            out[i] = np.linalg.eigvalsh(0.5 * (H + H.T))[-1]
            continue

        def matvec(v: np.ndarray, point: np.ndarray = point) -> np.ndarray:
            return np.asarray(loss.hvp(point, np.ravel(v)), dtype=float)

        op = scipy.sparse.linalg.LinearOperator((d, d), matvec=matvec, dtype=float)
        vals = scipy.sparse.linalg.eigsh(
            op, k=1, which="LA", tol=tol, v0=v0, maxiter=maxiter, return_eigenvectors=False
        )
        out[i] = float(vals[-1])
    return out.reshape(lead)


def sphere_directions(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    """n directions uniform on the unit sphere of ℝ^dim (normalized Gaussians), (n, dim)."""
    g = rng.standard_normal((n, dim))
    return g / np.linalg.norm(g, axis=1, keepdims=True)


def perturbation_sharpness(
    loss: Loss,
    theta: np.ndarray,
    radius: float,
    n_directions: int,
    rng: np.random.Generator,
    *,
    directions: np.ndarray | None = None,
    pairs_per_call: int = DEFAULT_PAIRS_PER_CALL,
) -> Estimate:
    """S(r) = E_u[L(θ + r u)] − L(θ), u uniform on the unit sphere, at every θ (..., d).

    Antithetic pairs (u, −u) (module docstring); the same P directions at every point.
    For a quadratic, S(r) = r² Tr(H)/(2d) exactly.
    """
    theta = _points(theta)
    r = positive_float(radius, "radius")
    d = theta.shape[-1]
    if directions is None:
        U = sphere_directions(rng, positive_int(n_directions, "n_directions"), d)
    else:
        U = as_float_array(directions, "directions", 2)
        if U.shape[1] != d:
            raise InvalidInputError(f"directions must have shape (P, {d}); got {U.shape}")
    P = U.shape[0]
    lead = theta.shape[:-1]
    flat = theta.reshape(-1, d)
    base = np.asarray(loss.value(flat))  # (points,)
    rise = np.empty((flat.shape[0], P))
    for pts, prb in _blocks(flat.shape[0], P, pairs_per_call):
        u = r * U[prb][None]
        plus = loss.value(flat[pts, None, :] + u)
        minus = loss.value(flat[pts, None, :] - u)
        rise[pts, prb] = 0.5 * (plus + minus) - base[pts, None]
    mean, se = _mean_and_se(rise)
    return Estimate(mean.reshape(lead), se.reshape(lead), P)
