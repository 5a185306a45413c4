"""Binding a model to data: sizes, constants, and data validation.

Each check names the variable, what was expected and what was given (LANGUAGE.md,
"Sizes" and "Data"), in the form "Expected …; got …"; nothing reaches JAX before it
passes.  The order is:

1. explicit ``dims=`` and the constants that need no data-bound size;
2. each data array: dtype, number of dimensions, sizes (a dim is bound by the first array
   that uses it; a later array that disagrees is an error naming both arrays and the dim),
   support and missing entries;
3. dims used only as the bound of a ``cat(V)`` array, taken from the data;
4. every dim bound and non-zero; the remaining constants; the size checks that waited for
   them; category ranges.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ..diagnostics import VemError
from ..ir.expr import Call, Expr, Name, Num, names, walk
from ..ir.graph import ModelGraph
from ..ir.nodes import TypeSpec
from ..data_checks import check_bound, check_size_limit, prepare_data


@dataclass
class Bound:
    sizes: dict[str, int]
    values: dict[str, np.ndarray]  # constants and data
    masks: dict[str, np.ndarray] = field(default_factory=dict)  # True where observed
    notes: list[str] = field(default_factory=list)


#: The support of each base type, in words, for messages.
_SUPPORT = {
    "real": "finite real numbers",
    "pos": "positive numbers",
    "unit": "numbers in (0, 1)",
    "int": "whole numbers",
    "count": "whole numbers >= 0",
    "bool": "0 or 1",
    "simplex": "non-negative vectors summing to 1 along the last axis",
    "spd": "symmetric positive-definite matrices",
}
_MISSING_OK = ("real", "pos", "unit")


def _size(e: Expr, sizes, what) -> int | None:
    if isinstance(e, Num):
        return int(e.value)
    if isinstance(e, Name):
        return sizes.get(e.id)
    from .evaluate import eval_fixed

    try:
        v = np.asarray(eval_fixed(e, sizes, {}))
    except KeyError:
        return None
    return int(v)


def bind(model: ModelGraph, data: dict, consts: dict | None = None, dims: dict | None = None,
         mask: dict | None = None, strict: bool = False) -> Bound:
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
    size_names = _size_names(model)
    values: dict[str, np.ndarray] = {}
    pending = [n for n in model.of_kind("const")]
    pending = _eval_consts(pending, consts, sizes, values, size_names, final=False)

    _warn_undeclared(data, "data", kinds, strict)
    _warn_undeclared(mask, "mask", kinds, strict)
    read = _read_names(model)
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

    notes: list[str] = []
    for node in model.of_kind("data"):
        t = node.type
        if t.base == "cat" and isinstance(t.bound, Name) and kinds.get(t.bound.id) == "dim" and t.bound.id not in sizes:
            k = int(values[node.name].max()) + 1 if values[node.name].size else 0
            sizes[t.bound.id] = k
            given_by[t.bound.id] = f"the largest value in '{node.name}' plus one"
            notes.append(f"dim {t.bound.id} = {k}, taken from the largest value in '{node.name}' plus one")

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
    for node, axis, e, got, shape, want in deferred:
        expect = _size(e, sizes, node.name)
        if expect is not None:
            _check_axis(node, axis, e, got, expect, shape, want, given_by)

    for node in model.of_kind("data"):
        t = node.type
        if t.base != "cat":
            continue
        k = _size(t.bound, sizes, node.name)
        arr = values[node.name]
        if k is not None and arr.size and (arr.min() < 0 or arr.max() >= k):
            bad = tuple(int(i) for i in np.argwhere((arr < 0) | (arr >= k))[0])
            raise VemError(
                "data",
                f"'{node.name}' has a category out of range. Expected categories in 0..{k - 1} "
                f"(type {_type(t)}, {_e(t.bound)} = {k}); got {arr[bad]} at index {bad}",
                node.span,
            )
    check_bound(model, sizes, values)  # the static pass again with every size known, then memory (issue #23)
    return Bound(sizes, values, masks, notes)


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


def _whole(kind, name, v, where, minimum=1) -> int:
    try:
        a = np.asarray(v)
        ok = a.ndim == 0 and (np.issubdtype(a.dtype, np.number) or a.dtype == bool) and np.isfinite(a)
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
    from .evaluate import eval_fixed

    left = []
    for node in pending:
        if node.name in consts:
            v = _const_value(node, consts[node.name])
        else:
            try:
                v = np.asarray(eval_fixed(node.value, sizes, values))
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
            sizes[node.name] = _whole("const", node.name, v, "consts=" if node.name in consts else "its definition",
                                      minimum=1)
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
        raise VemError(
            "data", f"consts= sets '{node.name}'. Expected finite values; got {a[i]} at index {i}", node.span
        )
    return a


def _check_const_shape(node, v, sizes, values):
    """An override has the declared shape, or that of a non-scalar definition.

    A scalar definition may be overridden by an array (``const alpha = 1.0`` set to a
    vector), and a scalar override broadcasts.
    """
    from .evaluate import eval_fixed

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


def _e(e) -> str:
    from ..frontends.printer import expr_to_text

    return expr_to_text(e)


def _type(t: TypeSpec) -> str:
    from ..frontends.printer import type_to_text

    return type_to_text(t)


def _fmt_shape(want) -> str:
    return "[" + ", ".join(_e(e) for e in want) + "]"


def _check_axis(node, axis, e, got, expect, shape, want, given_by):
    if expect == got:
        return
    name = e.id if isinstance(e, Name) else None
    if name in given_by:
        src = f"{name} = {expect} from {given_by[name]}"
        raise VemError(
            "data",
            f"'{node.name}' disagrees about dim {name}: {src}, but '{node.name}' axis {axis} has size {got}. "
            f"Expected '{node.name}' of shape {_fmt_shape(want)} to have size {expect} on axis {axis}; "
            f"got shape {shape}",
            node.span,
        )
    raise VemError(
        "data",
        f"'{node.name}' axis {axis} has the wrong size. Expected {_e(e)} = {expect} "
        f"(shape {_fmt_shape(want)}); got {got} (shape {shape})",
        node.span,
    )


def _as_array(node, v) -> np.ndarray:
    what = f"'{node.name}' ({_type(node.type)})"
    try:
        arr = np.asarray(v)
    except Exception as exc:  # ragged lists and the like
        raise VemError(
            "data", f"{what} is not an array. Expected a rectangular numeric array; got {type(v).__name__} ({exc})",
            node.span,
        ) from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        kind = "strings" if arr.dtype.kind in "US" else "objects" if arr.dtype == object else str(arr.dtype)
        raise VemError(
            "data", f"{what} must be numeric. Expected numbers; got an array of dtype {arr.dtype} ({kind})",
            node.span,
        )
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise VemError("data", f"{what} must be real. Expected real numbers; got complex values", node.span)
    return arr


def _show(v) -> str:
    try:
        a = np.asarray(v)
        if a.ndim == 0 and a.dtype != object and a.dtype.kind in "biuf":
            return repr(a.item())
    except Exception:
        pass
    return f"{v!r:.60}"


def _support(t: TypeSpec) -> str:
    if t.base == "cat":
        return f"whole-number categories 0..{_e(t.bound)}-1"
    return _SUPPORT[t.base]


def _first(bad) -> tuple[int, ...]:
    return tuple(int(j) for j in np.argwhere(bad)[0])


def _support_error(node, arr, bad, expected=None):
    i = _first(bad)
    t = node.type
    raise VemError(
        "data",
        f"'{node.name}' has a value outside its support. Expected {expected or _support(t)} "
        f"(type {_type(t)}); got {arr[i]} at index {i}",
        node.span,
    )


def _check_support(node, arr, user_mask, observed_by_tilde, read_elsewhere):
    t = node.type
    base = t.base
    m = None
    nan = np.isnan(arr) if np.issubdtype(arr.dtype, np.floating) else np.zeros(arr.shape, bool)
    if user_mask is not None:
        user_mask = np.asarray(user_mask)
        if user_mask.dtype != bool and not (
            np.issubdtype(user_mask.dtype, np.number) and np.isin(user_mask, (0, 1)).all()
        ):
            raise VemError(
                "data", f"the mask of '{node.name}' must be boolean. Expected True/False (or 0/1); "
                f"got an array of dtype {user_mask.dtype}", node.span,
            )
        user_mask = user_mask.astype(bool)
        if user_mask.shape != arr.shape:
            raise VemError(
                "data",
                f"the mask of '{node.name}' has the wrong shape. Expected {arr.shape} (the shape of "
                f"'{node.name}'); got {user_mask.shape}",
                node.span,
            )
    missing = nan if user_mask is None else (nan | ~user_mask)
    if missing.any():
        i = _first(missing)
        got = "NaN" if nan[i] else "an entry masked out by mask="
        if base not in _MISSING_OK:
            why = f"type {_type(t)} does not allow missing entries (only real, pos and unit arrays on the left of '~' do)"
        elif not observed_by_tilde:
            why = f"'{node.name}' is used only as a covariate, so a missing entry cannot be marginalised"
        elif read_elsewhere:
            why = f"'{node.name}' is also read as a covariate, so a missing entry cannot be marginalised"
        else:
            why = None
        if why:
            raise VemError(
                "data",
                f"'{node.name}' has a missing value at index {i}: {why}. Expected {_support(t)} "
                f"everywhere; got {got} at index {i}",
                node.span,
            )
        m = ~missing
        arr = np.where(m, arr, 0.0 if base == "real" else 0.5)
    if base in ("int", "count", "bool", "cat"):
        if np.issubdtype(arr.dtype, np.floating):
            if not np.isfinite(arr).all():
                _support_error(node, arr, ~np.isfinite(arr), _support(t))
            frac = arr != np.round(arr)
            if frac.any():
                _support_error(node, arr, frac, _support(t))
        if base == "bool" and ((arr < 0) | (arr > 1)).any():
            _support_error(node, arr, (arr < 0) | (arr > 1))
        if base == "count" and (arr < 0).any():
            _support_error(node, arr, arr < 0)
        arr = arr.astype(np.int64)  # cat ranges are checked once the bound is known
    else:
        arr = arr.astype(np.float64)
        check = np.ones(arr.shape, bool) if m is None else m
        if np.isinf(arr).any():
            _support_error(node, arr, np.isinf(arr), "finite values")
        if base == "pos" and (check & (arr <= 0)).any():
            _support_error(node, arr, check & (arr <= 0))
        if base == "unit" and (check & ((arr <= 0) | (arr >= 1))).any():
            _support_error(node, arr, check & ((arr <= 0) | (arr >= 1)))
        if base == "simplex" and arr.size:
            if (arr < 0).any():
                _support_error(node, arr, arr < 0)
            sums = arr.sum(-1)
            off = np.abs(sums - 1.0) > 1e-6
            if off.any():
                i = _first(off)
                raise VemError(
                    "data",
                    f"'{node.name}' has a row that does not sum to 1. Expected {_SUPPORT['simplex']} "
                    f"(type {_type(t)}); got a sum of {sums[i]} at index {i}",
                    node.span,
                )
        if base == "spd" and arr.size:
            asym = np.abs(arr - np.swapaxes(arr, -1, -2)).max(axis=(-1, -2)) > 1e-8 * (1 + np.abs(arr).max())
            eig_ok = np.ones(arr.shape[:-2], bool)
            for idx in np.ndindex(*arr.shape[:-2]):
                eig_ok[idx] = np.linalg.eigvalsh(arr[idx]).min() > 0 if not asym[idx] else True
            for bad, what in ((asym, "a matrix that is not symmetric"), (~eig_ok, "a matrix that is not positive definite")):
                if bad.any():
                    i = _first(bad)
                    raise VemError(
                        "data",
                        f"'{node.name}' has {what}. Expected {_SUPPORT['spd']} (type {_type(t)}); "
                        f"got one at index {i}",
                        node.span,
                    )
    return arr, m
