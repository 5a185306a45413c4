"""Beta (``concentration1 = α``, ``concentration0 = β``) on the unit interval, as NumPyro's.

Density ``Beta(x | α, β) = x^(α−1) (1 − x)^(β−1) / B(α, β)``:
``T(x) = (log x, log(1 − x))``, ``η = (α − 1, β − 1)``, ``h(x) = 1``,
``A(η) = log Γ(α) + log Γ(β) − log Γ(α + β)``,
``E[log x] = ψ(α) − ψ(α + β)``, ``E[log(1 − x)] = ψ(β) − ψ(α + β)``
(Bishop, PRML §2.1.1 and appendix B; Winn & Bishop 2005, table 1).  It is the K = 2 Dirichlet
on ``(x, 1 − x)``, whose inverse mean map it reuses.

**Mode as used by the M-step.** ``argmax_x g₁ log x + g₂ log(1 − x) = g₁ / (g₁ + g₂)``,
the Beta mode ``(α − 1)/(α + β − 2)``; with ``g = ∂L/∂(E[log x], E[log(1−x)])`` it is
the M-step of a probability parameter.

As a model factor with fixed ``α, β``,
``E[log Beta(x | α, β)] = (α−1)E[log x] + (β−1)E[log(1−x)] − log B(α, β)``, affine in
(E[log x], E[log(1 − x)]): the Beta is conjugate to Bernoulli and Binomial probabilities.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp
import numpyro.distributions as dist
from jax.scipy.special import digamma, gammaln

from ._special import gamma_entropy_part
from .base import ArgSpec, ExpFamily
from .dirichlet import concentration_from_mean_log


class BetaStats(NamedTuple):
    log: jnp.ndarray  # E[log x]
    log1m: jnp.ndarray  # E[log(1 − x)]


class Beta(ExpFamily):
    name = "Beta"
    #: what η gives, as ``vemppl updates`` writes it.
    natural_text = "concentrations `η₁ + 1`, `η₂ + 1`"
    Stats = BetaStats
    stat_ranks = (0, 0)
    support = "unit"
    event_rank = 0
    args = ArgSpec(
        positional=("concentration1", "concentration0"),
        groups=(("concentration1",), ("concentration0",)),
    )

    @classmethod
    def natural_from_params(cls, concentration1, concentration0):
        a, b = jnp.broadcast_arrays(jnp.asarray(concentration1, float),
                                    jnp.asarray(concentration0, float))
        return BetaStats(a - 1.0, b - 1.0)

    @classmethod
    def params_from_natural(cls, eta):
        return {"concentration1": eta.log + 1.0, "concentration0": eta.log1m + 1.0}

    @classmethod
    def sharpened(cls, eta, c):
        """Both concentrations times c: the same mean, the variance times (α₀ + 1)/(cα₀ + 1) with
        α₀ = α + β (c times less where α₀ ≫ 1; ``ExpFamily.sharpened``)."""
        return BetaStats(c * (eta.log + 1.0) - 1.0, c * (eta.log1m + 1.0) - 1.0)

    @classmethod
    def in_domain(cls, eta):
        return jnp.all(eta.log + 1.0 > 0.0) & jnp.all(eta.log1m + 1.0 > 0.0)

    @classmethod
    def log_normalizer(cls, eta):
        return _log_beta(eta.log + 1.0, eta.log1m + 1.0)

    @classmethod
    def expected_stats(cls, eta):
        a, b = eta.log + 1.0, eta.log1m + 1.0
        total = digamma(a + b)
        return BetaStats(digamma(a) - total, digamma(b) - total)

    @classmethod
    def entropy(cls, eta, mu=None):
        """H = g(a) + g(b) − g(a + b) − ψ(a + b), g = ``gamma_entropy_part``, from η alone
        (the Dirichlet's with K = 2): A(η) − ⟨η, μ⟩ left 7e-5 nats of rounding at a = b = 1e10."""
        a, b = eta.log + 1.0, eta.log1m + 1.0
        return gamma_entropy_part(a) + gamma_entropy_part(b) - gamma_entropy_part(a + b) - digamma(a + b)

    @classmethod
    def natural_from_mean(cls, mu):
        alpha = concentration_from_mean_log(jnp.stack([mu.log, mu.log1m], axis=-1))
        return BetaStats(alpha[..., 0] - 1.0, alpha[..., 1] - 1.0)

    @classmethod
    def stats(cls, x):
        x = jnp.asarray(x)
        return BetaStats(jnp.log(x), jnp.log1p(-x))

    @classmethod
    def log_base_measure(cls, x):
        return jnp.zeros_like(jnp.asarray(x, dtype=float))

    @classmethod
    def expected_log_base_measure(cls, eta):
        return jnp.zeros_like(eta.log)

    @classmethod
    def mode(cls, eta):
        # g₁ / (g₁ + g₂); see the module docstring (defined when g₁, g₂ ≥ 0).
        return eta.log / (eta.log + eta.log1m)

    @classmethod
    def to_numpyro(cls, eta):
        return dist.Beta(**cls.params_from_natural(eta))

    @classmethod
    def derived_moment(cls, eta, name):
        a, b = eta.log + 1.0, eta.log1m + 1.0
        if name == "mean":
            return a / (a + b)
        if name == "sq":
            return a * (a + 1.0) / ((a + b) * (a + b + 1.0))
        raise KeyError(name)

    @classmethod
    def expected_log_prob(cls, value, concentration1, concentration0):
        a, b = concentration1.value, concentration0.value  # random α, β are not conjugate
        return (a - 1.0) * value.log + (b - 1.0) * value.log1m - _log_beta(a, b)

    @classmethod
    def numpyro_dist(cls, concentration1, concentration0):
        return dist.Beta(concentration1, concentration0)


def _log_beta(a, b):
    # Not jax's betaln: its asymptotic branch has gradients off by ~1e-6, and ∇A must be ψ.
    return gammaln(a) + gammaln(b) - gammaln(a + b)
