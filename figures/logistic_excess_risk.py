"""Steady-state excess risk of true SGD on logistic regression (breast cancer, 10 agents on a
ring) against the step size and against the label skew.

Problem. scikit-learn's breast-cancer data (569 samples, 30 standardized features and an
intercept), split across K = 10 agents on a ring with Metropolis weights by label skew p
(a fraction p of each agent's samples from the pooled mixture, the rest from its own class;
``numerics.data.split``); ℓ2-regularized logistic loss with ρ = 0.1, minibatches of B = 10
drawn with replacement (``numerics.logistic``).

Quantity. ER(μ) = lim_n (1/K) Σ_k E J(w_{k,n}) − J(w*), the steady-state excess risk.

Relations shown. Panel (a), p = 0: first order μ Tr(R̄)/(4KB) (note §4.4 [R], via
``theory.predict.excess_risk(order=1)``; the same for all strategies), the exact steady state of
the linearised model at w* (``numerics.moments.steady_state``), and true SGD (markers). The
theory's second-order form needs equal Hessians and is not drawn (a logistic network's H_k
differ). Panel (b), μ fixed: the same against p; heterogeneity (small p) raises the excess risk
of consensus and diffusion, not of centralized (arXiv 2406.20006 v2 abstract [S]).

Method. Markers: ``numerics.logistic_sgd.simulate_sgd`` via the check helpers
(``numerics.checks.logistic.run_sgd``: start from the linearised stationary law, burn-in of two
relaxation times, time averages per trial); bars: normal intervals at family-wise level
1 − 10⁻³, Bonferroni over every plotted marker. Lines: exact values at the same points.

Example.
    >>> from pathlib import Path
    >>> rec = build(Path("results/figures"), quick=True)   # doctest: +SKIP
    >>> sorted(k for k in rec.data if k.startswith("sgd_mu_"))  # doctest: +SKIP
    ['sgd_mu_centralized', 'sgd_mu_consensus', 'sgd_mu_diffusion']
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from threadpoolctl import threadpool_limits

from figures import STRATEGY_STYLES, FigureRecord, save_figure
from numerics.checks.logistic import LOGISTIC_DEFAULTS, SGD_DEFAULTS, logistic_instance, run_sgd
from numerics.moments import steady_state
from numerics.stats import DEFAULT_ALPHA, mean_interval
from numerics.strategies import STRATEGIES
from theory.predict import excess_risk as theory_excess_risk

NAME = "logistic_excess_risk"
#: Seed of the split and of the Monte Carlo (fixed: the figure is reproducible).
SEED = 20261122
EXPERIMENT = "figures.logistic_excess_risk"
PARAMS = {**LOGISTIC_DEFAULTS, **SGD_DEFAULTS, "data": "breast_cancer", "n_agents": 10}
#: Step sizes of panel (a) and label skews of panel (b), (quick, full).
STEP_SIZES = {True: (0.05, 0.1, 0.2, 0.4), False: (0.025, 0.05, 0.1, 0.2, 0.3, 0.4)}
SKEWS = {True: (0.0, 0.25, 0.5, 1.0), False: (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)}
SKEW_STEP_SIZE = 0.1
#: Monte Carlo sizes (quick, full): trials and relaxation times averaged.
TRIALS = {True: 100, False: 1000}
RELAXATIONS = {True: 4.0, False: 20.0}
STYLES = {s: {"color": c, "marker": m} for s, (c, m) in STRATEGY_STYLES.items()}
ORDER = ("consensus", "diffusion", "centralized")


def _point(params: dict, mu: float, key: str) -> dict[str, float]:
    """Exact, first-order and SGD values (with interval half-widths' inputs) at one point."""
    A, net = logistic_instance(params, SEED, EXPERIMENT)
    quad = net.linearised()
    sim = run_sgd(params, A, net, mu, SEED, f"{EXPERIMENT}/{key}")
    out = {"first": theory_excess_risk("centralized", A, quad, mu, order=1)}
    for s in STRATEGIES:
        out[f"lin_{s}"] = steady_state(s, A, quad, mu).excess_risk
        out[f"sgd_{s}"] = sim[s].excess_risk
        out[f"se_{s}"] = sim[s].standard_error
    return out


def _collect(quick: bool) -> dict[str, np.ndarray]:
    base = {**PARAMS, "trials": TRIALS[quick], "averaging_relaxations": RELAXATIONS[quick]}
    mus, skews = np.asarray(STEP_SIZES[quick]), np.asarray(SKEWS[quick])
    by_mu = [_point({**base, "skew": 0.0}, float(mu), f"mu={mu:g}") for mu in mus]
    by_p = [_point({**base, "skew": float(p)}, SKEW_STEP_SIZE, f"skew={p:g}") for p in skews]
    comparisons = len(STRATEGIES) * (mus.size + skews.size)
    data: dict[str, np.ndarray] = {"mu": mus, "skew": skews}
    for tag, points in (("mu", by_mu), ("p", by_p)):
        data[f"first_{tag}"] = np.array([pt["first"] for pt in points])
        for s in STRATEGIES:
            sgd = np.array([pt[f"sgd_{s}"] for pt in points])
            se = np.array([pt[f"se_{s}"] for pt in points])
            lo, hi = mean_interval(sgd, se, alpha=DEFAULT_ALPHA, comparisons=comparisons)
            data[f"sgd_{tag}_{s}"], data[f"lo_{tag}_{s}"], data[f"hi_{tag}_{s}"] = sgd, lo, hi
            data[f"lin_{tag}_{s}"] = np.array([pt[f"lin_{s}"] for pt in points])
    data["comparisons"] = np.array(comparisons)
    return data


def _draw(ax, x: np.ndarray, data: dict[str, np.ndarray], tag: str) -> None:
    for s in ORDER:
        st = STYLES[s]
        ax.plot(x, data[f"lin_{tag}_{s}"], color=st["color"], lw=1.6)
        y = data[f"sgd_{tag}_{s}"]
        err = np.vstack([y - data[f"lo_{tag}_{s}"], data[f"hi_{tag}_{s}"] - y])
        ax.errorbar(
            x,
            y,
            yerr=err,
            ls="none",
            marker=st["marker"],
            ms=6,
            mfc="white",
            mec=st["color"],
            mew=1.4,
            ecolor=st["color"],
            elinewidth=1.2,
            capsize=3,
        )
    ax.plot(x, data[f"first_{tag}"], color="black", ls="--", lw=1.3)
    ax.grid(True, which="major", alpha=0.3)
    ax.grid(True, which="minor", alpha=0.1)


def build(out_dir: Path, quick: bool = False) -> FigureRecord:
    """Simulate, draw both panels, save PNG and PDF; return the record with plotted arrays."""
    with threadpool_limits(1):
        data = _collect(bool(quick))
    fig = Figure(figsize=(11.0, 4.6))
    ax_mu, ax_p = fig.subplots(1, 2)
    _draw(ax_mu, data["mu"], data, "mu")
    ax_mu.set_xscale("log")
    ax_mu.set_yscale("log")
    ax_mu.set_xticks(data["mu"], [f"{m:g}" for m in data["mu"]])
    ax_mu.minorticks_off()
    ax_mu.set_xlabel("step size μ")
    ax_mu.set_ylabel("steady-state excess risk  (1/K) Σ_k E J(w_k) − J(w*)")
    ax_mu.set_title("(a) against μ, label skew p = 0 (pure classes)", fontsize=10)
    _draw(ax_p, data["skew"], data, "p")
    ax_p.set_ylim(0, 1.08 * max(float(np.max(data[f"hi_p_{s}"])) for s in STRATEGIES))
    ax_p.set_xticks(data["skew"], [f"{p:g}" for p in data["skew"]])
    ax_p.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    ax_p.set_xlabel("label skew p  (share of each agent's data from the pooled mixture)")
    ax_p.set_ylabel("steady-state excess risk")
    ax_p.set_title(f"(b) against heterogeneity, μ = {SKEW_STEP_SIZE:g}", fontsize=10)
    handles = [
        Line2D(
            [],
            [],
            color=STYLES[s]["color"],
            lw=1.6,
            marker=STYLES[s]["marker"],
            ms=6,
            mfc="white",
            mec=STYLES[s]["color"],
            label=s,
        )
        for s in ORDER
    ] + [Line2D([], [], color="black", ls="--", lw=1.3, label="first order μTr(R̄)/(4KB)")]
    trials = TRIALS[bool(quick)]
    fig.legend(
        handles=handles,
        loc="lower center",
        ncol=4,
        fontsize=9,
        frameon=False,
        bbox_to_anchor=(0.5, -0.1),
        title=(
            f"lines: exact steady state of the linearised model at w*;  markers: true SGD, "
            f"{trials:,} trials;  bars: {1 - DEFAULT_ALPHA:.1%} family-wise intervals"
        ),
        title_fontsize=9,
    )
    fig.suptitle(
        "Logistic regression on breast cancer, K = 10 agents on a ring (Metropolis), "
        f"B = {PARAMS['batch_size']}, ρ = {PARAMS['regularization']:g}",
        fontsize=11,
    )
    paths = save_figure(fig, out_dir, NAME)
    fig.clear()

    con, dif, cen = (data[f"sgd_mu_{s}"] for s in ORDER)
    ordered = bool(np.all(con > dif) and np.all(dif > cen))
    worst = max(
        float(np.max(np.abs(data[f"sgd_{t}_{s}"] / data[f"lin_{t}_{s}"] - 1)))
        for t in ("mu", "p")
        for s in STRATEGIES
    )
    claim = (
        "Steady-state excess risk of true minibatch SGD on ℓ2-regularized logistic regression "
        "(breast cancer, 10 agents on a ring, label-skewed) against the step size (a) and the "
        "label skew (b). The first-order theory μTr(R̄)/(4KB) (note §4.4 [R]) is the common "
        "small-μ limit; consensus and diffusion exceed it by heterogeneity and network terms "
        "that the exact linearised model captures: SGD stays within "
        f"{worst:.1%} of it at every plotted point. Measured ordering consensus > diffusion > "
        f"centralized {'holds' if ordered else 'FAILS'} at every μ in (a); the gap closes as "
        "p → 1 in (b). Bars: 99.9 % family-wise intervals (hidden by the markers where "
        "narrower). The theory's second-order form (equal Hessians only) is not drawn."
    )
    return FigureRecord(NAME, claim, f"dlcheck figures {NAME}", paths, data)
