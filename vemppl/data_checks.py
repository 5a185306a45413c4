"""Checks of bound sizes and data beyond their declared types (issue #23).

Called by :func:`vemppl.engine.bind.bind` (one line each):

* :func:`prepare_data` first: a ``numpy.ma`` masked array counts as its values with its
  mask (masked entries missing, combined with any ``mask=``), and values that cannot be
  held without loss (integers past int64, a float array for a whole-number type past
  ±2**63, extended-precision floats past float64) are refused naming the variable and the
  index, never wrapped around or turned into ``inf``; so are real values whose square
  overflows float64;
* :func:`check_size_limit` on every size a dim or const is given;
* :func:`check_bound` once every size and array is bound: the static size pass with the
  sizes known, then the supports that depend on an argument, for every family that has
  a ``total_count``: a count vector (event rank 1, Multinomial) sums to the total on every
  row, a count (event rank 0, Binomial) is at most the total; every index read from data
  (``mu[g[n]]`` with ``g`` a ``count`` array, ``mu[g[n] + 1]``) lies inside the axis it
  indexes, which JAX's gather would otherwise clamp silently; and a warning where the
  data's scale is far from a prior's (:mod:`vemppl.data_scale`).

Layering: imports the IR and families only, never the engine or the compiler.
"""

from __future__ import annotations

import numpy as np

from .diagnostics import VemError
from .families import get_family
from .data_scale import warn_if_scale_far
from .elj.evaluate import _Context
from .ir import shapes as S
from .ir.expr import Index, Name, names, walk
from .ir.gate_ranges import enumerated
from .ir.sizes import _Sizes
from .ir.text import expr_to_text
from .ir.sizes import MAX_SIZE, check_model

_INT64_MAX = np.iinfo(np.int64).max
_SQRT_MAX = float(np.sqrt(np.finfo(np.float64).max))
_WHOLE = ("int", "count", "bool", "cat")


def check_size_limit(kind: str, name: str, v: int, where: str) -> int:
    """A size above :data:`~vemppl.ir.sizes.MAX_SIZE` is refused before anything is allocated."""
    if v > MAX_SIZE:
        raise VemError(
            "data",
            f"{kind} '{name}' (from {where}) is a size. Expected at most {MAX_SIZE} (2**31 - 1); got {v}",
            hint=f"a size is the number of entries along one axis; --set {name}=... with a smaller number",
        )
    return v


def _first(bad) -> tuple[int, ...]:
    return tuple(int(j) for j in np.argwhere(bad)[0])


def prepare_data(model, data: dict, mask: dict) -> tuple[dict, dict]:
    """``(data, mask)`` with masked arrays split and every value checked to fit its dtype."""
    data, mask = dict(data), dict(mask)
    for node in model.of_kind("data"):
        v = data.get(node.name)
        if isinstance(v, np.ma.MaskedArray):
            observed = ~np.ma.getmaskarray(v)
            filled = v.filled(np.nan) if np.issubdtype(v.dtype, np.floating) else v.filled(0)
            if node.name in mask:
                observed = observed & np.asarray(mask[node.name]).astype(bool)
            data[node.name], mask[node.name] = np.asarray(filled), observed
            v = data[node.name]
        if isinstance(v, np.ndarray):
            _check_range(node, v)
    return data, mask


def _check_range(node, arr: np.ndarray):
    what = f"'{node.name}'"
    base = node.type.base
    if arr.dtype.kind == "u" and arr.size and arr.max() > _INT64_MAX:
        bad = arr > _INT64_MAX
        raise VemError(
            "data",
            f"{what} has a value beyond the 64-bit integer range. Expected integers up to {_INT64_MAX}; "
            f"got {arr[_first(bad)]} at index {_first(bad)}",
            node.span,
        )
    if arr.dtype.kind == "f" and arr.size:
        finite = np.isfinite(arr)
        if arr.dtype.itemsize > 8:
            big = finite & (np.abs(arr) > np.finfo(np.float64).max)
            if big.any():
                raise VemError(
                    "data",
                    f"{what} has a value beyond the float64 range. Expected magnitudes up to "
                    f"{np.finfo(np.float64).max:.4g}; got {arr[_first(big)]} at index {_first(big)}",
                    node.span,
                )
        if base not in _WHOLE:
            # Every likelihood reads E[x²] (or x xᵀ): a value whose square overflows float64
            # (|x| > 1.34e154) becomes inf inside the fit; k-means++ fails on it first.
            huge = finite & (np.abs(arr.astype(np.float64, copy=False)) > _SQRT_MAX)
            if huge.any():
                raise VemError(
                    "data",
                    f"{what} has a value whose square overflows float64. Expected magnitudes below "
                    f"{_SQRT_MAX:.3g}; got {arr[_first(huge)]:g} at index {_first(huge)}",
                    node.span,
                    f"rescale '{node.name}' (divide it by a constant) and the priors with it",
                )
        if base in _WHOLE:
            big = finite & (np.abs(arr) >= 2.0**63)
            if big.any():
                raise VemError(
                    "data",
                    f"{what} has a value beyond the 64-bit integer range (type {base}). Expected whole numbers "
                    f"of magnitude below 2**63; got {arr[_first(big)]:g} at index {_first(big)}",
                    node.span,
                )


def check_bound(model, sizes: dict, values: dict | None = None, masks: dict | None = None) -> None:
    """The static size pass with every size known, then the totals of count data; ``masks``
    (True where observed) keep missing entries' placeholders out of the scale check."""
    check_model(model, sizes)
    if values is not None:
        _check_totals(model, sizes, values)
        _check_open_simplex(model, values)
        _check_data_indices(model, sizes, values)
        warn_if_scale_far(model, sizes, values, masks)


def _check_totals(model, sizes, values):
    known = _Sizes(model, sizes)
    for node in model.of_kind("data"):
        arr = values.get(node.name)
        if arr is None or not np.size(arr):
            continue
        for d in node.defs:
            fam = get_family(d.dist)
            if "total_count" not in fam.args.names:
                continue
            e = d.arg("total_count")
            total = known.value(e) if e is not None else float(fam.args.defaults.get("total_count", np.nan))
            if total is None:  # a total read from data (n[i]): compared on the statement's loop grid
                _check_data_totals(model, node, d, fam, e, sizes, values)
                continue
            if not np.isfinite(total):
                continue
            text = expr_to_text(e) if e is not None else f"{total:g} (the default)"
            a = np.asarray(arr)
            if fam.event_rank == 1 and a.ndim >= 1:
                sums = a.sum(axis=-1)  # the event is the last axis: one sum per row
                bad = np.atleast_1d(sums != total)
                if bad.any():
                    i = _first(bad)
                    raise VemError(
                        "data",
                        f"'{node.name}' has a row whose counts do not sum to the total of {fam.name}. Expected "
                        f"rows summing to total_count = {text}; got a sum of {np.atleast_1d(sums)[i]} at "
                        f"index {i}",
                        d.dist_span or d.span,
                    )
            elif fam.event_rank == 0:
                over = np.atleast_1d(a > total)
                if over.any():
                    i = _first(over)
                    raise VemError(
                        "data",
                        f"'{node.name}' has a count above the total of {fam.name}. Expected counts from 0 to "
                        f"total_count = {text}; got {np.atleast_1d(a)[i]} at index {i}",
                        d.dist_span or d.span,
                    )


def _check_open_simplex(model, values):
    """A vector drawn from a family on the simplex (a Dirichlet) has a finite log density only
    inside it: an entry of 0, which the `simplex` type allows (a Multinomial's probabilities),
    makes E[(α_k − 1) log x_k] infinite or NaN, so it is named here rather than as a NaN ELBO."""
    for node in model.of_kind("data"):
        arr = values.get(node.name)
        if arr is None or not np.size(arr):
            continue
        for d in node.defs:
            if get_family(d.dist).support != "simplex":
                continue
            bad = np.asarray(arr) <= 0
            if bad.any():
                i = _first(bad)
                raise VemError(
                    "data",
                    f"'{node.name}' has an entry 0 where {get_family(d.dist).name} draws it. Expected every entry "
                    f"> 0 (its log density is finite only inside the simplex); got {np.asarray(arr)[i]} at index {i}",
                    d.dist_span or d.span,
                    hint="give the rows a small floor and renormalise them, or model the counts behind them with a "
                         "Multinomial",
                )


def _check_data_totals(model, node, d, fam, e, sizes, values):
    """The totals of ``node``'s statement ``d`` read from data (``k[i] ~ Binomial(n[i], p)``,
    ``cnt[i] ~ Multinomial(n[i], w)``), each value against its own total, element by element of
    the statement's loops; a total that reads a latent or a param is not known before the fit."""
    loop_vars = {lp.var for lp in d.loops}
    if not {n.id for n in names(e)} <= set(values) | set(sizes) | loop_vars:
        return
    ctx = _Context(model, d.loops, (), sizes, values, {}, {}, None)
    target = Index(Name(node.name), d.indices) if d.indices else Name(node.name)
    a, total = np.asarray(ctx.ev(target).value), np.asarray(ctx.ev(e).value, dtype=float)
    got = a.sum(axis=-1) if fam.event_rank == 1 else a
    # The total is itself a count wherever it comes from (a constant's is checked statically): a
    # `real` array may hold 25.5, at which the family's log density is no distribution's.
    whole = np.broadcast_to(total, np.shape(got))
    frac = np.atleast_1d(~((whole >= 0) & (whole == np.floor(whole))))
    if frac.any():
        at = _first(frac)
        where = ", ".join(f"{v} = {start + i}" for (v, start, _), i in zip(ctx.loops, at)) or "its only element"
        raise VemError("data", f"the total_count of {fam.name} must be a non-negative integer; {expr_to_text(e)} = "
                       f"{np.atleast_1d(whole)[at]:g} at {where}", e.span or d.dist_span or d.span,
                       hint="declare the totals `count` (whole numbers >= 0)")
    bad = np.atleast_1d(got != total if fam.event_rank == 1 else got > total)
    if not bad.any():
        return
    at = _first(bad)
    where = ", ".join(f"{v} = {start + i}" for (v, start, _), i in zip(ctx.loops, at)) or "its only element"
    shown = f"total_count = {expr_to_text(e)} = {np.broadcast_to(total, bad.shape)[at]:g}"
    what = (f"a row whose counts do not sum to the total of {fam.name}. Expected rows summing to {shown}; got a sum of "
            if fam.event_rank == 1 else f"a count above the total of {fam.name}. Expected counts from 0 to {shown}; got ")
    raise VemError("data", f"'{node.name}' has {what}{np.broadcast_to(got, bad.shape)[at]:g} at {where}",
                   d.dist_span or d.span)


def _check_data_indices(model, sizes, values):
    """Every index that reads data (and only data, sizes, constants and loop variables) takes
    whole values inside the axis it indexes, element by element of its statement's loops: a
    value past the axis was read by JAX's clamped gather as the last element (below 0, wrapped),
    silently (``mu[g[n] + 1]`` with ``g`` in 0..G-1, or a ``count`` array past G)."""
    known = _Sizes(model, sizes)
    for node in model.nodes.values():
        for d in node.defs:
            loop_vars = {lp.var for lp in d.loops}
            for root in [e for _, e in d.args] + ([d.expr] if d.expr is not None else []):
                for sub in walk(root):
                    if isinstance(sub, Index):
                        _check_index_values(model, known, d, sub, loop_vars, sizes, values)


def _gated(known, ix, values):
    """``(gates, combos, ix at each combo)`` where ``ix`` reads categorical latents beside data
    (``z[n] + g[n]``, ``side[s1, t] + side[s2, t]``): its values are checked at every combination
    of their categories, as the factor enumerates them (``ir/gate_ranges.py::enumerated``);
    ``((), [()], [ix])`` where it reads none."""
    found = enumerated(known, ix) if any(n.id in values for n in names(ix)) else None
    return found if found is not None else ((), [()], [ix])


def _check_index_values(model, known, d, sub, loop_vars, sizes, values):
    allowed = set(values) | set(sizes) | loop_vars
    gated = {ix: _gated(known, ix, values) for ix in sub.indices}
    read = [ix for ix in sub.indices if any(n.id in values for n in names(ix))
            and {n.id for n in names(ix)} - {n.id for g in gated[ix][0] for n in names(g)} <= allowed]
    if not read:
        return
    try:
        axes = S.infer(sub.base, {**model.shapes}, tuple(lp.var for lp in d.loops))
    except (VemError, KeyError):
        return
    ctx = _Context(model, d.loops, (), sizes, values, {}, {}, None)
    for axis, ix in enumerate(sub.indices):
        size = known.size(axes[axis]) if ix in read and axis < len(axes) else None
        if size is None:
            continue
        gates, combos, at_cats = gated[ix]
        vs = [np.atleast_1d(np.asarray(ctx.ev(e).value, dtype=float)) for e in at_cats]
        bads = [~((v >= 0) & (v < size) & (v == np.floor(v))) for v in vs]
        c = next((c for c, b in enumerate(bads) if b.any()), 0)
        v, bad = vs[c], bads[c]
        if bad.any():
            at = _first(bad)
            where = ", ".join(f"{lv} = {start + i}" for (lv, start, _), i in zip(ctx.loops, at)) or "its only element"
            raise VemError(
                "data", f"index {expr_to_text(ix)} of '{expr_to_text(sub.base)}' is outside axis {axis}, of size "
                f"{axes[axis]}{'' if axes[axis] == size else f' = {size}'}. Expected whole numbers from 0 to {size - 1}; "
                f"got {v[at]:g} at {where}" + ("" if not gates else " where " + ", ".join(f"{expr_to_text(g)} = {i}" for g, i in zip(gates, combos[c]))),
                ix.span or d.span,
                hint="declare an index array cat(K) with K the axis' size, so its values are checked where it is declared"
                if isinstance(ix, (Index, Name)) else None,
            )
