"""Per-observation log-likelihoods at one draw of the continuous latents, with every
categorical latent summed out exactly (the ``log_likelihood`` group of ``to_arviz``).

Given a value θ of every continuous latent and every point parameter, the model's
categorical latents are summed out:

* a categorical ``z`` with independent elements (a mixture's ``z[n]``, LDA's ``z[i]``):

      log p(x_u | θ) = log Σ_k p(z_u = k | θ) Π_{x read at z_u} p(x | z_u = k, θ),

  one value per element ``u`` of ``z`` (the data read through ``mu[z[n]]`` summed into
  the element they read);
* a categorical chain (a statement that reads its own previous step, ``z[t] ~
  Categorical(A[z[t-1]])``): the forward algorithm's one-step predictive densities

      log p(x_t | x_{<t}, θ),    Σ_t log p(x_t | x_{<t}, θ) = log p(x_{0:T} | θ);

* data that read no categorical latent: ``log p(x_u | θ)`` per element of ``x``.

Every term is evaluated by the families' ``expected_log_prob`` with point-mass (``Fixed``)
arguments, on the factor's grid, with the categorical latent's values placed on their
own axis exactly as the expected log joint places them (``engine.evaluate``): the cost of
one draw is that of one evaluation of the data's factors, not of sampling every token's
latent.  Nothing here is written per model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from ..diagnostics import VemError
from ..elj import moments as M
from ..elj.evaluate import _Context
from ..elj.plates import definition_index, plate_shape
from ..families import get_family
from ..ir.expr import Index, Name, loop_offset
from ..plan import EnumRef


class _Onehot(NamedTuple):
    onehot: object  # only its last axis (the number of categories) is read


@dataclass(frozen=True)
class Group:
    """Data whose log-likelihood is summed over one categorical latent ``latent``
    (``None``: data that read none), reported per element of ``latent`` (or of the data)."""

    name: str  # the log_likelihood variable: the data's name(s)
    latent: str | None
    data_factors: tuple  # the plan's factors whose target is observed data
    own_factors: tuple  # the latent's own statements (its prior, its transitions)
    chain_axis: int | None = None  # the axis along which the latent reads its previous step


def categorical_latents(fit) -> dict[str, int]:
    """Categorical latent nodes and their number of categories."""
    out = {}
    for b in fit.plan.blocks:
        if get_family(b.family).support == "cat" and not b.members:
            out[b.name] = int(np.shape(fit.state.mu[b.name].onehot)[-1])
    return out


def groups(fit) -> list[Group]:
    """The observed data grouped by the categorical latent they are read through."""
    model, plan = fit.model, fit.plan
    observed = {n.name for n in model.of_kind("data") if n.defs}
    by_latent: dict[str | None, list] = {}
    for f in plan.factors:
        if f.target not in observed:
            continue
        refs = {r.block for r in f.enum}
        if len(refs) > 1 or len(f.enum) > 1:
            raise VemError("unsupported", f"'{f.describe()}' reads several categorical latents: its pointwise "
                           "log-likelihood is not summed out here")
        by_latent.setdefault(refs.pop() if refs else None, []).append(f)
    for f in plan.factors:  # a latent that reads a categorical latent would couple it to more than data
        if f.target not in observed and any(r.block != f.target for r in f.enum):  # a categorical one too
            raise VemError("unsupported", f"'{f.describe()}' makes the latent '{f.target}' depend on a categorical "
                           "latent: the log-likelihood of the data alone is not defined by summing it out")
    out = []
    for z, fs in by_latent.items():
        names = list(dict.fromkeys(f.target for f in fs))
        if z is None:
            out += [Group(x, None, tuple(f for f in fs if f.target == x), ()) for x in names]
            continue
        own = tuple(f for f in plan.factors if f.target == z)
        out.append(Group("+".join(names), z, tuple(fs), own, _chain_axis(z, own)))
    return out


def _chain_axis(z, own) -> int | None:
    for f in own:
        d = f.definition
        for r in f.enum:
            if r.block != z:
                continue
            for axis, (prev, cur) in enumerate(zip(getattr(r.expr, "indices", ()), d.indices)):
                lp, lc = loop_offset(prev, d.loop_vars), loop_offset(cur, d.loop_vars)
                if lp and lc and lp[0] == lc[0] and lp[1] != lc[1]:
                    if lc[1] - lp[1] != 1:
                        raise VemError("unsupported", f"'{f.describe()}' reads a step other than the previous one")
                    return axis
    return None


class Evaluator:
    """Grid evaluations of the plan's factors at point values (one draw)."""

    def __init__(self, fit, categories: dict[str, int]):
        self.model, self.fit = fit.model, fit
        self.sizes = dict(fit.bound.sizes)
        self.categories = categories
        self.base = {k: np.asarray(v) for k, v in fit.bound.values.items()}
        self.masks = {k: np.asarray(v) for k, v in getattr(fit.bound, "masks", {}).items()}
        self.networks = {k: v for k, v in fit.params.items() if isinstance(v, dict)}
        self.base.update({k: np.asarray(v) for k, v in fit.params.items() if not isinstance(v, dict)})
        self.shapes = {z: plate_shape(self.model, z, self.sizes, self.base) for z in categories}

    def context(self, d, enum, values):
        blocks = {r.block: (None, _Onehot(np.zeros((self.categories[r.block],))), None) for r in enum}
        return _Context(self.model, d.loops, enum, self.sizes, values, blocks, self.networks, None)

    def grid(self, f, values, enum_target=False):
        """log f on the factor's grid: loop axes, then one axis per categorical read (then
        the target's own categories when ``enum_target``)."""
        d, fam = f.definition, get_family(f.family)
        target = Index(Name(f.target), d.indices) if d.indices else Name(f.target)
        enum = tuple(f.enum) + ((EnumRef(target, f.target),) if enum_target else ())
        ctx = self.context(d, enum, values)
        given = {k for k, _ in d.args}
        args = {k: ctx.ev(v) for k, v in d.args}
        for group in fam.args.groups:
            if not any(g in given for g in group):
                name = next(g for g in group if g in fam.args.defaults)
                args[name] = M.Fixed(fam.args.defaults[name])
        lp = fam.expected_log_prob(ctx.ev(target), **args)
        while jnp.ndim(lp) > ctx.R:  # a scalar family over a vector value (x[n] of D pixels): one term per cell
            lp = jnp.sum(lp, axis=-1)
        if f.target in self.masks:  # a missing observation adds nothing
            m = jnp.asarray(ctx.take(jnp.asarray(self.masks[f.target], dtype=float), d.indices))
            while m.ndim > ctx.R:
                m = jnp.min(m, axis=-1)
            lp = jnp.where(m > 0, lp, 0.0)
        return jnp.broadcast_to(lp, jnp.broadcast_shapes(jnp.shape(lp), ctx.grid_shape())), ctx

    def into(self, shape, grid, ctx, indices):
        """Add a grid (loop axes, then any further axes) into an array of ``shape`` at
        ``indices``: a block of slices where each index is its own loop variable (plus an
        offset) in loop order, the loop axes it does not index summed first; else a scatter."""
        n = len(ctx.loops)
        axes = [loop_offset(ix, ctx.loop_vars) for ix in indices]
        pos = [ctx.loop_vars.index(a[0]) if a else None for a in axes]
        if all(p is not None for p in pos) and pos == sorted(set(pos)):
            g = jnp.sum(grid, axis=tuple(a for a in range(n) if a not in pos)) if n > len(pos) else grid
            spans = tuple(slice(ctx.loops[p][1] + off, ctx.loops[p][2] + off) for p, (_, off) in zip(pos, axes))
            return jnp.zeros(shape + g.shape[len(pos):]).at[spans].add(g)
        idx = []
        for a in ctx.index_arrays(indices):
            a = jnp.reshape(a, jnp.shape(a)[:n]) if jnp.ndim(a) > n else a
            idx.append(jnp.broadcast_to(a, grid.shape[:n]) if jnp.ndim(a) else a)
        return jnp.zeros(shape + grid.shape[n:]).at[tuple(idx)].add(grid)

    def tables(self, group, values):
        """The latent's prior log-probabilities: ``first`` [shape + (K,)], ``trans`` [shape +
        (K, K)] from the previous step, and ``has_prev`` [shape] where ``trans`` applies."""
        z = group.latent
        shape, K = self.shapes[z], self.categories[z]
        first, trans = jnp.zeros(shape + (K,)), jnp.zeros(shape + (K, K))
        has_prev = np.zeros(shape, dtype=bool)
        for f in group.own_factors:
            grid, ctx = self.grid(f, values, enum_target=True)
            d, n = f.definition, len(ctx.loops)
            if any(r.block == z for r in f.enum):
                trans = trans + self.into(shape, jnp.reshape(grid, grid.shape[:n] + (K, K)), ctx, d.indices)
                has_prev[definition_index(d, ctx) if d.indices else ()] = True
            else:
                first = first + self.into(shape, jnp.reshape(grid, grid.shape[:n] + (K,)), ctx, d.indices)
        return first, trans, has_prev

    def emissions(self, group, values):
        """Σ of the data's log-densities at each element of the latent and each category."""
        z = group.latent
        total = jnp.zeros(self.shapes[z] + (self.categories[z],))
        for f in group.data_factors:
            grid, ctx = self.grid(f, values)
            read = f.enum[0].expr  # `z[n]`, or an unplated `s` (a change point's `lam[side[s, t]]`)
            total = total + self.into(self.shapes[z], grid, ctx, read.indices if isinstance(read, Index) else ())
        return total

    def plain(self, group, values):
        """log p(x_u | θ) per element of data that read no categorical latent."""
        x = group.data_factors[0].target
        shape = np.shape(self.base[x])
        total = None
        for f in group.data_factors:
            grid, ctx = self.grid(f, values)
            d = f.definition
            if not d.indices:
                return jnp.sum(grid)
            part = self.into(shape[:len(d.indices)], grid, ctx, d.indices)
            total = part if total is None else total + part
        return total


def forward(first, trans, has_prev, emis, axis):
    """One-step predictive log-densities along ``axis`` by the normalised forward pass."""
    first, emis = (jnp.moveaxis(a, axis, 0) for a in (first, emis))
    trans, has_prev = jnp.moveaxis(trans, axis, 0), jnp.moveaxis(jnp.asarray(has_prev), axis, 0)

    def step(alpha, inp):
        f, tr, hp, e = inp
        pred = jnp.where(hp[..., None], logsumexp(alpha[..., :, None] + tr, axis=-2), f)
        a = pred + e
        c = logsumexp(a, axis=-1)
        return a - c[..., None], c

    _, c = jax.lax.scan(step, jnp.zeros(first.shape[1:]), (first, trans, has_prev, emis))
    return jnp.moveaxis(c, 0, axis)


def log_likelihood(ev: Evaluator, gs, values) -> dict:
    """{group name: pointwise log-likelihood} at one draw ``values`` (see the module docstring)."""
    out = {}
    for g in gs:
        if g.latent is None:
            out[g.name] = ev.plain(g, values)
            continue
        first, trans, has_prev = ev.tables(g, values)
        emis = ev.emissions(g, values)
        if g.chain_axis is None:
            out[g.name] = logsumexp(first + emis, axis=-1)
        else:
            out[g.name] = forward(first, trans, has_prev, emis, g.chain_axis)
    return out


def categorical(key, logits):
    """One draw per row of ``logits`` [..., K] by inverse CDF: one uniform per row, where
    ``jax.random.categorical``'s Gumbel trick draws K (the cost of a replicate of LDA)."""
    cdf = jnp.cumsum(jax.nn.softmax(logits, axis=-1), axis=-1)
    u = jax.random.uniform(key, cdf.shape[:-1] + (1,)) * cdf[..., -1:]
    return jnp.minimum(jnp.sum(u > cdf, axis=-1), cdf.shape[-1] - 1).astype(jnp.int32)


def sample_latent(ev: Evaluator, g, values, key):
    """A draw of the categorical latent from its prior given θ (for replicated data)."""
    first, trans, has_prev = ev.tables(g, values)
    if g.chain_axis is None:
        return categorical(key, first)
    first, trans = jnp.moveaxis(first, g.chain_axis, 0), jnp.moveaxis(trans, g.chain_axis, 0)
    hp = jnp.moveaxis(jnp.asarray(has_prev), g.chain_axis, 0)

    def step(prev, inp):
        f, tr, h, k = inp
        logits = jnp.where(h[..., None], jnp.take_along_axis(tr, prev[..., None, None], axis=-2)[..., 0, :], f)
        z = categorical(k, logits)
        return z, z

    keys = jax.random.split(key, first.shape[0])
    _, zs = jax.lax.scan(step, jnp.zeros(first.shape[1:-1], dtype=jnp.int32), (first, trans, hp, keys))
    return jnp.moveaxis(zs, 0, g.chain_axis)


__all__ = ["Group", "Evaluator", "groups", "categorical_latents", "log_likelihood", "forward", "sample_latent", "categorical"]
