"""Checks of the core engine: Monte Carlo against exact moments, the escape ordering, and
the special cases A = J, A = I and zero noise.

Sources: the unified error recursion and escaping efficiency are reconstructions
(shared/research/flatness_tradeoff.md §2.6, §3.2, §4.1–4.3, tag [R]); the orderings are the
paper's qualitative claims (arXiv 2406.20006 abstract, [S]); the step-size regime of the
ordering is derived here (``ordering_step_limit``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from numerics.checks.base import Check, CheckResult, register
from numerics.checks.instances import NETWORK_DEFAULTS, derived_seed, network_instance
from numerics.moments import check_stable, escaping_efficiency, stable_step_size_limit
from numerics.problems import QuadraticNetwork, random_quadratic_network
from numerics.simulate import simulate
from numerics.stats import DEFAULT_ALPHA
from numerics.strategies import STRATEGIES, averaging_matrix, make_schedule
from numerics.topology import combination_matrix, make_graph

NOTE = "shared/research/flatness_tradeoff.md"
TOL = 1e-10  # relative tolerance of deterministic (exact-arithmetic) comparisons


def _exact_row(
    check: Check,
    case: str,
    predicted: np.ndarray,
    measured: np.ndarray,
    params: dict[str, Any],
    seed: int,
    tol: float = TOL,
) -> CheckResult:
    """Row for a deterministic equality of two curves: the largest relative deviation."""
    scale = np.maximum(np.abs(predicted), np.finfo(float).tiny)
    rel = np.abs(np.asarray(measured) - predicted) / scale
    worst = int(np.argmax(rel))
    return check.result(
        case,
        predicted[worst],
        measured[worst],
        (measured[worst] - tol * scale[worst], measured[worst] + tol * scale[worst]),
        params,
        seed,
        f"largest relative deviation {rel[worst]:.2e} at n={worst + 1} (tolerance {tol:g})",
    )


# ---- Monte Carlo equals exact moments ---------------------------------------------------
@register(
    "ee-monte-carlo",
    claim="Monte Carlo EE_n equals the exact moment recursion for each strategy, every n",
    source=f"{NOTE} §4.2 (moment recursion, [R]); exact for quadratic risks",
    tag="R",
    relation="equal",
    defaults={**NETWORK_DEFAULTS, "step_size": 0.1, "n_steps": 100, "trials": 20000},
    quick={"n_agents": 10, "n_steps": 50, "trials": 4000},
)
def ee_monte_carlo(check: Check, p: dict[str, Any], seed: int) -> list[CheckResult]:
    A, problem = network_instance(p, seed, check.name)
    exact_ee = {
        s: escaping_efficiency(s, A, problem, p["step_size"], p["n_steps"]) for s in STRATEGIES
    }  # first: raises on an unstable step size
    sim = simulate(
        STRATEGIES,
        A,
        problem,
        p["step_size"],
        p["n_steps"],
        p["trials"],
        seed=seed,
        experiment=check.name,
    )
    comparisons = len(STRATEGIES) * p["n_steps"]
    rows = []
    for s in STRATEGIES:
        exact, mc = exact_ee[s], sim[s]
        lo, hi = mc.interval("ee", alpha=DEFAULT_ALPHA, comparisons=comparisons)
        z = np.abs(mc.mean["ee"] - exact) / np.maximum(mc.standard_error["ee"], 1e-300)
        worst = int(np.argmax(z))
        inside = bool(np.all((lo <= exact) & (exact <= hi)))
        row = check.result(
            s,
            exact[worst],
            mc.mean["ee"][worst],
            (lo[worst], hi[worst]),
            p,
            seed,
            f"worst n={worst + 1}, max |z|={z[worst]:.2f}; Bonferroni over "
            f"{comparisons} comparisons at family level {DEFAULT_ALPHA:g}; "
            f"{p['trials']} trials",
        )
        row.verdict = inside
        rows.append(row)
    return rows


# ---- ordering of escaping efficiencies --------------------------------------------------
def ordering_step_limit(A: np.ndarray, problem: QuadraticNetwork) -> float:
    """μ̄ = (1 − ℓ)² / ((1 + ℓ²) h_max), ℓ = max(0, −λ_min(A)), h_max = max_k ‖H_k‖.

    Derived here (not from the paper): in the mode form (note §4.3) with a network mode of
    eigenvalue λ = −ℓ, the heterogeneity term of EE_2 is μ²δ²(1 + λ − μh)² for consensus and
    μ²δ²λ²(1 + λ(1 − μh))² for diffusion; consensus ≥ diffusion at n = 2 iff
    μh ≤ (1 − ℓ)² / (1 + ℓ²). Below μ̄ the ordering is checked at every n; above it a
    counterexample is checked (``ee-ordering-boundary``). For A ⪰ 0 this is μ h_max ≤ 1.
    """
    ell = max(0.0, -float(np.linalg.eigvalsh(0.5 * (A + A.T))[0]))
    h_max = float(np.linalg.eigvalsh(problem.hessians)[:, -1].max())
    return (1 - ell) ** 2 / ((1 + ell**2) * h_max)


def _sharpen(A: np.ndarray, fraction: float) -> np.ndarray:
    """A − c (I − A), c = fraction · max_k a_kk/(1 − a_kk): doubly stochastic, more negative λ."""
    diag = np.diag(A)
    off = diag < 1
    c_max = float(np.min(diag[off] / (1 - diag[off]))) if off.any() else 0.0
    return A - fraction * c_max * (np.eye(len(A)) - A)


_ORDER_GRAPHS = (
    ("ring", range(3, 13)),
    ("star", range(3, 13)),
    ("complete", range(2, 9)),
    ("erdos_renyi", range(4, 13)),
    ("exponential", range(4, 13)),
    ("grid", (4, 6, 8, 9, 12)),
    ("hypercube", (2, 4, 8)),
)


def random_ordering_instance(seed: int, index: int, max_dim: int):
    """The ``index``-th random instance of the ordering check: (A, problem, μ, description)."""
    rng = np.random.default_rng(derived_seed(seed, "ee-ordering", index))
    name, sizes = _ORDER_GRAPHS[int(rng.integers(len(_ORDER_GRAPHS)))]
    K = int(rng.choice(list(sizes)))
    A = combination_matrix(
        make_graph(name, K, seed=int(rng.integers(2**31)), edge_probability=0.4),
        ("metropolis", "max_degree")[int(rng.integers(2))],
    )
    if rng.random() < 0.5:
        A = _sharpen(A, rng.uniform(0.3, 0.95))
    problem = random_quadratic_network(
        K,
        int(rng.integers(1, max_dim + 1)),
        seed=int(rng.integers(2**31)),
        hessian_heterogeneity=rng.uniform(0, 1),
        gradient_heterogeneity=rng.uniform(0, 3),
        noise_heterogeneity=rng.uniform(0, 1),
        batch_size=int(rng.choice([1, 1000])),
    )
    limit = min(
        [ordering_step_limit(A, problem)]
        + [0.99 * stable_step_size_limit(s, A, problem) for s in STRATEGIES]
    )
    mu = rng.uniform(0.02, 1.0) * limit
    lam_min = float(np.linalg.eigvalsh(A)[0])
    return (
        A,
        problem,
        mu,
        f"{name} K={K} d={problem.dim} B={problem.batch_size} λ_min(A)={lam_min:.3f} μ={mu:.4g}",
    )


@register(
    "ee-ordering",
    claim="EE_n(consensus) ≥ EE_n(diffusion) ≥ EE_n(centralized) at every n, on random "
    "heterogeneous instances (A with negative eigenvalues included), for μ below the "
    "ordering limit (1−ℓ)²/((1+ℓ²)h_max) derived here",
    source=f"arXiv 2406.20006 abstract [S] (qualitative); {NOTE} §4.2 [R]; regime derived here",
    tag="S/R",
    relation="lower",
    defaults={"instances": 400, "n_steps": 60, "max_dim": 3},
    quick={"instances": 200, "n_steps": 40},
)
def ee_ordering(check: Check, p: dict[str, Any], seed: int) -> list[CheckResult]:
    pairs = (("consensus", "diffusion"), ("diffusion", "centralized"))
    worst = {pair: (np.inf, "") for pair in pairs}
    negative = 0
    for i in range(p["instances"]):
        A, problem, mu, desc = random_ordering_instance(seed, i, p["max_dim"])
        negative += bool(np.linalg.eigvalsh(A)[0] < -1e-12)
        ee = {s: escaping_efficiency(s, A, problem, mu, p["n_steps"]) for s in STRATEGIES}
        for a, b in pairs:
            margin = (ee[a] - ee[b]) / ee[a]
            n = int(np.argmin(margin))
            if margin[n] < worst[a, b][0]:
                worst[a, b] = (float(margin[n]), f"instance {i} ({desc}), n={n + 1}")
    rows = []
    for (a, b), (margin, where) in worst.items():
        rows.append(
            check.result(
                f"{a} ≥ {b}",
                0.0,
                margin,
                (margin - TOL, margin + TOL),
                p,
                seed,
                f"smallest relative margin (EE_{a} − EE_{b})/EE_{a} over {p['instances']} "
                f"instances ({negative} with negative eigenvalues) and n ≤ {p['n_steps']}: "
                f"at {where}",
            )
        )
    return rows


@register(
    "ee-ordering-boundary",
    claim="The derived step limit is sharp: on two agents with λ_2(A) = −ℓ, consensus ≥ "
    "diffusion holds at every n just below (1−ℓ)²/((1+ℓ²)h) and fails at n = 2 just above",
    source="derived here from the mode form of " + NOTE + " §4.3 [R]",
    tag="derived",
    relation="lower",
    defaults={"ell": 0.8, "below": 0.99, "above": 1.01, "n_steps": 60},
)
def ee_ordering_boundary(check: Check, p: dict[str, Any], seed: int) -> list[CheckResult]:
    a = (1 + p["ell"]) / 2  # λ_2 = 1 − 2a = −ℓ
    A = np.array([[1 - a, a], [a, 1 - a]])
    problem = QuadraticNetwork(
        np.ones((2, 1, 1)), np.array([[1.0], [-1.0]]), np.ones((2, 1, 1)), batch_size=10**9
    )
    rows = []
    for case, factor, relation in (
        ("below the limit", p["below"], "lower"),
        ("above the limit", p["above"], "upper"),
    ):
        mu = factor * ordering_step_limit(A, problem)
        con = escaping_efficiency("consensus", A, problem, mu, p["n_steps"])
        dif = escaping_efficiency("diffusion", A, problem, mu, p["n_steps"])
        margin = (con - dif) / con
        n = int(np.argmin(margin))
        rows.append(
            check.result(
                case,
                0.0,
                margin[n],
                (margin[n] - TOL, margin[n] + TOL),
                p,
                seed,
                f"μ = {factor:g} × limit; smallest relative margin (EE_con − EE_dif)/EE_con at "
                f"n={n + 1}",
                relation=relation,
            )
        )
    return rows


# ---- special cases ----------------------------------------------------------------------
def _independent_sgd_ee(problem: QuadraticNetwork, mu: float, n_steps: int) -> np.ndarray:
    """EE_n of K separate SGD runs (agent k on J_k alone), each from w*, read out with H̄."""
    K, d = problem.n_agents, problem.dim
    F = np.eye(d)[None] - mu * problem.hessians
    Q = mu**2 * problem.noise_covariances / problem.batch_size
    m, C = np.zeros((K, d)), np.zeros((K, d, d))
    Hbar, out = problem.aggregate_hessian, np.empty(n_steps)
    for t in range(n_steps):
        m = np.einsum("kij,kj->ki", F, m) + mu * problem.gradients_at_optimum
        C = F @ C @ np.swapaxes(F, 1, 2) + Q
        out[t] = 0.5 * (np.einsum("ki,ij,kj->", m, Hbar, m) + np.einsum("ij,kji->", Hbar, C)) / K
    return out


def _deterministic_ee(schedule, problem: QuadraticNetwork, mu: float, n_steps: int) -> np.ndarray:
    """EE_n of the noiseless recursion W̃ ← A2ᵀ(A1ᵀW̃ − μHW̃ + μd), iterated on one (K, d) array."""
    W, out = np.zeros((problem.n_agents, problem.dim)), np.empty(n_steps)
    for t in range(n_steps):
        A1, A2 = schedule.at(t + 1)
        W = A2.T @ (
            A1.T @ W
            - mu * np.einsum("kij,kj->ki", problem.hessians, W)
            + mu * problem.gradients_at_optimum
        )
        out[t] = problem.risk_excess(W).mean()
    return out


def _consensus_excess_full_averaging(
    problem: QuadraticNetwork, mu: float, n_steps: int
) -> np.ndarray:
    """EE_con − EE_cen for A = J and equal Hessians, closed form of the network modes.

    With A = J every network mode i ≥ 2 has λ_i = 0, so consensus's mode (i, m) is
    y ← −μh_m y + μ(δ + s) (note §4.3: a = λ − μh, g = μ), while centralized has no such
    modes: EE_con − EE_cen = (1/2K) Σ_{i≥2,m} h_m [ (μδ_im (1 − a^n)/(1 − a))²
    + μ² Q_im (1 − a^{2n})/(1 − a²) ], a = −μh_m. The basis of 1^⊥ is any orthonormal one.
    """
    K = problem.n_agents
    h, V = np.linalg.eigh(problem.hessians[0])
    U = np.linalg.qr(np.column_stack([np.ones(K), np.eye(K)[:, : K - 1]]))[0][:, 1:]
    delta = U.T @ problem.gradients_at_optimum @ V
    Q = (U**2).T @ np.einsum("dm,kde,em->km", V, problem.noise_covariances, V) / problem.batch_size
    a = -mu * h
    n = np.arange(1, n_steps + 1)[:, None, None]
    mean = mu * delta * (1 - a**n) / (1 - a)
    var = mu**2 * Q * (1 - a ** (2 * n)) / (1 - a**2)
    return 0.5 * ((mean**2 + var) * h).sum(axis=(1, 2)) / K


SPECIAL_DEFAULTS = {
    **NETWORK_DEFAULTS,
    "n_agents": 8,
    "dim": 3,
    "step_size": 0.1,
    "n_steps": 40,
    "trials": 500,
}


@register(
    "full-averaging",
    claim="With A = 11ᵀ/K diffusion coincides with centralized (moments and every iterate); "
    "consensus does not: it exceeds centralized by its disagreement modes (closed form)",
    source=f"{NOTE} §4.3 mode form [R]; DESIGN.md strategy table",
    tag="R",
    relation="equal",
    defaults={**SPECIAL_DEFAULTS, "hessian_heterogeneity": 0.0},
)
def full_averaging(check: Check, p: dict[str, Any], seed: int) -> list[CheckResult]:
    _, problem = network_instance(p, seed, check.name)
    J, mu, n = averaging_matrix(problem.n_agents), p["step_size"], p["n_steps"]
    cen = escaping_efficiency("centralized", J, problem, mu, n, method="dense")
    dif = escaping_efficiency("diffusion", J, problem, mu, n, method="dense")
    con = escaping_efficiency("consensus", J, problem, mu, n, method="dense")
    rows = [_exact_row(check, "diffusion = centralized (exact)", cen, dif, p, seed)]
    sim = simulate(
        ("centralized", "diffusion"),
        J,
        problem,
        mu,
        n,
        p["trials"],
        seed=seed,
        experiment=check.name,
        keep_final=True,
    )
    gap = float(np.abs(sim["diffusion"].final_errors - sim["centralized"].final_errors).max())
    scale = float(np.abs(sim["centralized"].final_errors).max())
    rows.append(
        check.result(
            "diffusion = centralized (iterates, CRN)",
            0.0,
            gap,
            (gap - TOL * scale, gap + TOL * scale),
            p,
            seed,
            f"max |w_dif − w_cen| over {p['trials']} trials after {n} steps",
        )
    )
    rows.append(
        _exact_row(
            check,
            "consensus − centralized = disagreement modes",
            _consensus_excess_full_averaging(problem, mu, n),
            con - cen,
            p,
            seed,
        )
    )
    return rows


@register(
    "no-combination",
    claim="With A = I consensus and diffusion are K independent SGD runs",
    source="DESIGN.md strategy table; STYLE.md test patterns",
    tag="R",
    relation="equal",
    defaults=dict(SPECIAL_DEFAULTS),
)
def no_combination(check: Check, p: dict[str, Any], seed: int) -> list[CheckResult]:
    _, problem = network_instance(p, seed, check.name)
    eye, mu, n = np.eye(problem.n_agents), p["step_size"], p["n_steps"]
    reference = _independent_sgd_ee(problem, mu, n)
    schedules = [make_schedule(s, eye, validate=False) for s in ("consensus", "diffusion")]
    rows = [
        _exact_row(
            check,
            f"{s.name} = independent SGD (exact)",
            reference,
            escaping_efficiency(s, None, problem, mu, n),
            p,
            seed,
        )
        for s in schedules
    ]
    sim = simulate(
        schedules,
        None,
        problem,
        mu,
        n,
        p["trials"],
        seed=seed,
        experiment=check.name,
        keep_final=True,
    )
    gap = float(np.abs(sim["consensus"].final_errors - sim["diffusion"].final_errors).max())
    rows.append(
        check.result(
            "consensus = diffusion (iterates, CRN)",
            0.0,
            gap,
            (-TOL, TOL),
            p,
            seed,
            f"max |w_con − w_dif| over {p['trials']} trials",
        )
    )
    return rows


@register(
    "zero-noise",
    claim="Without gradient noise the Monte Carlo is the deterministic recursion, with zero "
    "spread, for each strategy",
    source=f"{NOTE} §4.2 [R]",
    tag="R",
    relation="equal",
    defaults={**SPECIAL_DEFAULTS, "trials": 300},
)
def zero_noise(check: Check, p: dict[str, Any], seed: int) -> list[CheckResult]:
    A, problem = network_instance(p, seed, check.name)
    problem = problem.scaled(noise=0.0)
    mu, n = p["step_size"], p["n_steps"]
    for s in STRATEGIES:
        check_stable(s, A, problem, mu)
    sim = simulate(STRATEGIES, A, problem, mu, n, p["trials"], seed=seed, experiment=check.name)
    rows = []
    for s in STRATEGIES:
        reference = _deterministic_ee(make_schedule(s, A), problem, mu, n)
        row = _exact_row(check, s, reference, sim[s].mean["ee"], p, seed, tol=1e-12)
        spread = float(sim[s].standard_error["ee"].max())
        row.details += f"; max standard error {spread:.1e} (round-off only)"
        row.verdict = row.verdict and spread <= 1e-12 * max(float(np.abs(reference).max()), 1e-300)
        rows.append(row)
    return rows
