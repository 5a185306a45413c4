"""Binding a model to data: sizes, constants, and data validation.

Each check names the variable, what was expected and what was given (LANGUAGE.md,
"Sizes" and "Data"); nothing reaches JAX before it passes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from ..diagnostics import VemError
from ..ir.expr import Expr, Name, Num
from ..ir.graph import ModelGraph
from ..ir.nodes import TypeSpec


@dataclass
class Bound:
    sizes: dict[str, int]
    values: dict[str, np.ndarray]  # constants and data
    masks: dict[str, np.ndarray] = field(default_factory=dict)  # True where observed
    notes: list[str] = field(default_factory=list)


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
    from .evaluate import eval_fixed

    consts, dims, mask = dict(consts or {}), dict(dims or {}), dict(mask or {})
    data = dict(data or {})
    declared = {n.name for n in model.nodes.values()}
    for key in list(consts) + list(dims):
        if key not in declared:
            raise VemError("data", f"'{key}' is set but the model declares no dim or const '{key}'")
    sizes: dict[str, int] = {k: int(v) for k, v in dims.items()}
    values: dict[str, np.ndarray] = {}
    notes: list[str] = []
    for node in model.nodes.values():
        if node.kind != "const":
            continue
        if node.name in consts:
            v = np.asarray(consts[node.name], dtype=float)
        else:
            try:
                v = np.asarray(eval_fixed(node.value, sizes, values))
            except KeyError as exc:
                raise VemError(
                    "data", f"const '{node.name}' needs the size '{exc.args[0]}', which is not bound yet", node.span
                ) from None
        values[node.name] = v
        if v.ndim == 0 and float(v).is_integer():
            sizes[node.name] = int(v)

    unknown = sorted(set(data) - declared)
    if unknown:
        msg = f"arrays not declared by the model are ignored: {', '.join(unknown)}"
        if strict:
            raise VemError("data", msg)
        warnings.warn(msg, stacklevel=3)
    masks: dict[str, np.ndarray] = {}
    where: dict[str, str] = {}  # dim -> the array that bound it
    for node in model.of_kind("data"):
        if node.name not in data:
            raise VemError(
                "data",
                f"the data array '{node.name}' is missing; the model declares 'data {node.name}'",
                node.span,
            )
        arr = _as_array(node.name, data[node.name])
        t: TypeSpec = node.type
        want = list(t.shape) + ([t.shape[-1]] if t.base == "spd" and t.shape else [])
        if arr.ndim != len(want):
            raise VemError(
                "data",
                f"'{node.name}' must have {len(want)} dimension(s) {_fmt_shape(want)}; got an array of shape {arr.shape}",
                node.span,
            )
        for axis, (e, got) in enumerate(zip(want, arr.shape)):
            if isinstance(e, Name) and e.id not in sizes:
                sizes[e.id] = got
                where[e.id] = node.name
                continue
            expect = _size(e, sizes, node.name)
            if expect is not None and expect != got:
                src = f" (bound by '{where[e.id]}')" if isinstance(e, Name) and e.id in where else ""
                raise VemError(
                    "data",
                    f"'{node.name}' axis {axis} should have size {_e(e)} = {expect}{src}; got {got}",
                    node.span,
                )
        arr, m = _check_support(node, arr, mask.get(node.name), bool(node.defs))
        if m is not None:
            masks[node.name] = m
        values[node.name] = arr
    for node in model.of_kind("data"):
        t = node.type
        if t.base == "cat" and isinstance(t.bound, Name) and t.bound.id not in sizes:
            k = int(values[node.name].max()) + 1 if values[node.name].size else 0
            sizes[t.bound.id] = k
            notes.append(f"dim {t.bound.id} = {k}, taken from the largest value in '{node.name}' plus one")
        if t.base == "cat":
            k = _size(t.bound, sizes, node.name)
            arr = values[node.name]
            if arr.size and (arr.min() < 0 or arr.max() >= k):
                bad = np.argwhere((arr < 0) | (arr >= k))[0]
                raise VemError(
                    "data",
                    f"'{node.name}' must hold categories in 0..{k - 1} (cat({_e(t.bound)})); "
                    f"index {tuple(int(i) for i in bad)} has {arr[tuple(bad)]}",
                    node.span,
                )
    for node in model.of_kind("dim"):
        if node.name not in sizes:
            raise VemError(
                "data",
                f"dim '{node.name}' cannot be bound: no data array uses it; give it explicitly "
                f"(dims={{'{node.name}': ...}} or --set {node.name}=...)",
                node.span,
            )
        if sizes[node.name] == 0:
            users = [n.name for n in model.of_kind("data") if any(isinstance(e, Name) and e.id == node.name for e in n.type.shape)]
            raise VemError("data", f"dim '{node.name}' is 0 (arrays {', '.join(users) or '-'} are empty)", node.span)
    return Bound(sizes, values, masks, notes)


def _e(e) -> str:
    from ..frontends.printer import expr_to_text

    return expr_to_text(e)


def _fmt_shape(want) -> str:
    return "[" + ", ".join(_e(e) for e in want) + "]"


def _as_array(name, v) -> np.ndarray:
    try:
        arr = np.asarray(v)
    except Exception as exc:
        raise VemError("data", f"'{name}' is not an array: {exc}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise VemError("data", f"'{name}' must be numeric; got an array of dtype {arr.dtype}")
    return arr


def _check_support(node, arr, user_mask, observed_by_tilde):
    t = node.type
    base = t.base
    m = None
    nan = np.isnan(arr) if np.issubdtype(arr.dtype, np.floating) else np.zeros(arr.shape, bool)
    if user_mask is not None:
        user_mask = np.asarray(user_mask, bool)
        if user_mask.shape != arr.shape:
            raise VemError("data", f"the mask of '{node.name}' has shape {user_mask.shape}; the array has {arr.shape}")
    if nan.any() or user_mask is not None:
        if base not in ("real", "pos", "unit") or not observed_by_tilde:
            first = tuple(int(i) for i in np.argwhere(nan)[0]) if nan.any() else None
            why = "it is used only as a covariate" if observed_by_tilde is False and base in ("real", "pos", "unit") else f"its type is {base}"
            raise VemError(
                "data",
                f"'{node.name}' has a missing value (NaN) at index {first}, which is not allowed because {why}",
                node.span,
            )
        m = ~nan if user_mask is None else (user_mask & ~nan)
        arr = np.where(m, arr, 0.0 if base == "real" else 0.5)
    if base in ("int", "count", "bool", "cat"):
        if np.issubdtype(arr.dtype, np.floating):
            frac = arr != np.round(arr)
            if frac.any():
                i = tuple(int(j) for j in np.argwhere(frac)[0])
                raise VemError(
                    "data", f"'{node.name}' must hold whole numbers ({base}); index {i} has {arr[i]}", node.span
                )
        arr = arr.astype(np.int64)
        if base in ("count", "cat") and (arr < 0).any():
            i = tuple(int(j) for j in np.argwhere(arr < 0)[0])
            raise VemError(
                "data", f"'{node.name}' must be non-negative ({base}); index {i} has {arr[i]}", node.span
            )
        if base == "bool" and ((arr < 0) | (arr > 1)).any():
            i = tuple(int(j) for j in np.argwhere((arr < 0) | (arr > 1))[0])
            raise VemError("data", f"'{node.name}' must hold 0 or 1 (bool); index {i} has {arr[i]}", node.span)
    else:
        arr = arr.astype(np.float64)
        check = np.ones(arr.shape, bool) if m is None else m
        if base == "pos" and (arr[check] <= 0).any():
            i = tuple(int(j) for j in np.argwhere(check & (arr <= 0))[0])
            raise VemError("data", f"'{node.name}' must be positive (pos); index {i} has {arr[i]}", node.span)
        if base == "unit" and ((arr[check] <= 0) | (arr[check] >= 1)).any():
            i = tuple(int(j) for j in np.argwhere(check & ((arr <= 0) | (arr >= 1)))[0])
            raise VemError("data", f"'{node.name}' must lie in (0, 1) (unit); index {i} has {arr[i]}", node.span)
        if base == "real" and np.isinf(arr).any():
            i = tuple(int(j) for j in np.argwhere(np.isinf(arr))[0])
            raise VemError("data", f"'{node.name}' must be finite; index {i} has {arr[i]}", node.span)
    return arr, m
