"""Logistic regression: local SGD against minibatch SGD and thumb-twiddling SGD (issue 5, part 4).

Problem. Binary logistic regression with ℓ2 regularization ρ over N samples (x_i, y_i),
y_i ∈ {−1, +1}, z_i = y_i x_i (x_i ends with an intercept 1), ℓ(m) = log(1 + e^{−m}):

    F(w) = (1/N) Σ_i ℓ(z_iᵀw) + (ρ/2)‖w‖²,       F_m(w) = E_{i∼D_m} ℓ(z_iᵀw) + (ρ/2)‖w‖².

Heterogeneity knob p (derived here). ``numerics.data.split(..., 'label_skew', skew=0)`` cuts
the data into M equal shards of one class each (pure classes, classes owned in proportion to
their shares; samples the equal sizes do not allow are dropped and N counts the rest).
Machine m samples from the mixture

    D_m = p · Uniform(all N samples) + (1 − p) · Uniform(shard m),

so p = 1 is exactly homogeneous (ζ⋆ = 0: every machine samples the whole data set, the
setting of (a)) and p = 0 maximally heterogeneous (each machine sees one class). This is the
knob of the note §10 ((b)'s derivative code: "a fraction p of each machine's data comes from
the pooled mixture" [M, unverified for (b)]) and the meaning of p in ``numerics.data``'s
label skew; unlike that split (a partition of a finite sample, heterogeneous even at p = 1)
it samples from a mixture. Since the shards have equal sizes and cover the N samples,
(1/M) Σ_m F_m = F for every p: the objective, F* and the step-size grids do not depend on p,
and minibatch SGD's gradient is unbiased for the same F (derived here).

Data. ``synthetic`` is the setup the note §10 describes from a public code copy of what looks
like (a)'s script ([M], unverified): N = 5000 points, d = 25 features 12·G·diag(linspace(1/25,
1, 25)) with G standard Gaussian, plus an intercept; labels y = +1 with probability
σ(min(w_1ᵀx + b_1, w_2ᵀx + b_2)) (w_j ∼ N(0, I/d), b_j ∼ N(0, 1): our choice, the scales
are not in the note). Features are not standardized (their spread of scales is the point).
Real data: scikit-learn's breast cancer and digits (even/odd), standardized
(``numerics.data``).

Oracle. ``LogisticOracle`` implements ``numerics.local_sgd.StochasticOracle``: a draw is
``batch_size`` sample indices per machine and step, drawn with replacement from D_m (one
uniform u per index: u < p picks floor(u/p·N) in the pool, else floor((u − p)/(1 − p)·n) in
the shard, n the shard size); the gradient ∇f(w; i) = −σ(−z_iᵀw) z_i + ρw, averaged over the
batch, is computed for all step sizes, trials and machines at once.

F* (``solve_optimum``): scipy L-BFGS-B, then Newton steps with the exact Hessian until
‖∇F(w*)‖ ≤ 1e-10 (``numerics.logistic.GRADIENT_TOLERANCE``); failure raises
``OptimizationError``. The excess F(w) − F* is computed in chunks (bounded memory).

Algorithms (note §0 [V] for local SGD and MB-SGD; thumb-twiddling SGD [M], the name seen in
the code copy of (a)): with K samples per machine per round and R rounds,

    local SGD            K local steps of one sample per machine, then average (β = 1);
    minibatch SGD        R steps on the average of the M·K gradients of a round;
    thumb-twiddling SGD  R steps on the average of M gradients, one sample per machine per
                         round (minibatch SGD with K = 1: same communication, K times fewer
                         samples).

All use ``numerics.local_sgd`` (vectorized over the step-size grid, trials and machines;
``threadpool_limits(1)``; trial blocks keyed by (seed, experiment, block), so a trial's draws
do not depend on chunking or grids). Local and minibatch SGD of one configuration share the
experiment key, hence the draws z[t, m] (common random numbers); thumb-twiddling SGD uses
the same stream, its round r taking z[r, m].

Protocol (``run_configuration``). The output is the final iterate x_R (the machine average
after the last communication; the lower bounds of (c) speak about it). For each algorithm a
geometric grid of step sizes (in units of 1/H, H = λ_max(∇²F(0)) ≥ the smoothness of F,
since ℓ'' ≤ ℓ''(0) = 1/4) is run on ``n_tune`` tuning trials with the iterate recorded at
every round; at each R of the grid the step with the smallest mean tuning error is chosen.
The chosen steps are then run on ``n_eval`` fresh trials (another experiment key), which
give the reported errors and intervals: selecting the best step on the same runs would bias
the estimate downward. Whether the chosen step is interior to the grid is reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.optimize
import scipy.stats
from scipy.special import expit, log_expit
from threadpoolctl import threadpool_limits

from numerics._validate import positive_float, positive_int
from numerics.checks.instances import derived_seed
from numerics.data import Dataset, load_dataset, split
from numerics.errors import InvalidInputError
from numerics.local_sgd import DEFAULT_MEMORY_CAP, Run, local_sgd, minibatch_sgd
from numerics.logistic import GRADIENT_TOLERANCE, OptimizationError

ALGORITHMS = ("local_sgd", "minibatch_sgd", "thumb_twiddling_sgd")
DATA = ("synthetic", "breast_cancer", "digits")
#: Elements of one chunk of margins in ``excess`` (bounded memory).
EXCESS_CHUNK = 1 << 22


# ---- data ------------------------------------------------------------------------------------
def woodworth_synthetic(n_samples: int = 5000, dim: int = 25, seed: int = 0) -> Dataset:
    """Synthetic data of the note §10's description of (a)'s script ([M], unverified).

    x = 12·g ⊙ linspace(1/d, 1, d), g ∼ N(0, I_d); y = +1 with probability
    σ(min(w_1ᵀx + b_1, w_2ᵀx + b_2)), w_j ∼ N(0, I/d), b_j ∼ N(0, 1) (scales chosen here).
    Features are kept raw (not standardized); the intercept is added by ``Dataset.design``.
    """
    n = positive_int(n_samples, "n_samples", minimum=4)
    d = positive_int(dim, "dim")
    rng = np.random.default_rng(np.random.SeedSequence(positive_int(seed, "seed", minimum=0)))
    X = 12.0 * rng.standard_normal((n, d)) * np.linspace(1.0 / d, 1.0, d)
    w = rng.standard_normal((2, d)) / np.sqrt(d)
    b = rng.standard_normal(2)
    prob = expit(np.minimum(X @ w[0] + b[0], X @ w[1] + b[1]))
    y = np.where(rng.random(n) < prob, 1.0, -1.0)
    if np.all(y == y[0]):
        raise InvalidInputError(f"synthetic data with n_samples={n} drew a single class")
    return Dataset("synthetic (a)-style", X, y, tuple(f"x{j}" for j in range(d)))


def load_data(data: str, *, n_samples: int = 5000, dim: int = 25, seed: int = 0) -> Dataset:
    """``synthetic`` ((a)-style, see ``woodworth_synthetic``) or a data set of
    ``numerics.data`` (breast_cancer, digits, a CSV path is not supported here)."""
    if data == "synthetic":
        return woodworth_synthetic(n_samples, dim, seed)
    if data in ("breast_cancer", "digits"):
        return load_dataset(data)
    raise InvalidInputError(f"data={data!r} is not known; allowed: {', '.join(DATA)}")


# ---- F* ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Optimum:
    """w*, F*, ‖∇F(w*)‖ and the solver's work."""

    weights: np.ndarray
    value: float
    gradient_norm: float
    lbfgs_iterations: int
    newton_steps: int


def _risk_parts(Z: np.ndarray, omega: np.ndarray, rho: float, w: np.ndarray):
    m = Z @ w
    f = float(-log_expit(m) @ omega + 0.5 * rho * w @ w)
    g = (-expit(-m) * omega) @ Z + rho * w
    return f, g, m


def solve_optimum(
    Z: np.ndarray, omega: np.ndarray, rho: float, tol: float = GRADIENT_TOLERANCE
) -> Optimum:
    """argmin Σ_i ω_i ℓ(z_iᵀw) + (ρ/2)‖w‖²: L-BFGS-B, then Newton to ‖∇F‖ ≤ ``tol``."""
    d = Z.shape[1]
    res = scipy.optimize.minimize(
        lambda w: _risk_parts(Z, omega, rho, w)[:2],
        np.zeros(d),
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 5000, "gtol": 1e-12, "ftol": 1e-15},
    )
    w = np.asarray(res.x, dtype=float)
    f, g, m = _risk_parts(Z, omega, rho, w)
    steps = 0
    for _ in range(50):
        if np.linalg.norm(g) <= 0.1 * tol:
            break
        curv = expit(m) * expit(-m) * omega
        hess = (Z.T * curv) @ Z + rho * np.eye(d)
        step = np.linalg.solve(hess, g)
        t = 1.0
        while t > 1e-8:  # damped Newton (backtracking on the gradient norm)
            f_new, g_new, m_new = _risk_parts(Z, omega, rho, w - t * step)
            if np.linalg.norm(g_new) < np.linalg.norm(g):
                break
            t /= 2
        if t <= 1e-8:
            break
        w, f, g, m, steps = w - t * step, f_new, g_new, m_new, steps + 1
    norm = float(np.linalg.norm(g))
    if not norm <= tol:
        raise OptimizationError(
            f"F* not found: ‖∇F‖ = {norm:.3g} > {tol:g} after L-BFGS-B ({res.nit} iterations) "
            f"and {steps} Newton steps; use regularization > 0"
        )
    return Optimum(w, f, norm, int(res.nit), steps)


# ---- the oracle ----------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class LogisticOracle:
    """Distributed logistic regression with the mixture heterogeneity p (module docstring).

    ``signed_features`` (N, d): z_i = y_i x_i of the pool; ``shards`` (M', n): row indices of
    each machine's own shard (M' ≥ ``n_machines``; the first ``n_machines`` are used);
    ``mixture`` p ∈ [0, 1]; ``regularization`` ρ ≥ 0; ``batch_size`` samples per machine and
    draw. F is always the uniform average over the N pool rows (the full problem, whose
    M' equal shards cover the pool), so a ``restrict``-ed oracle keeps F and F*; only its
    draws come from the first ``n_machines`` machines.
    """

    signed_features: np.ndarray
    shards: np.ndarray
    mixture: float
    regularization: float = 1e-3
    batch_size: int = 1
    n_machines: int = 0
    description: str = ""
    noise_dtype: type = field(default=np.int64, repr=False)

    def __post_init__(self) -> None:
        Z = np.ascontiguousarray(self.signed_features, dtype=float)
        if Z.ndim != 2 or not np.all(np.isfinite(Z)):
            raise InvalidInputError(f"signed_features must be a finite (N, d) array; got {Z.shape}")
        S = np.asarray(self.shards)
        if (
            S.ndim != 2
            or S.shape[0] < 1
            or S.shape[1] < 1
            or not np.issubdtype(S.dtype, np.integer)
        ):
            raise InvalidInputError(f"shards must be an integer (M, n) array; got {S.shape}")
        if S.min() < 0 or S.max() >= Z.shape[0]:
            raise InvalidInputError(
                f"shards index rows 0..{Z.shape[0] - 1}; got {S.min()}..{S.max()}"
            )
        if not np.array_equal(np.sort(S, axis=None), np.arange(Z.shape[0])):
            raise InvalidInputError(
                f"shards must partition the {Z.shape[0]} rows (each row in exactly one shard), "
                "so that the machines' laws average to the uniform law on the pool"
            )
        p = float(self.mixture)
        if not 0.0 <= p <= 1.0:
            raise InvalidInputError(f"mixture must lie in [0, 1]; got {self.mixture!r}")
        rho = float(self.regularization)
        if not np.isfinite(rho) or rho < 0:
            raise InvalidInputError(f"regularization must be >= 0; got {self.regularization!r}")
        M = S.shape[0] if self.n_machines == 0 else positive_int(self.n_machines, "n_machines")
        if M > S.shape[0]:
            raise InvalidInputError(f"n_machines={M} exceeds the {S.shape[0]} shards")
        object.__setattr__(self, "signed_features", Z)
        object.__setattr__(self, "shards", S.astype(np.int64))
        object.__setattr__(self, "mixture", p)
        object.__setattr__(self, "regularization", rho)
        object.__setattr__(self, "batch_size", positive_int(self.batch_size, "batch_size"))
        object.__setattr__(self, "n_machines", M)
        Z.setflags(write=False)

    # protocol ---------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self.signed_features.shape[1]

    @property
    def noise_shape(self) -> tuple[int, ...]:
        return (self.batch_size,)

    @property
    def n_samples(self) -> int:
        return self.signed_features.shape[0]

    def draw(self, gen: np.random.Generator, out: np.ndarray) -> None:
        """Row indices (n, M, b) drawn with replacement from each machine's D_m: one uniform
        u per index, u < p → floor(u/p·N) in the pool, else floor((u − p)/(1 − p)·n) in the
        machine's shard."""
        u = gen.random(out.shape)
        p, N, n = self.mixture, self.n_samples, self.shards.shape[1]
        if p < 1.0:
            k = np.clip(((u - p) / (1.0 - p) * n).astype(np.int64), 0, n - 1)
            machine = np.arange(out.shape[1])[None, :, None]
            own = self.shards[machine, k]
        if p == 0.0:
            out[...] = own
            return
        pool = np.minimum((u / p * N).astype(np.int64), N - 1)
        out[...] = pool if p == 1.0 else np.where(u < p, pool, own)

    def gradient(self, x: np.ndarray, noise: np.ndarray, out: np.ndarray) -> np.ndarray:
        """(1/b) Σ_j −σ(−z_{i_j}ᵀx) z_{i_j} + ρx for x (..., n, M, d), indices (n, M, b)."""
        Zb = self.signed_features[noise]  # (n, M, b, d)
        if self.batch_size == 1:
            z = Zb[:, :, 0]
            coef = np.einsum("...d,...d->...", x, z)
            np.negative(coef, out=coef)
            expit(coef, out=coef)
            np.negative(coef, out=coef)
            np.multiply(coef[..., None], z, out=out)
        else:
            margins = np.einsum("...nmd,nmbd->...nmb", x, Zb)
            coef = -expit(-margins) / self.batch_size
            np.copyto(out, np.einsum("...nmb,nmbd->...nmd", coef, Zb))
        if self.regularization:
            out += self.regularization * x
        return out

    def excess(self, x: np.ndarray) -> np.ndarray:
        """F(x) − F* for x (..., d), in chunks of ``EXCESS_CHUNK`` margins."""
        return self.risk(x) - self.optimum.value

    def restrict(self, n_machines: int) -> LogisticOracle:
        """The first ``n_machines`` machines (same pool, same F and F*)."""
        out = LogisticOracle(
            self.signed_features,
            self.shards,
            self.mixture,
            self.regularization,
            self.batch_size,
            n_machines,
            self.description,
        )
        if "optimum" in self.__dict__:  # same F: share the solved optimum
            out.__dict__["optimum"] = self.__dict__["optimum"]
        return out

    def with_mixture(self, mixture: float) -> LogisticOracle:
        """The same data, shards and F (hence F*, shared) with another p."""
        out = LogisticOracle(
            self.signed_features,
            self.shards,
            mixture,
            self.regularization,
            self.batch_size,
            self.n_machines,
            self.description.rsplit(", p = ", 1)[0] + f", p = {float(mixture):g}",
        )
        if "optimum" in self.__dict__:
            out.__dict__["optimum"] = self.__dict__["optimum"]
        return out

    # the objective -----------------------------------------------------------------------------
    def risk(self, x: np.ndarray) -> np.ndarray:
        """F(x) = (1/N) Σ_i ℓ(z_iᵀx) + (ρ/2)‖x‖² for x (..., d) (the F of all shards)."""
        x = np.asarray(x, dtype=float)
        flat = x.reshape(-1, self.dim)
        out = np.empty(flat.shape[0])
        step = max(1, EXCESS_CHUNK // self.n_samples)
        for i in range(0, flat.shape[0], step):
            part = flat[i : i + step]
            with np.errstate(over="ignore", invalid="ignore"):
                out[i : i + step] = -log_expit(part @ self.signed_features.T).mean(axis=1)
        out += 0.5 * self.regularization * np.einsum("ij,ij->i", flat, flat)
        return out.reshape(x.shape[:-1])

    @cached_property
    def optimum(self) -> Optimum:
        """w*, F* (``solve_optimum`` on uniform weights 1/N)."""
        omega = np.full(self.n_samples, 1.0 / self.n_samples)
        return solve_optimum(self.signed_features, omega, self.regularization)

    @cached_property
    def smoothness(self) -> float:
        """H = λ_max(∇²F(0)) = λ_max((1/(4N)) Σ z_i z_iᵀ) + ρ ≥ λ_max(∇²F(w)) for every w."""
        Z = self.signed_features
        return float(np.linalg.eigvalsh(Z.T @ Z / (4 * self.n_samples))[-1] + self.regularization)

    def machine_weights(self) -> np.ndarray:
        """(M, N): the law D_m of each machine's sample index."""
        M, (N, n) = self.n_machines, (self.n_samples, self.shards.shape[1])
        W = np.full((M, N), self.mixture / N)
        np.add.at(W, (np.repeat(np.arange(M), n), self.shards[:M].ravel()), (1 - self.mixture) / n)
        return W

    @cached_property
    def constants(self) -> dict[str, float]:
        """The bound constants at w*: H (max_m λ_max ∇²F_m(0)), B = ‖w*‖ (start 0), σ² =
        max_m E_{D_m}‖∇f(w*; i) − ∇F_m(w*)‖², ζ⋆² = (1/M) Σ_m ‖∇F_m(w*)‖² ((c) Asm. 1)."""
        W = self.machine_weights()
        w = self.optimum.weights
        Z = self.signed_features
        g = -expit(-(Z @ w))[:, None] * Z + self.regularization * w  # (N, d)
        means = W @ g
        second = W @ np.sum(g * g, axis=1)
        sigma2 = float(np.max(second - np.sum(means * means, axis=1)))
        zeta2 = float(np.mean(np.sum(means * means, axis=1)))
        covs = np.einsum("mi,ij,ik->mjk", W, Z, Z) / 4
        H = float(np.linalg.eigvalsh(covs)[:, -1].max() + self.regularization)
        return {
            "H": H,
            "H_F": self.smoothness,
            "B": float(np.linalg.norm(w)),
            "sigma": float(np.sqrt(max(sigma2, 0.0))),
            "zeta_star": 0.0 if self.mixture == 1.0 else float(np.sqrt(zeta2)),
            "mu": float(
                np.linalg.eigvalsh((Z.T * (expit(Z @ w) * expit(-(Z @ w)))) @ Z / self.n_samples)[0]
                + self.regularization
            ),
        }


def logistic_problem(
    data: str,
    n_machines: int,
    mixture: float,
    *,
    regularization: float = 1e-3,
    batch_size: int = 1,
    seed: int = 0,
    n_samples: int = 5000,
    dim: int = 25,
) -> LogisticOracle:
    """The oracle of ``data`` on ``n_machines`` machines with heterogeneity p = ``mixture``.

    Shards: ``numerics.data.split(labels, M, 'label_skew', skew=0)`` (pure classes, equal
    sizes, seeded by ``derived_seed(seed, 'local_sgd_logistic', data, 'split')``); the pool
    is their union. Synthetic data are seeded by ``derived_seed(seed, ..., 'data')``.
    """
    M = positive_int(n_machines, "n_machines")
    p = float(mixture)
    if not 0.0 <= p <= 1.0:
        raise InvalidInputError(f"mixture must lie in [0, 1]; got {mixture!r}")
    positive_float(regularization, "regularization")
    ds = load_data(
        data,
        n_samples=n_samples,
        dim=dim,
        seed=derived_seed(seed, "local_sgd_logistic", data, "data"),
    )
    parts = split(
        ds.labels,
        M,
        "label_skew",
        skew=0.0,
        seed=derived_seed(seed, "local_sgd_logistic", data, "split"),
        min_samples=1,
    )
    used = np.concatenate(parts.parts)
    Z = (ds.design(True) * ds.labels[:, None])[used]
    n = len(parts.parts[0])
    shards = np.arange(M * n, dtype=np.int64).reshape(M, n)
    desc = f"{ds.name}: N = {used.size} of {ds.n_samples} samples, M = {M} shards of {n}, p = {p:g}"
    return LogisticOracle(Z, shards, p, float(regularization), batch_size, M, desc)


# ---- algorithms --------------------------------------------------------------------------------
def run_logistic_algorithm(
    name: str,
    oracle: LogisticOracle,
    *,
    local_steps: int,
    rounds: int,
    step_size,
    n_trials: int,
    seed: int,
    experiment: str,
    record_rounds: bool = True,
    memory_cap: int = DEFAULT_MEMORY_CAP,
) -> Run:
    """One of ``ALGORITHMS`` at K samples per machine per round (thumb-twiddling: 1)."""
    common = {
        "rounds": rounds,
        "step_size": step_size,
        "n_trials": n_trials,
        "seed": seed,
        "experiment": experiment,
        "record_rounds": record_rounds,
        "on_divergence": "mark",
        "memory_cap": memory_cap,
    }
    if name == "local_sgd":
        return local_sgd(oracle, local_steps=local_steps, **common)
    if name == "minibatch_sgd":
        return minibatch_sgd(oracle, local_steps=local_steps, **common)
    if name == "thumb_twiddling_sgd":
        positive_int(local_steps, "local_steps")
        return minibatch_sgd(oracle, local_steps=1, **common)
    raise InvalidInputError(f"algorithm={name!r} is not known; allowed: {', '.join(ALGORITHMS)}")


#: Step-size grids in units of 1/H: 2^(j/2) for j in the range (geometric, ratio √2).
GRID_EXPONENTS = {
    "local_sgd": (-12, 6),
    "minibatch_sgd": (-4, 10),
    "thumb_twiddling_sgd": (-8, 8),
}


def step_grid(algorithm: str, smoothness: float, exponents: tuple[int, int] | None = None):
    """2^(j/2)/H, j = lo..hi (``GRID_EXPONENTS``)."""
    lo, hi = exponents or GRID_EXPONENTS[algorithm]
    return 2.0 ** (np.arange(lo, hi + 1) / 2.0) / smoothness


@dataclass(frozen=True)
class Curve:
    """Best-step errors of one algorithm at the rounds ``rounds``.

    ``grid`` (G,), ``tune_mean`` (G, len(rounds)) mean tuning error (inf if diverged),
    ``chosen`` (len(rounds),) grid index chosen per R, ``errors`` (n_eval, len(rounds)) the
    fresh-trial errors at the chosen step.
    """

    algorithm: str
    grid: np.ndarray
    rounds: tuple[int, ...]
    tune_mean: np.ndarray = field(repr=False)
    chosen: np.ndarray
    errors: np.ndarray = field(repr=False)

    @property
    def mean(self) -> np.ndarray:
        return self.errors.mean(axis=0)

    @property
    def standard_error(self) -> np.ndarray:
        return self.errors.std(axis=0, ddof=1) / np.sqrt(self.errors.shape[0])

    @property
    def steps(self) -> np.ndarray:
        return self.grid[self.chosen]

    @property
    def interior(self) -> np.ndarray:
        return (self.chosen > 0) & (self.chosen < self.grid.size - 1)

    def interval(self, alpha: float, comparisons: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Student-t interval of the mean error per R at level 1 − α/comparisons."""
        n = self.errors.shape[0]
        t = float(scipy.stats.t.isf(alpha / (2 * comparisons), n - 1))
        return self.mean - t * self.standard_error, self.mean + t * self.standard_error


def run_configuration(
    oracle: LogisticOracle,
    *,
    local_steps: int,
    rounds: tuple[int, ...] | list[int],
    n_tune: int,
    n_eval: int,
    seed: int,
    experiment: str,
    algorithms: tuple[str, ...] = ALGORITHMS,
    grids: dict[str, tuple[int, int]] | None = None,
) -> dict[str, Curve]:
    """Tune on ``n_tune`` trials (key experiment/tune), evaluate on ``n_eval`` fresh trials
    (key experiment/eval) at the chosen step per R; common draws across the algorithms."""
    rs = tuple(sorted({positive_int(r, "rounds") for r in rounds}))
    n_tune, n_eval = positive_int(n_tune, "n_tune", 2), positive_int(n_eval, "n_eval", 2)
    R = rs[-1]
    at = np.array(rs)
    H = oracle.smoothness
    out = {}
    for name in algorithms:
        grid = step_grid(name, H, (grids or {}).get(name))
        run = run_logistic_algorithm(
            name,
            oracle,
            local_steps=local_steps,
            rounds=R,
            step_size=grid,
            n_trials=n_tune,
            seed=seed,
            experiment=f"{experiment}/tune",
        )
        err = _path_excess(oracle, run, at)  # (G, n, len(rs))
        mean = err.mean(axis=1)
        chosen = np.argmin(mean, axis=0)
        steps = np.unique(chosen)
        ev = run_logistic_algorithm(
            name,
            oracle,
            local_steps=local_steps,
            rounds=R,
            step_size=grid[steps],
            n_trials=n_eval,
            seed=seed,
            experiment=f"{experiment}/eval",
        )
        e = _path_excess(oracle, ev, at)  # (G', n_eval, len(rs))
        pick = np.searchsorted(steps, chosen)
        errors = e[pick, :, np.arange(len(rs))].T  # (n_eval, len(rs))
        out[name] = Curve(name, grid, rs, mean, chosen, errors)
    return out


def _path_excess(oracle: LogisticOracle, run: Run, rounds: np.ndarray) -> np.ndarray:
    """F(x_r) − F* at the recorded rounds, (G, n, len(rounds)); inf where diverged."""
    x = run.path[:, :, rounds]
    with threadpool_limits(1), np.errstate(all="ignore"):
        err = np.asarray(oracle.excess(x), dtype=float)
    err[~np.isfinite(err)] = np.inf
    return err


# ---- summaries ---------------------------------------------------------------------------------
def paired_difference(
    a: Curve, b: Curve, alpha: float, comparisons: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean of a − b per R over the common evaluation trials, with its Student-t interval
    (the trials are paired by common random numbers): (mean, lo, hi)."""
    diff = a.errors - b.errors
    n = diff.shape[0]
    m = diff.mean(axis=0)
    se = diff.std(axis=0, ddof=1) / np.sqrt(n)
    t = float(scipy.stats.t.isf(alpha / (2 * comparisons), n - 1))
    return m, m - t * se, m + t * se


def ratio_interval(
    a: Curve, b: Curve, alpha: float, comparisons: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """mean(a)/mean(b) per R with a delta-method interval on the log ratio using the paired
    covariance of the two means: (ratio, lo, hi)."""
    n = a.errors.shape[0]
    ma, mb = a.mean, b.mean
    va = a.errors.var(axis=0, ddof=1) / n
    vb = b.errors.var(axis=0, ddof=1) / n
    cab = (
        np.array([np.cov(a.errors[:, j], b.errors[:, j])[0, 1] for j in range(a.errors.shape[1])])
        / n
    )
    var_log = va / ma**2 + vb / mb**2 - 2 * cab / (ma * mb)
    t = float(scipy.stats.t.isf(alpha / (2 * comparisons), n - 1))
    r = ma / mb
    half = t * np.sqrt(np.maximum(var_log, 0.0))
    return r, r * np.exp(-half), r * np.exp(half)


@dataclass(frozen=True)
class RoundSlope:
    """OLS slope of log(mean error) on log R over the R grid, with the interval slope ± z·s,
    s the bootstrap standard deviation over the evaluation trials (resampled whole, since the
    errors at different R share trials; the steps are fixed, chosen on the tuning trials).
    It is the secant slope over this window, not an asymptotic rate."""

    slope: float
    ci: tuple[float, float]
    n_boot: int


def round_slope(
    curve: Curve, alpha: float, comparisons: int = 1, n_boot: int = 2000, seed: int = 0
) -> RoundSlope:
    """See ``RoundSlope``; the errors at different R share trials, hence the bootstrap."""
    lx = np.log(np.asarray(curve.rounds, dtype=float))
    X = lx - lx.mean()

    def fit(mean: np.ndarray) -> np.ndarray:
        y = np.log(mean)
        return (y - y.mean(axis=-1, keepdims=True)) @ X / (X @ X)

    rng = np.random.default_rng(derived_seed(seed, "round_slope", curve.algorithm))
    n = curve.errors.shape[0]
    idx = rng.integers(0, n, size=(n_boot, n))
    boots = fit(curve.errors[idx].mean(axis=1))
    z = float(scipy.stats.norm.isf(alpha / (2 * comparisons)))
    b = float(fit(curve.mean))
    half = z * float(boots.std(ddof=1))
    lo, hi = b - half, b + half
    return RoundSlope(b, (lo, hi), n_boot)


def log_ratio_of_ratios(
    a: Curve, b: Curve, c: Curve, d: Curve, alpha: float, comparisons: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean a/mean b)/(mean c/mean d) per R with a delta-method interval on its log; the
    four share evaluation trials (common draws), so the covariance of the means is estimated
    from the trials: (value, lo, hi)."""
    n = a.errors.shape[0]
    out = []
    t = float(scipy.stats.t.isf(alpha / (2 * comparisons), n - 1))
    for j in range(a.errors.shape[1]):
        E = np.stack([x.errors[:, j] for x in (a, b, c, d)])  # (4, n)
        m = E.mean(axis=1)
        grad = np.array([1.0, -1.0, -1.0, 1.0]) / m
        var = float(grad @ np.cov(E) @ grad) / n
        v = m[0] / m[1] / (m[2] / m[3])
        half = t * np.sqrt(max(var, 0.0))
        out.append((v, v * np.exp(-half), v * np.exp(half)))
    return tuple(np.array(col) for col in zip(*out, strict=True))


# ---- the grid of the check and the figure -------------------------------------------------------
def parse_list(text, name: str, kind: type, allowed: tuple | None = None) -> list:
    """'a b c' (spaces; commas also accepted from Python — on the command line a comma makes
    a sweep of separate runs) as a list of ``kind``; InvalidInputError names the parameter,
    the value and what is allowed."""
    items = [t for t in re.split(r"[,\s]+", str(text).strip()) if t]
    if not items:
        raise InvalidInputError(f"{name}={text!r} is empty; give values separated by spaces")
    out = []
    for t in items:
        try:
            v = kind(t)
        except ValueError:
            raise InvalidInputError(
                f"{name}={text!r}: {t!r} is not a valid {kind.__name__}"
                + (f"; allowed: {', '.join(map(str, allowed))}" if allowed else "")
            ) from None
        if allowed is not None and v not in allowed:
            raise InvalidInputError(
                f"{name}={text!r}: {t!r} is not allowed; allowed: {', '.join(map(str, allowed))}"
            )
        out.append(v)
    return out


@dataclass(frozen=True)
class Grid:
    """The experiment grid: data sets, M, p, K, R (validated)."""

    datasets: tuple[str, ...]
    machines: tuple[int, ...]
    mixtures: tuple[float, ...]
    local_steps: tuple[int, ...]
    rounds: tuple[int, ...]

    @classmethod
    def from_params(cls, p: dict) -> Grid:
        ds = parse_list(p["datasets"], "datasets", str, DATA)
        ms = parse_list(p["machines"], "machines", int)
        ps = parse_list(p["mixtures"], "mixtures", float)
        ks = parse_list(p["local_steps"], "local_steps", int)
        rs = parse_list(p["rounds"], "rounds", int)
        for name, vals, lo in (("machines", ms, 2), ("local_steps", ks, 1), ("rounds", rs, 1)):
            bad = [v for v in vals if v < lo]
            if bad:
                raise InvalidInputError(
                    f"{name}: {bad[0]} is not allowed; allowed: integers >= {lo}"
                )
        bad = [v for v in ps if not 0.0 <= v <= 1.0]
        if bad:
            raise InvalidInputError(f"mixtures: {bad[0]:g} is not allowed; allowed: 0 <= p <= 1")
        if len(set(rs)) < 3:
            raise InvalidInputError(
                f"rounds={p['rounds']!r}: at least 3 distinct values are needed"
            )
        return cls(
            tuple(dict.fromkeys(ds)),
            tuple(sorted(set(ms))),
            tuple(sorted(set(ps), reverse=True)),
            tuple(sorted(set(ks))),
            tuple(sorted(set(rs))),
        )


def run_grid(p: dict, seed: int, experiment: str) -> dict:
    """Every configuration of the grid in ``p`` (keys datasets, machines, mixtures,
    local_steps, rounds, n_tune, n_eval, regularization): returns {'grid': Grid, 'curves':
    {(data, M, p, K): {algorithm: Curve}}, 'oracles': {(data, M, p): LogisticOracle}}.
    Draws are keyed by experiment/data/M/K (not p, not the algorithm): common random numbers
    across p and the algorithms."""
    g = Grid.from_params(p)
    curves, oracles = {}, {}
    for data in g.datasets:
        for M in g.machines:
            base = logistic_problem(
                data, M, g.mixtures[0], regularization=p["regularization"], seed=seed
            )
            _ = base.optimum  # solved once, shared by every p (same F)
            for mix in g.mixtures:
                o = base.with_mixture(mix)
                oracles[data, M, mix] = o
                for K in g.local_steps:
                    curves[data, M, mix, K] = run_configuration(
                        o,
                        local_steps=K,
                        rounds=g.rounds,
                        n_tune=p["n_tune"],
                        n_eval=p["n_eval"],
                        seed=seed,
                        experiment=f"{experiment}/{data}/M={M}/K={K}",
                    )
    return {"grid": g, "curves": curves, "oracles": oracles}
