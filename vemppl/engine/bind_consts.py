"""An array given for a const written as a scalar, checked where the model reads it.

``const alpha = 0.1`` may be set to a vector at fit time (``--set alpha=[0.1,0.2,0.3]``,
``consts={"alpha": ...}``; docs/cli.md), which the model's reads must then take: ``fill(alpha,
K)`` and ``alpha * ones(K)`` with ``K`` entries.  The compiler checked the model with the scalar,
so a vector that does not fit (two entries where K = 3, or any vector where a scalar is read,
``Normal(0, s)`` of a scalar latent) failed inside NumPy or JAX with no word of where.  Here each
part of a statement that reads only consts and sizes and reads such a const is evaluated with
the given values; one that cannot be, or that comes out with more axes than it was written with,
is a ``data`` error at that part, naming the const and the shape it was given.
"""

from __future__ import annotations

import numpy as np

from ..diagnostics import VemError
from ..elj.evaluate import eval_fixed
from ..ir.expr import children, names
from ..ir.shapes import infer
from ..ir.text import expr_to_text


def check_array_consts(model, consts: dict, sizes: dict, values: dict) -> None:
    """Refuse, located, an array for a scalar-written const that its reads cannot take."""
    widened = {n.name for n in model.of_kind("const")
               if n.name in consts and n.type is None and np.ndim(values.get(n.name)) > 0
               and _scalar_default(n, sizes, values)}
    if not widened:
        return
    fixed = {n.name for n in model.nodes.values() if n.kind in ("const", "dim")}
    for node in model.nodes.values():
        for d in node.defs:
            exprs = [a for _, a in d.args] + ([d.expr] if getattr(d, "expr", None) is not None else [])
            for e in exprs:
                for part in _fixed_parts(e, fixed, widened, set(d.loop_vars)):
                    _check_part(model, part, widened, sizes, values)


def _scalar_default(node, sizes, values) -> bool:
    try:
        return np.ndim(eval_fixed(node.value, sizes, values)) == 0
    except Exception:  # a definition that cannot be evaluated alone: nothing to compare with
        return False


def _fixed_parts(e, fixed, widened, loop_vars):
    """The largest sub-expressions of ``e`` that read only consts, dims and numbers and read a
    widened const."""
    ids = {n.id for n in names(e)}
    if ids <= fixed and not ids & loop_vars:
        if ids & widened:
            yield e
        return
    for c in children(e):
        yield from _fixed_parts(c, fixed, widened, loop_vars)


def _check_part(model, e, widened, sizes, values):
    read = sorted({n.id for n in names(e)} & widened)
    given = ", ".join(f"{{'{k}': {_short(values[k])}}} (shape {np.shape(values[k])})" for k in read)
    try:
        got = np.ndim(eval_fixed(e, sizes, values))
    except Exception as exc:  # noqa: BLE001 - NumPy's or JAX's broadcasting error, said in words
        raise VemError("data", f"consts={given}, which {expr_to_text(e)} cannot take ({exc})", e.span,
                       hint=f"give {read[0]} the size that {expr_to_text(e)} needs") from None
    try:
        written = len(infer(e, model.shapes, ()))
    except Exception:  # noqa: BLE001 - no shape to compare with
        return
    if got > written:
        raise VemError("data", f"consts={given}, but {expr_to_text(e)} is read here with {written} axes, as "
                       f"written (with that value it has {got})", e.span,
                       hint=f"declare its shape (const {read[0]}: real[...] = ...) and index it where it is read")


def _short(v) -> str:
    """A given value as the user wrote it, or its first entries."""
    flat = np.asarray(v).ravel().tolist()
    return str(np.asarray(v).tolist()) if len(flat) <= 8 else "[" + ", ".join(map(str, flat[:4])) + ", ...]"


__all__ = ["check_array_consts"]
