"""The local/global schedule (engine/schedule.py): which blocks are local to the data
plate is read off the graph, and fits with start="random-globals" and several local
passes per sweep stay CAVI (the ELBO never decreases).  The models are written here, so
the general path is what is tested; LDA's use of it is in tests/test_lda.py."""

import numpy as np

import vemppl
from conftest import assert_elbo_monotone
from vemppl.compiler import compile_model
from vemppl.engine.schedule import local_blocks

GROUPED = """
model grouped_poisson_mixture
dim N, G
const K = 3
data grp: cat(G)[N]
data x: count[N]

for k in range(K) { rate[k] ~ Gamma(1, 0.1) }
for g in range(G) { pi[g] ~ Dirichlet(fill(0.5, K)) }
for n in range(N) {
    z[n] ~ Categorical(pi[grp[n]])
    x[n] ~ Poisson(rate[z[n]])
}
"""


def test_locals_are_read_by_units_or_through_data():
    m = vemppl.parse(GROUPED)
    # pi[grp[n]] is read through data (a group of units), z[n] by its unit; rate[z[n]] through a latent.
    assert set(local_blocks(m, compile_model(m))) == {"pi", "z"}


def test_random_globals_with_local_passes_is_monotone_and_separates_rates():
    rng = np.random.default_rng(0)
    n, g = 600, 6
    grp = rng.integers(g, size=n)
    truth = np.array([1.0, 8.0, 30.0])
    x = rng.poisson(truth[rng.integers(3, size=n)])
    fit = vemppl.fit(vemppl.parse(GROUPED), data={"grp": grp, "x": x}, dims={"G": g}, seed=0, max_iter=200,
                     start="random-globals", local_iter=5, progress=False)
    assert_elbo_monotone(fit.elbo_trace)
    rates = np.sort(np.asarray(fit.posterior["rate"].mean))
    np.testing.assert_allclose(rates, truth, rtol=0.15)
