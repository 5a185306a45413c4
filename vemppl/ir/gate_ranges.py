"""The range of an index computed from a categorical latent (``lam[z[n] + 1]``, ``mu[2 * s]``).

A plain gate ``mu[z[n]]`` is checked in ``ir/sizes.py`` (the axis has ``z``'s number of
categories). An index that is arithmetic of one categorical latent and of constants is
enumerated like a gate, one value per category, and is gathered as written: a value outside
the axis was read by JAX's clamped (or, below 0, wrapped) gather as another element, silently
(``lam[z[n] + 1]`` with ``lam`` and ``z`` both of size 2 fitted category 1 twice and lowered
the ELBO). Here every value it takes over the categories must be a whole number inside the
axis: a ``shape`` error at the index otherwise, decided once the sizes are known.
"""

from __future__ import annotations

import itertools
import math

from ..diagnostics import VemError
from .expr import Index, Name, Num, head_name, substitute, walk
from .known import _categories
from .text import expr_to_text


def _gates(model, ix):
    """The distinct categorical-latent reads inside ``ix`` (``z[n]`` in ``z[n] + 1``)."""
    out = []
    for sub in walk(ix):
        if isinstance(sub, (Name, Index)) and sub not in out:
            node = model.nodes.get(head_name(sub) or "")
            if node is not None and node.kind == "latent" and _categories(model, node.name) is not None:
                shape_ok = not isinstance(sub, Name) or not model.shapes.get(sub.id)
                out += [sub] if shape_ok else []
    return out


def enumerated(known, ix):
    """``(gates, combos, values)`` of an index ``ix`` that reads categorical latents ``gates``:
    every combination of their categories (``combos``) and ``ix`` with the gates set to each
    (``values``, expressions), as the factor enumerates them; None where ``ix`` reads no gate or
    is one, a category count is not known, or there are more than ``_MAX_COMBINATIONS``."""
    gates = _gates(known.model, ix)
    if not gates or ix in gates:
        return None
    ks = [known.size(_categories(known.model, head_name(g))[0]) for g in gates]
    if any(k is None for k in ks) or math.prod(ks) > _MAX_COMBINATIONS:
        return None
    combos = list(itertools.product(*(range(k) for k in ks)))
    return gates, combos, [substitute(ix, lambda x, c=c: Num(c[gates.index(x)]) if x in gates else None)
                           for c in combos]


def check_gate_range(known, ix, axis, size_sym, size, base):
    """Every value of ``ix`` over the categories of the latents it reads lies in ``0..size-1``
    (over every combination where it reads two, ``lam[z[n] + c[n]]``, as the factor sums over them)."""
    if size is None:
        return
    found = enumerated(known, ix)
    if found is None:
        return
    gates, combos, at_combos = found
    values = [known.value(e) for e in at_combos]
    if any(v is None for v in values):
        return  # reads data or loop variables too: not decided here
    bad = [(v, c) for v, c in zip(values, combos) if not v.is_integer() or v < 0 or v >= size]
    if bad:
        lo, hi = min(values), max(values)
        over = (f"the {len(combos)} categories of '{expr_to_text(gates[0])}'" if len(gates) == 1 else
                "the categories of " + " and ".join(f"'{expr_to_text(g)}'" for g in gates))
        at = "" if len(gates) == 1 else " at " + ", ".join(f"{expr_to_text(g)} = {c}" for g, c in zip(gates, bad[0][1]))
        raise VemError(
            "shape",
            f"index {expr_to_text(ix)} of '{base}' takes the values {lo:g} .. {hi:g} over {over}, but axis {axis} of "
            f"'{base}' has size {size_sym}{'' if size_sym == size else f' = {size}'}. Expected whole numbers from 0 to "
            f"{size - 1}; got {bad[0][0]:g}{at}",
            ix.span,
            f"give '{base}' more entries on that axis, or " + " and ".join(f"'{head_name(g)}'" for g in gates) + " fewer categories",
        )


#: Combinations of categories enumerated to check an index of several latents (beyond: not checked).
_MAX_COMBINATIONS = 100_000
