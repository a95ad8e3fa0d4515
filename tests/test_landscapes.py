"""Tests for the two-well landscapes: derivatives, critical points, the quadratic export, errors."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from numerics.errors import InvalidInputError
from numerics.landscapes import LandscapeNetwork, TwoWellLandscape, two_well_network
from numerics.moments import escaping_efficiency
from numerics.problems import QuadraticNetwork
from theory import predict as theory


@pytest.fixture(scope="module", params=[1, 2])
def land(request) -> TwoWellLandscape:
    return TwoWellLandscape(dim=request.param, sharp_width=0.2, flat_width=0.9, separation=2.0)


def _fd_gradient(f, w: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    out = np.empty_like(w)
    for i in range(w.size):
        e = np.zeros_like(w)
        e[i] = eps
        out[i] = (f(w + e) - f(w - e)) / (2 * eps)
    return out


def test_gradient_and_hessian_match_finite_differences(land):
    rng = np.random.default_rng(0)
    for w in rng.uniform(-0.5, 2.5, (6, land.dim)):
        assert_allclose(land.gradient(w), _fd_gradient(land.loss, w), rtol=1e-6, atol=1e-7)
        fd_hess = np.array([_fd_gradient(lambda v, i=i: land.gradient(v)[i], w)
                            for i in range(land.dim)])  # fmt: skip
        assert_allclose(land.hessian(w), fd_hess, rtol=1e-5, atol=1e-6)


def test_vectorized_shapes(land):
    pts = np.zeros((3, 4, land.dim))
    value, grad = land.value_and_gradient(pts)
    assert value.shape == (3, 4) and grad.shape == (3, 4, land.dim)
    assert land.hessian(pts).shape == (3, 4, land.dim, land.dim)


def test_critical_points(land):
    crit = land.critical_points
    for name in ("sharp", "saddle", "flat"):
        assert_allclose(land.gradient(crit[name].point), 0.0, atol=1e-9)
    eig_s = np.linalg.eigvalsh(crit["sharp"].hessian)
    eig_b = np.linalg.eigvalsh(crit["saddle"].hessian)
    eig_f = np.linalg.eigvalsh(crit["flat"].hessian)
    assert eig_s.min() > 0 and eig_f.min() > 0 and eig_b[0] < 0
    assert eig_s.max() > eig_f.max()  # the sharp minimum is sharper
    if land.dim > 1:
        assert eig_b[1:].min() > 0  # a saddle: one descending direction
    # the Hessian at the minimum is the Gaussian curvature D/s² up to the overlap terms
    assert eig_s.max() == pytest.approx(land.sharp_depth / land.sharp_width**2, rel=0.05)
    assert land.barrier_height == pytest.approx(crit["saddle"].value - crit["sharp"].value)
    assert 0 < land.barrier_distance < land.separation
    # the basin test: exactly the side of the saddle along the axis
    x_b = crit["saddle"].point
    assert not land.outside_sharp_basin(x_b - 1e-9)[()] and land.outside_sharp_basin(x_b + 1e-9)


def test_local_minimum_is_the_lowest_point_nearby(land):
    w_s, h = land.minimum("sharp").point, land.minimum("sharp").value
    rng = np.random.default_rng(1)
    assert np.all(land.loss(w_s + 0.01 * rng.standard_normal((50, land.dim))) > h)


def test_quadratic_export_and_theory():
    net = two_well_network(6, dim=2, shift=0.03, noise_level=2.0, noise_heterogeneity=0.5, seed=3)
    q = net.local_network()
    assert isinstance(q, QuadraticNetwork) and q.n_agents == 6 and q.dim == 2
    H = net.landscape.minimum("sharp").hessian
    assert_allclose(q.hessians, np.repeat(H[None], 6, axis=0))
    assert_allclose(q.gradients_at_optimum.sum(axis=0), 0.0, atol=1e-12)
    # d_k = ∇J_k(w_s) = b_k, and agent k's quadratic model has its minimum at w_s + δ_k
    assert_allclose(net.agent_gradients(np.broadcast_to(net.start, (6, 2))), net.tilts)
    assert_allclose(-np.linalg.solve(H, q.gradients_at_optimum.T).T, net.shifts, atol=1e-12)
    assert_allclose(q.noise_covariances[:, 0, 0], net.noise_levels**2)
    # the aggregate loss is the landscape (tilts cancel)
    pts = np.random.default_rng(0).normal(size=(5, 2))
    stacked = np.repeat(pts[:, None, :], 6, axis=1)
    assert_allclose(net.agent_losses(stacked).mean(axis=1), net.landscape.loss(pts))
    # theory and the moment engine apply unchanged
    A = np.full((6, 6), 1 / 6) * 0.5 + 0.5 * np.eye(6)
    ee_theory = theory.escaping_efficiency("diffusion", A, q, 0.002, 10)
    ee_exact = escaping_efficiency("diffusion", A, q, 0.002, 10)
    assert_allclose(ee_theory, ee_exact, rtol=1e-10)
    flat = net.local_network("flat")
    assert_allclose(flat.hessians[0], net.landscape.minimum("flat").hessian)


def test_network_builder_statistics():
    net = two_well_network(10, shift=0.04, noise_level=3.0, noise_heterogeneity=0.5, seed=1)
    rms = np.sqrt((net.shifts**2).sum(axis=1).mean())
    assert rms == pytest.approx(0.04) and np.mean(net.noise_levels**2) == pytest.approx(9.0)
    same = two_well_network(10, shift=0.04, noise_level=3.0, noise_heterogeneity=0.5, seed=1)
    assert np.array_equal(net.shifts, same.shifts)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sharp_width": -1.0}, "sharp_width must be a positive finite number; got -1.0"),
        ({"dim": 0}, "dim must be an integer >= 1; got 0"),
        ({"confinement": -0.1}, "confinement must be a finite number >= 0; got -0.1"),
        ({"sharp_width": 1.0}, "the sharp well must be sharper"),
        ({"separation": 0.3}, "no barrier between the wells: separation=0.3"),
    ],
)
def test_landscape_errors(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        TwoWellLandscape(**kwargs)


def test_network_errors():
    land = TwoWellLandscape()
    with pytest.raises(InvalidInputError, match="shifts must average to zero"):
        LandscapeNetwork(land, np.array([[0.1], [0.0]]), np.ones(2))
    with pytest.raises(InvalidInputError, match="shorter than the barrier distance"):
        LandscapeNetwork(land, np.array([[0.6], [-0.6]]), np.ones(2))
    with pytest.raises(InvalidInputError, match=r"noise_levels must be 2 numbers >= 0"):
        LandscapeNetwork(land, np.zeros((2, 1)), np.array([1.0, -1.0]))
    with pytest.raises(InvalidInputError, match=r"shifts must have shape \(n_agents, 1\)"):
        LandscapeNetwork(land, np.zeros((2, 2)), np.ones(2))
    with pytest.raises(InvalidInputError, match="noise_heterogeneity must lie in"):
        two_well_network(4, noise_heterogeneity=1.5)
    with pytest.raises(InvalidInputError, match=r"points must have shape \(\.\.\., 1\)"):
        land.loss(np.zeros((3, 2)))
    with pytest.raises(InvalidInputError, match="basin='deep' is not known"):
        land.minimum("deep")
