"""Smoke test of benchmarks/bench_simulate.py at tiny sizes (no assertion on speed)."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

from numerics.simulate import simulate, standard_normal_draws
from numerics.strategies import STRATEGIES, make_schedule

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_simulate.py"
TINY = ["--agents", "3", "--dim", "2", "--trials", "50", "--steps", "5", "--repeat", "1"]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_simulate", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_main_reports_finite_positive_ratios(bench, tmp_path, capsys):
    out = tmp_path / "bench.json"
    report = bench.main([*TINY, "--json", str(out)])
    printed = capsys.readouterr().out
    assert f"numpy {np.__version__}" in printed
    assert "cores" in printed
    assert [r["strategy"] for r in report["results"]] == list(STRATEGIES)
    for row in report["results"]:
        assert row["strategy"] in printed
        for key in ("noise_ratio", "raw_ratio", "speedup"):
            assert math.isfinite(row[key]) and row[key] > 0, (row["strategy"], key)
        for key in ("simulator_step_s", "noise_step_s", "raw_draw_step_s", "loop_trial_step_s"):
            assert row[key] > 0
    assert json.loads(out.read_text()) == json.loads(json.dumps(report))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.json"]


def test_blas_thread_cap(bench, capsys):
    report = bench.main([*TINY, "--blas-threads", "1"])
    capsys.readouterr()
    assert report["blas_threads"] in (1, None)


def test_bad_input_exits_2(bench, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(["--trials", "0"])
    assert exc.value.code == 2
    capsys.readouterr()


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_loop_reference_is_the_same_recursion(bench, strategy):
    """On the simulator's own random stream, the per-agent loop gives the same means."""
    A, problem = bench._instance(4, 3)
    n_steps, n_trials, seed, experiment = 6, 20, bench.SEED, bench.EXPERIMENT
    z = standard_normal_draws(seed, experiment, n_trials, n_steps, 4, 3)
    loop = bench.loop_simulate(make_schedule(strategy, A), problem, 0.1, n_steps, n_trials, z=z)
    ref = simulate(
        [strategy], A, problem, 0.1, n_steps, n_trials, seed=seed, experiment=experiment
    )[strategy]
    for q in ("ee", "msd", "cd"):
        assert_allclose(loop[q], ref.mean[q], rtol=1e-10, atol=1e-14)
