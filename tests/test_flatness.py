"""Flatness measures on quadratics (answers known exactly) and on a small classifier with an
explicit Hessian; reproducibility and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from numerics.errors import InvalidInputError
from numerics.flatness import (
    QuadraticLoss,
    hutchinson_trace,
    perturbation_sharpness,
    rademacher,
    sphere_directions,
    top_eigenvalue,
)
from numerics.mlp import MLP
from numerics.stats import normal_quantile

Z = normal_quantile(1e-3)  # a test's false-failure rate is at most 1e-3 (seeds fixed anyway)


def _indefinite(dim: int, seed: int = 0, low: float = -0.5, high: float = 3.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    return (q * rng.uniform(low, high, dim)) @ q.T


def test_hutchinson_on_a_quadratic_within_its_interval_and_variance_formula():
    H = _indefinite(30)
    loss = QuadraticLoss.create(H, np.ones(30))
    est = hutchinson_trace(loss, np.zeros((2, 30)), 3000, np.random.default_rng(1))
    assert est.mean.shape == (2,) and est.n_samples == 3000
    lo, hi = est.interval()
    assert np.all(lo <= np.trace(H)) and np.all(np.trace(H) <= hi)
    exact_var = 2 * (np.sum(H * H) - np.sum(np.diag(H) ** 2))  # Var vᵀHv, Rademacher v
    assert est.standard_error[0] ** 2 * 3000 == pytest.approx(exact_var, rel=0.1)


def test_hutchinson_is_exact_for_a_diagonal_hessian():
    H = np.diag([3.0, -1.0, 0.5, 2.0])
    est = hutchinson_trace(QuadraticLoss.create(H), np.zeros(4), 5, np.random.default_rng(0))
    assert est.mean == pytest.approx(4.5, abs=1e-14)
    assert est.standard_error == pytest.approx(0.0, abs=1e-14)


def test_hutchinson_uses_the_given_probes_at_every_point():
    H = _indefinite(6, seed=2)
    loss = QuadraticLoss.create(H)
    V = rademacher(np.random.default_rng(3), (7, 6))
    est = hutchinson_trace(loss, np.zeros((3, 6)), 0, np.random.default_rng(9), probes=V)
    assert_allclose(est.mean, np.mean(np.einsum("pi,ij,pj->p", V, H, V)), rtol=1e-13)
    # blocks of (point, probe) pairs do not change the numbers
    small = hutchinson_trace(
        loss, np.zeros((3, 6)), 0, np.random.default_rng(9), probes=V, pairs_per_call=2
    )
    assert_allclose(small.mean, est.mean, rtol=1e-14)


def test_top_eigenvalue_is_the_largest_algebraic_one():
    H = _indefinite(25, seed=4, low=-6.0, high=2.0)  # most negative has the largest modulus
    loss = QuadraticLoss.create(H)
    lam = np.linalg.eigvalsh(H)
    got = top_eigenvalue(loss, np.zeros((2, 25)), tol=1e-12)
    assert got.shape == (2,)
    assert_allclose(got, lam[-1], rtol=1e-9)
    assert top_eigenvalue(QuadraticLoss.create(np.diag([1.0, 4.0])), np.zeros(2)) == 4.0


def test_perturbation_sharpness_on_a_quadratic_at_a_non_stationary_point():
    d, r = 20, 0.7
    H = _indefinite(d, seed=5)
    loss = QuadraticLoss.create(H, np.arange(d) / d)
    est = perturbation_sharpness(loss, np.zeros((2, d)), r, 2000, np.random.default_rng(6))
    expected = r * r * np.trace(H) / (2 * d)
    lo, hi = est.interval()
    assert np.all(lo <= expected) and np.all(expected <= hi)


def test_perturbation_sharpness_is_exact_for_isotropic_and_one_dimensional_losses():
    # H = cI: uᵀHu = c for every unit u, so every antithetic pair gives r²c/2
    loss = QuadraticLoss.create(2.5 * np.eye(7), np.ones(7))
    est = perturbation_sharpness(loss, np.full(7, 0.3), 0.2, 5, np.random.default_rng(0))
    assert est.mean == pytest.approx(0.04 * 2.5 / 2, rel=1e-10)
    assert est.standard_error == pytest.approx(0.0, abs=1e-12)
    one = perturbation_sharpness(
        QuadraticLoss.create(np.array([[3.0]]), np.array([1.0])), np.array([2.0]), 0.5, 3,
        np.random.default_rng(0),
    )  # fmt: skip
    assert one.mean == pytest.approx(0.25 * 3.0 / 2, rel=1e-12)


def test_sphere_directions_are_unit_and_isotropic():
    U = sphere_directions(np.random.default_rng(0), 20000, 4)
    assert_allclose(np.linalg.norm(U, axis=1), 1.0, rtol=1e-12)
    assert_allclose(U.T @ U / U.shape[0], np.eye(4) / 4, atol=0.01)


def test_estimators_on_a_classifier_with_an_explicit_hessian():
    rng = np.random.default_rng(11)
    X = rng.standard_normal((50, 3))
    y = np.where(X[:, 1] > 0, 1.0, -1.0)
    mlp = MLP.create(X, y, hidden=3, regularization=0.01)
    theta = 1.5 * mlp.initial(rng) + 0.2 * rng.standard_normal(mlp.dim)
    H = mlp.hessian(theta)
    est = hutchinson_trace(mlp, theta, 2000, np.random.default_rng(12))
    lo, hi = est.interval()
    assert lo <= np.trace(H) <= hi
    assert top_eigenvalue(mlp, theta, tol=1e-12) == pytest.approx(
        np.linalg.eigvalsh(H)[-1], rel=1e-9
    )
    r = 1e-3  # the O(r⁴) remainder is far below the Monte Carlo error here
    sh = perturbation_sharpness(mlp, theta, r, 2000, np.random.default_rng(13))
    lo, hi = sh.interval()
    assert lo <= r * r * np.trace(H) / (2 * mlp.dim) <= hi


def test_same_generator_same_numbers():
    loss = QuadraticLoss.create(_indefinite(8, seed=7))
    a = hutchinson_trace(loss, np.zeros(8), 10, np.random.default_rng(3))
    b = hutchinson_trace(loss, np.zeros(8), 10, np.random.default_rng(3))
    assert a.mean == b.mean and a.standard_error == b.standard_error
    c = perturbation_sharpness(loss, np.zeros(8), 0.1, 10, np.random.default_rng(3))
    d = perturbation_sharpness(loss, np.zeros(8), 0.1, 10, np.random.default_rng(3))
    assert c.mean == d.mean


def test_bad_input_names_the_parameter():
    loss = QuadraticLoss.create(np.eye(3))
    rng = np.random.default_rng(0)
    with pytest.raises(InvalidInputError, match=r"radius must be a positive finite number; got -1"):
        perturbation_sharpness(loss, np.zeros(3), -1, 4, rng)
    with pytest.raises(InvalidInputError, match=r"n_probes must be an integer >= 1; got 0"):
        hutchinson_trace(loss, np.zeros(3), 0, rng)
    with pytest.raises(InvalidInputError, match=r"probes must have shape \(P, 3\)"):
        hutchinson_trace(loss, np.zeros(3), 4, rng, probes=np.ones((4, 2)))
    with pytest.raises(InvalidInputError, match="theta contains NaN or inf"):
        top_eigenvalue(loss, np.array([0.0, np.nan, 1.0]))
    with pytest.raises(InvalidInputError, match="hessian must be a symmetric square matrix"):
        QuadraticLoss.create(np.array([[1.0, 2.0], [0.0, 1.0]]))
    with pytest.raises(InvalidInputError, match=r"pairs_per_call must be an integer >= 1"):
        hutchinson_trace(loss, np.zeros(3), 4, rng, pairs_per_call=0)
