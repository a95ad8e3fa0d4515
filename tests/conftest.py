"""Shared fixtures for the numerics tests: small combination matrices and random networks.

The combination matrices are built here directly (not with ``numerics.topology``) so that
the core tests do not depend on the topology module.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from numerics.problems import QuadraticNetwork


def ring_matrix(n_agents: int, self_weight: float = 1.0 / 3.0) -> np.ndarray:
    """Symmetric doubly-stochastic ring: self weight w, (1 − w)/2 to each neighbour."""
    K = n_agents
    A = np.zeros((K, K))
    side = (1.0 - self_weight) / 2.0
    for k in range(K):
        A[k, k] += self_weight
        A[(k + 1) % K, k] += side
        A[(k - 1) % K, k] += side
    return A


def permutation_mixture(n_agents: int, seed: int = 0, n_terms: int = 3) -> np.ndarray:
    """Non-symmetric doubly-stochastic A: a random convex combination of permutation matrices.

    The identity and the cyclic shift are always included (so A is primitive), together
    with ``n_terms`` random permutations (Birkhoff–von Neumann: the result is doubly
    stochastic).
    """
    rng = np.random.default_rng(seed)
    K = n_agents
    mats = [np.eye(K), np.roll(np.eye(K), 1, axis=0)]
    mats += [np.eye(K)[rng.permutation(K)] for _ in range(n_terms)]
    weights = rng.dirichlet(np.ones(len(mats)))
    return sum(w * P for w, P in zip(weights, mats, strict=True))


def metropolis_matrix(adjacency: np.ndarray) -> np.ndarray:
    """Metropolis–Hastings weights of an undirected graph (symmetric, doubly stochastic)."""
    adj = np.asarray(adjacency, dtype=bool)
    K = adj.shape[0]
    deg = adj.sum(axis=1)
    A = np.zeros((K, K))
    for j, k in itertools.product(range(K), range(K)):
        if j != k and adj[j, k]:
            A[j, k] = 1.0 / (1.0 + max(deg[j], deg[k]))
    A[np.diag_indices(K)] = 1.0 - A.sum(axis=0)
    return A


def random_spd(rng: np.random.Generator, dim: int, low: float, high: float) -> np.ndarray:
    """Random symmetric matrix with eigenvalues uniform in [low, high]."""
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    return (q * rng.uniform(low, high, dim)) @ q.T


def heterogeneous_network(
    n_agents: int,
    dim: int,
    *,
    seed: int = 0,
    equal_hessians: bool = False,
    equal_noise: bool = False,
    gradient_scale: float = 1.0,
    noise_scale: float = 1.0,
    batch_size: int = 2,
) -> QuadraticNetwork:
    """A QuadraticNetwork built directly from random draws (independent of problems.py)."""
    rng = np.random.default_rng(seed)
    K, d = n_agents, dim
    if equal_hessians:
        H = np.repeat(random_spd(rng, d, 0.2, 1.0)[None], K, axis=0)
    else:
        H = np.array([random_spd(rng, d, 0.2, 1.0) for _ in range(K)])
    if equal_noise:
        R = np.repeat(random_spd(rng, d, 0.3, 1.5)[None], K, axis=0)
    else:
        R = np.array([random_spd(rng, d, 0.3, 1.5) for _ in range(K)])
    g = rng.standard_normal((K, d))
    g -= g.mean(axis=0)
    return QuadraticNetwork(H, gradient_scale * g, noise_scale * R, batch_size)


@pytest.fixture(scope="session")
def ring():
    """Builder ``ring(n_agents, self_weight=1/3)`` of a symmetric doubly-stochastic ring."""
    return ring_matrix


@pytest.fixture(scope="session")
def nonsymmetric_A():
    """Builder ``nonsymmetric_A(n_agents, seed=0)`` of a non-symmetric doubly-stochastic A."""
    return permutation_mixture


@pytest.fixture(scope="session")
def metropolis():
    """Builder ``metropolis(adjacency)`` of Metropolis weights."""
    return metropolis_matrix


@pytest.fixture(scope="session")
def network():
    """Builder ``network(n_agents, dim, seed=..., ...)`` of a heterogeneous QuadraticNetwork."""
    return heterogeneous_network


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own result cache, never the user's ~/.cache/dlcheck."""
    monkeypatch.setenv("DLCHECK_CACHE", str(tmp_path_factory.mktemp("cache")))
