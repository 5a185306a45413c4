"""The local blocks of a fit and an engine over them for new data, the globals held.

A block is *local* when it lives on a plate whose size comes from the data (``z[n]``,
``h[n]``, a document's ``theta[d]``, a sequence's chain); every other block is *global*.
Shared by ``predict`` (the locals re-inferred) and ``predictive`` (the exact predictive
density, the locals summed out).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..compiler.locality import data_dims, on_plates
from ..plan import Plan
from ..diagnostics import VemError
from ..ir.expr import Name
from ..elj.moments import block_entries
from ..engine.bind import bind
from ..engine.bind_values import _as_array, _check_support, check_categories
from ..elj.evaluate import size_of
from ..engine.cavi import Engine
from ..engine.compress import compress_plate
from ..families import get_family


def local_blocks(model, plan) -> set[str]:
    """Blocks local to a plate whose size the data gives (``compiler/locality.py``): the
    leading axis of a data array (observations, time steps), or a size that a data array
    indexes into (``doc: cat(D)`` makes documents a data plate).  A feature axis such as
    ``P`` of ``X: real[N, P]`` is not one."""
    return set(on_plates(model, plan, data_dims(model)))


def _local_engine(fit, data, plug_in, consts, dims, compress=False):
    """An engine over the local blocks of new data, the globals fixed (or at points).

    ``compress`` (None: when worth it; True: or say why not): the new data's repeated rows
    merged as ``fit`` merges them (engine/compress.py); the engine then runs on the distinct
    rows and ``engine.merged_rows`` holds their ``UnitWeights``."""
    model, plan = fit.model, fit.plan
    locals_ = local_blocks(model, plan)
    if not locals_ and not any(n.defs for n in model.of_kind("data")):
        raise VemError("data", "this model has no data plate to predict on")
    given_consts = {k: v for k, v in fit.bound.values.items() if k in {n.name for n in model.of_kind("const")}}
    given_consts.update(consts or {})
    # The globals' sizes are the fit's: new data that disagree (X with another number of columns) are
    # an error, not a fit of the saved globals against arrays of another shape.
    plates = data_dims(model)
    fitted = {n.name: fit.bound.sizes[n.name] for n in model.of_kind("dim")
              if n.name not in plates and n.name in fit.bound.sizes}
    bound = bind(model, data, given_consts, dims, fitted=fitted,
                 fitted_consts=frozenset(given_consts) - frozenset(consts or {}))
    factors = tuple(
        f for f in plan.factors if f.target in locals_ or model.nodes[f.target].kind == "data"
    )
    sub_plan = Plan(
        plan.model,
        tuple(b for b in plan.blocks if b.name in locals_),
        factors,
        (),
        tuple(j for j in plan.schedule if j in locals_),
    )
    globals_ = [b for b in plan.blocks if b.name not in locals_]
    fixed, points = {}, {}
    for b in globals_:
        fam = get_family(b.family)
        # jnp arrays: a loaded fit holds NumPy arrays, which a traced index cannot index.
        eta, mu = (jax.tree_util.tree_map(jnp.asarray, t) for t in (fit.state.eta[b.name], fit.state.mu[b.name]))
        if plug_in and b.members:  # each member at the mean of its marginal
            marg = fam.marginals(eta)
            points.update({node: jnp.asarray(marg[role].mean) for role, node in b.members})
        elif plug_in:
            points[b.name] = jnp.asarray(_posterior_mean(fam, eta))
        else:
            fixed.update(block_entries(b, fam, mu, eta))
    rows, weights = bound, None
    if compress is not False:
        merged = compress_plate(model, sub_plan, bound, (), None, False, required=compress is True)
        rows, weights = merged or (bound, None)
    # A loaded fit has no engine; its chains re-infer by the default scan.
    chain = getattr(getattr(fit, "engine", None), "chain", "sequential")
    engine = Engine(model, sub_plan, rows, fixed_blocks=fixed, unit_weights=weights, chain=chain, merged_rows=weights)
    params = {**{k: v for k, v in fit.state.params.items()}, **points}
    return engine, sub_plan, params, bound, globals_


def _posterior_mean(fam, eta):
    d = fam.to_numpyro(eta)
    if fam.support == "cat":
        return d.probs
    return d.mean


__all__ = ["local_blocks"]


def replicate_sizes(fit, data: dict) -> tuple[dict, dict]:
    """The sizes of replicated data sets whose covariates are the arrays of ``data``, and those
    arrays checked as ``fit`` checks data (support, categories): a dim of a data plate (``N`` of
    ``X: real[N, P]``) takes the given array's size, every other dim (``P``, sized by the globals)
    keeps the fit's, and an array that disagrees with either is a ``data`` error naming it, as in
    ``predict``."""
    sizes, plates, given_by = dict(fit.bound.sizes), data_dims(fit.model), {}
    nodes = [n for n in fit.model.of_kind("data") if n.name in data]
    data = {n.name: _as_array(n, data[n.name]) for n in nodes}  # a ragged list: a data error naming it
    for node in nodes:  # the plates' sizes first, so that any order of the arrays agrees
        for axis, e in enumerate(node.type.shape):
            if isinstance(e, Name) and e.id in plates and e.id not in given_by and axis < np.ndim(data[node.name]):
                sizes[e.id], given_by[e.id] = int(np.shape(data[node.name])[axis]), f"'{node.name}' axis {axis}"
    for node in fit.model.of_kind("data"):
        if node.defs and node.name not in data:
            continue  # drawn, not read: its shape follows the sizes
        arr = data[node.name] if node.name in data else fit.bound.values.get(node.name)
        shape = tuple(np.shape(arr)) if arr is not None else None
        want = tuple(sizes.get(e.id) if isinstance(e, Name) else None for e in node.type.shape)
        if shape is not None and (len(shape) < len(want) or any(
                w is not None and w != s for w, s in zip(want, shape))):
            src = "given" if node.name in data else "the fit's (give it in data=)"
            plate_src = "; ".join(f"{k} = {sizes[k]} from {v}" for k, v in given_by.items()) or "the fit's sizes"
            raise VemError("data", f"'{node.name}' ({src}) has shape {shape}, which disagrees with the sizes of the "
                           f"replicated data ({plate_src}; other dims as fitted). Expected shape "
                           f"{tuple(w if w is not None else '?' for w in want)}", node.span)
    checked = {}
    for node in nodes:
        if not node.defs:  # a covariate: read by the replicates, so checked as fit checks it
            arr, _ = _check_support(node, data[node.name], None, False, True)
            if node.type.base == "cat":
                check_categories(node, arr, size_of(node.type.bound, sizes, node.name), " in the fit")
            checked[node.name] = arr
    return sizes, checked
