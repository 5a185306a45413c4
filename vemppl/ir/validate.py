"""Checks of the IR that look beyond one name: self-references, overlapping
definitions, cycles, data supports, and constant arguments outside a family's support.

:class:`~vemppl.ir.builder.IRBuilder` calls these; each raises
:class:`~vemppl.diagnostics.VemError` at the offending span (LANGUAGE.md, "Names",
"Loops", "Errors").
"""

from __future__ import annotations

import math
from functools import lru_cache

import networkx as nx
import numpy as np

from ..diagnostics import VemError
from ..families import get_family
from . import shapes as S
from .expr import BinOp, Call, Expr, Index, Name, Neg, Num, const_int, loop_offset, walk
from .nodes import Definition, Node
from .text import expr_to_text


# ---- a node reading itself ----------------------------------------------------------------
def check_self_reference(target: str, d: Definition, observed: bool = False):
    """A node may read itself only at an earlier step of its own loop (a Markov dependence).

    A latent may read only the step just before (a first-order chain); an ``observed`` (data)
    node may read any earlier step: its values are known, so ``y[t-2]`` is a covariate (an
    AR(p) regression on the series), not a dependence among latents."""
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
            if not observed and any(lag not in (0, 1) for lag in lags):
                raise VemError(
                    "unsupported",
                    f"'{target}' depends on itself at a lag other than 1",
                    sub.span or d.span,
                    "only first-order Markov dependences (z[t-1]) are supported",
                )


def _is_indexed_base(root, name_node) -> bool:
    return any(isinstance(s, Index) and s.base is name_node for s in walk(root))


# ---- two definitions writing one element ----------------------------------------------------
def overlap(a: Definition, b: Definition) -> bool:
    """Conservative test that two definitions write a common element: they do not when, on
    some axis, one's range is empty (``range(N, N)``) or ends where (or before) the other's
    starts, compared as numbers or as the same size symbol with offsets (``range(T)`` and
    ``range(T, S)``: t < T and t >= T)."""
    if len(a.indices) != len(b.indices):
        return True
    for ia, ib in zip(a.indices, b.indices):
        ra, rb = _index_range(ia, a), _index_range(ib, b)
        if ra is None or rb is None:
            continue
        (lo_a, hi_a), (lo_b, hi_b) = ra, rb
        if _at_least(lo_a, hi_a) or _at_least(lo_b, hi_b):  # an empty range (range(N, N)) writes nothing
            return False
        if _at_least(lo_a, hi_b) or _at_least(lo_b, hi_a):
            return False
        if lo_a != lo_b and all(isinstance(v, int) for v in (lo_a, lo_b)):
            # z[0] against range(1, T): disjoint when the constant is below the loop's start.
            if hi_a == lo_a + 1 and lo_a < lo_b or hi_b == lo_b + 1 and lo_b < lo_a:
                return False
    return True


def _at_least(x, y) -> bool:
    """``x >= y`` for every value of the sizes: two numbers, or one symbol with offsets."""
    if isinstance(x, int) and isinstance(y, int):
        return x >= y
    px = (x, 0) if isinstance(x, int) else S.symbol_offset(x)
    py = (y, 0) if isinstance(y, int) else S.symbol_offset(y)
    return px is not None and py is not None and not isinstance(x, int) and not isinstance(y, int) \
        and px[0] == py[0] and px[1] >= py[1]


def _index_range(ix: Expr, d: Definition):
    c = const_int(ix)
    if c is not None:
        return (c, c + 1)
    lo = loop_offset(ix, d.loop_vars)
    if lo is None:
        return None
    lp = next(lp for lp in d.loops if lp.var == lo[0])
    start, stop = const_int(lp.start), S.size_of(lp.stop)
    if start is None:  # a symbolic start (range(T, S)): kept as text, compared by symbol
        start = S.size_of(lp.start)
        if not isinstance(start, str) or S.symbol_offset(start) is None:
            return None
    return (S.shift(start, lo[1]), S.shift(stop, lo[1]))


# ---- the whole graph ---------------------------------------------------------------------------
def check_acyclic(model) -> list[str]:
    """A topological order of the nodes (declaration order breaks ties), or a cycle error."""
    g = model.graph.copy()
    g.remove_edges_from([(u, v) for u, v in g.edges if u == v])
    try:
        cycle = nx.find_cycle(g)
    except nx.NetworkXNoCycle:
        rank = {name: i for i, name in enumerate(model.nodes)}
        return list(nx.lexicographical_topological_sort(g, key=rank.__getitem__))
    names = " → ".join([u for u, _ in cycle] + [cycle[0][0]])
    closing = model.nodes[cycle[-1][1]]
    # Point at the definition that closes the loop: the last one of the node it reaches.
    span = closing.defs[-1].span if closing.defs else closing.span
    raise VemError("cycle", f"the model has a cycle: {names}", span, "a model must be a directed acyclic graph")


_DATA_TYPES_FOR_SUPPORT = {
    "real": {"real"},
    "pos": {"pos", "unit", "bool"},
    "unit": {"unit"},
    "count": {"count", "bool", "cat", "int"},
    "bool": {"bool"},
    "cat": {"cat", "bool"},
    "simplex": {"simplex"},
    "spd": {"spd"},
}


def check_supports(model):
    """Data must lie in the support of the distribution it is drawn from."""
    for node in model.of_kind("data"):
        for d in node.defs:
            fam = get_family(d.dist)
            ok = _DATA_TYPES_FOR_SUPPORT.get(fam.support, set())
            if node.type.base not in ok:
                raise VemError(
                    "support",
                    f"'{node.name}' is declared {node.type.base} but {fam.name} has support {fam.support}",
                    d.dist_span or d.span,
                    f"declare '{node.name}' with a type in {{{', '.join(sorted(ok))}}}, or choose another distribution",
                )


# ---- constant arguments against NumPyro's argument constraints --------------------------------
def check_constant_args(family, args, nodes: dict[str, Node]):
    """An argument that folds to a constant must satisfy NumPyro's ``arg_constraints``.

    ``args`` are ``(canonical name, expr, span)``.  Only element-wise constraints are
    checked (``Dirichlet(fill(-1.0, K))``, ``Normal(0, -1)``, ``Gamma(0, 1)``); matrix
    constraints (positive definite, simplex) are left to the data and the engine.
    """
    for name, e, span in args:
        v = fold(e, nodes)
        msg = None if v is None else arg_violation(family.name, name, v)
        if msg:
            raise VemError("support", msg, e.span or span)


def arg_violation(fam_name: str, name: str, v) -> str | None:
    """What is wrong with the value ``v`` of argument ``name`` of ``fam_name`` (NumPyro's
    element-wise ``arg_constraints``), None where nothing is or the constraint cannot judge it.
    Also run with the constants given at fit time (``engine/bind.py``)."""
    c = _arg_constraints(fam_name).get(name)
    if c is None:
        return None
    a = np.asarray(v, dtype=float)
    try:
        ok = bool(np.all(c(a)))
    except Exception:  # a constraint that cannot judge a lone scalar (e.g. Dependent)
        return None
    if ok:
        return None
    shown = f"{a.item():g}" if a.ndim == 0 else f"{a[~np.asarray(c(a), bool)].ravel()[0]:g} (among its entries)"
    return f"the {get_family(fam_name).args.spelled(name)} of {fam_name} must be {_describe(c)}; this one is {shown}"


@lru_cache(maxsize=None)
def _arg_constraints(fam_name: str) -> dict:
    import numpyro.distributions as dist
    from numpyro.distributions import constraints as C

    out = {}
    # NumPyro spells some distributions as factories over a Probs and a Logits class.
    for cls_name in (fam_name, fam_name + "Probs", fam_name + "Logits"):
        cls = getattr(dist, cls_name, None)
        for k, c in (getattr(cls, "arg_constraints", None) or {}).items():
            while isinstance(c, C.independent):
                c = c.base_constraint
            if getattr(c, "event_dim", 1) == 0 and not isinstance(c, C._Dependent):
                out.setdefault(k, c)
    for k, c in get_family(fam_name).own_arg_constraints.items():
        out.setdefault(k, getattr(C, c))
    return out


def _describe(c) -> str:
    from numpyro.distributions import constraints as C

    words = (
        (C.positive, "positive"),
        (C.nonnegative, "non-negative"),
        (C.unit_interval, "in [0, 1]"),
        (C.nonnegative_integer, "a non-negative integer"),
        (C.positive_integer, "a positive integer"),
        (C.real, "a real number"),
        (C.boolean, "0 or 1"),
    )
    for k, w in words:
        if c is k:
            return w
    if hasattr(c, "lower_bound"):
        return f"at least {c.lower_bound:g}"
    return f"in {c!r}"


_FOLD_DEPTH = 50


def fold(e: Expr, nodes: dict[str, Node], depth: int = 0) -> float | None:
    """The value of ``e`` if it is a known scalar (or an array filled with one), else None."""
    if depth > _FOLD_DEPTH:
        return None
    if isinstance(e, Num):
        return float(e.value)
    if isinstance(e, Neg):
        v = fold(e.operand, nodes, depth + 1)
        return None if v is None else -v
    if isinstance(e, Name):
        n = nodes.get(e.id)
        if n is not None and n.kind == "const" and n.value is not None:
            return fold(n.value, nodes, depth + 1)
        return None
    if isinstance(e, BinOp) and e.op != "@":
        a, b = fold(e.left, nodes, depth + 1), fold(e.right, nodes, depth + 1)
        if a is None or b is None:
            return None
        try:
            v = {"+": a + b, "-": a - b, "*": a * b}.get(e.op)
            if v is None:
                v = a / b if e.op == "/" else a**b
        except (ZeroDivisionError, OverflowError, ValueError):
            return None
        return v if isinstance(v, float) and math.isfinite(v) else None
    if isinstance(e, Call):
        if e.func in ("zeros", "ones"):
            return 0.0 if e.func == "zeros" else 1.0
        if e.func == "fill" and e.args:
            return fold(e.args[0], nodes, depth + 1)
    return None


def _element(name, d) -> str:
    return f"{name}[{', '.join(expr_to_text(i) for i in d.indices)}]"


# ---- amortised posteriors ----------------------------------------------------------------------
def check_amortised(model):
    """``q(z[n]) = enc(x[n])``: the encoder's output is the location and log-scale of
    ``q(z[n])``, so its size is twice the size of one element of ``z`` (``2 * L``)."""
    for node in model.of_kind("latent"):
        q = node.amortised
        if q is None:
            continue
        out = S.infer(q.expr, model.shapes, q.loop_vars)
        event = model.shapes[node.name][len(q.indices):]
        if len(event) > 1:
            raise VemError(
                "unsupported", f"an amortised posterior needs a scalar or vector element; '{node.name}' has {S.fmt(event)}",
                q.span,
            )
        want = 2 if not event else (2 * event[0] if isinstance(event[0], int) else f"2 * {event[0]}")
        if len(out) != 1 or out[0] != want:
            raise VemError(
                "shape",
                f"the encoder {q.expr.func} gives shape {S.fmt(out)}, but q({_element(node.name, q)}) needs [{want}]: "
                f"a location and a log-scale for each of the {event[0] if event else 1} entries of an element",
                q.expr.span or q.span,
                f"make the last size in {q.expr.func}'s type {want}",
            )
