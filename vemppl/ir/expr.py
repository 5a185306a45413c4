"""Expressions of the modelling language, as frozen values.

An expression is a small tree of :class:`Num`, :class:`Name`, :class:`Index`,
:class:`BinOp`, :class:`Neg` and :class:`Call`.  Source spans ride along but take no
part in equality, so an IR parsed from text equals the one built in Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from ..diagnostics import Span

#: Built-in functions and their arity (None: variadic).
BUILTINS = {
    "zeros": None,
    "ones": None,
    "fill": None,
    "eye": 1,
    "diag": 1,
    "exp": 1,
    "log": 1,
    "sigmoid": 1,
    "softmax": 1,
    "sum": 1,
    "dot": 2,
    "transpose": 1,
}

BINARY_OPS = ("+", "-", "*", "/", "@", "**")


@dataclass(frozen=True)
class Num:
    value: float | int
    span: Span | None = field(default=None, compare=False, repr=False)

    def __eq__(self, other):  # 1 == 1.0 in the IR, as in the text
        return isinstance(other, Num) and float(self.value) == float(other.value)

    def __hash__(self):
        return hash(("Num", float(self.value)))


@dataclass(frozen=True)
class Name:
    id: str
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Index:
    base: "Expr"
    indices: tuple["Expr", ...]
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class BinOp:
    op: str
    left: "Expr"
    right: "Expr"
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Neg:
    operand: "Expr"
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple["Expr", ...]
    span: Span | None = field(default=None, compare=False, repr=False)


Expr = Union[Num, Name, Index, BinOp, Neg, Call]


def children(e: Expr) -> tuple[Expr, ...]:
    if isinstance(e, Index):
        return (e.base, *e.indices)
    if isinstance(e, BinOp):
        return (e.left, e.right)
    if isinstance(e, Neg):
        return (e.operand,)
    if isinstance(e, Call):
        return e.args
    return ()


def substitute(e: Expr, replace) -> Expr:
    """``e`` with every subexpression ``x`` for which ``replace(x)`` is not None replaced by
    it (outermost first), spans kept on the rebuilt nodes."""
    new = replace(e)
    if new is not None:
        return new
    if isinstance(e, Index):
        return Index(substitute(e.base, replace), tuple(substitute(i, replace) for i in e.indices), e.span)
    if isinstance(e, BinOp):
        return BinOp(e.op, substitute(e.left, replace), substitute(e.right, replace), e.span)
    if isinstance(e, Neg):
        return Neg(substitute(e.operand, replace), e.span)
    if isinstance(e, Call):
        return Call(e.func, tuple(substitute(a, replace) for a in e.args), e.span)
    return e


def walk(e: Expr):
    """Every sub-expression, pre-order."""
    yield e
    for c in children(e):
        yield from walk(c)


def names(e: Expr) -> list[Name]:
    """Every :class:`Name` in ``e``, in source order."""
    return [n for n in walk(e) if isinstance(n, Name)]


def indexes(root: Expr, name_node: Name) -> bool:
    """Whether ``name_node`` (an occurrence inside ``root``) is the base of an :class:`Index`
    there, i.e. read element by element rather than as a whole."""
    return any(isinstance(s, Index) and s.base is name_node for s in walk(root))


def head_name(e: Expr) -> str | None:
    """The node an indexing chain reads: ``mu`` for ``mu[z[n]]``, None for a call."""
    while isinstance(e, Index):
        e = e.base
    return e.id if isinstance(e, Name) else None


def loop_offset(e: Expr, loop_vars) -> tuple[str, int] | None:
    """``(var, c)`` if ``e`` is ``var``, ``var + c`` or ``var - c`` for a loop variable."""
    if isinstance(e, Name) and e.id in loop_vars:
        return e.id, 0
    if (
        isinstance(e, BinOp)
        and e.op in "+-"
        and isinstance(e.left, Name)
        and e.left.id in loop_vars
        and isinstance(e.right, Num)
        and float(e.right.value).is_integer()
    ):
        c = int(e.right.value)
        return e.left.id, c if e.op == "+" else -c
    return None


def const_int(e: Expr) -> int | None:
    if isinstance(e, Num) and float(e.value).is_integer():
        return int(e.value)
    return None
