"""Uses of vemppl written from docs/language.md and cli.md alone (round 17 of the outsider checks:
latent-class, mixture-of-regression, scale-mixture and count models a statistician writes, and the
mistakes one makes writing them), each checked against a reference computed independently of the
code under test."""

from __future__ import annotations

import numpy as np
import pytest

import vemppl as vp

LCA_UNINDEXED = """model lca
dim N, J
const K = 2
const C = 3
data x: cat(C)[N, J]
pi ~ Dirichlet(fill(1.0, K))
for k in range(K) { for j in range(J) { theta[k, j] ~ Dirichlet(fill(1.0, C)) } }
for n in range(N) {
  z[n] ~ Categorical(pi)
  for j in range(J) { x[n, j] ~ Categorical(theta[z[n]]) }
}
"""


@pytest.mark.parametrize("text, line, col, arg", [
    # a latent-class model whose item index was forgotten: theta[z[n]] is [J, C]
    (LCA_UNINDEXED, 10, 45, "theta[z[n]]"),
    # one probability vector per item, read whole at each item: it compiled, the [J] batch of
    # the probabilities broadcast against the loops' axes (right here by luck, as the last loop
    # is over J; misaligned where it is not)
    ("model b\ndim N, J\nconst C = 3\ndata x: cat(C)[N, J]\n"
     "for j in range(J) { theta[j] ~ Dirichlet(fill(1.0, C)) }\n"
     "for n in range(N) { for j in range(J) { x[n, j] ~ Categorical(theta) } }\n", 6, 63, "theta"),
    # a Multinomial or MvNormal reading every component at once
    ("model b\ndim N, V\nconst K = 2\ndata tot: count[N]\ndata x: count[N, V]\n"
     "for k in range(K) { theta[k] ~ Dirichlet(fill(1.0, V)) }\n"
     "for n in range(N) { x[n] ~ Multinomial(tot[n], theta) }\n", 7, 48, "theta"),
    ("model b\ndim N, D\nconst K = 2\ndata x: real[N, D]\n"
     "for k in range(K) { mu[k] ~ MvNormal(zeros(D), eye(D)) }\n"
     "for n in range(N) { x[n] ~ MvNormal(mu, eye(D)) }\n", 6, 37, "mu"),
])
def test_a_vector_familys_argument_with_a_batch_axis_is_a_located_shape_error(text, line, col, arg):
    """docs/language.md, Sizes: "a distribution's vector and matrix arguments have the rank it
    needs".  Only "at least" that rank was checked: a Categorical, Multinomial or MvNormal given a
    matrix where one draw reads a vector stopped with an internal error (exit 1) in compiling, or
    compiled with the extra axis broadcast against the loops.  Each is now a `shape` error at the
    argument, naming its shape."""
    with pytest.raises(vp.VemError) as err:
        vp.compile_model(vp.parse(text))
    e = err.value
    assert (e.kind, e.line, e.column) == ("shape", line, col)
    assert f"{arg} has shape" in e.message and "must be a vector" in e.message


BINMIX = """model binmix
dim G
const K = 2
data n: {ntype}[G]
data y: count[G]
pi ~ Dirichlet(fill(1.0, K))
for k in range(K) {{ p[k] ~ Beta(1.0, 1.0) }}
for i in range(G) {{
  z[i] ~ Categorical(pi)
  y[i] ~ Binomial(n[i], p[z[i]])
}}
"""


@pytest.fixture(scope="module")
def binmix_data():
    rng = np.random.default_rng(5)
    n = rng.integers(10, 40, 40)
    z = rng.integers(0, 2, 40)
    return {"n": n, "y": rng.binomial(n, np.array([0.2, 0.7])[z])}, z


@pytest.mark.parametrize("bad", [25.5, -1.0])
def test_a_binomial_total_read_from_a_real_array_must_be_a_count(binmix_data, bad):
    """The totals of a Binomial mixture declared `real` (a user's slip for `count`): a total of
    25.5 or -1 was fitted silently (the log density's gammaln is defined there, but it is no
    distribution's), where a constant total of 2.5 is a support error.  It is now a `data` error
    at the argument naming the loop index and the value."""
    data, _ = binmix_data
    n = data["n"].astype(float)
    n[3] = bad
    with pytest.raises(vp.VemError) as err:
        vp.fit(vp.parse(BINMIX.format(ntype="real")), data={**data, "n": n}, progress=False)
    e = err.value
    assert (e.kind, e.line, e.column) == ("data", 10, 19)
    assert f"n[i] = {bad:g} at i = 3" in e.message


MULTMIX = """model multmix
dim N, V
const K = 2
data tot: count[N]
data x: count[N, V]
pi ~ Dirichlet(fill(1.0, K))
for k in range(K) { theta[k] ~ Dirichlet(fill(1.0, V)) }
for n in range(N) {
  z[n] ~ Categorical(pi)
  x[n] ~ Multinomial(tot[n], theta[z[n]])
}
"""


def test_replicated_multinomial_counts_are_whole_numbers_like_every_count():
    """posterior_predictive of a mixture of multinomials with per-row totals returned float64
    counts (NumPyro draws a Multinomial in its arguments' dtype) where a Poisson's, a Binomial's
    and a Categorical's come back as int64, so np.bincount of a replicate failed.  They are now
    int64, each row summing to its total."""
    rng = np.random.default_rng(7)
    theta = rng.dirichlet(np.ones(4), size=2)
    z, tot = rng.integers(0, 2, 12), rng.integers(5, 30, 12)
    x = np.array([rng.multinomial(t, theta[k]) for t, k in zip(tot, z)])
    fit = vp.fit(vp.parse(MULTMIX), data={"x": x, "tot": tot}, seed=0, max_iter=2, progress=False)
    rep = fit.posterior_predictive(3, seed=0)["x"]
    assert rep.shape == (3, 12, 4) and rep.dtype == np.int64
    np.testing.assert_array_equal(rep.sum(-1), np.broadcast_to(tot, (3, 12)))


def test_init_labels_that_are_not_whole_numbers_say_so(binmix_data):
    """docs/language.md, Parameters: init={"z": labels} takes one whole number in 0..K−1 per
    element.  Labels of the right shape but not whole (a user's 0.5-shifted labels) were refused
    as 'has shape (40,); expected ... whole numbers of shape (40,)', blaming the shape it has.
    The message now names the first value that is not a whole number."""
    data, z = binmix_data
    with pytest.raises(vp.VemError) as err:
        vp.fit(vp.parse(BINMIX.format(ntype="count")), data=data, init={"z": z + 0.5}, progress=False)
    assert err.value.kind == "data"
    assert f"{z[0] + 0.5:g} at index (0,) is not a whole number" in err.value.message


def test_a_markov_chain_without_its_first_step_says_so():
    """docs/language.md, Loops: a latent element that no piece defines is an error naming it.  An
    HMM written with its transition `z[t] ~ Categorical(A[z[t-1]])` for t in range(1, T) but no
    `z[0]` was refused as 'unsupported: cannot tell the number of categories of z', naming neither
    the missing step nor the fix.  It is now a `shape` error at the transition that says no
    statement defines the first step."""
    text = ("model hmm\ndim T\nconst K = 2\ndata y: real[T]\n"
            "for k in range(K) { A[k] ~ Dirichlet(fill(1.0, K)) }\n"
            "for k in range(K) { mu[k] ~ Normal(0.0, 10.0) }\n"
            "for t in range(1, T) { z[t] ~ Categorical(A[z[t-1]]) }\n"
            "for t in range(T) { y[t] ~ Normal(mu[z[t]], 1.0) }\n")
    with pytest.raises(vp.VemError) as err:
        vp.compile_model(vp.parse(text))
    e = err.value
    assert (e.kind, e.line, e.column) == ("shape", 7, 24)
    assert "no statement defines the first step of 'z'" in e.message and "z[0]" in e.hint


MIXCHAIN = """model mixchain
dim S, T
const K = 2
const C = 2
data y: count[S, T]
w ~ Dirichlet(fill(1.0, C))
for c in range(C) { for k in range(K) { A[c, k] ~ Dirichlet(fill(1.0, K)) } }
for k in range(K) { lam[k] ~ Gamma(1.0, 0.1) }
for s in range(S) {
  c[s] ~ Categorical(w)
  z[s, 0] ~ Categorical(fill(0.5, K))
}
for s in range(S) { for t in range(1, T) { z[s, t] ~ Categorical(A[c[s], z[s, t-1]]) } }
for s in range(S) { for t in range(T) { y[s, t] ~ Poisson(lam[z[s, t]]) } }
"""


def test_derived_updates_weight_two_steps_of_a_chain_by_their_pairwise_marginal():
    """`vemppl updates` of a mixture of Poisson HMMs (each sequence's transition matrix chosen by
    its class c[s]) wrote the transition counts as r[z[s, t - 1] = k]·r[z[s, t] = l], a product of
    the two steps' marginals, in the update of A and of c, where the fit (checked against a NumPy
    forward–backward) uses the pairwise marginal forward–backward gives.  The text now writes the
    pairwise marginal, as the chain's own section does (r[z[t - 1] = j, z[t] = k])."""
    from vemppl.render.updates import derived_updates

    model = vp.parse(MIXCHAIN)
    text = derived_updates(model, vp.compile_model(model))
    assert "r[c[s] = c]·r[z[s, t - 1] = k, z[s, t] = l] · ∇_{E[T(A[c, k])]} E[log A[c, k, l]]" in text
    assert "Σ_t Σ_l Σ_m r[z[s, t - 1] = l, z[s, t] = m] · E[log A[k, l, m]]" in text
    assert "r[z[s, t - 1] = k]·r[z[s, t] = l]" not in text


LCA_ALPHA = """model lca
dim N, J
const K = 2
const C = 3
const alpha: real[C] = 1.0
data x: cat(C)[N, J]
pi ~ Dirichlet(fill(1.0, K))
for k in range(K) { for j in range(J) { theta[k, j] ~ Dirichlet(alpha) } }
for n in range(N) {
  z[n] ~ Categorical(pi)
  for j in range(J) { x[n, j] ~ Categorical(theta[z[n], j]) }
}
"""


def test_a_scalar_given_for_a_typed_vector_const_fills_its_shape():
    """`const alpha: real[C] = 1.0` is filled to [C] by its scalar; `--set alpha=0.5` (or
    consts={"alpha": 0.5}), which docs/cli.md allows as a finite number, stayed a scalar while the
    model's shapes read [C]: a latent-class model stopped with an internal error (exit 1, 'mul got
    incompatible shapes').  The scalar now fills the declared shape, so each q(theta[k, j]) is the
    exact Dirichlet update 0.5 + Σ_n r[n, k] onehot(x[n, j]) (to the last sweep's move of r)."""
    rng = np.random.default_rng(6)
    theta = rng.dirichlet(np.full(3, 0.5), size=(2, 4))
    z = rng.integers(0, 2, 40)
    x = np.array([[rng.choice(3, p=theta[z[n], j]) for j in range(4)] for n in range(40)])
    fit = vp.fit(vp.parse(LCA_ALPHA), data={"x": x}, consts={"alpha": 0.5}, seed=0, progress=False)
    r = np.asarray(fit.posterior["z"].probs)
    counts = np.einsum("nk,njc->kjc", r, np.eye(3)[x])
    np.testing.assert_allclose(np.asarray(fit.posterior["theta"].concentration) - counts, 0.5, atol=1e-3)


SCALE = """model scale
dim N
data y: real[N]
param m: real
param s: pos{init}
for n in range(N) {{ y[n] ~ Normal(m, s) }}
"""


@pytest.mark.parametrize("init, given, kind, words", [
    (" = -2.0", {}, "support", "the initial value of param 's' must be positive (type pos); got -2"),
    ("", {"s": -2.0}, "data", "init for 's' must be positive (type pos); got -2"),
    ("", {"m": np.nan}, "data", "init for 'm' must be finite (type real); got nan"),
])
def test_a_param_started_outside_its_support_is_named(init, given, kind, words):
    """docs/language.md, Parameters: a param starts from its initialiser or from init=.  A start
    outside the type's support (a Normal scale `param s: pos = -2.0`, or init={"s": -2.0}) was taken
    as given: the first sweep's ELBO was NaN and the error blamed the data ('may be badly scaled or
    a prior improper').  The start is now checked against the type: a `support` error at the
    declaration for the initialiser, a `data` error naming init= for a given start."""
    y = np.random.default_rng(0).normal(size=20)
    with pytest.raises(vp.VemError) as err:
        vp.fit(vp.parse(SCALE.format(init=init)), data={"y": y}, init=given, progress=False)
    e = err.value
    assert e.kind == kind and words in e.message, e.message
    if kind == "support":
        assert (e.line, e.column) == (5, 7)
