"""The Markov-chain block with a parallel-in-time log-normaliser: ``fit(chain="parallel")``.

The same family as :class:`~vemppl.families.markov_chain.MarkovChain` (same statistics,
natural parameters and mean parameters); only the way ``log Z`` is computed differs.  The
forward algorithm is a product of matrices in the (log, +) semiring,

    log Z = logsumexp_{i,j} ( ψ_0(i) + [M_1 ⊗ M_2 ⊗ … ⊗ M_{T−1}](i, j) ),
    M_t(i, j) = Φ_t(i, j) + ψ_t(j),   (A ⊗ B)(i, j) = logsumexp_k A(i, k) + B(k, j),

and ⊗ is associative, so the product can be taken as a balanced tree: log₂ T levels of
independent K×K products instead of T − 1 dependent steps (the up-sweep of an associative
scan; Blelloch 1990; Särkkä & García-Fernández 2021, "Temporal parallelization of Bayesian
smoothers").  Its gradient is the down-sweep, so ``jax.grad`` of it returns the marginals
with the same log-depth: forward–backward by autodiff, as for the sequential block (GUIDE
§2, "Structured blocks").

The work is K³ per product (T·K³ in all, against T·K² sequentially), so on a CPU, where
the sequential loop is cheap, this is the slower choice; it is for long chains on
hardware with many parallel lanes (a GPU), where a T-step loop leaves most of them idle.
Each product is shifted by its maximum (a constant carried beside it), so the entries
stay in [−∞, 0] and float32 keeps its precision at any T.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from .markov_chain import MarkovChain
from .markov_chain_homogeneous import HomogeneousMarkovChain, per_step


class MarkovChainParallel(MarkovChain):
    name = "MarkovChainParallel"
    algorithm = "parallel"
    variant_of = MarkovChain

    @classmethod
    def log_normalizer(cls, eta):
        psi, phi = eta.onehot, eta.pair
        if psi.shape[-2] == 1:
            return logsumexp(psi[..., 0, :], axis=-1)
        return tree_forward(psi, phi)


class HomogeneousMarkovChainParallel(HomogeneousMarkovChain):
    """The tied chain by the same tree: Φ broadcast to every step, whose gradient is the
    expected transition counts (autodiff sums the per-step marginals)."""

    name = "HomogeneousMarkovChainParallel"
    algorithm = "parallel"
    variant_of = HomogeneousMarkovChain

    @classmethod
    def log_normalizer(cls, eta):
        psi, phi = eta.onehot, eta.pair
        if psi.shape[-2] == 1:
            return logsumexp(psi[..., 0, :], axis=-1)
        return tree_forward(psi, per_step(phi, psi.shape[-2] - 1))


def _log_matmul(a, b):
    """(A ⊗ B)(i, j) = logsumexp_k A(i, k) + B(k, j), batched over leading axes.

    An entry with no path (every term −∞: forbidden transitions, Φ = −∞) is −∞ with a zero
    gradient; ``logsumexp`` itself would differentiate to 0/0 there."""
    x = a[..., :, :, None] + b[..., None, :, :]  # [..., i, k, j]
    top = jax.lax.stop_gradient(jnp.max(x, axis=-2))
    top = jnp.where(jnp.isfinite(top), top, 0.0)
    total = jnp.sum(jnp.exp(x - top[..., None, :]), axis=-2)
    reached = total > 0
    return jnp.where(reached, jnp.log(jnp.where(reached, total, 1.0)) + top, -jnp.inf)


def _shifted(m):
    """m − max m and the shift (held constant under differentiation: log Z is equivariant)."""
    top = jax.lax.stop_gradient(jnp.max(m, axis=(-2, -1), keepdims=True))
    top = jnp.where(jnp.isfinite(top), top, 0.0)
    return m - top, top[..., 0, 0]


def tree_forward(psi, phi):
    """log Z of chains with unary ψ [..., T, K] and pairwise Φ [..., T−1, K, K], T ≥ 2,
    by a balanced tree of (log, +) matrix products along the time axis."""
    mats, shift = _shifted(phi + psi[..., 1:, None, :])  # M_t, t = 1..T−1, on axis −3
    offset = jnp.sum(shift, axis=-1)
    while mats.shape[-3] > 1:
        n = mats.shape[-3]
        even = n - n % 2
        prod, s = _shifted(_log_matmul(mats[..., 0:even:2, :, :], mats[..., 1:even:2, :, :]))
        offset = offset + jnp.sum(s, axis=-1)
        # An odd product left over joins the next level unpaired (no identity padding,
        # whose −∞ entries would give NaN gradients).
        mats = jnp.concatenate([prod, mats[..., even:, :, :]], axis=-3) if n % 2 else prod
    return offset + logsumexp(psi[..., 0, :, None] + mats[..., 0, :, :], axis=(-2, -1))
