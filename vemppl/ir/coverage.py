"""Every element of a latent defined piecewise is defined (issue #23).

A latent's array spans the extent that covers all of its statements
(``elj.plates.plate_shape``: along each axis the largest stop).  An element that no
statement writes (``x[0]`` and ``x[2]`` defined, ``x[1]`` not; ``x[i, 0]`` for ``i < N``
and ``x[i, 1]`` for ``i < M`` with ``N < M``) has no prior: its q is undefined and the
ELBO became NaN at the first sweep with no word of why.  :func:`check_coverage` refuses
such a node at its first statement, naming the first element left undefined, as soon as
the loop bounds of every statement are known (at compile time for numbers and constants,
at binding for dims).  A deterministic node may leave elements unwritten: they are zeros
(``elj.deterministic._assemble``), read by nothing when the model is right
(``u[t] = 2 * s[t-1]`` for t >= 1).
"""

from __future__ import annotations

import numpy as np

from ..diagnostics import VemError
from .expr import const_int, loop_offset
from .text import expr_to_text

#: Nodes with more elements than this are not checked element by element (the boolean
#: grid would cost more than the check is worth); one axis alone is always checked.
MAX_GRID = 10**7


def _boxes(node, known):
    """Each statement's ``[(start, stop), ...]`` per axis, or None when a bound is unknown."""
    boxes = []
    for d in node.defs:
        box = []
        for ix in d.indices:
            c = const_int(ix)
            if c is not None:
                box.append((c, c + 1))
                continue
            lo = loop_offset(ix, d.loop_vars)
            if lo is None:
                return None
            lp = next(lp for lp in d.loops if lp.var == lo[0])
            start, stop = known.value(lp.start), known.value(lp.stop)
            if start is None or stop is None or not (float(start).is_integer() and float(stop).is_integer()):
                return None
            box.append((int(start) + lo[1], int(stop) + lo[1]))
        boxes.append(box)
    return boxes


def _first_gap(boxes, extent):
    """The first index of the grid ``extent`` that no box covers, or None."""
    if len(extent) == 1:
        at = 0
        for lo, hi in sorted(b[0] for b in boxes if b[0][1] > b[0][0]):
            if lo > at:
                return (at,)
            at = max(at, hi)
        return None if at >= extent[0] else (at,)
    if int(np.prod(extent, dtype=float)) > MAX_GRID:
        return None
    covered = np.zeros(extent, bool)
    for box in boxes:
        covered[tuple(slice(max(lo, 0), hi) for lo, hi in box)] = True
    gaps = np.argwhere(~covered)
    return tuple(int(i) for i in gaps[0]) if len(gaps) else None


def check_coverage(model, known) -> None:
    """Refuse a plated latent with an element no statement defines;
    ``known`` is ``ir.sizes._Sizes`` (the values of sizes known so far)."""
    for node in model.nodes.values():
        if node.kind != "latent" or not node.defs or not node.defs[0].indices:
            continue
        boxes = _boxes(node, known)
        if boxes is None:
            continue
        extent = tuple(max([hi for box in boxes for lo, hi in [box[a]] if hi > lo] or [0]) for a in range(len(boxes[0])))
        if min(extent) <= 0:
            continue
        gap = _first_gap(boxes, extent)
        if gap is None:
            continue
        pieces = "; ".join(
            f"[{', '.join(f'{lo}:{hi}' for lo, hi in box)}] (line {d.span.line if d.span else '?'}: "
            f"{node.name}[{', '.join(expr_to_text(ix) for ix in d.indices)}])"
            for box, d in zip(boxes, node.defs))
        raise VemError(
            "shape",
            f"no statement defines {node.name}[{', '.join(map(str, gap))}]: '{node.name}' spans "
            f"[{', '.join(map(str, extent))}], and its statements define {pieces}",
            node.defs[0].span,
            f"define every element of '{node.name}' up to its largest index, or give the pieces "
            "ranges that meet (range(T) and range(T, S))",
        )


__all__ = ["MAX_GRID", "check_coverage"]
