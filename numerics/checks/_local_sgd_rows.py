"""Row builders shared by the local SGD check modules (not a check module itself)."""

from __future__ import annotations

from typing import Any

import numpy as np

from numerics.checks.base import Check, CheckResult

NOTE = "shared/research/local_sgd_bounds.md"
TOL = 1e-12  # relative tolerance of identities that hold to round-off
Params = dict[str, Any]


def _deviation(
    check: Check, case: str, dev: float, tol: float, p: Params, seed: int, details: str
) -> CheckResult:
    """Row for an exact identity: the measured deviation must be within ``tol`` of 0."""
    return check.result(
        case,
        0.0,
        dev,
        (dev - tol, dev + tol),
        p,
        seed,
        f"{details} (tolerance {tol:.0e})",
        relation="equal",
    )


def _fact(
    check: Check,
    case: str,
    predicted: float,
    measured: float,
    p: Params,
    seed: int,
    details: str,
    relation: str,
) -> CheckResult:
    """Row for a deterministic inequality (no interval beyond the value itself)."""
    return check.result(
        case, predicted, measured, (measured, measured), p, seed, details, relation=relation
    )


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    """max |a − b| / max |b| over entries finite in both."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.max(np.abs(a[ok] - b[ok])) / max(np.max(np.abs(b[ok])), 1e-300))


def _fmt(values) -> str:
    return ", ".join(f"{v:.3g}" for v in values)
