"""``fit(chain="parallel")``: the Markov-chain block's log-normaliser as a balanced tree of
(log, +) matrix products (families/markov_chain_parallel.py).

The references are independent of that code: enumeration of every path (T ≤ 7), the
sequential block (a different algorithm: a scaled scan with a hand-written backward pass),
and, through fits, the sequential fit's whole ELBO trace.
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
from vemppl.diagnostics import VemError
from vemppl.families.markov_chain import ChainStats, MarkovChain
from vemppl.families.markov_chain_parallel import HomogeneousMarkovChainParallel, MarkovChainParallel


@pytest.mark.parametrize("T", [2, 3, 4, 5, 7])  # odd lengths leave a product unpaired at some level
def test_tree_matches_enumeration(T):
    rng = np.random.default_rng(T)
    K = 3
    psi = rng.normal(size=(2, T, K)) * 2.0  # two chains on a leading axis
    phi = rng.normal(size=(2, T - 1, K, K)) * 2.0
    eta = ChainStats(jnp.asarray(psi), jnp.asarray(phi))
    stats = MarkovChainParallel.expected_stats(eta)
    log_z = MarkovChainParallel.log_normalizer(eta)
    entropy = MarkovChainParallel.entropy(eta)
    for b in range(2):
        lz, marg, pair, ent = enumerate_paths(psi[b], phi[b])
        np.testing.assert_allclose(log_z[b], lz, rtol=1e-12)
        np.testing.assert_allclose(stats.onehot[b], marg, atol=1e-12)
        np.testing.assert_allclose(stats.pair[b], pair, atol=1e-12)
        np.testing.assert_allclose(entropy[b], ent, rtol=1e-10)


def test_forbidden_transitions_have_zero_marginals_and_finite_gradients():
    """Φ = −∞ below the diagonal (a left-to-right chain): products with no path are −∞, and
    their gradients must be 0, not the 0/0 that logsumexp's would be.  The entropy takes
    0·(−∞) = 0 for the forbidden pairs, in both algorithms."""
    rng = np.random.default_rng(1)
    T, K = 6, 3
    psi = rng.normal(size=(T, K)) * 3.0
    phi = np.where(np.triu(np.ones((K, K), bool)), rng.normal(size=(T - 1, K, K)), -np.inf)
    lz, marg, pair, ent = enumerate_paths(psi, phi)
    eta = ChainStats(jnp.asarray(psi), jnp.asarray(phi))
    for fam in (MarkovChainParallel, MarkovChain):
        stats = fam.expected_stats(eta)
        np.testing.assert_allclose(fam.log_normalizer(eta), lz, rtol=1e-12)
        np.testing.assert_allclose(stats.onehot, marg, atol=1e-12)
        np.testing.assert_allclose(stats.pair, pair, atol=1e-12)
        np.testing.assert_allclose(fam.entropy(eta), ent, rtol=1e-10)


def test_potentials_a_thousand_nats_apart():
    """Where the sequential block's probability-space pass underflows (and falls back to log
    space), the tree needs no fallback: every product is shifted by its maximum."""
    rng = np.random.default_rng(4)
    T = 5
    psi = np.where(np.arange(T)[:, None] % 2 == np.arange(2)[None, :], 0.0, -1000.0) + rng.normal(size=(T, 2))
    phi = np.broadcast_to(np.array([[0.0, -np.inf], [-np.inf, np.log(0.5)]]), (T - 1, 2, 2))
    lz, marg, pair, _ = enumerate_paths(psi, phi)
    eta = ChainStats(jnp.asarray(psi), jnp.asarray(phi))
    stats = MarkovChainParallel.expected_stats(eta)
    np.testing.assert_allclose(MarkovChainParallel.log_normalizer(eta), lz, rtol=1e-12)
    np.testing.assert_allclose(stats.onehot, marg, atol=1e-12)
    np.testing.assert_allclose(stats.pair, pair, atol=1e-12)


def _jitted(fam):
    return jax.jit(lambda eta: (fam.log_normalizer(eta), fam.expected_stats(eta)))


_SEQUENTIAL, _PARALLEL = _jitted(MarkovChain), _jitted(MarkovChainParallel)


# Lengths from a few powers of two and their neighbours (each shape compiles once).
@settings(max_examples=12, deadline=None)
@given(
    T=st.sampled_from([2, 3, 8, 9, 31, 64, 257]), K=st.integers(1, 4), batch=st.integers(1, 2),
    scale=st.floats(0.1, 20.0), seed=st.integers(0, 2**31 - 1),
)
def test_tree_agrees_with_the_sequential_block(T, K, batch, scale, seed):
    rng = np.random.default_rng(seed)
    eta = ChainStats(jnp.asarray(rng.normal(size=(batch, T, K)) * scale),
                     jnp.asarray(rng.normal(size=(batch, T - 1, K, K)) * scale))
    (lz_seq, seq), (lz_par, par) = _SEQUENTIAL(eta), _PARALLEL(eta)
    np.testing.assert_allclose(lz_par, lz_seq, rtol=1e-11)
    np.testing.assert_allclose(par.onehot, seq.onehot, atol=1e-9)
    np.testing.assert_allclose(par.pair, seq.pair, atol=1e-9)


# Not in models/: several sequences of unequal length, Poisson emissions.
POISSON_SEQS = """
model poisson_sequences
dim S, T
const K = 2
data y: count[S, T]

pi0 ~ Dirichlet(ones(K))
for k in range(K) {
    A[k]    ~ Dirichlet(ones(K))
    rate[k] ~ Gamma(1.0, 0.1)
}
for s in range(S) {
    z[s, 0] ~ Categorical(pi0)
    for t in range(1, T) { z[s, t] ~ Categorical(A[z[s, t-1]]) }
    for t in range(T) { y[s, t] ~ Poisson(rate[z[s, t]]) }
}
"""


def test_parallel_fit_follows_the_sequential_fit():
    x = gaussian_sequence()
    # 20 sweeps: both stop at an exact fixed point (tol 0) a few sweeps later, where rounding decides when.
    runs = {c: vemppl.fit(vemppl.parse(HMM), {"x": x}, seed=0, max_iter=20, tol=0.0, progress=False,
                         algorithm=vemppl.cavi(chain=c))
            for c in ("sequential", "parallel")}
    seq, par = runs["sequential"], runs["parallel"]
    assert_elbo_monotone(par.elbo_trace)
    assert len(par.elbo_trace) == len(seq.elbo_trace) == 20
    np.testing.assert_allclose(par.elbo_trace, seq.elbo_trace, rtol=1e-10)
    np.testing.assert_allclose(par.state.mu["z"].onehot, seq.state.mu["z"].onehot, atol=1e-8)
    assert par.engine.chain == "parallel" and par.engine.families["z"] is HomogeneousMarkovChainParallel


def test_parallel_fit_of_masked_sequences_follows_the_sequential_fit():
    rng = np.random.default_rng(5)
    lengths = np.array([50, 17, 80, 1])
    S, T = len(lengths), lengths.max()
    present = np.arange(T)[None, :] < lengths[:, None]
    rates = np.array([1.0, 8.0])
    z = (rng.random((S, T)) < 0.5).astype(int)
    for t in range(1, T):
        z[:, t] = np.where(rng.random(S) < 0.85, z[:, t - 1], 1 - z[:, t - 1])
    y = np.where(present, rng.poisson(rates[z]), 0)
    runs = {c: vemppl.fit(vemppl.parse(POISSON_SEQS), {"y": y}, mask={"z": present}, seed=1, max_iter=12, tol=0.0,
                          progress=False, algorithm=vemppl.cavi(chain=c)) for c in ("sequential", "parallel")}
    assert runs["parallel"].engine.families["z"] is MarkovChainParallel  # a mask keeps per-step potentials
    assert_elbo_monotone(runs["parallel"].elbo_trace)
    assert len(runs["parallel"].elbo_trace) == 12  # converged to round-off near sweep 17
    np.testing.assert_allclose(runs["parallel"].elbo_trace, runs["sequential"].elbo_trace, rtol=1e-10)


def test_unknown_chain_algorithm_is_a_clear_error():
    with pytest.raises(VemError, match="chain must be one of sequential, parallel; got 'tree'"):
        vemppl.fit(vemppl.parse(HMM), {"x": gaussian_sequence(T=20)}, max_iter=2, progress=False,
                   algorithm=vemppl.cavi(chain="tree"))
