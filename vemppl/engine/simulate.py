"""Ancestral sampling from the IR: prior and posterior predictive draws.

Nodes are visited in topological order; each ``~`` statement is evaluated on its grid
with every parent a known array (the same evaluator as the expected log joint, with
point-mass sources) and drawn from the family's NumPyro distribution.  A statement that
reads an earlier step of its own node (a Markov chain) is drawn step by step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import networkx as nx
import numpy as np

from ..families import get_family
from ..ir.expr import Index, Name, Num, loop_offset, walk
from ..ir.nodes import Definition, Loop
from ..elj.evaluate import _Context
from ..elj.plates import definition_index, plate_shape


def simulate(model, sizes: dict, values: dict, key, skip=(), params=None) -> dict:
    """Draw every random node not in ``values`` (nor in ``skip``) given ``values``;
    ``params``: the networks' weights by name, for the statements that call them."""
    params = params or {}
    values = {k: np.asarray(v) for k, v in values.items()}
    g = model.graph.copy()
    g.remove_edges_from([(u, v) for u, v in g.edges if u == v])
    order = list(model.nodes)
    for name in nx.lexicographical_topological_sort(g, key=order.index):
        node = model.nodes[name]
        if node.kind not in ("latent", "data") or not node.defs or name in values or name in skip:
            continue
        out = None
        for d in node.defs:
            key, sub = jax.random.split(key)
            out = _draw_definition(model, name, d, sizes, values, out, sub, params)
        values[name] = out
    return values


def _draw_definition(model, name, d: Definition, sizes, values, out, key, params, one_step=False):
    markov = [] if one_step else [i for i, ix in enumerate(d.indices) if _reads_own_lag(d, name, ix)]
    if markov:
        # Draw along the Markov loop one step at a time (the step reads the previous one).
        var = loop_offset(d.indices[markov[0]], d.loop_vars)[0]
        ctx = _Context(None, d.loops, (), sizes, values, {}, {}, None)
        start, stop = next((s, e) for v, s, e in ctx.loops if v == var)
        for t in range(start, stop):
            key, sub = jax.random.split(key)
            step = Definition(tuple(Loop(lp.var, Num(t), Num(t + 1)) if lp.var == var else lp for lp in d.loops),
                              d.indices, d.dist, d.args)
            out = _draw_definition(model, name, step, sizes, {**values, name: out}, out, sub, params, one_step=True)
        return out
    fam = get_family(d.dist)
    ctx = _Context(model, d.loops, (), sizes, values, {}, params, None)
    args = {k: jnp.asarray(ctx.ev(e).value, dtype=float) for k, e in d.args}
    dist = fam.numpyro_dist(**args)
    grid = tuple(stop - start for _, start, stop in ctx.loops)
    # Arguments are laid out grid-first; one independent draw per grid cell.
    batch = tuple(dist.batch_shape)
    on_grid = len(batch) >= len(grid) and all(b in (1, g) for b, g in zip(batch, grid))
    extra = batch[len(grid):] if on_grid else batch
    draw = np.asarray(dist.expand(grid + extra).sample(key))
    if fam.support in ("count", "bool", "cat") and draw.dtype.kind == "f":
        # NumPyro draws a Multinomial's counts in its arguments' float dtype (a Poisson's, a
        # Binomial's as integers): whole numbers either way, returned as every count is.
        draw = draw.astype(np.int64)
    if not d.indices:
        return draw
    if out is None:
        shape = plate_shape(model, name, sizes, values)
        out = np.zeros(shape + draw.shape[len(grid):], dtype=draw.dtype)
    out = np.array(out, copy=True)
    out[definition_index(d, ctx)] = draw
    return out


def _reads_own_lag(d, name, own_ix):
    lo = loop_offset(own_ix, d.loop_vars)
    if lo is None:
        return False
    for _, e in d.args:
        for sub in _walk(e):
            if isinstance(sub, Index) and isinstance(sub.base, Name) and sub.base.id == name:
                return True
    return False


def _walk(e):
    return walk(e)
