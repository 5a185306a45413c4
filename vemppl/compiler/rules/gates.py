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


def gates_only_values(m: ModelGraph, z: str, factors) -> bool:
    """True when every data array that the categorical ``z`` gates holds values (real, pos, unit,
    count, bool), none categories: a mixture per group (``z[n] ~ Categorical(w[g[n]])`` gating
    ``y[n] ~ Normal(mu[z[n]], ...)``), whose components k-means++ on those values finds, unlike an
    admixture of categories (LDA's one word per token, one-hot, clusters by the word alone)."""
    gated = [m.nodes[f.target] for f in factors
             if m.nodes[f.target].kind == "data" and any(r.block == z and r.expr != Name(z) for r in f.enum)]
    return bool(gated) and all(n.type.base in ("real", "pos", "unit", "count", "bool") for n in gated)


__all__ = ["gates_only_values", "has_data_gate"]
