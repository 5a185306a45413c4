"""The variational posterior as NumPyro distributions, from the blocks' natural parameters.

``posterior_of`` builds each block's q by its family (``to_numpyro``, or ``marginals`` for the
members of a joint block); ``compiled_posterior`` builds them all in one compiled program, as
``Fit.posterior`` returns them.
"""

from __future__ import annotations

from ..engine.programs import ONE_SHOT
from ..families import get_family


def posterior_of(plan, eta: dict) -> dict:
    """q of every latent by name from the blocks' natural parameters (see ``Fit.posterior``),
    op by op."""
    out = {}
    for j, e in eta.items():
        b, fam = plan.block(j), get_family(plan.block(j).family)
        if b.members:
            marg = fam.marginals(e)
            out.update({node: marg[role] for role, node in b.members})
        else:
            out[j] = fam.to_numpyro(e)
    return out


def compiled_posterior(plan, eta: dict) -> dict:
    """``posterior_of`` built by one compiled program: NumPyro's distributions are pytrees, so a
    jitted function can return them.  Built op by op, each of the constructors' and mean maps'
    eager operations compiled a program of its own, and a 10k GMM's first ``fit.posterior``
    took 4.5 s, as long as the fit (issue #21's "a first result in seconds"); jitted, 0.5 s on
    the same loaded machine.  The state is valid by construction, so NumPyro's argument checks
    are skipped.  A distribution that keeps an array among its static fields (a Multinomial's
    ``total_count``) cannot leave a program, and a posterior that cannot be traced at all
    (a host-side mean map) is built eagerly, as before."""
    from numpyro.distributions.distribution import validation_enabled

    eager = []  # the blocks whose q cannot leave the program, found while it is traced

    def build(etas):
        out = {}
        with validation_enabled(False):
            for j, e in etas.items():
                block = posterior_of(plan, {j: e})
                if any(static_arrays(d) for d in block.values()):
                    eager.append(j)
                else:
                    out.update(block)
        return out

    try:
        out = posterior_program(build)(dict(eta))
    except Exception:  # noqa: BLE001 - not traceable: op by op
        return posterior_of(plan, eta)
    return {**out, **posterior_of(plan, {j: eta[j] for j in eager})}


def posterior_program(build):
    """``build`` (natural parameters ↦ NumPyro distributions) as one compiled program, at the
    options of a program run once (``engine/programs.ONE_SHOT``)."""
    import jax

    return jax.jit(build, compiler_options=ONE_SHOT)


def static_arrays(obj) -> bool:
    """Whether the pytree ``obj`` (a NumPyro distribution, its base distribution, its
    transforms) holds a traced array in its static (auxiliary) fields, where it would leak
    out of a jitted program instead of becoming an output."""
    import jax

    flatten = getattr(obj, "tree_flatten", None)
    if flatten is None:
        return False
    data, aux = flatten()
    if any(isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves(aux)):
        return True
    return any(static_arrays(x) for x in jax.tree_util.tree_leaves(
        data, is_leaf=lambda x: hasattr(x, "tree_flatten")) if hasattr(x, "tree_flatten"))


__all__ = ["compiled_posterior", "posterior_of"]
