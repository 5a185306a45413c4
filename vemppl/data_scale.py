"""A warning when the data's scale is far from what the priors assume (issue #23).

The shipped models' fixed priors assume data of unit scale: ``mu[k] ~ MvNormal(0,
precision = 0.01 I)`` puts the means within about ±10, ``Lam[k] ~ Wishart(D + 2, I)`` puts
the spread of a component near ``1/sqrt(D + 2)``.  On data scaled by 1e4 such a posterior is
dominated by the prior, silently.  :func:`warn_if_scale_far` compares, for each factor
``x[...] ~ F(..., arg, ...)`` whose argument reads a latent ``L`` drawn from a prior with
fixed arguments:

* an argument of real values (a location): the data's root mean square against the prior's
  reach ``|E[L]| + sd[L]`` (NumPyro's mean and variance of the prior);
* a precision (``precision``, ``precision_matrix``) or a scale: the data's standard deviation
  against the nearest spread the prior holds plausible, from ``E[L] ± sd[L]`` (the means of
  the diagonals for a matrix): ``1 / sqrt(precision)`` for a precision, the scale itself for a
  scale.  A vague Gamma (``sd ≥ E``, e.g. ``Gamma(1e-2, 1e-4)``) allows any larger spread.  Other positive arguments (a rate,
  a concentration) are not compared: the data's spread says nothing direct about them.

When they differ by more than :data:`RATIO` it warns, naming the data, the latent and the
two scales.  Nothing is changed: the fit is the same; the user is told to rescale the data or
set the prior.  Layering: IR, families and NumPyro only.
"""

from __future__ import annotations

import warnings

import numpy as np

from ._jax_setup import TINY
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
    """Latent ``name``'s prior family and its fixed arguments, or None when they are not fixed."""
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
    return get_family(d.dist), args


def _priors_moments(priors, variance: bool) -> list:
    """NumPyro's mean (and variance) of each prior, all in one compiled program: ``(mean,
    var)`` as NumPy arrays, or None for a prior NumPyro cannot give them for (no NumPyro
    twin, arguments it refuses, no mean or variance).  Each eagerly dispatched operation
    compiles a program of its own, and NumPyro's argument checks run eagerly even under
    ``jax.jit``: an MvNormal prior's checks and mean were 40 programs, 0.8 s of a 10k-point
    GMM's command line (issue #21); one program per prior was still two of them.  The checks
    are left out: an argument they would refuse gives a mean or variance that is not finite,
    and no warning."""
    import jax
    from numpyro.distributions.distribution import validation_enabled

    def moments(args):
        out = []
        for (fam, _), a in zip(priors, args):
            try:  # while tracing: a prior NumPyro refuses is left out, the others still compile
                d = fam.numpyro_dist(**a)
                out.append((d.mean, d.variance if variance else None))
            except Exception:  # noqa: BLE001 - no NumPyro twin, no mean or variance: no opinion
                out.append(None)
        return out

    with validation_enabled(False):
        got = jax.jit(moments, compiler_options=TINY)([a for _, a in priors])

    def as_numpy(a):
        return None if a is None else np.asarray(a, dtype=float)

    return [None if g is None else (as_numpy(g[0]), as_numpy(g[1])) for g in got]


def _diag_mean(a) -> float:
    a = np.asarray(a, dtype=float)
    if a.ndim >= 2 and a.shape[-1] == a.shape[-2]:
        a = np.diagonal(a, axis1=-2, axis2=-1)
    return float(np.mean(a))


def warn_if_scale_far(model, sizes: dict, values: dict, masks: dict | None = None) -> list[str]:
    """Warn (and return the messages) for each data/prior pair whose scales are far apart.
    Only observed entries count: ``masks`` (True where observed) and NaN mark the missing ones,
    whose stored placeholder (0.5) is no datum: incomes near 2500 with 40% missing read as
    spread out over (0.5, 1e4)."""
    pairs = []  # (data node, its values, arg, latent, the prior, the arg's allowed supports)
    for node in model.of_kind("data"):
        x = values.get(node.name)
        if x is None or not np.size(x) or node.type.base not in ("real", "pos"):
            continue
        x = np.asarray(x, dtype=float)
        observed = (masks or {}).get(node.name)
        if observed is not None:
            x = np.where(np.asarray(observed, dtype=bool), x, np.nan)
        if not np.isfinite(x).any():
            continue
        for d in node.defs:
            fam = get_family(d.dist)
            constraints = _event_dims(fam.name)
            xd = x  # the values its arguments describe: log y for a LogNormal (``factor_transform``)
            if fam.factor_transform is not None:
                with np.errstate(all="ignore"):
                    xd = fam.factor_transform(x)
            for arg, e in d.args:
                latent = head_name(e)
                prior = _prior(model, latent, sizes, values) if latent else None
                if prior is None:
                    continue
                if arg not in constraints:  # a vemppl spelling (precision): its group-mate's support
                    mates = [n for g in fam.args.groups if arg in g for n in g if n in constraints]
                    if not mates:
                        continue  # no support known: no opinion
                    arg_constraint = constraints[mates[0]][1]
                else:
                    arg_constraint = constraints[arg][1]
                allowed = _allowed_supports(arg_constraint)
                if allowed is not None and not arg.startswith(("precision", "scale")):
                    continue  # a rate or a concentration: no spread of the data to compare with
                pairs.append((node, xd, arg, latent, prior, allowed))
    if not pairs:
        return []
    order = list(dict.fromkeys(latent for _, _, _, latent, _, _ in pairs))  # each prior's moments once
    priors = {latent: prior for _, _, _, latent, prior, _ in pairs}
    moments = dict(zip(order, _priors_moments([priors[latent] for latent in order], variance=True)))
    out = []
    for node, x, arg, latent, _, allowed in pairs:
        if moments[latent] is None:  # no NumPyro twin, arguments it refuses, no mean or variance: no opinion
            continue
        mean, var = moments[latent]
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a column with nothing observed: nan, skipped below
            if allowed is None:
                data_scale = float(np.sqrt(np.nanmean(x**2)))
                prior_scale = float(np.mean(np.abs(mean)) + np.sqrt(np.mean(var)))
                what = "scale"
            elif "pos" in allowed or "spd" in allowed:
                data_scale = float(np.nanmean(np.nanstd(x, axis=0))) if x.ndim > 1 else float(np.nanstd(x))
                m, sd = _diag_mean(mean), float(np.sqrt(_diag_mean(var)))
                # The spreads the prior holds plausible, from E[L] ± sd[L]: a scale is the
                # spread itself, a precision implies 1 / sqrt(precision).  A vague prior
                # (sd[L] >= E[L]) has no upper end: its data may have any larger spread.
                low, high = (m - sd, m + sd) if arg.startswith("scale") else (
                    1.0 / np.sqrt(m + sd), 1.0 / np.sqrt(m - sd) if m > sd else np.inf)
                prior_scale = float(np.clip(data_scale, max(low, 0.0), high))
                if prior_scale <= 0:  # a scale's range reaching 0: too vague to compare with
                    continue
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
