"""A Gaussian location and its Wishart precision as one block: the Normal–Wishart.

``q(μ, Λ) = N(μ | m, (βΛ)⁻¹) W(Λ | W, ν)`` over ``μ ∈ R^D`` and D×D SPD ``Λ`` (Bishop,
PRML §2.3.6 and §10.2.1, eqs. 10.59–10.63; Murphy 2007, *Conjugate Bayesian analysis of
the Gaussian distribution*, §8).  Expanding ``log N + log W``:

* sufficient statistics ``T(μ, Λ) = (Λμ, μᵀΛμ, Λ, log|Λ|)``;
* natural parameters ``η = (βm, −β/2, −½(W⁻¹ + β m mᵀ), (ν − D)/2)``, so
  ``β = −2η₂``, ``m = η₁/β``, ``W⁻¹ = −2η₃ − η₁η₁ᵀ/β``, ``ν = 2η₄ + D``;
* base measure ``h = (2π)^(−D/2)``;
* log-normaliser ``A(η) = −(D/2) log β + (ν/2) log|W| + (νD/2) log 2 + log Γ_D(ν/2)``;
* mean parameters ``E[Λ] = νW``, ``E[Λμ] = νWm``, ``E[μᵀΛμ] = D/β + ν mᵀWm``,
  ``E[log|Λ|] = Σ_{i=1..D} ψ((ν + 1 − i)/2) + D log 2 + log|W|`` (= ∇A).

The compiler makes this block when the graph has ``mu[k] ~ MvNormal(m, precision = c *
Lam[k])`` with ``Lam[k] ~ Wishart(...)`` in the same plate (``compiler/compile.py``).  The
block's *members* are the two nodes, by role: ``loc`` (μ) and ``precision`` (Λ).  A factor
reads them through :class:`~vemppl.engine.moments.MemberMoments`: ``E[Λ]`` and
``E[log|Λ|]`` of the precision are statistics, and so are the joint moments an MvNormal
factor asks for when its location and precision are the pair (``MomentSource.times``,
``MomentSource.quad``): ``E[Λμ]`` and ``E[μᵀΛμ]``.  So ``E[log N(x | μ, Λ)]`` and
``E[log N(μ | m, cΛ)]`` are affine in ``E[T]`` and the CAVI update ``η ← ∇_{E[T]} L`` is
Bishop's 10.60–10.63.  ``E[μ]`` alone (``m``) is a derived moment.

The marginals (``marginals``) are ``q(Λ) = W(Λ | W, ν)`` and the multivariate Student-t
``q(μ) = St(μ | m, ((ν − D + 1)βW)⁻¹ (scale), ν − D + 1)`` (Bishop, eq. 2.161 with 10.81's
algebra).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jax.scipy.special import multigammaln

from . import _linalg as la
from .base import ArgSpec, ExpFamily
from .wishart import Wishart, WishartStats, _entropy_core, _sum_digamma

_LOG_2 = math.log(2.0)
_LOG_2PI = math.log(2.0 * math.pi)  # a Python float: no eager program at import


class NormalWishartStats(NamedTuple):
    prec_loc: jnp.ndarray  # E[Λμ], [..., D]
    loc_prec_loc: jnp.ndarray  # E[μᵀΛμ], [...]
    prec: jnp.ndarray  # E[Λ], [..., D, D]
    logdet: jnp.ndarray  # E[log |Λ|], [...]


class NormalWishart(ExpFamily):
    name = "NormalWishart"
    #: what η gives, as ``vemppl updates`` writes it.
    natural_text = "`β = −2η₂`, `m = η₁/β`, `W⁻¹ = −2η₃ − η₁η₁ᵀ/β`, `ν = 2η₄ + D` (Bishop 10.60–10.63)"
    block_text = "normal-wishart"
    stats_text = "E[{precision} {loc}], E[{loc}ᵀ {precision} {loc}], E[{precision}], E[log|{precision}|]"
    structured = True
    Stats = NormalWishartStats
    stat_ranks = (1, 0, 2, 0)
    support = "real×spd"
    event_rank = 1
    args = ArgSpec(positional=(), groups=())

    #: the members of the block by role, and the moments of each that are statistics.
    roles = ("loc", "precision")
    #: the family each member is drawn from in the model (the compiler's rule matches these).
    member_families = {"loc": "MvNormal", "precision": "Wishart"}
    member_stats = {"precision": {"mean": "prec", "logdet": "logdet"}, "loc": {}}
    #: joint moments of (precision, loc): E[Λμ] and E[μᵀΛμ] (see MomentSource.times / quad).
    joint_stats = {("times", "precision", "loc"): "prec_loc", ("quad", "precision", "loc"): "loc_prec_loc"}

    # ---- maps between parameterisations -------------------------------------------
    @classmethod
    def natural_from_params(cls, loc, beta, concentration, scale_matrix=None, rate_matrix=None):
        rate = la.spd_inverse(jnp.asarray(scale_matrix, float)) if rate_matrix is None else jnp.asarray(rate_matrix, float)
        d = rate.shape[-1]
        m = jnp.asarray(loc, float)
        beta, nu = jnp.asarray(beta, float), jnp.asarray(concentration, float)
        batch = jnp.broadcast_shapes(m.shape[:-1], rate.shape[:-2], beta.shape, nu.shape)
        m = jnp.broadcast_to(m, batch + (d,))
        rate = jnp.broadcast_to(rate, batch + (d, d))
        beta, nu = jnp.broadcast_to(beta, batch), jnp.broadcast_to(nu, batch)
        return NormalWishartStats(
            beta[..., None] * m, -0.5 * beta, -0.5 * (rate + beta[..., None, None] * la.outer(m, m)), 0.5 * (nu - d)
        )

    @classmethod
    def params_from_natural(cls, eta):
        beta, m, rate, nu = _unpack(eta)
        return {"loc": m, "beta": beta, "concentration": nu, "rate_matrix": rate}

    @classmethod
    def sharpened(cls, eta, c):
        """β, ν and the rate matrix times c (η times c, ν's offset shifted): the same means,
        about c times less spread (``ExpFamily.sharpened``)."""
        d = eta.prec_loc.shape[-1]
        return NormalWishartStats(c * eta.prec_loc, c * eta.loc_prec_loc, c * eta.prec,
                                  c * eta.logdet + 0.5 * (c - 1.0) * d)

    @classmethod
    def log_normalizer(cls, eta):
        beta, _, rate, nu = _unpack(eta)
        d = rate.shape[-1]
        return (-0.5 * d * jnp.log(beta) - 0.5 * nu * la.spd_logdet(rate) + 0.5 * nu * d * _LOG_2
                + multigammaln(0.5 * nu, d))

    @classmethod
    def expected_stats(cls, eta):
        beta, m, rate, nu = _unpack(eta)
        d = rate.shape[-1]
        tril = la.chol(rate)
        e_lam = nu[..., None, None] * la.chol_inverse(tril)
        lam_m = jnp.einsum("...ij,...j->...i", e_lam, m)
        logdet = _sum_digamma(nu, d) + d * _LOG_2 - la.chol_logdet(tril)
        return NormalWishartStats(lam_m, d / beta + jnp.sum(m * lam_m, -1), e_lam, logdet)

    @classmethod
    def entropy(cls, eta, mu=None):
        """H = A(η) + D(ν + 1)/2 − ((ν − D)/2) E[log|Λ|] + (D/2) log 2π.

        ``⟨η, E[T]⟩`` is ``−D/2 − νD/2 + ((ν − D)/2) E[log|Λ|]`` exactly (the ``m``-terms
        β ν mᵀWm cancel between η₁·E[Λμ], η₂·E[μᵀΛμ] and η₃·E[Λ]); the base class's sum
        of those products loses the ELBO's digits when m is far from the origin.

        It is the Wishart's entropy plus E[H[N(m, (βΛ)⁻¹)]] = (D/2)(1 + log 2π − log β)
        − ½ E[log|Λ|], summed without terms of size ν log ν (``wishart._entropy_core``, whose
        reason is the Wishart's), from η alone."""
        beta, _, rate, nu = _unpack(eta)
        d = rate.shape[-1]
        return (_entropy_core(nu, -la.spd_logdet(rate), d, 0.0)
                + 0.5 * d * (1.0 + _LOG_2PI - jnp.log(beta)))

    @classmethod
    def pair_quad(cls, eta, x_mean, x_cov):
        """E[(x − μ)ᵀΛ(x − μ)] for x independent of the block, from its mean and covariance
        (``None``: known): ``ν (x̄ − m)ᵀW(x̄ − m) + tr(νW Cov x) + D/β`` (Bishop, eq. 10.64),
        the first through W⁻¹'s Cholesky factor (``Wishart.quad_form``'s reason)."""
        beta, m, rate, nu = _unpack(eta)
        d = rate.shape[-1]
        inv_l = la.solve_lower(la.chol(rate), jnp.broadcast_to(jnp.eye(d, dtype=rate.dtype), rate.shape))
        u = la.bvecmat(x_mean - m, jnp.swapaxes(inv_l, -1, -2))
        quad = nu * jnp.sum(u * u, axis=-1) + d / beta
        if x_cov is not None:
            e_lam = nu[..., None, None] * jnp.einsum("...ki,...kj->...ij", inv_l, inv_l)
            quad = quad + la.bdot(x_cov, e_lam, 2)
        return quad

    @classmethod
    def natural_from_mean(cls, mu):
        d = mu.prec.shape[-1]
        m = la.chol_solve(la.chol(mu.prec), mu.prec_loc)
        beta = d / (mu.loc_prec_loc - jnp.sum(m * mu.prec_loc, -1))
        w = Wishart.natural_from_mean(WishartStats(mu.prec, mu.logdet))
        nu = 2.0 * w.logdet + d + 1.0
        return cls.natural_from_params(m, beta, nu, rate_matrix=-2.0 * w.mean)

    @classmethod
    def zero_stats(cls, batch, events):
        """Statistics of zeros for ``batch`` blocks whose members have these event shapes."""
        d = events["loc"][-1]
        z = jnp.zeros(tuple(batch))
        return NormalWishartStats(jnp.zeros(tuple(batch) + (d,)), z, jnp.zeros(tuple(batch) + (d, d)), z)

    @classmethod
    def tidy_natural(cls, eta):
        return eta._replace(prec=0.5 * (eta.prec + jnp.swapaxes(eta.prec, -1, -2)))

    # ---- the density ------------------------------------------------------------------
    @classmethod
    def stats(cls, x):
        """T of a pair ``x = (μ, Λ)``."""
        mu, lam = jnp.asarray(x[0]), jnp.asarray(x[1])
        lam_mu = jnp.einsum("...ij,...j->...i", lam, mu)
        return NormalWishartStats(lam_mu, jnp.sum(mu * lam_mu, -1), lam, la.spd_logdet(lam))

    @classmethod
    def log_base_measure(cls, x):
        mu = jnp.asarray(x[0])
        return jnp.full(mu.shape[:-1], -0.5 * mu.shape[-1] * _LOG_2PI)

    @classmethod
    def expected_log_base_measure(cls, eta):
        d = eta.prec_loc.shape[-1]
        return jnp.full(eta.loc_prec_loc.shape, -0.5 * d * _LOG_2PI)

    # ---- the members ----------------------------------------------------------------
    @classmethod
    def marginals(cls, eta) -> dict:
        """q of each member, by role: the multivariate Student-t of μ and the Wishart of Λ."""
        beta, m, rate, nu = _unpack(eta)
        d = rate.shape[-1]
        df = nu - d + 1.0
        # St(μ | m, Σ, df) with Σ = ((ν − D + 1) β W)⁻¹ = W⁻¹ / (df β): the scale's factor
        # is chol(W⁻¹) / sqrt(df β).
        scale_tril = la.chol(rate) / jnp.sqrt(df * beta)[..., None, None]
        return {
            "loc": dist.MultivariateStudentT(df, m, scale_tril),
            "precision": dist.Wishart(nu, rate_matrix=rate),
        }

    @classmethod
    def member_moment(cls, eta, role: str, name: str):
        """A moment of one member that is not a statistic (so not linear in E[T])."""
        beta, m, rate, nu = _unpack(eta)
        d = rate.shape[-1]
        if role == "loc" and name == "mean":
            return m
        if role == "loc" and name == "outer":  # Cov[μ] = E[(βΛ)⁻¹] = W⁻¹ / (β(ν − D − 1))
            return rate / (beta * (nu - d - 1.0))[..., None, None] + la.outer(m, m)
        if role == "precision" and name == "inv":
            return rate / (nu - d - 1.0)[..., None, None]
        raise KeyError(name)

    @classmethod
    def member_means(cls, eta) -> dict:
        """The moments of each member by role, as the mean-field families name them."""
        mu = cls.expected_stats(eta)
        return {
            "loc": {"mean": cls.member_moment(eta, "loc", "mean"), "outer": cls.member_moment(eta, "loc", "outer")},
            "precision": {"mean": mu.prec, "logdet": mu.logdet},
        }

    @classmethod
    def sample(cls, eta, key, shape=()) -> dict:
        """Joint draws by role: Λ ~ W(W, ν), then μ | Λ ~ N(m, (βΛ)⁻¹)."""
        beta, m, rate, nu = _unpack(eta)
        k1, k2 = jax.random.split(key)
        lam = dist.Wishart(nu, rate_matrix=rate).sample(k1, shape)
        prec = beta[..., None, None] * lam
        mu = dist.MultivariateNormal(jnp.broadcast_to(m, prec.shape[:-1]), precision_matrix=prec).sample(k2)
        return {"loc": mu, "precision": lam}

    @classmethod
    def to_numpyro(cls, eta):
        """q(Λ): the joint has no NumPyro class; ``marginals`` gives both members."""
        return cls.marginals(eta)["precision"]


def _unpack(eta):
    """(β, m, W⁻¹, ν) from η."""
    d = eta.prec_loc.shape[-1]
    beta = -2.0 * eta.loc_prec_loc
    m = eta.prec_loc / beta[..., None]
    rate = -2.0 * eta.prec - la.outer(eta.prec_loc, eta.prec_loc) / beta[..., None, None]
    return beta, m, rate, 2.0 * eta.logdet + d
