"""The default stopping rule reads the ELBO trace's rate (engine/loop.py): a fit stops when the
last change and Aitken's forecast of the gain still to come are both within tol·|ELBO|.  The
non-centred two-level model, whose fast modes die in three sweeps before its slow mode (rate
0.994) shows, stopped on the change alone 4e-3 nats short of its optimum."""

import math

import numpy as np
from scipy.special import digamma, gammaln

import vemppl as vp
from test_accel import NONCENTRED  # mu, the group precision s, the noise precision t, the effects e[k]
from vemppl.engine.loop import converged, forecast


def grouped(seed=1, groups=4, per=500):
    r = np.random.default_rng(seed)
    theta = 5.0 + r.normal(0, 1.0, groups)
    g = np.repeat(np.arange(groups), per)
    return g, theta[g] + r.normal(0, 1.0, g.size)


def mean_field_optimum(g, y, groups, lam0=1e-4, sweeps=200):
    """The mean-field ELBO's maximum, q(mu) q(e) q(s) q(t), by block ascent in NumPy with
    the Gaussian factors taken as one block: given E[t] and E[s], the mean-field means of
    (mu, e) are the joint Gaussian's exact means P⁻¹h and the variances 1/P_ii (the unique
    maximiser over those factors), so the mu–e coupling that makes CAVI crawl is solved
    exactly and the two Gamma updates converge in a few steps."""
    n, yk = np.bincount(g, minlength=groups), np.bincount(g, weights=y, minlength=groups)
    N = len(y)
    a_t, a_g = 1.0 + N / 2, 1.0 + groups / 2
    b_t, b_g = 1.0, 1.0
    for _ in range(sweeps):
        t, s = a_t / b_t, a_g / b_g
        P = np.diag(np.concatenate([[lam0 + t * N], s + t * n]))
        P[0, 1:] = P[1:, 0] = t * n
        m = np.linalg.solve(P, t * np.concatenate([[y.sum()], yk]))
        v = 1.0 / np.diag(P)
        sq = (y - m[0] - m[1:][g]) ** 2 + v[0] + v[1:][g]
        b_t, b_g = 1.0 + 0.5 * sq.sum(), 1.0 + 0.5 * np.sum(m[1:] ** 2 + v[1:])
    elog_t, elog_g = digamma(a_t) - np.log(b_t), digamma(a_g) - np.log(b_g)
    t, s, half = a_t / b_t, a_g / b_g, 0.5 * np.log(2 * np.pi)
    expected = (0.5 * np.log(lam0) - half - 0.5 * lam0 * (m[0] ** 2 + v[0])   # mu
                - t - s                                                       # Gamma(1, 1) priors
                + np.sum(0.5 * elog_g - half - 0.5 * s * (m[1:] ** 2 + v[1:]))  # eta
                + np.sum(0.5 * elog_t - half - 0.5 * t * sq))                  # y
    gauss = np.sum(0.5 * np.log(2 * np.pi * np.e * v))
    gamma = sum(a - np.log(b) + gammaln(a) + (1 - a) * digamma(a) for a, b in ((a_t, b_t), (a_g, b_g)))
    return expected + gauss + gamma


def test_the_non_centred_model_stops_at_its_optimum():
    g, y = grouped()
    fit = vp.fit(vp.parse(NONCENTRED), {"g": g, "y": y}, dims={"G": 4}, seed=0, progress=False)
    best = mean_field_optimum(g, y, 4)
    assert fit.converged
    # the change-only rule stopped after 4 sweeps at best - 4.0e-3
    assert best - 1e-4 <= fit.elbo <= best + 1e-8, (fit.elbo, best, fit.iterations)


def test_the_rule_on_written_traces():
    # the non-centred model's first changes: the fast modes die (ratios 1e-3, 8e-5), then the slow one shows
    changes = [327.87, 0.3115, 2.62e-5, 2.23e-5, 2.22e-5]
    trace = list(-3201.6 + np.concatenate([[0.0], np.cumsum(changes)]))
    assert abs(trace[3] - trace[2]) <= 1e-8 * abs(trace[3])  # the change alone met tol at sweep 4
    assert not any(converged(trace[:k], 1e-8) for k in range(2, len(trace) + 1))
    assert forecast(trace) > 1e-3  # 2.2e-5 · 0.9955 / 0.0045
    assert converged(trace[:4], 1e-8, rate=False)  # without the rate: the change alone
    # a geometric trace at rate 0.5 from -1000: the tail after a change d is d; stop once d ≤ tol·|ELBO| at two sweeps
    geo = list(-1000.0 + np.cumsum(0.5 ** np.arange(40)))
    stop = next(k for k in range(2, 41) if converged(geo[:k], 1e-8))
    first = next(k for k in range(2, 41) if geo[k - 1] - geo[k - 2] <= 1e-8 * abs(geo[k - 1]))
    assert stop == first + 1
    # changes that do not shrink never stop on the forecast; no rise, or one at rounding, stops at once
    flat = [-1000.0 + 1e-7 * k for k in range(10)]
    assert not converged(flat, 1e-8) and math.isinf(forecast(flat))
    assert converged([-1000.0, -999.0, -999.0], 1e-8)
    assert converged([-1000.0, -999.0, -999.0 + 1e-14], 1e-8)
