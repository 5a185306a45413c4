"""Small data sets for the shipped models in models/ (fixed seeds): the regression set of
benchmarks/accel.py, which checks that the guarded extrapolation leaves fast fits alone."""

from __future__ import annotations

import numpy as np


def _r(seed):
    return np.random.default_rng(seed)


def bernoulli_mixture():
    r = _r(10)
    p = r.uniform(0.05, 0.95, (3, 20))
    z = r.integers(0, 3, 500)
    return {"x": r.random((500, 20)) < p[z]}, {}


def fa():
    r = _r(11)
    w = r.normal(size=(10, 2))
    x = r.normal(size=(2000, 2)) @ w.T + 1.0 + r.normal(0, 0.5, (2000, 10))
    return {"x": x}, {}


def gmm():
    r = _r(12)
    c = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    return {"x": c[r.integers(0, 3, 1000)] + r.normal(size=(1000, 2))}, {}


def hierarchical():
    # The eight schools (Rubin 1981).
    return {"y": np.array([28.0, 8, -3, 7, -1, 1, 18, 12]), "sigma": np.array([15.0, 10, 16, 11, 9, 11, 10, 18])}, {}


def _chain(r, k, t, stay):
    a = np.full((k, k), (1 - stay) / (k - 1)) + np.eye(k) * (stay - (1 - stay) / (k - 1))
    s = np.zeros(t, int)
    for i in range(1, t):
        s[i] = r.choice(k, p=a[s[i - 1]])
    return s


def hmm():
    r = _r(13)
    s = _chain(r, 4, 1000, 0.9)
    means = r.normal(0, 3, (4, 2))
    return {"x": means[s] + r.normal(size=(1000, 2))}, {}


def hmm_categorical():
    r = _r(14)
    s = _chain(r, 3, 2000, 0.9)
    b = r.dirichlet(np.ones(6), 3)
    return {"x": np.array([r.choice(6, p=b[k]) for k in s])}, {}


def lda():
    r = _r(15)
    beta = r.dirichlet(np.full(50, 0.1), 10)
    docs, words = [], []
    for d in range(60):
        th = r.dirichlet(np.full(10, 0.1))
        z = r.choice(10, 80, p=th)
        docs += [d] * 80
        words += [r.choice(50, p=beta[k]) for k in z]
    return {"doc": np.array(docs), "word": np.array(words)}, {}


def linreg():
    r = _r(16)
    x = r.normal(size=(200, 5))
    return {"X": x, "y": x @ np.array([1.0, -2.0, 0.0, 0.5, 0.0]) + r.normal(0, 0.3, 200)}, {}


def logreg():
    r = _r(17)
    x = r.normal(size=(300, 3))
    return {"X": x, "y": r.random(300) < 1 / (1 + np.exp(-(x @ np.array([1.0, -1.0, 0.5]))))}, {}


def poisson_mixture():
    r = _r(18)
    return {"x": r.poisson(np.array([2.0, 10.0, 30.0])[r.integers(0, 3, 500)])}, {}


def ppca():
    r = _r(19)
    w = r.normal(size=(8, 2))
    return {"x": r.normal(size=(500, 2)) @ w.T + r.normal(0, 0.3, (500, 8))}, {}


def robust():
    r = _r(20)
    x = r.normal(size=(200, 3))
    return {"X": x, "y": x @ np.array([1.0, 2.0, -1.0]) + r.standard_t(4, 200)}, {}


CASES = {f.__name__: f for f in (bernoulli_mixture, fa, gmm, hierarchical, hmm, hmm_categorical, lda, linreg, logreg,
                                 poisson_mixture, ppca, robust)}
