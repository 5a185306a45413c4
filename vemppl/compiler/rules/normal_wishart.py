"""The joint Normal–Wishart block: ``mu[k] ~ MvNormal(m, precision = c * Lam[k])``, ``Lam[k] ~ Wishart``."""

from __future__ import annotations

from ...families.normal_wishart import NormalWishart
from ...ir.expr import BinOp, Index, Name
from ...ir.graph import ModelGraph, reads
from ._joint import JointBlock

#: The block this rule makes (``compiler/rules/__init__.py``: a joint-block rule).
FAMILY = NormalWishart


def match(m: ModelGraph, factors) -> list[JointBlock]:
    """The blocks ``(("loc", mu), ("precision", Lam))`` of every pair found by :func:`normal_wishart_pairs`."""
    return [JointBlock((("loc", mu), ("precision", lam))) for mu, lam in normal_wishart_pairs(m, factors).items()]


def normal_wishart_pairs(m: ModelGraph, factors) -> dict[str, str]:
    """``{mu: Lam}`` for every ``mu[k] ~ MvNormal(m, precision = c * Lam[k])`` with
    ``Lam[k] ~ Wishart(...)`` over the same plate, m and c fixed (no latent or param read).

    Such a pair is one Normal–Wishart block q(mu[k], Lam[k]) (Bishop PRML §10.2.1) when every
    other factor that reads ``mu`` reads it as the location of an MvNormal whose precision
    is ``Lam`` (or a fixed multiple) at the same element, ``x[n] ~ MvNormal(mu[z[n]],
    precision = Lam[z[n]])``: the expected log joint is then affine in the block's
    statistics.  Otherwise the two stay mean-field.
    """
    random = {n.name for n in m.nodes.values() if n.kind in ("latent", "param")}

    def is_fixed(e, d) -> bool:
        return not any(r in random for r in reads(e, d.loop_vars))

    def element(e, d):
        """(node, indices) of ``Lam[k]``, ``c * Lam[k]`` or ``Lam[k] * c`` with c fixed."""
        if isinstance(e, BinOp) and e.op == "*":
            for a, b in ((e.left, e.right), (e.right, e.left)):
                if is_fixed(a, d):
                    return element(b, d)
            return None
        if isinstance(e, Index) and isinstance(e.base, Name):
            return e.base.id, e.indices
        if isinstance(e, Name):
            return e.id, ()
        return None

    def single(name, dist):
        node = m.nodes.get(name)
        ok = node is not None and node.kind == "latent" and len(node.defs) == 1 and node.amortised is None
        return node.defs[0] if ok and node.defs[0].dist == dist else None

    plates = lambda d: [(lp.var, lp.start, lp.stop) for lp in d.loops]  # noqa: E731
    pairs: dict[str, str] = {}
    for node in m.of_kind("latent"):
        d = single(node.name, NormalWishart.member_families["loc"])
        if d is None or d.arg("loc") is None or not is_fixed(d.arg("loc"), d):
            continue
        prec = element(d.arg("precision_matrix"), d) if d.arg("precision_matrix") is not None else None
        if prec is None or prec[1] != d.indices or prec[0] in pairs.values():
            continue
        w = single(prec[0], NormalWishart.member_families["precision"])
        if w is None or w.indices != d.indices or plates(w) != plates(d):
            continue
        if all(_reads_as_pair(f, node.name, prec[0], element) for f in factors if f.definition is not d):
            pairs[node.name] = prec[0]
    return pairs


def _reads_as_pair(f, loc: str, prec: str, element) -> bool:
    """True when factor ``f`` reads ``loc`` only as an MvNormal's location beside ``prec``
    (or a fixed multiple of it) at the same element, or not at all."""
    d = f.definition
    if loc not in reads_of(d):
        return True
    arg = d.arg("loc") if f.family == NormalWishart.member_families["loc"] else None
    where = (arg.base.id, arg.indices) if isinstance(arg, Index) and isinstance(arg.base, Name) else (
        (arg.id, ()) if isinstance(arg, Name) else None)
    other = [e for k, e in d.args if k not in ("loc", "precision_matrix")] + list(d.indices)
    if where is None or where[0] != loc or any(loc in reads(e, d.loop_vars) for e in other):
        return False
    p = d.arg("precision_matrix")
    return p is not None and element(p, d) == (prec, where[1])


def reads_of(d) -> set[str]:
    return {r for _, e in d.args for r in reads(e, d.loop_vars)}


__all__ = ["FAMILY", "match", "normal_wishart_pairs"]
