"""Mixtures that exist only in this file (not in models/), fitted by the general path.

A Poisson mixture with Gamma priors and a Bernoulli mixture with Beta priors: nothing in
the compiler or engine knows them; the Gamma–Poisson and Beta–Bernoulli conjugacies and
the Dirichlet–Categorical gate are read off their graphs.  Each must recover the
generating parameters up to a permutation of the labels.
"""

import itertools

import numpy as np

import vemppl as vp
from conftest import assert_elbo_monotone


def best_permutation(estimate, truth):
    """The label permutation that best aligns estimated rows with true rows."""
    k = len(truth)
    perms = itertools.permutations(range(k))
    return min(perms, key=lambda p: np.abs(estimate[list(p)] - truth).sum())


def build_poisson_mixture():
    m = vp.Model("poisson_mixture")
    N, D = m.dim("N", "D")
    K = m.const("K", 3)
    m.data("x", vp.count[N, D])
    pi = m.sample("pi", vp.Dirichlet(vp.fill(1.0, K)))
    with m.plate("k", K):
        with m.plate("j", D):
            lam = m.sample("lam", vp.Gamma(1.0, 0.1))
    with m.plate("n", N):
        z = m.sample("z", vp.Categorical(pi))
        with m.plate("j", D) as j:
            m.sample("x", vp.Poisson(lam[z, j]))
    return m


def build_bernoulli_mixture():
    m = vp.Model("bernoulli_mixture")
    N, D = m.dim("N", "D")
    K = m.const("K", 3)
    m.data("x", vp.bool_[N, D])
    pi = m.sample("pi", vp.Dirichlet(vp.fill(1.0, K)))
    with m.plate("k", K):
        with m.plate("j", D):
            p = m.sample("p", vp.Beta(1.0, 1.0))
    with m.plate("n", N):
        z = m.sample("z", vp.Categorical(pi))
        with m.plate("j", D) as j:
            m.sample("x", vp.Bernoulli(p[z, j]))
    return m


def test_poisson_mixture_recovers_rates():
    rng = np.random.default_rng(7)
    rates = np.array([[1.0, 8.0, 3.0, 0.5], [6.0, 1.0, 9.0, 4.0], [12.0, 5.0, 0.5, 10.0]])
    weights = np.array([0.3, 0.3, 0.4])
    n = 1500
    labels = rng.choice(3, size=n, p=weights)
    x = rng.poisson(rates[labels])
    fit = vp.fit(build_poisson_mixture(), {"x": x}, seed=0, restarts=3, tol=1e-10)
    assert_elbo_monotone(fit.elbo_trace)
    est = np.asarray(fit.posterior["lam"].mean)  # [K, D]
    perm = best_permutation(est, rates)
    # Posterior means of Poisson rates from ~500 points each: sd ≈ sqrt(rate/500) < 0.16.
    np.testing.assert_allclose(est[list(perm)], rates, atol=0.5)
    np.testing.assert_allclose(np.asarray(fit.posterior["pi"].mean)[list(perm)], weights, atol=0.04)


def test_bernoulli_mixture_recovers_probabilities():
    rng = np.random.default_rng(11)
    probs = np.array(
        [
            [0.9, 0.9, 0.1, 0.1, 0.8, 0.2],
            [0.1, 0.2, 0.9, 0.8, 0.9, 0.1],
            [0.5, 0.1, 0.1, 0.9, 0.1, 0.9],
        ]
    )
    weights = np.array([0.4, 0.35, 0.25])
    n = 2000
    labels = rng.choice(3, size=n, p=weights)
    x = (rng.random((n, 6)) < probs[labels]).astype(int)
    fit = vp.fit(build_bernoulli_mixture(), {"x": x}, seed=0, restarts=3, tol=1e-10)
    assert_elbo_monotone(fit.elbo_trace)
    est = np.asarray(fit.posterior["p"].mean)
    perm = best_permutation(est, probs)
    # ~500–800 points per component: sd of a proportion ≤ 0.023; allow 3.5 sd.
    np.testing.assert_allclose(est[list(perm)], probs, atol=0.08)
    np.testing.assert_allclose(np.asarray(fit.posterior["pi"].mean)[list(perm)], weights, atol=0.04)
