"""The check registry: relations, parameters, the core checks, and that checks can fail."""

from __future__ import annotations

import re

import numpy as np
import pytest

import numerics.checks.core as core
from numerics.checks import get_check, load_all
from numerics.checks.base import coerce, verdict
from numerics.errors import InvalidInputError
from numerics.problems import random_quadratic_network
from numerics.topology import combination_matrix, ring


def test_verdict_relations():
    assert verdict("equal", 1.0, (0.9, 1.1))
    assert not verdict("equal", 1.2, (0.9, 1.1))
    # 'upper': the prediction bounds the measurement from above; it fails only when the
    # whole interval lies above the prediction
    assert verdict("upper", 1.0, (1.1, 1.3)) is False
    assert verdict("upper", 1.0, (0.9, 1.3)) is True
    assert verdict("lower", 1.0, (0.5, 0.8)) is False
    assert verdict("lower", 1.0, (0.5, 1.2)) is True
    assert verdict("slope", -0.5, (-0.6, -0.4))
    assert verdict("outside", 1.0, (1.1, 1.3)) and verdict("outside", float("inf"), (0.0, 2.0))
    assert not verdict("outside", 1.2, (1.1, 1.3))
    assert not verdict("outside", float("inf"), (0.0, float("inf")))
    assert not verdict("equal", float("nan"), (0, 1))
    with pytest.raises(InvalidInputError, match="relation"):
        verdict("about", 1.0, (0, 1))


def test_upper_relation_semantics():
    # an upper bound holds when the measurement is not significantly above it
    assert verdict("upper", 1.0, (0.2, 0.4))


def test_coerce_is_literal_only():
    assert coerce("3", 1, "n") == 3 and coerce("0.5", 1.0, "mu") == 0.5
    assert coerce("yes", False, "flag") is True and coerce("off", True, "flag") is False
    assert coerce("torus", "ring", "graph") == "torus"
    with pytest.raises(InvalidInputError, match=re.escape("n_agents=\"__import__('os')\"")):
        coerce("__import__('os')", 1, "n_agents")
    with pytest.raises(InvalidInputError, match="flag"):
        coerce("maybe", True, "flag")


def test_parameters_reject_unknown_and_apply_quick():
    check = get_check("ee-monte-carlo")
    assert check.parameters(True)["trials"] == check.quick["trials"]
    assert check.parameters(False, {"trials": "123"})["trials"] == 123
    with pytest.raises(InvalidInputError, match="no parameter 'bogus'"):
        check.parameters(False, {"bogus": 1})
    with pytest.raises(InvalidInputError, match="no check named"):
        get_check("no-such-check")


def test_every_check_has_metadata():
    for check in load_all().values():
        assert check.claim and check.source and check.tag
        assert check.relation in ("equal", "upper", "lower", "slope", "outside")


@pytest.mark.parametrize(
    "name",
    ["ee-monte-carlo", "ee-ordering-boundary", "full-averaging", "no-combination", "zero-noise"],
)
def test_core_checks_pass_quick(name):
    rows = get_check(name).run(quick=True, seed=0)
    assert rows and all(r.verdict for r in rows), [(r.case, r.details) for r in rows]
    for r in rows:
        assert r.seed == 0 and r.params and r.ci[0] <= r.ci[1]


def test_monte_carlo_check_fails_on_a_wrong_prediction(monkeypatch):
    """A 3 % error in the 'exact' values must be caught: the check is not vacuous."""
    real = core.escaping_efficiency
    monkeypatch.setattr(core, "escaping_efficiency", lambda *a, **k: 1.03 * real(*a, **k))
    rows = get_check("ee-monte-carlo").run(quick=True, seed=0, overrides={"trials": 20000})
    assert not any(r.verdict for r in rows)


def test_ordering_check_catches_a_violation(monkeypatch):
    """If consensus escaped slower than diffusion, the ordering check must fail."""
    real = core.escaping_efficiency
    swap = {"consensus": "diffusion", "diffusion": "consensus", "centralized": "centralized"}
    monkeypatch.setattr(core, "escaping_efficiency", lambda s, *a, **k: real(swap[s], *a, **k))
    rows = get_check("ee-ordering").run(quick=True, seed=0, overrides={"instances": 20})
    assert not rows[0].verdict and rows[0].measured < 0


def test_ordering_step_limit_closed_form():
    K = 6
    A = combination_matrix(ring(K), "metropolis")  # λ_min = 1/3 + 2/3 cos(π) = −1/3
    problem = random_quadratic_network(K, 2, seed=3)
    h_max = np.linalg.eigvalsh(problem.hessians)[:, -1].max()
    ell = 1 / 3
    assert core.ordering_step_limit(A, problem) == pytest.approx(
        (1 - ell) ** 2 / ((1 + ell**2) * h_max), rel=1e-12
    )
    lazy = 0.5 * (np.eye(K) + A)  # positive semi-definite: the limit is 1/h_max
    assert core.ordering_step_limit(lazy, problem) == pytest.approx(1 / h_max, rel=1e-12)


def test_sharpen_keeps_doubly_stochastic_and_lowers_spectrum():
    A = combination_matrix(ring(8), "metropolis")
    B = core._sharpen(A, 0.9)
    assert B.min() >= -1e-15
    np.testing.assert_allclose(B.sum(axis=0), 1, atol=1e-14)
    np.testing.assert_allclose(B.sum(axis=1), 1, atol=1e-14)
    assert np.linalg.eigvalsh(B)[0] < np.linalg.eigvalsh(A)[0] - 0.1


def test_ordering_instances_are_keyed_by_index():
    a = core.random_ordering_instance(0, 7, 3)
    b = core.random_ordering_instance(0, 7, 3)
    c = core.random_ordering_instance(0, 8, 3)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[3] == b[3] and a[3] != c[3]
