"""Property tests of the text front end (hypothesis).

* A generated model, written as text in a random but valid layout (spacing, tabs, CRLF,
  comments, ';', line breaks inside brackets, redundant parentheses, number spellings,
  keyword or positional arguments, merged loop bodies) parses to the IR that the Python
  DSL builds from the same description, and ``parse(to_text(ir)) == ir``.
* Random bytes, random text over the language's characters, and mutations of valid
  models (deleted tokens, swapped lines, truncation, inserted tokens) never raise
  anything but ``VemError``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vemppl
import vemppl as vp
from vemppl.ir import BinOp, Call, Index, Name, Neg, Num
from vemppl.ir.builder import RESERVED
from vemppl.ir.expr import BUILTINS

# VEMPPL_FUZZ_EXAMPLES=5000 for a long run; the default keeps the suite fast.
SETTINGS = settings(
    max_examples=int(os.environ.get("VEMPPL_FUZZ_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
DIMS = ("N", "D")

# ---- a model description ----------------------------------------------------------------
# (kind, name, loops, payload): kind 'latent' (payload: dist, args, keywords), 'det' (expr),
# 'obs' (the data array 'x' observed inside the loop over N).
names = st.from_regex(r"[a-z][a-z0-9_]{0,5}", fullmatch=True).filter(
    lambda s: s not in RESERVED and s not in BUILTINS and s not in ("x", "i", "j") + DIMS
)
numbers = st.one_of(st.integers(0, 10**6), st.floats(0, 1e6, allow_nan=False, allow_infinity=False))


def _expr(atoms):
    leaf = st.one_of(numbers.map(Num), st.sampled_from(atoms)) if atoms else numbers.map(Num)

    def grow(sub):
        return st.one_of(
            st.tuples(st.sampled_from(["+", "-", "*", "/", "**"]), sub, sub).map(lambda t: BinOp(*t)),
            sub.map(Neg),
            st.tuples(st.sampled_from(["exp", "log", "sigmoid"]), sub).map(lambda t: Call(t[0], (t[1],))),
        )

    return st.recursive(leaf, grow, max_leaves=6)


@st.composite
def descriptions(draw):
    stmts, scalars, plated = [], [Name("c0")], {}  # plated: name -> loop var it is indexed by
    for _ in range(draw(st.integers(1, 6))):
        name = draw(names.filter(lambda s: s not in {st_[1] for st_ in stmts} | {"c0"}))
        loop = draw(st.sampled_from([(), ("i", "N"), ("j", "D")]))
        atoms = list(scalars) + [Index(Name(p), (Name(v),)) for p, v in plated.items() if loop and v == loop[0]]
        if draw(st.booleans()):
            stmts.append(("det", name, loop, draw(_expr(atoms))))
        else:
            scale = draw(st.one_of(numbers.filter(lambda v: v > 0).map(Num), _expr(atoms).map(lambda e: Call("exp", (e,)))))
            stmts.append(("latent", name, loop, (draw(_expr(atoms)), scale, draw(st.sampled_from(["scale", "precision"])))))
        if loop:
            plated[name] = loop[0]
        else:
            scalars.append(Name(name))
    atoms = list(scalars) + [Index(Name(p), (Name("i"),)) for p, v in plated.items() if v == "i"]
    stmts.append(("obs", "x", ("i", "N"), draw(_expr(atoms))))
    const = draw(st.one_of(numbers.map(Num), numbers.filter(lambda v: v > 0).map(lambda v: Neg(Num(v)))))
    return const, stmts


def to_dsl(desc) -> vp.Model:
    const, stmts = desc
    m = vp.Model("gen")
    handles = dict(zip(DIMS, m.dim(*DIMS)))
    handles["c0"] = m.const("c0", _py(const, {}))
    m.data("x", vp.real[handles["N"]])
    for kind, name, loop, payload in stmts:
        if loop:
            with m.plate(loop[0], handles[loop[1]]) as v:
                handles[loop[0]] = v
                handles[name] = _define(m, kind, name, payload, handles)
        else:
            handles[name] = _define(m, kind, name, payload, handles)
    return m


def _define(m, kind, name, payload, h):
    if kind == "det":
        return m.let(name, _py(payload, h))
    loc = _py(payload, h) if kind == "obs" else _py(payload[0], h)
    if kind == "obs":
        return m.sample(name, vp.Normal(loc, 1))
    return m.sample(name, vp.Normal(loc, **{payload[2]: _py(payload[1], h)}))


def _py(e, h):
    """An IR expression as DSL values (the DSL must rebuild the same IR)."""
    if isinstance(e, Num):
        return e.value
    if isinstance(e, Name):
        return h[e.id]
    if isinstance(e, Index):
        return h[e.base.id].__getitem__(h[e.indices[0].id])
    if isinstance(e, Neg):
        return -_py(e.operand, h) if not isinstance(e.operand, Num) else vp.frontends.dsl.E(e)
    if isinstance(e, Call):
        return getattr(vp, e.func)(_py(e.args[0], h))
    ops = {"+": "__add__", "-": "__sub__", "*": "__mul__", "/": "__truediv__", "**": "__pow__"}
    left = _py(e.left, h)
    left = left if isinstance(left, vp.frontends.dsl.E) else vp.frontends.dsl.E(Num(left))
    return getattr(left, ops[e.op])(_py(e.right, h))


# ---- a random layout of the same model ------------------------------------------------------
@st.composite
def layouts(draw):
    return {
        "nl": draw(st.sampled_from(["\n", "\r\n"])),
        "sp": draw(st.lists(st.sampled_from([" ", "  ", "\t", " \t "]), min_size=1, max_size=3)),
        "seed": draw(st.integers(0, 2**16)),
    }


def write(desc, lay) -> str:
    import random

    rnd = random.Random(lay["seed"])
    sp = lambda: rnd.choice(lay["sp"])  # noqa: E731
    nl = lay["nl"]

    def ex(e, top=True) -> str:
        if isinstance(e, Num):
            v = e.value
            if isinstance(v, float) and rnd.random() < 0.5:
                return f"{v:.17e}".replace("e", rnd.choice("eE"))
            return repr(v)
        if isinstance(e, Name):
            return e.id
        if isinstance(e, Index):
            return f"{ex(e.base)}[{sp()}{ex(e.indices[0])}{sp()}]"
        if isinstance(e, Call):
            brk = f"{sp()}# note{nl}" if rnd.random() < 0.3 else ""
            return f"{e.func}({brk}{ex(e.args[0])})"
        if isinstance(e, Neg):
            return f"(-{sp()}{ex(e.operand, False)})"
        return f"({ex(e.left, False)}{sp()}{e.op}{nl if rnd.random() < 0.2 else sp()}{ex(e.right, False)})"

    def stmt(kind, name, loop, payload):
        lhs = f"{name}[{loop[0]}]" if loop else name
        if kind == "det":
            return f"{lhs}{sp()}={sp()}{ex(payload)}"
        if kind == "obs":
            return f"{lhs} ~ Normal({ex(payload)},{sp()}1)"
        loc, scale, key = payload
        loc_s = f"loc = {ex(loc)}" if rnd.random() < 0.3 else ex(loc)
        arg = f"{key} = {ex(scale)}" if key == "precision" or loc_s.startswith("loc") or rnd.random() < 0.5 else ex(scale)
        return f"{lhs}{sp()}~{sp()}Normal({loc_s},{sp()}{arg})"

    const, stmts = desc
    out = [f"# generated{nl}", f"{sp()}model gen{nl}", f"dim N,{sp()}D;{sp()}const c0 = {ex(const)}{nl}", f"data x: real[N]{nl}"]
    k = 0
    while k < len(stmts):
        kind, name, loop, payload = stmts[k]
        if not loop:
            out.append(stmt(*stmts[k]) + rnd.choice([nl, f";{nl}", f"  # comment{nl}", f"{nl}{nl}"]))
            k += 1
            continue
        group = [stmts[k]]  # merge the following statements of the same loop into one block
        while k + len(group) < len(stmts) and stmts[k + len(group)][2] == loop and rnd.random() < 0.7:
            group.append(stmts[k + len(group)])
        body = rnd.choice([nl, f";{sp()}", f"{sp()}# c{nl}"]).join(stmt(*s) for s in group)
        out.append(f"for {loop[0]} in range({rnd.choice(['', '0, '])}{loop[1]}){sp()}{{{nl}{body}{nl}}}{nl}")
        k += len(group)
    return "".join(out)


@SETTINGS
@given(descriptions(), layouts())
def test_generated_models_parse_to_the_dsl_ir_and_round_trip(desc, lay):
    ir = to_dsl(desc).ir
    text = write(desc, lay)
    assert vemppl.parse(text) == ir, text
    canonical = vemppl.to_text(ir)
    assert vemppl.parse(canonical) == ir
    assert vemppl.to_text(vemppl.parse(canonical)) == canonical


# ---- nothing but VemError -------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[1]
VALID = [p.read_text() for p in sorted((ROOT / "models").glob("*.vem"))] + [
    p.read_text() for p in sorted((ROOT / "tests" / "fixtures" / "language").glob("*.vem"))
]
TOKENS = ["model", "dim", "data", "const", "param", "for", "in", "range", "(", ")", "[", "]", "{", "}",
          "~", "=", ",", ";", ":", "\n", "-", "**", "@", "x", "N", "0", "1e-3", "Normal", "#", "cat(K)"]


def only_vem_errors(text):
    try:
        vemppl.parse(text, "fuzz.vem")
    except vemppl.VemError as err:
        rendered = err.render()
        assert err.kind in vemppl.diagnostics.KINDS and rendered
        if err.span is not None:
            assert err.line >= 1 and err.column >= 1


@SETTINGS
@given(st.binary(max_size=400))
def test_random_bytes(raw):
    only_vem_errors(raw)


@SETTINGS
@given(st.text(alphabet="model dimtaxrngeNDK~=()[]{},;:#\n\r\t 0123456789.eE+-*/@_", max_size=300))
def test_random_text_over_the_language_characters(text):
    only_vem_errors(text)


@SETTINGS
@given(st.sampled_from(VALID), st.data())
def test_mutated_models(text, data):
    tokens = re.findall(r"\w+|\*\*|\s+|.", text)
    how = data.draw(st.sampled_from(["delete", "insert", "swap_lines", "truncate", "duplicate_line", "replace"]))
    if how == "delete":
        for _ in range(data.draw(st.integers(1, 3))):
            del tokens[data.draw(st.integers(0, len(tokens) - 1))]
        text = "".join(tokens)
    elif how == "insert":
        tokens.insert(data.draw(st.integers(0, len(tokens))), data.draw(st.sampled_from(TOKENS)))
        text = "".join(tokens)
    elif how == "replace":
        tokens[data.draw(st.integers(0, len(tokens) - 1))] = data.draw(st.sampled_from(TOKENS))
        text = "".join(tokens)
    elif how == "truncate":
        text = text[: data.draw(st.integers(0, len(text)))]
    else:
        lines = text.split("\n")
        a, b = data.draw(st.integers(0, len(lines) - 1)), data.draw(st.integers(0, len(lines) - 1))
        if how == "swap_lines":
            lines[a], lines[b] = lines[b], lines[a]
        else:
            lines.insert(a, lines[b])
        text = "\n".join(lines)
    only_vem_errors(text)
