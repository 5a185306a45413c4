"""The one builder both front ends use to make an IR, with its semantic checks.

The text parser and the Python DSL call the same methods in source order
(``dim``, ``const``, ``data``, ``param``, ``statement``) and finish with :meth:`build`.
Every check raises :class:`~vemppl.diagnostics.VemError` at the offending span:
redeclaration, ``~`` on a const or param, assigning an element twice, an unknown
distribution or keyword, a missing or duplicate argument, an undefined name (with
"did you mean"), a use before declaration, a loop variable out of scope, a dependence
on a later step, a cycle, and shape and support mismatches.
"""

from __future__ import annotations

import networkx as nx

from ..diagnostics import Span, VemError, did_you_mean
from ..families import get_family
from . import shapes as S
from .expr import BUILTINS, Call, Expr, Index, Name, Num, const_int, loop_offset, walk
from .graph import ModelGraph
from .nodes import BASE_TYPES, Definition, Loop, Node, TypeSpec

_DECL_KINDS = ("dim", "const", "data", "param")


class IRBuilder:
    def __init__(self, name: str, *, source: str | None = None, filename: str | None = None):
        self.name = name
        self.source = source
        self.filename = filename
        self._nodes: dict[str, Node] = {}

    # ---- declarations -------------------------------------------------------------
    def _declare(self, node: Node):
        if node.name in self._nodes:
            prev = self._nodes[node.name]
            where = f" (first declared at line {prev.span.line})" if prev.span else ""
            raise VemError("redeclared", f"'{node.name}' is already declared{where}", node.span)
        if node.name in BUILTINS:
            raise VemError("redeclared", f"'{node.name}' is a built-in function and cannot be redeclared", node.span)
        self._nodes[node.name] = node

    def dim(self, name: str, span: Span | None = None):
        self._declare(Node(name, "dim", span=span))

    def const(self, name: str, value: Expr, type: TypeSpec | None = None, span: Span | None = None):
        self._check_names(value, (), span)
        if type is not None:
            self._check_type(type)
        self._declare(Node(name, "const", type=type, value=value, span=span))

    def data(self, name: str, type: TypeSpec, span: Span | None = None):
        self._check_type(type)
        self._declare(Node(name, "data", type=type, span=span))

    def param(self, name: str, type: TypeSpec, init: Expr | None = None, span: Span | None = None):
        self._check_type(type)
        if init is not None:
            self._check_names(init, (), span)
        self._declare(Node(name, "param", type=type, value=init, span=span))

    def _check_type(self, t: TypeSpec):
        if t.base not in BASE_TYPES:
            raise VemError(
                "type", f"unknown type '{t.base}'", t.span, did_you_mean(t.base, BASE_TYPES) or "types: " + ", ".join(BASE_TYPES)
            )
        for e in t.shape + ((t.bound,) if t.bound is not None else ()):
            self._check_names(e, (), t.span)

    # ---- statements -----------------------------------------------------------------
    def statement(
        self,
        target: str,
        indices: tuple[Expr, ...],
        loops: tuple[Loop, ...],
        *,
        dist: str | None = None,
        args: tuple[Expr, ...] = (),
        kwargs: tuple[tuple[str, Expr, Span | None], ...] = (),
        expr: Expr | None = None,
        span: Span | None = None,
        dist_span: Span | None = None,
    ):
        """Add ``target[indices] ~ dist(args, kwargs)`` or ``target[indices] = expr``."""
        loop_vars = tuple(lp.var for lp in loops)
        self._check_loops(loops)
        for ix in indices:
            self._check_names(ix, loop_vars, ix.span or span, self_name=None)
        prev = self._nodes.get(target)
        if prev is not None and prev.kind in ("dim", "const", "param"):
            verb = "~" if dist else "="
            raise VemError(
                "type",
                f"'{target}' is declared {prev.kind}; it cannot be the target of '{verb}'",
                span,
                "a param is point-estimated in the M-step: give it no distribution, or declare it with ~ instead"
                if prev.kind == "param"
                else None,
            )
        if dist is not None:
            family = get_family(dist, dist_span or span)
            canon = self._canonical_args(family, dist, args, kwargs, span)
            for _, e in canon:
                self._check_names(e, loop_vars, span, self_name=target)
            d = Definition(loops, tuple(indices), dist=dist, args=canon, span=span)
        else:
            self._check_names(expr, loop_vars, span, self_name=target)
            d = Definition(loops, tuple(indices), expr=expr, span=span)
        self._check_self_reference(target, d)
        if prev is None:
            kind = "latent" if dist is not None else "det"
            self._nodes[target] = Node(target, kind, defs=(d,), span=span)
            return
        if prev.defs and (prev.defs[0].dist is None) != (dist is None):
            raise VemError("redeclared", f"'{target}' is defined both by '~' and by '='", span)
        if prev.kind == "data" and dist is None:
            raise VemError("type", f"'{target}' is data; it cannot be assigned with '='", span)
        for other in prev.defs:
            if _overlap(other, d):
                raise VemError(
                    "redeclared",
                    f"element of '{target}' is defined twice (also at line {other.span.line if other.span else '?'})",
                    span,
                )
        self._nodes[target] = Node(prev.name, prev.kind, prev.type, prev.value, prev.defs + (d,), prev.span)

    def _check_loops(self, loops):
        seen = []
        for lp in loops:
            if lp.var in self._nodes:
                raise VemError("redeclared", f"loop variable '{lp.var}' hides the declared name '{lp.var}'", lp.span)
            if lp.var in seen:
                raise VemError("redeclared", f"loop variable '{lp.var}' is already used by an enclosing loop", lp.span)
            for bound in (lp.start, lp.stop):
                self._check_names(bound, tuple(seen), lp.span)
                if not _is_size(bound, self._nodes):
                    raise VemError(
                        "unsupported",
                        "a loop bound must be an integer, a dim or a const",
                        bound.span or lp.span,
                        "write range(N) or range(a, N) with N a dim or const",
                    )
            seen.append(lp.var)

    def _canonical_args(self, family, dist, args, kwargs, span):
        spec = family.args
        given: dict[str, Expr] = {}
        if len(args) > len(spec.positional):
            raise VemError(
                "type",
                f"{dist} takes at most {len(spec.positional)} positional argument(s) "
                f"({', '.join(spec.positional)}); {len(args)} given",
                span,
            )
        for pname, e in zip(spec.positional, args):
            given[pname] = e
        names = spec.names
        for key, e, kspan in kwargs:
            canon = spec.aliases.get(key, key)
            if canon not in names:
                raise VemError(
                    "type",
                    f"{dist} has no argument '{key}'",
                    kspan or span,
                    did_you_mean(key, sorted(names | set(spec.aliases))) or f"arguments: {', '.join(sorted(names))}",
                )
            if canon in given:
                raise VemError("type", f"argument '{key}' of {dist} is given twice", kspan or span)
            given[canon] = e
        out = []
        for group in spec.groups:
            present = [g for g in group if g in given]
            if len(present) > 1:
                raise VemError("type", f"{dist}: give only one of {', '.join(present)}", span)
            if not present and not any(g in spec.defaults for g in group):
                raise VemError("type", f"{dist} needs the argument '{group[0]}'", span)
            if present:
                out.append((present[0], given[present[0]]))
        return tuple(out)

    def _check_names(self, e: Expr | None, loop_vars, span, self_name=None):
        if e is None:
            return
        for sub in walk(e):
            if isinstance(sub, Call) and sub.func not in BUILTINS:
                raise VemError(
                    "undefined-name",
                    f"unknown function '{sub.func}'",
                    sub.span or span,
                    did_you_mean(sub.func, BUILTINS) or "functions: " + ", ".join(BUILTINS),
                )
            if isinstance(sub, Call) and BUILTINS[sub.func] is not None and len(sub.args) != BUILTINS[sub.func]:
                raise VemError(
                    "type", f"{sub.func} takes {BUILTINS[sub.func]} argument(s); {len(sub.args)} given", sub.span or span
                )
            if not isinstance(sub, Name):
                continue
            if sub.id in loop_vars or sub.id in self._nodes or sub.id == self_name:
                continue
            raise VemError(
                "undefined-name",
                f"'{sub.id}' is not defined",
                sub.span or span,
                did_you_mean(sub.id, list(self._nodes) + list(loop_vars)) or "declare it before its first use",
            )

    def _check_self_reference(self, target: str, d: Definition):
        """A node may read itself only at an earlier step of its own loop (Markov)."""
        exprs = [e for _, e in d.args] + ([d.expr] if d.expr is not None else [])
        own = [loop_offset(ix, d.loop_vars) for ix in d.indices]
        for e in exprs:
            for sub in walk(e):
                if not (isinstance(sub, Index) and isinstance(sub.base, Name) and sub.base.id == target):
                    if isinstance(sub, Name) and sub.id == target and not _is_indexed_base(e, sub):
                        raise VemError("cycle", f"'{target}' depends on itself", sub.span or d.span)
                    continue
                offs = [loop_offset(ix, d.loop_vars) for ix in sub.indices]
                lags = []
                for mine, theirs in zip(own, offs):
                    if mine is None or theirs is None or mine[0] != theirs[0]:
                        lags.append(None)
                    else:
                        lags.append(mine[1] - theirs[1])
                if any(lag is not None and lag < 0 for lag in lags):
                    raise VemError(
                        "cycle",
                        f"'{target}' depends on a later step of itself",
                        sub.span or d.span,
                        "a Markov dependence reads an earlier step, as in z[t-1]",
                    )
                if all(lag == 0 for lag in lags):
                    raise VemError("cycle", f"'{target}' depends on itself", sub.span or d.span)
                if any(lag not in (0, 1) for lag in lags):
                    raise VemError(
                        "unsupported",
                        f"'{target}' depends on itself at lag other than 1",
                        sub.span or d.span,
                        "only first-order Markov dependences (z[t-1]) are supported",
                    )

    # ---- finishing ----------------------------------------------------------------------
    def build(self) -> ModelGraph:
        nodes = dict(self._nodes)
        bare = ModelGraph(self.name, nodes)
        order = _check_acyclic(bare)
        shapes = infer_node_shapes(nodes, order)
        model = ModelGraph(self.name, nodes, shapes, self.source, self.filename)
        _check_supports(model)
        return model


def _is_indexed_base(root, name_node) -> bool:
    return any(isinstance(s, Index) and s.base is name_node for s in walk(root))


def _is_size(e: Expr, nodes) -> bool:
    if isinstance(e, Num):
        return float(e.value).is_integer()
    if isinstance(e, Name):
        n = nodes.get(e.id)
        return n is not None and n.kind in ("dim", "const")
    return False


def _overlap(a: Definition, b: Definition) -> bool:
    """Conservative test that two definitions write a common element."""
    if len(a.indices) != len(b.indices):
        return True
    for ia, ib in zip(a.indices, b.indices):
        ra, rb = _index_range(ia, a), _index_range(ib, b)
        if ra is None or rb is None:
            continue
        (lo_a, hi_a), (lo_b, hi_b) = ra, rb
        if isinstance(lo_a, int) and isinstance(hi_b, int) and lo_a >= hi_b:
            return False
        if isinstance(lo_b, int) and isinstance(hi_a, int) and lo_b >= hi_a:
            return False
        if lo_a != lo_b and all(isinstance(v, int) for v in (lo_a, lo_b)):
            if isinstance(hi_a, int) and lo_b >= hi_a or isinstance(hi_b, int) and lo_a >= hi_b:
                return False
            # z[0] against range(1, T): disjoint when the constant is below the loop's start.
            if hi_a == lo_a + 1 and lo_a < lo_b or hi_b == lo_b + 1 and lo_b < lo_a:
                return False
    return True


def _index_range(ix: Expr, d: Definition):
    c = const_int(ix)
    if c is not None:
        return (c, c + 1)
    lo = loop_offset(ix, d.loop_vars)
    if lo is None:
        return None
    lp = next(lp for lp in d.loops if lp.var == lo[0])
    start, stop = const_int(lp.start), S.size_of(lp.stop)
    if start is None:
        return None
    stop = stop + lo[1] if isinstance(stop, int) else (stop if lo[1] == 0 else f"{stop}{lo[1]:+d}")
    return (start + lo[1], stop)


def infer_node_shapes(nodes: dict[str, Node], order: list[str]) -> dict[str, S.Shape]:
    """Full shapes of every node; also checks data targets against their declarations."""
    env: dict[str, S.Shape] = {}
    for node in nodes.values():
        if node.kind == "dim":
            env[node.name] = ()
        elif node.kind == "const":
            env[node.name] = S.infer(node.value, env, ())
        elif node.kind in ("data", "param"):
            env[node.name] = type_shape(node.type)
    for name in order:
        node = nodes[name]
        if node.kind in ("latent", "det"):
            env[node.name] = _defined_shape(node, env)
        elif node.defs:
            declared = env[node.name]
            got = _defined_shape(node, env)
            if got != declared and not (node.type.base == "cat" and got[: len(declared)] == declared):
                raise VemError(
                    "shape",
                    f"'{node.name}' is declared with shape {S.fmt(declared)} but its statements give {S.fmt(got)}",
                    node.defs[0].span,
                )
    return env


def type_shape(t: TypeSpec) -> S.Shape:
    sizes = tuple(S.size_of(e) for e in t.shape)
    if t.base == "spd" and sizes:
        return sizes + sizes[-1:]
    return sizes


def _defined_shape(node: Node, env) -> S.Shape:
    plate: list = None
    value = None
    for d in node.defs:
        lv = d.loop_vars
        sizes = []
        for ix in d.indices:
            lo = loop_offset(ix, lv)
            if lo is not None:
                lp = next(lp for lp in d.loops if lp.var == lo[0])
                stop = S.size_of(lp.stop)
                sizes.append(stop + lo[1] if isinstance(stop, int) else (stop if lo[1] == 0 else f"{stop}{lo[1]:+d}"))
            else:
                sizes.append(None)  # a constant index: size decided by the other definitions
        if d.dist is not None:
            fam = get_family(d.dist)
            # A Markov self-reference reads one element: give the node a provisional plate shape.
            own = {node.name: env.get(node.name, (None,) * len(d.indices))}
            arg_shapes = {k: S.infer(e, {**env, **own}, lv) for k, e in d.args}
            v = _value_shape(fam, arg_shapes, d.span)
        else:
            v = S.infer(d.expr, env, lv)
        if value is not None and v != value:
            raise VemError(
                "shape", f"definitions of '{node.name}' disagree: shapes {S.fmt(value)} and {S.fmt(v)}", d.span
            )
        value = v
        if plate is None:
            plate = sizes
        else:
            plate = [a if a is not None else b for a, b in zip(plate, sizes)]
    plate = [p if p is not None else 1 for p in (plate or [])]
    return tuple(plate) + tuple(value or ())


def _value_shape(fam, arg_shapes, span) -> S.Shape:
    if fam.event_rank == 0:
        out: S.Shape = ()
        for s in arg_shapes.values():
            out = S.broadcast(out, s, span, f"arguments of {fam.name}")
        if fam.support == "cat":
            return ()
        return out
    try:
        return tuple(fam.event_shape(**arg_shapes))
    except VemError:
        raise
    except Exception as exc:  # a family's shape rule failed on these arguments
        raise VemError("shape", f"arguments of {fam.name} have incompatible shapes: {exc}", span) from None


def _check_acyclic(model: ModelGraph):
    g = model.graph.copy()
    g.remove_edges_from([(u, v) for u, v in g.edges if u == v])
    try:
        cycle = nx.find_cycle(g)
    except nx.NetworkXNoCycle:
        order = list(model.nodes)
        return list(nx.lexicographical_topological_sort(g, key=order.index))
    names = " → ".join([u for u, _ in cycle] + [cycle[0][0]])
    span = model.nodes[cycle[0][1]].span
    raise VemError("cycle", f"the model has a cycle: {names}", span)




def _check_supports(model: ModelGraph):
    """Data must lie in the support of the distribution it is drawn from."""
    for node in model.of_kind("data"):
        for d in node.defs:
            fam = get_family(d.dist)
            ok = {
                "real": {"real"},
                "pos": {"pos", "unit", "bool"},
                "unit": {"unit"},
                "count": {"count", "bool", "cat", "int"},
                "bool": {"bool"},
                "cat": {"cat", "bool"},
                "simplex": {"simplex"},
                "spd": {"spd"},
            }.get(fam.support, set())
            if node.type.base not in ok:
                raise VemError(
                    "support",
                    f"'{node.name}' is declared {node.type.base} but {fam.name} has support {fam.support}",
                    d.span,
                    f"declare '{node.name}' with a type in {{{', '.join(sorted(ok))}}}, or choose another distribution",
                )
