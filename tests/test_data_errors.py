"""Bad data gets a clear error, never a traceback from inside JAX (LANGUAGE.md, "Sizes", "Data").

Each case builds a small model, feeds it one kind of bad data and checks that ``vemppl.fit``
raises :class:`vemppl.VemError` of kind ``data`` whose message names the variable and the
key facts (expected vs given), and that no frame of the traceback is inside JAX.  Missing
entries in a real array on the left of ``~`` are not an error: they are marginalised, which
the last tests check against closed forms computed here.
"""

import warnings

import numpy as np
import pytest
import scipy.stats as st

import vemppl as vp
from test_gmm_vs_sklearn import gmm_dsl

RNG = np.random.default_rng(20261126)
X2 = RNG.normal(size=(50, 2))
GMM_CONSTS = {"m0": np.zeros(2), "W0": np.eye(2), "nu0": 4.0}


# ---- models -------------------------------------------------------------------------


def poisson_model():
    m = vp.Model("gamma_poisson")
    N = m.dim("N")
    m.data("c", vp.count[N])
    lam = m.sample("lam", vp.Gamma(2.0, 1.0))
    with m.plate("n", N):
        m.sample("c", vp.Poisson(lam))
    return m


def categorical_model(bound="const"):
    m = vp.Model("dirichlet_categorical")
    N = m.dim("N")
    K = m.const("K", 4) if bound == "const" else m.dim("K")
    m.data("y", vp.cat(K)[N])
    theta = m.sample("theta", vp.Dirichlet(vp.ones(K)))
    with m.plate("n", N):
        m.sample("y", vp.Categorical(theta))
    return m


def bernoulli_model():
    m = vp.Model("beta_bernoulli")
    N = m.dim("N")
    m.data("b", vp.bool_[N])
    p = m.sample("p", vp.Beta(1.0, 1.0))
    with m.plate("n", N):
        m.sample("b", vp.Bernoulli(p))
    return m


def linreg_model():
    """Bayesian linear regression; X is only a covariate, w one vector latent."""
    m = vp.Model("blr")
    N, P = m.dim("N", "P")
    X = m.data("X", vp.real[N, P])
    m.data("y", vp.real[N])
    w = m.sample("w", vp.MvNormal(vp.zeros(P), precision=vp.eye(P)))
    tau = m.sample("tau", vp.Gamma(1.0, 1.0))
    with m.plate("n", N) as n:
        m.sample("y", vp.Normal(vp.dot(X[n], w), precision=tau))
    return m


def hierarchical_model():
    m = vp.Model("eight_schools")
    J = m.dim("J")
    m.data("y", vp.real[J])
    sigma = m.data("sigma", vp.pos[J])
    mu = m.sample("mu", vp.Normal(0.0, precision=1e-2))
    with m.plate("j", J) as j:
        theta = m.sample("theta", vp.Normal(mu, precision=1.0))
        m.sample("y", vp.Normal(theta, sigma[j]))
    return m


def normal_normal_model(m0, p0, t):
    m = vp.Model("normal_normal")
    N = m.dim("N")
    m.data("x", vp.real[N])
    mu = m.sample("mu", vp.Normal(m0, precision=p0))
    with m.plate("n", N):
        m.sample("x", vp.Normal(mu, precision=t))
    return m


def linreg_data(n=50, p=3):
    X = RNG.normal(size=(n, p))
    y = X @ np.arange(1.0, p + 1) + 0.1 * RNG.normal(size=n)
    return X, y


# ---- the assertion ------------------------------------------------------------------


def data_error(call, *facts):
    """``call()`` raises a VemError of kind 'data' whose message contains every fact."""
    with pytest.raises(Exception) as info:
        call()
    err = info.value
    assert type(err) is vp.VemError, f"{type(err).__module__}.{type(err).__name__} leaked: {err}"
    assert err.kind == "data", err
    inside_jax = [str(e.path) for e in info.traceback if "/jax/" in str(e.path) or "/jaxlib/" in str(e.path)]
    assert not inside_jax, f"raised from inside JAX: {inside_jax}"
    for chained in (err.__cause__, err.__context__):
        assert chained is None or not type(chained).__module__.startswith(("jax", "jaxlib")), chained
    for fact in facts:
        assert fact in err.message, f"{fact!r} not in: {err.message}"
    assert "Expected" in err.message and "got" in err.message, err.message
    return err


def fit(model, data, **kw):
    kw.setdefault("max_iter", 3)
    return vp.fit(model, data, **kw)


# ---- shapes and sizes ---------------------------------------------------------------


def test_wrong_number_of_dimensions():
    err = data_error(lambda: fit(gmm_dsl(), {"x": X2[:, 0]}, consts=GMM_CONSTS), "'x'", "Expected 2", "[N, D]", "(50,)")
    assert err.span is not None  # points at the declaration


def test_wrong_number_of_dimensions_scalar_for_vector():
    data_error(lambda: fit(poisson_model(), {"c": 3}), "'c'", "Expected 1", "[N]", "got 0")


def test_axis_disagrees_with_another_array_over_a_shared_dim():
    X, y = linreg_data()
    err = data_error(lambda: fit(linreg_model(), {"X": X, "y": y[:49]}), "'y'", "'X'", "dim N", "50", "(49,)")
    assert "axis 0" in err.message


def test_axis_disagrees_with_an_explicit_dim():
    data_error(
        lambda: fit(gmm_dsl(), {"x": X2}, consts=GMM_CONSTS, dims={"D": 3}), "'x'", "dim D", "dims=", "3", "(50, 2)"
    )


def test_empty_data_plate():
    data_error(
        lambda: fit(gmm_dsl(), {"x": np.zeros((0, 2))}, consts=GMM_CONSTS), "'N'", "'x'", "empty", ">= 1", "got 0"
    )


def test_explicit_dim_of_zero_or_not_whole():
    data_error(lambda: fit(poisson_model(), {"c": [1, 2]}, dims={"N": 0}), "'N'", "dims=", ">= 1", "got 0")
    data_error(lambda: fit(poisson_model(), {"c": [1, 2]}, dims={"N": 2.5}), "'N'", "whole number", "2.5")
    data_error(lambda: fit(poisson_model(), {"c": [1, 2]}, dims={"N": "two"}), "'N'", "whole number", "'two'")


def test_dim_that_cannot_be_bound():
    m = vp.Model("unbound")
    N, P = m.dim("N", "P")
    m.data("y", vp.real[N])
    w = m.sample("w", vp.MvNormal(vp.zeros(P), precision=vp.eye(P)))
    with m.plate("n", N):
        m.sample("y", vp.Normal(vp.dot(vp.ones(P), w), precision=1.0))
    err = data_error(lambda: fit(m, {"y": RNG.normal(size=10)}), "'P'", "cannot be bound")
    assert "dims=" in err.hint
    fit(m, {"y": RNG.normal(size=10)}, dims={"P": 2})  # given explicitly, it fits


def test_const_used_as_a_size_must_be_whole():
    data_error(lambda: fit(categorical_model(), {"y": [0, 1]}, consts={"K": 2.5}), "'K'", "whole number", "2.5")
    data_error(lambda: fit(categorical_model(), {"y": [0, 1]}, consts={"K": 0}), "'K'", ">= 1", "got 0")


@pytest.mark.parametrize("flag", [True, False, np.bool_(True), np.array(True)])
def test_a_boolean_const_is_not_a_size(flag):
    """True converts to 1.0 and passed as the size 1 (issue #23): refused, naming the const."""
    err = data_error(lambda: fit(categorical_model(), {"y": [0, 1]}, consts={"K": flag}),
                     "'K'", "consts=", "whole number", f"boolean {bool(flag)}")
    assert "'K' a number" in err.hint


def test_a_boolean_const_is_located_in_the_model_text(tmp_path):
    src = tmp_path / "cat.vem"
    src.write_text("model cat\ndim N\nconst K = 3\ndata y: cat(K)[N]\n"
                   "p ~ Dirichlet(fill(1.0, K))\nfor n in range(N) { y[n] ~ Categorical(p) }\n")
    err = data_error(lambda: fit(vp.load(src), {"y": [0, 1]}, consts={"K": True}), "'K'", "boolean True")
    assert err.span is not None and err.span.line == 3, err.span
    assert f"{src.name}:3:" in str(err)


def test_const_default_may_use_a_data_bound_dim():
    # m0 = zeros(D), W0 = eye(D) wait for D, which only the data binds.
    f = fit(gmm_dsl(), {"x": X2})
    assert np.isfinite(f.elbo)


def test_const_override_with_wrong_shape_or_type():
    data_error(
        lambda: fit(gmm_dsl(), {"x": X2}, consts={"m0": np.zeros(3)}), "'m0'", "shape", "(2,)", "(3,)", "zeros(D)"
    )
    data_error(lambda: fit(gmm_dsl(), {"x": X2}, consts={"beta0": "small"}), "'beta0'", "number", "'small'")
    data_error(lambda: fit(gmm_dsl(), {"x": X2}, consts={"beta0": np.nan}), "'beta0'", "finite", "nan")


# ---- names --------------------------------------------------------------------------


def test_missing_array():
    data_error(lambda: fit(gmm_dsl(), {}, consts=GMM_CONSTS), "'x'", "missing", "real[N, D]")
    X, y = linreg_data()
    data_error(lambda: fit(linreg_model(), {"y": y}), "'X'", "missing", "real[N, P]", "arrays given: y")


def test_consts_naming_an_undeclared_const():
    data_error(lambda: fit(gmm_dsl(), {"x": X2}, consts={"J": 3}), "'J'", "does not declare", "K")


def test_consts_naming_a_dim_points_to_dims():
    err = data_error(lambda: fit(gmm_dsl(), {"x": X2}, consts={"N": 50}), "'N'", "is a dim")
    assert "dims=" in err.hint


def test_dims_naming_an_undeclared_dim():
    data_error(lambda: fit(gmm_dsl(), {"x": X2}, dims={"M": 3}), "'M'", "does not declare", "D, N")


def test_undeclared_array_warns_and_strict_refuses():
    with pytest.warns(UserWarning, match="'extra'"):
        f = fit(gmm_dsl(), {"x": X2, "extra": X2}, consts=GMM_CONSTS)
    assert np.isfinite(f.elbo)
    data_error(lambda: fit(gmm_dsl(), {"x": X2, "extra": X2}, consts=GMM_CONSTS, algorithm=vp.cavi(strict=True)), "'extra'", "strict")


def test_array_for_a_latent_warns_that_it_is_not_data():
    with pytest.warns(UserWarning, match=r"'mu' \(a latent, not data\)"):
        fit(gmm_dsl(), {"x": X2, "mu": np.zeros((3, 2))}, consts=GMM_CONSTS)


def test_mask_for_an_undeclared_array_warns():
    with pytest.warns(UserWarning, match="mask=.*'q'"):
        fit(gmm_dsl(), {"x": X2}, consts=GMM_CONSTS, mask={"q": np.ones(3, bool)})


def test_declared_arrays_only_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        fit(poisson_model(), {"c": [1, 2, 3]})


def test_data_must_be_a_mapping():
    data_error(lambda: fit(gmm_dsl(), [X2]), "data=", "mapping", "list")


# ---- types --------------------------------------------------------------------------


def test_non_numeric_array():
    data_error(lambda: fit(gmm_dsl(), {"x": np.array([["a", "b"]] * 5)}, consts=GMM_CONSTS), "'x'", "numeric", "strings")
    data_error(lambda: fit(poisson_model(), {"c": None}), "'c'", "numeric", "object")
    data_error(lambda: fit(poisson_model(), {"c": ["1", "2"]}), "'c'", "numeric", "strings")


def test_ragged_list():
    data_error(lambda: fit(gmm_dsl(), {"x": [[1.0, 2.0], [1.0]]}, consts=GMM_CONSTS), "'x'", "rectangular", "list")


def test_complex_array():
    data_error(lambda: fit(gmm_dsl(), {"x": X2 + 1j}, consts=GMM_CONSTS), "'x'", "real numbers", "complex")


# ---- support ------------------------------------------------------------------------


def test_nan_in_covariate():
    X, y = linreg_data()
    X[3, 1] = np.nan
    data_error(lambda: fit(linreg_model(), {"X": X, "y": y}), "'X'", "(3, 1)", "covariate", "NaN")


def test_masked_entry_in_covariate():
    X, y = linreg_data()
    mask = np.ones(X.shape, bool)
    mask[4, 0] = False
    data_error(lambda: fit(linreg_model(), {"X": X, "y": y}, mask={"X": mask}), "'X'", "(4, 0)", "covariate", "mask=")


def test_nan_in_a_real_array_also_read_as_a_covariate():
    m = vp.Model("two_stage")
    N = m.dim("N")
    u_ = m.data("u", vp.real[N])
    m.data("v", vp.real[N])
    mu = m.sample("mu", vp.Normal(0.0, precision=1.0))
    with m.plate("n", N) as n:
        m.sample("u", vp.Normal(mu, precision=1.0))
        m.sample("v", vp.Normal(u_[n], precision=1.0))
    u = RNG.normal(size=8)
    u[2] = np.nan
    data_error(lambda: fit(m, {"u": u, "v": RNG.normal(size=8)}), "'u'", "(2,)", "covariate", "NaN")


def test_inf_in_real_array():
    x = X2.copy()
    x[7, 0] = np.inf
    data_error(lambda: fit(gmm_dsl(), {"x": x}, consts=GMM_CONSTS), "'x'", "finite", "inf", "(7, 0)")


def test_nan_in_count_array():
    data_error(lambda: fit(poisson_model(), {"c": [1.0, np.nan, 2.0]}), "'c'", "(1,)", "NaN", "count[N]", ">= 0")


def test_nan_in_cat_array():
    data_error(lambda: fit(categorical_model(), {"y": [0.0, 3.0, np.nan]}), "'y'", "(2,)", "NaN", "cat(K)[N]")


def test_negative_count():
    data_error(lambda: fit(poisson_model(), {"c": [1, 4, -2, 0]}), "'c'", ">= 0", "-2", "(2,)", "count[N]")


def test_non_integer_count():
    data_error(lambda: fit(poisson_model(), {"c": [1.0, 2.5, 3.0]}), "'c'", "whole numbers", "2.5", "(1,)")


def test_inf_count():
    data_error(lambda: fit(poisson_model(), {"c": [1.0, np.inf]}), "'c'", "whole numbers", "inf", "(1,)")


def test_whole_valued_floats_and_bools_are_accepted():
    f = fit(poisson_model(), {"c": np.array([1.0, 2.0, 0.0])}, max_iter=1)
    assert float(f.posterior["lam"].concentration) == pytest.approx(2.0 + 3.0)
    fit(categorical_model(), {"y": np.array([0.0, 3.0, 2.0])}, max_iter=1)
    fit(bernoulli_model(), {"b": np.array([True, False, True])}, max_iter=1)


def test_bool_array_with_a_two():
    data_error(lambda: fit(bernoulli_model(), {"b": [0, 1, 1, 2, 0]}), "'b'", "0 or 1", "got 2", "(3,)", "bool[N]")


def test_category_out_of_range():
    y = RNG.integers(0, 4, size=30)
    y[17] = 4
    data_error(lambda: fit(categorical_model(), {"y": y}), "'y'", "0..3", "K = 4", "cat(K)[N]", "got 4", "(17,)")


def test_negative_category():
    data_error(lambda: fit(categorical_model(), {"y": [0, 1, -1]}), "'y'", "0..3", "got -1", "(2,)")


def test_category_out_of_range_for_an_explicit_dim():
    data_error(
        lambda: fit(categorical_model("dim"), {"y": [0, 2, 3]}, dims={"K": 3}), "'y'", "0..2", "K = 3", "got 3", "(2,)"
    )


def test_category_bound_taken_from_data_when_not_given():
    f = fit(categorical_model("dim"), {"y": [0, 2, 4]}, max_iter=1)
    assert f.bound.sizes["K"] == 5


def test_non_positive_value_in_pos_array():
    sigma = np.array([15.0, 10.0, 0.0, 11.0])
    data_error(
        lambda: fit(hierarchical_model(), {"y": RNG.normal(size=4), "sigma": sigma}),
        "'sigma'", "positive", "pos[J]", "(2,)", "got 0.0",
    )


def test_mask_with_wrong_shape_or_on_a_count_array():
    data_error(
        lambda: fit(gmm_dsl(), {"x": X2}, consts=GMM_CONSTS, mask={"x": np.ones(3, bool)}), "'x'", "(50, 2)", "(3,)"
    )
    data_error(
        lambda: fit(poisson_model(), {"c": [1, 2, 3]}, mask={"c": [True, False, True]}),
        "'c'", "(1,)", "count[N]", "mask=",
    )


# ---- missing entries in a `~` target are marginalised ---------------------------------


def _normal_normal_posterior(x, m0, p0, t):
    prec = p0 + len(x) * t
    return (p0 * m0 + t * np.sum(x)) / prec, prec


@pytest.mark.parametrize("how", ["nan", "mask"])
def test_missing_entry_in_target_equals_dropping_it(how):
    m0, p0, t = 0.5, 2.0, 4.0
    x = RNG.normal(1.3, 0.5, size=40)
    keep = np.ones(len(x), bool)
    keep[[5, 22]] = False
    if how == "nan":
        given, kw = np.where(keep, x, np.nan), {}
    else:
        given, kw = x, {"mask": {"x": keep}}
    f = vp.fit(normal_normal_model(m0, p0, t), {"x": given}, max_iter=1, **kw)
    mean, prec = _normal_normal_posterior(x[keep], m0, p0, t)
    q = f.posterior["mu"]
    np.testing.assert_allclose(q.loc, mean, rtol=1e-12)
    np.testing.assert_allclose(q.scale, prec**-0.5, rtol=1e-12)
    # The bound is tight: the ELBO is the evidence of the observed entries alone.
    n = keep.sum()
    cov = np.eye(n) / t + np.ones((n, n)) / p0
    np.testing.assert_allclose(f.elbo, st.multivariate_normal(np.full(n, m0), cov).logpdf(x[keep]), rtol=1e-10)


def test_missing_entry_in_mixture_target_fits():
    x = X2.copy()
    x[3, 1] = np.nan
    f = fit(gmm_dsl(), {"x": x}, consts=GMM_CONSTS, max_iter=20)
    assert np.isfinite(f.elbo)
