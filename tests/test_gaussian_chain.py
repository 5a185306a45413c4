"""Linear-Gaussian chains as one block (issue #20, row 5): families/gaussian_chain.py and
compiler/rules/gaussian_chain.py.

References independent of vemppl, written here in NumPy: the dense Gaussian with the
tridiagonal precision built entry by entry (log-normaliser, moments, entropy), a Kalman
filter with a Rauch–Tung–Striebel smoother in moment form (smoothed means, variances, lag-one
covariances, and the log evidence as the sum of the filter's one-step predictive densities),
and, for latent Gamma precisions, the variational Bayes EM of a local-level model written out
by hand (Beal 2003, ch. 5): smoother at E[q], E[r], then each Gamma from the smoothed moments.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import vemppl as vp
from conftest import assert_elbo_monotone
from vemppl import cli
from vemppl.compiler.compile import compile_model
from vemppl.diagnostics import VemError
from vemppl.families.gaussian_chain import GaussianChain, GaussianChainStats
from vemppl.frontends.parser import parse
from vemppl.plan import BlockStructure, Update

LOCAL_LEVEL = """model locallevel
dim T
data y: real[T]
x[0] ~ Normal({m0}, {s0})
for t in range(1, T) {{ x[t] ~ Normal({loc}, precision = {q}) }}
for t in range(T) {{ y[t] ~ Normal(x[t], precision = {r}) }}
"""

GAMMA_PRECISIONS = """model locallevel_vb
dim S
dim T
data y: real[S, T]
q ~ Gamma(2.0, 1.0)
r ~ Gamma(3.0, 0.5)
for s in range(S) { x[s, 0] ~ Normal(0.0, 10.0) }
for s in range(S) { for t in range(1, T) { x[s, t] ~ Normal(x[s, t-1], precision = q) } }
for s in range(S) { for t in range(T) { y[s, t] ~ Normal(x[s, t], precision = r) } }
"""


# ---- references ----------------------------------------------------------------------
def dense(h, diag, off):
    """(A, mean, cov) of ∝ exp(hᵀx − ½xᵀJx) with J built densely from its bands."""
    J = np.diag(diag) + np.diag(off, 1) + np.diag(off, -1)
    cov = np.linalg.inv(J)
    mean = cov @ h
    return 0.5 * h @ mean - 0.5 * np.linalg.slogdet(J)[1], mean, cov


def kalman_rts(y, present, a, b, q, r, m0, v0):
    """Kalman filter and RTS smoother of x_0 ~ N(m0, v0), x_t = a x_{t−1} + b + N(0, 1/q),
    y_t = x_t + N(0, 1/r) (y_t missing where not ``present``): smoothed means, variances,
    Cov(x_t, x_{t+1}), and log p(y)."""
    T = len(y)
    mf, vf, mp, vp_ = (np.zeros(T) for _ in range(4))
    log_ev = 0.0
    for t in range(T):
        mp[t], vp_[t] = (m0, v0) if t == 0 else (a * mf[t - 1] + b, a * a * vf[t - 1] + 1.0 / q)
        if present[t]:
            s = vp_[t] + 1.0 / r
            log_ev += -0.5 * np.log(2 * np.pi * s) - 0.5 * (y[t] - mp[t]) ** 2 / s
            k = vp_[t] / s
            mf[t], vf[t] = mp[t] + k * (y[t] - mp[t]), (1.0 - k) * vp_[t]
        else:
            mf[t], vf[t] = mp[t], vp_[t]
    ms, vs, cs = mf.copy(), vf.copy(), np.zeros(T - 1)
    for t in range(T - 2, -1, -1):
        g = vf[t] * a / vp_[t + 1]
        ms[t] = mf[t] + g * (ms[t + 1] - mp[t + 1])
        vs[t] = vf[t] + g * g * (vs[t + 1] - vp_[t + 1])
        cs[t] = g * vs[t + 1]
    return ms, vs, cs, log_ev


def vb_local_level(y, q_prior, r_prior, v0, sweeps=3000):
    """Structured mean-field VB of the local-level model with Gamma precisions q, r:
    q(x) by the smoother at E[q], E[r]; q(q), q(r) Gamma from the smoothed moments."""
    S, T = y.shape
    eq, er = q_prior[0] / q_prior[1], r_prior[0] / r_prior[1]
    for _ in range(sweeps):
        means, sq, cross = [], [], []
        for s in range(S):
            m, v, c, _ = kalman_rts(y[s], np.ones(T, bool), 1.0, 0.0, eq, er, 0.0, v0)
            means.append(m), sq.append(v + m**2), cross.append(c + m[:-1] * m[1:])
        means, sq, cross = map(np.array, (means, sq, cross))
        dq = np.sum(sq[:, 1:] - 2 * cross + sq[:, :-1])
        dr = np.sum(y**2 - 2 * y * means + sq)
        new_q = (q_prior[0] + 0.5 * S * (T - 1)) / (q_prior[1] + 0.5 * dq)
        new_r = (r_prior[0] + 0.5 * S * T) / (r_prior[1] + 0.5 * dr)
        done = abs(new_q - eq) < 1e-14 * eq and abs(new_r - er) < 1e-14 * er
        eq, er = new_q, new_r
        if done:
            break
    return means, eq, er


def moments(fit, name="x"):
    mu = {k: np.asarray(v) for k, v in fit.mean_params[name].items()}
    m = mu["mean"]
    return m, mu["sq"] - m**2, mu["cross"] - m[..., :-1] * m[..., 1:]


# ---- the family ------------------------------------------------------------------------
@pytest.mark.parametrize("T", [1, 2, 7])
def test_family_matches_the_dense_gaussian(T):
    rng = np.random.default_rng(T)
    B = 3  # independent chains on a leading axis
    diag = 2.0 + rng.random((B, T))
    off = 0.8 * rng.standard_normal((B, T - 1))
    h = rng.standard_normal((B, T))
    eta = GaussianChainStats(jnp.asarray(h), jnp.asarray(-0.5 * diag), jnp.asarray(-off))
    A = np.asarray(GaussianChain.log_normalizer(eta))
    mu = GaussianChain.expected_stats(eta)
    H = np.asarray(GaussianChain.entropy(eta, mu))
    for i in range(B):
        a, mean, cov = dense(h[i], diag[i], off[i])
        assert A[i] == pytest.approx(a, abs=1e-10)
        np.testing.assert_allclose(mu.mean[i], mean, atol=1e-10)
        np.testing.assert_allclose(mu.sq[i], np.diag(cov) + mean**2, atol=1e-10)
        np.testing.assert_allclose(mu.cross[i], np.diag(cov, 1) + mean[:-1] * mean[1:], atol=1e-10)
        assert H[i] == pytest.approx(0.5 * np.linalg.slogdet(2 * np.pi * np.e * cov)[1], abs=1e-10)
    back = GaussianChain.natural_from_mean(mu)
    for got, want in zip(back, eta):
        np.testing.assert_allclose(got, want, atol=1e-9)


# ---- fits against the Kalman smoother -----------------------------------------------------
@pytest.mark.parametrize("a, b", [(1.0, 0.0), (0.9, 0.3)])
@pytest.mark.parametrize("missing", [False, True])
def test_local_level_equals_kalman_rts(a, b, missing):
    rng = np.random.default_rng(7)
    T = 60
    y = np.cumsum(0.5 * rng.standard_normal(T)) + 0.7 * rng.standard_normal(T)
    present = rng.random(T) > 0.25 if missing else np.ones(T, bool)
    loc = "x[t-1]" if (a, b) == (1.0, 0.0) else f"{a} * x[t-1] + {b}"
    model = parse(LOCAL_LEVEL.format(m0=0.5, s0=10.0, loc=loc, q=4.0, r=2.0))
    fit = vp.fit(model, {"y": np.where(present, y, 0.0)}, mask={"y": present} if missing else None)
    ms, vs, cs, log_ev = kalman_rts(y, present, a, b, 4.0, 2.0, 0.5, 100.0)
    m, v, c = moments(fit)
    np.testing.assert_allclose(m, ms, atol=1e-8)
    np.testing.assert_allclose(v, vs, atol=1e-8)
    np.testing.assert_allclose(c, cs, atol=1e-8)
    # One block at the exact posterior: the ELBO is the log evidence.
    assert fit.elbo == pytest.approx(log_ev, abs=1e-8)
    assert_elbo_monotone(fit.elbo_trace)


def test_gamma_precisions_match_hand_written_vb_and_the_elbo_never_decreases():
    rng = np.random.default_rng(3)
    S, T = 3, 40
    x = np.cumsum(0.5 * rng.standard_normal((S, T)), axis=1)
    y = x + 0.3 * rng.standard_normal((S, T))
    fit = vp.fit(parse(GAMMA_PRECISIONS), {"y": y}, max_iter=3000, tol=1e-15)
    assert_elbo_monotone(fit.elbo_trace)
    means, eq, er = vb_local_level(y, (2.0, 1.0), (3.0, 0.5), 100.0)
    assert float(np.asarray(fit.mean_params["q"]["mean"])) == pytest.approx(eq, rel=1e-6)
    assert float(np.asarray(fit.mean_params["r"]["mean"])) == pytest.approx(er, rel=1e-6)
    np.testing.assert_allclose(moments(fit)[0], means, atol=1e-6)


# ---- the compiler and `vemppl check` ------------------------------------------------------
def test_the_plan_makes_the_chain_one_closed_form_block():
    plan = compile_model(parse(GAMMA_PRECISIONS))
    x = plan.block("x")
    assert (x.family, x.structure, x.update) == ("GaussianChain", BlockStructure.GAUSSIAN_CHAIN, Update.CAVI)
    assert {plan.block(n).update for n in "qr"} == {Update.CAVI}


def test_check_shows_the_chain_block(tmp_path, capsys):
    path = tmp_path / "ll.vem"
    path.write_text(LOCAL_LEVEL.format(m0=0.0, s0=10.0, loc="x[t-1]", q=4.0, r=2.0))
    assert cli.main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "q(x): GaussianChain [gaussian-chain] -- closed-form CAVI" in out


@pytest.mark.parametrize("transition, line", [
    ("x[t] ~ Normal(sigmoid(x[t-1]), precision = 4.0)", 6),  # nonlinear
    ("x[t] ~ Normal(x[t-1], precision = x[t-1] * x[t-1])", 6),  # the chain in its precision
    ("x[t] ~ Normal(x[t-1] / phi, precision = 4.0)", 6),  # a latent divisor (E[1/phi] is not a statistic)
    ("x[t] ~ Normal(x[t-1] * x[t-1], precision = 4.0)", 6),  # the chain times itself
    ("x[t] ~ Normal(phi * phi * x[t-1], precision = 4.0)", 6),  # a latent multiplier times itself
])
def test_a_chain_no_rule_fits_is_a_located_unsupported_error(transition, line, tmp_path, capsys):
    text = (f"model nl\ndim T\ndata y: real[T]\nphi ~ Normal(0.0, 1.0)\nx[0] ~ Normal(0.0, 10.0)\n"
            f"for t in range(1, T) {{ {transition} }}\nfor t in range(T) {{ y[t] ~ Normal(x[t], precision = 2.0) }}\n")
    with pytest.raises(VemError) as err:
        compile_model(parse(text))
    assert err.value.kind == "unsupported" and err.value.span.line == line
    path = tmp_path / "nl.vem"
    path.write_text(text)
    assert cli.main(["check", str(path)]) == 2  # the user's to fix, not an internal error
    assert "internal error" not in capsys.readouterr().err


def test_a_gamma_chain_is_refused_at_its_statement():
    text = ("model g\ndim T\ndata y: count[T]\nx[0] ~ Gamma(1.0, 1.0)\n"
            "for t in range(1, T) { x[t] ~ Gamma(10.0, 10.0 / x[t-1]) }\n"
            "for t in range(T) { y[t] ~ Poisson(x[t]) }\n")
    with pytest.raises(VemError) as err:
        compile_model(parse(text))
    assert err.value.kind == "unsupported" and err.value.span.line == 5
    assert "Gamma" in str(err.value)


# ---- other reads of the chain -------------------------------------------------------------
DIFFERENCES = """model differences
dim T
data y: real[T]
data d: real[T]
data u: real[T]
x[0] ~ Normal(0.0, 10.0)
for t in range(1, T) { x[t] ~ Normal(x[t-1] / 2 - u[t], precision = 4.0) }
for t in range(T) { y[t] ~ Normal(2.0 * x[t] + 1.0, precision = 2.0) }
for t in range(1, T) { d[t] ~ Normal(x[t] - x[t-1], precision = 3.0) }
"""


def test_a_factor_reading_two_adjacent_steps_equals_the_dense_posterior():
    """x[t] - x[t-1] read by a likelihood: its square is E[x_t²] − 2E[x_{t−1}x_t] + E[x_{t−1}²],
    so the fit is the exact Gaussian posterior, here built densely from each factor's quadratic."""
    rng = np.random.default_rng(0)
    T = 20
    y, d, u = rng.standard_normal((3, T))
    fit = vp.fit(parse(DIFFERENCES), {"y": y, "d": d, "u": u})
    J, h = np.zeros((T, T)), np.zeros(T)
    J[0, 0] += 1.0 / 100.0
    for t in range(1, T):
        v = np.zeros(T)
        v[t], v[t - 1] = 1.0, -0.5  # 4/2 (x_t − x_{t−1}/2 + u_t)²
        J += 4.0 * np.outer(v, v)
        h -= 4.0 * u[t] * v
        w = np.zeros(T)
        w[t], w[t - 1] = 1.0, -1.0  # 3/2 (d_t − x_t + x_{t−1})²
        J += 3.0 * np.outer(w, w)
        h += 3.0 * d[t] * w
    J[np.arange(T), np.arange(T)] += 2.0 * 4.0  # 2/2 (y_t − 2x_t − 1)²
    h += 2.0 * 2.0 * (y - 1.0)
    cov = np.linalg.inv(J)
    mean = cov @ h
    m, v, c = moments(fit)
    np.testing.assert_allclose(m, mean, atol=1e-8)
    np.testing.assert_allclose(v, np.diag(cov), atol=1e-8)
    np.testing.assert_allclose(c, np.diag(cov, 1), atol=1e-8)
    assert_elbo_monotone(fit.elbo_trace)


def test_a_nonconjugate_observation_of_the_chain_fits_with_a_monotone_elbo():
    text = ("model bern\ndim T\ndata y: bool[T]\nx[0] ~ Normal(0.0, 1.0)\n"
            "for t in range(1, T) { x[t] ~ Normal(0.9 * x[t-1], precision = 10.0) }\n"
            "for t in range(T) { y[t] ~ Bernoulli(logits = x[t]) }\n")
    rng = np.random.default_rng(0)
    y = rng.random(30) < 0.7
    fit = vp.fit(parse(text), {"y": y})
    assert fit.plan.block("x").update is Update.NATURAL_GRADIENT
    assert_elbo_monotone(fit.elbo_trace)
    m = moments(fit)[0]
    # More ones than zeros: the smoothed log-odds are positive on average.
    assert np.mean(m) > 0 and np.all(np.isfinite(m))


# ---- chains of vectors ---------------------------------------------------------------------
LGSSM = """model lgssm
dim T
dim D
dim P
data A: real[D, D]
data b: real[D]
data C: real[P, D]
data Q: spd[D]
data R: spd[P]
data y: real[T, P]
x[0] ~ MvNormal(zeros(D), 3.0 * eye(D))
for t in range(1, T) { x[t] ~ MvNormal(A @ x[t-1] + b, precision = Q) }
for t in range(T) { y[t] ~ MvNormal(C @ x[t], precision = R) }
"""

LGSSM_WISHART = """model lgssm_wishart
dim S
dim T
dim D
data A: real[D, D]
data y: real[S, T, D]
Q ~ Wishart(5.0, eye(D))
for s in range(S) { x[s, 0] ~ MvNormal(zeros(D), 3.0 * eye(D)) }
for s in range(S) { for t in range(1, T) { x[s, t] ~ MvNormal(A @ x[s, t-1], precision = Q) } }
for s in range(S) { for t in range(T) { y[s, t] ~ MvNormal(x[s, t], precision = 4.0 * eye(D)) } }
"""


def _rotation(theta, scale):
    return scale * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])


def dense_lgssm(T, D, prior_prec, A, b, Q, obs):
    """(J, h) of the posterior of x_{0..T−1} ∈ R^D given x_0 ~ N(0, prior_prec⁻¹),
    x_t ~ N(A x_{t−1} + b, Q⁻¹) and ``obs`` = [(C, R, y_t)] per step, block by block."""
    J, h = np.zeros((T * D, T * D)), np.zeros(T * D)
    s = lambda t: slice(t * D, (t + 1) * D)  # noqa: E731
    J[s(0), s(0)] += prior_prec
    for t in range(1, T):
        J[s(t), s(t)] += Q
        J[s(t - 1), s(t - 1)] += A.T @ Q @ A
        J[s(t - 1), s(t)] -= A.T @ Q
        J[s(t), s(t - 1)] -= Q @ A
        h[s(t)] += Q @ b
        h[s(t - 1)] -= A.T @ Q @ b
    for t, (C, R, yt) in enumerate(obs):
        J[s(t), s(t)] += C.T @ R @ C
        h[s(t)] += C.T @ R @ yt
    return J, h


@pytest.mark.parametrize("T", [1, 2, 6])
def test_vector_family_matches_the_dense_gaussian(T):
    from vemppl.families.gaussian_chain import MvGaussianChain, MvGaussianChainStats

    rng = np.random.default_rng(10 + T)
    D = 3
    J = np.zeros((T * D, T * D))
    for t in range(T):
        a = rng.standard_normal((D, D))
        J[t * D:(t + 1) * D, t * D:(t + 1) * D] = a @ a.T + 4.0 * np.eye(D)
        if t < T - 1:
            o = 0.5 * rng.standard_normal((D, D))
            J[t * D:(t + 1) * D, (t + 1) * D:(t + 2) * D] = o
            J[(t + 1) * D:(t + 2) * D, t * D:(t + 1) * D] = o.T
    h = rng.standard_normal(T * D)
    diag = np.stack([J[t * D:(t + 1) * D, t * D:(t + 1) * D] for t in range(T)])
    off = np.array([J[t * D:(t + 1) * D, (t + 1) * D:(t + 2) * D] for t in range(T - 1)]).reshape(T - 1, D, D)
    eta = MvGaussianChainStats(jnp.asarray(h.reshape(T, D)), jnp.asarray(-0.5 * diag), jnp.asarray(-off))
    cov = np.linalg.inv(J)
    mean = cov @ h
    second = cov + np.outer(mean, mean)
    assert float(MvGaussianChain.log_normalizer(eta)) == pytest.approx(
        0.5 * h @ mean - 0.5 * np.linalg.slogdet(J)[1], abs=1e-10)
    mu = MvGaussianChain.expected_stats(eta)
    np.testing.assert_allclose(mu.mean, mean.reshape(T, D), atol=1e-10)
    for t in range(T):
        np.testing.assert_allclose(mu.outer[t], second[t * D:(t + 1) * D, t * D:(t + 1) * D], atol=1e-10)
    for t in range(T - 1):
        np.testing.assert_allclose(mu.cross[t], second[t * D:(t + 1) * D, (t + 1) * D:(t + 2) * D], atol=1e-10)
    assert float(MvGaussianChain.entropy(eta, mu)) == pytest.approx(
        0.5 * np.linalg.slogdet(2 * np.pi * np.e * cov)[1], abs=1e-10)


def test_linear_gaussian_state_space_equals_the_dense_posterior_and_its_evidence():
    from scipy.stats import multivariate_normal as mvn

    rng = np.random.default_rng(0)
    T, D, P = 15, 2, 3
    A, b = _rotation(0.3, 0.95), np.array([0.1, -0.2])
    C = rng.standard_normal((P, D))
    Q, R = np.array([[4.0, 1.0], [1.0, 3.0]]), np.diag([2.0, 1.0, 3.0])
    y = rng.standard_normal((T, P))
    fit = vp.fit(parse(LGSSM), {"A": A, "b": b, "C": C, "Q": Q, "R": R, "y": y})
    assert fit.plan.block("x").family == "MvGaussianChain" and fit.plan.block("x").update is Update.CAVI
    J, h = dense_lgssm(T, D, np.eye(D) / 3.0, A, b, Q, [(C, R, y[t]) for t in range(T)])
    cov = np.linalg.inv(J)
    X = (cov @ h).reshape(T, D)
    second = cov + np.outer(X.ravel(), X.ravel())
    mu = {k: np.asarray(v) for k, v in fit.mean_params["x"].items()}
    np.testing.assert_allclose(mu["mean"], X, atol=1e-8)
    for t in range(T):
        np.testing.assert_allclose(mu["outer"][t], second[t * D:(t + 1) * D, t * D:(t + 1) * D], atol=1e-8)
    for t in range(T - 1):
        np.testing.assert_allclose(mu["cross"][t], second[t * D:(t + 1) * D, (t + 1) * D:(t + 2) * D], atol=1e-8)
    # log p(y) = log p(x̂, y) − log q(x̂) at the posterior mean x̂ (q is the exact posterior).
    log_joint = (mvn.logpdf(X[0], np.zeros(D), 3.0 * np.eye(D))
                 + sum(mvn.logpdf(X[t], A @ X[t - 1] + b, np.linalg.inv(Q)) for t in range(1, T))
                 + sum(mvn.logpdf(y[t], C @ X[t], np.linalg.inv(R)) for t in range(T)))
    assert fit.elbo == pytest.approx(log_joint + 0.5 * np.linalg.slogdet(2 * np.pi * cov)[1], abs=1e-8)


def test_wishart_transition_precision_matches_hand_written_vb():
    rng = np.random.default_rng(4)
    S, T, D = 2, 25, 2
    A = _rotation(0.3, 0.95)
    x = np.zeros((S, T, D))
    for t in range(1, T):
        x[:, t] = x[:, t - 1] @ A.T + 0.5 * rng.standard_normal((S, D))
    y = x + 0.5 * rng.standard_normal((S, T, D))
    fit = vp.fit(parse(LGSSM_WISHART), {"A": A, "y": y}, max_iter=3000, tol=1e-15)
    assert_elbo_monotone(fit.elbo_trace)
    # VB by hand: q(x_s) the dense posterior at E[Q]; q(Q) = Wishart(ν₀ + S(T−1), (W₀⁻¹ + Σ E[e eᵀ])⁻¹),
    # e = x_t − A x_{t−1}.
    nu0, W0inv = 5.0, np.eye(D)
    EQ = nu0 * np.eye(D)
    s = lambda t: slice(t * D, (t + 1) * D)  # noqa: E731
    for _ in range(3000):
        scatter = np.zeros((D, D))
        means = []
        for i in range(S):
            J, h = dense_lgssm(T, D, np.eye(D) / 3.0, A, np.zeros(D), EQ,
                               [(np.eye(D), 4.0 * np.eye(D), y[i, t]) for t in range(T)])
            cov = np.linalg.inv(J)
            m = cov @ h
            E = cov + np.outer(m, m)
            means.append(m.reshape(T, D))
            for t in range(1, T):
                cur, prev, cross = E[s(t), s(t)], E[s(t - 1), s(t - 1)], E[s(t), s(t - 1)]
                scatter += cur - cross @ A.T - A @ cross.T + A @ prev @ A.T
        new = (nu0 + S * (T - 1)) * np.linalg.inv(W0inv + scatter)
        done = np.max(np.abs(new - EQ)) < 1e-13 * np.max(np.abs(EQ))
        EQ = new
        if done:
            break
    np.testing.assert_allclose(np.asarray(fit.mean_params["Q"]["mean"]), EQ, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(fit.mean_params["x"]["mean"]), np.array(means), atol=1e-6)
