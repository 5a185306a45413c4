"""Exponential, InverseGamma, LogNormal and Laplace (LANGUAGE.md's list of distributions).

Expected values are closed forms or quadratures written here, never produced by vemppl:
conjugate posteriors and log evidences (Bishop PRML §2.3–2.4), an Exponential prior whose
posterior is a Gamma, the lognormal as a Normal on log y, and the Laplace likelihood's
Gaussian q(m) against the exact posterior of m on a grid.
"""

import numpy as np
import pytest
from scipy import integrate
from scipy.special import gammaln, logsumexp

import vemppl as vp
from conftest import assert_elbo_monotone

RNG = np.random.default_rng(20261203)


def _fit(text, data, **kw):
    return vp.fit(vp.parse(text), data, progress=False, **kw)


def test_exponential_likelihood_with_a_gamma_rate():
    a0, b0 = 2.0, 1.5
    y = RNG.exponential(1 / 3.0, size=60)
    fit = _fit(f"""
model waits
dim N
data y: pos[N]
lam ~ Gamma({a0}, {b0})
for n in range(N) {{ y[n] ~ Exponential(lam) }}
""", {"y": y})
    q = fit.posterior["lam"]
    np.testing.assert_allclose(q.concentration, a0 + len(y), rtol=1e-12)
    np.testing.assert_allclose(q.rate, b0 + y.sum(), rtol=1e-12)
    evidence = a0 * np.log(b0) + gammaln(a0 + len(y)) - gammaln(a0) - (a0 + len(y)) * np.log(b0 + y.sum())
    np.testing.assert_allclose(fit.elbo, evidence, rtol=1e-10)


def test_an_exponential_prior_has_a_gamma_posterior():
    lam0 = 0.5
    x = RNG.poisson(4.0, size=50)
    text = f"""
model counts
dim N
data x: count[N]
lam ~ Exponential({lam0})
for n in range(N) {{ x[n] ~ Poisson(lam) }}
"""
    plan = vp.compile_model(vp.parse(text))
    assert plan.block("lam").family == "Gamma"
    fit = _fit(text, {"x": x})
    q = fit.posterior["lam"]
    np.testing.assert_allclose(q.concentration, 1.0 + x.sum(), rtol=1e-12)
    np.testing.assert_allclose(q.rate, lam0 + len(x), rtol=1e-12)
    s = x.sum()
    evidence = -gammaln(x + 1.0).sum() + np.log(lam0) + gammaln(1.0 + s) - (1.0 + s) * np.log(lam0 + len(x))
    np.testing.assert_allclose(fit.elbo, evidence, rtol=1e-10)


def test_inverse_gamma_likelihood_with_a_gamma_rate():
    a, a0, b0 = 3.0, 1.0, 2.0
    y = 1.0 / RNG.gamma(a, 1 / 2.5, size=40)  # IG(3, 2.5)
    fit = _fit(f"""
model ig
dim N
data y: pos[N]
b ~ Gamma({a0}, {b0})
for n in range(N) {{ y[n] ~ InverseGamma({a}, b) }}
""", {"y": y})
    q = fit.posterior["b"]
    np.testing.assert_allclose(q.concentration, a0 + a * len(y), rtol=1e-12)
    np.testing.assert_allclose(q.rate, b0 + (1 / y).sum(), rtol=1e-12)
    n = len(y)
    evidence = (a0 * np.log(b0) - gammaln(a0) + gammaln(a0 + n * a) - (a0 + n * a) * np.log(b0 + (1 / y).sum())
                - n * gammaln(a) - (a + 1) * np.log(y).sum())
    np.testing.assert_allclose(fit.elbo, evidence, rtol=1e-10)


def test_lognormal_is_a_normal_on_log_y():
    y = np.exp(RNG.normal(0.7, 0.4, size=80))
    m0, p0, t = 0.0, 0.01, 1 / 0.16
    fit = _fit(f"""
model ln
dim N
data y: pos[N]
m ~ Normal({m0}, precision = {p0})
for n in range(N) {{ y[n] ~ LogNormal(m, precision = {t}) }}
""", {"y": y})
    prec = p0 + len(y) * t
    np.testing.assert_allclose(fit.posterior["m"].loc, (p0 * m0 + t * np.log(y).sum()) / prec, rtol=1e-12)
    np.testing.assert_allclose(fit.posterior["m"].scale, prec**-0.5, rtol=1e-12)
    # With a Gamma precision (mean field): the same fit as the Normal model of log y, its
    # ELBO lower by the Jacobian Σ log y.
    common = "dim N\nm ~ Normal(0.0, precision = 0.01)\ntau ~ Gamma(2.0, 1.0)\n"
    ln = _fit(f"model a\n{common}data y: pos[N]\nfor n in range(N) {{ y[n] ~ LogNormal(m, precision = tau) }}",
              {"y": y}, seed=0)
    nm = _fit(f"model b\n{common}data v: real[N]\nfor n in range(N) {{ v[n] ~ Normal(m, precision = tau) }}",
              {"v": np.log(y)}, seed=0)
    np.testing.assert_allclose(ln.elbo, nm.elbo - np.log(y).sum(), rtol=1e-10)
    np.testing.assert_allclose(ln.posterior["tau"].concentration, nm.posterior["tau"].concentration, rtol=1e-10)
    assert_elbo_monotone(ln.elbo_trace)


def test_folded_normal_mean_is_the_expected_absolute_deviation():
    from vemppl.families.laplace import folded_normal_mean

    for mean, sd, y in [(0.0, 1.0, 0.0), (0.3, 0.5, 1.2), (-2.0, 0.1, 1.0), (1.0, 2.0, 1.0)]:
        exact, _ = integrate.quad(lambda m: abs(y - m) * np.exp(-0.5 * ((m - mean) / sd) ** 2) / (sd * np.sqrt(2 * np.pi)),
                                  mean - 12 * sd, mean + 12 * sd, points=[y], limit=200)
        np.testing.assert_allclose(folded_normal_mean(mean, sd, y), exact, rtol=1e-9)
    assert float(folded_normal_mean(0.5, 0.0, 2.0)) == 1.5


def test_laplace_location_against_the_exact_posterior():
    """Gaussian q(m) for y_n ~ Laplace(m, b), m ~ N(0, 10²): the exact posterior of m on a
    grid; with N = 60 it is close to Gaussian, so q's mean and sd are within a few percent
    of its sd, and the ELBO is below the log evidence by a small gap."""
    b = 0.7
    y = RNG.laplace(1.5, b, size=60)
    fit = _fit(f"""
model lap
dim N
data y: real[N]
m ~ Normal(0.0, scale = 10.0)
for n in range(N) {{ y[n] ~ Laplace(m, {b}) }}
""", {"y": y}, max_iter=500, tol=1e-12)
    assert_elbo_monotone(fit.elbo_trace)
    block = vp.compile_model(vp.parse(f"model lap\ndim N\ndata y: real[N]\nm ~ Normal(0.0, scale = 10.0)\n"
                                      f"for n in range(N) {{ y[n] ~ Laplace(m, {b}) }}")).block("m")
    assert block.update != "cavi"
    # the reason `vemppl check` prints names what is computed: the folded Normal's mean, no quadrature
    assert "closed form" in block.reason and "folded Normal" in block.reason and "quadrature" not in block.reason
    grid = np.linspace(y.mean() - 3, y.mean() + 3, 60001)
    logp = (-0.5 * (grid / 10.0) ** 2 - np.log(10.0 * np.sqrt(2 * np.pi))
            - np.abs(y[:, None] - grid).sum(0) / b - len(y) * np.log(2 * b))
    dx = grid[1] - grid[0]
    log_evidence = logsumexp(logp) + np.log(dx)
    w = np.exp(logp - logsumexp(logp))
    mean = (w * grid).sum()
    sd = np.sqrt((w * (grid - mean) ** 2).sum())
    q = fit.posterior["m"]
    assert abs(float(q.loc) - mean) < 0.1 * sd
    assert abs(float(q.scale) / sd - 1) < 0.15
    assert fit.elbo <= log_evidence + 1e-9
    assert log_evidence - fit.elbo < 0.5


@pytest.mark.parametrize("dist_text, hint", [
    ("Laplace(0.0, 1.0)", "Normal prior"),
    ("LogNormal(0.0, 1.0)", "logarithm"),
    ("InverseGamma(2.0, 1.0)", "Gamma"),
])
def test_a_latent_likelihood_only_family_is_refused_with_a_hint(dist_text, hint):
    text = f"model bad\ndim N\ndata y: pos[N]\ns ~ {dist_text}\nfor n in range(N) {{ y[n] ~ Exponential(s) }}\n"
    with pytest.raises(vp.VemError) as e:
        vp.compile_model(vp.parse(text))
    assert "likelihood only" in str(e.value) and hint in str(e.value)
    assert ":4:" in str(e.value) or "line 4" in str(e.value)


def test_the_python_dsl_builds_the_same_ir():
    m = vp.Model("waits")
    N = m.dim("N")
    m.data("y", vp.pos[N])
    lam = m.sample("lam", vp.Exponential(0.5))
    with m.plate("n", N):
        m.sample("y", vp.LogNormal(0.0, precision=lam))
    assert vp.parse(vp.to_text(m)) == m.ir
