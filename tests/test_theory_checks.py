"""The theory checks: they pass on the quick tier, and each one fails on a wrong prediction."""

from __future__ import annotations

import time

import numpy as np
import pytest

import numerics.checks.theory as tc
from numerics.checks import get_check, load_all
from numerics.errors import InvalidInputError
from numerics.topology import validate_combination_matrix
from theory import predict as P

NAMES = (
    "theory-exact-modes",
    "theory-second-order-slope",
    "theory-first-order-heterogeneous",
    "theory-one-step",
    "theory-orderings-monte-carlo",
)


def test_registered_with_metadata():
    registry = load_all()
    for name in NAMES:
        check = registry[name]
        assert check.claim and check.source and check.tag == "derived"


def test_all_pass_quick_within_a_minute():
    start = time.perf_counter()
    for name in NAMES:
        rows = get_check(name).run(quick=True, seed=0)
        assert rows and all(r.verdict for r in rows), [(r.case, r.details) for r in rows]
        for r in rows:
            assert r.ci[0] <= r.ci[1] and r.params and r.seed == 0
    assert time.perf_counter() - start < 60


def test_slope_rows_report_three_and_the_breakdown():
    rows = get_check("theory-second-order-slope").run(quick=True, seed=0)
    slopes = [r for r in rows if r.relation == "slope"]
    assert len(slopes) == 6 and all(r.predicted == 3.0 for r in slopes)
    assert all(abs(r.measured - 3) < 0.02 for r in slopes)
    breakdown = [r for r in rows if r.relation == "lower"]
    assert len(breakdown) == 3 and all(r.measured >= r.predicted for r in breakdown)


def test_richardson_slope_on_synthetic_power_laws():
    x = np.geomspace(1e-3, 1e-1, 16)
    fit = tc.richardson_slope(x, x**3 * (1 + 5 * x), 1e-2)
    assert fit["lo"] <= 3 <= fit["hi"] and fit["hi"] - fit["lo"] < 0.1
    wrong = tc.richardson_slope(x, x**2 * (1 + 5 * x), 1e-2)
    assert not wrong["lo"] <= 3 <= wrong["hi"]
    with pytest.raises(InvalidInputError, match="needs >= 3 points"):
        tc.richardson_slope(x, x**3, 1e-9)


def test_instances_are_valid_and_keyed_by_seed():
    A = tc.permutation_mixture(6, seed=3)
    validate_combination_matrix(A, doubly_stochastic=True)
    assert not np.allclose(A, A.T)
    A1, p1, mu1, _ = tc.symmetric_instance(0, 2, 9, 3)
    A2, _, mu2, _ = tc.symmetric_instance(0, 2, 9, 3)
    assert np.array_equal(A1, A2) and mu1 == mu2 and np.allclose(A1, A1.T)
    assert np.allclose(p1.hessians, p1.hessians[:1])


def _scaled(monkeypatch, name: str, factor: float) -> None:
    """Replace ``theory.predict.<name>`` by ``factor`` times itself."""
    real = getattr(P, name)
    monkeypatch.setattr(P, name, lambda *a, **k: factor * real(*a, **k))


def test_exact_modes_fails_on_a_tiny_error(monkeypatch):
    _scaled(monkeypatch, "escaping_efficiency", 1 + 1e-8)
    rows = get_check("theory-exact-modes").run(quick=True, seed=0)
    assert not any(r.verdict for r in rows if r.case.endswith("EE_n"))


def test_second_order_fails_on_a_second_order_mistake(monkeypatch):
    real = P.steady_state

    def wrong(quantity, strategy, A, problem, step_size, *, order=None):
        value = real(quantity, strategy, A, problem, step_size, order=order)
        return value + (0.01 * step_size**2 if order == 2 else 0.0)  # error now O(μ²)

    monkeypatch.setattr(P, "steady_state", wrong)
    rows = get_check("theory-second-order-slope").run(quick=True, seed=0)
    assert not any(r.verdict for r in rows if r.relation == "slope")


def test_first_order_fails_on_a_wrong_constant(monkeypatch):
    real = P.steady_state

    def wrong(quantity, strategy, A, problem, step_size, *, order=None):
        return 1.02 * real(quantity, strategy, A, problem, step_size, order=order)

    monkeypatch.setattr(P, "steady_state", wrong)
    rows = get_check("theory-first-order-heterogeneous").run(quick=True, seed=0)
    assert not any(r.verdict for r in rows)


def test_one_step_fails_on_a_tiny_error(monkeypatch):
    _scaled(monkeypatch, "one_step_escaping_efficiency", 1 + 1e-8)
    rows = get_check("theory-one-step").run(quick=True, seed=0)
    assert not any(r.verdict for r in rows if "sum of terms" not in r.case)


def test_orderings_fail_on_a_wrong_difference(monkeypatch):
    real = P.escaping_efficiency

    def wrong(strategy, *args, **kwargs):
        out = real(strategy, *args, **kwargs)
        return 1.05 * out if strategy == "consensus" else out

    monkeypatch.setattr(P, "escaping_efficiency", wrong)
    rows = get_check("theory-orderings-monte-carlo").run(quick=True, seed=0)
    assert not any(r.verdict for r in rows if "consensus) − " in r.case)
