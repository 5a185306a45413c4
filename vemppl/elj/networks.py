"""Neural networks: their weights and their forward pass inside a factor (docs/language.md, "Neural networks").

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

The amortised posteriors' draws are in ``elj/amortised.py``; the Adam step of the
networks is the engine's (``engine/networks.py``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..diagnostics import VemError
from .moments import NotFixed

ACTIVATIONS = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "softplus": jax.nn.softplus,
    "sigmoid": jax.nn.sigmoid,
    "elu": jax.nn.elu,
}


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
    """``net(arg)`` inside a factor's grid: the argument must be a known array (data, a point
    param, or an amortised latent at its draw); a latent with moments only has no value to feed."""
    node = ctx.model.nodes[e.func]
    arg = ctx.ev(e.args[0])
    if ctx.tracker is not None:
        ctx.tracker.flag(e.func, "a neural network: no conjugate update exists")
    try:  # a point param is a fixed value to the fit (to the compiler's probe, a point read)
        value = arg.value if arg.is_fixed else arg.point
    except NotFixed:
        blocks = ", ".join(sorted(arg.deps))
        raise VemError(
            "unsupported",
            f"the network {e.func} reads '{blocks}', which has no amortised posterior",
            e.span,
            f"give it an encoder, as in q({blocks}[n]) = enc(x[n]) inside its plate",
        )
    return apply_mlp(ctx.params[e.func], jnp.asarray(value, dtype=float), node.type.bound.id)



__all__ = ["ACTIVATIONS", "apply_mlp", "call_network", "check_weights", "init_mlp"]
