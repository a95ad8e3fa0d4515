"""Checks of the symbolic theory (``theory``) against the exact moment engine and Monte Carlo.

Claims (all derived here from the mode recursion of shared/research/flatness_tradeoff.md
§4.3 [R]; the note's formulas are reconstructions and these checks decide them):

* ``theory-exact-modes``: the per-mode closed forms of the steady state and of EE_n equal the
  dense moment engine (relative 1e-10) on random symmetric instances;
* ``theory-second-order-slope``: the second-order expansion's error falls as μ³, and where
  that stops (μ h_max against the spectral gap);
* ``theory-first-order-heterogeneous``: μ Tr(R̄)/(4KB) and μ Tr(H̄⁻¹R̄)/(2KB) have a relative
  error O(μ) for heterogeneous H_k, R_k and non-symmetric A;
* ``theory-one-step``: EE_1 and its non-negative decompositions, non-symmetric A;
* ``theory-orderings-monte-carlo``: the predicted EE differences and escape times against
  Monte Carlo with common random numbers.

Slopes of deterministic curves: the local slope of log error against log μ is
p + κμ + O(μ²) (next-order term), so a regression on one window is biased by about κμ̄.
``richardson_slope`` fits two windows a decade apart and extrapolates linearly in μ; its
interval is the regression interval of the lower window widened by the size of the
extrapolation (the stated tolerance for the higher-order terms). The extrapolation is only
trusted when the two windows' slopes differ by at most ``drift_tolerance`` (the curve is in
its asymptotic regime); otherwise the row fails, whatever its interval.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from numerics.checks.base import Check, CheckResult, register
from numerics.checks.core import TOL, _exact_row
from numerics.checks.instances import NETWORK_DEFAULTS, derived_seed, network_instance
from numerics.errors import InvalidInputError
from numerics.moments import escaping_efficiency, stable_step_size_limit, steady_state
from numerics.problems import random_quadratic_network
from numerics.simulate import simulate
from numerics.stats import DEFAULT_ALPHA, fit_slope, mean_interval
from numerics.strategies import STRATEGIES
from numerics.topology import combination_matrix, make_graph, spectral_gap
from theory import predict as theory

NOTE = "shared/research/flatness_tradeoff.md"
QUANTITY = {"excess-risk": "excess_risk", "msd": "msd"}


# ---- helpers ------------------------------------------------------------------------------
def richardson_slope(x: np.ndarray, y: np.ndarray, split: float) -> dict[str, float]:
    """Exponent of y ∝ x^p from a lower window (x < split) and an upper one (x ≥ split).

    With local slope p + κx, the fitted slopes are s_lo ≈ p + κx̄_lo and s_hi ≈ p + κx̄_hi
    (x̄ geometric means), so p ≈ s_lo − (s_hi − s_lo)/(r − 1), r = x̄_hi/x̄_lo; the interval
    is p ± (half-width of s_lo's regression interval + |s_hi − s_lo|/(r − 1)).
    """
    lo, hi = x < split, x >= split
    if lo.sum() < 3 or hi.sum() < 3:
        raise InvalidInputError(f"richardson_slope needs >= 3 points each side of split={split}")
    f_lo, f_hi = fit_slope(x[lo], y[lo]), fit_slope(x[hi], y[hi])
    r = float(np.exp(np.log(x[hi]).mean() - np.log(x[lo]).mean()))
    shift = (f_hi.slope - f_lo.slope) / (r - 1)
    p = f_lo.slope - shift
    half = (f_lo.ci[1] - f_lo.ci[0]) / 2 + abs(shift)
    return {"slope": p, "lo": p - half, "hi": p + half, "low_window": f_lo.slope,
            "low_ci": f_lo.ci, "high_window": f_hi.slope,
            "drift": abs(f_hi.slope - f_lo.slope)}  # fmt: skip


def _slope_row(check: Check, case: str, predicted: float, fit: dict, p: dict, seed: int,
               details: str) -> CheckResult:  # fmt: skip
    """A slope row whose verdict also needs the windows to agree within drift_tolerance."""
    row = check.result(case, predicted, fit["slope"], (fit["lo"], fit["hi"]), p, seed, details)
    row.details += (
        f"; windows differ by {fit['drift']:.3f} (asymptotic regime if <= {p['drift_tolerance']:g})"
    )
    row.verdict = row.verdict and fit["drift"] <= p["drift_tolerance"]
    return row


def _negative_eigen(A: np.ndarray, fraction: float) -> np.ndarray:
    """A − c(I − A), c = fraction · min_k a_kk/(1 − a_kk): doubly stochastic, λ pushed down."""
    diag = np.diag(A)
    off = diag < 1
    c = fraction * float(np.min(diag[off] / (1 - diag[off]))) if off.any() else 0.0
    return A - c * (np.eye(len(A)) - A)


def permutation_mixture(n_agents: int, seed: int) -> np.ndarray:
    """Non-symmetric doubly-stochastic A: a random convex combination of I, the cyclic shift
    and two random permutations (Birkhoff–von Neumann); primitive through I and the shift."""
    rng = np.random.default_rng(seed)
    eye = np.eye(n_agents)
    mats = [eye, np.roll(eye, 1, axis=0)] + [eye[rng.permutation(n_agents)] for _ in range(2)]
    return sum(w * P for w, P in zip(rng.dirichlet(np.ones(len(mats))), mats, strict=True))


_GRAPHS = ("ring", "grid", "erdos_renyi", "complete", "star", "exponential")


def symmetric_instance(seed: int, index: int, max_agents: int, dim: int):
    """Random symmetric A (some with negative eigenvalues), common H, heterogeneous d and R."""
    rng = np.random.default_rng(derived_seed(seed, "theory-instances", index))
    name = _GRAPHS[int(rng.integers(len(_GRAPHS)))]
    sizes = [k for k in range(3, max_agents + 1) if name != "grid" or k in (4, 6, 8, 9, 12)]
    K = int(rng.choice(sizes))
    A = combination_matrix(
        make_graph(name, K, seed=int(rng.integers(2**31)), edge_probability=0.5),
        ("metropolis", "max_degree")[int(rng.integers(2))],
    )
    if rng.random() < 0.5:
        A = _negative_eigen(A, rng.uniform(0.3, 0.9))
    problem = random_quadratic_network(
        K,
        dim,
        seed=int(rng.integers(2**31)),
        gradient_heterogeneity=rng.uniform(0, 2),
        noise_heterogeneity=rng.uniform(0, 1),
        batch_size=int(rng.choice([1, 10])),
    )
    limit = min(stable_step_size_limit(s, A, problem) for s in STRATEGIES)
    mu = float(rng.uniform(0.05, 0.8) * limit)
    return A, problem, mu, f"{name} K={K} λ_min={np.linalg.eigvalsh(A)[0]:.3f} μ={mu:.4g}"


# ---- (a) exact per-mode forms against the dense moment engine -------------------------------
@register(
    "theory-exact-modes",
    claim="Per-mode closed forms (derived with sympy) of the steady-state ER, MSD and of EE_n "
    "equal the dense moment engine on random symmetric instances (common H, heterogeneous d, R)",
    source=f"derived here (theory.excess_risk, theory.escape) from {NOTE} §4.3 [R]",
    tag="derived",
    relation="equal",
    defaults={"instances": 20, "n_steps": 60, "max_agents": 12, "dim": 3},
    quick={"instances": 6, "n_steps": 40, "max_agents": 9},
)
def exact_modes(check: Check, p: dict[str, Any], seed: int) -> list[CheckResult]:
    worst: dict[tuple[str, str], tuple[float, np.ndarray, np.ndarray, str]] = {}
    for i in range(p["instances"]):
        A, problem, mu, desc = symmetric_instance(seed, i, p["max_agents"], p["dim"])
        for s in STRATEGIES:
            ss = steady_state(s, A, problem, mu, method="dense")
            pairs = {
                q: (np.array([theory.steady_state(q, s, A, problem, mu)]),
                    np.array([getattr(ss, QUANTITY[q])]))
                for q in QUANTITY
            }  # fmt: skip
            pairs["EE_n"] = (
                theory.escaping_efficiency(s, A, problem, mu, p["n_steps"]),
                escaping_efficiency(s, A, problem, mu, p["n_steps"], method="dense"),
            )
            for q, (pred, meas) in pairs.items():
                rel = float(np.max(np.abs(meas - pred) / np.abs(pred)))
                if rel >= worst.get((s, q), (-1.0,))[0]:
                    worst[s, q] = (rel, pred, meas, f"instance {i}: {desc}")
    rows = []
    for (s, q), (_, pred, meas, where) in worst.items():
        row = _exact_row(check, f"{s} {q}", pred, meas, p, seed)
        row.details += f"; worst of {p['instances']} instances at {where}"
        rows.append(row)
    return rows


# ---- (b) second order: error O(μ³), and where it breaks down --------------------------------
@register(
    "theory-second-order-slope",
    claim="The second-order expansions of ER and MSD have an error O(μ³) for μ h_max ≪ "
    "1 − max_{i≥2}|λ_i| (slope 3 of log error against log μ); the local slope stays within "
    "3 ± tolerance up to μ h_max = breakdown_claim × gap",
    source=f"derived here (theory.excess_risk); second-order formulas of {NOTE} §4.4 [R]",
    tag="derived",
    relation="slope",
    defaults={
        **NETWORK_DEFAULTS,
        "n_agents": 16,
        "dim": 3,
        "hessian_heterogeneity": 0.0,
        "points": 8,
        "window": 3e-3,
        "drift_tolerance": 0.5,
        "tolerance": 0.3,
        "breakdown_claim": 0.1,
    },
    quick={"n_agents": 8},
)
def second_order_slope(check: Check, p: dict[str, Any], seed: int) -> list[CheckResult]:
    A, problem = network_instance(p, seed, check.name)
    gap, h_max = spectral_gap(A), float(np.linalg.eigvalsh(problem.hessians[0])[-1])
    lo, npts = p["window"], p["points"]
    z = np.concatenate([np.geomspace(lo, 10 * lo, npts, endpoint=False),
                        np.geomspace(10 * lo, 100 * lo, npts)])  # fmt: skip
    rows = []
    for s in STRATEGIES:
        scale = h_max / gap if s != "centralized" else h_max  # no network modes: μh ≪ 1
        mus = z / scale
        limit = stable_step_size_limit(s, A, problem)
        for q, attr in QUANTITY.items():
            exact = np.array([getattr(steady_state(s, A, problem, m), attr) for m in mus])
            approx = np.array([theory.steady_state(q, s, A, problem, m, order=2) for m in mus])
            fit = richardson_slope(mus, np.abs(approx - exact), 10 * lo / scale)
            rows.append(
                _slope_row(
                    check,
                    f"{s} {q}",
                    3.0,
                    fit,
                    p,
                    seed,
                    f"μ·{'h_max/gap' if s != 'centralized' else 'h_max'} in [{lo:g}, {100 * lo:g}]"
                    f" (gap {gap:.3g}); slope {fit['low_window']:.4f} (regression interval "
                    f"[{fit['low_ci'][0]:.4f}, {fit['low_ci'][1]:.4f}]) on the lower decade, "
                    f"{fit['high_window']:.4f} on the upper; Richardson limit {fit['slope']:.5f};"
                    f" interval = regression ± extrapolation size",
                )
            )
        rows.append(_breakdown_row(check, p, seed, s, A, problem, scale, limit))
    return rows


def _breakdown_row(check, p, seed, s, A, problem, scale, limit) -> CheckResult:
    """Scan μ·scale upward; the first local slope outside 3 ± tolerance marks the breakdown."""
    z = np.geomspace(p["window"], 0.95 * limit * scale, 40)
    mus = z / scale
    approx = np.array([theory.excess_risk(s, A, problem, m, order=2) for m in mus])
    exact = np.array([steady_state(s, A, problem, m).excess_risk for m in mus])
    err = np.abs(approx - exact)
    local = np.diff(np.log(err)) / np.diff(np.log(mus))
    bad = np.flatnonzero(np.abs(local - 3) > p["tolerance"])
    z_break = float(np.sqrt(z[bad[0]] * z[bad[0] + 1])) if bad.size else float(z[-1])
    top = fit_slope(mus[-6:], err[-6:]).slope
    unit = "μ h_max/gap" if s != "centralized" else "μ h_max"
    return check.result(
        f"{s} ER: μ³ regime extends to",
        p["breakdown_claim"],
        z_break,
        (z_break, z_break),
        p,
        seed,
        f"first {unit} where the local slope leaves 3 ± {p['tolerance']:g}: {z_break:.3g} "
        f"({'found' if bad.size else 'not found below 0.95 × stability limit'}); slope "
        f"{top:.3f} over the last 6 points, up to {unit} = {z[-1]:.3g}",
        relation="lower",
    )


# ---- (c) first order for heterogeneous agents and non-symmetric A ---------------------------
@register(
    "theory-first-order-heterogeneous",
    claim="For heterogeneous H_k, R_k, d_k and a non-symmetric doubly-stochastic A, "
    "ER ≈ μ Tr(R̄)/(4KB) and MSD ≈ μ Tr(H̄⁻¹R̄)/(2KB) with relative error O(μ) (slope 1)",
    source=f"derived here (theory.excess_risk, centroid recursion); {NOTE} §4.4 [R]",
    tag="derived",
    relation="slope",
    defaults={
        **NETWORK_DEFAULTS,
        "n_agents": 10,
        "dim": 3,
        "hessian_heterogeneity": 0.8,
        "noise_heterogeneity": 0.8,
        "points": 6,
        "window": 1e-3,
        "drift_tolerance": 0.5,
    },
    quick={"n_agents": 6},
)
def first_order_heterogeneous(check: Check, p: dict[str, Any], seed: int) -> list[CheckResult]:
    _, problem = network_instance(p, seed, check.name)
    A = permutation_mixture(p["n_agents"], derived_seed(seed, check.name, "A"))
    gap = spectral_gap(A)
    h_max = float(np.linalg.eigvalsh(problem.hessians)[:, -1].max())
    lo, npts = p["window"], p["points"]
    z = np.concatenate([np.geomspace(lo, 10 * lo, npts, endpoint=False),
                        np.geomspace(10 * lo, 100 * lo, npts)])  # fmt: skip
    mus = z * gap / h_max
    rows = []
    for s in STRATEGIES:
        states = [steady_state(s, A, problem, m, method="dense") for m in mus]
        for q, attr in QUANTITY.items():
            exact = np.array([getattr(st, attr) for st in states])
            first = np.array([theory.steady_state(q, s, A, problem, m, order=1) for m in mus])
            rel = np.abs(first - exact) / exact
            fit = richardson_slope(mus, rel, 10 * lo * gap / h_max)
            rows.append(
                _slope_row(
                    check,
                    f"{s} {q}",
                    1.0,
                    fit,
                    p,
                    seed,
                    f"relative error against the dense engine, μ h_max/gap in [{lo:g}, "
                    f"{100 * lo:g}] (gap {gap:.3g}, non-symmetric A); relative error "
                    f"{rel[0]:.2e} at the smallest μ; lower-decade slope {fit['low_window']:.4f}"
                    f", upper {fit['high_window']:.4f}; Richardson limit {fit['slope']:.4f}",
                )
            )
    return rows


# ---- (d) one step: any agents, non-symmetric A ----------------------------------------------
@register(
    "theory-one-step",
    claim="EE_1 = μ²/(2K) Σ_k [‖Σ_l a_lk d_l‖²_H̄ + (1/B) Σ_l a_lk² Tr(H̄R_l)] (a = A2) for "
    "heterogeneous agents and non-symmetric doubly-stochastic A; con − dif and dif − cen are "
    "sums of non-negative terms",
    source=f"derived here (theory.escape.verify_one_step); one-step forms of {NOTE} §4.1 [R]",
    tag="derived",
    relation="equal",
    defaults={"instances": 20, "max_agents": 12, "dim": 3},
    quick={"instances": 6},
)
def one_step(check: Check, p: dict[str, Any], seed: int) -> list[CheckResult]:
    worst: dict[str, tuple[float, float, float, str, float]] = {}
    for i in range(p["instances"]):
        rng = np.random.default_rng(derived_seed(seed, check.name, i))
        K = int(rng.integers(2, p["max_agents"] + 1))
        A = permutation_mixture(K, int(rng.integers(2**31)))
        problem = random_quadratic_network(
            K,
            p["dim"],
            seed=int(rng.integers(2**31)),
            hessian_heterogeneity=rng.uniform(0, 1),
            gradient_heterogeneity=rng.uniform(0, 2),
            noise_heterogeneity=rng.uniform(0, 1),
            batch_size=int(rng.choice([1, 10])),
        )
        mu = float(rng.uniform(0.01, 1.0))
        engine = {
            s: escaping_efficiency(s, A, problem, mu, 1, method="dense", allow_unstable=True)[0]
            for s in STRATEGIES
        }
        cases = {s: (theory.one_step_escaping_efficiency(s, A, problem, mu), engine[s], 0.0)
                 for s in STRATEGIES}  # fmt: skip
        for pair in ("consensus-diffusion", "diffusion-centralized"):
            terms = theory.one_step_difference_terms(pair, A, problem, mu)
            first, second = pair.split("-")
            smallest = min(float(t.min()) for t in terms.values())
            total = sum(float(t.sum()) for t in terms.values())
            cases[pair] = (total, engine[first] - engine[second], smallest)
        for case, (pred, meas, smallest) in cases.items():
            rel = abs(meas - pred) / abs(pred)
            if rel >= worst.get(case, (-1.0,))[0]:
                worst[case] = (rel, pred, meas, f"instance {i} (K={K}, μ={mu:.3g})", smallest)
    rows = []
    for case, (rel, pred, meas, where, smallest) in worst.items():
        row = check.result(
            case if "-" not in case else f"{case} = sum of terms",
            pred,
            meas,
            (meas - TOL * abs(pred), meas + TOL * abs(pred)),
            p,
            seed,
            f"largest relative deviation {rel:.2e} (tolerance {TOL:g}) over {p['instances']} "
            f"instances, at {where}",
        )
        if "-" in case:
            row.details += f"; smallest term there {smallest:.3g} (must be >= 0)"
            row.verdict = row.verdict and smallest >= 0
        rows.append(row)
    return rows


# ---- (e) orderings against Monte Carlo ------------------------------------------------------
def _first_at_least(values: np.ndarray, level: float) -> float:
    hit = np.flatnonzero(values >= level)
    return float(hit[0] + 1) if hit.size else float("inf")


@register(
    "theory-orderings-monte-carlo",
    claim="The predicted differences EE_n(con) − EE_n(dif) and EE_n(dif) − EE_n(cen) (both ≥ 0 "
    "for μ h_max below the ordering limit) and the escape times n_ε(con) ≤ n_ε(dif) ≤ n_ε(cen) "
    "agree with Monte Carlo (common random numbers)",
    source=f"derived here (theory.escape, theory.ordering, theory.escape_time); {NOTE} §4.2 [R]",
    tag="derived",
    relation="equal",
    defaults={
        **NETWORK_DEFAULTS,
        "n_agents": 16,
        "dim": 3,
        "hessian_heterogeneity": 0.0,
        "limit_fraction": 0.1,
        "n_steps": 100,
        "level_fraction": 0.8,
        "trials": 20000,
    },
    quick={"n_agents": 8, "trials": 4000},
)
def orderings_monte_carlo(check: Check, p: dict[str, Any], seed: int) -> list[CheckResult]:
    A, problem = network_instance(p, seed, check.name)
    limit = min(theory.ordering_step_limit(A, problem),
                *(0.99 * stable_step_size_limit(s, A, problem) for s in STRATEGIES))  # fmt: skip
    mu, N = p["limit_fraction"] * limit, p["n_steps"]
    ee = {s: theory.escaping_efficiency(s, A, problem, mu, N) for s in STRATEGIES}
    level = p["level_fraction"] * ee["centralized"][-1]
    sim = simulate(STRATEGIES, A, problem, mu, N, p["trials"], seed=seed, experiment=check.name)
    steps = sorted({1, max(1, N // 10), N})
    pairs = (("consensus", "diffusion"), ("diffusion", "centralized"))
    comparisons = len(pairs) * len(steps) + len(STRATEGIES)
    rows = []
    for a, b in pairs:
        key = (a, b) if (a, b) in sim.difference_mean else (b, a)
        sign = 1.0 if key == (a, b) else -1.0
        mean, se = sign * sim.difference_mean[key], sim.difference_standard_error[key]
        lo, hi = mean_interval(mean, se, alpha=DEFAULT_ALPHA, comparisons=comparisons)
        for n in steps:
            pred = ee[a][n - 1] - ee[b][n - 1]
            rows.append(
                check.result(
                    f"EE_{n}({a}) − EE_{n}({b})",
                    pred,
                    mean[n - 1],
                    (lo[n - 1], hi[n - 1]),
                    p,
                    seed,
                    f"paired Monte Carlo difference, {p['trials']} trials, μ = {mu:.4g} "
                    f"({p['limit_fraction']:g} × ordering limit); interval excludes 0: "
                    f"{bool(lo[n - 1] > 0)}; Bonferroni over {comparisons} comparisons",
                )
            )
    times = {s: theory.escape_time(s, A, problem, mu, level) for s in STRATEGIES}
    for s in STRATEGIES:
        # simultaneous bands over all n for this strategy: the true n_ε lies between the
        # first n where the upper band reaches ε and the first n where the lower band does
        lo_b, hi_b = sim[s].interval("ee", alpha=DEFAULT_ALPHA / comparisons, comparisons=N)
        n_mc = _first_at_least(sim[s].mean["ee"], level)
        rows.append(
            check.result(
                f"escape time n_ε({s})",
                times[s],
                n_mc,
                (_first_at_least(hi_b, level), _first_at_least(lo_b, level)),
                p,
                seed,
                f"ε = {level:.4g} ({p['level_fraction']:g} × EE_{N}(centralized)); predicted "
                f"n_ε: consensus {times['consensus']:g} ≤ diffusion {times['diffusion']:g} ≤ "
                f"centralized {times['centralized']:g}; Monte Carlo interval from simultaneous "
                f"bands over n ≤ {N}",
            )
        )
    return rows
