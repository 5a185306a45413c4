"""Reads of deterministic nodes in the expected log joint (issue #20, row 3).

A deterministic node is indexed as a latent is: by loop variables (with offsets), constants,
data arrays (a gather) and categorical latents (a gate).  How a read is evaluated depends on
what the node reads:

* a node of constants, data and params (``stick = 1.0 + 4.0 * eye(K)``) is **known**: its
  value is computed whole, each statement over its own loops and written at its indices
  (:func:`whole`), then indexed like any known array (``stick[k]``, ``u[grp[n]]``);
* a node that reads a latent block (``mu[k] = m0 + delta[k]``) is a **name for its
  expression**: the read is written out with the node's loop variables replaced by the read's
  indices (``ir/inline.py``), so ``mu[z[n]]`` is evaluated as ``m0 + delta[z[n]]``, whose
  moments and gate are those of the hand-written model (same updates, same ELBO).

``ctx`` is the evaluator's context (``elj/evaluate.py``): its model, sizes, known values and
blocks, with two caches (``_random_dets``, ``_wholes``) that live as long as it does.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..diagnostics import VemError
from ..ir.expr import Name, names
from ..ir.inline import expand, reads_itself
from ..ir.shapes import infer
from . import moments as M


def is_random(ctx, name: str) -> bool:
    """Whether node ``name`` is a block or a deterministic node that reads one."""
    if name in ctx.blocks:
        return True
    node = ctx.model.nodes.get(name) if ctx.model is not None else None
    if node is None or node.kind != "det":
        return False
    if name not in ctx._random_dets:
        ctx._random_dets[name] = False  # a recurrence: decided by what else it reads
        ctx._random_dets[name] = any(
            is_random(ctx, x.id) for d in node.defs for x in names(d.expr) if x.id not in d.loop_vars and x.id != name
        )
    return ctx._random_dets[name]


def written_out(ctx, e):
    """``e`` with its reads of deterministic nodes of latents written out (ir/inline.py)."""
    if ctx.model is None or not any(x.id not in ctx.loop_vars and x.id not in ctx.blocks and is_random(ctx, x.id)
                                    for x in names(e)):
        return e
    return expand(ctx.model, e, ctx.loop_vars, lambda n: is_random(ctx, n))


def read(ctx, e, node) -> M.MomentSource:
    """A read (``e``: the name or an index of it) of the deterministic node ``node``: its
    definition written out where it depends on latents, so their moments and gates are read
    directly; else its value, computed whole and indexed (a gather, a gate, a slice)."""
    if is_random(ctx, node.name):
        return ctx.ev(expand(ctx.model, e, ctx.loop_vars, lambda n: is_random(ctx, n)))
    value = whole(ctx, node)
    return M.Fixed(value if isinstance(e, Name) else ctx.take(value, e.indices))


def whole(ctx, node):
    """The value of a deterministic node of constants, data and params, every element: each
    statement evaluated over its own loops and written at its indices."""
    if node.name in ctx._wholes:
        return ctx._wholes[node.name]
    if reads_itself(node):
        raise VemError("unsupported", f"the deterministic node '{node.name}' reads an earlier step of itself: "
                       "a recurrence is not supported", node.defs[0].span,
                       "compute it outside the model and pass it as data")
    pieces = []
    for d in node.defs:
        sub = type(ctx)(ctx.model, d.loops, (), ctx.sizes, ctx.values, ctx.blocks, ctx.params, None, ctx.masks)
        v = sub.ev(d.expr).value
        if not d.indices:
            pieces.append((None, v))
            continue
        # The value's own axes trail its grid axes (one per loop, some of them broadcast).
        event = len(infer(d.expr, ctx.model.shapes, d.loop_vars))
        xp = jnp if isinstance(v, jax.Array) else np
        grid = sub.grid_shape()
        v = xp.reshape(v, (1,) * (sub.R - (np.ndim(v) - event)) + np.shape(v))
        v = xp.broadcast_to(v, grid + np.shape(v)[sub.R:])
        idx = tuple(np.broadcast_to(np.asarray(i, dtype=np.int64), grid) for i in sub.index_arrays(d.indices))
        pieces.append((idx, v))
    if len(pieces) == 1 and pieces[0][0] is None:
        out = pieces[0][1]
    else:
        out = _assemble(pieces, ctx.model.shapes.get(node.name, ()), {**ctx.values, **ctx.sizes})
    ctx._wholes[node.name] = out
    return out


def _assemble(pieces, shape, known):
    """The array of a deterministic node from its statements' ``(index arrays, values)``: each
    plate axis as long as its declared size where that is known, else its largest index + 1."""
    plate = []
    for a in range(len(pieces[0][0])):
        longest = max(int(np.max(idx[a])) + 1 if idx[a].size else 0 for idx, _ in pieces)
        sym = shape[a] if a < len(shape) else None
        size = sym if isinstance(sym, int) else known.get(sym) if isinstance(sym, str) else None
        plate.append(max(longest, int(np.asarray(size))) if size is not None and np.ndim(size) == 0 else longest)
    event = np.shape(pieces[0][1])[pieces[0][0][0].ndim:]
    dtype = np.result_type(*(v.dtype if isinstance(v, jax.Array) else np.asarray(v).dtype for _, v in pieces))
    if any(isinstance(v, jax.Array) for _, v in pieces):
        out = jnp.zeros(tuple(plate) + event, dtype)
        for idx, v in pieces:
            out = out.at[idx].set(v)
        return out
    out = np.zeros(tuple(plate) + event, dtype)
    for idx, v in pieces:
        out[idx] = v
    return out


__all__ = ["is_random", "read", "whole", "written_out"]
