"""Linear-Gaussian chains: a Gaussian latent whose steps read the previous step linearly.

``x[.., 0] ~ Normal(m0, ...)`` and ``x[.., t] ~ Normal(a * x[.., t-1] + b, precision = q)``
for ``t in range(1, ·)`` make ``x`` one block, a chain of Gaussians
(families/gaussian_chain.py) whose update is the Kalman smoother; the same with
``MvNormal(A @ x[.., t-1] + b, ...)`` a chain of vectors.  ``a`` (``A``) and ``b`` may be
random (a latent or a ``param``) as long as they do not read the chain: mean-field between
them and the chain keeps the expected log joint affine in both (elj/lagged.py).  A latent of any other
family (or a vector) that reads its own elements, or a scalar Gaussian that reads them in
any other way, is refused here with an ``unsupported`` error at its statement, not left to
fail while its prior is evaluated.
"""

from __future__ import annotations

from ...diagnostics import VemError
from ...families import get_family
from ...families.gaussian_chain import GaussianChain, MvGaussianChain
from ...ir.expr import BinOp, Index, Name, Neg, Num
from ...ir.graph import ModelGraph, reads
from ...ir.text import expr_to_text

_FORM = ("x[t] ~ Normal(a * x[t-1] + b, precision = q) for t in range(1, T), with x[0] ~ Normal(...) "
         "(or MvNormal(A @ x[t-1] + b, precision = Q) for vectors)")


def gaussian_chains(m: ModelGraph) -> dict[str, str]:
    """The latents that are linear-Gaussian chains, each with its chain family (of scalars or
    of vectors, by the event rank of its Gaussian).  Raises a located ``unsupported`` error
    for a latent that reads its own elements in a form no rule fits, unless it is
    categorical (a Markov chain of categoricals: compiler/rules/markov_chain.py)."""
    random = {n.name for n in m.of_kind("latent")}  # a multiplier may be a constant, data or a param
    chains = {}
    for node in m.of_kind("latent"):
        own = [d for d in node.defs if any(node.name in reads(e, d.loop_vars) for _, e in d.args)]
        if not own:
            continue
        fam = get_family(node.defs[0].dist)
        if fam.support == "cat":
            continue
        why = _not_a_chain(node, own, fam, random)
        if why is not None:
            raise VemError(
                "unsupported",
                f"'{node.name}' reads its own elements: {why}. A chain over a continuous latent is fitted "
                f"as one block (Kalman smoothing) when it is written {_FORM}",
                own[0].span,
                "write the transition as a scalar Gaussian whose location is a multiple of the previous "
                "step plus a term, neither of which reads the chain",
            )
        chains[node.name] = (GaussianChain if fam.event_rank == 0 else MvGaussianChain).name
    return chains


def _not_a_chain(node, own, fam, random) -> str | None:
    """Why ``node`` is not a linear-Gaussian chain, or None when it is."""
    x = node.name
    if not (fam.gaussian and fam.event_rank in (0, 1)):
        return f"a chain of {fam.name} latents has no structured block (only Normal and MvNormal chains do)"
    if len(own) != 1 or len(node.defs) != 2:
        return "it needs exactly two statements, its first step and one transition"
    d = own[0]
    first = next(e for e in node.defs if e is not d)
    if not d.indices or not isinstance(d.indices[-1], Name):
        return "the transition must be indexed by its step's loop variable last (x[t] or x[s, t])"
    t = d.indices[-1].id
    loop = next((lp for lp in d.loops if lp.var == t), None)
    if loop is None or loop.start != Num(1):
        return f"the transition's loop over {t} must start at 1 (for {t} in range(1, T))"
    if not first.indices or first.indices[-1] != Num(0) or first.indices[:-1] != d.indices[:-1]:
        return "its first step must be x[0] (x[s, 0] for several sequences)"
    if first.loops != tuple(lp for lp in d.loops if lp.var != t):
        return "its first step and its transition must run over the same sequences"
    if any(x in reads(e, first.loop_vars) for _, e in first.args):
        return "its first step reads the chain"
    lag = Index(Name(x), d.indices[:-1] + (BinOp("-", Name(t), Num(1)),))
    for k, e in d.args:
        if k != "loc" and x in reads(e, d.loop_vars):
            return f"its {k} reads the chain (only the location may)"
    if not _affine_in(d.arg("loc"), lag, x, random, d.loop_vars):
        return (f"its location must be a * {expr_to_text(lag)} + b (A @ {expr_to_text(lag)} + b for vectors), "
                "with a (A) and b not reading the chain (a divisor must be fixed)")
    return None


def _affine_in(e, lag, x, random, loop_vars) -> bool:
    """``e`` is ``lag``, ``c * e'``, ``e' * c``, ``A @ e'``, ``e' / d``, ``-e'``, ``e' ± b`` or
    ``b + e'`` with ``e'`` affine in ``lag``, ``c``, ``A`` and ``b`` not reading ``x`` (random or
    not) and the divisor ``d`` fixed (E[1/φ] is no statistic of a Normal)."""
    if e == lag:
        return True
    if isinstance(e, Neg):
        return _affine_in(e.operand, lag, x, random, loop_vars)
    if not isinstance(e, BinOp):
        return False
    free = lambda s: x not in reads(s, loop_vars)  # noqa: E731
    fixed = lambda s: not any(r in random for r in reads(s, loop_vars))  # noqa: E731
    if e.op in "+-":
        if free(e.right):
            return _affine_in(e.left, lag, x, random, loop_vars)
        return e.op == "+" and free(e.left) and _affine_in(e.right, lag, x, random, loop_vars)
    if e.op in ("*", "@"):  # a random multiplier independent of the chain: E[φ] E[x_t x_{t−1}] (elj/lagged.py)
        return (free(e.left) and _affine_in(e.right, lag, x, random, loop_vars)) or (
            free(e.right) and _affine_in(e.left, lag, x, random, loop_vars))
    if e.op == "/":
        return fixed(e.right) and _affine_in(e.left, lag, x, random, loop_vars)
    return False


__all__ = ["gaussian_chains"]
