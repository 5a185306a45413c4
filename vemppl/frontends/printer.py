"""IR → canonical ``.vem`` text.

The canonical form declares every ``dim``, ``const``, ``data`` and ``param`` first, then
prints each definition inside its own loops, nodes in a dependency order, then the
amortised posteriors (``q(z[n]) = enc(x[n])``).  It is the
inverse of the parser up to spans: ``parse(to_text(m)) == m``.
"""

from __future__ import annotations

import math

import networkx as nx

from ..diagnostics import VemError
from ..ir.expr import BinOp, Call, Expr, Index, Name, Neg, Num
from ..ir.graph import ModelGraph
from ..ir.nodes import Definition, TypeSpec

# Binding strength, loosest first; '**' is right-associative, the rest left.
_PREC = {"+": 1, "-": 1, "*": 2, "/": 2, "@": 2, "**": 4}
_UNARY = 3


def expr_to_text(e: Expr, parent: int = 0) -> str:
    if isinstance(e, Num):
        return _num(e.value)
    if isinstance(e, Name):
        return e.id
    if isinstance(e, Index):
        return f"{expr_to_text(e.base, 5)}[{', '.join(expr_to_text(i) for i in e.indices)}]"
    if isinstance(e, Call):
        return f"{e.func}({', '.join(expr_to_text(a) for a in e.args)})"
    if isinstance(e, Neg):
        s = "-" + expr_to_text(e.operand, _UNARY)
        return f"({s})" if parent > _UNARY else s
    if isinstance(e, BinOp):
        p = _PREC[e.op]
        if e.op == "**":
            s = f"{expr_to_text(e.left, p + 1)} ** {expr_to_text(e.right, p)}"
        else:
            s = f"{expr_to_text(e.left, p)} {e.op} {expr_to_text(e.right, p + 1)}"
        return f"({s})" if parent > p else s
    raise TypeError(e)


def _num(v) -> str:
    if isinstance(v, bool):
        v = int(v)
    if isinstance(v, int):
        return str(v)
    v = float(v)
    if not math.isfinite(v):
        raise VemError("type", f"the number {v} has no spelling in model text", hint="numbers must be finite")
    if v == 0.0:
        return "0.0"  # also for -0.0, which would read back as a negation
    return repr(v)


def type_to_text(t: TypeSpec) -> str:
    s = t.base
    if t.bound is not None:
        s += f"({expr_to_text(t.bound)})"
    if t.shape:
        s += "[" + ", ".join(expr_to_text(e) for e in t.shape) + "]"
    return s


def definition_to_text(target: str, d: Definition, amortised: bool = False) -> str:
    lhs = target + (f"[{', '.join(expr_to_text(i) for i in d.indices)}]" if d.indices else "")
    if amortised:
        stmt = f"q({lhs}) = {expr_to_text(d.expr)}"
    elif d.dist is not None:
        # Positional while the arguments follow the family's positional order, then keywords.
        positional, parts, keyword = _positional(d.dist), [], False
        for i, (k, v) in enumerate(d.args):
            keyword = keyword or i >= len(positional) or positional[i] != k
            parts.append(f"{k} = {expr_to_text(v)}" if keyword else expr_to_text(v))
        stmt = f"{lhs} ~ {d.dist}({', '.join(parts)})"
    else:
        stmt = f"{lhs} = {expr_to_text(d.expr)}"
    opens = "".join(
        f"for {lp.var} in range({expr_to_text(lp.stop) if _is_zero(lp.start) else expr_to_text(lp.start) + ', ' + expr_to_text(lp.stop)}) {{ "
        for lp in d.loops
    )
    return opens + stmt + " }" * len(d.loops)


def _positional(dist: str) -> tuple[str, ...]:
    from ..families import get_family

    return tuple(get_family(dist).args.positional)


def _is_zero(e: Expr) -> bool:
    return isinstance(e, Num) and float(e.value) == 0.0


def to_text(model) -> str:
    """Canonical ``.vem`` text of a model (an IR or a Python-DSL model)."""
    from ..api import as_ir

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
