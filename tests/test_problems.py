"""Tests for numerics.problems: QuadraticNetwork validation and the random instances."""

from __future__ import annotations

import numpy as np
import pytest

from numerics.errors import DlcheckError, InvalidInputError
from numerics.problems import (
    QuadraticNetwork,
    homogeneous_quadratic_network,
    random_quadratic_network,
)

K, D = 3, 2


def _valid():
    """A valid (H, d, R) triple for K = 3 agents in dimension 2."""
    H = np.array([[[2.0, 0.5], [0.5, 1.0]], [[1.0, 0.0], [0.0, 3.0]], [[1.5, -0.2], [-0.2, 0.7]]])
    g = np.array([[1.0, -2.0], [0.5, 1.5], [-1.5, 0.5]])
    R = np.array([np.eye(2), [[2.0, 0.3], [0.3, 1.0]], 0.5 * np.eye(2)])
    return H, g, R


def test_valid_network_properties():
    H, g, R = _valid()
    net = QuadraticNetwork(H, g, R, batch_size=4)
    assert (net.n_agents, net.dim, net.batch_size) == (K, D, 4)
    np.testing.assert_allclose(net.aggregate_hessian, H.mean(axis=0), rtol=1e-15)
    np.testing.assert_allclose(net.mean_noise_covariance, R.mean(axis=0), rtol=1e-15)
    assert not net.hessians_equal
    # arrays are frozen
    with pytest.raises(ValueError):
        net.hessians[0, 0, 0] = 5.0
    # risk_excess is ½ w̃ᵀ H̄ w̃
    w = np.array([[0.3, -1.2], [1.0, 2.0]])
    expected = [0.5 * wi @ H.mean(axis=0) @ wi for wi in w]
    np.testing.assert_allclose(net.risk_excess(w), expected, rtol=1e-14)


def test_step_noise_factors_square_root_including_singular():
    H, g, R = _valid()
    R[2] = np.outer([1.0, 2.0], [1.0, 2.0])  # rank one
    net = QuadraticNetwork(H, g, R, batch_size=3)
    L = net.step_noise_factors
    np.testing.assert_allclose(L @ np.swapaxes(L, 1, 2), R / 3, atol=1e-14)
    np.testing.assert_allclose(L, np.swapaxes(L, 1, 2), atol=1e-15)  # symmetric square root


def test_symmetrised_and_with_batch_and_scaled():
    H, g, R = _valid()
    net = QuadraticNetwork(H, g, R)
    other = net.with_batch_size(7)
    assert other.batch_size == 7
    np.testing.assert_array_equal(other.hessians, net.hessians)
    sc = net.scaled(gradient=2.0, noise=0.5)
    np.testing.assert_allclose(sc.gradients_at_optimum, 2.0 * g)
    np.testing.assert_allclose(sc.noise_covariances, 0.5 * R)
    # tiny round-off asymmetry is accepted and removed
    H2 = H.copy()
    H2[0, 0, 1] += 1e-14
    net2 = QuadraticNetwork(H2, g, R)
    np.testing.assert_array_equal(net2.hessians, np.swapaxes(net2.hessians, 1, 2))


def test_gradients_summing_to_zero_up_to_round_off_accepted():
    rng = np.random.default_rng(0)
    g = rng.standard_normal((5, 2)) * 1e3
    g -= g.mean(axis=0)
    H = np.repeat(np.eye(2)[None], 5, axis=0)
    QuadraticNetwork(H, g, H)


def test_hessians_equal_flag():
    H, g, R = _valid()
    H_eq = np.repeat(H[:1], K, axis=0)
    assert QuadraticNetwork(H_eq, g, R).hessians_equal


# ---------------------------------------------------------------- validation errors
def _replace(which: str, value):
    H, g, R = _valid()
    args = {"hessians": H, "gradients_at_optimum": g, "noise_covariances": R}
    args[which] = value
    return args


def _bad_cases():
    H, g, R = _valid()
    asym = H.copy()
    asym[2, 0, 1] += 0.3
    indef = H.copy()
    indef[1] = np.diag([1.0, -0.5])
    singular = H.copy()
    singular[:] = np.diag([1.0, 0.0])  # every H_k flat along e_2
    rasym = R.copy()
    rasym[1, 1, 0] += 0.5
    rindef = R.copy()
    rindef[2] = [[1.0, 2.0], [2.0, 1.0]]
    g_bad = g.copy()
    g_bad[0] += 0.1
    nan_h = H.copy()
    nan_h[0, 0, 0] = np.nan
    inf_r = R.copy()
    inf_r[1, 1, 1] = np.inf
    nan_g = g.copy()
    nan_g[2, 1] = np.nan
    return [
        ("hessians", H[0], r"hessians must have 3 dimensions"),
        ("hessians", H[..., None], r"hessians must have 3 dimensions"),
        ("hessians", H[:, :, :1], r"hessians must have shape \(n_agents, dim, dim\)"),
        ("gradients_at_optimum", g[0], r"gradients_at_optimum must have 2 dimensions"),
        ("gradients_at_optimum", g[:2], r"gradients_at_optimum must have shape \(3, 2\)"),
        ("gradients_at_optimum", np.zeros((3, 3)), r"gradients_at_optimum must have shape"),
        ("noise_covariances", R[0], r"noise_covariances must have 3 dimensions"),
        ("noise_covariances", R[:2], r"noise_covariances must have shape \(3, 2, 2\)"),
        ("noise_covariances", np.zeros((3, 3, 3)), r"noise_covariances must have shape"),
        ("hessians", asym, r"hessians\[2\] is not symmetric"),
        ("hessians", indef, r"hessians\[1\] is indefinite"),
        ("hessians", singular, r"aggregate Hessian mean\(hessians\) must be positive definite"),
        ("gradients_at_optimum", g_bad, r"gradients_at_optimum must sum to zero"),
        ("noise_covariances", rasym, r"noise_covariances\[1\] is not symmetric"),
        ("noise_covariances", rindef, r"noise_covariances\[2\] is indefinite"),
        ("hessians", nan_h, r"hessians contains NaN or inf"),
        ("noise_covariances", inf_r, r"noise_covariances contains NaN or inf"),
        ("gradients_at_optimum", nan_g, r"gradients_at_optimum contains NaN or inf"),
        ("hessians", "not a matrix", r"hessians must be a numeric array"),
    ]


@pytest.mark.parametrize(("which", "value", "match"), _bad_cases())
def test_quadratic_network_rejects(which, value, match):
    with pytest.raises(InvalidInputError, match=match):
        QuadraticNetwork(**_replace(which, value))


def test_singular_aggregate_even_if_individual_nonsingular_is_fine():
    # H_1 flat along e_2, H_2 flat along e_1: each singular, aggregate positive definite
    H = np.array([np.diag([1.0, 0.0]), np.diag([0.0, 1.0])])
    net = QuadraticNetwork(H, np.zeros((2, 2)), H)
    np.testing.assert_allclose(net.aggregate_hessian, 0.5 * np.eye(2))


@pytest.mark.parametrize("batch", [0, -3, 2.0, 1.5, True, False, "2", None])
def test_batch_size_rejected(batch):
    H, g, R = _valid()
    with pytest.raises(InvalidInputError, match=r"batch_size must be an integer >= 1"):
        QuadraticNetwork(H, g, R, batch_size=batch)


def test_batch_size_numpy_integer_accepted():
    H, g, R = _valid()
    assert QuadraticNetwork(H, g, R, batch_size=np.int64(3)).batch_size == 3


def test_errors_are_value_errors():
    assert issubclass(InvalidInputError, ValueError)
    assert issubclass(InvalidInputError, DlcheckError)


# ---------------------------------------------------------------- random instances
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hessian_heterogeneity": -0.1}, r"hessian_heterogeneity must lie in \[0, 1\]"),
        ({"hessian_heterogeneity": 1.5}, r"hessian_heterogeneity must lie in \[0, 1\]"),
        ({"hessian_heterogeneity": float("nan")}, r"hessian_heterogeneity"),
        ({"noise_heterogeneity": -1e-9}, r"noise_heterogeneity must lie in \[0, 1\]"),
        ({"noise_heterogeneity": 2.0}, r"noise_heterogeneity must lie in \[0, 1\]"),
        ({"noise_heterogeneity": float("nan")}, r"noise_heterogeneity"),
        ({"gradient_heterogeneity": -0.5}, r"gradient_heterogeneity must be >= 0"),
        ({"curvature": (0.0, 1.0)}, r"curvature"),
        ({"curvature": (2.0, 1.0)}, r"curvature"),
        ({"curvature": (1.0,)}, r"curvature must be a pair"),
        ({"noise_level": -1.0}, r"noise_level"),
        ({"batch_size": 0}, r"batch_size"),
    ],
)
def test_random_network_rejects(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        random_quadratic_network(4, 3, **kwargs)


@pytest.mark.parametrize(
    ("n_agents", "dim", "match"), [(0, 2, "n_agents"), (3, 0, "dim"), (2.0, 2, "n_agents")]
)
def test_random_network_rejects_sizes(n_agents, dim, match):
    with pytest.raises(InvalidInputError, match=match):
        random_quadratic_network(n_agents, dim)


def test_random_network_documented_properties():
    K, d = 6, 4
    zeta, sigma2, lo, hi = 1.7, 0.8, 0.3, 2.0
    net = random_quadratic_network(
        K,
        d,
        seed=5,
        hessian_heterogeneity=0.6,
        gradient_heterogeneity=zeta,
        noise_heterogeneity=0.4,
        curvature=(lo, hi),
        noise_level=sigma2,
        batch_size=3,
    )
    assert (net.n_agents, net.dim, net.batch_size) == (K, d, 3)
    np.testing.assert_allclose(net.gradients_at_optimum.sum(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(
        (net.gradients_at_optimum**2).sum(axis=1).mean(), zeta**2, rtol=1e-12
    )
    np.testing.assert_allclose(
        np.trace(net.noise_covariances, axis1=1, axis2=2), d * sigma2, rtol=1e-12
    )
    eig = np.linalg.eigvalsh(net.hessians)
    assert eig.min() >= lo * (1 - 1e-12) and eig.max() <= hi * (1 + 1e-12)
    assert not net.hessians_equal
    # same seed, same instance
    again = random_quadratic_network(
        K,
        d,
        seed=5,
        hessian_heterogeneity=0.6,
        gradient_heterogeneity=zeta,
        noise_heterogeneity=0.4,
        curvature=(lo, hi),
        noise_level=sigma2,
        batch_size=3,
    )
    np.testing.assert_array_equal(again.hessians, net.hessians)


def test_zero_heterogeneity_gives_identical_agents():
    net = homogeneous_quadratic_network(5, 3, seed=2, curvature=(0.1, 1.0))
    assert net.hessians_equal
    np.testing.assert_array_equal(net.noise_covariances, net.noise_covariances[:1].repeat(5, 0))
    np.testing.assert_array_equal(net.gradients_at_optimum, 0.0)
    np.testing.assert_allclose(
        np.linalg.eigvalsh(net.hessians[0]), np.geomspace(0.1, 1.0, 3), rtol=1e-12
    )


def test_zero_noise_level_allowed():
    net = random_quadratic_network(3, 2, noise_level=0.0, gradient_heterogeneity=1.0)
    np.testing.assert_array_equal(net.noise_covariances, 0.0)
