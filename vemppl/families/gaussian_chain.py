"""A chain of scalar Gaussians with first-order Markov dependence, as one block.

``q(x_0, …, x_{T−1}) ∝ exp(Σ_t h_t x_t + Σ_t η_t x_t² + Σ_t c_t x_t x_{t+1})``: a Gaussian
whose precision matrix ``J`` is tridiagonal, ``J_tt = −2η_t`` and ``J_{t,t+1} = −c_t``,
with linear term ``h`` (the information form of a linear-Gaussian state-space posterior).

* sufficient statistics ``T(x) = (x_t)_t, (x_t²)_t, (x_t x_{t+1})_t``, named ``mean``,
  ``sq`` and ``cross`` (shapes ``[..., T]``, ``[..., T]``, ``[..., T−1]``);
* natural parameters ``η = (h, η, c)`` in the same fields;
* base measure ``h(x) = (2π)^(−T/2)``, so that
  ``A(η) = ½ hᵀ J⁻¹ h − ½ log |J|``, computed by the information-form Kalman filter:
  Gaussian elimination of ``x_0, x_1, …`` in turn (one ``lax.scan``),

      J̃_0 = J_00,   h̃_0 = h_0,
      J̃_t = J_tt − J_{t−1,t}² / J̃_{t−1},   h̃_t = h_t − J_{t−1,t} h̃_{t−1} / J̃_{t−1},
      A = Σ_t ½ h̃_t² / J̃_t − ½ log J̃_t;

* mean parameters ``μ = ∇A = (E[x_t], E[x_t²], E[x_t x_{t+1}])``: the smoothed means,
  second moments and lag-one cross moments.  ``jax.grad`` of the filter is the
  Rauch–Tung–Striebel smoother, as forward–backward is the gradient of the forward
  algorithm for the discrete chain (families/markov_chain.py; Bishop, PRML §13.3;
  Beal 2003, ch. 5; GUIDE §2, "Structured blocks");
* entropy ``½ T (1 + log 2π) − ½ log |J|``, with ``log |J| = Σ_t log J̃_t`` from the pivots
  alone: ``A − ⟨η, μ⟩ − E[log h]`` cancels terms of size ``hᵀJ⁻¹h``, and at a precision of
  1e20 (an observation precision of a state-space model) it was 92 nats off.

Leading axes are independent chains (one per sequence ``x[s, t]``).  :class:`MvGaussianChain`
is the same over vectors (block-tridiagonal precision, Cholesky solves in the filter).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpyro.distributions as dist

from .base import ArgSpec, ExpFamily

# A Python float, not jnp.log at import: an eager op there compiled a program of its own in
# every process that imports the families (issue #21); the same double either way.
_LOG_2PI = math.log(2.0 * math.pi)


class GaussianChainStats(NamedTuple):
    mean: jnp.ndarray  # E[x_t], [..., T]
    sq: jnp.ndarray  # E[x_t²], [..., T]
    cross: jnp.ndarray  # E[x_t x_{t+1}], [..., T-1]


class GaussianChain(ExpFamily):
    name = "GaussianChain"
    structured = True
    Stats = GaussianChainStats
    stat_ranks = (1, 1, 1)  # the chain's time axis is part of the event
    support = "real"
    event_rank = 1
    args = ArgSpec(positional=(), groups=())
    #: The statistic holding E[x_t x_{t+1}] along the last axis: an element x[.., t] read
    #: beside x[.., t ± 1] in one factor reads it (elj/lagged.py).
    lag_stat = "cross"

    @classmethod
    def log_normalizer(cls, eta):
        return information_filter(eta.mean, -2.0 * eta.sq, -eta.cross)[0]

    @classmethod
    def entropy(cls, eta, mu=None):
        """½ T (1 + log 2π) − ½ Σ_t log J̃_t, from η alone (the module docstring says why)."""
        pivots = _pivots(-2.0 * eta.sq, -eta.cross)
        return 0.5 * eta.mean.shape[-1] * (1.0 + _LOG_2PI) - 0.5 * jnp.sum(jnp.log(pivots), axis=-1)

    @classmethod
    def expected_log_base_measure(cls, eta):
        return -0.5 * _LOG_2PI * eta.mean.shape[-1] * jnp.ones(eta.mean.shape[:-1])

    @classmethod
    def log_base_measure(cls, x):
        x = jnp.asarray(x, dtype=float)
        return -0.5 * _LOG_2PI * x.shape[-1] * jnp.ones(x.shape[:-1])

    @classmethod
    def stats(cls, x):
        x = jnp.asarray(x, dtype=float)
        return GaussianChainStats(x, x**2, x[..., :-1] * x[..., 1:])

    @classmethod
    def zero_stats(cls, shape, events=None):
        """Zero statistics for chains of ``shape`` ``[..., T]`` (the prior's gradient is taken there)."""
        return GaussianChainStats(jnp.zeros(shape), jnp.zeros(shape), jnp.zeros(shape[:-1] + (max(shape[-1] - 1, 0),)))

    @classmethod
    def natural_from_mean(cls, mu):
        """The Gauss–Markov chain with these marginals and lag-one covariances: its precision
        is the sum of the inverse 2×2 covariances of neighbouring pairs less the inverse
        variance of each interior step (the junction-tree formula; Wainwright & Jordan 2008,
        §4.1), and ``h = J E[x]``."""
        m = mu.mean
        v = mu.sq - m**2
        c = mu.cross - m[..., :-1] * m[..., 1:]
        det = v[..., :-1] * v[..., 1:] - c**2
        left = jnp.concatenate([v[..., 1:] / det, jnp.zeros_like(v[..., :1])], axis=-1)  # pair (t, t+1), at t
        right = jnp.concatenate([jnp.zeros_like(v[..., :1]), v[..., :-1] / det], axis=-1)  # pair (t−1, t), at t
        pairs = jnp.concatenate([jnp.zeros_like(v[..., :1]), jnp.ones_like(c), jnp.zeros_like(v[..., :1])], axis=-1)
        degree = pairs[..., :-1] + pairs[..., 1:]
        diag = left + right - (degree - 1.0) / v
        off = -c / det  # J_{t,t+1}
        h = diag * m
        h = h.at[..., :-1].add(off * m[..., 1:])
        h = h.at[..., 1:].add(off * m[..., :-1])
        return GaussianChainStats(h, -0.5 * diag, -off)

    @classmethod
    def mode(cls, eta):
        return cls.expected_stats(eta).mean

    @classmethod
    def params_from_natural(cls, eta):
        """Each step's marginal (the joint has no NumPyro class): its mean and scale.  The
        variance is the diagonal of J⁻¹ from the two eliminations (``marginal_variances``), not
        E[x²] − E[x]², which loses it where it is below 1e-16 of E[x]² (an observation
        precision of 1e16: a nan scale and an internal error in ``predict``)."""
        mu = cls.expected_stats(eta)
        return {"loc": mu.mean, "scale": jnp.sqrt(marginal_variances(-2.0 * eta.sq, -eta.cross))}

    @classmethod
    def to_numpyro(cls, eta):
        """The per-step marginals q(x_t), batched over the chain."""
        p = cls.params_from_natural(eta)
        return dist.Normal(p["loc"], p["scale"])


def _pivots(d, o):
    """The pivots D_t of eliminating x_0, x_1, … from the tridiagonal J (diagonal ``d``
    [..., T], off-diagonal ``o`` [..., T−1]); |J| = Π_t D_t."""
    def step(prev, x):
        dt, ot = x
        piv = dt - ot**2 / prev
        return piv, piv
    first = d[..., 0]
    _, rest = jax.lax.scan(step, first, (jnp.moveaxis(d[..., 1:], -1, 0), jnp.moveaxis(o, -1, 0)))
    return jnp.concatenate([first[..., None], jnp.moveaxis(rest, 0, -1)], axis=-1)


def marginal_variances(diag, off):
    """diag(J⁻¹) of the tridiagonal J (diagonal ``diag`` [..., T], off-diagonal ``off``
    [..., T−1]): with D_t the pivots of eliminating x_0, x_1, … (forward) and E_t those of
    eliminating x_{T−1}, x_{T−2}, … (backward), 1 / (J⁻¹)_tt = D_t + E_t − J_tt, a sum of terms
    of J's own scale (no difference of second moments)."""
    fwd = _pivots(diag, off)
    bwd = jnp.flip(_pivots(jnp.flip(diag, -1), jnp.flip(off, -1)), -1)
    return 1.0 / (fwd + bwd - diag)


def information_filter(h, diag, off):
    """(A, J̃, h̃) for the Gaussian ∝ exp(hᵀx − ½xᵀJx) with tridiagonal J: diagonal ``diag``
    [..., T], off-diagonal ``off`` [..., T−1] (``J_{t,t+1}``); J̃, h̃ [..., T] are the
    filtered information of each step given the steps before it."""

    def step(carry, inputs):
        h_prev, j_prev = carry
        h_t, j_t, o = inputs
        j_new = j_t - o**2 / j_prev
        h_new = h_t - o * h_prev / j_prev
        return (h_new, j_new), (h_new, j_new)

    first = (h[..., 0], diag[..., 0])
    inputs = tuple(jnp.moveaxis(a, -1, 0) for a in (h[..., 1:], diag[..., 1:], off))
    _, (hs, js) = jax.lax.scan(step, first, inputs)
    hs = jnp.concatenate([first[0][None], hs], axis=0)
    js = jnp.concatenate([first[1][None], js], axis=0)
    log_z = jnp.sum(0.5 * hs**2 / js - 0.5 * jnp.log(js), axis=0)
    return log_z, jnp.moveaxis(js, 0, -1), jnp.moveaxis(hs, 0, -1)





class MvGaussianChainStats(NamedTuple):
    mean: jnp.ndarray  # E[x_t], [..., T, D]
    outer: jnp.ndarray  # E[x_t x_tᵀ], [..., T, D, D]
    cross: jnp.ndarray  # E[x_t x_{t+1}ᵀ], [..., T-1, D, D]


class MvGaussianChain(ExpFamily):
    """The same chain over vectors ``x_t ∈ R^D``: ``q ∝ exp(Σ_t h_tᵀx_t + tr(η_tᵀ x_t x_tᵀ)
    + Σ_t x_tᵀ C_t x_{t+1})``, a Gaussian with block-tridiagonal precision ``J_tt = −2η_t``
    (symmetric), ``J_{t,t+1} = −C_t``; ``A = Σ_t ½ h̃_tᵀ J̃_t⁻¹ h̃_t − ½ log |J̃_t|`` by the
    block information filter (Cholesky solves), ``J̃_t = J_tt − J_{t−1,t}ᵀ J̃_{t−1}⁻¹ J_{t−1,t}``,
    ``h̃_t = h_t − J_{t−1,t}ᵀ J̃_{t−1}⁻¹ h̃_{t−1}``; ``∇A`` the smoothed E[x_t], E[x_t x_tᵀ] and
    E[x_t x_{t+1}ᵀ].  ``J_tt`` is read as ``−(η_t + η_tᵀ)`` so that the gradient with respect
    to ``η_t`` is the symmetric E[x_t x_tᵀ]."""

    name = "MvGaussianChain"
    structured = True
    Stats = MvGaussianChainStats
    stat_ranks = (2, 3, 3)
    support = "real"
    event_rank = 2
    args = ArgSpec(positional=(), groups=())
    lag_stat = "cross"

    @classmethod
    def log_normalizer(cls, eta):
        diag = -(eta.outer + jnp.swapaxes(eta.outer, -1, -2))
        return block_information_filter(eta.mean, diag, -eta.cross)

    @classmethod
    def tidy_natural(cls, eta):
        return eta._replace(outer=0.5 * (eta.outer + jnp.swapaxes(eta.outer, -1, -2)))

    @classmethod
    def entropy(cls, eta, mu=None):
        """½ T D (1 + log 2π) − ½ Σ_t log |J̃_t|, from η alone: ``A − ⟨η, μ⟩ − E[log h]``
        cancels terms of size ``hᵀJ⁻¹h`` (49 000 nats off at a precision of 1e20, as the
        scalar chain's)."""
        t, d = eta.mean.shape[-2:]
        diag = -(eta.outer + jnp.swapaxes(eta.outer, -1, -2))
        return 0.5 * t * d * (1.0 + _LOG_2PI) - 0.5 * block_pivot_logdet(diag, -eta.cross)

    @classmethod
    def expected_log_base_measure(cls, eta):
        t, d = eta.mean.shape[-2:]
        return -0.5 * _LOG_2PI * t * d * jnp.ones(eta.mean.shape[:-2])

    @classmethod
    def log_base_measure(cls, x):
        x = jnp.asarray(x, dtype=float)
        return -0.5 * _LOG_2PI * x.shape[-2] * x.shape[-1] * jnp.ones(x.shape[:-2])

    @classmethod
    def stats(cls, x):
        x = jnp.asarray(x, dtype=float)
        return MvGaussianChainStats(x, x[..., :, None] * x[..., None, :], x[..., :-1, :, None] * x[..., 1:, None, :])

    @classmethod
    def zero_stats(cls, shape, events):
        (d,) = events["value"]
        t = shape[-1]
        return MvGaussianChainStats(jnp.zeros(shape + (d,)), jnp.zeros(shape + (d, d)),
                                    jnp.zeros(shape[:-1] + (max(t - 1, 0), d, d)))

    @classmethod
    def mode(cls, eta):
        return cls.expected_stats(eta).mean

    @classmethod
    def params_from_natural(cls, eta):
        mu = cls.expected_stats(eta)
        cov = mu.outer - mu.mean[..., :, None] * mu.mean[..., None, :]
        return {"loc": mu.mean, "covariance_matrix": 0.5 * (cov + jnp.swapaxes(cov, -1, -2))}

    @classmethod
    def to_numpyro(cls, eta):
        """The per-step marginals q(x_t), batched over the chain."""
        p = cls.params_from_natural(eta)
        return dist.MultivariateNormal(p["loc"], covariance_matrix=p["covariance_matrix"])


def block_information_filter(h, diag, off):
    """A of ∝ exp(hᵀx − ½xᵀJx) with block-tridiagonal J: diagonal blocks ``diag``
    [..., T, D, D], off-diagonal ``off`` [..., T−1, D, D] (``J_{t,t+1}``), ``h`` [..., T, D]."""

    def solve(chol, b):
        return jax.scipy.linalg.cho_solve((chol, True), b)

    def step(carry, inputs):
        h_prev, chol_prev = carry
        h_t, j_t, o = inputs  # o = J_{t−1,t}
        j_new = j_t - jnp.swapaxes(o, -1, -2) @ solve(chol_prev, o)
        h_new = h_t - jnp.einsum("...ji,...j->...i", o, solve(chol_prev, h_prev[..., None])[..., 0])
        chol = jnp.linalg.cholesky(0.5 * (j_new + jnp.swapaxes(j_new, -1, -2)))
        return (h_new, chol), _term(h_new, chol)

    def _term(h_t, chol):
        w = jax.scipy.linalg.solve_triangular(chol, h_t[..., None], lower=True)[..., 0]
        logdet = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)
        return 0.5 * jnp.sum(w**2, axis=-1) - 0.5 * logdet

    chol0 = jnp.linalg.cholesky(0.5 * (diag[..., 0, :, :] + jnp.swapaxes(diag[..., 0, :, :], -1, -2)))
    first = (h[..., 0, :], chol0)
    inputs = (jnp.moveaxis(h[..., 1:, :], -2, 0), jnp.moveaxis(diag[..., 1:, :, :], -3, 0), jnp.moveaxis(off, -3, 0))
    _, terms = jax.lax.scan(step, first, inputs)
    return _term(*first) + jnp.sum(terms, axis=0)

def block_pivot_logdet(diag, off):
    """log |J| = Σ_t log |J̃_t| of the block-tridiagonal J (``block_information_filter``'s
    pivots J̃_t, without h)."""

    def chol(j):
        return jnp.linalg.cholesky(0.5 * (j + jnp.swapaxes(j, -1, -2)))

    def logdet(c):
        return 2.0 * jnp.sum(jnp.log(jnp.diagonal(c, axis1=-2, axis2=-1)), axis=-1)

    def step(chol_prev, inputs):
        j_t, o = inputs  # o = J_{t−1,t}
        c = chol(j_t - jnp.swapaxes(o, -1, -2) @ jax.scipy.linalg.cho_solve((chol_prev, True), o))
        return c, logdet(c)

    chol0 = chol(diag[..., 0, :, :])
    _, terms = jax.lax.scan(step, chol0, (jnp.moveaxis(diag[..., 1:, :, :], -3, 0), jnp.moveaxis(off, -3, 0)))
    return logdet(chol0) + jnp.sum(terms, axis=0)


__all__ = ["GaussianChain", "GaussianChainStats", "MvGaussianChain", "MvGaussianChainStats", "block_information_filter",
           "block_pivot_logdet", "information_filter"]
