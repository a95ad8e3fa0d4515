"""The per-mode recursion derived by sympy, against an independent numpy diagonalisation."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

import theory
from theory import DerivationError
from theory.recursion import (
    STRATEGIES,
    TABLE,
    check_strategy,
    derive_mode_recursion,
    h,
    lam,
    mode_coefficients,
    mu,
    tidy,
)


def _random_symmetric_doubly_stochastic(K: int, rng: np.random.Generator) -> np.ndarray:
    """Symmetric, doubly stochastic: a mixture of I and symmetrised permutation matrices."""
    mats = [np.eye(K)]
    for _ in range(3):
        P = np.eye(K)[rng.permutation(K)]
        mats.append(0.5 * (P + P.T))
    return sum(w * M for w, M in zip(rng.dirichlet(np.ones(len(mats))), mats, strict=True))


def _transition_in_modes(strategy: str, A: np.ndarray, H: np.ndarray, step: float):
    """Tᵀ F T and Tᵀ G T with T = U⊗V, computed densely with numpy (independent of sympy)."""
    K, M = A.shape[0], H.shape[0]
    ones = np.full(K, 1 / np.sqrt(K))
    basis = np.linalg.qr(np.column_stack([ones, np.eye(K)[:, : K - 1]]))[0][:, 1:]
    lam_perp, W = np.linalg.eigh(basis.T @ A @ basis)
    U = np.column_stack([ones, basis @ W])
    hs, V = np.linalg.eigh(H)
    ops = {"I": np.eye(K), "A": A, "J": np.full((K, K), 1 / K)}
    A1, A2 = (ops[x] for x in TABLE[strategy])
    F = np.kron(A2.T, np.eye(M)) @ (np.kron(A1.T, np.eye(M)) - step * np.kron(np.eye(K), H))
    G = step * np.kron(A2.T, np.eye(M))
    T = np.kron(U, V)
    return T.T @ F @ T, T.T @ G @ T, np.concatenate([[1.0], lam_perp]), hs


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_derived_coefficients_match_numpy_diagonalisation(strategy):
    rng = np.random.default_rng(7)
    K, M, step = 5, 3, 0.37
    A = _random_symmetric_doubly_stochastic(K, rng)
    q, _ = np.linalg.qr(rng.standard_normal((M, M)))
    H = (q * rng.uniform(0.2, 2.0, M)) @ q.T
    Fm, Gm, lams, hs = _transition_in_modes(strategy, A, H, step)
    assert_allclose(Fm - np.diag(np.diag(Fm)), 0, atol=1e-12)  # T diagonalises F and G
    assert_allclose(Gm - np.diag(np.diag(Gm)), 0, atol=1e-12)
    a_net, g_net = (sp.lambdify((mu, lam, h), e) for e in mode_coefficients(strategy, True))
    a_avg, g_avg = (sp.lambdify((mu, h), e) for e in mode_coefficients(strategy, False))
    a_pred = np.array([[a_avg(step, hm) if i == 0 else a_net(step, li, hm) for hm in hs]
                       for i, li in enumerate(lams)])  # fmt: skip
    g_pred = np.array([[g_avg(step, hm) if i == 0 else g_net(step, li, hm) for hm in hs]
                       for i, li in enumerate(lams)])  # fmt: skip
    assert_allclose(np.diag(Fm).reshape(K, M), a_pred, atol=1e-12)
    assert_allclose(np.diag(Gm).reshape(K, M), g_pred, atol=1e-12)


def test_network_modes_absent_only_for_centralized():
    assert not derive_mode_recursion("centralized").network
    assert derive_mode_recursion("consensus").network
    assert derive_mode_recursion("diffusion").network


def test_average_mode_is_shared_by_all_strategies():
    """λ_1 = 1: every strategy runs plain SGD on the network average."""
    a0, g0 = mode_coefficients("centralized", False)
    for s in STRATEGIES:
        a, g = mode_coefficients(s, False)
        assert sp.simplify(a - a0) == 0 and sp.simplify(g - g0) == 0
    assert sp.simplify(a0 - (1 - mu * h)) == 0 and g0 == mu


def test_limits_full_averaging_and_no_combination():
    """A = J (λ_i = 0): diffusion's network modes vanish, as for centralized; A = I (λ_i = 1):
    consensus and diffusion network modes are independent SGD, like the average mode."""
    a_dif, g_dif = mode_coefficients("diffusion", True)
    assert a_dif.subs(lam, 0) == 0 and g_dif.subs(lam, 0) == 0
    a_con = mode_coefficients("consensus", True)[0]
    assert a_con.subs(lam, 0) != 0  # consensus keeps them: −μh
    a_avg = mode_coefficients("consensus", False)[0]
    for a in (a_con, a_dif):
        assert sp.simplify(a.subs(lam, 1) - a_avg) == 0


def test_check_strategy_message():
    with pytest.raises(DerivationError, match=r"strategy='local_sgd' is not known; allowed: "):
        check_strategy("local_sgd")
    assert check_strategy("consensus") == "consensus"


@settings(max_examples=30, deadline=None)
@given(st.floats(-0.99, 0.99), st.floats(0.01, 3.0), st.floats(0.001, 0.5))
def test_tidy_keeps_the_value(lam_value, h_value, mu_value):
    expr = sp.factor(-lam * (h * mu - 1) / ((mu * h - 2) * (lam - 1) ** 2))
    sub = {lam: lam_value, h: h_value, mu: mu_value}
    assert float(tidy(expr).subs(sub)) == pytest.approx(float(expr.subs(sub)), rel=1e-12)


def test_derive_mode_recursion_text_and_errors():
    text = theory.derive("mode-recursion", "diffusion")
    assert "a = lambda*(-h*mu + 1), g = lambda*mu" in text
    assert "y_{n} =" in theory.derive("mode-recursion", "consensus", latex=True)
    with pytest.raises(DerivationError, match="needs --strategy"):
        theory.derive("mode-recursion", None)
