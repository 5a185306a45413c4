"""Binding a model to data: sizes, constants, and data validation.

Each check names the variable, what was expected and what was given (LANGUAGE.md,
"Sizes" and "Data"), in the form "Expected …; got …"; nothing reaches JAX before it
passes.  The order is:

1. explicit ``dims=`` and the constants that need no data-bound size;
2. each data array: dtype, number of dimensions, sizes (a dim is bound by the first array
   that uses it; a later array that disagrees is an error naming both arrays and the dim),
   support and missing entries;
3. dims that neither ``dims=`` nor a data shape binds and that bound ``cat(V)`` arrays, taken
   from the data (the largest value in those arrays plus one);
4. every dim bound and non-zero; the remaining constants; the size checks that waited for
   them; category ranges.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import jax
import numpy as np

from .._jax_setup import TINY
from ..diagnostics import VemError
from ..families import get_family
from ..ir.expr import Call, Name, names, walk
from ..ir.graph import ModelGraph
from ..ir.nodes import TypeSpec
from ..elj.binding import Bound
from ..elj import moments as M
from ..elj.evaluate import const_value, eval_fixed, size_of as _size, typed_fill
from .bind_args import check_given_const_args
from .bind_consts import check_array_consts
from .bind_values import _as_array, _check_axis, _check_support, _e, _fmt_shape, _show, _type, check_categories
from ..data_checks import check_bound, check_size_limit, prepare_data


def bind(model: ModelGraph, data: dict, consts: dict | None = None, dims: dict | None = None,
         mask: dict | None = None, strict: bool = False, fitted: dict | None = None,
         own_ranges: frozenset = frozenset(), fitted_consts: frozenset = frozenset()) -> Bound:
    """``fitted``: sizes a fit fixed (the globals' sizes, for new data in ``predict``); an array
    that disagrees is a ``data`` error saying so, as for two arrays that disagree.
    ``own_ranges``: ``cat`` arrays whose category ranges the caller checks over more rows than
    ``data`` holds (SVI's stream: ``data`` is one batch), with ``Bound.sources``.
    ``fitted_consts``: the names in ``consts`` that a fit fixed rather than the caller gave, said
    so where a message names a value's source."""
    data = _mapping("data", data)
    consts, dims, mask = _mapping("consts", consts), _mapping("dims", dims), _mapping("mask", mask)
    data, mask = prepare_data(model, data, mask)  # np.ma masks, values past int64/float64 (issue #23)
    kinds = {n.name: n.kind for n in model.nodes.values()}
    _check_keys(consts, "consts", "const", kinds)
    _check_keys(dims, "dims", "dim", kinds)

    sizes: dict[str, int] = {}
    given_by: dict[str, str] = {}  # dim -> where its value came from, for messages
    for k, v in dims.items():
        sizes[k] = _whole("dim", k, v, "dims=")
        given_by[k] = f"dims={{'{k}': {sizes[k]}}}"
    for k, v in (fitted or {}).items():
        if k not in sizes:
            sizes[k], given_by[k] = int(v), "the fitted model"
    size_names = _size_names(model)
    values: dict[str, np.ndarray] = {}
    pending = [n for n in model.of_kind("const")]
    pending = _eval_consts(pending, consts, sizes, values, size_names, final=False)

    _warn_undeclared(data, "data", kinds, strict)
    _warn_undeclared(mask, "mask", kinds, strict)
    read = _read_names(model)
    _warn_unused(model, read)
    masks: dict[str, np.ndarray] = {}
    deferred: list[tuple] = []
    for node in model.of_kind("data"):
        t: TypeSpec = node.type
        if node.name not in data:
            raise VemError(
                "data",
                f"the data array '{node.name}' is missing. Expected an array '{node.name}' of type "
                f"{_type(t)}; got none (arrays given: {', '.join(sorted(data)) or 'none'})",
                node.span,
            )
        arr = _as_array(node, data[node.name])
        want = list(t.shape) + ([t.shape[-1]] if t.base == "spd" and t.shape else [])
        if arr.ndim != len(want):
            raise VemError(
                "data",
                f"'{node.name}' has the wrong number of dimensions. Expected {len(want)} "
                f"(shape {_fmt_shape(want)}, type {_type(t)}); got {arr.ndim} (shape {arr.shape})",
                node.span,
            )
        for axis, (e, got) in enumerate(zip(want, arr.shape)):
            if isinstance(e, Name) and kinds.get(e.id) == "dim" and e.id not in sizes:
                sizes[e.id] = got
                given_by[e.id] = f"'{node.name}' axis {axis}"
                continue
            expect = _size(e, sizes, node.name)
            if expect is None:
                deferred.append((node, axis, e, got, arr.shape, want))
            else:
                _check_axis(node, axis, e, got, expect, arr.shape, want, given_by)
        arr, m = _check_support(node, arr, mask.get(node.name), bool(node.defs), node.name in read)
        if m is not None:
            masks[node.name] = m
        values[node.name] = arr

    notes = _cat_bounds(model, sizes, given_by, values)

    for node in model.of_kind("dim"):
        if node.name not in sizes:
            raise VemError(
                "data",
                f"dim '{node.name}' cannot be bound. Expected a data array whose shape uses '{node.name}' "
                f"or an explicit value; got neither",
                node.span,
                f"give it explicitly: fit(..., dims={{'{node.name}': ...}}) or --set {node.name}=...",
            )
        if sizes[node.name] == 0:
            users = [
                f"'{n.name}' {tuple(np.shape(data[n.name]))}"
                for n in model.of_kind("data")
                if any(node.name in {x.id for x in names(e)} for e in n.type.shape)
            ]
            raise VemError(
                "data",
                f"dim '{node.name}' is 0: an empty data plate. Expected {node.name} >= 1; got 0 "
                f"(from {given_by[node.name]}; arrays using it: {', '.join(users) or 'none'})",
                node.span,
            )

    _eval_consts(pending, consts, sizes, values, size_names, final=True)
    check_array_consts(model, consts, sizes, values)  # an array for a const written as a scalar
    for node, axis, e, got, shape, want in deferred:
        expect = _size(e, sizes, node.name)
        if expect is not None:
            _check_axis(node, axis, e, got, expect, shape, want, given_by)

    given_by = {**given_by, **{c: f"the fitted model's const {c}" if c in fitted_consts
                               else f"consts={{'{c}': {sizes[c]}}}" if c in consts else f"the model's const {c}"
                               for c in (n.name for n in model.of_kind("const")) if c in size_names}}
    for node in model.of_kind("data"):  # a category bound says where it came from, a const's too
        if node.type.base == "cat" and node.name not in own_ranges:
            check_categories(node, values[node.name], _size(node.type.bound, sizes, node.name),
                             size_source(node.type.bound, given_by))
    check_bound(model, sizes, values, masks)  # the static pass again with every size known, then memory (issue #23)
    check_given_const_args(model, sizes, values, set(consts))
    _check_proper_priors(model, sizes, values)
    _warn_partial_rows(model, masks)
    return Bound(sizes, values, masks, notes, sources=given_by)


def size_source(e, given_by: dict) -> str:
    """Where a size given by one name came from, for a message: `` from --set`` and the like."""
    return f" from {given_by[e.id]}" if isinstance(e, Name) and e.id in given_by else ""


def category_dims(model: ModelGraph) -> dict[str, list[str]]:
    """The dims the data's categories bind: each dim that bounds ``cat(V)`` data arrays and that
    no data array's shape uses, with those arrays.  One rule for ``bind`` and for the batches of
    SVI (``engine/svi.py``), which guessed V from every ``cat(V)`` array: a const V became a
    ``--set V`` the user never gave, and a V that another array's shape binds a disagreement."""
    kinds = {n.name: n.kind for n in model.nodes.values()}
    shaped = {e.id for n in model.of_kind("data") for e in n.type.shape if isinstance(e, Name)}
    out: dict[str, list[str]] = {}
    for node in model.of_kind("data"):
        b = node.type.bound
        if node.type.base == "cat" and isinstance(b, Name) and kinds.get(b.id) == "dim" and b.id not in shaped:
            out.setdefault(b.id, []).append(node.name)
    return out


def category_note(dim: str, k: int, arrays: list[str]) -> str:
    """What ``Fit.summary`` says of a dim bound by the data's categories."""
    return f"dim {dim} = {k}, taken from {_categories(arrays)}"


def _categories(arrays: list[str]) -> str:
    return f"the largest value in {' and '.join(map(repr, arrays))} plus one"


def _cat_bounds(model: ModelGraph, sizes: dict, given_by: dict, values: dict) -> list[str]:
    """Step 3: a dim of ``category_dims`` not given is the largest value in all of its arrays
    plus one (the first array alone made a later one's larger category an out-of-range error,
    with V from nowhere the user wrote).  Returns the fit's notes saying so."""
    notes = []
    for dim, arrays in category_dims(model).items():
        if dim in sizes:
            continue
        k = max((int(values[n].max()) + 1 for n in arrays if values[n].size), default=0)
        sizes[dim], given_by[dim] = k, _categories(arrays)
        notes.append(category_note(dim, k, arrays))
    return notes


def _check_proper_priors(model: ModelGraph, sizes: dict, values: dict) -> None:
    """A latent's prior whose arguments are all constants must be a proper distribution: its
    natural parameters in the family's domain (``ExpFamily.in_domain``).  Element-wise
    constraints are checked as the model is built (``ir/validate.py``); this catches the
    rest, such as a Wishart's degrees of freedom at or below D − 1, where the log-normaliser
    stays finite and the fit would be meaningless with no error.

    Every prior is checked by one compiled program: run eagerly, each JAX operation of the
    families' maps compiled a program of its own (a GMM's three Wishart priors: 17 programs,
    about 1 s of a cold 10k-point ``vemppl fit`` and 0.25 s of a warm one, issue #21)."""
    checked = []
    for node in model.of_kind("latent"):
        for d in node.defs:
            fam = get_family(d.dist)
            if not fam.variational or not fam.domain_text:
                continue
            try:
                args = {k: np.asarray(eval_fixed(e, sizes, values), dtype=float) for k, e in d.args}
            except (M.NotFixed, M.NoMoment, KeyError):  # reads a latent, data or a loop index
                continue
            checked.append((node, d, fam, args))
    if not checked:
        return
    fams = [fam for _, _, fam, _ in checked]

    def proper(all_args):
        return [fam.in_domain(fam.natural_from_params(**a)) for fam, a in zip(fams, all_args)]

    ok = jax.jit(proper, compiler_options=TINY)([a for *_, a in checked])
    for (node, d, fam, args), good in zip(checked, ok):
        if not bool(good):
            shown = ", ".join(f"{k} = {v.item():g}" if v.ndim == 0 else f"{k} of shape {v.shape}"
                              for k, v in args.items())
            raise VemError(
                "support",
                f"the prior of '{node.name}' is not a proper {fam.name} distribution ({shown}). "
                f"Expected {fam.domain_text}",
                d.dist_span or d.span,
            )


def _warn_partial_rows(model: ModelGraph, masks: dict) -> None:
    """A vector event (an MvNormal row) with some entries missing is dropped whole by the
    factor (elj/evaluate.py): its observed entries are not used, which the user is told."""
    for name, m in masks.items():
        node = model.nodes[name]
        rank = max((get_family(d.dist).event_rank for d in node.defs), default=0)
        if not rank or m.ndim < rank:
            continue
        axes = tuple(range(m.ndim - rank, m.ndim))
        partial = np.any(m, axis=axes) & ~np.all(m, axis=axes)
        if partial.any():
            first = tuple(int(i) for i in np.argwhere(partial)[0])
            warnings.warn(
                f"'{name}' has {int(partial.sum())} row(s) partly missing, the first at index {first}: a "
                f"row of {node.defs[0].dist} is used only when all of it is observed, so the observed entries "
                f"of those rows are ignored (not marginalised)", UserWarning, stacklevel=5)


# ---- arguments -----------------------------------------------------------------------


def _mapping(what, v) -> dict:
    if v is None:
        return {}
    if not isinstance(v, Mapping):
        raise VemError(
            "data", f"{what}= must be a dict from names to values. Expected a mapping; got {type(v).__name__}"
        )
    bad = [k for k in v if not isinstance(k, str)]
    if bad:
        raise VemError("data", f"{what}= keys must be names. Expected str keys; got {bad[0]!r}")
    return dict(v)


def _check_keys(given, arg, kind, kinds):
    for key in given:
        if kinds.get(key) == kind:
            continue
        other = kinds.get(key)
        got = f"'{key}', which is a {other}" if other else f"'{key}', which the model does not declare"
        hint = None
        if other in ("dim", "const"):
            hint = f"pass it as {'dims' if other == 'dim' else 'consts'}={{'{key}': ...}}"
        elif other == "data":
            hint = f"pass it as data={{'{key}': ...}}"
        declared = sorted(n for n, k in kinds.items() if k == kind)
        raise VemError(
            "data",
            f"{arg}= sets '{key}'. Expected the name of a {kind} of the model "
            f"({', '.join(declared) or 'it declares none'}); got {got}",
            None,
            hint,
        )


def _warn_undeclared(given, arg, kinds, strict):
    unknown = sorted(k for k in given if kinds.get(k) != "data")
    if not unknown:
        return
    parts = [f"'{k}'" + (f" (a {kinds[k]}, not data)" if k in kinds else "") for k in unknown]
    declared = sorted(n for n, k in kinds.items() if k == "data")
    msg = (
        f"{arg}= names arrays the model does not declare as data. Expected only "
        f"{', '.join(declared) or 'none'}; got also {', '.join(parts)}, "
        + ("refused (strict=True)" if strict else "which are ignored")
    )
    if strict:
        raise VemError("data", msg)
    warnings.warn(msg, UserWarning, stacklevel=4)


def _whole(kind, name, v, where, minimum=1, span=None) -> int:
    if isinstance(v, (bool, np.bool_)) or (isinstance(v, np.ndarray) and v.dtype == bool):
        # True would pass as the size 1 (and False fail as 0 with a puzzling message).
        raise VemError(
            "data", f"{kind} '{name}' (from {where}) is a size. Expected a whole number >= {minimum}; got the "
            f"boolean {_show(v)}", span, hint=f"give '{name}' a number, e.g. {minimum if minimum > 1 else 3}",
        )
    try:
        a = np.asarray(v)
        ok = a.ndim == 0 and np.issubdtype(a.dtype, np.number) and np.isfinite(a)
        ok = ok and float(a) == int(float(a)) and int(float(a)) >= minimum
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise VemError(
            "data",
            f"{kind} '{name}' (from {where}) is a size. Expected a whole number >= {minimum}; got {_show(v)}",
        )
    return check_size_limit(kind, name, int(float(v)), where)


def _size_names(model) -> set[str]:
    """Names read as a size somewhere: loop bounds, declared shapes, zeros/ones/fill/eye sizes."""
    out: set[str] = set()

    def sized(e):
        if e is None:
            return
        for x in walk(e):
            if isinstance(x, Call) and x.func in ("zeros", "ones", "eye") and x.args:
                out.update(n.id for a in x.args for n in names(a))
            elif isinstance(x, Call) and x.func == "fill" and len(x.args) > 1:
                out.update(n.id for a in x.args[1:] for n in names(a))

    for node in model.nodes.values():
        if node.type is not None:
            out.update(n.id for e in node.type.shape for n in names(e))
            if node.type.bound is not None:
                out.update(n.id for n in names(node.type.bound))
        sized(node.value)
        for d in node.defs:
            for lp in d.loops:
                out.update(n.id for n in names(lp.start) + names(lp.stop))
            for _, a in d.args:
                sized(a)
            sized(d.expr)
    return out


def _warn_unused(model, read) -> None:
    """A data array that no statement draws or reads: its values take no part in the fit, most
    often because the name on the left of a ``~`` is misspelt (``xx[n] ~ ...`` is then a latent)."""
    enc = {n.id for node in model.nodes.values() if node.amortised is not None and node.amortised.expr is not None
           for n in names(node.amortised.expr)}
    for node in model.of_kind("data"):
        if not node.defs and node.name not in read and node.name not in enc:
            where = f"{node.span.file or '<model>'}:{node.span.line}: " if node.span is not None else ""
            warnings.warn(f"{where}data '{node.name}' is declared but no statement draws or reads it, so its values "
                          f"take no part in the fit (a misspelt name on the left of '~' is a latent)", UserWarning,
                          stacklevel=5)


def _read_names(model) -> set[str]:
    """Names read by some expression (as opposed to only being the target of ``~``)."""
    out: set[str] = set()
    for node in model.nodes.values():
        exprs = [node.value] + [a for d in node.defs for _, a in d.args] + [d.expr for d in node.defs]
        exprs += [i for d in node.defs for i in d.indices]
        for e in exprs:
            if e is not None:
                out.update(n.id for n in names(e))
    return out


def _eval_consts(pending, consts, sizes, values, size_names, final):
    """Evaluate the constants that can be; return those that wait for a data-bound size."""

    left = []
    for node in pending:
        if node.name in consts:
            # A scalar given for a typed array const fills its shape, as its definition's scalar does.
            v = typed_fill(node, _const_value(node, consts[node.name]), sizes)
        else:
            try:
                v = const_value(node, sizes, values)
            except KeyError as exc:
                if not final:
                    left.append(node)
                    continue
                raise VemError(
                    "data", f"const '{node.name}' needs the size '{exc.args[0]}', which cannot be bound", node.span
                ) from None
        if node.name in consts and final:
            _check_const_shape(node, v, sizes, values)
        values[node.name] = v
        if node.name in size_names:
            # An override is checked as given (a boolean is not a size, though it converts to 1.0).
            given = consts[node.name] if node.name in consts else v
            sizes[node.name] = _whole("const", node.name, given, "consts=" if node.name in consts else "its definition",
                                      minimum=1, span=node.span)
        elif v.ndim == 0 and np.isfinite(v) and float(v).is_integer():
            sizes[node.name] = int(v)
    if not final:
        # Overridden constants also wait for their shape check until every size is known.
        for node in pending:
            if node.name in consts and node not in left:
                left.append(node)
    return left


def _const_value(node, v) -> np.ndarray:
    try:
        a = np.asarray(v)
        numeric = a.dtype != object and (np.issubdtype(a.dtype, np.number) or a.dtype == bool)
        numeric = numeric and not np.issubdtype(a.dtype, np.complexfloating)
    except (TypeError, ValueError):
        numeric = False
    if not numeric:
        raise VemError(
            "data", f"consts= sets '{node.name}'. Expected a number or a numeric array; got {_show(v)}", node.span
        )
    a = a.astype(float)
    if not np.all(np.isfinite(a)):
        i = tuple(int(j) for j in np.argwhere(~np.isfinite(a))[0])
        raise VemError("data", f"consts= sets '{node.name}'. Expected finite values; got {a[i]} at index {i}", node.span)
    return a


def _check_const_shape(node, v, sizes, values):
    """An override has the declared shape, or that of a non-scalar definition.

    A scalar definition may be overridden by an array (``const alpha = 1.0`` set to a
    vector), and a scalar override broadcasts.
    """

    if node.type is not None and node.type.shape:
        want = [_size(e, sizes, node.name) for e in node.type.shape]
        want += [want[-1]] if node.type.base == "spd" else []
        if None not in want and v.ndim and v.shape != tuple(want):
            raise VemError(
                "data",
                f"consts= sets '{node.name}' with the wrong shape. Expected shape {tuple(want)} "
                f"(type {_type(node.type)}); got {v.shape}",
                node.span,
            )
        return
    try:
        default = np.asarray(eval_fixed(node.value, sizes, values))
    except Exception:  # the definition cannot be evaluated: nothing to compare with
        return
    if v.ndim and default.ndim and v.shape != default.shape:
        raise VemError(
            "data",
            f"consts= sets '{node.name}' with the wrong shape. Expected shape {default.shape} "
            f"(that of {_e(node.value)}); got {v.shape}",
            node.span,
        )


# ---- arrays --------------------------------------------------------------------------
