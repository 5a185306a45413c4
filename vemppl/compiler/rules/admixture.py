"""Admixtures: a categorical latent whose weights are a latent indexed by its group."""

from __future__ import annotations

from ...families import get_family
from ...ir.expr import Index, Name, walk
from ...ir.graph import ModelGraph


def is_admixture(m: ModelGraph, z: str) -> bool:
    """True when the categorical latent ``z``'s own probabilities are a latent indexed by its
    group, ``z[d, l] ~ Categorical(theta[d])`` or, through data, ``z[i] ~ Categorical(theta[doc[i]])``:
    each group of units (a document) has its own mixing weights, an admixture (Blei, Ng & Jordan
    2003; Pritchard et al. 2000).

    Its units are then not exchangeable across groups, so clustering them by their data (k-means++)
    says nothing about the groups' weights; variational EM for such models starts the globals
    (topics) at random and fits the locals to them (``Plan.start``, docs/engine.md).  The compiler
    does so only where ``z`` gates categories; a plate of mixtures of values is seeded by k-means++
    (``rules/gates.py::gates_only_values``).
    """
    node = m.nodes[z]
    # Only a categorical latent has mixing weights: a Normal b[s, c] ~ Normal(a[s], ...) reads its
    # group's latent too, but that is a hierarchy, fitted from the prior like any other model.
    if node.kind != "latent" or not node.defs or get_family(node.defs[0].dist).support != "cat":
        return False
    latent = {n.name for n in m.of_kind("latent")}
    data = {n.name for n in m.of_kind("data")}
    weights = {n.name for n in m.of_kind("latent") if get_family(n.defs[0].dist).support != "cat"}
    for d in node.defs:
        for _, e in d.args:
            for sub in walk(e):
                # theta[d], theta[doc[i]]: a latent per group, the group read off loops or data (a
                # latent index, A[z[t-1]], is a chain's transition, and a constant one, A[1], one
                # fixed row: neither is a group's weights)
                if isinstance(sub, Index) and isinstance(sub.base, Name) and sub.base.id in weights:
                    read = [x.id for ix in sub.indices for x in walk(ix) if isinstance(x, Name)]
                    if not set(read) & latent and set(read) & (set(d.loop_vars) | data):
                        return True
    return False


def admixture_plate(m: ModelGraph, z: str) -> str | None:
    """The data plate of the admixture ``z`` (the dim of its outermost loop over a dim: ``M`` of
    LDA's tokens ``z[i]``, ``D`` of ``z[d, l]``), over which the local/global start splits the
    model; None when ``z`` is no admixture or none of its loops runs over a dim (``z[k] ~
    Categorical(theta[k])`` over a constant K is one unit per group, started as any model is)."""
    if not is_admixture(m, z):
        return None
    for loop in m.nodes[z].defs[0].loops:
        stop = loop.stop
        if isinstance(stop, Name) and stop.id in m.nodes and m.nodes[stop.id].kind == "dim":
            return stop.id
    return None


__all__ = ["admixture_plate", "is_admixture"]
