"""Registered claims. Every module of this package (but ``base`` and ``instances``) is a check
module: importing it registers its checks, so a new module needs no edit here."""

from __future__ import annotations

import importlib
import pkgutil

from numerics.checks.base import REGISTRY, Check, CheckResult, get_check, register, verdict

_NOT_CHECKS = {"base", "instances"}


def check_modules() -> list[str]:
    """Names of the check modules, sorted (the order of ``dlcheck list``)."""
    return sorted(
        f"{__name__}.{m.name}"
        for m in pkgutil.iter_modules(__path__)
        if m.name not in _NOT_CHECKS and not m.name.startswith("_")
    )


def load_all() -> dict[str, Check]:
    """Import every check module and return the registry."""
    for module in check_modules():
        importlib.import_module(module)
    return REGISTRY


__all__ = ["REGISTRY", "Check", "CheckResult", "get_check", "load_all", "register", "verdict"]
