"""The trade-off experiment: vectorized training against a plain loop, reproducibility and
common random numbers, paired intervals, the three registered checks (pass quick, fail on a
wrong prediction), and the scatter figure's arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
from numpy.testing import assert_allclose

import numerics.checks.tradeoff as ct
import numerics.tradeoff as tr
from numerics.checks import get_check
from numerics.errors import InvalidInputError
from numerics.simulate import block_generator

#: A tiny experiment: breast cancer, 4 agents, 4 hidden units, short runs.
TINY = {
    "data": "breast_cancer",
    "n_agents": 4,
    "hidden": 4,
    "step_size": 0.5,
    "batch_size": 4,
    "n_steps": 120,
    "seeds": 3,
    "probes": 4,
    "agent_probes": 2,
    "directions": 4,
    "lbfgs_iterations": 20,
}
STRATEGIES = ("centralized", "consensus", "diffusion")


@pytest.fixture(scope="module")
def tiny_problem():
    params = {**tr.TRADEOFF_DEFAULTS, **TINY}
    return params, tr.tradeoff_problem(params, 0, "test")


@pytest.fixture(scope="module")
def tiny_result():
    return tr.run_tradeoff(TINY, seed=0, experiment="test")


def test_holdout_is_stratified_disjoint_and_complete():
    y = np.array([-1.0] * 30 + [1.0] * 70)
    train, test = tr.holdout(y, 0.3, seed=1)
    assert np.intersect1d(train, test).size == 0
    assert np.union1d(train, test).size == 100
    assert np.sum(y[test] == -1) == 9 and np.sum(y[test] == 1) == 21
    with pytest.raises(InvalidInputError, match=r"test_fraction must lie in \(0, 1\); got 1.5"):
        tr.holdout(y, 1.5, seed=1)


def _loop_reference(problem, strategy, mu, B, n_steps, seeds, seed, experiment):
    """Plain per-seed, per-agent loop on the documented random stream (module docstring)."""
    mlp, K = problem.mlp, problem.sizes.size
    A = problem.A
    M1, M2 = {
        "centralized": (np.eye(K), np.full((K, K), 1.0 / K)),
        "consensus": (A, np.eye(K)),
        "diffusion": (np.eye(K), A),
    }[strategy]
    out = np.empty((seeds, K, mlp.dim))
    for s in range(seeds):
        theta0 = mlp.initial(block_generator(seed, f"{experiment}/init", s))
        gen = block_generator(seed, f"{experiment}/batches", s)
        u = gen.random((n_steps, K, B))  # one call: doubles are consumed one by one
        W = np.tile(theta0, (K, 1))
        for n in range(n_steps):
            grads = np.empty_like(W)
            for k in range(K):
                local = np.floor(u[n, k] * problem.sizes[k]).astype(int)
                grads[k] = mlp.gradient(W[k], problem.offsets[k] + local)
            psi = np.array([sum(M1[j, k] * W[j] for j in range(K)) for k in range(K)]) - mu * grads
            W = np.array([sum(M2[j, k] * psi[j] for j in range(K)) for k in range(K)])
        out[s] = W
    return out


def test_vectorized_training_equals_a_plain_loop(tiny_problem, monkeypatch):
    _, problem = tiny_problem
    monkeypatch.setattr(tr, "STEP_BLOCK", 7)  # draws in blocks: same stream as one call
    W, _ = tr.train(problem, STRATEGIES, 0.5, 3, 15, 2, seed=4, experiment="loop")
    assert W.shape == (3, 2, 4, problem.mlp.dim)
    for i, s in enumerate(STRATEGIES):
        ref = _loop_reference(problem, s, 0.5, 3, 15, 2, 4, "loop")
        assert_allclose(W[i], ref, rtol=1e-11, atol=1e-13)


def test_common_random_numbers_and_reproducibility(tiny_problem):
    _, problem = tiny_problem
    W1, t1 = tr.train(problem, STRATEGIES, 0.5, 4, 30, 3, seed=1, experiment="crn")
    W2, t2 = tr.train(
        problem, ("diffusion", "centralized"), 0.5, 4, 30, 3, seed=1, experiment="crn"
    )
    assert_allclose(t1, t2, rtol=0, atol=0)
    assert_allclose(W1[2], W2[0], rtol=0, atol=0)  # same draws whatever the list of strategies
    assert_allclose(W1[0], W2[1], rtol=0, atol=0)
    # seed s's numbers do not depend on the number of seeds
    W3, _ = tr.train(problem, STRATEGIES, 0.5, 4, 30, 2, seed=1, experiment="crn")
    assert_allclose(W3, W1[:, :2], rtol=0, atol=0)
    # different seeds differ; centralized agents stay identical (same start, full averaging)
    assert not np.allclose(t1[0], t1[1])
    assert np.ptp(W1[0], axis=1).max() < 1e-12


def test_run_is_reproducible_and_finite(tiny_result):
    again = tr.run_tradeoff(TINY, seed=0, experiment="test")
    for metric in tr.METRICS:
        arr = tiny_result.values[metric]
        assert arr.shape == (3, TINY["seeds"]) and np.all(np.isfinite(arr))
        assert_allclose(again.values[metric], arr, rtol=0, atol=0)
    assert np.all(tiny_result.values["excess_loss"] >= 0)
    assert tiny_result.reference_loss <= tiny_result.lbfgs_loss.min()
    other = tr.run_tradeoff(TINY, seed=1, experiment="test")
    assert not np.allclose(other.values["trace"], tiny_result.values["trace"])


def test_excess_loss_and_reference(tiny_result):
    v = tiny_result.values
    assert_allclose(v["excess_loss"], v["train_loss"] - tiny_result.reference_loss, rtol=1e-14)
    assert tiny_result.reference_loss == pytest.approx(
        min(tiny_result.lbfgs_loss.min(), v["train_loss"].min()), rel=1e-14
    )


def test_t_interval_and_paired_difference(tiny_result):
    x = np.array([1.0, 2.0, 4.0, 7.0])
    m, lo, hi = tr.t_interval(x, alpha=0.05)
    half = scipy.stats.t.isf(0.025, 3) * x.std(ddof=1) / 2
    assert (m, lo, hi) == pytest.approx((3.5, 3.5 - half, 3.5 + half), rel=1e-12)
    assert tr.t_interval(np.array([2.0]))[1] == -math.inf
    diff = tiny_result.paired("consensus", "diffusion", "trace", comparisons=6)
    d = tiny_result["consensus", "trace"] - tiny_result["diffusion", "trace"]
    assert diff.mean == pytest.approx(d.mean(), rel=1e-12)
    assert diff.ci == pytest.approx(tr.t_interval(d, comparisons=6)[1:], rel=1e-12)
    with pytest.raises(InvalidInputError, match="strategy 'local_sgd' was not run"):
        tiny_result.paired("local_sgd", "diffusion", "trace")
    with pytest.raises(InvalidInputError, match="metric='bogus' is not known"):
        tiny_result.paired("consensus", "diffusion", "bogus")
    assert "consensus" in tiny_result.table()


def test_bad_parameters_name_the_parameter():
    with pytest.raises(InvalidInputError, match="seeds must be an integer >= 1; got 0"):
        tr.run_tradeoff({**TINY, "seeds": 0})
    with pytest.raises(InvalidInputError, match="step_size must be a positive finite number"):
        tr.run_tradeoff({**TINY, "step_size": -0.1})
    with pytest.raises(InvalidInputError, match="strategy='gossip' is not known"):
        tr.run_tradeoff(TINY, strategies=("gossip",))


# ---- the checks -----------------------------------------------------------------------------
def test_registered_with_metadata():
    for name in ("flatness-estimators", "mlp-derivatives", "flatness-tradeoff"):
        check = get_check(name)
        assert check.claim and check.source and check.tag
    full = get_check("flatness-tradeoff").parameters(False)
    assert full["seeds"] >= 10
    assert get_check("flatness-tradeoff").parameters(True)["seeds"] < full["seeds"]


@pytest.mark.parametrize("name", ["flatness-estimators", "mlp-derivatives"])
def test_exact_checks_pass_quick(name):
    rows = get_check(name).run(quick=True, seed=0)
    assert rows and all(r.verdict for r in rows), [
        (r.case, r.details) for r in rows if not r.verdict
    ]
    for r in rows:
        assert r.seed == 0 and r.params and r.ci[0] <= r.ci[1]


def test_estimator_check_fails_on_a_biased_estimator(monkeypatch):
    real = ct.hutchinson_trace

    def biased(*args, **kwargs):
        est = real(*args, **kwargs)
        return type(est)(1.05 * est.mean, est.standard_error, est.n_samples)

    monkeypatch.setattr(ct, "hutchinson_trace", biased)
    rows = get_check("flatness-estimators").run(quick=True, seed=0)
    assert not next(
        r for r in rows if r.case.startswith("quadratic") and "Hutchinson" in r.case
    ).verdict


def test_derivative_check_fails_on_a_wrong_hvp(monkeypatch):
    from numerics.mlp import MLP

    real = MLP.hvp
    monkeypatch.setattr(MLP, "hvp", lambda self, t, v, rows=None: 1.001 * real(self, t, v, rows))
    rows = get_check("mlp-derivatives").run(quick=True, seed=0)
    bad = [r for r in rows if "Hessian-vector product" in r.case]
    assert bad and not any(r.verdict for r in bad)


def test_tradeoff_check_runs_and_returns_finite_rows():
    rows = get_check("flatness-tradeoff").run(quick=True, seed=0, overrides=TINY)
    assert len(rows) == len(ct.CLAIMS) == 6
    for r, (metric, a, b, relation, _) in zip(rows, ct.CLAIMS, strict=True):
        assert r.case.startswith(f"{metric}: {a} − {b} (") and r.relation == relation
        assert r.predicted == 0.0 and math.isfinite(r.measured)
        assert r.ci[0] <= r.measured <= r.ci[1]
        assert "seeds" in r.details


def _planted(values_by_strategy: dict[str, dict[str, np.ndarray]]) -> tr.TradeoffResult:
    metrics = {m: np.stack([values_by_strategy[s][m] for s in STRATEGIES]) for m in tr.METRICS}
    return tr.TradeoffResult(STRATEGIES, 8, metrics, 0.0, np.zeros(8), {}, "planted")


def test_tradeoff_check_fails_when_the_claim_is_contradicted(monkeypatch):
    """If consensus were clearly sharper, optimized better and were more accurate than
    diffusion, the rows of those claims must fail (the check is not vacuous)."""
    rng = np.random.default_rng(0)
    base = {m: 1.0 + 0.01 * rng.standard_normal(8) for m in tr.METRICS}
    shift = dict.fromkeys(("trace", "top_eigenvalue", "sharpness", "trace_agents"), 1.0)
    shift.update(excess_loss=-0.5, test_accuracy=0.3)
    values = {
        "centralized": base,
        "diffusion": base,
        "consensus": {
            m: base[m] + shift.get(m, 0.0) + 0.01 * rng.standard_normal(8) for m in tr.METRICS
        },
    }
    monkeypatch.setattr(ct, "run_tradeoff", lambda *a, **k: _planted(values))
    rows = get_check("flatness-tradeoff").run(quick=True, seed=0)
    verdicts = {r.case: r.verdict for r in rows}
    assert not verdicts["trace: consensus − diffusion (contradicted)"]
    assert not verdicts["excess_loss: consensus − diffusion (contradicted)"]
    assert not verdicts["test_accuracy: consensus − diffusion (contradicted)"]
    row = next(r for r in rows if r.case == "trace: consensus − diffusion (contradicted)")
    assert "CONTRADICTED" in row.details


def test_direction_text():
    assert ct.direction_text("upper", -2.0, -1.0).startswith("claimed direction SIGNIFICANT")
    assert "CONTRADICTED" in ct.direction_text("lower", -2.0, -1.0)
    assert ct.direction_text("lower", -1.0, 1.0) == "not significant either way"


# ---- the figure -----------------------------------------------------------------------------
def test_scatter_figure_arrays_and_files(tmp_path, monkeypatch):
    from figures import FIGURES
    from figures import tradeoff_scatter as fig

    assert FIGURES["tradeoff_scatter"] == "figures.tradeoff_scatter"
    monkeypatch.setattr(fig, "parameters", lambda quick: {**tr.TRADEOFF_DEFAULTS, **TINY})
    rec = fig.build(tmp_path, quick=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "tradeoff_scatter.pdf", "tradeoff_scatter.png"
    ]  # fmt: skip
    assert rec.claim and rec.command == "dlcheck figures tradeoff_scatter"
    result = tr.run_tradeoff(TINY, fig.SEED, fig.CHECK)  # the figure shows the check's numbers
    for s in STRATEGIES:
        assert_allclose(rec.data[f"trace_{s}"], result[s, "trace"], rtol=0, atol=0)
        assert_allclose(rec.data[f"test_accuracy_{s}"], result[s, "test_accuracy"], rtol=0, atol=0)
        m, lo, hi = rec.data[f"excess_loss_mean_{s}"]
        assert lo <= m <= hi
    assert rec.data["standardized_differences"].shape == (6, 2)
