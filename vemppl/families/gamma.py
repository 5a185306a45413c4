"""Gamma (shape ``a``, rate ``b``).

Density ``Ga(x | a, b) = b^a x^(a−1) e^(−b x) / Γ(a)``:
``T(x) = (x, log x)``, ``η = (−b, a − 1)``, ``h(x) = 1``,
``A(η) = log Γ(η₂ + 1) − (η₂ + 1) log(−η₁)``,
``E[x] = a/b``, ``E[log x] = ψ(a) − log b`` (Bishop, PRML §2.3.6, B.26–B.31).

As a model factor, ``E[log Ga(x | a, b)] = a E[log b] − E[log Γ(a)] + (a−1)E[log x] − E[b]E[x]``;
with a fixed shape this is affine in (E[x], E[log x]) and in (E[b], E[log b]),
so the Gamma is conjugate to a Normal precision, a Poisson rate and a Gamma rate.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jax.scipy.special import digamma, gammaln

from ._special import gamma_entropy_part
from .base import ArgSpec, ExpFamily


class GammaStats(NamedTuple):
    mean: jnp.ndarray  # E[x]
    log: jnp.ndarray  # E[log x]


class Gamma(ExpFamily):
    name = "Gamma"
    #: what η gives, as ``vemppl updates`` writes it.
    natural_text = "shape `η₂ + 1`, rate `−η₁`"
    Stats = GammaStats
    stat_ranks = (0, 0)
    support = "pos"
    event_rank = 0
    args = ArgSpec(
        positional=("concentration", "rate"),
        groups=(("concentration",), ("rate",)),
        defaults={"rate": 1.0},
    )

    @classmethod
    def natural_from_params(cls, concentration, rate=1.0):
        a, b = jnp.broadcast_arrays(jnp.asarray(concentration, float), jnp.asarray(rate, float))
        return GammaStats(-b, a - 1.0)

    @classmethod
    def params_from_natural(cls, eta):
        return {"concentration": eta.log + 1.0, "rate": -eta.mean}

    @classmethod
    def in_domain(cls, eta):
        return jnp.all(eta.log + 1.0 > 0.0) & jnp.all(-eta.mean > 0.0)

    @classmethod
    def sharpened(cls, eta, c):
        """Shape and rate times c: the same mean, c times less variance (``ExpFamily.sharpened``)."""
        return GammaStats(c * eta.mean, c * (eta.log + 1.0) - 1.0)

    @classmethod
    def log_normalizer(cls, eta):
        a, b = eta.log + 1.0, -eta.mean
        return gammaln(a) - a * jnp.log(b)

    @classmethod
    def expected_stats(cls, eta):
        a, b = eta.log + 1.0, -eta.mean
        return GammaStats(a / b, digamma(a) - jnp.log(b))

    @classmethod
    def entropy(cls, eta, mu=None):
        """H = log Γ(a) + (1 − a) ψ(a) + a − log b, from η alone: A(η) − ⟨η, μ⟩ sums terms
        of size a log a, and at a = 1e12 float64 left 1e-3 nats of rounding (0.2 at 1e15);
        ``gamma_entropy_part`` sums the first three stably."""
        return gamma_entropy_part(eta.log + 1.0) - jnp.log(-eta.mean)

    @classmethod
    def natural_from_mean(cls, mu):
        # Solve ψ(a) − log a = E[log x] − log E[x] by Newton steps (Minka 2002).
        s = jnp.log(mu.mean) - mu.log
        a = (3.0 - s + jnp.sqrt((s - 3.0) ** 2 + 24.0 * s)) / (12.0 * s)
        for _ in range(6):
            from jax.scipy.special import polygamma

            f = jnp.log(a) - digamma(a) - s
            a = a - f / (1.0 / a - polygamma(1, a))
        return GammaStats(-a / mu.mean, a - 1.0)

    @classmethod
    def stats(cls, x):
        x = jnp.asarray(x)
        return GammaStats(x, jnp.log(x))

    @classmethod
    def log_base_measure(cls, x):
        return jnp.zeros_like(jnp.asarray(x, dtype=float))

    @classmethod
    def expected_log_base_measure(cls, eta):
        return jnp.zeros_like(eta.mean)

    @classmethod
    def mode(cls, eta):
        # argmax_x η₁ x + η₂ log x = η₂ / (−η₁): the M-step's τ = g_log / (−g_lin).
        return eta.log / (-eta.mean)

    @classmethod
    def random_start(cls, eta, key):
        # At a draw x of itself, as Gamma(100, 100 / x): mean x, 10% spread.
        p = cls.params_from_natural(eta)
        x = jax.random.gamma(key, p["concentration"]) / p["rate"]
        return cls.natural_from_params(100.0, 100.0 / jnp.maximum(x, 1e-300))

    @classmethod
    def to_numpyro(cls, eta):
        p = cls.params_from_natural(eta)
        return dist.Gamma(p["concentration"], p["rate"])

    @classmethod
    def derived_moment(cls, eta, name):
        a, b = eta.log + 1.0, -eta.mean
        if name == "sq":
            return a * (a + 1.0) / b**2
        if name == "inv_sq":
            # E[x⁻²] = b² / ((a − 1)(a − 2)), finite for a > 2 only: a scale s with q(s) of
            # shape ≤ 2 has E[1/s²] = ∞ (a Normal's expected log density −∞), which the
            # natural-gradient step refuses as a lower ELBO.  The safe shape keeps the
            # unselected branch's gradient finite.
            finite = a > 2.0
            safe = jnp.where(finite, a, 3.0)
            return jnp.where(finite, b**2 / ((safe - 1.0) * (safe - 2.0)), jnp.inf)
        raise KeyError(name)

    @classmethod
    def expected_log_prob(cls, value, concentration, rate):
        a = concentration.value  # a random shape is not conjugate
        return a * rate.log - gammaln(a) + (a - 1.0) * value.log - rate.mean * value.mean

    @classmethod
    def numpyro_dist(cls, concentration, rate=1.0):
        return dist.Gamma(concentration, rate)
