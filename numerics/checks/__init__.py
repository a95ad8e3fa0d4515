"""Registered claims. Importing the submodules listed in ``MODULES`` registers their checks."""

from __future__ import annotations

import importlib

from numerics.checks.base import REGISTRY, Check, CheckResult, get_check, register, verdict

MODULES = ("numerics.checks.core",)


def load_all() -> dict[str, Check]:
    """Import every check module and return the registry."""
    for module in MODULES:
        importlib.import_module(module)
    return REGISTRY


__all__ = ["REGISTRY", "Check", "CheckResult", "get_check", "load_all", "register", "verdict"]
