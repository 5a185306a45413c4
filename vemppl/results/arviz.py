"""A fit as an ArviZ ``InferenceData``: posterior draws, pointwise log-likelihoods,
replicated data and the observed data, with dims named after the model's plates.

Groups (one chain of ``draws`` draws from q; ArviZ needs the ``arviz`` extra):

* ``posterior``: draws from q of the global latents (a joint block's members drawn
  jointly); with ``locals=True`` also of the local ones (a categorical local drawn from
  its q marginals, element by element).
* ``log_likelihood``: for draw s, ``log p(x_u | θ^(s))`` per observation u, where θ^(s)
  is a draw from q of every *continuous* latent (globals and locals such as LDA's θ_d or
  factor analysis's h_n) together with the fitted point parameters, and every
  *categorical* latent is summed out exactly given θ^(s) (``results.pointwise``):
  a mixture's or LDA's ``log Σ_k p(z_u = k | θ) p(x_u | z_u = k, θ)`` per element of z
  (data read through the same ``z[n]`` are one observation), a chain's one-step predictive
  ``log p(x_t | x_{<t}, θ)`` (they sum to ``log p(x | θ)``; leave-one-out over time
  steps is then an approximation ArviZ will warn about), and data that read no
  categorical latent ``log p(x_u | θ)`` per element of the data.  This is what
  ``az.loo``, ``az.waic`` and ``az.compare`` read; as for a sampler's output, q stands in
  for the posterior, so the estimates inherit q's under-dispersion.
* ``posterior_predictive``: for each of the first ``predictive_draws`` draws, the
  categorical latents drawn from the model given θ^(s) and then the data (the replicated
  data of a marginalised mixture), laid out as the observed data.
* ``observed_data``: the observed arrays; ``constant_data``: the point parameters.

Cost: one evaluation of the data's factors per draw (vectorised over chunks of draws),
never a draw of every categorical latent.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..diagnostics import VemError
from ..elj.plates import definition_index
from ..families import get_family
from ..frontends.printer import expr_to_text
from ..ir.expr import loop_offset
from . import draws as D
from . import pointwise as P
from .local import local_blocks

#: Elements (cells × categories) evaluated at once: bounds the memory of one chunk of draws.
_CHUNK_ELEMENTS = 2e6


def to_arviz(fit, draws: int = 1000, seed: int = 0, locals: bool = False, log_likelihood: bool = True,
             predictive_draws: int | None = 100):
    """The ``InferenceData`` of ``fit``; see the module docstring for what each group holds.
    ``predictive_draws``: how many replicated data sets (default 100, at most ``draws``;
    0 leaves the group out; None: one per draw).  Each costs a whole data set's draws, and
    a posterior predictive check needs far fewer than leave-one-out needs draws (on LDA of
    Reuters, 1000 replicates took 3x as long as everything else)."""
    try:
        import arviz as az
    except ImportError:
        raise VemError("io", "to_arviz needs ArviZ", hint="pip install 'vemppl[arviz]'") from None
    model = fit.model
    absent = [n.name for n in model.of_kind("data") if n.defs and n.name not in fit.bound.values]
    if absent and (log_likelihood or predictive_draws != 0):
        raise VemError("data", f"these results hold no data ('{absent[0]}'): results read by load_results keep "
                       "only the data's hashes", hint="to_arviz(log_likelihood=False, predictive_draws=0) exports "
                       "the posterior alone; for the other groups, call to_arviz on the fit itself")
    local = local_blocks(model, fit.plan)
    cats = P.categorical_latents(fit)
    gs = P.groups(fit) if log_likelihood or predictive_draws != 0 else []
    ev = P.Evaluator(fit, cats)
    n_pred = draws if predictive_draws is None else min(predictive_draws, draws)
    continuous = [b for b in fit.plan.blocks if b.name not in cats]
    theta = D.draw_blocks(fit, continuous, draws, seed)
    keep = [n for n in _latent_nodes(fit) if locals or _block_of(fit, n) not in local]
    if not any(n in theta for n in keep):  # no global latent (factor analysis): the locals are the posterior
        keep = _latent_nodes(fit)
    groups = {"posterior": {n: theta[n] for n in keep if n in theta}}
    if locals:
        rng = np.random.default_rng(seed + 1)
        for z in cats:  # element by element from q's marginals
            probs = get_family(fit.plan.block(z).family).to_numpyro(fit.state.eta[z]).probs
            groups["posterior"][z] = D.categorical_draws(probs, rng, draws)
    size = int(max(1, min(draws, _CHUNK_ELEMENTS // max([_cells(ev, g) for g in gs] + [1]))))
    if log_likelihood:
        run = lambda th: P.log_likelihood(ev, gs, {**ev.base, **th})  # noqa: E731
        groups["log_likelihood"] = _chunked(run, theta, draws, size)
    if n_pred:
        run = lambda th, k: replicate(ev, gs, {**ev.base, **th}, k)  # noqa: E731
        keys = jax.random.split(jax.random.PRNGKey(seed), n_pred)
        groups["posterior_predictive"] = _chunked(run, {k: v[:n_pred] for k, v in theta.items()}, n_pred, size, keys)
    groups = {g: {k: np.asarray(v)[None] for k, v in d.items()} for g, d in groups.items()}
    observed = [n.name for n in model.of_kind("data") if n.defs]
    return az.from_dict(
        posterior=groups["posterior"] or None, log_likelihood=groups.get("log_likelihood"),
        posterior_predictive=groups.get("posterior_predictive"),
        observed_data={x: np.asarray(fit.bound.values[x]) for x in observed if x in fit.bound.values} or None,
        constant_data={k: np.asarray(v) for k, v in fit.params.items() if not isinstance(v, dict)} or None,
        dims=_dims(fit, groups, gs),
    )


def _chunked(fn, theta, n, size, keys=None) -> dict:
    """``fn`` of one draw over all ``n`` draws: vectorised over chunks of ``size`` draws (the
    last padded, so one compilation), or, where one draw is already large (``size`` 1), a
    loop over one compiled draw (vmapping its gathers and scatters was slower)."""
    parts = []
    run = jax.jit(fn) if size == 1 else jax.jit(jax.vmap(fn))
    for start in range(0, n, size):
        idx = np.minimum(np.arange(start, start + size), n - 1)
        if size == 1:
            idx = idx[0]
        args = ({k: jnp.asarray(v[idx]) for k, v in theta.items()},) + (() if keys is None else (keys[idx],))
        out = run(*args)
        if size == 1:
            out = jax.tree_util.tree_map(lambda a: a[None], out)
        parts.append(jax.tree_util.tree_map(lambda a: np.asarray(a)[: min(size, n - start)], out))
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}


def replicate(ev, gs, values, key) -> dict:
    """One replicated data set: categorical latents from the model given θ, then the data."""
    out = {}
    values = dict(values)
    for g, k in zip(gs, jax.random.split(key, max(len(gs), 1))):
        k_z, k_x = jax.random.split(k)
        z = None
        if g.latent is not None:
            z = P.sample_latent(ev, g, values, k_z)
            values[g.latent] = z
        for f, kf in zip(g.data_factors, jax.random.split(k_x, len(g.data_factors))):
            x = f.target
            prev = out.get(x, jnp.zeros(np.shape(ev.base[x]), dtype=np.asarray(ev.base[x]).dtype))
            out[x] = _sample_factor(ev, f, values, z, prev, kf)
    return out


def _sample_factor(ev, f, values, z, out, key):
    d, fam = f.definition, get_family(f.family)
    if f.enum and fam.support == "cat":
        table = _category_table(ev, f, values)
        if table is not None:  # draws by inverse CDF from a K × V table, never a row per cell
            return _place(d, ev, out, _draw_rows(ev, f, values, table, z, key))
    ctx = ev.context(d, (), values)
    given = {k for k, _ in d.args}
    args = {k: jnp.asarray(ctx.ev(v).value, dtype=float) for k, v in d.args}
    for group in fam.args.groups:
        if not any(g in given for g in group):
            name = next(g for g in group if g in fam.args.defaults)
            args[name] = jnp.asarray(fam.args.defaults[name], dtype=float)
    dist = fam.numpyro_dist(**args)
    if getattr(dist, "total_count_max", 0) is None:  # counts drawn under jit need a static bound: the data's
        dist.total_count_max = int(np.max(np.sum(np.asarray(ev.base[f.target]), axis=-1), initial=0))
    grid = tuple(stop - start for _, start, stop in ctx.loops)
    batch = tuple(dist.batch_shape)
    on_grid = len(batch) >= len(grid) and all(b in (1, g) for b, g in zip(batch, grid))
    draw = dist.expand(grid + (batch[len(grid):] if on_grid else batch)).sample(key)
    return _place(d, ev, out, draw, ctx)


def _category_table(ev, f, values):
    """The probabilities of a categorical factor read through one categorical latent, when
    they depend on the cell only through that latent (LDA's ``beta[z[i]]``): [K, V]."""
    d, fam = f.definition, get_family(f.family)
    ctx = ev.context(d, f.enum, values)
    given = {k for k, _ in d.args}
    args = {k: jnp.asarray(ctx.ev(v).value, dtype=float) for k, v in d.args}
    if not given or any(np.prod(np.shape(a)[:len(ctx.loops)]) != 1 for a in args.values()):
        return None
    probs = getattr(fam.numpyro_dist(**args), "probs", None)
    if probs is None or probs.ndim != len(ctx.loops) + 2:
        return None
    return jnp.reshape(probs, probs.shape[-2:])


def _draw_rows(ev, f, values, table, z, key):
    K, V = table.shape
    ctx = ev.context(f.definition, (), {**values, f.enum[0].block: z})
    zc = jnp.asarray(ctx.ev(f.enum[0].expr).value).astype(jnp.int32)
    grid = tuple(stop - start for _, start, stop in ctx.loops)
    zc = jnp.broadcast_to(zc, grid)
    cdf = jnp.cumsum(table, axis=-1)
    flat = jnp.ravel(cdf / cdf[:, -1:] + jnp.arange(K)[:, None])
    u = jax.random.uniform(key, grid)
    return jnp.clip(jnp.searchsorted(flat, u + zc) - zc * V, 0, V - 1)


def _place(d, ev, out, draw, ctx=None):
    if not d.indices:
        return draw
    ctx = ctx or ev.context(d, (), ev.base)
    return out.at[definition_index(d, ctx)].set(draw.astype(out.dtype))


def _cells(ev, g) -> int:
    """Grid cells × categories that one draw of the group evaluates."""
    n = 0
    for f in g.data_factors:
        ctx = ev.context(f.definition, (), ev.base)
        n += int(np.prod([stop - start for _, start, stop in ctx.loops] or [1]))
    return n * (ev.categories.get(g.latent, 1))


def _latent_nodes(fit) -> list[str]:
    out = []
    for b in fit.plan.blocks:
        out += [n for _, n in b.members] or [b.name]
    return out


def _block_of(fit, node) -> str:
    return next(b.name for b in fit.plan.blocks if node == b.name or node in (n for _, n in b.members))


def _dims(fit, groups, gs) -> dict:
    """Dims of every variable: its index axes named after the plates they run over."""
    model = fit.model
    out = {}
    for name in set().union(*(g.keys() for g in groups.values())):
        if name in model.nodes:
            out[name] = _node_dims(model, name)
    for g in gs:
        if g.latent is not None:
            out[g.name] = _node_dims(model, g.latent)
    return {k: v for k, v in out.items() if v}


def _node_dims(model, name) -> list[str]:
    node = model.nodes[name]
    if node.kind == "data" and node.type is not None and node.type.shape:
        if node.defs:
            rank = max(len(d.indices) for d in node.defs)
            return _unique([expr_to_text(s) for s in node.type.shape[:rank]])
        return []
    if not node.defs:
        return []
    rank = max(len(d.indices) for d in node.defs)
    dims = [None] * rank
    for d in node.defs:
        for axis, ix in enumerate(d.indices):
            lo = loop_offset(ix, d.loop_vars)
            if lo is not None and dims[axis] is None:
                lp = next(lp for lp in d.loops if lp.var == lo[0])
                dims[axis] = expr_to_text(lp.stop)
    return _unique([dm or f"{name}_dim_{i}" for i, dm in enumerate(dims)])


def _unique(dims):
    seen, out = set(), []
    for dm in dims:
        out.append(dm if dm not in seen else f"{dm}_{len(seen)}")
        seen.add(dm)
    return out


__all__ = ["to_arviz", "replicate"]
