"""Non-conjugate blocks: Bayesian logistic regression (LANGUAGE.md's logreg) against NumPyro's
NUTS on the same data in the same test, and the conjugacy report that names the factor."""

import jax
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.infer import MCMC, NUTS
from sklearn.datasets import load_breast_cancer

import vemppl as vp
from conftest import assert_elbo_monotone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def nuts_logreg(X, y, seed=0):
    def model(X, y):
        tau = numpyro.sample("tau", dist.Gamma(1.0, 1.0))
        w = numpyro.sample("w", dist.Normal(0.0, 1.0 / jax.numpy.sqrt(tau)).expand([X.shape[1]]).to_event(1))
        numpyro.sample("y", dist.Bernoulli(logits=X @ w), obs=y)

    mcmc = MCMC(NUTS(model), num_warmup=500, num_samples=1000, progress_bar=False)
    mcmc.run(jax.random.PRNGKey(seed), X, y)
    return np.asarray(mcmc.get_samples()["w"])


@pytest.fixture(scope="module")
def cancer():
    d = load_breast_cancer()
    X = (d.data - d.data.mean(0)) / d.data.std(0)
    return X, d.target


def test_logreg_matches_nuts(cancer):
    X, y = cancer
    fit = vp.fit(vp.load(ROOT / "models/logreg.vem"), {"X": X, "y": y}, max_iter=500, tol=1e-10)
    assert fit.converged
    assert_elbo_monotone(fit.elbo_trace)
    draws = nuts_logreg(X, y)
    m_nuts, sd_nuts = draws.mean(0), draws.std(0)
    m_vb = np.asarray(fit.posterior["w"].mean)
    z = np.abs(m_vb - m_nuts) / sd_nuts
    assert np.max(z) <= 0.2, (np.max(z), np.argmax(z))


def test_report_names_the_factor_that_breaks_conjugacy():
    plan = vp.compile_model(vp.load(ROOT / "models/logreg.vem"))
    w = plan.block("w")
    assert w.update == "natural-gradient"
    assert "y[n] ~ Bernoulli(logits = dot(X[n], w))" in w.reason
    assert "logreg.vem:9:21" in w.reason
    assert plan.block("tau").update == "cavi"
    assert "q(w)" in str(plan) and "not conjugate" in str(plan)
