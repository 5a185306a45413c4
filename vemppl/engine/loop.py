"""The convergence loop: a Python loop over a jitted step (STYLE.md, pattern 1).

Used by ``fit`` (each restart) and by ``predict`` (the locals of new data): sweep until
``converged`` (below), or ``max_iter`` sweeps.  Progress, checks and timing are the caller's
``watch``, called after every sweep with its ELBO.

The stopping rule reads the trace's rate as well as its last change.  Where the ELBO's change
per sweep shrinks by a ratio ``r`` (linear convergence), the gain still to come is the
geometric tail ``Δ·r/(1 − r)`` (Aitken's Δ² extrapolation of the trace; Böhning et al. 1994,
McLachlan & Krishnan 2008 §4.9 use it to stop EM).  A small last change with ``r`` near 1
is a slow iteration, not a converged one: the non-centred two-level model of
``benchmarks/slow`` changes by 2.6e-5 nats (relative 9e-9) at its fourth sweep with 4e-3 nats
still to gain, its changes then shrinking at a rate of 0.9944.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

#: A change at most this fraction of ``tol·|ELBO|`` (or below ``ROUNDING`` of |ELBO|) ends the
#: fit whatever its ratio: the forecast needs a rate, and at that size the ratio of two
#: changes is the rounding of the ELBO's sums, not the iteration's.
FLOOR = 1e-3
#: float64's rounding of a sum of many terms, relative (1000 eps).
ROUNDING = 1e3 * float(np.finfo(np.float64).eps)


def _rate(trace) -> float | None:
    """The larger of the last two ratios of consecutive ELBO changes (one ratio where the change
    before them did not rise); None without two changes, or when the last two are not both rises."""
    d = np.diff(np.asarray(trace[-4:], dtype=float))
    if len(d) < 2 or not (d[-2] > 0 and d[-1] > 0):
        return None
    r = d[-1] / d[-2]
    if len(d) == 3 and d[-3] > 0:
        r = max(r, d[-2] / d[-3])
    return float(r)


def forecast(trace) -> float:
    """Aitken's forecast of the ELBO still to gain: ``Δ·r/(1 − r)`` with Δ the last change and
    ``r`` the larger of the last two ratios of changes (a single ratio after a step that moved
    far, an extrapolated one, says little of the rate: the next ratio must agree); ``inf``
    when the changes do not shrink (``r ≥ 1``) or fewer than three ELBOs give no ratio; 0 when the
    change before the last did not rise (noise, not a rate: the last change is all there is)."""
    if len(trace) >= 3 and not trace[-2] - trace[-3] > 0:
        return 0.0
    r = _rate(trace)
    if r is None or r >= 1.0:
        return float("inf")
    return float((trace[-1] - trace[-2]) * r / (1.0 - r))


def _settled(trace, tol: float) -> bool | str:
    """The rule at the last sweep alone: False while ``|Δ| > tol·|ELBO|`` or the forecast is
    above it; "floor" when the change is too small to read a rate from; True otherwise."""
    last, change = abs(trace[-1]), trace[-1] - trace[-2]
    scale = tol * last
    if not abs(change) <= scale:
        return False
    if change <= max(FLOOR * scale, ROUNDING * last):
        return "floor"
    return forecast(trace) <= scale


def converged(trace, tol: float, rate: bool = True) -> bool:
    """Whether the fit has converged at relative tolerance ``tol``.  With Δ the last change
    and ``s = tol·|ELBO_t|``: without ``rate``, when ``|Δ| ≤ s``.  With it (a trace of one
    fixed, monotone map: ``fit`` says which), a sweep *settles* when ``|Δ| ≤ s`` and

    * Δ ≤ max(FLOOR·s, ROUNDING·|ELBO_t|): no rise, or one too small to read a rate from
      (a fixed point of a monotone sweep, or noise); the fit stops at once; or
    * Aitken's ``forecast`` of the gain still to come is at most ``s``.

    The fit stops at the second consecutive sweep that settles by the forecast (the first of
    a small change may be the fast modes dying before the slow one shows: the non-centred model's
    fourth sweep changes by 2.6e-5 nats after ratios of 1e-3 and 8e-5, its fifth by 2.2e-5, a
    ratio of 0.85).  So ``tol`` bounds, relative to |ELBO|, both the last change and the gain
    the trace's rate forecasts after it."""
    if len(trace) < 2:
        return False
    if not rate:
        return abs(trace[-1] - trace[-2]) <= tol * abs(trace[-1])
    now = _settled(trace, tol)
    if now == "floor":
        return True
    return bool(now) and len(trace) > 2 and bool(_settled(trace[:-1], tol))


def converge(sweep: Callable, state, max_iter: int, tol: float, watch: Callable | None = None, rate: bool = True,
             fixed_point: bool = False):
    """``(state, trace, converged, sweeps)`` after sweeping ``state`` by ``sweep(state) ->
    (state, elbo)`` until ``converged`` (reading the trace's ``rate`` or not) or ``max_iter``
    sweeps; ``watch(it, elbo)`` after each.  ``fixed_point``: also converged at a sweep that
    leaves every variational parameter and point parameter as it was, bit for bit, whatever the
    ELBO did (a Monte Carlo ELBO moves by its draw alone: ``predict``'s amortised locals, the
    encoder's output once the first sweep has read it)."""
    trace: list[float] = []
    done, it = False, 0
    for it in range(1, max_iter + 1):
        before = state
        state, elbo = sweep(state)
        elbo = float(elbo)
        if watch is not None:
            watch(it, elbo)
        trace.append(elbo)
        if converged(trace, tol, rate) or (fixed_point and _unchanged(before, state)):
            done = True
            break
    return state, trace, done, it


def _unchanged(before, after) -> bool:
    """Whether a sweep left the state's ``eta`` and ``params`` exactly as they were."""
    import jax

    old, new = (jax.tree_util.tree_leaves((s.eta, s.params)) for s in (before, after))
    return len(old) == len(new) and all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(old, new))


__all__ = ["FLOOR", "ROUNDING", "converge", "converged", "forecast"]
