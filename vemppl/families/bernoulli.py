"""Bernoulli (``probs`` or ``logits``) on ``{0, 1}``, as NumPyro's.

Probability ``Bern(x | p) = p^x (1 − p)^(1−x)``: ``T(x) = x``, ``η = logit p``, ``h(x) = 1``,
``A(η) = log(1 + e^η)`` (softplus), ``E[x] = σ(η)`` (Bishop, PRML §2.1, §2.4;
Winn & Bishop 2005, table 1).

**Mode.** ``argmax_{x ∈ {0,1}} η x = [η > 0]``.

As a model factor, ``E[log Bern(x | p)] = E[x] E[log p] + (1 − E[x]) E[log(1 − p)]``,
affine in E[x] and in (E[log p], E[log(1 − p)]): the Bernoulli is conjugate to a Beta
``probs``; with fixed logits ``log p = log σ(l)`` and ``log(1 − p) = log σ(−l)``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpyro.distributions as dist

from .base import ArgSpec, ExpFamily, floored_logs


class BernoulliStats(NamedTuple):
    mean: jnp.ndarray  # E[x] = P(x = 1)


class Bernoulli(ExpFamily):
    name = "Bernoulli"
    Stats = BernoulliStats
    stat_ranks = (0,)
    support = "bool"
    event_rank = 0
    args = ArgSpec(positional=("probs",), groups=(("probs", "logits"),))

    @classmethod
    def natural_from_params(cls, probs=None, logits=None):
        if logits is not None:
            return BernoulliStats(jnp.asarray(logits, dtype=float))
        p = jnp.asarray(probs, dtype=float)
        return BernoulliStats(jnp.log(p) - jnp.log1p(-p))

    @classmethod
    def params_from_natural(cls, eta):
        return {"logits": eta.mean}

    @classmethod
    def log_normalizer(cls, eta):
        return jax.nn.softplus(eta.mean)

    @classmethod
    def expected_stats(cls, eta):
        return BernoulliStats(jax.nn.sigmoid(eta.mean))

    @classmethod
    def natural_from_mean(cls, mu):
        return BernoulliStats(jnp.log(mu.mean) - jnp.log1p(-mu.mean))

    @classmethod
    def stats(cls, x):
        return BernoulliStats(jnp.asarray(x, dtype=float))

    @classmethod
    def log_base_measure(cls, x):
        return jnp.zeros(jnp.shape(x))

    @classmethod
    def expected_log_base_measure(cls, eta):
        return jnp.zeros_like(eta.mean)

    @classmethod
    def mode(cls, eta):
        return (eta.mean > 0).astype(jnp.int32)

    @classmethod
    def to_numpyro(cls, eta):
        return dist.Bernoulli(logits=eta.mean)

    @classmethod
    def expected_log_prob(cls, value, probs=None, logits=None):
        if logits is None:
            log_p, log_q = floored_logs(probs, complement=True)
        elif logits.is_fixed:
            log_p, log_q = jax.nn.log_sigmoid(logits.value), jax.nn.log_sigmoid(-logits.value)
        else:
            # log p(y | a) = y·a − softplus(a); E[softplus(a)] is not affine in a's moments
            # (the logistic factor is not conjugate): quadrature through `expect`.
            return value.mean * logits.mean - logits.expect(jax.nn.softplus)
        return value.mean * log_p + (1.0 - value.mean) * log_q

    @classmethod
    def numpyro_dist(cls, probs=None, logits=None):
        return dist.Bernoulli(probs=probs, logits=logits)
