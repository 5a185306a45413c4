"""Student's t (``df``, ``loc``, ``scale``) on the real line, as NumPyro's: a likelihood only.

Density

    St(y | ν, m, s) = Γ((ν+1)/2) / (Γ(ν/2) √(νπ) s) · (1 + r²/ν)^(−(ν+1)/2),   r = (y − m)/s

(Bishop, PRML §2.3.7).  It is not an exponential family in ``m`` (no finite statistics
make ``log St`` affine), so it has no variational role: it is the distribution of observed
data, never of a latent (the compiler says so), and ``variational`` is False.

As a model factor with a random location ``m`` (e.g. ``dot(X[n], w)`` with ``q(w)``
Gaussian),

    E[log St(y | ν, m, s)] = log Γ((ν+1)/2) − log Γ(ν/2) − ½ log(νπ) − log s
                             − (ν+1)/2 · E_m[log(1 + (y − m)²/(ν s²))],

where the last expectation takes ``m`` as Gaussian with its first two moments and is
evaluated by Gauss–Hermite quadrature (``MomentSource.expect``).  It is not affine in the
moments of ``m``, so the blocks under ``m`` get the damped natural-gradient update
(Khan & Lin 2017); the probe finds this, nothing here names them.  ``df`` and ``scale``
are fixed values or point parameters (``param``), the latter fitted by gradient M-steps.
A Gaussian scale mixture (Bishop, PRML eq. 2.161) written out in the model is the
conjugate alternative.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpyro.distributions as dist
from jax.scipy.special import gammaln

from .base import ArgSpec, ExpFamily


class StudentT(ExpFamily):
    name = "StudentT"
    support = "real"
    event_rank = 0
    variational = False
    latent_hint = "write the Student-t as a scale mixture of Normals with a Gamma precision, which is conjugate"
    args = ArgSpec(
        positional=("df", "loc", "scale"),
        groups=(("df",), ("loc",), ("scale",)),
        defaults={"loc": 0.0, "scale": 1.0},
    )

    @classmethod
    def expected_log_prob(cls, value, df, loc, scale):
        y, nu, s = value.value, df.point, scale.point
        log_norm = gammaln(0.5 * (nu + 1.0)) - gammaln(0.5 * nu) - 0.5 * jnp.log(nu * jnp.pi) - jnp.log(s)
        if loc.is_fixed:
            expected = _log_kernel(loc.value, y, s, nu)
        else:
            expected = loc.expect(_log_kernel, y, s, nu)
        return log_norm - 0.5 * (nu + 1.0) * expected

    @classmethod
    def numpyro_dist(cls, df, loc=0.0, scale=1.0):
        return dist.StudentT(df, loc, scale)


def _log_kernel(m, y, s, nu):
    """log(1 + ((y − m)/s)²/ν), elementwise."""
    return jnp.log1p(((y - m) / s) ** 2 / nu)
