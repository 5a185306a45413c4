"""Plate diagrams read back from their DOT text (not the picture): every node of every
shipped model sits inside exactly the plates its indices run over, and every chain has
its dependence edge."""

import re

import pytest

import vemppl as vp
from dsl_models import MODELS_DIR
from vemppl.frontends.printer import expr_to_text
from vemppl.render import graph_spec, to_graphviz

MODELS = sorted(MODELS_DIR.glob("*.vem"))


def dot_plates(source: str) -> tuple[dict, list]:
    """{node: set of enclosing plate labels} and the self-edges (node, label), from DOT text."""
    stack, where, loops = [], {}, []
    for line in source.splitlines():
        s = line.strip()
        if s.startswith("subgraph cluster_"):
            stack.append(None)
        elif s == "}":
            if stack:
                stack.pop()
        elif stack and stack[-1] is None and s.startswith("label="):
            stack[-1] = re.match(r'label="([^"]*)"', s).group(1)
        elif m := re.match(r'^(\w+) -> (\w+) \[label="([^"]*)"', s):
            if m.group(1) == m.group(2):
                loops.append((m.group(1), m.group(3)))
        elif m := re.match(r"^(\w+) \[", s):
            if m.group(1) not in ("graph", "node", "edge"):
                where[m.group(1)] = set(stack)
    return where, loops


def expected_plates(model) -> dict:
    """Each node's plates from the IR: a statement's loops; for a node without statements,
    its leading declared sizes that some loop runs over."""
    sizes = {}
    for node in model.nodes.values():
        for d in node.defs:
            for lp in d.loops:
                sizes.setdefault(expr_to_text(lp.stop), lp.var)
    out = {}
    for node in model.nodes.values():
        if node.kind == "dim":
            continue
        if node.defs:
            d = max(node.defs, key=lambda d: len(d.loops))
            out[node.name] = {f"{lp.var} ∈ {expr_to_text(lp.stop)}" for lp in d.loops}
            continue
        plates = set()
        for s in (expr_to_text(s) for s in (node.type.shape if node.type else ())):
            if s not in sizes:
                break
            plates.add(f"{sizes[s]} ∈ {s}")
        out[node.name] = plates
    return out


@pytest.mark.parametrize("path", MODELS, ids=[p.stem for p in MODELS])
def test_every_node_in_its_plates_and_every_chain_drawn(path):
    model = vp.load(path)
    where, loops = dot_plates(to_graphviz(graph_spec(model)).source)
    for name, plates in expected_plates(model).items():
        assert where[name] == plates, f"{path.stem}: {name} drawn in {where[name]}, indexed by {plates}"
    chains = {n.name for n in model.nodes.values() for d in n.defs
              if any(f"{n.name}[" in expr_to_text(e) for _, e in d.args)}
    assert {n for n, _ in loops} == chains


def test_the_plates_the_issue_named():
    lda, _ = dot_plates(to_graphviz(graph_spec(vp.load(MODELS_DIR / "lda.vem"))).source)
    assert lda["doc"] == {"i ∈ M"} and lda["word"] == {"i ∈ M"} and lda["theta"] == {"d ∈ D"}
    fa, _ = dot_plates(to_graphviz(graph_spec(vp.load(MODELS_DIR / "fa.vem"))).source)
    assert fa["W"] == fa["psi"] == fa["m"] == {"j ∈ D"}
    assert fa["x"] == {"n ∈ N", "j ∈ D"} and fa["h"] == {"n ∈ N"}
    for name in ("hmm", "hmm_categorical"):
        where, loops = dot_plates(to_graphviz(graph_spec(vp.load(MODELS_DIR / f"{name}.vem"))).source)
        assert loops == [("z", "t−1 → t")] and where["z"] == {"t ∈ T"}
    _, loops = dot_plates(to_graphviz(graph_spec(vp.load(MODELS_DIR / "gmm.vem"))).source)
    assert loops == []  # a mixture has no chain
