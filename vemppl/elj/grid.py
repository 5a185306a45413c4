"""Known values on a factor's grid: their own axes kept apart from the grid's.

A known per-element value is laid out as the grid's axes (one per loop, then one per gate),
then its own (``X[n]`` of a ``real[N, D]`` array is ``[N, D]``).  Combined with a value that
has no grid axes (``Wc``, ``eye(D)``), NumPy would pair the grid axes with the other's own
axes; these helpers pair grid with grid and own with own, given each operand's own rank.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .affine import _Derived
from .moments import Fixed, NoMoment


def matmul(xp, x, y, ra, rb):
    """``x @ y`` for operands with grid axes in front of their own (of ranks ``ra``, ``rb``):
    a vector is a row or a column, so that the grid axes are batch axes of the product."""
    out = xp.matmul(xp.expand_dims(x, -2) if ra == 1 else x, xp.expand_dims(y, -1) if rb == 1 else y)
    if rb == 1:
        out = out[..., 0]
    if ra == 1:
        out = out[..., 0, :] if rb != 1 else out[..., 0]
    return out


def align(xp, x, y, ra, rb):
    """Operands whose leading axes are the grid's laid out so that NumPy broadcasting pairs
    grid with grid and value axes with value axes: ``w[n] * eye(D)`` is [N, 1, 1] × [D, D]."""
    r = max(ra, rb)
    return widen(xp, x, ra, r), widen(xp, y, rb, r)


def widen(xp, x, own: int, rank: int):
    """``x`` (grid axes, then ``own`` axes of its own) with axes of size one in front of its
    own, up to ``rank`` of them."""
    shape = np.shape(x)
    return xp.reshape(x, shape[: len(shape) - own] + (1,) * (rank - own) + shape[len(shape) - own:])


class Trailing(_Derived):
    """A random scalar ``a`` (grid axes only) beside a value of own rank ``k``, as ``align``
    lays out a known one: ``cuts − w`` with ``cuts: real[C]`` and ``w`` a latent scalar read
    in a loop is ``[N, 1] − [C]``, not ``[N] − [C]``, which NumPy would pair grid with own.

    Its mean and elementwise square are ``a``'s with ``k`` axes of size one after the grid's.
    The elements of the broadcast value are one random number repeated, perfectly correlated,
    so there is no outer product or covariance here to read as if they were independent: a
    factor that needs one (an MvNormal's location) raises ``NoMoment`` and takes the general
    path, whose draws are laid out the same way (``elj/general.py``)."""

    def __init__(self, a, k: int):
        self.a, self.k, self.deps = a, k, a.deps
        self.tracker = getattr(a, "tracker", None)

    def lay(self, x):
        """``x`` (a's layout) with the ``k`` own axes of size one."""
        x = jnp.asarray(x)
        return jnp.reshape(x, x.shape + (1,) * self.k)

    mean = property(lambda s: s.lay(s.a.mean))
    sq = property(lambda s: s.lay(s.a.sq))
    log = property(lambda s: s.lay(s.a.log))  # elementwise moments are a's, repeated
    log1m = property(lambda s: s.lay(s.a.log1m))

    def _point(self):
        return self.lay(self.a.point)

    @property
    def outer(self):
        raise NoMoment(", ".join(sorted(self.deps)), "expression", "E[a aᵀ] of a scalar broadcast to a vector")

    def outer_times(self, cc):
        """E[(c a)(c a)ᵀ] = c cᵀ E[a²] for a known vector ``c`` (its outer product ``cc``): the
        outer product of a scalar times a vector (``m * ones(D)``, ``x[n] * mu``'s mirror),
        exact, as every entry reads the one random number twice."""
        if self.k != 1:
            return self.outer
        return cc * jnp.reshape(self.a.sq, jnp.shape(self.a.sq) + (1, 1))

    def spread_times(self, c, cc):
        """The mean and covariance of ``c a`` (as ``outer_times``): ``c E[a]`` and ``c cᵀ Var a``."""
        if self.k != 1:
            return self.spread(1)
        m, var = self.a.spread(0)  # a's own layout (grid axes only), laid out here once
        return c * self.lay(m), cc * jnp.reshape(var, jnp.shape(var) + (1, 1))

    def spread(self, rank: int):
        if rank:
            raise NoMoment(", ".join(sorted(self.deps)), "expression", "Cov of a scalar broadcast to a vector")
        return self.mean, self.sq - self.mean**2


def lift(src, own: int, other: int):
    """``src`` (of own rank ``own``) laid out beside an operand of own rank ``other`` so that
    broadcasting pairs grid with grid (``align``): a known value gets axes of size one in front
    of its own, a random scalar ``Trailing`` ones; anything else is returned as it is."""
    if own >= other:
        return src
    if isinstance(src, Fixed):
        x = src.value
        return Fixed(widen(np if isinstance(x, np.ndarray) else jnp, x, own, other))
    if own == 0:
        return Trailing(src, other)
    return src


__all__ = ["Trailing", "align", "lift", "matmul", "widen"]
