"""One array's checks while binding: its shape axis by axis, its dtype and its support,
each failure a message that names the variable, what was expected and what was given
("Expected …; got …", LANGUAGE.md "Data").  Called by ``bind.py``."""

from __future__ import annotations

import numpy as np

from ..diagnostics import VemError
from ..ir.expr import Name
from ..ir.nodes import TypeSpec
from ..ir.text import expr_to_text, type_to_text

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



def _e(e) -> str:

    return expr_to_text(e)


def _type(t: TypeSpec) -> str:

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


def _shift(i: tuple, offset: int) -> tuple:
    """An index ``i`` of a chunk as an index of the whole array, ``offset`` rows on."""
    return (i[0] + offset,) + tuple(i[1:]) if offset and i else i


def _support_error(node, arr, bad, expected=None, offset=0):
    i = _first(bad)
    t = node.type
    raise VemError(
        "data",
        f"'{node.name}' has a value outside its support. Expected {expected or _support(t)} "
        f"(type {_type(t)}); got {arr[i]} at index {_shift(i, offset)}",
        node.span,
    )


def _check_support(node, arr, user_mask, observed_by_tilde, read_elsewhere, offset=0):
    """``arr`` checked against its type's support; ``offset``: the rows before ``arr`` (a chunk of a
    streamed array), added to the index an error names."""
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
                f"'{node.name}' has a missing value at index {_shift(i, offset)}: {why}. Expected {_support(t)} "
                f"everywhere; got {got} at index {_shift(i, offset)}",
                node.span,
            )
        m = ~missing
        arr = np.where(m, arr, 0.0 if base == "real" else 0.5)
    if base in ("int", "count", "bool", "cat"):
        if np.issubdtype(arr.dtype, np.floating):
            if not np.isfinite(arr).all():
                _support_error(node, arr, ~np.isfinite(arr), _support(t), offset=offset)
            frac = arr != np.round(arr)
            if frac.any():
                _support_error(node, arr, frac, _support(t), offset=offset)
        if base == "bool" and ((arr < 0) | (arr > 1)).any():
            _support_error(node, arr, (arr < 0) | (arr > 1), offset=offset)
        if base == "count" and (arr < 0).any():
            _support_error(node, arr, arr < 0, offset=offset)
        arr = arr.astype(np.int64)  # cat ranges are checked once the bound is known
    else:
        arr = arr.astype(np.float64)
        check = np.ones(arr.shape, bool) if m is None else m
        if np.isinf(arr).any():
            _support_error(node, arr, np.isinf(arr), "finite values", offset=offset)
        if base == "pos" and (check & (arr <= 0)).any():
            _support_error(node, arr, check & (arr <= 0), offset=offset)
        if base == "unit" and (check & ((arr <= 0) | (arr >= 1))).any():
            _support_error(node, arr, check & ((arr <= 0) | (arr >= 1)), offset=offset)
        if base == "simplex" and arr.size:
            if (arr < 0).any():
                _support_error(node, arr, arr < 0, offset=offset)
            sums = arr.sum(-1)
            off = np.abs(sums - 1.0) > 1e-6
            if off.any():
                i = _first(off)
                raise VemError(
                    "data",
                    f"'{node.name}' has a row that does not sum to 1. Expected {_SUPPORT['simplex']} "
                    f"(type {_type(t)}); got a sum of {sums[i]} at index {_shift(i, offset)}",
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
                        f"got one at index {_shift(i, offset)}",
                        node.span,
                    )
    return arr, m


def check_categories(node, arr, k, source: str = "", offset: int = 0) -> None:
    """A ``cat(K)`` array's values lie in ``0..K-1``; else a located ``data`` error naming the
    first value outside, its index (``offset`` rows on: a chunk of a streamed array), ``K`` and
    where ``K`` came from (``source``: `` from --set V=4``, `` from consts={'V': 3}``)."""
    if k is None or not arr.size or (arr.min() >= 0 and arr.max() < k):
        return
    bad = tuple(int(i) for i in np.argwhere((arr < 0) | (arr >= k))[0])
    raise VemError(
        "data",
        f"'{node.name}' has a category out of range. Expected categories in 0..{k - 1} "
        f"(type {_type(node.type)}, {_e(node.type.bound)} = {k}{source}); got {arr[bad]} at index "
        f"{(bad[0] + offset,) + bad[1:]}",
        node.span,
    )

