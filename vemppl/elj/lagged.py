"""Moments of one step ``x[.., t]`` of a chain block that holds lag-one cross moments.

A chain of Gaussians (families/gaussian_chain.py) has statistics ``E[x_t]``, ``E[x_t²]``
and ``E[x_t x_{t+1}]`` (the family's ``lag_stat``).  A factor that reads two steps of it,
the transition ``x[t] ~ Normal(a * x[t-1] + b, precision = q)``, needs

    E[x_t (a x_{t−1} + b)] = a E[x_{t−1} x_t] + b E[x_t],

which is a statistic of the block, not ``E[x_t] E[x_{t−1}]``: the expected log joint stays
affine in the block's mean parameters and the block's update is closed form.
:meth:`ChainStep.prod` gives it, through sums and fixed multiples of steps of the same
chain, by comparing the two steps' index expressions (``t`` and ``t-1``, or two constants).
For a chain of vectors (``x[t] ~ MvNormal(A @ x[t-1] + b, precision = Q)``) the same holds
for ``E[x_tᵀ Q A x_{t−1}] = Σ_ij Q_ij (E[x_t x_{t−1}ᵀ] Aᵀ)_ij`` (:meth:`ChainStep.quad_with`).
Steps that are not adjacent, or of sequences that may differ, are refused (``NoMoment``,
reported by the compiler as an ``unsupported`` error at the factor).

The multiplier may itself be random (a latent or a ``param``, ``phi * x[t-1]``,
``A @ x[t-1]`` with A's rows latent), independent of the chain under mean-field:

    E[x_t φ x_{t−1}] = E[φ] E[x_t x_{t−1}],   E[x_t (A x_{t−1})ᵀ] = E[x_t x_{t−1}ᵀ] E[A]ᵀ,

while the square of the location keeps its own moments, E[(φ x_{t−1})²] = E[φ²] E[x_{t−1}²]
(elj/products.py).  Each term is a product of one statistic of each block, so the expected
log joint stays affine in the chain's and in the multiplier's statistics, and both updates
(and a ``param``'s M-step) stay closed form.
"""

from __future__ import annotations

import jax.numpy as jnp

from ..families._linalg import bdot
from ..ir.expr import const_int, loop_offset
from . import moments as M
from . import affine as A
from .products import RowsTimesVector, ScalarProduct


class ChainStep(M.BlockMoments):
    """``x[indices]`` of a chain block: ``stats``/``eta`` are the whole block's; ``ctx`` the
    evaluation context of the factor (its ``take`` lays an indexed array out on the grid)."""

    def __init__(self, block, family, stats, eta, tracker, indices, ctx):
        super().__init__(block, family, stats, eta, tracker)
        self.indices, self.ctx = tuple(indices), ctx

    def _get(self, name):
        if name in self.stats._fields and name != self.family.lag_stat:
            if self.tracker is not None:
                self.tracker.read(self.block, name)
            return self.ctx.take(getattr(self.stats, name), self.indices)
        if self.tracker is not None:
            self.tracker.flag(self.block, f"E[{name}] is not a sufficient statistic of {self.family.name}")
        raise M.NoMoment(self.block, self.family.name, name)

    def _step(self):
        """(loop variable or None, offset) of the last index: ``t-1`` → (t, −1), ``0`` → (None, 0)."""
        ix = self.indices[-1]
        lo = loop_offset(ix, self.ctx.loop_vars)
        if lo is not None:
            return lo
        c = const_int(ix)
        return None if c is None else (None, c)

    def prod(self, other):
        """E[x · other] for a scalar ``other``: a statistic where ``other`` is affine in
        steps of this chain, E[x] E[other] where it does not read this chain."""
        if self.block not in _deps(other):
            return self.mean * other.mean
        if isinstance(other, ChainStep) and other.block == self.block:
            return self._pair(other)
        if isinstance(other, A.Scaled):
            return other.c * self.prod(other.a)
        if isinstance(other, A.Sum):
            return self.prod(other.a) + other.s * self.prod(other.b)
        if isinstance(other, ScalarProduct):  # E[x φ y] = E[φ] E[x y], φ independent of the chain
            coef, step = (other.a, other.b) if self.block not in _deps(other.a) else (other.b, other.a)
            if self.block not in _deps(coef):
                return coef.mean * self.prod(step)
        raise M.NoMoment(self.block, self.family.name, "x_t times a nonlinear function of the chain")

    def quad_with(self, lam, loc):
        """E[xᵀ Λ m] for a vector step x, Λ independent of the chain, m affine in its steps:
        Σ_ij E[Λ]_ij E[x mᵀ]_ij."""
        if self.block not in _deps(loc):
            return super().quad_with(lam, loc)
        if self.block in _deps(lam):
            raise M.NoMoment(self.block, self.family.name, "a precision that reads the chain")
        return bdot(lam.mean, self.outer_with(loc), 2)

    def outer_with(self, other):
        """E[x otherᵀ] for a vector ``other`` affine in steps of this chain (fixed matrices
        times steps, fixed scalar multiples, sums)."""
        if self.block not in _deps(other):
            return self.mean[..., :, None] * other.mean[..., None, :]
        if isinstance(other, ChainStep) and other.block == self.block:
            return self._pair(other)
        if isinstance(other, A.MatVec):  # E[x (M v)ᵀ] = E[x vᵀ] Mᵀ
            return jnp.einsum("...ij,...kj->...ik", self.outer_with(other.v), other.m)
        if isinstance(other, A.Scaled) and other.c.ndim == 0:
            return other.c * self.outer_with(other.a)
        if isinstance(other, A.Sum):
            return self.outer_with(other.a) + other.s * self.outer_with(other.b)
        if isinstance(other, RowsTimesVector) and self.block not in _deps(other.a):
            # E[x (A v)ᵀ] = E[x vᵀ] E[A]ᵀ for a random A independent of the chain
            return jnp.einsum("...ij,...kj->...ik", self.outer_with(other.h), other.a.mean)
        raise M.NoMoment(self.block, self.family.name, "x_t times a nonlinear function of the chain")

    def pairs_with(self, other) -> bool:
        """Whether ``other`` is (a fixed scalar times) the same or an adjacent step of this chain
        in one sequence: E[x · other] is then one of the chain's statistics (``_pair``), so a
        factor reading both (``d[t] ~ Normal(x[t] - x[t-1], ...)``) stays conjugate."""
        while isinstance(other, A.Scaled) and other.c.ndim == 0:
            other = other.a
        if not (isinstance(other, ChainStep) and other.block == self.block):
            return False
        a, b = self._step(), other._step()
        return self.indices[:-1] == other.indices[:-1] and None not in (a, b) and a[0] == b[0] and abs(a[1] - b[1]) <= 1

    def _pair(self, other):
        """E[x_s x_t] (scalars) or E[x_s x_tᵀ] (vectors) of this step s and ``other``'s t."""
        if not self.pairs_with(other):
            raise M.NoMoment(self.block, self.family.name,
                             "x_s x_t of two steps that are not the same or adjacent in one sequence")
        a, b = self._step(), other._step()
        vector = "outer" in self.stats._fields
        if a[1] == b[1]:
            return self.outer if vector else self.sq
        earlier = self if a[1] < b[1] else other  # E[x_t x_{t+1}ᵀ] is stored at t
        if self.tracker is not None:
            self.tracker.read(self.block, self.family.lag_stat)
        pair = self.ctx.take(getattr(self.stats, self.family.lag_stat), earlier.indices)
        return pair if (earlier is self or not vector) else jnp.swapaxes(pair, -1, -2)


def _deps(src) -> frozenset:
    """The blocks a moment source reads (none for a known value made by ``families.base.fixed``)."""
    return getattr(src, "deps", frozenset())


__all__ = ["ChainStep"]
