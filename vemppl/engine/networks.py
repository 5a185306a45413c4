"""The Adam step of networks and amortised posteriors on a reparameterised Monte Carlo ELBO.

The math (the networks' weights, their forward pass, the Monte Carlo ELBO and the amortised
latents' draws) is stated once, in ``elj/networks.py`` and ``elj/amortised.py``; this module
takes the optimiser's step on it.
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

    nets = {k: state.params[k] for k in engine.trained}

    def loss(nets):
        s = refresh(engine, state._replace(params={**state.params, **nets}), data)
        return -engine.elbo(s, data)

    neg_elbo, grads = jax.value_and_grad(loss)(nets)
    updates, opt_state = optimizer(engine.learning_rate).update(grads, state.opt, nets)
    nets = optax.apply_updates(nets, updates)
    return refresh(engine, state._replace(params={**state.params, **nets}, opt=opt_state), data), -neg_elbo

__all__ = ["apply_mlp", "init_mlp", "network_step", "optimizer", "refresh"]
