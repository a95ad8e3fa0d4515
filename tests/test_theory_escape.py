"""Escaping efficiency, its differences, the ordering condition and the escape time; LaTeX
snapshots of every derivation.

Expected values: the moment engine, brute-force scans of the engine's EE_n, direct sums of
the scalar recursion, and limits. Snapshots pin the printed LaTeX (term order included);
regenerate them with ``DLCHECK_UPDATE_SNAPSHOTS=1 pytest tests/test_theory_escape.py`` and
review the diff by eye.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

import theory
from numerics.checks.core import ordering_step_limit as numeric_ordering_limit
from numerics.moments import escaping_efficiency, stable_step_size_limit, steady_state
from numerics.problems import QuadraticNetwork, random_quadratic_network
from theory import DerivationError
from theory import escape as esc
from theory import escape_time as et
from theory import predict as P
from theory._bernstein import bernstein_coefficients, certify_nonnegative
from theory.ordering import proof, step_condition
from theory.recursion import STRATEGIES, K, delta, h, lam, mu, n, q

SNAPSHOTS = Path(__file__).parent / "snapshots"


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_closed_form_ee_equals_dense_engine(strategy, ring):
    problem = random_quadratic_network(
        6, 3, seed=21, gradient_heterogeneity=1.0, noise_heterogeneity=0.7, batch_size=2
    )
    A, step = ring(6, 0.1), 0.45  # λ_min(A) < 0: oscillating modes; consensus is unstable here
    expected = escaping_efficiency(
        strategy, A, problem, step, 40, method="dense", allow_unstable=True
    )
    assert_allclose(P.escaping_efficiency(strategy, A, problem, step, 40), expected, rtol=1e-10)


def test_mode_ee_equals_direct_sum():
    """E y_n² from the closed form equals Σ_j of the recursion, term by term (any a, even |a|>1)."""
    fn = sp.lambdify((mu, lam, h, delta, q, K, n), esc.mode_escaping_efficiency("consensus", True))
    for a_args in ((0.3, -0.6, 1.2, 0.8, 0.5), (0.9, 0.7, 2.5, -0.4, 1.1)):
        step, lam_v, h_v, d_v, q_v = a_args
        a, g = lam_v - step * h_v, step
        m = c = 0.0
        for steps in range(1, 30):
            m, c = a * m + g * d_v, a * a * c + g * g * q_v
            assert fn(step, lam_v, h_v, d_v, q_v, 5, steps) == pytest.approx(h_v / 10 * (m * m + c))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_one_step_any_agents_nonsymmetric(strategy, network, nonsymmetric_A):
    problem = network(7, 3, seed=5, batch_size=3)
    A = nonsymmetric_A(7, seed=4)
    expected = escaping_efficiency(
        strategy, A, problem, 0.7, 1, method="dense", allow_unstable=True
    )[0]
    assert P.one_step_escaping_efficiency(strategy, A, problem, 0.7) == pytest.approx(
        expected, rel=1e-12
    )


def test_symbolic_verifications():
    assert all(esc.verify_one_step().values())
    assert esc.verify_structured_difference("consensus-diffusion")
    assert esc.verify_structured_difference("diffusion-centralized")


@pytest.mark.parametrize("pair", esc.PAIRS)
def test_one_step_difference_terms(pair, network, nonsymmetric_A):
    problem = network(6, 2, seed=8)
    A, step = nonsymmetric_A(6, seed=1), 0.3
    terms = P.one_step_difference_terms(pair, A, problem, step)
    first, second = pair.split("-")
    diff = P.one_step_escaping_efficiency(first, A, problem, step) - P.one_step_escaping_efficiency(
        second, A, problem, step
    )
    assert sum(t.sum() for t in terms.values()) == pytest.approx(diff, rel=1e-12)
    assert all((t >= 0).all() for t in terms.values()) and diff > 0


def test_one_step_differences_vanish_where_stated(network):
    problem = network(5, 2, seed=2)
    J = np.full((5, 5), 1 / 5)
    assert all(
        np.allclose(t, 0)
        for t in P.one_step_difference_terms("diffusion-centralized", J, problem, 0.2).values()
    )
    flat = problem.scaled(gradient=0.0)
    het = P.one_step_difference_terms("consensus-diffusion", J, flat, 0.2)["heterogeneity"]
    assert np.allclose(het, 0)


def test_steady_state_difference_matches_the_engine(ring):
    """Per-mode factored steady-state gap, summed over modes, equals ER_con − ER_dif."""
    problem = random_quadratic_network(5, 2, seed=6, gradient_heterogeneity=0.8, batch_size=2)
    A, step = ring(5, 0.3), 0.2
    md = P.modal_decomposition("consensus", A, problem)
    parts = [
        sp.lambdify((mu, lam, h, delta, q, K), e)
        for e in esc.steady_state_difference("consensus-diffusion")
    ]
    args = (step, md.lam[1:, None], md.h[None, :], md.delta[1:], md.q[1:], 5)
    predicted = sum(float(np.sum(f(*args))) for f in parts)
    exact = (steady_state("consensus", A, problem, step).excess_risk
             - steady_state("diffusion", A, problem, step).excess_risk)  # fmt: skip
    assert predicted == pytest.approx(exact, rel=1e-10)


def _brackets(lam_v: float, x: float, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c, b = lam_v - x, lam_v * (1 - x)
    S = lambda z, k: np.array([sum(z**j for j in range(int(m))) for m in k])  # noqa: E731
    return S(c, steps) ** 2 - lam_v**2 * S(b, steps) ** 2, S(c * c, steps) - lam_v**2 * S(
        b * b, steps
    )


@settings(max_examples=60, deadline=None)
@given(st.floats(-0.95, 0.95), st.floats(0.0, 1.0))
def test_ordering_brackets_nonnegative_below_the_condition(lam_v, t):
    x = t * float(step_condition().subs(lam, lam_v))
    mean, noise = _brackets(lam_v, x, np.arange(1, 120))
    assert mean.min() >= -1e-12 and noise.min() >= -1e-12


@settings(max_examples=40, deadline=None)
@given(st.floats(-0.95, 0.95), st.floats(0.02, 0.98))
def test_ordering_fails_at_n2_just_above_the_condition(lam_v, t):
    """Between x* and the consensus stability limit 1 + λ the n = 2 bracket is negative."""
    x_star = float(step_condition().subs(lam, lam_v))
    x = x_star + t * (1 + lam_v - x_star)
    if x <= x_star * (1 + 1e-9) or x >= 1 + lam_v:
        return
    mean, _ = _brackets(lam_v, x, np.array([2]))
    assert mean[0] < 0


def test_ordering_proof_and_numeric_limit(ring):
    assert proof().holds
    roots = proof().roots
    assert set(roots) == {sp.Integer(1), sp.cancel((lam + 1) ** 2 / (lam**2 + 1))}
    for self_weight in (0.1, 1 / 3, 0.8):
        A = ring(7, self_weight)
        problem = random_quadratic_network(7, 3, seed=2)
        assert P.ordering_step_limit(A, problem) == pytest.approx(
            numeric_ordering_limit(A, problem), rel=1e-12
        )


def test_bernstein_certificates():
    x, y = sp.symbols("x y")
    coeffs = bernstein_coefficients(3 * x**2 * y - x + 2 * y, (x, y))
    u, v = 0.3, 0.8  # evaluate the Bernstein form directly
    basis_u = [math.comb(2, i) * u**i * (1 - u) ** (2 - i) for i in range(3)]
    basis_v = [math.comb(1, j) * v**j * (1 - v) ** (1 - j) for j in range(2)]
    value = sum(float(coeffs[i, j]) * basis_u[i] * basis_v[j] for i in range(3) for j in range(2))
    assert value == pytest.approx(3 * u**2 * v - u + 2 * v)
    assert certify_nonnegative((x - sp.Rational(1, 2)) ** 2 * (1 + y), (x, y)).holds
    assert not certify_nonnegative((x - sp.Rational(1, 2)) ** 2 - sp.Rational(1, 100), (x,)).holds


def _isotropic_problem(h_value: float) -> QuadraticNetwork:
    base = random_quadratic_network(4, 2, seed=3, noise_heterogeneity=0.5)
    return QuadraticNetwork(np.repeat(h_value * np.eye(2)[None], 4, 0), base.gradients_at_optimum,
                            base.noise_covariances, 2)  # fmt: skip


def test_centralized_escape_time_closed_form_and_brute_force(ring):
    problem, step = _isotropic_problem(0.6), 0.05
    ee = escaping_efficiency("centralized", ring(4), problem, step, 400)
    level = 0.7 * ee[-1]
    brute = float(np.argmax(ee >= level) + 1)
    assert P.escape_time("centralized", ring(4), problem, step, level) == brute
    fn = sp.lambdify((mu, h, et.epsilon, K, et.B, et.tr_r), et.centralized_escape_time())
    trace_r = np.trace(problem.mean_noise_covariance)
    assert math.ceil(fn(step, 0.6, level, 4, 2, trace_r)) == brute
    steady = steady_state("centralized", ring(4), problem, step).excess_risk
    assert P.escape_time("centralized", ring(4), problem, step, 1.001 * steady) == math.inf


@pytest.mark.parametrize("strategy", ["consensus", "diffusion"])
def test_network_escape_time_brute_force_and_infinite(strategy, ring):
    problem = random_quadratic_network(6, 2, seed=13, gradient_heterogeneity=1.0)
    A, step = ring(6, 0.1), 0.15  # λ_min = −0.8: consensus modes oscillate
    ee = escaping_efficiency(strategy, A, problem, step, 300)
    for fraction in (0.3, 0.9, 0.999):
        level = fraction * ee.max()
        assert P.escape_time(strategy, A, problem, step, level) == float(np.argmax(ee >= level) + 1)
    assert P.escape_time(strategy, A, problem, step, 1.01 * ee.max()) == math.inf


def test_small_step_escape_time_is_the_limit():
    """ε = κμ² keeps n_ε fixed while μ → 0: exact/approximation → 1."""
    problem = random_quadratic_network(5, 3, seed=4, batch_size=2)
    J = np.full((5, 5), 1 / 5)
    trace_hr = np.trace(problem.aggregate_hessian @ problem.mean_noise_covariance)
    ratios = []
    for step in (1e-5, 1e-6):  # n_ε μ h_max = 0.02, then 0.002
        level = 2000 * step**2 * trace_hr / (2 * 5 * 2)  # approximation: n_ε = 2000
        approx = P.escape_time("centralized", J, problem, step, level, approximation=True)
        assert approx == pytest.approx(2000, rel=1e-12)
        ratios.append(P.escape_time("centralized", J, problem, step, level) / approx)
    assert abs(ratios[1] - 1) < abs(ratios[0] - 1) and abs(ratios[1] - 1) < 5e-3


def test_escape_time_ordering_in_the_regime(ring):
    problem = random_quadratic_network(
        8, 3, seed=17, gradient_heterogeneity=0.5, noise_heterogeneity=0.5
    )
    A = ring(8)
    step = 0.5 * min(
        P.ordering_step_limit(A, problem), stable_step_size_limit("consensus", A, problem)
    )
    level = 0.5 * P.excess_risk("centralized", A, problem, step)
    times = [
        P.escape_time(s, A, problem, step, level) for s in ("consensus", "diffusion", "centralized")
    ]
    assert times[0] <= times[1] <= times[2] < math.inf


def test_escape_errors(ring):
    problem = random_quadratic_network(4, 2, seed=1)
    with pytest.raises(DerivationError, match="level must be a positive finite number"):
        P.escape_time("consensus", ring(4), problem, 0.1, 0.0)
    with pytest.raises(DerivationError, match="derived for centralized only"):
        P.escape_time("consensus", ring(4), problem, 0.1, 1.0, approximation=True)
    with pytest.raises(DerivationError, match="--strategy centralized only"):
        theory.derive("escape-time", "consensus", 1)
    with pytest.raises(DerivationError, match="needs --strategy, one of consensus-diffusion"):
        theory.derive("ee-difference", "consensus")
    with pytest.raises(DerivationError, match="n_steps must be an integer >= 1"):
        P.escaping_efficiency("consensus", ring(4), problem, 0.1, 0)


# ---- LaTeX snapshots ------------------------------------------------------------------------
def _snapshot_cases():
    cases = [("excess-risk", s, o) for s in STRATEGIES for o in (None, 1, 2)]
    cases += [("msd", s, o) for s in STRATEGIES for o in (None, 1, 2)]
    cases += [("escaping-efficiency", s, None) for s in STRATEGIES]
    cases += [("mode-recursion", s, None) for s in STRATEGIES]
    cases += [("escape-time", s, None) for s in STRATEGIES] + [("escape-time", "centralized", 1)]
    cases += [("ee-difference", p, None) for p in esc.PAIRS]
    return [*cases, ("ee-ordering-condition", None, None)]


@pytest.mark.parametrize("name, strategy, order", _snapshot_cases())
def test_latex_snapshot(name, strategy, order):
    text = theory.derive(name, strategy, order, latex=True) + "\n"
    assert theory.derive(name, strategy, order, latex=True) + "\n" == text  # deterministic
    path = SNAPSHOTS / f"{name}-{strategy or 'none'}-{order or 'exact'}.tex"
    if os.environ.get("DLCHECK_UPDATE_SNAPSHOTS"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"missing snapshot {path.name}; run with DLCHECK_UPDATE_SNAPSHOTS=1"
    assert text == path.read_text(encoding="utf-8")
