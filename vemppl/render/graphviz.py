"""Graph spec → a graphviz ``Digraph`` (and SVG/PNG files through the ``dot`` binary)."""

from __future__ import annotations

from pathlib import Path

from ..diagnostics import VemError
from .spec import GraphSpec, graph_spec


def to_graphviz(spec: GraphSpec):
    import graphviz

    g = graphviz.Digraph(spec.name, graph_attr={"rankdir": "TB", "fontname": "Helvetica", "label": spec.name,
                                                  "labelloc": "t", "fontsize": "14"})
    g.attr("node", fontname="Helvetica", fontsize="12")
    # Small arrowheads: several parents entering one node side by side stay apart.
    g.attr("edge", arrowsize="0.6")
    children: dict[str | None, list] = {}
    for p in spec.plates:
        children.setdefault(p.parent, []).append(p)
    members: dict[str | None, list] = {}
    for n in spec.nodes:
        members.setdefault(n.plate, []).append(n)

    def add_node(sub, n):
        attrs = {"shape": n.shape}
        if n.shape == "circle":
            attrs.update(width="0.55", fixedsize="false")
        if n.observed:
            attrs.update(style="filled", fillcolor="#c8c8c8")
        if n.shape == "point":
            attrs.update(width="0.09", xlabel=n.label)
            sub.node(n.name, "", **attrs)
        else:
            sub.node(n.name, n.label, **attrs)

    def add_plate(parent_graph, plate):
        with parent_graph.subgraph(name=f"cluster_{plate.key.replace('/', '_')}") as c:
            c.attr(label=f"{plate.var} ∈ {plate.size}", labeljust="r", labelloc="b", style="rounded")
            for n in members.get(plate.key, []):
                add_node(c, n)
            for child in children.get(plate.key, []):
                add_plate(c, child)

    for n in members.get(None, []):
        add_node(g, n)
    for p in children.get(None, []):
        add_plate(g, p)
    for u, v in spec.edges:
        g.edge(u, v)
    for node, label in spec.chains:  # a chain rolled up: its dependence on its previous step
        g.edge(node, node, label=label, fontsize="10", dir="forward")
    return g


def render(model, path, fmt: str | None = None) -> Path:
    """Write the plate diagram of ``model`` to ``path`` (.svg, .png, .pdf or .dot)."""
    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".") or "svg"
    g = to_graphviz(graph_spec(model))
    if fmt == "dot":
        path.write_text(g.source)
        return path
    import graphviz

    try:
        data = g.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise VemError(
            "io", "graphviz's 'dot' program is not installed", hint="apt-get install graphviz (or brew install graphviz)"
        ) from None
    except (graphviz.backend.CalledProcessError, ValueError) as exc:
        raise VemError("io", f"graphviz could not render format '{fmt}': {exc}") from None
    from ..results.io import _atomic_write

    _atomic_write(path, data)
    return path
