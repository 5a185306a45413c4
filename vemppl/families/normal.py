"""Univariate Normal.

Density ``N(x | m, τ) = (2π)^(-1/2) exp(τ m x − τ x²/2 − (τ m² − log τ)/2)``:
``T(x) = (x, x²)``, ``η = (τ m, −τ/2)``, ``h(x) = (2π)^(-1/2)``,
``A(η) = −η₁²/(4η₂) − ½ log(−2η₂)`` (Bishop, PRML §2.4; Winn & Bishop 2005, table 1).

As a model factor, with independent moments of value x, location m and precision τ,
``E[log N(x | m, τ)] = ½E[log τ] − ½ log 2π − ½E[τ](E[x²] − 2E[x]E[m] + E[m²])``,
which is affine in (E[x], E[x²]), in (E[m], E[m²]) and in (E[τ], E[log τ]): the Normal is
conjugate to a Normal location and a Gamma precision.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax.numpy as jnp
import numpyro.distributions as dist

from . import _linalg as la
from .base import ArgSpec, ExpFamily, exact_value, independent

_LOG_2PI = math.log(2.0 * math.pi)  # a Python float: no eager program at import


class NormalStats(NamedTuple):
    mean: jnp.ndarray  # E[x]
    sq: jnp.ndarray  # E[x²]


class Normal(ExpFamily):
    name = "Normal"
    #: what η gives, as ``vemppl updates`` writes it.
    natural_text = "precision `τ = −2η₂`, mean `η₁/τ`"
    gaussian = True
    vector_family = "MvNormal"
    Stats = NormalStats
    stat_ranks = (0, 0)
    support = "real"
    event_rank = 0
    args = ArgSpec(
        positional=("loc", "scale"),
        groups=(("loc",), ("scale", "precision")),
        defaults={"loc": 0.0, "scale": 1.0},
    )
    own_arg_constraints = {"precision": "positive"}

    @classmethod
    def natural_from_params(cls, loc=0.0, scale=None, precision=None):
        tau = _precision(scale, precision)
        loc = jnp.asarray(loc)
        return NormalStats(tau * loc, -0.5 * tau * jnp.ones_like(loc))

    @classmethod
    def params_from_natural(cls, eta):
        tau = -2.0 * eta.sq
        return {"loc": eta.mean / tau, "scale": 1.0 / jnp.sqrt(tau)}

    @classmethod
    def log_normalizer(cls, eta):
        return -(eta.mean**2) / (4.0 * eta.sq) - 0.5 * jnp.log(-2.0 * eta.sq)

    @classmethod
    def expected_stats(cls, eta):
        tau = -2.0 * eta.sq
        m = eta.mean / tau
        return NormalStats(m, m**2 + 1.0 / tau)

    @classmethod
    def entropy(cls, eta, mu=None):
        """½ log(2πe/τ), from η alone: A(η) − ⟨η, μ⟩ cancels two terms of size m²τ/2, and at
        a precision τ ~ 1e20 beside a mean of 0.4 (a natural-gradient step from a wide start)
        the cancellation left tens of nats of rounding, which the line search read as a rise."""
        return 0.5 * (1.0 + _LOG_2PI - jnp.log(-2.0 * eta.sq)) * jnp.ones_like(eta.mean)

    @classmethod
    def mean_cov(cls, eta):
        """(E[x], Var[x]) = (m, 1/τ) from η, without subtracting m² from E[x²]."""
        tau = -2.0 * eta.sq
        return eta.mean / tau, 1.0 / tau

    @classmethod
    def with_mean(cls, eta, m):
        """(η, μ) of q moved to mean ``m`` with its precision held (engine/newton.py)."""
        tau = -2.0 * eta.sq
        return NormalStats(tau * m, eta.sq), NormalStats(m, m**2 + 1.0 / tau)

    @classmethod
    def natural_from_mean(cls, mu):
        var = mu.sq - mu.mean**2
        return NormalStats(mu.mean / var, -0.5 / var)

    @classmethod
    def stats(cls, x):
        x = jnp.asarray(x)
        return NormalStats(x, x**2)

    @classmethod
    def log_base_measure(cls, x):
        return -0.5 * _LOG_2PI * jnp.ones_like(jnp.asarray(x, dtype=float))

    @classmethod
    def expected_log_base_measure(cls, eta):
        return -0.5 * _LOG_2PI * jnp.ones_like(eta.mean)

    @classmethod
    def mode(cls, eta):
        return eta.mean / (-2.0 * eta.sq)

    @classmethod
    def random_start(cls, eta, key):
        # Centred on a draw of itself, 100 times more precise (as the global side of a
        # bilinear term is started).
        return la.sharpened_gaussian_draw(eta, key)

    @classmethod
    def to_numpyro(cls, eta):
        p = cls.params_from_natural(eta)
        return dist.Normal(p["loc"], p["scale"])

    @classmethod
    def expected_log_prob(cls, value, loc, scale=None, precision=None):
        if precision is None:
            # The precision 1/s² of the scale s: a known value's, converted exactly; a latent's
            # E[1/s²] and E[log s] where its family gives them (a Gamma's, in closed form: the
            # location stays conjugate and s takes natural-gradient steps); else reading them
            # raises and the general path evaluates the density at points.  A scale that reads
            # a block the location or the value reads too (``Normal(w[g[n]], exp(w[h[n]]))``)
            # is not independent of them: E[s⁻²(x − m)²] ≠ E[s⁻²] E[(x − m)²], and the general
            # path draws both reads jointly (``scale.value`` raises for a latent).
            shared = set(getattr(scale, "deps", ())) & (set(getattr(loc, "deps", ())) | set(getattr(value, "deps", ())))
            if shared:
                precision_mean, precision_log = 1.0 / scale.value**2, -2.0 * jnp.log(scale.value)
            else:
                precision_mean, precision_log = scale.inv_sq, -2.0 * scale.log
        else:
            for member, other in ((loc, value), (value, loc)):
                if precision.joint_with(member):
                    return _joint_expected_log_prob(precision, member, other)
            precision_mean, precision_log = precision.mean, precision.log
        # E[(x − m)²] as E[x²] − 2E[x m] + E[m²] (affine: the updates' gradient), valued for
        # independent x and m as (x̄ − m̄)² + Var x + Var m (families/base.py, ``exact_value``).
        quad = value.sq - 2.0 * value.prod(loc) + loc.sq
        if independent(value, loc):
            (xm, xv), (mm, mv) = value.spread(0), loc.spread(0)
            centred = (xm - mm) ** 2
            for v in (xv, mv):
                centred = centred if v is None else centred + v
            quad = exact_value(quad, centred)
        return 0.5 * precision_log - 0.5 * _LOG_2PI - 0.5 * precision_mean * quad

    @classmethod
    def numpyro_dist(cls, loc=0.0, scale=None, precision=None):
        tau = _precision(scale, precision)
        return dist.Normal(loc, 1.0 / jnp.sqrt(tau))


def _joint_expected_log_prob(tau, member, other):
    """E[log N(x | m, τ)] when τ and one of x, m (``member``) are one block (a Normal–Gamma)
    and ``other`` is independent of it: ``E[τ(x − m)²] = E[τ m²] − 2 E[o] E[τ m] + E[o²] E[τ]``
    reads the block's joint moments (``times``: E[τm], ``quad``: E[τm²]), affine in its
    statistics; valued centred (the family's ``pair_quad``) where ``other`` is known."""
    quad = tau.quad(member) - 2.0 * other.mean * tau.times(member) + other.sq * tau.mean
    if other.is_fixed:
        centred = tau.pair_quad(other)
        quad = quad if centred is None else exact_value(quad, centred)
    return 0.5 * tau.log - 0.5 * _LOG_2PI - 0.5 * quad


def _precision(scale, precision):
    if precision is not None:
        return jnp.asarray(precision, dtype=float)
    scale = 1.0 if scale is None else scale
    return 1.0 / jnp.asarray(scale, dtype=float) ** 2
