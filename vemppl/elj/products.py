"""Moments of products of independent random factors (issue #20, "products of latents").

Each source below reads only first and second moments of its factors, so the expected log
joint stays multi-affine in every block's mean parameters wherever the product's math
allows it; where it does not, the block is named to the :class:`~.moments.Tracker`, which
gives it a natural-gradient update instead of a closed-form one.

* :class:`RowsTimesVector`: ``A @ h`` for a random matrix A whose rows ``a_i`` are
  independent (the rows of a plated MvNormal latent, ``W[j] ~ MvNormal``, or of a joint
  block over the last axis, ``W[j, l] ~ Normal`` read as ``W``) and a vector h independent
  of A, random or known.  With ``M = E[A]``, ``S = E[h hᵀ]``:

  - ``E[A h] = M E[h]``;
  - ``E[(a_i·h)²] = tr(E[a_i a_iᵀ] S)`` (bilinear in the rows' and h's statistics);
  - ``E[A h hᵀ Aᵀ]_ik = m_iᵀ S m_k`` for i ≠ k (independent rows), ``tr(E[a_i a_iᵀ] S)``
    on the diagonal.  The off-diagonal is quadratic in A's means (two rows of one block),
    so it is read only where a non-diagonal precision weighs it:
    ``E[(Ah)ᵀΛ(Ah)] = Σ_i Λ_ii E[(a_i·h)²] + Σ_{i≠k} Λ_ik m_iᵀ S m_k``, whose second sum
    vanishes for a precision known to be diagonal (a constant, or a random scalar times
    one) and leaves a conjugate likelihood, the same one as the per-coordinate spelling
    ``Normal(dot(W[j], h[n]), ...)``.

* :class:`VectorTimesRows`: ``h @ A``, the rows of A weighted by the elements of h:
  ``E[hᵀA] = E[h]ᵀM``, ``E[(hᵀA)ᵀ(hᵀA)] = Σ_l S_ll E[a_l a_lᵀ] + Σ_{l≠l'} S_ll' m_l m_l'ᵀ``,
  affine in h's statistics and quadratic in A's means (S is never diagonal for a random h).

* :class:`ScalarTimesMatrix`: ``s · Λ`` for a random scalar s and a matrix Λ independent of
  it, fixed or random (a precision ``kappa0 * tau * eye(P)``): ``E[sΛ] = E[s]E[Λ]``,
  ``E[log|sΛ|] = P·E[log s] + E[log|Λ|]``, ``E[vᵀ(sΛ)v] = E[s]E[vᵀΛv]``, each affine in s's
  Gamma statistics (E[s], E[log s]): the Normal–Gamma prior is conjugate.

* :class:`ScalarProduct`: ``a · b`` for independent random scalars (``precision = a * tau``):
  ``E[ab] = E[a]E[b]``, ``E[(ab)²] = E[a²]E[b²]``, ``E[log ab] = E[log a] + E[log b]``.

* :class:`SelfDot`: ``dot(w, w)`` (or ``w @ w``), a Gaussian vector with itself, not two
  independent factors.  With ``m = E[w]``, ``Σ = Cov[w]``:
  ``E[wᵀw] = tr Σ + mᵀm = Σ_k E[w_k²]`` (affine in w's statistics) and, by Isserlis,
  ``E[(wᵀw)²] = (tr Σ + mᵀm)² + 2 tr(Σ²) + 4 mᵀΣm`` (not affine: natural gradient).  Any
  other product of a block with itself (``tau * tau``, ``W @ W[0]``, ``dot(W[0], W[k])``) is
  refused with an ``unsupported`` error at its factor, never given independent-factor moments.

Contractions go through ``_linalg.bdot`` (see ``moments.Dot``): the size-1 axes of the loop
layout are dropped, so ``W @ h[n]`` over n is an [N, L] × [L, D] product and its second
moments an [N, L²] × [L², D] one, never an N·D·L² broadcast.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ..families._linalg import bdot
from .cross import Stacked
from .affine import Dot, Scaled, _Derived
from .moments import BlockMoments, Fixed, NoMoment, NotFixed


class _Product(_Derived):
    """A product of independent factors; a moment it does not define is not available
    (an ``unsupported`` error at the factor), not an attribute error.  Factors that share a
    block are not independent (``tau * tau``, ``W @ W[0]``): E[ab] ≠ E[a]E[b], so such a
    product is refused rather than given moments that are wrong."""

    def _independent(self, a, b, op):
        shared = a.deps & b.deps
        if shared:
            raise NoMoment(", ".join(sorted(shared)), "a product of it with itself", f"({op})")

    def _missing(self, name):
        raise NoMoment(", ".join(sorted(self.deps)), "expression", name)

    mean = property(lambda s: s._missing("mean"))
    sq = property(lambda s: s._missing("sq"))
    outer = property(lambda s: s._missing("outer"))
    log = property(lambda s: s._missing("log"))
    log1m = property(lambda s: s._missing("log1m"))
    logdet = property(lambda s: s._missing("logdet"))
    onehot = property(lambda s: s._missing("onehot"))

    def _flag(self, src, why):
        if self.tracker is not None:
            for b in src.deps:
                self.tracker.flag(b, why)


def known_diagonal(lam) -> bool:
    """True when the matrix ``lam`` is diagonal by construction: a constant (NumPy, so known
    while the expected log joint is traced) with zero off-diagonal, a scalar multiple of
    one, a random scalar times one, or ``diag(a)`` of a random vector (``diag(psi)``, ``psi[j] ~
    Gamma``).  Data and parameters are never assumed diagonal."""
    if isinstance(lam, DiagOf):
        return True
    if isinstance(lam, ScalarTimesMatrix):
        return known_diagonal(lam.m)
    if isinstance(lam, Scaled) and lam.c.ndim == 0:
        return known_diagonal(lam.a)
    if not lam.is_fixed:
        return False
    v = lam.value
    if not isinstance(v, np.ndarray) or v.ndim < 2 or v.shape[-1] != v.shape[-2]:
        return False
    return not np.any(v * (1.0 - np.eye(v.shape[-1])))


def _diag(m):
    return jnp.diagonal(m, axis1=-2, axis2=-1)


class RowsTimesVector(_Product):
    """``A @ h``: A random [.., D, L] with independent rows, h [.., L] independent of A."""

    def __init__(self, a, h, tracker):
        self.a, self.h, self.tracker = a, h, tracker
        self.deps = a.deps | h.deps
        self._independent(a, h, "@")

    @property
    def mean(self):
        return bdot(self.a.mean, self.h.mean[..., None, :], 1)

    def _point(self):  # point parameters only (moments._Derived.point)
        return jnp.einsum("...il,...l->...i", self.a.point, self.h.point)

    @property
    def sq(self):
        # E[(a_i·h)²] = tr(E[a_i a_iᵀ] E[h hᵀ]), one contraction over L² per row.
        return bdot(self.a.outer, self.h.outer[..., None, :, :], 2)

    def _msm(self):
        """M S Mᵀ: the off-diagonal of E[A h hᵀ Aᵀ] (quadratic in A's means)."""
        self._flag(self.a, "two of its rows are read together (E[W h hᵀ Wᵀ] off its diagonal)")
        m = self.a.mean
        return jnp.einsum("...il,...lk,...jk->...ij", m, self.h.outer, m)

    @property
    def outer(self):
        msm = self._msm()
        return msm - jnp.vectorize(jnp.diag, signature="(n)->(n,n)")(_diag(msm) - self.sq)

    has_quad = True

    def quad_under(self, lam):
        """E[(Ah)ᵀ Λ (Ah)] for a precision Λ independent of A and h: the diagonal of Λ
        against the per-row second moments, and the off-diagonal (absent when Λ is known
        to be diagonal) against M S Mᵀ, contracted as tr(S · Mᵀ Λ_off M)."""
        lm = lam.mean
        total = bdot(self.sq, _diag(lm), 1)
        if known_diagonal(lam):
            return total
        self._flag(self.a, "two of its rows are read together (a precision that is not diagonal)")
        off = lm - jnp.vectorize(jnp.diag, signature="(n)->(n,n)")(_diag(lm))
        m = self.a.mean
        g = jnp.einsum("...il,...ij,...jk->...lk", m, off, m)
        return total + bdot(self.h.outer, g, 2)


class VectorTimesRows(_Product):
    """``h @ A``: h [.., L] and A random [.., L, D] with independent rows, independent of h."""

    def __init__(self, h, a, tracker):
        self.h, self.a, self.tracker = h, a, tracker
        self.deps = a.deps | h.deps
        self._independent(h, a, "@")

    @property
    def mean(self):
        return bdot(jnp.swapaxes(self.a.mean, -1, -2), self.h.mean[..., None, :], 1)

    def _point(self):
        return jnp.einsum("...l,...li->...i", self.h.point, self.a.point)

    @property
    def outer(self):
        # Σ_l S_ll E[a_l a_lᵀ] + Σ_{l≠l'} S_ll' m_l m_l'ᵀ: the second sum couples A's rows.
        self._flag(self.a, "its rows are summed with weights that are random (h @ W)")
        s, m = self.h.outer, self.a.mean
        s_off = s - jnp.vectorize(jnp.diag, signature="(n)->(n,n)")(_diag(s))
        rows = jnp.einsum("...l,...lij->...ij", _diag(s), self.a.outer)
        return rows + jnp.einsum("...li,...lk,...kj->...ij", m, s_off, m)

    @property
    def sq(self):
        return _diag(self.outer)


class ScalarTimesMatrix(_Product):
    """``s · Λ``: a random scalar s [..] and a matrix Λ [.., P, P] independent of it."""

    def __init__(self, s, m, tracker):
        self.s, self.m, self.tracker = s, m, tracker
        self.deps = s.deps | m.deps
        self._independent(s, m, "*")

    @property
    def mean(self):
        return jnp.asarray(self.s.mean)[..., None, None] * self.m.mean

    def _point(self):
        return jnp.asarray(self.s.point)[..., None, None] * self.m.point

    @property
    def logdet(self):
        # log|sΛ| = P log s + log|Λ|, affine in E[log s].
        p = jnp.shape(self.m.mean)[-1]
        return p * self.s.log + self.m.logdet

    def joint_with(self, v) -> bool:
        return False

    def times(self, v):
        return jnp.asarray(self.s.mean)[..., None] * self.m.times(v)

    def quad(self, v):
        return self.s.mean * self.m.quad(v)


class DiagOf(_Product):
    """``diag(a)`` for a random vector a [.., P] (an ARD precision ``diag(alpha)`` with
    ``alpha[j] ~ Gamma``): ``E[diag a] = diag E[a]`` and ``E[log|diag a|] = Σ_j E[log a_j]``,
    both affine in a's statistics, so a Gamma ``a`` under an MvNormal precision is conjugate
    (the same model as ``w[j] ~ Normal(0, precision = alpha[j])``).  Its quadratic forms are
    the base class's ``tr(E[diag a] E[v vᵀ])``, a and v being independent."""

    def __init__(self, a, tracker):
        self.a, self.tracker, self.deps = a, tracker, a.deps

    @property
    def mean(self):
        return jnp.vectorize(jnp.diag, signature="(n)->(n,n)")(self.a.mean)

    def _point(self):
        return jnp.vectorize(jnp.diag, signature="(n)->(n,n)")(self.a.point)

    @property
    def logdet(self):
        return jnp.sum(self.a.log, axis=-1)


class ScalarProduct(_Product):
    """``a · b`` for independent random scalars (elementwise over the loop layout)."""

    def __init__(self, a, b, tracker):
        self.a, self.b, self.tracker = a, b, tracker
        self.deps = a.deps | b.deps
        self._independent(a, b, "*")

    mean = property(lambda s: s.a.mean * s.b.mean)
    sq = property(lambda s: s.a.sq * s.b.sq)
    log = property(lambda s: s.a.log + s.b.log)

    def _point(self):
        return self.a.point * self.b.point


class ScalarTimesVector(_Product):
    """``s · v`` for a random scalar ``s`` (one per element of the loops) and an independent
    random vector ``v`` (``h[n] * mu``, ``tau * mu``): E[s v] = E[s] E[v], E[(s v)(s v)ᵀ] =
    E[s²] E[v vᵀ], affine in each side's statistics (bilinear, as ``dot(W[j], h[n])``)."""

    def __init__(self, s, v, tracker):
        self.s, self.v, self.tracker = s, v, tracker
        self.deps = s.deps | v.deps
        self._independent(s, v, "*")

    def _lay(self, x, k=1):  # the scalar's grid-laid moment beside k axes of the vector's
        x = jnp.asarray(x)
        return jnp.reshape(x, x.shape + (1,) * k)

    mean = property(lambda p: p._lay(p.s.mean) * p.v.mean)
    sq = property(lambda p: p._lay(p.s.sq) * p.v.sq)
    outer = property(lambda p: p._lay(p.s.sq, 2) * p.v.outer)

    def _point(self):
        return self._lay(self.s.point) * self.v.point


class SelfDot(_Product):
    """``wᵀw`` for a Gaussian vector w: a block read as a vector (an MvNormal, ``outer`` its
    statistic) or a stack of independent scalar Normals (``w[j] ~ Normal``, ``sq`` theirs)."""

    def __init__(self, w, tracker):
        self.w, self.tracker, self.deps = w, tracker, w.deps

    def _mean_var(self):
        w = self.w
        if isinstance(w, Stacked):  # independent elements: Σ diagonal, no joint read
            m = w.e.mean
            return m, w.e.sq - m**2, None
        m = w.mean
        cov = w.outer - m[..., :, None] * m[..., None, :]
        return m, _diag(cov), cov

    @property
    def mean(self):
        m, var, _ = self._mean_var()
        return jnp.sum(var + m**2, axis=-1)

    @property
    def sq(self):
        self._flag(self.w, "its square norm is squared (E[(wᵀw)²], Isserlis)")
        m, var, cov = self._mean_var()
        first = jnp.sum(var + m**2, axis=-1)
        if cov is None:
            return first**2 + 2.0 * jnp.sum(var**2, axis=-1) + 4.0 * jnp.sum(var * m**2, axis=-1)
        return (first**2 + 2.0 * jnp.sum(cov * cov, axis=(-2, -1))
                + 4.0 * jnp.einsum("...i,...ij,...j->...", m, cov, m))

    def _point(self):
        v = self.w.point
        return jnp.sum(v * v, axis=-1)


def self_dot(w, tracker):
    """The source of ``dot(w, w)``: :class:`SelfDot` where w is a Gaussian vector (an MvNormal
    block or a stack of Normal elements), a point parameter's value for a ``param``, else an
    ``unsupported`` error (E[(wᵀw)²] needs w's fourth moments)."""
    if isinstance(w, Stacked) and getattr(w.e.family, "gaussian", False) and type(w.e) is BlockMoments:
        return SelfDot(w, tracker)
    if type(w) is BlockMoments and getattr(w.family, "gaussian", False) and w.family.event_rank == 1:
        return SelfDot(w, tracker)
    try:
        v = w.point
    except NotFixed:
        raise NoMoment(", ".join(sorted(w.deps)), "a product of it with itself", "dot(w, w)") from None
    return Fixed(jnp.sum(v * v, axis=-1))


def product(op: str, a, b, ranks, tracker, latent: bool = True):
    """The source of ``a op b`` (``*`` or ``@``) when it is a product this module serves,
    else None (the evaluator's own cases: a fixed factor, a known vector).  ``ranks``: the
    value ranks of a and b from the model's shapes (a value's array also carries the loop
    layout's axes, so its rank is read off the model, not off the array).  ``latent``: one
    of them reads a latent block; a product of point parameters alone is left to the
    evaluator, which reads it at their values."""
    ra, rb = ranks
    if op == "*":
        if not a.is_fixed and not b.is_fixed and ra == rb == 0 and latent:
            return ScalarProduct(a, b, tracker)
        if not a.is_fixed and not b.is_fixed and {ra, rb} == {0, 1} and latent:
            return ScalarTimesVector(a, b, tracker) if ra == 0 else ScalarTimesVector(b, a, tracker)
        if ra == 0 and rb == 2 and not a.is_fixed:
            return ScalarTimesMatrix(a, b, tracker)
        if ra == 2 and rb == 0 and not b.is_fixed:
            return ScalarTimesMatrix(b, a, tracker)
        return None
    if op != "@":
        return None
    if a.is_fixed:  # a known vector weighting a random matrix's rows, `X[n] @ B`: h @ A with E[h hᵀ] = x xᵀ
        return VectorTimesRows(a, b, tracker) if ra == 1 and rb == 2 and not b.is_fixed and latent else None
    if ra == 2 and rb == 1 and getattr(a, "name", None) == "transpose" and len(getattr(a, "args", ())) == 1:
        return VectorTimesRows(b, a.args[0], tracker)  # transpose(B) @ h is h @ B (nonlinear.Apply of B)
    if b.is_fixed and np.ndim(b.value) == 1 and ra != 2:
        return None  # moments.Dot, as before (a random matrix times a known vector is W @ h below)
    if ra == 2 and rb == 1:
        return RowsTimesVector(a, b, tracker)
    if ra == 1 and rb == 2 and not b.is_fixed:
        return VectorTimesRows(a, b, tracker)
    if ra == 1 and rb == 1 and not b.is_fixed:
        return Dot(a, b, tracker)
    return None


__all__ = ["DiagOf", "RowsTimesVector", "ScalarProduct", "ScalarTimesMatrix", "ScalarTimesVector", "SelfDot", "VectorTimesRows", "known_diagonal",
           "product", "self_dot"]
