"""Like terms of a sum collected: ``2.0 * b * x[n] - b * x[n] * x[n]`` is
``(2.0 * x[n] - x[n] * x[n]) * b``, and ``dot(X[n], w) + dot(Z[n], w)`` is ``dot(X[n] + Z[n], w)``.

A sum whose two sides read the same latent element is not a sum of independent parts:
``E[(a + b)²] = E[a²] + 2E[ab] + E[b²]`` needs ``E[ab]``, which for ``a = c₁ b``, ``b = c₂ b``
is ``c₁ c₂ E[b²]``, not ``E[a] E[b]``.  Where every term is a known coefficient times one
random *atom* (products, quotients by known values, negations and ``dot`` with a known vector),
the terms with the same atom are added coefficient-wise, so that each random read appears once
and the expression is one latent scaled by a known value: its moments are exact and affine in
the block's statistics (a Normal location stays conjugate).  Re-association is exact under
NumPy broadcasting: ``c₁ ⊙ R + c₂ ⊙ R = (c₁ + c₂) ⊙ R``, ``c₁ · R + c₂ · R = (c₁ + c₂) · R``.

:func:`collect` answers None where no two terms share an atom; what it cannot decompose (a
product of two random terms, a nonlinear call) is an atom of its own, compared by value (spans
take no part in equality).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from .expr import BinOp, Call, Expr, Neg, Num


class Term(NamedTuple):
    """``sign · coef ⊙ atom`` (``kind`` "mul"), ``sign · dot(coef, atom)`` ("dot"), or a known
    value ``sign · coef ⊙ atom`` ("fixed", ``atom`` then known too); ``coef`` None is one."""

    sign: float
    coef: Expr | None
    kind: str
    atom: Expr


def _times(coef: Expr | None, c: Expr) -> Expr:
    return c if coef is None else BinOp("*", coef, c)


def _terms(e: Expr, is_random: Callable[[Expr], bool], sign: float = 1.0, coef: Expr | None = None) -> list[Term]:
    if not is_random(e):
        return [Term(sign, coef, "fixed", e)]
    if isinstance(e, BinOp) and e.op in "+-":
        return _terms(e.left, is_random, sign, coef) + _terms(e.right, is_random, sign if e.op == "+" else -sign, coef)
    if isinstance(e, Neg):
        return _terms(e.operand, is_random, -sign, coef)
    if isinstance(e, BinOp) and e.op == "*" and not is_random(e.left):
        return _terms(e.right, is_random, sign, _times(coef, e.left))
    if isinstance(e, BinOp) and e.op == "*" and not is_random(e.right):
        return _terms(e.left, is_random, sign, _times(coef, e.right))
    if isinstance(e, BinOp) and e.op == "/" and not is_random(e.right):
        return _terms(e.left, is_random, sign, BinOp("/", coef if coef is not None else Num(1.0), e.right))
    if isinstance(e, Call) and e.func == "dot" and len(e.args) == 2:
        known = [a for a in e.args if not is_random(a)]
        if len(known) == 1:  # dot(c, R) or dot(R, c): an outer scalar coefficient scales c
            atom = e.args[1] if known[0] is e.args[0] else e.args[0]
            return [Term(sign, _times(coef, known[0]), "dot", atom)]
    return [Term(sign, coef, "mul", e)]


def _signed(t: Term) -> Expr:
    c = t.coef if t.coef is not None else Num(1.0)
    return c if t.sign > 0 else Neg(c)


def collect(e: Expr, is_random: Callable[[Expr], bool]) -> Expr | None:
    """``e`` with the terms that share a random atom merged, or None where none do."""
    terms = _terms(e, is_random)
    groups: dict[tuple[str, Expr], list[Term]] = {}
    for t in terms:
        if t.kind != "fixed":
            groups.setdefault((t.kind, t.atom), []).append(t)
    if all(len(g) < 2 for g in groups.values()):
        return None
    parts: list[Expr] = []
    for (kind, atom), g in groups.items():
        coef = _signed(g[0])
        for t in g[1:]:
            coef = BinOp("+" if t.sign > 0 else "-", coef, t.coef if t.coef is not None else Num(1.0))
        parts.append(Call("dot", (coef, atom)) if kind == "dot" else BinOp("*", coef, atom))
    for t in terms:
        if t.kind == "fixed":
            v = t.atom if t.coef is None else BinOp("*", t.coef, t.atom)
            parts.append(v if t.sign > 0 else Neg(v))
    out = parts[0]
    for p in parts[1:]:
        out = BinOp("+", out, p)
    return out
