"""Cholesky-based linear algebra shared by the matrix families (MvNormal, Wishart).

Every inverse and log-determinant goes through one Cholesky factor, which is both
cheaper and better conditioned than ``inv``/``slogdet`` on symmetric positive definite
matrices (Golub & Van Loan, *Matrix Computations*, §4.2).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.linalg import cho_solve


def chol(a):
    """Lower Cholesky factor, batched over leading axes."""
    return jnp.linalg.cholesky(a)


def chol_logdet(tril):
    """log |L Lᵀ| from the lower factor L."""
    return 2.0 * jnp.sum(jnp.log(jnp.diagonal(tril, axis1=-2, axis2=-1)), axis=-1)


def chol_inverse(tril):
    """(L Lᵀ)⁻¹ by two triangular solves against the identity."""
    eye = jnp.broadcast_to(jnp.eye(tril.shape[-1], dtype=tril.dtype), tril.shape)
    return cho_solve((tril, True), eye)


def chol_solve(tril, b):
    """(L Lᵀ)⁻¹ b for a vector b, batched."""
    batch = jnp.broadcast_shapes(tril.shape[:-2], b.shape[:-1])
    d = tril.shape[-1]
    tril = jnp.broadcast_to(tril, batch + (d, d))
    b = jnp.broadcast_to(b, batch + (d,))[..., None]
    return cho_solve((tril, True), b)[..., 0]


def spd_logdet(a):
    return chol_logdet(chol(a))


def spd_inverse(a):
    return chol_inverse(chol(a))


def outer(u, v):
    return u[..., :, None] * v[..., None, :]


_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def bdot(a, b, k: int = 1):
    """Σ over the last ``k`` axes of ``a * b``, with NumPy broadcasting of the leading axes.

    The expected log joint pairs arrays laid out as ``[N, 1, ...]`` (data) and
    ``[1, K, ...]`` (components).  A broadcast multiply would materialise ``N·K·D²``
    numbers; writing the same sum as an einsum in which each size-1 axis is dropped makes
    XLA emit one matrix product instead (the E-step's ``N·K·D²`` multiply-adds, no more).
    """
    nb = max(a.ndim, b.ndim) - k
    a = jnp.reshape(a, (1,) * (nb + k - a.ndim) + a.shape)
    b = jnp.reshape(b, (1,) * (nb + k - b.ndim) + b.shape)
    batch, ev = _LETTERS[:nb], _LETTERS[nb : nb + k]
    keep_a = [i for i in range(nb) if a.shape[i] != 1]
    keep_b = [i for i in range(nb) if b.shape[i] != 1]
    a2 = jnp.reshape(a, tuple(a.shape[i] for i in keep_a) + a.shape[nb:])
    b2 = jnp.reshape(b, tuple(b.shape[i] for i in keep_b) + b.shape[nb:])
    out_axes = sorted(set(keep_a) | set(keep_b))
    sub_a = "".join(batch[i] for i in keep_a) + ev
    sub_b = "".join(batch[i] for i in keep_b) + ev
    sub_o = "".join(batch[i] for i in out_axes)
    out = jnp.einsum(f"{sub_a},{sub_b}->{sub_o}", a2, b2)
    shape = tuple(max(a.shape[i], b.shape[i]) for i in range(nb))
    return jnp.reshape(out, shape)


def sharpened_gaussian_draw(eta, key, sharpen=100.0):
    """A Gaussian centred on one draw of itself, ``sharpen`` times more precise.

    The start of the global side of a bilinear term (``compiler.compile``): with
    Λ = L Lᵀ the draw is m + L⁻ᵀε, and the new natural parameters are
    (sharpen·Λ·draw, sharpen·η₂).
    """
    eps = jax.random.normal(key, eta.mean.shape)
    if hasattr(eta, "sq"):  # scalar Normal: (τm, −τ/2)
        tau = -2.0 * eta.sq
        draw = eta.mean / tau + eps / jnp.sqrt(tau)
        return eta._replace(mean=sharpen * tau * draw, sq=sharpen * eta.sq)
    lam = -2.0 * eta.outer
    lam = 0.5 * (lam + jnp.swapaxes(lam, -1, -2))
    chol = jnp.linalg.cholesky(lam)
    mean = jnp.linalg.solve(lam, eta.mean[..., None])[..., 0]
    noise = jax.scipy.linalg.solve_triangular(jnp.swapaxes(chol, -1, -2), eps[..., None], lower=False)[..., 0]
    draw = mean + noise
    return eta._replace(mean=sharpen * jnp.einsum("...ij,...j->...i", lam, draw), outer=sharpen * eta.outer)
