"""Deterministic nodes read at any index (issue #20, row 3): by loop variables, offsets,
constants, data arrays (a gather) and categorical latents (a gate).

The reference for each form is the same model with the deterministic node written out by
hand where it is read (or, for a node of constants, its value written as a const matrix):
a deterministic node is a name for an expression, so the two models have the same expected
log joint, the same updates and the same fit.  Each pair is fitted from the same seed and
compared to 1e-8; the hand-written models read no deterministic node, so the comparison
is with a path that exists independently of the one under test.
"""

import numpy as np
import pytest

import vemppl as vp
from conftest import assert_elbo_monotone
from vemppl.diagnostics import VemError

ROW3 = """model sticky
dim T
const K = 3
data x: real[T]
stick = 1.0 + 4.0 * eye(K)
pi0 ~ Dirichlet(ones(K))
for k in range(K) {
    A[k] ~ Dirichlet(stick[k])
    m[k] ~ Normal(0.0, 10.0)
}
z[0] ~ Categorical(pi0)
for t in range(1, T) { z[t] ~ Categorical(A[z[t-1]]) }
for t in range(T) { x[t] ~ Normal(m[z[t]], 1.0) }
"""

# The same HMM with the Dirichlet concentrations written by hand as a const matrix.
ROW3_BY_HAND = ROW3.replace("stick = 1.0 + 4.0 * eye(K)\n", "const C: real[K, K] = 1.0\n").replace(
    "Dirichlet(stick[k])", "Dirichlet(C[k])"
)


def _hmm_data(seed=0, T=60):
    rng = np.random.default_rng(seed)
    A = np.array([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.05, 0.9]])
    z = [0]
    for _ in range(T - 1):
        z.append(rng.choice(3, p=A[z[-1]]))
    return {"x": np.array([-4.0, 0.0, 4.0])[z] + rng.normal(size=T)}


def _fit(text, data, **kw):
    return vp.fit(vp.parse(text), data=data, seed=0, max_iter=kw.pop("max_iter", 60), **kw)


def _same_fit(det_text, hand_text, data, names=(), **kw):
    a, b = _fit(det_text, data, **kw), _fit(hand_text, data, **kw)
    assert np.isfinite(a.elbo)
    assert_elbo_monotone(a.elbo_trace)
    assert a.iterations == b.iterations
    np.testing.assert_allclose(a.elbo_trace, b.elbo_trace, rtol=0, atol=1e-8)
    for n in names:
        np.testing.assert_allclose(a.posterior[n].mean, b.posterior[n].mean, rtol=0, atol=1e-8)
    return a


# ---- row 3: a deterministic node of constants, indexed by a loop variable ------------------------
def test_sticky_hmm_equals_the_concentrations_written_by_hand():
    data = _hmm_data()
    a = _fit(ROW3, data)
    b = _fit(ROW3_BY_HAND, data, consts={"C": 1.0 + 4.0 * np.eye(3)})
    assert_elbo_monotone(a.elbo_trace)
    assert a.iterations == b.iterations
    np.testing.assert_allclose(a.elbo, b.elbo, rtol=0, atol=1e-8)
    np.testing.assert_allclose(a.posterior["A"].mean, b.posterior["A"].mean, rtol=0, atol=1e-8)
    # The plan is that of the hand-written model: A's rows stay conjugate Dirichlets.
    plan_a, plan_b = vp.compile_model(vp.parse(ROW3)), vp.compile_model(vp.parse(ROW3_BY_HAND))
    assert [(b.name, b.family, b.update) for b in plan_a.blocks] == [(b.name, b.family, b.update) for b in plan_b.blocks]


def test_sticky_concentrations_reach_the_posterior():
    """The extra 4 on the diagonal is the prior's: with no transitions (T = 1) A's posterior is it."""
    fit = _fit(ROW3, {"x": np.array([0.3])}, max_iter=5)
    conc = np.asarray(fit.posterior["A"].concentration)
    np.testing.assert_allclose(conc, 1.0 + 4.0 * np.eye(3), atol=1e-12)


# ---- deterministic nodes of latents -------------------------------------------------------------
MIXTURE = """model mix
dim N
const K = 2
data x: real[N]
m0 ~ Normal(0.0, 1.0)
for k in range(K) {
    delta[k] ~ Normal(0.0, precision = 0.1)
    mu[k] = m0 + delta[k]
}
pi ~ Dirichlet(ones(K))
for n in range(N) {
    z[n] ~ Categorical(pi)
    x[n] ~ Normal(mu[z[n]], 1.0)
}
"""


def _mixture_data(n=40, seed=1):
    rng = np.random.default_rng(seed)
    return {"x": np.where(rng.random(n) < 0.5, -3.0, 3.0) + rng.normal(size=n)}


def test_mixture_means_as_a_deterministic_node_of_latents():
    hand = MIXTURE.replace("    mu[k] = m0 + delta[k]\n", "").replace("Normal(mu[z[n]], 1.0)", "Normal(m0 + delta[z[n]], 1.0)")
    _same_fit(MIXTURE, hand, _mixture_data(), names=("delta", "m0", "z"))


def test_a_gate_inside_a_deterministic_node():
    """m[n] = mu[z[n]]: the gate is read where m[n] is, so the factor is summed over z."""
    det = MIXTURE.replace("    x[n] ~ Normal(mu[z[n]], 1.0)", "    w[n] = mu[z[n]]\n    x[n] ~ Normal(w[n], 1.0)")
    plan = vp.compile_model(vp.parse(det))
    f = next(f for f in plan.factors if f.target == "x")
    assert {r.block for r in f.enum} == {"z"}
    _same_fit(det, MIXTURE, _mixture_data(), names=("delta", "z"))


def test_gamma_rates_gated_by_a_categorical():
    text = """model rates
dim N
const K = 2
data y: count[N]
for k in range(K) {
    a[k] ~ Gamma(2.0, 1.0)
    rate[k] = 3.0 * a[k]
}
pi ~ Dirichlet(ones(K))
for n in range(N) {
    z[n] ~ Categorical(pi)
    y[n] ~ Poisson(rate[z[n]])
}
"""
    hand = text.replace("    rate[k] = 3.0 * a[k]\n", "").replace("Poisson(rate[z[n]])", "Poisson(3.0 * a[z[n]])")
    rng = np.random.default_rng(2)
    y = np.concatenate([rng.poisson(2.0, 30), rng.poisson(15.0, 30)])
    _same_fit(text, hand, {"y": y}, names=("a",))


def test_exp_of_a_latent_behaves_as_written_inline():
    """rate[k] = exp(a[k]) read as rate[z[n]] is Poisson(exp(a[z[n]])): fitted the same way, or
    refused with the same located error while E[exp(a)] is not available (issue #20, nonconj)."""
    text = """model lograte
dim N
const K = 2
data y: count[N]
for k in range(K) {
    a[k] ~ Normal(0.0, 1.0)
    rate[k] = exp(a[k])
}
pi ~ Dirichlet(ones(K))
for n in range(N) {
    z[n] ~ Categorical(pi)
    y[n] ~ Poisson(rate[z[n]])
}
"""
    hand = text.replace("    rate[k] = exp(a[k])\n", "").replace("Poisson(rate[z[n]])", "Poisson(exp(a[z[n]]))")
    y = np.random.default_rng(3).poisson(3.0, 30)
    try:
        ref = _fit(hand, {"y": y}, max_iter=10)
    except VemError as err:
        with pytest.raises(VemError) as got:
            _fit(text, {"y": y}, max_iter=10)
        assert got.value.kind == err.kind and got.value.span is not None
        return
    fit = _fit(text, {"y": y}, max_iter=10)
    np.testing.assert_allclose(fit.elbo_trace, ref.elbo_trace, rtol=0, atol=1e-8)


def test_matrix_product_indexed_by_a_loop_variable():
    text = """model proj
dim N
const J = 3
const L = 2
const W: real[J, L] = 1.0
data x: real[N, J]
for l in range(L) { c[l] ~ Normal(0.0, 1.0) }
b = W @ c
for n in range(N) { for j in range(J) { x[n, j] ~ Normal(b[j], 1.0) } }
"""
    hand = text.replace("b = W @ c\n", "").replace("Normal(b[j], 1.0)", "Normal(dot(W[j], c), 1.0)")
    W = np.array([[1.0, 0.0], [0.5, 1.0], [0.0, 2.0]])
    x = np.random.default_rng(4).normal(size=(10, 3)) + W @ np.array([1.0, -2.0])
    fit = _same_fit(text, hand, {"x": x}, names=("c",), consts={"W": W})
    # One sweep is exact here (a Gaussian linear model): the posterior of c in closed form.
    prec = np.eye(2) + 10 * W.T @ W
    np.testing.assert_allclose(fit.posterior["c"].mean, np.linalg.solve(prec, W.T @ x.sum(0)), atol=1e-8)


def test_offsets_in_the_definition_and_in_the_read():
    data = {"y": np.random.default_rng(5).normal(size=12)}
    base = """model walk
dim T
data y: real[T]
for t in range(T) { s[t] ~ Normal(0.0, 1.0) }
"""
    # defined over range(1, T) reading s[t-1], read at t; and defined over T, read at t-1
    det1 = base + "for t in range(1, T) { u[t] = 2.0 * s[t-1] }\nfor t in range(1, T) { y[t] ~ Normal(u[t], 1.0) }\n"
    det2 = base + "for t in range(T) { u[t] = 2.0 * s[t] }\nfor t in range(1, T) { y[t] ~ Normal(u[t-1], 1.0) }\n"
    det3 = base + "for t in range(T) { u[t+1] = 2.0 * s[t] }\nfor t in range(1, T) { y[t] ~ Normal(u[t], 1.0) }\n"
    hand = base + "for t in range(1, T) { y[t] ~ Normal(2.0 * s[t-1], 1.0) }\n"
    for det in (det1, det2, det3):
        _same_fit(det, hand, data, names=("s",))


def test_gathers_and_constant_indices():
    text = """model groups
dim N, G
data grp: cat(G)[N]
data w: pos[G]
data y: real[N]
mu0 ~ Normal(0.0, 1.0)
for g in range(G) {
    b[g] ~ Normal(0.0, 1.0)
    m[g] = mu0 + b[g]
    prec[g] = 1.0 + w[g]
}
first = m[0]
for n in range(N) { y[n] ~ Normal(m[grp[n]] + 0.5 * first, precision = prec[grp[n]]) }
"""
    hand = """model groups
dim N, G
data grp: cat(G)[N]
data w: pos[G]
data y: real[N]
mu0 ~ Normal(0.0, 1.0)
for g in range(G) { b[g] ~ Normal(0.0, 1.0) }
for n in range(N) { y[n] ~ Normal(mu0 + b[grp[n]] + 0.5 * (mu0 + b[0]), precision = 1.0 + w[grp[n]]) }
"""
    rng = np.random.default_rng(6)
    grp = rng.integers(0, 3, 20)
    data = {"grp": grp, "w": np.array([0.5, 1.0, 2.0]), "y": np.array([-1.0, 0.0, 2.0])[grp] + rng.normal(size=20)}
    _same_fit(text, hand, data, names=("b", "mu0"))


def test_a_piecewise_deterministic_node_of_constants():
    """u[0] = 4, u[t] = 1 + t for t >= 1: evaluated whole, read at t as a precision."""
    text = """model pieces
dim T
data y: real[T]
u[0] = 4.0
for t in range(1, T) { u[t] = 1.0 + t }
theta ~ Normal(0.0, 1.0)
for t in range(T) { y[t] ~ Normal(theta, precision = u[t]) }
"""
    y = np.random.default_rng(7).normal(size=6)
    fit = _fit(text, {"y": y})
    prec = np.array([4.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    post_prec = 1.0 + prec.sum()
    np.testing.assert_allclose(fit.posterior["theta"].mean, (prec * y).sum() / post_prec, atol=1e-10)


# ---- what stays refused, with its place --------------------------------------------------------
@pytest.mark.parametrize(
    "body, phrase",
    [
        ("u[0] = s[0]\nfor t in range(1, T) { u[t] = s[t] + 1.0 }\nfor t in range(T) { y[t] ~ Normal(u[t], 1.0) }",
         "piecewise"),
        ("for t in range(T) { u[t] = 2.0 * s[t] }\nfor t in range(T) { y[t] ~ Normal(sum(u), 1.0) }",
         "element by element"),
        ("u[0] = 1.0\nfor t in range(1, T) { u[t] = u[t-1] + 1.0 }\nfor t in range(T) { y[t] ~ Normal(s[t], precision = u[t]) }",
         "earlier step of itself"),
        ("u[0] = s[0]\nfor t in range(1, T) { u[t] = u[t-1] + s[t] }\nfor t in range(T) { y[t] ~ Normal(u[t], 1.0) }",
         "earlier step of itself"),
    ],
)
def test_refused_reads_are_located_errors(body, phrase):
    text = "model bad\ndim T\ndata y: real[T]\nfor t in range(T) { s[t] ~ Normal(0.0, 1.0) }\n" + body + "\n"
    with pytest.raises(VemError) as err:
        _fit(text, {"y": np.zeros(5)}, max_iter=3)
    assert err.value.kind == "unsupported" and err.value.span is not None
    assert phrase in str(err.value)


# ---- the front ends --------------------------------------------------------------------------------
FORMS = [ROW3, MIXTURE]


@pytest.mark.parametrize("text", FORMS)
def test_text_round_trip(text):
    m = vp.parse(text)
    assert vp.parse(vp.to_text(m)) == m


def test_dsl_builds_the_sticky_hmm_of_the_text():
    m = vp.Model("sticky")
    T = m.dim("T")
    K = m.const("K", 3)
    x = m.data("x", vp.real[T])
    stick = m.let("stick", 1.0 + 4.0 * vp.eye(K))
    pi0 = m.sample("pi0", vp.Dirichlet(vp.ones(K)))
    with m.plate("k", K) as k:
        A = m.sample("A", vp.Dirichlet(stick[k]))
        mu = m.sample("m", vp.Normal(0.0, 10.0))
    z = m.sample("z", vp.Categorical(pi0), index=0)
    with m.plate("t", T, start=1) as t:
        m.sample("z", vp.Categorical(A[z[t - 1]]), index=t)
    with m.plate("t", T) as t:
        m.sample("x", vp.Normal(mu[z[t]], 1.0))
    assert m.ir == vp.parse(ROW3)
    assert vp.parse(vp.to_text(m.ir)) == m.ir
    del x


# ---- static checks -----------------------------------------------------------------------------------
def test_a_deterministic_index_of_reals_is_a_type_error():
    text = """model a
dim N
const K = 2
data x: real[N]
data v: real[N]
for n in range(N) { i[n] = 2.0 * v[n] }
for k in range(K) { mu[k] ~ Normal(0.0, 1.0) }
for n in range(N) { x[n] ~ Normal(mu[i[n]], 1.0) }
"""
    with pytest.raises(VemError) as err:
        vp.compile_model(vp.parse(text))
    assert err.value.kind == "type" and err.value.line == 8 and "deterministic node of real values" in str(err.value)


def test_a_deterministic_renaming_of_a_latent_has_its_support():
    text = "model a\ndim N\ndata y: count[N]\na ~ Normal(0.0, 1.0)\nr = a\nfor n in range(N) { y[n] ~ Poisson(r) }\n"
    with pytest.raises(VemError) as err:
        vp.compile_model(vp.parse(text))
    assert err.value.kind == "support" and err.value.line == 6


def test_deterministic_indices_gather_and_gate():
    """i[n] = g[n] (data) is a gather; j[n] = z[n] (a categorical latent) is a gate."""
    base = MIXTURE.replace("data x: real[N]", "data x: real[N]\ndata g: cat(K)[N]")
    gather = base.replace("    x[n] ~ Normal(mu[z[n]], 1.0)", "    i[n] = g[n]\n    x[n] ~ Normal(mu[z[n]] + delta[i[n]], 1.0)")
    gather_hand = base.replace("Normal(mu[z[n]], 1.0)", "Normal(mu[z[n]] + delta[g[n]], 1.0)")
    gate = base.replace("    x[n] ~ Normal(mu[z[n]], 1.0)", "    j[n] = z[n]\n    x[n] ~ Normal(mu[j[n]], 1.0)")
    data = {**_mixture_data(), "g": np.arange(40) % 2}
    _same_fit(gather, gather_hand, data, names=("delta",))
    _same_fit(gate, base, data, names=("delta", "z"))


def test_known_values_on_the_grid_broadcast_as_values():
    """Wc @ X[n], w[n] * eye(D) and v[g[n]] * ones(D): per-row known values (data, a gathered
    const) combined with matrices keep their rows apart from their own axes.  One Gaussian
    block, so one sweep gives the exact posterior: precision (1 + Σ w_n) I, mean
    Σ w_n (y_n − Wc x_n − v_{g_n}) / (1 + Σ w_n)."""
    text = """model grid
dim N
const D = 2
const K = 3
const Wc: real[D, D] = 0.0
const v: real[K] = 0.0
data X: real[N, D]
data w: pos[N]
data g: cat(K)[N]
data y: real[N, D]
b ~ MvNormal(zeros(D), eye(D))
for n in range(N) { y[n] ~ MvNormal(b + Wc @ X[n] + v[g[n]] * ones(D), precision = w[n] * eye(D)) }
"""
    rng = np.random.default_rng(8)
    n = 7
    Wc, v = np.array([[1.0, 2.0], [-0.5, 0.3]]), np.array([0.5, -1.0, 2.0])
    X, w, g, y = rng.normal(size=(n, 2)), rng.gamma(2.0, size=n), rng.integers(0, 3, n), rng.normal(size=(n, 2))
    fit = _fit(text, {"X": X, "w": w, "g": g, "y": y}, consts={"Wc": Wc, "v": v}, max_iter=5)
    resid = y - X @ Wc.T - v[g][:, None]
    mean = (w[:, None] * resid).sum(0) / (1.0 + w.sum())
    np.testing.assert_allclose(fit.posterior["b"].mean, mean, atol=1e-10)
    np.testing.assert_allclose(fit.posterior["b"].precision_matrix, (1.0 + w.sum()) * np.eye(2), atol=1e-10)


# ---- a chain's transition naming a piece of itself ------------------------------------------------
AR_NAMED = """model ar_named
dim T
data y: real[T]
param a: real
s[0] ~ Normal(0.0, 1.0)
for t in range(1, T) {
    loc[t] = a * s[t-1] + 0.1
    s[t] ~ Normal(loc[t], precision = 4.0)
}
for t in range(T) { y[t] ~ Normal(s[t], precision = 10.0) }
"""
AR_WRITTEN = AR_NAMED.replace("    loc[t] = a * s[t-1] + 0.1\n", "").replace("Normal(loc[t],", "Normal(a * s[t-1] + 0.1,")

HMM_NAMED = ROW3.replace("for t in range(1, T) { z[t] ~ Categorical(A[z[t-1]]) }",
                         "for t in range(1, T) {\n    row[t] = A[z[t-1]]\n    z[t] ~ Categorical(row[t])\n}")


def test_a_transition_may_read_its_earlier_step_through_a_named_expression():
    """``loc[t] = a * s[t-1] + 0.1`` then ``s[t] ~ Normal(loc[t], ...)`` was a `cycle` error
    (the graph of names has s → loc → s); it is the chain written out, fitted the same."""
    rng = np.random.default_rng(3)
    s = np.zeros(40)
    for t in range(1, 40):
        s[t] = 0.8 * s[t - 1] + 0.1 + rng.normal() * 0.5
    fit = _same_fit(AR_NAMED, AR_WRITTEN, {"y": s + 0.3 * rng.normal(size=40)}, names=("s",))
    m = vp.parse(AR_NAMED)
    assert m["s"].defs == vp.parse(AR_WRITTEN)["s"].defs  # the transition as written out
    assert ("s", "loc") in m.graph.edges and ("loc", "s") not in m.graph.edges
    assert vp.parse(vp.to_text(m)) == m
    assert abs(float(fit.params["a"]) - 0.8) < 0.3


def test_a_discrete_transition_through_a_named_row():
    """The same for a categorical chain: the transition is ``A[z[t-1]]`` as written by hand,
    and the plan is the hand-written model's (one chain block)."""
    from vemppl.compiler import compile_model

    named, hand = vp.parse(HMM_NAMED), vp.parse(ROW3)
    assert named["z"].defs == hand["z"].defs
    plan_named, plan_hand = compile_model(named), compile_model(hand)
    assert [(b.name, b.family, b.update) for b in plan_named.blocks] == \
        [(b.name, b.family, b.update) for b in plan_hand.blocks]


def test_a_named_transition_at_lag_two_is_refused_at_the_transition():
    text = AR_NAMED.replace("range(1, T)", "range(2, T)").replace("s[t-1]", "s[t-2]").replace(
        "s[0] ~ Normal(0.0, 1.0)", "s[0] ~ Normal(0.0, 1.0)\ns[1] ~ Normal(0.0, 1.0)")
    with pytest.raises(VemError) as err:
        vp.parse(text)
    assert err.value.kind == "unsupported" and "lag other than 1" in str(err.value)
    assert err.value.span is not None and err.value.span.line == 8
