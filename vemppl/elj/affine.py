"""Moments of affine expressions of independent quantities: ``a + b``, ``c · a``, ``dot(a, b)``,
``M @ v``.

They stay multi-affine in the blocks' mean parameters (GUIDE §2), so factor analysis and
regression remain conjugate: each is a :class:`~vemppl.elj.moments` source built by the
expression evaluator (``elj/evaluate.py``) from its parts' sources, and reads their moments
only (``E[a + b] = E[a] + E[b]``, ``E[(c a)²] = c² E[a²]``, ``E[a·b] = E[a]·E[b]`` for
independent a, b), flagging a block read twice in a product through the tracker.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..families._linalg import bdot, broadcast_cross, broadcast_outer  # noqa: F401
from ..families._special import log_known
from ..families.base import MomentSource
from .moments import Fixed, NoMoment, _NoMoment, _NotFixed, gaussian_expect


def _add_cov(a, b):
    return b if a is None else a if b is None else a + b


class _Derived(MomentSource):
    is_fixed = property(lambda s: False)

    @property
    def value(self):
        return self.point

    def expect(self, f, *args, closed_form=None):
        return gaussian_expect(
            self, f, getattr(self, "tracker", None), "a nonlinear function of it (expectation by quadrature)", *args,
            closed_form=closed_form,
        )

    @property
    def point(self):
        """The value of an expression of point parameters and known values (``2 * a`` of a
        probe's point mass ``a``), from its parts' values; raises where a part is a latent."""
        return self._point()

    def _point(self):
        raise _NotFixed(", ".join(sorted(self.deps)))

    # Moments an expression of latents has no closed form for here (E[log(u + c)]): the
    # compiler reports them at the factor, as for a block (not the fixed value's formula).
    log = property(lambda s: s._missing("log"))
    log1m = property(lambda s: s._missing("log1m"))
    logdet = property(lambda s: s._missing("logdet"))

    def _missing(self, name):
        try:  # an expression of point parameters has its value's moments
            return getattr(Fixed(self.point), name)
        except _NotFixed:
            raise _NoMoment(", ".join(sorted(self.deps)), "expression", name) from None

    def _cross(self, a, b, tracker):
        for blk in a.deps & b.deps:  # the same or adjacent steps of one chain: its statistic (elj/lagged.py)
            if tracker is not None and not getattr(a, "pairs_with", lambda other: False)(b):
                tracker.flag(blk, "a product of two terms that both depend on it")


class Sum(_Derived):
    """a + b (or a − b) for independent a, b."""

    def __init__(self, a, b, sign: float, tracker):
        self.a, self.b, self.s, self.tracker = a, b, sign, tracker
        self.deps = a.deps | b.deps
        self._cross(a, b, tracker)

    @property
    def mean(self):
        return self.a.mean + self.s * self.b.mean

    @property
    def sq(self):
        if self.a.deps & self.b.deps:  # two steps of one chain: their cross moment (elj/lagged.py)
            return self.a.sq + 2.0 * self.s * self.a.prod(self.b) + self.b.sq
        return self.a.sq + 2.0 * self.s * self.a.mean * self.b.mean + self.b.sq

    def prod(self, other):
        if self.deps & getattr(other, "deps", frozenset()):
            return self.a.prod(other) + self.s * self.b.prod(other)
        return super().prod(other)

    def pairs_with(self, other) -> bool:  # E[(a ± b) o] = E[ao] ± E[bo]: affine where each part's is
        return all(getattr(p, "pairs_with", lambda o: False)(other) for p in (self.a, self.b) if p.deps & other.deps)

    @property
    def outer(self):  # a lower-rank part (a scalar c in B @ m + c) broadcasts as in NumPy
        if not self.a.deps & self.b.deps:
            cross = broadcast_cross(self.a.mean, self.b.mean)
        elif hasattr(self.a, "outer_with"):  # two steps of one vector chain: their cross moment
            cross = self.a.outer_with(self.b)
        else:
            raise NoMoment(", ".join(sorted(self.a.deps & self.b.deps)), "expression", "E[a bᵀ] of a ± b")
        return broadcast_outer(self.a, cross) + self.s * (cross + jnp.swapaxes(cross, -1, -2)) + broadcast_outer(self.b, cross)

    def spread(self, rank: int):
        if self.a.deps & self.b.deps:
            # x[t] − x[t−1] of a chain: Var(a ± b) = Var a + Var b ± 2 Cov(a, b), held by sq/outer.
            return MomentSource.spread(self, rank)
        (am, ac), (bm, bc) = self.a.spread(rank), self.b.spread(rank)
        return am + self.s * bm, _add_cov(ac, bc)

    # A part that contracts its own quadratic form (a product of latents, elj/products.py)
    # keeps it: E[(a ± b)ᵀΛ(a ± b)] = E[aᵀΛa] ± 2E[a]ᵀE[Λb] + E[bᵀΛb].
    has_quad = property(lambda s: getattr(s.a, "has_quad", False) or getattr(s.b, "has_quad", False))

    def quad_under(self, lam):
        return lam.quad(self.a) + 2.0 * self.s * bdot(self.a.mean, lam.times(self.b), 1) + lam.quad(self.b)

    def _point(self):
        return self.a.point + self.s * self.b.point


def _outer_of(c):
    """c cᵀ for a vector of factors, c² for a scalar (or one of size 1)."""
    return c[..., :, None] * c[..., None, :] if c.ndim and c.shape[-1] > 1 else c[..., None] ** 2 if c.ndim else c**2


class Scaled(_Derived):
    """c · a with c fixed (broadcast elementwise)."""

    def __init__(self, c, a):
        self.c, self.a, self.deps = jnp.asarray(c), a, a.deps
        # The random part's tracker, so a nonlinear read of ``c · a`` (``logits = 2 * eta``)
        # is reported and a's blocks get natural-gradient, not closed-form, updates.
        self.tracker = getattr(a, "tracker", None)
        # (a scalar element read, elj/cross.py, is scaled elementwise by any known c)
        self.pairs_with = lambda other: ((self.c.ndim == 0 or getattr(a, "elementwise", False))
                                         and getattr(a, "pairs_with", lambda o: False)(other))

    mean = property(lambda s: s.c * s.a.mean)
    sq = property(lambda s: s.c**2 * s.a.sq)

    def _point(self):
        return self.c * self.a.point

    @property
    def outer(self):
        c = self.c
        cc = _outer_of(c)
        if c.ndim and hasattr(self.a, "outer_times"):  # a random scalar times a known vector
            return self.a.outer_times(cc)
        return cc * self.a.outer

    @property
    def log(self):
        return log_known(self.c) + self.a.log  # a known 0 (c[z[n]] with c = (0, 1)) floored

    @property
    def inv_sq(self):
        """E[1/(c a)²] = E[1/a²] / c² (a scale written ``2.0 * s``)."""
        return self.a.inv_sq / self.c**2

    @property
    def logdet(self):
        d = self.a.mean.shape[-1]
        return d * jnp.log(self.c) + self.a.logdet

    def spread(self, rank: int):
        c = self.c
        if rank and c.ndim and hasattr(self.a, "spread_times"):  # a random scalar times a known vector
            return self.a.spread_times(c, _outer_of(c))
        m, cov = self.a.spread(rank)
        if cov is None:
            return c * m, None
        if not rank:
            return c * m, c**2 * cov
        return c * m, _outer_of(c) * cov

    def quad_form(self, d, cov=None):
        return self.c * self.a.quad_form(d, cov) if self.c.ndim == 0 else super().quad_form(d, cov)

    def pair_quad(self, other):
        return self.c * self.a.pair_quad(other)  # only read where joint_with holds: c is a scalar

    def prod(self, other):
        return self.c * self.a.prod(other) if self.deps & getattr(other, "deps", frozenset()) else super().prod(other)

    # A scalar multiple keeps the joint moments of a matrix with a vector (c·E[Λμ], c·E[μᵀΛμ]).
    def joint_with(self, v) -> bool:
        return self.c.ndim == 0 and self.a.joint_with(v)

    def times(self, v):
        return self.c * self.a.times(v) if self.c.ndim == 0 else super().times(v)

    def quad(self, v):
        return self.c * self.a.quad(v) if self.c.ndim == 0 else super().quad(v)

    has_quad = property(lambda s: s.c.ndim == 0 and getattr(s.a, "has_quad", False))

    def quad_under(self, lam):  # E[(ca)ᵀΛ(ca)] = c² E[aᵀΛa]
        return self.c**2 * lam.quad(self.a)


class Dot(_Derived):
    """Σ_k a_k b_k over the last axis, for independent a and b (either may be fixed)."""

    def __init__(self, a, b, tracker):
        self.a, self.b, self.tracker = a, b, tracker
        self.deps = a.deps | b.deps
        shared = a.deps & b.deps
        if shared:  # E[aᵀb] ≠ E[a]ᵀE[b]; dot(w, w) itself is products.SelfDot
            raise _NoMoment(", ".join(sorted(shared)), "a product of it with itself", "dot(...)")

    # Contracted by bdot, which drops the size-1 axes of the loop layout: dot(W[j], h[n])
    # over n, j is an [N, L] × [L, D] product, and its square an [N, L²] × [L², D] one,
    # where a broadcast multiply would write N·D·L² numbers (factor analysis: 10M a pass).
    @property
    def mean(self):
        return bdot(self.a.mean, self.b.mean, 1)

    @property
    def sq(self):
        # E[(aᵀb)²] = tr(E[aaᵀ] E[bbᵀ]) for independent a, b.
        return bdot(self.a.outer, self.b.outer, 2)

    def _point(self):
        return bdot(self.a.point, self.b.point, 1)

    # dot(X, w) beside an element read w[j] of the same block: the read's cross moment (elj/cross.py).
    def prod(self, other):
        if self.deps & other.deps and not isinstance(other, Dot):
            return other.prod(self)
        return super().prod(other)

    def pairs_with(self, other) -> bool:
        return not isinstance(other, Dot) and getattr(other, "pairs_with", lambda o: False)(self)


class MatVec(_Derived):
    """M @ v with M fixed [.., P, Q] and v random [.., Q]."""

    def __init__(self, m, v):
        self.m, self.v, self.deps = jnp.asarray(m), v, v.deps
        self.tracker = getattr(v, "tracker", None)  # as Scaled's: nonlinear reads are reported

    mean = property(lambda s: jnp.einsum("...pq,...q->...p", s.m, s.v.mean))

    def _point(self):
        return jnp.einsum("...pq,...q->...p", self.m, self.v.point)

    @property
    def sq(self):
        return jnp.einsum("...pq,...qr,...pr->...p", self.m, self.v.outer, self.m)

    @property
    def outer(self):
        return jnp.einsum("...pq,...qr,...sr->...ps", self.m, self.v.outer, self.m)
