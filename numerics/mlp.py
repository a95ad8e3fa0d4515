"""A one-hidden-layer binary classifier in numpy, vectorized over a batch of parameter vectors.

Model (derived here; the standard two-layer network). Input x ∈ ℝᵖ, h hidden units with a
smooth activation φ (``tanh`` or ``softplus``, so the Hessian exists everywhere), one output:

    z = W₁x + b₁ ∈ ℝʰ,   u = φ(z),   f(x; θ) = w₂ᵀu + b₂,

with labels y ∈ {−1, +1} and the logistic loss ℓ(y f) = log(1 + e^{−y f}). The parameters are
one flat vector θ = (vec W₁ (row-major h×p), b₁, w₂, b₂) of length d = hp + 2h + 1.
The objective on samples with weights c_i (Σ c_i = 1) is

    J(θ) = Σ_i c_i ℓ(y_i f(x_i; θ)) + (ρ/2)‖θ‖²,

the full-data weights being ``weights`` (default 1/N; ``for_agents`` uses c_i = 1/(K N_k), so
that J = (1/K) Σ_k J_k, the network objective of note §2.1 [R]); a minibatch uses c_i = 1/B.

Derivatives (derived here; backpropagation, with ℓ'(f) = −y σ(−y f), ℓ''(f) = σ(y f) σ(−y f)):

    g_f = c ℓ'(f),  ∇w₂ = Σ g_f u,  ∇b₂ = Σ g_f,  δ = g_f w₂ ⊙ φ'(z),  ∇W₁ = Σ δ xᵀ,  ∇b₁ = Σ δ.

Hessian-vector products are exact, by Pearlmutter's R-operator (Pearlmutter 1994, "Fast exact
multiplication by the Hessian", Neural Computation 6(1)): for a direction v = (V₁, c₁, v₂, c₂),
R{·} = d/dt (·)(θ + t v) at t = 0, forward then backward,

    R{z} = V₁x + c₁,   R{u} = φ'(z) R{z},   R{f} = w₂ᵀR{u} + v₂ᵀu + c₂,   R{g_f} = c ℓ''(f) R{f},
    R{δ} = R{g_f} w₂ ⊙ φ' + g_f v₂ ⊙ φ' + g_f w₂ ⊙ φ'' ⊙ R{z},
    H v = (Σ R{δ} xᵀ, Σ R{δ}, Σ (R{g_f} u + g_f R{u}), Σ R{g_f}) + ρ v.

Batching. Every method takes θ of shape (..., d) — e.g. (strategies, seeds, agents, d) — and
evaluates all of them in one array operation. ``rows`` selects the samples: ``None`` is the
full data (shared by every θ); otherwise an integer array of shape (..., B) whose leading
shape broadcasts with θ's gives each parameter vector its own minibatch (weights 1/B).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.linalg.blas import daxpy
from scipy.special import expit, log_expit

from numerics._validate import as_float_array, positive_int
from numerics.errors import InvalidInputError

ACTIVATIONS = ("tanh", "softplus")


def _activation(
    name: str, z: np.ndarray, second: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(φ(z), φ'(z), φ''(z)) for tanh (1 − u², −2u(1 − u²)) or softplus (σ(z), σ(z)σ(−z));
    φ'' only if ``second``."""
    if name == "tanh":
        u = np.tanh(z)
        du = 1.0 - u * u
        return u, du, (-2.0 * u * du if second else None)
    s = expit(z)
    return np.logaddexp(0.0, z), s, (s * (1.0 - s) if second else None)


@dataclass(frozen=True, eq=False)
class MLP:
    """Training data (N, p), labels (N,) in {−1, +1}, hidden width h, activation, ρ ≥ 0.

    ``weights`` (N,) are the full-data sample weights c_i (non-negative, summing to one;
    default uniform). Construct with ``MLP.create`` (validated) or ``MLP.for_agents``.
    """

    features: np.ndarray
    labels: np.ndarray
    hidden: int
    regularization: float
    activation: str = "tanh"
    weights: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    # ---- construction ------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        features: np.ndarray,
        labels: np.ndarray,
        hidden: int,
        regularization: float = 0.0,
        activation: str = "tanh",
        weights: np.ndarray | None = None,
    ) -> MLP:
        """Validated constructor; errors name the parameter, the value and what is allowed."""
        X = as_float_array(features, "features", 2)
        y = as_float_array(labels, "labels", 1)
        if y.shape != (X.shape[0],):
            raise InvalidInputError(
                f"labels must have shape ({X.shape[0]},) to match features; got {y.shape}"
            )
        if not np.all(np.isin(y, (-1.0, 1.0))):
            raise InvalidInputError("labels must be -1 or +1; got other values")
        h = positive_int(hidden, "hidden")
        try:
            rho = float(regularization)
        except (TypeError, ValueError):
            raise InvalidInputError(
                f"regularization must be a finite number >= 0; got {regularization!r}"
            ) from None
        if not np.isfinite(rho) or rho < 0:
            raise InvalidInputError(
                f"regularization must be a finite number >= 0; got {regularization!r}"
            )
        if activation not in ACTIVATIONS:
            raise InvalidInputError(
                f"activation={activation!r} is not known; allowed: {', '.join(ACTIVATIONS)}"
            )
        if weights is None:
            c = np.full(X.shape[0], 1.0 / X.shape[0])
        else:
            c = as_float_array(weights, "weights", 1)
            if c.shape != y.shape or np.any(c < 0) or not np.isclose(c.sum(), 1.0, atol=1e-12):
                raise InvalidInputError(
                    f"weights must be {y.shape[0]} non-negative numbers summing to 1; got shape "
                    f"{c.shape}, sum {c.sum():.6g}"
                )
        return cls(X, y, h, rho, activation, c)

    @classmethod
    def for_agents(
        cls,
        features: np.ndarray,
        labels: np.ndarray,
        parts: tuple[np.ndarray, ...] | list[np.ndarray],
        hidden: int,
        regularization: float = 0.0,
        activation: str = "tanh",
    ) -> tuple[MLP, np.ndarray, np.ndarray]:
        """The network objective J = (1/K) Σ_k J_k on the union of the agents' samples.

        Returns (mlp, offsets (K+1,), sizes (K,)): agent k's samples are rows
        offsets[k] ... offsets[k+1]−1 of ``mlp.features``, with weights 1/(K N_k).
        """
        if len(parts) < 1:
            raise InvalidInputError("parts must hold at least one agent's sample indices")
        sizes = np.array([len(p) for p in parts], dtype=np.int64)
        if np.any(sizes < 1):
            k = int(np.flatnonzero(sizes < 1)[0])
            raise InvalidInputError(f"parts[{k}] is empty; every agent needs >= 1 sample")
        order = np.concatenate([np.asarray(p, dtype=np.int64) for p in parts])
        X = np.asarray(features, dtype=float)[order]
        y = np.asarray(labels, dtype=float)[order]
        w = np.repeat(1.0 / (len(parts) * sizes), sizes)
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        return cls.create(X, y, hidden, regularization, activation, w), offsets, sizes

    # ---- layout ------------------------------------------------------------------------
    @property
    def n_features(self) -> int:
        """p."""
        return self.features.shape[1]

    @property
    def n_samples(self) -> int:
        """N."""
        return self.features.shape[0]

    @property
    def dim(self) -> int:
        """d = h p + 2 h + 1."""
        return self.hidden * (self.n_features + 2) + 1

    def unpack(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(W₁ (..., h, p), b₁ (..., h), w₂ (..., h), b₂ (...)) as views of θ (..., d)."""
        h, p = self.hidden, self.n_features
        lead = theta.shape[:-1]
        W1 = theta[..., : h * p].reshape(*lead, h, p)
        b1 = theta[..., h * p : h * p + h]
        w2 = theta[..., h * p + h : h * p + 2 * h]
        return W1, b1, w2, theta[..., -1]

    def pack(self, W1: np.ndarray, b1: np.ndarray, w2: np.ndarray, b2: np.ndarray) -> np.ndarray:
        """The inverse of ``unpack``."""
        lead = np.shape(b2)
        return np.concatenate(
            [np.reshape(W1, (*lead, -1)), b1, w2, np.asarray(b2)[..., None]], axis=-1
        )

    def initial(self, rng: np.random.Generator, shape: tuple[int, ...] = ()) -> np.ndarray:
        """Random parameters (*shape, d): W₁ ~ N(0, 1/p), w₂ ~ N(0, 1/h), biases 0 (LeCun).

        Draws ``standard_normal((*shape, h, p))`` then ``standard_normal((*shape, h))``.
        """
        h, p = self.hidden, self.n_features
        W1 = rng.standard_normal((*shape, h, p)) / np.sqrt(p)
        w2 = rng.standard_normal((*shape, h)) / np.sqrt(h)
        zeros = np.zeros((*shape, h))
        return self.pack(W1, zeros, w2, np.zeros(shape))

    # ---- validation of the arguments -----------------------------------------------------
    def _theta(self, theta: np.ndarray, name: str = "theta") -> np.ndarray:
        arr = np.asarray(theta, dtype=float)
        if arr.ndim < 1 or arr.shape[-1] != self.dim:
            raise InvalidInputError(
                f"{name} must have shape (..., {self.dim}) (d = h p + 2h + 1 with h = "
                f"{self.hidden}, p = {self.n_features}); got {arr.shape}"
            )
        return arr

    def _data(self, rows: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(X (..., n, p), y (..., n), c (..., n)) of the full data or of minibatch rows."""
        if rows is None:
            return self.features, self.labels, self.weights
        r = np.asarray(rows)
        if not np.issubdtype(r.dtype, np.integer) or r.ndim < 1 or r.shape[-1] < 1:
            raise InvalidInputError(
                f"rows must be an integer array of shape (..., batch_size >= 1); got "
                f"dtype {r.dtype}, shape {r.shape}"
            )
        if r.size and (r.min() < 0 or r.max() >= self.n_samples):
            raise InvalidInputError(
                f"rows must lie in [0, {self.n_samples - 1}]; got values in [{r.min()}, {r.max()}]"
            )
        c = np.full(r.shape, 1.0 / r.shape[-1])
        return self.features[r], self.labels[r], c

    # ---- forward pass --------------------------------------------------------------------
    def _forward(self, theta: np.ndarray, X: np.ndarray, second: bool = True):
        W1, b1, w2, b2 = self.unpack(theta)
        z = X @ np.swapaxes(W1, -1, -2)
        z += b1[..., None, :]
        u, du, ddu = _activation(self.activation, z, second)
        f = (u @ w2[..., :, None])[..., 0] + b2[..., None]
        return z, u, du, ddu, f

    def outputs(self, theta: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        """f(x; θ) for every θ (..., d) and every row of ``features`` (default the training
        data): shape (..., n)."""
        theta = self._theta(theta)
        X = self.features if features is None else as_float_array(features, "features", 2)
        if X.shape[1] != self.n_features:
            raise InvalidInputError(
                f"features must have {self.n_features} columns; got {X.shape[1]}"
            )
        return self._forward(theta, X)[-1]

    def accuracy(self, theta: np.ndarray, features: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Fraction of rows with sign f(x; θ) = y (f = 0 counts as wrong), shape (...)."""
        y = as_float_array(labels, "labels", 1)
        f = self.outputs(theta, features)
        return np.mean(f * y > 0, axis=-1)

    # ---- loss and derivatives --------------------------------------------------------------
    def value(self, theta: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """J(θ) (full data) or the minibatch loss, shape (...)."""
        theta = self._theta(theta)
        X, y, c = self._data(rows)
        f = self._forward(theta, X)[-1]
        data = -np.sum(c * log_expit(y * f), axis=-1)
        return data + 0.5 * self.regularization * np.sum(theta * theta, axis=-1)

    def _backward(self, theta, X, u, du, gf):
        """∇ from g_f (..., n): (∇W₁, ∇b₁, ∇w₂, ∇b₂) packed, without the regularizer."""
        _, _, w2, _ = self.unpack(theta)
        gW2 = (gf[..., None, :] @ u)[..., 0, :]
        delta = gf[..., None] * w2[..., None, :] * du
        gW1 = np.swapaxes(delta, -1, -2) @ X
        return self.pack(gW1, delta.sum(axis=-2), gW2, gf.sum(axis=-1))

    def value_and_gradient(
        self, theta: np.ndarray, rows: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(J(θ), ∇J(θ)) of shapes (...) and (..., d)."""
        theta = self._theta(theta)
        X, y, c = self._data(rows)
        _, u, du, _, f = self._forward(theta, X, second=False)
        m = y * f
        value = -np.sum(c * log_expit(m), axis=-1)
        value = value + 0.5 * self.regularization * np.sum(theta * theta, axis=-1)
        gf = -c * y * expit(-m)
        grad = self._backward(theta, X, u, du, gf)
        return value, grad + self.regularization * theta

    def gradient(self, theta: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """∇J(θ) (full data) or the minibatch gradient, shape (..., d) (no loss value)."""
        theta = self._theta(theta)
        X, y, c = self._data(rows)
        _, u, du, _, f = self._forward(theta, X, second=False)
        grad = self._backward(theta, X, u, du, -c * y * expit(-y * f))
        grad += self.regularization * theta
        return grad

    def per_sample_gradients(self, theta: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """∇_θ [ℓ(y_i f(x_i; θ)) + (ρ/2)‖θ‖²] for every selected sample, shape (..., n, d).

        Their c-weighted sum is ``gradient`` (c_i = 1/B for a minibatch).
        """
        theta = self._theta(theta)
        X, y, _ = self._data(rows)
        _, u, du, _, f = self._forward(theta, X, second=False)
        gf = -y * expit(-y * f)  # (..., n)
        _, _, w2, _ = self.unpack(theta)
        delta = gf[..., None] * w2[..., None, :] * du  # (..., n, h)
        lead = np.broadcast_shapes(delta.shape[:-1], X.shape[:-1])
        gW1 = delta[..., :, None] * X[..., None, :]  # (..., n, h, p)
        out = np.concatenate(
            [
                gW1.reshape(*lead, -1),
                delta,
                np.broadcast_to(gf[..., None] * u, (*lead, self.hidden)),
                np.broadcast_to(gf[..., None], (*lead, 1)),
            ],
            axis=-1,
        )
        return out + self.regularization * theta[..., None, :]

    def hvp(
        self, theta: np.ndarray, vector: np.ndarray, rows: np.ndarray | None = None
    ) -> np.ndarray:
        """∇²J(θ) v, exact (R-operator, module docstring); θ and v broadcast, shape (..., d).

        θ of shape (n, 1, d) with v of shape (1, P, d) gives P products at each of n points
        for the cost of n forward passes and n·P R-passes.
        """
        theta = self._theta(theta)
        v = self._theta(vector, "vector")
        np.broadcast_shapes(theta.shape[:-1], v.shape[:-1])  # raises if incompatible
        X, y, c = self._data(rows)
        # the forward pass runs at θ's own shape: probes sharing a θ (axes of size 1) share it
        _, u, du, ddu, f = self._forward(theta, X)
        _, _, w2, _ = self.unpack(theta)
        V1, c1, v2, c2 = self.unpack(v)
        Rz = X @ np.swapaxes(V1, -1, -2) + c1[..., None, :]
        Ru = du * Rz
        Rf = (Ru @ w2[..., :, None])[..., 0] + (u @ v2[..., :, None])[..., 0] + c2[..., None]
        m = y * f
        gf = -c * y * expit(-m)
        Rgf = c * expit(m) * expit(-m) * Rf
        Rdelta = (
            Rgf[..., None] * w2[..., None, :] * du
            + gf[..., None] * v2[..., None, :] * du
            + gf[..., None] * w2[..., None, :] * ddu * Rz
        )
        RgW1 = np.swapaxes(Rdelta, -1, -2) @ X
        RgW2 = (Rgf[..., None, :] @ u)[..., 0, :] + (gf[..., None, :] @ Ru)[..., 0, :]
        out = self.pack(RgW1, Rdelta.sum(axis=-2), RgW2, Rgf.sum(axis=-1))
        return out + self.regularization * v

    def hessian(self, theta: np.ndarray) -> np.ndarray:
        """The full Hessian (d, d) at one θ (d,), column by column from ``hvp`` (small d only)."""
        theta = self._theta(theta)
        if theta.ndim != 1:
            raise InvalidInputError(
                f"hessian takes one θ of shape ({self.dim},); got {theta.shape}"
            )
        H = self.hvp(theta[None, :], np.eye(self.dim))
        return 0.5 * (H + H.T)


class GradientWorkspace:
    """Minibatch gradients of a fixed batch of parameter vectors into preallocated buffers.

    The same computation as ``MLP.gradient(theta, rows)`` for θ of shape ``lead + (d,)`` and
    rows of shape ``rows_lead + (B,)`` (broadcasting with ``lead``), but every intermediate
    array is allocated once: in a long training loop, fresh multi-hundred-kilobyte temporaries
    cost more (page faults) than the arithmetic. Tested equal to ``MLP.gradient``.
    """

    def __init__(self, mlp: MLP, lead: tuple[int, ...], rows_lead: tuple[int, ...], batch: int):
        self.mlp = mlp
        B, h, p = positive_int(batch, "batch_size"), mlp.hidden, mlp.n_features
        full = np.broadcast_shapes(tuple(lead), tuple(rows_lead))
        if full != tuple(lead):
            raise InvalidInputError(
                f"rows of leading shape {rows_lead} must broadcast to theta's {lead}"
            )
        self.lead, self.rows_lead, self.batch = tuple(lead), tuple(rows_lead), B
        self.X = np.empty((*rows_lead, B, p))
        self.coef = np.empty((*rows_lead, B))
        self.y = np.empty((*rows_lead, B))
        self.z = np.empty((*lead, B, h))
        self.u = np.empty((*lead, B, h))
        self.f = np.empty((*lead, B))
        self.out = np.empty((*lead, mlp.dim))
        if not np.shares_memory(mlp.unpack(self.out)[0], self.out):  # pragma: no cover
            raise RuntimeError("internal: the W1 block of the output buffer is not a view")

    def gradient(self, theta: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """∇ of the minibatch losses at θ (lead + (d,), C-contiguous); returns a buffer that
        the next call overwrites."""
        mlp = self.mlp
        if theta.shape != (*self.lead, mlp.dim) or not theta.flags.c_contiguous:
            raise InvalidInputError(
                f"theta must be a C-contiguous array of shape {(*self.lead, mlp.dim)}; got "
                f"{theta.shape}"
            )
        r = np.asarray(rows)
        if r.shape != (*self.rows_lead, self.batch):
            raise InvalidInputError(
                f"rows must have shape {(*self.rows_lead, self.batch)}; got {r.shape}"
            )
        W1, b1, w2, b2 = mlp.unpack(theta)
        out = self.out
        oW1, ob1, ow2, ob2 = mlp.unpack(out)
        X, z, u, f = self.X, self.z, self.u, self.f
        np.take(mlp.features, r, axis=0, out=X)
        np.take(mlp.labels, r, out=self.y)
        np.multiply(self.y, -1.0 / self.batch, out=self.coef)  # c·(−y) with c = 1/B
        np.matmul(X, np.swapaxes(W1, -1, -2), out=z)
        z += b1[..., None, :]
        if mlp.activation == "tanh":
            np.tanh(z, out=u)
            np.multiply(u, u, out=z)
            np.subtract(1.0, z, out=z)  # z ← φ'(z)
        else:
            np.logaddexp(0.0, z, out=u)
            expit(z, out=z)
        np.matmul(u, w2[..., :, None], out=f[..., None])
        f += b2[..., None]
        f *= self.y
        np.negative(f, out=f)
        expit(f, out=f)
        f *= self.coef  # f ← g_f = −c y σ(−y f)
        np.matmul(f[..., None, :], u, out=ow2[..., None, :])
        np.sum(f, axis=-1, out=ob2)
        z *= f[..., None]
        z *= w2[..., None, :]  # z ← δ
        np.sum(z, axis=-2, out=ob1)
        np.matmul(np.swapaxes(z, -1, -2), X, out=oW1)
        if mlp.regularization:
            daxpy(theta.reshape(-1), out.reshape(-1), a=mlp.regularization)
        return out
