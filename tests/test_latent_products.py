"""Products of latents (issue #20, rows 4 and 6): ``W @ h[n]``, ``h[n] @ V``, a latent
scalar times a matrix as a precision, and a product of two latent scalars as a precision.

* PPCA written ``MvNormal(W @ h[n], precision = 4.0 * eye(D))`` is the same model, with the
  same variational family and the same updates, as ``Normal(dot(W[j], h[n]), precision = 4.0)``
  per coordinate: the ELBO traces and posterior means agree to 1e-8 with one seed, and both
  blocks are closed-form CAVI (a diagonal precision never reads two rows of W together).
* The expected log joint of ``W @ h`` under a precision that is not diagonal, and of
  ``h @ V``, against the same expectation written here as a sum over a brute-force
  4-index tensor ``E[A_il A_kl']`` (no row-wise shortcut), at mean parameters chosen here.
* The Normal–Gamma regression ``w ~ MvNormal(0, precision = kappa0 * tau * eye(P))``: under
  mean field ``q(w) q(tau)`` the mean of w is the exact posterior mean ``(XᵀX + κ0 I)⁻¹Xᵀy``
  (its natural parameters are E[τ](XᵀX + κ0 I) and E[τ]Xᵀy, whose ratio does not depend on
  E[τ]), and E[τ] is the fixed point of the two textbook updates (Bishop, PRML §10.3),
  iterated here in NumPy.
"""

import numpy as np
import pytest

import vemppl as vp
from conftest import assert_elbo_monotone
from vemppl.diagnostics import VemError
from vemppl.elj.binding import Bound
from vemppl.elj.joint import Joint
from vemppl.families import get_family
from vemppl.plan import Update

LOG2PI = np.log(2 * np.pi)

PPCA_MATMUL = """
model ppca_matmul
dim N, D
const L = 2
data x: real[N, D]
for j in range(D) { W[j] ~ MvNormal(zeros(L), precision = eye(L)) }
for n in range(N) {
    h[n] ~ MvNormal(zeros(L), precision = eye(L))
    x[n] ~ MvNormal(W @ h[n], precision = 4.0 * eye(D))
}
"""
PPCA_DOT = PPCA_MATMUL.replace(
    "x[n] ~ MvNormal(W @ h[n], precision = 4.0 * eye(D))",
    "for j in range(D) { x[n, j] ~ Normal(dot(W[j], h[n]), precision = 4.0) }",
)
# W as a matrix of scalar Normals, read whole: one MvNormal block per row (the joint-vector rule).
MATRIX_ROWS = "for j in range(D) { W[j] ~ MvNormal(zeros(L), precision = eye(L)) }"
MATRIX_ELEMS = "for j in range(D) { for l in range(L) { W[j, l] ~ Normal(0, precision = 1.0) } }"


def ppca_data(seed=3, n=80, d=5, factors=2):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((d, factors))
    return rng.standard_normal((n, factors)) @ w.T + 0.5 * rng.standard_normal((n, d))


def assert_same_fit(a, b, names):
    ta, tb = np.asarray(a.elbo_trace), np.asarray(b.elbo_trace)
    assert ta.shape == tb.shape
    np.testing.assert_allclose(ta, tb, rtol=0, atol=1e-8)
    for k in names:
        np.testing.assert_allclose(np.asarray(a.posterior[k].mean), np.asarray(b.posterior[k].mean), rtol=0, atol=1e-8)


@pytest.mark.parametrize("prior", [MATRIX_ROWS, MATRIX_ELEMS], ids=["rows", "matrix"])
def test_ppca_matmul_equals_per_coordinate_dot(prior):
    x = ppca_data()
    fits = []
    for text in (PPCA_MATMUL, PPCA_DOT):
        # Plain sweeps: the two traces are compared sweep by sweep, and an accelerated fit may
        # reach an ELBO constant to the last bit (and stop) a sweep or two before the other.
        fit = vp.fit(vp.parse(text.replace(MATRIX_ROWS, prior)), data={"x": x}, seed=0, max_iter=40, tol=0.0,
                     algorithm=vp.cavi(accelerate=False))
        assert {b.name: b.update for b in fit.plan.blocks} == {"W": Update.CAVI, "h": Update.CAVI}
        assert fit.plan.block("W").init.value == "prior draw"  # the bilinear rule sees W @ h[n] too
        assert_elbo_monotone(fit.elbo_trace)
        fits.append(fit)
    assert len(fits[0].elbo_trace) == 40
    assert fits[0].elbo_trace[-1] - fits[0].elbo_trace[0] > 100.0  # the fits moved
    assert_same_fit(*fits, ["W", "h"])


def test_location_plus_product_is_conjugate():
    """``m + W @ h[n]`` (the issue's spelling): the sum keeps the product's own quadratic form."""
    text = PPCA_MATMUL.replace("W @ h[n]", "m + W @ h[n]").replace(
        "for n in range(N) {", "for j in range(D) { m[j] ~ Normal(0, precision = 1e-2) }\nfor n in range(N) {", 1)
    per_coordinate = PPCA_DOT.replace("dot(W[j], h[n])", "m[j] + dot(W[j], h[n])").replace(
        "for n in range(N) {", "for j in range(D) { m[j] ~ Normal(0, precision = 1e-2) }\nfor n in range(N) {", 1)
    x = ppca_data() + 3.0
    fit = vp.fit(vp.parse(text), data={"x": x}, seed=0, max_iter=60, tol=0.0)
    assert all(b.update is Update.CAVI for b in fit.plan.blocks), fit.plan.blocks
    assert_elbo_monotone(fit.elbo_trace)
    ref = vp.fit(vp.parse(per_coordinate), data={"x": x}, seed=0, max_iter=60, tol=0.0)
    np.testing.assert_allclose(fit.elbo_trace[-1], ref.elbo_trace[-1], rtol=1e-9)
    np.testing.assert_allclose(np.asarray(fit.posterior["m"].mean), np.asarray(ref.posterior["m"].mean), atol=1e-6)


# ---- the expected log joint at chosen mean parameters, against a brute-force tensor -------
def _mvn(mean, cov):
    fam = get_family("MvNormal")
    lam = np.linalg.inv(cov)
    eta = fam.Stats(np.einsum("...ij,...j->...i", lam, mean), -0.5 * lam)
    return eta, fam.Stats(mean, cov + mean[..., :, None] * mean[..., None, :])


def _random_cov(rng, *shape):
    a = rng.standard_normal(shape + (shape[-1],))
    return a @ np.swapaxes(a, -1, -2) / shape[-1] + 0.5 * np.eye(shape[-1])


def _pair_moments(m_rows, c_rows):
    """E[A_il A_kl'] for a matrix A with independent rows (means m_rows, covariances c_rows)."""
    d = m_rows.shape[0]
    t = np.einsum("il,km->ilkm", m_rows, m_rows)
    for i in range(d):
        t[i, :, i, :] += c_rows[i]
    return t


def test_matmul_under_a_full_precision_matches_brute_force():
    rng = np.random.default_rng(0)
    n, d, l = 4, 3, 2
    lam = np.array([[2.0, 0.6, 0.0], [0.6, 1.5, -0.4], [0.0, -0.4, 1.0]])
    text = f"""model m
dim N, D
const L = 2
data Lam: real[D, D]
data x: real[N, D]
for j in range(D) {{ W[j] ~ MvNormal(zeros(L), precision = eye(L)) }}
for n in range(N) {{
    h[n] ~ MvNormal(zeros(L), precision = eye(L))
    x[n] ~ MvNormal(W @ h[n], precision = Lam)
}}
"""
    model = vp.parse(text)
    plan = vp.compile_model(model)
    # A precision that is not diagonal weighs two rows of W together: not affine in q(W).
    assert plan.block("W").update is Update.NATURAL_GRADIENT and "rows" in plan.block("W").reason
    assert plan.block("h").update is Update.CAVI
    x = rng.standard_normal((n, d))
    mw, cw = rng.standard_normal((d, l)), _random_cov(rng, d, l)
    mh, ch = rng.standard_normal((n, l)), _random_cov(rng, n, l)
    ew, uw = _mvn(mw, cw)
    eh, uh = _mvn(mh, ch)
    joint = Joint(model, plan, Bound({"N": n, "D": d, "L": l}, {"x": x, "L": np.asarray(2.0), "Lam": lam}))
    got = joint.expected_log_joint({"W": uw, "h": uh}, {"W": ew, "h": eh}, {}, joint.data, factors=plan.factors[:1])
    t = _pair_moments(mw, cw)
    ref = 0.0
    for i in range(n):
        s = ch[i] + np.outer(mh[i], mh[i])
        e_y = mw @ mh[i]
        e_yy = np.einsum("lm,ilkm->ik", s, t)  # E[(W h)(W h)ᵀ] = Σ_{l,l'} E[h_l h_l'] E[W_il W_kl']
        quad = x[i] @ lam @ x[i] - 2 * x[i] @ lam @ e_y + np.sum(lam * e_yy)
        ref += 0.5 * np.linalg.slogdet(lam)[1] - 0.5 * d * LOG2PI - 0.5 * quad
    np.testing.assert_allclose(float(got), ref, rtol=1e-12)


def test_vector_times_rows_matches_brute_force():
    rng = np.random.default_rng(1)
    n, d, l = 4, 3, 2
    text = """model m
dim N, D
const L = 2
data x: real[N, D]
for k in range(L) { V[k] ~ MvNormal(zeros(D), precision = eye(D)) }
for n in range(N) {
    h[n] ~ MvNormal(zeros(L), precision = eye(L))
    x[n] ~ MvNormal(h[n] @ V, precision = 2.0 * eye(D))
}
"""
    model = vp.parse(text)
    plan = vp.compile_model(model)
    # Σ_l h_l v_l: the rows of V are weighted together by E[h hᵀ] (never diagonal).
    assert plan.block("V").update is Update.NATURAL_GRADIENT and "rows" in plan.block("V").reason
    assert plan.block("h").update is Update.CAVI
    x = rng.standard_normal((n, d))
    mv, cv = rng.standard_normal((l, d)), _random_cov(rng, l, d)
    mh, ch = rng.standard_normal((n, l)), _random_cov(rng, n, l)
    ev, uv = _mvn(mv, cv)
    eh, uh = _mvn(mh, ch)
    joint = Joint(model, plan, Bound({"N": n, "D": d, "L": l}, {"x": x, "L": np.asarray(2.0)}))
    got = joint.expected_log_joint({"V": uv, "h": uh}, {"V": ev, "h": eh}, {}, joint.data, factors=plan.factors[:1])
    t = _pair_moments(mv, cv)  # E[V_lj V_l'k]
    ref = 0.0
    for i in range(n):
        s = ch[i] + np.outer(mh[i], mh[i])
        e_y = mh[i] @ mv
        e_yy = np.einsum("lm,ljmk->jk", s, t)
        quad = 2.0 * (x[i] @ x[i] - 2 * x[i] @ e_y + np.trace(e_yy))
        ref += 0.5 * d * np.log(2.0) - 0.5 * d * LOG2PI - 0.5 * quad
    np.testing.assert_allclose(float(got), ref, rtol=1e-12)


def test_vector_times_rows_fits_with_a_monotone_elbo():
    x = ppca_data(seed=5, n=60, d=4)
    text = """model m
dim N, D
const L = 2
data x: real[N, D]
for k in range(L) { V[k] ~ MvNormal(zeros(D), precision = eye(D)) }
for n in range(N) {
    h[n] ~ MvNormal(zeros(L), precision = eye(L))
    x[n] ~ MvNormal(h[n] @ V, precision = 4.0 * eye(D))
}
"""
    fit = vp.fit(vp.parse(text), data={"x": x}, seed=0, max_iter=60)
    assert_elbo_monotone(fit.elbo_trace)
    assert fit.elbo_trace[-1] - fit.elbo_trace[0] > 50.0, fit.elbo_trace[[0, -1]]


# ---- row 6: a latent scalar times a matrix as a precision ---------------------------------
NORMAL_GAMMA = """
model mvprec
dim N, P
data X: real[N, P]
data y: real[N]
const kappa0 = 0.1
tau ~ Gamma(2.0, 2.0)
w ~ MvNormal(zeros(P), precision = kappa0 * tau * eye(P))
for n in range(N) { y[n] ~ Normal(dot(X[n], w), precision = tau) }
"""


def test_normal_gamma_regression_matches_closed_form():
    rng = np.random.default_rng(1)
    n, p, k0, a0, b0 = 40, 3, 0.1, 2.0, 2.0
    X = rng.standard_normal((n, p))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.7 * rng.standard_normal(n)
    fit = vp.fit(vp.parse(NORMAL_GAMMA), data={"X": X, "y": y}, seed=0, max_iter=200, tol=0.0)
    assert {b.name: b.update for b in fit.plan.blocks} == {"tau": Update.CAVI, "w": Update.CAVI}
    assert_elbo_monotone(fit.elbo_trace)
    A = X.T @ X + k0 * np.eye(p)
    m = np.linalg.solve(A, X.T @ y)  # the exact Normal–Gamma posterior mean of w
    np.testing.assert_allclose(np.asarray(fit.posterior["w"].mean), m, rtol=0, atol=1e-8)
    # Mean field: q(tau) = Gamma(a0 + N/2 + P/2, b0 + ½E‖y − Xw‖² + ½κ0 E[wᵀw]),
    # q(w) = N(m, (E[τ] A)⁻¹), iterated to their fixed point.
    e_tau = a0 / b0
    for _ in range(200):
        S = np.linalg.inv(e_tau * A)
        r = y - X @ m
        rate = b0 + 0.5 * (r @ r + np.trace(X.T @ X @ S)) + 0.5 * k0 * (m @ m + np.trace(S))
        shape = a0 + 0.5 * n + 0.5 * p
        e_tau = shape / rate
    q_tau = fit.posterior["tau"]
    np.testing.assert_allclose(float(q_tau.mean), e_tau, rtol=1e-8)
    np.testing.assert_allclose(float(q_tau.concentration), shape, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(fit.posterior["w"].covariance_matrix), np.linalg.inv(e_tau * A), rtol=1e-7)


def test_precision_a_product_of_two_latent_scalars():
    """``Normal(mu, precision = a * tau)``: E[a τ] = E[a]E[τ], E[log aτ] = E[log a] + E[log τ],
    affine in each Gamma's statistics, so all three blocks are CAVI; compared with the three
    textbook mean-field updates iterated here in NumPy (the mean-field fixed point)."""
    rng = np.random.default_rng(2)
    y = 1.5 + rng.standard_normal(30) / 2.0
    text = """model m
dim N
data y: real[N]
a ~ Gamma(3.0, 3.0)
tau ~ Gamma(2.0, 1.0)
mu ~ Normal(0, precision = 0.01)
for n in range(N) { y[n] ~ Normal(mu, precision = a * tau) }
"""
    fit = vp.fit(vp.parse(text), data={"y": y}, seed=0, max_iter=2000, tol=0.0)
    assert all(b.update is Update.CAVI for b in fit.plan.blocks), fit.plan.blocks
    assert_elbo_monotone(fit.elbo_trace)
    n = len(y)
    e_a, e_t, m, v = 1.0, 2.0, 0.0, 100.0
    for _ in range(5000):
        prec = 0.01 + n * e_a * e_t
        m, v = e_a * e_t * y.sum() / prec, 1.0 / prec
        ss = np.sum((y - m) ** 2) + n * v
        e_a = (3.0 + n / 2) / (3.0 + 0.5 * e_t * ss)
        e_t = (2.0 + n / 2) / (1.0 + 0.5 * e_a * ss)
    np.testing.assert_allclose(float(fit.posterior["mu"].mean), m, rtol=1e-8)
    np.testing.assert_allclose(float(fit.posterior["a"].mean), e_a, rtol=1e-6)
    np.testing.assert_allclose(float(fit.posterior["tau"].mean), e_t, rtol=1e-6)


def test_precision_a_latent_scalar_times_a_wishart():
    """``precision = tau * Lam``: E[log|τΛ|] = D E[log τ] + E[log|Λ|], E[τΛ] = E[τ]E[Λ]; both
    blocks CAVI, compared with the two mean-field updates iterated here in NumPy:
    q(Λ) = Wishart(ν0 + N, (S0⁻¹ + E[τ] Σ x xᵀ)⁻¹), q(τ) = Gamma(a0 + N D / 2, b0 + ½ tr(E[Λ] Σ x xᵀ))."""
    rng = np.random.default_rng(4)
    n, d, nu0, a0, b0 = 50, 3, 5.0, 2.0, 2.0
    x = rng.multivariate_normal(np.zeros(d), [[1.0, 0.5, 0.0], [0.5, 2.0, 0.3], [0.0, 0.3, 0.5]], size=n)
    text = """model m
dim N, D
data x: real[N, D]
tau ~ Gamma(2.0, 2.0)
Lam ~ Wishart(D + 2, eye(D))
for n in range(N) { x[n] ~ MvNormal(zeros(D), precision = tau * Lam) }
"""
    fit = vp.fit(vp.parse(text), data={"x": x}, seed=0, max_iter=3000, tol=0.0)
    assert all(b.update is Update.CAVI for b in fit.plan.blocks), fit.plan.blocks
    assert_elbo_monotone(fit.elbo_trace)
    sxx = x.T @ x
    e_tau = a0 / b0
    for _ in range(3000):
        e_lam = (nu0 + n) * np.linalg.inv(np.eye(d) + e_tau * sxx)
        e_tau = (a0 + n * d / 2) / (b0 + 0.5 * np.sum(e_lam * sxx))
    np.testing.assert_allclose(float(fit.posterior["tau"].mean), e_tau, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(fit.posterior["Lam"].mean), e_lam, rtol=1e-6)


@pytest.mark.parametrize("expr", ["tau * tau", "W @ W[0]"])
def test_a_product_of_a_latent_with_itself_is_refused_at_its_factor(expr):
    """E[ττ] ≠ E[τ]E[τ]: a located `unsupported` error, not moments that would be wrong."""
    text = f"""model m
dim N, D
data x: real[N, D]
tau ~ Gamma(2.0, 2.0)
for j in range(D) {{ W[j] ~ MvNormal(zeros(D), precision = eye(D)) }}
for n in range(N) {{ x[n] ~ MvNormal({'zeros(D)' if 'tau' in expr else expr}, precision = {'(' + expr + ') * eye(D)' if 'tau' in expr else 'eye(D)'}) }}
"""
    with pytest.raises(VemError) as err:
        vp.compile_model(vp.parse(text))
    assert err.value.kind == "unsupported" and "with itself" in err.value.message
    assert err.value.line == 6


def test_a_param_times_a_matrix_as_a_precision_has_a_closed_form_mstep():
    """``precision = alpha * eye(D)`` with ``param alpha: pos``: E[log|αI|] = D log α is read
    as the Gamma statistic log α, so the M-step is closed form, α = N·D / Σ_n E‖x_n − μ‖²,
    at the fixed point with q(μ) = N((1 + Nα)⁻¹ Nα x̄, (1 + Nα)⁻¹ I), iterated here in NumPy."""
    x = np.random.default_rng(0).standard_normal((50, 3)) * 0.5 + 1.0
    text = """model m
dim N, D
param alpha: pos
data x: real[N, D]
mu ~ MvNormal(zeros(D), precision = eye(D))
for n in range(N) { x[n] ~ MvNormal(mu, precision = alpha * eye(D)) }
"""
    fit = vp.fit(vp.parse(text), data={"x": x}, max_iter=500, tol=0.0)
    assert fit.plan.params[0].mstep.value == "closed-form" and fit.plan.params[0].family == "Gamma"
    assert_elbo_monotone(fit.elbo_trace)
    n, d = x.shape
    alpha = 1.0
    for _ in range(500):
        v = 1.0 / (1.0 + n * alpha)
        m = v * n * alpha * x.mean(axis=0)
        alpha = n * d / (np.sum((x - m) ** 2) + n * d * v)
    np.testing.assert_allclose(float(fit.params["alpha"]), alpha, rtol=1e-8)
