"""The flatness–optimization trade-off: a one-hidden-layer classifier trained by centralized,
consensus and diffusion SGD at equal budgets, then its flatness, training excess loss and test
accuracy, per seed, with paired comparisons.

Claim under test (arXiv 2406.20006 v2 abstract [S]; note §1, §5): decentralized strategies
favour flatter minima (flatness consensus ≥ diffusion > centralized), consensus has a worse
excess risk than diffusion (optimization error consensus > diffusion, centralized lowest), and
from random initial points diffusion gives the best test accuracy, decentralized generally
beating centralized. The paper's models, data, sizes and flatness measure are unknown
(note §3.5, §5 [?]); everything below is a choice made here.

Training (note §2.5 [R], the unified form of ``numerics.strategies``). Every (strategy, seed,
agent) is one row of one array W (strategies, seeds, agents, d) and every step is

    W ← A2ᵀ (A1ᵀ W − μ ĝ(W)),   ĝ_k = (1/B) Σ_b ∇ℓ(θ_k; x_{i_kb}) + ρ θ_k,

with (A1, A2) from ``make_schedule`` (centralized I, J; consensus A, I; diffusion I, A) and
the gradient at the pre-combination iterate, as in ``numerics.logistic_sgd``. Equal budgets:
the same steps, step size, per-agent batch B and hence K·B gradient evaluations per step for
every strategy (centralized = the server averaging K·B samples). Minibatch indices are drawn
uniformly with replacement from agent k's samples, independently per agent and step.

Randomness and common random numbers. Seed s of experiment E (a master ``seed``) uses
``block_generator(seed, E + "/init", s)`` for the initial point (one point shared by all
agents, ``MLP.initial``), ``block_generator(seed, E + "/batches", s)`` for the minibatches and
``block_generator(seed, E + "/probes", s)`` for the flatness probes. Minibatch rows are
offset_k + ⌊u·N_k⌋ with u = ``random((STEP_BLOCK, K, B))`` drawn per block of steps; doubles
consume the stream one by one, so a seed's draws depend only on (seed, E, s), not on the
block size, the number of seeds or the strategies. Every strategy sees the same initial point,
minibatches and probes for a given seed.

Read-outs at the end, per (strategy, seed) (the network centroid θ_c = (1/K) Σ_k θ_k):

* flatness: Hutchinson trace of ∇²J(θ_c) (full training objective J = (1/K) Σ_k J_k,
  including the regularizer, which adds the constant ρd), its average over the agents'
  own iterates, the top eigenvalue of ∇²J(θ_c) (Lanczos), and the average loss increase at
  radius r (``numerics.flatness``);
* training excess loss J(θ_c) − J_ref, where J_ref is the lowest training objective found
  anywhere in the experiment: the minimum over seeds of scipy L-BFGS runs of
  ``lbfgs_iterations`` full-batch iterations from each seed's initial point, and over every
  final centroid (derived here; J_ref is common to all rows, so paired differences of excess
  loss are differences of training loss and do not depend on this choice);
* test accuracy of θ_c on held-out data (and the agents' mean), training accuracy, consensus
  distance (1/K) Σ_k ‖θ_k − θ_c‖².

Paired comparisons (common random numbers): for each metric m and pair (a, b), the per-seed
differences D_s = m(a, s) − m(b, s) give a mean and a Student-t interval with S − 1 degrees
of freedom at level 1 − α/comparisons (Bonferroni); seeds are independent replicates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.optimize
import scipy.stats
from threadpoolctl import threadpool_limits

from numerics._validate import positive_float, positive_int
from numerics.checks.instances import derived_seed
from numerics.data import load_dataset, split
from numerics.errors import DivergenceError, InvalidInputError
from numerics.flatness import (
    hutchinson_trace,
    perturbation_sharpness,
    rademacher,
    sphere_directions,
    top_eigenvalue,
)
from numerics.mlp import MLP, GradientWorkspace
from numerics.simulate import block_generator
from numerics.stats import DEFAULT_ALPHA
from numerics.strategies import STRATEGIES, make_schedule
from numerics.topology import combination_matrix, make_graph

#: Steps whose minibatch draws are made in one call (not part of the reproducibility contract).
STEP_BLOCK = 256
#: The metrics recorded per (strategy, seed).
METRICS = (
    "trace",
    "trace_agents",
    "top_eigenvalue",
    "sharpness",
    "train_loss",
    "excess_loss",
    "train_accuracy",
    "test_accuracy",
    "test_accuracy_agents",
    "consensus_distance",
)

#: Default parameters of the experiment (the checks and the figure use them).
TRADEOFF_DEFAULTS: dict[str, Any] = {
    "data": "digits",
    "test_fraction": 0.3,
    "split": "label_skew",
    "skew": 0.0,
    "n_agents": 10,
    "graph": "ring",
    "rule": "metropolis",
    "hidden": 16,
    "activation": "tanh",
    "regularization": 1e-3,
    "step_size": 1.0,
    "batch_size": 8,
    "n_steps": 3000,
    "seeds": 16,
    "probes": 32,
    "agent_probes": 8,
    "radius": 0.5,
    "directions": 32,
    "lbfgs_iterations": 1000,
    "eigen_tol": 1e-6,
}


@dataclass(frozen=True, eq=False)
class TradeoffProblem:
    """The classifier on the agents' training data, the held-out test data and the network."""

    mlp: MLP
    offsets: np.ndarray
    sizes: np.ndarray
    test_features: np.ndarray
    test_labels: np.ndarray
    A: np.ndarray
    description: str


def holdout(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified random split into (train indices, test indices); ``fraction`` is the test
    share of each class (rounded), at least one test and one training sample per class."""
    f = float(fraction)
    if not 0.0 < f < 1.0:
        raise InvalidInputError(f"test_fraction must lie in (0, 1); got {fraction!r}")
    rng = np.random.default_rng(np.random.SeedSequence(int(seed)))
    train, test = [], []
    for c in (-1.0, 1.0):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = min(max(1, round(f * idx.size)), idx.size - 1)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def tradeoff_problem(p: dict[str, Any], seed: int, experiment: str) -> TradeoffProblem:
    """Data, hold-out, split across agents, the classifier and the combination matrix.

    The hold-out, the split and the graph are fixed by (seed, experiment), the same for all
    training seeds; the features are standardized over the pooled data (``numerics.data``).
    """
    dataset = load_dataset(p["data"], seed=derived_seed(seed, experiment, "data"))
    tr, te = holdout(dataset.labels, p["test_fraction"], derived_seed(seed, experiment, "holdout"))
    parts = split(
        dataset.labels[tr],
        p["n_agents"],
        p["split"],
        skew=p["skew"],
        seed=derived_seed(seed, experiment, "split"),
    )
    mlp, offsets, sizes = MLP.for_agents(
        dataset.features[tr],
        dataset.labels[tr],
        parts.parts,
        p["hidden"],
        p["regularization"],
        p["activation"],
    )
    graph = make_graph(p["graph"], p["n_agents"], seed=derived_seed(seed, experiment, "graph"))
    A = combination_matrix(graph, p["rule"])
    desc = (
        f"{dataset.name}: {mlp.n_samples} training samples over {len(sizes)} agents "
        f"({parts.description}), {te.size} test samples; {mlp.n_features} features, "
        f"{mlp.hidden} {mlp.activation} units, d = {mlp.dim}, ρ = {mlp.regularization:g}; "
        f"{p['graph']} ({p['rule']})"
    )
    return TradeoffProblem(mlp, offsets, sizes, dataset.features[te], dataset.labels[te], A, desc)


@dataclass(frozen=True)
class PairedDifference:
    """Mean of per-seed differences m(a) − m(b), its standard error and Student-t interval."""

    first: str
    second: str
    metric: str
    mean: float
    standard_error: float
    ci: tuple[float, float]
    n_seeds: int


@dataclass(frozen=True)
class TradeoffResult:
    """Per-(strategy, seed) metrics ``values[metric]`` of shape (strategies, seeds)."""

    strategies: tuple[str, ...]
    seeds: int
    values: dict[str, np.ndarray]
    reference_loss: float
    lbfgs_loss: np.ndarray
    params: dict[str, Any]
    description: str
    final: np.ndarray | None = field(default=None, repr=False)

    def __getitem__(self, key: tuple[str, str]) -> np.ndarray:
        strategy, metric = key
        return self.values[metric][self.strategies.index(strategy)]

    def summary(
        self, metric: str, *, alpha: float = DEFAULT_ALPHA, comparisons: int = 1
    ) -> dict[str, tuple[float, float, float]]:
        """Per strategy: (mean over seeds, t-interval low, high)."""
        out = {}
        for i, s in enumerate(self.strategies):
            x = self.values[metric][i]
            m, lo, hi = t_interval(x, alpha=alpha, comparisons=comparisons)
            out[s] = (m, lo, hi)
        return out

    def paired(
        self,
        first: str,
        second: str,
        metric: str,
        *,
        alpha: float = DEFAULT_ALPHA,
        comparisons: int = 1,
    ) -> PairedDifference:
        """The paired difference of ``metric`` between two strategies over seeds."""
        for s in (first, second):
            if s not in self.strategies:
                raise InvalidInputError(
                    f"strategy {s!r} was not run; allowed: {', '.join(self.strategies)}"
                )
        if metric not in self.values:
            raise InvalidInputError(
                f"metric={metric!r} is not known; allowed: {', '.join(METRICS)}"
            )
        diff = self[first, metric] - self[second, metric]
        m, lo, hi = t_interval(diff, alpha=alpha, comparisons=comparisons)
        se = float(diff.std(ddof=1) / math.sqrt(diff.size)) if diff.size > 1 else math.nan
        return PairedDifference(first, second, metric, m, se, (lo, hi), diff.size)

    def table(self, metrics: Sequence[str] = ("trace", "top_eigenvalue", "sharpness",
                                              "excess_loss", "test_accuracy"),
              *, alpha: float = DEFAULT_ALPHA) -> str:  # fmt: skip
        """A plain-text table: per strategy and metric, mean [t-interval] over seeds."""
        lines = [f"{'strategy':<12}" + "".join(f"{m:>34}" for m in metrics)]
        for s in self.strategies:
            cells = []
            for m in metrics:
                mean, lo, hi = t_interval(self[s, m], alpha=alpha)
                cells.append(f"{mean:.5g} [{lo:.4g}, {hi:.4g}]")
            lines.append(f"{s:<12}" + "".join(f"{c:>34}" for c in cells))
        return "\n".join(lines)


def t_interval(
    samples: np.ndarray, *, alpha: float = DEFAULT_ALPHA, comparisons: int = 1
) -> tuple[float, float, float]:
    """(mean, low, high): Student-t interval with n − 1 degrees of freedom at level
    1 − α/comparisons (two-sided); a single sample gives an infinite interval."""
    x = np.asarray(samples, dtype=float)
    m = float(x.mean())
    if x.size < 2:
        return m, -math.inf, math.inf
    t = float(scipy.stats.t.isf(alpha / (2 * comparisons), x.size - 1))
    half = t * float(x.std(ddof=1)) / math.sqrt(x.size)
    return m, m - half, m + half


def _batch_rows(
    gens: list[np.random.Generator], offsets: np.ndarray, sizes: np.ndarray, steps: int, B: int
) -> np.ndarray:
    """Global rows (steps, seeds, K, B) for the next ``steps`` steps of every seed."""
    u = np.stack([g.random((steps, sizes.size, B)) for g in gens], axis=1)
    local = np.minimum(np.floor(u * sizes[:, None]), sizes[:, None] - 1).astype(np.int64)
    return local + offsets[:-1, None]


def _operator(M: np.ndarray) -> tuple[str, np.ndarray | None]:
    """How to apply Mᵀ to a stack (seeds, K, d): skip I, average for J, else a product."""
    K = M.shape[0]
    if np.array_equal(M, np.eye(K)):
        return "identity", None
    if np.allclose(M, 1.0 / K, rtol=0, atol=1e-15):
        return "average", None
    return "matrix", np.ascontiguousarray(M.T)


def train(
    problem: TradeoffProblem,
    strategies: Sequence[str],
    step_size: float,
    batch_size: int,
    n_steps: int,
    seeds: int,
    *,
    seed: int = 0,
    experiment: str = "tradeoff",
) -> tuple[np.ndarray, np.ndarray]:
    """Train every strategy from every seed's initial point; returns (final W (strategies,
    seeds, K, d), initial points (seeds, d)). One array operation per step for everything."""
    mu = positive_float(step_size, "step_size")
    B = positive_int(batch_size, "batch_size")
    n_steps = positive_int(n_steps, "n_steps")
    S = positive_int(seeds, "seeds")
    seed = positive_int(seed, "seed", minimum=0)
    mlp, K = problem.mlp, problem.sizes.size
    schedules = [make_schedule(s, problem.A) for s in strategies]
    plans = [[(_operator(a1), _operator(a2)) for a1, a2 in s.pairs] for s in schedules]
    theta0 = np.stack(
        [mlp.initial(block_generator(seed, f"{experiment}/init", s)) for s in range(S)]
    )
    batch_gens = [block_generator(seed, f"{experiment}/batches", s) for s in range(S)]
    W = np.broadcast_to(theta0[None, :, None, :], (len(schedules), S, K, mlp.dim)).copy()
    work = GradientWorkspace(mlp, W.shape[:-1], (1, S, K), B)
    mixed = np.empty((S, K, mlp.dim))  # A1ᵀ W of one strategy
    mean = np.empty((S, 1, mlp.dim))
    rows = np.empty((0, S, K, B), dtype=np.int64)
    for n in range(1, n_steps + 1):
        j = (n - 1) % STEP_BLOCK
        if j == 0:
            rows = _batch_rows(batch_gens, problem.offsets, problem.sizes,
                               min(STEP_BLOCK, n_steps - n + 1), B)  # fmt: skip
        G = work.gradient(W, rows[j][None])  # every strategy, seed and agent at once
        G *= -mu
        for i, plan in enumerate(plans):  # a loop over the 2-3 strategies only
            (kind1, M1t), (kind2, M2t) = plan[(n - 1) % len(plan)]
            Gi, Wi = G[i], W[i]
            if kind1 == "identity":
                Gi += Wi
            elif kind1 == "average":
                np.mean(Wi, axis=1, keepdims=True, out=mean)
                Gi += mean
            else:
                np.matmul(M1t, Wi, out=mixed)
                Gi += mixed  # Gi ← A1ᵀ W − μ ĝ
            if kind2 == "identity":
                Wi[...] = Gi
            elif kind2 == "average":
                np.mean(Gi, axis=1, keepdims=True, out=mean)
                Wi[...] = mean
            else:
                np.matmul(M2t, Gi, out=Wi)
        if n % 100 == 0 or n == n_steps:
            if not np.all(np.isfinite(W)):
                raise DivergenceError(f"training with step_size={mu:g}", n)
    return W, theta0


def lbfgs_losses(mlp: MLP, theta0: np.ndarray, iterations: int) -> np.ndarray:
    """Full-batch scipy L-BFGS-B from each initial point (seeds, d): final objectives (seeds,).
    ``iterations`` = 0 skips it (returns +inf)."""
    if iterations == 0:
        return np.full(theta0.shape[0], np.inf)
    iterations = positive_int(iterations, "lbfgs_iterations")

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        v, g = mlp.value_and_gradient(x)
        return float(v), g

    out = np.empty(theta0.shape[0])
    for s, x0 in enumerate(theta0):
        res = scipy.optimize.minimize(
            fun, x0, jac=True, method="L-BFGS-B",
            options={"maxiter": iterations, "maxfun": 2 * iterations, "gtol": 1e-10,
                     "ftol": 1e-15},
        )  # fmt: skip
        out[s] = min(float(res.fun), float(fun(res.x)[0]))
    return out


def run_tradeoff(
    p: dict[str, Any],
    seed: int = 0,
    experiment: str = "tradeoff",
    strategies: Sequence[str] = STRATEGIES,
    *,
    keep_final: bool = False,
) -> TradeoffResult:
    """Build the problem, train, and measure every metric (module docstring)."""
    params = {**TRADEOFF_DEFAULTS, **p}
    S = positive_int(params["seeds"], "seeds")
    for key in ("probes", "agent_probes", "directions"):
        positive_int(params[key], key)
    positive_int(params["lbfgs_iterations"], "lbfgs_iterations", minimum=0)
    with threadpool_limits(1):  # small batched products: extra BLAS threads only contend
        problem = tradeoff_problem(params, seed, experiment)
        mlp = problem.mlp
        W, theta0 = train(
            problem, strategies, params["step_size"], params["batch_size"], params["n_steps"],
            S, seed=seed, experiment=experiment,
        )  # fmt: skip
        centroid = W.mean(axis=2)  # (strategies, S, d)
        values: dict[str, np.ndarray] = {}
        values["train_loss"] = mlp.value(centroid)
        values["consensus_distance"] = np.mean(
            np.sum((W - centroid[:, :, None]) ** 2, axis=-1), axis=-1
        )
        values["train_accuracy"] = mlp.accuracy(centroid, mlp.features, mlp.labels)
        values["test_accuracy"] = mlp.accuracy(centroid, problem.test_features, problem.test_labels)
        values["test_accuracy_agents"] = mlp.accuracy(
            W, problem.test_features, problem.test_labels
        ).mean(axis=-1)
        n_str = len(strategies)
        trace = np.empty((n_str, S))
        trace_agents = np.empty((n_str, S))
        sharp = np.empty((n_str, S))
        for s in range(S):  # per seed: its own probes, shared by the strategies (CRN)
            gen = block_generator(seed, f"{experiment}/probes", s)
            V = rademacher(gen, (params["probes"], mlp.dim))
            trace[:, s] = hutchinson_trace(mlp, centroid[:, s], 0, gen, probes=V).mean
            Va = V[: params["agent_probes"]]
            trace_agents[:, s] = hutchinson_trace(mlp, W[:, s], 0, gen, probes=Va).mean.mean(
                axis=-1
            )
            U = sphere_directions(gen, params["directions"], mlp.dim)
            sharp[:, s] = perturbation_sharpness(
                mlp, centroid[:, s], params["radius"], 0, gen, directions=U
            ).mean
        values["trace"] = trace
        values["trace_agents"] = trace_agents
        values["sharpness"] = sharp
        values["top_eigenvalue"] = top_eigenvalue(
            mlp, centroid, tol=params["eigen_tol"], seed=derived_seed(seed, experiment, "lanczos")
        )
        lbfgs = lbfgs_losses(mlp, theta0, params["lbfgs_iterations"])
    reference = float(min(lbfgs.min(), values["train_loss"].min()))
    values["excess_loss"] = values["train_loss"] - reference
    for key, arr in values.items():
        if not np.all(np.isfinite(arr)):
            raise DivergenceError(f"metric {key}", params["n_steps"])
    return TradeoffResult(
        tuple(strategies), S, values, reference, lbfgs, params,
        f"{problem.description}; μ = {params['step_size']:g}, B = {params['batch_size']}, "
        f"{params['n_steps']} steps, {S} seeds", W if keep_final else None,
    )  # fmt: skip
