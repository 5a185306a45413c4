"""Bilinear pairs of Gaussian blocks whose ELBO a linear reparameterisation can raise.

In ``dot(W[j], z[n])`` with ``q(W[j])`` and ``q(z[n])`` multivariate Normal over the contracted
axis, the pair ``(W R⁻¹, R z)`` gives every expectation the product is read through the same
value for any invertible ``R`` (``E[wᵀz]`` and ``E[(wᵀz)²] = tr(E[wwᵀ]E[zzᵀ])``), and the
transformed q's are still multivariate Normal.  Only the two blocks' own priors and entropies
change, with the closed-form blocks those priors read (an ARD precision ``alpha[l]`` of
``W[j, l] ~ Normal(0, precision = alpha[l])``), re-fitted to the transformed moments.  The ELBO
as a function of ``R`` is then cheap (no data term), and an ``R`` that raises it moves the fit
along the direction in which mean-field CAVI crawls: the rotation of the latent space and the
ARD switching-off of unused columns (Luttinen & Ilin 2010, "Transformations in variational
Bayesian factor analysis to speed up learning", Neurocomputing 73, §3; the engine's step is
``engine/rotation.py``).

The rule reads the graph only.  A pair qualifies when

* the global block (not indexed by the factor's outermost loop) and the local block are both
  multivariate Normal with closed-form updates, the global one over the last axis of its plate
  (``W[j]`` of ``W[j, l]``, or a vector node ``W[j] ~ MvNormal(...)``), read with all but that
  axis indexed, the local one read whole;
* every factor other than the two blocks' own reads them only inside such products, directly
  (not through a deterministic node), and each block has one partner;
* the blocks' own factors read neither of the pair.

``refresh``: the closed-form latent blocks the pair's own factors read, which no bilinear
factor reads (``alpha``); the step updates them after transforming the pair.  A pair with none
(fixed priors on both sides) is left to plain CAVI and the extrapolation (``rotations``).

``summarised``: the blocks of the pair whose own factor is the same function of every row
(one definition, whose arguments read none of the row's loop variables: ``z[n] ~ MvNormal(zeros(L),
eye(L))``, ``W[j, l] ~ Normal(0, precision = alpha[l])``).  Each factor reading the block is
then affine in each row's mean parameters with coefficients shared by the rows (conjugacy), so
its sum over the rows, and the re-fitted blocks' targets, read the rows only through their
(weighted) sum: the step evaluates them on the rows' mean, an L-vector and an L×L matrix
(Luttinen & Ilin's Σ_n⟨z_n z_nᵀ⟩, Σ_j⟨w_j w_jᵀ⟩).
"""

from __future__ import annotations

from ...families import get_family
from ...ir.expr import BinOp, Call, Index, Name, walk
from ...ir.graph import ModelGraph
from ...plan import BlockStructure, Plan, Rotation, Update
from .linear_gaussian import _reads


def _vector_gaussian(fam) -> bool:
    """A Gaussian over vectors with statistics (E[x], E[x xᵀ]): the family a linear map keeps."""
    return fam.gaussian and fam.event_rank == 1 and tuple(fam.Stats._fields) == ("mean", "outer")


def _operand(e, rank_of):
    """(head, number of indices) of ``W``, ``W[j]``; None for another expression."""
    if isinstance(e, Name):
        return e.id, 0
    if isinstance(e, Index) and isinstance(e.base, Name) and all(isinstance(i, Name) for i in e.indices):
        return e.base.id, len(e.indices)
    return None


def _pairs(expr, mvn, rank_of, outer, events=frozenset()):
    """The (global, local) head pairs of ``expr``'s products ``dot(A, B)``, ``A @ B``."""
    out = []
    for sub in walk(expr):
        if isinstance(sub, Call) and sub.func == "dot" and len(sub.args) == 2:
            pair, matrix = sub.args, False
        elif isinstance(sub, BinOp) and sub.op == "@":
            pair, matrix = (sub.left, sub.right), True
        else:
            continue
        ops = [_operand(x, rank_of) for x in pair]
        if None in ops or not all(h in mvn for h, _ in ops) or ops[0][0] == ops[1][0]:
            continue
        local = [any(isinstance(v, Name) and v.id == outer for v in walk(x)) for x in pair]
        if local.count(True) != 1:
            continue
        (gh, gi), (lh, li) = ops[local.index(False)], ops[local.index(True)]
        left_global = not local[0]
        # the global read leaves its last plate axis (a vector for dot, a matrix's columns for @,
        # which must stand on the left); the local is read whole (its event vector)
        # (a vector-valued node, W[j] ~ MvNormal(...), holds its last axis as its event)
        want = rank_of[gh] + (gh in events) - (2 if matrix else 1)
        if gi != want or li != rank_of[lh] or (matrix and not left_global):
            continue
        out.append((gh, lh))
    return out


def _row_uniform(m: ModelGraph, plan: Plan, block) -> bool:
    """Whether ``block``'s own factor is the same function of each of its rows (``summarised``
    in the module docstring): one definition, indexed by plain loop variables, whose arguments
    read none of the row's (all its indices but a joint last axis)."""
    own = [f for f in plan.factors if f.target == block.name]
    if len(own) != 1 or len(m.nodes[block.name].defs) != 1:
        return False
    d = own[0].definition
    if not all(isinstance(i, Name) for i in d.indices):
        return False
    rows = d.indices[:-1] if block.structure is BlockStructure.JOINT_LAST_AXIS else d.indices
    row_vars = {i.id for i in rows}
    return not any(isinstance(x, Name) and x.id in row_vars for _, e in d.args for x in walk(e))


def rotations(m: ModelGraph, plan: Plan) -> tuple[Rotation, ...]:
    """The bilinear pairs of ``plan`` that the rotation step applies to (module docstring)."""
    blocks = {b.name: b for b in plan.blocks}
    mvn = {n for n, b in blocks.items() if b.update is Update.CAVI and _vector_gaussian(get_family(b.family))
           and not b.members and b.structure in (BlockStructure.MEAN_FIELD, BlockStructure.JOINT_LAST_AXIS)}
    rank_of = {n: len(m.nodes[n].defs[0].indices) for n in mvn}
    events = frozenset(n for n in mvn if blocks[n].structure is BlockStructure.MEAN_FIELD)
    found: dict[tuple[str, str], list[int]] = {}
    for i, f in enumerate(plan.factors):
        d = f.definition
        if f.target in mvn or not d.loops:
            continue
        for _, e in d.args:
            for p in _pairs(e, mvn, rank_of, d.loops[0].var, events):
                found.setdefault(p, []).append(i)
    out = []
    for (g, l), _ in found.items():
        partners = [p for p in found if g in p or l in p]
        if len(partners) != 1 or blocks[l].structure is not BlockStructure.MEAN_FIELD:
            continue
        pair, invariant, ok = {g, l}, [], True
        for i, f in enumerate(plan.factors):
            d = f.definition
            exprs = [e for _, e in d.args] + list(d.indices)
            reads = set().union(*(_reads(m, e, d.loop_vars) for e in exprs)) if exprs else set()
            if f.target in pair:
                ok &= not (reads & pair)
                continue
            if not reads & pair:
                continue
            direct = [x.id for e in exprs for x in walk(e) if isinstance(x, Name)]
            inside = sum(2 for e in exprs for p in _pairs(e, mvn, rank_of, d.loops[0].var if d.loops else None, events)
                         if p == (g, l))
            det = any(n in m.nodes and m.nodes[n].kind == "det" and _reads(m, Name(n)) & pair for n in direct)
            ok &= not det and sum(1 for n in direct if n in pair) == inside and inside > 0
            invariant.append(i)
        if not ok:
            continue
        own = [f for f in plan.factors if f.target in pair]
        parents = set().union(*(_reads(m, e, f.definition.loop_vars) for f in own for _, e in f.definition.args))
        bilinear = set().union(*(_reads(m, e, plan.factors[i].definition.loop_vars)
                                 for i in invariant for _, e in plan.factors[i].definition.args))
        refresh = tuple(n for n in plan.schedule if n in parents and n not in pair and n not in bilinear
                        and n in blocks and blocks[n].update is Update.CAVI and not blocks[n].members)
        if not refresh:
            # Fixed priors on both sides (W[j, l] ~ Normal(0, 1)): nothing for the step to re-fit,
            # and measured, it did harm: on N = 200, D = 6, L = 4 one step's gain of 0.15 nats left
            # the fit where the sweeps' changes shrank by 0.3 a sweep and then grew again, and the
            # default stop ended 0.26 nats below the optimum that the extrapolation alone reaches in
            # 69 sweeps.  The pairs the step is for have a scale to learn (ARD).
            continue
        summarised = tuple(n for n in (g, l) if _row_uniform(m, plan, blocks[n]))
        out.append(Rotation(g, l, refresh, tuple(invariant), summarised))
    return tuple(out)


__all__ = ["rotations"]
