"""Chains with tied transitions (families/markov_chain_homogeneous.py): one pairwise potential
for every step, the expected transition counts as its statistic.

References independent of that module: enumeration of every path (T ≤ 6), the per-step
chain (``MarkovChain``, whose pairwise statistic is per step) with Φ repeated at every step,
and whole ELBO traces of the per-step chain's fits (the same model fitted with an all-present
mask, which makes the compiler keep one potential per step).  The compiler's choice is
checked on models whose steps are not all alike.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vemppl
from _chain_cases import HMM, enumerate_paths, gaussian_sequence
from conftest import assert_elbo_monotone
from vemppl.families.markov_chain import ChainStats, MarkovChain
from vemppl.families.markov_chain_homogeneous import HomogeneousMarkovChain, per_step


def enumerate_tied(psi, phi):
    """log Z, marginals, expected transition counts and entropy over all K^T paths, Φ shared."""
    log_z, marg, pair, entropy = enumerate_paths(psi, np.broadcast_to(phi, (psi.shape[0] - 1,) + phi.shape))
    return log_z, marg, pair.sum(0), entropy


@pytest.mark.parametrize("T", [1, 2, 3, 6])
def test_tied_chain_matches_enumeration(T):
    rng = np.random.default_rng(T)
    K = 3
    psi = rng.normal(size=(2, T, K)) * 2.0
    phi = rng.normal(size=(2, K, K)) * 2.0
    eta = ChainStats(jnp.asarray(psi), jnp.asarray(phi))
    stats = HomogeneousMarkovChain.expected_stats(eta)
    log_z = HomogeneousMarkovChain.log_normalizer(eta)
    entropy = HomogeneousMarkovChain.entropy(eta)
    assert stats.pair.shape == (2, K, K)
    for b in range(2):
        lz, marg, counts, ent = enumerate_tied(psi[b], phi[b])
        np.testing.assert_allclose(log_z[b], lz, rtol=1e-12)
        np.testing.assert_allclose(stats.onehot[b], marg, atol=1e-12)
        np.testing.assert_allclose(stats.pair[b], counts, atol=1e-12)
        np.testing.assert_allclose(entropy[b], ent, rtol=1e-10, atol=1e-12)


def test_tied_chain_with_forbidden_transitions_and_beyond_probability_space():
    """A left-to-right chain (Φ = −∞ below the diagonal), and a chain whose scaled pass
    underflows (data 1000 nats apart, states that never switch) and takes the log-space
    fallback: both against enumeration."""
    rng = np.random.default_rng(1)
    T, K = 6, 3
    psi = rng.normal(size=(T, K)) * 3.0
    phi = np.where(np.triu(np.ones((K, K), bool)), rng.normal(size=(K, K)), -np.inf)
    T2 = 5
    psi2 = np.where(np.arange(T2)[:, None] % 2 == np.arange(2)[None, :], 0.0, -1000.0) + rng.normal(size=(T2, 2))
    phi2 = np.array([[0.0, -np.inf], [-np.inf, np.log(0.5)]])
    for p, f in ((psi, phi), (psi2, phi2)):
        lz, marg, counts, ent = enumerate_tied(p, f)
        eta = ChainStats(jnp.asarray(p), jnp.asarray(f))
        stats = HomogeneousMarkovChain.expected_stats(eta)
        np.testing.assert_allclose(HomogeneousMarkovChain.log_normalizer(eta), lz, rtol=1e-12)
        np.testing.assert_allclose(stats.onehot, marg, atol=1e-12)
        np.testing.assert_allclose(stats.pair, counts, atol=1e-12)
    np.testing.assert_allclose(HomogeneousMarkovChain.entropy(ChainStats(jnp.asarray(psi), jnp.asarray(phi))),
                               enumerate_tied(psi, phi)[3], rtol=1e-10)


def _jitted(fam, tied):
    def run(psi, phi):
        eta = ChainStats(psi, phi if tied else per_step(phi, psi.shape[-2] - 1))
        return fam.log_normalizer(eta), fam.expected_stats(eta)

    return jax.jit(run)


_TIED, _PER_STEP = _jitted(HomogeneousMarkovChain, True), _jitted(MarkovChain, False)


@settings(max_examples=12, deadline=None)
@given(T=st.sampled_from([2, 3, 17, 300]), K=st.integers(1, 4), batch=st.integers(1, 2),
       scale=st.floats(0.1, 20.0), seed=st.integers(0, 2**31 - 1))
def test_tied_chain_is_the_per_step_chain_with_phi_repeated(T, K, batch, scale, seed):
    rng = np.random.default_rng(seed)
    psi = jnp.asarray(rng.normal(size=(batch, T, K)) * scale)
    phi = jnp.asarray(rng.normal(size=(batch, K, K)) * scale)
    (lz_t, tied), (lz_p, per) = _TIED(psi, phi), _PER_STEP(psi, phi)
    np.testing.assert_allclose(lz_t, lz_p, rtol=1e-12)
    np.testing.assert_allclose(tied.onehot, per.onehot, atol=1e-10)
    np.testing.assert_allclose(tied.pair, np.asarray(per.pair).sum(-3), atol=1e-9 * T)


# ---- the compiler's choice ---------------------------------------------------------

# Not in models/: the transition read through an observed regime u[t] (a per-step table).
REGIME_HMM = """
model regime_hmm
dim T
const K = 2
const C = 2
data u: cat(C)[T]
data y: real[T]

pi0 ~ Dirichlet(ones(K))
for k in range(K) {
    for c in range(C) { A[k, c] ~ Dirichlet(ones(K)) }
    m[k] ~ Normal(0.0, 10.0)
}
z[0] ~ Categorical(pi0)
for t in range(1, T) { z[t] ~ Categorical(A[z[t-1], u[t]]) }
for t in range(T) { y[t] ~ Normal(m[z[t]], 1.0) }
"""

# Not in models/: two transition matrices, one for the first half of the steps.
TWO_PHASE_HMM = """
model two_phase_hmm
dim T
const K = 2
data y: real[T]

pi0 ~ Dirichlet(ones(K))
for k in range(K) {
    A[k] ~ Dirichlet(ones(K))
    B[k] ~ Dirichlet(ones(K))
    m[k] ~ Normal(0.0, 10.0)
}
z[0] ~ Categorical(pi0)
for t in range(1, 20) { z[t] ~ Categorical(A[z[t-1]]) }
for t in range(20, T) { z[t] ~ Categorical(B[z[t-1]]) }
for t in range(T) { y[t] ~ Normal(m[z[t]], 1.0) }
"""


def _chain_family(src, **kw):
    return next(b.family for b in vemppl.compile_model(vemppl.parse(src), **kw).blocks if b.name == "z")


def test_compiler_ties_the_transitions_only_where_every_step_is_alike():
    assert _chain_family(HMM) == "HomogeneousMarkovChain"
    assert _chain_family(HMM, masked=("z",)) == "MarkovChain"  # absent steps have no potential
    assert _chain_family(REGIME_HMM) == "MarkovChain"  # A[z[t-1], u[t]] reads t
    assert _chain_family(TWO_PHASE_HMM) == "MarkovChain"  # two transition factors
    for path in ("models/hmm.vem", "models/hmm_categorical.vem"):
        assert next(b.family for b in vemppl.compile_model(vemppl.load(path)).blocks if b.name == "z") \
            == "HomogeneousMarkovChain"


def test_models_with_unlike_steps_still_fit_monotonically():
    rng = np.random.default_rng(7)
    T = 60
    u = rng.integers(0, 2, T)
    z = np.zeros(T, int)
    for t in range(1, T):
        z[t] = z[t - 1] if rng.random() < (0.95 if u[t] else 0.5) else 1 - z[t - 1]
    y = np.where(z == 1, 3.0, -3.0) + rng.standard_normal(T)
    for src, data in ((REGIME_HMM, {"u": u, "y": y}), (TWO_PHASE_HMM, {"y": y})):
        fit = vemppl.fit(vemppl.parse(src), data, seed=0, max_iter=200, tol=1e-10, progress=False)
        assert fit.engine.families["z"] is MarkovChain
        assert_elbo_monotone(fit.elbo_trace)
        assert np.mean(np.asarray(fit.state.mu["z"].onehot).argmax(1) == z) in (pytest.approx(1, abs=0.1),
                                                                                pytest.approx(0, abs=0.1))


# ---- fits: tied against per-step ------------------------------------------------------


def test_tied_fit_follows_the_per_step_fit():
    x = gaussian_sequence()
    # 20 sweeps: both reach an exact fixed point (tol 0) a few sweeps later, where rounding decides when.
    tied = vemppl.fit(vemppl.parse(HMM), {"x": x}, seed=0, max_iter=20, tol=0.0, progress=False)
    per = vemppl.fit(vemppl.parse(HMM), {"x": x}, mask={"z": np.ones(len(x), bool)}, seed=0, max_iter=20, tol=0.0,
                     progress=False)
    assert tied.engine.families["z"] is HomogeneousMarkovChain and per.engine.families["z"] is MarkovChain
    assert_elbo_monotone(tied.elbo_trace)
    assert len(tied.elbo_trace) == len(per.elbo_trace) == 20
    np.testing.assert_allclose(tied.elbo_trace, per.elbo_trace, rtol=1e-10)
    np.testing.assert_allclose(tied.state.mu["z"].onehot, per.state.mu["z"].onehot, atol=1e-8)
    np.testing.assert_allclose(tied.state.mu["z"].pair, np.asarray(per.state.mu["z"].pair).sum(0), atol=1e-7)
    np.testing.assert_allclose(tied.posterior["A"].concentration, per.posterior["A"].concentration, rtol=1e-8)


def test_a_masked_chain_saves_and_loads_with_its_per_step_potentials(tmp_path):
    rng = np.random.default_rng(9)
    lengths = np.array([30, 12, 25])
    T = lengths.max()
    present = np.arange(T)[None, :] < lengths[:, None]
    src = """
    model seqs
    dim S, T
    const K = 2
    data y: real[S, T]
    pi0 ~ Dirichlet(ones(K))
    for k in range(K) { A[k] ~ Dirichlet(ones(K))
                        m[k] ~ Normal(0.0, 10.0) }
    for s in range(S) {
        z[s, 0] ~ Categorical(pi0)
        for t in range(1, T) { z[s, t] ~ Categorical(A[z[s, t-1]]) }
        for t in range(T) { y[s, t] ~ Normal(m[z[s, t]], 1.0) }
    }
    """
    y = np.where(rng.random((3, T)) < 0.5, 2.0, -2.0) + rng.standard_normal((3, T))
    fit = vemppl.fit(vemppl.parse(src), {"y": y}, mask={"z": present}, seed=0, max_iter=50, progress=False)
    assert fit.plan.block("z").family == "MarkovChain"
    fit.save(tmp_path / "r")
    back = vemppl.load_results(tmp_path / "r")
    assert back.plan.block("z").family == "MarkovChain"
    np.testing.assert_allclose(back.state.mu["z"].pair, fit.state.mu["z"].pair)
    np.testing.assert_allclose(back.posterior["A"].concentration, fit.posterior["A"].concentration)
