"""Scalar latents read as a vector (``dot(X[n], w)``): one block in the family's vector family."""

from __future__ import annotations

from ...ir.expr import Index, Name, indexes, walk
from ...ir.graph import ModelGraph


def read_jointly(m: ModelGraph, name: str) -> bool:
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


__all__ = ["read_jointly"]
