"""Test accuracy and training excess loss against flatness (Hessian trace) for the three
strategies: the flatness–optimization trade-off of a small classifier on real data.

Problem. The ``flatness-tradeoff`` experiment (``numerics.tradeoff``): a one-hidden-layer tanh
classifier on scikit-learn's digits (even against odd), label-skewed over K = 10 agents on a
ring (Metropolis weights), trained from random initial points by centralized, consensus and
diffusion SGD at equal budgets; quick or full parameters of the check, same master seed and
experiment key, hence the same numbers as the check.

Quantity. Per (strategy, seed): Hutchinson's estimate of Tr ∇²J at the network centroid
(x axis); test accuracy of the centroid (left panel); training excess loss J(θ_c) − J_ref
(right panel). Thin grey lines join the three strategies of one seed (common random numbers);
large markers are the means over seeds with Student-t intervals (family-wise 1 − 10⁻³ over
the 2 × 3 means of each panel, Bonferroni).

Relation shown: the paper's claim (arXiv 2406.20006 v2 abstract [S]) — decentralized
strategies flatter, consensus optimizing worst, diffusion most accurate — against what this
scale measures; the claim text states which paired differences are significant.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from figures import STRATEGY_STYLES, FigureRecord, save_figure
from numerics.checks import get_check
from numerics.checks.tradeoff import CLAIMS, direction_text
from numerics.stats import DEFAULT_ALPHA
from numerics.tradeoff import run_tradeoff, t_interval

NAME = "tradeoff_scatter"
CHECK = "flatness-tradeoff"
SEED = 0
STRATEGIES = ("centralized", "consensus", "diffusion")
STYLES = STRATEGY_STYLES
PANELS = (("test_accuracy", "test accuracy at the centroid"),
          ("excess_loss", "training excess loss J(θ_c) − J_ref"))  # fmt: skip


def parameters(quick: bool) -> dict:
    """The check's parameters for the tier (the figure shows the check's experiment)."""
    return get_check(CHECK).parameters(quick)


def build(out_dir: Path, quick: bool = False) -> FigureRecord:
    """Run the experiment (check parameters), draw both panels, save PNG and PDF."""
    params = parameters(quick)
    result = run_tradeoff(params, SEED, CHECK)
    comparisons = 2 * len(STRATEGIES)
    data: dict[str, np.ndarray] = {}
    for s in STRATEGIES:
        for metric in ("trace", "test_accuracy", "excess_loss", "top_eigenvalue"):
            data[f"{metric}_{s}"] = np.asarray(result[s, metric], dtype=float)
            m, lo, hi = t_interval(result[s, metric], alpha=DEFAULT_ALPHA, comparisons=comparisons)
            data[f"{metric}_mean_{s}"] = np.array([m, lo, hi])
    lines = []
    for metric, a, b, relation, _ in CLAIMS:
        diff = result.paired(a, b, metric, alpha=DEFAULT_ALPHA, comparisons=len(CLAIMS))
        data[f"diff_{metric}_{a}_{b}"] = np.array([diff.mean, *diff.ci])
        lines.append(
            f"{metric} {a} − {b}: {diff.mean:+.3g} [{diff.ci[0]:.3g}, {diff.ci[1]:.3g}] "
            f"(claim {'≤' if relation == 'upper' else '≥'} 0: {direction_text(relation, *diff.ci)})"
        )

    fig = Figure(figsize=(16.0, 5.0))
    axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1, 0.8]})
    x_all = np.stack([data[f"trace_{s}"] for s in STRATEGIES])  # (3, seeds)
    for ax, (metric, label) in zip(axes[:2], PANELS, strict=True):
        y_all = np.stack([data[f"{metric}_{s}"] for s in STRATEGIES])
        for j in range(x_all.shape[1]):
            ax.plot(x_all[:, j], y_all[:, j], color="0.8", lw=0.6, zorder=1)
        for s in STRATEGIES:
            color, marker = STYLES[s]
            ax.scatter(data[f"trace_{s}"], data[f"{metric}_{s}"], color=color, marker=marker,
                       s=22, alpha=0.7, zorder=2, label=f"{s} (one seed each)")  # fmt: skip
            xm, xlo, xhi = data[f"trace_mean_{s}"]
            ym, ylo, yhi = data[f"{metric}_mean_{s}"]
            ax.errorbar(xm, ym, xerr=[[xm - xlo], [xhi - xm]], yerr=[[ym - ylo], [yhi - ym]],
                        fmt=marker, ms=10, mfc=color, mec="k", ecolor=color, elinewidth=1.0,
                        capsize=3, zorder=3, label=f"{s}: mean, t-interval")  # fmt: skip
        ax.set_xlabel("Hessian trace Tr ∇²J(θ_c) (Hutchinson)")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.25)
    axes[0].legend(fontsize=7, loc="best")
    # paired differences in units of their standard error: the bar is ± the Student-t
    # critical value, so a row is significant exactly when its bar excludes 0
    ax = axes[2]
    labels, std = [], []
    for metric, a, b, relation, _ in CLAIMS:
        m, lo, hi = data[f"diff_{metric}_{a}_{b}"]
        se = result.paired(a, b, metric).standard_error
        std.append([m / se, (m - lo) / se])
        sign = "≤" if relation == "upper" else "≥"
        labels.append(
            f"{metric}: {a[:4]}. − {b[:4]}.\n{m:+.3g} [{lo:.3g}, {hi:.3g}]; claim {sign} 0"
        )
    std_arr = np.array(std)
    data["standardized_differences"] = std_arr
    ypos = np.arange(len(labels))[::-1]
    ax.errorbar(std_arr[:, 0], ypos, xerr=std_arr[:, 1], fmt="D", color="k", ms=5, capsize=3)
    ax.axvline(0.0, color="0.4", lw=0.8, ls="--")
    ax.set_yticks(ypos, labels, fontsize=7)
    ax.yaxis.tick_right()
    ax.set_xlabel("paired difference / its standard error (bar: Student-t, family-wise 1 − 10⁻³)")
    ax.grid(True, axis="x", alpha=0.25)
    tier = "quick" if quick else "full"
    fig.suptitle(
        f"Flatness against accuracy and optimization ({tier}: {result.seeds} seeds, "
        f"{params['n_steps']} steps, μ = {params['step_size']:g}, B = {params['batch_size']}, "
        f"{params['data']}, {params['split']} p = {params['skew']:g}, K = {params['n_agents']} "
        f"{params['graph']}; grey lines join one seed's three strategies)",
        fontsize=9,
    )
    fig.tight_layout()
    paths = save_figure(fig, out_dir, NAME)
    fig.clear()
    claim = (
        "Test accuracy (left) and training excess loss (right) against the Hessian trace at the "
        f"network centroid, per strategy and seed ({tier} tier of the flatness-tradeoff check: "
        f"{result.description}). The paper claims decentralized strategies are flatter, "
        "consensus optimizes worst and diffusion is the most accurate (arXiv 2406.20006 v2 "
        "abstract). Measured paired differences (Student-t, family-wise 1 − 10⁻³): "
        + "; ".join(lines)
        + "."
    )
    return FigureRecord(NAME, claim, f"dlcheck figures {NAME}", paths, data)
