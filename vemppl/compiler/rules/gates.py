"""Gates read by real-valued data: their categorical latent starts from k-means++ responsibilities."""

from __future__ import annotations

from ...ir.expr import Name
from ...ir.graph import ModelGraph


def has_real_gate(m: ModelGraph, z: str, factors) -> bool:
    for f in factors:
        node = m.nodes[f.target]
        if node.kind == "data" and any(r.block == z and r.expr != Name(z) for r in f.enum):
            if node.type.base in ("real", "pos", "unit", "count", "bool"):
                return True
    return False


__all__ = ["has_real_gate"]
