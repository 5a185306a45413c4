"""A warning when the data's scale is far from what the priors assume (issue #23).

The shipped models' fixed priors assume data of unit scale: ``mu[k] ~ MvNormal(0,
precision = 0.01 I)`` puts the means within about ±10, ``Lam[k] ~ Wishart(D + 2, I)`` puts
the spread of a component near ``1/sqrt(D + 2)``.  On data scaled by 1e4 such a posterior is
dominated by the prior, silently.  :func:`warn_if_scale_far` compares, for each factor
``x[...] ~ F(..., arg, ...)`` whose argument reads a latent ``L`` drawn from a prior with
fixed arguments:

* an argument of real values (a location): the data's root mean square against the prior's
  reach ``|E[L]| + sd[L]`` (NumPyro's mean and variance of the prior);
* an argument of positive or positive-definite values (a precision): the data's standard
  deviation against the spread the prior's mean precision implies, ``1 / sqrt(E[L])``
  (the mean of its diagonal for a matrix).

When they differ by more than :data:`RATIO` it warns, naming the data, the latent and the
two scales.  Nothing is changed: the fit is the same; the user is told to rescale the data or
set the prior.  Layering: IR, families and NumPyro only.
"""

from __future__ import annotations

import warnings

import numpy as np

from .families import get_family
from .ir.expr import BinOp, Call, Name, Neg, Num, head_name
from .ir.sizes import _allowed_supports, _event_dims

#: How far (a factor, either way) the data's scale may be from the prior's before a warning.
RATIO = 100.0


class ScaleWarning(UserWarning):
    """The data's scale is far from the scale a prior assumes."""


class PrecisionWarning(ScaleWarning):
    """A fit stopped before converging because a sweep's update was not representable in
    float64 (a non-finite ELBO after finite ones); its results are the last finite sweep's."""


def nonfinite_parts(state) -> list[str]:
    """What of a fit's state is not finite: ``q('a', 'b')`` for the blocks (natural or mean
    parameters) and ``param 'p'`` for each point parameter; for messages about a non-finite
    ELBO (engine/fit.py, engine/svi.py), which must say where."""
    import jax  # the state is a pytree of arrays

    def finite(t):
        return all(np.all(np.isfinite(np.asarray(a))) for a in jax.tree_util.tree_leaves(t))

    eta, mu = getattr(state, "eta", None) or {}, getattr(state, "mu", None) or {}
    params = getattr(state, "params", None) or {}
    bad = sorted(j for j in eta if not (finite(eta[j]) and finite(mu.get(j))))
    return ([f"q({', '.join(repr(j) for j in bad)})"] if bad else []) + [
        f"param '{p}'" for p in sorted(params) if not finite(params[p])]


def _fixed_value(e, sizes, values, depth=0):
    """The value of an expression of constants, sizes and built-ins, or None."""
    if depth > 30:
        return None
    if isinstance(e, Num):
        return np.asarray(float(e.value))
    if isinstance(e, Name):
        if e.id in values:
            return np.asarray(values[e.id], dtype=float)
        return np.asarray(float(sizes[e.id])) if e.id in sizes else None
    if isinstance(e, Neg):
        v = _fixed_value(e.operand, sizes, values, depth + 1)
        return None if v is None else -v
    if isinstance(e, BinOp) and e.op in ("+", "-", "*", "/"):
        a, b = (_fixed_value(x, sizes, values, depth + 1) for x in (e.left, e.right))
        if a is None or b is None:
            return None
        with np.errstate(all="ignore"):
            return {"+": a + b, "-": a - b, "*": a * b, "/": a / b}[e.op]
    if isinstance(e, Call) and e.func in ("zeros", "ones", "fill", "eye"):
        args = [_fixed_value(x, sizes, values, depth + 1) for x in e.args]
        if any(a is None for a in args):
            return None
        dims = [int(a) for a in (args[1:] if e.func == "fill" else args)]
        if any(d < 0 or d > 10_000 for d in dims):
            return None
        if e.func == "eye":
            return np.eye(dims[0])
        return np.full(dims, {"zeros": 0.0, "ones": 1.0}.get(e.func, args[0] if e.func == "fill" else 0.0))
    return None


def _prior(model, name, sizes, values):
    """NumPyro's distribution of latent ``name``'s prior, when its arguments are fixed."""
    node = model.nodes.get(name)
    if node is None or node.kind != "latent" or len(node.defs) != 1 or node.defs[0].dist is None:
        return None
    d = node.defs[0]
    args = {}
    for k, e in d.args:
        v = _fixed_value(e, sizes, values)
        if v is None:
            return None
        args[k] = v
    try:
        return get_family(d.dist).numpyro_dist(**args)
    except Exception:  # a family without a NumPyro twin, or arguments it refuses: no opinion
        return None


def _diag_mean(a) -> float:
    a = np.asarray(a, dtype=float)
    if a.ndim >= 2 and a.shape[-1] == a.shape[-2]:
        a = np.diagonal(a, axis1=-2, axis2=-1)
    return float(np.mean(a))


def warn_if_scale_far(model, sizes: dict, values: dict) -> list[str]:
    """Warn (and return the messages) for each data/prior pair whose scales are far apart."""
    out = []
    for node in model.of_kind("data"):
        x = values.get(node.name)
        if x is None or not np.size(x) or node.type.base not in ("real", "pos"):
            continue
        x = np.asarray(x, dtype=float)
        for d in node.defs:
            fam = get_family(d.dist)
            constraints = _event_dims(fam.name)
            for arg, e in d.args:
                latent = head_name(e)
                prior = _prior(model, latent, sizes, values) if latent else None
                if prior is None:
                    continue
                c = constraints.get(arg, (0, None))[1]
                allowed = _allowed_supports(c) if c is not None else None
                try:
                    mean = np.asarray(prior.mean, dtype=float)
                    if allowed is None:
                        var = np.asarray(prior.variance, dtype=float)
                except Exception:  # no mean or variance in NumPyro: no opinion
                    continue
                with np.errstate(all="ignore"):
                    if allowed is None:
                        data_scale = float(np.sqrt(np.mean(x**2)))
                        prior_scale = float(np.mean(np.abs(mean)) + np.sqrt(np.mean(var)))
                        what = "scale"
                    elif "pos" in allowed or "spd" in allowed:
                        data_scale = float(np.std(x, axis=0).mean()) if x.ndim > 1 else float(np.std(x))
                        prior_scale = 1.0 / np.sqrt(_diag_mean(mean))
                        what = "spread"
                    else:
                        continue
                if not (np.isfinite(data_scale) and np.isfinite(prior_scale)) or data_scale <= 0 or prior_scale <= 0:
                    continue
                if max(data_scale / prior_scale, prior_scale / data_scale) > RATIO:
                    msg = (
                        f"data '{node.name}' has {what} {data_scale:.3g} while the prior of '{latent}' assumes "
                        f"~{prior_scale:.3g}; the posterior may be prior-dominated: rescale the data or set the "
                        f"prior of '{latent}'"
                    )
                    if msg not in out:
                        out.append(msg)
                        warnings.warn(msg, ScaleWarning, stacklevel=4)
    return out
