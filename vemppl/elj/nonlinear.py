"""Moment sources for nonlinear functions of random expressions (``exp(dot(X[n], b))``,
``sigmoid(eta[g])``, ``lam * exp(x)``, ``a / b``).

An :class:`Apply` stands for ``f(a₁, …, a_k)`` with some ``a_i`` random.  It offers the
moments that have a closed form and raise ``NoMoment`` for the rest; a factor that needs
one of the missing moments is then evaluated by the general path (``elj/general.py``:
Gauss–Hermite quadrature or a fixed-sample Monte Carlo estimate of the family's own log
density).  The closed forms:

* ``E[exp(x)] = exp(m + v/2)`` and ``E[exp(x)²] = exp(2m + 2v)`` for a Gaussian ``x``
  (mean ``m``, variance ``v``; the log-normal moments), not affine in ``x``'s moments, so
  the tracker is told (a natural-gradient block);
* ``E[log exp(x)] = E[x]``, affine: ``y ~ Poisson(exp(η))`` reads ``E[y·η − e^η]``, so the
  Poisson log-link GLM's expected log joint is exact (Wand et al. 2011, §3);
* ``E[log x]`` of ``log(x)`` is the ``log`` moment of ``x`` (a Gamma's statistic);
* a product ``a · b`` of independent random sources (:class:`Product`): ``E[ab] = E[a]E[b]``,
  ``E[(ab)²] = E[a²]E[b²]``, ``E[log ab] = E[log a] + E[log b]``, each affine in either
  side's moments (``Poisson(lam[g] * exp(x[n]))`` stays conjugate in ``lam``).

Which expressions are Gaussian under q is decided here too (:func:`gaussian_linear`): a
linear combination of Gaussian blocks and fixed values, which mean-field q makes exactly
Gaussian with the mean and variance its ``mean`` and ``sq`` give.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from . import affine as A, moments as M
from .cross import Stacked
from .lagged import ChainStep

#: Elementwise functions: name -> (f, log f at a point or None, log(1 − f) at a point or None).
#: The log forms keep ``log σ(x)`` finite where σ(x) rounds to 0 or 1 (|x| > 37 in float64).
ELEMENTWISE = {
    "exp": (jnp.exp, lambda x: x, None),
    "log": (jnp.log, None, None),
    "sigmoid": (jax.nn.sigmoid, jax.nn.log_sigmoid, lambda x: jax.nn.log_sigmoid(-x)),
}
#: Functions of a whole vector (no quadrature over one scalar; Monte Carlo only).
VECTOR = {
    "softmax": lambda x: jax.nn.softmax(x, axis=-1),
    "sum": lambda x: jnp.sum(x, axis=-1),
    "transpose": lambda x: jnp.swapaxes(x, -1, -2),
}
BINARY = {"*": jnp.multiply, "/": jnp.divide, "**": jnp.power}


def is_const(src) -> bool:
    """A known value (data, constant) or a point parameter's point mass (while probing)."""
    return src.is_fixed or (isinstance(src, M.BlockMoments) and src.family is M.PointMass)


def gaussian_linear(src, vector_ok: bool = False) -> bool:
    """True when ``src`` is a linear function of Gaussian blocks and known values, so that
    under mean-field q it is exactly Gaussian with moments ``src.mean``, ``src.sq`` (scalar)
    or ``src.mean``, ``src.outer`` (``vector_ok``: a vector, e.g. inside a ``dot``)."""
    if is_const(src):
        return True
    if isinstance(src, M.MemberMoments):
        return False
    if isinstance(src, ChainStep):
        # One step x[.., t] of a chain of Gaussians: its marginal under q is Gaussian (mean and
        # ``sq``, or ``outer`` for a vector chain); sums of steps read their cross moment (Sum.sq).
        return "sq" in src.stats._fields or vector_ok
    if isinstance(src, M.BlockMoments):
        return bool(getattr(src.family, "gaussian", False)) and (src.family.event_rank == 0 or vector_ok)
    if isinstance(src, Stacked):
        return vector_ok and gaussian_linear(src.e, True)
    if isinstance(src, A.Sum):
        return gaussian_linear(src.a, vector_ok) and gaussian_linear(src.b, vector_ok)
    if isinstance(src, A.Scaled):
        return gaussian_linear(src.a, vector_ok)
    if isinstance(src, A.Dot):
        a, b = src.a, src.b
        return (is_const(a) and gaussian_linear(b, True)) or (is_const(b) and gaussian_linear(a, True))
    if isinstance(src, A.MatVec):
        return vector_ok and gaussian_linear(src.v, True)
    return False


class Apply(A._Derived):
    """``f(*args)`` with at least one random argument; moments in closed form where one is
    listed in the module docstring, else ``NoMoment`` (the general path takes over)."""

    def __init__(self, name: str, fn, args, tracker, elementwise: bool):
        self.name, self.fn, self.args, self.tracker = name, fn, tuple(args), tracker
        self.elementwise = elementwise
        self.deps = frozenset().union(*(a.deps for a in self.args if not a.is_fixed))

    def _missing(self, moment):
        return M.NoMoment(", ".join(sorted(self.deps)), "expression", f"{moment} of {self.name}(...)")

    def _gaussian_arg(self):
        """The one argument when f is a function of one Gaussian scalar, else None."""
        if len(self.args) == 1 and gaussian_linear(self.args[0]):
            return self.args[0]
        return None

    def _lognormal(self, k: float):
        """E[exp(k x)] = exp(k m + k² v / 2) for Gaussian x; None when it does not apply."""
        x = self._gaussian_arg() if self.name == "exp" else None
        if x is None:
            return None
        m = x.mean
        v = jnp.maximum(x.sq - m**2, 0.0)
        if self.tracker is not None:
            for b in x.deps:
                self.tracker.flag(b, "E[exp(x)] = exp(m + v/2) of a Gaussian x (closed form, not affine in its moments)")
        return jnp.exp(k * m + 0.5 * k**2 * v)

    @property
    def mean(self):
        if self.name == "log" and len(self.args) == 1:
            return self.args[0].log
        out = self._lognormal(1.0)
        if out is None:
            raise self._missing("E")
        return out

    @property
    def sq(self):
        out = self._lognormal(2.0)
        if out is None:
            raise self._missing("E[·²]")
        return out

    @property
    def log(self):
        if self.name == "exp" and len(self.args) == 1:
            return self.args[0].mean
        raise self._missing("E[log]")

    @property
    def inv_sq(self):
        """E[exp(x)⁻²] = exp(−2m + 2v): a scale written ``exp(ls)`` with ``ls`` Gaussian (a
        Normal's precision ``exp(−2 ls)``, heteroscedastic ``exp(dot(Z[n], g))``)."""
        out = self._lognormal(-2.0)
        if out is None:
            raise self._missing("E[·⁻²]")
        return out

    @property
    def outer(self):
        raise self._missing("E[outer]")

    @property
    def log1m(self):
        raise self._missing("E[log(1 − ·)]")

    @property
    def logdet(self):
        raise self._missing("E[log det]")

    def expect(self, f, *args, closed_form=None):
        # Quadrature on its two moments would take f(x) as Gaussian, which it is not.
        raise self._missing("E[f]")

    def at_points(self, values):
        """f at the arguments' values, as a known source whose ``log`` / ``log1m`` are taken
        from the pre-image where that is stabler (``log σ(x)``, ``log exp(x) = x``)."""
        out = M.Fixed(self.fn(*values))
        if self.elementwise and len(values) == 1 and self.name in ELEMENTWISE:
            _, log_f, log1m_f = ELEMENTWISE[self.name]
            out = _AtPoint(self.fn(values[0]), values[0], log_f, log1m_f)
        return out


class Product(Apply):
    """``a · b`` for independent random a, b: the moments of a product of independent
    factors (module docstring); a product of two terms sharing a block is an :class:`Apply`."""

    def __init__(self, a, b, tracker):
        super().__init__("*", jnp.multiply, (a, b), tracker, elementwise=True)

    mean = property(lambda s: s.args[0].mean * s.args[1].mean)
    sq = property(lambda s: s.args[0].sq * s.args[1].sq)
    log = property(lambda s: s.args[0].log + s.args[1].log)


class _AtPoint(M.Fixed):
    """A value of ``f(x)`` at points x, with ``log f`` and ``log(1 − f)`` from x."""

    def __init__(self, value, pre, log_f, log1m_f):
        super().__init__(value)
        self._pre, self._log_f, self._log1m_f = pre, log_f, log1m_f

    @property
    def log(self):
        return self._log_f(self._pre) if self._log_f is not None else jnp.log(self._value)

    @property
    def log1m(self):
        return self._log1m_f(self._pre) if self._log1m_f is not None else jnp.log1p(-self._value)


def call(name: str, args, tracker):
    """The source of ``name(*args)`` with a random argument, or None when ``name`` is not a
    function of values (the caller reports it)."""
    if name in ELEMENTWISE and len(args) == 1:
        return Apply(name, ELEMENTWISE[name][0], args, tracker, elementwise=True)
    if name in VECTOR and len(args) == 1:
        return Apply(name, VECTOR[name], args, tracker, elementwise=False)
    return None


def binary(op: str, a, b, tracker):
    """The source of ``a op b`` (``*``, ``/``, ``**``) where neither side is a known scale of
    the other (those are ``moments.Scaled``), or None for another operator."""
    if op == "*" and not a.is_fixed and not b.is_fixed and not (a.deps & b.deps):
        return Product(a, b, tracker)
    if op in BINARY:
        return Apply(op, BINARY[op], (a, b), tracker, elementwise=True)
    return None


__all__ = ["Apply", "Product", "binary", "call", "gaussian_linear", "is_const"]
