"""Inverse gamma (shape ``a``, rate ``b``) on the positive reals, as NumPyro's: a likelihood.

Density ``IG(y | a, b) = b^a y^(−a−1) e^(−b/y) / Γ(a)``, the law of 1/x for x ~ Ga(a, b).
As a model factor with a fixed shape,

    E[log IG(y | a, b)] = a E[log b] − log Γ(a) − (a + 1) log y − E[b] / y,

affine in (E[b], E[log b]): the inverse gamma is conjugate to a Gamma rate (Bishop, PRML
§2.3.6, for the reciprocal).  As the prior of a Normal's variance it is the Gamma prior
on the precision, which is how the language writes it: ``Normal(m, precision = tau)``
with ``tau ~ Gamma(a, b)`` is the same model, and conjugate; so a latent inverse gamma is
refused by the compiler with that hint, like any likelihood-only family.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpyro.distributions as dist
from jax.scipy.special import gammaln

from .base import ArgSpec, ExpFamily


class InverseGamma(ExpFamily):
    name = "InverseGamma"
    support = "pos"
    event_rank = 0
    variational = False
    latent_hint = "draw the reciprocal from a Gamma (a precision: Normal(m, precision = tau), tau ~ Gamma(a, b)), which is conjugate"
    args = ArgSpec(
        positional=("concentration", "rate"),
        groups=(("concentration",), ("rate",)),
        defaults={"rate": 1.0},
    )

    @classmethod
    def expected_log_prob(cls, value, concentration, rate):
        y, a = value.value, concentration.value  # a random shape is not conjugate
        return a * rate.log - gammaln(a) - (a + 1.0) * jnp.log(y) - rate.mean / y

    @classmethod
    def numpyro_dist(cls, concentration, rate=1.0):
        return dist.InverseGamma(concentration, rate)
