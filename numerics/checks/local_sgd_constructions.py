"""Checks of local SGD (issue 5), part 2: the constructions of (c) — the rank-one instance
(Prop. 7), the chain (Thm 11), the local GD fixed point (Prop. 19/21) and plateau (Thm 22).
Conventions as in ``numerics.checks.local_sgd``."""

from __future__ import annotations

import numpy as np
import scipy.stats

from numerics.checks._local_sgd_rows import NOTE, TOL, Params, _deviation, _fact, _fmt, _rel
from numerics.checks.base import Check, CheckResult, register
from numerics.local_sgd import local_sgd, minibatch_sgd
from numerics.local_sgd_experiments import (
    DETERMINISTIC_SLOPE_TOLERANCE,
    deterministic_slope,
    powers_of_two,
)
from numerics.local_sgd_instances import (
    fixed_point_example,
    local_gd_fixed_point,
)
from numerics.local_sgd_studies import (
    chain_study,
    fixed_point_convergence,
    rank_one_study,
)
from numerics.stats import DEFAULT_ALPHA
from theory.local_sgd_bounds import bound_function


# ---- Prop. 7: the rank-one construction ----------------------------------------------------
@register(
    "local-sgd-rank-one",
    claim="On (c)'s rank-one construction (κ(A) = 2R) the best local GD error over inner step "
    "η, local steps K and outer step β stays a bounded-away-from-zero multiple of HB²/R as R "
    "grows: the limit of the ratio exceeds the explicit constant of (c) Lemma 8's proof",
    source=f"(c) Prop. 7, App. B.3 and Lemma 8 [V]; {NOTE} §12 check 3",
    tag="V",
    relation="lower",
    defaults={"r_min": 10, "r_max": 640, "n_step_sizes": 60},
    quick={"r_max": 160},
)
def rank_one_check(check: Check, p: Params, seed: int) -> list[CheckResult]:
    rs = powers_of_two(p["r_min"], p["r_max"])
    eta, betas, ks, k_big = (
        np.geomspace(1e-4, 1.99, p["n_step_sizes"]),
        (0.5, 1, 2, 4),
        (2, 10, 100),
        10_000,
    )
    st = rank_one_study(rs, eta, betas, ks, k_big)
    rs_a = np.array(rs, dtype=float)
    ratio = st["best"] * rs_a  # H = B = 1
    X = np.column_stack([np.ones_like(rs_a), 1 / rs_a])
    coef = np.linalg.lstsq(X, ratio, rcond=None)[0]
    dof = len(rs) - 2
    resid = ratio - X @ coef
    se = float(np.sqrt(np.linalg.inv(X.T @ X)[0, 0] * (resid @ resid) / dof))
    half = float(scipy.stats.t.isf(DEFAULT_ALPHA / 2, dof)) * se
    lemma8 = bound_function("gd_quadratic_lower")
    predicted = float(lemma8(B=1.0, mu=1 / (2 * rs_a[-1]), H=1.0, R=rs_a[-1]) * rs_a[-1])
    slope = deterministic_slope(rs_a, st["best"]).slope
    margin = float((st["best"] / st["infimum"]).min())
    grid = f"{eta.size} η in [1e-4, 1.99]/H × β ∈ {betas} × K ∈ {(*ks, k_big)}"
    return [
        _deviation(
            check,
            "projector identity",
            st["identity_deviation"],
            TOL,
            p,
            seed,
            f"max |(I − ηHA_i)^K − (I − (1 − (1−ηH)^K)A_i)| over the η grid, K ∈ {(*ks, k_big)}",
        ),
        _deviation(
            check,
            "local GD = closed-form rounds",
            st["round_map_deviation"],
            1e-9,
            p,
            seed,
            f"step-by-step local GD vs the round map at R = {rs[0]}, K ∈ {ks}, "
            "(η, β) not diverging",
        ),
        check.result(
            "grid minimum ≥ infimum over all (η, K, β)",
            1.0,
            margin,
            (margin - 1e-9, margin + 1e-9),
            p,
            seed,
            "min over R of (best on the grid)/(inf over the effective step s = β(1 − (1 − "
            "ηH)^K)/H > 0 of R GD steps on F; dense s grid): every (η, K, β) is one s",
            relation="lower",
        ),
        check.result(
            "limit of best error / (HB²/R) as R → ∞",
            predicted,
            float(coef[0]),
            (coef[0] - half, coef[0] + half),
            p,
            seed,
            f"best/(HB²/R) at R = {rs}: {_fmt(ratio)} (settling on a positive limit); limit c "
            f"of the fit ratio = c + d/R, t-interval ({dof} dof, level 1 − 1e-3, misfit only); "
            f"predicted: (c) Lemma 8's explicit constant e^(−6)/8 at κ = 2R; finite-R log-log "
            f"slope {slope:.3f}; grid {grid} (K = {k_big} by the exact round map)",
        ),
    ]


# ---- Thm 11: the chain ------------------------------------------------------------------------
@register(
    "local-sgd-chain",
    claim="On (c)'s chain (Lemma 24) local GD's support grows by at most one coordinate per "
    "round whatever K, and no zero-respecting method (local GD, accelerated minibatch GD) "
    "beats HB²/R²: best errors decay no faster than R^(−2)",
    source=f"(c) Thm 11, Lemma 24, App. B.6 [V]; {NOTE} §12 check 4",
    tag="V",
    relation="lower",
    defaults={"r_min": 5, "r_max": 40, "n_step_sizes": 30},
)
def chain_check(check: Check, p: Params, seed: int) -> list[CheckResult]:
    rs = powers_of_two(p["r_min"], p["r_max"])
    eta, ks = np.geomspace(1e-3, 0.45, p["n_step_sizes"]), (1, 10, 100)
    st = chain_study(rs, eta, ks)
    rs_a = np.array(rs, dtype=float)
    hi, lo = st["support_excess_max"], st["support_excess_min"]
    rows = [
        check.result(
            "support after r rounds ≤ r",
            0.0,
            float(hi),
            (float(hi), float(hi)),
            p,
            seed,
            f"max over R ∈ {rs}, K ∈ {ks}, {eta.size} η ∈ [1e-3, 0.45]/H and r of (last "
            f"non-zero coordinate of x_r) − r; the min is {lo} (support = r exactly); exact "
            "zeros, no tolerance",
            relation="equal",
        )
    ]
    acc = st["accelerated"]
    for case, best, extra in (
        ("local GD", st["local_best"], f"K ∈ {ks}, η grid as above"),
        (
            "accelerated minibatch GD (AC-SA)",
            np.array([t.best for t in acc]),
            f"chosen γ {_fmt([t.step for t in acc])} on 16 points in [0.05, 0.5]/L (L the "
            f"smoothness; at the cap 0.5/L: {[t.at_cap for t in acc]})",
        ),
    ):
        sl = deterministic_slope(rs_a, best, comparisons=2)
        rows.append(
            check.result(
                f"{case}: slope of best error in R",
                -2.0,
                sl.slope,
                sl.ci,
                p,
                seed,
                f"best/(HB²/R²) at R = {rs}: {_fmt(best * rs_a**2)}; {extra}; noise-free: "
                f"interval = slope ± max(t half-width, {DETERMINISTIC_SLOPE_TOLERANCE})",
            )
        )
    return rows


# ---- Prop. 19 / 21: the fixed point of local GD ----------------------------------------------
#: Numbers of (c) Figs. 1–2 quoted in the note §12 check 5, with the note's rounding.
FIXED_POINT_NOTE = (
    ("η = 1/7, K = 10: ‖x∞ − x̄*‖", 1 / 7, 10, "mean", 5.1e-2, 0.05e-2),
    ("η = 1/7, K = 50: ‖x∞ − x̄*‖", 1 / 7, 50, "mean", 1.8e-4, 0.05e-4),
    ("η = 1/(7K²), K = 50: ‖x∞ − x*‖", 1 / (7 * 50**2), 50, "opt", 9.3e-3, 0.05e-3),
)


@register(
    "local-gd-fixed-point",
    claim="Local GD on strongly convex quadratics converges to x∞ = C⁻¹(1/M)Σ C_m x*_m, "
    "C_m = I − (I − ηA_m)^K, whatever the outer step β; K = 1 gives x*, ηK large gives the "
    "mean of the local optima; ‖x∞ − x̄*‖ obeys Prop. 21's bound",
    source=f"(c) Prop. 19, Prop. 21, Figs. 1–2 (fixed_point.py) [V]; {NOTE} §12 check 5",
    tag="V",
    relation="equal",
    defaults={"tolerance": 1e-13},
)
def fixed_point_check(check: Check, p: Params, seed: int) -> list[CheckResult]:
    o = fixed_point_example()
    H, mu, zeta, tau = o.smoothness, o.machine_strong_convexity, o.zeta_star, o.tau
    x_star, x_bar = o.optimum, o.local_optima.mean(axis=0)
    configs = [(1 / 7, 10), (1 / 7, 50), (1 / 70, 10), (1 / (7 * 50**2), 50), (0.05, 3), (0.1, 1)]
    dev, used = fixed_point_convergence(o, configs, (0.5, 1.0, 1.5), p["tolerance"])
    sim = local_sgd(o, local_steps=10, rounds=300, step_size=1 / 7)  # step by step
    x10 = local_gd_fixed_point(o, local_steps=10, step_size=[1 / 7])[0]
    k1 = local_gd_fixed_point(o, local_steps=1, step_size=[0.1])[0]
    rows = [
        _deviation(
            check,
            "Prop. 19: x_R → x∞, every β",
            dev,
            1e-10,
            p,
            seed,
            f"max ‖x_R − x∞‖/‖x∞‖ over (η, K) = {[(round(e, 5), k) for e, k in configs]} "
            f"and β ∈ {{0.5, 1, 1.5}}, exact rounds up to R = {used} (until the "
            f"contraction gives {p['tolerance']:g})",
        ),
        _deviation(
            check,
            "step-by-step local GD reaches x∞",
            _rel(sim.final[0, 0], x10),
            1e-10,
            p,
            seed,
            "numerics.local_sgd, η = 1/7, K = 10, R = 300",
        ),
        _deviation(
            check, "K = 1 gives x* = (11, 12)", _rel(k1, x_star), TOL, p, seed, f"x* = {x_star}"
        ),
    ]
    for case, eta, k, ref, value, tol in FIXED_POINT_NOTE:
        xf = local_gd_fixed_point(o, local_steps=k, step_size=[eta])[0]
        got = float(np.linalg.norm(xf - (x_bar if ref == "mean" else x_star)))
        rows.append(
            check.result(
                case,
                value,
                got,
                (got - tol, got + tol),
                p,
                seed,
                f"the note's rounded value; tolerance ±{tol:g} (its last digit)",
            )
        )
    bound = float(bound_function("optima_distance")(zeta_star=zeta, tau=tau, H=H, mu=mu))
    rows.append(
        _fact(
            check,
            "Prop. 21: ‖x* − x̄*‖ ≤ ζ⋆τ/(Hμ)",
            bound,
            float(np.linalg.norm(x_star - x_bar)),
            p,
            seed,
            f"ζ⋆ = {zeta:.4g}, τ = {tau:g}, H = {H:g}, μ = min_m λ_min(A_m) = {mu:g}; "
            "exact, with the constant 1 of the proposition",
            "upper",
        )
    )
    worst = 0.0
    for eta in (1 / 70, 1 / 14, 1 / 7):
        for k in (2, 5, 10, 50):
            xf = local_gd_fixed_point(o, local_steps=k, step_size=[eta])[0]
            factor = eta * mu * k * (1 - eta * mu) ** (k - 1) / (1 - (1 - eta * mu) ** k)
            worst = max(worst, float(np.linalg.norm(xf - x_bar) / (bound * factor)))
    rows.append(
        _fact(
            check,
            "Prop. 21: ‖x∞ − x̄*‖ ≤ ζ⋆τ/(Hμ)·ηµK(1−ηµ)^(K−1)/(1−(1−ηµ)^K)",
            1.0,
            worst,
            p,
            seed,
            "largest measured/bound over η ∈ {1/70, 1/14, 1/7}, K ∈ {2, 5, 10, 50}",
            "upper",
        )
    )
    return rows


# ---- Thm 22: the plateau ----------------------------------------------------------------------
@register(
    "local-gd-plateau",
    claim="With η = 1/(2H), β = 1 local GD (K = 20) contracts by (1 − ημ)^K per round to a "
    "plateau ‖x∞ − x*‖ ≤ ζ⋆τ/(Hμ) proportional to ζ⋆, reached while GD (step 1/H) is far; GD "
    "passes below the plateau later",
    source=f"(c) Thm 22, Prop. 21 [V]; {NOTE} §12 check 6 (five-machine example, optima shrunk)",
    tag="V",
    relation="upper",
    defaults={"shrink": 0.01, "local_steps": 20, "rounds": 40},
)
def plateau_check(check: Check, p: Params, seed: int) -> list[CheckResult]:
    o = fixed_point_example(p["shrink"])
    H, mu, zeta, tau = o.smoothness, o.machine_strong_convexity, o.zeta_star, o.tau
    K, R, x_star, eta = p["local_steps"], p["rounds"], o.optimum, 1 / (2 * o.smoothness)
    loc = local_sgd(o, local_steps=K, rounds=R, step_size=eta, record_rounds=True)
    gd = minibatch_sgd(o, local_steps=1, rounds=R, step_size=1 / H, record_rounds=True)
    x_inf = local_gd_fixed_point(o, local_steps=K, step_size=[eta])[0]
    d_loc = np.linalg.norm(loc.path[0, 0] - x_star, axis=-1)
    d_gd = np.linalg.norm(gd.path[0, 0] - x_star, axis=-1)
    plateau = float(np.linalg.norm(x_inf - x_star))
    level = float(bound_function("optima_distance")(zeta_star=zeta, tau=tau, H=H, mu=mu))
    to_fix = np.linalg.norm(loc.path[0, 0] - x_inf, axis=-1)
    live = to_fix[:-1] > 1e-12 * np.linalg.norm(x_inf)
    contraction = float((to_fix[1:][live] / to_fix[:-1][live]).max())
    rows = [
        _fact(
            check,
            "plateau ‖x∞ − x*‖ ≤ ζ⋆τ/(Hμ)",
            level,
            plateau,
            p,
            seed,
            f"plateau {plateau:.4g} (note: 1.44e-2), ζ⋆τ/(Hμ) = {level:.4g} (note: 0.145)",
            "upper",
        ),
        _fact(
            check,
            "per-round contraction ≤ (1 − ημ)^K",
            (1 - eta * mu) ** K,
            contraction,
            p,
            seed,
            "max over rounds of ‖x_(r+1) − x∞‖/‖x_r − x∞‖: the e^(−Kr/κ) factor of "
            f"Thm 22 (GD contracts by 1 − μ/H = {1 - mu / H:.3g} per round)",
            "upper",
        ),
        _fact(
            check,
            "plateau reached in 5 rounds: ‖x_5 − x*‖/plateau",
            1.05,
            float(d_loc[5] / plateau),
            p,
            seed,
            f"‖x_5 − x*‖ = {d_loc[5]:.4g} (note: 1.46e-2); pass if within 5 % of the plateau",
            "upper",
        ),
        _fact(
            check,
            "GD at R = 5 is above local GD",
            float(d_gd[5]),
            float(d_loc[5]),
            p,
            seed,
            f"GD ‖x_5 − x*‖ = {d_gd[5]:.4g} (note: 1.48)",
            "upper",
        ),
        _fact(
            check,
            "GD passes below the plateau by R = 20",
            plateau,
            float(d_gd[20]),
            p,
            seed,
            f"GD ‖x_20 − x*‖ = {d_gd[20]:.3g} (note: 3.3e-3)",
            "upper",
        ),
    ]
    zetas, plats = [], []
    for s in (0.01, 0.03, 0.1, 0.3, 1.0):
        os_ = fixed_point_example(s)
        xf = local_gd_fixed_point(os_, local_steps=K, step_size=[eta])[0]
        zetas.append(os_.zeta_star)
        plats.append(float(np.linalg.norm(xf - os_.optimum)))
    sl = deterministic_slope(zetas, plats)
    rows.append(
        check.result(
            "plateau ∝ ζ⋆ (log-log slope)",
            1.0,
            sl.slope,
            (sl.slope - 1e-9, sl.slope + 1e-9),
            p,
            seed,
            f"ζ⋆ = {_fmt(zetas)}, plateau = {_fmt(plats)}, τ, H, μ fixed (x∞ − x* is "
            "linear in the optima's spread: exact, tolerance 1e-9)",
            relation="slope",
        )
    )
    return rows
