"""A Markov chain whose transitions are the same at every step, as one block.

``q(z_0, …, z_{T−1}) ∝ exp(Σ_t ψ_t(z_t) + Σ_{t≥1} Φ(z_{t−1}, z_t))``: one pairwise potential
Φ [..., K, K] for all steps, so the pairwise statistic is the expected transition count
``Σ_t onehot(z_{t−1}) onehot(z_t)ᵀ`` and the natural parameters are ``η = (ψ [..., T, K],
Φ [..., K, K])``.  It is the family :class:`~vemppl.families.markov_chain.MarkovChain` takes
when every Φ_t is equal, with the T − 1 equal copies collapsed: the compiler picks it when the
only factor that reads two steps of the chain is its transition ``z[t] ~ Categorical(A[z[t-1]])``
over every step, with parameters that do not depend on t (``compiler/compile.py``,
``_is_homogeneous_chain``), as in every HMM of LANGUAGE.md.

Why a family of its own: the general chain holds Φ_t and q(z_{t−1}, z_t) for every t, arrays of
T·K² entries written and read on every sweep (an HMM at T = 100k, K = 4: 12.8 MB each, about a
third of the sweep; benchmarks/README.md), though the transition update reads only their sum
over t.  Here the forward and backward loops read the one K×K matrix, and the backward loop
adds up the pairwise marginals as it goes (Beal 2003, ch. 3: the expected counts are what
the VB M-step for the transitions needs; Bishop, PRML §13.2.1, eq. 13.43).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from .markov_chain import ChainStats, MarkovChain, _backward, _forward


class HomogeneousMarkovChain(MarkovChain):
    name = "HomogeneousMarkovChain"
    stat_ranks = (2, 2)  # the pairwise statistic is summed over the chain's steps
    tied_pairs = True

    @classmethod
    def log_normalizer(cls, eta):
        psi, phi = eta.onehot, eta.pair
        if psi.shape[-2] == 1:
            return logsumexp(psi[..., 0, :], axis=-1)
        return tied_forward_backward(psi, phi)


def per_step(phi, steps):
    """The tied Φ [..., K, K] as the general chain's Φ_t [..., steps, K, K]."""
    return jnp.broadcast_to(phi[..., None, :, :], phi.shape[:-2] + (steps,) + phi.shape[-2:])


# ---- forward–backward with one transition matrix ---------------------------------------
# The same scaled recursions as markov_chain.py (Rabiner 1989, §V.A), with the K×K matrix a
# loop constant instead of a sliced input, and Σ_t q(z_{t−1}, z_t) carried by the backward
# loop.  The log-space fallback (a step's normaliser below √tiny) is the general chain's,
# on Φ broadcast to every step: it runs only when the scaled pass fails.


def _forward_tied(psi, phi):
    m = jnp.max(psi, axis=-1, keepdims=True)
    s = jnp.max(phi, axis=(-2, -1), keepdims=True)
    e, a = jnp.exp(psi - m), jnp.exp(phi - s)
    steps = psi.shape[-2] - 1
    shift = jnp.sum(m, axis=(-2, -1)) + steps * s[..., 0, 0]

    def step(alpha, e_t):
        alpha = jnp.einsum("...i,...ij->...j", alpha, a) * e_t
        c = jnp.sum(alpha, axis=-1)
        alpha = alpha / c[..., None]
        return alpha, (alpha, c)

    c0 = jnp.sum(e[..., 0, :], axis=-1)
    alpha0 = e[..., 0, :] / c0[..., None]
    _, (alphas, cs) = jax.lax.scan(step, alpha0, jnp.moveaxis(e[..., 1:, :], -2, 0))
    alphas = jnp.moveaxis(jnp.concatenate([alpha0[None], alphas], axis=0), 0, -2)
    cs = jnp.moveaxis(jnp.concatenate([c0[None], cs], axis=0), 0, -1)
    log_z = jnp.sum(jnp.log(cs), axis=-1) + shift
    ok = jnp.all(cs >= jnp.sqrt(jnp.finfo(cs.dtype).tiny)) & jnp.all(jnp.isfinite(log_z))
    return log_z, alphas, cs, e, a, ok


def _backward_tied(alphas, cs, e, a):
    """β̂_{t−1} = A (e_t ∘ β̂_t) / c_t in the loop; after it, vectorised, the expected counts
    Σ_t α̂_{t−1} ∘ A ∘ (e_t ∘ β̂_t / c_t)ᵀ / n_t, each step's joint normalised by its total
    n_t = α̂_{t−1} · β̂_{t−1}: A ∘ (α̂ᵀ G), one [K, T]·[T, K] product (no [T, K, K] array)."""

    def step(beta, inputs):
        e_t, c_t = inputs
        beta = jnp.einsum("...ij,...j->...i", a, e_t * beta) / c_t[..., None]
        return beta, beta

    beta_last = jnp.ones_like(alphas[..., 0, :])
    inputs = (jnp.moveaxis(e[..., 1:, :], -2, 0), jnp.moveaxis(cs[..., 1:], -1, 0))
    _, betas = jax.lax.scan(step, beta_last, inputs, reverse=True)
    betas = jnp.moveaxis(jnp.concatenate([betas, beta_last[None]], axis=0), 0, -2)
    unary = alphas * betas
    totals = jnp.sum(unary, axis=-1, keepdims=True)  # each 1 up to the loops' rounding
    g = e[..., 1:, :] * betas[..., 1:, :] / cs[..., 1:, None]
    counts = a * jnp.einsum("...ti,...tj->...ij", alphas[..., :-1, :] / totals[..., :-1, :], g)
    return unary / totals, counts


def _log_space_counts(psi, phi):
    unary, pair = _backward(psi, per_step(phi, psi.shape[-2] - 1), _forward(psi, per_step(phi, psi.shape[-2] - 1))[1])
    return unary, jnp.sum(pair, axis=-3)


@jax.custom_vjp
def tied_forward_backward(psi, phi):
    """log Z of the chain with unary ψ [..., T, K] and one pairwise Φ [..., K, K]; its
    vector–Jacobian product gives q(z_t) and the expected counts Σ_t q(z_{t−1}, z_t)."""
    return _tied_fwd(psi, phi)[0]


def _tied_fwd(psi, phi):
    log_z, alphas, cs, e, a, ok = _forward_tied(psi, phi)
    log_z = jax.lax.cond(ok, lambda: log_z, lambda: _forward(psi, per_step(phi, psi.shape[-2] - 1))[0])
    return log_z, (psi, phi, alphas, cs, e, a, ok)


def _tied_bwd(residuals, g):
    psi, phi, alphas, cs, e, a, ok = residuals
    unary, counts = jax.lax.cond(ok, lambda: _backward_tied(alphas, cs, e, a), lambda: _log_space_counts(psi, phi))
    return unary * g[..., None, None], counts * g[..., None, None]


tied_forward_backward.defvjp(_tied_fwd, _tied_bwd)

__all__ = ["HomogeneousMarkovChain", "ChainStats", "per_step", "tied_forward_backward"]
