"""A Gaussian HMM and its data, shared by the tests of the chain families' algorithms
(test_chain_parallel.py, test_chain_homogeneous.py)."""

from __future__ import annotations

import numpy as np

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
