"""Errors raised on bad input or numerical failure.

Every message names the parameter, the value received and what is allowed, so that
the CLI can print it as one line (exit code 2) without a traceback.
"""

from __future__ import annotations


class DlcheckError(Exception):
    """Base class of every error the toolkit raises on purpose."""


class InvalidInputError(DlcheckError, ValueError):
    """A parameter has a value outside what is allowed (shape, sign, symmetry, ...)."""


class UnstableStepSizeError(InvalidInputError):
    """The step size is outside the range where the error recursion is mean-square stable."""

    def __init__(self, strategy: str, step_size: float, stable_below: float, detail: str = ""):
        self.strategy = strategy
        self.step_size = step_size
        self.stable_below = stable_below
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"step_size={step_size:.6g} is outside the stable range for {strategy}: "
            f"the recursion is stable for 0 < step_size < {stable_below:.6g}{extra}"
        )


class DivergenceError(DlcheckError, FloatingPointError):
    """A simulation produced NaN or inf."""

    def __init__(self, what: str, step: int):
        self.step = step
        super().__init__(f"{what} diverged (NaN or inf) at step {step}")
