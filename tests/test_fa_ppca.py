"""Factor analysis with point-estimated loadings against scikit-learn, and Bayesian PCA
with ARD switching off the components the data do not support.

* models/fa.vem: ``W``, ``psi`` and ``m`` are ``param`` (closed-form M-steps), ``h`` is
  latent.  At convergence ``q(h_n)`` is the exact posterior, so the ELBO is the
  log-likelihood ``Σ_n log N(x_n | m, WWᵀ + diag(1/psi))``, which is compared with
  ``FactorAnalysis.score`` (the same maximum-likelihood model, fitted by its own SVD-based
  iterations).
* models/ppca.vem (Bishop 1999): from the prior, ``W = 0, E[z] = 0`` is a saddle of CAVI
  and ARD then switches every column off.  The compiler recognises the bilinear term
  ``dot(W[j], z[n])`` and starts ``W`` from a sharpened draw of its prior, updated after
  ``z`` (see ``compiler.compile._bilinear_globals``); nothing here knows the model.
"""

import numpy as np
from scipy.stats import multivariate_normal
from sklearn.decomposition import FactorAnalysis

import vemppl
from conftest import assert_elbo_monotone
from dsl_models import MODELS_DIR


def factor_data(seed, n, d, factors, noise):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((d, factors)) * 2.0
    x = rng.standard_normal((n, factors)) @ W.T + noise * rng.standard_normal((n, d)) + 1.0
    return x


def test_fa_loglik_matches_sklearn():
    rng = np.random.default_rng(0)
    n, d = 500, 6
    W = rng.standard_normal((d, 2))
    psi = rng.uniform(0.2, 1.0, d)
    x = rng.standard_normal((n, 2)) @ W.T + rng.standard_normal((n, d)) * np.sqrt(psi) + rng.standard_normal(d)
    fit = vemppl.fit(vemppl.load(MODELS_DIR / "fa.vem"), data={"x": x}, seed=0, max_iter=5000, tol=1e-12)
    assert_elbo_monotone(fit.elbo_trace)
    assert all(p.mstep == "closed-form" for p in fit.plan.params)
    p = fit.params
    loglik = multivariate_normal(p["m"], p["W"] @ p["W"].T + np.diag(1.0 / p["psi"])).logpdf(x).sum()
    sk = FactorAnalysis(2, tol=1e-10, max_iter=10000).fit(x)
    sk_loglik = sk.score(x) * n
    assert abs(loglik - sk_loglik) <= 1e-4 * abs(sk_loglik), (loglik, sk_loglik)  # measured: 3e-11
    assert abs(fit.elbo - loglik) <= 1e-6 * abs(loglik)  # q(h) exact: the bound is tight
    np.testing.assert_allclose(p["W"] @ p["W"].T, sk.components_.T @ sk.components_, atol=1e-3)
    np.testing.assert_allclose(1.0 / p["psi"], sk.noise_variance_, atol=1e-3)


def test_ppca_ard_switches_off_surplus_components():
    x = factor_data(seed=1, n=300, d=10, factors=2, noise=0.5)
    fit = vemppl.fit(vemppl.load(MODELS_DIR / "ppca.vem"), data={"x": x}, consts={"L": 5}, seed=0, restarts=2,
                     max_iter=2000, tol=1e-9)
    assert fit.plan.block("W").init == "prior draw"
    assert fit.plan.schedule.index("z") < fit.plan.schedule.index("W")
    assert_elbo_monotone(fit.elbo_trace)
    norms = np.linalg.norm(np.asarray(fit.posterior["W"].mean), axis=0)
    alpha = np.asarray(fit.posterior["alpha"].mean)
    active = norms > 0.1
    assert active.sum() == 2, norms
    assert np.all(norms[~active] < 1e-3), norms
    assert alpha[~active].min() > 100 * alpha[active].max(), alpha
    # The noise precision is recovered (data made with noise sd 0.5, precision 4).
    assert abs(float(fit.posterior["tau"].mean) - 4.0) < 0.5
