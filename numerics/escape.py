"""Escape from the sharp basin of a two-well landscape: vectorized Monte Carlo of the strategies.

Dynamics (flatness paper, arXiv 2406.20006, §2.5 recursions [R]; shared/research/
flatness_tradeoff.md §2.5–2.6), with one row per agent and the (A1, A2) schedule of
``numerics.strategies.make_schedule``:

    W_n = A2ᵀ [ A1ᵀ W_{n−1} − μ (∇J_k(W_{n−1}) + L_k z_n) ],     z_n ~ N(0, I),  L_k L_kᵀ = R_k/B,

i.e. true SGD on the landscape (``numerics.landscapes.LandscapeNetwork``), every agent
starting at the sharp minimum w_s. The noise is drawn exactly as ``numerics.simulate`` draws
it (same blocks, generators and layout), so on a quadratic landscape W_n = w* − W̃_n of
``simulate`` with the same (seed, experiment), and all strategies of one call share the draws
(common random numbers, paired comparisons).

What is measured [M] (definitions made here):

* exit time τ = min{n ≥ 1 : the network has left the sharp basin at step n}; "left" is, by
  ``criterion``, 'centroid': the network average (1/K) Σ_k w_{k,n} lies beyond the barrier
  (default; the quantity every strategy moves with the same noise, see below), 'all': every
  agent does, 'any': some agent does. Beyond the barrier = past the hyperplane through the
  saddle normal to the well axis (``TwoWellLandscape.outside_sharp_basin``). τ is a first
  passage: a later return does not undo it. τ = ∞ (censored) if it did not happen by N steps.
* P(τ ≤ n) for n = 1..N, with Clopper–Pearson (exact binomial) intervals;
* the restricted mean E min(τ, N) = Σ_{n<N} P(τ > n) with a normal interval; it equals E τ
  when nothing is censored and is a lower bound of E τ otherwise (the censored fraction is
  always reported alongside);
* EE_n = (1/K) Σ_k E J(w_{k,n}) − J(w_s) with the true aggregate loss J, compared with the
  quadratic theory of the sharp basin (``theory.predict.escaping_efficiency`` on
  ``LandscapeNetwork.local_network()``).

For consensus and diffusion (A doubly stochastic) the centroid moves as
c_n = c_{n−1} − μ (1/K) Σ_k (∇J(w_{k,n−1}) + b_k + s_{k,n}), the same noise as centralized:
the strategies differ only in where the gradients are evaluated (at spread-out agents).

Randomness and memory: as in ``numerics.simulate`` (blocks of ``BLOCK_SIZE`` trials keyed by
(seed, experiment, block); chunks of blocks under ``memory_cap``; one BLAS thread). Results
do not depend on the memory cap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.stats
from threadpoolctl import threadpool_limits

from numerics._validate import positive_float, positive_int
from numerics.errors import DivergenceError, InvalidInputError
from numerics.landscapes import LandscapeNetwork
from numerics.progress import progress_bar
from numerics.simulate import BLOCK_SIZE, DEFAULT_MEMORY_CAP, _chunks, block_generator
from numerics.stats import DEFAULT_ALPHA, RunningMoments, mean_interval, summarize
from numerics.strategies import Schedule, as_schedules
from theory import predict as theory

CRITERIA = ("centroid", "all", "any")


def clopper_pearson(
    successes: np.ndarray, trials: int, *, alpha: float = DEFAULT_ALPHA, comparisons: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Exact binomial interval at level 1 − α/comparisons, vectorized over ``successes``:
    [Beta⁻¹(a/2; x, N−x+1), Beta⁻¹(1 − a/2; x+1, N−x)], a = α/comparisons (the interval of
    ``scipy.stats.binomtest(...).proportion_ci(method='exact')``)."""
    x = np.asarray(successes, dtype=float)
    a = alpha / comparisons
    with np.errstate(invalid="ignore"):
        lo = np.where(x > 0, scipy.stats.beta.ppf(a / 2, x, trials - x + 1), 0.0)
        hi = np.where(x < trials, scipy.stats.beta.isf(a / 2, x + 1, trials - x), 1.0)
    return lo, hi


@dataclass(frozen=True)
class EscapeResult:
    """One strategy: exit times per trial (∞ = censored) and per-step EE_n (index 0 is n=1)."""

    strategy: str
    n_steps: int
    exit_times: np.ndarray
    ee_mean: np.ndarray
    ee_standard_error: np.ndarray

    @property
    def n_trials(self) -> int:
        """Number of trials."""
        return self.exit_times.size

    def exited_by(self, n: int | None = None) -> np.ndarray:
        """Indicator per trial of τ ≤ n (n = N by default)."""
        return self.exit_times <= (self.n_steps if n is None else n)

    @property
    def censored_fraction(self) -> float:
        """Fraction of trials still in the sharp basin after N steps."""
        return float(np.mean(~np.isfinite(self.exit_times)))

    def escape_probability(
        self, *, alpha: float = DEFAULT_ALPHA, comparisons: int = 1
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(P̂(τ ≤ n), lower, upper) for n = 1..N; Clopper–Pearson at level 1 − α/comparisons."""
        finite = self.exit_times[np.isfinite(self.exit_times)].astype(np.int64)
        counts = np.cumsum(np.bincount(finite, minlength=self.n_steps + 1)[1:])
        lo, hi = clopper_pearson(counts, self.n_trials, alpha=alpha, comparisons=comparisons)
        return counts / self.n_trials, lo, hi

    def restricted_mean_exit_time(
        self, *, alpha: float = DEFAULT_ALPHA, comparisons: int = 1
    ) -> tuple[float, float, float]:
        """(mean of min(τ, N), lower, upper): normal interval; a lower bound of E τ if censored."""
        t = np.minimum(self.exit_times, self.n_steps)
        se = float(t.std(ddof=1) / math.sqrt(t.size)) if t.size > 1 else 0.0
        lo, hi = mean_interval(float(t.mean()), se, alpha=alpha, comparisons=comparisons)
        return float(t.mean()), float(lo), float(hi)

    def ee_interval(
        self, *, alpha: float = DEFAULT_ALPHA, comparisons: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """Normal interval of each step's measured EE_n at level 1 − α/comparisons."""
        return mean_interval(
            self.ee_mean, self.ee_standard_error, alpha=alpha, comparisons=comparisons
        )


@dataclass(frozen=True)
class EscapeSimulation:
    """Results of one ``simulate_escape`` call (trials aligned across strategies: CRN)."""

    results: dict[str, EscapeResult]
    criterion: str

    def __getitem__(self, strategy: str) -> EscapeResult:
        return self.results[strategy]

    def probability_difference(
        self, first: str, second: str, n: int, *, alpha: float = DEFAULT_ALPHA,
        comparisons: int = 1,
    ) -> tuple[float, float, float]:  # fmt: skip
        """P(τ_first ≤ n) − P(τ_second ≤ n) from paired indicators (same draws), with a normal
        interval of the mean paired difference at level 1 − α/comparisons."""
        diff = self[first].exited_by(n).astype(float) - self[second].exited_by(n).astype(float)
        se = float(diff.std(ddof=1) / math.sqrt(diff.size)) if diff.size > 1 else 0.0
        lo, hi = mean_interval(float(diff.mean()), se, alpha=alpha, comparisons=comparisons)
        return float(diff.mean()), float(lo), float(hi)


def bytes_per_block(n_agents: int, dim: int, n_strategies: int) -> int:
    """Working memory of one block: ~6 arrays per strategy (state, gradient, temporaries) + 3."""
    return n_agents * BLOCK_SIZE * dim * 8 * (6 * n_strategies + 3)


def _combine(At: np.ndarray | None, W: np.ndarray) -> np.ndarray:
    """Aᵀ W on the agent axis of W (blocks, K, b, d); ``None`` stands for I."""
    if At is None:
        return W
    nb, K = W.shape[:2]
    return np.matmul(At, W.reshape(nb, K, -1)).reshape(W.shape)


def simulate_escape(
    strategies: Sequence[str | Schedule],
    A: np.ndarray | None,
    network: LandscapeNetwork,
    step_size: float,
    n_steps: int,
    n_trials: int,
    *,
    seed: int = 0,
    experiment: str = "escape",
    criterion: str = "centroid",
    memory_cap: int = DEFAULT_MEMORY_CAP,
) -> EscapeSimulation:
    """Monte Carlo of the strategies on ``network`` from the sharp minimum (module doc).

    Returns per strategy the exit time of each trial and the per-step EE_n (mean and standard
    error). Raises ``DivergenceError`` (with the step) if a loss becomes NaN or infinite.
    """
    if not isinstance(network, LandscapeNetwork):
        raise InvalidInputError(f"network must be a LandscapeNetwork; got {type(network).__name__}")
    schedules = as_schedules(strategies, A, network.n_agents)
    names = [s.name for s in schedules]
    K, d = network.n_agents, network.dim
    if criterion not in CRITERIA:
        raise InvalidInputError(
            f"criterion={criterion!r} is not known; allowed: {', '.join(CRITERIA)}"
        )
    mu = positive_float(step_size, "step_size")
    seed = positive_int(seed, "seed", minimum=0)
    n_steps = positive_int(n_steps, "n_steps")
    n_trials = positive_int(n_trials, "n_trials")
    memory_cap = positive_int(memory_cap, "memory_cap")
    per_block = bytes_per_block(K, d, len(schedules))
    if per_block > memory_cap:
        raise InvalidInputError(
            f"memory_cap={memory_cap} bytes is below the {per_block} bytes one block of "
            f"{BLOCK_SIZE} trials needs"
        )
    blocks_per_chunk = max(1, memory_cap // per_block)
    n_blocks = -(-n_trials // BLOCK_SIZE)

    land = network.landscape
    barrier = float(land.saddle.point[0])
    base = float(land.minimum("sharp").value)
    tilts = np.asarray(network.tilts)[:, None, :]  # (K, 1, d)
    mu_l_t = np.ascontiguousarray(
        mu * np.sqrt(1.0 / network.batch_size) * network.noise_levels[:, None, None]
        * np.eye(d)[None]
    )  # μ L_kᵀ, L_k = σ_k I / √B (as QuadraticNetwork.step_noise_factors)  # fmt: skip
    pairs = {nm: s.transposed_pairs() for nm, s in zip(names, schedules, strict=True)}
    exits = {nm: np.full(n_trials, np.inf) for nm in names}
    ee_stats = {nm: RunningMoments() for nm in names}

    total = -(-n_blocks // blocks_per_chunk) * n_steps
    # overflow on the way to inf is expected when a run diverges; it is reported below
    with (
        threadpool_limits(1),
        np.errstate(over="ignore", invalid="ignore"),
        progress_bar(total, "escape Monte Carlo", "step") as bar,
    ):
        for chunk in _chunks(n_blocks, blocks_per_chunk):
            gens = [block_generator(seed, experiment, b) for b in chunk]
            shape = (len(chunk), K, BLOCK_SIZE, d)
            first = chunk.start * BLOCK_SIZE
            used = min(n_trials - first, len(chunk) * BLOCK_SIZE)
            z = np.empty(shape)
            state = {nm: np.broadcast_to(network.start, shape).copy() for nm in names}
            grad = {nm: land.gradient(state[nm]) + tilts for nm in names}
            left = {nm: np.zeros(len(chunk) * BLOCK_SIZE, dtype=bool) for nm in names}
            times = {nm: np.full(len(chunk) * BLOCK_SIZE, np.inf) for nm in names}
            ee_chunk = {nm: np.empty((2, n_steps)) for nm in names}
            for n in range(1, n_steps + 1):
                for j, gen in enumerate(gens):
                    gen.standard_normal(out=z[j])
                noise = np.matmul(z, mu_l_t)  # μ L_k z per block, agent and trial
                for nm in names:
                    A1t, A2t = pairs[nm][(n - 1) % len(pairs[nm])]
                    x = _combine(A1t, state[nm]) - mu * grad[nm] - noise
                    W = _combine(A2t, x)
                    value, g = land.value_and_gradient(W)
                    state[nm], grad[nm] = W, g + tilts
                    ee = (value.mean(axis=1) - base).reshape(-1)  # (trials,) agent average
                    if not np.all(np.isfinite(ee[:used])):
                        raise DivergenceError(f"escape simulation of {nm} (step_size={mu:g})", n)
                    ee_chunk[nm][:, n - 1] = summarize(ee[:used])
                    beyond = W[..., 0] > barrier  # (blocks, K, b)
                    if criterion == "centroid":
                        out = W[..., 0].mean(axis=1) > barrier
                    elif criterion == "all":
                        out = beyond.all(axis=1)
                    else:
                        out = beyond.any(axis=1)
                    new = out.reshape(-1) & ~left[nm]
                    times[nm][new] = n
                    left[nm] |= new
                bar.update(1)
            for nm in names:
                exits[nm][first : first + used] = times[nm][:used]
                ee_stats[nm].merge(used, ee_chunk[nm][0], ee_chunk[nm][1])

    results = {
        nm: EscapeResult(
            nm,
            n_steps,
            exits[nm],
            np.asarray(ee_stats[nm].mean),
            np.asarray(ee_stats[nm].standard_error),
        )
        for nm in names
    }
    return EscapeSimulation(results, criterion)


# ---- the quadratic theory of the sharp basin ------------------------------------------------
def theory_escaping_efficiency(
    strategy: str, A: np.ndarray, network: LandscapeNetwork, step_size: float, n_steps: int
) -> np.ndarray:
    """EE_1..EE_N of the local quadratic model at w_s (``theory.predict``, derived here)."""
    return theory.escaping_efficiency(strategy, A, network.local_network(), step_size, n_steps)


def theory_escape_time(
    strategy: str, A: np.ndarray, network: LandscapeNetwork, step_size: float,
    *, level: float | None = None,
) -> float:  # fmt: skip
    """n_ε = min{n : EE_n ≥ ε} of the local quadratic model, ε = the barrier height ΔJ by
    default (``theory.predict.escape_time``; ∞ when the model's EE_n never reaches ε)."""
    eps = network.landscape.barrier_height if level is None else float(level)
    return theory.escape_time(strategy, A, network.local_network(), step_size, eps)
