"""Uses of vemppl written from docs/language.md, cli.md, engine.md and the README alone (round 12
of the outsider checks).  Each test first failed on the code before its fix.
"""

import numpy as np
import pytest
from scipy import stats
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


# --- to_arviz of a change-point model -----------------------------------------------------------
# language.md's change point `lam[side[s, t]]` with an unplated `s ~ Categorical(...)`: the
# pointwise log-likelihood summed the unplated latent out through code that assumed `z[n]`
# (before: AttributeError 'NoneType' object has no attribute 'event_rank', then 'Name' object
# has no attribute 'indices').

T_CP = 12


@pytest.fixture(scope="module")
def change_point():
    rng = np.random.default_rng(8)
    y = np.concatenate([rng.poisson(1.0, 7), rng.poisson(6.0, 5)])
    side = (np.arange(T_CP)[None, :] >= np.arange(T_CP)[:, None]).astype(int)  # side[s, t] = [t >= s]
    m = vp.parse("model cp\ndim T\ndata y: count[T]\ndata side: cat(2)[T, T]\ns ~ Categorical(fill(1.0 / T, T))\n"
                 "for k in range(2) { lam[k] ~ Gamma(1.0, 0.2) }\nfor t in range(T) { y[t] ~ Poisson(lam[side[s, t]]) }")
    return vp.fit(m, data={"y": y, "side": side}), y, side


def test_to_arviz_of_a_change_point_sums_the_unplated_latent_out(change_point):
    fit, y, side = change_point
    T = T_CP
    idata = fit.to_arviz(draws=3, seed=0, predictive_draws=0)
    lam = idata.posterior["lam"].values[0]  # [draw, 2]
    got = idata.log_likelihood["y"].values[0]  # one value per draw: the whole series
    for d in range(3):
        logpois = y * np.log(lam[d][side]) - lam[d][side] - gammaln(y + 1)  # [s, t]
        np.testing.assert_allclose(got[d], logsumexp(np.log(1.0 / T) + logpois.sum(1)), rtol=1e-10)


# cli.md: `predict --density` is Monte Carlo where not exact, the globals drawn from q.  A
# categorical global (the change point `s`) was drawn as an integer that the gate `lam[side[s, t]]`
# could not read (before: internal error KeyError: 's', exit 1).

def test_predictive_density_of_a_change_point_draws_its_categorical_global(change_point):
    fit, y, side = change_point
    d = fit.predictive_density({"y": y, "side": side}, samples=200, seed=0)
    assert d.method == "monte-carlo"
    # exact: log Σ_s q(s) NegBin(y_t | q(lam[side[s, t]])) per point, q(lam) Gamma
    q = np.asarray(fit.posterior["s"].probs)
    a, b = np.asarray(fit.posterior["lam"].concentration), np.asarray(fit.posterior["lam"].rate)
    nb = stats.nbinom(a, b / (b + 1)).logpmf(y[:, None])  # [t, k]
    exact = logsumexp(np.log(q)[:, None] + nb[np.arange(T_CP)[None, :], side], axis=0)
    np.testing.assert_allclose(np.asarray(d), exact, atol=0.05)  # 200 draws (measured: 0.014)


# --- known probabilities of 0 or 1 --------------------------------------------------------------
# language.md's `simplex` type allows zeros and a `Bernoulli(p)` a constant p; a category of known
# probability 0 with a count of 0 (or p = 1 with every outcome 1) has probability 1, but its term
# was 0 · log 0 = nan (before: a `data` error "the ELBO became nan").

def test_known_zero_probabilities_with_zero_counts_add_nothing():
    from scipy.stats import binom, multinomial
    X, w = np.array([[5, 0, 0], [3, 2, 0]]), np.array([0.5, 0.5, 0.0])
    m = vp.parse("model b\ndim N, V\ndata X: count[N, V]\ndata w: simplex[V]\nfor n in range(N) { X[n] ~ Multinomial(5, w) }")
    assert vp.fit(m, data={"X": X, "w": w}).elbo == pytest.approx(multinomial(5, w).logpmf(X).sum(), rel=1e-12)
    m = vp.parse("model b\ndim N\nconst p = 0.0\ndata k: count[N]\nfor n in range(N) { k[n] ~ Binomial(3, p) }")
    assert vp.fit(m, data={"k": np.array([0, 0])}).elbo == pytest.approx(binom(3, 0.0).logpmf([0, 0]).sum(), abs=1e-12)
    m = vp.parse("model b\ndim N\nconst p = 1.0\ndata b: bool[N]\nfor n in range(N) { b[n] ~ Bernoulli(p) }")
    assert vp.fit(m, data={"b": np.array([1, 1, 1])}).elbo == 0.0


# --- a Dirichlet's value with an entry 0 ---------------------------------------------------------
# The `simplex` type allows an entry 0, where a Dirichlet's log density is infinite or nan (before:
# "the ELBO became nan ... the data may be badly scaled or a prior improper"); now a `data` error
# naming the entry.

def test_a_zero_entry_under_a_dirichlet_is_named():
    m = vp.parse("model a\ndim N, K\ndata p: simplex[N, K]\nc ~ Gamma(2.0, 1.0)\nfor n in range(N) { p[n] ~ Dirichlet(fill(c, K)) }")
    with pytest.raises(vp.VemError, match=r"'p' has an entry 0 where Dirichlet draws it.*index \(1, 0\)") as e:
        vp.fit(m, data={"p": np.array([[0.5, 0.5], [0.0, 1.0]])})
    assert e.value.kind == "data" and e.value.span.line == 5


# --- a refused init= must not abort the interpreter ----------------------------------------------
# language.md: an init= that is not the latent's shape is a `data` error.  It was raised while the
# sweep compiled on a daemon thread (engine/warm.py), which the interpreter then killed inside XLA
# at exit: "terminate called after throwing an instance of ''", exit status 134.

def test_a_refused_init_leaves_the_process_to_exit_cleanly():
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = ("import numpy as np, vemppl as vp\n"
            "m = vp.parse('model g\\ndim N\\nconst K = 2\\ndata y: real[N]\\npi ~ Dirichlet(ones(K))\\n"
            "for k in range(K) { mu[k] ~ Normal(0.0, 10.0) }\\n"
            "for n in range(N) { z[n] ~ Categorical(pi)\\n y[n] ~ Normal(mu[z[n]], 1.0) }')\n"
            "try:\n    vp.fit(m, data={'y': np.linspace(-1, 1, 50)}, init={'z': np.zeros(7, int)})\n"
            "except vp.VemError as e:\n    print(e.kind)\n")
    env = {**os.environ, "PYTHONPATH": str(Path(vp.__file__).parents[1])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert (out.returncode, out.stdout.strip()) == (0, "data"), out.stderr[-500:]


# --- EM for a mixture whose components are params that start equal ----------------------------
# language.md: `param NAME: TYPE = INIT` (a scalar fills the shape), and a mixture's z starts from
# k-means++ seeds.  The sweep updated z from the params before their first M-step, so params equal
# in every component erased the seeds and EM stayed at the symmetric point (before: a = [0.88, 0.88],
# b = [0.75, 0.75] on two well-separated Beta components, ELBO 3.2; the M-step now runs first).

def test_em_of_a_beta_mixture_leaves_equal_starting_params():
    from scipy import stats as st
    from scipy.optimize import minimize

    rng = np.random.default_rng(7)
    z = rng.integers(0, 2, 120)
    y = rng.beta(np.array([2.0, 10.0])[z], np.array([8.0, 2.0])[z])
    m = vp.parse("model bmix\ndim N\nconst K = 2\ndata y: unit[N]\nparam a: pos[K] = 2.0\nparam b: pos[K] = 2.0\n"
                 "pi ~ Dirichlet(ones(K))\nfor n in range(N) { z[n] ~ Categorical(pi)\n y[n] ~ Beta(a[z[n]], b[z[n]]) }")
    fit = vp.fit(m, data={"y": y}, seed=0)
    order = np.argsort(fit.params["a"])
    got = np.r_[np.asarray(fit.params["a"])[order], np.asarray(fit.params["b"])[order]]

    def nll(th):  # the mixture's marginal likelihood, maximised directly (weights w, 1 - w)
        a, b, w = np.exp(th[:2]), np.exp(th[2:4]), 1 / (1 + np.exp(-th[4]))
        return -np.log(w * st.beta(a[0], b[0]).pdf(y) + (1 - w) * st.beta(a[1], b[1]).pdf(y)).sum()
    ml = minimize(nll, np.r_[np.log([1.0, 5.0, 5.0, 1.0]), 0.0]).x
    np.testing.assert_allclose(got, np.exp(ml[:4]), rtol=1e-3)  # measured: 1.1e-4
