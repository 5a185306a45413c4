"""Every block at its prior, and the point parameters' starting values.

A block's prior natural parameters are those of its own factors with every parent at its
mean (for a joint block, the gradient of its members' factors at zero statistics, which
is exact because they are affine in its statistics).  The engine starts from these
(``engine/init.py`` then seeds the categorical blocks from the data), and the compiler's
conjugacy test traces the expected log joint at them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..diagnostics import VemError
from ..families import get_family
from ..families._linalg import chol as cholesky, sharpened_gaussian_draw, within_unit_spread
from ..ir.expr import Index, Name
from ..ir.shapes import infer
from ..plan import BlockStructure, Init, Update
from . import moments as M
from .amortised import layer_sizes
from .evaluate import _Context, eval_fixed, size_of
from .general import at_means
from .networks import check_weights, init_mlp
from .plates import definition_index


def initial_params(joint, key, init=None) -> dict:
    """User ``init`` > the model's initialiser (a scalar fills the shape) > a default."""
    init = dict(init or {})
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel()[-1])
    out = {}
    for i, node in enumerate(joint.model.of_kind("param")):
        t = node.type
        if t.is_network:
            sizes = layer_sizes(node, joint.bound.sizes)
            seed = np.asarray(jax.random.key_data(key)).ravel().tolist()
            w = init[node.name] if node.name in init else init_mlp(np.random.default_rng(seed + [i]), sizes)
            out[node.name] = check_weights(node.name, w, sizes)
            continue
        shape = tuple(size_of(e, joint.bound.sizes, node.name) for e in t.shape)
        if t.base == "spd":
            shape = shape + shape[-1:]
        if node.name in init:
            v = np.asarray(init[node.name], dtype=float)
            if v.shape != shape:
                try:
                    v = np.broadcast_to(v, shape).copy()
                except ValueError:
                    raise VemError(
                        "data", f"init for '{node.name}' has shape {v.shape}; the parameter has shape {shape}"
                    ) from None
        elif node.value is not None:
            v = np.broadcast_to(np.asarray(eval_fixed(node.value, joint.bound.sizes, joint.consts), float), shape).copy()
        else:
            v = default_init(t.base, shape, rng)
        if node.name in init or node.value is not None:
            _check_start(node, v, given=node.name in init)
        out[node.name] = jnp.asarray(v)
    return out


_SUPPORT_WORDS = {"real": "finite", "pos": "positive", "unit": "in (0, 1)",
                  "simplex": "a probability vector (entries >= 0 summing to 1 along the last axis)",
                  "spd": "symmetric positive definite"}


def _check_start(node, v, given: bool):
    """A param's start inside its type's support: the M-steps move it within the support (the log
    of a ``pos``), so a start outside it (``param s: pos = -2.0``, ``init={"w": 0.5}`` for a
    ``simplex[3]``) gave a non-finite first sweep blamed on the data, or was kept unread."""
    base = node.type.base
    fin = np.isfinite(v)
    bad = ~fin
    if base == "pos":
        bad |= fin & ~(v > 0)
    elif base == "unit":
        bad |= fin & ~((v > 0) & (v < 1))
    elif base == "simplex":
        rows = np.broadcast_to(np.abs(v.sum(-1, keepdims=True) - 1.0) > 1e-6, v.shape)
        bad |= fin & ((v < 0) | rows)
    elif base == "spd" and fin.all():
        sym = np.allclose(v, np.swapaxes(v, -1, -2))
        pd = sym and bool(np.all(np.linalg.eigvalsh(v) > 0))
        bad |= not pd
    if not bad.any():
        return
    at = tuple(int(i) for i in np.argwhere(bad)[0])
    def where(ix):
        return f" at index {ix}" if ix else ""
    shown = (f"{v[at]:g}{where(at)}" if base != "simplex" or not np.isfinite(v[at]) or v[at] < 0
             else f"a row summing to {v[at[:-1]].sum():g}{where(at[:-1])}")
    if base == "spd":
        shown = "a matrix that is not" + (" symmetric" if not np.allclose(v, np.swapaxes(v, -1, -2)) else " positive definite")
    what = f"init for '{node.name}'" if given else f"the initial value of param '{node.name}'"
    raise VemError("data" if given else "support",
                   f"{what} must be {_SUPPORT_WORDS.get(base, 'finite')} (type {base}); got {shown}",
                   None if given else node.span,
                   "a scalar fills every entry: give the whole value, as fill(1.0 / K, K) or eye(D)"
                   if base in ("simplex", "spd") else None)


def prior_blocks(joint, params, key, data):
    """Every block but the chains at its prior given its parents' means (Gaussians moved
    off their symmetric start, see ``jitter_gaussian`` and ``families._linalg.sharpened_gaussian_draw``;
    a natural-gradient Gaussian first cut to unit spread, ``families._linalg.within_unit_spread``)."""
    eta, mu = {}, {}
    # Names are declared before use, so declaration order reaches parents first.
    for j in [n for n in joint.model.nodes if n in joint.families]:
        if joint.plan.block(j).structure is BlockStructure.MARKOV_CHAIN:
            # Seeded apart (engine/init.py); until then a uniform, independent chain, so a later
            # block whose prior it gates (a switching Gaussian chain's precision q[s[t]]) can
            # read its one-hot means.
            k = num_categories(joint, j, mu, eta, params)
            eta[j], mu[j] = chain_stats(joint.families[j], jnp.full(joint.bound_shape(j) + (k,), 1.0 / k), 0.0)
            continue
        eta[j] = prior_natural(joint, j, mu, eta, params, data)
        if joint.families[j].gaussian:
            if joint.plan.block(j).update is Update.NATURAL_GRADIENT:
                eta[j] = within_unit_spread(eta[j])  # and so its jitter below
            key, sub = jax.random.split(key)
            draw = joint.plan.block(j).init is Init.PRIOR_DRAW
            eta[j] = sharpened_gaussian_draw(eta[j], sub) if draw else jitter_gaussian(eta[j], sub)
        # A prior read off constants alone is a constant to XLA, which would fold its
        # statistics at compile time (a softmax over every unit: > 1 s at N = 30k).
        eta[j] = jax.lax.optimization_barrier(eta[j])
        mu[j] = joint.families[j].expected_stats(eta[j])
    return eta, mu


def prior_natural(joint, j, mu, eta, params, data=None):
    """Natural parameters of the block's own factors with parents at their means."""
    b = joint.plan.block(j)
    if b.members or b.structure is BlockStructure.GAUSSIAN_CHAIN:
        return _joint_prior_natural(joint, j, mu, eta, params, data)
    node = joint.model.nodes[j]
    fam = get_family(node.defs[0].dist)
    if fam.Stats is not joint.families[j].Stats:  # a joint block over scalar elements
        e = _prior_natural_of(joint, j, fam, node, mu, eta, params, data)
        if isinstance(e, joint.families[j].Stats):  # a mixture prior, taken in the block's own statistics
            return e
        diag = jnp.vectorize(jnp.diag, signature="(n)->(n,n)")
        return joint.families[j].Stats(e.mean, diag(e.sq))
    return _prior_natural_of(joint, j, fam, node, mu, eta, params, data)


def _joint_prior_natural(joint, j, mu, eta, params, data=None):
    """A joint block's prior (Normal–Wishart: Bishop's m₀, β₀, W₀, ν₀): the gradient of
    its members' own factors, which are affine in its statistics, at zero statistics."""
    b, fam = joint.plan.block(j), joint.families[j]
    own = {node for _, node in b.members} or {j}  # a chain: its own steps' factors
    events = {}
    for role, node in b.members or (("value", j),):  # a chain: the event of one step
        rank = len(joint.model.nodes[node].defs[0].indices)
        sizes = [s if isinstance(s, int) else joint.bound.sizes.get(s, joint.consts.get(s)) for s in joint.model.shapes[node][rank:]]
        events[role] = tuple(int(np.asarray(s)) for s in sizes)
    if hasattr(fam, "zero_stats"):
        zero = fam.zero_stats(joint.bound_shape(j), events)
    else:  # one family's block (a mixture prior): its statistics' shapes from their ranks
        lead, ev = joint.bound_shape(j), events["value"][:1]
        if get_family(joint.model.nodes[j].defs[0].dist).Stats is not fam.Stats:
            # scalar elements joined into one vector block (`w[j] ~ Normal` read by `dot(X[n], w)`):
            # the last plate axis is the block's event, as in prior_natural's diag
            lead, ev = lead[:-1], lead[-1:]
        elif not ev and max(fam.stat_ranks) > fam.event_rank:  # a one-hot: the probabilities' last size
            d = joint.model.nodes[j].defs[0]
            k = infer(d.args[0][1], joint.model.shapes, d.loop_vars)[-1]
            ev = (int(np.asarray(k if isinstance(k, int) else joint.bound.sizes.get(k, joint.consts.get(k)))),)
        zero = fam.Stats(*[jnp.zeros(lead + ev * r) for r in fam.stat_ranks])
    factors = tuple(f for f in joint.plan.factors if f.target in own)

    def L(stats):
        return joint.expected_log_joint({**mu, j: stats}, {**eta, j: zero}, params,
                                       joint.data if data is None else data, factors=factors)

    return fam.tidy_natural(fam.Stats(*jax.grad(L)(zero)))


def _prior_natural_of(joint, j, fam, node, mu, eta, params, data=None):
    data = joint.data if data is None else data
    full = None
    blocks = joint._table(mu, eta)
    blocks.update(joint.fixed_blocks)
    for d in node.defs:
        factor = next(f for f in joint.plan.factors if f.target == j and f.definition is d)
        enum = tuple(r for r in factor.enum if r.block != j)
        if enum:  # a mixture prior (theta[j] ~ Normal(mu[c[j]], ...)): its factors at the gates' means
            return _joint_prior_natural(joint, j, mu, eta, params, data)
        ctx = _Context(joint.model, d.loops, (), joint.bound.sizes, {**joint.consts, **data}, blocks, params, None)
        args = {}
        for k, e in d.args:
            src = None
            try:
                src = ctx.ev(e)
                args[k] = jnp.asarray(src.mean) if not src.is_fixed else jnp.asarray(src.value, dtype=float)
            except (M.NoMoment, M.NotFixed) as exc:
                # A nonlinear function of latents with no closed-form mean (sum(exp(w))): the
                # start reads it at its latents' means, a plug-in value; the fit's factor is
                # then the general path's (elj/general.py).
                args[k] = None if src is None else at_means(src)
                if args[k] is None:  # located here: no factor is being read yet
                    raise VemError("unsupported", f"{exc} in the prior '{factor.describe()}'", d.span) from None
        e_d = fam.natural_from_params(**args)
        grid = tuple(stop - start for _, start, stop in ctx.loops)
        # Natural parameters past the statistics (a Binomial's fixed total_count) are per element.
        ranks = tuple(fam.stat_ranks) + (0,) * (len(e_d) - len(fam.stat_ranks))
        e_d = type(e_d)(*[_broadcast_to_grid(x, grid, rank) for x, rank in zip(e_d, ranks)])
        if full is None:
            shape = joint.bound_shape(j)
            full = type(e_d)(*[jnp.zeros(shape + x.shape[len(grid):]) for x in e_d])
        idx = definition_index(d, ctx)
        full = type(e_d)(*[f.at[idx].set(x) if idx else x for f, x in zip(full, e_d)])
    return full


def num_categories(joint, j, mu, eta, params) -> int:
    """K of a categorical node, from the probabilities of a definition not reading itself."""
    blocks = joint._table(mu, eta)
    blocks.update(joint.fixed_blocks)
    for d in joint.model.nodes[j].defs:
        factor = next(f for f in joint.plan.factors if f.target == j and f.definition is d)
        if any(r.block == j for r in factor.enum if r.expr != _own_ref(j, d)):
            continue
        # K is the probabilities' last size: from their shape where the IR knows it, since a
        # random argument need not offer a mean (softmax(u) of Gamma latents, a Monte Carlo factor).
        shape = infer(d.args[0][1], joint.model.shapes, d.loop_vars)
        k = shape[-1] if shape else None
        k = joint.bound.sizes.get(k, joint.consts.get(k)) if isinstance(k, str) else k
        if k is not None and np.ndim(k) == 0:
            return int(np.asarray(k))
        ctx = _Context(joint.model, d.loops, (), joint.bound.sizes, {**joint.consts, **joint.data}, blocks, params, None)
        src = ctx.ev(d.args[0][1])
        return int((src.value if src.is_fixed else src.mean).shape[-1])
    # Every statement of j reads an earlier element of j (z[t] ~ Categorical(A[z[t-1]]) alone):
    # the chain has no first step, whose probabilities would give K.
    defs = joint.model.nodes[j].defs
    lines = ", ".join(f"line {d.span.line}" for d in defs if d.span is not None)
    raise VemError(
        "shape",
        f"no statement defines the first step of '{j}': each of its statements ({lines}) reads an earlier "
        f"element of '{j}', so none gives its first step or its number of categories",
        defs[0].span if defs else joint.model.nodes[j].span,
        f"add a statement for the first step, as {j}[0] ~ Categorical(pi0) beside {j}[t] for t in range(1, T)",
    )


def default_init(type_base: str, shape: tuple, rng: np.random.Generator, scale: float = 1.0):
    """A parameter's starting value when the model and the user give none.

    real: small random values (a zero loading matrix is a saddle point of factor
    analysis); pos: 1; unit: 1/2; simplex: uniform; spd: identity.
    """
    if type_base == "real":
        return 0.1 * scale * rng.standard_normal(shape)
    if type_base == "pos":
        return np.ones(shape)
    if type_base == "unit":
        return np.full(shape, 0.5)
    if type_base == "simplex":
        return np.full(shape, 1.0 / shape[-1])
    if type_base == "spd":
        return np.broadcast_to(np.eye(shape[-1]), shape).copy()
    return np.zeros(shape)


def chain_stats(fam, r, rho):
    """A chain at marginals r with persistence ρ: zero pairwise potentials and
    q(z_{t−1}, z_t) = ρ diag(r_{t−1}) + (1 − ρ) r_{t−1} r_tᵀ (summed over t for a chain with
    tied transitions), so the first update of the transitions sees the data's persistence
    (``_persistence``); ρ = 0 is the independent start."""
    r = jnp.asarray(r)  # a NumPy float64 start: in float32 (VEMPPL_X64=0) a float64 request JAX warns of
    stay = r[..., :-1, :, None] * jnp.eye(r.shape[-1], dtype=r.dtype)
    pair = rho * stay + (1.0 - rho) * r[..., :-1, :, None] * r[..., 1:, None, :]
    if fam.tied_pairs:
        pair = jnp.sum(pair, axis=-3)
    return fam.Stats(jnp.log(r), jnp.zeros_like(pair)), fam.Stats(r, pair)


def jitter_gaussian(eta, key, scale=0.1):
    """Move a Gaussian's mean by ``scale`` prior standard deviations in a random direction.

    A prior mean of zero shared by every element is a symmetric saddle of models such as
    PCA (W = 0, E[z] = 0 is a fixed point of CAVI); a small random offset breaks the tie.
    With Λ = L Lᵀ, the mean m + scale·L⁻ᵀε has natural parameter η₁ + scale·Lε.
    """
    if eta.mean.shape == eta.sq.shape if hasattr(eta, "sq") else False:
        eps = jax.random.normal(key, eta.mean.shape)
        return eta._replace(mean=eta.mean + scale * jnp.sqrt(-2.0 * eta.sq) * eps)
    lam = -2.0 * eta.outer
    chol = cholesky(0.5 * (lam + jnp.swapaxes(lam, -1, -2)))
    eps = jax.random.normal(key, eta.mean.shape)
    return eta._replace(mean=eta.mean + scale * jnp.einsum("...ij,...j->...i", chol, eps))


def _own_ref(j, d):
    return Index(Name(j), d.indices) if d.indices else Name(j)


def _broadcast_to_grid(x, grid, rank):
    event = x.shape[x.ndim - rank :] if rank else ()
    lead = x.shape[: x.ndim - rank]
    lead = (1,) * (len(grid) - len(lead)) + lead if len(lead) < len(grid) else lead
    return jnp.broadcast_to(jnp.reshape(x, lead + event), tuple(grid) + event)


__all__ = ["chain_stats", "default_init", "initial_params", "jitter_gaussian", "num_categories", "prior_blocks", "prior_natural"]
