"""Binary classification data sets and their split across K agents.

Data sets (all return a ``Dataset``: standardized features, labels y ∈ {−1, +1}):

* ``synthetic``: Gaussian features x ~ N(0, I_p), labels from a planted logistic model
  P(y = +1 | x) = σ(signal · x̃ᵀw₀ + b₀) with w₀ uniform on the unit sphere (seeded);
* ``breast_cancer``: scikit-learn's bundled Wisconsin diagnostic data (569 × 30), malignant = −1;
* ``digits``: scikit-learn's bundled 8×8 digits (1797 × 64) as even (−1) against odd (+1);
* ``load_csv``: the user's own CSV file, one header line, numeric feature columns and a target
  column with exactly two distinct values.

Standardization (derived here): every feature column is centred and scaled to unit variance
over the pooled data (population standard deviation); constant columns carry no information
and would divide by zero, so they are dropped and named in ``Dataset.dropped``. The intercept
column of ones is added by ``Dataset.design``.

Splits (``split``), all seeded, return one index array per agent:

* ``iid``: a random partition into K parts of sizes differing by at most one;
* ``label_skew`` with p ∈ [0, 1]: every agent gets the same number n of samples; a fraction p
  of them follows the pooled class proportions π_c, the rest is the agent's "own" class.
  Agents own the classes in proportion to π_c (interleaved, so ring neighbours differ; for
  balanced classes this is class k mod 2). n is the largest size the data allow; samples not
  needed are left out (``Split.unused``). p = 1 is a stratified iid split, p = 0 pure classes;
* ``dirichlet`` with α > 0 (Hsu, Qi & Brown 2019, arXiv 1909.06335): for each class, the shares
  of its samples across the K agents are drawn from Dirichlet(α·1_K); small α concentrates each
  class on few agents, α → ∞ approaches iid. Agent sizes then differ.

An agent with fewer than ``min_samples`` samples is an error naming the agent and the split.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from numerics._validate import positive_float, positive_int
from numerics.errors import InvalidInputError

DATASETS = ("synthetic", "breast_cancer", "digits")
SPLITS = ("iid", "label_skew", "dirichlet")
#: Fewest rows a data set may have (a CSV file with fewer is rejected).
MIN_ROWS = 4
#: Cell texts read as a missing value in a CSV file (compared case-insensitively).
MISSING = ("", "na", "nan", "n/a", "null", "none", "?")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Standardized features (N, p), labels (N,) in {−1, +1}, and where they came from.

    ``classes`` are the original target values mapped to −1 and +1 (in that order);
    ``dropped`` names the constant feature columns removed before standardizing.
    """

    name: str
    features: np.ndarray
    labels: np.ndarray
    feature_names: tuple[str, ...]
    classes: tuple[str, str] = ("-1", "+1")
    dropped: tuple[str, ...] = ()
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    scale: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    @property
    def n_samples(self) -> int:
        """N, the number of rows."""
        return self.features.shape[0]

    @property
    def n_features(self) -> int:
        """p, the number of (kept) feature columns, without the intercept."""
        return self.features.shape[1]

    def design(self, intercept: bool = True) -> np.ndarray:
        """The design matrix: the standardized features, then a column of ones if asked."""
        if not intercept:
            return self.features.copy()
        return np.column_stack([self.features, np.ones(self.n_samples)])

    def class_counts(self) -> dict[int, int]:
        """Number of samples with label −1 and +1."""
        return {c: int(np.sum(self.labels == c)) for c in (-1, 1)}


def standardize(
    name: str,
    raw: np.ndarray,
    labels: np.ndarray,
    feature_names: list[str] | tuple[str, ...],
    classes: tuple[str, str] = ("-1", "+1"),
) -> Dataset:
    """Centre and scale each column to unit (population) variance; drop constant columns."""
    X = np.asarray(raw, dtype=float)
    y = np.asarray(labels, dtype=float)
    names = tuple(str(n) for n in feature_names)
    if X.ndim != 2 or y.shape != (X.shape[0],) or len(names) != X.shape[1]:
        raise InvalidInputError(
            f"{name}: features must be (N, p) with N labels and p names; got {X.shape}, "
            f"{y.shape}, {len(names)} names"
        )
    if not np.all(np.isin(y, (-1.0, 1.0))):
        raise InvalidInputError(f"{name}: labels must be -1 or +1")
    if X.shape[0] < MIN_ROWS:
        raise InvalidInputError(f"{name}: {X.shape[0]} rows; at least {MIN_ROWS} are needed")
    mean = X.mean(axis=0)
    std = X.std(axis=0)
    constant = std <= 1e-12 * np.maximum(1.0, np.abs(mean))
    keep = ~constant
    if not keep.any():
        raise InvalidInputError(f"{name}: every feature column is constant")
    Z = (X[:, keep] - mean[keep]) / std[keep]
    return Dataset(
        name,
        Z,
        y.astype(float),
        tuple(n for n, k in zip(names, keep, strict=True) if k),
        classes,
        tuple(n for n, c in zip(names, constant, strict=True) if c),
        mean[keep],
        std[keep],
    )


# ---- the data sets ------------------------------------------------------------------------
def synthetic(n_samples: int = 1000, dim: int = 10, signal: float = 2.0, seed: int = 0) -> Dataset:
    """Gaussian features and labels from a planted logistic model (see module docstring).

    x_i ~ N(0, I_p), w₀ uniform on the unit sphere, b₀ = 0.5, and y_i = +1 with probability
    σ(signal · x_iᵀw₀ + b₀), else −1; ``signal`` = 0 gives pure-noise labels. The features
    are then standardized like any data set. Seeded by ``seed`` alone.
    """
    n = positive_int(n_samples, "n_samples", minimum=MIN_ROWS)
    p = positive_int(dim, "dim")
    s = float(signal)
    if not math.isfinite(s) or s < 0:
        raise InvalidInputError(f"signal must be a finite number >= 0; got {signal!r}")
    rng = np.random.default_rng(np.random.SeedSequence(positive_int(seed, "seed", minimum=0)))
    X = rng.standard_normal((n, p))
    w0 = rng.standard_normal(p)
    w0 /= np.linalg.norm(w0)
    prob = 1.0 / (1.0 + np.exp(-(s * X @ w0 + 0.5)))
    y = np.where(rng.random(n) < prob, 1.0, -1.0)
    if np.all(y == y[0]):
        raise InvalidInputError(
            f"synthetic data with n_samples={n}, signal={s:g} drew a single class; use more "
            "samples or a smaller signal"
        )
    return standardize("synthetic", X, y, [f"x{j}" for j in range(p)])


def breast_cancer() -> Dataset:
    """scikit-learn's bundled breast-cancer data: malignant (target 0) = −1, benign = +1."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    y = np.where(data.target == 1, 1.0, -1.0)
    classes = (str(data.target_names[0]), str(data.target_names[1]))
    return standardize("breast_cancer", data.data, y, list(data.feature_names), classes)


def digits() -> Dataset:
    """scikit-learn's bundled digits as a binary task: even digits = −1, odd digits = +1.

    The always-blank border pixels are constant and dropped by the standardization.
    """
    from sklearn.datasets import load_digits

    data = load_digits()
    y = np.where(data.target % 2 == 1, 1.0, -1.0)
    names = [f"pixel_{r}_{c}" for r in range(8) for c in range(8)]
    return standardize("digits", data.data, y, names, ("even", "odd"))


def _cell(text: str) -> float | None:
    """A CSV cell as a float, None if missing; raises ValueError if not numeric."""
    t = text.strip()
    if t.lower() in MISSING:
        return None
    value = float(t)
    if not math.isfinite(value):
        raise ValueError(t)
    return value


def load_csv(path: str | Path, target: str) -> Dataset:
    """A binary classification data set from a CSV file with a header line.

    Every column but ``target`` must be numeric with no missing values; ``target`` must take
    exactly two distinct values (numbers or text), mapped to −1 (the smaller, or the first in
    sorted text order) and +1. Errors name the file, the column and the first bad line.
    """
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"data file {str(p)!r} does not exist (or is not a file)")
    try:
        with p.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInputError(f"{str(p)!r} is not a readable CSV text file: {exc}") from None
    rows = [r for r in rows if any(c.strip() for c in r)]  # blank lines carry no data
    if not rows:
        raise InvalidInputError(f"{str(p)!r} is empty; expected a header line and data rows")
    header = [h.strip() for h in rows[0]]
    if len(set(header)) != len(header) or any(not h for h in header):
        raise InvalidInputError(f"{str(p)!r}: column names must be non-empty and distinct")
    if target not in header:
        raise InvalidInputError(
            f"target column {target!r} is not in {str(p)!r}; its columns are: {', '.join(header)}"
        )
    if len(header) < 2:
        raise InvalidInputError(f"{str(p)!r} has no feature column besides {target!r}")
    body = rows[1:]
    if len(body) < MIN_ROWS:
        raise InvalidInputError(
            f"{str(p)!r} has {len(body)} data rows; at least {MIN_ROWS} are needed"
        )
    t_col = header.index(target)
    feat_cols = [j for j in range(len(header)) if j != t_col]
    X = np.empty((len(body), len(feat_cols)))
    targets = []
    for i, row in enumerate(body):
        line = i + 2  # 1-based, after the header
        if len(row) != len(header):
            raise InvalidInputError(
                f"{str(p)!r} line {line}: {len(row)} fields, but the header has {len(header)}"
            )
        t = row[t_col].strip()
        if t.lower() in MISSING:
            raise InvalidInputError(
                f"{str(p)!r}: target column {target!r} has a missing value at line {line}"
            )
        targets.append(t)
        for out_j, j in enumerate(feat_cols):
            try:
                value = _cell(row[j])
            except ValueError:
                raise InvalidInputError(
                    f"{str(p)!r}: column {header[j]!r} has a non-numeric value "
                    f"{row[j].strip()!r} at line {line}"
                ) from None
            if value is None:
                raise InvalidInputError(
                    f"{str(p)!r}: column {header[j]!r} has a missing value at line {line}"
                )
            X[i, out_j] = value
    values = sorted(set(targets), key=_class_order)
    if len(values) != 2:
        shown = ", ".join(repr(v) for v in values[:10]) + (", ..." if len(values) > 10 else "")
        raise InvalidInputError(
            f"target column {target!r} of {str(p)!r} has {len(values)} distinct value(s) "
            f"({shown}); binary logistic regression needs exactly 2"
        )
    y = np.array([-1.0 if t == values[0] else 1.0 for t in targets])
    return standardize(p.name, X, y, [header[j] for j in feat_cols], (values[0], values[1]))


def _class_order(text: str) -> tuple[int, float, str]:
    """Numbers first, in numeric order, then text in lexicographic order."""
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, text)


def load_dataset(
    data: str,
    *,
    target: str = "",
    n_samples: int = 1000,
    dim: int = 10,
    signal: float = 2.0,
    seed: int = 0,
) -> Dataset:
    """A data set by name (``DATASETS``) or a CSV path (needs ``target``)."""
    if data == "synthetic":
        return synthetic(n_samples, dim, signal, seed)
    if data == "breast_cancer":
        return breast_cancer()
    if data == "digits":
        return digits()
    if data.lower().endswith(".csv") or Path(data).exists():
        if not target:
            raise InvalidInputError(
                f"data={data!r} is a CSV file: name its label column with target=COLUMN"
            )
        return load_csv(data, target)
    raise InvalidInputError(
        f"data={data!r} is not known; allowed: {', '.join(DATASETS)} or a path to a .csv file"
    )


# ---- splits -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Split:
    """Index arrays of the samples of each agent, and a description of how they were made."""

    parts: tuple[np.ndarray, ...]
    scheme: str
    description: str
    unused: int = 0

    @property
    def n_agents(self) -> int:
        """K."""
        return len(self.parts)

    @property
    def sizes(self) -> np.ndarray:
        """N_k, the number of samples of each agent."""
        return np.array([len(p) for p in self.parts])


def _interleaved_owners(shares: np.ndarray, n_agents: int) -> np.ndarray:
    """Own class (0 or 1) of each agent: counts ∝ shares (largest remainder), interleaved."""
    exact = shares * n_agents
    counts = np.floor(exact).astype(int)
    for c in np.argsort(-(exact - counts))[: n_agents - counts.sum()]:
        counts[c] += 1
    owners, given = np.empty(n_agents, dtype=int), np.zeros(2)
    for k in range(n_agents):
        deficit = counts * (k + 1) / n_agents - given
        c = int(np.argmax(deficit))  # ties go to class 0
        owners[k] = c
        given[c] += 1
    return owners


def _label_skew_counts(
    class_sizes: np.ndarray, n_agents: int, skew: float
) -> tuple[np.ndarray, np.ndarray]:
    """(owners, counts (K, 2)) for the largest common agent size the classes allow."""
    shares = class_sizes / class_sizes.sum()
    owners = _interleaved_owners(shares, n_agents)

    def counts_for(n: int) -> np.ndarray:
        out = np.empty((n_agents, 2), dtype=int)
        for k in range(n_agents):
            want = skew * n * shares
            want[owners[k]] += (1 - skew) * n
            base = np.floor(want).astype(int)
            base[np.argmax(want - base)] += n - base.sum()
            out[k] = base
        return out

    n = int(class_sizes.sum() // n_agents)
    while n > 0 and np.any(counts_for(n).sum(axis=0) > class_sizes):
        n -= 1
    return owners, counts_for(n)


def split(
    labels: np.ndarray,
    n_agents: int,
    scheme: str = "iid",
    *,
    skew: float = 0.0,
    alpha: float = 1.0,
    seed: int = 0,
    min_samples: int = 2,
) -> Split:
    """Split samples with labels in {−1, +1} across ``n_agents`` agents (module docstring).

    ``skew`` is p of ``label_skew`` (the pooled-mixture fraction), ``alpha`` the Dirichlet
    concentration. Raises ``InvalidInputError`` if an agent gets fewer than ``min_samples``.
    """
    y = np.asarray(labels)
    K = positive_int(n_agents, "n_agents")
    min_samples = positive_int(min_samples, "min_samples")
    rng = np.random.default_rng(np.random.SeedSequence(positive_int(seed, "seed", minimum=0)))
    by_class = [np.flatnonzero(y == c) for c in (-1, 1)]
    unused = 0
    if scheme == "iid":
        parts = np.array_split(rng.permutation(y.size), K)
        desc = f"iid (seed={seed})"
    elif scheme == "label_skew":
        p = float(skew)
        if not 0.0 <= p <= 1.0:
            raise InvalidInputError(f"skew (label-skew p) must lie in [0, 1]; got {skew!r}")
        owners, counts = _label_skew_counts(np.array([len(b) for b in by_class]), K, p)
        pieces: list[list[np.ndarray]] = [[] for _ in range(K)]
        for c, idx in enumerate(by_class):
            shuffled = rng.permutation(idx)
            bounds = np.concatenate([[0], np.cumsum(counts[:, c])])
            for k in range(K):
                pieces[k].append(shuffled[bounds[k] : bounds[k + 1]])
        parts = [np.sort(np.concatenate(pc)) for pc in pieces]
        unused = int(y.size - counts.sum())
        desc = (
            f"label_skew (p={p:g}, seed={seed}; own class of agent k: "
            f"{''.join('-+'[o] for o in owners)})"
        )
    elif scheme == "dirichlet":
        a = positive_float(alpha, "alpha")
        pieces = [[] for _ in range(K)]
        for idx in by_class:
            shares = rng.dirichlet(np.full(K, a))
            cuts = np.round(np.cumsum(shares)[:-1] * idx.size).astype(int)
            for k, chunk in enumerate(np.split(rng.permutation(idx), cuts)):
                pieces[k].append(chunk)
        parts = [np.sort(np.concatenate(pc)) for pc in pieces]
        desc = f"dirichlet (alpha={a:g}, seed={seed})"
    else:
        raise InvalidInputError(f"split={scheme!r} is not known; allowed: {', '.join(SPLITS)}")
    parts = tuple(np.asarray(p, dtype=np.int64) for p in parts)
    for k, part in enumerate(parts):
        if part.size < min_samples:
            raise InvalidInputError(
                f"split {desc} gives agent {k} {part.size} sample(s); each agent needs at "
                f"least {min_samples} (use fewer agents, more data"
                + (", or a larger alpha)" if scheme == "dirichlet" else ")")
            )
    return Split(parts, scheme, desc, unused)
