"""Numbers from the derived expressions: ``lambdify`` (numpy) evaluated on a network instance.

``problem`` is duck-typed (a ``numerics.problems.QuadraticNetwork`` or anything with
``hessians`` (K, d, d), ``gradients_at_optimum`` (K, d), ``noise_covariances`` (K, d, d),
``batch_size``, ``n_agents`` and ``dim``); theory never imports numerics.

Modes (``theory.recursion``): A = U Λ Uᵀ with u_1 = 1/√K (U spans 1^⊥ in its other columns, so
A = I works too), H = V diag(h) Vᵀ, δ = Uᵀ D V, q_{i,m} = Σ_k U_{ki}² v_mᵀ R_k v_m / B. Every
modal quantity sums a lambdified per-mode expression over the average mode (i = 1) and the
network modes (i ≥ 2). Sources: ``theory.excess_risk``, ``theory.escape``,
``theory.escape_time``, ``theory.ordering`` (all derived here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import sympy as sp

from theory import DerivationError
from theory import escape as esc
from theory import escape_time as et
from theory import excess_risk as er
from theory.ordering import step_condition
from theory.recursion import (
    STRATEGIES,
    K,
    check_strategy,
    delta,
    h,
    lam,
    mode_coefficients,
    mu,
    n,
    q,
)

__all__ = [
    "QUANTITIES",
    "STRATEGIES",
    "escape_time",
    "escaping_efficiency",
    "excess_risk",
    "modal_decomposition",
    "msd",
    "one_step_difference_terms",
    "one_step_escaping_efficiency",
    "ordering_step_limit",
    "predict",
    "steady_state",
]
QUANTITIES = ("excess-risk", "msd", "escaping-efficiency", "one-step", "escape-time")
_NET = (mu, lam, h, delta, q, K)
_AVG = (mu, h, q, K)


@dataclass(frozen=True)
class Modes:
    """Modal data: ``lam`` (K,), ``h`` (M,), ``delta`` and ``q`` (K, M); row 0 is i = 1."""

    lam: np.ndarray
    h: np.ndarray
    delta: np.ndarray
    q: np.ndarray
    n_agents: int
    batch_size: int


def _arrays(problem: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    try:
        H = np.asarray(problem.hessians, dtype=float)
        D = np.asarray(problem.gradients_at_optimum, dtype=float)
        R = np.asarray(problem.noise_covariances, dtype=float)
        batch = int(problem.batch_size)
    except AttributeError as exc:
        raise DerivationError(
            "problem must have hessians, gradients_at_optimum, noise_covariances and batch_size "
            f"(a QuadraticNetwork); got {type(problem).__name__}"
        ) from exc
    return H, D, R, batch


def check_matrix(A: Any, n_agents: int, *, symmetric: bool) -> np.ndarray:
    """A as a float K×K doubly-stochastic matrix (and symmetric if asked), else DerivationError."""
    A = np.asarray(A, dtype=float)
    if A.shape != (n_agents, n_agents):
        raise DerivationError(f"A must be {n_agents}×{n_agents} (n_agents); got shape {A.shape}")
    if np.abs(A.sum(axis=0) - 1).max() > 1e-9 or np.abs(A.sum(axis=1) - 1).max() > 1e-9:
        raise DerivationError("A must be doubly stochastic (rows and columns summing to 1)")
    if symmetric and np.abs(A - A.T).max() > 1e-12:
        raise DerivationError(
            f"A must be symmetric for the modal forms; max |A − Aᵀ| = {np.abs(A - A.T).max():.3g}"
            " (use order=1 or the one-step form for a non-symmetric A)"
        )
    return A


def check_step_size(step_size: Any) -> float:
    """μ as a positive finite float, else DerivationError."""
    mu_ = float(step_size)
    if not (math.isfinite(mu_) and mu_ > 0):
        raise DerivationError(f"step_size must be a positive finite number; got {step_size!r}")
    return mu_


def modal_decomposition(strategy: str, A: Any, problem: Any) -> Modes:
    """The modes of ``strategy`` on (A, problem); needs symmetric A and equal Hessians."""
    H, D, R, batch = _arrays(problem)
    Kn = H.shape[0]
    if check_strategy(strategy) == "centralized":
        A = np.full((Kn, Kn), 1.0 / Kn)  # centralized uses J whatever A is
    A = check_matrix(A, Kn, symmetric=True)
    if not np.allclose(H, H[:1], rtol=1e-12, atol=1e-14 * max(np.abs(H).max(), 1.0)):
        raise DerivationError(
            "the modal forms need equal Hessians across agents (hessians[k] all equal); use "
            "order=1 or the one-step form for heterogeneous Hessians"
        )
    basis = np.linalg.qr(np.column_stack([np.ones(Kn), np.eye(Kn)[:, : Kn - 1]]))[0]
    ones, perp = np.full(Kn, 1 / np.sqrt(Kn)), basis[:, 1:]
    lam_perp, W = np.linalg.eigh(perp.T @ A @ perp)
    U = np.column_stack([ones, perp @ W])
    hs, V = np.linalg.eigh(H[0])
    rv = np.einsum("dm,kde,em->km", V, R, V) / batch
    return Modes(np.concatenate([[1.0], lam_perp]), hs, U.T @ D @ V, (U**2).T @ rv, Kn, batch)


def average_modes(problem: Any) -> Modes:
    """Only the average mode, of H̄ and R̄ (the centroid; first order, heterogeneous agents)."""
    H, _, R, batch = _arrays(problem)
    hs, V = np.linalg.eigh(H.mean(axis=0))
    qs = np.einsum("dm,de,em->m", V, R.mean(axis=0), V) / batch
    zeros = np.zeros((1, hs.size))
    return Modes(np.ones(1), hs, zeros, qs[None, :], H.shape[0], batch)


@cache
def _lambdified(kind: str, strategy: str, network: bool, order: int | None):
    if kind == "a":
        expr = mode_coefficients(strategy, network)[0]
    elif kind == "ee":
        expr = esc.mode_escaping_efficiency(strategy, network)
        return sp.lambdify((*(_NET if network else _AVG), n), expr, "numpy")
    elif order is None:
        expr = er.mode_steady_state(kind, strategy, network)
    else:
        expr = er.mode_series(kind, strategy, network, order)
    return sp.lambdify(_NET if network else _AVG, expr, "numpy")


def _mode_args(md: Modes, mu_: float, network: bool) -> tuple:
    if network:
        return (mu_, md.lam[1:, None], md.h[None, :], md.delta[1:], md.q[1:], md.n_agents)
    return (mu_, md.h, md.q[0], md.n_agents)


def mode_a(strategy: str, md: Modes, mu_: float) -> list[np.ndarray]:
    """The a of every present mode: [average (M,), network (K−1, M) if driven]."""
    out = [
        np.broadcast_to(
            _lambdified("a", strategy, False, None)(*_mode_args(md, mu_, False)), md.h.shape
        )
    ]
    if mode_coefficients(strategy, True)[1] != 0 and md.n_agents > 1:
        args = _mode_args(md, mu_, True)
        out.append(np.broadcast_to(_lambdified("a", strategy, True, None)(*args), md.q[1:].shape))
    return out


def _require_stable(strategy: str, md: Modes, mu_: float) -> None:
    rho = max(float(np.abs(a).max()) for a in mode_a(strategy, md, mu_))
    if rho >= 1.0:
        raise DerivationError(
            f"step_size={mu_:.6g} is outside the stable range for {strategy}: a mode has |a| = "
            f"{rho:.6g} >= 1, so the steady state does not exist"
        )


def _sum_modes(fn_kind: str, strategy: str, md: Modes, mu_: float, order: int | None) -> float:
    total = float(np.sum(_lambdified(fn_kind, strategy, False, order)(*_mode_args(md, mu_, False))))
    if md.n_agents > 1 and mode_coefficients(strategy, True)[1] != 0:
        args = _mode_args(md, mu_, True)
        total += float(np.sum(_lambdified(fn_kind, strategy, True, order)(*args)))
    return total


def steady_state(
    quantity: str,
    strategy: str,
    A: Any,
    problem: Any,
    step_size: float,
    *,
    order: int | None = None,
) -> float:
    """Steady-state excess risk or MSD: exact per mode (``order=None``) or to order 1 or 2."""
    er.check_quantity(quantity)
    mu_ = check_step_size(step_size)
    if order not in (None, *er.ORDERS):
        raise DerivationError(f"order={order!r} is not supported; allowed: None, 1, 2")
    if order == 1:  # centroid: any doubly-stochastic A, heterogeneous agents
        if check_strategy(strategy) != "centralized":  # centralized uses J whatever A is
            check_matrix(A, _arrays(problem)[0].shape[0], symmetric=False)
        return _sum_modes(quantity, strategy, average_modes(problem), mu_, 1)
    md = modal_decomposition(strategy, A, problem)
    if order == 2 and md.n_agents > 1 and np.abs(md.lam[1:]).max() >= 1 - 1e-12:
        raise DerivationError("order=2 needs a spectral gap: max_{i>=2} |lambda_i| < 1")
    if order is None:
        _require_stable(strategy, md, mu_)
    return _sum_modes(quantity, strategy, md, mu_, order)


def excess_risk(
    strategy: str, A: Any, problem: Any, step_size: float, *, order: int | None = None
) -> float:
    """Steady-state ER = (1/2K) Σ_{i,m} h_m E y²: exact, or its μ-series to ``order``."""
    return steady_state("excess-risk", strategy, A, problem, step_size, order=order)


def msd(
    strategy: str, A: Any, problem: Any, step_size: float, *, order: int | None = None
) -> float:
    """Steady-state MSD = (1/K) Σ_{i,m} E y²: exact, or its μ-series to ``order``."""
    return steady_state("msd", strategy, A, problem, step_size, order=order)


def _ee_steps(strategy: str, md: Modes, mu_: float, steps: np.ndarray) -> np.ndarray:
    steps = np.asarray(steps, dtype=np.int64)
    out = np.zeros(steps.shape, dtype=float)
    a_all = mode_a(strategy, md, mu_)
    if any(np.any(np.abs(np.abs(a) - 1) < 1e-15) for a in a_all):
        raise DerivationError(
            f"step_size={mu_:.6g}: a mode has |a| = 1 (marginal); closed form undefined"
        )
    for network in (False, True):
        if network and (md.n_agents == 1 or mode_coefficients(strategy, True)[1] == 0):
            continue
        fn = _lambdified("ee", strategy, network, None)
        args = _mode_args(md, mu_, network)
        nn = steps.reshape(-1, *([1] * (2 if network else 1)))
        vals = np.broadcast_to(
            fn(*args, nn), (steps.size, *(md.q[1:].shape if network else md.h.shape))
        )
        out += vals.reshape(steps.size, -1).sum(axis=1).reshape(steps.shape)
    return out


def escaping_efficiency(
    strategy: str, A: Any, problem: Any, step_size: float, n_steps: int
) -> np.ndarray:
    """EE_1..EE_{n_steps} from the per-mode closed forms (symmetric A, equal Hessians)."""
    if int(n_steps) < 1:
        raise DerivationError(f"n_steps must be an integer >= 1; got {n_steps!r}")
    md = modal_decomposition(strategy, A, problem)
    return _ee_steps(strategy, md, check_step_size(step_size), np.arange(1, int(n_steps) + 1))


def _one_step_parts(
    strategy: str, A: Any, problem: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    H, D, R, batch = _arrays(problem)
    Kn = H.shape[0]
    A2 = {"centralized": np.full((Kn, Kn), 1 / Kn), "consensus": np.eye(Kn)}.get(
        check_strategy(strategy)
    )
    A2 = check_matrix(A, Kn, symmetric=False) if A2 is None else A2
    Hbar = H.mean(axis=0)
    return A2, D @ Hbar @ D.T, np.einsum("ij,lji->l", Hbar, R) / batch, Hbar


def one_step_escaping_efficiency(strategy: str, A: Any, problem: Any, step_size: float) -> float:
    """EE_1 = μ²/(2K) Σ_k [Σ_{l,l'} a_lk a_l'k G_ll' + Σ_l a_lk² t_l/B], a = A2; any H_k, A."""
    mu_ = check_step_size(step_size)
    A2, G, t, _ = _one_step_parts(strategy, A, problem)
    Kn = G.shape[0]
    return float(mu_**2 / (2 * Kn) * (np.einsum("lk,mk,lm->", A2, A2, G) + (A2**2).T.dot(t).sum()))


def one_step_difference_terms(
    pair: str, A: Any, problem: Any, step_size: float
) -> dict[str, np.ndarray]:
    """The non-negative terms of EE_1(first) − EE_1(second) (``theory.escape``), as arrays
    already multiplied by μ²/(2K): 'heterogeneity' and 'noise'."""
    mu_ = check_step_size(step_size)
    A2, G, t, Hbar = _one_step_parts("diffusion", A, problem)
    D = _arrays(problem)[1]
    Kn, c = G.shape[0], mu_**2 / (2 * G.shape[0])
    dhat = A2.T @ D  # row k: Σ_l a_lk d_l
    if pair == "consensus-diffusion":
        diff = D[:, None, :] - dhat[None, :, :]  # (l, k, dim)
        het = A2 * np.einsum("lki,ij,lkj->lk", diff, Hbar, diff)
        noise = A2 * (1 - A2) * t[:, None]
    elif pair == "diffusion-centralized":
        het = np.einsum("ki,ij,kj->k", dhat, Hbar, dhat)
        noise = (A2 - 1 / Kn) ** 2 * t[:, None]
    else:
        raise DerivationError(f"pair={pair!r}; allowed: {', '.join(esc.PAIRS)}")
    return {"heterogeneity": c * het, "noise": c * noise}


def escape_time(
    strategy: str,
    A: Any,
    problem: Any,
    step_size: float,
    level: float,
    *,
    approximation: bool = False,
    max_steps: int = 10**7,
) -> float:
    """n_ε = min{n : EE_n ≥ level} (``math.inf`` if never); ``approximation``: the small-μ
    centralized form 2KBε/(μ² Tr(H̄R̄)) (real-valued, not rounded)."""
    mu_, eps = check_step_size(step_size), float(level)
    if not (math.isfinite(eps) and eps > 0):
        raise DerivationError(f"level must be a positive finite number; got {level!r}")
    if approximation:
        if check_strategy(strategy) != "centralized":
            raise DerivationError("the small-step escape time is derived for centralized only")
        H, _, R, batch = _arrays(problem)
        fn = sp.lambdify((mu, et.epsilon, K, er.B, et.tr_hr), et.small_step_escape_time(), "numpy")
        return float(fn(mu_, eps, H.shape[0], batch, np.einsum("ij,ji->", H.mean(0), R.mean(0))))
    md = modal_decomposition(strategy, A, problem)
    ee = lambda steps: _ee_steps(strategy, md, mu_, steps)  # noqa: E731
    rho = max(float(np.abs(a).max()) for a in mode_a(strategy, md, mu_))
    if strategy == "centralized":  # increasing in n: bisection
        if rho < 1 and _sum_modes("excess-risk", strategy, md, mu_, None) < eps:
            return math.inf  # EE_n < EE_∞ < ε for every n
        hi = 1
        while ee(np.array([hi]))[0] < eps:
            if hi > max_steps:
                raise DerivationError(f"escape_time undecided after max_steps={max_steps}")
            hi *= 2
        lo = hi // 2
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if ee(np.array([mid]))[0] < eps else (lo, mid)
        return float(hi)
    bounds = _mean_bound(strategy, md, mu_) if rho < 1 else None
    start, chunk = 1, 256
    while start <= max_steps:
        steps = np.arange(start, start + chunk)
        hit = np.flatnonzero(ee(steps) >= eps)
        if hit.size:
            return float(steps[hit[0]])
        if bounds is not None and bounds[0] + bounds[1] * ((1 + rho ** steps[-1]) ** 2 - 1) < eps:
            return math.inf
        start, chunk = start + chunk, min(2 * chunk, 1 << 16)
    raise DerivationError(f"escape_time undecided after max_steps={max_steps}; EE_inf ≈ level?")


def _mean_bound(strategy: str, md: Modes, mu_: float) -> tuple[float, float]:
    """(EE_∞, Σ h/(2K) m∞²): EE_n ≤ EE_∞ + Σ h/(2K) m∞² ((1 + ρⁿ)² − 1) (theory.escape_time)."""
    steady = _sum_modes("excess-risk", strategy, md, mu_, None)
    if md.n_agents == 1:
        return steady, 0.0  # only the average mode, whose mean is 0
    a = mode_a(strategy, md, mu_)[-1]
    g = sp.lambdify(_NET, mode_coefficients(strategy, True)[1], "numpy")(*_mode_args(md, mu_, True))
    mean_sq = (md.h[None, :] * (g * md.delta[1:] / (1 - a)) ** 2).sum() / (2 * md.n_agents)
    return steady, float(mean_sq)


def ordering_step_limit(A: Any, problem: Any) -> float:
    """min_{i≥2} x*(λ_i) / h_max with x*(λ) = min(1, (1 + λ)²/(1 + λ²)) (``theory.ordering``)."""
    md = modal_decomposition("consensus", A, problem)
    fn = sp.lambdify(lam, step_condition(), "numpy")
    return float(np.min(fn(md.lam[1:])) / md.h.max()) if md.n_agents > 1 else math.inf


def predict(
    strategy: str,
    A: Any,
    problem: Any,
    step_size: float,
    *,
    quantity: str = "excess-risk",
    **kwargs: Any,
) -> Any:
    """The prediction of ``quantity`` (one of ``QUANTITIES``) for ``strategy`` on (A, problem)
    at ``step_size``; other keyword arguments go to the function (``order``, ``n_steps``,
    ``level``, ``approximation``)."""
    table = {
        "excess-risk": excess_risk,
        "msd": msd,
        "escaping-efficiency": escaping_efficiency,
        "one-step": one_step_escaping_efficiency,
        "escape-time": escape_time,
    }
    if quantity not in table:
        raise DerivationError(
            f"quantity={quantity!r} is not known; allowed: {', '.join(QUANTITIES)}"
        )
    check_strategy(strategy)
    return table[quantity](strategy, A, problem, step_size, **kwargs)
