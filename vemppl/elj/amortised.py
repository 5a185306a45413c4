"""Amortised posteriors: ``q(z[n]) = enc(x[n])``, a diagonal Normal whose location and
log-scale are the two halves of the encoder's output, entering the expected log joint at
one reparameterised draw ``z = m + σ ⊙ ε`` per sweep (Kingma & Welling 2014).

``joint`` below is anything with the expected log joint's binding (``model``, ``bound``,
``consts``, ``amortised``, ``bound_shape``): an :class:`~vemppl.elj.joint.Joint`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..diagnostics import VemError
from .evaluate import _Context, size_of
from .plates import definition_index


def encode(joint, j, params, data):
    """(loc, scale) of ``q(j)`` over the latent's whole array, from its encoder."""
    q = joint.model.nodes[j].amortised
    ctx = _Context(joint.model, q.loops, (), joint.bound.sizes, {**joint.consts, **data}, {}, params, None)
    out = jnp.asarray(ctx.ev(q.expr).value)
    event = event_shape(joint, j)
    full = joint.bound_shape(j) + event
    half = out.shape[-1] // 2
    loc, log_scale = out[..., :half], out[..., half:]
    if not event:  # a scalar element: the halves are one entry each
        loc, log_scale = loc[..., 0], log_scale[..., 0]
    idx = definition_index(q, ctx)
    loc_full = jnp.zeros(full).at[idx].set(loc) if idx else loc
    ls_full = jnp.zeros(full).at[idx].set(log_scale) if idx else log_scale
    return loc_full, jnp.exp(ls_full)


def event_shape(joint, j) -> tuple[int, ...]:
    """The shape of one element of an amortised latent (``[L]`` for ``z[n] ~ MvNormal``)."""
    q = joint.model.nodes[j].amortised
    out = []
    for s in joint.model.shapes[j][len(q.indices):]:
        v = s if isinstance(s, int) else joint.bound.sizes.get(s, joint.consts.get(s))
        if v is None:
            raise VemError("data", f"the size {s} of an element of '{j}' is not bound", q.span)
        out.append(int(np.asarray(v)))
    return tuple(out)


def block_from_encoder(fam, loc, scale):
    """Natural and mean parameters of a diagonal Normal in the block's family layout."""
    prec = 1.0 / scale**2
    if fam.event_rank:  # a vector element: the precision on the diagonal of a matrix
        diag = jnp.vectorize(jnp.diag, signature="(n)->(n,n)")
        eta = fam.Stats(prec * loc, -0.5 * diag(prec))
        mu = fam.Stats(loc, loc[..., :, None] * loc[..., None, :] + diag(scale**2))
        return eta, mu
    return fam.Stats(prec * loc, -0.5 * prec), fam.Stats(loc, loc**2 + scale**2)


def diagonal_entropy(eta):
    """H[q] of a diagonal Normal in either layout: Σ_i ½ log(2πe / λ_i), λ the precisions.

    Exact and free of LAPACK: jaxlib's batched triangular solve (``ParallelBatchMap``)
    was seen to deadlock on a [N, 10, 10] batch on a 2-core machine."""
    prec = -2.0 * (jnp.diagonal(eta.outer, axis1=-2, axis2=-1) if hasattr(eta, "outer") else eta.sq)
    return 0.5 * jnp.sum(jnp.log(2.0 * jnp.pi * jnp.e / prec), axis=-1 if hasattr(eta, "outer") else ())


def draws(joint, params, data, key) -> dict:
    """One reparameterised draw of every amortised latent: ``z = m + σ ⊙ ε``; without a
    ``key``, its mean ``m`` (a prior's natural parameters are read with the parents at their
    means, elj/prior.py, as a Gaussian chain's are beside an amortised latent)."""
    out = {}
    for i, j in enumerate(sorted(joint.amortised)):
        loc, scale = encode(joint, j, params, data)
        out[j] = loc if key is None else loc + scale * jax.random.normal(jax.random.fold_in(key, i), loc.shape)
    return out



def layer_sizes(node, sizes) -> tuple[int, ...]:
    """Concrete layer sizes of a network param under a binding's sizes."""
    out = tuple(size_of(e, sizes, node.name) for e in node.type.shape)
    if any(s is None or s < 1 for s in out):
        raise VemError("data", f"the layer sizes of network '{node.name}' are not all bound: {out}", node.span)
    return out



__all__ = ["block_from_encoder", "diagonal_entropy", "draws", "encode", "event_shape", "layer_sizes"]
