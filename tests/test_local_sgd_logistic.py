"""The logistic local SGD experiment: the oracle (unbiased, mixture law, F*), the algorithms at
equal budgets, K = 1 local SGD = minibatch SGD on this oracle, reproducibility, bad input, the
registered check (passes, and fails on a wrong prediction) and the figure's arrays."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

import numerics.checks.local_sgd_logistic as cl
from numerics.checks import get_check, load_all
from numerics.errors import InvalidInputError
from numerics.local_sgd import local_sgd, minibatch_sgd
from numerics.local_sgd_logistic import (
    ALGORITHMS,
    Grid,
    LogisticOracle,
    logistic_problem,
    ratio_interval,
    run_configuration,
    run_logistic_algorithm,
)
from numerics.logistic import LogisticNetwork

#: A reduced grid of the check (the same claims, seconds instead of the quick tier's ~20 s).
SMALL = {
    "datasets": "breast_cancer",
    "machines": "8",
    "local_steps": "16",
    "rounds": "1 2 4",
    "n_eval": 32,
}


@pytest.fixture(scope="module")
def oracle() -> LogisticOracle:
    return logistic_problem("breast_cancer", 4, 0.5, regularization=1e-2, seed=3)


def _exact_machine_gradients(o: LogisticOracle, x: np.ndarray) -> np.ndarray:
    """∇F_m(x) = E_{i∼D_m} ∇f(x; i), shape (M, d), from the machines' laws."""
    Z = o.signed_features
    g = -scipy.special.expit(-(Z @ x))[:, None] * Z + o.regularization * x
    return o.machine_weights() @ g


def test_gradient_unbiased(oracle):
    """Mean of 40 000 one-sample gradients per machine at a fixed x equals ∇F_m(x): z-test per
    coordinate and machine, Bonferroni over all of them at family level 1e-3."""
    o, rng = oracle, np.random.default_rng(0)
    x = 0.3 * rng.standard_normal(o.dim)
    n = 40_000
    idx = np.empty((n, o.n_machines, 1), dtype=np.int64)
    o.draw(np.random.default_rng(1), idx)
    g = o.gradient(
        np.broadcast_to(x, (n, o.n_machines, o.dim)), idx, np.empty((n, o.n_machines, o.dim))
    )
    exact = _exact_machine_gradients(o, x)
    se = g.std(axis=0, ddof=1) / np.sqrt(n)
    z = np.abs(g.mean(axis=0) - exact) / np.maximum(se, 1e-300)
    assert z.max() < scipy.stats.norm.isf(1e-3 / (2 * z.size))
    # the machines' laws average to the uniform law on the pool: (1/M) Σ ∇F_m = ∇F
    full = (-scipy.special.expit(-(o.signed_features @ x)) @ o.signed_features) / o.n_samples
    np.testing.assert_allclose(exact.mean(axis=0), full + o.regularization * x, atol=1e-13)


def test_mixture_law_extremes(oracle):
    idx = np.empty((64, oracle.n_machines, 3), dtype=np.int64)
    oracle.with_mixture(0.0).draw(np.random.default_rng(0), idx)
    for m in range(oracle.n_machines):
        assert np.isin(idx[:, m], oracle.shards[m]).all()  # p = 0: own shard only
    oracle.with_mixture(1.0).draw(np.random.default_rng(0), idx)
    assert not np.isin(idx[:, 0], oracle.shards[0]).all()  # p = 1: the whole pool
    W = oracle.machine_weights()
    np.testing.assert_allclose(W.sum(axis=1), 1.0)
    np.testing.assert_allclose(W.mean(axis=0), 1.0 / oracle.n_samples)  # same F for every p


def test_optimum_matches_numerics_logistic(oracle):
    o = oracle
    assert o.optimum.gradient_norm <= 1e-10
    net = LogisticNetwork(o.signed_features, np.ones(o.n_samples), [0, o.n_samples], 1e-2)
    np.testing.assert_allclose(o.optimum.weights, net.optimum.weights, atol=1e-8)
    assert abs(o.optimum.value - net.optimum.risk) < 1e-12
    assert o.excess(o.optimum.weights) == pytest.approx(0.0, abs=1e-15)
    assert o.with_mixture(0.0).optimum is o.optimum or "optimum" not in o.__dict__


def test_k1_local_sgd_is_minibatch_sgd(oracle):
    common = {"local_steps": 1, "rounds": 12, "n_trials": 20, "seed": 5, "experiment": "k1"}
    eta = np.array([0.05, 0.5, 2.0])
    loc = local_sgd(oracle, step_size=eta, record_rounds=True, **common)
    mb = minibatch_sgd(oracle, step_size=eta, record_rounds=True, **common)
    np.testing.assert_allclose(loc.path, mb.path, rtol=1e-12, atol=1e-14)
    thumb = run_logistic_algorithm(
        "thumb_twiddling_sgd",
        oracle,
        local_steps=7,
        rounds=12,
        step_size=eta,
        n_trials=20,
        seed=5,
        experiment="k1",
    )  # thumb-twiddling SGD = minibatch SGD with one sample per machine per round
    np.testing.assert_array_equal(thumb.path, mb.path)


class _Counting:
    """A StochasticOracle proxy counting the sample indices passed to ``gradient``."""

    def __init__(self, inner: LogisticOracle):
        self.inner, self.used = inner, 0
        for name in ("n_machines", "dim", "noise_shape", "noise_dtype"):
            setattr(self, name, getattr(inner, name))

    def draw(self, gen, out):
        self.inner.draw(gen, out)

    def gradient(self, x, noise, out):
        self.used += noise.size
        return self.inner.gradient(x, noise, out)

    def excess(self, x):
        return self.inner.excess(x)

    def restrict(self, n_machines):
        return _Counting(self.inner.restrict(n_machines))


@pytest.mark.parametrize("batch", [1, 3])
def test_equal_budgets(batch):
    o = logistic_problem("breast_cancer", 4, 0.5, regularization=1e-2, batch_size=batch)
    K, R, n = 5, 6, 16
    budget = {}
    for name in ALGORITHMS:
        c = _Counting(o)
        run_logistic_algorithm(
            name,
            c,
            local_steps=K,
            rounds=R,
            step_size=[0.1, 0.2],
            n_trials=n,
            seed=0,
            experiment="budget",
        )
        budget[name] = c.used / n
    M = o.n_machines
    assert budget == {
        "local_sgd": M * K * R * batch,
        "minibatch_sgd": M * K * R * batch,
        "thumb_twiddling_sgd": M * R * batch,
    }


def test_reproducible_and_chunking_free(oracle):
    kw = {"local_steps": 3, "rounds": 4, "step_size": [0.1, 1.0], "seed": 9, "experiment": "r"}
    a = run_logistic_algorithm("local_sgd", oracle, n_trials=40, **kw)
    b = run_logistic_algorithm("local_sgd", oracle, n_trials=40, memory_cap=160_000, **kw)
    c = run_logistic_algorithm("local_sgd", oracle, n_trials=17, **kw)
    np.testing.assert_array_equal(a.path, b.path)
    np.testing.assert_array_equal(a.path[:, :17], c.path)
    d = run_logistic_algorithm("local_sgd", oracle, n_trials=17, **(kw | {"seed": 10}))
    assert not np.allclose(c.path[:, :, -1], d.path[:, :, -1])
    cfg = {"local_steps": 4, "rounds": [2, 4, 8], "n_tune": 16, "n_eval": 16, "seed": 1}
    x = run_configuration(oracle, experiment="rep", **cfg)
    y = run_configuration(oracle, experiment="rep", **cfg)
    for name in ALGORITHMS:
        np.testing.assert_array_equal(x[name].errors, y[name].errors)
        np.testing.assert_array_equal(x[name].chosen, y[name].chosen)
        assert np.all(np.isfinite(x[name].errors)) and np.all(x[name].errors >= -1e-12)
    # tuning and evaluation trials differ (fresh seeds for the reported errors)
    r, lo, hi = ratio_interval(x["local_sgd"], x["minibatch_sgd"], 1e-3)
    assert np.all((lo <= r) & (r <= hi))


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: logistic_problem("mnist", 4, 0.5), ["data='mnist'", "allowed", "digits"]),
        (lambda: logistic_problem("digits", 4, 1.5), ["mixture", "1.5", "[0, 1]"]),
        (lambda: logistic_problem("digits", 0, 0.5), ["n_machines", "0", ">= 1"]),
        (lambda: logistic_problem("digits", 4, 0.5, regularization=-1), ["regularization", "-1"]),
        (
            lambda: Grid.from_params(
                {
                    "datasets": "synthetic",
                    "machines": "8",
                    "mixtures": "1",
                    "local_steps": "4",
                    "rounds": "2,x,8",
                }
            ),
            ["rounds", "'x'", "int"],
        ),
        (
            lambda: Grid.from_params(
                {
                    "datasets": "synthetic",
                    "machines": "8",
                    "mixtures": "1,2",
                    "local_steps": "4",
                    "rounds": "2,4,8",
                }
            ),
            ["mixtures", "2", "0 <= p <= 1"],
        ),
        (
            lambda: get_check("local-sgd-logistic").run(
                quick=True, overrides={"datasets": "cifar"}
            ),
            ["datasets", "'cifar'", "allowed", "breast_cancer"],
        ),
    ],
)
def test_bad_input(call, words):
    with pytest.raises(InvalidInputError) as err:
        call()
    for w in words:
        assert w in str(err.value), (w, str(err.value))


def test_bad_shards(oracle):
    Z = oracle.signed_features
    with pytest.raises(InvalidInputError, match="partition"):
        LogisticOracle(Z, oracle.shards[:, :-1], 0.5)
    with pytest.raises(InvalidInputError, match=r"mixture must lie in \[0, 1\]; got -0.1"):
        LogisticOracle(Z, oracle.shards, -0.1)


def test_bad_algorithm_and_step(oracle):
    with pytest.raises(InvalidInputError, match=r"algorithm='sgd'.*allowed: local_sgd"):
        run_logistic_algorithm(
            "sgd",
            oracle,
            local_steps=2,
            rounds=2,
            step_size=0.1,
            n_trials=1,
            seed=0,
            experiment="x",
        )
    with pytest.raises(InvalidInputError, match="step_size"):
        run_logistic_algorithm(
            "local_sgd",
            oracle,
            local_steps=2,
            rounds=2,
            step_size=-0.1,
            n_trials=1,
            seed=0,
            experiment="x",
        )


# ---- the check ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def recorded():
    """The check's rows on the reduced grid and the study it computed (recorded, so the
    failure and figure tests below replay it instead of recomputing)."""
    box = {}
    real = cl.run_grid

    def record(p, seed, experiment):
        box["study"] = real(p, seed, experiment)
        return box["study"]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cl, "run_grid", record)
        rows = get_check("local-sgd-logistic").run(quick=True, seed=0, overrides=SMALL)
    return rows, box["study"]


def _replay(study, swap: bool = False):
    """A stand-in for ``run_grid`` returning the recorded study (local and minibatch SGD
    swapped if ``swap``)."""

    def fake(p, seed, experiment):
        curves = {k: dict(v) for k, v in study["curves"].items()}
        if swap:
            for cur in curves.values():
                cur["local_sgd"], cur["minibatch_sgd"] = cur["minibatch_sgd"], cur["local_sgd"]
        return {**study, "curves": curves}

    return fake


def test_registered():
    check = load_all()["local-sgd-logistic"]
    assert check.tag == "M" and check.relation == "upper" and "§9" in check.source
    assert check.quick and set(check.quick) <= set(check.defaults)


def test_check_passes_reduced(recorded):
    small_rows = recorded[0]
    cases = [r.case for r in small_rows]
    assert any("local/minibatch" in c for c in cases)
    assert any("heterogeneity penalty" in c for c in cases)
    assert sum("slope in R" in c for c in cases) == 6
    for r in small_rows:
        assert r.verdict, (r.case, r.measured, r.ci, r.details)
        assert r.ci[0] <= r.measured <= r.ci[1] and r.details
    ratio = next(r for r in small_rows if "p = 1, K = 16: local/minibatch" in r.case)
    assert ratio.ci[1] < 1  # local SGD significantly better on breast cancer at p = 1, R = 4
    assert "ηH chosen" in ratio.details and "K* = σ²R/(H²B²)" in ratio.details


def test_check_passes_quick():
    """The quick tier itself (about 13 s on an idle machine)."""
    rows = get_check("local-sgd-logistic").run(quick=True, seed=0)
    assert len(rows) == 22
    for r in rows:
        assert r.verdict, (r.case, r.measured, r.ci, r.details)


def test_check_fails_on_a_wrong_ordering(recorded, monkeypatch):
    """Local and minibatch SGD swapped (local SGD now worse): the p = 1 ratio row must fail."""
    monkeypatch.setattr(cl, "run_grid", _replay(recorded[1], swap=True))
    rows = get_check("local-sgd-logistic").run(quick=True, seed=0, overrides=SMALL)
    verdicts = {r.case: r.verdict for r in rows}
    assert not verdicts["breast_cancer, M = 8, p = 1, K = 16: local/minibatch at R = 4"]
    assert all(v for c, v in verdicts.items() if "slope" in c)  # slopes are unaffected


def test_check_fails_on_a_wrong_allowance(recorded, monkeypatch):
    """Claiming heterogeneity *halves* local SGD's relative error must fail."""
    monkeypatch.setattr(cl, "run_grid", _replay(recorded[1]))
    monkeypatch.setattr(cl, "PENALTY_ALLOWANCE", 0.5)
    rows = get_check("local-sgd-logistic").run(quick=True, seed=0, overrides=SMALL)
    verdicts = {r.case: r.verdict for r in rows}
    assert not verdicts["breast_cancer, M = 8, K = 16: heterogeneity penalty p = 0 vs 1 at R = 4"]
    assert sum(not v for v in verdicts.values()) == 1


# ---- the figure ----------------------------------------------------------------------------
def test_figure_arrays(recorded, tmp_path, monkeypatch):
    from figures import FIGURES
    from figures import local_sgd_logistic as fl

    assert FIGURES["local_sgd_logistic"] == "figures.local_sgd_logistic"
    params = get_check("local-sgd-logistic").parameters(True, SMALL)
    monkeypatch.setattr(fl, "_params", lambda quick: params)
    monkeypatch.setattr(fl, "run_grid", _replay(recorded[1]))  # the figure's code, replayed data
    rec = fl.build(tmp_path, quick=True)
    d = rec.data
    np.testing.assert_array_equal(d["rounds"], [1, 2, 4])
    for mix in ("1", "0"):
        for alg in ALGORITHMS:
            key = f"breast_cancer_p{mix}_{alg}"
            assert d[key].shape == (3,)
            assert np.all(d[f"{key}_lo"] <= d[key]) and np.all(d[key] <= d[f"{key}_hi"])
            assert np.all(d[f"{key}_stepH"] > 0)
        assert np.all(d[f"breast_cancer_p{mix}_ratio"] > 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "local_sgd_logistic.pdf",
        "local_sgd_logistic.png",
    ]
    assert rec.claim and rec.command == "dlcheck figures local_sgd_logistic"
