"""The exact posterior predictive density of new data under q, where it has a closed form.

For a block with ``q(θ) = h(θ) exp(⟨η, T(θ)⟩ − A(η))`` and a factor conjugate to it,
``log p(x | θ) = ⟨t(x), T(θ)⟩ + c(x)`` exactly, so

    ∫ p(x | θ) q(θ) dθ = exp(c(x) + A(η + t(x)) − A(η)),

and ``t(x) = ∇_{E[T]} E_q[log p(x | θ)]`` is the gradient the CAVI update already takes
(it is x's contribution to the block's natural parameters; ``c(x)`` is the factor at
``E[T] = 0``).  Factors that read different blocks multiply, blocks being independent
under q; a categorical local ``z_n`` read through a gate (``mu[z[n]]``) is summed over its
values, and its own factor ``z[n] ~ Categorical(pi)`` gives ``E[π_k]`` by the same formula
(the Dirichlet–Categorical predictive).  For the Bayesian GMM with a Normal–Wishart block
this is the Student-t mixture of Bishop PRML eq. 10.81, computed without writing it.

It applies when the data plate's units are independent given the globals
(``engine.dataplate``), every local block is a categorical with one element per unit,
and every factor of the new data reads at most one global block, linearly.  Otherwise
(e.g. a mean-field ``q(mu) q(Lam)``, whose factor reads two blocks: the integral of
``N(x | μ, Λ)`` under the product has no closed form) :class:`NotExact` says why, and
``predictive_density`` falls back to Monte Carlo.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from ..diagnostics import VemError
from ..elj import moments as M
from ..engine.dataplate import data_plate
from ..families import get_family
from ..ir.expr import Name
from ..plan import BlockStructure
from .local import _local_engine, local_blocks


class NotExact(Exception):
    """Why the predictive density of this model has no closed form under q."""


def exact_log_predictive(fit, data: dict, consts: dict | None = None, dims: dict | None = None,
                         batch_size: int = 64) -> np.ndarray:
    """log p(x_n | training data) under q for every unit n of ``data``; see the module docstring."""
    model, plan = fit.model, fit.plan
    try:
        plate = data_plate(model, plan, purpose="the exact predictive density")
    except VemError as exc:
        raise NotExact(exc.message) from None
    locals_ = set(plate.local_blocks)
    if locals_ != local_blocks(model, plan):
        raise NotExact("some latent is local to the data without being one element per unit of its plate")
    for j in locals_:
        b = plan.block(j)
        if (get_family(b.family).support != "cat" or b.structure is not BlockStructure.MEAN_FIELD
                or len(model.nodes[j].defs[0].indices) != 1):
            raise NotExact(f"q({b.label}) is a {b.family} [{b.structure_text}] local, not one categorical per unit, "
                           "so it cannot be summed out")
    n = _units(data, plate)
    _check_separable(model, plate.dim)
    rows = {k: np.asarray(data[k]) for k in plate.arrays if k in data}
    one = {k: (v[:1] if k in rows else v) for k, v in data.items()}
    engine, sub_plan, params, bound, globals_ = _local_engine(fit, one, False, consts,
                                                            {k: v for k, v in (dims or {}).items() if k != plate.dim})
    if bound.masks or any(np.isnan(v).any() for v in rows.values() if v.dtype.kind == "f"):  # any row's NaN
        raise NotExact("the new data has missing values (masks)")
    outside = [f.describe() for f in sub_plan.factors if not plate.is_inside(f)]
    if outside:
        raise NotExact(f"'{outside[0]}' lies outside the data plate")
    glob = {b.name: b for b in globals_}
    read = _read_globals(engine, sub_plan, params, glob)

    for j in read:  # a global sized by the plate (`f ~ MvNormal(zeros(N), K)`, read as `f[n]`)
        if _sized_by(model, [m for _, m in glob[j].members] or [j], plate.dim):
            raise NotExact(f"q({glob[j].label}) is sized by the plate's dim {plate.dim}, so the units read it "
                           "together, not one at a time")

    state = engine.init(jax.random.PRNGKey(0), params)
    sizes = [state.mu[j].onehot.shape[-1] for j in sub_plan.schedule]
    configs = {
        j: jnp.stack([jax.nn.one_hot(jnp.full((1,), c[i]), k) for c in itertools.product(*map(range, sizes))])
        for i, (j, k) in enumerate(zip(sub_plan.schedule, sizes))
    }
    fams = {j: get_family(glob[j].family) for j in read}
    etas = {j: jax.tree_util.tree_map(jnp.asarray, fit.state.eta[j]) for j in read}
    zeros = {j: jax.tree_util.tree_map(jnp.zeros_like, fit.state.mu[j]) for j in read}

    def log_joint(row, onehots):
        """log p(x_n, locals = config) = c + Σ_blocks A(η + t) − A(η)."""

        def expected(stats):
            extra = {}
            for j in read:
                extra.update(M.block_entries(glob[j], fams[j], stats[j], etas[j], matched=False))
            mu = {j: type(state.mu[j])(onehots[j]) for j in onehots}
            eta = {j: type(state.eta[j])(jnp.zeros_like(onehots[j])) for j in onehots}
            return engine.expected_log_joint(mu, eta, params, row, extra_blocks=extra)

        c, t = jax.value_and_grad(expected)(zeros)
        total = c
        for j in read:
            fam, eta = fams[j], etas[j]
            moved = fam.tidy_natural(type(eta)(*(a + b for a, b in zip(eta, t[j]))))
            total = total + jnp.sum(fam.log_normalizer(moved) - fam.log_normalizer(eta))
        return total

    @jax.jit
    def run(rows):
        def unit(row):
            if not configs:  # no local latents (a conjugate regression, a Gamma-Poisson): one term
                return log_joint(row, {})
            return logsumexp(jax.vmap(lambda oh: log_joint(row, oh))(configs))

        shared = {k: v for k, v in data.items() if k not in rows}  # arrays off the plate (a known covariance)
        return jax.lax.map(lambda r: unit({**shared, **r}), {k: v[:, None] for k, v in rows.items()},
                           batch_size=batch_size)

    out = np.asarray(run({k: jnp.asarray(v) for k, v in rows.items()}))
    assert out.shape == (n,)
    return out


def _units(data, plate) -> int:
    sizes = {np.shape(data[k])[0] for k in plate.arrays if k in data}
    if len(sizes) != 1:
        raise NotExact(f"the new data's arrays on the plate {plate.dim} have different lengths {sorted(sizes)}")
    return sizes.pop()


def _check_separable(model, dim: str) -> None:
    """A data array with the plate's dim on a later axis (a kernel matrix `K: real[N, N]`)
    couples the units: one unit's slice of it is not defined."""
    for node in model.of_kind("data"):
        if any(isinstance(s, Name) and s.id == dim for s in node.type.shape[1:]):
            raise NotExact(f"'{node.name}' has the plate's dim {dim} on a later axis, so the units are read together, "
                           "not one at a time")


def _sized_by(model, nodes, dim: str) -> bool:
    """Whether the definitions of ``nodes`` read the size ``dim``, directly (``zeros(N)``, a
    categorical over ``fill(1.0 / T, T)``) or through the nodes they read (``ModelGraph.upstream``:
    the IR's DAG of reads, not a second walk over the expressions), or read a data array or
    param declared with it."""
    def declared(node):
        return node.type is not None and any(isinstance(x, Name) and x.id == dim for x in node.type.shape)

    return any(name == dim or declared(model.nodes[name]) for name in model.upstream(nodes))


def _read_globals(engine, sub_plan, params, glob) -> list[str]:
    """The global blocks the new data's factors read; each factor must read at most one,
    linearly (a conjugate factor), or the integral over q has no closed form."""
    state = engine.init(jax.random.PRNGKey(0), params)
    read: list[str] = []
    for f in sub_plan.factors:
        tracker = M.Tracker()
        tracker.factor = f
        jax.eval_shape(
            lambda s: engine.expected_log_joint(s.mu, s.eta, s.params, engine.data, tracker, factors=(f,)), state
        )
        blocks = sorted(set(tracker.reads) & set(glob))
        if len(blocks) > 1:
            labels = ", ".join(f"q({glob[j].label})" for j in blocks)
            raise NotExact(
                f"'{f.describe()}' reads {labels}, independent under q: ∫ p(x | ·) Π q has no closed form "
                "(a joint block such as a Normal–Wishart would make it exact)"
            )
        bad = sorted(set(tracker.nonlinear) & set(glob))
        if bad:
            raise NotExact(f"'{f.describe()}' is not conjugate to q({glob[bad[0]].label}): "
                           f"{sorted(tracker.nonlinear[bad[0]])[0]}")
        read += [j for j in blocks if j not in read]
    return read


__all__ = ["NotExact", "exact_log_predictive"]
