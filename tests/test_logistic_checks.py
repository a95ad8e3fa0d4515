"""The logistic checks: they pass on small instances, they fail when a prediction is wrong,
and bad input (CSV, split, separable data) ends in one clear line with exit code 2."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import numerics.checks.logistic as lc
import theory.predict
from numerics.checks import get_check
from numerics.cli import main
from numerics.errors import InvalidInputError
from numerics.logistic_sgd import SGDSimulation

#: A small synthetic instance: 4 agents, 2 features, one trial block, short runs.
SMALL = {
    "data": "synthetic",
    "n_samples": 240,
    "dim": 2,
    "n_agents": 4,
    "batch_size": 4,
    "regularization": 0.3,
    "trials": 250,
    "averaging_relaxations": 6.0,
    "step_size_max": 0.4,
}


def test_registered_with_metadata():
    for name in ("logistic-excess-risk", "logistic-ordering", "logistic-optimum"):
        check = get_check(name)
        assert check.claim and check.source and check.tag
        assert {"data", "target", "split", "skew", "regularization"} <= set(check.defaults)
    # quick is the smaller tier
    er = get_check("logistic-excess-risk")
    assert er.parameters(True)["trials"] < er.parameters(False)["trials"]


def test_step_size_grid():
    np.testing.assert_allclose(lc.step_sizes(0.2, 3), [0.05, 0.1, 0.2])


def test_automatic_largest_step_size(ring):
    # Metropolis ring of K = 10 (weights 1/3): λ₂ = 1/3 + (2/3) cos(2π/10), so
    # μ_max = min(0.2, 2.5 (1 − λ₂)/h_max) with h_max the largest curvature of any agent
    from numerics.problems import QuadraticNetwork

    A = ring(10)
    gap = 1 - (1 / 3 + 2 / 3 * np.cos(2 * np.pi / 10))
    for h_max, expected in ((1.0, 0.2), (5.0, 2.5 * gap / 5.0)):
        H = np.repeat(np.diag([0.5, 1.0])[None], 10, axis=0)
        H[3] = np.diag([0.5, h_max])
        quad = QuadraticNetwork(H, np.zeros((10, 2)), np.repeat(np.eye(2)[None], 10, axis=0))
        assert lc.auto_step_size_max(A, quad) == pytest.approx(expected, rel=1e-12)


@pytest.fixture(scope="module")
def excess_rows():
    return get_check("logistic-excess-risk").run(quick=True, overrides=SMALL, seed=1)


def test_excess_risk_check_passes_on_a_small_instance(excess_rows):
    n_mu = get_check("logistic-excess-risk").parameters(True)["n_step_sizes"]
    assert len(excess_rows) == 3 * (2 + n_mu)
    failed = [(r.case, r.predicted, r.ci, r.details) for r in excess_rows if not r.verdict]
    assert not failed
    first = [r for r in excess_rows if "first order" in r.case]
    # c₁ = Tr(R̄)/(4KB), computed here from the linearised model directly
    _, net = lc.logistic_instance(
        get_check("logistic-excess-risk").parameters(True, SMALL), 1, "logistic-excess-risk"
    )
    quad = net.linearised()
    c1 = np.trace(quad.mean_noise_covariance) / (4 * quad.n_agents * quad.batch_size)
    for r in first:
        assert r.predicted == pytest.approx(c1, rel=1e-12)


def test_excess_risk_check_fails_for_a_wrong_first_order(monkeypatch):
    real = theory.predict.excess_risk

    def wrong(strategy, A, problem, step_size, *, order=None):
        value = real(strategy, A, problem, step_size, order=order)
        return 1.25 * value if order == 1 else value

    monkeypatch.setattr(theory.predict, "excess_risk", wrong)
    rows = get_check("logistic-excess-risk").run(quick=True, overrides=SMALL, seed=1)
    assert not any(r.verdict for r in rows if "first order" in r.case)


def test_excess_risk_check_fails_for_a_wrong_linearised_value(monkeypatch):
    real = lc.steady_state

    def wrong(strategy, A, problem, step_size, **kw):
        out = real(strategy, A, problem, step_size, **kw)
        return type(out)(1.2 * out.excess_risk, out.msd, out.consensus_distance, out.method)

    monkeypatch.setattr(lc, "steady_state", wrong)
    rows = get_check("logistic-excess-risk").run(quick=True, overrides=SMALL, seed=1)
    # a uniform 20 % error is first order in μ: the linearised model's small-μ limit no longer
    # matches the theory's first order ...
    assert not any(r.verdict for r in rows if "lim ER_lin/μ" in r.case)
    # ... while the first-order rows, which use the moment engine only as an intermediate
    # (lim ER_lin/μ + intercept of (ER_SGD − ER_lin)/μ), still measure SGD correctly
    assert all(r.verdict for r in rows if "first order" in r.case)


def test_ordering_check(monkeypatch):
    check = get_check("logistic-ordering")
    params = {**SMALL, "n_step_sizes": 1}
    rows = check.run(quick=True, overrides=params, seed=2)
    assert len(rows) == 2 and all(r.verdict for r in rows)
    assert all(r.measured > 0 and r.ci[0] > 0 for r in rows)  # label skew: clearly ordered

    def reversed_difference(self, first, second, **kw):
        m, (lo, hi) = real(self, first, second, **kw)
        return -m, (-hi, -lo)

    real = SGDSimulation.difference
    monkeypatch.setattr(SGDSimulation, "difference", reversed_difference)
    assert not any(r.verdict for r in check.run(quick=True, overrides=params, seed=2))


def test_optimum_check_on_a_csv(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((80, 3))
    y = np.where(x[:, 0] + 0.8 * rng.standard_normal(80) > 0, "pos", "neg")
    path = tmp_path / "mine.csv"
    lines = ["f1,f2,f3,label"] + [f"{a},{b},{c},{t}" for (a, b, c), t in zip(x, y, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    rows = get_check("logistic-optimum").run(
        overrides={"data": str(path), "target": "label", "n_agents": 4}, seed=0
    )
    assert [r.case for r in rows] == ["csv: ‖∇J(w*)‖", "csv: ‖w_cvxpy − w*‖"]
    assert all(r.verdict for r in rows)


def test_separable_data_without_regularization_is_reported():
    with pytest.raises(InvalidInputError, match=r"separable.*regularization > 0"):
        get_check("logistic-optimum").run(
            overrides={"data": "breast_cancer", "regularization": 0.0}, seed=0
        )


@pytest.mark.parametrize(
    ("sets", "fragment"),
    [
        (["data=/no/such/file.csv", "target=y"], "does not exist"),
        (["data=breast_cancer", "split=dirichlet", "alpha=0.01", "n_agents=40"], "agent"),
        (["data=breast_cancer", "split=zigzag"], "allowed: iid, label_skew, dirichlet"),
        (["data=mnist"], "not known; allowed: synthetic, breast_cancer, digits"),
    ],
)
def test_bad_input_one_line_exit_2(capsys, sets, fragment):
    argv = ["check", "logistic-optimum", "--quiet", "--no-cache"]
    for s in sets:
        argv += ["--set", s]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and "\n" not in err and "Traceback" not in err


# ---- the figure -----------------------------------------------------------------------------
def test_figure_arrays(tmp_path, monkeypatch):
    import figures.logistic_excess_risk as fig

    monkeypatch.setitem(fig.STEP_SIZES, True, (0.1, 0.2))
    monkeypatch.setitem(fig.SKEWS, True, (0.0, 1.0))
    monkeypatch.setitem(fig.TRIALS, True, 60)
    monkeypatch.setitem(fig.RELAXATIONS, True, 2.0)
    rec = fig.build(tmp_path, quick=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "logistic_excess_risk.pdf",
        "logistic_excess_risk.png",
    ]
    d = rec.data
    np.testing.assert_array_equal(d["mu"], [0.1, 0.2])
    # the lines are the moment engine's values and the first-order line is μ Tr(R̄)/(4KB),
    # recomputed here on the figure's instance
    A, net = lc.logistic_instance({**fig.PARAMS, "skew": 0.0}, fig.SEED, fig.EXPERIMENT)
    quad = net.linearised()
    c1 = np.trace(quad.mean_noise_covariance) / (4 * quad.n_agents * quad.batch_size)
    np.testing.assert_allclose(d["first_mu"], c1 * d["mu"], rtol=1e-12)
    for s in ("centralized", "consensus", "diffusion"):
        with threadpool_limits(1):  # 310×310 Lyapunov solves: 2 BLAS threads are 100× slower
            exact = [lc.steady_state(s, A, quad, mu).excess_risk for mu in d["mu"]]
        np.testing.assert_allclose(d["lin_mu_" + s], exact, rtol=1e-12)
        for tag in ("mu", "p"):
            assert np.all(d[f"lo_{tag}_{s}"] < d[f"sgd_{tag}_{s}"])
            assert np.all(d[f"sgd_{tag}_{s}"] < d[f"hi_{tag}_{s}"])
    # label skew p = 0 is the most heterogeneous split: consensus pays most for it
    assert d["lin_p_consensus"][0] > d["lin_p_consensus"][-1]
    assert "holds" in rec.claim
