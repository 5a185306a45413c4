"""Models written in the Python DSL and in text from docs/language.md and the README alone, as an
outsider would (the second half of issue #21's outsider work): hand-written chains and nested
plates, and the command line as a user meets it.  Each test failed on the code before its fix,
and compares with an independent reference computed here (an exact Gaussian posterior, a
forward-backward or Kalman smoother written in NumPy) or with the documented message.
"""

import numpy as np

import vemppl as vp

# --- nested plates: a three-level hierarchy is not an admixture ------------------------------

NESTED = """model nested
dim S, C, P
data y: real[S, C, P]
const tau = 1.5
mu0 ~ Normal(0.0, 10.0)
for s in range(S) {
    a[s] ~ Normal(mu0, precision = 1.0)
    for c in range(C) {
        b[s, c] ~ Normal(a[s], precision = 4.0)
        for p in range(P) { y[s, c, p] ~ Normal(b[s, c], precision = tau) }
    }
}
"""


def _nested_dsl():
    m = vp.Model("nested")
    S, C, P = m.dim("S", "C", "P")
    m.data("y", vp.real[S, C, P])
    tau = m.const("tau", 1.5)
    mu0 = m.sample("mu0", vp.Normal(0.0, 10.0))
    with m.plate("s", S):
        a = m.sample("a", vp.Normal(mu0, precision=1.0))
        with m.plate("c", C):
            b = m.sample("b", vp.Normal(a, precision=4.0))
            with m.plate("p", P):
                m.sample("y", vp.Normal(b, precision=tau))
    return m


def test_nested_plates_start_from_prior_and_reach_the_exact_means():
    """``b[s, c] ~ Normal(a[s], ...)`` reads its group's latent, but b is not categorical: the
    model is a hierarchy, not an admixture, so it starts from the prior with the default tol
    (before: random-globals and tol 1e-3, four sweeps, means 3e-3 off).  Mean-field Gaussian
    CAVI's fixed point has the exact posterior means (Bishop 2006, §10.1.2)."""
    m = _nested_dsl()
    assert m.ir == vp.parse(NESTED)
    plan = vp.compile_model(m)
    assert plan.start == "prior" and "random-globals" not in str(plan)
    rng = np.random.default_rng(3)
    S, C, P, tau = 4, 3, 5, 1.5
    a = rng.normal(1.0, 1.0, S)
    b = a[:, None] + rng.normal(0, 0.5, (S, C))
    y = b[..., None] + rng.normal(0, 1.0, (S, C, P))
    # The exact Gaussian posterior over (mu0, a, b): its precision matrix J and potential h.
    n = 1 + S + S * C
    J, h = np.zeros((n, n)), np.zeros(n)
    J[0, 0] = 1 / 100.0
    for s in range(S):
        i = 1 + s
        J[[0, i], [0, i]] += 1.0
        J[0, i] = J[i, 0] = -1.0
        for c in range(C):
            j = 1 + S + s * C + c
            J[i, i] += 4.0
            J[j, j] += 4.0 + tau * P
            J[i, j] = J[j, i] = -4.0
            h[j] = tau * y[s, c].sum()
    exact = np.linalg.solve(J, h)
    fit = vp.fit(m, data={"y": y}, seed=0)
    np.testing.assert_allclose(np.asarray(fit.posterior["b"].mean).ravel(), exact[1 + S:], atol=1e-4)
    np.testing.assert_allclose(np.asarray(fit.posterior["a"].mean), exact[1:1 + S], atol=1e-4)


# --- a factor reading two adjacent steps of a chain ----------------------------------------

def _rw_diff_dsl():
    m = vp.Model("rw_diff")
    T = m.dim("T")
    m.data("d", vp.real[T])
    x = m.sample("x", vp.Normal(0.0, 1.0), index=0)
    with m.plate("t", T, start=1) as t:
        m.sample("x", vp.Normal(x[t - 1], precision=4.0))
    with m.plate("t", T, start=1) as t:
        m.sample("d", vp.Normal(x[t] - x[t - 1], precision=25.0))
    return m


def test_a_difference_of_adjacent_chain_steps_has_the_exact_elbo():
    """``d[t] ~ Normal(x[t] - x[t-1], ...)``: q(x) is the exact posterior (the chain block holds
    the cross moment), so the ELBO is log p(d), computed here from the marginal Gaussian.
    Before the fix the factor's value summed the two steps' variances as if independent: the
    posterior was exact but the ELBO 1075 nats below log p(d)."""
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(5)
    T = 30
    d = np.r_[0.0, np.diff(np.cumsum(rng.normal(0, 0.5, T)))] + rng.normal(0, 0.2, T)
    fit = vp.fit(_rw_diff_dsl(), data={"d": d}, seed=0)
    Lw = np.tril(np.ones((T, T))) * np.r_[1.0, np.full(T - 1, 0.5)]  # x = Lw @ standard normals
    D = np.eye(T, k=1)[:-1] - np.eye(T)[:-1]  # rows: x[t+1] - x[t]
    exact = multivariate_normal(np.zeros(T - 1), D @ Lw @ Lw.T @ D.T + np.eye(T - 1) / 25.0).logpdf(d[1:])
    np.testing.assert_allclose(fit.elbo, exact, rtol=1e-9)
    # The same for a chain of vectors, each coordinate an independent copy of the scalar model
    # (Sum.outer read E[x_t x_(t-1)ᵀ] as E[x_t] E[x_(t-1)]ᵀ: ELBO -52.4 against log p(d) = -33.0).
    vec = vp.parse("""model mvdiff
dim T, D
data d: real[T, D]
x[0] ~ MvNormal(zeros(D), precision = eye(D))
for t in range(1, T) { x[t] ~ MvNormal(x[t-1], precision = 4.0 * eye(D)) }
for t in range(1, T) { d[t] ~ MvNormal(x[t] - x[t-1], precision = 25.0 * eye(D)) }
""")
    d2 = np.stack([d, d[::-1]], axis=1)
    exact2 = exact + multivariate_normal(np.zeros(T - 1), D @ Lw @ Lw.T @ D.T + np.eye(T - 1) / 25.0).logpdf(d2[1:, 1])
    np.testing.assert_allclose(vp.fit(vec, data={"d": d2}, seed=0).elbo, exact2, rtol=1e-9)


def test_a_difference_of_adjacent_chain_steps_is_a_closed_form_update():
    """x[t] · x[t-1] is the chain's own pairwise statistic, so the factor is linear in q(x)'s
    statistics and its update is closed-form CAVI (the plan said natural-gradient, which
    `vemppl check` printed); two steps apart it is not one, and the plan keeps saying so."""
    from vemppl.plan import Update

    plan = vp.compile_model(_rw_diff_dsl())
    assert plan.block("x").update is Update.CAVI, plan.block("x")
    lag2 = vp.parse("""model lag2
dim T
data d: real[T]
x[0] ~ Normal(0.0, 1.0)
for t in range(1, T) { x[t] ~ Normal(x[t-1], precision = 4.0) }
for t in range(2, T) { d[t] ~ Normal(x[t] - 0.5 * x[t-2], precision = 25.0) }
""")
    try:
        assert vp.compile_model(lag2).block("x").update is not Update.CAVI
    except vp.VemError as err:  # or a located refusal, never a closed form
        assert err.kind == "unsupported" and err.line == 6, err


# --- a chain under exp(): the documented closed form ----------------------------------------

def test_exp_of_a_chain_step_is_the_lognormal_closed_form():
    """``Poisson(exp(x[t] + 1.0))`` with x a Gaussian chain: one step is Gaussian under q, so
    E[exp(x)] = exp(m + v/2) as for any Gaussian expression (docs/language.md, the general path's
    first row), not the 64-draw Monte Carlo estimate the plan chose before.  (By hand: the fit
    equals the same model spelled with innovations e ~ MvNormal and x = L e, ELBO to 1e-12.)"""
    m = vp.Model("ar_pois")
    T = m.dim("T")
    m.data("y", vp.count[T])
    x = m.sample("x", vp.Normal(0.0, 1.0), index=0)
    with m.plate("t", T, start=1) as t:
        m.sample("x", vp.Normal(0.8 * x[t - 1], 1.0))
    with m.plate("t", T) as t:
        m.sample("y", vp.Poisson(vp.exp(x[t] + 1.0)))
    line = next(ln for ln in str(vp.compile_model(m)).splitlines() if "not conjugate" in ln)
    assert "exp(m + v/2)" in line and "Monte Carlo" not in line


# --- data the user meets: a partly missing vector row, the command line's words ----------------

def test_a_partly_missing_mvnormal_row_is_named_in_a_warning():
    """docs/language.md said missing entries are marginalised; an MvNormal row with one entry
    missing drops out whole (its observed entry unused: the ELBO of the example below is 5.5
    nats above log p of the observed entries).  The fit now says so, naming the array and row."""
    import warnings

    from vemppl.engine.bind import bind

    m = vp.parse("""model mv
dim N, D
data x: real[N, D]
mu ~ MvNormal(zeros(D), precision = eye(D))
for n in range(N) { x[n] ~ MvNormal(mu, precision = 4.0 * eye(D)) }
""")
    x = np.zeros((6, 2))
    x[4, 0] = x[2, 1] = np.nan
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        bind(m, {"x": x})
        x[2] = np.nan  # a row missing whole is simply absent: no warning for it
        x[4] = np.nan
        bind(m, {"x": x})
    msgs = [str(w.message) for w in seen if "partly missing" in str(w.message)]
    assert len(msgs) == 1 and "'x' has 2 row(s)" in msgs[0] and "index (2,)" in msgs[0]


def test_the_cli_names_undeclared_arrays_in_its_own_words():
    from vemppl.cli_runtime import reword

    msg = "data= names arrays the model does not declare as data. Expected only x; got also 'w', which are ignored"
    assert reword(msg).startswith("--data holds arrays the model does not declare")


# --- DSL errors are located at the Python line that made them --------------------------------

def test_dsl_errors_name_the_python_line():
    """``Model``'s contract: errors are located at the Python line that made them.  A constant
    argument outside its support and a categorical latent indexing an axis of another size had
    no location in the DSL (the text locates them at the argument and the index)."""
    import inspect

    def line_of(fn):
        try:
            fn()
        except vp.VemError as e:
            return e
        raise AssertionError("no error")

    here = inspect.currentframe().f_lineno
    m1 = vp.Model("a")
    e1 = line_of(lambda: m1.sample("w", vp.Normal(0.0, -1.0)))  # here + 2
    m2 = vp.Model("b")
    mu = m2.sample("mu", vp.Normal(vp.zeros(2), 1.0))
    z = m2.sample("z", vp.Categorical(vp.fill(1.0 / 3.0, m2.const("K", 3))))
    m2.sample("y", vp.Normal(mu[z], 1.0))  # here + 6
    e2 = line_of(lambda: vp.compile_model(m2))
    assert (e1.kind, e2.kind) == ("support", "shape")
    assert e1.span is not None and e1.span.line == here + 2
    assert e2.span is not None and e2.span.line == here + 6
