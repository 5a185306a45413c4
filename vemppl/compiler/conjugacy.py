"""Conjugacy, decided by tracing the pure expected log joint on stand-in sizes.

The expected log joint ``L`` (``elj.joint.Joint``) is traced once, abstractly
(``jax.eval_shape``), with every block at its prior and every point parameter as a point
mass offering every moment; a ``moments.Tracker`` records each moment read of each block
and each read that is not affine.  A block is closed-form (CAVI) when every moment read of
it is one of its family's sufficient statistics and no product couples two of its elements
(GUIDE §2); otherwise it gets a damped natural-gradient update, and the plan records the
factor that broke conjugacy with its source span.  A point parameter's M-step is closed
form under the first family of its type whose statistics cover the moments read of it.
Stand-in sizes are small distinct numbers, so the trace costs milliseconds and needs no data.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from .. import _prng
from ..diagnostics import VemError
from ..elj.binding import Bound
from ..elj.evaluate import const_value, eval_fixed, size_of
from ..elj.joint import Joint
from ..elj.moments import NoMoment, NotFixed, PointMass, Tracker
from ..elj.prior import chain_stats, initial_params, num_categories, prior_blocks
from ..families import get_family
from ..ir.expr import Num, walk
from ..ir.memory import check_memory
from ..plan import BlockStructure, MStep, ParamPlan, Plan, Update
from . import probe_cache

_STAND_IN = (3, 4, 5, 7, 11, 13, 17)

#: For each declared type, the families whose statistics may make ``L`` affine, in order.
_CANDIDATES = {
    "real": ("Normal", "MvNormal"),
    "pos": ("Gamma",),
    "unit": ("Beta",),
    "simplex": ("Dirichlet",),
    "spd": ("Wishart",),
}


def choose_family(type_base: str, moments_read: set[str]) -> str | None:
    """The family under which ``L`` is affine in ``T(θ)``, given the moments read of θ."""
    for name in _CANDIDATES.get(type_base, ()):
        fields = set(get_family(name).Stats._fields)
        if moments_read <= fields:
            return name
    return None


def stand_in_binding(model) -> Bound:
    """Sizes that are small distinct numbers above every loop bound written in the model,
    constants evaluated at them, and data arrays filled with a value inside their support."""
    dims = [n.name for n in model.of_kind("dim")]
    # Above every number a loop bound is written with (``for t in range(20, T)`` needs T > 20),
    # and above every const one is (``for t in range(P, T)`` with ``const P = 5``).
    floor = _largest_loop_literal(model)
    for _ in range(2):
        sizes, values = {}, {}
        for i, name in enumerate(dims):
            sizes[name] = floor + _STAND_IN[i % len(_STAND_IN)] + 10 * (i // len(_STAND_IN))
        for node in model.of_kind("const"):
            v = const_value(node, sizes, values)
            values[node.name] = v
            if v.ndim == 0 and float(v).is_integer():
                sizes[node.name] = int(v)
        starts = [size_of(lp.start, sizes) for nd in model.nodes.values() for d in nd.defs for lp in d.loops]
        top = max([x for x in starts if x is not None] or [0])
        if top <= floor:
            break
        floor = top
    for node in model.of_kind("data"):
        t = node.type
        shape = tuple(size_of(e, sizes, node.name) for e in t.shape)
        if t.base == "spd":
            shape = shape + shape[-1:]
            values[node.name] = np.broadcast_to(np.eye(shape[-1]), shape).copy()
            continue
        fill = {"real": 0.5, "pos": 1.0, "unit": 0.5, "int": 1, "count": 1, "bool": 1, "cat": 0, "simplex": None}[t.base]
        if t.base == "simplex":
            values[node.name] = np.full(shape, 1.0 / shape[-1])
        else:
            values[node.name] = np.full(shape, fill)
    return Bound(sizes, values)


def _largest_loop_literal(model) -> int:
    top = 0
    for node in model.nodes.values():
        for d in node.defs:
            for loop in d.loops:
                for e in (loop.start, loop.stop):
                    for x in walk(e):
                        if isinstance(x, Num) and float(x.value).is_integer():
                            top = max(top, int(x.value))
    return top


def _trace(joint: Joint, params: dict, key, tracker: Tracker):
    """L at the prior (chains at uniform marginals), point parameters as point masses."""
    eta, mu = prior_blocks(joint, params, key, joint.data)
    for b in joint.plan.blocks:
        if b.structure is BlockStructure.MARKOV_CHAIN:
            k = num_categories(joint, b.name, mu, eta, params)
            r = np.full(joint.bound_shape(b.name) + (k,), 1.0 / k)
            eta[b.name], mu[b.name] = chain_stats(joint.families[b.name], r, 0.0)
    # Point parameters enter as point masses offering every moment, so the trace sees which
    # of them the expected log joint reads; networks enter with their weights (a network is
    # never a candidate for a closed form).
    nets = set(joint.networks)
    extra = {p: (PointMass, PointMass.stats(v), PointMass.stats(v)) for p, v in params.items() if p not in nets}
    weights = {p: params[p] for p in nets}
    return joint.expected_log_joint(mu, eta, weights, joint.data, tracker, extra_blocks=extra, key=key)


def read_moments(model, plan: Plan) -> Tracker:
    """The tracker of one abstract trace of ``L`` at the prior on stand-in sizes, or its
    reading kept on disk by an earlier process (compiler/probe_cache.py)."""
    bound = stand_in_binding(model)
    check_memory(model, bound.sizes, stand_in=True)  # the trace's own arrays (issue #23: `check` must not exhaust memory)
    kept = probe_cache.read(model, plan)
    if kept is not None:
        return kept
    joint = Joint(model, plan, bound)
    k_params, k_blocks = _prng.split(_prng.key(0))  # JAX's keys, made in NumPy: no XLA programs
    tracker = Tracker()
    try:
        params = initial_params(joint, k_params)
        jax.eval_shape(lambda params: _trace(joint, params, k_blocks, tracker), params)
    except (NoMoment, NotFixed) as exc:
        f = getattr(exc, "factor", None) or tracker.factor
        raise VemError(
            "unsupported",
            f"{exc}" + (f" in '{f.describe()}'" if f is not None else ""),
            f.definition.span if f is not None else None,
            "gradient (non-conjugate) updates for this construct are not implemented yet",
        ) from None
    probe_cache.write(model, plan, tracker)
    return tracker


def conjugacy(model, plan: Plan) -> Plan:
    """``plan`` with each block's update kind and each parameter's M-step decided."""
    tracker = read_moments(model, plan)
    blocks = []
    for b in plan.blocks:
        if b.update is not Update.AMORTISED and b.name in tracker.nonlinear:
            b = dataclasses.replace(b, update=Update.NATURAL_GRADIENT, reason=tracker.reasons.get(b.name))
        blocks.append(b)
    # Two gates on the same block in one factor (z[t-1] and z[t]) couple its elements.
    chains = {b.name for b in plan.blocks if b.structure is BlockStructure.MARKOV_CHAIN}
    for f in plan.factors:
        seen = [r.block for r in f.enum]
        for blk in {x for x in seen if seen.count(x) > 1} - chains:
            i = next(i for i, b in enumerate(blocks) if b.name == blk)
            blocks[i] = dataclasses.replace(
                blocks[i], update=Update.NATURAL_GRADIENT,
                reason=f"{f.describe()}: gated by two elements of '{blk}' at once, which may be the same "
                       "element: not affine in its q",
            )
    return dataclasses.replace(plan, blocks=tuple(blocks), params=tuple(_mstep(model, p, tracker) for p in plan.params))


def _mstep(model, p: ParamPlan, tracker: Tracker) -> ParamPlan:
    if p.mstep is MStep.NETWORK:
        enc = [n.name for n in model.of_kind("latent") if n.amortised is not None and n.amortised.expr.func == p.name]
        why = tracker.reasons.get(p.name) or (f"the encoder of q({', '.join(enc)})" if enc else "a neural network")
        return dataclasses.replace(p, reason=f"not conjugate: {why}")
    reads = tracker.reads.get(p.name, set())
    fam = None if p.name in tracker.nonlinear else choose_family(p.type, reads)
    if fam is not None:
        return dataclasses.replace(p, mstep=MStep.CLOSED_FORM, family=fam)
    why = tracker.reasons.get(p.name) or f"reads E[{', '.join(sorted(reads))}] of it, affine under no family for type {p.type}"
    return dataclasses.replace(p, mstep=MStep.GRADIENT, reason=why)


__all__ = ["choose_family", "conjugacy", "read_moments", "stand_in_binding"]
