"""Steady-state excess risk and MSD: exact per mode, and series in μ to first and second order.

Letters as in ``theory.recursion`` (K agents, μ, B, λ_i, h_m, δ_{i,m}, q_{i,m}). All derived
here from the per-mode recursion y_n = a y_{n−1} + g (δ + s):

* Stationary moments (sympy ``solve`` of the fixed points): E y = g δ /(1 − a),
  Var y = g² q /(1 − a²), for |a| < 1.
* Read-outs (note §3.3, [R]): ER = (1/2K) Σ_{i,m} h_m E y_{i,m}², MSD = (1/K) Σ_{i,m} E y_{i,m}².
* Series: sympy ``series`` in μ of each mode's contribution. The average mode (i = 1, a = 1 − μh,
  δ = 0) is singular in μ (Var y = μ q /(h(2 − μh)) is O(μ), not O(μ²)) and is expanded on its
  own; every network mode (|λ_i| < 1) starts at O(μ²). The sums over modes are then rewritten
  with Σ_m h_m^k q_{1,m} = Tr(H̄^k R̄)/B (q_{1,m} = v_mᵀ R̄ v_m / B) and
  Σ_m h_m^k δ_{i,m}² = ‖H^{k/2} Dᵀ u_i‖².
* First order with heterogeneous H_k, R_k: the centroid w̃_c = (1/K) Σ_k w̃_k obeys, for any
  doubly-stochastic A, w̃_c ← (I − μH̄) w̃_c + μ s̄ + μ (1/K) Σ_k (H̄ − H_k)(w̃_k − w̃_c) with
  Cov s̄ = R̄/(KB); the last term and the consensus distance only enter at O(μ²), so to first
  order every strategy is the average mode of H̄ and R̄: MSD ≈ μ Tr(H̄⁻¹R̄)/(2KB),
  ER ≈ μ Tr(R̄)/(4KB) (note §4.4 states these; here they come out of the same series).

The second-order expansion is in μh/(1 − |λ_i|): it needs μ‖H‖ ≪ 1 − max_{i≥2} |λ_i|.
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from theory import DerivationError, register_derivation
from theory.recursion import (
    STRATEGIES,
    B,
    K,
    check_strategy,
    delta,
    h,
    lam,
    mode_coefficients,
    mu,
    q,
    tidy,
)

QUANTITIES = ("excess-risk", "msd")
ORDERS = (1, 2)

# indexed symbols of the printed formulas
i_, m_ = sp.symbols("i m", integer=True, positive=True)
M = sp.Symbol("M", integer=True, positive=True)  # model dimension
LAM_I = sp.IndexedBase("lambda")[i_]
H_M = sp.IndexedBase("h")[m_]
DELTA_IM = sp.IndexedBase("delta")[i_, m_]
Q_IM = sp.IndexedBase("q")[i_, m_]
Q_1M = sp.IndexedBase("q")[1, m_]

#: Σ_m h_m^k q_{1,m} = Tr(H̄^k R̄)/B: the trace symbols, plain name and LaTeX name.
_TRACE_NAMES = {
    -1: ("Tr(H̄⁻¹R̄)", r"\operatorname{Tr}(\bar H^{-1}\bar R)"),
    0: ("Tr(R̄)", r"\operatorname{Tr}(\bar R)"),
    1: ("Tr(H̄R̄)", r"\operatorname{Tr}(\bar H\bar R)"),
    2: ("Tr(H̄²R̄)", r"\operatorname{Tr}(\bar H^{2}\bar R)"),
}
TRACES = {k: sp.Symbol(name, positive=True) for k, (name, _) in _TRACE_NAMES.items()}
#: Σ_m h_m^k δ_{i,m}² (k = 1: η_i = ‖H^{1/2}Dᵀu_i‖², k = 0: ζ_i = ‖Dᵀu_i‖²) and
#: B Σ_m h_m^k q_{i,m} (k = 1: τ_i = Σ_k U_{ki}² Tr(H R_k), k = 0: ρ_i = Σ_k U_{ki}² Tr(R_k)).
_HETEROGENEITY = {1: sp.IndexedBase("eta"), 0: sp.IndexedBase("zeta")}
_NOISE = {1: sp.IndexedBase("tau"), 0: sp.IndexedBase("rho")}
LATEX_NAMES = {TRACES[k]: tex for k, (_, tex) in _TRACE_NAMES.items()}
LEGEND = (
    "lambda[i]: eigenvalues of A (lambda_1 = 1); h_m, v_m: eigenpairs of H̄; "
    "eta[i] = ||H^(1/2) D^T u_i||^2 = sum_m h_m delta[i,m]^2; zeta[i] = ||D^T u_i||^2; "
    "tau[i] = sum_k U[k,i]^2 Tr(H R_k); rho[i] = sum_k U[k,i]^2 Tr(R_k) "
    "(tau[i] = Tr(H̄R̄), rho[i] = Tr(R̄) when all R_k are equal); D has rows d_k^T."
)


def check_quantity(quantity: str) -> str:
    """Return ``quantity`` if it is one of ``QUANTITIES``, else raise ``DerivationError``."""
    if quantity not in QUANTITIES:
        raise DerivationError(
            f"quantity={quantity!r} is not known; allowed: {', '.join(QUANTITIES)}"
        )
    return quantity


def stationary_moments(a: sp.Expr, g: sp.Expr) -> tuple[sp.Expr, sp.Expr]:
    """(E y∞, Var y∞) of y_n = a y_{n−1} + g (δ + s): the fixed points, solved by sympy."""
    m, c = sp.symbols("m c")
    mean = sp.solve(sp.Eq(m, a * m + g * delta), m)
    var = sp.solve(sp.Eq(c, a**2 * c + g**2 * q), c)
    if len(mean) != 1 or len(var) != 1:
        raise DerivationError("the stationary moments are not unique (|a| = 1)")
    return mean[0], var[0]


def readout_weight(quantity: str) -> sp.Expr:
    """Weight of E y² in the read-out: h/(2K) for the excess risk, 1/K for the MSD."""
    return h / (2 * K) if check_quantity(quantity) == "excess-risk" else 1 / K


@cache
def mode_steady_state(quantity: str, strategy: str, network: bool) -> sp.Expr:
    """Exact stationary contribution of one mode (network: in λ, h, δ, q; average: δ = 0)."""
    a, g = mode_coefficients(check_strategy(strategy), network)
    mean, var = stationary_moments(a, g)
    if not network:
        mean = mean.subs(delta, 0)  # δ_{1,m} = v_mᵀ Σ_k d_k / √K = 0
    return sp.factor(readout_weight(quantity) * (mean**2 + var))


@cache
def mode_series(quantity: str, strategy: str, network: bool, order: int) -> sp.Expr:
    """The contribution of one mode expanded in μ up to μ^order (sympy ``series``)."""
    if order not in ORDERS:
        raise DerivationError(f"order={order!r} is not supported; allowed: 1, 2")
    expr = mode_steady_state(quantity, strategy, network)
    out = sp.expand(sp.series(expr, mu, 0, order + 1).removeO())
    if network and out.coeff(mu, 1) != 0:
        raise DerivationError(f"{strategy}: a network mode contributes at first order in μ")
    return out


def _split_mode_terms(expr: sp.Expr) -> dict[tuple[str, int], sp.Expr]:
    """Group the monomials of a mode expression by (kind, power of h), kind 'delta' or 'q'.

    Each value is the remaining factor (in μ, λ, K, B): expr = Σ value · h^k · (δ² or q).
    """
    groups: dict[tuple[str, int], sp.Expr] = {}
    expr = sp.expand(expr)
    for term in sp.Add.make_args(expr) if expr != 0 else ():
        if term.has(delta):
            kind, rest = "delta", term / delta**2
        elif term.has(q):
            kind, rest = "q", term / q
        else:
            raise DerivationError(f"unexpected term {term} (neither δ² nor q)")
        rest, k = rest.as_coeff_exponent(h) if rest.is_Mul or rest.is_Pow else (rest, 0)
        if rest.has(h, delta, q):
            raise DerivationError(f"term {term} is not of the form f · h^k · (δ² or q)")
        groups[kind, int(k)] = groups.get((kind, int(k)), 0) + rest
    return groups


def trace_form(quantity: str, strategy: str, order: int, *, equal_noise: bool) -> sp.Expr:
    """ER or MSD to ``order`` in μ, summed over modes into traces and network sums.

    ``equal_noise``: R_k = R for all k, so that B Σ_m h_m^k q_{i,m} = Tr(H̄^k R̄) for every i
    and the noise part of each network sum factors into Tr(·) · Σ_{i≥2} f(λ_i).
    """
    average = _split_mode_terms(mode_series(quantity, strategy, False, order))
    total = sp.Integer(0)
    for (kind, k), coeff in average.items():
        if kind != "q" or k not in TRACES:
            raise DerivationError(f"average mode: unexpected group {(kind, k)}")
        total += coeff * TRACES[k] / B
    if order < 2:
        return total
    network = _split_mode_terms(mode_series(quantity, strategy, True, order))
    summand = sp.Integer(0)
    for (kind, k), coeff in sorted(network.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        f = tidy(coeff).subs(lam, LAM_I)
        if kind == "delta":
            summand += f * _HETEROGENEITY[k][i_]
        elif equal_noise:
            c, rest = f.as_independent(i_)
            total += c * TRACES[k] / B * sp.Sum(rest, (i_, 2, K))
        else:
            summand += f * _NOISE[k][i_] / B
    if summand != 0:
        c, rest = _pull_constant(summand, {})
        total += c * sp.Sum(rest, (i_, 2, K))
    return total


def _pull_constant(expr: sp.Expr, sub: dict) -> tuple[sp.Expr, sp.Expr]:
    """(c, rest) with expr.subs(sub) = c · rest, c the mode-independent factor of the first
    term (e.g. μ²/(2K)); the terms of ``expr`` are kept as they are (no refactoring)."""
    terms = [t.subs(sub) for t in sp.Add.make_args(expr)]
    c = terms[0].as_independent(i_, m_, lam, h, delta, q, as_Add=False)[0]
    return c, sp.Add(*[t / c for t in terms])


def exact_form(quantity: str, strategy: str) -> sp.Expr:
    """Exact steady state, weight · ((E y∞)² + Var y∞) summed over the average and network modes."""
    total = sp.Integer(0)
    for network in (False, True):
        a, g = mode_coefficients(check_strategy(strategy), network)
        if g == 0:
            continue
        mean, var = (tidy(x) for x in stationary_moments(a, g))
        mean = mean if network else sp.Integer(0)  # δ_{1,m} = 0
        weight = readout_weight(quantity)
        if network:
            sub = {lam: LAM_I, h: H_M, delta: DELTA_IM, q: Q_IM}
            c, rest = _pull_constant(weight * mean**2 + weight * var, sub)
            total += c * sp.Sum(rest, (i_, 2, K), (m_, 1, M))
        else:
            c, rest = _pull_constant(weight * var, {h: H_M, q: Q_1M})
            total += c * sp.Sum(rest, (m_, 1, M))
    return total


def render(expr: sp.Expr, latex: bool) -> str:
    """The expression as plain text or LaTeX, with a fixed (lexicographic) term order."""
    if latex:
        return sp.latex(expr, order="lex", symbol_names=LATEX_NAMES)
    return sp.sstr(expr, order="lex")


def _text(quantity: str, strategy: str | None, order: int | None, latex: bool) -> str:
    strategy = check_strategy(strategy)
    label = "ER" if quantity == "excess-risk" else "MSD"
    tex_label = r"\mathrm{ER}" if quantity == "excess-risk" else r"\mathrm{MSD}"
    head = f"{quantity}, {strategy}"
    if order is None:
        forms = [
            (
                "exact steady state (derived here; |a| < 1 on every mode)",
                exact_form(quantity, strategy),
                "",
            )
        ]
    elif order == 1:
        forms = [
            (
                "first order in mu (derived here; any doubly-stochastic A, heterogeneous H_k, R_k)",
                trace_form(quantity, strategy, 1, equal_noise=False),
                "mu^2",
            )
        ]
    else:
        forms = [
            (
                "second order in mu (derived here; common H; mu h_max << 1 - max_{i>=2}|lambda_i|)",
                trace_form(quantity, strategy, 2, equal_noise=False),
                "mu^3",
            ),
            ("the same with R_k = R", trace_form(quantity, strategy, 2, equal_noise=True), "mu^3"),
        ]
    lines = []
    for title, expr, rest in forms:
        if latex:
            tail = f" + O(\\mu^{{{rest[-1]}}})" if rest else ""
            lines += [f"% {head}: {title}", f"{tex_label} = {render(expr, True)}{tail}"]
        else:
            tail = f" + O({rest})" if rest else ""
            lines += [f"{head}: {title}", f"  {label} = {render(expr, False)}{tail}"]
    lines.append(("% where " if latex else "where ") + LEGEND)
    return "\n".join(lines)


@register_derivation(
    "excess-risk",
    "steady-state excess risk (1/K) sum_k E J(w_k) - J(w*): exact per mode, or --order 1|2",
    strategies=STRATEGIES,
    orders=ORDERS,
)
def excess_risk_text(strategy: str | None, order: int | None, latex: bool) -> str:
    """Text of ``dlcheck derive excess-risk``."""
    return _text("excess-risk", strategy, order, latex)


@register_derivation(
    "msd",
    "steady-state mean-square deviation (1/K) sum_k E||w* - w_k||^2: exact, or --order 1|2",
    strategies=STRATEGIES,
    orders=ORDERS,
)
def msd_text(strategy: str | None, order: int | None, latex: bool) -> str:
    """Text of ``dlcheck derive msd``."""
    return _text("msd", strategy, order, latex)
