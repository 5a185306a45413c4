"""Bilinear terms of two Gaussian latents: the global side starts from a draw of its prior."""

from __future__ import annotations

from ...families import get_family
from ...ir.expr import BinOp, Call, Index, Name, head_name, walk
from ...ir.graph import ModelGraph


def bilinear_globals(m: ModelGraph, factors) -> set[str]:
    """Gaussian latents multiplied by another Gaussian latent that is local to the data.

    In ``dot(W[j], z[n])`` inside the loop over ``n``, ``W = 0, E[z] = 0`` is a saddle that
    CAVI started from the prior does not leave, and ARD priors then switch every column
    off (VB-PCA from a symmetric start; Bishop 1999, Ilin & Raiko 2010).  The global side
    (the operand not indexed by the factor's outermost loop) starts from a draw of its
    prior and is updated after the local side, so the first update of the local side is a
    random projection of the data (one step of power iteration).
    """
    gaussian = {
        n.name for n in m.of_kind("latent") if n.defs and get_family(n.defs[0].dist).gaussian
    }
    out: set[str] = set()
    for f in factors:
        d = f.definition
        if not d.loops:
            continue
        for _, e in d.args:
            for sub in walk(e):
                if isinstance(sub, Call) and sub.func == "dot" and len(sub.args) == 2:
                    pair = sub.args
                elif isinstance(sub, BinOp) and sub.op in ("@", "*"):
                    pair = (sub.left, sub.right)
                else:
                    continue
                read = [_gaussians_read(x, gaussian) for x in pair]
                if not all(read) or read[0] & read[1]:
                    continue
                local = _local_side(pair, [lp.var for lp in d.loops])
                if local is not None:
                    out |= read[1 - local]
    return out


def _local_side(pair, loop_vars):
    """Which operand is local: the one that alone reads the outermost loop variable; where both
    read it (``a[j] * (theta[i] - b[j])`` inside ``for j { for i { ... } }``), the next loop's, so
    the loops' nesting order does not change the start.  None where no loop tells them apart."""
    for var in loop_vars:
        local = [any(isinstance(v, Name) and v.id == var for v in walk(x)) for x in pair]
        if local.count(True) != 2:
            return local.index(True) if local.count(True) == 1 else None
    return None


def _gaussians_read(x, gaussian) -> set[str]:
    """The Gaussian latents an operand reads: its head (``W[j]``), or the latents of an
    expression (``theta[i] - b[j]`` in a 2PL IRT's ``a[j] * (theta[i] - b[j])``), whose
    global side is the same saddle: ``E[theta] = 0`` gives ``a`` no sign to take."""
    head = head_name(x)
    if head is not None:
        return {head} if head in gaussian else set()
    return {h for v in walk(x) if isinstance(v, (Name, Index)) and (h := head_name(v)) in gaussian}


__all__ = ["bilinear_globals"]
