"""True SGD on logistic networks: the vectorised simulator against a plain loop on the same
random stream, special combination matrices, exact one-step moments, and bookkeeping."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from numerics import data
from numerics.errors import DivergenceError, InvalidInputError
from numerics.logistic import LogisticNetwork
from numerics.logistic_sgd import (
    _initial_states,
    _psd_factor,
    linearised_stationary,
    minibatch_rows,
    simulate_sgd,
)
from numerics.moments import moments, spectral_radius, steady_state
from numerics.strategies import STRATEGIES, averaging_matrix, make_schedule
from numerics.topology import combination_matrix
from numerics.topology import ring as ring_graph

ALPHA = 1e-3


def make_net(
    n_agents: int = 3, n_samples: int = 90, dim: int = 2, rho: float = 0.1, batch: int = 2
) -> LogisticNetwork:
    ds = data.synthetic(n_samples, dim, signal=1.5, seed=21)
    sp = data.split(ds.labels, n_agents, "label_skew", skew=0.2, seed=3)
    return LogisticNetwork.from_split(ds, sp, rho, batch)


@pytest.fixture(scope="module")
def net():
    return make_net()


def _plain_sgd(net, schedule, mu, rows, w0):
    """Reference: loops over trials, steps and agents, one sample at a time."""
    n_steps, K, T, B = rows.shape
    out = np.empty((T, K, net.dim))
    for t in range(T):
        W = np.array(w0[t], dtype=float)
        for n in range(n_steps):
            A1, A2 = schedule.at(n + 1)
            G = np.zeros_like(W)
            for k in range(K):
                for b in range(B):
                    i = rows[n, k, t, b]
                    z = net.labels[i] * net.features[i]
                    G[k] += -z / (1.0 + math.exp(z @ W[k])) / B
                G[k] += net.regularization * W[k]
            W = A2.T @ (A1.T @ W - mu * G)
        out[t] = W
    return out


def test_vectorised_matches_plain_loop(net, nonsymmetric_A):
    A = nonsymmetric_A(net.n_agents, seed=4)
    mu, n_steps, T = 0.3, 6, 7
    sim = simulate_sgd(
        STRATEGIES,
        A,
        net,
        mu,
        n_steps,
        T,
        burn_in=0,
        record_every=1,
        seed=9,
        experiment="plain",
        keep_final=True,
    )
    rows = minibatch_rows(net, 9, "plain", T, n_steps)
    # the rows of agent k lie in its own block of the data
    for k in range(net.n_agents):
        assert np.all((rows[:, k] >= net.offsets[k]) & (rows[:, k] < net.offsets[k + 1]))
    w0 = np.broadcast_to(net.optimum.weights, (T, net.n_agents, net.dim))
    for s in STRATEGIES:
        ref = _plain_sgd(net, make_schedule(s, A), mu, rows, w0)
        np.testing.assert_allclose(sim.final_states[s], ref, rtol=1e-12, atol=1e-14)


def test_full_averaging_diffusion_equals_centralized(net):
    J = averaging_matrix(net.n_agents)
    sim = simulate_sgd(
        ("centralized", "diffusion"),
        J,
        net,
        0.2,
        20,
        300,
        burn_in=0,
        record_every=5,
        keep_final=True,
    )
    np.testing.assert_allclose(
        sim.final_states["diffusion"], sim.final_states["centralized"], rtol=0, atol=1e-13
    )


def test_no_combination_consensus_equals_diffusion(net):
    eye = np.eye(net.n_agents)
    schedules = [make_schedule(s, eye, validate=False) for s in ("consensus", "diffusion")]
    sim = simulate_sgd(schedules, None, net, 0.2, 20, 260, burn_in=0, keep_final=True)
    np.testing.assert_allclose(
        sim.final_states["consensus"], sim.final_states["diffusion"], rtol=0, atol=1e-13
    )


def test_one_sample_per_agent_is_gradient_descent():
    # N_k = 1: every minibatch repeats agent k's sample, the stochastic gradient is exact, and
    # centralized SGD is gradient descent on J, which converges to w* from any start
    X = np.array([[1.0, 0.5], [-0.3, 1.0], [0.7, -1.0]])
    y = np.array([1.0, -1.0, -1.0])
    net = LogisticNetwork(X, y, np.array([0, 1, 2, 3]), 0.5, 3)
    A = averaging_matrix(3)
    sim = simulate_sgd(
        "centralized",
        A,
        net,
        0.5,
        400,
        5,
        burn_in=0,
        record_every=10,
        initial="random",
        keep_final=True,
    )
    np.testing.assert_allclose(
        sim.final_states["centralized"],
        np.broadcast_to(net.optimum.weights, (5, 3, 2)),
        atol=1e-10,
    )


def test_one_step_msd_is_exact(net, ring):
    # from w*, one step: E w̃_1 = μ A2ᵀ d and Cov w̃_1 = μ² A2ᵀ S A2 hold exactly for SGD with
    # minibatches drawn with replacement (unbiased gradients, covariance R_k/B), so the MSD
    # after one step equals the linearised model's; 3 strategies, family level 1e-3
    A = ring(net.n_agents)
    quad = net.linearised()
    mu = 0.4
    sim = simulate_sgd(STRATEGIES, A, net, mu, 1, 4000, burn_in=0, record_every=1, seed=2)
    z = scipy.stats.norm.isf(ALPHA / (2 * len(STRATEGIES)))
    for s in STRATEGIES:
        exact = moments(s, A, quad, mu, 1).msd[0]
        assert abs(sim[s].msd - exact) <= z * sim[s].msd_standard_error, s


def test_small_step_excess_risk_near_linearised_model():
    # ER_SGD = ER_lin + O(μ²): at μ = 0.02 the nonlinear correction is a few 0.1 % of ER;
    # 5 % (plus the Monte Carlo interval) only fails for an error in the dynamics or read-out
    net = make_net(n_agents=4, n_samples=200, dim=2, rho=0.5, batch=4)
    A = combination_matrix(ring_graph(4), "metropolis")
    mu = 0.02
    sim = simulate_sgd(STRATEGIES, A, net, mu, 2000, 250, seed=5, initial="stationary")
    z = scipy.stats.norm.isf(ALPHA / (2 * len(STRATEGIES)))
    for s in STRATEGIES:
        lin = steady_state(s, A, net.linearised(), mu).excess_risk
        assert abs(sim[s].excess_risk - lin) <= z * sim[s].standard_error + 0.05 * lin, s


def test_paired_differences_and_chunking(net, ring):
    A = ring(net.n_agents)
    kw = dict(burn_in=10, record_every=2, seed=1, experiment="chunks")
    big = simulate_sgd(STRATEGIES, A, net, 0.2, 30, 600, **kw)
    small = simulate_sgd(STRATEGIES, A, net, 0.2, 30, 600, memory_cap=1, **kw)  # block by block
    for s in STRATEGIES:
        assert small[s].excess_risk == pytest.approx(big[s].excess_risk, rel=1e-12)
        assert small[s].standard_error == pytest.approx(big[s].standard_error, rel=1e-9)
    for (a, b), m in big.difference_mean.items():
        assert m == pytest.approx(big[a].excess_risk - big[b].excess_risk, rel=1e-9, abs=1e-18)
    m, (lo, hi) = big.difference("diffusion", "consensus")
    assert m == -big.difference_mean["consensus", "diffusion"] and lo <= m <= hi
    # a strategy's numbers do not depend on which other strategies ran with it
    alone = simulate_sgd(["diffusion"], A, net, 0.2, 30, 600, **kw)
    assert alone["diffusion"].excess_risk == pytest.approx(big["diffusion"].excess_risk, rel=1e-12)


@pytest.mark.parametrize("initial", ["optimum", "stationary", "random"])
def test_a_trial_depends_only_on_seed_experiment_and_index(net, ring, initial):
    # trial t's draws come from block t // 250 alone: a run with fewer trials (not a multiple
    # of the block size) reproduces the first trials of a longer run (to round-off: matrix
    # products of other sizes may round differently)
    A = ring(net.n_agents)
    kw = dict(
        burn_in=0, record_every=3, seed=4, experiment="prefix", initial=initial, keep_final=True
    )
    long = simulate_sgd(STRATEGIES, A, net, 0.2, 12, 300, **kw)
    short = simulate_sgd(STRATEGIES, A, net, 0.2, 12, 57, **kw)
    for s in STRATEGIES:
        np.testing.assert_allclose(short.final_states[s], long.final_states[s][:57], rtol=1e-12)


def test_burn_in_from_the_slowest_mode(net, ring):
    A = ring(net.n_agents)
    mu = 0.3
    sim = simulate_sgd(STRATEGIES, A, net, mu, 10, 1, record_every=7, burn_in_factor=3.0)
    quad = net.linearised()
    rho = max(spectral_radius(s, A, quad, mu) for s in STRATEGIES)
    assert sim.relaxation_time == pytest.approx(1 / (1 - rho), rel=1e-12)
    expected = math.ceil(3.0 / (1 - rho))
    assert sim.burn_in == -(-expected // 7) * 7
    assert sim.recorded_steps[-1] == sim.burn_in + sim.averaging_steps


def test_linearised_stationary_law(net, ring):
    A = ring(net.n_agents)
    quad = net.linearised()
    K, d = net.n_agents, net.dim
    hess = np.kron(np.eye(K), quad.aggregate_hessian)
    for s in STRATEGIES:
        m, C = linearised_stationary(make_schedule(s, A), net, 0.3)
        er = 0.5 * (m @ hess @ m + np.sum(hess * C)) / K
        assert er == pytest.approx(steady_state(s, A, quad, 0.3).excess_risk, rel=1e-9)
        L = _psd_factor(C)
        np.testing.assert_allclose(L @ L.T, C, atol=1e-12 * np.abs(C).max())
    assert d == quad.dim


def test_stationary_start_draws_the_linearised_law(net, ring):
    # w_0 = w* − w̃ with w̃ ~ N(m, C): the sample mean of w* − w_0 over 2000 trials matches m
    # coordinate by coordinate (Bonferroni over K·d coordinates, family level 1e-3), and would
    # not with the sign of the error convention flipped
    from numerics.simulate import block_generator

    A = ring(net.n_agents)
    schedule = make_schedule("consensus", A)
    m, C = linearised_stationary(schedule, net, 0.4)
    T = 2000
    gens = [block_generator(0, "start", b) for b in range(T // 250)]
    (w0,) = _initial_states("stationary", 1, net, [(m, _psd_factor(C))], gens, 1.0, T)
    err = (net.optimum.weights[None, None, :] - w0).swapaxes(0, 1).reshape(T, -1)
    se = np.sqrt(np.diag(C) / T)
    z = scipy.stats.norm.isf(ALPHA / (2 * m.size))
    assert np.all(np.abs(err.mean(axis=0) - m) <= z * se)
    assert np.any(np.abs(-err.mean(axis=0) - m) > z * se)


def test_divergence_and_bad_input(net, ring):
    A = ring(net.n_agents)
    with pytest.raises(DivergenceError, match="diverged"):
        simulate_sgd("consensus", A, net, 1e6, 50, 10, burn_in=0, record_every=1)
    with pytest.raises(InvalidInputError, match="initial="):
        simulate_sgd("consensus", A, net, 0.1, 5, 2, initial="zero")
    with pytest.raises(InvalidInputError, match="distinct"):
        simulate_sgd(["consensus", "consensus"], A, net, 0.1, 5, 2)
    with pytest.raises(InvalidInputError, match="unstable"):
        simulate_sgd("consensus", A, net, 1e3, 5, 2)
