"""Nonconvex test landscapes with a sharp and a flat basin, and heterogeneous agent versions.

Landscape [M] (a model built here, not from the paper). Two isotropic Gaussian wells on the
axis e_1 of R^d (d = ``dim``), sharp at c_s = 0 and flat at c_f = L e_1 (L = ``separation``),
plus a weak quadratic confinement centred midway, c_0 = (L/2) e_1:

    J(w) = − D_s exp(−‖w − c_s‖² / (2 s_s²)) − D_f exp(−‖w − c_f‖² / (2 s_f²)) + (κ/2)‖w − c_0‖²

    ∇J(w)  = Σ_j (D_j / s_j²) e_j(w) (w − c_j) + κ (w − c_0),   e_j(w) = exp(−‖w − c_j‖²/(2 s_j²))
    ∇²J(w) = Σ_j (D_j / s_j²) e_j(w) [I − (w − c_j)(w − c_j)ᵀ / s_j²] + κ I

(D = depth, s = width, κ = ``confinement``). At the centre a well alone has curvature D/s²;
"sharp" means D_s/s_s² > D_f/s_f². By symmetry the minima and the saddle between them lie on
the axis: they are found by a root search of ∂J/∂w_1 along it, then J and ∇²J are exact.

Sharp basin. "Outside the sharp basin" is the half-space beyond the saddle w_b across the well
axis: (w − w_s)·e_1 > (w_b − w_s)·e_1. In 1-D this is exactly having crossed the barrier; in 2-D
it is the hyperplane through the saddle normal to the axis (an approximation of the separatrix,
used because it is cheap and unambiguous). The barrier height is ΔJ = J(w_b) − J(w_s).

Agents [M]. Agent k holds J_k(w) = J(w) + b_kᵀ (w − w_s) with Σ_k b_k = 0, so the aggregate
(1/K) Σ_k J_k = J is unchanged and every agent has the *same* Hessian. With b_k = −H_s δ_k
(H_s = ∇²J(w_s)), agent k's local quadratic model around w_s has its minimum at w_s + δ_k:
δ_k are the per-agent shifts of the minimum (``shifts``, zero mean). Gradient noise is
additive Gaussian, s_k ~ N(0, σ_k² I / B), independent across agents and steps
(``noise_levels`` σ_k, batch B).

Local quadratic model [R] (shared/research/flatness_tradeoff.md §3.1, short-term model):
around w_s the network is the ``QuadraticNetwork`` with H_k = H_s, d_k = ∇J_k(w_s) = b_k and
R_k = σ_k² I, so ``theory.predict`` (EE_n, escape time) and ``numerics.moments`` apply to it
unchanged (``LandscapeNetwork.local_network``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.optimize

from numerics._validate import as_float_array, positive_float, positive_int
from numerics.errors import InvalidInputError
from numerics.problems import QuadraticNetwork

BASINS = ("sharp", "flat")


@dataclass(frozen=True)
class Critical:
    """A critical point on the well axis: position (d,), loss value and Hessian (d, d)."""

    point: np.ndarray
    value: float
    hessian: np.ndarray


@dataclass(frozen=True, eq=False)
class TwoWellLandscape:
    """J(w) with a sharp well at 0 and a flat well at ``separation`` e_1 (see module doc).

    Parameters
    ----------
    dim : d >= 1 (1 and 2 are the intended cases).
    sharp_depth, sharp_width : D_s > 0, s_s > 0.
    flat_depth, flat_width : D_f > 0, s_f > 0, with D_s/s_s² > D_f/s_f².
    separation : L > 0, distance between the well centres.
    confinement : κ >= 0, curvature of the confining quadratic.
    """

    dim: int = 1
    sharp_depth: float = 1.0
    sharp_width: float = 0.15
    flat_depth: float = 1.0
    flat_width: float = 0.8
    separation: float = 2.5
    confinement: float = 0.05

    def __post_init__(self) -> None:
        object.__setattr__(self, "dim", positive_int(self.dim, "dim"))
        for name in ("sharp_depth", "sharp_width", "flat_depth", "flat_width", "separation"):
            object.__setattr__(self, name, positive_float(getattr(self, name), name))
        kappa = float(self.confinement)
        if not (np.isfinite(kappa) and kappa >= 0):
            raise InvalidInputError(
                f"confinement must be a finite number >= 0; got {self.confinement!r}"
            )
        object.__setattr__(self, "confinement", kappa)
        h_s = self.sharp_depth / self.sharp_width**2
        h_f = self.flat_depth / self.flat_width**2
        if h_s <= h_f:
            raise InvalidInputError(
                f"the sharp well must be sharper: sharp_depth/sharp_width² = {h_s:.4g} must "
                f"exceed flat_depth/flat_width² = {h_f:.4g}"
            )
        self.critical_points  # noqa: B018 - raises if there is no barrier

    # ---- loss, gradient, Hessian ---------------------------------------------------------
    @cached_property
    def _wells(self) -> tuple[tuple[np.ndarray, float, float], ...]:
        """(centre, depth, width) of each well."""
        c_f = np.zeros(self.dim)
        c_f[0] = self.separation
        return (
            (np.zeros(self.dim), self.sharp_depth, self.sharp_width),
            (c_f, self.flat_depth, self.flat_width),
        )

    @cached_property
    def _centre(self) -> np.ndarray:
        c0 = np.zeros(self.dim)
        c0[0] = self.separation / 2
        return c0

    def _points(self, points) -> np.ndarray:
        w = np.asarray(points, dtype=float)
        if w.ndim == 0 or w.shape[-1] != self.dim:
            raise InvalidInputError(
                f"points must have shape (..., {self.dim}) (last axis = dim); got {w.shape}"
            )
        return w

    def value_and_gradient(self, points) -> tuple[np.ndarray, np.ndarray]:
        """(J(w), ∇J(w)) for points of shape (..., d): shapes (...,) and (..., d)."""
        w = self._points(points)
        shifted = w - self._centre
        value = 0.5 * self.confinement * np.einsum("...i,...i->...", shifted, shifted)
        grad = self.confinement * shifted
        for c, depth, width in self._wells:
            diff = w - c
            e = np.exp(np.einsum("...i,...i->...", diff, diff) * (-0.5 / width**2))
            value = value - depth * e
            grad = grad + (depth / width**2) * e[..., None] * diff
        return value, grad

    def loss(self, points) -> np.ndarray:
        """J(w) for points of shape (..., d)."""
        return self.value_and_gradient(points)[0]

    def gradient(self, points) -> np.ndarray:
        """∇J(w) for points of shape (..., d)."""
        return self.value_and_gradient(points)[1]

    def hessian(self, points) -> np.ndarray:
        """∇²J(w) for points of shape (..., d): shape (..., d, d)."""
        w = self._points(points)
        eye = np.eye(self.dim)
        out = np.broadcast_to(self.confinement * eye, (*w.shape[:-1], self.dim, self.dim)).copy()
        for c, depth, width in self._wells:
            diff = w - c
            e = np.exp(np.einsum("...i,...i->...", diff, diff) * (-0.5 / width**2))
            outer = diff[..., :, None] * diff[..., None, :] / width**2
            out += (depth / width**2) * e[..., None, None] * (eye - outer)
        return out

    # ---- critical points on the axis -----------------------------------------------------
    def _axis_slope(self, x: float | np.ndarray) -> np.ndarray:
        x = np.atleast_1d(np.asarray(x, dtype=float))
        pts = np.zeros((x.size, self.dim))
        pts[:, 0] = x
        return self.gradient(pts)[:, 0]

    @cached_property
    def critical_points(self) -> dict[str, Critical]:
        """The sharp minimum, the saddle (barrier) and the flat minimum, on the axis.

        Sign changes of ∂J/∂w_1 on a fine grid, refined by ``brentq``; the sharp minimum is the
        minimum nearest 0 (within one sharp width), the saddle and the flat minimum the next
        maximum and minimum towards the flat well.
        """
        lo = -4 * self.sharp_width
        hi = self.separation + 4 * self.flat_width
        grid = np.linspace(lo, hi, 20001)
        slope = self._axis_slope(grid)
        roots, kinds = [], []
        for i in np.flatnonzero(np.sign(slope[:-1]) != np.sign(slope[1:])):
            if slope[i] == 0:
                x = grid[i]
            else:
                x = scipy.optimize.brentq(lambda t: self._axis_slope(t)[0], grid[i], grid[i + 1],
                                          xtol=1e-14, rtol=1e-14)  # fmt: skip
            roots.append(x)
            kinds.append("min" if slope[i] < 0 else "max")
        mins = [x for x, k in zip(roots, kinds, strict=True) if k == "min"]
        sharp = [x for x in mins if abs(x) <= self.sharp_width]
        if not sharp:
            raise InvalidInputError(
                "the sharp well has no minimum near its centre (the flat well or the "
                f"confinement swamps it); got separation={self.separation:g}, "
                f"sharp_depth={self.sharp_depth:g}, flat_width={self.flat_width:g}"
            )
        x_s = min(sharp, key=abs)
        maxima = [x for x, k in zip(roots, kinds, strict=True) if k == "max" and x > x_s]
        after = [x for x in mins if x > x_s]
        if not maxima or not after or min(after) < min(maxima):
            raise InvalidInputError(
                f"no barrier between the wells: separation={self.separation:g} is too small for "
                f"widths sharp_width={self.sharp_width:g}, flat_width={self.flat_width:g} "
                "(increase separation or decrease the widths)"
            )
        x_b = min(maxima)
        x_f = min(x for x in after if x > x_b)
        out = {}
        for name, x in (("sharp", x_s), ("saddle", x_b), ("flat", x_f)):
            p = np.zeros(self.dim)
            p[0] = x
            out[name] = Critical(p, float(self.loss(p)), self.hessian(p))
        return out

    def minimum(self, basin: str = "sharp") -> Critical:
        """The minimum of the ``basin`` ('sharp' or 'flat')."""
        if basin not in BASINS:
            raise InvalidInputError(f"basin={basin!r} is not known; allowed: {', '.join(BASINS)}")
        return self.critical_points[basin]

    @property
    def saddle(self) -> Critical:
        """The saddle (1-D: the barrier top) between the two minima."""
        return self.critical_points["saddle"]

    @property
    def barrier_height(self) -> float:
        """ΔJ = J(w_b) − J(w_s), the loss increase needed to leave the sharp basin."""
        return self.saddle.value - self.minimum("sharp").value

    @property
    def barrier_distance(self) -> float:
        """(w_b − w_s)·e_1, the distance from the sharp minimum to the barrier along the axis."""
        return float(self.saddle.point[0] - self.minimum("sharp").point[0])

    @property
    def sharpness(self) -> float:
        """Tr ∇²J(w_s), the trace of the Hessian at the sharp minimum."""
        return float(np.trace(self.minimum("sharp").hessian))

    def outside_sharp_basin(self, points) -> np.ndarray:
        """Boolean (...,): the point lies beyond the saddle along the axis (module doc)."""
        return self._points(points)[..., 0] > self.saddle.point[0]


@dataclass(frozen=True, eq=False)
class LandscapeNetwork:
    """K agents on a ``TwoWellLandscape``: tilts b_k = −H_s δ_k and noise σ_k (module doc).

    Parameters
    ----------
    landscape : the shared landscape J.
    shifts : (K, d) per-agent shifts δ_k of the local minimum, averaging to zero, each shorter
        than the barrier distance.
    noise_levels : (K,) per-agent gradient-noise standard deviations σ_k >= 0 (per sample).
    batch_size : B >= 1; the noise covariance is σ_k² I / B.
    """

    landscape: TwoWellLandscape
    shifts: np.ndarray
    noise_levels: np.ndarray
    batch_size: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.landscape, TwoWellLandscape):
            raise InvalidInputError(
                f"landscape must be a TwoWellLandscape; got {type(self.landscape).__name__}"
            )
        d = self.landscape.dim
        shifts = as_float_array(self.shifts, "shifts", 2)
        K = shifts.shape[0]
        if K < 1 or shifts.shape[1] != d:
            raise InvalidInputError(
                f"shifts must have shape (n_agents, {d}) with n_agents >= 1; got {shifts.shape}"
            )
        scale = max(float(np.abs(shifts).max()), 1.0)
        if np.abs(shifts.mean(axis=0)).max() > 1e-9 * scale:
            raise InvalidInputError(
                "shifts must average to zero over agents (the aggregate minimum stays at the "
                f"sharp minimum); their mean is {shifts.mean(axis=0)}"
            )
        reach = float(np.linalg.norm(shifts, axis=1).max())
        if reach >= self.landscape.barrier_distance:
            raise InvalidInputError(
                f"shifts must be shorter than the barrier distance "
                f"{self.landscape.barrier_distance:.4g}; the longest has length {reach:.4g}"
            )
        sigma = as_float_array(self.noise_levels, "noise_levels", 1)
        if sigma.shape != (K,) or np.any(sigma < 0):
            raise InvalidInputError(
                f"noise_levels must be {K} numbers >= 0 (one per agent); got {sigma.tolist()}"
            )
        object.__setattr__(self, "shifts", shifts)
        object.__setattr__(self, "noise_levels", sigma)
        object.__setattr__(self, "batch_size", positive_int(self.batch_size, "batch_size"))
        for arr in (shifts, sigma):
            arr.setflags(write=False)

    @property
    def n_agents(self) -> int:
        """K, the number of agents."""
        return self.shifts.shape[0]

    @property
    def dim(self) -> int:
        """d, the dimension of the model."""
        return self.landscape.dim

    @cached_property
    def tilts(self) -> np.ndarray:
        """b_k = −H_s δ_k, shape (K, d); Σ_k b_k = 0."""
        b = -self.shifts @ self.landscape.minimum("sharp").hessian.T
        b = b - b.mean(axis=0)
        b.setflags(write=False)
        return b

    @property
    def start(self) -> np.ndarray:
        """The sharp minimum w_s, where every agent starts."""
        return self.landscape.minimum("sharp").point

    def agent_losses(self, points) -> np.ndarray:
        """J_k(w_k) for points of shape (..., K, d) (agent axis second to last): (..., K)."""
        w = np.asarray(points, dtype=float)
        return self.landscape.loss(w) + np.einsum("...ki,ki->...k", w - self.start, self.tilts)

    def agent_gradients(self, points) -> np.ndarray:
        """∇J_k(w_k) = ∇J(w_k) + b_k for points of shape (..., K, d)."""
        return self.landscape.gradient(points) + self.tilts

    def noise_covariances(self) -> np.ndarray:
        """R_k = σ_k² I (per sample), shape (K, d, d)."""
        return self.noise_levels[:, None, None] ** 2 * np.eye(self.dim)[None]

    def local_network(self, basin: str = "sharp") -> QuadraticNetwork:
        """The local quadratic model at the ``basin`` minimum: H_k = ∇²J(w_min) for all k,
        d_k = b_k + ∇J(w_min) (= b_k: ∇J vanishes there), R_k = σ_k² I, batch B.

        At the flat minimum the tilts b_k = −H_s δ_k keep their value (they are linear terms),
        so the agents' own minima are shifted there by −H_f⁻¹ b_k instead of δ_k.
        """
        crit = self.landscape.minimum(basin)
        K = self.n_agents
        return QuadraticNetwork(
            np.repeat(crit.hessian[None], K, axis=0),
            np.asarray(self.tilts),
            self.noise_covariances(),
            self.batch_size,
        )


def two_well_network(
    n_agents: int,
    *,
    dim: int = 1,
    shift: float = 0.0,
    noise_level: float = 1.0,
    noise_heterogeneity: float = 0.0,
    batch_size: int = 1,
    seed: int = 0,
    **landscape: float,
) -> LandscapeNetwork:
    """A heterogeneous network on ``TwoWellLandscape(dim, **landscape)``.

    Shifts: δ_k = ``shift`` · (u_k − ū)/rms‖u_k − ū‖ with u_k standard normal (seeded), so
    the root-mean-square shift is ``shift``. Noise: σ_k = σ (1 + η v_k), v_k uniform on
    [−1, 1] rescaled so that mean σ_k² = σ² (η = ``noise_heterogeneity`` ∈ [0, 1)).
    """
    K = positive_int(n_agents, "n_agents")
    land = TwoWellLandscape(dim=dim, **landscape)
    if not (np.isfinite(shift) and shift >= 0):
        raise InvalidInputError(f"shift must be a finite number >= 0; got {shift!r}")
    if not (np.isfinite(noise_level) and noise_level >= 0):
        raise InvalidInputError(f"noise_level must be a finite number >= 0; got {noise_level!r}")
    if not 0 <= noise_heterogeneity < 1:
        raise InvalidInputError(
            f"noise_heterogeneity must lie in [0, 1); got {noise_heterogeneity!r}"
        )
    rng = np.random.default_rng(positive_int(seed, "seed", minimum=0))
    u = rng.standard_normal((K, land.dim))
    u -= u.mean(axis=0)
    rms = float(np.sqrt((u**2).sum(axis=1).mean()))
    shifts = shift * u / rms if K > 1 and rms > 0 else np.zeros((K, land.dim))
    shifts -= shifts.mean(axis=0)
    sigma = 1 + noise_heterogeneity * rng.uniform(-1, 1, K)
    sigma *= noise_level / np.sqrt(np.mean(sigma**2))
    return LandscapeNetwork(land, shifts, sigma, batch_size)
