"""The static size and constant pass: every size, index and argument shape checked on the
IR before any array is built (issue #23).

:func:`check_model` runs twice: at the start of compiling, with only the constants'
values known, and at the end of binding, with every size known (``sizes``).  Each check
decides what it can from what is known and leaves the rest to the second run:

* a **size** (a declared shape, a ``cat(K)`` bound, ``zeros``/``ones``/``fill``/``eye``
  sizes, a loop bound) is a whole number >= 1 (a loop bound >= 0) and at most
  :data:`MAX_SIZE`;
* a **constant index** (``mu[5]``) and a **loop index** (``x[t+1]`` for ``t < T``) lie
  inside the axis they index;
* a **gate** (``mu[z[n]]`` with ``z`` categorical) indexes an axis whose size is the
  number of ``z``'s categories; a ``cat(K)`` array drawn from a categorical has ``K``
  categories; an index never reads a real-valued node;
* a **distribution argument** has the rank NumPyro's constraint gives it (a vector for a
  Dirichlet's concentration; for a vector family, no more: one draw reads one event), the event arguments of one distribution agree
  on their trailing size (an MvNormal's mean ``[D]`` and precision ``[D, D]``), and a
  latent read directly as an argument has a support inside the argument's (a Normal
  latent as a Poisson rate is refused here, not later as a missing moment).

:func:`check_memory` estimates the working set of a fit from the sizes and refuses it
with a ``resource`` error above the memory limit (:func:`memory_limit`).
"""

from __future__ import annotations

from functools import lru_cache

from ..diagnostics import VemError
from ..families import get_family
from . import shapes as S
from .coverage import check_coverage
from .gate_ranges import check_gate_range
from .expr import BinOp, Call, Index, Name, Num, head_name, loop_offset, walk
from .known import _FOLD_DEPTH, _categories, _Sizes  # noqa: F401  (data_checks and results/schema read _Sizes here)
from .memory import MAX_MEMORY_ENV, check_memory, memory_limit  # noqa: F401  (one import for callers)
from .signs import check_sign
from .text import expr_to_text
from .validate import fold

#: The largest size of one axis: 2**31 - 1 elements (beyond it one axis of float64 alone
#: is 16 GiB, and XLA's default index type is 32-bit on accelerators).
MAX_SIZE = 2**31 - 1

def _text(e) -> str:
    return expr_to_text(e)


def _fmt_num(v: float) -> str:
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:g}"


# ---- sizes ----------------------------------------------------------------------------------
def _size_uses(model):
    """``(expr, what, minimum)`` for every expression used as a size."""
    for node in model.nodes.values():
        t = node.type
        if t is not None:
            for e in t.shape:
                yield e, f"a size in the type of '{node.name}'", 1
            if t.bound is not None and not t.is_network:
                yield t.bound, f"the number of categories of '{node.name}'", 1
        exprs = [node.value] if node.value is not None else []
        defs = list(node.defs) + ([node.amortised] if node.amortised is not None else [])
        for d in defs:
            for lp in d.loops:
                yield lp.start, f"the start of the loop over '{lp.var}'", 0
                yield lp.stop, f"the end of the loop over '{lp.var}'", 0
            exprs += [a for _, a in d.args] + ([d.expr] if d.expr is not None else [])
        for root in exprs:
            for x in walk(root):
                if isinstance(x, Call) and x.func in ("zeros", "ones"):
                    sizes = x.args
                elif isinstance(x, Call) and x.func == "fill":
                    sizes = x.args[1:]
                elif isinstance(x, Call) and x.func == "eye":
                    sizes = x.args[:1]
                else:
                    continue
                for e in sizes:
                    yield e, f"a size of {x.func}(...)", 1


def _check_size(known: _Sizes, e, what: str, minimum: int):
    v = known.value(e)
    if v is None:
        return
    if v.is_integer() and minimum <= v <= MAX_SIZE:
        return
    named = e.id if isinstance(e, Name) else None
    node = known.model.nodes.get(named) if named else None
    if v.is_integer() and v > MAX_SIZE:
        expected = f"at most {MAX_SIZE} (2**31 - 1)"
    else:
        expected = f"a whole number >= {minimum}"
    subject = f"{node.kind} '{named}'" if node is not None else f"'{_text(e)}'"
    where = ""
    span = e.span
    if node is not None and named not in known.sizes and node.value is not None and node.value.span is not None:
        # Point at the definition the user has to change, and say where it is used as a size.
        use = f" at line {e.span.line}" if e.span is not None else ""
        where = f" (used as {what}{use})"
        span = node.value.span
    elif node is not None:
        where = f" (used as {what})"
    else:
        where = f" ({what})"
    raise VemError(
        "shape",
        f"{subject} is a size{where}. Expected {expected}; got {_fmt_num(v)}",
        span or (node.span if node is not None else None),
        f"set it to a whole number, e.g. --set {named}=3" if named else None,
    )


def _check_loops(known: _Sizes):
    """``range(start, stop)`` with ``stop < start`` is a mistake (``stop == start`` is an empty
    loop, e.g. the transitions of a sequence of length 1)."""
    for node in known.model.nodes.values():
        for d in node.defs:
            for lp in d.loops:
                start, stop = known.value(lp.start), known.value(lp.stop)
                if start is not None and stop is not None and stop < start:
                    raise VemError(
                        "shape",
                        f"the loop over '{lp.var}' runs over range({_text(lp.start)}, {_text(lp.stop)}) = "
                        f"range({_fmt_num(start)}, {_fmt_num(stop)}). Expected an end >= its start; got "
                        f"{_fmt_num(stop)} < {_fmt_num(start)}",
                        lp.stop.span or lp.span or d.span,
                    )


# ---- indices ----------------------------------------------------------------------------------
_REAL_TYPES = ("real", "pos", "unit", "simplex", "spd")
_REAL_FUNCTIONS = ("exp", "log", "sigmoid", "softmax", "eye", "diag")
_REAL_SUPPORTS = ("real", "pos", "unit", "simplex", "spd", "real×spd")


def _real_valued(model, name, depth=0) -> str | None:
    """Why ``name`` cannot be an index (it holds real numbers), or None."""
    node = model.nodes.get(name)
    if node is None or depth > _FOLD_DEPTH:
        return None
    if node.kind == "det":
        for d in node.defs:
            for x in walk(d.expr):
                real = (isinstance(x, Num) and not float(x.value).is_integer()) or (
                    isinstance(x, BinOp) and x.op == "/") or (isinstance(x, Call) and x.func in _REAL_FUNCTIONS)
                if not real and isinstance(x, Name) and x.id not in d.loop_vars and x.id != name:
                    real = _real_valued(model, x.id, depth + 1) is not None
                if real:
                    return f"it is a deterministic node of real values ({_text(d.expr)})"
        return None
    if node.kind in ("data", "param") and node.type is not None and node.type.base in _REAL_TYPES:
        return f"it is declared {node.type.base}"
    if node.kind == "latent" and node.defs and node.defs[0].dist is not None:
        fam = get_family(node.defs[0].dist)
        if fam.support in _REAL_SUPPORTS:
            return f"it is drawn from {fam.name}, whose values are {fam.support}"
    return None


def _check_index(known: _Sizes, sub: Index, d, axis_sizes):
    model = known.model
    head = model.nodes.get(head_name(sub) or "")
    # A node defined piecewise (z[0], range(1, 20), range(20, T)) has its plate size taken
    # from one of its pieces: its ranges are not checked against it.
    pieces = head is not None and head.kind in ("latent", "det") and len(head.defs) > 1
    for axis, ix in enumerate(sub.indices):
        if axis >= len(axis_sizes):
            return
        size_sym = axis_sizes[axis]
        size = None if pieces else known.size(size_sym)
        base = _text(sub.base)
        for x in walk(ix):
            if isinstance(x, Name) and x.id not in d.loop_vars:
                why = _real_valued(model, x.id)
                if why is not None:
                    raise VemError(
                        "type",
                        f"'{x.id}' is used as an index of '{base}', but {why}. Expected whole numbers "
                        f"(a loop variable, a constant, or an int, count or cat array); got real values",
                        x.span or sub.span or d.span,
                    )
        c = known.value(ix) if not any(isinstance(x, Name) and x.id in d.loop_vars for x in walk(ix)) else None
        if c is not None:
            if not c.is_integer() or c < 0 or (size is not None and c >= size):
                rng = f"0..{size - 1}" if size is not None else f"whole numbers from 0 up to {size_sym} - 1"
                raise VemError(
                    "shape",
                    f"index {_fmt_num(c)} of '{base}' is out of range on axis {axis}. Expected {rng} "
                    f"(that axis has size {size_sym}{'' if size is None or size_sym == size else f' = {size}'}); "
                    f"got {_text(ix)}",
                    ix.span or sub.span or d.span,
                )
            continue
        lo = loop_offset(ix, d.loop_vars)
        if lo is not None:
            loop = next(lp for lp in d.loops if lp.var == lo[0])
            start, stop = known.value(loop.start), known.value(loop.stop)
            first = None if start is None else start + lo[1]
            last = None if stop is None else stop - 1 + lo[1]
            bad = first is not None and first < 0 and (stop is None or stop > start)
            bad = bad or (size is not None and last is not None and start is not None and stop > start and last >= size)
            if not bad and not pieces and size is None and lo[1] > 0 and isinstance(loop.stop, Name) \
                    and loop.stop.id == size_sym:
                bad = True
            if bad:
                raise VemError(
                    "shape",
                    f"index {_text(ix)} of '{base}' runs out of range on axis {axis} (size {size_sym}): "
                    f"'{lo[0]}' runs over range({_text(loop.start)}, {_text(loop.stop)})",
                    ix.span or sub.span or d.span,
                )
            continue
        gate = head_name(ix) if isinstance(ix, (Name, Index)) else None
        if gate is None:
            check_gate_range(known, ix, axis, size_sym, size, base)
        cats = _categories(model, gate) if gate is not None else None
        if cats is not None:
            k = known.size(cats[0])
            if (k is not None and size is not None and k != size) or (
                (k is None or size is None) and not pieces and cats[0] != size_sym and _decided(model, cats[0], size_sym)
            ):
                raise VemError(
                    "shape",
                    f"'{gate}' takes {cats[0]}{'' if k is None or cats[0] == k else f' = {k}'} values, but indexes "
                    f"axis {axis} of '{base}', which has size {size_sym}{'' if size is None or size == size_sym else f' = {size}'}. "
                    f"Expected the sizes to agree",
                    ix.span or sub.span or d.span,
                    f"give '{base}' {cats[0]} entries on that axis, or '{gate}' {size_sym} categories",
                )


def _decided(model, a, b) -> bool:
    """Two symbolic sizes known to differ without values: two different literal numbers."""
    return isinstance(a, int) and isinstance(b, int) and a != b


def _check_indices(known: _Sizes):
    model = known.model
    for node in model.nodes.values():
        for d in node.defs:
            exprs = [e for _, e in d.args] + ([d.expr] if d.expr is not None else [])
            own = {node.name: model.shapes.get(node.name, ())}
            for root in exprs:
                for sub in walk(root):
                    if not isinstance(sub, Index):
                        continue
                    try:
                        shape = S.infer(sub.base, {**model.shapes, **own}, d.loop_vars)
                    except (VemError, KeyError):
                        continue
                    _check_index(known, sub, d, shape)


# ---- categories and arguments -----------------------------------------------------------------
def _check_categories(known: _Sizes):
    """A ``cat(K)`` array drawn from a categorical distribution has ``K`` categories."""
    model = known.model
    for node in model.of_kind("data"):
        t = node.type
        if t.base != "cat" or t.bound is None:
            continue
        cats = _categories(model, node.name)
        if cats is None:
            continue
        k, want = known.size(cats[0]), known.value(t.bound)
        if k is not None and want is not None and k != want:
            raise VemError(
                "shape",
                f"'{node.name}' is declared cat({_text(t.bound)}) with {_fmt_num(want)} categories, but its "
                f"distribution has {cats[0]}{'' if cats[0] == k else f' = {k}'}. Expected the numbers to agree",
                cats[1],
                f"declare '{node.name}' as cat({cats[0]}), or give the distribution {_text(t.bound)} probabilities",
            )


@lru_cache(maxsize=None)
def _event_dims(fam_name: str) -> dict:
    """``{argument: (event_dim, constraint)}`` from NumPyro's ``arg_constraints`` of the
    class the family's ``numpyro_dist`` builds (read off its code, not a table of names)."""
    import numpyro.distributions as dist
    from numpyro.distributions import constraints as C

    fam = get_family(fam_name)
    fn = getattr(fam.numpyro_dist, "__func__", fam.numpyro_dist)
    code = getattr(fn, "__code__", None)
    names = (fam.name,) + (tuple(code.co_names) if code is not None else ())
    out: dict = {}
    for cls_name in names:
        for suffix in ("", "Probs", "Logits"):
            cls = getattr(dist, cls_name + suffix, None)
            if not isinstance(cls, type) or not issubclass(cls, dist.Distribution):
                continue
            for k, c in (getattr(cls, "arg_constraints", None) or {}).items():
                if isinstance(c, C._Dependent):
                    continue
                out.setdefault(k, (getattr(c, "event_dim", 0), c))
        if out:
            break
    for k, c in fam.own_arg_constraints.items():
        c = getattr(C, c)
        out.setdefault(k, (getattr(c, "event_dim", 0), c))
    return out


def arg_constraint(fam_name: str, name: str):
    """NumPyro's constraint of argument ``name`` of ``fam_name`` (None where it has none)."""
    return _event_dims(fam_name).get(name, (0, None))[1]


def matrix_constrained(fam_name: str, name: str) -> bool:
    """True when NumPyro constrains argument ``name`` of ``fam_name`` as a matrix."""
    return _event_dims(fam_name).get(name, (0, None))[0] == 2


def matrix_violation(fam_name: str, name: str, v) -> str | None:
    """What is wrong with the known matrix ``v`` of argument ``name`` of ``fam_name`` where
    NumPyro constrains it to be positive definite (a precision or covariance) or a Cholesky
    factor (``scale_tril``), None where nothing is.  Checked with the sizes bound
    (``engine/bind.py``): ``kappa * eye(D)`` has no size before that."""
    import numpy as np
    from numpyro.distributions import constraints as C

    rank, c = _event_dims(fam_name).get(name, (0, None))
    a = np.asarray(v, dtype=float)
    if rank != 2 or a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        return None
    if isinstance(c, type(C.positive_definite)):
        sym = np.allclose(a, np.swapaxes(a, -1, -2), rtol=1e-10, atol=1e-12 * max(1.0, float(np.abs(a).max())))
        low = float(np.linalg.eigvalsh((a + np.swapaxes(a, -1, -2)) / 2).min())
        if sym and low > 0.0:
            return None
        return (f"the {get_family(fam_name).args.spelled(name)} of {fam_name} must be positive definite"
                + ("" if sym else " (symmetric)") + f"; this one's smallest eigenvalue is {low:g}")
    if isinstance(c, type(C.lower_cholesky)):
        if np.all(np.triu(a, 1) == 0.0) and np.all(np.diagonal(a, axis1=-2, axis2=-1) > 0.0):
            return None
        return f"the {get_family(fam_name).args.spelled(name)} of {fam_name} must be lower triangular with a positive diagonal"
    return None


def _allowed_supports(c) -> tuple[str, ...] | None:
    """Latent supports whose values satisfy constraint ``c`` (None: any)."""
    from numpyro.distributions import constraints as C

    while isinstance(c, C.independent):
        c = c.base_constraint
    lower, upper = getattr(c, "lower_bound", None), getattr(c, "upper_bound", None)
    if isinstance(c, type(C.simplex)):
        return ("simplex",)
    if isinstance(c, type(C.positive_definite)):
        return ("spd",)
    if isinstance(lower, (int, float)) and lower >= 0:
        if isinstance(upper, (int, float)) and upper <= 1:
            return ("unit", "bool")
        return ("pos", "unit", "count", "bool", "cat")
    return None


def _check_arguments(model):
    # Latents first: an argument's own definition is the cause of a mismatch its readers see.
    for node in sorted(model.nodes.values(), key=lambda n: n.kind == "data"):
        for d in node.defs:
            if d.dist is None:
                continue
            fam = get_family(d.dist)
            ranks = _event_dims(fam.name)
            env = {**model.shapes, node.name: model.shapes.get(node.name, (None,) * len(d.indices))}
            events = []
            for name, e in d.args:
                rank, c = ranks.get(name, (0, None))
                try:
                    shape = S.infer(e, env, d.loop_vars)
                except (VemError, KeyError):
                    continue
                if len(shape) < rank:
                    kind = {1: "a vector", 2: "a matrix"}.get(rank, f"an array of rank {rank}")
                    got = "a scalar" if not shape else f"shape {S.fmt(shape)}"
                    raise VemError(
                        "shape",
                        f"the {fam.args.spelled(name)} of {fam.name} must be {kind}; {_text(e)} is {got}",
                        e.span or d.dist_span or d.span,
                        f"e.g. {fam.name}(fill(1.0, {_text(e)}))" if rank == 1 and not shape else None,
                    )
                if len(shape) > rank and (fam.event_rank >= 1 or fam.support == "cat"):
                    # A vector family draws one event: more axes would be batch axes the statement's
                    # indices do not name (they were dropped, or broadcast against the loops' axes).
                    kind, more = {0: "a scalar", 1: "a vector", 2: "a matrix"}.get(rank, f"rank {rank}"), len(shape) - rank
                    raise VemError("shape", f"the {fam.args.spelled(name)} of {fam.name} must be {kind}; {_text(e)} has "
                                   f"shape {S.fmt(shape)}, {'one more axis' if more == 1 else f'{more} more axes'} than one "
                                   "draw reads", e.span or d.dist_span or d.span,
                                   f"index it by the loop variables so that each {fam.name} reads {kind} (one "
                                   f"{fam.name} draws one value: a batch of them is a loop)")
                if rank == 2 and shape[-1] != shape[-2]:
                    raise VemError(
                        "shape",
                        f"the {fam.args.spelled(name)} of {fam.name} must be a square matrix; {_text(e)} has shape {S.fmt(shape)}",
                        e.span or d.span,
                    )
                if rank >= 1:
                    events.append((name, e, shape))
                _check_latent_support(model, fam, name, e, c, d)
                check_sign(model, fam.name, name, e, c, d.dist_span or d.span, _text_value(model))
            for (n1, e1, s1), (n2, e2, s2) in zip(events, events[1:]):
                if s1[-1] != s2[-1] and None not in (s1[-1], s2[-1]):
                    raise VemError(
                        "shape",
                        f"the {n1} and {n2} of {fam.name} disagree in size: {_text(e1)} has shape {S.fmt(s1)} "
                        f"and {_text(e2)} has shape {S.fmt(s2)}. Expected the same last size",
                        e2.span or d.span,
                    )


def _text_value(model):
    """A scalar constant's value as the model text gives it (None where it does not)."""
    def value(name):
        node = model.nodes.get(name)
        return None if node is None or node.value is None else fold(node.value, model.nodes)
    return value


_WORDS = {"pos": "positive", "unit": "in (0, 1)", "simplex": "a probability vector", "spd": "positive definite"}


def _check_latent_support(model, fam, name, e, c, d):
    """A latent read as a whole (``r`` or ``r[n]``) must take values the argument accepts."""
    if c is None or not isinstance(e, (Name, Index)):
        return
    allowed = _allowed_supports(c)
    src = model.nodes.get(head_name(e) or "")
    # A deterministic node that only renames a latent (r[k] = a[k]) has the latent's support.
    for _ in range(_FOLD_DEPTH):
        if src is None or src.kind != "det" or len(src.defs) != 1 or not isinstance(src.defs[0].expr, (Name, Index)):
            break
        src = model.nodes.get(head_name(src.defs[0].expr) or "")
    if allowed is None or src is None:
        return
    if src.kind == "param" and src.type is not None and not src.type.is_network:
        support, source, what = src.type.base, f"declared {src.type.base}", "a param"
        if _depth(e) >= len(src.type.shape) and support in ("simplex", "spd"):  # an entry of its vector or matrix
            if support == "spd":
                return
            support, source = "unit", "an element of a simplex param, in (0, 1)"
    elif src.kind == "latent" and src.defs and src.defs[0].dist is not None:
        sfam = get_family(src.defs[0].dist)
        if not sfam.variational:
            return  # a latent likelihood-only family: the compiler says so at its own line
        support, source, what = sfam.support, f"drawn from {sfam.name}, whose values are {sfam.support}", "a latent"
        if _reads_inside_event(e, src):  # p[0] of a simplex p is in (0, 1); an spd matrix's entry is any real
            if support != "simplex":
                return
            support, source = "unit", f"an element of a {sfam.name} vector, in (0, 1)"
    else:
        return
    if support not in allowed:
        raise VemError(
            "support",
            f"the {fam.args.spelled(name)} of {fam.name} must be {_WORDS[allowed[0]]}, but '{src.name}' is {source}. "
            f"Expected {what} with support {allowed[0]}",
            e.span or d.span,
            (f"declare '{src.name}' as {allowed[0]}" if what == "a param"
             else f"draw '{src.name}' from a distribution with support {allowed[0]}") + ", or transform it "
            f"({'exp' if allowed[0] == 'pos' else 'softmax' if allowed[0] == 'simplex' else 'sigmoid'}({_text(e)}))",
        )


def _reads_inside_event(e, src) -> bool:
    """Whether ``e`` indexes ``src`` past its plates, into one draw's own axes (``p[0]`` of
    ``p ~ Dirichlet(...)``, ``theta[d, v]`` of ``theta[d] ~ Dirichlet(...)``)."""
    return _depth(e) > len(src.defs[0].indices)


def _depth(e) -> int:
    """How many indices ``e`` applies to the name it reads (``x[n][0]``: 2)."""
    n = 0
    while isinstance(e, Index):
        n, e = n + len(e.indices), e.base
    return n


# ---- the pass -------------------------------------------------------------------------------
def check_model(model, sizes: dict | None = None) -> None:
    """Every static check of this module; ``sizes`` are the bound sizes (None at compile time)."""
    known = _Sizes(model, sizes)
    for e, what, minimum in _size_uses(model):
        _check_size(known, e, what, minimum)
    _check_loops(known)
    if sizes is None:
        _check_arguments(model)
    _check_categories(known)
    _check_indices(known)
    check_coverage(model, known)
    # Without data every dim is at least 1: the estimate is then a lower bound of any fit's.
    lower = sizes if sizes is not None else {n.name: 1 for n in model.of_kind("dim")}
    check_memory(model, lower, lower_bound=sizes is None)

