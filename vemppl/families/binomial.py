"""Binomial (``total_count = n``, ``probs`` or ``logits``) on ``{0, …, n}``, as NumPyro's.

Probability ``Bin(x | n, p) = C(n, x) p^x (1 − p)^(n−x)``: ``T(x) = x``, ``η = logit p``,
``h(x) = C(n, x)``, ``A(η) = n log(1 + e^η)``, ``E[x] = n σ(η)`` (Bishop, PRML §2.1 and appendix B).

**Where n lives.** ``n`` is fixed, not a natural parameter, yet ``A``, ``h`` and the
sampler need it.  η is therefore a :class:`BinomialNatural` ``(mean, total_count)``: its
leading field pairs with the one statistic (so ``inner``, ``stat_ranks`` and the
autodiff ``∇A`` see only it) and ``total_count`` rides along after it.  The functions that
see only a value or only μ (``log_base_measure``, ``natural_from_mean``) take
``total_count`` as a keyword.  ``expected_log_base_measure`` (hence ``entropy``)
enumerates ``0..n`` and so needs a concrete, untraced n.

**Mode.** ``argmax_x η x + log C(n, x) = ⌊(n + 1) p⌋`` (capped at n): the ratio of successive
terms ``(n − x) p / ((x + 1)(1 − p))`` is ≥ 1 exactly while ``x + 1 ≤ (n + 1) p``.

As a model factor, ``E[log Bin(x | n, p)] = E[x] E[log p] + (n − E[x]) E[log(1 − p)]
+ log C(n, x)``, affine in E[x] and in (E[log p], E[log(1 − p)]): conjugate to a Beta
``probs``.  With a latent value the ``E[log C(n, x)]`` term is left out: it is not closed
form and it cancels against the same term in the value's entropy (so the ELBO should use
``A(η) − ⟨η, μ⟩`` for that block's entropy).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
from jax.scipy.special import gammaln

from .base import ArgSpec, ExpFamily, floored_logs


class BinomialStats(NamedTuple):
    mean: jnp.ndarray  # E[x]


class BinomialNatural(NamedTuple):
    mean: jnp.ndarray  # logit p, paired with BinomialStats.mean
    total_count: jnp.ndarray  # n, fixed


class Binomial(ExpFamily):
    name = "Binomial"
    Stats = BinomialStats
    stat_ranks = (0,)
    support = "count"
    event_rank = 0
    args = ArgSpec(
        positional=("total_count", "probs"),
        groups=(("total_count",), ("probs", "logits")),
        defaults={"total_count": 1},
    )

    @classmethod
    def natural_from_params(cls, total_count=1, probs=None, logits=None):
        if logits is None:
            p = jnp.asarray(probs, dtype=float)
            logits = jnp.log(p) - jnp.log1p(-p)
        logits, n = jnp.broadcast_arrays(jnp.asarray(logits, float), jnp.asarray(total_count, float))
        return BinomialNatural(logits, n)

    @classmethod
    def params_from_natural(cls, eta):
        return {"total_count": eta.total_count, "logits": eta.mean}

    @classmethod
    def log_normalizer(cls, eta):
        return eta.total_count * jax.nn.softplus(eta.mean)

    @classmethod
    def expected_stats(cls, eta):
        return BinomialStats(eta.total_count * jax.nn.sigmoid(eta.mean))

    @classmethod
    def natural_from_mean(cls, mu, total_count):
        p = mu.mean / total_count
        logits, n = jnp.broadcast_arrays(jnp.log(p) - jnp.log1p(-p), jnp.asarray(total_count, float))
        return BinomialNatural(logits, n)

    @classmethod
    def stats(cls, x):
        return BinomialStats(jnp.asarray(x, dtype=float))

    @classmethod
    def log_base_measure(cls, x, total_count):
        return log_choose(total_count, x)

    @classmethod
    def expected_log_base_measure(cls, eta):
        n, n_max = eta.total_count, concrete_max(eta.total_count)
        log_p, log_q = jax.nn.log_sigmoid(eta.mean), jax.nn.log_sigmoid(-eta.mean)
        return (gammaln(n + 1.0) - expected_log_factorial(n, log_p, log_q, n_max)
                - expected_log_factorial(n, log_q, log_p, n_max))

    @classmethod
    def mode(cls, eta):
        n = eta.total_count
        return jnp.minimum(jnp.floor((n + 1.0) * jax.nn.sigmoid(eta.mean)), n)

    @classmethod
    def to_numpyro(cls, eta):
        # NumPyro samples by indexing with n, so it must be an integer there.
        return dist.Binomial(total_count=eta.total_count.astype(int), logits=eta.mean)

    @classmethod
    def expected_log_prob(cls, value, total_count, probs=None, logits=None):
        n = total_count.value  # a random n is not conjugate
        if logits is None:
            log_p, log_q = floored_logs(probs, complement=True)
        else:
            log_p, log_q = jax.nn.log_sigmoid(logits.value), jax.nn.log_sigmoid(-logits.value)
        out = value.mean * log_p + (n - value.mean) * log_q
        # Latent value: see the module docstring for why log C(n, x) is left out.
        return out + log_choose(n, value.value) if value.is_fixed else out

    @classmethod
    def numpyro_dist(cls, total_count=1, probs=None, logits=None):
        # A whole-valued count (data arrive as floats): NumPyro's sampler indexes by it.
        return dist.Binomial(jnp.asarray(total_count).astype(int), probs=probs, logits=logits)


def log_choose(n, x):
    """log C(n, x) via log-gamma."""
    return gammaln(n + 1.0) - gammaln(x + 1.0) - gammaln(n - x + 1.0)


def concrete_max(n) -> int:
    """max(n) as a Python int, for the enumerations below; n must not be traced."""
    try:
        return int(np.max(np.asarray(n)))
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        raise NotImplementedError(
            "E[log x!] under a Binomial enumerates 0..total_count, so total_count must be a "
            "concrete array, not a traced one; inside jit, use A(η) − ⟨η, μ⟩ for the entropy "
            "(the base-measure terms cancel in the ELBO)"
        ) from None


def expected_log_factorial(n, log_p, log_q, n_max):
    """E[log x!] for x ~ Bin(n, p), summing over 0..n_max (≥ every n)."""
    k = jnp.arange(n_max + 1.0).reshape((-1,) + (1,) * max(jnp.ndim(n), jnp.ndim(log_p)))
    log_pmf = log_choose(n, k) + k * log_p + (n - k) * log_q
    terms = jnp.where(k <= n, jnp.exp(log_pmf) * gammaln(k + 1.0), 0.0)
    return jnp.sum(terms, axis=0)
