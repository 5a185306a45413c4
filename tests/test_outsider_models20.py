"""Round 20 of models written from docs/language.md alone, fitted with default options
(docs/language.md, docs/engine.md).  Each test compares with a reference computed
independently of vemppl (NumPy EM, exact index arithmetic) and failed before its fix."""

import numpy as np
import pytest

import vemppl as vp

GATE_PLUS_DATA = """model shifted
dim N
const K = 2
const G = 2
data g: cat(G)[N]
data y: count[N]
w ~ Dirichlet(ones(K))
for j in range(3) { lam[j] ~ Gamma(1.0, 0.1) }
for n in range(N) {
    z[n] ~ Categorical(w)
    y[n] ~ Poisson(lam[z[n] + g[n]])
}
"""


def test_an_index_of_a_gate_plus_data_is_checked_at_every_category():
    """`lam[z[n] + g[n]]` with `lam` of size 3 reads lam[3] where g[n] = 2 and z[n] = 1: with
    `--set G=3` the fit ran, JAX's clamped gather reading lam[2] there, silently.  Now a `data`
    error at the index names the first such n (the reference: the first n with 1 + g[n] >= 3)."""
    rng = np.random.default_rng(1)
    g = rng.integers(0, 2, 40)
    g[[7, 30]] = 2
    y = rng.poisson(3.0, 40)
    first = int(np.flatnonzero(1 + g >= 3)[0])
    with pytest.raises(vp.VemError) as err:
        vp.fit(vp.parse(GATE_PLUS_DATA), data={"g": g, "y": y}, consts={"G": 3})
    e = err.value
    assert e.kind == "data" and (e.line, e.column) == (11, 24), e
    assert f"n = {first} where z[n] = 1" in str(e) and "got 3" in str(e), e
