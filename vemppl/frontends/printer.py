"""IR → canonical ``.vem`` text.

The canonical form declares every ``dim``, ``const``, ``data`` and ``param`` first, then
prints each definition inside its own loops, nodes in a dependency order, then the
amortised posteriors (``q(z[n]) = enc(x[n])``).  It is the
inverse of the parser up to spans: ``parse(to_text(m)) == m``.  The pieces (expressions,
types, definitions) are printed by ``ir/text.py``.
"""

from __future__ import annotations

import networkx as nx

from ..ir.graph import ModelGraph, as_ir
from ..ir.text import definition_to_text, expr_to_text, type_to_text


def to_text(model) -> str:
    """Canonical ``.vem`` text of a model (an IR or a Python-DSL model)."""
    m: ModelGraph = as_ir(model)
    out = [f"model {m.name}"]
    dims = [n.name for n in m.of_kind("dim")]
    if dims:
        out.append("dim " + ", ".join(dims))
    for n in m.nodes.values():
        if n.kind == "const":
            ty = f": {type_to_text(n.type)}" if n.type is not None else ""
            out.append(f"const {n.name}{ty} = {expr_to_text(n.value)}")
        elif n.kind == "data":
            out.append(f"data {n.name}: {type_to_text(n.type)}")
        elif n.kind == "param":
            init = f" = {expr_to_text(n.value)}" if n.value is not None else ""
            out.append(f"param {n.name}: {type_to_text(n.type)}{init}")
    g = m.graph.copy()
    g.remove_edges_from([(u, v) for u, v in g.edges if u == v])
    rank = {name: i for i, name in enumerate(m.nodes)}
    for name in nx.lexicographical_topological_sort(g, key=rank.__getitem__):
        for d in m.nodes[name].defs:
            out.append(definition_to_text(name, d))
    # Amortised posteriors last: they read data and networks, all declared above.
    for n in m.of_kind("latent"):
        if n.amortised is not None:
            out.append(definition_to_text(n.name, n.amortised, amortised=True))
    return "\n".join(out) + "\n"

__all__ = ["to_text", "expr_to_text", "type_to_text", "definition_to_text"]
