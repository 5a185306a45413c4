"""The convergence loop: a Python loop over a jitted step (STYLE.md, pattern 1).

Used by ``fit`` (each restart) and by ``predict`` (the locals of new data): sweep until the
relative ELBO change is at most ``tol``, or ``max_iter`` sweeps.  Progress, checks and
timing are the caller's ``watch``, called after every sweep with its ELBO.
"""

from __future__ import annotations

from typing import Callable


def converged(trace, tol: float) -> bool:
    """|ELBO_t − ELBO_{t−1}| ≤ tol · |ELBO_t| (needs two values)."""
    return len(trace) > 1 and abs(trace[-1] - trace[-2]) <= tol * abs(trace[-1])


def converge(sweep: Callable, state, max_iter: int, tol: float, watch: Callable | None = None):
    """``(state, trace, converged, sweeps)`` after sweeping ``state`` by ``sweep(state) ->
    (state, elbo)`` until ``converged`` or ``max_iter`` sweeps; ``watch(it, elbo)`` after each."""
    trace: list[float] = []
    done, it = False, 0
    for it in range(1, max_iter + 1):
        state, elbo = sweep(state)
        elbo = float(elbo)
        if watch is not None:
            watch(it, elbo)
        trace.append(elbo)
        if converged(trace, tol):
            done = True
            break
    return state, trace, done, it


__all__ = ["converge", "converged"]
