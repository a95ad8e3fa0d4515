"""Escape time from a minimum against its sharpness Tr(H), for the three strategies.

Problem. K = 8 agents on a ring (Metropolis weights), a common Hessian H = c·H_0 (dim 3,
H_0 with eigenvalues in [0.2, 1]) scaled by c, fixed heterogeneous gradients (ζ = 0.3) and
noise covariances R_k (η_R = 0.5), B = 1, μ fixed below the ordering limit at every c.

Quantity. n_ε = min{n ≥ 1 : EE_n ≥ ε}, EE_n = (1/K) Σ_k E J(w_{k,n}) − J(w*) from w*, with
ε = LEVEL × μ Tr(R̄)/(4KB) (a fixed fraction of the first-order steady state, which does not
depend on c).

Relation shown (derived here, ``theory.escape_time``, ``theory.ordering``):
* centralized: n_ε from the closed form; for small μ, n_ε ≈ 2KBε/(μ² Tr(H̄R̄)) ∝ 1/c —
  sharper minima are left sooner;
* n_ε(consensus) ≤ n_ε(diffusion) ≤ n_ε(centralized) since μ h_max ≤ (1 − ℓ)²/(1 + ℓ²).

Method. Lines: ``theory.predict.escape_time`` (exact root search on the closed forms); dashed:
the small-μ approximation. Markers: Monte Carlo first passage of the mean EE_n over ε
(``simulate``, common random numbers), with the interval of n at which simultaneous bands
(family-wise 1 − 10⁻³, Bonferroni over n and points) cross ε.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from figures import STRATEGY_STYLES, FigureRecord, save_figure
from numerics.problems import QuadraticNetwork, random_quadratic_network
from numerics.simulate import simulate
from numerics.topology import combination_matrix, ring
from theory import predict as theory

NAME = "escape_time_vs_sharpness"
SEED = 20261125
EXPERIMENT = "figures.escape_time_vs_sharpness"
N_AGENTS, DIM, BATCH_SIZE = 8, 3, 1
STEP_SIZE = 0.01
LEVEL = 0.25
SCALES = np.geomspace(0.25, 4.0, 9)
MC_SCALES = {True: (0.25, 1.0, 4.0), False: (0.25, 0.5, 1.0, 2.0, 4.0)}
TRIALS = {True: 1000, False: 10000}
ALPHA = 1e-3
STRATEGIES = ("consensus", "diffusion", "centralized")
STYLES = STRATEGY_STYLES


def instance(scale: float) -> tuple[np.ndarray, QuadraticNetwork]:
    """(Metropolis ring, network with Hessian scale × H_0; d_k and R_k do not depend on scale)."""
    A = combination_matrix(ring(N_AGENTS), rule="metropolis")
    base = random_quadratic_network(
        N_AGENTS, DIM, seed=SEED, gradient_heterogeneity=0.3, noise_heterogeneity=0.5,
        batch_size=BATCH_SIZE,
    )  # fmt: skip
    problem = QuadraticNetwork(
        scale * base.hessians, base.gradients_at_optimum, base.noise_covariances, BATCH_SIZE
    )
    return A, problem


def level() -> float:
    """ε = LEVEL × μ Tr(R̄)/(4KB)."""
    _, problem = instance(1.0)
    return LEVEL * theory.excess_risk("centralized", None, problem, STEP_SIZE, order=1)


def _first(values: np.ndarray, eps: float) -> float:
    hit = np.flatnonzero(values >= eps)
    return float(hit[0] + 1) if hit.size else np.inf


def build(out_dir: Path, quick: bool = False) -> FigureRecord:
    """Theory and Monte Carlo escape times against Tr(H); draw; save PNG and PDF."""
    eps = level()
    trials = TRIALS[bool(quick)]
    mc_scales = np.asarray(MC_SCALES[bool(quick)])
    data: dict[str, np.ndarray] = {"scale": SCALES, "scale_mc": mc_scales, "level": np.array([eps])}
    trace = []
    for c in SCALES:
        A, problem = instance(c)
        assert STEP_SIZE <= theory.ordering_step_limit(A, problem)
        trace.append(np.trace(problem.hessians[0]))
        for s in STRATEGIES:
            data.setdefault(f"theory_{s}", []).append(
                theory.escape_time(s, A, problem, STEP_SIZE, eps)
            )
        data.setdefault("approx_centralized", []).append(
            theory.escape_time("centralized", A, problem, STEP_SIZE, eps, approximation=True)
        )
    data["trace"] = np.array(trace)
    for key in [k for k in data if k.startswith(("theory_", "approx_"))]:
        data[key] = np.asarray(data[key], dtype=float)
    comparisons = mc_scales.size * len(STRATEGIES)
    for j, c in enumerate(mc_scales):
        A, problem = instance(c)
        horizon = int(1.5 * max(data["theory_centralized"][np.isclose(SCALES, c)][0], 10))
        sim = simulate(STRATEGIES, A, problem, STEP_SIZE, horizon, trials, seed=SEED,
                       experiment=f"{EXPERIMENT}.{j}")  # fmt: skip
        for s in STRATEGIES:
            lo, hi = sim[s].interval("ee", alpha=ALPHA / comparisons, comparisons=horizon)
            for key, val in (("mc", _first(sim[s].mean["ee"], eps)), ("mc_lo", _first(hi, eps)),
                             ("mc_hi", _first(lo, eps))):  # fmt: skip
                data.setdefault(f"{key}_{s}", np.empty(mc_scales.size))[j] = val
    data["trace_mc"] = mc_scales * np.trace(instance(1.0)[1].hessians[0])

    fig = Figure(figsize=(7.2, 5.2))
    ax = fig.subplots()
    for s in STRATEGIES:
        color, marker = STYLES[s]
        ax.plot(data["trace"], data[f"theory_{s}"], color=color, lw=1.6, drawstyle="default",
                label=f"{s}: theory (exact)")  # fmt: skip
        err = np.vstack(
            [data[f"mc_{s}"] - data[f"mc_lo_{s}"], data[f"mc_hi_{s}"] - data[f"mc_{s}"]]
        )
        ax.errorbar(data["trace_mc"], data[f"mc_{s}"], yerr=err, fmt=marker, ms=6, mfc="white",
                    mec=color, ecolor=color, capsize=3, label=f"{s}: Monte Carlo")  # fmt: skip
    ax.plot(data["trace"], data["approx_centralized"], color="k", ls="--", lw=1,
            label="centralized, small μ: 2KBε/(μ² Tr(H̄R̄))")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks([0.5, 1, 2, 4])
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("sharpness Tr(H)  (H = c·H₀)")
    ax.set_ylabel("escape time n$_ε$ (first n with EE$_n$ ≥ ε)")
    ax.set_title(
        f"Escape time against sharpness: ring K = {N_AGENTS}, μ = {STEP_SIZE:g}, B = {BATCH_SIZE},"
        f"\nε = {LEVEL:g} × μTr(R̄)/(4KB) = {eps:.3g}; Monte Carlo {trials:,} trials, "
        f"{1 - ALPHA:.1%} family-wise",
        fontsize=10,
    )
    ax.grid(True, which="both", alpha=0.2)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    paths = save_figure(fig, out_dir, NAME)
    fig.clear()
    ordered = bool(
        np.all(data["theory_consensus"] <= data["theory_diffusion"])
        and np.all(data["theory_diffusion"] <= data["theory_centralized"])
    )
    claim = (
        f"Escape time n_ε = min{{n : EE_n ≥ ε}} from w* against the sharpness Tr(H) (H = c·H₀, "
        f"c from {SCALES[0]:g} to {SCALES[-1]:g}) on a ring of K = {N_AGENTS}, μ = {STEP_SIZE:g}, "
        f"ε = {LEVEL:g} × μTr(R̄)/(4KB). Lines: exact root search on the derived closed forms "
        f"(theory.escape_time); dashed: the small-μ form 2KBε/(μ²Tr(H̄R̄)); markers: Monte Carlo "
        f"({trials:,} trials) with intervals from simultaneous bands. Sharper minima are left "
        f"sooner, and n_ε(consensus) ≤ n_ε(diffusion) ≤ n_ε(centralized) "
        f"{'holds' if ordered else 'FAILS'} at every c (derived here, theory.ordering)."
    )
    return FigureRecord(NAME, claim, f"dlcheck figures {NAME}", paths, data)
