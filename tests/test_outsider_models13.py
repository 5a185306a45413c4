"""Uses of vemppl's Python API written from docs/language.md, engine.md, arviz.md and the README
alone (round 13 of the outsider checks).  Each test first failed on the code before its fix.
"""

import os

import numpy as np
import pytest

import vemppl as vp

VAE = """model vae
dim N, D
data x: bool[N, D]
param dec: mlp(tanh)[1, 3, D]
param enc: mlp(tanh)[D, 3, 2]
param b: real[D]
for n in range(N) {
    z[n] ~ MvNormal(zeros(1), eye(1))
    x[n] ~ Bernoulli(logits = dec(z[n]) + b)
    q(z[n]) = enc(x[n])
}
"""

LOGREG = """model logreg
dim N, P
data X: real[N, P]
data y: bool[N]
for j in range(P) { w[j] ~ Normal(0.0, 1.0) }
for n in range(N) { y[n] ~ Bernoulli(logits = dot(X[n], w)) }
"""

PMIX = """model pmix
dim N
const K = 2
data y: count[N]
pi ~ Dirichlet(ones(K))
for k in range(K) { lam[k] ~ Gamma(1.0, 0.1) }
for n in range(N) {
    z[n] ~ Categorical(pi)
    y[n] ~ Poisson(lam[z[n]])
}
"""


# --- posterior_predictive of a model with point parameters and networks --------------------------
# Fit.posterior_predictive simulated the model without its fitted params: factor analysis's
# `m[j] + dot(W[j], h[n])` stopped with an internal KeyError: 'm', and a decoder `dec(z[n])`
# (language.md, Neural networks) with KeyError: 'dec'.  A replicate draws z[n] from its prior, so
# each pixel is 1 with probability E_z[sigmoid(dec(z) + b)], computed here in NumPy.

def test_posterior_predictive_reads_the_fitted_params_and_networks():
    rng = np.random.default_rng(0)
    x = (rng.random((12, 4)) < [0.1, 0.3, 0.6, 0.9]).astype(float)
    fit = vp.fit(vp.parse(VAE), data={"x": x}, seed=0, max_iter=5)
    pp = fit.posterior_predictive(20, seed=0)["x"].reshape(-1, 4)
    p = fit.params
    z = np.random.default_rng(1).normal(size=(20000, 1))
    logits = np.tanh(z @ p["dec"]["W0"] + p["dec"]["b0"]) @ p["dec"]["W1"] + p["dec"]["b1"] + p["b"]
    ref = (1 / (1 + np.exp(-logits))).mean(0)
    assert np.allclose(pp.mean(0), ref, atol=4 * np.sqrt(0.25 / len(pp)))


# --- posterior_predictive(data=) with covariates of another number of rows -----------------------
# The docstring: "Covariates (data never drawn) come from `data` or the fit".  New covariates with
# 10 rows were simulated with the fit's N = 40: an internal IndexError.  Now the data plate's size
# comes from the given arrays, and a feature axis that disagrees with the fit is a located `data`
# error naming the array.

@pytest.fixture(scope="module")
def logreg_fit():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 2))
    y = (rng.random(40) < 1 / (1 + np.exp(-X @ [2.0, -1.0]))).astype(float)
    return vp.fit(vp.parse(LOGREG), data={"X": X, "y": y}, seed=0), X


def test_posterior_predictive_takes_new_covariates_of_another_size(logreg_fit):
    fit, X = logreg_fit
    Xn = np.array([[3.0, 0.0], [-3.0, 0.0]] * 5)
    y = fit.posterior_predictive(200, seed=0, data={"X": Xn})["y"]
    assert y.shape == (200, 10)
    w = fit.sample_posterior(4000, seed=0)["w"]  # p(y = 1 | x) averaged over q, by NumPy
    p = (1 / (1 + np.exp(-w @ Xn.T))).mean(0)
    assert np.allclose(y.mean(0), p, atol=4 * np.sqrt(0.25 / 200))
    with pytest.raises(vp.VemError) as e:
        fit.posterior_predictive(3, data={"X": X[:10, :1]})
    assert e.value.kind == "data" and "'X'" in str(e.value) and e.value.span is not None


# --- sample_posterior of results read back ---------------------------------------------------------
# draw_blocks shared one NumPy stream over the blocks in the state's order, which a loaded fit
# took from the saved file ('pi', 'lam' rather than 'lam', 'pi'): the same seed drew other values
# from the same q after save -> load_results.

def test_sample_posterior_of_loaded_results_equals_the_fits_bit_for_bit(tmp_path):
    y = np.concatenate([np.full(20, 1), np.full(20, 9)])
    fit = vp.fit(vp.parse(PMIX), data={"y": y}, seed=0)
    back = vp.load_results(fit.save(os.path.join(tmp_path, "r")))
    a, b = fit.sample_posterior(5, seed=3), back.sample_posterior(5, seed=3)
    assert sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)
    pa, pb = fit.posterior_predictive(1, seed=1)["y"], back.posterior_predictive(1, seed=1)["y"]
    assert np.array_equal(pa, pb)


# --- where a size came from, in predict's messages ------------------------------------------------
# predict binds new data with the fit's consts, which bind took for the caller's own: a category
# out of range said "G = 3 from consts={'G': 3}" (on the command line "from --set G=3") to a user
# who set nothing.

GROUPS = """model groups
dim N
const G = 3
data g: cat(G)[N]
data y: real[N]
for j in range(G) { a[j] ~ Normal(0.0, 10.0) }
for n in range(N) { y[n] ~ Normal(a[g[n]], 1.0) }
"""


@pytest.fixture(scope="module")
def groups_fit():
    g = np.array([0, 1, 2, 0, 1, 2])
    return vp.fit(vp.parse(GROUPS), data={"g": g, "y": g * 1.0}, seed=0)


def test_predict_names_the_fitted_const_as_a_sizes_source(groups_fit):
    fit = groups_fit
    with pytest.raises(vp.VemError) as e:
        fit.predict({"g": np.array([0, 3]), "y": np.zeros(2)})
    assert e.value.kind == "data" and "the fitted model's const G" in str(e.value)
    assert "consts=" not in str(e.value)
    with pytest.raises(vp.VemError) as e:  # a const the caller gives is still named so
        fit.predict({"g": np.array([0, 3]), "y": np.zeros(2)}, consts={"G": 3})
    assert "consts={'G': 3}" in str(e.value)


# --- option messages that name what is wrong ---------------------------------------------------
# select(model, data, Q=[1, 2]) for a model without Q said "got none", as if no sweep was given;
# fit(restarts=1.5) said "restarts must be at least 1" of a value above 1.

def test_select_names_a_swept_name_the_model_lacks_and_fit_a_fractional_restarts():
    m = vp.parse(PMIX)
    with pytest.raises(vp.VemError, match=r"'Q': no const or dim of the model"):
        vp.select(m, {"y": np.arange(4)}, Q=[1, 2])
    with pytest.raises(vp.VemError, match=r"restarts must be a whole number >= 1; got 1.5"):
        vp.fit(m, data={"y": np.arange(4)}, restarts=1.5)


def test_a_swept_value_the_data_contradict_is_blamed_on_sweep(tmp_path, capsys):
    """`--sweep G=2:3` with a category 2 in the data: "G = 2 from --set G=2", an option the user
    had not given (round 11 fixed the "(from --set)" form of the same message only)."""
    from vemppl.cli import main

    (tmp_path / "g.vem").write_text(GROUPS)
    np.savez(tmp_path / "d.npz", g=np.array([0, 1, 2]), y=np.zeros(3))
    code = main(["fit", str(tmp_path / "g.vem"), "--data", str(tmp_path / "d.npz"), "--quiet",
                 "--sweep", "G=2:3", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "G = 2 from --sweep); got 2 at index (2,)" in err and "--set" not in err


def test_a_max_memory_refusal_names_the_option_and_reads_whole(tmp_path, capsys):
    """`--max-memory 10` (docs/cli.md): the refusal said "(VEMPPL_MAX_MEMORY=10)", a variable the
    user had not set, and "got  (every dim at 1 ...)" with nothing between for a model without
    size constants."""
    from vemppl.cli import main

    (tmp_path / "m.vem").write_text(LOGREG)
    np.savez(tmp_path / "d.npz", X=np.zeros((3, 2)), y=np.zeros(3))
    code = main(["fit", str(tmp_path / "m.vem"), "--data", str(tmp_path / "d.npz"), "--quiet",
                 "--max-memory", "10", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "(--max-memory 10)" in err and "got no size constants (every dim at 1" in err


def test_posterior_predictive_checks_the_categories_of_new_covariates(groups_fit):
    """A group index 3 of a fit with G = 3: an internal IndexError; now the data error fit gives."""
    with pytest.raises(vp.VemError) as e:
        groups_fit.posterior_predictive(2, data={"g": np.array([0, 3])})
    assert e.value.kind == "data" and "'g' has a category out of range" in str(e.value)
    y = groups_fit.posterior_predictive(1, data={"g": np.array([0.0, 2.0, 2.0])})["y"]  # whole floats, as fit
    assert y.shape == (1, 3)
