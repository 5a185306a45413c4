"""Special functions shared by the families' entropies.

A Gamma-type entropy ``log Γ(a) + (1 − a) ψ(a) + a`` is about ½ log a, but its three terms
are of size a log a: at a = 1e12 (a concentrated posterior) float64 leaves 1e-3 nats of
rounding, at 1e15 a fifth of a nat, which the natural-gradient line search (engine/cavi.py
``_damped``) can read as a rise of the ELBO.  ``gamma_entropy_part`` sums the Stirling
series of that combination instead where a is large.

``digamma_pos`` and ``gammaln_pos`` are ψ and log Γ for positive arguments (a Dirichlet's or a
Gamma's shapes), by the recurrence up to ``SHIFT`` and the Stirling series there: XLA's ψ and
log Γ (a Lanczos sum of eight divisions and a reflection for x < ½, taken at every element)
cost ~25 ns an element on one CPU core, these 5 and 8 (LDA's topics, [20, 4258], once a sweep
each, and every document's ψ in each local pass).  To ~1e-14 of max(1, |value|) of scipy's
(``tests/test_special_fast.py``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import polygamma

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
    psi = digamma_pos(small_a) if psi is None else jnp.where(big, 0.0, psi)
    direct = gammaln_pos(small_a) + (1.0 - small_a) * psi + small_a
    r = 1.0 / large_a
    # log Γ(a) = (a − ½) log a − a + ½ log 2π + 1/12a − 1/360a³ + 1/1260a⁵ − ...,
    # ψ(a) = log a − 1/2a − 1/12a² + 1/120a⁴ − 1/252a⁶ + ...
    tail = r * (-1.0 / 3.0 + r * (-1.0 / 12.0 + r * (-1.0 / 90.0 + r * (1.0 / 120.0 + r * (1.0 / 210.0 - r / 252.0)))))
    series = _HALF_LOG_2PI_E + 0.5 * jnp.log(large_a) + tail
    return jnp.where(big, series, direct)


#: The recurrence's shift: below it x is raised by ``SHIFT`` (ψ(x) = ψ(x + n) − Σ_{i<n} 1/(x + i),
#: log Γ(x) = log Γ(x + n) − log Π_{i<n} (x + i)); from it the series' first omitted term is
#: under 1e-16 (ψ: 3617/8160 y⁻¹⁶; log Γ: 3617/122400 y⁻¹⁵).
SHIFT = 10
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _raised(x):
    """(x < SHIFT, y = x raised to SHIFT or more, Π_{i<SHIFT}(x + i), its derivative in x)."""
    small = x < SHIFT
    prod, dprod = jnp.ones_like(x), jnp.zeros_like(x)
    for i in range(SHIFT):
        t = x + i
        dprod = dprod * t + prod
        prod = prod * t
    return small, jnp.where(small, x + SHIFT, x), prod, dprod


@jax.custom_jvp
def digamma_pos(x):
    """ψ(x) for x > 0 (NaN elsewhere): module docstring."""
    x = jnp.asarray(x, dtype=jnp.result_type(x, float))
    small, y, prod, dprod = _raised(x)
    r = 1.0 / y
    r2 = r * r
    series = jnp.log(y) - 0.5 * r - r2 * (1 / 12 - r2 * (1 / 120 - r2 * (1 / 252 - r2 * (
        1 / 240 - r2 * (1 / 132 - r2 * (691 / 32760 - r2 / 12))))))
    value = jnp.where(small, series - dprod / prod, series)
    return jnp.where(x > 0, value, jnp.nan)


@jax.custom_jvp
def gammaln_pos(x):
    """log Γ(x) for x > 0 (NaN elsewhere): module docstring."""
    x = jnp.asarray(x, dtype=jnp.result_type(x, float))
    small, y, prod, _ = _raised(x)
    r = 1.0 / y
    r2 = r * r
    series = (y - 0.5) * jnp.log(y) - y + _HALF_LOG_2PI + r * (1 / 12 - r2 * (1 / 360 - r2 * (1 / 1260 - r2 * (
        1 / 1680 - r2 * (1 / 1188 - r2 * (691 / 360360 - r2 / 156))))))
    value = jnp.where(small, series - jnp.log(prod), jnp.where(jnp.isinf(x), jnp.inf, series))
    return jnp.where(x > 0, value, jnp.nan)


@digamma_pos.defjvp
def _digamma_pos_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return digamma_pos(x), polygamma(1, x) * t


@gammaln_pos.defjvp
def _gammaln_pos_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return gammaln_pos(x), digamma_pos(x) * t


def log_known(v):
    """The log of a known value, a 0 floored at the smallest normal float as in ``base.floored_logs``: a
    zero-inflated Poisson's rate ``c[z[n]] * lam`` with c = (0, 1) had log −∞, and a count of 0 (or a
    weight of 0) times it was nan; now 0 · log 0 counts as 0 and a count y > 0 weighs exp(−708 y)."""
    v = jnp.asarray(v)
    return jnp.log(jnp.where(v == 0, jnp.finfo(jnp.result_type(v, float)).tiny, v))
