"""When does consensus escape at least as fast as diffusion at every n? (derived here)

Setting: symmetric doubly-stochastic A, common Hessian H, per network mode (λ, h) with
x = μh ≥ 0, c = λ − x (consensus a), b = λ(1 − x) (diffusion a) and S_n(z) = Σ_{j<n} z^j.
By ``theory.escape.structured_difference`` the mode's EE_n(con) − EE_n(dif) is
μ²h/(2K) [δ² (S_n(c)² − λ² S_n(b)²) + q Σ_{j<n} (c^{2j} − λ² b^{2j})].

Theorem (derived here). For |λ| < 1 and 0 ≤ x < 1 + λ (consensus stable), both brackets are
≥ 0 for every n ≥ 1 and every δ, q ≥ 0 iff x ≤ x*(λ) = min(1, (1 + λ)²/(1 + λ²)). Over the
network (sum over modes with weights h_m ≥ 0; any δ_{i,m} is reachable with D = u_i v_mᵀ):
EE_n(con) ≥ EE_n(dif) for all n, d and R iff μ h_max ≤ (1 − ℓ)²/(1 + ℓ²),
ℓ = max(0, −λ_min(A)) — the limit ``ordering_step_limit`` found numerically in
numerics/checks/core.py, now proven for symmetric A and common H.

Proof, with each algebraic step checked by sympy in ``proof()``:
1. Necessity: at n = 2 the δ² bracket factors as (1 − λ²)(1 − x)((1 + λ)² − x(1 + λ²)); its
   roots in x are 1 and (1 + λ)²/(1 + λ²), and the larger root is ≥ 1 + λ for λ ≥ 0 and equals 1
   > 1 + λ for λ < 0, so in the stable range the bracket is < 0 for x > x*.
2. δ² bracket, λ ≥ 0, x ≤ 1. If c ≥ 0: u_n = S_n(c) − λS_n(b) obeys
   u_n = (1 − λ)(1 − xλ S_{n−1}(b)) + c u_{n−1}, u_1 = 1 − λ, and xλ S_{n−1}(b) ≤ xλ/(1 − b) ≤ 1
   because 1 − b − xλ = 1 − λ ≥ 0; so u_n ≥ 0. If c < 0: S_n(c) ≥ 1 + c and λS_n(b) ≤ λ/(1 − b),
   and P1 = (1 + λ − x)(1 − λ + λx) − λ ≥ 0 for λ ∈ [0, 1], x ∈ [λ, 1] (Bernstein certificate).
3. δ² bracket, λ = −ℓ < 0, x ≤ x*: with p = ℓ + x, r = ℓ(1 − x), T_n = S_n(−p), R_n = S_n(−r),
   e_n = T_n − ℓR_n satisfies e_n = (1 − ℓ)(1 − p) − x(1 + ℓ)ℓ(1 − (p + r)R_{n−2}) + p² e_{n−2};
   R_k ≥ 1 − r for k ≥ 1, e_1 = 1 − ℓ, e_2 = (1 − ℓ)² − x(1 + ℓ²) ≥ 0, and
   P2 = (1 − ℓ)(1 − p) − x(1 + ℓ)ℓ(1 − (p + r)(1 − r)) ≥ 0 on 0 ≤ x ≤ x* (Bernstein
   certificate after x = t·x*), so e_n ≥ 0; and T_n + ℓR_n > 0 gives T_n² − ℓ²R_n² ≥ 0.
4. q bracket, any |λ| < 1, x ≤ x* (so |b| < 1): if |c| ≥ |b| every term is ≥ (1 − λ²)b^{2j}.
   Otherwise the terms change sign once (+ then −), so every partial sum is ≥ min(first term,
   limit) with first term 1 − λ² and limit 1/(1 − c²) − λ²/(1 − b²), whose numerator factors as
   (1 − λ)((1 + λ)(1 − λ²) + 2λ²x) ≥ 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import sympy as sp

from theory import register_derivation
from theory._bernstein import Certificate, certify_nonnegative

lam = sp.Symbol("lambda", real=True)
x = sp.Symbol("x", nonnegative=True)  # x = μ h
ell, t, s = sp.symbols("ell t s", nonnegative=True)


def step_condition(variable: sp.Symbol = lam) -> sp.Expr:
    """x*(λ) = min(1, (1 + λ)²/(1 + λ²)): the largest μh of a mode keeping the ordering."""
    return sp.Min(1, (1 + variable) ** 2 / (1 + variable**2))


@dataclass(frozen=True)
class OrderingProof:
    """The sympy-checked steps of the theorem (see the module docstring)."""

    n2_factor: sp.Expr
    roots: tuple[sp.Expr, ...]
    recursion_positive: bool
    recursion_negative: bool
    noise_numerator: sp.Expr
    certificate_positive: Certificate
    certificate_negative: Certificate

    @property
    def holds(self) -> bool:
        """Whether every step checked out."""
        return (
            self.recursion_positive
            and self.recursion_negative
            and self.certificate_positive.holds
            and self.certificate_negative.holds
            and len(self.roots) == 2
        )


def _geometric(z: sp.Expr, power: sp.Expr) -> sp.Expr:
    """S_k(z) = (1 − z^k)/(1 − z) with z^k given as ``power`` (an atom)."""
    return (1 - power) / (1 - z)


@cache
def proof() -> OrderingProof:
    """Run every sympy step of the proof; fast (well under a second)."""
    c, b = lam - x, lam * (1 - x)
    n2 = (1 + c) ** 2 - lam**2 * (1 + b) ** 2  # S_2(z) = 1 + z
    n2_factor = sp.factor(n2)
    roots = tuple(sorted(sp.solve(n2, x), key=sp.default_sort_key))
    # step 2, c >= 0: u_n identity, with Cp = c^{n-1}, Bp = b^{n-1} as atoms
    Cp, Bp = sp.symbols("C_p B_p")
    u_prev = _geometric(c, Cp) - lam * _geometric(b, Bp)
    u_next = _geometric(c, c * Cp) - lam * _geometric(b, b * Bp)
    rhs = (1 - lam) * (1 - x * lam * _geometric(b, Bp)) + c * u_prev
    recursion_positive = sp.cancel(u_next - rhs) == 0 and sp.expand(1 - b - x * lam) == 1 - lam
    p1 = (1 + lam - x) * (1 - lam + lam * x) - lam
    cert_pos = certify_nonnegative(p1.subs(x, lam + s * (1 - lam)).subs(lam, t), (t, s))
    # step 3: two-step identity for e_n, with P = (-p)^{n-2}, Q = (-r)^{n-2} as atoms
    p, r = ell + x, ell * (1 - x)
    P, Q = sp.symbols("P Q")
    T = {k: _geometric(-p, P * (-p) ** k) for k in range(3)}  # T_{n-2+k}
    R = {k: _geometric(-r, Q * (-r) ** k) for k in range(3)}
    e = {k: T[k] - ell * R[k] for k in range(3)}
    rhs3 = (1 - ell) * (1 - p) - x * (1 + ell) * ell * (1 - (p + r) * R[0]) + p**2 * e[0]
    recursion_negative = sp.cancel(e[2] - rhs3) == 0
    x_star = (1 - ell) ** 2 / (1 + ell**2)
    p2 = (1 - ell) * (1 - p) - x * (1 + ell) * ell * (1 - (p + r) * (1 - r))
    p2 = sp.cancel(sp.together(p2.subs(x, t * x_star)) * (1 + ell**2) ** 3)
    cert_neg = certify_nonnegative(p2, (ell, t))
    noise = sp.factor(sp.numer(sp.together(1 / (1 - c**2) - lam**2 / (1 - b**2))))
    return OrderingProof(
        n2_factor, roots, recursion_positive, recursion_negative, noise, cert_pos, cert_neg
    )


@register_derivation(
    "ee-ordering-condition",
    "the largest mu h per network mode for EE_n(consensus) >= EE_n(diffusion) at every n, "
    "with its sympy-checked proof",
)
def ordering_text(strategy: str | None, order: int | None, latex: bool) -> str:
    """Text of ``dlcheck derive ee-ordering-condition``."""
    pr = proof()
    show = (lambda e: sp.latex(e, order="lex")) if latex else (lambda e: sp.sstr(e, order="lex"))
    c = "% " if latex else ""
    return "\n".join(
        [
            f"{c}per network mode (eigenvalue lambda of A, x = mu h), derived here:",
            ("x^{*}(\\lambda) = " if latex else "  x*(lambda) = ") + show(step_condition()),
            f"{c}network: mu h_max <= (1 - l)^2/(1 + l^2), l = max(0, -lambda_min(A))",
            f"{c}n = 2 heterogeneity bracket: {show(pr.n2_factor)}; roots in x: "
            + ", ".join(show(r) for r in pr.roots),
            f"{c}noise steady-state numerator: {show(pr.noise_numerator)}",
            f"{c}recursion identities: lambda >= 0 {pr.recursion_positive}, "
            f"lambda < 0 {pr.recursion_negative}",
            f"{c}Bernstein certificates: lambda >= 0 {pr.certificate_positive.holds} "
            f"({pr.certificate_positive.boxes} box(es)), lambda < 0 "
            f"{pr.certificate_negative.holds} ({pr.certificate_negative.boxes} box(es))",
            f"{c}proof complete: {pr.holds}",
        ]
    )
