"""Exact identities for local SGD and the scales of the hard instances (sympy).

Letters as in ``theory.local_sgd_bounds`` (M machines, K local steps, R rounds); η is the
inner step and β the outer step of local SGD (Patel et al. 2024 (c), eqs. (5)–(6) [V]).

- ``two_machine_fraction``: (c) eq. (8) [V]. Two machines, F_1 = (H/2)(x[1] − x*[1])²,
  F_2 = (H/2)(x[2] − x*[2])², σ = 0, x_0 = 0: local GD gives x_R = x*·(1 − (1 −
  (β/2)(1 − (1 − ηH)^K))^R). Its K → ∞ limits and the excess (H/4)‖x*‖²(…)^{2R} are
  derived here from it.
- ``projector_power``: (c) App. B.3 [V]. For a projector P (P² = P),
  (I − ηH P)^K = I − (1 − (1 − ηH)^K) P; verified here for K = 1..6 with symbolic P = vvᵀ.
- ``rank_one_alpha``: (c) App. B.3 [V] eigenvalues of A = (1 − a)A_1 + a A_2; α solved
  here so that κ(A) equals a target.
- GLB scales: the reconstructed instances of the note §8.2 ([M], reconstructed here, not
  Glasgow et al.'s constructions): μ_1 = (Hσ²/(B²KR²))^{1/3} makes μ_1B² equal to the
  iterate-bias term, and μ_1 = (Hζ⋆²/(B²R²))^{1/3} the heterogeneity-drift term; the
  balance of μ_1B²·e^{−2μ_1ηKR} against Hη²σ²K at η = 1/(μ_1KR) is derived here.
"""

from __future__ import annotations

import sympy as sp

from theory import register_derivation
from theory.local_sgd_bounds import (
    BOUNDS,
    T_HET_DRIFT,
    T_NOISE_DRIFT,
    B,
    H,
    K,
    R,
    sigma,
    zeta,
)

eta, beta = sp.symbols("eta beta", positive=True)
alpha, a, kappa = sp.symbols("alpha a kappa", positive=True)
#: c = 1 − (1 − ηH)^K, the fraction of the way a machine's K local steps go on its own
#: coordinate (projector direction).
c = sp.Symbol("c", positive=True)


def local_contraction() -> sp.Expr:
    """1 − (1 − ηH)^K: what K local GD steps do along a unit-curvature projector direction."""
    return 1 - (1 - eta * H) ** K


def two_machine_fraction() -> sp.Expr:
    """x_R / x* on each coordinate of the two-machine example, (c) eq. (8) [V]."""
    return 1 - (1 - beta / 2 * local_contraction()) ** R


def two_machine_function():
    """``two_machine_fraction`` as a numpy function of (η, β, H, K, R) (lambdify)."""
    return sp.lambdify((eta, beta, H, K, R), two_machine_fraction(), modules="numpy")


def two_machine_excess_over_norm() -> sp.Expr:
    """(F(x_R) − F*)/‖x*‖² = (H/4)(1 − (β/2)(1 − (1 − ηH)^K))^{2R}, derived here from eq. (8)
    (F = ½(F_1 + F_2) = (H/4)‖x − x*‖²)."""
    return H / 4 * (1 - two_machine_fraction()) ** 2


def two_machine_limit(beta_value) -> sp.Expr:
    """x_R/x* as K → ∞ ((1 − ηH)^K → 0 for 0 < ηH < 2) at outer step ``beta_value``."""
    return two_machine_fraction().subs((1 - eta * H) ** K, 0).subs(beta, beta_value)


def projector_power_holds(max_power: int = 6) -> bool:
    """Check (I − cP)^K = I − (1 − (1 − c)^K) P for P = vvᵀ, v = (α, √(1 − α²)), K ≤ max."""
    v = sp.Matrix([alpha, sp.sqrt(1 - alpha**2)])
    P = v * v.T
    eye = sp.eye(2)
    for k in range(1, max_power + 1):
        diff = (eye - c * P) ** k - (eye - (1 - (1 - c) ** k) * P)
        if any(sp.simplify(sp.expand(e)) != 0 for e in diff):
            return False
    return True


def rank_one_eigenvalues() -> tuple[sp.Expr, sp.Expr]:
    """λ_{1,2} = ½ ± √(¼ − a(1 − a)(1 − α²)) of A = (1 − a)diag(1, 0) + a vvᵀ ((c) App. B.3)."""
    root = sp.sqrt(sp.Rational(1, 4) - a * (1 - a) * (1 - alpha**2))
    return sp.Rational(1, 2) + root, sp.Rational(1, 2) - root


def rank_one_alpha() -> sp.Expr:
    """α with κ(A) = λ_1/λ_2 = κ, solved here: α² = 1 − κ/((1 + κ)² a(1 − a))."""
    lam1, lam2 = rank_one_eigenvalues()
    # λ_1 + λ_2 = 1 and λ_1 λ_2 = a(1 − a)(1 − α²): κ/(1 + κ)² = a(1 − a)(1 − α²)
    square = sp.Symbol("alpha_sq", positive=True)  # α², the equation is linear in it
    product = sp.expand(lam1 * lam2).subs(alpha**2, square)
    (sol,) = sp.solve(sp.Eq(product, kappa / (1 + kappa) ** 2), square)
    return sp.sqrt(sp.factor(sol))


def glb_hom_curvature() -> sp.Expr:
    """μ_1 = (Hσ²/(B²KR²))^{1/3} of GLB-hom ([M], note §8.2; reconstructed here)."""
    return (H * sigma**2 / (B**2 * K * R**2)) ** sp.Rational(1, 3)


def glb_het_curvature() -> sp.Expr:
    """μ_1 = (Hζ⋆²/(B²R²))^{1/3} of GLB-het ([M], note §8.2; reconstructed here)."""
    return (H * zeta**2 / (B**2 * R**2)) ** sp.Rational(1, 3)


def glb_balance() -> dict[str, sp.Expr]:
    """The GLB-hom mechanism at η = 1/(μ_1KR), derived here: the coordinate-1 scale μ_1B²,
    the bias scale Hη²σ²K, and their ratio (1 at μ_1 = ``glb_hom_curvature``)."""
    mu1 = glb_hom_curvature()
    step = 1 / (mu1 * K * R)
    first = mu1 * B**2
    bias = H * step**2 * sigma**2 * K
    return {
        "mu1 B^2": sp.simplify(first),
        "H eta^2 sigma^2 K": sp.simplify(bias),
        "ratio": sp.simplify(bias / first),
        "mu1 B^2 - iterate-bias term": sp.simplify(first - T_NOISE_DRIFT),
        "het: mu1 B^2 - drift term": sp.simplify(glb_het_curvature() * B**2 - T_HET_DRIFT),
    }


def render(expr: sp.Expr, latex: bool) -> str:
    """sympy's LaTeX or its one-line string."""
    return sp.latex(expr) if latex else sp.sstr(expr)


@register_derivation(
    "local-sgd-bounds",
    "every local SGD / minibatch SGD bound of the registry: algorithm, upper or lower, class, "
    "output, source and tag, and the formula",
)
def bounds_text(strategy: str | None, order: int | None, latex: bool) -> str:
    """Text of ``dlcheck derive local-sgd-bounds``."""
    c_ = "%" if latex else ""
    lines = [
        f"{c_}Bounds up to constants (shared/research/local_sgd_bounds.md); M machines, K "
        "local steps, R rounds; tags [V] read, [R] restated, [M] recalled/reconstructed"
    ]
    for b in BOUNDS.values():
        rel = "<~" if b.kind == "upper" else ">~"
        lines.append(
            f"{c_}{b.name}: {b.kind} bound for {b.algorithm}; class {b.problem_class}; "
            f"output: {b.output}; {b.source} [{b.tag}]" + (f"; {b.note}" if b.note else "")
        )
        lines.append(f"  {b.quantity} {rel} " + render(b.expression, latex))
    upper = BOUNDS["local_sgd_zeta_star_upper"].expression
    lower = BOUNDS["local_sgd_zeta_star_lower"].expression
    lines.append(
        f"{c_}tight: Koloskova upper − (c) Thm 9 lower = {sp.simplify(upper - lower)} "
        "(the exact worst-case rate of local SGD on P_zeta_star)"
    )
    return "\n".join(lines)


@register_derivation(
    "local-sgd-exact",
    "exact identities: the two-machine closed form (c) eq. (8) and its limits, the projector "
    "power of (c) Prop. 7, the rank-one alpha, and the scales of the reconstructed GLB instances",
)
def exact_text(strategy: str | None, order: int | None, latex: bool) -> str:
    """Text of ``dlcheck derive local-sgd-exact``."""
    c_ = "%" if latex else ""
    lam1, lam2 = rank_one_eigenvalues()
    lines = [
        f"{c_}(c) eq. (8) [V]: two machines, sigma = 0, x_0 = 0: x_R / x* =",
        "  " + render(two_machine_fraction(), latex),
        f"{c_}excess over ||x*||^2 (derived here) = "
        + render(two_machine_excess_over_norm(), latex),
        f"{c_}K -> oo (0 < eta H < 2): beta = 1: x_R/x* = "
        + render(two_machine_limit(1), latex)
        + "; beta = 2: x_R/x* = "
        + render(two_machine_limit(2), latex),
        f"{c_}(c) App. B.3 [V]: (I - c P)^K = I - (1 - (1 - c)^K) P for P^2 = P "
        f"(checked here for K <= 6: {projector_power_holds()}), c = eta H",
        f"{c_}rank-one A = (1-a) diag(1,0) + a v v^T: lambda = "
        + render(lam1, latex)
        + ", "
        + render(lam2, latex),
        f"{c_}alpha for kappa(A) = kappa (solved here): alpha = " + render(rank_one_alpha(), latex),
        f"{c_}GLB-hom ([M], reconstructed here): mu_1 = " + render(glb_hom_curvature(), latex),
        f"{c_}GLB-het ([M], reconstructed here): mu_1 = " + render(glb_het_curvature(), latex),
    ]
    for key, value in glb_balance().items():
        lines.append(f"{c_}  at eta = 1/(mu_1 K R): {key} = " + render(value, latex))
    return "\n".join(lines)
