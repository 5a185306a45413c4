"""Wishart (degrees of freedom ``ν``, scale matrix ``V``) over D×D SPD matrices, as NumPyro's.

Density ``W(Λ | ν, V) = |Λ|^((ν−D−1)/2) exp(−½ tr(V⁻¹Λ)) / (2^(νD/2) |V|^(ν/2) Γ_D(ν/2))``:
``T(Λ) = (Λ, log|Λ|)``, ``η = (−½ V⁻¹, (ν − D − 1)/2)``, ``h(Λ) = 1``,
``A(η) = (ν/2) log|V| + (νD/2) log 2 + log Γ_D(ν/2)`` with ``V⁻¹ = −2η₁``, ``ν = 2η₂ + D + 1``;
``E[Λ] = νV``, ``E[log|Λ|] = Σ_{i=1..D} ψ((ν + 1 − i)/2) + D log 2 + log|V|``
(Bishop, PRML §2.3.6, §10.2.1 and appendix B; Winn & Bishop 2005, table 1).  ``V⁻¹`` (the rate
matrix) is what η stores, so V is only formed, through a Cholesky factor, where asked for.

**Mode as used by the M-step.** ``argmax_Λ ⟨η₁, Λ⟩ + η₂ log|Λ|`` has gradient
``η₁ + η₂ Λ⁻¹ = 0``, so ``Λ* = η₂ (−η₁)⁻¹``; with ``η = ∂L/∂T`` this is the closed-form
M-step of a precision-matrix parameter (and it equals the Wishart mode ``(ν − D − 1)V``).

As a model factor with a fixed ``ν`` and rate ``R = V⁻¹``,
``E[log W(Λ | ν, R)] = ((ν−D−1)/2) E[log|Λ|] − ½ tr(E[R] E[Λ]) + (ν/2) E[log|R|]
− (νD/2) log 2 − log Γ_D(ν/2)``: affine in (E[Λ], E[log|Λ|]), so the Wishart is
conjugate to an MvNormal precision; it reads the rate's moments by name, so a Wishart
rate matrix is conjugate too.  A scale matrix or its Cholesky factor must be fixed.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jax.scipy.special import digamma, multigammaln, polygamma

from . import _linalg as la
from ._special import gamma_entropy_part
from .base import ArgSpec, ExpFamily

_LOG_2 = math.log(2.0)


class WishartStats(NamedTuple):
    mean: jnp.ndarray  # E[Λ], [..., D, D]
    logdet: jnp.ndarray  # E[log |Λ|], [...]


class Wishart(ExpFamily):
    name = "Wishart"
    #: what η gives, as ``vemppl updates`` writes it.
    natural_text = "scale `V = (−2η₁)⁻¹`, degrees of freedom `2η₂ + D + 1`"
    domain_text = "degrees of freedom (its first argument) above D − 1, D the matrix's size"
    Stats = WishartStats
    stat_ranks = (2, 0)
    support = "spd"
    event_rank = 2
    args = ArgSpec(
        positional=("concentration", "scale_matrix"),
        groups=(("concentration",), ("scale_matrix", "rate_matrix", "scale_tril")),
    )

    @classmethod
    def natural_from_params(cls, concentration, scale_matrix=None, rate_matrix=None,
                            scale_tril=None):
        rate = _rate(scale_matrix, rate_matrix, scale_tril)
        d = rate.shape[-1]
        nu = jnp.asarray(concentration, dtype=rate.dtype)
        batch = jnp.broadcast_shapes(nu.shape, rate.shape[:-2])
        rate = jnp.broadcast_to(rate, batch + (d, d))
        return WishartStats(-0.5 * rate, 0.5 * (jnp.broadcast_to(nu, batch) - d - 1.0))

    @classmethod
    def params_from_natural(cls, eta):
        return {"concentration": _nu(eta), "rate_matrix": -2.0 * eta.mean}

    @classmethod
    def sharpened(cls, eta, c):
        """ν and the rate matrix times c: the same mean ν·W, about c times less spread."""
        d = eta.mean.shape[-1]
        return WishartStats(c * eta.mean, c * eta.logdet + 0.5 * (c - 1.0) * (d + 1.0))

    @classmethod
    def in_domain(cls, eta):
        return jnp.all(_nu(eta) > eta.mean.shape[-1] - 1.0)

    @classmethod
    def log_normalizer(cls, eta):
        d, nu = eta.mean.shape[-1], _nu(eta)
        log_det_v = -la.spd_logdet(-2.0 * eta.mean)
        return 0.5 * nu * log_det_v + 0.5 * nu * d * _LOG_2 + multigammaln(0.5 * nu, d)

    @classmethod
    def entropy(cls, eta, mu=None):
        """H = A(η) − ((ν−D−1)/2) E[log|Λ|] + νD/2 (Bishop, PRML eq. B.82).

        The base class's ``A − ⟨η, μ⟩`` would form ⟨η₁, E[Λ]⟩ = tr(−½V⁻¹ · νV) = −νD/2 as
        a sum of D² products of V⁻¹'s entries with νV's: when V is nearly singular (a
        component fitted to data far from unit scale) those products reach 1e17 and the sum
        loses the ELBO's last decimals (a GMM at scale 1e6 dropped by 2⁻⁷ nats).  The exact
        constant replaces it.

        Written out with x_i = (ν + 1 − i)/2 and g = ``gamma_entropy_part`` (log Γ(x) +
        (1 − x) ψ(x) + x) it is Σ_i [g(x_i) + ((D − i)/2) ψ(x_i)] + D(D − 1)(1 + log π)/4
        + ((D + 1)/2) log|V| + (D(D + 1)/2) log 2, from η alone: A(η), ((ν−D−1)/2) E[log|Λ|]
        and νD/2 are each of size ν log ν, and at ν = 1e12 their sum kept 2e-3 nats of rounding."""
        return _entropy_core(_nu(eta), -la.spd_logdet(-2.0 * eta.mean), eta.mean.shape[-1], 1.0)

    @classmethod
    def quad_form(cls, eta, d, cov=None):
        """dᵀ E[Λ] d = ν ‖L⁻¹ d‖² with L Lᵀ = V⁻¹ (the rate η stores), for a known d, plus
        tr(E[Λ] cov) = ν tr(L⁻¹ cov L⁻ᵀ) where a covariance is given.

        Contracting d with the matrix E[Λ] = νV instead loses V's small eigenvalues, which
        a component fitted to data far from unit scale has (V⁻¹ = I + Σ r x xᵀ with
        |x|² = 1e13: V's entries are good to 1e-16 of its largest, the quadratic along x
        to 0.01, and the trace with a covariance as much); the triangular solve keeps them."""
        nu = _nu(eta)
        inv_l = la.solve_lower(la.chol(-2.0 * eta.mean),
                               jnp.broadcast_to(jnp.eye(eta.mean.shape[-1], dtype=eta.mean.dtype), eta.mean.shape))
        u = la.bvecmat(d, jnp.swapaxes(inv_l, -1, -2))
        quad = jnp.sum(u * u, axis=-1)
        if cov is not None:
            quad = quad + jnp.einsum("...ij,...jk,...ik->...", inv_l, cov, inv_l)
        return nu * quad

    @classmethod
    def expected_stats(cls, eta):
        d, nu = eta.mean.shape[-1], _nu(eta)
        tril = la.chol(-2.0 * eta.mean)
        logdet = _sum_digamma(nu, d) + d * _LOG_2 - la.chol_logdet(tril)
        return WishartStats(nu[..., None, None] * la.chol_inverse(tril), logdet)

    @classmethod
    def natural_from_mean(cls, mu):
        # E[log|Λ|] − log|E[Λ]| = Σ ψ((ν+1−i)/2) − D log(ν/2) =: g(ν) is increasing in ν
        # (ψ'(x) > 1/x); solve g(ν) = c by safeguarded Newton.  The start uses
        # ψ(x) ≈ log x − 1/(2x), which gives g(ν) ≈ −D(D+1)/(2ν) (exact as ν → ∞).
        d = mu.mean.shape[-1]
        c = mu.logdet - la.spd_logdet(mu.mean)
        nu = jnp.maximum(-d * (d + 1.0) / (2.0 * c), d)
        # A loop primitive with a module-level step: jit compiles one step, eager calls
        # reuse the compiled loop.
        nu, _, _ = jax.lax.fori_loop(0, 30, _newton_step, (nu, c, jnp.arange(1.0, d + 1.0)))
        return WishartStats(-0.5 * nu[..., None, None] * la.spd_inverse(mu.mean),
                            0.5 * (nu - d - 1.0))

    @classmethod
    def stats(cls, x):
        x = jnp.asarray(x)
        return WishartStats(x, la.spd_logdet(x))

    @classmethod
    def point_stats(cls, theta):
        return WishartStats(theta, la.spd_logdet(theta))

    @classmethod
    def log_base_measure(cls, x):
        return jnp.zeros(jnp.shape(x)[:-2])

    @classmethod
    def expected_log_base_measure(cls, eta):
        return jnp.zeros_like(eta.logdet)

    @classmethod
    def mode(cls, eta):
        # Λ* = η₂ (−η₁)⁻¹; see the module docstring.
        return eta.logdet[..., None, None] * la.spd_inverse(-eta.mean)

    @classmethod
    def tidy_natural(cls, eta):
        sym = 0.5 * (eta.mean + jnp.swapaxes(eta.mean, -1, -2))
        return eta._replace(mean=sym)

    @classmethod
    def to_numpyro(cls, eta):
        return dist.Wishart(**cls.params_from_natural(eta))

    @classmethod
    def derived_moment(cls, eta, name):
        if name == "inv":  # E[Λ⁻¹] = V⁻¹ / (ν − D − 1), finite for ν > D + 1
            d = eta.mean.shape[-1]
            return -2.0 * eta.mean / (_nu(eta) - d - 1.0)[..., None, None]
        raise KeyError(name)

    @classmethod
    def expected_log_prob(cls, value, concentration, scale_matrix=None, rate_matrix=None,
                          scale_tril=None):
        nu = concentration.value  # a random ν is not conjugate
        if rate_matrix is not None:
            rate, log_det_rate = rate_matrix.mean, rate_matrix.logdet
        else:
            tril = la.chol(scale_matrix.value) if scale_tril is None else scale_tril.value
            rate, log_det_rate = la.chol_inverse(tril), -la.chol_logdet(tril)
        d = rate.shape[-1]
        trace = jnp.sum(rate * value.mean, axis=(-2, -1))
        return (0.5 * (nu - d - 1.0) * value.logdet - 0.5 * trace + 0.5 * nu * log_det_rate
                - 0.5 * nu * d * _LOG_2 - multigammaln(0.5 * nu, d))

    @classmethod
    def numpyro_dist(cls, concentration, scale_matrix=None, rate_matrix=None, scale_tril=None):
        return dist.Wishart(concentration, scale_matrix, rate_matrix, scale_tril)

    @classmethod
    def event_shape(cls, concentration=(), scale_matrix=None, rate_matrix=None,
                    scale_tril=None):
        for shape in (scale_matrix, rate_matrix, scale_tril):
            if shape is not None:
                return tuple(shape[-2:])
        return ()


def _newton_step(_, state):
    """One Newton step on g(ν) = c (see natural_from_mean), D read off the carry's shape."""
    nu, c, i = state
    half = 0.5 * (nu[..., None] + 1.0 - i)
    d = i.shape[-1]
    g = jnp.sum(digamma(half), -1) - d * jnp.log(0.5 * nu) - c
    dg = 0.5 * jnp.sum(polygamma(1, half), -1) - d / nu
    # Never step past halfway to the lower bound ν > D − 1.
    return jnp.maximum(nu - g / dg, 0.5 * (nu + d - 1.0)), c, i


def _nu(eta):
    return 2.0 * eta.logdet + eta.mean.shape[-1] + 1.0


def _entropy_core(nu, log_det_v, d, shift):
    """Σ_i [g(x_i) + ((D − i − 1 + shift)/2) ψ(x_i)] + D(D − 1)(1 + log π)/4
    + ((D + shift)/2) log|V| + (D(D + shift)/2) log 2, x_i = (ν + 1 − i)/2: a
    Wishart's entropy with ``shift`` 1, the Λ-part of a Normal–Wishart's (which adds
    −½ E[log|Λ|] for its mean) with ``shift`` 0; no term of size ν log ν."""
    i = jnp.arange(1, d + 1)
    x = 0.5 * (nu[..., None] + 1.0 - i)
    terms = gamma_entropy_part(x) + 0.5 * (d - i - 1.0 + shift) * digamma(x)
    return (jnp.sum(terms, -1) + 0.25 * d * (d - 1) * (1.0 + math.log(math.pi))
            + 0.5 * (d + shift) * log_det_v + 0.5 * d * (d + shift) * _LOG_2)


def _sum_digamma(nu, d):
    return jnp.sum(digamma(0.5 * (nu[..., None] + 1.0 - jnp.arange(1, d + 1))), axis=-1)


def _rate(scale_matrix, rate_matrix, scale_tril):
    if rate_matrix is not None:
        return jnp.asarray(rate_matrix, dtype=float)
    if scale_tril is not None:
        return la.chol_inverse(jnp.asarray(scale_tril, dtype=float))
    return la.spd_inverse(jnp.asarray(scale_matrix, dtype=float))
