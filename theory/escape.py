"""Escaping efficiency EE_n: closed forms per mode, the one-step form for any agents and any
doubly-stochastic A, and the differences between strategies as non-negative terms.

Letters as in ``theory.recursion``. EE_n = (1/K) Σ_k E J(w_{k,n}) − J(w*) from w_{k,0} = w*,
read out as (1/2K) E Σ_k w̃_kᵀ H̄ w̃_k (note §3.2–3.3, [R]). All results derived here:

* Per mode (symmetric A, common H): sympy ``rsolve`` of m_n = a m_{n−1} + g δ and
  c_n = a² c_{n−1} + g² q from m_0 = c_0 = 0 gives m_n = g δ (1 − aⁿ)/(1 − a) and
  c_n = g² q (1 − a^{2n})/(1 − a²); EE_n = (1/2K) Σ_{i,m} h_m (m_n² + c_n).
* One step (any H_k, R_k, d_k; any A): W̃_1 = μ A2ᵀ (d + s_1), so with G_{l,l'} = d_lᵀ H̄ d_{l'},
  t_l = Tr(H̄ R_l) and a = A2 (J, I or A):
      EE_1 = μ²/(2K) Σ_k [ Σ_{l,l'} a_{lk} a_{l'k} G_{l,l'} + (1/B) Σ_l a_{lk}² t_l ].
  sympy checks this against the exact moment recursion (note §4.2) on K = 3, M = 2 with every
  entry symbolic (``verify_one_step``).
* Differences at n = 1 for doubly-stochastic A, with d̂_k = Σ_l a_{lk} d_l:
      con − dif = μ²/(2K) [ Σ_{k,l} a_{lk} ‖d_l − d̂_k‖²_H̄ + (1/B) Σ_{l,k} a_{lk}(1 − a_{lk}) t_l ],
      dif − cen = μ²/(2K) [ Σ_k ‖d̂_k‖²_H̄ + (1/B) Σ_{l,k} (a_{lk} − 1/K)² t_l ],
  every term ≥ 0 (a_{lk} ∈ [0, 1], H̄ ≻ 0). con − dif = 0 iff the gradients agree within every
  neighbourhood (connected graph ⇒ d = 0) and a_{lk} ∈ {0, 1} wherever t_l > 0; dif − cen = 0
  iff Aᵀ D = 0 and a_{lk} = 1/K wherever t_l > 0 (A = J, where diffusion is centralized).
"""

from __future__ import annotations

from functools import cache

import sympy as sp
from sympy.physics.quantum import TensorProduct

from theory import register_derivation
from theory.excess_risk import DELTA_IM, H_M, Q_IM, M, i_, m_, render
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
    n,
    q,
    tidy,
)

# ---- per-mode closed forms ----------------------------------------------------------------


a_, g_ = sp.symbols("a g")  # a generic mode's coefficients


@cache
def generic_moments() -> tuple[sp.Expr, sp.Expr]:
    """(E y_n, Var y_n) of y_n = a y_{n−1} + g (δ + s) from y_0 = 0, solved by ``rsolve``."""
    y = sp.Function("y")
    mean = sp.rsolve(y(n) - a_ * y(n - 1) - g_ * delta, y(n), {y(0): 0})
    var = sp.rsolve(y(n) - a_**2 * y(n - 1) - g_**2 * q, y(n), {y(0): 0})
    return tidy(mean), tidy(var)


def finite_horizon_moments(strategy: str, network: bool) -> tuple[sp.Expr, sp.Expr]:
    """(E y_n, Var y_n) on a network mode or the average mode (δ = 0) of ``strategy``."""
    a, g = mode_coefficients(check_strategy(strategy), network)
    if g == 0:
        return sp.Integer(0), sp.Integer(0)
    mean, var = (x.subs({a_: a, g_: g}) for x in generic_moments())
    return (mean if network else sp.Integer(0)), var


@cache
def mode_escaping_efficiency(strategy: str, network: bool) -> sp.Expr:
    """EE_n contribution of one mode: h/(2K) ((E y_n)² + Var y_n)."""
    mean, var = finite_horizon_moments(strategy, network)
    return h / (2 * K) * (mean**2 + var)


def escaping_efficiency_form() -> sp.Expr:
    """EE_n = (1/2K) Σ_{i,m} h_m ((E y_n)² + Var y_n) in the generic a_{i,m}, g_i (printable)."""
    mean, var = generic_moments()
    a_im, g_i = sp.IndexedBase("a")[i_, m_], sp.IndexedBase("g")[i_]
    sub = {a_: a_im, g_: g_i, delta: DELTA_IM, q: Q_IM}
    body = H_M * (mean**2 + var).subs(sub)
    return sp.Sum(body, (i_, 1, K), (m_, 1, M)) / (2 * K)


C_SYM, B_SYM = sp.symbols("c b")  # the consensus and diffusion a on a network mode


def partial_sum(x: sp.Expr) -> sp.Expr:
    """S_n(x) = Σ_{j<n} x^j = (1 − xⁿ)/(1 − x)."""
    return (1 - x**n) / (1 - x)


def structured_difference(pair: str, c: sp.Expr | None = None, b: sp.Expr | None = None) -> sp.Expr:
    """The per-mode difference through S_n (``pair``: consensus-diffusion or
    diffusion-centralized), with c = λ − μh (consensus) and b = λ(1 − μh) (diffusion):

        con − dif = μ²h/(2K) [δ² (S_n(c) − λS_n(b))(S_n(c) + λS_n(b))
                              + q Σ_{j<n}(c^{2j} − λ²b^{2j})]
        dif − cen = μ²h/(2K) λ² [δ² S_n(b)² + q S_n(b²)]          (≥ 0 for every n)
    """
    c = mode_coefficients("consensus", True)[0] if c is None else c
    b = mode_coefficients("diffusion", True)[0] if b is None else b
    if pair == "consensus-diffusion":
        mean = (partial_sum(c) - lam * partial_sum(b)) * (partial_sum(c) + lam * partial_sum(b))
        noise = partial_sum(c**2) - lam**2 * partial_sum(b**2)
        return mu**2 * h / (2 * K) * (delta**2 * mean + q * noise)
    return mu**2 * h / (2 * K) * lam**2 * (delta**2 * partial_sum(b) ** 2 + q * partial_sum(b**2))


def verify_structured_difference(pair: str) -> bool:
    """Whether ``structured_difference(pair)`` equals the difference of the closed forms.

    Checked as an identity in free symbols c, b (the consensus and diffusion a), so cⁿ and bⁿ
    stay atoms; the g of each strategy is the derived one (μ for consensus, μλ for diffusion).
    """
    c, b = C_SYM, B_SYM
    first, second = pair.split("-")
    closed = []
    for s in (first, second):
        a, g = {"consensus": c, "diffusion": b}.get(s, 0), mode_coefficients(s, True)[1]
        mean, var = (x.subs({a_: a, g_: g}) for x in generic_moments())
        closed.append(0 if g == 0 else h / (2 * K) * (mean**2 + var))
    diff = closed[0] - closed[1] - structured_difference(pair, c, b)
    return sp.cancel(sp.expand(diff)) == 0


@cache
def steady_state_difference(pair: str) -> tuple[sp.Expr, sp.Expr]:
    """(δ² part, q part) of EE_∞(first) − EE_∞(second) per network mode, factored with
    x = μh. con − dif: μ²hδ²(1−λ)²(1 − λ² + 2λx)/((1−λ+x)²(1−λ+λx)²) and
    μ²hq(1−λ)((1+λ)(1−λ²) + 2λ²x)/((1−λ+x)(1+λ−x)(1−λ+λx)(1+λ−λx)), all / (2K)."""
    first, second = pair.split("-")
    x = sp.Symbol("x", positive=True)
    out = []
    for part in (delta, q):
        a1, g1 = mode_coefficients(first, True)
        a2, g2 = mode_coefficients(second, True)
        terms = []
        for a, g in ((a1, g1), (a2, g2)):
            if g == 0:
                terms.append(sp.Integer(0))
            elif part == delta:
                terms.append((g * delta / (1 - a)) ** 2)
            else:
                terms.append(g**2 * q / (1 - a**2))
        diff = h / (2 * K) * (terms[0] - terms[1])
        out.append(tidy(sp.factor(diff.subs(h, x / mu)).subs(x, mu * h)))
    return out[0], out[1]


# ---- one step, any agents, any doubly-stochastic A -------------------------------------------
l_, lp_, k_ = sp.symbols("l l' k", integer=True, positive=True)
A_ = sp.IndexedBase("a")  # entries of A2 (J, I or A)
GRAM = sp.IndexedBase("G")  # G_{l,l'} = d_lᵀ H̄ d_{l'}
TRACE = sp.IndexedBase("t")  # t_l = Tr(H̄ R_l)
E_ = sp.IndexedBase("e")  # e_{l,k} = ‖d_l − d̂_k‖²_H̄
F_ = sp.IndexedBase("f")  # f_k = ‖d̂_k‖²_H̄


def one_step_form() -> sp.Expr:
    """EE_1 = μ²/(2K) Σ_k [Σ_{l,l'} a_{lk} a_{l'k} G_{l,l'} + (1/B) Σ_l a_{lk}² t_l], a = A2."""
    mean = sp.Sum(A_[l_, k_] * A_[lp_, k_] * GRAM[l_, lp_], (l_, 1, K), (lp_, 1, K))
    noise = sp.Sum(A_[l_, k_] ** 2 * TRACE[l_], (l_, 1, K)) / B
    return mu**2 / (2 * K) * sp.Sum(mean + noise, (k_, 1, K))


def one_step_difference_form(pair: str) -> sp.Expr:
    """The n = 1 differences as sums of non-negative terms (e, f defined in the module doc)."""
    if pair == "consensus-diffusion":
        terms = A_[l_, k_] * E_[l_, k_] + A_[l_, k_] * (1 - A_[l_, k_]) * TRACE[l_] / B
        return mu**2 / (2 * K) * sp.Sum(terms, (l_, 1, K), (k_, 1, K))
    return (
        mu**2
        / (2 * K)
        * (
            sp.Sum(F_[k_], (k_, 1, K))
            + sp.Sum((A_[l_, k_] - 1 / K) ** 2 * TRACE[l_], (l_, 1, K), (k_, 1, K)) / B
        )
    )


def _symbolic_network(size: int = 3, dim: int = 2):
    """K = size agents, M = dim: symbolic d (summing to 0), H̄, R_l and doubly-stochastic A."""
    raw = sp.Matrix(size, size, lambda r, c: sp.Symbol(f"a_{r}{c}"))
    ds = {raw[r, size - 1]: 1 - sum(raw[r, :-1]) for r in range(size - 1)}
    ds.update({raw[size - 1, c]: 1 - sum(raw[:-1, c]) for c in range(size - 1)})
    ds[raw[-1, -1]] = sum(raw[:-1, :-1]) - (size - 2)
    d = sp.Matrix(size, dim, lambda r, c: sp.Symbol(f"d_{r}{c}"))
    d[size - 1, :] = -sum((d[r, :] for r in range(size - 1)), sp.zeros(1, dim))

    def sym(name: str) -> sp.Matrix:
        return sp.Matrix(dim, dim, lambda r, c: sp.Symbol(f"{name}_{min(r, c)}{max(r, c)}"))

    return raw, ds, d, sym("H"), [sym(f"R{agent}") for agent in range(size)]


@cache
def verify_one_step(size: int = 3, dim: int = 2) -> dict[str, bool]:
    """sympy checks on K = ``size``, M = ``dim``, every entry symbolic.

    Keys: ``<strategy>``: ``one_step_form`` with a = A2 equals the moment recursion at n = 1;
    ``<pair>``: ``one_step_difference_form`` equals the difference (A doubly stochastic).
    """
    raw, ds, d, Hbar, R = _symbolic_network(size, dim)
    eye, J = sp.eye(size), sp.ones(size, size) / size
    t = [(Hbar * Rl).trace() for Rl in R]
    G = d * Hbar * d.T
    dvec = sp.Matrix(list(d))  # row-major stacking: agent blocks
    S = sp.diag(*[Rl / B for Rl in R])
    weight = TensorProduct(sp.eye(size), Hbar)
    ee, out = {}, {}
    for s, A2 in (("centralized", J), ("consensus", eye), ("diffusion", raw)):
        Gm = TensorProduct(A2.T, sp.eye(dim))
        m1, C1 = mu * Gm * dvec, mu**2 * Gm * S * Gm.T
        exact = ((m1.T * weight * m1)[0, 0] + (weight * C1).trace()) / (2 * size)
        form = one_step_form().subs(K, size).doit()
        form = form.subs({A_[r + 1, c + 1]: A2[r, c] for r in range(size) for c in range(size)})
        form = form.subs({GRAM[r + 1, c + 1]: G[r, c] for r in range(size) for c in range(size)})
        form = form.subs({TRACE[r + 1]: t[r] for r in range(size)})
        ee[s] = exact.subs(ds)
        out[s] = sp.expand(exact - form) == 0
    dhat = raw.T * d  # row k: Σ_l a_lk d_l
    for pair in ("consensus-diffusion", "diffusion-centralized"):
        form = one_step_difference_form(pair).subs(K, size).doit()
        sub = {A_[r + 1, c + 1]: raw[r, c] for r in range(size) for c in range(size)}
        for lo in range(size):
            for k in range(size):
                diff = d[lo, :] - dhat[k, :]
                sub[E_[lo + 1, k + 1]] = (diff * Hbar * diff.T)[0, 0]
        sub.update({F_[k + 1]: (dhat[k, :] * Hbar * dhat[k, :].T)[0, 0] for k in range(size)})
        sub.update({TRACE[r + 1]: t[r] for r in range(size)})
        first, second = pair.split("-")
        out[pair] = sp.expand((ee[first] - ee[second] - form.subs(sub)).subs(ds)) == 0
    return out


# ---- derivation texts ---------------------------------------------------------------------
ONE_STEP_LEGEND = (
    "a = A2 (J centralized, I consensus, A diffusion); G[l,l'] = d_l^T H̄ d_l'; "
    "t[l] = Tr(H̄ R_l); verified symbolically against the moment recursion for K = 3, M = 2"
)


@register_derivation(
    "escaping-efficiency",
    "EE_n from w*: closed form per mode (symmetric A, common H) and the one-step EE_1 for "
    "any agents and any A",
    strategies=STRATEGIES,
)
def escaping_efficiency_text(strategy: str | None, order: int | None, latex: bool) -> str:
    """Text of ``dlcheck derive escaping-efficiency``."""
    s = check_strategy(strategy)
    ee, one = escaping_efficiency_form(), one_step_form()
    c = "% " if latex else ""
    coeffs = []
    for network, label in ((True, "i >= 2"), (False, "i = 1")):
        a, g = mode_coefficients(s, network)
        coeffs.append(f"{label}: a = {render(a, latex)}, g = {render(g, latex)}")
    lines = [
        f"{c}{s}: EE_n per mode (derived here; rsolve of the mode recursion from y_0 = 0)",
        ("\\mathrm{EE}_{n} = " if latex else "  EE_n = ") + render(ee, latex),
        f"{c}with " + "; ".join(coeffs) + "; delta[1,m] = 0 (lambda = eigenvalue of A)",
        f"{c}{s}: one step, heterogeneous H_k, R_k, d_k and any A (derived here)",
        ("\\mathrm{EE}_{1} = " if latex else "  EE_1 = ") + render(one, latex),
        f"{c}where " + ONE_STEP_LEGEND,
    ]
    return "\n".join(lines)


PAIRS = ("consensus-diffusion", "diffusion-centralized")


@register_derivation(
    "ee-difference",
    "EE(first) - EE(second) as non-negative terms: n = 1 (any A), every n per mode, steady state",
    strategies=PAIRS,
)
def difference_text(pair: str | None, order: int | None, latex: bool) -> str:
    """Text of ``dlcheck derive ee-difference --strategy consensus-diffusion|...``."""
    c = "% " if latex else ""
    ss_delta, ss_q = steady_state_difference(pair)
    vanish = {
        "consensus-diffusion": "n = 1: every term >= 0; = 0 iff d = 0 (connected graph) and "
        "a_lk in {0, 1} where t_l > 0. Every n: >= 0 iff mu h_max <= (1 - l)^2/(1 + l^2), "
        "l = max(0, -lambda_min(A)) (see ee-ordering-condition). Steady state: >= 0 whenever "
        "consensus is stable (then 1 - lambda^2 + 2 lambda mu h > 0).",
        "diffusion-centralized": "every n and the steady state: every term >= 0; = 0 iff "
        "lambda_i = 0 for all i >= 2 (A = J) or delta = q = 0 on the modes with lambda_i != 0.",
    }[pair]
    lines = [
        f"{c}{pair}, n = 1, any doubly-stochastic A (derived here; "
        "e[l,k] = ||d_l - dhat_k||^2_H̄, f[k] = ||dhat_k||^2_H̄, dhat_k = sum_l a_lk d_l):",
        ("\\Delta\\mathrm{EE}_{1} = " if latex else "  ")
        + render(one_step_difference_form(pair), latex),
        f"{c}{pair}, per network mode, every n (symmetric A, common H):",
        ("\\Delta\\mathrm{EE}_{n} = " if latex else "  ")
        + render(structured_difference(pair, C_SYM, B_SYM), latex),
        f"{c}with c = lambda - mu h (consensus a), b = lambda (1 - mu h) (diffusion a)",
        f"{c}{pair}, per network mode, steady state (heterogeneity part, noise part):",
        ("\\Delta\\mathrm{EE}_{\\infty} = " if latex else "  ") + render(ss_delta, latex),
        ("\\quad + " if latex else "  + ") + render(ss_q, latex),
        f"{c}conditions: {vanish}",
    ]
    return "\n".join(lines)
