"""LANGUAGE.md is the contract: each of its models parses exactly as written and round-trips.

The fixtures in ``tests/fixtures/language/`` are verbatim copies of the page's models
plus models that exercise every detail the page names (Markov chains per sequence,
indexed call results, typed and vector consts, every keyword form).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import vemppl
from vemppl.ir import BinOp, Call, Index, Name, Neg, Num

FIXTURES = Path(__file__).parent / "fixtures" / "language"
FILES = sorted(FIXTURES.glob("*.vem"))
# The page itself, when this checkout sits beside it (docs/ copy first).
_DOCS = [Path(__file__).parents[1] / "docs" / "LANGUAGE.md", Path("/work/shared/LANGUAGE.md")]
DOC = next((p for p in _DOCS if p.exists()), None)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_language_fixture_parses_and_round_trips(path):
    ir = vemppl.load(path)
    assert ir.filename == str(path) and ir.source == path.read_text()
    text = vemppl.to_text(ir)
    assert vemppl.parse(text) == ir
    assert vemppl.to_text(vemppl.parse(text)) == text  # the canonical text is a fixed point


@pytest.mark.skipif(DOC is None, reason="LANGUAGE.md is not beside this checkout")
def test_fixtures_are_the_page_verbatim():
    blocks = [b for b in re.findall(r"```\n(.*?)```", DOC.read_text(), re.S) if b.startswith("# ") and "\nmodel " in b]
    assert len(blocks) >= 5
    for block in blocks:
        name = re.match(r"# (\w+)\.vem", block).group(1)
        assert (FIXTURES / f"{name}.vem").read_text() == block
        vemppl.parse(block)


def test_gmm_ir_is_what_the_page_says():
    ir = vemppl.load(FIXTURES / "gmm.vem")
    assert [n.kind for n in ir.nodes.values()] == ["dim", "dim", "const", "data", "latent", "latent", "latent", "latent"]
    assert ir.shapes["mu"] == ("K", "D") and ir.shapes["Lam"] == ("K", "D", "D") and ir.shapes["z"] == ("N",)
    (d,) = ir["x"].defs
    assert d.dist == "MvNormal" and [lp.var for lp in d.loops] == ["n"]
    z_n = Index(Name("z"), (Name("n"),))
    # `precision` is the short form of NumPyro's precision_matrix.
    assert d.args == (("loc", Index(Name("mu"), (z_n,))), ("precision_matrix", Index(Name("Lam"), (z_n,))))
    assert ir["K"].value == Num(3)
    assert ir.graph.edges["z", "x"]["roles"] == {"loc:index", "precision_matrix:index"}


def test_hmm_markov_dependence_and_two_definitions():
    ir = vemppl.load(FIXTURES / "hmm.vem")
    first, rest = ir["z"].defs
    assert first.indices == (Num(0),) and first.loops == ()
    assert rest.loops[0].start == Num(1) and rest.loops[0].stop == Name("T")
    t_minus_1 = BinOp("-", Name("t"), Num(1))
    assert rest.args == (("probs", Index(Name("A"), (Index(Name("z"), (t_minus_1,)),))),)
    assert "probs:markov" in ir.graph.edges["z", "z"]["roles"]


def test_markov_per_sequence():
    ir = vemppl.load(FIXTURES / "markov_sequences.vem")
    assert ir.shapes["z"] == ("S", "T")
    assert len(ir["z"].defs) == 2  # z[s, 0] and z[s, t] for t >= 1


def test_expression_details():
    ir = vemppl.load(FIXTURES / "expressions.vem")
    (e,) = ir["e"].defs
    assert e.expr == Index(Call("eye", (Name("K"),)), (Name("k"),))
    assert ir["s0"].value == Num(25000.0) and ir["eps"].value == Num(0.001)
    assert ir["L"].type.base == "int" and ir.shapes["v"] == ("D",)
    assert ir["b"].value == Neg(Num(1))  # -1 is a negation, as the DSL builds it
    assert ir["m"].defs[0].arg("covariance_matrix") == Name("Sig")  # cov = is the short form
    assert ir["tau"].defs[0].args == (("concentration", Num(2)), ("rate", Num(3)))
    assert ir["q"].defs[0].args == (("probs", Name("p")),)
    # 2 ** -1 binds tighter than the division; -b[c[n]] is a negation of an indexed param.
    (eta,) = ir["eta"].defs
    assert eta.expr.op == "-" and eta.expr.right == BinOp(
        "/", Neg(Index(Name("b"), (Index(Name("c"), (Name("n"),)),))), BinOp("**", Num(2), Neg(Num(1)))
    )
