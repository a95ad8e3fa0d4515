"""The registry of claims and the record every check returns.

A check states a claim, its source and how sure we are of it (tag), and the relation the
claim asserts between a predicted and a measured value:

    equal   the prediction lies inside the measured value's interval
    upper   the prediction is an upper bound: the interval reaches down to it (lo <= predicted)
    lower   the prediction is a lower bound: the interval reaches up to it (hi >= predicted)
    slope   the predicted exponent lies inside the fitted slope's interval
    outside the claim is that a prediction FAILS: the interval (widened by any stated factor)
            excludes it (used to record where a local theory stops predicting)

Statistical intervals use a family-wise level of 1 − α (α = 1e-3 by default, Bonferroni over
the comparisons a check makes). Deterministic comparisons use a numerical tolerance band,
stated in the record's ``details``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from numerics.errors import InvalidInputError

RELATIONS = ("equal", "upper", "lower", "slope", "outside")


@dataclass
class CheckResult:
    """One row of a check: (predicted, measured, ci, relation, verdict, params, seed)."""

    check: str
    case: str
    claim: str
    source: str
    tag: str
    relation: str
    predicted: float
    measured: float
    ci: tuple[float, float]
    verdict: bool
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    details: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (floats kept, tuples as lists)."""
        out = asdict(self)
        out["ci"] = list(self.ci)
        out["verdict"] = "pass" if self.verdict else "fail"
        return out


def verdict(relation: str, predicted: float, ci: tuple[float, float]) -> bool:
    """Whether ``predicted`` stands in ``relation`` to the interval ``ci`` (see module doc)."""
    lo, hi = ci
    if any(math.isnan(v) for v in (predicted, lo, hi)):
        return False
    if relation in ("equal", "slope"):
        return lo <= predicted <= hi
    if relation == "upper":
        return lo <= predicted
    if relation == "lower":
        return hi >= predicted
    if relation == "outside":
        return not lo <= predicted <= hi
    raise InvalidInputError(f"relation={relation!r} is not known; allowed: {', '.join(RELATIONS)}")


CheckFunction = Callable[["Check", dict[str, Any], int], list[CheckResult]]


@dataclass(frozen=True)
class Check:
    """A registered claim: metadata, default parameters (full and quick) and its function."""

    name: str
    claim: str
    source: str
    tag: str
    relation: str
    function: CheckFunction
    defaults: dict[str, Any]
    quick: dict[str, Any]

    def parameters(self, quick: bool, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """Defaults, then the quick values if ``quick``, then the overrides (type-checked)."""
        params = dict(self.defaults)
        if quick:
            params.update(self.quick)
        for key, value in (overrides or {}).items():
            if key not in self.defaults:
                allowed = ", ".join(sorted(self.defaults)) or "none"
                raise InvalidInputError(
                    f"check {self.name!r} has no parameter {key!r}; allowed: {allowed}"
                )
            params[key] = coerce(value, self.defaults[key], key)
        return params

    def run(
        self, *, quick: bool = False, seed: int = 0, overrides: dict[str, Any] | None = None
    ) -> list[CheckResult]:
        """Run the check and return its rows."""
        return self.function(self, self.parameters(quick, overrides), seed)

    def result(
        self,
        case: str,
        predicted: float,
        measured: float,
        ci: tuple[float, float],
        params: dict[str, Any],
        seed: int,
        details: str = "",
        relation: str | None = None,
    ) -> CheckResult:
        """Build a row, deciding its verdict from the relation."""
        rel = relation or self.relation
        ci = (float(ci[0]), float(ci[1]))
        return CheckResult(
            self.name,
            case,
            self.claim,
            self.source,
            self.tag,
            rel,
            float(predicted),
            float(measured),
            ci,
            verdict(rel, float(predicted), ci),
            dict(params),
            seed,
            details,
        )


REGISTRY: dict[str, Check] = {}


def register(
    name: str,
    *,
    claim: str,
    source: str,
    tag: str,
    relation: str,
    defaults: dict[str, Any],
    quick: dict[str, Any] | None = None,
) -> Callable[[CheckFunction], CheckFunction]:
    """Decorator adding a check function to ``REGISTRY`` under ``name``."""
    if relation not in RELATIONS:
        raise ValueError(f"relation={relation!r}; allowed: {RELATIONS}")

    def wrap(func: CheckFunction) -> CheckFunction:
        if name in REGISTRY:
            raise ValueError(f"check {name!r} registered twice")
        REGISTRY[name] = Check(
            name, claim, source, tag, relation, func, dict(defaults), dict(quick or {})
        )
        return func

    return wrap


def coerce(value: Any, default: Any, key: str) -> Any:
    """Convert a ``--set`` value (often a string) to the type of the parameter's default.

    Only literal parsing (int(), float(), a fixed set of booleans); nothing is evaluated.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        if isinstance(default, bool):
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
    except ValueError:
        kind = type(default).__name__
        raise InvalidInputError(f"parameter {key}={value!r} is not a valid {kind}") from None
    return text


def get_check(name: str) -> Check:
    """The registered check ``name`` or a clear error listing the registered names."""
    from numerics.checks import load_all

    load_all()
    if name not in REGISTRY:
        raise InvalidInputError(f"no check named {name!r}; registered: {', '.join(REGISTRY)}")
    return REGISTRY[name]
