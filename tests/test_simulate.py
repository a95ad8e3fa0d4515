"""Tests for numerics.simulate: exactness against a plain loop, reproducibility contract,
Monte Carlo agreement with the exact moments, and input validation."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from conftest import heterogeneous_network, permutation_mixture

from numerics import moments as mo
from numerics.errors import DivergenceError, InvalidInputError
from numerics.problems import QuadraticNetwork
from numerics.simulate import (
    BLOCK_SIZE,
    block_generator,
    bytes_per_block,
    simulate,
    standard_normal_draws,
)
from numerics.stats import mean_interval

QS = ("ee", "msd", "cd")
ALL = ("centralized", "consensus", "diffusion", "independent", "local_sgd")


def table_pairs(strategy: str, A: np.ndarray, local_steps: int):
    K = A.shape[0]
    eye, J = np.eye(K), np.ones((K, K)) / K
    return {
        "centralized": [(eye, J)],
        "consensus": [(A, eye)],
        "diffusion": [(eye, A)],
        "independent": [(eye, eye)],
        "local_sgd": [(eye, eye)] * (local_steps - 1) + [(eye, J)],
    }[strategy]


def loop_reference(pairs, net: QuadraticNetwork, mu: float, z: np.ndarray, w0=None):
    """Plain per-trial, per-agent loop of w_k ← Σ_l a2_lk (Σ_j a1_jl w_j − μ H_l w_l + μ d_l
    + μ L_l z_l), with L_l the symmetric square root of R_l / B (scipy.linalg.sqrtm)."""
    n_steps, n_trials, K, d = z.shape
    H, g = np.asarray(net.hessians), np.asarray(net.gradients_at_optimum)
    L = [
        np.real(scipy.linalg.sqrtm(R / net.batch_size)) if R.any() else np.zeros((d, d))
        for R in np.asarray(net.noise_covariances)
    ]
    Hbar = H.mean(axis=0)
    W = np.zeros((n_trials, K, d))
    if w0 is not None:
        W[:] = w0
    reads = {q: np.zeros((n_steps, n_trials)) for q in QS}
    for n in range(n_steps):
        A1, A2 = pairs[n % len(pairs)]
        for t in range(n_trials):
            phi = [
                sum(A1[j, k] * W[t, j] for j in range(K))
                - mu * H[k] @ W[t, k]
                + mu * g[k]
                + mu * L[k] @ z[n, t, k]
                for k in range(K)
            ]
            W[t] = [sum(A2[j, k] * phi[j] for j in range(K)) for k in range(K)]
            centroid = W[t].mean(axis=0)
            reads["ee"][n, t] = sum(0.5 * W[t, k] @ Hbar @ W[t, k] for k in range(K)) / K
            reads["msd"][n, t] = sum(W[t, k] @ W[t, k] for k in range(K)) / K
            reads["cd"][n, t] = (
                sum((W[t, k] - centroid) @ (W[t, k] - centroid) for k in range(K)) / K
            )
    return W, reads


@pytest.fixture(scope="module")
def small():
    """K = 3, d = 2 heterogeneous network and a non-symmetric doubly-stochastic A."""
    return heterogeneous_network(3, 2, seed=11, batch_size=2), permutation_mixture(3, seed=5)


# ---------------------------------------------------------------- exactness
@pytest.mark.parametrize(("n_trials", "strategies"), [(7, ALL), (253, ("consensus", "local_sgd"))])
def test_simulator_matches_plain_loop(small, n_trials, strategies):
    assert n_trials % BLOCK_SIZE != 0
    net, A = small
    mu, n_steps, seed, exp = 0.3, 12, 42, "loop-check"
    w0 = np.array([[0.5, -1.0], [0.2, 0.3], [-0.7, 0.1]])
    sim = simulate(
        strategies,
        A,
        net,
        mu,
        n_steps,
        n_trials,
        seed=seed,
        experiment=exp,
        initial_error=w0,
        local_steps=3,
        keep_final=True,
    )
    z = standard_normal_draws(seed, exp, n_trials, n_steps, 3, 2)
    assert z.shape == (n_steps, n_trials, 3, 2)
    refs = {}
    for s in strategies:
        W, reads = loop_reference(table_pairs(s, A, 3), net, mu, z, w0)
        refs[s] = reads
        mc = sim[s]
        assert mc.n_trials == n_trials and mc.final_errors.shape == (n_trials, 3, 2)
        np.testing.assert_allclose(mc.final_errors, W, rtol=1e-12, atol=1e-12)
        for q in QS:
            scale = reads["msd"].mean(axis=1).max()
            np.testing.assert_allclose(
                mc.mean[q],
                reads[q].mean(axis=1),
                rtol=1e-12,
                atol=1e-13 * scale,
                err_msg=f"{s} {q}",
            )
            se = reads[q].std(axis=1, ddof=1) / np.sqrt(n_trials)
            np.testing.assert_allclose(
                mc.standard_error[q], se, rtol=1e-9, atol=1e-12 * scale, err_msg=f"{s} {q}"
            )
        np.testing.assert_array_equal(mc.escaping_efficiency, mc.mean["ee"])
    a, b = strategies[0], strategies[1]
    diff = refs[a]["ee"] - refs[b]["ee"]
    np.testing.assert_allclose(
        sim.difference_mean[a, b],
        diff.mean(axis=1),
        rtol=1e-10,
        atol=1e-13 * np.abs(refs[a]["ee"]).max(),
    )
    np.testing.assert_allclose(
        sim.difference_standard_error[a, b], diff.std(axis=1, ddof=1) / np.sqrt(n_trials), rtol=1e-9
    )


def test_standard_normal_draws_are_the_block_streams():
    z = standard_normal_draws(3, "e", BLOCK_SIZE + 5, 2, 2, 3)
    gen0, gen1 = block_generator(3, "e", 0), block_generator(3, "e", 1)
    first0, first1 = (
        gen0.standard_normal((2, BLOCK_SIZE, 3)),
        gen1.standard_normal((2, BLOCK_SIZE, 3)),
    )
    np.testing.assert_array_equal(z[0, :BLOCK_SIZE], first0.transpose(1, 0, 2))
    np.testing.assert_array_equal(z[0, BLOCK_SIZE:], first1.transpose(1, 0, 2)[:5])
    # prefix property: more trials do not change the first ones
    np.testing.assert_array_equal(
        standard_normal_draws(3, "e", 600, 2, 2, 3)[:, : BLOCK_SIZE + 5], z
    )


# ---------------------------------------------------------------- reproducibility contract
def _assert_same(r1, r2, exact_final=True):
    for q in QS:
        np.testing.assert_allclose(r1.mean[q], r2.mean[q], rtol=1e-14, atol=0)
        np.testing.assert_allclose(
            r1.standard_error[q], r2.standard_error[q], rtol=1e-12, atol=1e-300
        )
    if exact_final:
        np.testing.assert_array_equal(r1.final_errors, r2.final_errors)


def test_memory_cap_does_not_change_results(small):
    net, A = small
    strategies = ["consensus", "diffusion"]
    per_block = bytes_per_block(net.n_agents, net.dim, len(strategies))
    runs = [
        simulate(strategies, A, net, 0.2, 15, 1100, seed=1, memory_cap=cap, keep_final=True)
        for cap in (per_block, 2 * per_block + 1, 3 * per_block, 1 << 30)
    ]
    for other in runs[1:]:
        for s in strategies:
            _assert_same(runs[0][s], other[s])
        np.testing.assert_allclose(
            runs[0].difference_mean["consensus", "diffusion"],
            other.difference_mean["consensus", "diffusion"],
            rtol=1e-14,
            atol=0,
        )
    with pytest.raises(InvalidInputError, match=rf"memory_cap={per_block - 1} bytes is below"):
        simulate(strategies, A, net, 0.2, 15, 1100, memory_cap=per_block - 1)


def test_trial_results_do_not_depend_on_n_trials(small):
    net, A = small
    r300 = simulate(["diffusion"], A, net, 0.2, 10, 300, seed=7, keep_final=True)
    r600 = simulate(["diffusion"], A, net, 0.2, 10, 600, seed=7, keep_final=True)
    np.testing.assert_array_equal(
        r600["diffusion"].final_errors[:300], r300["diffusion"].final_errors
    )
    assert not np.array_equal(
        r600["diffusion"].final_errors[300:], r600["diffusion"].final_errors[:300]
    )


def test_common_random_numbers_across_strategy_lists(small):
    net, A = small
    kw = {
        "seed": 3,
        "experiment": "crn",
        "keep_final": True,
        "local_steps": 2,
        "memory_cap": 1 << 22,
    }
    together = simulate(["consensus", "diffusion", "local_sgd"], A, net, 0.25, 12, 520, **kw)
    reverse = simulate(["local_sgd", "diffusion", "consensus"], A, net, 0.25, 12, 520, **kw)
    for s in ("consensus", "diffusion", "local_sgd"):
        alone = simulate([s], A, net, 0.25, 12, 520, **kw)
        _assert_same(together[s], alone[s])
        _assert_same(together[s], reverse[s])
    np.testing.assert_allclose(
        reverse.difference_mean["diffusion", "consensus"],
        -together.difference_mean["consensus", "diffusion"],
        rtol=1e-12,
        atol=0,
    )
    # a single strategy name (not a list) is accepted
    single = simulate("consensus", A, net, 0.25, 12, 520, **kw)
    _assert_same(single["consensus"], together["consensus"])


def test_experiment_and_seed_key_the_draws(small):
    net, A = small

    def run(**kw):
        return simulate(["consensus"], A, net, 0.2, 5, 40, keep_final=True, **kw)["consensus"]

    base = run(seed=1, experiment="a")
    np.testing.assert_array_equal(run(seed=1, experiment="a").final_errors, base.final_errors)
    for other in (run(seed=1, experiment="b"), run(seed=2, experiment="a")):
        diff = np.abs(other.final_errors - base.final_errors)
        assert np.all(diff > 0)


# ---------------------------------------------------------------- Monte Carlo vs exact moments
def test_monte_carlo_matches_exact_moments():
    """Every per-step EE, MSD and CD mean, and the paired EE differences, fall in their
    Bonferroni intervals (family-wise false-failure rate 1e-3)."""
    K, d = 4, 3
    net = heterogeneous_network(K, d, seed=21, batch_size=2, gradient_scale=0.7)
    A = permutation_mixture(K, seed=8)
    mu, n_steps, n_trials = 0.3, 30, 6000
    w0 = np.random.default_rng(0).standard_normal((K, d)) * 0.5
    strategies = ["centralized", "consensus", "diffusion", "local_sgd"]
    sim = simulate(
        strategies,
        A,
        net,
        mu,
        n_steps,
        n_trials,
        seed=2024,
        experiment="mc-exact",
        initial_error=w0,
        local_steps=3,
    )
    exact = {
        s: mo.moments(s, A, net, mu, n_steps, initial_error=w0, local_steps=3) for s in strategies
    }
    checks = []
    for s in strategies:
        ex = {
            "ee": exact[s].escaping_efficiency,
            "msd": exact[s].msd,
            "cd": exact[s].consensus_distance,
        }
        for q in QS:
            if s == "centralized" and q == "cd":  # identically zero after step 1
                assert np.all(np.abs(sim[s].mean[q]) < 1e-25)
                continue
            checks.append((sim[s], q, ex[q]))
    pairs = [(a, b) for i, a in enumerate(strategies) for b in strategies[i + 1 :]]
    m = len(checks) * n_steps + len(pairs) * n_steps
    for mc, q, ex in checks:
        lo, hi = mc.interval(q, alpha=1e-3, comparisons=m)
        # local SGD's CD is exactly 0 after each averaging step; allow for round-off there
        slack = 1e-12 * np.abs(ex).max()
        assert np.all((lo - slack <= ex) & (ex <= hi + slack)), (mc.strategy, q)
    for a, b in pairs:
        true = exact[a].escaping_efficiency - exact[b].escaping_efficiency
        lo, hi = mean_interval(
            sim.difference_mean[a, b],
            sim.difference_standard_error[a, b],
            alpha=1e-3,
            comparisons=m,
        )
        assert np.all((lo <= true) & (true <= hi)), (a, b)
    # common random numbers make paired differences more precise than unpaired ones
    unpaired = np.hypot(
        sim["consensus"].standard_error["ee"], sim["diffusion"].standard_error["ee"]
    )
    assert np.all(sim.difference_standard_error["consensus", "diffusion"] < unpaired)


def test_zero_noise_is_deterministic():
    K, d = 3, 2
    base = heterogeneous_network(K, d, seed=4, gradient_scale=1.5)
    net = QuadraticNetwork(base.hessians, base.gradients_at_optimum, np.zeros((K, d, d)))
    A = permutation_mixture(K, seed=2)
    w0 = np.array([[0.3, -0.2], [1.0, 0.4], [-0.5, 0.9]])
    mu, n_steps = 0.35, 15
    sim = simulate(list(ALL), A, net, mu, n_steps, 300, seed=9, initial_error=w0, local_steps=2)
    z = np.zeros((n_steps, 1, K, d))
    for s in ALL:
        _, reads = loop_reference(table_pairs(s, A, 2), net, mu, z, w0)
        for q in QS:
            np.testing.assert_array_equal(sim[s].standard_error[q], 0.0)
            scale = reads["msd"].max()
            np.testing.assert_allclose(
                sim[s].mean[q], reads[q][:, 0], rtol=1e-12, atol=1e-14 * scale, err_msg=f"{s} {q}"
            )
        ex = mo.moments(s, A, net, mu, n_steps, initial_error=w0, local_steps=2)
        np.testing.assert_allclose(sim[s].mean["ee"], ex.escaping_efficiency, rtol=1e-12)
    for se in sim.difference_standard_error.values():
        np.testing.assert_array_equal(se, 0.0)


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize("bad", [np.ones(3), np.ones((4, 2)), np.ones((3, 2, 1)), np.ones((2, 3))])
def test_rejects_bad_initial_error(small, bad):
    net, A = small
    with pytest.raises(InvalidInputError, match=r"initial_error must have shape \(2,\) or"):
        simulate(["consensus"], A, net, 0.1, 3, 10, initial_error=bad)


def test_accepts_broadcastable_initial_error(small):
    net, A = small
    r = simulate(["consensus"], A, net, 0.1, 2, 5, initial_error=np.ones((1, 2)), keep_final=True)
    assert r["consensus"].final_errors.shape == (5, 3, 2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"step_size": 0.0}, r"step_size must be a positive"),
        ({"step_size": -1.0}, r"step_size must be a positive"),
        ({"n_steps": 0}, r"n_steps must be an integer"),
        ({"n_trials": 0}, r"n_trials must be an integer"),
        ({"seed": -1}, r"seed must be an integer >= 0"),
        ({"n_trials": 10.0}, r"n_trials must be an integer"),
        ({"memory_cap": 0}, r"memory_cap must be an integer"),
        ({"memory_cap": 10}, r"memory_cap=10 bytes is below"),
        ({"strategies": ["consensus", "consensus"]}, r"strategies must be distinct"),
        ({"strategies": ["local_sgd"]}, r"local_sgd needs local_steps"),
        ({"strategies": ["gossip"]}, r"strategy='gossip' is not known"),
        ({"A": permutation_mixture(4)}, r"A is 4×4 but the problem has 3 agents"),
        ({"problem": "net"}, r"problem must be a QuadraticNetwork"),
    ],
)
def test_rejects_bad_arguments(small, kwargs, match):
    net, A = small
    args = {
        "strategies": ["consensus"],
        "A": A,
        "problem": net,
        "step_size": 0.1,
        "n_steps": 3,
        "n_trials": 10,
    }
    args.update(kwargs)
    with pytest.raises(InvalidInputError, match=match):
        simulate(**args)


@pytest.mark.parametrize("strategy", ["centralized", "diffusion"])
def test_divergence_is_reported_with_its_step(small, strategy):
    net, A = small
    mu = 12.0 / np.linalg.eigvalsh(net.hessians).max()  # far outside the stable range
    with np.errstate(over="ignore", invalid="ignore"):
        with pytest.raises(DivergenceError, match=rf"Monte Carlo of {strategy}") as info:
            simulate([strategy], A, net, mu, 2000, 20)
        step = info.value.step
        assert isinstance(step, int) and 1 < step < 2000
        assert isinstance(info.value, FloatingPointError)
        assert f"diverged (NaN or inf) at step {step}" in str(info.value)
        # the reported step is the first one at which the run is not finite
        simulate([strategy], A, net, mu, step - 1, 20)
