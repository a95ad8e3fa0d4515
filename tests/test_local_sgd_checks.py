"""The local SGD checks: registered with metadata, pass in quick mode (GLB-hom at reduced size:
structure only), and fail when the prediction or the measurement is wrong; the regime map."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import numerics.checks.local_sgd as lc
import numerics.checks.local_sgd_rates as lr
from numerics.checks import get_check, load_all

NAMES = (
    "local-sgd-k1-minibatch",
    "local-sgd-quadratic-invariance",
    "local-sgd-two-machine",
    "local-sgd-rank-one",
    "local-sgd-chain",
    "local-gd-fixed-point",
    "local-gd-plateau",
    "local-sgd-glb-hom",
    "local-sgd-glb-het",
    "local-sgd-heterogeneity-blind",
)
#: Smaller than quick where a check is slow; the claims are the same.
SMALL = {"local-sgd-rank-one": {"r_max": 80}, "local-sgd-chain": {"r_max": 20}}


def test_registered_with_metadata():
    registry = load_all()
    for name in NAMES:
        check = registry[name]
        assert check.claim and check.source and check.tag in ("V", "R", "M")
        assert check.relation in ("equal", "upper", "lower", "slope")
    assert registry["local-sgd-glb-hom"].tag == "M"  # a reconstruction, not a theorem
    assert "reconstructed" in registry["local-sgd-glb-hom"].source


@pytest.mark.parametrize("name", [n for n in NAMES if n != "local-sgd-glb-hom"])
def test_checks_pass_quick(name):
    rows = get_check(name).run(quick=True, seed=0, overrides=SMALL.get(name))
    assert rows
    for r in rows:
        assert r.verdict, (r.case, r.predicted, r.measured, r.ci, r.details)
        assert r.ci[0] <= r.ci[1] and r.details and r.seed == 0


def test_glb_hom_structure_at_reduced_size():
    small = {
        "machines_per_threshold": 30.0,
        "trials": 16,
        "k_max": 8,
        "k_line_rounds": 32,
        "r_max": 100,
        "grid_half_width": 1,
    }
    rows = get_check("local-sgd-glb-hom").run(quick=True, seed=0, overrides=small)
    cases = [r.case for r in rows]
    assert cases[:2] == ["slope in K (R = 32)", "slope in R (K = 4)"]
    assert len(rows) == 5
    for r in rows:
        assert np.isfinite(r.measured) and r.ci[0] < r.ci[1], r.case
    assert "chosen η/η₀" in rows[0].details and "Birge" in rows[0].details
    assert rows[3].measured > 1  # local SGD loses for K ≪ K* even at this size


def test_two_machine_check_catches_a_wrong_formula(monkeypatch):
    real = lc.two_machine_function

    def off():
        f = real()
        return lambda *a: f(*a) * (1 + 1e-6)

    monkeypatch.setattr(lc, "two_machine_function", off)
    rows = get_check("local-sgd-two-machine").run(quick=True, seed=0, overrides={"k_max": 10})
    assert not rows[0].verdict


def test_glb_het_check_catches_a_wrong_exponent(monkeypatch):
    """An error scaling as R^(−2/3 + 0.2) must fail the R slope (and only slopes that see R)."""
    real = lr.glb_het_point

    def bent(K, R, zeta, **kw):
        t, o = real(K, R, zeta, **kw)
        return dataclasses.replace(t, mean=t.mean * R**0.2), o

    monkeypatch.setattr(lr, "glb_het_point", bent)
    rows = {r.case: r for r in get_check("local-sgd-glb-het").run(quick=True, seed=0)}
    assert not rows["slope in R"].verdict
    assert rows["slope in K"].verdict and rows["slope in ζ⋆"].verdict


def test_quadratic_invariance_catches_a_wrong_expectation(monkeypatch):
    real = lc.serial_sgd_expectation
    monkeypatch.setattr(lc, "serial_sgd_expectation", lambda *a: tuple(1.1 * v for v in real(*a)))
    rows = get_check("local-sgd-quadratic-invariance").run(quick=True, seed=0)
    assert [r.verdict for r in rows] == [False, False, False, True]


def test_regime_map_figure(tmp_path, monkeypatch):
    from figures import local_sgd_regime_map as rm

    monkeypatch.setattr(rm, "MEASURED_K", (2, 32))
    monkeypatch.setattr(rm, "MEASURED_S", (1.0, 64.0))
    monkeypatch.setitem(rm.SIZES, True, {"n_machines": 40, "n_trials": 16, "grid_half_width": 1})
    rec = rm.build(tmp_path, quick=True)
    d = rec.data
    assert d["winner_left"].shape == (d["s"].size, d["K"].size)
    assert set(np.unique(d["winner_left"])) == {0, 1}
    np.testing.assert_allclose(d["threshold_local_vs_minibatch"], d["s"])
    assert d["ratio"].shape == (4,) and np.all(d["ratio"] > 0)
    assert np.all(d["ratio_lo"] <= d["ratio"]) and np.all(d["ratio"] <= d["ratio_hi"])
    # the far corner: K = 2 at s = 64 → minibatch SGD wins, on the bound and on the instance
    i = int(np.flatnonzero((d["measured_K"] == 2) & (d["measured_s"] == 64.0))[0])
    assert d["ratio"][i] > 1
    assert (tmp_path / f"{rm.NAME}.png").exists()


def test_identity_rows_use_the_equal_relation():
    """A deviation row must fail when the deviation exceeds its tolerance, whatever the
    check's default relation (the rank-one check's default is 'lower')."""
    check = get_check("local-sgd-rank-one")
    row = lc._deviation(check, "x", 1.0, 1e-12, {}, 0, "d")
    assert row.relation == "equal" and not row.verdict
