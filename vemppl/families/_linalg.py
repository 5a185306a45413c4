"""Cholesky-based linear algebra shared by the matrix families (MvNormal, Wishart).

Every inverse and log-determinant goes through one Cholesky factor, which is both
cheaper and better conditioned than ``inv``/``slogdet`` on symmetric positive definite
matrices (Golub & Van Loan, *Matrix Computations*, §4.2).

The factorisation and the triangular solves are written here in plain JAX instead of
calling ``jnp.linalg``.  On the CPU, jaxlib runs batched LAPACK calls as custom calls that
split their batch over XLA's intra-op thread pool and block until the pieces finish; XLA's
thunk executor runs independent custom calls of one program on that same pool, and two of
them side by side can each hold a pool thread while waiting for the other's work.  With 2
cores a factor-analysis sweep ([N, L, L] Cholesky and solves) hung in 4 runs of 4, with or
without the concurrency-optimised scheduler (``vemppl/_threads.py``).  The matrices
here are small and many (one per data point or component); a column loop vectorised over
the batch costs about what LAPACK did (GMM, N = 100k, D = K = 10: 0.37 against 0.36 s per
sweep), at a longer compile for large D (digits, D = 64: about 6 s against 3.4 s).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _loop(d, body, init, reverse=False):
    """``lax.fori_loop`` over the D columns.  (Unrolled in Python, the loop made a
    10-dimensional GMM compile in 17 s instead of 5 s and run 1.8× slower per sweep.)"""
    if reverse:
        return jax.lax.fori_loop(0, d, lambda i, x: body(d - 1 - i, x), init)
    return jax.lax.fori_loop(0, d, body, init)


@jax.custom_jvp
def _chol(a):
    """Lower Cholesky factor L (a = L Lᵀ), batched over leading axes.

    Left-looking, one column per step: l_j = (a_j − L l̃_j) / √(a_jj − ‖l̃_j‖²), with l̃_j
    the finished part of row j.  A matrix that is not positive definite gives NaN, as
    LAPACK's ``potrf`` through ``jnp.linalg.cholesky`` does.
    """
    a = jnp.asarray(a)
    d = a.shape[-1]
    rows = jnp.arange(d)

    def column(j, tril):
        s = a[..., :, j] - jnp.einsum("...ik,...k->...i", tril, tril[..., j, :])
        col = s / jnp.sqrt(jnp.take(s, j, axis=-1)[..., None])
        return tril.at[..., :, j].set(jnp.where(rows >= j, col, 0.0))

    return _loop(d, column, jnp.zeros_like(a))


@_chol.defjvp
def _chol_jvp(primals, tangents):
    """dL = L Φ(L⁻¹ dA L⁻ᵀ), Φ = lower triangle with the diagonal halved
    (Murray 2016, "Differentiation of the Cholesky decomposition", eq. 10)."""
    (a,), (da,) = primals, tangents
    tril = _chol(a)
    da = 0.5 * (da + jnp.swapaxes(da, -1, -2))
    x = solve_lower(tril, jnp.swapaxes(solve_lower(tril, da), -1, -2))
    phi = jnp.tril(x) - 0.5 * jnp.eye(a.shape[-1], dtype=x.dtype) * x
    return tril, jnp.einsum("...ij,...jk->...ik", tril, phi)


# Jitted so that eager calls (results, sampling) reuse one compiled loop per shape; inside
# a jitted sweep the call is inlined.
chol = jax.jit(_chol)


def _broadcast(tril, b):
    batch = jnp.broadcast_shapes(tril.shape[:-2], b.shape[:-2])
    return (jnp.broadcast_to(tril, batch + tril.shape[-2:]), jnp.broadcast_to(b, batch + b.shape[-2:]))


@jax.jit
def solve_lower(tril, b):
    """X with L X = b (b: [..., D, M]), forward substitution row by row."""
    tril, b = _broadcast(tril, b)

    def row(j, x):
        r = (jnp.take(b, j, axis=-2) - jnp.einsum("...k,...km->...m", jnp.take(tril, j, axis=-2), x))
        return x.at[..., j, :].set(r / jnp.take(jnp.take(tril, j, axis=-2), j, axis=-1)[..., None])

    return _loop(tril.shape[-1], row, jnp.zeros_like(b))


@jax.jit
def solve_upper_t(tril, b):
    """X with Lᵀ X = b (b: [..., D, M]), back substitution on the transpose of L."""
    tril, b = _broadcast(tril, b)

    def row(j, x):
        col = jnp.take(tril, j, axis=-1)  # row j of Lᵀ
        r = jnp.take(b, j, axis=-2) - jnp.einsum("...k,...km->...m", col, x)
        return x.at[..., j, :].set(r / jnp.take(col, j, axis=-1)[..., None])

    return _loop(tril.shape[-1], row, jnp.zeros_like(b), reverse=True)


def chol_logdet(tril):
    """log |L Lᵀ| from the lower factor L."""
    return 2.0 * jnp.sum(jnp.log(jnp.diagonal(tril, axis1=-2, axis2=-1)), axis=-1)


def chol_inverse(tril):
    """(L Lᵀ)⁻¹ = L⁻ᵀ L⁻¹, from one triangular solve against the identity."""
    inv_l = solve_lower(tril, jnp.broadcast_to(jnp.eye(tril.shape[-1], dtype=tril.dtype), tril.shape))
    return jnp.einsum("...ki,...kj->...ij", inv_l, inv_l)


def chol_solve(tril, b):
    """(L Lᵀ)⁻¹ b for a vector b, batched."""
    return solve_upper_t(tril, solve_lower(tril, b[..., None]))[..., 0]


def spd_logdet(a):
    return chol_logdet(chol(a))


def spd_inverse(a):
    return chol_inverse(chol(a))


def outer(u, v):
    return u[..., :, None] * v[..., None, :]


_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def broadcast_cross(a, b):
    """E[a]E[b]ᵀ of two vectors' means broadcast against each other as NumPy does (a scalar
    beside a vector, ``B @ m + c``, repeats along the vector axis): [..., D, D]."""
    shape = jnp.broadcast_shapes(jnp.shape(a), jnp.shape(b))
    return outer(jnp.broadcast_to(a, shape), jnp.broadcast_to(b, shape))


def broadcast_outer(part, like):
    """E[v vᵀ] of the moment source ``part`` broadcast to the [..., D, D] of ``like``: its own
    ``outer`` where its last axis is the vector's; else its one value repeats along that
    axis, so every entry is that value's second moment, E[c²] 11ᵀ."""
    own, full = jnp.shape(part.mean), jnp.shape(like)
    if own and own[-1] == full[-1]:
        return jnp.broadcast_to(part.outer, full)
    return jnp.broadcast_to(jnp.asarray(part.sq[..., 0] if own else part.sq)[..., None, None], full)


def bdot(a, b, k: int = 1):
    """Σ over the last ``k`` axes of ``a * b``, with NumPy broadcasting of the leading axes.

    The expected log joint pairs arrays laid out as ``[N, 1, ...]`` (data) and
    ``[1, K, ...]`` (components).  A broadcast multiply would materialise ``N·K·D²``
    numbers; writing the same sum as an einsum in which each size-1 axis is dropped makes
    XLA emit one matrix product instead (the E-step's ``N·K·D²`` multiply-adds, no more).
    Summed axes that differ in size (one of them broadcast) are taken as a broadcast product.
    """
    a, b = jnp.asarray(a), jnp.asarray(b)
    if a.ndim < k or b.ndim < k or a.shape[a.ndim - k:] != b.shape[b.ndim - k:]:
        return jnp.sum(a * b, axis=tuple(range(-k, 0)))
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


def bquad(x, m):
    """xᵀ m x over the last axes (x: [..., D], m: [..., D, D]), leading axes broadcast.

    As in ``bdot``, size-1 axes are dropped before contracting, so a data array laid out
    [N, 1, D] against components [1, K, D, D] costs one [N, D] × [D, K·D] product and an
    N·K·D reduction, and no N·K·D² array is formed.
    """
    return _vecmat(x, m, quad=True)


def bvecmat(x, m):
    """Σ_y x_y m_yz over the last axes (x: [..., D], m: [..., D, D]), leading axes broadcast
    as in ``bquad`` (no [..., D, D] broadcast of m against x's batch)."""
    return _vecmat(x, m, quad=False)


def _vecmat(x, m, quad):
    d = x.shape[-1]
    nb = max(x.ndim - 1, m.ndim - 2)
    x = jnp.reshape(x, (1,) * (nb + 1 - x.ndim) + x.shape)
    m = jnp.reshape(m, (1,) * (nb + 2 - m.ndim) + m.shape)
    keep_x = [i for i in range(nb) if x.shape[i] != 1]
    keep_m = [i for i in range(nb) if m.shape[i] != 1]
    x2 = jnp.reshape(x, tuple(x.shape[i] for i in keep_x) + (d,))
    m2 = jnp.reshape(m, tuple(m.shape[i] for i in keep_m) + (d, d))
    batch = _LETTERS[:nb]
    out = "".join(batch[i] for i in sorted(set(keep_x) | set(keep_m)))
    sub_x = "".join(batch[i] for i in keep_x)
    sub_m = "".join(batch[i] for i in keep_m)
    xm = jnp.einsum(f"{sub_x}y,{sub_m}yz->{out}z", x2, m2)
    shape = tuple(max(x.shape[i], m.shape[i]) for i in range(nb))
    if not quad:
        return jnp.reshape(xm, shape + (d,))
    q = jnp.einsum(f"{out}z,{sub_x}z->{out}", xm, x2)
    return jnp.reshape(q, shape)


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
    tril = chol(lam)
    mean = chol_solve(tril, eta.mean)
    noise = solve_upper_t(tril, eps[..., None])[..., 0]
    draw = mean + noise
    return eta._replace(mean=sharpen * jnp.einsum("...ij,...j->...i", lam, draw), outer=sharpen * eta.outer)


def within_unit_spread(eta):
    """A Gaussian at the same mean with its spread cut to at most 1 in every direction:
    a scalar Normal's precision max(τ, 1); an MvNormal's precision matrix with its
    eigenvalues raised to at least 1.  The start of a natural-gradient block, whose
    nonlinear link (exp, sigmoid) reads its value on a unit scale: q = N(0, 1000²) under
    exp(b + w·x) has E[exp] = exp(½·1000²·(1 + x²)), from which no step can be compared."""
    if hasattr(eta, "sq"):  # scalar Normal: (τm, −τ/2)
        tau = -2.0 * eta.sq
        tight = jnp.maximum(tau, 1.0)
        return eta._replace(mean=eta.mean * tight / tau, sq=-0.5 * tight)
    lam = -2.0 * eta.outer
    lam = 0.5 * (lam + jnp.swapaxes(lam, -1, -2))
    mean = chol_solve(chol(lam), eta.mean)
    vals, vecs = jnp.linalg.eigh(lam)
    tight = jnp.einsum("...ik,...k,...jk->...ij", vecs, jnp.maximum(vals, 1.0), vecs)
    return eta._replace(mean=jnp.einsum("...ij,...j->...i", tight, mean), outer=-0.5 * tight)


def sd_of(mean, sq):
    """sd = sqrt(E[a²] − E[a]²), floored at float's smallest normal: where the variance rounds to 0
    or below (a q collapsed to sd ~ 1e-9 beside a mean of 0.4: E[a²] − E[a]² cancels), sqrt's
    derivative at 0 is inf, and ∇_μ L came out nan, which froze the block at that q for good."""
    v = sq - mean**2
    return jnp.sqrt(jnp.maximum(v, jnp.finfo(jnp.result_type(v, float)).tiny))
