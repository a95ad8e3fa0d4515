"""Symbolic theory: derivations and bound formulas with sympy (never imports ``numerics``).

Every module of this package registers the quantities it can print with
``register_derivation``; ``dlcheck derive NAME`` finds them through ``load_all`` (so a new
module needs no edit here). A derivation function takes ``strategy`` (or None), ``order``
(or None) and ``latex`` and returns the text to print.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass


class DerivationError(ValueError):
    """Bad arguments to a derivation (unknown strategy, unsupported order, ...)."""


@dataclass(frozen=True)
class Derivation:
    """A printable derived quantity."""

    name: str
    description: str
    function: Callable[[str | None, int | None, bool], str]
    strategies: tuple[str, ...] = ()
    orders: tuple[int, ...] = ()


DERIVATIONS: dict[str, Derivation] = {}


def register_derivation(
    name: str, description: str, *, strategies: tuple[str, ...] = (), orders: tuple[int, ...] = ()
) -> Callable:
    """Decorator adding ``function(strategy, order, latex) -> str`` to ``DERIVATIONS``."""

    def wrap(function: Callable[[str | None, int | None, bool], str]) -> Callable:
        if name in DERIVATIONS:
            raise ValueError(f"derivation {name!r} registered twice")
        DERIVATIONS[name] = Derivation(name, description, function, strategies, orders)
        return function

    return wrap


def load_all() -> dict[str, Derivation]:
    """Import every theory module and return the registry."""
    for m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not m.name.startswith("_"):
            importlib.import_module(f"{__name__}.{m.name}")
    return DERIVATIONS


def derive(
    name: str, strategy: str | None = None, order: int | None = None, latex: bool = False
) -> str:
    """The text of derivation ``name``; raises ``DerivationError`` on bad arguments."""
    registry = load_all()
    if name not in registry:
        allowed = ", ".join(sorted(registry)) or "none yet"
        raise DerivationError(f"no derivation named {name!r}; available: {allowed}")
    d = registry[name]
    if d.strategies and strategy not in d.strategies:
        raise DerivationError(
            f"{name} needs --strategy, one of {', '.join(d.strategies)}; got {strategy!r}"
        )
    if d.orders and order is not None and order not in d.orders:
        raise DerivationError(
            f"{name} supports --order {', '.join(map(str, d.orders))}; got {order}"
        )
    return d.function(strategy, order, latex)
