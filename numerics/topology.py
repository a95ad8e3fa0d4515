"""Network topologies, combination-matrix weight rules, validation and spectra.

Convention: a combination matrix ``A`` is K×K with ``A[l, k]`` the weight agent k gives to
agent l; columns sum to one (left-stochastic) and the combine step is ``W <- A.T @ W``.
"Doubly stochastic" means rows and columns both sum to one. Graph builders return undirected
``networkx.Graph`` objects with nodes 0..K-1 and no self-loops (the weight rules add the
self-weights). References: Sayed 2014, "Adaptation, learning and optimization over networks"
(Table 14.1); Xiao & Boyd 2004, "Fast linear iterations for distributed averaging".
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
from numpy.typing import ArrayLike

from numerics._validate import positive_int
from numerics.errors import DlcheckError, InvalidInputError

GRAPH_NAMES = tuple("ring grid torus star complete erdos_renyi exponential hypercube".split())
WEIGHT_RULES = ("metropolis", "max_degree", "uniform", "optimal")
MAX_CONNECT_TRIES = 1000


def _integer_labels(graph: nx.Graph) -> nx.Graph:
    return nx.convert_node_labels_to_integers(graph, ordering="sorted")


# ---------------------------------------------------------------- graph builders
def ring(n_agents: int) -> nx.Graph:
    """Cycle graph C_K (agent k linked to k±1 mod K); for K = 2 a single edge."""
    return nx.cycle_graph(positive_int(n_agents, "n_agents", minimum=2))


def grid(rows: int, cols: int) -> nx.Graph:
    """Non-periodic rows×cols 2-D grid; node (i, j) is relabelled to i*cols + j."""
    r, c = positive_int(rows, "rows"), positive_int(cols, "cols")
    return _integer_labels(nx.grid_2d_graph(r, c))


def torus(rows: int, cols: int) -> nx.Graph:
    """Periodic rows×cols 2-D grid (degree 4 when rows, cols >= 3); node (i, j) -> i*cols + j."""
    r, c = positive_int(rows, "rows", minimum=2), positive_int(cols, "cols", minimum=2)
    return _integer_labels(nx.grid_2d_graph(r, c, periodic=True))


def star(n_agents: int) -> nx.Graph:
    """Star graph: centre 0 linked to leaves 1..K-1."""
    return nx.star_graph(positive_int(n_agents, "n_agents", minimum=2) - 1)


def complete(n_agents: int) -> nx.Graph:
    """Complete graph K_K (every pair of agents linked)."""
    return nx.complete_graph(positive_int(n_agents, "n_agents"))


def erdos_renyi(n_agents: int, edge_probability: float, seed: int) -> nx.Graph:
    """Connected G(K, p) random graph: each edge present independently with probability p.

    Draws come from ``numpy.random.default_rng(SeedSequence(seed))``; disconnected draws are
    rejected and redrawn (up to 1000 times). Erdős & Rényi 1959; connected w.h.p. for
    p > ln(K)/K.
    """
    n = positive_int(n_agents, "n_agents")
    seed = positive_int(seed, "seed", minimum=0)
    try:
        p = float(edge_probability)
    except (TypeError, ValueError):
        p = math.nan
    if not 0.0 <= p <= 1.0:
        raise InvalidInputError(
            f"edge_probability must be a number in [0, 1]; got {edge_probability!r}"
        )
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    for _ in range(MAX_CONNECT_TRIES):
        graph = nx.gnp_random_graph(n, p, seed=int(rng.integers(2**32)))
        if nx.is_connected(graph):
            return graph
    raise InvalidInputError(
        f"erdos_renyi: no connected graph in {MAX_CONNECT_TRIES} draws with n_agents={n}, "
        f"edge_probability={p!r} (seed={seed}); use edge_probability well above "
        f"ln(n_agents)/n_agents = {math.log(n) / n:.3g}"
    )


def exponential(n_agents: int) -> nx.Graph:
    """Exponential graph: node i linked to (i + 2^j) mod K for every 2^j < K (undirected)."""
    n = positive_int(n_agents, "n_agents")
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    hops = [2**j for j in range(n.bit_length()) if 2**j < n]
    graph.add_edges_from((i, (i + h) % n) for i in range(n) for h in hops)
    return graph


def hypercube(dimension: int) -> nx.Graph:
    """Hypercube Q_d: 2^d nodes, i and j linked when their binary labels differ in one bit."""
    return _integer_labels(nx.hypercube_graph(positive_int(dimension, "dimension")))


def _square_factors(n: int, name: str) -> tuple[int, int]:
    for rows in range(math.isqrt(n), 1, -1):
        if n % rows == 0:
            return rows, n // rows
    raise InvalidInputError(
        f"graph {name!r} needs n_agents = rows × cols with rows, cols >= 2; got n_agents={n} "
        "(prime or < 4); use e.g. 4, 6, 9, 12 or 16"
    )


def make_graph(
    name: str, n_agents: int, *, seed: int = 0, edge_probability: float = 0.3
) -> nx.Graph:
    """Build the graph called ``name`` (one of ``GRAPH_NAMES``) with ``n_agents`` nodes.

    grid/torus use the most square factorisation rows × cols = n_agents (rows <= cols);
    hypercube needs n_agents = 2^dimension.
    """
    if name not in GRAPH_NAMES:
        raise InvalidInputError(f"name must be one of {', '.join(GRAPH_NAMES)}; got {name!r}")
    n = positive_int(n_agents, "n_agents")
    if name in ("grid", "torus"):
        return (grid if name == "grid" else torus)(*_square_factors(n, name))
    if name == "hypercube":
        if n < 2 or n & (n - 1):
            raise InvalidInputError(
                "graph 'hypercube' needs n_agents a power of 2 (2, 4, 8, 16, ...); "
                f"got n_agents={n}"
            )
        return hypercube(n.bit_length() - 1)
    if name == "erdos_renyi":
        return erdos_renyi(n, edge_probability, seed)
    return {"ring": ring, "star": star, "complete": complete, "exponential": exponential}[name](n)


# ---------------------------------------------------------------- weight rules
def _adjacency(graph: nx.Graph) -> np.ndarray:
    """Boolean adjacency (no diagonal) of a connected undirected graph, nodes as 0..K-1."""
    if not isinstance(graph, nx.Graph) or graph.is_directed():
        raise InvalidInputError(
            f"graph must be an undirected networkx.Graph; got {type(graph).__name__}"
        )
    n = graph.number_of_nodes()
    if n == 0:
        raise InvalidInputError("graph must have at least one node; got an empty graph")
    if set(graph.nodes) != set(range(n)):
        try:
            graph = _integer_labels(graph)
        except TypeError:  # labels that cannot be sorted: keep insertion order
            graph = nx.convert_node_labels_to_integers(graph)
    if not nx.is_connected(graph):
        n_comp = nx.number_connected_components(graph)
        raise InvalidInputError(
            f"graph must be connected; got {n} nodes in {n_comp} connected components"
        )
    adj = np.zeros((n, n), dtype=bool)
    for u, v in graph.edges:
        if u != v:
            adj[u, v] = adj[v, u] = True
    return adj


def _fill_diagonal(off: np.ndarray) -> np.ndarray:
    """Put a_kk = 1 - sum_{l != k} a_lk on the diagonal of an off-diagonal weight matrix."""
    np.fill_diagonal(off, 0.0)
    np.fill_diagonal(off, 1.0 - off.sum(axis=0))
    return off


def metropolis_hastings(graph: nx.Graph) -> np.ndarray:
    """Metropolis–Hastings weights: a_lk = 1/(1 + max(d_l, d_k)) for neighbours l != k,
    a_kk = 1 - sum_{l != k} a_lk. Symmetric, doubly stochastic.
    Source: Xiao & Boyd 2004; Sayed 2014, Adaptation, learning and optimization over networks,
    Table 14.1."""
    adj = _adjacency(graph)
    deg = adj.sum(axis=0)
    return _fill_diagonal(np.where(adj, 1.0 / (1.0 + np.maximum.outer(deg, deg)), 0.0))


def max_degree(graph: nx.Graph) -> np.ndarray:
    """Maximum-degree weights: a_lk = 1/(1 + d_max) for neighbours, a_kk = 1 - d_k/(1 + d_max).
    Symmetric, doubly stochastic. Source: Xiao & Boyd 2004; Sayed 2014, Table 14.1."""
    adj = _adjacency(graph)
    return _fill_diagonal(np.where(adj, 1.0 / (1.0 + adj.sum(axis=0).max()), 0.0))


def uniform(graph: nx.Graph) -> np.ndarray:
    """Uniform (averaging) weights: a_lk = 1/|N_k| for l in N_k, the neighbourhood of k
    including k itself. Columns sum to one; doubly stochastic only on regular graphs.
    Source: Sayed 2014, Adaptation, learning and optimization over networks, Table 14.1."""
    adj = _adjacency(graph)
    closed = adj | np.eye(adj.shape[0], dtype=bool)
    return closed / closed.sum(axis=0, keepdims=True)


def optimal_weights(
    graph: nx.Graph, solver: str | None = None, *, nonnegative: bool = True
) -> np.ndarray:
    """Fastest-averaging symmetric weights: minimise ||A - 11^T/K||_2 over symmetric A with
    A 1 = 1, a_lk = 0 for non-neighbours l != k (self-weights free) and, if ``nonnegative``,
    A >= 0. Parametrised by edge weights w as A = I - B diag(w) B^T (B the K×m incidence
    matrix), which builds in symmetry, A 1 = 1 and the sparsity pattern; solved as an SDP
    (-s I <= A - 11^T/K <= s I) with cvxpy, Clarabel by default. Raises ``DlcheckError`` if
    the status is not optimal. Source: Xiao & Boyd, Fast linear iterations for distributed
    averaging, Systems & Control Letters 2004."""
    import cvxpy as cp  # imported here: it takes about a second and only this rule needs it

    adj = _adjacency(graph)
    n = adj.shape[0]
    edges = np.argwhere(np.triu(adj))
    if n == 1:
        return np.ones((1, 1))
    incidence = np.zeros((n, len(edges)))
    incidence[edges[:, 0], np.arange(len(edges))] = 1.0
    incidence[edges[:, 1], np.arange(len(edges))] = -1.0
    weights, bound = cp.Variable(len(edges)), cp.Variable()
    gap = np.eye(n) - np.full((n, n), 1.0 / n) - incidence @ cp.diag(weights) @ incidence.T
    constraints = [gap << bound * np.eye(n), gap >> -bound * np.eye(n)]
    if nonnegative:  # off-diagonal w >= 0 and diagonal 1 - (sum of incident w) >= 0
        constraints += [weights >= 0, np.abs(incidence) @ weights <= 1]
    problem = cp.Problem(cp.Minimize(bound), constraints)
    try:
        problem.solve(solver=solver or cp.CLARABEL)
    except cp.error.SolverError as exc:
        raise DlcheckError(
            f"optimal_weights: solver {solver or 'CLARABEL'!r} failed: {exc}"
        ) from exc
    if problem.status != cp.OPTIMAL or weights.value is None:
        raise DlcheckError(
            f"optimal_weights: solver status is {problem.status!r}; only 'optimal' is accepted"
        )
    w = np.asarray(weights.value, dtype=float)
    w[np.abs(w) < 1e-9] = 0.0
    off = np.zeros((n, n))
    off[edges[:, 0], edges[:, 1]] = off[edges[:, 1], edges[:, 0]] = w
    if nonnegative:
        off = np.maximum(off, 0.0)
        row_max = off.sum(axis=1).max()
        if row_max > 1.0:  # round-off: keep the diagonal >= 0
            off /= row_max
    return _fill_diagonal(off)


def combination_matrix(graph: nx.Graph, rule: str = "metropolis") -> np.ndarray:
    """Combination matrix of ``graph`` by ``rule`` (one of ``WEIGHT_RULES``): "metropolis"
    (Metropolis–Hastings), "max_degree", "uniform" or "optimal" (Xiao & Boyd 2004).
    Source: Sayed 2014, Table 14.1."""
    rules = {"metropolis": metropolis_hastings, "max_degree": max_degree, "uniform": uniform}
    if rule == "optimal":
        return optimal_weights(graph)
    if rule not in rules:
        raise InvalidInputError(f"rule must be one of {', '.join(WEIGHT_RULES)}; got {rule!r}")
    return rules[rule](graph)


# ---------------------------------------------------------------- validation and spectra
def _square_matrix(A: ArrayLike, name: str) -> np.ndarray:
    try:
        arr = np.array(A, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be a numeric array; got {type(A).__name__}") from exc
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] == 0:
        raise InvalidInputError(
            f"{name} must be a non-empty square 2-D array (K×K); got shape {arr.shape}"
        )
    bad = np.argwhere(~np.isfinite(arr))
    if bad.size:
        row, col = bad[0]
        raise InvalidInputError(
            f"{name}[{row}, {col}] = {arr[row, col]}; entries must be finite (no NaN or inf)"
        )
    return arr


def validate_combination_matrix(
    A: ArrayLike, *, doubly_stochastic: bool = True, name: str = "A", atol: float = 1e-10
) -> np.ndarray:
    """Return ``A`` as a float copy if it is a valid combination matrix, else raise.

    Requires: K×K finite, a_lk >= 0 (entries below -atol count as negative), sum_l a_lk = 1
    for every column k (and every row too if ``doubly_stochastic``), the graph of nonzero
    off-diagonal entries strongly connected, and A primitive (|lambda_2| < 1 - 1e-9).
    Source: Sayed 2014, Adaptation, learning and optimization over networks, Sec. 6.1.
    """
    arr = _square_matrix(A, name)
    neg = np.argwhere(arr < -atol)
    if neg.size:
        row, col = neg[0]
        raise InvalidInputError(
            f"{name}[{row}, {col}] = {arr[row, col]:.6g} is negative; entries must be >= 0"
        )
    for axis, what in ((0, "column"), (1, "row"))[: 2 if doubly_stochastic else 1]:
        sums = arr.sum(axis=axis)
        bad = np.flatnonzero(np.abs(sums - 1.0) > atol)
        if bad.size:
            raise InvalidInputError(
                f"{what} {bad[0]} of {name} sums to {sums[bad[0]]:.12g}; "
                f"every {what} must sum to 1 (within atol={atol:g})"
            )
    n = arr.shape[0]
    if n == 1:
        return arr
    digraph = nx.DiGraph()
    digraph.add_nodes_from(range(n))
    digraph.add_edges_from((col, row) for row, col in np.argwhere(arr != 0) if row != col)
    if not nx.is_strongly_connected(digraph):
        n_comp = nx.number_strongly_connected_components(digraph)
        raise InvalidInputError(
            f"{name} is disconnected: the graph of its nonzero off-diagonal entries has {n_comp} "
            "strongly connected components; it must be strongly connected (1 component)"
        )
    slem = second_largest_modulus(arr)
    if slem >= 1.0 - 1e-9:
        raise InvalidInputError(
            f"{name} is periodic (not primitive): its second-largest eigenvalue modulus is "
            f"{slem:.12g} but must be < 1; add positive self-weights, e.g. use (I + A)/2"
        )
    return arr


def is_symmetric(A: ArrayLike, atol: float = 1e-12) -> bool:
    """True if A is square with max |A - A^T| <= atol."""
    arr = np.asarray(A, dtype=float)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        return False
    return bool(np.all(np.abs(arr - arr.T) <= atol))


def spectrum(A: ArrayLike) -> np.ndarray:
    """Eigenvalues of A. Symmetric A: real, sorted by decreasing value (``numpy.linalg.eigvalsh``).
    Otherwise (``numpy.linalg.eigvals``): sorted by decreasing modulus, ties by decreasing real
    part, so lambda_1 = 1 comes first for a stochastic matrix; returned real if all imaginary
    parts are below 1e-12, complex otherwise."""
    arr = _square_matrix(A, "A")
    if is_symmetric(arr):
        return np.linalg.eigvalsh((arr + arr.T) / 2.0)[::-1]
    lam = np.linalg.eigvals(arr)
    lam = lam[np.lexsort((-lam.real, -np.round(np.abs(lam), 10)))]  # modulus ties: round-off
    return lam.real if np.all(np.abs(lam.imag) < 1e-12) else lam


def second_largest_modulus(A: ArrayLike) -> float:
    """Second-largest eigenvalue modulus max_{i >= 2} |lambda_i| (0 for K = 1); governs the
    consensus rate ||A^i - 11^T/K|| ~ |lambda_2|^i. Source: Xiao & Boyd 2004."""
    moduli = np.sort(np.abs(spectrum(A)))[::-1]
    return float(moduli[1]) if moduli.size > 1 else 0.0


def spectral_gap(A: ArrayLike) -> float:
    """Spectral gap 1 - max_{i >= 2} |lambda_i| (Sayed 2014, Sec. 6.1)."""
    return 1.0 - second_largest_modulus(A)


def has_negative_eigenvalues(A: ArrayLike, atol: float = 1e-12) -> bool:
    """True if the symmetric matrix A has an eigenvalue < -atol."""
    arr = _square_matrix(A, "A")
    if not is_symmetric(arr):
        asym = np.abs(arr - arr.T).max()
        raise InvalidInputError(
            f"A must be symmetric (max |A - A^T| <= 1e-12); got max |A - A^T| = {asym:.3g}"
        )
    return bool(spectrum(arr)[-1] < -atol)
