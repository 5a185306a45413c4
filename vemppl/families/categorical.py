"""Categorical over ``{0, …, K−1}`` (``probs`` or ``logits``), as NumPyro's.

Probability ``Cat(x | p) = Π_k p_k^[x = k]``: ``T(x) = onehot(x) ∈ {0,1}^K``,
``η = logits`` (``log p`` up to an additive constant), ``h(x) = 1``,
``A(η) = logsumexp(η)``, ``E[onehot(x)] = softmax(η)`` (Bishop, PRML §2.2; Winn & Bishop 2005,
table 1).  η is over-parameterised: η and η + c give the same q; ``natural_from_mean``
returns the representative with ``A(η) = 0``, i.e. ``log p``.  ``stats`` needs K,
which an integer value does not carry, so it takes ``num_categories``.

**Mode.** ``argmax_x η_x``, returned as the index (the value's own type).

As a model factor, ``E[log Cat(x | p)] = Σ_k E[onehot(x)_k] E[log p_k]``, affine in
E[onehot(x)] and in E[log p]: the Categorical is conjugate to a Dirichlet ``probs``;
with fixed logits ``E[log p] = log_softmax(logits)``.  A fixed integer value picks its
entry of ``log p``; a latent value weights them by its responsibilities.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jax.scipy.special import logsumexp

from .base import ArgSpec, ExpFamily


class CategoricalStats(NamedTuple):
    onehot: jnp.ndarray  # E[onehot(x)], [..., K]


class Categorical(ExpFamily):
    name = "Categorical"
    Stats = CategoricalStats
    stat_ranks = (1,)
    support = "cat"
    event_rank = 0
    args = ArgSpec(positional=("probs",), groups=(("probs", "logits"),))

    @classmethod
    def natural_from_params(cls, probs=None, logits=None):
        if logits is not None:
            return CategoricalStats(jnp.asarray(logits, dtype=float))
        return CategoricalStats(jnp.log(jnp.asarray(probs, dtype=float)))

    @classmethod
    def params_from_natural(cls, eta):
        return {"logits": eta.onehot}

    @classmethod
    def log_normalizer(cls, eta):
        return logsumexp(eta.onehot, axis=-1)

    @classmethod
    def expected_stats(cls, eta):
        return CategoricalStats(jax.nn.softmax(eta.onehot, axis=-1))

    @classmethod
    def natural_from_mean(cls, mu):
        return CategoricalStats(jnp.log(mu.onehot))

    @classmethod
    def stats(cls, x, num_categories):
        return CategoricalStats(jax.nn.one_hot(x, num_categories, dtype=float))

    @classmethod
    def log_base_measure(cls, x):
        return jnp.zeros(jnp.shape(x))

    @classmethod
    def expected_log_base_measure(cls, eta):
        return jnp.zeros(eta.onehot.shape[:-1])

    @classmethod
    def mode(cls, eta):
        return jnp.argmax(eta.onehot, axis=-1)

    @classmethod
    def to_numpyro(cls, eta):
        return dist.Categorical(logits=eta.onehot)

    @classmethod
    def expected_log_prob(cls, value, probs=None, logits=None):
        log_p = probs.log if logits is None else jax.nn.log_softmax(logits.value, axis=-1)
        if value.is_fixed:
            return _take_last(log_p, jnp.asarray(value.value).astype(jnp.int32))
        return jnp.sum(value.onehot * log_p, axis=-1)

    @classmethod
    def numpyro_dist(cls, probs=None, logits=None):
        return dist.Categorical(probs=probs, logits=logits)


def _take_last(table, index):
    """``out[b] = table[b, index[b]]`` with ``table``'s batch axes broadcast against ``index``.

    A gather whose axes of size one are indexed by 0, so neither the broadcast table nor
    its gradient (a scatter into the table's own shape) is materialised: LDA's
    ``word[i] ~ Categorical(beta[z[i]])`` reads a [1, K, V] table with M token indices.
    """
    batch = jnp.broadcast_shapes(index.shape, table.shape[:-1])
    table = jnp.reshape(table, (1,) * (len(batch) + 1 - table.ndim) + table.shape)
    axes = tuple(
        jnp.arange(n).reshape((1,) * a + (n,) + (1,) * (len(batch) - a - 1)) if n > 1 else 0
        for a, n in enumerate(table.shape[:-1])
    )
    return table[axes + (jnp.broadcast_to(index, batch),)]
