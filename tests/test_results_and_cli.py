"""Results on disk, predictions, plate-diagram specs and the command line, end to end."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture

import vemppl as vp
from vemppl.render import graph_spec
from vemppl.render.updates import derived_updates

ROOT = Path(__file__).resolve().parents[1]


def blobs(n=300, seed=0):
    rng = np.random.default_rng(seed)
    c = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    return c[rng.integers(3, size=n)] + rng.normal(size=(n, 2))


@pytest.fixture(scope="module")
def gmm_fit():
    x = blobs()
    return vp.fit(vp.load(ROOT / "models/gmm.vem"), {"x": x[:250]}, seed=0), x[250:]


def test_text_and_dsl_gmm_fit_to_the_same_elbo():
    sys.path.insert(0, str(ROOT / "tests"))
    from dsl_models import gmm

    x = blobs(seed=3)
    a = vp.fit(vp.load(ROOT / "models/gmm.vem"), {"x": x}, seed=4, tol=1e-10)
    b = vp.fit(gmm(), {"x": x}, seed=4, tol=1e-10)
    assert abs(a.elbo - b.elbo) <= 1e-8 * abs(a.elbo)


def test_save_load_predict_identical(gmm_fit, tmp_path):
    fit, xh = gmm_fit
    fit.save(tmp_path / "r")
    back = vp.load_results(tmp_path / "r")
    for j in fit.posterior:
        np.testing.assert_array_equal(np.asarray(back.state.mu[j][0]), np.asarray(fit.state.mu[j][0]))
    np.testing.assert_array_equal(back.elbo_trace, fit.elbo_trace)
    p1 = fit.predict({"x": xh}, plug_in=True)
    p2 = back.predict({"x": xh}, plug_in=True)
    assert p1.elbo == p2.elbo
    np.testing.assert_array_equal(p1.assignments("z"), p2.assignments("z"))


def test_truncated_arrays_and_edited_manifest_are_clear_errors(gmm_fit, tmp_path):
    fit, _ = gmm_fit
    fit.save(tmp_path / "a")
    (arrays,) = (tmp_path / "a").glob("arrays-*.npz")  # named by its hash (results/io.py)
    arrays.write_bytes(arrays.read_bytes()[: len(arrays.read_bytes()) // 2])
    with pytest.raises(vp.VemError, match=arrays.name) as e:
        vp.load_results(tmp_path / "a")
    assert e.value.kind == "io"
    fit.save(tmp_path / "b")
    m = json.loads((tmp_path / "b/manifest.json").read_text())
    m["elbo"] = m["elbo"] + 1.0
    (tmp_path / "b/manifest.json").write_text(json.dumps(m))
    with pytest.raises(vp.VemError, match="modified") as e:
        vp.load_results(tmp_path / "b")
    (tmp_path / "b/manifest.json").write_text("{not json")
    with pytest.raises(vp.VemError, match="not valid JSON"):
        vp.load_results(tmp_path / "b")


def test_plug_in_loglik_equals_sklearn_score(gmm_fit):
    fit, xh = gmm_fit
    pred = fit.predict({"x": xh}, plug_in=True)
    w = np.asarray(fit.posterior["pi"].mean)
    mu = np.asarray(fit.posterior["mu"].mean)
    cov = np.linalg.inv(np.asarray(fit.posterior["Lam"].mean))
    g = GaussianMixture(3, covariance_type="full")
    g.weights_, g.means_, g.covariances_ = w, mu, cov
    g.precisions_cholesky_ = np.linalg.cholesky(np.linalg.inv(cov))
    np.testing.assert_allclose(pred.log_likelihood_per_point, g.score(xh), rtol=1e-8)


def test_gmm_graph_spec():
    spec = graph_spec(vp.load(ROOT / "models/gmm.vem"))
    kinds = {n.name: (n.kind, n.shape, n.observed, n.plate) for n in spec.nodes}
    assert kinds["x"] == ("data", "circle", True, "n")
    assert kinds["z"] == ("latent", "circle", False, "n")
    assert kinds["mu"][:3] == ("latent", "circle", False) and kinds["mu"][3] == "k"
    assert kinds["Lam"][3] == "k" and kinds["pi"][3] is None
    assert kinds["K"][:2] == ("const", "point")
    assert set(spec.edges) >= {("pi", "z"), ("z", "x"), ("mu", "x"), ("Lam", "x")}
    assert ("K", "mu") not in spec.edges  # a loop bound is the plate's label, not an edge
    assert {(p.var, p.size) for p in spec.plates} == {("n", "N"), ("k", "K")}


def test_updates_name_the_gmm_messages():
    text = derived_updates(vp.load(ROOT / "models/gmm.vem"))
    assert "## q(z[n]): Categorical" in text
    assert "r[z[n] = k] · ∇_{E[T(mu[k])]} E[log MvNormal(x[n] | mu[k], precision_matrix = Lam[k])]" in text
    assert "Σ_n Σ_k r[z[n] = k] · ∇_{E[T(pi)]} E[log pi[k]]" in text  # z[n]'s own factor reads E[onehot(z[n])]
    assert "## q(Lam[k]): Wishart" in text and "## q(mu[k]): MvNormal" in text


def run_cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "vemppl.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_cli_end_to_end(tmp_path):
    x = blobs(seed=5)
    np.savez(tmp_path / "train.npz", x=x[:250])
    np.savez(tmp_path / "new.npz", x=x[250:])
    model = str(ROOT / "models/gmm.vem")
    r = run_cli("fit", model, "--data", "train.npz", "--set", "K=3", "--out", "res", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "res/manifest.json").exists() and (tmp_path / "res/elbo.png").exists()
    assert (tmp_path / "res/model.svg").read_text().lstrip().startswith("<?xml")
    r = run_cli("predict", "res", "--data", "new.npz", "--plug-in", "--out", "pred.npz", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "log-likelihood (plug-in)" in r.stdout
    assert np.load(tmp_path / "pred.npz")["z_assignments"].shape == (50,)
    r = run_cli("predict", "res", "--data", "new.npz", "--compress", "yes", cwd=tmp_path)  # real-valued rows
    assert r.returncode == 2 and "'x' is real-valued" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("check", model, cwd=tmp_path)
    assert r.returncode == 0 and "q(z)" in r.stdout
    r = run_cli("render", str(ROOT / "models/hmm.vem"), "-o", "hmm.svg", cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path / "hmm.svg").exists()
    r = run_cli("updates", str(ROOT / "models/lda.vem"), cwd=tmp_path)
    assert r.returncode == 0 and "q(theta[d]): Dirichlet" in r.stdout
    # Bad input: one clear message, exit status 2, no traceback.
    r = run_cli("fit", model, "--data", "missing.npz", cwd=tmp_path)
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr
    np.savez(tmp_path / "bad.npz", x=np.ones((10, 2, 2)))
    r = run_cli("fit", model, "--data", "bad.npz", "--quiet", cwd=tmp_path)
    assert r.returncode == 2 and "'x'" in r.stderr and "Traceback" not in r.stderr


def test_cli_schedule_options_give_the_python_fit(tmp_path):
    """`vemppl fit --start random-globals --local-tol T` is `fit(start=, local_tol=)`: the
    saved ELBO trace is the one the Python call gives."""
    rng = np.random.default_rng(0)
    doc = np.repeat(np.arange(12), 15)
    word = np.where(doc % 2 == 0, rng.integers(0, 5, doc.size), rng.integers(5, 10, doc.size))
    np.savez(tmp_path / "tokens.npz", doc=doc, word=word)
    model = str(ROOT / "models/lda.vem")
    r = run_cli("fit", model, "--data", "tokens.npz", "--set", "K=2", "--set", "D=12", "--set", "V=10", "--out", "res",
                "--quiet", "--start", "random-globals", "--local-tol", "1e-3", "--max-iter", "40", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    saved = json.loads((tmp_path / "res/manifest.json").read_text())["elbo_trace"]
    ref = vp.fit(vp.load(model), {"doc": doc, "word": word}, consts={"K": 2}, dims={"D": 12, "V": 10}, max_iter=40,
                 algorithm=vp.cavi(start="random-globals", local_tol=1e-3), progress=False)
    np.testing.assert_allclose(saved, ref.elbo_trace, rtol=1e-12)
    assert ref.engine.merged_rows is not None  # 180 tokens, at most 120 distinct (document, word) pairs
    r = run_cli("fit", model, "--data", "tokens.npz", "--set", "K=2", "--set", "D=12", "--set", "V=10", "--out", "all",
                "--quiet", "--start", "random-globals", "--local-tol", "1e-3", "--max-iter", "40", "--compress", "no",
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr  # every token fitted: the same trace
    np.testing.assert_allclose(json.loads((tmp_path / "all/manifest.json").read_text())["elbo_trace"], saved, rtol=1e-10)
    r = run_cli("fit", model, "--data", "tokens.npz", "--set", "K=2", "--local-tol", "-1", "--quiet", cwd=tmp_path)
    assert r.returncode == 2 and "argument --local-tol: expected a finite number >= 0" in r.stderr  # at parse time
    assert "Traceback" not in r.stderr


def test_cli_chain_option_gives_the_python_fit(tmp_path):
    """`vemppl fit --chain parallel` is `fit(chain="parallel")`, and that is the sequential fit."""
    rng = np.random.default_rng(2)
    x = np.repeat(rng.integers(0, 4, 12), 10)  # runs of one symbol: a sticky chain
    x = np.where(rng.random(x.size) < 0.2, rng.integers(0, 4, x.size), x)
    np.savez(tmp_path / "seq.npz", x=x)
    model = str(ROOT / "models/hmm_categorical.vem")
    r = run_cli("fit", model, "--data", "seq.npz", "--set", "V=4", "--out", "res", "--quiet", "--chain", "parallel",
                "--max-iter", "15", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    saved = json.loads((tmp_path / "res/manifest.json").read_text())["elbo_trace"]
    ref = vp.fit(vp.load(model), {"x": x}, dims={"V": 4}, max_iter=15, progress=False)
    np.testing.assert_allclose(saved, ref.elbo_trace, rtol=1e-10)
    r = run_cli("fit", model, "--data", "seq.npz", "--set", "V=4", "--chain", "tree", "--quiet", cwd=tmp_path)
    assert r.returncode == 2 and "invalid choice: 'tree'" in r.stderr and "Traceback" not in r.stderr


def test_demo_runs(tmp_path):
    r = subprocess.run([sys.executable, "-m", "vemppl.cli", "demo", "--out", str(tmp_path / "d")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "ELBO" in r.stdout
    for f in ("results/manifest.json", "model.svg", "elbo.png"):
        assert (tmp_path / "d" / f).exists()
    assert len(list((tmp_path / "d/results").glob("arrays-*.npz"))) == 1


def test_posterior_predictive_density_matches_direct_monte_carlo(gmm_fit):
    """log E_q[p(x_n | π, μ, Λ)] per point, against a Monte Carlo written here with scipy."""
    import jax
    from scipy.special import logsumexp
    from scipy.stats import multivariate_normal

    fit, xh = gmm_fit
    ours = fit.predictive_density({"x": xh}, samples=400, seed=1)
    post, s = fit.posterior, 1500
    keys = jax.random.split(jax.random.PRNGKey(7), 3)
    pis = np.asarray(post["pi"].sample(keys[0], (s,)))
    mus = np.asarray(post["mu"].sample(keys[1], (s,)))
    lams = np.asarray(post["Lam"].sample(keys[2], (s,)))
    # log N(x | mu, Lam^-1) for every draw and component at once (4500 scipy objects took 5 minutes on a
    # loaded 2-core CI machine); scipy checks the formula on the first draw.
    d = xh.shape[1]
    diff = xh[None, None] - mus[:, :, None, :]  # [s, K, N, D]
    quad = np.einsum("sknd,skde,skne->skn", diff, lams, diff)
    logdet = np.linalg.slogdet(lams)[1]  # log |Lam|, [s, K]
    comp = 0.5 * (logdet[..., None] - d * np.log(2 * np.pi) - quad)  # [s, K, N]
    for k in range(3):
        np.testing.assert_allclose(comp[0, k], multivariate_normal(mus[0, k], np.linalg.inv(lams[0, k])).logpdf(xh),
                                   rtol=1e-10)
    ll = logsumexp(comp + np.log(pis)[..., None], axis=1)  # [s, N]
    ref = logsumexp(ll, 0) - np.log(s)
    assert ours.shape == (len(xh),)
    np.testing.assert_allclose(ours.mean(), ref.mean(), atol=0.02)
    np.testing.assert_allclose(ours, ref, atol=0.1)


def test_to_arviz(gmm_fit):
    pytest.importorskip("arviz")
    fit, _ = gmm_fit
    idata = fit.to_arviz(draws=200, seed=0)
    mu = idata.posterior["mu"].values
    assert mu.shape == (1, 200, 3, 2)
    np.testing.assert_allclose(mu.mean(axis=(0, 1)), np.asarray(fit.posterior["mu"].mean), atol=0.3)


def test_posterior_draws_have_the_posterior_moments(gmm_fit):
    """``sample_posterior`` draws by NumPy where its sampler has q's law (results/draws.py): the
    draws' means of μ (MvNormal), Λ (Wishart), π (Dirichlet) and the frequencies of z
    (Categorical) agree with q's exact means within 5 Monte Carlo standard errors, and
    Λ's draws are symmetric positive definite."""
    fit, _ = gmm_fit
    n = 4000
    draws = fit.sample_posterior(draws=n, seed=3)
    post = fit.posterior
    for name in ("mu", "Lam", "pi"):
        d = draws[name]
        assert d.shape == (n,) + tuple(post[name].batch_shape) + tuple(post[name].event_shape)
        se = d.std(axis=0) / np.sqrt(n)
        assert np.all(np.abs(d.mean(axis=0) - np.asarray(post[name].mean)) <= 5 * se + 1e-12), name
    assert np.all(np.linalg.eigvalsh(draws["Lam"]) > 0)
    z, probs = draws["z"], np.asarray(post["z"].probs)
    assert z.shape == (n,) + probs.shape[:-1] and z.dtype.kind == "i"
    freq = (z[..., None] == np.arange(probs.shape[-1])).mean(axis=0)
    assert np.all(np.abs(freq - probs) <= 5 * np.sqrt(probs * (1 - probs) / n) + 1e-12)


def test_posterior_predictive_replicates_resemble_the_data(gmm_fit):
    fit, _ = gmm_fit
    x = np.asarray(fit.bound.values["x"])
    rep = fit.posterior_predictive(draws=8, seed=0)["x"]
    assert rep.shape == (8,) + x.shape
    # Means and spreads of replicated sets agree with the data's (sd of a mean of 250 ≈ 0.17).
    np.testing.assert_allclose(rep.mean(axis=(0, 1)), x.mean(0), atol=0.35)
    np.testing.assert_allclose(rep.std(axis=(0, 1)), x.std(0), rtol=0.1)


def test_posterior_predictive_of_a_chain_and_a_regression():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 3))
    y = X @ np.array([1.0, -2.0, 0.0]) + 0.3 * rng.normal(size=80)
    fit = vp.fit(vp.load(ROOT / "models/linreg.vem"), {"X": X, "y": y})
    rep = fit.posterior_predictive(draws=20, seed=0)["y"]
    assert np.corrcoef(rep.mean(0), y)[0, 1] > 0.98
    h = vp.fit(vp.load(ROOT / "models/hmm.vem"), {"x": blobs(60)}, consts={"K": 3})
    assert h.posterior_predictive(draws=2)["x"].shape == (2, 60, 2)


def test_predict_out_writes_the_posterior_means_of_continuous_locals(tmp_path, capsys):
    """``vemppl predict --out`` wrote only categorical locals, so a model whose locals are
    continuous got an empty archive.  Here q(z_n) given x_n and the fitted q(μ) is exactly
    N((E[μ] + x_n)/2, 1/2) (precisions 1 and 1), so ``z_mean`` is known in closed form."""
    from vemppl.cli import main

    text = """model loc
dim N
data x: real[N]
mu ~ Normal(0, precision = 1e-2)
for n in range(N) {
    z[n] ~ Normal(mu, 1.0)
    x[n] ~ Normal(z[n], 1.0)
}"""
    rng = np.random.default_rng(0)
    fit = vp.fit(vp.parse(text), {"x": 2.0 + rng.normal(size=40) * 1.5})
    fit.save(tmp_path / "res")
    new = rng.normal(size=7)
    np.savez(tmp_path / "new.npz", x=new)
    assert main(["predict", str(tmp_path / "res"), "--data", str(tmp_path / "new.npz"),
                 "--out", str(tmp_path / "pred.npz")]) == 0
    with np.load(tmp_path / "pred.npz") as out:
        np.testing.assert_allclose(out["z_mean"], (float(fit.posterior["mu"].mean) + new) / 2, rtol=1e-8)
