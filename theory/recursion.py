"""Per-mode scalar recursions of centralized, consensus and ATC diffusion, derived with sympy.

Letters (flatness paper, arXiv 2406.20006; shared/research/flatness_tradeoff.md §2): K agents,
step size μ, batch B per agent, a symmetric doubly-stochastic combination matrix
A = U Λ Uᵀ (λ_1 = 1, u_1 = 1/√K), J = 11ᵀ/K, and a Hessian H = V diag(h) Vᵀ common to all
agents. Errors are w̃ = w* − w, one row per agent.

Derivation (derived here; the recursion is [R] in the note, §2.6). The unified error
recursion

    W̃_n = F W̃_{n−1} + G (d + s_n),   F = (A2ᵀ⊗I)(A1ᵀ⊗I − μ I⊗H),   G = μ A2ᵀ⊗I,

with the strategy table (A1, A2) = (I, J) centralized, (A, I) consensus, (I, A) diffusion.
I, A and J are all diagonal in the basis U (J = U e1 e1ᵀ Uᵀ) and I⊗H is diagonal in I⊗V, so
T = U⊗V diagonalises F and G: the coordinate y = (Tᵀ W̃)_{i,m} obeys the scalar recursion

    y_n = a y_{n−1} + g (δ + s),     δ_{i,m} = (Uᵀ D V)_{i,m},  Var s_{i,m} = q_{i,m},

with q_{i,m} = Σ_k U_{ki}² v_mᵀ R_k v_m / B (R_k may differ across agents; the noise of one
mode drives only that mode, so only these variances matter). Mode i = 1 (λ = 1) is the
network average: δ_{1,m} = v_mᵀ Σ_k d_k /√K = 0 because Σ_k d_k = 0.

sympy carries this out on a representative instance: K = 3 with the Helmert basis and
symbolic λ_2, λ_3, M = 2 with a rational rotation and symbolic h_1, h_2. Tᵀ F T and Tᵀ G T are
expanded, checked to be diagonal, and their diagonal entries give a and g on the average
mode (i = 1) and on a network mode (i ≥ 2, eigenvalue λ); the entries of the second network
mode and second Hessian mode are checked to be the same functions. The Kronecker argument
above is the same for every K and M.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import sympy as sp
from sympy.physics.quantum import TensorProduct

from theory import DerivationError, register_derivation

#: The strategies of the flatness paper, in the order used everywhere.
STRATEGIES = ("centralized", "consensus", "diffusion")
#: The strategy table (A1, A2), shared/DESIGN.md; "A" the combination matrix, "J" = 11ᵀ/K.
TABLE = {"centralized": ("I", "J"), "consensus": ("A", "I"), "diffusion": ("I", "A")}

# ---- symbols (the paper's letters) ------------------------------------------------------
mu = sp.Symbol("mu", positive=True)  # step size μ
lam = sp.Symbol("lambda", real=True)  # eigenvalue λ_i of A on a network mode (i ≥ 2)
h = sp.Symbol("h", positive=True)  # eigenvalue h_m of the Hessian
delta = sp.Symbol("delta", real=True)  # δ_{i,m}, heterogeneity of the gradients at w*
q = sp.Symbol("q", nonnegative=True)  # q_{i,m}, per-step noise variance of the mode (has 1/B)
K = sp.Symbol("K", positive=True, integer=True)  # number of agents
B = sp.Symbol("B", positive=True, integer=True)  # batch size per agent
n = sp.Symbol("n", positive=True, integer=True)  # iteration index


def check_strategy(strategy: str | None) -> str:
    """Return ``strategy`` if it is one of ``STRATEGIES``, else raise ``DerivationError``."""
    if strategy not in STRATEGIES:
        raise DerivationError(
            f"strategy={strategy!r} is not known; allowed: {', '.join(STRATEGIES)}"
        )
    return strategy


@dataclass(frozen=True)
class ModeRecursion:
    """y_n = a y_{n−1} + g (δ + s) on a network mode (a, g in λ, h, μ) and on the average mode
    (a_average, g_average in h, μ). ``network`` is False when the network modes are absent
    (g = 0: centralized averages them away at every step)."""

    strategy: str
    a: sp.Expr
    g: sp.Expr
    a_average: sp.Expr
    g_average: sp.Expr

    @property
    def network(self) -> bool:
        """Whether the network modes i ≥ 2 are driven at all."""
        return self.g != 0


def _instance():
    """The representative instance: (I, A, J) for K = 3, H for M = 2, T = U⊗V, symbols."""
    l2, l3 = sp.symbols("lambda_2 lambda_3", real=True)
    h1, h2 = sp.symbols("h_1 h_2", positive=True)
    s2, s3, s6 = sp.sqrt(2), sp.sqrt(3), sp.sqrt(6)
    U = sp.Matrix([[1 / s3, 1 / s2, 1 / s6], [1 / s3, -1 / s2, 1 / s6], [1 / s3, 0, -2 / s6]])
    V = sp.Matrix([[sp.Rational(3, 5), -sp.Rational(4, 5)], [sp.Rational(4, 5), sp.Rational(3, 5)]])
    ops = {"I": sp.eye(3), "A": U * sp.diag(1, l2, l3) * U.T, "J": sp.ones(3, 3) / 3}
    H = V * sp.diag(h1, h2) * V.T
    return ops, H, TensorProduct(U, V), (l2, l3), (h1, h2)


@cache
def derive_mode_recursion(strategy: str) -> ModeRecursion:
    """Diagonalise F and G of ``strategy`` with sympy and read off (a, g) per mode.

    Raises ``DerivationError`` if Tᵀ F T is not diagonal (it always is for this table).
    """
    check_strategy(strategy)
    ops, H, T, (l2, l3), (h1, h2) = _instance()
    A1, A2 = (ops[name] for name in TABLE[strategy])
    eye2 = sp.eye(2)
    F = TensorProduct(A2.T, eye2) * (TensorProduct(A1.T, eye2) - mu * TensorProduct(sp.eye(3), H))
    G = mu * TensorProduct(A2.T, eye2)
    diag = {}
    for label, M in (("F", F), ("G", G)):
        D = (T.T * M * T).applyfunc(sp.expand)
        off = [D[r, c] for r in range(6) for c in range(6) if r != c and D[r, c] != 0]
        if off:
            raise DerivationError(f"{strategy}: Tᵀ{label}T is not diagonal; first entry {off[0]}")
        diag[label] = [sp.factor(D[r, r]) for r in range(6)]  # row r = (i, m) = (r // 2, r % 2)
    generic = {l2: lam, h1: h}
    a_net, g_net = (diag[x][2].subs(generic) for x in ("F", "G"))
    for x, expected in (("F", a_net), ("G", g_net)):  # other modes: the same functions
        same = [
            (diag[x][3], expected.subs({lam: l2, h: h2})),
            (diag[x][4], expected.subs({lam: l3, h: h1})),
            (diag[x][1], diag[x][0].subs(h1, h2)),
        ]
        if any(sp.expand(u - v) != 0 for u, v in same):
            raise DerivationError(f"{strategy}: modes of {x} are not one function of (λ, h)")
    a_avg, g_avg = (diag[x][0].subs(h1, h) for x in ("F", "G"))
    nice = [sp.factor_terms(sp.expand(x)) for x in (a_net, g_net, a_avg, g_avg)]
    return ModeRecursion(strategy, *nice)


def tidy(expr: sp.Expr) -> sp.Expr:
    """Factor ``expr`` for display, writing each factor c − x (c > 0) rather than x − c.

    Only the printed form changes (the value is the same); used by the derivation texts.
    """
    sign, parts = 1, []
    for f in sp.Mul.make_args(sp.factor(expr)):
        base, exp = f.as_base_exp()
        if base.is_Add and base.as_coeff_Add()[0] < 0:
            base = -base
            if exp.is_integer and exp % 2:
                sign = -sign
        parts.append(base if exp == 1 else sp.Pow(base, exp, evaluate=False))
    return sign * sp.Mul(*parts)


def mode_coefficients(strategy: str, network: bool) -> tuple[sp.Expr, sp.Expr]:
    """(a, g) on a network mode (``network=True``, in λ, h, μ) or on the average mode."""
    r = derive_mode_recursion(strategy)
    return (r.a, r.g) if network else (r.a_average, r.g_average)


def mode_recursion_text(strategy: str | None, order: int | None, latex: bool) -> str:
    """Text of ``dlcheck derive mode-recursion``: a and g on both kinds of modes."""
    r = derive_mode_recursion(check_strategy(strategy))
    y, y1 = sp.Symbol("y_n"), sp.Symbol("y_{n-1}")
    s = sp.Symbol("s")
    lines = []
    for title, a, g in (
        ("network mode i >= 2 (eigenvalue lambda_i of A)", r.a, r.g),
        ("average mode i = 1 (lambda_1 = 1, delta = 0)", r.a_average, r.g_average),
    ):
        rhs = a * y1 + g * (delta + s)
        if latex:
            lines.append(f"% {strategy}, {title}")
            lines.append(f"y_{{n}} = {sp.latex(rhs, order='lex')}")
        else:
            lines.append(f"{strategy}, {title}:")
            lines.append(f"  {y} = {sp.sstr(rhs, order='lex')}   (a = {a}, g = {g})")
    return "\n".join(lines)


register_derivation(
    "mode-recursion",
    "per-mode scalar recursion y_n = a y_{n-1} + g (delta + s), derived by diagonalising "
    "the strategy's (A1, A2) with sympy",
    strategies=STRATEGIES,
)(mode_recursion_text)
