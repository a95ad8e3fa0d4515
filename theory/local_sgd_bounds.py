"""Upper and lower bounds of local SGD, minibatch SGD and their relatives, as sympy formulas.

Letters follow the local SGD papers (shared/research/local_sgd_bounds.md §0): M machines,
K local steps (stochastic gradients per machine per round), R rounds; H smoothness, B the
initial distance ‖x_0 − x*‖ (x_0 = 0), σ² the gradient-noise variance, ζ⋆ the
heterogeneity at the optimum ((1/M) Σ_m ‖∇F_m(x*)‖² ≤ ζ⋆²), ζ̄ a uniform heterogeneity bound
(sup_x of the same, (c) Assumption 2), τ the Hessian dissimilarity (Assumption 3), Q the
Hessian Lipschitz constant (Assumption 4), D the radius containing all iterates (Thm 15),
μ strong convexity (κ = H/μ). Every bound holds up to constants (and logs); the formulas are
the papers' with constants set to one, and only their scaling is ever checked numerically.

Papers: (a) Woodworth et al., ICML 2020; (b) Woodworth, Patel, Srebro, NeurIPS 2020;
(c) Patel et al., COLT 2024; W21 Woodworth, Bullins, Shamir, Srebro, COLT 2021; Glasgow,
Yuan, Ma, AISTATS 2022; Koloskova et al., ICML 2020. Tags as in the note: [V] read in the
full text, [R] restated in a full text ((c)'s tables or W21), [M] recalled or reconstructed
(never attributed to a theorem here: "derived here" / "standard").

Each ``Bound`` records the algorithm, whether it is an upper or a lower bound, the class of
problems, which output it speaks about (final or averaged iterate), the quantity bounded,
the source and its tag. ``BOUNDS`` is the registry; ``bound_function`` lambdifies one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp

H, B, sigma, zeta, zeta_bar, tau, Q, mu, D = sp.symbols(
    "H B sigma zeta_star zeta_bar tau Q mu D", positive=True
)
M, K, R = sp.symbols("M K R", positive=True)
#: Every symbol a bound may use, by name (the keyword arguments of ``bound_function``).
SYMBOLS: dict[str, sp.Symbol] = {
    s.name: s for s in (H, B, sigma, zeta, zeta_bar, tau, Q, mu, D, M, K, R)
}

third = sp.Rational(1, 3)

# ---- the recurring terms ------------------------------------------------------------------
#: Optimization term of minibatch SGD: R steps of GD.
T_MB = H * B**2 / R
#: Optimization term of accelerated minibatch SGD and of any zero-respecting method ((c) Thm 11).
T_ACC = H * B**2 / R**2
#: Optimization term of K·R serial steps.
T_SERIAL = H * B**2 / (K * R)
#: Optimization term of K·R accelerated serial steps.
T_SERIAL_ACC = H * B**2 / (K**2 * R**2)
#: Statistical term with all M·K·R samples.
T_STAT = sigma * B / sp.sqrt(M * K * R)
#: Statistical term of one machine's K·R samples.
T_STAT_ONE = sigma * B / sp.sqrt(K * R)
#: Consensus ("iterate bias") term of local SGD in the noise (homogeneous) part.
T_NOISE_DRIFT = (H * sigma**2 * B**4) ** third / (K**third * R ** (2 * third))
#: Heterogeneity drift term of local SGD with ζ⋆.
T_HET_DRIFT = (H * zeta**2 * B**4) ** third / R ** (2 * third)
#: The same with the uniform ζ̄ of (b).
T_HET_DRIFT_UNIFORM = (H * zeta_bar**2 * B**4) ** third / R ** (2 * third)

QUANTITY_RISK = "E F(x̂) − F*"
QUANTITY_DISTANCE = "‖x_R − x*‖"


@dataclass(frozen=True)
class Bound:
    """One bound: ``expression`` ⪯ (upper) or ⪰ (lower) the quantity, up to constants."""

    name: str
    algorithm: str
    kind: str  # "upper" or "lower"
    problem_class: str
    output: str  # "final", "averaged", "any", "unknown"
    expression: sp.Expr
    source: str
    tag: str
    quantity: str = QUANTITY_RISK
    note: str = ""

    @property
    def symbols(self) -> tuple[str, ...]:
        """Names of the symbols the expression uses, sorted."""
        return tuple(sorted(s.name for s in self.expression.free_symbols))


def _b(*args, **kwargs) -> Bound:
    return Bound(*args, **kwargs)


_LIST = [
    _b(
        "minibatch_sgd",
        "minibatch SGD (R steps, batch MK)",
        "upper",
        "P^{H,B,σ} (any heterogeneity: gradients at a common point)",
        "averaged",
        T_MB + T_STAT,
        "(c) Table 1 (Woodworth et al. 2020)",
        "R",
        note="independent of ζ⋆; (c) Remark 18: also its worst case, even for τ = ζ⋆ = Q = 0",
    ),
    _b(
        "accelerated_minibatch_sgd",
        "accelerated minibatch SGD (R steps of AC-SA, batch MK)",
        "upper",
        "P^{H,B,σ}",
        "averaged",
        T_ACC + T_STAT,
        "(c) Table 1; W21 eq. (12)",
        "R",
        note="AC-SA's output x^ag (a weighted average)",
    ),
    _b(
        "single_machine_sgd",
        "single-machine SGD (K·R steps)",
        "upper",
        "homogeneous, convex, H-smooth",
        "averaged",
        T_SERIAL + T_STAT_ONE,
        "standard SGD rate (note §1 table)",
        "M",
    ),
    _b(
        "single_machine_accelerated_sgd",
        "single-machine AC-SA (K·R steps)",
        "upper",
        "homogeneous, convex, H-smooth",
        "averaged",
        T_SERIAL_ACC + T_STAT_ONE,
        "W21 eq. (13)",
        "V",
        note="AC-SA's output x^ag",
    ),
    _b(
        "local_sgd_quadratic",
        "local SGD",
        "upper",
        "homogeneous quadratics, x-independent noise",
        "averaged",
        T_SERIAL + T_STAT,
        "(a), mechanism derived here: the machine average is serial SGD with noise σ²/M",
        "M",
    ),
    _b(
        "accelerated_local_sgd_quadratic",
        "accelerated local SGD",
        "upper",
        "homogeneous quadratics",
        "averaged",
        T_SERIAL_ACC + T_STAT,
        "W21 eq. (14); (c) Remark 14",
        "V",
        note="min-max optimal on quadratics",
    ),
    _b(
        "local_sgd_homogeneous",
        "local SGD",
        "upper",
        "homogeneous, convex, H-smooth",
        "averaged",
        T_SERIAL + T_STAT + T_NOISE_DRIFT,
        "(a) as restated in (c) Table 2 with ζ = 0",
        "R",
    ),
    _b(
        "local_sgd_zeta_star_upper",
        "local SGD",
        "upper",
        "P^{H,B,σ}_{ζ⋆}",
        "averaged",
        T_MB + T_NOISE_DRIFT + T_STAT + T_HET_DRIFT,
        "Koloskova et al. 2020 (p = 1, τ = K) as restated in (c) Table 1",
        "R",
    ),
    _b(
        "local_sgd_zeta_star_lower",
        "local SGD (any inner step η and outer step β for the HB²/R part)",
        "lower",
        "P^{H,B,σ}_{ζ⋆}, K ≥ 2, x_0 = 0",
        "final",
        T_MB + T_NOISE_DRIFT + T_STAT + T_HET_DRIFT,
        "(c) Theorem 9",
        "V",
        note="equals Koloskova's upper bound: the exact worst-case rate of local SGD on P_ζ⋆",
    ),
    _b(
        "zero_respecting_lower",
        "any distributed zero-respecting algorithm",
        "lower",
        "P^{H,B,σ}_{ζ⋆}, even ζ⋆ = 0, K ≥ 2",
        "final",
        T_ACC + T_STAT,
        "(c) Theorem 11",
        "V",
        note="met by accelerated minibatch SGD, which is therefore min-max optimal on P_ζ⋆",
    ),
    _b(
        "glasgow_lower",
        "local SGD",
        "lower",
        "P^{H,B,σ}_{ζ⋆}",
        "unknown",
        T_SERIAL + sp.Min(T_STAT_ONE, T_NOISE_DRIFT) + T_STAT + sp.Min(zeta**2 / H, T_HET_DRIFT),
        "Glasgow, Yuan, Ma 2022 as restated in (c) Table 1",
        "R",
        note="output type not retrieved; loose as K → ∞ with σ = ζ⋆ = 0 ((c) Prop. 7)",
    ),
    _b(
        "local_sgd_uniform_heterogeneity",
        "local SGD",
        "upper",
        "P^{H,B,σ}_{ζ(R^d)} (uniform ζ̄; for quadratics equal Hessians, (c) Prop. 1)",
        "averaged",
        T_SERIAL + T_STAT + T_HET_DRIFT_UNIFORM + T_NOISE_DRIFT,
        "(b) as restated in (c) Table 2",
        "R",
    ),
    _b(
        "heterogeneous_algorithm_independent_lower",
        "any distributed zero-respecting algorithm",
        "lower",
        "P^{H,B,σ}_{ζ⋆}",
        "unknown",
        sp.Min(T_ACC, zeta**2 / (H * R**2), zeta * B / R) + T_STAT,
        "(b) as restated in (c) Table 1",
        "R",
        note="equals accelerated minibatch SGD's rate once ζ⋆ ≥ HB",
    ),
    _b(
        "local_sgd_higher_order",
        "local SGD (η ≤ 1/(2H), β = 1)",
        "upper",
        "P^{H,Q,B,σ}_τ ∩ (P_{ζ(B_2(D))} ∪ P_ζ⋆), iterates in B_2(D)",
        "averaged",
        T_SERIAL
        + T_STAT
        + sp.sqrt(tau * sigma * B**3) / (K ** sp.Rational(1, 4) * sp.sqrt(R))
        + (Q * sigma**2 * B**5) ** third / (K**third * R ** (2 * third))
        + sp.Min(
            sp.sqrt(tau * zeta_bar * B**3 / R)
            + (Q * zeta_bar**2 * B**5) ** third / R ** (2 * third),
            sp.sqrt(tau * zeta * B**3 / R)
            + (Q * zeta**2 * B**5) ** third / R ** (2 * third)
            + sp.sqrt(tau**2 * D * B**3 / R)
            + (Q * tau**2 * D**2 * B**5) ** third / R ** (2 * third),
        ),
        "(c) Theorem 15 (informal, up to logs)",
        "V",
        note="uniform average of all local iterates; ζ̄ = ζ(B_2(D)); τ = ζ = 0 gives Yuan–Ma 2020",
    ),
    _b(
        "homogeneous_minmax_lower",
        "any intermittent-communication algorithm (possibly randomized), M ≥ 2",
        "lower",
        "homogeneous, convex, H-smooth (dimension polynomial in the parameters)",
        "any",
        T_SERIAL_ACC
        + sp.Min(T_STAT, H * B**2)
        + sp.Min(H * B**2 / (R**2 * (1 + sp.log(M) ** 2)), T_STAT_ONE),
        "W21 Theorem 1",
        "V",
    ),
    _b(
        "graph_oracle_lower",
        "any intermittent-communication algorithm",
        "lower",
        "homogeneous, convex, H-smooth",
        "any",
        T_SERIAL_ACC + T_STAT,
        "Woodworth et al. 2018 as used in W21's proof sketch of Theorem 1",
        "V",
    ),
    _b(
        "local_gd_strongly_convex_quadratic",
        "local GD (σ = 0, β = 1, η = 1/(2H))",
        "upper",
        "μ-strongly convex quadratics F_m = ½(x − x_m*)ᵀA_m(x − x_m*), Assumptions 3 and 7",
        "final",
        sp.exp(-K * R * mu / H) * (1 - 2**-K) / (1 - (1 - mu / (2 * H)) ** K) * B
        + zeta * tau / (H * mu),
        "(c) Theorem 22",
        "V",
        quantity=QUANTITY_DISTANCE,
        note="plateau ζ⋆τ/(Hμ); GD (noiseless minibatch SGD) gives B e^{−R/κ}",
    ),
    _b(
        "gd_quadratic_lower",
        "GD with any step size, from 0",
        "lower",
        "quadratics with top eigenvalue H, bottom μ, κ = H/μ ≥ 6",
        "final",
        H * B**2 * mu / (4 * H) * sp.exp(-12 * R * mu / H),
        "(c) Lemma 8 (constant of its proof)",
        "V",
        note="with κ = Ω(R) this is Ω(HB²/R); the engine of (c) Prop. 7",
    ),
    _b(
        "optima_distance",
        "— (property of the problem: ‖x* − mean of local optima‖)",
        "upper",
        "strongly convex quadratics, Assumptions 3 and 7",
        "any",
        zeta * tau / (H * mu),
        "(c) Proposition 21",
        "V",
        quantity="‖x* − x̄*‖",
    ),
]

BOUNDS: dict[str, Bound] = {b.name: b for b in _LIST}


def get_bound(name: str) -> Bound:
    """The bound ``name``; ``KeyError`` lists the registered names."""
    if name not in BOUNDS:
        raise KeyError(f"no bound named {name!r}; registered: {', '.join(BOUNDS)}")
    return BOUNDS[name]


def bound_function(name: str) -> Callable[..., object]:
    """A numpy function of keyword arguments (the symbols' names) evaluating bound ``name``.

    Example: ``bound_function("minibatch_sgd")(H=1, B=1, sigma=1, M=10, K=5, R=100)``.
    Arrays broadcast. Missing symbols raise ``TypeError`` naming them.
    """
    bound = get_bound(name)
    names = bound.symbols
    func = sp.lambdify([SYMBOLS[n] for n in names], bound.expression, modules="numpy")

    def evaluate(**values):
        missing = [n for n in names if n not in values]
        if missing:
            raise TypeError(f"bound {name!r} needs values for {', '.join(missing)}")
        return func(*(values[n] for n in names))

    evaluate.__doc__ = f"{name}: {bound.expression}"
    return evaluate


def term_function(expression: sp.Expr) -> Callable[..., object]:
    """Lambdify any expression built from ``SYMBOLS`` (e.g. a single term such as
    ``T_NOISE_DRIFT``) into a function of keyword arguments."""
    names = tuple(sorted(s.name for s in expression.free_symbols))
    func = sp.lambdify([SYMBOLS[n] for n in names], expression, modules="numpy")
    return lambda **values: func(*(values[n] for n in names))
