"""Small validation helpers shared by the numerics modules (messages name parameter and value)."""

from __future__ import annotations

import numpy as np

from numerics.errors import InvalidInputError


def as_float_array(value, name: str, ndim: int) -> np.ndarray:
    """Return ``value`` as a finite float array with ``ndim`` dimensions, or raise."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"{name} must be a numeric array; got {type(value).__name__}"
        ) from exc
    if arr.ndim != ndim:
        raise InvalidInputError(f"{name} must have {ndim} dimensions; got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InvalidInputError(f"{name} contains NaN or inf")
    return arr


def positive_int(value, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an int >= ``minimum``, or raise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InvalidInputError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def positive_float(value, name: str) -> float:
    """Return ``value`` as a finite float > 0, or raise."""
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be a positive number; got {value!r}") from exc
    if not np.isfinite(out) or out <= 0:
        raise InvalidInputError(f"{name} must be a positive finite number; got {value!r}")
    return out


def check_symmetric(mats: np.ndarray, name: str, rtol: float = 1e-10) -> None:
    """Raise if any matrix in the stack ``mats`` (..., d, d) is not symmetric."""
    asym = np.abs(mats - np.swapaxes(mats, -1, -2)).max(axis=(-1, -2))
    scale = np.maximum(np.abs(mats).max(axis=(-1, -2)), 1.0)
    bad = np.flatnonzero(np.atleast_1d(asym > rtol * scale))
    if bad.size:
        k = int(bad[0])
        raise InvalidInputError(
            f"{name}[{k}] is not symmetric (max |M - M^T| = {np.atleast_1d(asym)[k]:.3g}); "
            "a symmetric matrix is required"
        )


def min_eigenvalues(mats: np.ndarray) -> np.ndarray:
    """Smallest eigenvalue of each symmetric matrix in a stack (..., d, d)."""
    return np.linalg.eigvalsh(mats)[..., 0]


def check_psd(mats: np.ndarray, name: str, rtol: float = 1e-10) -> None:
    """Raise if any symmetric matrix in the stack has a negative eigenvalue beyond round-off."""
    lo = np.atleast_1d(min_eigenvalues(mats))
    scale = np.maximum(np.atleast_1d(np.abs(mats).max(axis=(-1, -2))), 1.0)
    bad = np.flatnonzero(lo < -rtol * scale)
    if bad.size:
        k = int(bad[0])
        raise InvalidInputError(
            f"{name}[{k}] is indefinite (smallest eigenvalue {lo[k]:.3g}); "
            "a positive semi-definite matrix is required"
        )
