"""A scalar Gaussian location and its Gamma precision as one block: the Normal–Gamma.

``q(μ, τ) = N(μ | m, (κτ)⁻¹) Ga(τ | a, b)`` over ``μ ∈ R`` and ``τ > 0`` (Bishop, PRML
§2.3.6, eq. 2.154; Murphy 2007, *Conjugate Bayesian analysis of the Gaussian
distribution*, §6, eqs. 85–89), the scalar case of the Normal–Wishart
(``families/normal_wishart.py``, with ``a = ν/2``, ``b = 1/(2W)``).  Expanding ``log N + log Ga``:

* sufficient statistics ``T(μ, τ) = (τμ, τμ², τ, log τ)``;
* natural parameters ``η = (κm, −κ/2, −b − κm²/2, a − ½)``, so ``κ = −2η₂``,
  ``m = η₁/κ``, ``b = −η₃ − η₁²/(2κ)``, ``a = η₄ + ½``;
* base measure ``h = (2π)^(−½)``;
* log-normaliser ``A(η) = −½ log κ + log Γ(a) − a log b``;
* mean parameters (= ∇A) ``E[τ] = a/b``, ``E[τμ] = a m/b``, ``E[τμ²] = 1/κ + a m²/b``,
  ``E[log τ] = ψ(a) − log b``.

The compiler makes this block when the graph has ``mu ~ Normal(m0, precision = c * tau)``
(``c`` fixed, 1 when absent) with ``tau ~ Gamma(...)`` over the same plate, and every other
factor reads ``mu`` as a Normal's location whose precision is ``tau`` (or a fixed multiple)
at the same element (``compiler/rules/normal_gamma.py``).  A Normal factor then reads the
pair through its joint moments (``MomentSource.times``, ``quad``: ``E[τμ]``, ``E[τμ²]``), so
``E[log N(x | μ, τ)]`` and ``E[log N(μ | m0, cτ)]`` are affine in ``E[T]`` and one CAVI
update ``η ← ∇_{E[T]} L`` gives Murphy's eqs. 85–89: q(μ, τ) is the exact posterior.

The marginals are ``q(τ) = Ga(a, b)`` and the Student-t ``q(μ) = St(2a, m, (b/(aκ))^½)``
(Murphy 2007, eq. 100).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpyro.distributions as dist
from jax.scipy.special import digamma, gammaln

from ._special import gamma_entropy_part
from .base import ArgSpec, ExpFamily

_LOG_2PI = math.log(2.0 * math.pi)  # a Python float: no eager program at import


class NormalGammaStats(NamedTuple):
    prec_loc: jnp.ndarray  # E[τμ]
    loc_prec_loc: jnp.ndarray  # E[τμ²]
    prec: jnp.ndarray  # E[τ]
    logprec: jnp.ndarray  # E[log τ]


class NormalGamma(ExpFamily):
    name = "NormalGamma"
    structured = True
    Stats = NormalGammaStats
    stat_ranks = (0, 0, 0, 0)
    support = "real×pos"
    event_rank = 0
    args = ArgSpec(positional=(), groups=())
    #: what η gives, as ``vemppl updates`` writes it; the block's structure as the plan prints it.
    natural_text = "`κ = −2η₂`, `m = η₁/κ`, `b = −η₃ − η₁²/(2κ)`, `a = η₄ + ½` (Murphy 2007, eqs. 85–89)"
    block_text = "normal-gamma"
    stats_text = "E[{precision} {loc}], E[{precision} {loc}²], E[{precision}], E[log {precision}]"

    #: the members of the block by role, and the moments of each that are statistics.
    roles = ("loc", "precision")
    #: the family each member is drawn from in the model (the compiler's rule matches these).
    member_families = {"loc": "Normal", "precision": "Gamma"}
    member_stats = {"precision": {"mean": "prec", "log": "logprec"}, "loc": {}}
    #: joint moments of (precision, loc): E[τμ] and E[τμ²].
    joint_stats = {("times", "precision", "loc"): "prec_loc", ("quad", "precision", "loc"): "loc_prec_loc"}

    # ---- maps between parameterisations -------------------------------------------
    @classmethod
    def natural_from_params(cls, loc, kappa, concentration, rate):
        m, k, a, b = jnp.broadcast_arrays(*(jnp.asarray(v, float) for v in (loc, kappa, concentration, rate)))
        return NormalGammaStats(k * m, -0.5 * k, -b - 0.5 * k * m * m, a - 0.5)

    @classmethod
    def params_from_natural(cls, eta):
        kappa, m, a, b = _unpack(eta)
        return {"loc": m, "kappa": kappa, "concentration": a, "rate": b}

    @classmethod
    def sharpened(cls, eta, c):
        """κ, a and b times c (η times c, the shape's a − ½ shifted): the same means, about c
        times less spread (``ExpFamily.sharpened``)."""
        return NormalGammaStats(c * eta.prec_loc, c * eta.loc_prec_loc, c * eta.prec,
                                c * eta.logprec + 0.5 * (c - 1.0))

    @classmethod
    def log_normalizer(cls, eta):
        kappa, _, a, b = _unpack(eta)
        return -0.5 * jnp.log(kappa) + gammaln(a) - a * jnp.log(b)

    @classmethod
    def expected_stats(cls, eta):
        kappa, m, a, b = _unpack(eta)
        e_tau = a / b
        return NormalGammaStats(e_tau * m, 1.0 / kappa + e_tau * m * m, e_tau, digamma(a) - jnp.log(b))

    @classmethod
    def entropy(cls, eta, mu=None):
        """H = A(η) + a + ½ − (a − ½) E[log τ] + ½ log 2π
        = g(a) − ½ ψ(a) − ½ log b − ½ log κ + ½ (1 + log 2π), g = ``gamma_entropy_part``.

        ``⟨η, E[T]⟩ = −½ − a + (a − ½) E[log τ]`` exactly (the m-terms cancel, as in the
        Normal–Wishart's entropy), so the sum of products, which loses digits when m is far
        from the origin, is never formed; and log Γ(a), a and (a − ½) ψ(a), each of size
        a log a, are summed by ``gamma_entropy_part`` (the first form left 9e-4 nats of
        rounding at a = 1e12).  From η alone."""
        kappa, _, a, b = _unpack(eta)
        return (gamma_entropy_part(a) - 0.5 * digamma(a) - 0.5 * jnp.log(b) - 0.5 * jnp.log(kappa)
                + 0.5 * (1.0 + _LOG_2PI))

    @classmethod
    def pair_quad(cls, eta, x_mean, x_var):
        """E[τ(x − μ)²] for x independent of the block, from its mean and variance (``None``:
        known): ``E[τ]((x̄ − m)² + Var x) + 1/κ``, each term of the quadratic's own size."""
        kappa, m, a, b = _unpack(eta)
        d2 = (x_mean - m) ** 2
        return (a / b) * (d2 if x_var is None else d2 + x_var) + 1.0 / kappa

    @classmethod
    def natural_from_mean(cls, mu):
        m = mu.prec_loc / mu.prec
        kappa = 1.0 / (mu.loc_prec_loc - m * mu.prec_loc)
        # (a, b) of the Gamma with E[τ], E[log τ]: Newton steps on ψ(a) − log a (Minka 2002).
        s = jnp.log(mu.prec) - mu.logprec
        a = (3.0 - s + jnp.sqrt((s - 3.0) ** 2 + 24.0 * s)) / (12.0 * s)
        for _ in range(6):
            a = a - (jnp.log(a) - digamma(a) - s) / (1.0 / a - jax.scipy.special.polygamma(1, a))
        return cls.natural_from_params(m, kappa, a, a / mu.prec)

    @classmethod
    def zero_stats(cls, batch, events):
        """Statistics of zeros for ``batch`` blocks (scalar members: ``events`` unused)."""
        z = jnp.zeros(tuple(batch))
        return NormalGammaStats(z, z, z, z)

    # ---- the density ------------------------------------------------------------------
    @classmethod
    def stats(cls, x):
        """T of a pair ``x = (μ, τ)``."""
        mu, tau = jnp.asarray(x[0]), jnp.asarray(x[1])
        return NormalGammaStats(tau * mu, tau * mu * mu, tau, jnp.log(tau))

    @classmethod
    def log_base_measure(cls, x):
        return jnp.full(jnp.shape(x[0]), -0.5 * _LOG_2PI)

    @classmethod
    def expected_log_base_measure(cls, eta):
        return jnp.full(jnp.shape(eta.prec), -0.5 * _LOG_2PI)

    # ---- the members ----------------------------------------------------------------
    @classmethod
    def marginals(cls, eta) -> dict:
        """q of each member, by role: the Student-t of μ and the Gamma of τ."""
        kappa, m, a, b = _unpack(eta)
        return {"loc": dist.StudentT(2.0 * a, m, jnp.sqrt(b / (a * kappa))), "precision": dist.Gamma(a, b)}

    @classmethod
    def member_moment(cls, eta, role: str, name: str):
        """A moment of one member that is not a statistic (so not linear in E[T])."""
        kappa, m, a, b = _unpack(eta)
        if role == "loc" and name == "mean":
            return m
        if role == "loc" and name == "sq":  # Var[μ] = E[1/(κτ)] = b/(κ(a − 1))
            return m * m + b / (kappa * (a - 1.0))
        if role == "precision" and name == "inv":
            return b / (a - 1.0)
        raise KeyError(name)

    @classmethod
    def member_means(cls, eta) -> dict:
        """The moments of each member by role, as the mean-field families name them."""
        mu = cls.expected_stats(eta)
        return {
            "loc": {"mean": cls.member_moment(eta, "loc", "mean"), "sq": cls.member_moment(eta, "loc", "sq")},
            "precision": {"mean": mu.prec, "log": mu.logprec},
        }

    @classmethod
    def sample(cls, eta, key, shape=()) -> dict:
        """Joint draws by role: τ ~ Ga(a, b), then μ | τ ~ N(m, (κτ)⁻¹)."""
        kappa, m, a, b = _unpack(eta)
        k1, k2 = jax.random.split(key)
        tau = dist.Gamma(a, b).sample(k1, shape)
        mu = m + jax.random.normal(k2, tau.shape) / jnp.sqrt(kappa * tau)
        return {"loc": mu, "precision": tau}

    @classmethod
    def to_numpyro(cls, eta):
        """q(τ): the joint has no NumPyro class; ``marginals`` gives both members."""
        return cls.marginals(eta)["precision"]


def _unpack(eta):
    """(κ, m, a, b) from η."""
    kappa = -2.0 * eta.loc_prec_loc
    m = eta.prec_loc / kappa
    return kappa, m, eta.logprec + 0.5, -eta.prec - 0.5 * eta.prec_loc * m
