"""Data beyond their declared types (issue #23): totals of count vectors, values past the
int64/float64 ranges, numpy masked arrays, and valid data that used to fail (an HMM with
a sequence of length 1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import vemppl as vp
from vemppl import cli

MODELS = Path(__file__).resolve().parents[1] / "models"

MULTINOMIAL = """model mn
dim N
data y: count[N, 3]
p ~ Dirichlet(fill(1.0, 3))
for n in range(N) { y[n] ~ Multinomial(10, p) }
"""

BINOMIAL = """model bn
dim N
data y: count[N]
p ~ Beta(1, 1)
for n in range(N) { y[n] ~ Binomial(5, p) }
"""

NORMAL_AND_COUNTS = """model g
dim N
data x: real[N]
data k: count[N]
m ~ Normal(0, precision = 1)
for n in range(N) { x[n] ~ Normal(m, precision = 1) }
for n in range(N) { k[n] ~ Poisson(2.0) }
"""


def _error(model, data, **kw):
    with pytest.raises(vp.VemError) as info:
        vp.fit(model, data, max_iter=3, **kw)
    return info.value


def test_multinomial_rows_must_sum_to_the_total():
    m = vp.parse(MULTINOMIAL, filename="mn.vem")
    err = _error(m, {"y": np.array([[3, 3, 4], [5, 5, 1]])})
    assert (err.kind, err.file, err.line, err.column) == ("data", "mn.vem", 5, 28)
    assert "'y'" in err.message and "total_count = 10" in err.message and "sum of 11 at index (1,)" in err.message
    # Rows that do sum to 10 fit; the Dirichlet posterior is the prior plus the counts.
    fit = vp.fit(m, {"y": np.array([[3, 3, 4], [5, 4, 1]])}, max_iter=5)
    np.testing.assert_allclose(np.asarray(fit.posterior["p"].concentration), [1 + 8, 1 + 7, 1 + 5])


def test_binomial_counts_must_not_exceed_the_total():
    err = _error(vp.parse(BINOMIAL, filename="bn.vem"), {"y": np.array([0, 6, 2])})
    assert err.kind == "data" and "'y'" in err.message and "total_count = 5" in err.message
    assert "got 6 at index (1,)" in err.message and err.line == 5


WISHART = """model w
dim N, D
data x: real[N, D]
Lam ~ Wishart(NU, eye(D))
for n in range(N) { x[n] ~ MvNormal(zeros(D), precision = Lam) }
"""


def test_a_wishart_prior_with_too_few_degrees_of_freedom_is_located():
    """Wishart(ν, S) is a distribution only for ν > D − 1; below it the log-normaliser is still
    finite, so the fit ran to a meaningless ELBO.  Which ν is too few depends on D, bound from
    the data: 2 is refused for D = 3 (not above 2) and fits for D = 2, where the posterior
    is the conjugate update ν + N, S⁻¹ + Σ x xᵀ."""
    x = np.random.default_rng(0).normal(size=(40, 3))
    err = _error(vp.parse(WISHART.replace("NU", "2.0"), filename="w.vem"), {"x": x})
    assert (err.kind, err.line, err.column) == ("support", 4, 7)
    assert "'Lam'" in err.message and "concentration = 2" in err.message and "above D − 1" in err.message
    fit = vp.fit(vp.parse(WISHART.replace("NU", "2.0")), {"x": x[:, :2]}, max_iter=5)
    post = fit.posterior["Lam"]
    np.testing.assert_allclose(float(post.concentration), 2.0 + 40)
    np.testing.assert_allclose(np.asarray(post.rate_matrix), np.eye(2) + x[:, :2].T @ x[:, :2], rtol=1e-10)


def test_integers_past_int64_are_refused_not_wrapped():
    g = vp.parse(NORMAL_AND_COUNTS, filename="g.vem")
    err = _error(g, {"x": np.zeros(3), "k": np.array([1, 2**64 - 1, 3], dtype=np.uint64)})
    assert "'k'" in err.message and "64-bit" in err.message and "index (1,)" in err.message and err.line == 4
    err = _error(g, {"x": np.zeros(3), "k": np.array([1.0, 1e20, 3.0])})
    assert "'k'" in err.message and "2**63" in err.message and "index (1,)" in err.message


@pytest.mark.skipif(np.finfo(np.longdouble).max <= np.finfo(np.float64).max, reason="no extended precision here")
def test_extended_floats_past_float64_are_refused_not_made_infinite():
    g = vp.parse(NORMAL_AND_COUNTS, filename="g.vem")
    x = np.array([0.0, 1.0, 2.0], dtype=np.longdouble)
    x[2] = np.longdouble("1e400")
    err = _error(g, {"x": x, "k": np.array([1, 2, 3])})
    assert "'x'" in err.message and "float64" in err.message and "index (2,)" in err.message


def test_real_values_whose_square_overflows_are_refused():
    x = np.array([[0.0, 1.0], [1e154, 2.0], [3.0, 4.0]])
    err = _error(vp.load(MODELS / "gmm.vem"), {"x": x * 2})
    assert err.kind == "data" and "'x'" in err.message and "square overflows" in err.message
    assert "index (1, 0)" in err.message


def test_non_finite_values_name_the_variable_and_index():
    g = vp.parse(NORMAL_AND_COUNTS, filename="g.vem")
    err = _error(g, {"x": np.array([0.0, np.inf, 1.0]), "k": np.array([1, 2, 3])})
    assert "'x'" in err.message and "index (1,)" in err.message
    err = _error(g, {"x": np.zeros(3), "k": np.array([1.0, np.nan, 3.0])})
    assert "'k'" in err.message and "index (1,)" in err.message


def test_numpy_masked_arrays_are_masks():
    g = vp.parse(NORMAL_AND_COUNTS, filename="g.vem")
    x = np.ma.masked_array([1.0, 99.0, 2.0], mask=[False, True, False])
    fit = vp.fit(g, {"x": x, "k": np.array([1, 2, 3])}, tol=1e-12)
    # Normal prior N(0, 1), unit noise precision, observed 1 and 2: posterior mean 3 / 3.
    # (Were the mask ignored, 99 would count: (1 + 99 + 2) / 4 = 25.5.)
    assert float(np.asarray(fit.state.mu["m"][0])) == pytest.approx(1.0, abs=1e-9)
    # A masked entry where no missing value is allowed is refused with its index.
    err = _error(g, {"x": np.zeros(3), "k": np.ma.masked_array([1, 2, 3], mask=[0, 1, 0])})
    assert "'k'" in err.message and "index (1,)" in err.message and "missing" in err.message


def test_masked_array_and_mask_argument_combine():
    g = vp.parse(NORMAL_AND_COUNTS, filename="g.vem")
    x = np.ma.masked_array([1.0, 99.0, 2.0, 50.0], mask=[False, True, False, False])
    fit = vp.fit(g, {"x": x, "k": np.array([1, 2, 3, 4])}, mask={"x": np.array([1, 1, 1, 0], bool)}, tol=1e-12)
    assert float(np.asarray(fit.state.mu["m"][0])) == pytest.approx(1.0, abs=1e-9)


GMM_ONE_POINT = """model g1
dim N, D
const K = 4
data x: real[N, D]
pi ~ Dirichlet(ones(K))
for k in range(K) {
    mu[k]  ~ MvNormal(zeros(D), precision = 0.01 * eye(D))
    Lam[k] ~ Wishart(D + 2, eye(D))
}
for n in range(N) {
    z[n] ~ Categorical(pi)
    x[n] ~ MvNormal(mu[z[n]], precision = Lam[z[n]])
}
"""


def test_hmm_with_a_sequence_of_length_one_fits():
    """With T = 1 there is no transition: the HMM is a one-point mixture whose weights are
    pi0, and q(A) stays at its prior (zero KL), so its ELBO is that mixture's."""
    x = np.array([[0.5, -1.0]])
    hmm = vp.fit(vp.load(MODELS / "hmm.vem"), {"x": x}, tol=1e-12, max_iter=300)
    assert np.isfinite(hmm.elbo)
    assert np.all(np.diff(hmm.elbo_trace) >= -1e-9 * np.abs(hmm.elbo_trace[1:]))
    mix = vp.fit(vp.parse(GMM_ONE_POINT), {"x": x}, tol=1e-12, max_iter=300)
    assert hmm.elbo == pytest.approx(mix.elbo, rel=1e-6)
    np.testing.assert_allclose(np.asarray(hmm.posterior["A"].concentration), np.ones((4, 4)))


def test_hmm_of_length_one_through_the_cli(tmp_path, capsys):
    np.savez(tmp_path / "x.npz", x=np.array([[0.5, -1.0]]))
    code = cli.main(["fit", str(MODELS / "hmm.vem"), "--data", str(tmp_path / "x.npz"),
                     "--out", str(tmp_path / "o"), "--quiet"])
    assert code == 0, capsys.readouterr().err


def test_predict_takes_numpy_masked_arrays():
    """predict reads a masked array as fit does: the masked entry is missing, and a vector
    row with a missing entry drops out whole (elj/evaluate.py), so that row's
    responsibilities are the mixing weights' alone, softmax(E[log π]) = softmax(ψ(α_k) − ψ(Σα)),
    whatever value lies under the mask; the other rows are as if it were not there."""
    from scipy.special import digamma, softmax

    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
    fit = vp.fit(vp.load(MODELS / "gmm.vem"), {"x": centres[rng.integers(3, size=150)] + rng.normal(size=(150, 2))},
                 seed=0)
    new = centres[[0, 1, 2, 1]] + 0.1
    mask = np.zeros(new.shape, bool)
    mask[1, 1] = True
    under = new.copy()
    under[1, 1] = 1e6  # never read
    got = np.asarray(fit.predict({"x": np.ma.masked_array(under, mask=mask)}).posterior["z"].probs)
    alpha = np.asarray(fit.posterior["pi"].concentration)
    np.testing.assert_allclose(got[1], softmax(digamma(alpha) - digamma(alpha.sum())), atol=1e-9)
    rest = np.asarray(fit.predict({"x": new[[0, 2, 3]]}).posterior["z"].probs)
    np.testing.assert_allclose(got[[0, 2, 3]], rest, atol=1e-9)
    assert np.all(got[[0, 2, 3]].max(-1) > 0.99)  # the observed rows are clustered
    nan = new.copy()
    nan[1, 1] = np.nan  # the other spelling of a missing entry gives the same prediction
    np.testing.assert_allclose(np.asarray(fit.predict({"x": nan}).posterior["z"].probs), got, atol=1e-12)


def test_a_param_with_no_finite_optimum_is_named_with_its_term():
    """A constant data column sends factor analysis's noise precision psi[1] to infinity (its
    M-step is 1 / the column's residual variance): psi[1] is near 1e31 by the fifth sweep, and
    from the sixth the ELBO was float64's rounding, falling (once by 3.9 million nats) until a
    nan at sweep 60.  No deterministic sweep lowers the ELBO, so the first fall stops the fit
    (engine/stops.py): the warning names psi, its size and the statement (line 12) that reads
    it, and the trace kept is monotone."""
    from vemppl.data_scale import PrecisionWarning

    x = np.random.default_rng(0).normal(size=(100, 3))
    x[:, 1] = 2.0
    with pytest.warns(PrecisionWarning) as caught:
        fit = vp.fit(vp.load(MODELS / "fa.vem"), {"x": x}, max_iter=200)
    (msg,) = [str(w.message) for w in caught if issubclass(w.category, PrecisionWarning)]
    assert "the ELBO fell from" in msg and "param 'psi' (median" in msg and "beyond float64's resolution" in msg, msg
    assert "read by the term of 'for n in range(N) { for j in range(D) { x[n, j] ~ Normal(" in msg, msg
    assert "(line 12)" in msg and "constant data column" in msg, msg
    trace = np.asarray(fit.elbo_trace)
    assert np.all(np.isfinite(trace)) and not fit.converged and len(trace) == fit.iterations < 10, len(trace)
    assert np.all(np.diff(trace) >= -1e-9 * np.abs(trace[1:])), np.diff(trace).min()
    psi = np.asarray(fit.params["psi"])  # the param named is the one beyond float64's resolution
    assert psi[1] > 1e15 * max(psi[0], psi[2]), psi


def test_a_non_finite_svi_step_names_the_blocks(monkeypatch):
    """SVI's 'the ELBO estimate became nan at step t' named no block; it names those that
    went non-finite (here q('mu'), poisoned at the first step) and the cause (the step)."""
    import jax
    import jax.numpy as jnp

    import vemppl.engine.svi as svi

    real = svi.SVI._step_impl

    def poisoned(self, s, data, masks, rho, first, scale):  # the step's signature (`scale` static)
        s, elbo = real(self, s, data, masks, rho, first, scale)
        state = s.state._replace(mu={**s.state.mu, "mu": jax.tree_util.tree_map(lambda a: a * jnp.nan, s.state.mu["mu"])})
        return s._replace(state=state), elbo * jnp.nan

    monkeypatch.setattr(svi.SVI, "_step_impl", poisoned)  # jitted as the step when an SVI is made
    x = np.random.default_rng(0).normal(size=(200, 2))
    err = _error(vp.load(MODELS / "gmm.vem"), {"x": x}, algorithm=vp.svi(50))
    assert err.kind == "data" and "step 1: q('mu') became non-finite" in err.message, err.message
    assert "smaller step" in err.message
