"""Tests for numerics.local_sgd: the algorithms against plain loops on the same random stream,
K = 1 equivalence, common random numbers, chunking, AC-SA, divergence and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from numerics.errors import DivergenceError, InvalidInputError
from numerics.local_sgd import (
    TRIALS_PER_BLOCK,
    accelerated_minibatch_sgd,
    local_sgd,
    minibatch_sgd,
    run_algorithm,
    single_machine_sgd,
)
from numerics.local_sgd_instances import QuadraticOracle, glb_hom, shared_hessian
from numerics.simulate import block_generator


def _oracle(noise: float = 0.4, n_machines: int = 3) -> QuadraticOracle:
    """Heterogeneous non-diagonal quadratics with Gaussian noise."""
    rng = np.random.default_rng(7)
    hess = []
    for _ in range(n_machines):
        Q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
        hess.append((Q * rng.uniform(0.2, 1.0, 3)) @ Q.T)
    hess = np.array(hess)
    hess = 0.5 * (hess + np.swapaxes(hess, 1, 2))
    return QuadraticOracle(hess, rng.standard_normal((n_machines, 3)), noise)


def _draws(oracle, seed, experiment, n_trials, n_steps):
    """z[t, trial, m, :] exactly as the algorithms draw them (blocks of TRIALS_PER_BLOCK)."""
    n_blocks = -(-n_trials // TRIALS_PER_BLOCK)
    out = np.empty((n_steps, n_blocks * TRIALS_PER_BLOCK, oracle.n_machines, *oracle.noise_shape))
    for b in range(n_blocks):
        gen = block_generator(seed, experiment, b)
        for t in range(n_steps):
            oracle.draw(gen, out[t, b * TRIALS_PER_BLOCK : (b + 1) * TRIALS_PER_BLOCK])
    return out[:, :n_trials]


def _grad(oracle, x, z):
    """One machine-trial gradient by the formula, x (d,), z (d,) for machine m."""
    return oracle.hessians @ x - oracle.linear + oracle.noise_std * z  # (M, d) for all machines


def test_local_sgd_equals_plain_loop():
    o = _oracle()
    K, R, n, eta, beta = 3, 4, 5, 0.3, 1.5
    run = local_sgd(
        o,
        local_steps=K,
        rounds=R,
        step_size=eta,
        outer_step_size=beta,
        n_trials=n,
        seed=3,
        experiment="loop",
    )
    z = _draws(o, 3, "loop", n, K * R)
    for i in range(n):
        x = np.zeros(3)
        for r in range(R):
            ends = []
            for m in range(o.n_machines):
                y = x.copy()
                for k in range(K):
                    noise = o.noise_std * z[r * K + k, i, m]
                    y = y - eta * (o.hessians[m] @ y - o.linear[m] + noise)
                ends.append(y)
            x = x + beta * (np.mean(ends, axis=0) - x)
        np.testing.assert_allclose(run.final[0, i], x, rtol=1e-12, atol=1e-14)


def test_averaged_iterate_equals_plain_loop():
    o = _oracle()
    K, R, n, eta = 2, 3, 3, 0.2
    run = local_sgd(o, local_steps=K, rounds=R, step_size=eta, n_trials=n, seed=1, experiment="avg")
    z = _draws(o, 1, "avg", n, K * R)
    for i in range(n):
        x, acc = np.zeros(3), np.zeros(3)
        for r in range(R):
            ys = np.tile(x, (o.n_machines, 1))
            for k in range(K):
                ys = ys - eta * (
                    np.einsum("mij,mj->mi", o.hessians, ys)
                    - o.linear
                    + o.noise_std * z[r * K + k, i]
                )
                acc += ys.mean(axis=0)
            x = ys.mean(axis=0)
        np.testing.assert_allclose(run.averaged[0, i], acc / (K * R), rtol=1e-12, atol=1e-14)


def test_minibatch_and_single_machine_equal_plain_loops():
    o = _oracle()
    K, R, n, eta = 3, 4, 2, 0.25
    mb = minibatch_sgd(
        o, local_steps=K, rounds=R, step_size=eta, n_trials=n, seed=2, experiment="e"
    )
    sm = single_machine_sgd(
        o, local_steps=K, rounds=R, step_size=eta, n_trials=n, seed=2, experiment="e"
    )
    z = _draws(o, 2, "e", n, K * R)
    for i in range(n):
        x = np.zeros(3)
        for r in range(R):
            g = np.mean([_grad(o, x, z[r * K + k, i]) for k in range(K)], axis=(0, 1))
            x = x - eta * g
        np.testing.assert_allclose(mb.final[0, i], x, rtol=1e-12, atol=1e-14)
        y = np.zeros(3)
        for t in range(K * R):  # machine 0 only, its own samples of the shared stream
            y = y - eta * (o.hessians[0] @ y - o.linear[0] + o.noise_std * z[t, i, 0])
        np.testing.assert_allclose(sm.final[0, i], y, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("beta", [1.0, 0.5, 3.0])
def test_k1_local_sgd_is_minibatch_sgd(beta):
    for o in (_oracle(), glb_hom(7, 1, 20)):
        kw = {"local_steps": 1, "rounds": 20, "n_trials": 20, "seed": 5, "experiment": "k1"}
        loc = local_sgd(o, step_size=0.1, outer_step_size=beta, **kw)
        mb = minibatch_sgd(o, step_size=0.1 * beta, **kw)
        np.testing.assert_allclose(loc.final, mb.final, rtol=1e-12, atol=1e-13)
        if beta == 1.0:
            np.testing.assert_allclose(loc.averaged, mb.averaged, rtol=1e-12, atol=1e-13)


def test_step_size_grid_equals_scalar_runs_on_common_draws():
    o = _oracle()
    grid = np.array([0.05, 0.2, 0.4])
    run = local_sgd(o, local_steps=2, rounds=5, step_size=grid, n_trials=4, seed=9)
    for g, eta in enumerate(grid):
        one = local_sgd(o, local_steps=2, rounds=5, step_size=eta, n_trials=4, seed=9)
        np.testing.assert_array_equal(run.final[g], one.final[0])
    both = local_sgd(
        o, local_steps=2, rounds=5, step_size=grid, outer_step_size=[1, 2, 3], n_trials=2, seed=9
    )
    assert both.outer_step_size.tolist() == [1, 2, 3]


def test_chunking_and_trial_count_do_not_change_trials():
    o = glb_hom(50, 3, 10)
    big = local_sgd(o, local_steps=3, rounds=10, step_size=[0.1, 0.2], n_trials=40, seed=4)
    small = local_sgd(
        o,
        local_steps=3,
        rounds=10,
        step_size=[0.1, 0.2],
        n_trials=40,
        seed=4,
        memory_cap=2 * 8 * 2 * (3 * 50 + 2) * 2 * TRIALS_PER_BLOCK + 8 * 50 * TRIALS_PER_BLOCK * 2,
    )
    np.testing.assert_array_equal(big.final, small.final)
    fewer = local_sgd(o, local_steps=3, rounds=10, step_size=[0.1, 0.2], n_trials=7, seed=4)
    np.testing.assert_array_equal(big.final[:, :7], fewer.final)
    other = local_sgd(o, local_steps=3, rounds=10, step_size=[0.1, 0.2], n_trials=7, seed=5)
    assert not np.array_equal(other.final, fewer.final)
    other_exp = local_sgd(
        o, local_steps=3, rounds=10, step_size=[0.1, 0.2], n_trials=7, seed=4, experiment="another"
    )
    assert not np.array_equal(other_exp.final, fewer.final)


def test_common_random_numbers_across_algorithms():
    """Local SGD with K = 1 and minibatch SGD see the same samples; a different experiment
    name gives different samples."""
    o = _oracle()
    a = minibatch_sgd(o, local_steps=2, rounds=3, step_size=0.1, n_trials=3, seed=0, experiment="x")
    b = minibatch_sgd(o, local_steps=2, rounds=3, step_size=0.1, n_trials=3, seed=0, experiment="x")
    np.testing.assert_array_equal(a.final, b.final)


def test_accelerated_noiseless_rate_and_first_step():
    o = shared_hessian(4, 6, 0.0, seed=3, strong_convexity=1e-3)  # homogeneous, σ = 0
    H = o.smoothness
    R = 60
    acc = accelerated_minibatch_sgd(
        o, local_steps=2, rounds=R, step_size=1 / (2 * H), record_rounds=True
    )
    err = o.excess(acc.path[0, 0])
    t = np.arange(R + 1)
    dist2 = float(np.sum(o.optimum**2))
    assert np.all(err[1:] <= 4 * H * dist2 / (t[1:] + 1) ** 2 * (1 + 1e-12))
    gd = minibatch_sgd(o, local_steps=2, rounds=1, step_size=1 / (2 * H))
    np.testing.assert_allclose(acc.path[0, 0, 1], gd.final[0, 0], rtol=1e-13)
    # accelerated beats plain GD at the same step on an ill-conditioned problem
    plain = minibatch_sgd(o, local_steps=2, rounds=R, step_size=1 / (2 * H))
    assert o.excess(acc.final[0, 0]) < o.excess(plain.final[0, 0])
    sm = run_algorithm(
        "single_machine_accelerated_sgd", o, local_steps=2, rounds=R // 2, step_size=1 / (2 * H)
    )
    assert sm.algorithm == "single_machine_accelerated_sgd"
    np.testing.assert_allclose(sm.final, acc.final, rtol=1e-10)  # 60 AC-SA steps on ∇F either way


def test_divergence_raises_with_the_step_or_is_marked():
    o = _oracle(noise=0.0)
    H = o.smoothness
    with pytest.raises(DivergenceError, match="diverged") as info:
        local_sgd(o, local_steps=50, rounds=40, step_size=3.0 / H)
    assert info.value.step > 0 and info.value.step % 50 == 0
    run = local_sgd(o, local_steps=50, rounds=40, step_size=[0.1, 3.0 / H], on_divergence="mark")
    assert run.diverged_at[0] == 0 and run.diverged_at[1] > 0
    assert np.all(np.isfinite(run.final[0])) and np.all(np.isnan(run.final[1]))
    assert np.isinf(run.excess(o)[1]).all()
    with pytest.raises(DivergenceError):
        top = np.linalg.eigvalsh(o.mean_hessian)[-1]
        minibatch_sgd(o, local_steps=1, rounds=2000, step_size=3.0 / top)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"step_size": 0.0}, "step_size"),
        ({"step_size": -1.0}, "step_size"),
        ({"step_size": float("nan")}, "step_size"),
        ({"outer_step_size": 0.0}, "outer_step_size"),
        ({"outer_step_size": -2.0}, "outer_step_size"),
        ({"local_steps": 0}, "local_steps"),
        ({"rounds": 0}, "rounds"),
        ({"local_steps": 1.5}, "local_steps"),
        ({"n_trials": 0}, "n_trials"),
        ({"seed": -1}, "seed"),
        ({"step_size": [0.1, 0.2], "outer_step_size": [1, 2, 3]}, "equal lengths"),
        ({"step_size": [[0.1]]}, "1-D"),
        ({"initial_point": np.zeros(4)}, "initial_point"),
        ({"on_divergence": "ignore"}, "on_divergence"),
        ({"memory_cap": 10}, "memory_cap"),
    ],
)
def test_bad_input_is_named(kwargs, match):
    args = {"local_steps": 2, "rounds": 2, "step_size": 0.1} | kwargs
    with pytest.raises(InvalidInputError, match=match):
        local_sgd(_oracle(), **args)


def test_bad_oracle_and_algorithm_name():
    with pytest.raises(InvalidInputError, match="StochasticOracle"):
        local_sgd(object(), local_steps=1, rounds=1, step_size=0.1)
    with pytest.raises(InvalidInputError, match="StochasticOracle"):
        minibatch_sgd("oracle", local_steps=1, rounds=1, step_size=0.1)
    with pytest.raises(InvalidInputError, match="allowed"):
        run_algorithm("fedavg", _oracle(), local_steps=1, rounds=1, step_size=0.1)
    with pytest.raises(InvalidInputError, match="output"):
        local_sgd(_oracle(), local_steps=1, rounds=1, step_size=0.1).excess(_oracle(), "best")
