"""Exact first and second moments of the unified error recursion.

For the recursion W̃_n = F_n W̃_{n−1} + μ G_n (d + s_n) with F_n = (A2ᵀ ⊗ I)(A1ᵀ ⊗ I − μ H),
G_n = A2ᵀ ⊗ I and Cov s_n = S = blkdiag(R_k / B) (shared/research/flatness_tradeoff.md §4.2, [R]):

    m_n = F_n m_{n−1} + μ G_n d,          C_n = F_n C_{n−1} F_nᵀ + μ² G_n S G_nᵀ,

and, with the quadratic read-out of the aggregate risk (exact for quadratic J_k),

    EE_n  = (1/2K) [m_nᵀ (I ⊗ H̄) m_n + Tr((I ⊗ H̄) C_n)]    (escaping efficiency; excess risk as n→∞)
    MSD_n = (1/K)  [‖m_n‖² + Tr C_n]
    CD_n  = (1/K)  [m_nᵀ P m_n + Tr(P C_n)],  P = (I − J) ⊗ I   (consensus distance)

Steady states come from a discrete Lyapunov solve (scipy) of the period map. When every
combination matrix is symmetric and diagonal in one orthonormal basis U (centralized,
consensus, diffusion, local SGD with symmetric A) and all agents share the Hessian
H = V diag(h) Vᵀ, the recursion splits into scalar modes y ← a y + g (δ + s) with
a = λ2 (λ1 − μ h), g = μ λ2 (§4.3): the *modal* path, O(K d) per step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.optimize
from threadpoolctl import threadpool_limits

from numerics._validate import positive_float, positive_int
from numerics.errors import InvalidInputError, UnstableStepSizeError
from numerics.problems import QuadraticNetwork
from numerics.strategies import Schedule, as_schedule

#: The matrices here are small (K·d ≲ a few hundred): one BLAS thread is fastest, and several
#: threads on a busy machine are far slower.
_one_blas_thread = threadpool_limits.wrap(limits=1)

METHODS = ("auto", "dense", "modal")


@dataclass(frozen=True)
class Moments:
    """Per-step read-outs of the exact moments, steps 1..n (index 0 is step 1)."""

    escaping_efficiency: np.ndarray
    msd: np.ndarray
    consensus_distance: np.ndarray


@dataclass(frozen=True)
class SteadyState:
    """Steady-state read-outs (time-averaged over one period for periodic schedules)."""

    excess_risk: float
    msd: float
    consensus_distance: float
    method: str


# ---- dense path ---------------------------------------------------------------------------
def transition_matrices(
    A1: np.ndarray, A2: np.ndarray, problem: QuadraticNetwork, step_size: float
) -> tuple[np.ndarray, np.ndarray]:
    """F = (A2ᵀ ⊗ I)(A1ᵀ ⊗ I − μ blkdiag H_k) and G = A2ᵀ ⊗ I on the row-major stacked state."""
    d = problem.dim
    eye = np.eye(d)
    G = np.kron(A2.T, eye)
    inner = np.kron(A1.T, eye) - step_size * scipy.linalg.block_diag(*problem.hessians)
    return G @ inner, G


def _noise_matrix(problem: QuadraticNetwork) -> np.ndarray:
    return scipy.linalg.block_diag(*(problem.noise_covariances / problem.batch_size))


def _readout_weights(problem: QuadraticNetwork) -> tuple[np.ndarray, np.ndarray]:
    K = problem.n_agents
    hess = np.kron(np.eye(K), problem.aggregate_hessian)
    proj = np.kron(np.eye(K) - 1.0 / K, np.eye(problem.dim))
    return hess, proj


def _dense_maps(schedule: Schedule, problem: QuadraticNetwork, step_size: float):
    """For each phase: (F, c, Q) with m ← F m + c and C ← F C Fᵀ + Q."""
    d = problem.gradients_at_optimum.reshape(-1)
    S = _noise_matrix(problem)
    maps = []
    for A1, A2 in schedule.pairs:
        F, G = transition_matrices(A1, A2, problem, step_size)
        maps.append((F, step_size * G @ d, step_size**2 * G @ S @ G.T))
    return maps


def _dense_period_map(maps):
    """Compose one period: m_P = Φ m_0 + c, C_P = Φ C_0 Φᵀ + Q."""
    n = maps[0][0].shape[0]
    Phi, c, Q = np.eye(n), np.zeros(n), np.zeros((n, n))
    for F, cf, Qf in maps:
        Phi, c, Q = F @ Phi, F @ c + cf, F @ Q @ F.T + Qf
    return Phi, c, Q


# ---- modal path ---------------------------------------------------------------------------
def _common_eigenbasis(schedule: Schedule) -> np.ndarray | None:
    """Orthonormal U diagonalising every matrix of the schedule, with U[:, 0] = 1/√K, or None."""
    mats = [M for pair in schedule.pairs for M in pair]
    if not all(np.allclose(M, M.T, atol=1e-13) for M in mats):
        return None
    K = schedule.n_agents
    rng = np.random.default_rng(12345)  # generic combination: fixed, only breaks ties
    mix = sum(rng.uniform(1.0, 2.0) * M for M in mats)
    # U[:, 0] must be 1/√K: a multiple of J larger than ‖mix‖ gives 1 its own eigenvalue even
    # when 1 lies in a degenerate eigenspace of mix (e.g. independent runs, mix ∝ I)
    mix = mix + (1.0 + 2.0 * np.linalg.norm(mix, 2)) * np.full((K, K), 1.0 / K)
    _, U = np.linalg.eigh(mix)
    ones = np.full(K, 1.0 / np.sqrt(K))
    idx = int(np.argmax(np.abs(U.T @ ones)))
    if abs(U[:, idx] @ ones) < 1 - 1e-10:
        return None
    U = np.column_stack([ones, np.delete(U, idx, axis=1)])
    for M in mats:
        D = U.T @ M @ U
        if np.abs(D - np.diag(np.diag(D))).max() > 1e-10 * max(1.0, np.abs(M).max()):
            return None
    return U


@dataclass(frozen=True)
class _Modes:
    """Scalar modes p = (i, m): y ← a y + g (δ + s); arrays of shape (P, K, d) or (K, d)."""

    a: np.ndarray
    g: np.ndarray
    delta: np.ndarray
    noise: np.ndarray
    h: np.ndarray
    U: np.ndarray
    V: np.ndarray


def _modes(schedule: Schedule, problem: QuadraticNetwork, step_size: float) -> _Modes | None:
    if not problem.hessians_equal:
        return None
    U = _common_eigenbasis(schedule)
    if U is None:
        return None
    h, V = np.linalg.eigh(problem.hessians[0])
    lam = np.array([[np.diag(U.T @ M @ U) for M in pair] for pair in schedule.pairs])  # (P,2,K)
    lam1, lam2 = lam[:, 0, :, None], lam[:, 1, :, None]
    a = lam2 * (lam1 - step_size * h[None, None, :])
    g = np.broadcast_to(step_size * lam2, a.shape)
    delta = U.T @ problem.gradients_at_optimum @ V
    # Q_(i,m) = Σ_k U_ki² v_mᵀ R_k v_m / B
    rv = np.einsum("dm,kde,em->km", V, problem.noise_covariances, V) / problem.batch_size
    noise = (U**2).T @ rv
    return _Modes(a, g, delta, noise, h, U, V)


def _modal_period_map(md: _Modes):
    """Per-mode affine period maps: m_P = α m_0 + β, c_P = α² c_0 + γ."""
    alpha = np.ones_like(md.delta)
    beta = np.zeros_like(md.delta)
    gamma = np.zeros_like(md.delta)
    for a, g in zip(md.a, md.g, strict=True):
        alpha, beta, gamma = a * alpha, a * beta + g * md.delta, a**2 * gamma + g**2 * md.noise
    return alpha, beta, gamma


# ---- method selection and stability -------------------------------------------------------
def _resolve(strategy, A, problem, step_size, method, local_steps):
    if not isinstance(problem, QuadraticNetwork):
        raise InvalidInputError(f"problem must be a QuadraticNetwork; got {type(problem).__name__}")
    schedule = as_schedule(strategy, A, local_steps=local_steps)
    if schedule.n_agents != problem.n_agents:
        raise InvalidInputError(
            f"A is {schedule.n_agents}×{schedule.n_agents} but the problem has "
            f"{problem.n_agents} agents"
        )
    mu = positive_float(step_size, "step_size")
    if method not in METHODS:
        raise InvalidInputError(f"method={method!r} is not known; allowed: {', '.join(METHODS)}")
    modes = _modes(schedule, problem, mu) if method in ("auto", "modal") else None
    if method == "modal" and modes is None:
        raise InvalidInputError(
            "method='modal' needs symmetric, simultaneously diagonalisable combination matrices "
            "and equal Hessians across agents; use method='dense'"
        )
    return schedule, mu, modes


def _mean_period_operator(schedule: Schedule, problem: QuadraticNetwork):
    """μ ↦ Φ(μ), the mean recursion's period map, with the μ-free Kronecker factors built once."""
    eye = np.eye(problem.dim)
    hess = scipy.linalg.block_diag(*problem.hessians)
    factors = [(np.kron(A1.T, eye), np.kron(A2.T, eye)) for A1, A2 in schedule.pairs]
    n = hess.shape[0]

    def phi(mu: float) -> np.ndarray:
        Phi = np.eye(n)
        for K1, G in factors:
            Phi = G @ ((K1 - mu * hess) @ Phi)
        return Phi

    return phi


def _radius(Phi: np.ndarray, period: int) -> float:
    return float(np.max(np.abs(np.linalg.eigvals(Phi)))) ** (1.0 / period)


@_one_blas_thread
def spectral_radius(
    strategy: str | Schedule,
    A: np.ndarray | None,
    problem: QuadraticNetwork,
    step_size: float,
    *,
    local_steps: int | None = None,
) -> float:
    """ρ of the mean recursion's period map Φ (per step for constant schedules)."""
    schedule = as_schedule(strategy, A, local_steps=local_steps)
    return _radius(_mean_period_operator(schedule, problem)(step_size), schedule.period)


@_one_blas_thread
def stable_step_size_limit(
    strategy: str | Schedule,
    A: np.ndarray | None,
    problem: QuadraticNetwork,
    *,
    local_steps: int | None = None,
) -> float:
    """μ_max: the first step size above 0 at which ρ(Φ(μ)) reaches 1 (scan, then brentq)."""
    schedule = as_schedule(strategy, A, local_steps=local_steps)
    phi = _mean_period_operator(schedule, problem)

    def excess(mu: float) -> float:
        return _radius(phi(mu), schedule.period) - 1.0

    hi = 1e-3 / np.linalg.eigvalsh(problem.aggregate_hessian)[-1]
    while excess(hi) < 0:
        hi *= 2.0
        if hi > 1e12:
            return float("inf")
    grid = np.linspace(0.0, hi, 65)[1:]
    first_bad = next(i for i, mu in enumerate(grid) if excess(mu) >= 0)
    lo = grid[first_bad - 1] if first_bad > 0 else 0.0
    if excess(lo) >= 0:
        return float(lo)
    return float(scipy.optimize.brentq(excess, lo, grid[first_bad], xtol=1e-12 * hi))


def _check_stable(schedule, problem, mu, modes) -> None:
    if modes is not None:
        alpha = np.prod(modes.a, axis=0)
        rho = float(np.max(np.abs(alpha)))
    else:
        rho = float(np.max(np.abs(np.linalg.eigvals(_mean_period_operator(schedule, problem)(mu)))))
    if rho >= 1.0 - 1e-12:
        limit = stable_step_size_limit(schedule, None, problem)
        raise UnstableStepSizeError(
            schedule.name, mu, limit, f"spectral radius {rho ** (1 / schedule.period):.6g} >= 1"
        )


# ---- public API ---------------------------------------------------------------------------
def check_stable(
    strategy: str | Schedule,
    A: np.ndarray | None,
    problem: QuadraticNetwork,
    step_size: float,
    *,
    local_steps: int | None = None,
) -> None:
    """Raise ``UnstableStepSizeError`` (naming μ and the stable range) if ρ(Φ) >= 1."""
    schedule, mu, modes = _resolve(strategy, A, problem, step_size, "auto", local_steps)
    _check_stable(schedule, problem, mu, modes)


@_one_blas_thread
def moments(
    strategy: str | Schedule,
    A: np.ndarray | None,
    problem: QuadraticNetwork,
    step_size: float,
    n_steps: int,
    *,
    initial_error: np.ndarray | None = None,
    local_steps: int | None = None,
    method: str = "auto",
    allow_unstable: bool = False,
) -> Moments:
    """Exact EE_n, MSD_n and CD_n for n = 1..n_steps, started at w̃_0 (default w*: w̃_0 = 0).

    ``initial_error`` is w* − w_0, of shape (d,) (all agents) or (K, d); it is deterministic.
    Raises ``UnstableStepSizeError`` if the recursion is unstable, unless ``allow_unstable``.
    """
    schedule, mu, modes = _resolve(strategy, A, problem, step_size, method, local_steps)
    n = positive_int(n_steps, "n_steps")
    if not allow_unstable:
        _check_stable(schedule, problem, mu, modes)
    K, d = problem.n_agents, problem.dim
    w0 = np.zeros((K, d))
    if initial_error is not None:
        try:
            w0 = np.broadcast_to(np.asarray(initial_error, dtype=float), (K, d)).copy()
        except ValueError as exc:
            raise InvalidInputError(
                f"initial_error must have shape ({d},) or ({K}, {d}); got {np.shape(initial_error)}"
            ) from exc
    ee, msd, cd = np.empty(n), np.empty(n), np.empty(n)
    if modes is not None:
        m = modes.U.T @ w0 @ modes.V
        c = np.zeros_like(m)
        for t in range(n):
            a, g = modes.a[t % schedule.period], modes.g[t % schedule.period]
            m = a * m + g * modes.delta
            c = a**2 * c + g**2 * modes.noise
            second = m**2 + c
            ee[t] = 0.5 * (second @ modes.h).sum() / K
            msd[t] = second.sum() / K
            cd[t] = second[1:].sum() / K
    else:
        maps = _dense_maps(schedule, problem, mu)
        hess, proj = _readout_weights(problem)
        m, C = w0.reshape(-1), np.zeros((K * d, K * d))
        for t in range(n):
            F, cf, Qf = maps[t % schedule.period]
            m = F @ m + cf
            C = F @ C @ F.T + Qf
            ee[t] = 0.5 * (m @ hess @ m + np.sum(hess * C)) / K
            msd[t] = (m @ m + np.trace(C)) / K
            cd[t] = (m @ proj @ m + np.sum(proj * C)) / K
    return Moments(ee, msd, cd)


def escaping_efficiency(
    strategy: str | Schedule,
    A: np.ndarray | None,
    problem: QuadraticNetwork,
    step_size: float,
    n_steps: int,
    **kwargs,
) -> np.ndarray:
    """EE_1..EE_n = (1/K) Σ_k E J(w_k,n) − J(w*), started at w*, quadratic read-out with H̄.

    Definition: shared/research/flatness_tradeoff.md §3.2 ([R]; after Zhu et al., ICML 2019).
    Keyword arguments as in ``moments``.
    """
    return moments(strategy, A, problem, step_size, n_steps, **kwargs).escaping_efficiency


@_one_blas_thread
def steady_state(
    strategy: str | Schedule,
    A: np.ndarray | None,
    problem: QuadraticNetwork,
    step_size: float,
    *,
    local_steps: int | None = None,
    method: str = "auto",
) -> SteadyState:
    """Steady-state excess risk, MSD and consensus distance (n → ∞).

    Dense: m∞ = (I − Φ)⁻¹ c and C∞ = Φ C∞ Φᵀ + Q (scipy.linalg.solve_discrete_lyapunov) for
    the period map, then propagated through the period's phases and averaged over them.
    Modal: the same per scalar mode, m∞ = β/(1 − α), c∞ = γ/(1 − α²).
    """
    schedule, mu, modes = _resolve(strategy, A, problem, step_size, method, local_steps)
    _check_stable(schedule, problem, mu, modes)
    K = problem.n_agents
    reads = []
    if modes is not None:
        alpha, beta, gamma = _modal_period_map(modes)
        m, c = beta / (1 - alpha), gamma / (1 - alpha**2)
        for a, g in zip(modes.a, modes.g, strict=True):
            m, c = a * m + g * modes.delta, a**2 * c + g**2 * modes.noise
            second = m**2 + c
            reads.append((0.5 * (second @ modes.h).sum(), second.sum(), second[1:].sum()))
        used = "modal"
    else:
        maps = _dense_maps(schedule, problem, mu)
        Phi, cP, QP = _dense_period_map(maps)
        m = np.linalg.solve(np.eye(len(cP)) - Phi, cP)
        C = scipy.linalg.solve_discrete_lyapunov(Phi, QP)
        hess, proj = _readout_weights(problem)
        for F, cf, Qf in maps:
            m, C = F @ m + cf, F @ C @ F.T + Qf
            reads.append(
                (
                    0.5 * (m @ hess @ m + np.sum(hess * C)),
                    m @ m + np.trace(C),
                    m @ proj @ m + np.sum(proj * C),
                )
            )
        used = "dense"
    er, msd, cd = np.mean(reads, axis=0) / K
    return SteadyState(float(er), float(msd), float(cd), used)
