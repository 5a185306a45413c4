"""Log-normal (``loc``, ``scale`` or ``precision``) on the positive reals, as NumPyro's: a
likelihood.

``log y ~ N(m, τ)``, so ``LN(y | m, τ) = N(log y | m, τ) / y`` and

    E[log LN(y | m, τ)] = E[log N(log y | m, τ)] − log y,

the Normal's factor at the known value ``log y``: affine in (E[m], E[m²]) and in
(E[τ], E[log τ]), so the log-normal is conjugate to a Normal location and a Gamma
precision, exactly as the Normal is (Bishop, PRML §2.3.6 for the Normal–Gamma case).
A latent log-normal has no conjugate children in the language (none reads E[log x] and
E[log² x]), so it is a likelihood only, like StudentT: write the latent on the log scale
as a Normal and ``exp`` it where it is used.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist

from .base import ArgSpec, ExpFamily, fixed
from .normal import Normal, _precision


class LogNormal(ExpFamily):
    name = "LogNormal"
    support = "pos"
    event_rank = 0
    variational = False
    latent_hint = "draw its logarithm from a Normal and exp() it where it is read"
    factor_of = "Normal"
    factor_transform = staticmethod(np.log)
    args = ArgSpec(
        positional=("loc", "scale"),
        groups=(("loc",), ("scale", "precision")),
        defaults={"loc": 0.0, "scale": 1.0},
    )
    own_arg_constraints = {"precision": "positive"}

    @classmethod
    def expected_log_prob(cls, value, loc, scale=None, precision=None):
        log_y = jnp.log(value.value)
        return Normal.expected_log_prob(fixed(log_y), loc, scale=scale, precision=precision) - log_y

    @classmethod
    def numpyro_dist(cls, loc=0.0, scale=None, precision=None):
        return dist.LogNormal(loc, 1.0 / jnp.sqrt(_precision(scale, precision)))
