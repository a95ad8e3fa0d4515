"""Regime map: which bound is smallest over K and σ²R/(H²B²), with measured winners.

Problem. Homogeneous convex H-smooth objectives, M machines, K local steps, R rounds, noise
σ², initial distance B (shared/research/local_sgd_bounds.md §1 and §9.1).

Quantity. Left: the smaller of the upper bounds of local SGD ((a) as restated in (c)
Table 2, [R]: HB²/(KR) + σB/√(MKR) + (Hσ²B⁴)^(1/3)K^(−1/3)R^(−2/3)) and minibatch SGD
((c) Table 1, [R]: HB²/R + σB/√(MKR)), constants set to 1, over K and s = σ²R/(H²B²) at
R = 64, M = 1000, H = B = 1. The dashed line is the threshold K = σ²R/(H²B²) solved by sympy
(``theory.local_sgd_regimes``; derived here from the bounds). Markers: the measured winner
(best step size each) of local SGD and minibatch SGD on GLB-hom — the reconstructed
iterate-bias instance of the note §8.2 ([M], not Glasgow et al.'s construction) — at the
same (K, s), final iterates, common draws; the number is local/minibatch best error.
Right: the smallest of five upper bounds (adding accelerated minibatch SGD, single-machine
SGD and single-machine AC-SA), with W21 Thm 3's dichotomy K = σ²R³/(H²B²); bounds only.

Relation shown. Below K ≈ σ²R/(H²B²) minibatch SGD's bound is smaller and on the hard
instance minibatch SGD measures better; above it local SGD wins both (derived here).

Method. Bounds: ``theory.local_sgd_bounds.bound_function``; measurements:
``numerics.local_sgd_experiments.glb_hom_point`` (the function behind the GLB-hom check).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from figures import FigureRecord, save_figure
from numerics.local_sgd_experiments import glb_hom_point
from theory.local_sgd_bounds import bound_function
from theory.local_sgd_regimes import thresholds

NAME = "local_sgd_regime_map"
SEED = 20261122
EXPERIMENT = "figures.local_sgd_regime_map"
ROUNDS = 64
MACHINES = 1000
#: Measured grid (K, s) and Monte Carlo sizes, quick and full.
MEASURED_K = (2, 8, 32, 128)
MEASURED_S = (1.0, 4.0, 16.0, 64.0, 256.0)  # s/K = 2^odd: never on the line
SIZES = {
    True: {"n_machines": 200, "n_trials": 16, "grid_half_width": 2},
    False: {"n_machines": 1000, "n_trials": 32, "grid_half_width": 3},
}
LEFT = ("minibatch_sgd", "local_sgd_homogeneous")
RIGHT = (
    "minibatch_sgd",
    "local_sgd_homogeneous",
    "accelerated_minibatch_sgd",
    "single_machine_sgd",
    "single_machine_accelerated_sgd",
)
LABELS = {
    "minibatch_sgd": "minibatch SGD",
    "local_sgd_homogeneous": "local SGD",
    "accelerated_minibatch_sgd": "accelerated minibatch SGD",
    "single_machine_sgd": "single-machine SGD",
    "single_machine_accelerated_sgd": "single-machine AC-SA",
}
COLORS = {
    "minibatch_sgd": "#9ecae1",
    "local_sgd_homogeneous": "#fdae6b",
    "accelerated_minibatch_sgd": "#a1d99b",
    "single_machine_sgd": "#d9d9d9",
    "single_machine_accelerated_sgd": "#bcbddc",
}


def bound_winner(names: tuple[str, ...], K: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Index into ``names`` of the smallest bound at each (K, s) (R, M fixed, H = B = 1)."""
    sigma = np.sqrt(s / ROUNDS)
    values = [
        np.broadcast_to(
            bound_function(n)(H=1.0, B=1.0, sigma=sigma, M=MACHINES, K=K, R=ROUNDS), K.shape
        )
        for n in names
    ]
    return np.argmin(np.stack(values), axis=0)


def measure(quick: bool) -> dict[str, np.ndarray]:
    """Local/minibatch best-error ratio on GLB-hom at the measured (K, s) grid."""
    Ks, Ss, ratio, lo, hi = [], [], [], [], []
    for s in MEASURED_S:
        for k in MEASURED_K:
            res = glb_hom_point(
                k,
                ROUNDS,
                seed=SEED,
                experiment=EXPERIMENT,
                sigma=float(np.sqrt(s / ROUNDS)),
                **SIZES[bool(quick)],
            )
            loc, mb = res["local_sgd"], res["minibatch_sgd"]
            r = loc.best / mb.best
            rel = 3.3 * np.hypot(loc.best_se / loc.best, mb.best_se / mb.best)
            Ks.append(k)
            Ss.append(s)
            ratio.append(r)
            lo.append(r * np.exp(-rel))
            hi.append(r * np.exp(rel))
    return {
        "measured_K": np.array(Ks, float),
        "measured_s": np.array(Ss),
        "ratio": np.array(ratio),
        "ratio_lo": np.array(lo),
        "ratio_hi": np.array(hi),
    }


def build(out_dir: Path, quick: bool = False) -> FigureRecord:
    """Compute the bound maps and the measured winners, draw, save PNG and PDF."""
    k = np.geomspace(1, 1e4, 241)
    s = np.geomspace(1e-2, 1e4, 241)
    K, S = np.meshgrid(k, s)
    data = {
        "K": k,
        "s": s,
        "winner_left": bound_winner(LEFT, K, S),
        "winner_right": bound_winner(RIGHT, K, S),
    }
    data |= measure(quick)
    th = thresholds()
    data["threshold_local_vs_minibatch"] = s * 1.0  # K* = σ²R/(H²B²) = s (sympy)
    data["threshold_w21"] = s * ROUNDS**2  # σ²R³/(H²B²) = s R²
    assert str(th["local_vs_minibatch"].solution) == "R*sigma**2/(B**2*H**2)"

    fig = Figure(figsize=(12.5, 5.4))
    axes = fig.subplots(1, 2)
    for ax, names, key in ((axes[0], LEFT, "winner_left"), (axes[1], RIGHT, "winner_right")):
        cmap = ListedColormap([COLORS[n] for n in names])
        ax.pcolormesh(
            K,
            S,
            data[key],
            cmap=cmap,
            vmin=-0.5,
            vmax=len(names) - 0.5,
            shading="auto",
            rasterized=True,
        )
        ax.plot(s, s, "k--", lw=1.2)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(1, 1e4)
        ax.set_ylim(1e-2, 1e4)
        ax.set_xlabel("local steps K")
        ax.set_ylabel("σ²R/(H²B²)")
        present = sorted(set(np.unique(data[key])))
        ax.legend(
            handles=[Patch(color=COLORS[names[i]], label=LABELS[names[i]]) for i in present]
            + [ax.lines[0]],
            labels=[LABELS[names[i]] for i in present] + ["K = σ²R/(H²B²) (sympy)"],
            loc="lower left",
            fontsize=8,
            framealpha=0.9,
        )
    axes[0].set_title(
        f"smaller upper bound, local vs minibatch SGD (R = {ROUNDS}, M = {MACHINES})"
        "\nmarkers: measured winner on GLB-hom (number = local/minibatch error)",
        fontsize=9.5,
    )
    winner_local = data["ratio"] < 1
    for is_local, marker, color in ((True, "o", "#d94801"), (False, "s", "#08519c")):
        sel = winner_local == is_local
        axes[0].scatter(
            data["measured_K"][sel],
            data["measured_s"][sel],
            marker=marker,
            s=70,
            facecolor=color,
            edgecolor="white",
            zorder=3,
            label=f"measured: {'local' if is_local else 'minibatch'} SGD better",
        )
    for kk, ss, r in zip(data["measured_K"], data["measured_s"], data["ratio"], strict=True):
        axes[0].annotate(
            f"{r:.2g}",
            (kk, ss),
            textcoords="offset points",
            xytext=(0, 9),
            ha="center",
            va="bottom",
            fontsize=7.5,
            bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.7},
        )
    handles, labels = axes[0].get_legend_handles_labels()
    axes[0].legend(
        handles=[*axes[0].get_legend().legend_handles, *handles[-2:]],
        labels=[t.get_text() for t in axes[0].get_legend().get_texts()] + labels[-2:],
        loc="lower left",
        fontsize=8,
        framealpha=0.9,
    )
    axes[1].plot(s, data["threshold_w21"], "k:", lw=1.2, label="K = σ²R³/(H²B²) (W21 Thm 3)")
    axes[1].legend(
        loc="lower left",
        fontsize=8,
        framealpha=0.9,
        handles=[*axes[1].get_legend().legend_handles, axes[1].lines[1]],
        labels=[t.get_text() for t in axes[1].get_legend().get_texts()]
        + ["K = σ²R³/(H²B²) (W21 Thm 3)"],
    )
    axes[1].set_title(
        f"smallest of five upper bounds (R = {ROUNDS}, M = {MACHINES}); bounds only", fontsize=9.5
    )
    paths = save_figure(fig, out_dir, NAME)
    fig.clear()

    agree = (data["ratio"] < 1) == (data["measured_K"] > data["measured_s"])
    claim = (
        "Left: which upper bound is smaller, local SGD's ((a), [R]) or minibatch SGD's ((c) "
        f"Table 1, [R]), over K and σ²R/(H²B²) at R = {ROUNDS}, M = {MACHINES}, constants 1; "
        "dashed: the sympy threshold K = σ²R/(H²B²). Markers: measured winner on the "
        f"reconstructed GLB-hom instance ([M]) at {agree.size} grid points, each a factor ≥ 2 "
        "from the line (best step each, common draws); it agrees with the side of the "
        f"threshold at {int(agree.sum())} of {agree.size} points (local SGD already wins at "
        "K ≈ σ²R/(4H²B²): the threshold holds up to constants). Right: the smallest of five "
        "upper bounds with W21 Thm 3's dichotomy K = σ²R³/(H²B²) (bounds only)."
    )
    return FigureRecord(NAME, claim, f"dlcheck figures {NAME}", paths, data)
