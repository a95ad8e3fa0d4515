"""Steady-state excess risk and MSD: exact per mode, first and second order in μ.

Expected values come from the moment engine, from matrix formulas evaluated with numpy
pseudo-inverses (independent of the mode sums), from iterating the recursion, and from limits.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

import theory
from numerics.moments import steady_state
from numerics.problems import QuadraticNetwork, random_quadratic_network
from numerics.strategies import make_schedule
from theory import DerivationError
from theory import excess_risk as er
from theory import predict as P
from theory.recursion import STRATEGIES, K, delta, h, lam, mode_coefficients, mu, q


@pytest.fixture(scope="module")
def homogeneous_instance(ring):
    """Ring of 7 (self weight 0.2: negative eigenvalues), common H and R, heterogeneous d."""
    problem = random_quadratic_network(7, 3, seed=11, gradient_heterogeneity=1.3, batch_size=3)
    return ring(7, 0.2), problem


def test_stationary_moments_equal_the_iterated_recursion():
    vals = {lam: 0.4, h: 0.8, mu: 0.3, delta: 0.7, q: 1.9, K: 5}
    for s in STRATEGIES:
        a, g = (float(e.subs(vals)) for e in mode_coefficients(s, True))
        m = c = 0.0
        for _ in range(2000):
            m, c = a * m + g * vals[delta], a * a * c + g * g * vals[q]
        mean, var = (
            float(e.subs(vals)) for e in er.stationary_moments(*mode_coefficients(s, True))
        )
        assert mean == pytest.approx(m, rel=1e-12, abs=1e-15)
        assert var == pytest.approx(c, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_exact_equals_dense_engine(strategy, ring, network):
    problem = network(6, 3, seed=4, equal_hessians=True, batch_size=2)  # R_k heterogeneous
    A, step = ring(6, 0.5), 0.4
    ss = steady_state(strategy, A, problem, step, method="dense")
    assert P.excess_risk(strategy, A, problem, step) == pytest.approx(ss.excess_risk, rel=1e-10)
    assert P.msd(strategy, A, problem, step) == pytest.approx(ss.msd, rel=1e-10)


def _matrix_second_order(strategy, A, problem, step):
    """Note §4.4 second-order ER and MSD in matrix form (pseudo-inverses on 1^⊥), numpy."""
    Kn, B = problem.n_agents, problem.batch_size
    H, R, D = problem.hessians[0], problem.noise_covariances[0], problem.gradients_at_optimum
    eye = np.eye(Kn)
    pinv = np.linalg.pinv(eye - A, hermitian=True)
    pinv2 = np.linalg.pinv(eye - A @ A, hermitian=True)
    er_ = step * np.trace(R) / (4 * Kn * B) + step**2 * np.trace(H @ R) / (8 * Kn * B)
    msd_ = step * np.trace(np.linalg.solve(H, R)) / (2 * Kn * B) + step**2 * np.trace(R) / (
        4 * Kn * B
    )
    if strategy == "centralized":
        return er_, msd_
    M = A @ pinv @ pinv @ A if strategy == "diffusion" else pinv @ pinv
    S = np.trace(A @ A @ pinv2) if strategy == "diffusion" else np.trace(pinv2)
    er_ += step**2 / (2 * Kn) * (np.trace(H @ D.T @ M @ D) + np.trace(H @ R) / B * S)
    msd_ += step**2 / Kn * (np.trace(D.T @ M @ D) + np.trace(R) / B * S)
    return er_, msd_


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_second_order_equals_the_matrix_formula(strategy, homogeneous_instance):
    A, problem = homogeneous_instance
    for step in (1e-3, 0.05):
        er2, msd2 = _matrix_second_order(strategy, A, problem, step)
        assert P.excess_risk(strategy, A, problem, step, order=2) == pytest.approx(er2, rel=1e-12)
        assert P.msd(strategy, A, problem, step, order=2) == pytest.approx(msd2, rel=1e-12)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_first_order_heterogeneous_equals_traces(strategy, network, nonsymmetric_A):
    problem = network(5, 3, seed=9, batch_size=4)  # H_k, R_k, d_k all heterogeneous
    A, step = nonsymmetric_A(5, seed=2), 0.01
    Kn, B = 5, 4
    Hbar, Rbar = problem.aggregate_hessian, problem.mean_noise_covariance
    expected_er = step * np.trace(Rbar) / (4 * Kn * B)
    expected_msd = step * np.trace(np.linalg.solve(Hbar, Rbar)) / (2 * Kn * B)
    assert P.excess_risk(strategy, A, problem, step, order=1) == pytest.approx(
        expected_er, rel=1e-12
    )
    assert P.msd(strategy, A, problem, step, order=1) == pytest.approx(expected_msd, rel=1e-12)
    # and it is the μ → 0 limit of the exact (dense) steady state
    ratios = [
        P.excess_risk(strategy, A, problem, m, order=1)
        / steady_state(strategy, A, problem, m, method="dense").excess_risk
        for m in (1e-2, 1e-3)
    ]
    assert abs(ratios[1] - 1) < abs(ratios[0] - 1) / 5


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(["consensus", "diffusion"]),
    st.floats(-0.9, 0.9),
    st.floats(0.2, 2.0),
    st.floats(-2.0, 2.0),
    st.floats(0.1, 2.0),
)
def test_network_mode_series_error_is_cubic(strategy, lam_v, h_v, d_v, q_v):
    """exact − (second-order series) = c3 μ³ + c4 μ⁴ + O(μ⁵): the error is O(μ³) with the
    μ³ and μ⁴ coefficients of a separate fourth-order sympy series."""
    exact, series, third, fourth = _mode_functions(strategy)
    args = (lam_v, h_v, d_v, q_v, 4)
    step = 1e-2 * (1 - abs(lam_v)) / h_v
    err = exact(step, *args) - series(step, *args)
    c3, c4 = third(step, *args), fourth(step, *args)
    assert abs(err - c3 - c4) <= 0.05 * (abs(c3) + abs(c4)) + 1e-12 * abs(exact(step, *args))


_CACHE: dict = {}


def _mode_functions(strategy):
    """Lambdified exact mode ER, its second-order series, and its μ³ and μ⁴ terms (cached)."""
    if strategy not in _CACHE:
        args = (mu, lam, h, delta, q, K)
        expr = er.mode_steady_state("excess-risk", strategy, True)
        full = sp.expand(sp.series(expr, mu, 0, 5).removeO())
        terms = [full.coeff(mu, k) * mu**k for k in (3, 4)]
        second = er.mode_series("excess-risk", strategy, True, 2)
        _CACHE[strategy] = tuple(sp.lambdify(args, e) for e in (expr, second, *terms))
    return _CACHE[strategy]


def test_limits_K1_full_averaging_no_combination(ring):
    one = random_quadratic_network(1, 2, seed=3, batch_size=2)
    values = [P.excess_risk(s, np.ones((1, 1)), one, 0.2) for s in STRATEGIES]
    assert_allclose(values, values[0], rtol=1e-14)
    problem = random_quadratic_network(6, 2, seed=5, gradient_heterogeneity=1.0)
    J = np.full((6, 6), 1 / 6)
    cen, con, dif = (P.excess_risk(s, J, problem, 0.2) for s in STRATEGIES)
    assert dif == pytest.approx(cen, rel=1e-13) and con > dif * (1 + 1e-3)
    eye = np.eye(6)  # A = I: K independent SGD runs, exact value from the engine's schedule
    independent = steady_state(make_schedule("consensus", eye, validate=False), None, problem, 0.2)
    for s in ("consensus", "diffusion"):
        assert P.excess_risk(s, eye, problem, 0.2) == pytest.approx(
            independent.excess_risk, rel=1e-10
        )


def test_large_batch_limit(homogeneous_instance):
    """B → ∞: the centralized ER vanishes like 1/B; the network ones keep the δ terms."""
    A, problem = homogeneous_instance
    big = problem.with_batch_size(10**9)
    assert P.excess_risk("centralized", A, big, 0.1) == pytest.approx(
        P.excess_risk("centralized", A, problem, 0.1) * problem.batch_size / 1e9, rel=1e-12
    )
    zero_noise = problem.scaled(noise=0.0)
    for s in ("consensus", "diffusion"):
        assert P.excess_risk(s, A, big, 0.1) == pytest.approx(
            P.excess_risk(s, A, zero_noise, 0.1), rel=1e-6
        )


def test_bad_input_messages(ring, network):
    A = ring(4)
    problem = random_quadratic_network(4, 2, seed=1)
    with pytest.raises(DerivationError, match="step_size=9 is outside the stable range"):
        P.excess_risk("consensus", A, problem, 9)
    with pytest.raises(DerivationError, match="step_size must be a positive finite number"):
        P.excess_risk("consensus", A, problem, -1)
    with pytest.raises(DerivationError, match="equal Hessians"):
        P.excess_risk("consensus", A, network(4, 2, seed=1), 0.1)
    nonsym = 0.5 * np.eye(4) + 0.5 * np.roll(np.eye(4), 1, axis=0)
    with pytest.raises(DerivationError, match="must be symmetric"):
        P.excess_risk("diffusion", nonsym, problem, 0.1)
    with pytest.raises(DerivationError, match="doubly stochastic"):
        P.excess_risk("diffusion", 2 * A, problem, 0.1)
    with pytest.raises(DerivationError, match=r"A must be 4×4"):
        P.excess_risk("diffusion", np.eye(3), problem, 0.1)
    with pytest.raises(DerivationError, match="spectral gap"):
        P.excess_risk("diffusion", np.eye(4), problem, 0.1, order=2)
    with pytest.raises(DerivationError, match="order=3 is not supported"):
        P.excess_risk("diffusion", A, problem, 0.1, order=3)
    with pytest.raises(DerivationError, match="must have hessians"):
        P.excess_risk("diffusion", A, object(), 0.1)
    with pytest.raises(DerivationError, match="quantity='risk' is not known"):
        P.predict("diffusion", A, problem, 0.1, quantity="risk")
    assert P.predict("diffusion", A, problem, 0.1, order=1) == P.excess_risk(
        "diffusion", A, problem, 0.1, order=1
    )


def test_derive_texts_and_cli(capsys):
    from numerics.cli import main

    text = theory.derive("excess-risk", "consensus", 2)
    assert "Tr(H̄R̄)*mu**2/(8*B*K)" in text and "Tr(R̄)*mu/(4*B*K)" in text
    assert "Sum(1/((-lambda[i] + 1)*(lambda[i] + 1)), (i, 2, K))" in text
    assert "Sum(lambda[i]**2/" in theory.derive("excess-risk", "diffusion", 2)
    assert "Tr(H̄⁻¹R̄)*mu/(2*B*K)" in theory.derive("msd", "centralized", 1)
    with pytest.raises(DerivationError, match="supports --order 1, 2; got 3"):
        theory.derive("msd", "consensus", 3)
    code = main(["derive", "excess-risk", "--strategy", "diffusion", "--order", "1", "--latex"])
    out = capsys.readouterr().out
    assert code == 0 and r"\operatorname{Tr}(\bar R)" in out


def test_two_step_zero_noise_problem_is_valid():
    """A network with R = 0 and d = 0 has zero steady state for every strategy."""
    problem = QuadraticNetwork(
        np.repeat(np.eye(2)[None], 3, 0), np.zeros((3, 2)), np.zeros((3, 2, 2))
    )
    A = np.full((3, 3), 1 / 3)
    assert all(P.excess_risk(s, A, problem, 0.5) == 0 for s in STRATEGIES)
