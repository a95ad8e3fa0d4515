"""Benchmark of the vectorized Monte Carlo simulator (``numerics.simulate.simulate``).

Two ratios, per strategy (centralized, consensus, diffusion; one strategy per ``simulate``
call), on a ring with Metropolis weights and a heterogeneous random quadratic network:

(a) noise ratio = time of one simulator step / time to draw that step's Gaussian noise.
    One simulator step is the wall time of ``simulate`` over S steps divided by S, read-outs
    (EE, MSD, consensus distance) and all per-call overheads included, nothing subtracted.
    The noise of one step is a (K, trials, d) standard-normal draw from numpy's PCG64
    Generator plus the colouring by L_k (L_k L_kᵀ = R_k / B), i.e. s_n itself. The ratio
    against the raw standard-normal draw alone is printed too. Both are measured in the same
    run, interleaved, and the median over repeats of the per-repeat ratio is reported.
    Target: <= 2.0 (the simulator costs at most as much again as its unavoidable noise).
(b) loop speed-up = time per trial-step of a plain per-agent Python loop implementing the
    same recursion (loops over steps, trials and agents with small numpy operations) / time
    per trial-step of the simulator. The loop runs on fewer trials and is scaled per
    trial-step. Target: >= 30.

Usage:
    python benchmarks/bench_simulate.py [--agents 20 --dim 10 --trials 1000 --steps 200
                                         --repeat 5 --loop-trials 10 --blas-threads N
                                         --json PATH]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from numerics.io import write_text
from numerics.problems import QuadraticNetwork, random_quadratic_network
from numerics.simulate import simulate
from numerics.strategies import STRATEGIES, Schedule, make_schedule
from numerics.topology import combination_matrix, ring

SEED = 0
EXPERIMENT = "benchmarks.bench_simulate"
TARGET_NOISE_RATIO = 2.0
TARGET_SPEEDUP = 30.0


# ---- reference implementation -------------------------------------------------------------
def loop_simulate(
    schedule: Schedule,
    problem: QuadraticNetwork,
    step_size: float,
    n_steps: int,
    n_trials: int,
    *,
    rng: np.random.Generator | None = None,
    z: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Plain per-agent loop of W̃ ← A2ᵀ [A1ᵀ W̃ − μ H W̃ + μ (d + L z)]; mean read-outs per step.

    Noise: ``z[n, t]`` of shape (K, d) if ``z`` (n_steps, n_trials, K, d) is given (same
    stream as ``simulate``, see ``numerics.simulate.standard_normal_draws``), else drawn from
    ``rng`` one (K, d) array per step and trial. Returns the per-step means over trials of
    EE, MSD and consensus distance, like ``simulate``'s ``MonteCarlo.mean``.
    """
    if rng is None and z is None:
        raise ValueError("give rng or z")
    K, d = problem.n_agents, problem.dim
    mu = step_size
    H, g, L = problem.hessians, problem.gradients_at_optimum, problem.step_noise_factors
    hbar = problem.aggregate_hessian
    sums = {q: np.zeros(n_steps) for q in ("ee", "msd", "cd")}
    W = np.zeros((n_trials, K, d))
    for n in range(n_steps):
        A1, A2 = schedule.at(n + 1)
        for t in range(n_trials):
            zt = z[n, t] if z is not None else rng.standard_normal((K, d))
            w = W[t]
            psi = np.empty((K, d))
            for k in range(K):
                psi[k] = A1[:, k] @ w - mu * (H[k] @ w[k]) + mu * (g[k] + L[k] @ zt[k])
            new = np.empty((K, d))
            for k in range(K):
                new[k] = A2[:, k] @ psi
            W[t] = new
            centroid = new.mean(axis=0)
            for k in range(K):
                wk = new[k]
                sums["ee"][n] += 0.5 * (wk @ hbar @ wk) / K
                sums["msd"][n] += (wk @ wk) / K
                dev = wk - centroid
                sums["cd"][n] += (dev @ dev) / K
    return {q: s / n_trials for q, s in sums.items()}


# ---- timing ---------------------------------------------------------------------------------
def _instance(n_agents: int, dim: int) -> tuple[np.ndarray, QuadraticNetwork]:
    A = combination_matrix(ring(n_agents), rule="metropolis")
    problem = random_quadratic_network(
        n_agents,
        dim,
        seed=SEED,
        hessian_heterogeneity=0.5,
        gradient_heterogeneity=1.0,
        noise_heterogeneity=0.5,
    )
    return A, problem


def _time_simulator(strategy, A, problem, mu, steps, trials) -> float:
    t0 = time.perf_counter()
    simulate([strategy], A, problem, mu, steps, trials, seed=SEED, experiment=EXPERIMENT)
    return (time.perf_counter() - t0) / steps


def _time_noise(problem, steps, trials, colour: bool) -> float:
    """Per-step time of a (K, trials, d) PCG64 standard-normal draw, plus colouring by L_k."""
    K, d = problem.n_agents, problem.dim
    gen = np.random.Generator(np.random.PCG64(SEED))
    lt = np.ascontiguousarray(np.swapaxes(problem.step_noise_factors, 1, 2))  # rows @ L_kᵀ
    z = np.empty((K, trials, d))
    s = np.empty((K, trials, d))
    t0 = time.perf_counter()
    for _ in range(steps):
        gen.standard_normal(out=z)
        if colour:
            np.matmul(z, lt, out=s)
    return (time.perf_counter() - t0) / steps


def _time_loop(schedule, problem, mu, steps, trials) -> float:
    rng = np.random.Generator(np.random.PCG64(SEED))
    t0 = time.perf_counter()
    loop_simulate(schedule, problem, mu, steps, trials, rng=rng)
    return (time.perf_counter() - t0) / (steps * trials)


def run(
    *,
    agents: int = 20,
    dim: int = 10,
    trials: int = 1000,
    steps: int = 200,
    repeat: int = 5,
    loop_trials: int = 10,
    loop_steps: int | None = None,
    step_size: float = 0.1,
    blas_threads: int | None = None,
) -> dict:
    """Measure both ratios for every strategy; return a JSON-ready dict.

    ``blas_threads`` caps the BLAS thread pool (threadpoolctl) during the run; None leaves
    the library default.
    """
    with threadpool_limits(limits=blas_threads, user_api="blas"):
        report = _run(agents, dim, trials, steps, repeat, loop_trials, loop_steps, step_size)
        report["blas_threads"] = _blas_threads()
    return report


def _blas_threads() -> int | None:
    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    return max(p["num_threads"] for p in pools) if pools else None


def _median_ratio(num: list[float], den: list[float]) -> float:
    """Median over repeats of the per-repeat ratio (both measured in the same repeat)."""
    return statistics.median(a / b for a, b in zip(num, den, strict=True))


def _run(agents, dim, trials, steps, repeat, loop_trials, loop_steps, step_size) -> dict:
    A, problem = _instance(agents, dim)
    loop_steps = steps if loop_steps is None else loop_steps
    loop_trials = min(loop_trials, trials)
    rows = []
    for strategy in STRATEGIES:
        schedule = make_schedule(strategy, A)
        # warm-up (imports, caches, BLAS threads)
        simulate(
            [strategy], A, problem, step_size, 2, min(trials, 10), seed=SEED, experiment=EXPERIMENT
        )
        _time_noise(problem, 2, trials, colour=True)
        loop_simulate(schedule, problem, step_size, 2, 1, rng=np.random.default_rng(SEED))
        sim_t, noise_t, raw_t, loop_t = [], [], [], []
        for _ in range(repeat):
            sim_t.append(_time_simulator(strategy, A, problem, step_size, steps, trials))
            noise_t.append(_time_noise(problem, steps, trials, colour=True))
            raw_t.append(_time_noise(problem, steps, trials, colour=False))
            loop_t.append(_time_loop(schedule, problem, step_size, loop_steps, loop_trials))
        sim_per_trial_step = [t / trials for t in sim_t]
        rows.append(
            {
                "strategy": strategy,
                "simulator_step_s": statistics.median(sim_t),
                "noise_step_s": statistics.median(noise_t),
                "raw_draw_step_s": statistics.median(raw_t),
                "noise_ratio": _median_ratio(sim_t, noise_t),
                "raw_ratio": _median_ratio(sim_t, raw_t),
                "loop_trial_step_s": statistics.median(loop_t),
                "simulator_trial_step_s": statistics.median(sim_per_trial_step),
                "speedup": _median_ratio(loop_t, sim_per_trial_step),
            }
        )
    return {
        "date": datetime.date.today().isoformat(),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "params": {
            "agents": agents,
            "dim": dim,
            "trials": trials,
            "steps": steps,
            "repeat": repeat,
            "loop_trials": loop_trials,
            "loop_steps": loop_steps,
            "step_size": step_size,
        },
        "targets": {"noise_ratio_max": TARGET_NOISE_RATIO, "speedup_min": TARGET_SPEEDUP},
        "results": rows,
    }


def format_table(report: dict) -> str:
    """The printed table."""
    p = report["params"]
    lines = [
        f"numpy {report['numpy']}, Python {report['python']}, {report['cores']} cores, "
        f"BLAS threads {report['blas_threads']}; "
        f"K={p['agents']} d={p['dim']} trials={p['trials']} steps={p['steps']} "
        f"repeat={p['repeat']} (loop: {p['loop_trials']} trials x {p['loop_steps']} steps)",
        "",
        f"{'strategy':<12} {'step ms':>8} {'noise ms':>8} {'raw ms':>8} "
        f"{'sim/noise':>9} {'sim/raw':>8} {'loop us/ts':>10} {'sim us/ts':>9} {'speed-up':>8}",
    ]
    for r in report["results"]:
        lines.append(
            f"{r['strategy']:<12} {1e3 * r['simulator_step_s']:8.3f} "
            f"{1e3 * r['noise_step_s']:8.3f} {1e3 * r['raw_draw_step_s']:8.3f} "
            f"{r['noise_ratio']:9.2f} {r['raw_ratio']:8.2f} "
            f"{1e6 * r['loop_trial_step_s']:10.1f} {1e6 * r['simulator_trial_step_s']:9.3f} "
            f"{r['speedup']:8.0f}"
        )
    t = report["targets"]
    lines += [
        "",
        f"targets: sim/noise <= {t['noise_ratio_max']:g}, speed-up >= {t['speedup_min']:g}x "
        "(medians over repeats; us/ts = microseconds per trial-step)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    """Command-line entry point: print the table, optionally write JSON; return the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--dim", type=int, default=10)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--loop-trials",
        type=int,
        default=10,
        help="trials of the per-agent loop (scaled per trial-step)",
    )
    parser.add_argument(
        "--loop-steps",
        type=int,
        default=None,
        help="steps of the per-agent loop (default: --steps)",
    )
    parser.add_argument("--step-size", type=float, default=0.1)
    parser.add_argument(
        "--blas-threads",
        type=int,
        default=None,
        help="cap the BLAS thread pool (default: library default)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    for name in ("agents", "dim", "trials", "steps", "repeat", "loop_trials"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.blas_threads is not None and args.blas_threads < 1:
        parser.error("--blas-threads must be >= 1")
    if args.agents < 2:
        parser.error("--agents must be >= 2 (a ring)")
    report = run(
        agents=args.agents,
        dim=args.dim,
        trials=args.trials,
        steps=args.steps,
        repeat=args.repeat,
        loop_trials=args.loop_trials,
        loop_steps=args.loop_steps,
        step_size=args.step_size,
        blas_threads=args.blas_threads,
    )
    print(format_table(report))
    if args.json is not None:
        write_text(args.json, json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
