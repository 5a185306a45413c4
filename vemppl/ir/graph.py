"""The IR: a model as a value, with its networkx DAG.

:class:`ModelGraph` holds the model's name and its nodes in declaration order.  The
DAG (``.graph``) is derived from them: an edge ``parent → child`` for every name read by
a child's definition, labelled with the argument roles (``loc``, ``precision``, ``index``,
``markov`` for a node reading an earlier step of itself, ...); a call of a network param
(``dec(z[n])``) is a read of that param.  An amortised posterior ``q(z[n]) = enc(x[n])``
adds no edge: the encoder belongs to the variational family, not to the model's DAG.  Two models are equal when
their names and nodes are equal; spans take no part, so ``parse(to_text(m)) == m``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import networkx as nx

from ..diagnostics import VemError
from .expr import Call, Index, Name, head_name, walk
from .nodes import Node
from .shapes import Shape


@dataclass(frozen=True, eq=False)
class ModelGraph:
    """A model's IR: its ``name`` and its ``nodes`` (dims, consts, data, params, latents and
    deterministic nodes) in declaration order, with their inferred ``shapes`` and the model
    text it came from (``source``, ``filename``) when parsed.  ``.graph`` is the networkx DAG
    of reads; ``of_kind("data")`` the nodes of some kinds.  Equal when names and nodes are."""

    name: str
    nodes: dict[str, Node]
    shapes: dict[str, Shape] = field(default_factory=dict, repr=False)
    source: str | None = field(default=None, repr=False)
    filename: str | None = field(default=None, repr=False)

    def __eq__(self, other):
        if not isinstance(other, ModelGraph):
            # Not False: a Python DSL model (frontends/dsl.py) then compares its IR with this one,
            # so `parse(to_text(m)) == m` holds as `m == parse(to_text(m))` does.
            return NotImplemented
        return self.name == other.name and self.nodes == other.nodes

    def __hash__(self):
        return hash((self.name, tuple(self.nodes)))

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]

    def of_kind(self, *kinds: str) -> list[Node]:
        """The nodes of the given kinds (``"dim"``, ``"const"``, ``"data"``, ``"param"``,
        ``"latent"``, ...), in declaration order."""
        return [n for n in self.nodes.values() if n.kind in kinds]

    @cached_property
    def graph(self) -> nx.DiGraph:
        g = nx.DiGraph()
        for node in self.nodes.values():
            g.add_node(node.name, kind=node.kind, shape=self.shapes.get(node.name))
        for node in self.nodes.values():
            for d in node.defs:
                roles = [(role, e) for role, e in d.args] + ([("expr", d.expr)] if d.expr is not None else [])
                roles += [("index", ix) for ix in d.indices]
                roles += [("range", lp.stop) for lp in d.loops] + [("range", lp.start) for lp in d.loops]
                for role, e in roles:
                    for parent, how in _reads(e, d.loop_vars):
                        if parent not in self.nodes:
                            continue
                        if parent == node.name:
                            how = "markov"
                        label = role if how == "value" else f"{role}:{how}"
                        if g.has_edge(parent, node.name):
                            g.edges[parent, node.name]["roles"].add(label)
                        else:
                            g.add_edge(parent, node.name, roles={label})
        return g

    def upstream(self, names, stop=("data", "param")) -> set[str]:
        """``names`` and every node their definitions read as a value, in an argument or a
        deterministic expression (an edge of ``.graph`` with a role other than the left-hand
        ``index`` and the loop's ``range``), directly or through the nodes read in turn; the
        definitions of nodes of a kind in ``stop`` are not followed."""
        g = self.graph

        def argument(u, v):
            return self.nodes[v].kind not in stop and any(r.split(":")[0] not in ("index", "range")
                                                         for r in g.edges[u, v]["roles"])

        view = nx.subgraph_view(g, filter_edge=argument)
        return set(names).union(*(nx.ancestors(view, n) for n in names if n in g))

    def __repr__(self):
        return f"ModelGraph({self.name!r}, {len(self.nodes)} nodes)"


def _reads(e, loop_vars):
    """``(name, how)`` for each node read by ``e``; ``how`` is 'value' or 'index'."""
    out = []
    for sub in walk(e):
        if isinstance(sub, Index):
            for ix in sub.indices:
                for n in walk(ix):
                    if isinstance(n, Name) and n.id not in loop_vars:
                        out.append((n.id, "index"))
        if isinstance(sub, Name) and sub.id not in loop_vars:
            out.append((sub.id, "value"))
        if isinstance(sub, Call):  # a network param called here (built-ins are not nodes)
            out.append((sub.func, "value"))
    # A name read as an index is not also a value read.
    idx = {n for n, how in out if how == "index"}
    seen, res = set(), []
    for n, how in out:
        if how == "value" and n in idx:
            continue
        if (n, how) not in seen:
            seen.add((n, how))
            res.append((n, how))
    return res


def reads(e, loop_vars) -> list[str]:
    return [n for n, _ in _reads(e, loop_vars)]


def as_ir(model) -> ModelGraph:
    """The IR of ``model`` (a :class:`ModelGraph` or a Python-DSL ``Model``, read by its ``ir``)."""
    if isinstance(model, ModelGraph):
        return model
    ir = getattr(model, "ir", None)
    if isinstance(ir, ModelGraph):
        return ir
    raise VemError("type", f"expected a vemppl model, got {type(model).__name__}")


__all__ = ["ModelGraph", "as_ir", "head_name", "reads"]
