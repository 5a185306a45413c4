"""The expected log joint (elj.joint.Joint) against sums written out by hand here, at
mean parameters chosen here (not produced by a fit): Normal–Normal, Gamma–Poisson, and a
two-component mixture's gate Σ_n Σ_k r_nk E[log N(x_n | mu_k, 1)]."""

import numpy as np
from scipy.special import digamma, gammaln

import vemppl as vp
from vemppl.elj.binding import Bound
from vemppl.elj.joint import Joint
from vemppl.families import get_family

LOG2PI = np.log(2 * np.pi)


def joint_of(text, data, sizes, consts=None):
    model = vp.parse(text)
    plan = vp.compile_model(model)
    values = {k: np.asarray(v, dtype=float) for k, v in {**data, **(consts or {})}.items()}
    return model, plan, Joint(model, plan, Bound(dict(sizes), values))


def stats(family, eta):
    fam = get_family(family)
    eta = fam.Stats(*[np.asarray(e, dtype=float) for e in eta])
    return eta, fam.expected_stats(eta)


def test_normal_normal():
    x = np.array([0.3, -1.2, 2.0, 0.7])
    _, _, j = joint_of("""model m
dim N
data x: real[N]
mu ~ Normal(0.5, precision = 2.0)
for n in range(N) { x[n] ~ Normal(mu, precision = 4.0) }
""", {"x": x}, {"N": 4})
    m, v = 0.9, 0.25  # q(mu) = N(0.9, 0.25)
    eta, mu = stats("Normal", (m / v, -0.5 / v))
    e_mu, e_mu2 = m, v + m**2
    prior = 0.5 * np.log(2.0) - 0.5 * LOG2PI - 0.5 * 2.0 * (e_mu2 - 2 * 0.5 * e_mu + 0.25)
    lik = np.sum(0.5 * np.log(4.0) - 0.5 * LOG2PI - 0.5 * 4.0 * (x**2 - 2 * x * e_mu + e_mu2))
    value = j.expected_log_joint({"mu": mu}, {"mu": eta}, {}, j.data)
    np.testing.assert_allclose(float(value), prior + lik, rtol=1e-12)
    # ELBO = L + H[q], H of N(m, v) = ½ log(2πe v).
    from vemppl.engine.state import State

    elbo = j.elbo(State({"mu": eta}, {"mu": mu}, {}))
    np.testing.assert_allclose(float(elbo), prior + lik + 0.5 * np.log(2 * np.pi * np.e * v), rtol=1e-12)


def test_gamma_poisson():
    c = np.array([3.0, 0.0, 5.0, 2.0, 1.0])
    _, _, j = joint_of("""model m
dim N
data c: count[N]
lam ~ Gamma(2.0, 0.5)
for n in range(N) { c[n] ~ Poisson(lam) }
""", {"c": c}, {"N": 5})
    shape, rate = 4.0, 1.5  # q(lam) = Gamma(4, 1.5)
    eta, mu = stats("Gamma", (-rate, shape - 1.0))
    e_lam, e_log = shape / rate, digamma(shape) - np.log(rate)
    prior = 2.0 * np.log(0.5) - gammaln(2.0) + (2.0 - 1.0) * e_log - 0.5 * e_lam
    lik = np.sum(c * e_log - e_lam - gammaln(c + 1))
    np.testing.assert_allclose(float(mu.mean), e_lam, rtol=1e-12)
    value = j.expected_log_joint({"lam": mu}, {"lam": eta}, {}, j.data)
    np.testing.assert_allclose(float(value), prior + lik, rtol=1e-12)


def test_two_component_mixture_gate():
    x = np.array([-2.1, -1.9, 2.2, 0.1])
    _, plan, j = joint_of("""model m
dim N
const K = 2
data x: real[N]
for k in range(K) { mu[k] ~ Normal(0, precision = 0.1) }
for n in range(N) {
    z[n] ~ Categorical(fill(0.5, K))
    x[n] ~ Normal(mu[z[n]], precision = 1)
}
""", {"x": x}, {"N": 4}, {"K": 2})
    m, v = np.array([-2.0, 2.0]), np.array([0.1, 0.2])
    eta_mu, mu_mu = stats("Normal", (m / v, -0.5 / v))
    r = np.array([[0.9, 0.1], [0.8, 0.2], [0.05, 0.95], [0.5, 0.5]])
    eta_z, mu_z = stats("Categorical", (np.log(r),))
    np.testing.assert_allclose(np.asarray(mu_z.onehot), r, rtol=1e-12)
    e1, e2 = m, v + m**2
    prior_mu = np.sum(0.5 * np.log(0.1) - 0.5 * LOG2PI - 0.5 * 0.1 * e2)
    prior_z = np.sum(r * np.log(0.5))
    gate = np.sum(r * (-0.5 * LOG2PI - 0.5 * (x[:, None] ** 2 - 2 * x[:, None] * e1[None] + e2[None])))
    value = j.expected_log_joint({"mu": mu_mu, "z": mu_z}, {"mu": eta_mu, "z": eta_z}, {}, j.data)
    np.testing.assert_allclose(float(value), prior_mu + prior_z + gate, rtol=1e-12)
    # The gate is affine in E[onehot(z_n)]: its gradient is E[log N(x_n | mu_k, 1)] per (n, k).
    import jax

    g = jax.grad(lambda oz: j.expected_log_joint({"mu": mu_mu, "z": type(mu_z)(oz)}, {"mu": eta_mu, "z": eta_z},
                                                 {}, j.data))(mu_z.onehot)
    per = -0.5 * LOG2PI - 0.5 * (x[:, None] ** 2 - 2 * x[:, None] * e1[None] + e2[None]) + np.log(0.5)
    np.testing.assert_allclose(np.asarray(g), per, rtol=1e-12)
