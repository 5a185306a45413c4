"""Moment sources for latent blocks and for expressions of them.

The expected log joint is written in terms of moments (GUIDE §2).  A factor reads the
moments of its arguments by attribute (``loc.mean``, ``precision.logdet``); here those
attributes come from

* :class:`BlockMoments`: a latent block's mean parameters ``μ_j`` (its ``Stats``), which
  the CAVI update differentiates, or moments derived nonlinearly from its ``η_j``;
* ``elj/affine.py`` (``Sum``, ``Scaled``, ``Dot``, ``MatVec``): moments of affine expressions of
  independent quantities (``m[j] + dot(W[j], h[n])``), which stay multi-affine in the
  blocks' mean parameters, so factor analysis and regression remain conjugate.

Every source carries ``deps``, the blocks it reads; a product of two sources that share
a block would not be affine, and is reported through the :class:`Tracker`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..families._linalg import bdot, broadcast_cross, broadcast_outer, sd_of  # noqa: F401  (M.sd_of)
from ..families.base import MomentSource
from ..families.mean_map import natural_at
from .point_mass import PointMass, PointMassStats, Tracker  # noqa: F401  (read as M.PointMass, M.Tracker)


_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite_e.hermegauss(32)
_GH_WEIGHTS = _GH_WEIGHTS / _GH_WEIGHTS.sum()


def gaussian_expect(src, f, tracker, why, *args, closed_form=None):
    """E[f(a, *args)] for a random scalar a with moments E[a], E[a²], taking a as Gaussian
    (exact when a is a linear function of Gaussian blocks): 32-point Gauss–Hermite, or
    ``closed_form(mean, sd, *args)`` when the family gives one (quadrature of a kink such as
    |y − a| is off by 1%).

    ``args`` are known arrays (data, constants, point parameters) broadcast against a."""
    m = src.mean
    sd = sd_of(m, src.sq)
    if closed_form is not None:  # the reason `vemppl check` prints names what is computed
        why = why.replace("expectation by quadrature", f"expectation in closed form, {_summary(closed_form)}")
    if tracker is not None:
        for b in src.deps:
            tracker.flag(b, why)
    if closed_form is not None:
        return closed_form(m, sd, *args)
    if args:
        shape = jnp.broadcast_shapes(jnp.shape(m), *(jnp.shape(a) for a in args))
        m, sd = jnp.broadcast_to(m, shape), jnp.broadcast_to(sd, shape)
        args = tuple(jnp.broadcast_to(a, shape)[..., None] for a in args)
    pts = m[..., None] + sd[..., None] * _GH_NODES
    return jnp.sum(f(pts, *args) * _GH_WEIGHTS, axis=-1)


def _summary(fn) -> str:
    """The first line of ``fn``'s docstring, without its full stop (its name where it has none)."""
    doc = (fn.__doc__ or "").strip().splitlines()
    return doc[0].rstrip(".") if doc else fn.__name__


class Fixed(MomentSource):
    """A known array (data, constant, point parameter, enumerated category).

    Concrete NumPy values stay NumPy, so sizes and loop bounds remain concrete while the
    expected log joint is traced by JAX.
    """

    deps: frozenset = frozenset()

    def __init__(self, value):
        self._value = value if isinstance(value, jax.Array) else np.asarray(value)


#: How a derived moment is named in the plan's reasons (``vemppl check``): E[x²], E[1/x²].
_SHOWN = {"sq": "x²", "inv_sq": "1/x²", "outer": "x xᵀ"}


class BlockMoments(MomentSource):
    """Moments of (an indexed view of) a latent block.

    ``stats`` is the block's ``Stats`` NamedTuple, already indexed; ``eta`` the matching
    natural parameters (for derived moments); ``index`` is applied lazily to ``eta``.
    """

    def __init__(self, block: str, family, stats, eta, tracker: Tracker | None):
        self.block, self.family, self.stats, self.eta = block, family, stats, eta
        self.tracker = tracker
        self.deps = frozenset({block})

    @property
    def is_fixed(self):
        return False

    @property
    def value(self):
        # A point parameter's value where a factor needs a fixed one (a Gamma's shape, a
        # Dirichlet's α): read as ``point``, a nonlinear read, so its M-step is gradient.
        return self.point

    def _get(self, name):
        if self.tracker is not None:
            self.tracker.read(self.block, name)
        if name in self.stats._fields:
            return getattr(self.stats, name)
        if self.tracker is not None:
            self.tracker.flag(self.block, f"E[{_SHOWN.get(name, name)}] is not a sufficient statistic of {self.family.name}")
        try:
            # η as a function of μ, so ∇_μ L sees the path through this moment (families/mean_map.py).
            return self.family.derived_moment(self._natural(), name)
        except KeyError:
            raise _NoMoment(self.block, self.family.name, name) from None

    def _natural(self):
        if self.family is PointMass or not hasattr(self.family, "expected_stats"):
            return self.eta
        return natural_at(self.family, self.stats, self.eta)

    mean = property(lambda s: s._get("mean"))
    sq = property(lambda s: s._get("sq"))
    outer = property(lambda s: s._get("outer"))
    log = property(lambda s: s._get("log"))
    log1m = property(lambda s: s._get("log1m"))
    logdet = property(lambda s: s._get("logdet"))
    onehot = property(lambda s: s._get("onehot"))

    @property
    def inv_sq(self):
        # A point parameter's from its value (a nonlinear read: a gradient M-step, as a scale
        # always took); a latent's where its family derives it (a Gamma's, in closed form).
        return 1.0 / self.point**2 if self.family is PointMass else self._get("inv_sq")

    # The centred moments (families/base.py) from η where the family gives them (read
    # around the tracker: they enter values only); else the moments the affine form reads.

    #: True when ``eta`` is the natural parameter of ``stats``' own distribution (the
    #: blocks of a state: ``block_entries``); not for an element of a joint MvNormal, a
    #: point parameter's M-step or the predictive density's zero statistics.
    eta_matches = False

    def spread(self, rank: int):
        if self.eta_matches and hasattr(self.family, "mean_cov"):
            return self.family.mean_cov(self.eta)
        return MomentSource.spread(self, rank)  # the moments the affine form reads anyway

    def quad_form(self, d, cov=None):
        if self.eta_matches and hasattr(self.family, "quad_form"):
            return self.family.quad_form(self.eta, d, cov)
        return MomentSource.quad_form(self, d, cov)

    def expect(self, f, *args, closed_form=None):
        return gaussian_expect(self, f, self.tracker, "a nonlinear function of it (expectation by quadrature)", *args,
                               closed_form=closed_form)

    @property
    def point(self):
        # Only a point parameter (a point mass while probing) has a value to plug in; its
        # M-step then takes gradient steps, since the factor reads it nonlinearly.
        if self.family is not PointMass:
            raise _NotFixed(self.block)
        if self.tracker is not None:
            self.tracker.read(self.block, "value")
            self.tracker.flag(self.block, "a nonlinear function of its value")
        return self.stats.mean


class Entry(tuple):
    """A block's entry in the table of blocks, ``(family, stats, eta)``, that says whether
    ``stats`` are ``expected_stats(eta)`` (``matched``: then a factor may value its terms
    from η, families/base.py ``exact_value``)."""

    def __new__(cls, family, stats, eta, matched: bool):
        self = super().__new__(cls, (family, stats, eta))
        self.matched = matched
        return self


class Member(Entry):
    """The entry of a joint block's member in the table of blocks: ``(family, stats, eta)``
    of the whole block, with the block's name and the member's role (``loc``, ``precision``
    of a Normal–Wishart).  It unpacks as a plain entry; the evaluator reads it as a member."""

    def __new__(cls, family, stats, eta, block: str, role: str, matched: bool = False):
        self = super().__new__(cls, family, stats, eta, matched)
        self.block, self.role = block, role
        return self


def block_entries(block, family, stats, eta, matched: bool = True) -> dict:
    """The table entries of one plan block: its name, or each member of a joint block.
    ``matched``: ``stats`` are the mean parameters of ``eta`` (a state's blocks)."""
    if not block.members:
        return {block.name: Entry(family, stats, eta, matched)}
    return {node: Member(family, stats, eta, block.name, role, matched) for role, node in block.members}


class MemberMoments(BlockMoments):
    """One member (by role) of a joint block, at an element (``where``: the index
    expressions, ``idx`` their arrays).  Moments the family lists for the role are
    statistics; joint moments with another member at the same element are statistics too
    (``E[Λμ]``, ``E[μᵀΛμ]``); anything else is derived from η and flagged as nonlinear."""

    def __init__(self, block, family, stats, eta, tracker, role, where=(), idx=()):
        super().__init__(block, family, stats, eta, tracker)
        self.role, self.where, self.idx = role, where, idx

    def _get(self, name):
        field = self.family.member_stats[self.role].get(name)
        if self.tracker is not None:
            self.tracker.read(self.block, f"{self.role}.{name}")
        if field is not None:
            return getattr(self.stats, field)
        if self.tracker is not None:
            self.tracker.flag(self.block, f"E[{name}] of its {self.role} is not a statistic of {self.family.name}")
        try:
            return self.family.member_moment(self.eta, self.role, name)
        except KeyError:
            raise _NoMoment(self.block, self.family.name, name) from None

    def _untracked(self, name):
        field = self.family.member_stats[self.role].get(name)
        return getattr(self.stats, field) if field is not None else self.family.member_moment(self.eta, self.role, name)

    def spread(self, rank: int):
        m = self._untracked("mean")
        return m, self._untracked("outer") - m[..., :, None] * m[..., None, :]

    def quad_form(self, d, cov=None):
        return MomentSource.quad_form(_Known(self._untracked("mean")), d, cov)

    def pair_quad(self, other):
        """E[(x − μ)ᵀΛ(x − μ)] with this member Λ, μ its pair and ``other`` the independent x
        (None where η does not match the statistics)."""
        return self.family.pair_quad(self.eta, *other.spread(1)) if self.eta_matches else None

    def joint_with(self, v) -> bool:
        return (isinstance(v, MemberMoments) and v.block == self.block and v.where == self.where
                and ("times", self.role, v.role) in self.family.joint_stats)

    def _joint(self, op, v, independent):
        if self.joint_with(v):
            field = self.family.joint_stats[(op, self.role, v.role)]
            if self.tracker is not None:
                self.tracker.read(self.block, field)
            return getattr(self.stats, field)
        if isinstance(v, MemberMoments) and v.block == self.block:
            # Two members of one block at elements that may coincide: not affine in its statistics.
            if self.tracker is not None:
                self.tracker.flag(self.block, "its members are read together at different elements")
        return independent(v)

    def times(self, v):
        return self._joint("times", v, super().times)

    def quad(self, v):
        return self._joint("quad", v, super().quad)


class _Known(MomentSource):
    """A moment already computed, as a source (for the base class's ``quad_form``)."""

    is_fixed = property(lambda s: False)
    mean = property(lambda s: s._value)


class _NotFixed(Exception):
    def __init__(self, block):
        super().__init__(f"'{block}' is random where a fixed value is needed")
        self.block = block


class _NoMoment(Exception):
    def __init__(self, block, family, name):
        super().__init__(f"the moment E[{name}] of '{block}' ({family}) is not available")
        self.block, self.family, self.name = block, family, name


NotFixed, NoMoment = _NotFixed, _NoMoment
