"""Special functions shared by the families' entropies.

A Gamma-type entropy ``log Γ(a) + (1 − a) ψ(a) + a`` is about ½ log a, but its three terms
are of size a log a: at a = 1e12 (a concentrated posterior) float64 leaves 1e-3 nats of
rounding, at 1e15 a fifth of a nat, which the natural-gradient line search (engine/cavi.py
``_damped``) can read as a rise of the ELBO.  ``gamma_entropy_part`` sums the Stirling
series of that combination instead where a is large.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jax.scipy.special import digamma, gammaln

#: Above it the series (to a⁻⁶, next term ~a⁻⁷/1680 < 1e-17) replaces the direct sum, whose
#: rounding there is ~1e-14 nats.
_SERIES_FROM = 100.0
_HALF_LOG_2PI_E = 0.5 * (1.0 + math.log(2.0 * math.pi))


def gamma_entropy_part(a, psi=None):
    """``log Γ(a) + (1 − a) ψ(a) + a`` to rounding for every a > 0 (the entropy of a
    Gamma(a, 1)); differentiable, with both branches fed arguments in their own range.
    ``psi``, where given, is ψ(a) (a Dirichlet's from its mean parameters, which the engine's
    state holds: a digamma per element less, on LDA's topics the costliest part)."""
    a = jnp.asarray(a)
    big = a >= _SERIES_FROM
    small_a = jnp.where(big, 1.0, a)
    large_a = jnp.where(big, a, _SERIES_FROM)
    psi = digamma(small_a) if psi is None else jnp.where(big, 0.0, psi)
    direct = gammaln(small_a) + (1.0 - small_a) * psi + small_a
    r = 1.0 / large_a
    # log Γ(a) = (a − ½) log a − a + ½ log 2π + 1/12a − 1/360a³ + 1/1260a⁵ − ...,
    # ψ(a) = log a − 1/2a − 1/12a² + 1/120a⁴ − 1/252a⁶ + ...
    tail = r * (-1.0 / 3.0 + r * (-1.0 / 12.0 + r * (-1.0 / 90.0 + r * (1.0 / 120.0 + r * (1.0 / 210.0 - r / 252.0)))))
    series = _HALF_LOG_2PI_E + 0.5 * jnp.log(large_a) + tail
    return jnp.where(big, series, direct)
