"""Hidden Markov models: the Markov-chain block against brute force and against hmmlearn.

What is compared, and how the two sides are put on the same footing:

* **Chain marginals** of ``MarkovChain`` (forward algorithm as log-normaliser, its
  gradient as forward–backward) against enumeration of every path on T ≤ 6, directly
  on random log-potentials and through a fitted model.
* **Variational Gaussian HMM** against ``hmmlearn.vhmm.VariationalGaussianHMM``.
  hmmlearn's prior is Normal–Wishart, ``mu_k | Lam_k ~ N(m0, (beta0 Lam_k)^-1)``, with a
  joint ``q(mu_k, Lam_k)``; models/hmm.vem has independent priors on ``mu`` and ``Lam``,
  which hmmlearn cannot express.  So the exact comparison uses the twin of hmm.vem that
  differs in one line, ``mu[k] ~ MvNormal(zeros(D), precision = beta0 * Lam[k])``, from
  which the compiler makes the same joint block ``q(mu_k, Lam_k)`` (a Normal–Wishart), so
  hmmlearn starts from exactly vemppl's posterior.
  hmm.vem itself is compared with hmmlearn's nearest prior (beta0 = 0.01): the bounds
  then agree to 0.1% but the posteriors only approximately (the priors differ).
* **Bounds.**  hmmlearn's ``monitor_.history`` drops the ``-D/2 log 2 pi`` of every
  Gaussian observation (``term2 = 0`` in ``_compute_subnorm_log_likelihood``); we add
  ``-T D/2 log 2 pi`` back.  Its entry is computed after an E-step and before the
  M-step of the same iteration, which at convergence (tol 1e-10) is the same point.
* **Posterior state marginals** of hmmlearn are read from its variational E-step
  (``_fit_log`` with the sub-normalised parameters), not from ``predict_proba``, which
  uses plug-in posterior means.
* **Same initialisation**: vemppl is fitted first; hmmlearn starts from vemppl's
  posterior (``init_params=""``) and iterates to its own convergence, so both report
  the same fixed point, and labels need no alignment.
* **Plain EM** (``param`` transition, initial, means and per-dimension precisions,
  ``diag`` covariance) against ``hmmlearn.hmm.GaussianHMM`` with its MAP terms switched
  off (``covars_prior=0``), from the same initial parameters (``fit(..., init=...)``).
"""

import itertools

import numpy as np
import pytest
from scipy.special import digamma, logsumexp

import jax
import jax.numpy as jnp

import vemppl
from conftest import assert_elbo_monotone
from dsl_models import MODELS_DIR
from vemppl.families.markov_chain import ChainStats, MarkovChain
from vemppl.families.normal_wishart import NormalWishart

hmmlearn = pytest.importorskip("hmmlearn")
from hmmlearn.hmm import GaussianHMM  # noqa: E402
from hmmlearn.vhmm import VariationalCategoricalHMM, VariationalGaussianHMM  # noqa: E402

HMM_NW = """
model hmm_nw
dim T, D
const K = 4
const beta0 = 1.0
data x: real[T, D]

pi0 ~ Dirichlet(ones(K))
for k in range(K) {
    A[k]   ~ Dirichlet(ones(K))
    Lam[k] ~ Wishart(D + 2, eye(D))
    mu[k]  ~ MvNormal(zeros(D), precision = beta0 * Lam[k])
}
z[0] ~ Categorical(pi0)
for t in range(1, T) { z[t] ~ Categorical(A[z[t-1]]) }
for t in range(T)    { x[t] ~ MvNormal(mu[z[t]], precision = Lam[z[t]]) }
"""

HMM_EM = """
model hmm_em
dim T, D
const K = 3
data x: real[T, D]
param pi0: simplex[K]
param A: simplex[K, K]
param mu: real[K, D]
param prec: pos[K, D]

z[0] ~ Categorical(pi0)
for t in range(1, T) { z[t] ~ Categorical(A[z[t-1]]) }
for t in range(T) { for d in range(D) { x[t, d] ~ Normal(mu[z[t], d], precision = prec[z[t], d]) } }
"""

HMM_CAT_SEQS = """
model hmm_categorical_sequences
dim S, T, V
const K = 3
data x: cat(V)[S, T]

pi0 ~ Dirichlet(ones(K))
for k in range(K) {
    A[k] ~ Dirichlet(ones(K))
    B[k] ~ Dirichlet(ones(V))
}
for s in range(S) {
    z[s, 0] ~ Categorical(pi0)
    for t in range(1, T) { z[s, t] ~ Categorical(A[z[s, t-1]]) }
    for t in range(T) { x[s, t] ~ Categorical(B[z[s, t]]) }
}
"""

TRANS = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.05, 0.15, 0.8]])


def sample_states(rng, T, trans=TRANS):
    z = [rng.integers(len(trans))]
    for _ in range(1, T):
        z.append(rng.choice(len(trans), p=trans[z[-1]]))
    return np.array(z)


def gaussian_data(seed=1, T=600):
    rng = np.random.default_rng(seed)
    z = sample_states(rng, T)
    means = np.array([[0.0, 0.0], [2.5, 0.0], [0.0, 2.5]])
    return means[z] + rng.standard_normal((T, 2))


def categorical_data(rng, T):
    emit = np.array([[0.7, 0.1, 0.1, 0.05, 0.05], [0.05, 0.1, 0.7, 0.1, 0.05], [0.05, 0.05, 0.1, 0.1, 0.7]])
    z = sample_states(rng, T)
    return np.array([rng.choice(5, p=emit[k]) for k in z])


def brute_force(psi, phi):
    """Marginals, pairwise marginals and log-normaliser by summing over all K^T paths."""
    T, K = psi.shape
    paths = np.array(list(itertools.product(range(K), repeat=T)))
    logp = psi[np.arange(T), paths].sum(1) + phi[np.arange(T - 1), paths[:, :-1], paths[:, 1:]].sum(1)
    log_z = logsumexp(logp)
    w = np.exp(logp - log_z)
    onehot = np.eye(K)[paths]  # [paths, T, K]
    marg = np.einsum("p,ptk->tk", w, onehot)
    pair = np.einsum("p,ptk,ptl->tkl", w, onehot[:, :-1], onehot[:, 1:])
    return marg, pair, log_z


def variational_hmm_posterior(h, x, lengths=None):
    """hmmlearn's q(z) marginals (its variational E-step), sequence by sequence."""
    h._estep_begin()
    ends = np.cumsum(lengths if lengths is not None else [len(x)])
    return np.concatenate([h._fit_log(x[a:b])[2] for a, b in zip(np.r_[0, ends[:-1]], ends)])


# ---- the Markov-chain family against enumeration ------------------------------------


def test_chain_stats_match_brute_force_on_random_potentials():
    # Jitted, as the engine runs them: one program per shape instead of one per operation
    # (op by op, this test compiled every primitive of the forward-backward pass: 13.7 s).
    stats_and_log_z = jax.jit(lambda eta: (MarkovChain.expected_stats(eta), MarkovChain.log_normalizer(eta)))
    entropy = jax.jit(MarkovChain.entropy)
    rng = np.random.default_rng(0)
    for T, K in [(1, 3), (2, 2), (4, 3), (6, 3)]:
        psi = rng.normal(size=(2, T, K)) * 2.0  # two independent chains (a leading axis)
        phi = rng.normal(size=(2, max(T - 1, 0), K, K)) * 2.0
        eta = ChainStats(jnp.asarray(psi), jnp.asarray(phi))
        stats, log_z = stats_and_log_z(eta)
        for b in range(2):
            marg, pair, lz = brute_force(psi[b], phi[b])
            np.testing.assert_allclose(stats.onehot[b], marg, atol=1e-12)
            np.testing.assert_allclose(stats.pair[b], pair, atol=1e-12)
            np.testing.assert_allclose(log_z[b], lz, rtol=1e-12)
            # The entropy used in the ELBO: A(η) − ⟨η, E[T]⟩ equals −Σ p log p over paths.
            ent = float(entropy(ChainStats(eta.onehot[b], eta.pair[b])))
            ent_bf = lz - (psi[b] * marg).sum() - (phi[b] * pair).sum()
            np.testing.assert_allclose(ent, ent_bf, rtol=1e-10)


def test_chain_with_forbidden_transitions_matches_brute_force():
    """A left-to-right chain: Φ = −∞ below the diagonal (a ``param`` transition matrix with
    zeros gives exactly this), so most paths have probability zero."""
    rng = np.random.default_rng(1)
    T, K = 6, 3
    psi = rng.normal(size=(T, K)) * 3.0
    phi = np.where(np.triu(np.ones((K, K), bool)), rng.normal(size=(T - 1, K, K)), -np.inf)
    marg, pair, lz = brute_force(psi, phi)
    eta = ChainStats(jnp.asarray(psi), jnp.asarray(phi))
    stats = MarkovChain.expected_stats(eta)
    np.testing.assert_allclose(stats.onehot, marg, atol=1e-12)
    np.testing.assert_allclose(stats.pair, pair, atol=1e-12)
    np.testing.assert_allclose(MarkovChain.log_normalizer(eta), lz, rtol=1e-12)
    assert np.all(np.asarray(stats.pair)[:, np.tril_indices(K, -1)[0], np.tril_indices(K, -1)[1]] == 0.0)


def test_chain_beyond_probability_space_falls_back_to_log_space():
    """Two states that never switch, the data alternating between them 1000 nats apart: in
    probability space every step's normaliser underflows to zero (each path is e^−1000
    below the step's best state), so the chain must take the log-space recursions and
    still agree with enumeration."""
    from vemppl.families.markov_chain import _forward_scaled

    rng = np.random.default_rng(4)
    T = 5
    psi = np.where(np.arange(T)[:, None] % 2 == np.arange(2)[None, :], 0.0, -1000.0) + rng.normal(size=(T, 2))
    phi = np.broadcast_to(np.array([[0.0, -np.inf], [-np.inf, np.log(0.5)]]), (T - 1, 2, 2))
    assert not bool(_forward_scaled(jnp.asarray(psi), jnp.asarray(phi))[-1])  # the scaled pass refuses it
    marg, pair, lz = brute_force(psi, phi)
    eta = ChainStats(jnp.asarray(psi), jnp.asarray(phi))
    stats = MarkovChain.expected_stats(eta)
    np.testing.assert_allclose(MarkovChain.log_normalizer(eta), lz, rtol=1e-12)
    np.testing.assert_allclose(stats.onehot, marg, atol=1e-12)
    np.testing.assert_allclose(stats.pair, pair, atol=1e-12)


def scaled_forward_backward(psi, phi):
    """Rabiner's (1989, §V.A) scaled forward–backward in probability space, in NumPy: the
    reference for chains too long to enumerate."""
    T, K = psi.shape
    shift = psi.max(1, keepdims=True)
    e, trans = np.exp(psi - shift), np.exp(phi)
    alpha, beta, c = np.empty((T, K)), np.empty((T, K)), np.empty(T)
    a = e[0]
    for t in range(T):
        if t:
            a = (alpha[t - 1] @ trans[t - 1]) * e[t]
        c[t] = a.sum()
        alpha[t] = a / c[t]
    beta[-1] = 1.0
    for t in range(T - 1, 0, -1):
        beta[t - 1] = trans[t - 1] @ (e[t] * beta[t]) / c[t]
    pair = alpha[:-1, :, None] * trans * (e[1:] * beta[1:])[:, None, :] / c[1:, None, None]
    return alpha * beta, pair, np.log(c).sum() + shift.sum()


def test_long_chain_matches_scaled_forward_backward():
    """T = 20000: the log-space messages of ``forward_backward`` are not rescaled step by step,
    so this checks that the marginals still sum to one and agree with the scaled recursion."""
    rng = np.random.default_rng(2)
    T, K = 20_000, 4
    psi = rng.normal(size=(T, K)) * 3.0 - 2.0
    phi = np.broadcast_to(np.log(rng.dirichlet(np.ones(K), size=K)), (T - 1, K, K))
    marg, pair, lz = scaled_forward_backward(psi, phi)
    eta = ChainStats(jnp.asarray(psi), jnp.asarray(phi))
    stats = MarkovChain.expected_stats(eta)
    np.testing.assert_allclose(np.asarray(stats.onehot).sum(-1), 1.0, atol=1e-13)
    np.testing.assert_allclose(stats.onehot, marg, atol=1e-10)
    np.testing.assert_allclose(stats.pair, pair, atol=1e-10)
    np.testing.assert_allclose(MarkovChain.log_normalizer(eta), lz, rtol=1e-12)
    ent = float(MarkovChain.entropy(eta))
    np.testing.assert_allclose(ent, lz - (psi * marg).sum() - (phi * pair).sum(), rtol=1e-9)


def test_fitted_chain_marginals_match_enumeration():
    """A tiny categorical HMM (T = 6): q(z) is exp(E_q[log p(x, z | θ)]) normalised over
    every path, computed by enumeration from the fitted q(θ)."""
    rng = np.random.default_rng(3)
    x = categorical_data(rng, 6)
    fit = vemppl.fit(vemppl.load(MODELS_DIR / "hmm_categorical.vem"), data={"x": x}, dims={"V": 5}, seed=0,
                     max_iter=300, tol=1e-12)
    assert_elbo_monotone(fit.elbo_trace)
    post = fit.posterior
    e_log = lambda c: digamma(c) - digamma(c.sum(-1, keepdims=True))  # noqa: E731
    log_pi0 = e_log(np.asarray(post["pi0"].concentration))
    log_a = e_log(np.asarray(post["A"].concentration))
    log_b = e_log(np.asarray(post["B"].concentration))
    psi = log_b[:, x].T.copy()
    psi[0] += log_pi0
    phi = np.broadcast_to(log_a, (5, 3, 3))
    marg, pair, _ = brute_force(psi, phi)
    # The schedule updates q(z) last, so the final q(z) is optimal for the final q(θ).
    np.testing.assert_allclose(fit.state.mu["z"].onehot, marg, atol=1e-10)
    # One transition matrix for every step: the chain's pairwise statistic is the expected counts.
    np.testing.assert_allclose(fit.state.mu["z"].pair, pair.sum(0), atol=1e-10)


# ---- variational HMMs against hmmlearn ---------------------------------------------


def _vghmm_from(fit, beta0, K, D):
    """A VariationalGaussianHMM with hmm.vem's priors, started at vemppl's posterior."""
    mu = fit.state.mu
    counts = np.asarray(mu["z"].onehot).sum(0)
    h = VariationalGaussianHMM(K, covariance_type="full", init_params="", n_iter=1000, tol=1e-10)
    h.n_features = D
    h.startprob_prior_, h.transmat_prior_ = np.ones(K), np.ones((K, K))
    h.means_prior_, h.beta_prior_ = np.zeros((K, D)), np.full(K, beta0)
    h.dof_prior_ = np.full(K, D + 2.0)
    h.scale_prior_ = np.broadcast_to(np.eye(D), (K, D, D)).copy()  # inverse of Wishart(D + 2, eye(D))'s scale
    h.startprob_posterior_ = np.asarray(fit.posterior["pi0"].concentration)
    h.transmat_posterior_ = np.asarray(fit.posterior["A"].concentration)
    e_lam = np.asarray(fit.mean_params["Lam"]["mean"])
    h.covars_ = np.linalg.inv(e_lam)
    if fit.plan.block("mu").members:  # q(mu, Lam) is hmmlearn's own Normal–Wishart: handed over exactly
        nw = NormalWishart.params_from_natural(fit.state.eta["mu"])
        h.means_posterior_, h.beta_posterior_ = np.asarray(nw["loc"]), np.asarray(nw["beta"])
        h.dof_posterior_, h.scale_posterior_ = np.asarray(nw["concentration"]), np.asarray(nw["rate_matrix"])
        return h
    h.means_posterior_ = np.asarray(mu["mu"].mean)
    h.beta_posterior_ = beta0 + counts
    h.dof_posterior_ = D + 2.0 + counts
    h.scale_posterior_ = np.linalg.inv(e_lam) * h.dof_posterior_[:, None, None]  # so that E[Lam] agrees
    return h


def test_gaussian_hmm_matches_variational_gaussian_hmm():
    x = gaussian_data()
    T, D = x.shape
    K = 3
    const = T * D / 2 * np.log(2 * np.pi)  # hmmlearn leaves this out of its bound

    fit = vemppl.fit(vemppl.parse(HMM_NW), data={"x": x}, consts={"K": K}, seed=0, max_iter=2000, tol=1e-12)
    assert_elbo_monotone(fit.elbo_trace)
    h = _vghmm_from(fit, 1.0, K, D).fit(x)
    bound = h.monitor_.history[-1] - const
    assert abs(fit.elbo - bound) <= 1e-3 * abs(bound), (fit.elbo, bound)  # measured: 1.1e-5 relative
    r = np.asarray(fit.state.mu["z"].onehot)
    np.testing.assert_allclose(r, variational_hmm_posterior(h, x), atol=1e-3)  # measured: 8e-5

    # models/hmm.vem verbatim (independent priors) against hmmlearn's nearest prior.
    fit2 = vemppl.fit(vemppl.load(MODELS_DIR / "hmm.vem"), data={"x": x}, consts={"K": K}, seed=0, max_iter=2000, tol=1e-12)
    assert_elbo_monotone(fit2.elbo_trace)
    h2 = _vghmm_from(fit2, 0.01, K, D).fit(x)
    bound2 = h2.monitor_.history[-1] - const
    assert abs(fit2.elbo - bound2) <= 1e-3 * abs(bound2), (fit2.elbo, bound2)  # measured: 1.2e-4 relative
    r2 = np.asarray(fit2.state.mu["z"].onehot)
    q2 = variational_hmm_posterior(h2, x)
    assert np.abs(r2 - q2).max() < 0.05  # the priors differ, so only approximately (measured 0.018)
    assert np.mean(r2.argmax(1) == q2.argmax(1)) > 0.99


def _vchmm_from(fit, K, V):
    h = VariationalCategoricalHMM(K, n_features=V, init_params="", n_iter=1000, tol=1e-11)
    h.startprob_prior_, h.transmat_prior_ = np.ones(K), np.ones((K, K))
    h.emissionprob_prior_ = np.ones((K, V))
    h.startprob_posterior_ = np.asarray(fit.posterior["pi0"].concentration)
    h.transmat_posterior_ = np.asarray(fit.posterior["A"].concentration)
    h.emissionprob_posterior_ = np.asarray(fit.posterior["B"].concentration)
    return h


def test_categorical_hmm_matches_variational_categorical_hmm():
    """models/hmm_categorical.vem has hmmlearn's priors exactly (all Dirichlet(1))."""
    rng = np.random.default_rng(5)
    x = categorical_data(rng, 800)
    fit = vemppl.fit(vemppl.load(MODELS_DIR / "hmm_categorical.vem"), data={"x": x}, dims={"V": 5}, seed=0,
                     max_iter=2000, tol=1e-12)
    assert_elbo_monotone(fit.elbo_trace)
    h = _vchmm_from(fit, 3, 5).fit(x[:, None])
    bound = h.monitor_.history[-1]  # nothing is left out of a categorical HMM's bound
    assert abs(fit.elbo - bound) <= 1e-6 * abs(bound), (fit.elbo, bound)  # measured: 2e-12 relative
    # measured: 1.2e-5 (both stop on a tolerance, at slightly different points of a slow ascent)
    np.testing.assert_allclose(fit.state.mu["z"].onehot, variational_hmm_posterior(h, x[:, None]), atol=1e-4)


def test_sequences_of_different_lengths_match_hmmlearn_lengths():
    """A plate over sequences (z[s, t] ~ Categorical(A[z[s, t-1]])), padded to the longest
    and masked with mask={"z": t < length[s]}, against hmmlearn's fit(X, lengths)."""
    rng = np.random.default_rng(11)
    lengths = np.array([120, 300, 45, 200, 1])
    S, T = len(lengths), lengths.max()
    present = np.arange(T)[None, :] < lengths[:, None]
    x = np.stack([np.pad(categorical_data(rng, n), (0, T - n)) for n in lengths])
    x_padded_junk = np.where(present, x, rng.integers(0, 5, size=x.shape))

    model = vemppl.parse(HMM_CAT_SEQS)
    fit = vemppl.fit(model, data={"x": x}, mask={"z": present}, dims={"V": 5}, seed=0, max_iter=2000, tol=1e-12)
    assert_elbo_monotone(fit.elbo_trace)
    flat = np.concatenate([x[s, :n] for s, n in enumerate(lengths)])[:, None]
    h = _vchmm_from(fit, 3, 5).fit(flat, lengths)
    bound = h.monitor_.history[-1]
    assert abs(fit.elbo - bound) <= 1e-6 * abs(bound), (fit.elbo, bound)  # measured: 1.4e-12 relative
    r = np.asarray(fit.state.mu["z"].onehot)
    np.testing.assert_allclose(r[present], variational_hmm_posterior(h, flat, lengths), atol=1e-4)  # measured: 9e-6

    # What lies beyond a sequence's end is never read.
    junk = vemppl.fit(model, data={"x": x_padded_junk}, mask={"z": present}, dims={"V": 5}, seed=0,
                      max_iter=2000, tol=1e-12)
    np.testing.assert_allclose(junk.elbo, fit.elbo, rtol=1e-10)


def test_padding_one_sequence_changes_nothing():
    """The masked ELBO is the unpadded ELBO: the absent steps' log K of entropy is removed."""
    rng = np.random.default_rng(2)
    x = categorical_data(rng, 60)
    model = vemppl.parse(HMM_CAT_SEQS)
    # tol 1e-14: the optimum is flat along some responsibilities (an ELBO gap of 3e-10 nats moves
    # them by 1e-5), so two fits agree to 1e-6 only when both are that close to it.  Plain sweeps:
    # this HMM has several optima, and the accelerated sweeps (engine/accel.py) of the two fits,
    # whose traces differ in their last bits, took the unpadded one to another (-107.024 against
    # -106.961 with SQUAREM's step capped); plain, both reach -106.96065161905.
    plain_cavi = vemppl.cavi(accelerate=False)
    plain = vemppl.fit(model, data={"x": x[None]}, dims={"V": 5}, seed=0, max_iter=500, tol=1e-14,
                       algorithm=plain_cavi)
    padded = np.concatenate([x, np.zeros(25, int)])[None]
    present = (np.arange(85) < 60)[None]
    masked = vemppl.fit(model, data={"x": padded}, mask={"z": present}, dims={"V": 5}, seed=0, max_iter=500, tol=1e-14,
                        algorithm=plain_cavi)
    assert_elbo_monotone(masked.elbo_trace)
    np.testing.assert_allclose(masked.elbo, plain.elbo, rtol=1e-9)
    np.testing.assert_allclose(masked.state.mu["z"].onehot[:, :60], plain.state.mu["z"].onehot, atol=1e-6)


def test_mask_on_a_continuous_latent_is_an_error():
    with pytest.raises(vemppl.VemError, match="mask on 'mu'"):
        vemppl.fit(vemppl.parse(HMM_NW), data={"x": gaussian_data(T=20)}, mask={"mu": np.ones((4, 2), bool)})


# ---- plain EM (point parameters) against hmmlearn's GaussianHMM ------------------------


def test_param_hmm_loglik_matches_gaussian_hmm():
    x = gaussian_data(seed=0, T=500)
    T, D = x.shape
    K = 3
    rng = np.random.default_rng(0)
    init = {
        "pi0": np.full(K, 1.0 / K),
        "A": np.full((K, K), 0.1) + 0.7 * np.eye(K),
        "mu": x[rng.choice(T, K, replace=False)],
        "prec": np.ones((K, D)),
    }
    fit = vemppl.fit(vemppl.parse(HMM_EM), data={"x": x}, init=init, seed=0, max_iter=5000, tol=1e-13)
    assert_elbo_monotone(fit.elbo_trace)
    assert fit.plan.param("A").mstep == "closed-form" and fit.plan.param("prec").mstep == "closed-form"

    h = GaussianHMM(K, "diag", covars_prior=0.0, covars_weight=1, init_params="", n_iter=5000, tol=1e-10)
    h.startprob_, h.transmat_, h.means_, h.covars_ = init["pi0"], init["A"], init["mu"], 1.0 / init["prec"]
    h.fit(x)
    loglik = h.score(x)
    # At convergence q(z) is the exact posterior, so the ELBO is the log-likelihood.
    assert abs(fit.elbo - loglik) <= 1e-6 * abs(loglik), (fit.elbo, loglik)  # measured: 6e-14
    p = fit.params
    at_vemppl = GaussianHMM(K, "diag")
    at_vemppl.n_features = D
    at_vemppl.startprob_, at_vemppl.transmat_, at_vemppl.means_ = p["pi0"], p["A"], p["mu"]
    at_vemppl.covars_ = 1.0 / p["prec"]
    assert abs(at_vemppl.score(x) - loglik) <= 1e-6 * abs(loglik)
    np.testing.assert_allclose(p["mu"], h.means_, atol=1e-4)
    np.testing.assert_allclose(p["A"], h.transmat_, atol=1e-4)
