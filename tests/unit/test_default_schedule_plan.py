"""The default schedule read off the graph, checked on the plan alone (no fitting; issue #21).

For each shape of graph, a model written here (not in models/), and what the compiler and
``vp.cavi().for_plan`` choose when the user gives no option, against what docs/engine.md
("The default start and schedule, read off the graph") says they choose:

* an admixture (LDA-shaped, grouped through data or by a loop): ``start="random-globals"``,
  ``local_iter=20``, ``local_tol=1e-3``, ``local_restart=25``, ``tol=2e-3``; the categorical
  locals start at random;
* a mixture (real, binary, count or categorical data): ``start="prior"``, ``tol=1e-8``, the
  responsibilities seeded by k-means++ and updated after every global;
* a chain (categorical or Gaussian emissions): the same, the chain one block updated last;
* the global side of a bilinear term (factor analysis with latent loadings): a draw of its
  prior, updated after the local side it multiplies;
* anything else: every block at its prior, nothing seeded;
* which options override which (the plan's start whenever ``start`` is not given; its local
  options and tol only while none of ``local_iter``, ``local_tol``, ``local_restart`` is given).
"""

import pytest

import vemppl as vp
from _default_graphs import (BILINEAR, BINARY_MIXTURE, CATEGORICAL_CHAIN, GAUSSIAN_CHAIN, GAUSSIAN_MIXTURE, HIERARCHY,
                             LDA_BY_DATA, LDA_BY_LOOP)

ADMIXTURES = (LDA_BY_DATA, LDA_BY_LOOP)
MIXTURES = ((GAUSSIAN_MIXTURE, "c"), (BINARY_MIXTURE, "c"))
CHAINS = ((GAUSSIAN_CHAIN, "s"), (CATEGORICAL_CHAIN, "s"))


def plan(text):
    return vp.compile_model(vp.parse(text))


def chosen(text, **options):
    """(the algorithm's options, tol) the fit runs with, given ``options`` (``tol`` among them)."""
    tol = options.pop("tol", None)
    return vp.cavi(**options).for_plan(plan(text), tol)


# ---- admixtures (LDA-shaped graphs) -------------------------------------------------------------

@pytest.mark.parametrize("text", ADMIXTURES)
def test_an_admixture_runs_variational_em_with_restarted_locals(text):
    p = plan(text)
    assert p.start == "random-globals"
    assert p.block("s").init == "random" and p.block("mix").init == "prior" and p.block("phi").init == "prior"
    a, tol = chosen(text)
    assert (a.start, a.local_iter, a.local_tol, a.local_restart, tol) == ("random-globals", 20, 1e-3, 25, 2e-3)
    assert a.scheduled  # the local/global schedule runs, not plain CAVI


@pytest.mark.parametrize("text", ADMIXTURES)
def test_an_admixtures_plan_prints_its_default_start(text):
    assert "default start: random-globals" in str(plan(text))


def test_a_users_tol_keeps_the_rest_of_the_admixture_default():
    a, tol = chosen(LDA_BY_DATA, tol=1e-6)
    assert (a.start, a.local_tol, a.local_restart, tol) == ("random-globals", 1e-3, 25, 1e-6)


@pytest.mark.parametrize("option", [dict(local_iter=5), dict(local_tol=1e-2), dict(local_restart=10)])
def test_a_local_option_keeps_the_plans_start_but_drops_its_other_choices(option):
    a, tol = chosen(LDA_BY_DATA, **option)
    assert a.start == "random-globals" and tol == 1e-8
    expected = {**dict(local_iter=None, local_tol=None, local_restart=False), **option}
    assert (a.local_iter, a.local_tol, a.local_restart) == tuple(expected[k] for k in
                                                                  ("local_iter", "local_tol", "local_restart"))


def test_start_prior_on_an_admixture_is_plain_cavi():
    a, tol = chosen(LDA_BY_DATA, start="prior")
    assert (a.start, a.local_tol, a.local_restart, tol) == ("prior", None, False, 1e-8)
    assert not a.scheduled


# ---- mixtures and chains -------------------------------------------------------------------------

@pytest.mark.parametrize("text, z", MIXTURES + CHAINS)
def test_mixtures_and_chains_start_at_the_prior_with_seeded_responsibilities(text, z):
    p = plan(text)
    assert p.start == "prior"
    assert p.block(z).init == "kmeans++"
    assert all(b.init == "prior" for b in p.blocks if b.name != z)
    assert "default start" not in str(p)
    a, tol = chosen(text)
    assert (a.start, a.local_iter, a.local_tol, a.local_restart, tol) == ("prior", None, None, False, 1e-8)
    assert not a.scheduled


@pytest.mark.parametrize("text, z", MIXTURES + CHAINS)
def test_the_seeded_locals_are_updated_after_every_global(text, z):
    """The first sweep fits the globals to the seeded responsibilities (docs/engine.md)."""
    p = plan(text)
    assert p.schedule[-1] == z
    assert sorted(p.schedule) == sorted(b.name for b in p.blocks)


@pytest.mark.parametrize("text", [t for t, _ in CHAINS])
def test_a_chain_is_one_block_with_tied_transitions(text):
    b = plan(text).block("s")
    assert b.structure == "markov-chain" and b.family == "HomogeneousMarkovChain"


def test_a_categorical_latent_that_gates_no_data_starts_at_random():
    text = """
model hidden
dim N
const K = 2
weights ~ Dirichlet(ones(K))
for n in range(N) { c[n] ~ Categorical(weights) }
"""
    p = plan(text)
    assert p.start == "prior" and p.block("c").init == "random"


# ---- anything else -------------------------------------------------------------------------------

def test_a_model_with_no_categorical_latent_starts_every_block_at_its_prior():
    p = plan(HIERARCHY)
    assert p.start == "prior"
    assert {b.name: b.init for b in p.blocks} == {"centre": "prior", "spread": "prior", "effect": "prior"}
    # Gaussian locals read affinely by Gaussian data: the plate is fitted on its first two
    # moments and stopped at relative 1e-10 (compiler/rules/linear_gaussian.py, docs/engine.md)
    assert p.moment_plate is not None
    a, tol = chosen(HIERARCHY)
    assert (a.start, tol) == ("prior", 1e-10) and not a.scheduled


def test_the_global_side_of_a_bilinear_term_starts_from_a_prior_draw_after_its_local_side():
    p = plan(BILINEAR)
    assert p.start == "prior"
    assert {b.name: b.init for b in p.blocks} == {"noise": "prior", "h": "prior", "W": "prior draw"}
    assert p.schedule.index("W") > p.schedule.index("h")
    # Gaussian locals read affinely by Gaussian data: the plate is fitted on its first two
    # moments and stopped at relative 1e-10 (compiler/rules/linear_gaussian.py, docs/engine.md)
    assert p.moment_plate is not None
    a, tol = chosen(BILINEAR)
    assert (a.start, tol) == ("prior", 1e-10) and not a.scheduled
