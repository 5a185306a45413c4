"""Exact conjugate posteriors: one CAVI sweep on a single-block model reaches them.

The expected values are closed forms written here (Bishop PRML §2.3–2.4, §10.1.3),
never produced by vemppl.  With a single latent block the bound is tight at the optimum,
so the final ELBO must also equal the exact log evidence.
"""

import numpy as np
import pytest
import scipy.stats as st
from scipy.special import gammaln, multigammaln

import vemppl as vp
from conftest import assert_elbo_monotone

RNG = np.random.default_rng(20261125)


def test_normal_normal_known_precision():
    m0, p0, t = 0.5, 2.0, 4.0
    x = RNG.normal(1.3, 0.5, size=40)
    m = vp.Model("normal_normal")
    N = m.dim("N")
    m.data("x", vp.real[N])
    mu = m.sample("mu", vp.Normal(m0, precision=p0))
    with m.plate("n", N):
        m.sample("x", vp.Normal(mu, precision=t))
    fit = vp.fit(m, {"x": x}, max_iter=1)
    post_prec = p0 + len(x) * t
    post_mean = (p0 * m0 + t * x.sum()) / post_prec
    q = fit.posterior["mu"]
    np.testing.assert_allclose(q.loc, post_mean, rtol=1e-12)
    np.testing.assert_allclose(q.scale, post_prec**-0.5, rtol=1e-12)
    # Tight bound: ELBO = log N(x | m0 1, I/t + 11ᵀ/p0).
    cov = np.eye(len(x)) / t + np.ones((len(x), len(x))) / p0
    evidence = st.multivariate_normal(np.full(len(x), m0), cov).logpdf(x)
    np.testing.assert_allclose(fit.elbo, evidence, rtol=1e-10)


def test_beta_bernoulli():
    a, b = 2.0, 3.0
    y = (RNG.random(60) < 0.3).astype(int)
    m = vp.Model("beta_bernoulli")
    N = m.dim("N")
    m.data("y", vp.bool_[N])
    p = m.sample("p", vp.Beta(a, b))
    with m.plate("n", N):
        m.sample("y", vp.Bernoulli(p))
    fit = vp.fit(m, {"y": y}, max_iter=1)
    q = fit.posterior["p"]
    np.testing.assert_allclose(q.concentration1, a + y.sum(), rtol=1e-12)
    np.testing.assert_allclose(q.concentration0, b + len(y) - y.sum(), rtol=1e-12)
    log_evidence = (
        gammaln(a + y.sum()) + gammaln(b + len(y) - y.sum()) - gammaln(a + b + len(y))
        - (gammaln(a) + gammaln(b) - gammaln(a + b))
    )
    np.testing.assert_allclose(fit.elbo, log_evidence, rtol=1e-8)  # JAX digamma: ~1e-10


def test_gamma_poisson():
    a, b = 3.0, 0.5
    c = RNG.poisson(4.0, size=30)
    m = vp.Model("gamma_poisson")
    N = m.dim("N")
    m.data("c", vp.count[N])
    lam = m.sample("lam", vp.Gamma(a, b))
    with m.plate("n", N):
        m.sample("c", vp.Poisson(lam))
    fit = vp.fit(m, {"c": c}, max_iter=1)
    q = fit.posterior["lam"]
    np.testing.assert_allclose(q.concentration, a + c.sum(), rtol=1e-12)
    np.testing.assert_allclose(q.rate, b + len(c), rtol=1e-12)
    n, s = len(c), c.sum()
    log_evidence = a * np.log(b) - gammaln(a) + gammaln(a + s) - (a + s) * np.log(b + n) - gammaln(c + 1).sum()
    np.testing.assert_allclose(fit.elbo, log_evidence, rtol=1e-8)  # JAX digamma: ~1e-10


def test_dirichlet_categorical():
    alpha = np.array([0.5, 1.0, 2.0, 1.5])
    y = RNG.choice(4, size=80, p=[0.1, 0.2, 0.3, 0.4])
    m = vp.Model("dirichlet_categorical")
    N = m.dim("N")
    K = m.const("K", 4)
    alpha0 = m.const("alpha0", vp.ones(K))  # overridden below by a vector
    m.data("y", vp.cat(K)[N])
    pi = m.sample("pi", vp.Dirichlet(alpha0))
    with m.plate("n", N):
        m.sample("y", vp.Categorical(pi))
    fit = vp.fit(m, {"y": y}, consts={"alpha0": alpha}, max_iter=1)
    counts = np.bincount(y, minlength=4)
    np.testing.assert_allclose(fit.posterior["pi"].concentration, alpha + counts, rtol=1e-12)
    log_evidence = (
        gammaln(alpha.sum()) - gammaln(alpha.sum() + len(y)) + np.sum(gammaln(alpha + counts) - gammaln(alpha))
    )
    np.testing.assert_allclose(fit.elbo, log_evidence, rtol=1e-8)  # JAX digamma: ~1e-10


def test_wishart_mvnormal_known_mean():
    d, nu = 3, 5.0
    V = np.array([[1.0, 0.2, 0.0], [0.2, 0.5, 0.1], [0.0, 0.1, 2.0]])
    mean = np.array([0.5, -1.0, 0.0])
    x = RNG.multivariate_normal(mean, np.diag([1.0, 2.0, 0.5]), size=25)
    m = vp.Model("wishart_known_mean")
    N, D = m.dim("N", "D")
    m.data("x", vp.real[N, D])
    mu0 = m.const("mu0", vp.zeros(D))
    V0 = m.const("V0", vp.eye(D))
    Lam = m.sample("Lam", vp.Wishart(nu, V0))
    with m.plate("n", N):
        m.sample("x", vp.MvNormal(mu0, precision=Lam))
    fit = vp.fit(m, {"x": x}, consts={"mu0": mean, "V0": V}, max_iter=1)
    S = (x - mean).T @ (x - mean)
    post_scale = np.linalg.inv(np.linalg.inv(V) + S)
    q = fit.posterior["Lam"]
    np.testing.assert_allclose(q.concentration, nu + len(x), rtol=1e-12)
    np.testing.assert_allclose(q.scale_matrix, post_scale, rtol=1e-10, atol=1e-12)
    # Exact evidence of the Wishart–Normal model (Bishop PRML B.78–B.79).
    n = len(x)

    def log_B(W, v):
        return -0.5 * v * np.linalg.slogdet(W)[1] - 0.5 * v * d * np.log(2) - multigammaln(v / 2, d)

    log_evidence = -0.5 * n * d * np.log(2 * np.pi) + log_B(V, nu) - log_B(post_scale, nu + n)
    np.testing.assert_allclose(fit.elbo, log_evidence, rtol=1e-8)  # JAX digamma: ~1e-10


def test_normal_gamma_mean_field_fixed_point(monkeypatch):
    """Bishop PRML §10.1.3: q(μ)q(τ) for μ ~ N(μ0, (λ0 τ)⁻¹), τ ~ Gam(a0, b0).

    This pair is now one Normal–Gamma block (exact, tests/test_normal_gamma.py); the
    mean-field fixed point is checked with the joint-block rules left out."""
    import vemppl.compiler.compile as compile_module

    monkeypatch.setattr(compile_module, "JOINT_RULES", ())
    mu0, lam0, a0, b0 = 0.3, 2.0, 1.5, 0.8
    x = RNG.normal(1.0, 0.7, size=25)
    m = vp.Model("normal_gamma")
    N = m.dim("N")
    m.data("x", vp.real[N])
    tau = m.sample("tau", vp.Gamma(a0, b0))
    mu = m.sample("mu", vp.Normal(mu0, precision=lam0 * tau))
    with m.plate("n", N):
        m.sample("x", vp.Normal(mu, precision=tau))
    fit = vp.fit(m, {"x": x}, tol=1e-14, max_iter=500)
    assert_elbo_monotone(fit.elbo_trace)
    # The fixed point of eqs. (10.26)–(10.30), iterated here.
    n, xbar = len(x), x.mean()
    mu_n = (lam0 * mu0 + n * xbar) / (lam0 + n)
    a_n = a0 + (n + 1) / 2
    e_tau = a0 / b0
    for _ in range(2000):
        lam_n = (lam0 + n) * e_tau
        e_mu, e_mu2 = mu_n, mu_n**2 + 1 / lam_n
        b_n = b0 + 0.5 * (np.sum(x**2) - 2 * e_mu * x.sum() + n * e_mu2 + lam0 * (e_mu2 - 2 * mu0 * e_mu + mu0**2))
        e_tau = a_n / b_n
    np.testing.assert_allclose(fit.posterior["mu"].loc, mu_n, rtol=1e-10)
    np.testing.assert_allclose(fit.posterior["mu"].scale, lam_n**-0.5, rtol=1e-8)
    np.testing.assert_allclose(fit.posterior["tau"].concentration, a_n, rtol=1e-10)
    np.testing.assert_allclose(fit.posterior["tau"].rate, b_n, rtol=1e-8)


@pytest.mark.parametrize("seed", [0, 1])
def test_elbo_monotone_on_normal_gamma(seed):
    x = np.random.default_rng(seed).normal(-2, 3, size=15)
    m = vp.Model("ng")
    N = m.dim("N")
    m.data("x", vp.real[N])
    tau = m.sample("tau", vp.Gamma(1.0, 1.0))
    mu = m.sample("mu", vp.Normal(0.0, precision=0.01))
    with m.plate("n", N):
        m.sample("x", vp.Normal(mu, precision=tau))
    fit = vp.fit(m, {"x": x}, tol=1e-12)
    assert fit.converged
    assert_elbo_monotone(fit.elbo_trace)
