"""Where a node's definitions write: its plate shape and each definition's index.

``z[0] ~ ...`` and ``for t in range(1, T) { z[t] ~ ... }`` together fill ``z[0:T]``; the
initialiser and the ancestral sampler both scatter per-definition values into that array.
"""

from __future__ import annotations

import numpy as np

from ..ir.expr import const_int, loop_offset
from .evaluate import _Context


def plate_shape(model, name: str, sizes: dict, values: dict) -> tuple[int, ...]:
    """The extent of each indexed axis of ``name`` over all of its definitions."""
    defs = model.nodes[name].defs
    loops = {id(d): _Context(None, d.loops, (), sizes, values, {}, {}, None).loops for d in defs}
    # A statement in an empty loop (range(S, N) at N = S) adds nothing (docs/language.md,
    # Loops), so it does not widen the node either (as ir/coverage.py counts it).
    live = [d for d in defs if all(e > s for _, s, e in loops[id(d)])] or defs[:0]
    shape = []
    for axis in range(len(defs[0].indices)):
        size = 0
        for d in live:
            ix = d.indices[axis]
            c = const_int(ix)
            if c is not None:
                size = max(size, c + 1)
                continue
            var, off = loop_offset(ix, d.loop_vars)
            size = max(size, dict((v, e) for v, _, e in loops[id(d)])[var] + off)
        shape.append(size)
    return tuple(shape)


def definition_index(d, ctx) -> tuple:
    """The index that places a definition's grid-shaped values into the node's array."""
    idx = []
    for ix in d.indices:
        c = const_int(ix)
        if c is not None:
            idx.append(c)
            continue
        var, off = loop_offset(ix, d.loop_vars)
        p = ctx.loop_vars.index(var)
        _, start, stop = ctx.loops[p]
        shape = [1] * len(ctx.loops)
        shape[p] = stop - start
        idx.append(np.arange(start + off, stop + off).reshape(shape))
    return tuple(idx)
