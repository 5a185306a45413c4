"""IR → a plain graph spec for plate diagrams (the first of three stages, as in NumPyro's
``render_model``: relations → spec → graphviz), testable without the ``dot`` binary.

Conventions of Bishop, PRML ch. 8: latent variables are open circles, observed ones are
shaded, point parameters and constants are small solid dots, deterministic nodes are
diamonds, and plates are boxes labelled with their size symbol.  A plate is identified by
its stack of loops (``n``, then ``n/j``), so nested loops draw as nested boxes.

Every node sits inside every plate its indices run over: a ``~`` statement's node inside
its loops; a data array or parameter without a statement (LDA's ``doc: cat(D)[M]``,
factor analysis's ``W: real[D, L]``) inside the plates whose sizes its leading declared
axes are (``doc`` in ``i ∈ M``; ``W`` in ``j ∈ D``), a stack that gets its own box where
the model's loops nest differently.  A statement that reads an earlier step of its own
node (a Markov chain, ``z[t] ~ Categorical(A[z[t-1]])``) gives a self-edge labelled with
the step it reads (``t−1 → t``), as PGM texts draw a chain rolled up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..frontends.printer import expr_to_text

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
    #: (node, label) of each Markov dependence of a node on its own earlier step.
    chains: tuple[tuple[str, str], ...] = field(default=())

    def node(self, name: str) -> NodeSpec:
        return next(n for n in self.nodes if n.name == name)


def graph_spec(model, show_consts: bool = True) -> GraphSpec:
    from ..api import as_ir

    m = as_ir(model)
    plates: dict[str, PlateSpec] = {}

    def stack(pairs) -> str | None:
        """The key of the plate stack [(var, size), ...], adding its plates."""
        key = None
        for var, size in pairs:
            parent = key
            key = var if key is None else f"{key}/{var}"
            if key in plates and plates[key].size != size:  # one loop variable over two sizes
                key = f"{key}_{size}"
            plates.setdefault(key, PlateSpec(key, var, size, parent))
        return key

    loops_by_size: dict[str, str] = {}
    for node in m.nodes.values():
        for d in node.defs:
            for lp in d.loops:
                loops_by_size.setdefault(expr_to_text(lp.stop), lp.var)
    nodes, chains = [], []
    for node in m.nodes.values():
        if node.kind == "dim" or (node.kind == "const" and not show_consts):
            continue
        if node.defs:
            d = max(node.defs, key=lambda d: len(d.loops))
            plate = stack((lp.var, expr_to_text(lp.stop)) for lp in d.loops)
        else:
            plate = stack(_declared_plates(node, loops_by_size))
        for d in node.defs:
            lag = _own_lag(node.name, d)
            if lag and (node.name, lag) not in chains:
                chains.append((node.name, lag))
        dist = node.defs[0].dist if node.defs else None
        nodes.append(NodeSpec(node.name, node.kind, SHAPES[node.kind], node.kind == "data", plate, node.name, dist))
    keep = {n.name for n in nodes}
    # A size read only as a loop bound is drawn by the plate's label, not by an edge.
    edges = tuple(
        (u, v)
        for u, v, roles in m.graph.edges(data="roles")
        if u in keep and v in keep and u != v and not roles <= {"range"}
    )
    return GraphSpec(m.name, tuple(nodes), edges, tuple(plates.values()), tuple(chains))


def _declared_plates(node, loops_by_size) -> list[tuple[str, str]]:
    """The plates of a node without statements: its leading declared axes whose sizes are
    some loop's size (a trailing feature or event axis is not a plate)."""
    out = []
    for size in (expr_to_text(s) for s in (node.type.shape if node.type is not None else ())):
        if size not in loops_by_size:
            break
        out.append((loops_by_size[size], size))
    return out


def _own_lag(name, d) -> str | None:
    """``t−1 → t`` where the statement reads its own node one step back along ``t``."""
    from ..ir.expr import Index, Name, loop_offset, walk

    for _, e in d.args:
        for sub in walk(e):
            if isinstance(sub, Index) and isinstance(sub.base, Name) and sub.base.id == name:
                for ix, own in zip(sub.indices, d.indices):
                    lo, lo_own = loop_offset(ix, d.loop_vars), loop_offset(own, d.loop_vars)
                    if lo and lo_own and lo[0] == lo_own[0] and lo[1] != lo_own[1]:
                        lag = lo_own[1] - lo[1]
                        return f"{lo[0]}−{lag} → {lo[0]}" if lag > 0 else f"{lo[0]}+{-lag} → {lo[0]}"
    return None
