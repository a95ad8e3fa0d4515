"""Local SGD, minibatch SGD, accelerated minibatch SGD and single-machine SGD.

Setting (shared/research/local_sgd_bounds.md §0; the papers' letters M, K, R are
``n_machines``, ``local_steps``, ``rounds`` here). M machines hold F_m; F = (1/M) Σ_m F_m.
Every algorithm draws the same samples: at global step t = (r − 1)K + k (round r, local step
k) machine m receives the sample z[t, m], so all algorithms use M·K·R samples per trial
(single-machine SGD uses machine 0's K·R of them).

    local SGD      (note eqs. (5)–(6) of Patel et al. 2024 [V]): every round starts the
                   machines at x_{r−1}; K steps x ← x − η ∇f_m(x; z); then
                   x_r = x_{r−1} + β ((1/M) Σ_m x^m_{r,K} − x_{r−1}).
    minibatch SGD  x_r = x_{r−1} − η (1/(MK)) Σ_{m,k} ∇f_m(x_{r−1}; z^m_{r,k}).  The note's
                   form x_r = x_{r−1} − (β/M) Σ_{m,k} ∇f is the same with β = η/K [V].
    A-MB-SGD       R steps of AC-SA with minibatch MK (W21 §4 [V]); recursion in
                   ``accelerated_minibatch_sgd``.
    single-machine K·R steps of SGD (or AC-SA) on machine 0 with its own samples (W21 [V]).

The problem enters through a ``StochasticOracle`` (a small Protocol: vectorized gradients on
arrays (..., M, d), a noise law and the excess risk F(x) − F*), so that quadratic, hard
and (later) logistic-regression problems plug in unchanged.

Arrays and randomness. The state is (G, trials, M, d): G step sizes of a grid are run at
once on the same draws (common random numbers across the grid and across algorithms).
Trials are grouped in blocks of ``TRIALS_PER_BLOCK``; block b of experiment E draws from
``numerics.simulate.block_generator(seed, E, b)``, one array (block, M, noise…) per global
step, so a trial's samples depend only on (seed, E, trial index), never on the chunking,
the grid or the algorithm. Chunks of whole blocks bound the memory (``memory_cap``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
from threadpoolctl import threadpool_limits

from numerics._validate import positive_int
from numerics.errors import DivergenceError, InvalidInputError
from numerics.simulate import block_generator

#: Trials per random-number block (part of the reproducibility contract: do not change).
TRIALS_PER_BLOCK = 16
#: Default memory cap of one chunk of trials, in bytes.
DEFAULT_MEMORY_CAP = 1 << 28
ALGORITHMS = (
    "local_sgd",
    "minibatch_sgd",
    "accelerated_minibatch_sgd",
    "single_machine_sgd",
    "single_machine_accelerated_sgd",
)


@runtime_checkable
class StochasticOracle(Protocol):
    """A distributed stochastic first-order problem, vectorized over leading axes.

    ``noise_shape``/``noise_dtype`` describe one machine's sample per step ((0,) for a
    deterministic oracle: nothing is drawn). ``draw(gen, out)`` fills ``out`` of shape
    (n, M, *noise_shape) in place. ``gradient(x, noise, out)`` writes ∇f_m(x; z) for x of
    shape (..., n, M, d) (the machine axis is −2) and noise (n, M, *noise_shape) into ``out``
    (shape of x) and returns it; it must not write into x (which may be a broadcast view).
    ``excess(x)`` returns F(x) − F* for x of shape (..., d). ``restrict(m)`` is the same
    problem seen by the first m machines (used by single-machine SGD, with the full
    M-machine draws sliced). A logistic-regression oracle would draw sample indices
    (``noise_dtype`` an integer type) and gather its data in ``gradient``.
    """

    n_machines: int
    dim: int
    noise_shape: tuple[int, ...]
    noise_dtype: type

    def draw(self, gen: np.random.Generator, out: np.ndarray) -> None: ...

    def gradient(self, x: np.ndarray, noise: np.ndarray, out: np.ndarray) -> np.ndarray: ...

    def excess(self, x: np.ndarray) -> np.ndarray: ...

    def restrict(self, n_machines: int) -> StochasticOracle: ...


@dataclass(frozen=True)
class Run:
    """Final and averaged iterates of one algorithm over a step-size grid.

    ``final`` and ``averaged`` have shape (G, n_trials, d); ``step_size`` and
    ``outer_step_size`` have shape (G,). ``diverged_at[g]`` is the first global step at
    whose check a non-finite value was seen for grid point g (0 if never); such rows are NaN.
    ``path`` (G, n_trials, R + 1, d), with ``record_rounds=True``: the iterate after each
    round (x_0..x_R; the accelerated methods record x^ag).
    """

    algorithm: str
    step_size: np.ndarray
    outer_step_size: np.ndarray
    final: np.ndarray = field(repr=False)
    averaged: np.ndarray = field(repr=False)
    diverged_at: np.ndarray
    n_machines: int
    local_steps: int
    rounds: int
    seed: int
    experiment: str
    path: np.ndarray | None = field(default=None, repr=False)

    def excess(self, oracle: StochasticOracle, output: str = "final") -> np.ndarray:
        """F(x) − F* of the ``output`` ('final' or 'averaged') iterate, shape (G, n_trials);
        +inf for diverged grid points."""
        if output not in ("final", "averaged"):
            raise InvalidInputError(f"output={output!r}; allowed: 'final', 'averaged'")
        x = self.final if output == "final" else self.averaged
        with np.errstate(all="ignore"):
            err = np.asarray(oracle.excess(x), dtype=float)
        err[~np.isfinite(err)] = np.inf
        return err


# ---- validation ---------------------------------------------------------------------------
def _grid(value, name: str) -> np.ndarray:
    try:
        arr = np.atleast_1d(np.asarray(value, dtype=float))
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"{name} must be a positive number or 1-D array; got {value!r}"
        ) from exc
    if arr.ndim != 1 or arr.size == 0:
        raise InvalidInputError(
            f"{name} must be a positive number or a 1-D array; got shape {arr.shape}"
        )
    bad = ~(np.isfinite(arr) & (arr > 0))
    if bad.any():
        raise InvalidInputError(
            f"{name} must be positive and finite; got {float(arr[bad][0])!r} "
            f"(allowed: 0 < {name} < inf)"
        )
    return arr


def _grids(step_size, outer_step_size) -> tuple[np.ndarray, np.ndarray]:
    eta, beta = _grid(step_size, "step_size"), _grid(outer_step_size, "outer_step_size")
    if eta.size != beta.size and 1 not in (eta.size, beta.size):
        raise InvalidInputError(
            f"step_size ({eta.size} values) and outer_step_size ({beta.size} values) must have "
            "equal lengths or one of them a single value"
        )
    eta, beta = np.broadcast_arrays(eta, beta)
    return eta.copy(), beta.copy()


def _check_oracle(oracle) -> None:
    if not isinstance(oracle, StochasticOracle):
        raise InvalidInputError(
            f"oracle must implement StochasticOracle (n_machines, dim, noise_shape, noise_dtype, "
            f"draw, gradient, excess, restrict); got {type(oracle).__name__}"
        )


def _initial(oracle: StochasticOracle, initial_point) -> np.ndarray:
    if initial_point is None:
        return np.zeros(oracle.dim)
    x0 = np.asarray(initial_point, dtype=float)
    if x0.shape != (oracle.dim,) or not np.all(np.isfinite(x0)):
        raise InvalidInputError(
            f"initial_point must be a finite array of shape ({oracle.dim},); got shape {x0.shape}"
        )
    return x0


# ---- the common driver ----------------------------------------------------------------------
class _Stream:
    """Per-step draws (n, M, *noise_shape) for a chunk of trial blocks (common random numbers).

    Whole blocks are always drawn (so a trial's samples never depend on how many trials
    run); ``next`` returns the first ``used`` rows.
    """

    def __init__(
        self, oracle: StochasticOracle, seed: int, experiment: str, blocks: range, used: int
    ):
        self.oracle = oracle
        self.gens = [block_generator(seed, experiment, b) for b in blocks]
        shape = (len(blocks) * TRIALS_PER_BLOCK, oracle.n_machines, *oracle.noise_shape)
        self.buf = np.zeros(shape, dtype=oracle.noise_dtype)
        self.used = used
        self.deterministic = int(np.prod(oracle.noise_shape)) == 0

    def next(self) -> np.ndarray:
        if not self.deterministic:
            for j, gen in enumerate(self.gens):
                self.oracle.draw(gen, self.buf[j * TRIALS_PER_BLOCK : (j + 1) * TRIALS_PER_BLOCK])
        return self.buf[: self.used]


@dataclass
class _Out:
    """What a kernel fills for one chunk: final (G, n, d), average, path (G, n, R + 1, d)."""

    final: np.ndarray
    averaged: np.ndarray
    path: np.ndarray | None
    diverged: np.ndarray


Kernel = Callable[[_Stream, np.ndarray, np.ndarray, np.ndarray, _Out], None]


def _drive(
    name: str,
    oracle: StochasticOracle,
    kernel: Kernel,
    bytes_per_trial: int,
    *,
    local_steps: int,
    rounds: int,
    step_size,
    outer_step_size,
    n_trials: int,
    seed: int,
    experiment: str,
    initial_point,
    memory_cap: int,
    on_divergence: str,
    record_rounds: bool,
) -> Run:
    K = positive_int(local_steps, "local_steps")
    R = positive_int(rounds, "rounds")
    n_trials = positive_int(n_trials, "n_trials")
    seed = positive_int(seed, "seed", minimum=0)
    memory_cap = positive_int(memory_cap, "memory_cap")
    if on_divergence not in ("raise", "mark"):
        raise InvalidInputError(f"on_divergence={on_divergence!r}; allowed: 'raise', 'mark'")
    eta, beta = _grids(step_size, outer_step_size)
    x0 = _initial(oracle, initial_point)
    G, d = eta.size, oracle.dim
    per_trial = bytes_per_trial + (8 * d * (R + 1) if record_rounds else 0)
    per_block = per_trial * G * TRIALS_PER_BLOCK
    if per_block > memory_cap:
        raise InvalidInputError(
            f"memory_cap={memory_cap} bytes is below the {per_block} bytes one block of "
            f"{TRIALS_PER_BLOCK} trials needs for {G} step sizes"
        )
    per_chunk = max(1, memory_cap // per_block)
    n_blocks = -(-n_trials // TRIALS_PER_BLOCK)
    out = _Out(
        np.empty((G, n_trials, d)),
        np.empty((G, n_trials, d)),
        np.empty((G, n_trials, R + 1, d)) if record_rounds else None,
        np.zeros(G, dtype=np.int64),
    )
    with threadpool_limits(1), np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, n_blocks, per_chunk):
            blocks = range(start, min(start + per_chunk, n_blocks))
            lo = start * TRIALS_PER_BLOCK
            used = min(n_trials - lo, len(blocks) * TRIALS_PER_BLOCK)
            part = slice(lo, lo + used)
            chunk = _Out(
                out.final[:, part],
                out.averaged[:, part],
                None if out.path is None else out.path[:, part],
                np.zeros(G, dtype=np.int64),
            )
            kernel(_Stream(oracle, seed, experiment, blocks, used), x0, eta, beta, chunk)
            new = chunk.diverged > 0
            earlier = (out.diverged == 0) | (chunk.diverged < out.diverged)
            out.diverged[new & earlier] = chunk.diverged[new & earlier]
    bad = out.diverged > 0
    if bad.any():
        out.final[bad] = np.nan
        out.averaged[bad] = np.nan
        if out.path is not None:
            out.path[bad] = np.nan
        if on_divergence == "raise":
            g = int(np.flatnonzero(bad)[0])
            raise DivergenceError(
                f"{name} (step_size={eta[g]:g}, outer_step_size={beta[g]:g})",
                int(out.diverged[g]),
            )
    return Run(
        name,
        eta,
        beta,
        out.final,
        out.averaged,
        out.diverged,
        oracle.n_machines,
        K,
        R,
        seed,
        experiment,
        out.path,
    )


def _mark(div: np.ndarray, x: np.ndarray, step: int) -> None:
    """Record ``step`` for grid points whose state (G, ...) has a non-finite entry."""
    bad = ~np.isfinite(x.reshape(x.shape[0], -1)).all(axis=1)
    div[bad & (div == 0)] = step


# ---- local SGD ------------------------------------------------------------------------------
def local_sgd(
    oracle: StochasticOracle,
    *,
    local_steps: int,
    rounds: int,
    step_size,
    outer_step_size=1.0,
    n_trials: int = 1,
    seed: int = 0,
    experiment: str = "local_sgd",
    initial_point=None,
    memory_cap: int = DEFAULT_MEMORY_CAP,
    on_divergence: str = "raise",
    record_rounds: bool = False,
) -> Run:
    """Local SGD with inner step η (``step_size``) and outer step β (``outer_step_size``).

    Recursion (Patel et al. 2024, COLT, eqs. (5)–(6), [V] in the note): for r = 1..R,
    x^m_{r,0} = x_{r−1}; x^m_{r,k} = x^m_{r,k−1} − η ∇f_m(x^m_{r,k−1}; z^m_{r,k}) for
    k = 1..K; x_r = x_{r−1} + β ((1/M) Σ_m x^m_{r,K} − x_{r−1}). β = 1 is vanilla local SGD.

    Returns ``final`` = x_R (the machine average after the last communication) and
    ``averaged`` = (1/(KR)) Σ_{r,k≥1} (1/M) Σ_m x^m_{r,k}, the uniform average of all local
    iterates (the output of Patel et al. Thm 15 [V]); ``record_rounds`` also keeps x_0..x_R.
    ``step_size`` and ``outer_step_size`` may be 1-D grids (broadcast together), run on the
    same draws. With ``on_divergence='mark'`` diverging grid points become NaN and are
    reported in ``Run.diverged_at``; with 'raise' (default) a ``DivergenceError`` names the
    step (checked at the end of every round).
    """
    _check_oracle(oracle)
    M, nz = oracle.n_machines, int(np.prod(oracle.noise_shape))

    def kernel(stream: _Stream, x0, eta, beta, out: _Out) -> None:
        G, n, d = eta.size, stream.used, oracle.dim
        K, R = local_steps, rounds
        e = eta[:, None, None, None]
        b = beta[:, None, None]
        x = np.empty((G, n, d))
        x[...] = x0
        xm, g = np.empty((G, n, M, d)), np.empty((G, n, M, d))
        acc = np.zeros((G, n, M, d))
        xbar = np.empty((G, n, d))
        if out.path is not None:
            out.path[:, :, 0] = x
        for r in range(1, R + 1):
            xm[...] = x[:, :, None, :]
            for _ in range(K):
                oracle.gradient(xm, stream.next(), g)
                g *= e
                xm -= g
                acc += xm
            np.mean(xm, axis=2, out=xbar)
            xbar -= x
            xbar *= b
            x += xbar
            if out.path is not None:
                out.path[:, :, r] = x
            _mark(out.diverged, x, r * K)
        out.final[...] = x
        out.averaged[...] = acc.mean(axis=2) / (K * R)

    return _drive(
        "local_sgd",
        oracle,
        kernel,
        8 * (oracle.dim * (3 * M + 2) + nz * M),
        local_steps=local_steps,
        rounds=rounds,
        step_size=step_size,
        outer_step_size=outer_step_size,
        n_trials=n_trials,
        seed=seed,
        experiment=experiment,
        initial_point=initial_point,
        memory_cap=memory_cap,
        on_divergence=on_divergence,
        record_rounds=record_rounds,
    )


# ---- minibatch-type algorithms ---------------------------------------------------------------
def _batched_kernel(
    oracle: StochasticOracle,
    *,
    machines: int,
    draws_per_step: int,
    n_outer: int,
    per_round: int,
    accelerated: bool,
) -> Kernel:
    """SGD or AC-SA where each of ``n_outer`` steps averages ``draws_per_step`` × ``machines``
    gradients at one point (the first ``machines`` machines of each of the next draws);
    ``per_round`` outer steps make one round (for divergence checks and ``record_rounds``)."""
    used = oracle.restrict(machines) if machines < oracle.n_machines else oracle

    def kernel(stream: _Stream, x0, eta, beta, out: _Out) -> None:
        G, n, d = eta.size, stream.used, oracle.dim
        e = (eta * beta)[:, None, None]
        x = np.empty((G, n, d))
        x[...] = x0
        ag = x.copy() if accelerated else x
        md = np.empty((G, n, d))
        g = np.empty((G, n, machines, d))
        gacc = np.empty((G, n, machines, d))
        gsum = np.empty((G, n, d))
        avg = np.zeros((G, n, d))
        if out.path is not None:
            out.path[:, :, 0] = x
        for t in range(1, n_outer + 1):
            inv = 2.0 / (t + 1)  # AC-SA, Lan (2012): β_t⁻¹ = 2/(t + 1), γ_t = (t + 1)γ/2
            if accelerated:
                np.multiply(x, inv, out=md)
                md += (1 - inv) * ag
            point = md if accelerated else x
            view = np.broadcast_to(point[:, :, None, :], g.shape)
            gacc[...] = 0.0
            for _ in range(draws_per_step):  # sum over machines once per step (cheaper)
                used.gradient(view, stream.next()[:, :machines], g)
                gacc += g
            np.sum(gacc, axis=2, out=gsum)
            gsum *= e / (draws_per_step * machines)
            if accelerated:
                gsum *= (t + 1) / 2.0
            x -= gsum
            if accelerated:
                ag *= 1 - inv
                ag += inv * x
            avg += ag
            if t % per_round == 0:
                r = t // per_round
                if out.path is not None:
                    out.path[:, :, r] = ag
                _mark(out.diverged, x, t * draws_per_step)
        out.final[...] = ag
        out.averaged[...] = avg / n_outer

    return kernel


def _batched(
    name: str,
    oracle: StochasticOracle,
    *,
    machines_all: bool,
    accelerated: bool,
    local_steps: int,
    rounds: int,
    step_size,
    n_trials: int,
    seed: int,
    experiment: str,
    initial_point,
    memory_cap: int,
    on_divergence: str,
    record_rounds: bool,
) -> Run:
    _check_oracle(oracle)
    K = positive_int(local_steps, "local_steps")
    R = positive_int(rounds, "rounds")
    M = oracle.n_machines
    if machines_all:
        kernel = _batched_kernel(
            oracle, machines=M, draws_per_step=K, n_outer=R, per_round=1, accelerated=accelerated
        )
        per_trial = 8 * oracle.dim * (2 * M + 5)
    else:
        kernel = _batched_kernel(
            oracle,
            machines=1,
            draws_per_step=1,
            n_outer=K * R,
            per_round=K,
            accelerated=accelerated,
        )
        per_trial = 8 * oracle.dim * 6
    per_trial += 8 * int(np.prod(oracle.noise_shape)) * M  # the shared draws
    return _drive(
        name,
        oracle,
        kernel,
        per_trial,
        local_steps=K,
        rounds=R,
        step_size=step_size,
        outer_step_size=1.0,
        n_trials=n_trials,
        seed=seed,
        experiment=experiment,
        initial_point=initial_point,
        memory_cap=memory_cap,
        on_divergence=on_divergence,
        record_rounds=record_rounds,
    )


def minibatch_sgd(
    oracle: StochasticOracle,
    *,
    local_steps: int,
    rounds: int,
    step_size,
    n_trials: int = 1,
    seed: int = 0,
    experiment: str = "local_sgd",
    initial_point=None,
    memory_cap: int = DEFAULT_MEMORY_CAP,
    on_divergence: str = "raise",
    record_rounds: bool = False,
) -> Run:
    """Minibatch SGD: R steps, each on the average of the M·K gradients of its round.

    x_r = x_{r−1} − η (1/(MK)) Σ_{m,k} ∇f_m(x_{r−1}; z^m_{r,k}) (MB-SGD of the note §0 [V],
    with the note's β equal to η/K). ``final`` = x_R, ``averaged`` = (1/R) Σ_{r=1}^R x_r.
    With K = 1 this is local SGD with inner step η/β and outer step β, on the same draws.
    """
    return _batched(
        "minibatch_sgd",
        oracle,
        machines_all=True,
        accelerated=False,
        local_steps=local_steps,
        rounds=rounds,
        step_size=step_size,
        n_trials=n_trials,
        seed=seed,
        experiment=experiment,
        initial_point=initial_point,
        memory_cap=memory_cap,
        on_divergence=on_divergence,
        record_rounds=record_rounds,
    )


def accelerated_minibatch_sgd(
    oracle: StochasticOracle,
    *,
    local_steps: int,
    rounds: int,
    step_size,
    n_trials: int = 1,
    seed: int = 0,
    experiment: str = "local_sgd",
    initial_point=None,
    memory_cap: int = DEFAULT_MEMORY_CAP,
    on_divergence: str = "raise",
    record_rounds: bool = False,
) -> Run:
    """Accelerated minibatch SGD: R steps of AC-SA, each with the M·K gradients of a round.

    AC-SA (Lan 2012, Math. Program. 133:365–397, §3, Euclidean prox-mapping, no constraint
    or regularizer; parameters of its Corollary 1), with γ = ``step_size`` and x^ag_0 = x_0:

        x^md_t = β_t⁻¹ x_{t−1} + (1 − β_t⁻¹) x^ag_{t−1},           β_t = (t + 1)/2,
        x_t    = x_{t−1} − γ_t ĝ(x^md_t),                           γ_t = (t + 1) γ / 2,
        x^ag_t = β_t⁻¹ x_t + (1 − β_t⁻¹) x^ag_{t−1},

    ĝ the average of the M·K stochastic gradients of round t at x^md_t. The recursion and
    parameters are recalled here ([M]; the note could not read Lan's paper); W21 §4 [V]
    defines A-MB-SGD as AC-SA with minibatch MK. Without noise and γ ≤ 1/(2H) it is
    Nesterov's method: F(x^ag_t) − F* ≤ 4H‖x_0 − x*‖²/(t + 1)² (tested).
    ``final`` = x^ag_R, ``averaged`` = (1/R) Σ_t x^ag_t.
    """
    return _batched(
        "accelerated_minibatch_sgd",
        oracle,
        machines_all=True,
        accelerated=True,
        local_steps=local_steps,
        rounds=rounds,
        step_size=step_size,
        n_trials=n_trials,
        seed=seed,
        experiment=experiment,
        initial_point=initial_point,
        memory_cap=memory_cap,
        on_divergence=on_divergence,
        record_rounds=record_rounds,
    )


def single_machine_sgd(
    oracle: StochasticOracle,
    *,
    local_steps: int,
    rounds: int,
    step_size,
    accelerated: bool = False,
    n_trials: int = 1,
    seed: int = 0,
    experiment: str = "local_sgd",
    initial_point=None,
    memory_cap: int = DEFAULT_MEMORY_CAP,
    on_divergence: str = "raise",
    record_rounds: bool = False,
) -> Run:
    """K·R steps of SGD (or of AC-SA, ``accelerated=True``) on machine 0 alone.

    Step t = (r − 1)K + k uses machine 0's sample z[t, 0] of the shared stream (W21 [V]:
    single-machine SGD / AC-SA ignore the other machines; meaningful in the homogeneous
    setting). ``final`` = x_{KR}, ``averaged`` = (1/(KR)) Σ_t x_t (x^ag_t when accelerated).
    """
    return _batched(
        "single_machine_accelerated_sgd" if accelerated else "single_machine_sgd",
        oracle,
        machines_all=False,
        accelerated=accelerated,
        local_steps=local_steps,
        rounds=rounds,
        step_size=step_size,
        n_trials=n_trials,
        seed=seed,
        experiment=experiment,
        initial_point=initial_point,
        memory_cap=memory_cap,
        on_divergence=on_divergence,
        record_rounds=record_rounds,
    )


def run_algorithm(name: str, oracle: StochasticOracle, **kwargs) -> Run:
    """Dispatch by name (``ALGORITHMS``); keyword arguments as in the functions above."""
    table = {
        "local_sgd": local_sgd,
        "minibatch_sgd": minibatch_sgd,
        "accelerated_minibatch_sgd": accelerated_minibatch_sgd,
        "single_machine_sgd": single_machine_sgd,
        "single_machine_accelerated_sgd": lambda o, **kw: single_machine_sgd(
            o, accelerated=True, **kw
        ),
    }
    if name not in table:
        raise InvalidInputError(
            f"algorithm={name!r} is not known; allowed: {', '.join(ALGORITHMS)}"
        )
    return table[name](oracle, **kwargs)
