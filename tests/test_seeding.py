"""The seeded start of categorical blocks and chains (engine/cavi.py): k-means centres, and a
chain's persistence read off the data (``_persistence``).

The truth here comes from the simulation, not from the code under test: blobs around known
means, and sequences drawn from a chain that keeps its state with probability ρ and otherwise
redraws it.
"""

import numpy as np
import pytest

import vemppl
from vemppl.engine.init import kmeanspp as _kmeanspp, persistence as _persistence

from _chain_cases import HMM  # the Gaussian HMM of the chain tests, K = 3


def stay_or_redraw(rho, t, k=3, d=2, seed=0, spread=8.0):
    """States that stay with probability rho, else are drawn afresh; well-separated Gaussian emissions."""
    rng = np.random.default_rng(seed)
    means = rng.normal(0.0, spread, size=(k, d))
    z = np.empty(t, int)
    z[0] = rng.integers(k)
    for i in range(1, t):
        z[i] = z[i - 1] if rng.random() < rho else rng.integers(k)
    return means[z] + rng.normal(size=(t, d)), z


def test_kmeans_centres_are_the_means_of_their_cells():
    rng = np.random.default_rng(4)
    means = np.array([[0.0, 0.0, 0.0], [6.0, 0.0, 0.0], [0.0, 6.0, 0.0], [0.0, 0.0, 6.0]])
    x = means[rng.integers(4, size=4000)] + rng.normal(size=(4000, 3))
    r, c = _kmeanspp(x, 4, np.random.default_rng(0), return_centres=True)
    cell = np.argmin(((x[:, None, :] - c[None]) ** 2).sum(-1), axis=1)
    # A Lloyd fixed point (to the stopping tolerance), and the true means recovered.
    np.testing.assert_allclose(c, [x[cell == j].mean(0) for j in range(4)], atol=1e-2)
    order = np.argmin(((c[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    assert sorted(order) == [0, 1, 2, 3]
    np.testing.assert_allclose(c, means[order], atol=0.1)
    np.testing.assert_allclose(r.sum(1), 1.0)
    assert np.all(r > 0)  # broad: every component keeps some weight on every point


def estimate(x, present=None):
    _, centres = _kmeanspp(x.reshape(-1, x.shape[-1]), 3, np.random.default_rng(0), return_centres=True)
    present = np.ones(x.shape[:-1], bool) if present is None else present
    return _persistence(x, present, centres)


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.9])
def test_persistence_recovers_the_stay_probability(rho):
    x, _ = stay_or_redraw(rho, 20_000)
    # The standard error of a lag-1 autocorrelation over 20k steps is about 1/sqrt(T) < 0.01.
    assert estimate(x) == pytest.approx(rho, abs=0.03)


def test_a_chain_that_moves_on_gets_no_persistence():
    rng = np.random.default_rng(1)
    z = np.arange(9000) % 3  # a cycle: consecutive steps never share a state
    means = np.array([[0.0, 8.0], [7.0, -4.0], [-7.0, -4.0]])
    x = means[z] + rng.normal(size=(len(z), 2))
    assert estimate(x) == 0.0


def test_absent_steps_are_left_out():
    x, _ = stay_or_redraw(0.8, 5000, seed=2)
    a, b = x[:3000], x[3000:]
    present = np.stack([np.ones(3000, bool), np.arange(3000) < 2000])
    _, centres = _kmeanspp(x, 3, np.random.default_rng(0), return_centres=True)
    estimates = [_persistence(np.stack([a, np.concatenate([b, np.full((1000, 2), pad)])]), present, centres)
                 for pad in (0.0, 1e3, -1e3)]
    assert estimates[0] == estimates[1] == estimates[2]  # the padding's values are never read
    assert estimates[0] == pytest.approx(0.8, abs=0.05)


def test_the_first_transition_update_sees_the_persistence():
    """After the first sweep's update of q(A) (from the seeded pairwise statistics), the expected
    self-transition of a persistent chain is well above chance; it ends near the truth."""
    x, z = stay_or_redraw(0.9, 3000, spread=3.0)
    first = vemppl.fit(vemppl.parse(HMM), {"x": x}, seed=0, max_iter=1, progress=False)
    a = np.asarray(first.posterior["A"].mean)
    assert np.mean(np.diag(a)) > 0.6  # the independent start gave about 1/K
    fit = vemppl.fit(vemppl.parse(HMM), {"x": x}, seed=0, max_iter=300, tol=1e-9, progress=False)
    assert np.all(np.diff(fit.elbo_trace) >= -1e-8 * np.abs(fit.elbo_trace[1:]))
    stay = 0.9 + 0.1 / 3  # staying, or redrawing the same state
    assert np.mean(np.diag(np.asarray(fit.posterior["A"].mean))) == pytest.approx(stay, abs=0.03)
