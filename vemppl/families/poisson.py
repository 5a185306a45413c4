"""Poisson (``rate = λ``) on the counts ``{0, 1, …}``, as NumPyro's.

Probability ``Poi(x | λ) = λ^x e^(−λ) / x!``: ``T(x) = x``, ``η = log λ``, ``h(x) = 1/x!``,
``A(η) = e^η``, ``E[x] = λ`` (Wainwright & Jordan 2008, §3.2 and table 3.1).  ``E[log h(x)] = −E[log x!]`` has
no closed form, so ``expected_log_base_measure`` (hence ``entropy``) raises: in the ELBO it
cancels against the same term of the value's prior factor, so use ``A(η) − ⟨η, μ⟩``.

**Mode.** ``argmax_x η x − log x! = ⌊λ⌋``: the term ratio ``λ/(x + 1)`` is ≥ 1 while ``x + 1 ≤ λ``.

As a model factor, ``E[log Poi(x | λ)] = E[x] E[log λ] − E[λ] − log x!``, affine in E[x]
and in (E[λ], E[log λ]): the Poisson is conjugate to a Gamma rate.  With a latent value
the ``−E[log x!]`` term is left out, for the cancellation above.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpyro.distributions as dist
from jax.scipy.special import gammaln

from .base import ArgSpec, ExpFamily


class PoissonStats(NamedTuple):
    mean: jnp.ndarray  # E[x]


class Poisson(ExpFamily):
    name = "Poisson"
    Stats = PoissonStats
    stat_ranks = (0,)
    support = "count"
    event_rank = 0
    args = ArgSpec(positional=("rate",), groups=(("rate",),))

    @classmethod
    def natural_from_params(cls, rate):
        return PoissonStats(jnp.log(jnp.asarray(rate, dtype=float)))

    @classmethod
    def params_from_natural(cls, eta):
        return {"rate": jnp.exp(eta.mean)}

    @classmethod
    def log_normalizer(cls, eta):
        return jnp.exp(eta.mean)

    @classmethod
    def expected_stats(cls, eta):
        return PoissonStats(jnp.exp(eta.mean))

    @classmethod
    def natural_from_mean(cls, mu):
        return PoissonStats(jnp.log(mu.mean))

    @classmethod
    def stats(cls, x):
        return PoissonStats(jnp.asarray(x, dtype=float))

    @classmethod
    def log_base_measure(cls, x):
        return -gammaln(jnp.asarray(x, dtype=float) + 1.0)

    @classmethod
    def expected_log_base_measure(cls, eta):
        raise NotImplementedError(
            "E[log x!] under a Poisson has no closed form; it cancels in the ELBO against the "
            "value's Poisson factor, so take the entropy as A(η) − ⟨η, μ⟩"
        )

    @classmethod
    def mode(cls, eta):
        return jnp.floor(jnp.exp(eta.mean))

    @classmethod
    def to_numpyro(cls, eta):
        return dist.Poisson(jnp.exp(eta.mean))

    @classmethod
    def derived_moment(cls, eta, name):
        if name == "sq":  # E[x²] = λ + λ²
            rate = jnp.exp(eta.mean)
            return rate + rate**2
        raise KeyError(name)

    @classmethod
    def expected_log_prob(cls, value, rate):
        out = value.mean * rate.log - rate.mean
        return out - gammaln(value.value + 1.0) if value.is_fixed else out

    @classmethod
    def numpyro_dist(cls, rate):
        return dist.Poisson(rate)
