"""The weights of a factor's enumerated categorical reads (``factor_value`` in ``evaluate.py``).

A factor that reads categorical latents is evaluated on a grid with one axis per category
read; its terms are weighted by E[onehot(z)] of each read, and two adjacent steps of one
Markov chain by their pairwise marginal E[onehot(z_{t-1}) onehot(z_t)ᵀ] (Beal 2003, ch. 3).
Two reads of one mean-field categorical block (``B[z[i], z[j]]``) are independent where
they read different elements, and one variable where they read the same (i = j):
E[onehot(z_i)_k onehot(z_j)_l] = q_ik q_jl for i ≠ j, δ_kl q_ik for i = j.
``ctx`` is ``evaluate._Context``: its loops, its enumeration and its gather.
"""

from __future__ import annotations

import jax.numpy as jnp

from ..diagnostics import VemError
from ..families import get_family
from ..ir.expr import Index, loop_offset
from .moments import Entry


def held_at_points(model, enum, blocks, params):
    """``blocks`` with every enumerated categorical that is not a block but a point value in
    ``params`` (a global held when predicting: its probabilities under ``plug_in``, a Monte Carlo
    draw as a one-hot vector) entered as a fixed block whose E[onehot] is that value."""
    held = {r.block for r in enum if r.block not in blocks and r.block in params}
    if not held:
        return blocks
    out = dict(blocks)
    for j in held:
        fam = get_family(model.nodes[j].defs[0].dist)
        eta = fam.natural_from_params(probs=params[j])
        out[j] = Entry(fam, fam.expected_stats(eta), eta, True)
    return out


def group_refs(enum, blocks):
    """Enumeration axes grouped so two reads of one block share a joint weight: two steps of
    a Markov chain their pairwise marginal, two elements of a mean-field block
    :func:`coincident_weight`.  Three or more reads of one mean-field block are refused."""
    groups, by_block = [], {}
    for e, ref in enumerate(enum):
        by_block.setdefault(ref.block, []).append(e)
    for block, axes in by_block.items():
        chain = getattr(blocks[block][1], "pair", None) is not None
        if len(axes) > 2 and not chain:
            raise VemError("unsupported", f"the categorical '{block}' is read at {len(axes)} elements in one factor; "
                           "at most two reads of one categorical latent are supported", enum[axes[2]].expr.span)
        groups.extend([axes] if len(axes) == 2 else [[a] for a in axes])
    return groups


def joint_weight(ctx, e1, e2):
    """The joint weight of two reads of one block on enumeration axes e1, e2."""
    if getattr(ctx.blocks[ctx.enum[e1].block][1], "pair", None) is not None:
        return pair_weight(ctx, e1, e2)
    return coincident_weight(ctx, e1, e2)


def coincident_weight(ctx, e1, e2):
    """E[onehot(z_I) ⊗ onehot(z_J)] of two reads of one mean-field categorical block, per grid
    position: q_I ⊗ q_J where the index arrays differ, diag(q_I) where they are equal."""
    r1, r2 = ctx.enum[e1], ctx.enum[e2]
    w1, w2 = enum_weight(ctx, e1, r1), enum_weight(ctx, e2, r2)
    same = True
    for i, j in zip(ctx.index_arrays(r1.expr.indices), ctx.index_arrays(r2.expr.indices)):
        same = jnp.logical_and(same, jnp.asarray(i) == jnp.asarray(j))
    k = ctx.enum_sizes[e1]
    shape = [1] * ctx.R
    shape[len(ctx.loops) + e1] = shape[len(ctx.loops) + e2] = k
    delta = jnp.reshape(jnp.eye(k), shape)
    return jnp.where(jnp.reshape(same, jnp.shape(same) + (1,) * (ctx.R - jnp.ndim(same))), delta * w1, w1 * w2)


def pair_weight(ctx, e1, e2):
    """E[onehot(z_{t-1}) onehot(z_t)ᵀ] of a chain, its two category axes on axes e1, e2."""
    r1, r2 = ctx.enum[e1], ctx.enum[e2]
    lag1, lag2 = (loop_offset(r.expr.indices[-1], ctx.loop_vars) for r in (r1, r2))
    if lag1 is None or lag2 is None or abs(lag1[1] - lag2[1]) != 1:
        raise VemError("unsupported", "a Markov chain is read at steps that are not adjacent", r1.expr.span)
    (ep, rp), (ec, rc) = ((e1, r1), (e2, r2)) if lag1[1] < lag2[1] else ((e2, r2), (e1, r1))
    fam, stats, _ = ctx.blocks[rp.block]
    pair = stats.pair  # pair[t] is the joint of steps t and t+1
    if getattr(fam, "tied_pairs", False):
        # Σ_t q(z_{t−1}, z_t) of a chain whose one transition factor reads the same
        # parameters at every step (the compiler's condition): spread evenly over the T−1
        # steps it weighs Σ_t ⟨w_t, E log p⟩ = ⟨Σ_t w_t, E log p⟩ exactly.
        # A sequence of length 1 has no transition (steps = 0): divide by 1, not 0, so the
        # gradient through the empty broadcast is 0, not 0/0 (issue #23).
        steps = stats.onehot.shape[-2] - 1
        pair = jnp.broadcast_to((pair / max(steps, 1))[..., None, :, :], pair.shape[:-2] + (steps,) + pair.shape[-2:])
    w = ctx.take(pair, rp.expr.indices)
    lead = w.shape[:-2]
    w = jnp.reshape(w, (1,) * (ctx.R - len(lead)) + w.shape)
    pos_p, pos_c = len(ctx.loops) + ep, len(ctx.loops) + ec
    w = jnp.squeeze(w, axis=(pos_p, pos_c))
    return jnp.moveaxis(w, (-2, -1), (pos_p, pos_c)) if pos_p < pos_c else jnp.moveaxis(w, (-1, -2), (pos_c, pos_p))


def enum_weight(ctx, e, ref):
    """E[onehot] of the reference ``ref`` laid out with its categories on axis ``e``."""
    fam, stats, eta = ctx.blocks[ref.block]
    r = stats.onehot
    if isinstance(ref.expr, Index):
        r = ctx.take(r, ref.expr.indices)  # plate axes only; categories stay last
    lead = r.shape[:-1]
    r = jnp.reshape(r, (1,) * (ctx.R - len(lead)) + lead + r.shape[-1:]) if len(lead) < ctx.R else r
    axis = len(ctx.loops) + e
    r = jnp.squeeze(r, axis=axis) if r.shape[axis] == 1 else r
    return jnp.moveaxis(r, -1, axis)
