"""Dirichlet (concentration ``α``) over the probability simplex of dimension K.

Density ``Dir(π | α) = Γ(Σα) / ΠΓ(α_k) · Π π_k^(α_k − 1)`` (with respect to Lebesgue
measure on the first K − 1 coordinates, as NumPyro's ``log_prob``):
``T(π) = log π``, ``η = α − 1``, ``h(π) = 1``,
``A(η) = Σ log Γ(α_k) − log Γ(Σ α_k)``, ``E[log π_k] = ψ(α_k) − ψ(Σα)``
(Bishop, PRML §2.2.1 and appendix B; Winn & Bishop 2005, table 1).

**Mode as used by the M-step.** ``argmax_π Σ_k g_k log π_k`` on the simplex (a Lagrange
multiplier for Σπ = 1) is ``π = g / Σg``.  ``mode(η)`` returns exactly that, with nothing
subtracted: ``η`` *is* the coefficient of ``log π`` (``α − 1`` for a Dirichlet), so with
``η = ∂L/∂E[log π]`` it is the M-step of a probability-vector parameter (cf. Bishop, PRML eq. 9.22).

As a model factor with a fixed concentration,
``E[log Dir(π | α)] = log Γ(Σα) − Σ log Γ(α_k) + Σ (α_k − 1) E[log π_k]``, affine in
E[log π]: the Dirichlet is conjugate to Categorical and Multinomial probabilities.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jax.scipy.special import digamma, gammaln, polygamma

from ._special import digamma_pos, gamma_entropy_part, gammaln_pos
from .base import ArgSpec, ExpFamily


class DirichletStats(NamedTuple):
    log: jnp.ndarray  # E[log π], [..., K]


class Dirichlet(ExpFamily):
    name = "Dirichlet"
    #: what η gives, as ``vemppl updates`` writes it.
    natural_text = "concentration `η + 1`"
    Stats = DirichletStats
    stat_ranks = (1,)
    support = "simplex"
    event_rank = 1
    args = ArgSpec(positional=("concentration",), groups=(("concentration",),))

    @classmethod
    def natural_from_params(cls, concentration):
        return DirichletStats(jnp.asarray(concentration, dtype=float) - 1.0)

    @classmethod
    def params_from_natural(cls, eta):
        return {"concentration": eta.log + 1.0}

    @classmethod
    def sharpened(cls, eta, c):
        """Every concentration times c: the same mean, each variance times (α₀ + 1)/(cα₀ + 1) with
        α₀ = Σα (c times less where α₀ ≫ 1; ``ExpFamily.sharpened``)."""
        return DirichletStats(c * (eta.log + 1.0) - 1.0)

    @classmethod
    def in_domain(cls, eta):
        return jnp.all(eta.log + 1.0 > 0.0)

    @classmethod
    def log_normalizer(cls, eta):
        alpha = eta.log + 1.0
        return jnp.sum(gammaln_pos(alpha), -1) - gammaln_pos(jnp.sum(alpha, -1))

    @classmethod
    def expected_stats(cls, eta):
        alpha = eta.log + 1.0
        return DirichletStats(digamma_pos(alpha) - digamma_pos(jnp.sum(alpha, -1, keepdims=True)))

    @classmethod
    def entropy(cls, eta, mu=None):
        """H = Σ_k g(α_k) − g(α₀) − (K − 1) ψ(α₀), g = ``gamma_entropy_part`` (log Γ(a) +
        (1 − a) ψ(a) + a), from η alone.  A(η) − ⟨η, μ⟩ sums terms of size α log α, and at
        concentrations 1e10 float64 left 6e-5 nats of rounding (1e-2 at 1e12); each g is
        about ½ log α, so nothing here cancels.  ``mu``, where given, must be
        ``expected_stats(eta)``: ψ(α_k) is read off it as E[log π_k] + ψ(α₀)."""
        alpha = eta.log + 1.0
        total = jnp.sum(alpha, -1)
        psi_total = digamma_pos(total)
        psi = None if mu is None else mu.log + psi_total[..., None]
        return (jnp.sum(gamma_entropy_part(alpha, psi), -1) - gamma_entropy_part(total, psi_total)
                - (alpha.shape[-1] - 1) * psi_total)

    @classmethod
    def natural_from_mean(cls, mu):
        return DirichletStats(concentration_from_mean_log(mu.log) - 1.0)

    @classmethod
    def stats(cls, x):
        return DirichletStats(jnp.log(jnp.asarray(x)))

    @classmethod
    def log_base_measure(cls, x):
        return jnp.zeros(jnp.shape(x)[:-1])

    @classmethod
    def expected_log_base_measure(cls, eta):
        return jnp.zeros(eta.log.shape[:-1])

    @classmethod
    def mode(cls, eta):
        # π ∝ g; see the module docstring (defined when every g_k ≥ 0).
        return eta.log / jnp.sum(eta.log, -1, keepdims=True)

    @classmethod
    def random_start(cls, eta, key):
        # Concentrations Gamma(100, 1/100) per element: a flat Dirichlet with 10%
        # multiplicative noise, the start of Hoffman et al.'s online LDA and scikit-learn's.
        return cls.natural_from_params(jax.random.gamma(key, 100.0, eta[0].shape) / 100.0)

    @classmethod
    def to_numpyro(cls, eta):
        return dist.Dirichlet(eta.log + 1.0)

    @classmethod
    def derived_moment(cls, eta, name):
        alpha = eta.log + 1.0
        if name == "mean":
            return alpha / jnp.sum(alpha, -1, keepdims=True)
        raise KeyError(name)

    @classmethod
    def expected_log_prob(cls, value, concentration):
        alpha = jnp.asarray(concentration.value, dtype=float)  # a random α is not conjugate
        norm = gammaln(jnp.sum(alpha, -1)) - jnp.sum(gammaln(alpha), -1)
        return norm + jnp.sum((alpha - 1.0) * value.log, -1)

    @classmethod
    def numpyro_dist(cls, concentration):
        return dist.Dirichlet(concentration)

    @classmethod
    def event_shape(cls, concentration=()):
        return tuple(concentration[-1:])


def concentration_from_mean_log(mean_log, iterations=60):
    """α with ``ψ(α_k) − ψ(Σα) = mean_log_k``: Newton on the concave log-likelihood.

    The Hessian is ``−diag(ψ'(α)) + ψ'(Σα) 11ᵀ``, so the step is O(K) by
    Sherman–Morrison (Minka 2000, "Estimating a Dirichlet distribution", §1); a component
    that a step would push to α_k ≤ 0 is halved instead.  The start
    inverts ψ(α_k) ≈ mean_log_k + ψ(Σα) with Σα from the moment approximation below.
    """
    # Start from α ∝ exp(mean_log) with a total s solving the large-α approximation of
    # ψ(α_k) − ψ(s) ≈ log(α_k/s) − (1/α_k − 1/s)/2 in the mean over k.
    p = jnp.exp(mean_log - jnp.max(mean_log, -1, keepdims=True))
    p = p / jnp.sum(p, -1, keepdims=True)
    gap = jnp.mean(jnp.log(p) - mean_log, -1, keepdims=True)
    s = 0.5 * (jnp.mean(1.0 / p, -1, keepdims=True) - 1.0) / jnp.maximum(gap, 1e-12)
    alpha = jnp.maximum(s, 1e-3) * p
    # A loop primitive, not a Python loop, so that jit compiles one step, not sixty; the
    # step is a module-level function so that eager calls reuse its compiled loop.
    alpha, _ = jax.lax.fori_loop(0, iterations, _newton_step, (alpha, mean_log))
    return alpha


def _newton_step(_, state):
    alpha, mean_log = state
    total = jnp.sum(alpha, -1, keepdims=True)
    grad = digamma(total) - digamma(alpha) + mean_log
    q = -polygamma(1, alpha)
    z = polygamma(1, total)
    b = jnp.sum(grad / q, -1, keepdims=True) / (1.0 / z + jnp.sum(1.0 / q, -1, keepdims=True))
    step = (grad - b) / q
    return jnp.where(alpha - step > 0, alpha - step, 0.5 * alpha), mean_log
