"""Tests for numerics.moments: exact moments, steady states, stability and closed forms.

Reference values are computed here independently of ``numerics.moments``: a brute-force
Kronecker recursion vec(C_n) = (F ⊗ F) vec(C_{n−1}) + vec(Q) with F written from the
formula F = (A2ᵀ ⊗ I)(A1ᵀ ⊗ I − μ blkdiag H_k), and the closed forms of
shared/research/flatness_tradeoff.md §4.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import heterogeneous_network, metropolis_matrix, permutation_mixture, ring_matrix
from hypothesis import given, settings
from hypothesis import strategies as st

from numerics import moments as mo
from numerics.errors import InvalidInputError, UnstableStepSizeError
from numerics.problems import QuadraticNetwork
from numerics.strategies import Schedule, make_schedule

STRATS = ("centralized", "consensus", "diffusion", "independent", "local_sgd")
LOCAL_STEPS = 3


# ---------------------------------------------------------------- brute-force reference
def table_pairs(strategy: str, A: np.ndarray, local_steps: int = LOCAL_STEPS):
    """The (A1, A2) schedule of DESIGN.md's table, written out independently."""
    K = A.shape[0]
    eye, J = np.eye(K), np.ones((K, K)) / K
    return {
        "centralized": [(eye, J)],
        "consensus": [(A, eye)],
        "diffusion": [(eye, A)],
        "independent": [(eye, eye)],
        "local_sgd": [(eye, eye)] * (local_steps - 1) + [(eye, J)],
    }[strategy]


def blkdiag(blocks: np.ndarray) -> np.ndarray:
    K, d, _ = blocks.shape
    out = np.zeros((K * d, K * d))
    for k in range(K):
        out[k * d : (k + 1) * d, k * d : (k + 1) * d] = blocks[k]
    return out


def kron_maps(pairs, net: QuadraticNetwork, mu: float):
    """Per phase: F, c = μ G d and Q = μ² G S Gᵀ from np.kron."""
    d = net.dim
    Id = np.eye(d)
    Hblk = blkdiag(np.asarray(net.hessians))
    S = blkdiag(np.asarray(net.noise_covariances) / net.batch_size)
    dvec = np.asarray(net.gradients_at_optimum).reshape(-1)
    maps = []
    for A1, A2 in pairs:
        G = np.kron(A2.T, Id)
        F = G @ (np.kron(A1.T, Id) - mu * Hblk)
        maps.append((F, mu * G @ dvec, mu**2 * G @ S @ G.T))
    return maps


def readouts(m: np.ndarray, C: np.ndarray, net: QuadraticNetwork):
    K, d = net.n_agents, net.dim
    W = np.kron(np.eye(K), net.aggregate_hessian)
    P = np.kron(np.eye(K) - np.ones((K, K)) / K, np.eye(d))
    ee = (m @ W @ m + np.trace(W @ C)) / (2 * K)
    msd = (m @ m + np.trace(C)) / K
    cd = (m @ P @ m + np.trace(P @ C)) / K
    return ee, msd, cd


def brute_moments(pairs, net, mu, n_steps, w0=None):
    maps = kron_maps(pairs, net, mu)
    N = net.n_agents * net.dim
    m = np.zeros(N) if w0 is None else np.broadcast_to(w0, (net.n_agents, net.dim)).reshape(-1)
    vecC = np.zeros(N * N)
    out = []
    for t in range(n_steps):
        F, c, Q = maps[t % len(maps)]
        m = F @ m + c
        vecC = np.kron(F, F) @ vecC + Q.reshape(-1)
        out.append(readouts(m, vecC.reshape(N, N), net))
    return np.array(out).T  # (3, n_steps)


def brute_steady(pairs, net, mu):
    """Solve (I − Φ⊗Φ) vec C = vec Q and (I − Φ) m = c for the period map, then average
    the read-outs over the phases of one period."""
    maps = kron_maps(pairs, net, mu)
    N = net.n_agents * net.dim
    Phi, c = np.eye(N), np.zeros(N)
    PhiC, q = np.eye(N * N), np.zeros(N * N)
    for F, cf, Q in maps:
        FF = np.kron(F, F)
        Phi, c = F @ Phi, F @ c + cf
        PhiC, q = FF @ PhiC, FF @ q + Q.reshape(-1)
    m = np.linalg.solve(np.eye(N) - Phi, c)
    vecC = np.linalg.solve(np.eye(N * N) - PhiC, q)
    reads = []
    for F, cf, Q in maps:
        m = F @ m + cf
        vecC = np.kron(F, F) @ vecC + Q.reshape(-1)
        reads.append(readouts(m, vecC.reshape(N, N), net))
    return np.mean(reads, axis=0)


def assert_reads_close(got, ref, rtol=1e-10, scale=None):
    """EE, MSD, CD arrays; CD may be ~0 (centralized), so an absolute slack of 1e-13·scale
    is allowed (scale: the largest reference MSD unless given)."""
    got, ref = np.asarray(got, dtype=float), np.asarray(ref, dtype=float)
    if scale is None:
        scale = np.max(np.abs(ref[1]))
    for i, name in enumerate(("ee", "msd", "cd")):
        np.testing.assert_allclose(got[i], ref[i], rtol=rtol, atol=1e-13 * scale, err_msg=name)


def as_array(mom: mo.Moments) -> np.ndarray:
    return np.array([mom.escaping_efficiency, mom.msd, mom.consensus_distance])


def as_steady(ss: mo.SteadyState) -> np.ndarray:
    return np.array([ss.excess_risk, ss.msd, ss.consensus_distance])


# ---------------------------------------------------------------- convention sanity
def test_kron_F_matches_per_agent_update():
    """The Kronecker F (row-major stacking) is the per-agent update w_k ← Σ_l a_lk φ_l."""
    rng = np.random.default_rng(0)
    net = heterogeneous_network(4, 3, seed=1)
    A1, A2 = permutation_mixture(4, seed=2), permutation_mixture(4, seed=3)
    mu = 0.1
    ((F, _, _),) = kron_maps([(A1, A2)], net, mu)
    W = rng.standard_normal((4, 3))
    phi = np.array(
        [sum(A1[j, k] * W[j] for j in range(4)) - mu * net.hessians[k] @ W[k] for k in range(4)]
    )
    new = np.array([sum(A2[j, k] * phi[j] for j in range(4)) for k in range(4)])
    np.testing.assert_allclose(F @ W.reshape(-1), new.reshape(-1), rtol=1e-13)


# ---------------------------------------------------------------- exact vs brute force
@pytest.mark.parametrize("strategy", STRATS)
@pytest.mark.parametrize(
    ("K", "d", "B", "w0"), [(4, 3, 2, None), (3, 2, 1, "agents"), (4, 1, 5, "common")]
)
def test_moments_match_brute_force_kronecker(strategy, K, d, B, w0):
    net = heterogeneous_network(K, d, seed=10 + K + d, batch_size=B)
    A = permutation_mixture(K, seed=K)
    assert not np.allclose(A, A.T)
    rng = np.random.default_rng(1)
    init = {None: None, "agents": rng.standard_normal((K, d)), "common": rng.standard_normal(d)}[w0]
    mu = 0.15
    n = 25
    got = mo.moments(strategy, A, net, mu, n, initial_error=init, local_steps=LOCAL_STEPS)
    ref = brute_moments(table_pairs(strategy, A), net, mu, n, init)
    assert_reads_close(as_array(got), ref)
    np.testing.assert_array_equal(
        mo.escaping_efficiency(
            strategy, A, net, mu, n, initial_error=init, local_steps=LOCAL_STEPS
        ),
        got.escaping_efficiency,
    )


@pytest.mark.parametrize("strategy", STRATS)
@pytest.mark.parametrize(("K", "d", "B"), [(4, 3, 2), (3, 2, 1)])
def test_steady_state_matches_brute_force(strategy, K, d, B):
    net = heterogeneous_network(K, d, seed=20 + K, batch_size=B)
    A = permutation_mixture(K, seed=K + 7)
    mu = 0.2
    ss = mo.steady_state(strategy, A, net, mu, local_steps=LOCAL_STEPS)
    assert ss.method == "dense"  # heterogeneous Hessians
    ref = brute_steady(table_pairs(strategy, A), net, mu)
    assert_reads_close(as_steady(ss), ref)


def test_moments_converge_to_steady_state():
    net = heterogeneous_network(3, 2, seed=4)
    A = permutation_mixture(3, seed=1)
    ss = mo.steady_state("consensus", A, net, 0.5)
    mom = mo.moments("consensus", A, net, 0.5, 600)
    np.testing.assert_allclose(as_array(mom)[:, -1], as_steady(ss), rtol=1e-9)


# ---------------------------------------------------------------- modal == dense
@pytest.mark.parametrize("strategy", STRATS)
@pytest.mark.parametrize("A_kind", ["ring5", "ring4", "metropolis6"])
def test_modal_equals_dense(strategy, A_kind):
    if A_kind == "ring5":
        A = ring_matrix(5)
    elif A_kind == "ring4":  # eigenvalue −1/3 and a repeated eigenvalue
        A = ring_matrix(4)
    else:
        adj = np.zeros((6, 6), dtype=bool)
        for u, v in [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (0, 3), (1, 4)]:
            adj[u, v] = adj[v, u] = True
        A = metropolis_matrix(adj)
    K = A.shape[0]
    net = heterogeneous_network(K, 3, seed=K, equal_hessians=True, batch_size=3)
    assert net.hessians_equal
    init = np.random.default_rng(K).standard_normal((K, 3))
    mu = 0.3
    for w0 in (None, init):
        modal = mo.moments(
            strategy, A, net, mu, 30, initial_error=w0, method="modal", local_steps=LOCAL_STEPS
        )
        dense = mo.moments(
            strategy, A, net, mu, 30, initial_error=w0, method="dense", local_steps=LOCAL_STEPS
        )
        auto = mo.moments(strategy, A, net, mu, 30, initial_error=w0, local_steps=LOCAL_STEPS)
        assert_reads_close(as_array(modal), as_array(dense))
        np.testing.assert_array_equal(as_array(auto), as_array(modal))
    ss_modal = mo.steady_state(strategy, A, net, mu, method="modal", local_steps=LOCAL_STEPS)
    ss_dense = mo.steady_state(strategy, A, net, mu, method="dense", local_steps=LOCAL_STEPS)
    ss_auto = mo.steady_state(strategy, A, net, mu, local_steps=LOCAL_STEPS)
    assert (ss_modal.method, ss_dense.method, ss_auto.method) == ("modal", "dense", "modal")
    assert_reads_close(as_steady(ss_modal), as_steady(ss_dense))


def test_auto_method_falls_back_to_dense():
    net_het = heterogeneous_network(4, 2, seed=3)
    net_eq = heterogeneous_network(4, 2, seed=3, equal_hessians=True)
    A_sym, A_ns = ring_matrix(4), permutation_mixture(4, seed=2)
    assert mo.steady_state("consensus", A_sym, net_het, 0.2).method == "dense"
    assert mo.steady_state("consensus", A_ns, net_eq, 0.2).method == "dense"
    assert mo.steady_state("diffusion", A_ns, net_eq, 0.2).method == "dense"
    # centralized does not use A: modal even when A is not symmetric
    assert mo.steady_state("centralized", A_ns, net_eq, 0.2).method == "modal"
    # a schedule whose symmetric matrices do not commute has no common eigenbasis
    path = np.zeros((4, 4), dtype=bool)
    for u in range(3):
        path[u, u + 1] = path[u + 1, u] = True
    B = metropolis_matrix(path)
    assert not np.allclose(A_sym @ B, B @ A_sym)
    sched = Schedule("alternating", ((A_sym, np.eye(4)), (B, np.eye(4))))
    ss = mo.steady_state(sched, None, net_eq, 0.2)
    assert ss.method == "dense"
    assert_reads_close(as_steady(ss), brute_steady(sched.pairs, net_eq, 0.2))
    with pytest.raises(InvalidInputError, match=r"method='modal' needs"):
        mo.steady_state(sched, None, net_eq, 0.2, method="modal")


# ---------------------------------------------------------------- validation
@pytest.fixture
def small():
    return heterogeneous_network(4, 2, seed=0), permutation_mixture(4, seed=0)


def test_rejects_mismatched_A(small):
    net, _ = small
    for fn in (
        lambda: mo.moments("consensus", ring_matrix(5), net, 0.1, 3),
        lambda: mo.steady_state("diffusion", ring_matrix(3), net, 0.1),
    ):
        with pytest.raises(InvalidInputError, match=r"A is \d×\d but the problem has 4 agents"):
            fn()


@pytest.mark.parametrize("mu", [0.0, -0.1, float("nan"), float("inf"), "fast"])
def test_rejects_bad_step_size(small, mu):
    net, A = small
    with pytest.raises(InvalidInputError, match=r"step_size must be a positive"):
        mo.moments("consensus", A, net, mu, 3)
    with pytest.raises(InvalidInputError, match=r"step_size must be a positive"):
        mo.steady_state("consensus", A, net, mu)


def test_rejects_unknown_method(small):
    net, A = small
    with pytest.raises(InvalidInputError, match=r"method='fast' is not known"):
        mo.moments("consensus", A, net, 0.1, 3, method="fast")
    with pytest.raises(InvalidInputError, match=r"method='fast' is not known"):
        mo.steady_state("consensus", A, net, 0.1, method="fast")


def test_modal_rejected_for_heterogeneous_hessians_or_nonsymmetric_A(small):
    net, A = small
    for fn in (
        lambda: mo.moments("consensus", ring_matrix(4), net, 0.1, 3, method="modal"),
        lambda: mo.steady_state("centralized", A, net, 0.1, method="modal"),
    ):
        with pytest.raises(InvalidInputError, match=r"method='modal' needs .* equal Hessians"):
            fn()
    net_eq = heterogeneous_network(4, 2, seed=0, equal_hessians=True)
    with pytest.raises(InvalidInputError, match=r"method='modal' needs symmetric"):
        mo.moments("diffusion", A, net_eq, 0.1, 3, method="modal")


def test_rejects_other_bad_inputs(small):
    net, A = small
    with pytest.raises(InvalidInputError, match=r"n_steps must be an integer >= 1"):
        mo.moments("consensus", A, net, 0.1, 0)
    with pytest.raises(InvalidInputError, match=r"problem must be a QuadraticNetwork"):
        mo.moments("consensus", A, "net", 0.1, 3)
    with pytest.raises(InvalidInputError, match=r"initial_error must have shape \(2,\) or"):
        mo.moments("consensus", A, net, 0.1, 3, initial_error=np.ones(3))
    with pytest.raises(InvalidInputError, match=r"local_sgd needs local_steps"):
        mo.moments("local_sgd", A, net, 0.1, 3)
    with pytest.raises(InvalidInputError, match=r"strategy='push_sum' is not known"):
        mo.steady_state("push_sum", A, net, 0.1)


def _lam_min(A):
    return np.linalg.eigvalsh(A)[0]


@pytest.mark.parametrize(
    ("strategy", "limit_of"),
    [
        # consensus modes a = λ_i − μ h_m: stable iff μ h_max < 1 + λ_min(A)
        ("consensus", lambda A, h: (1 + _lam_min(A)) / h),
        # diffusion a = λ_i (1 − μ h_m), centralized and local SGD a = (1 − μ h_m)^P: 2 / h_max
        ("diffusion", lambda A, h: 2 / h),
        ("centralized", lambda A, h: 2 / h),
        ("local_sgd", lambda A, h: 2 / h),
    ],
)
@pytest.mark.parametrize("K", [4, 5])
def test_unstable_step_size(strategy, limit_of, K):
    A = ring_matrix(K)
    net = heterogeneous_network(K, 3, seed=K, equal_hessians=True)
    h_max = np.linalg.eigvalsh(net.hessians[0])[-1]
    limit = limit_of(A, h_max)
    for method in ("auto", "dense"):
        mu = 1.02 * limit
        with pytest.raises(UnstableStepSizeError, match=r"step_size") as info:
            mo.moments(strategy, A, net, mu, 5, method=method, local_steps=LOCAL_STEPS)
        err = info.value
        assert isinstance(err, InvalidInputError)
        assert err.strategy == strategy and err.step_size == mu
        np.testing.assert_allclose(err.stable_below, limit, rtol=1e-9)
        msg = str(err)
        assert f"step_size={mu:.6g}" in msg
        assert re.search(rf"0 < step_size < {re.escape(f'{err.stable_below:.6g}')}", msg)
        with pytest.raises(UnstableStepSizeError, match=r"step_size"):
            mo.steady_state(strategy, A, net, mu, method=method, local_steps=LOCAL_STEPS)
        # just below the limit: no error
        mo.steady_state(strategy, A, net, 0.98 * limit, method=method, local_steps=LOCAL_STEPS)
    # allow_unstable lets the moments grow
    grown = mo.moments(
        strategy, A, net, 1.2 * limit, 200, allow_unstable=True, local_steps=LOCAL_STEPS
    )
    assert grown.msd[-1] > 1e3 * grown.msd[0]


def test_centralized_limit_uses_aggregate_hessian():
    net = heterogeneous_network(4, 3, seed=9)
    limit = 2 / np.linalg.eigvalsh(net.aggregate_hessian)[-1]
    A = permutation_mixture(4)
    np.testing.assert_allclose(mo.stable_step_size_limit("centralized", A, net), limit, rtol=1e-9)
    with pytest.raises(UnstableStepSizeError) as info:
        mo.steady_state("centralized", A, net, 1.01 * limit)
    np.testing.assert_allclose(info.value.stable_below, limit, rtol=1e-9)


def test_spectral_radius_per_step_for_periodic_schedule():
    net = heterogeneous_network(3, 2, seed=1, equal_hessians=True)
    h = np.linalg.eigvalsh(net.hessians[0])
    mu = 0.4
    rho = mo.spectral_radius("local_sgd", np.eye(3), net, mu, local_steps=4)
    np.testing.assert_allclose(rho, np.max(np.abs(1 - mu * h)), rtol=1e-12)


# ---------------------------------------------------------------- closed forms (note §4)
def _centralized_closed_form(net, mu, n_steps, hess, noise):
    K, B = net.n_agents, net.batch_size
    h, V = np.linalg.eigh(hess)
    Rmm = np.einsum("im,ij,jm->m", V, noise, V)
    n = np.arange(1, n_steps + 1)[:, None]
    return (mu * Rmm * (1 - (1 - mu * h) ** (2 * n)) / (2 * K * B * (2 - mu * h))).sum(axis=1)


def test_centralized_closed_form_homogeneous():
    net = heterogeneous_network(
        5, 3, seed=2, equal_hessians=True, equal_noise=True, gradient_scale=0.0, batch_size=4
    )
    mu, n = 0.7, 60
    ee = mo.escaping_efficiency("centralized", ring_matrix(5), net, mu, n)
    ref = _centralized_closed_form(net, mu, n, net.hessians[0], net.noise_covariances[0])
    np.testing.assert_allclose(ee, ref, rtol=1e-10)


def test_centralized_closed_form_heterogeneous_uses_aggregates():
    """After the first averaging all agents coincide, so only H̄ and R̄ matter: the same
    closed form holds with (H̄, R̄) for fully heterogeneous agents and any d_k."""
    net = heterogeneous_network(4, 3, seed=3, batch_size=2)
    mu, n = 0.5, 60
    ee = mo.escaping_efficiency("centralized", permutation_mixture(4), net, mu, n, method="dense")
    ref = _centralized_closed_form(net, mu, n, net.aggregate_hessian, net.mean_noise_covariance)
    np.testing.assert_allclose(ee, ref, rtol=1e-10)


@pytest.mark.parametrize("B", [1, 3])
def test_one_step_escaping_efficiency(B):
    K = 5
    net = heterogeneous_network(K, 3, seed=B, batch_size=B)
    A = permutation_mixture(K, seed=4)
    mu = 0.3
    Hb, Rb = net.aggregate_hessian, net.mean_noise_covariance
    dk, Rk = net.gradients_at_optimum, net.noise_covariances
    cen = mu**2 / (2 * K * B) * np.trace(Hb @ Rb)
    con = mu**2 / (2 * K) * sum(dk[k] @ Hb @ dk[k] + np.trace(Hb @ Rk[k]) / B for k in range(K))
    dif = 0.0
    for k in range(K):
        mix = sum(A[j, k] * dk[j] for j in range(K))
        dif += mix @ Hb @ mix + sum(A[j, k] ** 2 * np.trace(Hb @ Rk[j]) for j in range(K)) / B
    dif *= mu**2 / (2 * K)
    got = {
        s: mo.escaping_efficiency(s, A, net, mu, 1, local_steps=2)[0]
        for s in ("centralized", "consensus", "diffusion", "local_sgd", "independent")
    }
    np.testing.assert_allclose(got["centralized"], cen, rtol=1e-12)
    np.testing.assert_allclose(got["consensus"], con, rtol=1e-12)
    np.testing.assert_allclose(got["diffusion"], dif, rtol=1e-12)
    # the first local-SGD step is a local step: the consensus formula (it does not involve A)
    np.testing.assert_allclose(got["local_sgd"], con, rtol=1e-12)
    np.testing.assert_allclose(got["independent"], con, rtol=1e-12)
    assert con >= dif >= cen


@pytest.mark.parametrize("strategy", ["consensus", "diffusion", "centralized"])
def test_mode_form_escaping_efficiency(strategy):
    """§4.3: symmetric A, H_k = H, R_k = R, heterogeneous d_k, scalar modes per (i, m)."""
    K, B = 5, 2
    A = ring_matrix(K, self_weight=0.4)
    net = heterogeneous_network(K, 3, seed=8, equal_hessians=True, equal_noise=True, batch_size=B)
    mu, n_steps = 0.45, 40
    lam, U = np.linalg.eigh(A)
    h, V = np.linalg.eigh(net.hessians[0])
    Rmm = np.einsum("im,ij,jm->m", V, net.noise_covariances[0], V)
    delta = U.T @ net.gradients_at_optimum @ V  # δ_{i,m} (i indexes eigenvalues of A)
    if strategy == "centralized":
        lam = (np.abs(lam - 1) < 1e-12).astype(float)  # J: eigenvalue 1 on 1, 0 elsewhere
        a, g = lam[:, None] * (1 - mu * h[None]), mu * lam[:, None] * np.ones_like(h)[None]
    elif strategy == "diffusion":
        a, g = lam[:, None] * (1 - mu * h[None]), mu * lam[:, None] * np.ones_like(h)[None]
    else:
        a, g = lam[:, None] - mu * h[None], mu * np.ones((K, h.size))
    n = np.arange(1, n_steps + 1)[:, None, None]
    ee = (
        h
        * (
            (g * delta * (1 - a**n) / (1 - a)) ** 2
            + g**2 * Rmm / B * (1 - a ** (2 * n)) / (1 - a**2)
        )
    ).sum(axis=(1, 2)) / (2 * K)
    got = mo.escaping_efficiency(strategy, A, net, mu, n_steps)
    np.testing.assert_allclose(got, ee, rtol=1e-10, atol=1e-14 * ee.max())


@pytest.mark.parametrize("strategy", ["centralized", "consensus", "diffusion", "local_sgd"])
def test_first_order_steady_state(strategy):
    """ER ≈ μ/(4KB) Tr R̄ and MSD ≈ μ/(2KB) Tr(H̄⁻¹R̄) with an O(μ) relative error."""
    K, B = 4, 2
    net = heterogeneous_network(K, 3, seed=5, batch_size=B)
    A = permutation_mixture(K, seed=9)
    Hb, Rb = net.aggregate_hessian, net.mean_noise_covariance
    errors = []
    for mu in (0.02, 0.005):
        ss = mo.steady_state(strategy, A, net, mu, local_steps=LOCAL_STEPS)
        er1 = mu / (4 * K * B) * np.trace(Rb)
        msd1 = mu / (2 * K * B) * np.trace(np.linalg.solve(Hb, Rb))
        errors.append((abs(ss.excess_risk / er1 - 1), abs(ss.msd / msd1 - 1)))
    (er_big, msd_big), (er_small, msd_small) = errors
    for big, small in ((er_big, er_small), (msd_big, msd_small)):
        assert small < 0.1  # the ratio tends to one
        assert 2 < big / small < 8  # linear in μ: a factor ≈ 4 for μ → μ/4


def test_independent_runs_do_not_reach_first_order():
    """Sanity for the previous test: without combination the heterogeneity bias is O(1)."""
    K, B = 4, 2
    net = heterogeneous_network(K, 3, seed=5, batch_size=B)
    mu = 0.005
    ss = mo.steady_state("independent", np.eye(K), net, mu)
    er1 = mu / (4 * K * B) * np.trace(net.mean_noise_covariance)
    assert ss.excess_risk > 10 * er1


# ---------------------------------------------------------------- escape ordering: a counterexample
def test_escape_ordering_fails_near_consensus_stability_limit():
    """Counterexample to the note's §4.2 claim that EE^con_n ≥ EE^dif_n held for all n.

    Ring of 4 (weights 1/3, eigenvalue λ = −1/3 on the alternating mode), H_k = 1, R_k = 0,
    d = (1, −1, 1, −1). Only the alternating mode is excited, so by §4.3
        EE^con_2 = ½ μ² (1 + λ − μ)²,   EE^dif_2 = ½ μ² λ² (1 + λ(1 − μ))².
    At μ = 0.6 (below the consensus limit 1 + λ = 2/3) consensus escapes *less* at n = 2.
    """
    A = ring_matrix(4)
    lam = -1.0 / 3.0
    net = QuadraticNetwork(
        np.ones((4, 1, 1)), np.array([[1.0], [-1.0], [1.0], [-1.0]]), np.zeros((4, 1, 1))
    )
    mu = 0.6
    assert mu < mo.stable_step_size_limit("consensus", A, net)
    con = mo.escaping_efficiency("consensus", A, net, mu, 2)
    dif = mo.escaping_efficiency("diffusion", A, net, mu, 2)
    np.testing.assert_allclose(con[1], 0.5 * mu**2 * (1 + lam - mu) ** 2, rtol=1e-12)
    np.testing.assert_allclose(dif[1], 0.5 * mu**2 * lam**2 * (1 + lam * (1 - mu)) ** 2, rtol=1e-12)
    assert con[0] >= dif[0]  # the one-step ordering of §4.1 does hold
    assert con[1] < 0.1 * dif[1]  # ... but not at n = 2


# ---------------------------------------------------------------- hypothesis properties
@st.composite
def symmetric_networks(draw, *, equal_hessians: bool):
    """(A, network): Metropolis weights of a random connected graph, made lazy at random."""
    K = draw(st.integers(2, 6))
    d = draw(st.integers(1, 3))
    adj = np.zeros((K, K), dtype=bool)
    for i in range(1, K):  # random spanning tree: connected
        j = draw(st.integers(0, i - 1))
        adj[i, j] = adj[j, i] = True
    for i in range(K):
        for j in range(i + 1, K):
            if draw(st.booleans()):
                adj[i, j] = adj[j, i] = True
    lazy = draw(st.sampled_from([0.0, 0.25, 0.5]))
    A = (1 - lazy) * metropolis_matrix(adj) + lazy * np.eye(K)
    seed = draw(st.integers(0, 2**32 - 1))
    noise = draw(st.sampled_from([0.0, 1e-3, 1.0]))
    grad = draw(st.sampled_from([0.0, 0.1, 1.0, 10.0]))
    if noise == 0.0 and grad == 0.0:
        grad = 1.0
    batch = draw(st.sampled_from([1, 100]))
    net = heterogeneous_network(
        K,
        d,
        seed=seed,
        equal_hessians=equal_hessians,
        gradient_scale=grad,
        noise_scale=noise,
        batch_size=batch,
    )
    if not equal_hessians:  # mix in a common part with a random heterogeneity level
        eta = draw(st.floats(0.0, 1.0))
        H = (1 - eta) * net.hessians[:1] + eta * net.hessians
        net = QuadraticNetwork(H, net.gradients_at_optimum, net.noise_covariances, batch)
    return A, net


def _limit(strategies, A, net, local_steps=LOCAL_STEPS):
    return min(mo.stable_step_size_limit(s, A, net, local_steps=local_steps) for s in strategies)


def _one_step_scale(net, mu):
    """μ² (mean ‖d_k‖² + mean Tr R_k / B): the size of one step's error, a round-off yardstick
    for quantities that vanish exactly (e.g. centralized with zero noise)."""
    d2 = (np.asarray(net.gradients_at_optimum) ** 2).sum(axis=1).mean()
    tr = np.trace(net.noise_covariances, axis1=1, axis2=2).mean() / net.batch_size
    return mu**2 * (d2 + tr)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(symmetric_networks(equal_hessians=True), st.floats(0.05, 0.9), st.integers(1, 4))
def test_property_modal_equals_dense(inst, frac, local_steps):
    A, net = inst
    mu = frac * _limit(STRATS, A, net, local_steps)
    for s in STRATS:
        kw = {"local_steps": local_steps}
        modal = mo.moments(s, A, net, mu, 20, method="modal", **kw)
        dense = mo.moments(s, A, net, mu, 20, method="dense", **kw)
        scale = _one_step_scale(net, mu)
        assert_reads_close(as_array(modal), as_array(dense), rtol=1e-10, scale=scale)
        ss_m = mo.steady_state(s, A, net, mu, method="modal", **kw)
        ss_d = mo.steady_state(s, A, net, mu, method="dense", **kw)
        assert_reads_close(as_steady(ss_m), as_steady(ss_d), rtol=1e-10, scale=scale)


@settings(max_examples=50, deadline=None, derandomize=True)
@given(symmetric_networks(equal_hessians=False), st.floats(0.01, 0.5))
def test_property_escape_ordering(inst, frac):
    """EE^con_n ≥ EE^dif_n ≥ EE^cen_n for n ≤ 20, for μ up to half the smallest stability
    limit (the ordering can fail closer to the limit; see the counterexample above)."""
    A, net = inst
    mu = frac * _limit(("centralized", "consensus", "diffusion"), A, net)
    ee = {
        s: mo.escaping_efficiency(s, A, net, mu, 20)
        for s in ("centralized", "consensus", "diffusion")
    }
    slack = 1e-12 * np.maximum.reduce(list(ee.values()))
    assert np.all(ee["consensus"] - ee["diffusion"] >= -slack)
    assert np.all(ee["diffusion"] - ee["centralized"] >= -slack)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(symmetric_networks(equal_hessians=False), st.floats(0.02, 0.95))
def test_property_msd_at_least_consensus_distance(inst, frac):
    A, net = inst
    for s in STRATS:
        mu = frac * mo.stable_step_size_limit(s, A, net, local_steps=LOCAL_STEPS)
        ss = mo.steady_state(s, A, net, mu, local_steps=LOCAL_STEPS)
        slack = 1e-12 * _one_step_scale(net, mu)
        assert ss.msd >= ss.consensus_distance - slack
        assert ss.consensus_distance >= -slack
        assert ss.excess_risk >= -slack


@settings(max_examples=30, deadline=None, derandomize=True)
@given(symmetric_networks(equal_hessians=False), st.floats(0.05, 0.9))
def test_property_identity_combination(inst, frac):
    """With A = I consensus and diffusion are both K independent SGD runs."""
    _, net = inst
    eye = np.eye(net.n_agents)
    # A = I is not a valid (connected) combination matrix: build the schedules unvalidated
    scheds = [
        make_schedule(s, eye, validate=False) for s in ("consensus", "diffusion", "independent")
    ]
    mu = frac * mo.stable_step_size_limit(scheds[2], None, net)
    for method in ("dense", "modal") if net.hessians_equal else ("dense",):
        runs = [as_array(mo.moments(s, None, net, mu, 20, method=method)) for s in scheds]
        np.testing.assert_allclose(runs[0], runs[1], rtol=1e-12, atol=0)
        np.testing.assert_allclose(runs[0], runs[2], rtol=1e-12, atol=0)
    ss = [as_steady(mo.steady_state(s, None, net, mu)) for s in scheds]
    np.testing.assert_allclose(ss[0], ss[1], rtol=1e-12, atol=0)
    np.testing.assert_allclose(ss[0], ss[2], rtol=1e-12, atol=0)
