"""Quadratic networks: K agents with local quadratic risks sharing a common minimiser w*.

Agent k holds the local risk (flatness paper, arXiv 2406.20006, §2; [R] reconstruction,
see shared/research/flatness_tradeoff.md §2.6)

    J_k(w) = J_k(w*) + d_kᵀ (w − w*) + ½ (w − w*)ᵀ H_k (w − w*),

so ∇J_k(w*) = d_k and Σ_k d_k = 0 (w* minimises the aggregate J = (1/K) Σ_k J_k), and a
stochastic gradient ∇J_k(w) + s_k with zero-mean Gaussian noise of covariance R_k / B.
With error w̃ = w* − w, one SGD step is w̃ ← (I − μ H_k) w̃ + μ d_k + μ s_k, which is the
unified error recursion every strategy in ``numerics.strategies`` builds on.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from numerics._validate import (
    as_float_array,
    check_psd,
    check_symmetric,
    positive_float,
    positive_int,
)
from numerics.errors import InvalidInputError


@dataclass(frozen=True, eq=False)
class QuadraticNetwork:
    """K local quadratic risks around a common minimiser of their average.

    Parameters
    ----------
    hessians : (K, d, d) symmetric positive semi-definite H_k; their mean H̄ must be
        positive definite.
    gradients_at_optimum : (K, d) local gradients d_k = ∇J_k(w*), summing to zero.
    noise_covariances : (K, d, d) symmetric PSD per-sample gradient-noise covariances R_k.
    batch_size : B, samples per agent per step; the noise covariance is R_k / B.
    """

    hessians: np.ndarray
    gradients_at_optimum: np.ndarray
    noise_covariances: np.ndarray
    batch_size: int = 1

    def __post_init__(self) -> None:
        H = as_float_array(self.hessians, "hessians", 3)
        d = as_float_array(self.gradients_at_optimum, "gradients_at_optimum", 2)
        R = as_float_array(self.noise_covariances, "noise_covariances", 3)
        K, dim = H.shape[0], H.shape[1]
        if K < 1 or dim < 1 or H.shape != (K, dim, dim):
            raise InvalidInputError(
                f"hessians must have shape (n_agents, dim, dim) with n_agents, dim >= 1; "
                f"got {H.shape}"
            )
        if d.shape != (K, dim):
            raise InvalidInputError(
                f"gradients_at_optimum must have shape {(K, dim)} to match hessians; got {d.shape}"
            )
        if R.shape != (K, dim, dim):
            raise InvalidInputError(
                f"noise_covariances must have shape {(K, dim, dim)} to match hessians; "
                f"got {R.shape}"
            )
        check_symmetric(H, "hessians")
        check_psd(H, "hessians")
        check_symmetric(R, "noise_covariances")
        check_psd(R, "noise_covariances")
        H = 0.5 * (H + np.swapaxes(H, 1, 2))
        R = 0.5 * (R + np.swapaxes(R, 1, 2))
        Hbar_min = np.linalg.eigvalsh(H.mean(axis=0))[0]
        if Hbar_min <= 1e-12 * max(np.abs(H).max(), 1.0):
            raise InvalidInputError(
                f"the aggregate Hessian mean(hessians) must be positive definite; its smallest "
                f"eigenvalue is {Hbar_min:.3g}"
            )
        total = d.sum(axis=0)
        scale = max(np.abs(d).max(), 1.0)
        if np.abs(total).max() > 1e-9 * scale * K:
            raise InvalidInputError(
                "gradients_at_optimum must sum to zero over agents (w* minimises the average "
                f"risk); their sum has max |entry| {np.abs(total).max():.3g}"
            )
        object.__setattr__(self, "hessians", H)
        object.__setattr__(self, "gradients_at_optimum", d)
        object.__setattr__(self, "noise_covariances", R)
        object.__setattr__(self, "batch_size", positive_int(self.batch_size, "batch_size"))
        for arr in (H, d, R):
            arr.setflags(write=False)

    # ---- sizes and aggregates -------------------------------------------------------------
    @property
    def n_agents(self) -> int:
        """K, the number of agents."""
        return self.hessians.shape[0]

    @property
    def dim(self) -> int:
        """d, the dimension of the model."""
        return self.hessians.shape[1]

    @cached_property
    def aggregate_hessian(self) -> np.ndarray:
        """H̄ = (1/K) Σ_k H_k, the Hessian of the aggregate risk at w*."""
        return self.hessians.mean(axis=0)

    @cached_property
    def mean_noise_covariance(self) -> np.ndarray:
        """R̄ = (1/K) Σ_k R_k (per sample)."""
        return self.noise_covariances.mean(axis=0)

    @cached_property
    def step_noise_factors(self) -> np.ndarray:
        """L_k with L_k L_kᵀ = R_k / B (symmetric square root; works for singular R_k)."""
        vals, vecs = np.linalg.eigh(self.noise_covariances / self.batch_size)
        return (vecs * np.sqrt(np.clip(vals, 0.0, None))[:, None, :]) @ np.swapaxes(vecs, 1, 2)

    @property
    def hessians_equal(self) -> bool:
        """True when every agent has the same Hessian (enables the modal fast path)."""
        H = self.hessians
        return bool(np.allclose(H, H[:1], rtol=1e-12, atol=1e-14 * max(np.abs(H).max(), 1.0)))

    def risk_excess(self, errors: np.ndarray) -> np.ndarray:
        """J(w) − J(w*) = ½ w̃ᵀ H̄ w̃ for errors w̃ of shape (..., d) (exact for quadratics)."""
        return 0.5 * np.einsum("...i,ij,...j->...", errors, self.aggregate_hessian, errors)

    def with_batch_size(self, batch_size: int) -> QuadraticNetwork:
        """The same network with another batch size."""
        return QuadraticNetwork(
            self.hessians, self.gradients_at_optimum, self.noise_covariances, batch_size
        )

    def scaled(self, *, gradient: float = 1.0, noise: float = 1.0) -> QuadraticNetwork:
        """The same network with d_k multiplied by ``gradient`` and R_k by ``noise``."""
        return QuadraticNetwork(
            self.hessians,
            gradient * self.gradients_at_optimum,
            noise * self.noise_covariances,
            self.batch_size,
        )


# ---- random instances -------------------------------------------------------------------
def _random_spd(rng: np.random.Generator, n: int, dim: int, spectrum: np.ndarray) -> np.ndarray:
    """n random symmetric matrices Q diag(spectrum) Qᵀ with Haar-random orthogonal Q."""
    z = rng.standard_normal((n, dim, dim))
    q, r = np.linalg.qr(z)
    q = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
    return (q * spectrum[None, None, :]) @ np.swapaxes(q, 1, 2)


def _spectrum(low: float, high: float, dim: int) -> np.ndarray:
    return np.geomspace(high, low, dim) if dim > 1 else np.array([high])


def random_quadratic_network(
    n_agents: int,
    dim: int,
    *,
    seed: int | np.random.SeedSequence = 0,
    hessian_heterogeneity: float = 0.0,
    gradient_heterogeneity: float = 0.0,
    noise_heterogeneity: float = 0.0,
    curvature: tuple[float, float] = (0.2, 1.0),
    noise_level: float = 1.0,
    batch_size: int = 1,
) -> QuadraticNetwork:
    """A random quadratic network with a controlled level of heterogeneity.

    With H0 = Q diag(spectrum) Qᵀ (spectrum geometric between ``curvature``) and random SPD
    matrices G_k with the same spectrum,

        H_k = (1 − η_H) H0 + η_H G_k,                  η_H = ``hessian_heterogeneity`` ∈ [0, 1]
        R_k = σ² [(1 − η_R) R0 + η_R W_k],             η_R = ``noise_heterogeneity`` ∈ [0, 1]
        d_k = ζ (z_k − z̄) / rms_k‖z_k − z̄‖,            ζ = ``gradient_heterogeneity`` ≥ 0

    so η = 0 gives identical agents, (1/K) Σ_k ‖d_k‖² = ζ², and Tr R0 = Tr W_k = d σ².
    """
    K = positive_int(n_agents, "n_agents")
    d = positive_int(dim, "dim")
    for name, val in (
        ("hessian_heterogeneity", hessian_heterogeneity),
        ("noise_heterogeneity", noise_heterogeneity),
    ):
        if not 0.0 <= float(val) <= 1.0:
            raise InvalidInputError(f"{name} must lie in [0, 1]; got {val!r}")
    if gradient_heterogeneity < 0:
        raise InvalidInputError(
            f"gradient_heterogeneity must be >= 0; got {gradient_heterogeneity!r}"
        )
    try:
        lo, hi = (float(c) for c in curvature)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"curvature must be a pair (low, high) of numbers; got {curvature!r}"
        ) from None
    if not 0 < lo <= hi:
        raise InvalidInputError(
            f"curvature must be (low, high) with 0 < low <= high; got {curvature}"
        )
    sigma2 = positive_float(noise_level, "noise_level") if noise_level != 0 else 0.0
    rng = np.random.default_rng(seed)
    spec = _spectrum(lo, hi, d)
    H0 = _random_spd(rng, 1, d, spec)[0]
    G = _random_spd(rng, K, d, spec)
    H = (1 - hessian_heterogeneity) * H0[None] + hessian_heterogeneity * G
    noise_spec = rng.uniform(0.5, 1.5, d)
    noise_spec *= d / noise_spec.sum()
    R0 = _random_spd(rng, 1, d, noise_spec)[0]
    W = _random_spd(rng, K, d, noise_spec)
    R = sigma2 * ((1 - noise_heterogeneity) * R0[None] + noise_heterogeneity * W)
    z = rng.standard_normal((K, d))
    z -= z.mean(axis=0)
    rms = np.sqrt((z**2).sum(axis=1).mean())
    grads = gradient_heterogeneity * z / rms if K > 1 and rms > 0 else np.zeros((K, d))
    grads -= grads.mean(axis=0)
    return QuadraticNetwork(H, grads, R, batch_size)


def homogeneous_quadratic_network(
    n_agents: int,
    dim: int,
    *,
    seed: int | np.random.SeedSequence = 0,
    curvature: tuple[float, float] = (0.2, 1.0),
    noise_level: float = 1.0,
    batch_size: int = 1,
) -> QuadraticNetwork:
    """Identical agents: H_k = H0, R_k = σ² R0, d_k = 0 (see ``random_quadratic_network``)."""
    return random_quadratic_network(
        n_agents,
        dim,
        seed=seed,
        curvature=curvature,
        noise_level=noise_level,
        batch_size=batch_size,
    )
