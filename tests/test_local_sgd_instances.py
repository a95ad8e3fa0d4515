"""Tests for numerics.local_sgd_instances: oracles, the hard instances' defining properties,
exact local GD (round map, Prop. 19 fixed point), and the hard-instances figure's arrays."""

from __future__ import annotations

import numpy as np
import pytest

from numerics.errors import InvalidInputError
from numerics.local_sgd import local_sgd
from numerics.local_sgd_instances import (
    IterateBiasOracle,
    QuadraticOracle,
    chain,
    fixed_point_example,
    glb_het,
    glb_hom,
    isotropic_quadratic,
    local_gd_fixed_point,
    local_gd_rounds,
    rank_one,
    shared_hessian,
    two_machine,
)


def _grad(o, x, noise=None):
    x = np.broadcast_to(np.asarray(x, float), (1, o.n_machines, o.dim))
    z = np.zeros((1, o.n_machines, *o.noise_shape)) if noise is None else noise
    return o.gradient(x, z, np.empty((1, o.n_machines, o.dim)))[0]


def test_quadratic_oracle_gradient_excess_and_fast_path():
    rng = np.random.default_rng(0)
    diag = rng.uniform(0.5, 2.0, (3, 4))
    dense = np.stack([np.diag(d) for d in diag])
    b = rng.standard_normal((3, 4))
    fast = QuadraticOracle(dense, b)
    assert fast.diagonal
    x = rng.standard_normal(4)
    np.testing.assert_allclose(_grad(fast, x), diag * x - b, rtol=1e-14)
    Q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    rot = QuadraticOracle(np.einsum("ij,mjk,lk->mil", Q, dense, Q), b)
    assert not rot.diagonal
    np.testing.assert_allclose(
        _grad(rot, x), np.einsum("mij,j->mi", rot.hessians, x) - b, rtol=1e-12
    )
    assert rot.excess(rot.optimum) == pytest.approx(0.0, abs=1e-14)
    np.testing.assert_allclose(_grad(rot, rot.optimum).mean(axis=0), 0.0, atol=1e-12)
    assert rot.excess(rot.optimum + 0.1) > 0


def test_quadratic_oracle_noise_variance():
    o = isotropic_quadratic(4, 5, sigma=2.0)
    gen = np.random.default_rng(1)
    z = np.empty((20000, 4, 5))
    o.draw(gen, z)
    noise = z * o.noise_std
    assert np.mean(np.sum(noise**2, axis=-1)) == pytest.approx(4.0, rel=0.02)
    assert o.sigma == pytest.approx(2.0)
    rad = o.with_noise(o.noise_std, "rademacher")
    rad.draw(gen, z)
    assert set(np.unique(z)) == {-1.0, 1.0}


def test_quadratic_oracle_bad_input():
    eye = np.tile(np.eye(2), (2, 1, 1))
    with pytest.raises(InvalidInputError, match="hessians"):
        QuadraticOracle(np.ones((2, 2, 3)), np.zeros((2, 2)))
    with pytest.raises(InvalidInputError, match="linear"):
        QuadraticOracle(eye, np.zeros((3, 2)))
    with pytest.raises(InvalidInputError, match="indefinite"):
        QuadraticOracle(-eye, np.zeros((2, 2)))
    with pytest.raises(InvalidInputError, match="noise_std"):
        QuadraticOracle(eye, np.zeros((2, 2)), -1.0)
    with pytest.raises(InvalidInputError, match="noise="):
        QuadraticOracle(eye, np.zeros((2, 2)), 1.0, "cauchy")
    with pytest.raises(InvalidInputError, match="positive definite"):
        QuadraticOracle(np.zeros((2, 2, 2)), np.zeros((2, 2)))
    with pytest.raises(InvalidInputError, match="even"):
        glb_het(3, 10, 1.0)
    with pytest.raises(InvalidInputError, match="zeta"):
        glb_het(2, 10, 0.0)
    with pytest.raises(InvalidInputError, match="rho"):
        IterateBiasOracle(2, 0.1, rho=2.0)
    with pytest.raises(InvalidInputError, match="x_star"):
        two_machine([1.0, 2.0, 3.0])


def test_fixed_point_example_constants_match_the_note():
    o = fixed_point_example()
    np.testing.assert_allclose(o.optimum, [11, 12], atol=1e-12)
    np.testing.assert_allclose(o.local_optima.mean(axis=0), [10, 11], atol=1e-12)
    assert (o.smoothness, o.machine_strong_convexity, o.tau) == (6.0, 1.0, 5.0)
    assert o.zeta_star == pytest.approx(17.36, abs=0.005)
    shrunk = fixed_point_example(0.01)
    np.testing.assert_allclose(shrunk.optimum, [10.01, 11.01], atol=1e-12)


def test_glb_het_properties():
    for eq in (False, True):
        o = glb_het(4, 50, 0.7, smoothness=2.0, distance=3.0, equal_hessians=eq)
        np.testing.assert_allclose(o.optimum, [3.0, 0.0], atol=1e-12)
        g = o.local_gradients_at_optimum
        np.testing.assert_allclose(np.linalg.norm(g, axis=1), 0.7, rtol=1e-12)
        assert o.tau == pytest.approx(0.0 if eq else 0.75 * 2.0)
        assert o.hessians[0, 0, 0] == pytest.approx((2.0 * 0.49 / (9.0 * 2500)) ** (1 / 3))


def test_glb_hom_oracle():
    o = glb_hom(3, 10, 100, smoothness=2.0, distance=1.5, sigma=0.5)
    assert o.mu1 == pytest.approx((2.0 * 0.25 / (1.5**2 * 10 * 100**2)) ** (1 / 3))
    assert o.excess(o.optimum) == 0.0
    for x2 in (0.3, -0.3):  # gradient = finite difference of the excess, both curvatures
        x = np.array([0.4, x2])
        g = _grad(o, x).mean(axis=0)
        eps = 1e-6
        fd = [(o.excess(x + eps * e) - o.excess(x - eps * e)) / (2 * eps) for e in np.eye(2)]
        np.testing.assert_allclose(g, fd, rtol=1e-6)
    noise = np.ones((1, 3, 1))
    np.testing.assert_allclose(_grad(o, [1.5, 0.0], noise)[:, 1], 0.5)
    assert o.restrict(1).n_machines == 1


def test_rank_one_and_chain_constructions():
    o = rank_one(10, smoothness=2.0, distance=3.0)
    lam = np.linalg.eigvalsh(o.mean_hessian)
    assert lam[1] / lam[0] == pytest.approx(20.0, rel=1e-10)
    assert np.linalg.norm(o.optimum) == pytest.approx(3.0)
    for A in o.hessians / 2.0:  # projectors
        np.testing.assert_allclose(A @ A, A, atol=1e-12)
    c = chain(6, smoothness=1.5, distance=2.0)
    assert c.dim == 36
    assert np.linalg.norm(c.optimum) == pytest.approx(2.0, rel=1e-10)
    q = 1 - 1 / 6
    ratios = c.optimum[1:] / c.optimum[:-1]
    np.testing.assert_allclose(ratios, q, rtol=1e-8)
    np.testing.assert_allclose(c.local_gradients_at_optimum, 0.0, atol=1e-10)  # ζ⋆ = 0
    assert c.zeta_star < 1e-10


def test_two_machine_excess():
    o = two_machine([1.0, -2.0], smoothness=3.0)
    x = np.array([0.2, 0.5])
    assert o.excess(x) == pytest.approx(3.0 / 4 * np.sum((x - [1.0, -2.0]) ** 2))


def test_shared_hessian_zeta_and_identical_objective():
    a = shared_hessian(5, 3, 0.0, seed=2)
    b = shared_hessian(5, 3, 2.5, seed=2)
    assert b.zeta_star == pytest.approx(2.5, rel=1e-12)
    np.testing.assert_allclose(a.optimum, b.optimum, rtol=1e-12)
    np.testing.assert_allclose(a.linear.mean(0), b.linear.mean(0), rtol=1e-12, atol=1e-14)


def test_round_map_and_fixed_point():
    o = fixed_point_example(0.3)
    eta = np.array([0.02, 0.1])
    exact = local_gd_rounds(o, local_steps=7, rounds=12, step_size=eta, outer_step_size=1.3)
    sim = local_sgd(
        o, local_steps=7, rounds=12, step_size=eta, outer_step_size=1.3, record_rounds=True
    )
    np.testing.assert_allclose(sim.path[:, 0], exact, rtol=1e-11)
    xf = local_gd_fixed_point(o, local_steps=7, step_size=eta)
    long = local_gd_rounds(o, local_steps=7, rounds=3000, step_size=eta, outer_step_size=0.7)[:, -1]
    np.testing.assert_allclose(long, xf, rtol=1e-10)
    np.testing.assert_allclose(
        local_gd_fixed_point(o, local_steps=1, step_size=[0.05])[0], o.optimum, rtol=1e-12
    )


def test_hard_instances_figure(tmp_path, monkeypatch):
    """Plotted arrays of the figure at reduced sizes: shapes, bound lines, constants."""
    from figures import local_sgd_hard_instances as fig

    monkeypatch.setattr(
        fig,
        "QUICK_OVERRIDES",
        {
            "machines_per_threshold": 20.0,
            "trials": 16,
            "k_max": 8,
            "r_max": 100,
            "grid_half_width": 2,
        },
    )
    rec = fig.build(tmp_path, quick=True)
    assert sorted(p.name for p in rec.files) == [f"{fig.NAME}.pdf", f"{fig.NAME}.png"]
    d = rec.data
    assert d["hom_K"].tolist() == [2, 4, 8] and d["hom_R"].tolist() == [25, 50, 100]
    np.testing.assert_allclose(d["hom_K_bound"], (1 / (d["hom_K"] * 50.0**2)) ** (1 / 3))
    np.testing.assert_allclose(d["het_R_bound"], (1 / d["het_R"] ** 2) ** (1 / 3))
    assert np.all(d["hom_K_local"] > 0) and np.all(np.isfinite(d["hom_K_local_se"]))
    np.testing.assert_allclose(d["hom_ratio"], d["hom_K_local"] / d["hom_K_minibatch"])
    assert d["bound_constants"].shape == (5,) and np.all(d["bound_constants"] > 0)
    assert "GLB-hom" in rec.claim
