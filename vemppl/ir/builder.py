"""The one builder both front ends use to make an IR, with its semantic checks.

The text parser and the Python DSL call the same methods in source order
(``dim``, ``const``, ``data``, ``param``, ``statement``) and finish with :meth:`build`.
Every check raises :class:`~vemppl.diagnostics.VemError` at the offending span:
an invalid or reserved name, redeclaration, ``~`` on a const or param, assigning an
element twice, an unknown distribution or keyword, a missing, surplus, duplicate or
conflicting argument, a constant argument outside the family's support, an undefined
name (with "did you mean"), a use before declaration, a loop variable out of scope, a
declaration that reads a random node, a dependence on a later step, a cycle, and
shape and support mismatches (the whole-graph checks live in :mod:`.validate`).
"""

from __future__ import annotations

import dataclasses
import re

from ..diagnostics import Span, VemError, did_you_mean
from ..families import REGISTRY, get_family
from . import shapes as S
from . import validate as V
from .expr import BUILTINS, Call, Expr, Name, Neg, Num, const_int, loop_offset, walk
from .graph import ModelGraph
from .inline import through_transitions
from .nodes import ACTIVATIONS, BASE_TYPES, Definition, Loop, Node, TypeSpec

# Kept importable from here for existing callers.
from .shapes import infer_node_shapes, type_shape  # noqa: F401

#: Words of the text language that cannot name a model, a node or a loop variable.
RESERVED = ("model", "dim", "const", "data", "param", "for", "in", "range")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_FIXED_KINDS = ("dim", "const")


def check_identifier(name, what: str, span: Span | None = None):
    """``name`` must be a name the text language can spell back (``parse(to_text(m)) == m``)."""
    if not isinstance(name, str) or not _IDENT.match(name):
        raise VemError(
            "syntax",
            f"{name!r} is not a valid name for {what}",
            span,
            "a name starts with a letter or '_' and continues with letters, digits or '_'",
        )
    if name in RESERVED:
        raise VemError("syntax", f"'{name}' is a reserved word and cannot name {what}", span, f"rename it, e.g. '{name}_'")


class IRBuilder:
    """Collects declarations and statements, checks each as it arrives, and builds a ModelGraph.

    ``declared_later`` (name → span) lets a front end that has read the whole text
    report "used before its declaration" instead of "not defined".
    """

    def __init__(
        self,
        name: str,
        *,
        source: str | None = None,
        filename: str | None = None,
        span: Span | None = None,
        declared_later: dict[str, Span] | None = None,
    ):
        check_identifier(name, "a model", span)
        self.name = name
        self.source = source
        self.filename = filename
        self._nodes: dict[str, Node] = {}
        self._declared_later = dict(declared_later or {})
        self._past_loops: dict[str, Loop] = {}  # loop variables seen, for "out of scope" hints

    # ---- declarations -------------------------------------------------------------
    def _declare(self, node: Node):
        check_identifier(node.name, f"a {node.kind}", node.span)
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
        check_identifier(name, "a const", span)
        if type is not None:
            self._check_type(type, "a const")
        self._check_expr(value, (), span, fixed=f"the value of const '{name}'")
        self._declare(Node(name, "const", type=type, value=value, span=span))

    def data(self, name: str, type: TypeSpec, span: Span | None = None):
        check_identifier(name, "a data array", span)
        self._check_type(type, "data")
        self._declare(Node(name, "data", type=type, span=span))

    def param(self, name: str, type: TypeSpec, init: Expr | None = None, span: Span | None = None):
        check_identifier(name, "a param", span)
        self._check_type(type)
        if init is not None and type.is_network:
            raise VemError(
                "type", f"the network '{name}' takes no initial value", init.span or span,
                "its weights start from a seeded Glorot draw; fit(..., init={...}) can override them",
            )
        if init is not None:
            self._check_expr(init, (), span, fixed=f"the initial value of param '{name}'")
        self._declare(Node(name, "param", type=type, value=init, span=span))

    def _check_type(self, t: TypeSpec, owner: str | None = None):
        if t.base not in BASE_TYPES:
            raise VemError(
                "type", f"unknown type '{t.base}'", t.span, did_you_mean(t.base, BASE_TYPES) or "types: " + ", ".join(BASE_TYPES)
            )
        if t.is_network:
            self._check_network_type(t, owner)
            return
        if t.base == "cat" and t.bound is None:
            raise VemError("type", "cat needs its number of categories", t.span, "write cat(K), or cat(K)[N] for an array")
        if t.base != "cat" and t.bound is not None:
            raise VemError("type", f"only cat takes a number in parentheses; '{t.base}' does not", t.bound.span or t.span)
        if t.base in ("simplex", "spd") and not t.shape:
            raise VemError("type", f"{t.base} needs its size", t.span, f"write {t.base}[K]")
        for e in t.shape + ((t.bound,) if t.bound is not None else ()):
            self._check_expr(e, (), t.span, fixed="a size in a type")
            if isinstance(e, Neg) or (isinstance(e, Num) and not float(e.value).is_integer()):
                raise VemError("type", "a size must be a whole number, a dim or a const", e.span or t.span)

    def _check_network_type(self, t: TypeSpec, owner: str | None):
        """``mlp(act)[n0, ..., nk]``: a param only, a known activation, two or more layer sizes."""
        if owner is not None:
            raise VemError(
                "type", f"{owner} cannot have the network type mlp", t.span,
                "a neural network is a point-estimated parameter: declare it with 'param'",
            )
        act = t.bound
        if act is None or not isinstance(act, Name) or act.id not in ACTIVATIONS:
            got = f"'{act.id}'" if isinstance(act, Name) else "nothing" if act is None else "an expression"
            raise VemError(
                "type", f"a network type names its activation, one of {', '.join(ACTIVATIONS)}; found {got}",
                (act.span if act is not None else None) or t.span,
                (did_you_mean(act.id, ACTIVATIONS) if isinstance(act, Name) else None) or "write mlp(tanh)[D, H, K]",
            )
        if len(t.shape) < 2:
            raise VemError(
                "type", f"a network needs at least an input and an output size; {len(t.shape)} given", t.span,
                "write mlp(tanh)[D, H, K]: D inputs, a hidden layer of H units, K outputs",
            )
        for e in t.shape:
            self._check_expr(e, (), t.span, fixed="a layer size")
            if isinstance(e, Neg) or (isinstance(e, Num) and not (float(e.value).is_integer() and e.value > 0)):
                raise VemError("type", "a layer size must be a positive whole number, a dim or a const", e.span or t.span)

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
        check_identifier(target, "a node", span)
        loop_vars = tuple(lp.var for lp in loops)
        self._check_loops(loops)
        for ix in indices:
            self._check_expr(ix, loop_vars, ix.span or span)
        _check_target_indices(target, indices, loop_vars, span)
        prev = self._nodes.get(target)
        if prev is not None and prev.kind in ("dim", "const", "param"):
            verb = "~" if dist else "="
            raise VemError(
                "type",
                f"'{target}' is declared {prev.kind}; it cannot be the target of '{verb}'",
                span,
                "a param is point-estimated in the M-step: give it no distribution, or make it a random "
                "variable by removing its 'param' declaration"
                if prev.kind == "param"
                else f"a {prev.kind} is fixed; define a new name instead",
            )
        if dist is not None:
            family = get_family(dist, dist_span or span)
            canon = self._canonical_args(family, dist, args, kwargs, dist_span or span)
            for _, e, aspan in canon:
                self._check_expr(e, loop_vars, aspan or span, self_name=target)
            V.check_constant_args(family, [(k, e, s or dist_span or span) for k, e, s in canon], self._nodes)
            d = Definition(
                loops, tuple(indices), dist=dist, args=tuple((k, e) for k, e, _ in canon), span=span, dist_span=dist_span
            )
        else:
            self._check_expr(expr, loop_vars, span, self_name=target)
            d = Definition(loops, tuple(indices), expr=expr, span=span)
        V.check_self_reference(target, d, observed=prev is not None and prev.kind == "data")
        if prev is None:
            kind = "latent" if dist is not None else "det"
            self._nodes[target] = Node(target, kind, defs=(d,), span=span)
            return
        if prev.defs and (prev.defs[0].dist is None) != (dist is None):
            raise VemError("redeclared", f"'{target}' is defined both by '~' and by '='", span)
        if prev.kind == "data" and dist is None:
            raise VemError("type", f"'{target}' is data; it cannot be assigned with '='", span, "observe it with '~'")
        for other in prev.defs:
            if len(other.indices) != len(d.indices):
                line = other.span.line if other.span else "?"
                raise VemError(
                    "shape", f"'{target}' has {len(d.indices)} indices here but {len(other.indices)} in its "
                    f"definition at line {line}", span, "every piece of a node names its elements by the same number of indices",
                )
            if V.overlap(other, d):
                line = other.span.line if other.span else "?"
                what = f"an element of '{target}'" if d.indices else f"'{target}'"
                raise VemError("redeclared", f"{what} is defined twice (also at line {line})", span)
        self._nodes[target] = dataclasses.replace(prev, defs=prev.defs + (d,))

    def amortise(self, target: str, indices: tuple[Expr, ...], loops: tuple[Loop, ...], expr: Expr, span: Span | None = None):
        """``q(target[indices]) = enc(data...)``: an amortised posterior for a plated latent.

        The latent must be defined above, Normal or MvNormal, plated, and named by the
        loop variables of its plates; the right side is one call of a network param
        whose input reads data (and only data, dims and consts)."""
        loop_vars = tuple(lp.var for lp in loops)
        self._check_loops(loops)
        for ix in indices:
            self._check_expr(ix, loop_vars, ix.span or span)
        node = self._nodes.get(target)
        if node is None:
            raise self._undefined(Name(target, span), span, loop_vars)
        if node.kind != "latent":
            raise VemError(
                "type", f"'{target}' is {_article(node.kind)}; only a latent random variable has a posterior q", span,
                "q(z[n]) = enc(x[n]) gives the latent z an encoder",
            )
        if node.amortised is not None:
            line = node.amortised.span.line if node.amortised.span else "?"
            raise VemError("redeclared", f"'{target}' already has an amortised posterior (line {line})", span)
        fam = node.defs[0].dist
        if fam not in ("Normal", "MvNormal"):
            raise VemError(
                "unsupported", f"an amortised posterior is a diagonal Normal; '{target}' is drawn from {fam}", span,
                "amortise a Normal or MvNormal latent",
            )
        own = node.defs[0].indices
        plain = all(isinstance(ix, Name) and ix.id in loop_vars for ix in indices)
        if not own or len(indices) != len(own) or not plain:
            raise VemError(
                "unsupported",
                f"q(...) names one element of a plated latent by its loop variables, as in q({target}[n])"
                + ("" if own else f"; '{target}' is not plated"),
                span,
                "an encoder maps each data point to the posterior of its own latent",
            )
        if not (isinstance(expr, Call) and expr.func in self._nodes and self._nodes[expr.func].is_network):
            raise VemError(
                "type", "the right side of q(...) = ... must call an encoder network, as in enc(x[n])",
                getattr(expr, "span", None) or span, "declare one with 'param enc: mlp(tanh)[D, H, 2 * L]'",
            )
        self._check_expr(expr, loop_vars, span)
        data = []
        for sub in walk(expr):
            if isinstance(sub, Name) and sub.id in self._nodes:
                kind = self._nodes[sub.id].kind
                if kind in ("latent", "det", "param"):
                    raise VemError(
                        "type", f"an encoder reads data, dims and consts only; '{sub.id}' is {_article(kind)}",
                        sub.span or span,
                    )
                data += [sub.id] if kind == "data" else []
        if not data:
            raise VemError(
                "type", f"the encoder of '{target}' reads no data: an amortised posterior maps each data point to q",
                expr.span or span, f"pass the data of {target}'s plate, as in q({target}[n]) = enc(x[n])",
            )
        self._nodes[target] = dataclasses.replace(node, amortised=Definition(loops, tuple(indices), expr=expr, span=span))

    def _check_loops(self, loops):
        seen: list[str] = []
        for lp in loops:
            check_identifier(lp.var, "a loop variable", lp.span)
            if lp.var in self._nodes:
                raise VemError("redeclared", f"loop variable '{lp.var}' hides the declared name '{lp.var}'", lp.span)
            if lp.var in seen:
                raise VemError("redeclared", f"loop variable '{lp.var}' is already used by an enclosing loop", lp.span)
            for bound in (lp.start, lp.stop):
                self._check_expr(bound, tuple(seen), lp.span)
                if not _is_size(bound, self._nodes):
                    raise VemError(
                        "unsupported",
                        "a loop bound must be a whole number, a dim or a const",
                        bound.span or lp.span,
                        "write range(N) or range(a, N) with N a dim or const",
                    )
            seen.append(lp.var)
            self._past_loops.setdefault(lp.var, lp)

    def _canonical_args(self, family, dist, args, kwargs, span):
        """``(canonical name, expr, span)`` in the family's order, positional and keyword resolved."""
        spec = family.args
        given: dict[str, tuple[Expr, Span | None]] = {}
        if len(args) > len(spec.positional):
            extra = args[len(spec.positional)]
            raise VemError(
                "type",
                f"{dist} takes at most {len(spec.positional)} positional argument(s) "
                f"({', '.join(spec.positional)}); {len(args)} given",
                extra.span or span,
                "give the others by keyword, as in Normal(m, precision = tau)",
            )
        for pname, e in zip(spec.positional, args):
            given[pname] = (e, e.span)
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
            given[canon] = (e, kspan or e.span)
        out = []
        for group in spec.groups:
            present = [g for g in group if g in given]
            if len(present) > 1:
                raise VemError(
                    "type", f"{dist}: give only one of {', '.join(present)}", given[present[-1]][1] or span,
                    "they are alternative parameterisations of the same argument",
                )
            if not present and not any(g in spec.defaults for g in group):
                alts = " or ".join(f"'{g}'" for g in group)
                raise VemError("type", f"{dist} needs the argument {alts}", span)
            if present:
                e, espan = given[present[0]]
                out.append((present[0], e, espan))
        return tuple(out)

    def _check_expr(self, e: Expr | None, loop_vars, span, self_name=None, fixed: str | None = None):
        """Every call is a built-in with the right arity; every name is in scope.

        ``fixed`` (a description) restricts names to dims and consts: declarations are
        fixed quantities and may not read data, params or random nodes.
        """
        if e is None:
            return
        for sub in walk(e):
            if isinstance(sub, Call):
                self._check_call(sub, span, fixed)
                continue
            if not isinstance(sub, Name):
                continue
            if sub.id in loop_vars or sub.id == self_name:
                continue
            node = self._nodes.get(sub.id)
            if node is None:
                raise self._undefined(sub, span, loop_vars)
            if fixed and node.kind not in _FIXED_KINDS:
                raise VemError(
                    "type",
                    f"{fixed} may use only numbers, dims and consts; '{sub.id}' is {_article(node.kind)}",
                    sub.span or span,
                )

    def _check_call(self, c: Call, span, fixed: str | None = None):
        net = self._nodes.get(c.func)
        if net is not None and net.is_network:
            if fixed:
                raise VemError("type", f"{fixed} may use only numbers, dims and consts; '{c.func}' is a network", c.span or span)
            if len(c.args) != 1:
                raise VemError("type", f"the network {c.func} takes 1 argument; {len(c.args)} given", c.span or span)
            return
        if c.func in self._declared_later and c.func not in BUILTINS:
            raise self._undefined(Name(c.func, c.span), span, ())
        if c.func not in BUILTINS:
            if c.func in REGISTRY:
                hint = f"{c.func} is a distribution: write 'x ~ {c.func}(...)' to make a random variable"
            else:
                hint = did_you_mean(c.func, BUILTINS) or "functions: " + ", ".join(BUILTINS)
            raise VemError("undefined-name", f"unknown function '{c.func}'", c.span or span, hint)
        arity = BUILTINS[c.func]
        if arity is not None and len(c.args) != arity:
            raise VemError("type", f"{c.func} takes {arity} argument(s); {len(c.args)} given", c.span or span)
        if arity is None and not c.args:
            raise VemError("type", f"{c.func} needs at least one argument", c.span or span)

    def _undefined(self, sub: Name, span, loop_vars) -> VemError:
        later = self._declared_later.get(sub.id)
        if later is not None:
            return VemError(
                "undefined-name",
                f"'{sub.id}' is used before its declaration at line {later.line}",
                sub.span or span,
                f"declare or define '{sub.id}' above its first use; a model is read top to bottom",
            )
        lp = self._past_loops.get(sub.id)
        if lp is not None:
            where = f" at line {lp.span.line}" if lp.span else ""
            return VemError(
                "undefined-name",
                f"'{sub.id}' is not defined here",
                sub.span or span,
                f"'{sub.id}' is the variable of the loop{where}; it exists only inside that loop's braces",
            )
        return VemError(
            "undefined-name",
            f"'{sub.id}' is not defined",
            sub.span or span,
            did_you_mean(sub.id, list(self._nodes) + list(loop_vars)) or "declare it before its first use",
        )

    # ---- finishing ----------------------------------------------------------------------
    def build(self) -> ModelGraph:
        # A chain's transition may name a piece of itself (``loc[t] = 0.9 * x[t-1]``): written out.
        nodes, changed = through_transitions(dict(self._nodes))
        for name in changed:
            for d in nodes[name].defs:
                V.check_self_reference(name, d, observed=nodes[name].kind == "data")
        order = V.check_acyclic(ModelGraph(self.name, nodes))
        shapes = S.infer_node_shapes(nodes, order)
        model = ModelGraph(self.name, nodes, shapes, self.source, self.filename)
        V.check_supports(model)
        V.check_amortised(model)
        return model


def _check_target_indices(target, indices, loop_vars, span):
    """An element on the left is named by loop variables (± a whole number) or whole numbers."""
    used = set()
    for ix in indices:
        lo = loop_offset(ix, loop_vars)
        c = const_int(ix)
        if lo is None and (c is None or c < 0):
            raise VemError(
                "unsupported",
                f"an index of '{target}' on the left must be a loop variable, a loop variable ± a whole number, "
                "or a whole number",
                ix.span or span,
                "write for i in range(N) { x[i] ~ ... } or x[0] ~ ...",
            )
        if lo is not None:
            if lo[0] in used:
                raise VemError("unsupported", f"loop variable '{lo[0]}' indexes '{target}' twice", ix.span or span)
            used.add(lo[0])
    for v in loop_vars:
        if v not in used:  # each pass of the loop would define the same element again
            raise VemError(
                "redeclared",
                f"the left side does not use the loop variable '{v}', so every pass of its loop defines "
                f"the same element of '{target}' again",
                span, f"index '{target}' by '{v}' too, or move the statement out of that loop",
            )


def _article(kind: str) -> str:
    return {"data": "data", "param": "a param", "latent": "a random variable", "det": "a deterministic node"}.get(
        kind, f"a {kind}"
    )


def _is_size(e: Expr, nodes) -> bool:
    if isinstance(e, Num):
        return float(e.value).is_integer() and e.value >= 0
    if isinstance(e, Name):
        n = nodes.get(e.id)
        return n is not None and n.kind in _FIXED_KINDS
    return False
