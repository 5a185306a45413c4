"""The Bayesian Gaussian mixture of LANGUAGE.md, written with the Python DSL, against
scikit-learn's BayesianGaussianMixture on the same data in the same test.

Priors are matched: π ~ Dir(α0), Λ_k ~ W(ν0, W0) with W0 = covariance_prior⁻¹ and
μ_k ~ N(m0, (β0 Λ_k)⁻¹).  scikit-learn's q(μ_k, Λ_k) is the joint Normal–Wishart of
Bishop §10.2, and so is vemppl's: the compiler recognises the pattern in the graph
(docs/engine.md, "Joint blocks").  So the two fit the same q, and

* on the synthetic sets the held-out log-likelihood (plug-in posterior means of weights,
  means and covariances, computed by the same function for both) agrees to 1e-5 relative
  (measured ≤ 1.2e-6; with the former mean-field q(μ_k) q(Λ_k): ≤ 1.9e-6), and
* vemppl's fixed point is scikit-learn's: started from vemppl's posterior, one iteration of
  scikit-learn's own E- and M-step returns it, up to the distance both still had to go at
  their tolerances (largest change relative to the largest entry, separated / overlapping /
  five_d: W⁻¹ 5.7e-6 / 2.0e-5 / 1.2e-8, m 4.4e-7 / 5.0e-6 / 1.0e-9; the mean-field q mapped
  to Normal–Wishart parameters: W⁻¹ 7.9e-6 / 2.3e-5 / 5.0e-8, m 6.9e-7 / 9.5e-6 / 3.7e-9;
  with β0 = 0.01 and ~230 points per component the two factorisations are close).

Iterations to converge (tol 1e-10, vemppl; scikit-learn tol 1e-6), separated / overlapping
/ five_d / digits: vemppl 11 / 593 / 5 / 13 (mean-field: 20 / 640 / 8 / see below),
scikit-learn 8 / 497 / 4 / 26.
"""

import warnings


import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.datasets import load_digits
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import BayesianGaussianMixture
from sklearn.mixture._gaussian_mixture import _compute_precision_cholesky

import vemppl as vp
from conftest import assert_elbo_monotone
from vemppl.families.normal_wishart import NormalWishart


def gmm_dsl():
    m = vp.Model("gmm")
    N, D = m.dim("N", "D")
    K = m.const("K", 3)
    alpha0 = m.const("alpha0", 1.0)
    m0 = m.const("m0", vp.zeros(D))
    beta0 = m.const("beta0", 0.01)
    nu0 = m.const("nu0", D + 2)
    W0 = m.const("W0", vp.eye(D))
    m.data("x", vp.real[N, D])
    pi = m.sample("pi", vp.Dirichlet(vp.fill(alpha0, K)))
    with m.plate("k", K):
        Lam = m.sample("Lam", vp.Wishart(nu0, W0))
        mu = m.sample("mu", vp.MvNormal(m0, precision=beta0 * Lam))
    with m.plate("n", N):
        z = m.sample("z", vp.Categorical(pi))
        m.sample("x", vp.MvNormal(mu[z], precision=Lam[z]))
    return m


def plug_in_loglik(x, weights, means, covs):
    """Mean log-likelihood per point of a Gaussian mixture with the given parameters."""
    comp = np.stack([multivariate_normal(means[k], covs[k], allow_singular=False).logpdf(x) for k in range(len(weights))], -1)
    return float(np.mean(logsumexp(comp + np.log(weights), axis=-1)))


def make_blobs(seed, kind):
    rng = np.random.default_rng(seed)
    if kind == "separated":
        centres = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
        covs = [np.eye(2) * s for s in (1.0, 0.5, 1.5)]
    elif kind == "overlapping":
        centres = np.array([[0.0, 0.0], [2.0, 0.5], [0.5, 2.0]])
        covs = [np.array([[1.0, 0.3], [0.3, 0.8]]), np.eye(2) * 0.7, np.array([[0.6, -0.2], [-0.2, 1.2]])]
    else:  # five dimensions, four anisotropic components
        centres = rng.normal(0, 4, size=(4, 5))
        covs = []
        for _ in range(4):
            a = rng.normal(size=(5, 5))
            covs.append(a @ a.T / 5 + 0.3 * np.eye(5))
    k = len(centres)
    n = 900
    labels = rng.choice(k, size=n, p=np.full(k, 1.0 / k))
    x = np.stack([rng.multivariate_normal(centres[c], covs[c]) for c in labels])
    return x, labels, k


def fit_both(x_train, k, alpha0, beta0, nu0, cov_prior, seed=0):
    d = x_train.shape[1]
    m0 = x_train.mean(0)
    model = gmm_dsl()
    fit = vp.fit(
        model,
        {"x": x_train},
        consts={"K": k, "alpha0": alpha0, "m0": m0, "beta0": beta0, "nu0": nu0, "W0": np.linalg.inv(cov_prior)},
        seed=seed,
        restarts=3,
        max_iter=1000,
        tol=1e-10,
    )
    sk = BayesianGaussianMixture(**sklearn_priors(k, alpha0, beta0, m0, nu0, cov_prior), max_iter=1000, tol=1e-6,
                                 n_init=3, reg_covar=1e-9, random_state=seed).fit(x_train)
    assert d == len(m0)
    return fit, sk


def sklearn_priors(k, alpha0, beta0, m0, nu0, cov_prior):
    return dict(n_components=k, weight_concentration_prior_type="dirichlet_distribution",
                weight_concentration_prior=alpha0, mean_precision_prior=beta0, mean_prior=m0,
                degrees_of_freedom_prior=nu0, covariance_prior=cov_prior, covariance_type="full")


def sklearn_step_from(fit, x, priors):
    """One iteration of scikit-learn's E- and M-step started from vemppl's q (warm start);
    returns vemppl's Normal–Wishart parameters and scikit-learn's after the step."""
    nw = {k: np.asarray(v) for k, v in NormalWishart.params_from_natural(fit.state.eta["mu"]).items()}
    alpha = np.asarray(fit.posterior["pi"].concentration)
    sk = BayesianGaussianMixture(**priors, max_iter=1, n_init=1, reg_covar=0.0, warm_start=True)
    sk.weight_concentration_, sk.mean_precision_, sk.means_ = alpha, nw["beta"], nw["loc"]
    sk.degrees_of_freedom_ = nw["concentration"]
    sk.covariances_ = nw["rate_matrix"] / nw["concentration"][:, None, None]  # scikit-learn's W⁻¹/ν
    sk.precisions_cholesky_ = _compute_precision_cholesky(sk.covariances_, "full")
    sk.converged_, sk.lower_bound_ = False, -np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter=1 does not converge, by design
        sk.fit(x)
    ours = (alpha, nw["beta"], nw["loc"], nw["concentration"], nw["rate_matrix"])
    theirs = (sk.weight_concentration_, sk.mean_precision_, sk.means_, sk.degrees_of_freedom_,
              sk.covariances_ * sk.degrees_of_freedom_[:, None, None])
    return ours, theirs


def vemppl_plug_in(fit):
    weights = np.asarray(fit.posterior["pi"].mean)
    means = np.asarray(fit.posterior["mu"].mean)
    lam = np.asarray(fit.mean_params["Lam"]["mean"])  # E[Λ_k]
    return weights, means, np.linalg.inv(lam)


@pytest.mark.parametrize("kind,seed", [("separated", 1), ("overlapping", 2), ("five_d", 3)])
def test_gmm_matches_sklearn_on_synthetic(kind, seed):
    x, labels, k = make_blobs(seed, kind)
    n_train = 700
    xt, xh = x[:n_train], x[n_train:]
    d = x.shape[1]
    fit, sk = fit_both(xt, k, alpha0=1.0, beta0=0.01, nu0=d + 2.0, cov_prior=np.eye(d))
    assert_elbo_monotone(fit.elbo_trace)
    assert fit.plan.block("mu").family == "NormalWishart"
    ours = plug_in_loglik(xh, *vemppl_plug_in(fit))
    theirs = plug_in_loglik(xh, sk.weights_, sk.means_, sk.covariances_)
    assert abs(ours - theirs) <= 1e-5 * abs(theirs), (ours, theirs)  # measured ≤ 1.2e-6 relative
    ari_ours = adjusted_rand_score(labels[:n_train], np.argmax(np.asarray(fit.posterior["z"].probs), -1))
    ari_sk = adjusted_rand_score(labels[:n_train], sk.predict(xt))
    # Equal up to a point on the boundary between two overlapping components: on seed 2 plain
    # CAVI at tol 1e-10 (651 sweeps) and scikit-learn both stop short of the optimum on the
    # same side of it (ARI 0.33275); plain CAVI at tol 1e-13 (1041 sweeps) and the accelerated
    # default (105 sweeps, engine/accel.py), at ELBOs 1.2e-5 nats higher, both give 0.33077.
    assert ari_ours >= ari_sk - 0.005, (ari_ours, ari_sk)
    # The same q: scikit-learn's own update maps vemppl's fixed point to itself.
    priors = sklearn_priors(k, 1.0, 0.01, xt.mean(0), d + 2.0, np.eye(d))
    for a, b, what in zip(*sklearn_step_from(fit, xt, priors), ("alpha", "beta", "m", "nu", "W^-1")):
        np.testing.assert_allclose(a, b, rtol=0, atol=5e-5 * np.abs(b).max(), err_msg=what)


def test_gmm_matches_sklearn_on_digits():
    x = load_digits().data.astype(float)
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(x))
    x = x[perm]
    xt, xh = x[:1400], x[1400:]
    d = x.shape[1]
    cov_prior = np.cov(xt.T) + 1.0 * np.eye(d)
    fit, sk = fit_both(xt, 10, alpha0=1.0, beta0=1.0, nu0=d + 2.0, cov_prior=cov_prior)
    assert_elbo_monotone(fit.elbo_trace)
    ours = plug_in_loglik(xh, *vemppl_plug_in(fit))
    theirs = plug_in_loglik(xh, sk.weights_, sk.means_, sk.covariances_)
    # Different local optima of the same objective (restarts differ): measured -96.186 against
    # scikit-learn's -96.408 per point, vemppl 0.23% ahead.
    assert ours >= theirs - 1e-3 * abs(theirs), (ours, theirs)
