"""Instances for the checks: seeds derived from (seed, experiment, keys), networks from params."""

from __future__ import annotations

from typing import Any

import numpy as np

from numerics.problems import QuadraticNetwork, random_quadratic_network
from numerics.simulate import experiment_key
from numerics.topology import combination_matrix, make_graph


def derived_seed(seed: int, *keys: str | int) -> int:
    """A 63-bit integer seed keyed by (seed, keys), independent of any list position."""
    spawn = tuple(experiment_key(k) if isinstance(k, str) else int(k) for k in keys)
    return int(
        np.random.SeedSequence(int(seed), spawn_key=spawn).generate_state(2, np.uint64)[0]
        >> np.uint64(1)
    )


def network_instance(
    params: dict[str, Any], seed: int, experiment: str
) -> tuple[np.ndarray, QuadraticNetwork]:
    """(A, problem) from the usual parameters: graph, n_agents, rule, dim, heterogeneity, B."""
    graph = make_graph(
        params["graph"], params["n_agents"], seed=derived_seed(seed, experiment, "graph")
    )
    A = combination_matrix(graph, params["rule"])
    problem = random_quadratic_network(
        params["n_agents"],
        params["dim"],
        seed=derived_seed(seed, experiment, "problem"),
        hessian_heterogeneity=params["hessian_heterogeneity"],
        gradient_heterogeneity=params["gradient_heterogeneity"],
        noise_heterogeneity=params["noise_heterogeneity"],
        batch_size=params["batch_size"],
    )
    return A, problem


NETWORK_DEFAULTS: dict[str, Any] = {
    "graph": "ring",
    "n_agents": 20,
    "rule": "metropolis",
    "dim": 5,
    "hessian_heterogeneity": 0.5,
    "gradient_heterogeneity": 1.0,
    "noise_heterogeneity": 0.5,
    "batch_size": 1,
}
