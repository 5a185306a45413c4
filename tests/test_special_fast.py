"""ψ and log Γ for positive arguments (families/_special.py: ``digamma_pos``, ``gammaln_pos``),
which the Dirichlet's mean map, log-normaliser and entropy (and every ``gamma_entropy_part``)
take in place of XLA's: against scipy's over the arguments the families see (LDA's topic
concentrations 0.01 + counts, 1e-8 to 1e12, both sides of the recurrence's shift), NaN off the
domain, and their derivatives (trigamma and ψ, by ``jax.grad``) against scipy's."""

import numpy as np
import scipy.special as sp

import jax
import jax.numpy as jnp
from vemppl.families._special import SHIFT, digamma_pos, gamma_entropy_part, gammaln_pos

RNG = np.random.default_rng(0)
X = np.concatenate([RNG.gamma(0.3, 1.0, 4000) + 0.01, np.logspace(-8, 12, 400), RNG.uniform(0, 3 * SHIFT, 2000),
                    [SHIFT - 1e-12, SHIFT, SHIFT + 1e-12, 1.0, 2.0, 1.4616321449683622]])


def _close(got, want, tol):
    got, want = np.asarray(got), np.asarray(want)
    assert np.all(np.isfinite(got))
    err = np.abs(got - want) / np.maximum(1.0, np.abs(want))
    assert err.max() < tol, (err.max(), X[np.argmax(err)])


def test_values_against_scipy():
    _close(jax.jit(digamma_pos)(jnp.asarray(X)), sp.psi(X), 1e-14)
    _close(jax.jit(gammaln_pos)(jnp.asarray(X)), sp.gammaln(X), 2e-14)
    a = X[X < 100]  # the entropy part's direct branch (its series, from 100, is unchanged)
    _close(gamma_entropy_part(jnp.asarray(a)), sp.gammaln(a) + (1 - a) * sp.psi(a) + a, 2e-13)


def test_off_the_domain_and_derivatives():
    bad = jnp.asarray([0.0, -0.5, -3.0, jnp.nan])
    assert np.all(np.isnan(digamma_pos(bad))) and np.all(np.isnan(gammaln_pos(bad)))
    assert float(gammaln_pos(jnp.inf)) == np.inf and float(digamma_pos(jnp.inf)) == np.inf
    x = X[(X > 1e-4) & (X < 1e8)]
    _close(jax.vmap(jax.grad(digamma_pos))(jnp.asarray(x)), sp.polygamma(1, x), 1e-12)
    _close(jax.vmap(jax.grad(gammaln_pos))(jnp.asarray(x)), sp.psi(x), 1e-14)
