"""Models written from docs/language.md alone (round 10 of the outsider checks): each fitted with
default options and compared with a reference computed here without vemppl (scipy, numpy).  Each
test first failed on the code before its fix.
"""

import numpy as np
from scipy import stats

import vemppl as vp


# --- a latent scalar of the loop times a known vector: grid axes paired with grid axes -----------------
SCALED_ROW = """model scaled_row
dim N, D
data y: real[N, D]
for n in range(N) {
  mu[n] ~ Normal(0.0, 10.0)
  y[n] ~ MvNormal(mu[n] * ones(D), eye(D))
}
"""


def test_a_latent_per_row_times_a_known_vector_is_laid_out_on_the_grid():
    # Before: `mu[n] * ones(D)` multiplied mu's [N] means by the [D] vector, pairing the loop's axis
    # with the vector's (NumPy broadcasting from the right), an internal TypeError while compiling
    # ("mul got incompatible shapes (4,), (3,)").  As `cuts - w` already was, the scalar now gets
    # an axis of size one after the grid's.  The model is y[n] ~ N(0, I + 100 11ᵀ) per row, and
    # the one-Gaussian-scalar quadrature makes q(mu) the exact posterior, its ELBO log p(y).
    rng = np.random.default_rng(0)
    N, D = 5, 3
    y = rng.normal(0.0, 1.0, (N, D)) + np.arange(N)[:, None]
    fit = vp.fit(vp.parse(SCALED_ROW), data={"y": y}, seed=0)
    post_prec = D + 0.01
    np.testing.assert_allclose(fit.posterior["mu"].mean, y.sum(1) / post_prec, atol=1e-7)
    np.testing.assert_allclose(fit.posterior["mu"].variance, np.full(N, 1.0 / post_prec), rtol=1e-6)
    cov = np.eye(D) + 100.0 * np.ones((D, D))
    logml = sum(stats.multivariate_normal(np.zeros(D), cov).logpdf(r) for r in y)
    assert abs(fit.elbo - logml) < 1e-6


def test_a_latent_concentration_times_a_known_vector_compiles_to_monte_carlo():
    # A Dirichlet–multinomial with a latent concentration, `Dirichlet(a * fill(1.0, V))` in a loop
    # (docs/language.md: a random Gamma shape goes to the Monte Carlo path).  Before: an internal
    # ValueError "Incompatible shapes for broadcasting: (64, 4), (64, 3, 4)" while compiling, the
    # scalar's draws [S, 1] times the [V] vector giving [S, V] where [S, 1, V] was meant.
    text = """model dmlat
dim D, V
const n = 30
data x: count[D, V]
a ~ Gamma(2.0, 0.5)
for d in range(D) {
  theta[d] ~ Dirichlet(a * fill(1.0, V))
  x[d] ~ Multinomial(n, theta[d])
}
"""
    plan = str(vp.compile_model(vp.parse(text)))
    assert "q(a): Gamma [mean-field] -- natural-gradient" in plan and "Monte Carlo" in plan


# --- a model of params alone: its M-steps are the closed forms the page promises ----------------------
NORMAL_MLE = """model normal_mle
dim N
data y: real[N]
param m: real
param t: pos
for n in range(N) { y[n] ~ Normal(m, precision = t) }
"""


def test_params_without_latents_get_the_closed_form_mode():
    # docs/language.md: a param gets a closed-form M-step where the expected log joint is the log
    # density of a family in it (`m`: Normal mode, `t`: Gamma mode).  The conjugacy probe ran only
    # for models with a latent block, so a model of params alone took Adam steps: 386 sweeps on
    # data centred at 200, stopping 7e-6 (relative) from the maximum likelihood.  Now one M-step
    # lands on it: the sample mean and the reciprocal of the (biased) sample variance.
    y = np.random.default_rng(0).normal(200.0, 3.0, 20)
    model = vp.parse(NORMAL_MLE)
    plan = str(vp.compile_model(model))
    assert "m: real -- closed form (Normal mode)" in plan and "t: pos -- closed form (Gamma mode)" in plan
    fit = vp.fit(model, data={"y": y}, seed=0)
    assert fit.iterations <= 5
    np.testing.assert_allclose(fit.params["m"], y.mean(), rtol=1e-12)
    np.testing.assert_allclose(fit.params["t"], 1.0 / y.var(), rtol=1e-9)
    assert abs(fit.elbo - stats.norm(y.mean(), y.std()).logpdf(y).sum()) < 1e-8


# --- a vector defined in pieces, read whole ----------------------------------------------------------
PIECES = """model pieces
dim N, Q
const P = 2
data X: real[N, Q]
data y: real[N]
for j in range(P) { w[j] ~ Normal(0.0, 1.0) }
for j in range(P, Q) { w[j] ~ Normal(0.0, 10.0) }
for n in range(N) { y[n] ~ Normal(dot(X[n], w), precision = 4.0) }
"""


def test_pieces_over_range_p_and_range_p_q_span_q():
    # Regression weights with a tighter prior on the first P: docs/language.md allows a node in
    # pieces over ranges that do not overlap, and `w` then denotes the whole vector.  Its extent
    # was 'max(P, Q)', so `dot(X[n], w)` with X: real[N, Q] was a shape error ("last sizes
    # differ"), though range(P, Q) is refused unless Q >= P.  Now it is Q, and the fit is the
    # exact conjugate posterior.
    rng = np.random.default_rng(28)
    N, Q = 30, 4
    X = rng.normal(0.0, 1.0, (N, Q))
    y = X @ np.array([1.0, -1.0, 3.0, 0.5]) + rng.normal(0.0, 0.5, N)
    fit = vp.fit(vp.parse(PIECES), data={"X": X, "y": y}, seed=0)
    prior_var = np.array([1.0, 1.0, 100.0, 100.0])
    prec = np.diag(1.0 / prior_var) + 4.0 * X.T @ X
    np.testing.assert_allclose(fit.posterior["w"].mean, np.linalg.solve(prec, 4.0 * X.T @ y), atol=1e-8)
    logml = stats.multivariate_normal(np.zeros(N), X @ np.diag(prior_var) @ X.T + np.eye(N) / 4.0).logpdf(y)
    assert abs(fit.elbo - logml) < 1e-8


# --- an element of a probability vector is a probability -----------------------------------------------
SIMPLEX_ELEMENT = """model simplex_element
dim N
const K = 3
data y: bool[N]
data c: cat(K)[N]
param p: simplex[K]
for n in range(N) { c[n] ~ Categorical(p) }
for n in range(N) { y[n] ~ Bernoulli(p[0]) }
"""


def test_an_element_of_a_simplex_param_is_accepted_as_a_probability():
    # `p[0]` of a simplex lies in (0, 1), but the support check read the whole vector's type:
    # "the probs of Bernoulli must be in (0, 1), but 'p' is declared simplex", a support error at
    # a model the page allows.  The fit is now the maximum-likelihood p, found here by scipy.
    from scipy.optimize import minimize

    rng = np.random.default_rng(0)
    y, c = (rng.random(30) < 0.3).astype(float), rng.integers(0, 3, 30)
    fit = vp.fit(vp.parse(SIMPLEX_ELEMENT), data={"y": y, "c": c}, seed=0)
    k, counts = y.sum(), np.bincount(c, minlength=3)

    def nll(u):
        p = np.exp(u - np.logaddexp.reduce(u))
        return -(counts @ np.log(p) + k * np.log(p[0]) + (len(y) - k) * np.log1p(-p[0]))

    best = minimize(nll, np.zeros(3), method="BFGS", options={"gtol": 1e-10})
    np.testing.assert_allclose(fit.params["p"], np.exp(best.x - np.logaddexp.reduce(best.x)), atol=1e-5)
    assert abs(fit.elbo + best.fun) < 1e-6


def test_an_element_of_a_dirichlet_latent_is_refused_at_the_factor_not_as_a_support_error():
    # The same read of a Dirichlet latent claimed "'p' is drawn from Dirichlet, whose values are
    # simplex. Expected a latent with support unit", which is false of p[0].  Its q has no
    # moment for E[log(1 - p0)], so the general path takes it, which draws whole vectors only:
    # a located `unsupported` error at the factor, as docs/language.md lists such limits.
    text = SIMPLEX_ELEMENT.replace("param p: simplex[K]", "p ~ Dirichlet(ones(K))")
    rng = np.random.default_rng(0)
    data = {"y": (rng.random(10) < 0.3).astype(float), "c": rng.integers(0, 3, 10)}
    try:
        vp.fit(vp.parse(text, filename="de.vem"), data=data, seed=0)
    except vp.VemError as err:
        assert (err.kind, err.file, err.line, err.column) == ("unsupported", "de.vem", 8, 21), err.render()
        assert "part of its vector" in err.message
    else:
        raise AssertionError("fitted a Dirichlet element read the general path cannot draw")


# --- `@` of two vectors, one of them known, is a dot product --------------------------------------------
AT_REG = """model at_reg
dim N, P
data X: real[N, P]
data y: real[N]
for j in range(P) { w[j] ~ Normal(0.0, 1.0) }
for n in range(N) { y[n] ~ Normal(w @ X[n], precision = 4.0) }
"""

AT_MIX = """model at_mix
dim N, P
const K = 2
data X: real[N, P]
data y: real[N]
pi ~ Dirichlet(ones(K))
for k in range(K) { w[k] ~ MvNormal(zeros(P), precision = 0.1 * eye(P)) }
for n in range(N) {
  z[n] ~ Categorical(pi)
  y[n] ~ Normal(X[n] @ w[z[n]], precision = 10.0)
}
"""


def test_a_vector_at_a_known_vector_is_a_dot_product():
    # docs/language.md: `@` is NumPy's matrix product, so for two vectors it is their dot.
    # `w @ X[n]` was an `unsupported` error ("the moment E[(@)] of 'w' is not available") where
    # `X[n] @ w` fitted, and `X[n] @ w[z[n]]` (a mixture of regressions) an internal einsum
    # ValueError: X[n]'s layout in its loop, [N, P], was taken for a matrix.  Now both are dots:
    # the regression's weights one conjugate block, and the mixture recovers its two lines.
    plan = str(vp.compile_model(vp.parse(AT_REG)))
    assert "q(w): MvNormal [joint over last axis] -- closed-form CAVI" in plan
    rng = np.random.default_rng(35)
    N = 60
    X = np.c_[np.ones(N), rng.normal(0.0, 1.0, N)]
    truth, z = np.array([[2.0, 1.0], [-2.0, -1.5]]), rng.integers(0, 2, N)
    y = (X * truth[z]).sum(1) + rng.normal(0.0, 0.3, N)
    w = np.asarray(vp.fit(vp.parse(AT_MIX), data={"X": X, "y": y}, seed=0).posterior["w"].mean)
    np.testing.assert_allclose(w[np.argsort(-w[:, 0])], truth, atol=0.2)
