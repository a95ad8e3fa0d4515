"""Vectorized Monte Carlo of the unified error recursion on a quadratic network.

Each step applies, to every trial and agent at once (shared/DESIGN.md),

    W̃ ← A2ᵀ [ A1ᵀ W̃ − μ H W̃ + μ (d + L z) ],      z ~ N(0, I),  L_k L_kᵀ = R_k / B,

which is exact SGD on quadratic local risks with Gaussian gradient noise. The state is held
as (blocks, agents, trials_per_block, dim) so that the combine step is one matrix product per
block and the Hessian and noise products are batched per agent; it is exposed as
(trials, agents, dim).

Randomness: trials are grouped in fixed blocks of ``BLOCK_SIZE``; block b of experiment E
draws from ``SeedSequence(seed, spawn_key=(key(E), b))``. A trial's noise therefore depends
only on (seed, experiment, trial index), never on the number of trials, the memory cap or
the list of strategies, and every strategy simulated in one call sees the same draws
(common random numbers).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from numerics._validate import positive_float, positive_int
from numerics.errors import DivergenceError, InvalidInputError
from numerics.problems import QuadraticNetwork
from numerics.progress import progress_bar
from numerics.stats import DEFAULT_ALPHA, RunningMoments, mean_interval, summarize
from numerics.strategies import Schedule, as_schedules

#: Trials per random-number block (part of the reproducibility contract: do not change).
BLOCK_SIZE = 250
#: Default memory cap for one chunk of trials, in bytes.
DEFAULT_MEMORY_CAP = 1 << 30
QUANTITIES = ("ee", "msd", "cd")


def experiment_key(experiment: str) -> int:
    """A stable 64-bit integer for an experiment name (blake2b), used as a spawn key."""
    return int.from_bytes(hashlib.blake2b(experiment.encode(), digest_size=8).digest(), "big")


def block_generator(seed: int, experiment: str, block: int) -> np.random.Generator:
    """The generator of trial block ``block`` (trials block·BLOCK_SIZE ... +BLOCK_SIZE−1)."""
    ss = np.random.SeedSequence(int(seed), spawn_key=(experiment_key(experiment), int(block)))
    return np.random.Generator(np.random.PCG64(ss))


def standard_normal_draws(
    seed: int, experiment: str, n_trials: int, n_steps: int, n_agents: int, dim: int
) -> np.ndarray:
    """The z used by ``simulate`` as an array (n_steps, n_trials, n_agents, dim), for tests.

    Within block b, step n draws ``standard_normal((n_agents, BLOCK_SIZE, dim))``.
    """
    n_blocks = -(-n_trials // BLOCK_SIZE)
    out = np.empty((n_steps, n_blocks, n_agents, BLOCK_SIZE, dim))
    for b in range(n_blocks):
        gen = block_generator(seed, experiment, b)
        for t in range(n_steps):
            gen.standard_normal(out=out[t, b])
    out = out.transpose(0, 1, 3, 2, 4).reshape(n_steps, n_blocks * BLOCK_SIZE, n_agents, dim)
    return out[:, :n_trials]


@dataclass(frozen=True)
class MonteCarlo:
    """Per-step Monte Carlo estimates for one strategy (index 0 is step 1)."""

    strategy: str
    n_trials: int
    mean: dict[str, np.ndarray]
    standard_error: dict[str, np.ndarray]
    final_errors: np.ndarray | None = field(default=None, repr=False)

    @property
    def escaping_efficiency(self) -> np.ndarray:
        """Estimated EE_n, n = 1..n_steps."""
        return self.mean["ee"]

    def interval(
        self, quantity: str = "ee", *, alpha: float = DEFAULT_ALPHA, comparisons: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """Normal confidence interval of each step's mean at level 1 − α / comparisons."""
        return mean_interval(
            self.mean[quantity], self.standard_error[quantity], alpha=alpha, comparisons=comparisons
        )


@dataclass(frozen=True)
class Simulation:
    """Results of one ``simulate`` call: per strategy, and paired EE differences."""

    results: dict[str, MonteCarlo]
    difference_mean: dict[tuple[str, str], np.ndarray]
    difference_standard_error: dict[tuple[str, str], np.ndarray]

    def __getitem__(self, strategy: str) -> MonteCarlo:
        return self.results[strategy]


class _Stepper:
    """One strategy's state and its step, in preallocated buffers (no per-step allocation).

    Fresh multi-megabyte temporaries would be page-faulted in at every step, which costs
    more than the arithmetic; every product therefore writes into a buffer (``out=``).
    """

    def __init__(
        self,
        schedule: Schedule,
        problem: QuadraticNetwork,
        mu: float,
        shape: tuple[int, int, int, int],
        initial: np.ndarray,
    ):
        self.pairs = schedule.transposed_pairs()
        self.mu_h_t = np.ascontiguousarray(mu * np.swapaxes(problem.hessians, 1, 2))
        self.mu_d = mu * problem.gradients_at_optimum[:, None, :]  # (K, 1, d)
        self.state = np.empty(shape)
        self.state[...] = initial[None, :, None, :]
        self.work = np.empty(shape)
        self.combined = np.empty(shape)

    def _combine(self, At: np.ndarray, src: np.ndarray, dst: np.ndarray) -> None:
        nb, K = src.shape[:2]
        np.matmul(At, src.reshape(nb, K, -1), out=dst.reshape(nb, K, -1))

    def step(self, mu_noise: np.ndarray, n: int) -> np.ndarray:
        """Advance the state by step n (1-based) given μ L z; returns the state (a buffer)."""
        A1t, A2t = self.pairs[(n - 1) % len(self.pairs)]
        W, out = self.state, self.work
        np.matmul(W, self.mu_h_t, out=out)  # μ H_k w̃ for every block, agent and trial
        if A1t is None:
            np.subtract(W, out, out=out)
        else:
            self._combine(A1t, W, self.combined)
            np.subtract(self.combined, out, out=out)
        out += self.mu_d
        out += mu_noise
        if A2t is None:
            self.state, self.work = out, W
        else:
            self._combine(A2t, out, W)
        return self.state


class _Readout:
    """Per-trial agent-averaged EE, MSD and CD of a state (blocks, K, b, d), in buffers."""

    def __init__(self, hbar: np.ndarray, shape: tuple[int, int, int, int]):
        self.hbar = hbar
        self.buf = np.empty(shape)

    def __call__(self, W: np.ndarray) -> dict[str, np.ndarray]:
        K = W.shape[1]
        np.matmul(W, self.hbar, out=self.buf)
        ee = np.einsum("nkbi,nkbi->nb", self.buf, W) * (0.5 / K)
        msd = np.einsum("nkbi,nkbi->nb", W, W) * (1.0 / K)
        np.subtract(W, W.mean(axis=1, keepdims=True), out=self.buf)
        cd = np.einsum("nkbi,nkbi->nb", self.buf, self.buf) * (1.0 / K)
        return {"ee": ee.reshape(-1), "msd": msd.reshape(-1), "cd": cd.reshape(-1)}


def bytes_per_block(n_agents: int, dim: int, n_strategies: int) -> int:
    """Working memory of one block of trials: 3 buffers per strategy, noise (2), read-out (1)."""
    return n_agents * BLOCK_SIZE * dim * 8 * (3 * n_strategies + 3)


def _chunks(n_blocks: int, blocks_per_chunk: int) -> Iterator[range]:
    for start in range(0, n_blocks, blocks_per_chunk):
        yield range(start, min(start + blocks_per_chunk, n_blocks))


def simulate(
    strategies: Sequence[str | Schedule],
    A: np.ndarray | None,
    problem: QuadraticNetwork,
    step_size: float,
    n_steps: int,
    n_trials: int,
    *,
    seed: int = 0,
    experiment: str = "simulate",
    initial_error: np.ndarray | None = None,
    local_steps: int | None = None,
    memory_cap: int = DEFAULT_MEMORY_CAP,
    keep_final: bool = False,
) -> Simulation:
    """Monte Carlo of several strategies with common random numbers.

    Returns per-step means and standard errors of EE (½ w̃ᵀ H̄ w̃ averaged over agents), MSD and
    consensus distance, and of the paired EE differences between strategies.
    ``initial_error`` is w* − w_0, shape (d,) or (K, d); default w*. ``memory_cap`` bounds the
    bytes of one chunk of trials; results do not depend on it. ``keep_final`` also returns the
    final errors, shape (n_trials, K, d) (memory grows with n_trials).
    """
    if not isinstance(problem, QuadraticNetwork):
        raise InvalidInputError(f"problem must be a QuadraticNetwork; got {type(problem).__name__}")
    schedules = as_schedules(strategies, A, problem.n_agents, local_steps=local_steps)
    names = [s.name for s in schedules]
    K, d = problem.n_agents, problem.dim
    mu = positive_float(step_size, "step_size")
    seed = positive_int(seed, "seed", minimum=0)
    n_steps = positive_int(n_steps, "n_steps")
    n_trials = positive_int(n_trials, "n_trials")
    memory_cap = positive_int(memory_cap, "memory_cap")
    w0 = np.zeros((K, d))
    if initial_error is not None:
        try:
            w0 = np.broadcast_to(np.asarray(initial_error, dtype=float), (K, d))
        except ValueError as exc:
            raise InvalidInputError(
                f"initial_error must have shape ({d},) or ({K}, {d}); got {np.shape(initial_error)}"
            ) from exc

    per_block = bytes_per_block(K, d, len(schedules))
    if per_block > memory_cap:
        raise InvalidInputError(
            f"memory_cap={memory_cap} bytes is below the {per_block} bytes one block of "
            f"{BLOCK_SIZE} trials needs"
        )
    blocks_per_chunk = max(1, memory_cap // per_block)
    n_blocks = -(-n_trials // BLOCK_SIZE)
    mu_l_t = np.ascontiguousarray(mu * np.swapaxes(problem.step_noise_factors, 1, 2))
    stats = {(nm, q): RunningMoments() for nm in names for q in QUANTITIES}
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    diff_stats = {p: RunningMoments() for p in pairs}
    finals: dict[str, list[np.ndarray]] = {nm: [] for nm in names}

    total = -(-n_blocks // blocks_per_chunk) * n_steps
    # tiny products: a second BLAS thread only adds contention
    with threadpool_limits(1), progress_bar(total, "Monte Carlo", "step") as bar:
        for chunk in _chunks(n_blocks, blocks_per_chunk):
            gens = [block_generator(seed, experiment, b) for b in chunk]
            shape = (len(chunk), K, BLOCK_SIZE, d)
            z, noise = np.empty(shape), np.empty(shape)
            steppers = [_Stepper(s, problem, mu, shape, w0) for s in schedules]
            readout = _Readout(problem.aggregate_hessian, shape)
            used = min(n_trials - chunk.start * BLOCK_SIZE, len(chunk) * BLOCK_SIZE)
            summary = {key: np.empty((2, n_steps)) for key in [*stats, *diff_stats]}
            for n in range(1, n_steps + 1):
                for j, gen in enumerate(gens):
                    gen.standard_normal(out=z[j])
                np.matmul(z, mu_l_t, out=noise)
                ee = {}
                for nm, stepper in zip(names, steppers, strict=True):
                    r = readout(stepper.step(noise, n))
                    if not np.all(np.isfinite(r["msd"][:used])):
                        raise DivergenceError(f"Monte Carlo of {nm} (step_size={mu:g})", n)
                    for q in QUANTITIES:
                        summary[nm, q][:, n - 1] = summarize(r[q][:used])
                    ee[nm] = r["ee"][:used]
                for a, b in pairs:
                    summary[a, b][:, n - 1] = summarize(ee[a] - ee[b])
                bar.update(1)
            for key, acc in [*stats.items(), *diff_stats.items()]:
                acc.merge(used, summary[key][0], summary[key][1])
            if keep_final:
                for nm, stepper in zip(names, steppers, strict=True):
                    W = stepper.state.transpose(0, 2, 1, 3).reshape(-1, K, d)[:used]
                    finals[nm].append(W.copy())

    results = {
        nm: MonteCarlo(
            nm,
            n_trials,
            {q: np.asarray(stats[nm, q].mean) for q in QUANTITIES},
            {q: np.asarray(stats[nm, q].standard_error) for q in QUANTITIES},
            np.concatenate(finals[nm]) if keep_final else None,
        )
        for nm in names
    }
    return Simulation(
        results,
        {p: np.asarray(s.mean) for p, s in diff_stats.items()},
        {p: np.asarray(s.standard_error) for p, s in diff_stats.items()},
    )
