"""A linear-Gaussian data plate fitted on its first two moments (engine/moment_rows.py).

* plan level: the compiler marks the plate of factor analysis and PPCA (``Plan.moment_plate``)
  and of no other shipped model, nor of models that read data as a covariate, gate a mixture,
  or let a local set a precision; the default tolerance follows it;
* the moment rows: their weighted mean and covariance are the data's (checked by NumPy,
  rank-deficient data included);
* the fit: factor analysis against its EM updates written out in NumPy on every row
  (Ghahramani & Hinton 1996; Bishop, PRML §12.2.4, as coordinate M-steps in the plan's order
  W, psi, m), sweep by sweep (parameters and ELBO), and against scikit-learn's optimum;
  the same trace as the fit on every row (``compress=False``); a mask falls back to every row.
"""

import numpy as np
import pytest
from sklearn.decomposition import FactorAnalysis

import vemppl as vp
from conftest import assert_elbo_monotone
from dsl_models import MODELS_DIR
from vemppl.engine.algorithms import MOMENT_TOL, Cavi
from vemppl.engine.moment_rows import MomentRows, sigma_points

FA = vp.load(MODELS_DIR / "fa.vem")


def fa_data(seed=0, n=400, d=6, l=2):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(d, l))
    sd = rng.uniform(0.3, 1.2, size=d)
    return rng.normal(size=d) + rng.normal(size=(n, l)) @ W.T + sd * rng.normal(size=(n, d))


# ------------------------------------------------------------------------------------- plan level

@pytest.mark.parametrize("name", ["fa", "ppca"])
def test_linear_gaussian_plates_are_marked(name):
    plan = vp.compile_model(vp.load(MODELS_DIR / f"{name}.vem"))
    assert plan.moment_plate == "N"
    assert "data plate over N: linear-Gaussian" in str(plan)
    assert Cavi().for_plan(plan, None)[1] == MOMENT_TOL
    assert Cavi(compress=False).for_plan(plan, None)[1] == 1e-8  # every row: the usual default
    assert Cavi().for_plan(plan, 1e-4)[1] == 1e-4  # the user's tol wins


@pytest.mark.parametrize("name", ["gmm", "bernoulli_mixture", "hmm", "hmm_categorical", "lda", "lda_docs", "linreg",
                                  "logreg", "poisson_mixture", "robust", "hierarchical", "vae"])
def test_other_models_are_not_marked_and_keep_their_plan(name):
    plan = vp.compile_model(vp.load(MODELS_DIR / f"{name}.vem"))
    assert plan.moment_plate is None
    assert "data plate over" not in str(plan)
    # the usual default, or the admixture schedule's own (engine/algorithms.py: 2e-3 since 305698d)
    assert Cavi().for_plan(plan, None)[1] in (1e-8, 2e-3)


NOT_LINEAR = {
    # a covariate: the local's precision reads the data (x[n]² h[n]²)
    "covariate": """model m
dim N
data x: real[N]
data y: real[N]
param s: pos
for n in range(N) {
    h[n] ~ Normal(0, 1)
    y[n] ~ Normal(x[n] * h[n], precision = s)
}""",
    # the local sets the data's precision
    "local precision": """model m
dim N
data y: real[N]
for n in range(N) {
    t[n] ~ Gamma(2, 2)
    y[n] ~ Normal(0, precision = t[n])
}""",
    # a mixture: a categorical local gates the data
    "mixture": """model m
dim N
const K = 3
data y: real[N]
param mu: real[K]
for n in range(N) {
    z[n] ~ Categorical(ones(K) / K)
    y[n] ~ Normal(mu[z[n]], 1)
}""",
    # two locals in one factor: each one's update reads the other's row
    "two locals": """model m
dim N
data y: real[N]
for n in range(N) {
    a[n] ~ Normal(0, 1)
    b[n] ~ Normal(0, 1)
    y[n] ~ Normal(a[n] + b[n], 1)
}""",
}


@pytest.mark.parametrize("name", sorted(NOT_LINEAR))
def test_plates_that_are_not_linear_gaussian_are_not_marked(name):
    assert vp.compile_model(vp.parse(NOT_LINEAR[name])).moment_plate is None


def test_a_written_linear_gaussian_plate_is_marked():
    """Not a shipped model: a local scalar factor per row read by two data arrays."""
    text = """model m
dim N
data y: real[N]
data u: real[N, 2]
param a: real[2]
param s: pos
for n in range(N) {
    h[n] ~ Normal(0, 1)
    y[n] ~ Normal(3 * h[n], precision = s)
    for k in range(2) { u[n, k] ~ Normal(a[k] * h[n] + 1, 2) }
}"""
    assert vp.compile_model(vp.parse(text)).moment_plate == "N"


# -------------------------------------------------------------------------------------- the rows

@pytest.mark.parametrize("rank_deficient", [False, True])
def test_sigma_rows_have_the_datas_mean_and_covariance(rank_deficient):
    x = np.random.default_rng(1).normal(size=(300, 5)) * [1.0, 2.0, 0.5, 3.0, 1.0] + 4.0
    if rank_deficient:
        x[:, 3] = 2.0 * x[:, 0] - x[:, 1]  # collinear
        x[:, 4] = 7.0  # constant
    mean, basis, scale = sigma_points(x)
    s = np.concatenate([mean + (scale * basis).T, mean - (scale * basis).T])
    r = np.linalg.matrix_rank(np.cov(x.T))
    assert s.shape == (2 * r, 5)
    np.testing.assert_allclose(s.mean(0), x.mean(0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s.T @ s / len(s), x.T @ x / len(x), rtol=1e-10, atol=1e-10)


# ------------------------------------------------------------------------------ the fit, against EM

def em_sweeps(x, W, psi, m, sweeps):
    """Factor analysis by EM in NumPy on every row, the M-step as the plan's coordinate steps
    (W given m, then psi given W, then m given W and psi); psi is the noise *precision*.
    Returns the params after each sweep and the ELBO after each sweep (q(h) from the sweep's
    E-step, the params after its M-step), as vemppl's trace records it."""
    n, d = x.shape
    l = W.shape[1]
    out, elbos = [], []
    for _ in range(sweeps):
        S = np.linalg.inv(np.eye(l) + W.T @ (psi[:, None] * W))  # Cov q(h_n), every row
        Eh = (x - m) @ (psi[:, None] * W) @ S  # [n, l]
        Shh = n * S + Eh.T @ Eh  # Σ_n E[h hᵀ]
        W = ((x - m).T @ Eh) @ np.linalg.inv(Shh)
        resid = (x - m) ** 2 - 2 * (x - m) * (Eh @ W.T)
        quad = resid.sum(0) + np.einsum("jk,kl,jl->j", W, Shh, W)  # Σ_n E[(x_nj − m_j − W_j h_n)²]
        psi = n / quad
        m = (x - Eh @ W.T).mean(0)
        quad = ((x - m - Eh @ W.T) ** 2).sum(0) + np.einsum("jk,kl,jl->j", W, n * S, W)
        e_log_lik = 0.5 * n * np.sum(np.log(psi)) - 0.5 * n * d * np.log(2 * np.pi) - 0.5 * np.sum(psi * quad)
        e_log_prior = -0.5 * n * l * np.log(2 * np.pi) - 0.5 * np.trace(Shh)
        entropy = n * 0.5 * (l * np.log(2 * np.pi * np.e) + np.linalg.slogdet(S)[1])
        out.append((W.copy(), psi.copy(), m.copy()))
        elbos.append(e_log_lik + e_log_prior + entropy)
    return out, np.array(elbos)


def start(d=6, l=2):
    rng = np.random.default_rng(5)
    return dict(W=rng.normal(size=(d, l)), psi=rng.uniform(0.5, 2.0, d), m=rng.normal(size=d))


def test_fa_sweeps_are_the_em_updates_on_every_row():
    x = fa_data()
    init = start()
    ref, ref_elbo = em_sweeps(x, init["W"], init["psi"], init["m"], 12)
    fit = vp.fit(FA, {"x": x}, init=init, max_iter=12, tol=0.0, progress=False)
    assert fit.plan.moment_plate == "N" and fit.iterations == 12
    np.testing.assert_allclose(fit.elbo_trace, ref_elbo, rtol=1e-10)
    W, psi, m = ref[-1]
    np.testing.assert_allclose(fit.params["W"], W, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(fit.params["psi"], psi, rtol=1e-8)
    np.testing.assert_allclose(fit.params["m"], m, rtol=1e-8, atol=1e-10)
    # Every row's q(h_n) is the last sweep's E-step: its posterior at the params before the last M-step.
    W, psi, m = ref[-2]
    S = np.linalg.inv(np.eye(2) + W.T @ (psi[:, None] * W))
    np.testing.assert_allclose(np.asarray(fit.posterior["h"].mean), (x - m) @ (psi[:, None] * W) @ S, rtol=1e-7,
                               atol=1e-9)


def test_fa_default_fit_reaches_sklearns_optimum():
    x = fa_data(seed=2, n=3000, d=8, l=3)
    fit = vp.fit(FA, {"x": x}, consts={"L": 3}, progress=False)  # no options
    assert fit.converged
    assert_elbo_monotone(fit.elbo_trace)
    p = fit.params
    cov = p["W"] @ p["W"].T + np.diag(1.0 / p["psi"])
    sign, logdet = np.linalg.slogdet(cov)
    c = x - p["m"]
    loglik = -0.5 * (np.einsum("ni,ij,nj->", c, np.linalg.inv(cov), c) + len(x) * (logdet + 8 * np.log(2 * np.pi)))
    sk = FactorAnalysis(3, tol=1e-6, max_iter=10000, svd_method="lapack").fit(x)
    sk_loglik = sk.score(x) * len(x)
    assert loglik >= sk_loglik - 1e-6 * len(x), (loglik, sk_loglik)  # within 1e-6 nats per row
    assert abs(fit.elbo - loglik) <= 1e-6 * len(x)  # q(h) exact: the bound is the log-likelihood


def test_moment_rows_give_the_trace_of_every_row():
    x = fa_data(seed=3, n=500)
    init = start()
    # Plain sweeps (accelerate=False): a kept SQUAREM step (engine/accel.py) multiplies the two
    # fits' rounding differences by α², beyond this test's 1e-11.
    small = vp.fit(FA, {"x": x}, init=init, max_iter=40, tol=0.0, progress=False, algorithm=vp.cavi(accelerate=False))
    full = vp.fit(FA, {"x": x}, init=init, max_iter=40, tol=0.0, progress=False,
                  algorithm=vp.cavi(compress=False, accelerate=False))
    assert isinstance(full.engine.unit_weights, type(None))
    np.testing.assert_allclose(small.elbo_trace, full.elbo_trace, rtol=1e-11)
    for k in ("W", "psi", "m"):
        np.testing.assert_allclose(small.params[k], full.params[k], rtol=1e-8, atol=1e-10)
    # Each row's q(h_n) is its last sweep's E-step (at the params before the last M-step), read
    # off the moment rows' as an affine function of the row.
    np.testing.assert_allclose(np.asarray(small.posterior["h"].mean), np.asarray(full.posterior["h"].mean),
                               rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(np.asarray(small.posterior["h"].covariance_matrix),
                               np.asarray(full.posterior["h"].covariance_matrix), rtol=1e-8, atol=1e-12)
    assert float(small.engine.elbo(small.state)) == pytest.approx(small.elbo, rel=1e-10)


def test_moment_rows_are_used_and_a_mask_falls_back_to_every_row(monkeypatch):
    import vemppl.engine.fit as engine_fit

    used = []
    real = engine_fit.moment_rows

    def spy(*args, **kw):
        out = real(*args, **kw)
        used.append(None if out is None else out[1])
        return out

    monkeypatch.setattr(engine_fit, "moment_rows", spy)
    x = fa_data(seed=4, n=300)
    vp.fit(FA, {"x": x}, max_iter=5, progress=False)
    assert isinstance(used[-1], MomentRows) and len(used[-1].weights) == 12 and used[-1].rows == 300
    mask = np.ones_like(x, bool)
    mask[0, 1] = False
    fit = vp.fit(FA, {"x": x}, mask={"x": mask}, max_iter=30, progress=False)
    assert used[-1] is None
    assert_elbo_monotone(fit.elbo_trace)


def test_ppca_on_moment_rows_is_monotone_and_reaches_the_fit_on_every_row():
    rng = np.random.default_rng(1)
    W = rng.standard_normal((10, 2)) * 2.0
    x = rng.standard_normal((300, 2)) @ W.T + 0.5 * rng.standard_normal((300, 10)) + 1.0
    model = vp.load(MODELS_DIR / "ppca.vem")
    small = vp.fit(model, {"x": x}, consts={"L": 4}, seed=0, max_iter=3000, tol=1e-10, progress=False)
    full = vp.fit(model, {"x": x}, consts={"L": 4}, seed=0, max_iter=3000, tol=1e-10, progress=False,
                  algorithm=vp.cavi(compress=False))
    assert_elbo_monotone(small.elbo_trace)
    assert abs(small.elbo - full.elbo) <= 1e-6 * abs(full.elbo), (small.elbo, full.elbo)
