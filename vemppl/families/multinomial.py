"""Multinomial (``total_count = n``, ``probs`` or ``logits``) over count vectors, as NumPyro's.

Probability ``Mult(x | n, p) = n! / Π x_k! · Π p_k^(x_k)`` on ``{x ∈ ℕ^K : Σ x = n}``:
``T(x) = x``, ``η = logits`` (``log p`` up to a constant), ``h(x) = (Σx)! / Π x_k!``
(n is read off x), ``A(η) = n logsumexp(η)``, ``E[x] = n softmax(η)`` (Bishop, PRML §2.2 and
appendix B).  As for the Binomial (see ``binomial.py``), n is fixed and rides in
η = :class:`MultinomialNatural` ``(mean, total_count)`` after the one natural parameter;
``natural_from_mean`` recovers it as ``Σ μ``.  ``E[log h]`` is
``log n! − Σ_k E[log x_k!]`` with ``x_k ~ Bin(n, p_k)``, enumerated, so n must be concrete.

As a model factor, ``E[log Mult(x | n, p)] = Σ_k E[x_k] E[log p_k] + log n! − Σ_k log x_k!``,
affine in E[x] and in E[log p]: conjugate to a Dirichlet ``probs``.  With a latent value
the ``−Σ log x_k!`` term is left out (it cancels against the value's entropy).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jax.scipy.special import gammaln, logsumexp

from .base import ArgSpec, ExpFamily, floored_logs
from .binomial import concrete_max, expected_log_factorial


class MultinomialStats(NamedTuple):
    mean: jnp.ndarray  # E[x], [..., K]


class MultinomialNatural(NamedTuple):
    mean: jnp.ndarray  # logits, paired with MultinomialStats.mean
    total_count: jnp.ndarray  # n, fixed, [...]


class Multinomial(ExpFamily):
    name = "Multinomial"
    Stats = MultinomialStats
    stat_ranks = (1,)
    support = "count"
    event_rank = 1
    args = ArgSpec(
        positional=("total_count", "probs"),
        groups=(("total_count",), ("probs", "logits")),
        defaults={"total_count": 1},
    )

    @classmethod
    def natural_from_params(cls, total_count=1, probs=None, logits=None):
        logits = jnp.log(jnp.asarray(probs, float)) if logits is None else jnp.asarray(logits, float)
        n = jnp.asarray(total_count, float)
        batch = jnp.broadcast_shapes(logits.shape[:-1], n.shape)
        return MultinomialNatural(jnp.broadcast_to(logits, batch + logits.shape[-1:]),
                                  jnp.broadcast_to(n, batch))

    @classmethod
    def params_from_natural(cls, eta):
        return {"total_count": eta.total_count, "logits": eta.mean}

    @classmethod
    def log_normalizer(cls, eta):
        return eta.total_count * logsumexp(eta.mean, axis=-1)

    @classmethod
    def expected_stats(cls, eta):
        return MultinomialStats(eta.total_count[..., None] * jax.nn.softmax(eta.mean, axis=-1))

    @classmethod
    def natural_from_mean(cls, mu):
        n = jnp.sum(mu.mean, axis=-1)
        return MultinomialNatural(jnp.log(mu.mean / n[..., None]), n)

    @classmethod
    def stats(cls, x):
        return MultinomialStats(jnp.asarray(x, dtype=float))

    @classmethod
    def log_base_measure(cls, x):
        x = jnp.asarray(x, dtype=float)
        return gammaln(jnp.sum(x, -1) + 1.0) - jnp.sum(gammaln(x + 1.0), -1)

    @classmethod
    def expected_log_base_measure(cls, eta):
        n_max = concrete_max(eta.total_count)
        log_p = jax.nn.log_softmax(eta.mean, axis=-1)
        per_k = expected_log_factorial(eta.total_count[..., None], log_p,
                                       jnp.log1p(-jnp.exp(log_p)), n_max)
        return gammaln(eta.total_count + 1.0) - jnp.sum(per_k, -1)

    @classmethod
    def to_numpyro(cls, eta):
        # NumPyro can only sample inside jit with a static bound on n; give it when known.
        try:
            n_max = concrete_max(eta.total_count)
        except NotImplementedError:
            n_max = None
        return dist.Multinomial(total_count=eta.total_count.astype(int), logits=eta.mean,
                                total_count_max=n_max)

    @classmethod
    def expected_log_prob(cls, value, total_count, probs=None, logits=None):
        n = total_count.value  # a random n is not conjugate
        log_p = floored_logs(probs) if logits is None else jax.nn.log_softmax(logits.value, axis=-1)
        out = jnp.sum(value.mean * log_p, -1) + gammaln(n + 1.0)
        return out - jnp.sum(gammaln(value.value + 1.0), -1) if value.is_fixed else out

    @classmethod
    def numpyro_dist(cls, total_count=1, probs=None, logits=None):
        return dist.Multinomial(total_count, probs=probs, logits=logits)

    @classmethod
    def event_shape(cls, total_count=(), probs=None, logits=None):
        return tuple((probs if logits is None else logits)[-1:])

