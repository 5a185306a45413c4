"""Gates read by data: their categorical latent starts from k-means++ responsibilities."""

from __future__ import annotations

from ...ir.expr import Name
from ...ir.graph import ModelGraph


def has_data_gate(m: ModelGraph, z: str, factors) -> bool:
    """True when the categorical ``z`` gates data (``x[n] ~ f(mu[z[n]])``): its responsibilities
    can start from k-means++ on that data's sufficient statistics (values; one-hot categories)."""
    for f in factors:
        node = m.nodes[f.target]
        if node.kind == "data" and any(r.block == z and r.expr != Name(z) for r in f.enum):
            if node.type.base in ("real", "pos", "unit", "count", "bool", "cat"):
                return True
    return False


__all__ = ["has_data_gate"]
