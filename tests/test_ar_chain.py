"""An AR(1) chain with an unknown coefficient (issue #20, row 5 follow-up):
``x[t] ~ Normal(phi * x[t-1], precision = q)`` with ``phi`` a latent or a ``param``.

Structured mean-field q(phi) q(x_0..x_{T-1}), the chain one block.  With
``E[(x_t − φ x_{t−1})²] = E[x_t²] − 2E[φ]E[x_t x_{t−1}] + E[φ²]E[x_{t−1}²]`` the expected log
joint is affine in the chain's statistics (E[x_t], E[x_t²], E[x_t x_{t+1}]) and in φ's
(E[φ], E[φ²]), so both updates are closed form.  The references below are written here in
NumPy and SciPy, independently of vemppl:

* q(x) given E[φ], E[φ²]: the transition's quadratic term is
  ``−½ q (x_t² − 2E[φ] x_t x_{t−1} + E[φ²] x_{t−1}²)``, so the chain's precision matrix gets
  ``q`` on J_tt (t ≥ 1), ``q E[φ²]`` on J_{t−1,t−1} and ``−q E[φ]`` on J_{t−1,t}.  This is NOT
  the Kalman model with coefficient E[φ], whose J_{t−1,t−1} term would be ``q E[φ]²``: the
  difference ``q Var[φ]`` is an extra precision on every x_{t−1} (a pseudo-observation of 0),
  which shrinks the chain toward zero.  The reference builds J densely from these bands and
  inverts it (the exact Gaussian the Kalman smoother of that model would give).
* q(φ) given q(x): ``N(φ | 0, 1) · Π_t exp(−½ q (φ² E[x_{t−1}²] − 2φ E[x_t x_{t−1}]))``, a Normal
  with precision ``1 + q Σ_t E[x_{t−1}²]`` and mean ``q Σ_t E[x_t x_{t−1}] / precision``.
* ``param phi``: variational EM with an exact E-step (the chain at fixed φ is the exact
  posterior) converges to the type-II ML φ̂ = argmax_φ log p(y | φ); the reference maximises
  the Kalman filter's log evidence over φ with scipy.optimize.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

import vemppl as vp
from conftest import assert_elbo_monotone
from vemppl.frontends.parser import parse
from vemppl.plan import Update

Q, R, S0 = 4.0, 2.0, 10.0  # transition and observation precisions, prior sd of x_0

AR1 = """model ar1
dim T
data y: real[T]
{phi}
x[0] ~ Normal(0.0, 10.0)
for t in range(1, T) {{ x[t] ~ Normal({loc}, precision = 4.0) }}
for t in range(T) {{ y[t] ~ Normal(x[t], precision = 2.0) }}
"""


def simulate(T, phi, seed):
    rng = np.random.default_rng(seed)
    x = np.zeros(T)
    x[0] = rng.normal(0.0, 1.0)
    for t in range(1, T):
        x[t] = phi * x[t - 1] + rng.normal(0.0, Q**-0.5)
    return x + rng.normal(0.0, R**-0.5, T)


def chain_given(y, e_phi, e_phi2):
    """(mean, E[x_t²], E[x_t x_{t+1}]) of q(x) ∝ exp E_φ[log p(x, y | φ)], densely."""
    T = len(y)
    J = np.diag(np.full(T, R))
    J[0, 0] += 1.0 / S0**2
    for t in range(1, T):
        J[t, t] += Q
        J[t - 1, t - 1] += Q * e_phi2
        J[t - 1, t] -= Q * e_phi
        J[t, t - 1] -= Q * e_phi
    cov = np.linalg.inv(J)
    m = cov @ (R * y)
    second = cov + np.outer(m, m)
    return m, np.diag(second), np.diag(second, 1)


def vb_ar1(y, sweeps=5000):
    """Structured mean-field VB by hand: alternate q(x) and q(φ) to a fixed point."""
    e_phi, v_phi = 0.0, 1.0
    for _ in range(sweeps):
        m, sq, cross = chain_given(y, e_phi, e_phi**2 + v_phi)
        prec = 1.0 + Q * np.sum(sq[:-1])
        new = Q * np.sum(cross) / prec
        done = abs(new - e_phi) < 1e-15
        e_phi, v_phi = new, 1.0 / prec
        if done:
            break
    return e_phi, v_phi, m


def log_evidence(y, phi):
    """log p(y | φ) by the Kalman filter (sum of one-step predictive densities)."""
    mf, vf, ll = 0.0, S0**2, 0.0
    for t in range(len(y)):
        mp, vp_ = (0.0, S0**2) if t == 0 else (phi * mf, phi * phi * vf + 1.0 / Q)
        s = vp_ + 1.0 / R
        ll += -0.5 * np.log(2 * np.pi * s) - 0.5 * (y[t] - mp) ** 2 / s
        k = vp_ / s
        mf, vf = mp + k * (y[t] - mp), (1.0 - k) * vp_
    return ll


@pytest.mark.parametrize("loc", ["phi * x[t-1]", "x[t-1] * phi"])
def test_latent_coefficient_matches_hand_written_structured_vb(loc):
    y = simulate(40, 0.8, seed=1)
    fit = vp.fit(parse(AR1.format(phi="phi ~ Normal(0.0, 1.0)", loc=loc)), {"y": y}, max_iter=5000, tol=1e-15)
    assert fit.plan.block("x").family == "GaussianChain"
    assert {fit.plan.block(n).update for n in ("x", "phi")} == {Update.CAVI}
    assert_elbo_monotone(fit.elbo_trace)
    e_phi, v_phi, m = vb_ar1(y)
    mp = {k: float(np.asarray(v)) for k, v in fit.mean_params["phi"].items()}
    assert mp["mean"] == pytest.approx(e_phi, abs=1e-6)
    assert mp["sq"] - mp["mean"] ** 2 == pytest.approx(v_phi, abs=1e-6)
    np.testing.assert_allclose(np.asarray(fit.mean_params["x"]["mean"]), m, atol=1e-6)


def test_latent_coefficient_against_nuts():
    """NUTS on the exact posterior.  Mean-field between φ and the chain understates Var[φ]
    and can pull E[φ] a little (the q Var[φ] shrinkage above), so the check is 1 posterior sd."""
    import jax
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import MCMC, NUTS

    y = simulate(30, 0.7, seed=5)

    def model(y):
        phi = numpyro.sample("phi", dist.Normal(0.0, 1.0))
        x0 = numpyro.sample("x0", dist.Normal(0.0, S0))
        eps = numpyro.sample("eps", dist.Normal(0.0, 1.0).expand([len(y) - 1]))

        def step(prev, e):
            nxt = phi * prev + e * Q**-0.5
            return nxt, nxt

        _, rest = jax.lax.scan(step, x0, eps)
        x = jax.numpy.concatenate([x0[None], rest])
        numpyro.sample("y", dist.Normal(x, R**-0.5), obs=y)

    mcmc = MCMC(NUTS(model), num_warmup=800, num_samples=1500, progress_bar=False)
    mcmc.run(jax.random.PRNGKey(0), y)
    phi = np.asarray(mcmc.get_samples()["phi"])
    fit = vp.fit(parse(AR1.format(phi="phi ~ Normal(0.0, 1.0)", loc="phi * x[t-1]")), {"y": y}, max_iter=2000)
    assert_elbo_monotone(fit.elbo_trace)
    got = float(np.asarray(fit.mean_params["phi"]["mean"]))  # 0.636 vs NUTS 0.556 ± 0.203 (q's sd 0.121)
    assert abs(got - phi.mean()) < phi.std() + 3 * phi.std() / np.sqrt(len(phi) / 10)  # MC error, ESS ≥ n/10


def test_param_coefficient_is_type_ii_maximum_likelihood():
    y = simulate(60, 0.6, seed=2)
    fit = vp.fit(parse(AR1.format(phi="param phi: real", loc="phi * x[t-1]")), {"y": y}, max_iter=5000, tol=1e-14)
    assert_elbo_monotone(fit.elbo_trace)
    best = minimize_scalar(lambda p: -log_evidence(y, p), bounds=(-3.0, 3.0), method="bounded",
                           options={"xatol": 1e-10})
    assert float(fit.params["phi"]) == pytest.approx(best.x, abs=1e-3)
    # At the fixed point the E-step is exact: the ELBO is the log evidence at φ̂.
    assert fit.elbo == pytest.approx(log_evidence(y, float(fit.params["phi"])), abs=1e-6)


def test_latent_offset_and_coefficient():
    """x[t] ~ Normal(phi * x[t-1] + b, ...) with b latent: E[x_t b] = E[x_t]E[b] and
    E[(φx_{t−1} + b)²] = E[φ²]E[x_{t−1}²] + 2E[φ]E[x_{t−1}]E[b] + E[b²]; checked against the
    same hand-written VB with a third factor q(b) = N."""
    y = simulate(40, 0.7, seed=3) + 0.5
    text = AR1.format(phi="phi ~ Normal(0.0, 1.0)\nb ~ Normal(0.0, 1.0)", loc="phi * x[t-1] + b")
    fit = vp.fit(parse(text), {"y": y}, max_iter=5000, tol=1e-15)
    assert_elbo_monotone(fit.elbo_trace)
    T = len(y)
    e_phi, e_phi2, e_b = 0.0, 1.0, 0.0
    for _ in range(20000):
        J = np.diag(np.full(T, R))
        J[0, 0] += 1.0 / S0**2
        h = R * y
        for t in range(1, T):
            J[t, t] += Q
            J[t - 1, t - 1] += Q * e_phi2
            J[t - 1, t] -= Q * e_phi
            J[t, t - 1] -= Q * e_phi
            h[t] += Q * e_b
            h[t - 1] -= Q * e_phi * e_b
        cov = np.linalg.inv(J)
        m = cov @ h
        sq, cross = np.diag(cov) + m**2, np.diag(cov, 1) + m[:-1] * m[1:]
        p_prec = 1.0 + Q * np.sum(sq[:-1])
        new_phi = Q * (np.sum(cross) - e_b * np.sum(m[:-1])) / p_prec
        step = abs(new_phi - e_phi)
        e_phi, e_phi2 = new_phi, new_phi**2 + 1.0 / p_prec
        b_prec = 1.0 + Q * (T - 1)
        new_b = Q * (np.sum(m[1:]) - e_phi * np.sum(m[:-1])) / b_prec
        step = max(step, abs(new_b - e_b))
        e_b = new_b
        if step < 1e-15:
            break
    assert float(np.asarray(fit.mean_params["phi"]["mean"])) == pytest.approx(e_phi, abs=1e-6)
    assert float(np.asarray(fit.mean_params["b"]["mean"])) == pytest.approx(e_b, abs=1e-6)
    np.testing.assert_allclose(np.asarray(fit.mean_params["x"]["mean"]), m, atol=1e-6)


# ---- a chain of vectors with an unknown transition matrix ----------------------------------
VAR1 = """model var1
dim T
dim D
data y: real[T, D]
{A}
x[0] ~ MvNormal(zeros(D), precision = 0.1 * eye(D))
for t in range(1, T) {{ x[t] ~ MvNormal(A @ x[t-1], precision = 4.0 * eye(D)) }}
for t in range(T) {{ y[t] ~ MvNormal(x[t], precision = 2.0 * eye(D)) }}
"""


def var_posterior(y, EA, EAtQA):
    """(mean [T, D], E[x_t x_tᵀ], E[x_t x_{t+1}ᵀ]) of q(x) ∝ exp E_A[log p(x, y | A)], densely:
    J_tt += Q, J_{t−1,t−1} += E[AᵀQA], J_{t,t−1} = −Q E[A] (Q = 4I, x_0 precision 0.1 I, R = 2I)."""
    T, D = y.shape
    s = lambda t: slice(t * D, (t + 1) * D)  # noqa: E731
    J = np.kron(np.eye(T), 2.0 * np.eye(D))
    J[s(0), s(0)] += 0.1 * np.eye(D)
    for t in range(1, T):
        J[s(t), s(t)] += 4.0 * np.eye(D)
        J[s(t - 1), s(t - 1)] += EAtQA
        J[s(t), s(t - 1)] -= 4.0 * EA
        J[s(t - 1), s(t)] -= 4.0 * EA.T
    cov = np.linalg.inv(J)
    m = cov @ (2.0 * y.ravel())
    E = cov + np.outer(m, m)
    return (m.reshape(T, D), np.array([E[s(t), s(t)] for t in range(T)]),
            np.array([E[s(t), s(t + 1)] for t in range(T - 1)]))


def _var_data(T=30, seed=4):
    rng = np.random.default_rng(seed)
    A = np.array([[0.8, -0.3], [0.2, 0.7]])
    x = np.zeros((T, 2))
    x[0] = rng.standard_normal(2)
    for t in range(1, T):
        x[t] = A @ x[t - 1] + 0.5 * rng.standard_normal(2)
    return x + rng.normal(0.0, 2.0**-0.5, (T, 2))


def test_latent_transition_matrix_rows_match_hand_written_structured_vb():
    """A's rows a_i ~ N(0, I), Q = 4I diagonal: each row's update is a Normal with precision
    I + 4 Σ_t E[x_{t−1}x_{t−1}ᵀ] and linear term 4 Σ_t E[x_{t−1} x_{t,i}], and the chain sees
    E[AᵀQA] = 4 Σ_i E[a_i a_iᵀ], not 4 E[A]ᵀE[A]."""
    y = _var_data()
    D = 2
    text = VAR1.format(A="for i in range(D) { A[i] ~ MvNormal(zeros(D), precision = eye(D)) }")
    fit = vp.fit(parse(text), {"y": y}, max_iter=5000, tol=1e-15)
    assert fit.plan.block("x").family == "MvGaussianChain"
    assert {fit.plan.block(n).update for n in ("x", "A")} == {Update.CAVI}
    assert_elbo_monotone(fit.elbo_trace)
    EA, rows_outer = np.zeros((D, D)), np.stack([np.eye(D)] * D)
    for _ in range(20000):
        m, outer, cross = var_posterior(y, EA, 4.0 * rows_outer.sum(axis=0))
        prec = np.eye(D) + 4.0 * outer[:-1].sum(axis=0)
        cov = np.linalg.inv(prec)
        new = (cov @ (4.0 * cross.sum(axis=0))).T  # row i: cov Σ_t E[x_{t−1} x_{t,i}]
        step = np.max(np.abs(new - EA))
        EA = new
        rows_outer = np.stack([cov + np.outer(EA[i], EA[i]) for i in range(D)])
        if step < 1e-15:
            break
    np.testing.assert_allclose(np.asarray(fit.mean_params["A"]["mean"]), EA, atol=1e-6)
    np.testing.assert_allclose(np.asarray(fit.mean_params["x"]["mean"]), m, atol=1e-6)


def test_param_transition_matrix_is_type_ii_maximum_likelihood():
    """log p(y | A) = log N(y; 0, J(A)⁻¹ + R⁻¹), J(A) the prior precision of the chain,
    maximised over A's four entries by scipy (BFGS)."""
    from scipy.optimize import minimize

    y = _var_data(T=25, seed=6)
    T, D = y.shape

    def log_ev(a):
        A = a.reshape(D, D)
        s = lambda t: slice(t * D, (t + 1) * D)  # noqa: E731
        J = np.zeros((T * D, T * D))
        J[s(0), s(0)] += 0.1 * np.eye(D)
        for t in range(1, T):
            J[s(t), s(t)] += 4.0 * np.eye(D)
            J[s(t - 1), s(t - 1)] += 4.0 * A.T @ A
            J[s(t), s(t - 1)] -= 4.0 * A
            J[s(t - 1), s(t)] -= 4.0 * A.T
        # p(y) = ∫ N(x; 0, J⁻¹) N(y; x, I/2) dx in information form (no inverse of J):
        post, h = J + 2.0 * np.eye(T * D), 2.0 * y.ravel()
        return (0.5 * np.linalg.slogdet(J)[1] - 0.5 * np.linalg.slogdet(post)[1]
                + 0.5 * T * D * np.log(2.0 / (2 * np.pi)) - y.ravel() @ y.ravel() + 0.5 * h @ np.linalg.solve(post, h))

    best = minimize(lambda a: -log_ev(a), np.zeros(D * D), method="BFGS", options={"gtol": 1e-8})
    fit = vp.fit(parse(VAR1.format(A="param A: real[D, D]")), {"y": y}, max_iter=5000, tol=1e-14)
    assert_elbo_monotone(fit.elbo_trace)
    np.testing.assert_allclose(np.asarray(fit.params["A"]), best.x.reshape(D, D), atol=1e-3)
    assert fit.elbo == pytest.approx(-best.fun, abs=1e-5)
