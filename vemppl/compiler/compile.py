"""IR → plan: blocks, factors with their enumerated gates, schedule, conjugacy.

Everything here is read off the graph:

* every latent node is a block whose family is the family of its ``~`` statements;
* a categorical latent read inside an index (``mu[z[n]]``, ``A[z[t-1]]``) makes the
  factor a gate (Minka & Winn 2008): it is summed over the latent's values, weighted by
  ``E[onehot]``, which is affine in the latent's mean parameters;
* conjugacy is decided by probing the expected log joint on small stand-in sizes and
  recording every moment that is read of each block (``engine.probe``): a block is
  closed-form when every moment read of it is one of its family's sufficient
  statistics and no product couples two of its elements (GUIDE §2).
"""

from __future__ import annotations

import networkx as nx

from ..diagnostics import VemError
from ..families import get_family
from ..families.markov_chain import MarkovChain
from ..families.markov_chain_homogeneous import HomogeneousMarkovChain
from ..families.normal_wishart import NormalWishart
from ..ir.expr import BinOp, Call, Index, Name, Num, children, head_name, indexes, walk
from ..ir.graph import ModelGraph, reads
from .plan import Block, EnumRef, Factor, ParamPlan, Plan


def _enum_refs(model: ModelGraph, target: str, d) -> tuple[EnumRef, ...]:
    cats = {n.name for n in model.of_kind("latent") if get_family(n.defs[0].dist).support == "cat"}
    refs: list[EnumRef] = []
    exprs = [e for _, e in d.args]
    for e in exprs:
        for sub in walk(e):
            if not isinstance(sub, Index):
                continue
            for ix in sub.indices:
                for inner in walk(ix):
                    if isinstance(inner, Index) and isinstance(inner.base, Name) and inner.base.id in cats:
                        ref = EnumRef(inner, inner.base.id)
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


def compile_model(model, probe: bool = True, masked=()) -> Plan:
    """The plan of ``model`` (an IR or a DSL model).  ``masked``: the categorical latents
    fitted with a mask of absent elements (a chain with absent steps is not homogeneous)."""
    from ..api import as_ir

    m = as_ir(model)
    factors = []
    for node in m.nodes.values():
        if node.kind not in ("latent", "data"):
            continue
        for d in node.defs:
            if d.dist is not None:
                factors.append(Factor(node.name, d, d.dist, _enum_refs(m, node.name, d)))
    latents = m.of_kind("latent")
    drawn = _bilinear_globals(m, factors)
    normal_wishart = _normal_wishart_pairs(m, factors)
    blocks = []
    for node in latents:
        if node.name in normal_wishart.values():
            continue  # the precision of a Normal–Wishart block, made with its location below
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
        if node.name in normal_wishart:
            # mu[k] ~ MvNormal(m, precision = c * Lam[k]), Lam[k] ~ Wishart: one block q(mu[k], Lam[k]).
            members = (("loc", node.name), ("precision", normal_wishart[node.name]))
            blocks.append(Block(node.name, NormalWishart.name, structure="normal-wishart", members=members))
            continue
        init = "prior"
        if fam.support == "cat":
            seeded = _has_data_gate(m, node.name, factors) and not _is_admixture(m, node.name)
            init = "kmeans++" if seeded else "random"
        if fam.support == "cat" and _is_markov_chain(node.name, factors):
            # z[t] reads z[t-1]: the whole chain is one block (forward–backward by autodiff),
            # with one transition potential for all steps where the graph says they are equal
            # (and no mask makes some steps absent).
            tied = node.name not in masked and _is_homogeneous_chain(m, node.name, factors)
            blocks.append(Block(node.name, HomogeneousMarkovChain.name if tied else MarkovChain.name,
                                structure="markov-chain", init=init))
            continue
        if node.amortised is not None:
            blocks.append(_amortised_block(m, node))
            continue
        if node.name in drawn:
            init = "prior draw"
        if fam.name == "Normal" and _read_jointly(m, node.name):
            # w[j] ~ Normal(...) read as a vector (dot(X[n], w), W[j] of W[j, l]): one
            # MvNormal block over the last plate axis keeps the update exact and jointly valid.
            blocks.append(Block(node.name, "MvNormal", structure="joint over last axis", init=init))
            continue
        if node.name in drawn:
            init = "prior draw"
        blocks.append(Block(node.name, fam.posterior_family or fam.name, init=init))
    params = tuple(
        ParamPlan(p.name, p.type.base, "network" if p.is_network else "gradient") for p in m.of_kind("param")
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
        [n for n in topo if by_name[n].init == "prior"] + [n for n in topo if by_name[n].init != "prior"]
    )
    admixed = any(_is_admixture(m, b.name) for b in blocks if b.structure == "mean-field")
    plan = Plan(m.name, tuple(blocks), tuple(factors), params, schedule,
                start="random-globals" if admixed else "prior")
    if probe and blocks:
        from ..engine.probe import conjugacy

        plan = conjugacy(m, plan)
    return plan


def _amortised_block(m: ModelGraph, node) -> Block:
    """``q(z[n]) = enc(x[n])``: a diagonal Normal from the encoder, in the latent's own
    family (Normal or MvNormal), fitted with the networks."""
    from ..frontends.printer import definition_to_text

    q = node.amortised
    where = f" at {q.span.file or '<model>'}:{q.span.line}:{q.span.column}" if q.span is not None else ""
    return Block(
        node.name, node.defs[0].dist, structure="amortised (diagonal)", update="amortised",
        reason=f"{definition_to_text(node.name, q, amortised=True)}{where}",
    )


def _bilinear_globals(m: ModelGraph, factors) -> set[str]:
    """Gaussian latents multiplied by another Gaussian latent that is local to the data.

    In ``dot(W[j], z[n])`` inside the loop over ``n``, ``W = 0, E[z] = 0`` is a saddle that
    CAVI started from the prior does not leave, and ARD priors then switch every column
    off (VB-PCA from a symmetric start; Bishop 1999, Ilin & Raiko 2010).  The global side
    (the operand not indexed by the factor's outermost loop) starts from a draw of its
    prior and is updated after the local side, so the first update of the local side is a
    random projection of the data (one step of power iteration).
    """
    gaussian = {
        n.name for n in m.of_kind("latent") if n.defs and n.defs[0].dist in ("Normal", "MvNormal")
    }
    out: set[str] = set()
    for f in factors:
        d = f.definition
        if not d.loops:
            continue
        outer = d.loops[0].var
        for _, e in d.args:
            for sub in walk(e):
                if isinstance(sub, Call) and sub.func == "dot" and len(sub.args) == 2:
                    pair = sub.args
                elif isinstance(sub, BinOp) and sub.op in ("@", "*"):
                    pair = (sub.left, sub.right)
                else:
                    continue
                heads = [head_name(x) for x in pair]
                if not all(h in gaussian for h in heads) or heads[0] == heads[1]:
                    continue
                local = [any(isinstance(v, Name) and v.id == outer for v in walk(x)) for x in pair]
                if local.count(True) == 1:
                    out.add(heads[local.index(False)])
    return out


def _read_jointly(m: ModelGraph, name: str) -> bool:
    """True when some expression reads ``name`` with fewer indices than its plate rank."""
    rank = len(m.nodes[name].defs[0].indices)
    if rank == 0 or any(len(d.indices) != rank for d in m.nodes[name].defs):
        return False
    for node in m.nodes.values():
        for d in node.defs:
            exprs = [e for _, e in d.args] + ([d.expr] if d.expr is not None else [])
            for e in exprs:
                for sub in walk(e):
                    if isinstance(sub, Index) and isinstance(sub.base, Name) and sub.base.id == name:
                        if len(sub.indices) < rank:
                            return True
                    elif isinstance(sub, Name) and sub.id == name and not indexes(e, sub):
                        return True
    return False


def _normal_wishart_pairs(m: ModelGraph, factors) -> dict[str, str]:
    """``{mu: Lam}`` for every ``mu[k] ~ MvNormal(m, precision = c * Lam[k])`` with
    ``Lam[k] ~ Wishart(...)`` over the same plate, m and c fixed (no latent or param read).

    Such a pair is one Normal–Wishart block q(mu[k], Lam[k]) (Bishop PRML §10.2.1) when every
    other factor that reads ``mu`` reads it as the location of an MvNormal whose precision
    is ``Lam`` (or a fixed multiple) at the same element, ``x[n] ~ MvNormal(mu[z[n]],
    precision = Lam[z[n]])``: the expected log joint is then affine in the block's
    statistics.  Otherwise the two stay mean-field.
    """
    random = {n.name for n in m.nodes.values() if n.kind in ("latent", "param")}

    def is_fixed(e, d) -> bool:
        return not any(r in random for r in reads(e, d.loop_vars))

    def element(e, d):
        """(node, indices) of ``Lam[k]``, ``c * Lam[k]`` or ``Lam[k] * c`` with c fixed."""
        if isinstance(e, BinOp) and e.op == "*":
            for a, b in ((e.left, e.right), (e.right, e.left)):
                if is_fixed(a, d):
                    return element(b, d)
            return None
        if isinstance(e, Index) and isinstance(e.base, Name):
            return e.base.id, e.indices
        if isinstance(e, Name):
            return e.id, ()
        return None

    def single(name, dist):
        node = m.nodes.get(name)
        ok = node is not None and node.kind == "latent" and len(node.defs) == 1 and node.amortised is None
        return node.defs[0] if ok and node.defs[0].dist == dist else None

    plates = lambda d: [(lp.var, lp.start, lp.stop) for lp in d.loops]  # noqa: E731
    pairs: dict[str, str] = {}
    for node in m.of_kind("latent"):
        d = single(node.name, "MvNormal")
        if d is None or d.arg("loc") is None or not is_fixed(d.arg("loc"), d):
            continue
        prec = element(d.arg("precision_matrix"), d) if d.arg("precision_matrix") is not None else None
        if prec is None or prec[1] != d.indices or prec[0] in pairs.values():
            continue
        w = single(prec[0], "Wishart")
        if w is None or w.indices != d.indices or plates(w) != plates(d):
            continue
        if all(_reads_as_pair(f, node.name, prec[0], element) for f in factors if f.definition is not d):
            pairs[node.name] = prec[0]
    return pairs


def _reads_as_pair(f, loc: str, prec: str, element) -> bool:
    """True when factor ``f`` reads ``loc`` only as an MvNormal's location beside ``prec``
    (or a fixed multiple of it) at the same element, or not at all."""
    d = f.definition
    if loc not in reads_of(d):
        return True
    arg = d.arg("loc") if f.family == "MvNormal" else None
    where = (arg.base.id, arg.indices) if isinstance(arg, Index) and isinstance(arg.base, Name) else (
        (arg.id, ()) if isinstance(arg, Name) else None)
    other = [e for k, e in d.args if k not in ("loc", "precision_matrix")] + list(d.indices)
    if where is None or where[0] != loc or any(loc in reads(e, d.loop_vars) for e in other):
        return False
    p = d.arg("precision_matrix")
    return p is not None and element(p, d) == (prec, where[1])


def reads_of(d) -> set[str]:
    return {r for _, e in d.args for r in reads(e, d.loop_vars)}


def _is_markov_chain(z: str, factors) -> bool:
    return any(f.target == z and sum(r.block == z for r in f.enum) >= 2 for f in factors)


def _is_homogeneous_chain(m: ModelGraph, z: str, factors) -> bool:
    """The chain's pairwise potential is the same at every step, so its statistic can be the
    expected transition counts (families/markov_chain_homogeneous.py).  That holds when:

    * one factor reads two steps of ``z``, its own transition ``z[.., t] ~ f(.. z[.., t-1] ..)``,
      defined for ``t in range(1, ·)`` (each step after the first has one transition);
    * ``z``'s one other definition is its first step ``z[.., 0]``, under the same outer loops
      (every sequence has its transitions);
    * the transition's arguments read ``t`` only through ``z[.., t-1]`` (``A[z[t-1]]``, not
      ``A[t][z[t-1]]`` or ``A[z[t-1], u[t]]``), so its expected log-density is one K×K table.
    """
    pair = [f for f in factors if sum(r.block == z for r in f.enum) >= 2]
    defs = m.nodes[z].defs
    if len(pair) != 1 or pair[0].target != z or len(defs) != 2:
        return False
    d = pair[0].definition
    first = next(x for x in defs if x is not d)
    if not d.indices or not isinstance(d.indices[-1], Name):
        return False
    t = d.indices[-1].id
    loop_t = next((lp for lp in d.loops if lp.var == t), None)
    if loop_t is None or loop_t.start != Num(1) or not first.indices or first.indices[-1] != Num(0):
        return False
    if first.indices[:-1] != d.indices[:-1] or first.loops != tuple(lp for lp in d.loops if lp.var != t):
        return False
    lagged = Index(Name(z), d.indices[:-1] + (BinOp("-", Name(t), Num(1)),))

    def reads_t(e):
        if isinstance(e, Index) and isinstance(e.base, Name) and e.base.id == z:
            return e != lagged
        if isinstance(e, Name):
            return e.id == t
        return any(reads_t(c) for c in children(e))

    return not any(reads_t(e) for _, e in d.args)


def _has_data_gate(m: ModelGraph, z: str, factors) -> bool:
    """True when the categorical ``z`` gates data (``x[n] ~ f(mu[z[n]])``): its responsibilities
    can start from k-means++ on that data's sufficient statistics (values; one-hot categories)."""
    for f in factors:
        node = m.nodes[f.target]
        if node.kind == "data" and any(r.block == z and r.expr != Name(z) for r in f.enum):
            if node.type.base in ("real", "pos", "unit", "count", "bool", "cat"):
                return True
    return False


def _is_admixture(m: ModelGraph, z: str) -> bool:
    """True when the categorical latent ``z``'s own probabilities are a latent indexed by its
    group, ``z[d, l] ~ Categorical(theta[d])`` or, through data, ``z[i] ~ Categorical(theta[doc[i]])``:
    each group of units (a document) has its own mixing weights, an admixture (Blei, Ng & Jordan
    2003; Pritchard et al. 2000).

    Its units are then not exchangeable across groups, so clustering them by their data (k-means++)
    says nothing about the groups' weights; variational EM for such models starts the globals
    (topics) at random and fits the locals to them (``Plan.start``, docs/engine.md).
    """
    node = m.nodes[z]
    if node.kind != "latent" or not node.defs:
        return False
    latent = {n.name for n in m.of_kind("latent")}
    weights = {n.name for n in m.of_kind("latent") if get_family(n.defs[0].dist).support != "cat"}
    for d in node.defs:
        for _, e in d.args:
            for sub in walk(e):
                # theta[d], theta[doc[i]]: a latent per group, the group read off loops or data (a
                # latent index, A[z[t-1]], is a chain's transition, not a group's weights)
                if isinstance(sub, Index) and isinstance(sub.base, Name) and sub.base.id in weights:
                    if sub.indices and not any(isinstance(x, Name) and x.id in latent
                                               for ix in sub.indices for x in walk(ix)):
                        return True
    return False


__all__ = ["compile_model", "head_name"]
