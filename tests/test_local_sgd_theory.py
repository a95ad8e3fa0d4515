"""Tests for theory.local_sgd*: the bound registry, the solved thresholds, the exact identities
(symbolic against an independent numeric path) and the regime-map figure's arrays."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from theory import derive
from theory.local_sgd import (
    glb_balance,
    projector_power_holds,
    rank_one_alpha,
    rank_one_eigenvalues,
    two_machine_fraction,
    two_machine_function,
    two_machine_limit,
)
from theory.local_sgd_bounds import BOUNDS, SYMBOLS, B, H, K, R, bound_function, sigma
from theory.local_sgd_regimes import local_vs_minibatch_threshold, thresholds

ROOT = Path(__file__).resolve().parents[1]


def test_registry_metadata_and_exact_rationals():
    assert len(BOUNDS) >= 15
    for b in BOUNDS.values():
        assert b.kind in ("upper", "lower"), b.name
        assert b.output in ("final", "averaged", "any", "unknown"), b.name
        assert b.tag in ("V", "R", "M"), b.name
        assert b.source and b.algorithm and b.problem_class
        assert not b.expression.atoms(sp.Float), f"{b.name} has a float"
        assert set(b.symbols) <= set(SYMBOLS), b.name
    # the list
    for name in (
        "minibatch_sgd",
        "accelerated_minibatch_sgd",
        "single_machine_sgd",
        "single_machine_accelerated_sgd",
        "local_sgd_quadratic",
        "local_sgd_zeta_star_upper",
        "local_sgd_zeta_star_lower",
        "zero_respecting_lower",
        "glasgow_lower",
        "local_sgd_uniform_heterogeneity",
        "local_sgd_higher_order",
        "homogeneous_minmax_lower",
    ):
        assert name in BOUNDS


def test_reconstructed_bounds_are_not_attributed_to_theorems():
    for b in BOUNDS.values():
        if b.tag == "M":
            assert "Theorem" not in b.source and "Thm" not in b.source, b.name


def test_bound_function_matches_hand_evaluation():
    v = {"H": 2.0, "B": 3.0, "sigma": 0.5, "M": 4.0, "K": 5.0, "R": 6.0, "zeta_star": 0.7}
    stat = 0.5 * 3 / math.sqrt(4 * 5 * 6)
    assert bound_function("minibatch_sgd")(**v) == pytest.approx(2 * 9 / 6 + stat, rel=1e-14)
    assert bound_function("accelerated_minibatch_sgd")(**v) == pytest.approx(
        2 * 9 / 36 + stat, rel=1e-14
    )
    drift = (2 * 0.25 * 81) ** (1 / 3) / (5 ** (1 / 3) * 6 ** (2 / 3))
    het = (2 * 0.49 * 81) ** (1 / 3) / 6 ** (2 / 3)
    assert bound_function("local_sgd_zeta_star_upper")(**v) == pytest.approx(
        2 * 9 / 6 + drift + stat + het, rel=1e-12
    )
    with pytest.raises(TypeError, match="needs values for"):
        bound_function("minibatch_sgd")(H=1.0)
    with pytest.raises(KeyError, match="registered"):
        bound_function("nope")


def test_koloskova_upper_equals_thm9_lower():
    up, lo = BOUNDS["local_sgd_zeta_star_upper"], BOUNDS["local_sgd_zeta_star_lower"]
    assert sp.simplify(up.expression - lo.expression) == 0
    assert (up.kind, lo.kind, lo.output) == ("upper", "lower", "final")


def test_thresholds_solve_their_equations():
    ths = thresholds()
    for t in ths.values():
        assert not t.solution.atoms(sp.Float)
        back = sp.simplify((t.left - t.right).subs(t.variable, t.solution))
        assert back == 0, t.name
    assert sp.simplify(local_vs_minibatch_threshold() - sigma**2 * R / (H**2 * B**2)) == 0
    assert (
        sp.simplify(ths["single_machine_vs_minibatch"].solution - sigma**2 * R / (H * B) ** 2) == 0
    )
    assert (
        sp.simplify(ths["accelerated_vs_single_machine"].solution - sigma**2 * R**3 / (H * B) ** 2)
        == 0
    )
    expected_m = (sigma / (H * B)) ** sp.Rational(2, 3) * (R / K) ** sp.Rational(1, 3)
    assert sp.simplify(ths["local_loses_machines"].solution - expected_m) == 0
    assert sp.simplify(ths["heterogeneity"].solution - H * B / sp.sqrt(R)) == 0
    assert sp.simplify(ths["accelerated_optimal_heterogeneity"].solution - H * B) == 0
    assert ths["local_vs_accelerated_optimization"].solution == R


def test_local_beats_minibatch_exactly_above_the_threshold():
    """Numerically: the drift term is below HB²/R iff K > σ²R/(H²B²)."""
    drift = bound_function("local_sgd_homogeneous")
    mb = bound_function("minibatch_sgd")
    vals = {"H": 1.0, "B": 1.0, "sigma": 4.0, "M": 1e9, "R": 10.0}
    kstar = 16 * 10.0
    # far above K*: local's bound is smaller; far below: larger
    assert drift(K=100 * kstar, **vals) < mb(K=100 * kstar, **vals)
    assert drift(K=kstar / 100, **vals) > mb(K=kstar / 100, **vals)


def _two_machine_loop(eta, beta, h, k, r, x_star):
    """Plain local GD on the two-machine example (independent of numerics and sympy)."""
    x = np.zeros(2)
    for _ in range(r):
        ends = []
        for m in range(2):
            y = x.copy()
            for _ in range(k):
                g = np.zeros(2)
                g[m] = h * (y[m] - x_star[m])
                y = y - eta * g
            ends.append(y)
        x = x + beta * (np.mean(ends, axis=0) - x)
    return x


@pytest.mark.parametrize(
    ("eta", "beta", "h", "k", "r"),
    [(0.3, 1.0, 1.0, 3, 4), (0.9, 2.0, 2.0, 5, 2), (0.1, 0.5, 3.0, 1, 6)],
)
def test_two_machine_closed_form_against_a_loop(eta, beta, h, k, r):
    x_star = np.array([1.5, -0.5])
    frac = two_machine_function()(eta, beta, h, k, r)
    assert np.allclose(
        _two_machine_loop(eta, beta, h, k, r, x_star), frac * x_star, rtol=1e-13, atol=0
    )


def test_two_machine_limits():
    assert sp.simplify(two_machine_limit(1) - (1 - 2**-R)) == 0
    assert two_machine_limit(2) == 1
    assert two_machine_fraction().subs({K: 1, R: 1}) != 0


def test_projector_identity_and_rank_one_alpha():
    assert projector_power_holds(4)
    a_sym, kappa_sym = sp.symbols("a kappa", positive=True)
    alpha = float(rank_one_alpha().subs({a_sym: sp.Rational(1, 2), kappa_sym: 20}))
    v = np.array([alpha, np.sqrt(1 - alpha**2)])
    lam = np.linalg.eigvalsh(0.5 * np.diag([1.0, 0.0]) + 0.5 * np.outer(v, v))
    assert lam[1] / lam[0] == pytest.approx(20, rel=1e-12)
    lam1, lam2 = rank_one_eigenvalues()
    assert sp.simplify(lam1 + lam2 - 1) == 0


def test_glb_balance_is_exact():
    bal = glb_balance()
    assert bal["ratio"] == 1
    assert bal["mu1 B^2 - iterate-bias term"] == 0
    assert bal["het: mu1 B^2 - drift term"] == 0


@pytest.mark.parametrize("name", ["local-sgd-bounds", "local-sgd-regimes", "local-sgd-exact"])
@pytest.mark.parametrize("latex", [False, True])
def test_derivations_print(name, latex):
    text = derive(name, latex=latex)
    assert len(text.splitlines()) > 5
    if name == "local-sgd-regimes":
        assert ("R*sigma**2/(B**2*H**2)" in text) or ("\\sigma^{2}" in text)


def test_theory_never_imports_numerics():
    for path in sorted((ROOT / "theory").glob("local_sgd*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith("numerics"), path.name
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("numerics") for a in node.names), path.name


def test_regime_map_bound_winner_follows_the_threshold():
    """The figure's bound map: minibatch wins far below K = s, local far above (R = 64)."""
    from figures import local_sgd_regime_map as rm

    K = np.array([[2.0, 2000.0]])
    s = np.array([[1000.0, 1.0]])
    win = rm.bound_winner(rm.LEFT, K, s)
    assert rm.LEFT[win[0, 0]] == "minibatch_sgd"
    assert rm.LEFT[win[0, 1]] == "local_sgd_homogeneous"
