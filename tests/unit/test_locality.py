"""The one definition of a local block (compiler/locality.py) on small graphs written here,
and its three readers (the data plate, the local/global schedule, predictions) agreeing
with it: which blocks each unit of a plate owns, read off the graph (compile_model only)."""

import pytest

import vemppl as vp
from vemppl.compiler.locality import data_dims, local_blocks, on_plates
from vemppl.engine.dataplate import data_plate
from vemppl.engine.schedule import local_blocks as schedule_locals
from vemppl.results.local import local_blocks as predict_locals


def compiled(text):
    m = vp.parse(text)
    return m, vp.compile_model(m)


MIXTURE = """model m
dim N, D
const K = 2
data x: real[N, D]
pi ~ Dirichlet(fill(1.0, K))
for k in range(K) { for j in range(D) { mu[k, j] ~ Normal(0, 1) } }
for n in range(N) {
    z[n] ~ Categorical(pi)
    for j in range(D) { x[n, j] ~ Normal(mu[z[n], j], precision = 1) }
}
"""

# Tokens grouped into documents by data: theta[d] is read only as theta[doc[i]].
ADMIXTURE = """model m
dim M, D, V
const K = 2
data doc: cat(D)[M]
data word: cat(V)[M]
for k in range(K) { beta[k] ~ Dirichlet(fill(0.1, V)) }
for d in range(D) { theta[d] ~ Dirichlet(fill(0.5, K)) }
for i in range(M) {
    z[i] ~ Categorical(theta[doc[i]])
    word[i] ~ Categorical(beta[z[i]])
}
"""


def test_a_block_defined_inside_the_plate_is_local_and_one_read_through_a_latent_is_global():
    m, plan = compiled(MIXTURE)
    # N is x's leading axis; D, its feature axis, is not a plate the data gives
    assert data_dims(m) == {"N"}
    assert on_plates(m, plan, ("N",)) == ("z",)
    assert on_plates(m, plan, ("K",)) == ("mu",)  # the rule itself is per plate
    assert local_blocks(m, plan, "N", ("z",)) == ("z",)  # mu[z[n], j]: read through a latent, global
    assert data_plate(m, plan).local_blocks == ("z",)
    assert schedule_locals(m, plan) == ("z",)
    assert predict_locals(m, plan) == {"z"}


def test_a_block_read_only_at_a_group_of_units_given_by_data_is_local_to_the_schedule():
    m, plan = compiled(ADMIXTURE)
    assert data_dims(m) == {"M", "D"}  # D: the bound of the input doc: cat(D)
    assert on_plates(m, plan, ("M",)) == ("z",)
    assert data_plate(m, plan).local_blocks == ("z",)  # the units of the plate own z only
    assert set(local_blocks(m, plan, "M", ("z",))) == {"theta", "z"}  # theta[doc[i]]
    assert set(schedule_locals(m, plan)) == {"theta", "z"}
    assert predict_locals(m, plan) == {"theta", "z"}  # theta lives on the documents' plate D


def test_a_block_also_read_outside_the_plate_is_global():
    m, plan = compiled(ADMIXTURE.replace("for i in range(M) {", "w ~ Categorical(theta[0])\nfor i in range(M) {"))
    assert on_plates(m, plan, ("M",)) == ("z",)
    assert local_blocks(m, plan, "M", ("z",)) == ("z",)  # theta[0] outside the plate
    assert schedule_locals(m, plan) == ("z",)


def test_a_chain_along_the_plate_has_no_units_to_split():
    m, plan = compiled("""model m
dim T
const K = 2
data x: real[T]
for k in range(K) { A[k] ~ Dirichlet(fill(1.0, K)) }
z[0] ~ Categorical(fill(0.5, K))
for t in range(1, T) { z[t] ~ Categorical(A[z[t-1]]) }
for k in range(K) { m[k] ~ Normal(0, 1) }
for t in range(T) { x[t] ~ Normal(m[z[t]], precision = 1) }
""")
    assert on_plates(m, plan, ("T",)) == ("z",)
    assert predict_locals(m, plan) == {"z"}  # new sequences re-infer their chain
    with pytest.raises(vp.VemError, match="plate over T"):
        data_plate(m, plan)  # its steps are not independent units
