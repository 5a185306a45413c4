"""Known values of size names: the bound sizes, then constants folded from their text.

Read by the static checks (``ir/sizes.py``) and the memory estimate (``ir/memory.py``),
which the checks call: its own module, so neither imports the other both ways.
"""

from __future__ import annotations

import math

from ..diagnostics import VemError
from ..families import get_family
from . import shapes as S
from .expr import BinOp, Name, Neg, Num

_FOLD_DEPTH = 50


class _Sizes:
    """Known values of size names: bound sizes, then constants folded from their text."""

    def __init__(self, model, sizes):
        self.model = model
        self.sizes = dict(sizes or {})

    def value(self, e, depth=0) -> float | None:
        """The value of a scalar size expression, or None when it is not known yet."""
        if depth > _FOLD_DEPTH or e is None:
            return None
        if isinstance(e, Num):
            return float(e.value)
        if isinstance(e, Name):
            if e.id in self.sizes:
                return float(self.sizes[e.id])
            node = self.model.nodes.get(e.id)
            if node is not None and node.kind == "const" and node.value is not None:
                return self.value(node.value, depth + 1)
            return None
        if isinstance(e, Neg):
            v = self.value(e.operand, depth + 1)
            return None if v is None else -v
        if isinstance(e, BinOp) and e.op in ("+", "-", "*", "/", "**"):
            a, b = self.value(e.left, depth + 1), self.value(e.right, depth + 1)
            if a is None or b is None:
                return None
            try:
                v = {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b,
                     "/": lambda: a / b, "**": lambda: a**b}[e.op]()
            except (ZeroDivisionError, OverflowError, ValueError):
                return None
            return v if isinstance(v, float) and math.isfinite(v) else None
        return None

    def size(self, s) -> int | None:
        """The integer value of a symbolic size (``3``, ``'K'``), or None when unknown."""
        if isinstance(s, int):
            return s
        if isinstance(s, str) and s in self.model.nodes:
            v = self.value(Name(s))
            return int(v) if v is not None and v.is_integer() else None
        if isinstance(s, str):  # 'T+1', or 'max(T, S)' of a node defined piecewise (ir/shapes.py)
            values = []
            for term in S.max_terms(s):
                so = S.symbol_offset(term)
                v = self.size(so[0]) if so is not None and so[0] in self.model.nodes else None
                if v is None:
                    return None
                values.append(v + so[1])
            return max(values)
        return None



def _categories(model, name) -> tuple[object, object] | None:
    """``(number of categories, span)`` of a categorical latent or data array, when known."""
    node = model.nodes.get(name)
    if node is None or not node.defs or node.defs[0].dist is None:
        return None
    fam = get_family(node.defs[0].dist)
    if fam.support != "cat" or not node.defs[0].args:
        return None
    d = node.defs[0]
    try:
        shape = S.infer(d.args[0][1], {**model.shapes, name: model.shapes.get(name, ())}, d.loop_vars)
    except (VemError, KeyError):
        return None
    return (shape[-1], d.args[0][1].span or d.span) if shape else None


__all__ = ["_Sizes", "_categories"]
