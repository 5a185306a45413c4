"""Models the random-model generator (tests/_random_models.py, run offline over thousands of
draws) found failing, each as its text: they fit, or stop at a located error naming the right
statement, where they raised an internal error before."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import vemppl as vp


@pytest.fixture(autouse=True, scope="module")
def _fast_compiles():
    """XLA's optimisation passes off, as for the random-model test (what is tested happens in
    Python and tracing); jit caches cleared after, as the option is not in their key."""
    old = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", old)
    jax.clear_caches()


def _fit(text, data, **kw):
    return vp.fit(vp.parse(text, filename="found.vem"), data=data, seed=0, **kw)


def test_a_gaussian_chain_beside_an_amortised_latent_fits():
    # The chain's prior is read off its own factors with the other blocks at their means; the
    # amortised latent was drawn there with no key: TypeError (unexpected PRNG key type None).
    text = """model m
dim N
data yv: real[N]
param dec: mlp(tanh)[1, 1, 1]
param enc: mlp(tanh)[1, 1, 2]
b ~ Normal(0.0, 1.0)
s[0] ~ Normal(0.0, 10.0)
for t in range(1, N) { s[t] ~ Normal(0.5 * s[t-1] + b, precision = 4.0) }
for n in range(N) { h[n] ~ MvNormal(zeros(1), eye(1)) }
for n in range(N) { yv[n] ~ Normal(dec(h[n])[0], 1.0) }
for n in range(N) { q(h[n]) = enc(yv[n] * ones(1)) }
"""
    fit = _fit(text, {"yv": np.array([0.5, -1.0, 2.0])}, max_iter=1)
    assert np.isfinite(fit.elbo)
    # Mean-field q(b): its precision is the prior's 1 plus 4 from each of the N - 1 = 2 transitions.
    np.testing.assert_allclose(fit.posterior["b"].variance, 1.0 / 9.0, rtol=1e-9)


def test_a_categorical_chain_whose_first_step_reads_a_nonlinear_function_of_latents_fits():
    # The chain's number of categories was read off the mean of softmax(u), which a Monte
    # Carlo factor does not offer: an unsupported error at no place ("E[E of softmax(...)]").
    text = """model m
dim N
const K = 2
data y: real[N]
for k in range(K) { u[k] ~ Gamma(2.0, 1.0) }
for k in range(K) { A[k] ~ Dirichlet(fill(2.0, K)) }
for k in range(K) { mu[k] ~ Normal(0.0, 1.0) }
z[0] ~ Categorical(softmax(u))
for t in range(1, N) { z[t] ~ Categorical(A[z[t-1]]) }
for n in range(N) { y[n] ~ Normal(mu[z[n]], 1.0) }
"""
    fit = _fit(text, {"y": np.array([0.5, -1.0, 2.0])}, max_iter=2)
    assert np.all(np.isfinite(fit.elbo_trace))
    # q(z) has K = 2 states at each of the N = 3 steps: its marginals are distributions.
    marginals = np.asarray(fit.posterior["z"].probs)
    assert marginals.shape == (3, 2)
    np.testing.assert_allclose(marginals.sum(-1), 1.0, rtol=1e-9)


def test_a_latent_scalar_times_a_matrix_as_a_covariance_fits_by_monte_carlo():
    # MvNormal(0, u * eye(D)), u ~ Gamma: E[log p] needs E[1/u], no statistic of a Gamma, so the
    # general path draws u. It could not draw a ScalarTimesMatrix (an unsupported error), and its
    # non-conjugacy went unflagged (q(u) "closed-form CAVI", an ELBO that fell).
    text = """model m
dim N
const D = 2
data y: real[N, D]
u ~ Gamma(3.0, 2.0)
for n in range(N) { y[n] ~ MvNormal(zeros(D), u * eye(D)) }
"""
    y = np.array([[0.5, -1.0], [2.0, 0.3], [-0.4, 1.2]])
    fit = _fit(text, {"y": y}, max_iter=40)
    assert np.all(np.diff(fit.elbo_trace) >= -1e-9)
    # The Gamma q(u) maximising the exact ELBO (E[1/u] = b/(a-1), E[log u] = psi(a) - log b),
    # found by scipy's Nelder-Mead: Gamma(6.4514, 4.5022), mean 1.43292; 64 fixed draws give
    # the Monte Carlo optimum within 1%.
    np.testing.assert_allclose(fit.posterior["u"].mean, 1.43292, rtol=0.01)


def test_a_non_statistic_moment_read_over_an_empty_loop_is_zero():
    # range(2, N) at N = 2 is empty (docs: a loop's end may equal its start); the factor reads
    # E[u²] of a Gamma (a moment through F(eta)^-1, families/mean_map.py) on a view of no
    # elements, whose reshape to (0, -1) raised ZeroDivisionError.
    text = """model m
dim N
data ar: real[N]
for n in range(N) { u[n] ~ Exponential(1.0) }
for n in range(2, N) { ar[n] ~ Normal(u[n] * ar[n-1], 1.0) }
"""
    fit = _fit(text, {"ar": np.array([0.5, -1.0])}, max_iter=2)
    # No factor observes anything: q is the prior and the ELBO (the log evidence) is 0.
    np.testing.assert_allclose(fit.elbo, 0.0, atol=1e-9)
    np.testing.assert_allclose(fit.posterior["u"].mean, [1.0, 1.0], rtol=1e-9)


def test_a_closed_form_param_mode_on_its_support_boundary_stays_finite():
    # One Bernoulli observation y = 1: the unit param's Beta mode is y/1 = 1, where
    # 0 * log(1 - p) is nan ("the ELBO became nan at iteration 1", at no place). The marginal
    # likelihood p is maximised on the boundary, sup = 1: the ELBO is log 1 = 0 (q(u) = its prior).
    text = """model m
param a: real
data y: bool
param p: unit = 0.25
u ~ Bernoulli(logits = a)
y ~ Bernoulli(p)
"""
    fit = _fit(text, {"y": np.array(1)}, max_iter=3)
    np.testing.assert_allclose(fit.elbo, 0.0, atol=1e-12)
    assert 1.0 - 1e-12 < float(fit.params["p"]) < 1.0


def test_a_non_finite_first_sweep_is_a_data_error_at_the_statement_whose_term_is_not_finite():
    # exp(1000) overflows: the error named the statement in its text but had no line.
    text = """model m
dim N
data x: real[N]
data y: real[N]
mu ~ Normal(0.0, 1.0)
for n in range(N) { y[n] ~ Normal(mu, precision = exp(x[n])) }
"""
    with pytest.raises(vp.VemError) as err:
        _fit(text, {"x": np.array([1000.0, 0.0]), "y": np.array([0.5, 1.0])}, max_iter=2)
    assert (err.value.kind, err.value.file, err.value.line) == ("data", "found.vem", 6)


def test_a_categorical_drawn_from_a_constant_row_is_no_admixture():
    # s ~ Categorical(A[1]) reads one fixed row of A: it was taken for an admixture (theta[doc[i]]),
    # whose local/global start then refused the chain z along the data plate ("'z' is not indexed
    # by it first").
    text = """model m
dim N
data y: pos[N]
for k in range(2) { A[k] ~ Dirichlet(ones(2)) }
z[0] ~ Categorical(fill(0.5, 2))
for t in range(1, N) { z[t] ~ Categorical(A[z[t-1]]) }
s ~ Categorical(A[1])
lam ~ Gamma(1.0, 1.0)
for n in range(N) { y[n] ~ Exponential(lam) }
"""
    from vemppl.compiler import compile_model

    assert compile_model(vp.parse(text)).start == "prior"
    fit = _fit(text, {"y": np.array([1.0, 0.5, 2.0])}, max_iter=3)
    assert np.all(np.diff(fit.elbo_trace) >= -1e-9)
    # lam is conjugate and alone in its factors: q(lam) = Gamma(1 + N, 1 + sum y) exactly.
    np.testing.assert_allclose(fit.posterior["lam"].mean, 4.0 / 4.5, rtol=1e-9)


def test_a_network_applied_to_a_param_is_a_known_value():
    # net(p) of a point param: a fixed value to the fit, but the compiler's probe (params as
    # point masses) refused it: "the network net reads 'p', which has no amortised posterior".
    text = """model m
dim N
const D = 2
data y: real[N, D]
param p: real[D]
param net: mlp(tanh)[D, 3, D]
mu ~ MvNormal(net(p), eye(D))
for n in range(N) { y[n] ~ MvNormal(mu, eye(D)) }
"""
    y = np.array([[0.5, -0.3], [0.4, -0.2], [0.3, -0.4]])
    fit = _fit(text, {"y": y}, max_iter=3)
    assert np.all(np.diff(fit.elbo_trace) >= -1e-9)
    # Given the params, q(mu) is the exact conjugate posterior N((m + sum y) / (1 + N), I / (1 + N)),
    # m = net(p) = tanh(p W0 + b0) W1 + b1 computed here in NumPy (from the params of the last
    # M-step, one Adam move after the q(mu) update: its mean to 0.01).
    np.testing.assert_allclose(fit.posterior["mu"].covariance_matrix, np.eye(2) / 4.0, rtol=1e-9)
    w, p = fit.params["net"], np.asarray(fit.params["p"])
    m = np.tanh(p @ np.asarray(w["W0"]) + np.asarray(w["b0"])) @ np.asarray(w["W1"]) + np.asarray(w["b1"])
    np.testing.assert_allclose(fit.posterior["mu"].mean, (m + y.sum(0)) / 4.0, atol=0.01)


def test_an_admixture_beside_data_led_by_another_dim_splits_its_own_plate():
    # LDA's default start (local/global over the data plate) looked for one leading dim among
    # all observed arrays and found M and R: an unsupported error at no place. It splits the
    # admixture's own plate, M.
    text = """model lda2
dim M, D, V, R
const K = 2
data doc: cat(D)[M]
data word: cat(V)[M]
data r: real[R]
for k in range(K) { beta[k] ~ Dirichlet(fill(0.5, V)) }
for d in range(D) { theta[d] ~ Dirichlet(fill(0.5, K)) }
for i in range(M) {
    z[i] ~ Categorical(theta[doc[i]])
    word[i] ~ Categorical(beta[z[i]])
}
mu ~ Normal(0.0, 1.0)
for j in range(R) { r[j] ~ Normal(mu, 1.0) }
"""
    data = {"doc": np.array([0, 0, 1, 1, 1]), "word": np.array([0, 1, 2, 1, 0]), "r": np.array([0.3, 1.0])}
    fit = _fit(text, data, max_iter=2)
    # mu is alone with r: q(mu) = N((0.3 + 1.0) / 3, 1 / 3), the exact posterior.
    np.testing.assert_allclose(fit.posterior["mu"].mean, 1.3 / 3.0, rtol=1e-9)


def test_a_vector_param_read_in_one_coordinate_keeps_the_other():
    # u ~ Normal(dot(eye(D)[0], p), 1) reads p[0] only: the closed-form (Normal mode) M-step
    # solved a singular system, 0/0 in p[1] ("the ELBO became nan at iteration 1").
    text = """model m
const D = 2
data y: real
param p: real[D] = 0.5
u ~ Normal(dot(eye(D)[0], p), precision = 1.0)
y ~ Normal(u, 1.0)
"""
    fit = _fit(text, {"y": np.array(1.5)}, max_iter=400)
    # Marginally y ~ N(p[0], 2): the maximum-likelihood p[0] is y, the ELBO there log N(0; 0, 2).
    np.testing.assert_allclose(fit.params["p"], [1.5, 0.5], atol=1e-3)
    np.testing.assert_allclose(fit.elbo, -0.5 * np.log(4.0 * np.pi), atol=1e-6)


def test_a_random_matrix_times_a_known_vector_is_rows_times_a_vector():
    # W @ c with W's rows MvNormal and c a const vector was read as a dot product of two
    # vectors, whose outer moment then failed: AttributeError ('Dot' has no '_value').
    text = """model m
const D = 2
const c: real[D] = -1.0
data y: real[D]
for j in range(D) { W[j] ~ MvNormal(zeros(D), eye(D)) }
y ~ MvNormal(W @ c, eye(D))
"""
    y = np.array([0.5, -1.0])
    fit = _fit(text, {"y": y}, max_iter=2)
    # Each row's posterior is exact: precision I + c cᵀ, mean (I + c cᵀ)⁻¹ c y_i; the ELBO is
    # then the log evidence, y_i ~ N(0, 1 + |c|²) independently.
    c = np.array([-1.0, -1.0])
    prec = np.eye(2) + np.outer(c, c)
    np.testing.assert_allclose(fit.posterior["W"].mean, np.linalg.solve(prec, np.outer(c, y)).T, rtol=1e-9)
    np.testing.assert_allclose(fit.elbo, np.sum(-0.5 * np.log(2 * np.pi * 3.0) - y**2 / 6.0), rtol=1e-9)


def test_a_random_vector_times_a_known_matrix_is_a_linear_map():
    # u @ Wc of Gamma latents u[j] was "the moment E[(@)] ... not available"; Wc @ u fitted.
    # u @ Wc is transpose(Wc) @ u: with the symmetric Wc both spellings are one model (one plan).
    text = """model m
dim N
const D = 2
const Wc: real[D, D] = 0.5
data y: real[N, D]
for j in range(D) { u[j] ~ Gamma(2.0, 1.0) }
v ~ MvNormal(PRODUCT, eye(D))
for n in range(N) { y[n] ~ MvNormal(v, eye(D)) }
"""
    from vemppl.compiler import compile_model

    plans = [compile_model(vp.parse(text.replace("PRODUCT", p))) for p in ("u @ Wc", "Wc @ u")]
    assert [b.update for b in plans[0].blocks] == [b.update for b in plans[1].blocks]
    fit = _fit(text.replace("PRODUCT", "u @ Wc"), {"y": np.array([[0.5, 1.0], [1.5, 0.2]])}, max_iter=2)
    # Its prior mean reads E[u] through the map: q(v)'s precision is the prior's I plus N I.
    np.testing.assert_allclose(fit.posterior["v"].covariance_matrix, np.eye(2) / 3.0, rtol=1e-9)


CHAIN_UNDER_A_PARAM = """model m
dim N
param p: pos
data ar: real[N]
s[0] ~ Normal(0.0, 10.0)
for t in range(1, N) { s[t] ~ Normal(0.5 * s[t-1], 1.0) }
for n in range(1, N) { ar[n] ~ Normal(((s[n]) ** 2) * ar[n-1], precision = p) }
"""


def test_a_nonlinear_read_of_chain_steps_over_part_of_the_chain_beside_a_param():
    """``s[n] ** 2`` for n in 1..N-1 of a chain over 0..N-1, with a param precision.  Its
    M-step read the factor with p random, which sent it to Monte Carlo, whose draws of the
    whole chain were not laid on the factor's steps: an internal broadcasting error.  Now the
    steps are taken from the chain's draws, and the factor is integrated by quadrature with p
    read by its moments, as the E-step does.  Reference: the same model with p fixed at the
    fitted value, whose only random part is the quadrature's (the EM fixed point's E-step)."""
    data = {"ar": np.array([0.5, -1.0, 0.3, 0.8, -0.4])}
    fit = vp.fit(vp.parse(CHAIN_UNDER_A_PARAM), data, progress=False)
    p = float(fit.params["p"])
    fixed = CHAIN_UNDER_A_PARAM.replace("param p: pos\n", "").replace("precision = p", f"precision = {p!r}")
    ref = vp.fit(vp.parse(fixed), data, progress=False)
    assert fit.converged and abs(fit.elbo - ref.elbo) < 1e-6
    np.testing.assert_allclose(fit.posterior["s"].variance, ref.posterior["s"].variance, rtol=2e-3)


def test_a_real_function_of_integer_data_reads_them_as_reals():
    """``sigmoid(m[n])`` with ``m: int[N]``: jax.nn.sigmoid refuses integer arrays (an internal
    TypeError).  Nothing is latent, so the ELBO is the Bernoulli log-likelihood at p = σ(m)."""
    text = ("model intsig\ndim N\ndata m: int[N]\ndata y: bool[N]\n"
            "for n in range(N) { y[n] ~ Bernoulli(probs = sigmoid(m[n])) }\n")
    m, y = np.array([1, -2, 0]), np.array([True, False, True])
    fit = vp.fit(vp.parse(text), {"m": m, "y": y}, progress=False)
    p = 1.0 / (1.0 + np.exp(-m))
    assert abs(fit.elbo - np.sum(np.where(y, np.log(p), np.log1p(-p)))) < 1e-12
