"""A chain of categorical latents with first-order Markov dependence, as one block.

``q(z_0, …, z_{T−1}) ∝ exp(Σ_t ψ_t(z_t) + Σ_t Φ_t(z_{t−1}, z_t))``: sufficient statistics
``T(z) = (onehot(z_t))_t, (onehot(z_{t−1}) onehot(z_t)ᵀ)_t``, natural parameters the unary
and pairwise log-potentials ``η = (ψ, Φ)``, and log-normaliser the forward algorithm in
log space.  Its gradient gives the mean parameters, the marginals ``E[onehot(z_t)]`` and
the pairwise marginals ``E[z_{t−1} z_tᵀ]``: forward–backward is ``jax.grad`` of the
forward pass (Beal 2003, ch. 3; BayesPy's ``CategoricalMarkovChain``; GUIDE §2,
"Structured blocks").  Leading axes are independent chains (one per sequence).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jax.scipy.special import logsumexp

from .base import ArgSpec, ExpFamily


class ChainStats(NamedTuple):
    onehot: jnp.ndarray  # E[onehot(z_t)], [..., T, K]
    pair: jnp.ndarray  # E[onehot(z_{t-1}) onehot(z_t)ᵀ], [..., T-1, K, K]


class MarkovChain(ExpFamily):
    name = "MarkovChain"
    structured = True
    Stats = ChainStats
    stat_ranks = (2, 3)  # the chain's time axis is part of the event
    support = "cat"
    event_rank = 1
    args = ArgSpec(positional=(), groups=())

    @classmethod
    def log_normalizer(cls, eta):
        psi, phi = eta.onehot, eta.pair

        def step(alpha, inputs):
            phi_t, psi_t = inputs
            return logsumexp(alpha[..., :, None] + phi_t, axis=-2) + psi_t, None

        if psi.shape[-2] == 1:
            return logsumexp(psi[..., 0, :], axis=-1)
        xs = (jnp.moveaxis(phi, -3, 0), jnp.moveaxis(psi[..., 1:, :], -2, 0))
        alpha, _ = jax.lax.scan(step, psi[..., 0, :], xs)
        return logsumexp(alpha, axis=-1)

    @classmethod
    def expected_stats(cls, eta):
        grad = jax.grad(lambda e: jnp.sum(cls.log_normalizer(e)))
        return ChainStats(*grad(eta))

    @classmethod
    def expected_log_base_measure(cls, eta):
        return jnp.zeros(eta.onehot.shape[:-2])

    @classmethod
    def mode(cls, eta):
        """The most probable path (Viterbi) is not needed by the M-step; marginal argmax."""
        return jnp.argmax(cls.expected_stats(eta).onehot, axis=-1)

    @classmethod
    def to_numpyro(cls, eta):
        """The per-step marginals q(z_t), batched over the chain (the joint has no NumPyro class)."""
        return dist.Categorical(probs=cls.expected_stats(eta).onehot)

    @classmethod
    def tidy_natural(cls, eta):
        return eta
