"""Sweeps: grids as data, cache hits and misses, --force, failures never cached, --jobs."""

from __future__ import annotations

import json

import pytest

from numerics.cli import main, run_checks
from numerics.errors import InvalidInputError
from numerics.runner import Runner, code_fingerprint, grid_from_sets, grid_from_toml, grid_points

FAST = ["--set", "n_steps=5", "--set", "trials=300"]


def test_grid_points_are_sorted_product():
    grid = grid_from_sets({"n_agents": "4,8", "dim": "2"})
    assert grid_points(grid) == [{"dim": "2", "n_agents": "4"}, {"dim": "2", "n_agents": "8"}]
    with pytest.raises(InvalidInputError, match="empty value"):
        grid_from_sets({"n_agents": "4,"})


def test_grid_from_toml(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text('[grid]\nn_agents = [4, 8]\ngraph = "complete"\n')
    assert grid_from_toml(path) == {"n_agents": [4, 8], "graph": ["complete"]}
    path.write_text("n_agents = [[1]]\n")
    with pytest.raises(InvalidInputError, match="n_agents"):
        grid_from_toml(path)
    path.write_text("n_agents = [4, \n")
    with pytest.raises(InvalidInputError, match="not valid TOML"):
        grid_from_toml(path)
    with pytest.raises(InvalidInputError, match="does not exist"):
        grid_from_toml(tmp_path / "missing.toml")


def test_cache_hit_miss_and_force(tmp_path, monkeypatch):
    runner = Runner(cache_dir=tmp_path)
    calls = []
    from numerics.checks import get_check

    check = get_check("zero-noise")
    original = check.function

    def counting(chk, params, seed):
        calls.append(1)
        return original(chk, params, seed)

    monkeypatch.setattr(type(check), "function", property(lambda self: counting), raising=False)
    first = runner.run_point("zero-noise", {"n_steps": 5})
    second = runner.run_point("zero-noise", {"n_steps": 5})
    assert (first.cached, second.cached) == (False, True) and len(calls) == 1
    assert first.rows == second.rows
    other = runner.run_point("zero-noise", {"n_steps": 6})  # another configuration: a miss
    assert not other.cached and len(calls) == 2
    forced = Runner(cache_dir=tmp_path, force=True).run_point("zero-noise", {"n_steps": 5})
    assert not forced.cached and len(calls) == 3
    assert [r["measured"] for r in forced.rows] == [r["measured"] for r in first.rows]


def test_failures_are_not_cached(tmp_path, monkeypatch):
    runner = Runner(cache_dir=tmp_path)
    with pytest.raises(InvalidInputError, match="step_size"):
        runner.run_point("zero-noise", {"step_size": 50.0})
    with pytest.raises(InvalidInputError, match="step_size"):  # raised again: nothing stored
        runner.run_point("zero-noise", {"step_size": 50.0})
    assert not any(p.name.endswith(".pkl") for p in tmp_path.rglob("*"))


def test_fingerprint_is_stable():
    assert code_fingerprint() == code_fingerprint() and len(code_fingerprint()) == 24


def test_jobs_do_not_change_results(tmp_path):
    sets = {"n_agents": "4,6,8", "n_steps": "5", "trials": "300"}
    one = run_checks(["ee-monte-carlo"], runner=Runner(jobs=1), sets=sets)
    two = run_checks(["ee-monte-carlo"], runner=Runner(jobs=2, backend="loky"), sets=sets)
    keep = ("case", "predicted", "measured", "ci", "params", "verdict")
    assert [{k: r[k] for k in keep} for r in one] == [{k: r[k] for k in keep} for r in two]
    assert len(one) == 3 * 3


def test_grid_order_does_not_change_results():
    a = run_checks(["zero-noise"], runner=Runner(), sets={"n_agents": "4,6", "n_steps": "5"})
    b = run_checks(["zero-noise"], runner=Runner(), sets={"n_agents": "6,4", "n_steps": "5"})
    key = lambda r: (r["params"]["n_agents"], r["case"])  # noqa: E731
    assert sorted((key(r), r["measured"]) for r in a) == sorted((key(r), r["measured"]) for r in b)


def test_cli_reports_hits_and_misses(capsys, tmp_path):
    argv = ["check", "zero-noise", "--quiet", "--cache-dir", str(tmp_path), *FAST]
    assert main(argv) == 0
    assert "cache: 0 hit(s), 1 miss(es)" in capsys.readouterr().err
    assert main(argv) == 0
    assert "cache: 1 hit(s), 0 miss(es)" in capsys.readouterr().err
    assert main([*argv, "--force"]) == 0
    assert "cache: 0 hit(s), 1 miss(es)" in capsys.readouterr().err


def test_cli_grid_json(capsys, tmp_path):
    grid = tmp_path / "g.toml"
    grid.write_text("n_agents = [4, 6]\nn_steps = 5\n")
    assert main(["check", "zero-noise", "--json", "--no-cache", "--grid", str(grid)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted({r["params"]["n_agents"] for r in rows}) == [4, 6]
    assert all(r["cached"] is False for r in rows)


def test_backend_errors_are_clear():
    sets = {"n_agents": "4,6", "n_steps": "5"}
    with pytest.raises(InvalidInputError, match="--backend 'nope' is not known"):
        run_checks(["zero-noise"], runner=Runner(jobs=2, backend="nope"), sets=sets)
    try:
        import dask.distributed  # noqa: F401
    except ImportError:
        with pytest.raises(InvalidInputError, match=r"dask\.distributed"):
            run_checks(["zero-noise"], runner=Runner(jobs=2, backend="dask"), sets=sets)


def test_threading_backend_gives_the_same_numbers():
    sets = {"n_agents": "4,6", "n_steps": "5"}
    a = run_checks(["zero-noise"], runner=Runner(jobs=1), sets=sets)
    b = run_checks(["zero-noise"], runner=Runner(jobs=2, backend="threading"), sets=sets)
    assert [r["measured"] for r in a] == [r["measured"] for r in b]


def test_editing_an_input_file_misses_the_cache(tmp_path, monkeypatch):
    from numerics.checks import get_check
    from numerics.runner import file_digests

    data = tmp_path / "data.csv"
    data.write_text("x,y\n1,0\n2,1\n")
    check = get_check("zero-noise")
    original = type(check).parameters

    def with_file(self, quick, overrides=None):
        return {**original(self, quick, overrides), "data": str(data)}

    monkeypatch.setattr(type(check), "parameters", with_file)
    runner = Runner(cache_dir=tmp_path / "cache")
    assert not runner.run_point("zero-noise", {"n_steps": 5}).cached
    assert runner.run_point("zero-noise", {"n_steps": 5}).cached
    before = file_digests((("data", str(data)), ("graph", "ring")))
    data.write_text("x,y\n1,0\n3,1\n")
    after = file_digests((("data", str(data)), ("graph", "ring")))
    assert [k for k, _ in before] == ["data"] and before != after  # "ring" is not a file
    assert not runner.run_point("zero-noise", {"n_steps": 5}).cached
