"""A read of a deterministic node that depends on latents, as the expression that defines it.

``rate[k] = exp(a[k])`` read as ``rate[z[n]]`` is ``exp(a[z[n]])``: the definition with its
loop variables replaced by the index expressions of the read (:func:`element`; a definition
at an offset, ``u[t+1] = ...`` read as ``u[i]``, substitutes ``t := i - 1``).  Written so, the
expected log joint sees the gate ``z[n]`` and the latent ``a`` directly, and the factor keeps
the moments, and so the conjugacy, of the same model with the expression written out by hand.

A read whose indices go past the definition's (``b = W @ c`` read as ``b[j]``) indexes the
defining expression itself; :func:`push_index` moves such an index down to the names the
expression reads, by the rules of broadcasting and of the matrix product
(``(W @ c)[j] = W[j] @ c``, ``(m0 + delta)[k] = m0 + delta[k]`` for a scalar ``m0``), so that
every index ends on a node, as it does in a hand-written model.  Indexing a fixed
subexpression is left as it is: its value is known and is indexed whole.

A deterministic node that reads only constants, data and params is not expanded: its value is
computed whole and indexed (``elj/evaluate.py``).  What cannot be expanded (a node of latents
defined piecewise, read whole or at fewer indices than it is defined with, or reading an
earlier step of itself) is an ``unsupported`` error at the read.
"""

from __future__ import annotations

import dataclasses

from ..diagnostics import VemError
from .expr import BinOp, Call, Expr, Index, Name, Num, Neg, const_int, head_name, loop_offset, names, substitute
from .shapes import infer
from .text import expr_to_text

#: Element-wise built-ins: an index passes through them unchanged.
_ELEMENTWISE = ("exp", "log", "sigmoid")


def _unsupported(msg: str, span, hint: str | None = None):
    return VemError("unsupported", msg, span, hint)


def shift(ix: Expr, c: int) -> Expr:
    """``ix + c``, folded where ``ix`` is a number or a loop variable plus a number, so that
    ``t - 1`` stays recognisable as an offset of ``t``."""
    if c == 0:
        return ix
    if isinstance(ix, Num) and float(ix.value).is_integer():
        return Num(int(ix.value) + c, ix.span)
    if isinstance(ix, BinOp) and ix.op in "+-" and isinstance(ix.right, Num) and float(ix.right.value).is_integer():
        total = (int(ix.right.value) if ix.op == "+" else -int(ix.right.value)) + c
        if total == 0:
            return ix.left
        return BinOp("+" if total > 0 else "-", ix.left, Num(abs(total)), ix.span)
    return BinOp("+" if c > 0 else "-", ix, Num(abs(c)), getattr(ix, "span", None))


def reads_itself(node) -> bool:
    """Whether a deterministic node's definitions read the node (a recurrence ``u[t] = u[t-1] + ...``)."""
    return any(x.id == node.name for d in node.defs if d.expr is not None for x in names(d.expr)
               if x.id not in d.loop_vars)


def element(node, indices: tuple[Expr, ...], span) -> Expr:
    """The expression of ``node[indices]`` for a deterministic node defined by one statement
    over its loop variables (each index on the left a loop variable, a loop variable plus a
    whole number, or a whole number); indices past the definition's index its value."""
    what = f"'{node.name}'"
    if reads_itself(node):
        raise _unsupported(f"the deterministic node {what} reads an earlier step of itself, and it depends on "
                           "latents: a recurrence of latents is not supported", span,
                           "write the recurrence as a chain of latents, or unroll it")
    if len(node.defs) != 1:
        raise _unsupported(f"the deterministic node {what} is defined piecewise ({len(node.defs)} statements) and "
                           "depends on latents: it can be read only where one statement defines it", span,
                           "define it with one statement, or write each piece where it is read")
    d = node.defs[0]
    if len(indices) < len(d.indices):
        raise _unsupported(f"the deterministic node {what} depends on latents and is defined element by element "
                           f"({len(d.indices)} indices); here it is read with {len(indices)}", span,
                           f"read it element by element, as {node.name}[{', '.join(expr_to_text(i) for i in d.indices)}]")
    subst: dict[str, Expr] = {}
    for mine, theirs in zip(d.indices, indices):
        lo = loop_offset(mine, d.loop_vars)
        if lo is not None and lo[0] not in subst:
            subst[lo[0]] = shift(theirs, -lo[1])
            continue
        c = const_int(mine)
        if c is None or const_int(theirs) != c:
            raise _unsupported(f"the deterministic node {what} is defined at index {expr_to_text(mine)} only, "
                               f"and is read at {expr_to_text(theirs)}", span)
    missing = [v for v in d.loop_vars if v not in subst]
    if missing:
        raise _unsupported(f"the deterministic node {what} is defined inside the loop over '{missing[0]}' but not "
                           "indexed by it", span)
    body = substitute(d.expr, lambda e: subst.get(e.id) if isinstance(e, Name) else None)
    rest = tuple(indices[len(d.indices):])
    return Index(body, rest, span) if rest else body


def push_index(e: Expr, ix: tuple[Expr, ...], shape_of, is_random, span) -> Expr:
    """An expression equal to ``e[ix]`` whose indices stand on the names of ``e`` (or on its
    fixed subexpressions).  ``shape_of(expr)`` is an expression's shape, ``is_random(expr)``
    whether it reads a latent."""
    if not ix:
        return e
    if not is_random(e) or isinstance(e, Name):
        return Index(e, ix, span)
    if isinstance(e, Index):  # e.base[i][j] = e.base[i, j]
        if isinstance(e.base, Name):
            return Index(e.base, e.indices + ix, span)
        return push_index(e.base, e.indices + ix, shape_of, is_random, span)
    if isinstance(e, Neg):
        return Neg(push_index(e.operand, ix, shape_of, is_random, span), e.span)
    rank = len(shape_of(e))
    if len(ix) > rank:
        raise VemError("shape", f"too many indices: {len(ix)} given for {expr_to_text(e)}, which has rank {rank}", span)

    def aligned(sub, drop=0):
        """``sub`` indexed at the leading axes of the result it broadcasts into (its own
        trailing ``drop`` axes take no part: the contracted axis of a dot)."""
        s = shape_of(sub)
        s = s[: len(s) - drop] if drop else s
        off = rank - len(s)
        own = tuple(Num(0) if s[a - off] == 1 else ix[a] for a in range(max(off, 0), len(ix)))
        return push_index(sub, own, shape_of, is_random, span) if own else sub

    if isinstance(e, BinOp) and e.op != "@":
        return BinOp(e.op, aligned(e.left), aligned(e.right), e.span)
    if isinstance(e, BinOp):
        return _push_matmul(e, ix, shape_of, is_random, span)
    if isinstance(e, Call) and e.func in _ELEMENTWISE:
        return Call(e.func, (push_index(e.args[0], ix, shape_of, is_random, span),), e.span)
    if isinstance(e, Call) and e.func == "softmax" and len(ix) < rank:
        return Call(e.func, (push_index(e.args[0], ix, shape_of, is_random, span),), e.span)
    if isinstance(e, Call) and e.func == "dot":
        return Call("dot", (aligned(e.args[0], 1), aligned(e.args[1], 1)), e.span)
    if isinstance(e, Call) and e.func == "transpose" and len(ix) <= rank - 2:
        return Call(e.func, (push_index(e.args[0], ix, shape_of, is_random, span),), e.span)
    if isinstance(e, Call) and e.func == "transpose" and len(ix) == rank >= 2:  # transpose(B)[k, j] = B[j, k]
        return push_index(e.args[0], ix[:-2] + (ix[-1], ix[-2]), shape_of, is_random, span)
    raise _unsupported(f"indexing {expr_to_text(e)}, an expression of latents, is not supported", span,
                       "index the latents inside it instead")


def _push_matmul(e: BinOp, ix, shape_of, is_random, span) -> Expr:
    a, b = e.left, e.right
    ra, rb = len(shape_of(a)), len(shape_of(b))
    if ra >= 2 and rb == 1 and len(ix) <= ra - 1:  # (A @ v)[i] = A[i] @ v
        return BinOp("@", push_index(a, ix, shape_of, is_random, span), b, e.span)
    if ra == 1 and rb == 2:  # (v @ B)[j] = dot(v, Bᵀ[j])
        col = push_index(Call("transpose", (b,), b.span), ix, shape_of, is_random, span)
        return Call("dot", (a, col), e.span)
    if ra == 2 and rb == 2 and len(ix) == 1:  # (A @ B)[i] = Bᵀ @ A[i]
        return BinOp("@", Call("transpose", (b,), b.span), push_index(a, ix, shape_of, is_random, span), e.span)
    if ra == 2 and rb == 2:  # (A @ B)[i, j] = dot(A[i], Bᵀ[j])
        row = push_index(a, ix[:1], shape_of, is_random, span)
        col = push_index(Call("transpose", (b,), b.span), ix[1:], shape_of, is_random, span)
        return Call("dot", (row, col), e.span)
    raise _unsupported(f"indexing the matrix product {expr_to_text(e)} of latents is not supported", span,
                       "index the factors of the product instead")


def random_nodes(model) -> frozenset[str]:
    """The latents and the deterministic nodes that read one (through other deterministic nodes)."""
    out = {n.name for n in model.nodes.values() if n.kind == "latent"}
    changed = True
    while changed:
        changed = False
        for n in model.nodes.values():
            if n.kind == "det" and n.name not in out and any(
                x.id in out for d in n.defs if d.expr is not None for x in names(d.expr) if x.id not in d.loop_vars
            ):
                out.add(n.name)
                changed = True
    return frozenset(out)


def expand(model, e: Expr, loop_vars, is_random_node) -> Expr:
    """``e`` with every read of a deterministic node for which ``is_random_node(name)`` holds
    replaced by its defining expression (:func:`element`, :func:`push_index`), recursively."""
    dets = {n.name for n in model.nodes.values() if n.kind == "det" and is_random_node(n.name)}
    if not dets or not any(x.id in dets for x in names(e)):
        return e
    shapes = getattr(model, "shapes", {})

    def shape_of(x):
        return infer(x, shapes, loop_vars)

    def is_random(x):
        return any(n.id not in loop_vars and (n.id in dets or is_random_node(n.id)) for n in names(x))

    def rep(x):
        if isinstance(x, Index) and isinstance(x.base, Index) and head_name(x) in dets:  # u[i][j] = u[i, j]
            return go(Index(x.base.base, x.base.indices + x.indices, x.span))
        if isinstance(x, Index) and isinstance(x.base, Name) and x.base.id in dets:
            ix = tuple(go(i) for i in x.indices)
            node = model.nodes[x.base.id]
            body = element(node, ix, x.span)
            if isinstance(body, Index) and not isinstance(body.base, Name):
                return go(push_index(go(body.base), body.indices, shape_of, is_random, x.span))
            return go(body)
        if isinstance(x, Name) and x.id in dets and x.id not in loop_vars:
            node = model.nodes[x.id]
            if node.defs and not node.defs[0].indices and len(node.defs) == 1:
                return go(element(node, (), x.span))
            raise _unsupported(f"the deterministic node '{x.id}' depends on latents and is defined element by "
                               "element: read it element by element", x.span)
        return None

    def go(x):
        return substitute(x, rep)

    return go(e)


def through_transitions(nodes: dict) -> tuple[dict, tuple[str, ...]]:
    """Reads of deterministic nodes that lead back to the node reading them, written out.

    ``loc[t] = 0.9 * x[t-1]`` read by ``x[t] ~ Normal(loc[t], ...)`` names a piece of the
    transition: the read is replaced by its expression (:func:`element`), so the transition
    reads its own earlier step, ``x[t] ~ Normal(0.9 * x[t-1], ...)``, the chain the user
    meant, and the graph of names stays a DAG (``loc`` then reads ``x`` and nothing reads it
    back).  Reads that do not close such a loop are left as written (the compiler expands
    them, :func:`expand`).  Returns the nodes and the names whose definitions changed (their
    reads of themselves are checked again by the caller).  A loop through deterministic
    nodes alone is left for the cycle check."""
    dets = {name for name, node in nodes.items() if node.kind == "det"}
    if not dets:
        return nodes, ()

    def reaches(start: str, target: str) -> bool:
        seen, stack = set(), [start]
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            for d in nodes[n].defs:
                for x in (names(d.expr) if d.expr is not None else ()):
                    if x.id in d.loop_vars:
                        continue
                    if x.id == target:
                        return True
                    if x.id in dets:
                        stack.append(x.id)
        return False

    out, changed = dict(nodes), []
    for name, node in nodes.items():
        if node.kind not in ("latent", "data"):
            continue
        closing = frozenset(dn for dn in dets if reaches(dn, name))
        if not closing:
            continue

        def written_out(e, inside=()):
            def rep(x):
                if isinstance(x, Index) and isinstance(x.base, Name) and x.base.id in closing \
                        and x.base.id not in inside:
                    body = element(nodes[x.base.id], x.indices, x.span)
                    return written_out(body, inside + (x.base.id,))
                return None
            return substitute(e, rep)

        defs = tuple(dataclasses.replace(d, args=tuple((k, written_out(e)) for k, e in d.args)) for d in node.defs)
        if defs != node.defs:
            out[name] = dataclasses.replace(node, defs=defs)
            changed.append(name)
    return out, tuple(changed)


__all__ = ["element", "expand", "push_index", "random_nodes", "reads_itself", "shift", "through_transitions"]
