"""The rotation step of a bilinear pair (compiler/rules/rotation.py, engine/rotation.py).

* The plan: chosen for ``dot(W[j], z[n])`` with MvNormal rows and locals, not for a point-estimated
  W (factor analysis), scalar mean-field factors, or a W read outside the product.
* The step's ELBO change for a given R against the closed form of Luttinen & Ilin (2010, §3)
  written here in NumPy: −½tr(R S_z Rᵀ) + (N − D) log|det R| − Σ_l a_N log b_N(R) + const.
* The default fit reaches a long plain fit's ELBO in far fewer sweeps, monotonely.
"""

from __future__ import annotations

import numpy as np
import pytest

import vemppl as vp
from vemppl.engine import rotation as rt

from conftest import assert_elbo_monotone

BPCA = """
model bpca
dim N, D
const L = 3
data x: real[N, D]
for l in range(L) { alpha[l] ~ Gamma(1e-3, 1e-3) }
for j in range(D) {
    m[j] ~ Normal(0, precision = 1e-3)
    for l in range(L) { W[j, l] ~ Normal(0, precision = alpha[l]) }
}
tau ~ Gamma(1e-3, 1e-3)
for n in range(N) {
    z[n] ~ MvNormal(zeros(L), eye(L))
    for j in range(D) { x[n, j] ~ Normal(m[j] + dot(W[j], z[n]), precision = tau) }
}
"""


def _data(n=300, d=5, rank=2, seed=0):
    r = np.random.default_rng(seed)
    w = r.normal(size=(d, rank)) * np.array([3.0, 1.5])[:rank]
    return r.normal(size=(n, rank)) @ w.T + 1.0 + r.normal(0, 0.5, (n, d))


def test_plan_chooses_rotation_for_bilinear_pair_only():
    plan = vp.compile_model(vp.parse(BPCA))
    (rot,) = plan.rotations
    assert (rot.scaled, rot.rotated, rot.refresh) == ("W", "z", ("alpha",))
    assert [plan.factors[i].target for i in rot.invariant] == ["x"]
    assert "rotation of (W, z)" in str(plan)
    # the same pair with W's rows as vector nodes, read by dot and by @ (before: not chosen, and
    # such a fit stopped at max_iter)
    rows = """model rows
dim N, D
const L = 3
data x: real[N, D]
for l in range(L) { alpha[l] ~ Gamma(1e-3, 1e-3) }
for j in range(D) { W[j] ~ MvNormal(zeros(L), precision = diag(alpha)) }
tau ~ Gamma(1e-3, 1e-3)
for n in range(N) {
    z[n] ~ MvNormal(zeros(L), eye(L))
    for j in range(D) { x[n, j] ~ Normal(dot(W[j], z[n]), precision = tau) }
}"""
    matmul = rows.replace("for j in range(D) { x[n, j] ~ Normal(dot(W[j], z[n]), precision = tau) }",
                          "x[n] ~ MvNormal(W @ z[n], precision = tau * eye(D))")
    for text in (rows, matmul):
        (r,) = vp.compile_model(vp.parse(text)).rotations
        assert (r.scaled, r.rotated, r.refresh) == ("W", "z", ("alpha",))
        assert r.summarised == ("W", "z")
    # a prior mean per point: z's rows are not one function of their mean (the step reads them all)
    per_point = BPCA.replace("data x: real[N, D]", "data x: real[N, D]\ndata c: real[N, L]").replace(
        "z[n] ~ MvNormal(zeros(L), eye(L))", "z[n] ~ MvNormal(c[n], eye(L))")
    (r,) = vp.compile_model(vp.parse(per_point)).rotations
    assert r.summarised == ("W",)
    point_w = """model fa
dim N, D
const L = 2
data x: real[N, D]
param W: real[D, L]
for n in range(N) {
    h[n] ~ MvNormal(zeros(L), eye(L))
    for j in range(D) { x[n, j] ~ Normal(dot(W[j], h[n]), precision = 1.0) }
}"""
    scalar = """model sc
dim N, D
const L = 2
data x: real[N, D]
for j in range(D) { for l in range(L) { W[j, l] ~ Normal(0, 1) } }
for n in range(N) {
    for l in range(L) { z[n, l] ~ Normal(0, 1) }
    for j in range(D) { x[n, j] ~ Normal(W[j, 0] * z[n, 0] + W[j, 1] * z[n, 1], precision = 1.0) }
}"""
    elsewhere = BPCA.replace("tau ~ Gamma(1e-3, 1e-3)", "tau ~ Gamma(1e-3, 1e-3)\ndata y: real[D]\n"
                             "for j in range(D) { y[j] ~ Normal(W[j, 0], 1.0) }")
    fixed_priors = BPCA.replace("Normal(0, precision = alpha[l])", "Normal(0, 1)")  # nothing to re-fit
    for text in (point_w, scalar, elsewhere, fixed_priors):
        assert vp.compile_model(vp.parse(text)).rotations == ()


@pytest.fixture(scope="module")
def fits():
    x = _data()
    model = vp.parse(BPCA)
    # the engine and state of the first step, on the fit's 2r weighted moment rows of z
    seen, call = [], rt.Rotated.__call__

    def spy(self, state):
        if self.active and not seen:
            seen.append((self.engine, state))
        return call(self, state)

    rt.Rotated.__call__ = spy
    try:
        rotated = vp.fit(model, {"x": x})
    finally:
        rt.Rotated.__call__ = call
    plain = vp.fit(model, {"x": x}, max_iter=20000, tol=1e-12, algorithm=vp.cavi(accelerate=False))
    return x, rotated, plain, seen[0]


@pytest.mark.parametrize("where", ["every row", "moment rows"])
def test_step_matches_closed_form(fits, where):
    """The ELBO terms the step maximises, at a fixed R less at R = I, against Luttinen & Ilin's
    closed form for this graph (the data term is invariant; q(alpha) re-fitted), on the fitted
    state (a row per point) and on the state of the fit's first step (weighted moment rows, whose
    counts the sums take: the step reads the rows' weighted mean)."""
    import jax

    x, rotated, _, first = fits
    eng, state = (rotated.engine, rotated.state) if where == "every row" else first
    (rot,) = eng.plan.rotations
    assert rot.summarised == ("W", "z")
    n, d = x.shape
    counts = (rt.count(eng, state, "W"), rt.count(eng, state, "z"))
    summ = rt.summary(eng, rot, state)
    value = jax.jit(lambda r: rt.objective(eng, rot, rt.terms(eng, rot), counts, state, summ, r))
    r = np.eye(3) + 0.1 * np.random.default_rng(1).normal(size=(3, 3))
    got = float(value(r)) - float(value(np.eye(3)))
    outer = np.asarray(state.mu["z"].outer)
    weights = np.ones(len(outer)) if where == "every row" else np.asarray(eng.unit_weights.weights)
    assert len(outer) < n or where == "every row"
    s_z = np.einsum("n,nij->ij", weights, outer)
    s_w = np.asarray(state.mu["W"].outer).sum(0)
    a_n = 1e-3 + d / 2

    def part(rr):
        rinv = np.linalg.inv(rr)
        b_n = 1e-3 + 0.5 * np.diag(rinv.T @ s_w @ rinv)
        return -0.5 * np.trace(rr @ s_z @ rr.T) + (n - d) * np.log(abs(np.linalg.det(rr))) - a_n * np.log(b_n).sum()

    assert got == pytest.approx(part(r) - part(np.eye(3)), rel=1e-9, abs=1e-8)


def test_rotated_fit_reaches_long_plain_fit(fits):
    _, rotated, plain, _ = fits
    assert rotated.converged and plain.converged
    assert_elbo_monotone(rotated.elbo_trace)
    assert rotated.iterations * 5 < plain.iterations
    assert rotated.elbo_trace[-1] == pytest.approx(plain.elbo_trace[-1], rel=1e-8)
    # ARD keeps the two components the data hold
    alpha = np.sort(np.asarray(rotated.state.mu["alpha"].mean))
    assert alpha[1] < 10 and alpha[2] > 100
