"""Guards around the sweep: natural-gradient targets and starts that are not finite, and sweeps
whose ELBO cannot be taken as it is.

``sharpened_where_not_finite`` stands a narrowed q_j in for a target with a non-finite element
(the damped step, engine/cavi.py); ``sharpened_start`` narrows every natural-gradient block of a
start from which the first sweep's ELBO is not finite (engine/fit.py); ``guarded_sweep`` keeps a
sweep from restarted locals only where it does not lower the ELBO, reruns a sweep whose
exp-domain passes were not exact, and re-evaluates an ELBO the sweep could not trust
(docs/engine.md, Non-conjugate factors and Local/global schedules).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ..plan import Update


#: How much sharper than q_j the stand-in for a non-finite target is (``sharpened_where_not_finite``).
SHARPEN = 100.0


def sharpened_where_not_finite(fam, eta, target):
    """The natural-gradient target, or, where any of it is not finite, q_j sharpened by
    ``SHARPEN`` (``ExpFamily.sharpened``, the family's own rule: c·η for a Normal, its precision
    times c at the same mean; a Gamma's shape and rate times c, where c·η would leave the domain
    at a shape below 1).  The steps (1−ρ)η + ρ·sharpened(η) are then q_j sharpened by
    1 + ρ(c − 1) = 100, 50.5, …, ≈2.5, as the damped step's line search tries them.  A wide q
    under a nonlinear link (a scale exp(b + w·x) with
    prior sd 3 on b and w: E[exp(−2(b + w·x))] ~ e^300) has a finite ELBO whose gradient
    overflows; the ELBO rises as q narrows, and a few sweeps later the target is finite and
    the ordinary step takes over.  Each candidate is still accepted only where the ELBO does
    not fall, so the ELBO stays monotone; where none is, q_j stays and the fit says so
    (``stuck_blocks``)."""
    ok = jnp.all(jnp.asarray([jnp.all(jnp.isfinite(t)) for t in jax.tree_util.tree_leaves(target)]))
    return jax.tree_util.tree_map(lambda t, e: jnp.where(ok, t, e), target, fam.sharpened(eta, SHARPEN))


#: How many times a start whose first sweep's ELBO is not finite is sharpened (``sharpened_start``).
NARROWINGS = 4


def sharpened_start(engine, state):
    """``state`` with every natural-gradient block sharpened by ``SHARPEN`` (``ExpFamily.sharpened``:
    a Normal's precision times 100 at the same mean, a Gamma's shape and rate times 100), for a
    start from which the first sweep's ELBO is not finite (``engine/fit.py``); None where no block takes natural-gradient steps.  A prior start
    of sd 30 under exp(b + w·x) makes E[log p] nan at every block, so no line search can compare
    a step with it; each sharpening divides the spread of such an argument by 10."""
    blocks = [j for j in state.eta if engine.plan.block(j).update is not Update.CAVI and j not in engine.amortised]
    if not blocks:
        return None
    eta, mu = dict(state.eta), dict(state.mu)
    for j in blocks:
        fam = engine.families[j]
        eta[j] = fam.tidy_natural(fam.sharpened(state.eta[j], SHARPEN))
        mu[j] = fam.expected_stats(eta[j])
    return state._replace(eta=eta, mu=mu)


def guarded_sweep(jitted, engine, state, data, exact=None):
    """``jitted(state, data, restart=...)``'s sweep, guarded: a sweep from restarted locals
    may end in a lower optimum than the carried ones, and one that ends below the last
    sweep's ELBO is replaced by the carried sweep from the same state, a CAVI step, so the
    ELBO never decreases (``engine/schedule.py``).  The test is on the host, where the
    fit's loop reads the ELBO anyway.

    ``exact``: the same sweep without the exp-domain local passes (engine/factored.py), run
    in place of a sweep of ``jitted`` whose ELBO is NaN (a pass that was not exact there)."""
    if exact is not None:
        jitted = _or_exact(jitted, exact)
    jitted = _rescored(jitted, engine)
    schedule = engine.local_global
    if schedule is None or not schedule.local_restart:
        return jitted(state, data)
    # The flag as an array, so both kinds of sweep are one program (engine/schedule.py).
    if not engine.restarting(state):
        return jitted(state, data, restart=jnp.asarray(False))
    new, elbo = jitted(state, data, restart=jnp.asarray(True))
    # The floor is the ELBO the last sweep returned (the trace's last value; -inf before the
    # first), not a re-evaluation at the state: one ELBO pass less per restarted sweep.
    if state.elbo is None or float(elbo) >= float(state.elbo):
        return new, elbo
    return jitted(state, data, restart=jnp.asarray(False))


def _rescored(jitted, engine):
    """The sweep, its ELBO evaluated at the new state where the sweep's own is NaN (an
    extrapolated value the sweep could not trust, ``_update_block``; a state that is not finite
    stays NaN)."""
    def sweep(state, data, **kw):
        new, elbo = jitted(state, data, **kw)
        if math.isnan(float(elbo)):
            elbo = engine.elbo_program()(new, data)
            if new.sweeps is not None:  # the restarting schedule's floor
                new = new._replace(elbo=elbo)
        return new, elbo
    return sweep


def _or_exact(jitted, exact):
    def sweep(state, data, **kw):
        new, elbo = jitted(state, data, **kw)
        if math.isnan(float(elbo)):
            return exact(state, data, **kw)
        return new, elbo
    return sweep


__all__ = ["NARROWINGS", "SHARPEN", "guarded_sweep", "sharpened_start", "sharpened_where_not_finite"]
