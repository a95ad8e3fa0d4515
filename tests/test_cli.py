"""The dlcheck command: exit codes, one-line errors, JSON output, the quick tier."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from numerics.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_list(capsys):
    code, out, _ = run(capsys, "list")
    assert code == 0 and "ee-monte-carlo" in out and "relation" in out


def test_check_all_quick_passes_within_three_minutes(capsys):
    # budget: issue 4 gives its checks 2 min, issue 5 its checks 3 min, the report 10 min;
    # the whole quick tier measured 1.5-2 min on 2 cores. CPU time, not wall time, so a busy
    # machine cannot fail it; the checks run on one BLAS thread, so the two agree when idle.
    start = time.process_time()
    code, out, _ = run(capsys, "check", "--all", "--quick", "--quiet")
    elapsed = time.process_time() - start
    assert code == 0, out
    assert "0 failed" in out
    assert elapsed < 180


def test_check_json(capsys):
    code, out, _ = run(capsys, "check", "zero-noise", "--json", "--seed", "3")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) == 3
    for row in rows:
        assert {"predicted", "measured", "ci", "relation", "verdict", "params", "seed"} <= set(row)
        assert row["seed"] == 3


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["check", "nope"], "no check named 'nope'"),
        (["check"], "give check names or --all"),
        (["check", "zero-noise", "--set", "foo=1"], "no parameter 'foo'"),
        (["check", "zero-noise", "--set", "n_agents"], "--set expects key=value"),
        (["check", "zero-noise", "--set", "n_agents=abc"], "n_agents='abc'"),
        (["check", "zero-noise", "--set", "step_size=9"], "step_size=9 is outside the stable"),
        (["check", "zero-noise", "--set", "graph=moebius"], "moebius"),
        (["check", "--all", "--set", "zzz=1"], "zzz"),
        (["check", "ee-monte-carlo", "--trials", "0"], "trials"),
        (["check", "--bogus"], "unrecognized arguments"),
        (["check", "zero-noise", "--seed", "-1"], "must be an integer >= 0"),
        (["check", "--all", "--quick", "--full"], "not allowed with argument"),
        (["figures", "nope"], "figure 'nope' is not known"),
        (["derive", "no-such-quantity"], "no derivation named 'no-such-quantity'"),
    ],
)
def test_bad_input_is_one_line_exit_2(capsys, argv, fragment):
    usage_error = "--bogus" in argv or "--full" in argv or "-1" in argv
    with pytest.raises(SystemExit) if usage_error else _nullcontext() as exc:
        code = main(argv)
    if exc is not None and hasattr(exc, "value"):
        code = exc.value.code
    err = capsys.readouterr().err
    assert code == 2
    assert fragment in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def test_console_script_no_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "numerics.cli", "check", "zero-noise", "--set", "step_size=-1"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "step_size" in proc.stderr and "Traceback" not in proc.stderr


def test_derive_without_name_lists(capsys):
    code, _, err = run(capsys, "derive")
    assert code == 0 and not err


def test_full_and_quick_select_parameters(capsys):
    from numerics.checks import get_check

    check = get_check("ee-monte-carlo")
    assert check.quick["n_agents"] != check.defaults["n_agents"]
    sizes = {}
    for flag in ("--full", "--quick"):
        code, out, _ = run(
            capsys,
            "check",
            "ee-monte-carlo",
            flag,
            "--json",
            "--quiet",
            "--set",
            "trials=300",
            "--set",
            "n_steps=5",
        )
        assert code == 0
        sizes[flag] = json.loads(out.splitlines()[0])["params"]["n_agents"]
    assert sizes == {"--full": check.defaults["n_agents"], "--quick": check.quick["n_agents"]}


def test_check_defaults_to_the_quick_tier(capsys):
    from numerics.checks import get_check

    code, out, _ = run(
        capsys,
        "check",
        "ee-monte-carlo",
        "--json",
        "--quiet",
        "--no-cache",
        "--set",
        "trials=300",
        "--set",
        "n_steps=5",
    )
    assert code == 0
    assert (
        json.loads(out.splitlines()[0])["params"]["n_agents"]
        == (get_check("ee-monte-carlo").quick["n_agents"])
    )
