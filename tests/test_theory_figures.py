"""The three theory figures: files written, and their plotted arrays against the engine."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from figures import FIGURES
from figures import consensus_gap_vs_spectral_gap as gap_fig
from figures import escape_time_vs_sharpness as esc_fig
from figures import excess_risk_vs_step as er_fig
from numerics.moments import escaping_efficiency, steady_state
from theory import predict as P

STRATEGIES = ("centralized", "consensus", "diffusion")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("theory_figures")
    records = {m.NAME: m.build(out, quick=True) for m in (er_fig, gap_fig, esc_fig)}
    return out, records


def test_registered_and_files_written(built):
    out, records = built
    for name, rec in records.items():
        assert FIGURES[name] == f"figures.{name}"
        assert rec.claim and rec.command == f"dlcheck figures {name}"
        png = out / f"{name}.png"
        assert png in rec.files and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (out / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"


def test_excess_risk_curves(built):
    data = built[1][er_fig.NAME].data
    A, problem = er_fig.instance()
    mus = data["mu"]
    for s in STRATEGIES:
        for j in (0, len(mus) // 2, len(mus) - 1):
            assert data[f"exact_{s}"][j] == pytest.approx(
                steady_state(s, A, problem, mus[j], method="dense").excess_risk, rel=1e-9
            )
            assert data[f"order2_{s}"][j] == pytest.approx(
                P.excess_risk(s, A, problem, mus[j], order=2), rel=1e-12
            )
        # small-μ slopes of the relative errors: 1 (first order), 2 (second order)
        for order in (1, 2):
            rel = data[f"relerr{order}_{s}"][:6]
            slope = np.polyfit(np.log(mus[:6]), np.log(rel), 1)[0]
            assert slope == pytest.approx(order, abs=0.1)
    assert np.all(data["exact_consensus"] >= data["exact_diffusion"])
    assert np.all(data["exact_diffusion"] >= data["exact_centralized"])


def test_excess_risk_monte_carlo_bands(built):
    data = built[1][er_fig.NAME].data
    A, problem = er_fig.instance()
    for s in STRATEGIES:
        lo, hi = data[f"lo_{s}"], data[f"hi_{s}"]
        assert np.all(lo <= data[f"exact_n_{s}"]) and np.all(data[f"exact_n_{s}"] <= hi), s
        # the Monte Carlo horizon is close enough to the steady state for the plot
        assert_allclose(data[f"exact_n_{s}"], data[f"exact_mc_{s}"], rtol=1e-4)
    j = 0
    n = int(np.ceil(6.0 / (data["mu_mc"][j] * np.linalg.eigvalsh(problem.hessians[0])[0])))
    engine = escaping_efficiency("diffusion", A, problem, data["mu_mc"][j], n, method="dense")
    assert data["exact_n_diffusion"][j] == pytest.approx(engine[-1], rel=1e-9)


def test_consensus_gap_theory_against_exact(built):
    data = built[1][gap_fig.NAME].data
    mu = data["step_size"][0]
    for name in gap_fig.SIZES_QUICK:
        gaps, exact, theory = data[f"gap_{name}"], data[f"exact_{name}"], data[f"theory_{name}"]
        assert np.all(exact > 0) and np.all(np.diff(gaps) >= -1e-12)
        # second-order relative error is O(μ h / gap) (h_max <= 1 here)
        assert np.all(np.abs(theory / exact - 1) <= 20 * mu / gaps), name
    assert_allclose(data["gap_complete"], 1.0, atol=1e-12)


def test_escape_times(built):
    data = built[1][esc_fig.NAME].data
    con, dif, cen = (data[f"theory_{s}"] for s in ("consensus", "diffusion", "centralized"))
    assert np.all(con <= dif) and np.all(dif <= cen)
    assert np.all(np.diff(cen) <= 0)  # sharper minima are left sooner
    assert_allclose(data["approx_centralized"] * data["trace"],
                    data["approx_centralized"][0] * data["trace"][0], rtol=1e-10)  # fmt: skip
    for s in STRATEGIES:
        idx = [int(np.argmin(np.abs(esc_fig.SCALES - c))) for c in data["scale_mc"]]
        theory = data[f"theory_{s}"][idx]
        assert np.all(data[f"mc_lo_{s}"] <= theory) and np.all(theory <= data[f"mc_hi_{s}"]), s
    # brute force from the engine at c = 1
    A, problem = esc_fig.instance(1.0)
    ee = escaping_efficiency("centralized", A, problem, esc_fig.STEP_SIZE, 2000)
    brute = float(np.argmax(ee >= data["level"][0]) + 1)
    assert data["theory_centralized"][int(np.argmin(np.abs(esc_fig.SCALES - 1)))] == brute
