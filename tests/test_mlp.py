"""The numpy classifier: gradients and Hessian-vector products against finite differences,
batching, the agents' objective, the training workspace, and clear errors on bad input."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from numerics.errors import InvalidInputError
from numerics.mlp import MLP, GradientWorkspace

ACTIVATIONS = ("tanh", "softplus")


def _data(seed: int = 0, n: int = 40, p: int = 3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    y = np.where(X[:, 0] + 0.3 * rng.standard_normal(n) > 0, 1.0, -1.0)
    return X, y, rng


@pytest.fixture(params=ACTIVATIONS)
def model(request):
    X, y, rng = _data()
    mlp = MLP.create(X, y, hidden=4, regularization=0.05, activation=request.param)
    theta = 1.5 * mlp.initial(rng, (2, 3)) + 0.3 * rng.standard_normal((2, 3, mlp.dim))
    return mlp, theta, rng


def test_dimension_and_packing():
    X, y, rng = _data(p=5)
    mlp = MLP.create(X, y, hidden=3)
    assert mlp.dim == 3 * 5 + 2 * 3 + 1
    theta = rng.standard_normal((4, mlp.dim))
    W1, b1, w2, b2 = mlp.unpack(theta)
    assert W1.shape == (4, 3, 5) and b1.shape == w2.shape == (4, 3) and b2.shape == (4,)
    assert_allclose(mlp.pack(W1, b1, w2, b2), theta, rtol=0, atol=0)


def test_value_matches_a_direct_formula(model):
    mlp, theta, _ = model
    t = theta[1, 2]
    W1, b1, w2, b2 = mlp.unpack(t)
    z = mlp.features @ W1.T + b1
    u = np.tanh(z) if mlp.activation == "tanh" else np.log1p(np.exp(z))
    f = u @ w2 + b2
    expected = np.mean(np.log1p(np.exp(-mlp.labels * f))) + 0.5 * 0.05 * t @ t
    assert mlp.value(t) == pytest.approx(expected, rel=1e-12)
    assert_allclose(mlp.outputs(t), f, rtol=1e-12)


def test_gradient_against_central_differences(model):
    mlp, theta, _ = model
    h = 1e-6
    E = np.eye(mlp.dim)
    fd = (mlp.value(theta[..., None, :] + h * E) - mlp.value(theta[..., None, :] - h * E)) / (2 * h)
    g = mlp.gradient(theta)
    assert g.shape == theta.shape
    assert_allclose(g, fd, rtol=0, atol=1e-8 * np.abs(g).max())
    value, grad = mlp.value_and_gradient(theta)
    assert_allclose(grad, g, rtol=1e-14)
    assert_allclose(value, mlp.value(theta), rtol=1e-14)


def test_minibatch_gradient_against_central_differences(model):
    mlp, theta, rng = model
    rows = rng.integers(0, mlp.n_samples, (2, 3, 5))
    h = 1e-6
    E = np.eye(mlp.dim)
    r = rows[..., None, :]
    fd = (mlp.value(theta[..., None, :] + h * E, r) - mlp.value(theta[..., None, :] - h * E, r)) / (
        2 * h
    )
    g = mlp.gradient(theta, rows)
    assert_allclose(g, fd, rtol=0, atol=1e-8 * np.abs(g).max())
    # rows broadcast against θ: one minibatch per column, shared by the first axis
    shared = mlp.gradient(theta, rows[:1])
    assert_allclose(shared[1], mlp.gradient(theta[1], rows[0]), rtol=1e-13)


def test_hvp_against_finite_differences_of_the_gradient(model):
    mlp, theta, rng = model
    v = rng.standard_normal(theta.shape)
    h = 1e-5
    fd = (mlp.gradient(theta + h * v) - mlp.gradient(theta - h * v)) / (2 * h)
    hv = mlp.hvp(theta, v)
    assert_allclose(hv, fd, rtol=0, atol=1e-7 * np.abs(hv).max())
    rows = rng.integers(0, mlp.n_samples, (2, 3, 6))
    fd = (mlp.gradient(theta + h * v, rows) - mlp.gradient(theta - h * v, rows)) / (2 * h)
    assert_allclose(mlp.hvp(theta, v, rows), fd, rtol=0, atol=1e-7 * np.abs(fd).max())


def test_hessian_is_symmetric_and_matches_differences_of_gradients(model):
    mlp, theta, _ = model
    t = theta[0, 1]
    raw = mlp.hvp(t, np.eye(mlp.dim))
    assert_allclose(raw, raw.T, rtol=0, atol=1e-13 * np.abs(raw).max())
    h = 1e-5
    E = np.eye(mlp.dim)
    fd = (mlp.gradient(t + h * E) - mlp.gradient(t - h * E)) / (2 * h)
    assert_allclose(mlp.hessian(t), fd, rtol=0, atol=1e-7 * np.abs(fd).max())


def test_hvp_shares_the_forward_pass_across_probes(model):
    mlp, theta, rng = model
    V = rng.standard_normal((5, mlp.dim))
    pts = theta.reshape(-1, mlp.dim)
    many = mlp.hvp(pts[:, None, :], V[None])
    assert many.shape == (pts.shape[0], 5, mlp.dim)
    for i in (0, 4):
        for j in (0, 3):
            assert_allclose(many[i, j], mlp.hvp(pts[i], V[j]), rtol=1e-12, atol=1e-15)


def test_per_sample_gradients_average_to_the_minibatch_gradient(model):
    mlp, theta, rng = model
    rows = rng.integers(0, mlp.n_samples, (2, 3, 7))
    ps = mlp.per_sample_gradients(theta, rows)
    assert ps.shape == (2, 3, 7, mlp.dim)
    assert_allclose(ps.mean(axis=-2), mlp.gradient(theta, rows), rtol=1e-12, atol=1e-15)
    full = mlp.per_sample_gradients(theta[0, 0])
    assert_allclose(mlp.weights @ full, mlp.gradient(theta[0, 0]), rtol=1e-12, atol=1e-15)


def test_workspace_equals_gradient(model):
    mlp, theta, rng = model
    W = np.ascontiguousarray(np.broadcast_to(theta[None], (3, 2, 3, mlp.dim)))
    W = W + 0.1 * rng.standard_normal(W.shape)
    work = GradientWorkspace(mlp, W.shape[:-1], (1, 2, 3), 6)
    for _ in range(2):  # buffers are reused
        rows = rng.integers(0, mlp.n_samples, (1, 2, 3, 6))
        assert_allclose(work.gradient(W, rows), mlp.gradient(W, rows), rtol=1e-13, atol=1e-16)
    with pytest.raises(InvalidInputError, match="rows must have shape"):
        work.gradient(W, rows[..., :2])


def test_agents_objective_is_the_mean_of_local_objectives():
    X, y, rng = _data(n=30)
    parts = [np.arange(0, 5), np.arange(5, 17), np.arange(17, 30)]
    mlp, offsets, sizes = MLP.for_agents(X, y, parts, hidden=3, regularization=0.1)
    assert_allclose(offsets, [0, 5, 17, 30])
    assert_allclose(sizes, [5, 12, 13])
    assert mlp.weights.sum() == pytest.approx(1.0)
    theta = rng.standard_normal(mlp.dim)
    local = [MLP.create(X[p], y[p], 3, 0.1).value(theta) for p in parts]
    assert mlp.value(theta) == pytest.approx(np.mean(local), rel=1e-12)
    grads = [MLP.create(X[p], y[p], 3, 0.1).gradient(theta) for p in parts]
    assert_allclose(mlp.gradient(theta), np.mean(grads, axis=0), rtol=1e-12)


def test_accuracy_counts_signs():
    X, y, rng = _data(n=20)
    mlp = MLP.create(X, y, hidden=2)
    theta = rng.standard_normal((3, mlp.dim))
    f = mlp.outputs(theta, X)
    assert_allclose(mlp.accuracy(theta, X, y), np.mean(np.sign(f) == y, axis=-1))


def test_initial_points_are_reproducible():
    X, y, _ = _data()
    mlp = MLP.create(X, y, hidden=4)
    a = mlp.initial(np.random.default_rng(7), (2,))
    b = mlp.initial(np.random.default_rng(7), (2,))
    assert_allclose(a, b, rtol=0, atol=0)
    W1, b1, _, b2 = mlp.unpack(a)
    assert np.all(b1 == 0) and np.all(b2 == 0) and np.all(W1 != 0)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"activation": "relu"}, r"activation='relu' is not known; allowed: tanh, softplus"),
        ({"hidden": 0}, r"hidden must be an integer >= 1; got 0"),
        ({"regularization": -1.0}, r"regularization must be a finite number >= 0; got -1.0"),
        ({"labels": np.zeros(40)}, r"labels must be -1 or \+1"),
        ({"weights": np.full(40, 0.5)}, r"weights must be 40 non-negative numbers summing to 1"),
    ],
)
def test_bad_construction_names_the_parameter(kwargs, pattern):
    X, y, _ = _data()
    args = {"features": X, "labels": y, "hidden": 3, **kwargs}
    with pytest.raises(InvalidInputError, match=pattern):
        MLP.create(**args)


def test_bad_arguments_name_the_parameter():
    X, y, _ = _data()
    mlp = MLP.create(X, y, hidden=3)
    with pytest.raises(InvalidInputError, match=rf"theta must have shape \(\.\.\., {mlp.dim}\)"):
        mlp.value(np.zeros(5))
    with pytest.raises(InvalidInputError, match=r"rows must lie in \[0, 39\]; got values in"):
        mlp.gradient(np.zeros(mlp.dim), np.array([0, 40]))
    with pytest.raises(InvalidInputError, match="rows must be an integer array"):
        mlp.gradient(np.zeros(mlp.dim), np.array([0.5]))
    with pytest.raises(InvalidInputError, match=rf"vector must have shape \(\.\.\., {mlp.dim}\)"):
        mlp.hvp(np.zeros(mlp.dim), np.zeros(3))
    with pytest.raises(InvalidInputError, match="parts\\[1\\] is empty"):
        MLP.for_agents(X, y, [np.arange(3), np.array([], dtype=int)], hidden=2)
