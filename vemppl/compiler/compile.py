"""IR → plan: blocks, factors with their enumerated gates, schedule, conjugacy.

Everything here is read off the graph:

* every latent node is a block whose family is the family of its ``~`` statements;
* a categorical latent read inside an index (``mu[z[n]]``, ``A[z[t-1]]``) makes the
  factor a gate (Minka & Winn 2008): it is summed over the latent's values, weighted by
  ``E[onehot]``, which is affine in the latent's mean parameters;
* conjugacy is decided by tracing the expected log joint on small stand-in sizes and
  recording every moment that is read of each block (``compiler/conjugacy.py``): a block is
  closed-form when every moment read of it is one of its family's sufficient
  statistics and no product couples two of its elements (GUIDE §2).
"""

from __future__ import annotations

import dataclasses

import networkx as nx

from ..diagnostics import VemError
from ..families import get_family
from ..families.markov_chain import MarkovChain
from ..families.markov_chain_homogeneous import HomogeneousMarkovChain
from ..ir.expr import Index, Name, walk
from ..ir.graph import ModelGraph, as_ir
from ..ir.inline import expand, random_nodes
from ..ir.sizes import check_model as check_static
from ..plan import Block, BlockStructure, EnumRef, Factor, Init, MStep, ParamPlan, Plan
from .conjugacy import conjugacy
from .rules import JOINT_RULES
from .rules.amortised import amortised_block
from .rules.bilinear import bilinear_globals
from .rules.admixture import admixture_plate, is_admixture
from .rules.gates import gates_only_values, has_data_gate
from .rules.gaussian_chain import gaussian_chains
from .rules.joint_vector import read_jointly
from .rules.linear_gaussian import moment_plate
from .rules.rotation import rotations
from .rules.markov_chain import is_homogeneous_chain, is_markov_chain


def _enum_refs(model: ModelGraph, target: str, d) -> tuple[EnumRef, ...]:
    cats = {n.name for n in model.of_kind("latent") if get_family(n.defs[0].dist).support == "cat"}
    refs: list[EnumRef] = []
    # Read through deterministic nodes of latents as the evaluator does (ir/inline.py), so a gate
    # inside one (m[n] = mu[z[n]]) is enumerated in the factor that reads it.
    rnd = random_nodes(model)
    exprs = [expand(model, e, d.loop_vars, rnd.__contains__) for _, e in d.args]
    for e in exprs:
        for sub in walk(e):
            if not isinstance(sub, Index):
                continue
            for ix in sub.indices:
                for inner in walk(ix):
                    # z[n] of a plated categorical, or a bare unplated one (a change point s in rate[s, t])
                    bare = isinstance(inner, Name) and inner.id in cats and not model.nodes[inner.id].defs[0].indices
                    if bare or isinstance(inner, Index) and isinstance(inner.base, Name) and inner.base.id in cats:
                        ref = EnumRef(inner, inner.id if bare else inner.base.id)
                        if ref not in refs:
                            refs.append(ref)
    # A categorical target is enumerated only beside another step of its own block (a chain's
    # z[t] with z[t-1]: the pairwise marginal weighs both).  Alone, its factor reads its
    # E[onehot] as a value (Σ_k r_k E[log p_k]), the same number without an enumerated axis,
    # whose gradient is a transpose and a layout copy of every [N, K] cotangent on LDA.
    if target in cats and any(r.block == target for r in refs):
        own = Index(Name(target), d.indices) if d.indices else Name(target)
        ref = EnumRef(own, target)
        if ref not in refs:
            refs.append(ref)
    return tuple(refs)


def _joint_blocks(m: ModelGraph, factors) -> dict:
    """``{node: (family, JointBlock)}`` for every member of a joint block that a rule of
    ``compiler/rules`` finds; a node claimed by an earlier rule stays with it (a later
    block that shares a member is dropped whole, its nodes left to the rules below)."""
    out: dict = {}
    for rule in JOINT_RULES:
        for found in rule.match(m, factors):
            nodes = [n for _, n in found.members]
            if not any(n in out for n in nodes):
                out.update({n: (rule.FAMILY, found) for n in nodes})
    return out


def compile_model(model, probe: bool = True, masked=()) -> Plan:
    """The plan of ``model`` (an IR or a DSL model).  ``masked``: the categorical latents
    fitted with a mask of absent elements (a chain with absent steps is not homogeneous)."""
    m = as_ir(model)
    check_static(m)  # sizes, indices, gates and argument shapes before any array (issue #23)
    factors = []
    for node in m.nodes.values():
        if node.kind not in ("latent", "data"):
            continue
        for d in node.defs:
            if d.dist is not None:
                factors.append(Factor(node.name, d, d.dist, _enum_refs(m, node.name, d)))
    latents = m.of_kind("latent")
    drawn = bilinear_globals(m, factors)
    joint = _joint_blocks(m, factors)
    continuous_chains = gaussian_chains(m)  # refuses, at its statement, a self-reading latent it cannot fit
    blocks = []
    for node in latents:
        if node.name in joint and joint[node.name][1].members[0][1] != node.name:
            continue  # a later member of a joint block, made with its first member below
        dists = {d.dist for d in node.defs}
        if len(dists) > 1:
            raise VemError(
                "unsupported",
                f"'{node.name}' is drawn from different families ({', '.join(sorted(dists))})",
                node.defs[1].span,
            )
        fam = get_family(node.defs[0].dist)
        if not fam.variational:
            d = node.defs[0]
            raise VemError(
                "unsupported",
                f"'{node.name}' is latent, but {fam.name} is a likelihood only: it has no variational "
                f"family. Expected {fam.name} on observed data (a name declared `data`)",
                d.dist_span or d.span,
                f"declare '{node.name}' as data" + (f", or {fam.latent_hint}" if fam.latent_hint else ""),
            )
        if fam.support == "count":
            # Poisson: E[log x!] has no closed form; Binomial, Multinomial: the total_count that
            # rides along η is not carried through the update.  Neither has a derived q yet.
            d = node.defs[0]
            raise VemError(
                "unsupported",
                f"'{node.name}' is a latent count ({fam.name}): a count-valued latent has no variational "
                "update yet (its entropy needs E[log x!])",
                d.dist_span or d.span,
                f"declare '{node.name}' as data if it is observed, or model the count's rate (a Gamma) instead",
            )
        if node.name in joint:
            # A joint block found by a rule (compiler/rules/): mu[k] ~ MvNormal(m, precision = c * Lam[k]),
            # Lam[k] ~ Wishart is one block q(mu[k], Lam[k]) (NormalWishart).
            family, found = joint[node.name]
            blocks.append(Block(node.name, family.name, structure=BlockStructure.JOINT, members=found.members))
            continue
        if node.name in continuous_chains:
            # x[t] ~ Normal(a * x[t-1] + b, ...) (or MvNormal(A @ x[t-1], ...)): the whole chain is one block (Kalman smoothing by autodiff).
            blocks.append(Block(node.name, continuous_chains[node.name], structure=BlockStructure.GAUSSIAN_CHAIN))
            continue
        init = Init.PRIOR
        if fam.support == "cat":
            # Weights per group (an admixture) start at random globals unless the data gated are
            # values, which k-means++ seeds as it does any mixture's (docs/engine.md).
            seeded = has_data_gate(m, node.name, factors) and (
                not is_admixture(m, node.name) or gates_only_values(m, node.name, factors))
            init = Init.KMEANS if seeded else Init.RANDOM
        if fam.support == "cat" and is_markov_chain(node.name, factors):
            # z[t] reads z[t-1]: the whole chain is one block (forward–backward by autodiff),
            # with one transition potential for all steps where the graph says they are equal
            # (and no mask makes some steps absent).
            tied = node.name not in masked and is_homogeneous_chain(m, node.name, factors)
            blocks.append(Block(node.name, HomogeneousMarkovChain.name if tied else MarkovChain.name,
                                structure=BlockStructure.MARKOV_CHAIN, init=init))
            continue
        if node.amortised is not None:
            blocks.append(amortised_block(m, node))
            continue
        if node.name in drawn:
            init = Init.PRIOR_DRAW
        if fam.vector_family is not None and read_jointly(m, node.name):
            # w[j] ~ Normal(...) read as a vector (dot(X[n], w), W[j] of W[j, l]): one
            # MvNormal block over the last plate axis keeps the update exact and jointly valid.
            blocks.append(Block(node.name, fam.vector_family, structure=BlockStructure.JOINT_LAST_AXIS, init=init))
            continue
        blocks.append(Block(node.name, fam.posterior_family or fam.name, init=init))
    for p in m.of_kind("param"):
        if p.type.base in _DISCRETE:
            # Both M-steps move a param continuously (a family's mode, Adam on its unconstrained
            # transform): a `count` total of a Binomial ended at 11.43, a `bool` at 0.5.
            raise VemError(
                "unsupported",
                f"'{p.name}' is a param of the discrete type {p.type.base}: a param is fitted by continuous "
                "M-steps (a family's mode, gradient steps), which would leave it between whole numbers",
                p.span,
                f"make '{p.name}' a const (set it with --set or consts=), or declare it real, pos or unit",
            )
    params = tuple(
        ParamPlan(p.name, p.type.base, MStep.NETWORK if p.is_network else MStep.GRADIENT) for p in m.of_kind("param")
    )

    g = m.graph.copy()
    g.remove_edges_from([(u, v) for u, v in g.edges if u == v])
    order = list(m.nodes)
    by_name = {b.name: b for b in blocks}
    topo = [n for n in nx.lexicographical_topological_sort(g, key=order.index) if n in by_name]
    # Locals initialised from the data (responsibilities) are updated last, so the first
    # sweep fits the globals to them: this is what breaks the label symmetry.
    # A block started from a draw of its prior (the global side of a bilinear term) comes
    # after the local block it multiplies, which so reads the draw first.
    schedule = tuple(
        [n for n in topo if by_name[n].init is Init.PRIOR] + [n for n in topo if by_name[n].init is not Init.PRIOR]
    )
    plates = [admixture_plate(m, b.name) for b in blocks
              if b.structure is BlockStructure.MEAN_FIELD and b.init is not Init.KMEANS]
    start_plate = next((p for p in plates if p is not None), None)
    plan = Plan(m.name, tuple(blocks), tuple(factors), params, schedule,
                start="random-globals" if start_plate else "prior", start_plate=start_plate)
    if probe and (blocks or params):
        plan = conjugacy(m, plan)
        # After the conjugacy test: the rule needs each block's update.
        plan = dataclasses.replace(plan, moment_plate=moment_plate(m, plan))
        plan = dataclasses.replace(plan, rotations=rotations(m, plan))
    return plan


_DISCRETE = ("int", "count", "bool", "cat")

__all__ = ["compile_model"]
