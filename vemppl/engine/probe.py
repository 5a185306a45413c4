"""Conjugacy by probing: run the expected log joint once on stand-in data and record
which moments of each block it reads.

A block is closed-form (CAVI) when every moment read of it is one of its family's
sufficient statistics and no product couples two of its elements; otherwise the block
gets a gradient update, and the plan records the factor that broke conjugacy with its
source span (issue: the conjugacy report).  Stand-in sizes are small distinct numbers, so
the probe costs milliseconds and needs no data.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from ..diagnostics import VemError
from ..ir.memory import check_memory
from ..ir.expr import Name
from .bind import Bound
from .moments import NoMoment, NotFixed, PointMass, Tracker
from .mstep import choose_family

_STAND_IN = (3, 4, 5, 7, 11, 13, 17)


def stand_in_binding(model) -> Bound:
    from .bind import _size
    from .evaluate import eval_fixed

    sizes, values = {}, {}
    dims = [n.name for n in model.of_kind("dim")]
    # Above every number a loop bound is written with (``for t in range(20, T)`` needs T > 20).
    floor = _largest_loop_literal(model)
    for i, name in enumerate(dims):
        sizes[name] = floor + _STAND_IN[i % len(_STAND_IN)] + 10 * (i // len(_STAND_IN))
    for node in model.of_kind("const"):
        v = np.asarray(eval_fixed(node.value, sizes, values))
        values[node.name] = v
        if v.ndim == 0 and float(v).is_integer():
            sizes[node.name] = int(v)
    for node in model.of_kind("data"):
        t = node.type
        shape = tuple(_size(e, sizes, node.name) for e in t.shape)
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
    from ..ir.expr import Num, walk

    top = 0
    for node in model.nodes.values():
        for d in node.defs:
            for loop in d.loops:
                for e in (loop.start, loop.stop):
                    for x in walk(e):
                        if isinstance(x, Num) and float(x.value).is_integer():
                            top = max(top, int(x.value))
    return top


def conjugacy(model, plan):
    from .cavi import Engine

    bound = stand_in_binding(model)
    check_memory(model, bound.sizes, stand_in=True)  # the probe's own arrays (issue #23: `check` must not exhaust memory)
    engine = Engine(model, plan, bound)
    try:
        state = engine.init(jax.random.PRNGKey(0))
        tracker = Tracker()
        tracker.factor = None
        spans: dict[str, str] = {}
        orig_flag = tracker.flag

        def flag(block, why):
            f = tracker.factor
            where = ""
            if f is not None and f.definition.span is not None:
                sp = f.definition.span
                where = f" at {sp.file or '<model>'}:{sp.line}:{sp.column}"
            spans.setdefault(block, f"{f.describe() if f else '?'}{where}: {why}")
            orig_flag(block, why)

        tracker.flag = flag
        # Point parameters enter as point masses offering every moment, so the probe
        # sees which of them the expected log joint reads.
        # Networks enter with their weights: a network is never a candidate for a closed form.
        nets = set(engine.networks)
        extra = {
            p: (PointMass, PointMass.stats(v), PointMass.stats(v)) for p, v in state.params.items() if p not in nets
        }
        jax.eval_shape(
            lambda s: engine.expected_log_joint(
                s.mu, s.eta, {p: s.params[p] for p in nets}, engine.data, tracker, extra_blocks=extra, key=s.key
            ),
            state,
        )
    except (NoMoment, NotFixed) as exc:
        blk = getattr(exc, "block", "?")
        f = getattr(tracker, "factor", None) if "tracker" in dir() else None
        span = f.definition.span if f is not None else None
        raise VemError(
            "unsupported",
            f"{exc}" + (f" in '{f.describe()}'" if f is not None else ""),
            span,
            "gradient (non-conjugate) updates for this construct are not implemented yet",
        ) from None
    blocks = []
    for b in plan.blocks:
        if b.update == "amortised":
            blocks.append(b)
        elif b.name in tracker.nonlinear:
            blocks.append(dataclasses.replace(b, update="natural-gradient", reason=spans.get(b.name)))
        else:
            blocks.append(b)
    # Two gates on the same block in one factor (z[t-1] and z[t]) couple its elements.
    chains = {b.name for b in plan.blocks if b.structure == "markov-chain"}
    for f in plan.factors:
        seen = [r.block for r in f.enum]
        for blk in {x for x in seen if seen.count(x) > 1} - chains:
            i = next(i for i, b in enumerate(blocks) if b.name == blk)
            blocks[i] = dataclasses.replace(
                blocks[i], update="natural-gradient", reason=f"{f.describe()}: reads two steps of '{blk}' (a Markov chain)"
            )
    params = []
    for p in plan.params:
        if p.mstep == "network":
            enc = [n.name for n in model.of_kind("latent") if n.amortised is not None and n.amortised.expr.func == p.name]
            why = spans.get(p.name) or (f"the encoder of q({', '.join(enc)})" if enc else "a neural network")
            params.append(dataclasses.replace(p, reason=f"not conjugate: {why}"))
            continue
        reads = tracker.reads.get(p.name, set())
        fam = None if p.name in tracker.nonlinear else choose_family(p.type, reads)
        if fam is not None:
            params.append(dataclasses.replace(p, mstep="closed-form", family=fam))
        else:
            why = spans.get(p.name) or f"reads E[{', '.join(sorted(reads))}] of it, affine under no family for type {p.type}"
            params.append(dataclasses.replace(p, mstep="gradient", reason=why))
    return dataclasses.replace(plan, blocks=tuple(blocks), params=tuple(params))


__all__ = ["conjugacy", "stand_in_binding", "Name"]
