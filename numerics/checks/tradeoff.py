"""Checks of the flatness measures, of the classifier's derivatives, and of the paper's
flatness–optimization trade-off on a small network trained on real data.

Sources: the flatness measures are standard estimators (Hutchinson 1990; Lanczos via ARPACK;
E[uuᵀ] = I/d on the sphere), see ``numerics.flatness``; the exact Hessian-vector product is
Pearlmutter's R-operator (``numerics.mlp``); the trade-off is the paper's qualitative claim
(arXiv 2406.20006 v2 abstract [S]; note shared/research/flatness_tradeoff.md §1, §5), with the
flatness measure, model and data chosen here (note §3.5 [?]).

How the trade-off is tested (derived here). Each claimed ordering is a paired difference over
seeds (common random numbers: same initial point, minibatches and probes per seed for the
three strategies) with a Student-t interval, family-wise level 1 − α over the six rows
(Bonferroni). As in ``logistic-ordering``, the paper's direction is the relation with 0 as
the prediction: a claim "difference > 0" is ``lower`` (it fails when the whole interval lies
below 0, i.e. the data contradict the claim), "difference < 0" is ``upper``. Each row says
whether the claimed direction is significant, not significant, or contradicted.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from numerics.checks.base import Check, CheckResult, register
from numerics.checks.instances import derived_seed
from numerics.flatness import (
    QuadraticLoss,
    hutchinson_trace,
    perturbation_sharpness,
    top_eigenvalue,
)
from numerics.mlp import MLP
from numerics.simulate import block_generator
from numerics.stats import DEFAULT_ALPHA, normal_quantile
from numerics.tradeoff import TRADEOFF_DEFAULTS, TradeoffResult, run_tradeoff

NOTE = "shared/research/flatness_tradeoff.md"
#: Relative tolerance of the Lanczos top eigenvalue against ``eigvalsh`` (ARPACK tol 1e-12).
LANCZOS_TOL = 1e-8


def _quadratic(dim: int, seed: int) -> tuple[QuadraticLoss, np.ndarray]:
    """A random indefinite symmetric H (eigenvalues uniform in [−0.5, 3]) and a point."""
    rng = np.random.default_rng(derived_seed(seed, "flatness-estimators", "quadratic"))
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    H = (q * rng.uniform(-0.5, 3.0, dim)) @ q.T
    loss = QuadraticLoss.create(H, rng.standard_normal(dim))
    return loss, rng.standard_normal(dim)


def small_classifier(
    seed: int,
    key: str,
    samples: int = 60,
    features: int = 3,
    hidden: int = 4,
    activation: str = "tanh",
) -> tuple[MLP, np.ndarray]:
    """A small classifier on random data (d = hp + 2h + 1) and a random parameter point."""
    rng = np.random.default_rng(derived_seed(seed, key, "classifier"))
    X = rng.standard_normal((samples, features))
    y = np.where(X[:, 0] + 0.5 * rng.standard_normal(samples) > 0, 1.0, -1.0)
    mlp = MLP.create(X, y, hidden, 0.01, activation)
    return mlp, 1.5 * mlp.initial(rng) + 0.3 * rng.standard_normal(mlp.dim)


# ---- (1) the flatness estimators against exact answers ----------------------------------------
@register(
    "flatness-estimators",
    claim="Hutchinson's trace, the Lanczos top eigenvalue and the average loss increase at "
    "radius r equal their exact values: Tr(H), λ_max(H) and r²Tr(H)/(2d) on a quadratic; on a "
    "small classifier, Tr and λ_max of its explicit Hessian (d exact Hessian-vector products) "
    "and r²Tr(H)/(2d) + O(r⁴) at a small radius",
    source="Hutchinson 1990 (E vᵀHv = Tr H for Rademacher v); ARPACK Lanczos (scipy eigsh); "
    "E[uuᵀ] = I/d on the unit sphere [standard]; antithetic pairs derived here "
    "(numerics.flatness)",
    tag="derived",
    relation="equal",
    defaults={"dim": 40, "probes": 4000, "radius": 0.5, "small_radius": 1e-3},
    quick={"probes": 1000},
)
def flatness_estimators(check: Check, p: dict[str, Any], seed: int) -> list[CheckResult]:
    rows_stat = 4
    z = normal_quantile(DEFAULT_ALPHA, rows_stat)
    gen = block_generator(seed, check.name, 0)
    out = []
    loss, point = _quadratic(p["dim"], seed)
    cases = [(f"quadratic (d = {loss.dim})", loss, point, loss.hessian, p["radius"])]
    mlp, theta = small_classifier(seed, check.name)
    cases.append((f"classifier (d = {mlp.dim})", mlp, theta, mlp.hessian(theta), p["small_radius"]))
    for label, f, x, Hx, r in cases:
        dim = Hx.shape[0]
        tr = float(np.trace(Hx))
        est = hutchinson_trace(f, x, p["probes"], gen)
        m, se = float(est.mean), float(est.standard_error)
        var = 2.0 * (np.sum(Hx * Hx) - np.sum(np.diag(Hx) ** 2))
        out.append(check.result(
            f"{label}: Hutchinson Tr(H)", tr, m, (m - z * se, m + z * se), p, seed,
            f"{p['probes']} Rademacher probes; sample variance of vᵀHv {se**2 * p['probes']:.4g} "
            f"against the exact 2(‖H‖_F² − ΣH_ii²) = {var:.4g}; normal interval, Bonferroni "
            f"over {rows_stat} statistical rows",
        ))  # fmt: skip
        lam = float(np.linalg.eigvalsh(Hx)[-1])
        top = float(top_eigenvalue(f, x, tol=1e-12, seed=seed))
        band = LANCZOS_TOL * max(1.0, abs(lam))
        out.append(check.result(
            f"{label}: Lanczos λ_max(H)", lam, top, (top - band, top + band), p, seed,
            f"deterministic: eigsh (which='LA', tol 1e-12) on a LinearOperator of exact "
            f"Hessian-vector products against eigvalsh of the explicit H; tolerance "
            f"{LANCZOS_TOL:g} relative",
        ))  # fmt: skip
        sh = perturbation_sharpness(f, x, r, p["probes"], gen)
        m, se = float(sh.mean), float(sh.standard_error)
        pred = r * r * tr / (2 * dim)
        note = (
            "exact for a quadratic (at a non-stationary point)"
            if label.startswith("quadratic")
            else "the O(r⁴) remainder (r⁴/24 E D⁴L[u⁴]) is negligible at this radius"
        )
        out.append(check.result(
            f"{label}: E[L(θ+ru)] − L(θ), r = {r:g}", pred, m, (m - z * se, m + z * se), p,
            seed,
            f"{p['probes']} antithetic pairs of uniform directions; r²Tr(H)/(2d) with d = {dim}; "
            f"{note}; normal interval, Bonferroni over {rows_stat} statistical rows",
        ))  # fmt: skip
    return out


# ---- (2) exact derivatives of the classifier ----------------------------------------------------
@register(
    "mlp-derivatives",
    claim="The classifier's gradient equals central finite differences of its loss, its "
    "R-operator Hessian-vector product equals central finite differences of its gradient, the "
    "Hessian assembled from it is symmetric, per-sample gradients average to the minibatch "
    "gradient, and a batch of parameter vectors gives the same numbers as one at a time",
    source="Pearlmutter 1994 (R-operator); backpropagation derived here (numerics.mlp)",
    tag="derived",
    relation="upper",
    defaults={"step": 1e-5, "tolerance": 1e-6, "points": 3},
)
def mlp_derivatives(check: Check, p: dict[str, Any], seed: int) -> list[CheckResult]:
    h, tol = float(p["step"]), float(p["tolerance"])
    out = []
    for act in ("tanh", "softplus"):
        mlp, _ = small_classifier(seed, f"{check.name}/{act}", activation=act)
        rng = np.random.default_rng(derived_seed(seed, check.name, act))
        theta = 1.5 * mlp.initial(rng, (p["points"],)) + 0.3 * rng.standard_normal(
            (p["points"], mlp.dim)
        )
        E = np.eye(mlp.dim)
        # gradient against central differences of the loss, every coordinate, every point
        plus = mlp.value(theta[:, None, :] + h * E)
        minus = mlp.value(theta[:, None, :] - h * E)
        fd = (plus - minus) / (2 * h)
        g = mlp.gradient(theta)
        err_g = float(np.abs(fd - g).max() / np.abs(g).max())
        v = rng.standard_normal(theta.shape)
        fd_hv = (mlp.gradient(theta + h * v) - mlp.gradient(theta - h * v)) / (2 * h)
        hv = mlp.hvp(theta, v)
        err_h = float(np.abs(fd_hv - hv).max() / np.abs(hv).max())
        Hm = mlp.hvp(theta[0], E)  # rows H e_i (no symmetrization)
        err_s = float(np.abs(Hm - Hm.T).max() / np.abs(Hm).max())
        rows = rng.integers(0, mlp.n_samples, (p["points"], 7))
        ps = mlp.per_sample_gradients(theta, rows).mean(axis=-2)
        gb = mlp.gradient(theta, rows)
        err_p = float(np.abs(ps - gb).max() / np.abs(gb).max())
        one = np.stack([mlp.hvp(t, vv) for t, vv in zip(theta, v, strict=True)])
        err_b = float(np.abs(one - hv).max() / np.abs(hv).max())
        for case, err, band, how in (
            ("gradient vs finite differences", err_g, tol, f"central differences, step {h:g}"),
            ("Hessian-vector product vs finite differences of the gradient", err_h, tol,
             f"central differences along random v, step {h:g}"),
            ("Hessian symmetry", err_s, 1e-12, "max |He_j·e_i − He_i·e_j| / max |H|"),
            ("mean of per-sample gradients = minibatch gradient", err_p, 1e-12, "B = 7"),
            ("batched = one at a time (HVP)", err_b, 1e-12, f"{p['points']} points"),
        ):  # fmt: skip
            out.append(check.result(
                f"{act}: {case}", band, err, (err, err), p, seed,
                f"deterministic: largest relative deviation {err:.2e} over {p['points']} "
                f"points of a d = {mlp.dim} classifier ({how}); tolerance {band:g}",
            ))  # fmt: skip
    return out


# ---- (3) the trade-off --------------------------------------------------------------------------
#: (metric, first, second, relation, claim in words): the paper's direction for each pair.
CLAIMS = (
    ("trace", "consensus", "diffusion", "upper",
     "consensus flatter than diffusion: Tr H(consensus) − Tr H(diffusion) ≤ 0"),
    ("trace", "diffusion", "centralized", "upper",
     "diffusion flatter than centralized: Tr H(diffusion) − Tr H(centralized) ≤ 0"),
    ("excess_loss", "consensus", "diffusion", "lower",
     "consensus optimizes worse than diffusion: excess loss difference ≥ 0"),
    ("excess_loss", "diffusion", "centralized", "lower",
     "diffusion optimizes worse than centralized: excess loss difference ≥ 0"),
    ("test_accuracy", "consensus", "diffusion", "upper",
     "diffusion more accurate than consensus: accuracy difference ≤ 0"),
    ("test_accuracy", "diffusion", "centralized", "lower",
     "diffusion more accurate than centralized: accuracy difference ≥ 0"),
)  # fmt: skip
#: Flatness measures reported alongside the trace (same pairs, in the details).
OTHER_FLATNESS = ("top_eigenvalue", "sharpness", "trace_agents")


def direction_text(relation: str, lo: float, hi: float) -> str:
    """Whether the claimed sign (≤ 0 for upper, ≥ 0 for lower) is significant."""
    confirms, contradicts = (hi < 0, lo > 0) if relation == "upper" else (lo > 0, hi < 0)
    if confirms:
        return "claimed direction SIGNIFICANT"
    if contradicts:
        return "claimed direction CONTRADICTED (significant opposite sign)"
    return "not significant either way"


_SHORT = {
    "claimed direction SIGNIFICANT": "reproduced",
    "claimed direction CONTRADICTED (significant opposite sign)": "contradicted",
    "not significant either way": "not significant",
}


def tradeoff_rows(
    check: Check, result: TradeoffResult, p: dict[str, Any], seed: int
) -> list[CheckResult]:
    """The six paired-difference rows of ``CLAIMS`` from a finished experiment."""
    m = len(CLAIMS)
    out = []
    for metric, a, b, relation, words in CLAIMS:
        diff = result.paired(a, b, metric, alpha=DEFAULT_ALPHA, comparisons=m)
        lo, hi = diff.ci
        means = result.summary(metric)
        extra = ""
        if metric == "trace":
            parts = []
            for other in OTHER_FLATNESS:
                o = result.paired(a, b, other, alpha=DEFAULT_ALPHA, comparisons=m)
                parts.append(
                    f"{other} {o.mean:+.4g} [{o.ci[0]:.3g}, {o.ci[1]:.3g}] "
                    f"({direction_text(relation, *o.ci)})"
                )
            extra = "; other flatness measures, same pair: " + "; ".join(parts)
        d = result[a, metric] - result[b, metric]
        agree = int(np.sum(d < 0) if relation == "upper" else np.sum(d > 0))
        out.append(check.result(
            f"{metric}: {a} − {b} ({_SHORT[direction_text(relation, lo, hi)]})",
            0.0, diff.mean, (lo, hi), p, seed,
            f"{words}; {direction_text(relation, lo, hi)}; {agree} of {d.size} seeds in the "
            f"claimed direction (strictly); median difference {np.median(d):+.4g}; "
            f"mean over {diff.n_seeds} seeds "
            f"(paired, common random numbers), se {diff.standard_error:.3g}, Student-t "
            f"interval with {diff.n_seeds - 1} d.o.f., Bonferroni over {m} rows; per strategy: "
            + ", ".join(f"{s} {v[0]:.5g}" for s, v in means.items())
            + f"{extra}; J_ref = {result.reference_loss:.6g}; {result.description}",
            relation=relation,
        ))  # fmt: skip
    return out


@register(
    "flatness-tradeoff",
    claim="Training a one-hidden-layer classifier from random initial points at equal "
    "budgets, consensus finds flatter minima than diffusion and diffusion flatter than "
    "centralized (Hessian trace at the centroid), consensus optimizes worse than diffusion and "
    "diffusion worse than centralized (training excess loss), and diffusion has the best test "
    "accuracy. A weak test: a row fails only when its paired interval significantly contradicts "
    "the paper's direction; its case says whether the direction is reproduced (significant), "
    "not significant, or contradicted",
    source=f"arXiv 2406.20006 v2 abstract [S] ({NOTE} §1, §5); flatness measure, model, data and "
    "sizes chosen here (§3.5 [?]); test design derived here (numerics.tradeoff)",
    tag="S",
    relation="lower",
    defaults=dict(TRADEOFF_DEFAULTS),
    quick={
        "seeds": 6,
        "n_steps": 1500,
        "probes": 16,
        "agent_probes": 4,
        "directions": 16,
        "lbfgs_iterations": 100,
    },
)
def flatness_tradeoff(check: Check, p: dict[str, Any], seed: int) -> list[CheckResult]:
    result = run_tradeoff(p, seed, check.name)
    rows = tradeoff_rows(check, result, p, seed)
    if any(math.isnan(r.measured) for r in rows):  # pragma: no cover - guarded by run_tradeoff
        raise FloatingPointError("a paired difference is NaN")
    return rows
