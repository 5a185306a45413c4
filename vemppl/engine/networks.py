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

from ..elj.amortised import block_from_encoder, encode
from ..elj.networks import apply_mlp, init_mlp  # noqa: F401  (the public names of the networks' weights)


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
    import optax  # loaded with the first network fitted

    nets = {k: state.params[k] for k in engine.networks}

    def loss(nets):
        s = refresh(engine, state._replace(params={**state.params, **nets}), data)
        return -engine.elbo(s, data)

    neg_elbo, grads = jax.value_and_grad(loss)(nets)
    updates, opt_state = optimizer(engine.learning_rate).update(grads, state.opt, nets)
    nets = optax.apply_updates(nets, updates)
    return refresh(engine, state._replace(params={**state.params, **nets}, opt=opt_state), data), -neg_elbo

__all__ = ["apply_mlp", "init_mlp", "network_step", "optimizer", "refresh"]
