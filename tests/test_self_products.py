"""A latent vector times itself, ``dot(w, w)`` / ``w @ w`` (issue #20, products of latents).

``wᵀw`` is not a product of two independent factors: for a Gaussian w with mean m and
covariance Σ, ``E[wᵀw] = tr Σ + mᵀm`` and (Isserlis) ``E[(wᵀw)²] = (tr Σ + mᵀm)² + 2 tr(Σ²)
+ 4 mᵀΣm``, where the independent-factor formulas would give ``mᵀm`` and ``tr(E[wwᵀ]²)``.
The references here are tensor-product Gauss–Hermite quadrature over w in NumPy (exact for
these polynomials of degree ≤ 4), independent of vemppl's formulas.  Any other product of a
block with itself (``dot(w, 2.0 * w)``, ``dot(W[0], W[k])``) is a located ``unsupported`` error,
as ``tau * tau`` and ``W @ W[0]`` are (elj/products.py).
"""

from __future__ import annotations

import itertools

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import minimize

import vemppl as vp
from conftest import assert_elbo_monotone
from vemppl import cli
from vemppl.compiler.compile import compile_model
from vemppl.diagnostics import VemError
from vemppl.elj.cross import Stacked
from vemppl.elj.moments import BlockMoments
from vemppl.elj.products import self_dot
from vemppl.families.mvnormal import MvNormal, MvNormalStats
from vemppl.families.normal import Normal, NormalStats
from vemppl.frontends.parser import parse
from vemppl.plan import Update


def gh_expect(f, m, cov, n=8):
    """E[f(w)] for w ~ N(m, cov) by an n-point Gauss–Hermite rule per axis (probabilists')."""
    z, wts = np.polynomial.hermite_e.hermegauss(n)
    wts = wts / wts.sum()
    L = np.linalg.cholesky(cov)
    total = 0.0
    for idx in itertools.product(range(n), repeat=len(m)):
        u = z[list(idx)]
        total += np.prod(wts[list(idx)]) * f(m + L @ u)
    return total


def _random_gaussian(P, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((P, P))
    return rng.standard_normal(P), a @ a.T / P + 0.3 * np.eye(P)


def test_self_dot_moments_of_an_mvnormal_are_exact():
    m, cov = _random_gaussian(3, 0)
    stats = MvNormalStats(jnp.asarray(m), jnp.asarray(cov + np.outer(m, m)))
    src = self_dot(BlockMoments("w", MvNormal, stats, stats, None), None)
    assert float(src.mean) == pytest.approx(gh_expect(lambda w: w @ w, m, cov), rel=1e-12)
    assert float(src.sq) == pytest.approx(gh_expect(lambda w: (w @ w) ** 2, m, cov), rel=1e-12)
    # The independent-factor formulas (what moments.Dot computes) are not these.
    assert abs(m @ m - gh_expect(lambda w: w @ w, m, cov)) > 0.1


def test_self_dot_moments_of_independent_normal_elements_are_exact():
    rng = np.random.default_rng(1)
    m, var = rng.standard_normal(4), 0.2 + rng.random(4)
    stats = NormalStats(jnp.asarray(m), jnp.asarray(var + m**2))
    src = self_dot(Stacked(BlockMoments("w", Normal, stats, stats, None), None), None)
    cov = np.diag(var)
    assert float(src.mean) == pytest.approx(gh_expect(lambda w: w @ w, m, cov), rel=1e-12)
    assert float(src.sq) == pytest.approx(gh_expect(lambda w: (w @ w) ** 2, m, cov), rel=1e-12)


SQUARE_NORM = """model sqnorm
dim P
dim N
data y: real[N]
data z: real[N, P]
w ~ MvNormal(zeros(P), precision = eye(P))
for n in range(N) {{ y[n] ~ Normal({expr}, precision = 4.0) }}
for n in range(N) {{ z[n] ~ MvNormal(w, precision = eye(P)) }}
"""


@pytest.mark.parametrize("expr", ["dot(w, w)", "w @ w"])
def test_a_fit_through_the_square_norm_has_the_exact_elbo(expr):
    """The fitted ELBO equals E_q[log p(y, w)] + H[q] computed by quadrature at the fitted
    q(w) = N(m, Σ): the natural-gradient block optimises the right objective."""
    rng = np.random.default_rng(2)
    y = 1.5 + 0.5 * rng.standard_normal(20)
    z = np.array([1.0, 0.5]) + rng.standard_normal((20, 2))  # a direct look at w: one optimum, no saddle at 0
    fit = vp.fit(parse(SQUARE_NORM.format(expr=expr)), {"y": y, "z": z}, max_iter=500)
    assert fit.plan.block("w").update is Update.NATURAL_GRADIENT
    assert_elbo_monotone(fit.elbo_trace)
    mu = {k: np.asarray(v) for k, v in fit.mean_params["w"].items()}
    m = mu["mean"]
    cov = mu["outer"] - np.outer(m, m)

    def log_joint(w):
        s = w @ w
        lik = np.sum(0.5 * np.log(4.0 / (2 * np.pi)) - 2.0 * (y - s) ** 2)
        direct = np.sum(-np.log(2 * np.pi) - 0.5 * np.sum((z - w) ** 2, axis=1))
        return lik + direct - 0.5 * len(w) * np.log(2 * np.pi) - 0.5 * w @ w

    def elbo(m, L):
        cov = L @ L.T
        return gh_expect(log_joint, m, cov) + 0.5 * np.linalg.slogdet(2 * np.pi * np.e * cov)[1]

    L = np.linalg.cholesky(cov)
    assert fit.elbo == pytest.approx(elbo(m, L), abs=1e-8)
    # The fit is at the maximum of the reference ELBO over (m, chol Σ), found here by BFGS
    # from the fitted point (the natural-gradient steps stop within the ELBO tolerance).
    tril = np.tril_indices(2)

    def neg(theta):
        L = np.zeros((2, 2))
        L[tril] = theta[2:]
        return -elbo(theta[:2], L)

    best = minimize(neg, np.concatenate([m, L[tril]]), method="BFGS", options={"gtol": 1e-9})
    assert -best.fun - fit.elbo < 1e-6
    np.testing.assert_allclose(m, best.x[:2], atol=1e-3)


@pytest.mark.parametrize("expr", ["dot(w, 2.0 * w)", "dot(w + w, w)"])
def test_another_product_of_a_vector_with_itself_is_a_located_unsupported_error(expr, tmp_path, capsys):
    text = SQUARE_NORM.format(expr=expr)
    with pytest.raises(VemError) as err:
        compile_model(parse(text))
    assert err.value.kind == "unsupported" and err.value.span.line == 7
    path = tmp_path / "m.vem"
    path.write_text(text)
    assert cli.main(["check", str(path)]) == 2
    assert "internal error" not in capsys.readouterr().err


def test_dot_of_two_rows_of_one_block_is_refused():
    """dot(W[0], W[k]) reads one row twice when k = 0: E[W_0ᵀW_k] ≠ E[W_0]ᵀE[W_k] there."""
    text = ("model rows\ndim K\ndim P\ndata y: real[K]\n"
            "for k in range(K) { W[k] ~ MvNormal(zeros(P), precision = eye(P)) }\n"
            "for k in range(K) { y[k] ~ Normal(dot(W[0], W[k]), precision = 4.0) }\n")
    with pytest.raises(VemError) as err:
        compile_model(parse(text))
    assert err.value.kind == "unsupported" and err.value.span.line == 6
