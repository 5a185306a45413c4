"""Exponential (``rate = λ``) on the positive reals, as NumPyro's.

Density ``Exp(x | λ) = λ e^(−λ x)``, the Gamma ``Ga(x | 1, λ)``: ``T(x) = (x, log x)`` with
``η = (−λ, 0)`` (Bishop, PRML eq. 2.146 with a = 1).

As a model factor, ``E[log Exp(x | λ)] = E[log λ] − E[λ] E[x]``, affine in E[x] and in
(E[λ], E[log λ]): the Exponential is conjugate to a Gamma rate (waiting times, survival
without censoring).  As the prior of a latent, its conjugate children (a Poisson rate, a
Normal precision, an Exponential rate) give a Gamma posterior, not an Exponential one, so
the block's variational family is the Gamma (``posterior_family``): the prior enters the
CAVI update only through ``η = (−λ, 0)``.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpyro.distributions as dist

from .base import ArgSpec
from .gamma import Gamma, GammaStats


class Exponential(Gamma):
    name = "Exponential"
    posterior_family = "Gamma"
    args = ArgSpec(positional=("rate",), groups=(("rate",),), defaults={"rate": 1.0})

    @classmethod
    def natural_from_params(cls, rate=1.0):
        b = jnp.asarray(rate, float)
        return GammaStats(-b, jnp.zeros_like(b))

    @classmethod
    def expected_log_prob(cls, value, rate):
        return rate.log - rate.mean * value.mean

    @classmethod
    def numpyro_dist(cls, rate=1.0):
        return dist.Exponential(rate)
