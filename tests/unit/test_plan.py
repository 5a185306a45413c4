"""The compiler's plan on small graphs written here: which blocks, which structure, which
update kind, which factor broke conjugacy, which M-step (compile_model only; nothing fits)."""

import pytest

import vemppl as vp
from vemppl.plan import BlockStructure, Init, MStep, Update


def plan_of(text):
    return vp.compile_model(vp.parse(text))


def test_conjugate_normal_normal_is_one_closed_form_block_at_its_prior():
    plan = plan_of("""model m
dim N
data x: real[N]
mu ~ Normal(0, 1)
for n in range(N) { x[n] ~ Normal(mu, precision = 2) }
""")
    (b,) = plan.blocks
    assert (b.name, b.family, b.structure, b.update, b.init) == (
        "mu", "Normal", BlockStructure.MEAN_FIELD, Update.CAVI, Init.PRIOR)
    assert b.reason is None and plan.schedule == ("mu",) and len(plan.factors) == 2


def test_a_mixture_gates_its_likelihood_and_seeds_its_responsibilities_from_the_data():
    plan = plan_of("""model m
dim N
const K = 2
data x: real[N]
pi ~ Dirichlet(fill(1.0, K))
for k in range(K) { mu[k] ~ Normal(0, 1) }
for n in range(N) {
    z[n] ~ Categorical(pi)
    x[n] ~ Normal(mu[z[n]], precision = 1)
}
""")
    z = plan.block("z")
    assert (z.family, z.init, z.update) == ("Categorical", Init.KMEANS, Update.CAVI)
    assert all(b.update is Update.CAVI for b in plan.blocks)
    gated = [f for f in plan.factors if f.target == "x"]
    assert [r.block for r in gated[0].enum] == ["z"]
    # Blocks started from their prior first; the seeded local last, so the first sweep fits
    # the globals to the seeded responsibilities.
    assert plan.schedule[-1] == "z" and set(plan.schedule) == {"pi", "mu", "z"}


def test_a_logistic_factor_breaks_conjugacy_and_the_plan_names_it():
    plan = plan_of("""model m
dim N
data y: bool[N]
w ~ Normal(0, 1)
for n in range(N) { y[n] ~ Bernoulli(logits = w) }
""")
    w = plan.block("w")
    assert w.update is Update.NATURAL_GRADIENT
    assert "y[n] ~ Bernoulli(logits = w)" in w.reason and "<model>:5" in w.reason


HMM = """model m
dim S, T
const K = 3
data x: real[S, T]
for k in range(K) {
    A[k] ~ Dirichlet(fill(1.0, K))
    mu[k] ~ Normal(0, 1)
}
for s in range(S) {
    z[s, 0] ~ Categorical(fill(1.0 / K, K))
    for t in range(1, T) { z[s, t] ~ Categorical(A[z[s, t - 1]]) }
    for t in range(T) { x[s, t] ~ Normal(mu[z[s, t]], precision = 1) }
}
"""


def test_a_markov_dependence_makes_one_chain_block_with_tied_transitions():
    plan = plan_of(HMM)
    z = plan.block("z")
    assert (z.structure, z.family, z.update) == (BlockStructure.MARKOV_CHAIN, "HomogeneousMarkovChain", Update.CAVI)
    masked = vp.compile_model(vp.parse(HMM), masked=("z",))
    assert masked.block("z").family == "MarkovChain"  # absent steps: one potential per step


def test_scalar_normals_read_as_a_vector_are_one_joint_block():
    plan = plan_of("""model m
dim N, P
data X: real[N, P]
data y: real[N]
for j in range(P) { w[j] ~ Normal(0, 1) }
for n in range(N) { y[n] ~ Normal(dot(X[n], w), precision = 1) }
""")
    w = plan.block("w")
    assert (w.family, w.structure, w.update) == ("MvNormal", BlockStructure.JOINT_LAST_AXIS, Update.CAVI)


def test_point_parameters_get_the_m_step_their_reads_allow():
    plan = plan_of("""model m
dim N
data x: real[N]
param tau: pos
param m0: real
mu ~ Normal(m0, 1)
for n in range(N) { x[n] ~ Normal(mu, precision = tau) }
""")
    tau, m0 = plan.param("tau"), plan.param("m0")
    assert (tau.mstep, tau.family) == (MStep.CLOSED_FORM, "Gamma")
    assert (m0.mstep, m0.family) == (MStep.CLOSED_FORM, "Normal")


def test_a_parameter_read_nonlinearly_takes_gradient_steps_with_the_reason():
    plan = plan_of("""model m
dim N
data y: bool[N]
param b: real
w ~ Normal(0, 1)
for n in range(N) { y[n] ~ Bernoulli(logits = w + b) }
""")
    b = plan.param("b")
    assert b.mstep is MStep.GRADIENT and "Bernoulli(logits = w + b)" in b.reason


def test_plan_fields_given_as_text_become_the_enum_members():
    from vemppl.plan import Block, ParamPlan

    b = Block("z", "Categorical", structure="markov-chain", update="natural-gradient", init="random")
    assert (b.structure, b.update, b.init) == (BlockStructure.MARKOV_CHAIN, Update.NATURAL_GRADIENT, Init.RANDOM)
    assert ParamPlan("p", "real", "closed-form").mstep is MStep.CLOSED_FORM
    with pytest.raises(ValueError):
        Block("z", "Categorical", update="gibbs")
