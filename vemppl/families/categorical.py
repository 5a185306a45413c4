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
import numpy as np
import numpyro.distributions as dist
from jax.scipy.special import logsumexp

from .base import ArgSpec, ExpFamily


class CategoricalStats(NamedTuple):
    onehot: jnp.ndarray  # E[onehot(x)], [..., K]


class Categorical(ExpFamily):
    name = "Categorical"
    #: what η gives, as ``vemppl updates`` writes it.
    natural_text = "probabilities `softmax(η)`"
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
    def fixed_exp(cls, fixed):
        """exp(ι − max ι) per element, the factor of ``mean_of_sum`` taken once."""
        e = fixed.onehot
        return jnp.exp(e - jnp.max(e, axis=-1, keepdims=True))

    @classmethod
    def mean_of_sum(cls, fixed_exp, grouped, key):
        """(softmax(η), exact) at η = ι + V[key], ``fixed_exp`` = exp(ι − max ι) ([N, K]) and V =
        ``grouped`` ([G, K]): exp(ι − max ι) ⊙ exp(V − max V)[key], normalised, G×K exps where
        the softmax takes N×K (engine/factored.py).  Each factor is at most 1; ``exact`` is
        False where some row's normaliser is below √tiny of the dtype (its best category far
        below both maxima, where the product loses digits), and the caller then takes the
        softmax of η instead."""
        v = grouped.onehot
        phi = fixed_exp * jnp.exp(v - jnp.max(v, axis=-1, keepdims=True))[key]
        norm = jnp.sum(phi, axis=-1, keepdims=True)
        exact = jnp.min(norm) >= jnp.sqrt(jnp.finfo(phi.dtype).tiny)
        return CategoricalStats(phi / norm), exact

    @classmethod
    def summed_mean(cls, laid_out, grouped, weights, valid):
        """(Σ_l w_gl μ_gl per group g, exact): ``mean_of_sum``'s means summed over each group's
        rows without forming them: ``laid_out`` = exp(ι − max ι) at the rows of each block g of
        rows that share their V ([G, L, K], zero at padding), ``grouped`` = V at each block
        ([G, K]), ``weights`` and ``valid`` [G, L].  With P = exp(V − max V) and
        n_gl = Σ_k P_gk B_glk (μ_gl = P_g ⊙ B_gl / n_gl), the sum is P_g ⊙ Σ_l (w_gl / n_gl) B_gl:
        two batched matrix-vector products per block, no [G, L, K] product written
        (scikit-learn's batch E-step, one document at a time)."""
        v = grouped.onehot
        p = jnp.exp(v - jnp.max(v, axis=-1, keepdims=True))
        norm = jnp.where(valid, jnp.einsum("gk,glk->gl", p, laid_out), 1.0)
        exact = jnp.min(norm) >= jnp.sqrt(jnp.finfo(norm.dtype).tiny)
        return CategoricalStats(p * jnp.einsum("gl,glk->gk", jnp.where(valid, weights / norm, 0.0), laid_out)), exact

    @classmethod
    def summed_log_normalizer(cls, fixed, row_weights, laid_out, grouped, weights, valid):
        """Σ_u c_u A(ι_u + V_g(u)) (``row_weights`` c, ``fixed`` ι [N, K]) on ``summed_mean``'s
        layout: A = max ι_u + max V_g + log n_u, n as there, one product per block and N logs."""
        v = grouped.onehot
        top = jnp.max(v, axis=-1, keepdims=True)
        norm = jnp.where(valid, jnp.einsum("gk,glk->gl", jnp.exp(v - top), laid_out), 1.0)
        return jnp.sum(row_weights * jnp.max(fixed.onehot, axis=-1)) + jnp.sum(weights * (top + jnp.log(norm)))

    @classmethod
    def entropy(cls, eta, mu=None):
        """H = A(η) − ⟨η, μ⟩, with A(η) = η_k − log μ_k for every k (μ_k = exp(η_k − A)).

        At k = argmax η, where μ_k ≥ 1/K and its log is exact to rounding, that is
        max η − log max μ: two max-reductions and one log per batch element, where
        logsumexp takes an exp per category (on LDA's tokens, the ELBO's costliest pass).
        ``mu`` must be ``expected_stats(eta)``, as the engine's state holds it."""
        if mu is None:
            return super().entropy(eta)
        e, p = eta.onehot, mu.onehot
        return jnp.max(e, axis=-1) - jnp.log(jnp.max(p, axis=-1)) - jnp.sum(e * p, axis=-1)

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
        # A probability of 0 (a forbidden transition of a known matrix; an ordinal model's
        # difference of sigmoids at a quadrature point far in the tail) has log −∞, and a weight
        # of 0 times it is nan: floor it at the smallest normal float, so the category keeps
        # weight exp(−708) ≈ 0 and 0 · log 0 counts as 0.  The floor is taken before the log,
        # where its gradient is 0, not after (the log's infinite slope at 0 times 0 is nan).
        if logits is not None:
            log_p = jax.nn.log_softmax(logits.value, axis=-1)
        elif probs.is_fixed:
            p = probs.value
            log_p = jnp.log(jnp.maximum(p, jnp.finfo(jnp.result_type(p, float)).tiny))
        else:
            log_p = probs.log
        if value.is_fixed:
            index = value.value  # an enumerated category arrives as a NumPy arange: keep it concrete
            index = index.astype(np.int32) if isinstance(index, np.ndarray) else jnp.asarray(index).astype(jnp.int32)
            return _take_last(log_p, index)
        return jnp.sum(value.onehot * log_p, axis=-1)

    @classmethod
    def numpyro_dist(cls, probs=None, logits=None):
        return dist.Categorical(probs=probs, logits=logits)


def _take_last(table, index):
    """``out[b] = table[b, index[b]]`` with ``table``'s batch axes broadcast against ``index``.

    Where no batch axis is longer than one in both ``table`` and ``index`` (the usual case:
    a table laid out along the plate or the enumerated categories, indices along the other
    axes) this is a gather of whole rows: the categories go first, ``take`` picks rows by
    ``index``, and each pair of (index axis, table axis), one of them of size one, is merged
    back into one batch axis.  An element-by-element gather reads the same numbers, but its
    gradient is a scatter of one element per index triple: on LDA's
    ``z[i] ~ Categorical(theta[doc[i]])``, read at each enumerated category k, that scatter
    and the [M, K, 3] index array it needs took 9 of the 13 ms of a θ update.  Where some
    axis is long in both, the element gather remains (axes of size one indexed by 0, so the
    broadcast table is never materialised).  A factor read at each enumerated category
    (index = arange along an axis of its own) needs no gather at all: it is a transpose.
    """
    batch = jnp.broadcast_shapes(index.shape, table.shape[:-1])
    n = len(batch)
    table = jnp.reshape(table, (1,) * (n + 1 - table.ndim) + table.shape)
    index = (np if isinstance(index, np.ndarray) else jnp).reshape(index, (1,) * (n - index.ndim) + index.shape)
    axis = _enumerated_axis(index, table.shape)
    if axis is not None:  # index = arange(C) along one axis where the table has size one
        return jnp.moveaxis(jnp.squeeze(table, axis), -1, axis)
    if all(t == 1 or i == 1 for t, i in zip(table.shape[:-1], index.shape)):
        rows = jnp.moveaxis(table, -1, 0)[index]  # [*index axes, *table batch axes]
        pairs = [ax for a in range(n) for ax in (a, n + a)]
        return jnp.reshape(jnp.transpose(rows, pairs), batch)
    axes = tuple(
        jnp.arange(k).reshape((1,) * a + (k,) + (1,) * (n - a - 1)) if k > 1 else 0
        for a, k in enumerate(table.shape[:-1])
    )
    return table[axes + (jnp.broadcast_to(index, batch),)]


def _enumerated_axis(index, shape):
    """The axis along which a concrete ``index`` is ``arange(C)`` (C categories, index of size
    one elsewhere) where ``shape`` (the table's, categories last) has size one; else None."""
    if not isinstance(index, np.ndarray):
        return None
    long = [a for a, n in enumerate(index.shape) if n > 1]
    if len(long) != 1 or index.shape[long[0]] != shape[-1] or shape[long[0]] != 1:
        return None
    return long[0] if np.array_equal(index.ravel(), np.arange(shape[-1])) else None
