"""The sign of an argument that reads latents, where it is decided by the model alone.

A constant argument outside its family's support is checked by value (``ir/validate.py`` as the
model is built, ``engine/bind.py`` with the constants given at fit time).  An argument that
reads a latent has no value, but its sign may still be certain: ``precision = kappa * tau`` with
``tau ~ Gamma`` and ``kappa = 0`` is zero whatever ``tau`` is, and ``kappa * tau * eye(P)`` as
an ``MvNormal`` precision is then no positive definite matrix.  Such a prior is improper and its
fit a nan ELBO, reported at the data's factor; here it is a ``support`` error at the argument.

The sign is propagated through products, quotients, sums, negation and the functions whose sign
is known (``exp``, ``eye``, ``fill``, ...): ``POS`` for a positive value (a positive definite
matrix where the argument is one), ``ZERO`` and ``NEG``; ``None`` where it is not certain.  Only a
certain ``ZERO`` or ``NEG`` under a positive or positive-definite constraint is an error.
"""

from __future__ import annotations

from collections.abc import Callable

from ..diagnostics import VemError
from ..families import get_family
from .expr import BinOp, Call, Expr, Index, Name, Neg, Num, head_name, walk
from .text import expr_to_text

POS, ZERO, NEG = 1, 0, -1

#: Supports whose every value is positive (a positive definite matrix for ``spd``).
_POSITIVE = ("pos", "unit", "spd", "simplex")


def _sgn(v: float) -> int:
    return POS if v > 0 else NEG if v < 0 else ZERO


def sign(e: Expr, model, value: Callable[[str], float | None], depth: int = 0) -> int | None:
    """``POS``, ``ZERO`` or ``NEG`` where the sign of ``e`` is certain, else None.  ``value``
    gives a scalar constant's value (None where unknown or not a scalar)."""
    if depth > 50:
        return None
    rec = lambda x: sign(x, model, value, depth + 1)  # noqa: E731
    if isinstance(e, Num):
        return _sgn(float(e.value))
    if isinstance(e, Neg):
        s = rec(e.operand)
        return None if s is None else -s
    if isinstance(e, (Name, Index)):
        return _node_sign(e, model, value, depth)
    if isinstance(e, BinOp):
        a, b = rec(e.left), rec(e.right)
        if e.op == "*":
            return ZERO if ZERO in (a, b) else None if None in (a, b) else a * b
        if e.op == "/":
            return ZERO if a == ZERO and b not in (None, ZERO) else None if None in (a, b) or b == ZERO else a * b
        if e.op in ("+", "-"):
            b = None if b is None else (b if e.op == "+" else -b)
            if a == ZERO or b == ZERO:
                return b if a == ZERO else a
            return a if a is not None and a == b else None
        return None
    if isinstance(e, Call):
        if e.func in ("exp", "sigmoid", "softmax", "eye", "ones"):
            return POS
        if e.func == "zeros":
            return ZERO
        if e.func in ("fill", "diag") and e.args:
            return rec(e.args[0])
    return None


def _node_sign(e, model, value, depth) -> int | None:
    node = model.nodes.get(head_name(e) or "")
    if node is None:
        return None
    if node.kind == "const":
        v = value(node.name) if isinstance(e, Name) else None
        return None if v is None else _sgn(v)
    if node.kind == "param":
        return POS if node.type is not None and not node.is_network and node.type.base in _POSITIVE else None
    if node.kind == "latent" and node.defs and node.defs[0].dist is not None:
        fam = get_family(node.defs[0].dist)
        return POS if fam.variational and fam.support in _POSITIVE else None
    if node.kind == "det" and len(node.defs) == 1 and node.defs[0].expr is not None:
        return sign(node.defs[0].expr, model, value, depth + 1)
    return None


def positive_constraint(c) -> str | None:
    """``"positive"`` or ``"positive definite"`` where the constraint ``c`` asks for it."""
    from numpyro.distributions import constraints as C

    while isinstance(c, C.independent):
        c = c.base_constraint
    if c is C.positive:
        return "positive"
    if isinstance(c, type(C.positive_definite)):
        return "positive definite"
    return None


def reads_random(e: Expr, model, depth: int = 0) -> list[str]:
    """The latents and params that ``e`` reads (through deterministic nodes too), in order."""
    out: list[str] = []
    for sub in walk(e):
        node = model.nodes.get(sub.id) if isinstance(sub, Name) else None
        if node is None:
            continue
        found = [node.name] if node.kind in ("latent", "param") else []
        if node.kind == "det" and depth < 50:
            found = [n for d in node.defs if d.expr is not None for n in reads_random(d.expr, model, depth + 1)]
        out += [n for n in found if n not in out]
    return out


def check_sign(model, fam_name: str, name: str, e: Expr, c, span, value, whence: str = "") -> None:
    """A ``support`` error at ``e`` where the argument ``name`` must be positive (definite) and
    ``e``, which reads a latent or param, is certainly zero or negative."""
    need = positive_constraint(c)
    rnd = reads_random(e, model)
    if need is None or not rnd:
        return
    s = sign(e, model, value)
    if s not in (ZERO, NEG):
        return
    consts = [n.id for n in walk(e) if isinstance(n, Name) and getattr(model.nodes.get(n.id), "kind", "") == "const"]
    shown = ", ".join(f"{k} = {value(k):g}" for k in dict.fromkeys(consts) if value(k) is not None)
    shown += f" {whence}" if shown and whence else ""
    raise VemError(
        "support",
        f"the {get_family(fam_name).args.spelled(name)} of {fam_name} must be {need}, but {expr_to_text(e)} is "
        f"{'zero' if s == ZERO else 'negative'} whatever {', '.join(rnd)} {'is' if len(rnd) == 1 else 'are'}"
        + (f", with {shown}" if shown else ""),
        e.span or span,
        "the prior or likelihood would be improper: give the constant factor a positive value",
    )


__all__ = ["NEG", "POS", "ZERO", "check_sign", "positive_constraint", "sign"]
