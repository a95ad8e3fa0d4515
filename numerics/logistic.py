"""Logistic-regression networks: data split across K agents, the optimum, and the local
quantities at the optimum that make up the linearised (quadratic) model.

Problem (the flatness paper's objective, arXiv 2406.20006 §2, note §2.1 [R]). Agent k holds
N_k samples (x_i, y_i), y_i ∈ {−1, +1}; with z_i = y_i x_i and margin m_i(w) = z_iᵀw,

    J_k(w) = (1/N_k) Σ_{i∈k} log(1 + exp(−m_i(w))) + (ρ/2) ‖w‖²,     J(w) = (1/K) Σ_k J_k(w).

The features are standardized and end with an intercept column of ones (``numerics.data``);
the regularizer (ρ/2)‖w‖² covers the intercept too, so J is ρ-strongly convex for ρ > 0.
Derivatives (derived here; ℓ(m) = log(1 + e^{−m}), ℓ' = −σ(−m), ℓ'' = σ(m)σ(−m)):

    ∇J_k(w)  = (1/N_k) Σ_{i∈k} −σ(−m_i) z_i + ρ w,
    ∇²J_k(w) = (1/N_k) Σ_{i∈k} σ(m_i)σ(−m_i) x_i x_iᵀ + ρ I.

Linearised model at w* (note §2.3 and §3.1, [R]): H_k = ∇²J_k(w*), d_k = ∇J_k(w*) (they sum
to K ∇J(w*) ≈ 0; the optimiser's remainder is removed and reported), and R_k the population
covariance over agent k's samples of the per-sample gradients g_i(w*) = −σ(−m_i) z_i + ρ w*.
A minibatch of B indices drawn uniformly *with replacement* from agent k has gradient noise of
covariance exactly R_k / B, so ``linearised`` returns ``QuadraticNetwork(H, d, R, B)``.

The optimum is found with scipy's trust-region Newton method (exact Hessian), polished by
Newton steps to ‖∇J(w*)‖ ≤ 1e-10, and cross-checked with cvxpy (``cp.logistic``). With ρ = 0
and linearly separable data the infimum is not attained; this is detected by a linear
feasibility problem (∃ w: z_iᵀw ≥ 1 for all i, scipy ``linprog``), not by a loss threshold.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.optimize
from scipy.special import expit, log_expit

from numerics._validate import positive_int
from numerics.data import Dataset, Split
from numerics.errors import DlcheckError, InvalidInputError
from numerics.problems import QuadraticNetwork

#: Target gradient norm of the optimum.
GRADIENT_TOLERANCE = 1e-10


class OptimizationError(DlcheckError):
    """The optimum could not be computed to the required accuracy."""


@dataclass(frozen=True)
class Optimum:
    """w*, its gradient norm and how it was found."""

    weights: np.ndarray
    gradient_norm: float
    risk: float
    iterations: int
    newton_steps: int
    min_hessian_eigenvalue: float


@dataclass(frozen=True)
class CvxpyCheck:
    """cvxpy's solution of the same problem and its distance to w*."""

    weights: np.ndarray
    status: str
    solver: str
    distance: float
    gradient_norm: float
    objective_gap: float


@dataclass(frozen=True, eq=False)
class LogisticNetwork:
    """Binary logistic regression with ℓ2 regularization ρ, its samples split across K agents.

    Parameters
    ----------
    features : (N, d) design matrix (rows of agent 0, then agent 1, ...).
    labels : (N,) labels in {−1, +1}.
    offsets : (K + 1,) agent k owns rows offsets[k]:offsets[k+1] (each non-empty).
    regularization : ρ ≥ 0.
    batch_size : B, minibatch size per agent and step (drawn with replacement).
    description : where the data and the split came from.
    """

    features: np.ndarray
    labels: np.ndarray
    offsets: np.ndarray
    regularization: float = 0.0
    batch_size: int = 1
    description: str = ""
    feature_names: tuple[str, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        X = np.ascontiguousarray(self.features, dtype=float)
        y = np.asarray(self.labels, dtype=float)
        off = np.asarray(self.offsets, dtype=np.int64)
        if X.ndim != 2 or y.shape != (X.shape[0],):
            raise InvalidInputError(
                f"features must be (N, d) with N labels; got {X.shape} and {y.shape}"
            )
        if not np.all(np.isfinite(X)):
            raise InvalidInputError("features contain NaN or inf")
        if not np.all(np.isin(y, (-1.0, 1.0))):
            raise InvalidInputError("labels must be -1 or +1")
        if off.ndim != 1 or off.size < 2 or off[0] != 0 or off[-1] != X.shape[0]:
            raise InvalidInputError(
                f"offsets must run from 0 to N = {X.shape[0]}; got {off.tolist()}"
            )
        empty = np.flatnonzero(np.diff(off) <= 0)
        if empty.size:
            raise InvalidInputError(f"agent {int(empty[0])} has no samples")
        rho = float(self.regularization)
        if not np.isfinite(rho) or rho < 0:
            raise InvalidInputError(f"regularization must be >= 0; got {self.regularization!r}")
        object.__setattr__(self, "features", X)
        object.__setattr__(self, "labels", y)
        object.__setattr__(self, "offsets", off)
        object.__setattr__(self, "regularization", rho)
        object.__setattr__(self, "batch_size", positive_int(self.batch_size, "batch_size"))
        for arr in (X, y, off):
            arr.setflags(write=False)

    @classmethod
    def from_split(
        cls,
        dataset: Dataset,
        split: Split,
        regularization: float,
        batch_size: int = 1,
        *,
        intercept: bool = True,
    ) -> LogisticNetwork:
        """The network of ``dataset`` (with an intercept column) split as ``split``."""
        design = dataset.design(intercept)
        order = np.concatenate(split.parts)
        offsets = np.concatenate([[0], np.cumsum(split.sizes)])
        names = (*dataset.feature_names, "intercept") if intercept else dataset.feature_names
        return cls(
            design[order],
            dataset.labels[order],
            offsets,
            regularization,
            batch_size,
            f"{dataset.name}, {split.description}",
            names,
        )

    @cached_property
    def fingerprint(self) -> str:
        """A content hash of the data, the split, ρ and B (a cache key)."""
        import hashlib

        h = hashlib.blake2b(digest_size=16)
        for arr in (self.features, self.labels, self.offsets):
            h.update(np.ascontiguousarray(arr).tobytes())
        h.update(f"{self.regularization!r}/{self.batch_size}".encode())
        return h.hexdigest()

    # ---- sizes and per-sample weights -------------------------------------------------------
    @property
    def n_agents(self) -> int:
        """K."""
        return self.offsets.size - 1

    @property
    def dim(self) -> int:
        """d, the number of weights (features plus intercept)."""
        return self.features.shape[1]

    @property
    def agent_sizes(self) -> np.ndarray:
        """N_k."""
        return np.diff(self.offsets)

    @cached_property
    def agent_of_sample(self) -> np.ndarray:
        """k of each row."""
        return np.repeat(np.arange(self.n_agents), self.agent_sizes)

    @cached_property
    def signed_features(self) -> np.ndarray:
        """z_i = y_i x_i, shape (N, d)."""
        out = self.features * self.labels[:, None]
        out.setflags(write=False)
        return out

    @cached_property
    def sample_weights(self) -> np.ndarray:
        """ω_i = 1/(K N_k): J(w) = Σ_i ω_i ℓ(z_iᵀw) + (ρ/2)‖w‖²."""
        return 1.0 / (self.n_agents * self.agent_sizes[self.agent_of_sample])

    def with_batch_size(self, batch_size: int) -> LogisticNetwork:
        """The same network with another minibatch size."""
        return LogisticNetwork(
            self.features,
            self.labels,
            self.offsets,
            self.regularization,
            batch_size,
            self.description,
            self.feature_names,
        )

    # ---- risks and derivatives -------------------------------------------------------------
    def risk(self, w: np.ndarray) -> np.ndarray:
        """J(w) for w of shape (..., d) (aggregate risk, vectorised over leading axes)."""
        w = np.asarray(w, dtype=float)
        margins = w @ self.signed_features.T  # (..., N)
        loss = -log_expit(margins) @ self.sample_weights
        return loss + 0.5 * self.regularization * np.sum(w * w, axis=-1)

    def local_risks(self, w: np.ndarray) -> np.ndarray:
        """J_k(w), shape (K,), for one w of shape (d,)."""
        losses = -log_expit(self.signed_features @ np.asarray(w, dtype=float))
        sums = np.add.reduceat(losses, self.offsets[:-1])
        return sums / self.agent_sizes + 0.5 * self.regularization * float(np.dot(w, w))

    def per_sample_gradients(self, w: np.ndarray) -> np.ndarray:
        """g_i(w) = −σ(−z_iᵀw) z_i + ρ w, shape (N, d)."""
        w = np.asarray(w, dtype=float)
        coef = -expit(-(self.signed_features @ w))
        return coef[:, None] * self.signed_features + self.regularization * w

    def local_gradients(self, w: np.ndarray) -> np.ndarray:
        """∇J_k(w), shape (K, d)."""
        g = self.per_sample_gradients(w)
        return np.add.reduceat(g, self.offsets[:-1], axis=0) / self.agent_sizes[:, None]

    def gradient(self, w: np.ndarray) -> np.ndarray:
        """∇J(w) = Σ_i ω_i (−σ(−m_i)) z_i + ρ w."""
        w = np.asarray(w, dtype=float)
        coef = -expit(-(self.signed_features @ w)) * self.sample_weights
        return coef @ self.signed_features + self.regularization * w

    def local_hessians(self, w: np.ndarray) -> np.ndarray:
        """∇²J_k(w), shape (K, d, d)."""
        m = self.signed_features @ np.asarray(w, dtype=float)
        curv = expit(m) * expit(-m)
        X = self.features
        out = np.empty((self.n_agents, self.dim, self.dim))
        for k, (a, b) in enumerate(zip(self.offsets[:-1], self.offsets[1:], strict=True)):
            out[k] = (X[a:b].T * curv[a:b]) @ X[a:b] / (b - a)
        out += self.regularization * np.eye(self.dim)
        return 0.5 * (out + np.swapaxes(out, 1, 2))

    def hessian(self, w: np.ndarray) -> np.ndarray:
        """∇²J(w) = Σ_i ω_i σ(m_i)σ(−m_i) x_i x_iᵀ + ρ I."""
        m = self.signed_features @ np.asarray(w, dtype=float)
        curv = expit(m) * expit(-m) * self.sample_weights
        out = (self.features.T * curv) @ self.features + self.regularization * np.eye(self.dim)
        return 0.5 * (out + out.T)

    def noise_covariances(self, w: np.ndarray) -> np.ndarray:
        """R_k(w): population covariance of g_i(w) over agent k's samples, shape (K, d, d)."""
        g = self.per_sample_gradients(w)
        out = np.empty((self.n_agents, self.dim, self.dim))
        for k, (a, b) in enumerate(zip(self.offsets[:-1], self.offsets[1:], strict=True)):
            c = g[a:b] - g[a:b].mean(axis=0)
            out[k] = c.T @ c / (b - a)
        return 0.5 * (out + np.swapaxes(out, 1, 2))

    # ---- the optimum and the linearised model ----------------------------------------------
    @cached_property
    def optimum(self) -> Optimum:
        """w* (see ``solve_optimum``), computed once."""
        return solve_optimum(self)

    @cached_property
    def optimum_gradient_sum(self) -> float:
        """max |Σ_k d_k| before the mean is removed (= K ‖∇J(w*)‖_∞)."""
        return float(np.abs(self.local_gradients(self.optimum.weights).sum(axis=0)).max())

    def linearised(self) -> QuadraticNetwork:
        """The linearised model at w*: ``QuadraticNetwork(H_k, d_k − d̄, R_k, B)``.

        d̄ = (1/K) Σ_k d_k = ∇J(w*) is the optimiser's remainder (‖d̄‖ ≤ 1e-10, see
        ``optimum_gradient_sum``); removing it makes Σ_k d_k = 0 exactly.
        """
        return self._linearised

    @cached_property
    def _linearised(self) -> QuadraticNetwork:
        w = self.optimum.weights
        d = self.local_gradients(w)
        d -= d.mean(axis=0)
        return QuadraticNetwork(
            self.local_hessians(w), d, self.noise_covariances(w), self.batch_size
        )


# ---- optimisation -------------------------------------------------------------------------
def is_separable(signed_features: np.ndarray) -> bool:
    """Whether some w has z_iᵀw ≥ 1 for every i (LP feasibility, scipy ``linprog``/HiGHS).

    For ρ = 0 this is exactly the case in which the logistic loss has no minimiser: along such
    a w the loss decreases to 0 without reaching it.
    """
    Z = np.asarray(signed_features, dtype=float)
    res = scipy.optimize.linprog(
        np.zeros(Z.shape[1]),
        A_ub=-Z,
        b_ub=-np.ones(Z.shape[0]),
        bounds=[(None, None)] * Z.shape[1],
        method="highs",
    )
    if res.status == 0:
        return True
    if res.status == 2:
        return False
    raise OptimizationError(f"separability LP failed: {res.message}")


def solve_optimum(net: LogisticNetwork, tol: float = GRADIENT_TOLERANCE) -> Optimum:
    """w* = argmin J by trust-region Newton (scipy ``trust-exact``), then Newton polishing.

    Raises ``InvalidInputError`` when ρ = 0 and the data are separable (no minimiser) or the
    Hessian at the solution is singular (no unique minimiser), and ``OptimizationError`` if the
    gradient norm cannot be brought below ``tol``.
    """
    rho = net.regularization
    if rho == 0 and is_separable(net.signed_features):
        raise InvalidInputError(
            f"the data ({net.description}) are linearly separable: with regularization=0 the "
            "logistic loss has no minimiser (w* is at infinity); use regularization > 0, "
            "e.g. 0.01"
        )
    res = scipy.optimize.minimize(
        lambda w: float(net.risk(w)),
        np.zeros(net.dim),
        jac=net.gradient,
        hess=net.hessian,
        method="trust-exact",
        options={"gtol": tol, "maxiter": 500},
    )
    w = np.array(res.x, dtype=float)
    g = net.gradient(w)
    steps = 0
    for _ in range(20):
        if np.linalg.norm(g) <= 0.1 * tol:
            break
        step = np.linalg.solve(net.hessian(w), g)
        w_new = w - step
        g_new = net.gradient(w_new)
        if np.linalg.norm(g_new) >= np.linalg.norm(g):
            break
        w, g, steps = w_new, g_new, steps + 1
    grad_norm = float(np.linalg.norm(g))
    lam_min = float(np.linalg.eigvalsh(net.hessian(w))[0])
    if lam_min <= 1e-10 * max(1.0, float(np.abs(net.hessian(w)).max())):
        raise InvalidInputError(
            f"the Hessian of the risk at the solution is (nearly) singular (smallest eigenvalue "
            f"{lam_min:.3g}): the minimiser is not unique or lies at infinity (e.g. data "
            "separable in a subspace); use regularization > 0, e.g. 0.01"
        )
    if grad_norm > tol:
        raise OptimizationError(
            f"the optimiser reached ‖∇J‖ = {grad_norm:.3g} > {tol:g} ({net.description})"
        )
    return Optimum(w, grad_norm, float(net.risk(w)), int(res.nit), steps, lam_min)


#: Clarabel's stopping tolerances for the cross-check, tried in order. Its defaults (~1e-8 on
#: the duality gap) leave ‖w − w*‖ ~ 1e-5 on small, weakly regularized problems; 1e-10 reaches
#: ~1e-8 on the bundled data sets but sometimes ends 'optimal_inaccurate', and then the
#: defaults are used. (1e-12 fails more often.)
CLARABEL_TOLERANCE_LADDER: tuple[dict[str, float], ...] = (
    {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10, "tol_ktratio": 1e-8},
    {},
)
#: Agreement required between cvxpy's and scipy's minimisers (cvxpy's accuracy, not scipy's).
CVXPY_AGREEMENT = 1e-6


def cvxpy_optimum(net: LogisticNetwork, solver: str = "CLARABEL") -> CvxpyCheck:
    """Solve min Σ_i ω_i logistic(−z_iᵀw) + (ρ/2)‖w‖² with cvxpy; compare with w*.

    Clarabel (the default) is tried with each entry of ``CLARABEL_TOLERANCE_LADDER`` until it
    reports status ``optimal``; ``OptimizationError`` if it never does. For ρ > 0, J is
    ρ-strongly convex, so ‖w_cvx − w*‖ ≤ (‖∇J(w_cvx)‖ + ‖∇J(w*)‖)/ρ whatever the solver did.
    """
    import cvxpy as cp

    w = cp.Variable(net.dim)
    loss = net.sample_weights @ cp.logistic(-(net.signed_features @ w))
    objective = loss + 0.5 * net.regularization * cp.sum_squares(w)
    problem = cp.Problem(cp.Minimize(objective))
    ladder = CLARABEL_TOLERANCE_LADDER if solver == "CLARABEL" else ({},)
    statuses = []
    for options in ladder:
        try:
            with warnings.catch_warnings():  # an inaccurate solve is handled below
                warnings.simplefilter("ignore", UserWarning)
                problem.solve(solver=solver, **options)
        except cp.error.SolverError as exc:
            statuses.append(f"error ({exc})")
            continue
        statuses.append(str(problem.status))
        if problem.status == cp.OPTIMAL:
            break
    else:
        raise OptimizationError(
            f"cvxpy ({solver}) did not report status 'optimal' (got {', '.join(statuses)})"
        )
    wc = np.asarray(w.value, dtype=float)
    star = net.optimum
    used = ", ".join(f"{k}={v:g}" for k, v in options.items()) or "solver defaults"
    return CvxpyCheck(
        wc,
        str(problem.status),
        f"{solver} ({used})",
        float(np.linalg.norm(wc - star.weights)),
        float(np.linalg.norm(net.gradient(wc))),
        float(net.risk(wc) - star.risk),
    )


def logistic_network(
    dataset: Dataset,
    split: Split,
    *,
    regularization: float,
    batch_size: int = 1,
) -> LogisticNetwork:
    """Shorthand for ``LogisticNetwork.from_split``."""
    return LogisticNetwork.from_split(dataset, split, regularization, batch_size)
