"""Symbolic shapes: tuples of sizes, each an ``int`` or the name of a dim/const.

Shapes are checked at compile time where they are known (LANGUAGE.md, "Principles");
a size that cannot be decided symbolically (``D + 2``) is kept as its text and only
compared for equality.  :func:`infer` gives the shape of an expression and
:func:`infer_node_shapes` the full shape (plate sizes, then value shape) of every node.
"""

from __future__ import annotations

import re

from ..diagnostics import VemError
from ..families import get_family
from .expr import BinOp, Call, Expr, Index, Name, Neg, Num, const_int, loop_offset
from .text import expr_to_text

Size = int | str
Shape = tuple[Size, ...]


class NetShape(tuple):
    """The layer sizes of a network param (input, hidden..., output), kept apart from
    array shapes: a network is called (``dec(z[n])``), never read as a value."""


def size_of(e: Expr) -> Size:
    """The symbolic size an expression stands for (``D``, ``3``, ``'D+2'``)."""
    if isinstance(e, Num):
        return int(e.value)
    if isinstance(e, Name):
        return e.id
    return expr_to_text(e)


def broadcast(a: Shape, b: Shape, span=None, what="operands") -> Shape:
    """NumPy broadcasting of symbolic shapes."""
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else 1
        y = b[-i] if i <= len(b) else 1
        if x == 1:
            out.append(y)
        elif y == 1 or x == y:
            out.append(x)
        else:
            raise VemError("shape", f"shapes {_fmt(a)} and {_fmt(b)} of the {what} do not broadcast", span,
                           hint=_by_name_hint(x, y))
    return tuple(reversed(out))


def _by_name_hint(x, y) -> str | None:
    """Sizes are compared as written: a number and a name (`2` and `K`) are different sizes
    even where the name's value is that number, as `--set K=3` may change it."""
    named, number = (x, y) if isinstance(y, int) else (y, x)
    if isinstance(number, int) and not isinstance(named, int):
        return (f"sizes are compared as written: {number} and {named} differ even where {named} = {number} "
                f"(--set may change {named}); write both as {named}")
    return None


def _fmt(s: Shape) -> str:
    return "[" + ", ".join(str(x) for x in s) + "]"


fmt = _fmt


def infer(e: Expr, env: dict[str, Shape], loop_vars) -> Shape:
    """Shape of expression ``e``; ``env`` maps node names to their full shapes."""
    if isinstance(e, Num):
        return ()
    if isinstance(e, Name):
        if e.id in loop_vars:
            return ()
        if isinstance(env[e.id], NetShape):
            raise VemError(
                "type", f"'{e.id}' is a network: call it on an input, as in {e.id}(z[n])", e.span
            )
        return env[e.id]
    if isinstance(e, Index):
        base = infer(e.base, env, loop_vars)
        if len(e.indices) > len(base):
            raise VemError(
                "shape",
                f"too many indices: {len(e.indices)} given for an array of shape {_fmt(base)}",
                e.span,
            )
        for ix in e.indices:
            s = infer(ix, env, loop_vars)
            if s != ():
                raise VemError("shape", f"an index must be a scalar; this one has shape {_fmt(s)}", ix.span)
        return base[len(e.indices) :]
    if isinstance(e, Neg):
        return infer(e.operand, env, loop_vars)
    if isinstance(e, BinOp):
        a, b = infer(e.left, env, loop_vars), infer(e.right, env, loop_vars)
        if e.op == "@":
            return _matmul(a, b, e.span)
        return broadcast(a, b, e.span)
    if isinstance(e, Call):
        return _call(e, env, loop_vars)
    raise TypeError(e)


def _matmul(a: Shape, b: Shape, span) -> Shape:
    if not a or not b:
        raise VemError("shape", "'@' needs arrays, not scalars", span)
    a2 = a if len(a) > 1 else (1,) + a
    b2 = b if len(b) > 1 else b + (1,)
    if a2[-1] != b2[-2]:
        raise VemError("shape", f"matrix product of shapes {_fmt(a)} and {_fmt(b)}: inner sizes differ", span,
                       hint=_by_name_hint(a2[-1], b2[-2]))
    batch = broadcast(a2[:-2], b2[:-2], span)
    out = batch + (a2[-2], b2[-1])
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    if len(b) == 1:
        out = out[:-1]
    return out


def _call(e: Call, env, loop_vars) -> Shape:
    f = e.func
    shapes = [infer(a, env, loop_vars) for a in e.args]
    if isinstance(env.get(f), NetShape):
        return _network_call(e, env[f], shapes[0])
    if f in ("zeros", "ones"):
        return tuple(size_of(a) for a in e.args)
    if f == "fill":
        return tuple(size_of(a) for a in e.args[1:])
    if f == "eye":
        d = size_of(e.args[0])
        return (d, d)
    if f == "diag":
        if len(shapes[0]) != 1:
            raise VemError("shape", f"diag needs a vector; got shape {_fmt(shapes[0])}", e.span)
        return shapes[0] + shapes[0]
    if f in ("exp", "log", "sigmoid", "softmax"):
        return shapes[0]
    if f == "sum":
        return ()
    if f == "dot":
        a, b = shapes
        if not a or not b or a[-1] != b[-1]:
            raise VemError("shape", f"dot of shapes {_fmt(a)} and {_fmt(b)}: last sizes differ", e.span)
        return broadcast(a[:-1], b[:-1], e.span)
    if f == "transpose":
        s = shapes[0]
        return s[:-2] + (s[-1], s[-2]) if len(s) >= 2 else s
    raise VemError("undefined-name", f"unknown function '{f}'", e.span)


def _network_call(e: Call, layers: NetShape, arg: Shape) -> Shape:
    """A network maps the last axis of its input (size ``layers[0]``) to ``layers[-1]``."""
    if not arg or arg[-1] != layers[0]:
        what = "a scalar" if not arg else f"shape {_fmt(arg)}"
        raise VemError(
            "shape",
            f"the network {e.func} takes inputs of size {layers[0]} (its first layer); "
            f"{expr_to_text(e.args[0])} has {what}",
            e.span,
            f"the first size in {e.func}'s type must be the size of the last axis of its input",
        )
    return arg[:-1] + (layers[-1],)


# ---- node shapes --------------------------------------------------------------------------
def infer_node_shapes(nodes: dict, order: list[str]) -> dict[str, Shape]:
    """Full shapes of every node; also checks data and typed consts against their declarations."""
    env: dict[str, Shape] = {}
    for node in nodes.values():
        if node.kind == "dim":
            env[node.name] = ()
        elif node.kind == "const":
            got = infer(node.value, env, ())
            if node.type is not None and node.type.shape:
                declared = type_shape(node.type)
                if broadcast(got, declared, node.value.span or node.span, f"value of '{node.name}'") != declared:
                    raise VemError(
                        "shape",
                        f"const '{node.name}' is declared with shape {fmt(declared)} but its value has shape {fmt(got)}",
                        node.value.span or node.span,
                    )
                got = declared
            env[node.name] = got
        elif node.kind in ("data", "param"):
            env[node.name] = NetShape(type_shape(node.type)) if node.type.is_network else type_shape(node.type)
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
                    f"'{node.name}' is declared with shape {fmt(declared)} but its statements give {fmt(got)}",
                    node.defs[0].span,
                    "the indices on the left of '~' and the distribution's value shape make up the shape",
                )
    return env


def type_shape(t) -> Shape:
    """The shape a declared type stands for (``spd[D]`` is ``[D, D]``)."""
    sizes = tuple(size_of(e) for e in t.shape)
    if t.base == "spd" and sizes:
        return sizes + sizes[-1:]
    return sizes


def _defined_shape(node, env) -> Shape:
    plate: list | None = None
    value = None
    below: set = set()  # (axis, a, b): a piece over range(a, b) on the axis, so b >= a
    # A piece over an empty range (range(N, N)) writes no element, so it does not widen the
    # node (as elj.plates.plate_shape drops the loops empty at the bound sizes); its value
    # shape must still agree.
    live = {id(d) for d in node.defs if not any(empty_range(size_of(lp.start), size_of(lp.stop)) for lp in d.loops)}
    for d in node.defs:
        lv = d.loop_vars
        sizes = []
        for ix in d.indices:
            lo = loop_offset(ix, lv)
            if lo is not None:
                lp = next(lp for lp in d.loops if lp.var == lo[0])
                sizes.append(shift(size_of(lp.stop), lo[1]))
                start = size_of(lp.start)
                if isinstance(start, str) and isinstance(sizes[-1], str):
                    below.add((len(sizes) - 1, shift(start, lo[1]), sizes[-1]))
            else:
                c = const_int(ix)  # a constant index c needs c + 1 elements
                sizes.append(c + 1 if c is not None else None)
        if d.dist is not None:
            fam = get_family(d.dist)
            # A Markov self-reference reads one element: give the node a provisional plate shape.
            # (its value's shape known from an earlier statement, x[0] ~ MvNormal(...) before x[t]).
            own = {node.name: env.get(node.name, (None,) * len(d.indices) + tuple(value or ()))}
            arg_shapes = {k: infer(e, {**env, **own}, lv) for k, e in d.args}
            v = _value_shape(fam, arg_shapes, d.dist_span or d.span)
        else:
            # A recurrence (u[t] = u[t-1] + ...) reads the node itself: give it a provisional
            # shape, its value shape taken from an earlier statement where there is one.
            own = {node.name: env.get(node.name, (None,) * len(d.indices) + tuple(value or ()))}
            v = infer(d.expr, {**env, **own}, lv)
        if value is not None and v != value:
            raise VemError("shape", f"definitions of '{node.name}' disagree: shapes {fmt(value)} and {fmt(v)}", d.span)
        value = v
        if id(d) not in live and live:
            continue
        plate = sizes if plate is None else [_cover(a, b) for a, b in zip(plate, sizes)]
    plate = [_dominated(p, [(a, b) for ax, a, b in below if ax == i]) if p is not None else 1
             for i, p in enumerate(plate or [])]
    return tuple(plate) + tuple(value or ())


def _dominated(size: Size, pairs) -> Size:
    """``size`` without the terms of a ``'max(...)'`` that another term is known to cover: a
    piece over ``range(T, S)`` has ``S >= T`` (a loop's end is never below its start,
    ``ir/sizes.py``), so ``x[t]`` over ``range(T)`` and ``range(T, S)`` spans ``S``, which
    ``dot(X[n], x)`` with ``X: real[N, S]`` then matches."""
    if not isinstance(size, str):
        return size
    terms = max_terms(size)
    keep = [t for t in terms if not any(a == t and b in terms and b != t for a, b in pairs)]
    return keep[0] if len(keep) == 1 else f"max({', '.join(keep)})"


def _cover(a: Size | None, b: Size | None) -> Size | None:
    """The extent that covers two definitions' extents along one axis (``elj.plates.
    plate_shape`` takes the same maximum with the sizes bound): ``x[0:2]`` and ``x[2:5]``
    give 5, ``x[0]`` and ``x[1:T]`` give T, ``x[0:T]`` and ``x[T]`` (``T+1``) give T+1.  A
    number against a symbol is the symbol (a size is taken to cover a constant index; the
    size pass checks the index against the bound size).  Two unrelated symbols (``x[t]``
    for t < T and for T <= t < S) give ``'max(T, S)'``, which the bound sizes decide
    (:func:`max_terms`; ``ir/sizes.py`` evaluates it)."""
    if a is None or b is None:
        return b if a is None else a
    if isinstance(a, int) and isinstance(b, int):
        return max(a, b)
    if isinstance(a, int) or isinstance(b, int):
        return b if isinstance(a, int) else a
    terms: list[str] = []
    for t in max_terms(a) + max_terms(b):
        pt = symbol_offset(t)
        same = [i for i, u in enumerate(terms) if pt is not None and (symbol_offset(u) or (None,))[0] == pt[0]]
        if not same:
            terms += [] if t in terms else [t]
        elif pt[1] > symbol_offset(terms[same[0]])[1]:  # T+1 covers T
            terms[same[0]] = t
    return terms[0] if len(terms) == 1 else f"max({', '.join(terms)})"


def max_terms(s: str) -> list[str]:
    """The sizes a ``'max(A, B)'`` extent is the largest of (``[s]`` for any other size)."""
    m = re.fullmatch(r"max\((.*)\)", s)
    return [t.strip() for t in m.group(1).split(",")] if m else [s]


def shift(size: Size, offset: int) -> Size:
    """``size + offset`` as a size: a number, or a symbol's text (``'T+1'``)."""
    if isinstance(size, int):
        return size + offset
    return size if offset == 0 else f"{size}{offset:+d}"


def empty_range(start: Size, stop: Size) -> bool:
    """Whether ``range(start, stop)`` is empty whatever the sizes: two numbers, or one symbol
    with offsets (``range(N, N)``, ``range(T+1, T)``)."""
    if isinstance(start, int) and isinstance(stop, int):
        return start >= stop
    a = symbol_offset(start) if isinstance(start, str) else None
    b = symbol_offset(stop) if isinstance(stop, str) else None
    return a is not None and b is not None and a[0] == b[0] and a[1] >= b[1]


def symbol_offset(s: str) -> tuple[str, int] | None:
    """``'T'`` → (T, 0), ``'T+1'`` → (T, 1), ``'T-1'`` → (T, −1); else None."""
    m = re.fullmatch(r"\s*([A-Za-z_]\w*)\s*(?:([+-])\s*(\d+))?\s*", s)
    if m is None:
        return None
    return m.group(1), (int(m.group(3)) * (1 if m.group(2) == "+" else -1) if m.group(2) else 0)


def _value_shape(fam, arg_shapes, span) -> Shape:
    if fam.event_rank == 0:
        out: Shape = ()
        for s in arg_shapes.values():
            out = broadcast(out, s, span, f"arguments of {fam.name}")
        return () if fam.support == "cat" else out
    try:
        return tuple(fam.event_shape(**arg_shapes))
    except VemError as err:
        raise err.with_span(span) from None
    except Exception as exc:  # a family's shape rule failed on these arguments
        raise VemError("shape", f"arguments of {fam.name} have incompatible shapes: {exc}", span) from None
