"""Local blocks: the one definition, read off the graph (never off a model's name).

A block is *local to the plate over* ``dim`` when one of its definitions lies inside the loop
over ``dim``: ``z[n]`` inside ``for n in range(N)``, a sequence's chain ``z[s, t]`` inside the
loop over ``S``.  Each unit of the plate then owns its elements.  Every other block is global.
The three users read this one rule, each over the plates it needs:

* the data plate (``engine/dataplate.py``; SVI, sharding, chunks, merged rows): the blocks
  local to the plate it splits (each must then be indexed by it first);
* the local/global schedule (``engine/schedule.py``): those, and the blocks whose every read
  lies inside the plate at a group of units the data gives (``theta[doc[i]]``: a document's
  proportions), ``local_blocks``;
* predictions on new data (``results/local.py``): the blocks local to any plate whose size the
  data gives (``data_dims``: a data array's leading axis, or the documents ``D`` of an input
  ``doc: cat(D)``), re-inferred with the globals held.
"""

from __future__ import annotations

from ..elj.evaluate import plate_var
from ..ir.expr import Index, Name, indexes, walk


def on_plates(model, plan, dims) -> tuple[str, ...]:
    """The blocks of ``plan`` local to a plate over one of ``dims`` (in the plan's block order):
    one of their definitions lies inside the loop over it."""
    dims = tuple(dims)
    return tuple(b.name for b in plan.blocks
                 if any(plate_var(d, dim) is not None for d in model.nodes[b.name].defs for dim in dims))


def data_dims(model) -> set[str]:
    """The sizes the data gives: the leading axis of every data array (observations, time
    steps), and the bound of an input categorical array (``doc: cat(D)`` makes documents a
    plate).  A feature axis such as ``P`` of ``X: real[N, P]`` is not one."""
    out = set()
    for n in model.of_kind("data"):
        lead = n.type.shape[0] if n.type.shape else None
        if isinstance(lead, Name):
            out.add(lead.id)
        if n.type.bound is not None and not n.defs and isinstance(n.type.bound, Name):
            out.add(n.type.bound.id)
    return out


def local_blocks(model, plan, dim: str, units: tuple[str, ...]) -> tuple[str, ...]:
    """The blocks local to the units of the plate over ``dim`` (``units``: those local to it,
    ``on_plates``) or to groups of them given by data: every read of the block inside the plate
    is indexed first by the plate's loop variable (``z[i]``) or by a data array read at it
    (``theta[doc[i]]``), and none is outside.  A block read through a latent index
    (``beta[z[i]]``, ``mu[z[n]]``) or by another loop (``W[j]``) is global.  In schedule order."""
    data = {n.name for n in model.of_kind("data")}
    blocks = {b.name for b in plan.blocks}
    local = set(units)
    reads: dict[str, list[bool]] = {b: [] for b in blocks}
    for node in model.nodes.values():
        for d in node.defs:
            var = plate_var(d, dim)
            exprs = [e for _, e in d.args] + list(d.indices) + ([d.expr] if d.expr is not None else [])
            for e in exprs:
                for x in walk(e):
                    if isinstance(x, Index) and isinstance(x.base, Name) and x.base.id in blocks:
                        reads[x.base.id].append(var is not None and _by_unit(x.indices[0], var, data))
                    elif isinstance(x, Name) and x.id in blocks and not indexes(e, x):
                        reads[x.id].append(False)
    for b, r in reads.items():
        if r and all(r):
            local.add(b)
    return tuple(j for j in plan.schedule if j in local)


def _by_unit(ix, var, data) -> bool:
    if isinstance(ix, Name):
        return ix.id == var
    return (isinstance(ix, Index) and isinstance(ix.base, Name) and ix.base.id in data
            and len(ix.indices) == 1 and isinstance(ix.indices[0], Name) and ix.indices[0].id == var)


__all__ = ["data_dims", "local_blocks", "on_plates"]
