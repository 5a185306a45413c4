"""Seeded random data for the random-model generator's arrays (tests/_random_models.py)."""

from __future__ import annotations

import numpy as np

#: The generator's category count and vector size.
K, D = 2, 2


def random_data(data: dict, n: int, seed: int) -> dict:
    """Seeded values of each declared data array, inside its type's support; an array marked
    ``"nan"`` has about a quarter of its entries missing (NaN), ``"multi"`` rows of five trials."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, (base, shape, *extra) in data.items():
        dims = tuple({"N": n, "K": K, "D": D}[s.strip()] for s in shape.strip("[]").split(",") if s.strip())
        if base == "real":
            v = rng.normal(size=dims)
        elif base == "pos":
            v = rng.gamma(2.0, 1.0, size=dims) + 0.1
        elif base == "unit":
            v = rng.beta(2.0, 2.0, size=dims)
        elif base == "int":
            v = rng.integers(-3, 4, size=dims)
        elif base == "bool":
            v = rng.integers(0, 2, size=dims)
        elif base == "count" and "multi" in extra:
            v = rng.multinomial(5, [0.5, 0.5], size=dims[:-1])
        elif base == "count":
            v = rng.binomial(5, 0.5, size=dims)
        elif base.startswith("cat"):
            v = rng.integers(0, K, size=dims)
        elif base == "simplex":
            v = rng.dirichlet(np.ones(K), size=dims[:-1])
        elif base == "spd":
            a = rng.normal(size=dims + (D,))
            v = a @ np.swapaxes(a, -1, -2) + np.eye(D)
        else:
            raise AssertionError(base)
        if "nan" in extra:
            v = np.where(rng.random(size=dims) < 0.25, np.nan, v)
        out[name] = v
    return out
