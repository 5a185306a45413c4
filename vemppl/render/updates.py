"""The derived updates of a compiled plan, written as Markdown math.

Nothing here is written per model: each block's update is read off the plan's factors.
For a block ``j`` with family ``F`` the closed-form update is

    η_j = ∇_{E[T_j]} Σ_{factors f touching j} E_q[log f],       E[T_j] = ∇A_F(η_j)

(Winn & Bishop 2005), so the text lists, for every block, the factors that send it a
message, with every gated categorical replaced by its category index and weighted by its
responsibility.  For a categorical block the gradient is the log-responsibility itself,
``log r = Σ E[log f] + const`` (Bishop PRML eq. 10.46 for the mixture).
"""

from __future__ import annotations

from ..families import get_family
from ..compiler import compile_model
from ..ir.graph import as_ir
from ..ir.text import expr_to_text
from ..ir.expr import BinOp, Call, Index, Name, Neg
from ..ir.graph import reads

_NATURAL = {
    "Normal": "precision `τ = −2η₂`, mean `η₁/τ`",
    "MvNormal": "precision `Λ = −2η₂`, mean `Λ⁻¹η₁`",
    "Gamma": "shape `η₂ + 1`, rate `−η₁`",
    "Wishart": "scale `V = (−2η₁)⁻¹`, degrees of freedom `2η₂ + D + 1`",
    "Dirichlet": "concentration `η + 1`",
    "Beta": "concentrations `η₁ + 1`, `η₂ + 1`",
    "Categorical": "probabilities `softmax(η)`",
    "MarkovChain": "unary and pairwise log-potentials; marginals by forward–backward (∇ of the forward pass)",
    "HomogeneousMarkovChain": "unary log-potentials and one pairwise log-potential shared by every step; marginals "
                              "and expected transition counts by forward–backward (∇ of the forward pass)",
    "NormalWishart": "`β = −2η₂`, `m = η₁/β`, `W⁻¹ = −2η₃ − η₁η₁ᵀ/β`, `ν = 2η₄ + D` (Bishop 10.60–10.63)",
}

#: Statistics of a joint block, written with its members by role.
_JOINT_STATS = {"NormalWishart": "E[{precision} {loc}], E[{loc}ᵀ {precision} {loc}], E[{precision}], E[log|{precision}|]"}


def _subst(e, mapping):
    if e in mapping:
        return Name(mapping[e])
    if isinstance(e, Index):
        return Index(_subst(e.base, mapping), tuple(_subst(i, mapping) for i in e.indices))
    if isinstance(e, BinOp):
        return BinOp(e.op, _subst(e.left, mapping), _subst(e.right, mapping))
    if isinstance(e, Neg):
        return Neg(_subst(e.operand, mapping))
    if isinstance(e, Call):
        return Call(e.func, tuple(_subst(a, mapping) for a in e.args))
    return e


def _factor_text(f, mapping) -> str:
    d = f.definition
    target = Index(Name(f.target), d.indices) if d.indices else Name(f.target)
    args = ", ".join(
        (expr_to_text(_subst(v, mapping)) if i == 0 else f"{k} = {expr_to_text(_subst(v, mapping))}")
        for i, (k, v) in enumerate(d.args)
    )
    return f"E[log {f.family}({expr_to_text(_subst(target, mapping))} | {args})]"


def _loops_text(f) -> str:
    return "".join(f"Σ_{lp.var} " for lp in f.definition.loops)


def derived_updates(model, plan=None) -> str:
    """Markdown: for each block, its family, statistics and the terms of its update."""
    m = as_ir(model)
    plan = plan or compile_model(m)
    out = [f"# Derived updates for `{plan.model}`", ""]
    for name in plan.schedule:
        b = plan.block(name)
        fam = get_family(b.family)
        nodes = [n for _, n in b.members] or [name]  # a joint block's members, or the node
        elems = []
        for n in nodes:
            d0 = max(m.nodes[n].defs, key=lambda d: (len(d.indices), len(d.loops)))
            elems.append(expr_to_text(Index(Name(n), d0.indices)) if d0.indices else n)
        elem = ", ".join(elems)
        kind = "closed-form CAVI" if b.update == "cavi" else b.update
        out.append(f"## q({elem}): {b.family} ({kind})")
        if b.update == "amortised":
            enc = expr_to_text(m.nodes[name].amortised.expr)
            out += [
                f"- `q({elem}) = N(m, diag(σ²))` with `(m, log σ)` the two halves of `{enc}`: no update of its own",
                f"- it enters `E_q[log p]` at one reparameterised draw `{elem} = m + σ ⊙ ε` per iteration, "
                "and `H[q]` exactly; the encoder takes Adam steps with the networks (M-step)",
                "",
            ]
            continue
        if b.members and b.family in _JOINT_STATS:
            stats = _JOINT_STATS[b.family].format(**{role: e for (role, _), e in zip(b.members, elems)})
        else:
            stats = ", ".join(f"E[{s}({elem})]" for s in fam.Stats._fields)
        out.append(f"- statistics: `{stats}`; natural parameters give {_NATURAL.get(b.family, 'its parameters')}")
        if b.reason:
            out.append(f"- not conjugate: {b.reason}")
        terms = []
        for f in plan.factors:
            touches = f.target in nodes or bool(set(nodes) & reads_of(f))
            if not touches:
                continue
            mapping, weights = {}, []
            letters = iter("klmcdefgh")
            for r in f.enum:
                sym = next(letters)
                mapping[r.expr] = sym
                if r.block != name or f.target not in nodes:
                    weights.append(f"r[{expr_to_text(r.expr)} = {sym}]")
            w = "·".join(weights)
            sums = _loops_text(f) + "".join(f"Σ_{mapping[r.expr]} " for r in f.enum)
            terms.append(f"{sums}{(w + ' · ') if w else ''}{_factor_text(f, mapping)}")
        if fam.support == "cat":
            out.append(f"- update: `log r[{elem} = k] = ` ∂/∂r of")
        else:
            out.append(f"- update: `η({elem}) = ∇_{{E[T({elem})]}}` of")
        out += [f"    - `{t}`" for t in terms]
        out.append("")
    if plan.params:
        out.append("## M-step")
        for p in plan.params:
            if p.mstep == "closed-form":
                out.append(
                    f"- `{p.name}` ({p.type}): `{p.name} = mode_{p.family}(g)` with `g = ∇_{{T({p.name})}} E_q[log p]`, "
                    f"T the {p.family} statistics"
                )
            elif p.mstep == "network":
                out.append(
                    f"- `{p.name}` (network): one Adam step per iteration on the Monte Carlo ELBO "
                    "`E_q[log p] + Σ_j H[q_j]`, gradients through the reparameterised draws"
                )
            else:
                out.append(f"- `{p.name}` ({p.type}): Adam steps on `E_q[log p]` in the unconstrained space of {p.type}")
        out.append("")
    out.append("Then `E[T] = ∇A(η)` for each block; the ELBO is `E_q[log p] + Σ_j H[q_j]`.")
    return "\n".join(out) + "\n"


def reads_of(f) -> set[str]:
    d = f.definition
    out = set()
    for _, e in d.args:
        out.update(reads(e, d.loop_vars))
    return out
