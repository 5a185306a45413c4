"""Defects left over from earlier sessions, each with a test that failed before its fix.

1. A dim bound by the data's categories (``cat(V)`` arrays, LANGUAGE.md "Sizes"): the largest
   value in *all* of its arrays plus one, said in the fit's summary; the same rule under SVI's
   batches; a category above a V known otherwise is a located error saying where V came from.
2. ``predict`` keeps the fitted weights of networks: its plan holds no params, so nothing is
   trained on the new data.  It stops by the fit's rule (``engine.fit.reads_rate``), and at a
   sweep that changes no variational parameter; ``Prediction`` says whether ``max_iter`` stopped it.
3. What a node's definitions read, transitively, is read off the IR's DAG (``ModelGraph.upstream``),
   which the exact predictive density's test of a global sized by the plate now uses.
"""

from __future__ import annotations

import numpy as np
import pytest

import vemppl as vp
from vemppl.cli import main

TWO_ARRAYS = """model two
dim N, M, V
data x: cat(V)[N]
data y: cat(V)[M]
pi ~ Dirichlet(fill(1.0, V))
for n in range(N) { x[n] ~ Categorical(pi) }
for m in range(M) { y[m] ~ Categorical(pi) }
"""

CONST_V = """model constv
dim N
const V = 5
data x: cat(V)[N]
pi ~ Dirichlet(fill(1.0, V))
for n in range(N) { x[n] ~ Categorical(pi) }
"""

X, Y = np.array([0, 1, 2, 1, 0, 2]), np.array([4, 0, 1])


def test_categories_of_every_array_bind_v_and_the_summary_says_so(tmp_path):
    """V is 5 from y's 4, not 3 from x alone (before: 'y' has a category out of range, V = 3);
    one Dirichlet block, so CAVI gives the exact posterior Dirichlet(1 + counts) over 5 categories.
    The saved results keep the note: the loaded fit's summary says it too."""
    fit = vp.fit(vp.parse(TWO_ARRAYS), {"x": X, "y": Y}, max_iter=5)
    counts = np.bincount(np.concatenate([X, Y]), minlength=5)
    alpha = 1.0 + counts
    np.testing.assert_allclose(np.asarray(fit.posterior["pi"].mean), alpha / alpha.sum(), rtol=1e-10)
    note = "(dim V = 5, taken from the largest value in 'x' and 'y' plus one)"
    assert note in fit.summary()
    fit.save(tmp_path / "out")
    assert note in vp.load_results(tmp_path / "out").summary()


SHAPED_V = CONST_V.replace("dim N\nconst V = 5\n", "dim N, V\ndata w: real[V]\n")


@pytest.mark.parametrize("text", [CONST_V, SHAPED_V], ids=["const", "shape"])
def test_svi_batches_leave_a_category_bound_known_otherwise_alone(text):
    """Under SVI every cat(V) bound was guessed from the categories: a const V was passed on as a
    dim (before: "dims= sets 'V' ... which is a const") and a V that w's shape binds disagreed with
    it ("'w' disagrees about dim V: V = 3 from dims="); with every unit in the batch and step 1,
    one step is the exact posterior over V = 5 categories."""
    fit = vp.fit(vp.parse(text), {"x": X, "w": np.zeros(5)} if "w" in text else {"x": X}, max_iter=1,
                 algorithm=vp.svi(batch_size=len(X), step_size=(0.0, 1.0)))
    alpha = 1.0 + np.bincount(X, minlength=5)
    np.testing.assert_allclose(np.asarray(fit.posterior["pi"].mean), alpha / alpha.sum(), rtol=1e-10)
    assert "dim V" not in fit.summary()


def test_a_category_above_a_given_v_is_located_and_says_where_v_came_from(tmp_path, capsys):
    path = tmp_path / "two.vem"
    path.write_text(TWO_ARRAYS)
    np.savez(tmp_path / "d.npz", x=X, y=Y)
    code = main(["fit", str(path), "--data", str(tmp_path / "d.npz"), "--set", "V=4", "--quiet",
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith(f"{path}:4:6: data: 'y' has a category out of range"), err
    assert "(type cat(V)[M], V = 4 from --set V=4); got 4 at index (0,)" in err.splitlines()[0], err
    assert err.splitlines()[2].endswith("     ^"), err


NETS = """model nets
dim N, D
const L = 2
data x: real[N, D]
param dec: mlp(tanh)[L, 4, D]
param enc: mlp(tanh)[D, 4, 2 * L]
tau ~ Gamma(1.0, 1.0)
for n in range(N) {
    z[n] ~ MvNormal(zeros(L), eye(L))
    x[n] ~ Normal(dec(z[n]), precision = tau)
    q(z[n]) = enc(x[n])
}
"""


@pytest.fixture(scope="module")
def nets():
    rng = np.random.default_rng(0)
    x = np.tanh(rng.standard_normal((24, 2)) @ rng.standard_normal((2, 3))) + 0.1 * rng.standard_normal((24, 3))
    fit = vp.fit(vp.parse(NETS), {"x": x[:16]}, max_iter=5, tol=0.0, progress=False)
    return fit, x[16:]


def test_predict_keeps_the_fitted_networks(nets):
    """Before: predict took an Adam step of every network at each of its 500 sweeps, fitting the
    decoder and encoder to the new data (weights moved by ~2.7 on this model)."""
    fit, new = nets
    pred = fit.predict({"x": new}, max_iter=3)
    for net in ("dec", "enc"):
        for k, w in fit.params[net].items():
            np.testing.assert_array_equal(np.asarray(pred.state.params[net][k]), w)


def test_predict_of_amortised_locals_stops_at_their_fixed_point(nets):
    """Before: the Monte Carlo ELBO never met tol = 1e-10, so predict ran all 500 sweeps (the
    locals are the encoder's output from the first sweep on); now the second sweep, which moves
    nothing, ends it, and the prediction says it converged."""
    fit, new = nets
    pred = fit.predict({"x": new})
    assert (pred.iterations, pred.converged) == (2, True)


LOGIT = """model logit
dim N
data y: bool[N]
mu ~ Normal(0.0, precision = 1.0)
for n in range(N) {
    h[n] ~ Normal(mu, precision = 1.0)
    y[n] ~ Bernoulli(logits = h[n])
}
"""


def test_predict_says_when_max_iter_stopped_it():
    """A natural-gradient local (deterministic: the rule reads the rate) needs about five sweeps."""
    y = np.array([1, 1, 0, 1, 0, 1, 1, 1], dtype=bool)
    fit = vp.fit(vp.parse(LOGIT), {"y": y}, max_iter=20, progress=False)
    short, full = fit.predict({"y": y[:4]}, max_iter=2), fit.predict({"y": y[:4]})
    assert (short.iterations, short.converged) == (2, False)
    assert full.converged and 2 < full.iterations < 50


CHANGEPOINT = """model cp
dim T
const c = 0.1
data y: count[T]
data after: real[T, T]
l1 ~ Gamma(1.0, c)
l2 ~ Gamma(1.0, 0.1)
s ~ Categorical(fill(1.0 / T, T))
for k in range(T) { for t in range(T) { rate[k, t] = (1.0 - after[k, t]) * l1 + after[k, t] * l2 } }
for t in range(T) { y[t] ~ Poisson(rate[s, t]) }
"""


def test_upstream_follows_argument_reads_not_indices_or_loop_bounds():
    """Written out by hand from the text: the loop bounds (T of ``range(T)``) and the left-hand
    indices are not read as values; a data array's definition is not followed."""
    m = vp.parse(CHANGEPOINT)
    assert m.upstream(["s"]) == {"s", "T"}
    assert m.upstream(["l1"]) == {"l1", "c"}
    assert m.upstream(["rate"]) == {"rate", "after", "l1", "l2", "c"}
    assert m.upstream(["y"]) == {"y"}  # a data array: its definition is not followed
    assert m.upstream(["y"], stop=("det",)) == {"y", "rate", "s", "T"}
    assert m.upstream(["rate"], stop=("latent",)) == {"rate", "after", "l1", "l2"}
