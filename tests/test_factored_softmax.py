"""The exp-domain local passes (engine/factored.py) on LDA (models/lda.vem), a tiny corpus.

* **One sweep against NumPy.**  From a fitted state, the engine's sweep (z's mean map in the
  exp domain, the default) against the LDA updates written here in NumPy and scipy (Blei, Ng &
  Jordan 2003): local passes φ = softmax(E[log θ_d] + E[log β_w]), γ = α + Σ φ until γ moves by
  at most 1e-3 (the default's local_iter passes at most), then λ = η + Σ φ at each word; q(θ), q(z), q(β) and the
  ELBO written out term by term.
* **The merged rows.**  A default fit (on the merged (document, word) rows, each weighted by
  its count) gives the same ELBO trace with the exp-domain passes as without them.
* **The fallback.**  A sweep whose passes are not exact there (forced here) is run again
  without them: the same trace, no NaN.
* **The passes on the groups' sums** (engine/summed.py).  ``Categorical.summed_mean`` over a
  [G, L, K] layout equals the weighted sums of the materialised means (the softmax of ι + V[g],
  written in NumPy) per group, to 1e-12; a default fit gives the ELBO trace of the passes that
  form q(z) at every row (the pair refused), to 1e-12, with each document's rows in one block
  or in several; data of the same shapes whose groups are
  not the layout's (a reused engine's copy) make the sweep not exact (NaN: run again without the
  exp domain by ``guarded_sweep``), never a wrong update.
"""

import numpy as np
import pytest
from scipy.special import digamma, gammaln, logsumexp

import jax
import jax.numpy as jnp
import vemppl as vp
import vemppl.engine.schedule as schedule
import vemppl.engine.summed as summed
from dsl_models import MODELS_DIR
from vemppl.engine import reuse
from vemppl.families.categorical import Categorical, CategoricalStats

K, ALPHA, ETA, D, V = 3, 0.1, 0.01, 6, 12


def corpus(seed=0, per_doc=40):
    rng = np.random.default_rng(seed)
    doc = np.repeat(np.arange(D), per_doc)
    topic = rng.integers(0, K, D * per_doc)
    word = (4 * topic + rng.integers(0, 4, D * per_doc)) % V  # each topic's own four words
    return doc, word


def fit(max_iter=3):
    doc, word = corpus()
    return vp.fit(vp.load(MODELS_DIR / "lda.vem"), {"doc": doc, "word": word},
                  consts={"K": K, "alpha": ALPHA, "eta": ETA}, dims={"D": D, "V": V}, max_iter=max_iter,
                  progress=False)


@pytest.fixture(scope="module")
def fitted():
    reuse.forget()
    return fit()


def e_log_dirichlet(c):
    return digamma(c) - digamma(c.sum(-1, keepdims=True))


def dirichlet_entropy(c):
    return np.sum(gammaln(c)) - np.sum(gammaln(c.sum(-1))) - np.sum((c - 1) * e_log_dirichlet(c))


def numpy_sweep(lam, gamma, doc, word, tol=1e-3, passes=10):
    """The carried sweep from q(β) = Dir(lam), q(θ) = Dir(gamma): (gamma, phi, lam, ELBO)."""
    b = e_log_dirichlet(lam)[:, word].T  # [M, K]
    for _ in range(passes):
        s = e_log_dirichlet(gamma)[doc] + b
        phi = np.exp(s - logsumexp(s, axis=1, keepdims=True))
        new = np.full((D, K), ALPHA)
        np.add.at(new, doc, phi)
        change = np.mean(np.abs(new - gamma)) / np.mean(np.abs(gamma - 1))  # of η = γ − 1
        gamma = new
        if change <= tol:
            break
    lam = np.full((K, V), ETA)
    np.add.at(lam.T, word, phi)
    et, eb = e_log_dirichlet(gamma), e_log_dirichlet(lam)
    log_joint = (D * (gammaln(K * ALPHA) - K * gammaln(ALPHA)) + (ALPHA - 1) * et.sum()
                 + K * (gammaln(V * ETA) - V * gammaln(ETA)) + (ETA - 1) * eb.sum()
                 + np.sum(phi * (et[doc] + eb[:, word].T)))
    entropy = dirichlet_entropy(gamma) + dirichlet_entropy(lam) - np.sum(phi * np.log(phi))
    return gamma, phi, lam, log_joint + entropy


def test_one_sweep_is_numpys_lda_sweep(fitted):
    engine, state = fitted.engine, fitted.state
    assert set(engine.local_global.grouped) == {"z"}  # the exp-domain passes run
    assert engine.local_global.grouped["z"].iota_keys == (("word", V),)  # ι at one row of each word
    doc, word = corpus()
    lam0 = np.asarray(state.eta["beta"].log) + 1
    gamma0 = np.asarray(state.eta["theta"].log) + 1
    gamma, phi, lam, elbo = numpy_sweep(lam0, gamma0, doc, word, passes=engine.local_global.local_iter)
    new, value = engine._sweep(state, engine.data, restart=jnp.asarray(False))
    np.testing.assert_allclose(np.asarray(new.eta["theta"].log) + 1, gamma, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(new.mu["z"].onehot), phi, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(np.asarray(new.eta["beta"].log) + 1, lam, rtol=1e-10)
    assert float(value) == pytest.approx(elbo, rel=1e-11)
    # z's η is the CAVI target at the q(θ) its last pass read: softmax(η) = φ
    eta_z = np.asarray(new.eta["z"].onehot)
    np.testing.assert_allclose(np.exp(eta_z - logsumexp(eta_z, axis=1, keepdims=True)), phi, rtol=1e-9, atol=1e-14)


def test_merged_rows_and_the_fallback_give_the_trace_without_the_exp_domain(fitted, monkeypatch):
    with monkeypatch.context() as m:  # the passes without the exp domain
        m.setattr(schedule, "grouped_rows", lambda *a: None)
        reuse.forget()
        plain = fit()
    assert not plain.engine.local_global.grouped
    np.testing.assert_allclose(fitted.elbo_trace, plain.elbo_trace, rtol=1e-12)

    exact = Categorical.mean_of_sum.__func__

    def never_exact(cls, *args):
        mu, _ = exact(cls, *args)
        return mu, jnp.asarray(False)

    with monkeypatch.context() as m:  # every sweep's passes refused: each sweep runs again
        m.setattr(Categorical, "mean_of_sum", classmethod(never_exact))
        reuse.forget()
        redone = fit()
    reuse.forget()
    assert redone.engine.local_global.grouped
    assert np.all(np.isfinite(redone.elbo_trace))
    np.testing.assert_allclose(redone.elbo_trace, plain.elbo_trace, rtol=1e-12)


def test_iota_at_one_row_of_each_word_is_iota_at_every_row(fitted):
    """z's loop-invariant target evaluated at one row of each word and gathered (the default)
    against the same factors' gradient at every row, in the same sweep: equal to rounding; and
    a real-valued array read at the row (x[i] ~ Normal(m[z[i]], 1)) refuses the per-value form."""
    import dataclasses

    engine, state = fitted.engine, fitted.state
    LG = engine.local_global
    per_word = LG.grouped["z"]
    per_row = dataclasses.replace(per_word, iota_keys=())
    fs = LG.invariant["z"]

    @jax.jit  # one program (op by op, the autodiff compiled each primitive: 4 s)
    def both(state, data):
        part = engine.target_part(state, "z", fs, data)
        return per_word.prepare(engine, state, data, part), per_row.prepare(engine, state, data, part)

    a, b = both(state, engine.data)
    np.testing.assert_allclose(np.asarray(a.iota.onehot), np.asarray(b.iota.onehot), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(np.asarray(a.fixed_exp), np.asarray(b.fixed_exp), rtol=1e-13, atol=1e-15)
    assert b.by_value is None and a.by_value is not None

    text = """model topics_real
dim M, D
const K = 2
data doc: cat(D)[M]
data x: real[M]
for k in range(K) { m[k] ~ Normal(0, 10) }
for d in range(D) { theta[d] ~ Dirichlet(fill(1.0, K)) }
for i in range(M) {
    z[i] ~ Categorical(theta[doc[i]])
    x[i] ~ Normal(m[z[i]], 1)
}
"""
    from vemppl.engine.bind import bind
    from vemppl.engine.cavi import Engine

    rng = np.random.default_rng(3)
    doc = np.repeat(np.arange(4), 30)
    x = np.where(rng.random(120) < 0.5, -3.0, 3.0) + rng.normal(size=120)
    model = vp.parse(text)
    real = Engine(model, vp.compile_model(model), bind(model, {"doc": doc, "x": x}, dims={"D": 4}),
                  schedule=dict(start="random-globals", local_iter=3, dim=None, local_tol=None, local_restart=False))
    assert set(real.local_global.grouped) == {"z"} and real.local_global.grouped["z"].iota_keys == ()


def test_the_first_local_of_random_globals_keeps_its_prior_start_which_no_update_reads(fitted):
    """Under ``start="random-globals"`` the first sweep's first update is z's, from the random
    globals: z keeps its prior's start (engine/init.py), not random responsibilities, and the
    first sweep from either start is the same, bit for bit."""
    engine = fitted.engine
    LG = engine.local_global
    assert LG.start == "random-globals" and LG.locals_[0] == "z"
    start = LG.counting(LG.randomise_globals(engine, engine.init(np.array([0, 7], np.uint32)), jax.random.PRNGKey(1)))
    np.testing.assert_allclose(np.asarray(start.mu["z"].onehot), 1.0 / K, rtol=1e-14)  # the prior's: uniform
    r = np.random.default_rng(0).dirichlet(np.ones(K), size=start.mu["z"].onehot.shape[0])
    seeded = start._replace(eta={**start.eta, "z": CategoricalStats(jnp.log(r))},
                            mu={**start.mu, "z": CategoricalStats(jnp.asarray(r))})
    a, value_a = engine._sweep(start, engine.data, restart=jnp.asarray(True))
    b, value_b = engine._sweep(seeded, engine.data, restart=jnp.asarray(True))
    assert float(value_a) == float(value_b)
    for name in ("theta", "beta", "z"):
        np.testing.assert_array_equal(np.asarray(a.eta[name][0]), np.asarray(b.eta[name][0]))


def test_summed_mean_is_the_groups_sum_of_the_means():
    rng = np.random.default_rng(1)
    G, L, k = 4, 5, 6
    iota = rng.normal(0, 3, (G, L, k))
    v = rng.normal(0, 2, (G, k))
    valid = np.arange(L)[None, :] < np.array([5, 3, 1, 4])[:, None]
    w = np.where(valid, rng.integers(1, 5, (G, L)), 0.0)
    s = iota + v[:, None, :]
    mu = np.exp(s - logsumexp(s, axis=-1, keepdims=True))  # the means at each row, materialised
    want = np.einsum("gl,glk->gk", w, mu)
    fixed = np.where(valid[..., None], np.exp(iota - iota.max(-1, keepdims=True)), 0.0)
    got, exact = Categorical.summed_mean(jnp.asarray(fixed), CategoricalStats(jnp.asarray(v)), jnp.asarray(w),
                                         jnp.asarray(valid))
    assert bool(exact)
    np.testing.assert_allclose(np.asarray(got.onehot), want, rtol=1e-12, atol=1e-14)


def test_summed_log_normalizer_is_the_rows_weighted_logsumexp():
    rng = np.random.default_rng(2)
    G, L, k = 4, 5, 6
    iota = rng.normal(0, 3, (G, L, k))
    v = rng.normal(0, 2, (G, k))
    valid = np.arange(L)[None, :] < np.array([5, 3, 1, 4])[:, None]
    w = np.where(valid, rng.integers(1, 5, (G, L)), 0.0)
    want = np.sum(w * logsumexp(iota + v[:, None, :], axis=-1))  # scipy, at each row
    fixed = np.where(valid[..., None], np.exp(iota - iota.max(-1, keepdims=True)), 0.0)
    rows = valid.ravel()  # the valid rows, in ι's [N, K] layout with their weights
    got = Categorical.summed_log_normalizer(CategoricalStats(jnp.asarray(iota.reshape(-1, k)[rows])),
                                            jnp.asarray(w.ravel()[rows]), jnp.asarray(fixed),
                                            CategoricalStats(jnp.asarray(v)), jnp.asarray(w), jnp.asarray(valid))
    assert float(got) == pytest.approx(want, rel=1e-13)


def test_the_pair_gives_the_trace_of_the_passes_at_every_row(fitted, monkeypatch):
    pair = fitted.engine.local_global.pair
    assert pair is not None and (pair.rows.block, pair.partner) == ("z", "theta")
    with monkeypatch.context() as m:
        m.setattr(schedule, "summed_pair", lambda *a, **k: None)
        reuse.forget()
        plain = fit()
    with monkeypatch.context() as m:  # each document's rows in blocks of 5: several per document
        m.setattr(summed, "BLOCK", 5)
        reuse.forget()
        blocked = fit()
    reuse.forget()
    assert plain.engine.local_global.pair is None and plain.engine.local_global.grouped
    ids = blocked.engine.local_global.pair.block_group
    assert blocked.engine.local_global.pair.index.shape[1] == 5 and len(ids) > len(set(ids))
    np.testing.assert_allclose(fitted.elbo_trace, plain.elbo_trace, rtol=1e-12)
    np.testing.assert_allclose(blocked.elbo_trace, plain.elbo_trace, rtol=1e-12)


def test_data_whose_groups_are_not_the_layouts_make_the_sweep_not_exact(fitted):
    engine, state = fitted.engine, fitted.state
    data = dict(engine.data)
    assert np.isfinite(float(engine._sweep(state, data, restart=jnp.asarray(False))[1]))
    doc = np.asarray(data["doc"]).copy()
    doc[[0, -1]] = doc[[-1, 0]]  # two rows change documents: the same shapes, other groups
    data["doc"] = jnp.asarray(doc)
    assert np.isnan(float(engine._sweep(state, data, restart=jnp.asarray(False))[1]))


def test_the_pairs_factors_value_on_the_groups_sums_is_their_value_at_every_row(fitted):
    """``SummedPair.known_value`` (z's factors at each document's mean of μ_z, and H[q_z] from the
    rows' log normalisers, for the sweep's ELBO) against the same factors evaluated at every row
    of the state after the passes, plus q_z's entropy from its η and μ."""
    engine, state = fitted.engine, fitted.state
    LG, data = engine.local_global, engine.data
    got = {}

    def passes(state, data):
        invariant = {j: (fs, engine.target_part(state, j, fs, data)) for j, fs in LG.invariant.items()}
        prepared = {j: g.prepare(engine, state, data, invariant[j][1]) for j, g in LG.grouped.items()}
        new, known = LG._summed_passes(engine, state, data, invariant, prepared)
        factors, value = known(new, "beta")
        got["factors"] = factors
        return value, engine.expected_log_joint(new.mu, new.eta, new.params, data, factors=factors) + engine.block_entropy(new, "z")

    value, every_row = jax.jit(passes)(state, data)
    assert [f.target for f in got["factors"]] == ["z", "word"] and LG.known_entropies(True) == ("z",)
    assert float(value) == pytest.approx(float(every_row), rel=1e-12)
