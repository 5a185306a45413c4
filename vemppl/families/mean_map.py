"""η as a differentiable function of the mean parameters μ.

A block's state holds both μ and η = (∇A)⁻¹(μ).  The expected log joint is differentiated in μ
(the natural-gradient message ∇_μ L, Khan & Lin 2017), but a moment that is not a sufficient
statistic (E[x²] of a Gamma) or a reparameterised draw is a function of η.  ``natural_at``
returns η in value and, in reverse mode, pulls a cotangent on η back to μ through
dη/dμ = F(η)⁻¹, F = ∇²A(η) the Fisher information of q (Amari 1998; Wainwright & Jordan 2008,
Prop. 3.1): so ∇_μ L sees every path from μ to L.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def natural_at(fam, mu, eta):
    """η, as a function of the mean parameters μ at the point (μ, η) with μ = ∇A(η): its value
    is ``eta`` and its derivative ``dη/dμ = F(η)⁻¹`` (F = ∇²A(η), per element)."""
    return eta


def _natural_fwd(fam, mu, eta):
    return eta, eta


def _natural_bwd(fam, eta, g):
    return _fisher_solve(fam, eta, g), jax.tree_util.tree_map(jnp.zeros_like, eta)


natural_at.defvjp(_natural_fwd, _natural_bwd)


def _fisher_solve(fam, eta, g):
    """F(η)⁻¹ g per element, F = dμ/dη the Jacobian of ``expected_stats`` (the Fisher
    information of q), built by forward-mode autodiff on one element and vmapped."""
    n = len(fam.Stats._fields)
    fields, grads = tuple(eta)[:n], tuple(g)[:n]
    extra = tuple(eta)[n:]  # fixed fields riding along (none for the continuous families)
    r0 = fam.stat_ranks[0]
    batch = fields[0].shape[: fields[0].ndim - r0]
    count = math.prod(batch)
    shapes = [f.shape[len(batch):] for f in fields]
    sizes = [math.prod(s) for s in shapes]
    if count == 0:  # a view of no elements (a factor over an empty loop, range(2, N) at N = 2)
        return fam.Stats(*(jnp.zeros(batch + s) for s in shapes))

    def flat(arrs):
        return jnp.concatenate([jnp.reshape(jnp.broadcast_to(a, batch + s), (count, -1)) for a, s in zip(arrs, shapes)],
                               axis=-1)

    def split(v):
        out, at = [], 0
        for s, k in zip(shapes, sizes):
            out.append(jnp.reshape(v[..., at:at + k], v.shape[:-1] + s))
            at += k
        return out

    def mu_of(v, *rest):
        e = type(eta)(*split(v), *rest)
        return jnp.concatenate([jnp.reshape(a, (-1,)) for a in fam.expected_stats(e)])

    rest = [jnp.reshape(jnp.broadcast_to(x, batch + x.shape[len(batch):]), (count,) + x.shape[len(batch):])
            for x in extra]
    jac = jax.vmap(jax.jacfwd(mu_of))(flat(fields), *rest)
    x = jnp.linalg.solve(jac, flat(grads)[..., None])[..., 0]
    return fam.Stats(*(jnp.reshape(p, batch + s) for p, s in zip(split(x), shapes)))


__all__ = ["natural_at"]
