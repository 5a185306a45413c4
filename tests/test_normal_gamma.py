"""The Normal–Gamma block q(μ, τ) (vemppl/families/normal_gamma.py, compiler/rules/normal_gamma.py).

* The family laws, checked against SciPy and by hand: ``∇A`` by autodiff equals the
  closed-form ``E[T]`` and a Monte Carlo mean of ``T(μ, τ)``; ``⟨η, T⟩ − A + log h`` equals
  ``log N(μ | m, (κτ)⁻¹) + log Ga(τ | a, b)``; the parameter and mean maps round-trip; the
  entropy is ``H[Ga(a, b)] + E[½ log(2πe/(κτ))]``.
* The compiler recognises ``mu ~ Normal(m0, precision = k0 * tau)`` (and ``precision = tau``),
  ``tau ~ Gamma`` from the graph alone, and leaves a model without the pattern mean-field.
* One Gaussian with a Normal–Gamma prior: the fit is the exact conjugate posterior (Murphy
  2007 eqs. 85–89, written below) and its ELBO the exact log evidence (Murphy 2007 eq. 95);
  the mean-field fit of the same model (the rule left out) has a strictly lower ELBO; the
  ELBO never decreases.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as st
from conftest import assert_elbo_monotone
from scipy.special import digamma, gammaln

import vemppl as vp
from vemppl.compiler import compile_model
from vemppl.families.normal_gamma import NormalGamma as NG
from vemppl.plan import BlockStructure

jax.config.update("jax_enable_x64", True)

P = {"loc": np.array([0.5, -2.0, 30.0]), "kappa": np.array([0.3, 2.0, 5.0]),
     "concentration": np.array([2.0, 7.5, 3.0]), "rate": np.array([1.5, 0.4, 9.0])}


def _text(prior_precision: str, mu_loc: str = "m0") -> str:
    return f"""
model ng
dim N
const m0 = 0.5
const k0 = 0.3
const a0 = 2.0
const b0 = 1.5
data x: real[N]
tau ~ Gamma(a0, b0)
mu ~ Normal({mu_loc}, precision = {prior_precision})
for i in range(N) {{ x[i] ~ Normal(mu, precision = tau) }}
"""


# ---- the family -----------------------------------------------------------------------------


def test_gradient_of_the_log_normaliser_is_the_mean_of_the_statistics():
    eta = NG.natural_from_params(**P)
    grad = jax.grad(lambda e: jnp.sum(NG.log_normalizer(e)))(eta)
    m, k, a, b = (P[n] for n in ("loc", "kappa", "concentration", "rate"))
    by_hand = (a / b * m, 1 / k + a / b * m**2, a / b, digamma(a) - np.log(b))
    for g, e, h in zip(grad, NG.expected_stats(eta), by_hand):
        np.testing.assert_allclose(g, h, rtol=1e-12)
        np.testing.assert_allclose(e, h, rtol=1e-12)
    # A Monte Carlo mean of T(μ, τ) over joint draws (τ ~ Ga(a, b), μ | τ ~ N(m, (κτ)⁻¹)).
    rng = np.random.default_rng(0)
    tau = rng.gamma(a, 1 / b, size=(200_000, 3))
    mu = m + rng.normal(size=tau.shape) / np.sqrt(k * tau)
    t = np.stack([tau * mu, tau * mu**2, tau, np.log(tau)])
    se = t.std(1) / np.sqrt(t.shape[1])
    assert np.all(np.abs(t.mean(1) - np.stack(by_hand)) < 6 * se)


def test_log_density_is_normal_times_gamma_and_the_maps_round_trip():
    eta = NG.natural_from_params(**P)
    mu, tau = np.array([0.1, -1.0, 28.0]), np.array([0.7, 3.0, 0.2])
    m, k, a, b = (P[n] for n in ("loc", "kappa", "concentration", "rate"))
    got = sum(e * t for e, t in zip(eta, NG.stats((mu, tau)))) - NG.log_normalizer(eta) + NG.log_base_measure((mu, tau))
    want = st.norm(m, 1 / np.sqrt(k * tau)).logpdf(mu) + st.gamma(a, scale=1 / b).logpdf(tau)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    back = NG.params_from_natural(eta)
    for n in P:
        np.testing.assert_allclose(back[n], P[n], rtol=1e-12)
    again = NG.natural_from_mean(NG.expected_stats(eta))
    for x, y in zip(again, eta):
        np.testing.assert_allclose(x, y, rtol=1e-8)


def test_entropy_is_the_gamma_plus_the_conditional_normal():
    eta = NG.natural_from_params(**P)
    m, k, a, b = (P[n] for n in ("loc", "kappa", "concentration", "rate"))
    e_log_tau = digamma(a) - np.log(b)
    want = st.gamma(a, scale=1 / b).entropy() + 0.5 * np.log(2 * np.pi * np.e / k) - 0.5 * e_log_tau
    np.testing.assert_allclose(NG.entropy(eta), want, rtol=1e-12)
    # The marginal of μ: a Student-t with 2a degrees of freedom, mean m, variance b / (κ(a − 1)).
    q_mu = NG.marginals(eta)["loc"]
    np.testing.assert_allclose(q_mu.mean, m, rtol=1e-12)
    np.testing.assert_allclose(q_mu.variance, b / (k * (a - 1)), rtol=1e-12)


# ---- the compiler ---------------------------------------------------------------------------


@pytest.mark.parametrize("prec", ["k0 * tau", "tau", "tau * k0"])
def test_pattern_makes_one_block(prec):
    plan = compile_model(vp.parse(_text(prec)))
    (b,) = plan.blocks
    assert (b.family, b.structure, b.update, b.members) == (
        "NormalGamma", BlockStructure.JOINT, "cavi", (("loc", "mu"), ("precision", "tau")))
    assert "q(mu, tau): NormalGamma [normal-gamma] -- closed-form CAVI" in str(plan)


@pytest.mark.parametrize("prec, loc", [("k0", "m0"), ("k0 * tau", "m0 * tau")])
def test_without_the_pattern_the_pair_stays_mean_field(prec, loc):
    """An independent prior precision, or a location that reads tau: two mean-field blocks."""
    plan = compile_model(vp.parse(_text(prec, loc)))
    assert sorted((b.name, b.family, str(b.structure)) for b in plan.blocks) == [
        ("mu", "Normal", "mean-field"), ("tau", "Gamma", "mean-field")]


def test_scalar_mixture_gets_one_block_per_component():
    text = """
model sgmm
dim N
const K = 2
data x: real[N]
pi ~ Dirichlet(fill(1.0, K))
for k in range(K) {
    tau[k] ~ Gamma(2.0, 1.0)
    mu[k] ~ Normal(0.0, precision = 0.1 * tau[k])
}
for n in range(N) {
    z[n] ~ Categorical(pi)
    x[n] ~ Normal(mu[z[n]], precision = tau[z[n]])
}
"""
    plan = compile_model(vp.parse(text))
    assert plan.block("mu").members == (("loc", "mu"), ("precision", "tau"))
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(-2.0, 0.5, 60), rng.normal(3.0, 1.0, 60)])
    fit = vp.fit(vp.parse(text), {"x": x}, seed=0, tol=1e-10)
    assert_elbo_monotone(fit.elbo_trace)
    means = np.sort(np.asarray(NG.params_from_natural(fit.state.eta["mu"])["loc"]))
    np.testing.assert_allclose(means, [-2.0, 3.0], atol=0.35)


# ---- exact posterior and evidence -------------------------------------------------------------


def _exact(x, m0, k0, a0, b0):
    """Murphy (2007) eqs. 85–89 and 95: the posterior (m_N, κ_N, a_N, b_N) and log p(x)."""
    n, xbar = len(x), x.mean()
    k_n = k0 + n
    m_n = (k0 * m0 + n * xbar) / k_n
    a_n = a0 + n / 2
    b_n = b0 + 0.5 * np.sum((x - xbar) ** 2) + k0 * n * (xbar - m0) ** 2 / (2 * k_n)
    log_evidence = (gammaln(a_n) - gammaln(a0) + a0 * np.log(b0) - a_n * np.log(b_n)
                    + 0.5 * np.log(k0 / k_n) - n / 2 * np.log(2 * np.pi))
    return (m_n, k_n, a_n, b_n), log_evidence


@pytest.mark.parametrize("prec, k0", [("k0 * tau", 0.3), ("tau", 1.0)])
def test_fit_is_the_exact_posterior_and_evidence_and_beats_mean_field(prec, k0, monkeypatch):
    x = np.random.default_rng(0).normal(1.3, 0.7, size=25)
    (m_n, k_n, a_n, b_n), log_evidence = _exact(x, 0.5, k0, 2.0, 1.5)
    fit = vp.fit(vp.parse(_text(prec)), {"x": x}, tol=1e-12)
    got = NG.params_from_natural(fit.state.eta["mu"])
    np.testing.assert_allclose([got["loc"], got["kappa"], got["concentration"], got["rate"]],
                               [m_n, k_n, a_n, b_n], rtol=1e-12)
    np.testing.assert_allclose(fit.elbo, log_evidence, rtol=0, atol=1e-8)
    assert_elbo_monotone(fit.elbo_trace)
    # The members' marginals under their own names: q(tau) = Ga(a_N, b_N), q(mu) = St(2a_N, m_N, ...).
    np.testing.assert_allclose(fit.posterior["tau"].mean, a_n / b_n, rtol=1e-12)
    np.testing.assert_allclose(fit.posterior["mu"].loc, m_n, rtol=1e-12)

    # The same model mean-field (what it got before this block: the rule left out).
    import vemppl.compiler.compile as compile_module

    monkeypatch.setattr(compile_module, "JOINT_RULES", ())
    mf = vp.fit(vp.parse(_text(prec)), {"x": x}, tol=1e-12)
    assert sorted(b.family for b in mf.plan.blocks) == ["Gamma", "Normal"]
    assert_elbo_monotone(mf.elbo_trace)
    assert mf.elbo < log_evidence - 1e-4, (mf.elbo, log_evidence)


def test_updates_are_written_with_the_familys_statistics():
    from vemppl.render.updates import derived_updates

    text = derived_updates(vp.parse(_text("k0 * tau")), latex=False)
    assert "E[tau mu], E[tau mu²], E[tau], E[log tau]" in text
    assert "Murphy 2007, eqs. 85–89" in text
