"""Exact certificates that a polynomial is non-negative on the unit box [0, 1]^k.

A polynomial of degree (n_1, ..., n_k) is a combination of products of Bernstein basis
polynomials C(n, j) x^j (1 − x)^{n−j}, which are all ≥ 0 on [0, 1]; if every Bernstein
coefficient is ≥ 0, so is the polynomial (Farouki 2012, "The Bernstein polynomial basis: a
centennial retrospective", §4). When some coefficient is negative the box is halved (de
Casteljau) and each half is tried again, up to ``max_depth``. All arithmetic is exact
(``fractions.Fraction``).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from itertools import pairwise, product
from math import comb

import numpy as np
import sympy as sp


@dataclass(frozen=True)
class Certificate:
    """Outcome of ``certify_nonnegative``: ``holds`` is True when every box's Bernstein
    coefficients are ≥ 0; ``boxes`` the number of boxes examined; ``smallest`` the smallest
    coefficient of the first (undivided) expansion."""

    holds: bool
    boxes: int
    smallest: Fraction


def _power_to_bernstein(c: list[Fraction]) -> list[Fraction]:
    """Bernstein coefficients b_j = Σ_{i≤j} C(j, i)/C(n, i) c_i of Σ_i c_i x^i on [0, 1]."""
    n = len(c) - 1
    return [
        sum(Fraction(comb(j, i), comb(n, i)) * c[i] for i in range(j + 1)) for j in range(n + 1)
    ]


def _split(c: list[Fraction]) -> tuple[list[Fraction], list[Fraction]]:
    """de Casteljau at 1/2: the Bernstein coefficients on [0, 1/2] and [1/2, 1] (rescaled)."""
    left, right, cur = [c[0]], [c[-1]], list(c)
    while len(cur) > 1:
        cur = [(u + v) / 2 for u, v in pairwise(cur)]
        left.append(cur[0])
        right.append(cur[-1])
    return left, right[::-1]


def _apply(array: np.ndarray, axis: int, fn) -> np.ndarray:
    """Apply a list -> list map along one axis of an object array."""
    moved = np.moveaxis(array, axis, -1)
    out = np.empty(moved.shape, dtype=object)
    for idx in product(*(range(s) for s in moved.shape[:-1])):
        out[idx] = fn(list(moved[idx]))
    return np.moveaxis(out, -1, axis)


def bernstein_coefficients(expr: sp.Expr, variables: tuple[sp.Symbol, ...]) -> np.ndarray:
    """The Bernstein coefficients of a polynomial with rational coefficients on [0, 1]^k."""
    poly = sp.Poly(sp.expand(expr), *variables)
    degrees = [poly.degree(v) for v in variables]
    coeffs = np.empty([d + 1 for d in degrees], dtype=object)
    coeffs[...] = Fraction(0)
    for monomial, value in poly.terms():
        coeffs[monomial] = Fraction(int(sp.numer(value)), int(sp.denom(value)))
    for axis in range(len(variables)):
        coeffs = _apply(coeffs, axis, _power_to_bernstein)
    return coeffs


def certify_nonnegative(
    expr: sp.Expr, variables: tuple[sp.Symbol, ...], max_depth: int = 12
) -> Certificate:
    """Whether ``expr`` ≥ 0 on [0, 1]^k, proven by Bernstein coefficients with subdivision."""
    first = bernstein_coefficients(expr, variables)
    stack, boxes = [(first, 0)], 0
    while stack:
        coeffs, depth = stack.pop()
        boxes += 1
        if min(coeffs.flat) >= 0:
            continue
        if depth >= max_depth:
            return Certificate(False, boxes, min(first.flat))
        axis = depth % coeffs.ndim
        left = _apply(coeffs, axis, lambda c: _split(c)[0])
        right = _apply(coeffs, axis, lambda c: _split(c)[1])
        stack += [(left, depth + 1), (right, depth + 1)]
    return Certificate(True, boxes, min(first.flat))
