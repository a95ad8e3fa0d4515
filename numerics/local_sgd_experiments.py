"""Step-size tuning and rate measurement for the local SGD checks and figures.

The bounds assume a tuned step size, so every measured error is the best over a grid of
step sizes, run on the same draws (``numerics.local_sgd`` runs a whole grid at once).
Grids are geometric and, for the hard instances, centred on the step-size scale of the
mechanism (η₀ = 1/(μ_1KR) for the GLB instances, derived in ``theory.local_sgd``), so that
the grid is the same in rescaled units at every (K, R) and its discretization does not bias
log-log slopes. The chosen step and whether it is interior are always reported.

Monte Carlo noise in a best-step error is measured by a bootstrap over trials that
re-selects the step in every resample (so the selection is part of the noise). A log-log
slope is fitted by weighted least squares with these standard errors (configurations are
independent); its interval is slope ± t·se·max(1, B), with se the propagated Monte Carlo
standard error, t the Student quantile with n_trials − 1 degrees of freedom (the standard
errors are estimated from n_trials trials) and B = √(χ²/(n − 2)) the Birge ratio, which
widens the interval when the scatter about a power law exceeds the noise (misfit). It does
not cover a finite-size bias that bends all points alike (lower-order terms of the bound).
Slopes of noise-free errors get a stated tolerance band instead (``deterministic_slope``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.stats

from numerics.checks.instances import derived_seed
from numerics.local_sgd import Run, StochasticOracle, run_algorithm
from numerics.local_sgd_instances import QuadraticOracle, glb_het, glb_hom
from numerics.stats import DEFAULT_ALPHA, fit_slope
from theory.local_sgd_bounds import term_function
from theory.local_sgd_regimes import thresholds

N_BOOT = 400


def geometric_grid(
    centre: float, ratio: float, below: int, above: int, cap: float | None = None
) -> np.ndarray:
    """centre·ratio^j, j = −below..above, values above ``cap`` replaced by one point at cap."""
    grid = centre * ratio ** np.arange(-below, above + 1, dtype=float)
    if cap is not None:
        grid = np.unique(np.minimum(grid, cap))
    return grid


@dataclass(frozen=True)
class Tuned:
    """Errors over a step-size grid and the best one.

    ``mean``/``standard_error`` (G,) over trials; ``index`` the argmin of the mean; ``best``
    its value; ``bootstrap`` (N_BOOT,) best-over-grid means of trial resamples (empty for a
    deterministic run); ``at_cap`` the chosen step equals an imposed cap.
    """

    algorithm: str
    grid: np.ndarray
    outer: np.ndarray
    mean: np.ndarray
    standard_error: np.ndarray
    index: int
    bootstrap: np.ndarray
    at_cap: bool = False
    n_trials: int = 1

    @property
    def best(self) -> float:
        return float(self.mean[self.index])

    @property
    def step(self) -> float:
        return float(self.grid[self.index])

    @property
    def best_se(self) -> float:
        """Bootstrap standard error of ``best`` (0 when deterministic)."""
        return float(self.bootstrap.std(ddof=1)) if self.bootstrap.size > 1 else 0.0

    @property
    def interior(self) -> bool:
        """The best step is not on an edge of the grid (or sits at an imposed cap)."""
        return self.at_cap or 0 < self.index < self.grid.size - 1

    def describe(self) -> str:
        g = self.grid
        where = "at the cap" if self.at_cap else ("interior" if self.interior else "ON THE EDGE")
        return (
            f"{self.algorithm}: {g.size}-point grid {g[0]:.3g}..{g[-1]:.3g}, "
            f"chosen η={self.step:.3g} ({where})"
        )


def tune(
    run: Run,
    oracle: StochasticOracle,
    *,
    output: str = "final",
    seed: int = 0,
    n_boot: int = N_BOOT,
    cap: float | None = None,
) -> Tuned:
    """Best step of a ``Run`` over its grid, with a bootstrap of the best (η re-selected)."""
    err = run.excess(oracle, output)  # (G, n)
    n = err.shape[1]
    with np.errstate(invalid="ignore"):  # diverged grid points: +inf errors
        mean = err.mean(axis=1)
        se = err.std(axis=1, ddof=1) / np.sqrt(n) if n > 1 else np.zeros_like(mean)
    index = int(np.argmin(mean))
    boot = np.empty(0)
    if n > 1 and np.any(np.nan_to_num(se) > 0):
        rng = np.random.default_rng(derived_seed(seed, "bootstrap", run.experiment))
        finite = np.where(np.isfinite(err), err, np.inf)
        boot = np.empty(n_boot)
        for i in range(0, n_boot, 50):  # bounded memory: 50 resamples at a time
            idx = rng.integers(0, n, size=(min(50, n_boot - i), n))
            boot[i : i + idx.shape[0]] = finite[:, idx].mean(axis=2).min(axis=0)
    at_cap = bool(cap is not None and np.isclose(run.step_size[index], cap, rtol=1e-12))
    return Tuned(
        run.algorithm, run.step_size, run.outer_step_size, mean, se, index, boot, at_cap, n
    )


@dataclass(frozen=True)
class Slope:
    """A log-log slope, its interval and how it was obtained (see module doc)."""

    slope: float
    ci: tuple[float, float]
    regression_ci: tuple[float, float]
    standard_error: float
    birge: float
    n_points: int
    method: str

    def describe(self) -> str:
        r = self.regression_ci
        if self.method == "deterministic":
            return (
                f"slope {self.slope:.4f} over {self.n_points} points (noise-free; OLS "
                f"t-interval [{r[0]:.4f}, {r[1]:.4f}] covers misfit only)"
            )
        return (
            f"weighted slope {self.slope:.3f} over {self.n_points} points, Monte Carlo s.e. "
            f"{self.standard_error:.3f}, Birge ratio {self.birge:.2f}; unweighted OLS t-interval "
            f"[{r[0]:.3f}, {r[1]:.3f}] for comparison"
        )


def log_slope(
    x, tuned: list[Tuned], *, alpha: float = DEFAULT_ALPHA, comparisons: int = 1
) -> Slope:
    """Weighted slope of log(best error) against log x, interval at level 1 − α/comparisons."""
    lx = np.log(np.asarray(x, dtype=float))
    y = np.log([t.best for t in tuned])
    ols = fit_slope(np.exp(lx), np.exp(y), alpha=alpha / comparisons)
    if not all(t.bootstrap.size for t in tuned):
        return deterministic_slope(np.exp(lx), np.exp(y), alpha=alpha, comparisons=comparisons)
    s = np.array([np.log(t.bootstrap).std(ddof=1) for t in tuned])
    w = 1.0 / s**2
    X = np.column_stack([np.ones_like(lx), lx])
    cov = np.linalg.inv(X.T @ (w[:, None] * X))
    coef = cov @ X.T @ (w * y)
    birge = float(np.sqrt(np.sum(w * (y - X @ coef) ** 2) / max(lx.size - 2, 1)))
    se = float(np.sqrt(cov[1, 1]))
    dof = min(t.n_trials for t in tuned) - 1
    half = float(scipy.stats.t.isf(alpha / (2 * comparisons), dof)) * se * max(1.0, birge)
    b = float(coef[1])
    return Slope(b, (b - half, b + half), ols.ci, se, birge, lx.size, "monte carlo")


#: Tolerance band of slopes fitted to deterministic (noise-free) errors: the bounds hold up to
#: constants and logs, and a finite window of K, R or ζ⋆ carries finite-size curvature that a
#: t-interval (which only sees scatter about a power law) does not bound.
DETERMINISTIC_SLOPE_TOLERANCE = 0.05


def deterministic_slope(x, y, *, alpha: float = DEFAULT_ALPHA, comparisons: int = 1) -> Slope:
    """Log-log slope of noise-free data; interval = slope ± max(t half-width, tolerance)."""
    fit = fit_slope(
        np.asarray(x, dtype=float), np.asarray(y, dtype=float), alpha=alpha / comparisons
    )
    half = max(fit.ci[1] - fit.slope, DETERMINISTIC_SLOPE_TOLERANCE)
    return Slope(
        fit.slope,
        (fit.slope - half, fit.slope + half),
        fit.ci,
        0.0,
        0.0,
        fit.n_points,
        "deterministic",
    )


# ---- GLB-hom ----------------------------------------------------------------------------------
#: Local SGD grid on GLB-hom in units of η₀ = 1/(μ_1KR): 2^{3/4}·2^{j/4}, j = −w..w (the
#: best step sat at 2^{3/4}η₀ ≈ 1.68η₀ for K = 2..64, R = 25..800 in calibration).
GLB_HOM_CENTRE = 2**0.75
GLB_RATIO = 2**0.25
#: Minibatch SGD grid: 2^{−j/2}/H, j = 0..4 (cap 1/H, the step limit of its bound).
MINIBATCH_GRID = 2.0 ** (-np.arange(5) / 2)


def glb_hom_point(
    local_steps: int,
    rounds: int,
    *,
    n_machines: int,
    n_trials: int,
    seed: int,
    experiment: str,
    algorithms: tuple[str, ...] = ("local_sgd", "minibatch_sgd"),
    sigma: float = 1.0,
    grid_half_width: int = 3,
) -> dict[str, Tuned]:
    """Best-step final-iterate errors on GLB-hom (H = B = 1) at (K, R), common draws.

    Local SGD (β = 1): η = 2^{3/4}η₀·2^{j/4}, j = −w..w, η₀ = 1/(μ_1KR), capped at 1/H.
    Minibatch SGD: ``MINIBATCH_GRID``/H. The draws are keyed by ``experiment``/K/R, shared
    by the algorithms (common random numbers).
    """
    oracle = glb_hom(n_machines, local_steps, rounds, sigma=sigma)
    eta0 = 1.0 / (oracle.mu1 * local_steps * rounds)
    w = grid_half_width
    grids = {
        "local_sgd": (geometric_grid(GLB_HOM_CENTRE * eta0, GLB_RATIO, w, w, 1.0), 1.0),
        "minibatch_sgd": (MINIBATCH_GRID.copy(), 1.0),
    }
    key = f"{experiment}/K={local_steps}/R={rounds}/sigma={sigma:g}"
    out = {}
    for name in algorithms:
        grid, cap = grids[name]
        run = run_algorithm(
            name,
            oracle,
            local_steps=local_steps,
            rounds=rounds,
            step_size=grid,
            n_trials=n_trials,
            seed=seed,
            experiment=key,
            on_divergence="mark",
        )
        out[name] = tune(run, oracle, seed=seed, cap=cap)
    return out


def powers_of_two(low: int, high: int) -> list[int]:
    """low, 2·low, 4·low, ... ≤ high."""
    out, v = [], int(low)
    while v <= high:
        out.append(v)
        v *= 2
    return out


def machines_for(local_steps: int, rounds: int, per_threshold: float) -> int:
    """M = c·M*, M* = (σ/(HB))^(2/3)(R/K)^(1/3) (H = B = σ = 1) the machine count at which
    σB/√(MKR) equals the iterate-bias term (sympy, ``local_loses_machines``): a fixed c keeps
    the statistical term a fixed share of the measured error at every (K, R)."""
    m_star = term_function(thresholds()["local_loses_machines"].solution)
    return max(
        2, round(per_threshold * float(m_star(H=1.0, B=1.0, sigma=1.0, K=local_steps, R=rounds)))
    )


def glb_hom_lines(p: dict, seed: int, experiment: str) -> dict:
    """The K-line (R = p['k_line_rounds'], K = k_min..k_max) and the R-line (K =
    p['r_line_local_steps'], R = r_min..r_max) on GLB-hom; local SGD everywhere, minibatch
    SGD on the K-line (which crosses K = σ²R/(H²B²)). M = ``machines_for(K, R,
    p['machines_per_threshold'])`` per point. Returns {'k': [...], 'r': [...], 'points':
    {(K, R): {alg: Tuned}}, 'machines': {(K, R): M}}."""
    ks = powers_of_two(p["k_min"], p["k_max"])
    rs = powers_of_two(p["r_min"], p["r_max"])
    common = {
        "n_trials": p["trials"],
        "seed": seed,
        "experiment": experiment,
        "grid_half_width": p["grid_half_width"],
    }
    points: dict[tuple[int, int], dict[str, Tuned]] = {}
    machines: dict[tuple[int, int], int] = {}
    keys = [((K, p["k_line_rounds"]), ("local_sgd", "minibatch_sgd")) for K in ks]
    keys += [((p["r_line_local_steps"], R), ("local_sgd",)) for R in rs]
    for key, algorithms in keys:
        if key not in points:
            machines[key] = machines_for(*key, p["machines_per_threshold"])
            points[key] = glb_hom_point(
                *key, n_machines=machines[key], algorithms=algorithms, **common
            )
    return {"k": ks, "r": rs, "points": points, "machines": machines}


# ---- GLB-het ----------------------------------------------------------------------------------
#: GLB-het grid in units of η₀ = 1/(μ_1KR): 2^{j/8}, j = −24..24, capped below 2/H.
GLB_HET_RATIO = 2**0.125
GLB_HET_HALF_WIDTH = 24
GLB_HET_CAP = 1.99


def glb_het_point(
    local_steps: int, rounds: int, zeta: float, *, equal_hessians: bool = False, n_machines: int = 2
) -> tuple[Tuned, QuadraticOracle]:
    """Best-step final error of local GD (σ = 0, β = 1) on GLB-het; returns (Tuned, oracle)."""
    oracle = glb_het(n_machines, rounds, zeta, equal_hessians=equal_hessians)
    mu1 = float(oracle.hessians[0, 0, 0])
    eta0 = 1.0 / (mu1 * local_steps * rounds)
    grid = geometric_grid(eta0, GLB_HET_RATIO, GLB_HET_HALF_WIDTH, GLB_HET_HALF_WIDTH, GLB_HET_CAP)
    run = run_algorithm(
        "local_sgd",
        oracle,
        local_steps=local_steps,
        rounds=rounds,
        step_size=grid,
        on_divergence="mark",
    )
    return tune(run, oracle, cap=GLB_HET_CAP), oracle
