"""Neural networks and amortised posteriors (docs/language.md, "Neural networks").

A network param ``param dec: mlp(tanh)[L, H, D]`` is a multilayer perceptron whose
weights are a pytree of named arrays, ``{"W0": [L, H], "b0": [H], "W1": [H, D], "b1": [D]}``:
an affine map per layer, the activation between layers, none after the last.  Weights
start from a seeded Glorot-normal draw (Glorot & Bengio 2010) with zero biases.

A factor that reads a network is not conjugate to anything, so networks are fitted by
gradient steps on a reparameterised Monte Carlo ELBO (Kingma & Welling 2014):

    ELBO(φ, θ) ≈ Σ_factors log p(… | z_s; θ) + Σ_j H[q_j],   z_s = m_φ(x) + σ_φ(x) ⊙ ε,

where an amortised latent ``q(z[n]) = enc(x[n])`` is a diagonal Normal whose location and
log-scale are the two halves of the encoder's output, ``ε ~ N(0, I)`` is drawn from the
state's key (one draw per sweep, shared by every update of that sweep), and the entropy
of the diagonal Normal is exact.  Conjugate blocks of the same model keep their
closed-form updates, with the amortised latents at their draw.  One Adam step (optax)
per sweep moves every network jointly.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..diagnostics import VemError
from .plates import definition_index

ACTIVATIONS = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "softplus": jax.nn.softplus,
    "sigmoid": jax.nn.sigmoid,
    "elu": jax.nn.elu,
}


def layer_sizes(node, sizes) -> tuple[int, ...]:
    """Concrete layer sizes of a network param under a binding's sizes."""
    from .bind import _size

    out = tuple(_size(e, sizes, node.name) for e in node.type.shape)
    if any(s is None or s < 1 for s in out):
        raise VemError("data", f"the layer sizes of network '{node.name}' are not all bound: {out}", node.span)
    return out


def init_mlp(rng: np.random.Generator, sizes) -> dict:
    """Glorot-normal weights ``W{i}`` (``[n_i, n_{i+1}]``) and zero biases ``b{i}``, drawn
    with NumPy (no XLA compilation for a one-off draw)."""
    out = {}
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        out[f"W{i}"] = jnp.asarray(rng.standard_normal((a, b)) * np.sqrt(2.0 / (a + b)))
        out[f"b{i}"] = jnp.zeros((b,))
    return out


def apply_mlp(weights: dict, x, activation: str):
    """The network on the last axis of ``x``."""
    act = ACTIVATIONS[activation]
    layers = len(weights) // 2
    h = x
    for i in range(layers):
        h = h @ weights[f"W{i}"] + weights[f"b{i}"]
        if i < layers - 1:
            h = act(h)
    return h


def check_weights(name, weights, sizes):
    """User-given weights (``fit(init=...)``, a loaded fit) must match the declared layers."""
    want = {**{f"W{i}": (a, b) for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))},
            **{f"b{i}": (b,) for i, b in enumerate(sizes[1:])}}
    if not isinstance(weights, dict) or set(weights) != set(want):
        got = sorted(weights) if isinstance(weights, dict) else type(weights).__name__
        raise VemError("data", f"the weights of network '{name}' must be a dict with keys {sorted(want)}; got {got}")
    out = {}
    for k, shape in want.items():
        v = jnp.asarray(weights[k], dtype=float)
        if v.shape != shape:
            raise VemError("data", f"weight {name}/{k} has shape {v.shape}; the declared layers give {shape}")
        out[k] = v
    return out


def call_network(ctx, e):
    """``net(arg)`` inside a factor's grid: the argument must be a known array (data, or an
    amortised latent at its draw); a latent with moments only has no value to feed."""
    node = ctx.model.nodes[e.func]
    arg = ctx.ev(e.args[0])
    if ctx.tracker is not None:
        ctx.tracker.flag(e.func, "a neural network: no conjugate update exists")
    if not arg.is_fixed:
        blocks = ", ".join(sorted(arg.deps))
        raise VemError(
            "unsupported",
            f"the network {e.func} reads '{blocks}', which has no amortised posterior",
            e.span,
            f"give it an encoder, as in q({blocks}[n]) = enc(x[n]) inside its plate",
        )
    return apply_mlp(ctx.params[e.func], jnp.asarray(arg.value, dtype=float), node.type.bound.id)


# ---- amortised posteriors ------------------------------------------------------------------
def encode(engine, j, params, data):
    """(loc, scale) of ``q(j)`` over the latent's whole array, from its encoder."""
    from .evaluate import _Context

    q = engine.model.nodes[j].amortised
    ctx = _Context(engine.model, q.loops, (), engine.bound.sizes, {**engine.consts, **data}, {}, params, None)
    out = jnp.asarray(ctx.ev(q.expr).value)
    event = event_shape(engine, j)
    full = engine.bound_shape(j) + event
    half = out.shape[-1] // 2
    loc, log_scale = out[..., :half], out[..., half:]
    if not event:  # a scalar element: the halves are one entry each
        loc, log_scale = loc[..., 0], log_scale[..., 0]
    idx = definition_index(q, ctx)
    loc_full = jnp.zeros(full).at[idx].set(loc) if idx else loc
    ls_full = jnp.zeros(full).at[idx].set(log_scale) if idx else log_scale
    return loc_full, jnp.exp(ls_full)


def event_shape(engine, j) -> tuple[int, ...]:
    """The shape of one element of an amortised latent (``[L]`` for ``z[n] ~ MvNormal``)."""
    q = engine.model.nodes[j].amortised
    out = []
    for s in engine.model.shapes[j][len(q.indices):]:
        v = s if isinstance(s, int) else engine.bound.sizes.get(s, engine.consts.get(s))
        if v is None:
            raise VemError("data", f"the size {s} of an element of '{j}' is not bound", q.span)
        out.append(int(np.asarray(v)))
    return tuple(out)


def block_from_encoder(fam, loc, scale):
    """Natural and mean parameters of a diagonal Normal in the block's family layout."""
    prec = 1.0 / scale**2
    if fam.name == "MvNormal":
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


def draws(engine, params, data, key) -> dict:
    """One reparameterised draw of every amortised latent: ``z = m + σ ⊙ ε``."""
    out = {}
    for i, j in enumerate(sorted(engine.amortised)):
        loc, scale = encode(engine, j, params, data)
        out[j] = loc + scale * jax.random.normal(jax.random.fold_in(key, i), loc.shape)
    return out


def refresh(engine, state, data):
    """The amortised blocks' q at the current encoder weights."""
    eta, mu = dict(state.eta), dict(state.mu)
    for j in engine.amortised:
        eta[j], mu[j] = block_from_encoder(engine.families[j], *encode(engine, j, state.params, data))
    return state._replace(eta=eta, mu=mu)


def optimizer(learning_rate):
    import optax

    return optax.adam(learning_rate)


def network_step(engine, state, data):
    """One Adam step of every network on the Monte Carlo ELBO at the state's draw;
    returns the new state and the ELBO estimate before the step (one forward pass)."""
    import optax

    nets = {k: state.params[k] for k in engine.networks}

    def loss(nets):
        s = refresh(engine, state._replace(params={**state.params, **nets}), data)
        return -engine.elbo(s, data)

    neg_elbo, grads = jax.value_and_grad(loss)(nets)
    updates, opt_state = optimizer(engine.learning_rate).update(grads, state.opt, nets)
    nets = optax.apply_updates(nets, updates)
    return refresh(engine, state._replace(params={**state.params, **nets}, opt=opt_state), data), -neg_elbo
