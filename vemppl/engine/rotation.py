"""The rotation step: a linear reparameterisation of a bilinear pair that raises the ELBO.

For a pair found by ``compiler/rules/rotation.py`` (``dot(W[j], z[n])`` with multivariate Normal
``q(W[j])``, ``q(z[n])`` over the contracted axis), ``W → W R⁻¹, z → R z`` leaves every
factor that reads the product unchanged and keeps both q's multivariate Normal:

    q(z_n):  E[z] → R E[z],   E[zzᵀ] → R E[zzᵀ] Rᵀ,      η₁ → R⁻ᵀ η₁,  η₂ → R⁻ᵀ η₂ R⁻¹
    q(w_j):  E[w] → R⁻ᵀ E[w], E[wwᵀ] → R⁻ᵀ E[wwᵀ] R⁻¹,   η₁ → R η₁,    η₂ → R η₂ Rᵀ

So the ELBO as a function of R is the two blocks' own factors and entropies, plus the blocks
those factors read (an ARD precision), re-fitted by their CAVI update to the transformed
moments (Luttinen & Ilin 2010, §3; their q(α) optimal given W).  Mean-field CAVI moves along
this direction only by small coupled steps (each block's update given the other's current
orientation): VB-PCA with ARD switches an unused column off over thousands of sweeps.

``step`` maximises that function of R from R = I by ``ITERATIONS`` L-BFGS iterations (optax)
and returns the transformed state only when its value is above the value at R = I (exactly:
the other factors do not change), so the ELBO never decreases.  Every term is the engine's own
(``expected_log_joint``, ``block_entropy``, the CAVI target): nothing here is written per model.
A block of the pair whose own factor is the same for every row (``Rotation.summarised``) enters
through its rows' weighted mean alone (Luttinen & Ilin's Σ_n⟨z_n z_nᵀ⟩, Σ_j⟨w_j w_jᵀ⟩): R moves
one L-vector and one L×L matrix, broadcast to the rows, where it moved every row's, and the
L-BFGS loop carries R alone.  R⁻¹ and log|det R| are ``jnp.linalg``'s (one unbatched L×L LU:
not the batched calls whose thread-pool waits ``families/_linalg`` avoids).

Pure functions (``transform``, ``objective``, ``step``); ``Rotated`` is the host wrapper that
runs the jitted step before an engine's sweep (``engine/fit.py``) once ``ready``.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from ..elj.moments import block_entries
from .programs import ONE_SHOT, built_on_first_use

#: L-BFGS iterations per step (BayesPy's ``RotationOptimizer.rotate`` takes 10 by default).
ITERATIONS = 30
#: The L-BFGS iterations stop early at a step that raises the objective by at most this
#: fraction of it (or once the step has shrunk below it).
SETTLED = 1e-15
#: The steps start once a sweep changes the ELBO by at most this fraction of it, and then run
#: before every sweep.  Started at the first sweep, while the noise precision is still far below
#: its optimum, they switched off components the data support: standardised wine (L = 8) ended
#: with 3 components 30 nats below plain CAVI's 5, digits (L = 20) 3131 nats below; started
#: here (or at 1e-4) each reached the best optimum seen (docs/engine.md).
START = 1e-5
#: A step that gains at most this times ``tol`` of the ELBO is followed by sweeps without a step
#: (``Rotated``): the stopping rule's floor for a rise it reads no rate from (engine/loop.py).
NEGLIGIBLE = 1e-3
#: The factor a step shrinks by after a step that did not raise the objective (and grows by,
#: up to 1, after one that did).
SHRINK = 0.25


def transform(families, rot, state, r, ri):
    """``state`` with ``rot.scaled`` → ``W R⁻¹`` and ``rot.rotated`` → ``R z`` (module docstring);
    ``ri`` = R⁻¹."""
    w, z = rot.scaled, rot.rotated
    fw, fz = families[w], families[z]
    ew, mw, ez, mz = state.eta[w], state.mu[w], state.eta[z], state.mu[z]
    eta = {**state.eta,
           w: fw.Stats(ew.mean @ r.T, r @ ew.outer @ r.T),
           z: fz.Stats(ez.mean @ ri, ri.T @ ez.outer @ ri)}
    mu = {**state.mu,
          w: fw.Stats(mw.mean @ ri, ri.T @ mw.outer @ ri),
          z: fz.Stats(mz.mean @ r.T, r @ mz.outer @ r.T)}
    return state._replace(eta=eta, mu=mu)


def refit(engine, rot, state, extra=None):
    """``state`` with each of ``rot.refresh`` at its CAVI target (global closed-form blocks);
    ``extra``: table entries that replace blocks of ``state`` (``objective``'s pair)."""
    for j in rot.refresh:
        fam = engine.families[j]

        def value(mu_j, j=j, state=state):
            return engine.expected_log_joint({**state.mu, j: mu_j}, state.eta, state.params, engine.data,
                                             factors=engine._local(j), extra_blocks=extra, key=state.key)

        eta_j = fam.tidy_natural(fam.Stats(*jax.grad(value)(state.mu[j])))
        state = state._replace(eta={**state.eta, j: eta_j}, mu={**state.mu, j: fam.expected_stats(eta_j)})
    return state


def terms(engine, rot) -> tuple:
    """The factors whose value moves with R: those reading the pair or the refreshed blocks,
    less the bilinear factors (``rot.invariant``)."""
    reading = engine.factors_reading([rot.scaled, rot.rotated, *rot.refresh])
    skip = {id(engine.plan.factors[i]) for i in rot.invariant}
    return tuple(f for f in reading if id(f) not in skip)


def count(engine, state, j):
    """How many vectors block ``j`` holds, each merged or weighted row counted as often as it
    stands (``block_entropy`` of a unit entropy per vector)."""
    return engine.block_entropy(state, j, jnp.ones(state.mu[j].mean.shape[:-1], state.mu[j].mean.dtype))


def summary(engine, rot, state):
    """{block of the pair: the mean parameters the objective transforms}: for a block in
    ``rot.summarised``, its rows' mean weighted as ``block_entropy`` counts them (a merged row
    as often as it stands), one L-vector and one L×L matrix; for another, all its rows."""
    out = {}
    for j in (rot.scaled, rot.rotated):
        mu = state.mu[j]
        if j in rot.summarised:
            ones = jnp.ones(mu.mean.shape[:-1], mu.mean.dtype)
            w = jax.grad(lambda h, j=j: engine.block_entropy(state, j, h))(ones)  # each row's count
            mu = type(mu)(*(jnp.tensordot(w, x, axes=w.ndim) / jnp.sum(w) for x in mu))
        out[j] = mu
    return out


def objective(engine, rot, factors, counts, state, summ, r):
    """The ELBO's terms that move with R at ``R``, less a constant.  The pair's mean
    parameters are ``summ`` (``summary``) transformed and broadcast to their rows: a summarised
    block's factors are affine in each row with the rows' coefficients shared, so their sum
    over the rows at the rows' mean is their sum at the rows (module docstring of
    ``compiler/rules/rotation.py``), and so are the re-fitted blocks' targets.  The pair's
    entropies move by log|det R| per vector: ``+`` for each z_n, ``−`` for each w_j.  Each
    evaluation costs O(L³) and elementwise passes over the rows, not O(rows·L³)."""
    ri = jnp.linalg.inv(r)
    logdet = jnp.linalg.slogdet(r)[1]
    w, z = rot.scaled, rot.rotated
    moved = {w: (summ[w].mean @ ri, ri.T @ summ[w].outer @ ri), z: (summ[z].mean @ r.T, r @ summ[z].outer @ r.T)}
    # Their natural parameters are not carried along: the entries say so, and the factors read
    # the moments alone (not η, as a state's blocks may: elj/moments.py, Entry).
    extra = {}
    for j, (mean, outer) in moved.items():
        stats = engine.families[j].Stats(jnp.broadcast_to(mean, state.mu[j].mean.shape),
                                         jnp.broadcast_to(outer, state.mu[j].outer.shape))
        extra.update(block_entries(engine.plan.block(j), engine.families[j], stats, state.eta[j], matched=False))
    new = refit(engine, rot, state, extra)
    value = engine.expected_log_joint(new.mu, new.eta, new.params, engine.data, factors=factors,
                                      extra_blocks=extra, key=new.key)
    value = value + (counts[1] - counts[0]) * logdet
    for j in rot.refresh:
        value = value + engine.block_entropy(new, j)
    return value


def step(engine, rots, state):
    """(state, gain): each pair's step in turn, the state kept where its gain is not positive.

    The maximisation traces the objective and its gradient once: L-BFGS directions
    (``optax.scale_by_lbfgs``) from the best point so far, a step that does not raise the
    objective shrinking the next by ``SHRINK`` (its point is then not kept).  The first
    evaluation is at R = I, so the best point is never below the value at I.  The loop carries
    R alone; the state is transformed at the best R once, after it."""
    total = 0.0
    for rot in rots:
        factors = terms(engine, rot)
        counts = (count(engine, state, rot.scaled), count(engine, state, rot.rotated))
        summ = summary(engine, rot, state)
        eye = jnp.eye(state.mu[rot.rotated].mean.shape[-1], dtype=state.mu[rot.rotated].mean.dtype)

        def loss(r, rot=rot, factors=factors, counts=counts, summ=summ):
            return -objective(engine, rot, factors, counts, state, summ, r)

        value_and_grad = jax.value_and_grad(loss)
        import optax  # loaded with the first rotation traced: 35 ms of every fit's imports otherwise

        lbfgs = optax.scale_by_lbfgs()

        def body(carry, value_and_grad=value_and_grad, lbfgs=lbfgs):
            i, _, r, best_r, best_v, base, d, lr, memory = carry
            v, g = value_and_grad(r)
            better = jnp.isfinite(v) & (v <= best_v)
            d_new, memory_new = lbfgs.update(g, memory, r)
            pick = lambda a, b: jax.tree_util.tree_map(lambda x, y: jnp.where(better, x, y), a, b)  # noqa: E731
            # done: a step that raised the objective by at most SETTLED of it, or steps shrunk to nothing
            done = (better & (best_v - v <= SETTLED * jnp.abs(v))) | (lr < SETTLED)
            best_r, best_v = pick((r, v), (best_r, best_v))
            d, memory = pick((d_new, memory_new), (d, memory))
            lr = jnp.where(better, jnp.minimum(lr / SHRINK, 1.0), lr * SHRINK)
            base = jnp.where(jnp.isfinite(base), base, v)  # the value at R = I (the first evaluation)
            return i + 1, done, best_r - lr * d, best_r, best_v, base, d, lr, memory

        def going(carry):
            return (carry[0] < ITERATIONS) & ~carry[1]

        inf = jnp.asarray(jnp.inf, eye.dtype)
        start = (jnp.asarray(0), jnp.asarray(False), eye, eye, inf, inf, jnp.zeros_like(eye),
                 jnp.asarray(1.0, eye.dtype), lbfgs.init(eye))
        _, _, _, best_r, best_v, base, _, _, _ = jax.lax.while_loop(going, body, start)
        gain = base - best_v
        keep = jnp.isfinite(gain) & (gain > 0)
        new = refit(engine, rot, transform(engine.families, rot, state, best_r, jnp.linalg.inv(best_r)))
        state = jax.tree_util.tree_map(lambda a, b: jnp.where(keep, a, b), new, state)
        total = total + jnp.where(keep, gain, 0.0)
    return state, total


def ready(elbos) -> bool:
    """Whether the steps start: the last sweep changed the ELBO by at most ``START`` of it."""
    return len(elbos) >= 2 and abs(elbos[-1] - elbos[-2]) <= START * abs(elbos[-1])


class Rotated:
    """An engine's sweep preceded, once ``ready``, by the rotation step of ``rots``:
    ``__call__(state) -> (state, elbo)``; the step is jitted once per engine (shared by its
    restarts), and its first call's seconds, almost all compilation, count as compile time.

    A step that gains at most ``tol`` of the ELBO (less than the stopping rule reads as a
    change) is followed by sweeps without one, 1, 2, 4, ... after consecutive such steps; a step
    that gains more ends the back-off."""

    def __init__(self, sweep, engine, rots, tol=0.0):
        self.sweep, self.engine, self.rots, self.tol = sweep, engine, tuple(rots), tol
        self.elbos = []
        self.active = False
        self.skip = self.wait = 0
        self.steps = 0

    def _step(self, state):
        # ONE_SHOT: compiled in 1.5 s instead of 4.9 (digits, L = 20), and no slower per step
        return built_on_first_use(self.engine, "rotate",
                                  lambda: jax.jit(partial(step, self.engine, self.rots), compiler_options=ONE_SHOT))(state)

    def __call__(self, state):
        self.active = self.active or ready(self.elbos)
        if self.active and self.wait:
            self.wait -= 1
        elif self.active:
            state, gain = self._step(state)
            self.steps += 1
            if float(gain) <= NEGLIGIBLE * self.tol * abs(self.elbos[-1]):
                self.skip = max(1, 2 * self.skip)
                self.wait = self.skip
            else:
                self.skip = 0
        state, elbo = self.sweep(state)
        self.elbos = (self.elbos + [float(elbo)])[-2:]
        return state, elbo


__all__ = ["ITERATIONS", "NEGLIGIBLE", "START", "Rotated", "objective", "ready", "refit", "step", "summary", "terms", "transform"]
