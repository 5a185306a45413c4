"""The Normal–Wishart block q(μ, Λ) (vemppl/families/normal_wishart.py) and what it makes exact.

* The family laws of tests/test_families.py, for a structured family (it has no NumPyro
  class, so its own table here): ``∇A`` by autodiff equals the closed-form ``E[T]`` and a
  Monte Carlo mean of ``T(μ, Λ)``; ``⟨η, T⟩ − A + log h`` equals ``log N(μ | m, (βΛ)⁻¹) +
  log W(Λ | W, ν)`` from SciPy; parameter and mean maps round-trip; the entropy matches
  Monte Carlo; the marginal of μ is the multivariate Student-t (Kolmogorov–Smirnov on a
  projection) with the covariance the family reports.
* The compiler recognises ``mu ~ MvNormal(m0, precision = beta0 * Lam)``, ``Lam ~ Wishart``
  from the graph alone, and leaves a model without the pattern mean-field.
* One Gaussian with a Normal–Wishart prior: one CAVI sweep gives the exact conjugate
  posterior (formula written below, Murphy 2007 §8 / Bishop PRML 10.60–10.63 with one
  component) and the ELBO equals the exact log evidence.
* The exact posterior predictive density: on the GMM, the Student-t mixture of Bishop
  PRML eq. 10.81 written here with scipy.stats.multivariate_t, to 1e-8.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as st
from scipy.special import logsumexp, multigammaln

import vemppl as vp
from vemppl.families import ExpFamily
from vemppl.families.normal_wishart import NormalWishart as NW
from vemppl.plan import BlockStructure

jax.config.update("jax_enable_x64", True)

MC = 20_000
SIGMAS = 6.0  # z-score allowed for a Monte Carlo mean (fixed keys)

EXAMPLES = [
    {"loc": np.array([0.5, -1.0]), "beta": 2.0, "concentration": 5.0,
     "scale_matrix": np.array([[0.8, 0.2], [0.2, 0.5]])},
    {"loc": np.random.default_rng(1).normal(size=(3, 3)), "beta": np.array([0.3, 1.0, 7.0]),
     "concentration": np.array([4.5, 6.0, 20.0]),
     "rate_matrix": np.stack([np.eye(3) * s + 0.1 for s in (0.5, 1.0, 3.0)])},
]


def _scipy_log_density(p, mu, lam):
    """log N(μ | m, (βΛ)⁻¹) + log W(Λ | W, ν), one example element (no batch)."""
    scale = p.get("scale_matrix")
    scale = np.linalg.inv(p["rate_matrix"]) if scale is None else scale
    normal = st.multivariate_normal(p["loc"], np.linalg.inv(p["beta"] * lam)).logpdf(mu)
    return normal + st.wishart(df=p["concentration"], scale=scale).logpdf(lam)


def _element(p, i):
    return {k: (np.asarray(v)[i] if np.ndim(v) > (1 if k == "loc" else 2 if k.endswith("matrix") else 0) else v)
            for k, v in p.items()}


@pytest.fixture(scope="module", params=range(len(EXAMPLES)))
def case(request):
    p = EXAMPLES[request.param]
    eta = NW.natural_from_params(**p)

    @jax.jit
    def laws(eta, key):
        draws = NW.sample(eta, key, (MC,))
        t = NW.stats((draws["loc"], draws["precision"]))
        log_q = NW.inner(eta, t) - NW.log_normalizer(eta) + NW.log_base_measure((draws["loc"], draws["precision"]))
        return {
            "closed": NW.expected_stats(eta),
            "autodiff": ExpFamily.expected_stats.__func__(NW, eta),
            "mc_mean": [s.mean(0) for s in t],
            "mc_se": [s.std(0) / np.sqrt(MC) for s in t],
            "entropy": NW.entropy(eta),
            "mc_entropy": -log_q.mean(0),
            "mc_entropy_se": log_q.std(0) / np.sqrt(MC),
            "log_q": log_q[:5],
            "draws": draws,
        }

    return p, eta, jax.device_get(laws(eta, jax.random.PRNGKey(request.param)))


def test_expected_stats_is_grad_of_log_normalizer(case):
    _, _, laws = case
    for field, a, b in zip(laws["closed"]._fields, laws["closed"], laws["autodiff"]):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=field)


def test_expected_stats_match_monte_carlo(case):
    _, _, laws = case
    for field, mean, se, mu in zip(laws["closed"]._fields, laws["mc_mean"], laws["mc_se"], laws["closed"]):
        err = np.abs(mean - mu)
        assert np.all(err <= SIGMAS * se + 1e-10), f"{field}: error {err.max():.3g}"


def test_density_is_normal_times_wishart(case):
    p, _, laws = case
    mus, lams = laws["draws"]["loc"][:5], laws["draws"]["precision"][:5]
    batch = mus.shape[1:-1]
    for i in range(5):
        for b in np.ndindex(*batch):
            elem = _element(p, b) if batch else p
            ref = _scipy_log_density(elem, mus[(i, *b)], lams[(i, *b)])
            np.testing.assert_allclose(laws["log_q"][(i, *b)], ref, rtol=1e-10)


def test_parameter_and_mean_maps_round_trip(case):
    _, eta, laws = case
    back = NW.natural_from_params(**NW.params_from_natural(eta))
    for field, a, b in zip(eta._fields, back, eta):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=field)
    inv = NW.natural_from_mean(NW.expected_stats(eta))
    for field, a, b in zip(eta._fields, inv, eta):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-10, err_msg=field)  # Newton on ν


def test_entropy_matches_monte_carlo(case):
    _, _, laws = case
    err = np.abs(laws["entropy"] - laws["mc_entropy"])
    assert np.all(err <= SIGMAS * laws["mc_entropy_se"] + 1e-10), err


def test_marginal_of_the_location_is_student_t(case):
    """q(μ) = St(m, W⁻¹/((ν−D+1)β), ν−D+1): a projection aᵀμ of joint draws follows the
    univariate t with scale sqrt(aᵀΣa), and the t's covariance is the family's Cov[μ]."""
    _, eta, laws = case
    t = NW.marginals(eta)["loc"]
    mus = laws["draws"]["loc"].reshape(MC, -1, t.loc.shape[-1])
    scale = np.asarray(t.scale_tril).reshape(-1, *t.scale_tril.shape[-2:])
    df, loc = np.broadcast_to(t.df, t.loc.shape[:-1]).ravel(), np.asarray(t.loc).reshape(-1, t.loc.shape[-1])
    a = np.linspace(1.0, -0.5, loc.shape[-1])
    for b in range(loc.shape[0]):
        sd = np.sqrt(a @ scale[b] @ scale[b].T @ a)
        res = st.kstest(mus[:, b] @ a, st.t(df[b], loc=loc[b] @ a, scale=sd).cdf)
        assert res.pvalue > 1e-3, res
    mom = NW.member_means(eta)["loc"]
    cov = np.asarray(mom["outer"]) - np.einsum("...i,...j->...ij", mom["mean"], mom["mean"])
    sigma = np.asarray(t.scale_tril @ np.swapaxes(t.scale_tril, -1, -2))  # NumPyro's "covariance_matrix" is Σ
    dof = np.asarray(t.df)[..., None, None]
    np.testing.assert_allclose(dof / (dof - 2.0) * sigma, cov, rtol=1e-10)


# ---- the compiler's rule ------------------------------------------------------------------


def _gaussian_model(prior_precision):
    m = vp.Model("gaussian_nw")
    N, D = m.dim("N", "D")
    m0, beta0, nu0, W0 = m.const("m0", vp.zeros(D)), m.const("beta0", 1.0), m.const("nu0", D + 2), m.const("W0", vp.eye(D))
    m.data("x", vp.real[N, D])
    Lam = m.sample("Lam", vp.Wishart(nu0, W0))
    mu = m.sample("mu", vp.MvNormal(m0, precision=prior_precision(beta0, Lam, D)))
    with m.plate("n", N):
        m.sample("x", vp.MvNormal(mu, precision=Lam))
    return m


def test_pattern_makes_one_block_and_its_absence_stays_mean_field():
    from vemppl.compiler import compile_model

    joint = compile_model(_gaussian_model(lambda c, lam, d: c * lam))
    (b,) = joint.blocks
    assert (b.family, b.structure, b.update, b.members) == (
        "NormalWishart", BlockStructure.JOINT, "cavi", (("loc", "mu"), ("precision", "Lam")))
    assert b.structure_text == "normal-wishart"  # as the plan prints it (the family's block_text)
    # An independent prior on mu: no pattern, two mean-field blocks.
    apart = compile_model(_gaussian_model(lambda c, lam, d: c * vp.eye(d)))
    assert sorted((b.name, b.family, b.structure) for b in apart.blocks) == [
        ("Lam", "Wishart", "mean-field"), ("mu", "MvNormal", "mean-field")]


# ---- exact conjugate posterior and evidence -----------------------------------------------


def test_one_sweep_gives_the_exact_normal_wishart_posterior_and_evidence():
    """Posterior (Murphy 2007 eqs. 251–254; Bishop 10.60–10.63 with r_n = 1):
    β_N = β0 + N, m_N = (β0 m0 + N x̄)/β_N, ν_N = ν0 + N,
    W_N⁻¹ = W0⁻¹ + S + β0 N/(β0 + N) (x̄ − m0)(x̄ − m0)ᵀ with S = Σ (x_n − x̄)(x_n − x̄)ᵀ.
    Evidence (Murphy 2007 eq. 266): log p(X) = −(ND/2) log π + log Γ_D(ν_N/2) − log Γ_D(ν0/2)
    + (ν0/2) log|W0⁻¹| − (ν_N/2) log|W_N⁻¹| + (D/2) log(β0/β_N)."""
    rng = np.random.default_rng(3)
    d, n = 3, 40
    x = rng.multivariate_normal([1.0, -0.5, 2.0], [[1.0, 0.3, 0.0], [0.3, 0.6, 0.1], [0.0, 0.1, 2.0]], size=n)
    m0, beta0, nu0 = np.array([0.2, 0.0, -0.3]), 0.7, d + 1.5
    W0 = np.array([[0.9, 0.1, 0.0], [0.1, 1.2, 0.2], [0.0, 0.2, 0.5]])
    fit = vp.fit(_gaussian_model(lambda c, lam, dd: c * lam), {"x": x},
                 consts={"m0": m0, "beta0": beta0, "nu0": nu0, "W0": W0}, max_iter=1)

    xbar = x.mean(0)
    S = (x - xbar).T @ (x - xbar)
    beta_n, nu_n = beta0 + n, nu0 + n
    m_n = (beta0 * m0 + n * xbar) / beta_n
    rate_n = np.linalg.inv(W0) + S + beta0 * n / (beta0 + n) * np.outer(xbar - m0, xbar - m0)
    got = NW.params_from_natural(fit.state.eta["mu"])
    np.testing.assert_allclose(got["beta"], beta_n, rtol=1e-12)
    np.testing.assert_allclose(got["loc"], m_n, rtol=1e-12)
    np.testing.assert_allclose(got["concentration"], nu_n, rtol=1e-12)
    np.testing.assert_allclose(got["rate_matrix"], rate_n, rtol=1e-10)
    # The marginals under the members' names.
    np.testing.assert_allclose(fit.posterior["Lam"].mean, nu_n * np.linalg.inv(rate_n), rtol=1e-10)
    np.testing.assert_allclose(fit.posterior["mu"].loc, m_n, rtol=1e-12)
    np.testing.assert_allclose(fit.posterior["mu"].df, nu_n - d + 1, rtol=1e-12)

    log_evidence = (-n * d / 2 * np.log(np.pi) + multigammaln(nu_n / 2, d) - multigammaln(nu0 / 2, d)
                    + nu0 / 2 * np.linalg.slogdet(np.linalg.inv(W0))[1] - nu_n / 2 * np.linalg.slogdet(rate_n)[1]
                    + d / 2 * np.log(beta0 / beta_n))
    np.testing.assert_allclose(fit.elbo, log_evidence, rtol=1e-10)


# ---- the exact posterior predictive -------------------------------------------------------


def _gmm():
    m = vp.Model("gmm_nw")
    N, D = m.dim("N", "D")
    K = m.const("K", 3)
    m.data("x", vp.real[N, D])
    pi = m.sample("pi", vp.Dirichlet(vp.fill(1.0, K)))
    with m.plate("k", K):
        Lam = m.sample("Lam", vp.Wishart(D + 2, vp.eye(D)))
        mu = m.sample("mu", vp.MvNormal(vp.zeros(D), precision=0.05 * Lam))
    with m.plate("n", N):
        z = m.sample("z", vp.Categorical(pi))
        m.sample("x", vp.MvNormal(mu[z], precision=Lam[z]))
    return m


@pytest.fixture(scope="module")
def gmm_fit():
    rng = np.random.default_rng(0)
    c = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    x = c[rng.integers(3, size=320)] + rng.normal(size=(320, 2)) * np.array([1.0, 0.6])
    return vp.fit(_gmm(), {"x": x[:250]}, seed=0, tol=1e-10), x[250:]


def test_predictive_density_is_bishop_10_81(gmm_fit):
    """p(x̂ | X) = Σ_k (α_k / Σα) St(x̂ | m_k, L_k, ν_k + 1 − D), L_k = (ν_k + 1 − D) β_k W_k / (1 + β_k)
    (Bishop PRML eq. 10.81-10.82; scipy's ``shape`` is L_k⁻¹)."""
    fit, xh = gmm_fit
    ours = fit.predictive_density({"x": xh})
    assert ours.method == "exact" and ours.shape == (len(xh),)
    p = NW.params_from_natural(fit.state.eta["mu"])
    alpha = np.asarray(fit.posterior["pi"].concentration)
    d = xh.shape[1]
    comps = []
    for k in range(len(alpha)):
        beta, nu = float(p["beta"][k]), float(p["concentration"][k])
        shape = (1 + beta) / ((nu + 1 - d) * beta) * np.asarray(p["rate_matrix"][k])  # L_k⁻¹ = W_k⁻¹ (1+β)/((ν+1−D)β)
        t = st.multivariate_t(np.asarray(p["loc"][k]), shape, df=nu + 1 - d)
        comps.append(np.log(alpha[k] / alpha.sum()) + t.logpdf(xh))
    np.testing.assert_allclose(ours, logsumexp(np.stack(comps, -1), -1), rtol=0, atol=1e-8)


def test_predictive_density_falls_back_to_monte_carlo_and_says_why():
    """A mean-field q(mu) q(Lam): x's factor reads two blocks, no closed form."""
    from pathlib import Path

    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 2)) + np.array([[0.0, 0.0], [5.0, 5.0]])[rng.integers(2, size=60)]
    fit = vp.fit(vp.load(Path(__file__).resolve().parents[1] / "models/gmm.vem"), {"x": x[:50]},
                 consts={"K": 2}, seed=0)
    with pytest.raises(vp.VemError, match="reads q\\(Lam\\), q\\(mu\\)"):
        fit.predictive_density({"x": x[50:]}, exact=True)
    mc = fit.predictive_density({"x": x[50:]}, samples=20)
    assert mc.method == "monte-carlo" and "Normal–Wishart" in mc.reason


def test_save_load_keeps_the_joint_block(gmm_fit, tmp_path):
    fit, xh = gmm_fit
    fit.save(tmp_path / "r")
    back = vp.load_results(tmp_path / "r")
    for field, a, b in zip(fit.state.eta["mu"]._fields, back.state.eta["mu"], fit.state.eta["mu"]):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=field)
    for name in ("mu", "Lam", "pi"):
        np.testing.assert_allclose(np.asarray(back.posterior[name].mean), np.asarray(fit.posterior[name].mean), rtol=1e-14)
    np.testing.assert_allclose(back.predictive_density({"x": xh}), fit.predictive_density({"x": xh}), rtol=1e-14)
    draws = back.sample_posterior(draws=5)
    assert draws["mu"].shape == (5, 3, 2) and draws["Lam"].shape == (5, 3, 2, 2)
