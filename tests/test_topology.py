"""Tests for numerics.topology: graph builders, weight rules, validation and spectra."""

from __future__ import annotations

import cvxpy as cp
import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numerics import topology as tp
from numerics.errors import DlcheckError, InvalidInputError


def _degrees(graph: nx.Graph) -> set[int]:
    return {d for _, d in graph.degree()}


def _norm_to_average(A: np.ndarray) -> float:
    n = A.shape[0]
    return float(np.linalg.norm(A - np.full((n, n), 1.0 / n), 2))


def _offdiag_support(A: np.ndarray) -> set[tuple[int, int]]:
    return {(int(r), int(c)) for r, c in np.argwhere(A != 0) if r != c}


def _edge_support(graph: nx.Graph) -> set[tuple[int, int]]:
    return {(u, v) for u, v in graph.edges} | {(v, u) for u, v in graph.edges}


# ---------------------------------------------------------------- builders
def _check_nodes(graph: nx.Graph, n: int) -> None:
    assert sorted(graph.nodes) == list(range(n))
    assert nx.is_connected(graph)
    assert nx.number_of_selfloops(graph) == 0


@pytest.mark.parametrize("n", [3, 4, 7, 12])
def test_ring(n):
    graph = tp.ring(n)
    _check_nodes(graph, n)
    assert _degrees(graph) == {2}


def test_ring_of_two_is_single_edge():
    graph = tp.ring(2)
    _check_nodes(graph, 2)
    assert list(graph.edges) == [(0, 1)]


def test_grid():
    graph = tp.grid(3, 4)
    _check_nodes(graph, 12)
    assert graph.number_of_edges() == 3 * 3 + 2 * 4
    assert _degrees(graph) == {2, 3, 4}
    assert graph.has_edge(0, 1) and graph.has_edge(0, 4) and not graph.has_edge(3, 4)


@pytest.mark.parametrize(("rows", "cols"), [(3, 3), (3, 4), (4, 5)])
def test_torus(rows, cols):
    graph = tp.torus(rows, cols)
    _check_nodes(graph, rows * cols)
    assert _degrees(graph) == {4}


@pytest.mark.parametrize("n", [2, 6, 10])
def test_star(n):
    graph = tp.star(n)
    _check_nodes(graph, n)
    assert graph.degree(0) == n - 1
    assert all(graph.degree(k) == 1 for k in range(1, n))


@pytest.mark.parametrize("n", [1, 2, 5])
def test_complete(n):
    graph = tp.complete(n)
    assert sorted(graph.nodes) == list(range(n))
    assert graph.number_of_edges() == n * (n - 1) // 2


@pytest.mark.parametrize(("n", "degree"), [(2, 1), (4, 3), (5, 4), (8, 5), (16, 7)])
def test_exponential(n, degree):
    graph = tp.exponential(n)
    _check_nodes(graph, n)
    assert _degrees(graph) == {degree}
    if n == 8:
        assert set(graph.neighbors(0)) == {1, 2, 4, 6, 7}


@pytest.mark.parametrize("dimension", [1, 2, 3, 4])
def test_hypercube(dimension):
    graph = tp.hypercube(dimension)
    _check_nodes(graph, 2**dimension)
    assert _degrees(graph) == {dimension}
    assert all(bin(u ^ v).count("1") == 1 for u, v in graph.edges)


def test_erdos_renyi_reproducible_and_connected():
    first = tp.erdos_renyi(15, 0.3, seed=7)
    again = tp.erdos_renyi(15, 0.3, seed=7)
    _check_nodes(first, 15)
    assert sorted(first.edges) == sorted(again.edges)
    others = [sorted(tp.erdos_renyi(15, 0.3, seed=s).edges) for s in range(1, 5)]
    assert any(edges != sorted(first.edges) for edges in others)


def test_erdos_renyi_low_probability_still_connected():
    for seed in range(3):
        _check_nodes(tp.erdos_renyi(20, 0.12, seed=seed), 20)


def test_erdos_renyi_errors():
    with pytest.raises(
        InvalidInputError, match=r"1000 draws with n_agents=5, edge_probability=0\.0"
    ):
        tp.erdos_renyi(5, 0.0, seed=0)
    with pytest.raises(InvalidInputError, match=r"edge_probability must be .*\[0, 1\].*1\.5"):
        tp.erdos_renyi(5, 1.5, seed=0)
    with pytest.raises(InvalidInputError, match=r"seed must be an integer >= 0; got -1"):
        tp.erdos_renyi(5, 0.5, seed=-1)
    assert tp.erdos_renyi(1, 0.0, seed=0).number_of_nodes() == 1


def test_builder_argument_errors():
    with pytest.raises(InvalidInputError, match=r"n_agents must be an integer >= 2; got 1"):
        tp.ring(1)
    with pytest.raises(InvalidInputError, match=r"dimension must be an integer >= 1; got 0"):
        tp.hypercube(0)
    with pytest.raises(InvalidInputError, match=r"rows must be an integer >= 2; got 1"):
        tp.torus(1, 5)


@pytest.mark.parametrize("name", tp.GRAPH_NAMES)
def test_make_graph_all_names(name):
    graph = tp.make_graph(name, 16, seed=3, edge_probability=0.4)
    _check_nodes(graph, 16)


def test_make_graph_square_factorisation():
    assert tp.make_graph("grid", 12).number_of_edges() == tp.grid(3, 4).number_of_edges()
    assert _degrees(tp.make_graph("torus", 9)) == {4}
    assert tp.make_graph("hypercube", 8).number_of_nodes() == 8


def test_make_graph_errors():
    with pytest.raises(InvalidInputError, match=r"name must be one of ring, grid, .*got 'mesh'"):
        tp.make_graph("mesh", 4)
    with pytest.raises(InvalidInputError, match=r"hypercube.*power of 2.*n_agents=12"):
        tp.make_graph("hypercube", 12)
    with pytest.raises(InvalidInputError, match=r"torus.*rows, cols >= 2.*n_agents=7"):
        tp.make_graph("torus", 7)
    with pytest.raises(InvalidInputError, match=r"grid.*n_agents=13"):
        tp.make_graph("grid", 13)


# ---------------------------------------------------------------- weight rules
GRAPHS = {
    "ring": tp.ring(7),
    "grid": tp.grid(3, 3),
    "star": tp.star(6),
    "erdos_renyi": tp.erdos_renyi(10, 0.35, seed=2),
    "exponential": tp.exponential(8),
    "hypercube": tp.hypercube(3),
}


@pytest.mark.parametrize("rule", ["metropolis", "max_degree", "optimal"])
@pytest.mark.parametrize("graph_name", list(GRAPHS))
def test_symmetric_rules_doubly_stochastic(rule, graph_name):
    graph = GRAPHS[graph_name]
    A = tp.combination_matrix(graph, rule)
    tp.validate_combination_matrix(A, doubly_stochastic=True)
    assert tp.is_symmetric(A)
    assert np.all(A >= 0)
    assert np.allclose(A.sum(axis=0), 1.0, atol=1e-12, rtol=0)
    support = _offdiag_support(A)
    if rule == "optimal":
        assert support <= _edge_support(graph)
    else:
        assert support == _edge_support(graph)


@pytest.mark.parametrize("graph_name", list(GRAPHS))
def test_uniform_rule(graph_name):
    graph = GRAPHS[graph_name]
    A = tp.uniform(graph)
    tp.validate_combination_matrix(A, doubly_stochastic=False)
    assert _offdiag_support(A) == _edge_support(graph)
    for k in range(A.shape[0]):
        assert np.allclose(A[A[:, k] > 0, k], 1.0 / (graph.degree(k) + 1))


def test_uniform_on_star_is_only_column_stochastic():
    A = tp.combination_matrix(tp.star(5), "uniform")
    assert np.allclose(A.sum(axis=0), 1.0)
    assert not np.allclose(A.sum(axis=1), 1.0)
    with pytest.raises(
        InvalidInputError, match=r"row 0 of A sums to 2\.2; every row must sum to 1"
    ):
        tp.validate_combination_matrix(A)


def test_uniform_on_regular_graph_is_doubly_stochastic():
    tp.validate_combination_matrix(tp.uniform(tp.ring(6)))


def test_metropolis_known_values():
    A = tp.metropolis_hastings(tp.star(4))
    assert np.allclose(A[0], [1 / 4] * 4)
    assert np.allclose(np.diag(A), [1 / 4, 3 / 4, 3 / 4, 3 / 4])
    B = tp.max_degree(tp.grid(2, 3))  # d_max = 3
    assert np.isclose(B[0, 1], 1 / 4) and np.isclose(B[0, 0], 1 - 2 / 4)


def test_weight_rules_relabel_and_reject_bad_graphs():
    labelled = nx.grid_2d_graph(2, 2)  # tuple labels
    A = tp.metropolis_hastings(labelled)
    assert np.allclose(A, tp.metropolis_hastings(tp.grid(2, 2)))
    with pytest.raises(InvalidInputError, match=r"graph must be connected; got 4 nodes in 2"):
        tp.metropolis_hastings(nx.Graph([(0, 1), (2, 3)]))
    with pytest.raises(InvalidInputError, match=r"undirected networkx.Graph; got DiGraph"):
        tp.uniform(nx.DiGraph([(0, 1)]))
    with pytest.raises(InvalidInputError, match=r"rule must be one of metropolis, .*got 'best'"):
        tp.combination_matrix(tp.ring(4), "best")


def test_single_agent():
    graph = tp.complete(1)
    for rule in tp.WEIGHT_RULES:
        assert np.array_equal(tp.combination_matrix(graph, rule), [[1.0]])
    assert tp.spectral_gap([[1.0]]) == 1.0


# ---------------------------------------------------------------- optimal weights
@pytest.mark.parametrize(
    "graph",
    [tp.ring(8), tp.grid(3, 3), tp.star(6), tp.erdos_renyi(10, 0.3, seed=5)],
    ids=["ring8", "grid3x3", "star6", "er10"],
)
def test_optimal_beats_metropolis(graph):
    A_opt = tp.optimal_weights(graph)
    A_mh = tp.metropolis_hastings(graph)
    assert _norm_to_average(A_opt) <= _norm_to_average(A_mh) + 1e-6
    unconstrained = tp.optimal_weights(graph, nonnegative=False)
    assert _norm_to_average(unconstrained) <= _norm_to_average(A_opt) + 1e-6


def test_optimal_on_complete_graph_is_averaging():
    A = tp.optimal_weights(tp.complete(5))
    assert np.allclose(A, np.full((5, 5), 0.2), atol=1e-6, rtol=0)


def test_optimal_raises_on_bad_status(monkeypatch):
    monkeypatch.setattr(cp.Problem, "status", property(lambda self: cp.INFEASIBLE))
    with pytest.raises(DlcheckError, match=r"status is 'infeasible'.*'optimal'"):
        tp.optimal_weights(tp.ring(4))


# ---------------------------------------------------------------- spectra
@pytest.mark.parametrize("n", range(3, 13))
def test_ring_metropolis_spectrum_closed_form(n):
    A = tp.metropolis_hastings(tp.ring(n))
    assert np.allclose(A[A > 0], 1 / 3, atol=1e-15)
    expected = np.sort(1 / 3 + 2 / 3 * np.cos(2 * np.pi * np.arange(n) / n))[::-1]
    assert np.allclose(tp.spectrum(A), expected, atol=1e-12, rtol=0)
    gap = 2 / 3 * (1 - np.cos(2 * np.pi / n))
    assert abs(tp.spectral_gap(A) - gap) < 1e-12


def test_spectrum_nonsymmetric():
    A = tp.uniform(tp.star(4))
    lam = tp.spectrum(A)
    assert lam.dtype.kind == "f" and abs(lam[0] - 1) < 1e-12
    cycle = np.roll(np.eye(3), 1, axis=0)  # directed 3-cycle: eigenvalues = cube roots of 1
    lam = tp.spectrum(cycle)
    assert lam.dtype.kind == "c" and abs(lam[0] - 1) < 1e-12
    assert abs(tp.second_largest_modulus(cycle) - 1) < 1e-12


def test_has_negative_eigenvalues_and_is_symmetric():
    A = tp.metropolis_hastings(tp.ring(4))  # eigenvalues 1, 1/3, 1/3, -1/3
    assert tp.has_negative_eigenvalues(A)
    assert not tp.has_negative_eigenvalues((np.eye(4) + A) / 2)
    assert tp.is_symmetric(A) and not tp.is_symmetric(tp.uniform(tp.star(4)))
    assert not tp.is_symmetric(np.ones((2, 3)))
    with pytest.raises(InvalidInputError, match=r"A must be symmetric.*got max \|A - A\^T\| = "):
        tp.has_negative_eigenvalues(tp.uniform(tp.star(4)))


# ---------------------------------------------------------------- validation errors
def test_validate_accepts_and_copies():
    A = tp.metropolis_hastings(tp.ring(5))
    out = tp.validate_combination_matrix(A)
    out[0, 0] = 5.0
    assert A[0, 0] != 5.0
    assert np.array_equal(tp.validate_combination_matrix([[1]]), [[1.0]])


@pytest.mark.parametrize(
    ("matrix", "kwargs", "pattern"),
    [
        (np.ones((2, 3)) / 2, {}, r"A must be a non-empty square 2-D array.*shape \(2, 3\)"),
        (np.ones(3) / 3, {"name": "C"}, r"C must be .*square 2-D.*shape \(3,\)"),
        ([[0.5, np.nan], [0.5, 0.5]], {}, r"A\[0, 1\] = nan; entries must be finite"),
        ([[1.5, 0.5], [-0.5, 0.5]], {}, r"A\[1, 0\] = -0\.5 is negative; entries must be >= 0"),
        ([[0.5, 0.5], [0.4, 0.5]], {}, r"column 0 of A sums to 0\.9; every column must sum to 1"),
        ([[0.5, 0.2], [0.5, 0.8]], {}, r"row 0 of A sums to 0\.7; every row must sum to 1"),
        (
            np.kron(np.eye(2), np.full((2, 2), 0.5)),
            {},
            r"A is disconnected.* 2 strongly connected components",
        ),
        ([[0, 1], [1, 0]], {}, r"A is periodic .*modulus is 1 .*add positive self-weights"),
        (
            np.roll(np.eye(4), 1, axis=0) / 2 + np.roll(np.eye(4), -1, axis=0) / 2,
            {},
            r"periodic.*self-weights",
        ),
    ],
    ids=[
        "non-square",
        "1-D",
        "nan",
        "negative",
        "column",
        "row",
        "disconnected",
        "2-ring",
        "4-ring",
    ],
)
def test_validate_errors(matrix, kwargs, pattern):
    with pytest.raises(InvalidInputError, match=pattern):
        tp.validate_combination_matrix(matrix, **kwargs)


def test_validate_row_sums_ignored_when_not_doubly():
    A = np.array([[0.5, 0.2], [0.5, 0.8]])
    assert np.array_equal(tp.validate_combination_matrix(A, doubly_stochastic=False), A)


# ---------------------------------------------------------------- property
@st.composite
def connected_graphs(draw) -> nx.Graph:
    n = draw(st.integers(2, 12))
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from((k, draw(st.integers(0, k - 1))) for k in range(1, n))  # random tree
    pairs = st.tuples(st.integers(0, n - 1), st.integers(0, n - 1))
    graph.add_edges_from((u, v) for u, v in draw(st.lists(pairs, max_size=2 * n)) if u != v)
    return graph


@settings(max_examples=60, deadline=None)
@given(connected_graphs())
def test_metropolis_property(graph):
    A = tp.metropolis_hastings(graph)
    assert tp.is_symmetric(A)
    tp.validate_combination_matrix(A, doubly_stochastic=True)
    lam = tp.spectrum(A)
    assert lam.min() > -1 and lam.max() <= 1 + 1e-9
    assert np.sum(np.abs(lam - 1) < 1e-9) == 1
    assert 0 < tp.spectral_gap(A) <= 1
