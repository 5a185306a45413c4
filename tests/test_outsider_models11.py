"""Uses of vemppl written from docs/language.md, cli.md and the README alone (round 11 of the
outsider checks: the docs read statement by statement).  Each test first failed on the code
before its fix.
"""

import numpy as np
import pytest
from scipy import stats
from scipy.special import gammaln

import vemppl as vp


# --- a random scalar times a known vector (and a known scalar times a random vector) ------------------
# `m * ones(D)` and `x[n] * mu` are the expressions the reference lists (arithmetic, NumPy
# broadcasting).  Before: an internal error (einsum/broadcast shapes) inside a loop, and for
# `x[n] * mu` with N == D a silently wrong fit (the grid axis n paired with mu's own axis).

def _evidence(y, cov):
    return stats.multivariate_normal(np.zeros(y.size), cov).logpdf(y.ravel())


def test_known_scalar_times_latent_vector_is_the_exact_conjugate_posterior():
    rng = np.random.default_rng(1)
    n, d = 3, 3  # n == D: the case that fitted silently wrong (n != D raised)
    x, y = rng.normal(size=n), rng.normal(size=(n, d))
    m = vp.parse("model b\ndim N\nconst D = 3\ndata y: real[N, D]\ndata x: real[N]\n"
                 "mu ~ MvNormal(zeros(D), eye(D))\nfor n in range(N) { y[n] ~ MvNormal(x[n] * mu, eye(D)) }")
    fit = vp.fit(m, data={"x": x, "y": y}, seed=0)
    prec = 1.0 + x @ x  # posterior precision of each coordinate of mu
    np.testing.assert_allclose(fit.posterior["mu"].mean, (x @ y) / prec, rtol=1e-6)
    np.testing.assert_allclose(fit.posterior["mu"].covariance_matrix, np.eye(d) / prec, rtol=1e-6)
    # q is the exact posterior, so the ELBO is the log evidence: vec(y) ~ N(0, I + (x xᵀ) ⊗ I)
    np.testing.assert_allclose(fit.elbo, _evidence(y, np.eye(n * d) + np.kron(np.outer(x, x), np.eye(d))), rtol=1e-8)


def test_latent_scalar_times_known_vector_is_closed_form_and_exact():
    rng = np.random.default_rng(2)
    n, d = 6, 3
    y = rng.normal(0.7, 1.0, size=(n, d))
    m = vp.parse("model a\ndim N\nconst D = 3\ndata y: real[N, D]\nm ~ Normal(0, 1)\n"
                 "for n in range(N) { y[n] ~ MvNormal(m * ones(D), eye(D)) }")
    plan = str(vp.compile_model(m))
    assert "q(m): Normal [mean-field] -- closed-form CAVI" in plan, plan
    fit = vp.fit(m, data={"y": y}, seed=0)
    prec = 1.0 + n * d
    np.testing.assert_allclose(fit.posterior["m"].mean, y.sum() / prec, rtol=1e-8)
    np.testing.assert_allclose(fit.posterior["m"].variance, 1.0 / prec, rtol=1e-8)
    np.testing.assert_allclose(fit.elbo, _evidence(y, np.eye(n * d) + np.ones((n * d, n * d))), rtol=1e-8)
    # one latent per row (local, and so fitted on the rows' two moments): each row's own evidence
    m = vp.parse("model a\ndim N\nconst D = 3\ndata y: real[N, D]\n"
                 "for n in range(N) { m[n] ~ Normal(0, 1)\n y[n] ~ MvNormal(m[n] * ones(D), eye(D)) }")
    fit = vp.fit(m, data={"y": y}, seed=0)
    rows = stats.multivariate_normal(np.zeros(d), np.eye(d) + np.ones((d, d))).logpdf(y).sum()
    np.testing.assert_allclose(fit.elbo, rows, rtol=1e-8)
    np.testing.assert_allclose(fit.posterior["m"].mean, y.sum(1) / (1 + d), rtol=1e-6)


def test_latent_scalar_times_a_vector_under_a_nonlinear_family_is_drawn_per_row():
    """`Dirichlet(c * ones(K))` with `c ~ Gamma` takes the Monte Carlo path; its draws of c keep
    the loop's axis apart from the vector's (before: a broadcasting TypeError, exit 1)."""
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.full(3, 4.0), size=40)
    m_text = ("model a\ndim N\nconst K = 3\ndata p: simplex[N, K]\nc ~ Gamma(2.0, 0.5)\n"
              "for n in range(N) { p[n] ~ Dirichlet(c * ones(K)) }")
    m = vp.parse(m_text)
    fit = vp.fit(m, data={"p": p}, seed=0, max_iter=100)
    # the exact posterior mean of c by quadrature on a grid
    grid = np.linspace(0.05, 20, 4000)
    n, k = p.shape
    logp = (stats.gamma(2.0, scale=2.0).logpdf(grid) + n * (gammaln(k * grid) - k * gammaln(grid))
            + (grid - 1.0) * np.log(p).sum())
    w = np.exp(logp - logp.max())
    exact = (grid * w).sum() / w.sum()
    assert abs(float(fit.posterior["c"].mean) - exact) < 0.05 * exact
    # `fill(c, K)` is the same vector (before: an `unsupported` error, "not implemented yet")
    again = vp.fit(vp.parse(m_text.replace("c * ones(K)", "fill(c, K)")), data={"p": p}, seed=0, max_iter=100)
    np.testing.assert_allclose(again.elbo_trace, fit.elbo_trace, rtol=1e-12)


# --- a loop whose end equals its start adds nothing (docs/language.md, Loops) -------------------------

def test_a_latent_defined_only_in_an_empty_loop_adds_nothing():
    """`for k in range(S, N)` at N = S: before, `w` still spanned N elements that no statement
    defined, and the fit stopped at an unlocated 'ELBO became nan' data error."""
    y = np.random.default_rng(0).normal(size=5)
    base = "model a\ndim N\ndata y: real[N]\nm ~ Normal(0, 1)\nfor n in range(N) { y[n] ~ Normal(m, 1.0) }\n"
    with_empty = base + "const S = 5\nfor k in range(S, N) { w[k] ~ Normal(m, 1.0) }\n"
    fit = vp.fit(vp.parse(with_empty), data={"y": y}, seed=0)
    assert fit.posterior["w"].batch_shape == (0,)
    # the exact log evidence of the model without w: y ~ N(0, I + 1 1ᵀ)
    np.testing.assert_allclose(fit.elbo, _evidence(y, np.eye(5) + np.ones((5, 5))), rtol=1e-8)


def test_a_loop_from_a_const_start_compiles():
    """`for t in range(P, T)` with `const P = 5` (an AR(P) regression's lags): the compiler's
    stand-in sizes lay below P, and the fit stopped at an internal reshape error (exit 1)."""
    rng = np.random.default_rng(4)
    y = rng.normal(size=12)
    m = vp.parse("model a\ndim T\nconst P = 5\ndata y: real[T]\nb ~ Normal(0, 1)\n"
                 "for t in range(P, T) { y[t] ~ Normal(b * y[t-1], 1.0) }")
    fit = vp.fit(m, data={"y": y}, seed=0)
    x, t = y[4:-1], y[5:]  # the conjugate posterior of b: precision 1 + Σx², mean Σxt / (1 + Σx²)
    np.testing.assert_allclose(fit.posterior["b"].mean, (x @ t) / (1 + x @ x), rtol=1e-8)


# --- fit()'s options are checked as the command line checks them (docs/cli.md) ------------------------

_TINY = "model c\ndim N\ndata y: real[N]\nparam m: real[3] = 0.5\nfor n in range(N) { y[n] ~ Normal(m[0] + m[1], 1.0) }"


@pytest.mark.parametrize("options, word", [
    ({"max_iter": 0}, "max_iter"),    # before: IndexError from an empty ELBO trace
    ({"max_iter": 2.5}, "max_iter"),  # before: TypeError
    ({"tol": float("nan")}, "tol"),   # before: accepted, and no fit could stop on it
    ({"tol": -1.0}, "tol"),
    ({"seed": -1}, "seed"),           # before: accepted, where --seed refuses it
    ({"seed": 1.5}, "seed"),
    ({"init": {"mm": 1.0}}, "did you mean 'm'"),  # before: a misspelt init was ignored without a word
])
def test_fit_refuses_options_outside_their_domain_naming_them(options, word):
    with pytest.raises(vp.VemError, match=word) as err:
        vp.fit(vp.parse(_TINY), data={"y": np.zeros(4)}, **options)
    assert err.value.kind == "data"


# --- the command line speaks its own words (docs/cli.md) ----------------------------------------------

def test_a_swept_size_out_of_range_is_blamed_on_sweep_not_set(tmp_path, capsys):
    """`--sweep K=0:2`: K = 0 came from --sweep; the message said '(from --set)', an option the
    user had not given."""
    from vemppl.cli import main

    (tmp_path / "gm.vem").write_text(
        "model gm\ndim N\nconst K = 2\ndata y: real[N]\np ~ Dirichlet(fill(1.0, K))\n"
        "for k in range(K) { mu[k] ~ Normal(0, 1) }\nfor n in range(N) { z[n] ~ Categorical(p)\n y[n] ~ Normal(mu[z[n]], 1.0) }\n")
    np.savez(tmp_path / "d.npz", y=np.zeros(4))
    code = main(["fit", str(tmp_path / "gm.vem"), "--data", str(tmp_path / "d.npz"), "--quiet",
                 "--sweep", "K=0:2", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert "'K' (from --sweep) is a size" in err and "--set" not in err


# --- an array for a const written as a scalar (docs/cli.md: --set alpha=[0.1,0.2,0.3]) -----------------

@pytest.mark.parametrize("text, alpha, where", [
    # two entries where fill(alpha, K) needs K = 3 (before: NumPy's broadcast ValueError, exit 1)
    ("p ~ Dirichlet(fill(alpha, K))", [0.1, 0.2], (6, 15)),
    ("p ~ Dirichlet(alpha * ones(K))", [0.1, 0.2], (6, 15)),
    # a vector where the scalar scale of a scalar latent is read (before: JAX's broadcast ValueError)
    ("p ~ Dirichlet(ones(K))\nm ~ Normal(0, alpha)", [1.0, 2.0], (7, 15)),
])
def test_an_array_for_a_scalar_const_that_its_reads_cannot_take_is_located(text, alpha, where):
    m = vp.parse(f"model a\ndim N\nconst K = 3\nconst alpha = 0.5\ndata y: cat(K)[N]\n{text}\n"
                 "for n in range(N) { y[n] ~ Categorical(p) }")
    with pytest.raises(vp.VemError, match=r"consts=\{'alpha': \[.*\]\} \(shape \(2,\)\)") as err:
        vp.fit(m, data={"y": np.array([0, 1, 2])}, consts={"alpha": alpha})
    assert err.value.kind == "data" and (err.value.span.line, err.value.span.column) == where


def test_latent_scalar_times_latent_vector_reaches_the_mean_field_fixed_point():
    """`h[n] * mu` of independent latents (a rank-one factor model written with `*`): before, a
    broadcasting TypeError (exit 1).  Now E[h mu] = E[h]E[mu], E[(h mu)(h mu)ᵀ] = E[h²]E[mu muᵀ],
    both blocks closed-form CAVI; the fit satisfies the mean-field equations written out here."""
    rng = np.random.default_rng(0)
    n, d = 12, 3
    y = rng.normal(size=(n, d)) + np.outer(rng.normal(size=n), [1.0, -2.0, 0.5])
    m = vp.parse("model a\ndim N, D\ndata y: real[N, D]\nmu ~ MvNormal(zeros(D), eye(D))\n"
                 "for n in range(N) { h[n] ~ Normal(0, 1)\n y[n] ~ MvNormal(h[n] * mu, eye(D)) }")
    fit = vp.fit(m, data={"y": y}, seed=0, tol=1e-12, max_iter=2000)
    assert np.all(np.diff(fit.elbo_trace) > -1e-9)
    qh, qm = fit.posterior["h"], fit.posterior["mu"]
    eh, eh2 = np.asarray(qh.mean), np.asarray(qh.variance + qh.mean**2)
    em, cov = np.asarray(qm.mean), np.asarray(qm.covariance_matrix)
    np.testing.assert_allclose(em, (eh @ y) / (1 + eh2.sum()), atol=1e-6)   # q(mu) given q(h)
    np.testing.assert_allclose(cov, np.eye(d) / (1 + eh2.sum()), atol=1e-9)
    emm = em @ em + np.trace(cov)                                           # q(h) given q(mu)
    np.testing.assert_allclose(eh, y @ em / (1 + emm), atol=1e-5)
    np.testing.assert_allclose(qh.variance, 1 / (1 + emm), atol=1e-5)


def test_a_random_scalar_beside_a_random_vector_on_the_monte_carlo_path():
    """`mu / tau` and `softmax(h[n] * v)`: before, the compiler's trace stopped at a broadcast
    error (the scalar's Monte Carlo draws met the vector's axis; exit 1) and at 'the general
    path cannot draw ScalarTimesVector'.  Both compile to the Monte Carlo estimator (fitting
    them costs seconds of compilation; their moments are checked by the tests above)."""
    m = vp.parse("model a\ndim N, D\ndata x: real[N, D]\ndata y: cat(D)[N]\nmu ~ MvNormal(zeros(D), eye(D))\n"
                 "tau ~ Gamma(4.0, 2.0)\nv ~ MvNormal(zeros(D), eye(D))\n"
                 "for n in range(N) { h[n] ~ Normal(0, 1)\n x[n] ~ MvNormal(mu / tau, eye(D))\n"
                 " y[n] ~ Categorical(softmax(h[n] * v)) }")
    plan = str(vp.compile_model(m))
    for block in ("mu", "tau", "v", "h"):
        assert f"q({block}): " in plan and "reparameterised Monte Carlo" in plan.split(f"q({block}): ")[1].split("\n  q(")[0]
