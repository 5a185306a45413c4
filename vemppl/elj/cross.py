"""Element reads of a latent block, the cross moment of two reads of one block, and a block's
independent scalar elements read as one vector (:class:`Stacked`).

A factor may read one block twice at index expressions that can hit the same element:
``w[g[n]] * x[n] + w[h[n]] * z[n]`` with ``g``, ``h`` data, or ``dot(X[n], w) + w[0] * Z[n, 0]``.
The square of such a sum needs the elementwise cross moment ``E[w_I w_J]`` of the two reads,
which is not ``E[w_I] E[w_J]``:

* for a block whose elements are independent under q (a mean-field block of scalars),
  ``E[w_I w_J] = E[w_I²]`` where ``I = J`` and ``E[w_I] E[w_J]`` elsewhere;
* for a joint Gaussian block (an MvNormal over the last axis), ``E[w_I w_J] = E[wwᵀ]_{IJ}``
  where the two reads lie in the same row (every leading index equal), ``E[w_I] E[w_J]``
  elsewhere (different rows are independent);
* for ``dot(X, w)`` of a whole joint vector beside an element, ``E[(Xᵀw) w_J] = Σ_k X_k E[wwᵀ]_{kJ}``.

Index equality is decided per grid position from the index arrays, so a pair of reads that is
sometimes the same element and sometimes not gets each case right.  A cross moment is affine
in the block's statistics (so the block keeps a closed-form CAVI update, exact for a
Gaussian linear model) where it reads one statistic everywhere: the same element (identical
index expressions) of any block, or two elements of one row of a joint block (identical
leading index expressions); elsewhere it is exact but multi-affine, and the tracker is told.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

from . import moments as M
from . import affine as A


class Site(NamedTuple):
    """Where an element read lies in its block: the index ``exprs`` (IR expressions, compared
    by value), their grid-laid arrays ``idx``, and the whole block's ``stats`` and ``eta``.
    ``kind``: "elements" (independent scalars), "rows" (a joint Gaussian over the last axis,
    ``stats.outer`` [..., K, K], its rows independent) or "chain" (rows that are steps of one
    Gaussian chain, dependent: only reads within one step have a cross moment here)."""

    exprs: tuple
    idx: tuple
    stats: object
    eta: object
    kind: str = "elements"


class ElementRead(M.BlockMoments):
    """A scalar element of a block at a site (``w[g[n]]``): its moments are the block's
    statistics at the site, and its product with another read of the block is the
    element-level cross moment (module docstring)."""

    elementwise = True  # a scalar per grid position: a known factor scales it elementwise

    def __init__(self, block, family, stats, eta, tracker, site: Site):
        super().__init__(block, family, stats, eta, tracker)
        self.site = site

    def prod(self, other):
        if not self.deps & getattr(other, "deps", frozenset()):
            return self.mean * other.mean
        v = self.cross_with(other)
        return self.mean * other.mean if v is None else v

    def cross_with(self, other):
        """E[self · other] elementwise, ``other`` a linear expression of reads; None where a
        part of it that reads this block is not an element read or ``dot(X, w)``."""
        out = 0.0
        for c, atom in linear_parts(other):
            if not self.deps & atom.deps:
                v = self.mean * atom.mean
            elif isinstance(atom, ElementRead):
                v = _element_cross(self, atom)
            else:
                v = _dot_cross(self, atom)
            if v is None:
                return None
            out = out + c * v
        return out

    def pairs_with(self, other) -> bool:
        """True when E[self · other] reads one statistic of the block (affine in it)."""
        for _, atom in linear_parts(other):
            if not self.deps & atom.deps:
                continue
            if isinstance(atom, ElementRead):
                if not _same_statistic(self.site, atom.site):
                    return False
            elif _dot_cross(self, atom) is None:
                return False
        return True


def element_view(name, scalar, stats, eta, idx, exprs, tracker, chain: bool = False):
    """One scalar element of a Gaussian vector block: E[w_j] = m_j, E[w_j²] = E[wwᵀ]_jj, both linear in the
    block's mean parameters, so the element's factors stay conjugate (η's diagonal is not the element's)."""
    lead, last = idx[:-1], idx[-1]
    at = (lambda t: scalar.Stats(t.mean[(*lead, last)], t.outer[(*lead, last, last)]))
    site = Site(tuple(exprs), tuple(idx), stats, eta, "chain" if chain else "rows")
    return ElementRead(name, scalar, at(stats), at(eta), tracker, site)


def linear_parts(src, coef=1.0) -> list:
    """``src`` as Σ coef · atom through sums and known scalings (coefficients elementwise)."""
    if isinstance(src, A.Scaled) and (src.c.ndim == 0 or getattr(src.a, "elementwise", False)):
        return linear_parts(src.a, coef * src.c)
    if isinstance(src, A.Sum):
        return linear_parts(src.a, coef) + linear_parts(src.b, coef * src.s)
    return [(coef, src)]


def _same_statistic(s: Site, t: Site) -> bool:
    if s.kind == "elements" or t.kind == "elements":
        return s.exprs == t.exprs
    return s.exprs[:-1] == t.exprs[:-1]


def _equal(a: tuple, b: tuple):
    """True where two sites' index arrays pick the same element, per grid position."""
    eq = True
    for i, j in zip(a, b):
        eq = jnp.logical_and(eq, jnp.asarray(i) == jnp.asarray(j))
    return eq


def _element_cross(a: ElementRead, b: ElementRead):
    s, t = a.site, b.site
    if len(s.idx) != len(t.idx) or s.kind != t.kind:
        return None
    if s.kind == "elements":  # independent elements: E[w_I²] where I = J
        return a.sq if s.exprs == t.exprs else jnp.where(_equal(s.idx, t.idx), a.sq, a.mean * b.mean)
    if s.kind == "chain" and s.exprs[:-1] != t.exprs[:-1]:
        return None  # two steps of a chain that may differ: their cross moment is the chain's (elj/lagged.py)
    _read(a, "outer")
    lead = s.idx[:-1]
    within = s.stats.outer[(*lead, s.idx[-1], t.idx[-1])]  # E[wwᵀ] of the row of a
    if s.exprs[:-1] == t.exprs[:-1]:
        return within
    return jnp.where(_equal(lead, t.idx[:-1]), within, a.mean * b.mean)


def _dot_cross(a: ElementRead, atom):
    """E[dot(X, v) · w_J] for the whole joint vector v of a's block (no leading axes)."""
    if not isinstance(atom, A.Dot) or a.site.kind != "rows" or len(a.site.idx) != 1:
        return None
    known, v = (atom.a, atom.b) if atom.a.is_fixed else (atom.b, atom.a)
    if not known.is_fixed or getattr(v, "block", None) != a.block or getattr(v, "site", None) is not None:
        return None
    if jnp.ndim(a.site.stats.mean) != 1:
        return None
    _read(a, "outer")
    return jnp.sum(jnp.asarray(known.value) * a.site.stats.outer[a.site.idx[0]], axis=-1)


def _read(src, name):
    if src.tracker is not None:
        src.tracker.read(src.block, name)


class Stacked(A._Derived):
    """A vector of independent scalar elements of one block (``w`` for ``w[j] ~ Normal``).

    ``E[wwᵀ] = E[w]E[w]ᵀ + diag(Var w)``: the off-diagonal products of different elements
    make this quadratic in the block's mean parameters, so the tracker is told.
    """

    def __init__(self, elem: BlockMoments, tracker):
        self.e, self.deps, self.tracker = elem, elem.deps, tracker

    mean = property(lambda s: s.e.mean)
    log = property(lambda s: s.e.log)  # elementwise moments are the elements' own (diag(alpha))

    @property
    def outer(self):
        if self.tracker is not None:
            for b in self.deps:
                self.tracker.flag(b, "its elements are used jointly as a vector")
        m, sq = self.e.mean, self.e.sq
        return m[..., :, None] * m[..., None, :] + jnp.vectorize(jnp.diag, signature="(n)->(n,n)")(sq - m**2)


__all__ = ["ElementRead", "Site", "Stacked", "element_view", "linear_parts"]
