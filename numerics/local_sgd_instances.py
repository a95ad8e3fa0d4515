"""Oracles and hard instances for local SGD versus minibatch SGD.

Oracles implement ``numerics.local_sgd.StochasticOracle``:

- ``QuadraticOracle``: F_m(x) = ½ xᵀA_m x − b_mᵀx (+ const), ∇f_m(x; z) = A_m x − b_m + s ⊙ z
  with z standard normal or Rademacher per coordinate (x-independent additive noise, variance
  σ² = Σ_i s_i²). Excess F(x) − F* = ½(x − x*)ᵀĀ(x − x*), Ā = mean A_m (exact).
- ``IterateBiasOracle``: GLB-hom of the note §8.2 ([M], reconstructed there, not Glasgow et
  al.'s construction): F(x) = (μ_1/2)(x_1 − B)² + h(x_2), h(u) = (H/2)u² for u ≥ 0 and
  (ρH/2)u² for u < 0, ∇f = ∇F + (0, σz), z = ±1; the same on every machine.

Instances (note §3 and §8, tags there): the two-machine example of (c) eq. (7) [V], the
rank-one construction of (c) Prop. 7 / App. B.3 [V], the chain of (c) Lemma 24 [V], the
five-machine fixed-point example of (c) Figs. 1–2 [V], GLB-hom and GLB-het [M], and the
equal-Hessian heterogeneous quadratics of check 9. Exact local GD (σ = 0) on quadratics,
round by round, and the fixed point of (c) Prop. 19 [V] are in ``local_gd_rounds`` and
``local_gd_fixed_point``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from numerics._validate import (
    as_float_array,
    check_psd,
    check_symmetric,
    positive_float,
    positive_int,
)
from numerics.errors import InvalidInputError

NOISE_LAWS = ("gaussian", "rademacher")


def _draw(law: str, gen: np.random.Generator, out: np.ndarray) -> None:
    if law == "gaussian":
        gen.standard_normal(out=out)
    else:
        out[...] = gen.integers(0, 2, size=out.shape, dtype=np.int8)
        out *= 2.0
        out -= 1.0


# ---- quadratic oracle ------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class QuadraticOracle:
    """F_m(x) = ½ xᵀ A_m x − b_mᵀ x; gradient noise s ⊙ z, z i.i.d. per coordinate.

    ``hessians`` (M, d, d) symmetric PSD with positive-definite mean; ``linear`` (M, d) the
    b_m; ``noise_std`` (d,) the s_i (all zero: deterministic); ``noise`` 'gaussian' or
    'rademacher'. Diagonal Hessians take an elementwise fast path.
    """

    hessians: np.ndarray
    linear: np.ndarray
    noise_std: np.ndarray | float = 0.0
    noise: str = "gaussian"
    diagonal: bool = field(init=False, repr=False)
    optimum: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        A = as_float_array(self.hessians, "hessians", 3)
        b = as_float_array(self.linear, "linear", 2)
        M, d = A.shape[0], A.shape[1]
        if M < 1 or A.shape != (M, d, d):
            raise InvalidInputError(
                f"hessians must have shape (n_machines, dim, dim); got {A.shape}"
            )
        if b.shape != (M, d):
            raise InvalidInputError(
                f"linear must have shape {(M, d)} to match hessians; got {b.shape}"
            )
        check_symmetric(A, "hessians")
        check_psd(A, "hessians")
        s = np.broadcast_to(np.asarray(self.noise_std, dtype=float), (d,)).copy()
        if not np.all(np.isfinite(s)) or np.any(s < 0):
            raise InvalidInputError(f"noise_std must be finite and >= 0; got {self.noise_std!r}")
        if self.noise not in NOISE_LAWS:
            raise InvalidInputError(f"noise={self.noise!r}; allowed: {', '.join(NOISE_LAWS)}")
        Abar = A.mean(axis=0)
        if np.linalg.eigvalsh(Abar)[0] <= 1e-14 * max(np.abs(Abar).max(), 1.0):
            raise InvalidInputError("the mean of the hessians must be positive definite")
        diag = bool(np.all(A == np.einsum("mii->mi", A)[:, :, None] * np.eye(d)))
        for name, value in (("hessians", A), ("linear", b), ("noise_std", s)):
            value.setflags(write=False)
            object.__setattr__(self, name, value)
        object.__setattr__(self, "diagonal", diag)
        object.__setattr__(self, "optimum", np.linalg.solve(Abar, b.mean(axis=0)))
        object.__setattr__(self, "_diag", np.einsum("mii->mi", A).copy() if diag else None)

    @classmethod
    def from_optima(cls, hessians, optima, noise_std=0.0, noise: str = "gaussian"):
        """F_m(x) = ½(x − x*_m)ᵀA_m(x − x*_m): b_m = A_m x*_m."""
        A = as_float_array(hessians, "hessians", 3)
        xs = as_float_array(optima, "optima", 2)
        if xs.shape != A.shape[:2]:
            raise InvalidInputError(f"optima must have shape {A.shape[:2]}; got {xs.shape}")
        return cls(A, np.einsum("mij,mj->mi", A, xs), noise_std, noise)

    # protocol
    @property
    def n_machines(self) -> int:
        return self.hessians.shape[0]

    @property
    def dim(self) -> int:
        return self.hessians.shape[1]

    @property
    def noise_shape(self) -> tuple[int, ...]:
        return (self.dim,) if np.any(self.noise_std > 0) else (0,)

    noise_dtype = np.float64

    def draw(self, gen: np.random.Generator, out: np.ndarray) -> None:
        """Fill ``out`` (n, M, d) with standard draws of the noise law."""
        _draw(self.noise, gen, out)

    def gradient(self, x: np.ndarray, noise: np.ndarray, out: np.ndarray) -> np.ndarray:
        """A_m x − b_m + s ⊙ z for x (..., n, M, d) and z (n, M, d)."""
        if self.diagonal:
            np.multiply(x, self._diag, out=out)
        else:  # one GEMM per machine: (…, n, d) @ A_m (A_m symmetric)
            A = self.hessians.reshape((self.n_machines,) + (1,) * (x.ndim - 3) + (self.dim,) * 2)
            np.matmul(np.moveaxis(x, -2, 0), A, out=np.moveaxis(out, -2, 0))
        out -= self.linear
        if noise.size:
            out += noise * self.noise_std
        return out

    def excess(self, x: np.ndarray) -> np.ndarray:
        """½ (x − x*)ᵀ Ā (x − x*) for x (..., d)."""
        e = np.asarray(x) - self.optimum
        return 0.5 * np.einsum("...i,ij,...j->...", e, self.mean_hessian, e)

    def restrict(self, n_machines: int) -> QuadraticOracle:
        return QuadraticOracle(
            self.hessians[:n_machines], self.linear[:n_machines], self.noise_std, self.noise
        )

    # problem constants
    @property
    def mean_hessian(self) -> np.ndarray:
        """Ā = (1/M) Σ_m A_m."""
        return self.hessians.mean(axis=0)

    @property
    def smoothness(self) -> float:
        """H = max_m λ_max(A_m)."""
        return float(np.linalg.eigvalsh(self.hessians)[:, -1].max())

    @property
    def strong_convexity(self) -> float:
        """μ = λ_min(Ā)."""
        return float(np.linalg.eigvalsh(self.mean_hessian)[0])

    @property
    def machine_strong_convexity(self) -> float:
        """μ = min_m λ_min(A_m) (μI ⪯ A_m for every m, as in (c) §5)."""
        return float(np.linalg.eigvalsh(self.hessians)[:, 0].min())

    @property
    def sigma(self) -> float:
        """σ with E‖ξ‖² = σ² (both laws have unit variance per coordinate)."""
        return float(np.sqrt(np.sum(self.noise_std**2)))

    @property
    def local_gradients_at_optimum(self) -> np.ndarray:
        """∇F_m(x*) = A_m x* − b_m, shape (M, d)."""
        return np.einsum("mij,j->mi", self.hessians, self.optimum) - self.linear

    @property
    def zeta_star(self) -> float:
        """ζ⋆ = ((1/M) Σ_m ‖∇F_m(x*)‖²)^{1/2} ((c) Assumption 1)."""
        return float(np.sqrt(np.mean(np.sum(self.local_gradients_at_optimum**2, axis=1))))

    @property
    def tau(self) -> float:
        """τ = max_{m,n} ‖A_m − A_n‖₂ ((c) Assumption 3)."""
        diff = self.hessians[:, None] - self.hessians[None, :]
        return float(np.abs(np.linalg.eigvalsh(diff)).max())

    @property
    def local_optima(self) -> np.ndarray:
        """x*_m = A_m⁻¹ b_m (needs invertible A_m)."""
        return np.linalg.solve(self.hessians, self.linear[..., None])[..., 0]

    def with_noise(self, noise_std, noise: str | None = None) -> QuadraticOracle:
        """The same functions with another noise."""
        return QuadraticOracle(self.hessians, self.linear, noise_std, noise or self.noise)


# ---- GLB-hom -------------------------------------------------------------------------------
@dataclass(frozen=True)
class IterateBiasOracle:
    """GLB-hom ([M], note §8.2): (μ_1/2)(x_1 − B)² + h(x_2) with asymmetric curvature on x_2.

    h(u) = (H/2)u² (u ≥ 0), (ρH/2)u² (u < 0), ρ = 1/4 by default: convex and H-smooth;
    noise ±σ on x_2 only (Rademacher); x* = (B, 0), F* = 0. ``glb_hom`` sets
    μ_1 = (Hσ²/(B²KR²))^{1/3} so that μ_1B² is the iterate-bias term of the bounds.
    """

    n_machines: int
    mu1: float
    smoothness: float = 1.0
    distance: float = 1.0
    sigma: float = 1.0
    rho: float = 0.25

    dim = 2
    noise_shape = (1,)
    noise_dtype = np.float64

    def __post_init__(self) -> None:
        positive_int(self.n_machines, "n_machines")
        for name in ("mu1", "smoothness", "distance", "sigma", "rho"):
            positive_float(getattr(self, name), name)
        if self.rho > 1:
            raise InvalidInputError(f"rho must lie in (0, 1]; got {self.rho!r}")

    def draw(self, gen: np.random.Generator, out: np.ndarray) -> None:
        _draw("rademacher", gen, out)

    def gradient(self, x: np.ndarray, noise: np.ndarray, out: np.ndarray) -> np.ndarray:
        np.subtract(x[..., 0], self.distance, out=out[..., 0])
        out[..., 0] *= self.mu1
        u, o = x[..., 1], out[..., 1]
        np.minimum(u, 0.0, out=o)  # H (u − (1 − ρ) min(u, 0)) + σ z
        o *= -(1.0 - self.rho)
        o += u
        o *= self.smoothness
        o += self.sigma * noise[..., 0]
        return out

    def excess(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        u = x[..., 1]
        curv = np.where(u >= 0, self.smoothness, self.rho * self.smoothness)
        return 0.5 * self.mu1 * (x[..., 0] - self.distance) ** 2 + 0.5 * curv * u**2

    def restrict(self, n_machines: int) -> IterateBiasOracle:
        return replace(self, n_machines=n_machines)

    @property
    def optimum(self) -> np.ndarray:
        return np.array([self.distance, 0.0])


# ---- instances -----------------------------------------------------------------------------
def glb_hom(
    n_machines: int,
    local_steps: int,
    rounds: int,
    *,
    smoothness: float = 1.0,
    distance: float = 1.0,
    sigma: float = 1.0,
    rho: float = 0.25,
) -> IterateBiasOracle:
    """GLB-hom with μ_1 = (Hσ²/(B²KR²))^{1/3} ([M], note §8.2)."""
    K, R = positive_int(local_steps, "local_steps"), positive_int(rounds, "rounds")
    H, Bd, s = (
        positive_float(v, n)
        for v, n in ((smoothness, "smoothness"), (distance, "distance"), (sigma, "sigma"))
    )
    mu1 = (H * s**2 / (Bd**2 * K * R**2)) ** (1.0 / 3.0)
    return IterateBiasOracle(n_machines, mu1, H, Bd, s, rho)


def glb_het(
    n_machines: int,
    rounds: int,
    zeta: float,
    *,
    smoothness: float = 1.0,
    distance: float = 1.0,
    equal_hessians: bool = False,
) -> QuadraticOracle:
    """GLB-het ([M], note §8.2), σ = 0, M even.

    Every machine has (μ_1/2)(x_1 − B)², μ_1 = (Hζ⋆²/(B²R²))^{1/3}; on x_2 half the machines
    have (H/2)(x_2 − ζ⋆/H)² and half (H/8)(x_2 + 4ζ⋆/H)² (τ = 3H/4), so x*_2 = 0 and
    ‖∇F_m(x*)‖ = ζ⋆ exactly. ``equal_hessians``: both halves (H/2)(x_2 ∓ ζ⋆/H)² (τ = 0).
    """
    M = positive_int(n_machines, "n_machines")
    if M % 2:
        raise InvalidInputError(f"n_machines must be even for GLB-het; got {M}")
    R = positive_int(rounds, "rounds")
    z, H, Bd = (
        positive_float(zeta, "zeta"),
        positive_float(smoothness, "smoothness"),
        positive_float(distance, "distance"),
    )
    mu1 = (H * z**2 / (Bd**2 * R**2)) ** (1.0 / 3.0)
    half = M // 2
    second = np.array([H] * half + [H if equal_hessians else H / 4] * half)
    opt2 = np.array([z / H] * half + ([-z / H] if equal_hessians else [-4 * z / H]) * half)
    hess = np.zeros((M, 2, 2))
    hess[:, 0, 0], hess[:, 1, 1] = mu1, second
    optima = np.column_stack([np.full(M, Bd), opt2])
    return QuadraticOracle.from_optima(hess, optima)


def two_machine(x_star, *, smoothness: float = 1.0) -> QuadraticOracle:
    """(c) eq. (7) [V]: F_1 = (H/2)(x[1] − x*[1])², F_2 = (H/2)(x[2] − x*[2])², σ = 0."""
    xs = as_float_array(x_star, "x_star", 1)
    if xs.shape != (2,):
        raise InvalidInputError(f"x_star must have shape (2,); got {xs.shape}")
    H = positive_float(smoothness, "smoothness")
    hess = np.zeros((2, 2, 2))
    hess[0, 0, 0] = hess[1, 1, 1] = H
    return QuadraticOracle.from_optima(hess, np.stack([xs, xs]))


def rank_one(
    rounds: int,
    *,
    smoothness: float = 1.0,
    distance: float = 1.0,
    n_machines: int = 2,
    kappa_per_round: float = 2.0,
) -> QuadraticOracle:
    """(c) Prop. 7 / App. B.3 [V]: F_m = (H/2)(x − x*)ᵀA_i(x − x*), A_1 = diag(1, 0) for even
    m (1-based), A_2 = vvᵀ, v = (α, √(1 − α²)) for odd m; α solved so that κ(A) = 2R
    (``kappa_per_round``·R) for A = (1 − a)A_1 + aA_2; x* = −B(v_1 + v_2)/√2 with v_1, v_2
    the top and bottom eigenvectors of A. σ = ζ⋆ = 0."""
    R = positive_int(rounds, "rounds")
    M = positive_int(n_machines, "n_machines", minimum=2)
    H, Bd = positive_float(smoothness, "smoothness"), positive_float(distance, "distance")
    kappa = positive_float(kappa_per_round, "kappa_per_round") * R
    odd = np.arange(1, M + 1) % 2 == 1
    a = odd.mean()
    alpha = np.sqrt(1 - kappa / ((1 + kappa) ** 2 * a * (1 - a)))
    v = np.array([alpha, np.sqrt(1 - alpha**2)])
    A1, A2 = np.diag([1.0, 0.0]), np.outer(v, v)
    A = (1 - a) * A1 + a * A2
    _, vecs = np.linalg.eigh(A)
    x_star = -Bd * (vecs[:, 1] + vecs[:, 0]) / np.sqrt(2)
    hess = H * np.where(odd[:, None, None], A2, A1)
    return QuadraticOracle.from_optima(hess, np.tile(x_star, (M, 1)))


def chain(
    rounds: int,
    *,
    smoothness: float = 1.0,
    distance: float = 1.0,
    dim: int | None = None,
    n_machines: int = 2,
) -> QuadraticOracle:
    """(c) Lemma 24 / eqs. (18)–(20) [V], σ = 0, q = 1 − 1/R, d = 6R by default.

    Even m (1-based): (H/2)[(q² + 1)(cq − x_1)² + Σ_i (q x_{2i} − x_{2i+1})²]; odd m:
    (H/2) Σ_i (q x_{2i−1} − x_{2i})² (coordinates 1-based). x*_i = c qⁱ with c chosen so that
    ‖x*‖ = B; every F_m vanishes at x*, so ζ⋆ = 0. Each F_m is H(1 + q²)-smooth (≤ 2H).
    """
    R = positive_int(rounds, "rounds", minimum=2)
    M = positive_int(n_machines, "n_machines", minimum=2)
    if M % 2:
        raise InvalidInputError(f"n_machines must be even for the chain; got {M}")
    d = positive_int(6 * R if dim is None else dim, "dim", minimum=2)
    H, Bd = positive_float(smoothness, "smoothness"), positive_float(distance, "distance")
    q = 1.0 - 1.0 / R
    powers = q ** np.arange(1, d + 1)
    scale = Bd / np.linalg.norm(powers)

    def pair(i: int, j: int) -> np.ndarray:  # (q e_i − e_j)(q e_i − e_j)ᵀ, 0-based
        u = np.zeros(d)
        u[i], u[j] = q, -1.0
        return np.outer(u, u)

    even = (q**2 + 1) * np.outer(np.eye(d)[0], np.eye(d)[0])
    even += sum((pair(2 * i - 1, 2 * i) for i in range(1, (d - 1) // 2 + 1)), np.zeros((d, d)))
    odd = sum((pair(2 * i - 2, 2 * i - 1) for i in range(1, d // 2 + 1)), np.zeros((d, d)))
    b_even = np.zeros(d)
    b_even[0] = (q**2 + 1) * scale * q
    is_odd = np.arange(1, M + 1) % 2 == 1
    hess = H * np.where(is_odd[:, None, None], odd, even)
    lin = H * np.where(is_odd[:, None], 0.0, b_even)
    return QuadraticOracle(hess, lin)


#: (c) Figs. 1–2 / fixed_point.py [V]: A_m diagonals and local optima.
FIXED_POINT_HESSIANS = ((1.0, 2.0), (1.0, 1.0), (6.0, 1.0), (4.0, 1.0), (3.0, 5.0))
FIXED_POINT_OPTIMA = ((5.0, 5.0), (15.0, 5.0), (15.0, 10.0), (10.0, 20.0), (5.0, 15.0))


def fixed_point_example(shrink: float = 1.0) -> QuadraticOracle:
    """The five-machine example of (c) Figs. 1–2 [V]: x* = (11, 12), mean of optima (10, 11),
    μ = 1, H = 6. ``shrink`` moves the local optima toward (10, 11) by that factor (note §12
    check 6 uses 0.01, giving x* = (10.01, 11.01))."""
    s = float(shrink)
    if not np.isfinite(s) or s < 0:
        raise InvalidInputError(f"shrink must be finite and >= 0; got {shrink!r}")
    opt = np.array(FIXED_POINT_OPTIMA)
    centre = opt.mean(axis=0)
    hess = np.stack([np.diag(h) for h in FIXED_POINT_HESSIANS])
    return QuadraticOracle.from_optima(hess, centre + s * (opt - centre))


def shared_hessian(
    n_machines: int,
    dim: int,
    zeta: float,
    *,
    seed: int = 0,
    smoothness: float = 1.0,
    strong_convexity: float = 0.1,
    distance: float = 1.0,
    noise_std: float = 0.0,
) -> QuadraticOracle:
    """F_m(x) = ½xᵀAx − b_mᵀx with one A (spectrum linspace(μ, H), random rotation) and
    b_m = A x* + δ_m, Σ_m δ_m = 0, (1/M)Σ‖δ_m‖² = ζ⋆² (note §12 check 9). x* = B·u, u a
    random unit vector; the δ_m directions are fixed by ``seed`` and scaled by ζ⋆ (so
    instances with different ζ⋆ share everything else). Gaussian noise of total variance
    ``noise_std``² (isotropic)."""
    M, d = positive_int(n_machines, "n_machines", minimum=2), positive_int(dim, "dim")
    z = float(zeta)
    if not np.isfinite(z) or z < 0:
        raise InvalidInputError(f"zeta must be finite and >= 0; got {zeta!r}")
    rng = np.random.default_rng(seed)
    Qm, _ = np.linalg.qr(rng.standard_normal((d, d)))
    A = (Qm * np.linspace(strong_convexity, smoothness, d)) @ Qm.T
    A = 0.5 * (A + A.T)
    u = rng.standard_normal(d)
    x_star = distance * u / np.linalg.norm(u)
    delta = rng.standard_normal((M, d))
    delta -= delta.mean(axis=0)
    delta *= z / np.sqrt(np.mean(np.sum(delta**2, axis=1)))
    lin = (A @ x_star)[None, :] + delta
    return QuadraticOracle(np.tile(A, (M, 1, 1)), lin, noise_std / np.sqrt(d))


def isotropic_quadratic(
    n_machines: int, dim: int, *, eigenvalues=None, sigma: float = 1.0, noise: str = "gaussian"
) -> QuadraticOracle:
    """Homogeneous F(x) = ½ Σ_i λ_i (x_i − x*_i)², x* = 1/√d, additive noise of total
    variance σ² (note §12 check 1: λ = logspace(−3, 0, d))."""
    M, d = positive_int(n_machines, "n_machines"), positive_int(dim, "dim")
    lam = (
        np.logspace(-3, 0, d)
        if eigenvalues is None
        else as_float_array(eigenvalues, "eigenvalues", 1)
    )
    x_star = np.full(d, 1 / np.sqrt(d))
    hess = np.tile(np.diag(lam), (M, 1, 1))
    return QuadraticOracle.from_optima(hess, np.tile(x_star, (M, 1)), sigma / np.sqrt(d), noise)


# ---- exact local GD on quadratics (σ = 0) -----------------------------------------------------
def _local_maps(oracle: QuadraticOracle, step_size: np.ndarray, local_steps: int):
    """Per step size g and machine m: P = (I − ηA_m)^K (G, M, d, d) and D b_m, where
    D = η Σ_{j<K} (I − ηA_m)^j, from the eigendecomposition of A_m."""
    lam, V = np.linalg.eigh(oracle.hessians)  # (M, d), (M, d, d)
    eta = np.asarray(step_size, dtype=float)[:, None, None]
    factor = 1.0 - eta * lam  # (G, M, d)
    power = factor**local_steps
    with np.errstate(divide="ignore", invalid="ignore"):
        geo = np.where(np.abs(lam) > 1e-300, (1.0 - power) / lam, eta * local_steps)
    P = np.einsum("mij,gmj,mkj->gmik", V, power, V)
    Db = np.einsum("mij,gmj,mkj,mk->gmi", V, geo, V, oracle.linear)
    return P, Db


def local_gd_rounds(
    oracle: QuadraticOracle,
    *,
    local_steps: int,
    rounds: int,
    step_size,
    outer_step_size=1.0,
    initial_point=None,
) -> np.ndarray:
    """Exact local GD (no noise) round by round: x_r for r = 0..R, shape (G, R + 1, d).

    One round is x_r = x_{r−1} + β((1/M) Σ_m [(I − ηA_m)^K x_{r−1} + D_m b_m] − x_{r−1}),
    D_m = η Σ_{j<K}(I − ηA_m)^j: K local steps in closed form (cost independent of K).
    """
    K, R = positive_int(local_steps, "local_steps"), positive_int(rounds, "rounds")
    eta = np.atleast_1d(np.asarray(step_size, dtype=float))
    beta = np.broadcast_to(np.atleast_1d(np.asarray(outer_step_size, dtype=float)), eta.shape)
    if np.any(~np.isfinite(eta) | (eta <= 0)) or np.any(~np.isfinite(beta) | (beta <= 0)):
        raise InvalidInputError("step_size and outer_step_size must be positive and finite")
    P, Db = _local_maps(oracle, eta, K)
    Pbar, cbar = P.mean(axis=1), Db.mean(axis=1)
    x = (
        np.zeros((eta.size, oracle.dim))
        if initial_point is None
        else np.tile(initial_point, (eta.size, 1))
    )
    out = np.empty((eta.size, R + 1, oracle.dim))
    out[:, 0] = x
    b = beta[:, None]
    with np.errstate(over="ignore", invalid="ignore"):
        for r in range(1, R + 1):
            x = x + b * (np.einsum("gij,gj->gi", Pbar, x) + cbar - x)
            out[:, r] = x
    return out


def local_gd_fixed_point(oracle: QuadraticOracle, *, local_steps: int, step_size) -> np.ndarray:
    """(c) Prop. 19 [V]: x_∞ = C⁻¹ (1/M) Σ_m C_m x*_m, C_m = I − (I − ηA_m)^K, C = mean C_m.

    Written with b_m = A_m x*_m as x_∞ = C⁻¹ (1/M) Σ_m D_m b_m (valid for singular A_m).
    Shape (G, d) for a grid of step sizes; independent of the outer step β.
    """
    K = positive_int(local_steps, "local_steps")
    eta = np.atleast_1d(np.asarray(step_size, dtype=float))
    P, Db = _local_maps(oracle, eta, K)
    C = np.eye(oracle.dim) - P.mean(axis=1)
    return np.linalg.solve(C, Db.mean(axis=1)[..., None])[..., 0]
