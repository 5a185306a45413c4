"""A Gaussian HMM and its data, shared by the tests of the chain families' algorithms
(test_chain_parallel.py, test_chain_homogeneous.py), and enumeration of every path."""

from __future__ import annotations

import itertools

import numpy as np
from scipy.special import logsumexp

HMM = """
model hmm
dim T, D
const K = 3
data x: real[T, D]

pi0 ~ Dirichlet(ones(K))
for k in range(K) {
    A[k]   ~ Dirichlet(ones(K))
    Lam[k] ~ Wishart(D + 2, eye(D))
    mu[k]  ~ MvNormal(zeros(D), precision = Lam[k])
}
z[0] ~ Categorical(pi0)
for t in range(1, T) { z[t] ~ Categorical(A[z[t-1]]) }
for t in range(T)    { x[t] ~ MvNormal(mu[z[t]], precision = Lam[z[t]]) }
"""


def gaussian_sequence(T=400, seed=3):
    """A sticky 3-state chain (stay 0.9) in 2-D, unit noise around well-separated means."""
    rng = np.random.default_rng(seed)
    z = np.zeros(T, int)
    for t in range(1, T):
        z[t] = z[t - 1] if rng.random() < 0.9 else rng.integers(3)
    return np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0]])[z] + rng.standard_normal((T, 2))


def enumerate_paths(psi, phi):
    """log Z, marginals, pairwise marginals and entropy by summing over all K^T paths."""
    T, K = psi.shape
    paths = np.array(list(itertools.product(range(K), repeat=T)))
    logp = psi[np.arange(T), paths].sum(1) + phi[np.arange(T - 1), paths[:, :-1], paths[:, 1:]].sum(1)
    log_z = logsumexp(logp)
    w = np.exp(logp - log_z)
    onehot = np.eye(K)[paths]
    marg = np.einsum("p,ptk->tk", w, onehot)
    pair = np.einsum("p,ptk,ptl->tkl", w, onehot[:, :-1], onehot[:, 1:])
    live = w > 0
    entropy = -np.sum(w[live] * (logp[live] - log_z))
    return log_z, marg, pair, entropy
