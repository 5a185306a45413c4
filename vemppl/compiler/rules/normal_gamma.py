"""The joint Normal–Gamma block: ``mu[k] ~ Normal(m, precision = c * tau[k])``, ``tau[k] ~ Gamma``."""

from __future__ import annotations

from ...families.normal_gamma import NormalGamma
from ...ir.expr import BinOp, Index, Name
from ...ir.graph import ModelGraph, reads
from ._joint import JointBlock

#: The block this rule makes (``compiler/rules/__init__.py``: a joint-block rule).
FAMILY = NormalGamma
_LOC, _PREC = NormalGamma.member_families["loc"], NormalGamma.member_families["precision"]


def match(m: ModelGraph, factors) -> list[JointBlock]:
    """One block ``(("loc", mu), ("precision", tau))`` for every ``mu[k] ~ Normal(m,
    precision = c * tau[k])`` (``c`` fixed or absent) with ``tau[k] ~ Gamma(...)`` over the
    same plate, ``m`` fixed (no latent or param read), when every other factor that reads
    ``mu`` reads it as the location of a Normal whose precision is ``tau`` (or a fixed
    multiple) at the same element, ``x[n] ~ Normal(mu[z[n]], precision = tau[z[n]])``: the
    expected log joint is then affine in the block's statistics (Murphy 2007, §6).
    Otherwise the two stay mean-field."""
    random = {n.name for n in m.nodes.values() if n.kind in ("latent", "param")}

    def is_fixed(e, d) -> bool:
        return not any(r in random for r in reads(e, d.loop_vars))

    def element(e, d):
        """(node, indices) of ``tau[k]``, ``c * tau[k]`` or ``tau[k] * c`` with c fixed."""
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

    def single(name, family):
        node = m.nodes.get(name)
        ok = node is not None and node.kind == "latent" and len(node.defs) == 1 and node.amortised is None
        return node.defs[0] if ok and node.defs[0].dist == family else None

    def reads_as_pair(f, loc, prec) -> bool:
        """``f`` reads ``loc`` only as a Normal's location beside ``prec`` at the same element, or not at all."""
        d = f.definition
        if not any(loc in reads(e, d.loop_vars) for _, e in d.args):
            return True
        arg = d.arg("loc") if f.family == _LOC else None
        where = (arg.base.id, arg.indices) if isinstance(arg, Index) and isinstance(arg.base, Name) else (
            (arg.id, ()) if isinstance(arg, Name) else None)
        other = [e for k, e in d.args if k not in ("loc", "precision")] + list(d.indices)
        if where is None or where[0] != loc or any(loc in reads(e, d.loop_vars) for e in other):
            return False
        p = d.arg("precision")
        return p is not None and element(p, d) == (prec, where[1])

    plates = lambda d: [(lp.var, lp.start, lp.stop) for lp in d.loops]  # noqa: E731
    found, taken = [], set()
    for node in m.of_kind("latent"):
        d = single(node.name, _LOC)
        if d is None or d.arg("loc") is None or not is_fixed(d.arg("loc"), d) or d.arg("precision") is None:
            continue
        prec = element(d.arg("precision"), d)
        if prec is None or prec[1] != d.indices or prec[0] in taken:
            continue
        t = single(prec[0], _PREC)
        if t is None or t.indices != d.indices or plates(t) != plates(d):
            continue
        if all(reads_as_pair(f, node.name, prec[0]) for f in factors if f.definition is not d):
            found.append(JointBlock((("loc", node.name), ("precision", prec[0]))))
            taken.add(prec[0])
    return found


__all__ = ["FAMILY", "match"]
