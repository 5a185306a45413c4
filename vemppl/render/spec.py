"""IR → a plain graph spec for plate diagrams (the first of three stages, as in NumPyro's
``render_model``: relations → spec → graphviz), testable without the ``dot`` binary.

Conventions of Bishop, PRML ch. 8: latent variables are open circles, observed ones are
shaded, point parameters and constants are small solid dots, deterministic nodes are
diamonds, and plates are boxes labelled with their size symbol.  A plate is identified by
its stack of loops (``n``, then ``n/j``), so nested loops draw as nested boxes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir.graph import as_ir
from ..ir.text import expr_to_text

SHAPES = {"latent": "circle", "data": "circle", "param": "point", "const": "point", "det": "diamond"}


@dataclass(frozen=True)
class NodeSpec:
    name: str
    kind: str  # latent | data | param | const | det
    shape: str  # graphviz shape
    observed: bool
    plate: str | None  # key of the innermost plate
    label: str
    dist: str | None = None


@dataclass(frozen=True)
class PlateSpec:
    key: str  # 'n' or 'n/j'
    var: str
    size: str
    parent: str | None


@dataclass(frozen=True)
class GraphSpec:
    name: str
    nodes: tuple[NodeSpec, ...]
    edges: tuple[tuple[str, str], ...]
    plates: tuple[PlateSpec, ...] = field(default=())

    def node(self, name: str) -> NodeSpec:
        return next(n for n in self.nodes if n.name == name)


def graph_spec(model, show_consts: bool = True) -> GraphSpec:
    m = as_ir(model)
    plates: dict[str, PlateSpec] = {}
    nodes = []
    for node in m.nodes.values():
        if node.kind == "dim" or (node.kind == "const" and not show_consts):
            continue
        plate = None
        if node.defs:
            d = max(node.defs, key=lambda d: len(d.loops))
            key = None
            for lp in d.loops:
                parent = key
                key = lp.var if key is None else f"{key}/{lp.var}"
                plates.setdefault(key, PlateSpec(key, lp.var, expr_to_text(lp.stop), parent))
            plate = key
        dist = node.defs[0].dist if node.defs else None
        label = node.name if node.kind in ("latent", "data", "det") else node.name
        nodes.append(NodeSpec(node.name, node.kind, SHAPES[node.kind], node.kind == "data", plate, label, dist))
    keep = {n.name for n in nodes}
    # A size read only as a loop bound is drawn by the plate's label, not by an edge.
    edges = tuple(
        (u, v)
        for u, v, roles in m.graph.edges(data="roles")
        if u in keep and v in keep and u != v and not roles <= {"range"}
    )
    return GraphSpec(m.name, tuple(nodes), edges, tuple(plates.values()))
