"""A guarded squared extrapolation of the CAVI sweep, taken where the ELBO trace shows slow linear convergence.

Mean-field CAVI is a fixed-point iteration ``x ← F(x)`` on the blocks' natural parameters.
Where blocks are strongly coupled in the posterior (crossed random effects, a location read
beside many offsets, correlated coefficients in separate blocks) ``F``'s Jacobian at the
optimum has an eigenvalue near 1, the iteration converges linearly at that rate, and the
ELBO's change per sweep shrinks by a constant ratio near 1: hundreds of sweeps, or a stop
on ``max_iter``, or a stop on ``tol`` far from the optimum.

SQUAREM (Varadhan & Roland 2008, "Simple and globally convergent methods for accelerating
the convergence of any EM algorithm", Scand. J. Statist. 35, scheme S3) extrapolates from
two consecutive sweeps ``x0 → x1 = F(x0) → x2 = F(x1)``:

    r = x1 − x0,   v = x2 − 2 x1 + x0,   α = −‖r‖ / ‖v‖  (α ≤ −1),
    x' = x0 − 2α r + α² v,

which with α = −1 is ``x2`` itself and otherwise cancels the slow mode's geometric tail
(for a linear map with one slow eigenvalue λ, α = −1/(1−λ) lands on the fixed point).
|α| is capped as in SQUAREM's ``step.max`` (Du & Varadhan 2020): at ``STEP_MAX0`` first, times
``STEP_GROWTH`` after each kept try that reached the cap and divided by it after a refused one.
Here ``x`` is every block's natural parameter η and every point param in the
unconstrained space its gradient M-step moves in (``biject_to`` of its type), and the extrapolated point is never returned as is:
the fit takes the sweep ``F(x')`` (SQUAREM's stabilising step), and keeps it only if

* every block's ``x'`` is in its family's natural domain (``ExpFamily.in_domain``) with
  finite mean parameters; outside, α is pulled toward −1 (α ← (α − 1)/2, Varadhan &
  Roland's backtracking) a few times, then the step is not tried; and
* ``ELBO(F(x')) ≥ ELBO(x2) + ρ·(ELBO(x2) − ELBO(x1))``, at least what the plain sweep
  from ``x2`` was to gain were the trace's ratio ``ρ`` to hold (Salakhutdinov & Roweis
  2003, "Adaptive overrelaxed bound optimization methods", ICML: accept an over-relaxed
  step only when the bound rises; here, only when it beats the plain step's forecast).

Otherwise the plain sweep ``F(x2)`` is taken: the ELBO trace is that of a sequence of states
each of which has an ELBO not below its predecessor's, so it never decreases (the guard),
and a refused try costs one sweep.  The extrapolation is tried only when the trace shows the
slow mode: the last three ELBO changes shrink by two ratios ``ρ ≥ SLOW_RATIO`` that differ
by at most ``STEADY`` (linear convergence, the iteration's slowest mode dominating), and the plain
iteration would need at least ``MIN_LEFT`` more sweeps to meet ``tol`` at that ratio; it is
then tried every second sweep while it is accepted, and after a refusal only after a wait
that doubles with each refusal.  A fit that converges fast (mixtures, LDA, FA, HMM) never
shows the slow mode, or stops before the wait ends, and runs the plain sweeps, untouched.
Nothing here reads a model: only the ELBO trace and the states the sweeps return.

Pure functions over :class:`Accel` (``init``, ``observe``, ``wants``, ``extrapolate``,
``accepts``, ``refused``); :class:`Accelerated` is the thin host loop that runs them around
an engine's sweep (``engine/fit.py``).
"""

from __future__ import annotations

import math
import os
from typing import Any, NamedTuple

from functools import partial

import jax
import jax.numpy as jnp

from .mstep import unconstrained
from .programs import FAST_COMPILE, built_on_first_use

#: The ratio of consecutive ELBO changes from which the convergence counts as slow.
SLOW_RATIO = 0.8
#: ... over two consecutive ratios that differ by at most this (the trace's linear regime).
STEADY = 0.1
#: The largest ratio counted: a trace whose changes barely grow (1.0005 a sweep, for hundreds
#: of sweeps) is a crawl along a ridge too.  A Poisson GLMM, ``y[n] ~ Poisson(exp(b0 + u[g[n]]))``
#: with counts near 400 and ``u[j] ~ Normal(0, precision = tau)``, moves its intercept into
#: ``b0`` from the ``u`` by ~0.003 nats a sweep, faster as ``tau`` grows with the shrinking
#: ``u``; with ratios below 1 only, it never extrapolated (2152 sweeps; 669 with this).
RISE_RATIO = 1.05
#: Try only when the plain sweeps would need at least this many more to meet ``tol``.
MIN_LEFT = 8
#: How many times α is pulled toward −1 when x' leaves a family's domain.
BACKTRACKS = 4
#: The first cap on |α| and the factor it grows (or shrinks) by: SQUAREM's step-length bound
#: (Du & Varadhan 2020, "SQUAREM: an R package ...", J. Stat. Softw. 92(7): step.max0, mstep).
STEP_MAX0 = 4.0
STEP_GROWTH = 4.0


class Accel(NamedTuple):
    """The accelerator's state: the last plain sweeps' states and the trace's tail."""

    states: tuple  # up to 3 consecutive states x0, F(x0), F(F(x0)) (oldest first)
    elbos: tuple  # the last 4 ELBOs returned (oldest first)
    active: bool  # the slow mode was seen and the last try was accepted
    wait: int  # sweeps before the next try may be made
    backoff: int  # the wait after the next refusal
    tried: int  # extrapolations tried (each a sweep)
    accepted: int  # ... and kept
    step_max: float = STEP_MAX0  # the cap on |α| (grows by STEP_GROWTH while a capped step is kept)


def init() -> Accel:
    return Accel(states=(), elbos=(), active=False, wait=0, backoff=2, tried=0, accepted=0)


def observe(acc: Accel, before, after, elbo: float, from_extrapolation: bool = False) -> Accel:
    """``acc`` after a kept sweep ``before → after`` with ``elbo``.  Consecutive plain sweeps
    extend the chain of states; a sweep from an extrapolated point starts a new chain at it."""
    states = acc.states
    if from_extrapolation or not states or states[-1] is not before:
        states = (before,)
    states = (states + (after,))[-3:]
    return acc._replace(states=states, elbos=(acc.elbos + (float(elbo),))[-4:], wait=max(acc.wait - 1, 0))


def ratio(elbos) -> float | None:
    """The ratio of the last two ELBO changes, None without three values or a rise."""
    if len(elbos) < 3:
        return None
    d1, d2 = elbos[-2] - elbos[-3], elbos[-1] - elbos[-2]
    if not (d1 > 0 and d2 >= 0 and math.isfinite(d1) and math.isfinite(d2)):
        return None
    return d2 / d1


def sweeps_left(elbos, rho: float, tol: float) -> float:
    """Plain sweeps until the stopping rule (``engine/loop.py``) is met were the change to
    shrink by ``rho`` each: until the change falls to ``tol·|ELBO|`` and Aitken's forecast of
    the gain after it, ``change·rho/(1 − rho)``, does too."""
    change, floor = elbos[-1] - elbos[-2], tol * abs(elbos[-1])
    if 0.0 < rho < 1.0:
        floor = min(floor, floor * (1.0 - rho) / rho)
    if change <= floor:
        return 0.0
    if rho >= 1.0 or floor <= 0.0:  # tol = 0: the fit runs max_iter sweeps
        return math.inf
    return math.log(floor / change) / math.log(rho)


def wants(acc: Accel, tol: float) -> bool:
    """Whether to extrapolate now: a chain of three states, no wait, and the slow mode
    (seen in the trace now, or at the last accepted try): two consecutive ratios of ELBO
    changes in [SLOW_RATIO, RISE_RATIO) within STEADY of each other, and at least MIN_LEFT plain
    sweeps left at that ratio before ``tol`` is met."""
    if len(acc.states) < 3 or acc.wait > 0:
        return False
    if acc.active:
        return True
    rho, before = ratio(acc.elbos), ratio(acc.elbos[:-1])
    if rho is None or before is None:
        return False
    steady = abs(rho - before) <= STEADY  # linear convergence: the ratio has settled
    return steady and SLOW_RATIO <= min(rho, before) and rho < RISE_RATIO and sweeps_left(acc.elbos, rho, tol) >= MIN_LEFT


def accepts(acc: Accel, elbo: float) -> bool:
    """Whether the sweep from the extrapolated point, with ``elbo``, is kept: finite and at
    least the plain sweep's forecast gain above the last ELBO (never below it)."""
    last = acc.elbos[-1]
    rho = ratio(acc.elbos)
    gain = (last - acc.elbos[-2]) * (rho if rho is not None else 0.0) if len(acc.elbos) >= 2 else 0.0
    return math.isfinite(elbo) and elbo >= last + max(gain, 0.0)


def tried(acc: Accel, kept: bool, capped: bool = False) -> Accel:
    """``acc`` after a try: kept, the chain goes on from it; refused, wait and double the wait.
    A try whose |α| was the cap (``capped``) grows the cap when kept and shrinks it (not below
    STEP_MAX0) when refused."""
    step_max = acc.step_max
    if capped:
        step_max = step_max * STEP_GROWTH if kept else max(STEP_MAX0, step_max / STEP_GROWTH)
    if kept:
        return acc._replace(tried=acc.tried + 1, accepted=acc.accepted + 1, active=True, backoff=2, step_max=step_max)
    return acc._replace(tried=acc.tried + 1, active=False, wait=acc.backoff, backoff=2 * acc.backoff,
                        step_max=step_max)


def squarem(x0, x1, x2):
    """(x', α) of SQUAREM's scheme S3 on pytrees of arrays, α ≤ −1."""
    leaves = jax.tree_util.tree_leaves
    r = jax.tree_util.tree_map(jnp.subtract, x1, x0)
    v = jax.tree_util.tree_map(lambda a, b, c: c - 2.0 * b + a, x0, x1, x2)
    rr = sum(jnp.vdot(a, a) for a in leaves(r))
    vv = sum(jnp.vdot(a, a) for a in leaves(v))
    alpha = jnp.where(vv > 0, -jnp.sqrt(rr / jnp.where(vv > 0, vv, 1.0)), -1.0)
    alpha = jnp.minimum(alpha, -1.0)
    return point(x0, r, v, alpha), alpha


def point(x0, r, v, alpha):
    """x0 − 2α r + α² v."""
    return jax.tree_util.tree_map(lambda a, b, c: a - 2.0 * alpha * b + alpha * alpha * c, x0, r, v)


def extrapolate(families: dict, bijections: dict, eta0: dict, eta1: dict, eta2: dict, th0: dict, th1: dict,
                th2: dict, step_max=math.inf, with_alpha: bool = False):
    """(η', μ', θ', ok): SQUAREM's point from three consecutive sweeps' natural parameters η
    and point params θ (each in its unconstrained space, ``bijections[p]``: biject_to of its
    type, as the gradient M-step moves it), |α| at most ``step_max`` (an unbounded α sent a
    local-level model's noise precision from 0.8 to 2e33 in one try, where float64 values the
    ELBO 1100 nats above the marginal likelihood, and the guard kept it), pulled toward x2 (α ← (α − 1)/2) until every
    block is in its family's domain with finite mean parameters and every θ' finite,
    ``BACKTRACKS`` times at most; ``ok`` false when none was, or when α reached −1 (the
    point is then x2, no step)."""
    def flat(eta, th):
        return eta, {p: bijections[p].inv(t) for p, t in th.items()}

    x0, x1, x2 = flat(eta0, th0), flat(eta1, th1), flat(eta2, th2)
    _, raw = squarem(x0, x1, x2)
    alpha0 = jnp.maximum(raw, -step_max)
    r = jax.tree_util.tree_map(jnp.subtract, x1, x0)
    v = jax.tree_util.tree_map(lambda a, b, c: c - 2.0 * b + a, x0, x1, x2)
    start_ok = _finite((x0, x1, x2))

    def candidate(alpha):
        eta, u = point(x0, r, v, alpha)
        eta = {j: families[j].tidy_natural(families[j].Stats(*e)) for j, e in eta.items()}
        mu = {j: families[j].expected_stats(e) for j, e in eta.items()}
        th = {p: bijections[p](a) for p, a in u.items()}
        ok = start_ok & _finite((mu, th))
        for j in eta:
            ok = ok & families[j].in_domain(eta[j])
        return eta, mu, th, ok

    def not_yet(carry):
        i, alpha, ok = carry[:3]
        return ~ok & (i <= BACKTRACKS)

    def pull(carry):
        i, alpha = carry[:2]
        a = jnp.where(i == 0, alpha, 0.5 * (alpha - 1.0))
        eta, mu, th, ok = candidate(a)
        return i + 1, a, ok, (eta, mu, th)

    # The last point tried rides in the carry (the loop runs at least once), rather than
    # being recomputed after the loop: every block's mean map once, not twice, in the program.
    blank = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(candidate, alpha0)[:3])
    _, alpha, ok, (eta, mu, th) = jax.lax.while_loop(not_yet, pull, (jnp.asarray(0), alpha0, jnp.asarray(False), blank))
    if with_alpha:  # the unbounded α too, which says whether the cap acted
        return eta, mu, th, ok & (alpha < -1.0 - 1e-3), raw
    return eta, mu, th, ok & (alpha < -1.0 - 1e-3)


def _finite(tree):
    return jnp.all(jnp.asarray([jnp.all(jnp.isfinite(a)) for a in jax.tree_util.tree_leaves(tree)] or [True]))


def affordable(state, copies: int = 4, budget_fraction: float = 0.25) -> bool:
    """Whether ``copies`` more states (the chain of three and the extrapolated point) take at
    most ``budget_fraction`` of the host memory available now; a fit whose per-row blocks fill
    the memory runs plain sweeps rather than hold them.  True where the OS does not say."""
    size = sum(getattr(a, "nbytes", 0) for a in jax.tree_util.tree_leaves(state))
    try:
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return True
    return copies * size <= budget_fraction * avail


class Accelerated:
    """An engine's sweep with the guarded extrapolation: ``__call__(state) -> (state, elbo)``
    as the sweep, one kept sweep per call; ``acc`` holds the counts.  ``sweeps`` counts the
    sweeps run, refused tries included."""

    def __init__(self, sweep, engine, tol: float):
        self.sweep, self.tol, self.engine = sweep, tol, engine
        self.acc = init()
        self.sweeps = 0
        self.affordable = None

    def _extrapolate(self, step_max, *states):
        """``extrapolate`` jitted once per engine (shared by its restarts), outside the sweep's
        programs (``Engine.traces`` counts the sweep's recompilations); its first call's
        seconds, almost all compilation, count as the fit's compile time."""
        engine = self.engine

        def build():
            bijections = {p.name: unconstrained(p.type) for p in engine.plan.params}
            # XLA:CPU's loop emitters, as every program of a fit (engine/programs.py): the
            # GLMM's extrapolation compiled in 0.79 s instead of 0.94 s, its results bitwise equal.
            return jax.jit(partial(extrapolate, engine.families, bijections, with_alpha=True),
                           compiler_options=FAST_COMPILE or None)

        return built_on_first_use(engine, "extrapolate", build)(*states, step_max=step_max)

    def __call__(self, state) -> tuple[Any, Any]:
        if self.affordable is None:  # decided once, on the first state
            self.affordable = affordable(state)
        if not self.affordable:
            return self.sweep(state)
        acc = self.acc
        if wants(acc, self.tol) and acc.states[-1] is state:
            x0, x1, x2 = acc.states
            eta, mu, params, ok, raw = self._extrapolate(acc.step_max, x0.eta, x1.eta, x2.eta, x0.params,
                                                         x1.params, x2.params)
            if bool(ok):
                trial = x2._replace(eta=eta, mu=mu, params=params)
                new, elbo = self.sweep(trial)
                self.sweeps += 1
                kept = accepts(acc, float(elbo))
                acc = tried(acc, kept, capped=float(raw) <= -acc.step_max)
                if kept:
                    self.acc = observe(acc, trial, new, elbo, from_extrapolation=True)
                    return new, elbo
            else:
                acc = tried(acc, False)
        new, elbo = self.sweep(state)
        self.sweeps += 1
        self.acc = observe(acc, state, new, elbo)
        return new, elbo


__all__ = ["Accel", "Accelerated", "accepts", "extrapolate", "init", "observe", "ratio", "squarem", "sweeps_left",
           "tried", "wants"]
