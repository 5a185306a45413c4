"""What a joint-block rule returns (one block over several nodes, by role), and the match
shared by the location–precision blocks (Normal–Gamma, Normal–Wishart)."""

from __future__ import annotations

from typing import NamedTuple

from ...families import get_family
from ...ir.expr import BinOp, Index, Name
from ...ir.graph import ModelGraph, reads


class JointBlock(NamedTuple):
    """One block ``q(node_1, node_2, ...)`` of a structured family: its members as
    ``(role, node name)`` pairs in the order of the family's ``roles``.  The block is named
    after its first member."""

    members: tuple[tuple[str, str], ...]


def location_precision_pairs(m: ModelGraph, factors, family, precision_arg: str) -> list[JointBlock]:
    """The blocks ``(("loc", mu), ("precision", tau))`` of ``family`` (whose
    ``member_families`` name the location's and the precision's distributions, e.g. Normal
    and Gamma, MvNormal and Wishart): one for every ``mu[k] ~ Loc(m, precision_arg = c * tau[k])``
    (``c`` fixed or absent) with ``tau[k] ~ Prec(...)`` over the same plate and ``m`` fixed (no
    latent or param read), when every other factor that reads ``mu`` reads it as the location
    of a ``Loc`` (or of a family that is its factor at a known transform of the value, a
    LogNormal's at log y) whose precision is ``tau`` (or a fixed multiple) at the same element,
    ``x[n] ~ Loc(mu[z[n]], precision = tau[z[n]])``.  The expected log joint is then affine in
    the block's statistics (Bishop PRML §2.3.6 and §10.2.1; Murphy 2007, §6); otherwise the two
    stay mean-field."""
    loc_family, prec_family = family.member_families["loc"], family.member_families["precision"]
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

    def single(name, dist):
        node = m.nodes.get(name)
        ok = node is not None and node.kind == "latent" and len(node.defs) == 1 and node.amortised is None
        return node.defs[0] if ok and node.defs[0].dist == dist else None

    def reads_as_pair(f, loc, prec) -> bool:
        """``f`` reads ``loc`` only as a ``Loc``'s location beside ``prec`` at the same element, or not at all."""
        d = f.definition
        if not any(loc in reads(e, d.loop_vars) for _, e in d.args):
            return True
        fam = get_family(f.family)
        arg = d.arg("loc") if loc_family in (fam.name, fam.factor_of) else None
        where = (arg.base.id, arg.indices) if isinstance(arg, Index) and isinstance(arg.base, Name) else (
            (arg.id, ()) if isinstance(arg, Name) else None)
        other = [e for k, e in d.args if k not in ("loc", precision_arg)] + list(d.indices)
        if where is None or where[0] != loc or any(loc in reads(e, d.loop_vars) for e in other):
            return False
        p = d.arg(precision_arg)
        return p is not None and element(p, d) == (prec, where[1])

    plates = lambda d: [(lp.var, lp.start, lp.stop) for lp in d.loops]  # noqa: E731
    found, taken = [], set()
    for node in m.of_kind("latent"):
        d = single(node.name, loc_family)
        if d is None or d.arg("loc") is None or not is_fixed(d.arg("loc"), d) or d.arg(precision_arg) is None:
            continue
        prec = element(d.arg(precision_arg), d)
        if prec is None or prec[1] != d.indices or prec[0] in taken:
            continue
        t = single(prec[0], prec_family)
        if t is None or t.indices != d.indices or plates(t) != plates(d):
            continue
        if all(reads_as_pair(f, node.name, prec[0]) for f in factors if f.definition is not d):
            found.append(JointBlock((("loc", node.name), ("precision", prec[0]))))
            taken.add(prec[0])
    return found


__all__ = ["JointBlock", "location_precision_pairs"]
