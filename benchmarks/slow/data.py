"""The data of benchmarks/slow/*.vem: drawn with fixed seeds, so every run fits the same sets."""

from __future__ import annotations

import numpy as np


def crossed(seed=0, n=2000, rows=40, cols=30):
    """An unbalanced crossed design: row and column popularity drawn from Zipf-like weights."""
    r = np.random.default_rng(seed)
    pr = 1.0 / np.arange(1, rows + 1) ** 0.8
    pc = 1.0 / np.arange(1, cols + 1) ** 0.8
    row = r.choice(rows, n, p=pr / pr.sum())
    col = r.choice(cols, n, p=pc / pc.sum())
    a, b = r.normal(0, 1.0, rows), r.normal(0, 0.7, cols)
    y = 3.0 + a[row] + b[col] + r.normal(0, 0.5, n)
    return {"row": row, "col": col, "y": y}, {"I": rows, "J": cols}


def grouped(seed=1, groups=4, per=500):
    """Few groups, many points per group: the slow case of the centred parameterisation."""
    r = np.random.default_rng(seed)
    theta = 5.0 + r.normal(0, 1.0, groups)
    g = np.repeat(np.arange(groups), per)
    y = theta[g] + r.normal(0, 1.0, g.size)
    return {"g": g, "y": y}, {"G": groups}


def correlated(seed=2, n=500, rho=0.99):
    """Two predictors with correlation ``rho``."""
    r = np.random.default_rng(seed)
    x1 = r.normal(size=n)
    x2 = rho * x1 + np.sqrt(1 - rho ** 2) * r.normal(size=n)
    y = 1.0 + 2.0 * x1 - 1.0 * x2 + r.normal(0, 0.5, n)
    return {"x1": x1, "x2": x2, "y": y}, {}


CASES = {"crossed": crossed, "centred": grouped, "noncentred": grouped, "corrreg": correlated}
