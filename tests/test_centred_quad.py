"""The Gaussian factors' expected quadratic valued from centred moments and η, with the
affine form's gradient (families/base.py ``exact_value``), and the closed-form Wishart and
Normal–Wishart entropies (issue #23: a GMM at data scale 1e6 lost 0.008 nats a sweep).

References are independent of the code under test: exact rational arithmetic
(``fractions``) on the same float64 inputs, scipy's Wishart entropy, and the affine
(moment) form itself where the two must agree (unit scale)."""

from __future__ import annotations

import sys
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import digamma
from scipy.stats import wishart as sp_wishart

from vemppl.elj.moments import BlockMoments, MemberMoments
from vemppl.families import get_family
from vemppl.families.base import fixed

W, MVN, NW, N1 = (get_family(n) for n in ("Wishart", "MvNormal", "NormalWishart", "Normal"))


def _src(name, fam, eta):
    src = BlockMoments(name, fam, fam.expected_stats(eta), eta, None)
    src.eta_matches = True
    return src


def _gmm_sources(scale, prec=((0.02, 0.005), (0.005, 0.01))):
    """A component fitted to one point x far from the origin (its rate I + x xᵀ is
    stretched along x; the GMM of issue #23 at scale 1e6), read at 1.5 x."""
    x = np.array([3.0, -2.0]) * scale
    rate = np.eye(2) + np.outer(x, x)
    eta_lam = W.natural_from_params(5.0, rate_matrix=rate)
    eta_mu = MVN.natural_from_params(loc=np.array([0.25, -0.5]), precision_matrix=np.asarray(prec))
    return 1.5 * x, rate, eta_lam, eta_mu


def _exact_quad(x, rate, eta_mu, nu=5):
    """ν (x − m)ᵀ R⁻¹ (x − m) + ν tr(R⁻¹ Σ) in exact rationals (D = 2)."""
    m, sigma, _ = (np.asarray(a) for a in sys.modules["vemppl.families.mvnormal"]._moments(eta_mu))
    F = lambda a: [[Fraction(float(v)) for v in row] for row in np.atleast_2d(a)]
    (a, b), (c, d) = F(rate)
    det = a * d - b * c
    inv = [[d / det, -b / det], [-c / det, a / det]]
    diff = [Fraction(float(xi)) - Fraction(float(mi)) for xi, mi in zip(x, m)]
    s = F(sigma)
    q = sum(diff[i] * inv[i][j] * diff[j] for i in range(2) for j in range(2))
    tr = sum(inv[i][j] * s[j][i] for i in range(2) for j in range(2))
    return float(nu * (q + tr))


def _quad_of(value, loc, lam):
    """The quadratic a factor value implies: −2(E[log N] − ½E[log|Λ|] + log 2π)."""
    out = MVN.expected_log_prob(value, loc, precision_matrix=lam)
    return float(-2.0 * (out - 0.5 * lam.logdet + jnp.log(2.0 * jnp.pi)))


@pytest.fixture
def affine_only(monkeypatch):
    """The moment form alone (the value before this change), for comparisons."""
    def use(flag):
        if flag:
            for mod in ("vemppl.families.mvnormal", "vemppl.families.normal"):
                monkeypatch.setattr(sys.modules[mod], "exact_value", lambda affine, exact: affine)
        else:
            monkeypatch.undo()
    return use


def test_far_from_the_origin_the_value_is_100x_closer_to_exact(affine_only):
    """At scale 1e6 the moment form is off by 2.4e-4 of the quadratic; the centred value by
    2.5e-6, what the Cholesky factor of a rate with condition number 1e13 allows (eps
    times it, in the directions off x: the reason a GMM at 1e7 still drops by 0.08)."""
    x, rate, eta_lam, eta_mu = _gmm_sources(1e6, prec=1e8 * np.eye(2))
    ref = _exact_quad(x, rate, eta_mu)
    got = _quad_of(fixed(x), _src("mu", MVN, eta_mu), _src("Lam", W, eta_lam))
    assert abs(got - ref) <= 1e-5 * abs(ref), (got, ref)
    affine_only(True)
    naive = _quad_of(fixed(x), _src("mu", MVN, eta_mu), _src("Lam", W, eta_lam))
    assert abs(naive - ref) > 1e-4 * abs(ref)  # what the moment form loses (the test can fail)


@pytest.mark.parametrize("scale", [1.0, 1e6])
def test_the_gradient_is_the_moment_forms(scale, affine_only):
    """∇ over every block's statistics is unchanged: the CAVI updates read it."""
    x, rate, eta_lam, eta_mu = _gmm_sources(scale)

    def L(mu_stats, lam_stats):
        loc = BlockMoments("mu", MVN, mu_stats, eta_mu, None)
        lam = BlockMoments("Lam", W, lam_stats, eta_lam, None)
        loc.eta_matches = lam.eta_matches = True
        return MVN.expected_log_prob(fixed(x), loc, precision_matrix=lam)

    args = (MVN.expected_stats(eta_mu), W.expected_stats(eta_lam))
    g = jax.grad(L, argnums=(0, 1))(*args)
    affine_only(True)
    g0 = jax.grad(L, argnums=(0, 1))(*args)
    for a, b in zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(g0)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_at_unit_scale_the_value_is_the_moment_forms(affine_only):
    x, _, eta_lam, eta_mu = _gmm_sources(1.0)
    args = (fixed(x), _src("mu", MVN, eta_mu), _src("Lam", W, eta_lam))
    got = _quad_of(*args)
    affine_only(True)
    assert got == pytest.approx(_quad_of(*args), rel=1e-10, abs=1e-10)


def test_normal_scalar_far_and_near(affine_only):
    x, m = 3141592.653589793, 3141593.1234
    eta = N1.natural_from_params(loc=m, precision=4.0)
    m = float(N1.mean_cov(eta)[0])
    ref = float((Fraction(x) - Fraction(m)) ** 2 + Fraction(1, 4))  # (x − m)² + 1/τ
    val = lambda: -2.0 * float(N1.expected_log_prob(fixed(x), _src("m", N1, eta), precision=fixed(1.0))
                               + 0.5 * np.log(2 * np.pi))
    assert val() == pytest.approx(ref, rel=1e-12)
    affine_only(True)
    assert abs(val() - ref) > 1e-6  # x² − 2xm + E[m²] at 1e13 loses it


def test_normal_wishart_pair_value_and_gradient(affine_only):
    eta = NW.natural_from_params(np.array([0.3, -0.2]), 2.0, 6.0, rate_matrix=np.array([[2.0, 0.3], [0.3, 1.0]]))
    x = np.array([1.5, 0.7])

    def L(stats):
        lam = MemberMoments("b", NW, stats, eta, None, "precision")
        loc = MemberMoments("b", NW, stats, eta, None, "loc")
        lam.eta_matches = loc.eta_matches = True
        return MVN.expected_log_prob(fixed(x), loc, precision_matrix=lam)

    stats = NW.expected_stats(eta)
    v, g = jax.value_and_grad(L)(stats)
    # Bishop 10.64: E[(x − μ)ᵀΛ(x − μ)] = D/β + ν (x − m)ᵀ W (x − m).
    beta, m, nu, rate = 2.0, np.array([0.3, -0.2]), 6.0, np.array([[2.0, 0.3], [0.3, 1.0]])
    quad = 2 / beta + nu * (x - m) @ np.linalg.solve(rate, x - m)
    assert float(v) == pytest.approx(0.5 * float(stats.logdet) - np.log(2 * np.pi) - 0.5 * quad, rel=1e-12)
    affine_only(True)
    v0, g0 = jax.value_and_grad(L)(stats)
    assert float(v) == pytest.approx(float(v0), rel=1e-10)
    for a, b in zip(g, g0):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("scale", [1.0, 1e2])
def test_wishart_entropy_is_scipys(scale):
    x = np.array([3.0, -2.0]) * scale
    rate = np.eye(2) + np.outer(x, x)
    eta = W.natural_from_params(5.0, rate_matrix=rate)
    ref = sp_wishart(df=5.0, scale=np.linalg.inv(rate) if scale == 1.0 else _inv_exact(rate)).entropy()
    assert float(W.entropy(eta)) == pytest.approx(ref, rel=1e-10)


def _inv_exact(r):
    (a, b), (c, d) = [[Fraction(float(v)) for v in row] for row in r]
    det = a * d - b * c
    return np.array([[float(d / det), float(-b / det)], [float(-c / det), float(a / det)]])


def test_normal_wishart_entropy_is_wishart_plus_conditional_normal():
    """H[μ, Λ] = H[Λ] + E_Λ[H[μ | Λ]] = H_W + (D/2)(1 + log 2π) − (D/2) log β − ½ E[log|Λ|]."""
    rate, beta, nu, d = np.array([[2.0, 0.3], [0.3, 1.0]]), 2.0, 6.0, 2
    eta = NW.natural_from_params(np.array([0.4, -0.1]), beta, nu, rate_matrix=rate)
    e_logdet = digamma((nu + 1 - np.arange(1, d + 1)) / 2).sum() + d * np.log(2) - np.linalg.slogdet(rate)[1]
    ref = (sp_wishart(df=nu, scale=np.linalg.inv(rate)).entropy() + 0.5 * d * (1 + np.log(2 * np.pi))
           - 0.5 * d * np.log(beta) - 0.5 * e_logdet)
    assert float(NW.entropy(eta)) == pytest.approx(ref, rel=1e-10)
