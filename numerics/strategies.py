"""Strategies as (A1, A2) schedules of the unified error recursion.

Every strategy is the same linear recursion with a different placement of the
combination matrix (flatness paper, arXiv 2406.20006, eq. (41) of v2 [S, up to transposes];
exact form [R] in shared/research/flatness_tradeoff.md §2.6):

    W̃_n = A2ᵀ (A1ᵀ − μ H) W̃_{n−1} + μ A2ᵀ d + μ A2ᵀ s_n,

with one row of W̃ per agent. The table (shared/DESIGN.md):

    centralized   A1 = I   A2 = J = 11ᵀ/K      (the server averages K·B samples)
    consensus     A1 = A   A2 = I              (decentralized SGD)
    diffusion     A1 = I   A2 = A              (adapt-then-combine)
    independent   A1 = I   A2 = I              (K separate SGD runs)
    local_sgd     A1 = I   A2 = I, and J every ``local_steps``-th step (time-varying)

A new strategy is a new ``Schedule``, not a new code path: the moment engine and the
simulator only ever ask a schedule for its (A1, A2) at step n.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from numerics._validate import positive_int
from numerics.errors import InvalidInputError
from numerics.topology import validate_combination_matrix

STRATEGIES = ("centralized", "consensus", "diffusion")
ALL_STRATEGIES = (*STRATEGIES, "independent", "local_sgd")


@dataclass(frozen=True, eq=False)
class Schedule:
    """A periodic sequence of combination pairs: step n (1-based) uses ``pairs[(n-1) % P]``.

    ``pairs`` is a tuple of (A1, A2), each a K×K array. Constant strategies have P = 1.
    """

    name: str
    pairs: tuple[tuple[np.ndarray, np.ndarray], ...]

    @property
    def period(self) -> int:
        """P, the number of steps after which the schedule repeats."""
        return len(self.pairs)

    @property
    def n_agents(self) -> int:
        """K, the size of the combination matrices."""
        return self.pairs[0][0].shape[0]

    def at(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """(A1, A2) used at step ``step`` = 1, 2, ..."""
        return self.pairs[(step - 1) % self.period]

    def transposed_pairs(self) -> list[tuple[np.ndarray | None, np.ndarray | None]]:
        """(A1ᵀ, A2ᵀ) per phase as contiguous arrays for the simulators' agent-axis products,
        with ``None`` standing for the identity (a step that skips the product)."""
        eye = np.eye(self.n_agents)
        return [
            tuple(None if np.array_equal(M, eye) else np.ascontiguousarray(M.T) for M in pair)
            for pair in self.pairs
        ]


def averaging_matrix(n_agents: int) -> np.ndarray:
    """J = 11ᵀ / K, full averaging."""
    return np.full((n_agents, n_agents), 1.0 / n_agents)


def make_schedule(
    strategy: str, A: np.ndarray, *, local_steps: int | None = None, validate: bool = True
) -> Schedule:
    """The (A1, A2) schedule of a named strategy on combination matrix A (K×K).

    ``A`` is used by consensus and diffusion only; its size fixes K for all strategies.
    For those two, A must be doubly stochastic, connected and aperiodic (checked unless
    ``validate=False``, for deliberate special cases such as A = I).
    ``local_steps`` (required for ``local_sgd``) is the number of local steps per round.
    """
    A = np.asarray(A, dtype=float)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise InvalidInputError(f"A must be a square K×K matrix; got shape {A.shape}")
    if validate and strategy in ("consensus", "diffusion"):
        A = validate_combination_matrix(A, doubly_stochastic=True)
    K = A.shape[0]
    eye, avg = np.eye(K), averaging_matrix(K)
    if strategy == "centralized":
        pairs = ((eye, avg),)
    elif strategy == "consensus":
        pairs = ((A, eye),)
    elif strategy == "diffusion":
        pairs = ((eye, A),)
    elif strategy == "independent":
        pairs = ((eye, eye),)
    elif strategy == "local_sgd":
        if local_steps is None:
            raise InvalidInputError("local_sgd needs local_steps (an integer >= 1)")
        p = positive_int(local_steps, "local_steps")
        pairs = tuple((eye, avg if i == p - 1 else eye) for i in range(p))
    else:
        raise InvalidInputError(
            f"strategy={strategy!r} is not known; allowed: {', '.join(ALL_STRATEGIES)}"
        )
    return Schedule(strategy, pairs)


def as_schedule(strategy: str | Schedule, A: np.ndarray | None, **kwargs) -> Schedule:
    """Accept a strategy name (with its A) or a ready ``Schedule``."""
    if isinstance(strategy, Schedule):
        return strategy
    if A is None:
        raise InvalidInputError(f"strategy={strategy!r} needs a combination matrix A")
    return make_schedule(strategy, A, **kwargs)


def as_schedules(
    strategies: str | Schedule | Sequence[str | Schedule],
    A: np.ndarray | None,
    n_agents: int,
    **kwargs,
) -> list[Schedule]:
    """Distinct schedules for ``n_agents`` agents from names (with their A) or schedules.

    The common front door of the simulators: one strategy or several, no name twice, and every
    schedule's size equal to the problem's number of agents (else ``InvalidInputError``).
    """
    if isinstance(strategies, (str, Schedule)):
        strategies = [strategies]
    schedules = [as_schedule(s, A, **kwargs) for s in strategies]
    names = [s.name for s in schedules]
    if len(set(names)) != len(names):
        raise InvalidInputError(f"strategies must be distinct; got {names}")
    for s in schedules:
        if s.n_agents != n_agents:
            raise InvalidInputError(
                f"A is {s.n_agents}×{s.n_agents} but the problem has {n_agents} agents"
            )
    return schedules
