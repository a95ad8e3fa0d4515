"""Tests for the figure modules: files written, and the plotted arrays (never the pixels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

from figures import FIGURES, FigureRecord
from figures import escaping_efficiency_ring as eer
from numerics.moments import escaping_efficiency, stable_step_size_limit

STRATEGIES = ("centralized", "consensus", "diffusion")


@pytest.fixture(scope="module")
def ring_figure(tmp_path_factory):
    out = tmp_path_factory.mktemp("figures")
    return out, eer.build(out, quick=True)


def test_registered():
    assert FIGURES["escaping_efficiency_ring"] == "figures.escaping_efficiency_ring"


def test_files_written_and_nothing_else(ring_figure):
    out, rec = ring_figure
    assert isinstance(rec, FigureRecord)
    assert rec.name == "escaping_efficiency_ring"
    assert rec.command == "dlcheck figures escaping_efficiency_ring"
    assert rec.claim
    png, pdf = out / "escaping_efficiency_ring.png", out / "escaping_efficiency_ring.pdf"
    assert sorted(rec.files) == sorted([png, pdf])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert png.stat().st_size > 1000 and pdf.stat().st_size > 1000
    # atomic writes leave no temporaries behind
    assert sorted(p.name for p in out.iterdir()) == sorted([png.name, pdf.name])


def test_data_shapes(ring_figure):
    _, rec = ring_figure
    n, n_mc = rec.data["n"], rec.data["n_mc"]
    assert_allclose(n, np.arange(1, eer.N_STEPS + 1))
    assert n.max() >= 100
    assert set(n_mc.tolist()) <= set(n.tolist())
    for s in STRATEGIES:
        assert rec.data[f"exact_{s}"].shape == n.shape
        for key in ("mc", "lo", "hi"):
            assert rec.data[f"{key}_{s}"].shape == n_mc.shape
            assert np.all(np.isfinite(rec.data[f"{key}_{s}"]))


def test_step_size_well_inside_stable_range():
    A, problem, mu = eer.instance()
    limit = min(stable_step_size_limit(s, A, problem) for s in STRATEGIES)
    assert mu < 0.5 * limit


def test_exact_curves_equal_moment_engine(ring_figure):
    _, rec = ring_figure
    A, problem, mu = eer.instance()
    for s in STRATEGIES:
        expected = escaping_efficiency(s, A, problem, mu, eer.N_STEPS, method="dense")
        assert_allclose(rec.data[f"exact_{s}"], expected, rtol=1e-12, atol=0)


def test_first_step_matches_closed_forms(ring_figure):
    """EE_1 from the one-step formulas of flatness_tradeoff.md §4.1 (independent of moments)."""
    _, rec = ring_figure
    A, problem, mu = eer.instance()
    K, B = problem.n_agents, problem.batch_size
    Hbar, d, R = problem.aggregate_hessian, problem.gradients_at_optimum, problem.noise_covariances
    tr_hr = np.einsum("ij,kji->k", Hbar, R)  # Tr(H̄ R_k)
    cen = mu**2 / (2 * K * B) * tr_hr.mean()
    con = mu**2 / (2 * K) * np.sum(np.einsum("ki,ij,kj->k", d, Hbar, d) + tr_hr / B)
    mixed = A.T @ d  # row k: Σ_l a_lk d_l
    dif = (
        mu**2
        / (2 * K)
        * np.sum(np.einsum("ki,ij,kj->k", mixed, Hbar, mixed) + (A.T**2 @ tr_hr) / B)
    )
    for s, value in (("centralized", cen), ("consensus", con), ("diffusion", dif)):
        assert_allclose(rec.data[f"exact_{s}"][0], value, rtol=1e-10)


def test_exact_ordering_at_every_n(ring_figure):
    _, rec = ring_figure
    con, dif, cen = (rec.data[f"exact_{s}"] for s in ("consensus", "diffusion", "centralized"))
    assert np.all(con >= dif)
    assert np.all(dif >= cen)
    assert np.all(cen > 0)
    assert "ordering consensus ≥ diffusion ≥ centralized holds" in rec.claim


def test_monte_carlo_inside_bands_and_bands_cover_exact(ring_figure):
    """Bands are Bonferroni intervals at family-wise level 1 − 1e-3 over all plotted points."""
    _, rec = ring_figure
    idx = rec.data["n_mc"] - 1
    for s in STRATEGIES:
        lo, hi, mc = rec.data[f"lo_{s}"], rec.data[f"hi_{s}"], rec.data[f"mc_{s}"]
        exact = rec.data[f"exact_{s}"][idx]
        assert np.all(lo < mc) and np.all(mc < hi), s
        assert np.all(lo <= exact) and np.all(exact <= hi), s


def test_finished_figures_are_reused_and_rebuilt_when_changed(tmp_path, monkeypatch):
    """An interrupted run resumes: finished figures come from the cache, unless their files
    changed or --force."""
    import figures

    calls = []

    def fake_build(name, out_dir, quick=False):
        calls.append(name)
        path = Path(out_dir) / f"{name}.png"
        path.write_bytes(b"png %d" % len(calls))
        return figures.FigureRecord(name, "claim", "cmd", [path])

    monkeypatch.setattr(figures, "build_figure", fake_build)
    out, cache = tmp_path / "out", tmp_path / "cache"
    out.mkdir()
    name = "escaping_efficiency_ring"

    def build(**kw):
        return figures.build_figures([name], out, quick=True, cache_dir=cache, **kw)[0]

    assert not build().cached and len(calls) == 1
    assert build().cached and len(calls) == 1
    (out / f"{name}.png").write_bytes(b"edited")
    assert not build().cached and len(calls) == 2
    assert not build(force=True).cached and len(calls) == 3
    assert not figures.build_figures([name], out, quick=False, cache_dir=cache)[0].cached
    assert not figures.build_figures([name], out, quick=True)[0].cached  # no cache: always
    assert len(calls) == 5


def test_saved_files_are_reproducible(tmp_path):
    from matplotlib.figure import Figure

    from figures import save_figure

    fig = Figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    saved = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        saved.append([p.read_bytes() for p in save_figure(fig, tmp_path / folder, "f")])
    assert saved[0] == saved[1]  # PNG and PDF: no time stamp
