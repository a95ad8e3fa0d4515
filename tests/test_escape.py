"""Tests for the escape Monte Carlo and its checks: wiring against ``simulate``, seeds, common
random numbers, chunking, intervals, errors, and that the checks pass quick and can fail."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from numpy.testing import assert_allclose

import numerics.checks.escape as ce
from numerics.checks import get_check, load_all
from numerics.errors import DivergenceError, InvalidInputError
from numerics.escape import EscapeResult, clopper_pearson, simulate_escape
from numerics.landscapes import two_well_network
from numerics.simulate import BLOCK_SIZE, simulate

STRATEGIES = ("centralized", "consensus", "diffusion")


@pytest.fixture(scope="module")
def A(ring):
    return ring(6)


@pytest.fixture(scope="module")
def net():
    return two_well_network(6, shift=0.08, noise_level=20.0, noise_heterogeneity=0.5, seed=2)


def test_matches_simulate_on_the_local_quadratic(A):
    """Tiny excursions in a deep sharp well: the landscape run is the quadratic run of
    ``simulate`` on the same draws (same noise stream, schedule and sign conventions)."""
    deep = two_well_network(6, shift=0.002, noise_level=0.5, noise_heterogeneity=0.5, seed=4,
                            sharp_depth=50.0, flat_depth=50.0)  # fmt: skip
    mu, N, trials = 2e-4, 15, BLOCK_SIZE + 10
    esc = simulate_escape(STRATEGIES, A, deep, mu, N, trials, seed=5, experiment="wiring")
    quad = simulate(STRATEGIES, A, deep.local_network(), mu, N, trials, seed=5,
                    experiment="wiring")  # fmt: skip
    for s in STRATEGIES:
        assert_allclose(esc[s].ee_mean, quad[s].mean["ee"], rtol=2e-4)
    other = simulate(STRATEGIES, A, deep.local_network(), mu, N, trials, seed=6,
                     experiment="wiring")  # fmt: skip
    assert not np.allclose(esc["consensus"].ee_mean, other["consensus"].mean["ee"], rtol=2e-4)


def test_reproducible_crn_and_chunk_independent(A, net):
    kw = {"seed": 3, "experiment": "crn"}
    mu, N, trials = 0.01, 300, 2 * BLOCK_SIZE + 7
    one = simulate_escape(STRATEGIES, A, net, mu, N, trials, **kw)
    again = simulate_escape(STRATEGIES, A, net, mu, N, trials, **kw)
    small = simulate_escape(STRATEGIES, A, net, mu, N, trials, memory_cap=300_000, **kw)
    alone = simulate_escape(["consensus"], A, net, mu, N, trials, **kw)
    fewer = simulate_escape(STRATEGIES, A, net, mu, N, BLOCK_SIZE, **kw)
    for s in STRATEGIES:
        assert np.array_equal(one[s].exit_times, again[s].exit_times)
        assert np.array_equal(one[s].exit_times, small[s].exit_times)
        assert_allclose(one[s].ee_mean, small[s].ee_mean, rtol=1e-12)
        assert np.array_equal(one[s].exit_times[:BLOCK_SIZE], fewer[s].exit_times)
    assert np.array_equal(one["consensus"].exit_times, alone["consensus"].exit_times)
    assert 0 < one["consensus"].exited_by().mean() < 1  # the regime is not degenerate
    other = simulate_escape(STRATEGIES, A, net, mu, N, trials, seed=4, experiment="crn")
    assert not np.array_equal(one["consensus"].exit_times, other["consensus"].exit_times)


def test_criteria_are_nested(A, net):
    kw = {"seed": 1, "experiment": "criteria"}
    runs = {c: simulate_escape(["consensus"], A, net, 0.01, 200, 300, criterion=c, **kw)
            for c in ("any", "centroid", "all")}  # fmt: skip
    t = {c: r["consensus"].exit_times for c, r in runs.items()}
    assert np.all(t["any"] <= t["centroid"]) and np.all(t["any"] <= t["all"])


def test_result_summaries():
    times = np.array([1, 3, 3, np.inf, 2, np.inf, 5, 1.0])
    r = EscapeResult("x", 5, times, np.zeros(5), np.zeros(5))
    p, lo, hi = r.escape_probability()
    assert_allclose(p, np.array([2, 3, 5, 5, 6]) / 8)
    assert np.all(lo <= p) and np.all(p <= hi)
    assert r.censored_fraction == 0.25
    mean, lo_m, hi_m = r.restricted_mean_exit_time()
    assert mean == pytest.approx(np.minimum(times, 5).mean()) and lo_m <= mean <= hi_m


def test_clopper_pearson_matches_scipy():
    for x in (0, 1, 17, 40):
        lo, hi = clopper_pearson(np.array([x]), 40, alpha=0.01, comparisons=2)
        ci = scipy.stats.binomtest(x, 40).proportion_ci(confidence_level=1 - 0.005, method="exact")
        assert_allclose([lo[0], hi[0]], [ci.low, ci.high], rtol=1e-10, atol=1e-14)


def test_divergence_raises_with_the_step(A):
    wild = two_well_network(6, noise_level=1.0, seed=0, confinement=1.0)
    with pytest.raises(DivergenceError, match="diverged") as info:
        simulate_escape(["diffusion"], A, wild, 10.0, 2000, 10)
    assert 1 < info.value.step < 2000


def test_bad_input(A, net):
    with pytest.raises(InvalidInputError, match="criterion='median' is not known"):
        simulate_escape(["consensus"], A, net, 0.01, 5, 5, criterion="median")
    with pytest.raises(InvalidInputError, match="but the problem has 6 agents"):
        simulate_escape(["consensus"], np.eye(3) * 0.5 + 0.5 / 3, net, 0.01, 5, 5)
    with pytest.raises(InvalidInputError, match="network must be a LandscapeNetwork"):
        simulate_escape(["consensus"], A, net.local_network(), 0.01, 5, 5)
    with pytest.raises(InvalidInputError, match="step_size must be a positive"):
        simulate_escape(["consensus"], A, net, -0.1, 5, 5)
    with pytest.raises(InvalidInputError, match="memory_cap=10 bytes is below"):
        simulate_escape(["consensus"], A, net, 0.01, 5, 5, memory_cap=10)
    with pytest.raises(InvalidInputError, match="order='consensus>diffusion' must list"):
        get_check("escape-ordering").run(quick=True, overrides={"order": "consensus>diffusion"})


# ---- the checks ---------------------------------------------------------------------------
NAMES = ("escape-local-ee", "escape-ordering", "escape-time-breakdown")
SMALL = {
    "escape-local-ee": {},
    "escape-ordering": {"trials": 2000, "n_steps": 600},
    "escape-time-breakdown": {"trials": 250, "n_steps": 600},
}


def test_registered():
    registry = load_all()
    for name in NAMES:
        check = registry[name]
        assert check.claim and check.source and check.tag


@pytest.mark.parametrize("name", NAMES)
def test_checks_pass(name):
    rows = get_check(name).run(quick=True, seed=0, overrides=SMALL[name])
    assert rows and all(r.verdict for r in rows), [(r.case, r.details) for r in rows]
    for r in rows:
        assert r.ci[0] <= r.ci[1] and r.params and r.seed == 0


def test_local_ee_fails_on_a_wrong_prediction(monkeypatch):
    real = ce.theory_escaping_efficiency
    monkeypatch.setattr(ce, "theory_escaping_efficiency", lambda *a: 1.1 * real(*a))
    rows = get_check("escape-local-ee").run(quick=True, seed=0)
    assert not any(r.verdict for r in rows)


def test_ordering_fails_when_the_order_is_wrong():
    rows = get_check("escape-ordering").run(
        quick=True, seed=0, overrides={**SMALL["escape-ordering"],
                                       "order": "centralized>diffusion>consensus"},
    )  # fmt: skip
    assert rows and not any(r.verdict for r in rows)


def test_breakdown_fails_when_the_theory_is_right(monkeypatch):
    """If the theory's escape time were the horizon (the measured order of magnitude), the
    breakdown would not be confirmed."""
    monkeypatch.setattr(ce, "theory_escape_time", lambda *a, **k: 600.0)
    rows = get_check("escape-time-breakdown").run(
        quick=True, seed=0, overrides={**SMALL["escape-time-breakdown"], "points": 3}
    )
    assert not any(r.verdict for r in rows)


# ---- the figures (plotted arrays, small sizes) ----------------------------------------------
def test_escape_probability_figure(tmp_path, monkeypatch):
    from figures import escape_probability as fig

    monkeypatch.setattr(fig, "TRIALS", {True: 250, False: 250})
    monkeypatch.setattr(fig, "N_STEPS", {True: 300, False: 300})
    rec = fig.build(tmp_path, quick=True)
    assert [p.name for p in rec.files] == ["escape_probability.png", "escape_probability.pdf"]
    assert all(p.exists() for p in rec.files)
    for s in STRATEGIES:
        p, lo, hi = rec.data[f"p_{s}"], rec.data[f"lo_{s}"], rec.data[f"hi_{s}"]
        assert np.all(np.diff(p) >= 0) and np.all((lo <= p) & (p <= hi))
        assert rec.data[f"censored_{s}"][0] == pytest.approx(1 - p[-1])


def test_exit_time_figure(tmp_path, monkeypatch):
    from figures import exit_time_vs_sharpness as fig

    monkeypatch.setattr(fig, "WIDTHS", {True: np.array([0.2, 0.07])})
    monkeypatch.setattr(fig, "THEORY_WIDTHS", np.geomspace(0.3, 0.066, 5))
    monkeypatch.setattr(fig, "TRIALS", {True: 250})
    monkeypatch.setattr(fig, "N_STEPS", {True: 300})
    rec = fig.build(tmp_path, quick=True)
    assert all(p.exists() for p in rec.files)
    assert np.all(np.diff(rec.data["sharpness"]) > 0)
    for s in STRATEGIES:
        m, lo, hi = rec.data[f"mc_{s}"], rec.data[f"mc_lo_{s}"], rec.data[f"mc_hi_{s}"]
        assert np.all((lo <= m) & (m <= hi)) and np.all(m <= 300)
        # theory lines are the check's function, point by point
        th = rec.data[f"mc_theory_{s}"]
        assert th.shape == m.shape and np.all(th >= 1)
