"""Exact and deterministic studies behind the local SGD checks (no tuning statistics).

- ``serial_sgd_expectation`` and ``moments_final_excess``: the quadratic-invariance
  mechanism (note §1, [M] derived there and here): local SGD's machine average on a
  homogeneous quadratic with additive noise is serial SGD with noise σ²/M.
- ``rank_one_study``: (c) Prop. 7 / App. B.3 [V], best local GD error over (η, K, β) and the
  infimum over the effective GD step s = β(1 − (1 − ηH)^K)/H each round reduces to.
- ``chain_study``: (c) Thm 11 / Lemma 24 [V], support growth and best errors of local GD and
  of accelerated minibatch GD.
- ``fixed_point_convergence``: (c) Prop. 19 [V], exact rounds iterated to convergence.
"""

from __future__ import annotations

import numpy as np

from numerics.local_sgd import accelerated_minibatch_sgd, local_sgd
from numerics.local_sgd_experiments import tune
from numerics.local_sgd_instances import (
    QuadraticOracle,
    chain,
    local_gd_fixed_point,
    local_gd_rounds,
    rank_one,
)
from numerics.moments import escaping_efficiency
from numerics.problems import QuadraticNetwork
from numerics.strategies import averaging_matrix


def _rel(a, b) -> float:
    """max |a − b| / max |b| over entries finite in both."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.max(np.abs(a[ok] - b[ok])) / max(np.max(np.abs(b[ok])), 1e-300))


def serial_sgd_expectation(oracle: QuadraticOracle, step_size: float, total_steps: int):
    """E F − F* of the final and of the averaged iterate of serial SGD with noise variance
    s_i²/M per coordinate, from x_0 = 0, on a homogeneous diagonal quadratic (closed form,
    derived here): e_t = a e_{t−1} − η ξ̄_t, a = 1 − ηλ_i; the average (1/T)Σ_{t=1}^T e_t has
    mean e_0 a(1 − a^T)/(T(1 − a)) and variance (η² v/T²) Σ_{j=1}^T ((1 − a^j)/(1 − a))²."""
    if not oracle.diagonal or not np.allclose(oracle.hessians, oracle.hessians[:1]):
        raise ValueError("serial_sgd_expectation needs equal diagonal Hessians")
    lam = np.diag(oracle.hessians[0])
    e0 = -oracle.optimum
    v = oracle.noise_std**2 / oracle.n_machines
    T, eta = int(total_steps), float(step_size)
    a = 1.0 - eta * lam
    final = 0.5 * np.sum(lam * ((a**T * e0) ** 2 + eta**2 * v * (1 - a ** (2 * T)) / (1 - a**2)))
    j = np.arange(1, T + 1)[:, None]
    geo = (1 - a**j) / (1 - a)
    mean_avg = e0 * a * (1 - a**T) / (T * (1 - a))
    var_avg = eta**2 * v / T**2 * np.sum(geo**2, axis=0)
    return float(final), float(0.5 * np.sum(lam * (mean_avg**2 + var_avg)))


def moments_final_excess(
    oracle: QuadraticOracle, step_size: float, local_steps: int, rounds: int
) -> float:
    """E F(x_R) − F* of local SGD from the exact moment engine (``numerics.moments``, the
    local_sgd schedule of DESIGN.md): at the end of a round every agent holds x_R, so EE at
    step K·R is the excess of x_R. Needs a homogeneous oracle (zero local gradients at x*)."""
    M = oracle.n_machines
    cov = np.zeros((M, oracle.dim, oracle.dim))
    cov[:, np.arange(oracle.dim), np.arange(oracle.dim)] = oracle.noise_std**2
    problem = QuadraticNetwork(oracle.hessians, np.zeros((M, oracle.dim)), cov, 1)
    ee = escaping_efficiency(
        "local_sgd",
        averaging_matrix(M),
        problem,
        step_size,
        local_steps * rounds,
        initial_error=oracle.optimum,
        local_steps=local_steps,
    )
    return float(ee[-1])


def rank_one_study(
    rounds: list[int],
    step_sizes: np.ndarray,
    outer_step_sizes: tuple[float, ...],
    local_steps: tuple[int, ...],
    big_local_steps: int,
) -> dict:
    """Best final error over the (η, β) grid × K for each R on ``rank_one(R)`` (H = B = 1).

    K in ``local_steps`` run step by step (``local_sgd``); ``big_local_steps`` by the exact
    round map. Also: the infimum over every effective step s > 0 of R GD steps on F (dense s
    grid), the largest deviation of the projector identity (I − ηHA_i)^K = I − (1 − (1 −
    ηH)^K)A_i, and of step-by-step local GD from the round map (at the first R).
    """
    E, Bt = (a.ravel() for a in np.meshgrid(step_sizes, outer_step_sizes))
    best, inf_s, ident, agree = [], [], 0.0, 0.0
    for R in rounds:
        o = rank_one(R)
        errs = []
        for k in local_steps:
            run = local_sgd(
                o, local_steps=k, rounds=R, step_size=E, outer_step_size=Bt, on_divergence="mark"
            )
            errs.append(float(run.excess(o).min()))
            if R == rounds[0]:
                exact = local_gd_rounds(o, local_steps=k, rounds=R, step_size=E, outer_step_size=Bt)
                keep = np.all(np.abs(exact[:, -1]) < 1e6, axis=1)
                agree = max(agree, _rel(run.final[keep, 0], exact[keep, -1]))
        closed = local_gd_rounds(
            o, local_steps=big_local_steps, rounds=R, step_size=E, outer_step_size=Bt
        )[:, -1]
        with np.errstate(over="ignore", invalid="ignore"):
            e_big = o.excess(closed)
        errs.append(float(np.min(np.where(np.isfinite(e_big), e_big, np.inf))))
        best.append(min(errs))
        lam, V = np.linalg.eigh(o.mean_hessian)  # one round = one GD step of size s on F
        c = V.T @ o.optimum
        s = np.geomspace(1e-3, 4.0 / lam[-1], 100_001)
        with np.errstate(over="ignore"):
            e = 0.5 * np.sum(lam * c**2 * (1 - s[:, None] * lam) ** (2 * R), axis=1)
        inf_s.append(float(e.min()))
        for k in (*local_steps, big_local_steps):
            for Ai in o.hessians[:2]:
                lhs = np.linalg.matrix_power(np.eye(2) - step_sizes[:, None, None] * Ai, k)
                rhs = np.eye(2) - (1 - (1 - step_sizes) ** k)[:, None, None] * Ai
                ident = max(ident, float(np.abs(lhs - rhs).max()))
    return {
        "best": np.array(best),
        "infimum": np.array(inf_s),
        "identity_deviation": ident,
        "round_map_deviation": agree,
    }


def chain_study(
    rounds: list[int], step_sizes: np.ndarray, local_steps: tuple[int, ...], n_accelerated: int = 16
) -> dict:
    """On ``chain(R)`` (H = B = 1): best final errors of local GD over (η, K) and of AC-SA
    (γL on a geometric grid [0.05, 0.5], L the smoothness), and the support of every round's
    iterate: the largest and smallest (last non-zero coordinate of x_r) − r."""
    local_best, acc = [], []
    hi, lo = -(10**9), 10**9
    for R in rounds:
        o = chain(R)
        best = np.inf
        for k in local_steps:
            run = local_sgd(
                o,
                local_steps=k,
                rounds=R,
                step_size=step_sizes,
                record_rounds=True,
                on_divergence="mark",
            )
            best = min(best, float(run.excess(o).min()))
            nz = run.path[:, 0] != 0  # (G, R + 1, d)
            last = np.where(nz.any(-1), nz.shape[-1] - np.argmax(nz[..., ::-1], axis=-1), 0)
            gap = (last - np.arange(R + 1))[np.isfinite(run.final[:, 0, 0])]
            hi, lo = max(hi, int(gap.max())), min(lo, int(gap.min()))
        local_best.append(best)
        L = o.smoothness
        grid = np.geomspace(0.05, 0.5, n_accelerated) / L
        run = accelerated_minibatch_sgd(
            o, local_steps=1, rounds=R, step_size=grid, on_divergence="mark"
        )
        acc.append(tune(run, o, cap=0.5 / L))
    return {
        "local_best": np.array(local_best),
        "accelerated": acc,
        "support_excess_max": hi,
        "support_excess_min": lo,
    }


def fixed_point_convergence(
    oracle: QuadraticOracle,
    configs: list[tuple[float, int]],
    outer_step_sizes: tuple[float, ...],
    tolerance: float = 1e-13,
    max_rounds: int = 200_000,
) -> tuple[float, int]:
    """Iterate exact local GD rounds until the contraction predicts ‖x_R − x∞‖ < tolerance·‖x∞‖
    (R from the spectral radius of the round map) for every (η, K) and β; return the largest
    ‖x_R − x∞‖/‖x∞‖ against Prop. 19's x∞ and the largest R used."""
    worst, used = 0.0, 0
    for eta, k in configs:
        xf = local_gd_fixed_point(oracle, local_steps=k, step_size=[eta])[0]
        P = np.mean(
            [np.linalg.matrix_power(np.eye(oracle.dim) - eta * A, k) for A in oracle.hessians],
            axis=0,
        )
        for b in outer_step_sizes:
            rho = float(np.max(np.abs(np.linalg.eigvals((1 - b) * np.eye(oracle.dim) + b * P))))
            R = int(min(max_rounds, np.ceil(np.log(tolerance / 1e3) / np.log(rho))))
            used = max(used, R)
            xr = local_gd_rounds(
                oracle, local_steps=k, rounds=R, step_size=[eta], outer_step_size=b
            )[0, -1]
            worst = max(worst, float(np.linalg.norm(xr - xf) / np.linalg.norm(xf)))
    return worst, used
