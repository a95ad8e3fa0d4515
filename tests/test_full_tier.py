"""The full (paper-size) tier of every check passes: ``pytest -m slow`` (not in CI; hours of
CPU for the logistic checks on digits). The quick tier is tested everywhere else."""

from __future__ import annotations

import pytest

from numerics.checks import load_all

NAMES = sorted(load_all())


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_full_check_passes(name):
    rows = load_all()[name].run(quick=False, seed=0)
    assert rows
    failed = [(r.case, r.predicted, r.measured, r.ci, r.details) for r in rows if not r.verdict]
    assert not failed, failed
