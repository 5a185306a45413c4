"""Repeated rows of the data plate fitted once, weighted by their count (engine/compress.py).

The merged fit must be the fit of every row: from the same start (random globals, the
locals fitted to them first, so that two units with the same data start alike) its ELBO
trace equals the unmerged fit's to rounding, its expanded q(z) is every unit's, and the ELBO
of the returned state computed row by row (the full engine, no weights) is the merged
fit's last value.  From the default start the units' seeded locals differ, so only the last
identity is exact there.  The models include ones that are not in models/.
"""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vemppl as vp
from vemppl.diagnostics import VemError
from vemppl.engine import chunks

ROOT = Path(__file__).resolve().parent.parent


def _lda():
    rng = np.random.default_rng(2)
    doc = np.repeat(np.arange(30), 40)
    word = rng.integers(0, 12, size=len(doc))  # 12 words: most (doc, word) pairs repeat
    return vp.load(ROOT / "models" / "lda.vem"), {"doc": doc, "word": word}, {"K": 3}, {"D": 30, "V": 12}


def _binary_mixture():  # bernoulli_mixture.vem's data: 4-pixel images, 16 possible rows
    rng = np.random.default_rng(3)
    proto = np.array([[1, 1, 0, 0], [0, 0, 1, 1], [1, 0, 1, 0]])
    z = rng.integers(0, 3, 600)
    x = (rng.random((600, 4)) < np.where(proto[z] == 1, 0.85, 0.1)).astype(bool)
    return vp.load(ROOT / "models" / "bernoulli_mixture.vem"), {"x": x}, {"K": 3}, {}


def _two_views():  # not in models/: a count and a category per unit, one cluster label
    text = """
model two_views
dim N
const K = 2
data c: count[N]
data g: cat(3)[N]
pi ~ Dirichlet(fill(1.0, K))
for k in range(K) {
    rate[k] ~ Gamma(1.0, 0.5)
    p[k] ~ Dirichlet(fill(1.0, 3))
}
for n in range(N) {
    z[n] ~ Categorical(pi)
    c[n] ~ Poisson(rate[z[n]])
    g[n] ~ Categorical(p[z[n]])
}
"""
    rng = np.random.default_rng(4)
    z = rng.integers(0, 2, 800)
    c = rng.poisson(np.where(z == 0, 1.5, 6.0))
    g = np.where(z == 0, rng.choice(3, 800, p=[0.7, 0.2, 0.1]), rng.choice(3, 800, p=[0.1, 0.2, 0.7]))
    return vp.parse(text), {"c": c, "g": g}, {"K": 2}, {}


CASES = {"lda tokens": _lda, "bernoulli mixture": _binary_mixture, "count and category": _two_views}


def _fit(case, **kw):
    model, data, consts, dims = case
    return vp.fit(model, data, consts=consts, dims=dims, seed=0, progress=False, **kw)


@pytest.mark.parametrize("name", sorted(CASES))
def test_merged_rows_give_the_unmerged_fit(name):
    case = CASES[name]()
    kw = dict(start="random-globals", local_iter=3)
    merged = _fit(case, algorithm=vp.cavi(compress=True, **kw), max_iter=15, tol=0)
    whole = _fit(case, algorithm=vp.cavi(compress=False, **kw), max_iter=15, tol=0)
    rows = merged.engine.merged_rows
    assert rows is not None and whole.engine.merged_rows is None
    assert len(rows.weights) < rows.rows / 2  # the data really repeat
    np.testing.assert_allclose(merged.elbo_trace, whole.elbo_trace, rtol=1e-10, atol=0)
    for j in rows.plate.local_blocks:  # each unit's q is its distinct row's, and the unmerged fit's
        np.testing.assert_allclose(np.asarray(merged.posterior[j].probs), np.asarray(whole.posterior[j].probs),
                                   rtol=0, atol=1e-9)
    assert np.all(np.diff(merged.elbo_trace) >= -1e-9 * np.abs(merged.elbo_trace[1:]))


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_returned_state_is_every_units_and_its_elbo_the_merged_one(name, tmp_path):
    case = CASES[name]()
    fit = _fit(case, max_iter=40, tol=1e-9)  # the default start and the automatic choice
    assert fit.engine.merged_rows is not None and fit.engine.unit_weights is None
    n = fit.engine.merged_rows.rows
    for j in fit.engine.merged_rows.plate.local_blocks:
        assert np.asarray(fit.posterior[j].probs).shape[0] == n
    # The full engine sums every unit's terms without weights: the same number.
    assert float(fit.engine.elbo(fit.state)) == pytest.approx(fit.elbo, rel=1e-10)
    fit.save(tmp_path / "r")  # saved and loaded as any fit: every unit's q
    back = vp.load_results(tmp_path / "r")
    for j in fit.engine.merged_rows.plate.local_blocks:
        np.testing.assert_array_equal(np.asarray(back.posterior[j].probs), np.asarray(fit.posterior[j].probs))


def test_weights_split_with_the_chunks(monkeypatch):
    """2048 distinct rows, each repeated 1-4 times: the merged plate is chunked (2 × 1024) and
    the chunks' weights are their rows'."""
    rng = np.random.default_rng(5)
    distinct = np.unique(rng.integers(0, 2, size=(6000, 14)).astype(bool), axis=0)[:2048]
    assert len(distinct) == 2048
    x = np.repeat(distinct, rng.integers(1, 5, size=2048), axis=0)
    x = x[rng.permutation(len(x))]
    model = vp.load(ROOT / "models" / "bernoulli_mixture.vem")
    monkeypatch.setattr(chunks, "MIN_WORK", 0)
    kw = dict(consts={"K": 3}, seed=1, max_iter=8, tol=0, progress=False)
    merged = vp.fit(model, {"x": x}, algorithm=vp.cavi(compress=True, start="random-globals"), **kw)
    whole = vp.fit(model, {"x": x}, algorithm=vp.cavi(compress=False, start="random-globals"), **kw)
    assert merged.engine.merged_rows is not None and len(merged.engine.merged_rows.weights) == 2048
    np.testing.assert_allclose(merged.elbo_trace, whole.elbo_trace, rtol=1e-10, atol=0)


def test_automatic_merging_leaves_alone_what_it_cannot_merge():
    rng = np.random.default_rng(6)
    gmm = vp.load(ROOT / "models" / "gmm.vem")
    x = np.round(rng.normal(size=(300, 2)))  # real-valued rows (repeated here) are not compared
    assert vp.fit(gmm, {"x": x}, consts={"K": 2}, max_iter=3, progress=False).engine.merged_rows is None
    model, data, consts, _ = _binary_mixture()
    present = np.ones(len(data["x"]), bool)
    present[0] = False  # a unit marked absent
    masked = vp.fit(model, data, consts=consts, mask={"z": present}, max_iter=3, progress=False)
    assert masked.engine.merged_rows is None  # a masked plate keeps its rows
    few = vp.fit(model, {"x": np.eye(4, dtype=bool)[np.arange(40) % 4][:6]}, consts=consts, max_iter=3, progress=False)
    assert few.engine.merged_rows is not None  # 6 rows, 2 repeats: over a tenth
    distinct = vp.fit(model, {"x": np.unique(data["x"], axis=0)}, consts=consts, max_iter=3, progress=False)
    assert distinct.engine.merged_rows is None


def test_compress_true_says_why_it_cannot():
    gmm = vp.load(ROOT / "models" / "gmm.vem")
    with pytest.raises(VemError, match="'x' is real-valued"):
        vp.fit(gmm, {"x": np.zeros((10, 2))}, consts={"K": 2}, algorithm=vp.cavi(compress=True), progress=False)
    model, data, consts, _ = _binary_mixture()
    with pytest.raises(VemError, match="stochastic VI reads every row"):
        vp.fit(model, data, consts=consts, compress=True, batch_size=50, progress=False)
    with pytest.raises(VemError, match="the sharded fit runs on every row"):
        vp.cavi(compress=True, devices=1)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(8, 60), categories=st.integers(2, 4))
def test_merged_and_unmerged_traces_agree_on_random_categorical_data(seed, n, categories):
    """Any small categorical data set, as a Dirichlet–categorical mixture of one feature."""
    text = f"""
model onefeature
dim N
const K = 2
data y: cat({categories})[N]
pi ~ Dirichlet(fill(1.0, K))
for k in range(K) {{ p[k] ~ Dirichlet(fill(0.5, {categories})) }}
for n in range(N) {{
    z[n] ~ Categorical(pi)
    y[n] ~ Categorical(p[z[n]])
}}
"""
    y = np.random.default_rng(seed).integers(0, categories, n)
    kw = dict(seed=seed % 97, max_iter=10, tol=0, progress=False)
    merged = vp.fit(vp.parse(text), {"y": y}, algorithm=vp.cavi(compress=True, start="random-globals"), **kw)
    whole = vp.fit(vp.parse(text), {"y": y}, algorithm=vp.cavi(compress=False, start="random-globals"), **kw)
    np.testing.assert_allclose(merged.elbo_trace, whole.elbo_trace, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", ["lda tokens", "bernoulli mixture"])
def test_predict_merges_the_new_datas_repeated_rows(name):
    """predict on new data runs on its distinct rows too: the fold-in converges to the
    same bound and posteriors as on every row (the starts differ: the seeding sees other
    rows), and the returned state has one entry per unit."""
    model, data, consts, dims = CASES[name]()
    if name == "lda tokens":
        train = data["doc"] < 20
        fit = vp.fit(model, {k: v[train] for k, v in data.items()}, consts=consts, dims={**dims, "D": 20}, seed=0,
                     algorithm=vp.cavi(start="random-globals", local_tol=1e-3), progress=False)
        new, new_dims, local = {"doc": data["doc"][~train] - 20, "word": data["word"][~train]}, {**dims, "D": 10}, "z"
    else:
        fit = vp.fit(model, {"x": data["x"][:400]}, consts=consts, seed=0, progress=False)
        new, new_dims, local = {"x": data["x"][400:]}, None, "z"
    merged = fit.predict(new, dims=new_dims, tol=1e-13, max_iter=3000)
    every = fit.predict(new, dims=new_dims, tol=1e-13, max_iter=3000, compress=False)
    n = len(next(iter(new.values())))
    assert merged.state.mu[local].onehot.shape == every.state.mu[local].onehot.shape == (n, consts["K"])
    np.testing.assert_allclose(merged.elbo, every.elbo, rtol=1e-9)
    np.testing.assert_allclose(merged.probabilities(local), every.probabilities(local), atol=1e-4)

    from vemppl.results.predict import _local_engine

    engine = _local_engine(fit, new, False, None, new_dims, None)[0]
    assert engine.merged_rows is not None and len(engine.merged_rows.weights) < n
    with pytest.raises(VemError, match="'x' is real-valued"):
        gmm = vp.fit(vp.load(ROOT / "models" / "gmm.vem"), {"x": np.random.default_rng(0).normal(size=(40, 2))},
                     consts={"K": 2}, progress=False, max_iter=3)
        gmm.predict({"x": np.zeros((10, 2))}, compress=True)


def test_the_expansion_to_every_unit_is_compile_time_where_it_compiles():
    """``UnitWeights.expand(timed=True)``: the call that compiled the gather of a new shape is
    compile time (0.05 s of LDA's first fit on Reuters was counted as fit time), a later one 0."""
    import jax

    fit = _fit(_lda(), max_iter=2)
    weights, state = fit.engine.merged_rows, fit.state
    rows = int(weights.inverse.max()) + 2  # the distinct rows and one more: a shape not compiled yet
    cut = {j: jax.tree_util.tree_map(lambda a: a[:rows], state.eta[j]) for j in weights.plate.local_blocks}
    merged = state._replace(eta={**state.eta, **cut}, mu={**state.mu, **{
        j: jax.tree_util.tree_map(lambda a: a[:rows], state.mu[j]) for j in weights.plate.local_blocks}})
    _, first = weights.expand(merged, timed=True)
    again, second = weights.expand(merged, timed=True)
    assert first > 0.0 and second == 0.0
    for j in weights.plate.local_blocks:
        np.testing.assert_array_equal(np.asarray(again.eta[j][0]),
                                      np.asarray(merged.eta[j][0])[np.asarray(weights.inverse)])
