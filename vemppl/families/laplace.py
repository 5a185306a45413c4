"""Laplace (``loc``, ``scale``) on the real line, as NumPyro's: a likelihood only.

Density ``Lap(y | m, b) = exp(−|y − m| / b) / (2b)``.  Like Student's t it is not an
exponential family in ``m``, so it has no variational role (a latent Laplace is refused by
the compiler, with the Normal scale mixture as the conjugate alternative, Park & Casella
2008).  As a model factor with a random location ``m`` (a Gaussian expression),

    E[log Lap(y | m, b)] = −log 2b − E|y − m| / b,
    E|y − m| = σ √(2/π) exp(−d²/2σ²) + d · erf(d / σ√2),   d = y − E[m],  σ² = Var[m],

the mean of a folded Normal (Leone, Nelson & Nottingham 1961).  It is not affine in the
moments of ``m``, so the blocks under ``m`` get damped natural-gradient updates (the probe
finds this through ``expect``).  ``b`` is fixed or a point parameter (gradient M-step).
Median regression is ``y[n] ~ Laplace(dot(X[n], w), b)``.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpyro.distributions as dist
from jax.scipy.special import erf

from .base import ArgSpec, ExpFamily


class Laplace(ExpFamily):
    name = "Laplace"
    support = "real"
    event_rank = 0
    variational = False
    latent_hint = "give it a Normal prior (conjugate), or write the Laplace as a Normal scale mixture"
    args = ArgSpec(positional=("loc", "scale"), groups=(("loc",), ("scale",)), defaults={"loc": 0.0, "scale": 1.0})

    @classmethod
    def expected_log_prob(cls, value, loc, scale):
        y, b = value.value, scale.point
        if loc.is_fixed:
            dev = jnp.abs(y - loc.value)
        else:
            dev = loc.expect(lambda m, y: jnp.abs(y - m), y, closed_form=folded_normal_mean)
        return -jnp.log(2.0 * b) - dev / b

    @classmethod
    def numpyro_dist(cls, loc=0.0, scale=1.0):
        return dist.Laplace(loc, scale)


def folded_normal_mean(mean, sd, y):
    """E|y − m| for m ~ N(mean, sd²), the mean of a folded Normal.

    |y − mean| where sd = 0."""
    d = y - mean
    safe = jnp.where(sd > 0, sd, 1.0)
    folded = safe * jnp.sqrt(2.0 / jnp.pi) * jnp.exp(-0.5 * (d / safe) ** 2) + d * erf(d / (safe * jnp.sqrt(2.0)))
    return jnp.where(sd > 0, folded, jnp.abs(d))
