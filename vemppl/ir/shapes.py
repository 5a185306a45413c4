"""Symbolic shapes: tuples of sizes, each an ``int`` or the name of a dim/const.

Shapes are checked at compile time where they are known (LANGUAGE.md, "Principles");
a size that cannot be decided symbolically (``D + 2``) is kept as its text and only
compared for equality.
"""

from __future__ import annotations

from ..diagnostics import VemError
from .expr import BinOp, Call, Expr, Index, Name, Neg, Num

Size = int | str
Shape = tuple[Size, ...]


def size_of(e: Expr) -> Size:
    """The symbolic size an expression stands for (``D``, ``3``, ``'D+2'``)."""
    if isinstance(e, Num):
        return int(e.value)
    if isinstance(e, Name):
        return e.id
    from ..frontends.printer import expr_to_text  # only for display of composite sizes

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
            raise VemError("shape", f"shapes {_fmt(a)} and {_fmt(b)} of the {what} do not broadcast", span)
    return tuple(reversed(out))


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
        raise VemError("shape", f"matrix product of shapes {_fmt(a)} and {_fmt(b)}: inner sizes differ", span)
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
