"""Uses of vemppl written from docs/language.md, cli.md, engine.md and the README alone (round 12
of the outsider checks).  Each test first failed on the code before its fix.
"""

import numpy as np
import pytest
from scipy.special import digamma, gammaln, logsumexp

import vemppl as vp

PMIX = """model pmix
dim N
const K = 2
data y: count[N]
pi ~ Dirichlet(ones(K))
for k in range(K) { lam[k] ~ Gamma(1.0, 0.1) }
for n in range(N) {
    z[n] ~ Categorical(pi)
    y[n] ~ Poisson(lam[z[n]])
}
"""


def _poisson_mixture_cavi(y, r, sweeps=500):
    """CAVI for PMIX in NumPy from responsibilities r (Bishop §10.2 with Gamma–Poisson pairs)."""
    for _ in range(sweeps):
        alpha = 1.0 + r.sum(0)
        a, b = 1.0 + r.T @ y, 0.1 + r.sum(0)
        logr = digamma(alpha) - digamma(alpha.sum()) + y[:, None] * (digamma(a) - np.log(b)) - a / b
        r = np.exp(logr - logsumexp(logr, 1, keepdims=True))
    return a / b


# --- init= of a mixture's labels on a plate whose repeated rows are merged -----------------------
# language.md: `init={"z": labels}` with one whole number per element.  Count data repeat, so
# the plate's rows were merged (engine/compress.py) and the labels were checked against the
# merged plate: a `data` error "expected ... shape (26,)" for the user's 100 labels.

def test_init_labels_of_a_count_mixture_start_the_fit_of_every_unit():
    rng = np.random.default_rng(7)
    z = rng.integers(0, 2, 100)
    y = rng.poisson(np.array([2.0, 15.0])[z])
    fit = vp.fit(vp.parse(PMIX), data={"y": y}, init={"z": z})
    r0 = np.where(np.eye(2)[z] > 0, 0.9, 0.1)  # 0.9 on the label, 0.1 over the other category
    np.testing.assert_allclose(fit.posterior["lam"].mean, _poisson_mixture_cavi(y, r0), rtol=1e-5)
    # responsibilities of shape [N, K] too
    fit = vp.fit(vp.parse(PMIX), data={"y": y}, init={"z": r0})
    np.testing.assert_allclose(fit.posterior["lam"].mean, _poisson_mixture_cavi(y, r0), rtol=1e-5)
