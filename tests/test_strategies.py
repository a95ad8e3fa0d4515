"""Tests for numerics.strategies: the (A1, A2) table of shared/DESIGN.md."""

from __future__ import annotations

import numpy as np
import pytest

from numerics.errors import InvalidInputError
from numerics.strategies import (
    ALL_STRATEGIES,
    Schedule,
    as_schedule,
    averaging_matrix,
    make_schedule,
)


@pytest.fixture
def A(nonsymmetric_A):
    return nonsymmetric_A(4, seed=1)


def test_averaging_matrix():
    J = averaging_matrix(5)
    np.testing.assert_allclose(J @ J, J, atol=1e-15)
    np.testing.assert_allclose(J @ np.arange(5.0), np.full(5, 2.0))


def test_table(A):
    eye, J = np.eye(4), np.full((4, 4), 0.25)
    table = {
        "centralized": (eye, J),
        "consensus": (A, eye),
        "diffusion": (eye, A),
        "independent": (eye, eye),
    }
    for name, (A1, A2) in table.items():
        s = make_schedule(name, A)
        assert s.name == name and s.period == 1 and s.n_agents == 4
        np.testing.assert_array_equal(s.at(1)[0], A1)
        np.testing.assert_array_equal(s.at(1)[1], A2)
        np.testing.assert_array_equal(s.at(17)[1], A2)


@pytest.mark.parametrize("p", [1, 2, 5])
def test_local_sgd_schedule(A, p):
    s = make_schedule("local_sgd", A, local_steps=p)
    assert s.period == p
    J = np.full((4, 4), 0.25)
    for n in range(1, 3 * p + 1):
        A1, A2 = s.at(n)
        np.testing.assert_array_equal(A1, np.eye(4))
        np.testing.assert_array_equal(A2, J if n % p == 0 else np.eye(4))


def test_unknown_strategy(A):
    with pytest.raises(InvalidInputError, match=r"strategy='gossip' is not known"):
        make_schedule("gossip", A)


def test_local_sgd_needs_local_steps(A):
    with pytest.raises(InvalidInputError, match=r"local_sgd needs local_steps"):
        make_schedule("local_sgd", A)


@pytest.mark.parametrize("bad", [0, -1, 2.0, True])
def test_local_steps_must_be_positive_int(A, bad):
    with pytest.raises(InvalidInputError, match=r"local_steps must be an integer >= 1"):
        make_schedule("local_sgd", A, local_steps=bad)


@pytest.mark.parametrize("shape", [(3,), (3, 4), (2, 2, 2)])
def test_A_must_be_square(shape):
    with pytest.raises(InvalidInputError, match=r"A must be a square"):
        make_schedule("consensus", np.ones(shape))


def test_as_schedule(A):
    s = make_schedule("diffusion", A)
    assert as_schedule(s, None) is s
    assert as_schedule("consensus", A).name == "consensus"
    with pytest.raises(InvalidInputError, match=r"strategy='consensus' needs a combination"):
        as_schedule("consensus", None)


def test_all_strategies_constructible(A):
    for name in ALL_STRATEGIES:
        s = make_schedule(name, A, local_steps=2)
        assert isinstance(s, Schedule)
        for A1, A2 in s.pairs:  # every matrix doubly stochastic
            for M in (A1, A2):
                np.testing.assert_allclose(M.sum(axis=0), 1.0, atol=1e-14)
                np.testing.assert_allclose(M.sum(axis=1), 1.0, atol=1e-14)
