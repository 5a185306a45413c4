"""A deterministic sweep whose ELBO fell: the test that stops the fit, and what it says.

A fit with no Monte Carlo draw (``state.key`` is None), no networks and no amortised
posteriors sweeps by monotone steps only: closed-form CAVI updates (each maximises the ELBO
over its block, Winn & Bishop 2005), natural-gradient steps taken only where they do not
lower the ELBO (``Engine._damped``'s line search), backtracking or closed-form M-steps, and
local restarts kept only where they do not lower it (``guards.guarded_sweep``).  In exact
arithmetic its ELBO never decreases (Neal & Hinton 1998); in floating point it can fall by
the rounding of its sums alone, about eps times the size of the summed terms, which at
float64 on any data set a machine holds is far below ``FALL_REL`` of |ELBO|.  A larger fall
is numerical breakdown, not a step of the algorithm: a value beyond the format's resolution
(a noise precision growing toward 1e31 on a constant data column, a Wishart rate rounded to
a singular matrix).  The fit stops at the last sweep before it (``engine/fit.py``) with a
PrecisionWarning that names the parts whose values span more than the format resolves and
the ELBO's term that fell most, as it does for a non-finite ELBO.

Layering: the engine's state and plan only.
"""

from __future__ import annotations

import warnings

import jax
import numpy as np

from ..data_scale import PrecisionWarning
from ..ir.expr import names as names_in
from ..plan import Update

#: A fall larger than this fraction of |ELBO| is breakdown (float64's rounding of the
#: ELBO's sums is about 1e-13 of it at a million terms; the tests hold fits to 1e-9).
FALL_REL = 1e-6
#: ... and larger than this many nats, for an ELBO near zero.
FALL_ABS = 1e-6


def monotone(engine, state) -> bool:
    """Whether every sweep of ``engine`` from ``state`` is deterministic and monotone: no Monte
    Carlo key, no networks, no amortised posteriors."""
    return state.key is None and not engine.networks and not engine.amortised


def fell(previous: float, elbo: float, dtype) -> bool:
    """Whether ``elbo`` is below ``previous`` by more than the rounding of a sweep in ``dtype``
    (``FALL_REL`` relative, at least 1000 eps of the format, and ``FALL_ABS`` nats)."""
    rel = max(FALL_REL, 1e3 * float(np.finfo(dtype).eps))
    return elbo < previous - max(rel * max(abs(previous), abs(elbo)), FALL_ABS)


def wide_parts(state) -> list[tuple[str, str]]:
    """The blocks and params whose values reach beyond float64's resolution of their own
    scale: the largest magnitude more than 1/eps times the median one (adding the median
    value to the largest loses it whole), widest first, as ``(name, "param 'psi' (median
    1.1, largest 1.52e+31)")``.  Values near zero do not count: they lose nothing."""
    eps = float(np.finfo(np.float64).eps)
    found = []
    parts = [(j, f"q('{j}')", state.eta[j]) for j in (state.eta or {})]
    parts += [(p, f"param '{p}'", state.params[p]) for p in (state.params or {})]
    for name, label, tree in parts:
        v = np.concatenate([np.abs(np.asarray(a, dtype=float)).ravel() for a in jax.tree_util.tree_leaves(tree)]
                           or [np.zeros(0)])
        v = v[np.isfinite(v)]
        if not v.size:
            continue
        mid, top = float(np.median(v)), float(v.max())
        if top * eps > mid:
            found.append((top / mid if mid > 0 else np.inf, name, f"{label} (median {mid:.3g}, largest {top:.3g})"))
    return [(name, text) for _, name, text in sorted(found, key=lambda t: -t[0])]


def reading_terms(engine, names) -> list[str]:
    """The model's statements whose distribution's arguments read any of ``names`` (a
    block's members by name), by statement and line."""
    out = []
    for f in engine.plan.factors:
        read = {n.id for _, e in f.definition.args for n in names_in(e)}
        if read & set(names):
            out.append(_term(f))
    return out


def _term(f) -> str:
    span = getattr(f.definition, "span", None)
    return f"the term of '{f.describe()}'" + (f" (line {span.line})" if span else "")


def _entropy_term(j) -> str:
    return f"the entropy of q('{j}')"


def nonfinite_factors(engine, state) -> list:
    """The plan's factors whose expected log density is not finite at ``state`` (their
    statements locate an error), evaluated one by one; those found before any evaluation failed."""
    out = []
    try:
        for f in engine.plan.factors:
            v = engine.factor_sum([f], state.mu, state.eta, state.params, engine.data)
            if not np.all(np.isfinite(np.asarray(v))):
                out.append(f)
    except Exception:  # noqa: BLE001  (a diagnosis on the way to an error: it must not replace that error)
        pass
    return out


def nonfinite_terms(engine, state, factors=None) -> list[str]:
    """The ELBO's terms that are not finite at ``state``: each factor's expected log density
    (by its statement and line) and each block's entropy.  Evaluated one by one, only when a
    sweep has gone non-finite, to say where."""
    out = [_term(f) for f in (nonfinite_factors(engine, state) if factors is None else factors)]
    try:
        for j in state.eta:
            if not np.all(np.isfinite(np.asarray(engine._entropy(j, state.eta[j], state.mu[j])))):
                out.append(_entropy_term(j))
    except Exception:  # noqa: BLE001  (a diagnosis on the way to an error: it must not replace that error)
        pass
    return out


def fallen_term(engine, before, after) -> str | None:
    """The ELBO's term that fell most from ``before`` to ``after``: a factor's expected log
    density (by its statement and line) or a block's entropy, with the fall; evaluated by one
    program (compiled here, only once a sweep has fallen), to say where.  None if none fell
    or it cannot be said."""
    import jax.numpy as jnp

    factors, blocks = list(engine.plan.factors), list(before.eta)

    def terms(s):
        return jnp.stack([jnp.sum(engine.factor_sum([f], s.mu, s.eta, s.params, engine.data)) for f in factors]
                         + [jnp.sum(engine._entropy(j, s.eta[j], s.mu[j])) for j in blocks])

    try:
        each = jax.jit(terms)
        change = np.asarray(each(after)) - np.asarray(each(before))
    except Exception:  # noqa: BLE001  (a diagnosis on the way to a warning: it must not replace it)
        return None
    names = [_term(f) for f in factors] + [_entropy_term(j) for j in blocks]
    fell = [(float(d), n) for d, n in zip(change, names) if np.isfinite(d) and d < 0]
    if not fell:
        return None
    drop, text = min(fell)
    return f"{text} fell most, by {-drop:.3g} nats"


def stuck_blocks(engine, before, after) -> list[str]:
    """The natural-gradient blocks that the last sweep left exactly as they were because their
    target ∇_μ L is not finite there (``Engine._damped`` refused every step, sharpened ones
    included), each as ``"q('b'), whose target is not finite in the term of '…' at file:line:col"``.
    Only blocks unchanged bit for bit are evaluated (one gradient each, after the fit), so a fit
    that moved every block pays nothing."""
    out = []
    for j in after.eta:
        if engine.plan.block(j).update is Update.CAVI or j in engine.amortised:
            continue
        old, new = (jax.tree_util.tree_leaves(s.eta[j]) for s in (before, after))
        if not all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(old, new)):
            continue
        try:
            local = engine._local(j)

            def target(factors):  # one small program: op by op, a quadrature's gradient took seconds
                return jax.jit(lambda s: engine.target_part(s, j, factors, engine.data))(after)

            if _finite(target(local)):
                continue
            bad = [f for f in local if not _finite(target((f,)))]
        except Exception:  # noqa: BLE001  (a diagnosis of a finished fit: it must not fail the fit)
            continue
        where = [f"{_term(f)} at {f.definition.span}" if getattr(f.definition, "span", None) else _term(f)
                 for f in bad]
        out.append(f"q('{j}'), whose natural-gradient target is not finite" + (f" in {', '.join(where)}" if where else ""))
    return out


def not_stuck(engine, before, after, it) -> bool:
    """False, with a PrecisionWarning, where the last sweep refused a block's update because
    its natural-gradient target is not finite (``stops.stuck_blocks``): the ELBO stood still
    because the block could not move, not because it reached an optimum."""
    stuck = stuck_blocks(engine, before, after)
    if stuck:
        one = len(stuck) == 1
        warnings.warn(
            f"the fit stopped at iteration {it} without converging: {'; '.join(stuck)}, so "
            f"{'its update was' if one else 'their updates were'} refused and the ELBO stood still; "
            f"{'that posterior is' if one else 'those posteriors are'} not a fit. Give "
            f"{'that latent a prior' if one else 'those latents priors'} on the data's scale (a narrower one where "
            f"a latent sits inside exp(...) or another fast-growing link), or rescale the data or covariates",
            PrecisionWarning, stacklevel=6)
    return not stuck


def _finite(tree) -> bool:
    return all(np.all(np.isfinite(np.asarray(a))) for a in jax.tree_util.tree_leaves(tree))


__all__ = ["FALL_ABS", "FALL_REL", "fallen_term", "fell", "monotone", "nonfinite_terms", "not_stuck", "reading_terms", "stuck_blocks", "wide_parts"]
