"""Uses of vemppl written from docs/language.md, cli.md, engine.md and the README alone (round 15
of the outsider checks: time series, structured blocks, mixtures, the DSL and the CLI), each
checked against a reference computed independently of the code under test."""

from __future__ import annotations

import numpy as np
import pytest

import vemppl as vp

LEFT_TO_RIGHT = """model l2r
dim S, T
const K = 3
const alpha: real[K, K] = 1.0
data y: real[S, T]
p0 ~ Dirichlet(ones(K))
for k in range(K) {
  A[k] ~ Dirichlet(alpha[k])
  mu[k] ~ Normal(0.0, 10.0)
}
for s in range(S) { z[s, 0] ~ Categorical(p0) }
for s in range(S) { for t in range(1, T) { z[s, t] ~ Categorical(A[z[s, t-1]]) } }
for s in range(S) { for t in range(T) { y[s, t] ~ Normal(mu[z[s, t]], 1.0) } }
"""


@pytest.mark.parametrize("bad", [0.0, -1.0])
def test_a_given_const_read_by_a_loop_index_is_checked_against_the_support(bad):
    """docs/language.md: a constant given at fit time outside the support is a `support` error at
    the argument.  `Dirichlet(alpha[k])` reads the const by the loop index, which the check skipped:
    a left-to-right prior with a zero (or negative) entry was a -inf ELBO blamed on the data."""
    alpha = np.array([[1.0, 1.0, bad], [0.5, 1.0, 1.0], [0.5, 0.5, 1.0]])
    y = np.zeros((2, 4))
    with pytest.raises(vp.VemError) as err:
        vp.fit(vp.parse(LEFT_TO_RIGHT), data={"y": y}, consts={"alpha": alpha}, max_iter=2)
    e = err.value
    assert e.kind == "support" and "concentration of Dirichlet must be positive" in str(e)
    assert f"this one is {bad:g}" in str(e) and "alpha (from consts=)" in str(e)
    assert (e.line, e.column) == (8, 20)
