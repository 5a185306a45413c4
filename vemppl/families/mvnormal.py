"""Multivariate Normal (location ``m``, precision ``Λ``) over ``R^D``.

Density ``N(x | m, Λ) = (2π)^(−D/2) |Λ|^(1/2) exp(−½ (x − m)ᵀ Λ (x − m))``:
``T(x) = (x, x xᵀ)``, ``η = (Λ m, −½ Λ)``, ``h(x) = (2π)^(−D/2)``,
``A(η) = ½ mᵀ Λ m − ½ log |Λ|`` with ``Λ = −2 η₂``, ``m = Λ⁻¹ η₁``;
``E[x] = m``, ``E[x xᵀ] = Λ⁻¹ + m mᵀ`` (Bishop, PRML §2.3, §10.2.1; Winn & Bishop 2005, table 1).
Every solve uses the Cholesky factor of ``Λ``; no explicit inverse is formed except
``Λ⁻¹`` itself where the statistic ``E[x xᵀ]`` needs it.  When every matrix of a batch of
precisions is the same (factor analysis and PPCA: q(h_n) has one covariance for all n),
it is factored once (``_moments``).

As a model factor, with independent moments of value x, location m and precision Λ,
``E[log N(x | m, Λ)] = ½E[log|Λ|] − (D/2) log 2π
− ½ tr(E[Λ](E[x xᵀ] − E[x]E[m]ᵀ − E[m]E[x]ᵀ + E[m mᵀ]))``,
affine in (E[x], E[x xᵀ]), in (E[m], E[m mᵀ]) and in (E[Λ], E[log|Λ|]): the MvNormal is
conjugate to an MvNormal location and a Wishart precision.  Written as
``½E[log|Λ|] − (D/2) log 2π − ½(E[xᵀΛx] − 2E[xᵀΛm] + E[mᵀΛm])`` with each product a joint
moment of its pair (``MomentSource.times``, ``quad``), the same expression is affine in a
Normal–Wishart block's statistics ``(E[Λμ], E[μᵀΛμ], E[Λ], E[log|Λ|])`` when m (or x) and Λ
are that block's two members.  A covariance or a Cholesky
scale must be fixed (their moments are not linear in a conjugate family) and are
converted to the precision moments exactly.
"""

from __future__ import annotations

from typing import NamedTuple

import math

import jax
import jax.numpy as jnp
import numpyro.distributions as dist

from . import _linalg as la
from .base import ArgSpec, ExpFamily, exact_value, fixed, independent

_LOG_2PI = math.log(2.0 * math.pi)  # a Python float: no eager program at import


class MvNormalStats(NamedTuple):
    mean: jnp.ndarray  # E[x], [..., D]
    outer: jnp.ndarray  # E[x xᵀ], [..., D, D]


class MvNormal(ExpFamily):
    name = "MvNormal"
    #: what η gives, as ``vemppl updates`` writes it.
    natural_text = "precision `Λ = −2η₂`, mean `Λ⁻¹η₁`"
    gaussian = True
    Stats = MvNormalStats
    stat_ranks = (1, 2)
    support = "real"
    event_rank = 1
    args = ArgSpec(
        positional=("loc", "covariance_matrix"),
        groups=(("loc",), ("covariance_matrix", "precision_matrix", "scale_tril")),
        defaults={"loc": 0.0},
        aliases={"cov": "covariance_matrix", "precision": "precision_matrix"},
    )

    @classmethod
    def natural_from_params(cls, loc=0.0, covariance_matrix=None, precision_matrix=None,
                            scale_tril=None):
        lam = _precision(covariance_matrix, precision_matrix, scale_tril)
        m = _broadcast_loc(jnp.asarray(loc, dtype=lam.dtype), lam.shape[-1])
        batch = jnp.broadcast_shapes(m.shape[:-1], lam.shape[:-2])
        m = jnp.broadcast_to(m, batch + m.shape[-1:])
        lam = jnp.broadcast_to(lam, batch + lam.shape[-2:])
        return MvNormalStats(jnp.einsum("...ij,...j->...i", lam, m), -0.5 * lam)

    @classmethod
    def params_from_natural(cls, eta):
        return {"loc": _moments(eta)[0], "precision_matrix": -2.0 * eta.outer}

    @classmethod
    def log_normalizer(cls, eta):
        m, _, logdet = _moments(eta)
        return 0.5 * jnp.sum(eta.mean * m, axis=-1) - 0.5 * logdet

    @classmethod
    def expected_stats(cls, eta):
        m, sigma, _ = _moments(eta)
        return MvNormalStats(m, sigma + la.outer(m, m))

    @classmethod
    def mean_cov(cls, eta):
        """(E[x], Cov[x]) = (m, Λ⁻¹) from η, without subtracting m mᵀ from E[x xᵀ]."""
        m, sigma, _ = _moments(eta)
        return m, sigma

    @classmethod
    def entropy(cls, eta, mu=None):
        """H = ½ D (1 + log 2π) − ½ log |Λ|: one log-determinant (A − ⟨η, μ⟩ − E[log h]
        simplified), so ``mu`` is not needed."""
        _, _, logdet = _moments(eta)
        return 0.5 * eta.mean.shape[-1] * (1.0 + _LOG_2PI) - 0.5 * logdet

    @classmethod
    def expected_stats_and_entropy(cls, eta):
        """(μ, H) from one Cholesky factor of Λ (``expected_stats`` and ``entropy`` each take one)."""
        m, sigma, logdet = _moments(eta)
        return (MvNormalStats(m, sigma + la.outer(m, m)),
                0.5 * eta.mean.shape[-1] * (1.0 + _LOG_2PI) - 0.5 * logdet)

    @classmethod
    def with_mean(cls, eta, m):
        """(η, μ) of q moved to mean ``m`` with its precision held (engine/newton.py)."""
        _, sigma, _ = _moments(eta)
        lam = -2.0 * eta.outer
        return (MvNormalStats(jnp.einsum("...ij,...j->...i", lam, m), eta.outer),
                MvNormalStats(m, sigma + la.outer(m, m)))

    @classmethod
    def natural_from_mean(cls, mu):
        lam = la.spd_inverse(mu.outer - la.outer(mu.mean, mu.mean))
        return MvNormalStats(jnp.einsum("...ij,...j->...i", lam, mu.mean), -0.5 * lam)

    @classmethod
    def stats(cls, x):
        x = jnp.asarray(x)
        return MvNormalStats(x, la.outer(x, x))

    @classmethod
    def point_stats(cls, theta):
        return MvNormalStats(theta, theta[..., :, None] * theta[..., None, :])

    @classmethod
    def log_base_measure(cls, x):
        x = jnp.asarray(x, dtype=float)
        return -0.5 * x.shape[-1] * _LOG_2PI * jnp.ones(x.shape[:-1])

    @classmethod
    def expected_log_base_measure(cls, eta):
        return -0.5 * eta.mean.shape[-1] * _LOG_2PI * jnp.ones(eta.mean.shape[:-1])

    @classmethod
    def mode(cls, eta):
        # argmax ⟨η₁, x⟩ + ⟨η₂, x xᵀ⟩ = (−2η₂)⁻¹ η₁, the mean.
        return _moments(eta)[0]

    @classmethod
    def random_start(cls, eta, key):
        # Centred on a draw of itself, 100 times more precise (as the global side of a
        # bilinear term is started).
        return la.sharpened_gaussian_draw(eta, key)

    @classmethod
    def tidy_natural(cls, eta):
        sym = 0.5 * (eta.outer + jnp.swapaxes(eta.outer, -1, -2))
        return eta._replace(outer=sym)

    @classmethod
    def to_numpyro(cls, eta):
        return dist.MultivariateNormal(**cls.params_from_natural(eta))

    @classmethod
    def expected_log_prob(cls, value, loc, covariance_matrix=None, precision_matrix=None,
                          scale_tril=None):
        if precision_matrix is not None:
            lam, logdet = precision_matrix, precision_matrix.logdet
        else:
            # A random covariance or scale is not conjugate; a fixed one converts exactly.
            tril = la.chol(covariance_matrix.value) if scale_tril is None else scale_tril.value
            lam, logdet = fixed(la.chol_inverse(tril)), -la.chol_logdet(tril)
        d = lam.mean.shape[-1]
        if loc.is_fixed:
            # A fixed location may be a scalar broadcast over the D components.
            loc = fixed(_broadcast_loc(jnp.asarray(loc.value, dtype=jnp.asarray(lam.mean).dtype), d))
        # E[(x − m)ᵀΛ(x − m)] = E[xᵀΛx] − 2E[xᵀΛm] + E[mᵀΛm].  Each term is a moment of the
        # pair it couples: tr(E[Λ]E[xxᵀ]) for independent ones, E[μᵀΛμ] and E[Λμ] when Λ and
        # the location (or the value) are one Normal–Wishart block.  The data-by-component
        # contractions go through _linalg.bdot (no N·K·D² broadcast).
        if lam.joint_with(value):
            cross = la.bdot(lam.times(value), loc.mean, 1)
        else:
            cross = value.quad_with(lam, loc)
        quad = lam.quad(value) - 2.0 * cross + lam.quad(loc)
        centred = _centred_quad(value, loc, lam)
        quad = quad if centred is None else exact_value(quad, centred)
        return 0.5 * logdet - 0.5 * d * _LOG_2PI - 0.5 * quad

    @classmethod
    def numpyro_dist(cls, loc=0.0, covariance_matrix=None, precision_matrix=None,
                     scale_tril=None):
        return dist.MultivariateNormal(loc, covariance_matrix, precision_matrix, scale_tril)

    @classmethod
    def event_shape(cls, loc=(), covariance_matrix=None, precision_matrix=None,
                    scale_tril=None):
        for shape in (covariance_matrix, precision_matrix, scale_tril):
            if shape is not None:
                return tuple(shape[-1:])
        return tuple(loc[-1:])


def _centred_quad(value, loc, lam):
    """E[(x − m)ᵀΛ(x − m)], the value of the affine form of ``expected_log_prob``, centred.

    For independent x, m and Λ it is ``(x̄ − m̄)ᵀE[Λ](x̄ − m̄) + tr(E[Λ](Cov x + Cov m))``;
    when Λ and m (or x) are one Normal–Wishart block the precision's ``pair_quad`` gives
    it.  None where neither applies (the affine form's value stands).  Each term is of the
    quadratic's own size, and the means, covariances and dᵀE[Λ]d come from η (``MomentSource.spread``, ``quad_form``), so data far from the origin lose
    nothing (families/base.py)."""
    for member, other in ((value, loc), (loc, value)):
        if lam.joint_with(member):
            pair = getattr(lam, "pair_quad", None)
            return pair(other) if pair is not None and independent(other, lam) else None
    if not independent(value, loc, lam):  # a chain's neighbouring steps, a product of latents
        return None
    (xm, xc), (mm, mc) = value.spread(1), loc.spread(1)
    cov = xc if mc is None else mc if xc is None else xc + mc
    return lam.quad_form(xm - mm, cov)


#: The run-time check for one shared factor is compiled for batches of at least this many
#: matrices.  Both branches of the ``lax.cond`` are compiled, in the sweep and in its gradient
#: (for a 10k-point GMM's K = 5 component means, 0.8 of the sweep's 3.3 CPU-s compile), so a
#: small batch, whose factorisations cost little, factors each element.  At 256 factor
#: analysis on a constant data column (noise precision with no finite optimum) rounds
#: differently from one shared factor; either way its ELBO falls at the sixth sweep and the
#: fit stops there naming psi (engine/stops.py, tests/test_data_checks.py).
ONE_FACTOR_MIN_BATCH = 256


def _moments(eta):
    """(m, Λ⁻¹, log |Λ|) with Λ = −2η₂ and m = Λ⁻¹ η₁, batched.

    A batch whose precisions are all equal (checked at run time: one comparison pass) takes
    one Cholesky factor and m = η₁ Λ⁻¹ as a matrix product, instead of a factorisation
    and two triangular solves per element; equal matrices give equal factors, so the two
    branches agree to rounding (factor analysis, N = 20k, L = 5: the E-step's 20k 5×5
    factorisations were most of its sweep).  Batches under ``ONE_FACTOR_MIN_BATCH`` always
    factor each element."""
    lam = -2.0 * eta.outer
    d = lam.shape[-1]
    batch = jnp.broadcast_shapes(eta.mean.shape[:-1], lam.shape[:-2])

    def each():
        tril = la.chol(lam)
        m = la.chol_solve(tril, jnp.broadcast_to(eta.mean, batch + (d,)))
        return (m, jnp.broadcast_to(la.chol_inverse(tril), batch + (d, d)),
                jnp.broadcast_to(la.chol_logdet(tril), batch))

    if math.prod(lam.shape[:-2]) < ONE_FACTOR_MIN_BATCH:
        return each()
    flat = jnp.reshape(lam, (-1, d, d))

    def one():
        tril = la.chol(flat[0])
        sigma = la.chol_inverse(tril)
        m = jnp.einsum("...j,ij->...i", jnp.broadcast_to(eta.mean, batch + (d,)), sigma)
        return m, jnp.broadcast_to(sigma, batch + (d, d)), jnp.broadcast_to(la.chol_logdet(tril), batch)

    return jax.lax.cond(jnp.all(flat == flat[:1]), one, each)


def _precision(covariance_matrix, precision_matrix, scale_tril):
    if precision_matrix is not None:
        return jnp.asarray(precision_matrix, dtype=float)
    if scale_tril is not None:
        return la.chol_inverse(jnp.asarray(scale_tril, dtype=float))
    return la.spd_inverse(jnp.asarray(covariance_matrix, dtype=float))


def _broadcast_loc(loc, d):
    return jnp.broadcast_to(loc, (d,)) if loc.ndim == 0 else loc
