"""Markov chains: a categorical latent whose steps read the previous step is one chain block."""

from __future__ import annotations

from ...ir.expr import BinOp, Index, Name, Num, children
from ...ir.graph import ModelGraph


def is_markov_chain(z: str, factors) -> bool:
    return any(f.target == z and sum(r.block == z for r in f.enum) >= 2 for f in factors)


def is_homogeneous_chain(m: ModelGraph, z: str, factors) -> bool:
    """The chain's pairwise potential is the same at every step, so its statistic can be the
    expected transition counts (families/markov_chain_homogeneous.py).  That holds when:

    * one factor reads two steps of ``z``, its own transition ``z[.., t] ~ f(.. z[.., t-1] ..)``,
      defined for ``t in range(1, ·)`` (each step after the first has one transition);
    * ``z``'s one other definition is its first step ``z[.., 0]``, under the same outer loops
      (every sequence has its transitions);
    * the transition's arguments read ``t`` only through ``z[.., t-1]`` (``A[z[t-1]]``, not
      ``A[t][z[t-1]]`` or ``A[z[t-1], u[t]]``), so its expected log-density is one K×K table.
    """
    pair = [f for f in factors if sum(r.block == z for r in f.enum) >= 2]
    defs = m.nodes[z].defs
    if len(pair) != 1 or pair[0].target != z or len(defs) != 2:
        return False
    d = pair[0].definition
    first = next(x for x in defs if x is not d)
    if not d.indices or not isinstance(d.indices[-1], Name):
        return False
    t = d.indices[-1].id
    loop_t = next((lp for lp in d.loops if lp.var == t), None)
    if loop_t is None or loop_t.start != Num(1) or not first.indices or first.indices[-1] != Num(0):
        return False
    if first.indices[:-1] != d.indices[:-1] or first.loops != tuple(lp for lp in d.loops if lp.var != t):
        return False
    lagged = Index(Name(z), d.indices[:-1] + (BinOp("-", Name(t), Num(1)),))

    def reads_t(e):
        if isinstance(e, Index) and isinstance(e.base, Name) and e.base.id == z:
            return e != lagged
        if isinstance(e, Name):
            return e.id == t
        return any(reads_t(c) for c in children(e))

    return not any(reads_t(e) for _, e in d.args)


__all__ = ["is_markov_chain", "is_homogeneous_chain"]
