"""The derived updates of a compiled plan, written as the formulas they are (Markdown,
each update also as LaTeX display math).

Nothing here is written per model: each block's update is read off the plan's factors.
For a block ``j`` with family ``F`` the closed-form update is

    η_j = ∇_{E[T_j]} Σ_{factors f touching j} E_q[log f],       E[T_j] = ∇A_F(η_j)

(Winn & Bishop 2005), written per kind of block:

* a categorical block: ``log r[z[n] = k] = E[log pi[k]] + E[log MvNormal(x[n] | mu[k], ...)] + const``,
  every factor at ``z[n] = k`` (Bishop PRML eq. 10.46; Blei et al. 2003 eq. 6 for LDA's
  ``E[log theta[doc[i], k]] + E[log beta[k, word[i]]]``), a factor given its probabilities
  written as the log-probability it reads;
* a Markov chain: its unary log-potentials ``log ψ``, first-step terms and pairwise
  ``log Ψ(j, k)``, then forward–backward (Beal 2003 ch. 3);
* any other conjugate block: ``η = η_prior + Σ messages``, each message the gradient of one
  factor with respect to ``E[T]``, weighted by the responsibilities of the categoricals it gates;
* a non-conjugate block: the damped step ``η ← (1 − ρ) η + ρ (…)`` (Khan & Lin 2017);
* amortised latents and the M-step of point parameters in words.
"""

from __future__ import annotations

from ..compiler import compile_model
from ..families import get_family
from ..ir.expr import Index, Name, loop_offset, substitute, walk
from ..ir.graph import as_ir, reads
from ..ir.text import expr_to_text
from ..plan import BlockStructure


def _subst(e, mapping):
    """``e`` with each sub-expression that ``mapping`` names (a gate ``z[n]``) replaced by its letter."""
    return substitute(e, lambda x: Name(mapping[x]) if x in mapping else None)


def _factor_text(f, mapping) -> str:
    d = f.definition
    target = Index(Name(f.target), d.indices) if d.indices else Name(f.target)
    args = ", ".join(
        (expr_to_text(_subst(v, mapping)) if i == 0 else f"{k} = {expr_to_text(_subst(v, mapping))}")
        for i, (k, v) in enumerate(d.args)
    )
    return f"E[log {f.family}({expr_to_text(_subst(target, mapping))} | {args})]"


def _with_index(e, extra):
    """``P[k]`` for a probability vector ``P``; ``theta[doc[i]]`` gives ``theta[doc[i], k]``."""
    return Index(e.base, e.indices + (extra,)) if isinstance(e, Index) else Index(e, (extra,))


def _log_density(f, mapping, value=None) -> str:
    """``E[log f]`` with the gated categoricals replaced by their values; a categorical
    factor given its probabilities (the family's argument named ``probs``) is written as
    the log-probability it is, ``E[log P[value]]``; given ``logits``, ``E[log softmax(L)[value]]``."""
    d = f.definition
    args = dict(d.args)
    target = Index(Name(f.target), d.indices) if d.indices else Name(f.target)
    v = Name(value) if value is not None else _subst(target, mapping)
    if get_family(f.family).support == "cat" and len(args) == 1:
        (role, e), = args.items()
        if role == "probs":
            return f"E[log {expr_to_text(_with_index(_subst(e, mapping), v))}]"
        if role == "logits":
            return f"E[log softmax({expr_to_text(_subst(e, mapping))})[{expr_to_text(v)}]]"
    if value is not None:
        mapping = {**mapping, target: value}
    return _factor_text(f, mapping)


def _loops_text(f, skip=()) -> str:
    return "".join(f"Σ_{lp.var} " for lp in f.definition.loops if lp.var not in skip)


def _index_vars(e) -> set[str]:
    return {n.id for n in walk(e) if isinstance(n, Name)}


def _own_lag_ref(f, name):
    """The enumerated reference of a statement to an earlier step of its own node."""
    if f.target != name:
        return None
    d = f.definition
    own = Index(Name(name), d.indices) if d.indices else Name(name)
    return next((r for r in f.enum if r.block == name and r.expr != own), None)


def _categorical_update(m, plan, name, elem, d0) -> list[str]:
    """``log r[z[n] = k] = Σ E[log ...] + const``: the closed form of a categorical block
    (Bishop PRML eq. 10.46 for a mixture), or a chain's unary and pairwise log-potentials."""
    own_vars = _index_vars(Index(Name(name), d0.indices)) if d0.indices else set()
    own, unary, initial, pairwise = [], [], [], []
    for f in plan.factors:
        if f.target == name:
            lag = _own_lag_ref(f, name)
            if lag is None:
                (initial if f.definition.loops == () and d0.loops else own).append(_log_density(f, {}, "k"))
            else:
                pairwise.append(_log_density(f, {lag.expr: "j"}, "k"))
            continue
        refs = [r for r in f.enum if r.block == name]
        if not refs:
            continue
        mapping, weights = {refs[0].expr: "k"}, []
        letters = iter("lmcdefgh")
        for r in f.enum:
            if r.block != name:
                sym = next(letters)
                mapping[r.expr] = sym
                weights.append((r.block, r.expr, sym))
        sums = _loops_text(f, own_vars | _index_vars(refs[0].expr)) + "".join(
            f"Σ_{mapping[r.expr]} " for r in f.enum if r.block != name)
        w = _weight_text(plan, weights)
        unary.append(f"{sums}{(w + ' · ') if w else ''}{_log_density(f, mapping)}")
    if not pairwise:
        return [f"- update: `log r[{elem} = k] = {' + '.join(own + unary + initial) or '0'} + const`, "
                f"then `r[{elem} = k] = softmax_k(log r[{elem} = k])`"]
    chain = [f"- update: `log ψ[{elem} = k] = {' + '.join(own + unary) or '0'}` (unary log-potential of each step)"]
    if initial:
        first = expr_to_text(Index(Name(name), next(f.definition.indices for f in plan.factors
                                                    if f.target == name and not f.definition.loops)))
        import re

        steps = [v for v in _index_vars(Index(Name(name), d0.indices)) if v in {lp.var for lp in d0.loops}]
        at_first = " + ".join(initial + unary)
        for v, c in zip(steps, re.findall(r"\[(.*)\]", first)):  # the emission terms at the first step
            at_first = re.sub(rf"\b{v}\b", c, at_first)
        chain.append(f"- first step: `log ψ[{first} = k] = {at_first}`")
    chain.append(f"- transitions: `log Ψ(j, k) = {' + '.join(pairwise)}` (pairwise log-potential)")
    chain.append(f"- then `r[{elem} = k]` and `r[{elem.replace(']', ' - 1]')} = j, {elem} = k]` by forward–backward "
                 "(∇ of the forward pass's log-normaliser)")
    return chain


def _conjugate_update(m, plan, name, nodes, elem, d0) -> list[str]:
    """``η(θ) = η_prior + Σ messages``: each factor's gradient with respect to ``E[T(θ)]``
    (Winn & Bishop 2005), weighted by the responsibilities of the categoricals it gates."""
    own_vars = set()
    for n in nodes:
        d = max(m.nodes[n].defs, key=lambda d: (len(d.indices), len(d.loops)))
        own_vars |= {lp.var for lp in d.loops if any(lp.var in _index_vars(i) for i in d.indices)}
    terms = []
    for f in plan.factors:
        if not (f.target in nodes or bool(set(nodes) & reads_of(f, m))):
            continue
        mapping, weights, sums = {}, [], []
        letters = iter([v for v in "klmcdefgh" if v not in own_vars])
        for r in f.enum:
            sym = _gate_letter(m, f, r, nodes) or next(letters)
            mapping[r.expr] = sym
            if sym not in own_vars:
                sums.append(f"Σ_{sym} ")
            weights.append((r.block, r.expr, sym))
        target = Index(Name(f.target), f.definition.indices) if f.definition.indices else Name(f.target)
        if f.target not in nodes and target not in mapping and get_family(plan.block(f.target).family).support == "cat" \
                if f.target in {b.name for b in plan.blocks} else False:  # a categorical read by its own statement
            sym = next(letters)
            mapping[target] = sym
            sums.append(f"Σ_{sym} ")
            weights.append((f.target, target, sym))
        w = _weight_text(plan, weights)
        loops = _loops_text(f, own_vars)
        g = f"∇_{{E[T({elem})]}} {_log_density(f, mapping)}"
        if f.target in nodes and not (reads_of(f, m) & {n.name for n in m.of_kind("latent")}):
            g = f"η_{f.family}({', '.join(expr_to_text(v) for _, v in f.definition.args)})"  # a fixed prior
        terms.append(f"{loops}{''.join(sums)}{(w + ' · ') if w else ''}{g}")
    return [f"- update: `η({elem}) = {' + '.join(terms)}`"]


def _weight_text(plan, weights) -> str:
    """The responsibilities weighting a term, ``weights`` the reads ``(block, expr, symbol)`` in
    the factor's order: a product of marginals ``r[z[n] = k]·r[c[g] = l]``, except that the reads
    of one chain block (``z[t - 1]`` and ``z[t]``) are weighted by their pairwise marginal
    ``r[z[t - 1] = k, z[t] = l]``, which forward–backward gives, not by the product."""
    chains = {b.name for b in plan.blocks if b.structure is BlockStructure.MARKOV_CHAIN}
    groups: dict = {}
    for block, expr, sym in weights:
        key = block if block in chains else (block, len(groups))
        groups.setdefault(key, []).append(f"{expr_to_text(expr)} = {sym}")
    return "·".join(f"r[{', '.join(g)}]" for g in groups.values())


def _gate_letter(m, f, r, nodes):
    """The block's own index variable where ``r`` indexes it (``mu[z[n]]`` updating ``mu[k]``: k)."""
    for _, e in f.definition.args:
        for sub in walk(e):
            if isinstance(sub, Index) and isinstance(sub.base, Name) and sub.base.id in nodes:
                for pos, ix in enumerate(sub.indices):
                    if ix == r.expr:
                        d = max(m.nodes[sub.base.id].defs, key=lambda d: len(d.indices))
                        lo = loop_offset(d.indices[pos], d.loop_vars) if pos < len(d.indices) else None
                        return lo[0] if lo else None
    return None


def derived_updates(model, plan=None, latex: bool = True) -> str:
    """Markdown: for each block, its family, statistics and its closed-form update written
    as the math it is (each line also as LaTeX display math when ``latex``)."""
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
        d0 = max(m.nodes[name].defs, key=lambda d: (len(d.indices), len(d.loops)))
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
        if b.members and fam.stats_text is not None:
            stats = fam.stats_text.format(**{role: e for (role, _), e in zip(b.members, elems)})
        else:
            stats = ", ".join(f"E[{s}({elem})]" for s in fam.Stats._fields)
        out.append(f"- statistics: `{stats}`; natural parameters give {fam.natural_text or 'its parameters'}")
        if b.reason:
            out.append(f"- not conjugate: {b.reason}")
        if fam.support == "cat" and not b.members:
            lines = _categorical_update(m, plan, name, elem, d0)
        else:
            lines = _conjugate_update(m, plan, name, nodes, elem, d0)
            if b.update != "cavi":  # conjugate-computation VI (Khan & Lin 2017): a damped step
                lines = [line.replace(f"η({elem}) = ", f"η({elem}) ← (1 − ρ) η({elem}) + ρ (", 1)[:-1] + ")`"
                         for line in lines]
        out += lines
        if latex:
            out += ["", *(f"$$ {to_latex(_math_of(line))} $$" for line in lines
                          if line.startswith(("- update", "- first step", "- transitions"))), ""]
        else:
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


def _math_of(line: str) -> str:
    """The first code span of a Markdown line."""
    parts = line.split("`")
    return parts[1] if len(parts) > 2 else ""


_SYMBOLS = [("·", r" \cdot "), ("η", r"\eta"), ("ρ", r"\rho"), ("ψ", r"\psi"), ("Ψ", r"\Psi"), ("←", r"\leftarrow"),
            ("−", "-"), ("|", r"\mid "), ("const", r"\text{const}")]


def to_latex(text: str) -> str:
    """The LaTeX of one update (KaTeX/MathJax): sums, expectations, gradients and logs as
    operators, a family as an upright name, identifiers with their underscores escaped."""
    import re

    out = text.replace("_", r"\_")
    out = re.sub(r"∇\\_\{(.*?)\}", lambda m: r"\nabla_{" + m.group(1) + "}", out)
    out = re.sub(r"Σ\\_(\w+) ", lambda m: r"\sum_{" + m.group(1) + "} ", out)
    out = re.sub(r"η\\_(\w+)\(", lambda m: r"\eta_{\text{" + m.group(1) + "}}(", out)
    out = re.sub(r"softmax\\_k", r"\\operatorname{softmax}_k", out)
    out = re.sub(r"\bE\[", r"\\mathbb{E}[", out)
    out = re.sub(r"\blog ", r"\\log ", out)
    out = re.sub(r"\b([A-Z][A-Za-z]+)\(", lambda m: r"\operatorname{" + m.group(1) + "}(", out)
    for a, b in _SYMBOLS:
        out = out.replace(a, b)
    return out


def reads_of(f, m=None) -> set[str]:
    """The nodes the arguments of factor ``f`` read; with the model ``m``, also those read through
    its deterministic nodes (``m[n] = sigmoid(b + ...)`` read as ``Beta(phi * m[n], ...)`` reads ``b``)."""
    d = f.definition
    out = set()
    for _, e in d.args:
        out.update(reads(e, d.loop_vars))
    if m is not None:
        out = m.upstream(out, stop=("data", "param", "latent", "const", "dim"))
    return out
