"""A chain of categorical latents with first-order Markov dependence, as one block.

``q(z_0, …, z_{T−1}) ∝ exp(Σ_t ψ_t(z_t) + Σ_t Φ_t(z_{t−1}, z_t))``: sufficient statistics
``T(z) = (onehot(z_t))_t, (onehot(z_{t−1}) onehot(z_t)ᵀ)_t``, natural parameters the unary
and pairwise log-potentials ``η = (ψ, Φ)``, and log-normaliser the forward algorithm
(scaled, in probability space, with a log-space fallback; see "forward–backward" below).  Its gradient gives the mean parameters, the marginals ``E[onehot(z_t)]`` and
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
    #: what η gives, as ``vemppl updates`` writes it.
    natural_text = "unary and pairwise log-potentials; marginals by forward–backward (∇ of the forward pass)"
    structured = True
    Stats = ChainStats
    stat_ranks = (2, 3)  # the chain's time axis is part of the event
    support = "cat"
    event_rank = 1
    args = ArgSpec(positional=(), groups=())
    #: One pairwise potential for every step (markov_chain_homogeneous.py); here one per step.
    tied_pairs = False

    @classmethod
    def log_normalizer(cls, eta):
        psi, phi = eta.onehot, eta.pair
        if psi.shape[-2] == 1:
            return logsumexp(psi[..., 0, :], axis=-1)
        return forward_backward(psi, phi)

    @classmethod
    def entropy(cls, eta, mu=None):
        """H[q] = A(η) − ⟨η, μ⟩ from one forward and one backward pass (``jax.vjp``), not
        the base class's forward, forward and backward.  A given ``mu`` is not used: in a
        sweep these passes are the update's own (XLA merges the two), where a forward pass
        for log Z alone is a loop of its own (HMM sweep 47 → 63 ms, measured)."""
        log_z, pullback = jax.vjp(cls.log_normalizer, eta)
        (mu,) = pullback(jnp.ones_like(log_z))
        # A forbidden transition (Φ = −∞) has marginal exactly 0 and adds 0·(−∞) := 0.
        inner = sum(jnp.sum(jnp.where(m == 0, 0.0, e * m), axis=tuple(range(-rank, 0)))
                    for e, m, rank in zip(eta, mu, cls.stat_ranks))
        return log_z - inner

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


# ---- forward–backward -----------------------------------------------------------------
# jax.grad of a lax.scan forward pass is forward–backward already, but its reverse scan
# replays every step's residuals; the hand-written backward pass below is one K×K product
# per step and the marginals are vectorised after the loops.
#
# The loops run in probability space with Rabiner's per-step normalisers c_t (Rabiner 1989,
# §V.A; Bishop, PRML §13.2.4): a K-vector times a K×K matrix per step, where log space
# needs a K×K logsumexp (exp and log of every entry), 2.5× slower per step on a CPU at
# K = 4 (T = 100k forward pass: 7 against 18 ms).  Each step's potentials are shifted by
# their maximum before exp, so exp(ψ_t − max ψ_t) and exp(Φ_t − max Φ_t) lie in [0, 1].
# What probability space cannot hold is a step whose every path is below e^−745 of the
# best entry (float64; e^−87 in float32): then c_t underflows.  So every c_t is checked
# against √tiny of its dtype (1.5e−154 in float64, 1.1e−19 in float32; that also bounds
# the mass lost to entries that underflowed individually by √tiny of the total), and a
# chain that fails runs the log-space recursions instead (``lax.cond``: one branch runs).


def _time_major(psi, phi):
    return jnp.moveaxis(phi, -3, 0), jnp.moveaxis(psi[..., 1:, :], -2, 0)


def _scaled_potentials(psi, phi, tied=False):
    m = jnp.max(psi, axis=-1, keepdims=True)
    s = jnp.max(phi, axis=(-2, -1), keepdims=True)
    # A tied Φ [..., K, K] stands for all T − 1 steps, its shift counted once per step.
    shift_phi = (psi.shape[-2] - 1) * s[..., 0, 0] if tied else jnp.sum(s, axis=(-3, -2, -1))
    return jnp.exp(psi - m), jnp.exp(phi - s), jnp.sum(m, axis=(-2, -1)) + shift_phi


def _step_inputs(a, per_step_inputs, tied):
    """The scans' inputs, time-major: A_t beside each step's own, or (tied) the one A, which
    the step functions then read as a loop constant instead of a slice."""
    return per_step_inputs if tied else (jnp.moveaxis(a, -3, 0), *per_step_inputs)


def _forward_scaled(psi, phi, tied=False):
    """(log Z, α̂ [..., T, K], c [..., T], e, A, ok): α̂_t = p(z_t | x_{≤t}),
    c_t = p(x_t | x_{<t}) up to the shifts, α̃_t = (α̂_{t−1} A_t) ∘ e_t, α̂_t = α̃_t / c_t.
    ``tied``: Φ is one [..., K, K] potential for every step (markov_chain_homogeneous.py)."""
    e, a, shift = _scaled_potentials(psi, phi, tied)

    def step(alpha, inputs):
        a_t, e_t = (a, *inputs) if tied else inputs
        alpha = jnp.einsum("...i,...ij->...j", alpha, a_t) * e_t
        c = jnp.sum(alpha, axis=-1)
        return alpha / c[..., None], (alpha / c[..., None], c)

    c0 = jnp.sum(e[..., 0, :], axis=-1)
    alpha0 = e[..., 0, :] / c0[..., None]
    _, (alphas, cs) = jax.lax.scan(step, alpha0, _step_inputs(a, (jnp.moveaxis(e[..., 1:, :], -2, 0),), tied))
    alphas = jnp.moveaxis(jnp.concatenate([alpha0[None], alphas], axis=0), 0, -2)
    cs = jnp.moveaxis(jnp.concatenate([c0[None], cs], axis=0), 0, -1)
    log_z = jnp.sum(jnp.log(cs), axis=-1) + shift  # per chain
    smallest = jnp.sqrt(jnp.finfo(cs.dtype).tiny)
    ok = jnp.all(cs >= smallest) & jnp.all(jnp.isfinite(log_z))
    return log_z, alphas, cs, e, a, ok


def _scaled_betas(alphas, cs, e, a, tied=False):
    """β̂ [..., T, K] from β̂_{t−1} = A_t (e_t ∘ β̂_t) / c_t, β̂_T = 1 (``tied``: one A)."""

    def step(beta, inputs):
        a_t, e_t, c_t = (a, *inputs) if tied else inputs
        beta = jnp.einsum("...ij,...j->...i", a_t, e_t * beta) / c_t[..., None]
        return beta, beta

    beta_last = jnp.ones_like(alphas[..., 0, :])
    inputs = _step_inputs(a, (jnp.moveaxis(e[..., 1:, :], -2, 0), jnp.moveaxis(cs[..., 1:], -1, 0)), tied)
    _, betas = jax.lax.scan(step, beta_last, inputs, reverse=True)
    return jnp.moveaxis(jnp.concatenate([betas, beta_last[None]], axis=0), 0, -2)


def _backward_scaled(alphas, cs, e, a):
    """Marginals q(z_t) = α̂_t ∘ β̂_t and q(z_{t−1}, z_t) = α̂_{t−1} A_t ∘ (e_t ∘ β̂_t)ᵀ / c_t."""
    betas = _scaled_betas(alphas, cs, e, a)
    unary = alphas * betas
    pair = alphas[..., :-1, :, None] * a * ((e[..., 1:, :] * betas[..., 1:, :]) / cs[..., 1:, None])[..., None, :]
    # Each step sums to one already, up to rounding accumulated over the loops.
    unary = unary / jnp.sum(unary, axis=-1, keepdims=True)
    return unary, pair / jnp.sum(pair, axis=(-2, -1), keepdims=True)


def _forward(psi, phi):
    """(log Z, log α): α_t(k) = p(z_t = k, x_{≤t}) in log space, laid out [..., T, K]."""

    def step(alpha, inputs):
        phi_t, psi_t = inputs
        alpha = logsumexp(alpha[..., :, None] + phi_t, axis=-2) + psi_t
        return alpha, alpha

    alpha0 = psi[..., 0, :]
    last, alphas = jax.lax.scan(step, alpha0, _time_major(psi, phi))
    return logsumexp(last, axis=-1), jnp.moveaxis(jnp.concatenate([alpha0[None], alphas], axis=0), 0, -2)


def _backward(psi, phi, alphas):
    """Log-space marginals.  The messages are not rescaled step by step: each marginal is
    a softmax over its own step's α_t + β_t, so the O(|log Z|) part common to a step
    cancels and the marginals sum to one to rounding at any T."""

    def step(beta, inputs):
        phi_t, psi_t = inputs  # β_{t−1}(i) = log Σ_j exp(Φ_t(i, j) + ψ_t(j) + β_t(j))
        beta = logsumexp(phi_t + (psi_t + beta)[..., None, :], axis=-1)
        return beta, beta

    beta_last = jnp.zeros_like(psi[..., 0, :])
    _, betas = jax.lax.scan(step, beta_last, _time_major(psi, phi), reverse=True)
    betas = jnp.moveaxis(jnp.concatenate([betas, beta_last[None]], axis=0), 0, -2)
    unary = jax.nn.softmax(alphas + betas, axis=-1)
    logits = alphas[..., :-1, :, None] + phi + (psi[..., 1:, :] + betas[..., 1:, :])[..., None, :]
    k = psi.shape[-1]
    pair = jax.nn.softmax(logits.reshape(logits.shape[:-2] + (k * k,)), axis=-1).reshape(logits.shape)
    return unary, pair


def _log_space_marginals(psi, phi):
    return _backward(psi, phi, _forward(psi, phi)[1])


@jax.custom_vjp
def forward_backward(psi, phi):
    """log Z of the chain with unary log-potentials ψ [..., T, K] and pairwise Φ [..., T−1, K, K].

    Its vector–Jacobian product is forward–backward: ∂ log Z/∂ψ_t = q(z_t) and
    ∂ log Z/∂Φ_t = q(z_{t−1}, z_t) (Bishop, PRML §13.2.2–13.2.4).
    """
    return _forward_backward_fwd(psi, phi)[0]


def _forward_backward_fwd(psi, phi):
    log_z, alphas, cs, e, a, ok = _forward_scaled(psi, phi)
    log_z = jax.lax.cond(ok, lambda: log_z, lambda: _forward(psi, phi)[0])
    return log_z, (psi, phi, alphas, cs, e, a, ok)


def _forward_backward_bwd(residuals, g):
    psi, phi, alphas, cs, e, a, ok = residuals
    unary, pair = jax.lax.cond(ok, lambda: _backward_scaled(alphas, cs, e, a), lambda: _log_space_marginals(psi, phi))
    return unary * g[..., None, None], pair * g[..., None, None, None]


forward_backward.defvjp(_forward_backward_fwd, _forward_backward_bwd)
