"""Models written from docs/language.md alone (round 7 of the outsider checks): each fitted and
compared with an independent reference computed here (a maximum-likelihood fit by scipy, a NumPy
CAVI of the same mean-field family, an exact posterior), or pinned as a located refusal.

Each test first failed on the code before its fix.
"""

import numpy as np
import pytest
from scipy import optimize

import vemppl as vp
from conftest import assert_elbo_monotone


# --- a local-level model whose two noise precisions are params (EM for a state space) -------------

LOCAL_LEVEL = """model llev
dim T
param q: pos = 1.0
param r: pos = 1.0
data y: real[T]
x[0] ~ Normal(0.0, 10.0)
for t in range(1, T) { x[t] ~ Normal(x[t-1], precision = q) }
for t in range(T) { y[t] ~ Normal(x[t], precision = r) }
"""


def _kalman_loglik(y, q, r):
    m, p, ll = 0.0, 100.0, 0.0
    for t, yt in enumerate(y):
        p = p + (1.0 / q if t else 0.0)
        s = p + 1.0 / r
        ll -= 0.5 * (np.log(2 * np.pi * s) + (yt - m) ** 2 / s)
        k = p / s
        m, p = m + k * (yt - m), (1 - k) * p
    return ll


def test_em_for_a_local_level_models_noise_reaches_the_maximum_likelihood():
    """The chain block is the exact posterior given (q, r), so EM climbs the marginal
    likelihood to its maximiser.  The accelerated default extrapolated (log q, log r) with an
    unbounded SQUAREM step (α = −417) to q = 1e-138, r = 2e33, where float64 valued the ELBO at
    +1007 (the marginal likelihood there is −115): the guard kept the step, the fit stopped on
    a nan ELBO with r = 4.7e16.  The step is now capped as in SQUAREM's step.max; the fit is the
    scipy maximiser of the Kalman-filter likelihood and its ELBO that likelihood."""
    rng = np.random.default_rng(3)
    x = np.cumsum(rng.normal(0, 0.5, 60))
    y = x + rng.normal(0, 1.0, 60)
    fit = vp.fit(vp.parse(LOCAL_LEVEL), {"y": y}, progress=False, tol=1e-12, max_iter=2000)
    assert_elbo_monotone(fit.elbo_trace)
    res = optimize.minimize(lambda u: -_kalman_loglik(y, *np.exp(u)), [0.0, 0.0], method="Nelder-Mead",
                            options=dict(xatol=1e-10, fatol=1e-12, maxiter=4000))
    q, r = np.exp(res.x)
    np.testing.assert_allclose([fit.params["q"], fit.params["r"]], [q, r], rtol=2e-3)
    assert fit.elbo == pytest.approx(-res.fun, abs=1e-5)


# --- a hurdle model: two data plates, zeros and positive amounts -----------------------------------

HURDLE = """model hurdle
dim N, M
param k: pos
data nz: bool[N]
data pos_y: pos[M]
p ~ Beta(1.0, 1.0)
rate ~ Gamma(1.0, 1.0)
for n in range(N) { nz[n] ~ Bernoulli(p) }
for m in range(M) { pos_y[m] ~ Gamma(k, rate) }
"""


@pytest.fixture(scope="module")
def hurdle():
    rng = np.random.default_rng(6)
    nz = rng.random(50) < 0.6
    data = {"nz": nz, "pos_y": rng.gamma(3.0, 1 / 2.0, nz.sum())}
    return data, vp.fit(vp.parse(HURDLE), data, progress=False)


def test_a_density_over_two_data_plates_is_refused_at_the_factor(hurdle):
    """The per-point density of data on two plates (N zeros, M amounts) has no points to
    split by; the refusal had no location.  It now points at the factor on the second plate."""
    data, fit = hurdle
    with pytest.raises(vp.VemError, match=r"different outer plates \(M, N\)") as err:
        fit.predictive_density({"nz": data["nz"][:3], "pos_y": data["pos_y"][:3]}, samples=1)
    assert err.value.kind == "unsupported" and (err.value.line, err.value.column) == (9, 21)
    assert "predict" in err.value.hint


# --- an element of the transpose of a matrix of latents ---------------------------------------------

def test_an_element_of_a_transposed_latent_matrix_is_that_element():
    """`transpose(B)[k, j]` is `B[j, k]`; a call result may be indexed (docs/language.md), but
    with `B` latent the full index was an `unsupported` error.  The posterior is the exact
    conjugate one, B[j, k] ~ N(4 y[k, j] / (1/4 + 4), 1 / (1/4 + 4)).  A column,
    `transpose(B)[k]`, stays a located refusal."""
    text = """model tr2
dim P, K
data y: real[K, P]
for j in range(P) { for k in range(K) { B[j, k] ~ Normal(0.0, 2.0) } }
for k in range(K) { for j in range(P) { y[k, j] ~ Normal(transpose(B)[k, j], precision = 4.0) } }
"""
    y = np.arange(6.0).reshape(2, 3) - 2.5
    fit = vp.fit(vp.parse(text), {"y": y}, progress=False)
    np.testing.assert_allclose(fit.posterior["B"].mean, 4.0 * y.T / 4.25, rtol=1e-9)
    np.testing.assert_allclose(fit.posterior["B"].variance, np.full((3, 2), 1 / 4.25), rtol=1e-9)
    column = text.replace("y[k, j] ~ Normal(transpose(B)[k, j]", "y[k, j] ~ Normal(dot(transpose(B)[k], ones(P))")
    with pytest.raises(vp.VemError, match="indexing transpose") as err:
        vp.compile_model(vp.parse(column))
    assert err.value.kind == "unsupported" and err.value.line == 5


def test_a_number_beside_a_named_size_says_sizes_are_compared_as_written():
    """`const A: real[2, 2]` times `ones(K)` with `const K = 2` is refused at compile time
    (sizes are symbols: `--set K=3` may change K); the bare 'inner sizes differ' read as
    wrong where 2 = K, so the error now says why and what to write."""
    text = """model sizes
const K = 2
const A: real[2, 2] = 0.0
data y: real[K]
for k in range(K) { y[k] ~ Normal((A @ ones(K))[k], 1.0) }
"""
    with pytest.raises(vp.VemError, match="inner sizes differ") as err:
        vp.parse(text)
    assert err.value.kind == "shape" and (err.value.line, err.value.column) == (5, 36)
    assert "2 and K differ even where K = 2" in err.value.hint and "write both as K" in err.value.hint


# --- a constant given at fit time outside its distribution's support --------------------------------

SCALE_MIX = """model tmix
dim N
const nu = 4.0
const s = 1.0
const alpha: real[3] = 1.0
data y: real[N]
w ~ Dirichlet(alpha)
for n in range(N) {
    lam[n] ~ Gamma(nu / 2, nu / 2)
    y[n] ~ Normal(0.0, s)
}
"""


@pytest.mark.parametrize("given, where, what", [
    ({"nu": 0.0}, (9, 20), "concentration of Gamma must be positive; this one is 0, with nu"),
    ({"s": -1.0}, (10, 24), "scale of Normal must be positive; this one is -1, with s"),
    ({"alpha": [1.0, -2.0, 1.0]}, (7, 15), "concentration of Dirichlet must be positive; this one is -2 (among"),
])
def test_a_constant_given_at_fit_time_outside_the_support_is_a_located_error(given, where, what):
    """docs/language.md: a constant argument outside the distribution's support is a `support`
    error at the model.  The constants' own values were checked as the model was built, but one
    given at fit time (`--set nu=0`) went unchecked: a nan ELBO at iteration 1, an unlocated
    `data` error."""
    y = np.array([0.3, -1.2, 0.8])
    with pytest.raises(vp.VemError, match=r"\(from consts=\)") as err:
        vp.fit(vp.parse(SCALE_MIX), {"y": y}, consts=given, progress=False)
    assert err.value.kind == "support" and (err.value.line, err.value.column) == where
    assert what in err.value.message


# --- new data whose global sizes differ from the fit's ----------------------------------------------

def test_new_data_with_another_number_of_columns_is_a_data_error():
    """`predict` bound the new arrays afresh, so X with one column instead of two re-bound P = 1:
    a mixture of regressions scored the rows against the first coefficient only (exit 0, a
    held-out ELBO of -17 a point where the fitted rows score -0.77), and a GMM's x with one
    coordinate was an internal reshape error.  The globals' sizes are now the fit's."""
    text = """model lin
dim N, P
data X: real[N, P]
data y: real[N]
for j in range(P) { w[j] ~ Normal(0.0, 1.0) }
for n in range(N) { y[n] ~ Normal(dot(X[n], w), 1.0) }
"""
    X = np.array([[1.0, 0.5], [1.0, -0.3], [1.0, 1.2], [1.0, 0.0]])
    y = X @ np.array([0.5, 2.0])
    fit = vp.fit(vp.parse(text), {"X": X, "y": y}, progress=False)
    with pytest.raises(vp.VemError, match=r"P = 2 from the fitted model, but 'X' axis 1 has size 1") as err:
        fit.predict({"X": X[:2, :1], "y": y[:2]})
    assert err.value.kind == "data" and err.value.line == 3


# --- a Gaussian chain's marginal scales where the observations are nearly exact ---------------------

def test_a_chains_marginal_scale_survives_a_huge_observation_precision():
    """q(x_t)'s scale was sqrt(E[x²] − E[x]²), which is nan or 0 once the variance is below
    1e-16 of E[x]² (a local level observed with precision 1e16): `predict` on such a fit was an
    internal error, NumPyro refusing the scale (exit 1).  The scale is now the square root of
    diag(J⁻¹) from the chain's two eliminations, compared here with NumPy's inverse of J."""
    from vemppl.families.gaussian_chain import GaussianChain, GaussianChainStats
    T, r, q = 6, 1e16, 0.4
    d = np.full(T, r + 2 * q)
    d[[0, -1]] = r + q
    J = np.diag(d) - q * (np.eye(T, k=1) + np.eye(T, k=-1))
    m = np.linspace(-1.0, 1.5, T)
    eta = GaussianChainStats(J @ m, -0.5 * d, np.full(T - 1, q))
    got = GaussianChain.to_numpyro(eta)
    np.testing.assert_allclose(got.scale, np.sqrt(np.diag(np.linalg.inv(J))), rtol=1e-12)
    np.testing.assert_allclose(got.loc, m, rtol=1e-9)
