"""Escape time n_ε = min{n ≥ 1 : EE_n ≥ ε}: centralized closed form, small-μ form (derived here).

Letters as in ``theory.recursion``; ε > 0 is the level. From ``theory.escape`` the centralized
EE_n has only average modes, h q (1 − a^{2n}) μ²/(2K(1 − a²)) with a = 1 − μh, each increasing
in n, so EE_n^cen increases to EE_∞^cen and n_ε is finite iff ε < EE_∞^cen (or is reached).

* Closed form (one Hessian eigenvalue, H̄ = h I): EE_n = C (1 − a^{2n}) with
  C = μ Tr(R̄)/(2KB(2 − μh)); sympy solves C(1 − X) = ε for X = a^{2n}, so
  n_ε = ⌈ln(1 − ε/C) / ln a²⌉ for ε < C (infinite otherwise). With several eigenvalues EE_n is a
  monotone sum of such terms and n_ε is found by bisection on the closed form.
* Small μ at fixed n (sympy ``series``): EE_n^cen = n μ² Tr(H̄R̄)/(2KB) + O(μ³), so
  n_ε ≈ 2KBε/(μ² Tr(H̄R̄)), valid while n_ε μ h_max ≪ 1, i.e. ε ≪ EE_∞ ≈ μ Tr(R̄)/(4KB).
* Consensus and diffusion: EE_n need not be monotone (negative a oscillate), so n_ε comes
  from a scan of the closed form, stopped by the bounds L_n ≤ EE_n ≤ U_n built from
  ρ = max |a| (``theory.predict.escape_time``); infinite when U_n < ε before EE_n reaches ε.
* Ordering (derived here): where EE_n(con) ≥ EE_n(dif) ≥ EE_n(cen) for all n
  (``theory.ordering``: symmetric A, common H, μ h_max ≤ (1 − ℓ)²/(1 + ℓ²)), the first
  passage times are ordered the other way: n_ε(con) ≤ n_ε(dif) ≤ n_ε(cen).
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from theory import DerivationError, register_derivation
from theory.escape import mode_escaping_efficiency
from theory.excess_risk import TRACES, render
from theory.recursion import STRATEGIES, B, check_strategy, h, mu, n, q, tidy

epsilon = sp.Symbol("epsilon", positive=True)
tr_r, tr_hr = TRACES[0], TRACES[1]


@cache
def centralized_isotropic_ee() -> sp.Expr:
    """EE_n^cen for H̄ = h I: the average-mode closed form with Σ_m q_{1,m} = Tr(R̄)/B."""
    per_mode = mode_escaping_efficiency("centralized", False)
    return sp.factor(per_mode.subs(q, tr_r / B))


@cache
def centralized_escape_time() -> sp.Expr:
    """n_ε (before rounding up) for H̄ = h I, solved by sympy: ln(1 − ε/C)/ln((1 − μh)²)."""
    X, Y = sp.symbols("X Y", positive=True)
    a = 1 - mu * h
    ee = sp.expand(centralized_isotropic_ee().subs(a**n, Y)).subs(Y**2, X)
    if ee.has(n) or ee.has(Y):
        raise DerivationError("EE_n^cen is not a function of a^(2n) alone")
    roots = sp.solve(sp.Eq(ee, epsilon), X)
    if len(roots) != 1:
        raise DerivationError(f"expected one root for a^(2n); got {roots}")
    return sp.log(sp.factor(roots[0])) / sp.log(a**2)


@cache
def small_step_ee() -> sp.Expr:
    """Leading term in μ of EE_n^cen at fixed n, summed over modes: n μ² Tr(H̄R̄)/(2KB)."""
    per_mode = mode_escaping_efficiency("centralized", False)
    lead = sp.expand(sp.series(per_mode, mu, 0, 3).removeO())
    if lead.coeff(mu, 1) != 0 or lead.coeff(mu, 0) != 0:
        raise DerivationError("EE_n^cen does not start at second order in μ")
    coeff = sp.factor(lead.coeff(mu, 2))
    if sp.simplify(coeff / (h * q)).has(h, q):
        raise DerivationError(f"μ² coefficient {coeff} is not proportional to h q")
    return mu**2 * sp.simplify(coeff / (h * q)) * tr_hr / B


@cache
def small_step_escape_time() -> sp.Expr:
    """n_ε ≈ 2KBε/(μ² Tr(H̄R̄)): ``small_step_ee`` = ε solved for n."""
    roots = sp.solve(sp.Eq(small_step_ee(), epsilon), n)
    if len(roots) != 1:
        raise DerivationError(f"expected one root for n; got {roots}")
    return roots[0]


@register_derivation(
    "escape-time",
    "first n with EE_n >= epsilon: closed form (centralized), small-mu form (--order 1), "
    "root search (consensus, diffusion)",
    strategies=STRATEGIES,
    orders=(1,),
)
def escape_time_text(strategy: str | None, order: int | None, latex: bool) -> str:
    """Text of ``dlcheck derive escape-time``."""
    s = check_strategy(strategy)
    c = "% " if latex else ""
    lhs = "n_{\\varepsilon} = " if latex else "  n_eps = "
    if order == 1:
        if s != "centralized":
            raise DerivationError(
                "escape-time --order 1 (small-mu form) is derived for --strategy centralized only"
            )
        return "\n".join(
            [
                f"{c}centralized, small mu at fixed n (derived here; valid for n mu h_max << 1):",
                ("\\mathrm{EE}_{n} \\approx " if latex else "  EE_n ~ ")
                + render(small_step_ee(), latex),
                lhs.replace("=", "\\approx" if latex else "~")
                + render(small_step_escape_time(), latex),
            ]
        )
    if s == "centralized":
        return "\n".join(
            [
                f"{c}centralized, H̄ = h I (derived here; round up; finite iff epsilon < EE_inf):",
                ("\\mathrm{EE}_{n} = " if latex else "  EE_n = ")
                + render(tidy(centralized_isotropic_ee()), latex),
                lhs + render(centralized_escape_time(), latex),
                f"{c}general H̄: EE_n is increasing in n; n_eps by bisection on the closed form",
            ]
        )
    return "\n".join(
        [
            f"{c}{s}: n_eps = min{{n >= 1 : EE_n >= epsilon}} on the closed form of "
            "'dlcheck derive escaping-efficiency'; EE_n can oscillate (a < 0), so it is scanned,",
            f"{c}stopped by L_n <= EE_n <= U_n (rho = max|a|); infinite if U_n < epsilon first.",
            f"{c}ordering: n_eps(consensus) <= n_eps(diffusion) <= n_eps(centralized) when "
            "mu h_max <= (1 - l)^2/(1 + l^2) (see ee-ordering-condition)",
        ]
    )
