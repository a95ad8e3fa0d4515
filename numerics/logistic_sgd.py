"""True minibatch SGD on a logistic network: the three strategies on the loss itself.

Every step applies the unified update (shared/DESIGN.md; note §2.5–2.6 [R]) to every trial and
agent at once,

    W ← A2ᵀ (A1ᵀ W − μ ĝ(W)),    ĝ_k(w_k) = (1/B) Σ_{b=1}^{B} −σ(−z_{i_kb}ᵀ w_k) z_{i_kb} + ρ w_k,

with the gradient at the pre-combination iterate, and the B indices i_kb drawn uniformly with
replacement from agent k's samples, independently per agent, step and trial. The read-out is
the exact excess risk of the aggregate loss, averaged over agents,

    E_n = (1/K) Σ_k J(w_{k,n}) − J(w*),

recorded every ``record_every`` steps; a trial's steady-state estimate is the time average of
E_n over the recorded steps after ``burn_in``. Trials are independent, so the interval of the
mean uses one time average per trial as one sample (no batch-means assumption). Paired
differences between strategies come from common random numbers: every strategy of a call sees
the same minibatch indices (and initial points).

Layout and randomness follow ``numerics.simulate``: state arrays (agents, trials, dim) per
chunk of trials, a Python loop over steps only, preallocated buffers, one BLAS thread, trials
in fixed blocks of ``BLOCK_SIZE`` whose generator is ``block_generator(seed, experiment, b)``.
Within block b the initial draw (if any) comes first, then step n draws
``integers(0, N_k, (K, BLOCK_SIZE, B))``; a trial's randomness therefore depends only on
(seed, experiment, trial), never on the chunking or the list of strategies.

Burn-in (derived here): the linearised model's mean recursion contracts at rate ρ(F) per step
(F = A2ᵀ(A1ᵀ − μH), ``numerics.moments.spectral_radius``), so a deviation in squared error
decays like ρ(F)^{2n}; the default burn-in is ``burn_in_factor`` relaxation times
1/(1 − ρ(F)) of the slowest strategy simulated (for small μ, 1/(1 − ρ) ≈ 1/(μ λ_min(H̄))).

Starts: at w* (``optimum``), at a random point (``random``), or drawn from the linearised
model's stationary Gaussian law (``stationary``, derived here). The last one leaves only the
O(μ) relative difference between true SGD and its linearised model to relax, so a short
burn-in suffices; the checks use it with 2 relaxation times. Against a start at w* with 8
relaxation times (breast cancer, label skew, ring of 10, μ = 0.1, 1000 trials each) the
steady-state estimates differed by −0.37 %, −0.21 %, −0.26 % (centralized, consensus,
diffusion; |z| ≤ 1.6): no bias at the 0.3 % level.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
from scipy.special import expit, log_expit
from threadpoolctl import threadpool_limits

from numerics._validate import positive_float, positive_int
from numerics.errors import DivergenceError, InvalidInputError
from numerics.logistic import LogisticNetwork
from numerics.moments import spectral_radius, transition_matrices
from numerics.progress import progress_bar
from numerics.simulate import BLOCK_SIZE, block_generator
from numerics.stats import DEFAULT_ALPHA, RunningMoments, mean_interval, summarize
from numerics.strategies import Schedule, as_schedules

INITIAL = ("optimum", "stationary", "random")
#: Default bytes of one chunk of trials.
DEFAULT_MEMORY_CAP = 1 << 28
#: Default number of relaxation times 1/(1 − ρ(F)) of burn-in.
BURN_IN_FACTOR = 5.0


@dataclass(frozen=True)
class SGDResult:
    """Steady-state estimate of one strategy: mean over trials of the per-trial time averages.

    ``trajectory`` is the mean over trials of E_n at each recorded step ``recorded_steps``.
    """

    strategy: str
    n_trials: int
    excess_risk: float
    standard_error: float
    msd: float
    msd_standard_error: float
    trajectory: np.ndarray = field(repr=False)

    def interval(
        self, *, alpha: float = DEFAULT_ALPHA, comparisons: int = 1
    ) -> tuple[float, float]:
        """Normal interval of the steady-state excess risk at level 1 − α/comparisons."""
        lo, hi = mean_interval(
            self.excess_risk, self.standard_error, alpha=alpha, comparisons=comparisons
        )
        return float(lo), float(hi)


@dataclass(frozen=True)
class SGDSimulation:
    """Results of one ``simulate_sgd`` call (common random numbers across strategies)."""

    results: dict[str, SGDResult]
    difference_mean: dict[tuple[str, str], float]
    difference_standard_error: dict[tuple[str, str], float]
    step_size: float
    burn_in: int
    averaging_steps: int
    record_every: int
    recorded_steps: np.ndarray = field(repr=False)
    relaxation_time: float
    initial: str
    final_states: dict[str, np.ndarray] | None = field(default=None, repr=False)

    def __getitem__(self, strategy: str) -> SGDResult:
        return self.results[strategy]

    def difference(
        self, first: str, second: str, *, alpha: float = DEFAULT_ALPHA, comparisons: int = 1
    ) -> tuple[float, tuple[float, float]]:
        """Mean paired difference ER(first) − ER(second) and its normal interval."""
        if (first, second) in self.difference_mean:
            m, s = (
                self.difference_mean[first, second],
                self.difference_standard_error[first, second],
            )
        elif (second, first) in self.difference_mean:
            m, s = (
                -self.difference_mean[second, first],
                self.difference_standard_error[second, first],
            )
        else:
            raise InvalidInputError(f"no paired difference of {first!r} and {second!r}")
        lo, hi = mean_interval(m, s, alpha=alpha, comparisons=comparisons)
        return float(m), (float(lo), float(hi))


# ---- the linearised model: stationary law (the "stationary" start) and relaxation time ----
def linearised_stationary(
    schedule: Schedule, net: LogisticNetwork, step_size: float
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the error W̃ = w* − W (stacked by agent, length K·d) of the
    linearised model in steady state: m = (I − F)⁻¹ μ G d, C = F C Fᵀ + μ² G S Gᵀ (note §4.2,
    [R]); constant schedules only."""
    if schedule.period != 1:
        raise InvalidInputError("the stationary start needs a constant (A1, A2) schedule")
    quad = net.linearised()
    A1, A2 = schedule.at(1)
    F, G = transition_matrices(A1, A2, quad, step_size)
    S = scipy.linalg.block_diag(*(quad.noise_covariances / quad.batch_size))
    mean = np.linalg.solve(
        np.eye(F.shape[0]) - F, step_size * G @ quad.gradients_at_optimum.ravel()
    )
    cov = scipy.linalg.solve_discrete_lyapunov(F, step_size**2 * G @ S @ G.T)
    return mean, 0.5 * (cov + cov.T)


def _psd_factor(cov: np.ndarray) -> np.ndarray:
    """L with L Lᵀ = cov (symmetric square root; clips round-off negative eigenvalues)."""
    vals, vecs = np.linalg.eigh(cov)
    return vecs * np.sqrt(np.clip(vals, 0.0, None))


def relaxation_time(schedules: Sequence[Schedule], net: LogisticNetwork, mu: float) -> float:
    """max over strategies of 1/(1 − ρ(F)), F the linearised mean recursion (memoised)."""
    rho = max(_spectral_radius(s, net, mu) for s in schedules)
    if rho >= 1.0:
        return math.inf
    return 1.0 / (1.0 - rho)


_RHO_CACHE: dict[tuple, float] = {}


def _spectral_radius(schedule: Schedule, net: LogisticNetwork, mu: float) -> float:
    """ρ(F) of the linearised model, memoised by (network, schedule matrices, μ)."""
    key = (
        net.fingerprint,
        mu,
        tuple(np.concatenate([M.ravel() for pair in schedule.pairs for M in pair]).tolist()),
    )
    if key not in _RHO_CACHE:
        if len(_RHO_CACHE) > 256:
            _RHO_CACHE.clear()
        _RHO_CACHE[key] = spectral_radius(schedule, None, net.linearised(), mu)
    return _RHO_CACHE[key]


# ---- the vectorised step ------------------------------------------------------------------
class _Sampler:
    """Minibatch indices of a chunk of trials as global rows into the data, (K, T, B).

    Every block draws its full ``BLOCK_SIZE`` trials (the reproducibility contract); only the
    first ``n_trials`` of the chunk are kept, so a run with few trials costs few trials.
    """

    def __init__(self, net: LogisticNetwork, gens: list[np.random.Generator], n_trials: int):
        K, B = net.n_agents, net.batch_size
        self.gens = gens
        self.high = net.agent_sizes[:, None, None]
        self.offsets = net.offsets[:-1, None, None]
        self.rows = np.empty((K, n_trials, B), dtype=np.int64)
        self.size = (K, BLOCK_SIZE, B)
        self.spans = [
            (j * BLOCK_SIZE, min((j + 1) * BLOCK_SIZE, n_trials)) for j in range(len(gens))
        ]

    def draw(self) -> np.ndarray:
        for gen, (a, b) in zip(self.gens, self.spans, strict=True):
            self.rows[:, a:b] = gen.integers(0, self.high, size=self.size)[:, : b - a]
        self.rows += self.offsets
        return self.rows


class _Stepper:
    """One strategy's state (K, T, d) and its step, in preallocated buffers."""

    def __init__(self, schedule: Schedule, net: LogisticNetwork, mu: float, initial: np.ndarray):
        self.pairs = schedule.transposed_pairs()
        self.mu = mu
        self.rho = net.regularization
        self.scale = mu / net.batch_size
        self.state = np.ascontiguousarray(initial, dtype=float)
        shape = self.state.shape
        self.work = np.empty(shape)
        self.combined = np.empty(shape)
        self.grad = np.empty(shape)
        self.margins = np.empty((*shape[:2], net.batch_size))
        # (K·T, ·, ·) views for batched matrix products (faster than einsum here)
        self.margins_col = self.margins.reshape(-1, net.batch_size, 1)
        self.margins_row = self.margins.reshape(-1, 1, net.batch_size)
        self.grad_row = self.grad.reshape(-1, 1, shape[2])

    def _combine(self, At: np.ndarray, src: np.ndarray, dst: np.ndarray) -> None:
        K = src.shape[0]
        np.matmul(At, src.reshape(K, -1), out=dst.reshape(K, -1))

    def step(self, batch: np.ndarray, n: int) -> np.ndarray:
        """Advance by step n given the gathered signed features, (K·T, B, d)."""
        A1t, A2t = self.pairs[(n - 1) % len(self.pairs)]
        W, out = self.state, self.work
        np.matmul(batch, W.reshape(-1, W.shape[2], 1), out=self.margins_col)  # m = zᵀw
        np.negative(self.margins, out=self.margins)
        expit(self.margins, out=self.margins)  # σ(−m): minus the loss derivative
        np.matmul(self.margins_row, batch, out=self.grad_row)  # Σ_b σ(−m_b) z_b
        if A1t is None:
            np.copyto(out, W)
        else:
            self._combine(A1t, W, out)
        if self.rho:
            out -= (self.mu * self.rho) * W
        self.grad *= self.scale
        out += self.grad  # − μ ĝ = + (μ/B) Σ σ(−m) z − μ ρ w
        if A2t is None:
            self.state, self.work = out, W
        else:
            self._combine(A2t, out, W)
        return self.state


class _Readout:
    """Per-trial agent-averaged excess risk J(w_k) − J(w*) and squared distance to w*."""

    def __init__(self, net: LogisticNetwork, shape: tuple[int, int, int]):
        K, T, _ = shape
        self.zt = np.ascontiguousarray(net.signed_features.T)
        self.weights = net.sample_weights
        self.rho = net.regularization
        self.w_star = net.optimum.weights
        self.base = net.optimum.risk
        self.margins = np.empty((K * T, net.features.shape[0]))
        self.diff = np.empty(shape)
        self.K, self.T = K, T

    def __call__(self, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        flat = W.reshape(self.K * self.T, -1)
        np.matmul(flat, self.zt, out=self.margins)
        log_expit(self.margins, out=self.margins)
        risk = -(self.margins @ self.weights) + 0.5 * self.rho * np.einsum("ij,ij->i", flat, flat)
        er = (risk - self.base).reshape(self.K, self.T).mean(axis=0)
        np.subtract(W, self.w_star, out=self.diff)
        msd = np.einsum("ktd,ktd->t", self.diff, self.diff) / self.K
        return er, msd


def _initial_states(
    kind: str,
    n_strategies: int,
    net: LogisticNetwork,
    laws: list[tuple[np.ndarray, np.ndarray]],
    gens: list[np.random.Generator],
    initial_scale: float,
    T: int,
) -> list[np.ndarray]:
    """Initial (K, T, d) arrays per strategy (common draws across strategies); ``laws`` are
    the (mean, factor L) of the stationary start, one per strategy."""
    K, d = net.n_agents, net.dim
    w_star = net.optimum.weights
    if kind == "optimum":
        return [np.broadcast_to(w_star, (K, T, d)).copy() for _ in range(n_strategies)]
    if kind == "random":
        z = np.concatenate([g.standard_normal((BLOCK_SIZE, d)) for g in gens])[:T]
        start = initial_scale * z[None, :, :]
        return [np.broadcast_to(start, (K, T, d)).copy() for _ in range(n_strategies)]
    z = np.concatenate([g.standard_normal((BLOCK_SIZE, K * d)) for g in gens])[:T]
    out = []
    for mean, factor in laws:
        err = mean[None, :] + z @ factor.T  # (T, K·d), w̃ = w* − w
        out.append(
            np.ascontiguousarray(w_star[None, None, :] - err.reshape(T, K, d).swapaxes(0, 1))
        )
    return out


def bytes_per_block(net: LogisticNetwork, n_strategies: int) -> int:
    """Working memory of one block of trials (gathered batch, states, read-out margins)."""
    K, d, B, N = net.n_agents, net.dim, net.batch_size, net.features.shape[0]
    per_trial = K * B * d + n_strategies * K * (4 * d + B) + K * N + 2 * K * d
    return 8 * BLOCK_SIZE * per_trial


def _one_blas_thread(func: Callable) -> Callable:
    """Run ``func`` with one BLAS thread: its matrices are small, and extra threads only
    contend (on 2 cores a 310×310 Schur decomposition took 5 s with 2 threads, 0.03 s with 1)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with threadpool_limits(1):
            return func(*args, **kwargs)

    return wrapper


@_one_blas_thread
def simulate_sgd(
    strategies: Sequence[str | Schedule],
    A: np.ndarray | None,
    net: LogisticNetwork,
    step_size: float,
    averaging_steps: int,
    n_trials: int,
    *,
    burn_in: int | None = None,
    burn_in_factor: float = BURN_IN_FACTOR,
    record_every: int | None = None,
    seed: int = 0,
    experiment: str = "logistic-sgd",
    initial: str = "optimum",
    initial_scale: float = 1.0,
    memory_cap: int = DEFAULT_MEMORY_CAP,
    keep_final: bool = False,
) -> SGDSimulation:
    """Monte Carlo of true SGD for several strategies with common random numbers.

    Runs ``burn_in + averaging_steps`` steps (``burn_in`` None: ``burn_in_factor`` relaxation
    times of the linearised model, rounded up to a multiple of ``record_every``; ``record_every``
    None: about one relaxation time of the fastest mode, round(1/(μ λ_max(H̄))), so that the
    read-out, which costs N/B times a step, stays a small part of the run). ``initial``:
    ``optimum`` (every agent at w*), ``stationary`` (a draw from the linearised model's
    stationary Gaussian law of each strategy, one standard-normal vector per trial shared by
    the strategies) or ``random`` (w ~ N(0, initial_scale² I), the same for all agents).
    ``keep_final`` also returns the final iterates, (n_trials, K, d) per strategy.
    """
    if not isinstance(net, LogisticNetwork):
        raise InvalidInputError(f"net must be a LogisticNetwork; got {type(net).__name__}")
    schedules = as_schedules(strategies, A, net.n_agents)
    names = [s.name for s in schedules]
    K, d = net.n_agents, net.dim
    if initial not in INITIAL:
        raise InvalidInputError(f"initial={initial!r} is not known; allowed: {', '.join(INITIAL)}")
    mu = positive_float(step_size, "step_size")
    averaging_steps = positive_int(averaging_steps, "averaging_steps")
    n_trials = positive_int(n_trials, "n_trials")
    if record_every is None:
        lam_max = float(np.linalg.eigvalsh(net.linearised().aggregate_hessian)[-1])
        record_every = max(1, round(1.0 / (mu * lam_max)))
    record_every = positive_int(record_every, "record_every")
    seed = positive_int(seed, "seed", minimum=0)
    tau = relaxation_time(schedules, net, mu)
    if burn_in is None:
        if not math.isfinite(tau):
            raise InvalidInputError(
                f"step_size={mu:g}: the linearised model is unstable for one of {names}; no "
                "steady state to measure"
            )
        burn_in = math.ceil(positive_float(burn_in_factor, "burn_in_factor") * tau)
    burn_in = positive_int(burn_in, "burn_in", minimum=0)
    burn_in = -(-burn_in // record_every) * record_every
    averaging_steps = -(-averaging_steps // record_every) * record_every
    n_steps = burn_in + averaging_steps
    recorded = np.arange(record_every, n_steps + 1, record_every)
    first_avg = int(np.searchsorted(recorded, burn_in, side="right"))

    per_block = bytes_per_block(net, len(schedules))
    blocks_per_chunk = max(1, positive_int(memory_cap, "memory_cap") // per_block)
    n_blocks = -(-n_trials // BLOCK_SIZE)
    er_stats = {nm: RunningMoments() for nm in names}
    msd_stats = {nm: RunningMoments() for nm in names}
    traj = {nm: RunningMoments() for nm in names}
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    diff_stats = {p: RunningMoments() for p in pairs}
    z_all = net.signed_features
    finals: dict[str, list[np.ndarray]] = {nm: [] for nm in names}

    laws = []
    if initial == "stationary":
        for s in schedules:
            mean, cov = linearised_stationary(s, net, mu)
            laws.append((mean, _psd_factor(cov)))
    total = -(-n_blocks // blocks_per_chunk) * n_steps
    with progress_bar(total, "SGD", "step") as bar:
        for start in range(0, n_blocks, blocks_per_chunk):
            chunk = range(start, min(start + blocks_per_chunk, n_blocks))
            gens = [block_generator(seed, experiment, b) for b in chunk]
            T = min(n_trials - chunk.start * BLOCK_SIZE, len(chunk) * BLOCK_SIZE)
            inits = _initial_states(initial, len(schedules), net, laws, gens, initial_scale, T)
            steppers = [_Stepper(s, net, mu, w0) for s, w0 in zip(schedules, inits, strict=True)]
            sampler = _Sampler(net, gens, T)
            readout = _Readout(net, (K, T, d))
            batch = np.empty((K, T, net.batch_size, d))
            flat_batch = batch.reshape(K * T, net.batch_size, d)
            sums = {nm: np.zeros(T) for nm in names}
            msd_sums = {nm: np.zeros(T) for nm in names}
            curve = {nm: np.empty((2, recorded.size)) for nm in names}
            r = 0
            for n in range(1, n_steps + 1):
                np.take(z_all, sampler.draw(), axis=0, out=batch)
                for stepper in steppers:
                    stepper.step(flat_batch, n)
                if n % record_every == 0:
                    for nm, stepper in zip(names, steppers, strict=True):
                        er, msd = readout(stepper.state)
                        with np.errstate(over="ignore", invalid="ignore"):
                            curve[nm][:, r] = summarize(er)
                        if not np.all(np.isfinite(curve[nm][:, r])):
                            raise DivergenceError(f"SGD of {nm} (step_size={mu:g})", n)
                        if r >= first_avg:
                            sums[nm] += er
                            msd_sums[nm] += msd
                    r += 1
                bar.update(1)
            n_avg = recorded.size - first_avg
            means = {nm: sums[nm] / n_avg for nm in names}
            for nm in names:
                er_stats[nm].add(means[nm])
                msd_stats[nm].add(msd_sums[nm] / n_avg)
                traj[nm].merge(T, curve[nm][0], curve[nm][1])
            for a, b in pairs:
                diff_stats[a, b].add(means[a] - means[b])
            if keep_final:
                for nm, stepper in zip(names, steppers, strict=True):
                    finals[nm].append(stepper.state.swapaxes(0, 1).copy())

    results = {
        nm: SGDResult(
            nm,
            n_trials,
            float(er_stats[nm].mean),
            float(er_stats[nm].standard_error),
            float(msd_stats[nm].mean),
            float(msd_stats[nm].standard_error),
            np.asarray(traj[nm].mean),
        )
        for nm in names
    }
    return SGDSimulation(
        results,
        {p: float(s.mean) for p, s in diff_stats.items()},
        {p: float(s.standard_error) for p, s in diff_stats.items()},
        mu,
        burn_in,
        averaging_steps,
        record_every,
        recorded,
        tau,
        initial,
        {nm: np.concatenate(f) for nm, f in finals.items()} if keep_final else None,
    )


def minibatch_rows(
    net: LogisticNetwork, seed: int, experiment: str, n_trials: int, n_steps: int
) -> np.ndarray:
    """The global row indices used by ``simulate_sgd`` with ``initial='optimum'``, as an
    array (n_steps, K, n_trials, B), for tests."""
    n_blocks = -(-n_trials // BLOCK_SIZE)
    gens = [block_generator(seed, experiment, b) for b in range(n_blocks)]
    sampler = _Sampler(net, gens, n_trials)
    return np.stack([sampler.draw().copy() for _ in range(n_steps)])
