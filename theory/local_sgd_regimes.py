"""Regime thresholds between the local SGD and minibatch SGD bounds, solved by sympy.

Each threshold equates two terms of registered bounds (``theory.local_sgd_bounds``) and
solves for one variable; the comparisons are derived here from the tagged formulas (note
§9), so they hold up to constants, like the bounds. The central one: local SGD's
homogeneous upper bound beats minibatch SGD's iff its iterate-bias term
(Hσ²B⁴)^{1/3}K^{−1/3}R^{−2/3} is below HB²/R, i.e. K ≳ σ²R/(H²B²); below that threshold
(c) Thm 9's lower bound for local SGD exceeds minibatch SGD's upper bound (once M is large
enough that σB/√(MKR) is smaller), so local SGD provably loses.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from theory import register_derivation
from theory.local_sgd_bounds import (
    T_ACC,
    T_HET_DRIFT,
    T_MB,
    T_NOISE_DRIFT,
    T_SERIAL,
    T_STAT,
    T_STAT_ONE,
    B,
    H,
    K,
    M,
    Q,
    R,
    sigma,
    tau,
    zeta,
)


@dataclass(frozen=True)
class Threshold:
    """``left`` = ``right`` solved for ``variable``: ``variable`` = ``solution``."""

    name: str
    left: sp.Expr
    right: sp.Expr
    variable: sp.Symbol
    solution: sp.Expr
    meaning: str
    terms: str


def solve_threshold(left: sp.Expr, right: sp.Expr, variable: sp.Symbol) -> sp.Expr:
    """The unique positive solution of left = right for ``variable`` (all symbols positive)."""
    sols = sp.solve(sp.Eq(left, right), variable)
    if len(sols) != 1:
        raise ValueError(f"expected one positive solution for {variable}; got {sols}")
    return sp.simplify(sols[0])


def _t(name, left, right, variable, meaning, terms) -> Threshold:
    return Threshold(
        name, left, right, variable, solve_threshold(left, right, variable), meaning, terms
    )


def _tau_sigma_term() -> sp.Expr:
    return sp.sqrt(tau * sigma * B**3) / (K ** sp.Rational(1, 4) * sp.sqrt(R))


def _q_sigma_term() -> sp.Expr:
    return (Q * sigma**2 * B**5) ** sp.Rational(1, 3) / (
        K ** sp.Rational(1, 3) * R ** sp.Rational(2, 3)
    )


def _tau_zeta_term() -> sp.Expr:
    return sp.sqrt(tau * zeta * B**3 / R)


def _q_zeta_term() -> sp.Expr:
    return (Q * zeta**2 * B**5) ** sp.Rational(1, 3) / R ** sp.Rational(2, 3)


@lru_cache(maxsize=1)
def thresholds() -> dict[str, Threshold]:
    """Every threshold, by name (solved once per process, then cached; treat as read-only)."""
    items = [
        _t(
            "local_vs_minibatch",
            T_NOISE_DRIFT,
            T_MB,
            K,
            "above: local SGD's homogeneous upper bound is below minibatch SGD's; below: "
            "local SGD's lower bound ((c) Thm 9) is above minibatch SGD's upper bound",
            "iterate-bias term of local_sgd_homogeneous / local_sgd_zeta_star_lower vs HB²/R "
            "of minibatch_sgd",
        ),
        _t(
            "single_machine_vs_minibatch",
            T_STAT_ONE,
            T_MB,
            K,
            "above: one machine's K·R steps beat minibatch SGD (the same K as "
            "local_vs_minibatch: local SGD wins only where single-machine SGD wins)",
            "σB/√(KR) of single_machine_sgd vs HB²/R",
        ),
        _t(
            "local_loses_machines",
            T_STAT,
            T_NOISE_DRIFT,
            M,
            "for M above it (and K below local_vs_minibatch) the iterate-bias term dominates "
            "σB/√(MKR): local SGD provably loses to minibatch SGD",
            "σB/√(MKR) vs the iterate-bias term",
        ),
        _t(
            "accelerated_vs_single_machine",
            T_STAT_ONE,
            T_ACC,
            K,
            "W21 Thm 3's dichotomy: below, accelerated minibatch SGD; above, single-machine "
            "AC-SA (min-max optimal up to log² M)",
            "σB/√(KR) vs HB²/R²",
        ),
        _t(
            "local_vs_accelerated_optimization",
            T_SERIAL,
            T_ACC,
            K,
            "local SGD's HB²/(KR) is below HB²/R² only for K above it",
            "HB²/(KR) vs HB²/R²",
        ),
        _t(
            "local_vs_accelerated_noise",
            T_NOISE_DRIFT,
            T_ACC,
            K,
            "local SGD's iterate-bias term is below HB²/R² only for K above it",
            "iterate-bias term vs HB²/R²",
        ),
        _t(
            "heterogeneity",
            T_HET_DRIFT,
            T_MB,
            zeta,
            "above: the heterogeneity drift of local SGD exceeds HB²/R and local SGD is "
            "strictly worse than minibatch SGD on P_ζ⋆",
            "(Hζ⋆²B⁴)^{1/3}/R^{2/3} vs HB²/R",
        ),
        _t(
            "glasgow_heterogeneity_branch",
            zeta**2 / H,
            T_HET_DRIFT,
            zeta,
            "Glasgow's min switches branch at the same ζ⋆ as 'heterogeneity'",
            "ζ⋆²/H vs (Hζ⋆²B⁴)^{1/3}/R^{2/3}",
        ),
        _t(
            "accelerated_optimal_heterogeneity",
            zeta**2 / (H * R**2),
            T_ACC,
            zeta,
            "above: (b)'s algorithm-independent lower bound equals accelerated minibatch SGD's "
            "rate (its ζ⋆B/R branch exceeds HB²/R² already for ζ⋆ ≥ HB/R)",
            "ζ⋆²/(HR²) vs HB²/R²",
        ),
        _t(
            "higher_order_tau_sigma",
            _tau_sigma_term(),
            T_MB,
            tau,
            "(c) Thm 15: below, the τσ term is under HB²/R",
            "(τσB³)^{1/2}/(K^{1/4}R^{1/2}) vs HB²/R",
        ),
        _t(
            "higher_order_q_sigma",
            _q_sigma_term(),
            T_MB,
            Q,
            "(c) Thm 15: below, the Qσ² term is under HB²/R",
            "(Qσ²B⁵)^{1/3}/(K^{1/3}R^{2/3}) vs HB²/R",
        ),
        _t(
            "higher_order_tau_zeta",
            _tau_zeta_term(),
            T_MB,
            tau,
            "(c) Thm 15: below, the τζ⋆ term is under HB²/R",
            "(τζ⋆B³/R)^{1/2} vs HB²/R",
        ),
        _t(
            "higher_order_q_zeta",
            _q_zeta_term(),
            T_MB,
            Q,
            "(c) Thm 15: below, the Qζ⋆² term is under HB²/R",
            "(Qζ⋆²B⁵)^{1/3}/R^{2/3} vs HB²/R",
        ),
    ]
    return {t.name: t for t in items}


def local_vs_minibatch_threshold() -> sp.Expr:
    """K* = σ²R/(H²B²): local SGD's bound beats minibatch SGD's above it (solved by sympy)."""
    return solve_threshold(T_NOISE_DRIFT, T_MB, K)


@register_derivation(
    "local-sgd-regimes",
    "regime thresholds solved by sympy from the bounds: local vs minibatch SGD (K ~ "
    "sigma^2 R/(H^2 B^2)), machines, acceleration, heterogeneity and Thm 15's tau, Q",
)
def regimes_text(strategy: str | None, order: int | None, latex: bool) -> str:
    """Text of ``dlcheck derive local-sgd-regimes``."""
    c_ = "%" if latex else ""
    lines = [
        f"{c_}Thresholds (derived here by equating terms of the tagged bounds; up to constants)"
    ]
    for t in thresholds().values():
        eq = (
            f"{sp.latex(t.left)} = {sp.latex(t.right)} \\Rightarrow {sp.latex(t.variable)} = "
            f"{sp.latex(t.solution)}"
            if latex
            else f"  {sp.sstr(t.left)} = {sp.sstr(t.right)}  =>  "
            f"{t.variable} = {sp.sstr(t.solution)}"
        )
        lines += [f"{c_}{t.name}: {t.terms}", eq, f"{c_}  {t.meaning}"]
    same = sp.simplify(
        thresholds()["local_vs_minibatch"].solution
        - thresholds()["single_machine_vs_minibatch"].solution
    )
    lines.append(f"{c_}local_vs_minibatch - single_machine_vs_minibatch = {same}")
    return "\n".join(lines)
