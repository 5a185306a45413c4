"""``sum`` of a random vector, a nonlinear function of a whole vector in a prior, and the located
errors where the general path cannot draw (issue #20: every model fits or is refused at its line).

Models written for this test from docs/language.md ("Expressions", "Factors without a closed form").
"""

from __future__ import annotations

import numpy as np
import pytest

import vemppl as vp
from conftest import assert_elbo_monotone

Y = {"y": np.random.default_rng(0).normal(0.5, 1.0, size=10)}


def _model(body: str) -> str:
    return f"model e\ndim N\nconst K = 3\ndata y: real[N]\n{body}\nfor n in range(N) {{ y[n] ~ Normal(s, 1) }}\n"


@pytest.mark.parametrize("vector", [
    "w ~ MvNormal(zeros(K), eye(K))",
    "for k in range(K) { w[k] ~ Gamma(2.0, 1.0) }",
    "w ~ Dirichlet(fill(1.0, K))",
])
def test_sum_of_a_random_vector_is_the_dot_with_ones(vector):
    """sum(w) is linear: the same updates and ELBO as dot(w, ones(K)), which were there before."""
    by_sum = vp.fit(vp.parse(_model(f"{vector}\ns ~ Normal(sum(w), 1)")), Y, seed=0)
    by_dot = vp.fit(vp.parse(_model(f"{vector}\ns ~ Normal(dot(w, ones(K)), 1)")), Y, seed=0)
    np.testing.assert_allclose(by_sum.elbo_trace, by_dot.elbo_trace, rtol=1e-12)
    assert_elbo_monotone(by_sum.elbo_trace)


def test_sum_of_a_gaussian_vector_is_conjugate_and_exact():
    """s ~ N(Σw, 1), w ~ N(0, I_3), y_n ~ N(s, 1): mean-field q(s)q(w) against the fixed point of
    its own CAVI equations written out by hand: E[s] = (Σ E[w] + Σ y) / (1 + N),
    E[w_k] = (E[s] − Σ_{l≠k} E[w_l]) / 2 (precision of w_k: 1 prior + 1 from the factor)."""
    fit = vp.fit(vp.parse(_model("w ~ MvNormal(zeros(K), eye(K))\ns ~ Normal(sum(w), 1)")), Y, seed=0, tol=1e-12)
    assert "q(w): MvNormal" in str(fit.plan) and "gradient" not in str(fit.plan.block("w").update).lower()
    y, n = Y["y"], len(Y["y"])
    es, ew = 0.0, np.zeros(3)
    for _ in range(2000):  # Gauss–Seidel on the CAVI equations (the joint q(w) is one block)
        es = (ew.sum() + y.sum()) / (1 + n)
        # q(w) = N(m, Λ⁻¹) with Λ = I + 11ᵀ, Λm = 1·E[s]
        ew = np.linalg.solve(np.eye(3) + np.ones((3, 3)), np.ones(3) * es)
    np.testing.assert_allclose(np.asarray(fit.posterior["s"].mean), es, atol=1e-8)
    np.testing.assert_allclose(np.asarray(fit.posterior["w"].mean), ew, atol=1e-8)


@pytest.mark.parametrize("body", [
    "w ~ MvNormal(zeros(K), eye(K))\ns ~ Normal(sum(exp(w)), 1)",
    "w ~ Dirichlet(fill(1.0, K))\ns ~ Normal(sum(exp(w)), 1)",
])
def test_a_prior_with_no_closed_form_mean_starts_at_the_plug_in_value_and_fits(body):
    """E[Σ exp(w_k)] has no closed form here: the start reads the prior at w's means, and the
    factor is the general path's (natural-gradient steps, ELBO monotone)."""
    fit = vp.fit(vp.parse(_model(body)), Y, seed=0)
    assert fit.converged
    assert_elbo_monotone(fit.elbo_trace)


@pytest.mark.parametrize("text, line, what", [
    ("model e\ndim T\nconst K = 2\ndata x: real[T]\nfor k in range(K) { A[k] ~ Dirichlet(fill(1.0, K)) }\n"
     "z[0] ~ Categorical(fill(0.5, K))\nfor t in range(1, T) { z[t] ~ Categorical(A[z[t-1]]) }\n"
     "for t in range(T) { x[t] ~ Normal(1.0 * z[t], precision = 1.0) }\n", 8, "discrete latent"),
    (_model("theta ~ Dirichlet(fill(1.0, K))\ns ~ Normal(log(theta[0]), 1)"), 6, "draws whole vectors"),
])
def test_what_the_general_path_cannot_draw_is_a_located_unsupported_error(text, line, what):
    data = {"x": Y["y"], "y": Y["y"]}
    model = vp.parse(text, filename="m.vem")
    with pytest.raises(vp.VemError) as err:
        vp.fit(model, {k: v for k, v in data.items() if k in model.nodes}, seed=0)
    assert err.value.kind == "unsupported" and err.value.file == "m.vem" and err.value.line == line
    assert what in str(err.value)
